"""A live session: one source through the DSP chain into the consumers (views, recorder, detector).

::

    source.read() ──Chunk──> Chain.process() ──Processed──> consumer.feed(p) for each consumer

The session runs in whichever thread calls :meth:`Session.run` (the main thread for the console
view, a worker thread for the GUI: :class:`SessionThread`).  Consumers are called in that thread,
in the order they were added, so a recorder always sees a chunk before a view can show it.  Time is
the sample index: consumers must never look at the wall clock to decide what a sample means.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from emgfeedback.config import Config
from emgfeedback.dsp.chain import Chain
from emgfeedback.stream import Marker, Processed, SourceBase
from emgfeedback.errors import EmgError

__all__ = ["Consumer", "Session", "SessionThread"]

log = logging.getLogger(__name__)


class Consumer(Protocol):
    def feed(self, p: Processed) -> None: ...


class Session:
    """Wire ``source`` through a :class:`Chain` built for its sample rate and channels.

    Parameters
    ----------
    source:
        Any source (unopened); the session opens, starts, stops and closes it.
    config:
        Validated configuration.
    """

    def __init__(self, source: SourceBase, config: Config | None = None) -> None:
        self.source = source
        self.config = config or Config()
        self.consumers: list[Consumer] = []
        self.chain: Chain | None = None
        self.samples = 0
        self.lost = 0
        self.crc_errors = 0
        self.reconnects = 0
        self._stop = threading.Event()
        self._pending: list[tuple[str, int]] = []
        self._pending_lock = threading.Lock()

    def add(self, consumer: Consumer) -> Consumer:
        self.consumers.append(consumer)
        return consumer

    def open(self) -> Chain:
        """Open and start the source, build the chain; returns the chain."""
        self.source.open()
        try:
            self.source.start()
        except BaseException:
            self.source.close()
            raise
        info = self.source.info
        self.chain = Chain(info.fs, len(info.channels), self.config.dsp, self.config.quality,
                           info.adc_range_uv)
        return self.chain

    def close(self) -> None:
        try:
            self.source.stop()
        finally:
            self.source.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current chunk (any thread)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def mark(self, text: str, duration_samples: int = 0) -> None:
        """Annotate the stream at the first sample of the next chunk (any thread).

        This is how the live program's cues (``rest``, ``mvc L-ZYG``, ``smile``) and the
        therapist's markers enter the stream: as :class:`~emgfeedback.stream.Marker` objects with a
        sample index, which the detector and the recorder see exactly as a replay will.
        """
        with self._pending_lock:
            self._pending.append((text, duration_samples))

    def step(self, timeout: float = 0.1) -> Processed | None:
        """Read and process one chunk; ``None`` if nothing arrived within ``timeout``."""
        assert self.chain is not None, "open() the session first"
        chunk = self.source.read(timeout=timeout)
        if chunk is None:
            return None
        if self._pending:
            with self._pending_lock:
                extra = tuple(Marker(chunk.start, d, t) for t, d in self._pending)
                self._pending.clear()
            chunk = replace(chunk, markers=extra + chunk.markers)
        p = self.chain.process(chunk)
        self.samples += len(chunk)
        st = chunk.status
        self.lost += st.lost_samples
        self.crc_errors += st.crc_errors
        self.reconnects += st.reconnects
        for c in self.consumers:
            c.feed(p)
        return p

    def run(self, duration_s: float | None = None) -> None:
        """Process until ``duration_s`` seconds of *signal* (sample count), the source ends, or
        :meth:`stop`.  Opens and closes the source itself if it is not open yet."""
        opened_here = self.chain is None
        if opened_here:
            self.open()
        assert self.chain is not None
        limit = None if duration_s is None else int(round(duration_s * self.chain.fs))
        try:
            while not self._stop.is_set():
                if limit is not None and self.samples >= limit:
                    break
                p = self.step()
                if p is None and self.source.finished:
                    break
        finally:
            if opened_here:
                self.close()


class SessionThread(threading.Thread):
    """Run a :class:`Session` in a worker thread; an error ends up in :attr:`error` and is passed
    to ``on_error`` (called in the worker thread: a GUI must hand it to its own thread)."""

    def __init__(self, session: Session, duration_s: float | None = None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        super().__init__(name="emgfeedback-session", daemon=True)
        self.session = session
        self.duration_s = duration_s
        self.on_error = on_error
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.session.run(self.duration_s)
        except BaseException as exc:  # reported to the user, never lost in a thread
            if not isinstance(exc, EmgError):
                log.exception("session thread failed")
            self.error = exc
            if self.on_error is not None:
                self.on_error(exc)

    def stop(self, timeout: float = 5.0) -> None:
        self.session.stop()
        deadline = time.monotonic() + timeout
        self.join(max(0.0, deadline - time.monotonic()))
