"""The store conformance kit (``textsecure.testing.conformance``) run against every store:
``MemoryStore``, ``SQLiteStore`` (plain and encrypted at rest), ``PostgresStore``, and
``DictStore`` below -- an independent backend written from scratch on
``textsecure.stores.protocol.UnitOfWorkStore`` (Python dicts under one lock), which shows the
protocol is implementable from its documentation. Then ``UnitOfWorkStore``'s own promises:
lost races retried, a store that keeps losing gives ``StoreError`` and changes nothing, backend
failures become ``StoreError`` with their cause."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import textsecure as ts
from textsecure import errors
from textsecure.stores import DurableStore, PostgresStore, SQLiteStore
from textsecure.stores.protocol import (
    Conflict,
    ManagedStore,
    PreKeyTable,
    StoreBackend,
    UnitOfWorkStore,
)
from textsecure.testing.conformance import Store, StoreConformance

KEY = bytes(range(32))

# -- an independent backend ---------------------------------------------------------------------

_ABSENT = object()


class DictBackend:
    """Everything one account stores, in dicts: what several ``DictStore`` objects (as several
    threads or "processes" of one application would) share. One lock serialises units of
    work; a unit's writes are journaled and undone if it raises."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.account: tuple[bytes, int] | None = None  # identity key pair, registration id
        self.sessions: dict[str, tuple[bytes | None, int]] = {}
        self.identities: dict[str, bytes] = {}
        self.prekeys: dict[str, dict[int, tuple[bytes, bool]]] = {
            "prekeys": {},
            "signed_prekeys": {},
            "kyber_prekeys": {},
        }
        self.base_keys: dict[tuple[int, bytes], bool] = {}
        self.kyber_uses: dict[tuple[int, int, bytes], bool] = {}
        self.sender_keys: dict[tuple[str, str], tuple[bytes | None, int]] = {}
        self.journal: list[tuple[MutableMapping[Any, Any], Any, Any]] | None = None

    def set(self, table: MutableMapping[Any, Any], key: Any, value: Any) -> None:
        self._remember(table, key)
        table[key] = value

    def delete(self, table: MutableMapping[Any, Any], key: Any) -> bool:
        if key not in table:
            return False
        self._remember(table, key)
        del table[key]
        return True

    def _remember(self, table: MutableMapping[Any, Any], key: Any) -> None:
        if self.journal is None:
            raise RuntimeError("a write outside a unit of work")
        self.journal.append((table, key, table.get(key, _ABSENT)))

    def undo(self) -> None:
        assert self.journal is not None
        for table, key, old in reversed(self.journal):
            if old is _ABSENT:
                table.pop(key, None)
            else:
                table[key] = old


class DictStore(UnitOfWorkStore):
    """A store on a ``DictBackend``. The first store of a backend records the account's
    identity and registration id; later ones (``DictStore(backend)``) load them."""

    def __init__(
        self,
        backend: DictBackend,
        identity: ts.IdentityKeyPair | None = None,
        registration_id: int | None = None,
        *,
        sealer: ts._native.RecordSealer | None = None,
    ) -> None:
        with backend.lock:
            if backend.account is None:
                if identity is None or registration_id is None:
                    raise errors.InvalidArgument("a new account needs an identity")
                backend.account = (bytes(identity), registration_id)
            stored, stored_id = backend.account
        super().__init__(ts.IdentityKeyPair.from_bytes(stored), stored_id, sealer=sealer)
        self.backend = backend

    @contextmanager
    def unit_of_work(self, lock_keys: Sequence[str]) -> Iterator[object]:
        b = self.backend
        with b.lock:  # one lock for everything: lock_keys are not needed
            b.journal = []
            try:
                yield b
            except BaseException:
                b.undo()
                raise
            finally:
                b.journal = None

    def load_session_row(self, address: ts.Address) -> tuple[bytes | None, int]:
        return self.backend.sessions.get(str(address), (None, 0))

    def write_session_row(
        self, address: ts.Address, expected_version: int, row: bytes | None
    ) -> bool:
        b = self.backend
        if b.sessions.get(str(address), (None, 0))[1] != expected_version:
            return False
        b.set(b.sessions, str(address), (row, expected_version + 1))
        return True

    def load_identity_row(self, address: ts.Address) -> bytes | None:
        return self.backend.identities.get(str(address))

    def write_identity_row(self, address: ts.Address, row: bytes) -> None:
        self.backend.set(self.backend.identities, str(address), row)

    def load_prekey_row(self, table: PreKeyTable, id: int) -> tuple[bytes, bool] | None:
        return self.backend.prekeys[table].get(id)

    def save_prekey_row(self, table: PreKeyTable, id: int, row: bytes, last_resort: bool) -> None:
        self.backend.set(self.backend.prekeys[table], id, (row, last_resort))

    def delete_prekey_row(self, table: PreKeyTable, id: int) -> bool:
        return self.backend.delete(self.backend.prekeys[table], id)

    def base_key_seen(self, signed_prekey_id: int, base_key: bytes) -> bool:
        return (signed_prekey_id, base_key) in self.backend.base_keys

    def insert_base_key(self, signed_prekey_id: int, base_key: bytes) -> bool:
        b = self.backend
        if (signed_prekey_id, base_key) in b.base_keys:
            return False
        b.set(b.base_keys, (signed_prekey_id, base_key), True)
        return True

    def insert_kyber_last_resort_use(
        self, kyber_prekey_id: int, signed_prekey_id: int, base_key: bytes
    ) -> bool:
        b = self.backend
        key = (kyber_prekey_id, signed_prekey_id, base_key)
        if key in b.kyber_uses:
            return False
        b.set(b.kyber_uses, key, True)
        return True

    def load_sender_key_row(
        self, sender: ts.Address, distribution: str
    ) -> tuple[bytes | None, int]:
        return self.backend.sender_keys.get((str(sender), distribution), (None, 0))

    def write_sender_key_row(
        self, sender: ts.Address, distribution: str, expected_version: int, row: bytes | None
    ) -> bool:
        b = self.backend
        key = (str(sender), distribution)
        if b.sender_keys.get(key, (None, 0))[1] != expected_version:
            return False
        b.set(b.sender_keys, key, (row, expected_version + 1))
        return True

    def session_row_addresses(self) -> Iterable[ts.Address]:
        for key, (row, _) in self.backend.sessions.items():
            if row is not None:
                name, _, device = key.rpartition(".")
                yield ts.Address(name, int(device))


# -- the kit against every store ------------------------------------------------------------------


class TestMemoryStore(StoreConformance):
    def make_store(self, identity: ts.IdentityKeyPair, registration_id: int) -> Store:
        return ts.MemoryStore(identity, registration_id)


class _Accounts:
    """Each party an account of its own in one database."""

    count = 0

    def next_account(self) -> str:
        self.count += 1
        return f"party{self.count}"


class TestSQLiteStore(StoreConformance, _Accounts):
    key: bytes | None = None

    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.path = tmp_path / "conformance.db"

    def make_store(self, identity: ts.IdentityKeyPair, registration_id: int) -> Store:
        return SQLiteStore(
            self.path,
            account=self.next_account(),
            identity=identity,
            registration_id=registration_id,
            key=self.key,
        )

    def reopen(self, store: Store) -> Store:
        assert isinstance(store, DurableStore)
        return SQLiteStore(self.path, account=store.account, key=self.key)


class TestSQLiteStoreEncrypted(TestSQLiteStore):
    key = KEY


class TestPostgresStore(StoreConformance, _Accounts):
    @pytest.fixture(autouse=True)
    def _database(self, postgres_db: str) -> None:
        self.dsn = postgres_db

    def make_store(self, identity: ts.IdentityKeyPair, registration_id: int) -> Store:
        return PostgresStore(
            self.dsn,
            account=self.next_account(),
            identity=identity,
            registration_id=registration_id,
        )

    def reopen(self, store: Store) -> Store:
        assert isinstance(store, DurableStore)
        return PostgresStore(self.dsn, account=store.account)


class TestDictStore(StoreConformance):
    sealed = False

    def make_store(self, identity: ts.IdentityKeyPair, registration_id: int) -> Store:
        return DictStore(DictBackend(), identity, registration_id, sealer=self._sealer())

    def reopen(self, store: Store) -> Store:
        assert isinstance(store, DictStore)
        return DictStore(store.backend, sealer=self._sealer())

    def _sealer(self) -> ts._native.RecordSealer | None:
        return ts._native.RecordSealer(KEY, "conformance") if self.sealed else None


class TestDictStoreSealed(TestDictStore):
    sealed = True

    def test_rows_are_sealed(self) -> None:
        alice, bob = self.acknowledged()
        assert isinstance(bob.store, DictStore)
        rows = bob.store.backend.sessions
        assert rows and all(row is not None for row, _ in rows.values())
        for row, _ in rows.values():
            assert row is not None
            with pytest.raises(errors.InvalidRecord):
                ts.SessionRecord.from_bytes(row)
        assert bytes(alice.identity.public_key) not in b"".join(
            bob.store.backend.identities.values()
        )


# -- UnitOfWorkStore's own promises ---------------------------------------------------------------


def test_protocols_describe_the_stores(tmp_path: Path) -> None:
    ikp = ts.IdentityKeyPair.generate()
    dict_store = DictStore(DictBackend(), ikp, 1)
    with SQLiteStore(tmp_path / "s.db", identity=ikp, registration_id=1) as sqlite:
        for store in (dict_store, sqlite):
            assert isinstance(store, StoreBackend) and isinstance(store, ManagedStore)
    memory = ts.MemoryStore(ikp, 1)
    assert not isinstance(memory, StoreBackend)  # run natively, without _execute
    with pytest.raises(TypeError):
        DictStore(DictBackend(), ikp, 1, sealer=KEY)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgument):
        DictStore(DictBackend(), ikp, -1)


def test_kit_hides_persistence_tests_without_reopen() -> None:
    assert TestMemoryStore.test_persistence_across_reopen is None
    assert callable(TestDictStore.test_persistence_across_reopen)
    assert callable(TestDictStoreSealed.test_persistence_across_reopen)


class RacingStore(DictStore):
    """A DictStore that loses the race ``losses`` times: between a unit's load and its write,
    a "concurrent writer" commits a new version of the session row."""

    losses = 0

    def write_session_row(
        self, address: ts.Address, expected_version: int, row: bytes | None
    ) -> bool:
        sessions = self.backend.sessions
        if self.losses and str(address) in sessions:
            self.losses -= 1
            record, version = sessions[str(address)]
            sessions[str(address)] = (record, version + 1)  # not journaled: committed
        return super().write_session_row(address, expected_version, row)


def _pair(store: UnitOfWorkStore) -> tuple[ts.MemoryStore, ts.Address, ts.Address]:
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    alice_addr, bob_addr = ts.Address("alice", 1), ts.Address("bob", 1)
    ts.SessionCipher(alice, bob_addr).process_bundle(
        store.new_bundle(1, prekey_id=1, signed_prekey_id=2)
    )
    return alice, alice_addr, bob_addr


def test_lost_races_are_retried() -> None:
    bob = RacingStore(DictBackend(), ts.IdentityKeyPair.generate(), 2)
    alice, alice_addr, bob_addr = _pair(bob)
    assert (
        ts.SessionCipher(bob, alice_addr).decrypt(
            ts.SessionCipher(alice, bob_addr).encrypt(b"hello")
        )
        == b"hello"
    )
    bob.losses = 7  # the 8th attempt wins
    message = ts.SessionCipher(alice, bob_addr).encrypt(b"second")
    assert ts.SessionCipher(bob, alice_addr).decrypt(message) == b"second"
    assert bob.losses == 0
    # A store that keeps losing gives StoreError, and changes nothing.
    message = ts.SessionCipher(alice, bob_addr).encrypt(b"third")
    bob.losses = 8
    before = bytes(bob.session(alice_addr) or b"")
    with pytest.raises(errors.StoreError, match="lost the race"):
        ts.SessionCipher(bob, alice_addr).decrypt(message)
    assert bytes(bob.session(alice_addr) or b"") == before
    assert ts.SessionCipher(bob, alice_addr).decrypt(message) == b"third"


def test_a_failed_apply_rolls_back_everything() -> None:
    """The session row is written first; a conflict on a later row (the one-time prekey
    consumed meanwhile) must undo it."""

    class PreKeyThief(DictStore):
        def delete_prekey_row(self, table: PreKeyTable, id: int) -> bool:
            super().delete_prekey_row(table, id)
            return False  # as if another unit had consumed it first

    bob = PreKeyThief(DictBackend(), ts.IdentityKeyPair.generate(), 2)
    alice, alice_addr, bob_addr = _pair(bob)
    with pytest.raises(errors.StoreError):
        ts.SessionCipher(bob, alice_addr).decrypt(
            ts.SessionCipher(alice, bob_addr).encrypt(b"hello")
        )
    assert bob.session(alice_addr) is None and bob.identity(alice_addr) is None
    assert bob.load_prekey(1) is not None
    assert bob.backend.sessions == {} and bob.backend.base_keys == {}


def test_backend_failures_are_store_errors() -> None:
    class Broken(DictStore):
        def load_session_row(self, address: ts.Address) -> tuple[bytes | None, int]:
            raise OSError("disk on fire")

    class BadVersion(DictStore):
        def load_session_row(self, address: ts.Address) -> tuple[bytes | None, int]:
            return None, -1

    for cls in (Broken, BadVersion):
        store = cls(DictBackend(), ts.IdentityKeyPair.generate(), 2)
        alice, alice_addr, bob_addr = _pair(store)
        with pytest.raises(errors.StoreError) as info:
            ts.SessionCipher(store, alice_addr).decrypt(
                ts.SessionCipher(alice, bob_addr).encrypt(b"x")
            )
        if cls is Broken:
            assert isinstance(info.value.__cause__, OSError)
        assert store.load_prekey(1) is not None


def test_conflict_raised_at_commit_is_retried() -> None:
    """A backend that validates at commit raises Conflict from unit_of_work: run again."""

    class CommitConflicts(DictStore):
        failures = 2
        runs = 0

        @contextmanager
        def unit_of_work(self, lock_keys: Sequence[str]) -> Iterator[object]:
            with super().unit_of_work(lock_keys) as tx:
                self.runs += 1
                yield tx
                if self.failures:
                    self.failures -= 1
                    raise Conflict

    store = CommitConflicts(DictBackend(), ts.IdentityKeyPair.generate(), 2)
    store.runs = 0
    dist = uuid.uuid4()
    ts.GroupCipher(store, dist).create_distribution(ts.Address("bob", 1))
    assert store.runs == 3 and store.failures == 0
    assert store.sender_key(ts.Address("bob", 1), dist) is not None
    assert len(store.backend.sender_keys) == 1
