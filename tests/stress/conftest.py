"""Fixtures of the stress tests: the server account's home on each engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from stress.common import Target


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """One SQLite file (and another for the application's log), or one fresh PostgreSQL
    database on the session's throwaway cluster (tests/pgcluster.py) for both."""
    if request.param == "sqlite":
        return Target("sqlite", str(tmp_path / "server.db"), str(tmp_path / "app.db"))
    dsn: str = request.getfixturevalue("postgres_db")
    return Target("postgres", dsn, dsn)
