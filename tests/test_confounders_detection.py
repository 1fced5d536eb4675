"""The detector against the simulator's confounders with ground truth (issue 11): per confounder,
on seeds the detector was not tuned on (tuning used 0-4), no false synkinesis on blinks,
artefacts or an electrode off; synkinesis F1, onset error and alert latency, and blink F1
during reps, asserted with thresholds (the benchmark reports the figures:
bench/bench_detection.py, docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import pytest

from emgfeedback.app.analyze import analyze
from emgfeedback.clinical.analysis import Analysis
from emgfeedback.clinical.calibration import Calibration
from emgfeedback.app.evaluate import Score, match_events, patient_calibration
from emgfeedback.clinical.montage import Montage
from emgfeedback.sources.facesim import ModelParams, Script, apply_confounders
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.sources.truth import Evaluation, evaluate

SEEDS = (11, 23)
PRESETS = ("blinks", "pops", "motion", "electrode-off", "electrode-off-mains", "crosstalk",
           "crosstalk-strong", "ecg", "gaps", "hypertonic", "mains-49.9", "synkinesis-lag",
           "fs-2000", "all")


@lru_cache(maxsize=None)
def _calibration(seed: int, fs: float, mains_hz: float, mains_uv: float) -> Calibration:
    """The simulated patient's stored calibration (its clean rest + MVC protocol)."""
    return patient_calibration(seed, ModelParams(fs=fs, mains_hz=mains_hz, mains_uv=mains_uv))


@lru_cache(maxsize=None)
def _run(preset: str, seed: int, scenario: str = "smile-synkinesis"
         ) -> tuple[Analysis, Script, float]:
    p = replace(apply_confounders(ModelParams(), preset), calibration=False,
                synkinesis_prob=0.8)
    if preset == "blinks":
        p = replace(p, blinks_in_reps=0.9)
    cal = _calibration(seed, p.fs, p.mains_hz, p.mains_uv)
    src = SimulatedSource(scenario, 60.0, seed, speed=None, params=p)
    with src:
        rec = src.recording()
    a = analyze(rec, Montage.from_labels(rec.channels, p.affected_side), calibration=cal)
    return a, src.script, rec.fs


def _evaluation(a: Analysis, sc: Script, fs: float) -> Evaluation:
    """Every event class against the ground truth: the one scorer (sources/truth.py)."""
    return evaluate(a.all_events, sc.truth, fs)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("preset", PRESETS)
def test_no_false_synkinesis_per_confounder(preset: str, seed: int) -> None:
    a, sc, fs = _run(preset, seed)
    ev = _evaluation(a, sc, fs)
    assert ev.false_on_confounders == 0, (preset, seed, ev.false_synkinesis)
    s = match_events(a.events, sc.events, fs)
    assert s.fp <= 1 and s.fn <= 1, (preset, seed, s.tp, s.fp, s.fn)
    # artefacts and electrode-off periods are reported per channel, with their reasons
    first_rep = min(c.start for c in sc.cues if c.text not in ("rest",) and
                    not c.text.startswith("mvc "))
    # (detection and its quality report start at the first rep, as live)
    planted = [t for t in sc.truth if t.kind in ("motion", "pop", "electrode_off")
               and t.start >= first_rep]
    quality = a.to_json()["quality"]
    for t in planted:
        chans = [t.channel] if t.channel else list(quality)
        found = [p for ch in chans for p in quality[ch]["periods"]
                 if p["onset_s"] < t.stop / fs + 0.3 and p["offset_s"] > t.start / fs]
        assert found, (preset, seed, t)


@pytest.mark.slow
def test_accuracy_over_confounders() -> None:
    total, blinks = Score(), Score()
    for preset in PRESETS:
        for seed in SEEDS:
            a, sc, fs = _run(preset, seed)
            total += match_events(a.events, sc.events, fs)
            blinks += _evaluation(a, sc, fs).blink
    assert total.tp >= 60
    assert total.f1 >= 0.97, (total.tp, total.fp, total.fn)
    assert total.median_abs_onset_ms <= 15.0
    assert 0.0 < total.median_latency_ms <= 80.0
    # blinks during reps, those riding on synkinesis of their region included
    assert blinks.tp >= 10 and blinks.f1 >= 0.9, (blinks.tp, blinks.fp, blinks.fn)


@pytest.mark.slow
def test_blink_then_artefact_is_no_synkinesis() -> None:
    """A regression case from the tuning seeds (seed 6, every confounder): a blink during a
    smile (158.49-158.61 s) and an electrode pop 200 ms after it kept the eye's burst up for
    blink_max_ms, so it was confirmed as synkinesis; the blink is found on the burst and the
    event, with less than blink_max_ms of activity besides the blink, is withdrawn."""
    p = apply_confounders(ModelParams(), "all")
    src = SimulatedSource("session", 220.0, 6, speed=None, params=p)
    with src:
        rec = src.recording()
    a = analyze(rec, Montage.from_labels(rec.channels, p.affected_side))
    fs = rec.fs
    ev = evaluate(a.all_events, src.script.truth, fs)
    assert ev.false_on_confounders == 0, ev.false_synkinesis
    near = [e for e in a.all_events if e.channel == "L-OOC" and 158.3 * fs < e.onset < 158.9 * fs]
    assert [e.type for e in near if e.type != "artefact"] == ["blink"], near
    assert abs(near[0].onset / fs - 158.49) < 0.1
