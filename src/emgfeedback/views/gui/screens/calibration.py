"""The calibration screen: guided rest and MVC per region, values, redo per region."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from emgfeedback.clinical.regions import REGIONS, parse_label
from emgfeedback.views.gui.feedback import FeedbackSnapshot
from emgfeedback.views.gui.program import Cue, RunnerSnapshot
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
        outer.addWidget(self.instruction)
        outer.addWidget(self.countdown)
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(
            ["Channel", "Rest mean µV", "Rest SD µV", "MVC µV (above rest)", "MVC trials", ""])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setStyleSheet("font-size: 14pt;")
        self.table.verticalHeader().setDefaultSectionSize(46)
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

    def refresh(self, fb: FeedbackSnapshot, run: RunnerSnapshot) -> None:
        cue = fb.cue
        if cue is not None and cue.kind in ("rest", "mvc"):
            self.instruction.setText(calibration_instruction(cue, fb))
            left = max(0, cue.stop - fb.position) / fb.fs
            self.countdown.setText(f"{left:4.1f} s left")
        elif run.phase in ("exercise", "done"):
            self.instruction.setText("Calibration complete")
            self.countdown.setText("")
        else:
            self.instruction.setText("Relax between trials")
            if run.next_cue_at is not None:
                self.countdown.setText(
                    f"next in {max(0, run.next_cue_at - fb.position) / fb.fs:4.1f} s")
            else:
                self.countdown.setText("")
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


def calibration_instruction(cue: Cue, fb: FeedbackSnapshot) -> str:
    if cue.kind == "rest":
        return "Rest: relax the whole face, eyes open, look ahead"
    target = cue.text.split(" ", 1)[1]
    code = target.split("-")[-1].upper()
    region = REGIONS.get(code)
    what = region.movement if region else code
    return f"Maximum effort: {what} ({region.muscle if region else code}), as strongly as you can"
