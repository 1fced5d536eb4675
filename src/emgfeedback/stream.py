"""The streaming data model shared by every source, stage and view (bottom layer: imports nothing
of the project but ``errors``).

Time is the **sample index**.  A :class:`Chunk` carries ``start``, the index of its first sample in
the stream, so two chunks are contiguous when ``b.start == a.start + len(a)``.  When samples are
lost (a corrupt frame, a USB hiccup, a reconnect), the next chunk's ``start`` jumps forward by the
number of missing samples and its :class:`Status` says how many were lost: gaps are never filled
with zeros or any other made-up value.

Every source follows one lifecycle and one contract (:class:`Source`)::

    with open_source("simulated") as src:      # open() + start()
        while (chunk := src.read(timeout=0.1)) is not None or not src.finished:
            ...
    # stop() + close()

``read(timeout)`` means the same for every source (serial, simavr, simulated, replay, BrainFlow,
LSL; tests/test_source_contract.py checks them all):

* ``read()`` / ``read(None)``: **block** until a chunk is available, the source has ended
  (returns ``None`` and :attr:`Source.finished` is true) or a hard fault (raises a
  :class:`~emgfeedback.errors.SourceError`).
* ``read(t)`` with ``t >= 0``: wait at most ``t`` seconds; ``None`` when nothing arrived (then
  ``finished`` tells "ended" from "not yet"); ``read(0)`` only polls.
* Out of order (``read`` before ``open()`` or after ``close()``, ``start`` before ``open``):
  :class:`~emgfeedback.errors.SourceStateError`, from every source alike (:class:`SourceBase`
  enforces it).  ``stop()`` and ``close()`` may always be called, also twice.

Threads: a source's ``read`` is called from one consumer thread (the processing loop).  Sources
that do blocking I/O run their own reader thread internally and hand data over through a bounded
queue; :class:`RingBuffer` is the hand-over from processing to views and is safe to read from
another thread.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from emgfeedback.errors import SourceStateError

__all__ = [
    "Chunk",
    "Marker",
    "Processed",
    "Quality",
    "RingBuffer",
    "Source",
    "SourceBase",
    "SourceInfo",
    "Status",
    "at_rails",
    "finite_parts",
    "rail_counts",
]


@dataclass(frozen=True)
class Marker:
    """An annotation at a sample: protocol events, cues, markers, alerts, gaps.

    ``sample`` is the absolute sample index of the onset; ``duration`` is in samples (0 for an
    instant).  ``text`` follows the annotation vocabulary of docs/analysis.md (``rest``,
    ``mvc L-ZYG``, ``smile``, ``marker``, ``synkinesis L-OOC``, ``gap``, ...).
    """

    sample: int
    duration: int
    text: str


@dataclass(frozen=True)
class Status:
    """Soft faults that travel with a chunk.

    Attributes
    ----------
    lost_samples:
        Samples missing *immediately before* this chunk (the chunk's ``start`` already skips them).
    crc_errors:
        Frames rejected for a bad checksum since the previous chunk.
    bytes_skipped:
        Bytes the decoder discarded while resynchronising since the previous chunk.
    saturated:
        Per channel, how many samples of this chunk sit at the ADC rails (clipping).
    reconnects:
        Times the source reconnected since the previous chunk.
    dropped_frames:
        CRC-valid frames dropped since the previous chunk because their sample counter was a
        duplicate, out of order or implausible (undetected corruption); their slots are in
        ``lost_samples``.
    """

    lost_samples: int = 0
    crc_errors: int = 0
    bytes_skipped: int = 0
    saturated: tuple[int, ...] = ()
    reconnects: int = 0
    dropped_frames: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.lost_samples == 0
            and self.crc_errors == 0
            and self.bytes_skipped == 0
            and self.reconnects == 0
            and self.dropped_frames == 0
            and not any(self.saturated)
        )

    def __add__(self, other: "Status") -> "Status":
        """Status of two consecutive chunks joined into one; also the running total of a
        stream's soft faults (``total = total + chunk.status``; ``sum(total.saturated)`` is the
        count of clipped samples)."""
        if self.saturated and other.saturated:
            sat = tuple(a + b for a, b in zip(self.saturated, other.saturated))
        else:
            sat = self.saturated or other.saturated
        return Status(
            lost_samples=self.lost_samples + other.lost_samples,
            crc_errors=self.crc_errors + other.crc_errors,
            bytes_skipped=self.bytes_skipped + other.bytes_skipped,
            saturated=sat,
            reconnects=self.reconnects + other.reconnects,
            dropped_frames=self.dropped_frames + other.dropped_frames,
        )

    merged = __add__


def at_rails(x: np.ndarray, rails: tuple[float, float] | None) -> np.ndarray:
    """Boolean mask of the samples of ``x`` at or beyond the ADC rails ``(low, high)``
    (clipping); all ``False`` when ``rails`` is ``None``.  NaN (a gap) is never at a rail."""
    if rails is None:
        return np.zeros(np.shape(x), dtype=bool)
    lo, hi = rails
    return (x <= lo) | (x >= hi)


def rail_counts(x: np.ndarray, rails: tuple[float, float] | None) -> tuple[int, ...]:
    """Per channel (column of ``x``), how many samples sit at the rails: ``Status.saturated``."""
    if rails is not None and x.ndim == 2 and x.size:
        # the common case by two whole-block extremes (NaN fails both tests: counted below)
        lo, hi = rails
        if bool(np.minimum.reduce(x, axis=None) > lo) and \
                bool(np.maximum.reduce(x, axis=None) < hi):
            return (0,) * int(x.shape[1])
    return tuple(np.count_nonzero(at_rails(x, rails), axis=0).tolist())


@dataclass(frozen=True)
class Chunk:
    """A block of samples from one stream.

    Attributes
    ----------
    data:
        float64 array of shape ``(samples, channels)`` in microvolts.
    start:
        Absolute index of the first sample.
    fs:
        Sample rate in Hz.
    channels:
        Channel labels, ``EMG <side>-<code>`` (e.g. ``EMG L-ZYG``).
    status:
        Soft faults of this chunk (see :class:`Status`).
    markers:
        Annotations whose onset falls inside this chunk (or, for lost samples, inside the gap
        before it).
    """

    data: np.ndarray
    start: int
    fs: float
    channels: tuple[str, ...]
    status: Status = field(default_factory=Status)
    markers: tuple[Marker, ...] = ()

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[1] != len(self.channels):
            raise ValueError(
                f"chunk data must be (samples, {len(self.channels)}), got {self.data.shape}"
            )

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def stop(self) -> int:
        """Index one past the last sample."""
        return self.start + len(self)

    @property
    def t0(self) -> float:
        """Time of the first sample in seconds (``start / fs``)."""
        return self.start / self.fs

    def times(self) -> np.ndarray:
        """Sample times in seconds."""
        return (self.start + np.arange(len(self))) / self.fs

    def split(self, n: int) -> tuple["Chunk", "Chunk"]:
        """Split after ``n`` samples; status goes with the first part, markers by their sample."""
        a = replace(
            self,
            data=self.data[:n],
            markers=tuple(m for m in self.markers if m.sample < self.start + n),
        )
        b = replace(
            self,
            data=self.data[n:],
            start=self.start + n,
            status=Status(saturated=tuple(0 for _ in self.channels)),
            markers=tuple(m for m in self.markers if m.sample >= self.start + n),
        )
        return a, b


def finite_parts(chunk: Chunk) -> list[Chunk]:
    """``chunk`` without its rows that hold a NaN or an infinity: missing values are gaps.

    A row with any non-finite value is not data; the rows before and after it become separate
    chunks, the later ones with ``status.lost_samples`` = the rows dropped before them (so the
    chain restarts its filters after them, as after any lost samples).  Markers go with the part
    that holds their sample, or with the next part when their sample was dropped.  A chunk with
    finite values only is returned as it is (``[chunk]``); one with none gives one empty chunk
    with its markers (the next chunk's ``start`` then jumps, which restarts the chain).
    """
    fin = np.isfinite(chunk.data)
    if np.count_nonzero(fin) == fin.size:  # the common case, one cheap count (live cost)
        return [chunk]
    ok = fin.all(axis=1)
    if not ok.any():  # nothing usable: an empty chunk keeps the markers and the status
        return [replace(chunk, data=chunk.data[:0])]
    out: list[Chunk] = []
    idx = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
    runs = list(zip(idx[::2].tolist(), idx[1::2].tolist()))
    prev = 0
    for k, (a, b) in enumerate(runs):
        lost = a - prev + (chunk.status.lost_samples if k == 0 else 0)
        st = replace(chunk.status, lost_samples=lost) if k == 0 else Status(lost_samples=lost)
        lo = -1 if k == 0 else chunk.start + prev
        hi = chunk.start + b if k < len(runs) - 1 else None
        mk = tuple(m for m in chunk.markers
                   if m.sample >= lo and (hi is None or m.sample < hi))
        out.append(replace(chunk, data=chunk.data[a:b], start=chunk.start + a, status=st,
                           markers=mk))
        prev = b
    return out


@dataclass(frozen=True)
class Quality:
    """Quality snapshot per channel (arrays of length ``channels``) at sample ``at``; measured by
    :class:`emgfeedback.dsp.quality.QualityMeter` (see there for what each measure means)."""

    at: int
    rms_uv: np.ndarray
    mains_ratio: np.ndarray
    mains_uv: np.ndarray
    diff_rms_uv: np.ndarray
    clip_fraction: np.ndarray


@dataclass(frozen=True, init=False)
class Processed:
    """One chunk after the DSP chain (:class:`emgfeedback.dsp.chain.Chain`): what every consumer
    receives.  All arrays ``(samples, channels)`` in µV, aligned by sample."""

    start: int
    fs: float
    channels: tuple[str, ...]
    raw: np.ndarray
    filtered: np.ndarray
    envelope: np.ndarray
    quality: Quality
    status: Status
    markers: tuple[Marker, ...] = ()
    #: ``(low, high)``: the chain found every raw sample strictly inside this range (its
    #: acquisition range), so no sample is clipped; ``None`` when not known.  Lets a consumer
    #: with the same range skip its own test (the detector's clipping flag, live cost).
    raw_inside: tuple[float, float] | None = None

    def __init__(self, start: int, fs: float, channels: tuple[str, ...], raw: np.ndarray,
                 filtered: np.ndarray, envelope: np.ndarray, quality: Quality, status: Status,
                 markers: tuple[Marker, ...] = (), raw_inside: tuple[float, float] | None = None
                 ) -> None:
        # The generated __init__ of a frozen dataclass sets each field through
        # object.__setattr__: 3.7 µs a chunk, one dict update 1 µs (issue 13, the live
        # budget).  The same fields, set once; the instance stays frozen.
        self.__dict__.update(start=start, fs=fs, channels=channels, raw=raw, filtered=filtered,
                             envelope=envelope, quality=quality, status=status, markers=markers,
                             raw_inside=raw_inside)

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    @property
    def stop(self) -> int:
        return self.start + len(self)


@dataclass(frozen=True)
class SourceInfo:
    """What a source knows about itself; it ends up in the recording's sidecar.

    ``adc_range_uv`` is the (min, max) physical value the acquisition can represent, used for
    clipping detection and to choose EDF/BDF digital ranges.
    """

    name: str
    fs: float
    channels: tuple[str, ...]
    board: str = ""
    firmware: str = ""
    adc_bits: int = 0
    adc_range_uv: tuple[float, float] = (-5000.0, 5000.0)
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Source(Protocol):
    """The lifecycle every source follows: open, start, read, stop, close."""

    info: SourceInfo

    def open(self) -> None: ...

    def start(self) -> None: ...

    def read(self, timeout: float | None = None) -> Chunk | None:
        """The next chunk; ``None`` blocks until data, the end or a fault, ``t`` waits at most
        ``t`` seconds (see the module docstring).

        Raises a :class:`~emgfeedback.errors.SourceError` on a hard fault and
        :class:`~emgfeedback.errors.SourceStateError` when called before ``open()`` or after
        ``close()``.  After a finite source is exhausted, ``read`` returns ``None`` and
        :attr:`finished` is true.
        """
        ...

    def stop(self) -> None: ...

    def close(self) -> None: ...

    @property
    def finished(self) -> bool: ...

    def __enter__(self) -> "Source": ...

    def __exit__(self, *exc: object) -> None: ...


_F = TypeVar("_F", bound=Callable[..., Any])

#: lifecycle method -> (states it may be called in, state after it returns)
_LIFECYCLE: dict[str, tuple[tuple[str, ...], str | None]] = {
    "open": (("new", "closed"), "open"),
    "start": (("open", "started"), "started"),
    "read": (("open", "started"), None),
    "stop": (("new", "open", "started", "closed"), None),
    "close": (("new", "open", "started", "closed"), "closed"),
}


def _guarded(name: str, fn: _F) -> _F:
    allowed, after = _LIFECYCLE[name]

    @functools.wraps(fn)
    def wrapper(self: "SourceBase", *args: Any, **kwargs: Any) -> Any:
        state = self.__dict__.get("_lifecycle", "new")
        if state not in allowed:
            what = {"new": "before open()", "closed": "after close()"}.get(state, f"when {state}")
            raise SourceStateError(f"{type(self).__name__}: {name}() called {what}; "
                                   "open() the source first")
        out = fn(self, *args, **kwargs)
        if after is not None and not (name == "start" and state == "started"):
            self.__dict__["_lifecycle"] = after
        return out

    wrapper.__dict__["_guarded"] = True
    return wrapper  # type: ignore[return-value]


class SourceBase:
    """Context-manager plumbing and the lifecycle contract shared by the concrete sources.

    ``with src:`` calls :meth:`open` and :meth:`start`; leaving the block calls :meth:`stop` and
    :meth:`close`, also after an exception.  Subclasses implement the five lifecycle methods and
    set :attr:`info` (it may be filled in :meth:`open`, e.g. after a handshake).  Every
    subclass's ``open``/``start``/``read``/``stop``/``close`` is wrapped so that a call out of
    order raises :class:`~emgfeedback.errors.SourceStateError` (module docstring), the same for
    every source.
    """

    info: SourceInfo

    #: a wrapper whose lifecycle is its inner source's (it checks the order itself)
    delegates_lifecycle: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("delegates_lifecycle", False):
            return
        for name in _LIFECYCLE:
            fn = getattr(cls, name, None)
            if callable(fn) and not getattr(fn, "_guarded", False):
                setattr(cls, name, _guarded(name, fn))

    @property
    def lifecycle(self) -> str:
        """``new``, ``open``, ``started`` or ``closed``."""
        return str(self.__dict__.get("_lifecycle", "new"))

    def open(self) -> None:  # pragma: no cover - trivial default
        pass

    def start(self) -> None:  # pragma: no cover - trivial default
        pass

    def read(self, timeout: float | None = None) -> Chunk | None:  # pragma: no cover
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - trivial default
        pass

    def close(self) -> None:  # pragma: no cover - trivial default
        pass

    @property
    def finished(self) -> bool:
        return False

    def __enter__(self) -> "SourceBase":
        self.open()
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.close()


class RingBuffer:
    """A fixed-capacity, thread-safe buffer of the most recent samples of a stream.

    The processing thread calls :meth:`write`; views call :meth:`latest` from their own thread
    (the GUI timer).  ``total`` is the absolute index one past the newest sample, so a view can
    tell how much is new since its last redraw without receiving arrays through signals.
    Lost samples are written as NaN so plots show a break, never a fabricated value.
    """

    def __init__(self, capacity: int, n_channels: int, dtype: Any = np.float64) -> None:
        self._buf = np.full((capacity, n_channels), np.nan, dtype=dtype)
        self._capacity = capacity
        self._total = 0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def write(self, data: np.ndarray, start: int | None = None) -> None:
        """Append ``data`` (samples, channels); with ``start`` beyond ``total`` the gap is NaN."""
        with self._lock:
            if start is not None and start > self._total:
                self._put(np.full((start - self._total, self._buf.shape[1]), np.nan))
            self._put(np.asarray(data, dtype=self._buf.dtype))

    def _put(self, data: np.ndarray) -> None:
        n = data.shape[0]
        if n == 0:
            return
        if n >= self._capacity:
            data = data[-self._capacity :]
            self._total += n - self._capacity
            n = self._capacity
        i = self._total % self._capacity
        first = min(n, self._capacity - i)
        self._buf[i : i + first] = data[:first]
        if first < n:
            self._buf[: n - first] = data[first:]
        self._total += n

    def latest(self, n: int) -> tuple[np.ndarray, int]:
        """Return ``(copy of the newest min(n, available) samples, index of the first of them)``."""
        with self._lock:
            n = min(n, self._capacity, self._total)
            start = self._total - n
            i = start % self._capacity
            first = min(n, self._capacity - i)
            out = np.empty((n, self._buf.shape[1]), dtype=self._buf.dtype)
            out[:first] = self._buf[i : i + first]  # two slice copies, no index arrays
            out[first:] = self._buf[: n - first]
            return out, start
