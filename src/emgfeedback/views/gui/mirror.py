"""The mirror view: the live camera image beside the EMG, with the face measures drawn on it.

:class:`MirrorView` paints the latest frame (flipped when ``mirror`` is on, as a patient expects a
mirror to behave), the eye, mouth-corner and brow landmarks the measures use, and per side the
eye aperture and mouth-corner excursion relative to rest.  A side whose eye narrows while its mouth
moves (a video synkinesis, ``emgfeedback.video.detect``) is outlined in the alert colour and named
in words.  Without the video extra it shows one line saying how to enable it.

GUI thread only: the video thread hands frames over through :meth:`offer` (thread-safe, keeps
the newest); a Qt timer of the window calls :meth:`refresh`.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from emgfeedback.video import missing
from emgfeedback.video.live import LiveFrame
from emgfeedback.video.measures import USED_LANDMARKS
from emgfeedback.views.gui.widgets import COLOURS

__all__ = ["MirrorFrame", "MirrorView"]

#: Landmarks drawn: the lids, eye corners, mouth corners and brows the measures use.
_DRAWN = USED_LANDMARKS


#: One frame for the view: the image (BGR uint8, as captured, not flipped), its landmarks in the
#: image's pixels (or None), per-side measures (``{"L": {"eye": %, "mouth": IOD}, ...}``), the
#: sides with a video synkinesis right now (the session's video feed makes them).
MirrorFrame = LiveFrame


class MirrorView(QWidget):
    def __init__(self, mirror: bool = True, parent: QWidget | None = None,
                 plain: bool = False) -> None:
        super().__init__(parent)
        self.mirror = mirror
        #: the patient's view: no numbers under the image, only the words of an alert
        self.plain = plain
        self.setMinimumSize(240, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._lock = threading.Lock()
        self._pending: MirrorFrame | None = None
        self._frame: MirrorFrame | None = None
        self._qimage: QImage | None = None
        self.unavailable = missing()
        self.frames_shown = 0
        #: frame-to-screen latency of the last frames painted (ms: capture to painted)
        self.latency_ms: deque[float] = deque(maxlen=600)
        self._painted: MirrorFrame | None = None

    def set_message(self, text: str | None) -> None:
        """What the view says while it has no image (no camera, no video extra, an error)."""
        self.unavailable = text
        self.update()

    def offer(self, frame: MirrorFrame) -> None:
        """Hand over the newest frame (any thread); older unshown frames are dropped."""
        with self._lock:
            self._pending = frame

    def refresh(self) -> None:
        """Take the newest frame and repaint (GUI thread, on the window's timer)."""
        with self._lock:
            f, self._pending = self._pending, None
        if f is None:
            return
        self._frame = f
        self._qimage = self._to_qimage(f)
        self.frames_shown += 1
        self.update()

    def _to_qimage(self, f: MirrorFrame) -> QImage:
        img = np.ascontiguousarray(f.image[:, :, ::-1])  # BGR -> RGB
        if self.mirror:
            img = np.ascontiguousarray(img[:, ::-1])
        h, w = img.shape[:2]
        return QImage(img.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()

    def set_mirror(self, on: bool) -> None:
        """Show the image as a mirror (``True``, what a patient expects) or as the camera sees."""
        self.mirror = on
        if self._frame is not None:
            self._qimage = self._to_qimage(self._frame)
        self.update()

    def paintEvent(self, _event: object) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#1d2024"))
        f, qimg = self._frame, self._qimage
        if qimg is None or f is None:
            p.setPen(QColor("#e8eaec"))
            p.setFont(QFont(self.font().family(), 12))
            text = self.unavailable or "Waiting for the camera..."
            p.drawText(QRectF(self.rect()).adjusted(12, 12, -12, -12),
                       int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap), text)
            p.end()
            return
        w, h = qimg.width(), qimg.height()
        # Under the image: one line per side (stacked when the view is narrow), or, for the
        # patient (plain), only the words of an alert.
        stacked = self.width() < 560
        text_h = (48 if stacked else 26) + 8
        scale = max(0.05, min(self.width() / w, (self.height() - text_h) / h))
        ox = (self.width() - w * scale) / 2
        oy = max(0.0, (self.height() - text_h - h * scale) / 2)
        target = QRectF(ox, oy, w * scale, h * scale)
        p.fillRect(self.rect(), self.palette().window())
        p.fillRect(QRectF(ox, oy, w * scale, h * scale + text_h), QColor("#1d2024"))
        p.drawImage(target, qimg)
        if f is not self._painted and f.t_capture:
            self._painted = f
            self.latency_ms.append(1000.0 * (time.perf_counter() - f.t_capture))
        if f.landmarks is not None:
            p.setPen(QPen(QColor("#7fd0ff"), 2))
            for i in _DRAWN:
                x, y = f.landmarks[i]
                if self.mirror:
                    x = w - 1 - x
                p.drawEllipse(QPointF(ox + x * scale, oy + y * scale), 2.0, 2.0)
        # Per-side measures in words, under the image; the patient's left is on the mirror's left.
        sides = ("L", "R") if self.mirror else ("R", "L")
        p.setFont(QFont(self.font().family(), 11))
        for k, side in enumerate(sides):
            m = f.measures.get(side, {})
            alert = side in f.alert_sides
            name = "Left" if side == "L" else "Right"
            eye = m.get("eye")
            mouth = m.get("mouth")
            text = (f"{name}: eye {eye:.0f} % of rest, mouth {mouth:.2f}" if eye is not None
                    and mouth is not None else f"{name}: no face")
            if alert:
                text = f"{name} eye closes as the mouth moves"
            elif self.plain:
                text = ""
            if stacked:
                box = QRectF(6, target.bottom() + 4 + 24 * k, self.width() - 12, 24)
            else:
                box = QRectF(k * self.width() / 2 + 6, target.bottom() + 4,
                             self.width() / 2 - 12, 26)
            p.setPen(COLOURS["alert"] if alert else QColor("#e8eaec"))
            p.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)
            if alert and f.landmarks is not None:
                idx = (263, 362, 386, 374) if side == "L" else (33, 133, 159, 145)
                pts = f.landmarks[list(idx)]
                xs = pts[:, 0] if not self.mirror else w - 1 - pts[:, 0]
                r = QRectF(ox + xs.min() * scale - 10, oy + pts[:, 1].min() * scale - 10,
                           (xs.max() - xs.min()) * scale + 20,
                           (pts[:, 1].max() - pts[:, 1].min()) * scale + 20)
                p.setPen(QPen(COLOURS["alert"], 3))
                p.drawRoundedRect(r, 6, 6)
        p.end()
