"""Detected events against the simulator's ground truth, per event class (tests, bench).

Pure functions over the simulator's :class:`~emgfeedback.sources.facesim.Truth` entries and any
detected events: no detector import.  A detected event is read by attribute (duck typing), so
the detector of today (every event a synkinesis, no ``type``) and the one with event classes
(``type`` in ``synkinesis``, ``blink``, ``artefact``; ``alert`` ``None`` for an event that never
raised one; ``retracted`` for a withdrawn alert) are scored alike: ``channel``, ``onset``,
``offset`` (or ``None``), ``alert`` (or ``None``), ``type`` (default ``synkinesis``), ``rep``
(default -1: outside reps), ``retracted`` (default ``False``).

Matching, per class (samples; ``fs`` turns tolerances into samples):

* **synkinesis**: a detected synkinesis matches a planted one (truth ``synkinesis``) on the same
  channel when its onset lies between ``tolerance_s`` (0.25 s) before the true onset and the true
  offset; each planted event matches at most one detection, closest onset first.  Matched:
  onset error (onset − true onset) and alert latency (alert − true onset).  Every unmatched
  detected synkinesis is a false one, and is blamed on what it overlaps (the detection's
  ``[onset, offset]``, widened by ``margin_s`` = 0.3 s, since filters and envelopes ring after a
  transient), first hit in this order: ``electrode_off`` (same channel), ``artefact`` (a
  ``motion`` or ``pop`` on the same channel), ``blink`` (same channel), ``gap`` (any channel),
  ``duplicate`` (a planted synkinesis on that channel already matched: one co-contraction
  reported twice), ``crosstalk`` (the channel carries a neighbour's activity then), else
  ``other``.  A planted synkinesis whose channel or trigger has its electrode off meanwhile is
  *unobservable*: left out of the score (counted in ``Evaluation.unobservable``), and so is a
  detection that matches it (the part the recording holds, before the electrode went off or
  after it came back: right, but not a whole event to score).
* **blink**: truth blinks *during reps* (``rep >= 1``; reps are numbered from 1) against detected
  blinks during reps; a detected blink matches a truth blink on the same channel when its onset
  lies within ``blink_tolerance_s`` (0.1 s) of the truth's ``[start, stop]``.  A blink the
  recording does not hold is *unobservable*, left out (``Evaluation.unobservable_blinks``):
  its channel's electrode was off meanwhile (no signal of the muscle), or samples were lost
  during it (a ``gap``: its burst is cut, and its length is what tells a blink).  A blink in
  the settling after a gap, or under a cable artefact, stays in the score (a miss if missed).
* **artefact**: truth periods ``motion``, ``pop``, ``electrode_off`` per channel against detected
  ``artefact`` events: a truth period is found (TP) when a detected artefact on its channel
  overlaps it (widened by ``margin_s``), missed (FN) otherwise; a detected artefact overlapping
  no truth period (nor a gap: the signal restarting after lost samples may be flagged) is a false
  one (FP).  F1 = 2·TP / (2·TP + FP + FN) as for the other classes.

Seeds: the detector's defaults are tuned on :data:`TUNING_SEEDS`; tests and the benchmark report
on :data:`HELD_OUT_SEEDS` (and the tests' own held-out seeds), which tuning must not use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from emgfeedback.sources.facesim import Truth

__all__ = [
    "ARTEFACT_KINDS",
    "BLAME",
    "HELD_OUT_SEEDS",
    "TUNING_SEEDS",
    "ClassScore",
    "Detected",
    "Evaluation",
    "as_detected",
    "evaluate",
    "match_synkinesis",
]

#: Seeds the detector's defaults may be tuned on.
TUNING_SEEDS: tuple[int, ...] = tuple(range(10))
#: Seeds the benchmark reports on (never used for tuning).
HELD_OUT_SEEDS: tuple[int, ...] = (100, 101, 102, 103, 104)

#: Truth kinds that are artefact periods of a channel.
ARTEFACT_KINDS = ("motion", "pop", "electrode_off")
#: What a false synkinesis is blamed on (in this order of precedence).
BLAME = ("electrode_off", "artefact", "blink", "gap", "duplicate", "crosstalk", "other")


@dataclass(frozen=True)
class Detected:
    """A detected event, normalised (samples)."""

    type: str
    channel: str
    onset: int
    offset: int | None
    alert: int | None
    rep: int = -1
    retracted: bool = False

    @property
    def end(self) -> int:
        return self.offset if self.offset is not None else self.onset


def as_detected(ev: Any) -> Detected:
    """A :class:`Detected` from any event object (see the module docstring)."""
    if isinstance(ev, Detected):
        return ev
    off = getattr(ev, "offset", None)
    alert = getattr(ev, "alert", None)
    return Detected(type=str(getattr(ev, "type", "synkinesis") or "synkinesis"),
                    channel=str(ev.channel), onset=int(ev.onset),
                    offset=None if off is None else int(off),
                    alert=None if alert is None else int(alert),
                    rep=int(getattr(ev, "rep", -1)),
                    retracted=bool(getattr(ev, "retracted", False)))


@dataclass
class ClassScore:
    """Counts and timing errors (seconds) of one event class; add with ``+=``."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    onset_err_s: list[float] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)

    def __iadd__(self, other: ClassScore) -> ClassScore:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.onset_err_s += other.onset_err_s
        self.latency_s += other.latency_s
        return self

    @property
    def n_truth(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 1.0

    @property
    def median_abs_onset_ms(self) -> float:
        return 1000 * float(np.median(np.abs(self.onset_err_s))) if self.onset_err_s else 0.0

    @property
    def median_latency_ms(self) -> float:
        return 1000 * float(np.median(self.latency_s)) if self.latency_s else 0.0


@dataclass
class Evaluation:
    """Per-class scores of one run or a sum of runs (``+=``)."""

    synkinesis: ClassScore = field(default_factory=ClassScore)
    blink: ClassScore = field(default_factory=ClassScore)  # during reps
    artefact: ClassScore = field(default_factory=ClassScore)
    #: false synkinesis events by what they overlap (:data:`BLAME`)
    false_synkinesis: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BLAME, 0))
    #: alerts raised live and withdrawn (the detector said blink or artefact after all)
    retracted: int = 0
    #: how many truth periods of each kind the runs held
    truth_counts: dict[str, int] = field(default_factory=dict)
    #: runs whose analysis refused (e.g. its calibration): scored with no detections
    refused: int = 0
    #: planted synkinesis left out: its channel's or its trigger's electrode was off
    unobservable: int = 0
    #: blinks during reps left out: their electrode was off, or samples were lost during them
    unobservable_blinks: int = 0
    runs: int = 1

    @classmethod
    def empty(cls) -> Evaluation:
        """The start of a sum (no run)."""
        return cls(runs=0)

    def __iadd__(self, other: Evaluation) -> Evaluation:
        self.synkinesis += other.synkinesis
        self.blink += other.blink
        self.artefact += other.artefact
        for k, v in other.false_synkinesis.items():
            self.false_synkinesis[k] = self.false_synkinesis.get(k, 0) + v
        self.retracted += other.retracted
        self.refused += other.refused
        self.unobservable += other.unobservable
        self.unobservable_blinks += other.unobservable_blinks
        self.runs += other.runs
        for k, v in other.truth_counts.items():
            self.truth_counts[k] = self.truth_counts.get(k, 0) + v
        return self

    @property
    def false_on_confounders(self) -> int:
        """False synkinesis events on blinks, artefacts and electrode-off periods."""
        f = self.false_synkinesis
        return f["blink"] + f["artefact"] + f["electrode_off"]


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 <= b1 and b0 <= a1


class Span(Protocol):
    """What the synkinesis matcher reads of a planted event: a :class:`Truth` entry or a
    :class:`~emgfeedback.sources.facesim.TruthEvent`."""

    @property
    def channel(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def stop(self) -> int: ...


def match_synkinesis(detected: Iterable[Any], truth: Sequence[Span], fs: float,
                     tolerance_s: float = 0.25
                     ) -> tuple[ClassScore, list[Detected], set[int]]:
    """The one synkinesis matcher (module docstring): ``(score, unmatched detections,
    indices of the matched planted events)``; ``detected`` are events of any shape
    (:func:`as_detected`), all taken as synkinesis."""
    det = [as_detected(e) for e in detected]
    tol = int(round(tolerance_s * fs))
    free = list(range(len(det)))
    s = ClassScore()
    matched_truth: set[int] = set()
    for k, t in sorted(enumerate(truth), key=lambda kt: kt[1].start):
        cands = [i for i in free if det[i].channel == t.channel
                 and t.start - tol <= det[i].onset <= t.stop]
        if not cands:
            s.fn += 1
            continue
        i = min(cands, key=lambda i: abs(det[i].onset - t.start))
        free.remove(i)
        matched_truth.add(k)
        s.tp += 1
        s.onset_err_s.append((det[i].onset - t.start) / fs)
        alert = det[i].alert
        if alert is not None:
            s.latency_s.append((alert - t.start) / fs)
    s.fp = len(free)
    return s, [det[i] for i in free], matched_truth


def _hidden_blink(t: Truth, off: Sequence[Truth], gaps: Sequence[Truth]) -> bool:
    """A blink the recording does not hold: its electrode was off (no signal of the muscle),
    or samples were lost during it (its burst is cut: its length, the one thing that tells a
    blink, is unknown)."""
    return any(o.channel == t.channel and _overlaps(t.start, t.stop, o.start, o.stop)
               for o in off) or any(_overlaps(t.start, t.stop, g.start, g.stop) for g in gaps)


def _blame(d: Detected, truth: Sequence[Truth], syn: list[Truth], matched: set[int],
           margin: int) -> str:
    a0, a1 = d.onset - margin, d.end + margin

    def on(kinds: tuple[str, ...], any_channel: bool = False) -> bool:
        return any(t.kind in kinds and (any_channel or t.channel == d.channel)
                   and _overlaps(a0, a1, t.start, t.stop) for t in truth)

    if on(("electrode_off",)):
        return "electrode_off"
    if on(("motion", "pop")):
        return "artefact"
    if on(("blink",)):
        return "blink"
    if on(("gap",), any_channel=True):
        return "gap"
    if any(k in matched and t.channel == d.channel and _overlaps(a0, a1, t.start, t.stop)
           for k, t in enumerate(syn)):
        return "duplicate"
    if on(("crosstalk",)):
        return "crosstalk"
    return "other"


def evaluate(detected: Iterable[Any], truth: Sequence[Truth], fs: float,
             tolerance_s: float = 0.25, blink_tolerance_s: float = 0.1,
             margin_s: float = 0.3) -> Evaluation:
    """Score one run's detected events (every class) against its ground truth (see the module
    docstring)."""
    det = [as_detected(e) for e in detected]
    btol, margin = (int(round(v * fs)) for v in (blink_tolerance_s, margin_s))
    ev = Evaluation()
    for t in truth:
        ev.truth_counts[t.kind] = ev.truth_counts.get(t.kind, 0) + 1
    ev.retracted = sum(1 for d in det if d.retracted)
    # Synkinesis.
    off = [t for t in truth if t.kind == "electrode_off"]
    syn_all = [t for t in truth if t.kind == "synkinesis"]
    syn_truth = [t for t in syn_all if not any(
        o.channel in (t.channel, t.trigger) and _overlaps(t.start, t.stop, o.start, o.stop)
        for o in off)]
    ev.unobservable = len(syn_all) - len(syn_truth)
    syn_det = [d for d in det if d.type == "synkinesis"]
    ev.synkinesis, false, matched = match_synkinesis(syn_det, syn_truth, fs, tolerance_s)
    # a detection of the part of an unobservable event the recording holds (before its
    # electrode went off, after it came back) is left out with it: neither true nor false
    hidden = [t for t in syn_all if t not in syn_truth]
    if hidden and false:
        false = match_synkinesis(false, hidden, fs, tolerance_s)[1]
        ev.synkinesis.fp = len(false)
    for d in false:
        ev.false_synkinesis[_blame(d, truth, syn_truth, matched, margin)] += 1
    # Blinks during reps (one the recording cannot hold is left out: unobservable_blinks).
    gaps = [t for t in truth if t.kind == "gap"]
    b_all = [t for t in truth if t.kind == "blink" and t.rep >= 1]
    b_truth = sorted((t for t in b_all if not _hidden_blink(t, off, gaps)),
                     key=lambda t: t.start)
    ev.unobservable_blinks = len(b_all) - len(b_truth)
    b_free = [d for d in det if d.type == "blink" and d.rep >= 1]
    for t in b_truth:
        cands = [d for d in b_free if d.channel == t.channel
                 and t.start - btol <= d.onset <= t.stop + btol]
        if cands:
            d = min(cands, key=lambda d: abs(d.onset - t.start))
            b_free.remove(d)
            ev.blink.tp += 1
            ev.blink.onset_err_s.append((d.onset - t.start) / fs)
        else:
            ev.blink.fn += 1
    ev.blink.fp = len(b_free)
    # Artefact periods.
    a_truth = [t for t in truth if t.kind in ARTEFACT_KINDS]
    a_det = [d for d in det if d.type == "artefact"]
    for t in a_truth:
        if any(d.channel == t.channel and _overlaps(d.onset, d.end, t.start - margin,
                                                    t.stop + margin) for d in a_det):
            ev.artefact.tp += 1
        else:
            ev.artefact.fn += 1
    ev.artefact.fp = sum(1 for d in a_det if not any(
        t.channel == d.channel and _overlaps(d.onset, d.end, t.start - margin, t.stop + margin)
        for t in a_truth) and not any(  # the signal restarting after a gap may be flagged
        _overlaps(d.onset, d.end, t.start - margin, t.stop + margin) for t in gaps))
    return ev
