"""``emgfeedback info``: what a file holds and how good the signal is.

The quality summary runs the live DSP chain over the file in blocks (constant memory): per channel
the RMS after the 20-450 Hz band-pass and mains notch (first second of each stretch skipped while
the filters settle; ``None`` when no stretch between gaps is longer than that), the mean
mains-interference RMS the chain's quality meter reports, and the
number of samples on the digital rails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.dsp.chain import Chain
from emgfeedback.io.importers import load
from emgfeedback.stream import Chunk, Status, rail_counts

__all__ = ["summarise"]


def summarise(path: Path | str, block_s: float = 10.0, **load_options: Any) -> dict[str, Any]:
    """A JSON-ready description of ``path`` (see the module docstring)."""
    with load(path, **{k: v for k, v in load_options.items() if v is not None}) as rec:
        nch = len(rec.channels)
        chain = Chain(rec.fs, nch, adc_range_uv=rec.rails_uv)
        ss = np.zeros(nch)
        cnt = 0
        mains = np.zeros(nch)
        nq = 0
        sat = np.zeros(nch, dtype=np.int64)
        settle = int(rec.fs)
        blk = max(1, int(block_s * rec.fs))
        prev_stop = 0
        for a, b in rec.segments():
            for s in range(a, b, blk):
                e = min(s + blk, b)
                x = rec.read(s, e)
                st = Status(lost_samples=s - prev_stop if s > prev_stop else 0)
                p = chain.process(Chunk(x, s, rec.fs, rec.channels, st))
                prev_stop = e
                skip = max(0, a + settle - s)
                f = p.filtered[skip:]
                ss += (f**2).sum(axis=0)
                cnt += len(f)
                mains += p.quality.mains_uv
                nq += 1
                sat += rail_counts(x, rec.rails_uv)
        # No stretch longer than the settling second: no measure (None, never NaN in JSON).
        rms: list[float | None] = [float(v) for v in np.sqrt(ss / cnt)] if cnt else [None] * nch
        mains_uv: list[float | None] = [float(v) for v in mains / nq] if nq else [None] * nch
        sc = rec.sidecar
        doc: dict[str, Any] = {
            "file": str(rec.path),
            "format": rec.format,
            "fs": rec.fs,
            "duration_s": rec.duration_s,
            "samples": rec.n_samples,
            "gaps": len(rec.gaps),
            "lost_samples": rec.lost_samples,
            "mains_hz": chain.mains,
            "channels": [{"label": c, "rms_uv": rms[k], "mains_uv": mains_uv[k],
                          "saturated": int(sat[k])} for k, c in enumerate(rec.channels)],
            "annotations": [{"onset_s": m.sample / rec.fs, "duration_s": m.duration / rec.fs,
                             "text": m.text} for m in rec.markers],
            "notes": list(rec.notes),
        }
        if sc:
            from emgfeedback.validate import PATIENT_REFUSED, patient_id_problem

            pid = sc.get("patient")
            why = patient_id_problem(pid) if pid is not None else sc.get(PATIENT_REFUSED)
            if why is None:
                doc["patient"] = pid
            else:  # an edited sidecar: never echo what could be a name or a birth date
                doc["notes"].append(f"patient id in the sidecar withheld: {why}")
            source = sc.get("source")
            board = source.get("board") if isinstance(source, dict) else None
            doc["board"] = board if isinstance(board, str) else None
            status = sc.get("status")
            doc["status"] = status if isinstance(status, str) else None
        return doc


