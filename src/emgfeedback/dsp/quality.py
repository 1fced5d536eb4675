"""Per-channel signal quality, measured continuously and causally.

Running measures (exponential averages with a time constant of ``QualityConfig.window_s``, one
``lfilter`` call for all of them, state carried across chunks):

``rms_uv``        RMS of the fully filtered signal (band-pass + notch): the baseline at rest.
``mains_ratio``   share of the band-passed power that the notch removes (mains interference).
``mains_uv``      RMS of that removed part.
``diff_rms_uv``   RMS of sample-to-sample differences of the raw signal: near zero on a flat line
                  (electrode off, amplifier railed, cable cut).
``clip_fraction`` share of raw samples at or beyond the acquisition range (clipping).

:func:`assess` turns a snapshot into a traffic light with reasons for the electrode check.
"""

from __future__ import annotations


import functools
import operator
import threading
from typing import Any

import numpy as np

from emgfeedback.config import QualityConfig
from emgfeedback.dsp.filters import SosStage
from emgfeedback.numeric import count_nonzero
from emgfeedback.stream import Quality

__all__ = ["QualityMeter", "assess"]

_FIRST = np.zeros(1, dtype=np.intp)  # one reduceat segment from the first sample

def _window_sums_reduceat(u: np.ndarray) -> np.ndarray:
    """``(rows, k)``: the sums of ``u`` ``(w, rows, k)`` (sample of the window, row, window) over
    each window, by ``np.add.reduceat`` on each row's samples in order (what the window by window
    path computes)."""
    w, rows, k = u.shape
    flat = np.ascontiguousarray(u.transpose(1, 2, 0)).reshape(rows, k * w)
    return np.add.reduceat(flat, np.arange(0, k * w, w, dtype=np.intp), axis=1)


def _window_sums_pairwise(u: np.ndarray) -> np.ndarray:
    """The same sums as :func:`_window_sums_reduceat`, every window at once: ``reduceat``
    starts each window's sum from its first sample and adds NumPy's pairwise sum of the other
    ``n = w - 1`` (for ``8 <= n <= 128``: eight running sums over the samples in steps of
    eight, combined as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, then the last
    ``n % 8`` samples one by one); here each step is one operation on the samples at one
    position of every window and row (contiguous: ``u`` has the window's samples outermost),
    where ``reduceat`` makes one inner-loop call per window and row (0.1-0.3 µs each: 3-10 ms
    for 1024 deferred windows of 32 rows).  Used only where
    :func:`_pairwise_matches` found it equal to ``reduceat`` on this installation."""
    w = u.shape[0]
    a = u[1:]
    n = w - 1
    r = a[0:8].copy()
    full = n - n % 8
    for i in range(8, full, 8):
        r += a[i:i + 8]
    p = r[0::2] + r[1::2]
    q = p[0::2] + p[1::2]
    res = q[0] + q[1]
    for i in range(full, n):
        res += a[i]
    out: np.ndarray = u[0] + res
    return out


@functools.lru_cache(maxsize=16)
def _pairwise_matches(w: int) -> bool:
    """Whether :func:`_window_sums_pairwise` equals ``reduceat`` for ``w``-sample windows
    here (it follows NumPy's summation order, which is not part of NumPy's API)."""
    if not 9 <= w <= 129:
        return False
    rng = np.random.default_rng(w)
    for scale in (1e-3, 1.0, 1e6):
        u = (rng.standard_normal((w, 6, 5)) * scale) ** 2
        u[:, 1] = rng.integers(0, 3, (w, 5)) * 1e-300  # tiny and repeated values
        if not np.array_equal(_window_sums_pairwise(u), _window_sums_reduceat(u)):
            return False
    return True


#: Live windows the meter defers at most before it computes them (see QualityMeter): about
#: 10 s of 10 ms chunks, so that when no snapshot is read (no view, a benchmark) one chunk in
#: 1024 pays for the batch (a few ms, about 4 µs a window; 20 µs a window one by one), far
#: fewer than the 1 % of chunks a 99th percentile leaves out.  The batch buffer is 4 MB for 8
#: channels at 2 kHz.
DEFER_MAX = 1024


class QualityMeter:
    """Streaming quality measures; the chain calls :meth:`process_t` with each chunk.

    Each measure is averaged over 10 ms windows aligned to absolute sample indices, and the window
    means are smoothed by an exponential average with time constant ``window_s``.  Aligning the
    windows to the sample index (not to chunk boundaries) keeps the result independent of
    chunking; the snapshot describes the stream up to the end of the last complete window.

    Deferred live windows (issue 13, the live budget): a 10 ms chunk that is exactly one window
    of a stream going on (the live case) is only copied into a batch buffer; its snapshot is a
    placeholder whose measures are computed, with every window deferred before it, when one of
    its arrays is first read (a view reads one snapshot a frame, from its own thread), when the
    meter takes another path, or after :data:`DEFER_MAX` windows.  The batch runs the same
    operations on the same values as the window by window path (squares, the sums of
    ``reduceat`` over each window, the division, the average's recursion over the windows in
    order), so the measures are the same bit for bit.  A lock orders the batch with the
    chain's thread.
    """

    N_MEASURES = 4

    def __init__(
        self,
        fs: float,
        n_channels: int,
        cfg: QualityConfig | None = None,
        adc_range_uv: tuple[float, float] | None = None,
    ) -> None:
        self.cfg = cfg or QualityConfig()
        self.n_channels = n_channels
        self.window = max(1, int(round(0.01 * fs)))
        self._w_float = float(self.window)
        alpha = 1.0 - np.exp(-self.window / (self.cfg.window_s * fs))
        # y[k] = alpha * u[k] + (1 - alpha) * y[k-1] over window means, as one SOS section.
        self._ema = SosStage(np.array([[alpha, 0.0, 0.0, 1.0, alpha - 1.0, 0.0]]),
                             self.N_MEASURES * n_channels, steady_start=False)
        self.adc_range_uv = adc_range_uv
        self._lock = threading.Lock()
        self._defer = 0  # windows deferred (their placeholders share _cell)
        self._cell: list[np.ndarray] = []  # gets the deferred windows' means, (windows, 4c)
        # (window, 3 · channels, DEFER_MAX): band-passed, filtered, raw of each deferred
        # window, its samples outermost (see _window_sums_pairwise); and per window its views
        # (samples, 2 · channels) and (samples, channels)
        self._batch: np.ndarray | None = None
        self._batch_views: list[tuple[np.ndarray, np.ndarray]] = []
        self._batch_prev = np.zeros(n_channels)  # the raw sample before the batch
        self._window_sums = (_window_sums_pairwise if _pairwise_matches(self.window)
                             else _window_sums_reduceat)
        self.reset()

    def __getstate__(self) -> dict[str, Any]:  # (a lock is not pickled; nothing deferred is)
        self._settle()
        d = dict(self.__dict__)
        d["_lock"], d["_batch"], d["_batch_views"] = None, None, []
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._lock = threading.Lock()

    def reset(self) -> None:
        self._settle()  # (not only if _defer: a batch another thread runs has reset it)
        self._ema.reset()
        self._have_last = False  # _prev[:, _prev_n] holds the last raw sample of the stream
        self._prev_n = 0
        self._prev = np.zeros((self.n_channels, 1))  # (channels, 1 + samples): see _measures
        self._u = np.zeros((self.N_MEASURES * self.n_channels, 0))
        self._rails_zero = False  # the at-rail rows of _u are all 0.0
        self._last: np.ndarray = np.zeros(self.N_MEASURES * self.n_channels)
        self._acc = np.zeros(self.N_MEASURES * self.n_channels)
        self._acc_n = 0
        self._acc_id = -1
        self._at = 0
        self._snap: Quality | None = None  # the snapshot of _last, until it changes

    def restart_diff(self) -> None:
        """After a gap: do not take a difference across it."""
        self._settle()
        self._have_last = False

    def _settle(self) -> None:
        """Compute the deferred windows (any thread), if any; returns once no other thread is
        computing them (the meter's state is then this thread's)."""
        with self._lock:
            if self._defer:
                self._run_batch()

    def _run_batch(self) -> None:
        """The deferred windows' measures, as the window by window path computes them (the
        caller holds the lock): the squares of the band-passed and filtered signals and of the
        raw differences (the first from the sample before the batch), nothing at the rails,
        each window's sum as ``reduceat`` computes it, the division by the window, the
        average's recursion over the windows in order; the placeholders' shared cell gets the
        windows' means."""
        k, c, cell = self._defer, self.n_channels, self._cell
        self._defer, self._cell = 0, []
        b = self._batch
        assert b is not None
        w = b.shape[0]
        b = b[:, :, :k]  # (sample of the window, row, window)
        u = np.empty((w, self.N_MEASURES * c, k))
        np.square(b[:, :2 * c], out=u[:, :2 * c])
        d, raw = u[:, 2 * c:3 * c], b[:, 2 * c:]
        np.subtract(raw[1:], raw[:-1], out=d[1:])
        np.subtract(raw[0, :, 1:], raw[-1, :, :-1], out=d[0, :, 1:])
        np.subtract(raw[0, :, 0], self._batch_prev, out=d[0, :, 0])
        np.square(d, out=d)
        u[:, 3 * c:] = 0.0
        m = self._window_sums(u)
        np.divide(m, self._w_float, out=m)
        self._ema.process_t(m)
        means = np.ascontiguousarray(m.T)
        cell.append(means)
        self._last = means[-1]
        # the general path's last raw sample (it goes on from there)
        self._prev[:, self._prev_n] = raw[-1, :, -1]

    def _measures(self, raw: np.ndarray, band: np.ndarray, filtered: np.ndarray,
                  both: np.ndarray | None = None, inside: bool = False) -> np.ndarray:
        """The per-sample measures ``(4 · channels, samples)``: band power, filtered power,
        squared raw difference, at the rails (0/1).  ``both``: ``band`` and ``filtered`` as the
        two halves of one array, if the caller has them so (one call squares both), or as the
        first two thirds of a ``(3 · channels, samples)`` array whose last third the meter
        overwrites with the raw differences (one call squares all three).
        ``inside``: the caller knows every raw sample is strictly inside the acquisition range
        (or there is none).  The result is a buffer of the meter's, overwritten by the next
        call (live cost: no array is made per chunk)."""
        c, n = raw.shape
        u = self._u
        if u.shape[1] != n:
            u = self._u = np.empty((self.N_MEASURES * c, n))
            self._rails_zero = False
        three = both is not None and both.shape[0] == 3 * c
        if both is not None and not three:
            np.square(both, out=u[:2 * c])
        elif both is None:
            np.square(band, out=u[:c])
            np.square(filtered, out=u[c:2 * c])
        # differences in one call: the previous chunk's last sample before this chunk's
        prev = self._prev
        if prev.shape[1] < n + 1:
            grown = np.empty((c, n + 1))
            grown[:, 0] = prev[:, self._prev_n] if self._have_last else 0.0
            prev = self._prev = grown
        elif self._have_last:
            prev[:, 0] = prev[:, self._prev_n]
        prev[:, 1:n + 1] = raw
        if not self._have_last:
            prev[:, 0] = prev[:, 1]  # the stream's first sample: no difference (0)
        self._have_last = True
        self._prev_n = n
        if three and both is not None:
            np.subtract(prev[:, 1:n + 1], prev[:, :n], out=both[2 * c:])
            np.square(both, out=u[:3 * c])  # band, filtered and differences in one call
        else:
            d = u[2 * c:3 * c]
            np.subtract(prev[:, 1:n + 1], prev[:, :n], out=d)
            np.square(d, out=d)
        if inside or self.adc_range_uv is None or (
                self.adc_range_uv[0] < np.minimum.reduce(raw, axis=None)
                and np.maximum.reduce(raw, axis=None) < self.adc_range_uv[1]):
            if not self._rails_zero:  # (no sample at a rail: the rows stay 0.0)
                u[3 * c:] = 0.0
                self._rails_zero = True
        else:
            # at or beyond a rail: 1.0, else 0.0 (lo < hi: a sample is at one rail at most)
            lo, hi = self.adc_range_uv
            r = u[3 * c:]
            np.less_equal(raw, lo, out=r, casting="unsafe")
            if lo < hi:
                r += np.greater_equal(raw, hi)
            else:  # pragma: no cover - a degenerate range
                r[...] = np.logical_or(r, np.greater_equal(raw, hi))
            self._rails_zero = False
        return u

    def process_t(
        self, start: int, raw: np.ndarray, band: np.ndarray, filtered: np.ndarray,
        both: np.ndarray | None = None, inside: bool = False,
    ) -> Quality:
        """Update from ``(channels, samples)`` arrays of the raw, band-passed and filtered signal
        (``both``, ``inside``: see :meth:`_measures`)."""
        c, n = raw.shape
        if not n:
            return self.snapshot()
        w = self.window
        if (n == w and start % w == 0 and self._have_last and not self._acc_n
                and (inside or self.adc_range_uv is None)):
            # The live chunk (10 ms, a window, no sample at a rail, the stream going on):
            # deferred (see the class docstring).
            with self._lock:
                k = self._defer
                if not k:
                    if self._batch is None:
                        self._batch = bb = np.empty((w, 3 * c, DEFER_MAX))
                        self._batch_views = [(bb[:, :2 * c, i], bb[:, 2 * c:, i])
                                             for i in range(DEFER_MAX)]
                    self._batch_prev[...] = self._prev[:, self._prev_n]
                two, rw = self._batch_views[k]
                if both is not None:
                    two[...] = both[:2 * c].T
                else:
                    two[:, :c] = band.T
                    two[:, c:] = filtered.T
                rw[...] = raw.T
                self._at = at = start + n
                snap = self._snap = _Snapshot(at, None, c, self, self._cell, k)
                self._defer = k + 1
                if k + 1 == DEFER_MAX:
                    self._run_batch()
            return snap
        # Wait for the deferred windows, also for a batch a reader's thread is running (it
        # set _defer to 0 first: a test of _defer alone would go on beside it)
        self._settle()
        u = self._measures(raw, band, filtered, both, inside)
        if n == w and not self._acc_n and start % w == 0:
            # The live case: the chunk is exactly one window (10 ms).  The same sums as the
            # general path below (one reduceat segment), with a tenth of the calls.
            m = np.add.reduceat(u, _FIRST, axis=1)  # reduce() would round differently
            # (by the window as a float: the same division as by the int, which NumPy
            # converts to that float first, without the conversion per call: 1 µs of 1.8)
            np.divide(m, self._w_float, out=m)
            self._ema.process_t(m)
            self._last = m[:, 0]
            self._at = at = start + n
            snap = self._snap = _Snapshot(at, self._last, c)
            return snap
        first_id = start // w
        last_id = (start + n - 1) // w
        # Segment starts inside this chunk: the chunk start and every window boundary after it.
        bounds = np.arange((first_id + 1) * w, (last_id + 1) * w, w) - start
        cuts = np.concatenate([[0], bounds]).astype(np.intp)
        sums = np.add.reduceat(u, cuts, axis=1)
        counts = np.diff(np.concatenate([cuts, [n]]))
        ids = first_id + np.arange(len(cuts))
        done_sums: list[np.ndarray] = []
        done_counts: list[int] = []
        if self._acc_n and self._acc_id != ids[0]:
            done_sums.append(self._acc)  # a window cut short by a gap
            done_counts.append(self._acc_n)
            self._acc_n = 0
        if self._acc_n:
            sums[:, 0] += self._acc
            counts[0] += self._acc_n
        complete = (start + n) % w == 0
        keep = len(cuts) if complete else len(cuts) - 1
        means = [s / k for s, k in zip(done_sums, done_counts)]
        if keep:
            means.append(sums[:, :keep] / counts[:keep])
        if complete:
            self._acc_n = 0
        else:
            self._acc, self._acc_n, self._acc_id = sums[:, -1].copy(), int(counts[-1]), int(ids[-1])
        if means:
            m = np.ascontiguousarray(np.column_stack(means))
            self._ema.process_t(m)
            self._last = m[:, -1].copy()
            self._at = (int(ids[keep - 1]) + 1) * w if keep else self._at
            self._snap = None
        return self.snapshot()

    def process(self, start: int, raw: np.ndarray, band: np.ndarray, filtered: np.ndarray) -> Quality:
        """As :meth:`process_t` with ``(samples, channels)`` arrays."""
        def t(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(np.asarray(a, dtype=np.float64).T)

        return self.process_t(start, t(raw), t(band), t(filtered))

    def snapshot(self) -> Quality:
        """The measures at the end of the last complete window (the same object until the next
        window completes; its arrays are computed when first read, see :class:`_Snapshot`)."""
        if self._snap is None:
            self._snap = _Snapshot(self._at, self._last, self.n_channels)
        return self._snap


_ARRAYS = frozenset(("rms_uv", "mains_ratio", "mains_uv", "diff_rms_uv", "clip_fraction"))


class _Snapshot(Quality):
    """A :class:`~emgfeedback.stream.Quality` whose arrays are computed from the meter's window
    means (``4 · channels``: band power, filtered power, squared difference, clipped share)
    when one of them is first read: most 10 ms chunks' snapshots are never looked at (views
    read one per frame), and the live chain does not pay for them.  The means are never
    modified in place by the meter (each window replaces them).  ``means`` ``None``: a deferred
    window's (``meter`` computes them when first needed, see :class:`QualityMeter`)."""

    def __init__(self, at: int, means: np.ndarray | None, n_channels: int,
                 meter: QualityMeter | None = None, cell: list[np.ndarray] | None = None,
                 i: int = 0) -> None:
        # (one dict update: object.__setattr__ per field costs 3 times as much, live cost)
        self.__dict__.update(at=at, _means=means, _c=n_channels, _meter=meter, _cell=cell,
                             _i=i)

    def _resolved(self) -> np.ndarray:
        d = self.__dict__
        # (another thread may be resolving it too: read in the order opposite to the writes)
        meter = d["_meter"]
        cell = d["_cell"] if meter is not None else None
        if meter is not None and cell is not None:
            if not cell:
                meter._settle()
            d["_means"] = cell[0][d["_i"]]
            d["_cell"] = None
            d["_meter"] = None
        means: np.ndarray = d["_means"]
        return means

    def __getstate__(self) -> dict[str, Any]:  # (the meter is not part of the snapshot)
        self._resolved()
        return dict(self.__dict__)

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)

    def __getattr__(self, name: str) -> np.ndarray:
        if name not in _ARRAYS:
            raise AttributeError(name)
        c, last = self.__dict__["_c"], self._resolved()
        p_band, p_filt = last[:c], last[c:2 * c]
        removed = np.maximum(p_band - p_filt, 0.0)
        pos = p_band > 0
        values: dict[str, np.ndarray] = {"rms_uv": np.sqrt(p_filt),
            "mains_ratio": np.where(pos, removed / np.where(pos, p_band, 1.0), 0.0),
            "mains_uv": np.sqrt(removed), "diff_rms_uv": np.sqrt(last[2 * c:3 * c]),
            "clip_fraction": last[3 * c:].copy()}
        for k, v in values.items():
            object.__setattr__(self, k, v)
        return values[name]


def assess(q: Quality, cfg: QualityConfig | None = None, at_rest: bool = True) -> list[tuple[str, str]]:
    """Traffic light per channel: ``[("green"|"amber"|"red", reason), ...]``.

    ``at_rest`` means the patient is asked to relax, so a high RMS is a noisy baseline rather than
    a contraction.  Reasons are short phrases for the electrode check screen.
    """
    cfg = cfg or QualityConfig()
    out: list[tuple[str, str]] = []
    for i in range(len(q.rms_uv)):
        if q.diff_rms_uv[i] < cfg.flat_rms_uv:
            out.append(("red", "flat line: electrode off or cable cut"))
        elif q.clip_fraction[i] > cfg.max_clip_fraction:
            out.append(("red", "clipping: check electrode contact and gain"))
        elif q.mains_uv[i] > cfg.off_mains_uv:
            out.append(("red", f"mains {q.mains_uv[i]:.0f} µV: electrode off or loose"))
        elif q.mains_ratio[i] > cfg.max_mains_ratio and q.mains_uv[i] > cfg.min_mains_uv:
            out.append(("amber", f"mains too high ({100 * q.mains_ratio[i]:.0f} % of power): "
                                  "clean skin, check reference electrode"))
        elif at_rest and q.rms_uv[i] > cfg.max_rest_rms_uv:
            out.append(("amber", f"noisy baseline ({q.rms_uv[i]:.1f} µV RMS): relax, check contact"))
        else:
            out.append(("green", f"ok ({q.rms_uv[i]:.1f} µV RMS)"))
    return out


# ============================================================================ artefact flags
#: Reason bits of :class:`ArtefactFlags` (a sample may carry several).
CLIP, FLAT, MOTION, AMPLITUDE = 1, 2, 4, 8
REASONS = {CLIP: "clipping", FLAT: "flat line (electrode off)",
           MOTION: "motion or electrode pop", AMPLITUDE: "implausible amplitude"}


def reason_text(bits: int) -> str:
    """``"clipping, motion or electrode pop"`` for a set of reason bits."""
    return ", ".join(t for b, t in REASONS.items() if bits & b) or "artefact"


class ArtefactFlags:
    """Per-sample, per-channel flags of samples that are not muscle activity (causal).

    A sample is flagged, with a reason bit, when

    * ``CLIP``: the raw value sits at or beyond the acquisition range (``adc_range_uv``);
    * ``FLAT``: the raw signal has not moved by more than ``flat_rms_uv`` from one sample to the
      next for ``flat_ms``: not even the electrode and amplifier noise every attached electrode
      shows (electrode off, amplifier railed, cable cut);
    * ``MOTION``: the raw signal's 1-15 Hz band (2nd-order Butterworth band-pass) exceeds
      ``artefact_lf_uv``: cable tugs and electrode pops put hundreds of µV to mV there, facial
      EMG puts a few µV to tens of µV (its power is above 20 Hz, van Boxtel 2001), and removed
      mains is attenuated more than tenfold;
    * ``AMPLITUDE``: the raw signal without its DC (1 Hz high-pass) exceeds ``artefact_uv``,
      far above any facial contraction (a few hundred µV at most, docs/domain.md): a pop, or a
      floating input picking up mV of mains (which the notches would hide from the filtered
      signal, leaving its broadband noise to look like muscle).

    Everything is per sample with state carried across chunks (the filters, the last sample that
    moved), so flags do not depend on chunking; :meth:`restart` after a gap.
    ``process`` returns ``None`` when no sample of the chunk is flagged: the common case is
    decided from a few whole-chunk extremes before any per-sample work (live cost).
    """

    def __init__(self, fs: float, n_channels: int, cfg: QualityConfig | None = None,
                 adc_range_uv: tuple[float, float] | None = None) -> None:
        self.cfg = cfg or QualityConfig()
        self.n_channels = n_channels
        self.adc_range_uv = adc_range_uv
        from emgfeedback.dsp.filters import design_highpass, design_lowpass

        # raw -> 1 Hz high-pass (no DC: "wide") -> 15 Hz low-pass ("lf": motion band)
        self._wide = SosStage(design_highpass(fs, 1.0, 1), n_channels)
        self._lf = SosStage(design_lowpass(fs, 15.0, 2), n_channels, steady_start=False)
        self._need = max(1, int(round(self.cfg.flat_ms * fs / 1000.0)))
        self._flat_uv = float(self.cfg.flat_rms_uv)  # (a float: see process)
        self._rows = np.arange(self._need, dtype=np.int64)[:, None]  # row numbers of a chunk
        # per-row thresholds of the (wide; lf) buffer of process()
        self._thr = np.concatenate([np.full(n_channels, self.cfg.artefact_uv),
                                    np.full(n_channels, self.cfg.artefact_lf_uv)])[:, None]
        self._bufs: dict[int, tuple[Any, ...]] = {}
        self.restart()

    def _buffers(self, n: int) -> tuple[Any, ...]:
        """Work buffers and full-shape operands for ``n``-sample blocks (the last few sizes):
        ``(filtered (2c, n), |filtered|, thresholds, hits, low rail, high rail, raw-shaped
        booleans, the filtered buffer's two halves)``; the rails are ``None`` without an
        acquisition range.  Nothing of them leaves :meth:`process` (its result is a new
        array)."""
        b = self._bufs.get(n)
        if b is None:
            if len(self._bufs) > 8:
                self._bufs.clear()
            c = self.n_channels
            shape = (2 * c, n)
            rails = self.adc_range_uv
            # full-shape operands for a short block (broadcasting costs more than the
            # operation there); a long one broadcasts (an extra full-size operand would cost it
            # memory traffic instead): the same values, elementwise
            small = n <= 64
            lo = hi = None
            if rails is not None:
                lo = np.full((n, c) if small else (1, 1), float(rails[0]))
                hi = np.full((n, c) if small else (1, 1), float(rails[1]))
            thr = np.ascontiguousarray(np.broadcast_to(self._thr, shape)) if small else self._thr
            buf = np.empty(shape)
            b = self._bufs[n] = (buf, np.empty(shape), thr, np.empty(shape, dtype=bool), lo, hi,
                                 np.empty((n, c), dtype=bool), buf[:c], buf[c:])
        return b

    def restart(self) -> None:
        """A new stretch of samples (stream start, after a gap)."""
        self._wide.reset()
        self._lf.reset()
        self._last: list[float] | None = None  # last raw sample per channel
        # absolute index of each channel's last sample that moved (or the stretch's first)
        self._moved = np.zeros(self.n_channels, dtype=np.int64)
        self._moved_min = 0  # its smallest value
        self._moved_at: int | None = None  # not None: every value of _moved is this one

    def process(self, raw: np.ndarray, filtered: np.ndarray, envelope: np.ndarray,
                start: int = 0, env_min: np.ndarray | None = None,
                env_max: np.ndarray | None = None, inside: bool = False) -> np.ndarray | None:
        """Reason bits ``(samples, channels)`` (uint8), or ``None`` when nothing is flagged.

        Arrays are ``(samples, channels)``; ``start`` is the absolute index of the first sample
        (consecutive calls continue the stream); ``env_min``, ``env_max`` the envelope's
        per-channel extremes over the chunk if the caller has them; ``inside``: the caller
        knows every raw sample is strictly inside ``adc_range_uv`` (no clipping to test)."""
        cfg = self.cfg
        n = len(raw)
        if n == 0:
            return None
        c = self.n_channels
        # Live cost (issue 13): boolean tests by np.count_nonzero (a reduction such as .any()
        # costs 3-5 times as much on a 10 ms block), one buffer for both filtered signals so
        # that one comparison with the per-row thresholds checks both, and operands of the
        # full shape kept per block size (broadcasting a row or a scalar costs more than the
        # operation on a block this small).
        buf, absbuf, thr, hitbuf, lo_a, hi_a, rawb, wt, lft = self._buffers(n)
        # raw -> 1 Hz high-pass ("wide") -> 15 Hz low-pass ("lf")
        wt[...] = raw.T
        self._wide.process_t(wt)
        lft[...] = wt
        self._lf.process_t(lft)
        np.abs(buf, out=absbuf)
        hit = np.greater(absbuf, thr, out=hitbuf)  # |x| > threshold: x > thr or x < -thr
        hit_lf = hit_amp = False
        if count_nonzero(hit):
            hit_amp, hit_lf = bool(count_nonzero(hit[:c])), bool(count_nonzero(hit[c:]))
        hit_clip = False
        if lo_a is not None and hi_a is not None and not inside:
            hit_clip = bool(count_nonzero(np.less_equal(raw, lo_a, out=rawb))
                            or count_nonzero(np.greater_equal(raw, hi_a, out=rawb)))
        # Flat line: a sample is flat when the raw signal has not moved (|difference| above
        # flat_rms_uv) for `need` samples before it.
        flat = None
        last = self._last
        end = start + n - 1
        if last is not None and n <= self._need and self._moved_min >= start + n - self._need:
            # The common case, decided from the chunk's last difference alone: every channel
            # moved within `need` samples before this chunk (so no sample of a chunk this
            # short can be flat) and moves at its last sample (which is then each channel's
            # last sample that moved).  Quantised signals often repeat a sample somewhere in
            # a chunk, so a test of every difference would send most chunks the long way.
            # (In Python on the two rows: the same IEEE subtraction and comparison as NumPy's,
            # without a call per operation; ``flat < |p - q|`` is ``|p - q| > flat``, a NaN
            # fails both, and the maps make no Python frame per channel.)
            if n > 1:
                b_l, a_l = raw[-2:].tolist()
            else:
                a_l, b_l = raw[-1].tolist(), last
            if all(map(self._flat_uv.__lt__, map(abs, map(operator.sub, a_l, b_l)))):
                self._moved_at = end  # (every channel's: set when next read, see _sync)
                self._moved_min = end
            else:  # still no flat sample: only each channel's last sample that moved
                # (in Python: a channel that moved at its last sample moved at `end`; the
                # others are walked back from the chunk's end to their last move, a sample
                # or two in a quantised signal's repeats: the same subtraction, magnitude and
                # comparison as the general path's arrays, without its ten NumPy calls, live
                # cost: 7 % of the live chunks came this way)
                flat_uv = self._flat_uv
                at = self._moved_at
                last_mv: list[int] = self._moved.tolist() if at is None else [at] * c
                self._moved_at = None
                for ch, (p, q) in enumerate(zip(a_l, b_l)):
                    if flat_uv < abs(p - q):
                        if end > last_mv[ch]:
                            last_mv[ch] = end
                        continue
                    col = raw[:, ch].tolist()
                    for i in range(n - 1, -1, -1):
                        if flat_uv < abs(col[i] - (col[i - 1] if i else last[ch])):
                            if start + i > last_mv[ch]:  # (earlier samples: smaller)
                                last_mv[ch] = start + i
                            break
                self._moved[:] = last_mv
                self._moved_min = min(last_mv)
            self._last = a_l
            if not (hit_lf or hit_amp or hit_clip):
                return None
            return self._bits(raw, hit, hit_lf, hit_amp, hit_clip, None)
        self._sync()
        d = np.empty(raw.shape)  # (samples, channels)
        np.subtract(raw[1:], raw[:-1], out=d[1:])
        fresh = last is None
        if last is None:
            self._moved[:] = start
            d[0] = 0.0
        else:
            np.subtract(raw[0], last, out=d[0])
        np.abs(d, out=d)
        moved_sc = np.greater(d, cfg.flat_rms_uv)
        if fresh:
            moved_sc[0] = False
        self._last = raw[-1].tolist()
        if not fresh and count_nonzero(moved_sc) == moved_sc.size:
            # every channel moved at every sample, so none is flat
            self._moved[:] = end
        elif n >= self._need and self._no_flat_run(moved_sc, start, end):
            pass  # a long block (offline) that moved often enough: no flat sample
        else:
            moved = moved_sc.T  # (channels, samples)
            anym = moved.any(axis=1)
            first = np.where(anym, moved.argmax(axis=1), n)
            # a flat run in this chunk either reaches in from before it (the common check) or,
            # in a long chunk, lies inside it
            if n > self._need or ((start + first - 1 - self._moved) >= self._need).any():
                ar = np.arange(start, start + n)
                lm = np.maximum.accumulate(np.where(moved, ar[None, :], self._moved[:, None]),
                                           axis=1)
                f = (ar[None, :] - lm) >= self._need
                flat = f.T if f.any() else None
            if anym.any():
                lastm = end - moved[:, ::-1].argmax(axis=1)
                self._moved = np.where(anym, lastm, self._moved)
        self._moved_min = int(self._moved.min())
        return self._bits(raw, hit, hit_lf, hit_amp, hit_clip, flat)

    def _sync(self) -> None:
        """``_moved`` as its values (the live path records "every channel moved at ``end``"
        as one number, without writing the array: live cost)."""
        if self._moved_at is not None:
            self._moved[:] = self._moved_at
            self._moved_at = None

    def _no_flat_run(self, moved: np.ndarray, start: int, end: int) -> bool:
        """For a block of at least ``need`` samples (``moved``: ``(samples, channels)``, the
        samples at which each channel moved): ``True``, with each channel's last move
        recorded, when no sample is flat, decided without the per-sample index arithmetic of
        the general path (offline cost: it is what long blocks spent most of their flags' time
        on).  With ``h = need // 2``, if every aligned window of ``h`` samples holds a move, a
        sample in window ``j >= 1`` is at most ``2h - 1 < need`` samples after one; in window 0,
        after the channel's first move, at most ``h - 1``; before it, the run reaching in from
        the block before decides, as in the general path.  ``False``: use the general path."""
        h = self._need // 2
        n, c = moved.shape
        if h < 1:
            return False
        w = n // h
        # (channel-major: a reduction over the middle axis would run 8 values at a time)
        win = np.logical_or.reduce(np.ascontiguousarray(moved[:w * h].T).reshape(c, w, h),
                                   axis=2)
        if np.count_nonzero(win) != win.size:
            return False
        first = np.argmax(moved[:h], axis=0)  # each channel's first move (window 0 has one)
        if np.count_nonzero(start + first - 1 - self._moved >= self._need):
            return False
        # each channel's last move: in the last full window or after it
        tail = n - (w - 1) * h
        self._moved = end - np.argmax(moved[::-1][:tail], axis=0)
        return True

    def _bits(self, raw: np.ndarray, hit: np.ndarray, hit_lf: bool, hit_amp: bool,
              hit_clip: bool, flat: np.ndarray | None) -> np.ndarray | None:
        c = self.n_channels
        n = len(raw)
        if not (hit_lf or hit_amp or hit_clip or flat is not None):
            return None
        bits = np.zeros((n, self.n_channels), dtype=np.uint8)
        if flat is not None:
            bits[flat] |= FLAT
        if hit_lf:
            bits[hit[c:].T] |= MOTION
        if hit_amp:
            bits[hit[:c].T] |= AMPLITUDE
        if hit_clip and self.adc_range_uv is not None:
            lo, hi = self.adc_range_uv
            bits[(raw <= lo) | (raw >= hi)] |= CLIP
        return bits
