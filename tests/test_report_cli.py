"""The report/progress/history commands: results on success, one line on bad input."""

from __future__ import annotations

from _sessions import make_session
from emgfeedback.cli import main
from emgfeedback.views.history import store_session


def test_progress_and_history_list(tmp_path, capsys):
    db = tmp_path / "h.sqlite"
    for k in range(3):
        store_session(make_session(seed=k, day=30 * k, duration=100.0, with_signal=False), db)
    out = tmp_path / "p.html"
    assert main(["progress", "P001", "--db", str(db), "--out", str(out)]) == 0
    assert "3 sessions" in capsys.readouterr().out and out.stat().st_size > 10_000
    assert main(["history", "list", "--db", str(db)]) == 0
    assert "P001\t3 sessions\t2025-01-06 .. 2025-03-07" in capsys.readouterr().out


def test_bad_inputs_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 100)
    cases = [
        (["progress", "P001", "--db", str(bad)], "corrupt or not a history database"),
        (["progress", "P001", "--db", str(tmp_path / "none.sqlite")], "no history database"),
        (["progress", "Jane Doe", "--db", str(bad)], "not a pseudonymous id"),
        (["history", "import", str(tmp_path / "nope"), "--db", str(tmp_path / "n.sqlite")],
         "not a folder"),
        (["report", str(tmp_path / "missing.edf")], "no such session file"),
    ]
    for argv, msg in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err and err.startswith("emgfeedback: error:")
    assert bad.read_bytes() == b"garbage" * 100
    assert not (tmp_path / "none.sqlite").exists()


def test_report_of_a_simulated_edf_session(tmp_path, capsys):
    """simulate -> EDF+; report runs analyze itself, or takes the JSON of 'analyze': same report."""
    import re

    edf = tmp_path / "sim.edf"
    assert main(["simulate", "--scenario", "session", "--duration", "110", "--seed", "2",
                 "--out", str(edf)]) == 0
    analysis = tmp_path / "a.json"
    assert main(["analyze", str(edf), "--json", str(analysis)]) == 0
    out = tmp_path / "r.html"
    capsys.readouterr()
    assert main(["report", str(edf), "--out", str(out), "--pdf"]) == 0
    assert f"wrote {out} and {out.with_suffix('.pdf')}" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    # a simulated file names no patient (emgfeedback simulate writes the placeholder SIM-0000)
    assert '<td id="patient">none (simulated session)</td>' in text and "<svg" in text
    assert "SIM-0000" not in text and "patient 0000" not in text
    assert out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    out2 = tmp_path / "r2.html"
    assert main(["report", str(edf), "--analysis", str(analysis), "--out", str(out2)]) == 0

    def tables(s: str) -> list[str]:
        return re.findall(r"<table.*?</table>", s, re.DOTALL)

    # the same tables; only the header's note on where the analysis came from differs
    assert tables(out2.read_text(encoding="utf-8"))[1:] == tables(text)[1:]
    assert len(tables(text)) == 7  # meta, montage, quality, artefacts, calibration, exercises, reps
    assert "a.json, analysed by &#x27;emgfeedback analyze&#x27; on" in out2.read_text(encoding="utf-8")
    # something that is not an analysis is refused in one line, nothing written
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    capsys.readouterr()
    assert main(["report", str(edf), "--analysis", str(bad), "--out", str(tmp_path / "x.html")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the JSON of 'emgfeedback analyze'" in err
    assert not (tmp_path / "x.html").exists()
