"""The chain on recordings nobody on this project designed (../shared/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emgfeedback.config import DspConfig
from emgfeedback.dsp.chain import Chain


def _bursts(env: np.ndarray, thr: float, fs: float, min_s: float = 0.1) -> list[tuple[float, float]]:
    act = np.concatenate([[False], env > thr, [False]])
    d = np.diff(act.astype(int))
    on, off = np.where(d == 1)[0], np.where(d == -1)[0]
    return [(a / fs, b / fs) for a, b in zip(on, off) if (b - a) / fs >= min_s]


def test_biosppy_bursts_found(shared_data: Path) -> None:
    x = np.loadtxt(shared_data / "biosppy_emg_1_1khz.txt", comments="#")[:, None]
    fs = 1000.0
    chain = Chain(fs, 1, DspConfig(mains="auto"))
    _, env = chain.process_array(x)
    assert chain.mains == 50  # the file's 50 Hz line
    env = env[:, 0]
    base = env[int(5 * fs): int(14 * fs)]  # quiet stretch
    thr = base.mean() + 3 * base.std()  # Hodges & Bui, h = 3
    bursts = _bursts(env, thr, fs)
    def hit(lo: float, hi: float) -> bool:
        return any(a < hi and b > lo for a, b in bursts)
    for lo, hi in ((1.0, 2.5), (15.0, 17.5), (25.0, 27.5), (35.0, 41.0)):
        assert hit(lo, hi), (lo, hi, bursts)
    assert not hit(50.0, 63.0), bursts  # the quiet end of the file
    strong = [b for b in bursts if env[int(b[0] * fs): int(b[1] * fs)].max() > 10 * base.mean()]
    assert len(strong) >= 2


def test_biopac_facial_file_mains_and_envelopes(shared_data: Path) -> None:
    path = shared_data / "biopac_facial_corr_zyg_lev_1khz.txt"
    x = np.loadtxt(path, delimiter=",", skiprows=36, usecols=(0, 1, 2)) * 1000.0  # mV -> µV
    fs = 1000.0
    chain = Chain(fs, 3, DspConfig(mains="auto"))
    filt, env = chain.process_array(x)
    assert chain.mains == 50  # "strong 50 Hz mains" (PROVENANCE.md)
    # The corrugator's 50 Hz line stands > 10x above its neighbourhood before the notch and
    # is gone after it (no longer above the neighbouring EMG spectrum).
    from scipy import signal

    f, p_in = signal.welch(x[2000:, 0] - x[2000:, 0].mean(), fs=fs, nperseg=1000)
    _, p_out = signal.welch(filt[2000:, 0], fs=fs, nperseg=1000)
    k = int(np.argmin(np.abs(f - 50)))
    ring = ((f >= 43) & (f <= 47)) | ((f >= 53) & (f <= 57))
    assert p_in[k] / np.median(p_in[ring]) > 10
    assert p_out[k] / np.median(p_out[ring]) < 1.5
    # Low-level facial activity: envelopes of a few µV to tens of µV, finite everywhere.
    assert np.all(np.isfinite(env))
    assert np.all((np.median(env[2000:], axis=0) > 0.5) & (np.median(env[2000:], axis=0) < 50))
