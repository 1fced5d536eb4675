"""Fuzz suite of the wire decoder (issue 14): multi-byte damage, counter jumps, duplicates and
reorderings.  Every frame's samples encode its true counter, so a sample stored at a wrong index
is seen: 0 misplaced samples accepted, and the loss count is exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emgfeedback import protocol as P

NCH = 3
MASK30 = (1 << 30) - 1


def _samples(counters: np.ndarray) -> np.ndarray:
    c = np.asarray(counters, dtype=np.int64)
    return np.stack([c & 1023, (c >> 10) & 1023, (c >> 20) & 1023], axis=1).astype(np.uint16)


def _true_counter(samples: np.ndarray) -> np.ndarray:
    s = samples.astype(np.int64)
    return s[:, 0] | (s[:, 1] << 10) | (s[:, 2] << 20)


def _frame(counter: int, true_counter: int) -> bytes:
    """A CRC-valid frame claiming ``counter`` and carrying the samples of ``true_counter``."""
    return P.encode_data(counter, _samples(np.array([true_counter]))[0])


OPS = ("keep", "drop", "dup", "swap", "corrupt_big", "corrupt_small", "damage", "junk")


def _build(ops: list[str], base: int, params: list[int]) -> tuple[bytes, list[bool]]:
    """The byte stream of frames ``base + i`` under ``ops``; ``intact[i]`` says frame ``i`` went
    out unharmed in place (for the liveness check)."""
    n = len(ops)
    ops = list(ops)
    ops[0] = ops[1] = "keep"  # the mapping is taken from the first frame after a restart
    # A CRC-passing counter corruption is caught when two frames on each side arrived intact
    # (with fewer, "0 1 3 <4 claiming 2>" is indistinguishable from a swap: no decoder can tell).
    guarded = {j for i, op in enumerate(ops) if op.startswith("corrupt")
               for j in (i - 2, i - 1, i + 1, i + 2)}
    for j in range(n):
        if j in guarded or (ops[j] == "swap" and j + 1 in guarded):
            ops[j] = "keep"
    out = bytearray()
    intact = [op == "keep" for op in ops]
    i = 0
    while i < n:
        c = base + i
        op, p = ops[i], params[i]
        if op == "keep":
            out += _frame(c, c)
        elif op == "drop":
            pass
        elif op == "dup":
            out += _frame(c, c) + _frame(c, c)
        elif op == "swap" and i + 1 < n:
            out += _frame(c + 1, c + 1) + _frame(c, c)
            intact[i + 1] = False
            i += 1
        elif op == "corrupt_big":  # counter damage that passed the CRC: far away
            out += _frame((c + (1 << 24) + p * 7919) & 0xFFFFFFFF if p % 2 else
                          (c - (1 << 20) - p) & 0xFFFFFFFF, c)
        elif op == "corrupt_small":  # ... or near: within the plausibility bound
            off = (p % 12) - 6
            out += _frame((c + (off if off else 3)) & 0xFFFFFFFF, c)
        elif op == "damage":  # multi-byte damage the CRC catches
            f = bytearray(_frame(c, c))
            for k in range(1 + p % 4):
                f[(p * 7 + k * 13) % len(f)] ^= 1 + (p + k) % 255
            out += f
        elif op == "junk":
            out += bytes((p * 31 + k * 17) % 256 for k in range(p % 40)) + _frame(c, c)
            intact[i] = True
        i += 1
    return bytes(out), intact


def _decode(raw: bytes, pieces: list[int], max_jump: int) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray, int]:
    d = P.FrameDecoder(n_channels=NCH, max_jump=max_jump)
    res = []
    pos = 0
    k = 0
    while pos < len(raw):
        step = pieces[k % len(pieces)]
        res.append(d.feed(raw[pos : pos + step]))
        pos += step
        k += 1
    res.append(d.flush())
    index = np.concatenate([r.index for r in res])
    samples = np.concatenate([r.samples for r in res])
    gaps = np.concatenate([r.gaps for r in res])
    dropped = sum(r.dropped_frames for r in res)
    return index, samples, gaps, dropped


def _check(index: np.ndarray, samples: np.ndarray, gaps: np.ndarray) -> None:
    assert len(index) == len(samples) == len(gaps)
    if not len(index):
        return
    # 0 misplaced samples: every stored sample sits at its true counter
    misplaced = int(((index & MASK30) != _true_counter(samples)).sum())
    assert misplaced == 0, f"{misplaced} samples at a wrong index"
    assert (np.diff(index) >= 1).all(), "indices must strictly increase"
    # exact loss accounting: the counted gaps are exactly the slots without a sample
    assert int(gaps[1:].sum()) == int(index[-1] - index[0] + 1) - len(index)
    assert gaps[0] == 0


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(st.sampled_from(OPS), min_size=4, max_size=160),
    base=st.one_of(st.integers(0, 1000), st.integers(2**32 - 100, 2**32 - 1),
                   st.integers(0, 2**32 - 1)),
    seed=st.integers(0, 2**31),
    pieces=st.lists(st.integers(1, 300), min_size=1, max_size=5),
    max_jump=st.sampled_from([4, 16, 2000]),
)
def test_damaged_stream_places_every_sample_right_and_counts_loss_exactly(
        ops: list[str], base: int, seed: int, pieces: list[int], max_jump: int) -> None:
    params = np.random.default_rng(seed).integers(0, 10_000, len(ops)).tolist()
    raw, intact = _build(ops, base, params)
    index, samples, gaps, _ = _decode(raw, pieces, max_jump)
    _check(index, samples, gaps)
    # liveness: a frame with CONFIRM_FRAMES intact frames on each side is never dropped
    got = set((index & MASK30).tolist())
    w = P.CONFIRM_FRAMES
    for i in range(w, len(ops) - w):
        if all(intact[i - w : i + w + 1]):
            assert ((base + i) & MASK30) in got, f"intact frame {i} dropped"
    # chunked == whole
    whole = _decode(raw, [len(raw) or 1], max_jump)
    assert np.array_equal(whole[0], index) and np.array_equal(whole[2], gaps)


@pytest.mark.parametrize("jump", [1 << 24, 1 << 30, (1 << 32) - 5000, 2001, -2001])
def test_one_corrupt_counter_is_dropped_not_believed(jump: int) -> None:
    """The issue's case: one CRC-valid frame with a counter jump (2**24 made a 309 MB file)."""
    n = 10_000
    raw = bytearray()
    for c in range(n):
        raw += _frame((c + jump) & 0xFFFFFFFF if c == 5000 else c, c)
    d = P.FrameDecoder(n_channels=NCH, max_jump=1000)
    r = d.feed(bytes(raw))
    _check(r.index, r.samples, r.gaps)
    assert r.lost == 1 and r.implausible == 1 and len(r.index) == n - 1
    assert r.counter_resets == 0 and r.index[-1] == n - 1


def test_duplicate_and_swap_are_flagged_and_shift_nothing() -> None:
    cs = [0, 1, 2, 2, 3, 5, 4, 6, 7, 8, 9]
    raw = b"".join(_frame(c, c) for c in cs)
    r = P.FrameDecoder(n_channels=NCH).feed(raw)
    _check(r.index, r.samples, r.gaps)
    assert r.index.tolist() == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert r.duplicates == 1 and r.implausible == 1  # 5 came before 4: dropped
    assert r.lost == 1  # slot 5


def test_late_frame_after_confirmed_gap_is_out_of_order() -> None:
    cs = [0, 1, 3, 4, 5, 2, 6]
    r = P.FrameDecoder(n_channels=NCH).feed(b"".join(_frame(c, c) for c in cs))
    assert r.index.tolist() == [0, 1, 3, 4, 5, 6] and r.out_of_order == 1 and r.lost == 1


def test_long_gap_needs_confirmation_then_is_exact() -> None:
    cs = list(range(10)) + list(range(50_000, 50_000 + P.CONFIRM_FRAMES + 2))
    r = P.FrameDecoder(n_channels=NCH, max_jump=100).feed(b"".join(_frame(c, c) for c in cs))
    _check(r.index, r.samples, r.gaps)
    assert r.lost == 50_000 - 10 and r.implausible == 0
    # too few frames to confirm: dropped, and the stream goes on
    cs = list(range(10)) + [50_000, 50_001] + list(range(10, 20))
    r = P.FrameDecoder(n_channels=NCH, max_jump=100).feed(b"".join(_frame(c, c) for c in cs))
    _check(r.index, r.samples, r.gaps)
    assert r.implausible == 2 and r.lost == 0 and len(r.index) == 20


def test_counter_reset_confirmed_continues_by_one() -> None:
    cs = list(range(5000, 5010)) + list(range(0, 20))
    r = P.FrameDecoder(n_channels=NCH, max_jump=100).feed(
        b"".join(P.encode_data(c, [1, 2, 3]) for c in cs))
    assert r.counter_resets == 1 and r.lost == 0
    assert r.index.tolist() == list(range(5000, 5030))


def test_reconnect_allowance_believes_the_outage() -> None:
    d = P.FrameDecoder(n_channels=NCH, max_jump=100)
    d.feed(b"".join(_frame(c, c) for c in range(10)))
    d.allow_jump(5000)
    r = d.feed(b"".join(_frame(c, c) for c in range(3000, 3003)))
    assert r.index.tolist() == [3000, 3001, 3002] and r.lost == 2990
