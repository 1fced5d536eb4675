"""Content ids of schema 3 (issue 13): an EDF/BDF file is named by the XXH3-128 hash of its data records
as stored (no sample converted); a history of schema 2 (ids of the samples in µV) is upgraded in
place and a copy of a file it stored is still recognised; other formats keep the samples' id."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from _sessions import SMALL, make_source, session_start, write_edf_session
from emgfeedback.io.edf import sidecar_path
from emgfeedback.io.edf.reader import EdfRecording, _texty_records
from emgfeedback.io.importers import load
from emgfeedback.recording import ArrayRecording
from emgfeedback.views.history import History, import_folder
from emgfeedback.views.history import importer
from emgfeedback.views.report.load import (
    EDF_ID_PREFIX,
    SAMPLES_ID_PREFIX,
    content_id,
    samples_content_id,
)


@pytest.fixture(scope="module")
def session_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ids") / "in"
    folder.mkdir()
    f = folder / "a.edf"
    write_edf_session(f, make_source(seed=51, duration=100.0, channels=SMALL), "P-070",
                      session_start(0))
    return f


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    shutil.copy(sidecar_path(src), sidecar_path(dst))
    return dst


def test_edf_content_id_hashes_the_records_as_stored(session_file: Path, tmp_path: Path) -> None:
    copy = _copy(session_file, tmp_path / "other name.edf")
    with load(session_file) as a, load(copy) as b:
        assert isinstance(a, EdfRecording)
        cid = content_id(a)
        assert cid.startswith(EDF_ID_PREFIX) and cid == content_id(b) == content_id(a)
        assert samples_content_id(a).startswith(SAMPLES_ID_PREFIX)
        # the blocks are the data records, every byte of them, in order
        whole = b"".join(bytes(blk) for blk in a.raw_blocks(max_bytes=50_000))
        data_start = copy.stat().st_size - a.record_bytes * a.header["records"]
        assert whole == copy.read_bytes()[data_start:]
    # one code changed in the middle of the file: another content
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    copy.write_bytes(bytes(raw))
    with load(copy) as b:
        assert content_id(b) != cid and content_id(b).startswith(EDF_ID_PREFIX)


def test_other_recordings_keep_the_samples_id() -> None:
    x = np.arange(40.0).reshape(20, 2)
    rec = ArrayRecording(path=Path("m"), format="memory", fs=100.0, channels=("A", "B"),
                         n_samples=20, markers=[], sidecar={}, rails_uv=None, data=x)
    assert content_id(rec) == samples_content_id(rec)
    assert content_id(rec).startswith(SAMPLES_ID_PREFIX)


def _make_schema_2(db: Path, folder: Path) -> str:
    """Turn a history written now into what emgfeedback wrote before schema 3: no
    ``legacy_content_id`` column, the EDF session's id that of its samples, version 2."""
    with load(next(folder.glob("*.edf"))) as rec:
        old = samples_content_id(rec)
    c = sqlite3.connect(db)
    c.executescript(f"""
        DROP INDEX sessions_legacy_content;
        ALTER TABLE sessions DROP COLUMN legacy_content_id;
        UPDATE sessions SET content_id = '{old}';
        UPDATE meta SET value = '2' WHERE key = 'schema_version';
    """)
    c.commit()
    c.close()
    return old


def test_schema_2_history_is_upgraded_and_still_recognises_a_copy(
        session_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "clinic"
    first = _copy(session_file, folder / "a.edf")
    db = tmp_path / "h.sqlite"
    assert len(import_folder(folder, db, progress=None).imported) == 1
    old = _make_schema_2(db, folder)
    # the same folder again, with a copy under another name: upgraded, nothing stored twice
    _copy(first, folder / "usb" / "copy of a.edf")
    r = import_folder(folder, db, progress=None)
    assert not r.imported and not r.failed and len(r.skipped) == 2
    c = sqlite3.connect(db)
    assert c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "3"
    rows = c.execute("SELECT content_id, legacy_content_id FROM sessions").fetchall()
    c.close()
    with load(first) as rec:
        new = content_id(rec)
    assert rows == [(new, old)]  # the new id recorded on the old session; the old one kept
    with History(db) as h:
        assert h.contains_content(new) and h.contains_content(old)
        assert not h.legacy_candidates(100.0)
    # a third copy: recognised by the new id, the old one is not computed again

    def no_legacy(*a: object) -> str:
        raise AssertionError("the samples' id was computed again")

    monkeypatch.setattr(importer, "legacy_id", no_legacy)
    _copy(first, folder / "usb2" / "again.edf")
    r = import_folder(folder, db, progress=None)
    assert not r.imported and not r.failed and len(r.skipped) == 3


def test_schema_2_history_recognises_a_renamed_copy_stored_one_by_one(
        session_file: Path, tmp_path: Path) -> None:
    """``store_session`` (the GUI's path when a session stops) also knows a copy of a session
    stored before schema 3, by its old id: nothing is stored twice."""
    from emgfeedback.io.edf import sidecar_path
    from emgfeedback.views.history import store_session
    from emgfeedback.views.report.load import load_session

    folder = tmp_path / "clinic"
    first = _copy(session_file, folder / "a.edf")
    db = tmp_path / "h.sqlite"
    assert len(import_folder(folder, db, progress=None).imported) == 1
    old = _make_schema_2(db, folder)
    copy = _copy(first, tmp_path / "elsewhere" / "renamed.edf")
    assert sidecar_path(copy).is_file()
    assert store_session(load_session(copy, keep_signal=False), db, copy) is None
    with load(copy) as rec:
        new = content_id(rec)
    c = sqlite3.connect(db)
    rows = c.execute("SELECT content_id, legacy_content_id FROM sessions").fetchall()
    c.close()
    assert rows == [(new, old)]
    # with the signal kept, the old id is computed from it
    _make_schema_2(db, folder)
    session = load_session(copy)
    try:
        assert store_session(session, db) is None
    finally:
        assert session.signal is not None
        session.signal.close()


def test_schema_2_history_stores_new_sessions_with_new_ids(session_file: Path,
                                                           tmp_path: Path) -> None:
    folder = tmp_path / "clinic"
    _copy(session_file, folder / "a.edf")
    db = tmp_path / "h.sqlite"
    import_folder(folder, db, progress=None)
    _make_schema_2(db, folder)
    write_edf_session(folder / "b.edf", make_source(seed=52, duration=100.0, channels=SMALL),
                      "P-070", session_start(1))
    r = import_folder(folder, db, progress=None)
    assert [p.name for p in r.imported] == ["b.edf"] and [p.name for p in r.skipped] == ["a.edf"]
    c = sqlite3.connect(db)
    ids = [row[0] for row in c.execute("SELECT content_id FROM sessions ORDER BY id")]
    c.close()
    assert ids[0].startswith(SAMPLES_ID_PREFIX) and ids[1].startswith(EDF_ID_PREFIX)


def test_annotation_records_found_as_before() -> None:
    """The reader finds the records whose TAL holds a text from their 0x14 bytes only; the same
    records as the whole-block expression it replaced."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        block = rng.choice(np.array([0, 0x14, 0x41, 0x2B], dtype=np.uint8),
                           size=(int(rng.integers(1, 30)), int(rng.integers(2, 12))))
        sep = block[:, :-1] == 0x14
        nxt = block[:, 1:]
        before = np.flatnonzero((sep & (nxt != 0x14) & (nxt != 0)).any(axis=1))
        now = _texty_records(block)
        assert np.array_equal(before, now)
