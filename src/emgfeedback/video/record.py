"""Video recorded beside a session, and found again by sample index on replay.

:class:`VideoRecorder` writes the frames to a compressed video (MPEG-4 Part 2 in an ``.mp4``, the
codec every OpenCV wheel can write; ``.avi`` with Motion-JPEG is the fallback) and keeps the
**frame-to-sample table**: the EMG sample index of every frame written.  :meth:`table` returns it
as the JSON object that goes into the recording's sidecar under ``"video"``::

    {"file": "P-0001_2026-12-01T10-00-00.mp4", "fps": 30.0, "size": [640, 360],
     "mirrored": false, "frames": 1800, "samples": [0, 33, 67, ...], "drift_ppm": 12.5}

:class:`VideoTrack` reads such a table back and answers "which frame shows sample ``s``"
(:meth:`VideoTrack.frame_at`), so a replay shows the frame that was on screen at each sample.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.errors import EmgError, FileFormatError
from emgfeedback.video import missing

__all__ = ["VideoRecorder", "VideoTrack"]


class VideoRecorder:
    """Write frames (BGR uint8, all of one size) and their sample indices.

    The file is created ``0600`` (it shows the patient's face).  Frames must arrive in order of
    sample index; a frame whose sample is not after the previous one is dropped (a camera that
    delivered a stale frame twice) and counted in :attr:`dropped`.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int],
                 mirrored: bool = False) -> None:
        why = missing()
        if why is not None:
            raise EmgError(why)
        import cv2

        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".avi"):
            raise EmgError(f"{self.path}: a session video is .mp4 or .avi")
        if not (np.isfinite(fps) and 1.0 <= fps <= 240.0):
            raise EmgError(f"camera frame rate {fps!r} fps is implausible (1-240)")
        self.fps, self.size, self.mirrored = float(fps), (int(size[0]), int(size[1])), mirrored
        fourcc = cv2.VideoWriter.fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4"
                                          else "MJPG"))
        # Create the file private first: VideoWriter would create it with the umask's mode.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        self._w = cv2.VideoWriter(str(self.path), fourcc, self.fps, self.size)
        if not self._w.isOpened():
            raise EmgError(f"{self.path}: OpenCV cannot write this video format here")
        self.samples: list[int] = []
        self.dropped = 0
        self.drift_ppm: float | None = None

    def write(self, image: np.ndarray, sample: int) -> None:
        if self.samples and sample <= self.samples[-1]:
            self.dropped += 1
            return
        h, w = image.shape[:2]
        if (w, h) != self.size:
            raise EmgError(f"camera frame size changed from {self.size[0]}x{self.size[1]} to "
                           f"{w}x{h} during the recording")
        self._w.write(np.ascontiguousarray(image))
        self.samples.append(int(sample))

    def close(self) -> None:
        self._w.release()

    def table(self) -> dict[str, Any]:
        """The sidecar's ``"video"`` object for this recording."""
        out: dict[str, Any] = {"file": self.path.name, "fps": self.fps, "size": list(self.size),
                               "mirrored": self.mirrored, "frames": len(self.samples),
                               "samples": list(self.samples), "dropped": self.dropped}
        if self.drift_ppm is not None:
            out["drift_ppm"] = round(float(self.drift_ppm), 1)
        return out

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoTrack:
    """A recorded session video and its frame-to-sample table (the sidecar's ``"video"``)."""

    def __init__(self, table: dict[str, Any], folder: str | Path) -> None:
        try:
            samples = [int(s) for s in table["samples"]]
            self.fps = float(table["fps"])
            self.path = Path(folder) / str(table["file"])
            self.mirrored = bool(table.get("mirrored", False))
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(f"video table in the sidecar is damaged ({exc})") from None
        if any(b <= a for a, b in zip(samples, samples[1:])):
            raise FileFormatError("video table in the sidecar is damaged (samples not increasing)")
        if int(table.get("frames", len(samples))) != len(samples):
            raise FileFormatError("video table in the sidecar is damaged (frame count disagrees)")
        self.samples = samples
        self._cap: Any = None
        self._pos = -1

    def __len__(self) -> int:
        return len(self.samples)

    def frame_at(self, sample: int) -> int | None:
        """The index of the frame on screen at ``sample`` (the last frame at or before it),
        ``None`` before the first frame."""
        i = bisect.bisect_right(self.samples, int(sample)) - 1
        return None if i < 0 else i

    def image(self, index: int) -> np.ndarray | None:
        """Frame ``index`` of the video file (sequential reads are fast; a jump seeks)."""
        import cv2

        if self._cap is None:
            if not self.path.is_file():
                raise FileFormatError(f"{self.path}: the session's video file is missing")
            self._cap = cv2.VideoCapture(str(self.path))
        if index != self._pos + 1:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, img = self._cap.read()
        self._pos = index if ok else -1
        return img if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
