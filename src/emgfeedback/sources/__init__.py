"""Signal sources behind one lifecycle (see :mod:`emgfeedback.stream`).

:func:`open_source` turns a board specification from the command line into a source:

========================  ==========================================================
``simulated``             the built-in facial sEMG model (default), ``--scenario``
``simavr``                the real firmware running in the simavr simulator
``serial:PORT``           a board on a serial port (``serial:/dev/ttyUSB0``)
``chords:PORT``           an Upside Down Labs board with the Chords firmware
``spikershield:PORT``     a Backyard Brains Muscle SpikerShield (Spike Recorder sketch)
``replay:FILE``           a recording or any importable file
``brainflow:BOARD``       a BrainFlow board (with ``port=`` option)
``lsl:NAME``              a Lab Streaming Layer inlet
========================  ==========================================================

Each kind registers a factory with :func:`register`; the factory receives the part after the
colon and keyword options and returns an unopened source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emgfeedback.errors import ConfigError
from emgfeedback.stream import SourceBase

Factory = Callable[..., SourceBase]
_FACTORIES: dict[str, Factory] = {}


def register(kind: str, factory: Factory) -> None:
    """Register ``factory(arg, **options)`` for board specs ``kind`` or ``kind:arg``."""
    _FACTORIES[kind] = factory


def _load_builtin() -> None:
    # Imported lazily so that importing emgfeedback.sources stays cheap and optional
    # dependencies (pyserial, pylsl, brainflow) are only needed when used.
    from emgfeedback.sources import simulated  # noqa: F401

    for mod in ("serial", "simavr", "replay", "brainflow", "lsl",
                "chords",  # Upside Down Labs Chords firmware
                "spikershield"):  # Backyard Brains Muscle SpikerShield
        try:
            __import__(f"emgfeedback.sources.{mod}")
        except ModuleNotFoundError as exc:  # module not part of this build, or missing extra
            if exc.name and exc.name.startswith("emgfeedback.sources."):
                continue
            raise


def kinds() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def open_source(spec: str, **options: Any) -> SourceBase:
    """Create (not yet opened) the source named by ``spec``; see the module docstring."""
    _load_builtin()
    kind, _, arg = spec.partition(":")
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise ConfigError(
            f"unknown board {spec!r}; choose one of: {', '.join(sorted(_FACTORIES))} "
            "(e.g. --board simulated, --board serial:/dev/ttyUSB0)"
        )
    return factory(arg, **options)
