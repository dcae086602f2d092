"""The SQL layer of the durable stores: one dialect for SQLite and PostgreSQL, the engines that
run it, and the schema migrations.

Statements are written once, with ``$1``-style parameters, and rewritten per driver: ``?1``
(numbered qmark) for ``sqlite3``, ``%s`` with the parameters reordered for psycopg 3. Both
engines run ``INSERT ... ON CONFLICT ... DO UPDATE / DO NOTHING``. Transactions are issued by
the store itself (``BEGIN`` / ``COMMIT`` / ``SAVEPOINT``): the drivers run in autocommit mode.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from os import PathLike
from typing import Any

from textsecure import errors

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "Engine",
    "PostgresEngine",
    "Result",
    "SQLiteEngine",
    "Step",
    "migrate",
]

Params = Sequence[object]
Statement = tuple[str, Params]
#: a statement in the driver's parameter style with its parameters in order
NativeStatement = tuple[str, tuple[Any, ...]]

_PARAM = re.compile(r"\$(\d+)")


@lru_cache(maxsize=512)
def _to_sqlite(sql: str) -> str:
    """``$n`` -> ``?n`` (SQLite's numbered parameters: a parameter may be used twice)."""
    return _PARAM.sub(r"?\1", sql)


@lru_cache(maxsize=512)
def _to_psycopg(sql: str) -> tuple[str, tuple[int, ...]]:
    """``$n`` -> ``%s``, with the order in which the parameters are to be passed."""
    order: list[int] = []

    def sub(m: re.Match[str]) -> str:
        order.append(int(m.group(1)) - 1)
        return "%s"

    return _PARAM.sub(sub, sql.replace("%", "%%")), tuple(order)


@dataclass(frozen=True, slots=True)
class Result:
    """What one statement gave back: its rows (empty for a write) and its row count."""

    rows: list[tuple[Any, ...]]
    rowcount: int

    def one(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


class Engine(ABC):
    """One database driver. A connection is used by one thread at a time: ``connection()``
    hands it out exclusively for one unit of work."""

    name: str
    #: the driver's exception classes (turned into ``errors.StoreError`` by the store)
    driver_errors: tuple[type[BaseException], ...]

    @abstractmethod
    def connection(self) -> Any:
        """A context manager giving a connection for one unit of work (taken exclusively)."""

    @abstractmethod
    def execute(self, conn: Any, sql: str, params: Params = ()) -> Result: ...

    def run_many(self, conn: Any, statements: Sequence[Statement]) -> list[Result]:
        """Runs statements in order (PostgreSQL: in one network round trip)."""
        return [self.execute(conn, sql, params) for sql, params in statements]

    @abstractmethod
    def begin(self, conn: Any, *, write: bool = True) -> None: ...

    def commit(self, conn: Any) -> None:
        self.execute(conn, "COMMIT")

    def rollback(self, conn: Any) -> None:
        self.execute(conn, "ROLLBACK")

    def savepoint(self, conn: Any, name: str) -> None:
        self.execute(conn, f"SAVEPOINT {name}")

    def release(self, conn: Any, name: str) -> None:
        self.execute(conn, f"RELEASE SAVEPOINT {name}")

    def rollback_to(self, conn: Any, name: str) -> None:
        self.execute(conn, f"ROLLBACK TO SAVEPOINT {name}")
        self.execute(conn, f"RELEASE SAVEPOINT {name}")

    def lock(self, conn: Any, account: str, keys: Sequence[str]) -> None:
        """Takes transaction-scoped locks on ``keys`` (in the order given). A no-op where the
        transaction already holds the whole database (SQLite's BEGIN IMMEDIATE)."""
        return None

    # -- the unit of work's hot path: driver-ready SQL, no Result objects ---------------

    #: the statement that opens a unit of work's transaction
    begin_sql: str = "BEGIN"
    #: whether a cipher operation inside a transaction must take its savepoint before its
    #: first statement (PostgreSQL: any failed statement aborts the whole transaction) or
    #: may take it only before writing (SQLite: a failed statement undoes only itself)
    eager_savepoint: bool = True

    @abstractmethod
    def native(self, sql: str) -> str:
        """``sql`` (``$1``, ``$2``, ... each once, in order) in the driver's own parameter
        style, for :meth:`read_unit` and :meth:`write_unit`."""

    @abstractmethod
    def read_unit(
        self,
        conn: Any,
        opener: str | None,
        account: str,
        lock_keys: Sequence[str],
        reads: Sequence[NativeStatement],
    ) -> list[tuple[Any, ...] | None]:
        """Runs ``opener`` (BEGIN / SAVEPOINT, or nothing), takes the locks on ``lock_keys``,
        then runs the ``reads`` (native SQL), in that order; returns the first row of each
        read (None when it has none). PostgreSQL: one round trip."""

    @abstractmethod
    def write_unit(
        self, conn: Any, writes: Sequence[NativeStatement], closer: str | None
    ) -> list[int]:
        """Runs the ``writes`` (native SQL), then ``closer`` (COMMIT / RELEASE SAVEPOINT, or
        nothing), in that order, stopping at the first that fails; returns the row count of
        each write. PostgreSQL: one round trip."""

    def schema_lock(self, conn: Any) -> None:
        """Serialises migrations between processes (inside the migration's transaction)."""
        return None

    @abstractmethod
    def has_table(self, conn: Any, table: str) -> bool: ...

    def prepare(self, conn: Any) -> None:
        """Per-database settings applied once the schema version is known to be ours."""
        return None

    @abstractmethod
    def ddl(self, sql: str) -> str:
        """A schema statement in this engine's types (``{blob}`` -> BLOB / BYTEA)."""

    @abstractmethod
    def close(self) -> None: ...


class SQLiteEngine(Engine):
    """``sqlite3`` with one connection shared by the store's threads under a lock; writes take
    the database write lock up front (BEGIN IMMEDIATE), so units of work never lose a race."""

    name = "sqlite"
    driver_errors = (sqlite3.Error,)

    def __init__(self, path: str | PathLike[str], *, busy_timeout_ms: int = 30000) -> None:
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            path,
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout_ms / 1000,
        )
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            self._conn.close()
            raise

    @property
    def raw(self) -> sqlite3.Connection:
        return self._conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def execute(self, conn: Any, sql: str, params: Params = ()) -> Result:
        cur = conn.execute(_to_sqlite(sql), tuple(params))
        try:
            rows = cur.fetchall() if cur.description is not None else []
            return Result(rows, cur.rowcount)
        finally:
            cur.close()

    def begin(self, conn: Any, *, write: bool = True) -> None:
        self.execute(conn, "BEGIN IMMEDIATE" if write else "BEGIN")

    begin_sql = "BEGIN IMMEDIATE"
    eager_savepoint = False

    def native(self, sql: str) -> str:
        return _to_sqlite(sql)

    def read_unit(
        self,
        conn: Any,
        opener: str | None,
        account: str,
        lock_keys: Sequence[str],
        reads: Sequence[NativeStatement],
    ) -> list[tuple[Any, ...] | None]:
        # the write lock is the transaction's (BEGIN IMMEDIATE): lock_keys need nothing more
        if opener is not None:
            conn.execute(opener)
        return [conn.execute(sql, params).fetchone() for sql, params in reads]

    def write_unit(
        self, conn: Any, writes: Sequence[NativeStatement], closer: str | None
    ) -> list[int]:
        counts = [conn.execute(sql, params).rowcount for sql, params in writes]
        if closer is not None:
            conn.execute(closer)
        return counts

    def has_table(self, conn: Any, table: str) -> bool:
        r = self.execute(
            conn, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1", (table,)
        )
        return bool(r.rows)

    def prepare(self, conn: Any) -> None:
        self.execute(conn, "PRAGMA journal_mode = WAL")
        self.execute(conn, "PRAGMA synchronous = NORMAL")

    def ddl(self, sql: str) -> str:
        return sql.format(blob="BLOB")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresEngine(Engine):
    """psycopg 3: a connection string (one connection of our own, under a lock), a
    ``psycopg.Connection`` (the application's, under a lock; not closed by us) or a
    ``psycopg_pool.ConnectionPool`` (a connection per unit of work). Connections run in
    autocommit mode; the store issues BEGIN / COMMIT itself."""

    name = "postgres"

    def __init__(self, target: Any) -> None:
        import psycopg

        self.driver_errors = (psycopg.Error,)
        self._psycopg = psycopg
        self._lock = threading.RLock()
        self._pool: Any = None
        self._conn: Any = None
        self._owned = False
        if isinstance(target, str | bytes):
            conninfo = target.decode() if isinstance(target, bytes) else target
            self._conn = psycopg.connect(conninfo, autocommit=True)
            self._owned = True
        elif isinstance(target, psycopg.Connection):
            if not target.autocommit:
                if target.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    raise errors.InvalidArgument(
                        "the psycopg connection is inside a transaction; commit it first"
                    )
                target.autocommit = True
            self._conn = target
        elif _is_pool(target):
            self._pool = target
        else:
            raise errors.InvalidArgument(
                "PostgresStore takes a connection string, a psycopg.Connection or a "
                f"psycopg_pool.ConnectionPool, not {type(target).__name__}"
            )

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if self._pool is None:
            with self._lock:
                yield self._conn
            return
        with self._pool.connection() as conn:
            previous = conn.autocommit
            if not previous:
                conn.autocommit = True
            try:
                yield conn
            finally:
                if not previous and not conn.closed:
                    conn.autocommit = False

    def execute(self, conn: Any, sql: str, params: Params = ()) -> Result:
        query, order = _to_psycopg(sql)
        cur = conn.execute(query, [params[i] for i in order] if order else None)
        try:
            rows = cur.fetchall() if cur.description is not None else []
            return Result(rows, cur.rowcount)
        finally:
            cur.close()

    def run_many(self, conn: Any, statements: Sequence[Statement]) -> list[Result]:
        if len(statements) <= 1:
            return [self.execute(conn, sql, params) for sql, params in statements]
        cursors = []
        with conn.pipeline():
            for sql, params in statements:
                query, order = _to_psycopg(sql)
                cursors.append(conn.execute(query, [params[i] for i in order] if order else None))
        out = []
        for cur in cursors:
            rows = cur.fetchall() if cur.description is not None else []
            out.append(Result(rows, cur.rowcount))
            cur.close()
        return out

    def begin(self, conn: Any, *, write: bool = True) -> None:
        self.execute(conn, "BEGIN")

    def native(self, sql: str) -> str:
        query, order = _to_psycopg(sql)
        if order != tuple(range(len(order))):
            raise ValueError(f"parameters out of order: {sql}")
        return query

    def read_unit(
        self,
        conn: Any,
        opener: str | None,
        account: str,
        lock_keys: Sequence[str],
        reads: Sequence[NativeStatement],
    ) -> list[tuple[Any, ...] | None]:
        # One pipeline: the server runs the statements in order, so the advisory locks are
        # held before the reads start (each read sees what was committed up to then).
        if opener is None and not lock_keys and len(reads) == 1:
            sql, params = reads[0]
            return [conn.execute(sql, params).fetchone()]
        with conn.pipeline():
            if opener is not None:
                conn.execute(opener)
            for key in lock_keys:
                conn.execute(_PG_LOCK, (account, key))
            cursors = [conn.execute(sql, params) for sql, params in reads]
        return [cur.fetchone() for cur in cursors]

    def write_unit(
        self, conn: Any, writes: Sequence[NativeStatement], closer: str | None
    ) -> list[int]:
        if closer is None and len(writes) == 1:
            sql, params = writes[0]
            return [conn.execute(sql, params).rowcount]
        if not writes:
            if closer is not None:
                conn.execute(closer)
            return []
        # one pipeline: after a failed statement the server skips the rest (the closer too)
        with conn.pipeline():
            cursors = [conn.execute(sql, params) for sql, params in writes]
            if closer is not None:
                conn.execute(closer)
        return [cur.rowcount for cur in cursors]

    def lock(self, conn: Any, account: str, keys: Sequence[str]) -> None:
        if keys:
            self.run_many(
                conn,
                [
                    (
                        "SELECT pg_advisory_xact_lock("
                        "hashtextextended($1::text || '/' || $2::text, 0))",
                        (account, key),
                    )
                    for key in keys
                ],
            )

    def schema_lock(self, conn: Any) -> None:
        self.execute(conn, "SELECT pg_advisory_xact_lock(hashtextextended('textsecure.schema', 0))")

    def has_table(self, conn: Any, table: str) -> bool:
        r = self.execute(conn, "SELECT to_regclass($1::text) IS NOT NULL", (table,))
        row = r.one()
        return bool(row and row[0])

    def ddl(self, sql: str) -> str:
        return sql.format(blob="BYTEA")

    def close(self) -> None:
        if self._owned:
            with self._lock:
                self._conn.close()


_PG_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s::text || '/' || %s::text, 0))"


def _is_pool(obj: Any) -> bool:
    try:
        import psycopg_pool
    except ImportError:  # pragma: no cover - psycopg_pool is optional
        return False
    return isinstance(obj, psycopg_pool.ConnectionPool)


# ---------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------

_ACCOUNT = "account TEXT NOT NULL REFERENCES accounts(account) ON DELETE CASCADE"

#: One schema statement: SQL for every engine, or ``{engine name: SQL}`` for the engines named
#: (an engine not named skips it).
Step = str | Mapping[str, str]


def _sqlite_rebuild(table: str, create: str, columns: str) -> list[Step]:
    """SQLite cannot drop a NOT NULL constraint: the table is rebuilt (a child table only,
    nothing references it, so it is dropped and renamed inside the migration's transaction)."""
    return [
        {"sqlite": create.replace(f"CREATE TABLE {table} ", f"CREATE TABLE {table}_v2 ")},
        {"sqlite": f"INSERT INTO {table}_v2 ({columns}) SELECT {columns} FROM {table}"},
        {"sqlite": f"DROP TABLE {table}"},
        {"sqlite": f"ALTER TABLE {table}_v2 RENAME TO {table}"},
    ]


_SESSIONS_V2 = f"""CREATE TABLE sessions (
            {_ACCOUNT},
            address TEXT NOT NULL,
            version BIGINT NOT NULL,
            record {{blob}},
            PRIMARY KEY (account, address)
        )"""
_SENDER_KEYS_V2 = f"""CREATE TABLE sender_keys (
            {_ACCOUNT},
            sender TEXT NOT NULL,
            distribution TEXT NOT NULL,
            version BIGINT NOT NULL,
            record {{blob}},
            PRIMARY KEY (account, sender, distribution)
        )"""

#: MIGRATIONS[n] takes a database from version n to n + 1; each runs in its own transaction.
MIGRATIONS: list[list[Step]] = [
    # 0 -> 1: everything
    [
        """CREATE TABLE accounts (
            account TEXT PRIMARY KEY,
            identity {blob} NOT NULL,
            registration_id BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        )""",
        f"""CREATE TABLE sessions (
            {_ACCOUNT},
            address TEXT NOT NULL,
            version BIGINT NOT NULL,
            record {{blob}} NOT NULL,
            PRIMARY KEY (account, address)
        )""",
        f"""CREATE TABLE identities (
            {_ACCOUNT},
            address TEXT NOT NULL,
            key {{blob}} NOT NULL,
            PRIMARY KEY (account, address)
        )""",
        f"""CREATE TABLE prekeys (
            {_ACCOUNT},
            id BIGINT NOT NULL,
            record {{blob}} NOT NULL,
            created_at BIGINT NOT NULL,
            confirmed BOOLEAN NOT NULL DEFAULT FALSE,
            PRIMARY KEY (account, id)
        )""",
        f"""CREATE TABLE signed_prekeys (
            {_ACCOUNT},
            id BIGINT NOT NULL,
            record {{blob}} NOT NULL,
            created_at BIGINT NOT NULL,
            confirmed BOOLEAN NOT NULL DEFAULT FALSE,
            replaced_at BIGINT,
            PRIMARY KEY (account, id)
        )""",
        f"""CREATE TABLE kyber_prekeys (
            {_ACCOUNT},
            id BIGINT NOT NULL,
            record {{blob}} NOT NULL,
            last_resort BOOLEAN NOT NULL,
            created_at BIGINT NOT NULL,
            confirmed BOOLEAN NOT NULL DEFAULT FALSE,
            replaced_at BIGINT,
            PRIMARY KEY (account, id)
        )""",
        f"""CREATE TABLE base_keys (
            {_ACCOUNT},
            signed_prekey_id BIGINT NOT NULL,
            base_key {{blob}} NOT NULL,
            PRIMARY KEY (account, signed_prekey_id, base_key)
        )""",
        f"""CREATE TABLE kyber_last_resort_uses (
            {_ACCOUNT},
            kyber_id BIGINT NOT NULL,
            signed_id BIGINT NOT NULL,
            base_key {{blob}} NOT NULL,
            PRIMARY KEY (account, kyber_id, signed_id, base_key)
        )""",
        f"""CREATE TABLE sender_keys (
            {_ACCOUNT},
            sender TEXT NOT NULL,
            distribution TEXT NOT NULL,
            version BIGINT NOT NULL,
            record {{blob}} NOT NULL,
            PRIMARY KEY (account, sender, distribution)
        )""",
        f"""CREATE TABLE inbox (
            {_ACCOUNT},
            hash {{blob}} NOT NULL,
            address TEXT NOT NULL,
            plaintext {{blob}},
            received_at BIGINT NOT NULL,
            acked_at BIGINT,
            PRIMARY KEY (account, hash)
        )""",
        "CREATE INDEX inbox_pending ON inbox (account, received_at) WHERE acked_at IS NULL",
        "CREATE INDEX inbox_acked ON inbox (account, acked_at) WHERE acked_at IS NOT NULL",
    ],
    # 1 -> 2: removed sessions and sender keys are tombstones (record NULL, version kept
    # growing), so a version number is never reused; per-account prekey id counters
    [
        {"postgres": "ALTER TABLE sessions ALTER COLUMN record DROP NOT NULL"},
        *_sqlite_rebuild("sessions", _SESSIONS_V2, "account, address, version, record"),
        {"postgres": "ALTER TABLE sender_keys ALTER COLUMN record DROP NOT NULL"},
        *_sqlite_rebuild(
            "sender_keys", _SENDER_KEYS_V2, "account, sender, distribution, version, record"
        ),
        """CREATE TABLE prekey_ids (
            account TEXT PRIMARY KEY REFERENCES accounts(account) ON DELETE CASCADE,
            next_prekey_id BIGINT NOT NULL,
            next_signed_prekey_id BIGINT NOT NULL,
            next_kyber_prekey_id BIGINT NOT NULL
        )""",
    ],
]

LATEST_VERSION = len(MIGRATIONS)

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


def _read_version(engine: Engine, conn: Any) -> int:
    row = engine.execute(conn, "SELECT MAX(version) FROM schema_version").one()
    return int(row[0]) if row and row[0] is not None else 0


def _newer(version: int) -> errors.StoreError:
    return errors.StoreError(
        f"the database schema is version {version}, newer than this textsecure "
        f"(which knows up to {LATEST_VERSION}): upgrade textsecure"
    )


def migrate(engine: Engine, migrations: Sequence[Sequence[Step]] | None = None) -> int:
    """Brings the database to the latest schema version, one migration per transaction, under
    a lock (BEGIN IMMEDIATE / an advisory lock) with the version re-read inside it, so that
    several processes may open a blank database at once. A database newer than the code
    raises ``errors.StoreError`` and is left untouched. Returns the version."""
    steps = MIGRATIONS if migrations is None else migrations
    latest = len(steps)
    with engine.connection() as conn:
        # Read-only look first: a newer database is refused before anything is written.
        if engine.has_table(conn, "schema_version"):
            version = _read_version(engine, conn)
            if version > latest:
                raise _newer(version)
        engine.prepare(conn)
        while True:
            engine.begin(conn)
            try:
                engine.schema_lock(conn)
                engine.execute(conn, _VERSION_TABLE)
                version = _read_version(engine, conn)
                if version > latest:
                    raise _newer(version)
                if version == latest:
                    engine.commit(conn)
                    return version
                for step in steps[version]:
                    statement = step if isinstance(step, str) else step.get(engine.name)
                    if statement is not None:
                        engine.execute(conn, engine.ddl(statement))
                engine.execute(conn, "DELETE FROM schema_version")
                engine.execute(
                    conn, "INSERT INTO schema_version (version) VALUES ($1)", (version + 1,)
                )
                engine.commit(conn)
            except BaseException:
                try:
                    engine.rollback(conn)
                except engine.driver_errors:
                    pass
                raise
