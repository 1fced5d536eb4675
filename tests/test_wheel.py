"""A wheel built from the tree installs with pip into a clean venv and runs there: ``--help``,
``simulate`` and ``analyze``, with the package data (default program, programs, placement
figure) coming from the installed wheel, not from the source tree.

How, and why so (measured on this machine): building the wheel with pip (build isolation, the
setuptools of pyproject's build-system) takes ~9 s.  The venv is created without pip
(``venv --without-pip``, 0.3 s instead of 16 s) and the wheel is installed with
``pip --python VENV install``: pip's own install of the wheel, entry-point script and all.
Its dependencies are not downloaded again: resolving them into the empty venv (PySide6 alone is
~400 MB unpacked) took 85 s and 600 MB here, so the venv sees the test environment's
installed dependencies through a ``.pth`` line *after* its own site-packages, and the test
checks that those versions satisfy every runtime requirement in the wheel's metadata.  The
source tree is not on the path (no PYTHONPATH, another working directory), and the test checks
that ``emgfeedback`` is imported from the venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r.stdout + r.stderr


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_and_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    # build from a copy of what the sdist holds: an in-tree build would leave build/ behind,
    # whose stale modules a later wheel could pick up
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(tree)],
         tmp_path, env, timeout=300)
    wheels = list(dist.glob("emgfeedback-*.whl"))
    assert len(wheels) == 1

    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    vpy = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(vpy), "install", "--no-deps", "-q",
          str(wheels[0])], tmp_path, env)
    site = Path(_run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, env).strip())
    (site / "zz_test_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # every runtime requirement of the installed wheel is met by the version the venv sees
    req_check = (
        "import importlib.metadata as m; from packaging.requirements import Requirement\n"
        "bad = []\n"
        "for r in map(Requirement, m.requires('emgfeedback') or []):\n"
        "    if r.marker and not r.marker.evaluate({'extra': ''}): continue\n"
        "    v = m.version(r.name)\n"
        "    if not r.specifier.contains(v, prereleases=True): bad.append(f'{r} (have {v})')\n"
        "print('unmet:', bad) if bad else print('requirements met')\n")
    assert "requirements met" in _run([str(vpy), "-c", req_check], tmp_path, env)

    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(vpy), "-c", "import emgfeedback, emgfeedback.data as d; "
                  "print(emgfeedback.__file__)"], work, env).strip()
    assert where.startswith(str(venv)), where
    exe = venv / "bin" / "emgfeedback"
    assert "export-bids" in _run([str(exe), "--help"], work, env)
    _run([str(exe), "simulate", "--scenario", "session", "--duration", "110", "--seed", "2",
          "--out", "s.edf"], work, env)
    out = _run([str(exe), "analyze", "s.edf", "--json", "a.json"], work, env)
    assert "synkinesis event(s)" in out
    doc = json.loads((work / "a.json").read_text())
    assert doc["program"] and doc["reps"]
    # the programs and the placement figure are package data of the installed wheel
    check = ("from importlib.resources import files; p = files('emgfeedback') / 'data'; "
             "print((p / 'placement.svg').read_text()[:5], "
             "sorted(x.name for x in (p / 'programs').iterdir()))")
    text = _run([str(vpy), "-c", check], work, env)
    assert "<svg" in text or "<?xml" in text
    assert "standard_nmr.toml" in text and "clinic_check.toml" in text
    program = _run([str(exe), "analyze", "s.edf", "--program",
                    str(site / "emgfeedback" / "data" / "programs" / "clinic_check.toml")],
                   work, env)
    assert "calibration" in program
