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
