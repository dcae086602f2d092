"""Make ``peers`` importable from the interop tests and register the ``interop`` marker.

Kept minimal on purpose: the project-wide pytest configuration lives in pyproject.toml.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "interop: live interop against real libsignal / libsignal-node / python-axolotl"
    )
