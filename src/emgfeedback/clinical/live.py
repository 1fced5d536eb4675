"""The clinical engine in a live session: calibrate from the protocol, then detect.

:class:`LiveClinic` is a session consumer (``feed`` is called by the session thread).  Until the
first exercise rep it collects the calibration periods (``rest``, ``mvc <side>-<code>`` markers)
with a :class:`~emgfeedback.clinical.calibration.Calibrator`; at the first rep's marker it computes
the calibration from what it collected (or takes a stored one given up front) and starts a
:class:`~emgfeedback.clinical.detect.Detector` on that same chunk.  Everything is decided at
sample indices from samples and markers only, so :func:`~emgfeedback.clinical.analysis.analyze`
of the recording made live raises the same events at the same samples
(tests/test_live_clinic.py).

Each synkinesis alert is passed to ``annotate`` (e.g. ``Recorder.annotate``) as a marker
``synkinesis L-OOC`` at the alert sample, and to ``on_event``; the detector ignores such markers
when the recording is replayed.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from collections.abc import Callable
from typing import Any

from emgfeedback.clinical.calibration import Calibration, CalibrationConfig, Calibrator
from emgfeedback.clinical.detect import Detector, SynkinesisEvent
from emgfeedback.clinical.exercises import Program, default_program
from emgfeedback.clinical.montage import Montage
from emgfeedback.dsp.chain import Chain
from emgfeedback.stream import Marker, Processed
from emgfeedback.vocabulary import format_event
from emgfeedback.errors import CalibrationError

__all__ = ["LiveClinic", "split_processed"]

log = logging.getLogger(__name__)


def split_processed(p: Processed, at: int) -> tuple[Processed, Processed]:
    """``p`` cut at the absolute sample ``at`` (``p.start < at < p.stop``): the part before
    and the part from ``at`` on, each with its markers; both keep the chunk's status and quality
    snapshot (what the chain measured up to the chunk's end)."""
    k = at - p.start
    head = replace(p, raw=p.raw[:k], filtered=p.filtered[:k], envelope=p.envelope[:k],
                   markers=tuple(m for m in p.markers if m.sample < at))
    tail = replace(p, start=at, raw=p.raw[k:], filtered=p.filtered[k:], envelope=p.envelope[k:],
                   markers=tuple(m for m in p.markers if m.sample >= at))
    return head, tail


class LiveClinic:
    """Live calibration then detection for one session.

    Parameters
    ----------
    chain:
        The session's chain (for the sample rate, envelope delay and acquisition range).
    montage, program:
        Regions and the exercise program (default program when ``None``).
    calibration:
        A stored calibration to use instead of the session's own calibration periods.
    on_event:
        ``on_event(kind, event)`` with ``kind`` ``"raised"`` or ``"ended"``; session thread.
    annotate:
        Called with a :class:`~emgfeedback.stream.Marker` for every alert (session thread).
    calibration_config:
        The configuration's ``[calibration]`` section (default :class:`CalibrationConfig`).
    """

    def __init__(self, chain: Chain, montage: Montage, program: Program | None = None,
                 calibration: Calibration | None = None,
                 on_event: Callable[[str, SynkinesisEvent], None] | None = None,
                 annotate: Callable[[Marker], Any] | None = None,
                 calibration_config: CalibrationConfig | None = None) -> None:
        self.chain = chain
        self.montage = montage
        self.program = program or default_program()
        self.calibration = calibration
        self.on_event = on_event
        self.annotate = annotate
        self.detector: Detector | None = None
        self.error: str | None = None
        self._calibrator = Calibrator(chain.fs, montage.names, chain.quality.adc_range_uv,
                                      calibration_config or CalibrationConfig(),
                                      chain.quality.cfg)

    @property
    def events(self) -> list[SynkinesisEvent]:
        return self.detector.events if self.detector is not None else []

    def _start_detector(self) -> None:
        if self.calibration is None:
            try:
                self.calibration = self._calibrator.result(strict=True)
            except CalibrationError as exc:
                # The session goes on (the therapist can redo the calibration); no detection.
                self.error = str(exc)
                log.warning("live detection not started: %s", exc)
                return
        self.detector = Detector.for_chain(self.chain, self.montage, self.calibration,
                                           self.program, on_event=self._event)

    def _event(self, kind: str, ev: SynkinesisEvent) -> None:
        if kind == "raised" and self.annotate is not None and ev.alert is not None:
            self.annotate(Marker(ev.alert, 0, format_event(ev.type, ev.channel)))
        if self.on_event is not None:
            self.on_event(kind, ev)

    def feed(self, p: Processed) -> None:
        self.feed_ahead(p, None)

    def feed_ahead(self, p: Processed, nxt: Processed | None) -> None:
        """:meth:`feed` ``p``, the next chunk ``nxt`` already at hand (or ``None``): the
        detector may start on its artefact flags (:meth:`Detector.feed`); ``nxt`` must be the
        chunk fed next."""
        if self.detector is None and self.error is None:
            first = min((m.sample for m in p.markers if self.program.find(m.text) is not None),
                        default=None)
            if first is None:
                self._calibrator.feed(p)
            else:
                # The detector starts at the first rep's sample, not at the start of the chunk
                # that holds it: the same events and rep metrics in any chunking (10 ms live,
                # 2 s blocks offline, the whole file).
                if first > p.start:
                    head, p = split_processed(p, first)
                    self._calibrator.feed(head)
                self._start_detector()
        if self.detector is not None:
            self.detector.feed(p, ahead=nxt)

    def close(self) -> None:
        if self.detector is not None:
            self.detector.close()
