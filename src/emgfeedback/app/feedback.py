"""Live feedback for the views (GUI screens, console), from the clinical engine (no Qt).

:class:`ClinicFeedback` is the session's consumer around
:class:`emgfeedback.clinical.live.LiveClinic`, the same consumer the console and ``analyze`` use:
it calibrates from the session's ``rest``/``mvc`` periods, starts the
:class:`~emgfeedback.clinical.detect.Detector` at the first rep, and annotates each synkinesis
alert into the recording.  Nothing here computes a clinical figure: %MVC, activation thresholds,
the synkinesis floor, events and rep metrics are the detector's; calibration values are the
clinical calibration's.  This module only copies them, under a lock, into a
:class:`FeedbackSnapshot` for the GUI thread, and keeps:

* the protocol period running at the newest sample (cue text and countdowns),
* which quiet regions the detector flagged since the last snapshot (so a short event between two
  redraws still turns its bar red),
* a *preview* of the calibration while it is being recorded (a second
  :class:`~emgfeedback.clinical.calibration.Calibrator` over the same segments, evaluated with
  its ``result(strict=False)`` each time a segment ends), so the
  calibration screen shows rest and MVC values as they are measured.  The detector never uses
  the preview: it uses the calibration :class:`LiveClinic` computes at the first rep.

Threads: :meth:`ClinicFeedback.start` and :meth:`ClinicFeedback.feed` run in the session thread;
:meth:`ClinicFeedback.snapshot` in the GUI thread; the other methods say which.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from emgfeedback.clinical.calibration import Calibration, CalibrationConfig, Calibrator
from emgfeedback.clinical.detect import RepResult, SynkinesisEvent
from emgfeedback.clinical.exercises import Exercise, Program
from emgfeedback.clinical.live import LiveClinic
from emgfeedback.clinical.montage import Montage
from emgfeedback.dsp.chain import Chain
from emgfeedback.stream import Marker, Processed
from emgfeedback.errors import CalibrationError
from emgfeedback.vocabulary import Cue

__all__ = ["RETRACTED_KINDS", "CalibrationRow", "ClinicFeedback", "FeedbackSnapshot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationRow:
    """One channel's calibration as shown: µV of the envelope, ``None`` while not measured."""

    channel: str  # short name, L-ZYG
    rest_mean_uv: float | None
    rest_sd_uv: float | None
    mvc_uv: float | None  # above the rest mean
    trials: int  # MVC trials measured for this channel


@dataclass(frozen=True)
class FeedbackSnapshot:
    """What the screens show at sample ``position``, copied for the GUI thread.

    Per-channel arrays are in stream channel order.  Before the detector runs (calibration not
    complete) ``pct`` is NaN and the bars show ``envelope_uv``.
    """

    position: int
    fs: float
    channels: tuple[str, ...]
    calibrated: bool
    pct: np.ndarray  # the detector's %MVC of the newest sample
    envelope_uv: np.ndarray  # newest envelope sample, minus the rest mean once that is known
    threshold_pct: np.ndarray  # the detector's activation threshold, %MVC
    quiet_limit_pct: np.ndarray  # quiet regions of the running rep: the detector's limit; else NaN
    red: np.ndarray  # bool: the detector flags synkinesis on this channel (now or since last snapshot)
    role: tuple[str, ...]  # "target", "quiet" or "" (no rep running)
    exercise: Exercise | None  # the running rep's exercise
    band_pct: tuple[float, float] | None  # its target band
    cue: Cue | None  # the protocol period running at ``position``
    last_cue: Cue | None
    calibration: tuple[CalibrationRow, ...]
    calibration_final: bool  # the rows are the detector's calibration, not the preview
    calibration_notes: tuple[str, ...]
    error: str | None  # why detection could not start (a refused calibration)
    reps: tuple[RepResult, ...]
    events: tuple[SynkinesisEvent, ...]
    affected_side: str | None
    #: Channels (``L-OOC``) whose alert the detector took back since the last snapshot (a blink
    #: first alerted, then reclassified): the screens say so instead of leaving it red.
    retracted: tuple[str, ...] = ()


#: Detector callback kinds that take an alert back (clinic's ``retracted``: a blink first
#: alerted as synkinesis, then reclassified).  The hook for the live feedback.
RETRACTED_KINDS = ("retracted",)


class ClinicFeedback:
    """The clinical engine for the window; see the module docstring.

    Parameters
    ----------
    program:
        The clinical program (exercises, bands, detection settings).
    affected_side:
        ``"L"``, ``"R"`` or ``None``; the montage's affected side.
    calibration:
        A stored calibration to use instead of the session's calibration periods (optional).
    on_calibrated:
        Called once, in the session thread, with the calibration the detector starts with
        (the session writes it into the recording's sidecar).
    on_event:
        ``on_event(kind, event)`` for every detector event, after the snapshot state took it
        (session thread).
    calibration_config:
        The configuration's ``[calibration]`` section (default :class:`CalibrationConfig`).
    """

    def __init__(self, program: Program, affected_side: str | None = None,
                 calibration: Calibration | None = None,
                 on_calibrated: Callable[[Calibration], None] | None = None,
                 on_event: Callable[[str, SynkinesisEvent], None] | None = None,
                 calibration_config: CalibrationConfig | None = None) -> None:
        self.program = program
        self.on_event = on_event
        self.calibration_config = calibration_config or CalibrationConfig()
        self.affected_side = affected_side
        self.stored_calibration = calibration
        self.on_calibrated = on_calibrated
        self.clinic: LiveClinic | None = None
        self.montage: Montage | None = None
        self.fs = 0.0
        self.channels: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._chunk_lock = threading.Lock()
        self._pos = 0
        self._env = np.zeros(0)
        self._cues: list[Cue] = []
        self._last_cue: Cue | None = None
        self._flagged: set[int] = set()
        self._retracted: list[str] = []
        self._reps: tuple[RepResult, ...] = ()
        self._events: tuple[SynkinesisEvent, ...] = ()
        self._preview: Calibrator | None = None
        self._preview_done = 0
        self._rows: tuple[CalibrationRow, ...] = ()
        self._notes: tuple[str, ...] = ()
        self._final = False
        self._rest_mean: np.ndarray | None = None
        self._calibrated_reported = False

    # ---- session thread
    def start(self, chain: Chain, channels: tuple[str, ...],
              annotate: Callable[[Marker], Any] | None = None) -> None:
        """Build the montage and the :class:`LiveClinic` for an opened session (session thread).

        Raises :class:`~emgfeedback.errors.ConfigError` when the channels are not facial regions.
        """
        self.montage = Montage.from_labels(channels, self.affected_side)
        self.fs = chain.fs
        self.channels = tuple(channels)
        self.clinic = LiveClinic(chain, self.montage, self.program,
                                 calibration=self.stored_calibration, on_event=self._on_event,
                                 annotate=annotate, calibration_config=self.calibration_config)
        self._preview = Calibrator(chain.fs, self.montage.names, chain.quality.adc_range_uv,
                                   self.calibration_config, chain.quality.cfg)
        n = len(channels)
        self._env = np.zeros(n)
        self._rows = tuple(CalibrationRow(c, None, None, None, 0) for c in self.montage.names)

    def _on_event(self, kind: str, ev: SynkinesisEvent) -> None:
        names = self.montage.names if self.montage is not None else ()
        if ev.channel in names:
            i = names.index(ev.channel)
            if kind == "raised":
                with self._lock:
                    self._flagged.add(i)
            elif kind in RETRACTED_KINDS:
                with self._lock:
                    self._flagged.discard(i)
                    self._retracted.append(ev.channel)
        if self.on_event is not None:
            self.on_event(kind, ev)

    def feed(self, p: Processed) -> None:
        """The clinical engine first, then the screen state (session thread)."""
        # One chunk at a time as the GUI thread sees it: the detector's state and the position
        # of the snapshot belong to the same chunk.
        with self._chunk_lock:
            self._feed(p)

    def _feed(self, p: Processed) -> None:
        clinic = self.clinic
        assert clinic is not None, "start() the feedback on the opened session first"
        clinic.feed(p)
        preview = self._preview
        if preview is not None and clinic.detector is None:
            preview.feed(p)
            done = sum(1 for s in preview.segments if s.stop <= p.stop)
            if done != self._preview_done:
                self._preview_done = done
                self._update_preview(preview, p.stop)
        det = clinic.detector
        if det is not None and not self._calibrated_reported and clinic.calibration is not None:
            self._calibrated_reported = True
            self._set_final(clinic.calibration)
            if self.on_calibrated is not None:
                self.on_calibrated(clinic.calibration)
        with self._lock:
            for m in p.markers:
                cue = Cue(m.text, m.sample, m.sample + max(m.duration, 0))
                if cue.kind_in(self.program.names()) != "other":
                    self._cues.append(cue)
                    self._last_cue = cue
            self._cues = [c for c in self._cues if c.stop > p.stop]
            self._pos = p.stop
            if len(p):
                env = p.envelope[-1]
                self._env = env - self._rest_mean if self._rest_mean is not None else env.copy()
            if det is not None:
                if len(det.reps) != len(self._reps):
                    self._reps = tuple(det.reps)
                if len(det.events) != len(self._events) or any(
                        a is not b for a, b in zip(det.events, self._events)):
                    self._events = tuple(det.events)  # an event's offset came

    def _update_preview(self, preview: Calibrator, now: int) -> None:
        """Calibration values measured so far, by the clinical calibration (session thread)."""
        rest_env = [np.concatenate(s.envelope) for s in preview.segments
                    if s.kind == "rest" and s.stop <= now and s.envelope]
        if not rest_env:
            return
        try:
            # Regions without MVC trials yet get the automatic estimate from the rest envelope:
            # those values are not shown (mvc_source "auto"); only measured ones are.
            cal = preview.result(fallback_envelope=np.concatenate(rest_env), strict=False)
        except CalibrationError as exc:
            with self._lock:
                self._notes = (str(exc),)
            return
        rows = []
        for i, ch in enumerate(cal.channels):
            measured = cal.mvc_source[i] == "mvc"
            rest_ok = cal.rest_source[i] == "rest"
            rows.append(CalibrationRow(
                ch, float(cal.rest_mean_uv[i]) if rest_ok else None,
                float(cal.rest_sd_uv[i]) if rest_ok else None,
                float(cal.mvc_uv[i]) if measured else None,
                len(cal.mvc_trials_uv[i]) if cal.mvc_trials_uv else 0))
        with self._lock:
            self._rows = tuple(rows)
            self._notes = tuple(n for n in cal.notes if not n.startswith("automatic"))
            if any(r.rest_mean_uv is not None for r in rows):
                self._rest_mean = np.array([r.rest_mean_uv or 0.0 for r in rows])

    def _set_final(self, cal: Calibration) -> None:
        rows = tuple(CalibrationRow(ch, float(cal.rest_mean_uv[i]), float(cal.rest_sd_uv[i]),
                                    float(cal.mvc_uv[i]),
                                    len(cal.mvc_trials_uv[i]) if cal.mvc_trials_uv else 0)
                     for i, ch in enumerate(cal.channels))
        with self._lock:
            self._rows = rows
            self._notes = tuple(cal.notes)
            self._final = True
            self._rest_mean = np.asarray(cal.rest_mean_uv, dtype=np.float64)
        self._preview = None  # its segments are no longer needed

    def close(self) -> None:
        """End of the stream: close open events, finish the reps that started (session thread)."""
        if self.clinic is not None:
            self.clinic.close()
            det = self.clinic.detector
            if det is not None:
                with self._lock:
                    self._reps = tuple(det.reps)
                    self._events = tuple(det.events)

    # ---- any thread
    def calibration_json(self) -> dict[str, Any] | None:
        """The detector's calibration (``Calibration.to_json``), or ``None`` before it exists."""
        clinic = self.clinic
        if clinic is None or clinic.calibration is None or clinic.detector is None:
            return None
        return clinic.calibration.to_json()

    # ---- GUI thread
    def snapshot(self) -> FeedbackSnapshot | None:
        """Copy the current state; clears the flags of events raised since the last snapshot
        (one reader: the window)."""
        clinic = self.clinic
        if clinic is None or self.montage is None:
            return None
        det = clinic.detector
        n = len(self.channels)
        with self._chunk_lock:
            state = det.state() if det is not None else None
        with self._lock:
            running = [c for c in self._cues if c.start <= self._pos]
            cue = running[-1] if running else None
            red = np.zeros(n, dtype=bool)
            if state is not None:
                red |= state.intruding
            for i in self._flagged:
                red[i] = True
            self._flagged.clear()
            retracted = tuple(dict.fromkeys(self._retracted))
            self._retracted.clear()
            exercise = band = None
            role: tuple[str, ...] = ("",) * n
            limit = np.full(n, np.nan)
            if state is not None:
                role = state.role
                if state.exercise is not None:
                    exercise = self.program.find(state.exercise)
                    band = exercise.band_pct_mvc if exercise is not None else None
                quiet = np.isfinite(state.floor_pct_mvc)
                # A quiet region counts as synkinesis above both its activation threshold and
                # the floor (clinical/detect.py): the higher of the two is its limit.
                limit[quiet] = np.maximum(state.threshold_pct_mvc[quiet],
                                          state.floor_pct_mvc[quiet])
            return FeedbackSnapshot(
                position=self._pos, fs=self.fs, channels=self.channels,
                calibrated=state is not None,
                pct=state.pct_mvc if state is not None else np.full(n, np.nan),
                envelope_uv=self._env.copy(),
                threshold_pct=(state.threshold_pct_mvc if state is not None
                               else np.full(n, np.nan)),
                quiet_limit_pct=limit, red=red, role=role, exercise=exercise, band_pct=band,
                cue=cue, last_cue=self._last_cue, calibration=self._rows,
                calibration_final=self._final, calibration_notes=self._notes,
                error=clinic.error, reps=self._reps, events=self._events,
                affected_side=self.montage.affected_side, retracted=retracted,
            )
