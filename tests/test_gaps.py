"""Missing values are gaps (issue 11, item 5): empty cells, NaN and infinities from any importer
become marked gaps, the chain restarts cleanly after them, ``info`` and the analysis JSON report
them, and no NaN or Infinity reaches a filter state or an output file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.cli import main
from emgfeedback.dsp.chain import Chain
from emgfeedback.io.importers import load
from emgfeedback.stream import Chunk, Marker, Status, finite_parts


def _strict(text: str) -> object:
    """Parse JSON refusing NaN/Infinity (what every other tool would choke on)."""
    def bad(c: str) -> object:
        raise AssertionError(f"non-strict JSON constant {c}")
    return json.loads(text, parse_constant=bad)


def test_finite_parts_splits_at_missing_rows() -> None:
    x = np.arange(40, dtype=float).reshape(20, 2)
    x[5, 1] = np.nan
    x[6:9] = np.inf
    x[19, 0] = -np.inf
    ch = ("a", "b")
    c = Chunk(x, 100, 1000.0, ch, Status(lost_samples=3),
              (Marker(99, 0, "before"), Marker(106, 0, "in gap"), Marker(110, 0, "after")))
    parts = finite_parts(c)
    assert [(p.start, len(p)) for p in parts] == [(100, 5), (109, 10)]
    assert [p.status.lost_samples for p in parts] == [3, 4]
    assert [m.text for m in parts[0].markers] == ["before"]
    assert [m.text for m in parts[1].markers] == ["in gap", "after"]
    assert all(np.isfinite(p.data).all() for p in parts)
    whole = Chunk(x[:4], 0, 1000.0, ch)
    assert finite_parts(whole)[0] is whole
    empty = finite_parts(Chunk(np.full((3, 2), np.nan), 0, 1000.0, ch, markers=(Marker(1, 0, "m"),)))
    assert len(empty) == 1 and len(empty[0]) == 0 and empty[0].markers[0].text == "m"


def test_chain_refuses_non_finite_samples() -> None:
    chain = Chain(1000.0, 1)
    with pytest.raises(ValueError, match="finite_parts"):
        chain.process(Chunk(np.array([[1.0], [np.nan]]), 0, 1000.0, ("a",)))
    # Its state is untouched: the same stream afterwards gives the fresh chain's output.
    x = np.random.default_rng(1).standard_normal((500, 1))
    a = chain.process(Chunk(x, 0, 1000.0, ("a",))).envelope
    b = Chain(1000.0, 1).process(Chunk(x, 0, 1000.0, ("a",))).envelope
    np.testing.assert_array_equal(a, b)


def _blank_cells(src: Path, dst: Path, rows: list[int], col: int, text: str = "") -> None:
    """Copy a BIOPAC export and blank one column's cells on the given data rows."""
    lines = src.read_text().splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("CH1,")) + 2  # + count row
    for r in rows:
        parts = lines[first + r].split(",")
        parts[col] = text
        lines[first + r] = ",".join(parts)
    dst.write_text("\n".join(lines) + "\n")


def test_real_file_with_missing_cells_reports_gaps(shared_data: Path, tmp_path: Path,
                                                   capsys) -> None:
    """The real BIOPAC facial recording with empty cells (as another tool exports them)."""
    path = tmp_path / "biopac_missing.txt"
    rows = list(range(3000, 3040)) + [6000] + list(range(9000, 9005))
    _blank_cells(shared_data / "biopac_facial_corr_zyg_lev_1khz.txt", path, rows, 1)
    rec = load(path)
    assert rec.gaps == [(3000, 40), (6000, 1), (9000, 5)]
    assert rec.lost_samples == 46
    assert any("missing or non-finite" in n for n in rec.notes)
    for a, b in rec.segments():
        assert np.isfinite(rec.read(a, b)).all()
    # info: gaps counted, no "nan" anywhere, strict JSON
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gaps: 3 (46 samples lost)" in out
    figures = [ln for ln in out.splitlines() if " RMS " in ln and "µV (20-450 Hz)" in ln]
    assert len(figures) == 3 and not any("nan" in ln.lower() for ln in figures)
    assert main(["info", str(path), "--json"]) == 0
    doc = _strict(capsys.readouterr().out)
    assert isinstance(doc, dict) and doc["gaps"] == 3 and doc["lost_samples"] == 46
    assert all(isinstance(c["rms_uv"], float) for c in doc["channels"])
    # analyze: strict JSON with the gaps reported, no NaN in calibration, reps or events
    js = tmp_path / "a.json"
    montage = tmp_path / "m.toml"
    montage.write_text('[channels]\n"EMG Corr" = "L-COR"\n"EMG Zyg" = "L-ZYG"\n'
                       '"EMG Lev" = "L-LLS"\n')
    assert main(["analyze", str(path), "--montage", str(montage), "--exercise", "smile",
                 "--calibration", "auto", "--json", str(js)]) == 0
    capsys.readouterr()
    d = _strict(js.read_text())
    assert isinstance(d, dict)
    assert d["gaps"] == [{"onset_s": 3.0, "duration_s": 0.04}, {"onset_s": 6.0, "duration_s": 0.001},
                         {"onset_s": 9.0, "duration_s": 0.005}]
    assert d["lost_samples"] == 46


def test_csv_with_nan_inf_and_empty_cells(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 2)) * 5
    lines = ["time_ms,EMG L-ZYG,EMG L-OOC"]
    for i, (a, b) in enumerate(x):
        cells = [f"{i}", f"{a:.3f}", f"{b:.3f}"]
        if 1000 <= i < 1010:
            cells[2] = ""
        if i == 2000:
            cells[1] = "NaN"
        if i == 2500:
            cells[1] = "inf"
        if i == 3000:
            cells[0] = ""  # no time: the row cannot be placed
        lines.append(",".join(cells))
    p = tmp_path / "x.csv"
    p.write_text("\n".join(lines) + "\n")
    rec = load(p)
    assert rec.gaps == [(1000, 10), (2000, 1), (2500, 1), (3000, 1)]
    assert main(["info", str(p), "--json"]) == 0
    doc = _strict(capsys.readouterr().out)
    assert isinstance(doc, dict) and doc["lost_samples"] == 13
