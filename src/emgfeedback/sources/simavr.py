"""The real emg_acquire firmware running in simavr, read through a pty by the real serial source.

``open_source("simavr")`` (``--board simavr``) builds the firmware and the harness when needed
(``make -C firmware`` and ``make -C firmware sim``), turns a microvolt signal into millivolts at
the ADC pins through a model of the analog front end (gain, mid-rail offset, clipping at the
rails), starts ``firmware/sim/emgsim`` on that input and opens its pseudo-terminal with
:class:`~emgfeedback.sources.serial.SerialSource`.  Nothing in the path from the ADC registers to
the chunks is simulated in Python: the bytes come from the firmware's own UART.

The input signal is a parameter: a callable ``signal(n_samples, fs, n_channels) -> array`` in
microvolts (the lead's ``emgfeedback.sources.simulated`` model can provide one), an array
``(samples, channels)`` in microvolts, or by default :func:`synthetic_signal`, deterministic.

Needs a source checkout (the ``firmware/`` folder) and the Debian packages named in
:data:`APT_PACKAGES`; without them opening raises a :class:`SourceError` saying what to install.

Threads: like every source, one consumer thread calls the lifecycle methods; the harness is a
child process, the serial source has its own reader thread.
"""

from __future__ import annotations

import logging
import shutil
import signal as _signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from emgfeedback.errors import ConfigError, SourceError
from emgfeedback.sources.serial import DEFAULT_LABELS, SerialSource
from emgfeedback.stream import Chunk, SourceBase, SourceInfo

log = logging.getLogger(__name__)

__all__ = [
    "APT_PACKAGES",
    "FIRMWARE_DIR",
    "SimavrSource",
    "build",
    "expected_counts",
    "front_end_mv",
    "synthetic_signal",
    "toolchain_missing",
    "write_input",
]

APT_PACKAGES = "gcc-avr avr-libc arduino-core-avr arduino-mk simavr libsimavr-dev"
FIRMWARE_DIR = Path(__file__).resolve().parents[3] / "firmware"
FRONT_END_GAIN = 2000.0  # the gain emg_acquire reports (hardware/README.md)
VREF_MV = 5000
MID_MV = 2500.0
N_ADC = 8

Signal = Callable[[int, float, int], np.ndarray]


def toolchain_missing() -> str | None:
    """``None`` when firmware and harness can be built here, else what is missing and the fix."""
    missing = []
    if shutil.which("avr-gcc") is None:
        missing.append("avr-gcc")
    if not Path("/usr/share/arduino/Arduino.mk").exists():
        missing.append("arduino-mk")
    if not Path("/usr/share/arduino/hardware/arduino/avr/cores/arduino/Arduino.h").exists():
        missing.append("the Arduino AVR core")
    if not Path("/usr/include/simavr/sim_avr.h").exists():
        missing.append("simavr headers")
    if shutil.which("cc") is None or shutil.which("make") is None:
        missing.append("cc/make")
    if not missing:
        return None
    return (
        f"the simavr board needs {', '.join(missing)}: "
        f"sudo apt-get install {APT_PACKAGES} build-essential"
    )


def build(board: str = "nano", firmware_dir: Path = FIRMWARE_DIR) -> tuple[Path, Path]:
    """Build firmware and harness if needed; return ``(elf, harness)`` paths.

    Raises :class:`SourceError` with the tool's last output lines when the build fails.
    """
    if not (firmware_dir / "Makefile").exists():
        raise SourceError(
            f"no firmware sources at {firmware_dir}: the simavr board needs a source checkout "
            "of emgfeedback (git clone), not an installed wheel"
        )
    problem = toolchain_missing()
    if problem:
        raise SourceError(problem)
    elf = firmware_dir / f"build-{board}" / "emg_acquire.elf"
    harness = firmware_dir / "sim" / "emgsim"
    for goal, args in (("firmware", [f"BOARD={board}"]), ("sim", [])):
        proc = subprocess.run(
            ["make", "-s", "-C", str(firmware_dir), goal, *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
            raise SourceError(f"building the {goal} failed (make -C firmware {goal}):\n{tail}")
    return elf, harness


def synthetic_signal(n_samples: int, fs: float, n_channels: int) -> np.ndarray:
    """A deterministic test signal in microvolts, ``(n_samples, n_channels)``.

    Channel ``c``: a sine of (20 + 9c) Hz and (30 + 10c) uV, plus a 0.4 s burst of 80 + 110 Hz
    reaching about 300 uV every 2 s (shifted by 0.2 s per channel), so that every channel has a
    distinct, recognisable waveform within the front end's +-1 mV range.
    """
    t = np.arange(n_samples)[:, None] / fs
    c = np.arange(n_channels)[None, :]
    x = (30.0 + 10.0 * c) * np.sin(2 * np.pi * (20.0 + 9.0 * c) * t)
    phase = np.mod(t - 0.2 * c, 2.0)
    burst = (phase < 0.4) * np.sin(np.pi * phase / 0.4)
    x = x + 300.0 * burst * (0.6 * np.sin(2 * np.pi * 80.0 * t) + 0.4 * np.sin(2 * np.pi * 110 * t))
    return x


def front_end_mv(signal_uv: np.ndarray, gain: float = FRONT_END_GAIN) -> np.ndarray:
    """Millivolts at the ADC pins for a signal at the electrodes: gain, mid-rail offset, rails."""
    mv = MID_MV + np.asarray(signal_uv, dtype=np.float64) * gain / 1000.0
    return np.clip(np.rint(mv), 0, VREF_MV).astype(np.uint16)


def expected_counts(mv: np.ndarray) -> np.ndarray:
    """ADC counts simavr gives for ``mv`` at 5000 mV reference (``mv * 1023 // 5000``)."""
    return np.minimum(np.asarray(mv, dtype=np.int64) * 1023 // VREF_MV, 1023)


def write_input(path: Path, mv: np.ndarray) -> None:
    """Write the harness input: little-endian uint16 mV, 8 columns (missing ones at mid-rail)."""
    mv = np.asarray(mv)
    full = np.full((mv.shape[0], N_ADC), int(MID_MV), dtype="<u2")
    full[:, : mv.shape[1]] = mv
    full.tofile(path)


class SimavrSource(SourceBase):
    """The firmware in simavr as a live source (see the module docstring).

    Parameters
    ----------
    fs, n_channels:
        Requested from the firmware with SET_RATE / SET_CHANNELS.
    signal:
        Callable ``(n, fs, channels) -> uV`` or an array ``(samples, channels)`` in uV; default
        :func:`synthetic_signal`.  It loops after ``input_seconds`` (or the array's length).
    realtime:
        Pace the simulation to wall time (``speed`` x); else it runs as fast as the reader reads.
    """

    def __init__(
        self,
        arg: str = "",
        *,
        fs: float = 1000.0,
        n_channels: int = 8,
        signal: Signal | np.ndarray | None = None,
        input_seconds: float = 20.0,
        realtime: bool = True,
        speed: float = 1.0,
        labels: Sequence[str] | None = None,
        board: str = "nano",
    ) -> None:
        if arg:
            raise ConfigError(f"--board simavr takes no argument (got {arg!r})")
        if not 1 <= n_channels <= N_ADC:
            raise ConfigError(f"simavr board: channels must be 1..{N_ADC}, got {n_channels}")
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.signal = signal
        self.input_seconds = input_seconds
        self.realtime = realtime
        self.speed = speed
        self.labels = tuple(labels) if labels else DEFAULT_LABELS[: self.n_channels]
        self.board = board
        self.input_mv: np.ndarray | None = None
        self.stats_path: Path | None = None
        self.pty: str | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._serial: SerialSource | None = None
        self._harness_stats: dict[str, float] = {}
        self.info = SourceInfo(name="simavr", fs=self.fs, channels=self.labels)

    def _make_input(self) -> np.ndarray:
        if self.signal is None:
            n = int(round(self.input_seconds * self.fs))
            uv = synthetic_signal(n, self.fs, self.n_channels)
        elif callable(self.signal):
            n = int(round(self.input_seconds * self.fs))
            uv = np.asarray(self.signal(n, self.fs, self.n_channels), dtype=np.float64)
        else:
            uv = np.asarray(self.signal, dtype=np.float64)
        if uv.ndim != 2 or uv.shape[1] < self.n_channels or uv.shape[0] < 1:
            raise ConfigError(
                f"simavr signal must be (samples, >= {self.n_channels}) uV, got {uv.shape}"
            )
        return front_end_mv(uv[:, : self.n_channels])

    def open(self) -> None:
        """Build if needed, start the harness, open its pty with the serial source."""
        elf, harness = build(self.board)
        self._tmp = tempfile.TemporaryDirectory(prefix="emgsim-")
        tmp = Path(self._tmp.name)
        self.input_mv = self._make_input()
        write_input(tmp / "input.u16", self.input_mv)
        self.stats_path = tmp / "stats.txt"
        cmd = [str(harness), "-i", str(tmp / "input.u16"), "-c", str(N_ADC), "-S",
               str(self.stats_path)]
        if self.realtime:
            cmd += ["-R", "-x", str(self.speed)]
        cmd.append(str(elf))
        log.info("starting %s", " ".join(cmd))
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("PTY "):
                self.pty = line.split(None, 1)[1].strip()
                break
        if self.pty is None:
            self.close()
            raise SourceError("the simavr harness exited before opening its pty")
        self._serial = SerialSource(
            self.pty, fs=self.fs, n_channels=self.n_channels, labels=self.labels,
            reconnect=False, handshake_timeout=5.0,
        )
        try:
            self._serial.open()
        except BaseException:
            self.close()
            raise
        s = self._serial.info
        self.info = SourceInfo(
            name="simavr",
            fs=s.fs,
            channels=s.channels,
            board=f"{s.board} (simavr)",
            firmware=s.firmware,
            adc_bits=s.adc_bits,
            adc_range_uv=s.adc_range_uv,
            extra={**s.extra, "pty": self.pty, "elf": str(elf), "front_end_gain": FRONT_END_GAIN},
        )

    def start(self) -> None:
        if self._serial is None:
            raise SourceError("start() before open()")
        self._serial.start()

    def read(self, timeout: float | None = None) -> Chunk | None:
        if self._serial is None:
            return None
        return self._serial.read(timeout)

    @property
    def serial(self) -> SerialSource | None:
        """The serial source reading the pty (for its ``stats``)."""
        return self._serial

    def stop(self) -> None:
        if self._serial is not None:
            self._serial.stop()

    def harness_stats(self) -> dict[str, float]:
        """The harness's statistics (cycles, conversions, bytes), available after :meth:`close`."""
        return dict(self._harness_stats)

    def _read_stats(self) -> None:
        if self.stats_path is None or not self.stats_path.exists():
            return
        for line in self.stats_path.read_text().splitlines():
            k, _, v = line.partition("=")
            if v:
                self._harness_stats[k] = float(v)

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(_signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def close(self) -> None:
        """Close the port, stop the harness, keep its statistics, remove the temporary files."""
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        self._kill()
        self._read_stats()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self.stats_path = None


def create(arg: str = "", *, fs: float = 1000.0, n_channels: int = 8,
           signal: Signal | np.ndarray | None = None, input_seconds: float = 20.0,
           realtime: bool = True, speed: float = 1.0, labels: Sequence[str] | None = None,
           board: str = "nano") -> SimavrSource:
    """``simavr`` (registry factory; typed options)."""
    return SimavrSource(arg, fs=fs, n_channels=n_channels, signal=signal,
                        input_seconds=input_seconds, realtime=realtime, speed=speed,
                        labels=labels, board=board)
