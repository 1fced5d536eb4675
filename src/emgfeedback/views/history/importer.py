"""``emgfeedback history import FOLDER``: analyse every session file and store the new ones.

A session already in the history is recognised before it is analysed: by patient, start and file
name (from the sidecar, without reading the signal), else by its content
(:func:`emgfeedback.views.report.load.content_id`, a hash of the data records), so a copied or
renamed file is not stored twice.  Each file is opened once when its analysis is saved beside it
(:func:`probe_session`), twice when it must be analysed.  A file stored by a history before
schema 3 (whose ids hashed the samples in µV) is still recognised: see
:data:`emgfeedback.views.history.db.SCHEMA_VERSION`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from emgfeedback.errors import DatabaseError, EmgError
from emgfeedback.recording import Recording
from emgfeedback.views.history.db import History, legacy_id
from emgfeedback.views.summary import SessionInput

__all__ = ["ImportResult", "import_folder"]

log = logging.getLogger(__name__)


@dataclass
class ImportResult:
    imported: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # already stored
    failed: list[tuple[Path, str]] = field(default_factory=list)


class _ProgressBar:
    """A one-line text progress bar on a terminal; a line per 10 % otherwise (logs, CI)."""

    def __init__(self, total: int, out: TextIO | None, width: int = 30) -> None:
        self.total = max(1, total)
        self.out = out
        self.width = width
        self.tty = bool(out is not None and hasattr(out, "isatty") and out.isatty())
        self._last_decile = -1

    def update(self, done: int, label: str) -> None:
        if self.out is None:
            return
        frac = done / self.total
        if self.tty:
            n = int(round(frac * self.width))
            self.out.write(f"\r[{'#' * n}{'.' * (self.width - n)}] {done}/{self.total} "
                           f"{label[-40:]:<40}")
            if done >= self.total:
                self.out.write("\n")
        else:
            decile = int(frac * 10)
            if decile != self._last_decile or done >= self.total:
                self._last_decile = decile
                self.out.write(f"{done}/{self.total} sessions ({100 * frac:.0f} %)\n")
        self.out.flush()


@dataclass
class _Probe:
    """What a worker's first look at a session file gave (:func:`probe_session`)."""

    identity: tuple[str, Any, str]  # (patient_id, recorded_at, source)
    known: bool = False  # stored already by patient, start and file name: nothing else read
    digest: str = ""  # the content id
    duration_s: float = 0.0
    session: SessionInput | None = None  # read already: its analysis is saved beside it
    error: str | None = None  # reading the saved analysis failed (reported if not a copy)


def probe_session(job: tuple[Path, frozenset[tuple[str, str, str]]],
                  opener: Callable[[Path], Recording] | None = None) -> _Probe:
    """A worker's first job in :func:`import_folder`, in one opening of the file: its identity
    (patient, start, file name); unless it is among ``job[1]`` (the stored sessions from files of
    that name), its content hash and, when its analysis is saved beside it, the session read
    as :func:`read_session` reads it (cheap: no analysis).  A session needing ``analyze`` is
    read by a second job, after the importer has checked that its content is new."""
    from emgfeedback.app.batch import describe_error
    from emgfeedback.io.edf.sidecar import analysis_path
    from emgfeedback.io.importers import load
    from emgfeedback.views.report import load as session_load

    path, known = job
    with (opener or load)(path) as rec:
        pid, at, source = session_load.recording_identity(rec)
        identity = (pid, at, source)
        if (pid, at.isoformat(timespec="seconds"), source) in known:
            return _Probe(identity, known=True)
        digest = session_load.content_id(rec)
        probe = _Probe(identity, digest=digest, duration_s=rec.duration_s)
        if analysis_path(rec.path).is_file():
            try:
                result, note = session_load.analysis_of(rec)
                probe.session = session_load.session_from_recording(
                    rec, result, keep_signal=False, analysis_note=note, digest=digest)
            except Exception as exc:  # reported by the importer unless the content is known
                probe.error = describe_error(exc)
        return probe


def read_session(path: Path, opener: Callable[[Path], Recording] | None = None,
                 digest: str | None = None) -> SessionInput:
    """The default reader of :func:`import_folder` (a worker's second job): the recording and
    its sidecar with its analysis (:func:`emgfeedback.views.report.load.analysis_of`: the one
    saved after the session when there is one, else ``analyze``); the file is closed before
    returning (the history keeps no signal)."""
    from emgfeedback.io.importers import load
    from emgfeedback.views.report import load as session_load

    with (opener or load)(path) as rec:
        result, note = session_load.analysis_of(rec)
        return session_load.session_from_recording(rec, result, keep_signal=False,
                                                   analysis_note=note, digest=digest)


def _read_job(job: tuple[Path, str | None], opener: Callable[[Path], Recording] | None
              ) -> SessionInput:
    return read_session(job[0], opener, job[1])


def import_folder(
    folder: Path,
    db: Path | None = None,
    reader: Callable[[Path], SessionInput] | None = None,
    pattern: str = "*.edf",
    progress: TextIO | None = sys.stderr,
    opener: Callable[[Path], Recording] | None = None,
    jobs: int | None = 1,
    scheduler: str | None = None,
) -> ImportResult:
    """Analyse every session file under ``folder`` and store the ones not yet in the history.

    Parameters
    ----------
    reader:
        Turns a file into an analysed :class:`SessionInput`.  Default: :func:`read_session`
        (EDF+ and its sidecar, any format :func:`emgfeedback.io.importers.load` reads, with the
        analysis saved after the session or else ``analyze``); a session already stored is
        recognised from its patient id, start and file name, or its content hash, before it is
        analysed, so importing a folder again is quick.
    pattern:
        Glob of session files, searched recursively.
    progress:
        Where the progress bar goes (``None``: no bar).
    opener:
        Opens each file for the default reader (default :func:`emgfeedback.io.importers.load`;
        the CLI's applies the import options and ``--patient``/``--affected-side``); with
        ``jobs > 1`` or ``scheduler`` it (and ``reader``) must be picklable.
    jobs, scheduler:
        Where the files are read and analysed (:func:`emgfeedback.app.batch.run_many`): in this
        process (``jobs=1``), a process pool of ``jobs`` (``None``: every core), or the Dask
        cluster at ``scheduler``.  The database is written by this process only, session by
        session in the order of the files as their results arrive, so the result is the serial
        run's.

    A file that cannot be read or has no calibration is reported in :attr:`ImportResult.failed`
    with its one-line reason and the import goes on; each stored session is one transaction.
    """
    from emgfeedback.app.batch import Outcome, run_many

    folder = Path(folder)
    if not folder.is_dir():
        raise DatabaseError(f"{folder}: not a folder of session files")
    files = sorted(folder.rglob(pattern))
    status: dict[Path, str] = {}
    failed: dict[Path, str] = {}
    bar = _ProgressBar(len(files), progress)
    shown = 0

    def tick(f: Path) -> None:
        nonlocal shown
        shown += 1
        bar.update(shown, f.name)

    def fail(f: Path, why: str) -> None:
        status[f] = "failed"
        failed[f] = why

    with History(db) as h:
        work: list[tuple[Path, str | None]] = []
        seen: set[str] = set()

        def add(f: Path, session: SessionInput) -> None:
            try:
                sid = h.add(session)
            except DatabaseError:
                raise
            except EmgError as exc:  # e.g. a session without calibration
                fail(f, str(exc))
            else:
                status[f] = "imported" if sid is not None else "skipped"

        def known_content(f: Path, p: _Probe) -> bool:
            if p.digest in seen:
                return True
            try:
                return h.knows_content(p.digest, p.duration_s, lambda: legacy_id(f, opener))
            except (EmgError, OSError) as exc:  # read a moment ago: hardly; then it is new
                if isinstance(exc, DatabaseError):
                    raise
                log.warning("%s: old content id not computed (%s)", f, exc)
                return False

        def probed(f: Path, o: Outcome[Any, _Probe]) -> None:
            p = o.result
            if not o.ok or p is None:
                fail(f, str(o.error))
            elif p.known or h.contains(*p.identity):
                status.setdefault(f, "skipped")
            elif known_content(f, p):
                log.info("%s: same content as a stored session; skipped", f)
                status[f] = "skipped"
            else:
                seen.add(p.digest)
                if p.session is not None:
                    add(f, p.session)
                elif p.error is not None:
                    fail(f, p.error)
                else:  # analysed by a second job
                    work.append((f, p.digest))
                    return
            tick(f)

        if reader is not None:
            work = [(f, None) for f in files]
        else:
            # 1. in the workers, one opening per file: its identity (a session known by patient,
            #    start and file name is skipped there), content hash and, when its analysis is
            #    saved beside it, the session; here, in file order as they arrive: known
            #    contents skipped (a copied or renamed file), read sessions stored
            probes = [(f, h.sources_named(f.name)) for f in files]
            run_many(partial(probe_session, opener=opener), probes, jobs=jobs,
                     scheduler=scheduler, on_outcome=_in_order(
                         lambda i, o: probed(files[i], o)))
        # 2. read and analyse the others in the workers; store here, in file order
        fn: Callable[[Any], SessionInput] = (
            partial(_read_job, opener=opener) if reader is None
            else partial(_apply_reader, reader=reader))

        def store(i: int, o: Outcome[Any, SessionInput]) -> None:
            f = work[i][0]
            if not o.ok:
                fail(f, str(o.error))
            else:
                assert o.result is not None
                add(f, o.result)
            tick(f)

        run_many(fn, work, jobs=jobs, scheduler=scheduler, on_outcome=_in_order(store))
    result = ImportResult()
    for f in files:
        kind = status.get(f)
        if kind == "imported":
            result.imported.append(f)
        elif kind == "skipped":
            result.skipped.append(f)
        elif kind == "failed":
            result.failed.append((f, failed[f]))
    return result


def _in_order(fn: Callable[[int, Any], None]) -> Callable[[int, Any], None]:
    """``fn(i, outcome)`` called in item order, whatever order the outcomes arrive in."""
    ready: dict[int, Any] = {}
    nxt = 0

    def call(i: int, outcome: Any) -> None:
        nonlocal nxt
        ready[i] = outcome
        while nxt in ready:
            fn(nxt, ready.pop(nxt))
            nxt += 1

    return call


def _apply_reader(job: tuple[Path, str | None], reader: Callable[[Path], SessionInput]
                  ) -> SessionInput:
    return reader(job[0])
