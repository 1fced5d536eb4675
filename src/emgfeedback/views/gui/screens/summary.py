"""The summary screen: the detector's rep table, the session's figures, the recording."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from emgfeedback.clinical.detect import RepResult, SynkinesisEvent
from emgfeedback.app.feedback import FeedbackSnapshot
from emgfeedback.views.gui.screens.common import _label, _title
from emgfeedback.views.gui.widgets import COLOURS


class SummaryScreen(QWidget):
    """Per-rep table, the session's figures, the recording and its report.

    :attr:`report_requested` is emitted by the *Write and open report* button, which is enabled
    once the recording has been analysed and stored in the patient history.
    """

    report_requested = Signal()
    clinician_saved = Signal(object)  # a controller.Clinician

    HB = ("not graded", "I", "II", "III", "IV", "V", "VI")

    HEADERS = ["Rep", "Exercise", "Side", "Target", "Target peak\n%MVC",
               "Mean active\n%MVC", "Time in\nband s", "Isolation", "Highest co-\ncontraction %",
               "Synkinesis"]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(40, 30, 40, 30)
        outer.addWidget(_title("Summary"))
        self.plain = _label("", 15, bold=True, wrap=True)
        outer.addWidget(self.plain)
        self.figures = _label("No reps yet.", 13, wrap=True)
        outer.addWidget(self.figures)
        self.table = QTableWidget(0, len(self.HEADERS))
        self.table.setHorizontalHeaderLabels(self.HEADERS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for col in (0, 2):  # Rep, Side: narrow, so the long headers get the room
            head.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setStyleSheet("font-size: 13pt;")
        self.table.verticalHeader().setDefaultSectionSize(34)
        outer.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.recording = _label("Not recorded.", muted=True, wrap=True)
        row.addWidget(self.recording, 1)
        self.report_btn = QPushButton("Write and open report")
        self.report_btn.setMinimumHeight(44)
        self.report_btn.setEnabled(False)
        self.report_btn.clicked.connect(self.report_requested.emit)
        row.addWidget(self.report_btn)
        outer.addLayout(row)
        self.after = _label("", muted=True, wrap=True)
        outer.addWidget(self.after)
        outer.addWidget(self._clinician_box())
        self._key: tuple[Any, ...] = ()
        self.reps: tuple[RepResult, ...] = ()
        self.events: tuple[SynkinesisEvent, ...] = ()

    def _clinician_box(self) -> QWidget:
        """Therapist's notes, House-Brackmann grade and Sunnybrook synkinesis score."""
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 4, 0, 0)
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Therapist's notes (stored with the recording; no names)")
        self.notes.setMaximumHeight(76)
        row.addWidget(self.notes, 3)
        grades = QFormLayout()
        grades.setVerticalSpacing(4)
        self.house_brackmann = QComboBox()
        for i, text in enumerate(self.HB):
            self.house_brackmann.addItem(text, i or None)
        self.sunnybrook = QSpinBox()
        self.sunnybrook.setRange(-1, 15)
        self.sunnybrook.setSpecialValueText("not scored")
        self.sunnybrook.setValue(-1)
        grades.addRow("House-Brackmann", self.house_brackmann)
        grades.addRow("Sunnybrook synkinesis (0-15)", self.sunnybrook)
        row.addLayout(grades, 2)
        self.save_notes_btn = QPushButton("Save notes")
        self.save_notes_btn.setMinimumHeight(44)
        self.save_notes_btn.setEnabled(False)
        self.save_notes_btn.clicked.connect(self._save_notes)
        row.addWidget(self.save_notes_btn)
        return box

    def clinician(self) -> Any:
        """The fields as a :class:`~emgfeedback.views.gui.controller.Clinician`."""
        from emgfeedback.views.gui.controller import Clinician

        hb = self.house_brackmann.currentData()
        sb = self.sunnybrook.value()
        return Clinician(self.notes.toPlainText().strip(), int(hb) if hb else None,
                         None if sb < 0 else sb)

    def _save_notes(self) -> None:
        self.clinician_saved.emit(self.clinician())

    def set_notes_state(self, text: str) -> None:
        self.after.setText(text)

    def set_recording(self, path: str) -> None:
        """Name the session's recording (GUI thread, once it is complete)."""
        self.recording.setText(f"Recording: {path} (and its .json sidecar)")
        self.save_notes_btn.setEnabled(True)

    def set_after_state(self, text: str, report: bool) -> None:
        """What happened after the recording (analysis, history, report) and whether the
        report button is usable (GUI thread)."""
        self.after.setText(text)
        self.report_btn.setEnabled(report)

    def refresh(self, fb: FeedbackSnapshot, affected: str, guidance: Any = None) -> None:
        """The detector's rep results and events, the summary in plain words (GUI thread)."""
        said = guidance.summary if guidance is not None else ""
        if self.plain.text() != said:
            self.plain.setText(said)
        rows = rep_rows(fb.reps, fb.events)
        # The key is every shown cell: a rep still running changes figures that a coarser key
        # would miss, leaving a stale row on screen.
        key = (tuple(tuple(c) for c in rows), affected)
        if key == self._key:
            return
        self._key = key
        self.reps = fb.reps
        self.events = fb.events
        self.table.setRowCount(len(rows))
        for row, (r, cells) in enumerate(zip(fb.reps, rows)):
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == len(cells) - 1 and r.synkinesis:
                    item.setForeground(COLOURS["alert"])
                self.table.setItem(row, col, item)
        self.figures.setText(session_figures(fb.reps, fb.affected_side or affected, fb.fs))


def rep_rows(reps: tuple[RepResult, ...], events: tuple[SynkinesisEvent, ...]
             ) -> list[list[str]]:
    """The Summary table's cells: one row per rep and side, numbers as the detector gave them
    (``analyze`` of the recording gives the same :class:`RepResult` objects)."""
    rows = []
    for r in reps:
        worst = max(r.cocontraction.items(), key=lambda kv: kv[1], default=None)
        synk = sorted({e.channel for e in events
                       if e.rep == r.rep and e.channel.split("-", 1)[0] == r.side})
        rows.append([
            str(r.rep), r.exercise, r.side, r.target, f"{r.target_peak_pct_mvc:.1f}",
            f"{r.target_mean_active_pct_mvc:.1f}", f"{r.time_in_band_s:.2f}",
            f"{r.isolation:.2f}", f"{worst[0]} {worst[1]:.0f}" if worst else "–",
            ("yes: " + ", ".join(synk)) if r.synkinesis else "no",
        ])
    return rows


def session_figures(reps: tuple[RepResult, ...], affected: str, fs: float) -> str:
    """The session's figures as a few readable lines (means of the detector's rep figures;
    symmetry per rep from :func:`emgfeedback.clinical.symmetry.symmetry`)."""
    from emgfeedback.clinical.symmetry import symmetry

    if not reps:
        return "No reps yet."
    n = len({r.rep for r in reps})
    lines = [f"{n} reps"]
    for side in sorted({r.side for r in reps}):
        rs = [r for r in reps if r.side == side]
        synk = sum(r.synkinesis for r in rs)
        tag = " (affected)" if side == affected else ""
        lines.append(
            f"{'Left' if side == 'L' else 'Right'}{tag}: mean target peak "
            f"{np.mean([r.target_peak_pct_mvc for r in rs]):.0f} %MVC, time in band "
            f"{np.mean([r.time_in_band_s for r in rs]):.1f} s, isolation "
            f"{np.mean([r.isolation for r in rs]):.2f}, synkinesis in {synk} of {len(rs)} reps")
    ratios = [f"{e['ratio']:.2f}" for e in symmetry(reps, affected or None, fs)
              if e["ratio"] is not None]
    if ratios:
        lines.append("Symmetry per rep (affected / unaffected mean active %MVC): "
                     + ", ".join(ratios))
    return "\n".join(lines)
