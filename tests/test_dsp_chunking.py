"""Chunked equals whole: every stage and the whole chain give the same output whatever the chunk
sizes, and equal scipy.signal.sosfilt of the same design (style.md practice 5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal
from _reference import flags_in_blocks, flat_reference

from emgfeedback.config import DspConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.dsp.envelope import LinearEnvelope, MovingRms
from emgfeedback.dsp.filters import SosStage, design_bandpass, design_notches
from emgfeedback.stream import Chunk

FS = 1000.0
CH = tuple(f"EMG L-{c}" for c in ("FRO", "OOC", "ZYG"))


def _signal(n: int = 3000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / FS
    return 300 + 20 * rng.standard_normal((n, 3)) + 10 * np.sin(2 * np.pi * 50 * t)


def _splits(n: int, size: int) -> list[int]:
    return list(range(size, n, size))


def _run_stage(stage, x: np.ndarray, cuts: list[int]) -> np.ndarray:
    stage.reset()
    return np.concatenate([stage.process(part) for part in np.split(x, cuts)])


def _close(a: np.ndarray, b: np.ndarray) -> None:
    scale = np.max(np.abs(b)) or 1.0
    assert np.max(np.abs(a - b)) / scale <= 1e-9


STAGES = {
    "bandpass": lambda: SosStage(design_bandpass(FS, 20, 450), 3),
    "notch": lambda: SosStage(design_notches(FS, 50), 3),
    "envelope": lambda: LinearEnvelope(FS, 3, 8.0, 2),
    "rms": lambda: MovingRms(FS, 3, 50.0),
}


@pytest.mark.parametrize("name", sorted(STAGES))
@pytest.mark.parametrize("size", [1, 7, 64, 1000])
def test_stage_chunked_equals_whole(name: str, size: int) -> None:
    x = _signal()
    whole = _run_stage(STAGES[name](), x, [])
    _close(_run_stage(STAGES[name](), x, _splits(len(x), size)), whole)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=2999), max_size=30, unique=True),
       seed=st.integers(0, 2**31 - 1), name=st.sampled_from(sorted(STAGES)))
def test_stage_random_splits(cuts: list[int], seed: int, name: str) -> None:
    x = _signal(seed=seed)
    whole = _run_stage(STAGES[name](), x, [])
    _close(_run_stage(STAGES[name](), x, sorted(cuts)), whole)


def test_sos_stage_equals_scipy_sosfilt() -> None:
    x = _signal()
    sos = design_bandpass(FS, 20, 450)
    stage = SosStage(sos, 3, steady_start=False)
    _close(np.concatenate([stage.process(p) for p in np.split(x, _splits(len(x), 7))]),
           signal.sosfilt(sos, x, axis=0))
    # With a steady start, the reference is sosfilt with zi = sosfilt_zi * x[0].
    stage = SosStage(sos, 3)
    zi = signal.sosfilt_zi(sos)[:, :, None] * x[0][None, None, :]
    _close(np.concatenate([stage.process(p) for p in np.split(x, _splits(len(x), 64))]),
           signal.sosfilt(sos, x, axis=0, zi=zi)[0])


def test_linear_envelope_equals_scipy() -> None:
    x = _signal()
    env = LinearEnvelope(FS, 3, 8.0, 2)
    ref = signal.sosfilt(signal.butter(2, 8.0, fs=FS, output="sos"), np.abs(x), axis=0)
    _close(np.concatenate([env.process(p) for p in np.split(x, _splits(len(x), 1))]), ref)


def test_moving_rms_equals_direct() -> None:
    x = _signal(500)
    n = 50
    ref = np.array([np.sqrt(np.mean(x[max(0, i - n + 1): i + 1] ** 2, axis=0)) for i in range(len(x))])
    out = _run_stage(MovingRms(FS, 3, 50.0), x, _splits(len(x), 7))
    _close(out, ref)


def _chain_run(cfg: DspConfig, x: np.ndarray, cuts: list[int]):
    chain = Chain(FS, 3, cfg)
    outs = []
    pos = 0
    for part in np.split(x, cuts):
        outs.append(chain.process(Chunk(part, pos, FS, CH)))
        pos += len(part)
    return (np.concatenate([o.filtered for o in outs]), np.concatenate([o.envelope for o in outs]),
            outs[-1].quality, chain)


@pytest.mark.parametrize("mains", ["50", "auto", "off"])
@pytest.mark.parametrize("envelope", ["lowpass", "rms"])
@pytest.mark.parametrize("size", [1, 7, 64, 1000])
def test_chain_chunked_equals_whole(mains: str, envelope: str, size: int) -> None:
    cfg = DspConfig(mains=mains, envelope=envelope)
    x = _signal()
    f0, e0, q0, c0 = _chain_run(cfg, x, [])
    f1, e1, q1, c1 = _chain_run(cfg, x, _splits(len(x), size))
    _close(f1, f0)
    _close(e1, e0)
    _close(q1.rms_uv, q0.rms_uv)
    _close(q1.mains_ratio, q0.mains_ratio)
    assert c0.mains == c1.mains


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=2999), max_size=20, unique=True))
def test_chain_random_splits(cuts: list[int]) -> None:
    cfg = DspConfig(mains="auto")
    x = _signal()
    f0, e0, _, _ = _chain_run(cfg, x, [])
    f1, e1, _, _ = _chain_run(cfg, x, sorted(cuts))
    _close(f1, f0)
    _close(e1, e0)


def test_chain_equals_sosfilt_of_same_design() -> None:
    """The fixed-mains chain is exactly front cascade -> notch cascade -> |x| -> low-pass."""
    x = _signal()
    chain = Chain(FS, 3, DspConfig(mains="50"))
    filt, env = chain.process_array(x)
    front = chain.front_sos
    zi = signal.sosfilt_zi(front)[:, :, None] * x[0][None, None, :]
    band = signal.sosfilt(front, x, axis=0, zi=zi)[0]
    notch = design_notches(FS, 50, 30.0, upper=450.0)
    zi = signal.sosfilt_zi(notch)[:, :, None] * band[0][None, None, :]
    ref = signal.sosfilt(notch, band, axis=0, zi=zi)[0]
    _close(filt, ref)
    _close(env, signal.sosfilt(signal.butter(2, 8.0, fs=FS, output="sos"), np.abs(ref), axis=0))


def test_gap_restarts_filters_like_a_new_stream() -> None:
    x = _signal()
    chain = Chain(FS, 3, DspConfig(mains="50"))
    chain.process(Chunk(x[:1000], 0, FS, CH))
    from emgfeedback.stream import Status
    after = chain.process(Chunk(x[1500:], 1500, FS, CH, Status(lost_samples=500)))
    fresh = Chain(FS, 3, DspConfig(mains="50")).process(Chunk(x[1500:], 1500, FS, CH))
    _close(after.filtered, fresh.filtered)


@pytest.mark.parametrize("size", [1, 7, 20, 33, 150, 4000])
def test_artefact_flags_chunked_equals_whole_and_the_definition(size: int) -> None:
    """Artefact flags (flat line, clipping, amplitude, motion) are the same whatever the chunking:
    the live path decides most 10 ms chunks from their last difference and a running minimum
    (issue 13), a quantised signal repeats samples, flat runs start and end inside and across
    chunks; the flat bits equal the definition computed sample by sample."""
    from emgfeedback.config import QualityConfig
    from emgfeedback.dsp.quality import FLAT, ArtefactFlags

    cfg = QualityConfig()
    need = int(round(cfg.flat_ms * FS / 1000.0))
    rng = np.random.default_rng(3)
    n = 4000
    x = np.round(40 * rng.standard_normal((n, 3)))  # 1 µV steps: repeated samples
    x[500:500 + 2 * need, 0] = x[499, 0]  # flat twice `need`: flagged from need on
    x[1000:1000 + need - 10, 1] = x[999, 1]  # flat a little less than `need`: not flagged
    x[1500:2600, 2] = 7.0  # long flat run across many chunks
    x[3000:3010, 0] = 4000.0  # at the rail
    x[3500:3520, 1] += 2500.0  # a pop
    rails = (-3000.0, 3000.0)

    def run(step: int) -> np.ndarray:
        return flags_in_blocks(ArtefactFlags(FS, 3, cfg, rails), x, step)

    whole = run(n)
    assert np.array_equal(run(size), whole)
    flat = (whole & FLAT) != 0
    assert np.array_equal(flat, flat_reference(x, cfg.flat_rms_uv, need))
    assert flat[500 + need:500 + 2 * need, 0].all() and not flat[1000:1000 + need, 1].any()
    assert flat[1500 + need:2600, 2].all() and flat.sum() < 2 * need + 1100
