"""Simulated clinic sessions, analysed by the real ``analyze``, for report and history tests.

:func:`make_session` simulates a session in memory and analyses it with
:func:`emgfeedback.clinical.analysis.analyze` (the JSON of docs/analysis.md);
:func:`write_edf_session` writes a simulated session as a real EDF+ file with its sidecar, through
the recorder of a live session (as ``emgfeedback simulate --out x.edf`` does), with a patient id
and start time of choice; :func:`analyse_file` is ``analyze`` of such a file, for comparing
reports with what ``analyze`` gives.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from emgfeedback.recording import Recording
from emgfeedback.sources.facesim import ModelParams
from emgfeedback.sources.simulated import SIM_RANGE_UV, SimulatedSource
from emgfeedback.views.report import recording_from_chunk
from emgfeedback.views.summary import SessionInput, json_ready

#: The four channels of an oral-ocular montage: short sessions still get smile and eye-closure
#: reps after a full calibration (rest, 3 MVC trials per region).
SMALL = ("EMG L-ZYG", "EMG L-OOC", "EMG R-ZYG", "EMG R-OOC")


def analyse(rec: Recording, affected_side: str = "L") -> dict[str, Any]:
    """The JSON of ``analyze`` of ``rec`` (default program, montage from the labels)."""
    from emgfeedback.app.analyze import analyze
    from emgfeedback.clinical.montage import Montage

    return json_ready(analyze(rec, Montage.from_labels(rec.channels, affected_side)).to_json())


def analyse_file(path, affected_side: str = "L") -> dict[str, Any]:
    """``analyze`` of a recording file, as ``emgfeedback analyze --json`` writes it."""
    from emgfeedback.io.importers import load

    with load(path) as rec:
        return analyse(rec, affected_side)


def make_source(seed: int = 0, synkinesis_prob: float | None = None, duration: float = 150.0,
                channels: tuple[str, ...] | None = None,
                scenario: str = "session", calibration: bool = True) -> SimulatedSource:
    """The simulated board of a clinic session (``calibration=False``: without its rest and MVC
    periods)."""
    p = ModelParams(synkinesis_prob=synkinesis_prob, calibration=calibration)
    if channels is not None:
        p = replace(p, channels=channels)
    return SimulatedSource(scenario, duration, seed, speed=None, params=p)


def make_session(seed: int = 0, synkinesis_prob: float | None = None, duration: float = 150.0,
                 patient: str = "P001", day: int = 0, with_signal: bool = True,
                 channels: tuple[str, ...] | None = None) -> SessionInput:
    """A simulated clinic session of patient ``patient`` on day ``day``, analysed by ``analyze``
    (in memory; no file)."""
    src = make_source(seed, synkinesis_prob, duration, channels)
    rec = recording_from_chunk(src.read_all(), f"{patient}-day{day:03d}.edf", SIM_RANGE_UV)
    return SessionInput(
        patient_id=patient,
        recorded_at=session_start(day),
        source=f"{patient}-day{day:03d}.edf",
        analysis=analyse(rec, src.params.affected_side),
        affected_side=src.params.affected_side,
        program="default",
        signal=rec if with_signal else None,
        recorded_s=rec.duration_s,
    )


def write_json_session(session: SessionInput, path) -> None:
    """Metrics-only session file for import tests (what the history stores, as JSON)."""
    import json

    path.write_text(json.dumps({
        "patient_id": session.patient_id, "recorded_at": session.recorded_at.isoformat(),
        "source": session.source, "affected_side": session.affected_side,
        "program": session.program, "analysis": session.analysis}))


def read_json_session(path) -> SessionInput:
    """Reader for :func:`emgfeedback.views.history.import_folder` of files from
    :func:`write_json_session`."""
    import json

    d = json.loads(path.read_text())
    return SessionInput(d["patient_id"], datetime.fromisoformat(d["recorded_at"]), d["source"],
                        d["analysis"], d["affected_side"], d["program"])


def session_start(day: int = 0) -> datetime:
    """Start time of the simulated patient's session on day ``day``."""
    return datetime(2025, 1, 6, 9, 30) + timedelta(days=day)


def write_edf_session(path, src: SimulatedSource, patient: str = "P-001",
                      start: datetime | None = None, **sidecar: Any) -> None:
    """Write the whole simulated session of ``src`` as EDF+ with its JSON sidecar.

    The same path as ``emgfeedback simulate --out x.edf`` (the live :class:`Recorder`, samples on
    its digital grid), with the patient id and start time given (header and sidecar ``started``).
    """
    from emgfeedback.io.edf.recorder import Recorder

    start = start or session_start()
    rec = Recorder(path, src.info, patient=patient, start_time=start,
                   sidecar={"patient": patient, "started": start.isoformat(), "simulated": True,
                            **sidecar})
    with src:
        chunk = src.read_all()
    rec.write(chunk)
    rec.close()
