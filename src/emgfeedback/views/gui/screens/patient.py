"""The patient's screen for home use: big plain words, a countdown, progress, a face map.

Everything shown comes from the controller's :class:`~emgfeedback.views.gui.controller.Guidance`
(plain words, :mod:`emgfeedback.views.gui.words`) and the detector's %MVC: no codes, units or
muscle names.  *Start*, *Pause* / *Resume* and *Stop* are the patient's; the sound switch and
volume are the settings of :class:`~emgfeedback.views.gui.sound.Player`.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from emgfeedback.vocabulary import parse_annotation, parse_label
from emgfeedback.views.gui.controller import Guidance
from emgfeedback.app.feedback import FeedbackSnapshot
from emgfeedback.views.gui.mirror import MirrorView
from emgfeedback.views.gui.screens.common import _label
from emgfeedback.views.gui.sound import SoundSettings
from emgfeedback.views.gui.widgets import FaceMap, RegionBar
from emgfeedback.views.gui.words import BODY_PART

__all__ = ["PatientScreen", "SoundControls"]


class SoundControls(QWidget):
    """Sound on/off and volume, changing a :class:`SoundSettings` in place (GUI thread)."""

    changed = Signal()

    def __init__(self, settings: SoundSettings, big: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.enabled = QCheckBox("Sound")
        self.enabled.setChecked(settings.enabled)
        self.enabled.setToolTip("Tones when a hold starts, when to relax, and when a part of the "
                                "face that should stay still joins in")
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setValue(int(round(settings.volume * 100)))
        self.volume.setMinimumWidth(120 if big else 90)
        self.volume.setMaximumWidth(220)
        self.volume.setToolTip("Volume")
        row.addWidget(self.enabled)
        row.addWidget(_label("Volume", muted=True))
        row.addWidget(self.volume)
        self.enabled.toggled.connect(self._changed)
        self.volume.valueChanged.connect(self._changed)

    def _changed(self) -> None:
        self.settings.enabled = self.enabled.isChecked()
        self.settings.volume = self.volume.value() / 100.0
        self.volume.setEnabled(self.settings.enabled)
        self.changed.emit()


class PatientScreen(QWidget):
    """Instruction, countdown, progress, alert words, face map and bars, start / pause / stop."""

    start_requested = Signal()
    pause_requested = Signal(bool)  # True: pause, False: resume
    stop_requested = Signal()

    def __init__(self, sound: SoundSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(28, 16, 28, 12)
        outer.setSpacing(8)
        top = QHBoxLayout()
        words_col = QVBoxLayout()
        self.title = _label("Welcome", 30, bold=True, wrap=True)
        self.detail = _label("Sit comfortably in front of the screen. Press Start when you are "
                             "ready.", 18, wrap=True)
        words_col.addWidget(self.title)
        words_col.addWidget(self.detail)
        top.addLayout(words_col, 5)
        self.countdown = _label("", 40, bold=True)
        self.countdown.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.countdown.setMinimumWidth(150)
        top.addWidget(self.countdown, 1)
        outer.addLayout(top)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setMinimumHeight(30)
        self.progress.setStyleSheet(
            "QProgressBar { border: 1px solid #b9beb6; border-radius: 6px; background: white; "
            "text-align: center; font-size: 14pt; } QProgressBar::chunk { background: #8fb8d8; "
            "border-radius: 6px; }")
        outer.addWidget(self.progress)
        self.alert = QLabel("")
        self.alert.setWordWrap(True)
        # Two lines of 20 pt bold words plus padding and border, reserved at all times so the
        # layout does not jump when an alert appears.
        alert_font = QFont(self.alert.font())
        alert_font.setPointSizeF(20)
        alert_font.setBold(True)
        self.alert.setMinimumHeight(int(QFontMetrics(alert_font).lineSpacing() * 2 + 30))
        self.alert.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(self.alert)
        self._alert_style = ""
        self._set_alert("", "")
        middle = QHBoxLayout()
        self.face = FaceMap()
        middle.addWidget(self.face, 2)
        # With a camera the mirror takes the face map's place: the patient's own face.
        self.mirror = MirrorView(mirror=True, plain=True)
        self.mirror.setVisible(False)
        middle.addWidget(self.mirror, 3)
        self.bars_row = QHBoxLayout()
        self.bars_row.setSpacing(6)
        middle.addLayout(self.bars_row, 3)
        outer.addLayout(middle, 1)
        self.video_note = _label("", muted=True, wrap=True)
        self.video_note.setStyleSheet("font-size: 10pt; color: #6b716b;")
        outer.addWidget(self.video_note)
        controls = QHBoxLayout()
        self.start_btn = QPushButton("Start")
        self.pause_btn = QPushButton("Pause")
        self.pause_btn.setCheckable(True)
        self.stop_btn = QPushButton("Stop")
        for b in (self.start_btn, self.pause_btn, self.stop_btn):
            b.setMinimumHeight(56)
            b.setMinimumWidth(150)
            b.setStyleSheet("font-size: 18pt; font-weight: bold;")
            controls.addWidget(b)
        controls.addStretch(1)
        self.sound = SoundControls(sound, big=True)
        controls.addWidget(self.sound)
        outer.addLayout(controls)
        self.start_btn.clicked.connect(self.start_requested.emit)
        self.pause_btn.toggled.connect(self._pause_toggled)
        self.stop_btn.clicked.connect(self.stop_requested.emit)
        self.bars: dict[int, RegionBar] = {}
        self._channels: tuple[str, ...] = ()
        self._side_order = ("R", "L")
        self._peak: np.ndarray | None = None
        self.shown: list[str] = []  # every distinct text shown (tests check it for jargon)
        self.set_running(False)

    # ---- GUI thread
    def _pause_toggled(self, checked: bool) -> None:
        self.pause_btn.setText("Resume" if checked else "Pause")
        self.pause_requested.emit(checked)

    def set_running(self, running: bool, finished: bool = False) -> None:
        """Buttons for the session state: Start before, Pause and Stop during."""
        self.start_btn.setEnabled(not running)
        self.start_btn.setText("Start again" if finished else "Start")
        self.pause_btn.setEnabled(running)
        self.stop_btn.setEnabled(running)
        if not running and self.pause_btn.isChecked():
            self.pause_btn.blockSignals(True)
            self.pause_btn.setChecked(False)
            self.pause_btn.setText("Pause")
            self.pause_btn.blockSignals(False)

    def set_video(self, available: bool, message: str) -> None:
        """The mirror in the face map's place, or a small line saying how to enable it."""
        if self.mirror.isVisibleTo(self) != available:
            self.mirror.setVisible(available)
            self.face.setVisible(not available)
            # Bars in the mirror's order (the patient's left on the left), else the face map's
            # (a front view: the patient's right on the left).
            self._side_order = ("L", "R") if available and self.mirror.mirror else ("R", "L")
            if self._channels:
                self.set_channels(self._channels)
        self.mirror.set_message(None if available else message)
        if self.video_note.text() != message:
            self.video_note.setText(message)
        self.video_note.setVisible(bool(message))

    def set_channels(self, channels: tuple[str, ...]) -> None:
        """One bar per channel in two groups, *Your right side* and *Your left side* (the face
        map's order: a front view; with the mirror shown, the mirror's order)."""
        while self.bars_row.count():
            item = self.bars_row.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.setParent(None)
        self.bars = {}
        self._channels = tuple(channels)
        ids = [parse_label(c) for c in channels]
        for side in self._side_order:
            mine = [i for i, c in enumerate(ids) if c.side == side]
            if not mine:
                continue
            group = QFrame()
            group.setFrameShape(QFrame.Shape.StyledPanel)
            g = QVBoxLayout(group)
            g.setContentsMargins(4, 4, 4, 4)
            head = _label(f"Your {'right' if side == 'R' else 'left'} side", 16, bold=True)
            head.setAlignment(Qt.AlignmentFlag.AlignCenter)
            g.addWidget(head)
            row = QHBoxLayout()
            row.setSpacing(4)
            for i in mine:
                bar = RegionBar(BODY_PART.get(ids[i].code, "face"))
                bar.plain = True
                bar.setMinimumSize(60, 150)
                bar.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
                self.bars[i] = bar
                row.addWidget(bar)
            g.addLayout(row, 1)
            self.bars_row.addWidget(group, 1)
        self.face.set_channels(channels)
        self._peak = None

    def _set_alert(self, text: str, kind: str) -> None:
        style = {"alert": "background: #f6dedb; color: #7d231d; border: 2px solid #c8453c;",
                 "info": "background: #e4eef6; color: #1f4a6e; border: 2px solid #8fb8d8;",
                 "": "background: transparent; border: 2px solid transparent;"}[kind]
        style += " border-radius: 8px; padding: 6px; font-size: 20pt; font-weight: bold;"
        if style != self._alert_style:
            self.alert.setStyleSheet(style)
            self._alert_style = style
        if self.alert.text() != text:
            self.alert.setText(text)

    def _show(self, label: QLabel, text: str) -> None:
        if label.text() != text:
            label.setText(text)
            if text and text not in self.shown:
                self.shown.append(text)

    def refresh(self, g: Guidance, fb: FeedbackSnapshot | None) -> None:
        """Draw the guidance and the detector's state (every redraw)."""
        self._show(self.title, g.title)
        self._show(self.detail, g.detail)
        self._show(self.countdown, f"{int(np.ceil(g.countdown_s))}"
                   if g.countdown_s is not None and g.countdown_s > 0 else "")
        if g.steps_total:
            value = int(round(g.progress * 1000))
            if self.progress.value() != value:
                self.progress.setValue(value)
            if self.progress.format() != g.progress_text:
                self.progress.setFormat(g.progress_text)
                if g.progress_text not in self.shown:
                    self.shown.append(g.progress_text)
        if g.alert:
            self._set_alert(g.alert, "alert")
            if g.alert not in self.shown:
                self.shown.append(g.alert)
        elif g.retracted:
            self._set_alert(g.retracted, "info")
            if g.retracted not in self.shown:
                self.shown.append(g.retracted)
        else:
            self._set_alert("", "")
        if fb is None:
            return
        n = len(fb.channels)
        band = fb.band_pct or (0.0, 0.0)
        alerts = [bool(fb.red[i]) for i in range(n)]
        roles: tuple[str, ...] = fb.role
        if fb.calibrated:
            pct = np.asarray(fb.pct, dtype=np.float64)
        else:
            # Before the calibration exists there is no %MVC: during a maximum effort the
            # regions asked for are lit by their strength relative to the strongest seen so
            # far in this session (where to work and how hard), the others stay dark.
            env = np.nan_to_num(np.asarray(fb.envelope_uv, dtype=np.float64))
            if self._peak is None or len(self._peak) != n:
                self._peak = np.full(n, 1e-9)
            self._peak = np.maximum(self._peak, env)
            pct = np.zeros(n)
            roles = ("",) * n
            if g.step == "effort" and fb.cue is not None:
                code = (parse_annotation(fb.cue.text).channel or "").split("-")[-1]
                asked = [i for i, c in enumerate(fb.channels) if parse_label(c).code == code]
                for i in asked:
                    pct[i] = 100.0 * max(env[i], 0.0) / self._peak[i]
                roles = tuple("target" if i in asked else "" for i in range(n))
        for i, bar in self.bars.items():
            role = roles[i]
            limit = float(fb.quiet_limit_pct[i])
            bar.set_value(float(pct[i]), role, band, limit if np.isfinite(limit) else 0.0,
                          alerts[i], True)
        self.face.set_state([float(v) for v in pct], roles, alerts, band)
