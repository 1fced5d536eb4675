"""The real serial source against a fake board behind a pty: faults, reconnects, errors."""

from __future__ import annotations

import errno
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from emgfeedback import protocol as P
from emgfeedback.errors import (
    ConfigError,
    DeviceBusy,
    DeviceNotFound,
    PermissionDenied,
    ProtocolError,
    SourceTimeout,
)
from emgfeedback.sources import serial as S
from emgfeedback.stream import Chunk
from fakeboard import FakeBoard, collect, value




def check_integrity(chunks: list[Chunk], src: S.SerialSource, nch: int) -> tuple[np.ndarray, int]:
    """Every accepted sample is the one sent; starts jump by exactly the lost count."""
    uvpc = src.info.extra["uv_per_count"]
    expected_next = 0
    idx = []
    for c in chunks:
        assert c.start == expected_next + c.status.lost_samples
        expected_next = c.stop
        counts = np.rint(c.data / uvpc + 512).astype(np.int64)
        index = np.arange(c.start, c.stop)
        assert np.array_equal(counts, value(index, nch)), "a corrupt sample was accepted"
        idx.append(index)
    lost = sum(c.status.lost_samples for c in chunks)
    return np.concatenate(idx), lost


def test_corruption_drops_and_garbage_counted_exactly(tmp_path: Path) -> None:
    with FakeBoard(tmp_path, corrupt=1e-3, drop=2e-4, garbage_every=300, seed=3) as board:
        src = S.SerialSource(board.link, handshake_timeout=2.0)
        with src:
            # Enough signal whatever the machine's load: stop on the sample count, not the clock.
            chunks = collect(src, 20.0, until=lambda c: c.stop > 2600)
        damaged = set(board.damaged)
    got, lost = check_integrity(chunks, src, 8)
    last = int(got[-1])
    assert last > 2500
    missing = set(range(last + 1)) - set(got.tolist())
    # every lost sample is counted, and only damaged frames are lost
    assert lost == len(missing) == last + 1 - len(got)
    assert missing <= damaged
    assert len(damaged & set(range(last))) >= 10  # the faults really happened
    # resync within one frame: after a damaged frame the next undamaged one is accepted
    for c in damaged:
        if c + 1 <= last and c + 1 not in damaged:
            assert c + 1 in set(got.tolist())
    assert sum(c.status.crc_errors for c in chunks) > 0
    assert sum(c.status.bytes_skipped for c in chunks) > 0


def test_disconnect_and_reconnect_board_kept_streaming(tmp_path: Path) -> None:
    with FakeBoard(tmp_path) as board:
        src = S.SerialSource(board.link, handshake_timeout=2.0)
        with src:
            before = collect(src, 0.8)
            board.unplug()
            time.sleep(0.5)
            board.plug()
            plugged = time.monotonic()
            after = collect(src, 3.0, until=lambda c: c.status.reconnects > 0)
            reconnected = time.monotonic()
            after += collect(src, 0.5)
    assert reconnected - plugged < 2.0
    chunks = before + after
    got, lost = check_integrity(chunks, src, 8)
    # nothing received before the unplug is lost: the only gap is the one flagged as reconnect
    gaps = [c for c in chunks if c.status.lost_samples]
    assert len(gaps) == 1 and gaps[0].status.reconnects == 1
    assert lost == int(got[-1]) + 1 - len(got)
    assert lost >= 0.4 * 1000  # at least the time it was unplugged
    assert src.stats["reconnects"] == 1 and src.stats["estimated_gaps"] == 0


def test_reconnect_after_board_reset_estimates_gap(tmp_path: Path) -> None:
    with FakeBoard(tmp_path, keep_streaming_on_unplug=False) as board:
        src = S.SerialSource(board.link, handshake_timeout=2.0)
        with src:
            before = collect(src, 0.5)
            board.unplug()
            time.sleep(0.6)
            board.plug()
            after = collect(src, 3.0, until=lambda c: c.status.reconnects > 0)
    assert after, "no data after the board came back"
    gap = after[-1]
    assert gap.status.reconnects == 1
    assert gap.start > before[-1].stop  # flagged as a gap, never contiguous
    assert 0.4 * 1000 < gap.status.lost_samples < 2.5 * 1000  # estimated from the down time
    assert src.stats["estimated_gaps"] == 1


def test_no_such_port() -> None:
    with pytest.raises(DeviceNotFound, match="no serial port /dev/nonexistent"):
        S.SerialSource("/dev/nonexistent").open()


def test_port_busy(tmp_path: Path) -> None:
    with FakeBoard(tmp_path) as board:
        first = S.open_port(board.link)
        try:
            with pytest.raises(DeviceBusy, match="in use"):
                S.open_port(board.link)
        finally:
            first.close()


def test_permission_denied_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise serial.SerialException(errno.EACCES, "could not open port /dev/ttyUSB0: denied")

    monkeypatch.setattr(serial, "Serial", refuse)
    with pytest.raises(PermissionDenied, match="dialout"):
        S.open_port("/dev/ttyUSB0")


def test_silence_and_noise_and_wrong_version(tmp_path: Path) -> None:
    with FakeBoard(tmp_path, mode="silent") as board:
        with pytest.raises(SourceTimeout, match="no answer"):
            S.SerialSource(board.link, handshake_timeout=0.5).open()
    with FakeBoard(tmp_path, mode="noise") as board:
        with pytest.raises(ProtocolError, match="no frames at 500000 baud"):
            S.SerialSource(board.link, handshake_timeout=0.5).open()
    with FakeBoard(tmp_path, version=2) as board:
        with pytest.raises(ProtocolError, match="protocol v2"):
            S.SerialSource(board.link, handshake_timeout=1.0).open()


def test_serial_plotter_text(tmp_path: Path) -> None:
    with FakeBoard(tmp_path, mode="text") as board:
        with pytest.raises(ConfigError, match="--fs"):
            S.SerialSource(board.link, handshake_timeout=0.5).open()
        src = S.SerialSource(board.link, fs=250, handshake_timeout=1.0)
        with src:
            chunks = collect(src, 0.6)
    assert src.info.channels == ("L-ZYG", "R-ZYG") and src.info.fs == 250
    data = np.concatenate([c.data for c in chunks])
    assert len(data) > 20 and np.all(data[:, 1] == 5)
    assert np.all((data[:, 0] >= 0) & (data[:, 0] < 100))
    starts = [c.start for c in chunks]
    assert starts[0] == 0 and all(b.start == a.stop for a, b in zip(chunks, chunks[1:]))


def test_list_ports_identifies_board(tmp_path: Path) -> None:
    with FakeBoard(tmp_path) as board:
        ports = S.list_ports(extra=[board.link], timeout=1.0)
    mine = [p for p in ports if p.device == board.link]
    assert len(mine) == 1 and mine[0].board is not None
    assert mine[0].board.board == "fake" and mine[0].board.channels == 8
    text = S.format_ports(mine)
    assert "emg_acquire 1.0.0 on fake: 8/8 ch @ 1000 Hz" in text
    assert "no serial ports" in S.format_ports([])


def test_requested_rate_and_channels_applied(tmp_path: Path) -> None:
    with FakeBoard(tmp_path) as board:
        src = S.SerialSource(board.link, fs=500, n_channels=4)
        src.open()
        try:
            assert src.info.fs == 500 and len(src.info.channels) == 4
        finally:
            src.close()
    assert P.data_frame_size(4) == 18


def test_myoware_envelope_output_is_flagged_once(tmp_path: Path) -> None:
    """A MyoWare sensor's ENV output through the Serial Plotter path: one warning line names
    the envelope channel (never negative, no energy above 20 Hz), not the raw one."""
    import logging

    class Keep(logging.Handler):  # on the module's logger: other tests may stop propagation
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    keep = Keep()
    logger = logging.getLogger("emgfeedback.sources.serial")
    logger.addHandler(keep)
    # a library configured logging earlier in the run (dask.distributed's dictConfig disables
    # the loggers that existed then): this test reads the module's logger as a user sees it
    was_disabled, logger.disabled = logger.disabled, False
    try:
        with FakeBoard(tmp_path, mode="myoware") as board:
            src = S.SerialSource(board.link, fs=250, handshake_timeout=1.0)
            with src:
                chunks = collect(src, 30.0, until=lambda c: c.stop > 700
                                 and "envelope_channels" in src.info.extra)
    finally:
        logger.removeHandler(keep)
        logger.disabled = was_disabled
    assert src.info.channels == ("ENV", "RAW") and sum(len(c) for c in chunks) > 700
    assert src.info.extra["envelope_channels"] == ["ENV"]
    warnings = [m for m in keep.messages if "envelope" in m]
    assert len(warnings) == 1 and warnings[0].startswith("channel(s) ENV look like an EMG envelope")
    assert "\n" not in warnings[0] and "MyoWare" in warnings[0]
    assert src.info.extra["envelope_channels"] == ["ENV"]


def test_envelope_check_on_known_signals() -> None:
    fs, n = 1000.0, 4000
    t = np.arange(n) / fs
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 50, n)  # raw sEMG in µV: signed, broadband
    from scipy import signal

    # the MyoWare's ENV: rectified and smoothed (a few Hz of bandwidth), a contraction on it
    burst = 1 + 3 * (np.abs(t - 2.0) < 0.5)
    env = signal.lfilter(*signal.butter(2, 4.0, fs=fs), np.abs(raw) * burst) + 1
    adc_raw = 512 + raw / 5  # raw EMG as ADC counts: never negative, but broadband
    chk = S.EnvelopeCheck(fs, ("raw", "env", "adc"))
    assert chk.feed(np.column_stack([raw, env, adc_raw])[:1000]) is False  # needs 2 s
    assert chk.feed(np.column_stack([raw, env, adc_raw])[1000:]) is True
    assert chk.flagged == ("env",)
    assert S.EnvelopeCheck(30.0, ("x",))._envelope_like(np.abs(np.sin(t))) is False  # cannot tell
