"""``PostgresStore``: a durable store on PostgreSQL through psycopg 3. Several processes on
several machines may serve one account: units of work take advisory locks on what they touch
and detect lost races with row versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textsecure import errors
from textsecure._native import IdentityKeyPair
from textsecure.stores._base import DurableStore
from textsecure.stores._sql import PostgresEngine

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["PostgresStore"]


def _engine(target: Any) -> PostgresEngine:
    try:
        import psycopg
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise errors.StoreError(
            'PostgresStore needs psycopg 3: pip install "psycopg[binary]"'
        ) from e
    try:
        return PostgresEngine(target)
    except psycopg.Error as e:
        raise errors.StoreError(f"postgres: cannot connect: {type(e).__name__}: {e}") from e


class PostgresStore(DurableStore):
    """Every protocol store of ``account`` in a PostgreSQL database. ``conninfo`` is a
    connection string (the store opens and closes one connection), a ``psycopg.Connection``
    (used in autocommit mode, not closed by the store) or a ``psycopg_pool.ConnectionPool``
    (a connection per unit of work; several threads work in parallel)."""

    _engine: PostgresEngine
    #: Items per unit of work in ``decrypt_many`` / ``encrypt_many`` (each takes an advisory
    #: lock per session, and PostgreSQL's lock table holds ``max_locks_per_transaction`` x
    #: connections of them: 6,400 by default); a longer batch commits every this many items.
    _batch_limit = 1000

    def __init__(
        self,
        conninfo: Any,
        *,
        account: str = "default",
        identity: IdentityKeyPair | None = None,
        registration_id: int | None = None,
        key: Buffer | None = None,
    ) -> None:
        super().__init__(
            _engine(conninfo),
            account=account,
            identity=identity,
            registration_id=registration_id,
            key=key,
        )

    @classmethod
    def _connect(cls, target: Any) -> PostgresEngine:
        return _engine(target)
