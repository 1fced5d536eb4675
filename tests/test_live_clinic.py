"""A live session calibrates from its protocol, detects synkinesis, writes the alerts into the
recording; analysing (or replaying) that recording raises exactly the same events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emgfeedback.cli import main
from emgfeedback.app.analyze import analyze, load_for_analysis
from emgfeedback.clinical.live import LiveClinic
from emgfeedback.clinical.montage import Montage
from emgfeedback.app.pipeline import Pipeline, RecordingGrid
from emgfeedback.sources.facesim import ModelParams
from emgfeedback.sources.simulated import SimulatedSource


def _live(tmp_path: Path, seconds: float = 130.0) -> tuple[Path, LiveClinic, SimulatedSource]:
    src = SimulatedSource("session", seconds, 7, speed=None, block_ms=10.0,
                          params=ModelParams(synkinesis_prob=0.8))
    out = tmp_path / "live.edf"
    session = Pipeline(src, recording=RecordingGrid.for_path(out))
    chain = session.open()
    rec = session.start_recording(out, patient="P-0007")
    clinic = LiveClinic(chain, Montage.from_labels(src.info.channels, "L"),
                        annotate=rec.annotate)
    session.add(clinic)
    session.run()  # closes the source, the recorder, then the clinic
    return out, clinic, src


def test_analysis_of_the_recording_equals_the_live_events(tmp_path: Path) -> None:
    out, clinic, src = _live(tmp_path)
    assert clinic.error is None and clinic.detector is not None
    live = clinic.events
    planted = [e for e in src.script.events]
    assert len(live) >= 3 and len(planted) >= 3
    offline = analyze(load_for_analysis(out), Montage.from_labels(src.info.channels, "L"))
    assert offline.events == live  # same channels, onsets, alerts, offsets, peaks
    # The alerts are in the file, at the samples where they were raised.
    r = load_for_analysis(out)
    alerts = [(m.sample, m.text) for m in r.markers if m.text.startswith("synkinesis")]
    assert alerts == [(e.alert, f"synkinesis {e.channel}") for e in live]
    # ... and they are not mistaken for unknown annotations on the way back.
    assert not offline.unknown_annotations


def test_replay_json_equals_analyze_json(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out, clinic, _ = _live(tmp_path, 110.0)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["analyze", str(out), "--affected", "L", "--json", str(a)]) == 0
    assert main(["replay", str(out), "--speed", "max", "--affected", "L", "--json", str(b)]) == 0
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ja == jb
    assert [e["alert_s"] for e in ja["events"]] == [round(e.alert / 1000.0, 4)
                                                   for e in clinic.events]
    # The console replay runs the same clinical engine: it lists the live alerts.
    capsys.readouterr()
    assert main(["replay", str(out), "--speed", "max", "--affected", "L"]) == 0
    shown = capsys.readouterr().out
    assert clinic.events
    for e in clinic.events[-6:]:  # the console keeps the last six lines
        assert f"{e.alert / 1000.0:8.2f} s  SYNKINESIS {e.channel}" in shown


def test_analyze_takes_the_affected_side_from_the_sidecar(tmp_path: Path) -> None:
    out = tmp_path / "s.edf"
    assert main(["simulate", "--scenario", "smile-synkinesis", "--duration", "20",
                 "--no-calibration", "--out", str(out)]) == 0
    js = tmp_path / "a.json"
    assert main(["analyze", str(out), "--calibration", "auto", "--json", str(js)]) == 0
    assert json.loads(js.read_text())["affected_side"] == "L"  # the simulated patient's side
