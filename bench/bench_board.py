"""Benchmark of the board path: decoder throughput, firmware capacity, host CPU while streaming.

    python bench/bench_board.py [--seconds 60] [--cpu-seconds 10] [--skip-firmware]

Prints a markdown section (with the command that produced it) on stdout.

* Decoder: MB/s of :class:`emgfeedback.protocol.FrameDecoder` on 8-channel frames (target >= 50,
  i.e. 500x a 1 Mbaud line), fed whole and in 4 kB reads (a serial read's size).
* Firmware capacity: the real firmware in simavr (free-running) for ``--seconds`` simulated
  seconds per configuration; a configuration passes with 0 lost samples.  The firmware refuses
  configurations whose frames exceed the 500000 baud line.
* Host CPU: process CPU time / wall time of this Python process while the serial source reads
  8 ch @ 1 kHz from the firmware paced to real time (the simulator runs in another process).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np

from emgfeedback import protocol as P
from emgfeedback.errors import ConfigError


def bench_decoder() -> tuple[float, float]:
    rng = np.random.default_rng(0)
    n = 200_000
    raw = P.encode_data_frames(np.arange(n), rng.integers(0, 1024, (n, 8)).astype(np.uint16))
    best_whole = best_pieces = 0.0
    for _ in range(3):
        d = P.FrameDecoder(n_channels=8)
        t = time.perf_counter()
        r = d.feed(raw)
        best_whole = max(best_whole, len(raw) / (time.perf_counter() - t) / 1e6)
        assert len(r.index) == n
        d = P.FrameDecoder(n_channels=8)
        t = time.perf_counter()
        got = 0
        for i in range(0, len(raw), 65536):
            got += len(d.feed(raw[i : i + 65536]).index)
        best_pieces = max(best_pieces, len(raw) / (time.perf_counter() - t) / 1e6)
        assert got == n
    return best_whole, best_pieces


def bench_decoder_small_reads() -> float:
    rng = np.random.default_rng(1)
    n = 20_000
    raw = P.encode_data_frames(np.arange(n), rng.integers(0, 1024, (n, 8)).astype(np.uint16))
    d = P.FrameDecoder(n_channels=8)
    t = time.perf_counter()
    for i in range(0, len(raw), 4096):
        d.feed(raw[i : i + 4096])
    return len(raw) / (time.perf_counter() - t) / 1e6


def run_firmware(nch: int, fs: int, seconds: float) -> dict[str, float | str]:
    from emgfeedback.sources.simavr import SimavrSource

    src = SimavrSource(fs=fs, n_channels=nch, realtime=False, input_seconds=5.0)
    want = int(seconds * fs)
    got = lost = 0
    t0 = time.perf_counter()
    try:
        with src:
            while got + lost < want:
                c = src.read(5.0)
                if c is None:
                    return {"result": "stalled"}
                got += len(c)
                lost += c.status.lost_samples
    except ConfigError:
        return {"result": "refused by firmware (line rate)"}
    wall = time.perf_counter() - t0
    sim = src.harness_stats().get("sim_seconds", float("nan"))
    return {"result": "ok" if lost == 0 else "LOSS", "got": got, "lost": lost,
            "wall": wall, "sim": sim}


def bench_cpu(seconds: float) -> tuple[float, int, int]:
    from emgfeedback.sources.simavr import SimavrSource

    src = SimavrSource(fs=1000, n_channels=8, realtime=True)
    got = lost = 0
    with src:
        src.read(5.0)
        c0, w0 = time.process_time(), time.perf_counter()
        while time.perf_counter() - w0 < seconds:
            c = src.read(1.0)
            if c is not None:
                got += len(c)
                lost += c.status.lost_samples
        cpu = (time.process_time() - c0) / (time.perf_counter() - w0)
    return 100.0 * cpu, got, lost


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="simulated seconds per config")
    ap.add_argument("--cpu-seconds", type=float, default=10.0)
    ap.add_argument("--skip-firmware", action="store_true")
    ap.add_argument("--skip-capacity", action="store_true")
    args = ap.parse_args(argv)
    cmd = "python bench/bench_board.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    print("## Board benchmark\n")
    print(f"Command: `{cmd.strip()}`\n")
    whole, pieces = bench_decoder()
    small = bench_decoder_small_reads()
    print("### Decoder throughput (8-channel frames, target >= 50 MB/s)\n")
    print("| input | MB/s |\n|---|---|")
    print(f"| 5.2 MB in one call | {whole:.1f} |")
    print(f"| 64 kB reads | {pieces:.1f} |")
    print(f"| 4 kB reads | {small:.1f} |\n")
    if args.skip_firmware:
        return 0
    from emgfeedback.sources.simavr import toolchain_missing

    problem = toolchain_missing()
    if problem:
        print(f"Firmware benchmarks skipped: {problem}\n")
        return 0
    print(f"### Firmware capacity (simavr, {args.seconds:g} simulated s per configuration)\n")
    print("| channels x rate | samples/s | line bytes/s | result | samples | lost | wall s |")
    print("|---|---|---|---|---|---|---|")
    best = None
    configs = () if args.skip_capacity else (
        (8, 1000), (8, 1250), (8, 1600), (6, 2000), (7, 2000), (8, 2000))
    for nch, fs in configs:
        r = run_firmware(nch, fs, args.seconds)
        line = fs * P.data_frame_size(nch)
        if r["result"] == "ok" and (best is None or nch * fs > best[0] * best[1]):
            best = (nch, fs)
        print(f"| {nch} x {fs} Hz | {nch * fs} | {line} | {r['result']} | {r.get('got', '-')} | "
              f"{r.get('lost', '-')} | {r['wall']:.1f} |" if "wall" in r else
              f"| {nch} x {fs} Hz | {nch * fs} | {line} | {r['result']} | - | - | - |")
        sys.stdout.flush()
    if best:
        print(f"\nHighest with 0 lost: **{best[0]} channels x {best[1]} Hz = "
              f"{best[0] * best[1]} samples/s**.\n")
    cpu, got, lost = bench_cpu(args.cpu_seconds)
    print("### Host CPU while streaming 8 ch @ 1 kHz (firmware in simavr paced to real time)\n")
    print(f"{cpu:.1f} % of one core for the Python process (reader thread + consumer loop), "
          f"{got} samples in {args.cpu_seconds:g} s, {lost} lost.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
