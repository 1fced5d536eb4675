"""Offline analysis in large blocks gives, byte for byte, the analysis of the live 10 ms path.

The chain, the quality meter and the detector are chunk-invariant, so ``analyze`` may hand the
recording through the pipeline in blocks of any size (``chunk_size``, default seconds): the JSON
must not change, from 10 ms chunks (a live board's packets) to the whole file in one block.  The
one-pass analysis (calibration segments first, then detection, as live) must also equal the
two-pass one (a calibration pass over the whole file, then a detection pass).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sessions import make_source, write_edf_session

from emgfeedback.app import analyze as analyze_mod
from emgfeedback.io.importers import load

#: 10 ms at 1 kHz, an odd size, 1 s, 10 s, the default, and (None ->) the whole file
BLOCKS = [10, 733, 1000, 10_000, None, "whole"]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("offline") / "P-007_s.edf"
    write_edf_session(path, make_source(seed=21, synkinesis_prob=0.7, duration=112.0), "P-007")
    return path


def _json(path: Path, chunk: Any, **kw: Any) -> str:
    with load(path) as rec:
        size = rec.n_samples if chunk == "whole" else chunk
        a = analyze_mod.analyze(rec, chunk_size=size, **kw)
        return json.dumps(a.to_json(), indent=1, allow_nan=False)


@pytest.mark.slow
def test_json_identical_for_every_block_size(session: Path) -> None:
    ref = _json(session, 10)
    doc = json.loads(ref)
    assert any(e.get("type", "synkinesis") == "synkinesis" for e in doc["events"]), \
        "the session must raise synkinesis events for the comparison to mean something"
    assert len(doc["reps"]) >= 4
    for chunk in BLOCKS[1:]:
        assert _json(session, chunk) == ref, f"chunk_size={chunk} changed the analysis"


def test_one_pass_equals_two_passes(session: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[str] = []
    start = analyze_mod._OnePass.start_clinic

    def started(self: Any) -> None:
        passes.append("one")
        start(self)

    monkeypatch.setattr(analyze_mod._OnePass, "start_clinic", started)
    one = _json(session, 2000)
    assert passes == ["one"]  # this session calibrates before its reps: one pass
    monkeypatch.undo()
    passes.clear()

    def refuse(self: Any) -> Any:
        passes.append("two")
        raise analyze_mod._TwoPasses()

    monkeypatch.setattr(analyze_mod._OnePass, "_calibration", refuse)
    for chunk in (2000, 3001):
        assert _json(session, chunk) == one
    assert passes == ["two", "two"]


def test_automatic_calibration_block_invariant(session: Path) -> None:
    """``--calibration auto`` needs the whole envelope (two passes): same JSON at any block."""
    ref = _json(session, 500, calibration="auto")
    assert json.loads(ref)["calibration"]
    assert _json(session, "whole", calibration="auto") == ref
    assert _json(session, None, calibration="auto") == ref


def test_detector_starts_at_the_first_rep_sample_in_any_block(
        session: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector's first sample is the first rep's marker, not the start of the block that
    holds it (a block boundary rarely falls on a cue in a file from another system)."""
    from emgfeedback.clinical.detect import Detector
    from emgfeedback.clinical.exercises import default_program

    with load(session) as rec:
        program = default_program()
        first_rep = min(m.sample for m in rec.markers if program.find(m.text) is not None)
    starts: list[int] = []
    feed = Detector.feed

    def spy(self: Detector, p: Any, ahead: Any = None) -> None:
        if not getattr(self, "_spied", False):
            self._spied = True  # type: ignore[attr-defined]
            starts.append(p.start)
        feed(self, p, ahead)

    monkeypatch.setattr(Detector, "feed", spy)
    for chunk in (733, 4096):
        assert first_rep % chunk != 0  # the cue falls inside a block
        _json(session, chunk)
    assert starts == [first_rep, first_rep]


def test_flags_started_a_chunk_ahead_give_the_same_detection(session: Path) -> None:
    """Offline the detector is shown the next chunk (``feed(p, ahead=q)``) and queues its
    artefact flags behind ``p``'s: the events and reps are those of chunks fed one by one, with
    a gap in the stream (no flags queued across it) and chunks with a short last block (whose
    flags are then queued too, not computed in the calling thread after the helper went on)."""
    from emgfeedback.clinical.detect import MAX_BLOCK, Detector
    from emgfeedback.dsp.chain import Chain

    with load(session) as rec:
        a = analyze_mod.analyze(rec)
        whole = rec.to_chunk()
    size = MAX_BLOCK + 404  # blocks of MAX_BLOCK and 404 samples (under PARALLEL_MIN)
    parts = []
    rest = whole
    while len(rest):
        part, rest = rest.split(size)
        parts.append(part)
    del parts[len(parts) // 2]  # a gap: a chunk never arrives

    def run(ahead: bool) -> tuple[list[Any], list[Any], int]:
        chain = Chain(rec.fs, len(rec.channels), adc_range_uv=rec.rails_uv)
        det = Detector.for_chain(chain, a.montage, a.calibration)
        done = [chain.process(c) for c in parts]
        queued = 0
        for k, p in enumerate(done):
            nxt = done[k + 1] if ahead and k + 1 < len(done) else None
            det.feed(p, ahead=nxt)
            queued += det._ahead is not None
        det.close()
        return ([e.to_json(rec.fs) for e in det.all_events],
                [r.to_json(rec.fs) for r in det.reps], queued)

    events, reps, none = run(False)
    events2, reps2, queued = run(True)
    # queued: every next chunk but across the gap, the file's last (shorter than a block: fed
    # alone) and none after it
    assert none == 0 and len(parts[-1]) <= MAX_BLOCK and queued == len(parts) - 3
    assert len(reps) >= 4 and events
    assert events2 == events and reps2 == reps

    # the chunk fed must be the one announced
    chain = Chain(rec.fs, len(rec.channels), adc_range_uv=rec.rails_uv)
    det = Detector.for_chain(chain, a.montage, a.calibration)
    p0, p1 = chain.process(parts[0]), chain.process(parts[1])
    det.feed(p0, ahead=p1)
    with pytest.raises(RuntimeError, match="was not fed next"):
        det.feed(chain.process(parts[2]))
    det.feed(p0, ahead=p1)  # (a short chunk too: its flags would be computed here)
    with pytest.raises(RuntimeError, match="was not fed next"):
        det.feed(chain.process(parts[-1]))


def test_calibration_segments_judged_on_the_helper_as_they_end(session: Path) -> None:
    """Offline the calibrator judges each segment on the helper thread when it ends: the same
    calibration as judging them all in ``result``; a refused segment refuses it with the same
    message (a rest segment with a flat channel)."""
    from concurrent.futures import ThreadPoolExecutor

    from emgfeedback.clinical.calibration import Calibrator
    from emgfeedback.dsp.chain import Chain
    from emgfeedback.errors import CalibrationError

    with load(session) as rec:
        whole = rec.to_chunk()
        channels, fs, rails = rec.channels, rec.fs, rec.rails_uv

    def calibrate(executor: Any, flat: bool) -> tuple[Any, list[Any]]:
        chain = Chain(fs, len(channels), adc_range_uv=rails)
        cal = Calibrator(fs, channels, rails, executor=executor)
        rest = whole
        while len(rest):
            part, rest = rest.split(3000)
            if flat:  # channel 2 stuck through the rest segment (2-12 s)
                d = part.data.copy()
                d[max(0, 2000 - part.start):max(0, min(len(d), 12_000 - part.start)), 2] = 5.0
                part = type(part)(d, part.start, part.fs, part.channels, part.status,
                                  part.markers)
            cal.feed(chain.process(part))
        ahead = [s.ahead for s in cal.segments]
        try:
            return cal.result().to_json(), ahead
        except CalibrationError as exc:
            return str(exc), ahead

    with ThreadPoolExecutor(1) as pool:
        for flat in (False, True):
            ref, none = calibrate(None, flat)
            got, ahead = calibrate(pool, flat)
            assert all(a is None for a in none) and all(a is not None for a in ahead)
            assert len(ahead) >= 3
            assert got == ref
            assert isinstance(ref, str) == flat, ref  # refused with the flat channel


def test_rep_buffers_used_again_are_zeroed(session: Path) -> None:
    """A rep takes the buffers a finished rep left (zeroed), so rows that a gap leaves unwritten
    read 0 as in new buffers: a detector whose pool starts full of NaN and garbage gives the
    same reps and events, with a gap inside a rep."""
    import numpy as np

    from emgfeedback.clinical.detect import Detector
    from emgfeedback.dsp.chain import Chain

    with load(session) as rec:
        a = analyze_mod.analyze(rec)
        whole = rec.to_chunk()
    first = a.reps[0]
    cut = (first.start + first.stop) // 2
    head, tail = whole.split(cut)
    _, tail = tail.split(500)  # 0.5 s lost inside the first rep

    def run(garbage: bool) -> tuple[list[Any], list[Any], int]:
        chain = Chain(rec.fs, len(rec.channels), adc_range_uv=rec.rails_uv)
        det = Detector.for_chain(chain, a.montage, a.calibration)
        if garbage:
            n = len(rec.channels)
            det._rep_bufs = [(np.full((40_000, n), np.nan), np.ones((40_000, n), dtype=bool),
                              np.full((40_000, n), 1e9)) for _ in range(2)]
        reused = 0
        for part in (head, tail):
            rest = part
            while len(rest):
                c, rest = rest.split(4000)
                pooled = len(det._rep_bufs)
                det.feed(chain.process(c))
                reused += len(det._rep_bufs) < pooled
        det.close()
        return ([e.to_json(rec.fs) for e in det.all_events],
                [r.to_json(rec.fs) for r in det.reps], reused)

    events, reps, _ = run(False)
    events2, reps2, reused = run(True)
    assert reused >= 1 and len(reps) >= 4
    assert reps[0]["onset_s"] * rec.fs < cut < reps[0]["offset_s"] * rec.fs
    assert events2 == events and reps2 == reps


def _analysed_in_child(path: str, out: Any) -> None:
    out.put(_json(Path(path), None))


def test_a_forked_batch_worker_makes_its_own_helper_thread(session: Path) -> None:
    """The detector's helper thread (artefact flags of offline blocks on the second core) does
    not exist in a process forked after it was made (the batch pool forks): the child makes its
    own instead of waiting forever on the parent's."""
    import multiprocessing
    import queue

    from emgfeedback.clinical import detect

    ref = _json(session, None)  # the helper exists in this process now
    assert detect._helper is not None
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_analysed_in_child, args=(str(session), out))
    child.start()
    try:
        got = out.get(timeout=120)
    except queue.Empty:
        got = None
    child.join(10)
    if child.is_alive():
        child.kill()
        child.join()
    assert got == ref, "the forked child did not finish its analysis"
