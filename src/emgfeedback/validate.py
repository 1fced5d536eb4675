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
from itertools import accumulate
from pathlib import Path
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, ClassVar

from emgfeedback.config import Settings, from_mapping, setting
from emgfeedback.errors import ConfigError, EmgError, FileFormatError
from emgfeedback.files import input_file

__all__ = [
    "PATIENT_RE",
    "MAX_FS",
    "PRIVATE_MODE",
    "check_annotation",
    "check_edf_signals",
    "check_edf_layout",
    "check_edf_size",
    "check_rate",
    "check_sidecar",
    "load_json_file",
    "timekeeping_onset",
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


# ------------------------------------------------------------------------------ recordings
MAX_SIGNALS = 512  # EDF signals in one file
MAX_RECORD_S = 3600.0  # an EDF data record longer than an hour is not a recording we wrote
MAX_SIDECAR_BYTES = 16 << 20  # a sidecar is a few kB; calibration and analyses make it larger
MAX_JSON_DEPTH = 64
PATIENT_REFUSED = "patient_refused"  # set by check_sidecar when the id breaks the rule


@dataclass(frozen=True)
class EdfSignalHeader(Settings):
    """One signal of an EDF/BDF header, typed and bounded by the configuration's schema."""

    bdf: bool = setting(False)
    record_s: float = setting(1.0, gt=0, le=MAX_RECORD_S, unit="s")
    annotation: bool = setting(False)
    n_per_record: int = setting(1, ge=1, le=int(MAX_FS * MAX_RECORD_S))
    pmin: float = setting(-1.0)
    pmax: float = setting(1.0)
    dmin: int = setting(-1, ge=-(1 << 23), le=(1 << 23) - 1)
    dmax: int = setting(1, ge=-(1 << 23), le=(1 << 23) - 1)

    def check(self) -> None:
        if self.n_per_record > MAX_FS * self.record_s + 1:
            raise ConfigError(f"n_per_record {self.n_per_record} in a {self.record_s:g} s "
                              f"record is above {MAX_FS:g} Hz")
        if self.annotation:
            return
        lo, hi = (-(1 << 23), (1 << 23) - 1) if self.bdf else (-(1 << 15), (1 << 15) - 1)
        if not lo <= self.dmin < self.dmax <= hi:
            raise ConfigError(f"dmin/dmax [{self.dmin}, {self.dmax}] must satisfy "
                              f"{lo} <= min < max <= {hi}")
        if self.pmin == self.pmax:
            raise ConfigError(f"pmin/pmax [{self.pmin}, {self.pmax}] must differ")


def check_edf_signals(path: Path | str, *, bdf: bool, record_s: float, labels: list[str],
                      pmin: list[float], pmax: list[float], dmin: list[int], dmax: list[int],
                      n_per_record: list[int], annotation: list[bool]) -> None:
    """Header fields of an EDF/BDF file that would make a reader divide by zero, allocate
    without bound or scale garbage (:class:`EdfSignalHeader`): one :class:`FileFormatError`
    naming the file, the signal, the field and the allowed range."""
    if len(labels) > MAX_SIGNALS:
        raise FileFormatError(f"{path}: {len(labels)} signals (at most {MAX_SIGNALS})")
    for k, lab in enumerate(labels):
        try:
            EdfSignalHeader(bdf=bdf, record_s=record_s, annotation=annotation[k],
                            n_per_record=n_per_record[k], pmin=pmin[k], pmax=pmax[k],
                            dmin=dmin[k], dmax=dmax[k])
        except ConfigError as exc:
            raise FileFormatError(f"{path}: header of signal {k + 1} ({lab!r}): {exc}") from None


def check_edf_size(path: Path | str, *, header_bytes: int, record_bytes: int, records: int,
                   size: int) -> None:
    """A header that says ``records`` complete records must match the file size; more data
    than declared means a header field was edited (samples per record, record count), and
    reading on would scramble every value (pyedflib refuses such a file too).  A file shorter
    than declared, or ``-1`` records, is a crash the reader recovers from, with a note."""
    expected = header_bytes + records * record_bytes
    if records >= 0 and size > expected:
        raise FileFormatError(
            f"{path}: the header says {records} records of {record_bytes} bytes ({expected} "
            f"bytes with the header) but the file has {size}: the header disagrees with the "
            "file size (samples per record or record count edited?)")


def timekeeping_onset(block: bytes) -> float | None:
    """The onset of an EDF+ record's time-keeping TAL (``+<onset>\\x14\\x14`` first in its
    annotation block), or ``None`` when the block does not start with one."""
    end = block.find(b"\x14\x14")
    if end <= 0 or block[:1] not in (b"+", b"-"):
        return None
    try:
        return float(block[:end])
    except ValueError:
        return None


def check_edf_layout(path: Path | str, onsets: list[tuple[int, float | None]], record_s: float,
                     continuous: bool) -> None:
    """EDF+: records sit where their time-keeping TALs say; a misplaced one means the header's
    layout (samples per record) is not the file's: reading on would scramble every value."""
    for r, onset in onsets:
        if onset is None:
            raise FileFormatError(f"{path}: data record {r} does not start with an EDF+ time "
                                  "stamp: the header disagrees with the file (samples per "
                                  "record edited?)")
        if continuous and abs(onset - r * record_s) > 1e-3 + 1e-9 * r:
            raise FileFormatError(f"{path}: data record {r} is stamped {onset:g} s, expected "
                                  f"{r * record_s:g} s: the header disagrees with the file")


def check_annotation(onset: float, duration: float, total_s: float) -> str | None:
    """Why an annotation's onset/duration is impossible (``None`` when it is fine)."""
    import math

    if not (math.isfinite(onset) and math.isfinite(duration)):
        return f"onset {onset!r} s / duration {duration!r} s is not a finite time"
    if duration < 0:
        return f"duration {duration:g} s is negative"
    if onset < -1.0 or onset > total_s + 1.0 or onset + duration > total_s + MAX_RECORD_S:
        return f"onset {onset:g} s (+{duration:g} s) lies outside the {total_s:g} s recording"
    return None


def _depth(obj: Any, limit: int) -> int:
    stack = [(obj, 1)]
    deepest = 0
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if d > limit:
            return d
        if isinstance(o, dict):
            stack += [(v, d + 1) for v in o.values()]
        elif isinstance(o, list):
            stack += [(v, d + 1) for v in o]
    return deepest


#: A JSON string literal, escapes included; an unterminated one runs to the end of the text.
#: (No backtracking: the loop stops only at an unescaped quote or the end, where the match ends.)
_JSON_STRING = re.compile(r'"(?:[^"\\]+|\\[\s\S]?)*(?:"|\Z)')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether the brackets of ``text`` outside string literals nest deeper than ``limit`` at any
    point (``[{`` open, ``]}`` close, as written: malformed text is json.loads' to refuse).
    Regular expressions cut out the strings and everything but brackets, and the depth is a
    running sum: C speed (a few ms for a 400 KB analysis, where a loop over the characters took
    20 ms), linear in the text whatever it holds."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0) > limit


def load_json_file(path: Path | str, what: str, max_bytes: int = MAX_SIDECAR_BYTES) -> Any:
    """A JSON document from a regular file of bounded size and nesting depth (no RecursionError,
    no NaN/Infinity literals); :class:`FileFormatError` naming the file otherwise."""
    import json

    p = input_file(path, what, max_bytes)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{p}: damaged {what} (not UTF-8 at byte {exc.start})") from None
    # the nesting depth is bounded before parsing (json.loads recurses per level)
    if _json_depth_exceeds(text, MAX_JSON_DEPTH):
        raise FileFormatError(f"{p}: damaged {what}: nested deeper than {MAX_JSON_DEPTH} levels")

    def _no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise FileFormatError(f"{p}: damaged {what} JSON ({exc})") from None


def check_sidecar(data: Any, path: Path | str) -> dict[str, Any]:
    """``data`` if it is a sidecar whose known fields have their types and ranges
    (:class:`SidecarFields`, the configuration's schema mechanism; unknown keys are kept:
    sidecars grow), else a :class:`FileFormatError` naming the file and the field.

    A patient id that breaks the rule is withheld: ``patient`` becomes ``None`` and
    ``data[PATIENT_REFUSED]`` says why (older recordings stay readable; nothing shows the id)."""
    if not isinstance(data, dict):
        raise FileFormatError(f"{path}: sidecar is not a JSON object")
    try:
        from_mapping(SidecarFields, data, "sidecar", ignore_unknown=True)
    except ConfigError as exc:
        raise FileFormatError(f"{path}: {exc}") from None
    pid = data.get("patient")
    if pid is not None:
        why = patient_id_problem(pid)
        if why is not None:  # withheld, never shown; the recording stays readable
            data["patient"] = None
            data[PATIENT_REFUSED] = why
    return data


big = 1 << 62  # sample counts: bounded, never negative


@dataclass(frozen=True)
class SidecarSource(Settings):
    """``source`` of a sidecar: the fields readers use (others kept)."""

    OPEN: ClassVar[bool] = True
    adc_bits: int | None = setting(None, ge=0, le=32)
    adc_range_uv: tuple[float, float] | None = setting(None, ge=-1e9, le=1e9)
    extra: Mapping[str, Any] | None = setting(None)


@dataclass(frozen=True)
class SidecarFields(Settings):
    """The sidecar fields readers use, typed and bounded (others kept: sidecars grow)."""

    OPEN: ClassVar[bool] = True
    format: str | None = setting(None)
    version: int | None = setting(None, ge=0, le=1000)
    recording: str | None = setting(None)
    status: str | None = setting(None)
    started: str | None = setting(None)
    patient: str | None = setting(None)
    affected_side: str | None = setting(None)
    fs: float | None = setting(None, gt=0, le=MAX_FS, unit="Hz")
    channels: tuple[str, ...] | None = setting(None, max_len=MAX_SIGNALS)
    first_sample: int | None = setting(None, ge=0, le=big)
    samples: int | None = setting(None, ge=0, le=big)
    slots: int | None = setting(None, ge=0, le=big)
    lost_samples: int | None = setting(None, ge=0, le=big)
    gaps: int | None = setting(None, ge=0, le=big)
    source: SidecarSource | None = setting(None)
    digital: Mapping[str, Any] | None = setting(None)
    montage: Mapping[str, Any] | None = setting(None)
    dsp: Mapping[str, Any] | None = setting(None)
    program: Mapping[str, Any] | None = setting(None)
    calibration: Mapping[str, Any] | None = setting(None)
    thresholds: Mapping[str, Any] | None = setting(None)
