"""The project's vocabulary: facial regions and their codes, sides, the channel label convention
``EMG <side>-<code>``, the exercises' names, and THE annotation vocabulary (parse and format).

EDF signal labels hold 16 characters, so a channel is named ``EMG L-ZYG``: side ``L`` or ``R``
and a three-letter region code (docs/domain.md, "Regions and codes").  In JSON output the
``EMG `` prefix is dropped (``L-ZYG``).

Annotations (``Marker.text`` in the stream, EDF+ annotations in a file; docs/analysis.md,
"Annotation vocabulary") are read by :func:`parse_annotation` and written by the ``format_*``
functions below, and nowhere else::

    rest                        a rest-baseline period
    mvc L-ZYG                   one MVC trial of that region
    smile, eye_closure, ...     one exercise rep (the cue window)
    marker, marker 54           a therapist's / device marker
    synkinesis L-OOC            the live detector's alert on that channel
    blink L-OOC, artefact L-ZYG other event types of the detector
    gap                         samples lost while recording

Every reader accepts them case-insensitively and ignores surrounding white space.

This module is at the bottom of the layers: it imports nothing of the project but ``errors``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from emgfeedback.errors import ConfigError

__all__ = [
    "ANNOTATION_KINDS", "EVENT_TYPES", "EXERCISES", "GAP", "MARKER", "REGIONS", "REST", "SIDES",
    "Annotation", "ChannelId", "Cue", "ExerciseKind", "Region", "format_event", "format_label",
    "format_marker", "format_mvc", "match_label", "parse_annotation", "parse_label",
    "short_label",
]

#: The two sides of the face, as channel labels spell them.
SIDES = ("L", "R")


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


def match_label(label: str) -> ChannelId | None:
    """``EMG L-ZYG`` or ``L-ZYG`` (any case) as a :class:`ChannelId`; ``None`` for other labels."""
    m = _LABEL.match(label.strip())
    if not m or m.group(2).upper() not in REGIONS:
        return None
    return ChannelId(m.group(1).upper(), m.group(2).upper())


def parse_label(label: str) -> ChannelId:
    """Parse ``EMG L-ZYG`` or ``L-ZYG`` (any case); raise :class:`ConfigError` otherwise."""
    cid = match_label(label)
    if cid is None:
        raise ConfigError(
            f"channel label {label!r} is not of the form 'EMG <L|R>-<code>' with a code from "
            f"{', '.join(REGIONS)}; rename the channel or map it in a montage file"
        )
    return cid


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


# --------------------------------------------------------------------------- annotations
REST = "rest"
MARKER = "marker"
GAP = "gap"
MVC = "mvc"
#: Event types the detector writes into a recording as ``<type> <side>-<code>``.
EVENT_TYPES = ("synkinesis", "blink", "artefact")
#: What :func:`parse_annotation` can say an annotation is.
ANNOTATION_KINDS = (REST, MVC, "exercise", MARKER, *EVENT_TYPES, GAP, "other")


@dataclass(frozen=True)
class Annotation:
    """One annotation text, parsed.

    Attributes
    ----------
    kind:
        One of :data:`ANNOTATION_KINDS`: ``rest``, ``mvc``, ``exercise`` (a name of
        :data:`EXERCISES` or of ``exercises`` given to :func:`parse_annotation`), ``marker``,
        ``synkinesis``/``blink``/``artefact`` (detector events), ``gap``, or ``other``.
    text:
        The text as found (stripped).
    channel:
        ``L-ZYG`` for ``mvc`` and the event kinds when the label is valid; ``None`` otherwise
        (an ``mvc`` with a bad label keeps ``kind == "mvc"``: see :attr:`valid`).
    name:
        The exercise name (lower case) for ``exercise``; the marker's suffix (``54`` of
        ``marker 54``) for ``marker``; else ``""``.
    """

    kind: str
    text: str
    channel: str | None = None
    name: str = ""

    @property
    def valid(self) -> bool:
        """False for ``mvc``/event annotations whose channel label is not a region label."""
        return self.channel is not None or self.kind not in (MVC, *EVENT_TYPES)

    @property
    def is_calibration(self) -> bool:
        """``rest`` or ``mvc ...``: a calibration period."""
        return self.kind in (REST, MVC)

    @property
    def is_protocol(self) -> bool:
        """Protocol and bookkeeping annotations (not an exercise, not unknown): calibration
        periods, markers, gaps and the detector's own events written into a recording."""
        return self.kind not in ("exercise", "other")


def parse_annotation(text: str, exercises: Iterable[str] = ()) -> Annotation:
    """What an annotation text means (case-insensitive, white space around ignored).

    ``exercises`` adds names (a program's own exercises) to the built-in :data:`EXERCISES`.
    """
    t = text.strip()
    low = t.lower()
    head, _, tail = low.partition(" ")
    tail = tail.strip()
    if low == REST:
        return Annotation(REST, t)
    if low == GAP:
        return Annotation(GAP, t)
    if head == MARKER:
        return Annotation(MARKER, t, name=t[len(MARKER):].strip())
    if head == MVC and tail:
        cid = match_label(tail)
        return Annotation(MVC, t, cid.short if cid is not None else None)
    if head in EVENT_TYPES and tail:
        cid = match_label(tail)
        return Annotation(head, t, cid.short if cid is not None else None)
    if low in EXERCISES or low in {e.strip().lower() for e in exercises}:
        return Annotation("exercise", t, name=low)
    return Annotation("other", t)


@dataclass(frozen=True)
class Cue:
    """A protocol period in the stream: the annotation ``text`` from sample ``start`` to ``stop``;
    ``side`` the side it addresses where known (``""``: both or unknown)."""

    text: str
    start: int
    stop: int
    side: str = ""

    @property
    def kind(self) -> str:
        """``rest``, ``mvc``, ``exercise`` or ``other`` (markers, alerts, gaps, unknown)."""
        k = parse_annotation(self.text).kind
        return k if k in (REST, MVC, "exercise") else "other"

    def kind_in(self, exercises: Iterable[str]) -> str:
        """Like :attr:`kind`, with a program's own exercise names besides the vocabulary's."""
        k = parse_annotation(self.text, exercises).kind
        return k if k in (REST, MVC, "exercise") else "other"


def format_mvc(channel: str) -> str:
    """``mvc L-ZYG`` for channel ``L-ZYG`` or ``EMG L-ZYG``."""
    return f"{MVC} {parse_label(channel).short}"


def format_event(event_type: str, channel: str) -> str:
    """``synkinesis L-OOC``: a detector event of ``event_type`` on ``channel``, as annotated."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"event type {event_type!r} is not one of {', '.join(EVENT_TYPES)}")
    return f"{event_type} {parse_label(channel).short}"


def format_marker(suffix: object = "") -> str:
    """``marker`` or ``marker 54``."""
    s = str(suffix).strip()
    return f"{MARKER} {s}" if s else MARKER
