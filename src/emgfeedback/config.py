"""One validated configuration object, and the one typed-schema mechanism of the project.

Configuration is a tree of frozen dataclasses; defaults live here and nowhere else.  A TOML file
overrides any subset::

    [dsp]
    band = [20, 450]
    mains = "auto"        # 50, 60, "auto" or "off"

    [calibration]
    min_rest_s = 2.0

    [detection]           # defaults of every program (a program's [detection] overrides them)
    h_on = 3.0

    [ui]
    fps = 30

**Schema.**  Every field is declared with :func:`setting` (its default, allowed range or
choices, unit); classes derive from :class:`Settings`, whose ``__post_init__`` checks every field
on construction, however the object is made (TOML, ``dataclasses.replace``, code): the type
(``bool`` is not a number), finiteness (no NaN or infinity anywhere), the range and, through
:meth:`Settings.check`, rules between fields.  :func:`from_mapping` builds any such class from a
parsed mapping (TOML, JSON sidecar, program, montage), rejecting unknown keys by name.  Errors
are one :class:`~emgfeedback.errors.ConfigError` naming the file, the key and the allowed range,
e.g. ``config.toml: dsp.rms_ms must be in (0, 2000] ms, got 1000000000000.0``.

The ranges bound resources too: every window, order and rate has an upper limit, so no
configuration can make the pipeline allocate without bound or hang.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from emgfeedback.errors import ConfigError

__all__ = [
    "CalibrationConfig",
    "Config",
    "DetectionConfig",
    "DspConfig",
    "QualityConfig",
    "Settings",
    "UiConfig",
    "check_number",
    "from_mapping",
    "load_config",
    "read_toml",
    "setting",
]

T = TypeVar("T")

# The largest configuration / program / montage file read (they are a few kB).
MAX_TOML_BYTES = 1 << 20


def setting(default: Any = MISSING, *, default_factory: Any = MISSING, ge: float | None = None,
            gt: float | None = None, le: float | None = None, lt: float | None = None,
            choices: tuple[Any, ...] | None = None, min_len: int | None = None,
            max_len: int | None = None, unit: str = "") -> Any:
    """A dataclass field with its schema: bounds (``ge``/``gt``/``le``/``lt``; for a tuple they
    apply to every item), ``choices``, tuple length bounds and a unit for messages."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "min_len": min_len,
            "max_len": max_len, "unit": unit}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _range_text(meta: typing.Mapping[str, Any]) -> str:
    lo = f"[{_fmt(meta['ge'])}" if meta.get("ge") is not None else (
        f"({_fmt(meta['gt'])}" if meta.get("gt") is not None else "(-inf")
    hi = f"{_fmt(meta['le'])}]" if meta.get("le") is not None else (
        f"{_fmt(meta['lt'])})" if meta.get("lt") is not None else "inf)")
    unit = f" {meta['unit']}" if meta.get("unit") else ""
    return f"{lo}, {hi}{unit}"


def check_number(name: str, value: Any, *, integer: bool = False, ge: float | None = None,
                 gt: float | None = None, le: float | None = None, lt: float | None = None,
                 unit: str = "") -> Any:
    """``value`` if it is a finite number within the bounds, else :class:`ConfigError`
    ``"<name> must be ..., got ..."`` (used by the schema and by the command line's options)."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "unit": unit}
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            integer and not isinstance(value, int)):
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number in {_range_text(meta)}, got {value}")
    if ((ge is not None and value < ge) or (gt is not None and value <= gt)
            or (le is not None and value > le) or (lt is not None and value >= lt)):
        raise ConfigError(f"{name} must be in {_range_text(meta)}, got {value!r}")
    return value


def _check_field(name: str, tp: Any, value: Any, meta: typing.Mapping[str, Any]) -> None:
    """Type, finiteness, range and choices of one field value (already coerced)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return
        tp = next(a for a in args if a is not type(None))
        origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, tuple):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        n = len(value)
        if meta.get("min_len") is not None and n < meta["min_len"]:
            raise ConfigError(f"{name} needs at least {meta['min_len']} item(s), got {n}")
        if meta.get("max_len") is not None and n > meta["max_len"]:
            raise ConfigError(f"{name} takes at most {meta['max_len']} items, got {n}")
        args = typing.get_args(tp)
        items = [args[0]] * n if len(args) == 2 and args[1] is Ellipsis else list(args)
        for i, (a, v) in enumerate(zip(items, value)):
            _check_field(f"{name}[{i}]", a, v, {**meta, "min_len": None, "max_len": None})
        return
    if tp in (float, int):
        check_number(name, value, integer=tp is int, ge=meta.get("ge"), gt=meta.get("gt"),
                     le=meta.get("le"), lt=meta.get("lt"), unit=meta.get("unit", ""))
    elif tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    elif tp is str and not isinstance(value, str):
        raise ConfigError(f"{name} must be text, got {value!r}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        shown = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in choices)
        raise ConfigError(f"{name} must be one of {shown}, got {value!r}")


class Settings:
    """Base of every schema dataclass: validated on construction (see the module docstring).

    ``OPEN = True`` on a subclass: unknown keys of its table are ignored when it is nested
    (documents that grow, such as a recording's sidecar)."""

    OPEN: ClassVar[bool] = False

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            _check_field(f.name, hints[f.name], getattr(self, f.name), f.metadata)
        self.check()

    def check(self) -> None:
        """Rules between fields; raise :class:`ConfigError` starting with the field name."""

    def validate(self, where: str = "") -> None:
        """Re-run the checks (construction already did); kept for callers that validate."""
        try:
            self.__post_init__()
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}" if where else str(exc)) from None


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    h = _HINTS.get(cls)
    if h is None:
        h = _HINTS[cls] = typing.get_type_hints(cls)
    return h


@dataclass(frozen=True)
class DspConfig(Settings):
    """The real-time chain (docs/dsp.md).

    Defaults follow van Boxtel 2001 for facial muscles: 20-450 Hz band-pass (upper edge clipped to
    0.45·fs), a narrow notch (Q 30) at mains and its harmonics, and a linear envelope at 8 Hz.
    """

    dc_cutoff_hz: float = setting(1.0, ge=0, le=20, unit="Hz")  # 0 = no DC high-pass
    band: tuple[float, float] = setting((20.0, 450.0), gt=0, le=10000, unit="Hz")
    band_order: int = setting(4, ge=1, le=8)
    mains: str = setting("auto", choices=("50", "60", "auto", "off"))
    notch_q: float = setting(30.0, gt=0, le=200)
    notch_harmonics: int = setting(0, ge=0, le=50)  # 0 = every harmonic below the upper band edge
    envelope: str = setting("lowpass", choices=("lowpass", "rms"))
    envelope_hz: float = setting(8.0, gt=0, le=100, unit="Hz")
    envelope_order: int = setting(2, ge=1, le=8)
    rms_ms: float = setting(50.0, gt=0, le=2000, unit="ms")
    mains_detect_s: float = setting(1.0, gt=0, le=60, unit="s")

    def check(self) -> None:
        lo, hi = self.band
        if not lo < hi:
            raise ConfigError(f"band must be [low, high] with low < high, got {list(self.band)}")


@dataclass(frozen=True)
class QualityConfig(Settings):
    """Electrode/signal check thresholds (docs/dsp.md, "Signal quality")."""

    window_s: float = setting(1.0, gt=0, le=60, unit="s")  # time constant of the running measures
    # share of band power that is mains interference ...
    max_mains_ratio: float = setting(0.8, ge=0, le=1)
    # ... and only when mains RMS is above this (the notch copes below)
    min_mains_uv: float = setting(20.0, ge=0, le=1e5, unit="µV")
    max_rest_rms_uv: float = setting(8.0, gt=0, le=1e5, unit="µV")  # baseline RMS at rest: noisy
    # sample-to-sample RMS below this: flat line / electrode off
    flat_rms_uv: float = setting(0.05, ge=0, le=1e3, unit="µV")
    max_clip_fraction: float = setting(0.001, ge=0, le=1)  # share of samples at the ADC rails
    # mains RMS above this: electrode off (floating input)
    off_mains_uv: float = setting(100.0, gt=0, le=1e6, unit="µV")
    # After filtering (issue 11): what the notches leave decides, not what they remove.
    # Mains left in the filtered signal (within 2 Hz of mains and harmonics: off-nominal mains
    # passes a Q-30 notch partly, 12 % at 0.1 Hz off) above this and above twice the EMG left
    # swamps the signal (a floating input leaves hundreds of µV): the segment is refused.
    # Below, a steady residual tone only lifts the rest baseline, which the calibration
    # measures, and barely its SD (thresholds stay tight): 55-80 µV at 49.9 Hz with harmonics
    # leaves 7-15 µV, a warning.
    max_residual_mains_uv: float = setting(30.0, gt=0, le=1e6, unit="µV")
    # Mains removed by the notches above this is worth a warning (with the figure and the fix):
    # the EMG is usable but the skin preparation or the reference electrode can be better.
    warn_mains_uv: float = setting(20.0, gt=0, le=1e6, unit="µV")
    # Artefact flags (dsp.quality.ArtefactFlags), per sample: 1-15 Hz content of the raw signal
    # above this is cable motion or an electrode pop (facial EMG puts a few µV there) ...
    artefact_lf_uv: float = setting(150.0, gt=0, le=1e7, unit="µV")
    # ... a raw sample (DC removed) above this is no facial muscle (a few hundred µV at
    # most): a pop, or a floating input with mV of mains ...
    artefact_uv: float = setting(1500.0, gt=0, le=1e7, unit="µV")
    # ... and a raw signal that has not moved by more than flat_rms_uv from sample to sample
    # for this long is a flat line (an attached electrode always shows µV of noise).
    flat_ms: float = setting(50.0, gt=0, le=60_000, unit="ms")
    # A flagged sample keeps the channel flagged this long: the band-pass and the envelope
    # ring for about this long after a transient of a few mV (8 Hz envelope: ~150 ms to fall
    # from mV to the µV floor).
    artefact_hold_ms: float = setting(300.0, ge=0, le=60_000, unit="ms")
    # ... and this long after a raw sample above artefact_uv: after mV of mains (a floating
    # input) stop, the Q-30 notches ring at mains for about a second (they decay e-fold in
    # ~0.2 s: from mV to the µV floor takes 4-5 time constants).
    artefact_hold_big_ms: float = setting(1000.0, ge=0, le=60_000, unit="ms")
    # After missing samples the chain restarts its filters; the notches take about this long
    # to settle on strong mains (a Q-30 notch at 50 Hz: time constant ~0.2 s), during which
    # no burst starts (not reported as an artefact: the gap is in the JSON's gaps).
    gap_settle_ms: float = setting(600.0, ge=0, le=60_000, unit="ms")


@dataclass(frozen=True)
class CalibrationConfig(Settings):
    """Calibration settings; the rules are in :mod:`emgfeedback.clinical.calibration`."""

    settle_s: float = setting(0.5, ge=0, le=60, unit="s")
    min_rest_s: float = setting(2.0, gt=0, le=600, unit="s")
    mvc_window_ms: float = setting(500.0, gt=0, le=10_000, unit="ms")
    # MVC reference across trials: "highest" (the strongest trial; clinical/calibration.py and
    # docs/analysis.md give the reasons) or "best_two" (the mean of the best two)
    mvc_rule: str = setting("highest", choices=("highest", "best_two"))
    auto_settle_s: float = setting(1.0, ge=0, le=600, unit="s")
    auto_window_ms: float = setting(1000.0, gt=0, le=60_000, unit="ms")
    auto_quantile: float = setting(0.2, gt=0, le=1)
    auto_peak_percentile: float = setting(99.0, gt=0, le=100)
    auto_min_mvc_x_rest: float = setting(20.0, ge=0, le=1e4)
    auto_min_mvc_uv: float = setting(80.0, ge=0, le=1e6, unit="µV")
    min_mvc_uv: float = setting(1.0, gt=0, le=1e6, unit="µV")


@dataclass(frozen=True)
class DetectionConfig(Settings):
    """Detection settings (docs/analysis.md, "Detection"); defaults of every program.

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
        One co-contraction is one event: bursts of a region within this time of each other in
        the same rep are one burst (a region hovering around its limit), classified by its
        whole duration; a confirmed event's ``ended`` notice comes once this time has passed.
    blink_on_burst_ratio:
        A blink riding on synkinesis of a blink region (the burst is up already, so its
        duration cannot tell): the moving RMS (80 ms) of the band-passed signal above this
        ratio to its running median (600 ms, the burst's own level) for at most
        ``blink_max_ms``.  A blink of 30-60 %MVC on synkinesis of 15-50 %MVC gives 1.6-5; the
        80 ms RMS of a steady burst varies by about ±15 %, so 1.6 is about 4 of its SDs
        (tuned on the simulator's seeds 0-9; docs/analysis.md, "Blinks during synkinesis").
    max_pct_mvc:
        An envelope above this %MVC is no muscle of that region (electrode pop, cable): an
        artefact.  %MVC above 100 is kept and flagged as "exceeds calibration" up to here.
    crosstalk_lag_ms:
        Lags searched by the per-rep crosstalk index (peak normalised cross-correlation of the
        band-passed target and quiet signals; volume conduction is instantaneous).
    """

    h_on: float = setting(3.0, ge=0, le=1000)
    h_off: float = setting(2.0, ge=0, le=1000)
    min_active_ms: float = setting(30.0, ge=0, le=10_000, unit="ms")
    min_rest_ms: float = setting(50.0, ge=0, le=10_000, unit="ms")
    floor_pct_mvc: float = setting(10.0, ge=0, le=1000, unit="%MVC")
    # the live alert is provisional (blink_max_ms decides the class), so it may come early
    min_event_ms: float = setting(5.0, ge=0, le=10_000, unit="ms")
    event_gap_ms: float = setting(100.0, ge=0, le=60_000, unit="ms")
    onset_lookback_ms: float = setting(300.0, ge=0, le=10_000, unit="ms")
    blink_max_ms: float = setting(250.0, ge=0, le=10_000, unit="ms")
    blink_regions: tuple[str, ...] = setting(("OOC",))
    merge_ms: float = setting(400.0, ge=0, le=60_000, unit="ms")
    blink_on_burst_ratio: float = setting(1.6, gt=1, le=100)
    max_pct_mvc: float = setting(300.0, gt=100, le=1e5, unit="%MVC")
    crosstalk_lag_ms: float = setting(10.0, ge=0, le=100, unit="ms")

    def check(self) -> None:
        from emgfeedback.vocabulary import REGIONS

        if not self.blink_regions:
            raise ConfigError("blink_regions: name at least one region code, e.g. [\"OOC\"] "
                              "(the orbicularis oculi, where blinks are)")
        for code in self.blink_regions:
            if code not in REGIONS:
                raise ConfigError(f"blink_regions: unknown region code {code!r} "
                                  f"(known: {', '.join(REGIONS)})")
        if not self.h_off <= self.h_on:
            raise ConfigError(f"h_off must not exceed h_on, got h_on={self.h_on}, "
                              f"h_off={self.h_off}")


@dataclass(frozen=True)
class UiConfig(Settings):
    """Window settings (the command line's --patient-mode wins when given)."""

    fps: float = setting(30.0, ge=5, le=120, unit="frames/s")  # redraw rate of the GUI
    patient_mode: bool = setting(False)  # large and simple, only the exercise screen
    record_dir: str = setting("")  # where the GUI writes recordings ("" = current folder)


@dataclass(frozen=True)
class Config(Settings):
    dsp: DspConfig = setting(default_factory=DspConfig)
    quality: QualityConfig = setting(default_factory=QualityConfig)
    calibration: CalibrationConfig = setting(default_factory=CalibrationConfig)
    detection: DetectionConfig = setting(default_factory=DetectionConfig)
    ui: UiConfig = setting(default_factory=UiConfig)

    SECTIONS: ClassVar[tuple[str, ...]] = ("dsp", "quality", "calibration", "detection", "ui")


def _coerce(tp: Any, value: Any, where: str, meta: typing.Mapping[str, Any] | None = None
            ) -> Any:
    """``value`` converted to field type ``tp`` (lists to tuples, ints to floats; a number to
    text only for a text field with choices, such as ``mains = 50``), else ConfigError."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, typing.Mapping):
            raise ConfigError(f"{where} must be a table, got {type(value).__name__}")
        return from_mapping(tp, value, where,  # type: ignore[arg-type]
                            ignore_unknown=getattr(tp, "OPEN", False))
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, typing.Mapping):
            raise ConfigError(f"{where} must be a table, got {type(value).__name__}")
        return value
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
            if a is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(a, value, where, meta)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{where} must be a finite number, got {value}") from None
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is str:
        if (isinstance(value, (int, float)) and not isinstance(value, bool)
                and (meta or {}).get("choices")):
            if not math.isfinite(value):
                raise ConfigError(f"{where} must be text, got {value!r}")
            return str(int(value)) if float(value).is_integer() else str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be text, got {value!r}")
        return value
    return value


def from_mapping(cls: type[T], data: typing.Mapping[str, Any], where: str = "",
                 ignore_unknown: bool = False) -> T:
    """Build schema dataclass ``cls`` from a mapping: unknown keys rejected by name (or, for
    documents that grow such as recording sidecars, ``ignore_unknown``), every value type- and
    range-checked (see the module docstring)."""
    if not isinstance(data, typing.Mapping):
        raise ConfigError(f"{where or 'configuration'} must be a table, got {type(data).__name__}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    metas = {f.name: f.metadata for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            if ignore_unknown:
                continue
            raise ConfigError(f"unknown key {path!r} (known: {', '.join(names)})")
        kwargs[key] = _coerce(hints[key], value, path, metas[key])
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}.{exc}" if where else str(exc)) from None


def read_toml(path: str | Path, what: str = "configuration") -> dict[str, Any]:
    """Parse a TOML file; a missing, special, oversized or malformed file is one
    :class:`ConfigError` naming it."""
    from emgfeedback.errors import FileFormatError
    from emgfeedback.files import input_file

    p = Path(path)
    try:
        input_file(p, f"{what} file", MAX_TOML_BYTES)
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileFormatError as exc:
        raise ConfigError(str(exc)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the {what} file ({exc.strerror or exc})") from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read a TOML file (optional) and validate; ``overrides`` is a nested mapping applied last."""
    data: dict[str, Any] = {}
    label = "config"
    if path is not None:
        label = str(path)
        data = read_toml(path)
    for section, values in (overrides or {}).items():
        cur = data.setdefault(section, {})
        if not isinstance(cur, dict):
            raise ConfigError(f"{label}: {section} must be a table, got {cur!r}")
        cur.update(values)
    try:
        return from_mapping(Config, data)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
