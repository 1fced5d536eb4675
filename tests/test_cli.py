"""The command line: commands work end to end; user errors are one line, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.cli import main
from emgfeedback.io.importers import load


def _run(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emgfeedback", *args], capture_output=True,
                          text=True, timeout=timeout, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


def test_simulate_writes_csv_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    assert main(["simulate", "--scenario", "smile-synkinesis", "--duration", "12", "--seed", "2",
                 "--no-calibration", "--out", str(out)]) == 0
    rec = load(out)
    chunk, markers = rec.to_chunk(), rec.markers
    assert chunk.data.shape == (12000, 8) and chunk.fs == 1000.0
    assert [m.text for m in markers] and all(m.text == "smile" for m in markers)
    truth = json.loads(out.with_suffix(".csv.truth.json").read_text())
    assert truth["scenario"] == "smile-synkinesis" and truth["fs"] == 1000.0
    assert {c["text"] for c in truth["cues"]} == {"smile"}
    # Deterministic: the same command writes the same numbers.
    out2 = tmp_path / "t.csv"
    main(["simulate", "--scenario", "smile-synkinesis", "--duration", "12", "--seed", "2",
          "--no-calibration", "--out", str(out2)])
    assert np.array_equal(load(out2).to_chunk().data, chunk.data)


def test_console_demo_runs_and_ends_on_duration() -> None:
    r = _run("demo", "--console", "--duration", "2", "--speed", "8", "--scenario", "smile-synkinesis")
    assert r.returncode == 0, r.stderr
    for label in (" L-ZYG ", " R-OOC ", "lost samples 0", "mains notch", "synkinesis"):
        assert label in r.stdout
    assert "stopped after 2.0 s of signal" in r.stderr


def test_console_redraws_at_least_10_per_second_on_a_terminal() -> None:
    import io

    from emgfeedback.config import Config
    from emgfeedback.app.pipeline import Pipeline
    from emgfeedback.sources.simulated import SimulatedSource
    from emgfeedback.views.console import ConsoleView

    out = io.StringIO()
    session = Pipeline(SimulatedSource("smile-clean", 1.0, 0, speed=1.0), Config())
    chain = session.open()
    view = ConsoleView(chain, out=out, tty=True)
    session.add(view)
    session.run(1.0)
    assert view.frames >= 10
    assert out.getvalue().count("\x1b[H\x1b[2J") == view.frames


@pytest.mark.parametrize("args,needle", [
    (["demo", "--bogus"], "unrecognized arguments: --bogus"),
    (["demo", "--board", "nope", "--duration", "1"], "unknown board 'nope'"),
    (["demo", "--console", "--duration", "1", "--speed", "fast"], "--speed: must be a number or 'max'"),
    (["demo", "--console", "--duration", "1", "--scenario", "smirk"], "unknown scenario 'smirk'"),
    (["demo", "--console", "--duration", "1", "--config", "/nonexistent.toml"],
     "no such configuration file"),
    (["simulate", "--out", "/tmp/x.xyz", "--duration", "1"], "unsupported output format"),
])
def test_user_errors_are_one_line(args: list[str], needle: str) -> None:
    r = _run(*args)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_bad_config_key_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[dsp]\nbandd = [20, 450]\n")
    r = _run("demo", "--console", "--duration", "1", "--config", str(cfg))
    assert r.returncode == 1
    assert "unknown key 'dsp.bandd'" in r.stderr and r.stderr.count("\n") == 1


def test_version_and_module_entry() -> None:
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.startswith("emgfeedback ")


def test_parser_built_for_one_command_parses_as_the_whole_one(capsys) -> None:
    """``build_parser(argv)`` builds only the command ``argv`` names (start-up, issue 13): every
    entry of COMMANDS adds the command its name says, and the parse is the whole parser's."""
    import argparse

    from emgfeedback.cli import COMMANDS, build_parser, command_name

    for add in COMMANDS:
        p = argparse.ArgumentParser()
        sub = p.add_subparsers(dest="command")
        add(sub)
        assert list(sub.choices) == [command_name(add)]
    whole = build_parser()
    for argv in (["analyze", "f.edf", "--json", "o.json", "--affected", "L"],
                 ["--debug", "analyze", "f.edf"], ["history", "import", "d", "--jobs", "2"],
                 ["export-bids", "a.edf", "--out", "b"], ["info", "x.edf"]):
        part = build_parser(argv)
        assert part._subparsers is not None  # argparse keeps it private
        assert vars(part.parse_args(argv)) == vars(whole.parse_args(argv))
        assert len(part._subparsers._group_actions[0].choices) == 1
    # a help option before the command: the top-level help, which lists every command
    for argv in ([], ["--version"], ["nonsense"], ["--", "analyze"], ["-h", "analyze"],
                 ["--debug", "--he", "replay"], ["--help", "info"]):
        assert len(build_parser(argv)._subparsers._group_actions[0].choices) == len(COMMANDS)
    # a usage error inside the command reads as before
    for parser in (whole, build_parser(["analyze"])):
        with pytest.raises(SystemExit):
            parser.parse_args(["analyze", "f.edf", "--no-such-option"])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0] == err[1] and "unrecognized arguments" in err[0]


def test_main_in_process_leaves_the_garbage_collector_as_it_was(tmp_path: Path) -> None:
    """The start-up imports run with the collector paused (issue 13); called in-process, main()
    gives it back enabled and freezes nothing of the caller's objects."""
    import gc

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    f, out = tmp_path / "s.edf", tmp_path / "a.json"
    assert main(["simulate", "--duration", "4", "--no-calibration", "--out", str(f)]) == 0
    assert main(["analyze", str(f), "--json", str(out)]) == 0
    with pytest.raises(SystemExit):
        main(["analyze", "--no-such-option"])
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    assert json.loads(out.read_text())["fs"] > 0
