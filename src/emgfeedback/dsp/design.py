"""Filter design and spectra in NumPy alone: what the chain needs of ``scipy.signal``.

Importing ``scipy.signal`` costs 0.7-3 s (it pulls ``scipy.stats``, ``scipy.interpolate`` and
parses thousands of docstrings), several times the budget of a whole ``emgfeedback analyze``
process on a short file (issue 13).  The chain needs five small things of it, computed here
with the same algorithms and the same NumPy operations in the same order as SciPy 1.17 (ported
from ``scipy/signal/_filter_design.py``, ``_signaltools.py`` and ``_spectral_py.py``;
SciPy is BSD-3-Clause licensed):

* :func:`butter_sos`: a digital Butterworth filter as second-order sections
  (``scipy.signal.butter(..., output="sos")``: analog prototype, frequency transform,
  bilinear transform, ``zpk2sos`` with ``nearest`` pairing);
* :func:`iirnotch`: ``scipy.signal.iirnotch``;
* :func:`sosfilt_zi`: ``scipy.signal.sosfilt_zi`` (steady state of a cascade for a unit step);
* :func:`group_delay`: ``scipy.signal.group_delay`` at given frequencies;
* :func:`welch`: ``scipy.signal.welch`` with its defaults (periodic Hann window, half overlap,
  constant detrend, one-sided density), along axis 0, with ``numpy.fft``.

tests/test_dsp_design.py checks each against ``scipy.signal`` (within 1e-12, relative).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["butter_sos", "group_delay", "iirnotch", "sosfilt_zi", "welch"]


# ---------------------------------------------------------------------------- Butterworth
def _buttap(n: int) -> tuple[np.ndarray, np.ndarray, float]:
    z = np.asarray([], dtype=np.float64)
    m = np.arange(-n + 1, n, 2, dtype=np.float64)
    p = -np.exp(1j * np.pi * m / (2 * n))
    return z, p, 1.0


def _degree(z: np.ndarray, p: np.ndarray) -> int:
    return int(p.shape[0] - z.shape[0])


def _lp2lp(z: np.ndarray, p: np.ndarray, k: float, wo: float) -> tuple[np.ndarray, np.ndarray, float]:
    degree = _degree(z, p)
    return wo * z, wo * p, k * wo**degree


def _lp2hp(z: np.ndarray, p: np.ndarray, k: float, wo: float) -> tuple[np.ndarray, np.ndarray, float]:
    degree = _degree(z, p)
    z_hp = np.concatenate((wo / z, np.zeros(degree)))
    p_hp = wo / p
    k_hp = k * float(np.real(np.prod(-z) / np.prod(-p)))
    return z_hp, p_hp, k_hp


def _lp2bp(z: np.ndarray, p: np.ndarray, k: float, wo: float, bw: float
           ) -> tuple[np.ndarray, np.ndarray, float]:
    degree = _degree(z, p)
    z_lp = (z * bw / 2).astype(np.complex128)
    p_lp = (p * bw / 2).astype(np.complex128)
    z_bp = np.concatenate((z_lp + np.sqrt(z_lp**2 - wo**2), z_lp - np.sqrt(z_lp**2 - wo**2)))
    p_bp = np.concatenate((p_lp + np.sqrt(p_lp**2 - wo**2), p_lp - np.sqrt(p_lp**2 - wo**2)))
    z_bp = np.concatenate((z_bp, np.zeros(degree)))
    return z_bp, p_bp, k * bw**degree


def _bilinear(z: np.ndarray, p: np.ndarray, k: float, fs: float
              ) -> tuple[np.ndarray, np.ndarray, float]:
    degree = _degree(z, p)
    fs2 = 2.0 * fs
    z_z = (fs2 + z) / (fs2 - z)
    p_z = (fs2 + p) / (fs2 - p)
    z_z = np.concatenate((z_z, -np.ones(degree)))
    k_z = k * float(np.real(np.prod(fs2 - z) / np.prod(fs2 - p)))
    return z_z, p_z, k_z


def _cplxreal(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complex-conjugate pairs (positive imaginary part) and real values of ``z``, sorted."""
    z = np.atleast_1d(z)
    if z.size == 0:
        return z, z
    tol = 100 * np.finfo((1.0 * z).dtype).eps
    z = z[np.lexsort((abs(z.imag), z.real))]
    real_indices = abs(z.imag) <= tol * abs(z)
    zr = z[real_indices].real
    if len(zr) == len(z):
        return np.array([]), zr
    z = z[~real_indices]
    zp = z[z.imag > 0]
    zn = z[z.imag < 0]
    if len(zp) != len(zn):
        raise ValueError("complex value with no matching conjugate")
    same_real = np.diff(zp.real) <= tol * abs(zp[:-1])
    diffs = np.diff(np.concatenate(([0], same_real, [0])))
    run_starts = np.nonzero(diffs > 0)[0]
    run_stops = np.nonzero(diffs < 0)[0]
    for i in range(len(run_starts)):
        a, b = run_starts[i], run_stops[i] + 1
        for chunk in (zp[a:b], zn[a:b]):
            chunk[...] = chunk[np.lexsort([abs(chunk.imag)])]
    if any(abs(zp - zn.conj()) > tol * abs(zn)):
        raise ValueError("complex value with no matching conjugate")
    return (zp + zn.conj()) / 2, zr


def _poly(zeros: np.ndarray) -> np.ndarray:
    seq = np.atleast_1d(np.asarray(zeros))
    if seq.shape[0] == 0:
        return np.atleast_1d(np.asarray(1.0, dtype=np.real(seq).dtype))
    a = np.ones((1,), dtype=seq.dtype)
    one = np.ones_like(seq[0])
    for zero in seq:
        a = np.convolve(a, np.stack((one, -zero)), mode="full")
    if np.iscomplexobj(a):
        roots = np.asarray(seq, dtype=np.complex128)
        if np.all(np.sort(np.imag(roots)) == np.sort(np.imag(np.conj(roots)))):
            a = np.array(np.real(a), copy=True)
    return a


def _single_section(z: list[complex], p: list[complex]) -> np.ndarray:
    zz, pp = np.asarray(z), np.asarray(p)
    k = np.asarray(1, dtype=np.result_type(np.real(zz), np.real(pp), 1))
    b = np.atleast_1d(np.multiply(k, _poly(zz)))
    a = np.atleast_1d(_poly(pp))
    sos = np.zeros(6)
    sos[3 - len(b):3] = np.real(b)
    sos[6 - len(a):6] = np.real(a)
    return sos


def _nearest_idx(fro: np.ndarray, to: complex, which: str) -> int:
    order = np.argsort(np.abs(fro - to))
    if which == "any":
        return int(order[0])
    mask = np.isreal(fro[order])
    if which == "complex":
        mask = ~mask
    return int(order[np.nonzero(mask)[0][0]])


def _zpk2sos(z: np.ndarray, p: np.ndarray, k: float) -> np.ndarray:
    """``scipy.signal.zpk2sos`` of a digital filter, ``nearest`` pairing."""
    if len(z) == len(p) == 0:
        return np.asarray([[k, 0.0, 0.0, 1.0, 0.0, 0.0]])
    p = np.concatenate((p, np.zeros(max(len(z) - len(p), 0))))
    z = np.concatenate((z, np.zeros(max(len(p) - len(z), 0))))
    n_sections = (max(len(p), len(z)) + 1) // 2
    if len(p) % 2 == 1:
        p = np.concatenate((p, [0.0]))
        z = np.concatenate((z, [0.0]))
    z = np.concatenate(_cplxreal(z))
    p = np.concatenate(_cplxreal(p))

    def idx_worst(v: np.ndarray) -> int:
        return int(np.argmin(np.abs(1 - np.abs(v))))

    sos = np.zeros((n_sections, 6))
    for si in range(n_sections - 1, -1, -1):
        p1_idx = idx_worst(p)
        p1 = p[p1_idx]
        p = np.delete(p, p1_idx)
        if np.isreal(p1) and np.isreal(p).sum() == 0:
            z1_idx = _nearest_idx(z, p1, "real")
            z1 = z[z1_idx]
            z = np.delete(z, z1_idx)
            sos[si] = _single_section([z1, 0], [p1, 0])
        elif (len(p) + 1 == len(z) and not np.isreal(p1) and np.isreal(p).sum() == 1
              and np.isreal(z).sum() == 1):
            z1_idx = _nearest_idx(z, p1, "complex")
            z1 = z[z1_idx]
            z = np.delete(z, z1_idx)
            sos[si] = _single_section([z1, z1.conj()], [p1, p1.conj()])
        else:
            if np.isreal(p1):
                prealidx = np.flatnonzero(np.isreal(p))
                p2_idx = int(prealidx[idx_worst(p[prealidx])])
                p2 = p[p2_idx]
                p = np.delete(p, p2_idx)
            else:
                p2 = p1.conj()
            if len(z) > 0:
                z1_idx = _nearest_idx(z, p1, "any")
                z1 = z[z1_idx]
                z = np.delete(z, z1_idx)
                if not np.isreal(z1):
                    sos[si] = _single_section([z1, z1.conj()], [p1, p2])
                elif len(z) > 0:
                    z2_idx = _nearest_idx(z, p1, "real")
                    z2 = z[z2_idx]
                    z = np.delete(z, z2_idx)
                    sos[si] = _single_section([z1, z2], [p1, p2])
                else:
                    sos[si] = _single_section([z1], [p1, p2])
            else:
                sos[si] = _single_section([], [p1, p2])
    sos[0][:3] *= k
    return sos


def butter_sos(order: int, wn: float | list[float] | tuple[float, float], btype: str,
               fs: float) -> np.ndarray:
    """``scipy.signal.butter(order, wn, btype, fs=fs, output="sos")``; ``btype`` is
    ``lowpass``, ``highpass`` or ``bandpass``; ``wn`` in Hz, below ``fs / 2``."""
    w = np.asarray(wn, dtype=np.float64) / (float(fs) / 2)
    if np.any(w <= 0) or np.any(w >= 1):
        raise ValueError(f"critical frequencies must be 0 < wn < fs/2 (fs={fs} -> fs/2={fs / 2})")
    z, p, k = _buttap(int(order))
    fs2 = 2.0
    warped = 2 * fs2 * np.tan(np.pi * w / fs2)
    if btype == "lowpass":
        z, p, k = _lp2lp(z, p, k, float(warped))
    elif btype == "highpass":
        z, p, k = _lp2hp(z, p, k, float(warped))
    elif btype == "bandpass":
        if w.size != 2 or not w[0] < w[1]:
            raise ValueError("a band-pass needs [low, high] with low < high")
        bw = warped[1] - warped[0]
        wo = np.sqrt(warped[0] * warped[1])
        z, p, k = _lp2bp(z, p, k, float(wo), float(bw))
    else:
        raise ValueError(f"filter type {btype!r} is not lowpass, highpass or bandpass")
    z, p, k = _bilinear(z, p, k, fs2)
    return _zpk2sos(z, p, k)


# ---------------------------------------------------------------------------- notch
def iirnotch(w0: float, q: float, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.iirnotch(w0, q, fs=fs)``: ``(b, a)`` of a second-order notch at ``w0`` Hz."""
    w = 2 * float(w0) / float(fs)
    if w > 1.0 or w < 0.0:
        raise ValueError("the notch frequency must be between 0 and fs/2")
    bw = w / float(q)
    bw = bw * np.pi
    w = w * np.pi
    beta = math.tan(bw / 2.0)
    gain = 1.0 / (1.0 + beta)
    b = gain * np.asarray([1.0, -2.0 * math.cos(w), 1.0])
    a = np.asarray([1.0, -2.0 * gain * math.cos(w), (2.0 * gain - 1.0)])
    return b, a


# ---------------------------------------------------------------------------- steady state
def _lfilter_zi(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    a = np.atleast_1d(a)
    b = np.atleast_1d(b)
    while a.shape[0] > 1 and a[0] == 0.0:
        a = a[1:]
    if a[0] != 1.0:
        b = b / a[0]
        a = a / a[0]
    n = max(a.shape[0], b.shape[0])
    if a.shape[0] < n:
        a = np.concatenate((a, np.zeros(n - a.shape[0], dtype=a.dtype)))
    elif b.shape[0] < n:
        b = np.concatenate((b, np.zeros(n - b.shape[0], dtype=b.dtype)))
    # scipy.linalg.companion(a): first row -a[1:] / a[0], ones below the diagonal
    comp = np.zeros((n - 1, n - 1), dtype=np.result_type(a.dtype, 1.0))
    comp[0] = -a[1:] / (1.0 * a[0])
    comp[list(range(1, n - 1)), list(range(0, n - 2))] = 1
    i_minus_a = np.asarray(np.eye(n - 1) - comp.T, dtype=np.result_type(a, b))
    rhs = b[1:] - a[1:] * b[0]
    zi: np.ndarray = np.linalg.solve(i_minus_a, rhs)
    return zi


def sosfilt_zi(sos: np.ndarray) -> np.ndarray:
    """``scipy.signal.sosfilt_zi``: state ``(sections, 2)`` of the cascade's steady state for a
    unit step."""
    sos = np.asarray(sos, dtype=np.float64)
    zi = np.empty((sos.shape[0], 2), dtype=sos.dtype)
    scale = 1.0
    for s in range(sos.shape[0]):
        b, a = sos[s, :3], sos[s, 3:]
        zi[s, ...] = scale * _lfilter_zi(b, a)
        scale *= np.sum(b) / np.sum(a)
    return zi


# ---------------------------------------------------------------------------- delay, spectrum
def group_delay(b: np.ndarray, a: np.ndarray, freqs: np.ndarray, fs: float) -> np.ndarray:
    """``scipy.signal.group_delay((b, a), w=freqs, fs=fs)[1]``: delay in samples at ``freqs`` Hz
    (0 where the delay is singular)."""
    b, a = np.atleast_1d(b), np.atleast_1d(a)
    w = 2 * np.pi * np.atleast_1d(freqs) / fs
    c = np.convolve(b, np.conjugate(a[::-1]))
    cr = c * np.arange(c.size)
    z = np.exp(-1j * w)
    num = np.polyval(cr[::-1], z)
    den = np.polyval(c[::-1], z)
    with np.errstate(divide="ignore", invalid="ignore"):
        gd: np.ndarray = np.real(num / den) - a.size + 1
    gd[~np.isfinite(gd)] = 0
    return gd


def welch(x: np.ndarray, fs: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.welch(x, fs=fs, nperseg=nperseg, axis=0)``: ``(freqs, psd)``, the PSD of
    each column (periodic Hann window, ``nperseg // 2`` overlap, constant detrend per segment,
    one-sided density, mean over segments)."""
    x = np.asarray(x, dtype=np.float64)
    xt = np.moveaxis(x, 0, -1)
    n = int(nperseg)
    if n > xt.shape[-1]:
        n = xt.shape[-1]
    fac = np.linspace(-np.pi, np.pi, n + 1)
    win = np.zeros(n + 1)
    for k, coef in enumerate((0.5, 0.5)):
        win += coef * np.cos(k * fac)
    win = win[:-1]
    step = n - n // 2
    seg = np.lib.stride_tricks.sliding_window_view(xt, window_shape=n, axis=-1)[..., 0::step, :]
    seg = seg - np.mean(seg, axis=-1, keepdims=True)
    spec = np.fft.rfft(win * seg, n=n)
    res = np.conjugate(spec) * spec
    res *= 1.0 / (fs * (win * win).sum())
    if n % 2:
        res[..., 1:] *= 2
    else:
        res[..., 1:-1] *= 2
    power: np.ndarray = res.real
    psd = power.mean(axis=-2) if power.shape[-2] > 1 else power[..., 0, :]
    freqs = np.fft.rfftfreq(n, 1 / fs)
    return freqs, np.moveaxis(psd, -1, 0)
