"""The patient-id rule: one function for the whole project.

A patient is known only by a pseudonymous code; a name or birth date must never reach a file.
Every boundary that takes a patient id (the command line, the GUI's Connect screen, the
recorder, the EDF export, the history database) calls :func:`validate_patient_id`.

Bottom layer: imports nothing of the project but :mod:`emgfeedback.errors`.
"""

from __future__ import annotations

import re

from emgfeedback.errors import ConfigError

__all__ = ["PATIENT_RE", "validate_patient_id"]

PATIENT_RE = re.compile(r"^[A-Z]{0,3}-?[0-9][0-9-]{1,15}$")


def validate_patient_id(text: str) -> str:
    """Return ``text`` if it looks like a pseudonym, else raise :class:`ConfigError` saying why.

    Accepted: up to three capital letters, an optional dash, then 2-16 digits or dashes, starting
    with a digit (``P-0001``, ``AB-2024-17``, ``0042``).  Anything with lower-case letters,
    spaces or longer letter runs is refused: it could be a name.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("no patient id: enter a pseudonymous patient id such as P-0042 "
                          "(names are never stored)")
    if not PATIENT_RE.match(text):
        raise ConfigError(
            f"patient id {text!r} is not a pseudonymous id: use up to 3 capital letters, an "
            "optional dash and digits, e.g. P-0042 (names are never stored)"
        )
    return text
