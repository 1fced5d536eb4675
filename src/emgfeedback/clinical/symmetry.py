"""Left/right symmetry of the target region per rep (docs/domain.md, "Symmetry").

For each rep recorded on both sides, the target's mean %MVC while active on the affected (A) and
unaffected (U) side gives ``ratio = A / U`` (1 = symmetric, < 1 the affected side does less) and
the laterality index ``LI = (A − U) / (A + U)`` (Machetanz 2022: −1 .. 1, 0 = symmetric).  When the
affected side is unknown, A is the left side and U the right (``"affected": null`` in JSON).
Each side is normalised by its own MVC, so the ratio compares effort relative to each side's
capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emgfeedback.clinical.detect import RepResult

__all__ = ["symmetry"]


def _level(r: RepResult) -> float:
    return r.target_mean_active_pct_mvc if r.target_mean_active_pct_mvc > 0 else max(
        r.target_peak_pct_mvc, 0.0)


def symmetry(reps: Sequence[RepResult], affected_side: str | None, fs: float
             ) -> list[dict[str, Any]]:
    """One entry per rep that has a result on both sides (JSON-ready)."""
    by_rep: dict[int, dict[str, RepResult]] = {}
    for r in reps:
        by_rep.setdefault(r.rep, {})[r.side] = r
    out: list[dict[str, Any]] = []
    for idx in sorted(by_rep):
        sides = by_rep[idx]
        if "L" not in sides or "R" not in sides:
            continue
        a_side = affected_side or "L"
        u_side = "R" if a_side == "L" else "L"
        a, u = _level(sides[a_side]), _level(sides[u_side])
        ratio = a / u if u > 0 else None
        li = (a - u) / (a + u) if a + u > 0 else None
        out.append({
            "rep": idx,
            "exercise": sides["L"].exercise,
            "onset_s": round(sides["L"].start / fs, 4),
            "target": sides["L"].target.split("-", 1)[1],
            "affected": affected_side,
            "left_pct_mvc": round(_level(sides["L"]), 2),
            "right_pct_mvc": round(_level(sides["R"]), 2),
            "ratio": None if ratio is None else round(ratio, 4),
            "laterality_index": None if li is None else round(li, 4),
        })
    return out
