"""Camera time onto the EMG sample axis.

Time in emgfeedback is the EMG sample index.  A camera has its own clock: frame timestamps from the
driver (or the host's monotonic clock at capture), which run at a slightly different rate from the
board's sample clock and start at an unrelated origin.  :class:`FrameClock` learns the affine map

    sample = offset + rate * t_camera

from pairs ``(t_host, sample)`` reported by the EMG session whenever a chunk arrives (the host time
at which the chunk's last sample was received) and maps each frame's host timestamp through it.
The fit is an ordinary least-squares line over a sliding window of pairs, so a drift of the
board's crystal against the host clock (tens of ppm) is followed, and :attr:`drift_ppm` says how
large it is.  For a video *file* the frame times are exact (``index / fps``) and the map is given
(:meth:`FrameClock.fixed`).

Thread-safety: ``observe`` is called by the EMG session thread, ``sample_of`` by the video thread;
both take a lock.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from emgfeedback.errors import ConfigError

__all__ = ["FrameClock"]


class FrameClock:
    """Map camera/host timestamps (seconds) to EMG sample indices.

    Parameters
    ----------
    fs:
        Nominal EMG sample rate (Hz).
    window:
        Number of most recent ``(t, sample)`` pairs used for the fit.
    """

    def __init__(self, fs: float, window: int = 512) -> None:
        if not np.isfinite(fs) or fs <= 0:
            raise ConfigError(f"EMG sample rate must be a positive number, got {fs!r}")
        if window < 2:
            raise ConfigError(f"clock window must be at least 2 pairs, got {window}")
        self.fs = float(fs)
        self._pairs: deque[tuple[float, float]] = deque(maxlen=window)
        self._lock = threading.Lock()
        self._fit: tuple[float, float] | None = None  # (offset, rate)
        self._fixed = False

    @classmethod
    def fixed(cls, fs: float, offset_samples: float = 0.0) -> FrameClock:
        """A clock for a file: ``sample = offset + fs * t`` exactly (no drift to learn)."""
        c = cls(fs)
        c._fit = (float(offset_samples), float(fs))
        c._fixed = True
        return c

    def observe(self, t: float, sample: int) -> None:
        """The EMG stream had delivered up to ``sample`` (exclusive) at host time ``t``."""
        if self._fixed:
            return
        if not (np.isfinite(t) and sample >= 0):
            return
        with self._lock:
            self._pairs.append((float(t), float(sample)))
            if len(self._pairs) >= 2:
                a = np.asarray(self._pairs)
                tt = a[:, 0] - a[0, 0]
                if np.ptp(tt) > 0:
                    rate, icpt = np.polyfit(tt, a[:, 1], 1)
                    self._fit = (float(icpt - rate * a[0, 0]), float(rate))

    @property
    def ready(self) -> bool:
        return self._fit is not None

    @property
    def rate(self) -> float:
        """Samples per second of host time (``fs`` when the clocks agree)."""
        with self._lock:
            return self._fit[1] if self._fit is not None else self.fs

    @property
    def drift_ppm(self) -> float:
        """How much faster the EMG clock runs than the host clock, in parts per million."""
        return (self.rate / self.fs - 1.0) * 1e6

    def sample_of(self, t: float) -> int | None:
        """The EMG sample index at host/camera time ``t``, ``None`` before the first fit."""
        with self._lock:
            if self._fit is None:
                return None
            offset, rate = self._fit
        return int(round(offset + rate * t))
