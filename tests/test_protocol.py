"""Byte-level tests of the wire protocol and its decoder (no device, no pty)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emgfeedback import protocol as P

HEADER = Path(__file__).resolve().parents[1] / "firmware" / "emg_acquire" / "emg_protocol.h"


def frames(n: int, nch: int = 8, start: int = 0, seed: int = 0) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 1024, (n, nch)).astype(np.uint16)
    return P.encode_data_frames(np.arange(start, start + n), s), s


def test_firmware_header_matches_protocol_module() -> None:
    consts = dict(re.findall(r"^#define EMG_(\w+)\s+(0x[0-9A-Fa-f]+|\d+)", HEADER.read_text(), re.M))
    assert len(consts) >= 30
    for name, text in consts.items():
        assert hasattr(P, name), f"EMG_{name} of the firmware has no counterpart in protocol.py"
        assert getattr(P, name) == int(text, 0), f"EMG_{name}: firmware {text}, host {getattr(P, name)}"


def test_crc_is_ccitt_false() -> None:
    assert P.crc16(b"123456789") == 0x29B1  # the standard check value of CRC-16/CCITT-FALSE


def test_vectorised_encoder_equals_single_frames() -> None:
    raw, s = frames(5, 3, start=0xFFFFFFFE)
    single = b"".join(P.encode_data(0xFFFFFFFE + i, s[i]) for i in range(5))
    assert raw == single
    assert len(single) == 5 * P.data_frame_size(3)


def test_clean_stream_decodes_exactly_and_unwraps_counter() -> None:
    raw, s = frames(300, 8, start=0xFFFFFF00)
    d = P.FrameDecoder()
    r = d.feed(raw)
    assert np.array_equal(r.samples, s)
    assert np.array_equal(r.index, 0xFFFFFF00 + np.arange(300))  # unwrapped past 2**32
    assert r.lost == 0 and r.bytes_skipped == 0 and r.crc_errors == 0 and r.counter_resets == 0


@pytest.mark.parametrize("piece", [1, 7, 26, 27, 1000])
def test_chunked_equals_whole(piece: int) -> None:
    raw, s = frames(200, 8)
    raw = b"\x00\xa5" + raw[:500] + b"\xa5\x5a\x11\x14garbage" + raw[500:]
    whole = P.FrameDecoder(n_channels=8).feed(raw)
    d = P.FrameDecoder(n_channels=8)
    parts = [d.feed(raw[i : i + piece]) for i in range(0, len(raw), piece)]
    assert np.array_equal(np.concatenate([p.index for p in parts]), whole.index)
    assert np.array_equal(np.concatenate([p.samples for p in parts]), whole.samples)
    assert sum(p.bytes_skipped for p in parts) == whole.bytes_skipped
    assert sum(p.crc_errors for p in parts) == whole.crc_errors


def test_corrupt_frame_rejected_and_counted_as_lost() -> None:
    raw, s = frames(100, 8)
    b = bytearray(raw)
    b[26 * 40 + 12] ^= 0x01  # one bit in a sample of frame 40
    r = P.FrameDecoder().feed(bytes(b))
    assert 40 not in r.index
    assert r.lost == 1 and r.crc_errors == 1
    assert r.bytes_skipped == 26
    keep = np.arange(100) != 40
    assert np.array_equal(r.samples, s[keep])


def test_dropped_bytes_and_garbage_resync_within_one_frame() -> None:
    raw, s = frames(100, 4)
    size = P.data_frame_size(4)
    b = raw[: size * 10 + 5] + raw[size * 10 + 9 :]  # 4 bytes of frame 10 vanish
    cut = size * 50 - 4  # frame boundary (4 bytes went missing before it)
    b = b[:cut] + bytes(range(256)) * 3 + b[cut:]  # a garbage burst between frames 49 and 50
    r = P.FrameDecoder().feed(b)
    assert r.lost == 1  # only frame 10
    assert len(r.index) == 99
    # the frame right after the burst is decoded: resync within one frame
    assert 50 in r.index and 11 in r.index


def test_counter_gap_counts_exactly() -> None:
    s = np.zeros((4, 2), np.uint16)
    raw = P.encode_data_frames(np.array([10, 11, 15, 16]), s)
    r = P.FrameDecoder().feed(raw)
    assert r.gaps.tolist() == [0, 0, 3, 0] and r.lost == 3


def test_restart_counter_maps_next_frame() -> None:
    d = P.FrameDecoder()
    d.feed(P.encode_data_frames(np.arange(5), np.zeros((5, 2), np.uint16)))
    d.restart_counter(100)
    r = d.feed(P.encode_data_frames(np.arange(3), np.zeros((3, 2), np.uint16)))
    assert r.index.tolist() == [100, 101, 102] and r.lost == 0


def test_out_of_range_adc_word_rejected() -> None:
    raw = P.encode_data(0, [1024, 3])
    r = P.FrameDecoder().feed(raw)
    assert len(r.index) == 0 and r.crc_errors == 1


def test_info_ack_roundtrip_and_foreign_version() -> None:
    info = P.BoardInfo("nano", (1, 0, 0), 8, 8, 1000, 10, 5000, 2000, True, 7)
    raw = P.encode_info(info) + P.encode_ack(P.CMD_PING, P.ACK_OK, 0xDEADBEEF)
    raw += P.encode_frame(P.KIND_INFO, b"x" * P.INFO_SIZE, version=2)
    r = P.FrameDecoder().feed(raw)
    assert [m.kind for m in r.messages] == [P.KIND_INFO, P.KIND_ACK, P.KIND_INFO]
    assert P.parse_info(r.messages[0].payload) == info
    assert P.parse_ack(r.messages[1].payload) == P.Ack(P.CMD_PING, P.ACK_OK, 0xDEADBEEF)
    assert r.foreign_frames == 1 and r.messages[2].version == 2
    assert info.uv_per_count == pytest.approx(5000e3 / 1024 / 2000)


def test_mismatched_channel_count_dropped() -> None:
    d = P.FrameDecoder(n_channels=8)
    r = d.feed(P.encode_data(0, [1, 2, 3]))
    assert len(r.index) == 0 and d.mismatched == 1


def test_plotter_text() -> None:
    text = b"12\nL-ZYG:1.5,R-ZYG:2\nL-ZYG:3 R-ZYG:4\nL-ZYG:5\tR-ZYG:6\nhello\n7,8\n9,"
    assert P.PlotterTextDecoder.looks_like_text(text)
    assert not P.PlotterTextDecoder.looks_like_text(frames(20)[0])
    d = P.PlotterTextDecoder()
    v, skipped = d.feed(text[3:])
    assert v.tolist() == [[1.5, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]
    assert d.labels == ("L-ZYG", "R-ZYG") and d.bad_lines == 1 and skipped == 6


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_arbitrary_bytes_never_raise(data: bytes, piece: int) -> None:
    d = P.FrameDecoder()
    total = 0
    for i in range(0, len(data), piece):
        r = d.feed(data[i : i + piece])
        total += r.bytes_skipped + len(r.index) * 26
        assert r.samples.shape[0] == len(r.index) == len(r.gaps)
        assert (r.gaps >= 0).all()
    assert total <= len(data)
    t = P.PlotterTextDecoder()
    t.feed(data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("frame"), st.integers(0, 2**32 - 1), st.integers(0, 1023)),
            st.tuples(st.just("junk"), st.binary(min_size=1, max_size=40), st.just(0)),
        ),
        max_size=40,
    ),
    st.integers(1, 50),
)
def test_frames_among_junk_survive_any_split(items: list, piece: int) -> None:
    raw = b""
    sent = []
    for kind, a, b in items:
        if kind == "frame":
            raw += P.encode_data(a, [b, 1023 - b])
            sent.append((a, b))
        else:
            raw += a
    whole = P.FrameDecoder(n_channels=2).feed(raw)
    d = P.FrameDecoder(n_channels=2)
    got = [d.feed(raw[i : i + piece]) for i in range(0, len(raw), piece)]
    samples = np.concatenate([g.samples for g in got]) if got else np.zeros((0, 2))
    assert np.array_equal(samples, whole.samples)
    # every accepted frame is one that was sent (no corrupt frame accepted)
    sent_set = {b for _, b in sent}
    assert all(int(x) in sent_set for x in samples[:, 0])
    assert all(int(x) + int(y) == 1023 for x, y in samples)
