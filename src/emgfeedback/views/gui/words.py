"""Plain words for the patient: every instruction, alert and summary the screens show (no Qt).

Patient mode shows no codes (``L-OOC``), no muscle names and no units: a region is a part of the
face (*your left eye*), a maximum effort says what to do (*Smile as wide as you can*), an
exercise its program cue (*Smile slowly, lips closed; keep the eye open and relaxed*).  The
clinic screens use the same instructions, so a therapist reads what the patient reads.

:func:`plain_problems` lists what on a text would be jargon; the tests run it over every text
the patient screen showed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from emgfeedback.vocabulary import EXERCISES, REGIONS, parse_label

__all__ = [
    "BODY_PART",
    "alert_words",
    "between_words",
    "effort_words",
    "exercise_words",
    "plain_problems",
    "region_words",
    "rest_words",
    "retracted_words",
    "session_summary_words",
]

#: A region as a part of the face, in the patient's words.
BODY_PART: dict[str, str] = {
    "FRO": "forehead", "COR": "brow", "OOC": "eye", "LLS": "nose", "ZYG": "cheek",
    "OOR": "lips", "DAO": "mouth corner", "MEN": "chin", "PLA": "neck", "MAS": "jaw",
}

#: The maximum effort asked of a region during calibration.
EFFORT: dict[str, str] = {
    "FRO": "Raise your eyebrows as high as you can",
    "COR": "Frown hard: pull your eyebrows together and down",
    "OOC": "Close your eyes as tightly as you can",
    "LLS": "Wrinkle your nose as much as you can",
    "ZYG": "Smile as wide as you can",
    "OOR": "Press your lips together and push them forward, as hard as you can",
    "DAO": "Pull the corners of your mouth down as far as you can",
    "MEN": "Push your chin up and pout your lower lip, as hard as you can",
    "PLA": "Tense your neck as hard as you can",
    "MAS": "Clench your teeth as hard as you can",
}

#: The short title of each maximum effort.
EFFORT_TITLE: dict[str, str] = {
    "FRO": "eyebrows up", "COR": "frown", "OOC": "eyes shut", "LLS": "nose wrinkle",
    "ZYG": "big smile", "OOR": "lips forward", "DAO": "mouth corners down", "MEN": "chin up",
    "PLA": "neck tense", "MAS": "teeth together",
}

_SIDE = {"L": "left", "R": "right"}


def region_words(channel: str) -> str:
    """``EMG L-OOC`` -> ``your left eye``."""
    cid = parse_label(channel)
    return f"your {_SIDE[cid.side]} {BODY_PART.get(cid.code, 'face')}"


def rest_words() -> tuple[str, str]:
    """(title, detail) of a rest period."""
    return ("Rest", "Let your whole face relax. Eyes open, look straight ahead.")


def effort_words(cue_text: str) -> tuple[str, str]:
    """(title, detail) of a maximum-effort cue ``mvc L-ZYG`` (both sides are asked at once)."""
    code = cue_text.split(" ", 1)[-1].split("-")[-1].upper()
    what = EFFORT.get(code, "Make this movement as strongly as you can")
    return (f"Full strength: {EFFORT_TITLE.get(code, 'move')}",
            f"{what}, and hold it until the count ends.")


def exercise_words(name: str, cue: str | None = None) -> tuple[str, str]:
    """(title, detail) of an exercise rep: the program's cue, else the vocabulary's."""
    text = cue or (EXERCISES[name].cue if name in EXERCISES else name.replace("_", " "))
    title = name.replace("_", " ").capitalize()
    return (title, text.rstrip(".") + ".")


def between_words(next_title: str | None) -> tuple[str, str]:
    """(title, detail) between two cues."""
    nxt = f" Next: {next_title.lower()}." if next_title else ""
    return ("Relax", "Let your face go soft and breathe." + nxt)


def alert_words(channels: Iterable[str], exercise: str | None) -> str:
    """What to do when a region that should stay quiet joins in (one sentence or two)."""
    parts = [region_words(c) for c in channels]
    if not parts:
        return ""
    who = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    verb = "is" if len(parts) == 1 else "are"
    what = f"the {exercise.replace('_', ' ')}" if exercise else "the movement"
    keep = "it" if len(parts) == 1 else "them"
    return (f"{who[0].upper()}{who[1:]} {verb} joining in. Keep {keep} relaxed: do {what} "
            "more gently and slowly.")


def retracted_words(channels: Iterable[str]) -> str:
    """An alert the detector took back (a blink first taken for synkinesis)."""
    parts = [region_words(c) for c in channels]
    if not parts:
        return ""
    return f"That was only a blink of {parts[0]}: it does not count. Carry on."


def session_summary_words(reps: Sequence[Any], events: Sequence[Any],
                          affected: str | None, reps_total: int, stopped_early: bool) -> str:
    """The end-of-session summary in plain words.

    ``reps`` are the detector's :class:`~emgfeedback.clinical.detect.RepResult` (one per rep and
    side), ``events`` its synkinesis events.
    """
    rep_ids = sorted({int(r.rep) for r in reps})
    if not rep_ids:
        if stopped_early:
            return "You stopped before the exercises began. That is fine: try again when ready."
        return "No exercises were done in this session."
    n = len(rep_ids)
    names = sorted({str(r.exercise).replace("_", " ") for r in reps})
    lines = [f"Well done: you did {n} exercise{'s' if n != 1 else ''} "
             f"({', '.join(names)})" + (f" of {reps_total}." if reps_total and n < reps_total
                                        else ".")]
    synk_reps = sorted({int(r.rep) for r in reps if r.synkinesis})
    clean = n - len(synk_reps)
    if not synk_reps:
        lines.append("Every time, the parts of your face that should rest stayed relaxed.")
    else:
        joined = sorted({str(e.channel) for e in events
                         if getattr(e, "rep", None) in synk_reps})
        who = ", ".join(region_words(c) for c in joined) or "another part of your face"
        lines.append(f"In {clean} of {n} the rest of your face stayed relaxed. In "
                     f"{len(synk_reps)}, {who} joined in: next time move more slowly and gently.")
    side = affected if affected in ("L", "R") else None
    mine = [r for r in reps if side is None or r.side == side]
    if mine:
        held = sum(float(r.time_in_band_s) for r in mine) / len(mine)
        where = f" with your {_SIDE[side]} side" if side else ""
        lines.append(f"You held the movement in the green zone{where} for {held:.1f} seconds "
                     "on average.")
    if stopped_early:
        lines.append("You stopped early; the rest can wait for next time.")
    return " ".join(lines)


# Words a patient should never need: codes, units, muscle names, engineering terms.
_JARGON = re.compile(
    r"\b(?:[LR]-[A-Z]{3}|EMG|MVC|%MVC|µV|uV|envelope|symmetry|affected|unaffected|"
    r"co-?contraction|synkinesis|threshold|calibrat\w*|detector|RMS|Hz)\b", re.IGNORECASE)


def plain_problems(text: str) -> list[str]:
    """The jargon in ``text``: region codes, units, muscle names, engineering words."""
    found = [m.group(0) for m in _JARGON.finditer(text)]
    low = text.lower()
    found += [r.muscle for r in REGIONS.values() if r.muscle.lower() in low]
    found += [c for c in REGIONS if re.search(rf"\b{c}\b", text)]
    return found
