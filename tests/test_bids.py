"""BIDS-EMG export: two sessions, every file name valid for the BIDS schema (bids-validator's
schema rules), read back by MNE-BIDS with the same events; our own importer replays the export
with its protocol."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from _sessions import SMALL, make_source, session_start, write_edf_session
from emgfeedback.cli import main
from emgfeedback.io.bids import read_events_tsv
from emgfeedback.io.importers import load


def _two_sessions(tmp_path: Path) -> list[Path]:
    out = []
    for k in range(2):
        src = make_source(seed=30 + k, synkinesis_prob=0.7, duration=80.0, channels=SMALL)
        p = tmp_path / f"s{k}.edf"
        write_edf_session(p, src, patient="P-0007", start=session_start(7 * k),
                          affected_side="L")
        out.append(p)
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.mark.slow
def test_export_two_sessions_validates_and_reads_back(tmp_path: Path, capsys) -> None:
    mne_bids = pytest.importorskip("mne_bids")
    from bids_validator import BIDSValidator

    files = _two_sessions(tmp_path)
    analyses = []
    for k, f in enumerate(files):
        a = tmp_path / f"s{k}-analysis.json"  # the analysis saved beside the session
        assert main(["analyze", str(f), "--json", str(a)]) == 0
        analyses.append(json.loads(a.read_text()))
    ds = tmp_path / "bids"
    capsys.readouterr()
    assert main(["export-bids", *map(str, files), "--out", str(ds)]) == 0
    assert "2 sessions of 1 participants" in capsys.readouterr().out

    # every file is named as the BIDS schema wants (EMG datatype included)
    v = BIDSValidator()
    names = ["/" + p.relative_to(ds).as_posix() for p in ds.rglob("*") if p.is_file()]
    bad = [n for n in names if not v.is_bids(n)]
    assert not bad, bad
    assert len([n for n in names if n.endswith("_emg.edf")]) == 2

    desc = json.loads((ds / "dataset_description.json").read_text())
    assert desc["BIDSVersion"] == "1.11.0" and desc["DatasetType"] == "raw"
    assert _rows(ds / "participants.tsv") == [{"participant_id": "sub-P0007",
                                               "affected_side": "L"}]
    for k, analysis in enumerate(analyses, start=1):
        stem = ds / "sub-P0007" / f"ses-{k:02d}" / "emg" / f"sub-P0007_ses-{k:02d}_task-facialnmr"
        side = json.loads(stem.with_name(stem.name + "_emg.json").read_text())
        assert side["SamplingFrequency"] == 1000 and side["EMGChannelCount"] == 4
        assert side["EMGPlacementScheme"] == "ChannelSpecific"
        chans = _rows(stem.with_name(stem.name + "_channels.tsv"))
        assert [c["name"] for c in chans] == list(SMALL)
        assert all(c["placement_description"] != "n/a" and c["type"] == "EMG" for c in chans)
        assert chans[0]["target_muscle"] == "left zygomaticus major"
        ev = _rows(stem.with_name(stem.name + "_events.tsv"))
        reps = [e for e in ev if e["trial_type"].startswith("rep ")]
        synk = [e for e in ev if e["trial_type"].startswith("synkinesis ")]
        assert len(reps) == len(analysis["reps"]) > 0
        assert len(synk) == len([e for e in analysis["events"]
                                 if e.get("type", "synkinesis") == "synkinesis"]) > 0
        assert sorted(float(e["onset"]) for e in synk) == sorted(
            e["onset_s"] for e in analysis["events"] if e.get("type", "synkinesis") == "synkinesis")

        # MNE-BIDS reads the dataset back: same signal, same events
        bp = mne_bids.BIDSPath(subject="P0007", session=f"{k:02d}", task="facialnmr",
                               datatype="emg", root=ds)
        raw = mne_bids.read_raw_bids(bp, verbose="error")
        assert raw.info["sfreq"] == 1000 and raw.ch_names == list(SMALL)
        assert set(raw.get_channel_types()) == {"emg"}
        got = sorted((round(float(o), 3), d) for o, d in
                     zip(raw.annotations.onset, raw.annotations.description))
        want = sorted((round(float(e["onset"]), 3), e["trial_type"]) for e in ev)
        assert got == want
        with load(files[k - 1]) as orig:
            x = orig.read()
        y = raw.get_data(units="uV").T
        assert y.shape == x.shape
        assert np.max(np.abs(y - x)) < 0.05 * np.max(np.abs(x))  # 16-bit EDF of the same signal

    # the exported EDF replays with its protocol: the annotations of events.tsv
    edf = ds / "sub-P0007" / "ses-01" / "emg" / "sub-P0007_ses-01_task-facialnmr_emg.edf"
    with load(edf) as r:
        marks = read_events_tsv(edf.with_name(edf.name.replace("_emg.edf", "_events.tsv")), r.fs)
        assert [m.text for m in marks] == [m.text for m in r.markers]

    # a second export into the same folder is refused in one line
    capsys.readouterr()
    assert main(["export-bids", str(files[0]), "--out", str(ds)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err


def test_export_refuses_identifying_and_missing_ids(tmp_path: Path, capsys) -> None:
    p = tmp_path / "x.csv"
    p.write_text("# emgfeedback csv v1\n# fs=1000\nsample,EMG L-ZYG\n" +
                 "".join(f"{i},{np.sin(i)}\n" for i in range(2000)))
    out = tmp_path / "ds"
    assert main(["export-bids", str(p), "--out", str(out)]) == 1
    assert "--patient" in capsys.readouterr().err
    assert main(["export-bids", str(p), "--out", str(out), "--patient", "Anna Schmidt"]) == 1
    assert "not a pseudonymous id" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
