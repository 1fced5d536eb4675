"""One session from one description: :class:`SessionSpec` (what the user asked for) ->
:class:`Session` (source -> chain -> consumers), run in the calling thread or a worker thread.

::

    SessionSpec ──> Session ──> Pipeline: source ─> [recording grid] ─> Chain ─> Recorder
                                                                            ├─> ClinicFeedback (LiveClinic)
                                                                            ├─> ProgramRunner (cues)
                                                                            ├─> LslPublisher
                                                                            └─> views (console, GUI buffers)

Every command that runs a stream builds its session here: ``emgfeedback demo`` (console and GUI),
``record``, ``replay`` (console) and, offline, ``analyze``/``replay --json``
(:mod:`emgfeedback.app.analyze` runs the same pipeline over a file).  The session closes every
consumer (``Consumer.close()``) and the recording, also after an error or Ctrl-C.

Views read the session's state through :meth:`Session.snapshot` (the program's cue and phase,
%MVC, the detector's events) from any thread; they never drive the session.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emgfeedback.app.feedback import ClinicFeedback, FeedbackSnapshot
from emgfeedback.app.pipeline import Consumer, Pipeline, RecordingGrid
from emgfeedback.app.program import FOLLOW_KINDS, ProgramRunner, Protocol, RunnerSnapshot, program_sidecar
from emgfeedback.app.recording import RecordingControl
from emgfeedback.clinical.calibration import Calibration
from emgfeedback.clinical.detect import SynkinesisEvent
from emgfeedback.clinical.exercises import Program, default_program
from emgfeedback.config import Config
from emgfeedback.dsp.chain import Chain
from emgfeedback.errors import ConfigError, EmgError
from emgfeedback.stream import SourceBase
from emgfeedback.vocabulary import SIDES

if TYPE_CHECKING:
    from emgfeedback.video.live import VideoSpec

__all__ = ["Session", "SessionSnapshot", "SessionSpec", "run_in_foreground"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionSpec:
    """What the user asked for; :class:`Session` builds and runs it.

    Attributes
    ----------
    source:
        Board specification (``simulated``, ``serial:PORT``, ``replay:FILE``, ...; see
        :mod:`emgfeedback.sources.registry`) and ``source_options`` for it.
    source_factory:
        Instead of ``source``: a function returning an unopened source (tests, benchmarks).
    config:
        Validated configuration.
    program:
        The exercise program (default: the shipped default program).
    affected_side:
        ``L``/``R``; default: the source's (a simulated patient's), else the program's.
    clinic:
        Calibration and synkinesis detection (and the program runner): ``True`` required (an
        error when the channels are not facial regions), ``False`` off, ``None`` where the
        channels allow it (filters and bars only otherwise).
    follow:
        The runner follows the source's own cues (simulated, replay) instead of putting cues
        into the stream; default by the source kind.
    auto_program:
        Leading without buttons (console): calibration at once, then the program's reps.
    record_to, patient:
        Record EDF+/BDF+ from the first sample (``record_to``) under a pseudonymous id.
    recordable:
        Samples go on a recording grid from the first sample so that a recording can start
        later (the GUI's Record button), as if it had been started at once.
    lsl, lsl_scope:
        Publish raw, envelope and markers on Lab Streaming Layer outlets, on loopback unless
        ``lsl_scope`` names an interface (:class:`emgfeedback.io.lsl.LslPublisher`).
    duration_s:
        Stop after this many seconds of signal (sample count), or when the source ends.
    calibration:
        A stored calibration instead of the session's own ``rest``/``mvc`` periods.
    video:
        A camera or video file beside the EMG (:mod:`emgfeedback.app.video`): its frames on
        the EMG sample axis, recorded beside the EDF+; a replayed recording with a video
        replays it without being asked.
    """

    source: str = "simulated"
    source_options: Mapping[str, Any] = field(default_factory=dict)
    source_factory: Callable[[], SourceBase] | None = None
    config: Config = field(default_factory=Config)
    program: Program | None = None
    affected_side: str | None = None
    clinic: bool | None = None
    follow: bool | None = None
    auto_program: bool = False
    protocol: Protocol = field(default_factory=Protocol)
    record_to: Path | None = None
    patient: str | None = None
    recordable: bool = False
    lsl: bool = False
    lsl_scope: str = "localhost"
    duration_s: float | None = None
    calibration: Calibration | None = None
    video: VideoSpec | None = None

    def __post_init__(self) -> None:
        if self.record_to is not None:
            from emgfeedback.validate import validate_patient_id

            if not self.patient:
                raise ConfigError("recording needs a pseudonymous patient id: --patient P-0001")
            validate_patient_id(self.patient)
            if self.record_to.suffix.lower() not in (".edf", ".bdf"):
                raise ConfigError(f"{self.record_to}: recordings are .edf or .bdf")
        if self.affected_side is not None and self.affected_side not in SIDES:
            raise ConfigError(f"affected side must be L or R, got {self.affected_side!r}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"duration must be positive, got {self.duration_s}")

    @property
    def kind(self) -> str:
        """The source kind (``serial`` of ``serial:/dev/ttyUSB0``)."""
        return self.source.partition(":")[0]


@dataclass(frozen=True)
class SessionSnapshot:
    """What a view shows, copied under the session's locks (any thread)."""

    samples: int
    fs: float
    lost: int
    crc_errors: int
    reconnects: int
    feedback: FeedbackSnapshot | None  # cue, %MVC, thresholds, events, calibration
    runner: RunnerSnapshot | None  # program phase, reps done, next cue
    recording: str  # "off", "starting", "on", "saving"
    error: str | None  # why detection did not start, or the session's error


class Session:
    """A session built from ``spec``; see the module docstring.

    Parameters
    ----------
    spec:
        What to run.
    views:
        More consumers, fed after the clinical engine and the runner (console view, GUI
        buffers), or functions ``view(session)`` that build one once the source is open (a
        view that needs the chain); each is closed with the session.
    recording:
        A recording control of the caller's (the GUI's: its own paths and sidecar callbacks);
        default one for ``spec.record_to``.
    on_event:
        ``on_event(kind, event)`` for each detector event (``raised``/``ended``; session
        thread).
    on_opened:
        Called in the session thread once the source is open and the consumers are wired.
    on_recording_error:
        A recording that cannot start is passed here and the session goes on unrecorded
        (GUI); without it the error ends the session (``record``).
    """

    def __init__(self, spec: SessionSpec, *,
                 views: Sequence[Consumer | Callable[["Session"], Consumer]] = (),
                 recording: RecordingControl | None = None,
                 on_event: Callable[[str, SynkinesisEvent], None] | None = None,
                 on_opened: Callable[["Session"], None] | None = None,
                 on_recording_error: Callable[[BaseException], None] | None = None) -> None:
        self.spec = spec
        self.program = spec.program or default_program(spec.config.detection)
        follow = spec.follow if spec.follow is not None else spec.kind in FOLLOW_KINDS
        self.follow = follow
        record = spec.record_to is not None or spec.recordable or recording is not None
        grid = RecordingGrid.for_path(spec.record_to) if spec.record_to else RecordingGrid()
        self.pipeline = Pipeline(self._make_source, spec.config, grid if record else None)
        if recording is None and spec.record_to is not None:
            assert spec.patient is not None  # SessionSpec checked it
            path = spec.record_to
            recording = RecordingControl(
                spec.patient, lambda: path,
                sidecar={"program": program_sidecar(self.program, None if follow else
                                                    spec.protocol)})
            recording.request_start()
        self.recording = recording
        self.feedback: ClinicFeedback | None = None
        self.runner: ProgramRunner | None = None
        if spec.clinic is not False:
            self.feedback = ClinicFeedback(self.program, spec.affected_side,
                                           calibration=spec.calibration, on_event=on_event,
                                           on_calibrated=self._calibrated,
                                           calibration_config=spec.config.calibration)
            self.runner = ProgramRunner(self.program, None if follow else self.pipeline.mark,
                                        protocol=spec.protocol, auto=spec.auto_program)
        self.views = list(views)
        self.on_opened = on_opened
        self.on_recording_error = on_recording_error
        self.error: BaseException | None = None
        self.lsl: Any = None
        #: the video consumer (video.live.VideoFeed / VideoReplay) and why there is none
        self.video: Any = None
        self.video_error: str | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ building
    def _make_source(self) -> SourceBase:
        if self.spec.source_factory is not None:
            return self.spec.source_factory()
        from emgfeedback.sources.registry import open_source

        options = dict(self.spec.source_options)
        if (self.spec.source.partition(":")[0] == "simulated" and self.spec.program is not None
                and "plan" not in options):
            # A program given for the simulated patient is what the patient does (its cues,
            # with the program's exercise names, lead; the runner follows them).
            from emgfeedback.app.program import simulated_plan

            options["plan"] = simulated_plan(self.spec.program)
        return open_source(self.spec.source, **options)

    def _calibrated(self, cal: Calibration) -> None:
        """The detector's calibration exists: into the recording's sidecar at once."""
        if self.recording is not None:
            self.recording.update_sidecar(calibration=cal.to_json())

    def _service_recording(self, pipeline: Pipeline) -> None:
        rc = self.recording
        if rc is None:
            return
        try:
            rc.service(pipeline)
        except Exception as exc:
            if self.on_recording_error is None:
                raise
            if not isinstance(exc, EmgError):
                log.error("recording could not start", exc_info=exc)
            self.on_recording_error(exc)

    def _wire(self, chain: Chain) -> None:
        """After the source opened (session thread): recorder, clinic, runner, LSL, views."""
        pl = self.pipeline
        info = pl.source.info
        side = (info.extra or {}).get("affected_side")
        fbk = self.feedback
        if fbk is not None:
            # A simulated patient's side is the truth; else what the user said, else the program.
            fbk.affected_side = (side if side in SIDES else
                                 self.spec.affected_side or self.program.affected_side)
        if self.recording is not None:
            pl.services.append(self._service_recording)
            self._service_recording(pl)  # from the first sample when asked at the start
        if fbk is not None:
            try:
                fbk.start(chain, tuple(info.channels),
                          annotate=self.recording.annotate if self.recording is not None
                          else None)
            except ConfigError:
                if self.spec.clinic:
                    raise
                log.info("channels %s are not facial regions: no calibration or detection",
                         ", ".join(info.channels))
                self.feedback = self.runner = fbk = None
        for consumer in (fbk, self.runner):
            if consumer is not None:
                pl.add(consumer)
        if self.spec.lsl:
            from emgfeedback.io.lsl import LslPublisher

            self.lsl = pl.add(LslPublisher(info, scope=self.spec.lsl_scope))
        if self.spec.video is not None or self.spec.kind == "replay":
            from emgfeedback.app.video import attach_video

            self.video = attach_video(self, chain)
            if self.video is not None:
                pl.add(self.video)
        for v in self.views:
            pl.add(v if isinstance(v, Consumer) else v(self))
        if self.on_opened is not None:
            self.on_opened(self)

    # ------------------------------------------------------------------ running
    @property
    def chain(self) -> Chain | None:
        return self.pipeline.chain

    @property
    def source(self) -> SourceBase:
        return self.pipeline.source

    def mark(self, text: str, duration_samples: int = 0) -> None:
        """Annotate the stream at the next chunk (any thread): markers, cues."""
        self.pipeline.mark(text, duration_samples)

    def run(self) -> None:
        """Open, wire and run the session in the calling thread until ``duration_s`` of signal,
        the end of the source, or :meth:`stop`; everything is closed on the way out."""
        pl = self.pipeline
        try:
            if pl.stopping:
                return
            chain = pl.open()
            self._wire(chain)
            limit = (None if self.spec.duration_s is None
                     else int(round(self.spec.duration_s * chain.fs)))
            if limit is None and self._read_ahead():
                pl.run_ahead(close=False)  # a file at full speed: the chain on a second core
                return
            while not pl.stopping:
                if limit is not None and pl.samples >= limit:
                    break
                p = pl.step()
                if p is None and pl.finished:
                    break
        finally:
            self.close()

    def _read_ahead(self) -> bool:
        """A replay at full speed (``--speed max``) that records nothing: nothing waits for
        the wall clock or a board, so the pipeline reads ahead (:meth:`Pipeline.run_ahead`)."""
        from emgfeedback.sources.replay import ReplaySource

        pl = self.pipeline
        src = pl.source
        return (isinstance(src, ReplaySource) and src.speed is None and pl.recording is None
                and not pl.services)

    def close(self) -> None:
        """Close the source, the recording (with its final sidecar), then every consumer
        (once)."""
        if self._closed:
            return
        self._closed = True
        pl = self.pipeline
        try:
            try:
                pl._close_source()
            finally:
                if self.recording is not None:
                    self.recording.close(pl)
        finally:
            pl.close()

    def start(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run the session in a worker thread; an error ends up in :attr:`error` and is passed
        to ``on_error`` (in the worker thread: a GUI hands it to its own thread)."""

        def work() -> None:
            try:
                self.run()
            except BaseException as exc:  # reported to the user, never lost in a thread
                if not isinstance(exc, EmgError):
                    log.error("session thread failed", exc_info=exc)
                self.error = exc
                if on_error is not None:
                    on_error(exc)

        self._thread = threading.Thread(target=work, name="emgfeedback-session", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the worker thread to end (the source ended, an error, or :meth:`stop`)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Ask the session to stop after the current chunk (any thread); with a worker thread
        and ``timeout``, wait that long for it to end."""
        self.pipeline.stop()
        th = self._thread
        if th is not None and timeout is not None and th is not threading.current_thread():
            th.join(timeout)
            if th.is_alive():
                log.warning("session thread did not stop within %.1f s", timeout)

    def snapshot(self) -> SessionSnapshot:
        """The state a view shows (any thread)."""
        pl = self.pipeline
        fb = self.feedback.snapshot() if self.feedback is not None else None
        err = fb.error if fb is not None else None
        if self.error is not None:
            err = str(self.error)
        return SessionSnapshot(
            samples=pl.samples, fs=pl.chain.fs if pl.chain is not None else 0.0, lost=pl.lost,
            crc_errors=pl.crc_errors, reconnects=pl.reconnects, feedback=fb,
            runner=self.runner.snapshot() if self.runner is not None else None,
            recording=self.recording.state if self.recording is not None else "off",
            error=err)


@contextmanager
def _sigterm_stops(session: Session) -> Iterator[None]:
    """SIGTERM and Ctrl-C (SIGINT) ask ``session`` to stop after the current chunk, so no
    consumer (the recorder) is interrupted inside a write (main thread only; elsewhere nothing
    changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stop = lambda *_: session.stop()  # noqa: E731
    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def run_in_foreground(session: Session) -> None:
    """Run ``session`` in the calling (main) thread for the command line: SIGTERM and Ctrl-C
    stop it cleanly; the recording and every consumer are closed either way."""
    with _sigterm_stops(session):
        try:
            session.run()
        except KeyboardInterrupt:
            pass  # run() closed everything on its way out
