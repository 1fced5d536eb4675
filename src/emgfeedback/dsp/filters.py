"""Causal, stateful IIR stages for the real-time path.

Every stage is a plain object with ``process(x) -> y`` and ``reset()``, where ``x`` has shape
``(samples, channels)``.  State (``zi`` of shape ``(sections, 2, channels)``) lives in the stage
and is carried across calls, so processing a stream in chunks of any size gives the same result
as processing it whole (tests/test_dsp_chunking.py).  Only causal filters (``sosfilt``) are used:
no ``filtfilt`` in the feedback path.

The first sample a stage sees initialises its state to the steady state for that value
(``sosfilt_zi * x[0]``), so a large DC offset (an ADC at mid-rail) does not ring through the
chain.  This depends only on the first sample, so it keeps chunk invariance.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from emgfeedback.dsp import design
from emgfeedback.errors import ConfigError
from emgfeedback.numeric import median

__all__ = [
    "SosStage",
    "design_bandpass",
    "design_highpass",
    "design_lowpass",
    "design_notches",
    "sos_group_delay_s",
    "detect_mains",
    "sosfilt_kernel",
]


def _check_fs(fs: float) -> None:
    if not fs or fs <= 0:
        raise ConfigError(f"sample rate must be positive, got {fs}")


def _butter(order: int, wn: float | list[float], btype: str, fs: float) -> np.ndarray:
    """``scipy.signal.butter(..., output="sos")``, computed in NumPy (:mod:`.design`)."""
    return np.asarray(design.butter_sos(order, wn, btype, fs), dtype=np.float64)


def design_highpass(fs: float, cutoff: float, order: int = 1) -> np.ndarray:
    """Butterworth high-pass (DC removal), second-order sections."""
    _check_fs(fs)
    return _butter(order, cutoff, "highpass", fs)


def design_bandpass(fs: float, low: float, high: float, order: int = 4) -> np.ndarray:
    """Butterworth band-pass; the upper edge is clipped to 0.45·fs (below Nyquist).

    ``order`` is the order of the prototype per edge, as in ``scipy.signal.butter`` (a 4th-order
    band-pass has 4 sections).
    """
    _check_fs(fs)
    high = min(high, 0.45 * fs)
    if not 0 < low < high:
        raise ConfigError(
            f"band-pass {low}-{high} Hz is empty at fs={fs} Hz; choose 0 < low < high < 0.45·fs"
        )
    return _butter(order, [low, high], "bandpass", fs)


def design_lowpass(fs: float, cutoff: float, order: int = 2) -> np.ndarray:
    """Butterworth low-pass (linear envelope)."""
    _check_fs(fs)
    if not 0 < cutoff < fs / 2:
        raise ConfigError(f"low-pass cut-off {cutoff} Hz must be between 0 and fs/2 = {fs / 2} Hz")
    return _butter(order, cutoff, "lowpass", fs)


def design_notches(
    fs: float, mains: float, q: float = 30.0, upper: float | None = None, harmonics: int | None = None
) -> np.ndarray:
    """Cascade of ``iirnotch`` sections at ``mains`` and its harmonics.

    Harmonics are included while they are below ``upper`` (default 0.45·fs); ``harmonics`` caps
    the count (1 = the fundamental only).
    """
    _check_fs(fs)
    if mains <= 0:
        raise ConfigError(f"mains frequency must be 50 or 60 Hz, got {mains}")
    limit = min(upper if upper is not None else 0.45 * fs, 0.49 * fs)
    freqs = []
    k = 1
    while k * mains < limit and (harmonics is None or k <= harmonics):
        freqs.append(k * mains)
        k += 1
    if not freqs:
        return np.zeros((0, 6))
    sections = []
    for f in freqs:
        b, a = design.iirnotch(f, q, fs)
        sections.append(np.concatenate([b, a]))
    return np.asarray(sections)


def sos_group_delay_s(sos: np.ndarray, fs: float, freq: float) -> float:
    """Group delay of a cascade at ``freq`` Hz, in seconds (``freq=0`` gives the DC delay)."""
    total = 0.0
    w = np.array([max(freq, 1e-6)])
    for sec in sos:
        total += float(design.group_delay(sec[:3], sec[3:], w, fs)[0])
    return total / fs


# ---------------------------------------------------------------------------- the SOS kernel
#: ``kernel(sos, x, zi)``: filter ``x`` (signals, samples), C-contiguous float64, in place,
#: with state ``zi`` (signals, sections, 2), C-contiguous, updated in place.
Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _reference_sosfilt(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> None:
    """The direct-form II transposed recursion of ``scipy.signal.sosfilt``, in Python (slow: for
    checking the compiled kernel on a few samples only)."""
    for i in range(x.shape[0]):
        for n in range(x.shape[1]):
            xn = x[i, n]
            for s in range(sos.shape[0]):
                b0, b1, b2, _, a1, a2 = sos[s]
                y = b0 * xn + zi[i, s, 0]
                zi[i, s, 0] = b1 * xn - a1 * y + zi[i, s, 1]
                zi[i, s, 1] = b2 * xn - a2 * y
                xn = y
            x[i, n] = xn


def _load_extension(name: str, stem: str) -> ModuleType | None:
    """The compiled module at ``stem`` + this Python's extension suffix, initialised and
    registered under ``name`` (``None`` when there is no such file)."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = stem + suffix
        if os.path.exists(path):
            break
    else:
        return None
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        return None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def _scipy_extension() -> Kernel | None:
    """SciPy's compiled SOS kernel (``scipy.signal._sosfilt._sosfilt``), without running
    ``scipy/signal/__init__.py``: importing a submodule runs its package first, and that package
    costs 0.7-3 s of start-up (issue 13).  The extension module is loaded from its file under its
    own name (and registered as such, so a later ``import scipy.signal`` uses this one).

    Nor is ``scipy/__init__.py`` run (25 ms: its test utilities, ``subprocess``...) when SciPy is
    not loaded yet: SciPy's Cython modules import their shared utility module
    ``scipy._cyutility``, which is loaded from its file too, and while the kernel's module
    initialises a bare module stands for the ``scipy`` package, removed right after (a later
    ``import scipy`` runs the real package, which finds both modules loaded).  Should the
    module import anything else of SciPy, the bare module refuses it, and the kernel is loaded
    again with the real package."""
    name = "scipy.signal._sosfilt"
    mod = sys.modules.get(name)
    if mod is None and "scipy.signal" in sys.modules:
        import scipy.signal._sosfilt

        mod = sys.modules[name]
    if mod is None:
        spec = importlib.util.find_spec("scipy")
        if spec is None or not spec.submodule_search_locations:
            return None
        root = next(iter(spec.submodule_search_locations))
        stem = os.path.join(root, "signal", "_sosfilt")
        if "scipy" not in sys.modules:
            bare = ModuleType("scipy")
            try:
                if "scipy._cyutility" not in sys.modules:
                    _load_extension("scipy._cyutility", os.path.join(root, "_cyutility"))
                sys.modules["scipy"] = bare
                mod = _load_extension(name, stem)
            except ImportError:
                mod = None  # it wanted more of SciPy: loaded below, with the real package
            finally:
                if sys.modules.get("scipy") is bare:
                    del sys.modules["scipy"]
        if mod is None:
            import scipy  # noqa: F401 - the package its module imports

            mod = _load_extension(name, stem)
        if mod is None:
            return None
    fn: Kernel | None = getattr(mod, "_sosfilt", None)
    try:
        # the float64 specialisation of the fused-type function: no dispatch on the argument
        # types per call (about 1 µs of the 3-5 µs a call costs on a 10 ms chunk)
        fn = fn["double"]  # type: ignore[index]
    except (TypeError, KeyError, IndexError):
        pass
    return fn


def _public_kernel(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> None:
    """The same through the public ``scipy.signal.sosfilt`` (slower per call, same numbers)."""
    from scipy import signal

    y, z = signal.sosfilt(sos, x, axis=1, zi=np.moveaxis(zi, 1, 0))
    x[...] = y
    zi[...] = np.moveaxis(z, 0, 1)


def _load_kernel() -> Kernel:
    """SciPy's compiled SOS kernel when it computes the recursion of ``scipy.signal.sosfilt``.

    ``scipy.signal.sosfilt`` spends ~45 µs per call validating and reshaping its arguments, which
    is most of the budget of a 10 ms live chunk.  The compiled kernel it calls filters in place on
    ``(signals, samples)`` arrays in ~3 µs.  It is a private function, so it is used only after a
    check against the recursion on this installation (tests/test_dsp_design.py also compares it
    with the public function, exactly); otherwise the public function is used.
    """
    try:
        kernel = _scipy_extension()
        if kernel is not None:
            sos = design.butter_sos(2, [0.05, 0.15], "bandpass", 2.0)
            x = np.sin(0.7 * np.arange(20.0) ** 1.3).reshape(2, 10)
            zi = np.cos(0.3 * np.arange(4.0 * len(sos))).reshape(2, len(sos), 2)
            y, z = x.copy(), zi.copy()
            kernel(sos, y, z)
            _reference_sosfilt(sos, x, zi)
            if np.allclose(y, x, rtol=1e-12, atol=1e-12) and np.allclose(z, zi, rtol=1e-12,
                                                                          atol=1e-12):
                return kernel
    except Exception:  # pragma: no cover - any surprise means: use the public function
        pass
    return _public_kernel  # pragma: no cover - depends on the SciPy build


_KERNEL: Kernel = _load_kernel()


def sosfilt_kernel() -> Kernel:
    """The kernel :class:`SosStage` uses (see ``Kernel``): for code that keeps its own state."""
    return _KERNEL


class SosStage:
    """A causal cascade of second-order sections applied to every channel at once.

    Parameters
    ----------
    sos:
        Sections, shape ``(n_sections, 6)``.
    n_channels:
        Number of channels (signals) the stage will see.
    steady_start:
        Initialise the state from the first sample as if the signal had been constant before
        (avoids the start-up transient of a DC offset).  Set ``False`` for a zero initial state.

    :meth:`process` takes ``(samples, channels)``; :meth:`process_t` filters a C-contiguous
    ``(channels, samples)`` array in place (the layout the chain keeps internally).  The state
    ``zi`` has shape ``(channels, sections, 2)``.  Called from the processing thread only.
    """

    def __init__(self, sos: np.ndarray, n_channels: int, steady_start: bool = True) -> None:
        self.sos = np.ascontiguousarray(np.atleast_2d(np.asarray(sos, dtype=np.float64)))
        self.n_channels = n_channels
        self.steady_start = steady_start
        self._zi_unit = design.sosfilt_zi(self.sos) if len(self.sos) else np.zeros((0, 2))
        self.zi: np.ndarray | None = None
        # The compiled kernel reads its arguments as buffers: a memoryview of the sections and
        # of the state, kept, spares it the array's buffer export per call (a tenth of a call on
        # a 10 ms chunk, live cost); the state's is made again whenever ``zi`` is replaced.
        self._direct = _KERNEL is not _public_kernel and len(self.sos) > 0
        self._sos_mv: Any = self.sos.data if self._direct else self.sos
        self._zi_of: np.ndarray | None = None
        self._zi_mv: Any = None

    def reset(self) -> None:
        """Forget the state; the next sample starts a new stream."""
        self.zi = None

    def __getstate__(self) -> dict[str, Any]:  # (memoryviews are neither copied nor pickled)
        d = dict(self.__dict__)
        d["_sos_mv"], d["_zi_of"], d["_zi_mv"] = None, None, None
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._sos_mv = self.sos.data if self._direct else self.sos

    def _init_state(self, first: np.ndarray) -> np.ndarray:
        if self.steady_start:
            return np.ascontiguousarray(self._zi_unit[None, :, :] * first[:, None, None])
        return np.zeros((self.n_channels, len(self.sos), 2))

    def process_t(self, xt: np.ndarray) -> np.ndarray:
        """Filter ``xt`` (channels, samples), C-contiguous float64, **in place**; returns it."""
        if not self._direct:
            if len(self.sos) == 0 or xt.shape[1] == 0:
                return xt
            if self.zi is None:
                self.zi = self._init_state(xt[:, 0])
            _KERNEL(self.sos, xt, self.zi)
            return xt
        if xt.shape[1] == 0:
            return xt
        zi = self.zi
        if zi is None:
            zi = self.zi = self._init_state(xt[:, 0])
        if zi is not self._zi_of:
            self._zi_of, self._zi_mv = zi, zi.data
        _KERNEL(self._sos_mv, xt, self._zi_mv)
        return xt

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter ``x`` (samples, channels) and carry the state; returns a new array."""
        xt = np.array(np.asarray(x, dtype=np.float64).T, order="C", copy=True)
        return self.process_t(xt).T


def detect_mains(x: np.ndarray, fs: float) -> int | None:
    """Guess the mains frequency (50 or 60 Hz) from raw samples ``(samples, channels)``.

    For each channel, compares the power within ±1 Hz of 50/100/150 Hz with that within ±1 Hz of
    60/120/180 Hz, each against its own neighbourhood (2-6 Hz away; Welch, 1 Hz resolution).  The
    channel with the clearest peak decides, since one well-connected electrode is enough to see
    the mains.  Returns ``None`` when no channel shows a peak 6 dB above its neighbourhood (no
    measurable interference, e.g. a battery-powered setup far from mains).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    nper = int(min(len(x), fs))
    if nper < fs / 2:
        return None
    f, p = design.welch(x - x.mean(axis=0), fs, nper)

    def score(base: float) -> float:
        peak = np.zeros(p.shape[1])
        floor = np.zeros(p.shape[1])
        for k in (1, 2, 3):
            fk = k * base
            if fk >= fs / 2:
                break
            near = np.abs(f - fk) <= 1.0
            ring = (np.abs(f - fk) > 2.0) & (np.abs(f - fk) <= 6.0)
            peak += p[near].max(axis=0, initial=0.0)
            floor += median(p[ring], axis=0) if ring.any() else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(floor > 0, peak / np.where(floor > 0, floor, 1.0), 0.0)
        return float(ratio.max())

    s50, s60 = score(50.0), score(60.0)
    best, s = (50, s50) if s50 >= s60 else (60, s60)
    return best if s > 4.0 else None
