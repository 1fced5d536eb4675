"""Small numerical helpers shared by every layer.

:func:`median` is :func:`numpy.median`, the same numbers to the bit, without its one side
effect: NumPy's NaN check in ``median`` asks ``np.ma.isMaskedArray``, which imports
``numpy.ma`` (about 20 ms, most of it on every process start-up that computes a median;
issue 13, item 3).

Bottom layer: imports nothing of the project.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["median"]


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
