"""``DurableStore``: the engine-independent half of the SQLite and PostgreSQL stores.

Everything a cipher does to a durable store is one *unit of work* (``_execute``): the native
operation says what it reads (``needs``), the store takes the locks, loads those rows in one
round, the native side plans the change in memory, and the store writes all of it in one
round, with compare-and-swap on row versions. A lost race rolls back and runs the operation
again. Outside ``store.transaction()`` a unit of work is its own transaction; inside, it is a
savepoint of the application's transaction.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar

from textsecure import errors
from textsecure._native import (
    Address,
    IdentityKey,
    IdentityKeyPair,
    Operation,
    PreKeyBundle,
    PublicKey,
    RecordSealer,
    SenderKeyRecord,
    SessionRecord,
    Snapshot,
)
from textsecure.stores import _native_api as nat
from textsecure.stores import _prekeys
from textsecure.stores._prekeys import PreKeyCounts, PreKeyUpload
from textsecure.stores._sql import Engine, NativeStatement, Result, Statement, migrate
from textsecure.stores.protocol import (
    MAX_ATTEMPTS as MAX_ATTEMPTS,
)
from textsecure.stores.protocol import (
    Conflict,
    PreKeyRow,
    PreKeyTable,
    _PreKeyMethods,
    distribution_key,
    retry,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["DurableStore", "InboxItem", "Transaction"]

P = ParamSpec("P")
R = TypeVar("R")

#: default age of the inbox tombstones ``inbox_purge`` deletes (servers keep envelopes
#: for a few weeks; a tombstone must outlive any redelivery)
INBOX_RETENTION_MS = 30 * 24 * 3600 * 1000
_PURGE_INTERVAL_S = 3600.0
_INBOX_DOMAIN = b"textsecure.inbox.v1"
_MAX_REGISTRATION_ID = 16380


#: a unit of work lost a race (version changed, row inserted or consumed meanwhile)
_Conflict = Conflict


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _address_key(address: Address) -> str:
    return str(address)


def _blob(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _session_lock(address_key: str) -> str:
    """The lock a cipher operation on this session takes (``Needs.lock_keys``' spelling)."""
    return f"session/{address_key}"


def _sender_key_lock(address_key: str, dist: str) -> str:
    return f"sender_key/{address_key}/{dist}"


def _parse_address(text: str) -> Address:
    name, _, device = text.rpartition(".")
    return Address(name, int(device))


def inbox_hash(address: Address, message: Any) -> bytes:
    """The envelope hash of the exactly-once inbox (``address`` canonical)."""
    h = hashlib.sha256(_INBOX_DOMAIN)
    h.update(str(address).encode())
    h.update(b"\0")
    h.update(bytes([int(message.type)]))
    h.update(bytes(message))
    return h.digest()


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Turns the driver's exceptions into ``errors.StoreError`` (the original as
    ``__cause__``); textsecure's own exceptions pass through."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store = args[0]
        assert isinstance(store, DurableStore)
        with store._errors():
            return method(*args, **kwargs)

    return wrapper


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A decrypted envelope kept until the application acknowledges it."""

    hash: bytes
    plaintext: bytes
    address: Address
    received_at: int


class Transaction:
    """What ``store.transaction()`` yields: ``connection`` is the driver's connection
    (``sqlite3.Connection`` / ``psycopg.Connection``) the application may run its own
    statements on; they commit or roll back together with the store's."""

    __slots__ = ("_connection", "_store")

    def __init__(self, store: DurableStore, connection: Any) -> None:
        self._store = store
        self._connection = connection

    @property
    def connection(self) -> Any:
        """The driver's connection of the transaction (``sqlite3.Connection`` or
        ``psycopg.Connection``): statements on it commit or roll back with the store's."""
        return self._connection

    @property
    def store(self) -> DurableStore:
        """The store that opened the transaction."""
        return self._store


class _Local(threading.local):
    conn: Any
    depth: int
    #: the savepoints of the cipher operations running on this thread (outermost first):
    #: one not taken yet is taken before anything else writes
    owed: list[_Owed]

    def __init__(self) -> None:
        self.conn = None
        self.depth = 0
        self.owed = []


class _Owed:
    """A cipher operation running on this thread: its savepoint (None: the operation is a
    transaction of its own), whether it is taken yet, and whether anything else wrote on
    the connection while the operation ran (its plan, re-entering the store)."""

    __slots__ = ("dirty", "name", "taken")

    def __init__(self, name: str | None, taken: bool) -> None:
        self.name = name
        self.taken = taken
        self.dirty = False


def _store_error(engine: Engine, e: BaseException) -> errors.StoreError:
    return errors.StoreError(f"{engine.name}: {type(e).__name__}: {e}")


def _check(counts: Sequence[int], checked: int) -> None:
    """Raises ``_Conflict`` unless each of the first ``checked`` writes changed one row."""
    for i in range(checked):
        if counts[i] != 1:
            raise _Conflict


class _Sql:
    """The unit of work's statements in one engine's parameter style (built once per
    store). Parameters appear in order, each once."""

    __slots__ = (
        "base_key",
        "delete_kyber_prekey",
        "delete_prekey",
        "identity",
        "insert_base_key",
        "insert_last_resort_use",
        "insert_sender_key",
        "insert_session",
        "kyber_prekey",
        "prekey",
        "sender_key",
        "session",
        "session_identity",
        "signed_prekey",
        "update_sender_key",
        "update_session",
        "upsert_identity",
    )

    def __init__(self, engine: Engine) -> None:
        n = engine.native
        self.session = n("SELECT record, version FROM sessions WHERE account = $1 AND address = $2")
        self.identity = n("SELECT key FROM identities WHERE account = $1 AND address = $2")
        # one row always: (record, version, key); version NULL when there is no session row
        self.session_identity = n(
            "SELECT s.record, s.version, i.key FROM (SELECT 1) AS one "
            "LEFT JOIN sessions AS s ON s.account = $1 AND s.address = $2 "
            "LEFT JOIN identities AS i ON i.account = $3 AND i.address = $4"
        )
        self.prekey = n("SELECT record FROM prekeys WHERE account = $1 AND id = $2")
        self.signed_prekey = n("SELECT record FROM signed_prekeys WHERE account = $1 AND id = $2")
        self.kyber_prekey = n(
            "SELECT record, last_resort FROM kyber_prekeys WHERE account = $1 AND id = $2"
        )
        self.base_key = n(
            "SELECT 1 FROM base_keys WHERE account = $1 AND signed_prekey_id = $2 AND base_key = $3"
        )
        self.sender_key = n(
            "SELECT record, version FROM sender_keys "
            "WHERE account = $1 AND sender = $2 AND distribution = $3"
        )
        self.insert_session = n(
            "INSERT INTO sessions (account, address, version, record) "
            "VALUES ($1, $2, 1, $3) ON CONFLICT DO NOTHING"
        )
        self.update_session = n(
            "UPDATE sessions SET record = $1, version = $2 "
            "WHERE account = $3 AND address = $4 AND version = $5"
        )
        self.delete_prekey = n("DELETE FROM prekeys WHERE account = $1 AND id = $2")
        self.delete_kyber_prekey = n(
            "DELETE FROM kyber_prekeys WHERE account = $1 AND id = $2 AND NOT last_resort"
        )
        self.insert_last_resort_use = n(
            "INSERT INTO kyber_last_resort_uses (account, kyber_id, signed_id, base_key) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        )
        self.insert_base_key = n(
            "INSERT INTO base_keys (account, signed_prekey_id, base_key) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
        )
        self.insert_sender_key = n(
            "INSERT INTO sender_keys (account, sender, distribution, version, record) "
            "VALUES ($1, $2, $3, 1, $4) ON CONFLICT DO NOTHING"
        )
        self.update_sender_key = n(
            "UPDATE sender_keys SET record = $1, version = $2 "
            "WHERE account = $3 AND sender = $4 AND distribution = $5 AND version = $6"
        )
        self.upsert_identity = n(
            "INSERT INTO identities (account, address, key) VALUES ($1, $2, $3) "
            "ON CONFLICT (account, address) DO UPDATE SET key = excluded.key"
        )


class _Reads:
    """What one operation loads (from its ``Needs``, each list read once): the lock keys,
    the SELECTs, and how their rows go into a snapshot."""

    __slots__ = (
        "base_keys",
        "identities",
        "kyber",
        "lock_keys",
        "pair",
        "prekeys",
        "sender_keys",
        "sessions",
        "signed",
        "sql",
    )

    def __init__(
        self,
        lock_keys: Sequence[str],
        sql: list[NativeStatement],
        sessions: Sequence[Address],
        identities: Sequence[Address],
        prekeys: Sequence[int],
        signed: Sequence[int],
        kyber: Sequence[int],
        base_keys: Sequence[tuple[int, bytes]],
        sender_keys: Sequence[tuple[Address, str]],
        pair: bool,
    ) -> None:
        self.lock_keys = lock_keys
        self.sql = sql
        self.sessions = sessions
        self.identities = identities
        self.prekeys = prekeys
        self.signed = signed
        self.kyber = kyber
        self.base_keys = base_keys
        self.sender_keys = sender_keys
        self.pair = pair

    def fill(self, snapshot: nat.SnapshotLike, rows: list[tuple[Any, ...] | None]) -> None:
        """Puts the rows read (as stored: the snapshot opens sealed ones) into ``snapshot``.
        A session tombstone (record NULL) is an absent session at its version."""
        if self.pair:
            row = rows[0]
            assert row is not None
            record, version, key = row
            if version is None:
                snapshot.add_session(self.sessions[0], None, 0)
            else:
                snapshot.add_session(
                    self.sessions[0], None if record is None else bytes(record), int(version)
                )
            snapshot.add_identity(self.identities[0], None if key is None else bytes(key))
            return
        it = iter(rows)
        for address in self.sessions:
            row = next(it)
            if row is None:
                snapshot.add_session(address, None, 0)
            else:
                snapshot.add_session(address, _blob(row[0]), int(row[1]))
        for address in self.identities:
            row = next(it)
            snapshot.add_identity(address, None if row is None else bytes(row[0]))
        for id in self.prekeys:
            row = next(it)
            snapshot.add_prekey(id, None if row is None else bytes(row[0]))
        for id in self.signed:
            row = next(it)
            snapshot.add_signed_prekey(id, None if row is None else bytes(row[0]))
        for id in self.kyber:
            row = next(it)
            if row is None:
                snapshot.add_kyber_prekey(id, None, False)
            else:
                snapshot.add_kyber_prekey(id, bytes(row[0]), bool(row[1]))
        for spk_id, base_key in self.base_keys:
            snapshot.add_base_key(spk_id, bytes(base_key), next(it) is not None)
        for sender, dist in self.sender_keys:
            row = next(it)
            if row is None:
                snapshot.add_sender_key(sender, dist, None, 0)
            else:
                snapshot.add_sender_key(sender, dist, _blob(row[0]), int(row[1]))


class DurableStore(_PreKeyMethods):
    """Every protocol store of one account, kept in a SQL database (see ``SQLiteStore``,
    ``PostgresStore``): the same methods as ``MemoryStore``, plus transactions, the
    exactly-once inbox, encryption at rest and key rotation."""

    _engine: Engine

    def __init__(
        self,
        engine: Engine,
        *,
        account: str,
        identity: IdentityKeyPair | None,
        registration_id: int | None,
        key: Buffer | None,
    ) -> None:
        self._engine = engine
        self._sql = _Sql(engine)
        self._local = _Local()
        self._closed = False
        self._last_purge = float("-inf")  # the first acknowledgement purges
        try:
            if not isinstance(account, str) or not account:
                raise errors.InvalidArgument("account must be a non-empty str")
            if identity is not None and not isinstance(identity, IdentityKeyPair):
                raise TypeError("identity must be an IdentityKeyPair")
            if registration_id is not None and not (
                isinstance(registration_id, int) and 0 <= registration_id <= 0xFFFFFFFF
            ):
                raise errors.InvalidArgument("registration_id must be an int in 0..2**32-1")
            self._account = account
            self._sealer = self._make_sealer(key) if key is not None else None
            with self._errors():
                migrate(engine)
                self._identity, self._registration_id = self._open_account(
                    identity, registration_id
                )
        except BaseException:
            self._closed = True
            with self._suppressed():
                engine.close()
            raise

    # -- plumbing ---------------------------------------------------------------------

    def _make_sealer(self, key: Buffer) -> RecordSealer:
        data = bytes(key)
        if len(data) != 32:
            raise errors.InvalidArgument("key must be 32 bytes")
        return RecordSealer(data, self._account)

    def _new_snapshot(self) -> Any:
        return Snapshot(self._identity, self._registration_id, sealer=self._sealer)

    def _errors(self) -> AbstractContextManager[None]:
        return translate_errors(self._engine)

    @contextmanager
    def _suppressed(self) -> Iterator[None]:
        try:
            yield
        except self._engine.driver_errors:
            pass

    @contextmanager
    def _unit(self) -> Iterator[Any]:
        """One unit of work: a transaction (BEGIN IMMEDIATE / BEGIN .. COMMIT), or a savepoint
        when this thread is already inside one. Rolls back if the block raises."""
        if self._closed:
            raise errors.StoreError("the store is closed")
        local = self._local
        engine = self._engine
        if local.conn is not None:
            conn = local.conn
            if local.owed:
                self._settle(conn)  # an operation's plan writes: its savepoint first
            local.depth += 1
            name = f"textsecure_{local.depth}"
            try:
                engine.savepoint(conn, name)
                try:
                    yield conn
                except BaseException:
                    with self._suppressed():
                        engine.rollback_to(conn, name)
                    raise
                engine.release(conn, name)
            finally:
                local.depth -= 1
            return
        with engine.connection() as conn:
            engine.begin(conn)
            local.conn = conn
            try:
                try:
                    yield conn
                finally:
                    local.conn = None
            except BaseException:
                with self._suppressed():
                    engine.rollback(conn)
                raise
            try:
                engine.commit(conn)
            except BaseException:
                with self._suppressed():
                    engine.rollback(conn)
                raise

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """A connection for ONE read statement: the current transaction's, or an autocommit
        statement of its own (no BEGIN / COMMIT round trips)."""
        if self._closed:
            raise errors.StoreError("the store is closed")
        if self._local.conn is not None:
            yield self._local.conn
            return
        with self._engine.connection() as conn:
            yield conn

    def _q(self, conn: Any, sql: str, *params: object) -> Result:
        return self._engine.execute(conn, sql, params)

    def _open_account(
        self, identity: IdentityKeyPair | None, registration_id: int | None
    ) -> tuple[IdentityKeyPair, int]:
        with self._unit() as conn:
            self._engine.lock(conn, self._account, ["account"])
            row = self._q(
                conn,
                "SELECT identity, registration_id FROM accounts WHERE account = $1",
                self._account,
            ).one()
            if row is not None:
                try:
                    stored = nat.parse_row(
                        IdentityKeyPair, self._open("account", "identity", row[0])
                    )
                except errors.InvalidRecord as e:
                    raise errors.InvalidRecord(
                        f"the identity of account {self._account!r} does not decode "
                        "(sealed, and this store has no key?)"
                    ) from e
                if identity is not None and bytes(identity.public_key) != bytes(stored.public_key):
                    raise errors.InvalidArgument(
                        f"account {self._account!r} already has a different identity"
                    )
                if registration_id is not None and registration_id != int(row[1]):
                    raise errors.InvalidArgument(
                        f"account {self._account!r} already has registration id {row[1]}"
                    )
                return stored, int(row[1])
            ikp = identity if identity is not None else IdentityKeyPair.generate()
            rid = (
                registration_id
                if registration_id is not None
                else secrets.randbelow(_MAX_REGISTRATION_ID) + 1
            )
            self._q(
                conn,
                "INSERT INTO accounts (account, identity, registration_id, created_at) "
                "VALUES ($1, $2, $3, $4)",
                self._account,
                self._seal("account", "identity", bytes(ikp)),
                rid,
                _now_ms(),
            )
            return ikp, rid

    # -- life cycle -------------------------------------------------------------------

    @property
    def account(self) -> str:
        """The local account this store object serves (one database holds many)."""
        return self._account

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def close(self) -> None:
        """Closes the store (and the connection it opened itself; not one it was given)."""
        if self._closed:
            return
        self._closed = True
        with self._errors():
            self._engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} account={self._account!r}{state}>"

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction of the store and the application together: cipher operations on this
        store in the block (on this thread) and statements on ``tx.connection`` commit when the
        block ends, and roll back if it raises. A failed cipher operation inside only undoes
        itself (a savepoint). Nested blocks are savepoints."""
        unit: AbstractContextManager[Any] = self._unit()
        with self._errors():
            conn = unit.__enter__()
        try:
            yield Transaction(self, conn)
        except BaseException:
            exc_type, exc, tb = sys.exc_info()
            with self._errors():
                unit.__exit__(exc_type, exc, tb)
            raise
        with self._errors():
            unit.__exit__(None, None, None)

    # -- the unit of work -------------------------------------------------------------

    def _execute(self, op: nat.OperationLike) -> Any:
        """Runs a native ``Operation``: lock, load, plan (native), apply; again on a lost
        race. Returns what the operation returns."""
        try:
            return self._run_with_retries(op)
        except errors.TextSecureError:
            raise
        except self._engine.driver_errors as e:
            raise _store_error(self._engine, e) from e

    def _run_with_retries(self, op: nat.OperationLike) -> Any:
        """One run of ``op`` in a unit of its own (its own transaction, or a savepoint of
        the current one), again on a lost race. ``op.needs()`` is read once: it is the same
        for every run."""
        reads = self._reads(op.needs())
        return retry(MAX_ATTEMPTS, lambda: self._attempt(op, reads))

    def _attempt(self, op: nat.OperationLike, reads: _Reads) -> Any:
        if self._closed:
            raise errors.StoreError("the store is closed")
        local = self._local
        if local.conn is not None:
            return self._attempt_nested(local.conn, op, reads)
        with self._engine.connection() as conn:
            local.conn = conn  # what the operation's plan might do on this thread nests
            try:
                return self._attempt_top(conn, op, reads)
            finally:
                local.conn = None

    def _attempt_top(self, conn: Any, op: nat.OperationLike, reads: _Reads) -> Any:
        """One run as a transaction of its own: BEGIN, locks and reads (one round trip on
        PostgreSQL); plan; the writes and, when no row count can still call the commit
        off, the COMMIT (one round trip); else COMMIT after checking the row counts."""
        engine = self._engine
        owed = _Owed(None, False)
        self._local.owed.append(owed)
        ended = False
        try:
            rows = engine.read_unit(
                conn, engine.begin_sql, self._account, reads.lock_keys, reads.sql
            )
            snapshot = self._new_snapshot()
            reads.fill(snapshot, rows)
            changes, result = op.plan(snapshot)
            writes, checked = self._writes(changes)
            # COMMIT with the writes unless a row count may still call for a ROLLBACK (of
            # this run's writes, or of what its plan wrote meanwhile); a lost race found by
            # a single write commits nothing (the write matched no row)
            early = checked == 0 or (len(writes) == 1 and not owed.dirty)
            counts = engine.write_unit(conn, writes, "COMMIT" if early else None)
            ended = early
            _check(counts, checked)
            if not early:
                engine.commit(conn)  # a COMMIT that fails is rolled back below
                ended = True
            return result
        except BaseException:
            if not ended:
                with self._suppressed():
                    engine.rollback(conn)
            raise
        finally:
            self._local.owed.pop()

    def _attempt_nested(self, conn: Any, op: nat.OperationLike, reads: _Reads) -> Any:
        """One run inside the thread's transaction, as a savepoint: taken with the reads
        (PostgreSQL, where a failed statement aborts the transaction), or only when it is
        needed (SQLite): before a write of more than one statement, or before anything
        else writes on this connection while the operation runs (``_settle``). A plan that
        fails, a lost race detected by a single write (it matched no row) and a single
        write that fails (a statement undoes itself) leave nothing to roll back."""
        engine = self._engine
        local = self._local
        local.depth += 1
        name = f"textsecure_{local.depth}"
        owed = _Owed(name, engine.eager_savepoint)
        local.owed.append(owed)
        released = False
        try:
            opener = f"SAVEPOINT {name}" if owed.taken else None
            rows = engine.read_unit(conn, opener, self._account, reads.lock_keys, reads.sql)
            snapshot = self._new_snapshot()
            reads.fill(snapshot, rows)
            changes, result = op.plan(snapshot)
            writes, checked = self._writes(changes)
            if writes:
                if len(local.owed) > 1:
                    self._settle(conn, skip_last=True)  # we write inside the outer operations
                if not owed.taken and len(writes) > 1:
                    engine.savepoint(conn, name)
                    owed.taken = True
            early = owed.taken and (checked == 0 or (len(writes) == 1 and not owed.dirty))
            counts = engine.write_unit(conn, writes, f"RELEASE SAVEPOINT {name}" if early else None)
            released = early
            _check(counts, checked)
            if owed.taken and not released:
                released = True
                engine.release(conn, name)
            return result
        except BaseException:
            if owed.taken and not released:
                with self._suppressed():
                    engine.rollback_to(conn, name)
            raise
        finally:
            local.owed.pop()
            local.depth -= 1

    def _settle(self, conn: Any, *, skip_last: bool = False) -> None:
        """Takes the savepoints the operations running on this thread still owe (they were
        put off until something writes), outermost first: called before anything writes on
        the transaction's connection while an operation runs."""
        owed = self._local.owed
        for entry in owed[:-1] if skip_last else owed:
            entry.dirty = True
            if not entry.taken and entry.name is not None:
                self._engine.savepoint(conn, entry.name)
                entry.taken = True

    def _reads(self, needs: nat.NeedsLike) -> _Reads:
        """What loading ``needs`` takes: the lock keys, the SELECTs (native SQL) and how the
        rows go into the snapshot. Every list of ``needs`` is read once."""
        a = self._account
        q = self._sql
        sessions = needs.sessions
        identities = needs.identities
        prekeys = needs.prekeys
        signed = needs.signed_prekeys
        kyber = needs.kyber_prekeys
        base_keys = needs.base_keys
        sender_keys = needs.sender_keys
        lock_keys = needs.lock_keys
        if (
            len(sessions) == 1
            and len(identities) == 1
            and not prekeys
            and not signed
            and not kyber
            and not base_keys
            and not sender_keys
        ):
            # the common shape (encrypt, decrypt of a SignalMessage): one SELECT
            sql = [
                (q.session_identity, (a, _address_key(sessions[0]), a, _address_key(identities[0])))
            ]
            return _Reads(lock_keys, sql, sessions, identities, (), (), (), (), (), True)
        statements: list[NativeStatement] = []
        statements += [(q.session, (a, _address_key(x))) for x in sessions]
        statements += [(q.identity, (a, _address_key(x))) for x in identities]
        statements += [(q.prekey, (a, id)) for id in prekeys]
        statements += [(q.signed_prekey, (a, id)) for id in signed]
        statements += [(q.kyber_prekey, (a, id)) for id in kyber]
        statements += [(q.base_key, (a, spk_id, bytes(bk))) for spk_id, bk in base_keys]
        statements += [(q.sender_key, (a, _address_key(s), d)) for s, d in sender_keys]
        return _Reads(
            lock_keys,
            statements,
            sessions,
            identities,
            prekeys,
            signed,
            kyber,
            base_keys,
            sender_keys,
            False,
        )

    def _writes(self, changes: nat.ChangeSetLike) -> tuple[list[NativeStatement], int]:
        """The statements that write ``changes`` (native SQL), the ones whose row count must
        be 1 first (a session or sender-key compare-and-swap, a prekey consumed, a base key
        or last-resort use recorded), then the identities (written unconditionally); and
        how many are checked. Every list of ``changes`` is read once."""
        a = self._account
        q = self._sql
        out: list[NativeStatement] = []
        for address, expected, blob in changes.sessions:
            if expected == 0:
                out.append((q.insert_session, (a, _address_key(address), bytes(blob))))
            else:
                out.append(
                    (
                        q.update_session,
                        (bytes(blob), expected + 1, a, _address_key(address), expected),
                    )
                )
        out += [(q.delete_prekey, (a, id)) for id in changes.removed_prekeys]
        out += [(q.delete_kyber_prekey, (a, id)) for id in changes.removed_kyber_prekeys]
        out += [
            (q.insert_last_resort_use, (a, kid, sid, bytes(bk)))
            for kid, sid, bk in changes.kyber_last_resort_uses
        ]
        out += [(q.insert_base_key, (a, sid, bytes(bk))) for sid, bk in changes.base_keys]
        for sender, dist, expected, blob in changes.sender_keys:
            if expected == 0:
                out.append((q.insert_sender_key, (a, _address_key(sender), dist, bytes(blob))))
            else:
                out.append(
                    (
                        q.update_sender_key,
                        (bytes(blob), expected + 1, a, _address_key(sender), dist, expected),
                    )
                )
        checked = len(out)
        identities = changes.identities
        if identities:
            out += [(q.upsert_identity, (a, _address_key(x), bytes(k))) for x, k in identities]
        return out, checked

    def _run(self, conn: Any, op: nat.OperationLike) -> Any:
        """One run of ``op`` in the unit of work the caller holds on ``conn`` (locks, load,
        plan, apply)."""
        reads = self._reads(op.needs())
        self._engine.lock(conn, self._account, list(reads.lock_keys))
        snapshot = self._new_snapshot()
        reads.fill(snapshot, self._engine.read_unit(conn, None, self._account, (), reads.sql))
        changes, result = op.plan(snapshot)
        self._apply(conn, changes)
        return result

    def _load(self, conn: Any, needs: nat.NeedsLike, snapshot: nat.SnapshotLike) -> None:
        """Reads every row ``needs`` names, in one round, into ``snapshot`` (row bytes as
        stored: the snapshot opens sealed ones)."""
        reads = self._reads(needs)
        reads.fill(snapshot, self._engine.read_unit(conn, None, self._account, (), reads.sql))

    def _apply(self, conn: Any, changes: nat.ChangeSetLike) -> None:
        """Writes a change set in one round; raises ``_Conflict`` (and the caller rolls back)
        if any row moved since it was loaded."""
        writes, checked = self._writes(changes)
        _check(self._engine.write_unit(conn, writes, None), checked)

    # -- identity ---------------------------------------------------------------------

    @_guarded
    def identity(self, address: Address) -> IdentityKey | None:
        """The trusted identity of ``address``, or None."""
        key = _address_key(address.canonical())
        with self._read() as conn:
            row = self._q(
                conn,
                "SELECT key FROM identities WHERE account = $1 AND address = $2",
                self._account,
                key,
            ).one()
        if row is None:
            return None
        return nat.parse_row(IdentityKey, self._open("identities", key, row[0]))

    @_guarded
    def trust(self, address: Address, identity_key: PublicKey | Buffer) -> None:
        """Accepts ``identity_key`` for ``address`` (replacing a changed one)."""
        raw = bytes(IdentityKey.from_bytes(bytes(identity_key)))  # validates
        key = _address_key(address.canonical())
        with self._unit() as conn:
            self._engine.lock(conn, self._account, [_session_lock(key)])
            self._q(
                conn,
                "INSERT INTO identities (account, address, key) VALUES ($1, $2, $3) "
                "ON CONFLICT (account, address) DO UPDATE SET key = excluded.key",
                self._account,
                key,
                self._seal("identities", key, raw),
            )

    # -- sessions ---------------------------------------------------------------------

    @_guarded
    def session(self, address: Address) -> SessionRecord | None:
        """The session record with ``address``, or None."""
        key = _address_key(address.canonical())
        with self._read() as conn:
            row = self._q(
                conn,
                "SELECT record FROM sessions WHERE account = $1 AND address = $2",
                self._account,
                key,
            ).one()
        if row is None or row[0] is None:
            return None
        return nat.parse_row(SessionRecord, self._open("sessions", key, row[0]))

    @_guarded
    def save_session(self, address: Address, record: SessionRecord) -> None:
        """Stores ``record`` as the session with ``address`` (its version moves on, so a
        cipher operation that loaded the old one retries)."""
        key = _address_key(address.canonical())
        blob = self._seal("sessions", key, bytes(record))
        with self._unit() as conn:
            self._engine.lock(conn, self._account, [_session_lock(key)])
            self._q(
                conn,
                "INSERT INTO sessions (account, address, version, record) VALUES ($1, $2, 1, $3) "
                "ON CONFLICT (account, address) DO UPDATE "
                "SET record = excluded.record, version = sessions.version + 1",
                self._account,
                key,
                blob,
            )

    @_guarded
    def remove_session(self, address: Address) -> None:
        """Removes the session with ``address``. The row stays as a tombstone (record NULL)
        whose version keeps counting, so a version number is never given to two different
        records and a compare-and-swap planned against the removed one cannot succeed."""
        key = _address_key(address.canonical())
        with self._unit() as conn:
            self._engine.lock(conn, self._account, [_session_lock(key)])
            self._q(
                conn,
                "UPDATE sessions SET record = NULL, version = version + 1 "
                "WHERE account = $1 AND address = $2 AND record IS NOT NULL",
                self._account,
                key,
            )

    @_guarded
    def session_addresses(self) -> list[Address]:
        """Addresses with a stored session, sorted."""
        with self._read() as conn:
            rows = self._q(
                conn,
                "SELECT address FROM sessions WHERE account = $1 AND record IS NOT NULL",
                self._account,
            ).rows
        return sorted(_parse_address(r[0]) for r in rows)

    # -- prekeys ----------------------------------------------------------------------

    @_guarded
    def _store_prekey_rows(self, rows: Sequence[PreKeyRow]) -> None:
        now = _now_ms()
        statements: list[Statement] = []
        for table, id, row, last_resort in rows:
            extra = {"last_resort": last_resort} if table == "kyber_prekeys" else {}
            cols = ["account", "id", "record", "created_at", *extra]
            placeholders = ", ".join(f"${i + 1}" for i in range(len(cols)))
            updates = ", ".join(f"{c} = excluded.{c}" for c in ["record", *extra])
            statements.append(
                (
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({placeholders}) "
                    f"ON CONFLICT (account, id) DO UPDATE SET {updates}",
                    (self._account, id, row, now, *extra.values()),
                )
            )
        with self._unit() as conn:
            self._engine.run_many(conn, statements)

    @_guarded
    def _read_prekey_row(self, table: PreKeyTable, id: int) -> bytes | None:
        with self._read() as conn:
            sql = f"SELECT record FROM {table} WHERE account = $1 AND id = $2"
            row = self._q(conn, sql, self._account, id).one()
        return None if row is None else bytes(row[0])

    @_guarded
    def _delete_prekey_row(self, table: PreKeyTable, id: int) -> None:
        """Deletes the prekey, and with a signed prekey the replay records of the sessions set
        up with it, with a Kyber prekey the record of its last-resort uses."""
        deletes = [f"DELETE FROM {table} WHERE account = $1 AND id = $2"]
        if table == "signed_prekeys":
            deletes.append("DELETE FROM base_keys WHERE account = $1 AND signed_prekey_id = $2")
        elif table == "kyber_prekeys":
            deletes.append(
                "DELETE FROM kyber_last_resort_uses WHERE account = $1 AND kyber_id = $2"
            )
        with self._unit() as conn:
            self._engine.run_many(conn, [(sql, (self._account, id)) for sql in deletes])

    # -- prekey lifecycle -------------------------------------------------------------

    @contextmanager
    def _prekey_unit(self) -> Iterator[Any]:
        with self._unit() as conn:
            self._engine.lock(conn, self._account, [_prekeys.LOCK_KEY])
            yield conn

    @_guarded
    def prekey_counts(self, *, now_ms: int | None = None) -> PreKeyCounts:
        """How many one-time prekeys are stored (confirmed / not), how many signed and
        last-resort keys await confirmation, and the age of the current (newest confirmed)
        signed and last-resort Kyber prekeys."""
        now = _prekeys.check_now(now_ms, _now_ms())
        with self._prekey_unit() as conn:
            return _prekeys.counts(self, conn, now)

    @_guarded
    def generate_prekeys(
        self, count: int = _prekeys.BATCH, *, kyber: bool = True, now_ms: int | None = None
    ) -> PreKeyUpload:
        """Generates ``count`` one-time EC prekeys and (``kyber``) as many one-time Kyber
        prekeys signed by the identity key, stores them unconfirmed and returns their public
        parts to upload. Ids are 24-bit, from the account's counters (wrapping, skipping ids
        still stored)."""
        _prekeys.check_count("count", count, 1, _prekeys.MAX_BATCH)
        now = _prekeys.check_now(now_ms, _now_ms())
        with self._prekey_unit() as conn:
            return _prekeys.generate_one_time(self, conn, count, bool(kyber), now)

    @_guarded
    def refill_prekeys(
        self,
        *,
        server_count: int,
        server_kyber_count: int | None = None,
        batch: int = _prekeys.BATCH,
        threshold: int = _prekeys.REFILL_THRESHOLD,
        kyber: bool = True,
        now_ms: int | None = None,
    ) -> PreKeyUpload | None:
        """A new batch (``generate_prekeys(batch)``) when the server holds fewer than
        ``threshold`` one-time EC prekeys (``server_count``) or Kyber prekeys
        (``server_kyber_count``, when given); else None."""
        _prekeys.check_count("server_count", server_count, 0, 2**63 - 1)
        if server_kyber_count is not None:
            _prekeys.check_count("server_kyber_count", server_kyber_count, 0, 2**63 - 1)
        _prekeys.check_count("threshold", threshold, 0, 2**63 - 1)
        low = server_count < threshold or (
            kyber and server_kyber_count is not None and server_kyber_count < threshold
        )
        if not low:
            return None
        return self.generate_prekeys(batch, kyber=kyber, now_ms=now_ms)

    @_guarded
    def rotate_signed_prekeys(
        self,
        *,
        now_ms: int | None = None,
        interval_ms: int = _prekeys.ROTATION_INTERVAL_MS,
        grace_ms: int = _prekeys.REPLACED_GRACE_MS,
    ) -> PreKeyUpload | None:
        """Generates a new signed prekey and / or last-resort Kyber prekey (unconfirmed) when
        the newest one is missing or ``interval_ms`` old; returns them to upload (None when
        nothing was due). Also deletes signed / last-resort keys replaced ``grace_ms`` ago
        (never the newest confirmed one) and one-time prekeys older than 90 days."""
        now = _prekeys.check_now(now_ms, _now_ms())
        _prekeys.check_count("interval_ms", interval_ms, 0, 2**63 - 1)
        _prekeys.check_count("grace_ms", grace_ms, 0, 2**63 - 1)
        with self._prekey_unit() as conn:
            return _prekeys.rotate(self, conn, now, interval_ms, grace_ms)

    @_guarded
    def confirm_upload(self, upload: PreKeyUpload, *, now_ms: int | None = None) -> None:
        """Marks ``upload``'s keys as taken by the server. A confirmed signed / last-resort
        key replaces the older ones: their 30-day grace period starts now."""
        if not isinstance(upload, PreKeyUpload):
            raise TypeError("upload must be a PreKeyUpload")
        now = _prekeys.check_now(now_ms, _now_ms())
        with self._prekey_unit() as conn:
            _prekeys.confirm(self, conn, upload, now)

    @_guarded
    def current_bundle(
        self, device_id: int, *, kyber: bool = True, now_ms: int | None = None
    ) -> PreKeyBundle:
        """The bundle a server would hand out: the newest confirmed signed prekey and
        last-resort Kyber prekey, the oldest confirmed one-time EC and Kyber prekeys (the
        last-resort key when no one-time Kyber key is confirmed); nothing unconfirmed. A
        signed or last-resort key is never older than 14 days here: when there is none that
        young, a new one is generated and confirmed at once (the caller hands the bundle out
        itself, as a server would). ``kyber=False``: an X3DH bundle. One-time keys are not
        consumed here, only when a session uses them."""
        now = _prekeys.check_now(now_ms, _now_ms())
        with self._prekey_unit() as conn:
            return _prekeys.bundle(
                self, conn, device_id, now, bool(kyber), _prekeys.MAX_BUNDLE_KEY_AGE_MS
            )

    # -- sender keys ------------------------------------------------------------------

    @_guarded
    def sender_key(
        self, sender: Address, distribution_id: uuid.UUID | str
    ) -> SenderKeyRecord | None:
        """The sender-key record of (``sender``, ``distribution_id``), or None. A
        ``uuid.UUID`` names a current-format distribution, a ``str`` a legacy group id."""
        addr = _address_key(sender.canonical())
        dist = distribution_key(distribution_id)
        with self._read() as conn:
            row = self._q(
                conn,
                "SELECT record FROM sender_keys "
                "WHERE account = $1 AND sender = $2 AND distribution = $3",
                self._account,
                addr,
                dist,
            ).one()
        if row is None or row[0] is None:
            return None
        return nat.parse_row(SenderKeyRecord, self._open("sender_keys", f"{addr}/{dist}", row[0]))

    @_guarded
    def save_sender_key(
        self, sender: Address, distribution_id: uuid.UUID | str, record: SenderKeyRecord
    ) -> None:
        """Stores the sender-key record of (``sender``, ``distribution_id``): a ``uuid.UUID`` for
        the current format, a ``str`` group id for the legacy one."""
        addr = _address_key(sender.canonical())
        dist = distribution_key(distribution_id)
        blob = self._seal("sender_keys", f"{addr}/{dist}", bytes(record))
        with self._unit() as conn:
            self._engine.lock(conn, self._account, [_sender_key_lock(addr, dist)])
            self._q(
                conn,
                "INSERT INTO sender_keys (account, sender, distribution, version, record) "
                "VALUES ($1, $2, $3, 1, $4) ON CONFLICT (account, sender, distribution) "
                "DO UPDATE SET record = excluded.record, version = sender_keys.version + 1",
                self._account,
                addr,
                dist,
                blob,
            )

    @_guarded
    def remove_sender_key(self, sender: Address, distribution_id: uuid.UUID | str) -> None:
        """Removes a sender-key record, leaving a tombstone (as ``remove_session``)."""
        addr = _address_key(sender.canonical())
        dist = distribution_key(distribution_id)
        with self._unit() as conn:
            self._engine.lock(conn, self._account, [_sender_key_lock(addr, dist)])
            self._q(
                conn,
                "UPDATE sender_keys SET record = NULL, version = version + 1 WHERE account = $1 "
                "AND sender = $2 AND distribution = $3 AND record IS NOT NULL",
                self._account,
                addr,
                dist,
            )

    # -- exactly-once inbox -----------------------------------------------------------

    @_guarded
    def inbox_decrypt(
        self,
        address: Address,
        message: Any,
        *,
        pq_ratchet: Any = None,
        local_address: Address | None = None,
    ) -> InboxItem:
        """Decrypts ``message`` from ``address`` exactly once: the ratchet changes and the
        plaintext are committed together; a redelivered envelope returns the stored plaintext
        without any crypto until ``inbox_ack``, after which it raises ``DuplicateMessage``."""
        addr = address.canonical()
        digest = inbox_hash(addr, message)
        row_key = digest.hex()

        op = Operation.decrypt(addr, message, pq_ratchet=pq_ratchet, local_address=local_address)
        # The session's locks first, the envelope's last: the order in which a transaction
        # that already decrypted on this session holds them, so a redelivery racing it waits
        # instead of deadlocking (found by tests/stress on PostgreSQL).
        lock_keys = [*op.needs().lock_keys, "inbox/" + row_key]

        def once() -> InboxItem:
            with self._unit() as conn:
                self._engine.lock(conn, self._account, lock_keys)
                row = self._q(
                    conn,
                    "SELECT plaintext, received_at FROM inbox WHERE account = $1 AND hash = $2",
                    self._account,
                    digest,
                ).one()
                if row is not None:
                    if row[0] is None:
                        raise errors.DuplicateMessage(
                            "this envelope was already processed and acknowledged"
                        )
                    return InboxItem(
                        digest, self._open("inbox", row_key, row[0]), addr, int(row[1])
                    )
                plaintext = bytes(self._run_with_retries(op))
                now = _now_ms()
                inserted = self._q(
                    conn,
                    "INSERT INTO inbox (account, hash, address, plaintext, received_at) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    self._account,
                    digest,
                    _address_key(addr),
                    self._seal("inbox", row_key, plaintext),
                    now,
                )
                if inserted.rowcount != 1:
                    raise _Conflict
                return InboxItem(digest, plaintext, addr, now)

        return retry(MAX_ATTEMPTS, once, "inbox_decrypt")

    @_guarded
    def inbox_pending(self) -> list[InboxItem]:
        """Decrypted envelopes not acknowledged yet, oldest first."""
        with self._read() as conn:
            rows = self._q(
                conn,
                "SELECT hash, plaintext, address, received_at FROM inbox "
                "WHERE account = $1 AND acked_at IS NULL ORDER BY received_at, hash",
                self._account,
            ).rows
        return [
            InboxItem(
                bytes(h),
                self._open("inbox", bytes(h).hex(), p),
                _parse_address(a),
                int(t),
            )
            for h, p, a, t in rows
        ]

    @_guarded
    def inbox_ack(self, hash: bytes) -> bool:
        """Acknowledges a processed envelope: its plaintext is deleted and a tombstone kept
        (a redelivery then raises ``DuplicateMessage``). Returns whether it was pending. Old
        tombstones are purged at most once an hour on the way."""
        now = _now_ms()
        with self._unit() as conn:
            result = self._q(
                conn,
                "UPDATE inbox SET plaintext = NULL, acked_at = $3 "
                "WHERE account = $1 AND hash = $2 AND acked_at IS NULL",
                self._account,
                bytes(hash),
                now,
            )
            if time.monotonic() - self._last_purge >= _PURGE_INTERVAL_S:
                self._purge(conn, now - INBOX_RETENTION_MS)
                self._last_purge = time.monotonic()
        return result.rowcount == 1

    @_guarded
    def inbox_purge(self, older_than_ms: int = INBOX_RETENTION_MS) -> int:
        """Deletes the tombstones acknowledged more than ``older_than_ms`` ago; returns how
        many."""
        with self._unit() as conn:
            n = self._purge(conn, _now_ms() - older_than_ms)
        self._last_purge = time.monotonic()
        return n

    def _purge(self, conn: Any, before_ms: int) -> int:
        return self._q(
            conn,
            "DELETE FROM inbox WHERE account = $1 AND acked_at IS NOT NULL AND acked_at < $2",
            self._account,
            before_ms,
        ).rowcount

    # -- encryption at rest -----------------------------------------------------------

    @_guarded
    def rotate_key(self, new_key: Buffer | None) -> None:
        """Re-seals every record of this account under ``new_key`` in one transaction (the
        store's current key opens them). ``None`` stores them unsealed."""
        new_sealer = self._make_sealer(new_key) if new_key is not None else None

        def reseal(table: str, row_key: str, blob: bytes) -> bytes:
            data = self._open(table, row_key, blob)
            return data if new_sealer is None else new_sealer.seal(table, row_key, data)

        a = self._account
        with self._unit() as conn:
            row = self._q(conn, "SELECT identity FROM accounts WHERE account = $1", a).one()
            if row is None:
                raise errors.StoreError(f"account {a!r} was deleted")
            writes: list[Statement] = [
                (
                    "UPDATE accounts SET identity = $2 WHERE account = $1",
                    (a, reseal("account", "identity", row[0])),
                )
            ]
            for table, column in (("sessions", "record"), ("identities", "key")):
                for address, blob in self._q(
                    conn,
                    f"SELECT address, {column} FROM {table} "
                    f"WHERE account = $1 AND {column} IS NOT NULL",
                    a,
                ).rows:
                    writes.append(
                        (
                            f"UPDATE {table} SET {column} = $3 WHERE account = $1 AND address = $2",
                            (a, address, reseal(table, address, blob)),
                        )
                    )
            for table in ("prekeys", "signed_prekeys", "kyber_prekeys"):
                for id, blob in self._q(
                    conn, f"SELECT id, record FROM {table} WHERE account = $1", a
                ).rows:
                    writes.append(
                        (
                            f"UPDATE {table} SET record = $3 WHERE account = $1 AND id = $2",
                            (a, id, reseal(table, str(id), blob)),
                        )
                    )
            for sender, dist, blob in self._q(
                conn,
                "SELECT sender, distribution, record FROM sender_keys "
                "WHERE account = $1 AND record IS NOT NULL",
                a,
            ).rows:
                writes.append(
                    (
                        "UPDATE sender_keys SET record = $4 "
                        "WHERE account = $1 AND sender = $2 AND distribution = $3",
                        (a, sender, dist, reseal("sender_keys", f"{sender}/{dist}", blob)),
                    )
                )
            for digest, blob in self._q(
                conn,
                "SELECT hash, plaintext FROM inbox WHERE account = $1 AND plaintext IS NOT NULL",
                a,
            ).rows:
                writes.append(
                    (
                        "UPDATE inbox SET plaintext = $3 WHERE account = $1 AND hash = $2",
                        (a, digest, reseal("inbox", bytes(digest).hex(), blob)),
                    )
                )
            self._engine.run_many(conn, writes)
        self._sealer = new_sealer

    # -- accounts ---------------------------------------------------------------------

    @classmethod
    def _connect(cls, target: Any) -> Engine:
        """The engine on ``target`` (a path, a connection string, a connection or pool)."""
        raise NotImplementedError

    @classmethod
    def list_accounts(cls, target: Any) -> list[str]:
        """The accounts stored in the database at ``target`` (as the constructor takes it)."""
        return cls._in(cls._connect(target), cls._accounts)

    @classmethod
    def delete_account(cls, target: Any, account: str) -> bool:
        """Deletes ``account`` and every record of it; returns whether it existed."""
        return cls._in(cls._connect(target), lambda engine: cls._delete_account(engine, account))

    @staticmethod
    def _in(engine: Engine, run: Callable[[Engine], R]) -> R:
        """``run(engine)`` with the driver's errors translated, then closes ``engine``."""
        try:
            with translate_errors(engine):
                return run(engine)
        finally:
            with suppress(*engine.driver_errors):
                engine.close()

    @classmethod
    def _accounts(cls, engine: Engine) -> list[str]:
        migrate(engine)
        with engine.connection() as conn:
            rows = engine.execute(conn, "SELECT account FROM accounts ORDER BY account").rows
        return [str(r[0]) for r in rows]

    @classmethod
    def _delete_account(cls, engine: Engine, account: str) -> bool:
        migrate(engine)
        with engine.connection() as conn:
            engine.begin(conn)
            try:
                n = engine.execute(
                    conn, "DELETE FROM accounts WHERE account = $1", (account,)
                ).rowcount
            except BaseException:
                with suppress(*engine.driver_errors):
                    engine.rollback(conn)
                raise
            engine.commit(conn)
        return n == 1


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """Turns the driver's exceptions into ``errors.StoreError`` (the original as
    ``__cause__``); textsecure's own exceptions pass through."""
    try:
        yield
    except errors.TextSecureError:
        raise
    except engine.driver_errors as e:
        raise _store_error(engine, e) from e
