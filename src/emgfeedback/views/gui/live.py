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
from dataclasses import dataclass

import numpy as np

from emgfeedback.stream import Marker, Processed, Quality, RingBuffer, Status

__all__ = ["ColumnCache", "LiveBuffers", "LiveStatus"]

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
        self._faults = Status()  # soft faults so far
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
            self._faults = self._faults + st
            self._quality = p.quality
            self._markers.extend(p.markers)
            if st.lost_samples:
                self._gaps.append((p.start - st.lost_samples, st.lost_samples))
        # Envelope last: a view that sees a new envelope total finds raw and filtered too.
        self.raw.write(p.raw, p.start)
        self.filtered.write(p.filtered, p.start)
        self.envelope.write(p.envelope, p.start)

    def close(self) -> None:
        """Nothing to release; the window keeps reading the last samples (a session consumer)."""

    @property
    def total(self) -> int:
        """One past the newest sample available to views."""
        return self.envelope.total if self.envelope is not None else 0

    def status(self) -> LiveStatus:
        """Copy of the counters (GUI thread)."""
        with self._lock:
            f = self._faults
            return LiveStatus(
                total=self.total, lost_samples=f.lost_samples, crc_errors=f.crc_errors,
                reconnects=f.reconnects, saturated=sum(f.saturated), quality=self._quality,
                markers=tuple(self._markers), gaps=tuple(self._gaps),
            )


class ColumnCache:
    """Per-column summaries of a ring buffer's newest samples, kept up to date incrementally.

    A column is ``step`` consecutive samples starting at a multiple of ``step`` (absolute sample
    index), so a column, once complete, never changes: each redraw reduces only the samples that
    arrived since the previous one (and the still-growing newest column) instead of the whole
    window.  ``how`` is ``"minmax"`` (the lowest and highest sample of each column: what a trace
    needs so no spike is lost) or ``"mean"`` (one value: enough for a smooth envelope).  A column
    touching a gap (NaN) is NaN.

    Threads: GUI thread only (it reads the ring buffer, which is thread-safe).
    """

    def __init__(self, buf: RingBuffer, window: int, step: int, how: str = "minmax") -> None:
        if how not in ("minmax", "mean"):
            raise ValueError(f"how must be 'minmax' or 'mean', got {how!r}")
        self.buf = buf
        self.window = window
        self.step = max(1, step)
        self.how = how
        self.ncols = -(-window // self.step) + 2
        nch = buf.latest(0)[0].shape[1]
        k = 2 if how == "minmax" else 1
        self._vals = np.full((self.ncols, k, nch), np.nan)  # ring of columns by index % ncols
        self._complete = 0  # columns before this absolute index are stored and final

    def update(self, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns wholly inside the ``window`` samples before ``end``, plus the newest partial
        column: ``(first sample of each column (int64), values (columns, 1 or 2, channels))``.

        ``end`` is at most the buffer's ``total`` (the envelope's total: written last).
        """
        s = self.step
        c_first = max(0, -(-(end - self.window) // s))  # first column starting in the window
        c_last = (end - 1) // s  # the newest, maybe partial, column
        if c_last < c_first:
            return np.empty(0, np.int64), self._vals[:0]
        if self._complete < c_first or self._complete > c_last + 1:
            self._complete = c_first
        a = self._complete * s
        total = self.buf.total
        data, start = self.buf.latest(total - a)
        data = data[: max(0, end - start)]
        if start > a:  # the buffer no longer holds these samples: their columns are unknown
            skip_to = -(-start // s)
            for c in range(self._complete, min(skip_to, c_last + 1)):
                self._vals[c % self.ncols] = np.nan
            self._complete = skip_to
            data = data[skip_to * s - start:]
            a = skip_to * s
        n_full = len(data) // s
        if n_full:
            self._store(self._complete, data[: n_full * s].reshape(n_full, s, -1))
            self._complete += n_full
        rest = data[n_full * s:]
        if len(rest):
            self._store(self._complete, rest[None])
        cols = np.arange(c_first, c_last + 1)
        return cols * s, self._vals[cols % self.ncols]

    def _store(self, c0: int, blocks: np.ndarray) -> None:
        with np.errstate(invalid="ignore"):
            if self.how == "minmax":
                v = np.stack([blocks.min(axis=1), blocks.max(axis=1)], axis=1)
            else:
                v = blocks.mean(axis=1)[:, None, :]
        idx = np.arange(c0, c0 + len(blocks)) % self.ncols
        self._vals[idx] = v
