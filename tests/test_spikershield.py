"""The SpikerShield source against an emulator of the Spike Recorder sketch behind a pty:
board type and channel selection, every sample, losses counted exactly under the faults the
framing shows, reconnect after unplug/replug, one-line errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.errors import ConfigError, ProtocolError, SourceTimeout
from emgfeedback.sources.registry import open_source
from emgfeedback.sources.spikershield import SpikerDecoder, SpikerShieldSource
from emgfeedback.stream import Chunk
from fake_spikershield import FakeSpikerShield, value
from fakeboard import collect




def counts_of(chunks: list[Chunk], src) -> tuple[np.ndarray, np.ndarray]:
    uvpc = src.info.extra["uv_per_count"]
    expected = 0
    idx, counts = [], []
    for c in chunks:
        assert c.start == expected + c.status.lost_samples
        expected = c.stop
        idx.append(np.arange(c.start, c.stop))
        counts.append(np.rint(c.data / uvpc + 512).astype(np.int64))
    return np.concatenate(idx), np.concatenate(counts)


def _frames(k: np.ndarray, n: int) -> bytes:
    v = value(k, n)
    fr = np.zeros((len(k), 2 * n), np.uint8)
    fr[:, 0::2], fr[:, 1::2] = (v >> 7) & 0x7F, v & 0x7F
    fr[:, 0] |= 0x80
    return fr.tobytes()


def test_decoder_pieces_equal_whole_and_counts_framing_faults() -> None:
    raw = _frames(np.arange(400), 2)
    whole = SpikerDecoder(2).feed(raw)
    dec = SpikerDecoder(2)
    parts = [dec.feed(raw[a: a + 37]) for a in range(0, len(raw), 37)]
    assert np.array_equal(np.concatenate([s for s, _ in parts]), whole[0])
    assert np.array_equal(np.vstack([c for _, c in parts if len(c)]), whole[1])
    assert len(whole[0]) == 399 and (whole[0] == 1).all()  # the last waits for the next flag
    # a lost flag, a dropped byte, a spurious flag: each costs exactly the damaged frame
    b = bytearray(raw)
    b[40 * 4] &= 0x7F  # frame 40: flag lost (frame 39 cannot be told apart: lost with it)
    b[100 * 4 + 2] |= 0x80  # frame 100: spurious flag
    del b[200 * 4 + 3]  # frame 200: a byte lost
    steps, counts = SpikerDecoder(2).feed(bytes(b))
    idx = np.cumsum(steps) - 1
    assert set(range(399)) - set(idx.tolist()) == {39, 40, 100, 200}
    assert np.array_equal(counts, value(idx, 2))
    # a board message in the stream is taken out, not counted
    msg = bytes((255, 255, 1, 1, 128, 255)) + b"HWT:MUSCLESS;" + bytes((255, 255, 1, 1, 129, 255))
    d = SpikerDecoder(2)
    steps, _ = d.feed(raw[:400] + msg + raw[400:])
    assert d.messages == ["HWT:MUSCLESS;"] and (steps == 1).all() and len(steps) == 399


def test_board_type_channels_and_every_sample(tmp_path: Path) -> None:
    with FakeSpikerShield(tmp_path) as board:
        src = open_source(f"spikershield:{board.link}", n_channels=2)
        with src:
            assert src.info.fs == 5000 and len(src.info.channels) == 2
            assert src.info.board == "Muscle SpikerShield (MUSCLESS)"
            assert src.info.extra["gain_assumed"] is True
            chunks = collect(src, 10.0, until=lambda c: c.stop >= 10000)
        assert board.commands[:2] == ["b:;", "c:2;"] and board.n == 2
    idx, counts = counts_of(chunks, src)
    assert len(idx) == idx[-1] + 1 >= 10000  # contiguous from 0: nothing lost
    # the values are the board's consecutive samples (its count started before ours)
    k0 = (counts[0, 0] * pow(7, -1, 1024)) % 1024
    assert np.array_equal(counts, value(idx + k0, 2))


def test_older_sketch_without_board_type(tmp_path: Path) -> None:
    with FakeSpikerShield(tmp_path, answers_type=False) as board:
        src = SpikerShieldSource(board.link, gain=870.0)
        with src:
            assert src.info.board == "Muscle SpikerShield" and src.info.fs == 10000
            assert src.info.extra["uv_per_count"] == pytest.approx(5e6 / 1024 / 870)
            chunks = collect(src, 5.0, until=lambda c: c.stop >= 5000)
    idx, _ = counts_of(chunks, src)
    assert len(idx) == idx[-1] + 1


def test_losses_counted_exactly_under_framing_faults(tmp_path: Path) -> None:
    with FakeSpikerShield(tmp_path, fault=2e-3, seed=2) as board:
        src = SpikerShieldSource(board.link, n_channels=2)
        with src:
            chunks = collect(src, 20.0, until=lambda c: c.stop > 15000)
        damaged = set(board.damaged)
    idx, counts = counts_of(chunks, src)
    k0 = int((counts[0, 0] * pow(7, -1, 1024)) % 1024)
    # the first frame's true number: k0 modulo 1024; find it among the board's samples
    base = min(k for k in range(k0, k0 + 1024 * 200, 1024)
               if np.array_equal(counts[:50], value(idx[:50] + k, 2)))
    assert np.array_equal(counts, value(idx + base, 2)), "a damaged frame was accepted"
    last = int(idx[-1])
    missing = set(range(last + 1)) - set(idx.tolist())
    lost = sum(c.status.lost_samples for c in chunks)
    assert lost == len(missing) == last + 1 - len(idx)
    dmg = {k - base for k in damaged if base <= k <= base + last}
    assert len(dmg) >= 15
    # only damaged frames, or the frame before a lost flag, are lost; every damaged one is
    assert missing <= dmg | {d - 1 for d in dmg}
    assert dmg <= missing
    assert sum(c.status.crc_errors for c in chunks) > 0


def test_unplug_replug_reconnects_and_selects_channels_again(tmp_path: Path) -> None:
    with FakeSpikerShield(tmp_path) as board:
        src = SpikerShieldSource(board.link, n_channels=2, handshake_timeout=2.0)
        with src:
            before = collect(src, 0.6)
            board.unplug()
            time.sleep(0.7)
            board.plug()
            after = collect(src, 5.0, until=lambda c: c.status.reconnects > 0)
            after += collect(src, 0.4)
        assert board.n == 2 and board.commands.count("c:2;") == 2
    gap = next(c for c in after if c.status.reconnects)
    assert gap.start > before[-1].stop
    assert 0.5 * 5000 < gap.status.lost_samples < 4.0 * 5000
    idx, counts = counts_of(before + after, src)
    tail = idx >= gap.start
    k0 = (counts[tail][0, 0] * pow(7, -1, 1024)) % 1024
    rel = idx[tail] - gap.start
    assert np.array_equal(counts[tail][: 900], value(rel[: 900] + k0, 2))
    assert src.stats["reconnects"] == 1 and src.stats["estimated_gaps"] == 1


def test_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="1 to 6 channels"):
        SpikerShieldSource("/dev/null", n_channels=8)
    with pytest.raises(ConfigError, match="10 kHz / channels"):
        SpikerShieldSource("/dev/null", n_channels=2, fs=1000)
    with FakeSpikerShield(tmp_path, mode="silent") as board:
        with pytest.raises(SourceTimeout, match="no data from .* 222222 baud"):
            SpikerShieldSource(board.link, handshake_timeout=0.6).open()
    with FakeSpikerShield(tmp_path, mode="text") as board:
        with pytest.raises(ProtocolError, match="no SpikerShield frames"):
            SpikerShieldSource(board.link, handshake_timeout=0.6).open()


def test_record_from_a_spikershield_through_the_cli(tmp_path: Path, capsys) -> None:
    from emgfeedback.cli import main
    from emgfeedback.io.importers import load

    out = tmp_path / "spiker.edf"
    with FakeSpikerShield(tmp_path) as board:
        assert main(["record", "--board", f"spikershield:{board.link}", "--channels", "2",
                     "--duration", "1", "--patient", "P-0003", "--out", str(out)]) == 0
    assert "2 channels at 5000 Hz" in capsys.readouterr().out
    with load(out) as rec:
        assert rec.fs == 5000 and 5000 <= rec.n_samples < 5500 and not rec.gaps
        assert rec.sidecar["source"]["extra"]["gain_assumed"] is True
