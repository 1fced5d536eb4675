"""Many recordings at once: a process pool on this machine, or a Dask cluster.

:func:`run_many` applies a picklable function to every item (typically a file path) and returns one
:class:`Outcome` per item **in the order of the items**, whatever order the workers finish in, so
a batch gives the same results as a serial run.  One failing item is reported in its outcome
(``error``: the one-line message of an :class:`~emgfeedback.errors.EmgError`, or the exception's
type and text for anything else) and the rest complete.

Where the work runs:

``jobs=1``
    in this process, one item after the other (no pool: the reference);
``jobs=N`` (default: the number of cores)
    a :class:`concurrent.futures.ProcessPoolExecutor` of N processes on this machine;
``scheduler="tcp://HOST:8786"``
    an existing Dask cluster (``dask.distributed``): the items are sent to its workers, which need
    emgfeedback installed and the files reachable at the same paths.  The client only connects;
    nothing here listens on a port.

``progress(done, total, item)`` is called in the calling thread as each item completes, and
``on_outcome(index, outcome)`` with its :class:`Outcome` (in completion order: a caller that
stores results as they come, in item order, buffers them; see
:func:`emgfeedback.views.history.import_folder`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Generic, TypeVar

from emgfeedback.errors import ConfigError, EmgError

__all__ = ["Outcome", "describe_error", "run_many"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: At most this many worker processes (a bound for a mistyped ``--jobs``).
MAX_JOBS = 256


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """What one item gave: ``result``, or ``error`` (one line) when it failed."""

    item: T
    result: R | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_error(exc: BaseException) -> str:
    """One line for a failed item: the user-facing message of an EmgError, else the type too."""
    if isinstance(exc, EmgError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return f"internal error: {type(exc).__name__}: {exc}"


def _guarded(fn: Callable[[T], R], item: T) -> tuple[R | None, str | None]:
    """Run ``fn(item)`` in a worker; errors come back as text (pickling an arbitrary exception
    from another process or machine is not reliable)."""
    try:
        return fn(item), None
    except Exception as exc:  # reported per item; the batch goes on
        return None, describe_error(exc)


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


def run_many(fn: Callable[[T], R], items: Sequence[T], jobs: int | None = None,
             scheduler: str | None = None,
             progress: Callable[[int, int, T], None] | None = None,
             connect_timeout_s: float = 10.0,
             on_outcome: Callable[[int, Outcome[T, R]], None] | None = None,
             ) -> list[Outcome[T, R]]:
    """``fn`` over ``items`` (see the module docstring); outcomes in item order."""
    items = list(items)
    if jobs is not None and not (isinstance(jobs, int) and 1 <= jobs <= MAX_JOBS):
        raise ConfigError(f"--jobs must be a whole number from 1 to {MAX_JOBS}, got {jobs!r}")
    results: list[tuple[object, str | None] | None] = [None] * len(items)
    done = 0

    def finished(i: int, value: tuple[object, str | None]) -> None:
        nonlocal done
        results[i] = value
        done += 1
        if on_outcome is not None:
            on_outcome(i, Outcome(items[i], value[0], value[1]))  # type: ignore[arg-type]
        if progress is not None:
            progress(done, len(items), items[i])

    if scheduler is not None:
        _run_dask(fn, items, scheduler, finished, connect_timeout_s)
    else:
        n = min(jobs or default_jobs(), max(1, len(items)))
        if n == 1:
            for i, it in enumerate(items):
                finished(i, _guarded(fn, it))
        else:
            with ProcessPoolExecutor(max_workers=n) as pool:
                futs: dict[Future[tuple[R | None, str | None]], int] = {
                    pool.submit(_guarded, fn, it): i for i, it in enumerate(items)}
                try:
                    for f in as_completed(futs):
                        i = futs[f]
                        try:
                            got: tuple[object, str | None] = f.result()
                        except Exception as exc:  # the worker process itself died
                            got = (None, f"worker failed: {describe_error(exc)}")
                        finished(i, got)
                except BaseException:  # the caller's callback failed, or Ctrl-C: stop now
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    out: list[Outcome[T, R]] = []
    for it, r in zip(items, results):
        assert r is not None
        value, err = r
        out.append(Outcome(it, value, err))  # type: ignore[arg-type]
    return out


def _run_dask(fn: Callable[[T], R], items: list[T], scheduler: str,
              finished: Callable[[int, tuple[object, str | None]], None],
              timeout_s: float) -> None:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise ConfigError("--scheduler needs dask.distributed: pip install 'emgfeedback[batch]'"
                          ) from None
    try:
        # dask.distributed has no type hints: its three calls are marked below.
        client = Client(scheduler, timeout=timeout_s,  # type: ignore[no-untyped-call]
                        set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise EmgError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); is it running? "
                       "(dask scheduler / dask worker, or drop --scheduler to use this machine)"
                       ) from None
    try:
        futs = client.map(_guarded, [fn] * len(items), items, pure=False)
        index = {f.key: i for i, f in enumerate(futs)}
        with client.as_current():  # as_completed looks for the current client
            for f in dask_completed(futs):  # type: ignore[no-untyped-call]
                i = index[f.key]
                value: tuple[object, str | None]
                try:
                    value = f.result()
                except Exception as exc:  # the worker died or lost the task
                    value = (None, f"worker failed: {describe_error(exc)}")
                finished(i, value)
    finally:
        client.close()  # type: ignore[no-untyped-call]
