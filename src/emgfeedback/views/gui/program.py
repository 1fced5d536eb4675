"""The Connect screen's patient-id check (no Qt); the protocol, programs and the program runner
are in :mod:`emgfeedback.app.program`."""

from __future__ import annotations

__all__ = ["validate_patient_id"]


def validate_patient_id(text: str) -> str | None:
    """``None`` when ``text`` is an acceptable pseudonymous id, else the reason (one line).

    The rule is the recorder's (:func:`emgfeedback.io.edf.validate_patient_id`: up to three
    capital letters, an optional dash, then digits, e.g. ``P-0042``), so an id accepted on the
    Connect screen can always be written into a recording, and a name such as ``Maria`` or
    ``Jan Smit`` is refused.
    """
    from emgfeedback.errors import ConfigError
    from emgfeedback.io.edf import validate_patient_id as io_validate

    t = text.strip()
    if not t:
        return "enter a pseudonymous patient id such as P-0042"
    try:
        io_validate(t)
    except ConfigError:
        return ("patient id: up to 3 capital letters, an optional dash, then digits, e.g. "
                "P-0042 (a pseudonymous code, never a name)")
    return None
