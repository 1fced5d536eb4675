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

from dataclasses import dataclass

import numpy as np
from scipy import signal

from emgfeedback.config import QualityConfig

__all__ = ["Quality", "QualityMeter", "assess"]


@dataclass(frozen=True)
class Quality:
    """Quality snapshot per channel (arrays of length ``channels``) at sample ``at``."""

    at: int
    rms_uv: np.ndarray
    mains_ratio: np.ndarray
    mains_uv: np.ndarray
    diff_rms_uv: np.ndarray
    clip_fraction: np.ndarray


class QualityMeter:
    """Streaming quality measures; ``process`` is called by the chain with each chunk."""

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
        alpha = 1.0 - np.exp(-1.0 / (self.cfg.window_s * fs))
        self._b = np.array([alpha])
        self._a = np.array([1.0, alpha - 1.0])
        self.adc_range_uv = adc_range_uv
        self.reset()

    def reset(self) -> None:
        self._zi = np.zeros((1, self.N_MEASURES * self.n_channels))
        self._last_raw: np.ndarray | None = None
        self._last: np.ndarray = np.zeros(self.N_MEASURES * self.n_channels)
        self._at = 0

    def process(
        self, start: int, raw: np.ndarray, band: np.ndarray, filtered: np.ndarray
    ) -> Quality:
        n, c = raw.shape
        if n:
            prev = raw[:1] if self._last_raw is None else self._last_raw
            d = np.diff(np.concatenate([prev, raw]), axis=0)
            if self.adc_range_uv is not None:
                lo, hi = self.adc_range_uv
                clip = ((raw <= lo) | (raw >= hi)).astype(np.float64)
            else:
                clip = np.zeros_like(raw)
            u = np.concatenate([band**2, filtered**2, d**2, clip], axis=1)
            y, self._zi = signal.lfilter(self._b, self._a, u, axis=0, zi=self._zi)
            self._last = y[-1]
            self._last_raw = raw[-1:]
            self._at = start + n
        return self.snapshot()

    def snapshot(self) -> Quality:
        c = self.n_channels
        p_band, p_filt, p_diff, clip = (self._last[i * c : (i + 1) * c] for i in range(4))
        removed = np.maximum(p_band - p_filt, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(p_band > 0, removed / p_band, 0.0)
        return Quality(
            at=self._at,
            rms_uv=np.sqrt(p_filt),
            mains_ratio=ratio,
            mains_uv=np.sqrt(removed),
            diff_rms_uv=np.sqrt(p_diff),
            clip_fraction=clip.copy(),
        )


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
