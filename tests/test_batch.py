"""Batch runs: a process pool and a Dask LocalCluster give the serial run's results, in order;
one failing item is reported and the rest complete."""

from __future__ import annotations

import math

import pytest

from emgfeedback.app.batch import Outcome, describe_error, run_many
from emgfeedback.errors import ConfigError, FileFormatError


def _work(x: int) -> float:
    """A picklable job that fails on one input like a damaged file would."""
    if x == 3:
        raise FileFormatError(f"item{x}.edf: truncated after 12 data records")
    if x == 5:
        raise ZeroDivisionError("division by zero")
    return math.sqrt(x) * 1000.0


ITEMS = list(range(8))


def _check(out: list[Outcome[int, float]]) -> None:
    assert [o.item for o in out] == ITEMS
    assert [o.ok for o in out] == [True, True, True, False, True, False, True, True]
    assert out[3].error == "item3.edf: truncated after 12 data records"
    assert out[5].error == "internal error: ZeroDivisionError: division by zero"
    for o in out:
        if o.ok:
            assert o.result == math.sqrt(o.item) * 1000.0


def test_serial_and_pool_give_the_same_outcomes_in_order() -> None:
    seen: list[tuple[int, int]] = []
    serial = run_many(_work, ITEMS, jobs=1, progress=lambda d, n, it: seen.append((d, n)))
    _check(serial)
    assert seen == [(k, 8) for k in range(1, 9)]
    pooled = run_many(_work, ITEMS, jobs=2)
    _check(pooled)
    assert pooled == serial


def test_jobs_are_validated() -> None:
    for bad in (0, -1, 10**6, 1.5):
        with pytest.raises(ConfigError, match="--jobs"):
            run_many(_work, ITEMS, jobs=bad)  # type: ignore[arg-type]
    assert run_many(_work, [], jobs=4) == []


def test_unreachable_scheduler_is_one_clear_line() -> None:
    pytest.importorskip("distributed")
    from emgfeedback.errors import EmgError

    with pytest.raises(EmgError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_many(_work, ITEMS, scheduler="tcp://127.0.0.1:9", connect_timeout_s=1.0)


@pytest.mark.slow
def test_dask_local_cluster_of_two_workers_gives_the_serial_results() -> None:
    distributed = pytest.importorskip("distributed")
    serial = run_many(_work, ITEMS, jobs=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert len(cluster.workers) == 2
        done: list[int] = []
        out = run_many(_work, ITEMS, scheduler=cluster.scheduler_address,
                       progress=lambda d, n, it: done.append(d))
    _check(out)
    assert out == serial
    assert sorted(done) == list(range(1, 9))


def test_describe_error() -> None:
    assert describe_error(FileFormatError("x.edf: bad")) == "x.edf: bad"
    err = FileNotFoundError(2, "No such file or directory", "/nope.edf")
    assert describe_error(err) == "/nope.edf: No such file or directory"


# ------------------------------------------------------------------ analyze FOLDER
@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from emgfeedback.cli import main

    d = tmp_path_factory.mktemp("archive")
    (d / "b").mkdir()
    for name, seed in (("s1.edf", 1), ("b/s2.edf", 2), ("s3.edf", 3)):
        assert main(["simulate", "--scenario", "smile-synkinesis", "--no-calibration",
                     "--duration", "20", "--seed", str(seed), "--out", str(d / name)]) == 0
    (d / "broken.edf").write_bytes(b"0       " + b"\x00" * 300)  # a damaged recording
    return d


def _analyze(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from emgfeedback.cli import main

    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_analyze_folder_equals_one_file_at_a_time(folder, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    one = tmp_path / "one.json"
    rc, _, _ = _analyze(["analyze", str(folder / "b" / "s2.edf"), "--json", str(one)], capsys)
    assert rc == 0
    serial, pooled = tmp_path / "serial", tmp_path / "pooled"
    rc1, out1, err1 = _analyze(["analyze", str(folder), "--json", str(serial), "--jobs", "1"],
                               capsys)
    rc2, out2, _ = _analyze(["analyze", str(folder), "--json", str(pooled), "--jobs", "2"],
                            capsys)
    # One damaged file: reported on one line, the others complete, the exit status says so.
    assert rc1 == rc2 == 1
    assert [ln for ln in err1.splitlines() if ln.startswith("emgfeedback: error:")] == [
        ln for ln in err1.splitlines() if "broken.edf" in ln and ln.startswith("emgfeedback")]
    assert "[4/4]" in err1
    assert "analysed 3 of 4 recordings, 1 failed" in out1
    assert out1.replace(str(serial), "D") == out2.replace(str(pooled), "D")
    names = sorted(p.name for p in serial.iterdir())
    assert names == ["b__s2.analysis.json", "s1.analysis.json", "s3.analysis.json"]
    for n in names:
        assert (serial / n).read_bytes() == (pooled / n).read_bytes()
        assert ((serial / n).stat().st_mode & 0o777) == 0o600
    assert (serial / "b__s2.analysis.json").read_text() == one.read_text()


@pytest.mark.slow
def test_analyze_folder_on_a_dask_cluster(folder, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    distributed = pytest.importorskip("distributed")
    serial, dask_out = tmp_path / "serial", tmp_path / "dask"
    _analyze(["analyze", str(folder), "--json", str(serial), "--jobs", "1"], capsys)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        rc, out, err = _analyze(["analyze", str(folder), "--json", str(dask_out),
                                 "--scheduler", cluster.scheduler_address], capsys)
    assert rc == 1 and "analysed 3 of 4 recordings, 1 failed" in out
    for p in serial.iterdir():
        assert (dask_out / p.name).read_bytes() == p.read_bytes()


def test_batch_options_need_a_folder(folder, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = _analyze(["analyze", str(folder / "s1.edf"), "--jobs", "2"], capsys)
    assert rc == 1 and "are for a folder of recordings" in err
    rc, _, err = _analyze(["analyze", str(folder), "--pattern", "*.xyz"], capsys)
    assert rc == 1 and "no files matching '*.xyz'" in err
