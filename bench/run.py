"""Run every benchmark in one run and write docs/benchmarks.md.

Usage: ``python bench/run.py [--out docs/benchmarks.md] [--only dsp,io]``; ``make bench`` calls
it.  ``--only NAME --update docs/benchmarks.md`` re-runs some sections and replaces just those in
the file (each marked as re-run, with its date), leaving the others as they were.  Each
``bench/bench_<name>.py`` is run as its own process (``python bench/bench_<name>.py``) and prints
a markdown section with the command that produced it; this script puts the sections together, so
every figure of a section comes from that section's run.
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
ORDER = ["dsp", "live", "detection", "board", "io", "offline", "gui", "report", "video", "fuzz"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", default="")
    ap.add_argument("--update", type=Path, default=None,
                    help="replace only the re-run sections in this existing file")
    args = ap.parse_args()
    names = [n for n in ORDER if (HERE / f"bench_{n}.py").exists()]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), str(HERE.parent)])}
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
    if args.update:
        text = _update(args.update.read_text(), dict(zip(names, sections)))
        args.update.write_text(text)
        print(f"bench: updated {args.update}", file=sys.stderr)
        return 1 if failed else 0
    text = "\n".join(head) + "\n" + "\n".join(sections)
    if args.out:
        args.out.write_text(text)
        print(f"bench: wrote {args.out}", file=sys.stderr)
    print(text)
    return 1 if failed else 0


def _update(doc: str, new: dict[str, str]) -> str:
    """``doc`` with the section of each ``bench_<name>.py`` in ``new`` replaced (a section runs
    from its ``## `` heading to the next one; it is the one whose heading or ``Command:`` line
    names ``bench/bench_<name>.py``);
    a section not found is appended."""
    lines = doc.splitlines(keepends=True)
    starts = [i for i, ln in enumerate(lines) if ln.startswith("## ")] + [len(lines)]
    parts = [lines[: starts[0]]] + [lines[a:b] for a, b in zip(starts, starts[1:])]
    stamp = (f"_(section re-run alone on {dt.date.today().isoformat()}: "
             f"`python bench/run.py --only {{n}} --update FILE`; the other sections are from the "
             f"run dated above)_\n")
    for n, text in new.items():
        body = text.rstrip() + "\n\n" + stamp.format(n=n) + "\n"
        for k, part in enumerate(parts[1:], 1):
            # the section's own heading or command line names the script (another section may
            # mention it in passing: "measured in bench/bench_live.py")
            own = [ln for ln in part if ln.startswith(("## ", "Command:"))]
            if any(f"bench/bench_{n}.py" in ln for ln in own):
                parts[k] = body.splitlines(keepends=True)  # lines: a later name is matched
                break
        else:
            parts.append(["\n", body])
    return "".join("".join(p) for p in parts)


if __name__ == "__main__":
    sys.exit(main())
