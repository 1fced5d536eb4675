"""An LSL inlet as a source: ``lsl:NAME`` (any regular-rate numeric stream on the network).

``open`` resolves the stream by name (``timeout`` seconds, default 5) and subscribes; ``read``
pulls what liblsl has buffered (liblsl receives in its own thread, so no reader thread is needed
here).  Samples are counted from the first one received; values are taken as µV unless the
stream's description gives another voltage unit for its channels.  LSL cannot tell lost samples on
the sending side, so ``Status.lost_samples`` stays 0.  ``pylsl`` is imported lazily.

Threads: all methods are called from the session thread.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from emgfeedback.errors import ConfigError, DeviceNotFound, SourceError
from emgfeedback.io.lsl import import_pylsl
from emgfeedback.stream import Chunk, SourceBase, SourceInfo
from emgfeedback.units import uv_per

__all__ = ["LslSource"]

log = logging.getLogger(__name__)



class LslSource(SourceBase):
    """Read stream ``name`` from LSL.

    Parameters
    ----------
    name:
        The LSL stream name (e.g. ``emgfeedback-raw``).
    timeout:
        Seconds to wait for the stream to appear.
    """

    def __init__(self, name: str, timeout: float = 5.0) -> None:
        if not name:
            raise ConfigError("lsl needs a stream name: --board lsl:NAME")
        self.name = name
        self.timeout = timeout
        self.info = SourceInfo(name=f"lsl:{name}", fs=0.0, channels=())
        self._inlet: Any = None
        self._count = 0
        self._scale = np.ones(0)

    def open(self) -> None:
        pylsl = import_pylsl()
        found = pylsl.resolve_byprop("name", self.name, 1, self.timeout)
        if not found:
            raise DeviceNotFound(f"no LSL stream named {self.name!r} found within "
                                 f"{self.timeout:g} s (is the sender running?)")
        si = found[0]
        if si.nominal_srate() <= 0:
            raise SourceError(f"LSL stream {self.name!r} has no regular sample rate")
        inlet = pylsl.StreamInlet(si, max_buflen=60, recover=True)
        full = inlet.info(timeout=self.timeout)
        n = full.channel_count()
        labels, scale = [], []
        ch = full.desc().child("channels").child("channel")
        for k in range(n):
            lab = ch.child_value("label") if not ch.empty() else ""
            unit = ch.child_value("unit") if not ch.empty() else ""
            labels.append(lab or f"ch{k + 1}")
            scale.append(uv_per(unit) or 1.0)
            ch = ch.next_sibling() if not ch.empty() else ch
        self._scale = np.asarray(scale)
        self.info = SourceInfo(name=f"lsl:{self.name}", fs=float(si.nominal_srate()),
                               channels=tuple(labels), board=f"LSL {si.type()} from {si.hostname()}",
                               extra={"source_id": si.source_id()})
        inlet.open_stream(timeout=self.timeout)
        self._inlet = inlet
        log.info("LSL inlet %s: %d channels at %g Hz", self.name, n, self.info.fs)

    def read(self, timeout: float | None = None) -> Chunk | None:
        if self._inlet is None:
            raise SourceError("LSL source is not open")
        # timeout None: block until data (stream.py, the source contract), in 0.1 s waits
        n = int(max(1, self.info.fs))
        while True:
            data, _ts = self._inlet.pull_chunk(timeout=0.1 if timeout is None else timeout,
                                               max_samples=n)
            if data:
                break
            if timeout is not None:
                return None
        x = np.asarray(data, dtype=np.float64) * self._scale
        c = Chunk(x, self._count, self.info.fs, self.info.channels)
        self._count += len(x)
        return c

    def close(self) -> None:
        if self._inlet is not None:
            self._inlet.close_stream()
            self._inlet = None


def create(arg: str = "", *, timeout: float = 5.0) -> LslSource:
    """``lsl:NAME`` (registry factory): ``timeout`` is how long to look for the stream."""
    return LslSource(arg, timeout=timeout)
