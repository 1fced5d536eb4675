"""Live biofeedback in a terminal: the cue, a countdown, %MVC bars with the target band and the
quiet limit, a persistent alert line and signal-quality warnings.

Used by ``emgfeedback demo --console`` (and when there is no display), ``record`` and ``replay``.
It is a session consumer: :meth:`ConsoleView.feed` is called by the session thread with every
processed chunk and redraws at most ``rate_hz`` times a second (default 15) on a terminal; when
the output is not a terminal (a log, CI) it prints one compact frame a second instead.  Time
shown is signal time (sample index / fs).

What it shows comes from the clinical engine, never computed here: the session's snapshot
(:meth:`emgfeedback.app.session.Session.snapshot`: the feedback's %MVC, activation threshold,
each quiet region's limit, roles, the running rep's exercise and band, the detector's events,
why detection did not start; the program runner's reps).  The cue and countdown
are the protocol's annotations in the stream (``rest``, ``mvc L-ZYG``, exercise cues with their
duration), so a replay shows what the live session showed.

Quality warnings judge the resting baseline only where it is at rest.  The quality meter's
running RMS is an exponential average (time constant ``quality.window_s``), so it still carries a
contraction for seconds after it ended (from 150 µV it needs about 6 s to fall below the 8 µV
limit), which must not read as a bad electrode.  A channel's "noisy baseline" is therefore judged
only once it is quiet (no cue asking for a contraction, not active by the detector, no burst of
the envelope above 3 times the running RMS, e.g. a spontaneous blink) and what the
meter still holds of its last contraction, ``RMS_then · exp(-Δt / 2τ)``, is below half the limit;
and it is shown when it has lasted ``hold_s`` (4 s) from then: a bad contact stays bad, while a
blink or a swallow at rest lifts the running RMS for a few seconds only.  Faults no contraction causes
(flat line, mains pick-up, clipping) are shown at once.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

import numpy as np

from emgfeedback.config import QualityConfig
from emgfeedback.dsp.chain import Chain
from emgfeedback.dsp.quality import assess
from emgfeedback.stream import Processed, Status
from emgfeedback.vocabulary import EVENT_TYPES, EXERCISES, MVC, REGIONS, REST, parse_annotation, \
    short_label

if TYPE_CHECKING:
    from emgfeedback.app.feedback import FeedbackSnapshot
    from emgfeedback.app.session import SessionSnapshot

__all__ = ["ConsoleView"]

_RESET = "\x1b[0m"
_COL = {"green": "\x1b[32m", "amber": "\x1b[33m", "red": "\x1b[31m", "bold": "\x1b[1m",
        "dim": "\x1b[2m", "inv": "\x1b[7m"}
_TAG = {"green": "ok", "amber": "!!", "red": "XX"}
_ESC = re.compile(r"\x1b\[[0-9;]*m")
#: A channel whose envelope rises above this many times its running quality RMS is moving (a
#: contraction or a blink), whether or not a cue asked for it: stationary noise stays below ~1x.
BURST = 3.0
#: %MVC at the right end of the bars.
BAR_MAX_PCT = 100.0
#: Columns of a channel's line besides its bar, and the fewest bar cells on a narrow terminal.
_LINE_REST = 60
_MIN_BAR = 16


def _fit(line: str, cols: int) -> str:
    """``line`` cut to ``cols`` visible characters: escape codes are kept and not counted; a
    cut line ends with "…" (and a colour reset when it has colours)."""
    if _visible(line) <= cols:
        return line
    out: list[str] = []
    seen = i = 0
    while seen < cols - 1:
        if line[i] == "\x1b":
            j = line.find("m", i)
            out.append(line[i:j + 1])
            i = j + 1
            continue
        out.append(line[i])
        seen += 1
        i += 1
    return "".join(out) + "…" + (_RESET if "\x1b" in line else "")


def _visible(text: str) -> int:
    """Characters of ``text`` a terminal shows (its colour codes are not)."""
    return len(_ESC.sub("", text))


class ConsoleView:
    """The terminal biofeedback view (module docstring).

    Parameters
    ----------
    chain:
        The session's chain (rate, notch, delay, quality meter).
    snapshot:
        The session's :meth:`~emgfeedback.app.session.Session.snapshot`; ``None``, or a snapshot
        without feedback (channels that are not facial regions): bars show the envelope in µV
        and there is no alert.
    full_scale_uv:
        Right end of the bars while there is no calibration (µV above zero).
    """

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
        snapshot: Callable[[], SessionSnapshot] | None = None,
        hold_s: float = 4.0,
        columns: int | None = None,
    ) -> None:
        self.chain = chain
        self.snapshot = snapshot
        self._closed = False
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.interval = 1.0 / rate_hz if self.tty else 1.0
        self.full_scale = full_scale_uv
        self.width = width
        self.columns = columns
        self._bar_w = width  # the bars' cells in the frame being drawn (narrower terminals)
        self._cols: int | None = None  # the terminal's width for the frame being drawn
        self.title = title
        self.quality = quality or QualityConfig()
        self.events: deque[str] = deque(maxlen=5)
        self.alert: str = ""
        self.n_alerts = 0
        self.frames = 0
        self._last_draw = -1e9
        self._last: Processed | None = None
        self._faults = Status()  # soft faults so far
        self._cue: tuple[str, int, int] | None = None  # (text, start, stop) of the running period
        self._busy_until = -1  # end of the latest cue asking for a contraction (MVC, reps)
        self._started = False  # a cue was seen
        self._last_active: np.ndarray | None = None  # per channel: last sample it was busy
        self._rms_then: np.ndarray | None = None  # per channel: quality RMS when last busy
        self._warn_since: np.ndarray | None = None  # per channel: since when the warning holds
        self._seen: set[tuple[str, int]] = set()
        self._retracted: set[tuple[str, int]] = set()
        self._fb: FeedbackSnapshot | None = None
        self._n_reps = 0
        self._hold = hold_s

    # ------------------------------------------------------------------ feeding
    def feed(self, p: Processed) -> None:
        self._last = p
        self._faults = self._faults + p.status
        if p.status.dropped_frames:
            self.events.append(f"{p.start / p.fs:8.2f} s  {p.status.dropped_frames} frame(s) "
                               "dropped: duplicated, out of order or implausible counter")
        if p.status.lost_samples:
            self.events.append(f"{p.start / p.fs:8.2f} s  gap: {p.status.lost_samples} samples lost")
        for m in p.markers:
            kind = parse_annotation(m.text).kind
            if kind in EVENT_TYPES:  # the detector's own events, replayed from a recording
                continue
            if m.duration > 0:
                self._cue = (m.text, m.sample, m.sample + m.duration)
                self._started = True
                if kind != REST:  # a contraction is asked for: not a resting baseline
                    self._busy_until = max(self._busy_until, m.sample + m.duration)
                if self._is_exercise(m.text):
                    self._n_reps += 1
            else:
                self.events.append(f"{m.sample / p.fs:8.2f} s  {m.text}")
        self._track(p)
        self._new_events(p.fs)
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self.draw()

    def _feedback(self) -> FeedbackSnapshot | None:
        snap = self.snapshot() if self.snapshot is not None else None
        return snap.feedback if snap is not None else None

    def _is_exercise(self, text: str) -> bool:
        if parse_annotation(text).kind == "exercise":
            return True
        fb = self._feedback()
        return fb is not None and fb.exercise is not None and \
            fb.exercise.name == text.strip().lower()

    def _track(self, p: Processed) -> None:
        """Per channel, the last sample it was busy (cue running or active by the detector)."""
        n = len(p.channels)
        if self._last_active is None or self._rms_then is None or len(self._last_active) != n:
            self._last_active = np.full(n, -(10**12), dtype=np.int64)
            self._rms_then = np.zeros(n)
            self._warn_since = np.full(n, -1, dtype=np.int64)
        busy = np.zeros(n, dtype=bool)
        if p.start < self._busy_until:
            busy[:] = True
        fb = self._fb = self._feedback()
        if fb is not None and fb.calibrated and len(fb.pct) == n:
            busy |= np.nan_to_num(fb.pct, nan=0.0) > np.nan_to_num(fb.threshold_pct, nan=np.inf)
        if len(p):  # a burst (a blink, a swallow) far above the running RMS: not the baseline
            busy |= p.envelope.max(axis=0) > BURST * np.maximum(p.quality.rms_uv, 1e-9)
        self._last_active[busy] = p.stop
        self._rms_then[busy] = p.quality.rms_uv[busy]

    def _new_events(self, fs: float) -> None:
        fb = self._fb
        if fb is None:
            return
        for ev in fb.events:
            # the alert's sample names an event (its onset may be refined once its class is known)
            key = (ev.channel, ev.alert if ev.alert is not None else ev.onset)
            at = (ev.alert if ev.alert is not None else ev.onset) / fs
            if getattr(ev, "retracted", False):
                if key in self._seen and key not in self._retracted:
                    self._retracted.add(key)
                    why = "a blink" if ev.type == "blink" else (ev.reason or "an artefact")
                    self.events.append(f"{at:8.2f} s  alert on {ev.channel} retracted: {why}")
                    if self.alert.startswith(f"{at:.1f} s  SYNKINESIS {ev.channel}"):
                        self.alert += f" (retracted: {why})"
                continue
            if ev.type != "synkinesis" or key in self._seen:
                continue
            self._seen.add(key)
            self.n_alerts += 1
            keep = REGIONS[ev.channel[2:]].muscle if ev.channel[2:] in REGIONS else ev.channel
            self.alert = (f"{at:.1f} s  SYNKINESIS {ev.channel} ({keep}) joined in "
                          f"during {ev.exercise} at {ev.peak_pct_mvc:.0f} %MVC: keep it relaxed")
            self.events.append(f"{at:8.2f} s  SYNKINESIS {ev.channel} during "
                               f"{ev.exercise} ({ev.peak_pct_mvc:.0f} %MVC)")

    # ------------------------------------------------------------------ text
    def _c(self, text: str, colour: str) -> str:
        return f"{_COL[colour]}{text}{_RESET}" if self.tty else text

    def _wrapped(self, lead: str, body: str, colour: str | None = None,
                 lead_colour: str | None = None) -> list[str]:
        """``lead`` + ``body`` as one line, or on a terminal narrower than that, ``body`` wrapped
        under itself (an instruction or an alert is never cut); ``colour``: of the body."""
        cols = self._cols
        if cols is None or len(lead) + len(body) <= cols:
            parts = [body]
        else:
            parts = textwrap.wrap(body, max(10, cols - len(lead))) or [""]
        head = self._c(lead, lead_colour) if lead_colour else lead
        pad = " " * len(lead)
        return [(head if i == 0 else pad) + (self._c(t, colour) if colour else t)
                for i, t in enumerate(parts)]

    def _cue_lines(self, p: Processed) -> list[str]:
        now = p.stop
        cue = self._cue
        running = cue is not None and cue[1] <= now - 1 < cue[2]
        if not running:
            what = ("Relax between exercises: face still" if self._started else
                    "Waiting for the first cue: relax, face still")
            return [*self._wrapped(" RELAX   ", what, lead_colour="bold"), ""]
        assert cue is not None
        text, start, stop = cue
        left = (stop - now) / p.fs
        low = text.strip().lower()
        ann = parse_annotation(text)
        if ann.kind == REST:
            head, line = "REST", "Relax completely: the rest level is being measured"
        elif ann.kind == MVC:
            ch = ann.channel or text.split(None, 1)[1].strip()
            code = ch[2:].upper()
            muscle = REGIONS[code].muscle if code in REGIONS else ch
            move = REGIONS[code].movement if code in REGIONS else ""
            head = "MAXIMUM EFFORT"
            line = f"{ch} {muscle}: {move} as hard as you can".replace(" :", ":")
        else:
            fb = self._fb
            ex = fb.exercise if fb is not None and fb.exercise is not None and \
                fb.exercise.name == low else None
            head = (ex.name if ex is not None else low).replace("_", " ").upper()
            line = (ex.cue if ex is not None and ex.cue else
                    EXERCISES[low].cue if low in EXERCISES else text)
            if ex is not None:
                lo, hi = ex.band_pct_mvc
                line += f"   (target {lo:.0f}-{hi:.0f} %MVC)"
            head += f"  rep {self._n_reps}"
        dur = max(1e-9, (stop - start) / p.fs)
        n = 20
        k = int(round(n * min(1.0, max(0.0, 1 - left / dur))))
        bar = "=" * k + " " * (n - k)
        return [*self._wrapped(f" {head}   ", line, lead_colour="bold"),
                f" {self._c(f'{left:4.1f} s left', 'bold')} [{bar}]"]

    def _bar(self, v: float, lo: float | None, hi: float | None, limit: float | None,
             top: float) -> str:
        w = self._bar_w

        def pos(x: float) -> int:
            return int(round(min(max(x, 0.0), top) / top * w))

        n = pos(v)
        cells = ["#" if i < n else "." for i in range(w)]
        if lo is not None and hi is not None:
            for i in range(pos(lo), min(w, pos(hi))):
                if cells[i] == ".":
                    cells[i] = "-"
            a, b = pos(lo), min(w - 1, pos(hi))
            cells[a] = "["
            cells[b] = "]"
        if limit is not None and limit == limit:
            cells[min(w - 1, pos(limit))] = "|"
        return "".join(cells) + (">" if v > top else " ")

    def _quality(self, p: Processed) -> list[tuple[str, str]]:
        """Per channel ``(light, reason)``, with "noisy baseline" only where judged at rest."""
        resting = assess(p.quality, self.quality, at_rest=True)
        busy = assess(p.quality, self.quality, at_rest=False)
        assert (self._last_active is not None and self._warn_since is not None
                and self._rms_then is not None)
        tau = self.quality.window_s * p.fs
        held = self._rms_then * np.exp(-(p.stop - self._last_active) / (2.0 * tau))
        faded = held < 0.5 * self.quality.max_rest_rms_uv
        hold = int(self._hold * p.fs)
        out = []
        for i, (r, b) in enumerate(zip(resting, busy)):
            if b[0] != "green":  # a fault no contraction causes
                out.append(b)
                continue
            quiet = p.stop > self._last_active[i] and bool(faded[i])
            if r[0] != "green" and quiet:
                if self._warn_since[i] < 0:
                    self._warn_since[i] = p.stop
                if p.stop - self._warn_since[i] >= hold:
                    out.append(r)
                    continue
            else:
                self._warn_since[i] = -1
            out.append(b)
        return out

    def _size(self) -> tuple[int, int] | None:
        """The terminal's ``(columns, rows)`` to fit the frame to, or ``None`` (not a terminal,
        e.g. a log: full width).  Asked at every frame: the user may resize the window."""
        if self.columns is not None:
            return self.columns, 10**6
        if not self.tty:
            return None
        size = shutil.get_terminal_size((80, 24))  # ($COLUMNS, else the terminal's)
        return max(20, size.columns), max(10, size.lines)

    def render(self) -> str:
        """The current frame as text (no escape codes when not on a terminal); on a terminal,
        fitted to its width (narrower bars, lines cut) and height (fewer events)."""
        p = self._last
        if p is None:
            return f"{self.title}: waiting for data..."
        size = self._size()
        if size is None:
            self._bar_w, self._cols = self.width, None
            return "\n".join(self._lines(p))
        cols, rows = size
        self._cols = cols
        self._bar_w = max(_MIN_BAR, min(self.width, cols - _LINE_REST))
        lines = self._lines(p)
        over = len(lines) - (rows - 1)  # (the cursor's line after the frame is the last row)
        if over > 0:  # fewer events: the newest kept
            first = lines.index("events:") + 1
            del lines[first:first + min(over, len(lines) - first)]
        return "\n".join(_fit(ln, cols) for ln in lines)

    def _lines(self, p: Processed) -> list[str]:
        t = p.stop / p.fs
        mains = {None: "none", 50: "50 Hz", 60: "60 Hz"}.get(self.chain.mains, "?")
        w = self._bar_w
        head = [f"{self.title}   t = {t:7.2f} s",
                f"fs = {p.fs:g} Hz   mains notch: {mains}   delay {self.chain.delay_ms:.0f} ms"]
        lines = [
            *(["   ".join(head)] if self._cols is None or len("   ".join(head)) <= self._cols
              else head),  # (two lines on a narrow terminal, not a cut one)
            f"lost samples {self._faults.lost_samples}   CRC errors {self._faults.crc_errors}   "
            f"dropped frames {self._faults.dropped_frames}   reconnects {self._faults.reconnects}",
            "-" * (w + 44),
            *self._cue_lines(p),
            "-" * (w + 44),
        ]
        fb = self._fb
        lights = self._quality(p)
        names = [short_label(c) for c in p.channels]
        if fb is not None and fb.calibrated and len(fb.pct) == len(names):
            lines.append(f" {'':<6} {'':<6} 0{'%MVC':^{w - 2}}{BAR_MAX_PCT:.0f}")
            for i, ch in enumerate(names):
                v = float(np.nan_to_num(fb.pct[i]))
                role = fb.role[i] if i < len(fb.role) else ""
                lo = hi = limit = None
                note = ""
                colour = None
                if role == "target" and fb.band_pct is not None:
                    lo, hi = fb.band_pct
                    inside = lo <= v <= hi
                    note = "in band" if inside else ("above band" if v > hi else "push on")
                    colour = "green" if inside else "amber"
                elif role == "quiet":
                    limit = float(fb.quiet_limit_pct[i])
                    over = bool(fb.red[i])
                    note = "JOINED IN: relax it" if over else "keep quiet"
                    colour = "red" if over else None
                bar = self._bar(v, lo, hi, limit, BAR_MAX_PCT)
                if colour:
                    bar = self._c(bar, colour)
                light, reason = lights[i]
                tag = self._c(_TAG[light], light) if light != "green" else "  "
                q = f"  {tag} {reason}" if light != "green" else ""
                lines.append(f" {ch:<6} {role:<6} |{bar}| {max(v, 0.0):5.0f} %  {note:<19}{q}")
        else:
            why = ""
            if fb is not None:
                why = (f"  (no %MVC: {fb.error})" if fb.error
                       else "  (calibrating: %MVC after the rest and maximum-effort trials)")
            env = p.envelope[-1] if len(p) else np.zeros(len(p.channels))
            scale = f" {'':<6} {'':<6} 0{'µV':^{w - 2}}{self.full_scale:.0f}"
            if self._cols is not None and len(scale + why) > self._cols and why.startswith("  (cal"):
                why = "  (calibrating)"
            lines.append(scale + why)
            for i, ch in enumerate(names):
                v = float(env[i])
                bar = self._bar(v, None, None, None, self.full_scale)
                light, reason = lights[i]
                tag = self._c(_TAG[light], light) + " " if light != "green" else ""
                lines.append(f" {ch:<6} {'':<6} |{bar}| {v:7.1f} µV  {tag}{reason}")
        lines.append("")
        alert = self.alert or "no synkinesis so far"
        count = (f"   ({self.n_alerts} alert{'s' if self.n_alerts != 1 else ''})"
                 if self.n_alerts else "")
        if self.alert:
            lines += self._wrapped(" ", f"!! {alert}{count}", colour="red")
        else:
            lines.append(f" {alert}{count}")
        lines.append("")
        lines.append("events:")
        lines.extend(f"  {e}" for e in self.events)
        return lines

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
