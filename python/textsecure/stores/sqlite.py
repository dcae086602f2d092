"""``SQLiteStore``: a durable store in one SQLite file (WAL mode; several processes may share
it: writers take the database lock up front with BEGIN IMMEDIATE)."""

from __future__ import annotations

import sqlite3
from os import PathLike
from typing import TYPE_CHECKING, Any

from textsecure import errors
from textsecure._native import IdentityKeyPair
from textsecure.stores._base import DurableStore
from textsecure.stores._sql import SQLiteEngine

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["SQLiteStore"]

Path = str | PathLike[str]


def _engine(path: Path) -> SQLiteEngine:
    try:
        return SQLiteEngine(path)
    except sqlite3.Error as e:
        raise errors.StoreError(f"sqlite: cannot open {path!r}: {e}") from e


class SQLiteStore(DurableStore):
    """Every protocol store of ``account``, in the SQLite database at ``path`` (created or
    migrated on open). The first open of an account stores its identity and registration id
    (given, or generated); later opens load them. With ``key`` (32 bytes) every record is
    encrypted at rest."""

    _engine: SQLiteEngine

    def __init__(
        self,
        path: Path,
        *,
        account: str = "default",
        identity: IdentityKeyPair | None = None,
        registration_id: int | None = None,
        key: Buffer | None = None,
    ) -> None:
        super().__init__(
            _engine(path),
            account=account,
            identity=identity,
            registration_id=registration_id,
            key=key,
        )

    @classmethod
    def _connect(cls, target: Any) -> SQLiteEngine:
        return _engine(target)
