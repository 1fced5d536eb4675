"""The result of analysing a recording (:class:`Analysis`), its JSON and its table.

The analysis itself is :func:`emgfeedback.app.analyze.analyze`: the recording replayed through
the same pipeline as a live session (docs/analysis.md documents the JSON schema and the
annotation vocabulary).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from emgfeedback.clinical.calibration import Calibration
from emgfeedback.clinical.detect import RepResult, SynkinesisEvent
from emgfeedback.clinical.exercises import Program
from emgfeedback.clinical.montage import Montage
from emgfeedback.recording import Recording
from emgfeedback.vocabulary import short_label

__all__ = ["SCHEMA_VERSION", "Analysis", "format_table"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@dataclass
class Analysis:
    """Result of :func:`emgfeedback.app.analyze.analyze`: the objects and their JSON
    (:meth:`to_json`)."""

    recording: Recording
    montage: Montage
    program: Program
    calibration: Calibration
    events: list[SynkinesisEvent]
    reps: list[RepResult]
    symmetry: list[dict[str, Any]]
    unknown_annotations: list[tuple[int, str]] = field(default_factory=list)
    delay_ms: float = 0.0
    mains: int | None = None

    def to_json(self) -> dict[str, Any]:
        fs = self.recording.fs
        return {
            "version": SCHEMA_VERSION,
            "file": str(self.recording.path),
            "fs": fs,
            "duration_s": round(self.recording.n_samples / fs, 4),
            "channels": list(self.montage.names),
            "affected_side": self.montage.affected_side,
            "program": self.program.name,
            "mains_hz": self.mains,
            "envelope_delay_ms": round(self.delay_ms, 2),
            "detection": dataclasses.asdict(self.program.detection),
            "calibration": self.calibration.to_json(),
            "calibration_notes": list(self.calibration.notes),
            "reps": [r.to_json(fs) for r in self.reps],
            "events": [e.to_json(fs) for e in self.events],
            "symmetry": self.symmetry,
            "unknown_annotations": [{"onset_s": round(s / fs, 4), "text": t}
                                    for s, t in self.unknown_annotations],
        }


def format_table(a: Analysis) -> str:
    """A readable summary for the terminal."""
    fs = a.recording.fs
    lines = [f"{a.recording.path or 'recording'}: {a.recording.n_samples / fs:.1f} s at "
             f"{fs:g} Hz, channels {', '.join(a.montage.names)}, affected side "
             f"{a.montage.affected_side or 'unknown'}"]
    src = sorted(set(a.calibration.rest_source) | set(a.calibration.mvc_source))
    lines.append(f"calibration: {', '.join(src)}")
    for note in a.calibration.notes:
        lines.append(f"  note: {note}")
    lines.append("")
    lines.append(f"{'rep':>4} {'exercise':<18} {'side':<4} {'onset s':>8} {'target':<6} "
                 f"{'peak %':>7} {'in band s':>9} {'isol':>5}  cocontraction %  synk")
    for r in a.reps:
        coc = " ".join(f"{short_label(k)}={v:.0f}" for k, v in r.cocontraction.items())
        lines.append(f"{r.rep:>4} {r.exercise:<18} {r.side:<4} {r.start / fs:>8.2f} "
                     f"{r.target:<6} {r.target_peak_pct_mvc:>7.1f} {r.time_in_band_s:>9.2f} "
                     f"{r.isolation:>5.2f}  {coc:<15}  {'YES' if r.synkinesis else '-'}")
    lines.append("")
    lines.append(f"{len(a.events)} synkinesis event(s)")
    for e in a.events:
        off = "open" if e.offset is None else f"{e.offset / fs:.2f}"
        lines.append(f"  {e.channel} during {e.exercise} ({e.trigger}): onset {e.onset / fs:.2f} s,"
                     f" alert {e.alert / fs:.2f} s, offset {off} s, peak {e.peak_pct_mvc:.0f} %MVC")
    if a.symmetry:
        lines.append("")
        lines.append("symmetry (affected / unaffected target %MVC):")
        for s in a.symmetry:
            ratio = "n/a" if s["ratio"] is None else f"{s['ratio']:.2f}"
            lines.append(f"  rep {s['rep']:>3} {s['exercise']:<18} L {s['left_pct_mvc']:6.1f}  "
                         f"R {s['right_pct_mvc']:6.1f}  ratio {ratio}")
    return "\n".join(lines)
