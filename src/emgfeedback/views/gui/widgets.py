"""Small painted widgets: the %MVC region bar and the electrode traffic light.

All methods run in the GUI thread.  Colours are calm on purpose (a patient watches them for half
an hour): muted blue for activity, a pale green band for the target, red only for a quiet region
that crossed its limit.
"""

from __future__ import annotations

import logging
import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["COLOURS", "FaceMap", "RegionBar", "TrafficLight"]

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
        self.plain = False  # patient mode: no numbers or units, words only
        self.drawn_texts: list[tuple[str, float, float]] = []
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

    def band_state(self) -> str:
        """``below``, ``in`` or ``above`` the target band (target bars; ``""`` otherwise)."""
        lo, hi = self.band
        if self.role != "target" or not self.calibrated or hi <= 0:
            return ""
        return "below" if self.value < lo else ("above" if self.value > hi else "in")

    def fill_colour(self) -> QColor:
        """Green only inside the target band; amber above it; red for a quiet region that
        joined in; blue otherwise (below the band, bare activity)."""
        if self.alert:
            return COLOURS["alert"]
        state = self.band_state()
        if state == "in":
            return COLOURS["target"]
        if state == "above":
            return COLOURS["amber"]
        return COLOURS["activity"]

    def status_word(self) -> str:
        """The words under the bar: what to do with this region now."""
        if self.role == "target":
            return {"below": "a little more", "in": "in the green zone",
                    "above": "a little less"}.get(self.band_state(), "move")
        if self.role == "quiet":
            return "relax it" if self.alert else "keep still"
        return self.subtitle

    def _fit(self, painter: QPainter, font: QFont, text: str, width: float) -> QFont:
        """``font`` made smaller until ``text`` fits ``width`` (never clipped); records it."""
        f = QFont(font)
        while f.pointSizeF() > 6.0 and QFontMetricsF(f).horizontalAdvance(text) > width:
            f.setPointSizeF(f.pointSizeF() * 0.92)
        self.drawn_texts.append((text, width, QFontMetricsF(f).horizontalAdvance(text)))
        painter.setFont(f)
        return f

    def paintEvent(self, event: object) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.drawn_texts = []
        w, h = self.width(), self.height()
        base = max(9.0, min(w / 7.0, h / 22.0)) * self.scale_font
        title_font = QFont(self.font())
        title_font.setPointSizeF(base)
        title_font.setBold(True)
        sub_font = QFont(self.font())
        sub_font.setPointSizeF(base * 0.62)
        value_font = QFont(self.font())
        value_font.setPointSizeF(base * 1.05)
        value_font.setBold(True)
        top_h = base * 2.4
        bottom_h = base * 3.8 if self.subtitle or self.role else base * 2.4
        bar_w = min(w * 0.62, 180.0)
        track = QRectF((w - bar_w) / 2, top_h, bar_w, max(20.0, h - top_h - bottom_h))
        room = w - 4.0

        # Value on top.
        p.setPen(COLOURS["alert"] if self.alert else COLOURS["text"])
        txt = f"{self.value:.0f} {self.unit}" if self.calibrated else f"{self.value:.0f} µV"
        if self.plain:
            txt = ""
        if txt:
            self._fit(p, value_font, txt, room)
            p.drawText(QRectF(0, 0, w, top_h), Qt.AlignmentFlag.AlignCenter, txt)

        # Track, band, bar.
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(COLOURS["track"])
        p.drawRoundedRect(track, 8, 8)
        has_band = self.role == "target" and self.band[1] > 0
        if has_band:
            y1, y0 = self._y(track, self.band[1]), self._y(track, self.band[0])
            p.setBrush(COLOURS["band"])
            p.drawRect(QRectF(track.left(), y1, track.width(), y0 - y1))
        y = self._y(track, self.value)
        p.setBrush(self.fill_colour())
        inner = QRectF(track.left() + 8, y, track.width() - 16, track.bottom() - y)
        if inner.height() > 0:
            p.drawRoundedRect(inner, 5, 5)
        if self.value > self.full_scale:
            p.setBrush(COLOURS["text"])
            p.drawRect(QRectF(track.left(), track.top() - 3, track.width(), 6))
        if has_band:
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

        # Labels below: the region, then what to do with it (words, not only colour).
        p.setPen(COLOURS["text"])
        self._fit(p, title_font, self.title, room)
        lab = QRectF(0, track.bottom() + base * 0.3, w, base * 2.0)
        p.drawText(lab, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, self.title)
        word = self.status_word()
        if word:
            p.setPen(COLOURS["alert"] if self.alert else COLOURS["muted"])
            self._fit(p, sub_font, word, room)
            p.drawText(QRectF(0, lab.top() + base * 1.7, w, base * 1.6),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, word)
        p.end()

    def texts_fit(self) -> bool:
        """Every text of the last paint fitted its width (nothing clipped)."""
        return all(adv <= width + 0.5 for _, width, adv in self.drawn_texts)


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


class FaceMap(QWidget):
    """The face of the placement figure with its regions lit by live %MVC.

    Each channel is a spot where the placement figure puts its electrodes
    (:func:`emgfeedback.views.gui.face.face_sites`): regions to move are filled, brighter with
    more activity, green inside the target band; regions to keep quiet are outlined (dashed) and
    only faintly filled; a quiet region that joins in flashes red.  ``your left`` / ``your right``
    name the sides (a front view, as the figure: the patient's left is on the right).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from emgfeedback.views.gui.face import face_sites

        self.sites = face_sites()
        self.spots: list[tuple[str, str]] = []  # (side, code) per channel
        self.values: list[float] = []
        self.roles: tuple[str, ...] = ()
        self.alerts: list[bool] = []
        self.band = (0.0, 0.0)
        self.flash = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 240)

    def sizeHint(self) -> QSize:
        return QSize(340, 460)

    def set_channels(self, channels: tuple[str, ...]) -> None:
        from emgfeedback.vocabulary import parse_label

        ids = [parse_label(c) for c in channels]
        self.spots = [(c.side, c.code) for c in ids]
        self.values = [0.0] * len(ids)
        self.alerts = [False] * len(ids)
        self.roles = ("",) * len(ids)
        self.update()

    def set_state(self, values: list[float], roles: tuple[str, ...], alerts: list[bool],
                  band: tuple[float, float]) -> None:
        """Update (GUI thread, every redraw); a flashing spot alternates every 8 redraws."""
        self.values = [v if math.isfinite(v) else 0.0 for v in values]
        self.roles, self.alerts, self.band = roles, alerts, band
        self.flash += 1
        self.update()

    def flashing_on(self) -> bool:
        return (self.flash // 8) % 2 == 0

    def paintEvent(self, event: object) -> None:
        from emgfeedback.views.gui.face import FACE

        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        vx, vy, vw, vh = FACE["viewbox"]
        label_h = 30.0
        scale = min(self.width() / vw, (self.height() - label_h) / vh)
        ox = (self.width() - vw * scale) / 2 - vx * scale
        oy = label_h + (self.height() - label_h - vh * scale) / 2 - vy * scale

        def pt(x: float, y: float) -> tuple[float, float]:
            return ox + x * scale, oy + y * scale

        def ellipse(cx: float, cy: float, rx: float, ry: float) -> QRectF:
            x, y = pt(cx - rx, cy - ry)
            return QRectF(x, y, 2 * rx * scale, 2 * ry * scale)

        skin, line = QColor("#fbe9dc"), QPen(QColor("#886655"), 2)
        p.setPen(line)
        p.setBrush(skin)
        for e in FACE["ears"]:
            p.drawEllipse(ellipse(*e))
        p.drawEllipse(ellipse(*FACE["face"]))
        p.setBrush(QColor("#ffffff"))
        p.setPen(QPen(QColor("#555555"), 2))
        for e in FACE["eyes"]:
            p.drawEllipse(ellipse(*e))
        p.setPen(QPen(QColor("#6b4f3f"), max(2.0, 4 * scale)))
        for (x0, y0), (x1, y1), (x2, y2) in FACE["brows"]:
            p.drawPolyline([QPointF(*pt(x0, y0)), QPointF(*pt(x1, y1)), QPointF(*pt(x2, y2))])
        p.setPen(line)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPolygon([QPointF(*pt(x, y)) for x, y in FACE["nose"]])
        p.setBrush(QColor("#e7b3b3"))
        p.setPen(QPen(QColor("#a05a5a"), 2))
        p.drawEllipse(ellipse(*FACE["mouth_ellipse"]))

        # Side names (a front view: the patient's left is on the right).
        f = QFont(self.font())
        f.setPointSizeF(max(10.0, min(16.0, self.width() / 28)))
        f.setBold(True)
        p.setFont(f)
        p.setPen(COLOURS["text"])
        half = self.width() / 2
        p.drawText(QRectF(0, 0, half, label_h), Qt.AlignmentFlag.AlignCenter, "your right")
        p.drawText(QRectF(half, 0, half, label_h), Qt.AlignmentFlag.AlignCenter, "your left")

        r = 24.0 * scale
        lo, hi = self.band
        for i, key in enumerate(self.spots):
            site = self.sites.get(key)
            if site is None:
                continue
            x, y = pt(*site)
            role = self.roles[i] if i < len(self.roles) else ""
            v = self.values[i] if i < len(self.values) else 0.0
            alert = self.alerts[i] if i < len(self.alerts) else False
            level = min(max(v / 100.0, 0.0), 1.0)
            rect = QRectF(x - r, y - r, 2 * r, 2 * r)
            if alert:
                on = self.flashing_on()
                c = QColor(COLOURS["alert"])
                c.setAlpha(235 if on else 90)
                p.setBrush(c)
                p.setPen(QPen(COLOURS["alert"], 4 if on else 2))
                p.drawEllipse(rect.adjusted(-4, -4, 4, 4) if on else rect)
                continue
            if role == "target":
                c = QColor(COLOURS["target"] if lo <= v <= hi and hi > 0 else
                           (COLOURS["amber"] if v > hi > 0 else COLOURS["activity"]))
                c.setAlpha(int(70 + 185 * level))
                p.setBrush(c)
                p.setPen(QPen(c.darker(130), 2))
            elif role == "quiet":
                c = QColor(COLOURS["limit"])
                c.setAlpha(int(20 + 80 * level))
                p.setBrush(c)
                p.setPen(QPen(COLOURS["limit"], 3, Qt.PenStyle.DashLine))
            else:
                c = QColor(COLOURS["activity"])
                c.setAlpha(int(30 + 160 * level))
                p.setBrush(c)
                p.setPen(QPen(c.darker(130), 1.5))
            p.drawEllipse(rect)
        p.end()
