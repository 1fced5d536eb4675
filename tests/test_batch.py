"""Batch runs: a process pool and a Dask LocalCluster give the serial run's results, in order;
one failing item is reported and the rest complete."""

from __future__ import annotations

import math

import pytest

from emgfeedback.batch import Outcome, describe_error, run_many
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
