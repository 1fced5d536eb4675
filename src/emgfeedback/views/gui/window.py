"""The main window: one clinic session from Connect to Summary.

Threads (docs/architecture.md, "Threads")::

    session thread:  source.read -> Chain -> EDF+ Recorder, ClinicFeedback (the clinical engine),
                     ProgramRunner, LiveBuffers
    GUI thread:      QTimer (30-60 Hz) -> snapshots / ring-buffer copies -> screens
    helper thread:   after a recording is closed: analysis + patient history; the report

The window never receives arrays through signals: the signals crossing threads carry an error
message, "program done", "recording closed" and "stored".  It knows nothing of bytes or filters;
it reads processed samples from ring buffers and small snapshots.  An exception in the session
thread, the recorder, the helper thread or a timer tick ends up as one line in the red banner.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from emgfeedback.clinical.exercises import Program
from emgfeedback.config import Config
from emgfeedback.errors import EmgError
from emgfeedback.stream import SourceBase
from emgfeedback.vocabulary import EVENT_TYPES, MARKER, Cue, parse_annotation
from emgfeedback.app.feedback import ClinicFeedback, FeedbackSnapshot
from emgfeedback.app.program import (
    FOLLOW_KINDS,
    ProgramRunner,
    Protocol,
    program_sidecar,
    resolve_program,
)
from emgfeedback.app.recording import RecordingControl
from emgfeedback.app.session import Session, SessionSpec
from emgfeedback.views.gui.live import LiveBuffers
from emgfeedback.views.gui.screens import (
    CalibrationScreen,
    CheckScreen,
    ConnectRequest,
    ConnectScreen,
    ExerciseScreen,
    SummaryScreen,
    TracesScreen,
)

__all__ = ["FOLLOW_KINDS", "MainWindow", "error_message"]

log = logging.getLogger(__name__)

#: Sources that bring their own protocol cues (the simulated patient's script, a recording's
#: annotations): the program follows them instead of issuing cues.

SCREENS = ("connect", "check", "calibration", "exercise", "traces", "summary")
TITLES = {"connect": "Connect", "check": "Electrodes", "calibration": "Calibration",
          "exercise": "Exercise", "traces": "Traces", "summary": "Summary"}

STYLE = """
QMainWindow, QWidget { background: #f5f6f4; color: #22262a; font-size: 13pt; }
QPushButton { background: #e3e6e1; border: 1px solid #b9beb6; border-radius: 6px;
              padding: 6px 16px; }
QPushButton:checked { background: #4f7fa8; color: white; border-color: #3f6788; }
QPushButton:disabled { color: #9aa09a; }
QPushButton#record:checked { background: #c8453c; border-color: #a5362f; }
QLineEdit, QComboBox { background: white; border: 1px solid #b9beb6; border-radius: 4px;
                       padding: 4px 6px; min-height: 28px; }
QTableWidget { background: white; gridline-color: #d6d9d3; }
QHeaderView::section { background: #e3e6e1; padding: 6px; border: none; font-weight: bold; }
QLabel#banner { background: #f6dedb; color: #7d231d; padding: 10px; border-radius: 6px;
                font-weight: bold; }
QFrame { border-radius: 8px; }
"""


def error_message(exc: BaseException) -> str:
    """One clear line for the banner: our errors as they are, bugs with their type."""
    if isinstance(exc, EmgError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc} (details in the log; please report it)"


class MainWindow(QMainWindow):
    """The whole session in one window.

    Parameters
    ----------
    config:
        Validated configuration (quality thresholds for the electrode check, DSP for the chain).
    patient_mode:
        Large and simple: only the exercise screen, no navigation.
    fps:
        Redraw rate of the timer (default: the configuration's ``ui.fps``).
    record_dir:
        Where recordings (``<patient>_<date-time>.edf`` and its ``.json`` sidecar) and reports
        are written.
    db:
        The patient history database (default: :func:`emgfeedback.views.history.default_db_path`).

    Threads: every method runs in the GUI thread, except the ``_from_*`` callbacks, which only
    emit signals.
    """

    error_signal = Signal(str)
    done_signal = Signal()
    record_done_signal = Signal(str, str)
    stored_signal = Signal(str, str)
    report_signal = Signal(str, str)

    def __init__(self, config: Config | None = None, patient_mode: bool = False,
                 fps: float | None = None, record_dir: Path | None = None,
                 db: Path | None = None) -> None:
        super().__init__()
        self.config = config or Config()
        self.patient_mode = patient_mode
        self.record_dir = record_dir or Path(self.config.ui.record_dir or Path.cwd())
        self.db = db
        self.setWindowTitle("emgfeedback" + (": exercises" if patient_mode else ""))
        self.setStyleSheet(STYLE)
        self.session: Session | None = None  # the running session (app.session)
        self.worker: Session | None = None  # the same session: its thread
        self.live: LiveBuffers | None = None
        self.feedback: ClinicFeedback | None = None
        self.program: Program | None = None
        self._clinic_error_shown = False
        self.runner: ProgramRunner | None = None
        self.recording: RecordingControl | None = None
        self.request: ConnectRequest | None = None
        self.last_fb: FeedbackSnapshot | None = None
        self._last: tuple[Any, FeedbackSnapshot, Any] | None = None
        self.errors: list[str] = []
        self.saved_recordings: list[str] = []
        self.after_threads: list[threading.Thread] = []
        self.reports: list[str] = []
        #: Opens a written report (tests replace it to avoid starting a browser).
        self.open_url: Callable[[QUrl], object] = QDesktopServices.openUrl
        self.affected = "L"
        self.frame_hook: Callable[[int], None] | None = None
        self.ticks = 0
        self._configured = False
        self._phase = ""
        self._ended_reported = False
        self._delay_key: tuple[int, int | None] | None = None
        self._delay_ms = 0.0

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 8, 8, 4)
        nav = QHBoxLayout()
        self.nav_group = QButtonGroup(self)
        self.nav_group.setExclusive(True)
        self.nav_buttons: dict[str, QPushButton] = {}
        for name in SCREENS:
            b = QPushButton(TITLES[name])
            b.setCheckable(True)
            b.setMinimumHeight(40)
            b.clicked.connect(lambda _=False, n=name: self.show_screen(n))
            self.nav_group.addButton(b)
            self.nav_buttons[name] = b
            nav.addWidget(b)
        nav.addStretch(1)
        self.marker_btn = QPushButton("Marker (M)")
        self.marker_btn.setMinimumHeight(40)
        self.marker_btn.clicked.connect(self.add_marker)
        self.record_btn = QPushButton("Record")
        self.record_btn.setObjectName("record")
        self.record_btn.setCheckable(True)
        self.record_btn.setMinimumHeight(40)
        self.record_btn.clicked.connect(self.toggle_record)
        nav.addWidget(self.marker_btn)
        nav.addWidget(self.record_btn)
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
        self.exercise_screen = ExerciseScreen(patient=patient_mode)
        self.traces_screen = TracesScreen()
        self.summary_screen = SummaryScreen()
        self.screens: dict[str, QWidget] = {
            "connect": self.connect_screen, "check": self.check_screen,
            "calibration": self.calibration_screen, "exercise": self.exercise_screen,
            "traces": self.traces_screen, "summary": self.summary_screen,
        }
        for w in self.screens.values():
            self.stack.addWidget(w)
        outer.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.status_label = QLabel("not connected")
        self.status_label.setContentsMargins(12, 2, 12, 4)
        self.statusBar().addPermanentWidget(self.status_label, 1)

        self.connect_screen.connect_requested.connect(self.start)
        self.connect_screen.disconnect_requested.connect(self.disconnect_board)
        self.check_screen.start_calibration.connect(self._start_calibration)
        self.calibration_screen.redo.connect(self._redo)
        self.calibration_screen.start_exercises.connect(self._start_exercises)
        self.exercise_screen.tone_requested.connect(QApplication.beep)
        self.error_signal.connect(self.show_error)
        self.done_signal.connect(self._program_done)
        self.record_done_signal.connect(self._record_done)
        self.stored_signal.connect(self._stored)
        self.report_signal.connect(self._report_done)
        self.summary_screen.report_requested.connect(self.write_report)
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
            self.show_screen("exercise")
        else:
            self.show_screen("connect")
        self.resize(1600, 1000)
        self._record_button()  # disabled until a session runs

    # ------------------------------------------------------------------ navigation
    def set_fps(self, fps: float) -> None:
        self.timer.setInterval(max(1, int(round(1000.0 / fps))))

    def show_screen(self, name: str) -> None:
        """Switch to screen ``name`` and draw it at once from the last pulled state.

        Screens other than Exercise and Electrodes are redrawn only while visible, so a screen
        must be filled when it appears, not at the next timer tick: otherwise whoever looks at it
        first (a person, a test) sees the state of its previous visit.
        """
        if self.patient_mode and name != "exercise":
            return
        self.stack.setCurrentWidget(self.screens[name])
        self.nav_buttons[name].setChecked(True)
        self.refresh_current()

    @property
    def current_screen(self) -> str:
        w = self.stack.currentWidget()
        return next(n for n, s in self.screens.items() if s is w)

    # ------------------------------------------------------------------ session lifecycle
    def start(self, req: ConnectRequest) -> None:
        """Connect to the board named in ``req`` (GUI thread; the source is built and opened in
        the session thread, so a slow port or a long simulated script never freezes the window)."""
        from emgfeedback.sources.registry import open_source

        self.start_source(lambda: open_source(req.board, **req.options), req)

    def start_source(self, factory: Callable[[], SourceBase], req: ConnectRequest) -> None:
        """Build the source with ``factory`` and run it through a session in a worker thread."""
        self.disconnect_board()
        self.clear_error()
        try:
            program = resolve_program(req.program or "default")
        except EmgError as exc:
            self.show_error(error_message(exc))
            return
        self.request = req
        self.program = program
        protocol = Protocol()
        follow = req.board.partition(":")[0] in FOLLOW_KINDS
        self.affected = req.affected_side
        self.recording = RecordingControl(
            req.patient_id, self._new_recording_path,
            sidecar={"program": program_sidecar(program, None if follow else protocol),
                     "affected_side": self.affected, "board_choice": req.board},
            final_sidecar=self._final_sidecar,
            on_closed=lambda path, e: self.record_done_signal.emit(
                str(path), "" if e is None else error_message(e)))
        if req.record:
            self.recording.request_start()  # from the first sample, right after the source opens
        self.live = LiveBuffers(seconds=TracesScreen.SECONDS + 2.0)
        # The session (app.session): recorder first, then the clinical engine, the runner (it
        # ends the program after the detector finished the last rep) and the ring buffers.
        spec = SessionSpec(source=req.board, source_factory=factory, config=self.config,
                           program=program, affected_side=self.affected, clinic=True,
                           follow=follow, protocol=protocol, recordable=True)
        session = Session(spec, views=[self.live], recording=self.recording,
                          on_opened=self._opened,
                          on_recording_error=lambda exc: self.error_signal.emit(
                              "not recording: " + error_message(exc)))
        self.feedback = session.feedback
        self.runner = session.runner
        assert self.runner is not None
        self.runner.on_done = self.done_signal.emit
        self._configured = False
        self._phase = ""
        self._ended_reported = False
        self._clinic_error_shown = False
        self._last = None
        self.session = self.worker = session
        session.start(on_error=lambda exc: self.error_signal.emit(error_message(exc)))
        self.connect_screen.set_connected(True, f"connected to {req.board}")
        self.status_label.setText(f"opening {req.board}…")
        self.timer.start()
        if not self.patient_mode:
            self.show_screen("check")

    def _opened(self, session: Session) -> None:
        """The source is open (session thread): the side a simulated patient states wins."""
        if session.feedback is not None and session.feedback.affected_side in ("L", "R"):
            self.affected = session.feedback.affected_side

    def _new_recording_path(self) -> Path:
        """``<record_dir>/<patient>_<date-time>.edf`` (session thread, when a recording starts)."""
        req = self.request
        if req is not None and req.record_path and not self.saved_recordings:
            return Path(req.record_path)
        pid = req.patient_id if req else "session"
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.record_dir / f"{pid}_{stamp}.edf"
        k = 1
        while path.exists():
            k += 1
            path = self.record_dir / f"{pid}_{stamp}-{k}.edf"
        return path

    def _final_sidecar(self) -> dict[str, Any]:
        """Sidecar entries written when a recording closes (session thread)."""
        fbk = self.feedback
        return {"calibration": fbk.calibration_json() if fbk is not None else None,
                "affected_side": self.affected}

    def disconnect_board(self) -> None:
        """Stop the session thread (waits at most a few seconds for the source to stop); the
        session thread closes the recording on its way out."""
        if self.worker is not None:
            self.worker.stop(timeout=5.0)
        self.worker = None
        self.session = None
        self.connect_screen.set_connected(False)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.timer.stop()
        self.disconnect_board()
        super().closeEvent(event)

    # ------------------------------------------------------------------ program actions
    def _start_calibration(self) -> None:
        if self.runner is not None and self.runner.leading and self.live and self.live.ready:
            self.runner.start_calibration()
            self.show_screen("calibration")

    def _redo(self, code: str) -> None:
        if self.runner is not None and self.runner.leading:
            self.runner.redo_mvc(code)

    def _start_exercises(self) -> None:
        if self.runner is not None and self.runner.leading:
            self.runner.start_exercises()
            self.show_screen("exercise")

    def _program_done(self) -> None:
        """The runner counted the last rep (queued signal from the session thread).

        The session stops; the session thread then closes the recording, which reaches
        :meth:`_record_done`."""
        if self.session is not None:
            self.session.stop()
        # Pull the final state first: show_screen draws the summary from it.
        self.tick()
        if not self.patient_mode:
            self.show_screen("summary")

    def add_marker(self) -> None:
        """Put a ``marker`` annotation into the stream at the next sample (keyboard M, Space)."""
        if self.session is not None:
            self.session.mark(MARKER, 0)
            self.statusBar().showMessage("marker added", 1500)

    def toggle_record(self, checked: bool | None = None) -> None:
        """Start or stop the recording (the Record button; GUI thread).

        The session thread carries the request out before its next chunk; the button shows the
        recorder's real state on every tick (:meth:`_record_button`)."""
        rc = self.recording
        if rc is None or self.worker is None or not self.worker.is_alive():
            self._record_button()
            return
        if checked is None:
            checked = not rc.recording
        if checked:
            rc.request_start()
        else:
            rc.request_stop()
        self._record_button()

    def _record_button(self) -> None:
        state = self.recording.state if self.recording is not None else "off"
        text = {"off": "Record", "starting": "Starting…", "on": "Stop recording",
                "saving": "Saving…"}[state]
        self.record_btn.setChecked(state in ("starting", "on"))
        if self.record_btn.text() != text:
            self.record_btn.setText(text)
        alive = self.worker is not None and self.worker.is_alive()
        self.record_btn.setEnabled(alive and state in ("off", "on"))

    def _record_done(self, path: str, err: str) -> None:
        """A recording was closed by the session thread (queued signal)."""
        self._record_button()
        if err:
            self.show_error(f"recording {Path(path).name}: {err}")
            if not Path(path).is_file():
                return
        self.statusBar().showMessage(f"recording saved: {path}", 8000)
        self.saved_recordings.append(path)
        self.summary_screen.set_recording(path)
        self._after_recording(Path(path))

    def _after_recording(self, path: Path) -> None:
        """Analyse the recording and store it in the patient history, in a helper thread."""
        from emgfeedback.views.gui import after

        if not after.analysis_available():
            self.summary_screen.set_after_state(
                "The clinical analysis is not part of this build: no patient history entry "
                "and no report for this recording.", report=False)
            return
        self.summary_screen.set_after_state("Analysing the recording…", report=False)
        cfg, db, program = self.config, self.db, self.program
        meta = {"affected_side": self.affected}

        def work() -> None:
            try:
                done = after.analyse_and_store(path, program, db=db, config=cfg, meta=meta)
            except BaseException as exc:  # shown in the window
                log.error("analysis/history of %s failed", path, exc_info=exc)
                self.stored_signal.emit(str(path), "error:" + error_message(exc))
            else:
                self.stored_signal.emit(str(path), done.describe())

        th = threading.Thread(target=work, name="emgfeedback-after", daemon=True)
        self.after_threads.append(th)
        th.start()

    def _stored(self, path: str, text: str) -> None:
        if text.startswith("error:"):
            self.show_error(f"{Path(path).name}: {text[6:]}")
            self.summary_screen.set_after_state(f"Not stored: {text[6:]}", report=False)
            return
        self.summary_screen.set_after_state(text, report=True)

    def write_report(self) -> None:
        """Write the report of the last recording and open it (Summary button; GUI thread).

        The report is built in a helper thread (matplotlib figures take a few seconds); the
        file is opened with :attr:`open_url` when ready.
        """
        from emgfeedback.views.gui import after

        if not self.saved_recordings:
            return
        path = Path(self.saved_recordings[-1])
        self.summary_screen.set_after_state("Writing the report…", report=False)
        cfg, program = self.config, self.program
        meta = {"affected_side": self.affected}

        def work() -> None:
            try:
                out = after.write_session_report(path, program, config=cfg, meta=meta)
            except BaseException as exc:
                log.error("report of %s failed", path, exc_info=exc)
                self.report_signal.emit(str(path), "error:" + error_message(exc))
            else:
                self.report_signal.emit(str(path), str(out))

        th = threading.Thread(target=work, name="emgfeedback-report", daemon=True)
        self.after_threads.append(th)
        th.start()

    def _report_done(self, path: str, result: str) -> None:
        if result.startswith("error:"):
            self.show_error(f"report of {Path(path).name}: {result[6:]}")
            self.summary_screen.set_after_state(f"Report not written: {result[6:]}", report=True)
            return
        self.reports.append(result)
        self.summary_screen.set_after_state(f"Report written: {result}", report=True)
        self.open_url(QUrl.fromLocalFile(result))

    # ------------------------------------------------------------------ errors
    def show_error(self, text: str) -> None:
        """Show one clear line (GUI thread; the session thread reaches it through a signal)."""
        self.errors.append(text)
        self.banner.setText(text)
        self.banner.setVisible(True)
        log.warning("shown to the user: %s", text)

    def clear_error(self) -> None:
        self.banner.setVisible(False)
        self.banner.setText("")

    # ------------------------------------------------------------------ the timer
    def tick(self) -> None:
        """Pull the newest state and redraw what is visible (GUI thread, 30-60 times a second)."""
        try:
            self._tick()
        except Exception as exc:  # a drawing bug must not kill the window silently
            log.exception("redraw failed")
            self.timer.stop()
            self.show_error(error_message(exc))

    def _tick(self) -> None:
        self.ticks += 1
        live, fbk, runner = self.live, self.feedback, self.runner
        if live is None or fbk is None or runner is None:
            return
        if not live.ready:
            self._check_thread()
            return
        if not self._configured:
            self._configure(live.channels)
        status = live.status()
        fb = fbk.snapshot()
        run = runner.snapshot()
        if fb is None:
            return
        self.last_fb = fb
        self._last = (status, fb, run)
        if fb.error and not self._clinic_error_shown:
            self._clinic_error_shown = True
            self.show_error("no synkinesis detection in this session: " + fb.error)
        # Exercise bars and electrode lights are cheap and must not miss a state (a red bar, a
        # light for the log) while another screen is shown: they refresh on every tick.
        self.exercise_screen.refresh(fb, run)
        self.check_screen.refresh(status, fb.cue is None or fb.cue.kind == "rest")
        if run.phase != self._phase and run.phase in ("calibration", "exercise"):
            self._phase = run.phase
            self.show_screen(run.phase)  # draws the new screen
        else:
            self._phase = run.phase
            self.refresh_current()
        self._status_bar(status, fb)
        self._record_button()
        self._check_thread()
        if self.frame_hook is not None:
            self.frame_hook(status.total)

    def refresh_current(self) -> None:
        """Redraw the visible screen from the last pulled state (no new pull)."""
        if self._last is None or self.live is None:
            return
        status, fb, run = self._last
        current = self.current_screen
        if current == "calibration":
            self.calibration_screen.refresh(fb, run)
        elif current == "traces":
            self.traces_screen.refresh(self.live, self._events(status, fb))
        elif current == "summary":
            self.summary_screen.refresh(fb, self.affected)

    def _configure(self, channels: tuple[str, ...]) -> None:
        leading = bool(self.runner and self.runner.leading)
        self.check_screen.set_channels(channels, leading)
        self.calibration_screen.set_channels(channels, leading)
        self.exercise_screen.set_channels(channels, self.affected)
        self.traces_screen.set_channels(channels)
        self._configured = True

    def _events(self, status: Any, fb: FeedbackSnapshot) -> list[tuple[int, int, str, int]]:
        """Periods to shade on the traces: cues, markers, the detector's synkinesis events (on
        their channel, from onset to offset, or to now while open), gaps."""
        out: list[tuple[int, int, str, int]] = []
        program = self.program
        for m in status.markers:
            if parse_annotation(m.text).kind in EVENT_TYPES:
                continue  # a replayed alert: the detector raises it again below
            cue = Cue(m.text, m.sample, m.sample + m.duration)
            kind = cue.kind_in(program.names()) if program is not None else cue.kind
            kind = "marker" if kind == "other" else kind
            out.append((m.sample, m.sample + m.duration, kind, -1))
        index = {c.replace("EMG ", ""): i for i, c in enumerate(fb.channels)}
        for e in fb.events:
            stop = e.offset if e.offset is not None else fb.position
            out.append((e.onset, stop, "synkinesis", index.get(e.channel, -1)))
        for g0, n in status.gaps:
            out.append((g0, g0 + n, "gap", -1))
        return out

    def _status_bar(self, status: Any, fb: FeedbackSnapshot) -> None:
        t = status.total / fb.fs if fb.fs else 0.0
        parts = [f"signal {t:7.1f} s", f"lost samples {status.lost_samples}",
                 f"CRC errors {status.crc_errors}", f"reconnects {status.reconnects}"]
        if status.saturated:
            parts.append(f"clipped samples {status.saturated}")
        session = self.session
        if session is not None and session.chain is not None:
            chain = session.chain
            key = (id(chain), chain.mains)
            if self._delay_key != key:  # group delays cost ~1 ms to compute: once per change
                self._delay_key, self._delay_ms = key, chain.delay_ms
            parts.append(f"delay {self._delay_ms:.0f} ms")
            parts.append("notch " + (f"{chain.mains} Hz" if chain.mains else "off/auto"))
        if self.recording is not None and self.recording.state == "on":
            parts.append(f"● REC {self.recording.seconds:6.1f} s")
        if self.request is not None:
            parts.append(f"patient {self.request.patient_id}")
        text = "   ·   ".join(parts)
        if self.status_label.text() != text:
            self.status_label.setText(text)

    def _check_thread(self) -> None:
        th = self.worker
        if th is not None and not th.is_alive() and not self._ended_reported:
            self._ended_reported = True
            if th.error is None:
                self.statusBar().showMessage("the stream has ended", 10000)
