"""Live budget and start-up (issue 13, items 2 and 3).

Run:  python bench/bench_live.py [--seconds 60] [--hour-minutes 60] [--runs 7] [--repeat 1]

Instructions per chunk (repeatable whatever the load; a few minutes a run)::

    valgrind --tool=callgrind --dump-before=getppid --dump-instr=no --dump-line=no \
        --callgrind-out-file=DIR/cg.out.%p python bench/bench_live.py --marks
    python bench/bench_live.py --instructions DIR

``--marks`` runs the exercise part only, each chain and detector call after a call of
``os.getppid`` (a dump of the counts there); ``--instructions`` prints their p50 / p90 / p99.

Prints a markdown section with

1. the cost per 10 ms chunk (8 channels at 2 kHz) of the DSP chain, the synkinesis detector and
   both, p50 / p99 / worst, during the exercise part of a simulated ``session`` (reps, events),
   garbage collector on as in a live session (target: chain + detector p99 <= 100 µs);
2. allocation growth over an hour of stream (360,000 chunks): the same session looped with its
   rep cues, chain and detector fed chunk by chunk, Python's traced memory (``tracemalloc``,
   which NumPy reports its buffers to) and the process RSS sampled every six minutes of signal;
   the slope of a least-squares line through the samples after the first, per hour (target: no
   growth beyond the detector's results, which a session keeps by design);
3. the wall time of a whole ``emgfeedback analyze FILE --json OUT`` process on a 10 s file
   (8 channels at 2 kHz), median of ``--runs`` runs after one warm-up, byte-compiled modules
   cached as an installed package has them; beside it, in the same run, a bare
   ``python -c "import numpy"`` (the floor no change of ours can go below). Target <= 0.5 s.

:func:`live_cost` is the one implementation of the per-chunk timing; bench_detection.py prints
its table too.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

FS = 2000.0
CHUNK = 20  # 10 ms at 2 kHz
HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def _session(seconds: float, seed: int = 7):  # type: ignore[no-untyped-def]
    """``(whole chunk, lead samples, calibration, montage, rails)`` of a simulated session."""
    from emgfeedback.app.evaluate import patient_calibration
    from emgfeedback.clinical.montage import Montage
    from emgfeedback.sources.facesim import ModelParams, calibration_s
    from emgfeedback.sources.simulated import SimulatedSource

    p = ModelParams(fs=FS)
    cal = patient_calibration(seed, p)
    lead = calibration_s(p) + 2.0
    src = SimulatedSource("session", lead + seconds, seed, speed=None, params=p)
    with src:
        whole = src.read_all()
    return whole, int(lead * FS), cal, Montage.from_labels(p.channels, "L"), src.info.adc_range_uv


def _build(cal, montage, rails):  # type: ignore[no-untyped-def]
    from emgfeedback.clinical.detect import Detector
    from emgfeedback.dsp.chain import Chain

    chain = Chain(FS, len(montage.names), adc_range_uv=rails)
    return chain, Detector.for_chain(chain, montage, cal)


def live_cost(seconds: float = 60.0, clock: str = "wall", repeat: int = 1
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """µs per 10 ms chunk of ``Chain.process`` and ``Detector.feed`` over the exercise part of
    a simulated session (after its calibration protocol), and the number of synkinesis events
    the detector raised: ``(chain, detector, events)``.  ``clock``: ``wall`` (what the budget
    is about) or ``cpu`` (this thread's CPU time: what a loaded machine does not inflate by
    running other processes in between, though it still slows the caches).  ``repeat``: the
    same chunks through ``repeat`` fresh chains and detectors, and per chunk the least time of
    each (a loaded machine's interruptions and slow spells are rarely at one chunk in every
    pass; the cost a chunk's own work takes is)."""
    whole, lead, cal, montage, rails = _session(seconds)
    parts = []
    rest = whole
    while len(rest):
        part, rest = rest.split(CHUNK)
        parts.append(part)
    now = time.perf_counter_ns if clock == "wall" else time.thread_time_ns
    best_chain = best_det = np.full(len(parts), np.inf)
    events = 0
    for _ in range(max(1, repeat)):
        chain, det = _build(cal, montage, rails)
        t_chain, t_det = [], []
        for part in parts:
            t0 = now()
            proc = chain.process(part)
            t1 = now()
            det.feed(proc)
            t2 = now()
            t_chain.append(t1 - t0)
            t_det.append(t2 - t1)
        best_chain = np.minimum(best_chain, t_chain)
        best_det = np.minimum(best_det, t_det)
        events = len(det.events)
    skip = lead // CHUNK  # the exercise part (reps, events), not the calibration
    return best_chain[skip:] / 1e3, best_det[skip:] / 1e3, events


def cost_table(a: np.ndarray, b: np.ndarray, cpu: tuple[np.ndarray, np.ndarray] | None = None
               ) -> list[str]:
    """Markdown rows: wall p50/p99/worst of chain, detector, both (and CPU p50/p99)."""
    head = "| per 10 ms chunk, 8 ch at 2 kHz | p50 µs | p99 µs | worst µs |"
    rule = "|---|---|---|---|"
    if cpu is not None:
        head += " CPU p50 µs | CPU p99 µs |"
        rule += "---|---|"
    rows = [head + " target |", rule + "---|"]
    sets = [("chain (dsp)", a, "", None if cpu is None else cpu[0]),
            ("detector", b, "", None if cpu is None else cpu[1]),
            ("**chain + detector**", a + b, "p99 <= 100 µs",
             None if cpu is None else cpu[0] + cpu[1])]
    for name, v, target, c in sets:
        row = f"| {name} | {np.median(v):.0f} | {np.percentile(v, 99):.0f} | {v.max():.0f} |"
        if c is not None:
            row += f" {np.median(c):.0f} | {np.percentile(c, 99):.0f} |"
        rows.append(row + f" {target} |")
    return rows


def _looped(whole, lead: int, minutes: float) -> Iterator:  # type: ignore[no-untyped-def]
    """Chunks of ``minutes`` of signal: the session's calibration once, then its exercise part
    over and over with its cues shifted to each pass (sample indices keep counting)."""
    from emgfeedback.stream import Chunk

    n_total = int(minutes * 60 * FS)
    body = whole.data[lead:]
    marks = [replace(m, sample=m.sample - lead) for m in whole.markers if m.sample >= lead]
    k = 0
    while k < n_total:
        if k < lead:
            a = k
            data = whole.data[a:min(a + CHUNK, lead)]
            mk = tuple(m for m in whole.markers if a <= m.sample < a + CHUNK)
        else:
            j = (k - lead) % len(body)
            base = k - j
            data = body[j:j + CHUNK]
            mk = tuple(replace(m, sample=base + m.sample) for m in marks
                       if j <= m.sample < j + len(data))
        yield Chunk(data, k, FS, whole.channels, markers=mk)
        k += len(data)


def allocation_growth(minutes: float = 60.0
                      ) -> tuple[list[tuple[float, float, float]], int, int]:
    """``([(minute, traced MB, RSS MB), ...], reps, events)`` over ``minutes`` of stream,
    sampled at the start of every pass over the session's exercise part (the same phase of
    the loop each time: the same reps are open, so differences are growth)."""
    whole, lead, cal, montage, rails = _session(60.0)
    chain, det = _build(cal, montage, rails)
    page = os.sysconf("SC_PAGE_SIZE")
    body = len(whole) - lead

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page / 1e6

    samples: list[tuple[float, float, float]] = []
    tracemalloc.start()
    try:
        for chunk in _looped(whole, lead, minutes):
            if chunk.start >= lead and (chunk.start - lead) % body == 0:
                gc.collect()
                samples.append((chunk.start / FS / 60.0, tracemalloc.get_traced_memory()[0] / 1e6,
                                rss_mb()))
            det.feed(chain.process(chunk))
    finally:
        tracemalloc.stop()
    return samples, len(det.reps), len(det.all_events)


def _slope_per_hour(samples: list[tuple[float, float, float]], col: int) -> float:
    pts = samples[1:]  # after the first pass (first allocations)
    t = np.array([p[0] for p in pts]) / 60.0
    y = np.array([p[col] for p in pts])
    return float(np.polyfit(t, y, 1)[0]) if len(pts) > 1 else 0.0


def startup(runs: int = 7) -> tuple[float, float, float]:
    """``(median s, fastest s, median of a bare numpy import s)`` of whole processes."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(SRC)
    with tempfile.TemporaryDirectory() as tmp:
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pyc")  # byte-code cache, as installed
        path, out = os.path.join(tmp, "s10.edf"), os.path.join(tmp, "a.json")
        subprocess.run([sys.executable, "-m", "emgfeedback", "simulate", "--duration", "10",
                        "--no-calibration", "--fs", str(int(FS)), "--out", path], env=env,
                       check=True, capture_output=True)
        cmd = [sys.executable, "-m", "emgfeedback", "analyze", path, "--json", out]
        floor = [sys.executable, "-c", "import numpy"]

        def wall(c: list[str]) -> float:
            t0 = time.perf_counter()
            subprocess.run(c, env=env, check=True, capture_output=True)
            return time.perf_counter() - t0

        wall(cmd)  # warm-up: byte-compiles our modules into the cache
        wall(floor)
        times, floors = [], []
        for _ in range(runs):
            times.append(wall(cmd))
            floors.append(wall(floor))
    return statistics.median(times), min(times), statistics.median(floors)


def _defer_max() -> int:
    from emgfeedback.dsp.quality import DEFER_MAX

    return DEFER_MAX


def marked_run(seconds: float = 60.0) -> int:
    """The exercise part of the session of :func:`live_cost` in 10 ms chunks, each chain and
    each detector call between calls of ``os.getppid()`` (under ``valgrind --tool=callgrind
    --dump-before=getppid`` a dump of the counts, see :func:`instruction_table`); the
    calibration part before it is fed as one chunk (the chain and the detector are chunk
    invariant: the same state; 10 ms chunks would take most of the run under valgrind).
    Returns the number of chunks marked."""
    whole, lead, cal, montage, rails = _session(seconds)
    chain, det = _build(cal, montage, rails)
    head, rest = whole.split(lead)
    det.feed(chain.process(head))
    parts = []
    while len(rest):
        part, rest = rest.split(CHUNK)
        parts.append(part)
    mark = os.getppid
    for part in parts:
        mark()
        p = chain.process(part)
        mark()
        det.feed(p)
        mark()  # (the loop's own work after it, counted apart)
    return len(parts)


def instruction_table(folder: str) -> list[str]:
    """Markdown rows: instructions per chunk of the chain, the detector and both, from the dumps
    of a :func:`marked_run` under callgrind in ``folder`` (``cg.out.PID.N``, in order)."""
    import glob
    import re

    def part(f: str) -> int:
        m = re.search(r"\.(\d+)$", f)
        return int(m.group(1)) if m else -1

    totals = []
    for f in sorted((f for f in glob.glob(os.path.join(folder, "cg.out.*")) if part(f) > 0),
                    key=part):
        with open(f) as fh:
            for line in fh:
                if line.startswith(("summary:", "totals:")):
                    totals.append(int(line.split()[1]))
                    break
    # the first: everything before the first mark; then per chunk its chain, its detector and
    # the loop's work before the next chunk
    v = np.array(totals[1:], dtype=float)
    k = len(v) // 3
    a, b = v[0:3 * k:3], v[1:3 * k:3]
    rows = ["| instructions per 10 ms chunk | p50 | p90 | p99 | worst | mean |",
            "|---|---|---|---|---|---|"]
    for name, x in (("chain (dsp)", a), ("detector", b), ("**chain + detector**", a + b)):
        rows.append(f"| {name} | {np.median(x) / 1e3:.0f}k | {np.percentile(x, 90) / 1e3:.0f}k | "
                    f"{np.percentile(x, 99) / 1e3:.0f}k | {x.max() / 1e3:.0f}k | "
                    f"{x.mean() / 1e3:.0f}k |")
    rows.append(f"\n{k} chunks.")
    return rows


def _load() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on this platform
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="exercise part timed (s)")
    ap.add_argument("--hour-minutes", type=float, default=60.0,
                    help="minutes of stream for the allocation figure (default: an hour)")
    ap.add_argument("--runs", type=int, default=7, help="whole-process runs of analyze")
    ap.add_argument("--repeat", type=int, default=1,
                    help="passes over the chunks; per chunk the least time of each (for a "
                         "loaded machine; default 1)")
    ap.add_argument("--marks", action="store_true",
                    help="only the marked run for callgrind (see the module docstring)")
    ap.add_argument("--instructions", metavar="DIR",
                    help="only the instructions per chunk from a marked run's dumps in DIR")
    args = ap.parse_args()
    if args.marks:
        print(f"{marked_run(args.seconds)} chunks marked")
        return 0
    if args.instructions:
        print("\n".join(instruction_table(args.instructions)))
        return 0
    cmd = " ".join(["python bench/bench_live.py", *sys.argv[1:]])
    print("## Live budget and start-up (issue 13)\n")
    print(f"Command: `{cmd}` (part of `make bench`); {platform.machine()}, {os.cpu_count()} "
          f"cores, Python {platform.python_version()}, NumPy {np.__version__}. Simulated "
          "`session` (seed 7), 8 channels at 2 kHz, chain with its defaults (mains auto, 20-450 Hz "
          "band-pass, notches, 8 Hz envelope, quality), detector with the patient's calibration; "
          "the garbage collector runs as in a live session.\n")
    load = _load()
    a, b, events = live_cost(args.seconds, repeat=args.repeat)
    ca, cb, _ = live_cost(args.seconds, clock="cpu", repeat=args.repeat)
    print("\n".join(cost_table(a, b, (ca, cb))))
    passes = ("in one pass, the thread's CPU time (`thread_time`) in a second pass over the "
              "same chunks" if args.repeat <= 1 else
              f"in {args.repeat} passes, the thread's CPU time (`thread_time`) in {args.repeat} "
              "more over the same chunks, per chunk the least time of the passes for the chain "
              "and for the detector (chain + detector: their sum)")
    print(f"\n{len(a)} chunks of the exercise part ({args.seconds:g} s of reps and rests, "
          f"{events} synkinesis events raised); wall clock (`perf_counter`) {passes}. "
          "No quality snapshot is read (as with no view open): the chain's quality meter "
          "defers the 10 ms windows and computes them in a batch every "
          f"{_defer_max()} chunks, one of the worst chunks; a view reading a snapshot a frame "
          "computes the few windows before it in its own thread. "
          f"Load average when the section started: {load}.\n")
    samples, reps, n_events = allocation_growth(args.hour_minutes)
    n_chunks = int(args.hour_minutes * 60 * FS) // CHUNK
    print(f"Allocation over {args.hour_minutes:g} minutes of stream ({n_chunks:,} chunks, "
          f"{reps} reps and {n_events} events kept as the session's results):\n")
    print("| minute of stream | traced by tracemalloc MB | process RSS MB |")
    print("|---|---|---|")
    step = max(1, len(samples) // 10)
    for m, tr, rss in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        print(f"| {m:.1f} | {tr:.3f} | {rss:.1f} |")
    st, sr = _slope_per_hour(samples, 1), _slope_per_hour(samples, 2)
    per = (samples[-1][1] - samples[1][1]) * 1e6 / max(1, reps + n_events) if len(samples) > 2 \
        else 0.0
    print(f"\nGrowth (least squares over the passes after the first): **{st * 1000:+.0f} kB per "
          f"hour** traced, {sr:+.1f} MB per hour RSS; that is about {per:,.0f} bytes per rep "
          "result or event kept (the session's results, and the detector's event queue that a "
          "view would drain; target: no growth beyond the results).\n")
    med, best, floor = startup(args.runs)
    print("| whole process | median s | fastest s | target |")
    print("|---|---|---|---|")
    print(f"| `emgfeedback analyze FILE --json OUT`, 10 s file, 8 ch at 2 kHz | {med:.2f} | "
          f"{best:.2f} | <= 0.5 s |")
    print(f"| `python -c \"import numpy\"` (floor, same run) | {floor:.2f} | | |")
    print(f"\n{args.runs} runs each after one warm-up (byte-code cached, as an installed package "
          "has it).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
