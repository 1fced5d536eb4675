"""The video beside a session (issue 16 items 1, 4, 5): a video file started by the session
orchestrator, recorded beside the EDF+ (0600, the sidecar's video table), replayed in step with the
EMG with the live run's video events; the streaming detector equals the whole-video analysis; the
controller and the window without the video extra; the mirror in the window's screens."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from emgfeedback.video import missing

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "video"
SINGLE = VIDEOS / "single_face.mp4"

needs_video = pytest.mark.skipif(missing() is not None or not SINGLE.is_file(),
                                 reason="the video extra and ../shared/data/video")


def _landmarks(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Every frame's landmarks as the live feed keeps them (the measured points, float32)."""
    from emgfeedback.video.landmarks import Landmarker, quiet_stderr
    from emgfeedback.video.live import _USED, _full
    from emgfeedback.video.source import VideoSource

    out = []
    with VideoSource(path) as src, quiet_stderr(), Landmarker(video=True) as lm:
        fps = src.fps
        samples = []
        for f in src:
            pts = lm.landmarks(f.image)
            out.append(_full(None if pts is None else
                             pts[_USED].astype(np.float32).astype(np.float64)))
            samples.append(f.sample)
    return np.stack(out), np.asarray(samples), fps


@needs_video
@pytest.mark.parametrize("name, narrowing", [("single_face.mp4", 0.15),
                                             ("WolfgangLanger_Pexels.mp4", 0.30)])
def test_streaming_detector_equals_the_whole_video_analysis(name: str, narrowing: float) -> None:
    from emgfeedback.video.analysis import measure_landmarks
    from emgfeedback.video.detect import VideoRules
    from emgfeedback.video.live import LiveVideoDetector

    lms, samples, fps = _landmarks(VIDEOS / name)
    rules = VideoRules(eye_narrowing=narrowing)
    whole = measure_landmarks(lms, samples, fps, 1000.0, rules=rules)
    det = LiveVideoDetector(fps, 1000.0, rules)
    raised = []
    for lm, s in zip(lms, samples):
        raised += det.push(None if np.isnan(lm).all() else lm, int(s))
    raised += det.finish()
    assert whole.events, "the clip must show video synkinesis for this test to mean something"
    assert sorted(raised, key=lambda e: (e.onset, e.side)) == whole.events
    assert det.rest is not None and det.rest.frames == whole.rest.frames


@pytest.fixture(scope="module")
def live_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, object]:
    """A 4 s simulated session at real time with the single-face clip, recorded."""
    from emgfeedback.app.session import Session, SessionSpec
    from emgfeedback.video.detect import VideoRules
    from emgfeedback.video.live import VideoSpec

    import time

    out = tmp_path_factory.mktemp("video-session") / "P-0016_video.edf"
    # The EMG at half speed (the clip then lasts 4.8 s of wall time: room for a busy machine);
    # the session runs until the clip has ended (the face model may take seconds to start).
    spec = SessionSpec(source="simulated",
                       source_options={"scenario": "smile-synkinesis", "duration": 120.0,
                                       "speed": 0.5},
                       record_to=out, patient="P-0016",
                       video=VideoSpec(path=SINGLE, rules=VideoRules(eye_narrowing=0.15)))
    s = Session(spec)
    s.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 90 and (s.video is None or s.video._thread is None
                                          or s.video._thread.is_alive()):
        time.sleep(0.05)
    s.stop(timeout=10)
    s.join(10)
    assert s.error is None, s.error
    assert s.video is not None and s.video.error is None, s.video_error
    return out, list(s.video.events), s.video


@needs_video
def test_session_with_a_video_file_records_the_video_and_its_table(live_session) -> None:
    from emgfeedback.io.edf import read_sidecar
    from emgfeedback.video.live import load_landmarks
    from emgfeedback.video.record import VideoTrack

    edf, events, feed = live_session
    meta = read_sidecar(edf)
    table = meta["video"]
    video = edf.with_suffix(".mp4")
    lpath = edf.parent / table["landmarks"]
    for p in (edf, edf.with_suffix(".json"), video, lpath):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert table["file"] == video.name and table["fps"] == 30.0 and table["fs"] == 1000.0
    assert table["size"] == [640, 360] and table["source"] == "file"
    samples = table["samples"]
    assert table["frames"] == len(samples) >= 40  # most of the 72 frames
    assert all(b > a for a, b in zip(samples, samples[1:]))
    assert 0 <= samples[0] and samples[-1] < meta["samples"] + meta["first_sample"]
    # Frames 1/30 s apart on the sample axis (a file's clock is exact): 33 or 34 samples, or a
    # multiple where a frame was dropped.
    k = np.diff(samples) / (1000.0 / 30.0)
    assert np.all(np.abs(k - np.round(k)) < 0.05) and np.all(np.round(k) >= 1)
    assert table["rules"]["eye_narrowing"] == 0.15
    ls, pts = load_landmarks(lpath)
    assert list(ls) == samples and np.isfinite(pts).all()  # a face in every frame
    track = VideoTrack(table, edf.parent)
    assert len(track) == len(samples)
    assert track.frame_at(samples[3]) == 3 and track.frame_at(samples[3] + 10) == 3
    img = track.image(3)
    assert img is not None and img.shape == (360, 640, 3)
    track.close()
    assert feed.stats()["measured"] >= len(samples)
    assert events, "the single-face clip narrows the eyes beyond 15 % while smiling"


@needs_video
def test_replay_gives_the_frames_at_their_samples_and_the_live_video_events(
        live_session) -> None:
    from emgfeedback.app.session import Session, SessionSpec
    from emgfeedback.video.live import VideoReplay

    edf, live_events, _feed = live_session
    seen: list[tuple[int, int]] = []

    class Probe:
        """After the video consumer: which frame is on screen at each chunk's end."""

        def __init__(self, s: Session) -> None:
            self.s = s

        def feed(self, p) -> None:
            f = self.s.video.latest()
            if f is not None:
                seen.append((p.stop, f.sample))

        def close(self) -> None:
            pass

    spec = SessionSpec(source=f"replay:{edf}", source_options={"speed": None})
    s = Session(spec, views=[lambda session: Probe(session)])
    s.run()
    assert isinstance(s.video, VideoReplay)
    assert [e.to_json(1000.0) for e in s.video.events] == [e.to_json(1000.0)
                                                           for e in live_events]
    assert seen and all(sample < stop for stop, sample in seen)  # never a frame from the future
    # the frame on screen is the last one at or before the chunk's end
    samples = np.asarray(s.video.samples)
    for stop, sample in seen[::25]:
        assert sample == samples[samples < stop][-1]


@needs_video
def test_replay_command_prints_the_replayed_video_events(live_session, capsys) -> None:
    from emgfeedback.cli import main

    edf, live_events, _ = live_session
    assert main(["replay", str(edf), "--speed", "max"]) == 0
    err = capsys.readouterr().err
    assert f"{len(live_events)} video synkinesis event(s)" in err
    assert f"at sample {live_events[0].onset}-{live_events[0].offset}" in err


def _block_video(monkeypatch: pytest.MonkeyPatch) -> None:
    """The video extra not installed: importing cv2 or mediapipe fails."""
    for name in ("cv2", "mediapipe"):
        monkeypatch.setitem(sys.modules, name, None)


def test_controller_says_video_unavailable_with_the_install_hint(monkeypatch) -> None:
    from emgfeedback.views.gui.controller import SessionController

    _block_video(monkeypatch)
    assert missing() is not None
    with pytest.raises(ImportError):
        import cv2  # noqa: F401
    ok, text = SessionController().video_status()
    assert not ok and "pip install 'emgfeedback[video]'" in text


def test_controller_without_a_camera_says_how_to_choose_one() -> None:
    from emgfeedback.views.gui.controller import SessionController

    ok, text = SessionController().video_status()
    assert not ok
    assert ("--camera 0" in text) if missing() is None else ("pip install" in text)


def test_command_line_video_without_the_extra_is_one_line(monkeypatch, capsys,
                                                          tmp_path: Path) -> None:
    from emgfeedback.cli import main

    _block_video(monkeypatch)
    code = main(["record", "--patient", "P-0001", "--out", str(tmp_path / "x.edf"),
                 "--duration", "1", "--video", str(SINGLE)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "pip install 'emgfeedback[video]'" in err[0]
    assert not (tmp_path / "x.edf").exists()


# ------------------------------------------------------------------ the window (offscreen)


def _window(qtbot, tmp_path: Path, patient: bool = False):
    from emgfeedback.config import Config
    from emgfeedback.views.gui.window import MainWindow

    win = MainWindow(Config(), patient_mode=patient, record_dir=tmp_path,
                     db=tmp_path / "history.sqlite", sound_sink=lambda buf, rate: None)
    qtbot.addWidget(win)
    win.resize(1280, 720)
    win.show()
    return win


def _request(video):
    from emgfeedback.views.gui.controller import ConnectRequest

    return ConnectRequest("simulated", {}, "P-0042", "Smile x3 (clinic check)", "L",
                          record=False, video=video)


def _factory():
    from emgfeedback.sources.simulated import SimulatedSource

    return lambda: SimulatedSource("session", duration=130.0, seed=3, speed=1.0)


@needs_video
def test_the_therapists_and_the_patients_screens_show_the_mirror(qtbot, tmp_path: Path) -> None:
    from emgfeedback.video.live import VideoSpec

    spec = VideoSpec(path=SINGLE, loop=True)
    win = _window(qtbot, tmp_path)
    try:
        win.start_source(_factory(), _request(spec))
        win.ctl.start_calibration()
        # the controller shows the calibration once it runs; the therapist looks at the bars
        qtbot.waitUntil(lambda: win.current_screen == "calibration", timeout=60000)
        win.show_screen("exercise")
        ex = win.exercise_screen
        qtbot.waitUntil(lambda: ex.mirror.frames_shown >= 3, timeout=60000)
        assert ex.mirror_box.isVisible() and ex.mirror.isVisible()
        assert ex.video_note.text() == ""
        assert ex.mirror.width() >= 300 and ex.mirror.height() >= 200
        img = ex.mirror.grab().toImage()
        # the camera image is painted (not the dark "waiting" box): many distinct colours
        colours = {img.pixel(x, y) for x in range(0, img.width(), 7)
                   for y in range(0, img.height(), 7)}
        assert len(colours) > 50
        ex.mirror_flip.setChecked(False)
        assert ex.mirror.mirror is False
    finally:
        win.close()
    pat = _window(qtbot, tmp_path, patient=True)
    try:
        pat.patient_request = _request(spec)
        pat.patient_factory = _factory()
        pat.start_patient()
        ps = pat.patient_screen
        qtbot.waitUntil(lambda: ps.mirror.frames_shown >= 3, timeout=60000)
        assert ps.mirror.isVisible() and not ps.face.isVisible()
        assert ps.mirror.plain  # no numbers for the patient
        qtbot.waitUntil(lambda: len(ps.bars) == 8, timeout=60000)
        heads = [w.text() for w in ps.findChildren(type(ps.video_note))
                 if w.text().startswith("Your ")]
        assert heads[:2] == ["Your left side", "Your right side"]  # the mirror's order
    finally:
        pat.close()


def test_without_a_camera_the_screens_say_how_to_enable_the_mirror(qtbot, tmp_path: Path,
                                                                    monkeypatch) -> None:
    _block_video(monkeypatch)
    win = _window(qtbot, tmp_path)
    try:
        win.start_source(_factory(), _request(None))
        qtbot.waitUntil(lambda: win.ctl.live is not None and win.ctl.live.ready, timeout=60000)
        win.tick()
        win.show_screen("exercise")
        ex = win.exercise_screen
        assert not ex.mirror_box.isVisible()
        assert "pip install 'emgfeedback[video]'" in ex.video_note.text()
        assert "pip install 'emgfeedback[video]'" in win.patient_screen.video_note.text()
        assert win.ctl.session is not None and win.ctl.session.video is None
    finally:
        win.close()


# ------------------------------------------------------------------ the report
@pytest.fixture(scope="module")
def simulated_with_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A calibrated simulated session with a video beside it, as a session writes it: the
    single-face clip looped, a frame every 0.2 s, on the recording's stream sample axis."""
    from emgfeedback.cli import main
    from emgfeedback.io.edf.sidecar import read_sidecar, sidecar_path, write_sidecar
    from emgfeedback.video.record import VideoRecorder
    from emgfeedback.video.source import VideoSource

    edf = tmp_path_factory.mktemp("report-video") / "sim.edf"
    assert main(["simulate", "--scenario", "session", "--seed", "3", "--out", str(edf)]) == 0
    meta = read_sidecar(edf)
    with VideoSource(SINGLE) as src:
        frames = [f.image for f in src]
    first = int(meta.get("first_sample") or 0)
    with VideoRecorder(edf.with_suffix(".mp4"), 5.0, (640, 360)) as rec:
        for k, s in enumerate(range(0, int(meta["samples"]), 200)):
            rec.write(frames[k % len(frames)], first + s)
    meta["video"] = rec.table()
    write_sidecar(sidecar_path(edf), meta)
    return edf


@needs_video
@pytest.mark.slow
def test_the_report_shows_frames_at_peaks_and_events_only_with_video(simulated_with_video,
                                                                      tmp_path: Path) -> None:
    from emgfeedback.views.report import build_report, load_session, render_html
    from emgfeedback.views.report.video import MAX_MOMENTS, video_figures

    session = load_session(simulated_with_video)
    report = build_report(session)
    keys = [k for k, _c, _f in report.figures]
    video = [(k, c) for k, c, _f in report.figures if k.startswith("video-")]
    assert video, keys
    captions = " ".join(c for _k, c in video)
    events = [e for e in session.analysis["events"] if e.get("type") == "synkinesis"]
    assert events and all(f"{e['channel']} joined in at {e['onset_s']:.1f} s" in captions
                          for e in events)
    reps = {r["rep"] for r in session.analysis["reps"]}
    assert sum(f"Rep {n} (" in captions for n in reps) == min(len(reps),
                                                               MAX_MOMENTS - len(events))
    # the figures sit with the others, before the per-rep bars
    assert keys.index(video[0][0]) < keys.index("bars")
    html = render_html(report)
    assert 'id="fig-video-0"' in html
    # the same session without its video table: no frames
    session.signal.sidecar.pop("video")
    env = np.zeros((10, len(session.channels)))
    assert video_figures(session, report.rows, events, env, 100.0) == []
