"""Fix a recording after a crash (``emgfeedback repair``).

A recorder killed with ``kill -9`` leaves a header saying ``-1`` data records and maybe part of
a record at the end.  Our reader recovers such a file in memory; :func:`repair` makes it right
for every other tool: the true record count in the header, the partial record dropped (fsync'ed),
and the sidecar's ``status`` changed from ``recording`` to ``recovered``.
"""

from __future__ import annotations

import os
from pathlib import Path

from emgfeedback.io.edf.format import field
from emgfeedback.io.edf.reader import EdfRecording
from emgfeedback.io.edf.sidecar import (
    SIDECAR_FORMAT,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)

__all__ = ["repair"]


def repair(path: Path | str) -> str:
    """Fix a recording after a crash: true record count in the header, partial record dropped,
    sidecar marked ``recovered``.  Returns a one-line summary."""
    path = Path(path)
    rec = EdfRecording(path, repairing=True)
    nrec = int(rec.header["records"])
    rec_bytes = rec.record_bytes
    dur = nrec * rec.samples_per_record / rec.fs
    rec.close()
    with open(path, "r+b") as f:
        head = f.read(256)
        hbytes = int(head[184:192].decode("ascii").strip())
        old = head[236:244].decode("ascii").strip()
        size = os.fstat(f.fileno()).st_size
        want = hbytes + nrec * rec_bytes
        changed = old != str(nrec) or size != want
        if changed:
            f.seek(236)
            f.write(field(str(nrec), 8))
            f.truncate(want)
            f.flush()
            os.fsync(f.fileno())
    sc = read_sidecar(path)
    if sc.get("format") == SIDECAR_FORMAT and sc.get("status") == "recording":
        sc["status"] = "recovered"
        write_sidecar(sidecar_path(path), sc)
    if not changed:
        return f"{path}: nothing to repair ({nrec} records, {dur:.1f} s)"
    return (f"{path}: repaired: header now says {nrec} records ({dur:.1f} s; was {old}), "
            f"{size - want} bytes of a partial record removed")
