"""Session input of a report: the recording, its sidecar and its analysis, as a SessionInput.

What identifies a session (:func:`recording_identity`: patient, start, file name; and
:func:`content_id`: a hash of the signal, so a copied or renamed file is the same session), the
metadata of the recorder's JSON sidecar (montage, program, affected side, the therapist's notes
and grading under ``"clinician"``), and the analysis: a JSON given by the caller, the one saved
beside the recording, or ``analyze`` run here (:func:`analysis_of`), with a note saying truly
where it came from.

Nothing here draws; the history (:mod:`emgfeedback.views.history`) reads sessions with the same
functions.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.errors import FileFormatError
from emgfeedback.io.edf.reader import EdfRecording, read_identity
from emgfeedback.io.edf.sidecar import analysis_path, report_data_path, sidecar_affected_side
from emgfeedback.recording import ArrayRecording, Recording
from emgfeedback.stream import Chunk
from emgfeedback.vocabulary import short_label
from emgfeedback.views.report.bins import (
    EnvelopeBins,
    SignalPass,
    bins_for,
    load_report_data,
)
from emgfeedback.views.summary import SessionInput, clinician_fields, json_ready

__all__ = [
    "ANALYSIS_ORIGIN_SESSION",
    "analyse_recording",
    "analysis_of",
    "EDF_ID_PREFIX",
    "SAMPLES_ID_PREFIX",
    "close_session",
    "content_id",
    "load_session",
    "recording_from_chunk",
    "recording_identity",
    "samples_content_id",
    "session_from_recording",
]

log = logging.getLogger(__name__)

#: ``"origin"`` of an analysis JSON the window wrote when the recorded session stopped
#: (``views.gui.after.analyse_and_store``); any other analysis was made by ``analyze``.
ANALYSIS_ORIGIN_SESSION = "session"


def recording_from_chunk(chunk: Chunk, name: str = "live",
                         rails_uv: tuple[float, float] | None = None,
                         sidecar: Mapping[str, Any] | None = None) -> Recording:
    """An in-memory :class:`~emgfeedback.recording.Recording` of one chunk (a live session
    kept in memory, tests); sample indices and markers become relative to ``chunk.start``.

    ``sidecar`` holds the metadata a recorder would write (``patient``, ``started``, ...), for
    :func:`session_from_recording`.
    """
    from emgfeedback.stream import Marker

    markers = [Marker(m.sample - chunk.start, m.duration, m.text) for m in chunk.markers]
    return ArrayRecording(path=Path(name), format="memory", fs=chunk.fs,
                          channels=tuple(chunk.channels), n_samples=len(chunk), markers=markers,
                          sidecar=dict(sidecar or {}), rails_uv=rails_uv,
                          data=np.asarray(chunk.data, dtype=np.float64))


#: Prefix of the content id of an EDF/BDF recording: XXH3-128 of its data records as stored.
EDF_ID_PREFIX = "edf-xxh3-128:"
#: Prefix of the content id computed from the samples in µV: other formats, and EDF/BDF files
#: stored in a history before schema 3 (:func:`samples_content_id`).
SAMPLES_ID_PREFIX = "sha256:"


def content_id(rec: Recording, block_s: float = 10.0) -> str:
    """A hash of what was recorded, naming the session by its content, so a copied or renamed
    file is the same session in the history; the file name, the sidecar and the start time do
    not enter it.

    For an EDF/BDF file: the 128-bit XXH3 hash (``xxhash``) of the rate, channel labels,
    annotations, each channel's digital and physical range and unit, and the data records as
    stored (every 16- or 24-bit code, read in blocks without converting a sample:
    ``edf-xxh3-128:``).  XXH3 reads 62 MB (30 minutes of 8 channels at 2 kHz) in about 10 ms
    where SHA-256 takes 45 ms (issue 13: ``history import`` <= 0.1 s per session); a hash to
    recognise a copied file, not a signature (an accidental collision of two recordings has a
    probability of 2^-128 per pair).  Any other recording: :func:`samples_content_id`.
    """
    if not isinstance(rec, EdfRecording):
        return samples_content_id(rec, block_s)
    import xxhash

    h = xxhash.xxh3_128(_id_head(rec))
    h.update(f"|{rec.format}|{rec.record_bytes}|{rec.samples_per_record}".encode())
    for g, unit in zip(rec.grids, rec.header["units"]):
        h.update(f"|{g.dmin}:{g.dmax}:{g.pmin!r}:{g.pmax!r}:{unit}".encode())
    for block in rec.raw_blocks():
        h.update(block)
    return EDF_ID_PREFIX + h.hexdigest()


def samples_content_id(rec: Recording, block_s: float = 10.0) -> str:
    """SHA-256 of the rate, channel labels, annotations and every sample (µV as float32, NaN in
    gaps), read in ``block_s`` blocks (``sha256:``): the content id of a recording in any format
    but EDF/BDF, and the one the history stored for EDF/BDF files before schema 3 (still
    recognised: :mod:`emgfeedback.views.history.importer`)."""
    h = hashlib.sha256(_id_head(rec))
    step = max(1, int(block_s * rec.fs))
    for s in range(0, rec.n_samples, step):
        h.update(rec.read_f32(s, min(rec.n_samples, s + step)).data)
    return SAMPLES_ID_PREFIX + h.hexdigest()


def _id_head(rec: Recording) -> bytes:
    head = f"{rec.fs:.6f}|{'|'.join(rec.channels)}|{rec.n_samples}"
    return (head + "".join(f"|{m.sample}:{m.duration}:{m.text}" for m in rec.markers)).encode()


def _wall_clock(text: str) -> _dt.datetime:
    """An ISO 8601 time as the local wall-clock time it names (any UTC offset dropped: sessions
    are compared in the time of the clinic that recorded them, as the EDF header stores it)."""
    return _dt.datetime.fromisoformat(text).replace(tzinfo=None, microsecond=0)


def recording_identity(rec: Recording) -> tuple[str, _dt.datetime, str]:
    """``(patient_id, recorded_at, source)`` of a recording: what identifies a session in the
    history, known before any analysis (a copy under another name is recognised by
    :func:`content_id`).

    The patient id is the sidecar's ``patient``, else the first subfield of the EDF patient
    field; the start is the sidecar's ``started`` (ISO 8601, as local wall-clock time), else the
    EDF header's start date and time; the source is the file name.

    Raises
    ------
    FileFormatError
        No pseudonymous patient id anywhere, or no readable start time.
    """
    meta: Mapping[str, Any] = rec.sidecar or {}
    path = Path(rec.path)
    head_patient, head_start = read_identity(path) if path.is_file() else ("", None)
    pid = meta.get("patient") or head_patient
    if not pid:
        raise FileFormatError(f"{path}: no pseudonymous patient id in the recording (sidecar "
                              "'patient' or EDF patient field); record with --patient ID")
    started = meta.get("started") or meta.get("start")
    try:
        recorded_at = _wall_clock(str(started)) if started else head_start
    except ValueError:
        raise FileFormatError(f"{path}: sidecar start time {started!r} is not ISO 8601") from None
    if recorded_at is None:
        raise FileFormatError(f"{path}: no start time in the sidecar or the EDF header")
    return str(pid), recorded_at, path.name


def session_from_recording(rec: Recording, analysis: Mapping[str, Any],
                           keep_signal: bool = True, analysis_note: str = "",
                           digest: str | None = None) -> SessionInput:
    """A :class:`SessionInput` from an opened recording and its analysis.

    Metadata come from the recording's JSON sidecar as :class:`emgfeedback.io.edf.Recorder`
    writes it (:func:`recording_identity` for the patient id and start): ``montage`` (label ->
    ``{"side", "region", "muscle", "site"}``), ``program`` (a name or ``{"name": ...}``),
    ``status``, ``simulated``, ``clinician`` (``{"notes", "house_brackmann",
    "sunnybrook_synkinesis"}``, entered by the therapist in the window) and the affected side:
    the analysis' own (its symmetry and affected-side metrics are defined by it), else
    :func:`sidecar_affected_side`.  ``digest`` is the :func:`content_id` when known (computed
    here otherwise).

    Raises
    ------
    FileFormatError
        No pseudonymous patient id anywhere, or an unreadable start time.
    """
    meta: Mapping[str, Any] = rec.sidecar or {}
    pid, recorded_at, source = recording_identity(rec)
    program = meta.get("program") or ""
    if isinstance(program, Mapping):
        program = str(program.get("name", ""))
    program = program or str(analysis.get("program") or "")
    # The analysis' side first: its symmetry ratios and affected-side metrics are defined by it.
    side = str(analysis.get("affected_side") or "") or sidecar_affected_side(meta)
    montage = meta.get("montage") or {}
    sites: dict[str, str] = {}
    if isinstance(montage, Mapping):
        for label, v in montage.items():
            site = v.get("site", "") if isinstance(v, Mapping) else v
            if site:
                sites[short_label(str(label))] = str(site)
    status = str(meta.get("status") or "")
    notes = list(rec.notes)
    if status == "recording" and not any(n.startswith("recovered") for n in notes):
        notes.append("the recording was not closed (status 'recording' in the sidecar)")
    clinician, problems = clinician_fields(meta.get("clinician"))
    notes += [f"sidecar 'clinician': {p}; ignored" for p in problems]
    return SessionInput(
        patient_id=str(pid),
        recorded_at=recorded_at,
        source=source,
        analysis=analysis,
        affected_side=str(side).upper(),
        program=str(program),
        signal=rec if keep_signal else None,
        montage=sites,
        status=status,
        notes=tuple(notes),
        recorded_s=rec.duration_s,
        content_id=digest or content_id(rec),
        simulated=_simulated(meta),
        clinician=clinician,
        analysis_note=analysis_note,
    )


def _simulated(meta: Mapping[str, Any]) -> bool:
    """Whether the sidecar says the signal came from the simulator (``emgfeedback simulate``
    writes ``"simulated": true``; a live recording names the source's board)."""
    source = meta.get("source")
    board = source.get("board") if isinstance(source, Mapping) else None
    return bool(meta.get("simulated")) or (isinstance(board, str)
                                           and "simulat" in board.lower())


def _read_analysis(path: Path) -> dict[str, Any]:
    from emgfeedback.validate import load_json_file

    try:  # regular file, bounded size and depth, no NaN literals
        result = load_json_file(path, "analysis file")
    except FileFormatError as exc:
        raise FileFormatError(f"{exc}: not the JSON of 'emgfeedback analyze'") from None
    except OSError as exc:
        raise FileFormatError(f"{path}: not the JSON of 'emgfeedback analyze' ({exc})") from None
    if not isinstance(result, dict):
        raise FileFormatError(f"{path}: not the JSON of 'emgfeedback analyze' (not an object)")
    return dict(json_ready(result))


def analyse_recording(rec: Recording,
                      collect: list[EnvelopeBins] | None = None) -> dict[str, Any]:
    """``analyze`` of the recording with the default program, the montage from its channel labels
    and the affected side of its sidecar, as JSON (docs/analysis.md).

    ``collect``: a list that receives the report's envelope bins (:mod:`.bins`) of each pass of
    the analysis over the file (the last one has seen the whole file)."""
    from emgfeedback.app.analyze import analyze
    from emgfeedback.clinical.montage import Montage

    side = sidecar_affected_side(rec.sidecar or {})
    montage = Montage.from_labels(rec.channels, side or None)

    def observe() -> EnvelopeBins:
        assert collect is not None
        collect.append(bins_for(rec))
        return collect[-1]

    result = analyze(rec, montage, observe=observe if collect is not None else None)
    return dict(json_ready(result.to_json()))


def _file_date(path: Path) -> str:
    try:
        return _dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d")
    except OSError:
        return "an unknown date"


def origin_note(result: Mapping[str, Any], path: Path | None) -> str:
    """Where an analysis came from, truly: "written by the window when the session stopped"
    only when its JSON says so (``"origin": "session"``); else "analysed by ``emgfeedback
    analyze`` on DATE" (the file's date, or today when analysed just now)."""
    name = f"{path.name}, " if path is not None else ""
    if result.get("origin") == ANALYSIS_ORIGIN_SESSION:
        return f"analysis: {name}written by the window when the session stopped"
    when = _file_date(path) if path is not None else f"{_dt.date.today():%Y-%m-%d}"
    return f"analysis: {name}analysed by 'emgfeedback analyze' on {when}"


def analysis_of(rec: Recording,
                collect: list[EnvelopeBins] | None = None) -> tuple[dict[str, Any], str]:
    """The analysis of a recording and a note for the report saying where it came from.

    The analysis saved beside the recording (:func:`emgfeedback.io.edf.sidecar.analysis_path`)
    when there is one;
    else :func:`analyse_recording` (the default program; ``collect`` as there), with a note, and
    a second one when the sidecar names another program.
    """
    saved = analysis_path(rec.path)
    if saved.is_file():
        result = _read_analysis(saved)
        return result, origin_note(result, saved)
    # (called as before when nothing is collected: the history's path)
    result = analyse_recording(rec) if collect is None else analyse_recording(rec, collect)
    program = (rec.sidecar or {}).get("program")
    name = program.get("name") if isinstance(program, Mapping) else program
    note = origin_note(result, None) + " (default program)"
    if isinstance(name, str) and name and name != result.get("program"):
        note += (f"; analysed with the {result.get('program')!r} program while the session ran "
                 f"{name!r}: run 'emgfeedback analyze --program' and pass --analysis")
    return result, note


def load_session(path: Path, analysis: Path | Mapping[str, Any] | None = None,
                 keep_signal: bool = True,
                 opener: Callable[[Path], Recording] | None = None,
                 prefetch: bool = False) -> SessionInput:
    """Open a recorded session (EDF+/BDF+ with its JSON sidecar) and analyse it.

    Parameters
    ----------
    path:
        The recording; any format :func:`emgfeedback.io.importers.load` reads (files of other
        tools carry no patient id and are refused).
    analysis:
        The JSON of ``emgfeedback analyze`` (a file or a dict) to use; by default
        :func:`analysis_of` (the analysis saved after the session, else ``analyze``).
    keep_signal:
        Keep the recording open in :attr:`SessionInput.signal` for the report's plots; the
        history passes ``False`` (it stores metrics only) and the file is closed at once.
    opener:
        Opens the file (default :func:`emgfeedback.io.importers.load`); the CLI passes one
        that applies the import options and ``--patient``/``--affected-side``
        (:func:`emgfeedback.io.identity.apply_identity`) for files of other tools.
    prefetch:
        For a report about to be made with the default settings: when the analysis was not run
        here (its pass collects the report's envelopes) and no envelopes were saved with it
        (:func:`.bins.load_report_data`), start the report's pass over the signal now, in a
        background thread (:class:`.bins.SignalPass`), so it runs while the caller imports and
        prepares the report (with saved envelopes, its pass over the rest period only, for the
        quality at rest: :meth:`.bins.EnvelopeBins.start_rest_pass`); close the session with
        :func:`close_session`.

    Raises
    ------
    FileFormatError
        The file is not a readable session recording (one line naming the file).
    """
    from emgfeedback.io.importers import load

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such session file")
    rec = (opener or load)(path)
    collect: list[EnvelopeBins] | None = [] if keep_signal else None
    try:
        result: dict[str, Any]
        # the analysis JSON read from a file: the report's envelopes may be saved beside it
        source: Path | None = None
        if isinstance(analysis, (str, Path)):
            source = Path(analysis)
            result = _read_analysis(source)
            note = origin_note(result, source)
        elif analysis is not None:
            result = dict(json_ready(analysis))
            note = origin_note(result, None) if result.get("origin") else ""
        else:
            saved = analysis_path(rec.path)
            source = saved if saved.is_file() else None
            result, note = analysis_of(rec, collect)
        saved_bins = None
        digest = None
        if keep_signal and source is not None and report_data_path(source).is_file():
            digest = content_id(rec)
            try:
                text = source.read_bytes()
            except OSError:
                text = b""
            saved_bins = load_report_data(report_data_path(source), rec, digest, text)
        session = session_from_recording(rec, result, keep_signal, analysis_note=note,
                                         digest=digest)
        if collect:  # the analysis ran here: its pass collected the report's envelopes
            session = replace(session, signal_bins=collect[-1])
        elif saved_bins is not None:  # saved with the analysis: no pass over the signal
            session = replace(session, signal_bins=saved_bins)
            if prefetch:  # only over the rest period, for its quality: started now
                saved_bins.start_rest_pass(rec)
        elif prefetch and keep_signal:
            session = replace(session, signal_bins=SignalPass(rec))
    except BaseException:
        rec.close()
        raise
    if not keep_signal:
        rec.close()
    return session


def close_session(session: SessionInput) -> None:
    """Close the session's recording, once a pass started by ``load_session(prefetch=True)``
    has stopped reading it (stopped at once if the report did not use it: an error or Ctrl-C)."""
    if isinstance(session.signal_bins, SignalPass):
        session.signal_bins.cancel()
        session.signal_bins.wait()
    elif isinstance(session.signal_bins, EnvelopeBins):
        session.signal_bins.wait()  # (its pass over the rest period, when started)
    if session.signal is not None:
        session.signal.close()

