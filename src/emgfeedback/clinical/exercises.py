"""Exercise programs: what each exercise moves, what must stay quiet, and the patient's limits.

A program is a TOML file the therapist edits and keeps per patient (the shipped default is
``emgfeedback/data/default_program.toml``, read with :func:`default_program`)::

    name = "Mrs A, week 3"
    affected_side = "L"            # optional; the montage or --affected can also say it

    [defaults]                     # apply to every exercise unless it says otherwise
    band_pct_mvc = [20.0, 60.0]    # target band in %MVC
    hold_s = 3.0
    rest_s = 4.0
    reps = 5
    side = "both"                  # sides monitored: both, affected, unaffected, L or R

    [detection]                    # per-patient detection settings (DetectionConfig)
    floor_pct_mvc = 10.0           # a quiet region must exceed this %MVC to count as synkinesis
    min_event_ms = 30.0

    [channels."L-OOC"]             # per-channel overrides
    floor_pct_mvc = 8.0
    h_on = 3.0

    [[exercise]]
    name = "smile"                 # a vocabulary name: targets known
    quiet = ["OOC", "FRO"]         # default: every recorded region that is not a target
    band_pct_mvc = [20.0, 50.0]
    reps = 8

    [[exercise]]
    name = "half_smile"            # a new name: must give its targets
    targets = ["ZYG"]
    cue = "Smile with the affected side only"

Unknown keys, unknown region codes and unknown exercise names raise
:class:`~emgfeedback.errors.ConfigError` with a message naming the key or the name (and the
closest known names).  Exercise names are matched case-insensitively.
"""

from __future__ import annotations

import difflib
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from emgfeedback.clinical.regions import EXERCISES, REGIONS
from emgfeedback.config import from_mapping, read_toml
from emgfeedback.errors import ConfigError

__all__ = [
    "ChannelOverride",
    "DetectionConfig",
    "Exercise",
    "Program",
    "default_program",
    "load_program",
    "program_from_mapping",
]

log = logging.getLogger(__name__)

SIDE_CHOICES = ("both", "affected", "unaffected", "L", "R")


@dataclass(frozen=True)
class DetectionConfig:
    """Detection settings (docs/analysis.md, "Detection"); defaults in one place.

    Attributes
    ----------
    h_on, h_off:
        Activation threshold and release threshold in rest SDs above the rest mean of the
        envelope (Hodges & Bui 1996; hysteresis: ``h_off < h_on``).
    min_active_ms, min_rest_ms:
        A channel becomes active after its envelope stayed above the ``h_on`` threshold this long,
        and inactive after it stayed below the ``h_off`` threshold this long.
    floor_pct_mvc:
        A quiet region must also exceed this %MVC to count as synkinesis (the therapist's floor).
    min_event_ms:
        ... for at least this long (the live alert is raised at that moment).
    event_gap_ms:
        An event ends when the condition has been false this long (or the rep ends).
    onset_lookback_ms:
        How far before the alert the onset estimate may search for the start of the rise.
    blink_max_ms:
        A burst's class is known once it has lasted this long (docs/analysis.md, "Event
        classes"): a burst of an orbicularis oculi region (``blink_regions``) that ends sooner
        is a **blink**, a shorter burst elsewhere a **transient** (artefact class, e.g. ECG or
        a twitch); a burst that lasts is **synkinesis**.  Blink EMG lasts 50-200 ms and the lid
        closes and opens within 100-300 ms (docs/domain.md); the 8 Hz envelope keeps a 180 ms
        burst above the synkinesis condition for about 40 ms longer; synkinesis lasts as long
        as the movement (seconds).  250 ms separates the two with margin on both sides.
    blink_regions:
        Region codes whose short bursts are blinks.
    merge_ms:
        One co-contraction is one event: a synkinesis event that ended is reopened (no new
        alert) when the same region joins in again within this time in the same rep (a region
        hovering around its limit).  The ``ended`` notice comes once this time has passed.
    max_pct_mvc:
        An envelope above this %MVC is no muscle of that region (electrode pop, cable): an
        artefact.  %MVC above 100 is kept and flagged as "exceeds calibration" up to here.
    crosstalk_lag_ms:
        Lags searched by the per-rep crosstalk index (peak normalised cross-correlation of the
        band-passed target and quiet signals; volume conduction is instantaneous).
    """

    h_on: float = 3.0
    h_off: float = 2.0
    min_active_ms: float = 30.0
    min_rest_ms: float = 50.0
    floor_pct_mvc: float = 10.0
    min_event_ms: float = 20.0
    event_gap_ms: float = 100.0
    onset_lookback_ms: float = 300.0
    blink_max_ms: float = 250.0
    blink_regions: tuple[str, ...] = ("OOC",)
    merge_ms: float = 400.0
    max_pct_mvc: float = 300.0
    crosstalk_lag_ms: float = 10.0

    def validate(self, where: str = "detection") -> None:
        if not 0 <= self.h_off <= self.h_on:
            raise ConfigError(f"{where}: need 0 <= h_off <= h_on, got h_on={self.h_on}, "
                              f"h_off={self.h_off}")
        for name in ("min_active_ms", "min_rest_ms", "min_event_ms", "event_gap_ms",
                     "onset_lookback_ms", "floor_pct_mvc", "blink_max_ms", "merge_ms",
                     "crosstalk_lag_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}.{name} must not be negative")
        if self.max_pct_mvc <= 100:
            raise ConfigError(f"{where}.max_pct_mvc must be above 100, got {self.max_pct_mvc}")
        for code in self.blink_regions:
            if code not in REGIONS:
                raise ConfigError(f"{where}.blink_regions: unknown region code {code!r}")


@dataclass(frozen=True)
class ChannelOverride:
    """Per-channel (``L-OOC``) overrides of the detection thresholds; ``None`` keeps the default."""

    h_on: float | None = None
    h_off: float | None = None
    floor_pct_mvc: float | None = None


@dataclass(frozen=True)
class Exercise:
    """One exercise of a program.

    ``targets`` and ``quiet`` are region codes; an empty ``quiet`` means "every recorded region
    that is not a target" (resolved against the montage by :meth:`quiet_codes`).
    """

    name: str
    targets: tuple[str, ...]
    quiet: tuple[str, ...] = ()
    band_pct_mvc: tuple[float, float] = (20.0, 60.0)
    hold_s: float = 3.0
    rest_s: float = 4.0
    reps: int = 5
    side: str = "both"
    cue: str = ""
    floor_pct_mvc: float | None = None

    def quiet_codes(self, recorded: set[str]) -> tuple[str, ...]:
        """Quiet region codes among ``recorded`` codes."""
        if self.quiet:
            return tuple(c for c in self.quiet if c in recorded)
        return tuple(sorted(c for c in recorded if c not in self.targets))


_EXERCISE_KEYS = tuple(f.name for f in fields(Exercise))
_DEFAULT_KEYS = ("band_pct_mvc", "hold_s", "rest_s", "reps", "side", "floor_pct_mvc")


@dataclass(frozen=True)
class Program:
    """A list of exercises with per-patient settings; see the module docstring for the TOML."""

    name: str = "default"
    exercises: tuple[Exercise, ...] = ()
    affected_side: str | None = None
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    channels: Mapping[str, ChannelOverride] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Exercise names the program knows: its own, then the vocabulary's."""
        own = [e.name for e in self.exercises]
        return own + [n for n in EXERCISES if n not in own]

    def find(self, name: str) -> Exercise | None:
        """The exercise called ``name`` (case-insensitive), from the program or the vocabulary
        (with the program's defaults), or ``None``."""
        key = name.strip().lower()
        for e in self.exercises:
            if e.name.lower() == key:
                return e
        if key in EXERCISES:
            return _build_exercise({"name": key}, self.defaults, "exercise")
        return None

    def exercise(self, name: str) -> Exercise:
        """Like :meth:`find` but raise :class:`ConfigError` with the closest names."""
        e = self.find(name)
        if e is None:
            raise ConfigError(_unknown_name(name, self.names()))
        return e

    def threshold(self, channel: str, key: str, exercise: Exercise | None = None) -> float:
        """Effective ``h_on``/``h_off``/``floor_pct_mvc`` for ``channel`` (``L-OOC``)."""
        ov = self.channels.get(channel)
        v = getattr(ov, key) if ov is not None else None
        if v is not None:
            return float(v)
        if key == "floor_pct_mvc" and exercise is not None and exercise.floor_pct_mvc is not None:
            return float(exercise.floor_pct_mvc)
        return float(getattr(self.detection, key))


def _unknown_name(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (f"unknown exercise {name!r}{hint} (known: {', '.join(known)}; a program may define "
            "a new one with its targets)")


def _codes(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of region codes like [\"ZYG\"]")
    out = tuple(v.upper() for v in value)
    for c in out:
        if c not in REGIONS:
            raise ConfigError(f"{where}: unknown region code {c!r} (known: {', '.join(REGIONS)})")
    return out


def _build_exercise(data: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> Exercise:
    for key in data:
        if key not in _EXERCISE_KEYS:
            raise ConfigError(f"unknown key '{where}.{key}' (known: {', '.join(_EXERCISE_KEYS)})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where} needs a name")
    name = name.strip().lower()
    merged: dict[str, Any] = {**defaults, **data, "name": name}
    if "targets" in merged:
        merged["targets"] = list(_codes(merged["targets"], f"{where}.targets"))
    elif name in EXERCISES:
        merged["targets"] = list(EXERCISES[name].targets)
    else:
        raise ConfigError(_unknown_name(name, list(EXERCISES)).replace(
            "a program may define a new one with its targets",
            f"to define a new exercise give '{where}.targets'"))
    if "quiet" in merged:
        merged["quiet"] = list(_codes(merged["quiet"], f"{where}.quiet"))
    if "cue" not in merged and name in EXERCISES:
        merged["cue"] = EXERCISES[name].cue
    ex = from_mapping(Exercise, merged, where)
    lo, hi = ex.band_pct_mvc
    if not 0 <= lo < hi:
        raise ConfigError(f"{where}.band_pct_mvc must be [low, high] with 0 <= low < high")
    if ex.reps < 1 or ex.hold_s <= 0 or ex.rest_s < 0:
        raise ConfigError(f"{where}: reps >= 1, hold_s > 0 and rest_s >= 0 are required")
    if ex.side not in SIDE_CHOICES:
        raise ConfigError(f"{where}.side must be one of {', '.join(SIDE_CHOICES)}, got {ex.side!r}")
    if set(ex.quiet) & set(ex.targets):
        raise ConfigError(f"{where}: a region cannot be both target and quiet")
    return ex


def program_from_mapping(data: Mapping[str, Any], where: str = "program") -> Program:
    """Validate a parsed program TOML; see the module docstring for the layout."""
    known = ("name", "affected_side", "defaults", "detection", "channels", "exercise")
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
    defaults = dict(data.get("defaults", {}))
    for key in defaults:
        if key not in _DEFAULT_KEYS:
            raise ConfigError(f"{where}: unknown key 'defaults.{key}' "
                              f"(known: {', '.join(_DEFAULT_KEYS)})")
    try:
        det = from_mapping(DetectionConfig, dict(data.get("detection", {})), "detection")
        det.validate()
        chans: dict[str, ChannelOverride] = {}
        for ch, ov in dict(data.get("channels", {})).items():
            from emgfeedback.clinical.regions import parse_label

            short = parse_label(ch).short
            if not isinstance(ov, dict):
                raise ConfigError(f"channels.{ch!r} must be a table")
            chans[short] = from_mapping(ChannelOverride, ov, f"channels.{short}")
        raw = data.get("exercise", [])
        if not isinstance(raw, list):
            raise ConfigError("'exercise' must be an array of tables: [[exercise]]")
        exs = tuple(_build_exercise(e, defaults, f"exercise[{i}]") for i, e in enumerate(raw))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    names = [e.name for e in exs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"{where}: exercise {sorted(dup)[0]!r} is defined twice")
    side = data.get("affected_side")
    if side is not None and (not isinstance(side, str) or side.upper() not in ("L", "R")):
        raise ConfigError(f"{where}: affected_side must be \"L\" or \"R\", got {side!r}")
    name = data.get("name", "program")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: name must be text")
    return Program(name, exs, side.upper() if side else None, det, chans, defaults)


def load_program(path: str | Path) -> Program:
    """Read and validate a program TOML file."""
    p = Path(path)
    data = read_toml(p, "program")
    return program_from_mapping(data, str(p))


def default_program() -> Program:
    """The shipped default program (``emgfeedback/data/default_program.toml``)."""
    text = resources.files("emgfeedback").joinpath("data/default_program.toml").read_text("utf-8")
    return program_from_mapping(tomllib.loads(text), "default_program.toml")


def with_detection(program: Program, **changes: Any) -> Program:
    """A copy of ``program`` with detection settings changed (tests, benchmarks)."""
    det = replace(program.detection, **changes)
    det.validate()
    return replace(program, detection=det)
