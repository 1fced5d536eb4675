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

import dataclasses
import logging
import pkgutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from emgfeedback.vocabulary import EXERCISES, REGIONS, SIDES
from emgfeedback.config import DetectionConfig, Settings, from_mapping, read_toml, setting
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
class ChannelOverride(Settings):
    """Per-channel (``L-OOC``) overrides of the detection thresholds; ``None`` keeps the default."""

    h_on: float | None = setting(None, ge=0, le=1000)
    h_off: float | None = setting(None, ge=0, le=1000)
    floor_pct_mvc: float | None = setting(None, ge=0, le=1000, unit="%MVC")


@dataclass(frozen=True)
class Exercise(Settings):
    """One exercise of a program.

    ``targets`` and ``quiet`` are region codes; an empty ``quiet`` means "every recorded region
    that is not a target" (resolved against the montage by :meth:`quiet_codes`).
    """

    name: str = setting()
    targets: tuple[str, ...] = setting(min_len=1, max_len=len(REGIONS), choices=None)
    quiet: tuple[str, ...] = setting((), max_len=len(REGIONS))
    band_pct_mvc: tuple[float, float] = setting((20.0, 60.0), ge=0, le=1000, unit="%MVC")
    hold_s: float = setting(3.0, gt=0, le=600, unit="s")
    rest_s: float = setting(4.0, ge=0, le=600, unit="s")
    reps: int = setting(5, ge=1, le=1000)
    side: str = setting("both", choices=SIDE_CHOICES)
    cue: str = setting("")
    floor_pct_mvc: float | None = setting(None, ge=0, le=1000, unit="%MVC")

    def check(self) -> None:
        if not self.name.strip():
            raise ConfigError("name must not be empty")
        for key in ("targets", "quiet"):
            for c in getattr(self, key):
                if c not in REGIONS:
                    raise ConfigError(f"{key}: unknown region code {c!r} "
                                      f"(known: {', '.join(REGIONS)})")
        lo, hi = self.band_pct_mvc
        if not lo < hi:
            raise ConfigError(f"band_pct_mvc must be [low, high] with low < high, "
                              f"got {list(self.band_pct_mvc)}")
        if set(self.quiet) & set(self.targets):
            raise ConfigError("quiet: a region cannot be both target and quiet")

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
    import difflib  # an error message only: not at every start-up

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
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table, got {data!r}")
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
    return from_mapping(Exercise, merged, where)


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: '{key}' must be a table, got {value!r}")
    return dict(value)


def program_from_mapping(data: Mapping[str, Any], where: str = "program",
                         detection: DetectionConfig | None = None) -> Program:
    """Validate a parsed program TOML; see the module docstring for the layout.

    ``detection``: the defaults its ``[detection]`` table overrides (the configuration's
    ``[detection]`` section; default :class:`DetectionConfig`)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: a program must be a table")
    known = ("name", "affected_side", "defaults", "detection", "channels", "exercise")
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
    defaults = _table(data, "defaults", where)
    for key in defaults:
        if key not in _DEFAULT_KEYS:
            raise ConfigError(f"{where}: unknown key 'defaults.{key}' "
                              f"(known: {', '.join(_DEFAULT_KEYS)})")
    try:
        base = dataclasses.asdict(detection or DetectionConfig())
        det = from_mapping(DetectionConfig, {**base, **_table(data, "detection", where)},
                           "detection")
        chans: dict[str, ChannelOverride] = {}
        for ch, ov in _table(data, "channels", where).items():
            from emgfeedback.vocabulary import parse_label

            short = parse_label(ch).short
            if not isinstance(ov, dict):
                raise ConfigError(f"channels.{ch!r} must be a table")
            chans[short] = from_mapping(ChannelOverride, ov, f"channels.{short}")
        raw = data.get("exercise", [])
        if not isinstance(raw, list):
            raise ConfigError("'exercise' must be an array of tables: [[exercise]]")
        exs = tuple(_build_exercise(e, defaults, f"exercise[{i}]") for i, e in enumerate(raw))
        if defaults:  # checked now, not when a vocabulary exercise first uses them
            _build_exercise({"name": next(iter(EXERCISES))}, defaults, "defaults")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    names = [e.name for e in exs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"{where}: exercise {sorted(dup)[0]!r} is defined twice")
    side = data.get("affected_side")
    if side is not None and (not isinstance(side, str) or side.upper() not in SIDES):
        raise ConfigError(f"{where}: affected_side must be \"L\" or \"R\", got {side!r}")
    name = data.get("name", "program")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: name must be text")
    return Program(name, exs, side.upper() if side else None, det, chans, defaults)


def load_program(path: str | Path, detection: DetectionConfig | None = None) -> Program:
    """Read and validate a program TOML file (``detection``: see :func:`program_from_mapping`)."""
    p = Path(path)
    data = read_toml(p, "program")
    return program_from_mapping(data, str(p), detection)


def default_program(detection: DetectionConfig | None = None) -> Program:
    """The shipped default program (``emgfeedback/data/default_program.toml``)."""
    # pkgutil: the package's own loader (a folder or a zip), without importlib.resources and
    # zipfile (10-20 ms of every analyze's start-up; issue 13)
    data = pkgutil.get_data("emgfeedback", "data/default_program.toml")
    if data is None:  # pragma: no cover - a loader that cannot read data files
        raise ConfigError("the default program is missing from the installation (reinstall)")
    return program_from_mapping(tomllib.loads(data.decode("utf-8")), "default_program.toml",
                                detection)


def with_detection(program: Program, **changes: Any) -> Program:
    """A copy of ``program`` with detection settings changed (tests, benchmarks)."""
    return replace(program, detection=replace(program.detection, **changes))
