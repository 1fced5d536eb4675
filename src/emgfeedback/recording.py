"""A recording opened for reading: what every reader and importer returns.

A :class:`Recording` knows its sample rate, channel labels (``EMG <side>-<code>`` for our own
files, the file's own names for imported ones), markers, gaps and sidecar metadata, and hands out
samples in microvolts by range with :meth:`Recording.read`, so a one-hour file can be replayed
without loading it whole.  Sample indices are relative to the first sample of the file.

Gaps (samples lost while recording) are listed in :attr:`Recording.gaps` as ``(start, length)``;
:meth:`Recording.read` returns NaN there, never a made-up value, and :meth:`Recording.segments`
gives the stretches of real samples that a replay walks through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.stream import Chunk, Marker, SourceInfo

__all__ = ["ArrayRecording", "Recording", "gaps_to_segments"]

log = logging.getLogger(__name__)


def gaps_to_segments(n_samples: int, gaps: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the samples not covered by ``gaps`` in ``[0, n_samples)``."""
    segs: list[tuple[int, int]] = []
    pos = 0
    for g0, glen in sorted(gaps):
        g0 = max(g0, 0)
        if g0 > pos:
            segs.append((pos, min(g0, n_samples)))
        pos = max(pos, g0 + glen)
        if pos >= n_samples:
            break
    if pos < n_samples:
        segs.append((pos, n_samples))
    return [s for s in segs if s[1] > s[0]]


@dataclass
class Recording:
    """Base class: metadata plus range access to samples.

    Attributes
    ----------
    path:
        The file.
    format:
        Human-readable format name (``EDF+``, ``BDF+``, ``OpenBCI GUI``, ``BIOPAC text``, ...).
    fs:
        Sample rate in Hz.
    channels:
        Channel labels.
    n_samples:
        Number of sample slots (including gap slots) from the first to one past the last sample.
    markers:
        Annotations as :class:`~emgfeedback.stream.Marker` (gaps are not markers, see ``gaps``).
    gaps:
        ``(start, length)`` of every stretch of lost samples.
    sidecar:
        The JSON sidecar of our own recordings (montage, calibration, thresholds, program, board,
        patient pseudonym, software version); ``{}`` for other files.
    info:
        What a replay source of this file reports (board, firmware, ADC range).
    rails_uv:
        ``(low, high)`` physical values of the digital rails when the file has a digital grid
        (EDF/BDF), else ``None``; used to count saturated samples on replay.
    notes:
        Things the reader had to decide or repair (shown by ``emgfeedback info``).
    """

    path: Path
    format: str
    fs: float
    channels: tuple[str, ...]
    n_samples: int
    markers: list[Marker] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    sidecar: dict[str, Any] = field(default_factory=dict)
    info: SourceInfo | None = None
    rails_uv: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    @property
    def lost_samples(self) -> int:
        return sum(g[1] for g in self.gaps)

    def segments(self) -> list[tuple[int, int]]:
        """``[(start, stop), ...]``: stretches of real samples, in order."""
        return gaps_to_segments(self.n_samples, self.gaps)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``[start, stop)`` in µV, shape ``(n, channels)``, float64; NaN in gaps."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        start = max(0, start)
        if stop <= start:
            return np.empty((0, len(self.channels)))
        return self._nan_gaps(self._read(start, stop), start, stop)

    def _read(self, start: int, stop: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def read_f32(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """:meth:`read` as little-endian float32 (each value the float32 of the float64 one; NaN
        in gaps), C-contiguous: what a content hash reads.  Readers may compute it faster."""
        return np.ascontiguousarray(self.read(start, stop), dtype="<f4")

    def _nan_gaps(self, x: np.ndarray, start: int, stop: int) -> np.ndarray:
        for g0, glen in self.gaps:
            a, b = max(g0, start), min(g0 + glen, stop)
            if a < b:
                x[a - start : b - start] = np.nan
        return x

    def source_info(self) -> SourceInfo:
        """The :class:`SourceInfo` a replay of this file reports."""
        if self.info is not None:
            return self.info
        return SourceInfo(name=f"replay:{self.path.name}", fs=self.fs, channels=self.channels,
                          board=self.format)

    def to_chunk(self) -> Chunk:
        """The whole file as one chunk (small files, tests); gaps as NaN."""
        return Chunk(self.read(), 0, self.fs, self.channels, markers=tuple(self.markers))

    def close(self) -> None:
        """Release file handles (memory maps)."""

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ArrayRecording(Recording):
    """A recording held in memory (text imports): ``data`` is ``(n_samples, channels)`` µV."""

    data: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))

    def _read(self, start: int, stop: int) -> np.ndarray:
        return np.array(self.data[start:stop], dtype=np.float64, copy=True)
