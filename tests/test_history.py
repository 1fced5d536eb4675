"""Patient history: trends across sessions, bad databases, atomic sessions under kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from _sessions import (
    SMALL,
    analyse_file,
    make_session,
    make_source,
    read_json_session,
    session_start,
    write_edf_session,
    write_json_session,
)
from emgfeedback.errors import CalibrationError, DatabaseError
from emgfeedback.views.history import (
    DB_ENV,
    History,
    default_db_path,
    import_folder,
    store_session,
    write_progress,
)
from emgfeedback.views.summary import SessionInput

TESTS = Path(__file__).resolve().parent


class _TrendRows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str], list[str]] = {}
        self._key: tuple[str, str] | None = None
        self._cells: list[str] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-metric" in a:
            self._key = (a["data-exercise"], a["data-metric"])
            self._cells = []
        elif tag == "td" and self._key:
            self._in = True
            self._cells.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in = False
        elif tag == "tr" and self._key:
            self.rows[self._key] = self._cells
            self._key = None

    def handle_data(self, data):
        if self._in:
            self._cells[-1] += data


def test_falling_synkinesis_probability_shows_a_falling_trend(tmp_path, capsys):
    """Ten EDF+ sessions of a simulated patient whose synkinesis probability falls, imported by
    'history import' (each analysed by the real analyze), show a falling trend in 'progress'."""
    from emgfeedback.cli import main

    folder = tmp_path / "P-010"
    folder.mkdir()
    probs = [0.9 - 0.09 * k for k in range(10)]
    for k, prob in enumerate(probs):
        src = make_source(seed=10 + k, synkinesis_prob=prob, duration=150.0, channels=SMALL)
        write_edf_session(folder / f"session-{k:02d}.edf", src, patient="P-010",
                          start=session_start(14 * k))
    db = tmp_path / "h.sqlite"
    assert main(["history", "import", str(folder), "--db", str(db)]) == 0
    io_ = capsys.readouterr()
    assert "imported 10 sessions, 0 already stored, 0 failed" in io_.out
    assert "10/10 sessions (100 %)" in io_.err
    out = tmp_path / "progress.html"
    assert main(["progress", "P-010", "--db", str(db), "--out", str(out)]) == 0
    assert "(10 sessions)" in capsys.readouterr().out
    with History(db) as h:
        sessions = h.sessions("P-010")
    assert [s.recorded_at for s in sessions] == [session_start(14 * k) for k in range(10)]
    html = out.read_text(encoding="utf-8")
    assert "data:image/png;base64," in html
    parser = _TrendRows()
    parser.feed(html)
    for ex in ("smile", "eye_closure"):
        row = parser.rows[(ex, "synkinesis_rate")]
        n, first, last, slope, direction = row[2:7]
        assert int(n) == 10
        assert float(last) < float(first)
        assert float(slope) < 0 and direction == "falling"
    assert parser.rows[("smile", "isolation")][6] == "rising"
    # Overall: the share of affected-side reps with synkinesis falls from first to last session.
    def rate(s):
        reps = sum(m.n_reps for m in s.metrics.values())
        return sum(m.n_synkinesis_reps for m in s.metrics.values()) / reps
    assert rate(sessions[-1]) < rate(sessions[0]) - 0.4


def test_store_twice_keeps_one_session(tmp_path):
    s = make_session(seed=1, duration=120.0, with_signal=False)
    db = tmp_path / "h.sqlite"
    assert store_session(s, db) == 1
    assert store_session(s, db) is None
    with History(db) as h:
        assert len(h.sessions("P001")) == 1
        assert h.patients() == ["P001"]


def test_default_path_and_env_override(tmp_path, monkeypatch):
    monkeypatch.delenv(DB_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "emgfeedback" / "history.sqlite"
    monkeypatch.setenv(DB_ENV, str(tmp_path / "other.sqlite"))
    assert default_db_path() == tmp_path / "other.sqlite"
    store_session(make_session(seed=2, duration=100.0, with_signal=False))
    assert (tmp_path / "other.sqlite").is_file()


def test_corrupt_database_is_refused_and_left_untouched(tmp_path):
    db = tmp_path / "h.sqlite"
    garbage = b"this is not a database\n" * 200
    db.write_bytes(garbage)
    s = make_session(seed=1, duration=100.0, with_signal=False)
    with pytest.raises(DatabaseError, match="corrupt or not a history database") as exc:
        store_session(s, db)
    assert "\n" not in str(exc.value)
    with pytest.raises(DatabaseError):
        write_progress("P001", tmp_path / "p.html", db)
    assert db.read_bytes() == garbage
    assert not (tmp_path / "p.html").exists()
    # Another program's SQLite file: refused, not altered.
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    con.close()
    before = other.read_bytes()
    with pytest.raises(DatabaseError, match="not an emgfeedback history"):
        store_session(s, other)
    assert other.read_bytes() == before
    # A valid history with a page overwritten in the middle: refused as damaged.
    good = tmp_path / "good.sqlite"
    base = make_session(seed=3, duration=200.0, with_signal=False)
    for k in range(30):
        store_session(replace(base, recorded_at=session_start(k), source=f"s{k}.edf"), good)
    data = bytearray(good.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[3 * page: 4 * page] = b"\xa5" * page
    good.write_bytes(bytes(data))
    with pytest.raises(DatabaseError):
        write_progress("P001", tmp_path / "p.html", good)
    assert good.read_bytes() == bytes(data)


def test_patient_without_sessions_is_one_line_and_nothing_written(tmp_path):
    db = tmp_path / "h.sqlite"
    store_session(make_session(seed=1, duration=100.0, with_signal=False), db)
    out = tmp_path / "p.html"
    out.write_text("earlier")
    with pytest.raises(DatabaseError, match=r"no sessions of patient 'P999'.*P001") as exc:
        write_progress("P999", out, db)
    assert "\n" not in str(exc.value)
    assert out.read_text() == "earlier"
    with pytest.raises(DatabaseError, match="no history database"):
        write_progress("P001", out, tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def test_uncalibrated_session_is_not_stored(tmp_path):
    s = make_session(seed=1, duration=100.0, with_signal=False)
    bare = SessionInput(s.patient_id, s.recorded_at, s.source, dict(s.analysis, calibration={}))
    db = tmp_path / "h.sqlite"
    with pytest.raises(CalibrationError):
        store_session(bare, db)
    with History(db) as h:
        assert h.sessions("P001") == []


def test_import_folder_reports_failures_and_skips_known(tmp_path):
    folder = tmp_path / "sessions"
    folder.mkdir()
    for k in range(4):
        write_json_session(make_session(seed=k, day=k, duration=100.0, with_signal=False),
                           folder / f"s{k}.json")
    (folder / "broken.json").write_text("{}")
    s = make_session(seed=9, day=9, duration=100.0, with_signal=False)
    bad = SessionInput(s.patient_id, s.recorded_at, "uncal.edf", dict(s.analysis, calibration={}))
    write_json_session(bad, folder / "uncal.json")

    def reader(p: Path) -> SessionInput:
        try:
            return read_json_session(p)
        except KeyError as exc:
            from emgfeedback.errors import FileFormatError
            raise FileFormatError(f"{p}: missing {exc}") from None

    import io
    bar = io.StringIO()
    r = import_folder(folder, tmp_path / "h.sqlite", reader=reader, pattern="*.json", progress=bar)
    assert len(r.imported) == 4 and len(r.failed) == 2 and not r.skipped
    assert {p.name for p, _ in r.failed} == {"broken.json", "uncal.json"}
    assert "6/6 sessions (100 %)" in bar.getvalue()
    r2 = import_folder(folder, tmp_path / "h.sqlite", reader=reader, pattern="*.json", progress=None)
    assert len(r2.skipped) == 4 and not r2.imported


_IMPORT_SCRIPT = """
import sys
from pathlib import Path
from _sessions import read_json_session
from emgfeedback.views.history import import_folder
import_folder(Path(sys.argv[1]), Path(sys.argv[2]), reader=read_json_session, pattern="*.json")
"""


def test_kill_during_import_leaves_no_partial_session(tmp_path):
    folder = tmp_path / "sessions"
    folder.mkdir()
    base = [make_session(seed=k, synkinesis_prob=0.5, duration=400.0, with_signal=False)
            for k in range(4)]
    n = 400
    for k in range(n):
        b = base[k % 4]
        s = SessionInput(f"P{k % 7:03d}", b.recorded_at.replace(minute=k % 60, hour=k // 60),
                         f"s{k:04d}.edf", b.analysis, b.affected_side)
        write_json_session(s, folder / f"s{k:04d}.json")
    db = tmp_path / "h.sqlite"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent / "src")]))
    proc = subprocess.Popen([sys.executable, "-c", _IMPORT_SCRIPT, str(folder), str(db)],
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "(20 %)" in line:  # well into the import: kill it mid-flight
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute("SELECT s.id, s.n_exercises, COUNT(m.exercise) FROM sessions s "
                           "LEFT JOIN exercise_metrics m ON m.session_id = s.id GROUP BY s.id").fetchall()
    finally:
        con.close()
    assert 0.15 * n <= len(rows) < n
    assert all(n_ex == n_rows == 4 for _id, n_ex, n_rows in rows)
    # Importing again completes the rest, each session once.
    r = import_folder(folder, db, reader=read_json_session, pattern="*.json", progress=None)
    assert len(r.imported) + len(r.skipped) == n and len(r.skipped) == len(rows)
    with History(db) as h:
        assert sum(len(h.sessions(p)) for p in h.patients()) == n


def test_import_folder_of_edf_sessions(tmp_path):
    folder = tmp_path / "clinic"
    (folder / "2025").mkdir(parents=True)
    for k in range(3):
        src = make_source(seed=20 + k, synkinesis_prob=0.6, duration=80.0, channels=SMALL)
        write_edf_session(folder / "2025" / f"P-007_{k}.edf", src, patient="P-007",
                          start=session_start(7 * k))
    (folder / "notes.edf").write_text("not a recording")
    nocal = make_source(seed=9, duration=30.0, channels=SMALL, scenario="smile-synkinesis",
                        calibration=False)
    write_edf_session(folder / "nocal.edf", nocal, patient="P-007", start=session_start(30))

    import io
    bar = io.StringIO()
    db = tmp_path / "h.sqlite"
    r = import_folder(folder, db, progress=bar)  # default reader: EDF+ and sidecar, analyze
    assert len(r.imported) == 3
    failed = dict((p.name, why) for p, why in r.failed)
    assert set(failed) == {"notes.edf", "nocal.edf"}
    assert all("\n" not in why for why in failed.values())
    assert "notes.edf" in failed["notes.edf"] and "no calibration" in failed["nocal.edf"]
    assert "5/5 sessions (100 %)" in bar.getvalue()
    with History(db) as h:
        stored = h.sessions("P-007")
        analysis = json.loads(h._conn.execute(
            "SELECT analysis FROM sessions WHERE source = 'P-007_0.edf'").fetchone()[0])
    assert [s.recorded_at for s in stored] == [session_start(7 * k) for k in range(3)]
    assert all(s.affected_side == "L" and s.duration_s == pytest.approx(80.0) for s in stored)
    assert [s.source for s in stored] == [f"P-007_{k}.edf" for k in range(3)]
    # what is stored is what analyze gives for the file
    assert analysis == analyse_file(folder / "2025" / "P-007_0.edf")
    smile = stored[0].metrics["smile"]
    reps = [x for x in analysis["reps"] if x["exercise"] == "smile" and x["side"] == "L"]
    assert smile.n_reps == len(reps) > 0
    assert smile.peak_pct_mvc_affected == pytest.approx(
        sum(x["target_peak_pct_mvc"] for x in reps) / len(reps))

    # Importing again skips the stored sessions without analysing them again (the refused one
    # is analysed again: it was not stored).
    import emgfeedback.views.report.load as report_mod

    analysed = []
    orig = report_mod.analyse_recording

    def spy(rec):
        analysed.append(Path(rec.path).name)
        return orig(rec)

    report_mod.analyse_recording = spy
    try:
        r2 = import_folder(folder, db, progress=None)
    finally:
        report_mod.analyse_recording = orig
    assert len(r2.skipped) == 3 and not r2.imported
    assert {p.name for p, _ in r2.failed} == {"notes.edf", "nocal.edf"}
    assert analysed == ["nocal.edf"]


def test_sessions_minutes_apart_claim_no_trend(tmp_path):
    """Three sessions minutes apart (the issue's case: slopes 'per 30 days' of 1e5 were claimed)
    give no trend and no slope, in the progress report and in the trend rows; the same
    sessions on days 0, 7 and 14 do."""
    from datetime import timedelta

    from emgfeedback.views.history import MIN_TREND_DAYS, MIN_TREND_SPAN_DAYS, trends

    db = tmp_path / "h.sqlite"
    base = [make_session(seed=30 + k, synkinesis_prob=0.8 - 0.3 * k, duration=150.0,
                         patient="P-020", with_signal=False) for k in range(3)]
    for k, b in enumerate(base):
        store_session(replace(b, recorded_at=session_start(0) + timedelta(minutes=4 * k),
                              source=f"m{k}.edf"), db)
    out = tmp_path / "p.html"
    sessions = write_progress("P-020", out, db)
    assert len(sessions) == 3
    ts = trends(sessions)
    assert ts and all(t.direction == "too early" and t.slope_per_30d != t.slope_per_30d
                      and t.days == 1 and t.span_days == 0 for t in ts)
    html = out.read_text(encoding="utf-8")
    parser = _TrendRows()
    parser.feed(html)
    for row in parser.rows.values():
        assert row[5] == "–" and row[6] == "too early"
    assert "Too early for a trend" in html and f"{MIN_TREND_DAYS} different days" in html
    assert "rising" not in html and "falling" not in html
    # days apart, but less than the minimum span: still too early
    short = [replace(s, recorded_at=session_start(3 * k)) for k, s in enumerate(sessions)]
    assert all(t.direction == "too early" for t in trends(short))
    # spanning the minimum: a trend with a slope
    long = [replace(s, recorded_at=session_start(MIN_TREND_SPAN_DAYS // 2 * k))
            for k, s in enumerate(sessions)]
    smile = {t.metric: t for t in trends(long) if t.exercise == "smile"}
    assert smile["synkinesis_rate"].direction in ("falling", "steady", "rising")
    assert smile["synkinesis_rate"].slope_per_30d == smile["synkinesis_rate"].slope_per_30d


def test_copied_session_file_is_the_same_session(tmp_path):
    """A recording copied (or renamed) into the folder is recognised by its content before it
    is analysed, and the history keeps one session."""
    import shutil

    from emgfeedback.io.edf import sidecar_path
    from emgfeedback.views.report import content_id
    from emgfeedback.io.importers import load

    folder = tmp_path / "in"
    folder.mkdir()
    first = folder / "a.edf"
    write_edf_session(first, make_source(seed=41, duration=120.0, channels=SMALL), "P-030",
                      session_start(0))
    db = tmp_path / "h.sqlite"
    assert len(import_folder(folder, db, progress=None).imported) == 1
    copy_dir = folder / "usb-stick"
    copy_dir.mkdir()
    shutil.copy(first, copy_dir / "copy of a.edf")
    shutil.copy(sidecar_path(first), sidecar_path(copy_dir / "copy of a.edf"))
    with load(first) as a, load(copy_dir / "copy of a.edf") as b:
        assert content_id(a) == content_id(b)
    r = import_folder(folder, db, progress=None)
    assert not r.imported and not r.failed and len(r.skipped) == 2
    with History(db) as h:
        stored = h.sessions("P-030")
    assert len(stored) == 1 and stored[0].content_id.startswith("edf-xxh3-128:")
    # another session of the same patient is another session
    write_edf_session(folder / "b.edf", make_source(seed=42, duration=120.0, channels=SMALL),
                      "P-030", session_start(1))
    assert len(import_folder(folder, db, progress=None).imported) == 1


def test_history_of_schema_1_is_upgraded_in_place(tmp_path):
    db = tmp_path / "old.sqlite"
    c = sqlite3.connect(db)
    c.executescript("""
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sessions (id INTEGER PRIMARY KEY, patient_id TEXT NOT NULL,
        recorded_at TEXT NOT NULL, source TEXT NOT NULL, affected_side TEXT NOT NULL,
        program TEXT NOT NULL, fs REAL NOT NULL, duration_s REAL NOT NULL,
        channels TEXT NOT NULL, n_exercises INTEGER NOT NULL, analysis TEXT NOT NULL,
        stored_at TEXT NOT NULL, UNIQUE (patient_id, recorded_at, source));
    CREATE TABLE exercise_metrics (session_id INTEGER NOT NULL, exercise TEXT NOT NULL,
        n_reps INTEGER NOT NULL, n_synkinesis_reps INTEGER NOT NULL, n_events INTEGER NOT NULL,
        synkinesis_rate REAL, isolation REAL, cocontraction REAL, peak_pct_mvc_affected REAL,
        peak_pct_mvc_unaffected REAL, symmetry REAL, time_in_band_s REAL,
        PRIMARY KEY (session_id, exercise));
    INSERT INTO meta VALUES ('schema_version', '1');
    INSERT INTO sessions VALUES (1, 'P-050', '2025-01-06T09:30:00', 'x.edf', 'L', 'default',
        1000, 60, '[]', 0, '{}', '2025-01-06T10:00:00');
    """)
    c.commit()
    c.close()
    s = make_session(seed=2, duration=120.0, patient="P-050", day=3, with_signal=False)
    assert store_session(s, db) is not None
    with History(db) as h:
        stored = h.sessions("P-050")
    assert [x.source for x in stored] == ["x.edf", s.source]
    assert stored[0].content_id is None and stored[1].content_id
    assert sqlite3.connect(db).execute(
        "SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "3"


def test_therapist_entries_are_stored_and_shown_in_progress(tmp_path):
    from emgfeedback.errors import ConfigError

    db = tmp_path / "h.sqlite"
    s = make_session(seed=3, duration=120.0, patient="P-060", with_signal=False)
    s = replace(s, clinician={"notes": "first visit", "house_brackmann": 4,
                              "sunnybrook_synkinesis": None})
    sid = store_session(s, db)
    with History(db) as h:
        assert h.sessions("P-060")[0].clinician["house_brackmann"] == 4
        h.set_clinician(sid, {"notes": "re-graded", "house_brackmann": 3,
                              "sunnybrook_synkinesis": 6})
        with pytest.raises(ConfigError, match="sunnybrook_synkinesis must be a whole number 0-15"):
            h.set_clinician(sid, {"sunnybrook_synkinesis": 16})
        assert h.sessions("P-060")[0].clinician == {"notes": "re-graded", "house_brackmann": 3,
                                                    "sunnybrook_synkinesis": 6}
    html = (tmp_path / "p.html")
    write_progress("P-060", html, db)
    text = html.read_text(encoding="utf-8")
    assert "House-Brackmann grade" in text and "<td>3</td><td>6</td>" in text
    assert "re-graded" in text


def _stored_rows(db: Path) -> list[tuple]:
    """Every stored session's content (row ids aside), in storing order."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT patient_id, recorded_at, source, affected_side, program, fs,"
                           " duration_s, channels, n_exercises, analysis, content_id"
                           " FROM sessions ORDER BY id").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_history_import_on_workers_gives_the_serial_result(tmp_path, capsys):
    """``history import --jobs 2`` (a process pool) and ``--scheduler`` (a Dask cluster of 2
    workers) store what a serial import stores, in the same order; a broken file is reported
    and the rest complete; only this process writes the database (0600)."""
    import shutil

    from emgfeedback.cli import main
    from emgfeedback.io.edf import sidecar_path

    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(3):
        write_edf_session(folder / f"s{k}.edf", make_source(seed=60 + k, synkinesis_prob=0.5,
                                                            duration=100.0, channels=SMALL),
                          f"P-06{k % 2}", session_start(k))
    (folder / "s1b_broken.edf").write_bytes(b"0       " + b"x" * 300)  # not a recording
    shutil.copy(folder / "s0.edf", folder / "s2z_copy.edf")  # same content, another name
    shutil.copy(sidecar_path(folder / "s0.edf"), sidecar_path(folder / "s2z_copy.edf"))

    serial = import_folder(folder, tmp_path / "serial.sqlite", progress=None, jobs=1)
    assert [p.name for p in serial.imported] == ["s0.edf", "s1.edf", "s2.edf"]
    assert [p.name for p in serial.skipped] == ["s2z_copy.edf"]
    assert [p.name for p, _ in serial.failed] == ["s1b_broken.edf"]
    want = _stored_rows(tmp_path / "serial.sqlite")
    assert len(want) == 3

    pooled = import_folder(folder, tmp_path / "pool.sqlite", progress=None, jobs=2)
    assert (pooled.imported, pooled.skipped, pooled.failed) == \
        (serial.imported, serial.skipped, serial.failed)
    assert _stored_rows(tmp_path / "pool.sqlite") == want

    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        assert len(cluster.workers) == 2
        db = tmp_path / "dask.sqlite"
        capsys.readouterr()
        code = main(["history", "import", str(folder), "--db", str(db),
                     "--scheduler", cluster.scheduler_address])
    out, err = capsys.readouterr()
    assert code == 1  # one file failed: reported, not a success
    assert "imported 3 sessions, 1 already stored, 1 failed" in out
    assert "skipped s1b_broken.edf" in err and "5/5 sessions (100 %)" in err
    assert _stored_rows(db) == want
    assert (db.stat().st_mode & 0o777) == 0o600
