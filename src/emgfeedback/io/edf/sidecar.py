"""The JSON sidecar of a recording: ``FILE.json`` beside ``FILE.edf``/``FILE.bdf``.

It holds what EDF cannot: montage, calibration, thresholds, exercise program, board and
firmware, software version, the digital grid, gap count and the pseudonymous patient id
(:func:`emgfeedback.validate.validate_patient_id`).  Written by the
:class:`~emgfeedback.io.edf.recorder.Recorder` (atomically: a temporary file renamed over the old
one), read by the reader, repair, analysis and the report.

Schema (``"format": "emgfeedback-sidecar"``, ``"version": 1``): ``recording`` (file name),
``status`` (``recording`` while open, ``complete`` after close, ``recovered`` after repair),
``patient``, ``software``, ``started`` (ISO 8601 local time), ``fs``, ``channels``,
``first_sample`` (stream index of slot 0), ``samples``, ``slots`` (on ``complete``),
``lost_samples``, ``gaps``, ``source`` (name, board, firmware, adc_bits, adc_range_uv, extra),
``digital`` (pmin, pmax, dmin, dmax, gap_fill), ``montage``, ``calibration``, ``thresholds``,
``program``, ``dsp`` (when the live chain is known), ``video`` (the session's camera: its
frame-to-sample table, docs/video.md), plus any entries the caller adds.

Beside them: ``FILE-analysis.json`` (:func:`analysis_path`), the analysis written when a
recorded session stops, and ``FILE-analysis.report.npz`` (:func:`report_data_path`), what the
report draws from the signal, saved with it (:mod:`emgfeedback.views.report.bins`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.validate import check_sidecar, load_json_file, write_private

__all__ = [
    "SIDECAR_FORMAT",
    "analysis_path",
    "read_sidecar",
    "report_data_path",
    "sidecar_affected_side",
    "sidecar_path",
    "write_sidecar",
]

SIDECAR_FORMAT = "emgfeedback-sidecar"


def sidecar_path(path: Path | str) -> Path:
    """``FILE.json`` beside ``FILE.edf`` / ``FILE.bdf``."""
    return Path(path).with_suffix(".json")


def analysis_path(path: Path | str) -> Path:
    """``FILE-analysis.json`` beside ``FILE.edf``: the analysis written when a recorded session
    stops, with the session's own program (the sidecar is ``FILE.json``)."""
    path = Path(path)
    return path.with_name(path.stem + "-analysis.json")


def report_data_path(analysis: Path | str) -> Path:
    """``NAME.report.npz`` beside the analysis JSON ``NAME.json``: the envelopes the report
    draws, saved when the analysis was (:func:`emgfeedback.views.report.bins.save_report_data`);
    tied to the recording's content and to that JSON, ignored when either changed."""
    analysis = Path(analysis)
    return analysis.with_name(analysis.stem + ".report.npz")


def sidecar_affected_side(meta: Mapping[str, Any]) -> str:
    """The affected side a recording's sidecar states (``"L"``, ``"R"`` or ``""``): top-level
    ``affected_side``, the program's, or the source's (the simulated board records it)."""
    program = meta.get("program")
    source = meta.get("source")
    extra = source.get("extra") if isinstance(source, Mapping) else None
    for v in (meta.get("affected_side"),
              program.get("affected_side") if isinstance(program, Mapping) else None,
              extra.get("affected_side") if isinstance(extra, Mapping) else None):
        if isinstance(v, str) and v.upper() in ("L", "R"):
            return v.upper()
    return ""


def read_sidecar(path: Path | str) -> dict[str, Any]:
    """The sidecar of recording ``path`` (``{}`` when there is none, ``0600``)."""
    sp = sidecar_path(path)
    if not sp.exists():
        return {}
    return check_sidecar(load_json_file(sp, "sidecar"), sp)  # types, ranges, patient rule


def write_sidecar(path: Path, data: Mapping[str, Any]) -> None:
    """Write sidecar JSON ``path``: patient data, so ``0600``, atomically
    (:func:`emgfeedback.validate.write_private`)."""
    write_private(path, json.dumps(_finite(data), indent=1, default=_json_default,
                                   allow_nan=False))


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None``: strict JSON (no NaN literal),
    and a value that could not be measured reads back as missing, never as a number."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return _finite(o.item())
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    if isinstance(o, (set, tuple)):
        return _finite(list(o))
    return str(o)
