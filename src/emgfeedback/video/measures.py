"""Per-side face measures from face-mesh landmarks (pure NumPy; no OpenCV, no model).

Input: landmarks of MediaPipe Face Mesh's canonical 468-point topology in image pixels, an array
``(frames, 468, 2)`` with NaN rows for frames without a face.  Output, per frame and per side of
the *patient* (``L``/``R``, not image left/right):

``eye_aperture``
    palpebral fissure height / width: the mean of three upper-to-lower lid distances divided by
    the corner-to-corner width of the same eye (about 0.3 open, below 0.1 closed).
``corner``
    the mouth corner's position in the face frame.
``brow``
    the brow's height above the line through the two outer eye corners.

Everything is expressed in a **face frame**: origin midway between the outer eye corners, x along
the line from one outer eye corner to the other, y perpendicular to it (down), unit length = the
distance between the outer eye corners (inter-ocular distance, IOD).  This removes the face's
position, size and in-plane roll, so left and right and frames at different distances compare.
Out-of-plane rotation (yaw) is not corrected: :attr:`FaceGeometry.frontal` is false when the two
eye widths differ by more than :data:`MAX_YAW_RATIO` (the head is turned) and those frames are left
out of the rest reference and of video events.

:func:`relative` then normalises to the patient's rest (:class:`Rest`): eye aperture as a fraction
of the rest aperture, mouth-corner excursion as the distance from the rest position (IOD units),
brow height as a fraction of the rest height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emgfeedback.errors import ConfigError

__all__ = ["FaceGeometry", "MAX_YAW_RATIO", "Relative", "Rest", "USED_LANDMARKS", "geometry",
           "relative", "rest_of"]

N_LANDMARKS = 468

@dataclass(frozen=True)
class _Side:
    """Landmark indices of one side of the face as the mesh numbers it."""

    outer: int
    inner: int
    lids: tuple[tuple[int, int], ...]
    corner: int
    brow: tuple[int, ...]


#: Landmark indices per *image* side: the mesh numbers the eye on the image's left 33/133 (in a
#: frame that is not mirrored, the patient's right eye).
_IMAGE_LEFT = _Side(33, 133, ((160, 144), (159, 145), (158, 153)), 61, (70, 63, 105, 66, 107))
_IMAGE_RIGHT = _Side(263, 362, ((385, 380), (386, 374), (387, 373)), 291,
                     (300, 293, 334, 296, 336))

#: Every landmark the measures read (eye corners and lids, mouth corners, brows): what a session
#: stores per frame (``video/live.py``) and what the mirror view draws.
USED_LANDMARKS: tuple[int, ...] = tuple(sorted({
    i for s in (_IMAGE_LEFT, _IMAGE_RIGHT)
    for i in (s.outer, s.inner, s.corner, *s.brow, *(k for pair in s.lids for k in pair))}))

#: Frames whose left and right eye widths differ by more than this ratio are not frontal.
MAX_YAW_RATIO = 1.35


@dataclass(frozen=True)
class FaceGeometry:
    """Per-frame raw measures, each an array over frames (NaN where there is no face).

    ``eye_aperture[side]`` (frames,), ``corner[side]`` (frames, 2), ``brow[side]`` (frames,);
    ``found`` and ``frontal`` are boolean (frames,); ``iod_px`` is the face size in pixels.
    """

    eye_aperture: dict[str, np.ndarray]
    corner: dict[str, np.ndarray]
    brow: dict[str, np.ndarray]
    found: np.ndarray
    frontal: np.ndarray
    iod_px: np.ndarray

    def __len__(self) -> int:
        return int(self.found.shape[0])


def _sides(mirrored: bool) -> dict[str, _Side]:
    # In a camera image that is not mirrored, the patient's right side is on the image's left.
    return ({"R": _IMAGE_RIGHT, "L": _IMAGE_LEFT} if mirrored
            else {"R": _IMAGE_LEFT, "L": _IMAGE_RIGHT})


def geometry(landmarks: np.ndarray, mirrored: bool = False) -> FaceGeometry:
    """Per-side raw measures of ``landmarks`` ``(frames, 468, 2)`` (pixels, NaN = no face).

    ``mirrored`` says the frames were flipped left-right (a mirror view) before the landmarks
    were found, so that image sides map to the patient's sides correctly.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1] < N_LANDMARKS or lm.shape[2] < 2:
        raise ConfigError(f"face landmarks must be (frames, {N_LANDMARKS}, 2), got {lm.shape}")
    lm = lm[:, :N_LANDMARKS, :2]
    found = np.all(np.isfinite(lm[:, list(USED_LANDMARKS)]), axis=(1, 2))  # the points measured
    a, b = lm[:, _IMAGE_LEFT.outer], lm[:, _IMAGE_RIGHT.outer]
    axis = b - a
    iod = np.hypot(axis[:, 0], axis[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        ux = axis / iod[:, None]
    uy = np.stack([-ux[:, 1], ux[:, 0]], axis=1)  # x rotated +90 degrees: image "down"
    origin = (a + b) / 2.0

    def to_face(p: np.ndarray) -> np.ndarray:
        d = p - origin
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.stack([(d * ux).sum(1), (d * uy).sum(1)], axis=1) / iod[:, None]

    eye: dict[str, np.ndarray] = {}
    corner: dict[str, np.ndarray] = {}
    brow: dict[str, np.ndarray] = {}
    widths: dict[str, np.ndarray] = {}
    for side, ix in _sides(mirrored).items():
        width = np.linalg.norm(lm[:, ix.outer] - lm[:, ix.inner], axis=1)
        height = np.mean([np.linalg.norm(lm[:, u] - lm[:, d], axis=1) for u, d in ix.lids],
                         axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            eye[side] = height / width
        widths[side] = width
        corner[side] = to_face(lm[:, ix.corner])
        # Height above the eye line: minus the face-frame y (y points down).
        brow[side] = -to_face(lm[:, list(ix.brow)].mean(axis=1))[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        yaw = widths["L"] / widths["R"]
    frontal = found & (yaw < MAX_YAW_RATIO) & (yaw > 1.0 / MAX_YAW_RATIO)
    return FaceGeometry(eye, corner, brow, found, frontal, iod)


@dataclass(frozen=True)
class Rest:
    """The patient's rest reference per side: median eye aperture, mouth-corner position and
    brow height over the rest frames."""

    eye_aperture: dict[str, float]
    corner: dict[str, tuple[float, float]]
    brow: dict[str, float]
    frames: int

    def to_json(self) -> dict[str, object]:
        return {"frames": self.frames,
                "eye_aperture": {s: round(v, 4) for s, v in self.eye_aperture.items()},
                "mouth_corner": {s: [round(c, 4) for c in v] for s, v in self.corner.items()},
                "brow_height": {s: round(v, 4) for s, v in self.brow.items()}}


def rest_of(g: FaceGeometry, frames: np.ndarray) -> Rest:
    """The rest reference from the frames selected by ``frames`` (a boolean mask or indices);
    only frontal frames with a face count."""
    sel = np.zeros(len(g), dtype=bool)
    sel[np.asarray(frames)] = True
    sel &= g.frontal
    n = int(sel.sum())
    if n == 0:
        raise ConfigError("no frontal face in the rest frames: the patient should look at the "
                          "camera, face relaxed, at the start of the recording")
    return Rest(
        {s: float(np.median(v[sel])) for s, v in g.eye_aperture.items()},
        {s: (float(np.median(v[sel, 0])), float(np.median(v[sel, 1])))
         for s, v in g.corner.items()},
        {s: float(np.median(v[sel])) for s, v in g.brow.items()},
        n,
    )


@dataclass(frozen=True)
class Relative:
    """Measures normalised to the rest, each ``{side: (frames,)}``.

    ``eye``: aperture / rest aperture (1 = as at rest, 0 = closed); ``mouth``: mouth-corner
    distance from its rest position in IOD units (0 at rest, about 0.1-0.25 in a smile);
    ``brow``: brow height / rest height (above 1 = raised).
    """

    eye: dict[str, np.ndarray]
    mouth: dict[str, np.ndarray]
    brow: dict[str, np.ndarray]


def relative(g: FaceGeometry, rest: Rest) -> Relative:
    """Normalise ``g`` to ``rest``; frames without a frontal face are NaN."""
    bad = ~g.frontal
    eye, mouth, brow = {}, {}, {}
    for s in ("L", "R"):
        e = g.eye_aperture[s] / rest.eye_aperture[s]
        c = g.corner[s] - np.asarray(rest.corner[s])[None, :]
        m = np.hypot(c[:, 0], c[:, 1])
        b = g.brow[s] / rest.brow[s]
        for arr in (e, m, b):
            arr[bad] = np.nan
        eye[s], mouth[s], brow[s] = e, m, b
    return Relative(eye, mouth, brow)
