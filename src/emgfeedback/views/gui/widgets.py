"""Small painted widgets: the %MVC region bar and the electrode traffic light.

All methods run in the GUI thread.  Colours are calm on purpose (a patient watches them for half
an hour): muted blue for activity, a pale green band for the target, red only for a quiet region
that crossed its limit.
"""

from __future__ import annotations

import logging
import math

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["COLOURS", "RegionBar", "TrafficLight"]

log = logging.getLogger(__name__)

COLOURS = {
    "background": QColor("#f5f6f4"),
    "track": QColor("#e3e6e1"),
    "activity": QColor("#4f7fa8"),
    "target": QColor("#3d8a5a"),
    "band": QColor(122, 183, 140, 110),
    "band_edge": QColor("#5f9e73"),
    "limit": QColor("#7a7f86"),
    "alert": QColor("#c8453c"),
    "text": QColor("#22262a"),
    "muted": QColor("#5c636b"),
    "green": QColor("#3f9c5a"),
    "amber": QColor("#e0a030"),
    "red": QColor("#c8453c"),
    "off": QColor("#b8bcb6"),
}


class RegionBar(QWidget):
    """One large vertical bar: a region's activity in %MVC.

    ``role`` decides what is drawn on it: ``"target"`` shows the target band, ``"quiet"`` the
    quiet limit (the bar turns red when :meth:`set_value` is called with ``alert=True``), ``""``
    shows the bare activity.  Values above ``full_scale`` are drawn at the top with a notch.
    """

    def __init__(self, title: str, subtitle: str = "", parent: QWidget | None = None,
                 full_scale: float = 100.0) -> None:
        super().__init__(parent)
        self.title = title
        self.subtitle = subtitle
        self.full_scale = full_scale
        self.value = 0.0
        self.unit = "%"
        self.role = ""
        self.band = (30.0, 70.0)
        self.limit = 15.0
        self.alert = False
        self.calibrated = True
        self.scale_font = 1.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(90, 220)

    def sizeHint(self) -> QSize:
        return QSize(140, 420)

    def set_value(self, value: float, role: str, band: tuple[float, float], limit: float,
                  alert: bool, calibrated: bool = True) -> None:
        """Update and repaint (GUI thread)."""
        v = 0.0 if not math.isfinite(value) else max(0.0, float(value))
        changed = (abs(v - self.value) > 0.05 or role != self.role or alert != self.alert
                   or band != self.band or limit != self.limit or calibrated != self.calibrated)
        self.value, self.role, self.band, self.limit = v, role, band, limit
        self.alert, self.calibrated = alert, calibrated
        if changed:
            self.update()

    def _y(self, rect: QRectF, v: float) -> float:
        frac = min(max(v / self.full_scale, 0.0), 1.0)
        return rect.bottom() - frac * rect.height()

    def paintEvent(self, event: object) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        base = max(10.0, min(w / 7.0, h / 22.0)) * self.scale_font
        title_font = QFont(self.font())
        title_font.setPointSizeF(base)
        title_font.setBold(True)
        sub_font = QFont(self.font())
        sub_font.setPointSizeF(base * 0.62)
        value_font = QFont(self.font())
        value_font.setPointSizeF(base * 1.05)
        value_font.setBold(True)
        top_h = base * 2.4
        bottom_h = base * 3.8 if self.subtitle else base * 2.4
        bar_w = min(w * 0.62, 180.0)
        track = QRectF((w - bar_w) / 2, top_h, bar_w, max(20.0, h - top_h - bottom_h))

        # Value on top.
        p.setFont(value_font)
        p.setPen(COLOURS["alert"] if self.alert else COLOURS["text"])
        txt = f"{self.value:.0f} {self.unit}" if self.calibrated else f"{self.value:.0f} µV"
        p.drawText(QRectF(0, 0, w, top_h), Qt.AlignmentFlag.AlignCenter, txt)

        # Track, band, bar.
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(COLOURS["track"])
        p.drawRoundedRect(track, 8, 8)
        if self.role == "target":
            y1, y0 = self._y(track, self.band[1]), self._y(track, self.band[0])
            p.setBrush(COLOURS["band"])
            p.drawRect(QRectF(track.left(), y1, track.width(), y0 - y1))
        fill = COLOURS["activity"]
        if self.role == "target":
            fill = COLOURS["target"]
        if self.alert:
            fill = COLOURS["alert"]
        y = self._y(track, self.value)
        p.setBrush(fill)
        inner = QRectF(track.left() + 8, y, track.width() - 16, track.bottom() - y)
        if inner.height() > 0:
            p.drawRoundedRect(inner, 5, 5)
        if self.value > self.full_scale:
            p.setBrush(COLOURS["text"])
            p.drawRect(QRectF(track.left(), track.top() - 3, track.width(), 6))
        if self.role == "target":
            pen = QPen(COLOURS["band_edge"], 2)
            p.setPen(pen)
            for v in self.band:
                yy = self._y(track, v)
                p.drawLine(int(track.left()), int(yy), int(track.right()), int(yy))
        if self.role == "quiet":
            pen = QPen(COLOURS["alert"] if self.alert else COLOURS["limit"], 3,
                       Qt.PenStyle.DashLine)
            p.setPen(pen)
            yy = self._y(track, self.limit)
            p.drawLine(int(track.left() - 6), int(yy), int(track.right() + 6), int(yy))

        # Labels below.
        p.setPen(COLOURS["text"])
        p.setFont(title_font)
        lab = QRectF(0, track.bottom() + base * 0.3, w, base * 2.0)
        p.drawText(lab, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, self.title)
        if self.subtitle:
            p.setFont(sub_font)
            p.setPen(COLOURS["muted"])
            role = {"target": "move", "quiet": "keep quiet"}.get(self.role, self.subtitle)
            p.drawText(QRectF(0, lab.top() + base * 1.7, w, base * 1.6),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, role)
        p.end()


class TrafficLight(QWidget):
    """A round light: ``green``, ``amber``, ``red`` or ``off``."""

    def __init__(self, parent: QWidget | None = None, diameter: int = 34) -> None:
        super().__init__(parent)
        self.state = "off"
        self.setFixedSize(diameter + 4, diameter + 4)

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.update()

    def paintEvent(self, event: object) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor("#6b7076"), 1.5))
        p.setBrush(COLOURS.get(self.state, COLOURS["off"]))
        p.drawEllipse(QRectF(2, 2, self.width() - 4, self.height() - 4))
        p.end()
