"""The session as the window runs it, without Qt: workflow phases, screen state, guidance.

:class:`SessionController` is everything of the GUI that is not drawing.  The window
(:mod:`emgfeedback.views.gui.window`) is a thin view over it: buttons call its methods, and a
timer calls :meth:`SessionController.pull` 30-60 times a second and draws the returned
:class:`Frame`.  Tests drive it without Qt (``tests/test_gui_controller.py`` imports it with
PySide6 blocked).

Workflow (:attr:`SessionController.phase`)::

    connect -> check (electrode check, waits for the therapist) -> calibration (rest, then the
    maximum effort of every region, with a countdown and progress) -> exercise (the program's
    reps) -> summary

with pause / resume / stop at any point after Connect.  The therapist starts the calibration
(*Start calibration*) and, on a live board, the exercises; in patient mode (home) *Start* does
both in turn.

Threads: one session thread (:class:`emgfeedback.app.session.Session`, the Qt-free
orchestrator: source -> chain -> recorder, clinical engine, program runner, ring buffers), helper
threads after a recording (analysis + history, report).
They never call the view: they put events in a queue that :meth:`SessionController.pull` drains
in the caller's (GUI) thread and hands over in :attr:`Frame.events`.

*Pause* on a board that plays its own protocol (simulated patient, replay) holds the stream
(:class:`HeldSource`, no sample is lost: the source is stopped and restarted, as a paced source
allows); on a live board the stream goes on (a board cannot be paused) and the runner holds its
next cue.  The electrode check of a self-playing board is held the same way: the stream stops
at the chunk that carries the first protocol cue until the therapist starts the calibration.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emgfeedback.app.feedback import ClinicFeedback, FeedbackSnapshot
from emgfeedback.app.program import (
    FOLLOW_KINDS,
    ProgramRunner,
    Protocol,
    RunnerSnapshot,
    program_sidecar,
    resolve_program,
)
from emgfeedback.app.recording import RecordingControl
from emgfeedback.app.session import Session, SessionSpec
from emgfeedback.clinical.exercises import Program
from emgfeedback.config import Config
from emgfeedback.errors import ConfigError, EmgError
from emgfeedback.stream import Chunk, SourceBase
from emgfeedback.views.gui import words
from emgfeedback.views.gui.live import LiveBuffers, LiveStatus
from emgfeedback.vocabulary import EVENT_TYPES, MARKER, Cue, parse_annotation

__all__ = [
    "FOLLOW_KINDS",
    "PHASES",
    "Clinician",
    "ConnectRequest",
    "Frame",
    "Guidance",
    "HeldSource",
    "PatientEntry",
    "SessionController",
    "error_message",
    "patient_list",
    "save_clinician",
]

log = logging.getLogger(__name__)

PHASES = ("connect", "check", "calibration", "exercise", "summary")

#: How long (signal seconds) the words of an alert stay on screen after the region relaxed.
ALERT_HOLD_S = 2.0


def error_message(exc: BaseException) -> str:
    """One clear line for the banner: our errors as they are, bugs with their type."""
    if isinstance(exc, EmgError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc} (details in the log; please report it)"


# =========================================================================== what the user asked
@dataclass(frozen=True)
class ConnectRequest:
    """What the therapist chose on the Connect screen (or the command line)."""

    board: str  # a board spec for sources.open_source: "simulated", "serial:/dev/ttyUSB0", ...
    options: dict[str, Any] = field(default_factory=dict)
    patient_id: str = ""
    program: str = ""  # a name of program_choices() or a program TOML file
    affected_side: str = "L"
    record: bool = True  # record to EDF+ from the first sample (replay then reproduces it)
    record_path: str = ""  # the first recording's file; default <record_dir>/<id>_<time>.edf
    video: Any = None  # a video.live.VideoSpec: the camera or video file beside the EMG

    @property
    def kind(self) -> str:
        return self.board.partition(":")[0]


def source_factory(req: ConnectRequest) -> Callable[[], SourceBase]:
    """Build the source of ``req`` (called in the session thread).

    ``simavr`` runs the real firmware with its ADC fed by the facial model (scenario and seed of
    the request), exactly as ``emgfeedback demo --board simavr`` does.
    """

    def build() -> SourceBase:
        from emgfeedback.sources.registry import open_source

        opts = dict(req.options)
        if req.kind == "simavr":
            from emgfeedback.sources.facesim import DEFAULT_CHANNELS
            from emgfeedback.sources.simulated import facial_signal

            speed = opts.pop("speed", 1.0)
            n = int(opts.pop("n_channels", 0) or len(DEFAULT_CHANNELS))
            labels = tuple(DEFAULT_CHANNELS[:n])
            scenario = opts.pop("scenario", None)
            seed = int(opts.pop("seed", 0) or 0)
            opts.pop("duration", None)
            opts.update(labels=labels,
                        signal=facial_signal(scenario or "smile-synkinesis", labels, seed=seed),
                        speed=speed or 1.0, realtime=speed is not None)
        src: SourceBase = open_source(req.board, **opts)
        return src

    return build


# =========================================================================== holding a stream
_PROTOCOL_KINDS = ("rest", "mvc", "exercise")


class HeldSource(SourceBase):
    """A self-playing source (simulated patient, replay) that can be held without losing a
    sample: while held, :meth:`read` returns nothing and the inner source is stopped (its
    pacing restarts from where it was when released).

    With ``hold_at_first_cue`` the chunk that carries the first protocol cue is kept back until
    :meth:`release`: the electrode check waits for the therapist.

    Threads: :meth:`read` in the session thread; :meth:`hold`, :meth:`release` in any thread.
    """

    def __init__(self, inner: SourceBase, hold_at_first_cue: bool = True,
                 program: Program | None = None) -> None:
        self.inner = inner
        self.info = inner.info
        self.program = program
        self._wait_cue = hold_at_first_cue
        self._held = threading.Event()
        self._pending: Chunk | None = None
        self._inner_stopped = False

    # ---- any thread
    def hold(self) -> None:
        self._held.set()

    def release(self) -> None:
        self._wait_cue = False
        self._held.clear()

    @property
    def held(self) -> bool:
        return self._held.is_set()

    @property
    def waiting_for_start(self) -> bool:
        """Held at the first protocol cue (the electrode check)."""
        return self._pending is not None and self._held.is_set()

    # ---- the source contract (session thread)
    def open(self) -> None:
        self.inner.open()
        self.info = self.inner.info

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    def close(self) -> None:
        self.inner.close()

    @property
    def finished(self) -> bool:
        return self._pending is None and bool(self.inner.finished)

    def __getattr__(self, name: str) -> Any:  # script, position, ... of the inner source
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def read(self, timeout: float | None = None) -> Chunk | None:
        if self._held.is_set():
            if not self._inner_stopped:
                self.inner.stop()
                self._inner_stopped = True
            time.sleep(min(timeout if timeout is not None else 0.05, 0.05))
            return None
        if self._inner_stopped:
            self.inner.start()
            self._inner_stopped = False
        if self._pending is not None:
            kept, self._pending = self._pending, None
            return kept
        chunk = self.inner.read(timeout=timeout)
        if chunk is not None and self._wait_cue and any(
                self._is_protocol(m.text) for m in chunk.markers):
            self._pending = chunk
            self.hold()
            return None
        return chunk

    def _is_protocol(self, text: str) -> bool:
        cue = Cue(text, 0, 0)
        kind = cue.kind_in(self.program.names()) if self.program is not None else cue.kind
        return kind in _PROTOCOL_KINDS


# =========================================================================== what is shown
@dataclass(frozen=True)
class Guidance:
    """What the person in front of the screen is asked to do now, in plain words.

    ``step`` is one of ``waiting`` (before the calibration), ``rest``, ``effort`` (a maximum
    effort), ``exercise``, ``between`` (relax before the next cue), ``paused``, ``done``.
    """

    phase: str
    step: str
    title: str
    detail: str
    countdown_s: float | None  # seconds of signal left in this step (None: no countdown)
    steps_done: int
    steps_total: int  # 0: not known
    alert: str  # words when a region that should stay quiet joins in ("" otherwise)
    alert_channels: tuple[str, ...]
    retracted: str  # words when the detector took an alert back (a blink)
    paused: bool
    summary: str  # the end-of-session summary in plain words ("" before the end)

    @property
    def progress(self) -> float:
        return min(1.0, self.steps_done / self.steps_total) if self.steps_total else 0.0

    @property
    def progress_text(self) -> str:
        if not self.steps_total:
            return ""
        if self.steps_done >= self.steps_total:
            return f"All {self.steps_total} steps done"
        return f"Step {min(self.steps_done + 1, self.steps_total)} of {self.steps_total}"

    def texts(self) -> list[str]:
        """Every text shown to the patient (the tests check them for jargon)."""
        return [t for t in (self.title, self.detail, self.alert, self.retracted, self.summary,
                            self.progress_text) if t]


@dataclass(frozen=True)
class Frame:
    """One redraw: the newest state, what to say, what to play, what happened."""

    status: LiveStatus | None
    feedback: FeedbackSnapshot | None
    runner: RunnerSnapshot | None
    guidance: Guidance
    sounds: tuple[str, ...]  # "hold", "relax", "joined" (views.gui.sound)
    screen: str | None  # a screen to switch to (None: stay)
    events: tuple[tuple[str, ...], ...]  # ("error", text), ("recorded", path), ...


@dataclass(frozen=True)
class Clinician:
    """The therapist's notes and grades of a session (the Summary screen)."""

    notes: str = ""
    house_brackmann: int | None = None  # grade I-VI as 1-6
    sunnybrook_synkinesis: int | None = None  # Sunnybrook synkinesis score 0-15

    def validate(self) -> "Clinician":
        if self.house_brackmann is not None and not 1 <= self.house_brackmann <= 6:
            raise ConfigError(f"House-Brackmann grade must be I-VI (1-6), got "
                              f"{self.house_brackmann}")
        if self.sunnybrook_synkinesis is not None and not 0 <= self.sunnybrook_synkinesis <= 15:
            raise ConfigError(f"Sunnybrook synkinesis score must be 0-15, got "
                              f"{self.sunnybrook_synkinesis}")
        if len(self.notes) > 20000:
            raise ConfigError("therapist notes are limited to 20000 characters")
        return self

    def to_json(self) -> dict[str, Any]:
        return {"notes": self.notes, "house_brackmann": self.house_brackmann,
                "sunnybrook_synkinesis": self.sunnybrook_synkinesis}


def save_clinician(recording: Path, clinician: Clinician) -> Path:
    """Put ``clinician`` into the recording's sidecar under ``"clinician"`` (atomically, the
    file private to its owner); returns the sidecar's path."""
    from emgfeedback.io.edf import read_sidecar, sidecar_path

    c = clinician.validate()
    path = sidecar_path(recording)
    meta = read_sidecar(recording) if path.is_file() else {}
    meta["clinician"] = c.to_json()
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(meta, indent=1, allow_nan=False))
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class PatientEntry:
    """A patient of the history, to pick on the Connect screen."""

    patient_id: str
    affected_side: str
    program: str
    sessions: int
    last: str  # date of the last session, YYYY-MM-DD


def patient_list(db: Path | None) -> list[PatientEntry]:
    """The patients of the history database (``[]`` when there is none yet): pseudonymous id,
    affected side and program of their last session."""
    from emgfeedback.views.history import History, default_db_path

    path = db or default_db_path()
    if not Path(path).is_file():
        return []
    out = []
    with History(path, create=False) as h:
        for pid in h.patients():
            ss = h.sessions(pid)
            if not ss:
                continue
            last = ss[-1]
            out.append(PatientEntry(pid, last.affected_side or "", last.program or "", len(ss),
                                    last.recorded_at.date().isoformat()))
    return out


# =========================================================================== the controller
class SessionController:
    """The GUI's workflow without Qt; see the module docstring.

    Parameters
    ----------
    config:
        Validated configuration (quality thresholds, DSP).
    patient_mode:
        Home use: one patient screen, *Start* runs the whole session (no therapist steps).
    record_dir:
        Where recordings (``<patient>_<date-time>.edf`` and its sidecar) and reports go.
    db:
        The patient history database (default: ``views.history.default_db_path()``).

    Threads: every public method runs in the GUI thread (the caller of :meth:`pull`).
    """

    def __init__(self, config: Config | None = None, patient_mode: bool = False,
                 record_dir: Path | None = None, db: Path | None = None) -> None:
        self.config = config or Config()
        self.patient_mode = patient_mode
        self.record_dir = record_dir or Path(self.config.ui.record_dir or Path.cwd())
        self.db = db
        #: history session id of each recording stored by the after-recording work
        self.stored_ids: dict[str, int] = {}
        self.protocol = Protocol()
        self.request: ConnectRequest | None = None
        self.program: Program | None = None
        self.session: Session | None = None  # the running session (app.session)
        self.worker: Session | None = None  # the same session: its thread
        self.held: HeldSource | None = None
        self.live: LiveBuffers | None = None
        self.feedback: ClinicFeedback | None = None
        self.runner: ProgramRunner | None = None
        self.recording: RecordingControl | None = None
        self.affected = "L"
        self.phase = "connect"
        self.screen = "patient" if patient_mode else "connect"
        self.paused = False
        self.stopped_early = False
        self.saved_recordings: list[str] = []
        self.reports: list[str] = []
        self.after_threads: list[threading.Thread] = []
        self.plan: tuple[Cue, ...] = ()  # a self-playing source's cues, for the progress
        self.last: Frame | None = None
        self.guidance_log: list[Guidance] = []  # every distinct guidance shown (tests, logs)
        self._events: queue.Queue[tuple[str, ...]] = queue.Queue()
        self._screen_request: str | None = None
        self._video_missing: tuple[str] | None = None
        self._reset_session_state()

    def _reset_session_state(self) -> None:
        self._configured = False
        self._clinic_error_shown = False
        self._ended = False
        self._cue_key: tuple[str, int] | None = None
        self._cue_was_hold = False
        self._alert_channels: tuple[str, ...] = ()
        self._alert_until = -1
        self._alert_exercise: str | None = None
        self._retracted_text = ""
        self._retracted_until = -1
        self._red_now: set[int] = set()
        self._auto_exercises = False
        self._calibration_started = False
        self._pending_auto_calibration = False
        self.red_log: list[tuple[int, str]] = []

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_alive()

    @property
    def leading(self) -> bool:
        return bool(self.runner is not None and self.runner.leading)

    @property
    def waiting_for_start(self) -> bool:
        """The stream waits for the therapist (electrode check of a self-playing board)."""
        return self.phase == "check"

    def show(self, name: str) -> bool:
        """Ask for screen ``name``; ``False`` when not allowed (patient mode has one screen)."""
        if self.patient_mode and name != "patient":
            return False
        self.screen = name
        return True

    def _want_screen(self, name: str) -> None:
        if self.show(name):
            self._screen_request = name

    def _post(self, *event: str) -> None:
        """From any thread: an event for the GUI thread (drained by :meth:`pull`)."""
        self._events.put(tuple(event))

    # ------------------------------------------------------------------ lifecycle
    def connect(self, req: ConnectRequest,
                factory: Callable[[], SourceBase] | None = None) -> str | None:
        """Start the session of ``req`` (the source is built and opened in the session thread);
        returns ``None``, or the one-line reason it cannot start."""
        self.disconnect()
        try:
            program = resolve_program(req.program or "default")
        except EmgError as exc:
            return error_message(exc)
        self._reset_session_state()
        self.request = req
        self.program = program
        self.paused = False
        self.stopped_early = False
        follow = req.kind in FOLLOW_KINDS
        self.affected = req.affected_side
        self.recording = RecordingControl(
            req.patient_id, self._new_recording_path,
            sidecar={"program": program_sidecar(program, None if follow else self.protocol),
                     "affected_side": self.affected, "board_choice": req.board},
            final_sidecar=self._final_sidecar,
            on_closed=lambda path, e: self._post(
                "record_done", str(path), "" if e is None else error_message(e)))
        if req.record:
            self.recording.request_start()  # from the first sample, right after the source opens
        self.live = LiveBuffers(seconds=12.0)
        self.plan = ()
        build = factory or source_factory(req)

        def make() -> SourceBase:  # session thread
            src = build()
            self._source_ready(src)
            if follow:
                self.held = HeldSource(src, hold_at_first_cue=True, program=program)
                return self.held
            self.held = None
            return src

        # The session (app.session): recorder first, then the clinical engine, the runner (it
        # ends the program after the detector finished the last rep) and the ring buffers.
        from emgfeedback.video import missing

        spec = SessionSpec(source=req.board, source_factory=make, config=self.config,
                           program=program, affected_side=self.affected, clinic=True,
                           follow=follow, protocol=self.protocol, recordable=True,
                           video=req.video if missing() is None else None)
        session = Session(spec, views=[self.live], recording=self.recording,
                          on_opened=self._opened,
                          on_recording_error=lambda exc: self._post(
                              "error", "not recording: " + error_message(exc)))
        self.feedback = session.feedback
        self.runner = session.runner
        assert self.runner is not None
        self.runner.on_done = self._program_done
        self.session = self.worker = session
        session.start(on_error=lambda exc: self._post("error", error_message(exc)))
        self.phase = "check"
        self._want_screen("check")
        return None

    def disconnect(self) -> None:
        """Stop the session thread (waits a few seconds at most); it closes the recording."""
        if self.worker is not None:
            if self.held is not None:
                self.held.release()
            self.worker.stop(timeout=5.0)
        self.worker = None

    def start_calibration(self) -> None:
        """The therapist (or *Start* in patient mode) starts the calibration."""
        if self.worker is None:
            return
        self._calibration_started = True
        if self.held is not None:
            self.held.release()
        elif self.runner is not None and self.live is not None and self.live.ready:
            self.runner.start_calibration()
        else:
            return  # a live board not streaming yet: pull() starts it once ready
        self.phase = "calibration"
        self._want_screen("calibration")

    def redo(self, code: str) -> None:
        if self.leading and self.runner is not None:
            self.runner.redo_mvc(code)

    def start_exercises(self) -> None:
        if self.leading and self.runner is not None:
            self.runner.start_exercises()
            self.phase = "exercise"
            self._want_screen("exercise")

    def start_patient_session(self, req: ConnectRequest,
                              factory: Callable[[], SourceBase] | None = None) -> str | None:
        """Patient mode's *Start*: connect, calibrate, then the exercises without a therapist."""
        err = self.connect(req, factory)
        if err:
            return err
        self._auto_exercises = True
        self._calibration_started = True
        if self.held is None:
            self._pending_auto_calibration = True
        return None

    def pause(self) -> None:
        if not self.running or self.paused:
            return
        self.paused = True
        if self.held is not None:
            self.held.hold()
        elif self.runner is not None:
            self.runner.pause()

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        if self.held is not None and self.phase != "check":
            self.held.release()
        elif self.runner is not None:
            self.runner.resume()

    def stop(self) -> None:
        """End the session now (the toolbar's or the patient's *Stop*): the recording is closed
        and the summary shows what was done."""
        if self.worker is None:
            return
        self.stopped_early = self.phase != "summary"
        self.paused = False
        if self.held is not None:
            self.held.release()
        if self.session is not None:
            self.session.stop()

    def add_marker(self) -> bool:
        if self.session is None:
            return False
        self.session.mark(MARKER, 0)
        return True

    def toggle_record(self, checked: bool | None = None) -> None:
        rc = self.recording
        if rc is None or not self.running:
            return
        if checked is None:
            checked = not rc.recording
        if checked:
            rc.request_start()
        else:
            rc.request_stop()

    # ------------------------------------------------------------------ the mirror
    def video_status(self) -> tuple[bool, str]:
        """Whether the screens show the mirror view, and else one line saying why and how to
        enable it (the video extra, a camera)."""
        from emgfeedback.video import INSTALL_HINT, missing

        if self._video_missing is None:
            self._video_missing = (missing() or "",)  # once: it looks for two packages
        why = self._video_missing[0] or None
        req = self.request
        session = self.session
        if session is not None and session.video is not None:
            err = getattr(session.video, "error", None)
            return (True, "") if not err else (False, f"Mirror view stopped: {err}")
        if why is not None:
            return False, ("The mirror view (the camera beside the EMG) needs the video "
                           f"extra: {INSTALL_HINT}")
        if session is not None and session.video_error:
            return False, f"Mirror view off: {session.video_error}"
        if req is not None and req.video is not None:
            return False, "Mirror view: starting the camera…"
        return False, ("Mirror view off: no camera chosen (start with 'emgfeedback demo "
                       "--camera 0', or --video FILE)")

    def video_frame(self) -> Any:
        """The newest frame of the session's video (``video.live.LiveFrame``) or ``None``."""
        session = self.session
        v = session.video if session is not None else None
        return v.latest() if v is not None else None

    @property
    def record_state(self) -> str:
        return self.recording.state if self.recording is not None else "off"

    # ------------------------------------------------------------------ session-thread hooks
    def _new_recording_path(self) -> Path:
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
        fbk = self.feedback
        return {"calibration": fbk.calibration_json() if fbk is not None else None,
                "affected_side": self.affected}

    def _opened(self, session: Session) -> None:
        """The source is open (session thread): the side a simulated patient states wins."""
        if session.feedback is not None and session.feedback.affected_side in ("L", "R"):
            self.affected = session.feedback.affected_side

    def _program_done(self) -> None:
        """The runner counted the last rep (session thread): the session stops after this
        chunk, whatever the GUI thread is doing; the GUI learns it from the event."""
        session = self.session
        if session is not None:
            session.stop()
        self._post("done")

    def _source_ready(self, source: SourceBase) -> None:
        """The session thread built the source: a simulated patient's script is the plan of
        the progress indicator (its cues up to the program's last rep)."""
        script = getattr(source, "script", None)
        program = self.program
        if script is not None and program is not None:
            cues = [Cue(c.text, c.start, c.stop) for c in getattr(script, "cues", ())]
            plan: list[Cue] = []
            reps = sum(e.reps for e in program.exercises)
            own = {e.name.lower() for e in program.exercises}
            for c in cues:
                k = c.kind_in(program.names())
                if k in ("rest", "mvc") and not any(p.start == c.start for p in plan):
                    plan.append(c)
                elif k == "exercise" and c.text.lower() in own and reps > 0:
                    plan.append(c)
                    reps -= 1
            self.plan = tuple(plan)

    # ------------------------------------------------------------------ the timer
    def pull(self) -> Frame:
        """Drain the threads' events, pull the newest state, decide what to say and play."""
        events = self._drain()
        live, fbk, runner = self.live, self.feedback, self.runner
        status = fb = run = None
        sounds: list[str] = []
        if self._pending_auto_calibration and self.held is not None:
            # A held self-playing board needs no signal yet to be released (its first cue may
            # be in its very first chunk).
            self._pending_auto_calibration = False
            self.start_calibration()
        if live is not None and fbk is not None and runner is not None and live.ready:
            if self._pending_auto_calibration:
                self._pending_auto_calibration = False
                self.start_calibration()
            elif self._calibration_started and self.held is not None and self.phase == "check":
                self.start_calibration()
            status = live.status()
            fb = fbk.snapshot()
            run = runner.snapshot()
            if fb is not None:
                if fb.error and not self._clinic_error_shown:
                    self._clinic_error_shown = True
                    events.append(("error", "no synkinesis detection in this session: "
                                   + fb.error))
                self._advance_phase(run)
                sounds = self._sounds(fb)
        if self.worker is not None and not self.worker.is_alive() and not self._ended:
            self._ended = True
            if self.phase != "summary":
                self.phase = "summary"
                self._want_screen("patient" if self.patient_mode else "summary")
            events.append(("ended", ""))
        guidance = self._guidance(fb, run)
        if not self.guidance_log or _changed(self.guidance_log[-1], guidance):
            self.guidance_log.append(guidance)
        screen, self._screen_request = self._screen_request, None
        frame = Frame(status, fb, run, guidance, tuple(sounds), screen, tuple(events))
        self.last = frame
        return frame

    def _drain(self) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        while True:
            try:
                ev = self._events.get_nowait()
            except queue.Empty:
                return out
            kind = ev[0]
            if kind == "done":
                # The runner counted the last rep: stop; the session thread closes the recording.
                if self.session is not None:
                    self.session.stop()
                self.phase = "summary"
                self._want_screen("patient" if self.patient_mode else "summary")
                out.append(ev)
            elif kind == "record_done":
                path, err = ev[1], ev[2]
                if err:
                    out.append(("error", f"recording {Path(path).name}: {err}"))
                if Path(path).is_file():
                    self.saved_recordings.append(path)
                    out.append(("recorded", path))
                    out.append(self._after_recording(Path(path)))
            elif kind == "report" and not ev[2].startswith("error:"):
                self.reports.append(ev[2])
                out.append(ev)
            else:
                out.append(ev)

    def _advance_phase(self, run: RunnerSnapshot) -> None:
        if self.phase in ("connect", "summary"):
            return
        if run.phase == "calibration" and self.phase == "check":
            self.phase = "calibration"
            self._want_screen("calibration")
        elif run.phase == "exercise" and self.phase in ("check", "calibration"):
            self.phase = "exercise"
            self._want_screen("exercise")
        elif (self._auto_exercises and self.leading and self.phase == "calibration"
              and run.next_cue_at is None and run.phase == "calibration"
              and self.runner is not None and self.runner.calibration_queued_done()):
            self.start_exercises()

    # ------------------------------------------------------------------ words and sounds
    def _sounds(self, fb: FeedbackSnapshot) -> list[str]:
        out: list[str] = []
        cue = fb.cue
        hold = cue is not None and cue.kind_in(self.program.names()) in ("mvc", "exercise") \
            if self.program is not None and cue is not None else False
        key = (cue.text, cue.start) if cue is not None else None
        if key != self._cue_key:
            if hold:
                out.append("hold")
            elif self._cue_was_hold:
                out.append("relax")
            self._cue_key = key
            self._cue_was_hold = hold
        elif self._cue_was_hold and cue is None:
            out.append("relax")
            self._cue_was_hold = False
        # A quiet region joined in: the detector's flag (colour on the bars, words, a sound).
        red = {i for i in range(len(fb.channels)) if fb.red[i]}
        new = red - self._red_now
        if new:
            for i in sorted(new):
                self.red_log.append((fb.position, fb.channels[i]))
            out.append("joined")
        if red:
            self._alert_channels = tuple(fb.channels[i] for i in sorted(red))
            self._alert_until = fb.position + int(ALERT_HOLD_S * fb.fs)
            # The exercise the detector's event belongs to (the rep may have ended by the time
            # this redraw sees the flag), else the running one.
            shorts = {c.replace("EMG ", "") for c in self._alert_channels}
            evs = [e for e in fb.events if e.channel in shorts]
            self._alert_exercise = (evs[-1].exercise if evs else
                                    fb.exercise.name if fb.exercise is not None else None)
        self._red_now = red
        if fb.retracted:
            self._retracted_text = words.retracted_words(fb.retracted)
            self._retracted_until = fb.position + int(ALERT_HOLD_S * fb.fs)
        return out

    def _guidance(self, fb: FeedbackSnapshot | None, run: RunnerSnapshot | None) -> Guidance:
        phase = self.phase
        done, total = self._steps(fb, run)
        alert = retracted = summary = ""
        channels: tuple[str, ...] = ()
        countdown: float | None = None
        if fb is not None and fb.position <= self._alert_until:
            alert = words.alert_words(self._alert_channels, self._alert_exercise)
            channels = self._alert_channels
        if fb is not None and fb.position <= self._retracted_until:
            retracted = self._retracted_text
        if phase == "connect":
            step, title, detail = "waiting", "Welcome", (
                "Sit comfortably in front of the screen. Press Start when you are ready."
                if self.patient_mode else "Choose the board, the patient and the program.")
        elif phase == "summary":
            reps = fb.reps if fb is not None else ()
            evs = fb.events if fb is not None else ()
            summary = words.session_summary_words(
                reps, evs, fb.affected_side if fb is not None else self.affected,
                run.reps_total if run is not None else 0, self.stopped_early)
            step, title, detail = "done", "Session complete", summary
        elif self.paused:
            step, title, detail = "paused", "Paused", "Take your time. Press Resume to carry on."
        elif fb is None or run is None:
            step, title, detail = "waiting", "Getting ready", "Connecting to the sensors…"
        else:
            cue = fb.cue
            kind = cue.kind_in(self.program.names()) if cue is not None and self.program else None
            if phase == "check":
                step, title = "waiting", "Getting ready"
                detail = ("Sit still and let your face relax while the sensors are checked."
                          if self.patient_mode else
                          "Ask the patient to relax. Start the calibration when every light "
                          "is green.")
            elif cue is not None and kind == "rest":
                step, (title, detail) = "rest", words.rest_words()
                countdown = max(0, cue.stop - fb.position) / fb.fs
            elif cue is not None and kind == "mvc":
                step, (title, detail) = "effort", words.effort_words(cue.text)
                countdown = max(0, cue.stop - fb.position) / fb.fs
            elif cue is not None and kind == "exercise":
                ex = self.program.find(cue.text) if self.program is not None else None
                step, (title, detail) = "exercise", words.exercise_words(
                    cue.text, ex.cue if ex is not None else None)
                countdown = max(0, cue.stop - fb.position) / fb.fs
            else:
                nxt_at, nxt = self._next_cue(fb, run)
                step, (title, detail) = "between", words.between_words(nxt)
                if nxt_at is not None:
                    countdown = max(0, nxt_at - fb.position) / fb.fs
                if phase == "calibration" and self.leading and nxt_at is None \
                        and not self._auto_exercises:
                    title, detail = "Relax", ("Rest for a moment: your therapist starts the "
                                              "exercises.")
        return Guidance(phase, step, title, detail, countdown, done, total, alert, channels,
                        retracted, self.paused, summary)

    def _steps(self, fb: FeedbackSnapshot | None,
               run: RunnerSnapshot | None) -> tuple[int, int]:
        if fb is None or run is None:
            return 0, 0
        if run.leading:
            return run.steps_done, run.steps_total
        if self.plan:
            return sum(1 for c in self.plan if c.stop <= fb.position), len(self.plan)
        return run.reps_done, run.reps_total

    def _next_cue(self, fb: FeedbackSnapshot,
                  run: RunnerSnapshot) -> tuple[int | None, str | None]:
        """Sample and title of the next cue (leading: the runner's queue; else the plan)."""
        if run.leading:
            return run.next_cue_at, _cue_title(run.next_text, self.program)
        for c in self.plan:
            if c.start >= fb.position:
                return c.start, _cue_title(c.text, self.program)
        return None, None

    # ------------------------------------------------------------------ after a recording
    def _after_recording(self, path: Path) -> tuple[str, ...]:
        from emgfeedback.views.gui import after

        if not after.analysis_available():
            return ("after", "The clinical analysis is not part of this build: no patient "
                    "history entry and no report for this recording.", "")
        cfg, db, program = self.config, self.db, self.program
        meta = {"affected_side": self.affected}

        def work() -> None:
            try:
                done = after.analyse_and_store(path, program, db=db, config=cfg, meta=meta)
            except BaseException as exc:
                log.error("analysis/history of %s failed", path, exc_info=exc)
                self._post("stored", str(path), "error:" + error_message(exc))
            else:
                if done.session_id is not None:
                    self.stored_ids[str(path)] = done.session_id
                self._post("stored", str(path), done.describe())

        th = threading.Thread(target=work, name="emgfeedback-after", daemon=True)
        self.after_threads.append(th)
        th.start()
        return ("after", "Analysing the recording…", "")

    def write_report(self) -> bool:
        """Write the last recording's report in a helper thread (event ``report``)."""
        from emgfeedback.views.gui import after

        if not self.saved_recordings:
            return False
        path = Path(self.saved_recordings[-1])
        cfg, program = self.config, self.program
        meta = {"affected_side": self.affected}

        def work() -> None:
            try:
                out = after.write_session_report(path, program, config=cfg, meta=meta)
            except BaseException as exc:
                log.error("report of %s failed", path, exc_info=exc)
                self._post("report", str(path), "error:" + error_message(exc))
            else:
                self._post("report", str(path), str(out))

        th = threading.Thread(target=work, name="emgfeedback-report", daemon=True)
        self.after_threads.append(th)
        th.start()
        return True

    def save_clinician(self, clinician: Clinician) -> Path:
        """The therapist's notes and grades into the last recording's sidecar and, when the
        session is in the patient history already, into its history entry (raises
        :class:`ConfigError` without a recording or with an out-of-range grade)."""
        if not self.saved_recordings:
            raise ConfigError("no recording of this session: notes are stored with a recording "
                              "(tick 'Record the session' on the Connect screen)")
        recording = Path(self.saved_recordings[-1])
        path = save_clinician(recording, clinician)
        sid = self.stored_ids.get(str(recording))
        if sid is not None:  # stored before the notes were entered: update its entry
            from emgfeedback.views.history import History

            with History(self.db) as h:
                h.set_clinician(sid, clinician.validate().to_json())
        return path

    def events_shading(self, status: LiveStatus,
                       fb: FeedbackSnapshot) -> list[tuple[int, int, str, int]]:
        """Periods to shade on the traces: cues, markers, the detector's events, gaps."""
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


def _cue_title(text: str | None, program: Program | None) -> str | None:
    if not text:
        return None
    cue = Cue(text, 0, 0)
    kind = cue.kind_in(program.names()) if program is not None else cue.kind
    if kind == "rest":
        return words.rest_words()[0]
    if kind == "mvc":
        return words.effort_words(text)[0]
    if kind == "exercise":
        return words.exercise_words(text)[0]
    return None


def _changed(a: Guidance, b: Guidance) -> bool:
    return (a.phase, a.step, a.title, a.detail, a.alert, a.retracted, a.paused, a.summary) != (
        b.phase, b.step, b.title, b.detail, b.alert, b.retracted, b.paused, b.summary)
