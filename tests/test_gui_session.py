"""A whole session in the window and in patient mode, as a therapist and a patient live it
(issue 12): the cue text of every phase, the alert words, the summary, and the layout at
1280x720, 1366x768 and 1920x1080 (every widget inside the window, no text cut off).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QApplication,
    QLabel,
    QPushButton,
    QWidget,
)

from emgfeedback.config import Config
from emgfeedback.io.edf import read_sidecar
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.views.gui.controller import ConnectRequest
from emgfeedback.views.gui.widgets import RegionBar
from emgfeedback.views.gui.window import MainWindow
from emgfeedback.views.gui.words import plain_problems

SIZES = ((1280, 720), (1366, 768), (1920, 1080))
PROGRAM = "Smile x3 (clinic check)"
#: Scenario -> (seed, the region the simulated patient lets join in during the smiles).
SCENARIOS = {"session": (3, "EMG L-OOC"), "smile-synkinesis": (3, "EMG L-OOC")}
SPEED = 15.0


def _inside_scroller(w: QWidget, top: QWidget) -> bool:
    """Inside a scroll area's viewport or an item view: its content scrolls, not clipped."""
    p = w.parentWidget()
    while p is not None and p is not top:
        if isinstance(p, QAbstractScrollArea):
            return True
        p = p.parentWidget()
    return False


def layout_problems(win: QWidget) -> list[str]:
    """Every visible widget inside the window; no label, button or bar text cut off."""
    app = QApplication.instance()
    assert app is not None
    app.processEvents()
    win.grab()  # paint everything once (the bars record their texts while painting)
    out: list[str] = []
    frame = win.rect()
    if win.minimumSizeHint().width() > frame.width() or \
            win.minimumSizeHint().height() > frame.height():
        out.append(f"window needs {win.minimumSizeHint()} > {frame.size()}")
    for w in win.findChildren(QWidget):
        if not w.isVisible() or _inside_scroller(w, win) or w.width() <= 0:
            continue
        w.ensurePolished()
        r = QRect(w.mapTo(win, QPoint(0, 0)), w.size())
        name = f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r:.40}"
        if not frame.adjusted(-1, -1, 1, 1).contains(r):
            out.append(f"{name} at {r} outside the window {frame}")
        if isinstance(w, QLabel) and w.text() and w.textFormat() != Qt.TextFormat.RichText:
            cr = w.contentsRect()
            if w.wordWrap():
                need = w.heightForWidth(w.width())  # the whole label, margins included
                if need > w.height() + 1:
                    out.append(f"{name}: needs {need} px height, has {w.height()}")
            else:
                fm = w.fontMetrics()
                need = max(fm.horizontalAdvance(line) for line in w.text().split("\n"))
                if need > cr.width() + 1:
                    out.append(f"{name}: needs {need} px width, has {cr.width()}")
        if isinstance(w, QPushButton) and w.text():
            need = w.fontMetrics().horizontalAdvance(w.text())
            if need > w.width() - 6:
                out.append(f"{name}: button text needs {need} px, has {w.width()}")
        if isinstance(w, RegionBar) and not w.texts_fit():
            out.append(f"RegionBar {w.title}: {w.drawn_texts}")
    return out


def check_sizes(win: MainWindow, where: str, shots: Path) -> None:
    """The layout at the three sizes, a screenshot of each (kept in ``shots``).  The redraw
    timer pauses meanwhile, so each check sees one settled frame (the stream goes on)."""
    running = win.timer.isActive()
    win.timer.stop()
    try:
        _check_sizes(win, where, shots)
    finally:
        if running:
            win.timer.start()


def _check_sizes(win: MainWindow, where: str, shots: Path) -> None:
    app = QApplication.instance()
    assert app is not None
    for w, h in SIZES:
        win.resize(w, h)
        for _ in range(3):  # layouts are activated by posted events
            app.processEvents()
        problems = layout_problems(win)
        assert win.width() == w and win.height() == h, (where, w, h, win.size())
        win.grab().save(str(shots / f"{where}-{w}x{h}.png"))
        assert not problems, (where, w, h, problems)


def _factory(scenario: str) -> Any:
    seed = SCENARIOS[scenario][0]
    return lambda: SimulatedSource(scenario, duration=160.0, seed=seed, speed=SPEED)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    d = tmp_path / "shots"
    d.mkdir()
    return d


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_whole_session_in_the_window(qtbot: Any, tmp_path: Path, shots: Path,
                                     scenario: str) -> None:
    win = MainWindow(Config(), record_dir=tmp_path, db=tmp_path / "history.sqlite",
                     sound_sink=lambda buf, rate: None)
    win.open_url = lambda url: None
    qtbot.addWidget(win)
    win.show()
    assert win.current_screen == "connect"
    check_sizes(win, "connect", shots)
    win.resize(1280, 720)
    win.start_source(_factory(scenario), ConnectRequest("simulated", {}, "P-0042", PROGRAM, "L"))

    # The electrode check waits for the therapist.
    assert win.current_screen == "check"
    qtbot.waitUntil(lambda: win.ctl.held is not None and win.ctl.held.waiting_for_start,
                    timeout=15000)
    qtbot.waitUntil(lambda: len(win.check_screen.states) == 8, timeout=5000)
    check_sizes(win, "check", shots)
    win.resize(1280, 720)
    qtbot.mouseClick(win.check_screen.start_btn, Qt.MouseButton.LeftButton)

    # Calibration: rest, then the maximum effort of every region, with countdown and progress.
    cal = win.calibration_screen
    seen: set[str] = set()

    def calibration_seen() -> bool:
        seen.add(cal.instruction.text())
        return win.current_screen == "exercise"

    qtbot.waitUntil(lambda: win.current_screen == "calibration", timeout=10000)
    qtbot.waitUntil(lambda: "Full strength" in cal.instruction.text(), timeout=20000)
    seen.add(cal.instruction.text())
    assert cal.progress.format().startswith("Step ") and cal.countdown.text().endswith(" s")
    check_sizes(win, "calibration", shots)
    win.resize(1280, 720)
    qtbot.waitUntil(calibration_seen, timeout=60000)
    assert {"Full strength: eyebrows up", "Full strength: eyes shut", "Full strength: big smile",
            "Full strength: lips forward"} <= seen, seen
    assert "Rest" in {g.title for g in win.ctl.guidance_log}

    # Exercises: the program's cue, the alert in words when the eye joins in.
    ex = win.exercise_screen
    qtbot.waitUntil(lambda: "Smile slowly" in ex.cue.text(), timeout=10000)
    region = SCENARIOS[scenario][1]
    qtbot.waitUntil(lambda: bool(ex.said), timeout=30000)
    assert ex.said[0].startswith("Your left eye is joining in")
    check_sizes(win, "exercise", shots)
    win.resize(1280, 720)
    assert region in {ch for _, ch in win.ctl.red_log}
    win.show_screen("traces")
    check_sizes(win, "traces", shots)
    win.resize(1280, 720)

    # Summary: the detector's table, the summary in words, the recording, notes and grades.
    qtbot.waitUntil(lambda: win.current_screen == "summary", timeout=60000)
    sm = win.summary_screen
    # the last rep is finished by the detector when the session closes, after the switch
    qtbot.waitUntil(lambda: sm.table.rowCount() == 6, timeout=15000)
    assert sm.plain.text().startswith("Well done: you did 3 exercises")
    qtbot.waitUntil(lambda: sm.report_btn.isEnabled(), timeout=60000)
    assert not win.errors, win.errors
    check_sizes(win, "summary", shots)
    sm.notes.setPlainText("Eye joins in during the first smile.")
    sm.house_brackmann.setCurrentIndex(3)
    sm.sunnybrook.setValue(7)
    qtbot.mouseClick(sm.save_notes_btn, Qt.MouseButton.LeftButton)
    meta = read_sidecar(Path(win.saved_recordings[0]))
    assert meta["clinician"] == {"notes": "Eye joins in during the first smile.",
                                 "house_brackmann": 3, "sunnybrook_synkinesis": 7}
    # The history now lists the patient on the Connect screen, with side and program.
    items = [win.connect_screen.patients.itemText(i)
             for i in range(win.connect_screen.patients.count())]
    assert any(t.startswith("P-0042  (left side, " + PROGRAM) for t in items), items
    win.close()


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_whole_session_in_patient_mode(qtbot: Any, tmp_path: Path, shots: Path,
                                       scenario: str) -> None:
    played: list[int] = []
    win = MainWindow(Config(), patient_mode=True, record_dir=tmp_path,
                     db=tmp_path / "history.sqlite",
                     sound_sink=lambda buf, rate: played.append(len(buf)))
    qtbot.addWidget(win)
    win.show()
    ps = win.patient_screen
    assert win.current_screen == "patient" and ps.title.text() == "Welcome"
    assert not win.nav_box.isVisible() and not win.statusBar().isVisible()
    check_sizes(win, "patient-start", shots)
    win.resize(1280, 720)
    win.patient_request = ConnectRequest("simulated", {}, "P-0042", PROGRAM, "L", record=True)
    win.patient_factory = _factory(scenario)
    qtbot.mouseClick(ps.start_btn, Qt.MouseButton.LeftButton)
    assert not ps.start_btn.isEnabled() and ps.stop_btn.isEnabled()

    # No therapist: the session goes from the check straight into rest and maximum effort.
    # (Each text is checked in the screen's log of what it showed: a step lasts a fraction of
    # a second at this speed, and a loaded machine may redraw late.)
    qtbot.waitUntil(lambda: "Rest" in ps.shown, timeout=30000)
    assert "Let your whole face relax. Eyes open, look straight ahead." in ps.shown
    qtbot.waitUntil(lambda: ps.progress.format().startswith("Step "), timeout=10000)
    qtbot.waitUntil(lambda: "Full strength: eyebrows up" in ps.shown, timeout=30000)
    assert ("Raise your eyebrows as high as you can, and hold it until the count ends."
            in ps.shown)
    assert any(t.isdigit() for t in ps.shown)  # the countdown
    check_sizes(win, "patient-effort", shots)
    win.resize(1280, 720)
    # Pause holds the simulated patient's stream; Resume goes on.
    qtbot.mouseClick(ps.pause_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ps.title.text() == "Paused", timeout=2000)
    assert ps.pause_btn.text() == "Resume"
    qtbot.wait(200)
    n = win.live.total
    qtbot.wait(300)
    assert win.live.total == n
    qtbot.mouseClick(ps.pause_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.live.total > n, timeout=2000)
    for title in ("Full strength: eyes shut", "Full strength: big smile",
                  "Full strength: lips forward"):
        qtbot.waitUntil(lambda t=title: t in ps.shown, timeout=30000)
    qtbot.waitUntil(lambda: "Smile" in ps.shown, timeout=30000)
    assert "Smile slowly, lips closed; keep the eye open and relaxed." in ps.shown
    said = "Your left eye is joining in. Keep it relaxed: do the smile more gently and slowly."
    qtbot.waitUntil(lambda: said in ps.shown, timeout=30000)
    check_sizes(win, "patient-exercise", shots)
    win.resize(1280, 720)

    qtbot.waitUntil(lambda: ps.title.text() == "Session complete", timeout=60000)
    # The detector finishes the last rep when the session closes: the words follow at once.
    qtbot.waitUntil(lambda: ps.detail.text().startswith("Well done: you did 3 exercises (smile)."),
                    timeout=15000)
    assert "your left eye joined in" in ps.detail.text()
    assert ps.start_btn.text() == "Start again" and not ps.stop_btn.isEnabled()
    check_sizes(win, "patient-summary", shots)
    # No code, unit or muscle name was ever shown to the patient; sounds were played.
    for text in ps.shown:
        assert not plain_problems(text), (text, plain_problems(text))
    assert played and not win.errors, win.errors
    win.close()
