"""Stored rows are hostile input.

A real ``SQLiteStore`` / ``PostgresStore`` (plain and with an at-rest key) holds a full set of
records for two accounts: a v4 session with SPQR, a trusted identity, one-time / signed /
Kyber prekeys, received and own sender keys (current and legacy format) and the account's
own identity. One row at a time is damaged directly in the database with SQL (truncations,
single-bit flips), then every operation that reads that row runs:

* it raises ``textsecure.errors.InvalidRecord``; always so when the row is sealed (AEAD) or
  when the damaged bytes do not decode on their own;
* where a damaged unsealed row still decodes into a valid but wrong record (a flipped key
  bit), the operation raises another typed ``textsecure.errors`` exception (a decryption
  then fails, e.g. ``InvalidMessage``), or succeeds with the right result (a flip in a part
  the operation does not use), and what it sends is either read correctly by the peer or
  refused by it with a typed error;
* never a hang (a watchdog ends the run), never a panic, never another exception;
* a failed operation leaves the whole database byte-for-byte as it was (full table dumps
  before and after); a successful one touches no other account's rows.
"""

from __future__ import annotations

import contextlib
import faulthandler
import random
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import textsecure as ts
from textsecure import errors
from textsecure.stores import DurableStore, PostgresStore, SQLiteStore

KEY = bytes(range(7, 39))
ALICE = ts.Address("alice", 1)
BOB = ts.Address("bob", 1)
DAVE = ts.Address("dave", 1)
GROUP = "120363000000000042@g.us"
#: a hang in an operation ends the test run with a traceback after this many seconds
WATCHDOG_S = 120

#: every table and its primary key columns
TABLES: dict[str, tuple[str, ...]] = {
    "schema_version": ("version",),
    "accounts": ("account",),
    "sessions": ("account", "address"),
    "identities": ("account", "address"),
    "prekeys": ("account", "id"),
    "signed_prekeys": ("account", "id"),
    "kyber_prekeys": ("account", "id"),
    "base_keys": ("account", "signed_prekey_id", "base_key"),
    "kyber_last_resort_uses": ("account", "kyber_id", "signed_id", "base_key"),
    "sender_keys": ("account", "sender", "distribution"),
    "inbox": ("account", "hash"),
}

Dump = dict[tuple[str, tuple[Any, ...]], tuple[Any, ...]]


def _plain(v: Any) -> Any:
    return bytes(v) if isinstance(v, memoryview | bytearray) else v


# -- the database, seen directly ---------------------------------------------------------------


class Raw:
    """A connection of the test's own to the store's database (not the store's)."""

    def __init__(self, kind: str, target: str) -> None:
        self.kind = kind
        self._columns: dict[str, list[str]] = {}
        self.conn: Any
        if kind == "sqlite":
            self.conn = sqlite3.connect(target, isolation_level=None)
            self.conn.execute("PRAGMA synchronous = OFF")  # the test's own writes
        else:
            import psycopg

            self.conn = psycopg.connect(target, autocommit=True)

    def q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            cur = self.conn.execute(sql.replace("%s", "?"), params)
        else:
            cur = self.conn.execute(sql, params)
        rows = cur.fetchall() if cur.description is not None else []
        return [tuple(_plain(v) for v in r) for r in rows]

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            if self.kind == "sqlite":
                cols = [r[1] for r in self.q(f"PRAGMA table_info({table})")]
            else:
                cols = [
                    r[0]
                    for r in self.q(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = %s ORDER BY ordinal_position",
                        (table,),
                    )
                ]
            self._columns[table] = cols
        return self._columns[table]

    def dump(self) -> Dump:
        """Every row of every table, keyed by (table, primary key)."""
        out: Dump = {}
        for table, pk in TABLES.items():
            cols = self.columns(table)
            idx = [cols.index(c) for c in pk]
            for row in self.q(f"SELECT * FROM {table}"):
                out[(table, tuple(row[i] for i in idx))] = row
        return out

    def restore(self, dump: Dump) -> None:
        """Puts the database back as in ``dump``: the rows that differ are deleted and
        inserted again (accounts rows updated in place), in one transaction."""
        current = self.dump()
        stale = [k for k in current if current[k] != dump.get(k)]
        missing = [k for k in dump if current.get(k) != dump[k]]
        if not stale and not missing:
            return
        self.q("BEGIN")
        try:
            for table, key in stale:
                if table != "accounts":
                    where = " AND ".join(f"{c} = %s" for c in TABLES[table])
                    self.q(f"DELETE FROM {table} WHERE {where}", key)
            for table, key in missing:
                cols = self.columns(table)
                row = dump[(table, key)]
                if table == "accounts":
                    sets = ", ".join(f"{c} = %s" for c in cols[1:])
                    self.q(f"UPDATE accounts SET {sets} WHERE account = %s", (*row[1:], row[0]))
                else:
                    marks = ", ".join(["%s"] * len(cols))
                    self.q(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", row)
            self.q("COMMIT")
        except BaseException:
            self.q("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()


# -- a world of records ------------------------------------------------------------------------


@dataclass
class Account:
    """A durable account with every kind of record, and what the tests send it."""

    name: str
    store: DurableStore
    alice: ts.MemoryStore  # the peer of its session and the sender of its groups
    dist: uuid.UUID  # a group alice sends to
    own_dist: uuid.UUID  # a group this account sends to
    prekey_message: ts.PreKeySignalMessage  # from dave, not yet delivered: uses P, S, K
    whisper: ts.SignalMessage  # from alice, not yet delivered
    group_message: ts.SenderKeyMessage  # from alice, not yet delivered
    legacy_message: bytes  # from alice (legacy format), not yet delivered
    ids: dict[str, int] = field(default_factory=dict)


def _account(store: DurableStore) -> Account:
    me = ts.Address(store.account, 1)
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 11)
    # a v4 session with SPQR, some epochs in, and skipped message keys kept
    to_me, to_alice = ts.SessionCipher(alice, me), ts.SessionCipher(store, ALICE)
    to_me.process_bundle(store.new_bundle(1, prekey_id=1, signed_prekey_id=1))
    for i in range(30):
        burst = [to_me.encrypt(b"a%d" % j) for j in range(3)]
        for m in burst[::-1] if i % 7 else burst:
            to_alice.decrypt(m)
        to_me.decrypt(to_alice.encrypt(b"b%d" % i))
    in_flight = to_me.encrypt(b"skipped")
    to_alice.decrypt(to_me.encrypt(b"after the skipped one"))
    del in_flight
    whisper = to_me.encrypt(b"whisper")
    assert isinstance(whisper, ts.SignalMessage)
    # unused prekeys P, S, K for dave's first message, and a last-resort Kyber prekey
    bundle = store.new_bundle(1, prekey_id=20, signed_prekey_id=21, kyber_prekey_id=22)
    store.new_bundle(
        1, signed_prekey_id=30, kyber_prekey_id=31, one_time=False, kyber_last_resort=True
    )
    dave = ts.MemoryStore(ts.IdentityKeyPair.generate(), 44)
    ts.SessionCipher(dave, me).process_bundle(bundle)
    prekey_message = ts.SessionCipher(dave, me).encrypt(b"dave's first")
    assert isinstance(prekey_message, ts.PreKeySignalMessage)
    # sender keys: alice's chain (current and legacy), and one of our own
    dist, own_dist = uuid.uuid4(), uuid.uuid4()
    skdm = ts.GroupCipher(alice, dist).create_distribution(ALICE)
    ts.GroupCipher(store, dist).process_distribution(ALICE, skdm)
    for i in range(5):
        ts.GroupCipher(store, dist).decrypt(
            ALICE, ts.GroupCipher(alice, dist).encrypt(ALICE, b"g%d" % i)
        )
    ts.GroupCipher(alice, dist).encrypt(ALICE, b"lost")  # a gap: nothing stored for it
    group_message = ts.GroupCipher(alice, dist).encrypt(ALICE, b"group")
    legacy = ts.LegacyGroupCipher(alice, GROUP).create_distribution(ALICE)
    ts.LegacyGroupCipher(store, GROUP).process_distribution(ALICE, legacy)
    legacy_message = bytes(ts.LegacyGroupCipher(alice, GROUP).encrypt(ALICE, b"legacy"))
    own = ts.GroupCipher(store, own_dist).create_distribution(me)
    ts.GroupCipher(alice, own_dist).process_distribution(me, own)
    ts.GroupCipher(alice, own_dist).decrypt(me, ts.GroupCipher(store, own_dist).encrypt(me, b"own"))
    return Account(
        store.account,
        store,
        alice,
        dist,
        own_dist,
        prekey_message,
        whisper,
        group_message,
        legacy_message,
        {"prekey": 20, "signed_prekey": 21, "kyber_prekey": 22},
    )


# -- what is damaged, and what reads it ----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    table: str
    column: str
    key: Callable[[Account], tuple[Any, ...]]
    parse: Callable[[bytes], object]  # how the bytes of the row decode on their own


TARGETS: dict[str, Target] = {
    "session": Target(
        "sessions", "record", lambda a: (a.name, str(ALICE)), ts.SessionRecord.from_bytes
    ),
    "identity": Target(
        "identities", "key", lambda a: (a.name, str(ALICE)), ts.IdentityKey.from_bytes
    ),
    "prekey": Target(
        "prekeys", "record", lambda a: (a.name, a.ids["prekey"]), ts.PreKeyRecord.from_bytes
    ),
    "signed_prekey": Target(
        "signed_prekeys",
        "record",
        lambda a: (a.name, a.ids["signed_prekey"]),
        ts.SignedPreKeyRecord.from_bytes,
    ),
    "kyber_prekey": Target(
        "kyber_prekeys",
        "record",
        lambda a: (a.name, a.ids["kyber_prekey"]),
        ts.KyberPreKeyRecord.from_bytes,
    ),
    "sender_key": Target(
        "sender_keys",
        "record",
        lambda a: (a.name, str(ALICE), str(a.dist)),
        ts.SenderKeyRecord.from_bytes,
    ),
    "legacy_sender_key": Target(
        "sender_keys",
        "record",
        lambda a: (a.name, str(ALICE), "legacy:" + GROUP),
        ts.SenderKeyRecord.from_bytes,
    ),
    "own_sender_key": Target(
        "sender_keys",
        "record",
        lambda a: (a.name, f"{a.name}.1", str(a.own_dist)),
        ts.SenderKeyRecord.from_bytes,
    ),
    "account_identity": Target(
        "accounts", "identity", lambda a: (a.name,), ts.IdentityKeyPair.from_bytes
    ),
}


class Checker:
    """Runs the operations that read a target row, classifies their outcomes."""

    def __init__(self, world: World, target: str) -> None:
        self.world = world
        self.target = target
        self.acc = world.bob

    def _reopen(self) -> DurableStore:
        self.world.bob_store.close()
        store = self.world.open("bob")
        self.world.bob_store = store
        self.acc.store = store
        return store

    def ops(self) -> dict[str, Callable[[], object]]:
        """name -> operation; an operation returns normally only with a correct result."""
        acc = self.acc
        me = ts.Address(acc.name, 1)

        def store() -> DurableStore:
            return acc.store

        def decrypt_whisper() -> None:
            got = ts.SessionCipher(store(), ALICE).decrypt(acc.whisper)
            assert got == b"whisper", got

        def encrypt_to_alice() -> None:
            m = ts.SessionCipher(store(), ALICE).encrypt(b"to alice")
            self.peer_reads(lambda: ts.SessionCipher(acc.alice, me).decrypt(m), b"to alice", True)

        def decrypt_prekey_message() -> None:
            got = ts.SessionCipher(store(), DAVE).decrypt(acc.prekey_message)
            assert got == b"dave's first", got

        def group_decrypt() -> None:
            got = ts.GroupCipher(store(), acc.dist).decrypt(ALICE, acc.group_message)
            assert got == b"group", got

        def legacy_decrypt() -> None:
            got = ts.LegacyGroupCipher(store(), GROUP).decrypt(ALICE, acc.legacy_message)
            assert got == b"legacy", got

        def own_group_encrypt() -> None:
            m = ts.GroupCipher(store(), acc.own_dist).encrypt(me, b"own")
            self.peer_reads(
                lambda: ts.GroupCipher(acc.alice, acc.own_dist).decrypt(me, m), b"own", False
            )

        def own_distribution() -> None:
            skdm = ts.GroupCipher(store(), acc.own_dist).create_distribution(me)
            assert skdm.distribution_id == acc.own_dist

        def reopen_and_talk() -> None:
            s = self._reopen()
            assert bytes(s.identity_key_pair.public_key) == self.world.bob_public
            decrypt_whisper()

        table: dict[str, dict[str, Callable[[], object]]] = {
            "session": {
                "session": lambda: store().session(ALICE),
                "decrypt": decrypt_whisper,
                "encrypt": encrypt_to_alice,
            },
            "identity": {
                "identity": lambda: store().identity(ALICE),
                "decrypt": decrypt_whisper,
                "encrypt": encrypt_to_alice,
            },
            "prekey": {
                "load": lambda: store().load_prekey(acc.ids["prekey"]),
                "decrypt": decrypt_prekey_message,
            },
            "signed_prekey": {
                "load": lambda: store().load_signed_prekey(acc.ids["signed_prekey"]),
                "decrypt": decrypt_prekey_message,
            },
            "kyber_prekey": {
                "load": lambda: store().load_kyber_prekey(acc.ids["kyber_prekey"]),
                "decrypt": decrypt_prekey_message,
            },
            "sender_key": {
                "load": lambda: store().sender_key(ALICE, acc.dist),
                "decrypt": group_decrypt,
            },
            "legacy_sender_key": {
                "load": lambda: store().sender_key(ALICE, GROUP),
                "decrypt": legacy_decrypt,
            },
            "own_sender_key": {
                "load": lambda: store().sender_key(me, acc.own_dist),
                "encrypt": own_group_encrypt,
                "distribution": own_distribution,
            },
            "account_identity": {"reopen": reopen_and_talk},
        }
        return table[self.target]

    def peer_reads(self, read: Callable[[], bytes], expected: bytes, authenticated: bool) -> None:
        """What a damaged record made us send: the peer reads it correctly or refuses it
        with a typed error. The peer's state is put back afterwards.

        A SenderKeyMessage is signed but carries no MAC under its message key: with a flipped
        chain-key bit the sender encrypts under another key, the signature still verifies,
        and in about 1 of 256 cases the CBC padding of the wrong plaintext is valid, so the
        receiver gets garbage without an error (libsignal's format; the same with libsignal).
        Those are counted, not failed; a 1:1 message (MAC) must never read wrong."""
        acc = self.acc
        me = ts.Address(acc.name, 1)
        session = acc.alice.session(me)
        sender_key = acc.alice.sender_key(me, acc.own_dist)
        try:
            got = read()
        except errors.TextSecureError:
            self.world.peer_refused += 1
        else:
            if got != expected:
                if authenticated:
                    self.world.peer_problems.append(f"the peer read {got!r}, not {expected!r}")
                else:
                    self.world.peer_garbled += 1
        finally:
            if session is not None:
                acc.alice.save_session(me, session)
            if sender_key is not None:
                acc.alice.save_sender_key(me, acc.own_dist, sender_key)


@dataclass
class World:
    kind: str
    target: str
    key: bytes | None
    raw: Raw
    bob: Account
    carol: Account
    bob_store: DurableStore
    bob_public: bytes
    open: Callable[[str], DurableStore]
    peer_refused: int = 0
    peer_garbled: int = 0
    peer_problems: list[str] = field(default_factory=list)


def _mutations(data: bytes, seed: str, flips_wanted: int) -> Iterator[tuple[str, bytes]]:
    """Truncations and single-bit flips: the edges of the data and a seeded sample."""
    rng = random.Random(seed)
    n = len(data)
    cuts = {0, 1, 2, 5, 12, n // 4, n // 2, n - 17, n - 2, n - 1}
    cuts.update(rng.randrange(n) for _ in range(6))
    for cut in sorted(c for c in cuts if 0 <= c < n):
        yield f"truncated to {cut}", data[:cut]
    flips = {(0, b) for b in range(8)} | {(n - 1, 0), (n - 1, 7)}
    while len(flips) < flips_wanted:
        flips.add((rng.randrange(n), rng.randrange(8)))
    for pos, bit in sorted(flips):
        out = bytearray(data)
        out[pos] ^= 1 << bit
        yield f"bit {bit} of byte {pos} flipped", bytes(out)


def _outcome(op: Callable[[], object]) -> BaseException | None:
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    try:
        op()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # a panic is a BaseException
        return e
    finally:
        faulthandler.cancel_dump_traceback_later()
    return None


@contextlib.contextmanager
def _world(
    kind: str, target: str, key: bytes | None, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[World]:
    location = (
        str(tmp_path / "hostile.db")
        if kind == "sqlite"
        else str(request.getfixturevalue("postgres_db"))
    )
    opened: list[DurableStore] = []

    def open_store(account: str, **kw: Any) -> DurableStore:
        cls = SQLiteStore if kind == "sqlite" else PostgresStore
        s: DurableStore = cls(location, account=account, key=key, **kw)
        opened.append(s)
        return s

    bob_store = open_store("bob", registration_id=2)
    carol_store = open_store("carol", registration_id=3)
    raw = Raw(kind, location)
    try:
        world = World(
            kind,
            target,
            key,
            raw,
            _account(bob_store),
            _account(carol_store),
            bob_store,
            bytes(bob_store.identity_key_pair.public_key),
            open_store,
        )
        yield world
    finally:
        raw.close()
        for s in opened:
            if not s.closed:
                s.close()


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "sealed"])
@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_damaged_rows_fail_typed_and_change_nothing(
    kind: str, target: str, key: bytes | None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with _world(kind, target, key, tmp_path, request) as world:
        _check(world)


def _check(world: World) -> None:
    t = TARGETS[world.target]
    raw = world.raw
    checker = Checker(world, world.target)
    pk = TABLES[t.table]
    where = " AND ".join(f"{c} = %s" for c in pk)
    row_key = t.key(world.bob)
    baseline = raw.dump()
    assert (t.table, row_key) in baseline, f"no {t.table} row {row_key}"
    (original,) = raw.q(f"SELECT {t.column} FROM {t.table} WHERE {where}", row_key)[0]
    original = bytes(original)
    sealed = world.key is not None
    if not sealed:
        t.parse(original)  # the undamaged row decodes
    other_accounts = {k: v for k, v in baseline.items() if k[1][:1] != ("bob",)}
    assert other_accounts, "carol's rows are there to be left alone"

    # Every operation works on the undamaged row (and the database is put back after it).
    ops = checker.ops()
    for name, op in ops.items():
        err = _outcome(op)
        assert err is None, f"{name} on the undamaged row: {err!r}"
        raw.restore(baseline)
        if world.target == "account_identity":
            checker._reopen()
        assert raw.dump() == baseline

    counts: dict[str, int] = {}
    problems: list[str] = []
    # sealed: any damage fails the AEAD, a few flips say as much as many
    flips = 16 if sealed else 36
    for what, bad in _mutations(original, f"{world.target}/{world.kind}/{sealed}", flips):
        raw.q(f"UPDATE {t.table} SET {t.column} = %s WHERE {where}", (bad, *row_key))
        damaged = raw.dump()
        decodes = False
        if not sealed:
            try:
                t.parse(bad)
                decodes = True
            except errors.TextSecureError:
                pass
        for name, op in ops.items():
            err = _outcome(op)
            state = "sealed" if sealed else "plain"
            context = f"{state} {world.target} row {what}: {name}"
            problems += [f"{context}: {p}" for p in world.peer_problems]
            world.peer_problems.clear()
            after = raw.dump()
            if err is not None:
                kind = type(err).__name__
                counts[kind] = counts.get(kind, 0) + 1
                if not isinstance(err, errors.TextSecureError) or isinstance(
                    err, errors.StoreError
                ):
                    problems.append(
                        f"{context}: {type(err).__module__}.{type(err).__qualname__}: {err}"
                    )
                elif not decodes and not isinstance(err, errors.InvalidRecord):
                    problems.append(f"{context}: the row does not decode, yet {kind}: {err}")
                changed = sorted(
                    k for k in set(after) | set(damaged) if after.get(k) != damaged.get(k)
                )
                if changed:
                    problems.append(f"{context}: failed ({kind}) and changed rows {changed}")
            else:
                counts["ok"] = counts.get("ok", 0) + 1
                if not decodes:
                    problems.append(f"{context}: succeeded on a row that does not decode")
                others = {k: v for k, v in after.items() if k[1][:1] != ("bob",)}
                if others != other_accounts:
                    problems.append(f"{context}: another account's rows changed")
                raw.restore(damaged)
        raw.restore(baseline)
        if world.target == "account_identity":
            checker._reopen()
    assert raw.dump() == baseline
    assert not problems, f"{len(problems)} problems ({counts}):\n" + "\n".join(problems)
    assert counts.get("InvalidRecord", 0) > 0, counts
    if sealed:
        assert set(counts) == {"InvalidRecord"}, counts
