"""Upside Down Labs boards running the Chords firmware (BioAmp EXG Pill / Muscle BioAmp sensors).

``open_source("chords:/dev/ttyACM0")`` gives a :class:`ChordsSource` (on the machinery of
:class:`~emgfeedback.sources.serial.SerialBoard`).  The protocol, as the Chords-Arduino-Firmware
sketches and Chords-Python document it:

- line: 230400 baud 8N1 (the newer AVR build runs at 115200: tried second when no baud is given);
- text commands, newline-terminated: ``WHORU`` (the board answers its name on one line, e.g.
  ``UNO-R3``), ``START``, ``STOP``, ``STATUS``.  The AVR sketches read a command with
  ``Serial.readString()``, which returns after 1 s of silence: commands are sent at most once
  per 1.2 s so two never merge;
- binary packets while streaming: ``C7 7C``, a 1-byte packet counter, then 2 bytes per channel
  (big-endian ADC count), then ``01``.  No checksum.

Channel count, sample rate and ADC resolution follow from the board name (:data:`BOARDS`, the
table of the firmware's README and Chords-Python/Chords-Web); the NPG Lite sends 3 or 6
channels depending on its Playmate board, so the packet length decides between them.

Loss accounting.  The counter is one byte: a jump of ``k`` means ``k - 1 (mod 256)`` packets
lost, which is exact only for losses shorter than 256 packets (~0.5 s at 500 Hz, ~1 s at
250 Hz): a longer loss looks like a shorter one.  Within a stream, losses are short (a damaged
packet or two) and counted exactly.  After a reconnect: a board that kept streaming (a USB
glitch) gives the counter's jump, plus the whole wraps of 256 that the time the link was down
explains; a board that lost power restarts stopped with its counter at 0, so the gap is the down
time times the rate.  Either way the gap is an estimate (counted in
``stats["estimated_gaps"]``) and flagged with ``status.reconnects``.  A packet is accepted when
its sync, end byte and ADC words (< 2^bits) are right; a corrupted data byte that keeps them
right cannot be detected (the protocol has no CRC) and passes as a wrong value.

Counts to microvolts: ``µV = (count - 2^(bits-1)) * vref / 2^bits / gain`` with the board's ADC
reference (5 V AVR boards, 3.3 V ARM boards) and the front end's gain: Muscle BioAmp Candy /
BisCute have a fixed 2420 (the default); give ``gain=`` (``--gain``) for a BioAmp EXG Pill set
otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emgfeedback.errors import ConfigError, Disconnected, ProtocolError, SourceTimeout
from emgfeedback.sources.serial import DEFAULT_LABELS, SerialBoard, open_port
from emgfeedback.stream import SourceInfo, Status

log = logging.getLogger(__name__)

__all__ = ["BOARDS", "ChordsBoard", "ChordsDecoder", "ChordsSource", "SYNC", "END"]

SYNC = b"\xc7\x7c"
END = 0x01
HEADER = 3  # sync, sync, counter
DEFAULT_BAUD = 230400
FALLBACK_BAUD = 115200
DEFAULT_GAIN = 2420.0  # Muscle BioAmp Candy / BisCute (fixed gain)
COMMAND_GAP_S = 1.2  # the AVR sketches' Serial.readString() waits 1 s for more characters


@dataclass(frozen=True)
class ChordsBoard:
    """What a WHORU answer means: channel counts the packets may carry, rate, ADC, reference."""

    name: str
    channels: tuple[int, ...]
    rate: int
    adc_bits: int
    vref_mv: int

    def packet_size(self, n: int) -> int:
        return HEADER + 2 * n + 1


#: WHORU answer -> board (Chords-Arduino-Firmware README, Chords-Python ``supported_boards``).
BOARDS: dict[str, ChordsBoard] = {b.name: b for b in (
    ChordsBoard("UNO-R3", (6,), 250, 10, 5000),
    ChordsBoard("UNO-CLONE", (6,), 250, 10, 5000),
    ChordsBoard("GENUINO-UNO", (6,), 250, 10, 5000),
    ChordsBoard("NANO-CLASSIC", (8,), 250, 10, 5000),
    ChordsBoard("NANO-CLONE", (8,), 250, 10, 5000),
    ChordsBoard("MEGA-2560-R3", (16,), 250, 10, 5000),
    ChordsBoard("MEGA-2560-CLONE", (16,), 250, 10, 5000),
    ChordsBoard("UNO-R4", (6,), 500, 14, 5000),
    ChordsBoard("GIGA-R1", (6,), 500, 16, 3300),
    ChordsBoard("RPI-PICO-RP2040", (3,), 500, 12, 3300),
    ChordsBoard("STM32F4-BLACK-PILL", (8,), 500, 12, 3300),
    ChordsBoard("STM32G4-CORE-BOARD", (16,), 500, 12, 3300),
    ChordsBoard("NPG-LITE", (3, 6), 500, 12, 3300),
)}


class ChordsDecoder:
    """Packets out of a byte stream, in pieces or whole (the same packets either way).

    ``feed(data)`` returns ``(counters, counts)`` of the accepted packets in order; bytes that
    belong to no accepted packet are counted in :attr:`skipped`, rejected sync candidates in
    :attr:`bad_packets`.  With several possible channel counts the first one that three
    consecutive packets agree on is kept.
    """

    def __init__(self, channels: Sequence[int], adc_bits: int) -> None:
        self.candidates = tuple(channels)
        self.n_channels: int | None = self.candidates[0] if len(self.candidates) == 1 else None
        self.maxcount = (1 << adc_bits) - 1
        self._buf = b""
        self.skipped = 0
        self.bad_packets = 0

    def _size(self) -> int:
        assert self.n_channels is not None
        return HEADER + 2 * self.n_channels + 1

    def _lock(self) -> bool:
        for n in self.candidates:
            size = HEADER + 2 * n + 1
            i = self._buf.find(SYNC)
            while 0 <= i and i + 3 * size <= len(self._buf):
                if all(self._buf[i + k * size: i + k * size + 2] == SYNC
                       and self._buf[i + k * size + size - 1] == END for k in range(3)):
                    self.n_channels = n
                    return True
                i = self._buf.find(SYNC, i + 1)
        return False

    def discard(self) -> None:
        """Forget a partial packet (the link was cut in the middle of it)."""
        self._buf = b""

    def feed(self, data: bytes) -> tuple[list[int], np.ndarray]:
        self._buf += data
        if self.n_channels is None and not self._lock():
            keep = 3 * (HEADER + 2 * max(self.candidates) + 1)
            if len(self._buf) > 4 * keep:  # nothing packet-like: count it, keep the tail
                self.skipped += len(self._buf) - keep
                self._buf = self._buf[-keep:]
            return [], np.empty((0, 0), dtype=np.int64)
        n = self.n_channels
        assert n is not None
        size = self._size()
        buf = self._buf
        counters: list[int] = []
        rows: list[np.ndarray] = []
        pos = 0
        while True:
            i = buf.find(SYNC, pos)
            if i < 0:
                # keep a trailing 0xC7: it may be the first half of the next sync
                end = len(buf) - 1 if buf.endswith(SYNC[:1]) else len(buf)
                self.skipped += end - pos
                pos = end
                break
            if i + size > len(buf):
                self.skipped += i - pos
                pos = i
                break
            pkt = buf[i: i + size]
            words = np.frombuffer(pkt, dtype=">u2", count=n, offset=HEADER).astype(np.int64)
            if pkt[-1] == END and int(words.max()) <= self.maxcount:
                self.skipped += i - pos
                counters.append(pkt[2])
                rows.append(words)
                pos = i + size
            else:
                self.bad_packets += 1
                self.skipped += i + 1 - pos
                pos = i + 1
        self._buf = buf[pos:]
        if not rows:
            return [], np.empty((0, n), dtype=np.int64)
        return counters, np.vstack(rows)


class ChordsSource(SerialBoard):
    """A board running the Chords firmware on a serial port (see the module docstring).

    Parameters
    ----------
    port:
        ``/dev/ttyACM0``, ``COM3``, ``/dev/cu.usbmodem1101``.
    baudrate:
        Default: 230400, then 115200 when the board does not answer.
    gain:
        Front-end gain (V/V) for the conversion to µV (default 2420, Muscle BioAmp).
    labels:
        Channel labels in pin order (A0, A1, ...); default the project's wiring
        (:data:`~emgfeedback.sources.serial.DEFAULT_LABELS`, hardware/README.md).
    n_channels:
        Use only the first N channels of each packet.
    """

    kind = "chords"

    def __init__(self, port: str, *, baudrate: int | None = None, gain: float | None = None,
                 labels: Sequence[str] | None = None, n_channels: int | None = None,
                 reconnect: bool = True, reconnect_timeout: float = 60.0,
                 handshake_timeout: float = 4.0, queue_size: int = 512,
                 read_timeout: float = 0.02, command_gap: float = COMMAND_GAP_S) -> None:
        super().__init__(port, baudrate=baudrate or DEFAULT_BAUD, reconnect=reconnect,
                         reconnect_timeout=reconnect_timeout, handshake_timeout=handshake_timeout,
                         queue_size=queue_size, read_timeout=read_timeout)
        self._bauds = (int(baudrate),) if baudrate else (DEFAULT_BAUD, FALLBACK_BAUD)
        if gain is not None and not (np.isfinite(gain) and gain > 0):
            raise ConfigError(f"chords gain must be a positive number (V/V), got {gain}")
        self.gain = float(gain) if gain else DEFAULT_GAIN
        self.labels = tuple(labels) if labels else None
        self.n_channels_requested = n_channels
        self.command_gap = command_gap
        self.board: ChordsBoard | None = None
        self._decoder: ChordsDecoder | None = None
        self._last_counter: int | None = None
        self._uv_per_count = 1.0
        self._mid = 0
        self._reconnect_gap_s: float | None = None  # last_rx before a reconnect
        self._was_reset = False

    # --- text commands ---------------------------------------------------------------------
    def _command(self, ser: Any, text: str) -> None:
        ser.write(text.encode("ascii") + b"\n")
        ser.flush()

    def _whoru(self, ser: Any, timeout: float) -> tuple[str | None, bytes]:
        """Ask WHORU until a known name arrives; returns ``(name or None, what arrived)``."""
        raw = bytearray()
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while time.monotonic() < deadline and not self._stop.is_set():
            now = time.monotonic()
            if now >= next_send:
                if SYNC in raw:  # it is streaming (a previous session left it running)
                    self._command(ser, "STOP")
                    raw.clear()
                    time.sleep(0.05)
                    ser.reset_input_buffer()
                else:
                    self._command(ser, "WHORU")
                next_send = now + self.command_gap
            data = ser.read(256)
            if not data:
                continue
            raw += data
            for line in bytes(raw).replace(b"\r", b"\n").split(b"\n")[:-1]:
                name = line.strip().decode("ascii", "replace").upper()
                if name in BOARDS:
                    return name, bytes(raw)
            if len(raw) > 1 << 16:
                del raw[: len(raw) - (1 << 12)]
        return None, bytes(raw)

    def _handshake_open(self) -> None:
        name, raw = None, b""
        for k, baud in enumerate(self._bauds):
            if k:
                self._ser.close()
                self._ser = open_port(self.port, baud, self.read_timeout)
                self.baudrate = baud
            name, raw = self._whoru(self._ser, self.handshake_timeout)
            if name:
                break
        if name is None:
            lines = [ln.strip().decode("ascii", "replace") for ln in raw.splitlines()
                     if ln.strip() and all(32 <= c < 127 for c in ln.strip())]
            if lines:
                raise ProtocolError(
                    f"the board on {self.port} answered {lines[-1][:40]!r} to WHORU, not a Chords "
                    f"board this emgfeedback knows ({', '.join(sorted(BOARDS))})")
            bauds = " or ".join(str(b) for b in self._bauds)
            raise SourceTimeout(
                f"no answer to WHORU from {self.port} at {bauds} baud within "
                f"{self.handshake_timeout:g} s: is the Chords firmware flashed? (emgfeedback's own "
                "board: --board serial:PORT)")
        board = BOARDS[name]
        self.board = board
        n = max(board.channels)
        if self.n_channels_requested:
            if not 1 <= self.n_channels_requested <= n:
                raise ConfigError(f"{name} streams up to {n} channels, not "
                                  f"{self.n_channels_requested}")
            n = self.n_channels_requested
        labels = self.labels or DEFAULT_LABELS
        if len(labels) < n:
            labels = tuple(labels) + tuple(f"EMG CH{i + 1}" for i in range(len(labels), n))
        self._uv_per_count = board.vref_mv * 1000.0 / (1 << board.adc_bits) / self.gain
        self._mid = 1 << (board.adc_bits - 1)
        hi = (1 << board.adc_bits) - 1
        # with several possible counts (NPG Lite) the labels are cut once the packets tell
        self._labels_all = tuple(labels)
        self.info = SourceInfo(
            name=f"chords:{self.port}", fs=float(board.rate),
            channels=tuple(labels[: min(n, min(board.channels))]
                           if len(board.channels) > 1 and not self.n_channels_requested
                           else labels[:n]),
            board=f"Chords {name}", firmware="Chords", adc_bits=board.adc_bits,
            adc_range_uv=(-self._mid * self._uv_per_count, (hi - self._mid) * self._uv_per_count),
            extra={"port": self.port, "baudrate": self.baudrate, "format": "chords",
                   "vref_mv": board.vref_mv, "gain": self.gain,
                   "uv_per_count": self._uv_per_count, "adc_midpoint": self._mid,
                   "counter_bits": 8},
        )

    # --- streaming -------------------------------------------------------------------------
    def _new_decoder(self) -> ChordsDecoder:
        assert self.board is not None
        return ChordsDecoder(self.board.channels, self.board.adc_bits)

    def _start_streaming(self) -> None:
        self._ser.reset_input_buffer()
        self._decoder = self._new_decoder()
        self._last_counter = None
        self._command(self._ser, "START")
        if len(self.board.channels if self.board else ()) > 1 and not self.n_channels_requested:
            self._learn_channels()

    def _learn_channels(self) -> None:
        """Boards with a variable channel count: wait for packets to tell (consumer thread)."""
        assert self._decoder is not None
        deadline = time.monotonic() + self.handshake_timeout
        got = b""
        while self._decoder.n_channels is None and time.monotonic() < deadline:
            data = self._ser.read(512)
            got += data
            probe = self._new_decoder()
            probe.feed(got)
            if probe.n_channels is not None:
                self._decoder.n_channels = probe.n_channels
        if self._decoder.n_channels is None:
            raise SourceTimeout(f"no Chords packets from {self.port} after START")
        n = self._decoder.n_channels
        self.info = dataclasses.replace(self.info, channels=self._labels_all[:n])
        self._start_leftover = got

    def _stop_streaming(self) -> None:
        self._command(self._ser, "STOP")

    def _process(self, data: bytes) -> None:
        dec = self._decoder
        assert dec is not None
        skipped0, bad0 = dec.skipped, dec.bad_packets
        counters, counts = dec.feed(data)
        self._pending = self._pending.merged(Status(crc_errors=dec.bad_packets - bad0,
                                                    bytes_skipped=dec.skipped - skipped0))
        self.stats["crc_errors"] += dec.bad_packets - bad0
        self.stats["bytes_skipped"] += dec.skipped - skipped0
        if not counters:
            return
        self.stats["frames"] += len(counters)
        nch = len(self.info.channels)
        counts = counts[:, :nch]
        uv = (counts.astype(np.float64) - self._mid) * self._uv_per_count
        sat = (counts == 0) | (counts == dec.maxcount)
        # absolute index of each packet from the 8-bit counter (mod 256, see the docstring)
        idx = np.empty(len(counters), dtype=np.int64)
        prev = self._last_counter
        pos = self._expected - 1
        for k, c in enumerate(counters):
            if prev is None:
                step = 1
            else:
                step = (c - prev) % 256 or 256
            if k == 0 and self._reconnect_gap_s is not None:
                if self._was_reset:
                    # the board restarted (counter from 0): only the time tells the gap
                    step = max(1, int(round((time.monotonic() - self._reconnect_gap_s)
                                            * self.info.fs)))
                else:
                    # it kept streaming: the counter's jump plus the whole wraps of 256 the
                    # down time explains
                    expect = (time.monotonic() - self._reconnect_gap_s) * self.info.fs
                    step += 256 * max(0, int(round((expect - step) / 256)))
                self._reconnect_gap_s = None
            pos += step
            idx[k] = pos
            prev = c
        self._last_counter = prev
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        bounds = [0, *breaks.tolist(), len(idx)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            self._emit(uv[a:b], int(idx[a]), sat[a:b])

    # --- reconnect -------------------------------------------------------------------------
    def _resume(self, ser: Any, last_rx: float) -> None:
        """A Chords board that lost power restarts stopped (its counter keeps no meaning):
        WHORU must name the same board, then START; the gap is the counter's jump plus the whole
        wraps of 256 the down time explains (an estimate: counted in ``estimated_gaps``)."""
        ser.reset_input_buffer()
        time.sleep(0.05)
        streaming = SYNC in ser.read(512)
        self._was_reset = not streaming
        if not streaming:
            name, _ = self._whoru(ser, self.handshake_timeout)
            if name is None:
                raise SourceTimeout("no WHORU answer after reconnect")
            if self.board is None or name != self.board.name:
                raise Disconnected(f"{self.port} came back as {name}, not "
                                   f"{self.board.name if self.board else '?'}: restart the session")
            self._command(ser, "START")
        assert self._decoder is not None
        n = self._decoder.n_channels
        self._decoder = self._new_decoder()
        self._decoder.n_channels = n
        self._reconnect_gap_s = last_rx  # the gap is worked out when the next packet arrives
        self.stats["estimated_gaps"] += 1


def create(arg: str = "", *, baud: int | None = None, gain: float | None = None,
           n_channels: int | None = None, labels: Sequence[str] | None = None,
           reconnect: bool = True, reconnect_timeout: float = 60.0,
           handshake_timeout: float = 4.0) -> ChordsSource:
    """``chords:PORT`` (registry factory; typed options)."""
    return ChordsSource(arg, baudrate=baud, gain=gain, n_channels=n_channels, labels=labels,
                        reconnect=reconnect, reconnect_timeout=reconnect_timeout,
                        handshake_timeout=handshake_timeout)
