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


# ---------------------------------------------------------------- the clinical engine (issue 11)
def test_biosppy_bursts_found_no_events_at_rest(shared_data: Path) -> None:
    """The live detector on the real BioSPPy recording: its clear bursts are activations, the
    quiet end is not, and nothing is flagged as an artefact or reported as an event."""
    from emgfeedback.clinical.calibration import auto_calibration
    from emgfeedback.clinical.detect import Detector
    from emgfeedback.clinical.montage import Montage
    from emgfeedback.io.importers import load
    from emgfeedback.stream import finite_parts

    rec = load(shared_data / "biosppy_emg_1_1khz.txt")
    chain = Chain(rec.fs, 1, adc_range_uv=rec.source_info().adc_range_uv)
    montage = Montage.from_labels(("EMG L-ZYG",))
    chunks = [chain.process(c) for c in finite_parts(rec.to_chunk())]
    env = np.concatenate([p.envelope for p in chunks])
    cal = auto_calibration(env, montage.names, rec.fs)
    chain = Chain(rec.fs, 1, adc_range_uv=rec.source_info().adc_range_uv)
    det = Detector.for_chain(chain, montage, cal)
    active = []
    src = rec.to_chunk()
    while len(src):
        part, src = src.split(10)
        det.feed(chain.process(part))
        active.append(bool(det.state().active[0]))
    det.close()
    act = np.repeat(np.array(active), 10)[: rec.n_samples].astype(float)
    bursts = _bursts(act, 0.5, rec.fs, min_s=0.4)  # activations of at least 400 ms

    def hit(lo: float, hi: float) -> bool:
        return any(a < hi and b > lo for a, b in bursts)
    for lo, hi in ((1.0, 2.5), (15.0, 17.5), (25.0, 27.5), (35.0, 41.0)):
        assert hit(lo, hi), (lo, hi, bursts)
    assert not hit(50.0, 63.0), bursts  # the quiet end of the file
    assert det.all_events == []  # no quiet region, no artefact: no event of any class


def test_biopac_facial_file_analysed_with_markers(shared_data: Path, tmp_path: Path) -> None:
    """The real BIOPAC facial recording through analyze: its markers listed, no NaN anywhere,
    the mislabelled levator channel (13 mV RMS: 'Volts' for mV) flagged as implausible per
    channel and never a synkinesis event."""
    import json

    from emgfeedback.cli import main

    montage = Path(__file__).parent / "data" / "golden" / "biopac.montage.toml"
    out = tmp_path / "a.json"
    assert main(["analyze", str(shared_data / "biopac_facial_corr_zyg_lev_1khz.txt"),
                 "--montage", str(montage), "--exercise", "smile", "--calibration", "auto",
                 "--json", str(out)]) == 0

    def bad(c: str) -> object:
        raise AssertionError(f"non-strict JSON constant {c}")
    d = json.loads(out.read_text(), parse_constant=bad)
    assert [m["text"] for m in d["markers"]] == ["marker 54", "marker 1"]
    assert [m["onset_s"] for m in d["markers"]] == [0.15, 13.117]
    assert d["gaps"] == [] and d["lost_samples"] == 0
    q = d["quality"]
    assert q["L-LLS"]["artefact_s"] > 5.0  # mV where µV belong: not a muscle
    assert all("implausible" in p["reason"] for p in q["L-LLS"]["periods"])
    assert q["L-COR"]["artefact_s"] < 1.0 and q["L-ZYG"]["artefact_s"] < 1.0
    assert not [e for e in d["events"] if e["type"] == "synkinesis" and e["channel"] == "L-LLS"]
    assert len(d["reps"]) == 1 and d["reps"][0]["target"] == "L-ZYG"
