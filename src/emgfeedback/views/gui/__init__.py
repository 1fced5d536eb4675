"""The Qt biofeedback GUI (the only Qt code of the project); see docs/gui.md.

``emgfeedback demo`` calls :func:`run_demo` when a display is present.  Modules:

``live``      ring buffers and counters handed from the session thread to the window (no Qt)
``program``   the protocol in samples: programs (clinical TOML), the program runner (no Qt)
``feedback``  the clinical engine (LiveClinic: calibration, Detector) for the screens (no Qt)
``after``     after a recording: analysis, patient history, report (no Qt)
``widgets``   painted region bar and traffic light
``screens``   Connect, Electrodes, Calibration, Exercise, Traces, Summary
``window``    the main window, the timer, errors, record and markers
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from emgfeedback.config import Config

__all__ = ["run_demo"]

log = logging.getLogger(__name__)


def run_demo(args: argparse.Namespace, cfg: Config) -> int:
    """Open the window on the board named by the command line and run the Qt event loop.

    The demo connects at once (patient id ``--patient``, default ``DEM-01``); it records only
    with ``--record FILE.edf``; ``--patient-mode`` shows only the exercise screen;
    ``--screenshot OUT.png --after S`` saves a picture of the window after S seconds and exits.
    Called in the main thread; returns the exit status.
    """
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from emgfeedback.cli import make_source
    from emgfeedback.errors import ConfigError
    from emgfeedback.views.gui.program import program_choices, validate_patient_id
    from emgfeedback.views.gui.screens import ConnectRequest
    from emgfeedback.views.gui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    pg.setConfigOptions(antialias=False)
    win = MainWindow(cfg, patient_mode=bool(getattr(args, "patient_mode", False))
                     or cfg.ui.patient_mode)
    # A simulated script of 24 h takes seconds to build: the demo runs 2 h unless told otherwise.
    duration = args.duration if args.duration else (7200.0 if args.board == "simulated" else None)
    patient = str(getattr(args, "patient", None) or "DEM-01")
    err = validate_patient_id(patient)
    if err:
        raise ConfigError(err)
    record = getattr(args, "record", None)
    win.connect_screen.set_choice(args.board, args.scenario, patient, "Standard NMR")
    win.connect_screen.record.setChecked(bool(record))
    program = str(getattr(args, "program", None) or "Standard NMR")
    if program not in program_choices() and not program.lower().endswith(".toml"):
        program = "Standard NMR"
    req = ConnectRequest(args.board, {}, patient, program, "L", record=bool(record),
                         record_path=str(record or ""))
    win.start_source(lambda: make_source(args, duration=duration), req)
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
