"""An emulator of a Muscle SpikerShield on an Arduino Uno with Backyard Brains' Spike Recorder
sketch, behind a pty.

As the sketches document it: from power-up it streams one channel at 10 kHz; ``c:N;`` (a line)
selects N channels at 10 kHz / N; ``b:;`` is answered by ``FF FF 01 01 80 FF`` + ``HWT:MUSCLESS;``
+ ``FF FF 01 01 81 FF`` (``answers_type=False``: the older sketch, which ignores it).  A frame:
per channel the 3 high bits of the 10-bit value (bit 7 set on the frame's first byte only), then
the 7 low bits.  Unplugging cuts the power: the board boots with one channel again.

Sample values are a known function of the emulator's absolute sample number (:func:`value`);
``damaged`` lists the samples not delivered intact.  Injected faults are the ones the framing
shows (a dropped byte, a lost frame flag, a spurious one), at most one per frame and never in
two frames closer than 3 apart (the limit of exact counting without a counter: see
``emgfeedback.sources.spikershield``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fakeboard import PtyDevice

ESC_START = bytes((255, 255, 1, 1, 128, 255))
ESC_END = bytes((255, 255, 1, 1, 129, 255))


def value(k: np.ndarray, nch: int) -> np.ndarray:
    c = np.asarray(k, dtype=np.int64)[:, None]
    return ((c * 7 + np.arange(nch)[None, :] * 100) % 1024).astype(np.int64)


class FakeSpikerShield(PtyDevice):
    def __init__(self, directory: Path, fault: float = 0.0, seed: int = 0,
                 answers_type: bool = True, board_type: str = "MUSCLESS",
                 mode: str = "frames") -> None:
        super().__init__(directory, "spiker")
        self.fault = fault
        self.rng = np.random.default_rng(seed)
        self.answers_type, self.board_type, self.mode = answers_type, board_type, mode
        self.n = 1
        self.k = 0  # absolute sample number (the emulator's truth)
        self.t_next = 0.0
        self.damaged: set[int] = set()
        self.commands: list[str] = []
        self._line = b""
        self._last_fault = -10

    def _on_plug(self) -> None:
        self.n, self._line = 1, b""  # power-up: the sketch's defaults
        self.t_next = time.monotonic()

    def _frames(self, count: int) -> bytes:
        ks = np.arange(self.k, self.k + count)
        self.k += count
        v = value(ks, self.n)
        fr = np.zeros((count, 2 * self.n), dtype=np.uint8)
        fr[:, 0::2] = (v >> 7) & 0x7F
        fr[:, 1::2] = v & 0x7F
        fr[:, 0] |= 0x80
        if not self.fault:
            return fr.tobytes()
        keep = np.ones(fr.shape, bool)
        for i in np.flatnonzero(self.rng.random(count) < self.fault):
            if ks[i] - self._last_fault < 3:
                continue
            self._last_fault = int(ks[i])
            what = self.rng.integers(0, 3)
            j = int(self.rng.integers(0, 2 * self.n))
            if what == 0:
                keep[i, j] = False  # a byte lost on the line
            elif what == 1:
                fr[i, 0] &= 0x7F  # the frame flag lost
            else:
                j = int(self.rng.integers(1, 2 * self.n))
                fr[i, j] |= 0x80  # a spurious frame flag
            self.damaged.add(int(ks[i]))
        return b"".join(row[m].tobytes() for row, m in zip(fr, keep))

    def _tick(self, data: bytes, plugged: bool) -> None:
        now = time.monotonic()
        if not plugged:
            self.t_next = now
            return
        self._line += data
        while b"\n" in self._line:
            line, self._line = self._line.split(b"\n", 1)
            text = line.decode("ascii", "replace").strip()
            self.commands.append(text)
            for cmd in filter(None, text.split(";")):
                name, _, val = cmd.partition(":")
                if name == "c" and val.strip().isdigit():
                    self.n = max(1, min(6, int(val)))
                elif name == "b" and self.answers_type and self.mode == "frames":
                    self._out += ESC_START + f"HWT:{self.board_type};".encode() + ESC_END
        due = int((now - self.t_next) * 10000 / self.n)
        if due > 0:
            self.t_next += due * self.n / 10000
            if self.mode == "frames":
                self._out += self._frames(due)
            elif self.mode == "text":
                self._out += b"512\r\n" * max(1, due // 20)
