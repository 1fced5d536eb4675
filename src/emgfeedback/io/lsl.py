"""Publish a session on the Lab Streaming Layer: raw, envelope and event-marker streams.

Off by default: nothing listens on the network unless ``--lsl`` is given.  ``pylsl`` is imported
only when a :class:`LslPublisher` is created.

Streams (``NAME`` defaults to ``emgfeedback``):

==================  ==============  ================================================
name                type            content
==================  ==============  ================================================
``NAME-raw``        ``EMG``         raw µV, one channel per electrode pair, double64
``NAME-envelope``   ``EMG-envelope`` envelope µV, same channels and rate
``NAME-markers``    ``Markers``     one string per marker/annotation (irregular rate)
==================  ==============  ================================================

Channel labels and the unit (``microvolts``) are in each stream's description.  Lost samples are
not pushed (LSL timestamps show the gap); a marker's text is sent with the timestamp of its
sample, counted from the chunk's own timestamp.

Threads: :meth:`LslPublisher.feed` is called by the session thread; liblsl sends in its own thread.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from emgfeedback.errors import SourceError
from emgfeedback.stream import SourceInfo

__all__ = ["LslPublisher", "import_pylsl"]

log = logging.getLogger(__name__)


def import_pylsl() -> Any:
    try:
        import pylsl
    except ImportError:
        raise SourceError("LSL needs the 'pylsl' package: pip install emgfeedback[lsl]") from None
    return pylsl


def _stream_info(pylsl: Any, name: str, kind: str, channels: tuple[str, ...], fs: float,
                 source_id: str) -> Any:
    si = pylsl.StreamInfo(name, kind, len(channels), fs, pylsl.cf_double64, source_id)
    chans = si.desc().append_child("channels")
    for lab in channels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", lab)
        ch.append_child_value("unit", "microvolts")
        ch.append_child_value("type", "EMG")
    si.desc().append_child_value("manufacturer", "emgfeedback")
    return si


class LslPublisher:
    """Session consumer pushing every processed chunk to three LSL outlets.

    Parameters
    ----------
    info:
        The source's info (rate, channel labels).
    name:
        Stream name prefix.
    """

    def __init__(self, info: SourceInfo, name: str = "emgfeedback") -> None:
        pylsl = import_pylsl()
        self._pylsl = pylsl
        self.name = name
        self.fs = float(info.fs)
        ch = tuple(info.channels)
        self.raw = pylsl.StreamOutlet(_stream_info(pylsl, f"{name}-raw", "EMG", ch, self.fs,
                                                   f"{name}-raw"))
        self.envelope = pylsl.StreamOutlet(
            _stream_info(pylsl, f"{name}-envelope", "EMG-envelope", ch, self.fs,
                         f"{name}-envelope"))
        mi = pylsl.StreamInfo(f"{name}-markers", "Markers", 1, pylsl.IRREGULAR_RATE,
                              pylsl.cf_string, f"{name}-markers")
        self.markers = pylsl.StreamOutlet(mi)
        self.pushed = 0
        log.info("LSL outlets %s-raw, %s-envelope, %s-markers open", name, name, name)

    def feed(self, p: Any) -> None:
        """Push one processed chunk (session thread)."""
        n = len(p.raw)
        if n:
            now = self._pylsl.local_clock()
            self.raw.push_chunk(np.ascontiguousarray(p.raw, dtype=np.float64), now)
            self.envelope.push_chunk(np.ascontiguousarray(p.envelope, dtype=np.float64), now)
            self.pushed += n
            for m in p.markers:
                ts = now - (p.stop - 1 - m.sample) / self.fs
                self.markers.push_sample([m.text], ts)

    def close(self) -> None:
        """Drop the outlets (consumers see the streams end)."""
        self.raw = self.envelope = self.markers = None
