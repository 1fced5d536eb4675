"""GUI benchmark: redraw rate, CPU share and sample-to-screen latency of the live window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui.py

Set-up: the simulated board at 2 kHz with 8 channels, paced to real time, runs through the real
session thread (acquisition + DSP chain + clinical engine + ring buffers) while the window shows
the Traces screen (8 channels x 10 s x 2 kHz = 160,000 samples on screen).  The first 88 s of
the simulated session (rest, MVC trials, the start of the exercises) are produced as fast as
possible, so the ring buffers are full and the clinical engine's detector runs (smile reps)
while measuring.  (How the Traces screen draws: docs/gui.md, "Measured".)

* **Redraw rate**: frames per second when the GUI thread redraws back to back (pull from the ring
  buffers, set the curves, paint), with acquisition and processing running.
* **CPU share**: process CPU time / wall time (all threads; 100 % = one core) with the window
  redrawing at 30 fps, and with the window idle, for the cost of the drawing alone.
* **Sample-to-screen latency**: each chunk's time of arrival at the source (when ``read`` returns
  it) to the end of the first frame whose paint included its newest sample, at 30 and 60 fps.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import replace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtWidgets import QApplication

from emgfeedback.config import Config
from emgfeedback.sources.facesim import ModelParams
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.stream import Chunk, SourceBase
from emgfeedback.views.gui.screens import ConnectRequest
from emgfeedback.views.gui.window import MainWindow

FS = 2000.0
PREROLL_S = 88.0  # past the calibration: the detector runs during the measurements
COMMAND = "QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui.py"


class TimedSource(SourceBase):
    """The simulated board, recording when each chunk arrives (session thread)."""

    def __init__(self) -> None:
        self.inner = SimulatedSource("session", duration=600.0, seed=0, speed=None,
                                     params=replace(ModelParams(), fs=FS))
        self.info = self.inner.info
        self.arrivals: deque[tuple[int, float]] = deque()
        self.paced = False

    def open(self) -> None:
        self.inner.open()

    def start(self) -> None:
        self.inner.start()

    def read(self, timeout: float | None = None) -> Chunk | None:
        if not self.paced and self.inner.position >= PREROLL_S * FS:
            self.inner.speed = 1.0
            self.inner.start()  # real-time pacing from here on
            self.paced = True
        c = self.inner.read(timeout)
        if c is not None and self.paced:
            self.arrivals.append((c.stop, time.perf_counter()))
        return c

    @property
    def finished(self) -> bool:
        return self.inner.finished


def _frame(app: QApplication, win: MainWindow) -> None:
    win.tick()
    app.processEvents()  # delivers the paint events: the frame is on the backing store after this


def _run(seconds: float, fps: float | None, app: QApplication, win: MainWindow,
         src: TimedSource, lat: list[float] | None = None) -> tuple[int, float, float]:
    """Redraw for ``seconds`` at ``fps`` (None: back to back); returns frames, wall, cpu."""
    period = 0.0 if fps is None else 1.0 / fps
    frames = 0
    t0, c0 = time.perf_counter(), time.process_time()
    nxt = t0
    while True:
        now = time.perf_counter()
        if now - t0 >= seconds:
            break
        if period and now < nxt:
            time.sleep(nxt - now)
            continue
        nxt += period
        if fps is None or win.current_screen == "traces":
            _frame(app, win)
        else:
            app.processEvents()
        frames += 1
        if lat is not None:
            shown = win.traces_screen.shown_total
            t_shown = time.perf_counter()
            while src.arrivals and src.arrivals[0][0] <= shown:
                _, t_arr = src.arrivals.popleft()
                lat.append(t_shown - t_arr)
    return frames, time.perf_counter() - t0, time.process_time() - c0


def main() -> str:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    win = MainWindow(Config())
    win.show()
    src = TimedSource()
    win.start_source(lambda: src, ConnectRequest("simulated", {}, "B-0001", "Standard NMR",
                                                 record=False))
    win.timer.stop()  # this benchmark drives the frames itself
    win.ctl.start_calibration()  # the therapist's click: the stream is not held at its first cue
    while not src.paced:
        app.processEvents()
        time.sleep(0.01)
    win.tick()  # the protocol phase is known after this tick: no automatic screen change later
    win.show_screen("traces")
    _run(1.0, None, app, win, src)  # warm-up (first layout, autorange)
    assert win.current_screen == "traces" and win.traces_screen.frames > 0

    frames, wall, _ = _run(5.0, None, app, win, src)
    max_fps = frames / wall
    win.resize(1280, 720)  # the smallest window the layouts are made for (window.MIN_SIZE)
    _run(0.5, None, app, win, src)
    frames_s, wall_s, _ = _run(5.0, None, app, win, src)
    small_fps = frames_s / wall_s
    win.resize(1600, 1000)
    _run(0.5, None, app, win, src)

    src.arrivals.clear()
    win.show_screen("calibration")  # a screen without plots: the window idles
    _, wall_i, cpu_i = _run(5.0, 30.0, app, win, src)
    win.show_screen("traces")
    _, wall_30, cpu_30 = _run(5.0, 30.0, app, win, src)

    out: dict[float, np.ndarray] = {}
    for fps in (30.0, 60.0):
        src.arrivals.clear()
        lat: list[float] = []
        _run(6.0, fps, app, win, src, lat)
        out[fps] = np.array(lat) * 1000.0
    win.resize(1600, 1000)
    _run(0.5, None, app, win, src)
    errors = list(win.errors)
    fbk = win.feedback
    detecting = bool(fbk is not None and fbk.clinic is not None and fbk.clinic.detector is not None)
    assert win.current_screen == "traces"
    win.close()

    rows = [
        "## GUI: redraw rate, CPU, sample-to-screen latency",
        "",
        f"Command: `{COMMAND}`  ",
        "8 channels x 10 s at 2 kHz on the Traces screen: one plot with a fixed -10 … 0 s axis, "
        f"the 8 channels as offset bands, one curve for all filtered traces (min/max per pixel "
        f"column: {win.traces_screen.bins_used} columns) and one for all envelopes (mean per 4 "
        "columns), reduced incrementally; the simulated board paced to real time through the "
        "session thread, offscreen platform; the clinical engine's detector "
        f"{'running' if detecting else 'NOT running'} during the measurements.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| redraw rate, back to back, window 1600 x 1000 | {max_fps:.0f} fps | >= 60 fps |",
        f"| redraw rate, back to back, window 1280 x 720 | {small_fps:.0f} fps | >= 60 fps |",
        f"| CPU share at 30 fps (whole process, all threads) | {100 * cpu_30 / wall_30:.0f} % "
        "of one core | |",
        f"| CPU share with the window idle (acquisition + processing) | "
        f"{100 * cpu_i / wall_i:.0f} % of one core | |",
    ]
    for fps, a in out.items():
        if len(a):
            rows.append(f"| sample-to-screen latency at {fps:.0f} fps: median / p95 | "
                        f"{np.median(a):.1f} / {np.percentile(a, 95):.1f} ms "
                        f"({len(a)} chunks) | |")
    rows += [
        "",
        "Latency runs from the moment the source's `read` returns a chunk to the end of the first "
        "frame whose paint contains its newest sample; it adds the chain's group delay "
        "(filter + envelope, shown in the status bar) only in what the envelope means, not in "
        "when a sample is drawn.",
    ]
    if errors:
        rows.append(f"\nErrors shown in the window during the run: {errors}")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(main())
