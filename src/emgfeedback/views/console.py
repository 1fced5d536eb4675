"""Live terminal dashboard: one bar per channel, quality lights, the protocol's events.

Used by ``emgfeedback demo`` when there is no display (or with ``--console``).  It is a session
consumer: :meth:`ConsoleView.feed` is called by the session thread with every processed chunk and
redraws at most ``rate_hz`` times a second (default 15) on a terminal; when the output is not a
terminal (a log, CI) it prints one compact frame a second instead.  Time shown is signal time
(sample index / fs).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

from emgfeedback.config import QualityConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.stream import Processed, Status
from emgfeedback.dsp.quality import assess
from emgfeedback.vocabulary import REST, parse_annotation

__all__ = ["ConsoleView"]

_LIGHT = {"green": ("\x1b[32m", "ok "), "amber": ("\x1b[33m", "!! "), "red": ("\x1b[31m", "XX ")}


class ConsoleView:
    def __init__(
        self,
        chain: Chain,
        out: TextIO | None = None,
        rate_hz: float = 15.0,
        full_scale_uv: float = 200.0,
        width: int = 40,
        title: str = "emgfeedback",
        quality: QualityConfig | None = None,
        tty: bool | None = None,
        snapshot: Callable[[], Any] | None = None,
    ) -> None:
        self.chain = chain
        #: the session's state (:meth:`emgfeedback.app.session.Session.snapshot`): cue, phase
        self.snapshot = snapshot
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.interval = 1.0 / rate_hz if self.tty else 1.0
        self.full_scale = full_scale_uv
        self.width = width
        self.title = title
        self.quality = quality or QualityConfig()
        self.events: deque[str] = deque(maxlen=6)
        self.frames = 0
        self._last_draw = -1e9
        self._last: Processed | None = None
        self._faults = Status()  # soft faults so far
        self._closed = False
        self._at_rest = True
        self._active_until = -1

    def feed(self, p: Processed) -> None:
        self._last = p
        self._faults = self._faults + p.status
        if p.status.dropped_frames:
            self.events.append(f"{p.start / p.fs:8.2f} s  {p.status.dropped_frames} frame(s) "
                               "dropped: duplicated, out of order or implausible counter")
        if p.status.lost_samples:
            self.events.append(f"{p.start / p.fs:8.2f} s  gap: {p.status.lost_samples} samples lost")
        for m in p.markers:
            dur = f" ({m.duration / p.fs:.1f} s)" if m.duration else ""
            self.events.append(f"{m.sample / p.fs:8.2f} s  {m.text}{dur}")
            if parse_annotation(m.text).kind != REST:
                self._active_until = max(self._active_until, m.sample + m.duration)
        self._at_rest = p.stop > self._active_until
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self.draw()

    def render(self) -> str:
        """The current frame as text (no escape codes when not on a terminal)."""
        p = self._last
        if p is None:
            return f"{self.title}: waiting for data..."
        env = p.envelope[-1] if len(p) else np.zeros(len(p.channels))
        lights = assess(p.quality, self.quality, at_rest=self._at_rest)
        t = p.stop / p.fs
        mains = {None: "none", 50: "50 Hz", 60: "60 Hz"}.get(self.chain.mains, "?")
        lines = [
            f"{self.title}   t = {t:7.2f} s   fs = {p.fs:g} Hz   mains notch: {mains}   "
            f"delay {self.chain.delay_ms:.0f} ms",
            f"lost samples {self._faults.lost_samples}   CRC errors {self._faults.crc_errors}   "
            f"dropped frames {self._faults.dropped_frames}   reconnects {self._faults.reconnects}",
            "",
        ]
        for i, ch in enumerate(p.channels):
            v = float(env[i])
            n = int(round(min(max(v, 0.0) / self.full_scale, 1.0) * self.width))
            bar = "#" * n + "." * (self.width - n)
            colour, tag = _LIGHT[lights[i][0]]
            if self.tty:
                tag = f"{colour}{tag}\x1b[0m"
            lines.append(f"{ch:<10} |{bar}| {v:7.1f} µV  {tag} {lights[i][1]}")
        if self.snapshot is not None:
            lines.append("")
            lines.append(self._program_line(self.snapshot(), p.stop, p.fs))
        lines.append("")
        lines.append("events:")
        lines.extend(f"  {e}" for e in self.events)
        return "\n".join(lines)

    @staticmethod
    def _program_line(snap: Any, now: int, fs: float) -> str:
        """The program's cue and phase from the session snapshot."""
        fb, run = snap.feedback, snap.runner
        parts = []
        if run is not None:
            parts.append(f"program: {run.phase}, reps {run.reps_done}/{run.reps_total}")
        cue = fb.cue if fb is not None else None
        if cue is not None and cue.stop > now:
            parts.append(f"cue: {cue.text} ({(cue.stop - now) / fs:.1f} s left)")
        elif fb is not None:
            parts.append("cue: -")
        if fb is not None and fb.error:
            parts.append(f"no detection: {fb.error}")
        return "   ".join(parts) if parts else "program: none (channels are not facial regions)"

    def close(self) -> None:
        """The last frame, once, when the session ends."""
        if self._last is not None and not self._closed:
            self._closed = True
            self.draw()

    def draw(self) -> None:
        text = self.render()
        if self.tty:
            self.out.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            self.out.write(text + "\n\n")
        self.out.flush()
        self.frames += 1
