"""Recording and replay benchmark (issue 4).

* Recording 8 channels at 2 kHz live (real-time paced simulated board -> chain -> recorder):
  throughput and the share of one CPU the process used.
* Recorder alone, as fast as possible: samples per second :meth:`Recorder.write` takes (it puts
  each chunk on the file's digital grid, counts saturation on the rails and writes the file).
* Replay of a 1-hour recording at ``--speed max`` through the live chain: multiple of real time,
  and the resident memory sampled along the way (it must stay flat).

Run: ``python bench/bench_io.py [--live-s 20] [--hours 1]``; prints markdown.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from emgfeedback.app.pipeline import Pipeline, RecordingGrid
from emgfeedback.config import Config
from emgfeedback.io.edf.format import grid_for
from emgfeedback.io.edf.recorder import Recorder
from emgfeedback.sources.facesim import ModelParams
from emgfeedback.sources.replay import ReplaySource
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.stream import Chunk, SourceInfo, Status


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def live_recording(tmp: Path, seconds: float) -> dict[str, float]:
    params = replace(ModelParams(), fs=2000.0)
    src = SimulatedSource("session", duration=seconds, seed=0, speed=1.0, params=params)
    s = Pipeline(src, Config(), recording=RecordingGrid())
    s.open()
    rec = s.start_recording(tmp / "live.edf", patient="P-0000")
    c0, t0 = cpu_s(), time.monotonic()
    s.run(seconds)  # closes the source and the recorder
    wall, cpu = time.monotonic() - t0, cpu_s() - c0
    return {"seconds": seconds, "wall": wall, "cpu": cpu, "samples": rec.samples,
            "bytes": (tmp / "live.edf").stat().st_size}


def recorder_only(tmp: Path, seconds: float) -> dict[str, float]:
    info = SourceInfo("bench", 2000.0, tuple(f"EMG L-C{k:02d}" for k in range(8)))
    grid = grid_for(info)
    rec = Recorder(tmp / "fast.edf", info, patient="P-0000", grid=grid)
    x = grid.quantise(np.random.default_rng(0).normal(0, 50, (20, 8)))
    n = int(seconds * 2000)
    t0 = time.monotonic()
    for a in range(0, n, 20):
        rec.write(Chunk(x, a, 2000.0, info.channels, Status()))
    rec.close()
    return {"samples": n, "wall": time.monotonic() - t0}


def make_long(tmp: Path, hours: float) -> Path:
    """A long 8-ch 1 kHz recording written with the recorder (simulated 'rest', 60 s blocks)."""
    path = tmp / "long.edf"
    src = SimulatedSource("rest", duration=hours * 3600, seed=0, speed=None)
    rec = Recorder(path, src.info, patient="P-0000")
    with src:
        while not src.finished:
            rec.write(src._emit(min(60000, src.script.n_samples - src.position)))
    rec.close()
    return path


def replay_max(path: Path) -> dict[str, object]:
    src = ReplaySource(path, speed=None, block_ms=100.0)
    s = Pipeline(src, Config())
    chain = s.open()
    rss: list[float] = [rss_mb()]
    t0 = time.monotonic()
    c0 = cpu_s()
    k = 0
    while True:
        p = s.step()
        if p is None and src.finished:
            break
        k += 1
        if k % 600 == 0:  # every 60 s of signal
            rss.append(rss_mb())
    s.close()
    wall = time.monotonic() - t0
    return {"signal_s": s.samples / chain.fs, "wall": wall, "cpu": cpu_s() - c0, "rss": rss}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--live-s", type=float, default=20.0)
    ap.add_argument("--hours", type=float, default=1.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        live = live_recording(tmp, a.live_s)
        fast = recorder_only(tmp, 300.0)
        t0 = time.monotonic()
        long = make_long(tmp, a.hours)
        make_s = time.monotonic() - t0
        rep = replay_max(long)
        rss = rep["rss"]
        assert isinstance(rss, list)
    print(f"## bench_io (`python bench/bench_io.py --live-s {a.live_s:g} --hours {a.hours:g}`)\n")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print("| measure | value |\n|---|---|")
    print(f"| live recording 8 ch @ 2 kHz, real-time paced: signal / wall | "
          f"{live['samples'] / 2000:.1f} s / {live['wall']:.1f} s |")
    print(f"| throughput while recording live | {live['samples'] / live['wall']:.0f} samples/s "
          f"per channel ({live['samples'] * 8 / live['wall']:.0f} values/s) |")
    print(f"| CPU share while recording live (simulator + chain + recorder) | "
          f"{100 * live['cpu'] / live['wall']:.1f} % of one core |")
    print("| recorder alone (Recorder.write: grid + rails + file), as fast as possible, "
          f"8 ch @ 2 kHz, 10 ms chunks | "
          f"{fast['samples'] / fast['wall'] / 2000:.0f}x real time "
          f"({fast['samples'] * 8 / fast['wall'] / 1e6:.1f} M values/s) |")
    print(f"| writing the {a.hours:g} h 8 ch @ 1 kHz test file (simulator included) | "
          f"{make_s:.1f} s |")
    print(f"| replay {a.hours:g} h at --speed max through the live chain | "
          f"{rep['wall']:.1f} s = {float(rep['signal_s']) / float(rep['wall']):.0f}x real time |")
    print(f"| resident memory during replay (first / max / last sample of {len(rss)}) | "
          f"{rss[0]:.0f} / {max(rss):.0f} / {rss[-1]:.0f} MB |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
