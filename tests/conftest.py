"""Shared fixtures.  ``shared_data`` points at ../shared/data (real recordings made by others);
tests that need it skip with a clear reason when it is absent (CI always has it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not available: {SHARED_DATA} is absent (CI has ../shared)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _private_user_data(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's own patient history: the default database path
    ($XDG_DATA_HOME/emgfeedback/history.sqlite) points into a temporary folder."""
    if "EMGFEEDBACK_DB" not in os.environ:
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
