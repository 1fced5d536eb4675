"""One validated configuration object.

Configuration is a tree of frozen dataclasses; defaults live here and nowhere else.  A TOML file
overrides any subset::

    [dsp]
    band = [20, 450]
    mains = "auto"        # 50, 60, "auto" or "off"

Unknown keys, wrong types and out-of-range values raise :class:`~emgfeedback.errors.ConfigError`
naming the file and the key, e.g. ``config.toml: unknown key 'dsp.bandd' (known: band, ...)``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from emgfeedback.errors import ConfigError

__all__ = ["Config", "DspConfig", "QualityConfig", "from_mapping", "load_config", "read_toml"]

T = TypeVar("T")


@dataclass(frozen=True)
class DspConfig:
    """The real-time chain (docs/dsp.md).

    Defaults follow van Boxtel 2001 for facial muscles: 20-450 Hz band-pass (upper edge clipped to
    0.45·fs), a narrow notch (Q 30) at mains and its harmonics, and a linear envelope at 8 Hz.
    """

    dc_cutoff_hz: float = 1.0
    band: tuple[float, float] = (20.0, 450.0)
    band_order: int = 4
    mains: str = "auto"  # "50", "60", "auto" or "off"
    notch_q: float = 30.0
    notch_harmonics: int = 0  # 0 = every harmonic below the upper band edge
    envelope: str = "lowpass"  # "lowpass" or "rms"
    envelope_hz: float = 8.0
    envelope_order: int = 2
    rms_ms: float = 50.0
    mains_detect_s: float = 1.0

    def validate(self, where: str = "dsp") -> None:
        lo, hi = self.band
        if not 0 < lo < hi:
            raise ConfigError(f"{where}.band must be [low, high] with 0 < low < high, got {self.band}")
        if self.mains not in ("50", "60", "auto", "off"):
            raise ConfigError(f"{where}.mains must be 50, 60, \"auto\" or \"off\", got {self.mains!r}")
        if self.envelope not in ("lowpass", "rms"):
            raise ConfigError(f"{where}.envelope must be \"lowpass\" or \"rms\", got {self.envelope!r}")
        if not 0 < self.notch_q <= 200:
            raise ConfigError(f"{where}.notch_q must be in (0, 200], got {self.notch_q}")
        if self.band_order < 1 or self.envelope_order < 1:
            raise ConfigError(f"{where}: filter orders must be >= 1")
        if self.envelope_hz <= 0 or self.rms_ms <= 0:
            raise ConfigError(f"{where}: envelope_hz and rms_ms must be positive")


@dataclass(frozen=True)
class QualityConfig:
    """Electrode/signal check thresholds (docs/dsp.md, "Signal quality")."""

    window_s: float = 1.0  # time constant of the running measures
    max_mains_ratio: float = 0.8  # share of band power that is mains interference ...
    min_mains_uv: float = 20.0  # ... and only when mains RMS is above this (the notch copes below)
    max_rest_rms_uv: float = 8.0  # baseline RMS at rest above this: noisy
    flat_rms_uv: float = 0.05  # sample-to-sample RMS below this: flat line / electrode off
    max_clip_fraction: float = 0.001  # share of samples at the ADC rails
    off_mains_uv: float = 100.0  # mains RMS above this: electrode off (floating input)
    # After filtering (issue 11): what the notches leave decides, not what they remove.
    # Mains left in the filtered signal (within 2 Hz of mains and harmonics: off-nominal mains
    # passes a Q-30 notch partly, 12 % at 0.1 Hz off) above this and above twice the EMG left
    # swamps the signal: the segment is refused.  Below, a steady residual only lifts the rest
    # baseline, which the calibration measures (60 µV at 49.9 Hz leaves 7 µV: a warning).
    max_residual_mains_uv: float = 10.0
    # Mains removed by the notches above this is worth a warning (with the figure and the fix):
    # the EMG is usable but the skin preparation or the reference electrode can be better.
    warn_mains_uv: float = 20.0
    # Artefact flags (dsp.quality.ArtefactFlags), per sample: 1-15 Hz content of the raw signal
    # above this is cable motion or an electrode pop (facial EMG puts a few µV there) ...
    artefact_lf_uv: float = 150.0
    # ... a filtered sample above this is no facial muscle (a few hundred µV at most) ...
    artefact_uv: float = 1500.0
    # ... and an envelope below flat_rms_uv for this long is a flat line (an attached
    # electrode always shows a few µV of skin and amplifier noise).
    flat_ms: float = 50.0
    # A flagged sample keeps the channel flagged this long: the band-pass and the envelope
    # ring for about this long after a transient of a few mV (8 Hz envelope: ~150 ms to fall
    # from mV to the µV floor).
    artefact_hold_ms: float = 300.0

    def validate(self, where: str = "quality") -> None:
        if self.window_s <= 0:
            raise ConfigError(f"{where}.window_s must be positive")


@dataclass(frozen=True)
class Config:
    dsp: DspConfig = field(default_factory=DspConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)

    def validate(self) -> None:
        self.dsp.validate()
        self.quality.validate()


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {type(value).__name__}")
        return from_mapping(tp, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{where} must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value))
    if origin in (typing.Union, types.UnionType):
        errors = []
        for a in typing.get_args(tp):
            if a is type(None) and value is None:
                return None
            try:
                return _coerce(a, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(int(value)) if float(value).is_integer() else str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be text, got {value!r}")
        return value
    return value


def from_mapping(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(f"unknown key {path!r} (known: {', '.join(names)})")
        kwargs[key] = _coerce(hints[key], value, path)
    return cls(**kwargs)


def read_toml(path: str | Path, what: str = "configuration") -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is one :class:`ConfigError` naming it."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such {what} file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read a TOML file (optional) and validate; ``overrides`` is a nested mapping applied last."""
    data: dict[str, Any] = {}
    label = "config"
    if path is not None:
        label = str(path)
        data = read_toml(path)
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    try:
        cfg = from_mapping(Config, data)
        cfg.validate()
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    return cfg
