"""The report's view of the signal: the chain's envelope as means over short bins (100 Hz) and
the samples on the rails, collected from one pass of the chain over the recording.

:class:`EnvelopeBins` is a pipeline consumer (``feed``/``close``): when the report runs
``analyze`` itself it is fed the chunks of the analysis' own pass (the envelopes are computed
once), otherwise the report feeds it from its own pass (:func:`.model.envelopes_pct`).  NumPy
only (no matplotlib): the history opens sessions with this package too.
"""

from __future__ import annotations

import numpy as np

from emgfeedback.recording import Recording
from emgfeedback.stream import Processed, rail_counts

__all__ = ["REPORT_BIN_S", "EnvelopeBins", "bins_for"]

#: The report's envelopes are means over bins of this many seconds.
REPORT_BIN_S = 0.01


class EnvelopeBins:
    """Means of the envelope over bins of ``round(bin_s * fs)`` samples aligned to the sample
    index, and the samples per channel on the digital rails, of one pass over a recording.

    Parameters
    ----------
    fs, n_samples, n_channels:
        The recording's rate, length and channel count (channels in the recording's order).
    rails_uv:
        The recording's digital rails (:attr:`emgfeedback.recording.Recording.rails_uv`).
    """

    def __init__(self, fs: float, n_samples: int, n_channels: int,
                 rails_uv: tuple[float, float] | None, bin_s: float = REPORT_BIN_S) -> None:
        self.k = max(1, int(round(bin_s * fs)))
        self.fs = fs / self.k
        self.rails_uv = rails_uv
        nbins = -(-n_samples // self.k)
        self.acc = np.zeros((nbins, n_channels))
        self.cnt = np.zeros(nbins)
        self.saturated = np.zeros(n_channels, dtype=np.int64)
        self.samples = 0

    def feed(self, p: Processed) -> None:
        self.add(p.start, p.envelope, p.raw)

    def close(self) -> None:
        pass

    def add(self, start: int, envelope: np.ndarray, raw: np.ndarray) -> None:
        """The chain's ``envelope`` and the ``raw`` samples ``(samples, channels)`` from
        ``start``."""
        n = envelope.shape[0]
        if n == 0:
            return
        self.samples += n
        self.saturated += np.asarray(rail_counts(raw, self.rails_uv), dtype=np.int64)
        k = self.k
        if start % k == 0 and n % k == 0:  # whole bins (the usual block): one reshaped sum
            et = envelope.T  # the chain's (channels, samples) layout: sums along rows
            sums = et.reshape(et.shape[0], n // k, k).sum(axis=2).T
            self.acc[start // k: (start + n) // k] += sums
            self.cnt[start // k: (start + n) // k] += k
            return
        idx = np.arange(start, start + n) // k
        starts = np.concatenate([[0], np.flatnonzero(np.diff(idx)) + 1])
        bins = idx[starts]
        self.acc[bins] += np.add.reduceat(envelope, starts, axis=0)
        self.cnt[bins] += np.diff(np.append(starts, n))

    def envelope(self) -> np.ndarray:
        """``(bins, channels)`` mean envelope per bin; NaN where no sample was seen (gaps)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            env = self.acc / self.cnt[:, None]
        env[self.cnt == 0] = np.nan
        return env


def bins_for(rec: Recording) -> EnvelopeBins:
    """Empty :class:`EnvelopeBins` for ``rec`` at the report's rate (:data:`REPORT_BIN_S`)."""
    return EnvelopeBins(rec.fs, rec.n_samples, len(rec.channels), rec.rails_uv, REPORT_BIN_S)
