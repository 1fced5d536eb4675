"""Run every benchmark in one run and write docs/benchmarks.md.

Usage: ``python bench/run.py [--out docs/benchmarks.md] [--only dsp,io]``; ``make bench`` calls
it.  Each ``bench/bench_<name>.py`` is run as its own process (``python bench/bench_<name>.py``)
and prints a markdown section with the command that produced it; this script puts the sections
together, so every figure in the file comes from this one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["dsp", "detection", "board", "io", "gui", "report", "video"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    names = [n for n in ORDER if (HERE / f"bench_{n}.py").exists()]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "PYTHONPATH": str(HERE.parent)}
    sections = []
    failed = []
    for n in names:
        print(f"bench: {n} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, str(HERE / f"bench_{n}.py")], capture_output=True,
                           text=True, env=env, cwd=HERE.parent)
        took = time.monotonic() - t0
        if r.returncode != 0:
            failed.append(n)
            tail = r.stderr.strip().splitlines()[-1:] or ["no output"]
            sections.append(f"## {n}\n\nFAILED (exit {r.returncode}): {tail[0]}\n")
        else:
            sections.append(r.stdout.rstrip() + f"\n\n_(section took {took:.0f} s)_\n")
    head = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`python bench/run.py --out docs/benchmarks.md`); every figure "
        "below comes from that one run, on this project's machine kind (2 cores). Each section "
        "names the script that produced it; run one alone with `python bench/bench_<name>.py`.",
        "",
        f"- date: {dt.date.today().isoformat()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "",
    ]
    text = "\n".join(head) + "\n" + "\n".join(sections)
    if args.out:
        args.out.write_text(text)
        print(f"bench: wrote {args.out}", file=sys.stderr)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
