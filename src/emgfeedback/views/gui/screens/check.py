"""The electrode check: a traffic light and its reason per channel, the placement figure."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from emgfeedback.vocabulary import REGIONS, parse_label
from emgfeedback.config import QualityConfig
from emgfeedback.dsp.quality import assess
from emgfeedback.views.gui.live import LiveStatus
from emgfeedback.views.gui.screens.common import _label, _title, placement_figure_path
from emgfeedback.views.gui.widgets import TrafficLight


class CheckScreen(QWidget):
    """Traffic light and reason per channel, and the placement figure of the regions in use."""

    start_calibration = Signal()

    def __init__(self, quality: QualityConfig, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.quality = quality
        outer = QHBoxLayout(self)
        outer.setContentsMargins(40, 30, 40, 30)
        left = QVBoxLayout()
        left.addWidget(_title("Electrode check"))
        left.addWidget(_label("Ask the patient to relax. Every light should be green before "
                              "calibration.", muted=True, wrap=True))
        self.grid = QGridLayout()
        self.grid.setVerticalSpacing(10)
        self.grid.setHorizontalSpacing(16)
        left.addLayout(self.grid)
        left.addStretch(1)
        self.follow_note = _label("", muted=True, wrap=True)
        left.addWidget(self.follow_note)
        self.start_btn = QPushButton("Start calibration")
        self.start_btn.setMinimumHeight(44)
        self.start_btn.clicked.connect(self.start_calibration.emit)
        left.addWidget(self.start_btn, 0, Qt.AlignmentFlag.AlignLeft)
        outer.addLayout(left, 3)
        right = QVBoxLayout()
        right.addWidget(_label("Placement", 14, bold=True))
        self.figure_box = QVBoxLayout()
        right.addLayout(self.figure_box, 1)
        self.sites = _label("", wrap=True, muted=True)
        self.sites.setAlignment(Qt.AlignmentFlag.AlignTop)
        # The site descriptions scroll in their own box: the figure keeps its room on a small
        # screen and nothing is cut off.
        self.sites_box = QScrollArea()
        self.sites_box.setWidgetResizable(True)
        self.sites_box.setFrameShape(QFrame.Shape.NoFrame)
        self.sites_box.setWidget(self.sites)
        self.sites_box.setMinimumHeight(90)
        self.sites_box.setMaximumHeight(220)
        right.addWidget(self.sites_box)
        outer.addLayout(right, 2)
        self.rows: list[tuple[TrafficLight, QLabel, QLabel]] = []
        self._figure_loaded = False
        self.states: list[tuple[str, str]] = []

    def set_channels(self, channels: tuple[str, ...], leading: bool) -> None:
        """Build one row per channel (GUI thread, once per connection)."""
        while self.grid.count():
            item = self.grid.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.deleteLater()
        self.rows = []
        for r, ch in enumerate(channels):
            cid = parse_label(ch)
            light = TrafficLight()
            name = _label(f"{cid.short}  {cid.region.muscle}", 13, bold=True)
            reason = _label("waiting for signal…", 13, wrap=True)
            self.grid.addWidget(light, r, 0)
            self.grid.addWidget(name, r, 1)
            self.grid.addWidget(reason, r, 2)
            self.rows.append((light, name, reason))
        self.grid.setColumnStretch(2, 1)
        codes = list(dict.fromkeys(parse_label(c).code for c in channels))
        self.sites.setText("\n\n".join(f"{c} ({REGIONS[c].muscle}): {REGIONS[c].site}"
                                       for c in codes))
        self.follow_note.setText("" if leading else
                                 "This board plays its own protocol (simulated patient or "
                                 "recording): it waits here until you start the calibration, "
                                 "then follows its own cues.")
        self._load_figure()

    def _load_figure(self) -> None:
        if self._figure_loaded:
            return
        path = placement_figure_path()
        if path is None:
            self.figure_box.addWidget(_label("(placement figure data/placement.svg not "
                                             "available; electrode sites below)", muted=True,
                                             wrap=True))
        else:
            try:
                from PySide6.QtSvgWidgets import QSvgWidget
            except ImportError:
                self.figure_box.addWidget(_label(f"placement figure: {path}", muted=True))
            else:
                w = QSvgWidget(str(path))
                w.renderer().setAspectRatioMode(Qt.AspectRatioMode.KeepAspectRatio)
                w.setMinimumSize(240, 280)
                w.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
                self.figure_box.addWidget(w)
        self._figure_loaded = True

    def refresh(self, status: LiveStatus, at_rest: bool) -> None:
        if status.quality is None or not self.rows:
            return
        self.states = assess(status.quality, self.quality, at_rest=at_rest)
        for (light, _name, reason), (state, why) in zip(self.rows, self.states):
            light.set_state(state)
            if reason.text() != why:
                reason.setText(why)
