"""Progress across sessions: trends per day, the comparison with the previous session, the
progress report (``emgfeedback progress PATIENT``).

**Trends are per day, never over minutes.**  The sessions of one calendar day are one point (the
mean of their values); a least-squares line over the days gives the slope (shown per 30 days).
A trend is claimed only with sessions on at least :data:`MIN_TREND_DAYS` different days spanning
at least :data:`MIN_TREND_SPAN_DAYS` days; before that the direction is "too early" and no slope
is shown.  "steady" means the fitted change over the whole span is below 2 % of the metric's
scale (1 for rates, isolation and symmetry; 100 for %MVC).  No validated cut-off exists for any
of these metrics: the words are a reading aid for the therapist, not a clinical judgement.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback import __version__
from emgfeedback.errors import DatabaseError
from emgfeedback.validate import validate_patient_id
from emgfeedback.views.history.db import History, StoredSession, session_content_id
from emgfeedback.views.summary import (
    GRADING,
    HistoryContext,
    SessionInput,
    Table,
    exercise_metrics,
)

__all__ = [
    "MIN_TREND_DAYS",
    "MIN_TREND_SPAN_DAYS",
    "PROGRESS_METRICS",
    "Trend",
    "context_for",
    "context_from_db",
    "fig_progress",
    "render_progress_html",
    "stored_view",
    "trends",
    "write_progress",
]

#: A trend needs sessions on at least this many different days ...
MIN_TREND_DAYS = 3
#: ... spanning at least this many days (first to last).
MIN_TREND_SPAN_DAYS = 14

#: Metrics shown in a progress report: (attribute, title, lower is better).
PROGRESS_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("synkinesis_rate", "Synkinesis rate (share of affected-side reps)", True),
    ("isolation", "Isolation (1 = only the target moved)", False),
    ("symmetry", "Symmetry (affected / unaffected mean %MVC while active)", False),
    ("peak_pct_mvc_affected", "Peak %MVC of the affected side", False),
)
_TITLES = {attr: title for attr, title, _ in PROGRESS_METRICS}
_LOWER_BETTER = {attr: lower for attr, _t, lower in PROGRESS_METRICS}
_PLAIN = {"synkinesis_rate": "share of reps with synkinesis", "isolation": "isolation",
          "symmetry": "symmetry", "peak_pct_mvc_affected": "peak effort of the affected side"}
TOO_EARLY = "too early"


@dataclass(frozen=True)
class Trend:
    """Trend of one metric of one exercise across days.

    ``n`` sessions on ``days`` different days spanning ``span_days``; ``first``/``last`` are the
    values of the first and last day; ``slope_per_30d`` is NaN and ``direction`` "too early"
    until the minimum span is reached (module docstring).
    """

    exercise: str
    metric: str
    n: int
    first: float
    last: float
    slope_per_30d: float
    direction: str  # "rising", "falling", "steady" or "too early"
    days: int = 0
    span_days: int = 0

    @property
    def improving(self) -> bool | None:
        """Whether the trend is an improvement (``None`` when steady or too early); symmetry
        improves towards 1 (both sides alike), from either side."""
        if self.direction not in ("rising", "falling"):
            return None
        if self.metric == "symmetry":
            return abs(1.0 - self.last) < abs(1.0 - self.first)
        return (self.direction == "falling") == _LOWER_BETTER[self.metric]


def better(attr: str, now: float, was: float) -> bool:
    """Whether ``now`` is better than ``was`` for metric ``attr`` (symmetry: nearer to 1)."""
    if attr == "symmetry":
        return abs(1.0 - now) < abs(1.0 - was)
    return (now < was) == _LOWER_BETTER[attr]


def _days(sessions: Sequence[StoredSession]) -> list[int]:
    d0 = sessions[0].recorded_at.date()
    return [(s.recorded_at.date() - d0).days for s in sessions]


def trends(sessions: Sequence[StoredSession], steady: float = 0.02) -> list[Trend]:
    """Per exercise and metric, the trend over days (module docstring), sessions oldest first."""
    out: list[Trend] = []
    if not sessions:
        return out
    day_of = _days(sessions)
    exercises = list(dict.fromkeys(ex for s in sessions for ex in s.metrics))
    for ex in exercises:
        for attr, _title, _lower in PROGRESS_METRICS:
            by_day: dict[int, list[float]] = {}
            n = 0
            for s, day in zip(sessions, day_of):
                val = getattr(s.metrics[ex], attr) if ex in s.metrics else None
                if val is not None:
                    by_day.setdefault(day, []).append(float(val))
                    n += 1
            if not by_day:
                continue
            d = np.array(sorted(by_day), dtype=float)
            v = np.array([np.mean(by_day[int(k)]) for k in d])
            span = int(d[-1] - d[0])
            if len(d) >= MIN_TREND_DAYS and span >= MIN_TREND_SPAN_DAYS:
                slope = float(np.polyfit(d, v, 1)[0])
                scale = 100.0 if attr.startswith("peak") else 1.0
                change = slope * span
                direction = ("steady" if abs(change) < steady * scale
                             else "falling" if change < 0 else "rising")
                per30 = slope * 30.0
            else:
                per30, direction = float("nan"), TOO_EARLY
            out.append(Trend(ex, attr, n, float(v[0]), float(v[-1]), per30, direction,
                             len(d), span))
    return out


def stored_view(session: SessionInput) -> StoredSession:
    """A session not (yet) stored, as the history would return it (id 0)."""
    mets = {m.exercise: m for m in exercise_metrics(session.analysis, session.affected_side)}
    return StoredSession(0, session.patient_id, session.recorded_at, session.source,
                         session.affected_side, session.program, session.duration_s, mets,
                         session_content_id(session), dict(session.clinician or {}))


def _fmt(attr: str, v: float | None) -> str:
    if v is None or v != v:
        return "–"
    if attr == "synkinesis_rate":
        return f"{100 * v:.0f} %"
    return f"{v:.1f}" if attr.startswith("peak") else f"{v:.2f}"


def _slope(attr: str, v: float) -> str:
    """A slope per 30 days in the unit its values are shown in (rates in % points)."""
    if v != v:
        return "–"
    if attr == "synkinesis_rate":
        return f"{100 * v:+.0f} %"
    return f"{v:+.1f}" if attr.startswith("peak") else f"{v:+.2f}"


def _span_words(t: Trend) -> str:
    return f"{t.n} session{'s' if t.n != 1 else ''} on {t.days} day{'s' if t.days != 1 else ''}"


def context_for(session: SessionInput, stored: Sequence[StoredSession]) -> HistoryContext:
    """The history's view of ``session`` for its report: the comparison with the patient's
    previous session (the latest stored one that started before it and is not the same
    content) and the trend of the sessions up to and including this one."""
    cid = session_content_id(session)
    earlier = [s for s in stored if s.content_id != cid and s.recorded_at < session.recorded_at
               and not (s.recorded_at == session.recorded_at and s.source == session.source)]
    earlier.sort(key=lambda s: s.recorded_at)
    me = stored_view(session)
    sentences: list[str] = []
    tables: list[Table] = []
    if not earlier:
        sentences.append("This is the patient's first session in the history: nothing to compare "
                         "with yet.")
        return HistoryContext(tuple(sentences), ())
    prev = earlier[-1]
    gap = (session.recorded_at.date() - prev.recorded_at.date()).days
    when = "the same day" if gap == 0 else f"{gap} day{'s' if gap != 1 else ''} earlier"
    sentences.append(f"Previous session: {prev.recorded_at:%Y-%m-%d %H:%M} ({when}, "
                     f"{prev.source}).")
    rows: list[tuple[str, ...]] = []
    classes: list[str] = []
    for ex, m in me.metrics.items():
        pm = prev.metrics.get(ex)
        for attr, _title, _lower in PROGRESS_METRICS:
            now = getattr(m, attr)
            was = getattr(pm, attr) if pm is not None else None
            if now is None and was is None:
                continue
            word, cls = "–", ""
            if now is not None and was is not None:
                scale = 100.0 if attr.startswith("peak") else 1.0
                diff = now - was
                if abs(diff) < 0.02 * scale:
                    word = "about the same"
                else:
                    word, cls = ("better", "good") if better(attr, now, was) else ("worse", "bad")
            rows.append((ex, _TITLES[attr], _fmt(attr, now), _fmt(attr, was), word))
            classes.append(cls)
    if rows:
        tables.append(Table("previous", "Compared with the previous session",
                            ("exercise", "metric", "this session",
                             f"previous ({prev.recorded_at:%Y-%m-%d})", "change"),
                            tuple(rows), left=2, row_classes=tuple(classes),
                            notes=("'about the same': within 2 % of the scale (0.02, or 2 %MVC)."
                                   " No validated cut-off exists: read with the therapist.",)))
    m_now = {ex: m.synkinesis_rate for ex, m in me.metrics.items()}
    m_was = {ex: m.synkinesis_rate for ex, m in prev.metrics.items()}
    common = [ex for ex in m_now if m_now[ex] is not None and m_was.get(ex) is not None]
    if common:
        bits = [f"{ex} {_fmt('synkinesis_rate', m_now[ex])} (was "
                f"{_fmt('synkinesis_rate', m_was[ex])})" for ex in common]
        sentences.append("Share of reps with synkinesis: " + ", ".join(bits) + ".")
    series = [*earlier, me]
    ts = trends(series)
    if ts and all(t.direction == TOO_EARLY for t in ts):
        t0 = max(ts, key=lambda t: t.n)
        sentences.append(f"Too early for a trend: {_span_words(t0)} spanning {t0.span_days} "
                         f"days (a trend needs sessions on {MIN_TREND_DAYS} days over at least "
                         f"{MIN_TREND_SPAN_DAYS} days).")
    else:
        for t in ts:
            if t.direction in ("rising", "falling") and t.metric in ("synkinesis_rate",
                                                                     "symmetry"):
                verdict = "an improvement" if t.improving else "a change for the worse"
                sentences.append(f"Trend over {_span_words(t)} ({t.span_days} days): "
                                 f"{t.exercise} {_PLAIN[t.metric]} {t.direction} "
                                 f"({_fmt(t.metric, t.first)} to {_fmt(t.metric, t.last)}), "
                                 f"{verdict}.")
        tables.append(_trend_table(ts, "trend", "The patient's trend"))
    return HistoryContext(tuple(sentences), tuple(tables))


def context_from_db(session: SessionInput, db: Path | None = None) -> HistoryContext | None:
    """:func:`context_for` with the sessions of ``session``'s patient in the history ``db``
    (default: :func:`~emgfeedback.views.history.db.default_db_path` when that file exists;
    ``None`` when there is no history to look at).

    Raises
    ------
    DatabaseError
        ``db`` named but absent, corrupt, or not a history.
    """
    from emgfeedback.views.history.db import default_db_path

    if db is None:
        db = default_db_path()
        if not db.is_file():
            return None
    with History(db, create=False) as h:
        return context_for(session, h.sessions(session.patient_id))


def _trend_table(ts: Sequence[Trend], key: str, title: str) -> Table:
    rows, classes = [], []
    for t in ts:
        rows.append((t.exercise, _TITLES[t.metric], str(t.n), _fmt(t.metric, t.first),
                     _fmt(t.metric, t.last),
                     _slope(t.metric, t.slope_per_30d), str(t.span_days), t.direction))
        classes.append("" if t.improving is None else ("good" if t.improving else "bad"))
    return Table(key, title, ("exercise", "metric", "sessions", "first", "last",
                              "slope per 30 days", "span (days)", "trend"),
                 tuple(rows), left=2, row_classes=tuple(classes),
                 notes=(f"Trend: least-squares line over days (sessions of one day averaged), "
                        f"claimed with sessions on {MIN_TREND_DAYS} or more days spanning "
                        f"{MIN_TREND_SPAN_DAYS} days or more; green where the change is an "
                        "improvement (symmetry: towards 1). No validated cut-off exists: read with the "
                        "therapist.",))


def fig_progress(
    dates: Sequence[datetime],
    series: Mapping[str, Mapping[str, Sequence[float | None]]],
    ylims: Mapping[str, tuple[float, float]] | None = None,
    refs: Mapping[str, float] | None = None,
) -> Any:
    """Trends across sessions: one panel per metric, one line per exercise, x = date.

    ``series``: metric title -> exercise -> one value per session (``None`` where the session
    did not contain the exercise); ``ylims``, ``refs``: per title, fixed y limits and a dashed
    reference line (e.g. symmetry 1.0).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from emgfeedback.views.report.figures import exercise_colors

    titles = list(series)
    nrows = max(1, (len(titles) + 1) // 2)
    fig = Figure(figsize=(11, 3.2 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, 2, squeeze=False).ravel()
    exercises = list(dict.fromkeys(ex for t in titles for ex in series[t]))
    colors = exercise_colors(exercises)
    x = np.array(dates, dtype="datetime64[s]")
    for ax, title in zip(axes, titles):
        for ex, vals in series[title].items():
            y = np.array([np.nan if v is None else v for v in vals], dtype=float)
            if np.all(np.isnan(y)):
                continue
            ax.plot(x, y, "o-", color=colors[ex], label=ex, ms=4, lw=1.2)
        ax.set_title(title, fontsize=10, loc="left")
        if ylims and title in ylims:
            ax.set_ylim(*ylims[title])
        if refs and title in refs:
            ax.axhline(refs[title], color="k", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        for lab in ax.get_xticklabels():
            lab.set_rotation(30)
            lab.set_ha("right")
    for ax in axes[len(titles):]:
        ax.set_axis_off()
    handles = [Patch(color=c, label=ex) for ex, c in colors.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(6, len(handles)), fontsize=8,
               frameon=False)
    return fig


def render_progress_html(patient_id: str, sessions: Sequence[StoredSession]) -> str:
    """A self-contained HTML progress report of one patient."""
    from emgfeedback.views.report.figures import png_bytes
    from emgfeedback.views.report.model import TRAINING_AID

    e = html.escape
    dates = [s.recorded_at for s in sessions]
    exercises = list(dict.fromkeys(ex for s in sessions for ex in s.metrics))
    series = {title: {ex: [getattr(s.metrics[ex], attr) if ex in s.metrics else None
                           for s in sessions] for ex in exercises}
              for attr, title, _ in PROGRESS_METRICS}
    fig = fig_progress(dates, series,
                       ylims={_TITLES["synkinesis_rate"]: (-0.05, 1.05),
                              _TITLES["isolation"]: (-0.05, 1.05)},
                       refs={_TITLES["symmetry"]: 1.0})
    png = base64.b64encode(png_bytes(fig, dpi=90)).decode("ascii")

    def num(attr: str, v: float | None) -> str:
        if v is None or v != v:
            return "–"
        return f"{v:.1f}" if attr.startswith("peak") else f"{v:.2f}"

    def slope(t: Trend) -> str:
        v = t.slope_per_30d
        if v != v:
            return "–"
        return f"{v:+.1f}" if t.metric.startswith("peak") else f"{v:+.3f}"

    rows = []
    ts = trends(sessions)
    for t in ts:
        cls = "" if t.improving is None else (' class="good"' if t.improving else ' class="bad"')
        rows.append(f"<tr data-exercise=\"{e(t.exercise)}\" data-metric=\"{t.metric}\">"
                    f"<td class=\"l\">{e(t.exercise)}</td><td class=\"l\">{e(_TITLES[t.metric])}</td>"
                    f"<td>{t.n}</td><td>{num(t.metric, t.first)}</td><td>{num(t.metric, t.last)}</td>"
                    f"<td>{slope(t)}</td>"
                    f"<td{cls}>{t.direction}</td><td>{t.days}</td><td>{t.span_days}</td></tr>")
    srows = []
    for s in sessions:
        n_reps = sum(m.n_reps for m in s.metrics.values())
        n_syn = sum(m.n_synkinesis_reps for m in s.metrics.values())
        grades = [str(s.clinician.get(k)) if s.clinician.get(k) is not None else "–"
                  for k in GRADING]
        notes = str(s.clinician.get("notes") or "")
        srows.append(f"<tr><td class=\"l\">{s.recorded_at:%Y-%m-%d %H:%M}</td>"
                     f"<td class=\"l\">{e(s.source)}</td><td>{s.duration_s / 60:.1f}</td>"
                     f"<td>{n_reps}</td><td>{n_syn}</td><td class=\"l\">{e(s.program or '–')}</td>"
                     + "".join(f"<td>{g}</td>" for g in grades)
                     + f"<td class=\"l\">{e(notes)}</td></tr>")
    css = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em}"
           "table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ddd;"
           "padding:.25em .6em;text-align:right}th{background:#f3f3f3}.l{text-align:left}"
           ".good{color:#2e7d32;font-weight:bold}.bad{color:#c62828;font-weight:bold}"
           "img{max-width:100%}.note{color:#666;font-size:.85em}"
           ".aid{border:1px solid #b26a00;background:#fff8e6;padding:.4em .8em;font-size:.9em}")
    side = sessions[-1].affected_side if sessions else ""
    early = ts and all(t.direction == TOO_EARLY for t in ts)
    day_count = len({s.recorded_at.date() for s in sessions})
    span = (dates[-1].date() - dates[0].date()).days
    return "\n".join([
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>emgfeedback progress {e(patient_id)}</title><style>{css}</style></head><body>",
        f"<h1>Progress: patient {e(patient_id)}</h1>",
        f"<p>{len(sessions)} sessions on {day_count} days from {dates[0]:%Y-%m-%d} to "
        f"{dates[-1]:%Y-%m-%d} ({span} days); affected side {e(side or 'not recorded')}.</p>",
        f'<p class="aid">{e(TRAINING_AID)}</p>',
        (f'<p id="too-early"><b>Too early for a trend</b>: a trend needs sessions on '
         f"{MIN_TREND_DAYS} different days spanning at least {MIN_TREND_SPAN_DAYS} days.</p>"
         if early else ""),
        f'<figure><img alt="metrics across sessions" src="data:image/png;base64,{png}"></figure>',
        "<h2>Trends</h2>",
        '<table class="trends"><thead><tr><th class="l">exercise</th><th class="l">metric</th>'
        "<th>sessions</th><th>first</th><th>last</th><th>slope per 30 days</th><th>trend</th>"
        "<th>days</th><th>span (days)</th></tr></thead><tbody>", *rows, "</tbody></table>",
        f'<p class="note">Trend: least-squares line over days (the sessions of one day averaged), '
        f"claimed only with sessions on {MIN_TREND_DAYS} or more days spanning "
        f"{MIN_TREND_SPAN_DAYS} days or more; green where the change is an improvement. No "
        "validated cut-off exists: read with the therapist.</p>",
        "<h2>Sessions</h2>",
        '<table class="sessions"><thead><tr><th class="l">date</th><th class="l">source</th>'
        "<th>minutes</th><th>reps</th><th>reps with synkinesis</th><th class=\"l\">program</th>"
        + "".join(f"<th>{e(title)}</th>" for title, _lo, _hi in GRADING.values())
        + "<th class=\"l\">therapist's notes</th></tr></thead><tbody>", *srows, "</tbody></table>",
        f'<p class="note">emgfeedback {e(__version__)}.</p>',
        "</body></html>",
    ])


def write_progress(patient_id: str, out: Path, db: Path | None = None) -> list[StoredSession]:
    """Write the progress report of ``patient_id`` to ``out``; return its sessions.

    Raises
    ------
    DatabaseError
        No database, a corrupt one, or no session of this patient; ``out`` is not touched.
    """
    validate_patient_id(patient_id)
    with History(db, create=False) as h:
        sessions = h.sessions(patient_id)
        if not sessions:
            known = h.patients()
            more = ", ..." if len(known) > 10 else ""
            hint = f" (patients in it: {', '.join(known[:10])}{more})" if known else ""
            raise DatabaseError(f"no sessions of patient {patient_id!r} in {h.path}{hint}")
    text = render_progress_html(patient_id, sessions)
    from emgfeedback.validate import write_private

    write_private(Path(out), text)  # 0600, atomic: never half a report over an earlier one
    return sessions
