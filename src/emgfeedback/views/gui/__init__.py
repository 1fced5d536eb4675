"""The Qt biofeedback GUI (the only Qt code of the project); see docs/gui.md.

``emgfeedback demo`` calls :func:`run_demo` when a display is present.  Modules:

``live``      ring buffers handed from the session thread to the window (no Qt)
``program``   the Connect screen's patient-id check (programs and the runner: app.program)
``after``     after a recording: analysis, patient history, report (no Qt)
``controller`` the session without Qt: phases, screen state, guidance, pause/resume/stop
``words``     plain words for the patient (no Qt)
``sound``     synthesised tones and their player (no Qt)
``face``      the face map's geometry from the placement figure (no Qt)
``widgets``   painted region bar, traffic light, face map
``screens``   Connect, Electrodes, Calibration, Exercise, Traces, Summary, Patient
``window``    the main window: a thin view over the controller
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
             make_source: Callable[[], SourceBase] | None = None) -> int:
    """Open the window on the board named by the command line and run the Qt event loop.

    The Connect screen comes first, filled in from the command line (``--board``,
    ``--scenario``, ``--patient``, ``--program``, ``--record``); the therapist connects.  With
    ``--patient-mode`` the patient screen waits for its Start button (``--patient`` needed);
    ``--connect`` starts at once (scripted runs); both start the source ``make_source`` builds
    from the command line's board options (a board changed on the Connect screen is built from
    the screen's choice).  ``--screenshot OUT.png --after S`` saves a picture of the window after
    S seconds and exits.  Called in the main thread; returns the
    exit status.
    """
    from emgfeedback.errors import ConfigError
    from emgfeedback.views.gui.controller import ConnectRequest
    from emgfeedback.app.program import program_choices, resolve_program
    from emgfeedback.validate import validate_patient_id

    patient_mode = bool(getattr(args, "patient_mode", False)) or cfg.ui.patient_mode
    patient = getattr(args, "patient", None)
    if patient is not None:
        validate_patient_id(str(patient).strip())  # ConfigError: one line with the reason
    elif patient_mode:
        raise ConfigError("patient mode needs --patient ID: the pseudonymous id your therapist "
                          "gave you, e.g. P-0042")
    program = str(getattr(args, "program", None) or next(iter(program_choices())))
    resolve_program(program, cfg.detection)  # a bad program is one line now, not a banner later
    record = getattr(args, "record", None)
    # Qt only once the command line is known to be good (an error is one line, at once).
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from emgfeedback.views.gui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    pg.setConfigOptions(antialias=False)
    win = MainWindow(cfg, patient_mode=patient_mode)
    cs = win.connect_screen
    cs.set_choice(args.board, args.scenario, str(patient or ""), program)
    cs.record.setChecked(bool(record) or not patient_mode)
    cs.seed = int(getattr(args, "seed", 0) or 0)
    cs.video = getattr(args, "video_spec", None)  # --camera N / --video FILE
    speed = str(getattr(args, "speed", None) or "1")  # checked by the command line already
    cs.speed = None if speed in ("max", "inf") else float(speed)
    # A simulated script of 24 h takes seconds to build: the demo runs 2 h unless told otherwise.
    duration = args.duration if args.duration else 7200.0
    req = cs.request() if patient is not None else None
    if isinstance(req, str):
        raise ConfigError(req)
    if req is not None:
        opts = dict(req.options)
        if req.kind == "simulated":
            opts.update(duration=duration, fs=getattr(args, "fs", None),
                        mains=getattr(args, "mains", None),
                        confounders=",".join(getattr(args, "confounder", None) or []) or None)
        req = ConnectRequest(req.board, opts, req.patient_id, req.program, req.affected_side,
                             record=bool(record) or not patient_mode,
                             record_path=str(record or ""), video=req.video)
    win.patient_request = req
    win.patient_factory = make_source
    win.show()
    if getattr(args, "connect", False):
        if req is None:
            raise ConfigError("--connect needs --patient ID (a pseudonymous id, e.g. P-0042)")
        if patient_mode:
            win.start_patient()
        else:
            win.start_source(make_source, req)
            win.ctl.start_calibration()
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
