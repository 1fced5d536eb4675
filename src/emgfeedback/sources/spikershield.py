"""Backyard Brains Muscle SpikerShield on an Arduino Uno, with the Spike Recorder sketch.

``open_source("spikershield:/dev/ttyACM0")`` gives a :class:`SpikerShieldSource` (on
:class:`~emgfeedback.sources.serial.SerialBoard`).  The protocol, as Backyard Brains' sketches
(BackyardBrains/SpikerShield, ``MuscleSpikerShiledComplete.ino``, ``SpikeRecorder*.ino``) and
their MATLAB reader ``readSR.m`` document it:

- line: 222222 baud 8N1 (the sketch asks for 230400, which a 16 MHz AVR with U2X makes as
  16 MHz / 8 / 9 = 222222: the host opens the true rate);
- the board streams from power-up, one channel at 10 kHz; ``c:N;\\n`` selects N channels
  (A0..A(N-1), up to 6), and the rate becomes 10 kHz / N per channel;
- a frame is one sample of every channel, 2 bytes per channel: the 10-bit ADC value split
  into its 3 high bits and 7 low bits; bit 7 of a byte is set only in the first byte of a
  frame (the frame flag);
- ``b:;\\n`` asks the board type: the answer is an escape sequence ``FF FF 01 01 80 FF``, text
  such as ``HWT:MUSCLESS;``, then ``FF FF 01 01 81 FF``.  The older Spike Recorder sketch does
  not answer; its frames are accepted all the same.

Loss accounting.  There is no counter and no checksum.  A frame is accepted when the next frame
flag follows exactly ``2N`` bytes later and its high bytes are within 3 bits; a stretch of
``R`` bytes between accepted frames held ``ceil(R / 2N)`` samples, counted as lost.  This is
exact for the faults the framing shows (dropped bytes, a lost or a spurious frame flag) as long
as fewer than ``2N`` bytes vanish in one damaged stretch; a whole frame lost without trace, bytes
inserted, or a flipped low bit of a value cannot be seen (no counter, no checksum).  A frame
next to a lost flag byte cannot be told from a damaged one and is counted lost with it.  After a
reconnect (the Uno resets when the port opens) the gap is estimated from the time the link was
down (``stats["estimated_gaps"]``).

Counts to microvolts: ``µV = (count - 512) * 5000 mV / 1024 / gain``.  Backyard Brains does not
publish the shield's gain in its sketches: the default 1000 is an assumption (said once in the
log and kept in the recording's sidecar as ``gain_assumed``); give ``gain=`` (``--gain``) when
known.  %MVC (every clinical number) does not depend on it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from emgfeedback.errors import ConfigError, ProtocolError, SourceTimeout
from emgfeedback.sources.serial import DEFAULT_LABELS, SerialBoard
from emgfeedback.stream import SourceInfo, Status

log = logging.getLogger(__name__)

__all__ = ["ESC_END", "ESC_START", "SpikerDecoder", "SpikerShieldSource"]

DEFAULT_BAUD = 222222
MAX_RATE = 10000  # samples per second over all channels
MAX_CHANNELS = 6
ESC_START = bytes((255, 255, 1, 1, 128, 255))
ESC_END = bytes((255, 255, 1, 1, 129, 255))
ASSUMED_GAIN = 1000.0


class SpikerDecoder:
    """Frames out of the byte stream, in pieces or whole (the same frames either way).

    ``feed(data)`` returns ``(steps, counts)``: for each accepted frame, how far its sample index
    is from the previous accepted frame's (1 = contiguous, 1 + k = k samples lost before it), and
    the ADC counts.  Board messages (escape sequences) are taken out into :attr:`messages`.
    """

    def __init__(self, n_channels: int) -> None:
        self.n = n_channels
        self.size = 2 * n_channels
        self._buf = b""
        self._gap = 0  # bytes of damaged stretch since the last accepted frame
        self._started = False  # the first whole frame has been seen
        self.skipped = 0
        self.bad_frames = 0
        self.messages: list[str] = []

    def discard(self) -> None:
        """Forget everything in flight (the link was cut: a reconnect estimates the gap)."""
        self._buf = b""
        self._gap = 0
        self._started = False

    def _strip_messages(self) -> None:
        while True:
            a = self._buf.find(ESC_START)
            if a < 0:
                # keep a possible beginning of an escape sequence for the next call
                return
            b = self._buf.find(ESC_END, a + len(ESC_START))
            if b < 0:
                return
            self.messages.append(self._buf[a + len(ESC_START): b].decode("ascii", "replace"))
            self._buf = self._buf[:a] + self._buf[b + len(ESC_END):]

    def feed(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        self._buf += data
        self._strip_messages()
        hold = self._buf.find(ESC_START[:2])  # an escape sequence still arriving: wait for it
        while 0 <= hold and len(self._buf) - hold > 160:  # no end came: not a message
            self._buf = self._buf[:hold] + self._buf[hold + 2:]
            self.skipped += 2
            hold = self._buf.find(ESC_START[:2])
        usable = self._buf if hold < 0 else self._buf[:hold]
        b = np.frombuffer(usable, dtype=np.uint8)
        flags = np.flatnonzero(b & 0x80)
        steps: list[int] = []
        rows: list[np.ndarray] = []
        consumed = 0
        if len(flags) == 0:
            if self._started:
                self._gap += len(b)
            else:
                self.skipped += len(b)
            self._buf = self._buf[len(b):]
            return np.empty(0, np.int64), np.empty((0, self.n), np.int64)
        if not self._started:
            self.skipped += int(flags[0])  # a partial frame before the first flag
        else:
            self._gap += int(flags[0])
        consumed = int(flags[0])
        spans = np.diff(flags)
        for k, span in enumerate(spans):
            p = int(flags[k])
            frame = b[p: p + self.size]
            hi = frame[0::2] & 0x7F
            if span == self.size and int(hi.max()) <= 7:
                counts = (hi.astype(np.int64) << 7) | frame[1::2].astype(np.int64)
                if self._started:
                    steps.append(1 + math.ceil(self._gap / self.size))
                    if self._gap:
                        self.bad_frames += 1
                else:
                    steps.append(1)
                    self._started = True
                self._gap = 0
                rows.append(counts)
            else:
                if self._started:
                    self._gap += int(span)
                else:
                    self.skipped += int(span)
            consumed = int(flags[k + 1])
        # the last flag's frame waits for the next flag (it proves the frame's length)
        self._buf = self._buf[consumed:]
        if len(self._buf) > 4 * self.size + 64 and hold < 0:
            # a flag followed by far too many bytes: a damaged stretch still growing
            extra = len(self._buf) - 2 * self.size
            self._gap += extra if self._started else 0
            self.skipped += 0 if self._started else extra
            self._buf = self._buf[extra:]
        if not rows:
            return np.empty(0, np.int64), np.empty((0, self.n), np.int64)
        return np.asarray(steps, dtype=np.int64), np.vstack(rows)


class SpikerShieldSource(SerialBoard):
    """A Muscle SpikerShield (see the module docstring).

    Parameters
    ----------
    port:
        ``/dev/ttyACM0``, ``COM3``, ``/dev/cu.usbmodem1101``.
    n_channels:
        Channels to stream (1..6, A0..A5; default 1, the shield's own channel); the rate is
        10 kHz divided by it.
    fs:
        When given, must equal 10000 / n_channels (the sketch sets the rate from the count).
    gain:
        Front-end gain for µV (default: assumed 1000, see the module docstring).
    labels:
        Channel labels in pin order; default the project's wiring (hardware/README.md).
    """

    kind = "spikershield"

    def __init__(self, port: str, *, baudrate: int | None = None, n_channels: int | None = None,
                 fs: float | None = None, gain: float | None = None,
                 labels: Sequence[str] | None = None, reconnect: bool = True,
                 reconnect_timeout: float = 60.0, handshake_timeout: float = 3.0,
                 queue_size: int = 1024, read_timeout: float = 0.02) -> None:
        super().__init__(port, baudrate=baudrate or DEFAULT_BAUD, reconnect=reconnect,
                         reconnect_timeout=reconnect_timeout, handshake_timeout=handshake_timeout,
                         queue_size=queue_size, read_timeout=read_timeout)
        n = int(n_channels or 1)
        if not 1 <= n <= MAX_CHANNELS:
            raise ConfigError(f"the SpikerShield sketch streams 1 to {MAX_CHANNELS} channels, "
                              f"not {n}")
        if fs and abs(float(fs) - MAX_RATE / n) > 1e-6:
            raise ConfigError(f"the SpikerShield samples at 10 kHz / channels: {MAX_RATE / n:g} Hz "
                              f"with {n} channel(s), not {fs:g} (choose --channels instead)")
        if gain is not None and not (np.isfinite(gain) and gain > 0):
            raise ConfigError(f"spikershield gain must be a positive number (V/V), got {gain}")
        self.n = n
        self.gain = float(gain) if gain else ASSUMED_GAIN
        self.gain_assumed = gain is None
        self.labels = tuple(labels) if labels else None
        self._decoder = SpikerDecoder(n)
        self._uv_per_count = 5000.0 * 1000.0 / 1024 / self.gain
        self.board_type = ""

    def _configure(self, ser: Any, timeout: float) -> tuple[str, int]:
        """Ask the board type, select the channels, wait for frames of that width; returns
        ``(board type or "", frames seen)``."""
        ser.write(b"b:;\n")
        ser.flush()
        probe = SpikerDecoder(self.n)
        messages: list[str] = []
        deadline = time.monotonic() + timeout
        sent_c = False
        frames = 0
        raw = 0
        t_type = time.monotonic() + min(0.5, timeout / 3)
        while time.monotonic() < deadline and not self._stop.is_set():
            data = ser.read(4096)
            raw += len(data)
            steps, _ = probe.feed(data)
            messages += probe.messages
            probe.messages.clear()
            if not sent_c and (messages or time.monotonic() > t_type):
                ser.write(f"c:{self.n};\n".encode())
                ser.flush()
                sent_c = True
                probe = SpikerDecoder(self.n)  # frames of the new width from here
                continue
            if sent_c:
                frames += len(steps)
                if frames >= 20:
                    break
        types = [m for m in messages if m.startswith("HWT:")]
        if frames < 20:
            if raw == 0:
                raise SourceTimeout(
                    f"no data from {self.port} at {self.baudrate} baud within {timeout:g} s: is "
                    "Backyard Brains' Spike Recorder sketch flashed? (emgfeedback's own board: "
                    "--board serial:PORT)")
            raise ProtocolError(
                f"no SpikerShield frames of {self.n} channel(s) at {self.baudrate} baud on "
                f"{self.port} ({raw} bytes received): wrong baud rate, or another sketch")
        return (types[-1][4:].rstrip(";") if types else ""), frames

    def _handshake_open(self) -> None:
        board_type, _ = self._configure(self._ser, self.handshake_timeout)
        self.board_type = board_type
        if board_type and board_type != "MUSCLESS":
            log.warning("the board on %s says it is a %s SpikerShield, not the Muscle one: "
                        "check that it records EMG", self.port, board_type)
        if self.gain_assumed:
            log.warning("SpikerShield gain is not published: µV assume a gain of %g (give "
                        "--gain); %%MVC values do not depend on it", self.gain)
        labels = self.labels or DEFAULT_LABELS
        if len(labels) < self.n:
            labels = tuple(labels) + tuple(f"EMG CH{i + 1}" for i in range(len(labels), self.n))
        self.info = SourceInfo(
            name=f"spikershield:{self.port}", fs=MAX_RATE / self.n,
            channels=tuple(labels[: self.n]),
            board=f"Muscle SpikerShield{' (' + board_type + ')' if board_type else ''}",
            firmware="Spike Recorder sketch", adc_bits=10,
            adc_range_uv=(-512 * self._uv_per_count, 511 * self._uv_per_count),
            extra={"port": self.port, "baudrate": self.baudrate, "format": "spikershield",
                   "vref_mv": 5000, "gain": self.gain, "gain_assumed": self.gain_assumed,
                   "uv_per_count": self._uv_per_count, "adc_midpoint": 512},
        )

    def _start_streaming(self) -> None:
        # the board streams all the time: start from the next whole frame
        self._ser.reset_input_buffer()
        self._decoder = SpikerDecoder(self.n)

    def _process(self, data: bytes) -> None:
        dec = self._decoder
        skipped0, bad0 = dec.skipped, dec.bad_frames
        steps, counts = dec.feed(data)
        self._pending = self._pending.merged(Status(crc_errors=dec.bad_frames - bad0,
                                                    bytes_skipped=dec.skipped - skipped0))
        self.stats["crc_errors"] += dec.bad_frames - bad0
        self.stats["bytes_skipped"] += dec.skipped - skipped0
        if not len(steps):
            return
        if self._reconnect_from is not None:
            steps[0] = max(1, int(round((time.monotonic() - self._reconnect_from)
                                        * self.info.fs)))
            self._reconnect_from = None
        self.stats["frames"] += len(steps)
        idx = self._expected - 1 + np.cumsum(steps)
        uv = (counts.astype(np.float64) - 512) * self._uv_per_count
        sat = (counts == 0) | (counts == 1023)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        bounds = [0, *breaks.tolist(), len(idx)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            self._emit(uv[a:b], int(idx[a]), sat[a:b])

    _reconnect_from: float | None = None

    def _resume(self, ser: Any, last_rx: float) -> None:
        """The Uno resets when its port opens and boots with one channel: select ours again;
        no counter, so the gap is the down time times the rate."""
        ser.reset_input_buffer()
        self._configure(ser, self.handshake_timeout)
        self._decoder = SpikerDecoder(self.n)
        self._reconnect_from = last_rx
        self.stats["estimated_gaps"] += 1


def create(arg: str = "", *, baud: int | None = None, n_channels: int | None = None,
           fs: float | None = None, gain: float | None = None,
           labels: Sequence[str] | None = None, reconnect: bool = True,
           reconnect_timeout: float = 60.0, handshake_timeout: float = 3.0) -> SpikerShieldSource:
    """``spikershield:PORT`` (registry factory; typed options)."""
    return SpikerShieldSource(arg, baudrate=baud, n_channels=n_channels, fs=fs, gain=gain,
                              labels=labels, reconnect=reconnect,
                              reconnect_timeout=reconnect_timeout,
                              handshake_timeout=handshake_timeout)
