"""The Qt biofeedback GUI (the only Qt code of the project); see docs/gui.md.

``emgfeedback demo`` calls :func:`run_demo` when a display is present.  Modules:

``live``      ring buffers and counters handed from the session thread to the window (no Qt)
``program``   the Connect screen's patient-id check (no Qt)
``after``     after a recording: analysis, patient history, report (no Qt)

The session itself (source, chain, recorder, clinical engine, program runner) is the Qt-free
orchestrator's: :mod:`emgfeedback.app` (``app.session``, ``app.program``, ``app.feedback``).
``widgets``   painted region bar and traffic light
``screens``   Connect, Electrodes, Calibration, Exercise, Traces, Summary
``window``    the main window, the timer, errors, record and markers
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from emgfeedback.config import Config
from emgfeedback.stream import SourceBase

__all__ = ["run_demo"]

log = logging.getLogger(__name__)


def run_demo(args: argparse.Namespace, cfg: Config,
             make_source: Callable[[], SourceBase]) -> int:
    """Open the window on the source ``make_source`` builds (the board the command line named)
    and run the Qt event loop.

    The demo connects at once (patient id ``--patient``, default ``DEM-01``); it records only
    with ``--record FILE.edf``; ``--patient-mode`` shows only the exercise screen;
    ``--screenshot OUT.png --after S`` saves a picture of the window after S seconds and exits.
    Called in the main thread; returns the exit status.
    """
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from emgfeedback.app.program import program_choices
    from emgfeedback.validate import validate_patient_id
    from emgfeedback.views.gui.screens import ConnectRequest
    from emgfeedback.views.gui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    pg.setConfigOptions(antialias=False)
    win = MainWindow(cfg, patient_mode=bool(getattr(args, "patient_mode", False))
                     or cfg.ui.patient_mode)
    patient = str(getattr(args, "patient", None) or "DEM-01")
    validate_patient_id(patient.strip())
    record = getattr(args, "record", None)
    win.connect_screen.set_choice(args.board, args.scenario, patient, "Standard NMR")
    win.connect_screen.record.setChecked(bool(record))
    program = str(getattr(args, "program", None) or "Standard NMR")
    if program not in program_choices() and not program.lower().endswith(".toml"):
        program = "Standard NMR"
    req = ConnectRequest(args.board, {}, patient, program, "L", record=bool(record),
                         record_path=str(record or ""))
    win.start_source(make_source, req)
    win.show()
    shot_arg = getattr(args, "screenshot", None)
    shot = str(shot_arg) if shot_arg else None
    if shot:
        after = float(getattr(args, "after", 5.0) or 0.0)

        def save() -> None:
            try:
                win.tick()
                Path(shot).parent.mkdir(parents=True, exist_ok=True)
                ok = win.grab().save(shot)
                print(f"screenshot: {shot} ({'saved' if ok else 'FAILED'}) after {after:g} s",
                      file=sys.stderr)
            finally:
                win.close()
                app.quit()

        QTimer.singleShot(int(after * 1000), save)
    app.exec()
    win.disconnect_board()
    return 1 if (shot and not Path(shot).is_file()) else 0
