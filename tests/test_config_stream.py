"""Configuration validation and the streaming data model."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.vocabulary import parse_label, short_label
from emgfeedback.config import Config, DspConfig, load_config
from emgfeedback.errors import ConfigError
from emgfeedback.stream import Chunk, Marker, RingBuffer, Status


def test_defaults_are_the_documented_ones() -> None:
    cfg = load_config()
    assert cfg == Config()
    assert cfg.dsp.band == (20.0, 450.0) and cfg.dsp.notch_q == 30.0
    assert cfg.dsp.envelope == "lowpass" and cfg.dsp.envelope_hz == 8.0


def test_toml_overrides_and_types(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[dsp]\nband = [15, 400]\nmains = 60\nenvelope = "rms"\n')
    cfg = load_config(p)
    assert cfg.dsp.band == (15.0, 400.0) and cfg.dsp.mains == "60" and cfg.dsp.envelope == "rms"


@pytest.mark.parametrize("text,needle", [
    ("[dsp]\nfoo = 1\n", "unknown key 'dsp.foo'"),
    ("[dssp]\n", "unknown key 'dssp'"),
    ("[dsp]\nband = [450, 20]\n", "dsp.band must be"),
    ("[dsp]\nband = 20\n", "dsp.band must be a list"),
    ("[dsp]\nnotch_q = \"high\"\n", "dsp.notch_q must be a number"),
    ("[dsp]\nmains = 55\n", "dsp.mains must be one of '50', '60'"),
    ("[dsp\n", "not valid TOML"),
])
def test_bad_config_is_one_clear_message(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert needle in str(exc.value) and str(p) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_dsp_config_frozen() -> None:
    with pytest.raises(AttributeError):
        DspConfig().band = (1.0, 2.0)  # type: ignore[misc]


def test_chunk_model() -> None:
    ch = ("EMG L-ZYG", "EMG R-ZYG")
    c = Chunk(np.zeros((10, 2)), 100, 1000.0, ch, markers=(Marker(103, 5, "smile"), Marker(108, 0, "x")))
    assert c.stop == 110 and c.t0 == 0.1 and len(c) == 10
    a, b = c.split(5)
    assert (a.start, a.stop, b.start, b.stop) == (100, 105, 105, 110)
    assert [m.text for m in a.markers] == ["smile"] and [m.text for m in b.markers] == ["x"]
    with pytest.raises(ValueError):
        Chunk(np.zeros((10, 3)), 0, 1000.0, ch)
    s = Status(lost_samples=2, saturated=(1, 0)).merged(Status(crc_errors=1, saturated=(2, 3)))
    assert s == Status(lost_samples=2, crc_errors=1, saturated=(3, 3))
    assert not s.ok and Status().ok


def test_ring_buffer_wraps_and_marks_gaps_with_nan() -> None:
    rb = RingBuffer(8, 1)
    rb.write(np.arange(5.0)[:, None])
    rb.write(np.arange(5.0, 7.0)[:, None], start=8)  # samples 5-7 lost
    data, first = rb.latest(8)
    assert rb.total == 10 and first == 2
    assert np.array_equal(np.isnan(data[:, 0]), [False, False, False, True, True, True, False, False])
    assert data[0, 0] == 2.0 and data[-1, 0] == 6.0
    rb.write(np.arange(100.0)[:, None])  # larger than capacity
    data, first = rb.latest(100)
    assert first == rb.total - 8 and data[-1, 0] == 99.0


def test_ring_buffer_concurrent_reader() -> None:
    rb = RingBuffer(1000, 2)
    stop = threading.Event()
    bad: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            d, first = rb.latest(500)
            # Each row holds its own absolute index in both columns.
            idx = first + np.arange(len(d))
            if len(d) and not np.array_equal(d[:, 0], idx):
                bad.append("torn read")

    t = threading.Thread(target=reader)
    t.start()
    for k in range(0, 20000, 37):
        v = np.arange(k, k + 37, dtype=float)
        rb.write(np.stack([v, v], axis=1))
    stop.set()
    t.join()
    assert not bad


def test_labels() -> None:
    c = parse_label("emg l-zyg")
    assert (c.side, c.code, c.label, c.short) == ("L", "ZYG", "EMG L-ZYG", "L-ZYG")
    assert short_label("EMG R-OOC") == "R-OOC"
    with pytest.raises(ConfigError, match="not of the form"):
        parse_label("EMG L-XYZ")
