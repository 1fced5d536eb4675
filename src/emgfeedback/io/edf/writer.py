"""The one EDF+C/BDF+C writer: the live recorder, ``convert``/``export`` and ``simulate`` all
write through :class:`EdfWriter`.

File layout (what we write)
---------------------------
* **EDF+C** (16-bit) or **BDF+C** (24-bit), one signal per channel plus one annotation signal.
* **Data records of 0.1 s** (or the shortest of 0.1/0.2/0.25/0.5/1/... s holding a whole number
  of samples).  Every record is written and flushed as soon as it is full and the file is
  fsync'ed at least every 0.5 s of writing, so a crash loses at most one record plus the samples
  in flight.
* While writing, the header says ``-1`` data records (as EDF+ allows).  :meth:`EdfWriter.close`
  writes the true count.  After ``kill -9`` the reader recovers the count from the file size and
  :func:`~emgfeedback.io.edf.repair.repair` writes it into the header.
* **Annotations** (TALs) go into the first record written after they are given (as many as fit,
  in onset order; the rest wait for the next record), so a marker reaches the disk with the
  next record.  A text is cut to 100 characters, and to 60 when it still does not fit a record.
* **Gaps**: lost samples are *not* data.  Their slots hold the digital minimum and are covered
  by a ``gap`` annotation; the last record is padded the same way, and records added only to
  carry left-over annotations are all gap.
* **Patient field**: ``<pseudonym> X X X`` (sex, birth date and name always ``X``).
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from pathlib import Path

import numpy as np

import emgfeedback
from emgfeedback.io.edf.format import (
    ANNOT_BYTES,
    BDF_RANGE,
    EDF_RANGE,
    GAP_TEXT,
    DigitalGrid,
    SignalHeader,
    build_header,
    edf_word,
    fmt_num,
    fmt_seconds,
    grid_of_range,
    record_duration,
    startdate,
    tal,
)
from emgfeedback.io.edf.reader import EdfRecording
from emgfeedback.recording import Recording
from emgfeedback.validate import private_file, validate_patient_id

__all__ = ["MAX_TEXT", "EdfWriter", "write_edf"]

MAX_TEXT = 100  # characters of an annotation text kept in the file
_CUT_TEXT = 60  # ... when even that does not fit a data record


class EdfWriter:
    """Write an EDF+C/BDF+C file sample by sample: header, whole data records, annotations.

    Parameters
    ----------
    path:
        The file (created or overwritten).
    grids:
        One :class:`DigitalGrid` per channel; BDF when any grid is 24-bit.
    labels, units:
        Per-channel label (cut to 16 characters) and physical unit.
    fs:
        Sample rate in Hz.
    patient:
        First subfield of the patient field (``X`` for none).
    equipment:
        Last subfield of the recording field.
    transducer, prefilter:
        The per-signal transducer and prefilter fields (``prefilter`` may be replaced at
        :meth:`close`).
    start:
        Start date and time in the header (default: now).

    Sample indices given to :meth:`annotate` are file slots (0 = the first sample written).
    """

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
        self.patient_field = f"{edf_word(patient)} X X X"
        self.start = start or _dt.datetime.now().replace(microsecond=0)
        self.recording_field = f"Startdate {startdate(self.start)} X X {edf_word(equipment)}"
        self.transducer = transducer
        self.prefilter = prefilter
        self.n_records = 0
        self.n_annotations = 0
        self.slots = 0  # samples given so far (written or buffered)
        self._fill = np.array([g.dmin for g in grids], dtype=np.int32)
        self._buf: list[np.ndarray] = []
        self._buffered = 0
        self._pending: list[tuple[int, int, str]] = []  # (slot, duration, text)
        self._f = private_file(path, "wb")  # 0600: patient data; kept open for the recording
        self._f.write(self._header(-1))
        self._f.flush()
        self._last_sync = time.monotonic()

    # ----------------------------------------------------------------- public API
    @property
    def closed(self) -> bool:
        return self._f.closed

    def abandon(self) -> None:
        """After a write error: stop writing and release the file; what is on disk stays (the
        header says -1 records: the reader recovers it, ``emgfeedback repair`` fixes it)."""
        try:
            self._f.close()
        except OSError:
            pass

    def write(self, digital: np.ndarray) -> None:
        """Append ``(n, channels)`` int codes; every whole record is written at once."""
        if len(digital):
            self._buf.append(digital)
            self._buffered += len(digital)
            self.slots += len(digital)
        self._flush_full()

    def write_gap(self, n: int) -> None:
        """Append ``n`` slots of lost samples: digital-minimum fill under a ``gap`` annotation."""
        if n > 0:
            self.annotate(self.slots, n, GAP_TEXT)
            # In pieces, each flushed as whole records: a long gap never sits in memory at once.
            block = max(self.n_per_rec, 4096)
            for k in range(0, n, block):
                m = min(block, n - k)
                self.write(np.broadcast_to(self._fill, (m, len(self._fill))))

    def annotate(self, slot: int, duration: int, text: str) -> None:
        """An annotation at file slot ``slot`` lasting ``duration`` samples; it is written with
        the next data record."""
        self._pending.append((int(slot), int(duration), text[:MAX_TEXT]))

    def close(self, prefilter: str | None = None) -> None:
        """Pad the last record, write left-over annotations, the true record count; fsync."""
        if self._f.closed:
            return
        n = self.n_per_rec
        rem = self._buffered % n
        if rem:
            self.write_gap(n - rem)
        for _ in range(10000):  # annotations left over: more records of gap fill carry them
            if not self._pending:
                break
            self.write_gap(n)
        if prefilter is not None:
            self.prefilter = prefilter
        self._f.flush()
        self._f.seek(0)
        self._f.write(self._header(self.n_records))
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()

    # ----------------------------------------------------------------- internals
    def _signals(self) -> list[SignalHeader]:
        sig = [
            SignalHeader(lab[:16], self.transducer, unit, fmt_num(g.pmin), fmt_num(g.pmax),
                         g.dmin, g.dmax, self.prefilter[:80], self.n_per_rec)
            for lab, unit, g in zip(self.labels, self.units, self.grids)
        ]
        lo, hi = BDF_RANGE if self.bdf else EDF_RANGE
        sig.append(SignalHeader("BDF Annotations" if self.bdf else "EDF Annotations", "", "",
                                "-1", "1", lo, hi, "", self.annot_n))
        return sig

    def _header(self, n_records: int) -> bytes:
        return build_header(self._signals(), bdf=self.bdf, patient=self.patient_field,
                            recording=self.recording_field, start=self.start,
                            n_records=n_records, record_s=self.record_s)

    def _tal_room(self, record_index: int) -> int:
        """Bytes left for annotations in record ``record_index`` after its time-keeping TAL."""
        onset = fmt_seconds(record_index * self.n_per_rec, self.fs)
        return self.annot_n * self.bps - (len(onset) + 4)

    def _flush_full(self) -> None:
        """Write every whole record in the buffer, with as many pending annotations as fit."""
        n = self.n_per_rec
        k = self._buffered // n
        if k == 0:
            return
        data = np.concatenate(self._buf) if len(self._buf) > 1 else self._buf[0]
        take = k * n
        rest = data[take:]
        self._buf = [rest] if len(rest) else []
        self._buffered = len(rest)
        ann = [self._fill_record(self.n_records + r) for r in range(k)]
        self._write_records(data[:take], ann)

    def _fill_record(self, index: int) -> list[bytes]:
        room = full = self._tal_room(index)
        tals: list[bytes] = []
        keep: list[tuple[int, int, str]] = []
        for slot, dur, text in sorted(self._pending):
            onset, length = fmt_seconds(slot, self.fs), fmt_seconds(dur, self.fs) if dur > 0 else ""
            t = tal(onset, text, length)
            if len(t) > self._tal_room(0) - 8:  # a single huge text: cut it
                text = text[:_CUT_TEXT]
                t = tal(onset, text, length)
                while len(t) > full and text:  # many-byte characters: cut until it fits
                    text = text[:-1]
                    t = tal(onset, text, length)
            if len(t) <= room:
                tals.append(t)
                room -= len(t)
                self.n_annotations += 1
            else:
                keep.append((slot, dur, text))
        self._pending = keep
        return tals

    def _write_records(self, digital: np.ndarray, annotations: list[list[bytes]]) -> None:
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
            onset = fmt_seconds((self.n_records + r) * n, self.fs)
            ann = b"+" + onset.encode() + b"\x14\x14\x00" + b"".join(annotations[r])
            if len(ann) > cap:  # _fill_record sizes the lists; this is a last guard
                ann = ann[:cap]
            out += data[r].tobytes() + ann.ljust(cap, b"\x00")
        self._f.write(out)
        self._f.flush()
        self.n_records += k
        now = time.monotonic()
        if now - self._last_sync >= 0.5:
            os.fsync(self._f.fileno())
            self._last_sync = now


# ============================================================================ offline export
def _export_grids(rec: Recording, bdf: bool) -> list[DigitalGrid]:
    """The file's own grids when ``rec`` is an EDF/BDF on the same grid (lossless), else per
    channel the data range rounded out to 0.001 µV."""
    if isinstance(rec, EdfRecording) and all(g.bdf == bdf for g in rec.grids) \
            and all(rec._scales == 1.0):
        return list(rec.grids)
    nch = len(rec.channels)
    lo = np.full(nch, np.inf)
    hi = np.full(nch, -np.inf)
    step = 1 << 16
    for a in range(0, rec.n_samples, step):
        x = rec.read(a, a + step)
        ok = np.isfinite(x)
        if len(x):
            lo = np.minimum(lo, np.where(ok, x, np.inf).min(axis=0))
            hi = np.maximum(hi, np.where(ok, x, -np.inf).max(axis=0))
    grids: list[DigitalGrid] = []
    for c in range(nch):
        lo_c = float(lo[c]) if np.isfinite(lo[c]) else -1.0
        hi_c = float(hi[c]) if np.isfinite(hi[c]) else 1.0
        if hi_c <= lo_c:
            lo_c, hi_c = lo_c - 1.0, hi_c + 1.0
        grids.append(grid_of_range(float(np.floor(lo_c * 1000) / 1000),
                                   float(np.ceil(hi_c * 1000) / 1000), bdf))
    return grids


def write_edf(rec: Recording, path: Path | str, *, bdf: bool | None = None,
              patient: str = "X") -> None:
    """Export any :class:`Recording` to EDF+ (``.edf``) or BDF+ (``.bdf``), gaps and markers kept.

    The digital range of each channel is the file's own when it has one, else the data range.
    An annotation is written in the data record holding its onset (or the next with room).
    """
    path = Path(path)
    if bdf is None:
        bdf = path.suffix.lower() == ".bdf"
    if patient != "X":
        validate_patient_id(patient)
    grids = _export_grids(rec, bdf)
    info = rec.source_info()
    nch = len(rec.channels)
    n = rec.n_samples
    out = EdfWriter(path, grids, tuple(c[:16] for c in rec.channels), ["uV"] * nch, rec.fs,
                    patient=patient, equipment=f"emgfeedback-{emgfeedback.__version__} {rec.format}",
                    transducer="", prefilter=f"HW:{info.extra.get('prefilter', 'unknown')}",
                    start=None)
    pending: list[tuple[int, int, str]] = [(m.sample, m.duration, m.text) for m in rec.markers]
    pending += [(g0, gl, GAP_TEXT) for g0, gl in rec.gaps]
    pending.sort()
    npr = out.n_per_rec
    n_rec_total = -(-n // npr)
    pi = 0
    for r in range(n_rec_total):
        last = r == n_rec_total - 1
        while pi < len(pending) and (last or pending[pi][0] < (r + 1) * npr):
            out.annotate(*pending[pi])
            pi += 1
        block = rec.read(r * npr, min((r + 1) * npr, n))
        d = np.empty(block.shape, np.int32)
        for c in range(nch):
            col = block[:, c]
            ok = np.isfinite(col)
            d[:, c] = grids[c].dmin
            d[ok, c] = grids[c].to_digital(col[ok])
        out.write(d)
    for p in pending[pi:]:  # an empty recording: its annotations still go into the file
        out.annotate(*p)
    out.close()
