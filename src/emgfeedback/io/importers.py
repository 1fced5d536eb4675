"""Read the files people already have; the format is detected from the content, not the name.

=====================  ==========================================================================
format                 recognised by
=====================  ==========================================================================
EDF/EDF+/BDF/BDF+      the version field (``0`` or ``\\xffBIOSEMI``); ours or other tools'
OpenBCI GUI raw .txt   first line ``%OpenBCI Raw EXG Data`` (v5) or ``%OpenBCI Raw EEG Data`` (v4)
BrainFlow CSV          tab-separated numbers, no header, one column of unix timestamps; the board
                       is given (``board=``) or found by its column count (needs ``brainflow``)
BIOPAC text export     ``N msec/sample`` and ``N channels`` in the first lines (AcqKnowledge)
OpenSignals text       ``# Simple Text Format`` header (PLUX/BITalino/BioSPPy)
emgfeedback CSV        ``# emgfeedback csv v1`` (:mod:`emgfeedback.io.exporters`)
generic CSV/TSV        a header row of names; rate from ``fs=`` or from a time column
=====================  ==========================================================================

Every importer returns a :class:`~emgfeedback.recording.Recording` in microvolts.  Packet or
sample counters (OpenBCI ``Sample Index``, BrainFlow package number, a time column with missing
steps) become gaps, never interpolated values.  Unknown, damaged and truncated files raise
:class:`~emgfeedback.errors.FileFormatError` naming the file and the line or byte.

Unit decisions (recorded in ``Recording.notes``):

* BIOPAC: the unit under each channel name (``mV``, ``Volts``) is applied; channels whose name
  contains ``Raw`` are imported (all analog channels if none does); the ``Marker`` channel becomes
  markers; digital lines are skipped.
* OpenSignals: ADC counts of ``EMG`` channels are converted with the PLUX EMG transfer function
  ``(ADC / 2**n - 1/2) * VCC / G`` with ``VCC = 3 V`` and ``G = 1000`` (biosignalsplux); other
  labels stay in counts.
* Generic CSV/TSV: unit from ``unit=`` or a ``(mV)``/``[V]`` suffix in the header, else µV; a time
  column's unit from its name (``ms``/``s``) or, failing that, milliseconds when the median step
  is at least 0.5 and seconds otherwise.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.errors import ConfigError, FileFormatError
from emgfeedback.io.edf.format import BDF_MAGIC, EDF_MAGIC
from emgfeedback.recording import ArrayRecording, Recording
from emgfeedback.stream import Marker, SourceInfo
from emgfeedback.units import uv_per
from emgfeedback.vocabulary import format_marker

__all__ = ["FORMATS", "detect", "load"]

log = logging.getLogger(__name__)

# the most the gaps of an imported file may add to its timeline (see _place)
MAX_GAP_S = 600.0

FORMATS = ("edf", "openbci", "brainflow", "biopac", "opensignals", "emgfeedback-csv", "csv")
_LABEL_COLS = ("class", "label", "marker", "markers", "event", "events", "trigger", "stim",
               "marker channel")
_TIME_COLS = ("time", "t", "timestamp", "times", "seconds", "time_s", "time_ms", "time (s)",
              "time (ms)", "time [s]", "time [ms]", "ms", "sec")
_INDEX_COLS = ("sample", "sample index", "index", "sample_index", "n")


# ============================================================================ entry points
def detect(path: Path | str) -> str:
    """Name of the format of ``path`` (one of :data:`FORMATS`), from its first bytes."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path}: is a directory, not a recording") from None
    if not head:
        raise FileFormatError(f"{path}: empty file")
    if head[:8] in (EDF_MAGIC, BDF_MAGIC):
        return "edf"
    nul = head.find(b"\x00")
    if nul >= 0:
        raise FileFormatError(f"{path}: byte {nul}: binary content, not a supported format "
                              "(EDF/BDF, OpenBCI, BrainFlow, BIOPAC, OpenSignals, CSV/TSV)")
    text = head.decode("utf-8", "replace")
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    if first.startswith(("%OpenBCI Raw EXG Data", "%OpenBCI Raw EEG Data")):
        return "openbci"
    if first.startswith("# emgfeedback csv"):
        return "emgfeedback-csv"
    if first.startswith("# Simple Text Format"):
        return "opensignals"
    if len(lines) > 3 and re.match(r"^\s*[\d.]+\s*(msec|sec|usec|µsec)/sample", lines[1]) \
            and re.match(r"^\s*\d+\s+channels", lines[2]):
        return "biopac"
    body = [ln for ln in lines[:-1] if ln.strip()] or lines
    if body and "\t" in body[0] and all(_is_numeric_row(ln.split("\t")) for ln in body[:5]):
        row = [float(v) for v in body[0].split("\t") if v.strip()]
        if any(1e9 < v < 1e11 for v in row):
            return "brainflow"
    if body and any(_is_numeric_row(re.split(r"[,;\t]", ln)) for ln in body[:3]) \
            or (body and not _is_numeric_row(re.split(r"[,;\t]", body[0]))):
        return "csv"
    raise FileFormatError(f"{path}: line 1: unknown format (not EDF/BDF, OpenBCI, BrainFlow, "
                          "BIOPAC, OpenSignals or CSV/TSV)")


def load(path: Path | str, *, fs: float | None = None, unit: str | None = None,
         board: str | int | None = None, format: str | None = None) -> Recording:
    """Open ``path`` as a :class:`Recording` in µV (see the module docstring).

    Parameters
    ----------
    fs:
        Sample rate for files that do not state it (generic CSV/TSV without a time column).
    unit:
        Unit of the values in a generic CSV/TSV (``uV``, ``mV``, ``V``) or override for BIOPAC.
    board:
        BrainFlow board name or id for BrainFlow CSV files (detected when omitted).
    format:
        Skip detection (one of :data:`FORMATS`).
    """
    from emgfeedback.validate import input_file

    path = input_file(Path(path), "file")
    fmt = format or detect(path)
    if fmt == "edf":
        from emgfeedback.io.edf.reader import read_edf

        return read_edf(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        text = path.read_text(encoding="latin-1")
        log.info("%s: not UTF-8 (byte %d), read as Latin-1", path, exc.start)
    lines = text.splitlines()
    if fmt == "openbci":
        return _openbci(path, lines)
    if fmt == "brainflow":
        return _brainflow(path, lines, board)
    if fmt == "biopac":
        return _biopac(path, lines, unit)
    if fmt == "opensignals":
        return _opensignals(path, lines)
    if fmt in ("csv", "emgfeedback-csv"):
        return _generic(path, lines, fs, unit)
    raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# ============================================================================ helpers
def _is_numeric_row(parts: list[str]) -> bool:
    vals = [p.strip() for p in parts if p.strip()]
    if not vals:
        return False
    try:
        for v in vals:
            float(v)
    except ValueError:
        return False
    return True


def _table(path: Path, lines: list[str], first: int, sep: str | None, ncols: int,
           usecols: list[int] | None = None) -> np.ndarray:
    """Parse ``lines[first:]`` as a numeric table of ``ncols`` columns (blank lines skipped).

    Raises :class:`FileFormatError` naming the 1-based line of the first bad row.
    """
    rows = []
    want = usecols if usecols is not None else list(range(ncols))
    for i in range(first, len(lines)):
        ln = lines[i]
        if not ln.strip():
            continue
        parts = ln.split(sep) if sep else ln.split()
        if sep and parts and parts[-1].strip() == "" and len(parts) == ncols + 1:
            parts = parts[:-1]  # trailing separator (BIOPAC)
        if len(parts) < ncols:
            what = "truncated row" if i == len(lines) - 1 else "row"
            raise FileFormatError(f"{path}: line {i + 1}: {what} has {len(parts)} columns, "
                                  f"expected {ncols}")
        try:
            rows.append([_cell(parts[c]) for c in want])
        except ValueError:
            bad = next(parts[c] for c in want if not _isfloat(parts[c]))
            raise FileFormatError(f"{path}: line {i + 1}: {bad.strip()!r} is not a number") \
                from None
    if not rows:
        raise FileFormatError(f"{path}: line {first + 1}: no data rows")
    return np.asarray(rows, dtype=np.float64)


#: Cell texts other tools write for a missing value; they become NaN and then gaps (_place).
_MISSING = ("", "na", "n/a", "nan", "null", "none", "-")


def _cell(s: str) -> float:
    """A numeric cell; an empty or missing-value cell is NaN (made a gap by :func:`_place`)."""
    t = s.strip()
    if t.lower() in _MISSING:
        return float("nan")
    return float(t)


def _isfloat(s: str) -> bool:
    try:
        _cell(s)
        return True
    except ValueError:
        return False


def _from_counter(counter: np.ndarray, modulo: int) -> tuple[np.ndarray, int]:
    """Positions of rows from a wrapping packet counter: ``(positions, step)``."""
    c = np.asarray(np.rint(counter), dtype=np.int64)
    if len(c) < 2:
        return np.arange(len(c)), 1
    d = np.diff(c) % modulo
    nz = d[d > 0]
    step = int(np.bincount(nz).argmax()) if len(nz) else 1
    inc = np.where(d == 0, modulo, d)  # a full wrap is the only way to see the same value
    inc = np.maximum(1, np.rint(inc / step)).astype(np.int64)
    return np.concatenate([[0], np.cumsum(inc)]), step


def _place(path: Path, fmt: str, fs: float, channels: tuple[str, ...], values: np.ndarray,
           positions: np.ndarray | None, markers: list[Marker], info: SourceInfo | None,
           notes: list[str], sidecar: dict[str, Any] | None = None) -> ArrayRecording:
    """Put rows at their sample positions; missing positions become gaps (NaN).

    A row with a missing or non-finite value in any signal column (an empty cell, ``NaN``,
    ``inf``) is not data: the whole row becomes part of a gap, as a lost sample does (gaps are
    per sample, for all channels: ``Status.lost_samples`` has no channel).  ``markers`` are in
    rows when ``positions`` is given, else in samples.

    Resource bound: the gaps may add at most :data:`MAX_GAP_S` seconds (or the recorded
    duration, if longer) to the timeline; a time column jumping further is refused, so a small
    file can never make a reader allocate gigabytes."""
    from emgfeedback.validate import check_rate

    check_rate(fs, f"{path}: sample rate")
    gaps: list[tuple[int, int]] = []
    finite = np.isfinite(values).all(axis=1) if values.ndim == 2 else np.ones(0, bool)
    if len(values) and not finite.all():
        if not finite.any():
            raise FileFormatError(f"{path}: no row has a value in every signal column")
        rows = np.arange(len(values)) if positions is None else np.asarray(positions)
        rows = rows - rows[0]
        markers = [Marker(int(rows[min(max(m.sample, 0), len(rows) - 1)]), m.duration, m.text)
                   for m in markers]  # markers now in samples
        nbad = int((~finite).sum())
        notes.append(f"{nbad} rows with a missing or non-finite value (empty cell, NaN, inf) "
                     "are gaps")
        first = int(rows[finite][0])
        markers = [Marker(max(0, m.sample - first), m.duration, m.text) for m in markers]
        positions = rows[finite]
        values = values[finite]
        # markers are now in samples relative to the first kept row: map them to rows of the
        # kept values for the placement below
        markers = [Marker(int(np.searchsorted(positions - positions[0], m.sample)), m.duration,
                          m.text) for m in markers]
    if positions is None or len(values) == 0:
        data = values
        n = len(values)
    else:
        pos = positions - positions[0]
        n = int(pos[-1]) + 1
        if (np.diff(pos) < 1).any():
            row = int(np.flatnonzero(np.diff(pos) < 1)[0]) + 1
            raise FileFormatError(f"{path}: row {row + 1} of the data: time goes backwards or "
                                  "repeats")
        allowed = len(values) + max(len(values), int(MAX_GAP_S * fs))
        if n > allowed:
            j = int(np.argmax(np.diff(pos)))
            raise FileFormatError(
                f"{path}: row {j + 2} of the data: time jumps by {int(pos[j + 1] - pos[j])} "
                f"samples ({(pos[j + 1] - pos[j]) / fs:.6g} s); gaps may add at most "
                f"{MAX_GAP_S:g} s (or the recorded duration) to a recording: is the time "
                "column or the rate wrong?")
        if n == len(values):
            data = values
        else:
            data = np.full((n, values.shape[1]), np.nan)
            data[pos] = values
            jumps = np.flatnonzero(np.diff(pos) > 1)
            gaps = [(int(pos[j] + 1), int(pos[j + 1] - pos[j] - 1)) for j in jumps]
            notes.append(f"{sum(g[1] for g in gaps)} missing samples in {len(gaps)} gaps")
        markers = [Marker(int(pos[min(m.sample, len(pos) - 1)]), m.duration, m.text)
                   for m in markers]
    info = info or SourceInfo(name=f"replay:{path.name}", fs=fs, channels=channels, board=fmt)
    return ArrayRecording(path=path, format=fmt, fs=fs, channels=channels, n_samples=n,
                          markers=markers, gaps=gaps, sidecar=sidecar or {}, info=info,
                          notes=notes, data=np.ascontiguousarray(data, dtype=np.float64))


def _placed_rows(path: Path, t: np.ndarray, col: int, what: str, notes: list[str]
                 ) -> np.ndarray:
    """Drop rows whose position column (counter, index, time) is missing: such a row cannot be
    placed, and the rows around it then show the gap."""
    ok = np.isfinite(t[:, col])
    if ok.all():
        return t
    if not ok.any():
        raise FileFormatError(f"{path}: the {what} column has no values")
    notes.append(f"{int((~ok).sum())} rows without a {what} value dropped (they are gaps)")
    kept: np.ndarray = t[ok]
    return kept


def _label_markers(values: np.ndarray, name: str, skip_zero: bool = True) -> list[Marker]:
    """Markers where a label column changes; duration = run length (rows)."""
    out: list[Marker] = []
    if len(values) == 0:
        return out
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    change = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
    ends = np.concatenate([change[1:], [len(v)]])
    for a, b in zip(change, ends):
        val = v[a]
        if skip_zero and val == 0:
            continue
        txt = f"{int(val)}" if float(val).is_integer() else f"{val:g}"
        out.append(Marker(int(a), int(b - a), f"{name} {txt}"))
    return out


def _pulse_markers(values: np.ndarray) -> list[Marker]:
    """Instant markers where a marker column holds a non-zero value (first row of a run)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    on = np.flatnonzero((v != 0) & np.concatenate([[True], v[1:] != v[:-1]]))
    return [Marker(int(i), 0, format_marker(f"{v[i]:g}")) for i in on]


# ============================================================================ OpenBCI GUI
def _openbci(path: Path, lines: list[str]) -> Recording:
    meta: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].startswith("%"):
        k, _, v = lines[i][1:].partition("=")
        meta[k.strip().lower()] = v.strip()
        i += 1
    rate = meta.get("sample rate", "")
    m = re.match(r"([\d.]+)", rate)
    if not m:
        raise FileFormatError(f"{path}: line 3: no '%Sample Rate = N Hz' header line")
    fs = float(m.group(1))
    if i >= len(lines):
        raise FileFormatError(f"{path}: line {i + 1}: header ends without data")
    header = [h.strip() for h in lines[i].split(",")]
    if header[0] != "Sample Index":  # v4 files have no column header line
        nch = int(meta.get("number of channels", "8") or 8)
        header = ["Sample Index"] + [f"EXG Channel {k}" for k in range(nch)]
        header += [f"col{k}" for k in range(len(lines[i].split(",")) - len(header))]
        first = i
    else:
        first = i + 1
    exg = [k for k, h in enumerate(header) if h.startswith(("EXG Channel", "EEG Channel"))]
    if not exg:
        raise FileFormatError(f"{path}: line {i + 1}: no 'EXG Channel' columns")
    mcol = header.index("Marker Channel") if "Marker Channel" in header else None
    use = [0] + exg + ([mcol] if mcol is not None else [])
    ncols = max(use) + 1
    t = _table(path, lines, first, ",", ncols, use)
    pre_notes: list[str] = []
    t = _placed_rows(path, t, 0, "Sample Index", pre_notes)
    pos, step = _from_counter(t[:, 0], 256)
    markers = _pulse_markers(t[:, -1]) if mcol is not None else []
    board = meta.get("board", "OpenBCI")
    channels = tuple(f"EXG {header[k].split()[-1]}" for k in exg)
    notes = [f"OpenBCI GUI file, board {board}, sample index step {step}", *pre_notes]
    info = SourceInfo(name=f"replay:{path.name}", fs=fs, channels=channels, board=board,
                      adc_bits=24, adc_range_uv=(-187500.0, 187500.0),
                      extra={"format": "OpenBCI GUI"})
    sidecar = _started_from_unix(lines[first].split(",")[header.index("Timestamp")]
                                 if "Timestamp" in header and first < len(lines) else None)
    return _place(path, "OpenBCI GUI", fs, channels, t[:, 1 : 1 + len(exg)], pos, markers,
                  info, notes, sidecar)


def _started_from_unix(value: str | float | None) -> dict[str, Any]:
    """``{"started": ISO time}`` from a Unix timestamp a file carries (OpenBCI, BrainFlow), as
    the local wall-clock time our own recordings store; ``{}`` when it is not a plausible one."""
    try:
        t = float(value) if value is not None else float("nan")
    except ValueError:
        return {}
    if not 1e9 < t < 1e11:
        return {}
    import datetime as _dt

    return {"started": _dt.datetime.fromtimestamp(t).isoformat(timespec="seconds")}


# ============================================================================ BrainFlow CSV
def _brainflow(path: Path, lines: list[str], board: str | int | None) -> Recording:
    body = [ln for ln in lines if ln.strip()]
    ncols = len(body[0].split("\t"))
    try:
        from brainflow.board_shim import BoardIds, BoardShim
    except ImportError:
        raise FileFormatError(f"{path}: BrainFlow CSV needs the 'brainflow' package to know the "
                              "board layout (pip install emgfeedback[brainflow])") from None
    t = _table(path, lines, 0, "\t", ncols)
    notes: list[str] = []
    if board is None:
        BoardShim.disable_board_logger()  # it logs an error for every board without a layout
        cands = []
        for b in BoardIds:
            try:
                if BoardShim.get_num_rows(b.value) != ncols:
                    continue
                ts = BoardShim.get_timestamp_channel(b.value)
            except Exception:  # boards without a description in this brainflow version
                continue
            if 1e9 < t[0, ts] < 1e11:
                span = t[-1, ts] - t[0, ts]
                est = (len(t) - 1) / span if span > 0 else 0.0
                fsb = BoardShim.get_sampling_rate(b.value)
                cands.append((0 if est and abs(est / fsb - 1) < 0.25 else 1, b))
        if not cands:
            raise FileFormatError(f"{path}: line 1: no BrainFlow board has {ncols} columns with "
                                  "a timestamp where this file has one; give --brainflow-board")
        pref = [BoardIds.CYTON_BOARD, BoardIds.CYTON_DAISY_BOARD, BoardIds.GANGLION_BOARD,
                BoardIds.SYNTHETIC_BOARD]
        cands.sort(key=lambda c: (c[0], pref.index(c[1]) if c[1] in pref else len(pref)))
        bid = cands[0][1].value
        others = [c[1].name for c in cands[1:] if c[0] == cands[0][0]]
        notes.append(f"board detected from the layout and timestamps: {cands[0][1].name}"
                     + (f" (also fits: {', '.join(others[:3])}; give the board to be sure)"
                        if others else ""))
    else:
        try:
            bid = int(board) if str(board).lstrip("-").isdigit() else BoardIds[str(board).upper()].value
        except KeyError:
            raise ConfigError(f"unknown BrainFlow board {board!r}") from None
        if BoardShim.get_num_rows(bid) != ncols:
            raise FileFormatError(f"{path}: line 1: {ncols} columns, board {board} writes "
                                  f"{BoardShim.get_num_rows(bid)}")
    fs = float(BoardShim.get_sampling_rate(bid))
    try:
        emg = list(BoardShim.get_emg_channels(bid))
    except Exception:
        emg = list(BoardShim.get_exg_channels(bid))
    pk = BoardShim.get_package_num_channel(bid)
    t = _placed_rows(path, t, pk, "package number", notes)
    pos, _ = _from_counter(t[:, pk], 256)
    markers: list[Marker] = []
    try:
        mk = BoardShim.get_marker_channel(bid)
        markers = _pulse_markers(t[:, mk])
    except Exception:
        pass
    name = BoardIds(bid).name
    channels = tuple(f"EXG {k}" for k in range(len(emg)))
    info = SourceInfo(name=f"replay:{path.name}", fs=fs, channels=channels, board=name,
                      extra={"format": "BrainFlow CSV", "brainflow_board": bid})
    sidecar = _started_from_unix(t[0, BoardShim.get_timestamp_channel(bid)] if len(t) else None)
    return _place(path, "BrainFlow CSV", fs, channels, t[:, emg], pos, markers, info, notes,
                  sidecar)


# ============================================================================ BIOPAC
def _biopac(path: Path, lines: list[str], unit: str | None) -> Recording:
    m = re.match(r"^\s*([\d.]+)\s*(msec|sec|usec|µsec)/sample", lines[1])
    assert m is not None
    per = float(m.group(1)) * {"msec": 1e-3, "sec": 1.0, "usec": 1e-6, "µsec": 1e-6}[m.group(2)]
    if not per > 0:
        raise FileFormatError(f"{path}: line 2: {lines[1].strip()!r} is not a sample interval "
                              "(it must be positive)")
    fs = round(1.0 / per, 6)
    nch = int(lines[2].split()[0])
    names, units = [], []
    for k in range(nch):
        try:
            names.append(lines[3 + 2 * k].strip())
            units.append(lines[4 + 2 * k].strip())
        except IndexError:
            raise FileFormatError(f"{path}: line {len(lines) + 1}: header ends after "
                                  f"{k} of {nch} channel descriptions") from None
    hdr = 3 + 2 * nch
    if hdr >= len(lines) or not lines[hdr].startswith("CH"):
        raise FileFormatError(f"{path}: line {hdr + 1}: expected the 'CH1,CH2,...' column line")
    first = hdr + 1
    notes: list[str] = []
    row = [p for p in lines[first].split(",") if p.strip()] if first < len(lines) else []
    if len(row) == nch and len(set(row)) == 1 and row[0].strip().isdigit():
        notes.append(f"line {first + 1}: sample count row ({row[0].strip()}) skipped")
        first += 1
    raw = [k for k, n in enumerate(names) if "raw" in n.lower()]
    if not raw:
        raw = [k for k, n in enumerate(names)
               if not n.lower().startswith("digital") and n.lower() != "marker"]
    mcol = next((k for k, n in enumerate(names) if n.lower() == "marker"), None)
    use = raw + ([mcol] if mcol is not None else [])
    t = _table(path, lines, first, ",", nch, use)
    scale = []
    for k in raw:
        uv = uv_per(unit or units[k])
        if uv is None:
            raise FileFormatError(f"{path}: line {4 + 2 * k + 1}: unit {units[k]!r} of "
                                  f"{names[k]!r} is not a voltage")
        scale.append(uv)
    x = t[:, : len(raw)] * np.asarray(scale)
    for j, k in enumerate(raw):
        col = x[:, j][np.isfinite(x[:, j])]
        rms = float(np.sqrt(np.mean((col - col.mean()) ** 2))) if len(col) else 0.0
        if rms > 5000.0:
            notes.append(f"channel {names[k]!r} is labelled {units[k]!r}: its RMS would be "
                         f"{rms:.0f} µV, implausible for sEMG (a mislabelled unit? "
                         "use unit='mV' to override)")
    markers = _pulse_markers(t[:, -1]) if mcol is not None else []
    channels = tuple(("EMG " + names[k].replace(" Raw", ""))[:16] for k in raw)
    info = SourceInfo(name=f"replay:{path.name}", fs=fs, channels=channels,
                      board="BIOPAC AcqKnowledge text export",
                      extra={"format": "BIOPAC text", "source_file": lines[0].strip()})
    skipped = [n for k, n in enumerate(names) if k not in use]
    if skipped:
        notes.append(f"skipped channels: {', '.join(skipped)}")
    return _place(path, "BIOPAC text", fs, channels, x, None, markers, info, notes)


# ============================================================================ OpenSignals
def _opensignals(path: Path, lines: list[str]) -> Recording:
    meta: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        k, _, v = lines[i][1:].partition(":=")
        meta[k.strip().lower()] = v.strip()
        i += 1
    try:
        fs = float(meta["sampling rate (hz)"])
        bits = int(float(meta.get("resolution", "0") or 0))
    except (KeyError, ValueError):
        raise FileFormatError(f"{path}: line 2: missing or bad '# Sampling Rate (Hz):=' "
                              "header") from None
    labels = meta.get("labels", "").split() or ["A1"]
    t = _table(path, lines, i, None, len(labels))
    notes = []
    x = t.copy()
    for c, lab in enumerate(labels):
        if lab.upper().startswith("EMG") and bits > 0:
            x[:, c] = (t[:, c] / 2**bits - 0.5) * 3.0 / 1000.0 * 1e6
            notes.append(f"{lab}: ADC counts converted with the PLUX EMG transfer function "
                         f"(VCC 3 V, gain 1000, {bits} bits), an assumption: the file does not "
                         "name the device")
        else:
            notes.append(f"{lab}: kept in ADC counts")
    channels = tuple(lab if lab.upper().startswith("EMG") else f"{lab}" for lab in labels)
    info = SourceInfo(name=f"replay:{path.name}", fs=fs, channels=channels,
                      board="OpenSignals text", adc_bits=bits,
                      adc_range_uv=(-1500.0, 1500.0) if bits else (-5000.0, 5000.0),
                      extra={"format": "OpenSignals text"})
    return _place(path, "OpenSignals text", fs, channels, x, None, [], info, notes)


# ============================================================================ generic CSV/TSV
def _unit_of(name: str) -> tuple[str, float | None]:
    m = re.search(r"[\(\[]\s*([µμu]?[mn]?V|volts?)\s*[\)\]]\s*$|_(uV|mV|V)$", name, re.I)
    if not m:
        return name, None
    u = (m.group(1) or m.group(2)).lower()
    return name[: m.start()].strip(), uv_per(u)


def _generic(path: Path, lines: list[str], fs: float | None, unit: str | None) -> Recording:
    meta_fs = None
    markers: list[Marker] = []
    i = 0
    is_ours = bool(lines) and lines[0].startswith("# emgfeedback csv")
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        ln = lines[i]
        if ln.startswith("# fs="):
            try:
                meta_fs = float(ln[5:])
            except ValueError:
                raise FileFormatError(f"{path}: line {i + 1}: bad rate {ln[5:]!r}") from None
        elif ln.startswith("# marker "):
            mm = re.match(r"# marker sample=(-?\d+) duration=(\d+) text=(.*)$", ln)
            if not mm:
                raise FileFormatError(f"{path}: line {i + 1}: bad marker line")
            markers.append(Marker(int(mm.group(1)), int(mm.group(2)), mm.group(3)))
        i += 1
    if i >= len(lines):
        raise FileFormatError(f"{path}: line {i + 1}: no data")
    head = lines[i]
    sep = "\t" if head.count("\t") >= max(head.count(","), head.count(";")) and "\t" in head \
        else ";" if head.count(";") > head.count(",") else ","
    parts = [p.strip() for p in head.split(sep)]
    if _is_numeric_row(parts):
        names = [f"ch{k + 1}" for k in range(len(parts))]
        first = i
    else:
        names = parts
        first = i + 1
    t = _table(path, lines, first, sep, len(names))
    low = [n.lower() for n in names]
    tcol = next((k for k, n in enumerate(low) if n in _TIME_COLS), None)
    icol = next((k for k, n in enumerate(low) if n in _INDEX_COLS), None)
    lcols = [k for k, n in enumerate(low) if n in _LABEL_COLS]
    chans = [k for k in range(len(names)) if k not in (tcol, icol) and k not in lcols]
    if not chans:
        raise FileFormatError(f"{path}: line {i + 1}: no signal columns")
    notes: list[str] = []
    if icol is not None or tcol is not None:
        k = icol if icol is not None else tcol
        assert k is not None
        t = _placed_rows(path, t, k, names[k], notes)
    rate = fs or meta_fs
    positions: np.ndarray | None = None
    for col, what in ((icol, "sample index"), (tcol, "time")):
        if col is not None:
            bad_rows = np.flatnonzero(~(np.abs(t[:, col]) < 2.0**52))  # NaN, inf, absurd
            if len(bad_rows):
                raise FileFormatError(f"{path}: line {int(bad_rows[0]) + first + 2}: {what} "
                                      f"{t[int(bad_rows[0]), col]!r} is not a finite position")
    if icol is not None:
        positions = np.rint(t[:, icol]).astype(np.int64)
        if np.any(np.diff(positions) <= 0):
            bad = int(np.flatnonzero(np.diff(positions) <= 0)[0]) + first + 2
            raise FileFormatError(f"{path}: line {bad}: sample index does not increase")
        start0 = int(positions[0])
        markers = [Marker(m.sample - start0, m.duration, m.text) for m in markers]
        markers = [Marker(int(np.searchsorted(positions - start0, m.sample)), m.duration, m.text)
                   for m in markers]  # row of the marker's sample, _place maps it back
    elif tcol is not None:
        tt = t[:, tcol]
        d = np.diff(tt)
        if np.any(d <= 0):
            bad = int(np.flatnonzero(d <= 0)[0]) + first + 2
            raise FileFormatError(f"{path}: line {bad}: time does not increase")
        step = float(np.median(d)) if len(d) else 1.0
        tname = low[tcol]
        in_ms = "ms" in tname or ("s" not in tname.replace("time", "").replace("seconds", "s")
                                  and step >= 0.5)
        if tname in ("seconds", "sec", "time_s", "time (s)", "time [s]"):
            in_ms = False
        sec = tt / 1000.0 if in_ms else tt
        if rate is None:
            rate = float(round(1.0 / float(np.median(np.diff(sec))), 3))
            notes.append(f"rate {rate:g} Hz from the time column ({'ms' if in_ms else 's'})")
        positions = np.rint((sec - sec[0]) * rate).astype(np.int64)
        if np.any(np.diff(positions) <= 0):
            notes.append("time column has steps shorter than a sample; rows placed in order")
            positions = np.maximum.accumulate(positions)
            positions = positions + np.concatenate([[0], np.cumsum(np.diff(positions) == 0)])
    if rate is None:
        raise FileFormatError(f"{path}: the sample rate is not in the file; give it with --fs")
    for k in lcols:
        markers += _label_markers(t[:, k], names[k])
    markers.sort(key=lambda m: m.sample)
    scale = []
    labels = []
    for k in chans:
        lab, sc = _unit_of(names[k])
        if unit is not None:
            sc = uv_per(unit)
            if sc is None:
                raise ConfigError(f"unknown unit {unit!r}; use uV, mV or V")
        scale.append(1.0 if sc is None else sc)
        labels.append(lab[:16])
    if unit is None and all(s is None for s in (_unit_of(names[k])[1] for k in chans)) \
            and not is_ours:
        notes.append("values taken as µV (no unit given)")
    x = t[:, chans] * np.asarray(scale)
    fmt = "emgfeedback CSV" if is_ours else ("TSV" if sep == "\t" else "CSV")
    return _place(path, fmt, float(rate), tuple(labels), x, positions, markers, None, notes)

