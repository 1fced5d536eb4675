"""EDF+/BDF+ recordings: a crash-safe recorder, a reader, repair, and the JSON sidecar.

File layout (what we write)
---------------------------
* **EDF+C** (16-bit) or **BDF+C** (24-bit, when the source has more than 16 ADC bits), one signal
  per channel labelled ``EMG <side>-<code>``, physical unit ``uV``, plus one annotation signal.
* **Data records of 0.1 s** (or the shortest of 0.1/0.2/0.25/0.5/1 s holding a whole number of
  samples).  Every record is written and flushed as soon as it is full and the file is fsync'ed
  at least once a second, so a crash loses at most one record plus the chunk in flight.
* While recording, the header says ``-1`` data records (as EDF+ allows).  :meth:`Recorder.close`
  writes the true count.  After ``kill -9`` the reader recovers the count from the file size
  (automatically, in memory) and :func:`repair` writes it into the header and drops a partial last
  record, after which pyedflib and MNE read the file.
* **Prefilter** field: ``HW:<analog filter of the board> SW(live view, not applied):<chain>``; the
  data are raw, the field records what the live view showed.
* **Annotations**: every marker (protocol cues ``rest``, ``mvc L-ZYG``, exercise reps with their
  cue window as duration, ``marker``, alerts passed to :meth:`Recorder.annotate`) at its sample.
* **Gaps**: lost samples are *not* data.  Their slots are filled with the digital minimum (other
  tools show a flat line at the physical minimum) and covered by a ``gap`` annotation with the
  gap's duration.  Our reader returns NaN there and a replay skips them, reproducing the gap as
  ``Status.lost_samples`` and the jump of the next chunk's ``start``.
* **Patient field**: ``<pseudonym> X X X`` (sex, birth date and name always ``X``).

Replay exactness
----------------
EDF stores integers; a physical value is ``(d - dmin) * gain + pmin`` with ``gain = (pmax - pmin)
/ (dmax - dmin)`` computed from the header's own 8-character numbers.  :class:`DigitalGrid` does
this arithmetic in one place.  A pipeline that records
(:class:`emgfeedback.app.pipeline.Pipeline` with ``recording=``) reads its source through
:class:`QuantisedSource`, which puts every live sample on that grid *before* the DSP chain, so the
chain, the detector and the views see exactly the values the file will give back; replaying the
file through the same chain therefore reproduces the live output bit for bit.

Sidecar
-------
``FILE.json`` beside ``FILE.edf`` holds what EDF cannot: montage, calibration, thresholds,
exercise program, board and firmware, software version, the digital grid, gap count, and the
pseudonymous patient id.  Patient ids must look like a pseudonym (:func:`validate_patient_id`:
up to three capital letters, an optional dash, then 2-16 digits or dashes, e.g. ``P-0001``) so
that a name cannot slip into a file.

Threads: a :class:`Recorder` is fed by the session thread; :meth:`Recorder.annotate` and
:meth:`Recorder.update_sidecar` may be called from any thread.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np

from emgfeedback import __version__
from emgfeedback.validate import (  # the one patient-id rule, private files
    check_annotation, check_edf_signals, check_edf_size, check_sidecar, io_error,
    load_json_file, private_file, validate_patient_id, write_private)
from emgfeedback.errors import ConfigError, EmgError, FileFormatError
from emgfeedback.recording import Recording
from emgfeedback.stream import Chunk, Marker, SourceBase, SourceInfo
from emgfeedback.vocabulary import GAP, match_label, parse_annotation

__all__ = [
    "DigitalGrid",
    "EdfRecording",
    "QuantisedSource",
    "Recorder",
    "grid_for",
    "read_edf",
    "read_sidecar",
    "repair",
    "sidecar_affected_side",
    "sidecar_path",
    "validate_patient_id",
    "write_edf",
]

log = logging.getLogger(__name__)

RECORD_CHOICES_S = (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 10.0)
ANNOT_BYTES = 240  # bytes of annotation signal per data record (EDF: 120 samples, BDF: 80)
GAP_TEXT = GAP
SIDECAR_FORMAT = "emgfeedback-sidecar"

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


# ============================================================================ small helpers
def sidecar_path(path: Path | str) -> Path:
    """``FILE.json`` beside ``FILE.edf`` / ``FILE.bdf``."""
    return Path(path).with_suffix(".json")


def sidecar_affected_side(meta: Mapping[str, Any]) -> str:
    """The affected side a recording's sidecar states (``"L"``, ``"R"`` or ``""``): top-level
    ``affected_side``, the program's, or the source's (the simulated board records it)."""
    program = meta.get("program")
    source = meta.get("source")
    extra = source.get("extra") if isinstance(source, Mapping) else None
    for v in (meta.get("affected_side"),
              program.get("affected_side") if isinstance(program, Mapping) else None,
              extra.get("affected_side") if isinstance(extra, Mapping) else None):
        if isinstance(v, str) and v.upper() in ("L", "R"):
            return v.upper()
    return ""


def read_sidecar(path: Path | str) -> dict[str, Any]:
    """The sidecar of recording ``path`` (``{}`` when there is none)."""
    sp = sidecar_path(path)
    if not sp.exists():
        return {}
    return check_sidecar(load_json_file(sp, "sidecar"), sp)  # types, ranges, patient rule


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Patient data: written ``0600``, atomically (validate.write_private)."""
    write_private(path, json.dumps(data, indent=1, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _fmt_num(x: float, width: int = 8) -> str:
    """Shortest decimal text of ``x`` that fits ``width`` characters (EDF number fields)."""
    if float(x).is_integer() and len(str(int(x))) <= width:
        return str(int(x))
    for prec in range(width, -1, -1):
        s = f"{x:.{prec}f}".rstrip("0").rstrip(".")
        if len(s) <= width:
            return s
    raise ConfigError(f"value {x} does not fit an EDF header field of {width} characters")


def _fmt_seconds(sample: int, fs: float) -> str:
    s = f"{sample / fs:.9f}".rstrip("0").rstrip(".")
    return s or "0"


def _field(text: str, width: int) -> bytes:
    b = text.encode("ascii", "replace")[:width]
    return b.ljust(width, b" ")


def _edf_word(s: str) -> str:
    """An EDF+ header subfield: printable ASCII, no spaces, 'X' when empty."""
    s = re.sub(r"\s+", "_", s.strip())
    s = "".join(ch if 32 < ord(ch) < 127 else "_" for ch in s)
    return s or "X"


def record_duration(fs: float) -> tuple[float, int]:
    """``(seconds, samples)`` of a data record for rate ``fs`` (a whole number of samples)."""
    for d in RECORD_CHOICES_S:
        n = fs * d
        if abs(n - round(n)) < 1e-6 and round(n) >= 1:
            return d, int(round(n))
    raise EmgError(f"sample rate {fs:g} Hz cannot be stored exactly in EDF (no record of at "
                   f"most 10 s holds a whole number of samples)")


# ============================================================================ digital grid
@dataclass(frozen=True)
class DigitalGrid:
    """The integer grid of an EDF/BDF signal and the one formula mapping it to µV.

    ``pmin``/``pmax`` are the floats parsed back from the header's 8-character text, so the
    writer and every reader of the file compute identical values.
    """

    pmin: float
    pmax: float
    dmin: int
    dmax: int

    @property
    def gain(self) -> float:
        return (self.pmax - self.pmin) / (self.dmax - self.dmin)

    @property
    def bdf(self) -> bool:
        return self.dmax > 32767

    @property
    def rails_uv(self) -> tuple[float, float]:
        """Physical values of the lowest and highest digital codes."""
        d = np.array([self.dmin, self.dmax])
        lo, hi = self.to_physical(d)
        return float(lo), float(hi)

    def to_digital(self, x: np.ndarray) -> np.ndarray:
        """µV -> int32 codes, rounded and clipped to ``[dmin, dmax]``."""
        d = np.rint((np.asarray(x, dtype=np.float64) - self.pmin) / self.gain) + self.dmin
        return np.clip(d, self.dmin, self.dmax).astype(np.int32)

    def to_physical(self, d: np.ndarray) -> np.ndarray:
        """int codes -> µV (float64)."""
        return (np.asarray(d, dtype=np.float64) - self.dmin) * self.gain + self.pmin

    def quantise(self, x: np.ndarray) -> np.ndarray:
        """What a value becomes after a trip through the file."""
        return self.to_physical(self.to_digital(x))


def grid_for(info: SourceInfo, bdf: bool | None = None) -> DigitalGrid:
    """The grid a recording of ``info`` uses: the ADC range, 16 bits (EDF) or 24 (BDF)."""
    if bdf is None:
        bdf = info.adc_bits > 16
    lo, hi = info.adc_range_uv
    if not hi > lo:
        raise ConfigError(f"invalid ADC range {info.adc_range_uv} of source {info.name}")
    pmin, pmax = float(_fmt_num(lo)), float(_fmt_num(hi))
    if bdf:
        return DigitalGrid(pmin, pmax, -8388608, 8388607)
    return DigitalGrid(pmin, pmax, -32768, 32767)


# ============================================================================ header writing
@dataclass(frozen=True)
class _SignalHeader:
    label: str
    transducer: str
    unit: str
    pmin: str
    pmax: str
    dmin: int
    dmax: int
    prefilter: str
    n: int


def _build_header(
    signals: list[_SignalHeader],
    *,
    bdf: bool,
    patient: str,
    recording: str,
    start: _dt.datetime,
    n_records: int,
    record_s: float,
) -> bytes:
    ns = len(signals)
    h = bytearray()
    h += b"\xffBIOSEMI" if bdf else _field("0", 8)
    h += _field(patient, 80)
    h += _field(recording, 80)
    h += _field(start.strftime("%d.%m.%y"), 8)
    h += _field(start.strftime("%H.%M.%S"), 8)
    h += _field(str(256 * (ns + 1)), 8)
    h += _field("BDF+C" if bdf else "EDF+C", 44)
    h += _field(str(n_records), 8)
    h += _field(_fmt_num(record_s), 8)
    h += _field(str(ns), 4)
    for name, width in (("label", 16), ("transducer", 80), ("unit", 8), ("pmin", 8),
                        ("pmax", 8), ("dmin", 8), ("dmax", 8), ("prefilter", 80), ("n", 8)):
        for s in signals:
            h += _field(str(getattr(s, name)), width)
    for _ in signals:
        h += _field("", 32)
    assert len(h) == 256 * (ns + 1)
    return bytes(h)


def _tal(onset: str, text: str, duration: str = "") -> bytes:
    clean = text.replace("\x14", " ").replace("\x15", " ").replace("\x00", " ")
    dur = b"\x15" + duration.encode() if duration else b""
    return b"+" + onset.encode() + dur + b"\x14" + clean.encode("utf-8") + b"\x14\x00"


class _EdfFile:
    """Low-level EDF+C/BDF+C writer: header, whole data records, annotations, final count."""

    def __init__(self, path: Path, grids: list[DigitalGrid], labels: tuple[str, ...],
                 units: list[str], fs: float, *, patient: str, equipment: str,
                 transducer: str, prefilter: str, start: _dt.datetime | None) -> None:
        self.path = path
        self.grids = grids
        self.bdf = any(g.bdf for g in grids)
        self.bps = 3 if self.bdf else 2
        self.labels = labels
        self.units = units
        self.fs = fs
        self.record_s, self.n_per_rec = record_duration(fs)
        self.annot_n = ANNOT_BYTES // self.bps
        self.patient_field = f"{_edf_word(patient)} X X X"
        self.start = start or _dt.datetime.now().replace(microsecond=0)
        startdate = f"{self.start.day:02d}-{_MONTHS[self.start.month - 1]}-{self.start.year}"
        self.recording_field = f"Startdate {startdate} X X {_edf_word(equipment)}"
        self.transducer = transducer
        self.prefilter = prefilter
        self.n_records = 0
        self._f = private_file(path, "wb")  # 0600: patient data; kept open for the recording
        self._f.write(self._header(-1))
        self._f.flush()
        self._last_sync = time.monotonic()

    def _signals(self) -> list[_SignalHeader]:
        sig = [
            _SignalHeader(lab[:16], self.transducer, unit, _fmt_num(g.pmin), _fmt_num(g.pmax),
                          g.dmin, g.dmax, self.prefilter[:80], self.n_per_rec)
            for lab, unit, g in zip(self.labels, self.units, self.grids)
        ]
        lo, hi = (-8388608, 8388607) if self.bdf else (-32768, 32767)
        sig.append(_SignalHeader("BDF Annotations" if self.bdf else "EDF Annotations", "", "",
                                 "-1", "1", lo, hi, "", self.annot_n))
        return sig

    def _header(self, n_records: int) -> bytes:
        return _build_header(self._signals(), bdf=self.bdf, patient=self.patient_field,
                             recording=self.recording_field, start=self.start,
                             n_records=n_records, record_s=self.record_s)

    def write_records(self, digital: np.ndarray, annotations: list[list[bytes]]) -> None:
        """Write ``len(annotations)`` whole records; ``digital`` is ``(k * n_per_rec, ch)``."""
        k = len(annotations)
        n = self.n_per_rec
        d = np.ascontiguousarray(digital.reshape(k, n, -1).transpose(0, 2, 1))  # (rec, ch, n)
        if self.bdf:
            raw = np.ascontiguousarray(d, dtype="<i4").view(np.uint8).reshape(k, d.shape[1], n, 4)[..., :3]
            data = raw.reshape(k, -1)
        else:
            data = np.ascontiguousarray(d, dtype="<i2").view(np.uint8).reshape(k, -1)
        cap = self.annot_n * self.bps
        out = bytearray()
        for r in range(k):
            onset = _fmt_seconds((self.n_records + r) * n, self.fs)
            ann = b"+" + onset.encode() + b"\x14\x14\x00" + b"".join(annotations[r])
            if len(ann) > cap:  # the caller sizes the lists; this is a last guard
                ann = ann[:cap]
            out += data[r].tobytes() + ann.ljust(cap, b"\x00")
        self._f.write(out)
        self._f.flush()
        self.n_records += k
        now = time.monotonic()
        if now - self._last_sync >= 0.5:
            os.fsync(self._f.fileno())
            self._last_sync = now

    def tal_room(self, record_index: int) -> int:
        """Bytes left for annotations in record ``record_index`` after its time-keeping TAL."""
        onset = _fmt_seconds(record_index * self.n_per_rec, self.fs)
        return self.annot_n * self.bps - (len(onset) + 4)

    def close(self, prefilter: str | None = None) -> None:
        if self._f.closed:
            return
        if prefilter is not None:
            self.prefilter = prefilter
        self._f.flush()
        self._f.seek(0)
        self._f.write(self._header(self.n_records))
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


# ============================================================================ the recorder
class QuantisedSource(SourceBase):
    """Wrap a source so that its samples come out on a recording's digital grid.

    Saturation in ``Status.saturated`` is recomputed as the count of samples on the grid's rails,
    which is what a replay of the file reports.  Its lifecycle is the inner source's (it may wrap
    a source that is already open).
    """

    delegates_lifecycle = True

    def __init__(self, inner: SourceBase, grid: DigitalGrid) -> None:
        self.inner = inner
        self.grid = grid
        self._rails = grid.rails_uv

    @property
    def info(self) -> SourceInfo:  # type: ignore[override]
        return self.inner.info

    @property
    def finished(self) -> bool:
        return self.inner.finished

    def open(self) -> None:
        self.inner.open()

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    def close(self) -> None:
        self.inner.close()

    def read(self, timeout: float | None = None) -> Chunk | None:
        chunk = self.inner.read(timeout=timeout)
        if chunk is None:
            return None
        q = self.grid.quantise(chunk.data)
        lo, hi = self._rails
        sat = ((q <= lo) | (q >= hi)).sum(axis=0)
        return replace(chunk, data=q,
                       status=replace(chunk.status, saturated=tuple(int(v) for v in sat)))

    def __getattr__(self, name: str) -> Any:  # seek(), position, script, ... of the inner source
        return getattr(self.inner, name)


class Recorder:
    """Session consumer writing EDF+/BDF+ with a JSON sidecar.

    A live session records through :meth:`emgfeedback.app.pipeline.Pipeline.start_recording`,
    which also puts the live signal on the file's grid before the chain (module docstring)::

        pipeline = Pipeline(source, cfg, recording=RecordingGrid.for_path("s1.edf"))
        pipeline.open()
        rec = pipeline.start_recording("s1.edf", patient="P-0001")
        pipeline.run(60)          # closes the source and the recorder

    Parameters
    ----------
    path:
        Output ``.edf`` or ``.bdf``.
    info:
        The source's :class:`SourceInfo` (rate, labels, board, ADC range).
    patient:
        Pseudonymous patient id (:func:`validate_patient_id`).
    grid:
        Digital grid; default :func:`grid_for` ``(info)`` (BDF when ``.bdf`` or > 16 ADC bits).
    chain:
        The live chain, for the prefilter field and the sidecar (optional).
    sidecar:
        Extra sidecar entries (``montage``, ``calibration``, ``thresholds``, ``program``, ...).
    """

    def __init__(self, path: Path | str, info: SourceInfo, *, patient: str,
                 grid: DigitalGrid | None = None, chain: Any = None,
                 sidecar: dict[str, Any] | None = None,
                 start_time: _dt.datetime | None = None) -> None:
        self.path = Path(path)
        self.info = info
        self.patient = validate_patient_id(patient)
        if grid is None:
            grid = grid_for(info, bdf=True if self.path.suffix.lower() == ".bdf" else None)
        self.grid = grid
        self.chain = chain
        self.fs = float(info.fs)
        self.channels = tuple(info.channels)
        self.sidecar_path = sidecar_path(self.path)
        self._extra = dict(sidecar or {})
        self._start_time = start_time
        self._lock = threading.Lock()
        self._file: _EdfFile | None = None
        self._first: int | None = None
        self._next = 0  # file-relative index of the next sample slot
        self._buf: list[np.ndarray] = []
        self._buffered = 0
        self._pending: list[tuple[int, int, str]] = []  # (file sample, duration, text)
        self.samples = 0
        self.lost_samples = 0
        self.n_gaps = 0
        self.n_annotations = 0
        self.closed = False

    # ----------------------------------------------------------------- public API
    def annotate(self, marker: Marker) -> None:
        """Add an annotation at stream sample ``marker.sample`` (alerts, notes; any thread)."""
        with self._lock:
            if self._first is None:
                self._early = getattr(self, "_early", [])
                self._early.append(marker)
                return
            self._queue(marker)

    def update_sidecar(self, **entries: Any) -> None:
        """Merge entries (``calibration=...``, ``thresholds=...``) into the sidecar (any thread)."""
        with self._lock:
            self._extra.update(entries)
            if self._file is not None:
                self._write_sidecar("recording")

    def feed(self, p: Any) -> None:
        """Take one processed chunk (session thread); uses ``p.raw``, ``p.start``, markers.

        A write error (disk full, I/O error) stops the recording: the file keeps every record
        written so far and the error says so and names ``emgfeedback repair``."""
        try:
            self._feed(p)
        except OSError as exc:
            self._abandon()
            raise io_error(exc, self.path, repairable=True) from None

    def _abandon(self) -> None:
        """After a write error: stop writing, release the file, keep what is on disk."""
        with self._lock:
            self.closed = True
            f = self._file
            if f is not None:
                try:
                    f._f.close()
                except OSError:
                    pass

    def _feed(self, p: Any) -> None:
        with self._lock:
            if self.closed:
                return
            if self._file is None:
                self._open(p.start)
            assert self._first is not None
            rel = p.start - self._first
            if rel > self._next:
                gap = rel - self._next
                self._add_samples(np.full((gap, len(self.channels)), self.grid.dmin, np.int32))
                self._pending.append((self._next - gap, gap, GAP_TEXT))
                self.lost_samples += gap
                self.n_gaps += 1
            raw = np.asarray(p.raw)
            if rel < self._next:  # overlap: should not happen; never write a slot twice
                skip = self._next - rel
                log.warning("recorder: chunk at %d overlaps %d written samples; dropped them",
                            p.start, skip)
                raw = raw[skip:]
            for m in p.markers:
                self._queue(m)
            if len(raw):
                self._add_samples(self.grid.to_digital(raw))
                self.samples += len(raw)
            self._flush_full()

    def close(self) -> None:
        """Write the last (padded) record, the true record count and the final sidecar."""
        try:
            self._close()
        except OSError as exc:
            self._abandon()
            raise io_error(exc, self.path, repairable=True) from None

    def _close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._file is None:
                return
            n = self._file.n_per_rec
            rem = self._buffered % n
            if rem:
                self._pad(n - rem)
            self._flush_full()
            for _ in range(10000):  # annotations left over: more records of gap fill carry them
                if not self._pending:
                    break
                self._pad(n)
                self._flush_full()
            self._file.close(self._prefilter())
            self._write_sidecar("complete")
            log.info("recorded %s: %d samples, %d lost in %d gaps", self.path, self.samples,
                     self.lost_samples, self.n_gaps)

    # ----------------------------------------------------------------- internals
    def _prefilter(self) -> str:
        hw = str(self.info.extra.get("prefilter", "none"))
        sw = self.chain.describe() if self.chain is not None else "none"
        return f"HW:{hw} SW(live view, not applied):{sw}"

    def _open(self, first: int) -> None:
        self._first = first
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _EdfFile(
            self.path, [self.grid] * len(self.channels), self.channels,
            ["uV"] * len(self.channels), self.fs, patient=self.patient,
            equipment=f"emgfeedback-{__version__} {self.info.board or self.info.name}",
            transducer="sEMG surface electrodes", prefilter=self._prefilter(),
            start=self._start_time,
        )
        self._started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        for m in getattr(self, "_early", []):
            self._queue(m)
        self._write_sidecar("recording")

    def _pad(self, k: int) -> None:
        self._pending.append((self._next, k, GAP_TEXT))
        self._add_samples(np.full((k, len(self.channels)), self.grid.dmin, np.int32))

    def _queue(self, m: Marker) -> None:
        assert self._first is not None
        rel = m.sample - self._first
        if rel < 0:
            log.warning("recorder: marker %r before the recording start ignored", m.text)
            return
        self._pending.append((rel, int(m.duration), m.text))

    def _add_samples(self, d: np.ndarray) -> None:
        self._buf.append(d)
        self._buffered += len(d)
        self._next += len(d)

    def _flush_full(self) -> None:
        """Write every whole record in the buffer, with as many pending annotations as fit."""
        assert self._file is not None
        n = self._file.n_per_rec
        k = self._buffered // n
        if k == 0:
            return
        data = np.concatenate(self._buf) if len(self._buf) > 1 else self._buf[0]
        take = k * n
        rest = data[take:]
        self._buf = [rest] if len(rest) else []
        self._buffered = len(rest)
        ann = [self._fill_record(self._file.n_records + r) for r in range(k)]
        self._file.write_records(data[:take], ann)

    def _fill_record(self, index: int) -> list[bytes]:
        assert self._file is not None
        room = self._file.tal_room(index)
        tals: list[bytes] = []
        keep: list[tuple[int, int, str]] = []
        for rel, dur, text in sorted(self._pending):
            tal = _tal(_fmt_seconds(rel, self.fs), text,
                       _fmt_seconds(dur, self.fs) if dur > 0 else "")
            if len(tal) > self._file.tal_room(0) - 8:  # a single huge text: cut it
                text = text[:60]
                tal = _tal(_fmt_seconds(rel, self.fs), text,
                           _fmt_seconds(dur, self.fs) if dur > 0 else "")
            if len(tal) <= room:
                tals.append(tal)
                room -= len(tal)
                self.n_annotations += 1
            else:
                keep.append((rel, dur, text))
        self._pending = keep
        return tals

    def _write_sidecar(self, status: str) -> None:
        info = self.info
        data: dict[str, Any] = {
            "format": SIDECAR_FORMAT,
            "version": 1,
            "recording": self.path.name,
            "status": status,
            "patient": self.patient,
            "software": {"name": "emgfeedback", "version": __version__},
            "started": getattr(self, "_started", None),
            "fs": self.fs,
            "channels": list(self.channels),
            "first_sample": self._first,
            "samples": self.samples,
            "slots": self._next if status == "complete" else None,
            "lost_samples": self.lost_samples,
            "gaps": self.n_gaps,
            "source": {"name": info.name, "board": info.board, "firmware": info.firmware,
                       "adc_bits": info.adc_bits, "adc_range_uv": list(info.adc_range_uv),
                       "extra": info.extra},
            "digital": {"pmin": self.grid.pmin, "pmax": self.grid.pmax, "dmin": self.grid.dmin,
                        "dmax": self.grid.dmax, "gap_fill": self.grid.dmin},
            "montage": _montage(self.channels),
            "calibration": None,
            "thresholds": None,
            "program": None,
        }
        if self.chain is not None:
            data["dsp"] = {"describe": self.chain.describe(), "mains_hz": self.chain.mains,
                           "config": _asdict(self.chain.cfg)}
        data.update(self._extra)
        if "patient" in self._extra:
            validate_patient_id(str(self._extra["patient"]))
        _write_json_atomic(self.sidecar_path, data)


def _asdict(obj: Any) -> Any:
    import dataclasses

    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else str(obj)  # type: ignore[arg-type]


def _montage(channels: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lab in channels:
        cid = match_label(lab)
        if cid is not None:
            r = cid.region
            out[lab] = {"side": cid.side, "region": r.code, "muscle": r.muscle, "site": r.site}
        else:
            out[lab] = {}
    return out


# ============================================================================ reader
_UNIT_SCALE = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}


def _bad(path: Path, offset: int, what: str) -> FileFormatError:
    return FileFormatError(f"{path}: byte {offset}: {what}")


class EdfRecording(Recording):
    """An EDF/EDF+/BDF/BDF+ file opened for range reads (memory-mapped, any size).

    Signals with the highest sample rate are the channels; annotation signals become markers
    (``gap`` annotations become :attr:`gaps`).  A header saying ``-1`` records, or more records
    than the file holds (a crash), is recovered from the file size with a note.
    """

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(256)
        except FileNotFoundError:
            raise FileFormatError(f"{path}: no such file") from None
        if len(head) < 256:
            raise FileFormatError(f"{path}: truncated header ({size} bytes; an EDF/BDF header "
                                  "has at least 256)")
        bdf = head[:8] == b"\xffBIOSEMI"
        if not bdf and head[:8] != b"0       ":
            raise _bad(path, 0, "not an EDF or BDF file (version field is "
                                f"{head[:8]!r}, expected '0' or '\\xffBIOSEMI')")

        def num(off: int, width: int, kind: type = int) -> Any:
            txt = head[off : off + width].decode("ascii", "replace").strip()
            try:
                return kind(txt)
            except ValueError:
                raise _bad(path, off, f"header field {txt!r} is not a number") from None

        hbytes = num(184, 8)
        reserved = head[192:236].decode("ascii", "replace").strip()
        nrec_hdr = num(236, 8)
        rec_s = num(244, 8, float)
        ns = num(252, 4)
        if ns < 1 or hbytes != 256 * (ns + 1):
            raise _bad(path, 184, f"header size {hbytes} does not match {ns} signals")
        if size < hbytes:
            raise FileFormatError(f"{path}: truncated header ({size} bytes, header needs "
                                  f"{hbytes})")
        with open(path, "rb") as f:
            sh = f.read(hbytes)[256:]

        offs = {}
        pos = 0
        for name, width in (("label", 16), ("transducer", 80), ("unit", 8), ("pmin", 8),
                            ("pmax", 8), ("dmin", 8), ("dmax", 8), ("prefilter", 80),
                            ("n", 8), ("reserved", 32)):
            offs[name] = (pos, width)
            pos += width * ns

        def field(name: str) -> list[str]:
            p, w = offs[name]
            return [sh[p + k * w : p + (k + 1) * w].decode("latin-1").strip() for k in range(ns)]

        def nums(name: str, kind: type) -> list[Any]:
            p, w = offs[name]
            out = []
            for k, t in enumerate(field(name)):
                try:
                    out.append(kind(t))
                except ValueError:
                    raise _bad(path, 256 + p + k * w,
                               f"{name} of signal {k + 1} is {t!r}, not a number") from None
            return out

        labels = field("label")
        units = field("unit")
        pmin, pmax = nums("pmin", float), nums("pmax", float)
        dmin, dmax = nums("dmin", int), nums("dmax", int)
        nsamp = nums("n", int)
        prefilter = field("prefilter")
        bps = 3 if bdf else 2
        rec_bytes = sum(nsamp) * bps
        if rec_bytes <= 0 or rec_s <= 0:
            raise _bad(path, 244, "record duration or samples per record is not positive")
        ann_name = "BDF Annotations" if bdf else "EDF Annotations"
        is_ann = [lab == ann_name or lab == "EDF Annotations" for lab in labels]
        check_edf_signals(path, bdf=bdf, record_s=rec_s, labels=labels, pmin=pmin, pmax=pmax,
                          dmin=dmin, dmax=dmax, n_per_record=nsamp, annotation=is_ann)
        check_edf_size(path, header_bytes=hbytes, record_bytes=rec_bytes, records=nrec_hdr,
                       size=size)
        avail, tail = divmod(size - hbytes, rec_bytes)
        notes: list[str] = []
        if nrec_hdr == -1 or nrec_hdr > avail:
            what = ("header says -1 records (recording was not closed)" if nrec_hdr == -1 else
                    f"header says {nrec_hdr} records but the file holds {avail}")
            notes.append(f"recovered: {what}; using {avail} complete records"
                         + (f", {tail} bytes of a partial record ignored" if tail else "")
                         + " (run 'emgfeedback repair' to fix the file for other tools)")
            log.warning("%s: %s", path, notes[-1])
            nrec = avail
        else:
            nrec = nrec_hdr
        if nrec <= 0:
            raise FileFormatError(f"{path}: byte {hbytes}: no complete data record "
                                  f"({size - hbytes} data bytes, a record has {rec_bytes})")
        data_idx = [k for k in range(ns) if not is_ann[k]]
        if not data_idx:
            raise FileFormatError(f"{path}: no data signals (only annotations)")
        nmax = max(nsamp[k] for k in data_idx)
        chan_idx = [k for k in data_idx if nsamp[k] == nmax]
        dropped = [labels[k] for k in data_idx if nsamp[k] != nmax]
        if dropped:
            notes.append(f"skipped signals at other rates: {', '.join(dropped)}")
        starts = np.cumsum([0] + [n * bps for n in nsamp])
        self._mm = np.memmap(path, dtype=np.uint8, mode="r", offset=hbytes,
                             shape=(nrec, rec_bytes))
        self._bps = bps
        self._n_per_rec = nmax
        self._chan_bytes = [(int(starts[k]), int(starts[k + 1])) for k in chan_idx]
        scales = []
        for k in chan_idx:
            sc = _UNIT_SCALE.get(units[k].lower())
            if sc is None:
                sc = 1.0
                notes.append(f"signal {labels[k]!r} unit {units[k]!r} kept as is")
            scales.append(sc)
        self.grids = [DigitalGrid(pmin[k], pmax[k], dmin[k], dmax[k]) for k in chan_idx]
        self._scales = np.array(scales)
        fs = nmax / rec_s
        sidecar = read_sidecar(path)
        # annotations
        markers: list[Marker] = []
        gaps: list[tuple[int, int]] = []
        for k in [k for k in range(ns) if is_ann[k]]:
            a, b = int(starts[k]), int(starts[k + 1])
            block = np.asarray(self._mm[:, a:b])
            total_s = nrec * rec_s
            refused: list[str] = []
            for r in range(nrec):
                for onset, dur, texts in _parse_tals(bytes(block[r])):
                    why = check_annotation(onset, dur, total_s)
                    if why is not None:
                        refused.append(f"record {r}: {texts[0][:40]!r}: {why}")
                        continue
                    for t in texts:
                        s = int(round(onset * fs))
                        d = int(round(dur * fs))
                        if parse_annotation(t).kind == GAP:
                            gaps.append((s, d))
                        else:
                            markers.append(Marker(s, d, t))
            if refused:
                notes.append(f"{len(refused)} impossible annotation(s) ignored, e.g. {refused[0]}")
        markers.sort(key=lambda m: m.sample)
        n_slots = nrec * nmax
        if sidecar.get("format") == SIDECAR_FORMAT and isinstance(sidecar.get("slots"), int):
            n_slots = min(n_slots, int(sidecar["slots"]))
        gaps.sort()
        # a gap reaching the end of the file is padding of the last record, not a loss
        while gaps and gaps[-1][0] + gaps[-1][1] >= n_slots:
            n_slots = min(n_slots, gaps[-1][0])
            gaps.pop()
        gaps = [g for g in gaps if g[0] < n_slots]
        channels = tuple(labels[k] for k in chan_idx)
        self.header = {"reserved": reserved, "records": nrec, "record_s": rec_s,
                       "prefilter": [prefilter[k] for k in chan_idx],
                       "units": [units[k] for k in chan_idx],
                       "patient": head[8:88].decode("latin-1").strip(),
                       "recording": head[88:168].decode("latin-1").strip()}
        lo = min(g.pmin * s for g, s in zip(self.grids, scales))
        hi = max(g.pmax * s for g, s in zip(self.grids, scales))
        rails: tuple[float, float] | None = None
        if len(set(self.grids)) == 1 and all(s == 1.0 for s in scales):
            rails = self.grids[0].rails_uv
            lo, hi = rails
        src = sidecar.get("source", {}) if isinstance(sidecar.get("source"), dict) else {}
        info = SourceInfo(
            name=f"replay:{path.name}", fs=fs, channels=channels,
            board=str(src.get("board", "")), firmware=str(src.get("firmware", "")),
            adc_bits=int(src.get("adc_bits", 24 if bdf else 16) or 0),
            adc_range_uv=(float(lo), float(hi)),
            extra={"file": str(path), "format": ("BDF" if bdf else "EDF")
                   + ("+" if reserved.startswith(("EDF+", "BDF+")) else "")},
        )
        super().__init__(path=path, format=info.extra["format"], fs=fs, channels=channels,
                         n_samples=n_slots, markers=markers, gaps=gaps, sidecar=sidecar,
                         info=info, rails_uv=rails, notes=notes)
        self.recovered = bool(notes and notes[0].startswith("recovered"))

    def _read(self, start: int, stop: int) -> np.ndarray:
        n = self._n_per_rec
        r0, r1 = start // n, (stop - 1) // n + 1
        recs = np.asarray(self._mm[r0:r1])
        out = np.empty(((r1 - r0) * n, len(self.channels)), dtype=np.float64)
        for c, (a, b) in enumerate(self._chan_bytes):
            raw = np.ascontiguousarray(recs[:, a:b])
            if self._bps == 2:
                d = raw.view("<i2").reshape(-1).astype(np.int32)
            else:
                t = raw.reshape(-1, 3).astype(np.int32)
                d = t[:, 0] | (t[:, 1] << 8) | (t[:, 2] << 16)
                d = np.where(d >= 1 << 23, d - (1 << 24), d)
            v = self.grids[c].to_physical(d)
            out[:, c] = v if self._scales[c] == 1.0 else v * self._scales[c]
        off = start - r0 * n
        return out[off : off + (stop - start)]

    def read_digital_row(self, sample: int) -> np.ndarray:  # pragma: no cover - debugging aid
        return self._read(sample, sample + 1)[0]

    def close(self) -> None:
        mm = getattr(self, "_mm", None)
        if mm is not None and getattr(mm, "_mmap", None) is not None:
            mm._mmap.close()


def _parse_tals(block: bytes) -> list[tuple[float, float, list[str]]]:
    """Parse the TALs of one annotation block: ``[(onset_s, duration_s, [texts])]``."""
    out: list[tuple[float, float, list[str]]] = []
    for tal in block.split(b"\x00"):
        if not tal or tal[:1] not in (b"+", b"-"):
            continue
        parts = tal.split(b"\x14")
        head = parts[0]
        onset_b, _, dur_b = head.partition(b"\x15")
        try:
            onset = float(onset_b)
            dur = float(dur_b) if dur_b else 0.0
        except ValueError:
            continue
        texts = [p.decode("utf-8", "replace") for p in parts[1:] if p]
        if texts:
            out.append((onset, dur, texts))
    return out


def read_edf(path: Path | str) -> EdfRecording:
    """Open an EDF/BDF file (ours or another tool's); see :class:`EdfRecording`."""
    return EdfRecording(path)


def repair(path: Path | str) -> str:
    """Fix a recording after a crash: true record count in the header, partial record dropped,
    sidecar marked ``recovered``.  Returns a one-line summary."""
    path = Path(path)
    rec = EdfRecording(path)
    nrec = int(rec.header["records"])
    rec_bytes = int(rec._mm.shape[1])
    rec.close()
    with open(path, "r+b") as f:
        head = f.read(256)
        hbytes = int(head[184:192].decode("ascii").strip())
        old = head[236:244].decode("ascii").strip()
        size = os.fstat(f.fileno()).st_size
        want = hbytes + nrec * rec_bytes
        changed = old != str(nrec) or size != want
        if changed:
            f.seek(236)
            f.write(_field(str(nrec), 8))
            f.truncate(want)
            f.flush()
            os.fsync(f.fileno())
    sc = read_sidecar(path)
    if sc.get("format") == SIDECAR_FORMAT and sc.get("status") == "recording":
        sc["status"] = "recovered"
        _write_json_atomic(sidecar_path(path), sc)
    dur = nrec * rec._n_per_rec / rec.fs
    if not changed:
        return f"{path}: nothing to repair ({nrec} records, {dur:.1f} s)"
    return (f"{path}: repaired: header now says {nrec} records ({dur:.1f} s; was {old}), "
            f"{size - want} bytes of a partial record removed")


def write_edf(rec: Recording, path: Path | str, *, bdf: bool | None = None,
              patient: str = "X") -> None:
    """Export any :class:`Recording` to EDF+ (``.edf``) or BDF+ (``.bdf``), gaps and markers kept.

    The digital range of each channel is the file's own when it has one, else the data range.
    """
    path = Path(path)
    if bdf is None:
        bdf = path.suffix.lower() == ".bdf"
    if patient != "X":
        validate_patient_id(patient)
    n = rec.n_samples
    nch = len(rec.channels)
    lo = np.full(nch, np.inf)
    hi = np.full(nch, -np.inf)
    step = 1 << 16
    for a in range(0, n, step):
        x = rec.read(a, a + step)
        ok = np.isfinite(x)
        if len(x):
            lo = np.minimum(lo, np.where(ok, x, np.inf).min(axis=0))
            hi = np.maximum(hi, np.where(ok, x, -np.inf).max(axis=0))
    grids: list[DigitalGrid] = []
    if isinstance(rec, EdfRecording) and all(g.bdf == bdf for g in rec.grids) \
            and all(rec._scales == 1.0):
        grids = list(rec.grids)  # same grid: the export is lossless
    for c in range(nch if not grids else 0):
        lo_c = float(lo[c]) if np.isfinite(lo[c]) else -1.0
        hi_c = float(hi[c]) if np.isfinite(hi[c]) else 1.0
        if hi_c <= lo_c:
            lo_c, hi_c = lo_c - 1.0, hi_c + 1.0
        pmin = float(_fmt_num(float(np.floor(lo_c * 1000) / 1000)))
        pmax = float(_fmt_num(float(np.ceil(hi_c * 1000) / 1000)))
        grids.append(DigitalGrid(pmin, pmax, -8388608, 8388607) if bdf
                     else DigitalGrid(pmin, pmax, -32768, 32767))
    info = rec.source_info()
    out = _EdfFile(path, grids, tuple(c[:16] for c in rec.channels), ["uV"] * nch, rec.fs,
                   patient=patient, equipment=f"emgfeedback-{__version__} {rec.format}",
                   transducer="", prefilter=f"HW:{info.extra.get('prefilter', 'unknown')}",
                   start=None)
    pending: list[tuple[int, int, str]] = [(m.sample, m.duration, m.text) for m in rec.markers]
    pending += [(g0, gl, GAP_TEXT) for g0, gl in rec.gaps]
    pending.sort()
    npr = out.n_per_rec
    n_rec_total = -(-n // npr)
    if n_rec_total * npr > n:
        pending.append((n, n_rec_total * npr - n, GAP_TEXT))
    pi = 0
    r = 0
    while r < n_rec_total or pi < len(pending):
        block = rec.read(r * npr, min((r + 1) * npr, n))
        d = np.full((npr, nch), 0, np.int32)
        for c in range(nch):
            col = block[:, c]
            dig = np.full(npr, grids[c].dmin, np.int32)
            ok = np.isfinite(col)
            dig[: len(col)][ok] = grids[c].to_digital(col[ok])
            d[:, c] = dig
        room = out.tal_room(r)
        tals: list[bytes] = []
        while pi < len(pending):
            s, du, t = pending[pi]
            if s >= (r + 1) * npr and r < n_rec_total - 1:
                break
            tal = _tal(_fmt_seconds(s, rec.fs), t[:100], _fmt_seconds(du, rec.fs) if du else "")
            if len(tal) > room:
                break
            tals.append(tal)
            room -= len(tal)
            pi += 1
        if r >= n_rec_total:  # extra records only to carry annotations: mark them as gap
            tals.append(_tal(_fmt_seconds(r * npr, rec.fs), GAP_TEXT, _fmt_seconds(npr, rec.fs)))
        out.write_records(d, [tals])
        r += 1
    out.close()
