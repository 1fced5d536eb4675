"""One source contract (emgfeedback.stream): every source kind in the registry, opened through
it, follows the same ``read(timeout)`` semantics and raises the same error when used out of
order; unknown or wrongly typed options are rejected by name."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.errors import ConfigError, SourceStateError
from emgfeedback.sources import registry
from emgfeedback.sources import simavr as SIM
from emgfeedback.stream import Chunk, SourceBase

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakeboard import FakeBoard



@contextmanager
def _simulated(tmp: Path) -> Iterator[SourceBase]:
    yield registry.open_source("simulated", scenario="rest", duration=5.0, speed=4.0)


@contextmanager
def _replay(tmp: Path) -> Iterator[SourceBase]:
    from emgfeedback.cli import main

    f = tmp / "r.edf"
    assert main(["simulate", "--scenario", "rest", "--duration", "3", "--out", str(f)]) == 0
    yield registry.open_source(f"replay:{f}", speed=4.0)


@contextmanager
def _serial(tmp: Path) -> Iterator[SourceBase]:
    with FakeBoard(tmp) as board:
        yield registry.open_source(f"serial:{board.link}", handshake_timeout=2.0)


@contextmanager
def _simavr(tmp: Path) -> Iterator[SourceBase]:
    missing = SIM.toolchain_missing()
    if missing is not None:
        pytest.skip(f"{missing} (CI installs them)")
    yield registry.open_source("simavr", n_channels=2, input_seconds=2.0)


@contextmanager
def _brainflow(tmp: Path) -> Iterator[SourceBase]:
    pytest.importorskip("brainflow")
    yield registry.open_source("brainflow:SYNTHETIC_BOARD")


@contextmanager
def _lsl(tmp: Path) -> Iterator[SourceBase]:
    pylsl = pytest.importorskip("pylsl")
    import threading

    name = f"emgfeedback-contract-{time.monotonic_ns()}"
    info = pylsl.StreamInfo(name, "EMG", 2, 500.0, pylsl.cf_double64, name)
    outlet = pylsl.StreamOutlet(info)
    stop = threading.Event()

    def push() -> None:
        while not stop.is_set():
            outlet.push_chunk(np.zeros((10, 2)).tolist())
            time.sleep(0.02)

    th = threading.Thread(target=push, daemon=True)
    th.start()
    try:
        yield registry.open_source(f"lsl:{name}", timeout=5.0)
    finally:
        stop.set()
        th.join(2.0)


@contextmanager
def _chords(tmp: Path) -> Iterator[SourceBase]:
    from fake_chords import FakeChords

    with FakeChords(tmp, board="UNO-R4", string_timeout=0.15) as board:
        yield registry.open_source(f"chords:{board.link}", handshake_timeout=2.0)


@contextmanager
def _spikershield(tmp: Path) -> Iterator[SourceBase]:
    from fake_spikershield import FakeSpikerShield

    with FakeSpikerShield(tmp) as board:
        yield registry.open_source(f"spikershield:{board.link}", n_channels=2)


KINDS = {"simulated": _simulated, "replay": _replay, "serial": _serial,
         "chords": _chords, "spikershield": _spikershield,
         "simavr": pytest.param(_simavr, marks=[pytest.mark.firmware, pytest.mark.slow]),
         "brainflow": _brainflow, "lsl": _lsl}


def test_every_registered_kind_is_tested() -> None:
    assert set(KINDS) == set(registry.kinds())


@pytest.mark.parametrize("make", list(KINDS.values()), ids=list(KINDS))
def test_read_contract(make: Callable[[Path], "contextmanager[SourceBase]"],
                       tmp_path: Path) -> None:
    with make(tmp_path) as src:
        with pytest.raises(SourceStateError, match="before open"):
            src.read(0)
        with pytest.raises(SourceStateError):
            src.start()
        src.open()
        src.start()
        try:
            c = src.read()  # None: blocks until data
            assert isinstance(c, Chunk) and len(c) > 0
            assert c.data.shape == (len(c), len(src.info.channels))
            t0 = time.monotonic()
            c0 = src.read(0)  # polls
            assert time.monotonic() - t0 < 0.5
            assert c0 is None or isinstance(c0, Chunk)
            t0 = time.monotonic()
            c1 = src.read(0.05)  # waits at most 0.05 s (plus the time to hand over a chunk)
            assert time.monotonic() - t0 < 1.0
            assert c1 is None or isinstance(c1, Chunk)
        finally:
            src.stop()
            src.close()
        src.close()  # twice is fine
        src.stop()
        with pytest.raises(SourceStateError, match="after close"):
            src.read(0)


def test_a_finite_source_ends_with_none_and_finished(tmp_path: Path) -> None:
    src = registry.open_source("simulated", scenario="rest", duration=0.1, speed=None)
    with src:
        n = 0
        while (c := src.read()) is not None:
            n += len(c)
        assert src.finished and n == 100
        assert src.read() is None and src.read(0) is None


@pytest.mark.parametrize("spec, options, needle", [
    ("simulated", {"bogus": 1}, "board 'simulated' has no option 'bogus'"),
    ("serial:/dev/null", {"scenario": "rest"}, "board 'serial' has no option 'scenario'"),
    ("lsl:x", {"speed": 2.0}, "board 'lsl' has no option 'speed'"),
    ("simulated", {"seed": "seven"}, "option seed='seven' has the wrong type"),
    ("replay", {}, "needs an argument"),
    ("simavr:x", {}, "takes no argument"),
    ("nope", {}, "unknown board 'nope'"),
])
def test_options_are_typed_and_checked_by_name(spec: str, options: dict[str, object],
                                               needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        registry.open_source(spec, **options)


def test_registry_imports_no_source_until_asked() -> None:
    import subprocess

    code = ("import sys; import emgfeedback.sources.registry as r; r.kinds(); "
            "print([m for m in sys.modules if m.startswith('emgfeedback.sources.') "
            "and m != 'emgfeedback.sources.registry'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
