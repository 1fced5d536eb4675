"""The clinic session's protocol: programs, cues, the program runner (no Qt; the GUI and the
console demo use it through :mod:`emgfeedback.app.session`).

Everything here is timed in **samples of the stream**, never by the wall clock, so the same
recording replayed at any speed drives the screens exactly as it did live.

Programs are the clinical engine's (:class:`emgfeedback.clinical.exercises.Program`, TOML files,
docs/analysis.md "Exercise programs"): :func:`program_choices` offers the shipped default program
and the GUI's presets (``emgfeedback/data/programs/*.toml``); any other TOML can be loaded.

:class:`ProgramRunner` is a session consumer (its :meth:`feed` is called by the session thread
with every :class:`~emgfeedback.stream.Processed` chunk).  It leads or follows the protocol.
*Leading* (a live board): it puts the cues into the stream with :meth:`Session.mark` at sample
counts (``rest``, ``mvc L-ZYG`` with the timing of a :class:`Protocol`, then the program's reps
with their hold and rest times), and the patient follows the screen.  *Following* (the simulated
board, a replay): the source brings its own cues; the runner only counts reps and ends the
program when it is complete.  What the cues *mean* (calibration, %MVC, synkinesis, rep figures)
is the clinical engine's business: :mod:`emgfeedback.app.feedback`.

The GUI thread reads the runner through :meth:`ProgramRunner.snapshot` (a small copy under a lock).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from emgfeedback.clinical.exercises import DetectionConfig, Program, default_program, load_program
from emgfeedback.vocabulary import EXERCISES, REST, Cue, format_mvc, parse_annotation, parse_label
from emgfeedback.stream import Processed

__all__ = [
    "FOLLOW_KINDS",
    "Protocol",
    "cue_text",
    "ProgramRunner",
    "RunnerSnapshot",
    "program_choices",
    "program_sidecar",
    "resolve_program",
]

log = logging.getLogger(__name__)


#: Source kinds that bring their own cues (the runner follows them); live boards are led.
FOLLOW_KINDS = ("simulated", "replay")


# --------------------------------------------------------------------------- programs
@dataclass(frozen=True)
class Protocol:
    """Timing of the calibration the GUI leads on a live board (the program's reps carry their
    own hold and rest times): a rest period, then ``mvc_trials`` MVC trials per region."""

    rest_s: float = 10.0
    rest_gap_s: float = 2.0
    mvc_trials: int = 3
    mvc_hold_s: float = 3.0
    mvc_gap_s: float = 3.0


def _preset_files() -> list[Path]:
    folder = resources.files("emgfeedback").joinpath("data/programs")
    try:
        return sorted(Path(str(f)) for f in folder.iterdir() if str(f).endswith(".toml"))
    except FileNotFoundError:
        return []


def program_choices() -> dict[str, Path | None]:
    """Programs offered on the Connect screen: name -> TOML file (``None``: the shipped default
    program).  A preset that does not load is left out with a warning."""
    out: dict[str, Path | None] = {}
    for f in _preset_files():
        try:
            out[load_program(f).name] = f
        except Exception as exc:  # a broken preset must not stop the window
            log.warning("program preset %s not offered: %s", f, exc)
    out.setdefault(default_program().name, None)
    return out


def resolve_program(choice: str, detection: DetectionConfig | None = None) -> Program:
    """The program called ``choice`` in :func:`program_choices`, or the TOML file ``choice``
    (``detection``: the configuration's detection defaults); raises
    :class:`~emgfeedback.errors.ConfigError` (one line) for anything else."""
    from emgfeedback.errors import ConfigError

    choices = program_choices()
    if choice in choices:
        f = choices[choice]
        return default_program(detection) if f is None else load_program(f, detection)
    if choice.lower().endswith(".toml"):
        return load_program(choice, detection)
    raise ConfigError(f"unknown program {choice!r} (known: {', '.join(choices)}, or a .toml file)")


def program_sidecar(program: Program, protocol: Protocol | None = None) -> dict[str, Any]:
    """The program as the recording's sidecar stores it (JSON-ready)."""
    from dataclasses import asdict

    out: dict[str, Any] = {
        "name": program.name,
        "affected_side": program.affected_side,
        "exercises": [asdict(e) for e in program.exercises],
        "detection": asdict(program.detection),
        "channels": {k: asdict(v) for k, v in program.channels.items()},
    }
    if protocol is not None:
        out["calibration_protocol"] = asdict(protocol)
    return out


def simulated_plan(program: Program) -> tuple[tuple[str, tuple[str, ...], float, float, int], ...]:
    """What the simulated patient is asked to do for ``program``
    (:data:`emgfeedback.sources.facesim.Plan`): each exercise's name, targets, hold, rest and
    reps, in order."""
    return tuple((e.name, tuple(e.targets), float(e.hold_s), float(e.rest_s), int(e.reps))
                 for e in program.exercises)


def cue_text(program: Program, name: str) -> str:
    """What the patient is asked to do for exercise ``name``."""
    ex = program.find(name)
    if ex is not None and ex.cue:
        return ex.cue
    return EXERCISES[name].cue if name in EXERCISES else name


# --------------------------------------------------------------------------- runner
@dataclass(frozen=True)
class RunnerSnapshot:
    """What the GUI needs from the runner, copied under its lock."""

    leading: bool
    phase: str  # "waiting", "calibration", "exercise", "done"
    position: int  # one past the newest processed sample
    next_cue_at: int | None  # leading: sample of the next cue (for the rest countdown)
    reps_done: int
    reps_total: int
    pending_redo: tuple[str, ...]
    steps_done: int = 0  # leading: cue periods issued (rest, each MVC trial, each rep)
    steps_total: int = 0  # leading: issued + queued + planned (0 when not leading)
    next_text: str | None = None  # leading: the next cue's text
    paused: bool = False


class ProgramRunner:
    """Runs a :class:`Program` in samples; see the module docstring.

    Parameters
    ----------
    program:
        The clinical program: its exercises, reps, hold and rest times.
    mark:
        ``Session.mark`` (leading), or ``None`` to follow the source's own cues.
    regions, sides, fs:
        Region codes and sides in use and the sample rate; taken from the first chunk when not
        given (the session opens the source in its own thread).
    auto:
        Leading without buttons (the console demo): queue the calibration at the first chunk
        and the program's reps once the calibration cues are over.

    Threads: :meth:`feed` runs in the session thread; :meth:`start_calibration`,
    :meth:`start_exercises`, :meth:`redo_mvc` and :meth:`snapshot` are called by the GUI thread.
    """

    def __init__(self, program: Program, mark: Callable[[str, int], None] | None,
                 regions: tuple[str, ...] = (), sides: tuple[str, ...] = (),
                 fs: float = 0.0, protocol: Protocol | None = None, auto: bool = False) -> None:
        self.program = program
        self.protocol = protocol or Protocol()
        self.mark = mark
        self.regions = regions
        self.sides = sides
        self.fs = fs
        self._lock = threading.Lock()
        self._queue: list[tuple[tuple[str, ...], int, int]] = []  # (texts, cue samples, gap after)
        self._next_at: int | None = None
        self._pos = 0
        self._phase = "waiting"
        self._reps_done: dict[str, int] = {}
        self._open_reps: dict[int, Cue] = {}
        self._redo: list[str] = []
        self._own = {e.name.lower() for e in program.exercises}  # reps that count
        self._issued = 0
        self._last_end = 0  # leading: end of the last issued cue plus its gap
        self._paused = False
        self._cal_queued = False
        self._ex_queued = False
        self.on_done: Callable[[], None] | None = None
        self.auto = auto
        self._auto_step = 0  # auto: 0 nothing queued yet, 1 calibration queued, 2 reps queued

    @property
    def leading(self) -> bool:
        return self.mark is not None

    def _n(self, seconds: float) -> int:
        return int(round(seconds * self.fs))

    # ---- GUI thread
    def start_calibration(self) -> None:
        """Queue the rest period and the MVC trials of every region (leading only)."""
        with self._lock:
            self._queue_calibration()

    def _queue_calibration(self) -> None:
        p = self.protocol
        self._queue.append(((REST,), self._n(p.rest_s), self._n(p.rest_gap_s)))
        for code in self.regions:
            self._queue_mvc(code)
        self._next_at = self._start_at() if self._next_at is None else self._next_at
        self._phase = "calibration"
        self._cal_queued = True

    def _start_at(self) -> int:
        """When a newly queued cue may start: now, but never inside the last cue or its gap."""
        return max(self._pos, self._last_end)

    def _queue_mvc(self, code: str) -> None:
        p = self.protocol
        texts = tuple(format_mvc(f"{s}-{code}") for s in self.sides)
        for _ in range(p.mvc_trials):
            self._queue.append((texts, self._n(p.mvc_hold_s), self._n(p.mvc_gap_s)))

    def redo_mvc(self, code: str) -> None:
        """Queue the MVC trials of one region again (leading only)."""
        with self._lock:
            self._queue_mvc(code)
            self._redo.append(code)
            if self._next_at is None:
                self._next_at = self._start_at()

    def start_exercises(self) -> None:
        """Queue the program's reps (leading only)."""
        with self._lock:
            self._queue_exercises()

    def _queue_exercises(self) -> None:
        for ex in self.program.exercises:
            for _ in range(ex.reps):
                self._queue.append(((ex.name,), self._n(ex.hold_s), self._n(ex.rest_s)))
        self._ex_queued = True
        if self._next_at is None:
            self._next_at = self._start_at()

    def pause(self) -> None:
        """Hold the next cue (leading; the running cue ends as planned)."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        """Issue the held cues again, the next one after a short pause (2 s) to get ready."""
        with self._lock:
            self._paused = False
            if self._next_at is not None:
                self._next_at = max(self._next_at, self._pos + self._n(2.0))

    def calibration_queued_done(self) -> bool:
        """Leading: the calibration was queued and every cue of it has been issued and ended."""
        with self._lock:
            return (self._cal_queued and not self._ex_queued and not self._queue
                    and self._pos >= self._last_end)

    def _auto(self, now: int) -> None:
        """Console demo: calibration at once, the reps when the calibration cues are over."""
        if self._auto_step == 0:
            self._auto_step = 1
            self._queue_calibration()
            self._next_at = now
        elif self._auto_step == 1 and not self._queue and self._next_at is None:
            self._auto_step = 2
            self._queue_exercises()

    def close(self) -> None:
        """Nothing to release (a session consumer)."""

    def snapshot(self) -> RunnerSnapshot:
        with self._lock:
            reps_total = sum(e.reps for e in self.program.exercises)
            total = 0
            if self.leading:
                total = self._issued + len(self._queue)
                if not self._cal_queued:
                    total += 1 + len(self.regions) * self.protocol.mvc_trials
                if not self._ex_queued:
                    total += reps_total
            return RunnerSnapshot(
                leading=self.leading, phase=self._phase, position=self._pos,
                next_cue_at=self._next_at if self._queue else None,
                reps_done=sum(self._reps_done.values()),
                reps_total=reps_total,
                pending_redo=tuple(self._redo),
                steps_done=self._issued if self.leading else 0,
                steps_total=total,
                next_text=self._queue[0][0][0] if self._queue else None,
                paused=self._paused,
            )

    # ---- session thread
    def feed(self, p: Processed) -> None:
        """Count samples, issue due cues (leading), count finished reps (both)."""
        done = False
        with self._lock:
            if not self.fs:
                ids = [parse_label(c) for c in p.channels]
                self.fs = p.fs
                self.regions = self.regions or tuple(dict.fromkeys(c.code for c in ids))
                self.sides = self.sides or tuple(sorted({c.side for c in ids}))
            self._pos = p.stop
            for m in p.markers:
                cue = Cue(m.text, m.sample, m.sample + m.duration)
                if cue.kind in ("rest", "mvc") and self._phase == "waiting":
                    self._phase = "calibration"
                ann = parse_annotation(cue.text)
                if ann.kind == "mvc" and ann.channel is not None:
                    code = ann.channel.split("-")[-1]
                    if code in self._redo:
                        self._redo.remove(code)
                if cue.text.strip().lower() in self._own:
                    self._phase = "exercise"
                    self._open_reps[cue.start] = cue
            for start, cue in list(self._open_reps.items()):
                if p.stop >= cue.stop:
                    del self._open_reps[start]
                    ex = cue.text.strip().lower()
                    self._reps_done[ex] = self._reps_done.get(ex, 0) + 1
            if self._phase == "exercise" and not self._open_reps and all(
                self._reps_done.get(e.name, 0) >= e.reps for e in self.program.exercises
            ):
                self._phase = "done"
                self._queue.clear()
                done = True
            due: list[tuple[str, ...]] = []
            durations: list[int] = []
            if (self.leading and self._queue and self._next_at is not None
                    and p.stop >= self._next_at and not self._paused):
                texts, n, gap = self._queue.pop(0)
                due.append(texts)
                durations.append(n)
                self._issued += 1
                # The marker lands on the first sample of the next chunk, i.e. at p.stop.
                self._next_at = p.stop + n + gap
                self._last_end = self._next_at
            elif not self._queue:
                self._next_at = None
            if self.auto and self.leading:
                self._auto(p.stop)
        for texts, n in zip(due, durations):
            assert self.mark is not None
            for t in texts:
                self.mark(t, n)
        if done and self.on_done is not None:
            self.on_done()


