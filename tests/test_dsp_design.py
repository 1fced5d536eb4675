"""The NumPy filter designs and spectra (dsp/design.py) equal scipy.signal's; the compiled SOS
kernel equals scipy.signal.sosfilt; the analyze path imports no heavy module (issue 13)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from emgfeedback.dsp import design
from emgfeedback.dsp.filters import SosStage, design_notches, detect_mains, sosfilt_kernel

RATES = [250.0, 500.0, 1000.0, 1024.0, 2000.0, 4000.0, 10000.0]


def _close(a: np.ndarray, b: np.ndarray, tol: float = 1e-12) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    scale = float(np.max(np.abs(b))) or 1.0
    assert float(np.max(np.abs(a - b))) / scale <= tol


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("order", [1, 2, 3, 4, 6, 8])
def test_butterworth_equals_scipy(fs: float, order: int) -> None:
    hi = min(450.0, 0.45 * fs)
    _close(design.butter_sos(order, [20.0, hi], "bandpass", fs),
           signal.butter(order, [20.0, hi], btype="bandpass", fs=fs, output="sos"))
    _close(design.butter_sos(order, 1.0, "highpass", fs),
           signal.butter(order, 1.0, btype="highpass", fs=fs, output="sos"))
    _close(design.butter_sos(order, 8.0, "lowpass", fs),
           signal.butter(order, 8.0, btype="lowpass", fs=fs, output="sos"))


def test_butterworth_rejects_bad_edges() -> None:
    with pytest.raises(ValueError):
        design.butter_sos(2, 600.0, "lowpass", 1000.0)
    with pytest.raises(ValueError):
        design.butter_sos(2, [300.0, 100.0], "bandpass", 1000.0)
    with pytest.raises(ValueError):
        design.butter_sos(2, 10.0, "bandstop", 1000.0)


@pytest.mark.parametrize("fs", RATES)
def test_notch_steady_state_and_delay_equal_scipy(fs: float) -> None:
    for f0 in (50.0, 60.0, 0.3 * fs):
        b, a = design.iirnotch(f0, 30.0, fs)
        rb, ra = signal.iirnotch(f0, 30.0, fs=fs)
        _close(b, rb)
        _close(a, ra)
    for sos in (design.butter_sos(4, [20.0, min(450.0, 0.45 * fs)], "bandpass", fs),
                design_notches(fs, 50.0), design.butter_sos(2, 8.0, "lowpass", fs)):
        _close(design.sosfilt_zi(sos), signal.sosfilt_zi(sos))
        w = np.array([0.5, 8.0, 33.0])
        for sec in sos:
            _close(design.group_delay(sec[:3], sec[3:], w, fs),
                   signal.group_delay((sec[:3], sec[3:]), w=w, fs=fs)[1])


@pytest.mark.parametrize("n, nper", [(4000, 1000), (2345, 1000), (999, 999), (3001, 512)])
def test_welch_equals_scipy(n: int, nper: int) -> None:
    x = np.random.default_rng(n).standard_normal((n, 4)) + np.linspace(0, 3, n)[:, None]
    f, p = design.welch(x, 2000.0, nper)
    rf, rp = signal.welch(x, fs=2000.0, nperseg=nper, axis=0)
    _close(f, rf)
    _close(p, rp)


@pytest.mark.parametrize("mains", [50.0, 60.0, None])
def test_mains_decision_unchanged(mains: float | None) -> None:
    fs = 2000.0
    t = np.arange(4 * int(fs))[:, None] / fs
    x = 5 * np.random.default_rng(3).standard_normal((4 * int(fs), 3))
    if mains is not None:
        x = x + 20 * np.sin(2 * np.pi * mains * t)
    assert detect_mains(x, fs) == (None if mains is None else int(mains))


def test_kernel_equals_public_sosfilt_exactly() -> None:
    """The compiled kernel SosStage calls gives exactly scipy.signal.sosfilt's numbers."""
    kernel = sosfilt_kernel()
    rng = np.random.default_rng(1)
    sos = np.vstack([design.butter_sos(1, 1.0, "highpass", 2000.0),
                     design.butter_sos(4, [20.0, 450.0], "bandpass", 2000.0),
                     design_notches(2000.0, 50.0)])
    x = rng.standard_normal((8, 500)) * 100
    zi = rng.standard_normal((8, len(sos), 2))
    ref, zref = signal.sosfilt(sos, x, axis=1, zi=np.moveaxis(zi, 1, 0))
    y, z = x.copy(), zi.copy()
    kernel(sos, y, z)
    assert np.array_equal(y, ref)
    assert np.array_equal(z, np.moveaxis(zref, 0, 1))


def test_fused_cascade_equals_successive_stages_exactly() -> None:
    """sosfilt runs the sections sample by sample in sequence, so one fused cascade equals the
    stages one after the other, bit for bit (with the fused cascade's steady start)."""
    rng = np.random.default_rng(2)
    fs = 2000.0
    front = np.vstack([design.butter_sos(1, 1.0, "highpass", fs),
                       design.butter_sos(4, [20.0, 450.0], "bandpass", fs)])
    notch = design_notches(fs, 50.0)
    x = 300 + 20 * rng.standard_normal((2000, 8))
    fused = SosStage(np.vstack([front, notch]), 8).process(x)
    zi = design.sosfilt_zi(np.vstack([front, notch]))[None, :, :] * x[0][:, None, None]
    a, b = SosStage(front, 8), SosStage(notch, 8)
    a.zi = np.ascontiguousarray(zi[:, :len(front)])
    b.zi = np.ascontiguousarray(zi[:, len(front):])
    assert np.array_equal(b.process(a.process(x)), fused)


HEAVY = ("matplotlib", "PySide6", "PyQt5", "pyqtgraph", "mne", "pyedflib", "scipy.signal",
         "scipy.stats", "scipy.fft", "scipy.linalg", "numba", "pandas")


def test_analyze_path_imports_no_heavy_module(tmp_path: Path) -> None:
    """A whole ``emgfeedback analyze FILE --json OUT`` in a fresh process: none of the heavy
    modules is imported (start-up budget of issue 13)."""
    path, out = tmp_path / "s.edf", tmp_path / "a.json"
    env_src = str(Path(__file__).resolve().parents[1] / "src")
    subprocess.run([sys.executable, "-m", "emgfeedback", "simulate", "--duration", "4",
                    "--no-calibration", "--out", str(path)], check=True, capture_output=True,
                   env={"PYTHONPATH": env_src, "PATH": "/usr/bin:/bin"})
    code = ("import sys, runpy; sys.argv = ['emgfeedback', 'analyze', sys.argv[1], '--json', "
            "sys.argv[2]]\ntry:\n    runpy.run_module('emgfeedback', run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print('MODULES', ' '.join(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code, str(path), str(out)], capture_output=True,
                       text=True, env={"PYTHONPATH": env_src, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    mods = set(r.stdout.split("MODULES", 1)[1].split())
    assert json.loads(out.read_text())["fs"] > 0
    assert "emgfeedback.app.analyze" in mods
    loaded = sorted(m for m in mods if m in HEAVY or m.split(".")[0] in HEAVY)
    assert loaded == []
    # nor SciPy's package (only its compiled SOS kernel, dsp/filters.py) nor numpy.ma (a NumPy
    # median or percentile: emgfeedback.numeric), nor the parsers of the other commands' data
    assert {"scipy", "numpy.ma", "scipy._lib", "importlib.resources", "zipfile"} & mods == set()
    assert "scipy.signal._sosfilt" in mods


def test_sos_kernel_loaded_without_scipy_then_scipy_imports_normally() -> None:
    """The kernel loaded before SciPy's package (no ``scipy/__init__.py``); a later ``import
    scipy.signal`` gets the real package, and its sosfilt gives the kernel's numbers."""
    code = ("import sys\nfrom emgfeedback.dsp.filters import sosfilt_kernel\n"
            "assert 'scipy' not in sys.modules and 'scipy.signal._sosfilt' in sys.modules\n"
            "import numpy as np, scipy, scipy.signal\nassert scipy.__version__\n"
            "sos = scipy.signal.butter(4, [0.05, 0.3], 'bandpass', output='sos')\n"
            "x = np.random.default_rng(0).standard_normal((3, 500))\n"
            "y = x.copy(); sosfilt_kernel()(sos, y, np.zeros((3, len(sos), 2)))\n"
            "assert np.array_equal(y, scipy.signal.sosfilt(sos, x, axis=1))\nprint('ok')")
    env_src = str(Path(__file__).resolve().parents[1] / "src")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": env_src, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
