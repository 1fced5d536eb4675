"""The one annotation vocabulary (emgfeedback.vocabulary): parse and format agree, every kind."""

from __future__ import annotations

import pytest

from emgfeedback.errors import ConfigError
from emgfeedback.vocabulary import (
    ANNOTATION_KINDS,
    EVENT_TYPES,
    format_event,
    format_label,
    format_marker,
    format_mvc,
    match_label,
    parse_annotation,
    parse_label,
)


@pytest.mark.parametrize("text, kind, channel, name", [
    ("rest", "rest", None, ""),
    ("  REST ", "rest", None, ""),
    ("mvc L-ZYG", "mvc", "L-ZYG", ""),
    ("MVC emg r-ooc", "mvc", "R-OOC", ""),
    ("mvc X-ZZZ", "mvc", None, ""),  # an MVC with a bad label: still protocol, not valid
    ("smile", "exercise", None, "smile"),
    ("Eye_Closure", "exercise", None, "eye_closure"),
    ("marker", "marker", None, ""),
    ("marker 54", "marker", None, "54"),
    ("synkinesis L-OOC", "synkinesis", "L-OOC", ""),
    ("blink R-OOC", "blink", "R-OOC", ""),
    ("artefact L-ZYG", "artefact", "L-ZYG", ""),
    ("gap", "gap", None, ""),
    ("Gap", "gap", None, ""),
    ("mvc", "other", None, ""),
    ("synkinesis", "other", None, ""),
    ("markers", "other", None, ""),
    ("coffee break", "other", None, ""),
])
def test_parse_annotation(text: str, kind: str, channel: str | None, name: str) -> None:
    a = parse_annotation(text)
    assert (a.kind, a.channel, a.name, a.text) == (kind, channel, name, text.strip())
    assert a.kind in ANNOTATION_KINDS
    assert a.is_protocol == (kind not in ("exercise", "other"))
    assert a.is_calibration == (kind in ("rest", "mvc"))
    assert a.valid == (text.strip() != "mvc X-ZZZ")


def test_program_exercises_extend_the_vocabulary() -> None:
    assert parse_annotation("cheek_puff").kind == "other"
    a = parse_annotation(" Cheek_Puff", exercises=("cheek_puff",))
    assert (a.kind, a.name) == ("exercise", "cheek_puff")


def test_format_round_trips() -> None:
    assert format_mvc("EMG l-zyg") == "mvc L-ZYG"
    assert parse_annotation(format_mvc("R-OOR")).channel == "R-OOR"
    for t in EVENT_TYPES:
        a = parse_annotation(format_event(t, "EMG L-OOC"))
        assert (a.kind, a.channel) == (t, "L-OOC")
    assert format_marker() == "marker" and format_marker(54) == "marker 54"
    assert parse_annotation(format_marker("3")).name == "3"
    with pytest.raises(ValueError, match="event type"):
        format_event("sneeze", "L-OOC")
    with pytest.raises(ConfigError):
        format_mvc("EMG 1")


def test_labels() -> None:
    assert format_label("l", "zyg") == "EMG L-ZYG"
    assert parse_label("emg r-fro").short == "R-FRO"
    assert match_label("EMG 1") is None and match_label("L-XYZ") is None
    assert match_label(" L-MAS ") is not None
