"""Detected events against the simulator's ground truth (sources/truth.py): per class matching,
false synkinesis blamed on what it falls on, for the detector without event classes (every event
a synkinesis, no ``type``) and with them (``type``, ``alert`` None, ``retracted``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from emgfeedback.sources.facesim import ModelParams, Truth, apply_confounders
from emgfeedback.sources.truth import BLAME, Detected, Evaluation, as_detected, evaluate

FS = 1000.0


@dataclass(frozen=True)
class OldEvent:
    """An event of the detector without classes (no ``type``, ``retracted``)."""

    channel: str
    onset: int
    alert: int
    offset: int | None
    rep: int = 0


@dataclass(frozen=True)
class NewEvent:
    """An event of the detector with classes."""

    channel: str
    onset: int
    alert: int | None
    offset: int | None
    type: str = "synkinesis"
    rep: int = 0
    retracted: bool = False


TRUTH = [
    Truth("synkinesis", "L-OOC", 10_000, 12_000, 30.0, trigger="L-ZYG", rep=1),
    Truth("synkinesis", "L-OOC", 20_000, 22_500, 30.0, trigger="L-ZYG", rep=2),
    Truth("blink", "L-OOC", 30_500, 30_620, 40.0, rep=3),
    Truth("blink", "R-OOC", 30_500, 30_620, 40.0, rep=3),
    Truth("blink", "L-OOC", 33_000, 33_150, 40.0),  # outside reps: not scored as a blink
    Truth("motion", "L-ZYG", 40_000, 40_600, 900.0),
    Truth("pop", "R-OOR", 50_000, 51_000, 500.0, detail="tau=0.2"),
    Truth("electrode_off", "L-FRO", 60_000, 68_000, 3000.0, detail="rail"),
    Truth("gap", "", 70_000, 70_100),
    Truth("crosstalk", "L-OOR", 80_000, 82_000, 8.0, trigger="L-ZYG"),
]


def test_old_detector_events_synkinesis_only() -> None:
    det = [
        OldEvent("L-OOC", 10_012, 10_080, 11_900),  # TP, onset +12 ms, alert 80 ms
        OldEvent("L-OOC", 9_800, 9_900, 12_100),  # second detection of the first: duplicate
        OldEvent("L-OOC", 20_400, 20_500, 22_000),  # TP (late onset, within the event)
        OldEvent("L-OOC", 30_510, 30_560, 30_640),  # on a blink
        OldEvent("L-ZYG", 40_700, 40_750, 40_900),  # ringing after a motion artefact
        OldEvent("R-OOR", 50_100, 50_200, 50_400),  # on a pop
        OldEvent("L-FRO", 61_000, 61_050, 61_600),  # electrode off
        OldEvent("R-ZYG", 70_200, 70_250, 70_500),  # just after a gap
        OldEvent("L-OOR", 80_500, 80_550, 81_000),  # crosstalk
        OldEvent("R-FRO", 90_000, 90_050, 90_500),  # nothing there
    ]
    ev = evaluate(det, TRUTH, FS)
    s = ev.synkinesis
    assert (s.tp, s.fp, s.fn) == (2, 8, 0)
    assert ev.false_synkinesis == {"electrode_off": 1, "artefact": 2, "blink": 1, "gap": 1,
                                   "duplicate": 1, "crosstalk": 1, "other": 1}
    assert ev.false_on_confounders == 4
    assert s.onset_err_s == pytest.approx([0.012, 0.4]) and s.latency_s == pytest.approx(
        [0.08, 0.5])
    assert s.median_abs_onset_ms == pytest.approx(206.0) and s.f1 == pytest.approx(4 / 12)
    # No blink or artefact class in that detector: everything there is missed.
    assert (ev.blink.tp, ev.blink.fn, ev.blink.fp) == (0, 2, 0) and ev.blink.f1 == 0.0
    assert (ev.artefact.tp, ev.artefact.fn, ev.artefact.fp) == (0, 3, 0)
    assert ev.truth_counts["blink"] == 3 and ev.retracted == 0


def test_detector_with_event_classes() -> None:
    det = [
        NewEvent("L-OOC", 10_010, 10_070, 11_950),
        NewEvent("L-OOC", 20_020, 20_090, 22_400),
        # The blink, on both sides: one retracted alert, one plain blink; a blink outside reps.
        NewEvent("L-OOC", 30_505, 30_560, 30_630, "blink", rep=3, retracted=True),
        NewEvent("R-OOC", 30_530, None, 30_640, "blink", rep=3),
        NewEvent("L-OOC", 33_010, None, 33_140, "blink", rep=-1),
        NewEvent("L-ZYG", 40_010, None, 40_900, "artefact", rep=-1),
        NewEvent("L-FRO", 60_020, None, 68_000, "artefact", rep=-1),
        NewEvent("R-ZYG", 70_100, None, 70_300, "artefact", rep=-1),  # restart after a gap
        NewEvent("R-FRO", 95_000, None, 95_300, "artefact", rep=-1),  # nothing there: false
    ]
    ev = evaluate(det, TRUTH, FS)
    assert (ev.synkinesis.tp, ev.synkinesis.fp, ev.synkinesis.fn) == (2, 0, 0)
    assert ev.false_on_confounders == 0 and sum(ev.false_synkinesis.values()) == 0
    assert (ev.blink.tp, ev.blink.fp, ev.blink.fn) == (2, 0, 0) and ev.blink.f1 == 1.0
    assert ev.blink.onset_err_s == pytest.approx([0.005, 0.03])
    assert (ev.artefact.tp, ev.artefact.fn, ev.artefact.fp) == (2, 1, 1)  # the pop missed
    assert ev.artefact.f1 == pytest.approx(4 / 6)
    assert ev.retracted == 1
    # Blinks in reps detected as synkinesis by such a detector are false, blamed on blinks.
    ev2 = evaluate([NewEvent("R-OOC", 30_520, 30_600, 30_700)], TRUTH, FS)
    assert ev2.false_synkinesis["blink"] == 1 and ev2.blink.fn == 2


def test_synkinesis_under_an_electrode_off_is_not_scored() -> None:
    truth = [*TRUTH, Truth("synkinesis", "L-FRO", 62_000, 64_000, 30.0, trigger="L-OOC", rep=4),
             Truth("synkinesis", "L-OOC", 65_000, 67_000, 30.0, trigger="L-FRO", rep=5)]
    ev = evaluate([OldEvent("L-FRO", 62_050, 62_100, 63_900)], truth, FS)
    assert ev.unobservable == 2 and ev.synkinesis.n_truth == 2
    assert ev.false_synkinesis["electrode_off"] == 1  # a detection there is the electrode's
    # the part before the electrode went off is seen: a detection of it is left out with the
    # unobservable event, neither true nor false
    early = [*truth, Truth("synkinesis", "L-FRO", 58_500, 61_000, 30.0, trigger="L-OOC", rep=3)]
    ev_early = evaluate([OldEvent("L-FRO", 58_520, 58_600, 60_010)], early, FS)
    assert ev_early.unobservable == 3 and ev_early.synkinesis.fp == 0
    assert sum(ev_early.false_synkinesis.values()) == 0
    total = Evaluation.empty()
    total += ev
    total += ev
    assert total.unobservable == 4


def test_normalised_events_and_sums() -> None:
    d = as_detected(OldEvent("L-OOC", 1, 2, None, rep=3))
    assert d == Detected("synkinesis", "L-OOC", 1, None, 2, 3, False) and d.end == 1
    assert as_detected(d) is d
    total = Evaluation.empty()
    assert total.runs == 0 and set(total.false_synkinesis) == set(BLAME)
    one = evaluate([OldEvent("R-FRO", 90_000, 90_050, 90_500)], TRUTH, FS)
    total += one
    total += evaluate([], TRUTH, FS)
    assert total.runs == 2 and total.synkinesis.fn == 4 and total.synkinesis.fp == 1
    assert total.false_synkinesis["other"] == 1 and total.truth_counts["synkinesis"] == 4
    empty = evaluate([], [], FS)
    assert empty.synkinesis.f1 == 1.0 and empty.synkinesis.median_latency_ms == 0.0


def test_simulated_session_scored_end_to_end() -> None:
    """The harness on a real analysis: counts consistent with the script's ground truth."""
    from emgfeedback.app.evaluate import simulate_and_evaluate
    from emgfeedback.sources.simulated import SimulatedSource

    p = apply_confounders(ModelParams(), "blinks,pops")
    a, ev = simulate_and_evaluate("session", 150.0, 23, p)
    assert a is not None and ev.refused == 0 and ev.runs == 1
    script = SimulatedSource("session", 150.0, 23, speed=None, params=p).script
    assert ev.synkinesis.n_truth == len(script.events) >= 2
    assert ev.blink.n_truth == sum(1 for t in script.of_kind("blink") if t.rep >= 1) >= 2
    assert ev.artefact.n_truth == len(script.of_kind("pop"))
    assert sum(ev.false_synkinesis.values()) == ev.synkinesis.fp
    assert ev.synkinesis.tp + ev.synkinesis.fp == sum(
        1 for e in (getattr(a, "all_events", None) or a.events)
        if getattr(e, "type", "synkinesis") == "synkinesis")
    assert len(ev.synkinesis.latency_s) == ev.synkinesis.tp


def test_refused_calibration_is_a_run_with_no_detection(monkeypatch) -> None:
    from emgfeedback.app import evaluate as E
    from emgfeedback.errors import CalibrationError

    def refuse(*args, **kwargs):
        raise CalibrationError("calibration refused: heavy mains")

    monkeypatch.setattr(E, "analyze", refuse)
    a, ev = E.simulate_and_evaluate("smile-synkinesis", 120.0, 23, ModelParams())
    assert a is None and ev.refused == 1
    assert ev.synkinesis.tp == 0 and ev.synkinesis.fn >= 1
