#!/usr/bin/env python3
"""Screenshots of the mirror view beside the EMG bars (docs/video.md): the therapist's Exercise
screen and the patient's screen, with a shared face video playing in step with a simulated
session, at 1280x720 and at a laptop's 1366x768.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/mirror_screenshots.py \
        [--video ../shared/data/video/single_face.mp4] [--out docs/screenshots]

Each picture is taken when the *signal* reaches a given second (the first smile rep of the
simulated session, seed 3) and the mirror has shown a frame.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from emgfeedback.config import Config
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.video.live import VideoSpec
from emgfeedback.views.gui.controller import ConnectRequest
from emgfeedback.views.gui.window import MainWindow

ROOT = Path(__file__).resolve().parents[1]
AT_S = 86.9  # the first smile rep
SIZES = ((1280, 720), (1366, 768))


def run(patient: bool, video: Path, out: Path, speed: float, scratch: Path) -> list[str]:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    win = MainWindow(Config(), patient_mode=patient, record_dir=scratch,
                     db=scratch / "history.sqlite", sound_sink=lambda buf, rate: None)
    win.resize(*SIZES[0])
    win.show()
    saved: list[str] = []
    done = {"shot": False}

    def hook(total: int) -> None:
        fs = win.live.fs if win.live is not None else 1000.0
        mirror = (win.patient_screen if patient else win.exercise_screen).mirror
        if done["shot"] or total < AT_S * fs:
            return
        if not patient:
            win.show_screen("exercise")
        if mirror.frames_shown == 0:  # the face model is still starting (a busy machine)
            return
        done["shot"] = True
        for w, h in SIZES:
            win.resize(w, h)
            for _ in range(3):  # the newest frame into the mirror, then paint
                win.tick()
                app.processEvents()
            name = f"{'11-patient' if patient else '10-exercise'}-mirror-{w}x{h}.png"
            win.grab().save(str(out / name))
            saved.append(name)
        win.stop_session()

    win.frame_hook = hook
    req = ConnectRequest("simulated", {}, "P-0042", "Smile x3 (clinic check)", "L",
                         record=False, video=VideoSpec(path=video, loop=True))
    factory = lambda: SimulatedSource("session", duration=130.0, seed=3,  # noqa: E731
                                      speed=speed)
    if patient:
        win.patient_request = req
        win.patient_factory = factory
        win.start_patient()
    else:
        win.start_source(factory, req)
        win.ctl.start_calibration()
    t0 = time.monotonic()
    while not done["shot"] and time.monotonic() - t0 < 240:
        app.processEvents()
        time.sleep(0.002)
        if win.errors:
            print("error:", win.errors[-1], file=sys.stderr)
            break
    win.close()
    return saved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path,
                    default=ROOT.parent / "shared" / "data" / "video" / "single_face.mp4")
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    ap.add_argument("--speed", type=float, default=2.0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.gettempdir()) / "emgfeedback-mirror-screenshots"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    saved = run(False, args.video, args.out, args.speed, scratch)
    saved += run(True, args.video, args.out, args.speed, scratch)
    print("saved:", ", ".join(saved), "in", args.out)
    return 0 if len(saved) == 2 * len(SIZES) else 1


if __name__ == "__main__":
    sys.exit(main())
