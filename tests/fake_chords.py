"""An emulator of an Upside Down Labs board with the Chords firmware, behind a pty.

Behaviour as the firmware sketches document it (Chords-Arduino-Firmware, UNO-R3.ino and the
NPG-LITE sketch): commands are text collected until the line has been silent for the sketch's
``Serial.readString()`` timeout (1 s on the AVR boards; ``string_timeout``), then trimmed and
compared with ``WHORU`` (answer: the board name and CRLF), ``START``, ``STOP`` and ``STATUS``.
While started, a packet per sample period: ``C7 7C``, the 8-bit counter (sent, then
incremented: it starts where it was, 0 after power-up), big-endian ADC words, ``01``.
Unplugging cuts the power (streaming stops, the counter restarts at 0) unless
``keep_power`` (a USB glitch with the board powered: it keeps streaming, undelivered).

Sample values are a known function of the emulator's absolute packet number (:func:`value`);
``damaged`` records the packet numbers that were never delivered intact.  Faults the protocol
can detect are injected: bytes dropped, sync/end bytes flipped, garbage between packets (a
flipped data or counter bit passes any Chords decoder unnoticed: no CRC).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fakeboard import PtyDevice

BOARDS = {"UNO-R3": (6, 250, 10), "NPG-LITE": (3, 500, 12), "UNO-R4": (6, 500, 14)}


def value(n: np.ndarray, nch: int, bits: int = 10) -> np.ndarray:
    """ADC count of packet number ``n`` on each channel."""
    c = np.asarray(n, dtype=np.int64)[:, None]
    return ((c * 7 + np.arange(nch)[None, :] * 100) % (1 << bits)).astype(np.int64)


class FakeChords(PtyDevice):
    def __init__(self, directory: Path, board: str = "UNO-R3", nch: int | None = None,
                 string_timeout: float = 1.0, drop: float = 0.0, flip_framing: float = 0.0,
                 garbage_every: int = 0, seed: int = 0, keep_power: bool = False,
                 answer: str | None = None) -> None:
        super().__init__(directory, "chords")
        self.name = board
        default_n, self.rate, self.bits = BOARDS[board]
        self.nch = nch or default_n
        self.string_timeout = string_timeout
        self.drop, self.flip_framing, self.garbage_every = drop, flip_framing, garbage_every
        self.rng = np.random.default_rng(seed)
        self.keep_power = keep_power
        self.answer = answer if answer is not None else board
        self.streaming = False
        self.counter = 0  # the firmware's 8-bit packet counter
        self.n = 0  # absolute packet number (the emulator's truth)
        self.t_next = 0.0
        self.damaged: set[int] = set()
        self.commands: list[str] = []
        self._cmd = b""
        self._cmd_t = 0.0

    def _on_unplug(self) -> None:
        if not self.keep_power:
            self.streaming = False
            self.counter = 0
            self._cmd = b""

    def _packets(self, k: int) -> bytes:
        n = np.arange(self.n, self.n + k)
        counters = (self.counter + np.arange(k)) % 256
        self.n += k
        self.counter = (self.counter + k) % 256
        size = 3 + 2 * self.nch + 1
        pk = np.zeros((k, size), dtype=np.uint8)
        pk[:, 0], pk[:, 1], pk[:, 2], pk[:, -1] = 0xC7, 0x7C, counters, 0x01
        words = value(n, self.nch, self.bits)
        pk[:, 3:-1:2] = words >> 8
        pk[:, 4:-1:2] = words & 0xFF
        if not (self.drop or self.flip_framing or self.garbage_every):
            return pk.tobytes()
        keep = np.ones(pk.shape, bool)
        if self.flip_framing:
            hit = np.flatnonzero(self.rng.random(k) < self.flip_framing)
            where = self.rng.choice([0, 1, size - 1], len(hit))
            pk[hit, where] ^= (1 << self.rng.integers(0, 8, len(hit))).astype(np.uint8)
            self.damaged.update(n[hit].tolist())
        if self.drop:
            gone = self.rng.random(pk.shape) < self.drop
            keep &= ~gone
            self.damaged.update(n[gone.any(axis=1)].tolist())
        parts = [row[m].tobytes() for row, m in zip(pk, keep)]
        if self.garbage_every and self.rng.random() < k / self.garbage_every:
            junk = self.rng.integers(0, 256, int(self.rng.integers(1, 40)), dtype=np.uint8)
            junk[junk == 0xC7] = 0x00  # junk that fakes a sync is a separate (undetectable) fault
            parts.insert(int(self.rng.integers(0, k + 1)), junk.tobytes())
        return b"".join(parts)

    def _tick(self, data: bytes, plugged: bool) -> None:
        now = time.monotonic()
        if data:
            self._cmd += data
            self._cmd_t = now
        if self._cmd and now - self._cmd_t >= self.string_timeout:
            cmd = self._cmd.decode("ascii", "replace").strip()
            self._cmd = b""
            self.commands.append(cmd)
            if cmd == "WHORU":
                self._out += self.answer.encode() + b"\r\n"
            elif cmd == "START":
                if not self.streaming:
                    self.streaming, self.t_next = True, now
            elif cmd == "STOP":
                self.streaming = False
            elif cmd == "STATUS":
                self._out += b"START\r\n" if self.streaming else b"STOP\r\n"
        if self.streaming:
            due = int((now - self.t_next) * self.rate)
            if due > 0:
                self.t_next += due / self.rate
                first = self.n
                raw = self._packets(due)
                if plugged:
                    self._out += raw
                else:
                    self.damaged.update(range(first, self.n))
