"""The six screens of a clinic session, each a QWidget updated from snapshots.

Every ``refresh(...)`` method is called by the window's timer in the GUI thread with plain,
already-copied data (:class:`~emgfeedback.views.gui.live.LiveStatus`,
:class:`~emgfeedback.app.feedback.FeedbackSnapshot`, ring-buffer copies); screens never touch
the session, the source or the filters.
"""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from emgfeedback.vocabulary import REGIONS, Cue, parse_annotation, parse_label
from emgfeedback.dsp.quality import assess
from emgfeedback.config import QualityConfig
from emgfeedback.errors import ConfigError
from emgfeedback.validate import validate_patient_id
from emgfeedback.views.gui.live import ColumnCache, LiveBuffers, LiveStatus
from emgfeedback.clinical.detect import RepResult, SynkinesisEvent
from emgfeedback.app.feedback import FeedbackSnapshot
from emgfeedback.app.program import RunnerSnapshot, program_choices
from emgfeedback.views.gui.widgets import COLOURS, RegionBar, TrafficLight

__all__ = [
    "CalibrationScreen",
    "CheckScreen",
    "ConnectRequest",
    "ConnectScreen",
    "ExerciseScreen",
    "SummaryScreen",
    "TracesScreen",
    "placement_figure_path",
    "session_figures",
]

log = logging.getLogger(__name__)


def _label(text: str = "", size: float = 0.0, bold: bool = False, muted: bool = False,
           wrap: bool = False) -> QLabel:
    lab = QLabel(text)
    # Style sheets, not setFont: the window's style sheet would override a widget font.
    css = []
    if size:
        css.append(f"font-size: {size:g}pt;")
    if bold:
        css.append("font-weight: bold;")
    if muted:
        css.append(f"color: {COLOURS['muted'].name()};")
    if css:
        lab.setStyleSheet(" ".join(css))
    lab.setWordWrap(wrap)
    return lab


def _title(text: str) -> QLabel:
    return _label(text, 20, bold=True)


def placement_figure_path() -> Path | None:
    """The electrode placement figure: the package's ``data/placement.svg`` (the only copy, see
    :func:`emgfeedback.views.summary.placement_svg_path`), or ``None`` when not installed."""
    from emgfeedback.views.summary import placement_svg_path

    return placement_svg_path()


# =========================================================================== connect
@dataclass(frozen=True)
class ConnectRequest:
    """What the therapist chose on the Connect screen."""

    board: str  # a board spec for sources.open_source: "simulated", "serial:/dev/ttyUSB0", ...
    options: dict[str, Any] = field(default_factory=dict)
    patient_id: str = ""
    program: str = ""  # a name of program_choices() or a program TOML file
    affected_side: str = "L"
    record: bool = True  # record to EDF+ from the first sample (replay then reproduces it)
    record_path: str = ""  # the first recording's file; default <record_dir>/<id>_<time>.edf


class ConnectScreen(QWidget):
    """Board choice, patient id and program.  Emits :attr:`connect_requested` (GUI thread).

    Serial ports are listed at once; asking each port which board it holds (IDENTIFY, ~2.5 s
    because an Arduino resets when the port opens) runs in a helper thread, whose result comes
    back through :attr:`ports_identified` and renames the entries.
    """

    connect_requested = Signal(object)
    disconnect_requested = Signal()
    ports_identified = Signal(object)  # list of (spec, text), from the probe thread

    def __init__(self, parent: QWidget | None = None, probe_ports: bool = True) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(40, 30, 40, 30)
        outer.addWidget(_title("Connect"))
        outer.addWidget(_label("Choose the board, the patient's pseudonymous id and the program.",
                               muted=True))
        form = QFormLayout()
        form.setHorizontalSpacing(24)
        form.setVerticalSpacing(14)
        self.board = QComboBox()
        self.scenario = QComboBox()
        self.replay_path = QLineEdit()
        self.replay_path.setPlaceholderText("recording to replay (.edf, .csv, ...)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        replay_row = QHBoxLayout()
        replay_row.addWidget(self.replay_path, 1)
        replay_row.addWidget(browse)
        self.replay_box = QWidget()
        self.replay_box.setLayout(replay_row)
        replay_row.setContentsMargins(0, 0, 0, 0)
        self.patient = QLineEdit()
        self.patient.setPlaceholderText("e.g. P-0042 (no names)")
        self.patient_msg = _label("", muted=True)
        self.program = QComboBox()
        for name, path in program_choices().items():
            self.program.addItem(name, str(path) if path else name)
        program_browse = QPushButton("Program file…")
        program_browse.clicked.connect(self._browse_program)
        program_row = QHBoxLayout()
        program_row.setContentsMargins(0, 0, 0, 0)
        program_row.addWidget(self.program, 1)
        program_row.addWidget(program_browse)
        self.program_box = QWidget()
        self.program_box.setLayout(program_row)
        self.side = QComboBox()
        self.side.addItem("Left side affected", "L")
        self.side.addItem("Right side affected", "R")
        self.record = QCheckBox("Record the session (EDF+ with its sidecar, from the first "
                                "sample)")
        self.record.setChecked(True)
        form.addRow("Board", self.board)
        form.addRow("Scenario", self.scenario)
        form.addRow("Replay file", self.replay_box)
        form.addRow("Patient id", self.patient)
        form.addRow("", self.patient_msg)
        form.addRow("Program", self.program_box)
        form.addRow("Affected side", self.side)
        form.addRow("Recording", self.record)
        box = QWidget()
        box.setLayout(form)
        box.setMaximumWidth(900)
        outer.addWidget(box)
        row = QHBoxLayout()
        self.connect_btn = QPushButton("Connect")
        self.disconnect_btn = QPushButton("Disconnect")
        self.disconnect_btn.setEnabled(False)
        for b in (self.connect_btn, self.disconnect_btn):
            b.setMinimumHeight(44)
            b.setMinimumWidth(160)
            row.addWidget(b)
        row.addStretch(1)
        outer.addLayout(row)
        self.message = _label("", wrap=True)
        outer.addWidget(self.message)
        outer.addStretch(1)
        self.connect_btn.clicked.connect(self._connect)
        self.disconnect_btn.clicked.connect(self.disconnect_requested.emit)
        self.board.currentIndexChanged.connect(self._board_changed)
        self.patient.textChanged.connect(self._patient_changed)
        self.speed: float | None = 1.0
        self.seed = 0
        self.extra: dict[str, Any] = {}
        self.ports_identified.connect(self._ports_identified)
        self.probe_thread: threading.Thread | None = None
        self.populate(probe_ports)

    def populate(self, probe_ports: bool = True) -> None:
        """Fill the board list: simulated, simavr, serial ports, replay (GUI thread, fast); the
        boards behind the ports are identified in a helper thread when ``probe_ports``."""
        from emgfeedback.sources.facesim import SCENARIOS
        from emgfeedback.sources.registry import kinds as source_kinds

        self.board.clear()
        kinds = source_kinds()
        self.board.addItem("Simulated board (built-in patient model)", "simulated")
        if "simavr" in kinds:
            self.board.addItem("Simulated firmware (real firmware in simavr)", "simavr")
        for spec, text in _serial_ports(identify=False):
            self.board.addItem(text, spec)
        self.board.addItem("Replay a recording…", "replay")
        self.scenario.clear()
        for name, text in SCENARIOS.items():
            self.scenario.addItem(f"{name}: {text}", name)
        self._board_changed()
        if probe_ports and any(str(self.board.itemData(i)).startswith("serial:")
                               for i in range(self.board.count())):
            self.probe_thread = threading.Thread(target=self._probe, name="emgfeedback-ports",
                                                 daemon=True)
            self.probe_thread.start()

    def _probe(self) -> None:
        """Identify the boards on the serial ports (probe thread)."""
        found = _serial_ports(identify=True)
        try:
            self.ports_identified.emit(found)
        except RuntimeError:  # the window was closed meanwhile
            pass

    def _ports_identified(self, found: list[tuple[str, str]]) -> None:
        for spec, text in found:
            i = self.board.findData(spec)
            if i >= 0:
                self.board.setItemText(i, text)

    def _board_changed(self) -> None:
        kind = str(self.board.currentData() or "")
        self.scenario.setEnabled(kind == "simulated")
        self.replay_box.setEnabled(kind == "replay")

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Recording to replay", "",
                                              "Recordings (*.edf *.bdf *.csv *.txt);;All (*)")
        if path:
            self.replay_path.setText(path)

    def _browse_program(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Exercise program", "",
                                              "Programs (*.toml);;All (*)")
        if path:
            self.add_program_file(path)

    def add_program_file(self, path: str) -> None:
        """Offer the program TOML ``path`` and select it; a file that does not load is refused
        with its one-line reason (GUI thread)."""
        from emgfeedback.clinical.exercises import load_program
        from emgfeedback.errors import EmgError

        try:
            prog = load_program(path)
        except EmgError as exc:
            self.message.setText(str(exc))
            return
        self.program.addItem(f"{prog.name} ({Path(path).name})", path)
        self.program.setCurrentIndex(self.program.count() - 1)

    def _patient_changed(self) -> None:
        try:
            validate_patient_id(self.patient.text().strip())
        except ConfigError as exc:
            self.patient_msg.setText(str(exc))
            return
        self.patient_msg.setText("ok")

    def set_choice(self, board: str, scenario: str | None = None, patient: str | None = None,
                   program: str | None = None) -> None:
        """Preselect (from the command line)."""
        kind = board.partition(":")[0]
        i = self.board.findData(board)
        if i < 0:
            i = self.board.findData(kind)
        if i < 0 and kind in ("serial", "replay"):
            self.board.addItem(board, board)
            i = self.board.count() - 1
        if i >= 0:
            self.board.setCurrentIndex(i)
        if kind == "replay" and ":" in board:
            self.replay_path.setText(board.partition(":")[2])
        if scenario:
            j = self.scenario.findData(scenario)
            if j >= 0:
                self.scenario.setCurrentIndex(j)
        if patient is not None:
            self.patient.setText(patient)
        if program:
            k = self.program.findText(program)
            if k < 0 and program.lower().endswith(".toml"):
                self.add_program_file(program)
            elif k >= 0:
                self.program.setCurrentIndex(k)

    def request(self) -> ConnectRequest | str:
        """The current choice, or the reason it cannot be used (one line)."""
        try:
            validate_patient_id(self.patient.text().strip())
        except ConfigError as exc:
            return str(exc)
        spec = str(self.board.currentData() or "simulated")
        opts: dict[str, Any] = {}
        if spec in ("simulated", "simavr") or spec.startswith("replay"):
            opts["speed"] = self.speed  # paced sources only (the registry rejects the rest)
        if spec == "simulated":
            # 2 h of script: a clinic session fits, and building it takes under a second.
            opts.update(scenario=self.scenario.currentData(), seed=self.seed, duration=7200.0,
                        **self.extra)
        elif spec == "replay" or spec.startswith("replay:"):
            path = self.replay_path.text().strip()
            if not path:
                return "choose a recording to replay"
            spec = f"replay:{path}"
        return ConnectRequest(spec, opts, self.patient.text().strip(),
                              str(self.program.currentData() or self.program.currentText()),
                              str(self.side.currentData()), record=self.record.isChecked())

    def _connect(self) -> None:
        req = self.request()
        if isinstance(req, str):
            self.message.setText(req)
            return
        self.message.setText("")
        self.connect_requested.emit(req)

    def set_connected(self, connected: bool, text: str = "") -> None:
        self.connect_btn.setEnabled(not connected)
        self.disconnect_btn.setEnabled(connected)
        self.message.setText(text)


def _serial_ports(identify: bool) -> list[tuple[str, str]]:
    """``[(spec, text)]`` of serial ports from the board module's ``list_ports``; with
    ``identify`` each port is asked which board it holds (seconds: never in the GUI thread)."""
    from emgfeedback.sources.serial import list_ports

    out = []
    try:
        for port in list_ports(identify=identify):
            dev = port.device
            b = port.board
            if b is not None:
                what = f"{b.board}, firmware {b.firmware_version}, {b.channels} ch @ {b.rate} Hz"
            elif identify:
                what = f"no board ({port.error})" if port.error else "no board"
            else:
                what = port.description if port.description not in ("", "n/a") else ""
            out.append((f"serial:{dev}", f"Serial {dev}  {what}".rstrip()))
    except Exception as exc:  # a listing failure must not stop the window
        log.warning("listing serial ports failed: %s", exc)
    return out


# =========================================================================== electrode check
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
        right.addWidget(self.sites)
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
        self.start_btn.setVisible(leading)
        self.follow_note.setText("" if leading else
                                 "This board plays its own protocol (simulated patient or "
                                 "recording): calibration and exercises follow its cues.")
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
                w.setMinimumSize(320, 320)
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


# =========================================================================== calibration
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
    channel = parse_annotation(cue.text).channel or ""
    code = channel.split("-")[-1]
    region = REGIONS.get(code)
    what = region.movement if region else code
    return f"Maximum effort: {what} ({region.muscle if region else code}), as strongly as you can"


# =========================================================================== exercise
class ExerciseScreen(QWidget):
    """Per region one large %MVC bar, both sides side by side, cue, timer, reps, symmetry.

    :attr:`red_log` keeps ``(sample, channel)`` whenever a quiet region's bar turned red, for
    tests and the summary.  ``patient`` enlarges everything and drops the details.
    """

    tone_requested = Signal()

    def __init__(self, patient: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.patient = patient
        outer = QVBoxLayout(self)
        outer.setContentsMargins(30, 20, 30, 20)
        top = QHBoxLayout()
        big = 34 if patient else 26
        self.cue = _label("Get ready", big, bold=True, wrap=True)
        self.timer = _label("", big)
        self.timer.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.reps = _label("", big * 0.7)
        self.reps.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.cue, 4)
        right = QVBoxLayout()
        right.addWidget(self.timer)
        right.addWidget(self.reps)
        top.addLayout(right, 1)
        outer.addLayout(top)
        self.bars_row = QHBoxLayout()
        self.bars_row.setSpacing(12)
        outer.addLayout(self.bars_row, 1)
        bottom = QHBoxLayout()
        self.tone = QCheckBox("Tone when a quiet region crosses its limit")
        self.tone.setVisible(not patient)
        bottom.addWidget(self.tone)
        bottom.addStretch(1)
        self.hint = _label("", muted=True)
        bottom.addWidget(self.hint)
        outer.addLayout(bottom)
        self.bars: dict[int, RegionBar] = {}
        self.symmetry = _label("", 20 if not patient else 26, bold=True)
        self.symmetry.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.red_log: list[tuple[int, str]] = []
        self._was_red: set[int] = set()
        self.affected = "L"

    def set_channels(self, channels: tuple[str, ...], affected: str) -> None:
        while self.bars_row.count():
            item = self.bars_row.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.setParent(None)
            elif item is not None and (lay := item.layout()) is not None:
                while lay.count():
                    sub = lay.takeAt(0)
                    sw = sub.widget() if sub is not None else None
                    if sw is not None:
                        sw.setParent(None)
        self.bars = {}
        self.affected = affected
        ids = [parse_label(c) for c in channels]
        sides = sorted({c.side for c in ids})
        for k, side in enumerate(sides):
            group = QFrame()
            group.setFrameShape(QFrame.Shape.StyledPanel)
            g = QVBoxLayout(group)
            name = {"L": "Left", "R": "Right"}[side]
            if len(sides) > 1:
                name += " (affected)" if side == affected else " (unaffected)"
            head = _label(name, 22 if self.patient else 16, bold=True)
            head.setAlignment(Qt.AlignmentFlag.AlignCenter)
            g.addWidget(head)
            row = QHBoxLayout()
            for i, cid in enumerate(ids):
                if cid.side != side:
                    continue
                bar = RegionBar(cid.code, cid.region.muscle)
                if self.patient:
                    bar.scale_font = 1.25
                self.bars[i] = bar
                row.addWidget(bar)
            g.addLayout(row, 1)
            self.bars_row.addWidget(group, 1)
            if k == 0 and len(sides) > 1:
                mid = QVBoxLayout()
                mid.addStretch(1)
                mid.addWidget(self.symmetry)
                mid.addStretch(1)
                holder = QWidget()
                holder.setLayout(mid)
                holder.setMinimumWidth(170)
                self.bars_row.addWidget(holder)
        self.red_log = []
        self._was_red = set()

    def refresh(self, fb: FeedbackSnapshot, run: RunnerSnapshot) -> None:
        """Bars from the detector's %MVC and limits; red where the detector flags synkinesis."""
        cue = fb.cue if fb.cue is not None and fb.exercise is not None else None
        values = fb.pct if fb.calibrated else fb.envelope_uv
        band = fb.band_pct or (0.0, 0.0)
        new_red = False
        for i, bar in self.bars.items():
            role = fb.role[i]
            alert = bool(fb.red[i]) and role == "quiet"
            if alert and i not in self._was_red:
                self.red_log.append((fb.position, fb.channels[i]))
                new_red = True
            if alert:
                self._was_red.add(i)
            else:
                self._was_red.discard(i)
            limit = float(fb.quiet_limit_pct[i])
            bar.set_value(float(values[i]), role, band, limit if np.isfinite(limit) else 0.0,
                          alert, fb.calibrated)
        if new_red and self.tone.isChecked():
            self.tone_requested.emit()
        if cue is not None and fb.exercise is not None:
            self.cue.setText(fb.exercise.cue or fb.exercise.name)
            self.timer.setText(f"Hold  {max(0, cue.stop - fb.position) / fb.fs:3.1f} s")
        elif run.phase == "done":
            self.cue.setText("Program complete: well done")
            self.timer.setText("")
        elif run.phase == "exercise" or (fb.last_cue is not None and fb.reps):
            self.cue.setText("Relax")
            if run.next_cue_at is not None:
                self.timer.setText(f"Rest  {max(0, run.next_cue_at - fb.position) / fb.fs:3.1f} s")
            else:
                self.timer.setText("Rest")
        else:
            self.cue.setText("Get ready")
            self.timer.setText("")
        current = run.reps_done + (1 if cue is not None else 0)
        self.reps.setText(f"Rep {min(current, run.reps_total)} of {run.reps_total}"
                          if run.reps_total else "")
        self.symmetry.setText(symmetry_text(fb, self.affected))
        if fb.error:
            hint = "no synkinesis detection: " + fb.error
        elif not fb.calibrated:
            hint = "not calibrated yet: bars show the envelope in µV above rest"
        else:
            hint = ""
        if self.hint.text() != hint:
            self.hint.setText(hint)


def symmetry_text(fb: FeedbackSnapshot, affected: str) -> str:
    """``Symmetry\\n0.62``: the detector's %MVC of the current target region, affected side over
    unaffected side, at this moment (the per-rep figure is on the Summary)."""
    ids = [parse_label(c) for c in fb.channels]
    tgt = [i for i, r in enumerate(fb.role) if r == "target"]
    aff = [i for i in tgt if ids[i].side == affected]
    una = [i for i in tgt if ids[i].side != affected]
    if not aff or not una:
        return "Symmetry\n–"
    a, u = float(fb.pct[aff[0]]), float(fb.pct[una[0]])
    if not np.isfinite(a) or not np.isfinite(u) or u < 5.0:
        return "Symmetry\n–"
    return f"Symmetry\n{a / u:.2f}\naffected /\nunaffected"


# =========================================================================== traces
class _Shading(pg.GraphicsObject):  # type: ignore[misc]
    """Filled rectangles in data coordinates (event periods), painted in one pass.

    One item for every shaded period instead of a ``LinearRegionItem`` each: a region item is two
    movable lines with their own bounds and signals, and scrolling moves every region on every
    frame.  Threads: GUI thread only.
    """

    def __init__(self) -> None:
        super().__init__()
        self._rects: list[tuple[QRectF, QColor]] = []
        self._bounds = QRectF()

    def set_rects(self, rects: list[tuple[QRectF, QColor]], bounds: QRectF) -> None:
        if bounds != self._bounds:
            self.prepareGeometryChange()
            self._bounds = bounds
        self._rects = rects
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, p: QPainter, *args: Any) -> None:
        for r, colour in self._rects:
            p.fillRect(r, colour)


class TracesScreen(QWidget):
    """Filtered signal with its envelope (or raw) per channel; scrolling 10 s; events shaded.

    Drawing is built for a high frame rate (docs/gui.md, "Measured"):

    * **one** plot whose time axis is fixed at -10 … 0 s (0 = the newest sample), so neither axis
      is laid out again while the signal scrolls; the channels are vertically offset bands of
      that plot, each scaled to its own amplitude (rescaled once a second; the left axis names
      the channel and its full scale);
    * all channels' signal traces are **one** curve and all envelopes another, each set with one
      ``setData`` call (``skipFiniteCheck``; a gap's NaN only breaks the line through the
      ``connect`` array) and drawn as line segments;
    * the signal is reduced to its min and max per pixel column of the plot, drawn as one
      vertical segment per column; the envelope to its mean per four columns; both through
      :class:`~emgfeedback.views.gui.live.ColumnCache`, which reduces only the samples that
      arrived since the last frame.

    Threads: GUI thread only; :meth:`refresh` reads the ring buffers of
    :class:`~emgfeedback.views.gui.live.LiveBuffers` (thread-safe copies).
    """

    SECONDS = 10.0
    ENV_COLUMNS = 4  # pixel columns per envelope point (the envelope is smooth: a few Hz)
    HALF_BAND = 0.45  # half height of a channel's band (bands are 1 apart)
    BRUSHES = {"rest": (120, 140, 170, 40), "mvc": (224, 180, 70, 45),
               "exercise": (90, 160, 110, 45), "synkinesis": (200, 69, 60, 80),
               "marker": (60, 60, 60, 90), "gap": (0, 0, 0, 60)}

    def __init__(self, parent: QWidget | None = None, bins: int | None = None) -> None:
        super().__init__(parent)
        self.fixed_bins = bins
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 10, 16, 10)
        head = QHBoxLayout()
        head.addWidget(_title("Traces"))
        head.addStretch(1)
        head.addWidget(_label("Show"))
        self.mode = QComboBox()
        self.mode.addItems(["filtered + envelope", "raw"])
        head.addWidget(self.mode)
        outer.addLayout(head)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(COLOURS["background"])
        outer.addWidget(self.view, 1)
        self.plot: pg.PlotItem = self.view.addPlot(row=0, col=0)
        p = self.plot
        p.setMenuEnabled(False)
        p.setMouseEnabled(x=False, y=False)
        p.hideButtons()
        p.enableAutoRange(False)
        p.setLabel("bottom", "seconds (0 = now)")
        tick_font = QFont()
        tick_font.setPointSizeF(11.0)
        for name in ("left", "bottom"):
            ax = p.getAxis(name)
            ax.setStyle(tickFont=tick_font)
            ax.setTextPen(pg.mkPen("#22262a"))
        p.getAxis("left").setWidth(170)
        p.setXRange(-self.SECONDS, 0.0, padding=0)
        self.shading = _Shading()
        self.shading.setZValue(-10)
        p.addItem(self.shading, ignoreBounds=True)
        # Measured choices (bench/bench_gui.py): line segments (QPainter.drawLines) are cheaper
        # than one path for these curves, and a 2 px envelope far cheaper than 2.5 px.
        self.curve_sig = pg.PlotCurveItem(pen=pg.mkPen("#9db4c8", width=1), skipFiniteCheck=True,
                                          antialias=False)
        self.curve_env = pg.PlotCurveItem(pen=pg.mkPen("#1f5e38", width=2), skipFiniteCheck=True,
                                          antialias=False)
        for c in (self.curve_sig, self.curve_env):
            c.setSegmentedLineMode("on")
            p.addItem(c)
        self.channels: tuple[str, ...] = ()
        self.mode.currentIndexChanged.connect(self._reset)
        self._caches: tuple[Any, ...] = ()  # (key, signal ColumnCache, envelope ColumnCache)
        self._conn: dict[tuple[str, int], np.ndarray] = {}
        self._xbuf: dict[str, np.ndarray] = {}
        self._ybuf: dict[str, np.ndarray] = {}
        self._scale: np.ndarray | None = None  # (2, channels): low and high of each band
        self._last_scale_at = -10**12
        self._scale_raw = False
        self._region_key: tuple[Any, ...] = ()
        self.frames = 0
        self.shown_total = 0
        self.bins_used = 0

    def set_channels(self, channels: tuple[str, ...]) -> None:
        """One band per channel, first channel at the top (GUI thread, once per connection)."""
        self.channels = channels
        self.plot.setYRange(-0.5, len(channels) - 0.5, padding=0)
        self._reset()
        self._set_ticks()

    def _reset(self) -> None:
        self._caches = ()
        self._conn.clear()
        self._scale = None
        self._region_key = ()

    def _centre(self, i: int) -> float:
        return float(len(self.channels) - 1 - i)

    def _set_ticks(self) -> None:
        ticks = []
        for i, ch in enumerate(self.channels):
            text = ch.replace("EMG ", "")
            if self._scale is not None:
                half = (self._scale[1, i] - self._scale[0, i]) / 2.0
                if np.isfinite(half):
                    text += f"  ±{half:.0f} µV"
            ticks.append((self._centre(i), text))
        self.plot.getAxis("left").setTicks([ticks, []])

    def _bins(self) -> int:
        """Pixel columns of the plot: one min/max pair each."""
        if self.fixed_bins:
            return self.fixed_bins
        return max(100, int(self.plot.getViewBox().width()))

    def _connect(self, kind: str, npts: int, per_col: int) -> np.ndarray:
        """The ``connect`` array: lines within a channel's points, none between channels;
        with two points per column (min, max) only the vertical segment of each column."""
        key = (kind, npts)
        conn = self._conn.get(key)
        if conn is None:
            conn = np.ones(npts * len(self.channels), dtype=np.int32)
            if per_col == 2:
                conn[1::2] = 0
            conn[npts - 1::npts] = 0  # the last point of a channel does not join the next
            if len(self._conn) > 8:
                self._conn.clear()
            self._conn[key] = conn
        return conn

    def _xy(self, kind: str, starts: np.ndarray, vals: np.ndarray, end: int,
            fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x (seconds before now) and y (band coordinates) of all channels end to end, written
        into buffers kept between frames, and the ``connect`` array."""
        assert self._scale is not None
        ncol, per_col, nch = vals.shape
        npts = ncol * per_col
        xb = self._xbuf.get(kind)
        yb = self._ybuf.get(kind)
        if xb is None or xb.shape != (nch, npts):
            xb = self._xbuf[kind] = np.empty((nch, npts))
            yb = self._ybuf[kind] = np.empty((nch, npts))
        assert yb is not None
        x1 = (starts - end) / fs
        xb[:] = np.repeat(x1, per_col) if per_col > 1 else x1
        lo, hi = self._scale
        mid = (lo + hi) / 2.0
        gain = self.HALF_BAND * 2.0 / np.where(hi > lo, hi - lo, 1.0)
        centre = np.arange(nch - 1, -1, -1, dtype=np.float64)
        np.subtract(vals.reshape(npts, nch).T, mid[:, None], out=yb)
        yb *= gain[:, None]
        # A peak beyond the band's scale is clipped at the band's edge, never drawn over the
        # neighbouring channel (the scale follows within a second).
        np.clip(yb, -0.5, 0.5, out=yb)
        yb += centre[:, None]
        x, y = xb.reshape(-1), yb.reshape(-1)
        conn = self._connect(kind, npts, per_col)
        bad = np.isnan(y)
        if bad.any():  # a gap: no segment starts or ends at a NaN point
            conn = conn.copy()
            conn[bad] = 0
            conn[:-1][bad[1:]] = 0
            y = np.where(bad, np.repeat(centre, npts), y)
        return x, y, conn

    def refresh(self, live: LiveBuffers, events: list[tuple[int, int, str, int]]) -> None:
        """Redraw from the ring buffers (GUI thread).

        ``events``: ``(start, stop, kind, channel)`` in samples, channel ``-1`` for all bands.
        """
        if live.envelope is None or not self.channels:
            return
        fs = live.fs
        n = int(self.SECONDS * fs)
        raw_mode = self.mode.currentIndex() == 1
        src = live.raw if raw_mode else live.filtered
        assert src is not None
        end = live.envelope.total  # written last: raw and filtered hold at least as much
        if end < 2:
            return
        bins = self._bins()
        key = (id(live), raw_mode, bins)
        if not self._caches or self._caches[0] != key:
            step = max(1, n // bins)
            self._caches = (key, ColumnCache(src, n, step, "minmax"),
                            ColumnCache(live.envelope, n, step * self.ENV_COLUMNS, "mean"))
        _, sig_cache, env_cache = self._caches
        self.bins_used = bins
        starts, vals = sig_cache.update(end)
        if len(starts) == 0:
            return
        if end - self._last_scale_at >= fs or self._scale is None or raw_mode != self._scale_raw:
            self._rescale(vals, raw_mode)
            self._last_scale_at = end
        x, y, conn = self._xy("sig", starts, vals, end, fs)
        self.curve_sig.setData(x, y, connect=conn, skipFiniteCheck=True)
        if raw_mode:
            self.curve_env.setData([], [])
        else:
            starts_e, vals_e = env_cache.update(end)
            xe, ye, conne = self._xy("env", starts_e, vals_e, end, fs)
            self.curve_env.setData(xe, ye, connect=conne, skipFiniteCheck=True)
        self._shade(events, end, fs)
        self.frames += 1
        self.shown_total = end

    def _rescale(self, vals: np.ndarray, raw_mode: bool) -> None:
        """A robust range per channel from the column min/max (cheap; once a second)."""
        self._scale_raw = raw_mode
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN after a long gap
            if raw_mode:
                lo = np.nanmin(vals[:, 0], axis=0)
                hi = np.nanmax(vals[:, 1], axis=0)
                pad = np.maximum((hi - lo) * 0.05, 1.0)
                lo, hi = lo - pad, hi + pad
            else:
                a = np.nanpercentile(np.abs(vals).reshape(-1, vals.shape[2]), 99.0, axis=0)
                a = np.maximum(a * 1.2, 20.0)
                lo, hi = -a, a
        lo = np.nan_to_num(lo, nan=-20.0)
        hi = np.nan_to_num(hi, nan=20.0)
        self._scale = np.vstack([lo, hi])
        self._set_ticks()

    def _shade(self, events: list[tuple[int, int, str, int]], end: int, fs: float) -> None:
        a = end - int(self.SECONDS * fs)
        visible = tuple(e for e in events if e[1] > a and e[0] < end)
        key = (visible, end)
        if key == self._region_key:
            return
        self._region_key = key
        nch = len(self.channels)
        rects: list[tuple[QRectF, QColor]] = []
        for s0, e0, kind, ch in visible:
            stop = max(e0, s0 + int(0.05 * fs))
            x0 = max(s0 - end, a - end) / fs
            x1 = min(stop - end, 0) / fs
            if x1 <= x0:
                continue
            if ch == -1:
                y0, y1 = -0.5, nch - 0.5
            else:
                c = self._centre(ch)
                y0, y1 = c - 0.5, c + 0.5
            rects.append((QRectF(x0, y0, x1 - x0, y1 - y0),
                          QColor(*self.BRUSHES.get(kind, (0, 0, 0, 30)))))
        self.shading.set_rects(rects, QRectF(-self.SECONDS, -0.5, self.SECONDS, nch))


# =========================================================================== summary
class SummaryScreen(QWidget):
    """Per-rep table, the session's figures, the recording and its report.

    :attr:`report_requested` is emitted by the *Write and open report* button, which is enabled
    once the recording has been analysed and stored in the patient history.
    """

    report_requested = Signal()

    HEADERS = ["Rep", "Exercise", "Side", "Target", "Target peak\n%MVC",
               "Mean active\n%MVC", "Time in\nband s", "Isolation", "Highest\nco-contraction %",
               "Synkinesis"]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(40, 30, 40, 30)
        outer.addWidget(_title("Summary"))
        self.figures = _label("No reps yet.", 15, wrap=True)
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
        self.table.verticalHeader().setDefaultSectionSize(40)
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
        self._key: tuple[Any, ...] = ()
        self.reps: tuple[RepResult, ...] = ()
        self.events: tuple[SynkinesisEvent, ...] = ()

    def set_recording(self, path: str) -> None:
        """Name the session's recording (GUI thread, once it is complete)."""
        self.recording.setText(f"Recording: {path} (and its .json sidecar)")

    def set_after_state(self, text: str, report: bool) -> None:
        """What happened after the recording (analysis, history, report) and whether the
        report button is usable (GUI thread)."""
        self.after.setText(text)
        self.report_btn.setEnabled(report)

    def refresh(self, fb: FeedbackSnapshot, affected: str) -> None:
        """The detector's rep results and events (GUI thread)."""
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
