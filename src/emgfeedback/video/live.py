"""The camera (or a video file) beside a running EMG session, and its replay in step with the EMG.

Qt-free; :mod:`emgfeedback.app.video` attaches it to a :class:`~emgfeedback.app.session.Session`.

:class:`VideoFeed` (live) runs **one worker thread** that reads a frame, stamps it with the EMG
sample index it belongs to (:class:`~emgfeedback.video.clock.FrameClock`: a camera's host time
is mapped through the fit of ``(host time, samples delivered)`` pairs the session thread reports
with :meth:`VideoFeed.feed`; a file's frame ``i`` is at ``start + fs * i / fps`` exactly, where
``start`` is the EMG sample at which it began), finds the face (MediaPipe), measures it, runs the
streaming video synkinesis detector (:class:`LiveVideoDetector`), writes the frame into the
session's video when recording, and publishes the newest :class:`LiveFrame` for the views.  The
face model runs in a process of its own (:class:`~emgfeedback.video.landmarks.LandmarkProcess`,
frames through shared memory, niced), so it never holds the EMG thread's interpreter lock nor
takes its CPU first; the session thread only hands over its sample count (a lock and an
integer), and when the worker falls behind it **drops frames** (a camera's stale frames, or a
file's frame when the next one is due already), never samples.

What a recording keeps (beside ``REC.edf``): ``REC.mp4`` (the frames, 0600), and in the sidecar
under ``"video"`` the frame-to-sample table (:meth:`VideoRecorder.table
<emgfeedback.video.record.VideoRecorder.table>`: stream sample of every frame, fps, size, drift
ppm) plus ``landmarks``: the name of ``REC-landmarks.npz`` (0600), the landmarks the measures
use (:data:`~emgfeedback.video.measures.USED_LANDMARKS`, pixels, NaN without a face) of every
recorded frame, as measured live.  Like the EDF's samples, they are what the live detector saw:
:class:`VideoReplay` feeds them to the same detector at their samples as the replayed EMG
reaches them, so a replay raises exactly the live video events (``emgfeedback video REC.mp4``
measures the compressed frames again, which may differ by a frame at a threshold).

Threads: :meth:`VideoFeed.feed`, :meth:`VideoFeed.start_recording`,
:meth:`VideoFeed.stop_recording` and :meth:`close` from the session thread; :meth:`latest`,
:attr:`events` and :meth:`stats` from any thread (the window's timer).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgfeedback.errors import ConfigError, EmgError, FileFormatError
from emgfeedback.stream import Processed
from emgfeedback.video.detect import VideoEvent, VideoRules
from emgfeedback.video.measures import N_LANDMARKS, USED_LANDMARKS, Rest, geometry, rest_of

__all__ = ["LiveFrame", "LiveVideoDetector", "VideoFeed", "VideoReplay", "VideoSpec",
           "landmarks_path", "load_landmarks"]

log = logging.getLogger(__name__)

_USED = np.asarray(USED_LANDMARKS)


#: How much less CPU priority the face model's process gets than the EMG's (``nice`` steps): when
#: the cores are busy, the kernel serves the EMG path first.
VIDEO_NICE = 5


@dataclass(frozen=True)
class VideoSpec:
    """The session's camera or video file (exactly one).

    ``mirror``: the views show the image flipped as a mirror (display only: measures use the
    frames as captured).  ``loop``: a file starts again at its end (the demo).  ``nice``: how
    much lower the face model's process runs than the EMG (0: the same priority).
    """

    path: Path | None = None
    camera: int | None = None
    mirror: bool = True
    loop: bool = False
    rules: VideoRules = field(default_factory=VideoRules)
    rest_s: float = 0.5
    nice: int = VIDEO_NICE  # the face model's process: lower priority than the EMG's

    def __post_init__(self) -> None:
        if (self.path is None) == (self.camera is None):
            raise ConfigError("video needs either a file (--video FILE) or a camera (--camera N)")
        if self.camera is not None and not 0 <= int(self.camera) <= 63:
            raise ConfigError(f"--camera must be a device index 0-63, got {self.camera}")
        if not 0 <= int(self.nice) <= 19:
            raise ConfigError(f"video nice must be 0-19, got {self.nice}")
        if not 0.05 <= self.rest_s <= 60.0:
            raise ConfigError(f"video rest must be 0.05-60 s, got {self.rest_s}")

    def describe(self) -> str:
        return f"camera {self.camera}" if self.camera is not None else str(self.path)


@dataclass(frozen=True)
class LiveFrame:
    """One frame for a view: the image (BGR uint8, as captured, not flipped), its landmarks in
    the image's pixels (``(468, 2)``, NaN for those not kept, or ``None``), per side the measures
    relative to rest (``{"L": {"eye": % of rest, "mouth": IOD}}``), the sides with a video
    synkinesis now, its EMG ``sample`` and ``t_capture`` (``time.perf_counter()`` when it was
    read: the frame-to-screen latency starts there)."""

    image: np.ndarray
    landmarks: np.ndarray | None = None
    measures: dict[str, dict[str, float]] = field(default_factory=dict)
    alert_sides: tuple[str, ...] = ()
    sample: int = 0
    t_capture: float = 0.0


def _full(points: np.ndarray | None) -> np.ndarray:
    """The kept landmarks ``(len(USED_LANDMARKS), 2)`` (or None) as a ``(468, 2)`` array."""
    out = np.full((N_LANDMARKS, 2), np.nan)
    if points is not None:
        out[_USED] = points
    return out


# =========================================================================== streaming detector
class LiveVideoDetector:
    """:func:`emgfeedback.video.detect.detect` (and the rest reference of
    :func:`~emgfeedback.video.analysis.measure_landmarks`) one frame at a time: pushing the frames
    of a video one by one gives exactly the events of the whole-video analysis of the same frames
    (``tests/test_video_session.py``).  The rest is the frames of the first ``rest_s`` seconds of
    *samples* from the first frontal one (the same frames when none is dropped; with dropped
    frames still the first half second, not the first 15 frames measured); frames before it is
    known wait in a buffer.  ``min_duration_s`` counts frames at ``fps``.
    """

    def __init__(self, fps: float, fs: float, rules: VideoRules | None = None,
                 rest_s: float = 0.5) -> None:
        self.fps = float(fps)
        self._fs = float(fs)  # the sample axis: the rest lasts rest_s of samples
        self.rules = rules or VideoRules()
        self.min_frames = max(1, int(np.ceil(self.rules.min_duration_s * self.fps)))
        self.rest_s = float(rest_s)
        self.rest: Rest | None = None
        self.events: list[VideoEvent] = []
        self.frames = 0
        self._geo: list[tuple[np.ndarray, int]] = []  # (468x2 landmarks, sample) before the rest
        self._first_frontal: int | None = None
        self._k = 0  # next frame to evaluate
        self._run: dict[str, dict[str, Any]] = {
            s: {"mv": None, "nr": None, "a": None, "a_trig": "", "a_sample": 0, "peak": 0,
                "peak_eye": np.inf, "peak_mouth": 0.0, "last_sample": 0} for s in ("L", "R")}
        self.now: dict[str, dict[str, float]] = {}

    def push(self, landmarks: np.ndarray | None, sample: int) -> list[VideoEvent]:
        """One frame (``(468, 2)`` pixels or ``None`` without a face); returns the events that
        ended with it."""
        lm = landmarks if landmarks is not None else np.full((N_LANDMARKS, 2), np.nan)
        i = self.frames
        self.frames += 1
        if self.rest is None:
            f0 = self._first_frontal
            if f0 is not None and sample - self._geo[f0][1] >= self.rest_s * 0.9999 * self._fs:
                out = self._set_rest()  # the rest period is over: this frame is after it
                return out + self._step(lm, int(sample))
            self._geo.append((lm, int(sample)))
            if f0 is None and bool(geometry(lm[None]).frontal[0]):
                self._first_frontal = i
            return []
        return self._step(lm, int(sample))

    def _set_rest(self) -> list[VideoEvent]:
        assert self._first_frontal is not None
        a = self._first_frontal
        lms = np.stack([g for g, _ in self._geo[a:]])
        self.rest = rest_of(geometry(lms), np.arange(len(lms)))
        buffered, self._geo = self._geo, []
        out: list[VideoEvent] = []
        for lm, s in buffered:
            out += self._step(lm, s)
        return out

    def _step(self, lm: np.ndarray, sample: int) -> list[VideoEvent]:
        assert self.rest is not None
        g = geometry(lm[None])
        k = self._k
        self._k += 1
        out: list[VideoEvent] = []
        self.now = {}
        for side in ("L", "R"):
            st = self._run[side]
            if g.frontal[0]:
                eye = float(g.eye_aperture[side][0] / self.rest.eye_aperture[side])
                c = g.corner[side][0] - np.asarray(self.rest.corner[side])
                mouth = float(np.hypot(c[0], c[1]))
                self.now[side] = {"eye": 100.0 * eye, "mouth": mouth}
            else:
                eye, mouth = 1.0, 0.0  # as detect's nan_to_num: not narrow, not moving
            narrow = eye < 1.0 - self.rules.eye_narrowing
            moving = mouth > self.rules.mouth_moving
            st["mv"] = (st["mv"] if st["mv"] is not None else k) if moving else None
            st["nr"] = (st["nr"] if st["nr"] is not None else k) if narrow else None
            if narrow and moving:
                if st["a"] is None:
                    st["a"], st["a_sample"] = k, sample
                    st["a_trig"] = "mouth" if st["mv"] <= st["nr"] else "eye"
                    st["peak_eye"] = np.inf
                if eye < st["peak_eye"]:
                    st["peak"], st["peak_eye"], st["peak_mouth"] = k, eye, mouth
                st["last_sample"] = sample
            elif st["a"] is not None:
                ev = self._end(side, k)
                if ev is not None:
                    out.append(ev)
        return out

    def _end(self, side: str, b: int) -> VideoEvent | None:
        st = self._run[side]
        a = st["a"]
        st["a"] = None
        if b - a < self.min_frames:
            return None
        ev = VideoEvent(side, st["a_trig"], st["a_sample"], st["last_sample"], a, b - 1,
                        st["peak"], 100.0 * st["peak_eye"], st["peak_mouth"])
        self.events.append(ev)
        return ev

    @property
    def alert_sides(self) -> tuple[str, ...]:
        """Sides inside a video synkinesis that already lasts the minimum duration."""
        return tuple(s for s in ("L", "R") if self._run[s]["a"] is not None
                     and self._k - self._run[s]["a"] >= self.min_frames)

    def finish(self) -> list[VideoEvent]:
        """The video ended: a rest from the frames there are, the events still open."""
        out: list[VideoEvent] = []
        if self.rest is None and self._first_frontal is not None:
            out += self._set_rest()
        for side in ("L", "R"):
            if self._run[side]["a"] is not None:
                ev = self._end(side, self._k)
                if ev is not None:
                    out.append(ev)
        return out

    def sorted_events(self) -> list[VideoEvent]:
        return sorted(self.events, key=lambda e: (e.onset, e.side))


# =========================================================================== recording
def landmarks_path(video: Path) -> Path:
    """``REC-landmarks.npz`` beside ``REC.mp4``."""
    return video.with_name(video.stem + "-landmarks.npz")


def _write_landmarks(path: Path, samples: Sequence[int], points: Sequence[np.ndarray]) -> None:
    arr = (np.stack(points).astype(np.float32) if points
           else np.zeros((0, len(USED_LANDMARKS), 2), np.float32))
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        np.savez_compressed(f, samples=np.asarray(samples, np.int64), points=arr,
                            used=np.asarray(USED_LANDMARKS, np.int16))
    os.replace(tmp, path)


def load_landmarks(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(samples, points)`` of a session's ``-landmarks.npz`` (points ``(n, kept, 2)``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            samples = np.asarray(z["samples"], np.int64)
            points = np.asarray(z["points"], np.float64)
            used = tuple(int(i) for i in z["used"])
    except FileNotFoundError:
        raise FileFormatError(f"{path}: the session's video landmarks are missing") from None
    except (OSError, KeyError, ValueError) as exc:
        raise FileFormatError(f"{path}: damaged video landmarks ({exc})") from None
    if used != USED_LANDMARKS or points.shape[1:] != (len(used), 2) or \
            len(points) != len(samples):
        raise FileFormatError(f"{path}: video landmarks of another layout")
    return samples, points


class _Recording:
    """The video being recorded beside an EDF+ (worker thread writes, session thread closes)."""

    def __init__(self, path: Path, first_sample: int) -> None:
        self.path = path
        self.first_sample = first_sample
        self.writer: Any = None  # VideoRecorder, opened by the worker at the first frame
        self.points: list[np.ndarray] = []
        self.error: str | None = None


# =========================================================================== live
class VideoFeed:
    """The camera or video file of a live session; see the module docstring.

    Parameters
    ----------
    spec:
        Camera or file.
    fs:
        The EMG sample rate (the sample axis).
    """

    def __init__(self, spec: VideoSpec, fs: float) -> None:
        from emgfeedback.video import missing
        from emgfeedback.video.clock import FrameClock

        why = missing()
        if why is not None:
            raise EmgError(why)
        if spec.path is not None and not Path(spec.path).is_file():
            raise FileFormatError(f"{spec.path}: no such video file")
        self.spec = spec
        self.fs = float(fs)
        self.clock = FrameClock(fs)  # a camera's; a file gets a fixed one when it starts
        self.mirror = spec.mirror
        self.fps = 0.0
        self.size = (0, 0)
        self.detector: LiveVideoDetector | None = None
        self.error: str | None = None
        self.frames_read = 0
        self.frames_measured = 0
        self.frames_dropped = 0
        self.landmarks_ms: deque[float] = deque(maxlen=2000)
        self._position = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._latest: LiveFrame | None = None
        self._rec_lock = threading.Lock()
        self._rec: _Recording | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._idle = threading.Event()  # a file's worker waits for the EMG (all frames done)
        self._first_measured: int | None = None
        self._last_measured = 0

    # ---- any thread
    def latest(self) -> LiveFrame | None:
        return self._latest

    @property
    def events(self) -> list[VideoEvent]:
        d = self.detector
        return d.sorted_events() if d is not None else []

    def stats(self) -> dict[str, Any]:
        ms = list(self.landmarks_ms)
        first = self._first_measured
        span = (self._last_measured - first) / self.fs if first is not None else 0.0
        return {"read": self.frames_read, "measured": self.frames_measured,
                "dropped": self.frames_dropped, "fps": self.fps,
                "measured_fps": (self.frames_measured - 1) / span if span > 0 else None,
                "landmarks_ms_median": float(np.median(ms)) if ms else None,
                "drift_ppm": self.clock.drift_ppm if self.spec.camera is not None else None}

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the camera/file is open (or failed)."""
        return self._ready.wait(timeout)

    # ---- session thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="emgfeedback-video", daemon=True)
        self._thread.start()

    def feed(self, p: Processed) -> None:
        """The EMG stream has delivered up to ``p.stop`` (session thread: a lock, no work)."""
        self.clock.observe(time.monotonic(), p.stop)
        with self._cond:
            self._position = p.stop
            self._idle.clear()  # the worker may have frames to measure now
            self._cond.notify_all()

    def start_recording(self, edf: Path, first_sample: int) -> None:
        """Record the frames from ``first_sample`` on into ``edf``'s ``.mp4`` (session thread)."""
        with self._rec_lock:
            self._rec = _Recording(Path(edf).with_suffix(".mp4"), int(first_sample))

    def stop_recording(self) -> dict[str, Any]:
        """Close the video being recorded; returns the sidecar entries (``{"video": table}``,
        ``{}`` when no frame was recorded). Session thread.

        A file's frames up to the EMG's last sample are measured first (at most 2 s), so the
        recording holds every frame the live detector saw."""
        th = self._thread
        if self.spec.path is not None and th is not None:
            deadline = time.monotonic() + 2.0
            while th.is_alive() and not self._idle.is_set() and time.monotonic() < deadline:
                time.sleep(0.005)
        with self._rec_lock:
            rec, self._rec = self._rec, None
        if rec is None or rec.writer is None:
            if rec is not None and rec.error:
                log.warning("session video not recorded: %s", rec.error)
            return {}
        rec.writer.close()
        if self.spec.camera is not None:
            rec.writer.drift_ppm = self.clock.drift_ppm
        lpath = landmarks_path(rec.path)
        _write_landmarks(lpath, rec.writer.samples, rec.points)
        table = rec.writer.table()
        r = self.spec.rules
        table.update(landmarks=lpath.name, fs=self.fs,
                     source="camera" if self.spec.camera is not None else "file",
                     rules={"eye_narrowing": r.eye_narrowing, "mouth_moving": r.mouth_moving,
                            "min_duration_s": r.min_duration_s, "rest_s": self.spec.rest_s})
        return {"video": table}

    def close(self) -> None:
        """Stop the worker (and close an open video recording's file)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        th = self._thread
        if th is not None and th is not threading.current_thread():
            th.join(5.0)
            if th.is_alive():
                log.warning("video thread did not stop within 5 s")
        with self._rec_lock:
            rec, self._rec = self._rec, None
        if rec is not None and rec.writer is not None:
            rec.writer.close()

    # ---- the worker thread
    def _wait_for(self, sample: int) -> int | None:
        """Wait until the EMG reached ``sample``; the position, or None when stopping."""
        with self._cond:
            while self._position < sample and not self._stop.is_set():
                self._idle.set()  # caught up with the EMG
                self._cond.wait(0.2)
            self._idle.clear()
            return None if self._stop.is_set() else self._position

    def _work(self) -> None:
        from emgfeedback.video.landmarks import LandmarkProcess
        from emgfeedback.video.source import VideoSource

        lm: Any = None
        try:
            if self.spec.camera is not None:
                src = VideoSource(camera=self.spec.camera, clock=self.clock, fs=self.fs)
                w, h = src.size
                lm = LandmarkProcess((h, w, 3), USED_LANDMARKS, nice=self.spec.nice)
                self._camera(src, lm)
            else:
                assert self.spec.path is not None
                with VideoSource(self.spec.path, fs=self.fs) as probe:
                    w, h = probe.size
                lm = LandmarkProcess((h, w, 3), USED_LANDMARKS, nice=self.spec.nice)
                self._file(lm)
        except EmgError as exc:
            self.error = str(exc)
            log.warning("video stopped: %s", exc)
        except Exception as exc:  # reported, never lost in a thread; the EMG goes on
            self.error = f"video stopped: {type(exc).__name__}: {exc}"
            log.error("video thread failed", exc_info=exc)
        finally:
            self._ready.set()
            self._idle.set()
            if lm is not None:
                lm.close()
            if self.detector is not None:
                self.detector.finish()

    def _opened(self, src: Any) -> None:
        self.fps, self.size = float(src.fps), tuple(src.size)
        if self.detector is None:
            self.detector = LiveVideoDetector(self.fps, self.fs, self.spec.rules,
                                             self.spec.rest_s)
        self._ready.set()

    def _camera(self, src: Any, lm: Any) -> None:
        import cv2

        with src:
            src._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
            self._opened(src)
            while not self._stop.is_set():
                f = src.read()
                if f is None:
                    raise EmgError(f"camera {self.spec.camera} stopped delivering frames")
                self.frames_read += 1
                if f.sample is None:  # the clock has not seen the EMG yet
                    continue
                self._frame(f.image, f.sample, time.perf_counter(), lm)

    def _file(self, lm: Any) -> None:
        from emgfeedback.video.clock import FrameClock
        from emgfeedback.video.source import VideoSource

        assert self.spec.path is not None
        start = self._wait_for(1)  # the EMG has started: the file starts at this sample
        done = 0  # frames of earlier loops
        while start is not None and not self._stop.is_set():
            clock = FrameClock.fixed(self.fs, start + self.fs * done / (self.fps or 1.0))
            with VideoSource(self.spec.path, clock=clock, fs=self.fs) as src:
                self._opened(src)
                n = 0
                period = self.fs / self.fps
                while not self._stop.is_set():
                    f = src.read()
                    if f is None:
                        break
                    n += 1
                    self.frames_read += 1
                    assert f.sample is not None
                    pos = self._wait_for(f.sample)
                    if pos is None:
                        return
                    if pos >= f.sample + 2 * period:  # the next one is due too: drop this
                        self.frames_dropped += 1     # frame (never a sample)
                        continue
                    self._frame(f.image, f.sample, time.perf_counter(), lm)
            if not self.spec.loop or n == 0:
                return
            done += n

    def _frame(self, image: np.ndarray, sample: int, t_capture: float, lm: Any) -> None:
        t0 = time.perf_counter()
        found = lm.landmarks(image, USED_LANDMARKS)
        self.landmarks_ms.append(1000.0 * (time.perf_counter() - t0))
        # What is stored is what the detector sees: the kept points, on float32 (replay exact).
        kept = None if found is None else found[_USED].astype(np.float32).astype(np.float64)
        pts = None if kept is None else _full(kept)
        self.frames_measured += 1
        if self._first_measured is None:
            self._first_measured = sample
        self._last_measured = sample
        det = self.detector
        assert det is not None
        with self._rec_lock:
            rec = self._rec
            if rec is not None and sample >= rec.first_sample and rec.error is None:
                self._record(rec, image, sample, pts)
        det.push(pts, sample)
        self._latest = LiveFrame(image, pts, dict(det.now), det.alert_sides, sample, t_capture)

    def _record(self, rec: _Recording, image: np.ndarray, sample: int,
                pts: np.ndarray | None) -> None:
        from emgfeedback.video.record import VideoRecorder

        try:
            if rec.writer is None:
                rec.writer = VideoRecorder(rec.path, self.fps, self.size)
            n = len(rec.writer.samples)
            rec.writer.write(image, sample)
        except EmgError as exc:
            rec.error = str(exc)
            log.warning("session video: %s", exc)
            return
        if len(rec.writer.samples) > n:
            rec.points.append(np.full((len(USED_LANDMARKS), 2), np.nan) if pts is None
                              else pts[_USED])  # already on float32


# =========================================================================== replay
class VideoReplay:
    """A recorded session's video beside its replayed EMG: the frames at their samples, the
    landmarks measured live pushed to the same detector as the EMG reaches them (session
    thread); :meth:`latest` decodes the frame on screen (the caller's thread, when a view asks).

    ``table`` is the sidecar's ``"video"``, ``folder`` the recording's, ``first_sample`` the
    sidecar's (stream index of the file's slot 0: replayed chunks count from the file's start).
    """

    def __init__(self, table: dict[str, Any], folder: Path, first_sample: int = 0,
                 rules: VideoRules | None = None, rest_s: float = 0.5,
                 mirror: bool = True) -> None:
        from emgfeedback.video.record import VideoTrack

        self.track = VideoTrack(table, folder)
        name = table.get("landmarks")
        if not isinstance(name, str) or "/" in name or "\\" in name:
            raise FileFormatError("video table in the sidecar names no landmarks file")
        samples, points = load_landmarks(Path(folder) / name)
        if list(samples) != list(self.track.samples):
            raise FileFormatError(f"{name}: its samples disagree with the sidecar's video table")
        self.samples = np.asarray(samples) - int(first_sample)
        self.points = points
        self.fps = self.track.fps
        self.mirror = mirror
        stored = table.get("rules")
        if rules is None and isinstance(stored, dict):  # the live session's own rules
            try:
                rules = VideoRules(**{k: float(stored[k]) for k in
                                      ("eye_narrowing", "mouth_moving", "min_duration_s")})
                rest_s = float(stored.get("rest_s", rest_s))
            except (KeyError, TypeError, ValueError, ConfigError) as exc:
                raise FileFormatError(f"video rules in the sidecar are damaged ({exc})") from None
        fs = float(table.get("fs") or 0.0) or 1000.0
        self.detector = LiveVideoDetector(self.fps, fs, rules, rest_s)
        self.error: str | None = None
        self._next = 0
        self._shown: tuple[int, LiveFrame] | None = None
        self._state: tuple[int, dict[str, dict[str, float]], tuple[str, ...]] | None = None
        self._lock = threading.Lock()

    @property
    def events(self) -> list[VideoEvent]:
        return self.detector.sorted_events()

    def feed(self, p: Processed) -> None:
        n = len(self.samples)
        while self._next < n and self.samples[self._next] < p.stop:
            i = self._next
            pts = self.points[i]
            self.detector.push(None if np.isnan(pts).all() else _full(pts), int(self.samples[i]))
            self._next += 1
            with self._lock:
                self._state = (i, dict(self.detector.now), self.detector.alert_sides)

    def latest(self) -> LiveFrame | None:
        with self._lock:
            state = self._state
        if state is None:
            return None
        i, measures, alerts = state
        if self._shown is not None and self._shown[0] == i:
            return self._shown[1]
        img = self.track.image(i)
        if img is None:
            return None
        pts = self.points[i]
        f = LiveFrame(img, None if np.isnan(pts).all() else _full(pts), measures, alerts,
                      int(self.samples[i]), time.perf_counter())
        self._shown = (i, f)
        return f

    def stats(self) -> dict[str, Any]:
        return {"read": self._next, "measured": self._next, "dropped": 0, "fps": self.fps,
                "measured_fps": None,
                "landmarks_ms_median": None, "drift_ppm": None}

    def close(self) -> None:
        self.detector.finish()
        self.track.close()
