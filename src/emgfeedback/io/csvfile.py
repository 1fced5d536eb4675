"""Plain CSV export of a chunk: a commented header, then one row per sample.

Format (read back by :func:`read_csv` and by any spreadsheet)::

    # emgfeedback csv v1
    # fs=1000
    # marker sample=1200 duration=3000 text=smile
    sample,EMG L-FRO,EMG L-OOC,...
    0,12.5,-3.1,...
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from emgfeedback.errors import FileFormatError
from emgfeedback.stream import Chunk, Marker

__all__ = ["read_csv", "write_csv"]


def write_csv(path: Path, chunk: Chunk, markers: Iterable[Marker] = ()) -> None:
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("# emgfeedback csv v1\n")
        f.write(f"# fs={chunk.fs:g}\n")
        for m in markers:
            f.write(f"# marker sample={m.sample} duration={m.duration} text={m.text}\n")
        f.write("sample," + ",".join(chunk.channels) + "\n")
        idx = np.arange(chunk.start, chunk.stop)[:, None]
        np.savetxt(f, np.hstack([idx, chunk.data]), delimiter=",",
                   fmt=["%d"] + ["%.4f"] * len(chunk.channels))


def read_csv(path: Path) -> tuple[Chunk, list[Marker]]:
    """Read a file written by :func:`write_csv`."""
    path = Path(path)
    fs = None
    markers: list[Marker] = []
    header: list[str] | None = None
    n_head = 0
    with path.open("r", encoding="utf-8") as f:
        for line in f:
            n_head += 1
            if line.startswith("# fs="):
                fs = float(line[5:])
            elif line.startswith("# marker "):
                parts = dict(p.split("=", 1) for p in line[9:].rstrip("\n").split(" ", 2))
                markers.append(Marker(int(parts["sample"]), int(parts["duration"]), parts["text"]))
            elif not line.startswith("#"):
                header = line.strip().split(",")
                break
    if fs is None or header is None or header[0] != "sample":
        raise FileFormatError(f"{path}: not an emgfeedback CSV (missing '# fs=' or header line)")
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=n_head, ndmin=2)
    except ValueError as exc:
        raise FileFormatError(f"{path}: damaged CSV data ({exc})") from None
    start = int(data[0, 0]) if len(data) else 0
    chunk = Chunk(np.ascontiguousarray(data[:, 1:]), start, fs, tuple(header[1:]))
    return chunk, markers
