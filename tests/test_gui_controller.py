"""The GUI's controller, words and sounds without Qt (issue 10 item 4; issue 12 items 2, 3).

The whole-session test runs in a subprocess with PySide6 and pyqtgraph blocked, so an import of
Qt anywhere under the controller fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

DRIVE = r'''
import json, sys, time
sys.modules["PySide6"] = None      # any Qt import fails
sys.modules["pyqtgraph"] = None
from pathlib import Path
from emgfeedback.views.gui.controller import Clinician, ConnectRequest, SessionController
from emgfeedback.io.edf import read_sidecar

out = Path(sys.argv[1])
ctl = SessionController(record_dir=out, db=out / "history.sqlite")
req = ConnectRequest("simulated", {"scenario": "session", "seed": 3, "speed": 40.0,
                                   "duration": 7200.0}, "P-0042", "Smile x3 (clinic check)", "L")
assert ctl.connect(req) is None and ctl.phase == "check"
res = {"held": None, "paused_moved": None, "sounds": [], "phases": []}
t0 = time.monotonic()
paused_done = False
while time.monotonic() - t0 < 60:
    f = ctl.pull()
    if not res["phases"] or res["phases"][-1] != ctl.phase:
        res["phases"].append(ctl.phase)
    res["sounds"] += list(f.sounds)
    if ctl.phase == "check" and ctl.held is not None and ctl.held.waiting_for_start:
        n = f.status.total
        time.sleep(0.3)
        res["held"] = [n, ctl.pull().status.total, ctl.phase]
        ctl.start_calibration()
    g = f.guidance
    if not paused_done and g.step == "effort" and "eyes" in g.title:
        ctl.pause()
        time.sleep(0.15)  # the chunk being read when Pause was pressed still arrives
        a = ctl.pull().status.total
        time.sleep(0.3)
        p = ctl.pull()
        res["paused_moved"] = p.status.total - a
        res["paused_title"] = p.guidance.title
        ctl.resume()
        paused_done = True
    if any(e[0] == "stored" for e in f.events):
        break
    time.sleep(0.004)
last = ctl.pull()
res["log"] = [[g.phase, g.step, g.title, g.detail, g.alert, g.steps_done, g.steps_total,
               g.countdown_s is not None] for g in ctl.guidance_log]
res["summary"] = last.guidance.summary
res["red"] = [c for _, c in ctl.red_log]
res["recordings"] = ctl.saved_recordings
path = ctl.save_clinician(Clinician("Smiles well; eye joins in rep 1.", 3, 6))
res["clinician"] = read_sidecar(Path(ctl.saved_recordings[0]))["clinician"]
from emgfeedback.views.history import History
with History(out / "history.sqlite", create=False) as h:
    res["history_clinician"] = [s.clinician for p in h.patients() for s in h.sessions(p)]
res["mode"] = oct(path.stat().st_mode & 0o777)
res["qt_loaded"] = sorted(m for m in sys.modules if m.startswith(("PySide6.", "pyqtgraph.")))
print(json.dumps(res))
'''


@pytest.mark.slow
def test_controller_runs_a_whole_session_without_qt(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([sys.executable, "-c", DRIVE, str(tmp_path)], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["qt_loaded"] == []
    # The electrode check waits for the therapist: the stream is held at the first cue.
    n0, n1, phase = res["held"]
    assert n0 == n1 and phase == "check"
    assert res["phases"] == ["check", "calibration", "exercise", "summary"]
    # Pause holds a self-playing board's stream (no sample passes) and says so.
    assert res["paused_moved"] == 0 and res["paused_title"] == "Paused"
    log = res["log"]
    titles = [row[2] for row in log]
    # Every phase has its plain instruction, with a countdown where a step is timed.
    assert "Rest" in titles and "Relax" in titles
    for code, title in (("FRO", "Full strength: eyebrows up"), ("OOC", "Full strength: eyes shut"),
                        ("ZYG", "Full strength: big smile"), ("OOR", "Full strength: lips forward")):
        assert title in titles, (code, titles)
    smile = [row for row in log if row[1] == "exercise"]
    assert smile and smile[0][2] == "Smile"
    assert smile[0][3] == "Smile slowly, lips closed; keep the eye open and relaxed."
    assert all(row[7] for row in log if row[1] in ("rest", "effort", "exercise"))
    # Progress: 1 rest + 4 regions x 3 MVC trials + 3 smiles, counted up to the end.
    assert {row[6] for row in log if row[6]} == {16}
    assert log[-1][5] == 16
    # The planted left-eye synkinesis: the detector's flag, words and a sound.
    assert res["red"] and set(res["red"]) == {"EMG L-OOC"}
    alerts = {row[4] for row in log if row[4]}
    assert alerts == {"Your left eye is joining in. Keep it relaxed: do the smile more gently "
                      "and slowly."}
    assert {"hold", "relax", "joined"} <= set(res["sounds"])
    assert res["summary"].startswith("Well done: you did 3 exercises (smile).")
    assert "your left eye joined in" in res["summary"]
    # The therapist's notes and grades are in the recording's sidecar, the file private.
    assert res["clinician"] == {"notes": "Smiles well; eye joins in rep 1.",
                                "house_brackmann": 3, "sunnybrook_synkinesis": 6}
    assert res["mode"] == "0o600"
    # ... and in the session's history entry, stored before they were entered.
    assert res["history_clinician"] == [res["clinician"]]


def test_patient_words_have_no_jargon() -> None:
    from emgfeedback.views.gui import words
    from emgfeedback.vocabulary import REGIONS

    texts = [*words.rest_words(), *words.between_words("Smile")]
    for code in REGIONS:
        texts += list(words.effort_words(f"mvc L-{code}"))
        texts.append(words.alert_words([f"EMG R-{code}"], "smile"))
    texts.append(words.alert_words(["EMG L-OOC", "L-FRO"], None))
    texts.append(words.retracted_words(["L-OOC"]))
    texts.append(words.session_summary_words([], [], "L", 3, stopped_early=True))
    for t in texts:
        assert t and not words.plain_problems(t), (t, words.plain_problems(t))
    assert words.plain_problems("L-OOC at 40 %MVC, orbicularis oculi") == [
        "L-OOC", "MVC", "orbicularis oculi", "OOC"]
    assert words.alert_words(["EMG L-OOC", "L-FRO"], None) == (
        "Your left eye and your left forehead are joining in. Keep them relaxed: do the "
        "movement more gently and slowly.")


def test_tones_are_synthesised_and_follow_the_settings() -> None:
    from emgfeedback.views.gui.sound import RATE, Player, SoundSettings, synth, wav_bytes

    captured: list[tuple[np.ndarray, int]] = []
    settings = SoundSettings(enabled=True, volume=0.5)
    player = Player(settings, sink=lambda buf, rate: captured.append((buf, rate)))
    assert player.play("hold") and player.play("relax") and player.play("joined")
    assert player.played == ["hold", "relax", "joined"]
    for buf, rate in captured:
        assert rate == RATE and buf.dtype == np.int16 and 0.25 * RATE < len(buf) < 0.5 * RATE
        assert np.abs(buf).max() == round(0.5 * 0.8 * 32767)
        assert abs(int(buf[0])) < 200 and abs(int(buf[-1])) < 200  # soft edges, no click

    def peak_hz(x: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        return float(np.fft.rfftfreq(len(x), 1.0 / RATE)[np.argmax(spec)])

    hold, relax, joined = (c[0].astype(float) for c in captured)
    n = int(0.1 * RATE)
    assert abs(peak_hz(hold[:n]) - 523.25) < 15 and abs(peak_hz(hold[-n:]) - 783.99) < 15
    assert abs(peak_hz(relax[:n]) - 659.25) < 15 and abs(peak_hz(relax[-n:]) - 440.0) < 15
    assert abs(peak_hz(joined[: int(0.1 * RATE)]) - 330.0) < 15
    # Volume scales the buffer; off or silent plays nothing.
    assert np.abs(synth("hold", 1.0)).max() == round(0.8 * 32767)
    settings.volume = 0.0
    assert not player.play("hold")
    settings.volume, settings.enabled = 0.7, False
    assert not player.play("hold") and len(captured) == 3
    with wave.open(BytesIO(wav_bytes(synth("relax"))), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        assert w.getnframes() == len(synth("relax"))
    with pytest.raises(ValueError, match="unknown sound"):
        synth("bang")


def test_face_map_sites_come_from_the_placement_figure() -> None:
    from emgfeedback.views.gui.face import face_sites
    from emgfeedback.vocabulary import REGIONS

    sites = face_sites()
    assert set(sites) == {(s, c) for s in "LR" for c in REGIONS}
    # A front view: the patient's left on the right of the picture, eyes above the mouth.
    assert sites[("L", "OOC")][0] > 320 > sites[("R", "OOC")][0]
    assert sites[("L", "FRO")][1] < sites[("L", "OOC")][1] < sites[("L", "OOR")][1]


def test_clinician_grades_are_validated(tmp_path: Path) -> None:
    from emgfeedback.errors import ConfigError
    from emgfeedback.views.gui.controller import Clinician, save_clinician

    rec = tmp_path / "P-0001_x.edf"
    (tmp_path / "P-0001_x.json").write_text(json.dumps({"patient": "P-0001"}), "utf-8")
    save_clinician(rec, Clinician("", None, None))
    meta = json.loads((tmp_path / "P-0001_x.json").read_text("utf-8"))
    assert meta == {"patient": "P-0001", "clinician": {
        "notes": "", "house_brackmann": None, "sunnybrook_synkinesis": None}}
    with pytest.raises(ConfigError, match="House-Brackmann"):
        save_clinician(rec, Clinician("", 7, None))
    with pytest.raises(ConfigError, match="Sunnybrook"):
        save_clinician(rec, Clinician("", None, 16))


def _chunk(start: int, n: int, fs: float = 1000.0) -> object:
    from emgfeedback.stream import Processed, Quality, Status

    ch = ("EMG L-ZYG", "EMG R-ZYG")
    z = np.zeros((n, 2))
    q = Quality(start, np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    return Processed(start, fs, ch, z, z, z, q, Status())


def test_leading_runner_holds_its_next_cue_while_paused() -> None:
    from emgfeedback.app.program import ProgramRunner, Protocol, resolve_program

    marks: list[tuple[str, int, int]] = []
    pos = [0]
    runner = ProgramRunner(resolve_program("Smile x3 (clinic check)"),
                           lambda text, n: marks.append((text, n, pos[0])),
                           protocol=Protocol(rest_s=1.0, rest_gap_s=0.5, mvc_trials=1,
                                             mvc_hold_s=1.0, mvc_gap_s=0.5))

    def feed(seconds: float) -> None:
        for _ in range(int(seconds * 100)):
            runner.feed(_chunk(pos[0], 10))  # type: ignore[arg-type]
            pos[0] += 10

    feed(0.1)
    snap = runner.snapshot()
    assert snap.steps_total == 1 + 1 + 3 and snap.steps_done == 0  # rest, ZYG, 3 smiles
    runner.start_calibration()
    feed(1.2)
    assert [m[0] for m in marks] == ["rest"]
    runner.pause()
    feed(5.0)  # the rest ends as planned; no new cue while paused
    assert [m[0] for m in marks] == ["rest"] and runner.snapshot().paused
    runner.resume()
    at = pos[0]
    feed(2.5)
    mvc = [m for m in marks if m[0].startswith("mvc")]
    assert [m[0] for m in mvc] == ["mvc L-ZYG", "mvc R-ZYG"]
    # The cue lands at the end of the chunk it was issued in: 2 s to get ready after Resume.
    assert 2000 <= mvc[0][2] + 10 - at <= 2010
    feed(2.0)
    assert runner.calibration_queued_done() and runner.snapshot().steps_done == 2
    runner.start_exercises()
    feed(0.01)
    # The first rep waits for the end of the last trial's gap, never overlapping it.
    assert [m[0] for m in marks][-1] == "smile"


def test_a_retracted_alert_is_said_as_taken_back() -> None:
    from emgfeedback.clinical.detect import SynkinesisEvent
    from emgfeedback.clinical.montage import Montage
    from emgfeedback.app.feedback import RETRACTED_KINDS, ClinicFeedback
    from emgfeedback.app.program import resolve_program
    from emgfeedback.views.gui.words import retracted_words

    fbk = ClinicFeedback(resolve_program("Smile x3 (clinic check)"), "L")
    fbk.montage = Montage.from_labels(("EMG L-OOC", "EMG L-ZYG"), "L")
    ev = SynkinesisEvent(channel="L-OOC", trigger="L-ZYG", exercise="smile", rep=0, onset=10,
                         alert=20, offset=None, peak_pct_mvc=40.0)
    fbk._on_event("raised", ev)
    assert fbk._flagged == {0}
    fbk._on_event(RETRACTED_KINDS[0], ev)
    assert fbk._flagged == set() and fbk._retracted == ["L-OOC"]
    assert retracted_words(["L-OOC"]) == ("That was only a blink of your left eye: it does not "
                                          "count. Carry on.")


@pytest.mark.slow
def test_demo_opens_connect_with_the_command_lines_choices(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "QT_QPA_PLATFORM": "offscreen",
           "EMGFEEDBACK_DB": str(tmp_path / "h.sqlite")}
    shot = tmp_path / "demo.png"
    r = subprocess.run([sys.executable, "-m", "emgfeedback", "demo", "--patient", "P-0042",
                        "--program", "Standard NMR", "--scenario", "smile-synkinesis",
                        "--connect", "--speed", "10", "--duration", "200", "--screenshot",
                        str(shot), "--after", "3"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 10000
    for args, words_ in ((["--patient-mode"], "patient mode needs --patient ID"),
                         (["--patient", "P-0007", "--program", "Nope"], "unknown program 'Nope'")):
        r = subprocess.run([sys.executable, "-m", "emgfeedback", "demo", *args],
                           capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
        assert r.returncode != 0 and words_ in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_stop_ends_the_session_early_with_a_summary(tmp_path: Path) -> None:
    import time

    from emgfeedback.views.gui.controller import ConnectRequest, SessionController

    ctl = SessionController(record_dir=tmp_path, db=tmp_path / "h.sqlite")
    req = ConnectRequest("simulated", {"scenario": "session", "seed": 1, "speed": 20.0,
                                       "duration": 300.0}, "P-0042", "Smile x3 (clinic check)",
                         "L", record=False)
    assert ctl.connect(req) is None
    t0 = time.monotonic()
    while not (ctl.held is not None and ctl.held.waiting_for_start):
        ctl.pull()
        time.sleep(0.01)
        assert time.monotonic() - t0 < 20
    ctl.start_calibration()
    while ctl.pull().guidance.step != "rest":
        time.sleep(0.01)
        assert time.monotonic() - t0 < 20
    ctl.stop()
    while ctl.running:
        time.sleep(0.01)
        assert time.monotonic() - t0 < 20
    f = ctl.pull()
    assert ctl.phase == "summary" and ctl.stopped_early and ("ended", "") in f.events
    assert f.guidance.title == "Session complete"
    assert f.guidance.summary == ("You stopped before the exercises began. That is fine: try "
                                  "again when ready.")


@pytest.mark.firmware
@pytest.mark.slow
def test_simavr_on_connect_is_fed_the_facial_model() -> None:
    from emgfeedback.sources import simavr as SIM
    from emgfeedback.sources.facesim import DEFAULT_CHANNELS
    from emgfeedback.sources.simulated import facial_signal
    from emgfeedback.views.gui.controller import ConnectRequest, source_factory

    missing = SIM.toolchain_missing()
    if missing is not None:
        pytest.skip(f"{missing} (CI installs them)")
    # What the Connect screen asks for: the board, the scenario and seed of the patient model.
    req = ConnectRequest("simavr", {"speed": None, "scenario": "smile-synkinesis", "seed": 5,
                                    "input_seconds": 4.0},
                         "P-0042", "Smile x3 (clinic check)")
    src = source_factory(req)()
    with src:
        assert tuple(src.info.channels) == tuple(DEFAULT_CHANNELS)
        chunk = src.read(5.0)
        assert chunk is not None and len(chunk) > 0
        fed = src.input_mv  # type: ignore[attr-defined]
        assert fed is not None
        n = len(fed)
        model = facial_signal("smile-synkinesis", tuple(DEFAULT_CHANNELS), seed=5)(
            n, src.info.fs, len(DEFAULT_CHANNELS))
        assert np.array_equal(fed, SIM.front_end_mv(model))
        # The samples read back are the firmware's conversions of exactly that input.
        counts = np.rint(chunk.data / src.info.extra["uv_per_count"] + 512).astype(np.int64)
        assert np.array_equal(counts, SIM.expected_counts(fed)[: len(counts)])


@pytest.mark.slow
def test_patient_mode_on_a_live_board_leads_the_whole_session(tmp_path: Path) -> None:
    """A board without a protocol of its own (here the simulated patient at rest, its cues
    dropped): patient mode's Start calibrates and then runs the exercises by itself."""
    import time

    from _sources import NoCues

    from emgfeedback.views.gui.controller import ConnectRequest, SessionController

    from emgfeedback.app.program import Protocol

    ctl = SessionController(patient_mode=True, record_dir=tmp_path)
    ctl.protocol = Protocol(rest_s=3.0, rest_gap_s=0.5, mvc_trials=1, mvc_hold_s=1.5,
                            mvc_gap_s=0.5)
    req = ConnectRequest("serial:/dev/null", {}, "P-0042", "Smile x3 (clinic check)", "L",
                         record=False)
    assert ctl.start_patient_session(req, lambda: NoCues(pace_s=0.001)) is None
    steps: list[str] = []
    t0 = time.monotonic()
    while ctl.phase != "summary" and time.monotonic() - t0 < 90:
        g = ctl.pull().guidance
        if not steps or steps[-1] != g.step:
            steps.append(g.step)
        time.sleep(0.005)
    ctl.disconnect()
    assert ctl.phase == "summary", steps
    assert ctl.leading and steps.count("exercise") == 3, steps
    first = steps.index("rest")
    assert steps.index("effort") > first and steps.index("exercise") > steps.index("effort")
    markers = [m for m in ctl.live.status().markers] if ctl.live is not None else []
    mvc_end = max(m.sample + m.duration for m in markers if m.text.startswith("mvc"))
    smile = min(m.sample for m in markers if m.text == "smile")
    assert smile >= mvc_end  # the first rep never overlaps the last maximum effort
