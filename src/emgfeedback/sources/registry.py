"""The explicit table of signal sources: board specification -> module and factory.

:func:`open_source` turns a board specification from the command line or the GUI into an
unopened source::

    ========================  ==========================================================
    ``simulated``             the built-in facial sEMG model (default), ``scenario=``
    ``simavr``                the real firmware running in the simavr simulator
    ``serial:PORT``           a board on a serial port (``serial:/dev/ttyUSB0``)
    ``chords:PORT``           an Upside Down Labs board with the Chords firmware
    ``spikershield:PORT``     a Backyard Brains Muscle SpikerShield (Spike Recorder sketch)
    ``replay:FILE``           a recording or any importable file
    ``brainflow:BOARD``       a BrainFlow board (with ``port=`` option)
    ``lsl:NAME``              a Lab Streaming Layer inlet
    ========================  ==========================================================

Nothing registers itself: a new board adds one row to :data:`SOURCES`.  The module is imported
only when its kind is opened, so optional dependencies (pyserial, pylsl, brainflow) are needed
only when used, and importing this module imports no source.

Each factory is ``create(arg, *, option=default, ...)``: ``arg`` is the part after the colon,
and its keyword-only parameters are the source's **typed options**.  :func:`open_source`
rejects an option the factory does not take, by name, and a value of the wrong type, with one
:class:`~emgfeedback.errors.ConfigError` line, before anything is opened.  A factory that also
takes ``**more`` (the simulated board: its model's parameters) checks those names itself.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emgfeedback.errors import ConfigError
from emgfeedback.stream import SourceBase

__all__ = ["SOURCES", "SourceKind", "factory", "kinds", "open_source", "options_of"]


@dataclass(frozen=True)
class SourceKind:
    """One row of the table: ``module:function`` of the factory and a line of help."""

    kind: str
    target: str  # "emgfeedback.sources.simulated:create"
    help: str
    #: the part after the colon: "" none, "optional" or "required"
    argument: str = ""


SOURCES: dict[str, SourceKind] = {
    s.kind: s
    for s in (
        SourceKind("simulated", "emgfeedback.sources.simulated:create",
                   "the built-in facial sEMG model (scenario=, seed=, duration=)", "optional"),
        SourceKind("simavr", "emgfeedback.sources.simavr:create",
                   "the real firmware in the simavr simulator, behind a pty"),
        SourceKind("serial", "emgfeedback.sources.serial:create",
                   "a board on a serial port: serial:/dev/ttyUSB0", "required"),
        SourceKind("chords", "emgfeedback.sources.chords:create",
                   "Upside Down Labs board with the Chords firmware: chords:PORT", "required"),
        SourceKind("spikershield", "emgfeedback.sources.spikershield:create",
                   "Backyard Brains Muscle SpikerShield: spikershield:PORT", "required"),
        SourceKind("replay", "emgfeedback.sources.replay:create",
                   "a recording or any importable file: replay:FILE", "required"),
        SourceKind("brainflow", "emgfeedback.sources.brainflow:create",
                   "a BrainFlow board: brainflow:SYNTHETIC_BOARD", "required"),
        SourceKind("lsl", "emgfeedback.sources.lsl:create",
                   "a Lab Streaming Layer inlet: lsl:NAME", "required"),
    )
}


def kinds() -> list[str]:
    """The known source kinds (no module is imported)."""
    return sorted(SOURCES)


def _entry(spec: str) -> tuple[SourceKind, str]:
    kind, _, arg = spec.partition(":")
    entry = SOURCES.get(kind)
    if entry is None:
        raise ConfigError(
            f"unknown board {spec!r}; choose one of: {', '.join(kinds())} "
            "(e.g. --board simulated, --board serial:/dev/ttyUSB0)")
    return entry, arg


def factory(kind: str) -> Callable[..., SourceBase]:
    """The factory of ``kind`` (imports its module)."""
    entry, _ = _entry(kind)
    module, _, name = entry.target.partition(":")
    fn: Callable[..., SourceBase] = getattr(importlib.import_module(module), name)
    return fn


def options_of(kind: str) -> dict[str, inspect.Parameter]:
    """The typed options of ``kind``: its factory's keyword-only parameters."""
    sig = inspect.signature(factory(kind))
    return {n: p for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` fits a simple annotation (``int``, ``float | None``, ``str``, ...);
    anything more complex (callables, arrays, sequences) is accepted as given."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return True


def check_options(kind: str, options: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for an option ``kind`` does not take or a wrongly typed one."""
    fn = factory(kind)
    params = options_of(kind)
    hints = typing.get_type_hints(fn)
    more = any(p.kind is inspect.Parameter.VAR_KEYWORD
               for p in inspect.signature(fn).parameters.values())
    for name, value in options.items():
        if name not in params and more:
            continue  # the factory checks these itself (simulated: the model's parameters)
        if name not in params:
            known = ", ".join(sorted(params)) or "none"
            raise ConfigError(f"board {kind!r} has no option {name!r} (its options: {known})")
        if not _accepts(hints.get(name, inspect.Parameter.empty), value):
            raise ConfigError(f"board {kind!r}: option {name}={value!r} has the wrong type "
                              f"(expected {getattr(hints[name], '__name__', hints[name])})")


def open_source(spec: str, **options: Any) -> SourceBase:
    """Create (not yet opened) the source named by ``spec`` with its typed ``options``."""
    entry, arg = _entry(spec)
    if entry.argument == "required" and not arg:
        raise ConfigError(f"board {entry.kind!r} needs an argument: {entry.help}")
    if entry.argument == "" and arg:
        raise ConfigError(f"board {entry.kind!r} takes no argument (got {arg!r})")
    check_options(entry.kind, options)
    return factory(entry.kind)(arg, **options)
