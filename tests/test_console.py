"""The console is biofeedback: cue, countdown, %MVC bars with band and quiet limit, a persistent
alert line; quality warnings that a contraction does not trigger.  Checked on the screen of a
real ``emgfeedback demo --console`` run in a pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from emgfeedback.config import QualityConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.stream import Chunk, Marker, Status
from emgfeedback.views.console import ConsoleView

ROOT = Path(__file__).resolve().parents[1]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _run_in_pty(args: list[str], timeout: float = 60.0, size: tuple[int, int] = (140, 45)
                ) -> str:
    """Run the CLI on a pseudo-terminal of ``size`` (columns, rows; the console then draws for
    a terminal) and return everything it wrote."""
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS=str(size[0]),
               LINES=str(size[1]))
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.Popen([sys.executable, "-m", "emgfeedback", *args], stdin=slave,
                            stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=10) == 0, b"".join(chunks)[-2000:].decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def test_console_screen_shows_cue_countdown_bars_and_alert():
    # The session scenario: rest, maximum-effort trials, then smile reps, one of them (seed 0)
    # with synkinesis of the left eye.
    out = _run_in_pty(["demo", "--console", "--duration", "114", "--speed", "20"])
    frames = [_ANSI.sub("", f) for f in out.split("\x1b[H\x1b[2J") if f.strip()]
    assert len(frames) > 20
    # a frame drawn during a smile rep: the cue, its instruction and band, the countdown
    during = [f for f in frames if "SMILE  rep" in f and "s left" in f]
    assert during, frames[-1]
    screen = during[-1]
    lines = screen.splitlines()
    assert re.search(r"SMILE  rep \d +Smile slowly, lips closed; keep the eye open and relaxed"
                     r" +\(target 20-50 %MVC\)", screen), screen
    assert re.search(r"\d\.\d s left \[=* *\]", screen), screen
    # %MVC bars: the target with its band [---], the quiet regions with their limit |
    assert re.search(r"0 +%MVC +100", screen)
    target = next(ln for ln in lines if ln.startswith(" L-ZYG"))
    assert re.match(r" L-ZYG +target \|[#.\-]*\[[#\-]*\][#.]* ?\| +\d+ %", target), target
    quiet = next(ln for ln in lines if ln.startswith(" L-OOC"))
    assert re.match(r" L-OOC +quiet +\|[#.]*\|[#.]* ?\|", quiet), quiet
    # the alert line persists: the last frame, seconds after the event, still shows it
    last = frames[-1]
    alert = next(ln for ln in last.splitlines() if "!!" in ln)
    m = re.search(r"!! (\d+\.\d) s +SYNKINESIS L-OOC \(orbicularis oculi\) joined in during "
                  r"smile at \d+ %MVC: keep it relaxed +\(\d+ alerts?\)", alert)
    assert m, alert
    t_last = float(re.search(r"t = +([\d.]+) s", last).group(1))
    assert t_last > float(m.group(1)) + 3.0
    # no frame of the whole session warns of a noisy baseline: contractions are not faults
    assert "noisy baseline" not in out


def test_console_fits_a_small_terminal_without_cutting_the_cue_or_the_alert():
    """On an 80 x 24 terminal (a small laptop's) every frame fits: no line wraps or scrolls the
    frame's top away.  The bars are narrower; the exercise's instruction and the alert wrap onto
    a second line instead of being cut."""
    out = _run_in_pty(["demo", "--console", "--duration", "114", "--speed", "20"],
                      size=(80, 24))
    frames = [_ANSI.sub("", f) for f in out.split("\x1b[H\x1b[2J") if f.strip()]
    assert len(frames) > 20
    for f in frames:
        lines = f.rstrip("\n").splitlines()
        assert len(lines) <= 23, f
        assert max(len(ln) for ln in lines) <= 80, f
    during = [f for f in frames if "SMILE  rep" in f and "s left" in f]
    assert during
    screen = during[-1]
    assert re.search(r"SMILE  rep \d +Smile slowly, lips closed; keep the eye open and\s+"
                     r"relaxed\s+\(target 20-50 %MVC\)", screen), screen
    target = next(ln for ln in screen.splitlines() if ln.startswith(" L-ZYG"))
    bar = re.match(r" L-ZYG +target \|([#.\-\[\]]*) ?\| +\d+ %", target)
    assert bar, target
    assert 16 <= len(bar.group(1)) < 40  # narrower than on a wide terminal, still a scale
    last = frames[-1]
    assert re.search(r"!! (\d+\.\d) s +SYNKINESIS L-OOC \(orbicularis oculi\) joined in\s+during"
                     r"\s+smile\s+at\s+\d+\s+%MVC:\s+keep\s+it\s+relaxed\s+\(\d+\s+alerts?\)",
                     last), last


def _chunk(x: np.ndarray, start: int, fs: float, markers: tuple[Marker, ...] = ()) -> Chunk:
    return Chunk(x, start, fs, ("EMG L-ZYG", "EMG L-OOC"), Status(), markers)


def test_quality_warning_waits_for_rest_but_does_fire_on_a_noisy_baseline():
    """A contraction (cue running) then rest: the running RMS stays high for seconds, and no
    warning fires; a baseline that stays noisy at rest is still reported."""
    fs = 1000.0
    rng = np.random.default_rng(1)
    chain = Chain(fs, 2)
    out = io.StringIO()
    view = ConsoleView(chain, out=out, tty=False, quality=QualityConfig())
    view.interval = 0.0  # a frame per chunk
    pos = 0

    def feed(seconds: float, rms: tuple[float, float], marker: Marker | None = None) -> str:
        nonlocal pos
        n = int(seconds * fs)
        text = ""
        for k in range(0, n, 100):
            x = rng.normal(0.0, 1.0, (100, 2)) * np.array(rms)
            m = (marker,) if marker is not None and k == 0 else ()
            view.feed(chain.process(_chunk(x, pos, fs, m)))
            text += view.render()
            pos += 100
        return text

    assert "noisy baseline" not in feed(5.0, (2.0, 2.0))
    # a 3 s contraction of L-ZYG on its cue (an MVC trial), then 4 s of rest
    busy = feed(3.0, (150.0, 2.0), Marker(pos, int(3 * fs), "mvc L-ZYG"))
    after = feed(4.0, (2.0, 2.0))
    assert "noisy baseline" not in busy + after
    # L-OOC noisy at rest for long: reported, with its reason
    noisy = feed(8.0, (2.0, 25.0))
    assert re.search(r"L-OOC .*!! noisy baseline \(\d+\.\d µV RMS\): relax, check contact", noisy)
    assert not re.search(r"L-ZYG .*noisy baseline", noisy)
