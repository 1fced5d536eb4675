"""``emgfeedback history import FOLDER``: analyse every session file and store the new ones.

A session already in the history is recognised before it is analysed: by patient, start and file
name (from the sidecar, without reading the signal), else by its content
(:func:`emgfeedback.views.report.load.content_id`, a hash of the signal), so a copied or renamed
file is not stored twice.
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
from emgfeedback.views.history.db import History
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


def session_digest(path: Path, opener: Callable[[Path], Recording] | None = None) -> str:
    """The content hash of a session file (:func:`emgfeedback.views.report.load.content_id`);
    a worker's first job in :func:`import_folder`."""
    from emgfeedback.io.importers import load
    from emgfeedback.views.report import load as session_load

    with (opener or load)(path) as rec:
        return session_load.content_id(rec)


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


def _identity(path: Path, opener: Callable[[Path], Recording] | None) -> Any:
    from emgfeedback.io.importers import load
    from emgfeedback.views.report import load as session_load

    with (opener or load)(path) as rec:
        return session_load.recording_identity(rec)


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
    from emgfeedback.app.batch import Outcome, describe_error, run_many

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
        if reader is not None:
            work = [(f, None) for f in files]
        else:
            # 1. in this process: sessions known by patient, start and file name (headers and
            #    sidecars only); 2. in the workers: the content hash of the others, known
            #    contents skipped before any analysis (a copied or renamed file)
            unknown: list[Path] = []
            for f in files:
                try:
                    known = h.contains(*_identity(f, opener))
                except (EmgError, OSError) as exc:
                    fail(f, describe_error(exc))
                    known = True
                if known:
                    status.setdefault(f, "skipped")
                    tick(f)
                else:
                    unknown.append(f)
            digests = run_many(partial(session_digest, opener=opener), unknown, jobs=jobs,
                               scheduler=scheduler)
            seen: set[str] = set()
            for f, o in zip(unknown, digests):
                if not o.ok:
                    fail(f, str(o.error))
                    tick(f)
                elif o.result in seen or h.contains_content(str(o.result)):
                    log.info("%s: same content as a stored session; skipped", f)
                    status[f] = "skipped"
                    tick(f)
                else:
                    seen.add(str(o.result))
                    work.append((f, o.result))
        # 3. read and analyse in the workers; store here, in file order, as results arrive
        fn: Callable[[Any], SessionInput] = (
            partial(_read_job, opener=opener) if reader is None
            else partial(_apply_reader, reader=reader))
        ready: dict[int, Outcome[Any, SessionInput]] = {}
        nxt = 0

        def store(i: int, o: Outcome[Any, SessionInput]) -> None:
            nonlocal nxt
            ready[i] = o
            while nxt in ready:
                out = ready.pop(nxt)
                f = work[nxt][0]
                nxt += 1
                if not out.ok:
                    fail(f, str(out.error))
                else:
                    assert out.result is not None
                    try:
                        sid = h.add(out.result)
                    except DatabaseError:
                        raise
                    except EmgError as exc:  # e.g. a session without calibration
                        fail(f, str(exc))
                    else:
                        status[f] = "imported" if sid is not None else "skipped"
                tick(f)

        run_many(fn, work, jobs=jobs, scheduler=scheduler, on_outcome=store)
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


def _apply_reader(job: tuple[Path, str | None], reader: Callable[[Path], SessionInput]
                  ) -> SessionInput:
    return reader(job[0])
