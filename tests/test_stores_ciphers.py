"""Durable stores driven by the real ciphers (native ``Operation`` / ``Snapshot`` /
``RecordSealer``): conversations that survive a reopen, replays, the exactly-once inbox,
cipher operations inside application transactions, sealed records, a connection pool."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import textsecure as ts
from textsecure import _native, errors
from textsecure.stores import DurableStore, PostgresStore, SQLiteStore

pytestmark = pytest.mark.skipif(
    not all(n in vars(_native) for n in ("Snapshot", "Operation", "RecordSealer")),
    reason="this build of textsecure._native has no Snapshot / Operation / RecordSealer yet",
)

KEY = bytes(range(32))
ALICE = ts.Address("alice", 1)
BOB = ts.Address("bob", 1)


class Opener:
    def __init__(self, kind: str, target: str) -> None:
        self.kind = kind
        self.target = target
        self.opened: list[DurableStore] = []

    def __call__(self, **kw: Any) -> DurableStore:
        s: DurableStore = (
            SQLiteStore(self.target, **kw)
            if self.kind == "sqlite"
            else PostgresStore(self.target, **kw)
        )
        self.opened.append(s)
        return s


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "sqlite":
        opener = Opener("sqlite", str(tmp_path / "s.db"))
    else:
        opener = Opener("postgres", request.getfixturevalue("postgres_db"))
    yield opener
    for s in opener.opened:
        s.close()


def _cipher(store: Any, remote: ts.Address) -> ts.SessionCipher:
    return ts.SessionCipher(store, remote)


def _first_message(bob: DurableStore) -> tuple[ts.MemoryStore, Any]:
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=1)
    to_bob = _cipher(alice, BOB)
    to_bob.process_bundle(bundle)
    return alice, to_bob.encrypt(b"hello")


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "sealed"])
def test_conversation_survives_reopen(open_store: Opener, key: bytes | None) -> None:
    bob = open_store(account="bob", key=key)
    alice, first = _first_message(bob)
    assert _cipher(bob, ALICE).decrypt(first) == b"hello"
    assert bob.load_prekey(1) is None  # the one-time prekey is consumed
    assert bob.identity(ALICE) == alice.identity_key_pair.public_key
    bob.close()
    bob = open_store(account="bob", key=key)
    reply = _cipher(bob, ALICE).encrypt(b"hi")
    assert _cipher(alice, BOB).decrypt(reply) == b"hi"
    for i in range(5):
        msg = _cipher(alice, BOB).encrypt(b"n%d" % i)
        assert _cipher(bob, ALICE).decrypt(msg) == b"n%d" % i
    # a replay fails and changes nothing
    session = bytes(bob.session(ALICE) or b"")
    with pytest.raises(errors.TextSecureError):
        _cipher(bob, ALICE).decrypt(first)
    assert bytes(bob.session(ALICE) or b"") == session


def test_inbox_exactly_once(open_store: Opener) -> None:
    bob = open_store(account="bob")
    alice, first = _first_message(bob)
    item = bob.inbox_decrypt(ALICE, first)
    assert item.plaintext == b"hello" and item.address == ALICE
    session = bytes(bob.session(ALICE) or b"")
    again = bob.inbox_decrypt(ALICE, first)  # redelivery: no crypto, same answer
    assert again == item
    assert bytes(bob.session(ALICE) or b"") == session
    assert bob.inbox_pending() == [item]
    assert bob.inbox_ack(item.hash)
    assert bob.inbox_pending() == []
    with pytest.raises(errors.DuplicateMessage):
        bob.inbox_decrypt(ALICE, first)
    # a bad message leaves no inbox row and no state change
    second = _cipher(alice, BOB).encrypt(b"two")
    assert isinstance(second, ts.PreKeySignalMessage)
    inner = bytes(second.message)
    tampered = ts.SignalMessage.from_bytes(inner[:-1] + bytes([inner[-1] ^ 1]))  # bad MAC
    with pytest.raises(errors.TextSecureError):
        bob.inbox_decrypt(ALICE, tampered)
    assert bob.inbox_pending() == []
    assert bob.inbox_decrypt(ALICE, second).plaintext == b"two"


def test_cipher_operations_in_a_transaction(open_store: Opener) -> None:
    bob = open_store(account="bob")
    alice, first = _first_message(bob)
    with pytest.raises(RuntimeError), bob.transaction():
        assert _cipher(bob, ALICE).decrypt(first) == b"hello"
        raise RuntimeError
    assert bob.session(ALICE) is None and bob.load_prekey(1) is not None
    with bob.transaction():
        assert _cipher(bob, ALICE).decrypt(first) == b"hello"
        with pytest.raises(errors.TextSecureError):
            _cipher(bob, ALICE).decrypt(first)  # fails alone
        reply = _cipher(bob, ALICE).encrypt(b"hi")
    assert _cipher(alice, BOB).decrypt(reply) == b"hi"


def test_group_messages(open_store: Opener) -> None:
    bob = open_store(account="bob", key=KEY)
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    dist = uuid.uuid4()
    skdm = ts.GroupCipher(alice, dist).create_distribution(ALICE)
    group: Any = ts.GroupCipher(bob, dist)
    group.process_distribution(ALICE, skdm)
    for i in range(3):
        msg = ts.GroupCipher(alice, dist).encrypt(ALICE, b"g%d" % i)
        assert group.decrypt(ALICE, msg) == b"g%d" % i
    assert bob.sender_key(ALICE, dist) is not None


def test_pool_and_threads(postgres_db: str) -> None:
    from psycopg_pool import ConnectionPool

    with ConnectionPool(postgres_db, min_size=1, max_size=4, open=True) as pool:
        bob = PostgresStore(pool, account="bob")
        peers = []
        for i in range(4):
            alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), i + 1)
            bundle = bob.new_bundle(1, prekey_id=i + 1, signed_prekey_id=i + 1)
            to_bob = _cipher(alice, BOB)
            to_bob.process_bundle(bundle)
            peers.append((ts.Address(f"peer{i}", 1), to_bob))
        failures: list[BaseException] = []

        def run(addr: ts.Address, to_bob: ts.SessionCipher) -> None:
            try:
                for n in range(10):
                    got = _cipher(bob, addr).decrypt(to_bob.encrypt(b"m%d" % n))
                    assert got == b"m%d" % n
            except BaseException as e:
                failures.append(e)

        threads = [threading.Thread(target=run, args=p) for p in peers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        bob.close()
        assert not pool.closed  # the application's pool stays open


def test_two_stores_one_account_race(open_store: Opener) -> None:
    """Two store objects (two connections, as two processes would have) decrypt messages of
    one session at once: locks and version checks keep every message and the ratchet."""
    first_store = open_store(account="bob")
    alice, first = _first_message(first_store)
    assert _cipher(first_store, ALICE).decrypt(first) == b"hello"
    _cipher(alice, BOB).decrypt(_cipher(first_store, ALICE).encrypt(b"ack"))
    second_store = open_store(account="bob")
    messages = [_cipher(alice, BOB).encrypt(b"m%d" % i) for i in range(30)]
    got: dict[int, bytes] = {}
    failures: list[BaseException] = []

    def run(store: DurableStore, parity: int) -> None:
        try:
            for i in range(parity, len(messages), 2):
                got[i] = _cipher(store, ALICE).decrypt(messages[i])
        except BaseException as e:
            failures.append(e)

    threads = [
        threading.Thread(target=run, args=(first_store, 0)),
        threading.Thread(target=run, args=(second_store, 1)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert got == {i: b"m%d" % i for i in range(30)}
