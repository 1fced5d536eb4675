"""Offline analysis of a recording: calibration, reps, synkinesis events, symmetry -> JSON.

:func:`analyze` runs the recording through the same causal :class:`~emgfeedback.dsp.chain.Chain`
and the same :class:`~emgfeedback.clinical.detect.Detector` as a live session, so its events are
the ones the live feedback raised (docs/analysis.md documents the JSON schema and the annotation
vocabulary).  Files are read by :func:`load_for_analysis`, the one place that knows file formats.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.clinical.calibration import Calibration, CalibrationConfig, Calibrator
from emgfeedback.clinical.detect import Detector, RepResult, SynkinesisEvent
from emgfeedback.clinical.exercises import Program, default_program
from emgfeedback.clinical.montage import Montage
from emgfeedback.vocabulary import short_label
from emgfeedback.clinical.symmetry import symmetry
from emgfeedback.config import Config
from emgfeedback.dsp.chain import Chain
from emgfeedback.stream import Marker, Processed
from emgfeedback.errors import FileFormatError
from emgfeedback.recording import Recording

__all__ = ["Analysis", "analyze", "format_table", "load_for_analysis"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def load_for_analysis(path: str | Path, **options: Any) -> Recording:
    """Open any file emgfeedback reads (EDF+/BDF+, CSV, OpenBCI, BrainFlow, BIOPAC, OpenSignals)
    for :func:`analyze`; ``options`` go to :func:`emgfeedback.io.importers.load` (``fs``,
    ``unit``, ``board``)."""
    from emgfeedback.io.importers import load

    return load(path, **options)


@dataclass
class Analysis:
    """Result of :func:`analyze`: the objects and their JSON (:meth:`to_json`)."""

    recording: Recording
    montage: Montage
    program: Program
    calibration: Calibration
    events: list[SynkinesisEvent]
    reps: list[RepResult]
    symmetry: list[dict[str, Any]]
    unknown_annotations: list[tuple[int, str]] = field(default_factory=list)
    delay_ms: float = 0.0
    mains: int | None = None

    def to_json(self) -> dict[str, Any]:
        fs = self.recording.fs
        return {
            "version": SCHEMA_VERSION,
            "file": str(self.recording.path),
            "fs": fs,
            "duration_s": round(self.recording.n_samples / fs, 4),
            "channels": list(self.montage.names),
            "affected_side": self.montage.affected_side,
            "program": self.program.name,
            "mains_hz": self.mains,
            "envelope_delay_ms": round(self.delay_ms, 2),
            "detection": dataclasses.asdict(self.program.detection),
            "calibration": self.calibration.to_json(),
            "calibration_notes": list(self.calibration.notes),
            "reps": [r.to_json(fs) for r in self.reps],
            "events": [e.to_json(fs) for e in self.events],
            "symmetry": self.symmetry,
            "unknown_annotations": [{"onset_s": round(s / fs, 4), "text": t}
                                    for s, t in self.unknown_annotations],
        }


def analyze(
    rec: Recording,
    montage: Montage | None = None,
    program: Program | None = None,
    exercise: str | None = None,
    calibration: str | Calibration = "annotations",
    config: Config | None = None,
    chunk_size: int = 1000,
    strict: bool = True,
) -> Analysis:
    """Analyse a whole recording.

    Parameters
    ----------
    rec:
        The recording (:func:`load_for_analysis`).
    montage:
        Default: from the channel labels; its affected side, else the program's.
    program:
        Default: the shipped default program.
    exercise:
        When the whole file is one exercise without annotations: treat it as one rep of this
        exercise (file annotations that are exercises are then ignored).
    calibration:
        ``"annotations"`` (``rest``/``mvc`` segments, automatic fallback where missing; a
        refused segment raises :class:`~emgfeedback.errors.CalibrationError`), ``"auto"``
        (automatic estimate only), or a stored :class:`Calibration`.
    chunk_size:
        Chunk size fed to the detector (results do not depend on it).
    """
    cfg = config or Config()
    program = program or default_program(cfg.detection)
    montage = montage or Montage.from_labels(rec.channels)
    if montage.affected_side is None and program.affected_side is not None:
        montage = montage.with_affected(program.affected_side)
    if exercise is not None:
        program.exercise(exercise)  # clear error for an unknown name
    names = montage.names
    markers: list[Marker] | None = None  # the file's own annotations
    if exercise is not None:
        markers = [m for m in rec.markers if program.find(m.text) is None]
        markers.append(Marker(0, rec.n_samples, exercise))
    block_ms = 1000.0 * max(1, chunk_size) / rec.fs

    def run(make_consumer: Any) -> Chain:
        """One pass of the live pipeline: the recording replayed as fast as possible through a
        session, with the consumer ``make_consumer(chain)``."""
        from emgfeedback.session import Session
        from emgfeedback.sources.replay import ReplaySource

        session = Session(ReplaySource(rec, speed=None, block_ms=block_ms, markers=markers), cfg)
        chain = session.open()
        session.add(make_consumer(chain))
        session.run()
        return chain

    if isinstance(calibration, Calibration):
        cal = calibration
    else:
        if calibration not in ("annotations", "auto"):
            raise ValueError(f"calibration must be 'annotations', 'auto' or a Calibration, "
                             f"got {calibration!r}")
        calib = Calibrator(rec.fs, names, rec.rails_uv, cfg.calibration, cfg.quality)
        envelopes: list[np.ndarray] = []

        class _Collect:
            def feed(self, p: Processed) -> None:
                envelopes.append(p.envelope.astype(np.float32))
                if calibration == "annotations":
                    calib.feed(p)

        run(lambda chain: _Collect())
        env = (np.concatenate(envelopes) if envelopes
               else np.zeros((0, len(names)), dtype=np.float32))
        cal = calib.result(fallback_envelope=env, strict=strict)
    # Detection exactly as live: the detector starts at the first rep's marker
    # (clinical.live.LiveClinic), so analysing a recording gives the events raised live.
    from emgfeedback.clinical.live import LiveClinic

    clinics: list[LiveClinic] = []

    def make_clinic(chain: Chain) -> LiveClinic:
        clinics.append(LiveClinic(chain, montage, program, calibration=cal))
        return clinics[0]

    chain = run(make_clinic)
    clinics[0].close()
    det = clinics[0].detector or Detector.for_chain(chain, montage, cal, program)  # no reps
    sym = symmetry(det.reps, montage.affected_side, rec.fs)
    return Analysis(rec, montage, program, cal, det.events, det.reps, sym,
                    det.unknown_annotations, chain.delay_ms, chain.mains)


def format_table(a: Analysis) -> str:
    """A readable summary for the terminal."""
    fs = a.recording.fs
    lines = [f"{a.recording.path or 'recording'}: {a.recording.n_samples / fs:.1f} s at "
             f"{fs:g} Hz, channels {', '.join(a.montage.names)}, affected side "
             f"{a.montage.affected_side or 'unknown'}"]
    src = sorted(set(a.calibration.rest_source) | set(a.calibration.mvc_source))
    lines.append(f"calibration: {', '.join(src)}")
    for note in a.calibration.notes:
        lines.append(f"  note: {note}")
    lines.append("")
    lines.append(f"{'rep':>4} {'exercise':<18} {'side':<4} {'onset s':>8} {'target':<6} "
                 f"{'peak %':>7} {'in band s':>9} {'isol':>5}  cocontraction %  synk")
    for r in a.reps:
        coc = " ".join(f"{short_label(k)}={v:.0f}" for k, v in r.cocontraction.items())
        lines.append(f"{r.rep:>4} {r.exercise:<18} {r.side:<4} {r.start / fs:>8.2f} "
                     f"{r.target:<6} {r.target_peak_pct_mvc:>7.1f} {r.time_in_band_s:>9.2f} "
                     f"{r.isolation:>5.2f}  {coc:<15}  {'YES' if r.synkinesis else '-'}")
    lines.append("")
    lines.append(f"{len(a.events)} synkinesis event(s)")
    for e in a.events:
        off = "open" if e.offset is None else f"{e.offset / fs:.2f}"
        lines.append(f"  {e.channel} during {e.exercise} ({e.trigger}): onset {e.onset / fs:.2f} s,"
                     f" alert {e.alert / fs:.2f} s, offset {off} s, peak {e.peak_pct_mvc:.0f} %MVC")
    if a.symmetry:
        lines.append("")
        lines.append("symmetry (affected / unaffected target %MVC):")
        for s in a.symmetry:
            ratio = "n/a" if s["ratio"] is None else f"{s['ratio']:.2f}"
            lines.append(f"  rep {s['rep']:>3} {s['exercise']:<18} L {s['left_pct_mvc']:6.1f}  "
                         f"R {s['right_pct_mvc']:6.1f}  ratio {ratio}")
    return "\n".join(lines)
