"""Run every benchmark in one process run and write docs/benchmarks.md.

Usage: ``python bench/run.py [--out docs/benchmarks.md] [--only dsp,io]``; ``make bench`` calls it.
Each ``bench/bench_*.py`` module has ``main() -> str`` returning a markdown section.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["dsp", "detection", "board", "io", "gui", "report"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent))
    names = [n for n in ORDER if (HERE / f"bench_{n}.py").exists()]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    sections = []
    for n in names:
        print(f"bench: {n} ...", file=sys.stderr, flush=True)
        mod = importlib.import_module(f"bench.bench_{n}")
        sections.append(mod.main())
    head = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`python bench/run.py --out docs/benchmarks.md`); every figure "
        "below comes from that one run.",
        "",
        f"- date: {dt.date.today().isoformat()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "",
    ]
    text = "\n".join(head) + "\n" + "\n".join(sections)
    if args.out:
        args.out.write_text(text)
        print(f"bench: wrote {args.out}", file=sys.stderr)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
