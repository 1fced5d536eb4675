"""The exercise screen: one %MVC bar per region and side, the cue, timer, reps, symmetry."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QVBoxLayout, QWidget

from emgfeedback.vocabulary import parse_label
from emgfeedback.views.gui.controller import Guidance
from emgfeedback.app.feedback import FeedbackSnapshot
from emgfeedback.app.program import RunnerSnapshot
from emgfeedback.views.gui.mirror import MirrorView
from emgfeedback.views.gui.screens.common import _label
from emgfeedback.views.gui.screens.patient import SoundControls
from emgfeedback.views.gui.sound import SoundSettings
from emgfeedback.views.gui.widgets import RegionBar


class ExerciseScreen(QWidget):
    """Per region one large %MVC bar, both sides side by side, cue, timer, reps, symmetry.

    :attr:`red_log` keeps ``(sample, channel)`` whenever a quiet region's bar turned red, for
    tests and the summary.  ``patient`` enlarges everything and drops the details.
    """

    def __init__(self, patient: bool = False, parent: QWidget | None = None,
                 sound: SoundSettings | None = None) -> None:
        super().__init__(parent)
        self.patient = patient
        outer = QVBoxLayout(self)
        outer.setContentsMargins(30, 20, 30, 20)
        top = QHBoxLayout()
        big = 30 if patient else 24
        self.cue = _label("Get ready", big, bold=True, wrap=True)
        # Room for a two-line cue from the start: a wrapped label in a row of the layout does
        # not always get the height of its second line when its text changes.
        cue_font = QFont(self.cue.font())
        cue_font.setPointSizeF(big)
        cue_font.setBold(True)
        self.cue.setMinimumHeight(int(QFontMetrics(cue_font).lineSpacing() * 2 + 8))
        self.timer = _label("", big)
        self.timer.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.reps = _label("", big * 0.7)
        self.reps.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.cue, 4)
        right = QVBoxLayout()
        right.addWidget(self.timer)
        right.addWidget(self.reps)
        top.addLayout(right, 1)
        outer.addLayout(top)
        middle = QHBoxLayout()
        middle.setSpacing(12)
        self.bars_row = QHBoxLayout()
        self.bars_row.setSpacing(12)
        middle.addLayout(self.bars_row, 1)
        # The mirror view (the camera beside the bars), when the session has video.
        self.mirror_box = QWidget()
        mcol = QVBoxLayout(self.mirror_box)
        mcol.setContentsMargins(0, 0, 0, 0)
        self.mirror = MirrorView(mirror=True)
        self.mirror_flip = QCheckBox("Mirror image (as the patient sees it)")
        self.mirror_flip.setChecked(True)
        self.mirror_flip.toggled.connect(self.mirror.set_mirror)
        mcol.addWidget(self.mirror, 1)
        mcol.addWidget(self.mirror_flip)
        self.mirror_box.setVisible(False)
        middle.addWidget(self.mirror_box, 1)
        outer.addLayout(middle, 1)
        self.alert = _label("", 18, bold=True, wrap=True)
        self.alert.setStyleSheet("font-size: 18pt; font-weight: bold; color: #7d231d;")
        self.alert.setMinimumHeight(34)
        outer.addWidget(self.alert)
        bottom = QHBoxLayout()
        self.sound = SoundControls(sound or SoundSettings())
        bottom.addWidget(self.sound)
        self.video_note = _label("", muted=True, wrap=True)
        bottom.addWidget(self.video_note, 1)
        self.hint = _label("", muted=True)
        bottom.addWidget(self.hint)
        outer.addLayout(bottom)
        self.bars: dict[int, RegionBar] = {}
        self.symmetry = _label("", 17 if not patient else 22, bold=True)
        self.symmetry.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.red_log: list[tuple[int, str]] = []
        self.said: list[str] = []  # every alert said in words (tests, the summary)
        self._was_red: set[int] = set()
        self.affected = "L"

    def set_video(self, available: bool, message: str) -> None:
        """Show the mirror view beside the bars, or the line saying how to enable it."""
        if self.mirror_box.isVisibleTo(self) != available:
            self.mirror_box.setVisible(available)
        self.mirror.set_message(None if available else message)
        if self.video_note.text() != message:
            self.video_note.setText(message)

    def set_channels(self, channels: tuple[str, ...], affected: str) -> None:
        while self.bars_row.count():
            item = self.bars_row.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.setParent(None)
            elif item is not None and (lay := item.layout()) is not None:
                while lay.count():
                    sub = lay.takeAt(0)
                    sw = sub.widget() if sub is not None else None
                    if sw is not None:
                        sw.setParent(None)
        self.bars = {}
        self.affected = affected
        ids = [parse_label(c) for c in channels]
        sides = sorted({c.side for c in ids})
        for k, side in enumerate(sides):
            group = QFrame()
            group.setFrameShape(QFrame.Shape.StyledPanel)
            g = QVBoxLayout(group)
            name = {"L": "Left", "R": "Right"}[side]
            if len(sides) > 1:
                name += " (affected)" if side == affected else " (unaffected)"
            head = _label(name, 22 if self.patient else 16, bold=True)
            head.setAlignment(Qt.AlignmentFlag.AlignCenter)
            g.addWidget(head)
            row = QHBoxLayout()
            for i, cid in enumerate(ids):
                if cid.side != side:
                    continue
                bar = RegionBar(cid.code, cid.region.muscle)
                if self.patient:
                    bar.scale_font = 1.25
                self.bars[i] = bar
                row.addWidget(bar)
            g.addLayout(row, 1)
            self.bars_row.addWidget(group, 1)
            if k == 0 and len(sides) > 1:
                mid = QVBoxLayout()
                mid.addStretch(1)
                mid.addWidget(self.symmetry)
                mid.addStretch(1)
                holder = QWidget()
                holder.setLayout(mid)
                holder.setMinimumWidth(190)
                self.bars_row.addWidget(holder)
        self.red_log = []
        self._was_red = set()

    def refresh(self, fb: FeedbackSnapshot, run: RunnerSnapshot,
                guidance: Guidance | None = None) -> None:
        """Bars from the detector's %MVC and limits; red where the detector flags synkinesis,
        with the words of the alert."""
        cue = fb.cue if fb.cue is not None and fb.exercise is not None else None
        values = fb.pct if fb.calibrated else fb.envelope_uv
        band = fb.band_pct or (0.0, 0.0)
        for i, bar in self.bars.items():
            role = fb.role[i]
            alert = bool(fb.red[i])  # the detector says so (even as its rep ends)
            if alert and i not in self._was_red:
                self.red_log.append((fb.position, fb.channels[i]))
            if alert:
                self._was_red.add(i)
            else:
                self._was_red.discard(i)
            limit = float(fb.quiet_limit_pct[i])
            bar.set_value(float(values[i]), role, band, limit if np.isfinite(limit) else 0.0,
                          alert, fb.calibrated)
        said = (guidance.alert or guidance.retracted) if guidance is not None else ""
        if self.alert.text() != said:
            self.alert.setText(said)
            if said:
                self.said.append(said)
        if guidance is not None:
            # The same words the patient reads (views.gui.words), the countdown in signal s.
            text = guidance.detail if guidance.step == "exercise" else guidance.title
            left = guidance.countdown_s
            what = {"exercise": "Hold", "effort": "Hold", "rest": "Rest", "between": "Next in"
                    }.get(guidance.step, "")
            timer = f"{what}  {left:3.1f} s" if left is not None and what else ""
        elif cue is not None and fb.exercise is not None:
            text = fb.exercise.cue or fb.exercise.name
            timer = f"Hold  {max(0, cue.stop - fb.position) / fb.fs:3.1f} s"
        else:
            text, timer = ("Session complete" if run.phase == "done" else "Relax"), ""
        if self.cue.text() != text:
            self.cue.setText(text)
        if self.timer.text() != timer:
            self.timer.setText(timer)
        current = run.reps_done + (1 if cue is not None else 0)
        self.reps.setText(f"Rep {min(current, run.reps_total)} of {run.reps_total}"
                          if run.reps_total else "")
        self.symmetry.setText(symmetry_text(fb, self.affected))
        if fb.error:
            hint = "no synkinesis detection: " + fb.error
        elif not fb.calibrated:
            hint = "not calibrated yet: bars show the envelope in µV above rest"
        else:
            hint = ""
        if self.hint.text() != hint:
            self.hint.setText(hint)


def symmetry_text(fb: FeedbackSnapshot, affected: str) -> str:
    """``Symmetry\\n0.62``: the detector's %MVC of the current target region, affected side over
    unaffected side, at this moment (the per-rep figure is on the Summary)."""
    ids = [parse_label(c) for c in fb.channels]
    tgt = [i for i, r in enumerate(fb.role) if r == "target"]
    aff = [i for i in tgt if ids[i].side == affected]
    una = [i for i in tgt if ids[i].side != affected]
    if not aff or not una:
        return "Symmetry\n–"
    a, u = float(fb.pct[aff[0]]), float(fb.pct[una[0]])
    if not np.isfinite(a) or not np.isfinite(u) or u < 5.0:
        return "Symmetry\n–"
    return f"Symmetry\n{a / u:.2f}\naffected /\nunaffected"
