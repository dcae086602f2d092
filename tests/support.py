"""Shared test helpers.

``shared_dir`` is ``<repo root>/../shared``: read-only reference material (protocol notes,
Wycheproof and interop vectors) that developers and CI have next to the repository but that
the repository must not need. Tests that read it call :func:`require_shared`, which skips
with a clear reason when the material is absent.

``StoreFactory`` (the ``new_store`` fixture) makes the stores of the textsecure-side parties of
a test: ``MemoryStore``, ``SQLiteStore`` or ``PostgresStore`` (``STORE_KINDS``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from textsecure import IdentityKeyPair, MemoryStore
from textsecure.stores import DurableStore, PostgresStore, SQLiteStore

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"


def require_shared(*parts: str) -> Path:
    """Returns ``SHARED_DIR / parts...``, or skips the calling test when it does not exist.

    Under ``make test-unit`` (``TEXTSECURE_UNIT=1``) it fails: a test that reads ``../shared``
    must be marked ``needs_shared`` so that the unit selection leaves it out."""
    if os.environ.get("TEXTSECURE_UNIT") == "1":
        pytest.fail("this test reads ../shared: mark it @pytest.mark.needs_shared")
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"needs {path}: the shared reference material is not checked out at "
            f"<repo root>/../shared"
        )
    return path


# -- stores ----------------------------------------------------------------------------------

#: the store kinds the protocol suites run against (fixture ``store_kind`` in conftest.py)
STORE_KINDS = ("memory", "sqlite", "postgres")

#: any store a cipher accepts
Store: TypeAlias = MemoryStore | DurableStore


class StoreFactory:
    """``new_store(identity, registration_id) -> store`` of one kind (fixture ``new_store``):
    a ``MemoryStore``; or an ``SQLiteStore`` on one database file per test; or a
    ``PostgresStore`` on one fresh database per test. Each durable party is an account of its
    own in that database (``party1``, ``party2``, ...; or ``account=``). ``key=`` encrypts a
    durable store at rest (ignored for memory). Every store opened is closed at teardown."""

    def __init__(self, kind: str, sqlite_path: Path, postgres_dsn: str | None = None) -> None:
        if kind not in STORE_KINDS:
            raise ValueError(f"unknown store kind {kind!r}")
        if kind == "postgres" and postgres_dsn is None:
            raise ValueError("a postgres StoreFactory needs the database's connection string")
        self.kind = kind
        self.sqlite_path = sqlite_path
        self.postgres_dsn = postgres_dsn
        self._count = 0
        self.opened: list[DurableStore] = []

    @property
    def target(self) -> str:
        """The SQLite path or the PostgreSQL connection string (durable kinds only)."""
        if self.kind == "sqlite":
            return str(self.sqlite_path)
        if self.kind == "postgres" and self.postgres_dsn is not None:
            return self.postgres_dsn
        raise ValueError("a MemoryStore has no database")

    @property
    def durable(self) -> bool:
        return self.kind != "memory"

    def __call__(
        self,
        identity: IdentityKeyPair | None = None,
        registration_id: int = 1,
        *,
        account: str | None = None,
        key: bytes | None = None,
    ) -> Store:
        if identity is None:
            identity = IdentityKeyPair.generate()
        if self.kind == "memory":
            return MemoryStore(identity, registration_id)
        if account is None:
            self._count += 1
            account = f"party{self._count}"
        return self.open(
            account=account, identity=identity, registration_id=registration_id, key=key
        )

    def open(self, **kw: Any) -> DurableStore:
        """Opens (or reopens) an account of this test's database: ``SQLiteStore`` /
        ``PostgresStore`` keyword arguments."""
        store: DurableStore
        if self.kind == "sqlite":
            store = SQLiteStore(self.target, **kw)
        else:
            store = PostgresStore(self.target, **kw)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            if not store.closed:
                store.close()
        self.opened.clear()
