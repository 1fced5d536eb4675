"""Small numerical helpers shared by every layer.

:func:`median` and :func:`percentile` are :func:`numpy.median` and :func:`numpy.percentile`
(linear interpolation, one percentile), the same numbers to the bit, without their one side
effect: NumPy asks ``np.ma.isMaskedArray`` in ``median`` and ``np.ma.is_masked`` in ``unique``
(which ``percentile`` calls), which imports ``numpy.ma``: about 20 ms of every process start-up
that computes either (issue 13, item 3).  tests/test_numeric.py compares them with NumPy's.

Bottom layer: imports nothing of the project.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["count_nonzero", "median", "percentile"]

#: ``np.count_nonzero(a)`` of a whole array: the compiled function it calls for ``axis=None``,
#: without its Python wrapper and dispatcher (half the cost on a 10 ms chunk's arrays, which
#: the live path tests a dozen times a chunk: issue 13); NumPy's own function where this NumPy
#: has no such module (tests/test_numeric.py compares them).
count_nonzero: Callable[[Any], int]
try:
    from numpy._core.multiarray import count_nonzero
except ImportError:  # pragma: no cover - another NumPy layout
    count_nonzero = np.count_nonzero


def median(a: ArrayLike, axis: int | None = None) -> Any:
    """``np.median(a, axis)``: the same partition, mean of the middle element(s) and NaN rule
    (a NaN in a lane gives NaN), so the result is bitwise NumPy's (tests/test_numeric.py);
    a NumPy scalar for ``axis=None`` or a 1-D input, an array otherwise."""
    arr = np.asarray(a)
    if axis is None:
        arr = arr.ravel()
        axis = 0
    elif not -arr.ndim <= axis < arr.ndim:
        return np.median(arr, axis=axis)  # NumPy's own AxisError
    axis %= arr.ndim
    n = arr.shape[axis]
    if n == 0:
        return np.median(arr, axis=axis)  # NumPy's warning and NaN (no numpy.ma on this path)
    half = n // 2
    kth = [half - 1, half] if n % 2 == 0 else [half]
    inexact = bool(np.issubdtype(arr.dtype, np.inexact))
    if inexact:
        kth.append(-1)  # NaNs sort last: the last element says whether a lane holds one
    part = np.partition(arr, kth, axis=axis)
    middle = slice(half - 1, half + 1) if n % 2 == 0 else slice(half, half + 1)
    out = np.mean(part[(slice(None),) * axis + (middle,)], axis=axis)
    if inexact:
        last = part.take(-1, axis=axis)
        nan = np.isnan(last)
        if nan.any():
            if isinstance(out, np.generic):
                return last
            np.copyto(out, last, where=nan)
    return out


def percentile(a: ArrayLike, q: float, axis: int = 0) -> Any:
    """``np.percentile(a, q, axis)`` for one percentile ``q`` (a Python number) of a real array:
    NumPy's steps for its default ``"linear"`` method (virtual index ``(n - 1) q / 100``, the
    order statistics on either side, NumPy's two-sided interpolation formula, NaN where a lane
    holds one), so the result is bitwise NumPy's; anything else is left to NumPy itself."""
    arr = np.asarray(a)
    if (type(q) not in (int, float) or not 0 <= q <= 100
            or arr.dtype.kind != "f" or not -arr.ndim <= axis < arr.ndim or arr.size == 0):
        return np.percentile(arr, q, axis=axis)
    arr = np.moveaxis(arr, axis, 0).copy() if axis % arr.ndim else arr.copy()
    n = arr.shape[0]
    virtual = (n - 1) * np.true_divide(q, 100)
    below = np.floor(virtual)
    prev = nxt = int(below)
    nxt = prev + 1
    if virtual >= n - 1:
        prev = nxt = -1
    elif virtual < 0:
        prev = nxt = 0
    arr.partition(sorted({0, -1 % n, prev % n, nxt % n}), axis=0)
    lo, hi = arr[prev], arr[nxt]
    # NumPy's gamma: from the clipped previous index (-1 at or past the last element)
    t = float(np.asarray(virtual - prev, dtype=virtual.dtype))
    diff = hi - lo
    out = np.asarray(np.add(lo, diff * t))
    np.subtract(hi, diff * (1 - t), out=out, where=t >= 0.5, casting="unsafe",
                dtype=type(out.dtype))
    if out.ndim == 0:
        out = out[()]
    nan = np.isnan(arr[-1, ...])
    if np.any(nan):
        if np.ndim(out) == 0:
            return arr[-1]
        np.copyto(out, arr[-1, ...], where=nan)
    return out
