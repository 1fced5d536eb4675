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
