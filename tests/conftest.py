"""Test-suite wiring: make ``support`` (shared helpers) and ``peers`` (interop driver)
importable from every test module. Markers and options live in pyproject.toml."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pluggy
import pytest

_TESTS = Path(__file__).resolve().parent
for _p in (_TESTS, _TESTS / "interop"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from pgcluster import PgCluster, require_postgres  # noqa: E402
from support import SHARED_DIR, STORE_KINDS, StoreFactory  # noqa: E402


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``<repo root>/../shared`` (it may be absent: use ``support.require_shared`` to skip)."""
    return SHARED_DIR


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL server for the whole session (tests/pgcluster.py): Unix
    socket only, trust auth, fsync off; stopped and deleted at the end of the session.

    Skips when PostgreSQL or psycopg is missing; under ``TEXTSECURE_STRICT=1`` that fails."""
    with require_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_dsn(postgres_cluster: PgCluster) -> str:
    """Connection string (psycopg 3) of the session cluster's ``postgres`` database, as the
    superuser ``postgres``: ``host=<socket dir> port=<n> dbname=postgres user=postgres``."""
    return postgres_cluster.dsn


@pytest.fixture
def postgres_db_factory(postgres_cluster: PgCluster) -> Iterator[Callable[[], str]]:
    """Call it for another fresh, empty database (its connection string); all of them are
    dropped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(postgres_cluster.database())


@pytest.fixture
def postgres_db(postgres_db_factory: Callable[[], str]) -> str:
    """Connection string of a fresh, empty database ``t_<random>`` on the session cluster,
    dropped after the test (``WITH (FORCE)``: connections left open are closed)."""
    return postgres_db_factory()


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """``"memory"``, ``"sqlite"`` or ``"postgres"``: a test that uses ``new_store`` runs once
    per kind. Narrow it with ``@pytest.mark.parametrize("store_kind", [...])``."""
    return str(request.param)


@pytest.fixture
def new_store(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StoreFactory]:
    """``new_store(identity, registration_id) -> store`` of kind ``store_kind``
    (``support.StoreFactory``): SQLite in one file per test, PostgreSQL on one fresh database
    per test (``postgres_db``), an account per party; all closed after the test."""

    dsn = str(request.getfixturevalue("postgres_db")) if store_kind == "postgres" else None
    factory = StoreFactory(store_kind, tmp_path / "stores.db", dsn)
    try:
        yield factory
    finally:
        factory.close()


_POSTGRES_FIXTURES = {"postgres_cluster", "postgres_dsn", "postgres_db", "postgres_db_factory"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks what a test needs from outside the repository, for ``make test-unit`` (which
    deselects them): ``needs_node`` (tests/interop, ``interop``-marked tests),
    ``needs_postgres`` (a PostgreSQL fixture, or a ``"postgres"`` parameter such as
    ``store_kind``). ``needs_shared`` is set by the tests themselves (``require_shared`` fails
    an unmarked test under ``TEXTSECURE_UNIT=1``, as ``require_postgres`` does)."""
    for item in items:
        under_interop = _TESTS / "interop" in item.path.parents
        if under_interop or item.get_closest_marker("interop"):
            item.add_marker(pytest.mark.needs_node)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())) or "postgres" in [
            v for v in params.values() if isinstance(v, str)
        ]:
            item.add_marker(pytest.mark.needs_postgres)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    """With ``TEXTSECURE_STRICT=1`` (set by .ci/run) a skipped test fails: in CI every peer
    and the shared vectors are installed, so a skip would hide a test that proved nothing."""
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("TEXTSECURE_STRICT") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under TEXTSECURE_STRICT=1 (CI must run it): {reason}"
