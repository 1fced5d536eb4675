"""A recording of at most ``MAX_HELD_S`` that needs the two-pass calibration is processed once:
the calibration pass's chunks feed the detection (issue 13, start-up).  Same JSON as the two
passes, for any block size; a file without a rest segment does not try the one pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _sessions import make_source, write_edf_session
from emgfeedback.app import analyze as analyze_mod
from emgfeedback.app.pipeline import Pipeline
from emgfeedback.io.importers import load


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("once") / "P-008_s.edf"
    write_edf_session(path, make_source(seed=23, synkinesis_prob=0.7, duration=40.0,
                                        calibration=False), "P-008")
    return path


def _json(path: Path, chunk: int | None, **kw: Any) -> str:
    with load(path) as rec:
        return json.dumps(analyze_mod.analyze(rec, chunk_size=chunk, **kw).to_json(), indent=1,
                          allow_nan=False)


@pytest.mark.parametrize("calibration", ["annotations", "auto"])
def test_short_file_processed_once_gives_the_two_pass_json(
        short: Path, calibration: str, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[int] = []
    real_open = Pipeline.open

    def counting(self: Pipeline) -> Any:
        opened.append(1)
        return real_open(self)

    monkeypatch.setattr(Pipeline, "open", counting)
    once = {chunk: _json(short, chunk, calibration=calibration) for chunk in (10, 2000, 7001)}
    assert len(opened) == 3  # one pass each: no one-pass attempt (no rest), no second pass
    doc = json.loads(once[2000])
    assert doc["reps"] and doc["calibration"]
    monkeypatch.setattr(analyze_mod, "MAX_HELD_S", 0.0)  # the two passes
    opened.clear()
    for chunk, text in once.items():
        assert _json(short, chunk, calibration=calibration) == text
    assert len(opened) == 6
