"""A fake emg_acquire board behind a pty, with fault injection, for the serial source tests.

The board is a thread that speaks protocol v1 on the master side of a pty; the serial source
opens ``board.link``, a symlink to the slave side that disappears when the board is unplugged
and points to a fresh pty when it is plugged in again.  Sample values are a known function of
the sample counter (:func:`value`), so a test can check every accepted sample.
"""

from __future__ import annotations

import os
import pty
import select
import threading
import time
import tty
from pathlib import Path

import numpy as np

from emgfeedback import protocol as P


def collect(src, seconds: float, until=None) -> list:
    """Read chunks from ``src`` for at most ``seconds`` of wall time (or until ``until(chunk)``):
    the reading loop of the board tests."""
    chunks: list = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c = src.read(0.05)
        if c is not None:
            chunks.append(c)
            if until and until(c):
                break
    return chunks


def value(counter: np.ndarray, nch: int) -> np.ndarray:
    """The ADC count the fake board sends for ``counter`` on each channel."""
    c = np.asarray(counter, dtype=np.int64)[:, None]
    return ((c * 7 + np.arange(nch)[None, :] * 100) % 1024).astype(np.uint16)


class PtyDevice:
    """A device behind a pty that can be unplugged and plugged in again.

    ``link`` is a symlink to the slave side: it disappears on :meth:`unplug` and points to a
    fresh pty after :meth:`plug`.  Subclasses implement :meth:`_tick` (called every 4 ms with the
    bytes the host sent, under the lock) and append what the device sends to ``self._out``.
    """

    def __init__(self, directory: Path, name: str = "board") -> None:
        self.link = str(directory / name)
        self._fd: int | None = None
        self._slave: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._out = b""
        self.plugged_at = 0.0
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def plug(self) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.set_blocking(master, False)
        with self._lock:
            self._fd, self._slave = master, slave
            self._out = b""
        tmp = self.link + ".tmp"
        os.symlink(name, tmp)
        os.replace(tmp, self.link)
        self.plugged_at = time.monotonic()
        self._on_plug()

    def unplug(self) -> None:
        with self._lock:
            fd, slave = self._fd, self._slave
            self._fd = self._slave = None
        if os.path.lexists(self.link):
            os.unlink(self.link)
        for f in (fd, slave):
            if f is not None:
                os.close(f)
        self._on_unplug()

    def _on_plug(self) -> None:
        pass

    def _on_unplug(self) -> None:
        pass

    def __enter__(self) -> "PtyDevice":
        self.plug()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.unplug()

    def _tick(self, received: bytes, plugged: bool) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.is_set():
            time.sleep(0.004)
            with self._lock:
                fd = self._fd
                data = b""
                if fd is not None:
                    try:
                        r, _, _ = select.select([fd], [], [], 0)
                        data = os.read(fd, 4096) if r else b""
                    except OSError:
                        data = b""
                self._tick(data, fd is not None)
                if fd is not None and self._out:
                    try:
                        w = os.write(fd, self._out)
                        self._out = self._out[w:]
                    except BlockingIOError:
                        pass
                    except OSError:
                        self._out = b""
                    if len(self._out) > 1 << 20:
                        self._out = b""
                elif fd is None:
                    self._out = b""


class FakeBoard(PtyDevice):
    def __init__(
        self,
        directory: Path,
        nch: int = 8,
        rate: int = 1000,
        corrupt: float = 0.0,
        drop: float = 0.0,
        garbage_every: int = 0,
        seed: int = 0,
        mode: str = "binary",
        version: int = P.VERSION,
        keep_streaming_on_unplug: bool = True,
        forge: dict[int, int] | None = None,
        duplicate: frozenset[int] = frozenset(),
    ) -> None:
        super().__init__(directory)
        # forge: counter -> the counter its frame claims (CRC-valid damage); duplicate: counters
        # whose frame is sent twice
        self.forge, self.duplicate = dict(forge or {}), duplicate
        self.nch, self.rate = nch, rate
        self.corrupt, self.drop, self.garbage_every = corrupt, drop, garbage_every
        self.rng = np.random.default_rng(seed)
        self.mode, self.version = mode, version
        self.keep_streaming = keep_streaming_on_unplug
        self.damaged: set[int] = set()  # counters whose frame was altered or never sent
        self.counter = 0
        self.streaming = False
        self.t0 = 0.0
        self._dec = P.FrameDecoder()

    def _on_unplug(self) -> None:
        if not self.keep_streaming:
            self.streaming = False

    # --- board behaviour ------------------------------------------------------------------
    def _info(self) -> bytes:
        info = P.BoardInfo("fake", (1, 0, 0), self.nch, 8, self.rate, 10, 5000, 2000,
                           self.streaming, 0)
        raw = P.encode_info(info)
        if self.version != P.VERSION:
            raw = P.encode_frame(P.KIND_INFO, raw[4:-2], version=self.version)
        return raw

    def _command(self, m: P.Message) -> bytes:
        if m.kind == P.CMD_IDENTIFY:
            return self._info()
        if m.kind == P.CMD_START:
            if not self.streaming:
                self.streaming, self.counter, self.t0 = True, 0, time.monotonic()
            return P.encode_ack(m.kind, P.ACK_OK, self.counter)
        if m.kind == P.CMD_STOP:
            self.streaming = False
            return P.encode_ack(m.kind, P.ACK_OK, self.counter)
        if m.kind == P.CMD_SET_RATE:
            self.rate = int.from_bytes(m.payload, "little")
            return P.encode_ack(m.kind, P.ACK_OK, self.rate)
        if m.kind == P.CMD_SET_CHANNELS:
            self.nch = m.payload[0]
            return P.encode_ack(m.kind, P.ACK_OK, self.nch)
        return P.encode_ack(m.kind, P.ACK_UNKNOWN, 0)

    def _frames(self, n: int) -> bytes:
        counters = np.arange(self.counter, self.counter + n)
        self.counter += n
        raw = P.encode_data_frames(counters, value(counters, self.nch))
        if self.forge or self.duplicate:
            size = P.data_frame_size(self.nch)
            parts = []
            for i, c in enumerate(counters.tolist()):
                f = raw[i * size : (i + 1) * size]
                if c in self.forge:  # the samples of c under another counter, CRC valid
                    f = P.encode_data(self.forge[c], value(np.array([c]), self.nch)[0])
                    self.damaged.add(c)
                parts.append(f * (2 if c in self.duplicate else 1))
            raw = b"".join(parts)
        if not (self.corrupt or self.drop or self.garbage_every):
            return raw
        size = P.data_frame_size(self.nch)
        b = np.frombuffer(raw, np.uint8).copy()
        keep = np.ones(len(b), bool)
        if self.corrupt:
            hit = np.flatnonzero(self.rng.random(len(b)) < self.corrupt)
            b[hit] ^= (1 << self.rng.integers(0, 8, len(hit))).astype(np.uint8)
            self.damaged.update((counters[hit // size]).tolist())
        if self.drop:
            gone = np.flatnonzero(self.rng.random(len(b)) < self.drop)
            keep[gone] = False
            self.damaged.update((counters[gone // size]).tolist())
        out = b[keep].tobytes()
        if self.garbage_every and self.rng.random() < n / self.garbage_every:
            junk = self.rng.integers(0, 256, int(self.rng.integers(1, 200)), dtype=np.uint8)
            cut = int(self.rng.integers(0, n + 1)) * size  # between frames (before drops)
            cut = int(keep[:cut].sum())
            out = out[:cut] + junk.tobytes() + out[cut:]
        return out

    def _tick(self, data: bytes, plugged: bool) -> None:
        if plugged:
            if self.mode == "binary":
                for m in self._dec.feed(data).messages:
                    self._out += self._command(m)
            elif self.mode == "noise":
                self._out += self.rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
            elif self.mode == "text":
                self._out += b"L-ZYG:%d,R-ZYG:%d\n" % (self.counter % 100, 5)
                self.counter += 1
            elif self.mode == "myoware":
                # a MyoWare 2.0 sketch printing analogRead of its ENV and RAW pins: the
                # envelope is smooth and positive, RAW sits around mid-scale with EMG on it
                env = 120 + 80 * np.sin(2 * np.pi * 0.5 * self.counter / 250)
                raw = 512 + self.rng.normal(0, 40)
                self._out += b"ENV:%d,RAW:%d\n" % (round(env), round(raw))
                self.counter += 1
        if self.streaming:
            due = int((time.monotonic() - self.t0) * self.rate) - self.counter
            if due > 0:
                raw = self._frames(due)
                if plugged:
                    self._out += raw
                else:  # unplugged: sampled, never delivered
                    self.damaged.update(range(self.counter - due, self.counter))
