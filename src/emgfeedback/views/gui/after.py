"""After a recorded session: analysis, patient history and report (no Qt).

When the session thread has closed a recording, the window calls :func:`analyse_and_store` in a
helper thread: it runs the clinical analysis (``emgfeedback analyze``) on the EDF+ file, keeps its
JSON beside the recording (``<name>-analysis.json``) and stores the session in the patient
history (:func:`emgfeedback.views.history.store_session`).  The Summary screen's report button
then calls :func:`write_session_report` (also in a helper thread), which writes
``<name>-report.html`` from the recording and that JSON (:func:`emgfeedback.views.report.write_report`).

Threads: every function here runs in a helper thread (file I/O, seconds of work); none touches
Qt or the live session.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emgfeedback.clinical.exercises import Program
from emgfeedback.config import Config
from emgfeedback.io.edf.sidecar import analysis_path
from emgfeedback.validate import write_private

__all__ = [
    "Stored",
    "analysis_available",
    "analysis_path",
    "analyse",
    "analyse_and_store",
    "report_path",
    "session_input",
    "write_session_report",
]

log = logging.getLogger(__name__)


def analysis_available() -> bool:
    """Whether this build has the clinical analysis (``emgfeedback.clinical.analysis``)."""
    try:
        return importlib.util.find_spec("emgfeedback.clinical.analysis") is not None
    except ImportError:
        return False


def report_path(recording: Path) -> Path:
    """``<name>-report.html`` beside the recording."""
    return recording.with_name(recording.stem + "-report.html")


@dataclass(frozen=True)
class Stored:
    """What :func:`analyse_and_store` did."""

    recording: Path
    analysis: Path
    session_id: int | None  # None: the history already had this session
    n_reps: int  # reps (a rep recorded on both sides counts once)
    n_events: int

    def describe(self) -> str:
        where = (f"stored in the patient history as session {self.session_id}"
                 if self.session_id is not None else "already in the patient history")
        return (f"Analysed: {self.n_reps} reps, {self.n_events} synkinesis "
                f"event{'s' if self.n_events != 1 else ''}; {where}. "
                f"Analysis: {self.analysis.name}")


def analyse(recording: Path, program: Program | None = None, config: Config | None = None,
            affected_side: str | None = None, bins: list[Any] | None = None) -> Any:
    """``emgfeedback analyze`` on ``recording`` with the session's program and affected side:
    an :class:`~emgfeedback.clinical.analysis.Analysis` (helper thread).  ``bins`` receives
    ``(recording, envelope bins, content id)`` of the analysis' pass, the report's envelopes
    (with the default chain only: the report's own)."""
    from emgfeedback.app.analyze import analyze, load_for_analysis
    from emgfeedback.clinical.montage import Montage
    from emgfeedback.config import DspConfig
    from emgfeedback.views.report.bins import BinsCollector

    rec = load_for_analysis(recording)
    try:
        montage = Montage.from_labels(rec.channels, affected_side)
        collect = (BinsCollector(rec) if bins is not None
                   and (config is None or config.dsp == DspConfig()) else None)
        result = analyze(rec, montage, program, config=config, observe=collect)
        if bins is not None and collect is not None and collect.last is not None:
            from emgfeedback.views.report.load import content_id

            bins.append((rec, collect.last, content_id(rec)))
        return result
    finally:
        rec.close()


def session_input(recording: Path, analysis: dict[str, Any], keep_signal: bool = False) -> Any:
    """A :class:`~emgfeedback.views.summary.SessionInput` for the history and the report: the
    recording with its sidecar (patient id, start, program, affected side written by
    :class:`emgfeedback.io.edf.recorder.Recorder`) and the analysis already made.  With ``keep_signal``
    the recording stays open in ``SessionInput.signal`` for the report's plots (close it after
    use); otherwise it is closed at once."""
    from emgfeedback.views.report import load_session

    return load_session(recording, analysis, keep_signal=keep_signal)


def analyse_and_store(recording: Path, program: Program | None = None, db: Path | None = None,
                      config: Config | None = None, meta: dict[str, Any] | None = None) -> Stored:
    """Analyse ``recording``, keep the analysis JSON, store the session in the history."""
    from emgfeedback.views.history import store_session

    bins: list[Any] = []
    result = analyse(recording, program, config, (meta or {}).get("affected_side"),
                     bins).to_json()
    result["origin"] = "session"  # written when the session stopped (views.report.load)
    out = analysis_path(recording)
    write_private(out, json.dumps(result, indent=1, allow_nan=False))  # patient data: 0600
    if bins:  # the report's envelopes, saved with the analysis (a cache: never an error here)
        from emgfeedback.views.report.bins import save_with_analysis

        rec, env, cid = bins[-1]
        save_with_analysis(out, rec, env, lambda _rec: cid)
    sid = store_session(session_input(recording, result), db, recording)
    return Stored(recording, out, sid, len({r["rep"] for r in result.get("reps", [])}),
                  len(result.get("events", [])))


def write_session_report(recording: Path, program: Program | None = None,
                         config: Config | None = None, meta: dict[str, Any] | None = None) -> Path:
    """Write ``<name>-report.html`` from the recording and its analysis JSON; returns its path."""
    from emgfeedback.config import DspConfig
    from emgfeedback.views.report import close_session, load_session, write_report

    a = analysis_path(recording)
    if a.is_file() and (config is None or config.dsp == DspConfig()):
        # the analysis read from its file, so the report's envelopes saved beside it (the
        # default chain's) are used: no pass over the signal
        session = load_session(recording, a, keep_signal=True, prefetch=True)
    else:
        analysis = (json.loads(a.read_text(encoding="utf-8")) if a.is_file()
                    else analyse(recording, program, config,
                                 (meta or {}).get("affected_side")).to_json())
        session = session_input(recording, analysis, keep_signal=True)
    out = report_path(recording)
    try:
        write_report(session, out, cfg=config.dsp if config is not None else None)
    finally:
        close_session(session)
    return out
