"""``emgfeedback.numeric.median`` and ``percentile`` are NumPy's to the bit, and import no
``numpy.ma``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.numeric import median, percentile


def _same(a: object, b: object) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("shape", [(1,), (2,), (7,), (8,), (5, 3), (6, 4), (3, 4, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_median_is_numpys_to_the_bit(shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 1e3).astype(dtype)
    for axis in [None, *range(-len(shape), len(shape))]:
        _same(median(x, axis=axis), np.median(x, axis=axis))
    assert type(median(x)) is type(np.median(x))


def test_median_nan_and_inf_and_views() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 6))
    x[2, 1] = np.nan
    x[4, 3] = np.inf
    x[0, 5] = -np.inf
    for axis in (None, 0, 1, -1):
        _same(median(x, axis=axis), np.median(x, axis=axis))
    v = np.lib.stride_tricks.sliding_window_view(rng.standard_normal(40), 7)[::4]
    _same(median(v, axis=1), np.median(v, axis=1))
    _same(median([3.0, np.nan]), np.median([3.0, np.nan]))
    assert median([1, 2, 3, 4]) == 2.5


def test_median_errors_as_numpy() -> None:
    with pytest.raises(np.exceptions.AxisError):
        median(np.zeros((2, 2)), axis=2)
    with pytest.warns(RuntimeWarning):
        assert np.isnan(median(np.zeros(0)))


@pytest.mark.parametrize("seed", range(6))
def test_percentile_is_numpys_to_the_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(300):
        shape = tuple(int(s) for s in rng.integers(1, 9, size=int(rng.integers(1, 4))))
        x = (rng.standard_normal(shape) * 10).astype((np.float64, np.float32)[trial % 2])
        if trial % 7 == 0:
            x.flat[int(rng.integers(0, x.size))] = np.nan
        q: float = float(rng.choice([0, 1, 25, 50, 99, 99.9, 100, rng.uniform(0, 100)]))
        if trial % 5 == 0:
            q = int(rng.integers(0, 101))
        axis = int(rng.integers(-x.ndim, x.ndim))
        _same(percentile(x, q, axis=axis), np.percentile(x, q, axis=axis))
    with pytest.raises(ValueError):
        percentile(np.zeros(3), 101.0)


def test_median_imports_no_numpy_ma() -> None:
    code = ("import sys, numpy as np\nfrom emgfeedback.numeric import median, percentile\n"
            "median(np.arange(10.0).reshape(5, 2), axis=0); median([1.0, np.nan])\n"
            "percentile(np.arange(10.0).reshape(5, 2), 99.0); percentile([1.0, np.nan], 50)\n"
            "print('numpy.ma' in sys.modules)")
    src = str(Path(__file__).resolve().parents[1] / "src")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"}, check=True)
    assert r.stdout.strip() == "False"


def test_percentile_signed_zero_and_numpy_scalar_q_as_numpy() -> None:
    """NumPy's gamma comes from the clipped previous index (a one-element lane or q = 100
    keeps the sign of -0.0), and a NumPy-scalar q is left to NumPy (its result type differs)."""
    from emgfeedback.numeric import percentile

    for x, q in (([-0.0], 0), ([-0.0], 100), ([1.0, -0.0], 100), ([[-0.0, 2.0]], 50.0)):
        a, b = np.percentile(np.array(x), q, axis=0), percentile(np.array(x), q, axis=0)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    x32 = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    for q in (np.float64(33.3), 33.3):
        a, b = np.percentile(x32, q), percentile(x32, q)
        assert np.asarray(a).dtype == np.asarray(b).dtype and a == b
