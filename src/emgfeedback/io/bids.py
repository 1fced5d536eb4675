"""BIDS-EMG export (the EMG modality of the BIDS specification, BEP042, in BIDS since 1.11).

:func:`export_bids` writes recorded sessions as a BIDS dataset::

    DIR/dataset_description.json
    DIR/participants.tsv + participants.json     pseudonymous ids and affected side only
    DIR/README
    DIR/sub-<id>/ses-<n>/sub-<id>_ses-<n>_scans.tsv
    DIR/sub-<id>/ses-<n>/emg/sub-<id>_ses-<n>_task-<task>_emg.edf    EDF+ (annotations kept)
                                                    ..._emg.json      recording sidecar
                                                    ..._channels.tsv  channel, muscle, site
                                                    ..._events.tsv    annotations, reps, events
                                                    ..._events.json   column descriptions

``<id>`` is the pseudonymous patient id without its non-alphanumeric characters (``P-0001`` ->
``sub-P0001``; BIDS labels are alphanumeric), ``<n>`` the session's rank for that patient in time
order (``ses-01`` ...), ``<task>`` ``facialnmr`` (one task: the neuromuscular retraining session).

The events TSV holds the recording's own annotations (``rest``, ``mvc L-ZYG``, exercise cues,
``marker``; ``origin = annotation``) and, from the analysis JSON the caller passes in, every rep
(``trial_type = rep <exercise> <side>``) and every detected event (``synkinesis L-OOC``, ``blink
...``; ``origin = analyze``).  :func:`read_events_tsv` reads the annotation rows back as markers,
so a BIDS recording (or any file with a ``<stem>_events.tsv`` beside it) replays with its
protocol.  This module imports nothing of the clinical layer: the CLI passes the analysis as a
dict and the electrode placement texts as strings.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import emgfeedback
from emgfeedback.errors import ConfigError, FileFormatError
from emgfeedback.io.edf import validate_patient_id, write_edf
from emgfeedback.recording import Recording
from emgfeedback.stream import Marker

__all__ = ["BIDS_VERSION", "BidsSession", "events_path_for", "export_bids", "read_events_tsv",
           "subject_label", "write_events_tsv"]

BIDS_VERSION = "1.11.0"
TASK = "facialnmr"
EVENT_COLUMNS = ("onset", "duration", "trial_type", "origin", "channel", "exercise", "side",
                 "rep", "peak_pct_mvc")


@dataclass
class BidsSession:
    """One session to export.

    Attributes
    ----------
    recording:
        The opened recording (its sidecar must name the patient and start; see
        :mod:`emgfeedback.io.identity` for files of other tools).
    analysis:
        The JSON of ``emgfeedback analyze`` of it (``reps``, ``events``, ``mains_hz``), or
        ``None`` (then only the annotations go into the events).
    placement:
        Channel label -> ``(target muscle, electrode site)`` texts for ``channels.tsv``.
    """

    recording: Recording
    analysis: Mapping[str, Any] | None = None
    placement: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def subject_label(patient: str) -> str:
    """BIDS subject label of a pseudonymous id: its letters and digits (``P-0001`` -> ``P0001``).

    The id must pass the patient-id rule first: a name is never written."""
    validate_patient_id(patient)
    return re.sub(r"[^A-Za-z0-9]", "", patient)


def _tsv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)) or v == "":
            return "n/a"
        if isinstance(v, float):
            return f"{v:.6g}" if abs(v) < 1e6 else f"{v:.6f}"
        return str(v).replace("\t", " ").replace("\n", " ")

    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            f.write("\t".join(cell(v) for v in r) + "\n")


def _json(path: Path, doc: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def events_rows(rec: Recording, analysis: Mapping[str, Any] | None) -> list[list[Any]]:
    """Rows of ``events.tsv`` (columns :data:`EVENT_COLUMNS`), sorted by onset."""
    fs = rec.fs
    rows: list[list[Any]] = []
    for m in rec.markers:
        rows.append([m.sample / fs, m.duration / fs, m.text, "annotation", None, None, None,
                     None, None])
    for g0, glen in rec.gaps:
        rows.append([g0 / fs, glen / fs, "gap", "annotation", None, None, None, None, None])
    if analysis:
        for r in analysis.get("reps") or []:
            on, off = float(r["onset_s"]), float(r["offset_s"])
            rows.append([on, off - on, f"rep {r['exercise']} {r['side']}", "analyze", None,
                         r["exercise"], r["side"], r.get("rep"), r.get("target_peak_pct_mvc")])
        for e in analysis.get("events") or []:
            on = float(e["onset_s"])
            off = e.get("offset_s")
            dur = (float(off) - on) if off is not None else 0.0
            kind = e.get("type") or "synkinesis"
            rows.append([on, dur, f"{kind} {e['channel']}", "analyze", e["channel"],
                         e.get("exercise"), str(e["channel"])[:1], e.get("rep"),
                         e.get("peak_pct_mvc")])
    rows.sort(key=lambda r: (r[0], r[3] != "annotation"))
    return rows


EVENTS_JSON: dict[str, Any] = {
    "onset": {"Description": "Onset from the first sample of the recording", "Units": "s"},
    "duration": {"Description": "Duration (0 for an instant)", "Units": "s"},
    "trial_type": {"Description": "What happened: the recording's annotation (rest, mvc "
                   "<side>-<code>, exercise cue, marker, gap), 'rep <exercise> <side>' for a "
                   "repetition found by emgfeedback analyze, or '<type> <side>-<code>' for an event "
                   "it detected (synkinesis, blink, artefact) on that channel"},
    "origin": {"Description": "Where the row comes from",
               "Levels": {"annotation": "annotation stored in the recording",
                          "analyze": "result of 'emgfeedback analyze' of the recording"}},
    "channel": {"Description": "Channel of a detected event (<side>-<code>, channels.tsv)"},
    "exercise": {"Description": "Exercise of the rep or the event"},
    "side": {"Description": "Face side: L or R"},
    "rep": {"Description": "Rep number within the exercise"},
    "peak_pct_mvc": {"Description": "Peak envelope of the rep's target muscle (reps) or of the "
                     "channel (events), in percent of its calibrated maximum voluntary "
                     "contraction", "Units": "%"},
}


def write_events_tsv(path: Path | str, rec: Recording,
                     analysis: Mapping[str, Any] | None = None) -> Path:
    """``events.tsv`` (and its ``.json`` column descriptions) of a recording and its analysis."""
    path = Path(path)
    _tsv(path, EVENT_COLUMNS, events_rows(rec, analysis))
    _json(path.with_suffix(".json"), EVENTS_JSON)
    return path


def events_path_for(path: Path | str) -> Path | None:
    """The BIDS events file beside a recording (``<stem>_events.tsv``, with a trailing ``_emg``
    of the stem dropped, as BIDS names them), or ``None``."""
    path = Path(path)
    stem = path.stem
    for s in (stem[:-4] if stem.endswith("_emg") else None, stem):
        if s:
            p = path.with_name(f"{s}_events.tsv")
            if p.is_file():
                return p
    return None


def read_events_tsv(path: Path | str, fs: float) -> list[Marker]:
    """The annotation rows of an ``events.tsv`` as markers (rows of ``origin = analyze`` are
    results, not protocol: they are left out; ``gap`` rows too, gaps are the file's own)."""
    path = Path(path)
    out: list[Marker] = []
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            if not reader.fieldnames or not {"onset", "duration"} <= set(reader.fieldnames):
                raise FileFormatError(f"{path}: line 1: an events.tsv needs 'onset' and "
                                      "'duration' columns")
            for i, row in enumerate(reader, start=2):
                if row.get("origin", "annotation") not in ("annotation", "n/a", "", None):
                    continue
                text = (row.get("trial_type") or row.get("value") or "").strip()
                if not text or text in ("n/a", "gap"):
                    continue
                try:
                    onset = float(row["onset"])
                    dur = 0.0 if row["duration"] in ("n/a", "") else float(row["duration"])
                except (TypeError, ValueError):
                    raise FileFormatError(f"{path}: line {i}: onset/duration is not a "
                                          "number") from None
                if not (math.isfinite(onset) and math.isfinite(dur)) or onset < 0 or dur < 0:
                    raise FileFormatError(f"{path}: line {i}: onset/duration out of range")
                out.append(Marker(int(round(onset * fs)), int(round(dur * fs)), text))
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return sorted(out, key=lambda m: m.sample)


def _started(rec: Recording) -> _dt.datetime | None:
    s = rec.sidecar.get("started") or rec.sidecar.get("start")
    try:
        return _dt.datetime.fromisoformat(str(s)).replace(tzinfo=None) if s else None
    except ValueError:
        return None


def _emg_json(rec: Recording, analysis: Mapping[str, Any] | None, task: str) -> dict[str, Any]:
    info = rec.source_info()
    mains = (analysis or {}).get("mains_hz")
    return {
        "TaskName": task,
        "TaskDescription": "Facial neuromuscular retraining with surface-EMG biofeedback: rest and "
                           "maximum voluntary contraction calibration per region, then exercise "
                           "repetitions (see events.tsv)",
        "SamplingFrequency": rec.fs,
        "PowerLineFrequency": mains if mains in (50, 60) else "n/a",
        "SoftwareFilters": "n/a",
        "RecordingType": "continuous",
        "RecordingDuration": round(rec.duration_s, 3),
        "EMGChannelCount": len(rec.channels),
        "EMGReference": "bipolar: each channel is the difference of two surface electrodes about "
                        "1 cm apart along the muscle fibres (channels.tsv)",
        "EMGGround": "reference/bias electrode on the forehead centre or the mastoid",
        "EMGPlacementScheme": "ChannelSpecific",
        "EMGPlacementSchemeDescription": "Facial sites after Fridlund & Cacioppo (1986); each "
                                         "channel's site is in channels.tsv "
                                         "(placement_description)",
        "Manufacturer": info.board or rec.format or "n/a",
        "SoftwareVersions": f"emgfeedback {emgfeedback.__version__}",
        "ElectrodeMaterial": "Ag/AgCl",
    }


def export_bids(sessions: Sequence[BidsSession], out: Path | str, *,
                task: str = TASK, overwrite: bool = False) -> list[Path]:
    """Write ``sessions`` as a BIDS-EMG dataset under ``out``; returns the EDF files written.

    Raises
    ------
    ConfigError
        A session without a valid pseudonymous patient id, ``out`` not empty without
        ``overwrite``, or two sessions of one patient at the same start time.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} is not empty: choose a new folder (or --overwrite)")
    if not re.fullmatch(r"[A-Za-z0-9]+", task):
        raise ConfigError(f"BIDS task label {task!r} must be letters and digits")
    by_sub: dict[str, list[tuple[_dt.datetime | None, BidsSession]]] = {}
    sides: dict[str, str] = {}
    for s in sessions:
        pid = s.recording.sidecar.get("patient")
        if not pid:
            raise ConfigError(f"{s.recording.path}: no pseudonymous patient id in the recording: "
                              "give --patient ID")
        sub = subject_label(str(pid))
        by_sub.setdefault(sub, []).append((_started(s.recording), s))
        side = s.recording.sidecar.get("affected_side") or (s.analysis or {}).get("affected_side")
        if side:
            sides[sub] = str(side)
    out.mkdir(parents=True, exist_ok=True)
    _json(out / "dataset_description.json", {
        "Name": "emgfeedback facial sEMG biofeedback sessions",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "raw",
        "GeneratedBy": [{"Name": "emgfeedback", "Version": emgfeedback.__version__,
                         "Description": "emgfeedback export-bids"}],
    })
    (out / "README").write_text(
        "Facial surface-EMG sessions (synkinesis retraining) exported by emgfeedback "
        "export-bids.\nSubjects are pseudonymous ids; no names or birth dates are stored.\n",
        encoding="utf-8")
    _tsv(out / "participants.tsv", ("participant_id", "affected_side"),
         [[f"sub-{sub}", sides.get(sub)] for sub in sorted(by_sub)])
    _json(out / "participants.json", {
        "participant_id": {"Description": "Pseudonymous patient id (letters and digits only)"},
        "affected_side": {"Description": "Side of the facial paralysis",
                          "Levels": {"L": "left", "R": "right"}},
    })
    written: list[Path] = []
    for sub, items in sorted(by_sub.items()):
        items.sort(key=lambda t: (t[0] is None, t[0] or _dt.datetime.min))
        starts = [t for t, _ in items if t is not None]
        if len(set(starts)) != len(starts):
            raise ConfigError(f"two sessions of sub-{sub} start at the same time: give each "
                              "recording once")
        for k, (start, s) in enumerate(items, start=1):
            ses = f"{k:02d}"
            base = out / f"sub-{sub}" / f"ses-{ses}"
            emg = base / "emg"
            emg.mkdir(parents=True, exist_ok=True)
            stem = f"sub-{sub}_ses-{ses}_task-{task}"
            edf = emg / f"{stem}_emg.edf"
            rec = s.recording
            write_edf(rec, edf, patient=str(rec.sidecar["patient"]))
            _json(emg / f"{stem}_emg.json", _emg_json(rec, s.analysis, task))
            rows = []
            for label in rec.channels:
                muscle, site = s.placement.get(label, ("", ""))
                rows.append([label, "EMG", "uV", muscle or None, site or None, "bipolar",
                             "good"])
            _tsv(emg / f"{stem}_channels.tsv",
                 ("name", "type", "units", "target_muscle", "placement_description",
                  "reference", "status"), rows)
            write_events_tsv(emg / f"{stem}_events.tsv", rec, s.analysis)
            _tsv(base / f"sub-{sub}_ses-{ses}_scans.tsv", ("filename", "acq_time"),
                 [[f"emg/{edf.name}", start.isoformat(timespec="seconds") if start else None]])
            written.append(edf)
    return written
