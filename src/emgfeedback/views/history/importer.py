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
from pathlib import Path
from typing import TextIO

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


def _read_new_edf(path: Path, h: History,
                  opener: Callable[[Path], Recording] | None = None) -> SessionInput | None:
    """The default reader of :func:`import_folder`: the recording and its sidecar with its
    analysis (:func:`emgfeedback.views.report.load.analysis_of`: the one saved after the session,
    else ``analyze``), unless the history holds the session already (then ``None``, without
    analysing): same patient, start and file name, or the same content hash; the file is closed
    before returning (the history keeps no signal)."""
    from emgfeedback.io.importers import load
    from emgfeedback.views.report import load as session_load

    with (opener or load)(path) as rec:
        if h.contains(*session_load.recording_identity(rec)):
            return None
        digest = session_load.content_id(rec)
        if h.contains_content(digest):
            log.info("%s: same content as a stored session; skipped", path)
            return None
        result, note = session_load.analysis_of(rec)
        return session_load.session_from_recording(rec, result, keep_signal=False,
                                                   analysis_note=note, digest=digest)


def import_folder(
    folder: Path,
    db: Path | None = None,
    reader: Callable[[Path], SessionInput] | None = None,
    pattern: str = "*.edf",
    progress: TextIO | None = sys.stderr,
    opener: Callable[[Path], Recording] | None = None,
) -> ImportResult:
    """Analyse every session file under ``folder`` and store the ones not yet in the history.

    Parameters
    ----------
    reader:
        Turns a file into an analysed :class:`SessionInput`.  Default: the recording (EDF+ and
        its sidecar, any format :func:`emgfeedback.io.importers.load` reads) analysed by
        ``analyze``; a session already stored is recognised from its patient id, start and file
        name, or its content hash, before it is analysed, so importing a folder again is quick.
    pattern:
        Glob of session files, searched recursively.
    progress:
        Where the progress bar goes (``None``: no bar).
    opener:
        Opens each file for the default reader (default :func:`emgfeedback.io.importers.load`;
        the CLI's applies the import options and ``--patient``/``--affected-side``).

    A file that cannot be read or has no calibration is reported in :attr:`ImportResult.failed`
    with its one-line reason and the import goes on; each stored session is one transaction.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatabaseError(f"{folder}: not a folder of session files")
    files = sorted(folder.rglob(pattern))
    result = ImportResult()
    bar = _ProgressBar(len(files), progress)
    with History(db) as h:
        for i, f in enumerate(files, start=1):
            try:
                session = reader(f) if reader is not None else _read_new_edf(f, h, opener)
                sid = h.add(session) if session is not None else None
            except DatabaseError:
                raise
            except EmgError as exc:
                result.failed.append((f, str(exc)))
            else:
                (result.imported if sid is not None else result.skipped).append(f)
            bar.update(i, f.name)
    return result
