"""Importers on real and faithfully formatted files; damaged files give one clear line;
LSL outlet -> inlet; BrainFlow synthetic board."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyedflib
import pytest

from emgfeedback.cli import main
from emgfeedback.errors import FileFormatError
from emgfeedback.io.edf.reader import read_edf
from emgfeedback.io.exporters import export
from emgfeedback.io.importers import detect, load
from emgfeedback.sources.replay import ReplaySource

DATA = Path(__file__).with_name("data")


def test_openbci_gui_file() -> None:
    r = load(DATA / "openbci_cyton_v5.txt")
    assert detect(DATA / "openbci_cyton_v5.txt") == "openbci"
    assert r.fs == 250 and r.channels == tuple(f"EXG {k}" for k in range(8))
    assert r.n_samples == 501 and r.gaps == [(101, 1)]
    assert [(m.sample, m.text) for m in r.markers] == [(50, "marker 1")]
    x = r.read()
    assert np.isnan(x[101]).all() and np.isfinite(x[100]).all()
    assert x[0, 0] == pytest.approx(-23999.990159)
    assert r.info is not None and "Cyton" in r.info.board


def test_brainflow_csv_detected_board() -> None:
    p = DATA / "brainflow_synthetic.csv"
    r = load(p)
    assert detect(p) == "brainflow" and r.fs == 250 and len(r.channels) == 16
    assert "SYNTHETIC_BOARD" in r.notes[0]
    assert [m.text for m in r.markers] == ["marker 3"]
    raw = np.loadtxt(p, delimiter="\t")
    assert np.array_equal(r.read()[:, 0], raw[:, 1])
    r2 = load(p, board="SYNTHETIC_BOARD")
    assert np.array_equal(r2.read(), r.read())


def test_opensignals_biosppy_copy() -> None:
    r = load(DATA / "biosppy_emg_1_first10s.txt")
    assert r.format == "OpenSignals text" and r.fs == 1000 and r.channels == ("EMG",)
    assert r.n_samples == 10000
    x = r.read()[:, 0]
    assert abs(np.median(x)) < 100 and 1 < np.std(x[:800]) < 50  # µV: rest before the 1st burst
    assert any("transfer function" in n for n in r.notes)


def test_biopac_real_file(shared_data: Path) -> None:
    p = shared_data / "biopac_facial_corr_zyg_lev_1khz.txt"
    r = load(p)
    assert detect(p) == "biopac" and r.fs == 1000 and r.n_samples == 13150
    assert r.channels == ("EMG Corr", "EMG Zyg", "EMG Lev")
    x = r.read()
    assert x[0, 0] == pytest.approx(-0.00384521 * 1000)
    assert any("Lev Raw" in n and "implausible" in n for n in r.notes)
    assert {m.text for m in r.markers} == {"marker 54", "marker 1"}
    r2 = load(p, unit="mV")
    assert np.std(r2.read()[:, 2]) < 100


def test_biosppy_real_file(shared_data: Path) -> None:
    r = load(shared_data / "biosppy_emg_1_1khz.txt")
    assert r.fs == 1000 and r.duration_s == pytest.approx(63.88, abs=0.05)


def test_uci_tsv_real_file(shared_data: Path) -> None:
    p = shared_data / "uci_gestures_myo_8ch_labelled.txt"
    r = load(p, unit="V")
    assert r.format == "TSV" and r.fs == 1000 and len(r.channels) == 8
    assert r.n_samples == 64557 and r.lost_samples == 64557 - 61641
    assert r.markers[0].text == "class 1" and r.markers[0].duration > 1000
    assert np.nanmax(np.abs(r.read())) < 1e5  # µV, not V


def test_generic_csv_needs_rate_and_takes_fs(tmp_path: Path) -> None:
    p = tmp_path / "g.csv"
    p.write_text("a (mV),b (mV)\n" + "\n".join(f"{k * 0.001},{-k * 0.001}" for k in range(50)))
    with pytest.raises(FileFormatError, match="--fs"):
        load(p)
    r = load(p, fs=500)
    assert r.fs == 500 and r.channels == ("a", "b") and r.read()[10, 0] == pytest.approx(10.0)


def test_foreign_edf_from_pyedflib(tmp_path: Path) -> None:
    p = tmp_path / "foreign.edf"
    n = 2000
    x = np.sin(np.arange(n) / 10.0) * 0.5  # mV
    with pyedflib.EdfWriter(str(p), 2, file_type=pyedflib.FILETYPE_EDFPLUS) as w:
        hdr = [{"label": "Zyg", "dimension": "mV", "sample_frequency": 1000,
                "physical_max": 1.0, "physical_min": -1.0, "digital_max": 32767,
                "digital_min": -32768},
               {"label": "Slow", "dimension": "mV", "sample_frequency": 100,
                "physical_max": 1.0, "physical_min": -1.0, "digital_max": 32767,
                "digital_min": -32768}]
        w.setSignalHeaders(hdr)
        w.writeAnnotation(0.5, 0.25, "smile")
        w.writeSamples([x, np.ascontiguousarray(x[::10])])
    r = read_edf(p)
    assert r.channels == ("Zyg",) and r.fs == 1000 and r.n_samples == n
    assert np.allclose(r.read()[:, 0], x * 1000, atol=0.05)
    assert [(m.sample, m.duration, m.text) for m in r.markers] == [(500, 250, "smile")]
    assert any("Slow" in note for note in r.notes)
    r.close()


def test_csv_export_keeps_gaps_and_markers(tmp_path: Path) -> None:
    r = load(DATA / "openbci_cyton_v5.txt")
    export(r, tmp_path / "o.csv")
    b = load(tmp_path / "o.csv")
    assert b.format == "emgfeedback CSV" and b.gaps == [(101, 1)] and b.fs == 250
    assert [(m.sample, m.text) for m in b.markers] == [(50, "marker 1")]
    assert np.allclose(np.nan_to_num(b.read(), nan=7.0), np.nan_to_num(r.read(), nan=7.0),
                       atol=1e-2)
    export(r, tmp_path / "o.edf")
    e = read_edf(tmp_path / "o.edf")
    assert e.gaps == [(101, 1)] and e.n_samples == 501
    assert np.allclose(e.read()[:100], r.read()[:100], atol=4.0)  # 16-bit grid over ±24 mV
    e.close()


def test_replay_any_file_as_source() -> None:
    with ReplaySource(DATA / "openbci_cyton_v5.txt", speed=None) as src:
        chunks = []
        while (c := src.read()) is not None:
            chunks.append(c)
    assert sum(len(c) for c in chunks) == 500
    after = [c for c in chunks if c.status.lost_samples]
    assert len(after) == 1 and after[0].start == 102 and after[0].status.lost_samples == 1
    assert [m.sample for c in chunks for m in c.markers] == [50]


def _edf_bytes(tmp_path: Path) -> bytes:
    p = tmp_path / "ok.edf"
    assert main(["simulate", "--duration", "2", "--scenario", "rest", "--out", str(p)]) == 0
    return p.read_bytes()


@pytest.mark.parametrize("case", ["truncated-header", "bad-field", "no-record", "garbage",
                                  "empty", "csv-bad-row", "openbci-truncated", "biopac-short"])
def test_damaged_files_give_one_clear_line(tmp_path: Path, case: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    good = _edf_bytes(tmp_path)
    capsys.readouterr()
    p = tmp_path / f"{case}.dat"
    expect = {"truncated-header": "truncated header", "bad-field": "byte 236",
              "no-record": "no complete data record", "garbage": "binary content",
              "empty": "empty file", "csv-bad-row": "line 4", "openbci-truncated": "line 6",
              "biopac-short": "header ends"}[case]
    if case == "truncated-header":
        p.write_bytes(good[:700])
    elif case == "bad-field":
        p.write_bytes(good[:236] + b"abc     " + good[244:])
    elif case == "no-record":
        p.write_bytes(good[:2560 + 100])
    elif case == "garbage":
        p.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)))
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "csv-bad-row":
        p.write_text("time,a\n0,1\n1,2\n2,x\n3,4\n")
    elif case == "openbci-truncated":
        lines = (DATA / "openbci_cyton_v5.txt").read_text().splitlines()[:6]
        p.write_text("\n".join(lines[:5] + [lines[5][:40]]) + "\n")
    elif case == "biopac-short":
        p.write_text("x.acq\n1 msec/sample\n3 channels\nCorr Raw\nmV\n")
    with pytest.raises(FileFormatError, match=expect) as ei:
        load(p)
    assert str(p) in str(ei.value) and "\n" not in str(ei.value)
    assert main(["info", str(p)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expect in err and "Traceback" not in err


def test_lsl_outlet_to_inlet_every_sample_in_order() -> None:
    from emgfeedback.dsp.chain import Chain
    from emgfeedback.io.lsl import LslPublisher
    from emgfeedback.sources.lsl import LslSource
    from emgfeedback.stream import Chunk, SourceInfo

    name = f"emgf-test-{time.monotonic_ns()}"
    info = SourceInfo(name="t", fs=1000.0, channels=("EMG L-ZYG", "EMG R-ZYG"))
    pub = LslPublisher(info, name=name)
    src = LslSource(f"{name}-raw", timeout=10.0)
    src.open()
    assert src.info.channels == info.channels and src.info.fs == 1000
    chain = Chain(1000.0, 2)
    x = np.random.default_rng(1).normal(0, 20, (5000, 2))
    time.sleep(0.5)
    for a in range(0, 5000, 50):
        pub.feed(chain.process(Chunk(x[a:a + 50], a, 1000.0, info.channels)))
    got = []
    deadline = time.monotonic() + 15
    while sum(len(c) for c in got) < 5000 and time.monotonic() < deadline:
        c = src.read(timeout=0.2)
        if c is not None:
            got.append(c)
    src.close()
    pub.close()
    y = np.concatenate([c.data for c in got])
    assert y.shape == x.shape and np.array_equal(y, x)
    assert [c.start for c in got] == list(np.cumsum([0] + [len(c) for c in got[:-1]]))


def test_brainflow_synthetic_source() -> None:
    from emgfeedback.sources.registry import open_source

    with open_source("brainflow:SYNTHETIC_BOARD") as src:
        assert src.info.fs == 250 and len(src.info.channels) == 16
        n = 0
        chunks = []
        t0 = time.monotonic()
        while n < 100 and time.monotonic() - t0 < 5:
            c = src.read(timeout=0.2)
            if c is not None:
                chunks.append(c)
                n += len(c)
    assert n >= 100
    assert all(b.start == a.stop + b.status.lost_samples for a, b in zip(chunks, chunks[1:]))
    assert np.isfinite(np.concatenate([c.data for c in chunks])).all()
