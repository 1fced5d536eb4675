"""Start and stop of a session's EDF+ recording, asked for by any thread and carried out by the
session thread between chunks (no Qt; the GUI's Record button and ``emgfeedback record`` use it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emgfeedback.app.pipeline import Pipeline
from emgfeedback.io.edf.recorder import Recorder
from emgfeedback.stream import Marker

__all__ = ["RecordingControl"]

log = logging.getLogger(__name__)


class RecordingControl:
    """Start and stop of the EDF+ recording: asked for by the window, done by the session thread.

    The recorder is :class:`emgfeedback.io.edf.recorder.Recorder`, started by
    :meth:`Pipeline.start_recording` *between two chunks, in the session thread*: right after
    the pipeline opens when recording was chosen on the Connect screen (then every sample the
    chain, the feedback and the screens saw is in the file, on the file's digital grid, and a
    replay of the file reproduces the live session exactly), or before the next chunk when the
    therapist presses *Record* during a session (the file then starts at that sample and its
    first second of filter settling differs from what was shown live).  Closing also happens in
    the session thread, between chunks or when the session ends, so a chunk is never half in a
    file and the window never waits for the disk.

    Parameters
    ----------
    patient:
        Pseudonymous patient id (validated by the recorder).
    make_path:
        Returns the path of a new recording (called in the session thread at each start).
    sidecar:
        Sidecar entries written when a recording starts (program, affected side, ...).
    final_sidecar:
        Called in the session thread just before a recording is closed; its entries
        (``calibration=...``) are merged into the sidecar.
    on_closed:
        ``on_closed(path, error)`` in the session thread once a recording is complete (or failed).

    Threads: :meth:`request_start`, :meth:`request_stop`, :attr:`state`, :attr:`seconds` and
    :meth:`annotate` from any thread (the window's); :meth:`service`, :meth:`update_sidecar` and
    :meth:`close` from the session thread only.
    """

    def __init__(self, patient: str, make_path: Callable[[], Path],
                 sidecar: dict[str, Any] | None = None,
                 final_sidecar: Callable[[], dict[str, Any]] | None = None,
                 on_closed: Callable[[Path, BaseException | None], None] | None = None) -> None:
        self.patient = patient
        self.make_path = make_path
        self.sidecar = dict(sidecar or {})
        self.final_sidecar = final_sidecar
        self.on_closed = on_closed
        self._lock = threading.Lock()
        self._want = False
        self._rec: Recorder | None = None  # while a recording is open
        self._opened_at: int | None = None
        self.paths: list[Path] = []
        #: ``f(recorder, first_sample)`` after a recording started, and ``f(recorder) -> dict``
        #: of sidecar entries just before it closes (session thread): the session's video
        self.on_started: list[Callable[[Recorder, int], None]] = []
        self.on_closing: list[Callable[[Recorder], dict[str, Any]]] = []
        #: the last recorder closed (its counts: samples, annotations, lost samples)
        self.last: Recorder | None = None

    # ---- any thread
    def request_start(self) -> None:
        """Ask for a recording from the next chunk on (the session thread attaches it)."""
        with self._lock:
            self._want = True

    def request_stop(self) -> None:
        """Ask for the recording to be closed before the next chunk."""
        with self._lock:
            self._want = False

    @property
    def state(self) -> str:
        """``off``, ``starting`` (asked, not attached yet), ``on`` or ``saving`` (closing)."""
        with self._lock:
            if self._rec is None:
                return "starting" if self._want else "off"
            return "on" if self._want else "saving"

    @property
    def recording(self) -> bool:
        return self.state in ("starting", "on")

    @property
    def seconds(self) -> float:
        """Signal seconds in the open recording (0 when none)."""
        with self._lock:
            rec = self._rec
        return rec.samples / rec.fs if rec is not None and rec.fs else 0.0

    def annotate(self, marker: Marker) -> bool:
        """Put ``marker`` into the open recording (alerts); ``False`` when none is open."""
        with self._lock:
            rec = self._rec
        if rec is None:
            return False
        rec.annotate(marker)
        return True

    # ---- session thread
    def service(self, pipeline: Pipeline) -> None:
        """Carry out a pending start or stop (session thread, between chunks).

        ``pipeline`` must be opened with a recording grid.  A failure to start (bad id, disk) is
        raised: the caller reports it and the session goes on unrecorded.
        """
        with self._lock:
            want, rec = self._want, self._rec
        if want and rec is None:
            path = self.make_path()
            try:
                rec = pipeline.start_recording(
                    path, patient=self.patient,
                    sidecar={**self.sidecar, "from_stream_start": pipeline.samples == 0})
            except BaseException:
                with self._lock:
                    self._want = False
                raise
            with self._lock:
                self._rec = rec
            self.paths.append(path)
            for started in self.on_started:
                started(rec, pipeline.samples)
        elif not want and rec is not None:
            self._close(rec, pipeline)

    def update_sidecar(self, **entries: Any) -> None:
        """Merge entries into the open recording's sidecar (session thread: it writes a file)."""
        with self._lock:
            rec = self._rec
        if rec is not None:
            rec.update_sidecar(**entries)

    def close(self, pipeline: Pipeline | None = None) -> None:
        """Close the open recording, if any (session thread, when the session ends)."""
        with self._lock:
            self._want = False
            rec = self._rec
        if rec is not None:
            self._close(rec, pipeline)

    def _close(self, rec: Recorder, pipeline: Pipeline | None) -> None:
        err: BaseException | None = None
        for closing in self.on_closing:
            try:
                rec.update_sidecar(**closing(rec))
            except Exception as exc:  # the EDF+ matters more: still close it
                log.exception("the recording's video was not closed cleanly")
                err = exc
        try:
            if self.final_sidecar is not None:
                rec.update_sidecar(**self.final_sidecar())
        except Exception as exc:  # the samples matter more than the sidecar: still close
            log.exception("final sidecar entries not written")
            err = exc
        try:
            if pipeline is not None and pipeline.recorder is rec:
                pipeline.stop_recording()
            else:
                rec.close()
        except BaseException as exc:
            err = exc
        with self._lock:
            self._rec = None
        self.last = rec
        if self.on_closed is not None:
            self.on_closed(rec.path, err)
