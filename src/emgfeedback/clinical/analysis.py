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
from emgfeedback.vocabulary import MARKER, parse_annotation, short_label

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
    #: every event the detector reported (synkinesis, blink, artefact); ``events`` is the
    #: synkinesis ones
    all_events: list[SynkinesisEvent] = field(default_factory=list)

    def quality(self) -> dict[str, dict[str, Any]]:
        """Per channel: the artefact periods (onset, offset, reasons) and their total time."""
        fs = self.recording.fs
        out: dict[str, dict[str, Any]] = {}
        for ch in self.montage.names:
            periods = [e for e in self.all_events
                       if e.channel == ch and e.type == "artefact" and e.alert is None]
            total = sum(((e.offset if e.offset is not None else self.recording.n_samples)
                         - e.onset) for e in periods)
            out[ch] = {
                "artefact_s": round(total / fs, 4),
                "electrode_off_s": round(sum(
                    ((e.offset or self.recording.n_samples) - e.onset) for e in periods
                    if "flat" in e.reason or "clipping" in e.reason) / fs, 4),
                "periods": [{"onset_s": round(e.onset / fs, 4),
                             "offset_s": None if e.offset is None else round(e.offset / fs, 4),
                             "reason": e.reason} for e in periods],
            }
        return out

    def to_json(self) -> dict[str, Any]:
        fs = self.recording.fs
        return {
            "version": SCHEMA_VERSION,
            "file": str(self.recording.path),
            "fs": fs,
            "duration_s": round(self.recording.n_samples / fs, 4),
            # missing samples (lost frames, empty cells, NaN): skipped, the chain restarted
            "gaps": [{"onset_s": round(g0 / fs, 4), "duration_s": round(n / fs, 4)}
                     for g0, n in self.recording.gaps],
            "lost_samples": int(self.recording.lost_samples),
            "channels": list(self.montage.names),
            "affected_side": self.montage.affected_side,
            "program": self.program.name,
            "mains_hz": self.mains,
            "envelope_delay_ms": round(self.delay_ms, 2),
            "detection": dataclasses.asdict(self.program.detection),
            "calibration": self.calibration.to_json(),
            "calibration_notes": list(self.calibration.notes),
            "warnings": [n for n in self.calibration.notes if n.startswith("warning")],
            "reps": [r.to_json(fs) for r in self.reps],
            "events": [e.to_json(fs) for e in (self.all_events or self.events)],
            "counts": {t: sum(1 for e in (self.all_events or self.events) if e.type == t)
                       for t in ("synkinesis", "blink", "artefact")},
            "quality": self.quality(),
            "symmetry": self.symmetry,
            "unknown_annotations": [{"onset_s": round(s / fs, 4), "text": t}
                                    for s, t in self.unknown_annotations],
            # the therapist's and the device's markers in the file (``marker``, ``marker 54``)
            "markers": [{"onset_s": round(m.sample / fs, 4), "text": m.text}
                        for m in self.recording.markers
                        if parse_annotation(m.text).kind == MARKER],
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
                     f"{r.target:<6} {r.target_peak_pct_mvc:>6.1f}{'!' if r.exceeds_mvc else ' '} "
                     f"{r.time_in_band_s:>9.2f} "
                     f"{r.isolation:>5.2f}  {coc:<15}  {'YES' if r.synkinesis else '-'}")
    if any(r.exceeds_mvc for r in a.reps):
        lines.append("  ! peak above the calibration (> 100 %MVC): the patient exceeded the "
                     "strongest MVC trial")
    lines.append("")
    lines.append(f"{len(a.events)} synkinesis event(s)")
    for e in a.events:
        off = "open" if e.offset is None else f"{e.offset / fs:.2f}"
        alert = "-" if e.alert is None else f"{e.alert / fs:.2f}"
        over = " (exceeds calibration)" if e.exceeds_mvc else ""
        lines.append(f"  {e.channel} during {e.exercise} ({e.trigger}): onset {e.onset / fs:.2f} s,"
                     f" alert {alert} s, offset {off} s, peak {e.peak_pct_mvc:.0f} %MVC{over}")
    blinks = [e for e in a.all_events if e.type == "blink"]
    retracted = sum(1 for e in a.all_events if e.retracted)
    lines.append(f"{len(blinks)} blink(s) during reps; {retracted} live alert(s) retracted "
                 "(blinks, transients or artefacts)")
    for ch, q in a.quality().items():
        if q["periods"]:
            why = sorted({p["reason"] for p in q["periods"]})
            lines.append(f"  quality {ch}: {len(q['periods'])} artefact period(s), "
                         f"{q['artefact_s']:.1f} s ({'; '.join(why)})")
    for w in (n for n in a.calibration.notes if n.startswith("warning")):
        lines.append(f"  {w}")
    if a.symmetry:
        lines.append("")
        lines.append("symmetry (affected / unaffected target %MVC):")
        for s in a.symmetry:
            ratio = "n/a" if s["ratio"] is None else f"{s['ratio']:.2f}"
            lines.append(f"  rep {s['rep']:>3} {s['exercise']:<18} L {s['left_pct_mvc']:6.1f}  "
                         f"R {s['right_pct_mvc']:6.1f}  ratio {ratio}")
    return "\n".join(lines)
