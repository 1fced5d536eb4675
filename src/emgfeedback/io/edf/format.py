"""The EDF+/BDF+ file format as this project writes and reads it: header fields, the digital
grid, data-record sizes and TALs (time-stamped annotation lists).

Shared by :mod:`~emgfeedback.io.edf.writer` and :mod:`~emgfeedback.io.edf.reader`; nothing here
opens a file except :func:`read_identity`.

Replay exactness
----------------
EDF stores integers; a physical value is ``(d - dmin) * gain + pmin`` with ``gain = (pmax - pmin)
/ (dmax - dmin)`` computed from the header's own 8-character numbers.  :class:`DigitalGrid` does
this arithmetic in one place, for the writer, the reader and the live recorder (which puts every
live sample on the grid before the DSP chain sees it).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from emgfeedback.errors import ConfigError, EmgError
from emgfeedback.stream import SourceInfo
from emgfeedback.vocabulary import GAP

__all__ = [
    "ANNOT_BYTES",
    "GAP_TEXT",
    "MONTHS",
    "DigitalGrid",
    "grid_for",
    "parse_tals",
    "read_identity",
    "record_duration",
]

RECORD_CHOICES_S = (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 10.0)
ANNOT_BYTES = 240  # bytes of annotation signal per data record (EDF: 120 samples, BDF: 80)
GAP_TEXT = GAP
EDF_MAGIC = b"0       "
BDF_MAGIC = b"\xffBIOSEMI"
EDF_RANGE = (-32768, 32767)
BDF_RANGE = (-8388608, 8388607)
#: The month abbreviations of the EDF+ ``Startdate dd-MMM-yyyy`` subfield.
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
#: ``(name, width)`` of the per-signal header fields, in file order.
SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("unit", 8), ("pmin", 8), ("pmax", 8),
                 ("dmin", 8), ("dmax", 8), ("prefilter", 80), ("n", 8), ("reserved", 32))


# ============================================================================ field text
def fmt_num(x: float, width: int = 8) -> str:
    """Shortest decimal text of ``x`` that fits ``width`` characters (EDF number fields)."""
    if float(x).is_integer() and len(str(int(x))) <= width:
        return str(int(x))
    for prec in range(width, -1, -1):
        s = f"{x:.{prec}f}".rstrip("0").rstrip(".")
        if len(s) <= width:
            return s
    raise ConfigError(f"value {x} does not fit an EDF header field of {width} characters")


def fmt_seconds(sample: int, fs: float) -> str:
    """Onset or duration text of a TAL: ``sample / fs`` seconds, at most 9 decimals."""
    s = f"{sample / fs:.9f}".rstrip("0").rstrip(".")
    return s or "0"


def field(text: str, width: int) -> bytes:
    """``text`` as an ASCII header field of ``width`` bytes (cut or padded with spaces)."""
    b = text.encode("ascii", "replace")[:width]
    return b.ljust(width, b" ")


def edf_word(s: str) -> str:
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
        return self.dmax > EDF_RANGE[1]

    @cached_property
    def rails_uv(self) -> tuple[float, float]:
        """Physical values of the lowest and highest digital codes."""
        d = np.array([self.dmin, self.dmax])
        lo, hi = self.to_physical(d)
        return float(lo), float(hi)

    def to_digital(self, x: np.ndarray) -> np.ndarray:
        """µV -> int32 codes, rounded and clipped to ``[dmin, dmax]`` (NaN -> ``dmin``)."""
        d = np.asarray(x, dtype=np.float64) - self.pmin  # a new array: x is never written
        d /= self.gain
        np.rint(d, out=d)
        d += self.dmin
        np.minimum(d, self.dmax, out=d)
        np.maximum(d, self.dmin, out=d)  # NaN stays NaN here ...
        nan = np.isnan(d)
        if nan.any():
            d[nan] = self.dmin  # ... and becomes the gap fill
        return d.astype(np.int32)

    def to_physical(self, d: np.ndarray) -> np.ndarray:
        """int codes -> µV (float64)."""
        return (np.asarray(d, dtype=np.float64) - self.dmin) * self.gain + self.pmin

    def quantise(self, x: np.ndarray) -> np.ndarray:
        """What a value becomes after a trip through the file."""
        return self.to_physical(self.to_digital(x))


def grid_of_range(lo: float, hi: float, bdf: bool) -> DigitalGrid:
    """The 16-bit (EDF) or 24-bit (BDF) grid over ``[lo, hi]`` µV, as the header stores it."""
    pmin, pmax = float(fmt_num(lo)), float(fmt_num(hi))
    dmin, dmax = BDF_RANGE if bdf else EDF_RANGE
    return DigitalGrid(pmin, pmax, dmin, dmax)


def grid_for(info: SourceInfo, bdf: bool | None = None) -> DigitalGrid:
    """The grid a recording of ``info`` uses: the ADC range, 16 bits (EDF) or 24 (BDF)."""
    if bdf is None:
        bdf = info.adc_bits > 16
    lo, hi = info.adc_range_uv
    if not hi > lo:
        raise ConfigError(f"invalid ADC range {info.adc_range_uv} of source {info.name}")
    return grid_of_range(lo, hi, bdf)


# ============================================================================ header
@dataclass(frozen=True)
class SignalHeader:
    """The per-signal header fields of one signal, as written."""

    label: str
    transducer: str
    unit: str
    pmin: str
    pmax: str
    dmin: int
    dmax: int
    prefilter: str
    n: int


def build_header(signals: list[SignalHeader], *, bdf: bool, patient: str, recording: str,
                 start: _dt.datetime, n_records: int, record_s: float) -> bytes:
    """The whole header (``256 * (signals + 1)`` bytes) of an EDF+C/BDF+C file."""
    ns = len(signals)
    h = bytearray()
    h += BDF_MAGIC if bdf else field("0", 8)
    h += field(patient, 80)
    h += field(recording, 80)
    h += field(start.strftime("%d.%m.%y"), 8)
    h += field(start.strftime("%H.%M.%S"), 8)
    h += field(str(256 * (ns + 1)), 8)
    h += field("BDF+C" if bdf else "EDF+C", 44)
    h += field(str(n_records), 8)
    h += field(fmt_num(record_s), 8)
    h += field(str(ns), 4)
    for name, width in SIGNAL_FIELDS:
        for s in signals:
            h += field("" if name == "reserved" else str(getattr(s, name)), width)
    assert len(h) == 256 * (ns + 1)
    return bytes(h)


def startdate(start: _dt.datetime) -> str:
    """The EDF+ ``Startdate`` subfield text, ``dd-MMM-yyyy``."""
    return f"{start.day:02d}-{MONTHS[start.month - 1]}-{start.year}"


def parse_start(head: bytes) -> _dt.datetime | None:
    """Start date and time of a 256-byte main header (the EDF+ ``Startdate`` subfield gives the
    4-digit year); ``None`` when unreadable."""
    try:
        d, mo, y = (int(v) for v in head[168:176].decode("ascii").strip().split("."))
        hh, mm, ss = (int(v) for v in head[176:184].decode("ascii").strip().split("."))
        year = 2000 + y if y < 85 else 1900 + y
        m = re.search(r"Startdate (\d\d)-([A-Z]{3})-(\d{4})", head[88:168].decode("latin-1"))
        if m and m.group(2) in MONTHS:
            year = int(m.group(3))
        return _dt.datetime(year, mo, d, hh, mm, ss)
    except (ValueError, UnicodeDecodeError):
        return None


def read_identity(path: Path | str) -> tuple[str, _dt.datetime | None]:
    """``(patient, start)`` from an EDF/BDF header: the first subfield of the patient field
    (``""`` for ``X``) and the start date and time; ``("", None)`` for a file that is not
    EDF/BDF or cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return "", None
    if len(head) < 256 or head[:8] not in (EDF_MAGIC, BDF_MAGIC):
        return "", None
    words = head[8:88].decode("latin-1").split()
    patient = words[0] if words and words[0] != "X" else ""
    return patient, parse_start(head)


# ============================================================================ annotations
def tal(onset: str, text: str, duration: str = "") -> bytes:
    """One TAL: ``+onset[\\x15duration]\\x14text\\x14\\x00``."""
    clean = text.replace("\x14", " ").replace("\x15", " ").replace("\x00", " ")
    dur = b"\x15" + duration.encode() if duration else b""
    return b"+" + onset.encode() + dur + b"\x14" + clean.encode("utf-8") + b"\x14\x00"


def parse_tals(block: bytes) -> list[tuple[float, float, list[str]]]:
    """Parse the TALs of one annotation block: ``[(onset_s, duration_s, [texts])]``."""
    out: list[tuple[float, float, list[str]]] = []
    for t in block.split(b"\x00"):
        if not t or t[:1] not in (b"+", b"-"):
            continue
        parts = t.split(b"\x14")
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
