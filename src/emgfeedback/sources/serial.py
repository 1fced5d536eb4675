"""A board on a serial port: the emg_acquire firmware, or any Serial Plotter text sketch.

``open_source("serial:/dev/ttyUSB0")`` gives a :class:`SerialSource`.  Opening it:

1. opens the port (exclusive, with a read timeout so nothing can hang), mapping the usual
   failures to one-line errors: no such port, busy, permission denied (dialout hint);
2. handshakes: IDENTIFY until the board answers with its INFO message (board, firmware,
   channels, rate, ADC bits, reference and front-end gain, so counts become microvolts).
   Without an answer it looks at what did arrive: Serial Plotter text (one line of numbers per
   sample) is accepted when ``fs`` is given; frames of another protocol version, bytes that are
   no frames at all (wrong baud rate) and silence each give their own clear error.

``start()`` sends START and runs a reader thread that only reads, decodes
(:class:`~emgfeedback.protocol.FrameDecoder`, vectorised) and hands chunks to a bounded queue.
Soft faults travel with the chunks: counter gaps make the next chunk's ``start`` jump with
``status.lost_samples`` set, CRC errors and skipped bytes are counted, samples at the ADC rails
are counted per channel.  When the cable is pulled, the reader closes the port and tries to
reopen it every 100 ms; when the board answers again it carries on (the gap is flagged with
``status.reconnects``; everything received before it was already delivered).  If the board kept
streaming, the sample counter gives the exact number lost; if it was reset, the number is
estimated from the time the link was down (``info.extra["estimated_gaps"]`` counts those).

Threads: ``open``/``start``/``read``/``stop``/``close`` are called from one consumer thread;
the reader thread is internal.  Errors in the reader thread are re-raised by :meth:`read`.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emgfeedback import protocol as P
from emgfeedback.errors import (
    ConfigError,
    DeviceBusy,
    DeviceNotFound,
    Disconnected,
    PermissionDenied,
    ProtocolError,
    SourceError,
    SourceTimeout,
)
from emgfeedback.stream import Chunk, SourceBase, SourceInfo, Status

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_LABELS",
    "PortInfo",
    "SerialSource",
    "format_ports",
    "identify_port",
    "list_ports",
    "open_port",
]

SUPPORTED_FIRMWARE_MAJOR = 1
DEFAULT_BAUD = P.LINE_BAUD
# Wiring of hardware/README.md: A0..A7 (the Uno has A0..A5: the first six)
DEFAULT_LABELS = (
    "EMG L-OOC",
    "EMG R-OOC",
    "EMG L-ZYG",
    "EMG R-ZYG",
    "EMG L-OOR",
    "EMG R-OOR",
    "EMG L-FRO",
    "EMG R-FRO",
)


def _serial() -> Any:
    try:
        import serial
    except ModuleNotFoundError as exc:  # pragma: no cover - pyserial is a dependency
        raise SourceError("pyserial is not installed: pip install pyserial") from exc
    return serial


def open_port(port: str, baudrate: int = DEFAULT_BAUD, timeout: float = 0.02) -> Any:
    """Open ``port`` exclusively with a read timeout; raise a one-line :class:`SourceError`.

    Called from the consumer thread (open) and from the reader thread (reconnect).
    """
    serial = _serial()
    try:
        return serial.Serial(port, baudrate, timeout=timeout, write_timeout=1.0, exclusive=True)
    except serial.SerialException as exc:
        code = getattr(exc, "errno", None)
        text = str(exc)
        if code == errno.ENOENT or "No such file" in text:
            raise DeviceNotFound(
                f"no serial port {port}: is the board plugged in? (`emgfeedback ports` lists ports)"
            ) from None
        if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
            raise PermissionDenied(
                f"permission denied on {port}: add yourself to the dialout group "
                "(sudo usermod -aG dialout $USER, then log out and in again)"
            ) from None
        if code == errno.EBUSY or "lock" in text.lower() or "busy" in text.lower():
            raise DeviceBusy(
                f"{port} is in use by another program (Arduino IDE serial monitor? another "
                "emgfeedback?): close it and retry"
            ) from None
        raise SourceError(f"cannot open {port}: {text}") from None
    except ValueError as exc:
        raise ConfigError(f"bad serial settings for {port}: {exc}") from None


@dataclass
class _Handshake:
    info: P.BoardInfo | None = None
    raw: bytes = b""
    foreign_versions: set[int] = field(default_factory=set)
    frames: int = 0


def _handshake(ser: Any, timeout: float, stop: threading.Event | None = None) -> _Handshake:
    """Send IDENTIFY until INFO arrives or ``timeout`` passes; keep what arrived for diagnosis."""
    dec = P.FrameDecoder()
    hs = _Handshake()
    deadline = time.monotonic() + timeout
    next_send = 0.0
    raw = bytearray()
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        now = time.monotonic()
        if now >= next_send:
            ser.write(P.encode_command(P.CMD_IDENTIFY))
            next_send = now + 0.25
        data = ser.read(4096)
        if not data:
            continue
        if len(raw) < 65536:
            raw += data
        res = dec.feed(data)
        hs.frames += len(res.index) + len(res.messages)
        for m in res.messages:
            if m.version != P.VERSION:
                hs.foreign_versions.add(m.version)
            elif m.kind == P.KIND_INFO:
                try:
                    hs.info = P.parse_info(m.payload)
                except ValueError:
                    continue
                hs.raw = bytes(raw)
                return hs
        if hs.foreign_versions and time.monotonic() > deadline - timeout / 2:
            break
    hs.raw = bytes(raw)
    return hs


def _expect_ack(ser: Any, command: int, timeout: float = 1.0) -> tuple[P.Ack, bytes]:
    """Wait for the ACK of ``command``; return it and the bytes that followed it.

    The bytes after the ACK matter after START: they are the first data frames.
    """
    head = P.SYNC + bytes(((P.VERSION << 4) | P.KIND_ACK, P.ACK_SIZE, command))
    size = P.HEADER_SIZE + P.ACK_SIZE + P.CRC_SIZE
    raw = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw += ser.read(64)
        i = raw.find(head)
        while 0 <= i and i + size <= len(raw):
            frame = bytes(raw[i : i + size])
            if P.crc16(frame[2:-2]) == int.from_bytes(frame[-2:], "little"):
                return P.parse_ack(frame[4:-2]), bytes(raw[i + size :])
            i = raw.find(head, i + 1)
    raise SourceTimeout(f"the board did not acknowledge command 0x{command:X} within {timeout} s")


@dataclass(frozen=True)
class PortInfo:
    """A serial port and, when it answered IDENTIFY, the board behind it."""

    device: str
    description: str = ""
    hwid: str = ""
    board: P.BoardInfo | None = None
    error: str | None = None


def identify_port(device: str, timeout: float = 2.5, baudrate: int = DEFAULT_BAUD) -> PortInfo:
    """Open ``device``, ask IDENTIFY, close; never raises (errors go into ``PortInfo.error``).

    ``timeout`` covers the Arduino bootloader's ~1.6 s after the auto-reset on open.
    """
    try:
        ser = open_port(device, baudrate)
    except SourceError as exc:
        return PortInfo(device, error=str(exc))
    try:
        ser.reset_input_buffer()
        hs = _handshake(ser, timeout)
    except Exception as exc:
        return PortInfo(device, error=f"{type(exc).__name__}: {exc}")
    finally:
        ser.close()
    if hs.info is not None:
        return PortInfo(device, board=hs.info)
    if hs.foreign_versions:
        return PortInfo(device, error=f"protocol v{min(hs.foreign_versions)} (not v{P.VERSION})")
    if P.PlotterTextDecoder.looks_like_text(hs.raw):
        return PortInfo(device, error="Serial Plotter text (use --fs)")
    return PortInfo(device, error="no answer" if not hs.raw else f"{len(hs.raw)} bytes, no frames")


def list_ports(
    extra: Iterable[str] = (), identify: bool = True, timeout: float = 2.5
) -> list[PortInfo]:
    """Serial ports of this machine (plus ``extra`` paths, e.g. ptys), boards identified.

    Ports are probed in parallel threads, so the whole listing takes about ``timeout``.
    """
    found: list[tuple[str, str, str]] = []
    try:
        from serial.tools import list_ports as lp

        found = [(p.device, p.description or "", p.hwid or "") for p in lp.comports()]
    except Exception as exc:
        log.warning("cannot enumerate serial ports: %s", exc)
    found += [(d, "", "") for d in extra if d not in {f[0] for f in found}]
    if not identify:
        return [PortInfo(d, desc, hw) for d, desc, hw in found]
    results: list[PortInfo | None] = [None] * len(found)

    def probe(i: int, dev: str, desc: str, hw: str) -> None:
        r = identify_port(dev, timeout)
        results[i] = PortInfo(dev, desc, hw, r.board, r.error)

    threads = [
        threading.Thread(target=probe, args=(i, *f), daemon=True) for i, f in enumerate(found)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 2.0)
    return [r if r is not None else PortInfo(f[0], f[1], f[2], error="timeout")
            for r, f in zip(results, found)]


def format_ports(ports: Sequence[PortInfo]) -> str:
    """Text for ``emgfeedback ports``: one line per port."""
    if not ports:
        return "no serial ports found (is the board plugged in? on Linux: ls /dev/ttyUSB* /dev/ttyACM*)"
    lines = []
    for p in ports:
        if p.board is not None:
            b = p.board
            what = (
                f"emg_acquire {b.firmware_version} on {b.board}: {b.channels}/{b.max_channels} ch "
                f"@ {b.rate} Hz, {b.adc_bits}-bit, vref {b.vref_mv} mV, gain {b.gain} "
                f"({b.uv_per_count:.3f} uV/count)"
            )
        else:
            what = p.error or "-"
        desc = f" [{p.description}]" if p.description and p.description != "n/a" else ""
        lines.append(f"{p.device}{desc}: {what}")
    return "\n".join(lines)


class SerialBoard(SourceBase):
    """The machinery every serial board shares (emg_acquire, Chords, SpikerShield).

    One consumer thread calls ``open``/``start``/``read``/``stop``/``close``; an internal reader
    thread only reads the port, hands the bytes to :meth:`_process` (the protocol's decoder),
    which calls :meth:`_emit` with samples in µV at their absolute sample index; chunks travel
    through a bounded queue.  :meth:`_emit` does the loss accounting: a jump of the index is
    ``status.lost_samples`` of the next chunk, a full queue drops the oldest data and counts it.
    When the port fails (cable pulled), :meth:`_on_disconnect` closes it and reopens it every
    100 ms until :meth:`_resume` succeeds on the new port (or ``reconnect_timeout`` passes: then
    :meth:`read` raises :class:`Disconnected`); the next chunk carries ``status.reconnects``.

    A protocol implements five hooks: :meth:`_handshake_open` (on the freshly opened port: learn
    the board, set :attr:`info`), :meth:`_start_streaming`, :meth:`_process`, :meth:`_resume`
    (after a reconnect: handshake again and tell where the index goes on) and
    :meth:`_stop_streaming`.  Opening errors are the one-line ones of :func:`open_port`.
    """

    kind = "serial"

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUD,
        reconnect: bool = True,
        reconnect_timeout: float = 60.0,
        handshake_timeout: float = 3.0,
        queue_size: int = 512,
        read_timeout: float = 0.02,
    ) -> None:
        if not port:
            raise ConfigError(f"{self.kind} board needs a port: --board {self.kind}:/dev/ttyUSB0 "
                              "(Windows: COM3, macOS: /dev/cu.usbmodem1101)")
        self.port = port
        self.baudrate = int(baudrate)
        self.reconnect = reconnect
        self.reconnect_timeout = reconnect_timeout
        self.handshake_timeout = handshake_timeout
        self.read_timeout = read_timeout
        self._queue: queue.Queue[Chunk] = queue.Queue(maxsize=queue_size)
        self._ser: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._connected = False
        self._expected = 0  # next absolute sample index the consumer should see
        self._pending = Status()
        self._last_rx = 0.0
        self._start_leftover = b""
        self.stats: dict[str, int] = {
            "frames": 0,
            "lost_samples": 0,
            "crc_errors": 0,
            "bytes_skipped": 0,
            "reconnects": 0,
            "estimated_gaps": 0,
            "queue_drops": 0,
        }
        self.info = SourceInfo(name=f"{self.kind}:{port}", fs=0.0, channels=())

    # --- protocol hooks ----------------------------------------------------------------------
    def _handshake_open(self) -> None:  # pragma: no cover - abstract
        """On the open port (input flushed): identify and configure the board, set :attr:`info`."""
        raise NotImplementedError

    def _start_streaming(self) -> None:
        """Tell the board to stream (consumer thread); bytes already read that belong to the
        stream go into :attr:`_start_leftover`."""

    def _process(self, data: bytes) -> None:  # pragma: no cover - abstract
        """Decode ``data`` (reader thread) and :meth:`_emit` the samples."""
        raise NotImplementedError

    def _resume(self, ser: Any, last_rx: float) -> None:  # pragma: no cover - abstract
        """After a reconnect on ``ser`` (reader thread): handshake, restart streaming if needed,
        and prepare the decoder so the next index is right; raise to retry."""
        raise NotImplementedError

    def _stop_streaming(self) -> None:
        """Tell the board to stop streaming (consumer thread, best effort)."""

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the port is open and the board answered (read by any thread)."""
        return self._connected

    def open(self) -> None:
        """Open the port and handshake (consumer thread)."""
        self._ser = open_port(self.port, self.baudrate, self.read_timeout)
        try:
            self._ser.reset_input_buffer()
            self._handshake_open()
        except BaseException:
            self._ser.close()
            self._ser = None
            raise
        self._connected = True

    def start(self) -> None:
        """Start streaming and run the reader thread (consumer thread)."""
        if self._ser is None:
            raise SourceError("start() before open()")
        self._stop.clear()
        self._expected = 0
        self._start_streaming()
        self._last_rx = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"{self.kind}-reader {self.port}", daemon=True
        )
        self._thread.start()

    def read(self, timeout: float | None = None) -> Chunk | None:
        """Next chunk, or ``None`` after ``timeout`` s (``None``: block until data, a reader-thread
        error, or the reader's end); re-raises reader-thread errors."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                if timeout == 0:
                    return self._queue.get_nowait()
                wait = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
                return self._queue.get(timeout=wait)
            except queue.Empty:
                if self._error is not None:
                    err, self._error = self._error, None
                    raise err from None
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                if deadline is None and (self._thread is None or not self._thread.is_alive()):
                    return None  # nothing can arrive any more

    def stop(self) -> None:
        """Stop the reader thread and the board's streaming (consumer thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self._ser is not None and self._connected:
            try:
                self._stop_streaming()
            except Exception as exc:
                log.debug("stop command not sent: %s", exc)

    def close(self) -> None:
        if self._ser is not None:
            try:
                self._ser.close()
            finally:
                self._ser = None
        self._connected = False

    # --- reader thread ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self._start_leftover:
                self._process(self._start_leftover)
                self._start_leftover = b""
            while not self._stop.is_set():
                try:
                    # block for the first byte (up to read_timeout), then take what is there;
                    # a short pause batches the trickle a pty delivers into fewer, larger reads
                    waiting = self._ser.in_waiting
                    data = self._ser.read(waiting) if waiting else self._ser.read(1)
                    if data and len(data) < 2048:
                        self._stop.wait(0.015)
                except Exception as exc:
                    serial = _serial()
                    if not isinstance(exc, (serial.SerialException, OSError)):
                        raise
                    self._on_disconnect(exc)
                    continue
                if data:
                    self._last_rx = time.monotonic()
                    self._process(data)
        except BaseException as exc:
            log.error("%s reader stopped: %s", self.kind, exc)
            self._error = exc if isinstance(exc, SourceError) else SourceError(
                f"{self.kind} reader failed on {self.port}: {type(exc).__name__}: {exc}"
            )

    def _emit(self, data: np.ndarray, start: int, sat: np.ndarray | None) -> None:
        lost = max(0, start - self._expected)
        if start < self._expected:  # cannot happen with a monotonic index; never go back
            log.warning("sample index went back from %d to %d", self._expected, start)
            start = self._expected
        saturated = (
            tuple(int(x) for x in sat.sum(axis=0)) if sat is not None else (0,) * data.shape[1]
        )
        status = self._pending.merged(Status(lost_samples=lost, saturated=saturated))
        chunk = Chunk(
            data=np.ascontiguousarray(data),
            start=start,
            fs=self.info.fs,
            channels=self.info.channels,
            status=status,
        )
        try:
            self._queue.put_nowait(chunk)
        except queue.Full:
            # the consumer is too slow: drop this chunk, count it as lost in the next one
            self.stats["queue_drops"] += 1
            log.warning("consumer too slow: %d samples dropped", len(chunk))
            self._pending = Status(
                crc_errors=status.crc_errors,
                bytes_skipped=status.bytes_skipped,
                reconnects=status.reconnects,
                dropped_frames=status.dropped_frames,
            )
            return
        self.stats["lost_samples"] += lost
        self._pending = Status()
        self._expected = start + len(chunk)

    def _on_disconnect(self, exc: BaseException) -> None:
        """Close the port and reopen it until the board answers again (reader thread)."""
        log.warning("%s disconnected (%s); waiting for it to come back", self.port, exc)
        self._connected = False
        try:
            self._ser.close()
        except Exception:
            pass
        lost_at = time.monotonic()
        last_rx = self._last_rx
        if not self.reconnect:
            raise Disconnected(f"{self.port} disconnected: {exc}")
        while not self._stop.is_set():
            if time.monotonic() - lost_at > self.reconnect_timeout:
                raise Disconnected(
                    f"{self.port} disconnected and did not come back within "
                    f"{self.reconnect_timeout:g} s: check the cable"
                )
            try:
                ser = open_port(self.port, self.baudrate, self.read_timeout)
            except SourceError:
                self._stop.wait(0.1)
                continue
            try:
                self._ser = ser
                self._resume(ser, last_rx)
            except Exception as e:
                if isinstance(e, Disconnected):
                    raise
                log.info("reconnect attempt on %s failed: %s", self.port, e)
                try:
                    ser.close()
                except Exception:
                    pass
                self._stop.wait(0.1)
                continue
            self._connected = True
            self.stats["reconnects"] += 1
            self._pending = self._pending.merged(Status(reconnects=1))
            log.warning("%s reconnected after %.2f s", self.port, time.monotonic() - lost_at)
            if self._start_leftover:
                self._process(self._start_leftover)
                self._start_leftover = b""
            return

    def _estimated_gap(self, last_rx: float) -> int:
        """Samples missed since ``last_rx`` when no counter tells (reset board, text)."""
        self.stats["estimated_gaps"] += 1
        return max(1, int(round((time.monotonic() - last_rx) * self.info.fs)))


class SerialSource(SerialBoard):
    """The emg_acquire firmware (protocol v1), or a Serial Plotter text sketch (see the module
    docstring).

    Parameters
    ----------
    port:
        Device path (``/dev/ttyUSB0``; Windows ``COM3``; macOS ``/dev/cu.usbmodem1101``).
    baudrate:
        500000 for emg_acquire; the sketch's rate for Serial Plotter text.
    fs:
        Sample rate: requested from emg_acquire (SET_RATE) when given; required for Serial
        Plotter text, which carries no rate.
    n_channels:
        Channels to request from emg_acquire (SET_CHANNELS); default: what the board has.
    labels:
        Channel labels (``EMG L-ZYG`` ...); default :data:`DEFAULT_LABELS`.
    format:
        ``"auto"`` (default), ``"binary"`` or ``"text"``.
    text_scale:
        Microvolts per unit of Serial Plotter values (their unit is whatever the sketch prints).
    reconnect:
        Reopen the port after a disconnect.
    reconnect_timeout:
        Give up (``read`` raises :class:`Disconnected`) after this many seconds without the board.
    handshake_timeout:
        How long to wait for INFO (covers the bootloader after the auto-reset on open).
    queue_size:
        Chunks held for the consumer; when full, the oldest data is dropped and counted as lost.
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUD,
        fs: float | None = None,
        n_channels: int | None = None,
        labels: Sequence[str] | None = None,
        format: str = "auto",
        text_scale: float = 1.0,
        reconnect: bool = True,
        reconnect_timeout: float = 60.0,
        handshake_timeout: float = 3.0,
        queue_size: int = 512,
        read_timeout: float = 0.02,
    ) -> None:
        if format not in ("auto", "binary", "text"):
            raise ConfigError(f"serial format {format!r}: choose auto, binary or text")
        super().__init__(port, baudrate=baudrate, reconnect=reconnect,
                         reconnect_timeout=reconnect_timeout, handshake_timeout=handshake_timeout,
                         queue_size=queue_size, read_timeout=read_timeout)
        self.fs_requested = fs
        self.n_channels_requested = n_channels
        self.labels = tuple(labels) if labels else None
        self.format = format
        self.text_scale = float(text_scale)
        self._board: P.BoardInfo | None = None
        self._mode = "binary"
        self._decoder = P.FrameDecoder()
        self._text = P.PlotterTextDecoder()
        self._envelope_check: EnvelopeCheck | None = None
        self._uv_per_count = 1.0
        self._text_gap = 0
        self._mid = 512
        self._maxcount = 1023
        # decoder plausibility counts (protocol.FrameDecoder)
        self.stats.update(duplicates=0, out_of_order=0, implausible=0, counter_resets=0)
        self.info = SourceInfo(name=f"serial:{port}", fs=float(fs or 0.0), channels=())

    # --- handshake -------------------------------------------------------------------------
    def _handshake_open(self) -> None:
        if self.format == "text":
            self._open_text(b"")
            return
        hs = _handshake(self._ser, self.handshake_timeout)
        if hs.info is None:
            if self.format == "auto" and P.PlotterTextDecoder.looks_like_text(hs.raw):
                self._open_text(hs.raw)
                return
            raise self._handshake_error(hs)
        self._configure(hs.info)

    def _handshake_error(self, hs: _Handshake) -> SourceError:
        if hs.foreign_versions:
            v = min(hs.foreign_versions)
            return ProtocolError(
                f"the board on {self.port} speaks protocol v{v}, this emgfeedback speaks "
                f"v{P.VERSION}: flash firmware/emg_acquire from this version "
                "(make -C firmware upload) or update emgfeedback"
            )
        if not hs.raw:
            return SourceTimeout(
                f"no answer from {self.port} at {self.baudrate} baud within "
                f"{self.handshake_timeout:g} s: is firmware/emg_acquire flashed? (for a Serial "
                "Plotter sketch give its baud rate and --fs; Chords or SpikerShield firmware: "
                "--board chords:PORT / spikershield:PORT)"
            )
        return ProtocolError(
            f"no frames at {self.baudrate} baud on {self.port} ({len(hs.raw)} bytes received, "
            "none of them frames): wrong baud rate, or a sketch that is not emg_acquire"
        )

    def _configure(self, info: P.BoardInfo) -> None:
        if info.protocol != P.VERSION or info.firmware[0] != SUPPORTED_FIRMWARE_MAJOR:
            raise ProtocolError(
                f"the board on {self.port} runs emg_acquire {info.firmware_version} (protocol "
                f"v{info.protocol}); this emgfeedback supports firmware "
                f"{SUPPORTED_FIRMWARE_MAJOR}.x, protocol v{P.VERSION}: reflash firmware/emg_acquire"
            )
        if info.streaming:  # a previous session left it running
            self._ser.write(P.encode_command(P.CMD_STOP))
            _expect_ack(self._ser, P.CMD_STOP)
        if self.n_channels_requested and self.n_channels_requested != info.channels:
            self._set(P.CMD_SET_CHANNELS, int(self.n_channels_requested))
        if self.fs_requested and int(self.fs_requested) != info.rate:
            self._set(P.CMD_SET_RATE, int(self.fs_requested))
        self._ser.write(P.encode_command(P.CMD_IDENTIFY))
        hs = _handshake(self._ser, self.handshake_timeout)
        if hs.info is None:
            raise SourceTimeout(f"the board on {self.port} stopped answering during setup")
        info = hs.info
        self._board = info
        self._mode = "binary"
        self._uv_per_count = info.uv_per_count
        self._mid = 1 << (info.adc_bits - 1)
        self._maxcount = (1 << info.adc_bits) - 1
        labels = self.labels or DEFAULT_LABELS
        if len(labels) < info.channels:
            labels = tuple(labels) + tuple(f"EMG CH{i + 1}" for i in range(len(labels), info.channels))
        lo = (0 - self._mid) * self._uv_per_count
        hi = (self._maxcount - self._mid) * self._uv_per_count
        self.info = SourceInfo(
            name=f"serial:{self.port}",
            fs=float(info.rate),
            channels=tuple(labels[: info.channels]),
            board=info.board,
            firmware=info.firmware_version,
            adc_bits=info.adc_bits,
            adc_range_uv=(lo, hi),
            extra={
                "port": self.port,
                "baudrate": self.baudrate,
                "protocol": info.protocol,
                "vref_mv": info.vref_mv,
                "gain": info.gain,
                "uv_per_count": self._uv_per_count,
                "adc_midpoint": self._mid,
                "format": "emg_acquire",
            },
        )
        # plausibility bound of a counter gap: one second at the board's rate (protocol.py)
        self._decoder = P.FrameDecoder(n_channels=info.channels, adc_bits=info.adc_bits,
                                       max_jump=max(1, int(P.MAX_JUMP_S * info.rate)))

    def _set(self, command: int, value: int) -> None:
        self._ser.write(P.encode_command(command, value))
        ack, _ = _expect_ack(self._ser, command)
        if not ack.ok:
            what = "rate" if command == P.CMD_SET_RATE else "channel count"
            raise ConfigError(
                f"the board refused {what} {value} (it allows {P.RATE_MIN}-{P.RATE_MAX} Hz "
                "dividing 16 MHz, within 500000 baud: e.g. 8 channels up to 1600 Hz)"
            )

    def _open_text(self, seen: bytes) -> None:
        if not self.fs_requested:
            raise ConfigError(
                f"{self.port} sends Arduino Serial Plotter text, which carries no sample rate: "
                "give it with --fs (the rate your sketch prints lines at)"
            )
        self._mode = "text"
        self._text = P.PlotterTextDecoder()
        # learn the channel count from what arrived during the handshake
        probe = P.PlotterTextDecoder()
        probe.feed(seen)
        nch = probe.n_channels
        if nch is None:
            deadline = time.monotonic() + self.handshake_timeout
            while nch is None and time.monotonic() < deadline:
                probe.feed(self._ser.read(1024))
                nch = probe.n_channels
        if nch is None:
            raise SourceTimeout(f"no Serial Plotter lines from {self.port} at {self.baudrate} baud")
        names = probe.labels or ()
        labels: list[str] = []
        for i in range(nch):
            if self.labels and i < len(self.labels):
                labels.append(self.labels[i])
            elif i < len(names) and names[i]:
                labels.append(names[i])
            else:
                labels.append(f"EMG CH{i + 1}")
        self.info = SourceInfo(
            name=f"serial:{self.port}",
            fs=float(self.fs_requested),
            channels=tuple(labels),
            board="serial plotter",
            extra={"port": self.port, "baudrate": self.baudrate, "format": "plotter-text",
                   "text_scale_uv": self.text_scale},
        )
        self._envelope_check = EnvelopeCheck(self.info.fs, self.info.channels)

    # --- streaming -------------------------------------------------------------------------
    def _start_streaming(self) -> None:
        if self._mode == "binary":
            self._start_board()
            self._decoder.restart_counter(0)
        else:
            self._ser.reset_input_buffer()

    def _start_board(self) -> None:
        self._ser.write(P.encode_command(P.CMD_START))
        ack, rest = _expect_ack(self._ser, P.CMD_START)
        if not ack.ok:
            raise ProtocolError(f"the board on {self.port} refused START (code {ack.result})")
        # data frames that followed the ACK in the same read are not lost: the reader gets them
        self._decoder.reset()
        self._start_leftover = rest

    def _stop_streaming(self) -> None:
        if self._mode == "binary":
            self._ser.write(P.encode_command(P.CMD_STOP))
            self._ser.flush()

    def _process(self, data: bytes) -> None:
        if self._mode == "text":
            values, skipped = self._text.feed(data)
            self._pending = self._pending.merged(Status(bytes_skipped=skipped))
            if len(values):
                start = self._expected + self._text_gap  # no counter: gap estimated on reconnect
                self._text_gap = 0
                scaled = values * self.text_scale
                if self._envelope_check is not None and self._envelope_check.feed(scaled):
                    self.info.extra["envelope_channels"] = list(self._envelope_check.flagged)
                    self._envelope_check = None
                self._emit(scaled, start, None)
            return
        res = self._decoder.feed(data)
        self._pending = self._pending.merged(
            Status(crc_errors=res.crc_errors, bytes_skipped=res.bytes_skipped,
                   dropped_frames=res.dropped_frames)
        )
        self.stats["crc_errors"] += res.crc_errors
        self.stats["bytes_skipped"] += res.bytes_skipped
        for key in ("duplicates", "out_of_order", "implausible", "counter_resets"):
            self.stats[key] += getattr(res, key)
        for m in res.messages:
            if m.version == P.VERSION and m.kind == P.KIND_INFO:
                try:
                    self._board = P.parse_info(m.payload)
                except ValueError:
                    pass
        n = len(res.index)
        if not n:
            return
        self.stats["frames"] += n
        counts = res.samples
        uv = (counts.astype(np.float64) - self._mid) * self._uv_per_count
        sat = (counts == 0) | (counts == self._maxcount)
        # split into runs of consecutive indices: a chunk never hides a gap inside it
        breaks = np.flatnonzero(np.diff(res.index) != 1) + 1
        bounds = [0, *breaks.tolist(), n]
        for a, b in zip(bounds[:-1], bounds[1:]):
            self._emit(uv[a:b], int(res.index[a]), sat[a:b])

    # --- reconnect -------------------------------------------------------------------------
    def _resume(self, ser: Any, last_rx: float) -> None:
        if self._mode == "text":
            ser.reset_input_buffer()
            self._text = P.PlotterTextDecoder()
            self._text.n_channels = len(self.info.channels)
            self._text_gap = self._estimated_gap(last_rx)
            return
        self._resume_binary(ser, last_rx)

    def _resume_binary(self, ser: Any, last_rx: float) -> None:
        ser.reset_input_buffer()
        hs = _handshake(ser, self.handshake_timeout, self._stop)
        if hs.info is None:
            raise SourceTimeout("no INFO after reconnect")
        info = hs.info
        if info.channels != len(self.info.channels) or float(info.rate) != self.info.fs:
            if info.streaming:
                raise Disconnected(
                    f"the board on {self.port} came back streaming {info.channels} ch @ "
                    f"{info.rate} Hz instead of {len(self.info.channels)} @ {self.info.fs:g}"
                )
            if info.channels != len(self.info.channels):
                self._set(P.CMD_SET_CHANNELS, len(self.info.channels))
            if float(info.rate) != self.info.fs:
                self._set(P.CMD_SET_RATE, int(self.info.fs))
        # bytes in flight were cut: the counter of the next whole frame tells what was lost
        if info.streaming:
            # the board kept sampling: its counter continues, so the gap is exact; drop the
            # partial frame cut by the disconnect
            self._decoder.discard_buffer()
            # the gap may exceed the plausibility bound by the time the link was down
            self._decoder.allow_jump(int((time.monotonic() - last_rx + 1.0) * self.info.fs))
            return
        # the board was reset: its counter restarts at 0; estimate the gap from the time
        self._start_board()
        self._decoder.restart_counter(self._expected + self._estimated_gap(last_rx))
        self._decoder.n_channels = len(self.info.channels)


class EnvelopeCheck:
    """Warns once when Serial Plotter channels look like an envelope, not raw EMG.

    MyoWare 2.0 sensors output their ENV signal by default: already rectified and smoothed, so
    it is never below its baseline and has no energy above ~20 Hz; filtered as raw EMG (20-450
    Hz band-pass, rectified again) it gives nonsense.  After ``seconds`` of signal, a channel is
    flagged when it is never negative and less than ``hf_share`` of its variance lies above
    20 Hz (raw sEMG has most of its power at 50-150 Hz).  One warning line names the channels
    and what to do (the sensor's RAW output, or the pins of the sketch).
    """

    def __init__(self, fs: float, channels: Sequence[str], seconds: float = 2.0,
                 hf_share: float = 0.05) -> None:
        self.fs = fs
        self.channels = tuple(channels)
        self.need = max(64, int(seconds * fs))
        self.hf_share = hf_share
        self._buf: list[np.ndarray] = []
        self._n = 0
        self.flagged: tuple[str, ...] = ()

    def feed(self, values: np.ndarray) -> bool:
        """Add samples; ``True`` once the check has been made (then drop this object)."""
        self._buf.append(np.asarray(values, dtype=np.float64))
        self._n += len(values)
        if self._n < self.need:
            return False
        x = np.concatenate(self._buf)[: self.need]
        self._buf = []
        self.flagged = tuple(c for c, col in zip(self.channels, x.T) if self._envelope_like(col))
        if self.flagged:
            log.warning(
                "channel(s) %s look like an EMG envelope, not raw EMG (never negative, no energy "
                "above 20 Hz): a MyoWare sensor's ENV output? Wire its RAW pin (or print the raw "
                "ADC), or the feedback will be wrong", ", ".join(self.flagged))
        return True

    def _envelope_like(self, col: np.ndarray) -> bool:
        col = col[np.isfinite(col)]
        if len(col) < 64 or np.min(col) < 0:
            return False
        ac = col - np.mean(col)
        total = float(np.sum(ac**2))
        if total <= 0.0:
            return True  # a constant, non-negative line is no raw EMG either
        if self.fs <= 40.0:
            return False  # 20 Hz is not visible below 40 Hz sampling: cannot tell
        spec = np.abs(np.fft.rfft(ac)) ** 2
        freqs = np.fft.rfftfreq(len(ac), 1.0 / self.fs)
        return float(spec[freqs > 20.0].sum() / spec.sum()) < self.hf_share


def create(arg: str = "", *, baud: int = DEFAULT_BAUD, fs: float | None = None,
           n_channels: int | None = None, labels: Sequence[str] | None = None,
           format: str = "auto", text_scale: float = 1.0, reconnect: bool = True,
           reconnect_timeout: float = 60.0, handshake_timeout: float = 3.0) -> SerialSource:
    """``serial:PORT`` (registry factory; typed options)."""
    return SerialSource(arg, baudrate=baud, fs=fs, n_channels=n_channels, labels=labels,
                        format=format, text_scale=text_scale, reconnect=reconnect,
                        reconnect_timeout=reconnect_timeout, handshake_timeout=handshake_timeout)
