"""The main window: a thin Qt view over :class:`~emgfeedback.views.gui.controller.SessionController`.

The controller owns the session (threads, phases, screen state, guidance in plain words); the
window builds the widgets, forwards the buttons to the controller and, on its timer, draws the
:class:`~emgfeedback.views.gui.controller.Frame` that :meth:`SessionController.pull` returns:
the screens, the banner for errors, the toolbar and status bar, the sounds.

Threads (docs/gui.md): every method here runs in the GUI thread.  The session thread and the
helper threads never touch a widget: their events reach the window through the controller's
queue, drained on each tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from emgfeedback.app.feedback import ClinicFeedback, FeedbackSnapshot
from emgfeedback.app.program import ProgramRunner
from emgfeedback.app.recording import RecordingControl
from emgfeedback.app.session import Session
from emgfeedback.clinical.exercises import Program
from emgfeedback.config import Config
from emgfeedback.errors import EmgError
from emgfeedback.stream import SourceBase
from emgfeedback.views.gui.controller import (
    FOLLOW_KINDS,
    Clinician,
    ConnectRequest,
    Frame,
    SessionController,
    error_message,
    patient_list,
)
from emgfeedback.views.gui.live import LiveBuffers
from emgfeedback.views.gui.screens import (
    CalibrationScreen,
    CheckScreen,
    ConnectScreen,
    ExerciseScreen,
    PatientScreen,
    SummaryScreen,
    TracesScreen,
)
from emgfeedback.views.gui.sound import Player, SoundSettings

__all__ = ["FOLLOW_KINDS", "MainWindow", "error_message"]

log = logging.getLogger(__name__)

SCREENS = ("connect", "check", "calibration", "exercise", "traces", "summary")
TITLES = {"connect": "Connect", "check": "Electrodes", "calibration": "Calibration",
          "exercise": "Exercise", "traces": "Traces", "summary": "Summary"}

#: The smallest window the layouts are made for (a 1280x720 screen); larger ones reflow.
MIN_SIZE = (1280, 720)

STYLE = """
QMainWindow, QWidget { background: #f5f6f4; color: #22262a; font-size: 13pt; }
QPushButton { background: #e3e6e1; border: 1px solid #b9beb6; border-radius: 6px;
              padding: 6px 14px; }
QPushButton:checked { background: #4f7fa8; color: white; border-color: #3f6788; }
QPushButton:disabled { color: #9aa09a; }
QPushButton#record:checked { background: #c8453c; border-color: #a5362f; }
QLineEdit, QComboBox, QSpinBox, QPlainTextEdit { background: white; border: 1px solid #b9beb6;
                       border-radius: 4px; padding: 3px 6px; min-height: 26px; }
QTableWidget { background: white; gridline-color: #d6d9d3; }
QHeaderView::section { background: #e3e6e1; padding: 4px; border: none; font-weight: bold; }
QLabel#banner { background: #f6dedb; color: #7d231d; padding: 8px; border-radius: 6px;
                font-weight: bold; }
QFrame { border-radius: 8px; }
"""


class MainWindow(QMainWindow):
    """The whole session in one window (a view over :class:`SessionController`).

    Parameters
    ----------
    config:
        Validated configuration (quality thresholds for the electrode check, DSP for the chain).
    patient_mode:
        Home use: one patient screen (big words, face map, start / pause / stop).
    fps:
        Redraw rate of the timer (default: the configuration's ``ui.fps``).
    record_dir, db:
        Where recordings go; the patient history database.
    sound_sink:
        Where the tones go (``sink(samples, rate)``); default: the sound card if there is one.
    """

    def __init__(self, config: Config | None = None, patient_mode: bool = False,
                 fps: float | None = None, record_dir: Path | None = None,
                 db: Path | None = None,
                 sound_sink: Callable[[Any, int], None] | None = None) -> None:
        super().__init__()
        self.ctl = SessionController(config, patient_mode=patient_mode, record_dir=record_dir,
                                     db=db)
        self.config = self.ctl.config
        self.patient_mode = patient_mode
        self.sound_settings = SoundSettings()
        self.player = Player(self.sound_settings, sink=sound_sink)
        self.setWindowTitle("emgfeedback" + (": exercises" if patient_mode else ""))
        self.setStyleSheet(STYLE)
        self.errors: list[str] = []
        #: Opens a written report (tests replace it to avoid starting a browser).
        self.open_url: Callable[[QUrl], object] = QDesktopServices.openUrl
        self.frame_hook: Callable[[int], None] | None = None
        #: What patient mode starts with its Start button (set by run_demo or a test).
        self.patient_request: ConnectRequest | None = None
        self.patient_factory: Callable[[], SourceBase] | None = None
        self.ticks = 0
        self._configured = False
        self._delay_key: tuple[int, int | None] | None = None
        self._delay_ms = 0.0

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 6, 8, 2)
        outer.setSpacing(4)
        nav = QHBoxLayout()
        nav.setContentsMargins(0, 0, 0, 0)
        self.nav_group = QButtonGroup(self)
        self.nav_group.setExclusive(True)
        self.nav_buttons: dict[str, QPushButton] = {}
        for name in SCREENS:
            b = QPushButton(TITLES[name])
            b.setCheckable(True)
            b.setMinimumHeight(38)
            b.clicked.connect(lambda _=False, n=name: self.show_screen(n))
            self.nav_group.addButton(b)
            self.nav_buttons[name] = b
            nav.addWidget(b)
        nav.addStretch(1)
        self.marker_btn = QPushButton("Marker (M)")
        self.pause_btn = QPushButton("Pause")
        self.pause_btn.setCheckable(True)
        self.stop_btn = QPushButton("Stop")
        self.record_btn = QPushButton("Record")
        self.record_btn.setObjectName("record")
        self.record_btn.setCheckable(True)
        for b in (self.marker_btn, self.pause_btn, self.stop_btn, self.record_btn):
            b.setMinimumHeight(38)
            nav.addWidget(b)
        self.marker_btn.clicked.connect(self.add_marker)
        self.pause_btn.toggled.connect(self._pause)
        self.stop_btn.clicked.connect(self.stop_session)
        self.record_btn.clicked.connect(self.toggle_record)
        self.nav_box = QWidget()
        self.nav_box.setLayout(nav)
        outer.addWidget(self.nav_box)
        self.banner = QLabel("")
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        outer.addWidget(self.banner)

        self.stack = QStackedWidget()
        self.connect_screen = ConnectScreen()
        self.check_screen = CheckScreen(self.config.quality)
        self.calibration_screen = CalibrationScreen()
        self.exercise_screen = ExerciseScreen(sound=self.sound_settings)
        self.traces_screen = TracesScreen()
        self.summary_screen = SummaryScreen()
        self.patient_screen = PatientScreen(self.sound_settings)
        self.screens: dict[str, QWidget] = {
            "connect": self.connect_screen, "check": self.check_screen,
            "calibration": self.calibration_screen, "exercise": self.exercise_screen,
            "traces": self.traces_screen, "summary": self.summary_screen,
            "patient": self.patient_screen,
        }
        for w in self.screens.values():
            self.stack.addWidget(w)
        outer.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.status_label = QLabel("not connected")
        self.status_label.setContentsMargins(8, 0, 8, 2)
        self.statusBar().addPermanentWidget(self.status_label, 1)

        self.connect_screen.connect_requested.connect(self.start)
        self.connect_screen.disconnect_requested.connect(self.disconnect_board)
        self.check_screen.start_calibration.connect(self._start_calibration)
        self.calibration_screen.redo.connect(self.ctl.redo)
        self.calibration_screen.start_exercises.connect(self._start_exercises)
        self.summary_screen.report_requested.connect(self.write_report)
        self.summary_screen.clinician_saved.connect(self.save_clinician)
        self.patient_screen.start_requested.connect(self.start_patient)
        self.patient_screen.pause_requested.connect(self._pause)
        self.patient_screen.stop_requested.connect(self.stop_session)
        for key in ("M", "Space"):
            sc = QShortcut(QKeySequence(key), self)
            sc.activated.connect(self.add_marker)

        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.tick)
        self.set_fps(fps if fps is not None else self.config.ui.fps)
        if patient_mode:
            self.nav_box.setVisible(False)
            self.statusBar().setVisible(False)
        self.show_screen("patient" if patient_mode else "connect")
        self.setMinimumSize(*MIN_SIZE)
        self.resize(*self.fitting_size())
        self._buttons()
        self.refresh_patients()
        self._video()

    # ------------------------------------------------------------------ controller state
    # (read by tests, the screenshot script and the benchmark)
    @property
    def worker(self) -> Any:
        return self.ctl.worker

    @property
    def session(self) -> Session | None:
        return self.ctl.session

    @property
    def live(self) -> LiveBuffers | None:
        return self.ctl.live

    @property
    def feedback(self) -> ClinicFeedback | None:
        return self.ctl.feedback

    @property
    def runner(self) -> ProgramRunner | None:
        return self.ctl.runner

    @property
    def recording(self) -> RecordingControl | None:
        return self.ctl.recording

    @property
    def program(self) -> Program | None:
        return self.ctl.program

    @property
    def saved_recordings(self) -> list[str]:
        return self.ctl.saved_recordings

    @property
    def reports(self) -> list[str]:
        return self.ctl.reports

    @property
    def last_fb(self) -> FeedbackSnapshot | None:
        return self.ctl.last.feedback if self.ctl.last is not None else None

    # ------------------------------------------------------------------ size and navigation
    def fitting_size(self) -> tuple[int, int]:
        """1600x1000, or the screen's available size when smaller (never below the minimum)."""
        w, h = 1600, 1000
        screen = QGuiApplication.primaryScreen()
        if screen is not None:
            avail = screen.availableGeometry()
            w, h = min(w, avail.width()), min(h, avail.height())
        return max(w, MIN_SIZE[0]), max(h, MIN_SIZE[1])

    def set_fps(self, fps: float) -> None:
        self.timer.setInterval(max(1, int(round(1000.0 / fps))))

    def show_screen(self, name: str) -> None:
        """Switch to screen ``name`` and draw it at once from the last pulled state."""
        if not self.ctl.show(name):
            return
        self.stack.setCurrentWidget(self.screens[name])
        if name in self.nav_buttons:
            self.nav_buttons[name].setChecked(True)
        self.refresh_current()

    @property
    def current_screen(self) -> str:
        w = self.stack.currentWidget()
        return next(n for n, s in self.screens.items() if s is w)

    def refresh_patients(self) -> None:
        """The Connect screen's patient list from the history (a broken database is a banner
        line, never a crash)."""
        try:
            self.connect_screen.set_patients(patient_list(self.ctl.db))
        except EmgError as exc:
            self.show_error(f"patient list: {error_message(exc)}")

    # ------------------------------------------------------------------ session lifecycle
    def start(self, req: ConnectRequest) -> None:
        """Connect to the board of ``req`` (the Connect button)."""
        self.start_source(None, req)

    def start_source(self, factory: Callable[[], SourceBase] | None,
                     req: ConnectRequest) -> None:
        """Start the session of ``req``; ``factory`` builds the source (default: from req)."""
        self.clear_error()
        self._configured = False
        err = self.ctl.connect(req, factory)
        if err:
            self.show_error(err)
            return
        self._after_start(req)

    def start_patient(self) -> None:
        """Patient mode's Start: the whole session without a therapist."""
        req = self.patient_request
        if req is None:
            self.show_error("no session to start: run 'emgfeedback demo --patient-mode "
                            "--patient ID' (your therapist gives you the id)")
            return
        self.clear_error()
        self._configured = False
        err = self.ctl.start_patient_session(req, self.patient_factory)
        if err:
            self.show_error(err)
            return
        self._after_start(req)

    def _after_start(self, req: ConnectRequest) -> None:
        self.connect_screen.set_connected(True, f"connected to {req.board}")
        self.status_label.setText(f"opening {req.board}…")
        self.summary_screen.set_after_state("", report=False)
        self.timer.start()
        self._apply_screen()
        self._buttons()

    def disconnect_board(self) -> None:
        self.ctl.disconnect()
        self.connect_screen.set_connected(False)
        self._buttons()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.timer.stop()
        self.disconnect_board()
        super().closeEvent(event)

    # ------------------------------------------------------------------ buttons
    def _start_calibration(self) -> None:
        self.ctl.start_calibration()
        self._apply_screen()

    def _start_exercises(self) -> None:
        self.ctl.start_exercises()
        self._apply_screen()

    def _pause(self, paused: bool) -> None:
        if paused:
            self.ctl.pause()
        else:
            self.ctl.resume()
        self._buttons()

    def stop_session(self) -> None:
        self.ctl.stop()
        self._buttons()

    def add_marker(self) -> None:
        """Put a ``marker`` annotation into the stream at the next sample (keyboard M, Space)."""
        if self.ctl.add_marker():
            self.statusBar().showMessage("marker added", 1500)

    def toggle_record(self, checked: bool | None = None) -> None:
        """Start or stop the recording; the button shows the recorder's real state."""
        self.ctl.toggle_record(checked)
        self._buttons()

    def write_report(self) -> None:
        if self.ctl.write_report():
            self.summary_screen.set_after_state("Writing the report…", report=False)

    def save_clinician(self, clinician: Clinician) -> None:
        try:
            path = self.ctl.save_clinician(clinician)
        except EmgError as exc:
            self.show_error(error_message(exc))
            return
        self.summary_screen.set_notes_state(f"Notes saved in {path.name}")

    def _buttons(self) -> None:
        """Toolbar buttons from the controller's state."""
        state = self.ctl.record_state
        text = {"off": "Record", "starting": "Starting…", "on": "Stop recording",
                "saving": "Saving…"}[state]
        self.record_btn.setChecked(state in ("starting", "on"))
        if self.record_btn.text() != text:
            self.record_btn.setText(text)
        alive = self.ctl.running
        ending = self.ctl.phase == "summary"  # the session thread is closing the recording
        self.record_btn.setEnabled(alive and state in ("off", "on"))
        self.stop_btn.setEnabled(alive and not ending)
        self.pause_btn.setEnabled(alive and not ending)
        self.marker_btn.setEnabled(alive and not ending)
        if self.pause_btn.isChecked() != self.ctl.paused:
            self.pause_btn.blockSignals(True)
            self.pause_btn.setChecked(self.ctl.paused)
            self.pause_btn.blockSignals(False)
        self.pause_btn.setText("Resume" if self.ctl.paused else "Pause")
        self.patient_screen.set_running(alive and not ending, finished=ending)

    # ------------------------------------------------------------------ errors
    def show_error(self, text: str) -> None:
        """Show one clear line."""
        self.errors.append(text)
        self.banner.setText(text)
        self.banner.setVisible(True)
        log.warning("shown to the user: %s", text)

    def clear_error(self) -> None:
        self.banner.setVisible(False)
        self.banner.setText("")

    # ------------------------------------------------------------------ the timer
    def tick(self) -> None:
        """Pull the newest state and redraw what is visible (30-60 times a second)."""
        try:
            self._tick()
        except Exception as exc:  # a drawing bug must not kill the window silently
            log.exception("redraw failed")
            self.timer.stop()
            self.show_error(error_message(exc))

    def _tick(self) -> None:
        self.ticks += 1
        frame = self.ctl.pull()
        for ev in frame.events:
            self._event(ev)
        for kind in frame.sounds:
            self.player.play(kind)
        fb, run, status = frame.feedback, frame.runner, frame.status
        if fb is not None and run is not None and status is not None:
            if not self._configured and self.ctl.live is not None:
                self._configure(self.ctl.live.channels)
            # Exercise bars, lights and the patient screen must not miss a state (a red bar):
            # they refresh on every tick.
            self.exercise_screen.refresh(fb, run, frame.guidance)
            self.check_screen.refresh(status, fb.cue is None or fb.cue.kind == "rest")
            self._status_bar(status, fb)
            if self.frame_hook is not None:
                self.frame_hook(status.total)
        if self.patient_mode:
            self.patient_screen.refresh(frame.guidance, fb)
        self._video()
        if frame.screen is not None:
            self.show_screen(frame.screen)
        else:
            self.refresh_current()
        self._buttons()

    def _video(self) -> None:
        """The mirror view beside the bars: the newest frame of the session's video into the
        visible screen's mirror (or the line saying how to enable it)."""
        ok, message = self.ctl.video_status()
        self.exercise_screen.set_video(ok, message)
        self.patient_screen.set_video(ok, message)
        if not ok:
            return
        view = (self.patient_screen.mirror if self.patient_mode
                else self.exercise_screen.mirror if self.current_screen == "exercise" else None)
        f = self.ctl.video_frame()
        if view is not None and f is not None:
            view.offer(f)
            view.refresh()

    def _apply_screen(self) -> None:
        if self.current_screen != self.ctl.screen:
            self.show_screen(self.ctl.screen)

    def _event(self, ev: tuple[str, ...]) -> None:
        kind = ev[0]
        if kind == "error":
            self.show_error(ev[1])
        elif kind == "recorded":
            self.statusBar().showMessage(f"recording saved: {ev[1]}", 8000)
            self.summary_screen.set_recording(ev[1])
        elif kind == "after":
            self.summary_screen.set_after_state(ev[1], report=False)
        elif kind == "stored":
            text = ev[2]
            if text.startswith("error:"):
                self.show_error(f"{Path(ev[1]).name}: {text[6:]}")
                self.summary_screen.set_after_state(f"Not stored: {text[6:]}", report=False)
            else:
                self.summary_screen.set_after_state(text, report=True)
                self.refresh_patients()
        elif kind == "report":
            result = ev[2]
            if result.startswith("error:"):
                self.show_error(f"report of {Path(ev[1]).name}: {result[6:]}")
                self.summary_screen.set_after_state(f"Report not written: {result[6:]}",
                                                    report=True)
            else:
                self.summary_screen.set_after_state(f"Report written: {result}", report=True)
                self.open_url(QUrl.fromLocalFile(result))
        elif kind == "ended":
            self.connect_screen.set_connected(False, "the session has ended")
            if not self.errors:
                self.statusBar().showMessage("the session has ended", 10000)

    def refresh_current(self) -> None:
        """Redraw the visible screen from the last pulled state (no new pull)."""
        frame: Frame | None = self.ctl.last
        if frame is None or frame.feedback is None or frame.runner is None:
            return
        fb, run = frame.feedback, frame.runner
        current = self.current_screen
        if current == "calibration":
            self.calibration_screen.refresh(fb, run, frame.guidance)
        elif current == "traces" and self.ctl.live is not None and frame.status is not None:
            self.traces_screen.refresh(self.ctl.live, self.ctl.events_shading(frame.status, fb))
        elif current == "summary":
            self.summary_screen.refresh(fb, self.ctl.affected, frame.guidance)

    def _configure(self, channels: tuple[str, ...]) -> None:
        leading = self.ctl.leading
        self.check_screen.set_channels(channels, leading)
        self.calibration_screen.set_channels(channels, leading)
        self.exercise_screen.set_channels(channels, self.ctl.affected)
        self.traces_screen.set_channels(channels)
        self.patient_screen.set_channels(channels)
        self._configured = True

    def _status_bar(self, status: Any, fb: FeedbackSnapshot) -> None:
        t = status.total / fb.fs if fb.fs else 0.0
        parts = [f"signal {t:6.1f} s", f"lost {status.lost_samples}",
                 f"CRC errors {status.crc_errors}", f"reconnects {status.reconnects}"]
        if status.saturated:
            parts.append(f"clipped {status.saturated}")
        session = self.ctl.session
        if session is not None and session.chain is not None:
            chain = session.chain
            key = (id(chain), chain.mains)
            if self._delay_key != key:  # group delays cost ~1 ms to compute: once per change
                self._delay_key, self._delay_ms = key, chain.delay_ms
            parts.append(f"delay {self._delay_ms:.0f} ms")
            parts.append("notch " + (f"{chain.mains} Hz" if chain.mains else "auto"))
        rc = self.ctl.recording
        if rc is not None and rc.state == "on":
            parts.append(f"● REC {rc.seconds:6.1f} s")
        if self.ctl.request is not None:
            parts.append(f"patient {self.ctl.request.patient_id}")
        if self.ctl.paused:
            parts.append("PAUSED")
        text = "  ·  ".join(parts)
        if self.status_label.text() != text:
            self.status_label.setText(text)
