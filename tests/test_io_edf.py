"""EDF+/BDF+ recording, replay exactness, other clients (pyedflib, MNE), crash recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyedflib
import pytest

from emgfeedback.cli import main
from emgfeedback.config import Config
from emgfeedback.errors import ConfigError
from emgfeedback.io.edf.format import grid_for
from emgfeedback.io.edf.reader import read_edf
from emgfeedback.io.edf.recorder import Recorder
from emgfeedback.io.edf.repair import repair
from emgfeedback.validate import validate_patient_id
from emgfeedback.app.pipeline import Pipeline, RecordingGrid
from emgfeedback.sources.replay import ReplaySource
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.stream import Chunk, Marker, SourceBase, Status

ROOT = Path(__file__).resolve().parents[1]


class Lossy(SourceBase):
    """A simulated board that loses some chunks (as a USB hiccup would)."""

    def __init__(self, inner: SimulatedSource, drop: set[int]) -> None:
        self.inner = inner
        self.info = inner.info
        self.drop = drop
        self.k = 0
        self.lost = 0

    @property
    def finished(self) -> bool:
        return self.inner.finished

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def read(self, timeout: float | None = None) -> Chunk | None:
        while True:
            c = self.inner.read(timeout)
            if c is None:
                return None
            self.k += 1
            if self.k in self.drop:
                self.lost += len(c)
                continue
            if self.lost:
                c = replace(c, status=replace(c.status, lost_samples=self.lost))
                self.lost = 0
            return c


class Keep:
    def __init__(self) -> None:
        self.items: list = []

    def feed(self, p) -> None:
        self.items.append(p)

    def close(self) -> None:
        pass


def _live(path: Path, seconds: float = 20.0, drop: set[int] | None = None) -> tuple[list, Recorder]:
    src = Lossy(SimulatedSource("session", duration=seconds, seed=3, speed=None), drop or set())
    s = Pipeline(src, Config(), recording=RecordingGrid.for_path(path))
    s.open()
    rec = s.start_recording(path, patient="P-0001", sidecar={"program": {"name": "test"}})
    keep = s.add(Keep())
    s.mark("marker", 0)
    s.run(seconds)  # closes the source, the recorder and the consumers
    return keep.items, rec


def _replayed(path: Path, block_ms: float = 10.0) -> list:
    s = Pipeline(ReplaySource(path, speed=None, block_ms=block_ms), Config())
    s.open()
    keep = s.add(Keep())
    s.run()
    return keep.items


def _cat(items: list, name: str) -> np.ndarray:
    return np.concatenate([getattr(p, name) for p in items])


@pytest.mark.parametrize("block_ms", [10.0, 37.0])
def test_replay_reproduces_live_pipeline_exactly(tmp_path: Path, block_ms: float) -> None:
    path = tmp_path / "s.edf"
    live, rec = _live(path, drop={150, 151, 900})
    assert rec.lost_samples == 30 and rec.n_gaps == 2
    rep = _replayed(path, block_ms)
    for name in ("raw", "filtered", "envelope"):
        assert np.array_equal(_cat(live, name), _cat(rep, name)), name
    # the same sample indices, the same gaps, the same markers at the same samples
    idx = lambda items: np.concatenate([np.arange(p.start, p.stop) for p in items])  # noqa: E731
    assert np.array_equal(idx(live), idx(rep))
    assert [(p.start, p.status.lost_samples) for p in live if p.status.lost_samples] == \
           [(p.start, p.status.lost_samples) for p in rep if p.status.lost_samples]
    lm = sorted((m.sample, m.duration, m.text) for p in live for m in p.markers)
    rm = sorted((m.sample, m.duration, m.text) for p in rep for m in p.markers)
    assert lm == rm and ("marker" in {t for _, _, t in lm}) and len(lm) >= 3
    assert [sum(p.status.saturated) for p in live][:5] == [0] * 5


def test_recording_values_within_quantisation(tmp_path: Path) -> None:
    src = SimulatedSource("smile-clean", duration=3, seed=1, speed=None)
    with src:
        truth = src.read_all()
    grid = grid_for(src.info)
    q = grid.quantise(truth.data)
    assert np.max(np.abs(q - truth.data)) <= grid.gain / 2 + 1e-9
    assert np.array_equal(grid.quantise(q), q)


def test_other_clients_read_our_files(tmp_path: Path) -> None:
    import mne

    path = tmp_path / "s.edf"
    live, _ = _live(path, seconds=15.0, drop={300})
    raw_live = _cat(live, "raw")
    with pyedflib.EdfReader(str(path)) as f:
        labels = f.getSignalLabels()
        assert labels[:2] == ["EMG L-FRO", "EMG L-OOC"] and len(labels) == 8
        assert f.getSampleFrequency(0) == 1000
        assert f.getPhysicalDimension(0) == "uV"
        assert "HW:" in f.getPrefilter(0) and "LP:" in f.getPrefilter(0)
        on, dur, txt = f.readAnnotations()
        assert "marker" in txt and "gap" in txt and "rest" in txt
        gi = list(txt).index("gap")
        assert on[gi] == pytest.approx(299 * 0.01) and dur[gi] == pytest.approx(0.01)
        assert "P-0001" in f.getPatientCode() or "P-0001" in f.getHeader()["patientcode"]
        x0 = f.readSignal(0)
    keep = np.r_[0:2990, 3000:15000]
    assert np.allclose(x0[keep], raw_live[:, 0], atol=1e-9)
    r = mne.io.read_raw_edf(path, preload=True, infer_types=True, verbose="error")
    assert r.info["sfreq"] == 1000 and r.ch_names[0] == "L-FRO"
    assert set(r.get_channel_types()) == {"emg"}
    assert r._orig_units["L-FRO"] in ("uV", "µV")
    assert np.allclose(r.get_data()[0, keep] * 1e6, raw_live[:, 0], atol=1e-6)
    assert {"marker", "gap", "rest"} <= set(r.annotations.description)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["patient"] == "P-0001" and side["status"] == "complete"
    assert side["program"] == {"name": "test"} and side["montage"]["EMG L-ZYG"]["region"] == "ZYG"
    assert side["software"]["name"] == "emgfeedback" and side["lost_samples"] == 10


def test_bdf_when_source_has_more_than_16_bits(tmp_path: Path) -> None:
    src = SimulatedSource("rest", duration=2, seed=0, speed=None)
    src.info = replace(src.info, adc_bits=24)
    s = Pipeline(src, Config(), recording=RecordingGrid.for_path(tmp_path / "s.bdf"))
    s.open()
    rec = s.start_recording(tmp_path / "s.bdf", patient="P-0002")
    keep = s.add(Keep())
    s.run(2)
    assert rec.grid.bdf
    r = read_edf(tmp_path / "s.bdf")
    assert r.format == "BDF+" and np.array_equal(r.read(), _cat(keep.items, "raw"))
    with pyedflib.EdfReader(str(tmp_path / "s.bdf")) as f:
        assert f.getDigitalMaximum(0) == 8388607 and f.getSignalLabels()[0] == "EMG L-FRO"


def test_patient_id_must_be_a_pseudonym() -> None:
    assert validate_patient_id("P-0001") == "P-0001"
    assert validate_patient_id("AB-2024-17")
    for bad in ("John Smith", "smith", "Anna2024", "P 0001", "", "X"):
        with pytest.raises(ConfigError, match="pseudonym"):
            validate_patient_id(bad)


def test_replay_speed_start_and_seek(tmp_path: Path) -> None:
    path = tmp_path / "s.edf"
    _live(path, seconds=4.0)
    src = ReplaySource(path, speed=20.0, start_s=1.0)
    t0 = time.monotonic()
    with src:
        first = src.read(timeout=1.0)
        assert first is not None and first.start == 1000
        n = len(first)
        while (c := src.read(timeout=1.0)) is not None:
            n += len(c)
    took = time.monotonic() - t0
    assert n == 3000 and 3.0 / 20 * 0.8 < took < 1.0
    with ReplaySource(path, speed=None) as src2:
        src2.seek(2500)
        c = src2.read()
        assert c is not None and c.start == 2500 and not any(m.sample < 2500 for m in c.markers)


def test_kill9_during_record_then_recovery(tmp_path: Path) -> None:
    import mne

    out = tmp_path / "crash.edf"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "emgfeedback", "record", "--board", "simulated", "--speed", "1",
         "--duration", "60", "--patient", "P-0003", "--out", str(out)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 40000):
            time.sleep(0.05)
        time.sleep(2.5)
        size_at_kill = out.stat().st_size
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert size_at_kill > 0
    with open(out, "rb") as f:
        assert f.read(244)[236:244].strip() == b"-1"
    # automatic recovery on open
    r = read_edf(out)
    assert r.recovered and "recovered" in r.notes[0]
    assert json.loads(out.with_suffix(".json").read_text())["status"] == "recording"
    assert r.duration_s > 2.0
    r.close()
    assert "repaired" in repair(out)
    assert json.loads(out.with_suffix(".json").read_text())["status"] == "recovered"
    with pyedflib.EdfReader(str(out)) as f:
        n = f.getNSamples()[0]
        assert n == r.n_samples or n >= r.n_samples - 100
    raw = mne.io.read_raw_edf(out, preload=True, verbose="error")
    assert raw.n_times >= r.n_samples - 100 and raw.info["sfreq"] == 1000
    assert "nothing to repair" in repair(out)


def test_kill9_loses_at_most_one_second(tmp_path: Path) -> None:
    """The recorder flushes every 0.1 s record: what it was fed more than 1 s ago is on disk."""
    out = tmp_path / "c.edf"
    code = (
        "import sys, time\n"
        "from emgfeedback.app.pipeline import Pipeline, RecordingGrid\n"
        "from emgfeedback.sources.simulated import SimulatedSource\n"
        "s = Pipeline(SimulatedSource('rest', duration=60, speed=1.0), recording=RecordingGrid())\n"
        f"s.open(); rec = s.start_recording({str(out)!r}, patient='P-0004')\n"
        "class Tell:\n"
        "    def feed(self, p):\n"
        "        print(p.stop, flush=True)\n"
        "    def close(self):\n"
        "        pass\n"
        "s.add(Tell()); s.run(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    fed = 0
    assert proc.stdout is not None
    t0 = time.monotonic()
    # Kill once 2.5 s of signal have been fed (however long the subprocess took to start).
    while fed < 2500 and time.monotonic() - t0 < 60.0:
        line = proc.stdout.readline()
        if line.strip():
            fed = int(line)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    r = read_edf(out)
    assert fed > 1500
    assert r.n_samples >= fed - 1000, (r.n_samples, fed)


def test_cli_record_info_convert_repair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.edf"
    assert main(["record", "--board", "simulated", "--speed", "max", "--duration", "3",
                 "--patient", "P-0005", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "EDF+" in text and "EMG L-ZYG" in text and "1000 Hz" in text
    assert main(["convert", str(out), str(tmp_path / "r.csv")]) == 0
    assert main(["convert", str(tmp_path / "r.csv"), str(tmp_path / "r.bdf")]) == 0
    a, b = read_edf(out), read_edf(tmp_path / "r.bdf")
    assert b.format == "BDF+" and a.channels == b.channels
    assert np.allclose(a.read(), b.read(), atol=1e-5)
    assert [m.text for m in a.markers] == [m.text for m in b.markers]
    assert main(["repair", str(out)]) == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert main(["record", "--patient", "Jane Doe", "--duration", "1", "--out",
                 str(tmp_path / "x.edf")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pseudonym" in err and not (tmp_path / "x.edf").exists()


def test_simulate_writes_edf(tmp_path: Path) -> None:
    out = tmp_path / "sim.edf"
    assert main(["simulate", "--duration", "100", "--out", str(out)]) == 0
    r = read_edf(out)
    assert r.n_samples == 100000 and r.channels[0] == "EMG L-FRO"
    assert any(m.text.startswith("mvc") for m in r.markers)
    assert Path(str(out) + ".truth.json").exists()


def test_recorder_write_returns_the_chunk_on_the_file_grid(tmp_path: Path) -> None:
    """The recorder is a raw stage before the chain: it hands back what the file stores (on the
    digital grid, saturation counted on the grid's rails, status and markers kept)."""
    src = SimulatedSource("rest", duration=1, speed=None)
    rec = Recorder(tmp_path / "q.edf", src.info, patient="P-0006")
    with src:
        c = src.read()
    assert c is not None
    lo, hi = rec.rails_uv
    spiky = replace(c, data=c.data + np.where(np.arange(len(c)) % 7 == 0, 1e6, 0.0)[:, None],
                    status=Status(crc_errors=2), markers=(Marker(c.start + 3, 0, "marker"),))
    out = rec.write(spiky)
    assert np.array_equal(out.data, rec.grid.quantise(spiky.data))
    assert out.status.crc_errors == 2 and out.markers == spiky.markers
    assert out.status.saturated == tuple(int(v) for v in (out.data >= hi).sum(axis=0))
    assert out.status.saturated[0] == len(range(0, len(c), 7))
    rec.close()
    back = read_edf(tmp_path / "q.edf")
    assert np.array_equal(back.read(0, len(c)), out.data)
    assert [m.text for m in back.markers] == ["marker"] and back.rails_uv == (lo, hi)
    assert rec.write(c).data.shape == c.data.shape  # closed: only put on the grid


def test_recording_pipeline_reads_the_source_itself_and_the_chain_sees_file_values(
        tmp_path: Path) -> None:
    """No wrapper around the source: the pipeline gives each raw chunk to the recorder first
    (or puts it on the grid while not recording) and the chain clips on the grid's rails."""
    src = SimulatedSource("rest", duration=1, speed=None)
    pl = Pipeline(src, Config(), recording=RecordingGrid())
    pl.open()
    p0 = pl.step()  # not recording yet: on the grid all the same
    rec = pl.start_recording(tmp_path / "r.edf", patient="P-0006")
    assert pl.source is src and pl.chain is not None
    assert pl.chain.quality.adc_range_uv == rec.rails_uv
    p1 = pl.step()
    pl.close()
    assert p0 is not None and p1 is not None
    assert np.array_equal(p0.raw, rec.grid.quantise(p0.raw))
    back = read_edf(tmp_path / "r.edf")
    assert np.array_equal(back.read(0, len(p1)), p1.raw) and back.sidecar["first_sample"] == p0.stop


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_record_until_stopped_closes_the_file(tmp_path: Path, sig: signal.Signals) -> None:
    """'record' without --duration records until Ctrl-C (SIGINT) or SIGTERM, then closes the
    file as after --duration: a complete EDF+ (not a recovered one), exit status 0."""
    out = tmp_path / "until.edf"
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "emgfeedback", "record", "--board", "simulated", "--speed", "1",
         "--patient", "P-0006", "--out", str(out)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "until stopped: Ctrl-C (or SIGTERM) stops and closes the file" in line, line
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 60000):
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert f"wrote {out}" in stdout and "Traceback" not in stderr
    assert json.loads(out.with_suffix(".json").read_text())["status"] == "complete"
    with open(out, "rb") as f:
        assert f.read(244)[236:244].strip() != b"-1"  # the record count was written
    r = read_edf(out)
    assert not r.recovered and r.duration_s > 1.0
    r.close()
