"""Frames from a video file or a camera, each stamped with the EMG sample it belongs to.

A :class:`Frame` carries its index, the camera time ``t`` (seconds: ``index / fps`` for a file,
the host's monotonic clock at capture for a camera) and ``sample``, the EMG sample index through
the :class:`~emgfeedback.video.clock.FrameClock` (``None`` while a live clock has not yet seen the
EMG stream).  Time is the sample index: the EMG and the video meet on it.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emgfeedback.errors import EmgError, FileFormatError, SourceError
from emgfeedback.video import missing
from emgfeedback.video.clock import FrameClock

__all__ = ["Frame", "VideoSource"]


@dataclass(frozen=True)
class Frame:
    index: int
    t: float
    sample: int | None
    image: np.ndarray  # (H, W, 3) uint8, BGR as OpenCV delivers it


class VideoSource:
    """Read frames from ``path`` (a video file) or ``camera`` (an OpenCV device index).

    Parameters
    ----------
    path, camera:
        Exactly one of them.
    clock:
        Maps frame times to EMG samples; default for a file: sample = fs * t with ``fs``.
    fs:
        EMG sample rate for a file's default clock (default 1000 Hz).
    mirror:
        Flip every frame left-right (a mirror view for the patient).
    """

    def __init__(self, path: str | Path | None = None, camera: int | None = None,
                 clock: FrameClock | None = None, fs: float = 1000.0,
                 mirror: bool = False) -> None:
        why = missing()
        if why is not None:
            raise EmgError(why)
        if (path is None) == (camera is None):
            raise SourceError("a video source needs either a file or a camera index")
        import cv2

        self._cv2 = cv2
        self.path = Path(path) if path is not None else None
        self.mirror = mirror
        if self.path is not None:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                raise FileFormatError(f"{self.path}: no such video file") from None
            if not stat.S_ISREG(st.st_mode):
                raise FileFormatError(f"{self.path}: not a regular file")
            self._cap = cv2.VideoCapture(str(self.path))
            if not self._cap.isOpened():
                raise FileFormatError(f"{self.path}: not a video OpenCV can read "
                                      "(H.264/MP4, AVI, ...)")
            fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
            if not np.isfinite(fps) or not 1.0 <= fps <= 1000.0:
                raise FileFormatError(f"{self.path}: implausible frame rate {fps!r} fps")
            self.fps = fps
            self.clock = clock or FrameClock.fixed(fs)
            self.live = False
        else:
            self._cap = cv2.VideoCapture(int(camera))  # type: ignore[arg-type]
            if not self._cap.isOpened():
                raise SourceError(f"camera {camera} could not be opened: is it connected and "
                                  "not in use by another program?")
            self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 30.0)
            self.clock = clock or FrameClock(fs)
            self.live = True
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._index = 0

    @property
    def n_frames(self) -> int | None:
        """Frames in a file (as its header says), ``None`` for a camera."""
        if self.live:
            return None
        return int(self._cap.get(self._cv2.CAP_PROP_FRAME_COUNT))

    def read(self) -> Frame | None:
        """The next frame, or ``None`` at the end of a file / when the camera stops."""
        ok, img = self._cap.read()
        if not ok or img is None:
            return None
        t = time.monotonic() if self.live else self._index / self.fps
        if self.mirror:
            img = img[:, ::-1].copy()
        f = Frame(self._index, t, self.clock.sample_of(t), img)
        self._index += 1
        return f

    def __iter__(self) -> Iterator[Frame]:
        while (f := self.read()) is not None:
            yield f

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
