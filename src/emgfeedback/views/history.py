"""Patient history: the metrics of every analysed session in one SQLite file, and progress reports.

The database (``history.sqlite``) lives in the user's data directory
(``$XDG_DATA_HOME/emgfeedback/``, by default ``~/.local/share/emgfeedback/``); ``$EMGFEEDBACK_DB``
or ``--db`` name another file.  It stores per session the pseudonymous patient id, date, source
file, affected side, program, the JSON of ``analyze`` (numbers, never raw signals: the EDF file
stays the raw record) and per-exercise metrics (:class:`~emgfeedback.views.summary.ExerciseMetrics`).

Each session is written in one transaction, so a crash or ``kill -9`` in the middle of an import
leaves either the whole session or nothing.  A session already stored (same patient, date and
source) is skipped, so importing a folder twice is harmless.

Threads: a :class:`History` belongs to the thread that opened it (SQLite's rule); the GUI calls
:func:`store_session` (which opens, writes and closes) from its worker thread when a live session
stops.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from emgfeedback import __version__
from emgfeedback.errors import DatabaseError, EmgError
from emgfeedback.validate import validate_patient_id
from emgfeedback.recording import Recording
from emgfeedback.views.summary import (
    ExerciseMetrics,
    SessionInput,
    exercise_metrics,
    json_ready,
)

__all__ = [
    "DB_ENV",
    "History",
    "ImportResult",
    "StoredSession",
    "Trend",
    "default_db_path",
    "import_folder",
    "render_progress_html",
    "store_session",
    "write_progress",
]

log = logging.getLogger(__name__)

#: Environment variable overriding the database path.
DB_ENV = "EMGFEEDBACK_DB"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    source TEXT NOT NULL,
    affected_side TEXT NOT NULL,
    program TEXT NOT NULL,
    fs REAL NOT NULL,
    duration_s REAL NOT NULL,
    channels TEXT NOT NULL,
    n_exercises INTEGER NOT NULL,
    analysis TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    UNIQUE (patient_id, recorded_at, source)
);
CREATE INDEX sessions_patient ON sessions (patient_id, recorded_at);
CREATE TABLE exercise_metrics (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    exercise TEXT NOT NULL,
    n_reps INTEGER NOT NULL,
    n_synkinesis_reps INTEGER NOT NULL,
    n_events INTEGER NOT NULL,
    synkinesis_rate REAL,
    isolation REAL,
    cocontraction REAL,
    peak_pct_mvc_affected REAL,
    peak_pct_mvc_unaffected REAL,
    symmetry REAL,
    time_in_band_s REAL,
    PRIMARY KEY (session_id, exercise)
);
"""

_METRIC_COLUMNS = ("n_reps", "n_synkinesis_reps", "n_events", "synkinesis_rate", "isolation",
                   "cocontraction", "peak_pct_mvc_affected", "peak_pct_mvc_unaffected", "symmetry",
                   "time_in_band_s")


def default_db_path() -> Path:
    """``$EMGFEEDBACK_DB``, else ``$XDG_DATA_HOME/emgfeedback/history.sqlite``."""
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "emgfeedback" / "history.sqlite"


@dataclass(frozen=True)
class StoredSession:
    """A session as stored in the history."""

    id: int
    patient_id: str
    recorded_at: datetime
    source: str
    affected_side: str
    program: str
    duration_s: float
    metrics: dict[str, ExerciseMetrics]


class History:
    """The patient history database.

    Parameters
    ----------
    path:
        Database file; :func:`default_db_path` when ``None``.
    create:
        Create the file (and its folder) when absent.  Readers (``progress``) pass ``False`` so
        that a mistyped path gives an error instead of a new empty database.

    Raises
    ------
    DatabaseError
        The file is not an emgfeedback history (not SQLite, damaged, another schema), or absent
        with ``create=False``.  The file is never modified in that case.
    """

    def __init__(self, path: Path | None = None, create: bool = True) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if not self.path.exists():
            if not create:
                raise DatabaseError(f"{self.path}: no history database there; add sessions with "
                                    "'emgfeedback history import FOLDER' or pass --db")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:  # patient data: owner only (SQLite gives its journal the same mode)
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
            except OSError as exc:
                raise DatabaseError(f"{self.path}: cannot create the history database "
                                    f"({exc.strerror or exc})") from None
            self._fresh = True
        else:
            self._refuse_non_database()
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot open the history database ({exc})") from None
        try:
            self._check_or_create()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise DatabaseError(f"{self.path}: corrupt or not a history database ({exc}); left "
                                "untouched: move it away or pass --db") from None
        except DatabaseError:
            self._conn.close()
            raise

    _fresh = False

    def _refuse_non_database(self) -> None:
        """An existing file that is not an SQLite database is an error that changes nothing
        (SQLite would happily write a schema into an empty file)."""
        from emgfeedback.validate import input_file

        try:
            input_file(self.path, "history database")
            with open(self.path, "rb") as f:
                head = f.read(16)
        except (EmgError, OSError) as exc:
            raise DatabaseError(f"{exc}") from None
        if head != b"SQLite format 3\x00":
            what = "an empty file" if not head else "not an SQLite file"
            raise DatabaseError(f"{self.path}: {what}: corrupt or not a history database; left "
                                "untouched: pass another --db (a new path creates one)")

    def _check_or_create(self) -> None:
        c = self._conn
        c.execute("PRAGMA foreign_keys = ON")
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables and self._fresh:
            c.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute("INSERT INTO meta VALUES ('schema_version', ?), ('created_by', ?)",
                          (str(SCHEMA_VERSION), f"emgfeedback {__version__}"))
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
            return
        if not {"meta", "sessions", "exercise_metrics"} <= tables:
            raise DatabaseError(f"{self.path}: an SQLite file, but not an emgfeedback history "
                                f"(tables: {', '.join(sorted(tables))}); left untouched")
        row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or int(row[0]) > SCHEMA_VERSION:
            raise DatabaseError(f"{self.path}: history schema version {row[0] if row else '?'} is "
                                f"not supported by emgfeedback {__version__}; update emgfeedback")
        check = c.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise DatabaseError(f"{self.path}: database damaged ({check}); left untouched: restore "
                                "a backup or re-import the EDF files into a new --db")

    # -------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- writing
    def add(self, session: SessionInput) -> int | None:
        """Store one analysed session in one transaction.

        Returns its id, or ``None`` when it was already stored (same patient, date and source).

        Raises
        ------
        CalibrationError
            The session has no calibration: its %MVC values cannot be compared to other sessions.
        """
        session.require_calibration()
        metrics = exercise_metrics(session.analysis, session.affected_side)
        analysis = json.dumps(json_ready(session.analysis), separators=(",", ":"), allow_nan=False)
        c = self._conn
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                cur = c.execute(
                    "INSERT INTO sessions (patient_id, recorded_at, source, affected_side, program,"
                    " fs, duration_s, channels, n_exercises, analysis, stored_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (patient_id, recorded_at, source) DO NOTHING",
                    (session.patient_id, session.recorded_at.isoformat(timespec="seconds"),
                     session.source, session.affected_side, session.program, session.fs,
                     session.duration_s, json.dumps(session.channels), len(metrics), analysis,
                     datetime.now().isoformat(timespec="seconds")))
                if cur.rowcount == 0:
                    c.execute("ROLLBACK")
                    return None
                sid = int(cur.lastrowid or 0)
                c.executemany(
                    f"INSERT INTO exercise_metrics (session_id, exercise, {', '.join(_METRIC_COLUMNS)})"
                    f" VALUES (?, ?, {', '.join('?' * len(_METRIC_COLUMNS))})",
                    [(sid, m.exercise, *(getattr(m, k) for k in _METRIC_COLUMNS)) for m in metrics])
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot store the session of {session.source} "
                                f"({exc})") from None
        log.info("stored %s (%s, %s) as session %d", session.source, session.patient_id,
                 session.recorded_at, sid)
        return sid

    # -------------------------------------------------------------- reading
    def contains(self, patient_id: str, recorded_at: datetime, source: str) -> bool:
        """Whether the session (patient, start, source) is stored already."""
        try:
            row = self._conn.execute(
                "SELECT 1 FROM sessions WHERE patient_id = ? AND recorded_at = ? AND source = ?",
                (patient_id, recorded_at.isoformat(timespec="seconds"), source)).fetchone()
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot read sessions ({exc})") from None
        return row is not None

    def patients(self) -> list[str]:
        """Stored patient ids; an id that breaks the patient-id rule (a database written by
        another tool or an older version) is withheld, never shown."""
        from emgfeedback.validate import patient_id_problem

        ids = [r[0] for r in self._conn.execute(
            "SELECT DISTINCT patient_id FROM sessions ORDER BY patient_id")]
        bad = [i for i in ids if patient_id_problem(i) is not None]
        if bad:
            log.warning("%s: %d patient id(s) withheld: they break the pseudonym rule "
                        "(names, dates or digits only)", self.path, len(bad))
        return [i for i in ids if i not in bad]

    def sessions(self, patient_id: str) -> list[StoredSession]:
        """Stored sessions of ``patient_id``, oldest first (an empty list when none)."""
        validate_patient_id(patient_id)
        try:
            rows = self._conn.execute(
                "SELECT id, patient_id, recorded_at, source, affected_side, program, duration_s"
                " FROM sessions WHERE patient_id = ? ORDER BY recorded_at, id",
                (patient_id,)).fetchall()
            out = []
            for r in rows:
                mets = {}
                for m in self._conn.execute(
                        f"SELECT exercise, {', '.join(_METRIC_COLUMNS)} FROM exercise_metrics"
                        " WHERE session_id = ?", (r[0],)):
                    mets[m[0]] = ExerciseMetrics(m[0], *m[1:])
                out.append(StoredSession(r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4], r[5],
                                         r[6], mets))
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot read sessions ({exc})") from None
        return out


def store_session(session: SessionInput, db: Path | None = None) -> int | None:
    """Store one analysed session in the history; what the GUI calls when a live session stops.

    Opens the database (creating it if needed), writes the session in one transaction and closes
    it.  Call it from a worker thread, not the GUI thread (it does file I/O).

    Returns
    -------
    int or None
        The new session's id, or ``None`` when it was already stored.

    Raises
    ------
    CalibrationError
        The session has no calibration.
    DatabaseError
        The database is corrupt or not writable; it is left untouched.
    """
    with History(db) as h:
        return h.add(session)


# ------------------------------------------------------------------ import
@dataclass
class ImportResult:
    imported: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # already stored
    failed: list[tuple[Path, str]] = field(default_factory=list)


class _ProgressBar:
    """A one-line text progress bar on a terminal; a line per 10 % otherwise (logs, CI)."""

    def __init__(self, total: int, out: TextIO | None, width: int = 30) -> None:
        self.total = max(1, total)
        self.out = out
        self.width = width
        self.tty = bool(out is not None and hasattr(out, "isatty") and out.isatty())
        self._last_decile = -1

    def update(self, done: int, label: str) -> None:
        if self.out is None:
            return
        frac = done / self.total
        if self.tty:
            n = int(round(frac * self.width))
            self.out.write(f"\r[{'#' * n}{'.' * (self.width - n)}] {done}/{self.total} "
                           f"{label[-40:]:<40}")
            if done >= self.total:
                self.out.write("\n")
        else:
            decile = int(frac * 10)
            if decile != self._last_decile or done >= self.total:
                self._last_decile = decile
                self.out.write(f"{done}/{self.total} sessions ({100 * frac:.0f} %)\n")
        self.out.flush()


def _read_new_edf(path: Path, h: History,
                  opener: Callable[[Path], Recording] | None = None) -> SessionInput | None:
    """The default reader of :func:`import_folder`: the recording and its sidecar with its
    analysis (:func:`emgfeedback.views.report.analysis_of`: the one saved after the session, else
    ``analyze``), unless the history holds the session already (then ``None``, without analysing);
    the file is closed before returning (the history keeps no signal)."""
    from emgfeedback.io.importers import load
    from emgfeedback.views.report import analysis_of, recording_identity, session_from_recording

    with (opener or load)(path) as rec:
        if h.contains(*recording_identity(rec)):
            return None
        return session_from_recording(rec, analysis_of(rec)[0], keep_signal=False)


def import_folder(
    folder: Path,
    db: Path | None = None,
    reader: Callable[[Path], SessionInput] | None = None,
    pattern: str = "*.edf",
    progress: TextIO | None = sys.stderr,
    opener: Callable[[Path], Recording] | None = None,
) -> ImportResult:
    """Analyse every session file under ``folder`` and store the ones not yet in the history.

    Parameters
    ----------
    reader:
        Turns a file into an analysed :class:`SessionInput`.  Default: the recording (EDF+ and
        its sidecar, any format :func:`emgfeedback.io.importers.load` reads) analysed by
        ``analyze``; a session already stored is recognised from its patient id, start and file
        name before it is analysed, so importing a folder again is quick.
    pattern:
        Glob of session files, searched recursively.
    progress:
        Where the progress bar goes (``None``: no bar).
    opener:
        Opens each file for the default reader (default :func:`emgfeedback.io.importers.load`;
        the CLI's applies the import options and ``--patient``/``--affected-side``).

    A file that cannot be read or has no calibration is reported in :attr:`ImportResult.failed`
    with its one-line reason and the import goes on; each stored session is one transaction.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatabaseError(f"{folder}: not a folder of session files")
    files = sorted(folder.rglob(pattern))
    result = ImportResult()
    bar = _ProgressBar(len(files), progress)
    with History(db) as h:
        for i, f in enumerate(files, start=1):
            try:
                session = reader(f) if reader is not None else _read_new_edf(f, h, opener)
                sid = h.add(session) if session is not None else None
            except DatabaseError:
                raise
            except EmgError as exc:
                result.failed.append((f, str(exc)))
            else:
                (result.imported if sid is not None else result.skipped).append(f)
            bar.update(i, f.name)
    return result


# ------------------------------------------------------------------ progress
#: Metrics shown in a progress report: (attribute, title, lower is better).
PROGRESS_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("synkinesis_rate", "Synkinesis rate (share of affected-side reps)", True),
    ("isolation", "Isolation (1 = only the target moved)", False),
    ("symmetry", "Symmetry (affected / unaffected mean %MVC while active)", False),
    ("peak_pct_mvc_affected", "Peak %MVC of the affected side", False),
)


@dataclass(frozen=True)
class Trend:
    """Least-squares trend of one metric of one exercise across sessions."""

    exercise: str
    metric: str
    n: int
    first: float
    last: float
    slope_per_30d: float
    direction: str  # "rising", "falling", "steady" or "–" (fewer than 3 sessions)


def trends(sessions: Sequence[StoredSession], steady: float = 0.02) -> list[Trend]:
    """Per exercise and metric, the slope over time (per 30 days) and its direction.

    ``direction`` is "steady" when the fitted change over the whole period is below ``steady``
    times the metric's scale (1 for rates, isolation and symmetry, 100 for %MVC).
    """
    out: list[Trend] = []
    if not sessions:
        return out
    t0 = sessions[0].recorded_at
    exercises = list(dict.fromkeys(ex for s in sessions for ex in s.metrics))
    for ex in exercises:
        for attr, _title, _lower in PROGRESS_METRICS:
            pts = [((s.recorded_at - t0).total_seconds() / 86400.0, getattr(s.metrics[ex], attr))
                   for s in sessions if ex in s.metrics and getattr(s.metrics[ex], attr) is not None]
            if not pts:
                continue
            d = np.array([p[0] for p in pts])
            v = np.array([p[1] for p in pts], dtype=float)
            if len(pts) >= 3 and np.ptp(d) > 0:
                slope = float(np.polyfit(d, v, 1)[0])
                scale = 100.0 if attr.startswith("peak") else 1.0
                change = slope * float(np.ptp(d))
                direction = ("steady" if abs(change) < steady * scale
                             else "falling" if change < 0 else "rising")
            else:
                slope, direction = float("nan"), "–"
            out.append(Trend(ex, attr, len(pts), float(v[0]), float(v[-1]), slope * 30.0, direction))
    return out


def render_progress_html(patient_id: str, sessions: Sequence[StoredSession]) -> str:
    """A self-contained HTML progress report of one patient."""
    from emgfeedback.views import figures

    e = html.escape
    dates = [s.recorded_at for s in sessions]
    exercises = list(dict.fromkeys(ex for s in sessions for ex in s.metrics))
    series = {title: {ex: [getattr(s.metrics[ex], attr) if ex in s.metrics else None
                           for s in sessions] for ex in exercises}
              for attr, title, _ in PROGRESS_METRICS}
    tt = {attr: title for attr, title, _ in PROGRESS_METRICS}
    fig = figures.fig_progress(dates, series,
                               ylims={tt["synkinesis_rate"]: (-0.05, 1.05),
                                      tt["isolation"]: (-0.05, 1.05)},
                               refs={tt["symmetry"]: 1.0})
    png = base64.b64encode(figures.png_bytes(fig, dpi=90)).decode("ascii")
    titles = {attr: title for attr, title, _ in PROGRESS_METRICS}
    better = {attr: lower for attr, _t, lower in PROGRESS_METRICS}

    def fmt(attr: str, v: float | None) -> str:
        if v is None or v != v:
            return "–"
        return f"{v:.1f}" if attr.startswith("peak") else f"{v:.2f}"

    rows = []
    for t in trends(sessions):
        good = (t.direction == "falling") == better[t.metric] if t.direction in ("rising", "falling") else None
        cls = "" if good is None else (' class="good"' if good else ' class="bad"')
        rows.append(f"<tr data-exercise=\"{e(t.exercise)}\" data-metric=\"{t.metric}\">"
                    f"<td class=\"l\">{e(t.exercise)}</td><td class=\"l\">{e(titles[t.metric])}</td>"
                    f"<td>{t.n}</td><td>{fmt(t.metric, t.first)}</td><td>{fmt(t.metric, t.last)}</td>"
                    f"<td>{'–' if t.slope_per_30d != t.slope_per_30d else f'{t.slope_per_30d:+.3g}'}</td>"
                    f"<td{cls}>{t.direction}</td></tr>")
    srows = []
    for s in sessions:
        n_reps = sum(m.n_reps for m in s.metrics.values())
        n_syn = sum(m.n_synkinesis_reps for m in s.metrics.values())
        srows.append(f"<tr><td class=\"l\">{s.recorded_at:%Y-%m-%d %H:%M}</td>"
                     f"<td class=\"l\">{e(s.source)}</td><td>{s.duration_s / 60:.1f}</td>"
                     f"<td>{n_reps}</td><td>{n_syn}</td><td class=\"l\">{e(s.program or '–')}</td></tr>")
    css = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em}"
           "table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ddd;"
           "padding:.25em .6em;text-align:right}th{background:#f3f3f3}.l{text-align:left}"
           ".good{color:#2e7d32;font-weight:bold}.bad{color:#c62828;font-weight:bold}"
           "img{max-width:100%}.note{color:#666;font-size:.85em}")
    side = sessions[-1].affected_side if sessions else ""
    return "\n".join([
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>emgfeedback progress {e(patient_id)}</title><style>{css}</style></head><body>",
        f"<h1>Progress: patient {e(patient_id)}</h1>",
        f"<p>{len(sessions)} sessions from {dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d}; "
        f"affected side {e(side or 'not recorded')}.</p>",
        f'<figure><img alt="trends across sessions" src="data:image/png;base64,{png}"></figure>',
        "<h2>Trends</h2>",
        '<table class="trends"><thead><tr><th class="l">exercise</th><th class="l">metric</th>'
        "<th>sessions</th><th>first</th><th>last</th><th>slope per 30 days</th><th>trend</th>"
        "</tr></thead><tbody>", *rows, "</tbody></table>",
        '<p class="note">Trend: least-squares line over all sessions (3 or more); green where the '
        "change is an improvement. No validated cut-off exists: read with the therapist.</p>",
        "<h2>Sessions</h2>",
        '<table class="sessions"><thead><tr><th class="l">date</th><th class="l">source</th>'
        "<th>minutes</th><th>reps</th><th>reps with synkinesis</th><th class=\"l\">program</th>"
        "</tr></thead><tbody>", *srows, "</tbody></table>",
        f'<p class="note">emgfeedback {e(__version__)}. A training aid, not a diagnostic device.</p>',
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
            hint = f" (patients in it: {', '.join(known[:10])}{', ...' if len(known) > 10 else ''})" if known else ""
            raise DatabaseError(f"no sessions of patient {patient_id!r} in {h.path}{hint}")
    text = render_progress_html(patient_id, sessions)
    out = Path(out)
    from emgfeedback.validate import write_private

    write_private(out, text)  # 0600, atomic: never half a report over an earlier one
    return sessions
