"""Voltage units and their factor to microvolts: one table for every reader.

Used by the EDF/BDF reader (the physical-dimension field), the text importers (column units,
``--unit``) and the LSL inlet (the channel ``unit`` of the stream description).

Bottom layer: imports nothing of the project.
"""

from __future__ import annotations

__all__ = ["UV_PER_UNIT", "uv_per"]

UV_PER_UNIT: dict[str, float] = {
    "uv": 1.0, "µv": 1.0, "μv": 1.0, "microvolts": 1.0,
    "mv": 1e3, "millivolts": 1e3,
    "v": 1e6, "volt": 1e6, "volts": 1e6,
    "nv": 1e-3,
}


def uv_per(unit: str) -> float | None:
    """Microvolts per one ``unit`` (case and surrounding blanks ignored); ``None`` when ``unit``
    is not a voltage unit this project knows."""
    return UV_PER_UNIT.get(unit.strip().lower())
