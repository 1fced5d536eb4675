"""The simulated facial board: documented spectra and amplitudes, ground truth, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from emgfeedback.config import DspConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.sources.registry import open_source
from emgfeedback.vocabulary import EXERCISES
from emgfeedback.sources.facesim import SCENARIOS, ModelParams, calibration_s
from emgfeedback.sources.simulated import SimulatedSource


def _whole(scenario: str, seconds: float = 30.0, seed: int = 1,
           **params) -> tuple[SimulatedSource, np.ndarray]:
    src = SimulatedSource(scenario, seconds, seed, speed=None, params=ModelParams(**params))
    with src:
        return src, src.read_all().data


def test_same_seed_same_samples_whatever_the_chunking() -> None:
    a, x = _whole("smile-synkinesis", 5.0, seed=3)
    src = SimulatedSource("smile-synkinesis", 5.0, 3, speed=None, block_ms=7.0)
    with src:
        parts = []
        while (c := src.read()) is not None:
            parts.append(c)
    y = np.concatenate([c.data for c in parts])
    assert np.array_equal(x, y)
    assert all(b.start == a_.stop for a_, b in zip(parts, parts[1:]))
    _, z = _whole("smile-synkinesis", 5.0, seed=4)
    assert not np.allclose(x, z)


def test_labels_follow_the_convention() -> None:
    src, _ = _whole("rest", 2.0)
    for label in src.info.channels:
        assert label.startswith("EMG ") and len(label) <= 16
        side, code = label[4:].split("-")
        assert side in "LR" and code in ("FRO", "OOC", "ZYG", "OOR")


def test_muscle_spectrum_mostly_in_facial_band() -> None:
    # Muscle activity only: no mains, almost no baseline noise, no drift.
    src, x = _whole("smile-clean", 30.0, noise_uv=(0.01, 0.01), mains_uv=0.0, drift_uv=0.0,
                    offset_uv=0.0, calibration=False)
    z = src.info.channels.index("EMG R-ZYG")
    on = [a for a in src.script.activations if a.channel == "R-ZYG"]
    seg = np.concatenate([x[a.start + 200: a.stop - 200, z] for a in on])
    f, p = signal.welch(seg, fs=1000.0, nperseg=1024)
    share = p[(f >= 20) & (f <= 250)].sum() / p[f > 0].sum()
    assert share >= 0.8, share
    assert 25.0 <= f[np.argmax(p)] <= 150.0


def test_baseline_noise_and_mains_in_documented_ranges() -> None:
    src, x = _whole("rest", 20.0, seed=2, mains_hz=60.0, mains_uv=10.0)
    # No blinks on non-OOC channels: band-passed RMS at rest is the 1-5 µV baseline.
    chain = Chain(1000.0, x.shape[1], DspConfig(mains="60"))
    filt, _ = chain.process_array(x)
    rms = np.sqrt(np.mean(filt[2000:] ** 2, axis=0))
    quiet = [i for i, c in enumerate(src.info.channels) if "OOC" not in c]
    assert np.all((rms[quiet] >= 0.7) & (rms[quiet] <= 5.5)), rms
    f, p = signal.welch(x - x.mean(axis=0), fs=1000.0, nperseg=1000, axis=0)
    for h in (60, 120, 180):
        k = np.argmin(np.abs(f - h))
        # (OOC channels: blink bursts fill the neighbourhood of the lines)
        ratio = p[k] / np.median(p[(f > h + 3) & (f < h + 8)], axis=0)
        assert np.all(ratio[quiet] > 10) and np.all(ratio > 5), (h, ratio)
    assert chain.mains == 60


@pytest.mark.parametrize("scenario", sorted(set(SCENARIOS) - {"rest"}))
def test_ground_truth_matches_where_envelopes_rise(scenario: str) -> None:
    src, x = _whole(scenario, 40.0, seed=5)
    _, env = Chain(1000.0, x.shape[1]).process_array(x)
    labels = [c[4:] for c in src.info.channels]
    acts = [a for a in src.script.activations if a.kind in ("voluntary", "mvc", "synkinesis")]
    assert acts, "scenario has no activations"
    checked = 0
    for a in acts:
        j = labels.index(a.channel)
        if a.start < 700 or any(b.channel == a.channel and b.start < a.start and
                                b.stop > a.start - 900 for b in src.script.activations):
            continue  # no clean rest just before this one
        checked += 1
        inside = env[a.start + 150: a.stop, j].mean()
        before = env[a.start - 600: a.start - 100, j]
        # Rest before: quieter than the activation by a wide margin (when it was rest).
        assert inside > 3.0 * np.median(before) + 2.0, (a, inside, np.median(before))
    assert checked >= 3


def test_synkinesis_scenario_plants_events_on_affected_side_only() -> None:
    src, _ = _whole("smile-synkinesis", 60.0, seed=11, calibration=False)
    assert src.script.events
    for e in src.script.events:
        assert e.channel == "L-OOC" and e.trigger == "L-ZYG" and e.exercise == "smile"
        cue = [c for c in src.script.cues if c.start <= e.start < c.stop]
        assert cue and cue[0].text == "smile"
    clean, _ = _whole("smile-clean", 60.0, seed=11, calibration=False)
    assert not clean.script.events


def test_asymmetric_smile_affected_side_weaker() -> None:
    src, x = _whole("asymmetric-smile", 40.0, seed=2, calibration=False)
    _, env = Chain(1000.0, x.shape[1]).process_array(x)
    labels = [c[4:] for c in src.info.channels]
    left = [a for a in src.script.activations if a.channel == "L-ZYG"]
    l_amp = np.mean([env[a.start + 300: a.stop, labels.index("L-ZYG")].mean() for a in left])
    right = [a for a in src.script.activations if a.channel == "R-ZYG"]
    r_amp = np.mean([env[a.start + 300: a.stop, labels.index("R-ZYG")].mean() for a in right])
    assert l_amp < 0.5 * r_amp


def test_blinks_only_outside_reps() -> None:
    src, _ = _whole("smile-synkinesis", 120.0, seed=8, calibration=False)
    blinks = [a for a in src.script.activations if a.kind == "blink"]
    assert blinks
    reps = [c for c in src.script.cues if c.text != "rest"]
    for b in blinks:
        assert not any(c.start < b.stop and b.start < c.stop for c in reps)


def test_session_scenario_has_protocol_cues() -> None:
    src, _ = _whole("session", 200.0)
    texts = [c.text for c in src.script.cues]
    assert texts[0] == "rest"
    assert "mvc L-ZYG" in texts and "mvc R-OOC" in texts
    assert "smile" in texts and "eye_closure" in texts


@pytest.mark.parametrize("scenario", sorted(set(SCENARIOS) - {"rest"}))
def test_every_scenario_starts_with_the_calibration_protocol(scenario: str) -> None:
    """rest, then 3 MVC trials per region with both sides at once, then the scenario's reps
    (issue 12: the demo of any scenario calibrates, then detects)."""
    p = ModelParams()
    src = SimulatedSource(scenario, calibration_s(p) + 30.0, 3, speed=None, params=p)
    cues = src.script.cues
    texts = [c.text for c in cues]
    n_cal = 1 + 3 * len(p.channels)
    assert texts[0] == "rest" and cues[0].stop - cues[0].start == 10_000
    for code in ("FRO", "OOC", "ZYG", "OOR"):
        for side in "LR":
            assert texts[:n_cal].count(f"mvc {side}-{code}") == 3
    reps = cues[n_cal:]
    assert len(reps) >= 3 and all(c.text in EXERCISES for c in reps)
    assert reps[0].start >= calibration_s(p) * 1000
    # The calibration activations are MVC trials at 90-100 % on the cued channels.
    for c in cues[1:n_cal]:
        ch = c.text.split()[1]
        assert any(a.kind == "mvc" and a.channel == ch and c.start < a.start < a.stop <= c.stop
                   and a.level_pct >= 90 for a in src.script.activations)
    # Without it (calibration=False) the reps begin at once.
    bare = SimulatedSource(scenario, 30.0, 3, speed=None,
                           params=ModelParams(calibration=False)).script
    assert [c.text for c in bare.cues][0] == (reps[0].text if scenario != "session" else "smile")


def test_markers_arrive_in_the_chunk_of_their_sample() -> None:
    src = SimulatedSource("session", 60.0, 0, speed=None, block_ms=10.0)
    seen = []
    with src:
        while (c := src.read()) is not None:
            for m in c.markers:
                assert c.start <= m.sample < c.stop
                seen.append(m.text)
    assert seen == [c.text for c in src.script.cues]


def test_real_time_pacing_and_registry() -> None:
    import time

    src = open_source("simulated", scenario="rest", duration=1.0, speed=4.0)
    t0 = time.monotonic()
    n = 0
    with src:
        while not src.finished:
            c = src.read(timeout=0.5)
            if c is not None:
                n += len(c)
    took = time.monotonic() - t0
    assert n == 1000
    assert 0.2 <= took <= 0.6  # 1 s of signal at 4x real time


def test_unknown_scenario_is_a_clear_error() -> None:
    from emgfeedback.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown scenario 'smirk'"):
        SimulatedSource("smirk", 1.0)
