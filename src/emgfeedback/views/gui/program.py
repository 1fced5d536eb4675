"""The clinic session's protocol as the GUI runs it: program, cues and live feedback (no Qt).

Everything here is timed in **samples of the stream**, never by the wall clock, so the same
recording replayed at any speed drives the screens exactly as it did live.

Two objects, both session consumers (their :meth:`feed` is called by the session thread with every
:class:`~emgfeedback.dsp.chain.Processed` chunk):

:class:`ProgramRunner`
    Leads or follows the protocol.  *Leading* (a live board): it puts the program's cues into the
    stream with :meth:`Session.mark` at sample counts (``rest``, ``mvc L-ZYG``, ``smile``...), and
    the patient follows the screen.  *Following* (the simulated board, a replay): the source brings
    its own cues; the runner only counts reps and ends the program when it is complete.
:class:`Feedback`
    Interprets the cues that come back in the stream: rest baseline and MVC per channel, %MVC,
    target band and quiet limit per region, per-rep figures and the quiet-region crossings that
    turn a bar red.

The GUI thread reads both through :meth:`snapshot` methods that copy small state under a lock.

.. note::
   :class:`Feedback` is the GUI's interim normalisation and rep scoring, kept deliberately small
   (rest mean, 95th-percentile MVC, %MVC, a quiet limit with a minimum duration).  The clinical
   engine (``emgfeedback.clinical``: calibration, exercise programs, ``Detector``) is the
   authority; when it is merged, the window takes calibration, events and rep figures from it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emgfeedback.clinical.regions import EXERCISES, parse_label
from emgfeedback.dsp.chain import Processed
from emgfeedback.stream import Marker

__all__ = [
    "PROGRAMS",
    "CalibrationRow",
    "Cue",
    "ExerciseStep",
    "Feedback",
    "FeedbackSnapshot",
    "Program",
    "ProgramRunner",
    "RepResult",
    "RunnerSnapshot",
    "program_sidecar",
    "validate_patient_id",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- patient id
def validate_patient_id(text: str) -> str | None:
    """``None`` when ``text`` is an acceptable pseudonymous id, else the reason (one line).

    The rule is the recorder's (:func:`emgfeedback.io.edf.validate_patient_id`: up to three
    capital letters, an optional dash, then digits, e.g. ``P-0042``), so an id accepted on the
    Connect screen can always be written into a recording, and a name such as ``Maria`` or
    ``Jan Smit`` is refused.
    """
    from emgfeedback.errors import ConfigError
    from emgfeedback.io.edf import validate_patient_id as io_validate

    t = text.strip()
    if not t:
        return "enter a pseudonymous patient id such as P-0042"
    try:
        io_validate(t)
    except ConfigError:
        return ("patient id: up to 3 capital letters, an optional dash, then digits, e.g. "
                "P-0042 (a pseudonymous code, never a name)")
    return None


# --------------------------------------------------------------------------- programs
@dataclass(frozen=True)
class ExerciseStep:
    """One exercise of a program: ``reps`` reps of ``hold_s`` with ``rest_s`` between them.

    ``band_pct`` is the target band on the target regions and ``quiet_limit_pct`` the limit for
    the regions to keep quiet, both in %MVC (therapist's choice; no validated cut-off exists).
    """

    exercise: str
    reps: int
    hold_s: float = 3.0
    rest_s: float = 4.0
    band_pct: tuple[float, float] = (30.0, 70.0)
    quiet_limit_pct: float = 15.0

    @property
    def targets(self) -> tuple[str, ...]:
        return EXERCISES[self.exercise].targets

    @property
    def cue(self) -> str:
        return EXERCISES[self.exercise].cue


@dataclass(frozen=True)
class Program:
    """Calibration (a rest period, MVC trials per region) then a list of exercises."""

    name: str
    exercises: tuple[ExerciseStep, ...]
    rest_s: float = 10.0
    mvc_trials: int = 3
    mvc_hold_s: float = 3.0
    mvc_gap_s: float = 3.0

    def step_for(self, exercise: str) -> ExerciseStep | None:
        for s in self.exercises:
            if s.exercise == exercise:
                return s
        return None

    @property
    def total_reps(self) -> int:
        return sum(s.reps for s in self.exercises)


#: Built-in programs until the clinical engine's TOML programs are merged.
PROGRAMS: dict[str, Program] = {
    p.name: p
    for p in (
        Program("Smile x3 (clinic check)", (ExerciseStep("smile", 3),)),
        Program("Standard NMR", (
            ExerciseStep("smile", 5), ExerciseStep("eye_closure", 5),
            ExerciseStep("pucker", 3), ExerciseStep("brow_raise", 3),
        )),
        Program("Eye closure x5", (ExerciseStep("eye_closure", 5, band_pct=(20.0, 60.0)),)),
    )
}


def program_sidecar(program: Program) -> dict[str, Any]:
    """The program as the recording's sidecar stores it (JSON-ready)."""
    return {
        "name": program.name, "rest_s": program.rest_s, "mvc_trials": program.mvc_trials,
        "mvc_hold_s": program.mvc_hold_s, "mvc_gap_s": program.mvc_gap_s,
        "exercises": [{"exercise": s.exercise, "reps": s.reps, "hold_s": s.hold_s,
                       "rest_s": s.rest_s, "band_pct": list(s.band_pct),
                       "quiet_limit_pct": s.quiet_limit_pct} for s in program.exercises],
    }


@dataclass(frozen=True)
class Cue:
    """A protocol period seen in the stream: ``text`` from ``start`` to ``stop`` (samples)."""

    text: str
    start: int
    stop: int

    @property
    def kind(self) -> str:
        """``rest``, ``mvc``, ``exercise`` or ``other`` (markers)."""
        t = self.text.lower()
        if t == "rest":
            return "rest"
        if t.startswith("mvc "):
            return "mvc"
        if t in EXERCISES:
            return "exercise"
        return "other"


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


class ProgramRunner:
    """Runs a :class:`Program` in samples; see the module docstring.

    Parameters
    ----------
    program:
        What to run.
    mark:
        ``Session.mark`` (leading), or ``None`` to follow the source's own cues.
    regions, sides, fs:
        Region codes and sides in use and the sample rate; taken from the first chunk when not
        given (the session opens the source in its own thread).

    Threads: :meth:`feed` runs in the session thread; :meth:`start_calibration`,
    :meth:`start_exercises`, :meth:`redo_mvc` and :meth:`snapshot` are called by the GUI thread.
    """

    def __init__(self, program: Program, mark: Callable[[str, int], None] | None,
                 regions: tuple[str, ...] = (), sides: tuple[str, ...] = (),
                 fs: float = 0.0) -> None:
        self.program = program
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
        self.on_done: Callable[[], None] | None = None

    @property
    def leading(self) -> bool:
        return self.mark is not None

    def _n(self, seconds: float) -> int:
        return int(round(seconds * self.fs))

    # ---- GUI thread
    def start_calibration(self) -> None:
        """Queue the rest period and the MVC trials of every region (leading only)."""
        p = self.program
        with self._lock:
            self._queue.append((("rest",), self._n(p.rest_s), self._n(2.0)))
            for code in self.regions:
                self._queue_mvc(code)
            self._next_at = self._pos if self._next_at is None else self._next_at
            self._phase = "calibration"

    def _queue_mvc(self, code: str) -> None:
        p = self.program
        texts = tuple(f"mvc {s}-{code}" for s in self.sides)
        for _ in range(p.mvc_trials):
            self._queue.append((texts, self._n(p.mvc_hold_s), self._n(p.mvc_gap_s)))

    def redo_mvc(self, code: str) -> None:
        """Queue the MVC trials of one region again (leading only)."""
        with self._lock:
            self._queue_mvc(code)
            self._redo.append(code)
            if self._next_at is None:
                self._next_at = self._pos

    def start_exercises(self) -> None:
        """Queue the program's reps (leading only)."""
        with self._lock:
            for step in self.program.exercises:
                for _ in range(step.reps):
                    self._queue.append(((step.exercise,), self._n(step.hold_s),
                                        self._n(step.rest_s)))
            if self._next_at is None:
                self._next_at = self._pos

    def snapshot(self) -> RunnerSnapshot:
        with self._lock:
            return RunnerSnapshot(
                leading=self.leading, phase=self._phase, position=self._pos,
                next_cue_at=self._next_at if self._queue else None,
                reps_done=sum(self._reps_done.values()), reps_total=self.program.total_reps,
                pending_redo=tuple(self._redo),
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
                if cue.kind == "mvc":
                    code = cue.text.split("-")[-1].upper()
                    if code in self._redo:
                        self._redo.remove(code)
                if cue.kind == "exercise" and self.program.step_for(cue.text.lower()):
                    self._phase = "exercise"
                    self._open_reps[cue.start] = cue
            for start, cue in list(self._open_reps.items()):
                if p.stop >= cue.stop:
                    del self._open_reps[start]
                    ex = cue.text.lower()
                    self._reps_done[ex] = self._reps_done.get(ex, 0) + 1
            if self._phase == "exercise" and not self._open_reps and all(
                self._reps_done.get(s.exercise, 0) >= s.reps for s in self.program.exercises
            ):
                self._phase = "done"
                self._queue.clear()
                done = True
            due: list[tuple[str, ...]] = []
            durations: list[int] = []
            if self.leading and self._queue and self._next_at is not None and p.stop >= self._next_at:
                texts, n, gap = self._queue.pop(0)
                due.append(texts)
                durations.append(n)
                # The marker lands on the first sample of the next chunk, i.e. at p.stop.
                self._next_at = p.stop + n + gap
            elif not self._queue:
                self._next_at = None
        for texts, n in zip(due, durations):
            assert self.mark is not None
            for t in texts:
                self.mark(t, n)
        if done and self.on_done is not None:
            self.on_done()


# --------------------------------------------------------------------------- feedback
@dataclass(frozen=True)
class CalibrationRow:
    """Calibration of one channel: rest mean/SD and MVC above rest, all µV of the envelope."""

    channel: str
    rest_mean_uv: float | None
    rest_sd_uv: float | None
    mvc_uv: float | None
    trials: int


@dataclass
class RepResult:
    """Figures of one rep (a cue window of an exercise), per side of the face."""

    index: int
    exercise: str
    side: str
    start: int
    stop: int
    target: str
    target_peak_pct: float
    time_in_band_pct: float
    quiet_peak_pct: dict[str, float] = field(default_factory=dict)
    crossings: list[tuple[str, int, int]] = field(default_factory=list)  # (channel, onset, alert)
    spans: list[tuple[str, int, int]] = field(default_factory=list)  # (channel, start, stop) above

    @property
    def synkinesis(self) -> bool:
        return bool(self.crossings)


@dataclass(frozen=True)
class FeedbackSnapshot:
    """Copied for the GUI thread on each timer tick."""

    position: int
    fs: float
    channels: tuple[str, ...]
    pct: np.ndarray  # current %MVC per channel (NaN when uncalibrated)
    envelope_uv: np.ndarray  # current envelope minus rest mean, µV
    red: np.ndarray  # bool per channel: a quiet region crossed its limit since the last snapshot
    role: tuple[str, ...]  # per channel: "target", "quiet" or "" (no rep running)
    band_pct: tuple[float, float]
    quiet_limit_pct: float
    cue: Cue | None  # the protocol period running at ``position`` (None between periods)
    last_cue: Cue | None
    calibration: tuple[CalibrationRow, ...]
    reps: tuple[RepResult, ...]
    mvc_trial: dict[str, int]


class Feedback:
    """Interim %MVC feedback and rep scoring from the cues in the stream (see module note).

    Threads: :meth:`feed` in the session thread; :meth:`snapshot` in the GUI thread.
    """

    MIN_CROSS_S = 0.05  # a quiet region must stay above its limit this long to count

    def __init__(self, program: Program, affected_side: str = "L") -> None:
        self.program = program
        self.affected_side = affected_side
        self._lock = threading.Lock()
        self._ready = False
        self.fs = 0.0
        self.channels: tuple[str, ...] = ()
        self._pos = 0

    def _setup(self, p: Processed) -> None:
        self.fs = p.fs
        self.channels = p.channels
        self.ids = [parse_label(c) for c in p.channels]
        n = len(p.channels)
        self._rest_sum = np.zeros(n)
        self._rest_sq = np.zeros(n)
        self._rest_n = 0
        self._mvc_trials: dict[int, list[float]] = {i: [] for i in range(n)}
        self._mvc_buf: dict[int, list[np.ndarray]] = {}
        self._cues: list[Cue] = []
        self._last_cue: Cue | None = None
        self._pct = np.full(n, np.nan)
        self._env = np.zeros(n)
        self._red = np.zeros(n, dtype=bool)
        self._above = np.zeros(n, dtype=np.int64)  # consecutive samples above the quiet limit
        self._reps: list[RepResult] = []
        self._rep_by_cue: dict[tuple[int, str], list[RepResult]] = {}
        self._crossed: dict[tuple[int, int], bool] = {}
        self._ready = True

    # ---- calibration values
    def rest_mean(self) -> np.ndarray:
        return self._rest_sum / self._rest_n if self._rest_n else np.zeros(len(self.channels))

    def _mvc(self) -> np.ndarray:
        out = np.full(len(self.channels), np.nan)
        for i, trials in self._mvc_trials.items():
            if trials:
                out[i] = max(float(np.median(trials)) - self.rest_mean()[i], 1e-6)
        return out

    def _index(self, short: str) -> int | None:
        for i, cid in enumerate(self.ids):
            if cid.short.upper() == short.upper():
                return i
        return None

    # ---- session thread
    def feed(self, p: Processed) -> None:
        """Apply the chunk's cues at their samples and update %MVC, reps and crossings."""
        with self._lock:
            if not self._ready:
                self._setup(p)
            for m in p.markers:
                self._start_cue(m)
            env = p.envelope
            start, stop = p.start, p.stop
            for cue in list(self._cues):
                a, b = max(cue.start, start), min(cue.stop, stop)
                if a < b:
                    seg = env[a - start:b - start]
                    self._accumulate(cue, seg, a)
                if stop >= cue.stop:
                    self._end_cue(cue)
            if len(p):
                rest = self.rest_mean()
                self._env = env[-1] - rest
                mvc = self._mvc()
                self._pct = np.maximum(self._env, 0.0) / mvc * 100.0
            self._pos = stop

    def _start_cue(self, m: Marker) -> None:
        cue = Cue(m.text, m.sample, m.sample + max(m.duration, 0))
        if cue.kind == "other":
            return
        self._cues.append(cue)
        self._last_cue = cue
        if cue.kind == "mvc":
            i = self._index(cue.text.split(" ", 1)[1])
            if i is not None:
                self._mvc_buf[id(cue)] = []
        if cue.kind == "exercise":
            step = self.program.step_for(cue.text.lower())
            targets = step.targets if step else EXERCISES[cue.text.lower()].targets
            results = []
            for side in sorted({c.side for c in self.ids}):
                tgt = [i for i, c in enumerate(self.ids) if c.side == side and c.code in targets]
                if not tgt:
                    continue
                results.append(RepResult(
                    index=len({r.start for r in self._reps}) + 1, exercise=cue.text.lower(),
                    side=side, start=cue.start, stop=cue.stop, target=self.ids[tgt[0]].short,
                    target_peak_pct=0.0, time_in_band_pct=0.0))
            self._reps.extend(results)
            self._rep_by_cue[(cue.start, cue.text)] = results
            self._above[:] = 0

    def _accumulate(self, cue: Cue, seg: np.ndarray, at: int) -> None:
        if cue.kind == "rest":
            self._rest_sum += seg.sum(axis=0)
            self._rest_sq += (seg**2).sum(axis=0)
            self._rest_n += len(seg)
        elif cue.kind == "mvc":
            i = self._index(cue.text.split(" ", 1)[1])
            if i is not None and id(cue) in self._mvc_buf:
                self._mvc_buf[id(cue)].append(seg[:, i].copy())
        elif cue.kind == "exercise":
            self._score(cue, seg, at)

    def _score(self, cue: Cue, seg: np.ndarray, at: int) -> None:
        step = self.program.step_for(cue.text.lower())
        lo, hi = step.band_pct if step else (30.0, 70.0)
        limit = step.quiet_limit_pct if step else 15.0
        mvc = self._mvc()
        pct = np.maximum(seg - self.rest_mean(), 0.0) / mvc * 100.0
        min_n = max(1, int(round(self.MIN_CROSS_S * self.fs)))
        for rep in self._rep_by_cue.get((cue.start, cue.text), []):
            t = self._index(rep.target)
            assert t is not None
            tp = pct[:, t]
            if np.isfinite(tp).all() and len(tp):
                rep.target_peak_pct = max(rep.target_peak_pct, float(tp.max()))
                n_cue = max(1, cue.stop - cue.start)
                rep.time_in_band_pct += 100.0 * float(((tp >= lo) & (tp <= hi)).sum()) / n_cue
            for i, cid in enumerate(self.ids):
                if cid.side != rep.side or cid.code in EXERCISES[rep.exercise].targets:
                    continue
                q = pct[:, i]
                if not np.isfinite(q).all() or not len(q):
                    continue
                rep.quiet_peak_pct[cid.short] = max(rep.quiet_peak_pct.get(cid.short, 0.0),
                                                    float(q.max()))
                over = q > limit
                # Run length of "above the limit" carried across chunks, sample by sample.
                run = int(self._above[i])
                for k, o in enumerate(over):
                    if not o and run >= min_n:
                        rep.spans.append((cid.short, at + k - run, at + k))
                    run = run + 1 if o else 0
                    if run == min_n:
                        key = (cue.start, i)
                        if not self._crossed.get(key):
                            self._crossed[key] = True
                            rep.crossings.append((cid.short, at + k - min_n + 1, at + k))
                    if run >= min_n:
                        self._red[i] = True
                self._above[i] = run

    def _end_cue(self, cue: Cue) -> None:
        self._cues.remove(cue)
        if cue.kind == "mvc":
            parts = self._mvc_buf.pop(id(cue), [])
            i = self._index(cue.text.split(" ", 1)[1])
            if parts and i is not None:
                x = np.concatenate(parts)
                if len(x):
                    self._mvc_trials[i].append(float(np.percentile(x, 95)))
        if cue.kind == "exercise":
            min_n = max(1, int(round(self.MIN_CROSS_S * self.fs)))
            for rep in self._rep_by_cue.get((cue.start, cue.text), []):
                for i, cid in enumerate(self.ids):
                    if cid.side == rep.side and self._above[i] >= min_n:
                        rep.spans.append((cid.short, cue.stop - int(self._above[i]), cue.stop))
            self._above[:] = 0

    def calibration_json(self) -> dict[str, dict[str, Any]] | None:
        """Rest mean/SD and MVC per channel for the recording's sidecar (any thread)."""
        snap = self.snapshot(clear_red=False)
        if snap is None:
            return None
        return {r.channel: {"rest_mean_uv": r.rest_mean_uv, "rest_sd_uv": r.rest_sd_uv,
                            "mvc_uv": r.mvc_uv, "mvc_trials": r.trials}
                for r in snap.calibration}

    def redo(self, code: str) -> None:
        """Forget the MVC trials of region ``code`` (GUI thread, before re-running them)."""
        with self._lock:
            if not self._ready:
                return
            for i, cid in enumerate(self.ids):
                if cid.code == code:
                    self._mvc_trials[i] = []

    # ---- GUI thread
    def snapshot(self, clear_red: bool = True) -> FeedbackSnapshot | None:
        """Copy the current state; clears the latched red flags (one reader: the window)."""
        with self._lock:
            if not self._ready:
                return None
            running = [c for c in self._cues if c.start <= self._pos]
            cue = running[-1] if running else None
            role: tuple[str, ...] = tuple("" for _ in self.channels)
            band, limit = (30.0, 70.0), 15.0
            if cue is not None and cue.kind == "exercise":
                targets = EXERCISES[cue.text.lower()].targets
                role = tuple("target" if c.code in targets else "quiet" for c in self.ids)
                step = self.program.step_for(cue.text.lower())
                if step:
                    band, limit = step.band_pct, step.quiet_limit_pct
            rest = self.rest_mean()
            sd = (np.sqrt(np.maximum(self._rest_sq / self._rest_n - rest**2, 0.0))
                  if self._rest_n else None)
            mvc = self._mvc()
            rows = tuple(
                CalibrationRow(
                    self.ids[i].short,
                    float(rest[i]) if self._rest_n else None,
                    float(sd[i]) if sd is not None else None,
                    float(mvc[i]) if np.isfinite(mvc[i]) else None,
                    len(self._mvc_trials[i]),
                )
                for i in range(len(self.channels))
            )
            snap = FeedbackSnapshot(
                position=self._pos, fs=self.fs, channels=self.channels,
                pct=self._pct.copy(), envelope_uv=self._env.copy(), red=self._red.copy(),
                role=role, band_pct=band, quiet_limit_pct=limit, cue=cue,
                last_cue=self._last_cue, calibration=rows,
                reps=tuple(RepResult(**{**r.__dict__, "quiet_peak_pct": dict(r.quiet_peak_pct),
                                        "crossings": list(r.crossings),
                                        "spans": list(r.spans)}) for r in self._reps),
                mvc_trial={self.ids[i].short: len(t) for i, t in self._mvc_trials.items()},
            )
            if clear_red:
                self._red[:] = False
            return snap
