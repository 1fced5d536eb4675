"""Every simulated scenario leads a real session (issue 12 item 1): the clinic's calibration
protocol first, then the scenario's reps with their cues, so that live detection starts and
``analyze`` of the recording finds the reps and, where synkinesis is planted, the events."""

from __future__ import annotations

from pathlib import Path

import pytest

from emgfeedback.cli import main
from emgfeedback.app.analyze import analyze, load_for_analysis
from emgfeedback.clinical.live import LiveClinic
from emgfeedback.clinical.montage import Montage
from emgfeedback.app.pipeline import Pipeline
from emgfeedback.sources.facesim import ModelParams, calibration_s
from emgfeedback.sources.simulated import SimulatedSource

#: Four channels keep the calibration short (two regions: 50 s).
SMALL = ("EMG L-ZYG", "EMG L-OOC", "EMG R-ZYG", "EMG R-OOC")
SCENARIOS = ["smile-clean", "smile-synkinesis", "eye-closure-synkinesis", "asymmetric-smile"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_live_session_of_every_scenario_calibrates_and_detects(scenario: str) -> None:
    p = ModelParams(channels=SMALL, synkinesis_prob=None)
    src = SimulatedSource(scenario, calibration_s(p) + 36.0, 31, speed=None, block_ms=10.0,
                          params=p)
    pipeline = Pipeline(src)
    chain = pipeline.open()
    clinic = LiveClinic(chain, Montage.from_labels(SMALL, "L"))
    pipeline.add(clinic)
    pipeline.run()  # closes the source and every consumer
    # Calibrated from the session's own rest and MVC trials, then detecting.
    assert clinic.error is None and clinic.detector is not None, clinic.error
    cal = clinic.calibration
    assert cal is not None and set(cal.mvc_source) == {"mvc"} and set(cal.rest_source) == {"rest"}
    reps = clinic.detector.reps
    assert len({r.rep for r in reps}) >= 4
    planted = src.script.events
    if "synkinesis" in scenario:
        assert planted and len(clinic.events) >= 1
        hit = {e.channel for e in clinic.events}
        assert hit <= {e.channel for e in planted}
    else:
        assert not planted and clinic.events == []


def test_analyze_of_a_simulated_file_of_every_scenario(tmp_path: Path) -> None:
    """What a user runs: ``simulate`` (default duration: protocol + 60 s), ``analyze``."""
    for scenario in [*SCENARIOS, "session"]:
        out = tmp_path / f"{scenario}.edf"
        assert main(["simulate", "--scenario", scenario, "--seed", "101", "--out", str(out)]) == 0
        rec = load_for_analysis(out)
        assert rec.duration_s == pytest.approx(calibration_s(ModelParams()) + 60.0)
        a = analyze(rec, Montage.from_labels(rec.channels, "L"))
        assert set(a.calibration.mvc_source) == {"mvc"}
        assert len(a.reps) >= 8
        if "synkinesis" in scenario or scenario == "session":
            assert len(a.events) >= 2
        else:
            assert a.events == []


def test_simulate_refuses_a_duration_without_exercise(tmp_path: Path, capsys) -> None:
    assert main(["simulate", "--scenario", "smile-synkinesis", "--duration", "30",
                 "--out", str(tmp_path / "x.edf")]) != 0
    err = capsys.readouterr().err
    assert "leaves no exercise after the calibration protocol (86 s)" in err
    assert "--no-calibration" in err and err.count("\n") == 1
