"""Fuzz campaign (issue 14): every adversarial input of tests/fuzzcases.py through the command
line, plus the wire decoder against damaged streams; prints a markdown section for
docs/benchmarks.md (bench/run.py).

Usage: ``python bench/bench_fuzz.py [--seed N] [--random-edf N] [--wire-streams N]``.

Outcomes per family: **clean error** (one line, non-zero exit), **accepted** (exit 0 where the
input may be valid: random damage that left a readable file, a refused patient id withheld),
**internal error**, **silent garbage** (exit 0 on an invalid input, a refused id shown, or a
decoded sample at a wrong index) and **hang** (no answer within 15 s).  Target: 0 / 0 / 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import fuzzcases as F  # noqa: E402

from emgfeedback import protocol as P  # noqa: E402


def wire_campaign(seed: int, streams: int) -> dict[str, int]:
    """Damaged byte streams (drops, duplicates, swaps, CRC-valid forged counters 2 frames from
    any other damage, multi-byte damage, junk) decoded in random pieces: misplaced samples and
    loss-count errors are silent garbage."""
    rng = np.random.default_rng(seed)
    row = {"tried": 0, "clean": 0, "ok": 0, "internal": 0, "garbage": 0, "hang": 0}
    for _ in range(streams):
        n = int(rng.integers(200, 2000))
        base = int(rng.integers(0, 2**32))
        ops = rng.choice(8, n, p=[0.80, 0.04, 0.03, 0.03, 0.02, 0.02, 0.04, 0.02])
        guard = np.zeros(n, bool)
        for i in np.flatnonzero((ops == 4) | (ops == 5)):
            guard[max(0, i - 2) : i + 3] = True
            guard[i] = False
        ops[guard] = 0
        ops[:2] = 0
        out = bytearray()
        i = 0
        while i < n:
            c = base + i
            truth = np.array([c & 1023, (c >> 10) & 1023, (c >> 20) & 1023], np.uint16)
            op = ops[i]
            if op == 0 or op == 7:
                if op == 7:
                    out += rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes()
                out += P.encode_data(c, truth)
            elif op == 2:
                out += P.encode_data(c, truth) * 2
            elif op == 3 and i + 1 < n and not guard[i + 1]:
                c2 = c + 1
                t2 = np.array([c2 & 1023, (c2 >> 10) & 1023, (c2 >> 20) & 1023], np.uint16)
                out += P.encode_data(c2, t2) + P.encode_data(c, truth)
                i += 1
            elif op == 4:
                out += P.encode_data((c + int(rng.integers(2, 2**31))) & 0xFFFFFFFF, truth)
            elif op == 5:
                out += P.encode_data((c + int(rng.choice([-3, -2, 2, 3, 5]))) & 0xFFFFFFFF, truth)
            elif op == 6:
                f = bytearray(P.encode_data(c, truth))
                for _k in range(int(rng.integers(2, 6))):
                    f[int(rng.integers(0, len(f)))] ^= int(rng.integers(1, 256))
                out += f
            i += 1
        row["tried"] += 1
        d = P.FrameDecoder(n_channels=3, max_jump=int(rng.choice([16, 2000])))
        try:
            parts = []
            pos = 0
            while pos < len(out):
                step = int(rng.integers(1, 600))
                parts.append(d.feed(bytes(out[pos : pos + step])))
                pos += step
            parts.append(d.flush())
        except Exception:
            row["internal"] += 1
            continue
        idx = np.concatenate([p.index for p in parts])
        sam = np.concatenate([p.samples for p in parts]).astype(np.int64)
        gaps = np.concatenate([p.gaps for p in parts])
        true = sam[:, 0] | (sam[:, 1] << 10) | (sam[:, 2] << 20)
        ok = (len(idx) > 0 and bool(((idx & ((1 << 30) - 1)) == true).all())
              and bool((np.diff(idx) >= 1).all())
              and int(gaps[1:].sum()) == int(idx[-1] - idx[0] + 1) - len(idx))
        row["clean" if ok else "garbage"] += 1
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--random-edf", type=int, default=150)
    ap.add_argument("--wire-streams", type=int, default=300)
    args = ap.parse_args()
    warnings.simplefilter("error")  # a numpy warning escaping is a bug too (as in the tests)
    import logging

    logging.disable(logging.CRITICAL)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="emgfeedback-fuzz-") as tmp:
        work = Path(tmp)
        F.make_base(work)
        cases = F.all_cases(work, seed=args.seed, random_edf=args.random_edf)
        outcomes = []
        worst: dict[str, str] = {}
        for case in cases:
            o = F.run_case(case, work)
            outcomes.append((case, o))
            if o.verdict not in ("clean", "ok"):
                worst.setdefault(case.family, f"{case.name}: {o.verdict}: {o.err.strip()[:160]}")
        table = F.summary_counts(outcomes)
    table["wire decoder (streams)"] = wire_campaign(args.seed, args.wire_streams)
    took = time.monotonic() - t0
    cmd = (f"python bench/bench_fuzz.py --seed {args.seed} --random-edf {args.random_edf} "
           f"--wire-streams {args.wire_streams}")
    lines = [
        "## Fuzz campaign (issue 14)",
        "",
        f"Command: `{cmd}` (seed {args.seed}; {took:.0f} s). Every adversarial input of "
        "`tests/fuzzcases.py` through `emgfeedback.cli.main` (EDF header fields set to invalid "
        "values, random multi-byte header/data damage, impossible annotation onsets, sidecar "
        "fields of wrong type/range or nested 100,000 deep, CSV/BIOPAC files with absurd "
        "times or rates, every config key with NaN/inf/out-of-range/wrong-type values, bad "
        "programs and montages, bad numeric options, named pipes/devices/folders as input, "
        "non-databases as history), then damaged wire streams through the frame decoder "
        "(a sample at a wrong index or a loss miscounted is silent garbage).",
        "",
        "| family | tried | clean error | accepted | internal error | silent garbage | hang |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    total = {"tried": 0, "clean": 0, "ok": 0, "internal": 0, "garbage": 0, "hang": 0}
    for fam, row in table.items():
        lines.append(f"| {fam} | {row['tried']} | {row['clean']} | {row['ok']} | "
                     f"{row['internal']} | {row['garbage']} | {row['hang']} |")
        for k in total:
            total[k] += row[k]
    lines.append(f"| **total** | **{total['tried']}** | **{total['clean']}** | **{total['ok']}** "
                 f"| **{total['internal']}** | **{total['garbage']}** | **{total['hang']}** |")
    lines.append("")
    lines.append("\"accepted\": exit 0 where that is right (random damage that left a valid "
                 "file, e.g. in a label; an impossible annotation dropped with a note; a "
                 "sidecar's refused patient id withheld, never printed).")
    if worst:
        lines.append("")
        lines.append("First failure per family:")
        lines += [f"- {fam}: {text}" for fam, text in worst.items()]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
