"""Activation and synkinesis detection: one sample-indexed implementation for live and offline.

:class:`Detector` is a session consumer.  ``feed(processed)`` is called by the session thread
(live, ``replay``) or by :func:`~emgfeedback.clinical.analysis.analyze` (offline) with
consecutive :class:`~emgfeedback.dsp.chain.Processed` chunks.  Every decision is made at a
sample index and depends only on samples up to that index, so feeding the same stream in chunks
of 1, 10 or 10 000 samples raises the same events at the same samples (tests/test_detect.py).

Per channel (vectorised across channels; Python loops run only over state *changes*):

1. ``%MVC = 100 · (envelope − rest mean) / MVC`` (:class:`~emgfeedback.clinical.calibration.
   Calibration`).
2. **Activation** (Hodges & Bui 1996 family, baseline-adaptive through the calibration): a level
   state with hysteresis (up above ``rest mean + h_on·SD``, down below ``rest mean + h_off·SD``),
   debounced: *active* after the level state was up ``min_active_ms``, *inactive* after it was
   down ``min_rest_ms``.
3. **Synkinesis** during a rep (an exercise annotation/cue, the rep window is its duration): on
   each monitored side whose target region is *active*, a quiet region whose level state is up
   **and** whose %MVC exceeds the floor (program, per channel) for ``min_event_ms`` raises an
   event at that sample (``alert``).  The event ends when the condition has been false for
   ``event_gap_ms`` (``offset`` = first false sample).  Outside reps nothing is monitored, so
   spontaneous blinks are never events.
4. **Onset estimate** at the alert, from the envelope history of at most ``onset_lookback_ms``
   before the alert (and not before the rep): find the rise (last crossing of the level half-way
   between the window's lowest envelope and the envelope at the alert), take the median envelope
   50-150 ms before that crossing as the local pre-rise level, and go back from the crossing to
   where the envelope last was within ``h_on`` rest SDs of that level; minus the chain's envelope
   delay (``delay_s``).  The local level (not the rest mean) keeps crosstalk from the target,
   which lifts a quiet channel during the rep, from pulling onsets early.
5. **Per rep and side** (:class:`RepResult`): target peak %MVC, mean %MVC while the target is
   active, time in the target band, Falconer-Winter co-contraction
   ``2·Σmin(A,B)/Σ(A+B)·100`` of each quiet region A against the target B (envelopes in %MVC,
   negative values clipped to 0), isolation ``ΣB / (ΣB + Σ_quiet ΣA)`` (1 = only the target
   moved), and whether a synkinesis event was raised.

Live API for views (thread: call from any thread; values are replaced atomically per chunk):
:meth:`Detector.state` (per-channel %MVC, thresholds, activity, roles, open events),
:attr:`Detector.queue` (``("raised"|"ended", SynkinesisEvent)`` items) and the optional
``on_event`` callback (called in the session thread).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from emgfeedback.clinical.calibration import Calibration
from emgfeedback.clinical.exercises import DetectionConfig, Exercise, Program, default_program
from emgfeedback.clinical.montage import Montage
from emgfeedback.stream import Processed
from emgfeedback.vocabulary import parse_annotation
from emgfeedback.errors import ConfigError

__all__ = ["Detector", "LiveState", "RepResult", "SynkinesisEvent"]

log = logging.getLogger(__name__)

#: Largest block processed at once; longer chunks are split (keeps the history ring small).
MAX_BLOCK = 1024


@dataclass(frozen=True)
class SynkinesisEvent:
    """A quiet region joined in during a rep.  Samples are absolute stream indices.

    ``alert`` is the sample at which the live detector raised the event; ``onset`` its estimated
    start; ``offset`` is ``None`` while the event is open.
    """

    channel: str  # L-OOC
    trigger: str  # L-ZYG: the rep's target on that side
    exercise: str
    rep: int  # number of the rep: 1, 2, ... in the order of the exercise cues
    onset: int
    alert: int
    offset: int | None
    peak_pct_mvc: float
    type: str = "synkinesis"

    def to_json(self, fs: float) -> dict[str, Any]:
        return {
            "type": self.type, "channel": self.channel, "trigger": self.trigger,
            "exercise": self.exercise, "rep": self.rep,
            "onset_s": round(self.onset / fs, 4),
            "offset_s": None if self.offset is None else round(self.offset / fs, 4),
            "alert_s": round(self.alert / fs, 4),
            "peak_pct_mvc": round(self.peak_pct_mvc, 2),
        }


@dataclass(frozen=True)
class RepResult:
    """Metrics of one rep on one side (see the module docstring).

    ``rep`` numbers the cues from 1 in stream order; the sides of one cue share the number.
    """

    rep: int
    exercise: str
    side: str
    start: int
    stop: int
    target: str
    target_peak_pct_mvc: float
    target_mean_active_pct_mvc: float
    time_in_band_s: float
    band_pct_mvc: tuple[float, float]
    isolation: float
    cocontraction: dict[str, float]
    synkinesis: bool

    def to_json(self, fs: float) -> dict[str, Any]:
        return {
            "rep": self.rep, "exercise": self.exercise, "side": self.side,
            "onset_s": round(self.start / fs, 4), "offset_s": round(self.stop / fs, 4),
            "target": self.target,
            "target_peak_pct_mvc": round(self.target_peak_pct_mvc, 2),
            "target_mean_active_pct_mvc": round(self.target_mean_active_pct_mvc, 2),
            "time_in_band_s": round(self.time_in_band_s, 3),
            "band_pct_mvc": list(self.band_pct_mvc),
            "isolation": round(self.isolation, 4),
            "cocontraction": {k: round(v, 2) for k, v in self.cocontraction.items()},
            "synkinesis": self.synkinesis,
        }


@dataclass(frozen=True)
class LiveState:
    """What a view needs for bars and lights, at sample ``sample`` (the last one fed).

    Arrays have one value per channel, in montage order.  ``floor_pct_mvc`` is NaN for channels
    that are not quiet regions of the current rep; ``role`` is ``"target"``, ``"quiet"`` or ``""``.
    """

    sample: int
    pct_mvc: np.ndarray
    threshold_pct_mvc: np.ndarray
    floor_pct_mvc: np.ndarray
    active: np.ndarray
    intruding: np.ndarray
    role: tuple[str, ...]
    exercise: str | None


class _Debounce:
    """Per-channel debounced boolean state with exact sample semantics, carried across chunks.

    The output turns true once the input has been true for ``n_on`` consecutive samples (at the
    last of them) and false once it has been false for ``n_off`` samples.
    """

    def __init__(self, nch: int, n_on: int, n_off: int) -> None:
        self.n_on = max(1, n_on)
        self.n_off = max(1, n_off)
        self.x = np.zeros(nch, dtype=bool)  # last input value
        self.run = np.zeros(nch, dtype=np.int64)  # start of the current input run
        self.y = np.zeros(nch, dtype=bool)

    def process_const(self, v: np.ndarray, start: int, n: int
                      ) -> tuple[np.ndarray | None, list[tuple[int, int, int, bool]]]:
        """:meth:`process` for an input constant over ``n`` samples (vector ``v``).

        Returns ``(None, [])`` when the output stays constant (the common case: no pending
        change), which callers read as "``y`` all chunk".
        """
        if not (v ^ self.y).any():
            self.x[:] = v
            return None, []
        x = np.empty((n, len(v)), dtype=bool)
        x[:] = v
        return self.process(x, start)

    def process(self, x: np.ndarray, start: int
                ) -> tuple[np.ndarray, list[tuple[int, int, int, bool]]]:
        """Return ``(y, changes)``; ``changes`` = ``(channel, run_start, at, new_value)``."""
        n = len(x)
        y = np.empty_like(x)
        y[:] = self.y
        changes: list[tuple[int, int, int, bool]] = []
        diff = x ^ self.y
        if not diff.any():
            self.x[:] = x[-1]
            return y, changes
        cand = np.flatnonzero(diff.any(axis=0))
        for c in cand:
            xs = x[:, c]
            ycur = bool(self.y[c])
            cuts = np.flatnonzero(xs[1:] != xs[:-1]) + 1
            bounds = [0, *cuts.tolist(), n]
            run = int(self.run[c]) if bool(xs[0]) == bool(self.x[c]) else start
            col = y[:, c]
            for k in range(len(bounds) - 1):
                a, b = bounds[k], bounds[k + 1]
                v = bool(xs[a])
                if k > 0:
                    run = start + a
                if v != ycur:
                    conf = run + (self.n_on if v else self.n_off) - 1 - start
                    if conf < b:
                        conf = max(conf, a)
                        col[a:conf] = ycur
                        col[conf:b] = v
                        ycur = v
                        changes.append((int(c), run, start + conf, v))
                        continue
                col[a:b] = ycur
            self.y[c] = ycur
            self.run[c] = run
        self.x[:] = x[-1]
        return y, changes


@dataclass
class _Rep:
    index: int
    exercise: Exercise
    start: int
    stop: int
    sides: list[dict[str, Any]] = field(default_factory=list)
    quiet_mask: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    trig: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    floor: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pct: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # %MVC over the rep
    act: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))  # activity
    qi: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ti: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tcols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    events: set[str] = field(default_factory=set)


class Detector:
    """Live and offline activation/synkinesis detector (see the module docstring).

    Parameters
    ----------
    fs:
        Sample rate in Hz.
    montage:
        Channels in stream order, their regions, the affected side.
    calibration:
        Rest baseline and MVC per channel (same channel order as the montage).
    program:
        Exercises, per-patient thresholds; default: :func:`default_program`.
    delay_s:
        Delay of the envelope behind the signal (``Chain.delay_ms / 1000``), subtracted from
        onset estimates.
    on_event:
        Optional callback ``on_event(kind, event)`` with ``kind`` ``"raised"`` or ``"ended"``,
        called in the thread that calls :meth:`feed`.
    """

    def __init__(
        self,
        fs: float,
        montage: Montage,
        calibration: Calibration,
        program: Program | None = None,
        delay_s: float = 0.0,
        on_event: Callable[[str, SynkinesisEvent], None] | None = None,
    ) -> None:
        self.fs = float(fs)
        self.montage = montage
        self.program = program or default_program()
        self.cfg: DetectionConfig = self.program.detection
        self.cal = calibration
        if tuple(calibration.channels) != montage.names:
            raise ConfigError(f"calibration channels {calibration.channels} do not match the "
                              f"montage {montage.names}")
        self.names = montage.names
        self.nch = n = len(self.names)
        self.delay = int(round(delay_s * self.fs))
        self.on_event = on_event
        self.queue: queue.SimpleQueue[tuple[str, SynkinesisEvent]] = queue.SimpleQueue()
        ms = lambda v: int(round(v * self.fs / 1000.0))  # noqa: E731
        h_on = np.array([self.program.threshold(c, "h_on") for c in self.names])
        h_off = np.array([self.program.threshold(c, "h_off") for c in self.names])
        self.mean = np.asarray(calibration.rest_mean_uv, dtype=np.float64)
        self.sd = np.asarray(calibration.rest_sd_uv, dtype=np.float64)
        self.mvc = np.asarray(calibration.mvc_uv, dtype=np.float64)
        self.k = 100.0 / self.mvc
        self.on_thr = self.mean + h_on * self.sd
        self.off_thr = self.mean + h_off * self.sd
        self.h_on = h_on
        self.threshold_pct = (self.on_thr - self.mean) * self.k
        self._level = np.zeros(n, dtype=bool)
        self._act = _Debounce(n, ms(self.cfg.min_active_ms), ms(self.cfg.min_rest_ms))
        self._evt = _Debounce(n, ms(self.cfg.min_event_ms), ms(self.cfg.event_gap_ms))
        self.lookback = max(1, ms(self.cfg.onset_lookback_ms))
        self._pre_a = max(2, ms(150.0))
        self._pre_b = max(1, ms(50.0))
        self._hcap = self.lookback + MAX_BLOCK + 1
        self._hist = np.zeros((self._hcap, n))
        self._hist_start: int | None = None
        self._next: int | None = None
        self.events: list[SynkinesisEvent] = []
        self.reps: list[RepResult] = []
        self.unknown_annotations: list[tuple[int, str]] = []
        # channel -> (index in self.events, its rep) of the open event
        self._open: dict[int, tuple[int, _Rep]] = {}
        self._pending: list[_Rep] = []
        self._rep_count = 1  # reps are numbered from 1, one number per cue
        self._codes_by_side = {s: {c.code for c in montage.channels if c.side == s}
                               for s in montage.sides()}
        # Live state
        self._last_pct = np.zeros(n)
        self._last_sample = 0
        self._cur: _Rep | None = None

    @classmethod
    def for_chain(cls, chain: Any, montage: Montage, calibration: Calibration,
                  program: Program | None = None,
                  on_event: Callable[[str, SynkinesisEvent], None] | None = None) -> "Detector":
        """A detector whose onset estimates compensate ``chain``'s envelope delay."""
        return cls(chain.fs, montage, calibration, program, chain.delay_ms / 1000.0, on_event)

    # ------------------------------------------------------------------ live API
    def state(self) -> LiveState:
        """Snapshot for bars: per-channel %MVC, thresholds, activity, roles (any thread)."""
        rep = self._cur
        floor = np.full(self.nch, np.nan)
        role = [""] * self.nch
        if rep is not None:
            floor = np.where(rep.quiet_mask, rep.floor, np.nan)
            for i in range(self.nch):
                role[i] = "quiet" if rep.quiet_mask[i] else ""
            for i in rep.tcols:
                role[int(i)] = "target"
        intr = np.zeros(self.nch, dtype=bool)
        intr[list(self._open)] = True
        return LiveState(self._last_sample, self._last_pct.copy(), self.threshold_pct.copy(),
                         floor, self._act.y.copy(), intr, tuple(role),
                         rep.exercise.name if rep is not None else None)

    def drain(self) -> list[tuple[str, SynkinesisEvent]]:
        """All queued ``(kind, event)`` items since the last call (any thread)."""
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out

    # ------------------------------------------------------------------ feeding
    def feed(self, p: Processed) -> None:
        """Process one chunk (session thread).  Chunks must be consecutive; after a gap the
        detector continues from the new sample (states are kept)."""
        if len(p.markers):
            self._markers(p.markers, p.start)
        env_all = p.envelope
        n = len(p)
        for a in range(0, n, MAX_BLOCK):
            b = min(n, a + MAX_BLOCK)
            self._block(env_all[a:b], p.start + a)

    def _markers(self, markers: Sequence[Any], start: int) -> None:
        for m in markers:
            ex = self.program.find(m.text)
            if ex is None:
                # Protocol and bookkeeping annotations: calibration periods, markers, gaps, and
                # this detector's own alerts written into a recording (``synkinesis L-OOC``).
                if not parse_annotation(m.text).is_protocol:
                    self.unknown_annotations.append((m.sample, m.text))
                    log.info("annotation %r at sample %d is not an exercise; ignored",
                             m.text, m.sample)
                continue
            if m.duration <= 0:
                log.warning("exercise annotation %r at sample %d has no duration; ignored",
                            m.text, m.sample)
                continue
            s0 = max(m.sample, start)
            for r in self._pending:  # a new rep ends an overlapping one
                if r.stop > s0:
                    r.stop = max(r.start, s0)
            self._pending.append(self._make_rep(ex, s0, m.sample + m.duration))

    def _sides(self, ex: Exercise) -> list[str]:
        have = list(self.montage.sides())
        aff = self.montage.affected_side or self.program.affected_side
        if ex.side == "both":
            return have
        if ex.side in ("L", "R"):
            return [ex.side] if ex.side in have else []
        if aff is None:
            log.warning("exercise %s monitors the %s side but the affected side is unknown; "
                        "monitoring both", ex.name, ex.side)
            return have
        s = aff if ex.side == "affected" else self.montage.other_side(aff)
        return [s] if s in have else []

    def _make_rep(self, ex: Exercise, start: int, stop: int) -> _Rep:
        n = self.nch
        rep = _Rep(self._rep_count, ex, start, stop)
        self._rep_count += 1
        rep.quiet_mask = np.zeros(n, dtype=bool)
        rep.trig = np.zeros(n, dtype=np.int64)
        rep.floor = np.full(n, np.inf)
        qi: list[int] = []
        ti: list[int] = []
        tcols: list[int] = []
        for side in self._sides(ex):
            targets = [i for code in ex.targets
                       if (i := self.montage.index(side, code)) is not None]
            if not targets:
                continue
            t = targets[0]
            quiet = [i for code in ex.quiet_codes(self._codes_by_side[side])
                     if (i := self.montage.index(side, code)) is not None and i not in targets]
            for q in quiet:
                rep.quiet_mask[q] = True
                rep.trig[q] = t
                rep.floor[q] = self.program.threshold(self.names[q], "floor_pct_mvc", ex)
            rep.sides.append({"side": side, "target": t, "quiet": quiet,
                              "pairs": list(range(len(qi), len(qi) + len(quiet))),
                              "tpos": len(tcols)})
            qi += quiet
            ti += [t] * len(quiet)
            tcols.append(t)
        rep.qi = np.array(qi, dtype=np.int64)
        rep.ti = np.array(ti, dtype=np.int64)
        rep.tcols = np.array(tcols, dtype=np.int64)
        rep.pct = np.zeros((max(0, stop - start), n))
        rep.act = np.zeros((max(0, stop - start), n), dtype=bool)
        if not tcols:
            log.warning("rep of %s at sample %d: no target region recorded", ex.name, start)
        return rep

    def _write_hist(self, env: np.ndarray, start: int) -> None:
        if self._next is not None and start != self._next:
            self._hist_start = start  # a gap: history before it is not usable
        if self._hist_start is None:
            self._hist_start = start
        self._next = start + len(env)
        i = start % self._hcap
        m = len(env)
        first = min(m, self._hcap - i)
        self._hist[i:i + first] = env[:first]
        if first < m:
            self._hist[: m - first] = env[first:]

    def _block(self, env: np.ndarray, start: int) -> None:
        n = len(env)
        if n == 0:
            return
        stop = start + n
        self._write_hist(env, start)
        pct = (env - self.mean) * self.k
        # Level state with hysteresis, exact per sample; only channels that may change it are
        # looked at sample by sample (vectorised within the channel).
        need = np.where(self._level, env.min(axis=0) < self.off_thr,
                        env.max(axis=0) > self.on_thr)
        level: np.ndarray  # (n, C), or (C,) when constant over the block
        if need.any():
            level = np.empty((n, self.nch), dtype=bool)
            level[:] = self._level
            for ch in np.flatnonzero(need).tolist():
                e = env[:, ch]
                ev = np.where(e > self.on_thr[ch], 1, np.where(e < self.off_thr[ch], 0, -1))
                idx = np.where(ev >= 0, np.arange(n), -1)
                np.maximum.accumulate(idx, out=idx)
                col = np.where(idx >= 0, ev[np.maximum(idx, 0)], int(self._level[ch]))
                level[:, ch] = col.astype(bool)
                self._level[ch] = bool(col[-1])
            active, _ = self._act.process(level, start)
        else:
            level = self._level.copy()
            act, _ = self._act.process_const(level, start, n)
            active = self._act.y.copy() if act is None else act
        rows_all = active.ndim == 2

        reps = [r for r in self._pending if r.start < stop and r.stop > start]
        for r in reps:
            a, b = max(r.start, start), min(r.stop, stop)
            r.pct[a - r.start:b - r.start] = pct[a - start:b - start]
            r.act[a - r.start:b - r.start] = active[a - start:b - start] if rows_all else active
        if reps or self._open or self._evt.x.any():
            cond = np.zeros((n, self.nch), dtype=bool)
            for r in reps:
                if not len(r.qi):
                    continue
                rows = slice(max(r.start, start) - start, min(r.stop, stop) - start)
                lv = level[rows] if level.ndim == 2 else level
                tg = active[rows][:, r.trig] if rows_all else active[r.trig]
                cond[rows] = lv & (pct[rows] > r.floor) & r.quiet_mask & tg
            _, changes = self._evt.process(cond, start)
            for c, run, at, v in changes:
                if v:
                    self._raise(c, run, at)
                else:
                    self._end(c, run)
        self._cur = reps[-1] if reps and reps[-1].stop > stop - 1 else None
        if self._pending and self._pending[0].stop <= stop:
            for r in [r for r in self._pending if r.stop <= stop]:
                self._finish(r)
            self._pending = [r for r in self._pending if r.stop > stop]
        self._last_pct = pct[-1]
        self._last_sample = stop - 1

    # ------------------------------------------------------------------ events
    def _rep_at(self, sample: int) -> _Rep | None:
        for r in self._pending:
            if r.start <= sample < r.stop:
                return r
        return None

    def _estimate_onset(self, c: int, alert: int, rep_start: int) -> int:
        lo = max(alert - self.lookback, rep_start, self._hist_start or 0)
        idx = np.arange(lo, alert + 1)
        e = self._hist[idx % self._hcap, c]
        # 1. The rise: last crossing of the level half-way between the window's lowest envelope
        #    and the envelope at the alert.
        m0 = float(e.min())
        half = m0 + 0.5 * (float(e[-1]) - m0)
        below = np.flatnonzero(e <= half)
        t_half = int(below[-1]) + 1 if len(below) else 0
        # 2. The level just before the rise (crosstalk from the target included): median of the
        #    envelope between pre_a and pre_b samples before the half-way crossing.
        pre = e[max(0, t_half - self._pre_a):max(0, t_half - self._pre_b)]
        ref = float(np.median(pre)) if len(pre) else m0
        thr = ref + self.h_on[c] * self.sd[c]
        # 3. Onset: where the envelope last left that level before the half-way crossing.
        below = np.flatnonzero(e[:t_half] <= thr)
        first_above = lo + (int(below[-1]) + 1 if len(below) else 0)
        return max(rep_start, first_above - self.delay)

    def _raise(self, c: int, run: int, at: int) -> None:
        rep = self._rep_at(at)
        if rep is None:  # cannot happen: the condition is false outside reps
            return
        onset = self._estimate_onset(c, at, rep.start)
        pk = float(rep.pct[max(run, rep.start) - rep.start:at - rep.start + 1, c].max())
        ev = SynkinesisEvent(self.names[c], self.names[int(rep.trig[c])], rep.exercise.name,
                             rep.index, onset, at, None, pk)
        self._open[c] = (len(self.events), rep)
        self.events.append(ev)
        rep.events.add(self.names[c])
        log.debug("synkinesis %s during %s: onset %d, alert %d", ev.channel, ev.exercise,
                  onset, at)
        self._emit("raised", ev)

    def _end(self, c: int, off_start: int) -> None:
        item = self._open.pop(c, None)
        if item is None:
            return
        ei, rep = item
        ev = self.events[ei]
        a = max(ev.alert, rep.start) - rep.start
        b = min(off_start, rep.stop) - rep.start
        pk = ev.peak_pct_mvc
        if b > a:
            pk = max(pk, float(rep.pct[a:b, c].max()))
        self.events[ei] = ev = replace(ev, offset=off_start, peak_pct_mvc=pk)
        self._emit("ended", ev)

    def _emit(self, kind: str, ev: SynkinesisEvent) -> None:
        self.queue.put((kind, ev))
        if self.on_event is not None:
            self.on_event(kind, ev)

    def close(self, at: int | None = None) -> None:
        """End the stream: close open events at ``at`` (default: the next sample) and finish
        pending reps that started (offline, after the last chunk)."""
        end = self._next if at is None else at
        if end is None:
            return
        for c in list(self._open):
            self._end(c, end)
        for r in self._pending:
            if r.start < end:
                r.stop = min(r.stop, end)
                self._finish(r)
        self._pending = []

    # ------------------------------------------------------------------ rep metrics
    def _finish(self, r: _Rep) -> None:
        m = max(0, r.stop - r.start)
        pct, act = r.pct[:m], r.act[:m]
        if m == 0:
            return
        p = np.maximum(pct, 0.0)
        sum_p = p.sum(axis=0)
        lo, hi = r.exercise.band_pct_mvc
        for s in r.sides:
            t = s["target"]
            coc: dict[str, float] = {}
            quiet_sum = 0.0
            for q in s["quiet"]:
                denom = sum_p[q] + sum_p[t]
                fw = float(np.minimum(p[:, q], p[:, t]).sum())
                coc[self.names[q]] = 200.0 * fw / denom if denom > 0 else 0.0
                quiet_sum += sum_p[q]
            tot = sum_p[t] + quiet_sum
            iso = float(sum_p[t] / tot) if tot > 0 else 0.0
            on = act[:, t]
            mean_act = float(pct[on, t].mean()) if on.any() else 0.0
            inband = int(((pct[:, t] >= lo) & (pct[:, t] <= hi)).sum())
            syn = any(self.names[q] in r.events for q in s["quiet"])
            self.reps.append(RepResult(
                r.index, r.exercise.name, s["side"], r.start, r.stop, self.names[t],
                float(p[:, t].max()), mean_act, inband / self.fs,
                r.exercise.band_pct_mvc, iso, coc, syn))
        if not any(item[1] is r for item in self._open.values()):
            r.pct = r.pct[:0]  # free the buffers once no open event needs them
            r.act = r.act[:0]
