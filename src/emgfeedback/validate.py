"""Boundary checks every room shares (bottom layer: imports only :mod:`emgfeedback.errors`).

* :func:`input_file` — a file the user hands us must exist, be a regular file (a named pipe or a
  device would block a reader forever) and not exceed a size bound.
* :func:`validate_patient_id` — THE patient-id rule (recorder, GUI, sidecars, EDF headers,
  history): a pseudonym, never a name or a birth date.
* :func:`private_file` / :func:`write_private` / :func:`make_private` — files with patient data are
  created ``0600`` (owner read/write only), whatever the umask.
* :func:`io_error` — a disk-full or other I/O error while writing becomes one line naming the file,
  saying what was kept and how to recover it (``emgfeedback repair``).

The typed schema of configurations, programs and montages is :mod:`emgfeedback.config`.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import IO, Any

from emgfeedback.errors import ConfigError, EmgError, FileFormatError

__all__ = [
    "PATIENT_RE",
    "MAX_FS",
    "PRIVATE_MODE",
    "check_rate",
    "input_file",
    "io_error",
    "make_private",
    "patient_id_problem",
    "private_file",
    "validate_patient_id",
    "write_private",
]

PRIVATE_MODE = 0o600
MAX_FS = 100_000.0  # Hz: the fastest rate any supported board or file format uses


def check_rate(fs: Any, what: str = "sample rate") -> float:
    """``fs`` as a float if it is a finite rate in (0, :data:`MAX_FS`] Hz, else a
    :class:`FileFormatError` ``"<what> ... must be ..."`` (rates read from files)."""
    import math

    try:
        v = float(fs)
    except (TypeError, ValueError):
        raise FileFormatError(f"{what} {fs!r} is not a number") from None
    if not (math.isfinite(v) and 0 < v <= MAX_FS):
        raise FileFormatError(f"{what} {fs!r} Hz is outside (0, {MAX_FS:g}] Hz")
    return v

# ------------------------------------------------------------------------------ input files


def input_file(path: str | Path, what: str = "file", max_bytes: int | None = None) -> Path:
    """``path`` if it names an existing regular file (of at most ``max_bytes``), else a
    :class:`FileFormatError` naming it.  Refusing FIFOs and devices keeps a reader from blocking
    forever; streaming from them is what the ``serial:``/``lsl:`` sources are for."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FileFormatError(f"{p}: no such {what}") from None
    except OSError as exc:
        raise FileFormatError(f"{p}: cannot read the {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise FileFormatError(f"{p}: is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        kind = "named pipe" if stat.S_ISFIFO(st.st_mode) else (
            "device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "special file")
        raise FileFormatError(f"{p}: is a {kind}, not a regular {what} (stream from a board with "
                              "--board serial:PORT or lsl:NAME instead)")
    if max_bytes is not None and st.st_size > max_bytes:
        raise FileFormatError(f"{p}: {st.st_size} bytes is too large for a {what} "
                              f"(at most {max_bytes})")
    return p


# ------------------------------------------------------------------------------ patient ids
# up to three capital letters, an optional dash, then digits or dashes starting with a digit
PATIENT_RE = re.compile(r"^[A-Z]{0,3}-?[0-9][0-9-]{1,15}$")
_MIN_YEAR, _MAX_YEAR = 1900, 2099


def _is_date(y: int, m: int, d: int) -> bool:
    return _MIN_YEAR <= y <= _MAX_YEAR and 1 <= m <= 12 and 1 <= d <= 31


def _two_digit_year(yy: int) -> int:
    return 2000 + yy if yy <= 29 else 1900 + yy


def _date_in(digits: str) -> str | None:
    """A plausible calendar date written in the digit run ``digits`` (8 digits: YYYYMMDD,
    DDMMYYYY, MMDDYYYY; 6 digits: YYMMDD, DDMMYY, MMDDYY), as text, or ``None``."""
    cands: list[tuple[int, int, int]] = []
    if len(digits) == 8:
        a, b, c = int(digits[:4]), int(digits[4:6]), int(digits[6:])
        cands.append((a, b, c))  # YYYYMMDD
        d, m, y = int(digits[:2]), int(digits[2:4]), int(digits[4:])
        cands += [(y, m, d), (y, d, m)]  # DDMMYYYY, MMDDYYYY
    elif len(digits) == 6:
        p, q, r = int(digits[:2]), int(digits[2:4]), int(digits[4:])
        cands += [(_two_digit_year(p), q, r), (_two_digit_year(r), q, p),
                  (_two_digit_year(r), p, q)]
    for y, m, d in cands:
        if _is_date(y, m, d):
            return f"{y:04d}-{m:02d}-{d:02d}"
    return None


def _date_groups(groups: list[str]) -> str | None:
    """A date split by dashes: Y-M-D, D-M-Y or M-D-Y (4-digit year)."""
    for i in range(len(groups) - 2):
        a, b, c = groups[i : i + 3]
        if len(a) == 4 and len(b) <= 2 and len(c) <= 2 and _is_date(int(a), int(b), int(c)):
            return f"{a}-{int(b):02d}-{int(c):02d}"
        if len(c) == 4 and len(a) <= 2 and len(b) <= 2:
            y = int(c)
            if _is_date(y, int(b), int(a)) or _is_date(y, int(a), int(b)):
                return f"{a}-{b}-{c}"
    return None


def patient_id_problem(pid: Any) -> str | None:
    """Why ``pid`` is not an acceptable pseudonymous id, or ``None`` when it is.

    Refused: anything but up to 3 capital letters, an optional dash and 2-16 digits/dashes
    (lower-case letters, spaces, longer letter runs could be a name); ids of digits only (a
    birth date or a national number in disguise: give the pseudonym a letter prefix, ``P-0042``);
    and ids containing a plausible calendar date (1900-2099) in any common layout: ``19510502``,
    ``010180``, ``1980-05-12``, ``01-05-1951`` (with or without initials: ``JS-1980-05-12``).
    """
    if not isinstance(pid, str) or not PATIENT_RE.match(pid):
        return ("it is not a pseudonymous id: use up to 3 capital letters, an optional dash and "
                "digits, e.g. P-0042 (names are never stored)")
    digits_part = pid.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    groups = [g for g in digits_part.strip("-").split("-") if g]
    date = _date_groups(groups) if len(groups) >= 3 else None
    if date is None:
        date = _date_in("".join(groups)) if len("".join(groups)) in (6, 8) else None
    if date is None:
        for g in groups:
            date = _date_in(g)
            if date is not None:
                break
    if date is not None:
        return f"it contains what looks like a date ({date}): never use a birth date; e.g. P-0042"
    if pid == digits_part:
        return "it is all digits (it could be a birth date or a record number): use e.g. P-0042"
    return None


def validate_patient_id(pid: Any, where: str = "") -> str:
    """Return ``pid`` if it is an acceptable pseudonym (:func:`patient_id_problem`), else raise
    :class:`ConfigError` with the reason (``where`` names the file it came from)."""
    why = patient_id_problem(pid)
    if why is not None:
        at = f"{where}: " if where else ""
        raise ConfigError(f"{at}patient id {pid!r} refused: {why}")
    return str(pid)


# ------------------------------------------------------------------------------ private files


def make_private(path: str | Path) -> None:
    """``chmod 600`` an existing file (best effort on file systems without modes)."""
    try:
        os.chmod(path, PRIVATE_MODE)
    except OSError:
        pass


def private_file(path: str | Path, mode: str = "wb") -> IO[Any]:
    """Open ``path`` for writing, created ``0600`` (an existing file is made ``0600`` too)."""
    flags = os.O_WRONLY | os.O_CREAT
    if "a" in mode:
        flags |= os.O_APPEND
    elif "+" in mode:
        flags = os.O_RDWR | os.O_CREAT
    if "w" in mode:
        flags |= os.O_TRUNC
    fd = os.open(path, flags, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
    except OSError:
        pass
    enc = None if "b" in mode else "utf-8"
    return os.fdopen(fd, mode, encoding=enc)


def write_private(path: str | Path, data: str | bytes, *, atomic: bool = True) -> None:
    """Write ``data`` to ``path`` as a ``0600`` file; ``atomic`` writes a temporary file beside
    it and renames it over ``path`` (a crash never leaves half a file)."""
    p = Path(path)
    target = p.with_name(p.name + ".tmp") if atomic else p
    binary = isinstance(data, bytes)
    try:
        with private_file(target, "wb" if binary else "w") as f:
            f.write(data)
        if atomic:
            os.replace(target, p)
    except OSError as exc:
        raise io_error(exc, p, kept=False) from None


def io_error(exc: OSError, path: str | Path, *, kept: bool = True,
             repairable: bool = False) -> EmgError:
    """One line for an I/O error while writing ``path``: what happened, what was kept, and for a
    recording how to recover it."""
    what = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
            errno.EIO: "an I/O error occurred"}.get(exc.errno or 0, exc.strerror or str(exc))
    msg = f"{path}: cannot write: {what}"
    if repairable:
        msg += ("; everything recorded up to this point is kept in the file: run "
                f"`emgfeedback repair {path}` after freeing space")
    elif kept:
        msg += "; what was written before is kept"
    return EmgError(msg)
