"""The built-in simulated facial board (the default source): :mod:`facesim` behind the source API.

``speed=1.0`` paces the stream to real time (what a board does); ``speed=N`` runs N times faster;
``speed=None`` returns chunks as fast as they are asked for.  Pacing uses the monotonic clock only
to decide *when* to hand samples over; what a sample is and its index never depend on it.

The scenario's protocol periods (``rest``, ``mvc L-ZYG``, exercise reps) arrive as markers in the
chunk where they begin, as the live program's cues would; the ground truth (activations,
planted synkinesis events and every confounder, :attr:`Script.truth`) is available as
:attr:`SimulatedSource.script`.

Missing samples (the ``gaps`` confounder) are never handed out: a chunk ends where a gap
begins and the next one starts after it, its ``start`` jumping by the gap and its
``Status.lost_samples`` saying how many were lost; a cue whose onset falls in the gap arrives with
that next chunk.  Which samples exist and their values do not depend on the chunk sizes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emgfeedback.errors import ConfigError
from emgfeedback.sources.facesim import (
    SCENARIOS,
    FaceModel,
    ModelParams,
    Plan,
    Script,
    apply_confounders,
    make_script,
)
from emgfeedback.stream import Chunk, Marker, SourceBase, SourceInfo, Status, rail_counts

if TYPE_CHECKING:
    from emgfeedback.recording import ArrayRecording

__all__ = ["SimulatedSource", "create", "facial_signal"]

#: Physical range of the simulated front end (a ±2.5 mV input range, as the Nano board's).
SIM_RANGE_UV = (-2500.0, 2500.0)


class SimulatedSource(SourceBase):
    """Simulated facial sEMG board.

    Parameters
    ----------
    scenario:
        One of :data:`~emgfeedback.sources.facesim.SCENARIOS`.
    duration:
        Seconds of signal; ``None`` runs for 2 hours (the demo).
    seed:
        Random seed; the same seed gives the same samples.
    speed:
        ``1.0`` real time, ``N`` times faster, ``None`` as fast as possible.
    block_ms:
        Size of the chunks handed out (10 ms, as a board's USB packets).
    params:
        Patient and recording conditions (:class:`ModelParams`).
    plan:
        What the simulated patient is asked to do instead of the scenario's exercises (a
        clinical program's reps, :data:`~emgfeedback.sources.facesim.Plan`); the cues carry
        the program's exercise names.
    """

    def __init__(
        self,
        scenario: str = "session",
        duration: float | None = None,
        seed: int = 0,
        speed: float | None = 1.0,
        block_ms: float = 10.0,
        params: ModelParams | None = None,
        plan: Plan | None = None,
    ) -> None:
        self.params = params or ModelParams()
        self.scenario = scenario
        self.seed = seed
        self.speed = speed
        seconds = duration if duration is not None else 2 * 3600.0
        self.script: Script = make_script(scenario, seconds, seed, self.params, plan)
        self.model = FaceModel(self.script, self.params, seed)
        self.block = max(1, int(round(block_ms * self.params.fs / 1000.0)))
        self.info = SourceInfo(
            name=f"simulated:{scenario}",
            fs=self.params.fs,
            channels=self.params.channels,
            board="emgfeedback simulated facial board",
            firmware=f"facesim seed={seed}",
            adc_bits=0,
            adc_range_uv=SIM_RANGE_UV,
            extra={"scenario": scenario, "seed": seed, "mains_hz": self.params.mains_hz,
                   "affected_side": self.params.affected_side},
        )
        self._pos = 0
        self._t0: float | None = None
        self._cue_i = 0
        self._gaps = self.script.gaps

    @property
    def finished(self) -> bool:
        return self._pos >= self.script.n_samples

    @property
    def position(self) -> int:
        """Index of the next sample to be read."""
        return self._pos

    def start(self) -> None:
        self._t0 = time.monotonic() - self._pos / (self.params.fs * (self.speed or 1.0))

    def stop(self) -> None:
        self._t0 = None

    def read(self, timeout: float | None = None) -> Chunk | None:
        if self.finished:
            return None
        n = self.block
        if self.speed is not None:
            if self._t0 is None:
                self.start()
            assert self._t0 is not None
            rate = self.params.fs * self.speed
            due = int((time.monotonic() - self._t0) * rate)
            if due - self._pos < n:
                wait = (self._pos + n - due) / rate
                if timeout is not None and wait > timeout:
                    time.sleep(max(timeout, 0.0))
                    return None
                time.sleep(wait)
                due = self._pos + n
            # Catch up after a stall in whole blocks, but never hand over more than 1 s at once.
            n = max(n, min((due - self._pos) // n * n, int(self.params.fs)))
        n = min(n, self.script.n_samples - self._pos)
        return self._emit(n)

    def read_all(self) -> Chunk:
        """The whole remaining signal as one chunk (offline use, tests); a signal with gaps
        cannot be one chunk: use :meth:`read_segments`."""
        if any(b > self._pos for _, b in self._gaps):
            raise ValueError("the simulated signal has gaps (missing samples); use "
                             "read_segments()")
        return self._emit(self.script.n_samples - self._pos)

    def read_segments(self) -> list[Chunk]:
        """The whole remaining signal as contiguous chunks, one per stretch between gaps."""
        out = []
        while not self.finished:
            out.append(self._emit(self.script.n_samples - self._pos))
        return out

    def recording(self, parts: list[Chunk] | None = None) -> "ArrayRecording":
        """The whole remaining signal (or ``parts``, what :meth:`read_segments` returned) as an
        in-memory recording: cue markers, gaps (NaN in their slots, listed in ``gaps``), the
        front end's rails."""
        from emgfeedback.recording import ArrayRecording

        if parts is None:
            parts = self.read_segments()
        start = parts[0].start - parts[0].status.lost_samples if parts else self._pos
        n = self.script.n_samples - start
        data = np.full((n, len(self.params.channels)), np.nan)
        for c in parts:
            data[c.start - start:c.stop - start] = c.data
        gaps = [(a - start, b - a) for a, b in self._gaps if a >= start]
        return ArrayRecording(path=Path(f"simulated-{self.scenario}-seed{self.seed}"),
                              format="simulated", fs=self.params.fs, channels=self.params.channels,
                              n_samples=n, markers=[m for c in parts for m in c.markers],
                              gaps=gaps, info=self.info, rails_uv=SIM_RANGE_UV, data=data)

    def _emit(self, n: int) -> Chunk:
        first = self._pos  # markers from here on (a cue inside a gap comes after it)
        lost = 0
        for a, b in self._gaps:
            if a <= self._pos < b:  # the chunk would start in a gap: skip it
                lost = b - self._pos
                self._pos = b
                break
        start = self._pos
        n = min(n, self.script.n_samples - start)
        for a, _ in self._gaps:
            if start < a < start + n:  # a gap begins inside: end the chunk there
                n = a - start
                break
        x = self.model.samples(start, start + n)
        sat = rail_counts(x, SIM_RANGE_UV)
        if any(sat):
            x = np.clip(x, *SIM_RANGE_UV)
        markers = []
        cues = self.script.cues
        while self._cue_i < len(cues) and cues[self._cue_i].start < start + n:
            c = cues[self._cue_i]
            if c.start >= first:
                markers.append(Marker(c.start, c.stop - c.start, c.text))
            self._cue_i += 1
        self._pos += n
        return Chunk(
            data=x,
            start=start,
            fs=self.params.fs,
            channels=self.params.channels,
            status=Status(lost_samples=lost, saturated=sat),
            markers=tuple(markers),
        )


def create(arg: str = "", *, scenario: str | None = None, duration: float | None = None,
           seed: int = 0, speed: float | None = 1.0, fs: float | None = None,
           mains: float | None = None, confounders: str | list[str] | None = None,
           block_ms: float = 10.0, plan: Plan | None = None,
           **params: object) -> SimulatedSource:
    """``simulated[:SCENARIO]``: the facial model (registry factory; typed options).

    ``plan``: a program for the simulated patient to follow (``session`` scenario only).
    ``confounders``: presets of :data:`~emgfeedback.sources.facesim.CONFOUNDERS` (applied
    first); other keywords are :class:`ModelParams` fields, an unknown one is refused by name."""
    p = apply_confounders(ModelParams(), confounders) if confounders else ModelParams()
    changes: dict[str, object] = {k: v for k, v in params.items() if v is not None}
    if fs:
        changes["fs"] = float(fs)
    if mains:
        changes["mains_hz"] = float(mains)
    if changes:
        unknown = sorted(set(changes) - set(ModelParams.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"board 'simulated' has no option {unknown[0]!r} (its options: the "
                              "registry's (scenario, seed, ...) and the model's parameters: "
                              f"{', '.join(ModelParams.__dataclass_fields__)})")
        p = replace(p, **changes)  # type: ignore[arg-type]
    return SimulatedSource(scenario or arg or "session", duration, seed, speed,
                           block_ms=block_ms, params=p, plan=plan)


__all__ += ["SCENARIOS"]


def facial_signal(scenario: str, channels: tuple[str, ...], *, seed: int = 0,
                  mains: float | None = None, confounders: str | list[str] | None = None
                  ) -> Callable[[int, float, int], np.ndarray]:
    """The facial model's samples in µV for ``channels`` as an analog input: what the simavr
    board's ADC pins carry (pin A<i> gets ``channels[i]``; the source labels its channels the
    same way).  Lost samples are the wire's business, not the electrodes': no gaps here."""

    def signal(n: int, fs: float, n_channels: int) -> np.ndarray:
        params = ModelParams(fs=fs, channels=channels)
        if mains:
            params = replace(params, mains_hz=float(mains))
        if confounders:
            params = apply_confounders(params, confounders)
        params = replace(params, gaps_per_min=0.0)
        src = SimulatedSource(scenario, n / fs, seed, speed=None, params=params)
        with src:
            return src.read_all().data

    return signal
