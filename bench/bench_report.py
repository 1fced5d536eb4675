"""Report and history benchmark: report of a 30-minute 8-channel session; import of 100 sessions.

Run: ``python bench/bench_report.py`` (or ``make bench``).  Prints a markdown section.

Input: the simulated board's scripted clinic session (8 channels, 1 kHz).  Until the clinical
engine's ``analyze`` is part of the build, the analysis is built from the simulator's ground truth
in the issue-5 schema (tests/_sessions.py), so the figures measure report and database work, not
the detector.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from _sessions import make_session, read_json_session, write_json_session  # noqa: E402

from emgfeedback.views import figures  # noqa: E402
from emgfeedback.views.history import History, import_folder, write_progress  # noqa: E402
from emgfeedback.views.report import build_report, render_html, write_pdf  # noqa: E402

COMMAND = "python bench/bench_report.py"


def _t(f, *a):
    t0 = time.perf_counter()
    r = f(*a)
    return r, time.perf_counter() - t0


def bench_report(minutes: float = 30.0) -> list[str]:
    session, t_sim = _t(make_session, 5, 0.4, minutes * 60.0)
    n_reps = len(session.analysis["reps"])
    report, t_build = _t(build_report, session)
    html, t_html = _t(render_html, report)
    with tempfile.TemporaryDirectory() as d:
        pdf = Path(d) / "r.pdf"
        _, t_pdf = _t(write_pdf, report, pdf)
        pdf_kb = pdf.stat().st_size / 1024
    sig = session.signal
    assert sig is not None
    return [
        f"### Session report, {minutes:g}-minute session, {len(sig.channels)} channels at "
        f"{sig.fs:g} Hz ({sig.n_samples} samples, {n_reps} rep rows, "
        f"{len(session.analysis['events'])} events)",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| (simulate the session, not part of the report) | {t_sim:.2f} |",
        f"| envelopes + quality + figures (`build_report`) | {t_build:.2f} |",
        f"| HTML with embedded PNGs (`render_html`, {len(html) / 1024:.0f} KiB) | {t_html:.2f} |",
        f"| PDF (`write_pdf`, {pdf_kb:.0f} KiB) | {t_pdf:.2f} |",
        f"| **report total (HTML + PDF)** | **{t_build + t_html + t_pdf:.2f}** |",
        "",
    ]


def bench_history(n: int = 100, minutes: float = 20.0) -> list[str]:
    base = [make_session(seed=k, synkinesis_prob=0.6 - 0.005 * k, duration=minutes * 60.0,
                         with_signal=False, day=7 * k) for k in range(5)]
    from emgfeedback.views.summary import SessionInput

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "sessions"
        folder.mkdir()
        for k in range(n):
            b = base[k % len(base)]
            s = SessionInput("P042", b.recorded_at.replace(year=2025 + k // 300, day=1 + k % 28,
                                                           month=1 + (k // 28) % 12),
                             f"s{k:03d}.edf", b.analysis, b.affected_side, b.program)
            write_json_session(s, folder / f"s{k:03d}.json")
        db = Path(d) / "history.sqlite"
        r, t_imp = _t(lambda: import_folder(folder, db, reader=read_json_session, pattern="*.json",
                                            progress=io.StringIO()))
        r2, t_again = _t(lambda: import_folder(folder, db, reader=read_json_session,
                                               pattern="*.json", progress=None))
        _, t_prog = _t(write_progress, "P042", Path(d) / "p.html", db)
        db_kb = db.stat().st_size / 1024
        with History(db) as h:
            stored = len(h.sessions("P042"))
    reps = len(base[0].analysis["reps"])
    return [
        f"### History: import of {n} sessions ({minutes:g}-minute sessions, {reps} rep rows each)",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| `import_folder` of {n} session files, one transaction each ({len(r.imported)} stored) "
        f"| {t_imp:.2f} |",
        f"| same folder again ({len(r2.skipped)} already stored, skipped) | {t_again:.2f} |",
        f"| progress report of the {stored} sessions (`write_progress`) | {t_prog:.2f} |",
        "",
        f"Database size after import: {db_kb:.0f} KiB ({db_kb / n:.1f} KiB per session: metrics "
        "and the analysis JSON, no signals).  Session files here are metrics-only JSON; with EDF "
        "files the import also reads each recording and runs `analyze`.",
        "",
    ]


def main() -> str:
    import matplotlib

    lines = ["## Reports and patient history", "", f"Command: `{COMMAND}` (matplotlib "
             f"{matplotlib.__version__}, backend {matplotlib.get_backend()})", ""]
    lines += bench_report()
    lines += bench_history()
    assert figures  # figures module imported: matplotlib configured before timing
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
