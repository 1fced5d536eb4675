"""Report and history benchmark with the real pipeline: EDF+ file -> ``analyze`` -> report; import
of 100 EDF+ sessions into the history.

Run: ``python bench/bench_report.py`` (``make bench`` runs it with the others).  Prints a markdown
section.

Input: sessions of the simulated board (``session`` scenario: rest, three MVC trials per region,
then smile / eye closure / pucker / brow raise reps; 8 channels at 1 kHz) written as EDF+ with
their sidecar by the live recorder (``tests/_sessions.write_edf_session``, what
``emgfeedback simulate --out x.edf`` does).  Every step after writing the file is what
``emgfeedback report SESSION.edf --pdf`` and ``emgfeedback history import FOLDER`` do.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

# Only names that the code before the report/history split also had are imported here (for
# --steps with another tree on the path); the rest is imported where it is used.
from emgfeedback.io.importers import load  # noqa: E402
from emgfeedback.views.report import (  # noqa: E402
    analyse_recording,
    build_report,
    render_html,
    session_from_recording,
    write_pdf,
)

COMMAND = "python bench/bench_report.py"


def _t(f: Any, *a: Any, **k: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    r = f(*a, **k)
    return r, time.perf_counter() - t0


#: GNU time measures a command's peak memory from a small parent (a child forked from this large
#: process would report this process's memory as its own high-water mark).
GNU_TIME = "/usr/bin/time"


#: CPU seconds (user + system) of each command run by :func:`run_cli`, by its first words
CPU: dict[str, float] = {}


def run_cli(*argv: str) -> tuple[float, float | None]:
    """``emgfeedback ARGV`` as a new process: (wall seconds, peak resident MiB or None); its
    CPU time goes into :data:`CPU` (the shared machine's load stretches wall times)."""
    cmd = [sys.executable, "-m", "emgfeedback", *argv]
    timed = Path(GNU_TIME).is_file()
    if timed:
        cmd = [GNU_TIME, "-f", "maxrss_kib=%M cpu_s=%U+%S", *cmd]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"emgfeedback {' '.join(argv[:2])} failed: {r.stderr.strip()[-300:]}")
    m = re.search(r"maxrss_kib=(\d+)", r.stderr) if timed else None
    c = re.search(r"cpu_s=([\d.]+)\+([\d.]+)", r.stderr) if timed else None
    if c:
        CPU[" ".join(argv[:2])] = float(c.group(1)) + float(c.group(2))
    return wall, (int(m.group(1)) / 1024.0 if m else None)


def bench_report(minutes: float = 30.0) -> list[str]:
    from _sessions import make_source, session_start, write_edf_session

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "P-042_session.edf"
        src = make_source(seed=5, synkinesis_prob=0.4, duration=minutes * 60.0)
        _, t_write = _t(write_edf_session, path, src, "P-042", session_start(0))
        mib = path.stat().st_size / 2**20
        rec, t_open = _t(load, path)
        analysis, t_an = _t(analyse_recording, rec)
        session = session_from_recording(rec, analysis)
        report, t_build = _t(build_report, session)
        html, t_html = _t(render_html, report)
        pdf = Path(d) / "r.pdf"
        _, t_pdf = _t(write_pdf, report, pdf)
        pdf_kb = pdf.stat().st_size / 1024
        pages = None
        try:
            out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, timeout=60)
            pages = next((ln.split()[-1] for ln in out.stdout.splitlines()
                          if ln.startswith("Pages:")), None)
        except (OSError, subprocess.SubprocessError):
            pass
        rec.close()
        # The command as a user runs it (a fresh process: imports, analyze, HTML and PDF).
        t_cli, rss = run_cli("report", str(path), "--pdf", "--out", str(Path(d) / "cli.html"))
    n_reps = len(analysis["reps"])
    total = t_open + t_an + t_build + t_html + t_pdf
    return [
        f"### Session report, {minutes:g}-minute session, {len(rec.channels)} channels at "
        f"{rec.fs:g} Hz ({rec.n_samples} samples, EDF+ {mib:.0f} MiB; analyze found {n_reps} "
        f"rep rows and {len(analysis['events'])} synkinesis events)",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| (simulate and record the EDF+ session, not part of the report) | {t_write:.2f} |",
        f"| open the EDF+ and its sidecar (`io.importers.load`) | {t_open:.3f} |",
        f"| `analyze` (the live pipeline replayed: calibration pass + detection pass) | {t_an:.2f} |",
        f"| envelopes in 10 s blocks + quality + figures (`build_report`) | {t_build:.2f} |",
        f"| HTML with embedded PNGs and SVG (`render_html`, {len(html) / 1024:.0f} KiB) | "
        f"{t_html:.2f} |",
        f"| PDF (`write_pdf`, {pdf_kb:.0f} KiB" + (f", {pages} pages" if pages else "") +
        f") | {t_pdf:.2f} |",
        f"| **file to HTML + PDF, in process** | **{total:.2f}** |",
        f"| `emgfeedback report SESSION.edf --pdf` as a new process (imports included) | "
        f"{t_cli:.2f} |",
        "",
        (f"Peak resident memory of the `emgfeedback report` process: {rss:.0f} MiB (GNU time; "
         "the EDF+ is memory-mapped and the report reads it in 10 s blocks, keeping a 100 Hz "
         "envelope)." if rss is not None else "Peak memory not measured (no GNU time)."),
        "",
    ]


def bench_history(n: int = 100, minutes: float = 5.0) -> list[str]:
    from _sessions import make_source, session_start, write_edf_session

    from emgfeedback.views.history import History, import_folder, write_progress

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "P-042"
        folder.mkdir()
        t0 = time.perf_counter()
        for k in range(n):
            src = make_source(seed=100 + k, synkinesis_prob=max(0.05, 0.8 - 0.007 * k),
                              duration=minutes * 60.0)
            write_edf_session(folder / f"P-042_{k:03d}.edf", src, "P-042", session_start(3 * k))
        t_write = time.perf_counter() - t0
        mib = sum(p.stat().st_size for p in folder.glob("*.edf")) / 2**20
        db = Path(d) / "history.sqlite"
        r, t_imp = _t(import_folder, folder, db, progress=io.StringIO())
        r2, t_again = _t(import_folder, folder, db, progress=None)
        _, t_prog = _t(write_progress, "P-042", Path(d) / "p.html", db)
        db_kb = db.stat().st_size / 1024
        with History(db) as h:
            stored = len(h.sessions("P-042"))
    if r.failed:
        raise SystemExit(f"history import failed: {r.failed[:3]}")
    return [
        f"### History: `history import` of {n} EDF+ sessions ({minutes:g} minutes, 8 channels "
        f"at 1 kHz each; {mib:.0f} MiB)",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| (simulate and record the {n} sessions, not part of the import) | {t_write:.1f} |",
        f"| `import_folder`: open, `analyze`, store in one transaction each ({len(r.imported)} "
        f"stored) | {t_imp:.1f} |",
        f"| per session | {t_imp / n:.2f} |",
        f"| same folder again ({len(r2.skipped)} recognised from patient, start and file name "
        f"before analysis, skipped) | {t_again:.2f} |",
        f"| progress report of the {stored} sessions (`write_progress`) | {t_prog:.2f} |",
        "",
        f"Database size after import: {db_kb:.0f} KiB ({db_kb / n:.1f} KiB per session: metrics "
        "and the analysis JSON, no signals).",
        "",
    ]


def main() -> str:
    import matplotlib

    from emgfeedback.views.report import figures

    lines = ["## Reports and patient history", "", f"Command: `{COMMAND}` (matplotlib "
             f"{matplotlib.__version__}, backend {matplotlib.get_backend()})", ""]
    lines += bench_report()
    lines += bench_history()
    assert figures  # figures module imported: matplotlib configured before timing
    return "\n".join(lines)


def steps(edf: Path, workers: int = 1) -> dict[str, float]:
    """``--steps FILE [--workers N]``: the report's own steps on one recording, as JSON: with the
    analysis saved beside FILE (``emgfeedback analyze FILE --json FILE-analysis.json``, which
    saves the report's envelopes with it) the session is opened as ``report`` opens it (timed:
    ``load``); otherwise ``analyze`` runs untimed first.  ``--workers 2``: figures drawn in a
    second process too, as ``report`` draws them (``build`` returns when this process has drawn
    its own; ``pdf`` includes the wait for the others, which are drawn while its pages are).

    For comparing two versions of the code on a shared machine, run interleaved with each
    version first on the path: ``PYTHONPATH=OTHER_TREE/src python bench/bench_report.py --steps
    FILE`` (imports only the names both versions have)."""
    import gc

    from emgfeedback.io.edf.sidecar import analysis_path
    from emgfeedback.views.report import close_session, load_session

    gc.disable()  # as the report command runs
    t_load = 0.0
    if analysis_path(edf).is_file():
        session, t_load = _t(load_session, edf, prefetch=True)
    else:
        rec = load(edf)
        session = session_from_recording(rec, analyse_recording(rec))
    # workers > 1: the second process's figures still on their way when build returns (as
    # write_report builds them when it writes a PDF): the PDF's step waits for them
    kw: dict[str, Any] = {"workers": workers, "pending": True} if workers > 1 else {}
    c0 = time.thread_time()
    try:
        report, t_build = _t(build_report, session, **kw)
    except TypeError:  # (a version of the code before pending figures)
        kw.pop("pending", None)
        report, t_build = _t(build_report, session, **kw)
    c1 = time.thread_time()
    with tempfile.TemporaryDirectory() as d:  # the PDF first, as write_report writes them
        _, t_pdf = _t(write_pdf, report, Path(d) / "r.pdf")
    c2 = time.thread_time()
    _, t_html = _t(render_html, report)
    close_session(session)
    gc.enable()
    # and the CPU seconds of this thread in build and PDF (what the load of a shared machine
    # changes least; the PDF's includes importing matplotlib's PDF backend, not the waits)
    return {"load": round(t_load, 2), "build": round(t_build, 2), "html": round(t_html, 2),
            "pdf": round(t_pdf, 2), "total": round(t_load + t_build + t_html + t_pdf, 2),
            "build_cpu": round(c1 - c0, 3), "pdf_cpu": round(c2 - c1, 3)}


def figure_costs(edf: Path, repeat: int = 3) -> dict[str, dict[str, float]]:
    """``--figures FILE``: each figure of the report of FILE (its analysis saved beside it, as
    for ``--steps``) made, drawn at the PDF's resolution and encoded (the HTML's PNG, the PDF's
    PNG) in this process, in CPU seconds of this thread (``time.thread_time``: what the load of
    a shared machine changes least), the least of ``repeat`` runs; and the figure's vertices
    in line collections (the reps overlaid: about one sample per pixel column).  Where a
    report's CPU goes, figure by figure, and so which process should draw which
    (``model._FORKED``)."""
    import gc

    import numpy as np
    from matplotlib.collections import LineCollection

    from emgfeedback.views.report import close_session, figures, load_session, model
    from emgfeedback.views.summary import exercise_metrics, rep_rows

    gc.disable()  # as the report command runs
    session = load_session(edf, prefetch=True)
    scan = model.envelopes_pct(session)
    rows = rep_rows(session.analysis)
    metrics = exercise_metrics(session.analysis, session.affected_side)
    events = [e for e in session.analysis.get("events", [])
              if e.get("type", "synkinesis") == "synkinesis"]
    makers = [(k, m) for k, _c, m in model._signal_figures(session, scan, rows, events)]
    makers += [("bars", lambda: figures.fig_rep_bars(rows, session.affected_side)),
               ("symmetry", lambda: figures.fig_symmetry(metrics))]
    clock = time.thread_time
    out: dict[str, dict[str, float]] = {}
    for key, make in makers:
        best: dict[str, float] = {}
        for _ in range(repeat):
            t0 = clock()
            fig = make()
            t1 = clock()
            img = figures._rendered(fig)
            t2 = clock()
            figures._png(img, figures.HTML_DPI)
            t3 = clock()
            figures.pdf_png(np.asarray(img))
            t4 = clock()
            for step, dt in (("make", t1 - t0), ("draw", t2 - t1), ("html_png", t3 - t2),
                             ("pdf_png", t4 - t3)):
                best[step] = round(min(best.get(step, dt), dt), 3)
        best["vertices"] = sum(int(np.shape(p.vertices)[0]) for ax in fig.axes
                               for c in ax.collections if isinstance(c, LineCollection)
                               for p in c.get_paths())
        best["pixels"] = img.size[0] * img.size[1]
        out[key] = best
    close_session(session)
    gc.enable()
    return out


def _thinned(lines: list[Any], to_px: Any, tol_px: float, rounds: int) -> list[Any]:
    """The lines with each point left out that lies within ``tol_px`` pixels of the segment
    between its kept neighbours (every other point a round, ``rounds`` rounds: within
    ``rounds * tol_px`` of the line drawn), first, last, highest and lowest kept."""
    import numpy as np

    lens = np.array([len(ln) for ln in lines])
    ends = np.cumsum(lens)
    starts = ends - lens
    pts = np.concatenate(lines)
    px = to_px(pts)
    x, y = px[:, 0].copy(), px[:, 1].copy()
    line = np.repeat(np.arange(len(lines)), lens)
    v = pts[:, 1]
    fixed = (v == np.fmax.reduceat(v, starts)[line]) | (v == np.fmin.reduceat(v, starts)[line])
    fixed[starts] = fixed[ends - 1] = True
    keep = np.ones(len(pts), dtype=bool)
    k = np.arange(len(pts))
    for r in range(rounds):
        i, a, b = k[1 + r % 2:-1:2], k[r % 2:-2:2], k[2 + r % 2::2]
        dx, dy, ex, ey = x[b] - x[a], y[b] - y[a], x[i] - x[a], y[i] - y[a]
        length2, along = dx * dx + dy * dy, dx * ex + dy * ey
        near = (np.abs(dx * ey - dy * ex) < tol_px * np.sqrt(length2)) & (along >= 0) \
            & (along <= length2)
        keep[i[near & ~fixed[i]]] = False
        k = np.flatnonzero(keep)
    counts = np.add.reduceat(keep.astype(np.int64), starts)
    return np.split(pts[keep], np.cumsum(counts)[:-1])


def overlay_vertices(edf: Path, repeat: int = 5) -> dict[str, dict[str, float]]:
    """``--overlay-vertices FILE``: does rasterising the reps overlaid (most of the second
    process's time) scale with its vertices?  Its Agg drawing at the PDF's resolution (CPU
    seconds of this thread, least and median of ``repeat``, the three interleaved) as the
    report draws it, with each line thinned to the samples its drawing needs (a sample left
    out lies within 1/9 px of the line drawn, matplotlib's ``path.simplify_threshold``), and,
    for scale only (not a drawing to ship), every second sample.  Min/max decimation per pixel
    column leaves these lines as they are: about 1.5 px per sample at 150 dpi."""
    import gc

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection

    from emgfeedback.views.report import close_session, figures, load_session, model
    from emgfeedback.views.summary import rep_rows

    gc.disable()
    session = load_session(edf, prefetch=True)
    scan = model.envelopes_pct(session)
    rows = rep_rows(session.analysis)
    quiet = model._quiet_channels(session.channels, rows)
    times: dict[str, list[float]] = {}
    vertices: dict[str, int] = {}
    for _ in range(repeat):
        for mode in ("as drawn", "thinned to 1/9 px", "every 2nd sample"):
            fig = figures.fig_rep_overlays(scan.envelope_pct, scan.fs, session.channels, rows,
                                           quiet)
            n = 0
            for ax in fig.axes:
                for c in ax.collections:
                    if not isinstance(c, LineCollection):
                        continue
                    segs: list[Any] = [np.asarray(p.vertices) for p in c.get_paths()]
                    if mode.startswith("thinned"):
                        segs = _thinned(segs, lambda p, t=ax.transData, k=figures.RENDER_DPI
                                        / fig.dpi: t.transform(p) * k, 1 / 18, 2)
                    elif mode.startswith("every"):
                        segs = [sg[::2] for sg in segs]
                    c.set_segments(segs)
                    n += sum(len(sg) for sg in segs)
            fig.dpi = figures.RENDER_DPI
            t0 = time.thread_time()
            FigureCanvasAgg(fig).draw()  # type: ignore[no-untyped-call]
            times.setdefault(mode, []).append(time.thread_time() - t0)
            vertices[mode] = n
    close_session(session)
    gc.enable()
    return {m: {"vertices": vertices[m], "draw_min": round(min(ts), 3),
                "draw_median": round(sorted(ts)[len(ts) // 2], 3)} for m, ts in times.items()}


if __name__ == "__main__":
    if len(sys.argv) in (3, 5) and sys.argv[1] == "--steps":
        import json

        n = int(sys.argv[4]) if len(sys.argv) == 5 and sys.argv[3] == "--workers" else 1
        print(json.dumps(steps(Path(sys.argv[2]), n)))
    elif len(sys.argv) == 3 and sys.argv[1] == "--figures":
        import json

        print(json.dumps(figure_costs(Path(sys.argv[2])), indent=1))
    elif len(sys.argv) == 3 and sys.argv[1] == "--overlay-vertices":
        import json

        print(json.dumps(overlay_vertices(Path(sys.argv[2])), indent=1))
    else:
        print(main())
