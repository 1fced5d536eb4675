"""Who and which side a recording is about, for files that do not say it themselves.

Our own recordings carry the pseudonymous patient id, the start time and the affected side in
their JSON sidecar.  Files of other tools (OpenBCI GUI text, BrainFlow CSV, BIOPAC, a foreign
EDF) carry none of it, so ``report``, ``history import``, ``analyze``, ``replay`` and
``export-bids`` take ``--patient ID`` and ``--affected-side L|R``: :func:`apply_identity` puts
them into the recording's (in-memory) sidecar, where every reader of a session looks
(``views.report.recording_identity``, :func:`emgfeedback.io.edf.sidecar_affected_side`).

Rules:

- the id must pass :func:`emgfeedback.io.edf.validate_patient_id` (the one patient-id rule: a
  name or anything that looks identifying is refused with that rule's reason);
- a value the file already states wins only when it agrees: a different ``--patient`` or
  ``--affected-side`` is refused (one line naming both), never silently overridden;
- a file without a start time gets the time its importer read from the file's own timestamps,
  else the file's modification time minus its duration, with a note saying so.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from emgfeedback.errors import ConfigError
from emgfeedback.io.edf import sidecar_affected_side, validate_patient_id
from emgfeedback.recording import Recording

__all__ = ["apply_identity", "validate_side"]


def validate_side(side: str | None) -> str | None:
    """``"L"`` or ``"R"`` (any case) or ``None``; anything else is a :class:`ConfigError`."""
    if side is None or side == "":
        return None
    s = str(side).strip().upper()
    if s not in ("L", "R"):
        raise ConfigError(f"affected side {side!r}: use L or R")
    return s


def apply_identity(rec: Recording, patient: str | None = None,
                   affected_side: str | None = None) -> Recording:
    """Fill the recording's sidecar with ``patient`` and ``affected_side`` where it has none.

    Returns ``rec`` (changed in place: only its in-memory sidecar and notes, never the file).

    Raises
    ------
    ConfigError
        The id looks identifying (the patient-id rule's reason), the side is not L/R, or the
        file states another id or side than the one given.
    """
    meta = rec.sidecar
    if patient:
        validate_patient_id(patient)
        stated = meta.get("patient")
        if stated and str(stated) != patient:
            raise ConfigError(f"{rec.path}: the recording is of patient {stated}, --patient says "
                              f"{patient}: drop --patient or check the file")
        meta["patient"] = patient
    side = validate_side(affected_side)
    if side:
        stated_side = sidecar_affected_side(meta)
        if stated_side and stated_side != side:
            raise ConfigError(f"{rec.path}: the recording states affected side {stated_side}, "
                              f"--affected-side says {side}: drop the option or check the file")
        meta["affected_side"] = side
    if (patient or side) and not (meta.get("started") or meta.get("start")):
        path = Path(rec.path)
        if path.suffix.lower() not in (".edf", ".bdf") and path.is_file():
            # The EDF header has a start time; other files only their modification time.
            end = _dt.datetime.fromtimestamp(path.stat().st_mtime)
            start = (end - _dt.timedelta(seconds=rec.duration_s)).replace(microsecond=0)
            meta["started"] = start.isoformat()
            rec.notes.append(f"start time {start:%Y-%m-%d %H:%M:%S} estimated from the file's "
                             "modification time minus its duration (the file has none)")
    return rec
