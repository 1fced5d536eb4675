"""Adversarial inputs for the command line, shared by the fuzz tests (tests/test_fuzz_inputs.py)
and the fuzz campaign (bench/bench_fuzz.py).

A :class:`Case` is one command line run in-process (``emgfeedback.cli.main``) on files built in a
work folder from a small real session (an EDF+ recording with its sidecar, a CSV, a config, a
program and a montage).  Each case says what a correct program must do:

``"error"``  the input is invalid: a one-line error and a non-zero exit (``exit 0`` is *silent
             garbage*);
``"any"``    validity unknown (random damage): any clean outcome, exit 0 included.

:func:`run_case` classifies the outcome: ``clean`` (a one-line error), ``ok`` (exit 0 where
allowed), ``internal`` (``internal error`` or an exception escaping ``main``), ``garbage`` (exit 0
on an invalid input, or a refused patient id shown) or ``hang`` (no answer within the limit).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HANG_S = 15.0


class _Hang(BaseException):
    """Raised by the alarm: not an Exception, so main() cannot mistake it for a bug of its own."""


@dataclass
class Case:
    family: str
    name: str
    argv: list[str]
    expect: str  # "error" or "any"
    make: Callable[[Path], None] = field(default=lambda w: None)
    forbidden: tuple[str, ...] = ()  # text that must never be printed (a refused patient id)


@dataclass
class Outcome:
    verdict: str  # clean, ok, internal, garbage, hang
    rc: int | None
    err: str


# ------------------------------------------------------------------------------ the base files
BASE = "base.edf"


def make_base(work: Path) -> None:
    """The valid inputs every case starts from (written once per work folder)."""
    from emgfeedback.cli import main

    work.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["simulate", "--scenario", "smile-synkinesis", "--duration", "8",
                     "--fs", "500", "--no-calibration", "--out", str(work / BASE)]) == 0
        assert main(["simulate", "--scenario", "smile-clean", "--duration", "3", "--fs", "500",
                     "--no-calibration", "--out", str(work / "base.csv")]) == 0
    (work / "base.toml").write_text("[dsp]\nmains = \"auto\"\n")
    (work / "prog.toml").write_text('name = "p"\n[[exercise]]\nname = "smile"\nreps = 2\n')
    (work / "montage.toml").write_text('affected_side = "L"\n')


def _copy_base(work: Path, name: str) -> tuple[Path, Path]:
    edf = work / f"{name}.edf"
    edf.write_bytes((work / BASE).read_bytes())
    side = edf.with_suffix(".json")
    side.write_bytes((work / BASE).with_suffix(".json").read_bytes())
    return edf, side


# ------------------------------------------------------------------------------ EDF headers
def _set_field(data: bytearray, off: int, width: int, text: str) -> None:
    data[off : off + width] = text.encode("latin-1")[:width].ljust(width)


def _edf_signal_offsets(data: bytes) -> tuple[int, dict[str, int]]:
    ns = int(data[252:256].decode().strip())
    offs, pos = {}, 256
    for name, width in (("label", 16), ("transducer", 80), ("unit", 8), ("pmin", 8),
                        ("pmax", 8), ("dmin", 8), ("dmax", 8), ("prefilter", 80),
                        ("n", 8), ("reserved", 32)):
        offs[name] = pos
        pos += width * ns
    return ns, offs


EDF_FIELD_BAD = {
    # (offset or signal field, width): values that make the header invalid
    "version": (0, 8, ["1       ", "EDF     ", ""]),
    "header_bytes": (184, 8, ["0", "-256", "99999999", "abc"]),
    "records": (236, 8, ["0", "1", "abc"]),
    "record_s": (244, 8, ["0", "-1", "nan", "inf", "1e9", "abc"]),
    "signals": (252, 4, ["0", "-1", "9999", "x"]),
}
SIGNAL_FIELD_BAD = {
    "n": ["0", "-5", "99999999", "+1", "*2"],
    "dmin": ["@dmax", "40000", "x"],
    "dmax": ["@dmin", "99999999"],
    "pmin": ["@pmax", "nan", "inf", "x"],
    "pmax": ["nan", "-inf"],
}
COMMANDS = [["info"], ["convert", "@out.csv"], ["analyze"]]


def _argv(cmd: list[str], path: Path, work: Path, name: str) -> list[str]:
    out = [cmd[0], str(path)]
    for a in cmd[1:]:
        out.append(str(work / f"{name}-{a[1:]}") if a.startswith("@") else a)
    return out


def edf_header_cases(work: Path) -> list[Case]:
    cases = []
    for fname, (off, width, values) in EDF_FIELD_BAD.items():
        for v in values:
            for cmd in COMMANDS:
                name = f"edf-{fname}-{len(cases)}"

                def make(w: Path, name: str = name, off: int = off, width: int = width,
                         v: str = v) -> None:
                    edf, _ = _copy_base(w, name)
                    d = bytearray(edf.read_bytes())
                    _set_field(d, off, width, v)
                    edf.write_bytes(bytes(d))

                cases.append(Case("EDF header", f"{fname}={v!r} {cmd[0]}",
                                  _argv(cmd, work / f"{name}.edf", work, name), "error", make))
    for fname, values in SIGNAL_FIELD_BAD.items():
        for v in values:
            for cmd in COMMANDS:
                name = f"edfsig-{fname}-{len(cases)}"

                def make(w: Path, name: str = name, fname: str = fname, v: str = v) -> None:
                    edf, _ = _copy_base(w, name)
                    d = bytearray(edf.read_bytes())
                    ns, offs = _edf_signal_offsets(bytes(d))
                    width = 8
                    o = offs[fname]  # signal 1
                    cur = d[o : o + width].decode().strip()
                    if v.startswith("@"):
                        other = offs[v[1:]]
                        val = d[other : other + width].decode().strip()
                    elif v in ("+1", "*2"):
                        val = str(int(cur) + 1 if v == "+1" else int(cur) * 2)
                    else:
                        val = v
                    for k in range(ns - 1):  # every data signal (the last is annotations)
                        _set_field(d, o + k * width, width, val)
                    edf.write_bytes(bytes(d))

                cases.append(Case("EDF header", f"signal {fname}={v!r} {cmd[0]}",
                                  _argv(cmd, work / f"{name}.edf", work, name), "error", make))
    return cases


def edf_random_cases(work: Path, rng: random.Random, n: int) -> list[Case]:
    """Random multi-byte damage of the header and of annotation records (validity unknown)."""
    cases = []
    for i in range(n):
        name = f"edfrand-{i}"
        seed = rng.randrange(1 << 30)
        cmd = COMMANDS[i % len(COMMANDS)]

        def make(w: Path, name: str = name, seed: int = seed) -> None:
            edf, _ = _copy_base(w, name)
            d = bytearray(edf.read_bytes())
            r = random.Random(seed)
            hb = int(d[184:192].decode().strip())
            for _ in range(r.randint(1, 12)):
                pos = r.randrange(hb) if r.random() < 0.7 else r.randrange(hb, len(d))
                d[pos] = r.choice(b"0123456789-+.eE \x00\x14\x15nanif" + bytes([r.randrange(256)]))
            edf.write_bytes(bytes(d))

        cases.append(Case("EDF random damage", f"seed {seed} {cmd[0]}",
                          _argv(cmd, work / f"{name}.edf", work, name), "any", make))
    return cases


def edf_annotation_cases(work: Path) -> list[Case]:
    """TALs with impossible onsets: the file stays readable, the annotation is dropped."""
    cases = []
    for v in ["nan", "inf", "-inf", "1e300", "-99999", "+1e12"]:
        name = f"edfann-{len(cases)}"

        def make(w: Path, name: str = name, v: str = v) -> None:
            edf, _ = _copy_base(w, name)
            d = bytearray(edf.read_bytes())
            i = d.find(b"\x14rest")  # onset of the first 'rest' annotation
            j = d.rfind(b"\x00", 0, i) + 1
            k = d.find(b"\x15", j, i)
            stop = k if k != -1 else i
            new = (b"+" + v.lstrip("+").encode())[: stop - j].ljust(stop - j, b"0")
            if v.startswith("-"):
                new = v.encode()[: stop - j].ljust(stop - j, b"0")
            d[j:stop] = new
            edf.write_bytes(bytes(d))

        cases.append(Case("EDF annotations", f"onset {v}", ["info", str(work / f"{name}.edf")],
                          "any", make))
    return cases


# ------------------------------------------------------------------------------ sidecars
SIDECAR_BAD: list[tuple[str, object]] = [
    ("slots", -5), ("slots", "x"), ("slots", 1.5), ("fs", "NaN"), ("fs", 0), ("fs", 1e12),
    ("source", [1, 2]), ("source", "x"), ("channels", 5), ("first_sample", -1),
    ("lost_samples", True), ("format", 7), ("digital", [1]), ("program", 5),
    ("calibration", "x"), ("source.adc_bits", "x"), ("source.adc_bits", 99),
]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def sidecar_cases(work: Path) -> list[Case]:
    cases = []
    for key, value in SIDECAR_BAD:
        for cmd in COMMANDS:
            name = f"side-{len(cases)}"

            def make(w: Path, name: str = name, key: str = key, value: object = value) -> None:
                _, side = _copy_base(w, name)
                doc = json.loads(side.read_text())
                if key == "fs" and value == "NaN":
                    text = json.dumps(doc).replace('"fs": ', '"fs": NaN, "_x": ', 1)
                    side.write_text(text)
                    return
                if "." in key:
                    a, b = key.split(".")
                    doc[a][b] = value
                else:
                    doc[key] = value
                side.write_text(json.dumps(doc))

            cases.append(Case("sidecar", f"{key}={value!r} {cmd[0]}",
                              _argv(cmd, work / f"{name}.edf", work, name), "error", make))
    for depth in (100, 100_000):
        name = f"side-deep-{depth}"

        def make(w: Path, name: str = name, depth: int = depth) -> None:
            _, side = _copy_base(w, name)
            doc = json.loads(side.read_text())
            text = json.dumps(doc)[:-1] + ', "deep": ' + _nested(depth) + "}"
            side.write_text(text)

        cases.append(Case("sidecar", f"nested {depth} deep", ["info", str(work / f"{name}.edf")],
                          "error", make))
    for pid in ("John Smith", "19510502", "JS-1980-05-12", "P-01-05-1951"):
        name = f"side-pid-{len(cases)}"

        def make(w: Path, name: str = name, pid: str = pid) -> None:
            _, side = _copy_base(w, name)
            doc = json.loads(side.read_text())
            doc["patient"] = pid
            side.write_text(json.dumps(doc))

        cases.append(Case("sidecar", f"patient {pid!r} info", ["info", str(work / f"{name}.edf")],
                          "any", make, forbidden=(pid,)))
    name = "side-garbage"
    cases.append(Case("sidecar", "not JSON", ["info", str(work / f"{name}.edf")], "error",
                      lambda w: (_copy_base(w, name)[1].write_bytes(b"\xff\x00{{"))))
    return cases


# ------------------------------------------------------------------------------ CSV / text files
def csv_cases(work: Path) -> list[Case]:
    base = (work / "base.csv").read_text().splitlines()
    head = [ln for ln in base if ln.startswith("#")]
    body = [ln for ln in base if not ln.startswith("#")]
    variants: dict[str, tuple[str, str]] = {
        "empty": ("", "error"),
        "header only": ("\n".join(head) + "\n", "error"),
        "time jumps 3e8": ("\n".join(head + body[:2] + [
            body[2].replace(body[2].split(",")[0], str(float(body[2].split(",")[0]) + 3e8 / 500),
                            1)] + body[3:]) + "\n", "error"),
        "nan cells": ("\n".join(head + [body[0]] + [",".join(["nan"] * len(body[1].split(",")))
                                                   ] + body[2:]) + "\n", "any"),
        "text cells": ("\n".join(head + [body[0]] + ["a,b,c"] + body[2:]) + "\n", "any"),
        "fs=0": ("\n".join([h.replace("fs=500", "fs=0") for h in head] + body) + "\n", "error"),
        "fs=nan": ("\n".join([h.replace("fs=500", "fs=nan") for h in head] + body) + "\n",
                   "error"),
        "biopac 0 msec": ("x\n0 msec/sample\n1 channels\nEMG\nmV\n1\n2\n3\n", "error"),
        "biopac -1 msec": ("x\n-1 msec/sample\n1 channels\nEMG\nmV\n1\n2\n3\n", "error"),
        "generic 1e12 rows jump": ("time,a\n0,1\n0.001,2\n1e12,3\n", "error"),
    }
    cases = []
    for label, (text, expect) in variants.items():
        for cmd in (["info"], ["convert", "@out.edf"]):
            name = f"csv-{len(cases)}"

            def make(w: Path, name: str = name, text: str = text) -> None:
                (w / f"{name}.csv").write_text(text)

            argv = _argv(cmd, work / f"{name}.csv", work, name)
            if label.startswith("generic"):
                argv += ["--fs", "1000"]
            cases.append(Case("CSV", f"{label} {cmd[0]}", argv, expect, make))
    return cases


# ------------------------------------------------------------------------------ configurations
def _toml_value(v: object) -> str:
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # a TOML inline table
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(v)


def config_cases(work: Path) -> list[Case]:
    import dataclasses
    import typing

    from emgfeedback.config import Config

    cases = []
    edf = str(work / BASE)
    for sect in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[sect.name]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if tp in (float, int):
                bad: list[object] = [float("nan"), float("inf"), -1e15, 1e15, "x", True]
            elif tp is bool:
                bad = ["x", 1]
            elif tp is str:
                bad = [[1], {"a": 1}] if f.metadata.get("choices") is None else ["zz", [1]]
            else:  # tuples
                bad = [[], [float("nan"), 1.0], "x", [1e15, 2e15]]
            for v in bad:
                name = f"cfg-{len(cases)}"
                text = f"[{sect.name}]\n{f.name} = {_toml_value(v)}\n"

                def make(w: Path, name: str = name, text: str = text) -> None:
                    (w / f"{name}.toml").write_text(text)

                cases.append(Case("config", f"{sect.name}.{f.name}={v!r}",
                                  ["analyze", edf, "--config", str(work / f"{name}.toml")],
                                  "error", make))
    for text in ("[dsp]\nbandd = 1\n", "[nope]\n", "dsp = 5\n", "[dsp\n", "\xff\xfe",
                 "[detection]\nh_on = 1\nh_off = 2\n", "[dsp]\nband = [450, 20]\n"):
        name = f"cfg-{len(cases)}"

        def make(w: Path, name: str = name, text: str = text) -> None:
            (w / f"{name}.toml").write_text(text, encoding="latin-1")

        cases.append(Case("config", f"{text!r}", ["analyze", edf, "--config",
                                                  str(work / f"{name}.toml")], "error", make))
    # programs and montages
    prog_bad = ["defaults = 5", "[defaults]\nhold_s = nan", "[[exercise]]\nname = \"smile\"\n"
                "targets = []", "[[exercise]]\nname = \"smile\"\nfloor_pct_mvc = \"x\"",
                "[detection]\nonset_lookback_ms = 1e15", "[[exercise]]\nname = \"smile\"\nreps = 0",
                "[[exercise]]\nname = \"smile\"\nside = \"up\"",
                "[[exercise]]\nname = \"smile\"\nband_pct_mvc = [60, 20]",
                "exercise = [5]", "[channels]\n\"L-OOC\" = 5", "[[exercise]]\nname = \"zz\"",
                "[[exercise]]\nname = \"smile\"\nhold_s = 1e12", "affected_side = \"X\""]
    for text in prog_bad:
        name = f"prog-{len(cases)}"

        def make(w: Path, name: str = name, text: str = text) -> None:
            (w / f"{name}.toml").write_text(text + "\n")

        cases.append(Case("program", text.replace("\n", " "),
                          ["analyze", edf, "--program", str(work / f"{name}.toml")], "error",
                          make))
    mont_bad = ["affected_side = 5", "[channels]\n\"EMG L-ZYG\" = 5",
                "[channels]\n\"EMG X\" = \"L-ZYG\"", "[channels]\n\"EMG L-ZYG\" = \"Q-ZZZ\"",
                "[sites]\n\"L-ZYG\" = 5", "channels = 5", "zz = 1"]
    for text in mont_bad:
        name = f"mont-{len(cases)}"

        def make(w: Path, name: str = name, text: str = text) -> None:
            (w / f"{name}.toml").write_text(text + "\n")

        cases.append(Case("montage", text.replace("\n", " "),
                          ["analyze", edf, "--montage", str(work / f"{name}.toml")], "error",
                          make))
    return cases


# ------------------------------------------------------------------------------ options
OPTION_BAD: dict[str, list[str]] = {
    "--fs": ["nan", "inf", "0", "-1", "1e12", "abc"],
    "--seed": ["-1", "1.5", str(2**40), "x"],
    "--speed": ["0", "-1", "1e-300", "nan", "abc", "1e300"],
    "--duration": ["0", "-5", "nan", "1e12", "inf"],
    "--noise": ["-5", "nan", "1e9"],
    "--synkinesis-prob": ["2", "-0.1", "nan"],
    "--mains": ["0", "1000", "nan"],
    "--mains-uv": ["-1", "inf"],
    "--crosstalk": ["-1", "500"],
}


def option_cases(work: Path) -> list[Case]:
    cases = []
    out = str(work / "opt.edf")
    for opt, values in OPTION_BAD.items():
        for v in values:
            argv = ["simulate", "--out", out, opt, v]
            if opt != "--duration":
                argv += ["--duration", "1"]
            cases.append(Case("options", f"simulate {opt} {v}", argv, "error"))
    edf = str(work / BASE)
    for v in ["0", "-1", "1e-300", "nan"]:
        cases.append(Case("options", f"replay --speed {v}", ["replay", edf, "--speed", v],
                          "error"))
    for v in ["-1", "nan", "1e300"]:
        cases.append(Case("options", f"replay --start {v}", ["replay", edf, "--start", v,
                                                             "--json", str(work / "r.json")],
                          "error"))
    for v in ["0", "-1", "nan", "1e12"]:
        cases.append(Case("options", f"info csv --fs {v}",
                          ["info", str(work / "base.csv"), "--fs", v], "error"))
    for opt, v in (("--channels", "0"), ("--channels", "99"), ("--baud", "0"),
                   ("--lsl-scope", "no-such-if0")):
        argv = ["record", "--duration", "1", "--patient", "P-0042", "--out",
                str(work / "rec.edf"), "--speed", "max", opt, v]
        if opt == "--lsl-scope":
            argv.append("--lsl")
        cases.append(Case("options", f"record {opt} {v}", argv, "error"))
    for pid in ("John Smith", "19510502", "JS-1980-05-12", "JSM-010180", "P-01-05-1951",
                "JS-19510502", "0042", "x"):
        cases.append(Case("options", f"record --patient {pid!r}",
                          ["record", "--duration", "1", "--patient", pid, "--speed", "max",
                           "--out", str(work / "pid.edf")], "error", forbidden=()))
    return cases


# ------------------------------------------------------------------------------ special files
def special_cases(work: Path) -> list[Case]:
    def fifo(w: Path) -> None:
        p = w / "pipe.edf"
        if not p.exists():
            os.mkfifo(p)

    cases = [Case("special files", f"{cmd[0]} on a named pipe",
                  _argv(cmd, work / "pipe.edf", work, "pipe"), "error", fifo)
             for cmd in COMMANDS]
    cases += [Case("special files", f"{cmd} on a named pipe", [cmd, str(work / "pipe.edf")],
                   "error", fifo) for cmd in ("repair", "report", "replay")]
    cases += [Case("special files", f"info {p}", ["info", p], "error") for p in
              ("/dev/zero", "/dev/null", str(work), str(work / "missing.edf"))]
    cases.append(Case("special files", "config is a pipe",
                      ["analyze", str(work / BASE), "--config", str(work / "pipe.edf")], "error",
                      fifo))

    def empty_db(w: Path) -> None:
        (w / "empty.sqlite").write_bytes(b"")
        (w / "text.sqlite").write_text("not a database\n")

    cases += [Case("history", f"list --db {n}", ["history", "list", "--db", str(work / n)],
                   "error", empty_db) for n in ("empty.sqlite", "text.sqlite")]
    return cases


def all_cases(work: Path, seed: int = 0, random_edf: int = 60) -> list[Case]:
    rng = random.Random(seed)
    return (edf_header_cases(work) + edf_random_cases(work, rng, random_edf)
            + edf_annotation_cases(work) + sidecar_cases(work) + csv_cases(work)
            + config_cases(work) + option_cases(work) + special_cases(work))


# ------------------------------------------------------------------------------ running
def run_case(case: Case, work: Path, limit_s: float = HANG_S) -> Outcome:
    from emgfeedback.cli import main

    case.make(work)
    out, err = io.StringIO(), io.StringIO()

    def alarm(*_: object) -> None:
        raise _Hang()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    rc: int | None = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(case.argv)
            except SystemExit as exc:  # argparse usage errors
                rc = int(exc.code) if isinstance(exc.code, int) else 2
    except _Hang:
        return Outcome("hang", None, err.getvalue())
    except Exception as exc:
        return Outcome("internal", None, f"{type(exc).__name__}: {exc}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    text = err.getvalue()
    shown = out.getvalue() + text
    if "internal error" in text or "Traceback" in text:
        return Outcome("internal", rc, text)
    if any(f and f in shown for f in case.forbidden):
        return Outcome("garbage", rc, f"refused patient id shown: {shown[-200:]}")
    if rc == 0:
        return Outcome("garbage" if case.expect == "error" else "ok", rc, text)
    lines = [ln for ln in text.strip().splitlines() if ln.startswith("emgfeedback")]
    if not lines:
        return Outcome("internal", rc, f"exit {rc} without a one-line error: {text[-300:]!r}")
    return Outcome("clean", rc, lines[-1])


def summary_counts(outcomes: list[tuple[Case, Outcome]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for case, o in outcomes:
        row = table.setdefault(case.family, {"tried": 0, "clean": 0, "ok": 0, "internal": 0,
                                             "garbage": 0, "hang": 0})
        row["tried"] += 1
        row[o.verdict] += 1
    return table

