"""``AsyncPostgresStore``: the PostgreSQL store on psycopg's ``AsyncConnectionPool``.

The ciphers' units of work run natively on the event loop (``_execute_async``): take a pooled
connection, BEGIN + the advisory locks + the reads in one pipeline, then the snapshot, the
native plan (GIL released) and the change set's statements on a thread of the store's *plan*
executor, then the writes + COMMIT in one pipeline with ``DurableStore``'s row-count checks,
and again on a lost race. The SQL, the snapshot filling and the change set's statements are
``DurableStore``'s own (``_reads``, ``_writes``, ``_Reads.fill``, ``_check``).

Everything else (schema migrations, opening the account, the record methods, the prekey
lifecycle, the inbox, key rotation, group and sealed-sender operations, batches) is the sync
``DurableStore`` code itself, run on a thread of the store's *call* executor against an engine
whose every database round trip is a coroutine on the event loop (``_BridgedEngine``): one
implementation of the store, one connection pool, all I/O on the loop.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from textsecure import errors
from textsecure._native import IdentityKeyPair, Operation
from textsecure.stores import DurableStore, PostgresStore
from textsecure.stores._base import MAX_ATTEMPTS, _check, _Reads, _store_error
from textsecure.stores._sql import _PG_LOCK, PostgresEngine, Result, Statement, _to_psycopg
from textsecure.stores.protocol import Conflict

from ._stores import AsyncDurableStore

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool
    from typing_extensions import Buffer

__all__ = ["AsyncPostgresStore"]

P = ParamSpec("P")
R = TypeVar("R")
NativeStatement = tuple[str, tuple[Any, ...]]

#: statements queued in a pipeline between two yields to the event loop (a batch of many
#: sessions queues hundreds; each costs psycopg some tens of microseconds of Python)
_YIELD_EVERY = 32


class _AsyncEngine:
    """The database half that runs on the event loop: pooled connections (in autocommit
    mode, the store issues BEGIN / COMMIT itself) and the round trips of a unit of work."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        import psycopg

        self.pool = pool
        self.idle = psycopg.pq.TransactionStatus.IDLE

    async def acquire(self) -> tuple[AsyncConnection[Any], bool]:
        """A connection of the pool in autocommit mode, and its previous autocommit."""
        conn = await self.pool.getconn()
        previous = conn.autocommit
        if not previous:
            try:
                await conn.set_autocommit(True)
            except BaseException:
                await asyncio.shield(self.pool.putconn(conn))
                raise
        return conn, previous

    async def release(self, conn: AsyncConnection[Any], previous: bool) -> None:
        """Gives the connection back (rolled back if a cancelled unit left a transaction
        open; the pool discards a broken one)."""
        try:
            if not conn.closed and conn.info.transaction_status != self.idle:
                with suppress(Exception):
                    await conn.execute("ROLLBACK")
            if not previous and not conn.closed and conn.info.transaction_status == self.idle:
                with suppress(Exception):
                    await conn.set_autocommit(False)
        finally:
            await self.pool.putconn(conn)

    async def execute(
        self, conn: AsyncConnection[Any], sql: str, params: Sequence[object]
    ) -> Result:
        query, order = _to_psycopg(sql)
        cur = await conn.execute(query, [params[i] for i in order] if order else None)
        try:
            rows = await cur.fetchall() if cur.description is not None else []
            return Result(rows, cur.rowcount)
        finally:
            await cur.close()

    async def run_many(
        self, conn: AsyncConnection[Any], statements: Sequence[Statement]
    ) -> list[Result]:
        if len(statements) <= 1:
            return [await self.execute(conn, sql, params) for sql, params in statements]
        cursors = []
        async with conn.pipeline():
            for sql, params in statements:
                query, order = _to_psycopg(sql)
                cursors.append(
                    await conn.execute(query, [params[i] for i in order] if order else None)
                )
        out = []
        for cur in cursors:
            rows = await cur.fetchall() if cur.description is not None else []
            out.append(Result(rows, cur.rowcount))
            await cur.close()
        return out

    async def read_unit(
        self,
        conn: AsyncConnection[Any],
        opener: str | None,
        account: str,
        lock_keys: Sequence[str],
        reads: Sequence[NativeStatement],
    ) -> list[tuple[Any, ...] | None]:
        """``PostgresEngine.read_unit`` on the loop: opener, locks and reads, one pipeline."""
        if opener is None and not lock_keys and len(reads) == 1:
            sql, params = reads[0]
            cur = await conn.execute(sql, params)
            return [await cur.fetchone()]
        async with conn.pipeline():
            if opener is not None:
                await conn.execute(opener)
            for i, key in enumerate(lock_keys, 1):
                await conn.execute(_PG_LOCK, (account, key))
                if i % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # a batch's statements: let other coroutines run
            cursors = []
            for i, (sql, params) in enumerate(reads, 1):
                cursors.append(await conn.execute(sql, params))
                if i % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        return [await cur.fetchone() for cur in cursors]

    async def write_unit(
        self, conn: AsyncConnection[Any], writes: Sequence[NativeStatement], closer: str | None
    ) -> list[int]:
        """``PostgresEngine.write_unit`` on the loop: the writes and closer, one pipeline."""
        if closer is None and len(writes) == 1:
            sql, params = writes[0]
            return [(await conn.execute(sql, params)).rowcount]
        if not writes:
            if closer is not None:
                await conn.execute(closer)
            return []
        async with conn.pipeline():
            cursors = []
            for i, (sql, params) in enumerate(writes, 1):
                cursors.append(await conn.execute(sql, params))
                if i % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # a batch's statements: let other coroutines run
            if closer is not None:
                await conn.execute(closer)
        return [cur.rowcount for cur in cursors]


class _BridgedEngine(PostgresEngine):
    """``PostgresEngine`` for the sync ``DurableStore`` code on a worker thread: every
    round trip is a coroutine of :class:`_AsyncEngine` run on the event loop, the thread
    waiting for it. On the event loop's own thread it refuses (it would deadlock)."""

    def __init__(self, engine: _AsyncEngine, loop: asyncio.AbstractEventLoop) -> None:
        import psycopg

        self.driver_errors = (psycopg.Error,)
        self._psycopg = psycopg
        self._pool = None
        self._conn = None
        self._owned = False
        self._async = engine
        self._loop = loop

    def _call(self, coro: Coroutine[Any, Any, R]) -> R:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise errors.StoreError(
                "AsyncPostgresStore.sync was called on the event loop's thread, which it "
                "would block: await the store's coroutines, or call it from a worker thread"
            )
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError as e:  # the loop is closed
            coro.close()
            raise errors.StoreError(f"AsyncPostgresStore: {e}") from e
        return future.result()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        conn, previous = self._call(self._async.acquire())
        try:
            yield conn
        finally:
            self._call(self._async.release(conn, previous))

    def execute(self, conn: Any, sql: str, params: Sequence[object] = ()) -> Result:
        return self._call(self._async.execute(conn, sql, params))

    def run_many(self, conn: Any, statements: Sequence[Statement]) -> list[Result]:
        return self._call(self._async.run_many(conn, statements))

    def read_unit(
        self,
        conn: Any,
        opener: str | None,
        account: str,
        lock_keys: Sequence[str],
        reads: Sequence[NativeStatement],
    ) -> list[tuple[Any, ...] | None]:
        return self._call(self._async.read_unit(conn, opener, account, lock_keys, reads))

    def write_unit(
        self, conn: Any, writes: Sequence[NativeStatement], closer: str | None
    ) -> list[int]:
        return self._call(self._async.write_unit(conn, writes, closer))

    def close(self) -> None:
        return None  # the pool is the async store's


class _SyncPostgresStore(PostgresStore):
    """``AsyncPostgresStore.sync``: a ``PostgresStore`` on the async store's pool (every
    round trip a coroutine on the loop), for worker threads."""

    _engine: _BridgedEngine

    def __init__(
        self,
        engine: _BridgedEngine,
        *,
        account: str,
        identity: IdentityKeyPair | None,
        registration_id: int | None,
        key: Buffer | None,
    ) -> None:
        DurableStore.__init__(
            self,
            engine,
            account=account,
            identity=identity,
            registration_id=registration_id,
            key=key,
        )

    def __repr__(self) -> str:
        return f"<AsyncPostgresStore.sync account={self._account!r}>"


def _plan(
    store: DurableStore, op: Operation, reads: _Reads, rows: list[tuple[Any, ...] | None]
) -> tuple[list[NativeStatement], int, Any]:
    """The CPU half of a unit of work, on a plan thread: snapshot (rows opened and parsed in
    Rust), plan (GIL released), the change set's statements."""
    snapshot = store._new_snapshot()
    reads.fill(snapshot, rows)
    changes, result = op.plan(snapshot)
    writes, checked = store._writes(changes)
    return writes, checked, result


def _is_async_pool(target: object) -> bool:
    module = sys.modules.get("psycopg_pool")
    return module is not None and isinstance(target, module.AsyncConnectionPool)


class AsyncPostgresStore(AsyncDurableStore[PostgresStore]):
    """Every protocol store of ``account`` in a PostgreSQL database, for asyncio, on psycopg's
    ``AsyncConnectionPool``: ``target`` is a connection string (the store opens a pool of
    ``pool_size`` connections and closes it) or an ``AsyncConnectionPool`` (the
    application's; not closed by the store). Same schema, locks and guarantees as
    ``PostgresStore``: the two may serve one account at once.

    ``async with AsyncPostgresStore(dsn, account=...) as store:`` (or ``await store.open()``)
    creates or migrates the schema and opens the account. At most ``max_inflight`` units of
    work hold a connection at once (default: the pool's size; the others wait their turn
    without the pool's timeout). Plans run on ``plan_threads`` threads (default: the CPU
    count); the sync store code (``sync``, group and sealed-sender ciphers, batches, the
    record methods) on ``call_threads`` threads. Use a store on one event loop only."""

    def __init__(
        self,
        target: str | AsyncConnectionPool[Any],
        *,
        account: str = "default",
        identity: IdentityKeyPair | None = None,
        registration_id: int | None = None,
        key: Buffer | None = None,
        pool_size: int = 10,
        max_inflight: int | None = None,
        plan_threads: int | None = None,
        call_threads: int = 16,
    ) -> None:
        super().__init__()
        if not isinstance(target, str) and not _is_async_pool(target):
            raise errors.InvalidArgument(
                "AsyncPostgresStore takes a connection string or a "
                f"psycopg_pool.AsyncConnectionPool, not {type(target).__name__} "
                "(PostgresStore takes the sync ones)"
            )
        for name, value in (("pool_size", pool_size), ("call_threads", call_threads)):
            if not isinstance(value, int) or value < 1:
                raise errors.InvalidArgument(f"{name} must be an int >= 1")
        self._target = target
        self._owns_pool = isinstance(target, str)
        self._account_args = (account, identity, registration_id, key)
        self._pool_size = pool_size
        self._max_inflight = max_inflight
        self._plans = ThreadPoolExecutor(
            max_workers=plan_threads or os.cpu_count() or 2, thread_name_prefix="textsecure-plan"
        )
        self._calls = ThreadPoolExecutor(
            max_workers=call_threads, thread_name_prefix="textsecure-aio"
        )
        self._pool: AsyncConnectionPool[Any] | None = None
        self._engine: _AsyncEngine | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- life cycle ---------------------------------------------------------------------

    async def _open_sync(self) -> PostgresStore:
        try:
            import psycopg_pool
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise errors.StoreError(
                "AsyncPostgresStore needs psycopg 3 and psycopg-pool: "
                'pip install "textsecure[postgres]"'
            ) from e
        import psycopg

        self._loop = asyncio.get_running_loop()
        if isinstance(self._target, str):
            pool: AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
                self._target,
                open=False,
                min_size=self._pool_size,
                max_size=self._pool_size,
                kwargs={"autocommit": True},
            )
            self._pool = pool
            try:
                await pool.open(wait=True)
            except psycopg.Error as e:
                raise errors.StoreError(f"postgres: cannot connect: {type(e).__name__}: {e}") from e
        else:
            pool = self._target
            self._pool = pool
        self._engine = _AsyncEngine(pool)
        self._slots = asyncio.Semaphore(self._max_inflight or pool.max_size)
        bridged = _BridgedEngine(self._engine, self._loop)
        account, identity, registration_id, key = self._account_args
        return await self._run(
            _SyncPostgresStore,
            bridged,
            account=account,
            identity=identity,
            registration_id=registration_id,
            key=key,
        )

    async def _run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._calls, functools.partial(fn, *args, **kwargs))

    async def _release(self) -> None:
        await asyncio.to_thread(self._calls.shutdown, True)
        await asyncio.to_thread(self._plans.shutdown, True)
        if self._owns_pool and self._pool is not None:
            await self._pool.close()

    async def _run_final(self, fn: Callable[[], None]) -> None:
        # DurableStore.close() only marks the store closed (the bridged engine owns nothing)
        fn()

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        """The ``psycopg_pool.AsyncConnectionPool`` the store works on."""
        if self._pool is None:
            raise errors.StoreError("the store is not open yet: await store.open() first")
        return self._pool

    # -- the unit of work, natively async -----------------------------------------------

    async def _execute_async(self, op: Operation) -> Any:
        """Runs a native ``Operation`` (or a batch: anything with ``needs()`` and
        ``plan(snapshot)``) as one unit of work: locks and reads on the loop, the plan on a
        plan thread, writes and COMMIT on the loop; again on a lost race (``MAX_ATTEMPTS``
        runs, then ``StoreError``). Returns what the plan returns."""
        if self._closed:
            raise errors.StoreError("the store is closed")
        store = self.sync
        engine = self._engine
        slots = self._slots
        assert engine is not None and slots is not None
        import psycopg

        reads = store._reads(op.needs())
        async with slots:
            try:
                for _ in range(MAX_ATTEMPTS):
                    try:
                        return await self._attempt(engine, store, op, reads)
                    except Conflict:
                        continue
            except errors.TextSecureError:
                raise
            except psycopg.Error as e:
                raise _store_error(store._engine, e) from e
        raise errors.StoreError(
            f"a store operation lost the race to concurrent writers {MAX_ATTEMPTS} times"
        )

    async def _attempt(
        self, engine: _AsyncEngine, store: DurableStore, op: Operation, reads: _Reads
    ) -> Any:
        """One run as a transaction of its own (``DurableStore._attempt_top`` on the loop)."""
        import psycopg

        loop = asyncio.get_running_loop()
        conn, previous = await engine.acquire()
        try:
            ended = False
            try:
                rows = await engine.read_unit(
                    conn, "BEGIN", store.account, reads.lock_keys, reads.sql
                )
                writes, checked, result = await loop.run_in_executor(
                    self._plans, _plan, store, op, reads, rows
                )
                # COMMIT with the writes unless a row count may still call for a ROLLBACK
                early = checked == 0 or len(writes) == 1
                counts = await engine.write_unit(conn, writes, "COMMIT" if early else None)
                ended = early
                _check(counts, checked)
                if not early:
                    ended = True
                    await conn.execute("COMMIT")
                return result
            except BaseException:
                if not ended and not conn.closed:
                    with suppress(psycopg.Error):
                        await conn.execute("ROLLBACK")
                raise
        finally:
            await asyncio.shield(engine.release(conn, previous))

    def __repr__(self) -> str:
        account = self._account_args[0]
        return f"<AsyncPostgresStore account={account!r}{' closed' if self._closed else ''}>"
