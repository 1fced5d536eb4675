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
from emgfeedback.clinical.calibration import Calibration, Calibrator, parse_calibration_marker
from emgfeedback.clinical.detect import Detector, offline_helper
from emgfeedback.clinical.exercises import Program, default_program, load_program
from emgfeedback.clinical.live import LiveClinic
from emgfeedback.clinical.montage import Montage, load_montage
from emgfeedback.clinical.symmetry import symmetry
from emgfeedback.config import Config
from emgfeedback.dsp.chain import Chain
from emgfeedback.errors import CalibrationError
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
                 observe_for: Callable[[Recording], Callable[[], Consumer]] | None = None,
                 **import_options: Any) -> Analysis:
    """Analyse the file at ``path``: ``montage``/``program`` TOML files (default: from the
    labels / the default program), the affected side from ``affected``, else the recording's
    sidecar, else the program; ``import_options`` as :func:`load_for_analysis`, or ``opener``
    opens the file (the CLI's applies ``--patient`` and a BIDS events.tsv beside the file).
    ``observe_for(rec)``: the ``observe`` of :func:`analyze` for the opened recording."""
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
    return analyze(rec, mont, prog, exercise=exercise, calibration=calibration, config=cfg,
                   observe=observe_for(rec) if observe_for is not None else None)


#: Offline block size: seconds of signal per chunk handed through the pipeline by
#: :func:`analyze` (the chain, quality and detector are chunk-invariant, so the events are the
#: same, to the sample, as with the live 10 ms chunks; large blocks leave the work to the
#: compiled kernels).  8 s: the detector cuts a chunk into blocks of MAX_BLOCK samples (4 at
#: 2 kHz) and its helper thread computes their artefact flags ahead of them, the next chunk's
#: queued behind this one's (Detector.feed's ``ahead``); the pipeline holds at most four chunks
#: (about 3 MB each at 8 x 2 kHz).
OFFLINE_BLOCK_S = 8.0

#: At most this much signal is held while the calibration segments finish after the first rep's
#: marker (a longer wait falls back to two passes).
MAX_HELD_S = 60.0


class _TwoPasses(Exception):
    """The single pass cannot give the two-pass result (raised and caught inside analyze)."""


class _OnePass:
    """Calibration, then detection, in one pass over the recording (what a live session does).

    The calibrator is fed every chunk, as the calibration pass of :func:`analyze` does; chunks
    from the first rep's marker on are held until every calibration segment of the file is
    complete, then the calibration is computed (without the automatic fallback: if it is needed,
    :class:`_TwoPasses` is raised) and a :class:`LiveClinic` with it is fed the held chunks and
    every later one, exactly as the detection pass feeds it."""

    def __init__(self, calib: Calibrator, n_segments: int, program: Program, strict: bool,
                 make_clinic: Callable[[Calibration], LiveClinic], max_held: int) -> None:
        self.calib = calib
        self.n_segments = n_segments
        self.program = program
        self.strict = strict
        self.make_clinic = make_clinic
        self.max_held = max_held
        self.clinic: LiveClinic | None = None
        self.cal: Calibration | None = None
        self.held: list[Processed] = []
        self._held_n = 0

    def _calibration(self) -> Calibration:
        try:
            return self.calib.result(None, strict=self.strict)
        except CalibrationError:
            raise _TwoPasses() from None  # the fallback envelope (or the same error) is needed

    def start_clinic(self) -> None:
        """Calibrate now and feed the held chunks to a new clinic."""
        self.cal = self._calibration()
        self.clinic = self.make_clinic(self.cal)
        held, self.held = self.held, []
        for q in held:
            self.clinic.feed(q)

    def feed(self, p: Processed) -> None:
        self.feed_ahead(p, None)

    def feed_ahead(self, p: Processed, nxt: Processed | None) -> None:
        if self.clinic is not None:
            self.clinic.feed_ahead(p, nxt)
            return
        self.calib.feed(p)
        if self.held or any(self.program.find(m.text) is not None for m in p.markers):
            self.held.append(p)
            self._held_n += len(p)
            if len(self.calib.segments) == self.n_segments and self.calib.complete:
                self.start_clinic()
            elif self._held_n > self.max_held:
                raise _TwoPasses()

    def close(self) -> None:
        if self.clinic is not None:
            self.clinic.close()


def analyze(
    rec: Recording,
    montage: Montage | None = None,
    program: Program | None = None,
    exercise: str | None = None,
    calibration: str | Calibration = "annotations",
    config: Config | None = None,
    chunk_size: int | None = None,
    strict: bool = True,
    observe: Callable[[], Consumer] | None = None,
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
        Samples per chunk through the pipeline (default :data:`OFFLINE_BLOCK_S` seconds); the
        result does not depend on it (tests/test_offline.py).
    observe:
        Makes a consumer that is fed every processed chunk of a pass over the file, after the
        analysis' own consumer (one per pass; the last one made has seen the whole file): the
        report collects its envelopes from the analysis' pass instead of running the chain again.

    One pass over the file when the calibration segments end before the detection needs them
    (a live session's order) or a calibration is given; otherwise a calibration pass (which
    keeps the whole envelope for the automatic fallback) and a detection pass.  Memory is flat
    in the file's duration in the one-pass case: the file is read block by block.
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
    block = chunk_size if chunk_size is not None else int(round(OFFLINE_BLOCK_S * rec.fs))
    block_ms = 1000.0 * max(1, block) / rec.fs

    def run(make_consumer: Callable[[Chain], Consumer]) -> Pipeline:
        """One pass of the live pipeline: the recording replayed as fast as possible through a
        pipeline, with the consumer ``make_consumer(chain)`` (closed at the end)."""
        # the calibrator and the detector read no quality snapshot: no quality meter
        pipeline = Pipeline(ReplaySource(rec, speed=None, block_ms=block_ms, markers=markers),
                            cfg, measure_quality=False)
        chain = pipeline.open()
        pipeline.add(make_consumer(chain))
        if observe is not None:
            pipeline.add(observe())
        pipeline.run_ahead()  # reading and the chain one block ahead, on the second core
        return pipeline

    clinics: list[LiveClinic] = []

    def make_clinic(chain: Chain, cal: Calibration) -> LiveClinic:
        clinics.append(LiveClinic(chain, montage, program, calibration=cal))
        return clinics[-1]

    def finish(chain: Chain, cal: Calibration) -> Analysis:
        # the pipeline closed the clinic: open events and reps ended
        det = (clinics[-1].detector if clinics else None) or Detector.for_chain(
            chain, montage, cal, program)  # no reps
        sym = symmetry(det.reps, montage.affected_side, rec.fs)
        return Analysis(rec, montage, program, cal, det.events, det.reps, sym,
                        det.unknown_annotations, chain.delay_ms, chain.mains, det.all_events)

    if isinstance(calibration, Calibration):
        pl = run(lambda chain: make_clinic(chain, calibration))
        assert pl.chain is not None
        return finish(pl.chain, calibration)
    if calibration not in ("annotations", "auto"):
        raise ValueError(f"calibration must be 'annotations', 'auto' or a Calibration, "
                         f"got {calibration!r}")

    def calibrator() -> Calibrator:
        # A long recording's segments are judged on the detector's helper thread as they end
        # (idle until the detector starts), while the pass goes on; a short one's end with the
        # file, and a thread would only wait for them.
        long = rec.n_samples > int(MAX_HELD_S * rec.fs)
        return Calibrator(rec.fs, names, rec.rails_uv, cfg.calibration, cfg.quality,
                          executor=offline_helper() if long else None)

    parsed: list[tuple[str, str | None] | None] = []
    if calibration == "annotations":
        given = rec.markers if markers is None else markers
        parsed = [parse_calibration_marker(m.text) for m in given if m.duration > 0]
    # Without a rest segment the one pass always needs the automatic baseline (the whole
    # envelope): it is not tried (a recording without calibration, e.g. the 10 s start-up file).
    if any(c is not None and c[0] == "rest" for c in parsed):
        n_segments = sum(1 for c in parsed if c is not None)
        one: list[_OnePass] = []

        def make_one(chain: Chain) -> _OnePass:
            one.append(_OnePass(calibrator(), n_segments, program, strict,
                                lambda cal: make_clinic(chain, cal),
                                int(MAX_HELD_S * rec.fs)))
            return one[0]

        try:
            pl = run(make_one)
            assert pl.chain is not None
            op = one[0]
            if op.clinic is None and op.held:  # the file ended before a segment did
                op.start_clinic()
                assert op.clinic is not None
                op.clinic.close()
            cal = op.cal if op.cal is not None else op._calibration()
            if _fallback_would_fail(pl.samples, rec.fs, cfg):
                raise _TwoPasses()
            return finish(pl.chain, cal)
        except _TwoPasses:
            log.debug("%s: calibration pass, then detection pass", rec.path)
            clinics.clear()
    calib = calibrator()
    envelopes: list[np.ndarray] = []
    # A recording of at most MAX_HELD_S is processed once: the calibration pass keeps its
    # chunks, and the detection is fed them (as the one pass feeds its held chunks) instead of a
    # second pass computing the same chunks again.
    held: list[Processed] | None = [] if rec.n_samples <= int(MAX_HELD_S * rec.fs) else None

    class _Collect:
        def feed(self, p: Processed) -> None:
            envelopes.append(p.envelope.astype(np.float32))
            if calibration == "annotations":
                calib.feed(p)
            if held is not None:
                held.append(p)

        def close(self) -> None:
            pass

    first = run(lambda chain: _Collect())
    env = (np.concatenate(envelopes) if envelopes
           else np.zeros((0, len(names)), dtype=np.float32))
    envelopes.clear()
    cal = calib.result(fallback_envelope=env, strict=strict)
    del env
    # Detection exactly as live: the detector starts at the first rep's marker
    # (clinical.live.LiveClinic), so analysing a recording gives the events raised live.
    if held is not None and first.chain is not None:
        clinic = make_clinic(first.chain, cal)
        for q in held:
            clinic.feed(q)
        held.clear()
        clinic.close()
        return finish(first.chain, cal)
    pl = run(lambda chain: make_clinic(chain, cal))
    assert pl.chain is not None
    return finish(pl.chain, cal)


def _fallback_would_fail(n: int, fs: float, cfg: Config) -> bool:
    """True when the two-pass calibration's automatic estimate, computed from ``n`` envelope
    samples whether needed or not, would refuse the recording as too short (tiny files only)."""
    c = cfg.calibration
    skip = int(round(c.auto_settle_s * fs))
    w = max(2, int(round(c.auto_window_ms * fs / 1000.0)))
    m = n - skip if n > skip + fs else n
    return 0 < m < w
