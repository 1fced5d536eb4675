"""The patient history database: the metrics of every analysed session in one SQLite file.

The database (``history.sqlite``) lives in the user's data directory
(``$XDG_DATA_HOME/emgfeedback/``, by default ``~/.local/share/emgfeedback/``); ``$EMGFEEDBACK_DB``
or ``--db`` name another file.  It stores per session the pseudonymous patient id, date, source
file, affected side, program, the JSON of ``analyze`` (numbers, never raw signals: the EDF file
stays the raw record) and per-exercise metrics (:class:`~emgfeedback.views.summary.ExerciseMetrics`).

Each session is written in one transaction, so a crash or ``kill -9`` in the middle of an import
leaves either the whole session or nothing.  A session already stored (same patient, date and
source) or the same content (:attr:`SessionInput.content_id`, a hash of the signal: a copied or
renamed file) is skipped, so importing a folder twice, or a copy of it, is harmless.

Threads: a :class:`History` belongs to the thread that opened it (SQLite's rule); the GUI calls
:func:`store_session` (which opens, writes and closes) from its worker thread when a live session
stops.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from emgfeedback import __version__
from emgfeedback.errors import ConfigError, DatabaseError, EmgError
from emgfeedback.recording import Recording
from emgfeedback.validate import validate_patient_id
from emgfeedback.views.report.load import EDF_ID_PREFIX, samples_content_id
from emgfeedback.views.summary import (
    ExerciseMetrics,
    SessionInput,
    clinician_fields,
    exercise_metrics,
    json_ready,
)

__all__ = [
    "DB_ENV",
    "History",
    "SCHEMA_VERSION",
    "StoredSession",
    "default_db_path",
    "session_content_id",
    "store_session",
]

log = logging.getLogger(__name__)

#: Environment variable overriding the database path.
DB_ENV = "EMGFEEDBACK_DB"
#: 2: sessions gained ``content_id`` (unique: the same recorded content is one session) and
#: ``clinician`` (the therapist's notes and grading, JSON).  A version-1 file is upgraded in place
#: (one transaction); its sessions keep a null ``content_id`` (matched by patient, start and file
#: name only).
#: 3: the content id of an EDF/BDF file hashes its data records as stored (``edf-xxh3-128:``, a
#: fraction of the time: :func:`emgfeedback.views.report.load.content_id`) instead of its samples
#: in µV (``sha256:``).  A version-2 file is upgraded in place: its ``sha256:`` ids are kept, and
#: also copied to ``legacy_content_id``, so a copy of a file stored before is still recognised
#: (the importer computes the old id when a stored session of the same duration has no new one,
#: and records the new id on that session: :meth:`History.adopt_content_id`).  Older versions of
#: emgfeedback refuse a version-3 file (they would not recognise its ids).
SCHEMA_VERSION = 3

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
    content_id TEXT,
    clinician TEXT NOT NULL DEFAULT '{}',
    legacy_content_id TEXT,
    UNIQUE (patient_id, recorded_at, source)
);
CREATE INDEX sessions_patient ON sessions (patient_id, recorded_at);
CREATE UNIQUE INDEX sessions_content ON sessions (content_id);
CREATE UNIQUE INDEX sessions_legacy_content ON sessions (legacy_content_id);
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

_UPGRADE_1_TO_2 = (
    "ALTER TABLE sessions ADD COLUMN content_id TEXT",
    "ALTER TABLE sessions ADD COLUMN clinician TEXT NOT NULL DEFAULT '{}'",
    "CREATE UNIQUE INDEX sessions_content ON sessions (content_id)",
    "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
)

_UPGRADE_2_TO_3 = (
    "ALTER TABLE sessions ADD COLUMN legacy_content_id TEXT",
    "UPDATE sessions SET legacy_content_id = content_id WHERE content_id LIKE 'sha256:%'",
    "CREATE UNIQUE INDEX sessions_legacy_content ON sessions (legacy_content_id)",
    "UPDATE meta SET value = '3' WHERE key = 'schema_version'",
)

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
    content_id: str | None = None
    clinician: dict[str, Any] = field(default_factory=dict)


def session_content_id(session: SessionInput) -> str:
    """What identifies a session by content: its :attr:`SessionInput.content_id` (a hash of the
    signal), else, for a session known by its metrics only, a hash of its patient, start and
    analysis JSON (less the analysed file's path)."""
    if session.content_id:
        return session.content_id
    analysis = {k: v for k, v in session.analysis.items() if k != "file"}
    text = json.dumps(json_ready([session.patient_id, session.recorded_at.isoformat(), analysis]),
                      sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "analysis-sha256:" + hashlib.sha256(text.encode()).hexdigest()


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
        try:
            version = int(row[0]) if row is not None else None
        except ValueError:
            version = None
        if version is None or version > SCHEMA_VERSION:
            raise DatabaseError(f"{self.path}: history schema version {row[0] if row else '?'} is "
                                f"not supported by emgfeedback {__version__}; update emgfeedback")
        check = c.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise DatabaseError(f"{self.path}: database damaged ({check}); left untouched: restore "
                                "a backup or re-import the EDF files into a new --db")
        if version < SCHEMA_VERSION:
            steps = (_UPGRADE_1_TO_2 if version == 1 else ()) + _UPGRADE_2_TO_3
            c.execute("BEGIN IMMEDIATE")  # one transaction: the whole upgrade or nothing
            try:
                for stmt in steps:
                    c.execute(stmt)
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
            log.info("%s: history upgraded from schema %d to %d", self.path, version,
                     SCHEMA_VERSION)

    # -------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- writing
    def add(self, session: SessionInput, old_id: Callable[[], str] | None = None
            ) -> int | None:
        """Store one analysed session in one transaction.

        Returns its id, or ``None`` when it was already stored (same patient, date and source,
        or the same content: :func:`session_content_id`, or for a copy of an EDF/BDF session
        stored before schema 3 the id of its samples, computed by ``old_id()`` or from
        ``session.signal``: :meth:`knows_content`).

        Raises
        ------
        CalibrationError
            The session has no calibration: its %MVC values cannot be compared to other sessions.
        """
        session.require_calibration()
        signal = session.signal
        if old_id is None and signal is not None:
            def old_id() -> str:
                assert signal is not None
                return samples_content_id(signal)
        if old_id is not None and session.content_id and \
                self.knows_content(session.content_id, session.duration_s, old_id):
            return None  # a copy of a recording stored before schema 3, known by its old id
        metrics = exercise_metrics(session.analysis, session.affected_side)
        analysis = json.dumps(json_ready(session.analysis), separators=(",", ":"), allow_nan=False)
        c = self._conn
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                cur = c.execute(
                    "INSERT INTO sessions (patient_id, recorded_at, source, affected_side, program,"
                    " fs, duration_s, channels, n_exercises, analysis, stored_at, content_id,"
                    " clinician) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (session.patient_id, session.recorded_at.isoformat(timespec="seconds"),
                     session.source, session.affected_side, session.program, session.fs,
                     session.duration_s, json.dumps(session.channels, allow_nan=False), len(metrics),
                     analysis,
                     datetime.now().isoformat(timespec="seconds"), session_content_id(session),
                     json.dumps(json_ready(session.clinician or {}), allow_nan=False)))
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

    def set_clinician(self, session_id: int, value: Mapping[str, Any]) -> dict[str, Any]:
        """Store the therapist's notes and grading of a stored session (the window calls it when
        they are entered after the session was stored); returns what was stored.

        Raises
        ------
        ConfigError
            A field of the wrong type or out of range (named); nothing is changed.
        DatabaseError
            No such session, or the database cannot be written.
        """
        fields, problems = clinician_fields(value)
        if problems:
            raise ConfigError("therapist's entries: " + "; ".join(problems))
        try:
            cur = self._conn.execute("UPDATE sessions SET clinician = ? WHERE id = ?",
                                     (json.dumps(fields, allow_nan=False), session_id))
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot store the therapist's entries ({exc})") from None
        if cur.rowcount == 0:
            raise DatabaseError(f"{self.path}: no session {session_id}")
        return fields

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

    def contains_content(self, content_id: str) -> bool:
        """Whether a session with this content (:func:`session_content_id`, or the id it was
        stored with before schema 3) is stored already."""
        try:
            row = self._conn.execute(
                "SELECT 1 FROM sessions WHERE content_id = ? OR legacy_content_id = ?",
                (content_id, content_id)).fetchone()
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot read sessions ({exc})") from None
        return row is not None

    def knows_content(self, content_id: str, duration_s: float,
                      old_id: Callable[[], str]) -> bool:
        """Whether a session with this content is stored: by its id, or, for an EDF/BDF
        session stored before schema 3, by the id of its samples, which ``old_id()`` computes
        (slow) only when a stored session of this duration has no new id yet; on a match the
        new id is recorded on that session, so the next copy is recognised directly."""
        if self.contains_content(content_id):
            return True
        if content_id.startswith(EDF_ID_PREFIX) and self.legacy_candidates(duration_s):
            legacy = old_id()
            if self.contains_content(legacy):
                self.adopt_content_id(legacy, content_id)
                return True
        return False

    def legacy_candidates(self, duration_s: float) -> bool:
        """Whether a session stored before schema 3 whose new content id is not known yet could
        be a recording of this duration (its old id would then have to be computed to tell)."""
        try:
            row = self._conn.execute(
                "SELECT 1 FROM sessions WHERE legacy_content_id IS NOT NULL"
                " AND content_id = legacy_content_id AND abs(duration_s - ?) <= 1e-3",
                (float(duration_s),)).fetchone()
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot read sessions ({exc})") from None
        return row is not None

    def adopt_content_id(self, legacy_id: str, content_id: str) -> bool:
        """Record ``content_id`` (a schema-3 id) on the session stored before schema 3 with
        ``legacy_id``, so the next copy is recognised by it; whether a session was updated."""
        try:
            cur = self._conn.execute(  # autocommit: one statement, one transaction
                "UPDATE sessions SET content_id = ? WHERE legacy_content_id = ?"
                " AND content_id = legacy_content_id", (content_id, legacy_id))
        except sqlite3.IntegrityError:
            return False  # another session has that id already
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot update sessions ({exc})") from None
        return cur.rowcount > 0

    def sources_named(self, source: str) -> frozenset[tuple[str, str, str]]:
        """``(patient_id, recorded_at, source)`` of the stored sessions from a file of this
        name (``recorded_at`` as stored: ISO 8601 to the second)."""
        try:
            rows = self._conn.execute(
                "SELECT patient_id, recorded_at, source FROM sessions WHERE source = ?",
                (source,)).fetchall()
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot read sessions ({exc})") from None
        return frozenset((str(a), str(b), str(c)) for a, b, c in rows)

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
                "SELECT id, patient_id, recorded_at, source, affected_side, program, duration_s,"
                " content_id, clinician FROM sessions WHERE patient_id = ?"
                " ORDER BY recorded_at, id",
                (patient_id,)).fetchall()
            out = []
            for r in rows:
                mets = {}
                for m in self._conn.execute(
                        f"SELECT exercise, {', '.join(_METRIC_COLUMNS)} FROM exercise_metrics"
                        " WHERE session_id = ?", (r[0],)):
                    mets[m[0]] = ExerciseMetrics(m[0], *m[1:])
                try:
                    clin = json.loads(r[8] or "{}")
                except ValueError:
                    clin = {}
                out.append(StoredSession(r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4], r[5],
                                         r[6], mets, r[7], clin if isinstance(clin, dict) else {}))
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot read sessions ({exc})") from None
        return out


def legacy_id(path: Path, opener: Callable[[Path], Recording] | None = None) -> str:
    """The content id a history before schema 3 stored for this file (its samples in µV)."""
    from emgfeedback.io.importers import load

    with (opener or load)(path) as rec:
        return samples_content_id(rec)


def store_session(session: SessionInput, db: Path | None = None,
                  path: Path | None = None) -> int | None:
    """Store one analysed session in the history; what the GUI calls when a live session stops.
    ``path``: the session's file, read again only to recognise a copy of a session stored before
    schema 3 (:meth:`History.knows_content`).

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
        return h.add(session, None if path is None else (lambda: legacy_id(path)))
