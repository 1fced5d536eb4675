"""The report's envelopes saved with the analysis beside the recording (views/report/bins.py):
the same numbers as the report's own pass, used only for the recording and the analysis they
were saved with."""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from _sessions import SMALL, make_source, session_start, write_edf_session
from emgfeedback.cli import main
from emgfeedback.io.edf.sidecar import analysis_path, report_data_path
from emgfeedback.views.report import close_session, envelopes_pct, load_session, write_report
from emgfeedback.views.report.bins import EnvelopeBins, SignalPass


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A simulated session with its analysis saved beside it by ``emgfeedback analyze``."""
    d = tmp_path_factory.mktemp("saved")
    path = d / "P-007_2025-02-03.edf"
    src = make_source(seed=11, synkinesis_prob=0.5, duration=80.0, channels=SMALL)
    write_edf_session(path, src, patient="P-007", start=session_start(0))
    assert main(["analyze", str(path), "--json", str(analysis_path(path))]) == 0
    return path


def _copy(src: Path, d: Path) -> Path:
    d.mkdir()
    for p in src.parent.iterdir():
        if p.name.startswith(src.stem):
            shutil.copy2(p, d / p.name)
    return d / src.name


def test_analysis_beside_the_recording_saves_the_reports_envelopes_privately(saved):
    data = report_data_path(analysis_path(saved))
    assert data.name == "P-007_2025-02-03-analysis.report.npz" and data.is_file()
    assert stat.S_IMODE(data.stat().st_mode) == 0o600  # patient data: owner only


def test_saved_envelopes_are_the_reports_own_pass(saved):
    """Saved bins == the bins of the report's own pass, to the bit; the report of the session
    opened with them is the report made with the pass (HTML to the byte, figures included)."""
    s = load_session(saved, prefetch=True)
    try:
        assert isinstance(s.signal_bins, EnvelopeBins)  # no pass started
        assert s.signal is not None and s.signal_bins.samples > 0
        got = envelopes_pct(s)
        own = envelopes_pct(replace(s, signal_bins=None))
        assert np.array_equal(got.envelope_pct, own.envelope_pct, equal_nan=True)
        assert np.array_equal(got.saturated, own.saturated)
        assert got.fs == own.fs == pytest.approx(100.0)
        for f in ("rms_uv", "mains_uv", "mains_ratio", "diff_rms_uv", "clip_fraction"):
            assert np.array_equal(getattr(got.rest_quality, f), getattr(own.rest_quality, f)), f
    finally:
        close_session(s)
    d = saved.parent
    with_saved = load_session(saved)
    with_pass = replace(with_saved, signal_bins=None)
    try:
        write_report(with_saved, d / "a.html")
        write_report(with_pass, d / "b.html")
    finally:
        close_session(with_saved)
    assert (d / "a.html").read_bytes() == (d / "b.html").read_bytes()


def test_changed_analysis_or_file_never_uses_the_saved_envelopes(saved, tmp_path):
    # the analysis JSON changed (one byte): the saved envelopes belong to another analysis
    p = _copy(saved, tmp_path / "a")
    a = analysis_path(p)
    a.write_text(a.read_text(encoding="utf-8") + " ", encoding="utf-8")
    s = load_session(p, prefetch=True)
    try:
        assert isinstance(s.signal_bins, SignalPass)  # the report runs its own pass
    finally:
        close_session(s)
    # the recording changed (one data byte), same name, same analysis: another content id
    p = _copy(saved, tmp_path / "b")
    raw = bytearray(p.read_bytes())
    raw[-3] ^= 0x01
    p.write_bytes(bytes(raw))
    s = load_session(p, prefetch=True)
    try:
        assert isinstance(s.signal_bins, SignalPass)
    finally:
        close_session(s)
    # the saved data of another session copied over this one's
    p = _copy(saved, tmp_path / "c")
    other = tmp_path / "other.edf"
    write_edf_session(other, make_source(seed=12, duration=60.0, channels=SMALL),
                      patient="P-007", start=session_start(1))
    assert main(["analyze", str(other), "--json", str(analysis_path(other))]) == 0
    shutil.copy2(report_data_path(analysis_path(other)), report_data_path(analysis_path(p)))
    s = load_session(p, prefetch=True)
    try:
        assert isinstance(s.signal_bins, SignalPass)
    finally:
        close_session(s)


def _zip_version_damaged(raw: bytes) -> bytes:
    """The first central-directory entry asks for a zip version no reader has (zipfile raises
    NotImplementedError, not BadZipFile)."""
    i = raw.index(b"PK\x01\x02")
    return raw[:i + 6] + b"\xff\x00" + raw[i + 8:]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "npy header",
                                    "zip version"])
def test_damaged_saved_envelopes_are_ignored_and_the_report_still_works(saved, tmp_path,
                                                                        damage, capsys):
    p = _copy(saved, tmp_path / "d")
    data = report_data_path(analysis_path(p))
    raw = data.read_bytes()
    assert raw.count(b"{'descr'") >= 1
    data.write_bytes({"garbage": b"garbage" * 1000, "truncated": raw[: len(raw) // 2],
                      "empty": b"",
                      # an unclosed bracket in the .npy header (its parser's TokenError)
                      "npy header": raw.replace(b"{'descr'", b"{'descr(", 1),
                      "zip version": _zip_version_damaged(raw)}[damage])
    s = load_session(p, prefetch=True)
    try:
        assert isinstance(s.signal_bins, SignalPass)
    finally:
        close_session(s)
    out = tmp_path / "r.html"
    assert main(["report", str(p), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_analysis_written_elsewhere_saves_nothing_beside_it(saved, tmp_path):
    out = tmp_path / "elsewhere.json"
    assert main(["analyze", str(saved), "--json", str(out)]) == 0
    assert not report_data_path(out).exists()
    assert json.loads(out.read_text(encoding="utf-8"))["reps"]


def test_report_with_the_analysis_given_uses_envelopes_saved_beside_it(saved):
    """``report --analysis A.json``: envelopes saved beside A.json are used (here the saved
    analysis itself, named explicitly)."""
    s = load_session(saved, analysis=analysis_path(saved), prefetch=True)
    try:
        assert isinstance(s.signal_bins, EnvelopeBins)
    finally:
        close_session(s)


def test_saved_envelopes_start_the_rest_pass_when_the_session_opens(saved):
    """With saved envelopes, ``load_session(prefetch=True)`` starts the chain's pass over the
    rest period (the quality at rest) at once, in a thread: the report takes its result, the
    same to the bit as the pass run when the report is built; another configuration runs its
    own."""
    from emgfeedback.config import QualityConfig
    from emgfeedback.views.report.bins import chain_pass

    s = load_session(saved, prefetch=True)
    try:
        bins = s.signal_bins
        assert isinstance(bins, EnvelopeBins)
        assert s.signal is not None
        started = bins.rest_quality(s.signal, None, None, 10.0)
        fresh = chain_pass(s.signal, None, None, None)
        for name in ("rms_uv", "mains_ratio", "mains_uv", "diff_rms_uv", "clip_fraction"):
            assert np.array_equal(getattr(started, name), getattr(fresh, name))
        assert started.at == fresh.at
        assert bins.rest_quality(s.signal, None, QualityConfig(), 10.0) is not started
        scan = envelopes_pct(s)
        assert scan.rest_quality is started  # (the one started when the session opened)
    finally:
        close_session(s)
    plain = load_session(saved)  # (no prefetch: computed when the report is built)
    try:
        assert isinstance(plain.signal_bins, EnvelopeBins)
        assert np.array_equal(envelopes_pct(plain).rest_quality.rms_uv, fresh.rms_uv)
    finally:
        close_session(plain)


def test_figures_drawn_in_a_second_process_are_the_same(saved, tmp_path, monkeypatch):
    """``workers=2`` (what ``report`` does) draws some figures in a forked process, while this
    one draws the others and the PDF's pages: the HTML and the PDF are the same to the byte
    (every figure's pixels); a drawing process that fails (before or after it sent its
    figures' sizes, or hangs) leaves its figures to this one, with the same result and no
    partial file."""
    import os

    from emgfeedback.views.report import figures

    if not figures.can_fork():
        pytest.skip("no fork or a single core here: workers=2 draws in one process")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # the PDF's date: the files comparable
    s = load_session(saved)

    def same_as_serial(name: str) -> None:
        assert (tmp_path / "1.html").read_bytes() == (tmp_path / f"{name}.html").read_bytes()
        assert (tmp_path / "1.pdf").read_bytes() == (tmp_path / f"{name}.pdf").read_bytes()
        assert not list(tmp_path.glob("*.part"))

    try:
        serial = write_report(s, tmp_path / "1.html", tmp_path / "1.pdf")
        forked = write_report(s, tmp_path / "2.html", tmp_path / "2.pdf", workers=2)
        assert any(isinstance(f, figures.Drawn) for _k, _c, f in forked.figures)
        assert not any(isinstance(f, figures.Drawn) for _k, _c, f in serial.figures)
        assert [k for k, _c, _f in forked.figures] == [k for k, _c, _f in serial.figures]
        same_as_serial("2")
        assert stat.S_IMODE((tmp_path / "2.pdf").stat().st_mode) == 0o600
        from emgfeedback.views.report.pdf import page_lines, pages

        assert ([page_lines(p) for p in pages(serial)]
                == [page_lines(p) for p in pages(forked)])
        # the drawing process fails: its figures are drawn here
        parent = os.getpid()
        real = figures._rendered

        def fails_in_child(fig):  # type: ignore[no-untyped-def]
            if os.getpid() != parent:
                raise RuntimeError("no memory in the child")
            return real(fig)

        monkeypatch.setattr(figures, "_rendered", fails_in_child)
        again = write_report(s, tmp_path / "3.html", tmp_path / "3.pdf", workers=2)
        assert not any(isinstance(f, figures.Drawn) for _k, _c, f in again.figures)
        same_as_serial("3")
        write_report(s, tmp_path / "3b.html", workers=2)  # no PDF: the figures awaited at once
        assert (tmp_path / "1.html").read_bytes() == (tmp_path / "3b.html").read_bytes()
        # the child fails before it sends the sizes of its figures (making one)
        real_pixel_size = figures.pixel_size

        def no_size_in_child(fig):  # type: ignore[no-untyped-def]
            if os.getpid() != parent:
                raise MemoryError()
            return real_pixel_size(fig)

        monkeypatch.setattr(figures, "_rendered", real)
        monkeypatch.setattr(figures, "pixel_size", no_size_in_child)
        early = write_report(s, tmp_path / "6.html", tmp_path / "6.pdf", workers=2)
        assert not any(isinstance(f, figures.Drawn) for _k, _c, f in early.figures)
        same_as_serial("6")
        # the child announces another size than it draws: the PDF is laid out again

        def wrong_size_in_child(fig):  # type: ignore[no-untyped-def]
            w, h = real_pixel_size(fig)
            return (w + 7, h) if os.getpid() != parent else (w, h)

        from emgfeedback.views.report import pdf as report_pdf

        writes = []
        real_write = report_pdf._write_pdf

        def counted(*a):  # type: ignore[no-untyped-def]
            writes.append(1)
            return real_write(*a)

        monkeypatch.setattr(figures, "pixel_size", wrong_size_in_child)
        monkeypatch.setattr(report_pdf, "_write_pdf", counted)
        relaid = write_report(s, tmp_path / "7.html", tmp_path / "7.pdf", workers=2)
        assert any(isinstance(f, figures.Drawn) for _k, _c, f in relaid.figures)
        assert len(writes) == 2  # laid out with the sizes announced, then again
        same_as_serial("7")
        monkeypatch.setattr(report_pdf, "_write_pdf", real_write)
        monkeypatch.setattr(figures, "pixel_size", real_pixel_size)
        # the child's error path fails too (an exception that cannot be printed): the child
        # still ends there, it never returns into this code
        class Unprintable(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no text")

        def unprintable_in_child(fig):  # type: ignore[no-untyped-def]
            if os.getpid() != parent:
                raise Unprintable()
            return real(fig)

        monkeypatch.setattr(figures, "_rendered", unprintable_in_child)
        odd = write_report(s, tmp_path / "5.html", tmp_path / "5.pdf", workers=2)
        assert os.getpid() == parent
        assert not any(isinstance(f, figures.Drawn) for _k, _c, f in odd.figures)
        same_as_serial("5")
        # the drawing process hangs (a lock it can never take): stopped after the wait
        import time

        def hangs_in_child(fig):  # type: ignore[no-untyped-def]
            if os.getpid() != parent:
                time.sleep(3600)
            return real(fig)

        monkeypatch.setattr(figures, "_rendered", hangs_in_child)
        monkeypatch.setattr(figures, "FORK_WAIT_S", 1.0)
        t0 = time.monotonic()
        late = write_report(s, tmp_path / "4.html", tmp_path / "4.pdf", workers=2)
        assert time.monotonic() - t0 < 30
        assert not any(isinstance(f, figures.Drawn) for _k, _c, f in late.figures)
        same_as_serial("4")
    finally:
        close_session(s)


def test_a_pdf_that_fails_while_the_second_process_draws_stops_it(saved, tmp_path,
                                                                   monkeypatch):
    """The PDF's pages are drawn while the second process still draws its figures: a failure
    there (here an error laying out a page) stops that process at once (nothing waits for its
    figures), leaves no partial file and no earlier report changed; the next report is whole."""
    import os
    import time

    from emgfeedback.views.report import figures
    from emgfeedback.views.report import pdf as report_pdf

    if not figures.can_fork():
        pytest.skip("no fork or a single core here: workers=2 draws in one process")
    s = load_session(saved)
    children: list[int] = []
    real_fork = figures.fork_drawing

    def spy(makers):  # type: ignore[no-untyped-def]
        d = real_fork(makers)
        if d is not None:
            children.append(d.pid)
        return d

    def broken(report):  # type: ignore[no-untyped-def]
        raise RuntimeError("no room on the page")

    monkeypatch.setattr(figures, "fork_drawing", spy)
    try:
        (tmp_path / "r.pdf").write_bytes(b"earlier")
        with monkeypatch.context() as m:
            m.setattr(report_pdf, "pages", broken)
            t0 = time.monotonic()
            with pytest.raises(RuntimeError, match="no room"):
                write_report(s, tmp_path / "r.html", tmp_path / "r.pdf", workers=2)
            assert time.monotonic() - t0 < 20
        assert children
        with pytest.raises(ChildProcessError):  # stopped and reaped
            os.waitpid(children[-1], os.WNOHANG)
        assert (tmp_path / "r.pdf").read_bytes() == b"earlier"
        assert not (tmp_path / "r.html").exists() and not list(tmp_path.glob("*.part"))
        write_report(s, tmp_path / "r.html", tmp_path / "r.pdf", workers=2)
        assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    finally:
        close_session(s)


def test_analysis_with_another_chain_saves_nothing_and_a_stale_file_is_not_used(saved,
                                                                                tmp_path):
    """Envelopes of another DSP configuration are not the report's: none saved; the file of an
    earlier analysis left beside a new one is ignored (it was saved with the earlier JSON)."""
    p = _copy(saved, tmp_path / "e")
    data = report_data_path(analysis_path(p))
    before = data.read_bytes()
    cfg = tmp_path / "c.toml"
    cfg.write_text("[dsp]\nband = [30.0, 400.0]\n")
    assert main(["analyze", str(p), "--json", str(analysis_path(p)), "--config", str(cfg)]) == 0
    assert data.read_bytes() == before  # not rewritten
    s = load_session(p, prefetch=True)
    try:
        assert isinstance(s.signal_bins, SignalPass)  # the earlier envelopes: not this JSON's
    finally:
        close_session(s)


@pytest.mark.parametrize("fs", [2048.0, 512.0, 2000.0])
def test_envelope_bins_are_the_same_however_the_signal_is_split(fs):
    """A bin is summed in one reduction whatever blocks its samples came in: the analysis' 8 s
    blocks, the report's own pass and any other split give the same bins to the bit, also at
    rates where 8 s is not a whole number of bins and with a gap inside a bin."""
    rng = np.random.default_rng(int(fs))
    n = int(fs * 37) + 13
    env = rng.random((3, n)).T  # (samples, channels) view of (channels, samples), as the chain's
    raw = np.zeros((n, 3))
    gap = (5003, 5517)  # inside bins at both ends

    def run(step: int) -> np.ndarray:
        b = EnvelopeBins(fs, n, 3, None)
        for a in range(0, n, step):
            e = min(n, a + step)
            for lo, hi in ((a, min(e, gap[0])), (max(a, gap[1]), e)):
                if lo < hi:
                    b.add(lo, env[lo:hi], raw[lo:hi])
        return b.envelope()

    whole = run(n)
    assert np.isnan(whole).any() and np.isfinite(whole).sum() > 0.9 * whole.size
    for step in (7, 333, 4096, int(8 * fs), int(10 * fs) // 20 * 20):
        assert np.array_equal(run(step), whole, equal_nan=True), step


def test_pdf_interrupted_while_written_leaves_no_part_file_and_the_earlier_pdf(saved, tmp_path,
                                                                               monkeypatch):
    """Ctrl-C (or an error) while the PDF is written: the partial file, owner-only from its
    first byte, is removed and an earlier report at that name stays as it was."""
    from emgfeedback.views.report import pdf as pdf_mod

    s = load_session(saved)
    try:
        report = write_report(s, tmp_path / "r.html", tmp_path / "r.pdf")
        before = (tmp_path / "r.pdf").read_bytes()
        real = pdf_mod.pages

        def interrupted(rep):  # type: ignore[no-untyped-def]
            real(rep)
            assert stat.S_IMODE((tmp_path / "r.pdf.part").stat().st_mode) == 0o600
            raise KeyboardInterrupt

        monkeypatch.setattr(pdf_mod, "pages", interrupted)
        with pytest.raises(KeyboardInterrupt):
            pdf_mod.write_pdf(report, tmp_path / "r.pdf")
        assert not (tmp_path / "r.pdf.part").exists()
        assert (tmp_path / "r.pdf").read_bytes() == before
    finally:
        close_session(s)


def test_quality_at_rest_is_the_same_with_or_without_bins_to_fill(tmp_path):
    """At 512 Hz (a 10 ms bin is 5 samples, a quarter second 128) the report's pass takes its
    quality snapshots at rest on the bins' grid whether or not it fills bins, so a report with
    saved envelopes shows the same quality table as one that runs its own pass."""
    from emgfeedback.io.edf.recorder import Recorder
    from emgfeedback.io.importers import load
    from emgfeedback.sources.facesim import ModelParams
    from emgfeedback.sources.simulated import SimulatedSource
    from emgfeedback.views.report.bins import bins_for, chain_pass

    path = tmp_path / "P-0512.edf"
    src = SimulatedSource("session", duration=40.0, seed=5, speed=None,
                          params=replace(ModelParams(), fs=512.0), block_ms=1000.0)
    rec = Recorder(path, src.info, patient="P-0512", sidecar={"patient": "P-0512"})
    with src:
        while (c := src.read()) is not None:
            rec.write(c)
    rec.close()
    with load(path) as r:
        alone = chain_pass(r, None, None, None)
        filled = chain_pass(r, None, None, bins_for(r))
    for f in ("rms_uv", "mains_ratio", "mains_uv", "diff_rms_uv", "clip_fraction"):
        assert np.array_equal(getattr(alone, f), getattr(filled, f)), f


def test_saving_envelopes_interrupted_leaves_no_partial_file(saved, tmp_path, monkeypatch):
    """Ctrl-C (or any error) while the envelopes are written: no partial file of patient data
    is left, the interruption goes on to the caller, and an earlier file stays as it was."""
    from emgfeedback.io.importers import load
    from emgfeedback.views.report import bins as report_bins
    from emgfeedback.views.report.load import content_id

    p = _copy(saved, tmp_path / "i")
    a = analysis_path(p)
    data = report_data_path(a)
    before = data.read_bytes()
    rec = load(p)
    try:
        b = report_bins.bins_for(rec)
        report_bins.chain_pass(rec, None, None, b)

        def interrupted(f, **arrays):  # type: ignore[no-untyped-def]
            f.write(b"PK\x03\x04 half a zip")
            raise KeyboardInterrupt

        monkeypatch.setattr(report_bins.np, "savez", interrupted)
        with pytest.raises(KeyboardInterrupt):
            report_bins.save_report_data(data, rec, b, content_id(rec), a.read_bytes())
        assert data.read_bytes() == before
        assert sorted(x.name for x in data.parent.iterdir() if x.name.endswith(".tmp")) == []
    finally:
        rec.close()


def test_bench_figure_costs_times_every_figure_of_the_report(saved, tmp_path):
    """``bench/bench_report.py --figures FILE``: every figure the report draws, with its CPU
    seconds made, drawn and encoded, its pixels at the PDF's resolution and the vertices of
    its line collections (the reps overlaid: each rep's target and quiet lines, whole)."""
    import importlib.util
    import sys

    from emgfeedback.views.report import figures
    from emgfeedback.views.summary import rep_rows

    spec = importlib.util.spec_from_file_location(
        "bench_report_under_test", Path(__file__).resolve().parents[1] / "bench" / "bench_report.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    try:
        spec.loader.exec_module(bench)
        path = _copy(saved, tmp_path / "c")
        costs = bench.figure_costs(path, repeat=1)
    finally:
        sys.modules.pop(spec.name, None)
    assert list(costs) == ["envelopes", "overlays", "bars", "symmetry"]
    for c in costs.values():
        assert set(c) == {"make", "draw", "html_png", "pdf_png", "vertices", "pixels"}
        assert all(c[k] >= 0.0 for k in ("make", "draw", "html_png", "pdf_png"))
        assert c["draw"] > 0.0 and c["pixels"] > 0
    session = load_session(path)
    try:
        rows = [r for r in rep_rows(session.analysis) if r.target in session.channels]
    finally:
        close_session(session)
    assert rows and costs["overlays"]["vertices"] >= 2 * len(rows)  # (two points a line at least)
    # 11 inches wide at the PDF's resolution
    assert costs["overlays"]["pixels"] % (11 * figures.RENDER_DPI) == 0


def test_placement_figure_rasterised_while_the_drawing_side_is_imported(saved, tmp_path):
    """``report --pdf``: the placement figure's ``rsvg-convert`` starts before matplotlib is
    imported (the import holds one core; the rasterisation runs on the other), and the PDF
    writer takes that rasterisation (none left pending; a PNG of the figure)."""
    import subprocess
    import sys

    if shutil.which("rsvg-convert") is None:
        pytest.fail("rsvg-convert not found: install librsvg2-bin (scripts/setup.sh does)")
    path = _copy(saved, tmp_path / "c")
    code = f"""
import sys
seen = []
class Hook:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" and not seen:
            from emgfeedback.views.report import placement
            seen.append(dict(placement._PLACEMENT))
        return None
sys.meta_path.insert(0, Hook())
from emgfeedback.cli import main
assert main(["report", r"{path}", "--pdf", "--out", r"{tmp_path / 'r.html'}"]) == 0
from emgfeedback.views.report import placement
started = seen[0]
assert len(started) == 1, started  # the rasterisation was on its way
(svg, dpi), = started
assert dpi == 150 and svg == placement.placement_svg()
assert not placement._PLACEMENT  # (taken by the PDF writer)
print(len(started[(svg, dpi)].result()))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]
                                                            / "src")})
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) > 1000  # a PNG of the figure
    from emgfeedback.views.report import placement

    png = placement.placement_png(placement.placement_svg())
    assert png is not None and png.startswith(b"\x89PNG")
    assert (tmp_path / "r.pdf").stat().st_size > 0
