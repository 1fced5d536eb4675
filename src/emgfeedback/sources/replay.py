"""Replay any supported file as a live source: ``replay:FILE``.

The file is opened with :func:`emgfeedback.io.importers.load` (our EDF+/BDF+ recordings, EDF/BDF
from other tools, OpenBCI GUI, BrainFlow CSV, BIOPAC and OpenSignals text, generic CSV/TSV) and
handed out in blocks of ``block_ms`` (10 ms by default, as a board's USB packets):

* ``speed=1.0`` paces to real time, ``speed=N`` N times faster, ``speed=None`` as fast as the
  consumer reads (``--speed max``).  Pacing decides only *when* a block is handed over.
* Annotations come back as :class:`~emgfeedback.stream.Marker` in the chunk containing their
  sample (markers inside a gap arrive with the first chunk after it).
* Gaps (lost samples recorded as ``gap`` annotations) are skipped: the next chunk's ``start``
  jumps over them and its ``status.lost_samples`` says how many, exactly as live.
* Saturation is counted on the file's digital rails, as the live
  recorder counts it (:meth:`emgfeedback.io.edf.recorder.Recorder.write`).
* ``start_s`` starts part-way; :meth:`ReplaySource.seek` jumps while running (the next chunk's
  ``start`` jumps, so the DSP chain restarts there as after any discontinuity).

Threads: all methods are called from the session thread; there is no reader thread.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.errors import ConfigError
from emgfeedback.recording import Recording
from emgfeedback.stream import Chunk, Marker, SourceBase, SourceInfo, Status, rail_counts

__all__ = ["ReplaySource"]

log = logging.getLogger(__name__)


class ReplaySource(SourceBase):
    """A recording behind the source lifecycle.

    Parameters
    ----------
    path:
        Any file :func:`~emgfeedback.io.importers.load` reads.
    speed:
        ``1.0`` real time, ``N`` times faster, ``None`` as fast as possible.
    start_s:
        Start this many seconds into the file.
    block_ms:
        Chunk size in milliseconds.
    marker_filter:
        Optional predicate; markers for which it returns ``False`` are not replayed (e.g. to drop
        alerts that a detector raised live and will raise again).
    import_options:
        Passed to :func:`~emgfeedback.io.importers.load` (``fs=``, ``unit=``, ``board=``).
    """

    def __init__(self, path: Path | str | Recording, speed: float | None = 1.0,
                 start_s: float = 0.0, block_ms: float = 10.0,
                 marker_filter: Callable[[Marker], bool] | None = None,
                 markers: Sequence[Marker] | None = None,
                 **import_options: Any) -> None:
        # An already opened Recording is replayed as it is (and left open for its owner).
        self._given = path if isinstance(path, Recording) else None
        self.path = Path(path.path) if isinstance(path, Recording) else Path(path)
        if speed is not None and speed <= 0:
            raise ConfigError(f"replay speed must be positive, got {speed}")
        self.speed = speed
        self.start_s = float(start_s)
        self.block_ms = block_ms
        self.marker_filter = marker_filter
        self.markers_override = None if markers is None else sorted(markers, key=lambda m: m.sample)
        self.import_options = {k: v for k, v in import_options.items() if v is not None}
        self.recording: Recording | None = None
        self.info = SourceInfo(name=f"replay:{self.path.name}", fs=0.0, channels=())
        self._pos = 0
        self._segments: list[tuple[int, int]] = []
        self._markers: list[Marker] = []
        self._mi = 0
        self._t0: float | None = None
        self._sent_at_t0 = 0
        self._sent = 0
        self._lost_pending = 0
        self._done = False

    # ----------------------------------------------------------------- lifecycle
    def open(self) -> None:
        if self.recording is not None:
            return
        from emgfeedback.io.importers import load

        rec = self._given if self._given is not None else load(self.path, **self.import_options)
        self.recording = rec
        self.info = rec.source_info()
        if rec.rails_uv is not None:
            self.info = SourceInfo(**{**self.info.__dict__, "adc_range_uv": rec.rails_uv})
        self.block = max(1, int(round(self.block_ms * rec.fs / 1000.0)))
        self._segments = rec.segments()
        given = rec.markers if self.markers_override is None else self.markers_override
        self._markers = [m for m in given
                         if self.marker_filter is None or self.marker_filter(m)]
        self._marker_samples = [m.sample for m in self._markers]
        self.seek(self.start_s * rec.fs, _initial=True)
        log.info("replaying %s (%s, %g Hz, %d channels, %.1f s)", self.path, rec.format, rec.fs,
                 len(rec.channels), rec.duration_s)

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._sent_at_t0 = self._sent

    def stop(self) -> None:
        self._t0 = None

    def close(self) -> None:
        if self.recording is not None and self._given is None:
            self.recording.close()

    @property
    def finished(self) -> bool:
        return self._done

    @property
    def position(self) -> int:
        """Index of the next sample to be handed out."""
        return self._pos

    def seek(self, sample: float, _initial: bool = False) -> None:
        """Continue from ``sample`` (file index); markers before it are not replayed."""
        assert self.recording is not None, "open() the source first"
        s = int(round(sample))
        if not 0 <= s <= self.recording.n_samples:
            raise ConfigError(f"{self.path}: cannot seek to sample {s} (file has "
                              f"{self.recording.n_samples})")
        self._pos = s
        self._mi = bisect.bisect_left(self._marker_samples, s)
        self._lost_pending = 0
        self._done = False
        if not _initial and self._t0 is not None:
            self.start()

    # ----------------------------------------------------------------- reading
    def _next_range(self) -> tuple[int, int] | None:
        """``(start, stop)`` of the next block, moving ``_pos`` over a gap if needed."""
        for a, b in self._segments:
            if b <= self._pos:
                continue
            if self._pos < a:
                if self._pos > 0 or self._sent:
                    self._lost_pending += a - self._pos
                self._pos = a
            return self._pos, min(self._pos + self.block, b)
        return None

    def read(self, timeout: float | None = None) -> Chunk | None:
        rec = self.recording
        if rec is None:
            self.open()
            rec = self.recording
        assert rec is not None
        if self._done:
            return None
        rng = self._next_range()
        if rng is None:
            self._done = True
            return None
        a, b = rng
        if self.speed is not None:
            if self._t0 is None:
                self.start()
            assert self._t0 is not None
            due_t = self._t0 + (self._sent - self._sent_at_t0 + (b - a)) / (rec.fs * self.speed)
            wait = due_t - time.monotonic()
            if wait > 0:
                if timeout is not None and wait > timeout:
                    time.sleep(max(timeout, 0.0))
                    return None
                time.sleep(wait)
        x = rec.read(a, b)
        markers = []
        last = not any(s1 > b for _, s1 in self._segments)
        while self._mi < len(self._markers) and (self._markers[self._mi].sample < b or last):
            markers.append(self._markers[self._mi])
            self._mi += 1
        status = Status(lost_samples=self._lost_pending, saturated=rail_counts(x, rec.rails_uv))
        self._lost_pending = 0
        self._pos = b
        self._sent += b - a
        return Chunk(np.ascontiguousarray(x), a, rec.fs, rec.channels, status, tuple(markers))


def create(arg: str = "", *, speed: float | None = 1.0, start: float = 0.0,
           fs: float | None = None, unit: str | None = None, board: str | None = None,
           block_ms: float = 10.0) -> ReplaySource:
    """``replay:FILE`` (registry factory; typed options: the import options of the file)."""
    if not arg:
        raise ConfigError("replay needs a file: --board replay:FILE")
    return ReplaySource(arg, speed=speed, start_s=start, block_ms=block_ms, fs=fs, unit=unit,
                        board=board)
