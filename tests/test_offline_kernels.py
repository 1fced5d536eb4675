"""The offline fast paths compute exactly what the general code computes (issue 13).

Large blocks take shortcuts that must not change a single bit: the 16-bit EDF reader converts
codes on channel-major rows, the artefact flags decide a long block without flat samples by
windows, the crosstalk index takes every lag from one FFT cross-correlation (equal to the dots to
rounding), a long chunk's flags
are computed ahead by the helper thread.  Each is compared here with the general computation.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reference import flags_in_blocks, flat_reference
from _sessions import make_source, write_edf_session

from emgfeedback.config import QualityConfig
from emgfeedback.dsp.quality import FLAT, ArtefactFlags

FS = 2000.0


@pytest.mark.parametrize("block", [100, 101, 149, 250, 1999, 4000])
def test_long_block_flags_equal_the_definition_at_the_run_limit(block: int) -> None:
    """Flat runs one short of ``flat_ms``, exactly it and one more, at every offset (inside
    blocks, across their edges, in the first window of a block): the window test of long blocks
    gives the flags (and carries the state) of the sample-by-sample definition."""
    cfg = QualityConfig()
    need = int(round(cfg.flat_ms * FS / 1000.0))
    rng = np.random.default_rng(block)
    n = 40_000
    x = np.round(30 * rng.standard_normal((n, 4)))  # 1 µV steps: a few repeated samples
    for c in range(4):
        # runs of need-1, need and need+1 samples starting at every offset within a window of
        # the test and a block (the runs are 300 samples apart, their offsets step by 1)
        for j in range(n // 300 - 1):
            a = 1 + 300 * j + (j + 31 * c) % 150
            x[a:a + need - 1 + (j + c) % 3, c] = x[a - 1, c]
    flat = (flags_in_blocks(ArtefactFlags(FS, 4, cfg, None), x, block) & FLAT) != 0
    ref = flat_reference(x, cfg.flat_rms_uv, need)
    assert ref.any() and not ref.all()
    assert np.array_equal(flat, ref)


def test_edf_reader_equals_the_grid_arithmetic(tmp_path: Path) -> None:
    """Any range of a 16-bit file reads as ``DigitalGrid.to_physical`` of its codes, value for
    value, whatever the range's alignment with records and slabs."""
    from emgfeedback.io.edf import reader as edf_reader
    from emgfeedback.io.importers import load

    path = tmp_path / "P-009_r.edf"
    write_edf_session(path, make_source(seed=4, duration=20.0), "P-009")
    with load(path) as rec:
        assert isinstance(rec, edf_reader.EdfRecording) and rec._bps == 2
        whole = rec.read()
        n = rec._n_per_rec
        codes = np.asarray(rec._mm[:]).view("<i2")
        ref = np.empty_like(whole)
        for c, (a, b) in enumerate(rec._chan_bytes):
            d = codes[:, a // 2:b // 2].reshape(-1)[:len(whole)].astype(np.float64)
            ref[:, c] = rec.grids[c].to_physical(d)
        assert np.array_equal(whole, ref)
        rng = np.random.default_rng(1)
        for _ in range(30):
            a = int(rng.integers(0, rec.n_samples - 1))
            b = int(rng.integers(a + 1, min(rec.n_samples, a + 3 * n + 5) + 1))
            part = rec.read(a, b)
            assert part.flags.c_contiguous and np.array_equal(part, whole[a:b])


def _direct_crosstalk(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """The crosstalk index by its definition: a dot product per lag."""
    m = len(a)
    vals = [np.dot(a[lag:], b[:m - lag]) for lag in range(k + 1)]
    vals += [np.dot(a[:m - lag], b[lag:]) for lag in range(1, k + 1)]
    return max(abs(float(v)) for v in vals) / float(np.sqrt(np.dot(a, a) * np.dot(b, b)))


def test_crosstalk_index_by_fft_equals_the_lag_by_lag_dots() -> None:
    """The crosstalk index from one FFT cross-correlation per rep side equals the peak of the
    lag-by-lag dot products to rounding, for a quiet channel lagging, leading (at the last lag
    searched) or independent, on spans of prime length or just past a fast FFT length."""
    from emgfeedback.clinical.calibration import Calibration
    from emgfeedback.clinical.detect import Detector, _fast_len
    from emgfeedback.clinical.montage import Montage

    for n in (1, 2, 7, 97, 1000, 4097, 12_345):
        f = _fast_len(n)
        assert n <= f < 2 * n + 2
        r = f
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        assert r == 1
    names = ("EMG L-ZYG", "EMG L-OOC", "EMG L-FRO", "EMG R-ZYG")
    mont = Montage.from_labels(names)
    ones = np.ones(4)
    cal = Calibration(mont.names, ones, 0.5 * ones, 50.0 * ones, ("rest",) * 4, ("mvc",) * 4)
    det = Detector(FS, mont, cal)
    k = det._xlag
    assert k > 0
    rng = np.random.default_rng(7)
    for m in (500, 4001, 6000, 12_343):
        filt = rng.standard_normal((m, 4)) * np.array([10.0, 1.0, 5.0, 1.0])
        filt[:, 1] += 0.3 * np.roll(filt[:, 0], 7)  # the quiet channel lags the target
        filt[:, 3] += 0.8 * np.roll(filt[:, 0], -k)  # leads it, at the last lag searched
        filt[:, 2] = filt[:, 2] * (np.arange(m) < m // 2)  # silent for half the span
        on = np.ones(m, dtype=bool)
        on[: m // 10] = False
        got = det._crosstalk(filt, on, 0, [1, 2, 3])
        r0 = m // 10
        for q in (1, 2, 3):
            want = _direct_crosstalk(filt[r0:, 0], filt[r0:, q], k)
            assert abs(got[q] - want) <= 1e-12, (m, q, got[q], want)
        assert got[1] > 0.9 and got[3] > 0.9 and got[2] < 0.25  # copies, and independent
    filt = np.zeros((1000, 4))
    filt[:, 0] = rng.standard_normal(1000)
    assert det._crosstalk(filt, np.ones(1000, dtype=bool), 0, [1, 2]) == {}  # silent: no index
    assert det._crosstalk(filt, np.ones(10, dtype=bool), 0, [1]) == {}  # too short a span


def test_fft_length_table_equals_the_search() -> None:
    """The crosstalk index's FFT length comes from a table of 2^a 3^b 5^c: the same length as
    the search it replaces, for every span up to 70,000 samples, random longer ones and the
    table's end (beyond it, the search itself)."""
    import random

    from emgfeedback.clinical.detect import _SMOOTH_MAX, _fast_len, _smooth_up_to

    rng = random.Random(13)
    ns = [*range(1, 70_000), *(rng.randrange(70_000, _SMOOTH_MAX) for _ in range(2000)),
          _SMOOTH_MAX - 1, _SMOOTH_MAX, _SMOOTH_MAX + 1, 3 * _SMOOTH_MAX]
    for n in ns:
        assert _fast_len(n) == _smooth_up_to(n), n
    assert _fast_len(7001) == 7200 and _fast_len(4097) == 4320
