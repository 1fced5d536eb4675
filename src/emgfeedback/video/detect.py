"""Video synkinesis: the eye narrowing while the mouth moves, and the converse, on the sample axis.

The rule (docs/video.md):

* the mouth **moves** on a side when its corner is more than :attr:`VideoRules.mouth_moving`
  (IOD units) from its rest position;
* the eye **narrows** on a side when its aperture falls below ``1 - eye_narrowing`` of its rest
  aperture.  A healthy genuine (Duchenne) smile narrows the eye too: 20 % in the shared
  ``single_face.mp4`` clip, 15-25 % in the literature on orbicularis oculi pars lateralis in
  smiling, so the default limit is **30 %**, beyond a healthy smile; the therapist may set it per
  patient.
* a **video synkinesis event** is a stretch of at least :attr:`VideoRules.min_duration_s` during
  which both hold on the same side.  A blink narrows the eye for only 100-300 ms (domain.md), so
  the 0.4 s minimum leaves blinks out.
* its **trigger** is the movement that began first (or the exercise of the rep it falls in, when
  reps are given): ``mouth`` gives an *oral-ocular* event (the eye closes when the patient
  smiles), ``eye`` an *ocular-oral* one (the mouth corner pulls when the patient closes the eye).

Frames without a frontal face break a stretch; nothing is interpolated across them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from emgfeedback.errors import ConfigError
from emgfeedback.video.measures import Relative

__all__ = ["VideoEvent", "VideoRules", "detect"]


@dataclass(frozen=True)
class VideoRules:
    """Thresholds of the video synkinesis rule (defaults documented in the module docstring)."""

    eye_narrowing: float = 0.30
    mouth_moving: float = 0.08
    min_duration_s: float = 0.4

    def __post_init__(self) -> None:
        for name, lo, hi in (("eye_narrowing", 0.05, 0.95), ("mouth_moving", 0.01, 1.0),
                             ("min_duration_s", 0.0, 30.0)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or not lo <= v <= hi:
                raise ConfigError(f"video rule {name} must be a number in [{lo}, {hi}], "
                                  f"got {v!r}")


@dataclass(frozen=True)
class VideoEvent:
    """One video synkinesis event; samples are EMG sample indices, frames frame indices."""

    side: str
    trigger: str  # "mouth" (oral-ocular) or "eye" (ocular-oral)
    onset: int
    offset: int
    onset_frame: int
    offset_frame: int
    peak_frame: int
    eye_pct_of_rest: float  # narrowest eye aperture, % of rest
    mouth_excursion: float  # mouth-corner excursion at that frame, IOD units

    @property
    def pattern(self) -> str:
        return "oral-ocular" if self.trigger == "mouth" else "ocular-oral"

    def to_json(self, fs: float) -> dict[str, Any]:
        return {"type": "video_synkinesis", "pattern": self.pattern, "side": self.side,
                "trigger": self.trigger, "onset_s": round(self.onset / fs, 4),
                "offset_s": round(self.offset / fs, 4), "onset_sample": self.onset,
                "offset_sample": self.offset, "peak_frame": self.peak_frame,
                "eye_pct_of_rest": round(self.eye_pct_of_rest, 1),
                "mouth_excursion": round(self.mouth_excursion, 4)}


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of ``mask``."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[0::2].tolist(), d[1::2].tolist()))


def _run_start(mask: np.ndarray, i: int) -> int:
    """First index of the True run of ``mask`` containing ``i``."""
    j = i
    while j > 0 and mask[j - 1]:
        j -= 1
    return j


def detect(rel: Relative, samples: np.ndarray, fps: float, rules: VideoRules | None = None,
           reps: list[tuple[int, int, str]] | None = None) -> list[VideoEvent]:
    """Video synkinesis events of ``rel`` (per-frame relative measures).

    ``samples`` holds each frame's EMG sample index; ``reps`` optionally the EMG reps as
    ``(start_sample, stop_sample, exercise)``, which then decide the trigger.
    """
    rules = rules or VideoRules()
    samples = np.asarray(samples, dtype=np.int64)
    min_frames = max(1, int(np.ceil(rules.min_duration_s * fps)))
    events: list[VideoEvent] = []
    for side in ("L", "R"):
        eye, mouth = rel.eye[side], rel.mouth[side]
        with np.errstate(invalid="ignore"):
            narrow = np.nan_to_num(eye, nan=1.0) < 1.0 - rules.eye_narrowing
            moving = np.nan_to_num(mouth, nan=0.0) > rules.mouth_moving
        for a, b in _runs(narrow & moving):
            if b - a < min_frames:
                continue
            trigger = "mouth" if _run_start(moving, a) <= _run_start(narrow, a) else "eye"
            for start, stop, exercise in reps or ():
                if start <= samples[a] < stop:
                    trigger = "eye" if "eye" in exercise else "mouth"
                    break
            seg = eye[a:b]
            k = a + int(np.nanargmin(seg))
            events.append(VideoEvent(side, trigger, int(samples[a]), int(samples[b - 1]),
                                     a, b - 1, k, float(100.0 * eye[k]), float(mouth[k])))
    events.sort(key=lambda e: (e.onset, e.side))
    return events
