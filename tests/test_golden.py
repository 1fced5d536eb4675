"""``analyze --json`` and ``replay --json`` give byte-identical JSON to the stored golden files
(tests/data/golden/, made by tests/make_golden.py) on the shared real recordings and on
simulator sessions.  A deliberate change of the output regenerates them in one step:
``PYTHONPATH=src python tests/make_golden.py`` (then review and commit the diff)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_golden


@pytest.mark.slow
@pytest.mark.parametrize("case", make_golden.CASES, ids=lambda c: c.name)
def test_analysis_json_is_byte_identical(case: make_golden.Case, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    if case.shared is not None and not (make_golden.SHARED_DATA / case.shared).is_file():
        pytest.skip(f"real recording absent: {make_golden.SHARED_DATA / case.shared}")
    got = make_golden.outputs(case, tmp_path)
    assert got, case
    for name, text in got.items():
        want = (make_golden.GOLDEN / name).read_bytes()
        assert text.encode("utf-8") == want, (
            f"{name} differs from tests/data/golden/{name}; if the change is deliberate run "
            "'PYTHONPATH=src python tests/make_golden.py' and commit the diff")
    if case.shared is None:  # replay --json runs the same pipeline as analyze
        assert got[f"{case.name}.analyze.json"] == got[f"{case.name}.replay.json"]
