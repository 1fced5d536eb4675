"""The Chords source against an emulator of the Chords firmware behind a pty: handshake, every
sample, losses counted exactly under injected faults (and the 8-bit counter's wraps), reconnect
after unplug/replug, one-line errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.errors import ProtocolError, SourceTimeout
from emgfeedback.sources.registry import open_source
from emgfeedback.sources.chords import BOARDS, ChordsDecoder, ChordsSource
from emgfeedback.stream import Chunk
from fake_chords import FakeChords, value
from fakeboard import collect

FAST = dict(string_timeout=0.15)  # the emulated sketch's Serial timeout, shortened for speed
SRC = dict(command_gap=0.3, handshake_timeout=2.0)




def counts_of(chunks: list[Chunk], src: ChordsSource) -> tuple[np.ndarray, np.ndarray]:
    """(absolute indices, ADC counts) of all samples; starts jump by exactly the lost count."""
    uvpc, mid = src.info.extra["uv_per_count"], src.info.extra["adc_midpoint"]
    expected = 0
    idx, counts = [], []
    for c in chunks:
        assert c.start == expected + c.status.lost_samples
        expected = c.stop
        idx.append(np.arange(c.start, c.stop))
        counts.append(np.rint(c.data / uvpc + mid).astype(np.int64))
    return np.concatenate(idx), np.concatenate(counts)


def test_board_table_is_the_documented_one() -> None:
    b = BOARDS["UNO-R3"]
    assert (b.channels, b.rate, b.adc_bits) == ((6,), 250, 10)
    assert BOARDS["UNO-R4"].rate == 500 and BOARDS["UNO-R4"].adc_bits == 14
    assert BOARDS["NPG-LITE"].channels == (3, 6)
    assert b.packet_size(6) == 16


def test_decoder_in_pieces_equals_whole() -> None:
    rng = np.random.default_rng(1)
    n = np.arange(300)
    words = value(n, 6)
    pk = np.zeros((300, 16), np.uint8)
    pk[:, 0], pk[:, 1], pk[:, 2], pk[:, -1] = 0xC7, 0x7C, n % 256, 1
    pk[:, 3:-1:2], pk[:, 4:-1:2] = words >> 8, words & 0xFF
    raw = pk.tobytes()
    whole = ChordsDecoder((6,), 10).feed(raw)
    dec = ChordsDecoder((6,), 10)
    parts = []
    cuts = np.sort(rng.integers(0, len(raw), 40))
    for a, b in zip([0, *cuts], [*cuts, len(raw)]):
        c, w = dec.feed(raw[a:b])
        parts.append((c, w))
    assert sum((c for c, _ in parts), []) == whole[0] == list(n % 256)
    assert np.array_equal(np.vstack([w for _, w in parts if len(w)]), whole[1])
    assert dec.skipped == 0


def test_every_sample_arrives_with_the_real_command_timing(tmp_path: Path) -> None:
    """The sketch's 1 s readString timeout and the source's defaults: WHORU -> UNO-R3 gives
    6 channels at 250 Hz, 10 bits; 3 s of signal, nothing lost, every value the one sent."""
    with FakeChords(tmp_path) as board:
        src = open_source(f"chords:{board.link}")
        with src:
            assert src.info.fs == 250 and len(src.info.channels) == 6
            assert src.info.board == "Chords UNO-R3" and src.info.adc_bits == 10
            chunks = collect(src, 10.0, until=lambda c: c.stop >= 750)
        time.sleep(1.3)  # STOP is read after the sketch's 1 s silence
        assert board.commands[:2] == ["WHORU", "START"] and board.commands[-1] == "STOP"
        assert not board.streaming
    idx, counts = counts_of(chunks, src)
    assert idx[0] == 0 and len(idx) == idx[-1] + 1 >= 750  # contiguous, nothing lost
    assert np.array_equal(counts, value(idx, 6))
    # 2420 gain, 5 V, 10 bit: 1.97 µV per count
    assert src.info.extra["uv_per_count"] == pytest.approx(5e6 / 1024 / 2420)


def test_losses_counted_exactly_under_injected_faults(tmp_path: Path) -> None:
    with FakeChords(tmp_path, board="UNO-R4", drop=2e-3, flip_framing=0.02,
                    garbage_every=200, seed=5, **FAST) as board:
        src = ChordsSource(board.link, **SRC)
        with src:
            chunks = collect(src, 20.0, until=lambda c: c.stop > 2500)
        damaged = set(board.damaged)
    idx, counts = counts_of(chunks, src)
    assert np.array_equal(counts, value(idx, 6, 14)), "a damaged packet was accepted"
    last = int(idx[-1])
    missing = set(range(last + 1)) - set(idx.tolist())
    lost = sum(c.status.lost_samples for c in chunks)
    assert lost == len(missing) == last + 1 - len(idx)
    assert missing <= damaged  # only damaged packets are lost ...
    assert len(damaged & set(range(last))) >= 20  # ... and there were many
    assert damaged & set(range(last)) <= missing  # ... and every damaged one is lost
    assert sum(c.status.crc_errors for c in chunks) > 0
    assert sum(c.status.bytes_skipped for c in chunks) > 0


def test_unplug_with_power_kept_counts_wraps_of_the_counter(tmp_path: Path) -> None:
    """A USB glitch with the board powered: it kept streaming; 1.5 s down = 375 packets at
    250 Hz, more than the counter's 256: the down time gives the wrap, the counter the rest."""
    with FakeChords(tmp_path, keep_power=True, **FAST) as board:
        src = ChordsSource(board.link, **SRC)
        with src:
            before = collect(src, 0.8)
            board.unplug()
            time.sleep(1.5)
            board.plug()
            after = collect(src, 4.0, until=lambda c: c.status.reconnects > 0)
            after += collect(src, 0.5)
    chunks = before + after
    idx, counts = counts_of(chunks, src)
    assert np.array_equal(counts, value(idx, 6)), "wrong index after the reconnect"
    gaps = [c for c in chunks if c.status.lost_samples]
    assert len(gaps) == 1 and gaps[0].status.reconnects == 1
    assert gaps[0].status.lost_samples > 256
    assert src.stats["reconnects"] == 1


def test_unplug_power_loss_reconnects_and_estimates_the_gap(tmp_path: Path) -> None:
    with FakeChords(tmp_path, **FAST) as board:
        src = ChordsSource(board.link, **SRC)
        with src:
            before = collect(src, 0.6)
            board.unplug()
            time.sleep(0.8)
            board.plug()
            plugged = time.monotonic()
            after = collect(src, 5.0, until=lambda c: c.status.reconnects > 0)
            reconnected = time.monotonic()
            after += collect(src, 0.5)
        assert board.commands.count("WHORU") >= 2 and board.commands.count("START") == 2
    assert reconnected - plugged < 3.0
    gap = next(c for c in after if c.status.reconnects)
    assert gap.start > before[-1].stop
    assert 0.6 * 250 < gap.status.lost_samples < 3.5 * 250
    # after the gap: contiguous again, the board's packets in order from its restart
    idx, counts = counts_of(before + after, src)
    tail = idx >= gap.start
    n0 = int(np.flatnonzero(tail)[0])
    first_after = (counts[n0, 0] * pow(7, -1, 1024)) % 1024  # packet number of the first one
    assert np.array_equal(counts[tail], value(idx[tail] - gap.start + first_after, 6))
    assert src.stats["estimated_gaps"] == 1


def test_npg_lite_channel_count_from_the_packets(tmp_path: Path) -> None:
    with FakeChords(tmp_path, board="NPG-LITE", nch=6, **FAST) as board:
        src = ChordsSource(board.link, **SRC)
        with src:
            assert len(src.info.channels) == 6 and src.info.fs == 500
            chunks = collect(src, 5.0, until=lambda c: c.stop > 300)
    idx, counts = counts_of(chunks, src)
    assert np.array_equal(counts, value(idx, 6, 12))


def test_one_line_errors(tmp_path: Path) -> None:
    with FakeChords(tmp_path, answer="", **FAST) as board:
        with pytest.raises(SourceTimeout, match="no answer to WHORU .* 230400 or 115200 baud"):
            ChordsSource(board.link, command_gap=0.2, handshake_timeout=0.5).open()
    with FakeChords(tmp_path, answer="ESP32-XYZ", **FAST) as board:
        with pytest.raises(ProtocolError, match="answered 'ESP32-XYZ' to WHORU"):
            ChordsSource(board.link, baudrate=230400, **SRC).open()
    with pytest.raises(Exception, match="no serial port /dev/nonexistent"):
        ChordsSource("/dev/nonexistent").open()


def test_record_from_a_chords_board_through_the_cli(tmp_path: Path, capsys) -> None:
    from emgfeedback.cli import main
    from emgfeedback.io.importers import load

    out = tmp_path / "chords.edf"
    with FakeChords(tmp_path, board="UNO-R4", **FAST) as board:
        assert main(["record", "--board", f"chords:{board.link}", "--duration", "2",
                     "--patient", "P-0003", "--out", str(out)]) == 0
    assert "6 channels at 500 Hz" in capsys.readouterr().out
    with load(out) as rec:
        assert rec.fs == 500 and 1000 <= rec.n_samples < 1100 and not rec.gaps
        assert rec.sidecar["source"]["board"] == "Chords UNO-R4"
