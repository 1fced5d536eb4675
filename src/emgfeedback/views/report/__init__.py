"""Session report: one self-contained HTML file (and a PDF) a therapist can keep and share.

``emgfeedback report SESSION.edf [--out report.html] [--pdf] [--db history.sqlite]`` builds it
from the recording and the JSON of ``analyze``.  The package, by job:

* :mod:`.load`: session input (recording, sidecar, analysis -> ``SessionInput``), the session's
  identity and content hash;
* :mod:`.model`: what is shown (tables, plain-language summary, figures), computed once;
* :mod:`.figures`: the matplotlib figures;
* :mod:`.placement`: the electrode placement figure (SVG, and its PNG for the PDF);
* :mod:`.html` and :mod:`.pdf`: the two renderings of the same :class:`~.model.Report`.

Contents, in order: header (patient, date, recording, where the analysis came from), the
training-aid statement, a plain-language summary, the comparison with the patient's previous
session and trend (from the history), the therapist's notes and grading, montage with the
placement figure, signal quality at rest, calibration, per-exercise summary, figures (envelopes
in %MVC, reps overlaid, per-rep bars, symmetry) and the full rep table (one rep per cue, its
sides under it).

Report building runs in the calling thread; it never imports Qt.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emgfeedback.views.report.load import (
    analyse_recording,
    analysis_of,
    close_session,
    content_id,
    load_session,
    recording_from_chunk,
    recording_identity,
    session_from_recording,
)
from emgfeedback.views.summary import PLACEMENT_ENV, HistoryContext, SessionInput

if TYPE_CHECKING:
    from emgfeedback.config import DspConfig
    from emgfeedback.views.report.html import render_html
    from emgfeedback.views.report.model import (
        TRAINING_AID,
        Report,
        SignalScan,
        build_report,
        envelopes_pct,
    )
    from emgfeedback.views.report.pdf import write_pdf
    from emgfeedback.views.report.placement import placement_png, placement_svg

#: Names of the drawing side, imported on first use (they import matplotlib: opening a session,
#: as the history does, and starting the report's pass over the signal need none of it).
_LAZY = {"render_html": "html", "TRAINING_AID": "model", "Report": "model",
         "SignalScan": "model", "build_report": "model", "envelopes_pct": "model",
         "placement_svg": "placement", "placement_png": "placement", "write_pdf": "pdf"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PLACEMENT_ENV",
    "TRAINING_AID",
    "Report",
    "SignalScan",
    "analyse_recording",
    "analysis_of",
    "close_session",
    "build_report",
    "content_id",
    "envelopes_pct",
    "load_session",
    "placement_png",
    "placement_svg",
    "recording_from_chunk",
    "recording_identity",
    "render_html",
    "session_from_recording",
    "write_pdf",
    "write_report",
]

log = logging.getLogger(__name__)


def write_report(session: SessionInput, out: Path, pdf: Path | None = None,
                 cfg: DspConfig | None = None, history: HistoryContext | None = None,
                 workers: int = 1) -> Report:
    """Build the report of ``session`` and write ``out`` (HTML) and, if given, ``pdf``.

    ``history``: the comparison with earlier sessions
    (:func:`emgfeedback.views.history.progress.context_for`).  ``workers``: 2 draws some
    figures in a second process (a ``fork`` of this one, Linux; ``report`` does, a window's
    process does not: see :func:`.model.build_report`).  The PDF is written first (its pages
    drawn while the second process still draws its figures), then the HTML.  Files are
    written to a temporary name and renamed, so a failure never leaves a half report over an
    earlier one.
    """
    from emgfeedback.views.report.placement import placement_svg, start_placement_png

    if pdf is not None:  # the PDF's placement figure rasterised (rsvg-convert, a process of
        # its own) while the drawing side is imported on this core and the report is built
        start_placement_png(placement_svg())
    from emgfeedback.validate import write_private
    from emgfeedback.views.report import figures
    from emgfeedback.views.report.html import render_html
    from emgfeedback.views.report.model import build_report
    from emgfeedback.views.report.pdf import write_pdf
    # with a PDF, the second process's figures are awaited only when the PDF's pages are drawn
    report = build_report(session, cfg, history=history, workers=workers,
                          pending=pdf is not None)
    try:
        if pdf is not None:  # first: the HTML's last PNGs are encoded while its pages are drawn
            write_pdf(report, Path(pdf))
        figures.settle([f for _k, _c, f in report.figures])
        text = render_html(report)
    finally:
        figures.cancel([f for _k, _c, f in report.figures])  # (nothing when they are in)
    # a figure the second process failed to draw, drawn here: the report keeps that one
    report.figures = [(k, c, figures.settled(f)) for k, c, f in report.figures]
    write_private(Path(out), text)  # 0600, atomic: never half a report over an earlier one
    log.info("report of %s written to %s", session.source, out)
    return report
