"""Golden analysis JSON: ``analyze --json`` and ``replay --json`` on the shared real recordings and
on simulator sessions, stored in tests/data/golden/ and compared byte for byte by
tests/test_golden.py.

A deliberate change of the analysis output (new event fields, another calibration rule, a
simulator change) regenerates every golden file in one step::

    PYTHONPATH=src python tests/make_golden.py

then review ``git diff tests/data/golden`` and commit it with the change that caused it.
The ``file`` field (an absolute path) is replaced by the file's name so the files do not depend
on where the tree or the data live.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "golden"
SHARED_DATA = HERE.parents[0].parent / "shared" / "data"


@dataclass(frozen=True)
class Case:
    """One golden file: ``<name>.analyze.json`` and ``<name>.replay.json``."""

    name: str
    #: a file in ../shared/data, or None for a simulator session
    shared: str | None = None
    #: ``emgfeedback simulate`` options for a simulator session
    simulate: tuple[str, ...] = ()
    #: extra ``analyze`` options (montage paths are relative to tests/data/golden)
    analyze: tuple[str, ...] = ()
    #: options both ``analyze`` and ``replay`` take
    common: tuple[str, ...] = ()


CASES: tuple[Case, ...] = (
    Case("biopac", shared="biopac_facial_corr_zyg_lev_1khz.txt",
         analyze=("--montage", "biopac.montage.toml")),
    Case("biosppy-smile", shared="biosppy_emg_1_1khz.txt",
         analyze=("--montage", "biosppy.montage.toml", "--exercise", "smile"),
         common=("--fs", "1000")),
    Case("sim-session-s3", simulate=("--scenario", "session", "--duration", "150", "--seed", "3")),
    Case("sim-smile-synk-s7",
         simulate=("--scenario", "smile-synkinesis", "--duration", "30", "--seed", "7",
                   "--no-calibration")),
    Case("sim-eye-synk-s11", simulate=("--scenario", "eye-closure-synkinesis", "--duration", "30",
                                       "--seed", "11", "--mains", "60", "--no-calibration")),
)


def _run(argv: list[str]) -> None:
    from emgfeedback.cli import main

    rc = main(argv)
    if rc != 0:
        raise RuntimeError(f"emgfeedback {' '.join(argv)} exited {rc}")


def normalise(text: str) -> str:
    """The JSON document with ``file`` reduced to the file name."""
    doc = json.loads(text)
    doc["file"] = Path(doc["file"]).name
    return json.dumps(doc, indent=1) + "\n"


def outputs(case: Case, workdir: Path) -> dict[str, str]:
    """``{golden file name: normalised JSON}`` of one case, computed by the current code."""
    if case.shared is not None:
        src = SHARED_DATA / case.shared
    else:
        src = workdir / f"{case.name}.edf"
        _run(["simulate", *case.simulate, "--out", str(src)])
    extra = [str(GOLDEN / a) if a.endswith(".toml") else a for a in case.analyze]
    out: dict[str, str] = {}
    a_json = workdir / f"{case.name}.analyze.json"
    _run(["analyze", str(src), *extra, *case.common, "--json", str(a_json)])
    out[a_json.name] = normalise(a_json.read_text(encoding="utf-8"))
    if not case.analyze:  # replay --json takes no montage/exercise: only where analyze needs none
        r_json = workdir / f"{case.name}.replay.json"
        _run(["replay", str(src), *case.common, "--json", str(r_json)])
        out[r_json.name] = normalise(r_json.read_text(encoding="utf-8"))
    return out


def main() -> int:
    if not SHARED_DATA.is_dir():
        print(f"make_golden: {SHARED_DATA} is absent; the real-recording cases need it",
              file=sys.stderr)
        return 1
    GOLDEN.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            for name, text in outputs(case, Path(tmp)).items():
                (GOLDEN / name).write_text(text, encoding="utf-8")
                print(f"wrote {GOLDEN / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
