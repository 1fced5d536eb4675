"""Reading EDF/EDF+/BDF/BDF+ files: ours and other tools'.

:func:`read_edf` returns an :class:`EdfRecording`, a :class:`~emgfeedback.recording.Recording`
read by range through a memory map (any size).  Our own files come back exactly as the live
chain saw them (see :mod:`emgfeedback.io.edf.format`): gap slots as NaN and listed in
``gaps``, annotations as markers, the sidecar in ``sidecar``.  A file whose header says ``-1``
records (the recorder was killed) or more records than it holds is recovered from the file
size, with a note; :func:`~emgfeedback.io.edf.repair.repair` then fixes it for other tools.
:func:`read_identity` gives the patient subfield and start time of any EDF/BDF header.
"""

from __future__ import annotations

import logging
import mmap
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from emgfeedback.errors import FileFormatError
from emgfeedback.io.edf.format import (
    BDF_MAGIC,
    EDF_MAGIC,
    SIGNAL_FIELDS,
    DigitalGrid,
    parse_tals,
    read_identity,
)
from emgfeedback.io.edf.sidecar import SIDECAR_FORMAT, read_sidecar
from emgfeedback.recording import Recording
from emgfeedback.stream import Marker, SourceInfo
from emgfeedback.units import uv_per
from emgfeedback.validate import (
    check_annotation, check_edf_layout, check_edf_signals, check_edf_size, input_file,
    timekeeping_onset)
from emgfeedback.vocabulary import GAP, parse_annotation

__all__ = ["EdfRecording", "read_edf", "read_identity"]

_T = TypeVar("_T")

log = logging.getLogger(__name__)


#: Samples per channel converted at a time by :meth:`EdfRecording._read` (16-bit files).
_SLAB = 1 << 15


def _bad(path: Path, offset: int, what: str) -> FileFormatError:
    return FileFormatError(f"{path}: byte {offset}: {what}")


def _texty_records(block: np.ndarray) -> np.ndarray:
    """Rows of ``block`` (records x annotation bytes) holding a 0x14 followed, in the row, by a
    byte other than 0x14 and 0: found from the 0x14 bytes only (a few per record), not by
    comparing every byte of the block (8 ms on a 30-minute file)."""
    width = block.shape[1]
    flat = np.ascontiguousarray(block).reshape(-1)
    at = np.flatnonzero(flat[:-1] == 0x14)
    after = flat[at + 1]
    rows: np.ndarray = at[(at % width != width - 1) & (after != 0x14) & (after != 0)] // width
    return rows[np.concatenate(([True], rows[1:] != rows[:-1]))] if len(rows) else rows


class EdfRecording(Recording):
    """An EDF/EDF+/BDF/BDF+ file opened for range reads (memory-mapped, any size).

    Signals with the highest sample rate are the channels; annotation signals become markers
    (``gap`` annotations become :attr:`gaps`).  A header saying ``-1`` records, or more records
    than the file holds (a crash), is recovered from the file size with a note.
    """

    def __init__(self, path: Path | str, repairing: bool = False) -> None:
        path = input_file(Path(path), "file")  # a FIFO would block open() forever
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(256)
        except FileNotFoundError:
            raise FileFormatError(f"{path}: no such file") from None
        if len(head) < 256:
            raise FileFormatError(f"{path}: truncated header ({size} bytes; an EDF/BDF header "
                                  "has at least 256)")
        bdf = head[:8] == BDF_MAGIC
        if not bdf and head[:8] != EDF_MAGIC:
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
        for name, width in SIGNAL_FIELDS:
            offs[name] = (pos, width)
            pos += width * ns

        def field(name: str) -> list[str]:
            p, w = offs[name]
            return [sh[p + k * w : p + (k + 1) * w].decode("latin-1").strip() for k in range(ns)]

        def nums(name: str, kind: Callable[[str], _T]) -> list[_T]:
            p, w = offs[name]
            out: list[_T] = []
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
        self._rec_bytes = rec_bytes
        # where record 0 starts in the underlying mmap (mapped from an aligned offset)
        self._mm_base = hbytes % mmap.ALLOCATIONGRANULARITY
        self._n_per_rec = nmax
        self._chan_bytes = [(int(starts[k]), int(starts[k + 1])) for k in chan_idx]
        scales = []
        for k in chan_idx:
            sc = uv_per(units[k])
            if sc is None:
                sc = 1.0
                notes.append(f"signal {labels[k]!r} unit {units[k]!r} kept as is")
            scales.append(sc)
        self.grids = [DigitalGrid(pmin[k], pmax[k], dmin[k], dmax[k]) for k in chan_idx]
        self._scales = np.array(scales)
        self._scaled = bool((self._scales != 1.0).any())
        self._dmin = np.array([float(g.dmin) for g in self.grids])
        self._gain = np.array([g.gain for g in self.grids])
        self._pmin = np.array([g.pmin for g in self.grids])
        self._f32_table: np.ndarray | None = None
        fs = nmax / rec_s
        sidecar = read_sidecar(path)
        if any(is_ann) and reserved.startswith(("EDF+", "BDF+")):  # records where stamped
            a0 = int(starts[is_ann.index(True)])
            a1 = a0 + nsamp[is_ann.index(True)] * bps
            check_edf_layout(path, [(r, timekeeping_onset(bytes(self._mm[r, a0:a1])))
                                    for r in sorted({0, nrec - 1})], rec_s,
                             continuous=not reserved.startswith(("EDF+D", "BDF+D")))
        elif nrec_hdr >= 0 and nrec_hdr != avail and not repairing:
            raise FileFormatError(f"{path}: the header says {nrec_hdr} records but the file "
                                  f"holds {avail} (+{tail} bytes): truncated or edited; run "
                                  f"`emgfeedback repair {path}` if a crash cut it")
        # annotations
        markers: list[Marker] = []
        gaps: list[tuple[int, int]] = []
        for k in [k for k in range(ns) if is_ann[k]]:
            a, b = int(starts[k]), int(starts[k + 1])
            # copied out a few thousand records at a time, their pages unmapped after each
            # (the scan touches every page of the file; it must not count as our memory)
            step = max(1, (8 << 20) // rec_bytes)
            parts = []
            for r0 in range(0, nrec, step):
                r1 = min(nrec, r0 + step)
                parts.append(np.array(self._mm[r0:r1, a:b]))
                self._drop(r0, r1)
            block = np.concatenate(parts)
            total_s = nrec * rec_s
            refused: list[str] = []
            # Only records with a text in a TAL (a 0x14 followed by a text byte) can give an
            # annotation: most hold just their timekeeping TAL ("+12.3\x14\x14"), skipped
            # without parsing.
            texty = _texty_records(block)
            for r in texty.tolist():
                for onset, dur, texts in parse_tals(bytes(block[r])):
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
        nch = len(self.channels)
        out = np.empty(((r1 - r0) * n, nch), dtype=np.float64)
        if self._bps == 2:
            # int16 codes into a channel-major slab, µV there: (d - dmin) * gain + pmin, the
            # arithmetic of DigitalGrid.to_physical, each operation on whole contiguous rows
            # (a per-channel vector broadcast over the (samples, channels) block runs NumPy's
            # loop 8 values at a time: three times as slow); then into the block, transposed.
            # A slab of about _SLAB samples per channel (_SLAB // n records of n samples)
            # bounds the extra memory of a long read.
            codes = recs.view("<i2")
            dmin, gain, pmin = self._dmin[:, None], self._gain[:, None], self._pmin[:, None]
            step = max(1, _SLAB // n)
            for s0 in range(0, r1 - r0, step):
                s1 = min(r1 - r0, s0 + step)
                ct = np.empty((nch, s1 - s0, n))
                for c, (a, b) in enumerate(self._chan_bytes):
                    ct[c] = codes[s0:s1, a // 2 : b // 2]
                slab = ct.reshape(nch, (s1 - s0) * n)
                slab -= dmin
                slab *= gain
                slab += pmin
                if self._scaled:
                    slab *= self._scales[:, None]
                out[s0 * n:s1 * n] = slab.T
        else:
            for c, (a, b) in enumerate(self._chan_bytes):
                t = np.ascontiguousarray(recs[:, a:b]).reshape(-1, 3).astype(np.int32)
                d = t[:, 0] | (t[:, 1] << 8) | (t[:, 2] << 16)
                d = np.where(d >= 1 << 23, d - (1 << 24), d)
                v = self.grids[c].to_physical(d)
                out[:, c] = v if self._scales[c] == 1.0 else v * self._scales[c]
        self._drop(r0, r1)
        off = start - r0 * n
        return out[off : off + (stop - start)]

    def _drop(self, r0: int, r1: int) -> None:
        """Unmap the pages of records ``[r0, r1)`` once copied out (the page cache keeps them):
        a file read block by block never counts as this process's memory, whatever its size."""
        mm = getattr(self._mm, "_mmap", None)
        if mm is None or not hasattr(mm, "madvise"):  # pragma: no cover - not Linux/macOS
            return
        base = self._mm_base
        page = mmap.PAGESIZE
        a = (base + r0 * self._rec_bytes) // page * page
        b = (base + r1 * self._rec_bytes) // page * page
        if b > a:
            try:
                mm.madvise(mmap.MADV_DONTNEED, a, b - a)
            except (OSError, ValueError):  # pragma: no cover - advice only
                pass

    def read_f32(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """As :meth:`Recording.read_f32`, for 16-bit files by table lookup: the float32 value of
        each of the 65536 codes per channel, computed once with :meth:`_read`'s arithmetic (the
        same numbers, a fraction of the work)."""
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        start = max(0, start)
        if self._bps != 2 or stop <= start:
            return super().read_f32(start, stop)
        if self._f32_table is None:
            codes = np.arange(-32768, 32768, dtype=np.float64)[:, None]
            t = (codes - self._dmin) * self._gain + self._pmin
            if self._scaled:
                t *= self._scales
            # indexed by the code's bit pattern read as uint16
            self._f32_table = np.ascontiguousarray(
                np.roll(t.astype("<f4"), -32768, axis=0).T)  # (channels, 65536)
        n = self._n_per_rec
        r0, r1 = start // n, (stop - 1) // n + 1
        codes16 = np.asarray(self._mm[r0:r1]).view("<u2")
        out = np.empty(((r1 - r0) * n, len(self.channels)), dtype="<f4")
        o3 = out.reshape(r1 - r0, n, len(self.channels))
        for c, (a, b) in enumerate(self._chan_bytes):
            o3[:, :, c] = self._f32_table[c].take(codes16[:, a // 2 : b // 2])
        self._drop(r0, r1)
        off = start - r0 * n
        return self._nan_gaps(out[off : off + (stop - start)], start, stop)

    def raw_blocks(self, max_bytes: int = 8 << 20) -> Iterator[memoryview]:
        """The data records as stored in the file (every signal's digital codes and the
        annotation bytes), a few MB at a time, each block's pages unmapped once the caller has
        moved on: what a content hash reads without converting a sample
        (:func:`emgfeedback.views.report.load.content_id`)."""
        n = int(self._mm.shape[0])
        step = max(1, max_bytes // self._rec_bytes)
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            block = memoryview(np.asarray(self._mm[r0:r1]).data).cast("B")
            try:
                yield block
            finally:
                block.release()
                self._drop(r0, r1)

    @property
    def record_bytes(self) -> int:
        """Bytes of one data record (all signals)."""
        return int(self._mm.shape[1])

    @property
    def samples_per_record(self) -> int:
        """Samples of one channel in a data record."""
        return self._n_per_rec

    def read_digital_row(self, sample: int) -> np.ndarray:  # pragma: no cover - debugging aid
        row: np.ndarray = self._read(sample, sample + 1)[0]
        return row

    def close(self) -> None:
        mm = getattr(self, "_mm", None)
        if mm is not None and getattr(mm, "_mmap", None) is not None:
            mm._mmap.close()


def read_edf(path: Path | str) -> EdfRecording:
    """Open an EDF/BDF file (ours or another tool's); see :class:`EdfRecording`."""
    return EdfRecording(path)
