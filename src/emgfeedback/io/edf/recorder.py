"""The live recorder: a session's raw chunks into EDF+/BDF+ with a JSON sidecar, crash-safe.

A :class:`Recorder` sees every raw chunk *before* the DSP chain (:meth:`Recorder.write`) and
hands back the chunk as the file stores it: on the file's digital grid, with saturation counted
on the grid's rails.  The chain, the detector and the views then see exactly the values the file
will give back, so replaying the file through the same chain reproduces the live output bit for
bit.  The orchestrator (:class:`emgfeedback.app.pipeline.Pipeline`) does::

    rec = Recorder("s1.edf", source.info, patient="P-0001", sidecar={"program": ...})
    chain = Chain(..., adc_range_uv=rec.rails_uv)    # clipping on the file's rails
    for chunk in chunks:                              # with the session's markers in them
        p = chain.process(rec.write(chunk))
    rec.close()

and, while no recording is open, :func:`on_grid` (what :meth:`Recorder.write` returns, without
the file) so that a recording started later sees the same values as the chain did.

The file layout and its crash safety (records flushed as they fill, fsync every 0.5 s, ``-1``
records until :meth:`close`, repair after ``kill -9``) are :mod:`emgfeedback.io.edf.writer`'s.
Lost samples (the next chunk's ``start`` jumps) become ``gap`` annotations over digital-minimum
fill; the prefilter field says ``HW:<analog filter of the board> SW(live view, not applied):
<chain>`` (the data are raw).

Threads: :meth:`write` and :meth:`close` are called by the session thread;
:meth:`annotate` and :meth:`update_sidecar` from any thread.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import emgfeedback
from emgfeedback.io.edf.format import DigitalGrid, grid_for
from emgfeedback.io.edf.sidecar import SIDECAR_FORMAT, sidecar_path, write_sidecar
from emgfeedback.io.edf.writer import EdfWriter
from emgfeedback.stream import Chunk, Marker, SourceInfo, rail_counts
from emgfeedback.errors import EmgError
from emgfeedback.validate import io_error, validate_patient_id

from emgfeedback.vocabulary import match_label

__all__ = ["Recorder", "on_grid"]

# The longest gap the recorder fills with padding (a longer one closes the recording): beyond the
# serial source's reconnect timeout (60 s), so every real outage is kept on one time axis.
MAX_GAP_FILL_S = 600.0

log = logging.getLogger(__name__)


class Recorder:
    """Write a session to EDF+/BDF+ with a JSON sidecar (see the module docstring).

    Parameters
    ----------
    path:
        Output ``.edf`` or ``.bdf``.
    info:
        The source's :class:`SourceInfo` (rate, labels, board, ADC range).
    patient:
        Pseudonymous patient id (:func:`~emgfeedback.validate.validate_patient_id`).
    sidecar:
        Extra sidecar entries (``montage``, ``calibration``, ``thresholds``, ``program``, ...).
    grid:
        Digital grid; default :func:`grid_for` ``(info)`` (BDF when ``.bdf`` or > 16 ADC bits).
    chain:
        The live chain, for the prefilter field and the sidecar's ``dsp`` (optional; anything
        with ``describe()``, ``mains`` and ``cfg``).
    start_time:
        Start date and time in the header (default: when the first chunk arrives).
    """

    def __init__(self, path: Path | str, info: SourceInfo, *, patient: str,
                 sidecar: dict[str, Any] | None = None, grid: DigitalGrid | None = None,
                 chain: Any = None, start_time: _dt.datetime | None = None,
                 max_gap_s: float = MAX_GAP_FILL_S) -> None:
        self.path = Path(path)
        self.info = info
        self.max_gap = int(max_gap_s * float(info.fs))
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
        self._file: EdfWriter | None = None
        self._first: int | None = None  # stream index of file slot 0
        self._early: list[Marker] = []  # annotations given before the first chunk
        self._started: str | None = None
        self.samples = 0
        self.lost_samples = 0
        self.n_gaps = 0
        self.closed = False

    # ----------------------------------------------------------------- public API
    @property
    def rails_uv(self) -> tuple[float, float]:
        """The physical values of the file's lowest and highest codes: the clipping rails of
        every chunk :meth:`write` returns (give them to the chain)."""
        return self.grid.rails_uv

    @property
    def n_annotations(self) -> int:
        """Annotations written so far (gaps included)."""
        return self._file.n_annotations if self._file is not None else 0

    def write(self, chunk: Chunk) -> Chunk:
        """Record one raw chunk (session thread) and return it as the file stores it.

        ``chunk.start`` jumping past the samples written means lost samples (a ``gap``);
        ``chunk.markers`` become annotations.  After :meth:`close` the chunk is only put on the
        grid (the live signal stays what a replay would give).
        """
        out, digital = _on_grid(chunk, self.grid)
        try:
            self._write(chunk, digital)
        except OSError as exc:
            self._abandon()
            raise io_error(exc, self.path, repairable=True) from None
        return out

    def _write(self, chunk: Chunk, digital: np.ndarray) -> None:
        with self._lock:
            if self.closed:
                return
            if self._file is None:
                self._open(chunk.start)
            assert self._file is not None and self._first is not None
            rel = chunk.start - self._first
            for m in chunk.markers:  # first: they may go into the records the gap fills
                self._queue(m)
            if rel > self._file.slots:
                gap = rel - self._file.slots
                if gap > self.max_gap:
                    self._stop_at_gap(gap)
                    return
                self._file.write_gap(gap)
                self.lost_samples += gap
                self.n_gaps += 1
            if rel < self._file.slots:  # overlap: should not happen; never write a slot twice
                skip = self._file.slots - rel
                log.warning("recorder: chunk at %d overlaps %d written samples; dropped them",
                            chunk.start, skip)
                digital = digital[skip:]
            self._file.write(digital)
            self.samples += len(digital)

    def annotate(self, marker: Marker) -> None:
        """Add an annotation at stream sample ``marker.sample`` (alerts, notes; any thread)."""
        with self._lock:
            if self._first is None:
                self._early.append(marker)
                return
            self._queue(marker)

    def update_sidecar(self, **entries: Any) -> None:
        """Merge entries (``calibration=...``, ``thresholds=...``) into the sidecar (any thread)."""
        with self._lock:
            self._extra.update(entries)
            if self._file is not None:
                self._write_sidecar("recording")

    def close(self) -> None:
        """Write the last (padded) record, the true record count and the final sidecar.

        A write error (disk full, I/O error) here or in :meth:`write` stops the recording: the
        file keeps every record written so far and the error says so and names
        ``emgfeedback repair``."""
        try:
            self._close()
        except OSError as exc:
            self._abandon()
            raise io_error(exc, self.path, repairable=True) from None

    def _stop_at_gap(self, gap: int) -> None:
        """A gap beyond ``max_gap_s``: close the file with everything before it (lock held)."""
        assert self._file is not None
        at = self._file.slots / self.fs
        self._extra["stopped"] = (f"{gap} samples ({gap / self.fs:.1f} s) missing at {at:.1f} s, "
                                  f"more than the {self.max_gap / self.fs:g} s a recording fills")
        self._lock.release()
        try:
            self.close()
        finally:
            self._lock.acquire()
        raise EmgError(f"{self.path}: {self._extra['stopped']}: the recording was closed with "
                       "everything before the gap; start a new recording")

    def _abandon(self) -> None:
        """After a write error: stop writing, release the file, keep what is on disk."""
        with self._lock:
            self.closed = True
            if self._file is not None:
                self._file.abandon()

    def _close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._file is None:
                return
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
        self._file = EdfWriter(
            self.path, [self.grid] * len(self.channels), self.channels,
            ["uV"] * len(self.channels), self.fs, patient=self.patient,
            equipment=f"emgfeedback-{emgfeedback.__version__} {self.info.board or self.info.name}",
            transducer="sEMG surface electrodes", prefilter=self._prefilter(),
            start=self._start_time,
        )
        self._started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        for m in self._early:
            self._queue(m)
        self._early = []
        self._write_sidecar("recording")

    def _queue(self, m: Marker) -> None:
        assert self._first is not None and self._file is not None
        rel = m.sample - self._first
        if rel < 0:
            log.warning("recorder: marker %r before the recording start ignored", m.text)
            return
        self._file.annotate(rel, int(m.duration), m.text)

    def _write_sidecar(self, status: str) -> None:
        info = self.info
        data: dict[str, Any] = {
            "format": SIDECAR_FORMAT,
            "version": 1,
            "recording": self.path.name,
            "status": status,
            "patient": self.patient,
            "software": {"name": "emgfeedback", "version": emgfeedback.__version__},
            "started": self._started,
            "fs": self.fs,
            "channels": list(self.channels),
            "first_sample": self._first,
            "samples": self.samples,
            "slots": self._file.slots if status == "complete" and self._file else None,
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
        write_sidecar(self.sidecar_path, data)


def on_grid(chunk: Chunk, grid: DigitalGrid) -> Chunk:
    """``chunk`` as a file on ``grid`` gives it back: samples on the digital grid, saturation
    counted on the grid's rails, everything else kept.  What :meth:`Recorder.write` returns; a
    session that may start recording later puts its chunks through this until it does, so the
    chain sees file values from the first sample."""
    return _on_grid(chunk, grid)[0]


def _on_grid(chunk: Chunk, grid: DigitalGrid) -> tuple[Chunk, np.ndarray]:
    digital = grid.to_digital(chunk.data)
    data = grid.to_physical(digital)
    status = replace(chunk.status, saturated=rail_counts(data, grid.rails_uv))
    return replace(chunk, data=data, status=status), digital


def _asdict(obj: Any) -> Any:
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
