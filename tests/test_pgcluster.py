"""The throwaway PostgreSQL server for the durable-store tests (tests/pgcluster.py) and its
fixtures in conftest.py: ``postgres_dsn`` (one cluster per session), ``postgres_db`` (a fresh
database per test) and ``postgres_db_factory`` (more of them)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pgcluster
import pytest
from pgcluster import PgCluster, PgUnavailable, find_bindir, require_postgres

#: the PostgreSQL test harness itself (make test-unit leaves it out)
pytestmark = pytest.mark.needs_postgres

try:
    import psycopg
except ImportError:
    if os.environ.get("TEXTSECURE_STRICT") == "1":
        raise  # CI installs psycopg: a module skip here would hide these tests
    pytest.skip(
        'psycopg is not installed: pip install "psycopg[binary]>=3.2"', allow_module_level=True
    )


def test_dsn_reaches_a_unix_socket_only_server(postgres_dsn: str) -> None:
    assert "dbname=postgres" in postgres_dsn and "user=postgres" in postgres_dsn
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute(
            "SELECT current_user, inet_server_addr(), current_setting('listen_addresses'),"
            " current_setting('fsync'), current_setting('max_connections')::int,"
            " current_setting('server_encoding')"
        ).fetchone()
    assert row == ("postgres", None, "", "off", 200, "UTF8")


def test_postgres_db_stores_rows(postgres_db: str) -> None:
    assert "dbname=t_" in postgres_db
    with psycopg.connect(postgres_db) as conn:
        conn.execute("CREATE TABLE kv (k text PRIMARY KEY, v bytea NOT NULL)")
        conn.execute("INSERT INTO kv VALUES (%s, %s)", ("alice", b"\x00\xffrecord"))
    with psycopg.connect(postgres_db) as conn:  # committed: a new connection sees it
        assert conn.execute("SELECT k, v FROM kv").fetchall() == [("alice", b"\x00\xffrecord")]


def test_databases_are_isolated(postgres_db: str, postgres_db_factory: Callable[[], str]) -> None:
    other = postgres_db_factory()
    assert other != postgres_db
    with psycopg.connect(postgres_db) as a, psycopg.connect(other) as b:
        a.execute("CREATE TABLE kv (k text)")
        a.execute("INSERT INTO kv VALUES ('only in a')")
        a.commit()
        with pytest.raises(psycopg.errors.UndefinedTable):
            b.execute("SELECT * FROM kv")
        b.rollback()
        b.execute("CREATE TABLE kv (k text)")
        assert b.execute("SELECT count(*) FROM kv").fetchone() == (0,)
        assert a.execute("SELECT k FROM kv").fetchall() == [("only in a",)]


def test_database_is_dropped_even_with_open_connections(postgres_cluster: PgCluster) -> None:
    with postgres_cluster.database() as dsn:
        name = dict(part.split("=", 1) for part in dsn.split())["dbname"]
        left_open = psycopg.connect(dsn)
        left_open.execute("CREATE TABLE t (x int)")
    with psycopg.connect(postgres_cluster.dsn) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchall() == []
        )
    with pytest.raises(psycopg.OperationalError):
        left_open.execute("SELECT 1")  # terminated by DROP DATABASE ... WITH (FORCE)
    left_open.close()


def test_cluster_stop_removes_everything() -> None:
    cluster = require_postgres()
    with cluster:
        root = cluster.root
        with psycopg.connect(cluster.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    assert not root.exists()
    assert _exits_soon(pid)  # pg_ctl stop returns once postmaster.pid is gone, just before
    cluster.stop()  # idempotent


def _exits_soon(pid: int, timeout: float = 10.0) -> bool:
    """Whether process ``pid`` is gone (or a zombie, not ours to reap) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def _fake_install(root: Path, version: str, tools: tuple[str, ...]) -> Path:
    bindir = root / version / "bin"
    bindir.mkdir(parents=True)
    for tool in tools:
        (bindir / tool).write_text("#!/bin/sh\nexit 1\n")
        (bindir / tool).chmod(0o755)
    return bindir


def test_find_bindir_takes_the_newest_complete_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_install(tmp_path, "9.6", ("initdb", "pg_ctl"))
    newest = _fake_install(tmp_path, "15", ("initdb", "pg_ctl"))
    _fake_install(tmp_path, "16", ("initdb",))  # incomplete: no pg_ctl
    monkeypatch.setattr(pgcluster, "PG_LIB_DIR", tmp_path)
    assert find_bindir() == newest


@pytest.mark.parametrize("strict", [False, True])
def test_missing_postgres_skips_or_fails_under_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strict: bool
) -> None:
    monkeypatch.setattr(pgcluster, "PG_LIB_DIR", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_bindir() is None
    with pytest.raises(PgUnavailable, match="not installed"):
        PgCluster()
    if strict:
        monkeypatch.setenv("TEXTSECURE_STRICT", "1")
        with pytest.raises(pytest.fail.Exception, match=r"TEXTSECURE_STRICT=1.*not installed"):
            require_postgres()
    else:
        monkeypatch.delenv("TEXTSECURE_STRICT", raising=False)
        with pytest.raises(pytest.skip.Exception, match="not installed"):
            require_postgres()
