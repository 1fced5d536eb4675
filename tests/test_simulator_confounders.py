"""The simulator's confounders (issue 11 item 8): each one present in the samples with the
documented spectrum, amplitude and timing, its ground truth consistent, deterministic per seed,
chunk-size invariant, gaps flagged.

Most checks isolate one confounder by difference: its random stream is its own, so the same seed
with and without it gives the same samples but for the confounder itself.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from emgfeedback.dsp.chain import Chain
from emgfeedback.errors import ConfigError
from emgfeedback.sources.facesim import (
    CONFOUNDERS,
    TRUTH_KINDS,
    ModelParams,
    apply_confounders,
)
from emgfeedback.sources.simulated import SIM_RANGE_UV, SimulatedSource

#: Exercise recordings without their calibration protocol (reps and confounders from the start).
NOCAL = ModelParams(calibration=False)
#: Quiet recording conditions, so that a confounder stands out (differences are exact anyway).
QUIET = replace(NOCAL, noise_uv=(1.0, 1.0), mains_uv=0.0, drift_uv=0.0, offset_uv=0.0)


def _src(scenario: str, seconds: float, seed: int, params: ModelParams,
         block_ms: float = 10.0) -> SimulatedSource:
    return SimulatedSource(scenario, seconds, seed, speed=None, block_ms=block_ms, params=params)


def _samples(scenario: str, seconds: float, seed: int, params: ModelParams) -> np.ndarray:
    src = _src(scenario, seconds, seed, params)
    return src.model.samples(0, src.script.n_samples)


def _diff(scenario: str, seconds: float, seed: int, base: ModelParams,
          **conf: object) -> tuple[SimulatedSource, np.ndarray]:
    """The confounder alone: samples with it minus samples without it, and the source with it."""
    with_c = _src(scenario, seconds, seed, replace(base, **conf))  # type: ignore[arg-type]
    x1 = with_c.model.samples(0, with_c.script.n_samples)
    return with_c, x1 - _samples(scenario, seconds, seed, base)


def _col(src: SimulatedSource, short: str) -> int:
    return [c[4:] for c in src.info.channels].index(short)


def _read_all_chunks(src: SimulatedSource) -> list:
    parts = []
    with src:
        while (c := src.read()) is not None:
            parts.append(c)
    return parts


# --------------------------------------------------------------------------- presets, truth
def test_default_has_no_confounder_and_each_preset_plants_its_truth() -> None:
    src = _src("session", 150.0, 3, ModelParams())
    assert {t.kind for t in src.script.truth} <= {"mains", "blink", "synkinesis", "crosstalk"}
    assert not any(t.rep >= 1 for t in src.script.of_kind("blink"))  # blinks outside reps only
    expect = {"blinks": "blink", "hypertonic": "hypertonic", "motion": "motion", "pops": "pop",
              "electrode-off": "electrode_off", "electrode-off-mains": "electrode_off",
              "gaps": "gap", "ecg": "ecg", "crosstalk": "crosstalk"}
    for name, kind in expect.items():
        s = _src("session", 150.0, 3, apply_confounders(ModelParams(), name)).script
        got = s.of_kind(kind)
        assert got, name
        if name == "blinks":
            assert any(t.rep >= 1 for t in got)
    with pytest.raises(ConfigError, match="unknown confounder 'blinkz'"):
        apply_confounders(ModelParams(), "blinkz")
    assert set(CONFOUNDERS) >= set(expect)


@pytest.mark.parametrize("bad, message", [
    ({"fs": 250.0}, "500-2000 Hz"), ({"mains_hz": 70.0}, "45-65 Hz"),
    ({"synkinesis_timing": "late"}, "onset, lag, mid"), ({"blinks_in_reps": 2.0}, "probability"),
    ({"electrode_off_mode": "float"}, "rail, mains"), ({"gaps_per_min": -1.0}, "non-negative"),
    ({"synkinesis_pct": (50.0, 20.0)}, "0-100"),
])
def test_bad_parameters_are_clear_errors(bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelParams(**bad)


def test_ground_truth_is_consistent() -> None:
    p = apply_confounders(ModelParams(), "all")
    src = _src("session", 200.0, 5, p)
    sc = src.script
    shorts = [c[4:] for c in sc.channels]
    cal_end = max(c.stop for c in sc.cues if c.text == "rest" or c.text.startswith("mvc "))
    reps = [c for c in sc.cues if c.text != "rest" and not c.text.startswith("mvc ")]
    assert {t.kind for t in sc.truth} == set(TRUTH_KINDS)
    for t in sc.truth:
        assert t.kind in TRUTH_KINDS
        assert 0 <= t.start < t.stop <= sc.n_samples, t
        assert t.channel in shorts or (t.channel == "" and t.kind in ("gap", "mains")), t
        if t.kind in ("motion", "pop", "electrode_off", "gap"):
            assert t.start >= cal_end + int(p.fs) and t.stop <= sc.n_samples - int(p.fs), t
        if t.rep >= 1:  # in-rep entries name the rep they fall in (order of exercise cues)
            assert reps[t.rep - 1].start <= t.start < reps[t.rep - 1].stop, t
    # Synkinesis truth = the planted events, with their trigger rep.
    syn = sc.of_kind("synkinesis")
    assert [(t.channel, t.trigger, t.start, t.stop, t.rep) for t in syn] == \
        [(e.channel, e.trigger, e.start, e.stop, e.rep) for e in sorted(sc.events,
                                                                        key=lambda e: e.start)]
    for t in syn:
        assert reps[t.rep - 1].text == t.detail and t.trigger.split("-")[0] == t.channel[0]
        assert 15.0 <= t.level <= 45.0
    # Blinks are bilateral, one truth entry per orbicularis oculi channel, as the activations.
    blinks = sc.of_kind("blink")
    assert sorted((b.start, b.stop) for b in blinks if b.channel == "L-OOC") == \
        sorted((b.start, b.stop) for b in blinks if b.channel == "R-OOC")
    assert sorted((a.channel, a.start, a.stop) for a in sc.activations if a.kind == "blink") == \
        sorted((b.channel, b.start, b.stop) for b in blinks)
    # Gaps never overlap; artefacts never overlap each other or the electrode-off period.
    gaps = sc.gaps
    assert all(a[1] < b[0] for a, b in zip(gaps, gaps[1:]))
    arts = sorted({(t.start, t.stop) for t in sc.of_kind("motion", "pop", "electrode_off")})
    assert all(a[1] <= b[0] for a, b in zip(arts, arts[1:]))
    json.dumps([t.to_json(sc.fs) for t in sc.truth], allow_nan=False)


def test_confounders_leave_the_script_alone() -> None:
    """Switching confounders on changes neither the reps nor the planted synkinesis."""
    a = _src("session", 150.0, 9, ModelParams()).script
    p = apply_confounders(ModelParams(), "motion,pops,electrode-off,gaps,ecg,hypertonic,blinks")
    b = _src("session", 150.0, 9, p).script
    assert a.cues == b.cues and a.events == b.events
    assert [x for x in b.activations if x.kind not in ("blink", "hypertonic")] == \
        [x for x in a.activations if x.kind != "blink"]


# --------------------------------------------------------------------------- determinism, chunks
def test_deterministic_and_chunk_size_invariant_with_every_confounder() -> None:
    p = apply_confounders(NOCAL, "all")
    ref = _read_all_chunks(_src("smile-synkinesis", 40.0, 4, p, block_ms=10.0))
    for block_ms in (1.0, 7.0, 333.0):
        parts = _read_all_chunks(_src("smile-synkinesis", 40.0, 4, p, block_ms=block_ms))
        idx = np.concatenate([np.arange(c.start, c.stop) for c in parts])
        ref_idx = np.concatenate([np.arange(c.start, c.stop) for c in ref])
        assert np.array_equal(idx, ref_idx)
        assert np.array_equal(np.concatenate([c.data for c in parts]),
                              np.concatenate([c.data for c in ref]))
        assert [m for c in parts for m in c.markers] == [m for c in ref for m in c.markers]
        assert sum(c.status.lost_samples for c in parts) == \
            sum(c.status.lost_samples for c in ref)
        assert np.array_equal(np.sum([c.status.saturated for c in parts], axis=0),
                              np.sum([c.status.saturated for c in ref], axis=0))
    # Random access equals sequential reading; another seed differs.
    src = _src("smile-synkinesis", 40.0, 4, p)
    assert np.array_equal(src.model.samples(23_456, 24_000),
                          np.concatenate([c.data for c in ref])[
                              np.searchsorted(ref_idx, 23_456):np.searchsorted(ref_idx, 24_000)])
    other = _src("smile-synkinesis", 40.0, 5, p)
    assert other.script.truth != src.script.truth


# --------------------------------------------------------------------------- gaps
def test_gaps_are_lost_samples_never_made_up_values(tmp_path: Path) -> None:
    p = replace(NOCAL, gaps_per_min=12.0)
    src = _src("smile-synkinesis", 60.0, 2, p, block_ms=10.0)
    gaps = src.script.gaps
    assert len(gaps) >= 4
    parts = _read_all_chunks(src)
    have = np.zeros(src.script.n_samples, bool)
    for a, b in zip(parts, parts[1:]):
        jump = b.start - a.stop
        assert jump == b.status.lost_samples  # the start jumps by what was lost
        if jump:
            assert (a.stop, b.start) in gaps
    for c in parts:
        assert not have[c.start:c.stop].any()
        have[c.start:c.stop] = True
    for a, b in gaps:
        assert not have[a:b].any() and have[a - 1] and have[b]
    assert (~have).sum() == sum(b - a for a, b in gaps) == sum(c.status.lost_samples
                                                               for c in parts)
    # One contiguous chunk is impossible; the recording has NaN in the gap slots only.
    with pytest.raises(ValueError, match="gaps"):
        _src("smile-synkinesis", 60.0, 2, p).read_all()
    rec = _src("smile-synkinesis", 60.0, 2, p).recording()
    assert rec.gaps == [(a, b - a) for a, b in gaps]
    x = rec.read()
    assert np.array_equal(np.isnan(x).any(axis=1), ~have)
    # Written to EDF+ and read back, the gaps are still gaps.
    from emgfeedback.cli import main
    from emgfeedback.io.importers import load

    out = tmp_path / "g.edf"
    assert main(["simulate", "--scenario", "smile-synkinesis", "--duration", "60", "--seed", "2",
                 "--confounder", "gaps", "--no-calibration", "--out", str(out)]) == 0
    truth = json.loads(Path(str(out) + ".truth.json").read_text())
    t_gaps = [t for t in truth["truth"] if t["kind"] == "gap"]
    with load(out) as back:
        assert len(back.gaps) == len(t_gaps) >= 1
        for (g0, glen), t in zip(back.gaps, t_gaps):
            assert g0 == round(t["onset_s"] * 1000) and glen == round(
                (t["offset_s"] - t["onset_s"]) * 1000)


# --------------------------------------------------------------------------- blinks during reps
def test_blinks_during_reps_are_short_bilateral_bursts() -> None:
    src, d = _diff("smile-clean", 90.0, 6, QUIET, blinks_in_reps=1.0)
    in_rep = [t for t in src.script.of_kind("blink") if t.rep >= 1]
    assert len(in_rep) >= 2 * 8
    _, env = Chain(1000.0, d.shape[1]).process_array(
        _src("smile-clean", 90.0, 6, replace(QUIET, blinks_in_reps=1.0)).model.samples(0, 90_000))
    for t in in_rep:
        assert 80 <= t.stop - t.start <= 180
        assert 30.0 <= t.level <= 60.0
        j = _col(src, t.channel)
        # The difference is the blink: energy inside its window (with its 100 ms ramps) only.
        outside = np.r_[d[: t.start - 5, j], d[t.stop + 5:, j]]
        others = [b for b in in_rep if b.channel == t.channel and b is not t]
        if not others:
            assert np.abs(outside).max() == 0.0
        burst = np.sqrt(np.mean(d[t.start:t.stop, j] ** 2))
        expect = t.level / 100 * 130.0 * (0.7 if t.channel[0] == "L" else 1.0)
        assert 0.3 * expect < burst < 1.2 * expect, (t, burst, expect)
        # Visible in the envelope of the smile's OOC channel (which carries 4 % crosstalk).
        assert env[t.start + 40: t.stop, j].max() > 2.0 * np.median(env[t.start - 400:
                                                                          t.start - 150, j])


# --------------------------------------------------------------------------- hypertonic tone
def test_hypertonic_resting_tone_on_the_affected_side_only() -> None:
    src, d = _diff("rest", 30.0, 3, QUIET, hypertonic_pct=6.0)
    for j, ch in enumerate(src.info.channels):
        rms = np.sqrt(np.mean(d[2000:, j] ** 2))
        if ch[4] == "L":
            code = ch[6:]
            expect = 0.06 * {"FRO": 150.0, "OOC": 130.0, "ZYG": 200.0, "OOR": 180.0}[code] * 0.7
            # Own tone plus the neighbours' tone as crosstalk (4 % each).
            assert expect * 0.95 < rms < expect * 1.25, (ch, rms, expect)
        else:
            assert rms == 0.0
    truth = src.script.of_kind("hypertonic")
    assert sorted(t.channel for t in truth) == ["L-FRO", "L-OOC", "L-OOR", "L-ZYG"]
    assert all(t.start == 0 and t.stop == src.script.n_samples for t in truth)


# --------------------------------------------------------------------------- crosstalk
def test_crosstalk_is_the_neighbours_waveform_attenuated() -> None:
    p = replace(QUIET, crosstalk=0.15, noise_uv=(0.05, 0.05))
    src = _src("smile-clean", 30.0, 2, p)
    x = src.model.samples(0, src.script.n_samples)
    zyg, oor = _col(src, "R-ZYG"), _col(src, "R-OOR")
    smiles = [a for a in src.script.activations if a.channel == "R-ZYG"]
    seg = np.concatenate([np.arange(a.start + 150, a.stop - 150) for a in smiles])
    share = np.dot(x[seg, oor], x[seg, zyg]) / np.dot(x[seg, zyg], x[seg, zyg])
    r = np.corrcoef(x[seg, oor], x[seg, zyg])[0, 1]
    assert share == pytest.approx(0.15, abs=0.01) and r > 0.99, (share, r)
    ct = [t for t in src.script.of_kind("crosstalk") if t.channel == "R-OOR"
          and t.trigger == "R-ZYG"]
    assert [(t.start, t.stop) for t in ct] == [(a.start, a.stop) for a in smiles]
    assert all(t.level == pytest.approx(15.0) for t in ct)


# --------------------------------------------------------------------------- artefacts
def test_cable_motion_is_large_and_low_frequency() -> None:
    src, d = _diff("smile-synkinesis", 120.0, 8, NOCAL, motion_per_min=8.0)
    motion = src.script.of_kind("motion")
    assert len(motion) >= 5
    covered = np.zeros(len(d), bool)
    for t in motion:
        covered[t.start:t.stop] = True
        seg = d[t.start:t.stop, _col(src, t.channel)]
        assert 150.0 <= abs(t.level) <= 1500.0
        assert np.abs(seg).max() == pytest.approx(abs(t.level), rel=0.02)
        assert np.sign(seg[np.argmax(np.abs(seg))]) == np.sign(t.level)
        f = np.fft.rfftfreq(len(seg), 1 / 1000.0)
        pw = np.abs(np.fft.rfft(seg)) ** 2
        assert pw[f < 20].sum() > 0.9 * pw.sum()  # low-frequency ...
        assert pw[f >= 20].sum() > 0.0  # ... with edges that leak into the EMG band
    assert np.abs(d[~covered]).max() == 0.0


def test_electrode_pop_is_a_step_with_exponential_decay() -> None:
    src, d = _diff("smile-synkinesis", 120.0, 8, NOCAL, pops_per_min=8.0)
    pops = src.script.of_kind("pop")
    assert len(pops) >= 5
    expect = np.zeros_like(d)
    n = np.arange(len(d))
    for t in pops:
        j = _col(src, t.channel)
        tau = float(t.detail.partition("=")[2])
        assert 0.1 <= tau <= 0.4 and t.stop - t.start == round(5 * tau * 1000)
        assert 200.0 <= abs(t.level) <= 1500.0
        seg = slice(t.start, t.start + round(10 * tau * 1000))
        expect[seg, j] += t.level * np.exp(-(n[seg] - t.start) / (tau * 1000.0))
        # A step at the onset (the whole amplitude within one sample), 1/e after tau.
        assert d[t.start, j] - d[t.start - 1, j] == pytest.approx(t.level, rel=0.01)
    assert np.allclose(d, expect, atol=1e-9)


@pytest.mark.parametrize("mode", ["rail", "mains"])
def test_electrode_off_rails_or_carries_mains(mode: str) -> None:
    p = replace(NOCAL, electrode_off_s=5.0, electrode_off_mode=mode,
                electrode_off_channel="L-ZYG")
    src = _src("smile-synkinesis", 60.0, 4, p)
    off = src.script.of_kind("electrode_off")[0]
    assert off.channel == "L-ZYG" and off.stop - off.start == 5000 and off.detail == mode
    parts = _read_all_chunks(src)
    x = np.concatenate([c.data for c in parts])
    sat = np.sum([c.status.saturated for c in parts], axis=0)
    j = _col(src, "L-ZYG")
    seg = x[off.start + 100: off.stop, j]
    if mode == "rail":
        rail = SIM_RANGE_UV[1] if off.level > 0 else SIM_RANGE_UV[0]
        assert np.mean(seg == rail) > 0.4  # sits at the rail (the mains on it clips)
        assert sat[j] >= 0.4 * 4900 and sat.sum() == sat[j]
        pops = src.script.of_kind("pop")  # the reconnection settles from the rail
        assert pops and pops[0].start == off.stop and pops[0].channel == "L-ZYG"
    else:
        f, pw = signal.welch(seg - seg.mean(), fs=1000.0, nperseg=1000)
        assert abs(f[np.argmax(pw)] - 50.0) <= 1.0
        assert 700.0 < np.std(seg) < 2000.0  # huge mains, not clipped
        assert sat.sum() == 0
    # Other channels are untouched by it.
    base = _samples("smile-synkinesis", 60.0, 4, NOCAL)
    others = [i for i in range(x.shape[1]) if i != j]
    assert np.array_equal(x[:, others], np.clip(base[:, others], *SIM_RANGE_UV))


# --------------------------------------------------------------------------- mains, ECG, fs
@pytest.mark.parametrize("hz", [49.9, 59.8])
def test_off_nominal_strong_mains_with_harmonics(hz: float) -> None:
    p = apply_confounders(replace(QUIET, noise_uv=(1.0, 5.0)), f"mains-{hz:g}")
    assert p.mains_hz == hz and p.mains_uv == 55.0
    src = _src("rest", 20.0, 7, p)
    x = src.model.samples(0, src.script.n_samples)
    t = np.arange(len(x)) / 1000.0
    for h, rel in ((1, 1.0), (2, 0.3), (3, 0.5)):
        ref = np.exp(-2j * np.pi * h * hz * t)
        amp = np.abs(ref @ x) / len(x) * 2 / np.sqrt(2)  # lock-in: RMS at h * hz exactly
        assert np.allclose(amp, rel * src.model.mains_amp, rtol=0.03), (h, amp)
        if h == 1:
            assert np.all((amp >= 0.5 * 55) & (amp <= 1.5 * 55)) and 40 < amp.mean() < 70
            nominal = np.abs(np.exp(-2j * np.pi * round(hz / 10) * 10 * t) @ x) / len(x)
            assert np.all(nominal < 0.2 * amp)  # it is off-nominal, not at 50/60 Hz
    truth = src.script.of_kind("mains")[0]
    assert truth.level == 55.0 and truth.detail == f"{hz:g} Hz"


def test_ecg_on_lower_face_channels() -> None:
    p = replace(QUIET, channels=("EMG L-FRO", "EMG L-OOC", "EMG L-OOR", "EMG L-PLA"))
    src, d = _diff("rest", 30.0, 2, p, ecg_uv=80.0)
    beats = np.array(src.script.ecg_beats)
    rr = np.diff(beats) / 1000.0
    assert 60 / rr.mean() == pytest.approx(70, abs=10.5) and rr.std() < 0.1 * rr.mean()
    assert np.abs(d[:, :2]).max() == 0.0  # upper face: none
    for j, w in ((2, 0.5), (3, 1.0)):
        r = d[beats[1:-1], j]
        assert np.allclose(np.abs(r), 80.0 * w, rtol=0.1)  # the R wave at every beat
        assert np.all(np.sign(r) == np.sign(r[0]))
    f, pw = signal.welch(d[:, 3], fs=1000.0, nperseg=2000)
    assert pw[f < 40].sum() > 0.8 * pw.sum()
    assert sorted(t.channel for t in src.script.of_kind("ecg")) == ["L-OOR", "L-PLA"]


@pytest.mark.parametrize("fs", [500.0, 2000.0])
def test_sampling_rates_500_to_2000(fs: float) -> None:
    p = apply_confounders(NOCAL, f"fs-{fs:g}")
    src = _src("smile-clean", 20.0, 1, replace(p, noise_uv=(0.01, 0.01), mains_uv=0.0,
                                                 drift_uv=0.0, offset_uv=0.0))
    parts = _read_all_chunks(src)
    x = np.concatenate([c.data for c in parts])
    assert len(x) == 20 * fs and parts[0].fs == fs
    assert all(len(c) == round(0.01 * fs) for c in parts[:-1])  # 10 ms chunks
    z = _col(src, "R-ZYG")
    seg = np.concatenate([x[a.start + round(0.2 * fs): a.stop - round(0.2 * fs), z]
                          for a in src.script.activations if a.channel == "R-ZYG"])
    f, pw = signal.welch(seg, fs=fs, nperseg=int(fs))
    assert pw[(f >= 20) & (f <= 250)].sum() >= 0.8 * pw[f > 0].sum()
    assert all(a.start == round(a.start / fs * fs) for a in src.script.activations)
    cue = src.script.cues[0]
    assert parts[0].start == 0 and cue.start == round(3.0 * fs)


# --------------------------------------------------------------------------- synkinesis timing
@pytest.mark.parametrize("timing", ["lag", "mid"])
def test_synkinesis_that_lags_or_joins_mid_rep(timing: str) -> None:
    p = replace(apply_confounders(NOCAL, f"synkinesis-{timing}"), synkinesis_prob=1.0)
    src = _src("smile-synkinesis", 90.0, 12, p)
    x = src.model.samples(0, src.script.n_samples)
    _, env = Chain(1000.0, x.shape[1]).process_array(x)
    events = src.script.events
    assert len(events) >= 10
    j = _col(src, "L-OOC")
    for e in events:
        target = next(a for a in src.script.activations if a.channel == e.trigger
                      and a.kind == "voluntary" and a.start <= e.start < a.stop)
        delay = (e.start - target.start) / 1000.0
        if timing == "lag":
            assert 0.3 <= delay <= 0.8
        else:
            frac = (e.start - target.start) / (target.stop - target.start)
            assert 0.3 <= frac <= 0.6 + 1e-3
        assert 15.0 <= e.peak_pct <= 45.0
        # The envelope of the intruder rises after the true onset, not with the target.
        before = env[e.start - 150: e.start - 50, j].mean()
        after = env[e.start + 150: min(e.stop, e.start + 400), j].mean()
        assert after > 2.0 * before + 2.0, (e, before, after)


def test_confounders_from_the_command_line_options() -> None:
    from emgfeedback.cli import build_parser, make_source

    args = build_parser().parse_args(["demo", "--scenario", "rest", "--seed", "4", "--mains",
                                      "49.9", "--speed", "max", "--confounder", "ecg,gaps",
                                      "--confounder", "hypertonic"])
    src = make_source(args, duration=20.0)
    assert (src.params.ecg_uv, src.params.gaps_per_min, src.params.hypertonic_pct) == \
        (80.0, 6.0, 6.0)
    assert src.params.mains_hz == 49.9 and src.script.of_kind("ecg")

