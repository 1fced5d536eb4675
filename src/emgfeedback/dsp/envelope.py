"""Amplitude envelopes of band-passed sEMG, causal and chunk-invariant.

Two kinds, chosen in :class:`~emgfeedback.config.DspConfig`:

``lowpass``  full-wave rectification then a Butterworth low-pass (the *linear envelope*;
             default 8 Hz, 2nd order: about 28 ms delay at DC, as NeuroKit2's).
``rms``      moving root-mean-square over the last N ms (delay about N/2 ms).

Each stage reports its group delay (:attr:`delay_s`), which tests compare with a measured
impulse-response centroid.
"""

from __future__ import annotations

import numpy as np

from emgfeedback.dsp.filters import SosStage, design_lowpass, sos_group_delay_s
from emgfeedback.errors import ConfigError

__all__ = ["LinearEnvelope", "MovingRms", "make_envelope"]


class LinearEnvelope:
    """|x| followed by a causal low-pass; state carried across chunks."""

    def __init__(self, fs: float, n_channels: int, cutoff: float = 8.0, order: int = 2) -> None:
        self.fs = fs
        self.sos = design_lowpass(fs, cutoff, order)
        # Zero initial state: the envelope of a band-passed signal starts at zero, and a steady
        # start from |x[0]| would invent a level that was never measured.
        self._lp = SosStage(self.sos, n_channels, steady_start=False)
        self.delay_s = sos_group_delay_s(self.sos, fs, 0.0)

    def reset(self) -> None:
        self._lp.reset()

    def process(self, x: np.ndarray) -> np.ndarray:
        return self._lp.process(np.abs(x))

    def process_t(self, xt: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(channels, samples)`` in, new ``(channels, samples)`` array out (or ``out``, a
        C-contiguous array of that shape, filled and returned)."""
        return self._lp.process_t(np.abs(xt, out=out))


class MovingRms:
    """sqrt(mean(x²)) over the last ``window_ms``; the first samples average what exists so far."""

    def __init__(self, fs: float, n_channels: int, window_ms: float = 50.0) -> None:
        self.fs = fs
        self.n = max(1, int(round(window_ms * fs / 1000.0)))
        self.n_channels = n_channels
        self.delay_s = (self.n - 1) / 2.0 / fs
        self.reset()

    def reset(self) -> None:
        self._tail = np.zeros((0, self.n_channels))

    def process(self, x: np.ndarray) -> np.ndarray:
        sq = np.concatenate([self._tail, np.asarray(x, dtype=np.float64) ** 2])
        k = len(self._tail)
        c = np.concatenate([np.zeros((1, self.n_channels)), np.cumsum(sq, axis=0)])
        idx = np.arange(k, len(sq))
        lo = np.maximum(idx + 1 - self.n, 0)
        # The tail holds everything since the stream began until the window is full, so
        # early outputs average over the samples that exist.
        count = (idx + 1 - lo)[:, None]
        ms = (c[idx + 1] - c[lo]) / count
        self._tail = sq[-(self.n - 1) :] if self.n > 1 else sq[:0]
        rms: np.ndarray = np.sqrt(np.maximum(ms, 0.0))
        return rms

    def process_t(self, xt: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(channels, samples)`` in, new ``(channels, samples)`` array out (``out``, where
        given, is not used: the result is a new array)."""
        return np.ascontiguousarray(self.process(xt.T).T)


def make_envelope(kind: str, fs: float, n_channels: int, cutoff: float, order: int,
                  window_ms: float) -> LinearEnvelope | MovingRms:
    if kind == "lowpass":
        return LinearEnvelope(fs, n_channels, cutoff, order)
    if kind == "rms":
        return MovingRms(fs, n_channels, window_ms)
    raise ConfigError(f"envelope kind {kind!r} is unknown; use 'lowpass' or 'rms'")
