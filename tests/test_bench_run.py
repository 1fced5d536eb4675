"""bench/run.py --update: each re-run section replaces its own section only."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "bench_run", Path(__file__).resolve().parents[1] / "bench" / "run.py")
assert _spec is not None and _spec.loader is not None
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)

DOC = """# Benchmarks

## DSP chain

Command: `python bench/bench_dsp.py`

old dsp; the live cost is in `bench/bench_live.py`

## Live budget

Command: `python bench/bench_live.py`

old live

## Video

Command: `python bench/bench_video.py`

old video
"""


def test_sections_replaced_in_place_even_when_a_new_one_mentions_another_script() -> None:
    new = {"dsp": "## DSP chain\n\nCommand: `python bench/bench_dsp.py`\n\nnew dsp; see "
                  "`bench/bench_live.py`\n",
           "live": "## Live budget\n\nCommand: `python bench/bench_live.py`\n\nnew live\n"}
    out = run._update(DOC, new)
    heads = [ln for ln in out.splitlines() if ln.startswith("## ")]
    assert heads == ["## DSP chain", "## Live budget", "## Video"]
    assert "new dsp" in out and "new live" in out and "old video" in out
    assert "old dsp" not in out and "old live" not in out
    assert out.count("section re-run alone") == 2


def test_a_section_not_found_is_appended() -> None:
    out = run._update(DOC, {"gui": "## GUI\n\nCommand: `python bench/bench_gui.py`\n\nnew\n"})
    assert out.startswith(DOC.rstrip("\n"))
    assert out.rstrip().splitlines()[-1].startswith("_(section re-run alone")
    assert "## GUI" in out
