"""The Connect screen's patient-id check (no Qt); the protocol, programs and the program runner
are in :mod:`emgfeedback.app.program`."""

from __future__ import annotations

__all__ = ["validate_patient_id"]


def validate_patient_id(text: str) -> str | None:
    """``None`` when ``text`` is an acceptable pseudonymous id, else the reason (one line).

    The rule is the recorder's (:func:`emgfeedback.validate.patient_id_problem`: up to three
    capital letters, an optional dash, then digits, e.g. ``P-0042``; no date, not all digits),
    so an id accepted on the Connect screen can always be written into a recording, and a name
    such as ``Maria`` or ``Jan Smit`` is refused.
    """
    from emgfeedback.validate import patient_id_problem

    t = text.strip()
    if not t:
        return "enter a pseudonymous patient id such as P-0042"
    why = patient_id_problem(t)
    if why is not None:
        return f"patient id refused: {why}"
    return None
