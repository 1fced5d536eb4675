"""The live GUI (views/gui): a whole clinic session driven on the simulated board, offscreen.

The simulated patient (scenario ``session``, seed 3) follows its own script: rest, MVC per region,
then smile reps; its ground truth plants one oral-ocular synkinesis (left eye) in the first smile
rep and none in reps 2 and 3.  The tests assert what the window shows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from emgfeedback.config import Config
from emgfeedback.errors import ConfigError, DeviceNotFound
from emgfeedback.io.edf.reader import read_edf
from emgfeedback.io.edf.sidecar import read_sidecar
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.stream import RingBuffer, SourceBase
from emgfeedback.views.gui import after
from emgfeedback.views.gui.live import ColumnCache
from emgfeedback.validate import validate_patient_id
from emgfeedback.views.gui.screens import ConnectRequest
from emgfeedback.views.gui.window import MainWindow

from _sources import NoCues

SEED = 3
PROGRAM = "Smile x3 (clinic check)"


def test_patient_id_must_be_pseudonymous() -> None:
    """The Connect screen's rule is the project's one rule, with a reason naming an example."""
    assert validate_patient_id("P-0042") == "P-0042"
    assert validate_patient_id("AB-2024-17") == "AB-2024-17"
    for bad in ("", "Maria", "Jan Smit", "P 0042", "x1", "é-123", "ab_12", "DEMO-1"):
        with pytest.raises(ConfigError, match="P-0042"):
            validate_patient_id(bad)


def test_column_cache_equals_a_full_reduction_whatever_the_chunking() -> None:
    """The incremental per-column min/max and mean of the Traces screen equal a reduction of
    the whole window at every frame: chunks of any size, a gap, a spike, a frame skipped."""
    rng = np.random.default_rng(4)
    total, nch, window, step = 9000, 3, 2000, 37
    x = rng.normal(0.0, 10.0, (total, nch))
    x[5000, 1] = 900.0  # a spike must survive
    buf = RingBuffer(2400, nch)
    mm = ColumnCache(buf, window, step, "minmax")
    mean = ColumnCache(buf, window, step * 4, "mean")
    pos, frame, spike_frames, gap_shown = 0, 0, 0, False
    while pos < total:
        k = int(rng.integers(1, 300))
        if 3000 <= pos < 3400:  # lost samples: the ring buffer writes NaN
            pos += k
            continue
        buf.write(x[pos:pos + k], pos)
        pos = min(total, pos + k)
        frame += 1
        if frame % 7 == 0:
            continue  # the GUI skipped a frame
        whole, first = buf.latest(buf.total)
        for cache, how in ((mm, "minmax"), (mean, "mean")):
            starts, vals = cache.update(buf.total)
            assert starts[0] >= buf.total - window and starts[-1] <= buf.total - 1
            for c, s0 in enumerate(starts):
                block = whole[s0 - first:min(s0 + cache.step, buf.total) - first]
                with np.errstate(invalid="ignore"):
                    want = ([block.min(axis=0), block.max(axis=0)] if how == "minmax"
                            else [block.mean(axis=0)])
                np.testing.assert_array_equal(vals[c], np.array(want))
            if how == "minmax" and np.nanmax(vals[:, 1, 1]) == 900.0:
                spike_frames += 1
        gap_shown |= bool(np.isnan(mm.update(buf.total)[1]).any())
    assert spike_frames > 3 and gap_shown  # the spike was drawn while in the window; so was the gap


def test_traces_draw_one_band_per_channel_and_break_at_gaps(qtbot) -> None:
    """Two curves for all channels; a gap's NaN never reaches the curve and breaks the line."""
    from emgfeedback.stream import Processed, Status
    from emgfeedback.views.gui.live import LiveBuffers
    from emgfeedback.views.gui.screens import TracesScreen

    chans = ("EMG L-ZYG", "EMG L-OOC", "EMG R-ZYG")
    live = LiveBuffers(12.0)
    rng = np.random.default_rng(0)
    for start in list(range(0, 8000, 20)) + list(range(9000, 20000, 20)):  # 0.5 s lost
        x = rng.normal(0.0, 30.0, (20, 3))
        live.feed(Processed(start, 2000.0, chans, x, x, np.abs(x), None, Status(), ()))
    screen = TracesScreen(bins=400)
    qtbot.addWidget(screen)
    screen.set_channels(chans)
    screen.refresh(live, [(2000, 4000, "rest", -1), (8000, 9000, "gap", -1)])
    x, y = screen.curve_sig.getData()
    assert len(x) == len(y) and len(x) % 6 == 0 and np.isfinite(y).all()  # min+max per column
    assert x.min() >= -10.0 and x.max() <= 0.0
    bands = y.reshape(3, -1)
    for i in range(3):  # channel i stays in its band, first channel on top
        assert (np.abs(bands[i] - (2 - i)) <= 0.5).all()
    conn = screen.curve_sig.opts["connect"]
    gap = (x[: len(x) // 3] > (8000 - 20000) / 2000.0) & (x[: len(x) // 3] < (9000 - 20000) / 2000.0)
    assert gap.any() and not conn[: len(x) // 3][gap].any()
    assert screen.shown_total == 20000 and len(screen.shading._rects) == 2


@pytest.fixture
def window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    win = MainWindow(Config(), record_dir=tmp_path, fps=30, db=tmp_path / "history.sqlite")
    win.open_url = lambda url: win.opened.append(url.toLocalFile())  # type: ignore[attr-defined]
    win.opened = []  # type: ignore[attr-defined]
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_complete_session_on_the_simulated_board(qtbot, window: MainWindow, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    win = window
    truth = SimulatedSource("session", duration=130.0, seed=SEED, speed=None).script
    smiles = [c for c in truth.cues if c.text == "smile"][:3]
    planted = [e for e in truth.events if e.exercise == "smile" and e.start < smiles[-1].stop]
    assert [(e.channel, smiles[0].start <= e.start < smiles[0].stop) for e in planted] == [
        ("L-OOC", True)], "seed no longer plants one event in rep 1 only"

    # Connect: refused without a pseudonymous id, then accepted.
    cs = win.connect_screen
    cs.speed, cs.seed = 15.0, SEED
    ticks: list[int] = []  # the signal position of every redraw
    win.frame_hook = ticks.append
    cs.set_choice("simulated", "session", "Maria", PROGRAM)
    qtbot.mouseClick(cs.connect_btn, Qt.MouseButton.LeftButton)
    assert "P-0042" in cs.message.text() and win.worker is None
    cs.patient.setText("P-0042")
    assert cs.record.isChecked()  # recording from the first sample is the default
    qtbot.mouseClick(cs.connect_btn, Qt.MouseButton.LeftButton)
    assert win.worker is not None and win.current_screen == "check"
    # The record button tells the truth: recording once the session thread attached the recorder.
    qtbot.waitUntil(lambda: win.record_btn.text() == "Stop recording", timeout=10000)
    assert win.record_btn.isChecked() and win.recording is not None
    assert win.recording.state == "on"

    # Electrode check: a light and a reason per channel.
    qtbot.waitUntil(lambda: len(win.check_screen.states) == 8, timeout=10000)
    assert all(s in ("green", "amber", "red") for s, _ in win.check_screen.states)
    assert all(reason for _, reason in win.check_screen.states)

    # The electrode check waits for the therapist: the simulated patient's stream is held at its
    # first cue (no sample lost) until Start calibration.
    assert win.ctl.held is not None
    qtbot.waitUntil(lambda: win.ctl.held.waiting_for_start, timeout=10000)
    held_at = win.live.total
    qtbot.wait(300)
    assert win.current_screen == "check" and win.live.total == held_at
    qtbot.mouseClick(win.check_screen.start_btn, Qt.MouseButton.LeftButton)

    # Calibration: the screen follows the rest and MVC cues and shows the values.
    qtbot.waitUntil(lambda: win.current_screen == "calibration", timeout=15000)
    qtbot.waitUntil(lambda: "Full strength" in win.calibration_screen.instruction.text(),
                    timeout=15000)
    qtbot.waitUntil(lambda: win.current_screen == "exercise", timeout=30000)
    table = win.calibration_screen.table
    mvc = [float(table.item(r, 3).text()) for r in range(table.rowCount())]
    rest = [float(table.item(r, 1).text()) for r in range(table.rowCount())]
    assert len(mvc) == 8 and all(m > 20 * r for m, r in zip(mvc, rest))

    # Exercise: three smile reps, then the summary.
    qtbot.waitUntil(lambda: win.current_screen == "summary", timeout=30000)
    fs = truth.fs
    ev = planted[0]
    assert win.feedback is not None and win.feedback.clinic is not None
    live_events = win.summary_screen.events
    # The detector found the planted event (left eye during rep 1) ...
    mine = [e for e in live_events if e.channel == "L-OOC" and e.rep == 1]
    assert mine and mine[0].onset <= ev.stop and ev.start <= (mine[0].offset or 0)
    # ... and the quiet bar turned red when, and only when, the detector said so: never before
    # its alert, and at the first redraw after it (the flag waits for the redraw, however late
    # a loaded machine makes it; one chunk of at most 1 s may land between the two snapshots).
    red = win.exercise_screen.red_log
    assert ("EMG L-OOC" in {ch for _, ch in red}
            and {ch for _, ch in red} == {f"EMG {e.channel}" for e in live_events})
    for s, ch in red:
        assert any(f"EMG {e.channel}" == ch and e.alert <= s
                   and s <= min([t for t in ticks if t >= e.alert] or [s]) + fs
                   for e in live_events), (s, ch, live_events)

    summary = win.summary_screen.table
    # the last rep is finished by the detector when the session closes, after the switch
    qtbot.waitUntil(lambda: summary.rowCount() == 6, timeout=15000)
    rows = [[summary.item(r, c).text() for c in range(summary.columnCount())]
            for r in range(summary.rowCount())]
    assert [(r[0], r[2]) for r in rows] == [("1", "L"), ("1", "R"), ("2", "L"), ("2", "R"),
                                           ("3", "L"), ("3", "R")]
    assert rows[0][-1].startswith("yes:") and "L-OOC" in rows[0][-1]
    assert "reps" in win.summary_screen.figures.text()

    # The session file is complete when the session ends: EDF+ and its sidecar.
    qtbot.waitUntil(lambda: bool(win.saved_recordings), timeout=15000)
    edf = Path(win.saved_recordings[0])
    assert edf.parent == tmp_path and edf.suffix == ".edf" and edf.is_file()
    sc = read_sidecar(edf)
    assert sc["status"] == "complete" and sc["patient"] == "P-0042"
    assert sc["program"]["name"] == PROGRAM and sc["from_stream_start"] is True
    assert sc["affected_side"] == "L"
    cal = win.feedback.clinic.calibration
    assert cal is not None and sc["calibration"] == cal.to_json()
    assert all(c["mvc_source"] == "mvc" and len(c["mvc_trials_uv"]) == 3
               for c in sc["calibration"].values())
    assert win.record_btn.text() == "Record" and not win.record_btn.isChecked()
    assert win.summary_screen.recording.text().startswith(f"Recording: {edf}")
    rec = read_edf(edf)
    assert any(m.text == "smile" for m in rec.markers) and rec.lost_samples == 0
    assert rec.n_samples >= win.live.total - 200  # every sample shown is in the file
    # Each synkinesis alert is annotated in the file at the sample it was raised.
    assert [(m.sample, m.text) for m in rec.markers if m.text.startswith("synkinesis")] == [
        (e.alert, f"synkinesis {e.channel}") for e in live_events]
    rec.close()

    # `analyze` of the recording gives exactly the table shown live: same rep results (every
    # number), same events.
    from emgfeedback.app.analyze import analyze, load_for_analysis
    from emgfeedback.clinical.montage import Montage
    from emgfeedback.app.program import resolve_program
    from emgfeedback.views.gui.screens import rep_rows

    offline = load_for_analysis(edf)
    a = analyze(offline, Montage.from_labels(offline.channels, "L"), resolve_program(PROGRAM))
    offline.close()
    assert tuple(a.reps) == win.summary_screen.reps and tuple(a.events) == live_events
    assert rep_rows(tuple(a.reps), tuple(a.events)) == rows

    # After the recording: analysis JSON, patient history, then the report on request.
    qtbot.waitUntil(lambda: win.summary_screen.report_btn.isEnabled(), timeout=30000)
    assert not win.errors, win.errors
    assert "stored in the patient history" in win.summary_screen.after.text()
    stored = json.loads(after.analysis_path(edf).read_text(encoding="utf-8"))
    assert stored["reps"] == json.loads(json.dumps(a.to_json()["reps"]))
    # the report's envelopes saved with it (owner only), used by a report of this session
    from emgfeedback.io.edf.sidecar import report_data_path
    from emgfeedback.views.report import close_session, load_session
    from emgfeedback.views.report.bins import EnvelopeBins

    data = report_data_path(after.analysis_path(edf))
    assert data.is_file() and data.stat().st_mode & 0o077 == 0
    s = load_session(edf, prefetch=True)
    try:
        assert isinstance(s.signal_bins, EnvelopeBins)
    finally:
        close_session(s)
    # the window's own report uses them too: no pass over the signal fills envelope bins
    def no_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("the window's report ran a pass over the signal")

    monkeypatch.setattr(EnvelopeBins, "add", no_pass)
    html = after.write_session_report(edf)
    assert html.is_file() and "Whole session: envelopes" in html.read_text(encoding="utf-8")
    from emgfeedback.views.history import History

    with History(tmp_path / "history.sqlite") as h:
        assert [x.source for x in h.sessions("P-0042")] == [edf.name]
    qtbot.mouseClick(win.summary_screen.report_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(win.reports), timeout=60000)
    report = Path(win.reports[0])
    assert report == after.report_path(edf) and report.stat().st_size > 10000
    assert win.opened == [str(report)]  # type: ignore[attr-defined]
    assert "P-0042" in report.read_text(encoding="utf-8")


def test_leading_program_puts_cues_into_the_stream_at_sample_counts(qtbot, window) -> None:
    win = window
    win.start_source(NoCues, ConnectRequest("simavr", {}, "P-0007", PROGRAM, "L", record=False))
    assert win.runner is not None and win.runner.leading
    assert win.record_btn.text() == "Record" and not win.record_btn.isChecked()
    qtbot.waitUntil(lambda: win.check_screen.start_btn.isVisible() and bool(win.live.ready),
                    timeout=10000)
    qtbot.mouseClick(win.check_screen.start_btn, Qt.MouseButton.LeftButton)
    assert win.current_screen == "calibration"
    qtbot.waitUntil(lambda: len([m for m in win.live.status().markers
                                 if m.text.startswith("mvc")]) >= 2, timeout=20000)
    ms = win.live.status().markers
    rest = next(m for m in ms if m.text == "rest")
    mvc = [m for m in ms if m.text.startswith("mvc")][:2]
    fs = win.live.fs
    assert rest.duration == 10 * fs
    assert {m.text for m in mvc} == {"mvc L-FRO", "mvc R-FRO"}
    # Next cue after the rest period and a 2 s pause, to within one 10 ms chunk.
    assert all(0 <= m.sample - (rest.sample + rest.duration + 2 * fs) <= 0.01 * fs for m in mvc)
    assert all(m.duration == 3 * fs for m in mvc)
    win.calibration_screen.redo.emit("ZYG")
    assert "ZYG" in win.runner.snapshot().pending_redo
    win.add_marker()
    qtbot.waitUntil(lambda: any(m.text == "marker" for m in win.live.status().markers),
                    timeout=5000)

    # Record during a session: the file starts at the next chunk, the button follows the
    # recorder's real state, and stopping closes the file (session thread, between chunks).
    qtbot.mouseClick(win.record_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.record_btn.text() == "Stop recording", timeout=5000)
    assert win.record_btn.isChecked()
    qtbot.waitUntil(lambda: win.recording.seconds >= 0.5, timeout=5000)
    qtbot.mouseClick(win.record_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(win.saved_recordings), timeout=5000)
    assert win.record_btn.text() == "Record" and not win.record_btn.isChecked()
    edf = Path(win.saved_recordings[0])
    sc = read_sidecar(edf)
    assert sc["status"] == "complete" and sc["from_stream_start"] is False
    assert sc["first_sample"] > 0 and sc["samples"] >= 0.5 * win.live.fs


def test_programs_are_the_clinical_engines_toml_programs(qtbot, window, tmp_path: Path) -> None:
    from emgfeedback.clinical.exercises import default_program

    cs = window.connect_screen
    names = [cs.program.itemText(i) for i in range(cs.program.count())]
    assert {"Smile x3 (clinic check)", "Standard NMR", default_program().name} <= set(names)
    good = tmp_path / "p7.toml"
    good.write_text('name = "P7 lips"\n[[exercise]]\nname = "pucker"\nreps = 2\n', "utf-8")
    cs.add_program_file(str(good))
    assert cs.program.currentText() == "P7 lips (p7.toml)"
    cs.set_choice("simulated", "session", "P-0007")
    req = cs.request()
    assert not isinstance(req, str) and req.program == str(good)
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[exercise]]\nname = "smiel"\n', "utf-8")
    cs.add_program_file(str(bad))
    assert "smiel" in cs.message.text() and cs.program.currentText() == "P7 lips (p7.toml)"
    window.start_source(NoCues, req)  # the window runs the file's program
    assert window.program is not None and window.program.name == "P7 lips"
    assert window.runner is not None and window.runner.snapshot().reps_total == 2


class _Broken(SourceBase):
    def __init__(self) -> None:
        from emgfeedback.stream import SourceInfo

        self.info = SourceInfo("serial:/dev/ttyUSB9", 1000.0, ("EMG L-ZYG",))

    def open(self) -> None:
        raise DeviceNotFound("no board on /dev/ttyUSB9: check the cable, or run "
                             "'emgfeedback ports'")


def test_an_error_in_the_session_thread_is_one_clear_line_in_the_window(qtbot, window) -> None:
    window.start_source(_Broken, ConnectRequest("serial:/dev/ttyUSB9", {}, "P-0001", PROGRAM))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
    assert window.banner.text().startswith("no board on /dev/ttyUSB9")
    assert "\n" not in window.banner.text()


def _xvfb_missing() -> bool:
    return shutil.which("xvfb-run") is None or shutil.which("Xvfb") is None


@pytest.mark.xvfb
@pytest.mark.skipif(_xvfb_missing(), reason="needs Xvfb: apt-get install xvfb xauth libegl1 "
                    "libgl1 libfontconfig1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 "
                    "libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 "
                    "libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 (docs/toolchain.md)")
def test_window_under_xvfb_with_xcb(tmp_path: Path) -> None:
    out = tmp_path / "xcb.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24", sys.executable, "-m", "emgfeedback",
           "demo", "--speed", "1", "--screenshot", str(out), "--after", "5"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    img = QImage(str(out))
    assert not img.isNull() and img.width() >= 800
    colours = {img.pixel(x, y) for x in range(0, img.width(), 37) for y in range(0, img.height(), 29)}
    assert len(colours) > 5, "blank screenshot"
