"""Test-suite wiring: make ``support`` (shared helpers) and ``peers`` (interop driver)
importable from every test module. Markers and options live in pyproject.toml."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
for _p in (_TESTS, _TESTS / "interop"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from support import SHARED_DIR  # noqa: E402


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``<repo root>/../shared`` (it may be absent: use ``support.require_shared`` to skip)."""
    return SHARED_DIR
