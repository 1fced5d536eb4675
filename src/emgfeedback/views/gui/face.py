"""The face map's geometry, read from the placement figure ``data/placement.svg`` (no Qt).

The figure draws each electrode pair as a short line between two dots, coloured by side (orange:
the patient's left, on the right of the picture; blue: the patient's right), followed by the
region's code.  :func:`face_sites` reads those pairs, so the face map lights the regions exactly
where the placement figure puts the electrodes; :data:`FACE` is the outline the figure draws
(face, eyes, brows, nose, mouth), in the same coordinates.
"""

from __future__ import annotations

import functools
import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

__all__ = ["FACE", "face_sites"]

log = logging.getLogger(__name__)

_SIDE_COLOUR = {"#e0703a": "L", "#3a8ee0": "R"}
_NS = "{http://www.w3.org/2000/svg}"

#: The face outline of the figure: (kind, cx, cy, rx, ry) ellipses and the mouth (viewBox units).
FACE: dict[str, Any] = {
    "viewbox": (150.0, 170.0, 340.0, 480.0),  # x, y, width, height around the face
    "face": (320.0, 400.0, 150.0, 230.0),
    "ears": ((166.0, 410.0, 16.0, 44.0), (474.0, 410.0, 16.0, 44.0)),
    "eyes": ((268.0, 330.0, 30.0, 12.0), (372.0, 330.0, 30.0, 12.0)),
    "brows": (((238.0, 292.0), (268.0, 276.0), (300.0, 288.0)),
              ((340.0, 288.0), (372.0, 276.0), (402.0, 292.0))),
    "nose": ((320.0, 340.0), (306.0, 420.0), (334.0, 420.0)),
    "mouth_ellipse": (320.0, 514.0, 44.0, 11.0),
}


@functools.lru_cache(maxsize=4)
def face_sites(path: Path | None = None) -> dict[tuple[str, str], tuple[float, float]]:
    """``{(side, code): (x, y)}``: the centre of each electrode pair in the figure's coordinates.

    ``path`` defaults to the package's placement figure; an absent or unreadable figure gives
    ``{}`` (the face map then says it has no figure).
    """
    from emgfeedback.views.summary import placement_svg_path

    p = path or placement_svg_path()
    if p is None:
        return {}
    try:
        root = ET.parse(p).getroot()
    except (OSError, ET.ParseError) as exc:
        log.warning("placement figure %s unreadable: %s", p, exc)
        return {}
    out: dict[tuple[str, str], tuple[float, float]] = {}
    pending: tuple[str, float, float] | None = None
    for el in root.iter():
        tag = el.tag.replace(_NS, "")
        if tag == "line" and el.get("stroke") in _SIDE_COLOUR and el.get("stroke-width") == "2":
            x = (float(el.get("x1", 0)) + float(el.get("x2", 0))) / 2.0
            y = (float(el.get("y1", 0)) + float(el.get("y2", 0))) / 2.0
            pending = (_SIDE_COLOUR[str(el.get("stroke"))], x, y)
        elif tag == "text" and pending is not None:
            code = "".join(el.itertext()).strip().upper()
            if len(code) == 3 and code.isalpha():
                out[(pending[0], code)] = (pending[1], pending[2])
            pending = None
    return out
