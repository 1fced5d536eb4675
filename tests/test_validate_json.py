"""The nesting-depth bound of ``validate.load_json_file`` (a regular expression and a running sum)
decides as the character-by-character scan it replaced, on every kind of text (issue 13)."""

from __future__ import annotations

import json
import random

import pytest

from emgfeedback.errors import FileFormatError
from emgfeedback.validate import MAX_JSON_DEPTH, _json_depth_exceeds, load_json_file


def _scan_exceeds(text: str, limit: int) -> bool:
    """The former check: a loop over the characters, strings and escapes skipped."""
    depth = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


@pytest.mark.parametrize("seed", range(40))
def test_depth_check_decides_as_the_character_scan(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = ['"', "\\", "[", "]", "{", "}", "a", ",", ":", " ", "é", "\n"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for limit in (0, 1, 2, 3, 5):
            assert _json_depth_exceeds(text, limit) == _scan_exceeds(text, limit), (text, limit)


def test_depth_check_on_documents() -> None:
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert _json_depth_exceeds(deep, MAX_JSON_DEPTH) and not _json_depth_exceeds(ok, MAX_JSON_DEPTH)
    in_string = json.dumps({"a": "[" * 1000, "b": ['x\\"[[[', {"c": "\\\\"}]})
    assert not _json_depth_exceeds(in_string, 3) and _json_depth_exceeds(in_string, 2)
    assert not _json_depth_exceeds('"[[[[', 1)  # an unterminated string runs to the end
    assert not _json_depth_exceeds('"abc\\', 0) and not _json_depth_exceeds("", 0)


def test_load_json_file_refuses_deep_nesting_quickly(tmp_path) -> None:
    p = tmp_path / "a.json"
    p.write_text("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(FileFormatError, match="nested deeper than"):
        load_json_file(p, "analysis")
    # quadratic for a naive string pattern (escaped quotes in an unterminated string): it would
    # hang here; the pattern used is linear
    p.write_text('["' + '\\"' * 200_000)
    with pytest.raises(FileFormatError, match="damaged analysis JSON"):
        load_json_file(p, "analysis")
    doc = {"reps": [{"rep": i, "x": [1.5, None, "s[{"]} for i in range(100)]}
    p.write_text(json.dumps(doc))
    assert load_json_file(p, "analysis") == doc
