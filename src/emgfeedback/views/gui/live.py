"""The hand-over from the session thread to the window: ring buffers and counters (no Qt).

:class:`LiveBuffers` is a session consumer.  The session thread calls :meth:`LiveBuffers.feed`
with each processed chunk; it writes raw, filtered and envelope samples into three
:class:`~emgfeedback.stream.RingBuffer` objects and keeps the soft-fault counters, the latest
quality snapshot and the recent markers.  The GUI thread reads them on its timer (``latest``,
:meth:`LiveBuffers.status`), so no array ever travels through a Qt signal and the session thread
never waits for drawing.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emgfeedback.dsp.chain import Processed
from emgfeedback.dsp.quality import Quality
from emgfeedback.stream import Marker, RingBuffer

__all__ = ["InterimRecorder", "LiveBuffers", "LiveStatus", "decimate_minmax"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveStatus:
    """Counters and the latest quality snapshot, copied for the GUI thread."""

    total: int
    lost_samples: int
    crc_errors: int
    reconnects: int
    saturated: int
    quality: Quality | None
    markers: tuple[Marker, ...]
    gaps: tuple[tuple[int, int], ...]  # (first missing sample, count)


class LiveBuffers:
    """Ring buffers of the last ``seconds`` of raw, filtered and envelope signal.

    The buffers are created on the first chunk (the session opens the source in its own thread,
    so rate and channels are known only then); :attr:`ready` tells the GUI when to start drawing.

    Threads: :meth:`feed` is called by the session thread; every other method by the GUI thread.
    """

    def __init__(self, seconds: float = 12.0, keep_markers: int = 200) -> None:
        self.seconds = seconds
        self.fs = 0.0
        self.channels: tuple[str, ...] = ()
        self.raw: RingBuffer | None = None
        self.filtered: RingBuffer | None = None
        self.envelope: RingBuffer | None = None
        self._lock = threading.Lock()
        self._lost = self._crc = self._reconnects = self._sat = 0
        self._quality: Quality | None = None
        self._markers: deque[Marker] = deque(maxlen=keep_markers)
        self._gaps: deque[tuple[int, int]] = deque(maxlen=keep_markers)
        self._ready = threading.Event()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def feed(self, p: Processed) -> None:
        """Store one processed chunk (session thread)."""
        if not self._ready.is_set():
            self.fs = p.fs
            self.channels = p.channels
            cap = int(round(self.seconds * p.fs))
            n = len(p.channels)
            self.raw = RingBuffer(cap, n)
            self.filtered = RingBuffer(cap, n)
            self.envelope = RingBuffer(cap, n)
            self._ready.set()
        assert self.raw is not None and self.filtered is not None and self.envelope is not None
        st = p.status
        with self._lock:
            self._lost += st.lost_samples
            self._crc += st.crc_errors
            self._reconnects += st.reconnects
            self._sat += sum(st.saturated)
            self._quality = p.quality
            self._markers.extend(p.markers)
            if st.lost_samples:
                self._gaps.append((p.start - st.lost_samples, st.lost_samples))
        # Envelope last: a view that sees a new envelope total finds raw and filtered too.
        self.raw.write(p.raw, p.start)
        self.filtered.write(p.filtered, p.start)
        self.envelope.write(p.envelope, p.start)

    @property
    def total(self) -> int:
        """One past the newest sample available to views."""
        return self.envelope.total if self.envelope is not None else 0

    def status(self) -> LiveStatus:
        """Copy of the counters (GUI thread)."""
        with self._lock:
            return LiveStatus(
                total=self.total, lost_samples=self._lost, crc_errors=self._crc,
                reconnects=self._reconnects, saturated=self._sat, quality=self._quality,
                markers=tuple(self._markers), gaps=tuple(self._gaps),
            )


def decimate_minmax(y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce ``y`` (samples, channels) to ``2 * bins`` rows of alternating min and max.

    Returns ``(index, values)`` where ``index`` is the fractional sample position of each row.
    Drawing min and max per pixel column keeps every spike visible (a plain stride would drop
    them) and bounds the cost of a frame whatever the sample rate.  NaN (gaps) stays NaN.
    """
    n = y.shape[0]
    if n <= 2 * bins or bins <= 0:
        return np.arange(n, dtype=np.float64), y
    step = n // bins
    m = step * bins
    off = n - m  # drop the oldest remainder so the newest sample is always drawn
    blocks = y[off:].reshape(bins, step, y.shape[1])
    with np.errstate(invalid="ignore"):
        lo = blocks.min(axis=1)
        hi = blocks.max(axis=1)
    out = np.empty((2 * bins, y.shape[1]))
    out[0::2] = lo
    out[1::2] = hi
    idx = off + np.repeat(np.arange(bins) * step, 2).astype(np.float64)
    idx[1::2] += step - 1
    return idx, out


class InterimRecorder:
    """Keeps the raw stream and its markers between :meth:`start` and :meth:`stop`.

    This is the window's stop-gap until the EDF+ recorder of ``emgfeedback.io`` is merged: it
    writes the recording as CSV (:func:`emgfeedback.io.csvfile.write_csv`) when stopped, from a
    helper thread so the window never waits for the disk.

    Threads: :meth:`feed` in the session thread; :meth:`start`, :meth:`stop` in the GUI thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[np.ndarray] | None = None
        self._markers: list[Marker] = []
        self._first: int | None = None
        self._next: int | None = None
        self._fs = 0.0
        self._channels: tuple[str, ...] = ()

    @property
    def recording(self) -> bool:
        with self._lock:
            return self._parts is not None

    def samples(self) -> int:
        with self._lock:
            return sum(len(x) for x in self._parts) if self._parts else 0

    def start(self) -> None:
        with self._lock:
            self._parts = []
            self._markers = []
            self._first = None
            self._next = None

    def feed(self, p: Processed) -> None:
        with self._lock:
            if self._parts is None:
                return
            if self._first is None:
                self._first = p.start
                self._fs, self._channels = p.fs, p.channels
            elif self._next is not None and p.start > self._next:
                # A gap: CSV has no gaps, so mark it (never fill with zeros).
                self._markers.append(Marker(self._next, p.start - self._next, "gap"))
                self._parts.append(np.full((p.start - self._next, len(p.channels)), np.nan))
            self._parts.append(p.raw.copy())
            self._markers.extend(p.markers)
            self._next = p.stop

    def stop(self, path: str, done: Callable[[str, BaseException | None], None]) -> None:
        """Stop and write ``path`` in a helper thread; ``done(path, error)`` is called there."""
        from emgfeedback.io.csvfile import write_csv
        from emgfeedback.stream import Chunk

        with self._lock:
            parts, markers, first = self._parts, self._markers, self._first
            fs, channels = self._fs, self._channels
            self._parts = None

        def write() -> None:
            try:
                if not parts or first is None:
                    raise ValueError("nothing was recorded")
                chunk = Chunk(np.concatenate(parts), first, fs, channels)
                write_csv(Path(path), chunk, markers=markers)
            except BaseException as exc:  # reported in the window
                done(path, exc)
            else:
                done(path, None)

        threading.Thread(target=write, name="emgfeedback-csv-writer", daemon=True).start()
