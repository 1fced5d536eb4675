"""Issue 14: privacy, file modes, history safety, I/O errors, bounded gaps, the config sections,
and the wire case of the issue end to end (a forged counter jump through the serial source into
a recording)."""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.cli import main
from emgfeedback.config import CalibrationConfig, Config, DetectionConfig, load_config
from emgfeedback.errors import ConfigError, DatabaseError, EmgError
from emgfeedback.io.edf import Recorder, read_edf, repair
from emgfeedback.stream import Chunk, SourceInfo
from emgfeedback.validate import PRIVATE_MODE, patient_id_problem, validate_patient_id

from fakeboard import FakeBoard, value


# ------------------------------------------------------------------------------ patient ids
@pytest.mark.parametrize("pid", ["JS-1980-05-12", "JSM-010180", "P-01-05-1951", "19510502",
                                 "JS-19510502", "0042", "1980-05-12", "AB-120580", "P-12-31-1999",
                                 "John Smith", "smith", "P 0001", ""])
def test_patient_ids_with_a_date_or_only_digits_are_refused_with_the_reason(pid: str) -> None:
    why = patient_id_problem(pid)
    assert why is not None
    with pytest.raises(ConfigError) as exc:
        validate_patient_id(pid)
    assert why in str(exc.value)
    if any(ch.isdigit() for ch in pid) and pid.replace("-", "").isdigit():
        assert "date" in why or "digits" in why


@pytest.mark.parametrize("pid", ["P-0042", "AB-2024-17", "P-007", "SIM-0000", "P-123456", "P-12"])
def test_pseudonyms_pass(pid: str) -> None:
    assert validate_patient_id(pid) == pid


def test_cli_refuses_a_birth_date_as_patient(tmp_path: Path, capsys) -> None:
    rc = main(["record", "--duration", "1", "--speed", "max", "--patient", "JS-1980-05-12",
               "--out", str(tmp_path / "r.edf")])
    err = capsys.readouterr().err
    assert rc == 1 and "looks like a date (1980-05-12)" in err and err.count("\n") == 1
    assert not (tmp_path / "r.edf").exists()


# ------------------------------------------------------------------------------ file modes
def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _assert_private(root: Path, at_least: int) -> None:
    written = [p for p in root.rglob("*") if p.is_file()]
    assert len(written) >= at_least, written
    loose = {str(p.relative_to(root)): oct(_mode(p)) for p in written if _mode(p) != PRIVATE_MODE}
    assert loose == {}, f"files readable by others: {loose}"
    for d in (p for p in root.rglob("*") if p.is_dir()):
        assert _mode(d) & 0o077 == 0, d


def test_everything_written_is_owner_only(tmp_path: Path, capsys) -> None:
    old = os.umask(0o022)  # a permissive caller: the files must be private anyway
    try:
        edf = tmp_path / "s.edf"
        assert main(["simulate", "--duration", "3", "--no-calibration", "--out", str(edf)]) == 0
        assert main(["simulate", "--duration", "2", "--no-calibration", "--out",
                     str(tmp_path / "s.csv")]) == 0
        assert main(["analyze", str(tmp_path / "s.csv"), "--json", str(tmp_path / "a.json")]) == 0
        assert main(["convert", str(edf), str(tmp_path / "c.csv")]) == 0
        assert main(["convert", str(tmp_path / "s.csv"), str(tmp_path / "c.bdf"),
                     "--patient", "P-0042"]) == 0
        assert main(["record", "--duration", "1", "--speed", "max", "--patient", "P-0042",
                     "--out", str(tmp_path / "rec" / "r.edf")]) == 0
        db = tmp_path / "db" / "h.sqlite"
        assert main(["history", "import", str(tmp_path / "rec"), "--db", str(db)]) in (0, 1)
        from emgfeedback.views.history import History

        with History(tmp_path / "h2.sqlite") as h:
            assert h.patients() == []
        _assert_private(tmp_path, 12)
    finally:
        os.umask(old)
    capsys.readouterr()


@pytest.mark.slow
def test_reports_are_owner_only(tmp_path: Path, capsys) -> None:
    old = os.umask(0o022)
    try:
        edf = tmp_path / "s.edf"
        assert main(["simulate", "--scenario", "session", "--duration", "110", "--seed", "2",
                     "--out", str(edf)]) == 0
        assert main(["report", str(edf), "--out", str(tmp_path / "r.html"), "--pdf"]) == 0
        _assert_private(tmp_path, 5)
    finally:
        os.umask(old)
    capsys.readouterr()


# ------------------------------------------------------------------------------ history
@pytest.mark.parametrize("content", [b"", b"not a database\n", b"SQLite format 2\x00" + b"x" * 90])
def test_a_non_database_as_history_is_an_error_that_changes_nothing(tmp_path: Path,
                                                                    content: bytes) -> None:
    from emgfeedback.views.history import History

    db = tmp_path / "h.sqlite"
    db.write_bytes(content)
    before = db.stat()
    for create in (True, False):
        with pytest.raises(DatabaseError, match="not a history database"):
            History(db, create=create)
    assert db.read_bytes() == content and db.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.sqlite"]  # no journal left


# ------------------------------------------------------------------------------ recorder
def _info(fs: float = 500.0, nch: int = 2) -> SourceInfo:
    return SourceInfo(name="t", fs=fs, channels=tuple(f"EMG {s}-ZYG" for s in "LR")[:nch],
                      adc_range_uv=(-3000.0, 3000.0))


def _chunk(start: int, n: int, nch: int = 2, fs: float = 500.0) -> Chunk:
    x = np.sin(np.arange(start, start + n) / 7.0)[:, None] * np.ones(nch) * 100
    ch = tuple(f"EMG {s}-ZYG" for s in "LR")[:nch]
    return Chunk(x, start, fs, ch)


def test_disk_full_names_the_file_keeps_what_was_written_and_says_repair(tmp_path: Path,
                                                                         monkeypatch) -> None:
    path = tmp_path / "full.edf"
    rec = Recorder(path, _info(), patient="P-0042")
    for k in range(10):
        rec.write(_chunk(k * 500, 500))
    written = path.stat().st_size
    f = rec._file._f  # type: ignore[union-attr]

    def full(*_a: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(f, "write", full)
    with pytest.raises(EmgError) as exc:
        rec.write(_chunk(5000, 5000))
    msg = str(exc.value)
    assert str(path) in msg and "disk is full" in msg and "emgfeedback repair" in msg
    rec.close()  # a no-op now
    assert path.stat().st_size >= written
    print(repair(path))
    r = read_edf(path)
    assert r.n_samples >= 4500 and r.fs == 500


def test_a_gap_beyond_the_bound_closes_the_recording_not_gigabytes(tmp_path: Path) -> None:
    path = tmp_path / "g.edf"
    rec = Recorder(path, _info(), patient="P-0042", max_gap_s=60.0)
    rec.write(_chunk(0, 1000))
    rec.write(_chunk(1000 + 500 * 30, 1000))  # a 30 s gap: filled, annotated
    with pytest.raises(EmgError, match="more than the 60 s a recording fills"):
        rec.write(_chunk(1 << 24, 1000))  # the 2**24 jump
    rec.close()
    assert path.stat().st_size < 2_000_000
    r = read_edf(path)
    assert r.gaps == [(1000, 15000)] and r.n_samples == 17000
    assert "more than the 60 s" in r.sidecar["stopped"] and r.sidecar["status"] == "complete"


def test_forged_counter_jump_through_serial_source_into_a_recording(tmp_path: Path) -> None:
    """The issue's case end to end: one CRC-valid frame claiming counter + 2**24 (it made a
    309 MB file from 10 s), one duplicated frame, one claiming an earlier counter."""
    from emgfeedback.sources.serial import SerialSource

    forge = {700: 700 + (1 << 24), 1500: 1200, 2100: 2100 + (1 << 30)}
    with FakeBoard(tmp_path, forge=forge, duplicate=frozenset({900, 1800})) as board:
        src = SerialSource(board.link, handshake_timeout=2.0)
        chunks = []
        with src:
            end = time.monotonic() + 20.0
            while time.monotonic() < end:
                c = src.read(0.05)
                if c is not None:
                    chunks.append(c)
                    if c.stop > 2600:
                        break
    uvpc = src.info.extra["uv_per_count"]
    got = []
    for c in chunks:
        counts = np.rint(c.data / uvpc + 512).astype(np.int64)
        index = np.arange(c.start, c.stop)
        assert np.array_equal(counts, value(index, 8)), "a sample stored at a wrong index"
        got.append(index)
    idx = np.concatenate(got)
    lost = sum(c.status.lost_samples for c in chunks)
    assert set(range(int(idx[-1]) + 1)) - set(idx.tolist()) == {700, 1500, 2100}
    assert lost == 3
    assert sum(c.status.dropped_frames for c in chunks) == 5  # 3 forged + 2 duplicates
    assert src.stats["duplicates"] == 2
    assert src.stats["implausible"] == 2 and src.stats["out_of_order"] == 1  # 1500 claims 1200


# ------------------------------------------------------------------------------ config
def test_config_sections_calibration_detection_ui(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[calibration]\nmin_rest_s = 5\n[detection]\nh_on = 4.0\n[ui]\nfps = 50\n")
    cfg = load_config(p)
    assert cfg.calibration == CalibrationConfig(min_rest_s=5.0)
    assert cfg.detection == DetectionConfig(h_on=4.0) and cfg.ui.fps == 50.0
    # the sections reach their users
    from emgfeedback.clinical.exercises import default_program
    from emgfeedback.clinical.live import LiveClinic
    from emgfeedback.clinical.montage import Montage
    from emgfeedback.dsp.chain import Chain

    assert default_program(cfg.detection).detection.h_on == 4.0
    chain = Chain(1000.0, 2, cfg.dsp)
    clinic = LiveClinic(chain, Montage.from_labels(("EMG L-ZYG", "EMG R-ZYG")),
                        calibration_config=cfg.calibration)
    assert clinic._calibrator.cfg.min_rest_s == 5.0
    for text, needle in [("[ui]\nfps = 1000\n", "ui.fps must be in [5, 120]"),
                         ("[calibration]\nauto_quantile = nan\n", "calibration.auto_quantile"),
                         ("[detection]\nh_on = 1\nh_off = 2\n", "detection.h_off must not"),
                         ("[calibration]\nsettle = 1\n", "unknown key 'calibration.settle'"),
                         ("[ui]\npatient_mode = 1\n", "ui.patient_mode must be true or false")]:
        p.write_text(text)
        with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            load_config(p)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError, match="rms_ms"):
        from emgfeedback.config import DspConfig

        DspConfig(rms_ms=1e12)
    assert Config().detection.onset_lookback_ms == 300.0


def test_named_pipe_input_is_refused_without_blocking(tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "p.edf"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    assert main(["info", str(fifo)]) == 1
    assert "named pipe" in capsys.readouterr().err and time.monotonic() - t0 < 10


def test_history_withholds_stored_ids_that_break_the_rule(tmp_path: Path, capsys) -> None:
    import sqlite3

    from emgfeedback.views.history import History

    db = tmp_path / "h.sqlite"
    with History(db) as h:
        assert h.patients() == []
    con = sqlite3.connect(db)
    info = con.execute("PRAGMA table_info(sessions)").fetchall()
    cols = [r[1] for r in info]
    not_null = {r[1] for r in info if r[3]}
    for pid in ("P-0042", "John Smith", "19510502"):
        values = {c: None for c in cols if c != "id"}
        values.update(patient_id=pid, recorded_at="2026-01-01T10:00:00", source=f"{pid}.edf")
        if "content_id" in values:  # sessions are told apart by their signal's hash too
            values["content_id"] = f"sha256:{pid}"
        for c in cols:  # NOT NULL columns get a plain value
            if values.get(c, 0) is None and c in not_null:
                values[c] = 0
        con.execute(f"INSERT INTO sessions ({', '.join(values)}) VALUES "
                    f"({', '.join('?' * len(values))})", list(values.values()))
    con.commit()
    con.close()
    with History(db, create=False) as h:
        assert h.patients() == ["P-0042"]
    capsys.readouterr()
    main(["history", "list", "--db", str(db)])
    out = capsys.readouterr()
    assert "John Smith" not in out.out + out.err and "19510502" not in out.out + out.err
