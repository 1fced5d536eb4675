"""The pieces the io/edf split made exist once: one writer, one patient rule, one unit table,
one rail count, one soft-fault total, one EDF header identity, one analysis path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.errors import ConfigError
from emgfeedback.io.edf.format import read_identity
from emgfeedback.io.edf.reader import read_edf
from emgfeedback.io.edf.recorder import Recorder, on_grid
from emgfeedback.io.edf.sidecar import analysis_path, sidecar_path
from emgfeedback.io.edf.writer import write_edf
from emgfeedback.recording import ArrayRecording
from emgfeedback.validate import validate_patient_id
from emgfeedback.stream import Chunk, Marker, SourceInfo, Status, at_rails, rail_counts
from emgfeedback.units import uv_per

INFO = SourceInfo("test", 500.0, ("EMG L-ZYG", "EMG R-ZYG"), board="test", adc_bits=16,
                  adc_range_uv=(-1000.0, 1000.0))


def test_export_of_an_annotation_too_long_for_a_record_ends_and_keeps_it_cut(tmp_path: Path) -> None:
    """400 bytes of UTF-8 never fit a 240-byte annotation record: the old export waited for a
    record with room forever; the one writer cuts the text (to 60 characters, then until it
    fits a record) instead."""
    x = np.random.default_rng(0).normal(0, 20, (1000, 2))
    rec = ArrayRecording(path=tmp_path / "a.csv", format="test", fs=500.0,
                         channels=INFO.channels, n_samples=1000, data=x,
                         markers=[Marker(100, 0, "\U0001F600" * 100), Marker(200, 50, "smile")])
    write_edf(rec, tmp_path / "a.edf", patient="P-0001")
    back = read_edf(tmp_path / "a.edf")
    cut = back.markers[0].text
    assert 40 < len(cut) <= 60 and cut == "\U0001F600" * len(cut)
    assert back.markers[1].text == "smile"
    assert [(m.sample, m.duration) for m in back.markers] == [(100, 0), (200, 50)]
    assert back.n_samples == 1000 and not back.gaps
    assert np.allclose(back.read(), x, atol=back.grids[0].gain)


def test_recorder_puts_nan_on_the_digital_minimum_live_and_in_the_file(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "n.edf", INFO, patient="P-0002",
                   start_time=dt.datetime(2026, 3, 4, 5, 6, 7))
    x = np.zeros((100, 2))
    x[10, 1] = np.nan
    out = rec.write(Chunk(x, 0, 500.0, INFO.channels))
    rec.close()
    lo, _ = rec.rails_uv
    assert out.data[10, 1] == lo and out.status.saturated == (0, 1)
    same = on_grid(Chunk(x, 0, 500.0, INFO.channels), rec.grid)  # what a session not recording
    assert np.array_equal(same.data, out.data) and same.status == out.status  # yet does
    assert np.array_equal(read_edf(tmp_path / "n.edf").read(0, 100), out.data)
    assert read_identity(tmp_path / "n.edf") == ("P-0002", dt.datetime(2026, 3, 4, 5, 6, 7))


def test_identity_of_files_that_are_not_edf(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("hello")
    assert read_identity(tmp_path / "t.txt") == ("", None)
    assert read_identity(tmp_path / "missing.edf") == ("", None)


def test_one_patient_rule_with_the_reason() -> None:
    assert validate_patient_id("P-0001") == "P-0001"
    for bad in ("", "  ", "Jane Doe", "0042", "P-19510502"):
        with pytest.raises(ConfigError, match="refused: .*P-0042"):
            validate_patient_id(bad)


def test_one_unit_table() -> None:
    assert uv_per(" mV ") == 1e3 and uv_per("uV") == uv_per("µV") == uv_per("μV") == 1.0
    assert uv_per("Volts") == 1e6 and uv_per("nV") == 1e-3 and uv_per("degC") is None


def test_rail_counts_and_fault_totals() -> None:
    x = np.array([[0.0, 5.0], [-5.0, np.nan], [5.0, 4.9]])
    assert at_rails(x, (-5.0, 5.0)).tolist() == [[False, True], [True, False], [True, False]]
    assert rail_counts(x, (-5.0, 5.0)) == (2, 1) and rail_counts(x, None) == (0, 0)
    total = Status()
    for st in (Status(lost_samples=3, saturated=(1, 0)), Status(crc_errors=2, bytes_skipped=7),
               Status(reconnects=1, saturated=(2, 4))):
        total = total + st
    assert total == Status(lost_samples=3, crc_errors=2, bytes_skipped=7, saturated=(3, 4),
                           reconnects=1)


def test_paths_beside_a_recording() -> None:
    assert sidecar_path("/d/s1.edf") == Path("/d/s1.json")
    assert analysis_path("/d/s1.edf") == Path("/d/s1-analysis.json")


def test_two_recordings_in_one_session_each_hold_their_part(tmp_path: Path) -> None:
    """The GUI's Record button: record, stop, record again in one pipeline.  Between the two the
    live signal stays on the grid (on_grid); each file holds its own samples."""
    from emgfeedback.app.pipeline import Pipeline, RecordingGrid
    from emgfeedback.config import Config
    from emgfeedback.sources.simulated import SimulatedSource

    pl = Pipeline(SimulatedSource("rest", duration=2, speed=None), Config(),
                  recording=RecordingGrid())
    pl.open()
    first = pl.start_recording(tmp_path / "1.edf", patient="P-0003")
    for _ in range(5):
        pl.step()
    pl.stop_recording()
    p = pl.step()
    assert p is not None and np.array_equal(p.raw, first.grid.quantise(p.raw))
    second = pl.start_recording(tmp_path / "2.edf", patient="P-0003")
    pl.run()
    a, b = read_edf(tmp_path / "1.edf"), read_edf(tmp_path / "2.edf")
    assert first.samples + len(p) + second.samples == pl.samples
    assert b.sidecar["first_sample"] == first.samples + len(p) and a.sidecar["first_sample"] == 0


def test_sidecar_json_is_strict_and_unmeasured_values_read_back_missing(tmp_path: Path) -> None:
    import json

    import numpy as np

    from emgfeedback.io.edf.sidecar import write_sidecar

    p = tmp_path / "s.json"
    write_sidecar(p, {"a": float("nan"), "b": [1.0, float("inf")], "c": np.array([np.nan, 2.0]),
                      "d": np.float64("nan"), "e": (3, 4)})
    doc = json.loads(p.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
    assert doc == {"a": None, "b": [1.0, None], "c": [None, 2.0], "d": None, "e": [3, 4]}
    assert (p.stat().st_mode & 0o777) == 0o600
