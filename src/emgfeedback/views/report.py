"""Session report: one self-contained HTML file (and a PDF) a therapist can keep and share.

``emgfeedback report SESSION.edf [--out report.html] [--pdf]`` builds it from the recording and the
JSON of ``analyze``.  Contents, in order: pseudonymous patient id and date, montage with the
electrode placement figure, signal quality at rest, calibration values, a per-exercise summary,
plots (envelopes in %MVC with reps and synkinesis events shaded, reps of each exercise overlaid,
per-rep bars, symmetry per exercise) and the full rep table.

Every image is embedded (PNG as a ``data:`` URI, the placement figure as inline SVG), so the file
opens anywhere without the network.  The PDF holds the same figures and tables, one topic per
page (matplotlib's ``PdfPages``: no browser, no TeX).

Report building runs in the calling thread; it never imports Qt.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback import __version__
from emgfeedback.vocabulary import EXERCISES, REST, parse_annotation, parse_label, short_label
from emgfeedback.config import DspConfig, QualityConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.dsp.quality import assess
from emgfeedback.stream import Chunk, Quality, Status, rail_counts
from emgfeedback.errors import ConfigError, EmgError, FileFormatError
from emgfeedback.io.edf.reader import read_identity
from emgfeedback.io.edf.sidecar import analysis_path, sidecar_affected_side
from emgfeedback.recording import ArrayRecording, Recording
from emgfeedback.views import figures
from emgfeedback.views.summary import (
    PLACEMENT_ENV,
    ExerciseMetrics,
    RepRow,
    SessionInput,
    exercise_metrics,
    json_ready,
    placement_svg_path,
    rep_rows,
)

__all__ = [
    "PLACEMENT_ENV",
    "Report",
    "analyse_recording",
    "analysis_of",
    "SignalScan",
    "build_report",
    "envelopes_pct",
    "load_session",
    "placement_svg",
    "recording_from_chunk",
    "recording_identity",
    "render_html",
    "session_from_recording",
    "write_pdf",
    "write_report",
]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class QualityRow:
    channel: str
    rest_rms_uv: float
    mains_uv: float
    clipped_samples: int
    light: str  # green / amber / red
    reason: str


@dataclass
class Report:
    """Everything a report shows, computed once and rendered to HTML and PDF."""

    session: SessionInput
    rows: list[RepRow]
    metrics: list[ExerciseMetrics]
    quality: list[QualityRow]
    lost_samples: int
    figures: list[tuple[str, str, Any]] = field(default_factory=list)  # (key, caption, Figure)
    placement: str | None = None  # inline SVG text


# ----------------------------------------------------------------------------- signal side
@dataclass(frozen=True)
class SignalScan:
    """What a report needs from the raw recording, computed in one pass of bounded memory.

    Attributes
    ----------
    fs:
        Rate of :attr:`envelope_pct` (bins per second; 100 Hz by default).
    envelope_pct:
        ``(bins, channels)`` envelope in %MVC, in the analysis' channel order; the mean over each
        bin; NaN in gaps and for channels the recording lacks (µV for uncalibrated channels).
    rest_quality:
        The chain's quality snapshot at the end of the rest period (the first 10 s without one).
    saturated:
        Samples on the digital rails per channel (analysis order).
    lost_samples:
        Samples lost while recording (the file's gaps).
    """

    fs: float
    envelope_pct: np.ndarray
    rest_quality: Quality
    saturated: np.ndarray
    lost_samples: int


def _rest_end(rec: Recording) -> int:
    rest = [m for m in rec.markers if parse_annotation(m.text).kind == REST]
    cut = rest[0].sample + rest[0].duration if rest else int(10 * rec.fs)
    return max(1, min(rec.n_samples, cut))


def envelopes_pct(session: SessionInput, cfg: DspConfig | None = None, bin_s: float = 0.01,
                  block_s: float = 10.0, qcfg: QualityConfig | None = None) -> SignalScan:
    """Envelopes of the recording in %MVC and its signal quality at rest, read block by block.

    The recording goes through the same causal chain as the live view, stretch by stretch between
    gaps (the chain restarts after each gap, as on replay), ``block_s`` seconds at a time, so a
    one-hour file needs no more memory than its 100 Hz envelope.  %MVC is
    ``100 · (envelope - rest_mean_uv) / mvc_uv`` with the calibration of the analysis
    (docs/analysis.md); channels without calibration stay in µV.  With the default configuration
    this is the chain ``analyze`` replays the file through, so a rep's plotted peak is its
    ``target_peak_pct_mvc`` (less the averaging over 10 ms bins).
    """
    rec = session.signal
    if rec is None:
        raise ConfigError(f"{session.source}: no signal to plot")
    names = [short_label(c) for c in rec.channels]
    nch = len(names)
    chain = Chain(rec.fs, nch, cfg, qcfg, adc_range_uv=rec.rails_uv)
    k = max(1, int(round(bin_s * rec.fs)))
    nbins = -(-rec.n_samples // k)
    acc = np.zeros((nbins, nch))
    cnt = np.zeros(nbins)
    sat = np.zeros(nch, dtype=np.int64)
    cut = _rest_end(rec)
    blk = max(k, int(block_s * rec.fs) // k * k)
    rest_q: Quality | None = None
    last_q: Quality | None = None
    prev = 0
    for a, b in rec.segments():
        s = a
        while s < b:
            e = min(b, s + blk)
            if rest_q is None and s < cut < e:
                e = cut
            x = rec.read(s, e)
            sat += rail_counts(x, rec.rails_uv)
            p = chain.process(Chunk(x, s, rec.fs, rec.channels,
                                    Status(lost_samples=max(0, s - prev))))
            prev = e
            last_q = p.quality
            if rest_q is None and e >= cut:
                rest_q = p.quality
            # mean of the envelope per bin of k samples (bins aligned to the sample index)
            idx = np.arange(s, e) // k
            starts = np.flatnonzero(np.diff(idx)) + 1
            starts = np.concatenate([[0], starts])
            bins = idx[starts]
            acc[bins] += np.add.reduceat(p.envelope, starts, axis=0)
            cnt[bins] += np.diff(np.append(starts, e - s))
            s = e
    if last_q is None:
        raise FileFormatError(f"{session.source}: the recording holds no samples")
    with np.errstate(invalid="ignore", divide="ignore"):
        env = acc / cnt[:, None]
    env[cnt == 0] = np.nan
    cal = session.calibration
    out = np.full((nbins, len(session.channels)), np.nan)
    sat_out = np.zeros(len(session.channels), dtype=np.int64)
    for j, ch in enumerate(session.channels):
        if ch not in names:
            continue
        c = names.index(ch)
        vals = cal.get(ch, {})
        mvc, rest_mean = vals.get("mvc_uv"), vals.get("rest_mean_uv") or 0.0
        out[:, j] = 100.0 * (env[:, c] - rest_mean) / mvc if mvc else env[:, c]
        sat_out[j] = sat[c]
    return SignalScan(rec.fs / k, out, rest_q or last_q, sat_out, int(rec.lost_samples))


def _quality_rows(session: SessionInput, scan: SignalScan,
                  qcfg: QualityConfig | None) -> list[QualityRow]:
    q = scan.rest_quality
    lights = assess(q, qcfg, at_rest=True)
    rec = session.signal
    assert rec is not None
    names = [short_label(c) for c in rec.channels]
    rows = []
    for j, ch in enumerate(session.channels):
        if ch not in names:
            rows.append(QualityRow(ch, float("nan"), float("nan"), 0, "red", "not in the recording"))
            continue
        c = names.index(ch)
        rows.append(QualityRow(ch, float(q.rms_uv[c]), float(q.mains_uv[c]),
                               int(scan.saturated[j]), lights[c][0], lights[c][1]))
    return rows


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


def _quiet_channels(channels: Sequence[str], rows: Sequence[RepRow]) -> dict[str, list[str]]:
    """Target channel -> channels on the same side that the exercise keeps quiet."""
    out: dict[str, list[str]] = {}
    for r in rows:
        if r.target in out or not r.target:
            continue
        ex = EXERCISES.get(r.exercise)
        targets = set(ex.targets) if ex else {r.target[2:]}
        out[r.target] = [c for c in channels if c[:1] == r.target[:1] and c[2:] not in targets]
    return out


# ----------------------------------------------------------------------------- placement figure
def placement_svg() -> str | None:
    """The electrode placement figure as inline SVG text, or ``None`` when it is not installed.

    The file is :func:`emgfeedback.views.summary.placement_svg_path`: ``$EMGFEEDBACK_PLACEMENT_SVG``
    or the package data ``emgfeedback/data/placement.svg`` (the project's only copy).
    """
    path = placement_svg_path()
    if path is None:
        return None
    try:
        return _clean_svg(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("placement figure %s unreadable: %s", path, exc)
        return None


def _clean_svg(text: str) -> str | None:
    """The ``<svg>...</svg>`` element of an SVG file (no XML prolog, no scripts), or ``None``."""
    m = re.search(r"<svg\b.*</svg>", text, re.DOTALL | re.IGNORECASE)
    if not m:
        return None
    svg = re.sub(r"<script\b.*?</script>", "", m.group(0), flags=re.DOTALL | re.IGNORECASE)
    return svg


# ----------------------------------------------------------------------------- building
def build_report(session: SessionInput, cfg: DspConfig | None = None,
                 qcfg: QualityConfig | None = None) -> Report:
    """Compute tables and figures of a session report.

    Raises
    ------
    CalibrationError
        When the session has no calibration (its %MVC values would mean nothing).
    """
    session.require_calibration()
    rows = rep_rows(session.analysis)
    metrics = exercise_metrics(session.analysis, session.affected_side)
    events = [e for e in session.analysis.get("events", []) if e.get("type", "synkinesis") == "synkinesis"]
    report = Report(session, rows, metrics, [], 0, placement=placement_svg())
    if session.signal is not None:
        scan = envelopes_pct(session, cfg, qcfg=qcfg)
        report.quality, report.lost_samples = _quality_rows(session, scan, qcfg), scan.lost_samples
        rec = session.signal
        t, red = figures.reduce_for_plot(scan.envelope_pct, scan.fs, max_points=3000)
        calib = [(m.sample / rec.fs, m.duration / rec.fs) for m in rec.markers
                 if parse_annotation(m.text).is_calibration]
        report.figures.append(("envelopes", "Whole session: envelopes in %MVC of each channel; "
                               "cue windows shaded by exercise, synkinesis events in red (tick: "
                               "when the live detector alerted).",
                               figures.fig_envelopes(t, red, session.channels, rows, events,
                                                     session.affected_side, calib)))
        quiet = _quiet_channels(session.channels, rows)
        if rows:
            report.figures.append(("overlays", "Every rep overlaid from its cue: the target region "
                                   "(thick) and the regions to keep quiet (thin; red in reps with "
                                   "synkinesis).",
                                   figures.fig_rep_overlays(scan.envelope_pct, scan.fs,
                                                            session.channels, rows, quiet)))
    if rows:
        report.figures.append(("bars", "Per rep: target peak %MVC; hatched red bars carried "
                               "synkinesis.", figures.fig_rep_bars(rows, session.affected_side)))
        report.figures.append(("symmetry", "Symmetry per exercise: affected / unaffected mean %MVC of the target "
                               "while active, mean over the reps.",
                               figures.fig_symmetry(metrics)))
    return report


# ----------------------------------------------------------------------------- HTML
def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if v is None else fmt.format(v)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:72em;
color:#1b1b1b;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.syn td{background:#fde8e8}
.meta td{text-align:left;border:none;padding:.1em 1em .1em 0}
.green{color:#2e7d32}.amber{color:#b26a00}.red{color:#c62828;font-weight:bold}
figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:.85em;color:#555}
.placement svg{max-width:28em;height:auto}.note{color:#666;font-size:.85em}
"""


def _table(head: Sequence[str], body: Iterable[Sequence[str]], cls: str = "",
           left: int = 1, row_classes: Sequence[str] | None = None) -> str:
    th = "".join(f'<th class="l">{html.escape(h)}</th>' if i < left else f"<th>{html.escape(h)}</th>"
                 for i, h in enumerate(head))
    out = [f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>']
    for n, row in enumerate(body):
        rc = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        tds = "".join(f'<td class="l">{html.escape(c)}</td>' if i < left else f"<td>{html.escape(c)}</td>"
                      for i, c in enumerate(row))
        out.append(f"<tr{rc}>{tds}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _montage_rows(session: SessionInput) -> list[list[str]]:
    rows = []
    for ch in session.channels:
        try:
            cid = parse_label(ch)
            muscle, site = cid.region.muscle, cid.region.site
        except EmgError:
            muscle, site = "?", ""
        site = session.montage.get(ch, site)
        aff = "affected" if session.affected_side and ch[:1] == session.affected_side else ""
        rows.append([ch, muscle, aff, site])
    return rows


def _calibration_rows(s: SessionInput) -> list[list[str]]:
    cal = s.calibration
    raw = s.analysis.get("calibration") or {}
    rows = []
    for ch in s.channels:
        c = cal.get(ch, {})
        rest, mvc = c.get("rest_mean_uv"), c.get("mvc_uv")
        trials = raw.get(ch, {}).get("mvc_trials_uv") if isinstance(raw.get(ch), Mapping) else None
        trials = [float(v) for v in trials or [] if isinstance(v, (int, float))]
        rest_src, mvc_src = s.calibration_sources(ch)
        rows.append([ch, _f(rest, "{:.2f}"), _f(c.get("rest_sd_uv"), "{:.2f}"), _f(mvc, "{:.1f}"),
                     _f(mvc / rest if mvc is not None and rest else None, "{:.0f}"),
                     f"{rest_src or '–'}, {mvc_src or '–'}",
                     ", ".join(f"{v:.1f}" for v in trials) or "–"])
    return rows


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    s = report.session
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>emgfeedback session report {e(s.patient_id)} {s.recorded_at:%Y-%m-%d}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Session report: patient {e(s.patient_id)}</h1>",
        '<table class="meta">',
        f"<tr><td>Patient (pseudonymous id)</td><td id=\"patient\">{e(s.patient_id)}</td></tr>",
        f"<tr><td>Date</td><td id=\"date\">{s.recorded_at:%Y-%m-%d %H:%M}</td></tr>",
        f"<tr><td>Recording</td><td>{e(s.source)}, {s.duration_s / 60:.1f} min, "
        f"{len(s.channels)} channels at {s.fs:g} Hz</td></tr>",
        f"<tr><td>Affected side</td><td>{e(s.affected_side or 'not recorded')}</td></tr>",
        f"<tr><td>Program</td><td>{e(s.program or '–')}</td></tr>",
        *[f"<tr><td>Note</td><td class=\"red\">{e(n)}</td></tr>" for n in s.notes],
        "</table>",
        "<h2>Montage</h2>",
    ]
    if report.placement:
        parts.append(f'<div class="placement">{report.placement}</div>')
    else:
        parts.append('<p class="note">Electrode placement figure not installed '
                     "(emgfeedback/data/placement.svg); sites are described below.</p>")
    parts.append(_table(["channel", "muscle", "side", "electrode site"], _montage_rows(s), left=4))

    parts.append("<h2>Signal quality at rest</h2>")
    if report.quality:
        parts.append(_table(
            ["channel", "rest RMS (µV)", "mains (µV)", "clipped samples", "check"],
            [[q.channel, f"{q.rest_rms_uv:.1f}", f"{q.mains_uv:.1f}", str(q.clipped_samples),
              f"{q.light}: {q.reason}"] for q in report.quality], cls="quality"))
        parts.append(f"<p class=\"note\">Samples lost in transmission: {report.lost_samples}.</p>")
    else:
        parts.append('<p class="note">No signal stored with this session (metrics only).</p>')

    parts.append("<h2>Calibration</h2>")
    parts.append(_table(["channel", "rest mean (µV)", "rest SD (µV)", "MVC (µV)", "MVC / rest",
                         "from", "MVC trials (µV)"], _calibration_rows(s), cls="calibration"))
    parts.append('<p class="note">%MVC = 100 · (envelope − rest mean) / MVC. Rest: robust mean '
                 "and SD of the envelope over the <i>rest</i> period; MVC: per trial the highest "
                 "500 ms mean above rest, the highest trial (docs/analysis.md).</p>")
    for n in s.analysis.get("calibration_notes") or []:
        parts.append(f'<p class="note">Calibration note: {e(str(n))}</p>')

    parts.append("<h2>Exercises</h2>")
    parts.append(_table(
        ["exercise", "reps", "reps with synkinesis", "synkinesis events", "peak %MVC affected",
         "peak %MVC other side", "time in band (s)", "isolation", "co-contraction", "symmetry"],
        [[m.exercise, str(m.n_reps), str(m.n_synkinesis_reps), str(m.n_events),
          _f(m.peak_pct_mvc_affected), _f(m.peak_pct_mvc_unaffected), _f(m.time_in_band_s, "{:.2f}"),
          _f(m.isolation, "{:.2f}"), _f(m.cocontraction), _f(m.symmetry, "{:.2f}")]
         for m in report.metrics], cls="exercises"))
    if s.affected_side:
        parts.append('<p class="note">Reps, synkinesis and isolation count the affected side '
                     f"({e(s.affected_side)}); symmetry = affected / unaffected mean %MVC of the target "
                     "while active (1 = equal).</p>")

    for key, caption, fig in report.figures:
        data = base64.b64encode(figures.png_bytes(fig, dpi=90)).decode("ascii")
        parts.append(f'<figure id="fig-{e(key)}"><img alt="{e(caption)}" '
                     f'src="data:image/png;base64,{data}"><figcaption>{e(caption)}</figcaption></figure>')

    parts.append("<h2>Reps</h2>")
    parts.append(_table(
        ["#", "exercise", "side", "target", "onset (s)", "duration (s)", "target peak %MVC",
         "time in band (s)", "isolation", "co-contraction", "worst quiet region", "synkinesis events",
         "symmetry"],
        [[str(r.index), r.exercise, r.side, r.target, f"{r.onset_s:.2f}",
          f"{r.offset_s - r.onset_s:.2f}", _f(r.peak_pct_mvc), _f(r.time_in_band_s, "{:.2f}"),
          _f(r.isolation, "{:.2f}"), _f(r.cocontraction), r.cocontraction_channel or "–",
          str(r.events), _f(r.symmetry, "{:.2f}")] for r in report.rows],
        cls="reps", left=4, row_classes=["syn" if r.synkinesis else "" for r in report.rows]))
    parts.append(f'<p class="note">emgfeedback {e(__version__)}. A training aid, not a diagnostic '
                 "device. Co-contraction: Falconer-Winter index of the worst quiet region.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- PDF
def _table_pages(title: str, head: Sequence[str], body: Sequence[Sequence[str]],
                 rows_per_page: int = 34) -> list[Any]:
    """A table over as many A4 landscape pages as needed.

    Each row is one line of monospaced text with its columns padded (text columns left-aligned,
    numeric ones right-aligned), over striped rows for reading across.  One text object per row
    instead of one per cell makes a 500-rep table a few times faster to write as PDF; matplotlib's
    ``Axes.table`` measures every cell and takes most of a second per page.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    numeric = [i > 0 and any(r[i][:1].isdigit() for r in body)
               and all(r[i][:1].isdigit() or r[i][:1] in "-–+." for r in body)
               for i in range(len(head))]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(head)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric))

    n_chars = sum(widths) + 2 * (len(widths) - 1)
    # DejaVu Sans Mono advances 0.6 em per character; 0.94 of the page width is usable.
    fontsize = float(min(9.0, 0.94 * 11.69 * 72 / (0.6 * max(1, n_chars))))
    pages = []
    line_h = 0.84 / (rows_per_page + 1)
    for start in range(0, max(1, len(body)), rows_per_page):
        chunk = body[start:start + rows_per_page]
        fig = Figure(figsize=(11.69, 8.27))
        fig.text(0.03, 0.95, title + (" (continued)" if start else ""), fontsize=13, weight="bold")
        top = 0.9
        fig.patches.append(Rectangle((0.03, top - line_h), 0.94, line_h, transform=fig.transFigure,
                                     facecolor="#e6e6e6", edgecolor="none"))
        for k in range(1, len(chunk) + 1, 2):
            fig.patches.append(Rectangle((0.03, top - (k + 1) * line_h), 0.94, line_h,
                                         transform=fig.transFigure, facecolor="#f5f5f5",
                                         edgecolor="none"))
        fig.text(0.035, top - 0.5 * line_h, line(head), va="center", fontsize=fontsize,
                 family="monospace", weight="bold")
        for k, r in enumerate(chunk, start=1):
            fig.text(0.035, top - (k + 0.5) * line_h, line(r), va="center", fontsize=fontsize,
                     family="monospace")
        pages.append(fig)
    return pages


def _text_page(lines: Sequence[str], title: str) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.69, 8.27))
    fig.text(0.05, 0.92, title, fontsize=16, weight="bold")
    for i, line in enumerate(lines):
        fig.text(0.05, 0.85 - 0.035 * i, line, fontsize=10.5)
    return fig


def placement_png(svg: str | None, dpi: int = 150) -> bytes | None:
    """The placement figure rasterised by ``rsvg-convert`` (librsvg) for the PDF, or ``None``
    when there is no figure or no ``rsvg-convert`` (matplotlib cannot draw SVG)."""
    import shutil
    import subprocess

    exe = shutil.which("rsvg-convert")
    if not svg or exe is None:
        return None
    try:
        out = subprocess.run([exe, "--format", "png", "--dpi-x", str(dpi), "--dpi-y", str(dpi)],
                             input=svg.encode("utf-8"), capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("rsvg-convert failed: %s", exc)
        return None
    if out.returncode != 0 or not out.stdout.startswith(b"\x89PNG"):
        log.warning("rsvg-convert failed: %s", out.stderr.decode("utf-8", "replace").strip())
        return None
    return out.stdout


def _placement_page(svg: str | None) -> Any:
    """A PDF page with the electrode placement figure, or a note where to find it."""
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.69, 8.27))
    fig.text(0.03, 0.95, "Electrode placement", fontsize=13, weight="bold")
    png = placement_png(svg)
    if png is None:
        fig.text(0.03, 0.88, "The placement figure is in the HTML report (and in emgfeedback/data/"
                 "placement.svg); this PDF was made without rsvg-convert (Debian: librsvg2-bin).",
                 fontsize=10)
        return fig
    from matplotlib.image import imread

    img = imread(io.BytesIO(png), format="png")
    ax = fig.add_axes((0.03, 0.03, 0.94, 0.88))
    ax.imshow(img, interpolation="antialiased")
    ax.set_axis_off()
    return fig


def _figure_page(fig: Any, caption: str, dpi: int = 150) -> Any:
    """A report figure on an A4 landscape page: drawn at ``dpi``, scaled to fit above its caption.

    Report figures have their own sizes (a strip per channel, a row per exercise); putting each
    on its own page size would print at odd scales, so every page of the PDF is A4.
    """
    import io

    from matplotlib.figure import Figure
    from matplotlib.image import imread

    img = imread(io.BytesIO(figures.png_bytes(fig, dpi=dpi)), format="png")
    page = Figure(figsize=(11.69, 8.27))
    h, w = img.shape[:2]
    box_w, box_h = 0.94 * 11.69, 0.86 * 8.27  # inches available above the caption
    scale = min(box_w / (w / dpi), box_h / (h / dpi), 1.25)
    fw, fh = w / dpi * scale / 11.69, h / dpi * scale / 8.27
    ax = page.add_axes(((1 - fw) / 2, 0.11 + (0.86 - fh), fw, fh))
    ax.imshow(img, interpolation="antialiased")
    ax.set_axis_off()
    page.text(0.03, 0.05, caption, fontsize=9, color="#444444", wrap=True)
    return page


def write_pdf(report: Report, path: Path) -> None:
    """Write the report as a multi-page PDF (A4 landscape) to ``path``."""
    from matplotlib.backends.backend_pdf import PdfPages

    s = report.session
    pages: list[Any] = [_text_page([
        f"Patient (pseudonymous id): {s.patient_id}",
        f"Date: {s.recorded_at:%Y-%m-%d %H:%M}",
        f"Recording: {s.source}, {s.duration_s / 60:.1f} min, {len(s.channels)} channels at {s.fs:g} Hz",
        f"Affected side: {s.affected_side or 'not recorded'}      Program: {s.program or '–'}",
        f"Samples lost in transmission: {report.lost_samples}",
        *[f"Note: {n}" for n in s.notes],
        "",
        "Signal quality at rest:",
        *[f"   {q.channel}: rest {q.rest_rms_uv:.1f} µV RMS, mains {q.mains_uv:.1f} µV, "
          f"{q.light}: {q.reason}" for q in report.quality],
        "",
        "Calibration (rest mean / rest SD / MVC in µV; from; MVC trials in µV):",
        *[f"   {r[0]}: {r[1]} / {r[2]} / {r[3]};  {r[5]};  {r[6]}" for r in _calibration_rows(s)],
    ], f"Session report: patient {s.patient_id}")]
    pages += _table_pages("Montage", ["channel", "muscle", "side", "electrode site"],
                          _montage_rows(s))
    pages.append(_placement_page(report.placement))
    pages += _table_pages("Exercises", ["exercise", "reps", "synk. reps", "events", "peak aff.",
                                        "peak other", "in band (s)", "isolation", "co-contr.",
                                        "symmetry"],
                          [[m.exercise, str(m.n_reps), str(m.n_synkinesis_reps), str(m.n_events),
                            _f(m.peak_pct_mvc_affected), _f(m.peak_pct_mvc_unaffected),
                            _f(m.time_in_band_s, "{:.2f}"), _f(m.isolation, "{:.2f}"),
                            _f(m.cocontraction), _f(m.symmetry, "{:.2f}")] for m in report.metrics])
    pages += [_figure_page(fig, caption) for _k, caption, fig in report.figures]
    pages += _table_pages("Reps", ["#", "exercise", "side", "target", "onset (s)", "dur. (s)",
                                   "peak %MVC", "in band (s)", "isolation", "co-contr.", "worst quiet",
                                   "synk. events", "symmetry"],
                          [[str(r.index), r.exercise, r.side, r.target, f"{r.onset_s:.2f}",
                            f"{r.offset_s - r.onset_s:.2f}", _f(r.peak_pct_mvc),
                            _f(r.time_in_band_s, "{:.2f}"), _f(r.isolation, "{:.2f}"),
                            _f(r.cocontraction), r.cocontraction_channel or "–", str(r.events),
                            _f(r.symmetry, "{:.2f}")] for r in report.rows])
    tmp = path.with_name(path.name + ".part")
    with PdfPages(tmp, metadata={"Title": f"emgfeedback session report {s.patient_id}",
                                 "Creator": f"emgfeedback {__version__}"}) as pdf:
        for fig in pages:
            pdf.savefig(fig)
    from emgfeedback.validate import make_private

    make_private(tmp)
    tmp.replace(path)


def write_report(session: SessionInput, out: Path, pdf: Path | None = None,
                 cfg: DspConfig | None = None) -> Report:
    """Build the report of ``session`` and write ``out`` (HTML) and, if given, ``pdf``.

    Files are written to a temporary name and renamed, so a failure never leaves a half report
    over an earlier one.
    """
    report = build_report(session, cfg)
    text = render_html(report)
    out = Path(out)
    from emgfeedback.validate import write_private

    write_private(out, text)  # 0600, atomic: never half a report over an earlier one
    if pdf is not None:
        write_pdf(report, Path(pdf))
    log.info("report of %s written to %s", session.source, out)
    return report


# ----------------------------------------------------------------------------- loading
def _wall_clock(text: str) -> _dt.datetime:
    """An ISO 8601 time as the local wall-clock time it names (any UTC offset dropped: sessions
    are compared in the time of the clinic that recorded them, as the EDF header stores it)."""
    return _dt.datetime.fromisoformat(text).replace(tzinfo=None, microsecond=0)


def recording_identity(rec: Recording) -> tuple[str, _dt.datetime, str]:
    """``(patient_id, recorded_at, source)`` of a recording: what identifies a session in the
    history, known before any analysis.

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
                           keep_signal: bool = True) -> SessionInput:
    """A :class:`SessionInput` from an opened recording and its analysis.

    Metadata come from the recording's JSON sidecar as :class:`emgfeedback.io.edf.recorder.Recorder`
    writes it (:func:`recording_identity` for the patient id and start): ``montage`` (label ->
    ``{"side", "region", "muscle", "site"}``), ``program`` (a name or ``{"name": ...}``),
    ``status``, and the affected side: the analysis' own (its symmetry and affected-side metrics
    are defined by it), else :func:`sidecar_affected_side`.

    Raises
    ------
    FileFormatError
        No pseudonymous patient id anywhere, or an unreadable start time.
    """
    meta: Mapping[str, Any] = rec.sidecar or {}
    path = Path(rec.path)
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
    )


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




def analyse_recording(rec: Recording) -> dict[str, Any]:
    """``analyze`` of the recording with the default program, the montage from its channel labels
    and the affected side of its sidecar, as JSON (docs/analysis.md)."""
    from emgfeedback.app.analyze import analyze
    from emgfeedback.clinical.montage import Montage

    side = sidecar_affected_side(rec.sidecar or {})
    montage = Montage.from_labels(rec.channels, side or None)
    return dict(json_ready(analyze(rec, montage).to_json()))


def analysis_of(rec: Recording) -> tuple[dict[str, Any], str]:
    """The analysis of a recording and a note for the report saying where it came from.

    The analysis saved beside the recording after the session (:func:`analysis_path`,
    made with the session's program) when there is one; else :func:`analyse_recording` (the
    default program), with a note when the sidecar names another program.
    """
    saved = analysis_path(rec.path)
    if saved.is_file():
        return _read_analysis(saved), f"analysis: {saved.name}, written when the session stopped"
    result = analyse_recording(rec)
    program = (rec.sidecar or {}).get("program")
    name = program.get("name") if isinstance(program, Mapping) else program
    note = ""
    if isinstance(name, str) and name and name != result.get("program"):
        note = (f"analysed with the {result.get('program')!r} program; the session ran {name!r}: "
                f"run 'emgfeedback analyze --program' and pass --analysis")
    return result, note


def load_session(path: Path, analysis: Path | Mapping[str, Any] | None = None,
                 keep_signal: bool = True,
                 opener: Callable[[Path], Recording] | None = None) -> SessionInput:
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

    Raises
    ------
    FileFormatError
        The file is not a readable session recording (one line naming the file).
    """
    import dataclasses

    from emgfeedback.io.importers import load

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such session file")
    rec = (opener or load)(path)
    try:
        note = ""
        result: dict[str, Any]
        if isinstance(analysis, (str, Path)):
            result = _read_analysis(Path(analysis))
        elif analysis is not None:
            result = dict(json_ready(analysis))
        else:
            result, note = analysis_of(rec)
        session = session_from_recording(rec, result, keep_signal)
        if note:
            session = dataclasses.replace(session, notes=(*session.notes, note))
    except BaseException:
        rec.close()
        raise
    if not keep_signal:
        rec.close()
    return session
