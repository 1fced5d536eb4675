"""Offline benchmark (issue 13, items 1 and 4): whole-process analysis of a 30-minute session
beside BrainFlow's and NeuroKit2's filters on the same data, memory on 30 minutes and 2 hours,
the session report, and the history import on one core and on two workers.

Run: ``python bench/bench_offline.py`` (``make bench`` runs it with the others); prints a
markdown section.  Every figure comes from this one run on the same files: simulated ``session``
recordings (rest, MVC trials, then exercise reps until the end), 8 channels at 2 kHz, written as
EDF+ by the live recorder.  Commands are timed as new processes (imports included); peak memory
is GNU time's maximum resident set of that process.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from bench.bench_report import CPU, _t, run_cli  # noqa: E402  (the one timing helper)

from emgfeedback.io.edf.recorder import Recorder  # noqa: E402
from emgfeedback.io.edf.sidecar import analysis_path, report_data_path  # noqa: E402
from emgfeedback.io.importers import load  # noqa: E402
from emgfeedback.sources.facesim import ModelParams  # noqa: E402
from emgfeedback.sources.simulated import SimulatedSource  # noqa: E402

COMMAND = "python bench/bench_offline.py"
FS = 2000.0


def write_session(path: Path, seconds: float, seed: int, patient: str = "P-0131") -> Path:
    """A simulated session of ``seconds`` (8 ch at 2 kHz) written by the live recorder, 60 s
    at a time (so a 2-hour file never sits in memory)."""
    src = SimulatedSource("session", duration=seconds, seed=seed, speed=None,
                          params=replace(ModelParams(), fs=FS), block_ms=60_000.0)
    rec = Recorder(path, src.info, patient=patient,
                   sidecar={"patient": patient, "simulated": True})
    with src:
        while (c := src.read()) is not None:
            rec.write(c)
    rec.close()
    return path


def brainflow_envelope(x: np.ndarray) -> float | None:
    """BrainFlow DataFilter in process on ``x`` (channels, samples): 20-450 Hz band-pass
    (4th order), 48-52 Hz band-stop (4th order), rectification, 8 Hz low-pass (2nd order), the
    steps of our chain's envelope; seconds, or None without brainflow."""
    try:
        from brainflow.data_filter import DataFilter, FilterTypes
    except ImportError:
        return None
    bw = FilterTypes.BUTTERWORTH.value
    data = np.ascontiguousarray(x)
    t0 = time.perf_counter()
    for row in data:
        DataFilter.perform_bandpass(row, int(FS), 20.0, 450.0, 4, bw, 0.0)
        DataFilter.perform_bandstop(row, int(FS), 48.0, 52.0, 4, bw, 0.0)
        np.abs(row, out=row)
        DataFilter.perform_lowpass(row, int(FS), 8.0, 2, bw, 0.0)
    return time.perf_counter() - t0


def kernel_floor(x: np.ndarray) -> tuple[float, int, float, int]:
    """CPU seconds of SciPy's SOS kernel alone (the compiled recursion every filter of ours
    runs in) over ``x`` (channels, samples) in 8-s blocks on one thread, nothing else timed:
    ``(ours, our sections, brainflow's filters, their sections)``.  Ours: the chain's DC
    high-pass and band-pass, 50 Hz notches and envelope low-pass and the artefact flags' two
    filters, as built for this stream (:class:`Chain`, :class:`ArtefactFlags`); BrainFlow's:
    the filters :func:`brainflow_envelope` asks it for, designed by ``scipy.signal.butter``
    with the same orders.  The floor under any whole-process figure of ours, whatever the rest
    of the analysis costs."""
    from scipy import signal

    from emgfeedback.dsp.chain import Chain
    from emgfeedback.dsp.filters import sosfilt_kernel
    from emgfeedback.dsp.quality import ArtefactFlags

    kernel = sosfilt_kernel()
    c = x.shape[0]
    chain = Chain(FS, c, measure_quality=False)
    chain._set_mains(50)
    assert chain._notch is not None
    flags = ArtefactFlags(FS, c)
    ours = [chain.front_sos, chain._notch.sos, chain.envelope_stage.sos, flags._wide.sos,
            flags._lf.sos]
    theirs = [signal.butter(4, [20.0, 450.0], "bandpass", fs=FS, output="sos"),
              signal.butter(4, [48.0, 52.0], "bandstop", fs=FS, output="sos"),
              signal.butter(2, 8.0, "lowpass", fs=FS, output="sos")]
    block = int(8 * FS)

    def run(cascades: list[np.ndarray]) -> float:
        zi = [np.zeros((c, len(s), 2)) for s in cascades]
        spent = 0.0
        for a in range(0, x.shape[1], block):
            buf = np.ascontiguousarray(x[:, a:a + block])
            for s, z in zip(cascades, zi):
                t0 = time.thread_time()
                kernel(np.ascontiguousarray(s), buf, z)
                spent += time.thread_time() - t0
        return spent

    return (run(ours), sum(len(s) for s in ours), run(theirs), sum(len(s) for s in theirs))


def thread_split(path: Path) -> dict[str, float]:
    """CPU seconds by thread of one in-process ``analyze_file(path)`` (``main``: the calling
    thread, imports excluded; ``read-ahead``: the pipeline's reader and chain; ``flags``: the
    detector's helper), ``wall``: how the two cores share the work, and the calling thread's
    waits (wall seconds): ``wait-read`` for the read-ahead's next chunk, ``wait-helper`` for
    the helper's flags and calibration judgements."""
    import queue
    import threading
    from concurrent.futures import Future

    from emgfeedback.app.analyze import analyze_file
    from emgfeedback.clinical import detect

    cpu: dict[str, float] = {}
    waits = {"wait-read": 0.0, "wait-helper": 0.0}
    run = threading.Thread.run
    get, result = queue.Queue.get, Future.result
    caller = threading.current_thread()

    def waited(key: str, f: Any) -> Any:
        def call(*a: Any, **k: Any) -> Any:
            if threading.current_thread() is not caller:
                return f(*a, **k)
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                waits[key] += time.perf_counter() - t
        return call

    def timed(self: threading.Thread) -> None:
        try:
            run(self)
        finally:
            cpu[self.name] = cpu.get(self.name, 0.0) + time.thread_time()

    threading.Thread.run = timed  # type: ignore[method-assign]
    queue.Queue.get = waited("wait-read", get)  # type: ignore[method-assign]
    Future.result = waited("wait-helper", result)  # type: ignore[method-assign]
    try:
        if detect._helper is not None:  # a helper made before: a new one, timed
            detect._helper.shutdown(wait=True)
            detect._helper = None
        t0, c0 = time.perf_counter(), time.thread_time()
        analyze_file(path)
        wall, main = time.perf_counter() - t0, time.thread_time() - c0
        if detect._helper is not None:
            detect._helper.shutdown(wait=True)
            detect._helper = None
    finally:
        threading.Thread.run = run  # type: ignore[method-assign]
        queue.Queue.get = get  # type: ignore[method-assign]
        Future.result = result  # type: ignore[method-assign]
    out = {"wall": wall, "main": main, **waits}
    for name, v in cpu.items():
        key = "read-ahead" if name.startswith("pipeline") else \
            "flags" if name.startswith("detector-flags") else "other"
        out[key] = out.get(key, 0.0) + v
    return out


def neurokit_cs(x: np.ndarray) -> float | None:
    """NeuroKit2 ``emg_process`` on one channel: µS per channel-second (bench_dsp's helper)."""
    from bench.bench_dsp import neurokit_per_channel_second

    return neurokit_per_channel_second(x)


def compile_package() -> bool:
    """Compile the package's bytecode (``__pycache__``), as ``pip install`` does, so that a
    timed process does not compile every module from source first: with
    ``PYTHONDONTWRITEBYTECODE`` set (as on CI runners and this machine) no run would ever write
    it, and each would spend about 0.2 s compiling.  ``True`` when every module compiled."""
    import compileall

    import emgfeedback

    return bool(compileall.compile_dir(str(Path(emgfeedback.__file__).parent), quiet=1))


def main() -> str:
    from emgfeedback.views.history import import_folder

    compiled = compile_package()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        f30, t_w30 = _t(write_session, tmp / "P-0131_30min.edf", 1800.0, 31)
        f120, t_w120 = _t(write_session, tmp / "P-0131_2h.edf", 7200.0, 32)
        out = tmp / "a.json"
        load_before = " ".join(open("/proc/loadavg").read().split()[:3])
        runs, cpu30 = [], []
        for _ in range(2):
            runs.append(run_cli("analyze", str(f30), "--json", str(out)))
            cpu30.append(CPU.get(f"analyze {f30}", float("nan")))
        wall30 = min(w for w, _ in runs)
        rss30 = max((m for _, m in runs if m is not None), default=None)
        wall120, rss120 = run_cli("analyze", str(f120), "--json", str(tmp / "b.json"))
        with load(f30) as rec:
            x = np.ascontiguousarray(rec.read().T)
            dur30 = rec.duration_s
        split = thread_split(f30)
        bf = brainflow_envelope(x)
        floor_ours, sec_ours, floor_bf, sec_bf = kernel_floor(x)
        nk = neurokit_cs(np.ascontiguousarray(x[:, : int(10 * FS)].T))
        del x
        # report: analysed by the command, then with the analysis saved beside the file
        rep_an, rep_rss = run_cli("report", str(f30), "--pdf", "--out", str(tmp / "r1.html"))
        cpu_rep_an = CPU.get(f"report {f30}", float("nan"))
        # saved as a session's analysis is: beside the file, with the report's envelopes
        run_cli("analyze", str(f30), "--json", str(analysis_path(f30)))
        rep_saved, _ = run_cli("report", str(f30), "--pdf", "--out", str(tmp / "r2.html"))
        cpu_rep_saved = CPU.get(f"report {f30}", float("nan"))
        cpu120 = CPU.get(f"analyze {f120}", float("nan"))
        for p in (analysis_path(f30), report_data_path(analysis_path(f30))):
            p.unlink(missing_ok=True)
        # history import: 4 sessions of 30 minutes (f30 and three more), one core and two
        folder = tmp / "clinic"
        folder.mkdir()
        shutil.move(str(f30), folder / f30.name)
        shutil.move(str(f30.with_suffix(".json")), folder / f30.with_suffix(".json").name)
        for k in range(3):
            write_session(folder / f"P-013{k + 2}_30min.edf", 1800.0, 40 + k, f"P-013{k + 2}")
        files = sorted(folder.glob("*.edf"))
        imp: dict[tuple[str, int], float] = {}
        imp_cpu: dict[str, float] = {}
        for saved in (False, True):
            for f in files:
                a = analysis_path(f)
                if saved and not a.exists():
                    run_cli("analyze", str(f), "--json", str(a))
            for jobs in (1, 2):
                db = tmp / f"h-{saved}-{jobs}.sqlite"
                c0 = time.process_time()
                r, t = _t(import_folder, folder, db, progress=None, jobs=jobs)
                if jobs == 1:
                    imp_cpu["saved" if saved else "analysed"] = (time.process_time() - c0) / len(files)
                if r.failed or len(r.imported) != len(files):
                    raise SystemExit(f"history import failed: {r.failed}")
                imp[("saved" if saved else "analysed", jobs)] = t / len(files)
    ratio = wall30 / bf if bf else None
    mib = lambda v: "not measured (no GNU time)" if v is None else f"{v:.0f} MiB"  # noqa: E731
    lines = [
        "## Offline analysis, report and history at full speed (issue 13)",
        "",
        f"Command: `{COMMAND}` (part of `make bench`); {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}.  Same simulated "
        "`session` files throughout (8 channels at 2 kHz, EDF+ by the live recorder; writing "
        f"them took {t_w30:.0f} s for 30 min and {t_w120:.0f} s for 2 h, not counted).",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| `emgfeedback analyze FILE --json OUT`, 30 min, whole process (best of 2) | "
        f"{wall30:.2f} s = {dur30 / wall30:,.0f}x real time (CPU {min(cpu30):.2f} s) | |",
        "| the same in process, CPU by thread: calling thread / read-ahead (reader, chain) / "
        f"detector's flags helper | {split['main']:.2f} / {split.get('read-ahead', 0.0):.2f} / "
        f"{split.get('flags', 0.0):.2f} s (wall {split['wall']:.2f} s; the calling thread "
        f"waited {split['wait-read']:.2f} s for the read-ahead, {split['wait-helper']:.2f} s "
        "for the helper) | |",
        "| BrainFlow DataFilter band-pass + band-stop + rectify + low-pass, in process, same "
        "data | " + ("not installed |" if bf is None else f"{bf:.2f} s |") + " |",
        "| SciPy's SOS kernel alone, one thread, same data: our chain's and artefact flags' "
        f"{sec_ours} sections per sample (1 Hz high-pass, 20-450 Hz band-pass, 50 Hz notches, "
        f"envelope low-pass; flags' 1 Hz high-pass and 15 Hz low-pass) | {floor_ours:.2f} s CPU "
        "| |",
        "| the same kernel with the filters BrainFlow is given above (`scipy.signal.butter`, "
        f"same orders: {sec_bf} sections) | {floor_bf:.2f} s CPU | |",
        "| ratio ours (whole process) / BrainFlow (filters only) | "
        + ("- |" if ratio is None else f"{ratio:.2f} |") + " <= 1.0 |",
        "| NeuroKit2 `emg_process`, 10 s of one channel | "
        + ("not installed |" if nk is None else f"{nk:,.0f} µs per channel-second "
           f"({nk * 8 * dur30 / 1e6:,.0f} s for this file) |") + " |",
        f"| peak memory of `analyze`, 30 min | {mib(rss30)} | |",
        f"| peak memory of `analyze`, 2 h ({wall120:.1f} s, CPU {cpu120:.1f} s) | {mib(rss120)} | "
        "<= 300 MiB, flat |",
        f"| `emgfeedback report FILE --pdf`, 30 min (HTML + PDF, analysis run) | "
        f"{rep_an:.2f} s, CPU {cpu_rep_an:.2f} s ({mib(rep_rss)}) | <= 3 s |",
        f"| the same with the analysis saved beside the file | {rep_saved:.2f} s, CPU "
        f"{cpu_rep_saved:.2f} s | <= 3 s |",
        f"| `history import`, per 30-min session, analysis saved beside, 1 process | "
        f"{imp[('saved', 1)]:.2f} s (CPU {imp_cpu['saved']:.2f} s) | <= 0.1 s |",
        f"| the same on 2 worker processes | {imp[('saved', 2)]:.2f} s "
        f"(speed-up {imp[('saved', 1)] / imp[('saved', 2)]:.2f}x) | |",
        f"| `history import`, per 30-min session, analysed on import, 1 process | "
        f"{imp[('analysed', 1)]:.2f} s (CPU {imp_cpu['analysed']:.2f} s) | |",
        f"| the same on 2 worker processes | {imp[('analysed', 2)]:.2f} s "
        f"(speed-up {imp[('analysed', 1)] / imp[('analysed', 2)]:.2f}x) | |",
        "",
        "The machine is shared (load average before the 30-min analyze runs: "
        f"{load_before}; at the end: {' '.join(open('/proc/loadavg').read().split()[:3])}): "
        "other processes ran beside this one, so wall times are upper bounds; CPU is user + "
        "system time of the process (GNU time), of this process for the in-process import.  "
        "`analyze` uses both cores (the file read and the chain one block ahead in a worker "
        "thread, the detector's artefact flags in a helper thread): its CPU exceeds its wall "
        "time on a quiet machine, and its wall time shows the speed-up only when the second "
        "core is free.  "
        + ("The package's bytecode was compiled before the timed runs (as an installed "
           "package has it; otherwise, with PYTHONDONTWRITEBYTECODE set, every process compiles "
           "its modules first, about 0.2 s)." if compiled else
           "The package's bytecode could not be compiled beforehand: every process compiled "
           "its modules first (about 0.2 s)."),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
