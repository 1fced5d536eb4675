"""Offline analysis: a recording replayed through the live pipeline -> :class:`Analysis`.

:func:`analyze` runs the recording through the same :class:`~emgfeedback.app.pipeline.Pipeline`
(``ReplaySource`` -> causal ``Chain`` -> consumers) and the same
:class:`~emgfeedback.clinical.live.LiveClinic` as a live session, so its events are the ones the
live feedback raised.  :func:`analyze_file` is what ``emgfeedback analyze`` and
``emgfeedback replay --json`` (and the GUI after a recording) call: file, montage, program and
affected side resolved the same way for all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.app.pipeline import Consumer, Pipeline
from emgfeedback.clinical.analysis import Analysis
from emgfeedback.clinical.calibration import Calibration, Calibrator
from emgfeedback.clinical.detect import Detector
from emgfeedback.clinical.exercises import Program, default_program, load_program
from emgfeedback.clinical.live import LiveClinic
from emgfeedback.clinical.montage import Montage, load_montage
from emgfeedback.clinical.symmetry import symmetry
from emgfeedback.config import Config
from emgfeedback.dsp.chain import Chain
from emgfeedback.recording import Recording
from emgfeedback.sources.replay import ReplaySource
from emgfeedback.stream import Marker, Processed

__all__ = ["analyze", "analyze_file", "load_for_analysis"]

log = logging.getLogger(__name__)


def load_for_analysis(path: str | Path, **options: Any) -> Recording:
    """Open any file emgfeedback reads (EDF+/BDF+, CSV, OpenBCI, BrainFlow, BIOPAC, OpenSignals)
    for :func:`analyze`; ``options`` go to :func:`emgfeedback.io.importers.load` (``fs``,
    ``unit``, ``board``)."""
    from emgfeedback.io.importers import load

    return load(path, **options)


def analyze_file(path: str | Path, *, montage: str | Path | None = None,
                 program: str | Path | Program | None = None, exercise: str | None = None,
                 affected: str | None = None, calibration: str | Calibration = "annotations",
                 config: Config | None = None,
                 opener: Callable[[Path], Recording] | None = None,
                 **import_options: Any) -> Analysis:
    """Analyse the file at ``path``: ``montage``/``program`` TOML files (default: from the
    labels / the default program), the affected side from ``affected``, else the recording's
    sidecar, else the program; ``import_options`` as :func:`load_for_analysis`, or ``opener``
    opens the file (the CLI's applies ``--patient`` and a BIDS events.tsv beside the file)."""
    from emgfeedback.io.edf.sidecar import sidecar_affected_side

    cfg = config or Config()
    rec = opener(Path(path)) if opener is not None else load_for_analysis(path, **import_options)
    if isinstance(program, Program):
        prog = program
    else:
        prog = (load_program(program, cfg.detection) if program
                else default_program(cfg.detection))
    # The side the recording's sidecar states wins over the program's default.
    side = affected or sidecar_affected_side(rec.sidecar or {}) or prog.affected_side
    mont = (load_montage(montage, rec.channels, side) if montage
            else Montage.from_labels(rec.channels, side))
    return analyze(rec, mont, prog, exercise=exercise, calibration=calibration, config=cfg)


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

    def run(make_consumer: Callable[[Chain], Consumer]) -> Chain:
        """One pass of the live pipeline: the recording replayed as fast as possible through a
        pipeline, with the consumer ``make_consumer(chain)`` (closed at the end)."""
        pipeline = Pipeline(ReplaySource(rec, speed=None, block_ms=block_ms, markers=markers),
                            cfg)
        chain = pipeline.open()
        pipeline.add(make_consumer(chain))
        pipeline.run()
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

            def close(self) -> None:
                pass

        run(lambda chain: _Collect())
        env = (np.concatenate(envelopes) if envelopes
               else np.zeros((0, len(names)), dtype=np.float32))
        cal = calib.result(fallback_envelope=env, strict=strict)
    # Detection exactly as live: the detector starts at the first rep's marker
    # (clinical.live.LiveClinic), so analysing a recording gives the events raised live.
    clinics: list[LiveClinic] = []

    def make_clinic(chain: Chain) -> LiveClinic:
        clinics.append(LiveClinic(chain, montage, program, calibration=cal))
        return clinics[0]

    chain = run(make_clinic)  # the pipeline closed the clinic: open events and reps ended
    det = clinics[0].detector or Detector.for_chain(chain, montage, cal, program)  # no reps
    sym = symmetry(det.reps, montage.affected_side, rec.fs)
    return Analysis(rec, montage, program, cal, det.events, det.reps, sym,
                    det.unknown_annotations, chain.delay_ms, chain.mains, det.all_events)
