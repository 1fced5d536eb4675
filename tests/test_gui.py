"""The live GUI (views/gui): a whole clinic session driven on the simulated board, offscreen.

The simulated patient (scenario ``session``, seed 3) follows its own script: rest, MVC per region,
then smile reps; its ground truth plants one oral-ocular synkinesis (left eye) in the first smile
rep and none in reps 2 and 3.  The tests assert what the window shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402

from emgfeedback.config import Config  # noqa: E402
from emgfeedback.dsp.chain import Chain  # noqa: E402
from emgfeedback.errors import DeviceNotFound  # noqa: E402
from emgfeedback.io.edf import read_edf, read_sidecar  # noqa: E402
from emgfeedback.sources.simulated import SimulatedSource  # noqa: E402
from emgfeedback.stream import Chunk, SourceBase  # noqa: E402
from emgfeedback.views.gui.live import decimate_minmax  # noqa: E402
from emgfeedback.views.gui.program import PROGRAMS, Feedback, validate_patient_id  # noqa: E402
from emgfeedback.views.gui.screens import ConnectRequest  # noqa: E402
from emgfeedback.views.gui.window import MainWindow  # noqa: E402

SEED = 3
PROGRAM = "Smile x3 (clinic check)"


def test_patient_id_must_be_pseudonymous() -> None:
    assert validate_patient_id("P-0042") is None
    assert validate_patient_id("AB-2024-17") is None
    for bad in ("", "Maria", "Jan Smit", "P 0042", "x1", "é-123", "ab_12", "DEMO-1"):
        msg = validate_patient_id(bad)
        assert msg is not None and ("P-0042" in msg), bad


def test_decimate_minmax_keeps_spikes_and_newest_sample() -> None:
    y = np.zeros((20000, 2))
    y[12345, 0] = 500.0
    y[-1, 1] = -7.0
    idx, d = decimate_minmax(y, 1000)
    assert d.shape == (2000, 2)
    assert d[:, 0].max() == 500.0
    assert d[-2:, 1].min() == -7.0 and idx[-1] == 19999.0


@pytest.fixture
def window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    win = MainWindow(Config(), record_dir=tmp_path, fps=30, db=tmp_path / "history.sqlite")
    win.open_url = lambda url: win.opened.append(url.toLocalFile())  # type: ignore[attr-defined]
    win.opened = []  # type: ignore[attr-defined]
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_complete_session_on_the_simulated_board(qtbot, window: MainWindow,
                                                 tmp_path: Path) -> None:
    win = window
    truth = SimulatedSource("session", duration=130.0, seed=SEED, speed=None).script
    smiles = [c for c in truth.cues if c.text == "smile"][:3]
    planted = [e for e in truth.events if e.exercise == "smile" and e.start < smiles[-1].stop]
    assert [(e.channel, smiles[0].start <= e.start < smiles[0].stop) for e in planted] == [
        ("L-OOC", True)], "seed no longer plants one event in rep 1 only"

    # Connect: refused without a pseudonymous id, then accepted.
    cs = win.connect_screen
    cs.speed, cs.seed = 15.0, SEED
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

    # Calibration: the screen follows the rest and MVC cues and shows the values.
    qtbot.waitUntil(lambda: win.current_screen == "calibration", timeout=15000)
    qtbot.waitUntil(lambda: "Maximum effort" in win.calibration_screen.instruction.text(),
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
    red = [(s, ch) for s, ch in win.exercise_screen.red_log if ch == "EMG L-OOC"]
    assert red, "the quiet bar of the left eye never turned red"
    # Red while the planted event ran (the window pulls at 30 Hz: allow one tick of signal).
    assert all(ev.start <= s <= ev.stop + 0.5 * fs for s, _ in red), (red, ev)
    assert {ch for _, ch in win.exercise_screen.red_log} == {"EMG L-OOC"}

    summary = win.summary_screen.table
    assert summary.rowCount() == 6
    rows = [[summary.item(r, c).text() for c in range(summary.columnCount())]
            for r in range(summary.rowCount())]
    assert [(r[0], r[2]) for r in rows] == [("1", "L"), ("1", "R"), ("2", "L"), ("2", "R"),
                                           ("3", "L"), ("3", "R")]
    assert rows[0][8] == "yes: L-OOC" and all(r[8] == "no" for r in rows[1:])
    assert "synkinesis in 1 of 3 reps" in win.summary_screen.figures.text()

    # The session file is complete when the session ends: EDF+ and its sidecar.
    qtbot.waitUntil(lambda: bool(win.saved_recordings), timeout=15000)
    edf = Path(win.saved_recordings[0])
    assert edf.parent == tmp_path and edf.suffix == ".edf" and edf.is_file()
    sc = read_sidecar(edf)
    assert sc["status"] == "complete" and sc["patient"] == "P-0042"
    assert sc["program"]["name"] == PROGRAM and sc["from_stream_start"] is True
    assert sorted(sc["calibration"]) == sorted(c.replace("EMG ", "") for c in sc["channels"])
    assert all(c["mvc_uv"] > 0 and c["mvc_trials"] == 3 for c in sc["calibration"].values())
    assert win.record_btn.text() == "Record" and not win.record_btn.isChecked()
    assert win.summary_screen.recording.text().startswith(f"Recording: {edf}")
    rec = read_edf(edf)
    assert any(m.text == "smile" for m in rec.markers) and rec.lost_samples == 0
    assert rec.n_samples >= win.live.total - 200  # every sample shown is in the file
    rec.close()
    assert not win.errors, win.errors

    # Replaying the file reproduces the live rep table exactly (samples on the file's grid).
    assert _replay_table(edf, 10.0) == rows
    assert _replay_table(edf, 3.7) == rows


def _replay_table(path: Path, block_ms: float) -> list[list[str]]:
    """The summary rows of a replay of ``path`` in blocks of ``block_ms`` (no window)."""
    from emgfeedback.session import Session
    from emgfeedback.sources.replay import ReplaySource
    from emgfeedback.views.gui.program import FeedbackSnapshot
    from emgfeedback.views.gui.screens import SummaryScreen

    fb = Feedback(PROGRAMS[PROGRAM], "L")
    session = Session(ReplaySource(path, speed=None, block_ms=block_ms), Config())
    session.add(fb)
    session.run()
    snap = fb.snapshot()
    assert isinstance(snap, FeedbackSnapshot)
    screen = SummaryScreen()
    screen.refresh(snap, "L")
    t = screen.table
    return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]


class _NoCues(SourceBase):
    """A simulated board without its script's cues: a live board, where the GUI leads."""

    def __init__(self) -> None:
        self.inner = SimulatedSource("rest", duration=60.0, seed=1, speed=None)
        self.info = self.inner.info

    def open(self) -> None:
        self.inner.open()

    def start(self) -> None:
        self.inner.start()

    def read(self, timeout: float | None = None) -> Chunk | None:
        c = self.inner.read(timeout)
        return None if c is None else Chunk(c.data, c.start, c.fs, c.channels, c.status)

    @property
    def finished(self) -> bool:
        return self.inner.finished


def test_leading_program_puts_cues_into_the_stream_at_sample_counts(qtbot, window) -> None:
    win = window
    win.start_source(_NoCues, ConnectRequest("simavr", {}, "P-0007", PROGRAM, "L", record=False))
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
