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
    "Activation",
    "Cue",
    "FaceModel",
    "ModelParams",
    "SCENARIOS",
    "Script",
    "TruthEvent",
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

SCENARIOS: dict[str, str] = {
    "rest": "relaxed face, spontaneous blinks only",
    "smile-clean": "smile reps, no synkinesis",
    "smile-synkinesis": "smile reps; on the affected side the eye co-activates (oral-ocular)",
    "eye-closure-synkinesis": "gentle eye closure reps; the affected mouth corner co-activates",
    "asymmetric-smile": "smile reps; the affected side reaches 40 % of the unaffected level",
    "session": "scripted clinic session: rest, MVC per region, then a program of exercises",
}


@dataclass(frozen=True)
class ModelParams:
    """Parameters of the simulated patient and recording conditions."""

    fs: float = 1000.0
    channels: tuple[str, ...] = DEFAULT_CHANNELS
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


@dataclass
class Script:
    fs: float
    n_samples: int
    channels: tuple[str, ...]
    activations: list[Activation] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    events: list[TruthEvent] = field(default_factory=list)


class _Builder:
    def __init__(self, p: ModelParams, rng: np.random.Generator, seconds: float) -> None:
        self.p = p
        self.rng = rng
        self.fs = p.fs
        self.ids = [parse_label(c) for c in p.channels]
        self.short = [c.short for c in self.ids]
        self.script = Script(p.fs, int(round(seconds * p.fs)), p.channels)
        self.t = 0.0
        self.end = seconds

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

    def rep(self, exercise: str, hold: float, level: tuple[float, float], synk_prob: float,
            weak_affected: float | None = None) -> None:
        kind = EXERCISES[exercise]
        t0 = self.t
        t1 = t0 + hold
        side_aff = self.p.affected_side
        self.script.cues.append(Cue(exercise, self.s(t0), self.s(t1), side_aff))
        lvl = float(self.rng.uniform(*level))
        for side in self.sides():
            for code in kind.targets:
                # Reaction time after the cue: 0.15-0.4 s; relax 0.05-0.2 s before its end.
                on = t0 + float(self.rng.uniform(0.15, 0.4))
                off = t1 - float(self.rng.uniform(0.05, 0.2))
                scale = 1.0
                if side == side_aff and weak_affected is not None:
                    scale = weak_affected
                self.activate(f"{side}-{code}", on, off, lvl * scale, "voluntary")
                if side == side_aff and self.rng.random() < synk_prob:
                    intr = INTRUDER.get(code)
                    if intr and self.has(side, intr):
                        d_on = on + float(self.rng.uniform(0.03, 0.25))
                        d_off = off - float(self.rng.uniform(0.0, 0.3))
                        pk = float(self.rng.uniform(20.0, 50.0))
                        self.activate(f"{side}-{intr}", d_on, d_off, pk, "synkinesis")
                        self.script.events.append(TruthEvent(
                            "synkinesis", f"{side}-{intr}", f"{side}-{code}", exercise,
                            self.s(d_on), self.s(d_off), pk))
        self.t = t1

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
                for side in self.sides():
                    self.activate(f"{side}-OOC", t, t + dur, lvl, "blink")
            t += float(self.rng.uniform(*self.p.blink_interval_s))


def make_script(scenario: str, seconds: float, seed: int, p: ModelParams) -> Script:
    """The protocol and ground truth of ``scenario`` lasting ``seconds``."""
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    rng = np.random.default_rng([seed, 7])
    b = _Builder(p, rng, seconds)

    def prob(default: float) -> float:
        return default if p.synkinesis_prob is None else p.synkinesis_prob

    def reps(exercise: str, synk: float, weak: float | None = None, level=(40.0, 70.0)) -> None:
        b.rest(3.0)
        while b.t + 3.0 + 3.0 <= seconds:
            b.rep(exercise, float(rng.uniform(2.5, 3.5)), level, synk, weak)
            b.rest(float(rng.uniform(3.0, 4.0)))

    if scenario == "rest":
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
        b.rest(2.0)
        b.rest(10.0, annotate=True)
        b.rest(2.0)
        codes = []
        for c in b.ids:
            if c.code not in codes:
                codes.append(c.code)
        for code in codes:
            b.mvc_block(code)
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
    sc = b.script
    end = sc.n_samples
    # Nothing may start after the signal ends; what runs past the end is cut there.
    sc.activations = sorted((replace(a, stop=min(a.stop, end)) for a in sc.activations
                             if a.start < end), key=lambda a: a.start)
    sc.cues = sorted((replace(c, stop=min(c.stop, end)) for c in sc.cues if c.start < end),
                     key=lambda c: c.start)
    sc.events = [replace(e, stop=min(e.stop, end)) for e in sc.events if e.start < end]
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
        self._acts: list[np.ndarray] = []
        for ch in self.short:
            rows = [(a.start, a.stop, a.level_pct) for a in script.activations if a.channel == ch]
            self._acts.append(np.array(rows, dtype=np.float64).reshape(-1, 3))
        self._ramp = max(1, int(round(params.ramp_s * self.fs)))
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
        r = self._ramp
        for j, acts in enumerate(self._acts):
            if not len(acts):
                continue
            sel = acts[(acts[:, 0] < stop + r) & (acts[:, 1] + r > start)]
            for s0, s1, lvl in sel:
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
        x = muscle @ self.mix
        x += rng.standard_normal((self.block, n)) * self.noise_uv
        t = (np.arange(b0, b1) / self.fs)[:, None]
        for h, rel in ((1, 1.0), (2, 0.3), (3, 0.5)):
            x += rel * self.mains_amp * np.sqrt(2) * np.sin(
                2 * np.pi * h * self.p.mains_hz * t + self.mains_phase[h - 1])
        walk = rng.standard_normal((self.block, n)) * self.p.drift_uv * 0.5
        drift, self._zi_drift = signal.sosfilt(self.drift_sos, walk, axis=0, zi=self._zi_drift)
        x += drift * 8.0 + self.offset
        return x

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
