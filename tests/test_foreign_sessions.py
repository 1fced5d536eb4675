"""Sessions recorded by other tools: an OpenBCI GUI .txt and a BrainFlow CSV of the simulated
board, reported and imported into the history with --patient / --affected-side / --montage."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from _sessions import SMALL, make_source
from emgfeedback.cli import main
from emgfeedback.io.importers import load
from emgfeedback.views.history import History

START = dt.datetime(2025, 3, 4, 10, 15, 0)


def _sim(channels: tuple[str, ...], seed: int = 4, duration: float = 80.0, fs: float = 1000.0):
    from dataclasses import replace

    src = make_source(seed=seed, synkinesis_prob=0.6, duration=duration, channels=channels)
    src = type(src)("session", duration, seed, speed=None, params=replace(src.params, fs=fs))
    with src:
        return src.read_all()


def write_openbci(path: Path, chunk) -> None:
    """The OpenBCI GUI v5 'Raw EXG Data' text a Cyton WiFi recording at the board's rate gives."""
    n, nch = chunk.data.shape
    head = ["%OpenBCI Raw EXG Data", f"%Number of channels = {nch}",
            f"%Sample Rate = {chunk.fs:g} Hz", "%Board = OpenBCI_GUI$BoardCytonWifi"]
    cols = (["Sample Index"] + [f"EXG Channel {k}" for k in range(nch)]
            + ["Accel Channel 0", "Accel Channel 1", "Accel Channel 2", "Timestamp",
               "Marker Channel"])
    t0 = START.timestamp()
    lines = head + [", ".join(cols)]
    for i in range(n):
        vals = ", ".join(f"{v:.6f}" for v in chunk.data[i])
        lines.append(f"{i % 256:.1f}, {vals}, 0.0, 0.0, 0.0, {t0 + i / chunk.fs:.6f}, 0.0")
    path.write_text("\n".join(lines) + "\n")


def write_brainflow(path: Path, chunk) -> str:
    """A BrainFlow CSV (DataFilter.write_file layout: tab-separated rows of the board's channels)
    of GANGLION_WIFI_BOARD (4 EMG channels at 1600 Hz, the rate the board was simulated at)."""
    from brainflow.board_shim import BoardIds, BoardShim

    bid = BoardIds.GANGLION_WIFI_BOARD.value
    n, nch = chunk.data.shape
    emg = BoardShim.get_emg_channels(bid)
    assert BoardShim.get_sampling_rate(bid) == chunk.fs and len(emg) == nch
    table = np.zeros((n, BoardShim.get_num_rows(bid)))
    table[:, BoardShim.get_package_num_channel(bid)] = np.arange(n) % 256
    table[:, emg] = chunk.data
    table[:, BoardShim.get_timestamp_channel(bid)] = START.timestamp() + np.arange(n) / chunk.fs
    np.savetxt(path, table, delimiter="\t", fmt="%.6f")
    return "GANGLION_WIFI_BOARD"


def write_events(path: Path, chunk) -> None:
    """The protocol (rest, mvc, exercise cues) as the BIDS events.tsv beside the file: files of
    other tools have no room for our annotations (OpenBCI's marker channel holds numbers)."""
    from emgfeedback.io.bids import write_events_tsv
    from emgfeedback.recording import ArrayRecording

    rec = ArrayRecording(path=path, format="sim", fs=chunk.fs, channels=chunk.channels,
                         n_samples=len(chunk), markers=list(chunk.markers), data=chunk.data)
    write_events_tsv(path.with_name(path.stem + "_events.tsv"), rec)


def montage(path: Path, prefix: str, channels: tuple[str, ...]) -> Path:
    rows = [f'"{prefix}{k}" = "{c.split()[-1]}"' for k, c in enumerate(channels)]
    path.write_text("[channels]\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.slow
def test_report_and_history_from_openbci_and_brainflow(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "other-tools"
    folder.mkdir()
    small = _sim(SMALL, seed=4)
    obci = folder / "P-0042_openbci.txt"
    write_openbci(obci, small)
    write_events(obci, small)
    bf = tmp_path / "P-0042_brainflow.csv"
    ganglion = _sim(SMALL, seed=5, fs=1600.0)
    board = write_brainflow(bf, ganglion)
    write_events(bf, ganglion)
    m_obci = montage(tmp_path / "obci.toml", "EXG ", SMALL)
    m_bf = montage(tmp_path / "bf.toml", "EXG ", ganglion.channels)

    # the importers read the start time from the files' own timestamps
    with load(obci) as r:
        assert r.sidecar["started"] == START.isoformat()
    with load(bf, board=board) as r:
        assert r.sidecar["started"] == START.isoformat() and r.fs == 1600

    # without --patient the report is refused in one line naming the option
    out = tmp_path / "obci.html"
    capsys.readouterr()
    assert main(["report", str(obci), "--montage", str(m_obci), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--patient" in err and not out.exists()
    # an identifying id is refused with the patient-id rule's reason, before anything is read
    assert main(["report", str(obci), "--patient", "Jane Doe", "--out", str(out)]) == 1
    assert "not a pseudonymous id" in capsys.readouterr().err and not out.exists()

    assert main(["report", str(obci), "--patient", "P-0042", "--affected-side", "L",
                 "--montage", str(m_obci), "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert '<td id="patient">P-0042</td>' in html and "2025-03-04" in html
    assert "<td>Affected side</td><td>L</td>" in html

    out_bf = tmp_path / "bf.html"
    assert main(["report", str(bf), "--patient", "P-0042", "--affected-side", "L",
                 "--brainflow-board", board, "--montage", str(m_bf), "--out", str(out_bf)]) == 0
    assert '<td id="patient">P-0042</td>' in out_bf.read_text(encoding="utf-8")

    # analyze gives the same reps as the report's analysis, and keeps the id in its JSON
    js = tmp_path / "a.json"
    assert main(["analyze", str(obci), "--patient", "P-0042", "--affected-side", "L",
                 "--montage", str(m_obci), "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["patient"] == "P-0042" and doc["affected_side"] == "L"
    assert len([r for r in doc["reps"] if r["side"] == "L"]) > 0

    # history: a folder of OpenBCI files, then the BrainFlow file's folder
    db = tmp_path / "h.sqlite"
    assert main(["history", "import", str(folder), "--db", str(db), "--pattern", "*.txt",
                 "--patient", "P-0042", "--affected-side", "L", "--montage", str(m_obci)]) == 0
    bf_dir = tmp_path / "bf"
    bf_dir.mkdir()
    for f in (bf, bf.with_name(bf.stem + "_events.tsv")):
        f.rename(bf_dir / f.name)
    assert main(["history", "import", str(bf_dir), "--db", str(db), "--pattern", "*.csv",
                 "--patient", "P-0042", "--affected-side", "L", "--brainflow-board", board,
                 "--montage", str(m_bf)]) == 0
    with History(db) as h:
        stored = h.sessions("P-0042")
    assert sorted(s.source for s in stored) == ["P-0042_brainflow.csv", "P-0042_openbci.txt"]
    assert all(s.affected_side == "L" and s.recorded_at == START for s in stored)
    smile = {s.source: s.metrics["smile"] for s in stored}
    reps = [r for r in doc["reps"] if r["exercise"] == "smile" and r["side"] == "L"]
    assert smile["P-0042_openbci.txt"].n_reps == len(reps) > 0
    assert smile["P-0042_brainflow.csv"].n_reps > 0
    # importing the folder again recognises the stored session without analysing it again
    capsys.readouterr()
    assert main(["history", "import", str(folder), "--db", str(db), "--pattern", "*.txt",
                 "--patient", "P-0042", "--affected-side", "L", "--montage", str(m_obci)]) == 0
    assert "0 sessions, 1 already stored, 0 failed" in capsys.readouterr().out
