"""Activation, synkinesis, blink and artefact detection: one sample-indexed implementation for
live and offline.

:class:`Detector` is a session consumer.  ``feed(processed)`` is called by the session thread
(live, ``replay``) or by ``analyze`` (offline) with consecutive
:class:`~emgfeedback.dsp.chain.Processed` chunks.  Every decision is made at a sample index and
depends only on samples up to that index, so feeding the same stream in chunks of 1, 10 or
10 000 samples gives the same events, classes included, at the same samples
(tests/test_clinical.py, tests/test_events.py).

Per channel (vectorised across channels; Python loops run only over state *changes*):

1. ``%MVC = 100 · (envelope − rest mean) / MVC`` (:class:`~emgfeedback.clinical.calibration.
   Calibration`).
2. **Artefact flags** (:class:`~emgfeedback.dsp.quality.ArtefactFlags`: clipping, flat line,
   1-15 Hz motion/pop content, implausible filtered amplitude) plus an envelope above
   ``max_pct_mvc``; a flagged sample keeps its channel *held* for ``artefact_hold_ms`` (the
   filters ring after a transient).  Held periods are **artefact events** (per channel, with
   their reasons) and no burst is counted on a held channel.
3. **Activation** (Hodges & Bui 1996 family, baseline-adaptive through the calibration): a level
   state with hysteresis (up above ``rest mean + h_on·SD``, down below ``rest mean + h_off·SD``),
   debounced: *active* after the level state was up ``min_active_ms``, *inactive* after it was
   down ``min_rest_ms``.
4. **Bursts** of a quiet region during a rep (an exercise annotation/cue; the rep window is its
   duration): level up, %MVC above the floor, not held, for ``min_event_ms`` (start) and until
   that has been false for ``event_gap_ms`` (end; offset = first false sample).
5. **Alert**: at the first sample of a burst at which the side's target region is active (and
   not held), the live detector raises a synkinesis alert (``alert``).  The alert is
   *provisional* until the burst's class is known (docs/analysis.md, "Event classes"):

   * held by an artefact flag before the class is known -> retracted, class ``artefact``;
   * the burst ends within ``blink_max_ms`` of its start -> retracted, class ``blink`` in a
     ``blink_regions`` region (orbicularis oculi), class ``artefact`` ("transient") elsewhere;
   * the burst lasts ``blink_max_ms`` -> **confirmed synkinesis** (``confirmed`` sample).

   Blinks are reported during reps whether or not the target was active.
6. **One co-contraction, one event**: a confirmed event that ended is reopened, without a new
   alert, when the same region bursts again within ``merge_ms`` in the same rep; its ``ended``
   notice is sent once ``merge_ms`` has passed.
7. **Onset estimate** at the alert, from the envelope history of at most ``onset_lookback_ms``
   before the alert (and not before the rep): find the rise (last crossing of the level half-way
   between the window's lowest envelope and the envelope at the alert), take the median envelope
   50-150 ms before that crossing as the local pre-rise level, and go back from the crossing to
   where the envelope last was within ``h_off`` rest SDs of that level (the release threshold:
   ``h_on`` put the onset of a 100 ms ramp about 10 ms late; tuned on seeds 0-9); minus the
   chain's envelope delay (``delay_s``).  The local level (not the rest mean) keeps crosstalk from the target,
   which lifts a quiet channel during the rep, from pulling onsets early.
8. **Per rep and side** (:class:`RepResult`): target peak %MVC (and whether it exceeds the
   calibration, > 100), mean %MVC while the target is active, time in the target band,
   Falconer-Winter co-contraction ``2·Σmin(A,B)/Σ(A+B)·100`` of each quiet region A against the
   target B (envelopes in %MVC, negative values clipped to 0), isolation
   ``ΣB / (ΣB + Σ_quiet ΣA)`` (1 = only the target moved), the **crosstalk index** of each quiet
   region (peak normalised cross-correlation of the band-passed signals while the target is
   active, lags within ``crosstalk_lag_ms``: near 1 = the quiet electrode sees the target's own
   waveform), and whether a confirmed synkinesis event was raised.

Live API for views (thread: call from any thread; values are replaced atomically per chunk):
:meth:`Detector.state` (per-channel %MVC, thresholds, activity, roles, open alerts, held
channels), :attr:`Detector.queue` (``(kind, Event)`` items) and the optional ``on_event``
callback (called in the session thread).  Kinds: ``"raised"`` (a provisional synkinesis
alert), ``"confirmed"``, ``"retracted"`` (the alert was a blink or an artefact: the event's
``type`` says which), ``"ended"`` (a synkinesis event's offset is final), ``"blink"`` (a blink
without an alert), ``"artefact"`` (an artefact period ended).  :attr:`Detector.events` holds the
synkinesis events (alerts not retracted); :attr:`Detector.all_events` every class.
"""

from __future__ import annotations

import bisect
import functools
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from emgfeedback.clinical.calibration import Calibration
from emgfeedback.clinical.exercises import DetectionConfig, Exercise, Program, default_program
from emgfeedback.clinical.montage import Montage
from emgfeedback.config import QualityConfig
from emgfeedback.dsp.quality import AMPLITUDE, ArtefactFlags, reason_text
from emgfeedback.stream import Processed
from emgfeedback.vocabulary import EVENT_TYPES, parse_annotation
from emgfeedback.errors import ConfigError
from emgfeedback.numeric import count_nonzero, median

__all__ = ["Detector", "Event", "EVENT_TYPES", "LiveState", "RepResult", "SynkinesisEvent"]

log = logging.getLogger(__name__)

#: Largest block processed at once; longer chunks are split (the history ring holds the onset
#: lookback plus one block).  Offline blocks (app.analyze.OFFLINE_BLOCK_S, 4000 samples at
#: 2 kHz) go through whole: splitting them costs per-piece Python work and gives nothing (the
#: detector is chunk-invariant); no larger, so the ring (lookback + one block) stays small for
#: the live 10 ms path's caches.
MAX_BLOCK = 4096

#: Blocks of at least this many samples (offline analysis, not the live 10 ms chunks) have
#: their artefact flags computed in a helper thread while the level state is computed: the
#: flags' filters and state are their own (nothing else reads or writes them), so the result
#: is the same, and their compiled kernels and array loops release the GIL (a second core).
PARALLEL_MIN = 1024
_helper: Any = None
_helper_lock = threading.Lock()


def _cuts(n: int) -> list[tuple[int, int]]:
    """A long chunk's blocks: ``(first, stop)`` rows of at most MAX_BLOCK samples."""
    return [(a, min(n, a + MAX_BLOCK)) for a in range(0, n, MAX_BLOCK)]


def _flags_helper() -> Any:
    """The one helper thread (a ``ThreadPoolExecutor`` of one worker, made when first needed)."""
    global _helper
    with _helper_lock:  # two detectors in two threads (a batch worker's) make one helper
        if _helper is None:
            from concurrent.futures import ThreadPoolExecutor

            _helper = ThreadPoolExecutor(1, thread_name_prefix="detector-flags")
        return _helper


def offline_helper() -> Any:
    """The helper thread's executor, for other offline work that may run beside the calling
    thread in stream order (the calibration's segment judgements, while no detector runs)."""
    return _flags_helper()


def _forget_helper() -> None:
    global _helper, _helper_lock
    # a forked child (a batch worker) has no helper thread, and maybe a held lock: its own
    _helper, _helper_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_helper)

#: A rep's buffers are allocated in multiples of this many rows, and at most _REP_POOL sets of
#: finished reps' buffers are kept for the next reps.
_REP_ROWS = 4096
_REP_POOL = 4

#: Reason bit of an envelope above ``max_pct_mvc`` (next to dsp.quality's bits).
_PCT = 16

#: Blinks riding on a burst: window of the moving RMS (about the shortest blink, 80 ms: the
#: longer, the steadier the estimate of the burst's own level), the running median that gives
#: the burst's own level (long against a blink, short against a rep), the step of both, and
#: the level (of the excess ratio) that delimits a blink found by ``blink_on_burst_ratio``.
_BLINK_RMS_MS = 80.0
_BLINK_BASE_MS = 600.0
_BLINK_STEP_MS = 5.0
_BLINK_EXTENT = 1.15

#: At confirmation, a quiet signal whose best copy of the target's waveform explains more than
#: this share (R²) has its onset looked for again (crosstalk over the floor may have raised the
#: alert before the region joined in; tuned on seeds 0-9).
_XT_ONSET_R2 = 0.1


def _reasons(bits: int) -> str:
    txt = reason_text(bits & ~_PCT)
    if bits & _PCT:
        pct = "above the region's plausible %MVC"
        txt = pct if txt == "artefact" else f"{txt}, {pct}"
    return txt


@dataclass(frozen=True)
class SynkinesisEvent:
    """An event of one channel; samples are absolute stream indices.

    ``type`` is ``synkinesis``, ``blink`` or ``artefact``.  ``alert`` is the sample at which the
    live detector raised a synkinesis alert (``None`` for a blink or an artefact that never
    raised one); ``confirmed`` the sample at which the class became known (``None`` while a
    live alert is provisional); ``retracted`` says an alert was raised and withdrawn (the event
    turned out a blink or an artefact).  ``offset`` is ``None`` while the event is open.
    ``reason`` says why an artefact is one (``clipping``, ``transient`` ...).
    """

    channel: str  # L-OOC
    trigger: str  # L-ZYG: the rep's target on that side ("" for artefact periods)
    exercise: str
    rep: int  # number of the rep: 1, 2, ... in the order of the exercise cues; -1 outside reps
    onset: int
    alert: int | None
    offset: int | None
    peak_pct_mvc: float
    type: str = "synkinesis"
    confirmed: int | None = None
    retracted: bool = False
    reason: str = ""

    @property
    def exceeds_mvc(self) -> bool:
        """The peak is above the calibration (100 %MVC)."""
        return self.peak_pct_mvc > 100.0

    def to_json(self, fs: float) -> dict[str, Any]:
        def t(v: int | None) -> float | None:
            return None if v is None else round(v / fs, 4)

        d: dict[str, Any] = {
            "type": self.type, "channel": self.channel, "trigger": self.trigger,
            "exercise": self.exercise, "rep": self.rep,
            "onset_s": t(self.onset), "offset_s": t(self.offset), "alert_s": t(self.alert),
            "confirmed_s": t(self.confirmed), "retracted": self.retracted,
            "peak_pct_mvc": round(self.peak_pct_mvc, 2), "exceeds_mvc": self.exceeds_mvc,
        }
        if self.reason:
            d["reason"] = self.reason
        return d


#: The event type is no longer synkinesis-only; the old name stays for existing code.
Event = SynkinesisEvent


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
    crosstalk: dict[str, float] = field(default_factory=dict)
    blinks: int = 0

    @property
    def exceeds_mvc(self) -> bool:
        """The target went above its calibration (100 %MVC)."""
        return self.target_peak_pct_mvc > 100.0

    def to_json(self, fs: float) -> dict[str, Any]:
        return {
            "rep": self.rep, "exercise": self.exercise, "side": self.side,
            "onset_s": round(self.start / fs, 4), "offset_s": round(self.stop / fs, 4),
            "target": self.target,
            "target_peak_pct_mvc": round(self.target_peak_pct_mvc, 2),
            "exceeds_mvc": self.exceeds_mvc,
            "target_mean_active_pct_mvc": round(self.target_mean_active_pct_mvc, 2),
            "time_in_band_s": round(self.time_in_band_s, 3),
            "band_pct_mvc": list(self.band_pct_mvc),
            "isolation": round(self.isolation, 4),
            "cocontraction": {k: round(v, 2) for k, v in self.cocontraction.items()},
            "crosstalk": {k: round(v, 3) for k, v in self.crosstalk.items()},
            "blinks": self.blinks,
            "synkinesis": self.synkinesis,
        }


@dataclass(frozen=True)
class LiveState:
    """What a view needs for bars and lights, at sample ``sample`` (the last one fed).

    Arrays have one value per channel, in montage order.  ``floor_pct_mvc`` is NaN for channels
    that are not quiet regions of the current rep; ``role`` is ``"target"``, ``"quiet"`` or ``""``.
    ``intruding`` marks channels with an open synkinesis alert (provisional or confirmed);
    ``held`` channels whose signal is flagged as an artefact.
    """

    sample: int
    pct_mvc: np.ndarray
    threshold_pct_mvc: np.ndarray
    floor_pct_mvc: np.ndarray
    active: np.ndarray
    intruding: np.ndarray
    role: tuple[str, ...]
    exercise: str | None
    held: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


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
        self.idle = True  # no input and no output true (the last input, the output now)
        self.steady = True  # the last constant input equalled the output (process_const)
        # the first sample at which an output change would be confirmed if the input stayed
        # as it is now (None: not known since the state changed; see process_const)
        self._due: int | None = None
        # the output at a short block's shape: ((samples, column-major, *output), array, a
        # boolean buffer of that shape), see process
        self._full: tuple[tuple[Any, ...], np.ndarray, np.ndarray] | None = None

    def process_const(self, v: np.ndarray, start: int, n: int
                      ) -> tuple[np.ndarray | None, list[tuple[int, int, int, bool]]]:
        """:meth:`process` for an input constant over ``n`` samples (vector ``v``).

        Returns ``(None, [])`` when the output stays constant (the common case: no pending
        change), which callers read as "``y`` all chunk"; :attr:`steady` says whether the
        input equals the output (nothing is being debounced).
        """
        vl, yl = v.tolist(), self.y.tolist()
        self.steady = vl == yl
        if self.steady:  # (lists of a few booleans: cheaper than a NumPy call, live cost)
            self.x[:] = v
            self._due = None
            self.idle = not any(vl)
            return None, []
        if vl == self.x.tolist():
            # The input goes on as it was (while an output change is being debounced): every
            # run goes on, and the walk below would change nothing before the first sample at
            # which a channel's change is confirmed (its run's start + n_on or n_off - 1).
            # Before that sample, nothing to do (live cost: the chunks of min_active_ms after a
            # level change).
            due = self._due
            if due is None:
                n_on, n_off = self.n_on, self.n_off
                due = self._due = min(r + (n_on if x else n_off) - 1
                                      for x, y, r in zip(vl, yl, self.run.tolist()) if x != y)
            if start + n <= due:
                return None, []
        # the walk of a constant input: one run per channel, no input array
        y0 = self.y.copy()
        _, changes = self._walk(vl, yl, {}, start, n, False, vl)
        if not changes:  # still debouncing: the output stays y0 all block
            return None, []
        y = np.empty((n, len(vl)), dtype=bool)
        y[:] = y0
        for c, _, at, val in changes:  # in sample order per channel: later ones win
            y[at - start:, c] = val
        return y, changes

    def process_runs(self, x0s: list[bool], cuts: dict[int, list[int]], last: list[bool],
                     start: int, n: int) -> tuple[np.ndarray, list[tuple[int, int, int, bool]]]:
        """:meth:`process` for an input given by its runs: its first row ``x0s``, the rows at
        which each channel's input changes ``cuts`` (sorted, after the first row) and its last
        row ``last``, as :meth:`process` reads them from the input array (a caller that has
        them need not build the array's changes again: live cost).  ``y`` is the output
        vector itself (``self.y``, shape ``(channels,)``) when it does not change in the block:
        the caller reads it before the next block."""
        ys = self.y.tolist()
        y, changes = self._walk(x0s, ys, cuts, start, n, False, last)
        if not changes:  # (the output all block: its vector, no array to build, live cost)
            return y, changes
        y = np.empty((n, len(ys)), dtype=bool)
        y[:] = ys
        for c, _, at, v in changes:  # in sample order per channel: later ones win
            y[at - start:, c] = v
        return y, changes

    def process(self, x: np.ndarray, start: int, want_y: bool = True
                ) -> tuple[np.ndarray, list[tuple[int, int, int, bool]]]:
        """Return ``(y, changes)``; ``changes`` = ``(channel, run_start, at, new_value)``.
        With ``want_y=False`` a caller that needs the changes only gets ``self.y`` for ``y``
        when no input differs from the output (nothing to build: live cost)."""
        n = len(x)
        changes: list[tuple[int, int, int, bool]] = []
        if n <= _SMALL:
            # A short block whose input equals the output at every sample (the live chunks of
            # an open burst: its condition holds, the others' does not): one comparison with
            # the output at the block's shape (kept while the output stays), no transitions
            # to look for.  What the test below finds too, and then does.
            ys = self.y.tolist()
            key = (n, x.flags.f_contiguous, *ys)
            full = self._full
            if full is None or full[0] != key:
                y_full = np.empty(x.shape, dtype=bool, order="F" if key[1] else "C")
                y_full[...] = self.y
                full = self._full = (key, y_full, np.empty_like(y_full))
            if not count_nonzero(np.not_equal(x, full[1], out=full[2])):
                if self.x.tolist() != ys:
                    self.x[:] = self.y
                    self._due = None
                self.idle = not any(ys)
                if not want_y:
                    return self.y, changes
                return full[1].copy(), changes
        # Every channel's input changes in one set of calls, then a Python walk over the runs of
        # the channels whose input differs from the output somewhere (20-sample live chunks
        # have a few at most): no NumPy call per channel or per run (live cost).
        tr = np.not_equal(x[1:], x[:-1])  # input changes (row - 1, channel)
        x0s, ys = x[0].tolist(), self.y.tolist()
        if x0s == ys and not count_nonzero(tr):  # the input equals the output all block
            self.x[:] = x[0]
            self._due = None
            self.idle = not any(x0s)
            if not want_y:
                return self.y, changes
            y = np.empty_like(x)
            y[:] = self.y
            return y, changes
        tr_c, tr_r = np.nonzero(tr.T)  # (channel, row - 1), by channel
        cuts: dict[int, list[int]] = {}
        for c, k in zip(tr_c.tolist(), tr_r.tolist()):
            cuts.setdefault(c, []).append(k + 1)
        return self._walk(x0s, ys, cuts, start, n, want_y, x[-1].tolist())

    def _walk(self, x0s: list[bool], ys: list[bool], cuts: dict[int, list[int]], start: int,
              n: int, want_y: bool, last: list[bool]
              ) -> tuple[np.ndarray, list[tuple[int, int, int, bool]]]:
        """The runs of the channels whose input differs from the output somewhere, walked in
        Python (see :meth:`process`); ``last``: the input's last row."""
        changes: list[tuple[int, int, int, bool]] = []
        y: np.ndarray
        if want_y:
            y = np.empty((n, len(x0s)), dtype=bool)
            y[:] = self.y
        else:  # only the changes are wanted (offline: the burst condition of every block)
            y = self.y
        px, runs = self.x.tolist(), self.run.tolist()
        n_on, n_off = self.n_on, self.n_off
        y_now = list(ys)  # the output after the block
        for c in range(len(x0s)):
            cc = cuts.get(c)
            if cc is None and x0s[c] == ys[c]:
                continue
            ycur = ys[c]
            v = x0s[c]  # runs alternate: each run has the other value
            run = runs[c] if v == px[c] else start
            a = 0
            for b in [*(cc or ()), n]:
                if a > 0:
                    run = start + a
                if v != ycur:
                    conf = run + (n_on if v else n_off) - 1 - start
                    if conf < b:
                        ycur = v
                        changes.append((c, run, start + max(conf, a), v))
                v = not v
                a = b
            if ycur != ys[c]:  # (array elements written only when they change: live cost)
                self.y[c] = ycur
                y_now[c] = ycur
            if run != runs[c]:
                self.run[c] = run
        if want_y:
            for c, _, at, v in changes:  # in sample order per channel: later ones win
                y[at - start:, c] = v
        self.x[:] = last
        self._due = None
        self.idle = not (any(last) or any(y_now))
        return y, changes


def _smooth_up_to(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n`` by search (see :func:`_fast_len`)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            v = p35
            while v < n:
                v *= 2
            best = min(best, v)
            p35 *= 3
        p5 *= 5
    return best


#: Every ``2^a 3^b 5^c`` up to 2^26 (1,110 of them), sorted; made when first needed.
_SMOOTH: list[int] = []
_SMOOTH_MAX = 1 << 26


def _fast_len(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n`` (a length pocketfft transforms fast): looked up in a
    table of them (a search costs about 0.1 ms, once per rep side offline)."""
    if n > _SMOOTH_MAX:
        return _smooth_up_to(n)
    if not _SMOOTH:
        vals = []
        p5 = 1
        while p5 <= _SMOOTH_MAX:
            p35 = p5
            while p35 <= _SMOOTH_MAX:
                v = p35
                while v <= _SMOOTH_MAX:
                    vals.append(v)
                    v *= 2
                p35 *= 3
            p5 *= 5
        _SMOOTH[:] = sorted(vals)
    return _SMOOTH[bisect.bisect_left(_SMOOTH, n)]


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
    filt: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # band-passed signal
    qi: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ti: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tcols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    events: set[str] = field(default_factory=set)  # channels with confirmed synkinesis
    blinks: dict[str, int] = field(default_factory=dict)  # side -> blinks
    refs: int = 0  # bursts and closing events that still read the buffers
    finished: bool = False
    bufs: tuple[np.ndarray, ...] = ()  # (pct, act, filt) allocated, of which the above are views

    @functools.cached_property
    def quiet_l(self) -> list[int]:
        """The quiet regions' channels (read once the rep is made: ``quiet_mask`` is final)."""
        return np.flatnonzero(self.quiet_mask).tolist()


@dataclass
class _Burst:
    """A burst of a quiet region in progress (one per channel)."""

    rep: _Rep
    run: int  # first sample of the burst
    key: tuple[int, int, int] | None = None  # its event, once an alert was raised
    alert: int | None = None
    confirmed: int | None = None
    artefact: bool = False


@dataclass
class _Closing:
    """A burst that ended, still open to merging for ``merge_ms``: then a confirmed event's
    ``ended`` notice is sent, or a short burst is classified (blink or transient)."""

    burst: _Burst
    offset: int


#: Blocks up to this many samples (the live 10 ms chunks) get full-shape operands; longer ones
#: (offline) broadcast the per-channel vectors, as an extra full-size operand would cost them
#: memory traffic instead.
_SMALL = 64


class _Shapes:
    """Operands of a detector's per-block tests for ``n``-sample blocks ``(n, channels)``: of
    the full shape for a short block, where broadcasting a row costs more than the operation
    itself (live cost), else the per-channel vectors (the same values, elementwise: the same
    results).  ``sign``, ``thr``, ``up0``, ``dn0`` follow the level vector (version ``ver``),
    ``floor`` a rep's floor where the level is up, ``floor_all`` its floor; ``b`` is a scratch
    buffer and ``rows`` the row numbers."""

    def __init__(self, n: int, det: "Detector") -> None:
        shape = (n, det.nch)
        self.small = small = n <= _SMALL

        # Column-major, as the chain's envelope and filtered signal are (transposed views of
        # its (channels, samples) arrays): operands and outputs in one memory order make one
        # contiguous loop, mixed orders a strided (and for a long block, buffered) one.
        def full(v: np.ndarray) -> np.ndarray:
            return np.asfortranarray(np.broadcast_to(v, shape)) if small else v

        def empty(dims: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
            return np.empty(dims, dtype=dtype, order="F")

        self.mean, self.k = full(det.mean), full(det.k)
        self.on, self.off = full(det.on_thr), full(det.off_thr)
        self.max_env = full(det._max_env)
        # the row numbers and initial rows of the long blocks' level test (a short block's
        # level is walked, Detector._level_small)
        self.rows = np.arange(n, dtype=np.int64)[:, None]
        self.up0 = self.dn0 = np.zeros(0, dtype=np.int64)  # (set by Detector._shapes)
        own = shape if small else (0,)  # (a long block's are the vectors, set later)
        self.sign, self.thr = empty(own), empty(own)
        self.ver = -1
        self.floor = empty(own)
        self.floor_rep: _Rep | None = None
        self.floor_ver = -1
        self.floor_all = empty(own)
        self.floor_all_rep: _Rep | None = None
        self.f = empty(shape)
        self.b = empty(shape, bool)


class Detector:
    """Live and offline detector of synkinesis, blinks and artefacts (see the module docstring).

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
        Optional callback ``on_event(kind, event)`` (kinds in the module docstring), called in
        the thread that calls :meth:`feed`.
    quality, adc_range_uv:
        Artefact thresholds and the acquisition range (clipping); :meth:`for_chain` passes the
        chain's.
    """

    def __init__(
        self,
        fs: float,
        montage: Montage,
        calibration: Calibration,
        program: Program | None = None,
        delay_s: float = 0.0,
        on_event: Callable[[str, SynkinesisEvent], None] | None = None,
        quality: QualityConfig | None = None,
        adc_range_uv: tuple[float, float] | None = None,
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
        def ms(v: float) -> int:
            return int(round(v * self.fs / 1000.0))

        h_on = np.array([self.program.threshold(c, "h_on") for c in self.names])
        h_off = np.array([self.program.threshold(c, "h_off") for c in self.names])
        self.mean = np.asarray(calibration.rest_mean_uv, dtype=np.float64)
        self.sd = np.asarray(calibration.rest_sd_uv, dtype=np.float64)
        self.mvc = np.asarray(calibration.mvc_uv, dtype=np.float64)
        self.k = 100.0 / self.mvc
        self.on_thr = self.mean + h_on * self.sd
        self.off_thr = self.mean + h_off * self.sd
        self.h_on, self.h_off = h_on, h_off
        self.threshold_pct = (self.on_thr - self.mean) * self.k
        # an envelope above max_pct_mvc is an artefact: the same limit in µV of envelope
        self._max_env = self.mean + self.cfg.max_pct_mvc / self.k
        self._level = np.zeros(n, dtype=bool)
        self._level_ver = 0  # counts changes of the level vector (the operands follow it)
        self._all_down = True  # no channel's level is up
        self._act_settled = True  # the activity's input and output equal the level
        self._cross_sign: np.ndarray | None = None  # of the level test (see _block)
        self._cross_thr = self.on_thr
        self._init_up: np.ndarray | None = None  # of the long blocks' level test (see _shapes)
        self._init_dn: np.ndarray | None = None
        self._on_l, self._off_l = self.on_thr.tolist(), self.off_thr.tolist()  # (_level_small)
        # no sample is both above on_thr and below off_thr (the level walk's searches)
        self._on_ge_off = all(a >= b for a, b in zip(self._on_l, self._off_l))
        self._neg_off = -self.off_thr  # (of the level test's operands, see _shapes)
        # an envelope under the on threshold is under the artefact limit too (see _hold)
        self._on_under_max = bool(np.count_nonzero(self.on_thr <= self._max_env) == n)
        self._shapes_by_n: dict[int, _Shapes] = {}
        self._act = _Debounce(n, ms(self.cfg.min_active_ms), ms(self.cfg.min_rest_ms))
        self._evt = _Debounce(n, ms(self.cfg.min_event_ms), ms(self.cfg.event_gap_ms))
        self._n_off = self._evt.n_off
        self._blink_n = max(1, ms(self.cfg.blink_max_ms))
        self._merge_n = ms(self.cfg.merge_ms)
        self._blink_ch = np.array([c.code in self.cfg.blink_regions for c in montage.channels])
        self.qcfg = quality or QualityConfig()
        self._flags = ArtefactFlags(self.fs, n, self.qcfg, adc_range_uv)
        self._rep_bufs: list[tuple[np.ndarray, ...]] = []  # finished reps' buffers, for reuse
        # the next chunk and the futures of its flags, queued by feed(p, ahead=...)
        self._ahead: tuple[Processed, list[Any]] | None = None
        self._hold_n = max(1, ms(self.qcfg.artefact_hold_ms))
        self._hold_big_n = max(self._hold_n, ms(self.qcfg.artefact_hold_big_ms))
        self._last_big = np.full(n, -(1 << 60), dtype=np.int64)
        self._settle_n = max(1, ms(self.qcfg.gap_settle_ms))
        self._settle_until = -(1 << 60)
        self._last_bad = np.full(n, -(1 << 60), dtype=np.int64)
        self._held_now = np.zeros(n, dtype=bool)
        self._held_any = False
        self._bad_until = -(1 << 60)  # no sample held from here on (absolute index)
        self._art_open: dict[int, list[Any]] = {}  # channel -> [key, bits, peak]
        self._xlag = max(0, ms(self.cfg.crosstalk_lag_ms))
        # Blinks riding on a burst (docs/analysis.md, "Blinks during synkinesis"): moving RMS
        # of the band-passed signal over _BLINK_RMS_MS against its running median over
        # _BLINK_BASE_MS, in steps of _BLINK_STEP_MS.
        self._bstep = max(1, ms(_BLINK_STEP_MS))
        self._brms = max(2, ms(_BLINK_RMS_MS))
        self._bhalf = max(self._bstep, ms(_BLINK_BASE_MS / 2))
        self._settles: list[tuple[int, int]] = []  # (first, last + 1) settling after a gap
        self.lookback = max(1, ms(self.cfg.onset_lookback_ms))
        self._pre_a = max(2, ms(150.0))
        self._pre_b = max(1, ms(50.0))
        self._hcap = self.lookback + MAX_BLOCK + 1
        self._hist = np.zeros((self._hcap, n))
        self._hist_start: int | None = None
        self._next: int | None = None
        # Every event, keyed (sample of creation, channel, 0 for artefact periods else 1): the
        # key orders them identically however the stream was chunked.
        self._store: dict[tuple[int, int, int], SynkinesisEvent] = {}
        self._sorted: list[SynkinesisEvent] | None = []
        self.reps: list[RepResult] = []
        self.unknown_annotations: list[tuple[int, str]] = []
        self._bursts: dict[int, _Burst] = {}
        self._closing: dict[int, _Closing] = {}
        self._pending: list[_Rep] = []
        self._rep_count = 1  # reps are numbered from 1, one number per cue
        self._codes_by_side = {s: {c.code for c in montage.channels if c.side == s}
                               for s in montage.sides()}
        self._side_of = [c.side for c in montage.channels]
        # Live state
        self._last_pct = np.zeros(n)
        self._last_sample = 0
        self._cur: _Rep | None = None

    @classmethod
    def for_chain(cls, chain: Any, montage: Montage, calibration: Calibration,
                  program: Program | None = None,
                  on_event: Callable[[str, SynkinesisEvent], None] | None = None) -> "Detector":
        """A detector whose onset estimates compensate ``chain``'s envelope delay, with the
        chain's quality thresholds and acquisition range."""
        q = getattr(chain, "quality", None)
        return cls(chain.fs, montage, calibration, program, chain.delay_ms / 1000.0, on_event,
                   getattr(q, "cfg", None), getattr(q, "adc_range_uv", None))

    # ------------------------------------------------------------------ results
    @property
    def all_events(self) -> list[SynkinesisEvent]:
        """Every event (synkinesis, blink, artefact), in order of creation (any thread)."""
        s = self._sorted
        if s is None:
            s = [self._store[k] for k in sorted(self._store)]
            self._sorted = s
        return list(s)

    @property
    def events(self) -> list[SynkinesisEvent]:
        """Synkinesis events: raised alerts not retracted (provisional while ``confirmed`` is
        ``None``; after :meth:`close` all are confirmed)."""
        return [e for e in self.all_events if e.type == "synkinesis"]

    def _put(self, key: tuple[int, int, int], ev: SynkinesisEvent | None) -> None:
        if ev is None:
            self._store.pop(key, None)
        else:
            self._store[key] = ev
        self._sorted = None

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
        for c, b in list(self._bursts.items()):
            if b.key is not None and not b.artefact:
                intr[c] = True
        return LiveState(self._last_sample, self._last_pct.copy(), self.threshold_pct.copy(),
                         floor, self._act.y.copy(), intr, tuple(role),
                         rep.exercise.name if rep is not None else None, self._held_now.copy())

    def drain(self) -> list[tuple[str, SynkinesisEvent]]:
        """All queued ``(kind, event)`` items since the last call (any thread)."""
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out

    # ------------------------------------------------------------------ feeding
    def feed(self, p: Processed, ahead: Processed | None = None) -> None:
        """Process one chunk (session thread).  Chunks must be consecutive; after a gap the
        detector continues from the new sample (states are kept, the artefact flags' filters
        restart as the chain's do).  ``ahead``: the chunk that will be fed next, when the
        caller already has it (offline): a long one right after ``p`` has its artefact flags
        started on the helper thread as soon as ``p``'s are queued, so that thread works
        through both while this one goes through ``p`` (the flags are computed in stream
        order by the one helper: the same flags)."""
        if self._ahead is not None and self._ahead[0] is not p:
            for fut in self._ahead[1]:
                if fut is not None:
                    fut.cancel()
            self._ahead = None
            raise RuntimeError("Detector.feed: the chunk given as `ahead` was not fed next")
        if len(p.markers):
            self._markers(p.markers, p.start)
        if self._next is not None and (p.start != self._next or p.status.lost_samples > 0):
            self._flags.restart()
            # the chain restarted its filters: their start-up (the notches settle on strong
            # mains) is not muscle activity
            self._settle_until = p.start + self._settle_n
            self._settles = [g for g in self._settles if g[1] > p.start - 60 * int(self.fs)]
            self._settles.append((p.start, self._settle_until))
        n = len(p.envelope)
        # the chain's range test, if it is the flags' range: no clipping to test
        inside = p.raw_inside is not None and p.raw_inside == self._flags.adc_range_uv
        if n <= MAX_BLOCK:  # (the live chunk: no slices)
            self._block(p.envelope, p.filtered, p.raw, p.start, None, inside)
            return
        # A long chunk (offline): the helper thread computes every block's artefact flags in
        # order, running ahead of the blocks processed here (each waits for its own flags
        # only); the flags' state is touched by the helper alone until the last one is done.
        cuts = _cuts(n)
        pre, self._ahead = self._ahead, None
        # the next chunk's flags are queued after every block of this one (none computed here:
        # the helper would be past them)
        nxt = (ahead if ahead is not None and len(ahead.envelope) > MAX_BLOCK
               and ahead.start == p.start + n and ahead.status.lost_samples == 0 else None)
        if pre is not None:  # (it is p: checked above)
            futures = pre[1]
        else:
            futures = self._submit_flags(p, cuts, inside, every=nxt is not None)
        if nxt is not None:
            self._ahead = (nxt, self._submit_flags(
                nxt, _cuts(len(nxt.envelope)),
                nxt.raw_inside is not None and nxt.raw_inside == self._flags.adc_range_uv,
                every=True))
        try:
            for (a, b), fut in zip(cuts, futures):
                self._block(p.envelope[a:b], p.filtered[a:b], p.raw[a:b], p.start + a,
                            fut if fut is not None else False, inside)
        except BaseException:
            # after an error: the flags not started are not computed
            for fut in futures + (self._ahead[1] if self._ahead is not None else []):
                if fut is not None:
                    fut.cancel()
            self._ahead = None
            raise

    def _submit_flags(self, p: Processed, cuts: list[tuple[int, int]], inside: bool,
                      every: bool) -> list[Any]:
        """The futures of the artefact flags of each block ``cuts`` of ``p`` on the helper
        thread, in order; ``None`` for a block too short to gain from it (computed in
        :meth:`_block`), unless ``every``."""
        helper = _flags_helper()
        return [helper.submit(self._flags.process, p.raw[a:b], p.filtered[a:b],
                              p.envelope[a:b], p.start + a, None, None, inside)
                if every or b - a >= PARALLEL_MIN else None for a, b in cuts]

    def _markers(self, markers: Sequence[Any], start: int) -> None:
        for m in markers:
            ex = self.program.find(m.text)
            if ex is None:
                # Protocol and bookkeeping annotations: calibration periods, markers, gaps, and
                # this detector's own events written into a recording (``synkinesis L-OOC``).
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
            rep.blinks[side] = 0
            qi += quiet
            ti += [t] * len(quiet)
            tcols.append(t)
        rep.qi = np.array(qi, dtype=np.int64)
        rep.ti = np.array(ti, dtype=np.int64)
        rep.tcols = np.array(tcols, dtype=np.int64)
        m = max(0, stop - start)
        # Buffers of a finished rep are used again, zeroed (rows a gap leaves unwritten read
        # 0, as in new ones): fresh ones cost their page faults, ~1 ms a rep offline.
        fit = [b for b in self._rep_bufs if len(b[0]) >= m]
        if fit:
            bufs = min(fit, key=lambda b: len(b[0]))
            self._rep_bufs.remove(bufs)
            for b in bufs:
                b[:m].fill(0)
        else:
            cap = -(-m // _REP_ROWS) * _REP_ROWS
            bufs = (np.zeros((cap, n)), np.zeros((cap, n), dtype=bool), np.zeros((cap, n)))
        rep.bufs = bufs
        rep.pct, rep.act, rep.filt = bufs[0][:m], bufs[1][:m], bufs[2][:m]
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
        if i + m <= self._hcap:  # (no slice of a block that fits: live cost)
            self._hist[i:i + m] = env
            return
        first = self._hcap - i
        self._hist[i:i + first] = env[:first]
        self._hist[: m - first] = env[first:]

    def _hold(self, env: np.ndarray, filt: np.ndarray, raw: np.ndarray, start: int,
              emin: np.ndarray | None = None, emax: np.ndarray | None = None,
              flags: Any = None, sh: _Shapes | None = None, under_on: bool = False,
              inside: bool = False) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(held, bits)`` of the block: artefact flags (``flags``: their future, when the
        helper thread computes them) and the hold after them (or ``None`` when no sample of the
        block is flagged or held).  ``sh``: the block's operands; ``under_on``: no sample of
        the block is above its channel's on threshold; ``inside``: no raw sample is clipped
        (the chain's range test)."""
        n = len(env)
        bits = (flags.result() if flags is not None
                else self._flags.process(raw, filt, env, start, emin, emax, inside))
        # The envelope above max_pct_mvc: none when every sample is under on_thr and that is
        # under the limit (the common case, no call); else one full-shape comparison.
        if not (under_on and self._on_under_max) and count_nonzero(
                env > self._max_env if sh is None else np.greater(env, sh.max_env, out=sh.b)):
            if bits is None:
                bits = np.zeros((n, self.nch), dtype=np.uint8)
            bits[env > self._max_env] |= _PCT
        if bits is None and self._bad_until <= start:
            if self._held_any:
                self._held_now[:] = False
                self._held_any = False
            return None, None
        t = np.arange(start, start + n, dtype=np.int64)[:, None]
        never = -(1 << 60)
        idx = np.full((n, self.nch), never, dtype=np.int64) if bits is None else \
            np.where(bits != 0, t, never)
        idx = np.maximum(np.maximum.accumulate(idx, axis=0), self._last_bad)
        self._last_bad = idx[-1].copy()
        # mV at the input (AMPLITUDE): the notches ring for up to a second after mains of a
        # floating input stops, so such samples hold their channel longer
        big = np.full((n, self.nch), never, dtype=np.int64) if bits is None else \
            np.where(bits & AMPLITUDE, t, never)
        big = np.maximum(np.maximum.accumulate(big, axis=0), self._last_big)
        self._last_big = big[-1].copy()
        self._bad_until = max(int(self._last_bad.max()) + self._hold_n,
                              int(self._last_big.max()) + self._hold_big_n)
        held = ((t - idx) < self._hold_n) | ((t - big) < self._hold_big_n)
        self._held_now = held[-1].copy()
        self._held_any = True
        return held, bits

    def _level_small(self, env: np.ndarray, cross: np.ndarray, n: int
                     ) -> tuple[np.ndarray, list[bool], dict[int, list[int]], list[bool]]:
        """The level state of a short block (at most ``_SMALL`` samples) in which some sample
        crosses the threshold of its channel's state (``cross``), walked in Python over the
        samples of those channels only: up at a sample above ``on_thr``, down at one below
        ``off_thr`` (both: up), else as before; the same comparisons of the same values as the
        long blocks' accumulations, without their dozen NumPy calls (live cost: the 10 ms
        chunks in which a level changes were the slowest).  Returns ``(level (n, C), its first
        row, its changes {channel: [rows]} after the first row, its last row)``: the
        debounce's input as :meth:`_Debounce.process` would read it from the level."""
        old = self._level.tolist()
        x0s, last = list(old), list(old)
        cuts: dict[int, list[int]] = {}
        flips: list[tuple[int, int, bool]] = []
        on_l, off_l = self._on_l, self._off_l
        crossing = np.logical_or.reduce(cross, axis=0).tolist()  # (rows of a column-major
        for c in [c for c, k in enumerate(crossing) if k]:  # block: one contiguous reduction)
            st, on, off = old[c], on_l[c], off_l[c]
            rows: list[int] = []
            col = env[:, c].tolist()
            if self._on_ge_off:
                # With on_thr >= off_thr no sample is both above one and below the other, so
                # the level flips up at the first sample above on_thr after it is down and
                # down at the first below off_thr after it is up: found by list searches over
                # the comparisons (map of float comparisons, the same IEEE comparisons; a
                # True at the end stops the search) instead of a Python step per sample.
                ups = list(map(on.__lt__, col))  # v > on
                ups.append(True)
                dns = list(map(off.__gt__, col))  # v < off
                dns.append(True)
                i = 0
                while True:
                    i = (dns if st else ups).index(True, i)
                    if i >= n:
                        break
                    st = not st
                    flips.append((c, i, st))
                    if i:
                        rows.append(i)
                    else:
                        x0s[c] = st
                    i += 1
                if rows:
                    cuts[c] = rows
                last[c] = st
                continue
            for i, v in enumerate(col):
                if v > on:
                    t = True
                elif v < off:
                    t = False
                else:
                    continue
                if t != st:
                    st = t
                    flips.append((c, i, t))
                    if i:
                        rows.append(i)
                    else:
                        x0s[c] = t
            if rows:
                cuts[c] = rows
            last[c] = st
        level = np.empty((n, self.nch), dtype=bool, order="F")
        level[...] = self._level
        for c, i, t in flips:  # in sample order per channel: later ones win
            level[i:, c] = t
        return level, x0s, cuts, last

    def _set_level(self, level: np.ndarray) -> None:
        """The level vector after a block in which it changed (the test's operands follow)."""
        self._level = level
        self._cross_sign = None
        self._level_ver += 1
        self._all_down = not count_nonzero(level)

    def _shapes(self, n: int) -> _Shapes:
        """The operands of the level test and %MVC at the block's full shape (kept for the
        last few block sizes), those that follow the level brought up to date."""
        sh = self._shapes_by_n.get(n)
        if sh is None:
            if len(self._shapes_by_n) > 8:
                self._shapes_by_n.clear()
            sh = self._shapes_by_n[n] = _Shapes(n, self)
        if self._cross_sign is None:
            self._cross_sign = np.where(self._level, -1.0, 1.0)
            self._cross_thr = np.where(self._level, self._neg_off, self.on_thr)
            self._init_up = self._init_dn = None  # (made for a long block only)
        if sh.ver != self._level_ver:
            if sh.small:  # (a short block's level is walked: no initial rows, see _block)
                sh.sign[...] = self._cross_sign
                sh.thr[...] = self._cross_thr
            else:  # (the vectors themselves: replaced, never modified, when the level changes)
                if self._init_up is None or self._init_dn is None:
                    self._init_up = np.where(self._level, -1, -2)
                    self._init_dn = np.where(self._level, -2, -1)
                sh.sign, sh.thr = self._cross_sign, self._cross_thr
                sh.up0, sh.dn0 = self._init_up, self._init_dn
            sh.ver = self._level_ver
        return sh

    def _floor_where(self, rep: _Rep, sh: _Shapes, everywhere: bool = False) -> np.ndarray:
        """``rep``'s floor where the level is up, +inf elsewhere (``everywhere``: the floor),
        at the block's full shape."""
        if everywhere:
            if sh.floor_all_rep is not rep:
                if sh.small:
                    sh.floor_all[...] = rep.floor
                else:
                    sh.floor_all = rep.floor
                sh.floor_all_rep = rep
            return sh.floor_all
        if sh.floor_rep is not rep or sh.floor_ver != self._level_ver:
            if sh.small:
                sh.floor[...] = np.where(self._level, rep.floor, np.inf)
            else:
                sh.floor = np.where(self._level, rep.floor, np.inf)
            sh.floor_rep, sh.floor_ver = rep, self._level_ver
        return sh.floor

    def _block(self, env: np.ndarray, filt: np.ndarray, raw: np.ndarray, start: int,
               flags: Any = None, inside: bool = False) -> None:
        """One block (at most MAX_BLOCK samples); ``flags``: the future of its artefact flags
        when the caller submitted them, ``False`` to compute them here; ``inside``: no raw
        sample is clipped (the chain's range test, see :meth:`feed`)."""
        n = len(env)
        if n == 0:
            return
        stop = start + n
        self._write_hist(env, start)
        sh = self._shapes_by_n.get(n)
        if sh is None or sh.ver != self._level_ver or self._cross_sign is None:
            sh = self._shapes(n)  # (operands to make or to bring up to date)
        pct = np.subtract(env, sh.mean)
        np.multiply(pct, sh.k, out=pct)  # (env - mean) * k
        if flags is None:
            flags = (_flags_helper().submit(self._flags.process, raw, filt, env, start, None,
                                            None, inside) if n >= PARALLEL_MIN else None)
        elif flags is False:
            flags = None
        # Level state with hysteresis, exact per sample; only channels that may change it are
        # looked at sample by sample (vectorised within the channel).  The common case (no
        # sample of any channel across the threshold of its state) is one elementwise test
        # and a count: per-channel reductions only when something crosses (live cost).
        # The test is one product and one comparison: with s = -1 where the level is up and
        # +1 elsewhere, s·env > s·threshold is env < off_thr or env > on_thr, exactly
        # (negation is exact); with every level down, env > on_thr alone.  Operands of the
        # block's full shape (broadcasting costs more than the operation, live cost).
        under_on = self._all_down  # and no crossing: every sample under on_thr (see _hold)
        if under_on:
            cross = np.greater(env, sh.on, out=sh.b)
        else:
            cross = np.greater(np.multiply(env, sh.sign, out=sh.f), sh.thr, out=sh.b)
        level: np.ndarray  # (n, C), or (C,) when constant over the block
        walked: tuple[list[bool], dict[int, list[int]]] | None = None  # (see _level_small)
        crossing = count_nonzero(cross)
        if crossing and sh.small:
            # each sample takes the state of the last sample at or before it that was above
            # on_thr (1) or below off_thr (0): a short block walks the samples of the channels
            # that cross (see _level_small), and the activity's debounce takes the level's
            # changes from that walk
            level, x0s, cuts, last = self._level_small(env, cross, n)
            walked = (x0s, cuts)
            if last != self._level.tolist():
                self._set_level(np.array(last, dtype=bool))
            active, _ = self._act.process_runs(x0s, cuts, last, start, n)
            self._act_settled = False
            under_on = False
        elif crossing:
            # the same, every channel at once: the last such sample of each kind, the state
            # before the block counting as one at row -1 (the other kind at row -2), and the
            # later one wins
            last_up = np.where(np.greater(env, sh.on, out=sh.b), sh.rows, sh.up0)
            np.maximum.accumulate(last_up, axis=0, out=last_up)
            last_dn = np.where(np.less(env, sh.off, out=sh.b), sh.rows, sh.dn0)
            np.maximum.accumulate(last_dn, axis=0, out=last_dn)
            level = np.greater_equal(last_up, last_dn)  # (both at one row: up, as before)
            if level[-1].tolist() != self._level.tolist():
                self._set_level(level[-1].copy())
            active, _ = self._act.process(level, start)
            self._act_settled = False
            under_on = False
        else:
            level = self._level
            if self._act_settled:  # nothing to debounce: the activity is the level
                active = self._act.y
            else:
                act, _ = self._act.process_const(level, start, n)
                self._act_settled = self._act.steady
                active = self._act.y if act is None else act
        held, bits = self._hold(env, filt, raw, start, flags=flags, sh=sh, under_on=under_on,
                                inside=inside)

        reps = [r for r in self._pending if r.start < stop and r.stop > start]
        for r in reps:
            if r.start <= start and stop <= r.stop:  # the rep covers the block (no slices)
                o = start - r.start
                r.pct[o:o + n] = pct
                r.act[o:o + n] = active
                r.filt[o:o + n] = filt
                continue
            a, b = max(r.start, start), min(r.stop, stop)
            r.pct[a - r.start:b - r.start] = pct[a - start:b - start]
            r.act[a - r.start:b - r.start] = active[a - start:b - start] if active.ndim == 2 \
                else active
            r.filt[a - r.start:b - r.start] = filt[a - start:b - start]
        if held is not None or self._art_open:
            self._artefacts(held, bits, pct, start, n)
        if self._settle_until > start:  # after a gap: no burst starts, none is confirmed
            k = min(n, self._settle_until - start)
            if held is None:
                held = np.zeros((n, self.nch), dtype=bool)
            else:
                held = held.copy()
            held[:k] = True
        pending = bool(self._bursts) or not self._evt.idle
        lv = level.tolist() if level.ndim == 1 and not pending else None
        if lv is not None and (self._all_down or not any(
                lv[i] for r in reps for i in r.quiet_l)):
            # No quiet region's level is up all block and nothing is being debounced: the
            # burst condition is false at every sample (the common case, live cost).
            pass
        elif walked is not None and not pending and not any(
                walked[0][i] or i in walked[1] for r in reps for i in r.quiet_l):
            # The same for a short block whose level changed in other regions only (a
            # target's): every quiet region's level is down at its first row and does not
            # change in the block (live cost: the chunks in which a level changes).
            pass
        elif reps or pending:
            r0 = reps[0] if len(reps) == 1 else None
            if r0 is not None and r0.start <= start and r0.stop >= stop:
                # the live case: one rep over the whole block.  A region that is not quiet
                # has +inf for its floor, so the quiet mask changes nothing; with the level
                # constant, one comparison with the rep's floor where the level is up, +inf
                # elsewhere (no sample there is above it: those levels are down, so their
                # envelopes are under on_thr)
                if level.ndim == 1:
                    cond = np.greater(pct, self._floor_where(r0, sh))
                else:
                    cond = np.greater(pct, self._floor_where(r0, sh, everywhere=True))
                    cond &= level
            else:
                cond = np.zeros((n, self.nch), dtype=bool)
                for r in reps:
                    if not len(r.qi):
                        continue
                    rows = slice(max(r.start, start) - start, min(r.stop, stop) - start)
                    lv = level[rows] if level.ndim == 2 else level
                    cond[rows] = lv & (pct[rows] > r.floor) & r.quiet_mask
            if held is not None:
                cond &= ~held
            if self._evt.idle and not count_nonzero(cond):
                # no input, no output, none to come: the debounce would change nothing
                # (process() would set its last input to False, which it is)
                changes: list[tuple[int, int, int, bool]] = []
            else:
                _, changes = self._evt.process(cond, start, want_y=False)
            by_ch: dict[int, list[tuple[int, int, bool]]] = {}
            for c, run, at, v in changes:
                by_ch.setdefault(c, []).append((run, at, v))
            for c in sorted(set(by_ch) | set(self._bursts)):
                bc = self._bursts.get(c)
                if c not in by_ch and bc is not None and (
                        bc.artefact or (bc.alert is not None and bc.confirmed is not None)):
                    continue  # nothing can happen to this burst in the block (_next_action)
                self._channel(c, sorted(by_ch.get(c, []), key=lambda x: x[1]), active, held,
                              cond, start, n)
        if self._closing:
            for c in [c for c, cl in self._closing.items()
                      if self._gap_from(c, cl) + self._merge_n < stop]:
                self._ended(c)
        self._cur = reps[-1] if reps and reps[-1].stop > stop - 1 else None
        # A rep is finished once its bursts ended and their merge windows passed (classes known).
        lag = self._n_off + self._merge_n + 1
        if self._pending and self._pending[0].stop + lag <= stop:
            done = [r for r in self._pending if r.stop + lag <= stop]
            self._pending = [r for r in self._pending if r.stop + lag > stop]
            for r in done:
                self._finish(r)
        self._last_pct = pct[-1]
        self._last_sample = stop - 1

    # ------------------------------------------------------------------ artefact periods
    def _artefacts(self, held: np.ndarray | None, bits: np.ndarray | None, pct: np.ndarray,
                   start: int, n: int) -> None:
        """Open, extend and close the per-channel artefact periods (held runs)."""
        chans = set(self._art_open)
        if held is not None:
            chans |= set(np.flatnonzero(held.any(axis=0)).tolist())
        for c in sorted(chans):
            col = held[:, c] if held is not None else np.zeros(n, dtype=bool)
            edges = np.flatnonzero(np.diff(np.concatenate([[c in self._art_open], col,
                                                           [False]]).astype(np.int8)))
            # edges alternate: (start of a run or, if open, its end), ...
            pos = 0
            for e in edges.tolist():
                if c in self._art_open:  # a run ends at row e (first row not held)
                    if e >= n:
                        seg = slice(pos, n)
                        self._art_extend(c, bits, pct, seg)
                        break
                    self._art_extend(c, bits, pct, slice(pos, e))
                    self._art_close(c, start + e)
                else:  # a run starts at row e
                    self._art_open[c] = [(start + e, c, 0), 0, -np.inf]
                    rep = self._rep_at(start + e)
                    ev = SynkinesisEvent(self.names[c], "", rep.exercise.name if rep else "",
                                         rep.index if rep else -1, start + e, None, None, 0.0,
                                         "artefact", confirmed=start + e)
                    self._put((start + e, c, 0), ev)
                    pos = e

    def _art_extend(self, c: int, bits: np.ndarray | None, pct: np.ndarray, rows: slice) -> None:
        st = self._art_open[c]
        if rows.stop <= rows.start:
            return
        if bits is not None:
            st[1] |= int(np.bitwise_or.reduce(bits[rows, c]))
        st[2] = max(st[2], float(pct[rows, c].max()))

    def _art_close(self, c: int, at: int) -> None:
        key, b, pk = self._art_open.pop(c)
        ev = replace(self._store[key], offset=at, peak_pct_mvc=max(0.0, pk), reason=_reasons(b))
        self._put(key, ev)
        self._emit("artefact", ev)

    # ------------------------------------------------------------------ bursts and events
    def _rep_at(self, sample: int) -> _Rep | None:
        for r in self._pending:
            if r.start <= sample < r.stop:
                return r
        return None

    def _channel(self, c: int, changes: list[tuple[int, int, bool]], active: np.ndarray,
                 held: np.ndarray | None, cond: np.ndarray, start: int, n: int) -> None:
        """One channel's bursts over the block: starts and ends (debounce changes), and in
        between the alert, an artefact hold and the confirmation, in sample order."""
        pos = start
        for item in [*changes, None]:
            lim = item[1] if item is not None else start + n
            while pos < lim and (b := self._bursts.get(c)) is not None:
                nxt = self._next_action(c, b, active, held, cond, start, pos, lim)
                if nxt is None:
                    break
                s, kind = nxt
                if kind == "held":
                    self._burst_artefact(c, b, s)
                elif kind == "alert":
                    self._burst_alert(c, b, s)
                else:
                    self._burst_confirm(c, b, s)
                pos = s
            if item is None:
                break
            run, at, v = item
            if v:
                self._burst_start(c, run, at)
            elif c in self._bursts:
                self._burst_end(c, run, at)
            pos = at

    def _next_action(self, c: int, b: _Burst, active: np.ndarray, held: np.ndarray | None,
                     cond: np.ndarray, start: int, pos: int, lim: int
                     ) -> tuple[int, str] | None:
        if b.artefact:
            return None
        a, z = pos - start, lim - start
        best: tuple[int, str] | None = None
        if b.confirmed is None and held is not None:
            hit = np.flatnonzero(held[a:z, c])
            if len(hit):
                best = (pos + int(hit[0]), "held")
        if b.alert is None and active.ndim == 1 and held is None:
            # the target's activity is constant over the block (the live case): active from
            # pos on, or not in the block (no array to search)
            if active[int(b.rep.trig[c])]:
                best = (pos, "alert")
        elif b.alert is None:
            t = int(b.rep.trig[c])
            tg = active[a:z, t] if active.ndim == 2 else np.full(z - a, bool(active[t]))
            if held is not None:
                tg = tg & ~held[a:z, t]
            hit = np.flatnonzero(tg)
            if len(hit) and (best is None or pos + int(hit[0]) < best[0]):
                best = (pos + int(hit[0]), "alert")
        if b.confirmed is None:
            # the burst lasted: its condition holds at a sample blink_max_ms after it began
            # (a merged burst may be past that already)
            s = max(pos, b.run + self._blink_n)
            if s < lim and (best is None or s < best[0]):
                hit = np.flatnonzero(cond[s - start:z, c])
                if len(hit):
                    s += int(hit[0])
                    if best is None or s < best[0]:
                        best = (s, "confirm")
        return best

    def _burst_start(self, c: int, run: int, at: int) -> None:
        rep = self._rep_at(at)
        if rep is None:  # cannot happen: the condition is false outside reps
            return
        cl = self._closing.get(c)
        if cl is not None and cl.burst.rep is rep and run - self._gap_from(c, cl) <= self._merge_n:
            # The same co-contraction again: the burst goes on (no new alert).
            b = cl.burst
            if b.key is not None:
                self._put(b.key, replace(self._store[b.key], offset=None))
            del self._closing[c]
            self._bursts[c] = b
            return
        if cl is not None:
            self._ended(c)
        rep.refs += 1
        self._bursts[c] = _Burst(rep, run)

    def _burst_alert(self, c: int, b: _Burst, s: int) -> None:
        rep = b.rep
        onset = self._estimate_onset(c, s, max(rep.start, b.run - self.lookback))
        pk = float(rep.pct[max(b.run, rep.start) - rep.start:s - rep.start + 1, c].max())
        ev = SynkinesisEvent(self.names[c], self.names[int(rep.trig[c])], rep.exercise.name,
                             rep.index, onset, s, None, pk, "synkinesis", confirmed=b.confirmed)
        b.key, b.alert = (s, c, 1), s
        self._put(b.key, ev)
        log.debug("synkinesis alert %s during %s: onset %d, alert %d", ev.channel, ev.exercise,
                  onset, s)
        self._emit("raised", ev)
        if b.confirmed is not None:  # the burst already lasted: its class is known
            b.confirmed = None
            self._burst_confirm(c, b, s)

    def _crosstalk_only(self, c: int, b: _Burst, s: int, lo: int | None = None
                        ) -> tuple[bool, float, float]:
        """``(is crosstalk, own %MVC, R²)``: over the last ``blink_max_ms`` of the burst (from
        ``lo`` on, default the burst's start), the target's waveform explains most of the quiet
        channel's band-passed signal (R² > 0.5, least squares over lags within
        ``crosstalk_lag_ms``) and what it leaves, the channel's own activity as an envelope
        level, is under the floor."""
        own, r2 = self._own_pct(c, b, s, lo)
        return bool(r2 > 0.5 and own < b.rep.floor[c]), own, r2

    def _own_pct(self, c: int, b: _Burst, s: int, lo: int | None = None
                 ) -> tuple[float, float]:
        """``(own %MVC, R²)`` of channel ``c`` (see :meth:`_crosstalk_only`)."""
        rep = b.rep
        t = int(rep.trig[c])
        a0 = max(b.run if lo is None else lo, s - self._blink_n, rep.start) - rep.start
        a1 = min(s + 1, rep.stop) - rep.start
        q, x = rep.filt[a0:a1, c], rep.filt[a0:a1, t]
        m, k = len(q), self._xlag
        if m <= 2 * k + 8:
            return np.inf, 0.0
        best, res_ss, tot, n_used = 0.0, float(np.dot(q, q)), 1.0, m
        for lag in range(-k, k + 1):
            qq = q[max(0, lag):m - max(0, -lag)]
            xx = x[max(0, -lag):m - max(0, lag)]
            xy, xx2 = float(np.dot(xx, qq)), float(np.dot(xx, xx))
            if xx2 > 0 and xy * xy / xx2 > best:
                best = xy * xy / xx2
                tot = float(np.dot(qq, qq))
                res_ss = tot - best
                n_used = len(qq)
        if best == 0.0 or tot <= 0:
            return np.inf, 0.0
        own_env = np.sqrt(2.0 / np.pi) * np.sqrt(max(res_ss, 0.0) / n_used)  # Gaussian |x|
        return float((own_env - self.mean[c]) * self.k[c]), best / tot

    def _burst_confirm(self, c: int, b: _Burst, s: int) -> None:
        b.confirmed = s
        if b.key is not None and (ct := self._crosstalk_only(c, b, s))[0]:
            own = ct[1]
            # The quiet channel only carries the target's own waveform (volume conduction):
            # crosstalk, not a muscle of its own joining in.
            b.artefact = True
            ev = replace(self._store[b.key], type="artefact", retracted=True, confirmed=s,
                         reason=f"crosstalk from {self.names[int(b.rep.trig[c])]}: own "
                                f"activity {max(own, 0.0):.0f} %MVC, under the floor")
            self._put(b.key, None)  # no event of the channel: the rep's crosstalk index says it
            self._emit("retracted", ev)
            return
        if b.key is not None:
            ev = replace(self._store[b.key], confirmed=s)
            if ct[2] > _XT_ONSET_R2:
                # Much of the quiet signal is the target's waveform: the alert may have come
                # from crosstalk over the floor before the region joined in.  The rise is
                # looked for again from here (the co-contraction is up now), and a later
                # onset is taken.
                again = self._estimate_onset(c, s, max(b.rep.start, b.run - self.lookback))
                if again > ev.onset:
                    ev = replace(ev, onset=again)
            self._put(b.key, ev)
            b.rep.events.add(self.names[c])
            self._emit("confirmed", ev)

    def _burst_artefact(self, c: int, b: _Burst, s: int) -> None:
        """An artefact flag during a burst whose class is not known: not synkinesis."""
        b.artefact = True
        if b.key is not None:
            ev = replace(self._store[b.key], type="artefact", retracted=True, confirmed=s,
                         offset=s, reason="alert retracted: artefact on the channel")
            self._put(b.key, None)  # the artefact period is the record
            self._emit("retracted", ev)

    def _burst_end(self, c: int, off: int, at: int) -> None:
        b = self._bursts.pop(c)
        rep = b.rep
        if b.artefact:
            self._release(rep)
            return
        if b.confirmed is None and off - b.run > self._blink_n:
            self._burst_confirm(c, b, at)
        if b.confirmed is not None and b.key is None:  # lasted, but the target never moved
            self._release(rep)
            return
        if b.key is not None:
            ev = self._store[b.key]
            a0 = max(ev.alert or b.run, rep.start) - rep.start
            a1 = min(off, rep.stop) - rep.start
            pk = ev.peak_pct_mvc
            if a1 > a0:
                pk = max(pk, float(rep.pct[a0:a1, c].max()))
            self._put(b.key, replace(ev, offset=off, peak_pct_mvc=pk))
        # open to merging for merge_ms; then ended (confirmed) or classified (short)
        self._closing[c] = _Closing(b, off)

    def _gap_from(self, c: int, cl: _Closing) -> int:
        """Where the gap after a closing burst begins for merging: its offset, or the end of
        an artefact hold (or settling after a gap) that began during the burst or its gap (an
        electrode pop in the middle of one co-contraction does not split it)."""
        held_end = max(int(self._last_bad[c]) + self._hold_n,
                       int(self._last_big[c]) + self._hold_big_n, self._settle_until)
        return max(cl.offset, held_end) if held_end > cl.burst.run else cl.offset

    def _ended(self, c: int) -> None:
        """The merge window of channel ``c``'s last burst passed (or the stream ended)."""
        cl = self._closing.pop(c)
        b, off = cl.burst, cl.offset
        rep = b.rep
        if b.confirmed is not None:
            assert b.key is not None
            if self._blink_ch[c]:
                self._blinks_on_burst(c, b, off)
            if b.key in self._store:  # (not retracted as a blink)
                self._emit("ended", self._store[b.key])
            self._release(rep)
            return
        # Short: a blink in an orbicularis oculi region, a transient elsewhere.  The class is
        # known now, merge_ms after the burst ended.
        at = off + self._merge_n
        a0, a1 = max(b.run, rep.start) - rep.start, min(off, rep.stop) - rep.start
        pk = float(rep.pct[a0:a1, c].max()) if a1 > a0 else 0.0
        old = self._store.get(b.key) if b.key is not None else None
        target_moved = b.alert is not None
        end = min(off, rep.stop) - 1
        if target_moved and self._crosstalk_only(c, b, end, end - self._blink_n)[0]:
            # only the target's waveform: crosstalk, neither a blink nor a transient (judged
            # over the last blink_max_ms up to the burst's end, before it too: a short burst
            # barely over the floor is too short to be judged alone)
            if old is not None and b.key is not None:
                ev = replace(old, type="artefact", retracted=True, confirmed=at, offset=off,
                             reason=f"crosstalk from {self.names[int(rep.trig[c])]}")
                self._put(b.key, None)
                self._emit("retracted", ev)
            self._release(rep)
            return
        if self._blink_ch[c]:
            onset = old.onset if old is not None else max(rep.start, b.run - self.delay)
            ev = SynkinesisEvent(self.names[c], self.names[int(rep.trig[c])],
                                 rep.exercise.name, rep.index, onset, b.alert, off, pk,
                                 "blink", confirmed=at, retracted=old is not None)
            self._put(b.key if b.key is not None else (at, c, 1), ev)
            rep.blinks[self._side_of[c]] = rep.blinks.get(self._side_of[c], 0) + 1
            self._emit("retracted" if old is not None else "blink", ev)
        elif old is not None and b.key is not None:
            # a transient (ECG, a twitch): the alert is withdrawn, no event is kept
            ev = replace(old, type="artefact", retracted=True, confirmed=at, offset=off,
                         peak_pct_mvc=max(old.peak_pct_mvc, pk),
                         reason=f"transient: shorter than {self.cfg.blink_max_ms:g} ms")
            self._put(b.key, None)
            self._emit("retracted", ev)
        self._release(rep)

    def _blinks_on_burst(self, c: int, b: _Burst, off: int) -> None:
        """Blinks riding on confirmed synkinesis of a blink region (known ``merge_ms`` after the
        burst ended): where the moving RMS of the band-passed signal rises above
        ``blink_on_burst_ratio`` times its running median (the burst's own level) for at most
        ``blink_max_ms``, outside artefact periods and the settling after a gap.  Each is a
        blink event; the synkinesis event's peak leaves their spans out, and a burst that began
        with one takes its onset after it.  Several such rises with less than ``blink_max_ms``
        above the floor besides them are the burst itself (a region hovering around its
        limit); one blink with less than that besides it was the alert's cause: the synkinesis
        event is retracted (``type`` blink)."""
        rep = b.rep
        key = b.key
        assert key is not None
        st, half, w = self._bstep, self._bhalf, self._brms
        # samples written by now whatever the chunking: the burst, half a median window
        # before it and up to merge_ms after it
        e0 = max(b.run - half, rep.start)
        e1 = min(off + min(half, self._merge_n), rep.stop)
        if e1 - e0 < 2 * half:
            return
        x = rep.filt[e0 - rep.start:e1 - rep.start, c]
        cs = np.concatenate(([0.0], np.cumsum(x * x)))
        # moving RMS centred on every st-th sample (edges: the part of the window inside)
        i = np.arange(0, len(x), st)
        lo, hi = np.clip(i - w // 2, 0, len(x)), np.clip(i - w // 2 + w, 0, len(x))
        rms = np.sqrt((cs[hi] - cs[lo]) / np.maximum(hi - lo, 1))
        k = max(1, half // st)
        pad = np.concatenate((np.full(k, rms[0]), rms, np.full(k, rms[-1])))
        # (the level is slow: its median every 4th step, held, costs a quarter)
        win = np.lib.stride_tricks.sliding_window_view(pad, 2 * k + 1)[::4]
        base = np.repeat(median(win, axis=1), 4)[:len(rms)]
        ratio = rms / np.maximum(base, 1e-12)
        hot = ratio > self.cfg.blink_on_burst_ratio
        a_i, b_i = (max(b.run, rep.start) - e0) // st, (off - e0 + st - 1) // st
        hot[:a_i] = False
        hot[b_i:] = False
        if not hot.any():
            return
        ext = np.concatenate(([False], ratio > _BLINK_EXTENT, [False])).astype(np.int8)
        edges = np.flatnonzero(np.diff(ext))
        name = self.names[c]
        arts = [(e.onset, e.offset if e.offset is not None else e1) for e in self._store.values()
                if e.type == "artefact" and e.channel == name and e.alert is None]
        if c in self._art_open:
            arts.append((self._art_open[c][0][0], e1))
        arts += self._settles
        spans: list[tuple[int, int]] = []
        for r0, r1 in zip(edges[::2].tolist(), edges[1::2].tolist()):
            if not hot[r0:r1].any():
                continue
            s0, s1 = e0 + r0 * st, e0 + (r1 - 1) * st
            # at most a blink (plus the RMS window's spread), at least the window (a blink's EMG
            # lasts 50 ms or more: anything shorter is the window's own noise)
            if not w <= s1 - s0 <= self._blink_n + w or any(a <= s1 and s0 <= z
                                                            for a, z in arts):
                continue
            spans.append((s0, s1))
        if not spans:
            return
        pct = rep.pct[:, c]
        r0 = max(b.run, rep.start)
        own = pct[r0 - rep.start:off - rep.start] > rep.floor[c]
        for s0, s1 in spans:
            own[max(0, s0 - r0):max(0, s1 + self.delay - r0)] = False
        at = off + self._merge_n
        syn = self._store[key]
        alone = int(own.sum()) < self._blink_n
        if alone and len(spans) > 1:
            # no burst of its own around them (a region hovering around its limit): the rises
            # are the co-contraction itself
            return
        if alone:
            # one blink and, besides it, less than blink_max_ms above the floor (its decay, an
            # artefact's edge): the alert was the blink's; no synkinesis
            self._put(key, None)
            if not any(e.type == "synkinesis" and e.channel == self.names[c]
                       and e.rep == rep.index for e in self._store.values()):
                rep.events.discard(self.names[c])
            self._emit("retracted", replace(
                syn, type="blink", retracted=True, confirmed=at,
                reason=f"a blink; less than {self.cfg.blink_max_ms:g} ms of activity besides"))
        s0, s1 = spans[0]
        if s0 <= syn.onset + w:
            # the burst began with the blink: the co-contraction's onset is where the envelope,
            # after the blink, turned up again (its lowest point within 300 ms), minus the delay
            z0 = min(s1 + self.delay, off - 1)
            z1 = min(z0 + self._pre_a * 2, off)
            if z1 > z0:
                t = z0 + int(np.argmin(pct[z0 - rep.start:z1 - rep.start]))
                syn = replace(syn, onset=max(rep.start, t - self.delay))
        p0 = max(syn.alert or b.run, rep.start) - rep.start  # the event's peak: from the alert
        keep = np.ones(max(0, off - rep.start - p0), dtype=bool)
        for s0, s1 in spans:
            # the centred RMS leads the blink by about a quarter window, the envelope lags
            onset = max(rep.start, s0 + w // 4 - self.delay)
            offset = min(off, s1 - w // 4)
            a0, a1 = s0 - rep.start, min(s1 + self.delay, off) - rep.start
            pk = float(pct[a0:a1].max()) if a1 > a0 else 0.0
            keep[max(0, a0 - p0):max(0, a1 - p0)] = False
            ev = SynkinesisEvent(name, self.names[int(rep.trig[c])], rep.exercise.name, rep.index,
                                 onset, None, max(offset, onset + 1), pk, "blink", confirmed=at)
            self._put((onset, c, 2), ev)
            rep.blinks[self._side_of[c]] = rep.blinks.get(self._side_of[c], 0) + 1
            self._emit("blink", ev)
        seg = pct[p0:p0 + len(keep)][keep]
        if not alone:  # the synkinesis event's own peak, blinks left out
            self._put(key, replace(syn, peak_pct_mvc=float(seg.max())) if len(seg) else syn)

    def _release(self, rep: _Rep) -> None:
        rep.refs -= 1
        if rep.refs <= 0 and rep.finished:
            rep.pct, rep.act, rep.filt = rep.pct[:0], rep.act[:0], rep.filt[:0]
            if rep.bufs and len(self._rep_bufs) < _REP_POOL:
                self._rep_bufs.append(rep.bufs)
            rep.bufs = ()

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
        ref = float(median(pre)) if len(pre) else m0
        thr = ref + self.h_off[c] * self.sd[c]
        # 3. Onset: where the envelope last left that level (by the release threshold, h_off
        #    SDs) before the half-way crossing.
        below = np.flatnonzero(e[:t_half] <= thr)
        first_above = lo + (int(below[-1]) + 1 if len(below) else 0)
        return max(rep_start, first_above - self.delay)

    def _emit(self, kind: str, ev: SynkinesisEvent) -> None:
        self.queue.put((kind, ev))
        if self.on_event is not None:
            self.on_event(kind, ev)

    def close(self, at: int | None = None) -> None:
        """End the stream: end open bursts and artefact periods at ``at`` (default: the next
        sample), send the pending ``ended`` notices and finish the reps that started
        (offline, after the last chunk)."""
        self._ahead = None  # (a chunk announced but not fed: the stream ended before it)
        end = self._next if at is None else at
        if end is None:
            return
        for c in sorted(self._bursts):
            self._burst_end(c, end, end)
        for c in sorted(self._closing):
            self._ended(c)
        for c in sorted(self._art_open):
            self._art_close(c, end)
        for r in self._pending:
            if r.start < end:
                r.stop = min(r.stop, end)
                self._finish(r)
        self._pending = []

    # ------------------------------------------------------------------ rep metrics
    def _crosstalk(self, filt: np.ndarray, on: np.ndarray, t: int, quiet: Sequence[int]
                   ) -> dict[int, float]:
        """Peak normalised cross-correlation of target ``t`` with each quiet column ``q`` of
        ``filt`` over the span in which the target is active (``on``), lags within
        ``crosstalk_lag_ms`` (either signal leading): ``{q: index}``, empty when the span is
        too short; a column that is all zero there has no index.

        Every lag's sum of products ``sum_i a[i + lag] * b[i]`` comes from one circular
        cross-correlation by FFT over a zero-padded length (no wrap-around within the lags):
        one forward transform of the target and one of all quiet columns, one inverse, instead
        of a dot product per lag and pair (offline cost: reps x quiet regions x 2k + 1 lags).
        The sums agree with the direct ones to rounding (about 1e-15 of the norm; the index is
        reported to 3 decimals), and unlike BLAS dot products they do not depend on how many
        threads the machine gives BLAS (tests/test_offline_kernels.py)."""
        if count_nonzero(on) < max(4 * self._xlag, int(0.1 * self.fs)) or not len(quiet):
            return {}
        r0, r1 = int(on.argmax()), len(on) - int(on[::-1].argmax())  # first, last active + 1
        m, k = r1 - r0, self._xlag
        a = filt[r0:r1, t]
        b = filt[r0:r1].take(quiet, axis=1)
        aa = float(np.square(a).sum())
        bb = np.square(b).sum(axis=0)
        nfft = _fast_len(m + k)
        fa = np.fft.rfft(a, nfft)
        fb = np.fft.rfft(b, nfft, axis=0)
        np.conjugate(fb, out=fb)
        fb *= fa[:, None]
        cc = np.fft.irfft(fb, nfft, axis=0)  # cc[lag] = sum_i a[i + lag] * b[i] (circular)
        lags = np.abs(np.concatenate([cc[:k + 1], cc[nfft - k:]], axis=0)) if k else np.abs(cc[:1])
        best = lags.max(axis=0)
        out: dict[int, float] = {}
        for j, q in enumerate(quiet):
            den = float(np.sqrt(aa * float(bb[j])))
            if den > 0:
                out[q] = float(best[j]) / den
        return out

    def _finish(self, r: _Rep) -> None:
        r.finished = True
        r.refs += 1  # the metrics below still read the buffers
        for c in [c for c, b in self._bursts.items() if b.rep is r]:
            self._burst_end(c, r.stop, r.stop)  # a burst running into the next rep
        for c in [c for c, cl in self._closing.items() if cl.burst.rep is r]:
            self._ended(c)
        m = max(0, r.stop - r.start)
        pct, act = r.pct[:m], r.act[:m]
        if m == 0:
            self._release(r)
            return
        p = np.maximum(pct, 0.0)
        sum_p = p.sum(axis=0)
        lo, hi = r.exercise.band_pct_mvc
        for s in r.sides:
            t = s["target"]
            coc: dict[str, float] = {}
            quiet_sum = 0.0
            on = act[:, t]
            for q in s["quiet"]:
                denom = sum_p[q] + sum_p[t]
                fw = float(np.minimum(p[:, q], p[:, t]).sum())
                coc[self.names[q]] = 200.0 * fw / denom if denom > 0 else 0.0
                quiet_sum += sum_p[q]
            xt = {self.names[q]: x for q, x in self._crosstalk(r.filt[:m], on, t,
                                                                s["quiet"]).items()}
            tot = sum_p[t] + quiet_sum
            iso = float(sum_p[t] / tot) if tot > 0 else 0.0
            col = pct[:, t]
            mean_act = float(col[on].mean()) if count_nonzero(on) else 0.0
            inband = int(count_nonzero((col >= lo) & (col <= hi)))  # (an int: JSON rounding)
            syn = any(self.names[q] in r.events for q in s["quiet"])
            self.reps.append(RepResult(
                r.index, r.exercise.name, s["side"], r.start, r.stop, self.names[t],
                float(p[:, t].max()), mean_act, inband / self.fs,
                r.exercise.band_pct_mvc, iso, coc, syn, xt, r.blinks.get(s["side"], 0)))
        self._release(r)
