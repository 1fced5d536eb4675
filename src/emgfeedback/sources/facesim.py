"""A documented model of multi-channel facial sEMG, with scripted scenarios and ground truth.

The model (docs/simulator.md gives the numbers and their sources):

* **Muscle activity**: Gaussian noise shaped by a 2nd-order Butterworth band-pass 25-200 Hz
  (energy mostly 20-250 Hz, peak in the facial range of domain.md), normalised to unit RMS and
  multiplied by the activation amplitude ``a(t)`` in µV RMS.  ``a(t)`` is the sum of the script's
  activations, each a plateau at ``level_pct`` of the region's MVC with raised-cosine ramps of
  ``ramp_s``; its ground-truth onset is the start of the ramp.
* **Crosstalk**: each channel receives ``crosstalk`` (default 4 %) of the muscle activity of its
  neighbours on the same side.
* **Baseline noise**: white noise of 1-5 µV RMS per channel (drawn from the seed).
* **Mains**: 50 or 60 Hz with 2nd and 3rd harmonics (amplitudes 1, 0.3, 0.5 relative), per-channel
  amplitude and phase.
* **Drift and offset**: a DC electrode offset of a few hundred µV and a slow drift (< 0.5 Hz).
* **Blinks**: spontaneous blinks on both orbicularis oculi channels, 120-250 ms at 30-60 % MVC,
  every 2-8 s, *outside* exercise reps (the patient is asked to keep a steady gaze during reps).
* **Confounders** (issue 11; all off by default, each switched by a :class:`ModelParams` field
  or a preset of :data:`CONFOUNDERS`, each with ground truth in :attr:`Script.truth`): blinks
  during reps, hypertonic resting tone of the affected side, stronger crosstalk, cable motion
  transients, electrode pops, an electrode off for a stretch, missing samples (gaps), off-nominal
  and strong mains, ECG on the lower face and neck, and synkinesis that lags the movement or
  joins mid-rep.  Artefacts, electrode-off periods and gaps are placed after the calibration
  protocol (a clinic redoes a trial spoiled by a cable tug), at least 1 s before the end.

Everything is generated from ``seed`` in fixed internal blocks, so the same seed gives the same
samples whatever chunk sizes a reader asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import signal

from emgfeedback.vocabulary import EXERCISES, REST, Cue, format_label, format_mvc, parse_label
from emgfeedback.errors import ConfigError

__all__ = [
    "CONFOUNDERS",
    "SCENARIOS",
    "TRUTH_KINDS",
    "Activation",
    "Cue",
    "FaceModel",
    "ModelParams",
    "Plan",
    "Script",
    "Truth",
    "TruthEvent",
    "apply_confounders",
    "calibration_s",
    "make_script",
]


DEFAULT_CHANNELS: tuple[str, ...] = tuple(
    format_label(side, code) for side in ("L", "R") for code in ("FRO", "OOC", "ZYG", "OOR")
)

#: MVC amplitude (µV RMS of the band-passed signal at 100 % effort) per region.
MVC_UV: dict[str, float] = {
    "FRO": 150.0, "COR": 120.0, "OOC": 130.0, "LLS": 140.0, "ZYG": 200.0,
    "OOR": 180.0, "DAO": 150.0, "MEN": 160.0, "PLA": 120.0, "MAS": 300.0,
}

#: Which region joins in when the nerve has healed wrongly, per target (simulation fact:
#: oral-ocular and ocular-oral synkinesis of domain.md).
INTRUDER: dict[str, str] = {
    "ZYG": "OOC", "OOR": "OOC", "LLS": "OOC", "DAO": "OOC", "MEN": "OOC",
    "OOC": "ZYG", "FRO": "OOC", "COR": "OOC",
}

#: Neighbours on the same side, for crosstalk.
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "FRO": ("COR", "OOC"), "COR": ("FRO", "OOC"), "OOC": ("ZYG", "COR", "FRO"),
    "LLS": ("ZYG", "OOR"), "ZYG": ("OOC", "OOR", "LLS"), "OOR": ("ZYG", "DAO", "MEN"),
    "DAO": ("OOR", "MEN", "PLA"), "MEN": ("DAO", "OOR"), "PLA": ("DAO",), "MAS": ("ZYG",),
}

#: Every scenario but ``rest`` starts with the clinic's calibration protocol (rest, MVC per
#: region: :func:`calibration_protocol`) unless ``ModelParams.calibration`` is off.
SCENARIOS: dict[str, str] = {
    "rest": "relaxed face, spontaneous blinks only",
    "smile-clean": "calibration, then smile reps, no synkinesis",
    "smile-synkinesis": "calibration, then smile reps; on the affected side the eye co-activates "
                        "(oral-ocular)",
    "eye-closure-synkinesis": "calibration, then gentle eye closure reps; the affected mouth "
                              "corner co-activates",
    "asymmetric-smile": "calibration, then smile reps; the affected side reaches 40 % of the "
                        "unaffected level",
    "session": "scripted clinic session: calibration (rest, MVC per region), then a program of "
               "exercises",
}


#: Share of the ECG (relative to ``ModelParams.ecg_uv``) per region: the heart's field is
#: strongest on the neck and lower face and hardly reaches the upper face.
ECG_WEIGHT: dict[str, float] = {
    "PLA": 1.0, "MAS": 0.6, "DAO": 0.7, "MEN": 0.7, "OOR": 0.5, "ZYG": 0.3, "LLS": 0.15,
    "OOC": 0.0, "COR": 0.0, "FRO": 0.0,
}

#: Sampling rates the model is documented and tested for.
FS_RANGE = (500.0, 2000.0)

SYNKINESIS_TIMINGS = ("onset", "lag", "mid")
#: Time constant of the settling after a railed electrode is reconnected (s).
RECONNECT_TAU_S = 0.15
ELECTRODE_OFF_MODES = ("rail", "mains")


@dataclass(frozen=True)
class ModelParams:
    """Parameters of the simulated patient and recording conditions.

    The fields after ``drift_uv`` are the confounders of issue 11, all off by default (see
    docs/simulator.md); :data:`CONFOUNDERS` holds named presets.
    """

    fs: float = 1000.0
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    calibration: bool = True  # every scenario but rest starts with the clinic's calibration
    affected_side: str = "L"
    affected_strength: float = 0.7  # affected-side MVC relative to the healthy side
    mains_hz: float = 50.0
    mains_uv: float = 4.0  # typical fundamental amplitude (per channel 0.5-1.5x)
    noise_uv: tuple[float, float] = (1.0, 5.0)  # baseline RMS range, drawn per channel
    crosstalk: float = 0.04
    ramp_s: float = 0.1
    synkinesis_prob: float | None = None  # None: scenario default
    blink_interval_s: tuple[float, float] = (2.0, 8.0)
    offset_uv: float = 300.0
    drift_uv: float = 20.0
    # --- confounders (issue 11) ---
    blinks_in_reps: float = 0.0  # probability that a rep holds a spontaneous blink (80-180 ms)
    hypertonic_pct: float = 0.0  # resting tone of every affected-side region, % of its MVC
    motion_per_min: float = 0.0  # cable motion transients per minute (1-3 channels of a side)
    pops_per_min: float = 0.0  # electrode pops per minute (one channel, step + decay)
    electrode_off_s: float = 0.0  # one electrode off for this long (0: never)
    electrode_off_mode: str = "rail"  # "rail": the input floats to a rail; "mains": huge mains
    electrode_off_channel: str = ""  # short label (L-OOC); "" = drawn from the seed
    gaps_per_min: float = 0.0  # stretches of lost samples per minute
    gap_ms: tuple[float, float] = (5.0, 200.0)  # length range of one gap
    ecg_uv: float = 0.0  # ECG R-wave amplitude on the neck (other regions: ECG_WEIGHT)
    synkinesis_pct: tuple[float, float] = (20.0, 50.0)  # level range of planted synkinesis
    synkinesis_timing: str = "onset"  # "onset" 30-250 ms, "lag" 0.3-0.8 s, "mid" mid-rep

    def __post_init__(self) -> None:
        if not FS_RANGE[0] <= self.fs <= FS_RANGE[1]:
            raise ConfigError(f"simulated sample rate must be {FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz, "
                              f"got {self.fs:g}")
        if not 45.0 <= self.mains_hz <= 65.0:
            raise ConfigError(f"simulated mains must be 45-65 Hz (50, 49.9, 60, 59.8 ...), got "
                              f"{self.mains_hz:g}")
        if self.synkinesis_timing not in SYNKINESIS_TIMINGS:
            raise ConfigError(f"synkinesis timing must be one of {', '.join(SYNKINESIS_TIMINGS)}, "
                              f"got {self.synkinesis_timing!r}")
        if self.electrode_off_mode not in ELECTRODE_OFF_MODES:
            raise ConfigError(f"electrode-off mode must be one of {', '.join(ELECTRODE_OFF_MODES)},"
                              f" got {self.electrode_off_mode!r}")
        for name in ("blinks_in_reps",):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} is a probability (0-1), got {getattr(self, name)}")
        for name in ("hypertonic_pct", "motion_per_min", "pops_per_min", "electrode_off_s",
                     "gaps_per_min", "ecg_uv", "mains_uv", "crosstalk"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0.0):
                raise ConfigError(f"{name} must be a non-negative number, got {v}")
        if self.crosstalk > 0.5:
            raise ConfigError(f"crosstalk is a share of the neighbour's signal (0-0.5), got "
                              f"{self.crosstalk}")
        lo, hi = self.synkinesis_pct
        if not 0.0 < lo <= hi <= 100.0:
            raise ConfigError(f"synkinesis level range must be within 0-100 %MVC, got {lo}-{hi}")


#: Named confounder presets (``--confounder NAME``; bench/bench_detection.py's conditions).
CONFOUNDERS: dict[str, dict[str, object]] = {
    "blinks": {"blinks_in_reps": 0.6},
    "hypertonic": {"hypertonic_pct": 6.0},
    "crosstalk": {"crosstalk": 0.08},
    "crosstalk-strong": {"crosstalk": 0.15},
    "motion": {"motion_per_min": 6.0},
    "pops": {"pops_per_min": 6.0},
    "electrode-off": {"electrode_off_s": 8.0},
    "electrode-off-mains": {"electrode_off_s": 8.0, "electrode_off_mode": "mains"},
    "gaps": {"gaps_per_min": 6.0},
    "mains-49.9": {"mains_hz": 49.9, "mains_uv": 55.0},
    "mains-59.8": {"mains_hz": 59.8, "mains_uv": 55.0},
    "ecg": {"ecg_uv": 80.0},
    "fs-500": {"fs": 500.0},
    "fs-2000": {"fs": 2000.0},
    "synkinesis-lag": {"synkinesis_timing": "lag", "synkinesis_pct": (15.0, 45.0)},
    "synkinesis-mid": {"synkinesis_timing": "mid", "synkinesis_pct": (15.0, 45.0)},
}


def apply_confounders(p: ModelParams, names: "str | list[str] | tuple[str, ...]") -> ModelParams:
    """``p`` with the presets ``names`` (a list or a comma-separated string; ``all`` = every
    preset that does not change the sample rate or the mains frequency)."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    changes: dict[str, object] = {}
    for raw in names:
        n = raw.strip().lower()
        if n == "all":
            for k, v in CONFOUNDERS.items():
                if not k.startswith(("fs-", "mains-", "electrode-off-", "synkinesis-mid",
                                     "crosstalk-strong")):
                    changes.update(v)
            changes.update(CONFOUNDERS["mains-49.9"])
            continue
        if n not in CONFOUNDERS:
            raise ConfigError(f"unknown confounder {raw!r}; choose from: all, "
                              f"{', '.join(CONFOUNDERS)}")
        changes.update(CONFOUNDERS[n])
    return replace(p, **changes) if changes else p  # type: ignore[arg-type]


@dataclass(frozen=True)
class Activation:
    """Ground truth: channel ``channel`` (short label) active from ``start`` to ``stop``."""

    channel: str
    start: int
    stop: int
    level_pct: float
    kind: str  # "voluntary", "mvc", "synkinesis", "blink"


@dataclass(frozen=True)
class TruthEvent:
    """A planted synkinesis: ``channel`` joined in while ``trigger`` was the rep's target."""

    type: str
    channel: str
    trigger: str
    exercise: str
    start: int
    stop: int
    peak_pct: float
    rep: int = -1  # number of the rep (from 1, order of the exercise cues), as the detector numbers them


#: What a :class:`Truth` entry's ``kind`` means (and its ``level`` unit).
TRUTH_KINDS: dict[str, str] = {
    "synkinesis": "a quiet region joined in during a rep (level %MVC, trigger = the rep's target)",
    "blink": "spontaneous blink burst on an orbicularis oculi channel (level %MVC)",
    "hypertonic": "raised resting tone of an affected-side region (level %MVC)",
    "crosstalk": "volume-conducted copy of trigger's activity (level % of trigger's signal)",
    "motion": "cable motion transient, low-frequency and large (level peak µV)",
    "pop": "electrode pop: step and exponential decay (level step µV)",
    "electrode_off": "electrode off: the input rails or carries mains (level µV, detail = mode)",
    "gap": "samples lost on every channel (channel '')",
    "mains": "mains interference on every channel (level µV RMS of the fundamental)",
    "ecg": "ECG on the channel (level R-wave µV)",
}


@dataclass(frozen=True)
class Truth:
    """One ground-truth entry of a script: ``kind`` (:data:`TRUTH_KINDS`) on ``channel`` (short
    label, ``""`` = every channel) over samples ``[start, stop)``."""

    kind: str
    channel: str
    start: int
    stop: int
    level: float = 0.0
    trigger: str = ""  # synkinesis: the rep's target channel; crosstalk: the source channel
    rep: int = -1  # synkinesis, blink: number of the rep it falls in (from 1; -1 outside reps)
    detail: str = ""

    def to_json(self, fs: float) -> dict[str, object]:
        d: dict[str, object] = {"kind": self.kind, "channel": self.channel,
                                "onset_s": self.start / fs, "offset_s": self.stop / fs,
                                "level": self.level}
        if self.trigger:
            d["trigger"] = self.trigger
        if self.rep >= 1:
            d["rep"] = self.rep
        if self.detail:
            d["detail"] = self.detail
        return d


@dataclass
class Script:
    fs: float
    n_samples: int
    channels: tuple[str, ...]
    activations: list[Activation] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    events: list[TruthEvent] = field(default_factory=list)
    truth: list[Truth] = field(default_factory=list)
    ecg_beats: list[int] = field(default_factory=list)  # R-peak samples

    def of_kind(self, *kinds: str) -> list[Truth]:
        return [t for t in self.truth if t.kind in kinds]

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of every stretch of lost samples, in order."""
        return sorted((t.start, t.stop) for t in self.truth if t.kind == "gap")


class _Builder:
    def __init__(self, p: ModelParams, rng: np.random.Generator, seconds: float,
                 seed: int = 0) -> None:
        self.p = p
        self.rng = rng
        # Confounders draw from their own streams, so switching one on leaves the rest of the
        # script (reps, synkinesis, blinks outside reps) as it was for the same seed.
        self.rng_blink = np.random.default_rng([seed, 8])
        self.fs = p.fs
        self.ids = [parse_label(c) for c in p.channels]
        self.short = [c.short for c in self.ids]
        self.script = Script(p.fs, int(round(seconds * p.fs)), p.channels)
        self.t = 0.0
        self.end = seconds
        self.n_reps = 0

    def s(self, t: float) -> int:
        return int(round(t * self.fs))

    def has(self, side: str, code: str) -> bool:
        return f"{side}-{code}" in self.short

    def sides(self) -> list[str]:
        return sorted({c.side for c in self.ids})

    def activate(self, ch: str, t0: float, t1: float, level: float, kind: str) -> None:
        if ch in self.short and t1 > t0:
            self.script.activations.append(Activation(ch, self.s(t0), self.s(t1), level, kind))

    def strength(self, side: str) -> float:
        return self.p.affected_strength if side == self.p.affected_side else 1.0

    def rest(self, dur: float, annotate: bool = False) -> None:
        if annotate:
            self.script.cues.append(Cue(REST, self.s(self.t), self.s(self.t + dur)))
        self.t += dur

    def synkinesis_onset(self, on: float, off: float) -> float:
        u = float(self.rng.random())
        timing = self.p.synkinesis_timing
        if timing == "lag":  # lags the movement: 0.3-0.8 s after the target's onset
            return on + 0.3 + 0.5 * u
        if timing == "mid":  # joins mid-rep: 30-60 % into the target's activity
            return on + (0.3 + 0.3 * u) * (off - on)
        return on + 0.03 + 0.22 * u  # with the movement: 30-250 ms after its onset

    def rep(self, exercise: str, hold: float, level: tuple[float, float], synk_prob: float,
            weak_affected: float | None = None, targets: tuple[str, ...] | None = None) -> None:
        targets = targets or EXERCISES[exercise].targets
        t0 = self.t
        t1 = t0 + hold
        side_aff = self.p.affected_side
        self.n_reps += 1
        rep_i = self.n_reps  # reps are numbered from 1, one number per cue, as the detector does
        self.script.cues.append(Cue(exercise, self.s(t0), self.s(t1), side_aff))
        lvl = float(self.rng.uniform(*level))
        first_on, last_off = t1, t0
        for side in self.sides():
            for code in targets:
                # Reaction time after the cue: 0.15-0.4 s; relax 0.05-0.2 s before its end.
                on = t0 + float(self.rng.uniform(0.15, 0.4))
                off = t1 - float(self.rng.uniform(0.05, 0.2))
                first_on, last_off = min(first_on, on), max(last_off, off)
                scale = 1.0
                if side == side_aff and weak_affected is not None:
                    scale = weak_affected
                self.activate(f"{side}-{code}", on, off, lvl * scale, "voluntary")
                if side == side_aff and self.rng.random() < synk_prob:
                    intr = INTRUDER.get(code)
                    if intr and self.has(side, intr):
                        d_on = self.synkinesis_onset(on, off)
                        d_off = max(off - float(self.rng.uniform(0.0, 0.3)), d_on + 0.25)
                        lo, hi = self.p.synkinesis_pct
                        pk = lo + (hi - lo) * float(self.rng.random())
                        self.activate(f"{side}-{intr}", d_on, d_off, pk, "synkinesis")
                        self.script.events.append(TruthEvent(
                            "synkinesis", f"{side}-{intr}", f"{side}-{code}", exercise,
                            self.s(d_on), self.s(d_off), pk, rep_i))
        if self.p.blinks_in_reps > 0 and "OOC" not in targets:
            r = self.rng_blink
            if r.random() < self.p.blinks_in_reps and last_off - first_on > 0.6:
                t = float(r.uniform(first_on + 0.2, last_off - 0.3))
                self.blink(t, float(r.uniform(0.08, 0.18)), float(r.uniform(30, 60)), rep_i)
        self.t = t1

    def blink(self, t: float, dur: float, lvl: float, rep: int = -1) -> None:
        for side in self.sides():
            if self.has(side, "OOC"):
                self.activate(f"{side}-OOC", t, t + dur, lvl, "blink")
                self.script.truth.append(Truth("blink", f"{side}-OOC", self.s(t),
                                               self.s(t + dur), lvl, rep=rep))

    def mvc_block(self, code: str, trials: int = 3, hold: float = 3.0, gap: float = 3.0) -> None:
        for _ in range(trials):
            t0, t1 = self.t, self.t + hold
            for side in self.sides():
                if not self.has(side, code):
                    continue
                self.script.cues.append(Cue(format_mvc(f"{side}-{code}"), self.s(t0), self.s(t1), side))
                on = t0 + float(self.rng.uniform(0.2, 0.4))
                off = t1 - float(self.rng.uniform(0.1, 0.3))
                self.activate(f"{side}-{code}", on, off, float(self.rng.uniform(90, 100)), "mvc")
            self.t = t1
            self.rest(gap)

    def blinks(self) -> None:
        """Spontaneous blinks on both OOC channels, outside cued exercise reps and MVC trials."""
        busy = sorted((c.start, c.stop) for c in self.script.cues if c.text != "rest")
        t = float(self.rng.uniform(*self.p.blink_interval_s))
        while t < self.end - 0.5:
            dur = float(self.rng.uniform(0.12, 0.25))
            a, b = self.s(t - 0.3), self.s(t + dur + 0.3)
            if not any(s < b and a < e for s, e in busy):
                lvl = float(self.rng.uniform(30, 60))
                self.blink(t, dur, lvl)
            t += float(self.rng.uniform(*self.p.blink_interval_s))

    # ------------------------------------------------------------------ confounders
    def confounders(self, seed: int) -> None:
        """Ground truth of the recording-condition confounders (their own random streams)."""
        p, sc = self.p, self.script
        n = sc.n_samples
        # Artefacts, electrode off and gaps only after the calibration protocol, >= 1 s
        # before the end.
        cal_end = max([c.stop for c in sc.cues if c.text == "rest" or c.text.startswith("mvc ")]
                      + [0])
        lo, hi = cal_end + self.s(1.0), n - self.s(1.0)
        sc.truth.append(Truth("mains", "", 0, n, p.mains_uv, detail=f"{p.mains_hz:g} Hz"))
        if p.hypertonic_pct > 0:
            for ch in self.short:
                if ch.startswith(p.affected_side + "-"):
                    self.activate(ch, 0.0, n / self.fs, p.hypertonic_pct, "hypertonic")
                    sc.truth.append(Truth("hypertonic", ch, 0, n, p.hypertonic_pct))
        if p.crosstalk > 0:
            ids = {c.short: c for c in self.ids}
            for act in sc.activations:
                if act.kind == "hypertonic":
                    continue
                src = ids[act.channel]
                for c in self.ids:
                    if c.side == src.side and src.code in NEIGHBOURS.get(c.code, ()):
                        sc.truth.append(Truth("crosstalk", c.short, act.start, act.stop,
                                              100.0 * p.crosstalk, trigger=act.channel))
        self._ecg(seed)
        if hi <= lo:
            return
        taken: list[tuple[int, int]] = []

        def free(a: int, b: int) -> bool:
            return lo <= a and b <= hi and not any(s < b and a < e for s, e in taken)

        def poisson(rate_per_min: float, r: np.random.Generator) -> list[int]:
            out: list[int] = []
            if rate_per_min <= 0:
                return out
            t = lo + r.exponential(60.0 / rate_per_min) * self.fs
            while t < hi:
                out.append(int(t))
                t += r.exponential(60.0 / rate_per_min) * self.fs
            return out

        if p.electrode_off_s > 0:
            r = np.random.default_rng([seed, 9])
            ch = p.electrode_off_channel or self.short[int(r.integers(len(self.short)))]
            if ch not in self.short:
                raise ConfigError(f"electrode_off_channel {ch!r} is not one of "
                                  f"{', '.join(self.short)}")
            dur = self.s(p.electrode_off_s)
            if hi - lo > dur:
                a = int(r.integers(lo, hi - dur))
                rail = float(r.choice([-1.0, 1.0]))
                rail_mode = p.electrode_off_mode == "rail"
                sc.truth.append(Truth("electrode_off", ch, a, a + dur,
                                      3000.0 * rail if rail_mode else 1000.0,
                                      detail=p.electrode_off_mode))
                taken.append((a, a + dur))
                if rail_mode:  # the reconnection settles like a pop from the rail
                    b = a + dur + self.s(5 * RECONNECT_TAU_S)
                    sc.truth.append(Truth("pop", ch, a + dur, b, 3000.0 * rail,
                                          detail=f"tau={RECONNECT_TAU_S:g}"))
                    taken.append((a + dur, b))
        r = np.random.default_rng([seed, 10])
        sides = self.sides()
        for a in poisson(p.motion_per_min, r):
            dur = self.s(float(r.uniform(0.3, 0.8)))
            side = sides[int(r.integers(len(sides)))]
            chans = [c for c in self.short if c.startswith(side + "-")]
            k = int(r.integers(1, min(3, len(chans)) + 1))
            pick = sorted(int(i) for i in r.choice(len(chans), size=k, replace=False))
            amp = float(r.uniform(300.0, 1500.0)) * float(r.choice([-1.0, 1.0]))
            rise = round(float(r.uniform(0.005, 0.02)), 4)
            gains = r.uniform(0.5, 1.0, k)
            if free(a, a + dur):
                for i, g in zip(pick, gains):
                    sc.truth.append(Truth("motion", chans[i], a, a + dur, amp * float(g),
                                          detail=f"tau_rise={rise:.4f}"))
                taken.append((a, a + dur))
        r = np.random.default_rng([seed, 11])
        for a in poisson(p.pops_per_min, r):
            tau = round(float(r.uniform(0.1, 0.4)), 4)  # as written in the truth's detail
            ch = self.short[int(r.integers(len(self.short)))]
            amp = float(r.uniform(200.0, 1500.0)) * float(r.choice([-1.0, 1.0]))
            b = a + self.s(5 * tau)
            if free(a, b):
                sc.truth.append(Truth("pop", ch, a, b, amp, detail=f"tau={tau:.4f}"))
                taken.append((a, b))
        r = np.random.default_rng([seed, 12])
        gaps: list[tuple[int, int]] = []
        for a in poisson(p.gaps_per_min, r):
            b = a + max(1, self.s(float(r.uniform(*p.gap_ms)) / 1000.0))
            # A gap may fall on anything but another gap (a lost USB packet does not care).
            if b <= hi and not any(s <= b and a <= e for s, e in gaps):
                gaps.append((a, b))
                sc.truth.append(Truth("gap", "", a, b))

    def _ecg(self, seed: int) -> None:
        p, sc = self.p, self.script
        if p.ecg_uv <= 0:
            return
        r = np.random.default_rng([seed, 13])
        rr = 60.0 / float(r.uniform(60.0, 80.0))
        t = float(r.uniform(0.1, rr))
        while t < self.end:
            sc.ecg_beats.append(self.s(t))
            t += rr * float(1.0 + 0.03 * r.standard_normal())
        for c in self.ids:
            w = ECG_WEIGHT.get(c.code, 0.0)
            if w > 0:
                sc.truth.append(Truth("ecg", c.short, 0, sc.n_samples, p.ecg_uv * w))


def _codes(p: ModelParams) -> list[str]:
    codes: list[str] = []
    for c in p.channels:
        code = parse_label(c).code
        if code not in codes:
            codes.append(code)
    return codes


def calibration_protocol(b: _Builder) -> None:
    """The clinic's calibration: 2 s settling, ``rest`` 10 s, 2 s, then 3 MVC trials (3 s, 3 s
    apart) per region, both sides at once (``mvc L-ZYG`` ...)."""
    b.rest(2.0)
    b.rest(10.0, annotate=True)
    b.rest(2.0)
    for code in _codes(b.p):
        b.mvc_block(code)


def calibration_s(p: ModelParams) -> float:
    """Seconds the calibration protocol takes with ``p``'s channels (before the first rep)."""
    return 14.0 + 18.0 * len(_codes(p))


#: What a simulated patient is asked to do instead of a scenario's script: per exercise of a
#: clinical program, ``(name, target region codes, hold s, rest s, reps)`` (built from a
#: :class:`~emgfeedback.clinical.exercises.Program` by ``app.program.simulated_plan``).
Plan = tuple[tuple[str, tuple[str, ...], float, float, int], ...]


def make_script(scenario: str, seconds: float, seed: int, p: ModelParams,
                plan: Plan | None = None) -> Script:
    """The protocol and ground truth of ``scenario`` lasting ``seconds``; with ``plan`` (the
    ``session`` scenario only), the calibration protocol, then the plan's reps once, in order,
    each cued with its exercise's name, then rest."""
    if plan is not None and scenario != "session":
        raise ConfigError(f"the simulated patient follows either a program or the scenario "
                          f"{scenario!r}, not both: leave out the scenario (or the program)")
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    rng = np.random.default_rng([seed, 7])
    b = _Builder(p, rng, seconds, seed)

    def prob(default: float) -> float:
        return default if p.synkinesis_prob is None else p.synkinesis_prob

    def reps(exercise: str, synk: float, weak: float | None = None,
             level: tuple[float, float] = (40.0, 70.0)) -> None:
        b.rest(3.0)
        while b.t + 3.0 + 3.0 <= seconds:
            b.rep(exercise, float(rng.uniform(2.5, 3.5)), level, synk, weak)
            b.rest(float(rng.uniform(3.0, 4.0)))

    if scenario != "rest" and p.calibration:
        calibration_protocol(b)
    if plan is not None:
        b.rest(3.0)
        for name, targets, hold, rest_s, n in plan:
            if not any(b.has(s, c) for s in b.sides() for c in targets):
                continue  # the program's targets are not on this board's channels
            for _ in range(n):
                if b.t + hold + 1.0 > seconds:
                    break
                b.rep(name, hold, (40.0, 70.0), prob(0.5), targets=targets)
                b.rest(rest_s)
        if b.t < seconds:
            b.rest(seconds - b.t)
    elif scenario == "rest":
        b.rest(seconds, annotate=True)
    elif scenario == "smile-clean":
        reps("smile", 0.0)
    elif scenario == "smile-synkinesis":
        reps("smile", prob(0.7))
    elif scenario == "eye-closure-synkinesis":
        reps("eye_closure", prob(0.7), level=(30.0, 60.0))
    elif scenario == "asymmetric-smile":
        reps("smile", prob(0.0), weak=0.4)
    elif scenario == "session":
        program = [("smile", 5), ("eye_closure", 5), ("pucker", 3), ("brow_raise", 3)]
        while b.t < seconds - 8.0:
            for ex, n in program:
                if ex not in EXERCISES or not any(b.has(s, t) for s in b.sides()
                                                  for t in EXERCISES[ex].targets):
                    continue
                for _ in range(n):
                    if b.t + 7.0 > seconds:
                        break
                    b.rep(ex, 3.0, (40.0, 70.0), prob(0.5))
                    b.rest(float(rng.uniform(3.0, 4.0)))
            if b.t + 7.0 > seconds:
                break
    b.blinks()
    b.confounders(seed)
    sc = b.script
    end = sc.n_samples
    # Nothing may start after the signal ends; what runs past the end is cut there.
    sc.activations = sorted((replace(a, stop=min(a.stop, end)) for a in sc.activations
                             if a.start < end), key=lambda a: a.start)
    sc.cues = sorted((replace(c, stop=min(c.stop, end)) for c in sc.cues if c.start < end),
                     key=lambda c: c.start)
    sc.events = [replace(e, stop=min(e.stop, end)) for e in sc.events if e.start < end]
    sc.truth += [Truth("synkinesis", e.channel, e.start, e.stop, e.peak_pct, trigger=e.trigger,
                       rep=e.rep, detail=e.exercise) for e in sc.events]
    sc.truth = sorted((replace(t, stop=min(t.stop, end)) for t in sc.truth if t.start < end),
                      key=lambda t: (t.start, t.kind, t.channel))
    return sc


class FaceModel:
    """Generates the samples of a :class:`Script` block by block (1 s blocks), deterministically.

    Use :meth:`samples` for random access to ``[start, stop)``; blocks are generated in order and
    cached one at a time, so sequential reading costs one generation per block.
    """

    def __init__(self, script: Script, params: ModelParams, seed: int) -> None:
        self.script = script
        self.p = params
        self.seed = seed
        self.fs = params.fs
        self.block = int(round(self.fs))
        ids = [parse_label(c) for c in params.channels]
        self.short = [c.short for c in ids]
        n = len(ids)
        rng = np.random.default_rng([seed, 1])
        lo, hi = params.noise_uv
        self.noise_uv = rng.uniform(lo, hi, n)
        self.mains_amp = params.mains_uv * rng.uniform(0.5, 1.5, n)
        self.mains_phase = rng.uniform(0, 2 * np.pi, (3, n))
        self.offset = params.offset_uv * rng.uniform(-1, 1, n)
        self.mvc_uv = np.array([
            MVC_UV[c.code] * (params.affected_strength if c.side == params.affected_side else 1.0)
            for c in ids
        ])
        # Crosstalk matrix: y = x @ M, M[i, j] = share of channel i's muscle in channel j.
        m = np.eye(n)
        for j, cj in enumerate(ids):
            for i, ci in enumerate(ids):
                if i != j and ci.side == cj.side and ci.code in NEIGHBOURS.get(cj.code, ()):
                    m[i, j] = params.crosstalk
        self.mix = m
        self.shape_sos = signal.butter(2, [25.0, min(200.0, 0.45 * self.fs)], btype="bandpass",
                                       fs=self.fs, output="sos")
        # Unit-RMS scaling of the shaped noise (power gain of the shaping filter).
        _, h = signal.sosfreqz(self.shape_sos, worN=8192, fs=self.fs)
        self.shape_gain = 1.0 / np.sqrt(np.mean(np.abs(h) ** 2))
        self.drift_sos = signal.butter(1, 0.3, fs=self.fs, output="sos")
        # Per-channel activation segments as arrays for fast block lookup.
        # Ramps: ``ramp_s``; a blink's burst (80-250 ms) rises and falls in a quarter of it.
        self._ramp = max(1, int(round(params.ramp_s * self.fs)))
        self._acts: list[np.ndarray] = []
        for ch in self.short:
            rows = [(a.start, a.stop, a.level_pct,
                     max(1, min(self._ramp, (a.stop - a.start) // 4)) if a.kind == "blink"
                     else self._ramp) for a in script.activations if a.channel == ch]
            self._acts.append(np.array(rows, dtype=np.float64).reshape(-1, 4))
        # Confounders of the recording (drawn after the draws above, which stay as they were).
        self.ecg_sign = rng.choice([-1.0, 1.0], n)
        col = {c: j for j, c in enumerate(self.short)}
        self._transients: list[tuple[int, int, int, float, str, float]] = []
        for tr in script.truth:
            if tr.kind in ("motion", "pop", "electrode_off"):
                par = float(tr.detail.partition("=")[2]) if "=" in tr.detail else 0.0
                self._transients.append((col[tr.channel], tr.start, tr.stop, tr.level, tr.kind,
                                         par))
        self._off_mode = params.electrode_off_mode
        self._ecg_amp = np.zeros(n)
        for tr in script.of_kind("ecg"):
            self._ecg_amp[col[tr.channel]] = tr.level * self.ecg_sign[col[tr.channel]]
        self._beats = np.asarray(script.ecg_beats, dtype=np.int64)
        self._reset_state()

    def _reset_state(self) -> None:
        n = len(self.short)
        self._zi_shape = np.zeros((len(self.shape_sos), 2, n))
        self._zi_drift = np.zeros((len(self.drift_sos), 2, n))
        self._next_block = 0
        self._cache: tuple[int, np.ndarray] | None = None

    def activation_uv(self, start: int, stop: int) -> np.ndarray:
        """Activation amplitude ``a(t)`` (µV RMS) per channel for samples ``[start, stop)``."""
        idx = np.arange(start, stop, dtype=np.float64)
        out = np.zeros((stop - start, len(self.short)))
        for j, acts in enumerate(self._acts):
            if not len(acts):
                continue
            sel = acts[(acts[:, 0] < stop) & (acts[:, 1] > start)]
            for s0, s1, lvl, r in sel:
                up = np.clip((idx - s0) / r, 0.0, 1.0)
                down = np.clip((s1 - idx) / r, 0.0, 1.0)
                env = np.minimum(0.5 - 0.5 * np.cos(np.pi * up), 0.5 - 0.5 * np.cos(np.pi * down))
                env[(idx < s0) | (idx >= s1)] = 0.0
                out[:, j] += env * lvl / 100.0 * self.mvc_uv[j]
        return out

    def _generate_block(self, k: int) -> np.ndarray:
        n = len(self.short)
        b0 = k * self.block
        b1 = b0 + self.block
        rng = np.random.default_rng([self.seed, 2, k])
        white = rng.standard_normal((self.block, n))
        shaped, self._zi_shape = signal.sosfilt(self.shape_sos, white, axis=0, zi=self._zi_shape)
        muscle = shaped * self.shape_gain * self.activation_uv(b0, b1)
        x: np.ndarray = muscle @ self.mix
        x += rng.standard_normal((self.block, n)) * self.noise_uv
        t = (np.arange(b0, b1) / self.fs)[:, None]
        for h, rel in ((1, 1.0), (2, 0.3), (3, 0.5)):
            x += rel * self.mains_amp * np.sqrt(2) * np.sin(
                2 * np.pi * h * self.p.mains_hz * t + self.mains_phase[h - 1])
        walk = rng.standard_normal((self.block, n)) * self.p.drift_uv * 0.5
        drift, self._zi_drift = signal.sosfilt(self.drift_sos, walk, axis=0, zi=self._zi_drift)
        x += drift * 8.0 + self.offset
        if len(self._beats):
            x += self._ecg(b0, b1)[:, None] * self._ecg_amp
        for j, a, b, level, kind, par in self._transients:
            # Pops run on after their truth window (< 1 % left at 5 tau): 10 tau in all.
            end = a + int(round(10 * par * self.fs)) if kind == "pop" else b
            if a >= b1 or end <= b0:
                continue
            lo, hi = max(a, b0), min(end, b1)
            tt = (np.arange(lo, hi) - a) / self.fs
            seg = slice(lo - b0, hi - b0)
            if kind == "pop":
                x[seg, j] += level * np.exp(-tt / par)
            elif kind == "motion":
                x[seg, j] += level * self._motion(tt, (b - a) / self.fs, par)
            else:  # electrode off: the input floats away (20 ms) to a rail, or picks up mains
                w = 1.0 - np.exp(-tt / 0.02)
                t_abs = np.arange(lo, hi) / self.fs
                hum = sum(rel * np.sin(2 * np.pi * h * self.p.mains_hz * t_abs)
                          for h, rel in ((1, 1.0), (2, 0.3), (3, 0.5)))
                if self._off_mode == "rail":
                    # Rail plus the mains the floating input still carries (clipped at the rail).
                    off = level + 300.0 * np.sqrt(2) * hum
                else:
                    off = (self.offset[j] + level * np.sqrt(2) * hum
                           + 30.0 * rng.standard_normal(hi - lo))
                x[seg, j] = (1.0 - w) * x[seg, j] + w * off
        return x

    #: ECG template: (relative time s, amplitude re the R wave, width s) of P, Q, R, S, T.
    ECG_WAVES = ((-0.20, 0.12, 0.025), (-0.03, -0.15, 0.008), (0.0, 1.0, 0.010),
                 (0.03, -0.25, 0.008), (0.25, 0.30, 0.040))

    def _ecg(self, b0: int, b1: int) -> np.ndarray:
        """Unit ECG (R wave = 1) for samples ``[b0, b1)``."""
        out = np.zeros(b1 - b0)
        reach = int(0.45 * self.fs)
        beats = self._beats[(self._beats > b0 - reach) & (self._beats < b1 + reach)]
        idx = np.arange(b0, b1)
        for r in beats:
            lo, hi = max(b0, int(r) - reach), min(b1, int(r) + reach)
            tt = (idx[lo - b0:hi - b0] - r) / self.fs
            for mu, amp, sd in self.ECG_WAVES:
                out[lo - b0:hi - b0] += amp * np.exp(-0.5 * ((tt - mu) / sd) ** 2)
        return out

    @staticmethod
    def _motion(tt: np.ndarray, dur: float, rise: float) -> np.ndarray:
        """Cable motion: fast rise (``rise`` s), exponential return, tapered to 0 at ``dur``;
        peak 1."""
        decay = dur / 4.0
        g = (1.0 - np.exp(-tt / rise)) * np.exp(-tt / decay)
        tp = rise * np.log1p(decay / rise)  # time of the peak
        g /= (1.0 - np.exp(-tp / rise)) * np.exp(-tp / decay)
        taper = np.clip((dur - tt) / (0.25 * dur), 0.0, 1.0)
        return g * (0.5 - 0.5 * np.cos(np.pi * taper))

    def samples(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` in µV, shape ``(stop - start, channels)``."""
        out = []
        pos = start
        while pos < stop:
            k = pos // self.block
            if self._cache is None or self._cache[0] != k:
                if k < self._next_block:
                    self._reset_state()
                while self._next_block <= k:
                    blk = self._generate_block(self._next_block)
                    self._cache = (self._next_block, blk)
                    self._next_block += 1
            assert self._cache is not None
            blk = self._cache[1]
            a = pos - k * self.block
            b = min(self.block, stop - k * self.block)
            out.append(blk[a:b])
            pos += b - a
        return np.concatenate(out) if out else np.zeros((0, len(self.short)))
