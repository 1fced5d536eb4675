"""Simulated analysed sessions for report and history tests.

:func:`analysis_from_truth` builds a dict in the schema of ``emgfeedback analyze`` (issue 5,
docs/analysis.md) from the simulator's ground truth, so the report and history code is tested
against the schema independently of the detector's accuracy.  :func:`write_edf_session` writes a
simulated session as a real EDF+ file with its sidecar, through the recorder of a live session
(as ``emgfeedback simulate --out x.edf`` does), with a patient id and start time of choice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from emgfeedback.clinical.regions import EXERCISES, short_label
from emgfeedback.sources.facesim import ModelParams
from emgfeedback.sources.simulated import SIM_RANGE_UV, SimulatedSource
from emgfeedback.views.report import recording_from_chunk
from emgfeedback.views.summary import SessionInput

BAND = (30.0, 70.0)


def analysis_from_truth(src: SimulatedSource, seed: int = 0) -> dict[str, Any]:
    """An issue-5 analysis dict from the simulator's script (ground truth plus a little noise)."""
    s = src.script
    fs = s.fs
    rng = np.random.default_rng(seed + 1000)
    chans = [short_label(c) for c in s.channels]
    model = src.model
    cal = {ch: {"rest_mean_uv": round(float(0.8 * model.noise_uv[j]), 3),
                "rest_sd_uv": round(float(0.15 * model.noise_uv[j]), 3),
                "mvc_uv": round(float(0.8 * model.mvc_uv[j]), 2)} for j, ch in enumerate(chans)}
    acts = s.activations
    reps: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for e in s.events:
        events.append({"type": "synkinesis", "channel": e.channel, "trigger": e.trigger,
                       "exercise": e.exercise, "onset_s": round(e.start / fs, 3),
                       "offset_s": round(e.stop / fs, 3), "alert_s": round(e.start / fs + 0.06, 3),
                       "peak_pct_mvc": round(e.peak_pct, 1)})
    sym: dict[tuple[str, str], dict[str, list[float]]] = {}
    for cue in s.cues:
        if cue.text not in EXERCISES:
            continue
        code = EXERCISES[cue.text].targets[0]
        for side in ("L", "R"):
            target = f"{side}-{code}"
            if target not in chans:
                continue
            a = [x for x in acts if x.channel == target and x.kind == "voluntary"
                 and cue.start <= x.start < cue.stop]
            peak = a[0].level_pct + float(rng.normal(0, 2)) if a else 0.0
            intr = [x for x in acts if x.kind == "synkinesis" and x.channel[:1] == side
                    and cue.start <= x.start < cue.stop]
            quiet = [c for c in chans if c[:1] == side and c != target]
            cc = {}
            for q in quiet:
                lvl = max([x.level_pct for x in intr if x.channel == q], default=3.0)
                cc[q] = round(200.0 * min(lvl, peak) / (lvl + peak) if peak + lvl > 0 else 0.0, 1)
            worst = max([x.level_pct for x in intr], default=3.0)
            in_band = (a[0].stop - a[0].start) / fs if a and BAND[0] <= a[0].level_pct <= BAND[1] else 0.0
            reps.append({
                "exercise": cue.text, "side": side, "onset_s": round(cue.start / fs, 3),
                "offset_s": round(cue.stop / fs, 3), "target": target,
                "target_peak_pct_mvc": round(peak, 1), "time_in_band_s": round(in_band, 2),
                "isolation": round(max(0.0, 1.0 - worst / max(peak, 1.0)), 3),
                "cocontraction": cc, "synkinesis": bool(intr),
            })
            sym.setdefault((cue.text, code), {}).setdefault(side, []).append(peak)
    aff = src.params.affected_side
    symmetry = []
    for (ex, code), by_side in sym.items():
        if len(by_side) == 2:
            a_ = float(np.mean(by_side[aff]))
            u_ = float(np.mean(by_side["R" if aff == "L" else "L"]))
            symmetry.append({"exercise": ex, "region": code, "affected_pct_mvc": round(a_, 1),
                             "unaffected_pct_mvc": round(u_, 1), "ratio": round(a_ / u_, 3)})
    return {"fs": fs, "channels": chans, "calibration": cal, "reps": reps, "events": events,
            "symmetry": symmetry}


def make_source(seed: int = 0, synkinesis_prob: float | None = None, duration: float = 150.0,
                channels: tuple[str, ...] | None = None,
                scenario: str = "session") -> SimulatedSource:
    """The simulated board of a clinic session."""
    p = ModelParams(synkinesis_prob=synkinesis_prob)
    if channels is not None:
        p = replace(p, channels=channels)
    return SimulatedSource(scenario, duration, seed, speed=None, params=p)


def make_session(seed: int = 0, synkinesis_prob: float | None = None, duration: float = 150.0,
                 patient: str = "P001", day: int = 0, with_signal: bool = True,
                 channels: tuple[str, ...] | None = None) -> SessionInput:
    """A simulated, analysed clinic session of patient ``patient`` on day ``day`` (in memory)."""
    src = make_source(seed, synkinesis_prob, duration, channels)
    p = src.params
    chunk = recording_from_chunk(src.read_all(), "sim.edf", SIM_RANGE_UV) if with_signal else None
    return SessionInput(
        patient_id=patient,
        recorded_at=datetime(2025, 1, 6, 9, 30) + timedelta(days=day),
        source=f"{patient}-day{day:03d}.edf",
        analysis=analysis_from_truth(src, seed),
        affected_side=p.affected_side,
        program="smile-eye-pucker-brow",
        signal=chunk,
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
    from emgfeedback.dsp.chain import Processed
    from emgfeedback.io.edf import Recorder, grid_for

    start = start or session_start()
    grid = grid_for(src.info)
    rec = Recorder(path, src.info, patient=patient, grid=grid, start_time=start,
                   sidecar={"patient": patient, "started": start.isoformat(), "simulated": True,
                            **sidecar})
    with src:
        chunk = src.read_all()
    raw = grid.quantise(chunk.data)
    rec.feed(Processed(chunk.start, chunk.fs, chunk.channels, raw, raw, raw, None,  # type: ignore[arg-type]
                       chunk.status, chunk.markers))
    rec.close()
