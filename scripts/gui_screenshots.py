#!/usr/bin/env python3
"""Make the screenshots of docs/gui.md: every screen of one simulated clinic session.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/gui_screenshots.py [--out docs/screenshots]

The simulated board (scenario ``session``, seed 3: synkinesis of the left eye during the first
smile rep) runs 10x faster than real time; each picture is taken when the *signal* reaches a given
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
from emgfeedback.views.gui.screens import ConnectRequest
from emgfeedback.views.gui.window import MainWindow

SHOTS: list[tuple[float, str, str]] = [
    (8.0, "check", "2-electrodes.png"),
    (33.5, "calibration", "3-calibration.png"),
    (87.8, "exercise", "4-exercise.png"),
    (89.0, "traces", "5-traces.png"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    ap.add_argument("--speed", type=float, default=10.0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])

    # 1. Connect, filled in, before connecting.  The session is recorded into a scratch folder
    # (with its own patient history database) so the Summary shows the recording and the report.
    scratch = Path(tempfile.gettempdir()) / "emgfeedback-screenshots"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    win = MainWindow(Config(), record_dir=scratch, db=scratch / "history.sqlite")
    win.connect_screen.set_choice("simulated", "session", "P-0042", "Smile x3 (clinic check)")
    win.show()
    app.processEvents()
    win.grab().save(str(args.out / "1-connect.png"))

    pending = list(SHOTS)
    saved: list[str] = []

    def hook(total: int) -> None:
        while pending and total >= pending[0][0] * 1000.0:
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
    app.processEvents()
    win.grab().save(str(args.out / "6-summary.png"))
    saved.append("6-summary.png")
    win.close()

    # 7. Patient mode on the same session, during the first smile rep.
    pat = MainWindow(Config(), patient_mode=True)
    pat.show()
    done: list[bool] = []

    def phook(total: int) -> None:
        if not done and total >= 87.8 * 1000.0:
            done.append(True)
            app.processEvents()
            pat.grab().save(str(args.out / "7-patient-mode.png"))
            saved.append("7-patient-mode.png")

    pat.frame_hook = phook
    pat.start_source(factory, replace(req, record=False))
    while not done:
        app.processEvents()
        time.sleep(0.002)
        if pat.errors:
            print("error:", pat.errors[-1], file=sys.stderr)
            return 1
    pat.close()
    print("saved:", ", ".join(["1-connect.png", *saved]), "in", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
