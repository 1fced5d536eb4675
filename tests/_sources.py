"""Test sources shared by the session, controller and window tests."""

from __future__ import annotations

import time
from dataclasses import replace

from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.stream import Chunk, SourceBase


class NoCues(SourceBase):
    """A simulated face without the simulator's own cues: what a live board delivers, so the
    program (the GUI's or the session's) has to lead.  ``pace_s`` sleeps before every read, so a
    test that polls sees every step."""

    def __init__(self, seconds: float = 60.0, seed: int = 1, pace_s: float = 0.0) -> None:
        self.inner = SimulatedSource("rest", duration=seconds, seed=seed, speed=None)
        self.info = self.inner.info
        self.pace_s = pace_s

    def open(self) -> None:
        self.inner.open()

    def start(self) -> None:
        self.inner.start()

    def close(self) -> None:
        self.inner.close()

    def read(self, timeout: float | None = None) -> Chunk | None:
        if self.pace_s:
            time.sleep(self.pace_s)
        c = self.inner.read(timeout)
        return None if c is None else replace(c, markers=())

    @property
    def finished(self) -> bool:
        return bool(self.inner.finished)
