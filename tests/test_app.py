"""The orchestrator (emgfeedback.app): one SessionSpec -> source -> chain -> consumers, in the
calling thread or a worker; recording by design; every consumer closed; replay raises the live
events; the console gets the program's cues."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from emgfeedback.app.pipeline import Pipeline, RecordingGrid
from emgfeedback.app.session import Session, SessionSpec
from emgfeedback.errors import ConfigError, SourceError
from emgfeedback.sources.facesim import ModelParams
from emgfeedback.sources.simulated import SimulatedSource
from emgfeedback.stream import Chunk, Processed, SourceBase

from _sources import NoCues


class Probe:
    """A consumer that counts what it is fed and whether it was closed."""

    def __init__(self) -> None:
        self.samples = 0
        self.markers: list[str] = []
        self.closed = 0

    def feed(self, p: Processed) -> None:
        self.samples += len(p)
        self.markers += [m.text for m in p.markers]

    def close(self) -> None:
        self.closed += 1


class Failing(SourceBase):
    """A simulated board that fails after a few chunks."""

    def __init__(self) -> None:
        self.inner = SimulatedSource("rest", 10.0, 0, speed=None)
        self.info = self.inner.info
        self.n = 0

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def read(self, timeout: float | None = None) -> Chunk | None:
        self.n += 1
        if self.n > 5:
            raise SourceError("board unplugged (test)")
        return self.inner.read(timeout)


def test_every_consumer_is_closed_also_after_an_error() -> None:
    probe = Probe()
    s = Session(SessionSpec(source_factory=Failing, clinic=False), views=[probe])
    with pytest.raises(SourceError, match="unplugged"):
        s.run()
    assert probe.samples == 50 and probe.closed == 1
    s.close()
    assert probe.closed == 1  # once


def test_worker_thread_reports_the_error_and_stops() -> None:
    errors: list[BaseException] = []
    s = Session(SessionSpec(source_factory=Failing, clinic=False))
    s.start(on_error=errors.append)
    s.join(10.0)
    assert not s.is_alive()
    assert isinstance(s.error, SourceError) and errors == [s.error]


def test_worker_thread_stops_on_request() -> None:
    probe = Probe()
    s = Session(SessionSpec(source="simulated", source_options={"scenario": "rest",
                                                                 "duration": 600.0,
                                                                 "speed": 1.0}),
                views=[probe])
    s.start()
    s.stop(timeout=10.0)
    assert not s.is_alive() and s.error is None and probe.closed == 1
    assert probe.samples < 600_000


def test_console_demo_gets_the_program_cues_on_a_board_without_cues() -> None:
    """A live board brings no cues: the session leads the program (calibration at once, then the
    reps) and the view reads cue and phase from the snapshot."""
    probe = Probe()
    snaps = []

    class Snap(Probe):
        def feed(self, p: Processed) -> None:
            snaps.append(s.snapshot())

    spec = SessionSpec(source="serial:none", source_factory=lambda: NoCues(40.0, seed=0),
                       auto_program=True)  # a serial board: the session leads
    s = Session(spec, views=[probe, Snap()])
    s.run()
    assert probe.markers[:2] == ["rest", "mvc L-FRO"]
    assert "mvc R-FRO" in probe.markers
    phases = {sn.runner.phase for sn in snaps if sn.runner is not None}
    assert "calibration" in phases
    cues = {sn.feedback.cue.text for sn in snaps if sn.feedback and sn.feedback.cue}
    assert "rest" in cues and any(c.startswith("mvc ") for c in cues)


def test_simulated_patient_does_the_program_it_is_given() -> None:
    """``demo --program X`` on the simulated board: the simulated patient performs X (after the
    calibration protocol), cued with the program's exercise names, instead of the scenario's own
    exercises; the runner counts the program's reps."""
    from emgfeedback.app.program import resolve_program

    program = resolve_program("Smile x3 (clinic check)")
    probe = Probe()
    spec = SessionSpec(source="simulated", program=program,
                       source_options={"duration": 75.0, "speed": None, "seed": 3,
                                       "channels": ("EMG L-ZYG", "EMG L-OOC", "EMG R-ZYG",
                                                    "EMG R-OOC")})
    s = Session(spec, views=[probe])
    s.run()
    exercises = [m for m in probe.markers if m != "rest" and not m.startswith("mvc ")]
    assert exercises == ["smile"] * 3
    assert s.runner is not None
    snap = s.runner.snapshot()
    assert (snap.reps_done, snap.reps_total, snap.phase) == (3, 3, "done")


def test_simulated_patient_takes_a_program_or_a_scenario_not_both() -> None:
    from emgfeedback.errors import ConfigError
    from emgfeedback.sources.simulated import create

    with pytest.raises(ConfigError, match="either a program or the scenario 'smile-clean'"):
        create(scenario="smile-clean", duration=5.0, plan=(("smile", ("ZYG",), 3.0, 4.0, 3),))


@pytest.mark.slow
def test_recording_is_by_design_and_replay_raises_the_live_events(tmp_path: Path) -> None:
    out = tmp_path / "live.edf"
    params = ModelParams(synkinesis_prob=0.8)
    live: list[tuple[str, int, float]] = []
    spec = SessionSpec(source_factory=lambda: SimulatedSource("session", 110.0, 7, speed=None,
                                                              params=params),
                       record_to=out, patient="P-0007")
    s = Session(spec, on_event=lambda k, e: live.append((e.channel, e.alert, e.peak_pct_mvc))
                if k == "raised" else None)
    s.run()
    assert s.recording is not None and s.recording.last is not None
    assert s.recording.last.samples == s.pipeline.samples  # every sample the chain saw
    assert len(live) >= 2
    replayed: list[tuple[str, int, float]] = []
    r = Session(SessionSpec(source=f"replay:{out}", source_options={"speed": None}),
                on_event=lambda k, e: replayed.append((e.channel, e.alert, e.peak_pct_mvc))
                if k == "raised" else None)
    ahead = []
    r._read_ahead = lambda: ahead.append(Session._read_ahead(r)) or ahead[-1]  # type: ignore
    r.run()
    assert ahead == [True]  # a replay at full speed reads ahead (Pipeline.run_ahead)
    assert replayed == live
    assert s._read_ahead() is False  # a recording session does not


def test_spec_is_checked_before_anything_opens(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="patient id"):
        SessionSpec(record_to=tmp_path / "x.edf")
    with pytest.raises(ConfigError, match=".edf or .bdf"):
        SessionSpec(record_to=tmp_path / "x.csv", patient="P-0001")
    with pytest.raises(ConfigError, match="pseudonymous"):
        SessionSpec(record_to=tmp_path / "x.edf", patient="Maria Smit")
    with pytest.raises(ConfigError, match="affected side"):
        SessionSpec(affected_side="left")


def test_pipeline_records_only_when_built_for_it(tmp_path: Path) -> None:
    p = Pipeline(SimulatedSource("rest", 1.0, 0, speed=None))
    p.open()
    with pytest.raises(RuntimeError, match="recording="):
        p.start_recording(tmp_path / "x.edf", patient="P-0001")
    p.close()
    q = Pipeline(SimulatedSource("rest", 1.0, 0, speed=None), recording=RecordingGrid())
    q.open()
    assert q.chain is not None and q.grid is not None
    assert q.chain.quality.adc_range_uv == q.grid.rails_uv  # the chain clips at the file's rails
    with pytest.raises(ConfigError, match="record to .edf"):
        q.start_recording(tmp_path / "x.bdf", patient="P-0001")
    rec = q.start_recording(tmp_path / "x.edf", patient="P-0001")
    q.run()
    assert rec.closed and rec.samples == 1000


class Recorded(Probe):
    """A probe that keeps every processed chunk's arrays."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.chunks: list[tuple[int, bytes, bytes]] = []
        self.fail_after = fail_after

    def feed(self, p: Processed) -> None:
        if self.fail_after is not None and len(self.chunks) >= self.fail_after:
            raise ValueError("consumer failed (test)")
        super().feed(p)
        self.chunks.append((p.start, p.filtered.tobytes(), p.envelope.tobytes()))


def _sim() -> SimulatedSource:
    return SimulatedSource("session", 20.0, 3, speed=None, block_ms=500.0)


def test_run_ahead_feeds_what_run_feeds() -> None:
    """The read-ahead worker (offline analysis on two cores) hands the consumers the same
    chunks, in the same order, byte for byte, as the single-thread loop."""
    one, two = Recorded(), Recorded()
    p1 = Pipeline(_sim())
    p1.add(one)
    p1.run()
    p2 = Pipeline(_sim())
    p2.add(two)
    p2.run_ahead(depth=1)
    assert one.chunks == two.chunks and len(one.chunks) == 40
    assert one.markers == two.markers and p1.samples == p2.samples == 20 * int(p1.chain.fs)
    assert two.closed == 1


def test_run_ahead_raises_the_worker_error_in_the_caller() -> None:
    probe = Probe()
    p = Pipeline(Failing())
    p.add(probe)
    with pytest.raises(SourceError, match="unplugged"):
        p.run_ahead()
    assert probe.samples == 50 and probe.closed == 1
    assert not [t for t in threading.enumerate() if t.name == "pipeline-read-ahead"]


def test_run_ahead_stops_the_worker_when_a_consumer_fails() -> None:
    probe = Recorded(fail_after=3)
    p = Pipeline(_sim())
    p.add(probe)
    with pytest.raises(ValueError, match="consumer failed"):
        p.run_ahead()
    assert len(probe.chunks) == 3 and probe.closed == 1
    assert not [t for t in threading.enumerate() if t.name == "pipeline-read-ahead"]


def test_run_ahead_is_not_for_a_recording_session() -> None:
    with pytest.raises(RuntimeError, match="run_ahead"):
        Pipeline(_sim(), recording=RecordingGrid()).run_ahead()
