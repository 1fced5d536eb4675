"""EDF+/BDF+ recordings, by job.

=====================================  ===========================================================
:mod:`~emgfeedback.io.edf.format`      header fields, the digital grid, record sizes, TALs
:mod:`~emgfeedback.io.edf.writer`      :class:`EdfWriter`, the one writer; :func:`write_edf` export
:mod:`~emgfeedback.io.edf.recorder`    :class:`Recorder`, the live crash-safe recorder
:mod:`~emgfeedback.io.edf.reader`      :func:`read_edf` -> :class:`EdfRecording` (ours and others')
:mod:`~emgfeedback.io.edf.repair`      :func:`repair` after a crash
:mod:`~emgfeedback.io.edf.sidecar`     the JSON sidecar: path, read, write, affected side
=====================================  ===========================================================

The names below are re-exported so that older imports keep working (``validate_patient_id``
lives in :mod:`emgfeedback.validate`); code in this project imports them from their modules.
"""

from __future__ import annotations

from emgfeedback.io.edf.format import DigitalGrid, grid_for
from emgfeedback.io.edf.reader import EdfRecording, read_edf
from emgfeedback.io.edf.recorder import Recorder, on_grid
from emgfeedback.io.edf.repair import repair
from emgfeedback.io.edf.sidecar import (
    analysis_path,
    read_sidecar,
    sidecar_affected_side,
    sidecar_path,
)
from emgfeedback.io.edf.writer import EdfWriter, write_edf
from emgfeedback.validate import validate_patient_id  # the rule's home is emgfeedback.validate

__all__ = [
    "DigitalGrid",
    "EdfRecording",
    "EdfWriter",
    "Recorder",
    "analysis_path",
    "grid_for",
    "on_grid",
    "read_edf",
    "read_sidecar",
    "repair",
    "sidecar_affected_side",
    "sidecar_path",
    "validate_patient_id",
    "write_edf",
]
