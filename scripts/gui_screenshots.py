#!/usr/bin/env python3
"""Make the screenshots of docs/gui.md: every screen of one simulated clinic session.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/gui_screenshots.py [--out docs/screenshots]

The simulated board (scenario ``session``, seed 3: synkinesis of the left eye during the first
smile rep) runs 5x faster than real time; each picture is taken when the *signal* reaches a given
second, so the pictures do not depend on the machine's speed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import QApplication

from emgfeedback.config import Config
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.views.gui.controller import ConnectRequest
from emgfeedback.views.gui.window import MainWindow

SHOTS: list[tuple[float, str, str]] = [
    (33.5, "calibration", "3-calibration.png"),
    (86.9, "exercise", "4-exercise.png"),
    (89.0, "traces", "5-traces.png"),
]
#: Patient mode: (signal second, file).
PATIENT_SHOTS: list[tuple[float, str]] = [
    (33.5, "8-patient-effort.png"),
    (86.9, "7-patient-mode.png"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    ap.add_argument("--speed", type=float, default=5.0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])

    # 1. Connect, filled in, before connecting.  The session is recorded into a scratch folder
    # (with its own patient history database) so the Summary shows the recording and the report.
    scratch = Path(tempfile.gettempdir()) / "emgfeedback-screenshots"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    win = MainWindow(Config(), record_dir=scratch, db=scratch / "history.sqlite",
                     sound_sink=lambda buf, rate: None)
    win.resize(1600, 1000)
    win.connect_screen.set_choice("simulated", "session", "P-0042", "Smile x3 (clinic check)")
    win.show()
    app.processEvents()
    win.grab().save(str(args.out / "1-connect.png"))

    pending = list(SHOTS)
    saved: list[str] = []

    def hook(total: int) -> None:
        fs = win.live.fs if win.live is not None else 1000.0
        while pending and total >= pending[0][0] * fs:
            _, screen, name = pending.pop(0)
            win.show_screen(screen)
            win.refresh_current()
            app.processEvents()
            win.grab().save(str(args.out / name))
            saved.append(name)

    win.frame_hook = hook
    req = ConnectRequest("simulated", {}, "P-0042", "Smile x3 (clinic check)", "L",
                         record_path=str(scratch / "P-0042_session.edf"))
    speed = args.speed
    factory: Callable[[], SimulatedSource] = lambda: SimulatedSource(  # noqa: E731
        "session", duration=130.0, seed=3, speed=speed)
    win.start_source(factory, req)
    # 2. The electrode check waits for the therapist (the simulated patient is held).
    while not (win.ctl.held is not None and win.ctl.held.waiting_for_start
               and win.check_screen.states):
        app.processEvents()
        time.sleep(0.002)
    win.tick()
    app.processEvents()
    win.grab().save(str(args.out / "2-electrodes.png"))
    saved.append("2-electrodes.png")
    win.check_screen.start_btn.click()
    while win.current_screen != "summary" or pending:
        app.processEvents()
        time.sleep(0.002)
        if win.errors:
            print("error:", win.errors[-1], file=sys.stderr)
            return 1
        if win.worker is not None and not win.worker.is_alive() and pending:
            print("the stream ended before every screenshot was taken", file=sys.stderr)
            return 1
    # The recording is analysed and stored in a helper thread; the report button then enables.
    t0 = time.monotonic()
    while not win.summary_screen.report_btn.isEnabled() and time.monotonic() - t0 < 60:
        app.processEvents()
        time.sleep(0.01)
        if win.errors:
            print("error:", win.errors[-1], file=sys.stderr)
            return 1
    win.tick()
    sm = win.summary_screen
    sm.notes.setPlainText("Left eye joins in on the first smile; slower smiles help.")
    sm.house_brackmann.setCurrentIndex(3)
    sm.sunnybrook.setValue(6)
    sm.save_notes_btn.click()
    app.processEvents()
    win.grab().save(str(args.out / "6-summary.png"))
    saved.append("6-summary.png")
    # The window at a 1366x768 laptop's size (layouts reflow; tests/test_gui_session.py checks
    # 1280x720, 1366x768 and 1920x1080).
    win.resize(1366, 768)
    app.processEvents()
    win.grab().save(str(args.out / "6-summary-1366x768.png"))
    saved.append("6-summary-1366x768.png")
    win.close()

    # 7. Patient mode on the same session: a maximum effort, the first smile rep (the left eye
    # joins in: words, the face map flashes it), the summary in plain words.
    pat = MainWindow(Config(), patient_mode=True, record_dir=scratch,
                     db=scratch / "history.sqlite", sound_sink=lambda buf, rate: None)
    pat.resize(1280, 720)
    pat.show()
    ppending = list(PATIENT_SHOTS)

    def phook(total: int) -> None:
        fs = pat.live.fs if pat.live is not None else 1000.0
        while ppending and total >= ppending[0][0] * fs:
            _, name = ppending.pop(0)
            pat.patient_screen.refresh(pat.ctl.last.guidance, pat.ctl.last.feedback)  # type: ignore[union-attr]
            app.processEvents()
            pat.grab().save(str(args.out / name))
            saved.append(name)

    pat.frame_hook = phook
    pat.patient_request = replace(req, record=False)
    pat.patient_factory = factory
    pat.start_patient()
    while pat.ctl.phase != "summary":
        app.processEvents()
        time.sleep(0.002)
        if pat.errors:
            print("error:", pat.errors[-1], file=sys.stderr)
            return 1
    pat.tick()
    app.processEvents()
    pat.grab().save(str(args.out / "9-patient-summary.png"))
    saved.append("9-patient-summary.png")
    pat.close()
    print("saved:", ", ".join(["1-connect.png", *saved]), "in", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
