"""The live 10 ms path (issue 13): the fast paths of the chain and its quality meter give
exactly what the general path gives, chunked equals whole for 10 ms windows, the lazy quality
snapshot equals its formula."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emgfeedback.config import DspConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.dsp.quality import QualityMeter
from emgfeedback.stream import Chunk, Quality, Status

FS = 2000.0
CH = tuple(f"EMG {s}-{c}" for s in "LR" for c in ("FRO", "OOC", "ZYG", "OOR"))


def _signal(n: int = 8000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / FS
    x = 300 + 20 * rng.standard_normal((n, 8)) + 15 * np.sin(2 * np.pi * 50 * t)
    x[3000:3400, 2] = 4000.0  # at the rail for a while
    return x


def _run(x: np.ndarray, cuts: list[int], mains: str = "auto") -> tuple[np.ndarray, ...]:
    chain = Chain(FS, 8, DspConfig(mains=mains), adc_range_uv=(-4000.0, 4000.0))
    f, e, q = [], [], []
    pos = 0
    for part in np.split(x, cuts):
        p = chain.process(Chunk(part, pos, FS, CH))
        pos += len(part)
        f.append(p.filtered)
        e.append(p.envelope)
        qq = p.quality
        q.append(np.concatenate([[qq.at], qq.rms_uv, qq.mains_ratio, qq.mains_uv,
                                 qq.diff_rms_uv, qq.clip_fraction]))
    return np.concatenate(f), np.concatenate(e), np.array(q)


@pytest.mark.parametrize("mains", ["auto", "50", "off"])
def test_ten_ms_chunks_equal_other_chunkings(mains: str) -> None:
    """20-sample chunks (the quality meter's fast path) against 40-sample chunks and the whole
    stream (its general path, whole windows): filtered, envelope and the quality snapshots at
    the same window ends bit for bit; against 7-sample chunks (windows summed in parts) the
    same filtered and envelope, quality within rounding."""
    x = _signal()
    f20, e20, q20 = _run(x, list(range(20, len(x), 20)), mains)
    f40, e40, q40 = _run(x, list(range(40, len(x), 40)), mains)
    f7, e7, q7 = _run(x, list(range(7, len(x), 7)), mains)
    f1, e1, q1 = _run(x, [], mains)
    for f, e in ((f40, e40), (f7, e7), (f1, e1)):
        assert np.array_equal(f20, f) and np.array_equal(e20, e)
    assert np.array_equal(q20[1::2], q40)
    assert np.array_equal(q20[-1], q1[-1])
    at20 = {int(r[0]): r for r in q20}
    for r in q7[q7[:, 0] > 0]:  # after the first complete window
        assert np.allclose(r, at20[int(r[0])], rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=7999), max_size=40, unique=True))
def test_random_splits_mixed_with_ten_ms_chunks(cuts: list[int]) -> None:
    x = _signal()
    cuts = sorted(set(cuts) | set(range(4000, 8000, 20)))  # the second half in 10 ms chunks
    f, e, q = _run(x, cuts)
    f1, e1, q1 = _run(x, list(range(20, 8000, 20)))
    assert np.array_equal(f, f1) and np.array_equal(e, e1)
    assert np.allclose(q[-1], q1[-1], rtol=1e-12, atol=1e-12)


def test_quality_snapshot_is_its_formula() -> None:
    m = QualityMeter(FS, 2, adc_range_uv=(-100.0, 100.0))
    rng = np.random.default_rng(4)
    raw = rng.standard_normal((2, 20)) * 5
    band, filt = raw * 0.9, raw * 0.5
    raw[1, 3] = 100.0
    q = m.process_t(0, raw, band, filt)
    assert isinstance(q, Quality) and q.at == 20
    assert m.snapshot() is q  # the same snapshot until a window completes
    means = m._last
    c = 2
    assert np.array_equal(q.rms_uv, np.sqrt(means[c:2 * c]))
    removed = np.maximum(means[:c] - means[c:2 * c], 0.0)
    assert np.array_equal(q.mains_uv, np.sqrt(removed))
    assert np.array_equal(q.mains_ratio, removed / means[:c])
    assert np.array_equal(q.diff_rms_uv, np.sqrt(means[2 * c:3 * c]))
    assert q.clip_fraction[1] > 0 and q.clip_fraction[0] == 0
    q2 = m.process_t(20, raw, band, filt)
    assert q2 is not q and q2.at == 40


def _snap_row(qq: Quality) -> np.ndarray:
    return np.concatenate([[qq.at], qq.rms_uv, qq.mains_ratio, qq.mains_uv, qq.diff_rms_uv,
                           qq.clip_fraction])


@pytest.mark.parametrize("defer_max", [256, 7, 1])
def test_deferred_quality_windows_equal_windows_read_at_once(
        monkeypatch: pytest.MonkeyPatch, defer_max: int) -> None:
    """The meter defers the live windows (10 ms chunks, no sample at a rail) until a snapshot
    is read: snapshots read only at the end, in any order, from another thread, across a
    stretch at the rail (the general path), a gap (lost samples: no difference across it), a
    pickled copy of the chain and its reset, bit for bit those read chunk by chunk (each a
    batch of one window) and, at the window ends of 40-sample chunks, those of the general
    path."""
    import pickle
    import threading

    from emgfeedback import dsp
    from emgfeedback.stream import Status

    monkeypatch.setattr(dsp.quality, "DEFER_MAX", defer_max)
    x = _signal(12000, seed=3)

    def run(read_now: bool, pickle_at: int | None = None) -> list[np.ndarray | Quality]:
        chain = Chain(FS, 8, DspConfig(mains="auto"), adc_range_uv=(-4000.0, 4000.0))
        out: list[np.ndarray | Quality] = []
        pos = 0
        while pos < len(x):
            if pickle_at is not None and pos == pickle_at:
                chain = pickle.loads(pickle.dumps(chain))  # deferred windows computed first
            status = Status()
            if pos == 6000:  # a gap: the chain restarts its filters and the differences
                status, pos = Status(lost_samples=100), pos + 100
            if pos == 9000:
                chain.reset()
            p = chain.process(Chunk(x[pos:pos + 20], pos, FS, CH, status))
            pos += 20
            out.append(_snap_row(p.quality) if read_now else p.quality)
        return out

    now = np.array(run(True))
    later = run(False, pickle_at=4000)
    # read from another thread while the stream goes on, the last first
    rows: list[np.ndarray] = []
    t = threading.Thread(target=lambda: rows.extend(_snap_row(q) for q in later[::-1]))
    t.start()
    t.join()
    assert np.array_equal(np.array(rows[::-1]), now)
    # deferred and read at the end: the same as read at once
    assert np.array_equal(np.array([_snap_row(q) for q in run(False)]), now)
    # the general path at the same window ends (40-sample chunks, before the gap)
    f40, e40, q40 = _run(x[:6000], list(range(40, 6000, 40)))
    assert np.array_equal(now[1:300:2], q40)
    assert all(isinstance(q, Quality) for q in later)


def test_a_batch_a_reader_runs_is_waited_for_by_the_chain() -> None:
    """A view's thread that reads a deferred snapshot computes the batch; a chunk the chain
    then measures on the general path (not a window: 30 samples) waits for that batch to end
    (the batch sets the deferred count to 0 first, so testing the count alone went on beside
    it, both threads updating the running averages), and every snapshot is the one read at
    once."""
    import threading

    x = _signal(4000, seed=5)
    sizes = [20] * 100 + [30] + [20] * 40

    def chunks() -> list[Chunk]:
        out, pos = [], 0
        for n in sizes:
            out.append(Chunk(x[pos:pos + n], pos, FS, CH, Status()))
            pos += n
        return out

    ref_chain = Chain(FS, 8, DspConfig(mains="auto"), adc_range_uv=(-4000.0, 4000.0))
    ref = [_snap_row(ref_chain.process(c).quality) for c in chunks()]

    chain = Chain(FS, 8, DspConfig(mains="auto"), adc_range_uv=(-4000.0, 4000.0))
    meter = chain.quality
    inside, release = threading.Event(), threading.Event()
    ema = meter._ema.process_t
    reader: list[threading.Thread] = []

    def slow(m: np.ndarray) -> np.ndarray:  # the batch's average, in the reader's thread
        if reader and threading.current_thread() is reader[0]:
            inside.set()
            release.wait(10)
        return ema(m)

    meter._ema.process_t = slow  # type: ignore[method-assign]
    cs = chunks()
    got: list[Quality] = [chain.process(c).quality for c in cs[:100]]
    rows: list[np.ndarray] = []
    reader.append(threading.Thread(target=lambda: rows.append(_snap_row(got[-1]))))
    reader[0].start()
    assert inside.wait(10)  # the reader is inside the batch
    general = threading.Thread(target=lambda: got.append(chain.process(cs[100]).quality))
    general.start()
    general.join(0.3)
    still = general.is_alive()
    release.set()
    general.join(10)
    reader[0].join(10)
    assert still, "the chain measured a chunk while another thread ran the batch"
    got += [chain.process(c).quality for c in cs[101:]]
    assert np.array_equal(rows[0], ref[99])
    assert np.array_equal(np.array([_snap_row(q) for q in got]), np.array(ref))


@pytest.mark.parametrize("step", [1, 5, 20])
def test_flags_last_move_walk_equals_the_definition(step: int) -> None:
    """The artefact flags' live path for a chunk whose last sample repeats the one before on
    some channel (issue 13: each such channel walked back in Python to its last move) keeps
    every channel's last move at the definition's (the last sample whose difference exceeds
    ``flat_rms_uv``) after every chunk, over a coarsely quantised signal (repeats in many
    chunks) with flat runs shorter and longer than ``flat_ms``, and the same bits as one
    block."""
    from _reference import flags_in_blocks, flat_reference

    from emgfeedback.config import QualityConfig
    from emgfeedback.dsp.quality import FLAT, ArtefactFlags

    cfg = QualityConfig()
    need = int(round(cfg.flat_ms * FS / 1000.0))
    rng = np.random.default_rng(21)
    n = 6000
    x = np.round(2 * rng.standard_normal((n, 8)))  # 1 µV steps, about one sample in 4 repeats
    x[800:800 + need // 2, 3] = x[799, 3]  # flat, not for long enough
    x[2000:2000 + 2 * need, 5] = x[1999, 5]  # flat for long enough
    thr = cfg.flat_rms_uv
    moved_ref = np.zeros((n, 8), dtype=np.int64)  # each channel's last move up to each sample
    for c in range(8):
        last = 0
        for i in range(1, n):
            if abs(x[i, c] - x[i - 1, c]) > thr:
                last = i
            moved_ref[i, c] = last
    flags = ArtefactFlags(FS, 8, cfg, None)
    walked = 0
    out = []
    for a in range(0, n, step):
        part = np.ascontiguousarray(x[a:a + step])
        b = flags.process(part, part, np.abs(part), a)
        out.append(np.zeros(part.shape, dtype=np.uint8) if b is None else b)
        end = a + len(part) - 1
        if a and np.count_nonzero(np.abs(x[end] - x[end - 1]) <= thr):
            walked += 1
        flags._sync()
        assert np.array_equal(flags._moved, moved_ref[end]), a
        assert flags._moved_min == int(moved_ref[end].min())
    assert walked > n // step // 2
    bits = np.concatenate(out)
    assert np.array_equal(bits, flags_in_blocks(ArtefactFlags(FS, 8, cfg, None), x, n))
    assert np.array_equal((bits & FLAT) != 0, flat_reference(x, thr, need))


def test_chain_refuses_non_finite_samples() -> None:
    chain = Chain(FS, 8)
    x = _signal(40)
    x[5, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        chain.process(Chunk(x, 0, FS, CH))


def test_detector_fast_paths_equal_the_general_path() -> None:
    """The detector's live paths (issue 13: full-shape operands for blocks up to 64 samples,
    the chain's range test handed on as ``Processed.raw_inside`` so the clipping flag is not
    tested again, the idle debounces skipped) give the events and reps of the offline path
    (long blocks, broadcast operands), with a stretch of clipping and a flat electrode inside
    a rep; the hint is given exactly for the chunks with no sample at a rail."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_events import build

    from emgfeedback.app.analyze import analyze
    from emgfeedback.clinical.detect import Detector
    from emgfeedback.clinical.montage import Montage

    rec, _ = build()
    x = rec.data
    a = int(27.2 * rec.fs)
    x[a:a + 60, 1] = rec.rails_uv[1]  # clipped for 60 ms during rep 2
    x[int(33.0 * rec.fs):int(33.4 * rec.fs), 2] = 80.0  # the brow electrode flat in rep 3
    base = analyze(rec, Montage.from_labels(rec.channels, "L"))

    def run(size: int) -> tuple[list, list, int]:
        chain = Chain(rec.fs, len(rec.channels), adc_range_uv=rec.rails_uv)
        det = Detector.for_chain(chain, base.montage, base.calibration)
        src, hinted = rec.to_chunk(), 0
        while len(src):
            part, src = src.split(size)
            p = chain.process(part)
            clipped = bool(np.count_nonzero(p.raw >= rec.rails_uv[1]))
            assert (p.raw_inside is None) == clipped
            hinted += p.raw_inside is not None
            det.feed(p)
        det.close()
        return det.all_events, det.reps, hinted

    ev10, reps10, hinted = run(10)
    assert hinted < len(x) // 10  # the clipped chunks carried no hint
    assert any(e.type == "artefact" and "clipping" in e.reason for e in ev10)
    for size in (64, 65, 4000):
        ev, reps, _ = run(size)
        assert ev == ev10
        assert [(r.rep, r.side, r.start, r.stop, r.synkinesis, r.target_peak_pct_mvc)
                for r in reps] == [(r.rep, r.side, r.start, r.stop, r.synkinesis,
                                    r.target_peak_pct_mvc) for r in reps10]


@pytest.mark.parametrize("rails", [(-4000.0, 4000.0), (-4000.0, 3000.0), (0.0, 65535.0)])
def test_chain_range_test_is_its_definition(rails: tuple[float, float]) -> None:
    """The chain's range test (issue 13: a symmetric range is one comparison of magnitudes,
    another two comparisons) says ``inside`` exactly when ``lo < x < hi`` for every sample,
    at the rails, next to them and beyond; a NaN or an infinity is refused either way."""
    lo, hi = rails
    chain = Chain(FS, 8, adc_range_uv=rails)
    rng = np.random.default_rng(9)
    for k in range(200):
        x = rng.uniform(lo + 1.0, hi - 1.0, (20, 8))
        if k % 4:
            v = rng.choice([lo, hi, np.nextafter(lo, hi), np.nextafter(hi, lo), -hi, -lo,
                            lo - 1.0, hi + 1.0, -0.0, 0.0])
            x[rng.integers(20), rng.integers(8)] = v
        want = bool(np.all((x > lo) & (x < hi)))
        assert chain._inside(x) is want
        p = chain.process(Chunk(x, 20 * k, FS, CH))
        assert (p.raw_inside is not None) is want
    for bad in (np.nan, np.inf, -np.inf):
        x = np.zeros((20, 8)) + (lo + hi) / 2
        x[3, 4] = bad
        with pytest.raises(ValueError, match="non-finite"):
            chain._inside(x)


def test_processed_is_a_frozen_dataclass() -> None:
    """``Processed``'s own ``__init__`` (one dict update, live cost) keeps the dataclass: the
    same fields by position and by name, defaults, ``replace``, frozen."""
    import dataclasses

    from emgfeedback.stream import Processed, Status

    a, b, c = np.zeros((2, 3)), np.ones((2, 3)), np.full((2, 3), 2.0)
    st_, ch = Status(), CH[:3]
    p = Processed(5, FS, ch, a, b, c, None, st_)  # type: ignore[arg-type]
    k = Processed(start=5, fs=FS, channels=ch, raw=a, filtered=b, envelope=c,
                  quality=None, status=st_, markers=(), raw_inside=None)  # type: ignore[arg-type]
    names = [f.name for f in dataclasses.fields(Processed)]
    assert names == ["start", "fs", "channels", "raw", "filtered", "envelope", "quality",
                     "status", "markers", "raw_inside"]
    for n in names:
        assert getattr(p, n) is getattr(k, n)
    assert p.markers == () and p.raw_inside is None and len(p) == 2 and p.stop == 7
    r = dataclasses.replace(p, start=9, raw_inside=(-1.0, 1.0))
    assert r.start == 9 and r.raw_inside == (-1.0, 1.0) and r.raw is a
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.start = 3  # type: ignore[misc]


def _detector():  # type: ignore[no-untyped-def]
    """A detector of 8 channels with a plausible calibration (rest 3 µV, SD 1 µV, MVC 80)."""
    from emgfeedback.clinical.calibration import Calibration
    from emgfeedback.clinical.detect import Detector
    from emgfeedback.clinical.montage import Montage

    mon = Montage.from_labels(CH, "L")
    cal = Calibration(mon.names, np.full(8, 3.0), np.full(8, 1.0), np.full(8, 80.0),
                      ("rest",) * 8, ("mvc",) * 8)
    return Detector(FS, mon, cal)


@pytest.mark.parametrize("on_below_off", [False, True])
def test_short_block_level_walk_equals_the_accumulations(on_below_off: bool) -> None:
    """A short block's level (issue 13: walked in Python over the channels that cross,
    Detector._level_small: by list searches when no on threshold is under its off threshold,
    else sample by sample) is the long blocks' computation (the last sample above on_thr
    against the last below off_thr, by accumulations) bit for bit, with the debounce's view of
    it (first row, changes, last row) as _Debounce.process reads them from the array; at the
    thresholds themselves, NaN-free random envelopes, every level state before the block."""
    det = _detector()
    assert det._on_ge_off
    if on_below_off:  # one channel's thresholds the other way round (the per-sample walk)
        det.on_thr, det.off_thr = det.on_thr.copy(), det.off_thr.copy()
        det.on_thr[3], det.off_thr[3] = det.off_thr[3], det.on_thr[3] + 1.0
        det._on_l, det._off_l = det.on_thr.tolist(), det.off_thr.tolist()
        det._on_ge_off = False
    on, off = det.on_thr, det.off_thr
    rng = np.random.default_rng(5)
    for k in range(400):
        n = int(rng.integers(1, 65))
        env = np.asfortranarray(rng.uniform(0.0, 8.0, (n, 8)))
        if k % 3 == 0:  # exactly at a threshold
            env[rng.integers(n), rng.integers(8)] = on[0]
            env[rng.integers(n), rng.integers(8)] = off[0]
        if k % 5 == 0:  # long runs on one side (few flips, the live case)
            env[:, 1] = on[1] + 0.5 if k % 2 else off[1] - 0.5
            env[rng.integers(n):, 2] = on[2] + 0.1
        before = rng.random(8) < 0.5
        det._level = before.copy()
        sign = np.where(before, -1.0, 1.0)
        thr = np.where(before, -off, on)
        cross = np.asfortranarray(env * sign > thr)
        if not np.count_nonzero(cross):
            continue
        rows = np.arange(n)[:, None]
        last_up = np.maximum.accumulate(np.where(env > on, rows, np.where(before, -1, -2)), 0)
        last_dn = np.maximum.accumulate(np.where(env < off, rows, np.where(before, -2, -1)), 0)
        want = last_up >= last_dn
        level, x0s, cuts, last = det._level_small(env, cross, n)
        assert level.dtype == bool and np.array_equal(level, want)
        assert x0s == want[0].tolist() and last == want[-1].tolist()
        tr = want[1:] != want[:-1]
        assert cuts == {c: (np.flatnonzero(tr[:, c]) + 1).tolist() for c in range(8)
                        if tr[:, c].any()}


def test_debounce_shortcuts_equal_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The debounce's shortcuts (issue 13: a constant input that goes on while a change is
    being debounced returns before the walk until the first sample that could confirm one;
    process_runs takes the input's runs instead of the array (and returns the output vector
    when the output does not change in the block); a short block whose input equals
    the output is one comparison) give the output, changes and state of _Debounce.process's
    general path (transitions and walk) on the same input, over random streams of short
    blocks."""
    import copy

    from emgfeedback.clinical import detect
    from emgfeedback.clinical.detect import _Debounce

    class General(_Debounce):
        def process(self, x, start, want_y=True):  # type: ignore[no-untyped-def]
            monkeypatch.setattr(detect, "_SMALL", 0)  # (no short-block shortcut)
            try:
                return super().process(x, start, want_y)
            finally:
                monkeypatch.setattr(detect, "_SMALL", 64)

    rng = np.random.default_rng(11)
    for _trial in range(60):
        a, b = _Debounce(8, 7, 23), General(8, 7, 23)
        start = 0
        x_prev = np.zeros(8, dtype=bool)
        for _ in range(120):
            n = int(rng.integers(1, 30))
            if rng.random() < 0.3:  # the output as input (an open burst's condition)
                x = np.asfortranarray(np.broadcast_to(a.y, (n, 8)))
                want = bool(rng.random() < 0.5)
                y_a, ch_a = a.process(x, start, want)
                y_b, ch_b = b.process(x.copy(), start, want)
                assert ch_a == ch_b == [] and np.array_equal(y_a, y_b)
                x_prev = x[-1].copy()
            elif rng.random() < 0.6:  # constant over the block (often the same as before)
                v = x_prev.copy() if rng.random() < 0.7 else rng.random(8) < 0.3
                y_a, ch_a = a.process_const(v, start, n)
                y_b, ch_b = b.process(np.broadcast_to(v, (n, 8)).copy(), start)
                assert ch_a == ch_b
                assert np.array_equal(y_b, np.broadcast_to(a.y if y_a is None else y_a,
                                                           (n, 8))) or (
                    y_a is not None and np.array_equal(y_a, y_b))
                x_prev = v
            else:
                x = rng.random((n, 8)) < 0.3
                x[:, :4] = x[:1, :4]  # runs longer than a sample on some channels
                tr = x[1:] != x[:-1]
                cuts = {c: (np.flatnonzero(tr[:, c]) + 1).tolist() for c in range(8)
                        if tr[:, c].any()}
                b0 = copy.deepcopy(b)
                y_a, ch_a = a.process_runs(x[0].tolist(), cuts, x[-1].tolist(), start, n)
                y_b, ch_b = b.process(x, start)
                if not ch_a:  # no output change: the output vector itself
                    assert y_a is a.y and y_a.shape == (8,)
                    y_a = np.broadcast_to(y_a, (n, 8))
                assert ch_a == ch_b and np.array_equal(y_a, y_b), b0
                x_prev = x[-1].copy()
            assert np.array_equal(a.y, b.y) and np.array_equal(a.x, b.x)
            assert a.idle == b.idle
            pend = a.x != a.y
            assert np.array_equal(a.run[pend], b.run[pend])  # (the runs that matter)
            start += n


def test_chain_copies_and_pickles_with_its_filter_state() -> None:
    """The filter stages keep memoryviews of their sections and state for the kernel (live
    cost): a deep copy or a pickled chain still carries on exactly as the original."""
    import copy
    import pickle

    x = _signal(400)
    a = Chain(FS, 8, adc_range_uv=(-4000.0, 4000.0))
    a.process(Chunk(x[:200], 0, FS, CH))
    b, c = copy.deepcopy(a), pickle.loads(pickle.dumps(a))
    ra, rb, rc = (ch.process(Chunk(x[200:], 200, FS, CH)) for ch in (a, b, c))
    for r in (rb, rc):
        assert np.array_equal(ra.filtered, r.filtered) and np.array_equal(ra.envelope, r.envelope)


def test_count_nonzero_is_numpys() -> None:
    from emgfeedback.numeric import count_nonzero

    rng = np.random.default_rng(2)
    for a in (rng.random((20, 8)) < 0.3, np.array([np.nan, 0.0, -0.0, 1.0]),
              np.zeros((0, 3)), rng.integers(-2, 2, (7, 5)), np.asfortranarray(rng.random((4, 6)) > .5)):
        assert count_nonzero(a) == np.count_nonzero(a)
