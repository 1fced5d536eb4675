"""Facial regions, their codes, and the channel label convention ``EMG <side>-<code>``.

EDF signal labels hold 16 characters, so a channel is named ``EMG L-ZYG``: side ``L`` or ``R``
and a three-letter region code (docs/domain.md, "Regions and codes").  In JSON output the
``EMG `` prefix is dropped (``L-ZYG``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emgfeedback.errors import ConfigError

__all__ = [
    "EXERCISES", "REGIONS", "ChannelId", "ExerciseKind", "Region", "format_label", "parse_label",
    "short_label",
]


@dataclass(frozen=True)
class Region:
    code: str
    muscle: str
    movement: str
    site: str


REGIONS: dict[str, Region] = {
    r.code: r
    for r in (
        Region("FRO", "frontalis", "brow raise",
               "forehead, above the mid-pupil line, 1 cm above the brow; second electrode 1 cm "
               "higher, along the vertical fibres"),
        # Sites after Fridlund & Cacioppo 1986 (check COR and ZYG against the original figure
        # before printing guides: a note for developers, never shown to clinicians).
        Region("COR", "corrugator supercilii", "frown",
               "just above the brow on the vertical through the inner eye corner; second "
               "electrode 1 cm lateral"),
        Region("OOC", "orbicularis oculi", "eye closure, blink",
               "1 cm below the outer eye corner; second electrode 1 cm medial and slightly "
               "below, parallel to the lower lid"),
        Region("LLS", "levator labii superioris", "nose wrinkle, upper lip raise",
               "beside the nose, about 1 cm lateral to the nasal ala; second electrode 1 cm "
               "higher along the fibres"),
        Region("ZYG", "zygomaticus major", "smile",
               "midway on the line from the mouth corner to the front of the ear; second "
               "electrode 1 cm toward the mouth"),
        Region("OOR", "orbicularis oris", "pucker, lip press",
               "1 cm below the lower lip vermilion, lateral to the midline; second electrode "
               "1 cm lateral along the lip"),
        Region("DAO", "depressor anguli oris", "mouth corner down",
               "1 cm below and lateral to the mouth corner, toward the jaw line; second "
               "electrode 1 cm lower along the fibres"),
        Region("MEN", "mentalis", "chin raise",
               "on the chin, 1 cm lateral to the midline; second electrode 1 cm below"),
        Region("PLA", "platysma", "neck tension",
               "on the neck below the jaw angle; second electrode 1 cm lower along the fibres"),
        Region("MAS", "masseter", "jaw clench",
               "over the muscle belly, 1 cm above the jaw angle; second electrode 1 cm higher "
               "(crosstalk source for lower-face channels)"),
    )
}

_LABEL = re.compile(r"^(?:EMG\s+)?([LR])-([A-Z]{3})$", re.IGNORECASE)


@dataclass(frozen=True)
class ChannelId:
    side: str  # "L" or "R"
    code: str  # key of REGIONS

    @property
    def label(self) -> str:
        return format_label(self.side, self.code)

    @property
    def short(self) -> str:
        return f"{self.side}-{self.code}"

    @property
    def region(self) -> Region:
        return REGIONS[self.code]


def format_label(side: str, code: str) -> str:
    """``("L", "ZYG") -> "EMG L-ZYG"``."""
    return f"EMG {side.upper()}-{code.upper()}"


def parse_label(label: str) -> ChannelId:
    """Parse ``EMG L-ZYG`` or ``L-ZYG`` (any case); raise :class:`ConfigError` otherwise."""
    m = _LABEL.match(label.strip())
    if not m or m.group(2).upper() not in REGIONS:
        raise ConfigError(
            f"channel label {label!r} is not of the form 'EMG <L|R>-<code>' with a code from "
            f"{', '.join(REGIONS)}; rename the channel or map it in a montage file"
        )
    return ChannelId(m.group(1).upper(), m.group(2).upper())


def short_label(label: str) -> str:
    """Drop the ``EMG `` prefix as JSON output does (``EMG L-ZYG -> L-ZYG``); other labels as is."""
    s = label.strip()
    return s[4:].strip() if s.upper().startswith("EMG ") else s


@dataclass(frozen=True)
class ExerciseKind:
    """An exercise of the annotation vocabulary (docs/analysis.md): what it asks to move."""

    name: str
    targets: tuple[str, ...]  # region codes that should contract
    cue: str  # instruction shown to the patient


#: The built-in exercise vocabulary.  Programs (clinical.exercises) may define more; regions not
#: in ``targets`` are to be kept quiet unless a program says otherwise.
EXERCISES: dict[str, ExerciseKind] = {
    e.name: e
    for e in (
        ExerciseKind("smile", ("ZYG",), "Smile slowly, lips closed; keep the eye open and relaxed"),
        ExerciseKind("eye_closure", ("OOC",), "Close the eye gently; keep the mouth corner still"),
        ExerciseKind("eye_closure_tight", ("OOC",), "Close the eye tightly; keep the mouth still"),
        ExerciseKind("pucker", ("OOR",), "Pucker the lips slowly; keep the eye relaxed"),
        ExerciseKind("brow_raise", ("FRO",), "Raise the brows; keep the eye and mouth relaxed"),
        ExerciseKind("nose_wrinkle", ("LLS",), "Wrinkle the nose; keep the eye relaxed"),
        ExerciseKind("lip_depress", ("DAO",), "Pull the mouth corners down; keep the neck relaxed"),
        ExerciseKind("chin_raise", ("MEN",), "Push the chin up; keep the neck relaxed"),
    )
}
