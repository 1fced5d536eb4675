"""The emgfeedback board wire protocol, defined once (see docs/protocol.md).

Every message, in both directions, is one frame::

    offset  size  field
    0       2     sync bytes 0xA5 0x5A
    2       1     type = (protocol version << 4) | kind
    3       1     payload length L (0..MAX_PAYLOAD)
    4       L     payload (little-endian fields)
    4+L     2     CRC-16/CCITT-FALSE over bytes 2 .. 3+L (type, length, payload), little-endian

A data frame carries a 32-bit sample counter (it wraps after 24 days at 2 kHz, so a loss count is
never ambiguous) and one 16-bit word per channel holding the 10-bit ADC count.  The firmware's
copy of these constants lives in ``firmware/emg_acquire/emg_protocol.h``; ``tests/test_protocol.py``
checks that both agree.

The host side is :class:`FrameDecoder`, a vectorised streaming decoder: it finds sync candidates
with numpy, validates their CRCs in bulk, resynchronises after garbage and counts skipped bytes,
CRC errors and counter gaps.  CRC-16 lets about 4 in a million multi-byte-damaged frames through,
so the counter of a CRC-valid frame is not trusted blindly (see :class:`FrameDecoder`,
"Sequence rules"): a gap is believed only when the frames after it agree, a jump beyond
:data:`MAX_JUMP_S` of samples only after :data:`CONFIRM_FRAMES` consecutive frames, and duplicated
or late frames are dropped and counted, so no sample is ever stored at a wrong index.
:class:`PlotterTextDecoder` reads the Arduino Serial Plotter text format of existing sketches
(one line per sample).

Threads: decoders are plain objects owned by one thread (the serial reader thread); they are not
thread-safe and need not be.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

log = logging.getLogger(__name__)

__all__ = [
    "SYNC",
    "VERSION",
    "FrameDecoder",
    "DecodeResult",
    "Message",
    "BoardInfo",
    "Ack",
    "PlotterTextDecoder",
    "crc16",
    "encode_frame",
    "encode_data",
    "encode_data_frames",
    "encode_info",
    "encode_ack",
    "encode_command",
    "parse_info",
    "parse_ack",
    "counts_to_uv_scale",
]

# --- constants (mirrored in firmware/emg_acquire/emg_protocol.h) -----------------------------
SYNC0 = 0xA5
SYNC1 = 0x5A
SYNC = bytes((SYNC0, SYNC1))
VERSION = 1
HEADER_SIZE = 4
CRC_SIZE = 2
MAX_PAYLOAD = 64
MAX_CHANNELS = 16
CRC_INIT = 0xFFFF
CRC_POLY = 0x1021

# message kinds, board -> host
KIND_DATA = 0x1
KIND_INFO = 0x2
KIND_ACK = 0x3
# message kinds, host -> board
CMD_IDENTIFY = 0x8
CMD_START = 0x9
CMD_STOP = 0xA
CMD_SET_RATE = 0xB
CMD_SET_CHANNELS = 0xC
CMD_PING = 0xD

# ACK result codes
ACK_OK = 0
ACK_BAD_ARG = 1
ACK_UNKNOWN = 2
ACK_BUSY = 3

# INFO flags
INFO_FLAG_STREAMING = 0x01

DATA_HEADER = 4  # u32 counter before the samples
INFO_SIZE = 26
ACK_SIZE = 6
BOARD_NAME_SIZE = 8

# sequence plausibility (host side, see FrameDecoder)
MAX_JUMP_S = 1.0  # a counter gap above this many seconds of samples needs CONFIRM_FRAMES
CONFIRM_FRAMES = 8  # consecutive frames that confirm an implausible jump (a counter reset)

# firmware limits
RATE_MIN = 250
RATE_MAX = 2000
RATE_DEFAULT = 1000
LINE_BAUD = 500000
# 10 bits per byte on the line (start, 8 data, stop)
LINE_BYTES_PER_S = LINE_BAUD // 10
# the firmware refuses configurations above 90 % of the line (at 96 % it lost samples in simavr)
LINE_LOAD_MAX = 45000


def data_frame_size(n_channels: int) -> int:
    """Bytes of one data frame with ``n_channels`` samples."""
    return HEADER_SIZE + DATA_HEADER + 2 * n_channels + CRC_SIZE


def counts_to_uv_scale(vref_mv: float, adc_bits: int, gain: float) -> float:
    """Microvolts at the electrodes per ADC count: ``vref / 2**bits / gain``."""
    return vref_mv * 1000.0 / (1 << adc_bits) / gain


# --- CRC ----------------------------------------------------------------------------------------
def _make_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint16)
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table[i] = crc
    return table


_TABLE = _make_table()
_TABLE_LIST = [int(x) for x in _TABLE]


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE_LIST[((crc >> 8) ^ b) & 0xFF]
    return crc


def _crc16_rows(cols: np.ndarray) -> np.ndarray:
    """CRC of every column of a (bytes, frames) uint8 matrix, vectorised over the frames."""
    crc = np.full(cols.shape[1], CRC_INIT, dtype=np.uint16)
    for j in range(cols.shape[0]):
        crc = (crc << np.uint16(8)) ^ _TABLE[(crc >> np.uint16(8)) ^ cols[j]]
    return crc


# --- encoding -----------------------------------------------------------------------------------
def encode_frame(kind: int, payload: bytes = b"", version: int = VERSION) -> bytes:
    """One frame of ``kind`` with ``payload``."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = bytes(((version & 0xF) << 4 | (kind & 0xF), len(payload))) + payload
    return SYNC + body + struct.pack("<H", crc16(body))


def encode_data(counter: int, samples: "np.ndarray | list[int]") -> bytes:
    """One data frame: sample ``counter`` (mod 2**32) and the channels' ADC counts."""
    s = np.asarray(samples, dtype="<u2")
    return encode_frame(KIND_DATA, struct.pack("<I", counter & 0xFFFFFFFF) + s.tobytes())


def encode_data_frames(counters: np.ndarray, samples: np.ndarray) -> bytes:
    """Many data frames at once (vectorised): ``counters`` (n,), ``samples`` (n, channels)."""
    samples = np.asarray(samples)
    n, nch = samples.shape
    size = data_frame_size(nch)
    out = np.zeros((n, size), dtype=np.uint8)
    out[:, 0] = SYNC0
    out[:, 1] = SYNC1
    out[:, 2] = (VERSION << 4) | KIND_DATA
    out[:, 3] = DATA_HEADER + 2 * nch
    out[:, 4:8] = np.asarray(counters, dtype="<u4").astype(np.uint32).view(np.uint8).reshape(n, 4)
    out[:, 8 : 8 + 2 * nch] = (
        np.ascontiguousarray(samples, dtype="<u2").view(np.uint8).reshape(n, 2 * nch)
    )
    crc = _crc16_rows(np.ascontiguousarray(out[:, 2 : size - 2].T))
    out[:, size - 2] = (crc & 0xFF).astype(np.uint8)
    out[:, size - 1] = (crc >> 8).astype(np.uint8)
    return out.tobytes()


@dataclass(frozen=True)
class BoardInfo:
    """What the board says about itself in its INFO message."""

    board: str
    firmware: tuple[int, int, int]
    channels: int
    max_channels: int
    rate: int
    adc_bits: int
    vref_mv: int
    gain: int
    streaming: bool = False
    overflows: int = 0
    protocol: int = VERSION

    @property
    def firmware_version(self) -> str:
        return ".".join(str(x) for x in self.firmware)

    @property
    def uv_per_count(self) -> float:
        return counts_to_uv_scale(self.vref_mv, self.adc_bits, self.gain)


_INFO = struct.Struct("<BBBBBBHBBHHI8s")
assert _INFO.size == INFO_SIZE


def encode_info(info: BoardInfo) -> bytes:
    """The INFO frame the board sends in answer to IDENTIFY."""
    payload = _INFO.pack(
        info.protocol,
        *info.firmware,
        info.channels,
        info.max_channels,
        info.rate,
        info.adc_bits,
        INFO_FLAG_STREAMING if info.streaming else 0,
        info.vref_mv,
        info.gain,
        info.overflows & 0xFFFFFFFF,
        info.board.encode("ascii", "replace")[:BOARD_NAME_SIZE],
    )
    return encode_frame(KIND_INFO, payload)


def parse_info(payload: bytes) -> BoardInfo:
    """Parse an INFO payload; raise ``ValueError`` when its size is wrong."""
    if len(payload) != INFO_SIZE:
        raise ValueError(f"INFO payload has {len(payload)} bytes, expected {INFO_SIZE}")
    (proto, fa, fb, fc, nch, maxch, rate, bits, flags, vref, gain, ovf, name) = _INFO.unpack(
        payload
    )
    return BoardInfo(
        board=name.rstrip(b"\0").decode("ascii", "replace"),
        firmware=(fa, fb, fc),
        channels=nch,
        max_channels=maxch,
        rate=rate,
        adc_bits=bits,
        vref_mv=vref,
        gain=gain,
        streaming=bool(flags & INFO_FLAG_STREAMING),
        overflows=ovf,
        protocol=proto,
    )


@dataclass(frozen=True)
class Ack:
    """The board's answer to a command other than IDENTIFY."""

    command: int
    result: int
    value: int

    @property
    def ok(self) -> bool:
        return self.result == ACK_OK


def encode_ack(command: int, result: int, value: int = 0) -> bytes:
    return encode_frame(KIND_ACK, struct.pack("<BBI", command, result, value & 0xFFFFFFFF))


def parse_ack(payload: bytes) -> Ack:
    if len(payload) != ACK_SIZE:
        raise ValueError(f"ACK payload has {len(payload)} bytes, expected {ACK_SIZE}")
    cmd, res, val = struct.unpack("<BBI", payload)
    return Ack(cmd, res, val)


def encode_command(command: int, arg: int | None = None) -> bytes:
    """A host -> board command frame; ``arg`` for SET_RATE (u16), SET_CHANNELS (u8), PING (u32)."""
    if command == CMD_SET_RATE:
        payload = struct.pack("<H", int(arg or 0))
    elif command == CMD_SET_CHANNELS:
        payload = struct.pack("<B", int(arg or 0))
    elif command == CMD_PING:
        payload = struct.pack("<I", int(arg or 0) & 0xFFFFFFFF)
    else:
        payload = b""
    return encode_frame(command, payload)


# --- decoding -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    """A complete, CRC-valid frame that is not a data frame of the expected layout."""

    version: int
    kind: int
    payload: bytes


@dataclass
class DecodeResult:
    """What one :meth:`FrameDecoder.feed` call found.

    Attributes
    ----------
    index:
        int64 (frames,): unwrapped sample counter of each accepted data frame (the counter of the
        first frame ever seen maps to its own value; wraps of the 32-bit counter are unwrapped).
    samples:
        uint16 (frames, channels): the ADC counts.
    gaps:
        int64 (frames,): samples missing before each frame according to the counter.
    messages:
        Non-data frames (INFO, ACK, frames of another protocol version) in stream order.
    bytes_skipped:
        Bytes discarded while resynchronising (not part of any valid frame).
    crc_errors:
        Frame candidates with a plausible header whose CRC (or content) was wrong.
    foreign_frames:
        CRC-valid frames of another protocol version.
    counter_resets:
        Confirmed counter discontinuities (board reset, or a jump beyond the plausibility bound
        confirmed by :data:`CONFIRM_FRAMES` frames): the index continues by one, no loss can be
        counted across those.
    duplicates:
        CRC-valid data frames repeating the counter of the frame before (dropped).
    out_of_order:
        CRC-valid data frames arriving after a later one (dropped: their slot is already counted
        as lost, and indices only go forward).
    implausible:
        CRC-valid data frames whose counter the following frames contradict, or an unconfirmed
        jump beyond the bound (dropped as undetected corruption).
    """

    index: np.ndarray
    samples: np.ndarray
    gaps: np.ndarray
    messages: list[Message] = field(default_factory=list)
    bytes_skipped: int = 0
    crc_errors: int = 0
    foreign_frames: int = 0
    counter_resets: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    implausible: int = 0

    @property
    def lost(self) -> int:
        return int(self.gaps.sum())

    @property
    def dropped_frames(self) -> int:
        """CRC-valid data frames dropped by the sequence rules."""
        return self.duplicates + self.out_of_order + self.implausible


class FrameDecoder:
    """Streaming, vectorised decoder of the byte stream a board sends.

    Parameters
    ----------
    n_channels:
        Expected channels per data frame; ``None`` takes the layout of the first valid data frame.
        Valid data frames of another size are dropped and counted in :attr:`mismatched`.
    adc_bits:
        Data words above ``2**adc_bits - 1`` make a frame invalid (counted as a CRC error).
    max_jump:
        The plausibility bound: the largest counter gap (in samples) believed on the word of the
        frames that follow it; default :data:`MAX_JUMP_S` at :data:`RATE_MAX` (the serial source
        uses one second at the board's rate, plus the time the link was down after a reconnect:
        :meth:`allow_jump`).

    Sequence rules
    --------------
    Let ``L`` be the counter of the last accepted frame and ``C`` the next frame's.

    * ``C == L + 1``: accepted.
    * ``C == L`` (duplicate) or ``L - max_jump <= C < L`` (late, reordered): dropped and counted.
    * ``L + 1 < C <= L + max_jump`` (a gap): accepted once the next frame confirms it: it follows
      ``C`` (``C < N <= C + max_jump``).  When the next frame fits ``L`` better (``N <= C``),
      ``C`` was a corrupt counter: dropped and counted as implausible.  The gap ``C - L - 1``
      is counted as lost.
    * Anything else (a jump beyond the bound, forwards or backwards): believed only after
      :data:`CONFIRM_FRAMES` consecutive frames (CRC-passing corruption of 8 frames in a row
      does not happen); unconfirmed, the frames are dropped as implausible.  A confirmed jump
      forwards is a real gap (the host stalled and the OS dropped bytes); backwards, the board
      restarted its counter (the index continues by one, ``counter_resets`` counts it).

    So every accepted sample sits at its true index, lost samples are counted exactly (the
    dropped frames' slots included), and a gap above ``max_jump`` samples needs
    :data:`CONFIRM_FRAMES` frames of evidence.  Consumers that fill gaps bound the fill
    themselves (the recorder writes a ``gap`` annotation, see io/edf).  A frame waits
    for its confirmation: output lags by at most :data:`CONFIRM_FRAMES` frames around a gap;
    :meth:`flush` (end of stream) drops what is still unconfirmed.

    Notes
    -----
    Called from one thread only (the reader).  ``feed`` keeps at most one incomplete frame
    (``<= HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE`` bytes) between calls, so decoding a stream in
    pieces gives the same frames as decoding it whole.
    """

    def __init__(self, n_channels: int | None = None, adc_bits: int = 10,
                 max_jump: int | None = None) -> None:
        self.n_channels = n_channels
        self.adc_bits = adc_bits
        self.max_jump = int(max_jump if max_jump is not None else MAX_JUMP_S * RATE_MAX)
        if not 1 <= self.max_jump < (1 << 30):
            raise ValueError(f"max_jump must be in [1, 2**30), got {self.max_jump}")
        self._allow = 0
        self._buf = b""
        self._last_index: int | None = None
        self._last_counter = 0
        self._map_next: int | None = None
        self._held_c = np.zeros(0, np.uint32)
        self._held_s = np.zeros((0, n_channels or 0), np.uint16)
        self.mismatched = 0
        # running totals (for statistics and tests)
        self.total_bytes = 0
        self.total_frames = 0
        self.total_skipped = 0
        self.total_crc_errors = 0
        self.total_lost = 0
        self.total_dropped = 0

    def allow_jump(self, samples: int) -> None:
        """Believe one gap of up to ``samples`` (after a reconnect: the time the link was down)."""
        self._allow = max(0, int(samples))

    def restart_counter(self, next_index: int | None = None) -> None:
        """Forget the last counter (after a board reset or reconnect).

        The next data frame gets index ``next_index`` (no gap is counted before it); with
        ``None`` it keeps its own counter value as index.
        """
        self._last_index = None
        self._map_next = next_index
        self._held_c = self._held_c[:0]
        self._held_s = self._held_s[:0]

    def flush(self) -> DecodeResult:
        """End of stream: drop frames still waiting for confirmation (counted as implausible)."""
        res = self._empty(self.n_channels or 0)
        res.implausible = len(self._held_c)
        self.total_dropped += res.implausible
        self._held_c = self._held_c[:0]
        self._held_s = self._held_s[:0]
        return res

    def discard_buffer(self) -> None:
        """Drop buffered bytes (a partial frame cut by a disconnect); keep the counter state."""
        self._buf = b""

    def reset(self) -> None:
        """Drop buffered bytes and counter state."""
        self._buf = b""
        self.restart_counter(None)

    def _empty(self, nch: int) -> DecodeResult:
        return DecodeResult(
            index=np.zeros(0, np.int64),
            samples=np.zeros((0, nch), np.uint16),
            gaps=np.zeros(0, np.int64),
        )

    def feed(self, data: bytes) -> DecodeResult:
        """Decode ``data`` appended to what is left over from earlier calls."""
        self.total_bytes += len(data)
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        n = len(buf)
        nch0 = self.n_channels or 0
        if n == 0:
            return self._empty(nch0)
        b = np.frombuffer(buf, dtype=np.uint8)

        # 1. sync candidates (a trailing 0xA5 may be the first half of a sync)
        pos = np.flatnonzero((b[:-1] == SYNC0) & (b[1:] == SYNC1))
        tail_a5 = b[-1] == SYNC0

        # 2. header and plausibility
        has_hdr = pos + HEADER_SIZE <= n
        hpos = pos[has_hdr]
        lens = b[hpos + 3].astype(np.int64)
        plausible = lens <= MAX_PAYLOAD
        hpos, lens = hpos[plausible], lens[plausible]
        ends = hpos + HEADER_SIZE + lens + CRC_SIZE
        complete = ends <= n
        pending = [int(p) for p in pos[~has_hdr]]
        pending += [int(p) for p in hpos[~complete]]
        if tail_a5:
            pending.append(n - 1)
        pending.sort()
        cpos, clens, cends = hpos[complete], lens[complete], ends[complete]

        # 3. CRC per distinct length, vectorised (rows gathered through a strided window view)
        valid = np.zeros(len(cpos), dtype=bool)
        bad_words = np.zeros(len(cpos), dtype=bool)
        maxval = (1 << self.adc_bits) - 1
        data_type = (VERSION << 4) | KIND_DATA
        for L in np.unique(clens).tolist():
            sel = np.flatnonzero(clens == L)
            size = HEADER_SIZE + L + CRC_SIZE
            rows = sliding_window_view(b, size)[cpos[sel]]
            crc = _crc16_rows(np.ascontiguousarray(rows[:, 2 : size - 2].T))
            stored = rows[:, size - 2].astype(np.uint16) | (rows[:, size - 1].astype(np.uint16) << 8)
            valid[sel] = crc == stored
            # data words must fit the ADC, and a data payload must hold whole words
            is_data = rows[:, 2] == data_type
            if is_data.any():
                k, odd = divmod(L - DATA_HEADER, 2)
                if odd or k < 1 or k > MAX_CHANNELS:
                    bad_words[sel[is_data]] = True
                else:
                    words = np.ascontiguousarray(rows[is_data, 8 : 8 + 2 * k]).view("<u2")
                    bad_words[sel[is_data]] = (words > maxval).any(axis=1)
        good = valid & ~bad_words

        # 4. choose non-overlapping frames, left to right (greedy, as a whole-stream pass would)
        gpos, gends = cpos[good], cends[good]
        if len(gpos) > 1 and not np.all(gpos[1:] >= gends[:-1]):
            chosen = []
            last_end = -1
            for i, (p, e) in enumerate(zip(gpos.tolist(), gends.tolist())):
                if p >= last_end:
                    chosen.append(i)
                    last_end = e
            sel = np.asarray(chosen, dtype=np.int64)
            gpos, gends = gpos[sel], gends[sel]
        # incomplete candidates inside an accepted frame are not pending; frames after the
        # first really pending candidate wait for the next call (it may turn out valid)
        if pending and len(gpos):
            pend = np.asarray(pending, dtype=np.int64)
            j = np.searchsorted(gpos, pend, side="right") - 1
            inside = (j >= 0) & (pend < gends[np.maximum(j, 0)])
            pend = pend[~inside]
            pending = pend.tolist()
        cut = min(pending) if pending else n
        keep = gends <= cut
        gpos, gends = gpos[keep], gends[keep]
        self._buf = buf[cut:]

        # 5. accounting of the consumed region [0, cut)
        covered = int((gends - gpos).sum())
        skipped = cut - covered
        bad = cpos[(~good) & (cpos < cut)]
        crc_errors = 0
        if len(bad):
            # count rejected candidates that do not lie inside an accepted frame
            if len(gpos):
                j = np.searchsorted(gpos, bad, side="right") - 1
                inside = (j >= 0) & (bad < gends[np.maximum(j, 0)])
                crc_errors = int((~inside).sum())
            else:
                crc_errors = len(bad)

        # 6. classify accepted frames
        gtypes = b[gpos + 2]
        glens = b[gpos + 3].astype(np.int64)
        versions = gtypes >> 4
        kinds = gtypes & 0xF
        data_mask = (versions == VERSION) & (kinds == KIND_DATA)
        foreign = int((versions != VERSION).sum())
        messages: list[Message] = []
        for p in gpos[~data_mask].tolist():
            L = buf[p + 3]
            messages.append(Message(buf[p + 2] >> 4, buf[p + 2] & 0xF, buf[p + 4 : p + 4 + L]))
        dpos = gpos[data_mask]
        dl = glens[data_mask]
        if self.n_channels is None and len(dpos):
            self.n_channels = (int(dl[0]) - DATA_HEADER) // 2
        nch = self.n_channels or 0
        match = dl == DATA_HEADER + 2 * nch
        if not match.all():
            self.mismatched += int((~match).sum())
            log.debug("dropped %d data frames of another channel count", int((~match).sum()))
            dpos = dpos[match]
        result = self._empty(nch)
        result.messages = messages
        result.bytes_skipped = skipped
        result.crc_errors = crc_errors
        result.foreign_frames = foreign
        if len(dpos) or len(self._held_c):
            size = data_frame_size(nch)
            rows = (sliding_window_view(b, size)[dpos] if len(dpos)
                    else np.zeros((0, size), np.uint8))
            counters = np.ascontiguousarray(rows[:, 4:8]).view("<u4").reshape(-1).astype(np.uint32)
            samples = (np.ascontiguousarray(rows[:, 8 : 8 + 2 * nch]).view("<u2")
                       .reshape(-1, nch).astype(np.uint16))
            if len(self._held_c):
                counters = np.concatenate((self._held_c, counters))
                samples = np.concatenate((self._held_s.reshape(-1, nch), samples))
            self._sequence(counters, samples, result)
        self.total_frames += len(result.index) + len(messages)
        self.total_skipped += skipped
        self.total_crc_errors += crc_errors
        self.total_lost += result.lost
        self.total_dropped += result.dropped_frames
        return result

    def _sequence(self, c: np.ndarray, s: np.ndarray, out: DecodeResult) -> None:
        """Apply the sequence rules (class docstring) to counters ``c`` (uint32) and samples
        ``s``; fill ``out.index/samples/gaps`` and the counts; hold unconfirmed frames."""
        n = len(c)
        step = np.diff(c).astype(np.uint32).astype(np.int64)  # mod 2**32
        # fast path: one consecutive run continuing the last accepted frame
        if (self._last_index is not None and n and not len(self._held_c)
                and (int(c[0]) - self._last_counter) & 0xFFFFFFFF == 1 and (step == 1).all()):
            out.index = self._last_index + 1 + np.arange(n, dtype=np.int64)
            out.samples = s
            out.gaps = np.zeros(n, np.int64)
            self._last_index = int(out.index[-1])
            self._last_counter = int(c[-1])
            self._held_c = c[:0]
            self._held_s = s[:0]
            return
        starts = [0, *(np.flatnonzero(step != 1) + 1).tolist(), n]
        runs = [(a, b) for a, b in zip(starts[:-1], starts[1:]) if b > a]
        idx_parts: list[np.ndarray] = []
        sam_parts: list[np.ndarray] = []
        gap_parts: list[np.ndarray] = []
        wrap = 1 << 32
        held = (n, n)
        r = 0
        while r < len(runs):
            a, b = runs[r]
            if self._last_index is None:  # first frame after (re)start: its own mapping
                first = int(c[a]) if self._map_next is None else self._map_next
                self._map_next = None
                self._last_index, self._last_counter = first - 1, (int(c[a]) - 1) % wrap
            d = (int(c[a]) - self._last_counter) % wrap
            bound = self.max_jump + self._allow
            if d == 1:
                gap = 0
            elif d == 0 or d >= wrap - self.max_jump:  # duplicate / late frames
                k = (self._last_counter - int(c[a])) % wrap  # 0 for a duplicate
                m = min(b - a, k + 1)
                dup = 1 if k + 1 <= b - a else 0
                out.duplicates += dup
                out.out_of_order += m - dup
                if a + m < b:
                    runs[r] = (a + m, b)
                else:
                    r += 1
                continue
            else:
                plausible = 2 <= d <= bound
                need = 2 if plausible else CONFIRM_FRAMES
                if b - a < need:
                    if r + 1 >= len(runs):  # wait for the frames that confirm or contradict
                        held = (a, b)
                        break
                    na = runs[r + 1][0]
                    dn = (int(c[na]) - int(c[b - 1])) % wrap
                    if not (plausible and 1 <= dn <= self.max_jump):
                        out.implausible += b - a
                        r += 1
                        continue
                if plausible:
                    gap = d - 1
                elif d < wrap // 2:  # a confirmed long gap (the host stalled): believed
                    gap = d - 1
                    log.warning("sample counter jumped by %d (confirmed by %d frames)", d, b - a)
                else:  # a confirmed jump backwards: the board restarted its counter
                    gap = 0
                    out.counter_resets += 1
                    log.warning("sample counter went back by %d (confirmed by %d frames): "
                                "counter reset", wrap - d, b - a)
                self._allow = 0
            base = self._last_index + gap + 1
            idx_parts.append(base + np.arange(b - a, dtype=np.int64))
            sam_parts.append(s[a:b])
            g = np.zeros(b - a, np.int64)
            g[0] = gap
            gap_parts.append(g)
            self._last_index = base + (b - a) - 1
            self._last_counter = int(c[b - 1])
            r += 1
        self._held_c = c[held[0]:held[1]].copy()
        self._held_s = s[held[0]:held[1]].copy()
        if idx_parts:
            out.index = np.concatenate(idx_parts)
            out.samples = np.concatenate(sam_parts)
            out.gaps = np.concatenate(gap_parts)


# --- Arduino Serial Plotter text ---------------------------------------------------------------
_SPLIT = re.compile(r"[,\s\t]+")


class PlotterTextDecoder:
    """Decoder of the Arduino Serial Plotter text format: one line per sample.

    Values are separated by commas, spaces or tabs; each may be ``label:value``.  The first
    complete line fixes the channel count (and labels, when given); later lines with another
    count are counted in :attr:`bad_lines` and dropped.  Called from the reader thread only.
    """

    def __init__(self) -> None:
        self._buf = b""
        self.n_channels: int | None = None
        self.labels: tuple[str, ...] | None = None
        self.bad_lines = 0
        self.lines = 0

    @staticmethod
    def parse_line(line: str) -> tuple[list[float], list[str]] | None:
        """``"a:1, b:2"`` -> ``([1.0, 2.0], ["a", "b"])``; ``None`` when it is not numeric."""
        line = line.strip()
        if not line:
            return None
        values: list[float] = []
        labels: list[str] = []
        for tok in _SPLIT.split(line):
            if not tok:
                continue
            label, sep, val = tok.rpartition(":")
            try:
                v = float(val)
            except ValueError:
                return None
            if not np.isfinite(v):
                return None
            values.append(v)
            labels.append(label if sep else "")
        return (values, labels) if values else None

    @classmethod
    def looks_like_text(cls, data: bytes, min_lines: int = 3) -> bool:
        """True when ``data`` holds at least ``min_lines`` numeric lines of one width."""
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            return False
        lines = text.replace("\r", "\n").split("\n")[1:-1]  # first and last may be partial
        widths = [len(p[0]) for p in map(cls.parse_line, lines) if p is not None]
        if len(widths) < min_lines:
            return False
        return max(set(widths), key=widths.count) > 0 and widths.count(widths[-1]) >= min_lines

    def feed(self, data: bytes) -> tuple[np.ndarray, int]:
        """Return ``(values (lines, channels) float64, bytes skipped)`` for complete lines."""
        buf = self._buf + data
        parts = buf.replace(b"\r", b"\n").split(b"\n")
        self._buf = parts[-1][-4096:]
        rows: list[list[float]] = []
        skipped = 0
        for raw in parts[:-1]:
            if not raw:
                continue
            try:
                parsed = self.parse_line(raw.decode("ascii"))
            except UnicodeDecodeError:
                parsed = None
            if parsed is None:
                self.bad_lines += 1
                skipped += len(raw) + 1
                continue
            values, labels = parsed
            if self.n_channels is None:
                self.n_channels = len(values)
                self.labels = tuple(labels)
            if len(values) != self.n_channels:
                self.bad_lines += 1
                skipped += len(raw) + 1
                continue
            rows.append(values)
        self.lines += len(rows)
        nch = self.n_channels or 0
        arr = np.asarray(rows, dtype=np.float64).reshape(len(rows), nch)
        return arr, skipped
