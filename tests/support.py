"""Shared test helpers.

``shared_dir`` is ``<repo root>/../shared``: read-only reference material (protocol notes,
Wycheproof and interop vectors) that developers and CI have next to the repository but that
the repository must not need. Tests that read it call :func:`require_shared`, which skips
with a clear reason when the material is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"


def require_shared(*parts: str) -> Path:
    """Returns ``SHARED_DIR / parts...``, or skips the calling test when it does not exist."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"needs {path}: the shared reference material is not checked out at "
            f"<repo root>/../shared"
        )
    return path
