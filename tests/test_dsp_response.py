"""Filter responses against their design: band edges, notch depth, reported delays."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from emgfeedback.config import DspConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.dsp.envelope import LinearEnvelope, MovingRms
from emgfeedback.dsp.filters import design_bandpass, design_notches, detect_mains


def _gain_db(sos: np.ndarray, fs: float, f: np.ndarray) -> np.ndarray:
    _, h = signal.sosfreqz(sos, worN=f, fs=fs)
    return 20 * np.log10(np.maximum(np.abs(h), 1e-12))


@pytest.mark.parametrize("fs", [1000.0, 2000.0])
def test_bandpass_minus_3db_edges_within_5_percent(fs: float) -> None:
    sos = design_bandpass(fs, 20.0, 450.0, 4)
    hi = min(450.0, 0.45 * fs)
    f = np.linspace(1, fs / 2 - 1, 20000)
    g = _gain_db(sos, fs, f)
    passband = f[g >= -3.0103]
    assert abs(passband.min() - 20.0) / 20.0 <= 0.05
    assert abs(passband.max() - hi) / hi <= 0.05


def test_upper_edge_clipped_below_nyquist() -> None:
    chain = Chain(500.0, 1, DspConfig(band=(20.0, 450.0)))
    assert chain.band_hz == (20.0, 225.0)


@pytest.mark.parametrize("mains", [50.0, 60.0])
@pytest.mark.parametrize("fs", [1000.0, 2000.0])
def test_notch_attenuation_at_mains_and_harmonics(mains: float, fs: float) -> None:
    sos = design_notches(fs, mains, 30.0, upper=450.0)
    harmonics = np.arange(mains, min(450.0, 0.45 * fs), mains)
    assert len(sos) == len(harmonics)
    assert np.all(_gain_db(sos, fs, harmonics) <= -30.0)
    # Narrow: 10 Hz away from every notch, the loss stays small.
    between = harmonics + mains / 2
    assert np.all(_gain_db(sos, fs, between[between < fs / 2]) >= -1.0)


def test_measured_notch_on_sine_in_chain() -> None:
    fs = 1000.0
    t = np.arange(int(5 * fs)) / fs
    x = np.stack([100 * np.sin(2 * np.pi * f * t) for f in (50, 150, 250)], axis=1)
    filt, _ = Chain(fs, 3, DspConfig(mains="50")).process_array(x)
    tail = filt[int(2 * fs):]
    rms_in = 100 / np.sqrt(2)
    att = 20 * np.log10(np.sqrt(np.mean(tail**2, axis=0)) / rms_in)
    assert np.all(att <= -30.0), att


def _centroid_ms(h: np.ndarray, fs: float) -> float:
    n = np.arange(len(h))
    return 1000.0 * float(np.sum(n * h) / np.sum(h)) / fs


@pytest.mark.parametrize("cutoff,order", [(6.0, 2), (8.0, 2), (10.0, 2), (6.0, 4)])
def test_envelope_reported_delay_matches_impulse_centroid(cutoff: float, order: int) -> None:
    fs = 1000.0
    env = LinearEnvelope(fs, 1, cutoff, order)
    x = np.zeros((5000, 1))
    x[0] = 1.0
    h = env.process(x)[:, 0]
    assert abs(_centroid_ms(h, fs) - 1000.0 * env.delay_s) <= 2.0


def test_envelope_delays_match_domain_numbers() -> None:
    # domain.md: 2nd-order 8 Hz 28 ms, 6 Hz 37.5 ms, 10 Hz 22.5 ms; 4th-order 6 Hz 69 ms.
    for cutoff, order, expect in ((8, 2, 28.0), (6, 2, 37.5), (10, 2, 22.5), (6, 4, 69.0)):
        assert abs(1000 * LinearEnvelope(1000.0, 1, cutoff, order).delay_s - expect) <= 1.0


def test_moving_rms_delay() -> None:
    fs = 1000.0
    rms = MovingRms(fs, 1, 50.0)
    x = np.zeros((400, 1))
    x[100] = 1.0  # after the window has filled once
    h = rms.process(x)[100:, 0] ** 2  # mean of squares: a boxcar whose centroid is the delay
    assert abs(_centroid_ms(h, fs) - 1000.0 * rms.delay_s) <= 2.0


def test_chain_reports_total_delay_against_step() -> None:
    """A burst switched on at t0: the envelope reaches half its final level about one reported
    delay later (within 2 ms for the linear part; the measured half-rise of a 2nd-order low-pass
    is compared with its own group delay)."""
    fs = 2000.0
    chain = Chain(fs, 1, DspConfig(mains="off"))
    env = LinearEnvelope(fs, 1, 8.0, 2)
    step = np.zeros((8000, 1))
    step[2000:] = 1.0
    y = env._lp.process(step)[:, 0]
    # The centroid of the step's derivative (impulse response) equals the DC group delay.
    h = np.diff(np.concatenate([[0.0], y]))[2000:]
    assert abs(_centroid_ms(h, fs) - chain.envelope_delay_ms) <= 2.0
    assert 0 < chain.filter_delay_ms < 5.0  # band-pass at 100 Hz: about 1-2 ms (domain.md)


@pytest.mark.parametrize("mains", [50, 60])
def test_detect_mains(mains: int) -> None:
    fs = 1000.0
    rng = np.random.default_rng(3)
    t = np.arange(int(2 * fs)) / fs
    x = 3 * rng.standard_normal((len(t), 4)) + 5 * np.sin(2 * np.pi * mains * t)[:, None]
    assert detect_mains(x, fs) == mains
    assert detect_mains(3 * rng.standard_normal((2000, 4)), fs) is None
