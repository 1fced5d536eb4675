"""What a session report shows, computed once: the tables, the plain-language summary, the figures.

:func:`build_report` turns a :class:`~emgfeedback.views.summary.SessionInput` (and, when the
history knows the patient, a :class:`~emgfeedback.views.summary.HistoryContext`) into a
:class:`Report`; :mod:`.html` and :mod:`.pdf` render the same :class:`Report`, so both hold the
same tables, row for row.  The signal side (:func:`envelopes_pct`) reads the recording block by
block through the live chain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emgfeedback.config import DspConfig, QualityConfig
from emgfeedback.dsp.quality import assess
from emgfeedback.errors import ConfigError, EmgError
from emgfeedback.stream import Quality
from emgfeedback.vocabulary import EXERCISES, parse_annotation, parse_label, short_label
from emgfeedback.views.report import figures
from emgfeedback.views.report.bins import REPORT_BIN_S, EnvelopeBins, SignalPass, chain_pass
from emgfeedback.views.report.placement import placement_svg
from emgfeedback.views.summary import (
    GRADING,
    ExerciseMetrics,
    HistoryContext,
    RepRow,
    SessionInput,
    Table,
    exercise_metrics,
    rep_rows,
)

__all__ = [
    "TRAINING_AID",
    "QualityRow",
    "Report",
    "SignalScan",
    "build_report",
    "envelopes_pct",
    "fmt",
    "patient_line",
    "placement_svg",
]

log = logging.getLogger(__name__)

#: The statement every report and progress report carries.
TRAINING_AID = ("emgfeedback is a training aid for facial rehabilitation, not a diagnostic "
                "medical device: read these numbers with the therapist.")


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
    """Everything a report shows, computed once and rendered to HTML and PDF.

    ``tables`` are in reading order after the header (see :func:`build_report`); ``figures``
    are ``(key, caption, Figure)`` and follow the exercise table.
    """

    session: SessionInput
    rows: list[RepRow]
    metrics: list[ExerciseMetrics]
    quality: list[QualityRow]
    lost_samples: int
    summary: list[str] = field(default_factory=list)
    history: HistoryContext | None = None
    tables: dict[str, Table] = field(default_factory=dict)
    figures: list[tuple[str, str, Any]] = field(default_factory=list)
    placement: str | None = None  # inline SVG text

    @property
    def header(self) -> list[tuple[str, str]]:
        """``(label, value)`` lines of the report's header."""
        s = self.session
        out = [patient_line(s)]
        if s.simulated:
            out.append(("Signal", "the simulated board (emgfeedback's facial model), not a "
                                  "person's recording"))
        out += [("Date", f"{s.recorded_at:%Y-%m-%d %H:%M}"),
               ("Recording", f"{s.source}, {s.duration_s / 60:.1f} min, {len(s.channels)} "
                             f"channels at {s.fs:g} Hz"),
               ("Affected side", s.affected_side or "not recorded"),
               ("Program", s.program or "–")]
        if s.analysis_note:
            out.append(("Analysis", s.analysis_note.removeprefix("analysis: ")))
        return out


def _no_patient(s: SessionInput) -> bool:
    """A simulated recording under the simulator's placeholder id (``emgfeedback simulate``
    writes ``SIM-0000``; older versions wrote ``0000``)."""
    return s.simulated and (s.patient_id.upper().startswith("SIM-") or s.patient_id == "0000")


def patient_line(s: SessionInput) -> tuple[str, str]:
    """The header's patient line; a simulated recording without a patient says so."""
    if _no_patient(s):
        return ("Patient", "none (simulated session)")
    return ("Patient (pseudonymous id)", s.patient_id)


def who(s: SessionInput) -> str:
    """"patient P-001", or "simulated session" for a simulated recording without a patient."""
    return "simulated session" if _no_patient(s) else f"patient {s.patient_id}"


def fmt(v: float | None, spec: str = "{:.1f}") -> str:
    return "–" if v is None else spec.format(v)


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
        The chain's quality measures over the rest period (the first 10 s without one): per
        channel the median of snapshots taken 4 times a second once the running measures have
        settled (3 time constants), so a blink at rest does not read as a noisy baseline.
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


def envelopes_pct(session: SessionInput, cfg: DspConfig | None = None, bin_s: float = REPORT_BIN_S,
                  block_s: float = 10.0, qcfg: QualityConfig | None = None) -> SignalScan:
    """Envelopes of the recording in %MVC and its signal quality at rest, read block by block.

    The recording goes through the same causal chain as the live view, stretch by stretch between
    gaps (the chain restarts after each gap, as on replay), ``block_s`` seconds at a time, so a
    one-hour file needs no more memory than its 100 Hz envelope.  %MVC is
    ``100 · (envelope - rest_mean_uv) / mvc_uv`` with the calibration of the analysis
    (docs/analysis.md); channels without calibration stay in µV.  With the default configuration
    this is the chain ``analyze`` replays the file through, so a rep's plotted peak is its
    ``target_peak_pct_mvc`` (less the averaging over 10 ms bins).

    When the session's analysis was run for this report, its pass over the file has collected
    the bins already (:attr:`SessionInput.signal_bins`): with the default settings they are
    used, and the chain only runs over the rest period again for the quality at rest; when the
    session was opened with ``prefetch`` this pass is already running (:class:`.bins.SignalPass`).
    """
    rec = session.signal
    if rec is None:
        raise ConfigError(f"{session.source}: no signal to plot")
    names = [short_label(c) for c in rec.channels]
    given = session.signal_bins
    default = cfg in (None, DspConfig()) and qcfg is None and bin_s == REPORT_BIN_S
    if isinstance(given, SignalPass) and default:  # started when the session was opened
        bins, rest_q = given.result()
    elif isinstance(given, EnvelopeBins) and default and given.samples:  # the analysis' pass
        bins = given  # (or saved with it; its pass over the rest period may be running)
        rest_q = given.rest_quality(rec, cfg, qcfg, block_s)
    else:
        if isinstance(given, SignalPass):
            given.wait()  # (for the default settings; not these)
        bins = EnvelopeBins(rec.fs, rec.n_samples, len(names), rec.rails_uv, bin_s)
        rest_q = chain_pass(rec, cfg, qcfg, bins, block_s)
    env = bins.envelope()
    cal = session.calibration
    out = np.full((env.shape[0], len(session.channels)), np.nan)
    sat_out = np.zeros(len(session.channels), dtype=np.int64)
    for j, ch in enumerate(session.channels):
        if ch not in names:
            continue
        c = names.index(ch)
        vals = cal.get(ch, {})
        mvc, rest_mean = vals.get("mvc_uv"), vals.get("rest_mean_uv") or 0.0
        out[:, j] = 100.0 * (env[:, c] - rest_mean) / mvc if mvc else env[:, c]
        sat_out[j] = bins.saturated[c]
    return SignalScan(bins.fs, out, rest_q, sat_out, int(rec.lost_samples))


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


# ----------------------------------------------------------------------------- tables
def _montage_table(s: SessionInput) -> Table:
    rows = []
    for ch in s.channels:
        try:
            cid = parse_label(ch)
            muscle, site = cid.region.muscle, cid.region.site
        except EmgError:
            muscle, site = "?", ""
        site = s.montage.get(ch, site)
        aff = "affected" if s.affected_side and ch[:1] == s.affected_side else ""
        rows.append((ch, muscle, aff, site))
    return Table("montage", "Montage", ("channel", "muscle", "side", "electrode site"),
                 tuple(rows), left=4)


def _quality_table(report: Report) -> Table:
    return Table("quality", "Signal quality at rest",
                 ("channel", "rest RMS (µV)", "mains (µV)", "clipped samples", "check"),
                 tuple((q.channel, f"{q.rest_rms_uv:.1f}", f"{q.mains_uv:.1f}",
                        str(q.clipped_samples), f"{q.light}: {q.reason}")
                       for q in report.quality),
                 notes=(f"Samples lost in transmission: {report.lost_samples}.",))


def _artefact_table(s: SessionInput) -> Table | None:
    """Per channel, what the detector set aside: artefact periods (cable motion, electrode
    pops, an electrode off: flat or clipping), blinks during reps, and live alerts it withdrew
    (the ``quality`` and ``events`` of the analysis JSON, docs/analysis.md)."""
    quality = s.analysis.get("quality")
    events = [e for e in s.analysis.get("events") or [] if isinstance(e, Mapping)]
    if not isinstance(quality, Mapping) and not events:
        return None
    quality = quality if isinstance(quality, Mapping) else {}
    rows = []
    for ch in s.channels:
        qc = quality.get(ch)
        q: Mapping[str, Any] = qc if isinstance(qc, Mapping) else {}
        periods = [p for p in q.get("periods") or [] if isinstance(p, Mapping)]
        reasons = sorted({r.strip() for p in periods for r in str(p.get("reason", "")).split(",")}
                         - {""})
        blinks = sum(1 for e in events if e.get("channel") == ch and e.get("type") == "blink")
        withdrawn = sum(1 for e in events if e.get("channel") == ch and e.get("retracted"))
        rows.append((ch, ", ".join(reasons) or "–", str(len(periods)),
                     fmt(q.get("artefact_s"), "{:.1f}"), fmt(q.get("electrode_off_s"), "{:.1f}"),
                     str(blinks), str(withdrawn)))
    return Table("artefacts", "Artefacts, electrodes off and blinks",
                 ("channel", "artefact reasons", "periods", "artefact (s)", "electrode off (s)",
                  "blinks in reps", "alerts withdrawn"), tuple(rows), left=2,
                 notes=("No synkinesis is counted on a channel while it is flagged (and "
                        "briefly after, while the filters settle). A live alert is withdrawn "
                        "when its burst turns out to be a blink (an orbicularis oculi burst "
                        "shorter than the blink limit), a transient or an artefact; withdrawn "
                        "alerts and blinks are not synkinesis (docs/analysis.md, "
                        "\"Event classes\").",))


def _calibration_table(s: SessionInput) -> Table:
    cal = s.calibration
    raw = s.analysis.get("calibration") or {}
    rows = []
    for ch in s.channels:
        c = cal.get(ch, {})
        rest, mvc = c.get("rest_mean_uv"), c.get("mvc_uv")
        trials = raw.get(ch, {}).get("mvc_trials_uv") if isinstance(raw.get(ch), Mapping) else None
        trials = [float(v) for v in trials or [] if isinstance(v, (int, float))]
        rest_src, mvc_src = s.calibration_sources(ch)
        rows.append((ch, fmt(rest, "{:.2f}"), fmt(c.get("rest_sd_uv"), "{:.2f}"),
                     fmt(mvc, "{:.1f}"),
                     fmt(mvc / rest if mvc is not None and rest else None, "{:.0f}"),
                     f"{rest_src or '–'}, {mvc_src or '–'}",
                     ", ".join(f"{v:.1f}" for v in trials) or "–"))
    notes = ["%MVC = 100 · (envelope − rest mean) / MVC. Rest: robust mean and SD of the "
             "envelope over the rest period; MVC: per trial the highest 500 ms mean above rest, "
             "the highest trial (docs/analysis.md)."]
    notes += [f"Calibration note: {n}" for n in s.analysis.get("calibration_notes") or []]
    return Table("calibration", "Calibration",
                 ("channel", "rest mean (µV)", "rest SD (µV)", "MVC (µV)", "MVC / rest", "from",
                  "MVC trials (µV)"), tuple(rows), notes=tuple(notes))


def _exercise_table(s: SessionInput, metrics: Sequence[ExerciseMetrics]) -> Table:
    notes = []
    if s.affected_side:
        notes.append(f"Reps, synkinesis and isolation count the affected side ({s.affected_side});"
                     " symmetry = affected / unaffected mean %MVC of the target while active "
                     "(1 = equal).")
    return Table("exercises", "Exercises",
                 ("exercise", "reps", "reps with synkinesis", "synkinesis events",
                  "peak %MVC affected", "peak %MVC other side", "time in band (s)", "isolation",
                  "co-contraction", "symmetry"),
                 tuple((m.exercise, str(m.n_reps), str(m.n_synkinesis_reps), str(m.n_events),
                        fmt(m.peak_pct_mvc_affected), fmt(m.peak_pct_mvc_unaffected),
                        fmt(m.time_in_band_s, "{:.2f}"), fmt(m.isolation, "{:.2f}"),
                        fmt(m.cocontraction), fmt(m.symmetry, "{:.2f}")) for m in metrics),
                 notes=tuple(notes))


def _rep_table(rows: Sequence[RepRow]) -> Table:
    """One rep per cue, its sides listed under it: the first side's line carries the rep number,
    exercise, onset, duration and symmetry; the other side's line leaves them blank."""
    body: list[tuple[str, ...]] = []
    classes: list[str] = []
    prev: int | None = None
    for r in rows:
        first = r.index != prev
        prev = r.index
        body.append((str(r.index) if first else "", r.exercise if first else "",
                     f"{r.onset_s:.2f}" if first else "",
                     f"{r.offset_s - r.onset_s:.2f}" if first else "",
                     r.side, r.target, fmt(r.peak_pct_mvc), fmt(r.time_in_band_s, "{:.2f}"),
                     fmt(r.isolation, "{:.2f}"), fmt(r.cocontraction),
                     r.cocontraction_channel or "–", str(r.events),
                     fmt(r.symmetry, "{:.2f}") if first else ""))
        classes.append(" ".join(c for c in ("syn" if r.synkinesis else "",
                                            "" if first else "side") if c))
    n = len({r.index for r in rows})
    return Table("reps", "Reps",
                 ("rep", "exercise", "onset (s)", "duration (s)", "side", "target",
                  "target peak %MVC", "time in band (s)", "isolation", "co-contraction",
                  "worst quiet region", "synkinesis events", "symmetry"),
                 tuple(body), left=2, row_classes=tuple(classes),
                 notes=(f"{n} reps (one per cue, numbered from 1; each side of a rep on its own "
                        "line). Co-contraction: Falconer-Winter index of the worst quiet region; "
                        "shaded lines carried synkinesis.",))


def _clinician_table(s: SessionInput) -> Table | None:
    c = s.clinician or {}
    rows = [(title, str(c[key]) if c.get(key) is not None else "–", f"{lo}-{hi}")
            for key, (title, lo, hi) in GRADING.items()]
    notes = (f"Therapist's notes: {c['notes']}",) if c.get("notes") else ()
    if not notes and all(r[1] == "–" for r in rows):
        return None
    return Table("clinician", "Therapist's notes and grading", ("scale", "grade", "range"),
                 tuple(rows), notes=notes)


# ----------------------------------------------------------------------------- plain words
def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.0f} %" if n else "–"


def plain_summary(report: Report) -> list[str]:
    """The session in a few plain sentences (for the patient and the therapist)."""
    s, metrics = report.session, report.metrics
    out: list[str] = []
    n_cues = len({r.index for r in report.rows})
    side = {"L": "left", "R": "right"}.get(s.affected_side, "")
    if not n_cues:
        out.append("No exercise was done in this session (calibration only).")
    else:
        out.append(f"{n_cues} reps of {len(metrics)} exercise{'s' if len(metrics) != 1 else ''} "
                   f"({', '.join(m.exercise for m in metrics)})"
                   + (f"; the affected side is the {side} side." if side else "."))
        n = sum(m.n_reps for m in metrics)
        k = sum(m.n_synkinesis_reps for m in metrics)
        who = f"on the {side} side " if side else ""
        if k:
            out.append(f"A region that should stay still moved with the exercise (synkinesis) "
                       f"{who}in {k} of {n} reps ({_pct(k, n)}).")
        else:
            out.append(f"No region that should stay still moved with the exercises {who}"
                       f"(no synkinesis in {n} reps).")
        for m in metrics:
            bits = []
            if m.peak_pct_mvc_affected is not None:
                bits.append(f"peak {m.peak_pct_mvc_affected:.0f} % of maximum effort")
            if m.symmetry is not None:
                bits.append(f"{100 * m.symmetry:.0f} % of the other side's effort")
            if m.isolation is not None:
                bits.append(f"isolation {m.isolation:.2f} (1 = only the target moved)")
            if bits:
                out.append(f"{m.exercise.capitalize()}: {', '.join(bits)}.")
    bad = [q for q in report.quality if q.light != "green"]
    if report.quality:
        out.append("Signal quality at rest: " + ("good on every channel." if not bad else
                   "check " + "; ".join(f"{q.channel} ({q.reason})" for q in bad) + "."))
    if report.lost_samples:
        out.append(f"{report.lost_samples} samples were lost in transmission (gaps in the plots).")
    return out


# ----------------------------------------------------------------------------- building
FigureMaker = tuple[str, str, Callable[[], Any]]
"""``(key, caption, make)``: a figure of the report, made (and drawn) when ``make()`` is
called."""


def _signal_figures(session: SessionInput, scan: SignalScan, rows: Sequence[RepRow],
                    events: Sequence[Mapping[str, Any]]) -> list[FigureMaker]:
    """The figures drawn from the signal's envelopes (whole session, reps overlaid)."""
    rec = session.signal
    assert rec is not None
    out: list[FigureMaker] = []
    calib = [(m.sample / rec.fs, m.duration / rec.fs) for m in rec.markers
             if parse_annotation(m.text).is_calibration]

    def envelopes() -> Any:
        t, red = figures.reduce_for_plot(scan.envelope_pct, scan.fs, max_points=3000)
        return figures.fig_envelopes(t, red, session.channels, rows, events,
                                     session.affected_side, calib)

    out.append(("envelopes", "Whole session: envelopes in %MVC of each channel; cue windows "
                "shaded by exercise, synkinesis events in red (tick: when the live detector "
                "alerted).", envelopes))
    quiet = _quiet_channels(session.channels, rows)
    if rows:
        out.append(("overlays", "Every rep overlaid from its cue: the target region (thick) and "
                    "the regions to keep quiet (thin; red in reps with synkinesis).",
                    lambda: figures.fig_rep_overlays(scan.envelope_pct, scan.fs,
                                                     session.channels, rows, quiet)))
    return out


#: With a second process (``workers`` > 1), the figures it draws: the reps overlaid, the longest
#: to draw, and the symmetry, so that both processes finish together when this one writes the
#: PDF's pages meanwhile (measured, issue 13).
_FORKED = ("overlays", "symmetry")


def _draw(makers: Sequence[FigureMaker], workers: int,
          pending: bool = False) -> list[tuple[str, str, Any]]:
    """Each figure made and drawn (:func:`.figures.prepare`), in order; with ``workers`` > 1 some
    (:data:`_FORKED`) in a second process (:func:`.figures.fork_drawing`, the same drawing code)
    while this one draws the others.  A figure the second process could not draw is drawn here.

    ``pending``: the second process's figures are returned as soon as their sizes are known
    (:meth:`.figures.ForkedDrawing.pending`), their pixels on their way; the caller settles or
    cancels them (:func:`.figures.settle`, :func:`.figures.cancel`)."""
    keys = [k for k, _c, _m in makers]
    away = [k for k in _FORKED if k in keys]
    if workers < 2 or len(keys) < 2 or len(away) == len(keys):
        away = []
    forked = (figures.fork_drawing([m for k, _c, m in makers if k in away])
              if away else None)
    if forked is None:
        away = []
    drawn: dict[str, Any] = {}
    keep = False
    try:
        for k, _c, make in makers:
            if k not in away:
                drawn[k] = make()
                figures.prepare(drawn[k])
        if forked is not None:
            try:
                got: list[Any] = list(forked.pending() if pending else forked.result())
                keep = pending
            except figures.ForkFailed as exc:
                log.warning("the second process did not draw the figures (%s); drawn here", exc)
                got = []
            for k, fig in zip(away, got):
                drawn[k] = fig
                figures.prepare(fig)  # its PNG for the HTML, encoded in a thread
    except BaseException:
        keep = False  # (the second process stopped: nothing waits for it)
        raise
    finally:
        if forked is not None and not keep:
            forked.cancel()  # (nothing when it has ended)
    for k, _c, make in makers:
        if k not in drawn:
            drawn[k] = make()
            figures.prepare(drawn[k])
    return [(k, c, drawn[k]) for k, c, _m in makers]


def build_report(session: SessionInput, cfg: DspConfig | None = None,
                 qcfg: QualityConfig | None = None,
                 history: HistoryContext | None = None, workers: int = 1,
                 pending: bool = False) -> Report:
    """Compute tables, summary and figures of a session report.

    ``history``: the comparison with the patient's previous session and trend
    (:func:`emgfeedback.views.history.progress.context_for`), when the history knows the patient.
    ``workers``: with 2, figures are drawn in a second process too (:func:`_draw`; the same
    figures, to the pixel).  ``pending``: the second process's figures may still be on their
    way when this returns (:class:`.figures.Drawn`, their pixels waited for when read; the PDF
    writer lays out and draws its pages meanwhile); the caller then settles them
    (:func:`.figures.settle`) or cancels them (:func:`.figures.cancel`), as
    :func:`~emgfeedback.views.report.write_report` does.

    Raises
    ------
    CalibrationError
        When the session has no calibration (its %MVC values would mean nothing).
    """
    session.require_calibration()
    rows = rep_rows(session.analysis)
    metrics = exercise_metrics(session.analysis, session.affected_side)
    events = [e for e in session.analysis.get("events", [])
              if e.get("type", "synkinesis") == "synkinesis"]
    report = Report(session, rows, metrics, [], 0, placement=placement_svg(), history=history)
    later: list[FigureMaker] = []
    if rows:
        later.append(("bars", "Per rep (number and side): target peak %MVC; hatched red bars "
                      "carried synkinesis.",
                      lambda: figures.fig_rep_bars(rows, session.affected_side)))
        later.append(("symmetry", "Symmetry per exercise: affected / unaffected mean %MVC of "
                      "the target while active, mean over the reps.",
                      lambda: figures.fig_symmetry(metrics)))
    # Envelopes at hand (saved with the analysis, or collected by its pass here): the chain runs
    # over the rest period only, a moment; otherwise the report's pass over the file runs.
    quick = isinstance(session.signal_bins, EnvelopeBins)
    done: list[tuple[str, str, Any]] = []
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="report-chain") as pool:
            # The chain's pass over the file (or over its rest period only, when the analysis' pass
            # collected the envelopes) runs on the second core while the figures that need no
            # signal are built and drawn here: its filter kernels release the GIL.
            scanning = (pool.submit(envelopes_pct, session, cfg, qcfg=qcfg)
                        if session.signal is not None else None)
            if later and not (quick and workers > 1):
                done = _draw(later, 1)  # while the pass runs
                later = []
            if scanning is not None:
                assert session.signal is not None
                scan = scanning.result()
                report.quality = _quality_rows(session, scan, qcfg)
                report.lost_samples = scan.lost_samples
                makers = _signal_figures(session, scan, rows, events)
                drawn = _draw(makers + later, workers, pending)
                report.figures += drawn[:len(makers)]
                done += drawn[len(makers):]  # the later ones, when not drawn during the pass
                rec = session.signal
                if isinstance((rec.sidecar or {}).get("video"), dict):  # the session's camera
                    from emgfeedback.views.report.video import video_figures

                    report.figures += video_figures(session, rows, events, scan.envelope_pct,
                                                    scan.fs)
            elif later:
                done = _draw(later, workers, pending)
            report.figures += done
    except BaseException:  # (a figure still being drawn by the second process: stopped)
        figures.cancel([f for _k, _c, f in report.figures + done])
        raise
    report.summary = plain_summary(report)
    tables = [_clinician_table(session), _montage_table(session),
              _quality_table(report) if report.quality else None,
              _artefact_table(session), _calibration_table(session),
              _exercise_table(session, metrics), _rep_table(rows)]
    report.tables = {t.key: t for t in tables if t is not None}
    return report
