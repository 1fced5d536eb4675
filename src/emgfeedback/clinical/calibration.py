"""Calibration: rest baseline and MVC per channel, %MVC normalisation, refusal of bad segments.

Annotated calibration (docs/analysis.md, "Annotation vocabulary"):

``rest``          a rest-baseline period.  Per channel: the robust mean and SD of the envelope
                  (median, and 1.4826 x the median absolute deviation) after the first
                  ``settle_s`` (the patient settles after the cue); robust so that spontaneous
                  blinks during the rest period do not inflate the baseline.
``mvc L-ZYG``     one MVC trial of that region.  Per trial: the highest ``mvc_window_ms`` moving
                  mean of the envelope minus the rest mean.  The region's MVC is the **highest
                  trial** (``mvc_rule = "highest"``, the default; ``"best_two"``: the mean of
                  the best two).  The common practice of MVC normalisation takes the maximum
                  over trials, not a central value (Halaki & Ginn 2012, "Normalization of EMG
                  signals: to normalize or not to normalize and what to normalize to?", in
                  *Computational Intelligence in Electromyography Analysis*, InTech;
                  Burden 2010, J Electromyogr Kinesiol 20:1023-1035): a reference below the
                  patient's true maximum gives %MVC above 100 at sub-maximal efforts.  With the
                  highest trial, %MVC above 100 means the patient really exceeded every
                  calibration trial (reports flag it).  Trials are quality-checked and the
                  peak is a 500 ms mean, so one spike cannot set the reference.

**Quality is judged after filtering** (issue 11): every segment is measured over its length
(:func:`segment_quality`: clip fraction and sample-to-sample RMS of the raw signal, the mains
the notches removed, the mains *left in the filtered signal*) and is **refused**, with the
reason, only when the filtered signal is unusable: clipping (including mains so strong that it
clips the ADC), a flat line (electrode off, cable cut), or mains that survives the notches
(off-nominal or distorted mains, a floating input) above ``QualityConfig.max_residual_mains_uv``
and above twice the EMG left in the filtered signal.  Mains that the notches removed is a **warning** above
``QualityConfig.warn_mains_uv``, naming the figure and the fix (``Calibration.notes``, starting
with ``warning:``; the JSON's ``warnings``): the EMG underneath is clean.

**Automatic fallback** (no ``rest`` segment, or ``method="auto"``): the envelope after the first
``auto_settle_s`` is cut into ``auto_window_ms`` (1 s) windows; the quietest ``auto_quantile`` of the
windows (by mean) form the baseline: rest mean = median of their means, rest SD = RMS of their
within-window SDs.  Without ``mvc`` trials for a channel, its MVC is the
``auto_peak_percentile`` of the window means minus the rest mean, but at least
``auto_min_mvc_uv`` (80 µV of envelope, the low end of facial MVC amplitudes) and
``auto_min_mvc_x_rest`` (20) times the rest mean: a region that never contracts in the recording
would otherwise take its crosstalk as its MVC and every flicker would read as a large %MVC.
%MVC is then relative to the strongest activity *in that recording*, not to a true maximum; the
JSON says so (``"mvc_source": "auto"``).

:class:`Calibrator` is a session consumer collecting the same segments live, so the GUI's
calibration phase and ``analyze`` share one implementation (:func:`calibrate_segments`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emgfeedback.config import CalibrationConfig, QualityConfig
from emgfeedback.stream import Marker, Processed, Quality, at_rails
from emgfeedback.errors import CalibrationError
from emgfeedback.numeric import median, percentile
from emgfeedback.vocabulary import parse_annotation, short_label

__all__ = [
    "Calibration",
    "CalibrationConfig",
    "Calibrator",
    "Segment",
    "auto_calibration",
    "calibrate_segments",
    "segment_quality",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """Per-channel rest baseline and MVC of the envelope, in µV (arrays in channel order).

    ``mvc_uv`` is the MVC *above the rest mean*, so
    ``%MVC = 100 · (envelope − rest_mean) / mvc``.
    """

    channels: tuple[str, ...]  # short names, L-ZYG
    rest_mean_uv: np.ndarray
    rest_sd_uv: np.ndarray
    mvc_uv: np.ndarray
    rest_source: tuple[str, ...]  # per channel "rest" or "auto"
    mvc_source: tuple[str, ...]  # per channel "mvc" or "auto"
    mvc_trials_uv: tuple[tuple[float, ...], ...] = ()
    notes: tuple[str, ...] = ()

    def pct_mvc(self, envelope: np.ndarray) -> np.ndarray:
        """%MVC of an envelope array ``(samples, channels)`` (not clipped: rest gives ~0)."""
        pct: np.ndarray = (envelope - self.rest_mean_uv) * (100.0 / self.mvc_uv)
        return pct

    def to_json(self) -> dict[str, dict[str, Any]]:
        """``{channel: {"rest_mean_uv", "rest_sd_uv", "mvc_uv", "rest_source", "mvc_source",
        "mvc_trials_uv"}}``."""
        out: dict[str, dict[str, Any]] = {}
        for i, ch in enumerate(self.channels):
            out[ch] = {
                "rest_mean_uv": round(float(self.rest_mean_uv[i]), 4),
                "rest_sd_uv": round(float(self.rest_sd_uv[i]), 4),
                "mvc_uv": round(float(self.mvc_uv[i]), 4),
                "rest_source": self.rest_source[i],
                "mvc_source": self.mvc_source[i],
                "mvc_trials_uv": [round(v, 4) for v in self.mvc_trials_uv[i]]
                if self.mvc_trials_uv else [],
            }
        return out

    @classmethod
    def from_json(cls, data: dict[str, dict[str, Any]]) -> "Calibration":
        """Inverse of :meth:`to_json` (a calibration stored with the session)."""
        chans = tuple(data)

        def get(k: str) -> np.ndarray:
            return np.array([float(data[c][k]) for c in chans])

        return cls(
            chans, get("rest_mean_uv"), get("rest_sd_uv"), get("mvc_uv"),
            tuple(str(data[c].get("rest_source", "rest")) for c in chans),
            tuple(str(data[c].get("mvc_source", "mvc")) for c in chans),
            tuple(tuple(float(v) for v in data[c].get("mvc_trials_uv", [])) for c in chans),
        )


@dataclass
class Segment:
    """One annotated calibration segment's samples: ``kind`` is ``rest`` or ``mvc``."""

    kind: str
    channel: str | None  # for mvc: short name of the region tested
    start: int
    stop: int
    raw: list[np.ndarray] = field(default_factory=list)
    filtered: list[np.ndarray] = field(default_factory=list)
    envelope: list[np.ndarray] = field(default_factory=list)
    have: int = 0
    #: the last :func:`calibrate_segments` judgement of this segment, with what it depended
    #: on: a preview re-run as each segment ends judges only the new one
    judged: tuple[tuple[Any, ...], "_Judged"] | None = field(default=None, repr=False,
                                                            compare=False)
    #: offline: the future of its judgement, started on a helper thread when it ended
    #: (:class:`Calibrator` ``executor``), with its key
    ahead: tuple[tuple[Any, ...], Any] | None = field(default=None, repr=False, compare=False)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def cat(xs: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(xs) if xs else np.zeros((0, 0))

        return cat(self.raw), cat(self.filtered), cat(self.envelope)


def parse_calibration_marker(text: str) -> tuple[str, str | None] | None:
    """``rest`` -> ``("rest", None)``; ``mvc L-ZYG`` -> ``("mvc", "L-ZYG")``; else ``None``
    (:func:`emgfeedback.vocabulary.parse_annotation` reads the text)."""
    a = parse_annotation(text)
    if not a.is_calibration:
        return None
    if not a.valid:
        log.warning("ignoring calibration annotation %r: not 'mvc <L|R>-<code>'", text)
        return None
    return a.kind, a.channel


def _mains_fit(x: np.ndarray, fs: float) -> tuple[np.ndarray, int]:
    """RMS of the best-fitting 50 or 60 Hz family (fundamental + harmonics) per channel."""
    n = len(x)
    t = np.arange(n) / fs
    xc = x - x.mean(axis=0)
    # Remove a linear drift so it does not leak into the fit.
    ramp = t - t.mean()
    denom = float(ramp @ ramp) or 1.0
    xc = xc - np.outer(ramp, (ramp @ xc) / denom)
    best: tuple[np.ndarray, int] = (np.zeros(x.shape[1]), 50)
    for f0 in (50, 60):
        power = np.zeros(x.shape[1])
        k = 1
        while k * f0 < min(0.45 * fs, 450.0):
            w = 2 * np.pi * k * f0 * t
            c, s = np.cos(w), np.sin(w)
            a = 2.0 / n * (c @ xc)
            b = 2.0 / n * (s @ xc)
            power += (a**2 + b**2) / 2.0
            k += 1
        rms = np.sqrt(power)
        if rms.sum() > best[0].sum():
            best = (rms, f0)
    return best


def _mains_excess(x: np.ndarray, fs: float, f0: int) -> np.ndarray:
    """RMS per channel of the power within ±2 Hz of ``f0`` and its harmonics above the
    neighbouring spectrum (3-8 Hz away): mains at or near the nominal frequency, off-nominal
    included (49.9 Hz, 59.8 Hz), which a fit at the exact frequency would miss."""
    from emgfeedback.dsp.design import welch

    n = len(x)
    nper = int(min(n, fs))
    if nper < 16:
        return np.zeros(x.shape[1])
    f, p = welch(x - x.mean(axis=0), fs, nper)
    df = float(f[1] - f[0])
    total = np.zeros(x.shape[1])
    k = 1
    while k * f0 < min(0.45 * fs, 450.0):
        d = np.abs(f - k * f0)
        near, ring = d <= 2.0, (d >= 3.0) & (d <= 8.0)
        if near.any() and ring.any():
            floor = median(p[ring], axis=0)
            total += (p[near] - floor).sum(axis=0) * df  # noise averages out, EMG cancels
        k += 1
    return np.sqrt(np.maximum(total, 0.0))


def segment_quality(raw: np.ndarray, filtered: np.ndarray, fs: float, start: int,
                    adc_range_uv: tuple[float, float] | None,
                    mains_fit: tuple[np.ndarray, int] | None = None) -> Quality:
    """The :class:`~emgfeedback.dsp.quality.Quality` measures over a whole segment.

    ``mains_uv`` is the mains in the raw signal (what the notches have to remove);
    ``residual_mains_uv`` (an extra attribute, see :func:`residual_mains`) what they left.
    ``mains_fit``: the fit of ``raw`` if the caller has it (:func:`residual_mains` needs it too).
    """
    mains, _ = mains_fit if mains_fit is not None else _mains_fit(raw, fs)
    rms = np.sqrt(np.mean(filtered**2, axis=0))
    d = np.diff(raw, axis=0)
    diff = np.sqrt(np.mean(d**2, axis=0)) if len(d) else np.zeros(raw.shape[1])
    clip = np.mean(at_rails(raw, adc_range_uv), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(mains > 0, mains**2 / (mains**2 + rms**2), 0.0)
    return Quality(start + len(raw), rms, ratio, mains, diff, clip)


def residual_mains(raw: np.ndarray, filtered: np.ndarray, fs: float,
                   mains_fit: tuple[np.ndarray, int] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """``(raw mains, mains left after the notches, frequency)`` per channel, µV RMS.

    The raw figure is a fit at the exact mains frequency and harmonics (what the notches
    remove); the residual is the excess spectrum within ±2 Hz of them in the filtered signal
    (off-nominal mains included).  ``mains_fit`` as in :func:`segment_quality`."""
    fit, f0 = mains_fit if mains_fit is not None else _mains_fit(raw, fs)
    return fit, _mains_excess(filtered, fs, f0), f0


def judge_segment(q: Quality, resid: np.ndarray, removed: np.ndarray, f0: int, i: int,
                  qcfg: QualityConfig) -> tuple[str | None, str | None]:
    """``(refusal, warning)`` for channel ``i`` of a segment (module docstring): refused only
    when the filtered signal is unusable; strong mains the notches removed is a warning."""
    if q.diff_rms_uv[i] < qcfg.flat_rms_uv:
        return "flat line: electrode off or cable cut", None
    if q.clip_fraction[i] > qcfg.max_clip_fraction:
        return ("clipping: check electrode contact and gain (mains this strong clips the "
                "ADC)" if removed[i] > qcfg.off_mains_uv else
                "clipping: check electrode contact and gain"), None
    emg = float(np.sqrt(max(q.rms_uv[i] ** 2 - resid[i] ** 2, 0.0)))  # filtered, minus it
    if resid[i] > max(qcfg.max_residual_mains_uv, 2.0 * emg):
        return (f"mains {resid[i]:.1f} µV RMS survives the {f0} Hz notches (off-nominal or "
                "distorted mains, electrode off or loose): reattach the electrode, check the "
                "reference electrode"), None
    if removed[i] > qcfg.warn_mains_uv:
        return None, (f"strong mains {removed[i]:.0f} µV RMS at {f0} Hz, removed by the "
                      "notches (the EMG underneath is usable); to lower it clean the skin, "
                      "check the reference electrode, keep away from mains cables and chargers")
    return None, None


@dataclass(frozen=True)
class _Judged:
    """One segment as :func:`calibrate_segments` judged it: its refusals and warnings, and the
    envelope it contributes (the rest envelope after settling, or the MVC target's)."""

    refusals: tuple[tuple[str, int, str], ...] = ()
    warnings: tuple[tuple[str, float, str], ...] = ()
    rest_env: np.ndarray | None = None
    mvc_env: np.ndarray | None = None


def _judge(seg: Segment, names: tuple[str, ...], fs: float,
           adc_range_uv: tuple[float, float] | None, settle: int, cfg: CalibrationConfig,
           qcfg: QualityConfig) -> _Judged:
    """The quality checks of one ``rest`` or ``mvc`` segment (module docstring)."""
    raw, filt, env = seg.arrays()
    at = f"{seg.start / fs:.1f} s"
    if seg.kind == "rest":
        if len(env) - settle < cfg.min_rest_s * fs:
            return _Judged(refusals=(("rest", seg.start, f"rest at {at}: too short "
                                      f"({len(env) / fs:.1f} s; need "
                                      f"{cfg.min_rest_s + cfg.settle_s:g} s)"),))
        # one mains fit for both measures (it is most of the calibration's cost)
        fit = _mains_fit(raw[settle:], fs)
        q = segment_quality(raw[settle:], filt[settle:], fs, seg.start + settle, adc_range_uv,
                            fit)
        removed, resid, f0 = residual_mains(raw[settle:], filt[settle:], fs, fit)
        judged = [judge_segment(q, resid, removed, f0, i, qcfg) for i in range(len(names))]
        bad = [(names[i], r) for i, (r, _) in enumerate(judged) if r is not None]
        if bad:
            return _Judged(refusals=tuple(("rest", seg.start, f"rest at {at}: {ch}: {r}")
                                          for ch, r in bad))
        return _Judged(warnings=tuple((names[j], float(removed[j]),
                                       f"warning: rest at {at}: {names[j]}: {wj}")
                                      for j, (_, wj) in enumerate(judged) if wj is not None),
                       rest_env=env[settle:])
    if seg.kind == "mvc" and seg.channel in names:
        i = names.index(seg.channel)
        if len(env) == 0:
            return _Judged()
        fit = _mains_fit(raw, fs)
        q = segment_quality(raw, filt, fs, seg.start, adc_range_uv, fit)
        removed, resid, f0 = residual_mains(raw, filt, fs, fit)
        r, warn = judge_segment(q, resid, removed, f0, i, qcfg)
        if r is not None:
            return _Judged(refusals=((seg.channel, seg.start, f"mvc {seg.channel} at {at}: {r}"),))
        return _Judged(warnings=() if warn is None else (
            (seg.channel, float(removed[i]), f"warning: mvc {seg.channel} at {at}: {warn}"),),
            mvc_env=env[:, i])
    return _Judged()


def _judge_key(seg: Segment, names: tuple[str, ...], fs: float,
               adc_range_uv: tuple[float, float] | None, cfg: CalibrationConfig,
               qcfg: QualityConfig) -> tuple[Any, ...]:
    """What a segment's judgement depends on (a judgement with another key is made again)."""
    return (seg.have, len(seg.raw), fs, adc_range_uv, names, cfg, qcfg)


def calibrate_segments(
    segments: Sequence[Segment],
    channels: Sequence[str],
    fs: float,
    adc_range_uv: tuple[float, float] | None = None,
    fallback_envelope: np.ndarray | None = None,
    cfg: CalibrationConfig | None = None,
    quality: QualityConfig | None = None,
    strict: bool = True,
) -> Calibration:
    """Calibration from annotated segments, with the automatic fallback where they are missing.

    Parameters
    ----------
    segments:
        ``rest`` and ``mvc`` segments with their samples (all channels).
    channels:
        Channel labels (``EMG L-ZYG`` or short); JSON names drop the prefix.
    fallback_envelope:
        The whole recording's envelope ``(samples, channels)``, used for the automatic estimate of
        channels without rest or MVC segments (offline).  Live, pass ``None``: a channel without
        segments then raises :class:`CalibrationError`.
    strict:
        Raise :class:`CalibrationError` listing every refused segment with its reason.  With
        ``False``, refused segments are left out (noted in :attr:`Calibration.notes`).
    """
    cfg = cfg or CalibrationConfig()
    qcfg = quality or QualityConfig()
    names = tuple(short_label(c) for c in channels)
    nch = len(names)
    # (what, start sample, message): what is "rest" or the channel of an MVC trial.
    refusals: list[tuple[str, int, str]] = []
    accepted: dict[str, int] = {}  # what -> start of the latest accepted segment
    notes: list[str] = []
    warnings: list[tuple[str, float, str]] = []  # (channel, mains µV, text)
    rest_env: list[np.ndarray] = []
    trials: list[list[float]] = [[] for _ in range(nch)]
    settle = int(round(cfg.settle_s * fs))
    mvc_segs: list[tuple[Segment, np.ndarray]] = []
    for seg in segments:
        key = _judge_key(seg, names, fs, adc_range_uv, cfg, qcfg)
        if seg.ahead is not None:  # judged on a helper thread (Calibrator's executor)
            akey, fut = seg.ahead
            seg.ahead = None
            seg.judged = (akey, fut.result())
        if seg.judged is None or seg.judged[0] != key:
            seg.judged = (key, _judge(seg, names, fs, adc_range_uv, settle, cfg, qcfg))
        j = seg.judged[1]
        refusals.extend(j.refusals)
        warnings.extend(j.warnings)
        if j.rest_env is not None:
            rest_env.append(j.rest_env)
            accepted["rest"] = seg.start
        elif j.mvc_env is not None:
            assert seg.channel is not None
            mvc_segs.append((seg, j.mvc_env))
            accepted[seg.channel] = seg.start
    # A refused segment that the therapist repeated successfully later (Redo) is superseded:
    # it is left out with a note, in live sessions and in analyze alike.
    refused = [m for what, start, m in refusals if accepted.get(what, -1) < start]
    notes.extend(f"superseded by a later accepted segment: {m}" for what, start, m in refusals
                 if accepted.get(what, -1) > start)
    if refused and strict:
        raise CalibrationError(
            "calibration refused: " + "; ".join(refused)
            + " (repeat the segment, or analyse with the automatic baseline: --calibration auto)")
    notes.extend(f"refused {r}" for r in refused)
    # One warning per channel is enough: the segment with the strongest mains.
    strongest: dict[str, tuple[float, str]] = {}
    for ch, fig, wtext in warnings:
        if ch not in strongest or fig > strongest[ch][0]:
            strongest[ch] = (fig, wtext)
    notes.extend(strongest[ch][1] for ch in names if ch in strongest)

    auto = None
    if fallback_envelope is not None and len(fallback_envelope):
        auto = auto_calibration(fallback_envelope, names, fs, cfg)
    if rest_env:
        allr = np.concatenate(rest_env)
        # Robust: spontaneous blinks and swallows during a rest period must not inflate it.
        mean = median(allr, axis=0)
        sd = 1.4826 * median(np.abs(allr - mean), axis=0)
        rest_src = ("rest",) * nch
    elif auto is not None:
        mean, sd = auto.rest_mean_uv.copy(), auto.rest_sd_uv.copy()
        rest_src = ("auto",) * nch
        notes.append("no usable rest segment: automatic baseline (quietest windows)")
    else:
        raise CalibrationError("calibration needs a 'rest' segment of at least "
                               f"{cfg.min_rest_s + cfg.settle_s:g} s")
    w = max(1, int(round(cfg.mvc_window_ms * fs / 1000.0)))
    for seg, e in mvc_segs:
        i = names.index(seg.channel)
        k = min(w, len(e))
        c = np.concatenate([[0.0], np.cumsum(e)])
        peak = float(np.max((c[k:] - c[:-k]) / k)) - float(mean[i])
        trials[i].append(peak)
    mvc = np.zeros(nch)
    mvc_src: list[str] = []
    for i in range(nch):
        if trials[i]:
            best = sorted(trials[i], reverse=True)
            mvc[i] = float(np.mean(best[:2])) if cfg.mvc_rule == "best_two" else best[0]
            mvc_src.append("mvc")
        elif auto is not None:
            mvc[i] = float(auto.mvc_uv[i] + auto.rest_mean_uv[i] - mean[i])
            mvc_src.append("auto")
        else:
            raise CalibrationError(f"calibration has no MVC trial for {names[i]}: "
                                   f"record 'mvc {names[i]}' trials")
        if mvc[i] < max(cfg.min_mvc_uv, 3.0 * sd[i]):
            msg = (f"{names[i]}: MVC {mvc[i]:.1f} µV is barely above rest (SD {sd[i]:.1f} µV); "
                   "check the electrode and repeat the MVC trials")
            if strict and mvc_src[-1] == "mvc":
                raise CalibrationError("calibration refused: " + msg)
            notes.append(msg)
            mvc[i] = max(mvc[i], cfg.min_mvc_uv, 3.0 * sd[i])
    return Calibration(names, mean, np.maximum(sd, 1e-6), mvc, rest_src, tuple(mvc_src),
                       tuple(tuple(t) for t in trials), tuple(notes))


def auto_calibration(envelope: np.ndarray, channels: Sequence[str], fs: float,
                     cfg: CalibrationConfig | None = None) -> Calibration:
    """The documented automatic estimate from a whole recording's envelope (module docstring)."""
    cfg = cfg or CalibrationConfig()
    names = tuple(short_label(c) for c in channels)
    skip = int(round(cfg.auto_settle_s * fs))
    e = envelope[skip:] if len(envelope) > skip + fs else envelope
    w = max(2, int(round(cfg.auto_window_ms * fs / 1000.0)))
    nwin = max(1, len(e) // w)
    if len(e) < w:
        raise CalibrationError("recording too short for an automatic baseline")
    blocks = e[: nwin * w].reshape(nwin, w, e.shape[1])
    means = blocks.mean(axis=1)
    sds = blocks.std(axis=1)
    k = max(1, int(np.ceil(cfg.auto_quantile * nwin)))
    order = np.argsort(means, axis=0)[:k]
    cols = np.arange(e.shape[1])
    rest_mean = median(means[order, cols], axis=0)
    rest_sd = np.sqrt(np.mean(sds[order, cols] ** 2, axis=0))
    peak = percentile(means, cfg.auto_peak_percentile, axis=0) - rest_mean
    # A region that never contracts in the recording would get its crosstalk as "MVC" and every
    # flicker would read as a large %MVC: its MVC is at least auto_min_mvc_x_rest x rest level.
    mvc = np.maximum(peak, np.maximum(cfg.auto_min_mvc_uv, cfg.auto_min_mvc_x_rest * rest_mean))
    n = len(names)
    return Calibration(names, rest_mean, np.maximum(rest_sd, 1e-6), mvc, ("auto",) * n,
                       ("auto",) * n, tuple(() for _ in range(n)),
                       ("automatic baseline and MVC from the recording itself",))


class Calibrator:
    """Session consumer that collects the ``rest`` and ``mvc`` segments as they stream.

    ``feed`` is called by the session thread; :meth:`result` (any time after the segments
    ended) returns the :class:`Calibration` via :func:`calibrate_segments`, raising
    :class:`CalibrationError` with the reasons if a segment is refused.

    ``executor`` (offline analysis): each segment is judged on it (a
    ``concurrent.futures.Executor``) as soon as it ends, while the stream goes on, instead of
    all of them in :meth:`result` on the session thread (their mains fits are most of a
    calibration's cost); the same judgement, waited for in :meth:`result`.
    """

    def __init__(self, fs: float, channels: Sequence[str],
                 adc_range_uv: tuple[float, float] | None = None,
                 cfg: CalibrationConfig | None = None, quality: QualityConfig | None = None,
                 executor: Any = None) -> None:
        self.fs = fs
        self.channels = tuple(channels)
        self.adc_range_uv = adc_range_uv
        self.cfg = cfg or CalibrationConfig()
        self.quality = quality
        self.executor = executor
        self.segments: list[Segment] = []
        self._open: list[Segment] = []

    def add_markers(self, markers: Iterable[Marker]) -> None:
        for m in markers:
            parsed = parse_calibration_marker(m.text)
            if parsed is not None and m.duration > 0:
                seg = Segment(parsed[0], parsed[1], m.sample, m.sample + m.duration)
                self.segments.append(seg)
                self._open.append(seg)

    def feed(self, p: Processed) -> None:
        self.add_markers(p.markers)
        if not self._open:
            return
        still = []
        for seg in self._open:
            a = max(seg.start, p.start) - p.start
            b = min(seg.stop, p.stop) - p.start
            if b > a:
                seg.raw.append(p.raw[a:b])
                seg.filtered.append(p.filtered[a:b])
                seg.envelope.append(p.envelope[a:b])
                seg.have += b - a
            if seg.stop > p.stop:
                still.append(seg)
            elif self.executor is not None:
                self._judge_ahead(seg)
        self._open = still

    def _judge_ahead(self, seg: Segment) -> None:
        names = tuple(short_label(c) for c in self.channels)
        qcfg = self.quality or QualityConfig()
        settle = int(round(self.cfg.settle_s * self.fs))
        seg.ahead = (_judge_key(seg, names, self.fs, self.adc_range_uv, self.cfg, qcfg),
                     self.executor.submit(_judge, seg, names, self.fs, self.adc_range_uv,
                                          settle, self.cfg, qcfg))

    @property
    def complete(self) -> bool:
        """True when no segment is still being collected."""
        return not self._open

    def result(self, fallback_envelope: np.ndarray | None = None, strict: bool = True
               ) -> Calibration:
        done = [s for s in self.segments if s not in self._open]
        return calibrate_segments(done, self.channels, self.fs, self.adc_range_uv,
                                  fallback_envelope, self.cfg, self.quality, strict)
