"""Reference definitions, computed sample by sample, that the fast paths are tested against."""

from __future__ import annotations

import numpy as np


def flat_reference(x: np.ndarray, thr: float, need: int) -> np.ndarray:
    """Flat per the definition, sample by sample: no difference above ``thr`` in the ``need``
    samples up to it (the stretch's first sample counts as a move)."""
    out = np.zeros(x.shape, dtype=bool)
    for c in range(x.shape[1]):
        last = 0
        for i in range(1, len(x)):
            if abs(x[i, c] - x[i - 1, c]) > thr:
                last = i
            out[i, c] = i - last >= need
    return out


def flags_in_blocks(flags: object, x: np.ndarray, step: int) -> np.ndarray:
    """The artefact bits of ``flags`` (a fresh :class:`emgfeedback.dsp.quality.ArtefactFlags`)
    over ``x`` fed ``step`` samples at a time (a block without flags counts as zeros)."""
    out = []
    for a in range(0, len(x), step):
        part = np.ascontiguousarray(x[a:a + step])
        b = flags.process(part, part, np.abs(part), a)  # type: ignore[attr-defined]
        out.append(np.zeros(part.shape, dtype=np.uint8) if b is None else b)
    return np.concatenate(out)
