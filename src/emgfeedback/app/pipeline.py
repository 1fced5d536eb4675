"""The live pipeline: one source through the DSP chain into the consumers.

::

    source.read() ─Chunk─> recorder.write (or on_grid) ─Chunk─> Chain.process() ─Processed─>
                                                                     consumer.feed(p) ...

:class:`Pipeline` runs in whichever thread calls :meth:`Pipeline.run` (or :meth:`Pipeline.step`);
consumers are called in that thread, in the order they were added.  Time is the sample index:
consumers must never look at the wall clock to decide what a sample means.

Recording is part of the design, not patched in: a pipeline built with ``recording=`` puts every
chunk on the recording's digital grid *before* the chain (:func:`emgfeedback.io.edf.format.grid_for`
of the source, decided when the source opens) and builds the chain with the grid's rails as its
clipping range, so the live chain sees exactly the samples a file stores (a replay is exact).
While a recording is open (:meth:`start_recording`, between chunks, in the pipeline's thread)
each raw chunk goes to :meth:`Recorder.write <emgfeedback.io.edf.recorder.Recorder.write>`
first, which stores it and returns it on the grid; otherwise
:func:`~emgfeedback.io.edf.recorder.on_grid` puts it there.

:meth:`close` stops and closes the source, then closes the recorder and every consumer
(``Consumer.close()``), also after an error.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from emgfeedback.config import Config
from emgfeedback.dsp.chain import Chain
from emgfeedback.errors import ConfigError
from emgfeedback.io.edf.format import DigitalGrid, grid_for
from emgfeedback.io.edf.recorder import Recorder, on_grid
from emgfeedback.stream import Chunk, Marker, Processed, SourceBase, Status, finite_parts

__all__ = ["Consumer", "Pipeline", "RecordingGrid"]

log = logging.getLogger(__name__)


@runtime_checkable
class Consumer(Protocol):
    """What a pipeline feeds: ``feed`` with every processed chunk (pipeline thread), ``close``
    once when the pipeline closes."""

    def feed(self, p: Processed) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RecordingGrid:
    """Ask a :class:`Pipeline` to put its samples on a recording's grid from the first sample:
    ``bdf`` True (24-bit BDF+), False (16-bit EDF+) or None (by the source's ADC bits)."""

    bdf: bool | None = None

    @classmethod
    def for_path(cls, path: Path | str) -> "RecordingGrid":
        return cls(True if Path(path).suffix.lower() == ".bdf" else None)


class Pipeline:
    """``source`` through a :class:`Chain` built for its rate and channels into consumers.

    Parameters
    ----------
    source:
        An unopened source, or a function returning one (called by :meth:`open`, in the thread
        that opens the pipeline: a slow port never blocks the caller).
    config:
        Validated configuration.
    recording:
        Put samples on a recording grid from the first sample (see the module docstring);
        required for :meth:`start_recording`.
    measure_quality:
        ``False`` for consumers that read no quality snapshot (offline analysis): the chain's
        quality meter is not run (``Chain(measure_quality=False)``).
    """

    def __init__(self, source: SourceBase | Callable[[], SourceBase],
                 config: Config | None = None, recording: RecordingGrid | None = None,
                 measure_quality: bool = True) -> None:
        self._factory: Callable[[], SourceBase] | None = None
        self._source: SourceBase | None = None
        if isinstance(source, SourceBase):
            self._source = source
        else:
            self._factory = source
        self.config = config or Config()
        self.recording = recording
        self.measure_quality = measure_quality
        self.grid: DigitalGrid | None = None
        self.recorder: Recorder | None = None
        self.consumers: list[Consumer] = []
        #: called before each read, in the pipeline thread (start/stop a recording between chunks)
        self.services: list[Callable[["Pipeline"], None]] = []
        self.chain: Chain | None = None
        self.samples = 0
        self.faults = Status()  # soft faults so far
        self._reader: SourceBase | None = None
        self._stop = threading.Event()
        self._pending: list[tuple[str, int]] = []
        self._pending_lock = threading.Lock()
        self._closed = False

    @property
    def lost(self) -> int:
        return self.faults.lost_samples

    @property
    def crc_errors(self) -> int:
        return self.faults.crc_errors

    @property
    def reconnects(self) -> int:
        return self.faults.reconnects

    @property
    def source(self) -> SourceBase:
        """The source (built by :meth:`open` when a factory was given)."""
        if self._source is None:
            raise RuntimeError("the pipeline's source is built by open()")
        return self._source

    def add(self, consumer: Consumer) -> Consumer:
        self.consumers.append(consumer)
        return consumer

    def open(self) -> Chain:
        """Build (if needed), open and start the source, build the chain; returns the chain."""
        if self._source is None:
            assert self._factory is not None
            self._source = self._factory()
        src = self._source
        src.open()
        try:
            src.start()
        except BaseException:
            src.close()
            raise
        info = src.info
        adc_range = info.adc_range_uv
        self._reader = src
        if self.recording is not None:
            try:
                self.grid = grid_for(info, self.recording.bdf)
            except BaseException:
                self._close_source()
                raise
            adc_range = self.grid.rails_uv
        self.chain = Chain(info.fs, len(info.channels), self.config.dsp, self.config.quality,
                           adc_range, self.measure_quality)
        return self.chain

    # ------------------------------------------------------------------ recording
    def start_recording(self, path: Path | str, *, patient: str,
                        sidecar: dict[str, Any] | None = None) -> Recorder:
        """Record from the next chunk on (pipeline thread, between chunks)."""
        if self.chain is None or self.grid is None or self.recording is None:
            raise RuntimeError("recording needs a pipeline opened with recording=RecordingGrid()")
        if self.recorder is not None:
            raise RuntimeError(f"already recording to {self.recorder.path}")
        if Path(path).suffix.lower() == ".bdf" and self.grid.dmax <= 32767:
            raise ConfigError(f"{path}: this session's samples are on a 16-bit EDF grid (chosen "
                              "when the source opened); record to .edf")
        self.recorder = Recorder(path, self.source.info, patient=patient, grid=self.grid,
                                 chain=self.chain, sidecar=sidecar)
        return self.recorder

    def stop_recording(self) -> Recorder | None:
        """Close the recording (pipeline thread); returns the closed recorder, if any."""
        rec, self.recorder = self.recorder, None
        if rec is not None:
            rec.close()
        return rec

    # ------------------------------------------------------------------ running
    def stop(self) -> None:
        """Ask :meth:`run` to return after the current chunk (any thread)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def finished(self) -> bool:
        """The source has ended (a finite source: simulated script, replay)."""
        return self._source is not None and self._source.finished

    def mark(self, text: str, duration_samples: int = 0) -> None:
        """Annotate the stream at the first sample of the next chunk (any thread).

        This is how the live program's cues (``rest``, ``mvc L-ZYG``, ``smile``) and the
        therapist's markers enter the stream: as :class:`~emgfeedback.stream.Marker` objects with a
        sample index, which the detector and the recorder see exactly as a replay will.
        """
        with self._pending_lock:
            self._pending.append((text, duration_samples))

    def _marked(self, chunk: Chunk) -> Chunk:
        """``chunk`` with the markers :meth:`mark` queued since the last chunk, at its start."""
        if not self._pending:
            return chunk
        with self._pending_lock:
            extra = tuple(Marker(chunk.start, d, t) for t, d in self._pending)
            self._pending.clear()
        return replace(chunk, markers=extra + chunk.markers)

    def step(self, timeout: float = 0.1) -> Processed | None:
        """Read and process one chunk; ``None`` if nothing arrived within ``timeout``."""
        if self.chain is None or self._reader is None:
            raise RuntimeError("open() the pipeline first")
        for service in self.services:
            service(self)
        chunk = self._reader.read(timeout=timeout)
        if chunk is None:
            return None
        chunk = self._marked(chunk)
        # Missing values (NaN, inf) are gaps: they never reach a filter state or a consumer
        # (stream.finite_parts: the rows are dropped, the next part's lost_samples says so).
        p: Processed | None = None
        for part in finite_parts(chunk):
            if self.recorder is not None:
                part = self.recorder.write(part)  # stored, and on the file's grid
            elif self.grid is not None:
                part = on_grid(part, self.grid)
            p = self.chain.process(part)
            self.samples += len(part)
            self.faults = self.faults + part.status
            for c in self.consumers:
                c.feed(p)
        return p

    def run(self, duration_s: float | None = None) -> None:
        """Process until ``duration_s`` seconds of *signal* (sample count), the source ends, or
        :meth:`stop`; opens the pipeline if needed and closes it at the end."""
        try:
            if self.chain is None:
                self.open()
            assert self.chain is not None
            limit = None if duration_s is None else int(round(duration_s * self.chain.fs))
            while not self._stop.is_set():
                if limit is not None and self.samples >= limit:
                    break
                p = self.step()
                if p is None and self.finished:
                    break
        finally:
            self.close()

    def run_ahead(self, depth: int = 2, close: bool = True) -> None:
        """:meth:`run` for a finite source read as fast as it goes (offline analysis), on two
        cores: a worker thread reads the source and runs the chain up to ``depth`` chunks ahead
        while the consumers are fed in the calling thread, in the same order and with the same
        :class:`Processed` chunks as :meth:`run` (the chain's compiled filter kernels release
        the GIL).  No recording or services (a live session's tools): use :meth:`run`.
        :meth:`mark` puts its marker at the start of the next chunk the worker reads (up to
        ``depth + 1`` chunks later in the stream than with :meth:`run`: the calling thread holds
        the next chunk while it feeds one, for consumers with ``feed_ahead(p, nxt)``).  An error
        of the source or the chain is raised here, in the calling thread, as it would be by
        :meth:`run`; the worker is joined, then the pipeline closed (``close=False``: the caller closes it).
        """
        if self.recording is not None or self.services:
            raise RuntimeError("run_ahead() is for a replay without recording or services")
        stop = threading.Event()
        items: queue.Queue[tuple[Processed, Status, int] | BaseException | None] = \
            queue.Queue(maxsize=max(1, depth))

        def put(item: tuple[Processed, Status, int] | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce(chain: Chain, reader: SourceBase) -> None:
            try:
                while not stop.is_set():
                    chunk = reader.read(timeout=0.1)
                    if chunk is None:
                        if reader.finished:
                            break
                        continue
                    for part in finite_parts(self._marked(chunk)):
                        if not put((chain.process(part), part.status, len(part))):
                            return
                put(None)
            except BaseException as exc:  # handed to the calling thread, raised there
                put(exc)

        worker: threading.Thread | None = None
        try:
            if self.chain is None:
                self.open()
            assert self.chain is not None and self._reader is not None
            worker = threading.Thread(target=produce, args=(self.chain, self._reader),
                                      name="pipeline-read-ahead", daemon=True)
            worker.start()
            # A consumer with ``feed_ahead(p, nxt)`` is also shown the next chunk when the
            # worker has it ready (the detector starts its artefact flags on the helper thread
            # while it works on ``p``); every chunk is still fed once, in order.
            ahead = [getattr(c, "feed_ahead", None) for c in self.consumers]
            held: tuple[Processed, Status, int] | BaseException | None = None
            have = False
            while not self._stop.is_set():
                item = held if have else items.get()
                have = False
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                p, status, n = item
                try:
                    held, have = items.get_nowait(), True
                except queue.Empty:
                    pass
                nxt = held[0] if have and isinstance(held, tuple) else None
                self.samples += n
                self.faults = self.faults + status
                for c, fa in zip(self.consumers, ahead):
                    if fa is not None:
                        fa(p, nxt)
                    else:
                        c.feed(p)
        finally:
            stop.set()
            if worker is not None:
                worker.join()
            if close:
                self.close()

    # ------------------------------------------------------------------ closing
    def _close_source(self) -> None:
        src = self._source
        if src is None:
            return
        try:
            src.stop()
        finally:
            src.close()

    def close(self) -> None:
        """Stop and close the source, close the recorder, then every consumer (once; the first
        error is raised after all of them were closed)."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        for step in (self._close_source, self.stop_recording,
                     *(c.close for c in self.consumers)):
            try:
                step()
            except BaseException as exc:  # close the rest, then raise the first
                log.debug("closing %s failed: %s", step, exc)
                errors.append(exc)
        if errors:
            raise errors[0]
