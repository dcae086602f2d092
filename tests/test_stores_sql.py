"""Durable stores, SQL side: migrations, accounts, record round trips, the unit of work's load
and apply (versions, UNIQUE replay records), transactions shared with the application,
encryption at rest, key rotation, error translation. Every test runs on a real SQLite file and
on a real PostgreSQL database; the native operation objects are stood in for by small
duck-typed classes carrying real record bytes."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import textsecure as ts
from textsecure import errors
from textsecure.stores import LATEST_VERSION, DurableStore, PostgresStore, SQLiteStore
from textsecure.stores import _base as base
from textsecure.stores._sql import (
    MIGRATIONS,
    Engine,
    PostgresEngine,
    SQLiteEngine,
    Step,
    migrate,
)

KEY1 = bytes(range(32))
KEY2 = bytes(range(1, 33))
TABLES = (
    "sessions",
    "identities",
    "prekeys",
    "signed_prekeys",
    "kyber_prekeys",
    "base_keys",
    "kyber_last_resort_uses",
    "sender_keys",
    "inbox",
)


# ---------------------------------------------------------------------------------------
# Stand-ins for the native Needs / ChangeSet / Snapshot / Operation
# ---------------------------------------------------------------------------------------


@dataclass
class Needs:
    sessions: list[ts.Address] = field(default_factory=list)
    identities: list[ts.Address] = field(default_factory=list)
    prekeys: list[int] = field(default_factory=list)
    signed_prekeys: list[int] = field(default_factory=list)
    kyber_prekeys: list[int] = field(default_factory=list)
    base_keys: list[tuple[int, bytes]] = field(default_factory=list)
    sender_keys: list[tuple[ts.Address, str]] = field(default_factory=list)
    lock_keys: list[str] = field(default_factory=list)


@dataclass
class ChangeSet:
    sessions: list[tuple[ts.Address, int, bytes]] = field(default_factory=list)
    identities: list[tuple[ts.Address, bytes]] = field(default_factory=list)
    removed_prekeys: list[int] = field(default_factory=list)
    removed_kyber_prekeys: list[int] = field(default_factory=list)
    kyber_last_resort_uses: list[tuple[int, int, bytes]] = field(default_factory=list)
    base_keys: list[tuple[int, bytes]] = field(default_factory=list)
    sender_keys: list[tuple[ts.Address, str, int, bytes]] = field(default_factory=list)


class Recorder:
    """A snapshot that records what the store loaded into it."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[Any, ...]]] = {}

    def _add(self, kind: str, *args: Any) -> None:
        self.calls.setdefault(kind, []).append(args)

    def add_session(self, address: ts.Address, record: bytes | None, version: int) -> None:
        self._add("session", address, record, version)

    def add_identity(self, address: ts.Address, key: bytes | None) -> None:
        self._add("identity", address, key)

    def add_prekey(self, id: int, record: bytes | None) -> None:
        self._add("prekey", id, record)

    def add_signed_prekey(self, id: int, record: bytes | None) -> None:
        self._add("signed_prekey", id, record)

    def add_kyber_prekey(self, id: int, record: bytes | None, last_resort: bool) -> None:
        self._add("kyber_prekey", id, record, last_resort)

    def add_base_key(self, signed_prekey_id: int, base_key: bytes, seen: bool) -> None:
        self._add("base_key", signed_prekey_id, base_key, seen)

    def add_sender_key(
        self, sender: ts.Address, distribution: str, record: bytes | None, version: int
    ) -> None:
        self._add("sender_key", sender, distribution, record, version)


class FakeOp:
    """An operation: fixed needs; ``plan`` is a test-provided function of the attempt."""

    def __init__(self, needs: Needs, plan: Callable[[int, Recorder], ChangeSet]) -> None:
        self._needs = needs
        self._plan = plan
        self.attempts = 0

    def needs(self) -> Needs:
        return self._needs

    def plan(self, snapshot: Any, /) -> tuple[ChangeSet, Any]:
        self.attempts += 1
        return self._plan(self.attempts, snapshot), f"result {self.attempts}"


def _mixin(cls: type[DurableStore]) -> Any:
    class Store(cls):  # type: ignore[valid-type, misc]
        def _new_snapshot(self) -> Any:
            return Recorder()

    Store.__name__ = cls.__name__
    return Store


RecSQLiteStore = _mixin(SQLiteStore)
RecPostgresStore = _mixin(PostgresStore)


# ---------------------------------------------------------------------------------------
# Fixtures: one database per test, on each engine
# ---------------------------------------------------------------------------------------


def _fresh_pg_database(request: pytest.FixtureRequest) -> str:
    dsn: str = request.getfixturevalue("postgres_db")
    return dsn


@dataclass
class Db:
    """One fresh database on one engine: opens stores, engines and raw connections on it."""

    kind: str
    target: str
    opened: list[DurableStore] = field(default_factory=list)

    def store(self, **kw: Any) -> DurableStore:
        cls: Any = RecSQLiteStore if self.kind == "sqlite" else RecPostgresStore
        s: DurableStore = cls(self.target, **kw)
        self.opened.append(s)
        return s

    def real_store(self, **kw: Any) -> DurableStore:
        """A store with the native snapshot (cipher tests)."""
        s: DurableStore = (
            SQLiteStore(self.target, **kw)
            if self.kind == "sqlite"
            else PostgresStore(self.target, **kw)
        )
        self.opened.append(s)
        return s

    def engine(self) -> Engine:
        return SQLiteEngine(self.target) if self.kind == "sqlite" else PostgresEngine(self.target)

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        engine = self.engine()
        try:
            with engine.connection() as conn:
                return engine.execute(conn, sql, params).rows
        finally:
            engine.close()

    def close(self) -> None:
        for s in self.opened:
            s.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        d = Db("sqlite", str(tmp_path / "store.db"))
    else:
        d = Db("postgres", _fresh_pg_database(request))
    yield d
    d.close()


# ---------------------------------------------------------------------------------------
# Records to store
# ---------------------------------------------------------------------------------------


def _session_record() -> ts.SessionRecord:
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
    bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=1)
    ts.SessionCipher(alice, ts.Address("bob", 1)).process_bundle(bundle)
    record = alice.session(ts.Address("bob", 1))
    assert record is not None
    return record


def _sender_key_record() -> ts.SenderKeyRecord:
    m = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    dist = uuid.uuid4()
    ts.GroupCipher(m, dist).create_distribution(ts.Address("me", 1))
    record = m.sender_key(ts.Address("me", 1), dist)
    assert record is not None
    return record


SESSION = _session_record()
SENDER_KEY = _sender_key_record()
ALICE = ts.Address("alice", 1)
BOB = ts.Address("bob.example", 2)


def _fill(store: DurableStore) -> dict[str, bytes]:
    """Stores one record of every kind; returns their plaintext bytes."""
    identity = ts.IdentityKeyPair.generate()
    pk = ts.PreKeyRecord.generate(11)
    spk = ts.SignedPreKeyRecord.generate(12, identity)
    kpk = ts.KyberPreKeyRecord.generate(13, identity)
    remote = ts.IdentityKeyPair.generate().public_key
    store.save_prekey(pk)
    store.save_signed_prekey(spk)
    store.save_kyber_prekey(kpk, last_resort=True)
    store.save_session(ALICE, SESSION)
    store.trust(ALICE, remote)
    store.save_sender_key(BOB, uuid.UUID(int=5), SENDER_KEY)
    store.save_sender_key(BOB, "legacy-group", SENDER_KEY)
    return {
        "prekey": bytes(pk),
        "signed_prekey": bytes(spk),
        "kyber_prekey": bytes(kpk),
        "session": bytes(SESSION),
        "identity": bytes(remote),
        "sender_key": bytes(SENDER_KEY),
        "account_identity": bytes(store.identity_key_pair),
    }


def _count(db: Db, table: str, account: str) -> int:
    return int(db.query(f"SELECT COUNT(*) FROM {table} WHERE account = $1", account)[0][0])


# ---------------------------------------------------------------------------------------
# Migrations
# ---------------------------------------------------------------------------------------


def test_blank_database_goes_to_latest_and_reopens(db: Db) -> None:
    s = db.store()
    assert db.query("SELECT version FROM schema_version") == [(LATEST_VERSION,)]
    for table in (*TABLES, "accounts"):
        assert db.query(f"SELECT COUNT(*) FROM {table}")[0][0] == (table == "accounts")
    s.save_prekey(ts.PreKeyRecord.generate(1))
    s.close()
    again = db.store()
    assert db.query("SELECT version FROM schema_version") == [(LATEST_VERSION,)]
    assert again.load_prekey(1) is not None
    assert again.identity_key_pair.public_key == s.identity_key_pair.public_key


def test_upgrade_step_runs_once_in_its_own_transaction(db: Db) -> None:
    db.store().close()
    extra: list[list[Step]] = [*MIGRATIONS, ["CREATE TABLE extra (x INTEGER)"]]
    for _ in range(2):
        engine = db.engine()
        try:
            assert migrate(engine, extra) == LATEST_VERSION + 1
        finally:
            engine.close()
    assert db.query("SELECT version FROM schema_version") == [(LATEST_VERSION + 1,)]
    # a failing step leaves the database at the version before it
    broken: list[list[Step]] = [
        *extra,
        ["CREATE TABLE good (x INTEGER)", "CREATE TABLE extra (x INTEGER)"],
    ]
    engine = db.engine()
    with pytest.raises(engine.driver_errors):
        migrate(engine, broken)
    engine.close()
    assert db.query("SELECT version FROM schema_version") == [(LATEST_VERSION + 1,)]
    engine = db.engine()
    with engine.connection() as conn:
        assert not engine.has_table(conn, "good")
    engine.close()


def test_version_1_database_is_upgraded_in_place(db: Db) -> None:
    engine = db.engine()
    try:
        assert migrate(engine, MIGRATIONS[:1]) == 1
    finally:
        engine.close()
    ikp = ts.IdentityKeyPair.generate()
    remote = bytes(ts.IdentityKeyPair.generate().public_key)
    pk = ts.PreKeyRecord.generate(11)
    spk = ts.SignedPreKeyRecord.generate(12, ikp)
    inserts: list[tuple[str, tuple[object, ...]]] = [
        ("INSERT INTO accounts VALUES ('v1', $1, 42, 5)", (bytes(ikp),)),
        ("INSERT INTO sessions VALUES ('v1', $1, 7, $2)", (str(ALICE), bytes(SESSION))),
        ("INSERT INTO identities VALUES ('v1', $1, $2)", (str(ALICE), remote)),
        ("INSERT INTO prekeys VALUES ('v1', 11, $1, 5, TRUE)", (bytes(pk),)),
        ("INSERT INTO signed_prekeys VALUES ('v1', 12, $1, 5, TRUE, NULL)", (bytes(spk),)),
        (
            "INSERT INTO sender_keys VALUES ('v1', $1, 'legacy:g', 3, $2)",
            (str(BOB), bytes(SENDER_KEY)),
        ),
        ("INSERT INTO base_keys VALUES ('v1', 12, $1)", (b"base",)),
    ]
    for sql, params in inserts:
        db.query(sql, *params)
    before = _state(db)

    s = db.store(account="v1")
    assert db.query("SELECT version FROM schema_version") == [(LATEST_VERSION,)]
    assert LATEST_VERSION == 2
    assert _state(db) == before  # every row as it was
    assert bytes(s.identity_key_pair) == bytes(ikp) and s.registration_id == 42
    session = s.session(ALICE)
    assert session is not None and bytes(session) == bytes(SESSION)
    sender_key = s.sender_key(BOB, "g")
    assert sender_key is not None and bytes(sender_key) == bytes(SENDER_KEY)
    assert s.identity(ALICE) == ts.IdentityKey.from_bytes(remote)
    loaded_pk, loaded_spk = s.load_prekey(11), s.load_signed_prekey(12)
    assert loaded_pk is not None and bytes(loaded_pk) == bytes(pk)
    assert loaded_spk is not None and bytes(loaded_spk) == bytes(spk)
    # the upgraded tables take tombstones, keep their keys and versions
    s.remove_session(ALICE)
    s.remove_sender_key(BOB, "g")
    assert db.query("SELECT version, record FROM sessions") == [(8, None)]
    assert db.query("SELECT version, record FROM sender_keys") == [(4, None)]
    s.save_session(ALICE, SESSION)
    s.save_session(ALICE, SESSION)
    assert db.query("SELECT address, version FROM sessions") == [(str(ALICE), 10)]
    other = db.store(account="other")
    other.save_session(ALICE, SESSION)
    assert db.query("SELECT COUNT(*) FROM sessions")[0][0] == 2
    # and still cascade from their account
    lister = SQLiteStore if db.kind == "sqlite" else PostgresStore
    assert lister.delete_account(db.target, "v1") is True
    for table in (*TABLES, "prekey_ids"):
        assert _count(db, table, "v1") == 0


def _dump(db: Db) -> list[Any]:
    return [db.query(f"SELECT * FROM {t} ORDER BY 1, 2") for t in ("accounts", "prekeys")]


def test_newer_schema_is_refused_and_untouched(db: Db) -> None:
    s = db.store()
    s.save_prekey(ts.PreKeyRecord.generate(3))
    s.close()
    db.query("UPDATE schema_version SET version = $1", LATEST_VERSION + 1)
    before = _dump(db)
    file_before = Path(db.target).read_bytes() if db.kind == "sqlite" else b""
    with pytest.raises(errors.StoreError, match="newer"):
        db.store()
    with pytest.raises(errors.StoreError, match="newer"):
        db.store(account="other")
    assert _dump(db) == before
    assert db.query("SELECT version FROM schema_version") == [(LATEST_VERSION + 1,)]
    if db.kind == "sqlite":
        assert Path(db.target).read_bytes() == file_before


def test_concurrent_first_opens(db: Db) -> None:
    failures: list[BaseException] = []
    barrier = threading.Barrier(6)

    def open_one(i: int) -> None:
        try:
            barrier.wait()
            cls = SQLiteStore if db.kind == "sqlite" else PostgresStore
            with cls(db.target, account=f"acct{i % 3}") as s:
                s.save_prekey(ts.PreKeyRecord.generate(i))
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert db.query("SELECT version FROM schema_version") == [(LATEST_VERSION,)]
    assert db.query("SELECT account FROM accounts ORDER BY account") == [
        ("acct0",),
        ("acct1",),
        ("acct2",),
    ]
    assert db.query("SELECT COUNT(*) FROM prekeys")[0][0] == 6


def test_sqlite_pragmas(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "p.db") as s:
        raw = s._engine.raw
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert raw.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert raw.execute("PRAGMA busy_timeout").fetchone() == (30000,)
        assert raw.isolation_level is None


# ---------------------------------------------------------------------------------------
# Accounts and identity
# ---------------------------------------------------------------------------------------


def test_account_identity_stored_then_loaded(db: Db) -> None:
    ikp = ts.IdentityKeyPair.generate()
    s = db.store(account="a", identity=ikp, registration_id=1234)
    assert s.account == "a" and s.registration_id == 1234
    assert bytes(s.identity_key_pair) == bytes(ikp)
    s.close()
    again = db.store(account="a")
    assert bytes(again.identity_key_pair) == bytes(ikp) and again.registration_id == 1234
    assert bytes(db.store(account="a", identity=ikp).identity_key_pair) == bytes(ikp)
    with pytest.raises(errors.InvalidArgument):
        db.store(account="a", identity=ts.IdentityKeyPair.generate())
    with pytest.raises(errors.InvalidArgument):
        db.store(account="a", registration_id=99)
    generated = db.store(account="b")
    assert 1 <= generated.registration_id <= 16380
    assert generated.identity_key_pair.public_key != ikp.public_key


def test_accounts_are_isolated_and_delete_cascades(db: Db) -> None:
    a = db.store(account="a")
    b = db.store(account="b")
    _fill(a)
    a.save_prekey(ts.PreKeyRecord.generate(1))
    assert b.load_prekey(1) is None and b.load_prekey(11) is None
    assert b.session(ALICE) is None and b.identity(ALICE) is None
    assert b.sender_key(BOB, uuid.UUID(int=5)) is None
    assert b.session_addresses() == []
    _fill(b)
    b.remove_prekey(11)
    assert a.load_prekey(11) is not None
    assert a.session_addresses() == [ALICE]
    _apply(a, ChangeSet(base_keys=[(12, b"\x05" * 33)], kyber_last_resort_uses=[(13, 12, b"k")]))
    assert _count(db, "base_keys", "a") == 1

    lister = SQLiteStore if db.kind == "sqlite" else PostgresStore
    assert lister.list_accounts(db.target) == ["a", "b"]
    assert lister.delete_account(db.target, "a") is True
    assert lister.delete_account(db.target, "a") is False
    assert lister.list_accounts(db.target) == ["b"]
    for table in TABLES:
        assert _count(db, table, "a") == 0
    assert _count(db, "signed_prekeys", "b") == 1 and b.session(ALICE) is not None


# ---------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, KEY1], ids=["plain", "sealed"])
def test_round_trips(db: Db, key: bytes | None) -> None:
    s = db.store(key=key)
    records = _fill(s)
    s.close()
    s = db.store(key=key)
    pk, spk, kpk = s.load_prekey(11), s.load_signed_prekey(12), s.load_kyber_prekey(13)
    assert pk is not None and bytes(pk) == records["prekey"]
    assert spk is not None and bytes(spk) == records["signed_prekey"]
    assert kpk is not None and bytes(kpk) == records["kyber_prekey"]
    session = s.session(ALICE)
    assert session is not None and bytes(session) == records["session"]
    identity = s.identity(ALICE)
    assert identity is not None and bytes(identity) == records["identity"]
    for dist in (uuid.UUID(int=5), "legacy-group"):
        sk = s.sender_key(BOB, dist)
        assert sk is not None and bytes(sk) == records["sender_key"]
    assert s.sender_key(BOB, uuid.UUID(int=6)) is None
    assert s.sender_key(BOB, "legacy-other") is None
    assert db.query("SELECT last_resort FROM kyber_prekeys")[0][0] in (True, 1)
    assert s.session_addresses() == [ALICE]
    s.save_session(BOB, SESSION)
    s.save_session(ts.Address("a", 3), SESSION)
    assert s.session_addresses() == sorted([ALICE, BOB, ts.Address("a", 3)])
    # removals
    s.remove_prekey(11)
    s.remove_signed_prekey(12)
    s.remove_kyber_prekey(13)
    s.remove_session(ALICE)
    s.remove_sender_key(BOB, uuid.UUID(int=5))
    assert s.load_prekey(11) is None and s.load_signed_prekey(12) is None
    assert s.load_kyber_prekey(13) is None and s.session(ALICE) is None
    assert s.sender_key(BOB, uuid.UUID(int=5)) is None
    assert s.sender_key(BOB, "legacy-group") is not None
    # trust replaces
    new = ts.IdentityKeyPair.generate().public_key
    s.trust(ALICE, bytes(new))
    assert s.identity(ALICE) == new
    with pytest.raises(errors.InvalidKey):
        s.trust(ALICE, b"\x05" + b"\0" * 10)


def test_save_bumps_versions(db: Db) -> None:
    s = db.store()
    s.save_session(ALICE, SESSION)
    s.save_session(ALICE, SESSION)
    s.save_sender_key(BOB, "g", SENDER_KEY)
    assert db.query("SELECT version FROM sessions") == [(2,)]
    assert db.query("SELECT version, distribution FROM sender_keys") == [(1, "legacy:g")]


def _session_version(db: Db, address: ts.Address = ALICE) -> int:
    return int(db.query("SELECT version FROM sessions WHERE address = $1", str(address))[0][0])


def test_removal_is_a_tombstone_and_versions_only_grow(db: Db) -> None:
    s = db.store()
    s.save_session(ALICE, SESSION)
    s.save_session(ALICE, SESSION)
    s.save_sender_key(BOB, "g", SENDER_KEY)
    s.remove_session(ALICE)
    s.remove_sender_key(BOB, "g")
    assert db.query("SELECT version, record FROM sessions") == [(3, None)]
    assert db.query("SELECT version, record FROM sender_keys") == [(2, None)]
    assert s.session(ALICE) is None and s.session_addresses() == []
    assert s.sender_key(BOB, "g") is None
    s.remove_session(ALICE)  # removing nothing changes nothing
    assert _session_version(db) == 3
    s.save_session(ALICE, SESSION)
    s.save_sender_key(BOB, "g", SENDER_KEY)
    assert _session_version(db) == 4  # strictly higher than any version before
    assert db.query("SELECT version FROM sender_keys") == [(3,)]
    assert s.session_addresses() == [ALICE] and s.session(ALICE) is not None
    # a tombstone is loaded as an absent record at its version
    s.remove_session(ALICE)
    snap = _load(s, Needs(sessions=[ALICE], sender_keys=[(BOB, "legacy:g")]))
    assert snap.calls["session"] == [(ALICE, None, 5)]
    assert snap.calls["sender_key"] == [(BOB, "legacy:g", bytes(SENDER_KEY), 3)]
    # a plan made against the tombstone updates it; one made against "no row" conflicts
    with pytest.raises(base._Conflict):
        _apply(s, ChangeSet(sessions=[(ALICE, 0, bytes(SESSION))]))
    _apply(s, ChangeSet(sessions=[(ALICE, 5, bytes(SESSION))]))
    assert _session_version(db) == 6 and s.session(ALICE) is not None


def test_tombstones_survive_key_rotation(db: Db) -> None:
    s = db.store(key=KEY1)
    s.save_session(ALICE, SESSION)
    s.save_session(BOB, SESSION)
    s.save_sender_key(BOB, "g", SENDER_KEY)
    s.remove_session(ALICE)
    s.remove_sender_key(BOB, "g")
    s.rotate_key(KEY2)
    s.close()
    s = db.store(key=KEY2)
    assert s.session(ALICE) is None and s.sender_key(BOB, "g") is None
    assert s.session_addresses() == [BOB]
    assert db.query("SELECT version FROM sessions ORDER BY address") == [(2,), (1,)]


def test_stale_plan_against_a_removed_and_recreated_session_conflicts(db: Db) -> None:
    s = db.store()
    s.save_session(ALICE, SESSION)
    s.save_session(ALICE, SESSION)
    s.save_sender_key(BOB, "g", SENDER_KEY)
    s.save_sender_key(BOB, "g", SENDER_KEY)
    # a cipher operation loaded version 2 of both, then others removed and re-created them
    # and moved them on by as many saves as before
    stale_session = ChangeSet(sessions=[(ALICE, 2, b"stale")])
    stale_sender_key = ChangeSet(sender_keys=[(BOB, "legacy:g", 2, b"stale")])
    s.remove_session(ALICE)
    s.remove_sender_key(BOB, "g")
    for _ in range(2):
        s.save_session(ALICE, SESSION)
        s.save_sender_key(BOB, "g", SENDER_KEY)
    before = _state(db)
    for stale in (stale_session, stale_sender_key):
        with pytest.raises(base._Conflict):
            _apply(s, stale)
    assert _state(db) == before
    # the same through the unit of work: the stale plan is made again from fresh rows
    seen: list[int] = []

    def plan(attempt: int, snap: Recorder) -> ChangeSet:
        version = snap.calls["session"][0][2]
        seen.append(version)
        return ChangeSet(sessions=[(ALICE, 2 if attempt == 1 else version, b"planned")])

    op = FakeOp(Needs(sessions=[ALICE], lock_keys=["session/alice.1"]), plan)
    s._execute(op)
    assert op.attempts == 2 and seen == [5, 5]
    assert db.query("SELECT version, record FROM sessions") == [(6, b"planned")]


def test_direct_writers_take_the_cipher_operations_locks(postgres_db: str) -> None:
    """On PostgreSQL, save/remove/trust of a session or sender key wait for the advisory lock
    a cipher operation on the same key holds (the key spelled as ``Needs.lock_keys`` does)."""
    import psycopg

    s: Any = RecPostgresStore(postgres_db, account="acct")
    dist = uuid.UUID(int=7)
    remote = ts.IdentityKeyPair.generate().public_key
    writers: list[tuple[str, Callable[[], None]]] = [
        ("session/alice.1", lambda: s.save_session(ALICE, SESSION)),
        ("session/alice.1", lambda: s.remove_session(ALICE)),
        ("session/alice.1", lambda: s.trust(ALICE, remote)),
        (f"sender_key/bob.example.2/{dist}", lambda: s.save_sender_key(BOB, dist, SENDER_KEY)),
        (f"sender_key/bob.example.2/{dist}", lambda: s.remove_sender_key(BOB, dist)),
        ("sender_key/bob.example.2/legacy:g", lambda: s.save_sender_key(BOB, "g", SENDER_KEY)),
    ]
    holder = psycopg.connect(postgres_db, autocommit=True)
    try:
        for lock_key, write in writers:
            holder.execute("BEGIN")
            PostgresEngine.lock(s._engine, holder, "acct", [lock_key])
            done = threading.Event()

            def run(write: Callable[[], None] = write, done: threading.Event = done) -> None:
                write()
                done.set()

            t = threading.Thread(target=run)
            t.start()
            assert not done.wait(0.3), lock_key  # waits for the lock
            holder.execute("COMMIT")
            assert done.wait(10), lock_key
            t.join()
    finally:
        holder.close()
        s.close()


def test_new_bundle(db: Db) -> None:
    s = db.store(registration_id=77)
    bundle = s.new_bundle(5, prekey_id=1, signed_prekey_id=2, kyber_last_resort=True)
    assert bundle.registration_id == 77 and bundle.device_id == 5
    assert bundle.identity_key == s.identity_key_pair.public_key
    assert bundle.prekey_id == 1 and bundle.signed_prekey_id == 2 and bundle.kyber_prekey_id == 2
    spk = s.load_signed_prekey(2)
    pk = s.load_prekey(1)
    kpk = s.load_kyber_prekey(2)
    assert spk is not None and spk.public_key == bundle.signed_prekey_public
    assert pk is not None and pk.public_key == bundle.prekey_public
    assert kpk is not None and kpk.public_key == bundle.kyber_prekey_public
    assert db.query("SELECT last_resort FROM kyber_prekeys")[0][0] in (True, 1)
    v3 = s.new_bundle(5, signed_prekey_id=3, one_time=False, kyber=False)
    assert v3.prekey_id is None and v3.kyber_prekey_id is None
    with pytest.raises(errors.InvalidArgument):
        s.new_bundle(5, signed_prekey_id=4)


# ---------------------------------------------------------------------------------------
# The unit of work: load and apply
# ---------------------------------------------------------------------------------------


def _load(store: DurableStore, needs: Needs) -> Recorder:
    snap = Recorder()
    with store._unit() as conn:
        store._load(conn, needs, snap)
    return snap


def _apply(store: DurableStore, changes: ChangeSet) -> None:
    with store._unit() as conn:
        store._apply(conn, changes)


def _sealed_or_plain(store: DurableStore, table: str, row_key: str, data: bytes) -> bytes:
    return store._seal(table, row_key, data)


def test_load_gives_rows_as_stored(db: Db) -> None:
    s = db.store()
    _fill(s)
    _apply(s, ChangeSet(base_keys=[(12, b"\x05" + b"b" * 32)]))
    spk_row = db.query("SELECT record FROM signed_prekeys WHERE id = 12")[0][0]
    snap = _load(
        s,
        Needs(
            sessions=[ALICE, BOB],
            identities=[ALICE, BOB],
            prekeys=[11, 99],
            signed_prekeys=[12],
            kyber_prekeys=[13, 98],
            base_keys=[(12, b"\x05" + b"b" * 32), (12, b"\x05" + b"c" * 32)],
            sender_keys=[(BOB, str(uuid.UUID(int=5))), (BOB, "legacy:nope")],
        ),
    )
    c = snap.calls
    assert c["session"] == [(ALICE, bytes(SESSION), 1), (BOB, None, 0)]
    assert c["identity"][0][1] is not None and c["identity"][1] == (BOB, None)
    assert c["prekey"][1] == (99, None) and c["prekey"][0][1] is not None
    assert c["signed_prekey"] == [(12, bytes(spk_row))]
    assert c["kyber_prekey"][0][0] == 13 and c["kyber_prekey"][0][2] is True
    assert c["kyber_prekey"][1] == (98, None, False)
    assert c["base_key"] == [(12, b"\x05" + b"b" * 32, True), (12, b"\x05" + b"c" * 32, False)]
    assert c["sender_key"] == [
        (BOB, str(uuid.UUID(int=5)), bytes(SENDER_KEY), 1),
        (BOB, "legacy:nope", None, 0),
    ]


def test_apply_writes_everything(db: Db) -> None:
    s = db.store()
    s.save_prekey(ts.PreKeyRecord.generate(1))
    s.save_kyber_prekey(ts.KyberPreKeyRecord.generate(2, s.identity_key_pair))
    s.save_session(ALICE, SESSION)  # version 1
    remote = bytes(ts.IdentityKeyPair.generate().public_key)
    _apply(
        s,
        ChangeSet(
            sessions=[(ALICE, 1, bytes(SESSION)), (BOB, 0, bytes(SESSION))],
            identities=[(BOB, remote)],
            removed_prekeys=[1],
            removed_kyber_prekeys=[2],
            kyber_last_resort_uses=[(3, 4, b"base")],
            base_keys=[(4, b"base")],
            sender_keys=[(BOB, "legacy:g", 0, bytes(SENDER_KEY))],
        ),
    )
    assert db.query("SELECT address, version FROM sessions ORDER BY address") == [
        (str(ALICE), 2),
        (str(BOB), 1),
    ]
    assert s.identity(BOB) == ts.IdentityKey.from_bytes(remote)
    assert s.load_prekey(1) is None and s.load_kyber_prekey(2) is None
    assert db.query("SELECT kyber_id, signed_id FROM kyber_last_resort_uses") == [(3, 4)]
    assert db.query("SELECT version FROM sender_keys") == [(1,)]
    _apply(s, ChangeSet(sender_keys=[(BOB, "legacy:g", 1, bytes(SENDER_KEY))]))
    assert db.query("SELECT version FROM sender_keys") == [(2,)]


def _state(db: Db) -> list[Any]:
    return [db.query(f"SELECT * FROM {t} ORDER BY 1, 2") for t in TABLES]


@pytest.mark.parametrize(
    "stale",
    [
        ChangeSet(sessions=[(ALICE, 1, b"new")]),  # row is at version 2
        ChangeSet(sessions=[(ALICE, 3, b"new")]),
        ChangeSet(sessions=[(ALICE, 0, b"new")]),  # row exists: lost insert race
        ChangeSet(sender_keys=[(BOB, "legacy:g", 0, b"new")]),
        ChangeSet(sender_keys=[(BOB, "legacy:g", 2, b"new")]),
        ChangeSet(base_keys=[(4, b"seen")]),
        ChangeSet(kyber_last_resort_uses=[(3, 4, b"seen")]),
        ChangeSet(removed_prekeys=[42]),  # consumed meanwhile
        ChangeSet(removed_kyber_prekeys=[43]),
    ],
    ids=lambda c: next(k for k, v in vars(c).items() if v),
)
def test_apply_conflict_changes_nothing(db: Db, stale: ChangeSet) -> None:
    s = db.store()
    s.save_session(ALICE, SESSION)
    s.save_session(ALICE, SESSION)
    s.save_sender_key(BOB, "g", SENDER_KEY)
    s.save_prekey(ts.PreKeyRecord.generate(1))
    _apply(s, ChangeSet(base_keys=[(4, b"seen")], kyber_last_resort_uses=[(3, 4, b"seen")]))
    before = _state(db)
    # the good parts of the change set are rolled back with the stale one
    changes = ChangeSet(
        sessions=[(BOB, 0, b"fresh"), *stale.sessions],
        identities=[(BOB, bytes(ts.IdentityKeyPair.generate().public_key))],
        removed_prekeys=[1, *stale.removed_prekeys],
        removed_kyber_prekeys=stale.removed_kyber_prekeys,
        kyber_last_resort_uses=stale.kyber_last_resort_uses,
        base_keys=[(9, b"other"), *stale.base_keys],
        sender_keys=stale.sender_keys,
    )
    with pytest.raises(base._Conflict):
        _apply(s, changes)
    assert _state(db) == before


def test_execute_retries_a_lost_race(db: Db) -> None:
    s = db.store()
    s.save_session(ALICE, SESSION)

    def plan(attempt: int, snap: Recorder) -> ChangeSet:
        (_, _record, version) = snap.calls["session"][0]
        if attempt == 1:
            s.save_session(ALICE, SESSION)  # a concurrent writer moves the row on
        return ChangeSet(sessions=[(ALICE, version, b"planned %d" % attempt)])

    op = FakeOp(Needs(sessions=[ALICE], lock_keys=["session/alice.1"]), plan)
    assert s._execute(op) == "result 2"
    assert op.attempts == 2
    # the concurrent write was this unit's own and rolled back with it; then version 1 -> 2
    assert db.query("SELECT version, record FROM sessions") == [(2, b"planned 2")]


def test_execute_gives_up_after_max_attempts(db: Db) -> None:
    s = db.store()
    _apply(s, ChangeSet(base_keys=[(1, b"k")]))
    op = FakeOp(Needs(), lambda attempt, snap: ChangeSet(base_keys=[(1, b"k")]))
    with pytest.raises(errors.StoreError, match="race"):
        s._execute(op)
    assert op.attempts == base.MAX_ATTEMPTS


def test_execute_error_in_plan_writes_nothing(db: Db) -> None:
    s = db.store()

    def plan(attempt: int, snap: Recorder) -> ChangeSet:
        s.save_prekey(ts.PreKeyRecord.generate(5))
        raise errors.InvalidMessage("bad mac")

    with pytest.raises(errors.InvalidMessage):
        s._execute(FakeOp(Needs(), plan))
    assert s.load_prekey(5) is None


# ---------------------------------------------------------------------------------------
# Transactions with the application
# ---------------------------------------------------------------------------------------


def _app_table(db: Db) -> None:
    db.query("CREATE TABLE app (id INTEGER PRIMARY KEY, note TEXT)")


def _app_insert(db: Db, tx: base.Transaction, id: int) -> None:
    mark = "?" if db.kind == "sqlite" else "%s"
    tx.connection.execute(f"INSERT INTO app (id, note) VALUES ({mark}, {mark})", (id, "n"))


def test_transaction_commits_with_application_rows(db: Db) -> None:
    _app_table(db)
    s = db.store()
    with s.transaction() as tx:
        assert isinstance(tx.connection, sqlite3.Connection if db.kind == "sqlite" else object)
        _app_insert(db, tx, 1)
        s.save_prekey(ts.PreKeyRecord.generate(1))
        s._execute(FakeOp(Needs(), lambda a, snap: ChangeSet(sessions=[(ALICE, 0, b"x")])))
        # a failed operation undoes only itself
        with pytest.raises(errors.StoreError):
            s._execute(
                FakeOp(
                    Needs(),
                    lambda a, snap: ChangeSet(sessions=[(BOB, 0, b"y")], removed_prekeys=[999]),
                )
            )
        with pytest.raises(errors.InvalidMessage):
            s._execute(FakeOp(Needs(), _raising_after_write(s)))
    assert db.query("SELECT id FROM app") == [(1,)]
    assert s.load_prekey(1) is not None
    assert db.query("SELECT address FROM sessions") == [(str(ALICE),)]
    assert s.load_prekey(2) is None


def _raising_after_write(s: DurableStore) -> Callable[[int, Recorder], ChangeSet]:
    def plan(attempt: int, snap: Recorder) -> ChangeSet:
        s.save_prekey(ts.PreKeyRecord.generate(2))
        raise errors.InvalidMessage("bad mac")

    return plan


def test_transaction_rolls_back_everything(db: Db) -> None:
    _app_table(db)
    s = db.store()
    with pytest.raises(RuntimeError), s.transaction() as tx:
        _app_insert(db, tx, 1)
        s.save_prekey(ts.PreKeyRecord.generate(1))
        s._execute(FakeOp(Needs(), lambda a, snap: ChangeSet(sessions=[(ALICE, 0, b"x")])))
        raise RuntimeError("application failure")
    assert db.query("SELECT id FROM app") == []
    assert s.load_prekey(1) is None and db.query("SELECT * FROM sessions") == []
    # the application's own driver errors pass through unchanged; the store is usable after
    with pytest.raises(Exception) as info, s.transaction() as tx:
        tx.connection.execute("SELECT * FROM no_such_table")
    assert not isinstance(info.value, errors.TextSecureError)
    s.save_prekey(ts.PreKeyRecord.generate(3))
    assert s.load_prekey(3) is not None


def test_nested_transaction_is_a_savepoint(db: Db) -> None:
    s = db.store()
    with s.transaction():
        s.save_prekey(ts.PreKeyRecord.generate(1))
        with pytest.raises(KeyError), s.transaction():
            s.save_prekey(ts.PreKeyRecord.generate(2))
            raise KeyError
        with s.transaction():
            s.save_prekey(ts.PreKeyRecord.generate(3))
    assert [s.load_prekey(i) is not None for i in (1, 2, 3)] == [True, False, True]


def test_other_threads_wait_for_a_transaction(db: Db) -> None:
    s = db.store()
    seen: list[bool] = []
    with s.transaction():
        s.save_prekey(ts.PreKeyRecord.generate(1))
        t = threading.Thread(target=lambda: seen.append(s.load_prekey(1) is not None))
        t.start()
        t.join(0.3)
        if db.kind == "sqlite":
            assert t.is_alive()  # the connection is this thread's until the block ends
    t.join()
    assert seen == [True] or (db.kind == "postgres" and seen in ([False], [True]))


def test_threads_share_a_store(db: Db) -> None:
    s = db.store()
    failures: list[BaseException] = []

    def work(base_id: int) -> None:
        try:
            for i in range(20):
                s.save_prekey(ts.PreKeyRecord.generate(base_id + i))
                s.save_session(ALICE, SESSION)
                assert s.load_prekey(base_id + i) is not None
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=work, args=(i * 100,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert db.query("SELECT version FROM sessions") == [(80,)]


# ---------------------------------------------------------------------------------------
# Encryption at rest
# ---------------------------------------------------------------------------------------


def _all_blobs(db: Db) -> list[bytes]:
    cols = {
        "accounts": "identity",
        "sessions": "record",
        "identities": "key",
        "prekeys": "record",
        "signed_prekeys": "record",
        "kyber_prekeys": "record",
        "sender_keys": "record",
        "inbox": "plaintext",
    }
    out = []
    for table, col in cols.items():
        out += [bytes(r[0]) for r in db.query(f"SELECT {col} FROM {table}") if r[0] is not None]
    return out


def _secret_parts(records: dict[str, bytes]) -> list[bytes]:
    # whole records, and 16-byte windows of them (no part may appear in the clear)
    parts = []
    for data in records.values():
        parts.append(data)
        parts += [data[i : i + 16] for i in range(0, len(data) - 16, 97)]
    return parts


def test_sealed_rows_hold_no_record_bytes(db: Db) -> None:
    s = db.store(key=KEY1)
    records = _fill(s)
    s._execute(
        FakeOp(
            Needs(),
            lambda a, snap: ChangeSet(
                sessions=[(BOB, 0, s._seal("sessions", str(BOB), bytes(SESSION)))]
            ),
        )
    )
    _insert_inbox(s, b"h" * 32, b"secret plaintext here")
    s.close()
    blobs = _all_blobs(db)
    assert len(blobs) == 10
    parts = [*_secret_parts(records), b"secret plaintext here"]
    for blob in blobs:
        for part in parts:
            assert part not in blob
    if db.kind == "sqlite":
        data = Path(db.target).read_bytes()
        for suffix in ("-wal", "-shm"):
            extra = Path(db.target + suffix)
            if extra.exists():
                data += extra.read_bytes()
        for part in parts:
            assert part not in data
    # the plain store would show them
    p = db.store(account="plain")
    _fill(p)
    assert bytes(SESSION) in [bytes(r[0]) for r in db.query("SELECT record FROM sessions")]


def test_sealed_rows_are_bound_to_their_place(db: Db) -> None:
    s = db.store(key=KEY1)
    s.save_prekey(ts.PreKeyRecord.generate(1))
    s.save_prekey(ts.PreKeyRecord.generate(2))
    s.save_session(ALICE, SESSION)
    s.save_session(BOB, SESSION)
    other = db.store(account="other", key=KEY1)
    other.save_prekey(ts.PreKeyRecord.generate(1))
    # another row key of the same table
    db.query(
        "UPDATE prekeys SET record = (SELECT record FROM prekeys WHERE account = 'default' "
        "AND id = 1) WHERE account = 'default' AND id = 2"
    )
    with pytest.raises(errors.InvalidRecord):
        s.load_prekey(2)
    db.query(
        "UPDATE sessions SET record = (SELECT record FROM sessions WHERE address = $1) "
        "WHERE address = $2",
        str(ALICE),
        str(BOB),
    )
    with pytest.raises(errors.InvalidRecord):
        s.session(BOB)
    # the same row key in another account
    db.query(
        "UPDATE prekeys SET record = (SELECT record FROM prekeys WHERE account = 'default' "
        "AND id = 1) WHERE account = 'other' AND id = 1"
    )
    with pytest.raises(errors.InvalidRecord):
        other.load_prekey(1)
    assert s.load_prekey(1) is not None and s.session(ALICE) is not None


def test_wrong_or_missing_key(db: Db) -> None:
    db.store(key=KEY1).save_prekey(ts.PreKeyRecord.generate(1))
    with pytest.raises(errors.InvalidRecord):
        db.store(key=KEY2)
    with pytest.raises(errors.InvalidRecord):
        db.store()
    with pytest.raises(errors.InvalidArgument):
        db.store(key=b"short")


def test_rotate_key(db: Db) -> None:
    s = db.store(key=KEY1)
    records = _fill(s)
    _insert_inbox(s, b"h" * 32, b"pending plaintext")
    other = db.store(account="other", key=KEY1)
    other.save_prekey(ts.PreKeyRecord.generate(1))
    before = _all_blobs(db)
    s.rotate_key(KEY2)
    assert s.load_prekey(11) is not None  # the store uses the new key at once
    s.close()
    with pytest.raises(errors.InvalidRecord):
        db.store(key=KEY1)
    s = db.store(key=KEY2)
    _check_records(s, records)
    assert [i.plaintext for i in s.inbox_pending()] == [b"pending plaintext"]
    assert other.load_prekey(1) is not None  # other accounts untouched
    assert not set(before) & set(_all_blobs(db)) - {
        bytes(r[0]) for r in db.query("SELECT record FROM prekeys WHERE account = 'other'")
    } - {bytes(r[0]) for r in db.query("SELECT identity FROM accounts WHERE account = 'other'")}
    # to no key and back
    s.rotate_key(None)
    s.close()
    s = db.store()
    _check_records(s, records)
    s.rotate_key(KEY1)
    s.close()
    _check_records(db.store(key=KEY1), records)


def _check_records(s: DurableStore, records: dict[str, bytes]) -> None:
    assert bytes(s.identity_key_pair) == records["account_identity"]
    assert bytes(s.load_prekey(11) or b"") == records["prekey"]
    assert bytes(s.load_signed_prekey(12) or b"") == records["signed_prekey"]
    assert bytes(s.load_kyber_prekey(13) or b"") == records["kyber_prekey"]
    assert bytes(s.session(ALICE) or b"") == records["session"]
    assert bytes(s.identity(ALICE) or b"") == records["identity"]
    assert bytes(s.sender_key(BOB, "legacy-group") or b"") == records["sender_key"]


# ---------------------------------------------------------------------------------------
# Inbox bookkeeping (the decrypt path is in test_stores_ciphers.py)
# ---------------------------------------------------------------------------------------


def _insert_inbox(s: DurableStore, digest: bytes, plaintext: bytes, at: int = 1000) -> None:
    with s._unit() as conn:
        s._q(
            conn,
            "INSERT INTO inbox (account, hash, address, plaintext, received_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            s.account,
            digest,
            str(ALICE),
            s._seal("inbox", digest.hex(), plaintext),
            at,
        )


def test_inbox_pending_ack_purge(db: Db) -> None:
    s = db.store(key=KEY1)
    _insert_inbox(s, b"b" * 32, b"second", at=2000)
    _insert_inbox(s, b"a" * 32, b"first", at=1000)
    items = s.inbox_pending()
    assert [(i.plaintext, i.received_at, i.address) for i in items] == [
        (b"first", 1000, ALICE),
        (b"second", 2000, ALICE),
    ]
    assert items[0].hash == b"a" * 32
    assert s.inbox_ack(b"a" * 32) is True
    assert s.inbox_ack(b"a" * 32) is False
    assert [i.plaintext for i in s.inbox_pending()] == [b"second"]
    assert db.query("SELECT plaintext FROM inbox WHERE acked_at IS NOT NULL") == [(None,)]
    assert s.inbox_purge() == 0  # acked just now: kept
    assert s.inbox_purge(older_than_ms=-60_000) == 1
    assert db.query("SELECT COUNT(*) FROM inbox")[0][0] == 1


def test_inbox_hash() -> None:
    msg = ts.SignalMessage  # only .type and bytes() are used

    class M:
        type = ts.MessageType.WHISPER

        def __bytes__(self) -> bytes:
            return b"body"

    expected = hashlib.sha256(b"textsecure.inbox.v1" + b"alice.1" + b"\0" + b"\x02" + b"body")
    assert base.inbox_hash(ALICE, M()) == expected.digest()
    assert msg is not None


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def test_driver_errors_become_store_errors(db: Db) -> None:
    s = db.store()
    with s.transaction() as tx:
        conn = tx.connection
    conn.close()
    with pytest.raises(errors.StoreError) as info:
        s.load_prekey(1)
    driver = sqlite3.Error if db.kind == "sqlite" else __import__("psycopg").Error
    assert isinstance(info.value.__cause__, driver)
    with pytest.raises(errors.StoreError) as info:
        s._execute(FakeOp(Needs(prekeys=[1]), lambda a, snap: ChangeSet()))
    assert isinstance(info.value.__cause__, driver)


def test_closed_store(db: Db) -> None:
    s = db.store()
    with s:
        pass
    assert s.closed
    with pytest.raises(errors.StoreError):
        s.load_prekey(1)
    s.close()  # idempotent


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(errors.StoreError) as info:
        SQLiteStore(tmp_path / "no" / "such" / "dir.db")
    assert isinstance(info.value.__cause__, sqlite3.Error)
    with pytest.raises(errors.StoreError) as info:
        PostgresStore("host=/nonexistent port=1 dbname=x connect_timeout=1")
    assert info.value.__cause__ is not None
    with pytest.raises(errors.InvalidArgument):
        PostgresStore(object())


# ---------------------------------------------------------------------------------------
# PostgreSQL connections given by the application; several processes
# ---------------------------------------------------------------------------------------


def test_postgres_pool(postgres_db: str) -> None:
    from psycopg_pool import ConnectionPool

    with ConnectionPool(postgres_db, min_size=1, max_size=3, open=True) as pool:
        s: Any = RecPostgresStore(pool, account="p")
        failures: list[BaseException] = []

        def work(base_id: int) -> None:
            try:
                for i in range(10):
                    s.save_prekey(ts.PreKeyRecord.generate(base_id + i))
                    s.save_session(ALICE, SESSION)
            except BaseException as e:
                failures.append(e)

        threads = [threading.Thread(target=work, args=(i * 100,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        with s.transaction() as tx:
            tx.connection.execute("CREATE TABLE app (id INTEGER)")
            tx.connection.execute("INSERT INTO app VALUES (1)")
            s.save_prekey(ts.PreKeyRecord.generate(999))
        with pool.connection() as conn:
            assert conn.execute("SELECT COUNT(*) FROM prekeys").fetchone() == (31,)
            assert conn.execute("SELECT version FROM sessions").fetchone() == (30,)
            assert conn.execute("SELECT id FROM app").fetchall() == [(1,)]
            assert not conn.autocommit  # given back as it was taken
        s.close()
        assert not pool.closed


def test_postgres_connection_given(postgres_db: str) -> None:
    import psycopg

    conn = psycopg.connect(postgres_db)
    try:
        s: Any = RecPostgresStore(conn, account="c")
        s.save_prekey(ts.PreKeyRecord.generate(1))
        s.close()
        assert not conn.closed  # not ours to close
        assert conn.execute("SELECT COUNT(*) FROM prekeys").fetchone() == (1,)
        conn.execute("SELECT 1")  # now inside a transaction (autocommit is on: it is not)
        conn.autocommit = False
        conn.execute("SELECT 1")
        with pytest.raises(errors.InvalidArgument):
            PostgresStore(conn, account="c")
    finally:
        conn.close()


_CHILD = """
import sys
import textsecure as ts
from textsecure.stores import SQLiteStore
with SQLiteStore(sys.argv[1], account=sys.argv[2]) as s:
    for i in range(20):
        s.save_prekey(ts.PreKeyRecord.generate(i))
        record = ts.SessionRecord.from_bytes(bytes.fromhex(sys.argv[3]))
        s.save_session(ts.Address("shared", 1), record)
"""


def test_sqlite_processes_share_a_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = str(tmp_path / "shared.db")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, path, f"acct{i % 2}", bytes(SESSION).hex()],
            stderr=subprocess.PIPE,
        )
        for i in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    assert SQLiteStore.list_accounts(path) == ["acct0", "acct1"]
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM prekeys").fetchone() == (40,)
        assert raw.execute("SELECT SUM(version) FROM sessions").fetchone() == (80,)
    raw.close()
