"""What a report and the patient history need from one analysed session, without any drawing.

The input is the JSON of ``emgfeedback analyze`` (docs/analysis.md, issue 5) plus the session's
metadata (pseudonymous patient id, date, affected side, program).  This module turns it into:

* :class:`SessionInput`: everything a report or the history stores, validated once;
* :func:`placement_svg_path`: the electrode placement figure shipped as package data;
* :func:`rep_rows`: one row per rep for the rep table (numbers exactly as ``analyze`` gave them);
* :func:`exercise_metrics`: per exercise, the numbers tracked across months (synkinesis rate,
  isolation, co-contraction, peak %MVC of each side, symmetry, time in band).

Nothing here reads files, draws or imports Qt; it is called from whatever thread builds a report.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from emgfeedback.errors import CalibrationError, ConfigError, FileFormatError
from emgfeedback.validate import validate_patient_id
from emgfeedback.recording import Recording

__all__ = [
    "PLACEMENT_ENV",
    "ExerciseMetrics",
    "HistoryContext",
    "RepRow",
    "SessionInput",
    "Table",
    "clinician_fields",
    "json_ready",
    "exercise_metrics",
    "placement_svg_path",
    "rep_rows",
]

log = logging.getLogger(__name__)

#: Environment variable naming an electrode placement SVG that overrides the packaged one.
PLACEMENT_ENV = "EMGFEEDBACK_PLACEMENT_SVG"


def placement_svg_path() -> Path | None:
    """The electrode placement figure, or ``None`` when it is not installed.

    ``$EMGFEEDBACK_PLACEMENT_SVG`` when set (a clinic's own figure), else the package data
    ``emgfeedback/data/placement.svg``: the only copy of the figure in the project (the hardware
    guide links to it), shown by the GUI's electrode screen and embedded in session reports.
    """
    env = os.environ.get(PLACEMENT_ENV)
    if env:
        p = Path(env).expanduser()
        if p.is_file():
            return p
        log.warning("$%s=%s: no such file; using the packaged figure", PLACEMENT_ENV, env)
    try:
        pkg = resources.files("emgfeedback").joinpath("data/placement.svg")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - broken installation
        return None
    path = Path(str(pkg))
    return path if path.is_file() else None

#: Grading scales a therapist may enter (window, sidecar ``"clinician"``): key -> (title, lo, hi).
GRADING: dict[str, tuple[str, int, int]] = {
    "house_brackmann": ("House-Brackmann grade", 1, 6),
    "sunnybrook_synkinesis": ("Sunnybrook synkinesis score", 0, 15),
}
MAX_NOTES_CHARS = 4000


def clinician_fields(value: Any) -> tuple[dict[str, Any], list[str]]:
    """The therapist's entries of a session, validated: ``({"notes": str, "house_brackmann":
    int | None, "sunnybrook_synkinesis": int | None}, problems)``.

    ``value`` is the sidecar's ``"clinician"`` object (the window writes it).  House-Brackmann is
    a grade 1-6, the Sunnybrook synkinesis score 0-15; a field of the wrong type or out of range
    is left out and named in ``problems`` (one phrase each), so one typo does not lose the rest.
    """
    out: dict[str, Any] = {"notes": "", **{k: None for k in GRADING}}
    problems: list[str] = []
    if value is None:
        return out, problems
    if not isinstance(value, Mapping):
        return out, [f"expected an object, got {type(value).__name__}"]
    for key in value:
        if key not in ("notes", *GRADING):
            problems.append(f"unknown key {key!r}")
    notes = value.get("notes")
    if notes is not None:
        if isinstance(notes, str):
            out["notes"] = notes.strip()[:MAX_NOTES_CHARS]
        else:
            problems.append("notes must be text")
    for key, (title, lo, hi) in GRADING.items():
        v = value.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            problems.append(f"{key} must be a whole number {lo}-{hi} ({title}), got {v!r}")
        else:
            out[key] = v
    return out, problems


def _num(value: Any) -> float | None:
    """A JSON number as float; ``None`` for null/absent/non-finite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _side(channel: str) -> str:
    return channel[:1].upper() if channel[1:2] == "-" else ""


def json_ready(obj: Any) -> Any:
    """``obj`` as plain JSON values: numpy scalars and arrays as Python numbers and lists, tuples
    as lists, NaN and infinities as ``None`` (strict JSON, what the history stores)."""
    # the plain types first, by exact type (a parsed JSON document is all of them: no ABC
    # checks per value), then the general rules below, in their order
    t = type(obj)
    if t is float:
        return obj if math.isfinite(obj) else None
    if t is str or t is int or t is bool or obj is None:
        return obj
    if t is dict:
        return {str(k): json_ready(v) for k, v in obj.items()}
    if t is list or t is tuple:
        return [json_ready(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return json_ready(obj.tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return str(obj)


@dataclass(frozen=True)
class SessionInput:
    """One analysed session, as reports and the history see it.

    Attributes
    ----------
    patient_id:
        Pseudonymous id (checked by :func:`emgfeedback.validate.validate_patient_id`).
    recorded_at:
        Start of the recording (local time as recorded).
    source:
        Where the session came from (the EDF file name, or ``live``).
    analysis:
        The issue-5 JSON of ``analyze`` (``fs``, ``channels``, ``calibration``, ``reps``,
        ``events``, ``symmetry``).
    affected_side:
        ``"L"`` or ``"R"``, or ``""`` when unknown.
    program:
        Name of the exercise program, or ``""``.
    signal:
        The recording (µV, read by range; gaps are NaN) for the envelope plots and the
        signal-quality table; ``None`` when only metrics are available (the history stores no
        signals).  :func:`emgfeedback.views.report.recording_from_chunk` wraps an in-memory chunk.
    montage:
        Channel (short label) -> electrode site description, for the montage table.
    status:
        The recording's sidecar ``status`` (``complete``, ``recovered``, or ``recording`` when it
        was never closed), ``""`` when unknown.
    notes:
        What the reader had to decide or repair (shown in the report).
    recorded_s:
        Length of the recording in seconds, kept when the signal is not (history imports).
    content_id:
        What identifies the session by its content
        (:func:`emgfeedback.views.report.load.content_id`, a hash of the signal), ``""`` when
        unknown (then the history hashes the analysis).
    simulated:
        The recording came from the simulator (``emgfeedback simulate``): no patient.
    clinician:
        The therapist's notes and grading (:func:`clinician_fields`), ``{}`` when none.
    analysis_note:
        Where the analysis came from (shown in the report's header).
    signal_bins:
        The report's envelope bins collected from the analysis' own pass over the signal when
        the analysis was run for this session (:class:`emgfeedback.views.report.bins.EnvelopeBins`),
        ``None`` otherwise (the report then runs the chain itself).
    """

    patient_id: str
    recorded_at: datetime
    source: str
    analysis: Mapping[str, Any]
    affected_side: str = ""
    program: str = ""
    signal: Recording | None = None
    montage: Mapping[str, str] = field(default_factory=dict)
    status: str = ""
    notes: tuple[str, ...] = ()
    recorded_s: float | None = None
    content_id: str = ""
    simulated: bool = False
    clinician: Mapping[str, Any] = field(default_factory=dict)
    analysis_note: str = ""
    signal_bins: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        validate_patient_id(self.patient_id)
        if self.affected_side not in ("", "L", "R"):
            raise ConfigError(f"affected side must be L or R, got {self.affected_side!r}")
        for key in ("channels", "reps"):
            if key not in self.analysis:
                raise FileFormatError(f"{self.source}: analysis has no {key!r}; is it the JSON of "
                                      "'emgfeedback analyze'?")

    @property
    def channels(self) -> list[str]:
        return [str(c) for c in self.analysis.get("channels", [])]

    @property
    def fs(self) -> float:
        return float(self.analysis.get("fs") or (self.signal.fs if self.signal else 0.0))

    @property
    def calibration(self) -> dict[str, dict[str, float | None]]:
        cal = self.analysis.get("calibration") or {}
        return {ch: {k: _num(v) for k, v in vals.items()} for ch, vals in cal.items()
                if isinstance(vals, Mapping)}

    def calibration_sources(self, channel: str) -> tuple[str, str]:
        """``(rest_source, mvc_source)`` of a channel as ``analyze`` reports them: ``"rest"`` /
        ``"mvc"`` from the session's calibration periods (or a stored calibration), ``"auto"`` for
        the automatic estimate (docs/analysis.md, "Calibration"); ``("", "")`` when absent."""
        raw = (self.analysis.get("calibration") or {}).get(channel)
        if not isinstance(raw, Mapping):
            return "", ""
        return str(raw.get("rest_source") or "rest"), str(raw.get("mvc_source") or "mvc")

    def require_calibration(self) -> None:
        """Raise :class:`CalibrationError` unless every channel was calibrated from ``rest`` and
        ``mvc`` periods (or a stored calibration).

        Without them ``analyze`` falls back to an automatic estimate (``"rest_source"`` /
        ``"mvc_source"`` ``"auto"``): %MVC is then relative to the recording's strongest
        activity, so its values are not comparable between sessions, and reports and the
        history refuse such a session instead of showing numbers that look comparable.
        """
        cal = self.calibration
        missing = []
        for ch in self.channels:
            vals = cal.get(ch)
            rest_src, mvc_src = self.calibration_sources(ch)
            if (not vals or vals.get("mvc_uv") is None or vals.get("rest_mean_uv") is None
                    or "auto" in (rest_src, mvc_src)):
                missing.append(ch)
        if missing:
            which = "all channels" if len(missing) == len(self.channels) else ", ".join(missing)
            raise CalibrationError(
                f"{self.source}: session has no calibration ({which}: no 'rest' and 'mvc' "
                "periods, only the automatic estimate); %MVC would not be comparable across "
                "sessions: record a calibration")

    @property
    def duration_s(self) -> float:
        if self.signal is not None and self.signal.fs > 0:
            return self.signal.n_samples / self.signal.fs
        if self.recorded_s is not None:
            return self.recorded_s
        ends = [_num(r.get("offset_s")) or 0.0 for r in self.analysis.get("reps", [])]
        return max(ends, default=0.0)


@dataclass(frozen=True)
class RepRow:
    """One rep of the rep table."""

    index: int  # the rep number (1-based): one per cue, shared by the cue's sides
    exercise: str
    side: str
    target: str
    onset_s: float
    offset_s: float
    peak_pct_mvc: float | None
    time_in_band_s: float | None
    isolation: float | None
    cocontraction: float | None  # the worst (highest) index over the quiet regions
    cocontraction_channel: str
    synkinesis: bool
    events: int  # synkinesis events whose onset lies within this rep on this side
    symmetry: float | None  # affected / unaffected %MVC for this rep, when both sides recorded


def _rep_key(item: Mapping[str, Any]) -> tuple[int, str] | None:
    rep = item.get("rep")
    if rep is None or isinstance(rep, bool):
        return None
    try:
        return int(rep), str(item.get("exercise", ""))
    except (TypeError, ValueError):
        return None


def rep_rows(analysis: Mapping[str, Any]) -> list[RepRow]:
    """Rows of the rep table, in the order of ``analysis["reps"]``.

    :attr:`RepRow.index` is the analysis' ``rep`` number: one per cue (both sides of a cue share
    it), counted from 1; analyses written before reps were counted from 1 (their first rep is 0)
    are shifted by one, so old and new files number alike.

    A synkinesis event belongs to the rep of the same ``rep`` number and exercise on the side of
    its channel (``analyze`` numbers reps; both sides of one cue share the number); events without
    a rep number are counted in the rep whose cue window holds their onset.  A rep's symmetry is
    the ``ratio`` of the ``symmetry`` entry of its rep number (the same for both sides).
    """
    events = [e for e in analysis.get("events", []) or []
              if isinstance(e, Mapping) and e.get("type", "synkinesis") == "synkinesis"]
    sym_by_rep: dict[tuple[int, str], float | None] = {}
    for s in analysis.get("symmetry", []) or []:
        if isinstance(s, Mapping) and (key := _rep_key(s)) is not None:
            sym_by_rep[key] = _num(s.get("ratio"))
    # events by rep number and exercise (and side): a rep counts its own without scanning all
    keyed: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    unkeyed: list[Mapping[str, Any]] = []
    for e in events:
        ek = _rep_key(e)
        if ek is None:
            unkeyed.append(e)
        else:
            keyed.setdefault(ek, []).append(e)
    rows: list[RepRow] = []
    reps = list(analysis.get("reps", []))
    numbers = [k[0] for r in reps if (k := _rep_key(r)) is not None]
    shift = 1 if numbers and min(numbers) == 0 else 0
    last = 0
    for rep in reps:
        onset = float(rep["onset_s"])
        offset = float(rep["offset_s"])
        target = str(rep.get("target", ""))
        side = str(rep.get("side") or _side(target))
        exercise = str(rep.get("exercise", ""))
        key = _rep_key(rep)
        cc = {str(k): _num(v) for k, v in (rep.get("cocontraction") or {}).items()}
        cc_valid = {k: v for k, v in cc.items() if v is not None}
        worst = max(cc_valid, key=lambda k: cc_valid[k], default="")

        def mine(e: Mapping[str, Any]) -> bool:
            if side and _side(str(e.get("channel", ""))) != side:
                return False
            ek = _rep_key(e)
            if ek is not None and key is not None:
                return ek == key
            return (onset <= float(e["onset_s"]) < offset
                    and (not exercise or e.get("exercise", exercise) == exercise))

        sym = _num(rep.get("symmetry"))
        if sym is None and key is not None:
            sym = sym_by_rep.get(key)
        number = key[0] + shift if key is not None else last + 1
        last = number
        rows.append(RepRow(
            index=number,
            exercise=exercise,
            side=side,
            target=target,
            onset_s=onset,
            offset_s=offset,
            peak_pct_mvc=_num(rep.get("target_peak_pct_mvc")),
            time_in_band_s=_num(rep.get("time_in_band_s")),
            isolation=_num(rep.get("isolation")),
            cocontraction=cc_valid.get(worst) if worst else None,
            cocontraction_channel=worst,
            synkinesis=bool(rep.get("synkinesis")),
            events=sum(1 for e in (events if key is None else keyed.get(key, []) + unkeyed)
                       if mine(e)),
            symmetry=sym,
        ))
    return rows


@dataclass(frozen=True)
class ExerciseMetrics:
    """Per exercise, the numbers a therapist follows across months.

    ``synkinesis_rate`` is the share of the affected side's reps that carried at least one
    synkinesis event (all reps when the affected side is unknown); ``symmetry`` is the mean of the
    analysis' per-rep ratios affected / unaffected mean %MVC of the target while active
    (1.0 = symmetric).
    """

    exercise: str
    n_reps: int
    n_synkinesis_reps: int
    n_events: int
    synkinesis_rate: float | None
    isolation: float | None
    cocontraction: float | None
    peak_pct_mvc_affected: float | None
    peak_pct_mvc_unaffected: float | None
    symmetry: float | None
    time_in_band_s: float | None


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _symmetry_entries(analysis: Mapping[str, Any]) -> dict[str, list[float]]:
    """Exercise -> the ``ratio`` of each of its ``analysis["symmetry"]`` entries (one per rep
    recorded on both sides: affected / unaffected mean %MVC of the target while active; entries
    whose ratio is null, an unaffected side at 0 %MVC, are left out)."""
    out: dict[str, list[float]] = {}
    for s in analysis.get("symmetry", []) or []:
        if not isinstance(s, Mapping):
            continue
        ratio = _num(s.get("ratio"))
        if ratio is not None:
            out.setdefault(str(s.get("exercise", "")), []).append(ratio)
    return out


def exercise_metrics(analysis: Mapping[str, Any], affected_side: str = "") -> list[ExerciseMetrics]:
    """Per-exercise metrics of one session, exercises in order of first appearance."""
    rows = rep_rows(analysis)
    sym = _symmetry_entries(analysis)
    order: list[str] = []
    for r in rows:
        if r.exercise not in order:
            order.append(r.exercise)
    out: list[ExerciseMetrics] = []
    for ex in order:
        reps = [r for r in rows if r.exercise == ex]
        aff = [r for r in reps if not affected_side or r.side == affected_side] or reps
        unaff = [r for r in reps if affected_side and r.side and r.side != affected_side]
        peak_a = _mean([r.peak_pct_mvc for r in aff])
        peak_u = _mean([r.peak_pct_mvc for r in unaff])
        symmetry = _mean(sym.get(ex) or [])
        n_syn = sum(1 for r in aff if r.synkinesis)
        out.append(ExerciseMetrics(
            exercise=ex,
            n_reps=len(aff),
            n_synkinesis_reps=n_syn,
            n_events=sum(r.events for r in aff),
            synkinesis_rate=n_syn / len(aff) if aff else None,
            isolation=_mean([r.isolation for r in aff]),
            cocontraction=_mean([r.cocontraction for r in aff]),
            peak_pct_mvc_affected=peak_a,
            peak_pct_mvc_unaffected=peak_u,
            symmetry=symmetry,
            time_in_band_s=_mean([r.time_in_band_s for r in aff]),
        ))
    return out


@dataclass(frozen=True)
class Table:
    """A table as reports show it, the same cells in HTML and PDF.

    ``left`` columns are text (left-aligned); ``row_classes`` marks rows (``"syn"``: shaded, a
    rep with synkinesis; ``"side"``: a further side of the rep above); ``notes`` are printed
    under the table.
    """

    key: str
    title: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    left: int = 1
    row_classes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryContext:
    """What the history says about a session, for its report: plain sentences (comparison with
    the previous session, the patient's trend) and tables; built by
    :func:`emgfeedback.views.history.progress.context_for`."""

    sentences: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
