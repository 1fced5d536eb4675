"""The calibration screen: guided rest and MVC per region, values, redo per region."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from emgfeedback.vocabulary import REGIONS, Cue, parse_annotation, parse_label
from emgfeedback.views.gui.controller import Guidance
from emgfeedback.app.feedback import FeedbackSnapshot
from emgfeedback.app.program import RunnerSnapshot
from emgfeedback.views.gui.screens.common import _label, _title
from emgfeedback.views.gui.widgets import COLOURS


class CalibrationScreen(QWidget):
    """Guided rest and MVC per region with a countdown, the values, and redo per region."""

    redo = Signal(str)
    start_exercises = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(40, 30, 40, 30)
        outer.addWidget(_title("Calibration"))
        self.instruction = _label("Waiting for the rest period…", 24, bold=True, wrap=True)
        self.countdown = _label("", 22)
        self.detail = _label("", 16, wrap=True)
        head = QHBoxLayout()
        words = QVBoxLayout()
        words.addWidget(self.instruction)
        words.addWidget(self.detail)
        head.addLayout(words, 4)
        self.countdown.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        head.addWidget(self.countdown, 1)
        outer.addLayout(head)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("")
        self.progress.setMinimumHeight(26)
        outer.addWidget(self.progress)
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(
            ["Channel", "Rest mean\nµV", "Rest SD\nµV", "MVC µV\n(above rest)", "MVC\ntrials", ""])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setStyleSheet("font-size: 14pt;")
        self.table.verticalHeader().setDefaultSectionSize(38)
        outer.addWidget(self.table, 1)
        self.notes = _label("", wrap=True)
        self.notes.setStyleSheet(f"color: {COLOURS['alert'].name()};")
        outer.addWidget(self.notes)
        self.source = _label("", muted=True, wrap=True)
        outer.addWidget(self.source)
        row = QHBoxLayout()
        self.next_btn = QPushButton("Start exercises")
        self.next_btn.setMinimumHeight(44)
        self.next_btn.clicked.connect(self.start_exercises.emit)
        row.addWidget(self.next_btn)
        row.addStretch(1)
        outer.addLayout(row)
        self.leading = True

    def set_channels(self, channels: tuple[str, ...], leading: bool) -> None:
        self.leading = leading
        self.table.setRowCount(len(channels))
        for r, ch in enumerate(channels):
            cid = parse_label(ch)
            self.table.setItem(r, 0, QTableWidgetItem(f"{cid.short}  {cid.region.muscle}"))
            for c in range(1, 5):
                self.table.setItem(r, c, QTableWidgetItem("–"))
            btn = QPushButton(f"Redo {cid.code}")
            btn.setEnabled(leading)
            btn.setToolTip("Record this region's MVC trials again (its MVC is the median of all "
                           "its trials)" if leading else
                           "This board plays its own protocol; redo is for live boards")
            btn.clicked.connect(lambda _=False, code=cid.code: self.redo.emit(code))
            self.table.setCellWidget(r, 5, btn)
        self.next_btn.setVisible(leading)

    def refresh(self, fb: FeedbackSnapshot, run: RunnerSnapshot,
                guidance: Guidance | None = None) -> None:
        cue = fb.cue
        if guidance is not None:
            title, detail, left = guidance.title, guidance.detail, guidance.countdown_s
            if guidance.step == "effort" and cue is not None:
                detail += f"  ({muscle_of(cue)})"
            if guidance.steps_total:
                self.progress.setValue(int(round(guidance.progress * 1000)))
                self.progress.setFormat(guidance.progress_text)
        else:
            title, detail = "Calibration", ""
            left = max(0, cue.stop - fb.position) / fb.fs if cue is not None else None
        if run.phase in ("exercise", "done"):
            title, detail, left = "Calibration complete", "", None
        if self.instruction.text() != title:
            self.instruction.setText(title)
        if self.detail.text() != detail:
            self.detail.setText(detail)
        cd = f"{left:4.1f} s" if left is not None else ""
        if self.countdown.text() != cd:
            self.countdown.setText(cd)
        for r, row in enumerate(fb.calibration):
            vals = (row.rest_mean_uv, row.rest_sd_uv, row.mvc_uv)
            for c, v in enumerate(vals, start=1):
                text = "–" if v is None else f"{v:.1f}"
                item = self.table.item(r, c)
                if item is not None and item.text() != text:
                    item.setText(text)
            item = self.table.item(r, 4)
            if item is not None and item.text() != str(row.trials):
                item.setText(str(row.trials))
        problems = ([fb.error] if fb.error else []) + list(fb.calibration_notes)
        text = "\n".join(problems)
        if self.notes.text() != text:
            self.notes.setText(text)
        src = ("Values the detector uses (computed at the first rep)." if fb.calibration_final
               else "Values measured so far (the detector's calibration is computed at the "
                    "first rep from every rest and MVC period).")
        if self.source.text() != src:
            self.source.setText(src)


def muscle_of(cue: Cue) -> str:
    """The muscle of a maximum-effort cue ``mvc L-ZYG`` (for the therapist)."""
    code = (parse_annotation(cue.text).channel or "").split("-")[-1]
    region = REGIONS.get(code)
    return region.muscle if region else code
