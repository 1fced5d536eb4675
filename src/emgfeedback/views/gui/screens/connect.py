"""The Connect screen: board, patient (typed or picked from the history), program."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from emgfeedback.views.gui.controller import ConnectRequest, PatientEntry
from emgfeedback.app.program import program_choices
from emgfeedback.errors import ConfigError
from emgfeedback.validate import validate_patient_id
from emgfeedback.views.gui.screens.common import _label, _title

log = logging.getLogger(__name__)


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
        self.patients = QComboBox()
        self.patients.addItem("New patient (type the id below)", None)
        self.patients.setToolTip("Patients of the history database: pseudonymous id, affected "
                                 "side, program of the last session")
        self.patients.currentIndexChanged.connect(self._patient_picked)
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
        form.addRow("Patient", self.patients)
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
        #: the camera or video file beside the EMG (video.live.VideoSpec, from the command line)
        self.video: Any = None
        self.extra: dict[str, Any] = {}
        self.ports_identified.connect(self._ports_identified)
        self.probe_thread: threading.Thread | None = None
        self.populate(probe_ports)

    def set_patients(self, entries: list[PatientEntry]) -> None:
        """Offer the patients of the history (GUI thread)."""
        self.patients.blockSignals(True)
        while self.patients.count() > 1:
            self.patients.removeItem(1)
        for e in entries:
            side = {"L": "left side", "R": "right side"}.get(e.affected_side, "side not given")
            prog = f", {e.program}" if e.program else ""
            self.patients.addItem(f"{e.patient_id}  ({side}{prog}; {e.sessions} session"
                                  f"{'s' if e.sessions != 1 else ''}, last {e.last})", e)
        self.patients.blockSignals(False)

    def _patient_picked(self) -> None:
        e = self.patients.currentData()
        if not isinstance(e, PatientEntry):
            return
        self.patient.setText(e.patient_id)
        if e.affected_side in ("L", "R"):
            self.side.setCurrentIndex(self.side.findData(e.affected_side))
        if e.program:
            k = self.program.findText(e.program)
            if k >= 0:
                self.program.setCurrentIndex(k)

    def populate(self, probe_ports: bool = True) -> None:
        """Fill the board list: simulated, simavr, serial ports, replay (GUI thread, fast); the
        boards behind the ports are identified in a helper thread when ``probe_ports``."""
        from emgfeedback.sources.facesim import SCENARIOS
        from emgfeedback.sources.registry import kinds as source_kinds

        self.board.clear()
        kinds = source_kinds()
        self.board.addItem("Simulated board (built-in patient model)", "simulated")
        if "simavr" in kinds:
            self.board.addItem("Simulated firmware (real firmware in simavr, fed the patient "
                               "model)", "simavr")
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
        self.scenario.setEnabled(kind in ("simulated", "simavr"))
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
        elif spec == "simavr":
            # The real firmware, its ADC fed with the facial model of the chosen scenario.
            opts.update(scenario=self.scenario.currentData(), seed=self.seed)
        elif spec == "replay" or spec.startswith("replay:"):
            path = self.replay_path.text().strip()
            if not path:
                return "choose a recording to replay"
            spec = f"replay:{path}"
        return ConnectRequest(spec, opts, self.patient.text().strip(),
                              str(self.program.currentData() or self.program.currentText()),
                              str(self.side.currentData()), record=self.record.isChecked(),
                              video=self.video)

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
