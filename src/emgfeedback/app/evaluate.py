"""Simulate, analyse and score against the simulator's ground truth (tests, bench).

The scoring itself is ``sources/truth.py`` (one matcher for every caller): a detected event
matches a planted one (:class:`~emgfeedback.sources.facesim.TruthEvent`) when it is on the same
channel and its estimated onset lies between ``tolerance_s`` before the true onset and the true
offset; each planted event matches at most one detection (closest onset first).  Reported:
precision, recall, F1, the median |onset error| and the median alert latency (alert sample −
true onset) over matched events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace


from emgfeedback.app.analyze import analyze
from emgfeedback.clinical.analysis import Analysis
from emgfeedback.clinical.calibration import Calibration
from emgfeedback.clinical.detect import SynkinesisEvent
from emgfeedback.clinical.exercises import Program
from emgfeedback.recording import Recording
from emgfeedback.errors import CalibrationError
from emgfeedback.sources.facesim import ModelParams, TruthEvent
from emgfeedback.sources.truth import ClassScore, Evaluation, match_synkinesis

__all__ = ["Score", "match_events", "patient_calibration", "simulate_and_analyze",
           "simulate_and_evaluate", "simulated_recording"]



#: The scores of one event class: the truth matcher's (``sources.truth.ClassScore``), one class.
Score = ClassScore


def match_events(detected: Sequence[SynkinesisEvent], truth: Iterable[TruthEvent], fs: float,
                 tolerance_s: float = 0.25) -> Score:
    """Score one run's synkinesis events against the planted ones: the truth matcher's
    (:func:`emgfeedback.sources.truth.match_synkinesis`) counts and timing errors."""
    return match_synkinesis(detected, list(truth), fs, tolerance_s)[0]


def simulated_recording(scenario: str, duration: float, seed: int,
                        params: ModelParams | None = None) -> tuple[Recording, list[TruthEvent]]:
    """A simulated recording with its cue annotations, and the planted events."""
    from emgfeedback.sources.simulated import SimulatedSource

    src = SimulatedSource(scenario, duration, seed, speed=None, params=params)
    with src:
        rec = src.recording()
    return rec, list(src.script.events)


def patient_calibration(seed: int, params: ModelParams | None = None) -> Calibration:
    """Calibration of simulated patient ``seed`` from the rest and MVC part of its ``session``
    scenario (the simulated patient's electrodes, noise and MVCs depend on the seed and the
    parameters only, not on the scenario): what a clinic stores and reuses for the exercise
    recordings of the same sitting."""
    from emgfeedback.sources.facesim import calibration_s

    sim = replace(params or ModelParams(), calibration=True)
    rec, _ = simulated_recording("session", calibration_s(sim) + 2.0, seed, sim)
    from emgfeedback.clinical.calibration import Calibrator
    from emgfeedback.dsp.chain import Chain
    from emgfeedback.stream import finite_parts

    chain = Chain(rec.fs, len(rec.channels), adc_range_uv=rec.rails_uv)
    cal = Calibrator(rec.fs, rec.channels, rec.rails_uv)
    for part in finite_parts(rec.to_chunk()):  # missing samples are gaps
        cal.feed(chain.process(part))
    return cal.result()


def simulate_and_analyze(scenario: str, duration: float, seed: int,
                         params: ModelParams | None = None, program: Program | None = None,
                         calibration: str | Calibration = "annotations"
                         ) -> tuple[Analysis, Score]:
    """Simulate, analyse (affected side from ``params``) and score one run.

    ``calibration``: ``"annotations"``, ``"auto"``, ``"patient"`` (:func:`patient_calibration`
    of the same seed) or a :class:`Calibration`.
    """
    from emgfeedback.clinical.montage import Montage

    p = params or ModelParams()
    rec, truth = simulated_recording(scenario, duration, seed, p)
    montage = Montage.from_labels(rec.channels, p.affected_side)
    if calibration == "patient":
        calibration = patient_calibration(seed, p)
    a = analyze(rec, montage, program, calibration=calibration)
    return a, match_events(a.events, truth, rec.fs)


def simulate_and_evaluate(scenario: str, duration: float, seed: int,
                          params: ModelParams | None = None, program: Program | None = None,
                          calibration: str | Calibration = "annotations"
                          ) -> tuple[Analysis | None, Evaluation]:
    """Simulate, analyse and score every event class against the script's ground truth
    (:func:`emgfeedback.sources.truth.evaluate`): the detector's events of every class
    (``all_events`` where the detector has classes, else ``events``).  A refused calibration
    gives ``None`` and a run scored with no detections (``Evaluation.refused``)."""
    from emgfeedback.clinical.montage import Montage
    from emgfeedback.sources.simulated import SimulatedSource
    from emgfeedback.sources.truth import evaluate

    p = params or ModelParams()
    src = SimulatedSource(scenario, duration, seed, speed=None, params=p)
    with src:
        rec = src.recording()
    try:
        if calibration == "patient":
            calibration = patient_calibration(seed, p)
        a = analyze(rec, Montage.from_labels(rec.channels, p.affected_side), program,
                    calibration=calibration)
    except CalibrationError:
        ev = evaluate([], src.script.truth, rec.fs)
        ev.refused = 1
        return None, ev
    detected = getattr(a, "all_events", None) or a.events
    return a, evaluate(detected, src.script.truth, rec.fs)
