"""Tones that help: synthesised by the app, played through the sound card (no Qt).

Three sounds, each short and soft (a patient hears them for half an hour):

``hold``    a rising two-note chime: a hold (an exercise, a maximum effort) begins
``relax``   a falling two-note chime: the hold ends, relax
``joined``  two short low pulses: a region that should stay quiet joined in

:func:`synth` makes the samples (16-bit mono PCM, raised-cosine edges so nothing clicks);
:func:`wav_bytes` wraps them as a WAV file.  :class:`Player` plays a sound when
:class:`SoundSettings` allow it, through a *sink* ``sink(samples, rate)``: by default the
``sounddevice`` package when it and a sound card are present (the ``sound`` extra,
``pip install 'emgfeedback[sound]'``, with Debian's ``libportaudio2``), otherwise nothing (the
window says "no sound output").  Tests pass their own
sink and capture the buffers.

Threads: GUI thread (a sink must not block: sounddevice plays asynchronously).
"""

from __future__ import annotations

import io
import logging
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["SOUNDS", "Player", "SoundSettings", "default_sink", "synth", "wav_bytes"]

log = logging.getLogger(__name__)

RATE = 22050

#: Each sound as (frequency Hz, start s, length s) notes.
SOUNDS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "hold": ((523.25, 0.0, 0.16), (783.99, 0.14, 0.22)),  # C5 then G5
    "relax": ((659.25, 0.0, 0.16), (440.0, 0.14, 0.26)),  # E5 then A4
    "joined": ((330.0, 0.0, 0.12), (330.0, 0.2, 0.12)),  # E4, E4
}


@dataclass
class SoundSettings:
    """On/off and volume (0-1), changed from the settings controls (GUI thread)."""

    enabled: bool = True
    volume: float = 0.5


def synth(kind: str, volume: float = 0.5, rate: int = RATE) -> np.ndarray:
    """The samples of sound ``kind`` (int16 mono); ``volume`` 0-1 scales the peak."""
    if kind not in SOUNDS:
        raise ValueError(f"unknown sound {kind!r} (known: {', '.join(SOUNDS)})")
    v = float(min(max(volume, 0.0), 1.0))
    notes = SOUNDS[kind]
    total = max(start + length for _, start, length in notes)
    out = np.zeros(int(round(total * rate)) + 1)
    for freq, start, length in notes:
        n = int(round(length * rate))
        t = np.arange(n) / rate
        ramp = max(1, int(0.012 * rate))  # 12 ms raised-cosine edges: no click
        env = np.ones(n)
        edge = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp))
        env[:ramp] = edge
        env[-ramp:] = edge[::-1]
        env *= np.exp(-2.5 * t)  # a soft decay, like a chime
        # A little of the octave makes a tone that carries at low volume.
        tone = (np.sin(2 * np.pi * freq * t) + 0.25 * np.sin(4 * np.pi * freq * t)) / 1.25
        i = int(round(start * rate))
        out[i:i + n] += tone * env
    peak = np.max(np.abs(out)) or 1.0
    return np.round(out / peak * v * 0.8 * 32767).astype(np.int16)


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    """``samples`` (int16 mono) as a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())
    return buf.getvalue()


Sink = Callable[[np.ndarray, int], None]


def default_sink() -> Sink | None:
    """A sink on the default sound card (``sounddevice``), or ``None`` when there is none."""
    try:
        import sounddevice as sd
    except (ImportError, OSError):  # not installed, or no PortAudio library
        return None
    try:
        sd.query_devices(kind="output")
    except Exception:  # no output device
        return None

    def play(samples: np.ndarray, rate: int) -> None:
        sd.play(samples, rate, blocking=False)

    return play


class Player:
    """Plays the app's sounds through ``sink`` when ``settings`` allow (GUI thread).

    ``sink=None`` looks for the sound card once (:func:`default_sink`); :attr:`available` says
    whether there is one.  Every played buffer is also counted in :attr:`played` (kind).
    """

    def __init__(self, settings: SoundSettings | None = None, sink: Sink | None = None,
                 rate: int = RATE) -> None:
        self.settings = settings or SoundSettings()
        self.rate = rate
        self._sink = sink if sink is not None else default_sink()
        self.played: list[str] = []
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._sink is not None

    def play(self, kind: str) -> bool:
        """Play ``kind``; ``False`` when sound is off, silent or there is no output."""
        s = self.settings
        if not s.enabled or s.volume <= 0.0 or self._sink is None:
            return False
        samples = synth(kind, s.volume, self.rate)
        try:
            self._sink(samples, self.rate)
        except Exception as exc:  # a sound card error must not stop the session
            log.warning("sound %s not played: %s", kind, exc)
            return False
        with self._lock:
            self.played.append(kind)
        return True
