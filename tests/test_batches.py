"""Batches: ``decrypt_many`` / ``encrypt_many`` and the group ciphers' ``*_many`` on every
store kind. Results come back in order, one per item; a failed item changes nothing and does
not hold the others back; items of one session run in batch order; a batch equals the same
calls made one by one."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from textsecure import (
    Address,
    GroupCipher,
    IdentityKeyPair,
    LegacyGroupCipher,
    MemoryStore,
    PreKeySignalMessage,
    SessionCipher,
    SignalMessage,
    decrypt_many,
    encrypt_fanout,
    encrypt_many,
    errors,
)

BOB = Address("bob", 1)
Store = Any
T = TypeVar("T")


def _ok(result: T | errors.TextSecureError) -> T:
    """A batch result that must be a value, not an exception."""
    assert not isinstance(result, errors.TextSecureError), result
    return result


def _mem() -> MemoryStore:
    return MemoryStore(IdentityKeyPair.generate(), 7)


def _senders(
    bob: Store, n: int, *, kyber: bool = False, first: int = 0
) -> list[tuple[Any, Address]]:
    """``n`` senders (MemoryStores) with a session to ``bob`` from bundles with one-time
    prekeys ``first + 1 ...``; nothing sent yet."""
    out = []
    for i in range(first, first + n):
        alice = _mem()
        addr = Address(f"alice-{i}", 1)
        bundle = bob.new_bundle(
            1,
            prekey_id=i + 1,
            signed_prekey_id=i + 1,
            kyber_prekey_id=(i + 1) if kyber else None,
            kyber=kyber,
        )
        SessionCipher(alice, BOB).process_bundle(bundle)
        out.append((alice, addr))
    return out


def _session_bytes(store: Store, addr: Address) -> bytes | None:
    record = store.session(addr)
    return None if record is None else bytes(record)


@pytest.mark.parametrize("kyber", [False, True], ids=["v3", "v4"])
def test_decrypt_many_prekey_and_in_chain_in_order(
    new_store: Callable[..., Store], kyber: bool
) -> None:
    bob = new_store()
    senders = _senders(bob, 6, kyber=kyber)
    items = []
    expected = []
    for i, (alice, addr) in enumerate(senders):
        c = SessionCipher(alice, BOB)
        for k in range(3):
            pt = f"{i}/{k}".encode()
            items.append((addr, c.encrypt(pt)))
            expected.append(pt)
    # interleave sessions: the items of one session stay in their order
    order = sorted(range(len(items)), key=lambda j: (j % 3, j))
    batch = [items[j] for j in order]
    assert isinstance(batch[0][1], PreKeySignalMessage)
    results = decrypt_many(bob, batch)
    assert results == [expected[j] for j in order]
    # the sessions are live: bob answers, each alice reads it
    replies = encrypt_many(bob, [(addr, b"re " + addr.name.encode()) for _, addr in senders])
    for (alice, addr), reply in zip(senders, replies, strict=True):
        assert isinstance(reply, SignalMessage)
        assert SessionCipher(alice, BOB).decrypt(reply) == b"re " + addr.name.encode()


def test_decrypt_many_out_of_order_within_a_session(new_store: Callable[..., Store]) -> None:
    bob = new_store()
    [(alice, addr)] = _senders(bob, 1)
    c = SessionCipher(alice, BOB)
    first = c.encrypt(b"m0")
    assert decrypt_many(bob, [(addr, first)]) == [b"m0"]
    msgs = [c.encrypt(f"m{k}".encode()) for k in range(1, 6)]
    results = decrypt_many(bob, [(addr, msgs[k]) for k in (3, 0, 4, 2, 1)])
    assert results == [b"m4", b"m1", b"m5", b"m3", b"m2"]


def test_a_failed_item_changes_nothing_and_holds_nothing_back(
    new_store: Callable[..., Store],
) -> None:
    bob = new_store()
    senders = _senders(bob, 3)
    (a0, x0), (a1, x1), (a2, x2) = senders
    opened = [SessionCipher(a, BOB).encrypt(b"hi") for a, _ in senders]
    assert (
        decrypt_many(bob, [(x, m) for (_, x), m in zip(senders, opened, strict=True)])
        == [b"hi"] * 3
    )
    m0 = SessionCipher(a0, BOB).encrypt(b"zero")
    m1 = SessionCipher(a1, BOB).encrypt(b"one")
    m2 = SessionCipher(a2, BOB).encrypt(b"two")
    tampered = bytearray(bytes(m1))
    tampered[-3] ^= 1
    before = _session_bytes(bob, x1)
    results = decrypt_many(
        bob,
        [
            (x0, m0),
            (x1, (2, bytes(tampered))),  # bad MAC
            (x2, (2, b"\x33garbage")),  # does not parse
            (x2, m2),
            (x0, m0),  # a duplicate of the first item
        ],
    )
    assert results[0] == b"zero"
    assert isinstance(results[1], errors.InvalidMessage)
    assert isinstance(results[2], errors.InvalidMessage)
    assert results[3] == b"two"
    assert isinstance(results[4], errors.DuplicateMessage)
    assert _session_bytes(bob, x1) == before  # the failed item wrote nothing
    assert decrypt_many(bob, [(x1, m1)]) == [b"one"]  # and the real message still decrypts


def test_no_session_and_untrusted_identity_are_per_item(new_store: Callable[..., Store]) -> None:
    bob = new_store()
    [(alice, addr)] = _senders(bob, 1)
    ok = SessionCipher(alice, BOB).encrypt(b"ok")
    stranger = Address("nobody", 1)
    results = encrypt_many(bob, [(stranger, b"x"), (addr, b"y")])
    assert isinstance(results[0], errors.NoSession)
    assert isinstance(results[1], errors.NoSession)  # bob has no session with alice yet
    assert decrypt_many(bob, [(addr, ok)]) == [b"ok"]
    # alice's identity changes: a PreKey message from the impostor is refused for that item
    impostor = _mem()
    bundle = bob.new_bundle(1, prekey_id=99, signed_prekey_id=99, kyber=False)
    SessionCipher(impostor, BOB).process_bundle(bundle)
    bad = SessionCipher(impostor, BOB).encrypt(b"evil")
    good = SessionCipher(alice, BOB).encrypt(b"good")
    before = _session_bytes(bob, addr)
    decrypted = decrypt_many(bob, [(addr, bad), (addr, good)])
    assert isinstance(decrypted[0], errors.UntrustedIdentity)
    assert decrypted[0].address == addr
    assert decrypted[1] == b"good"
    assert _session_bytes(bob, addr) != before


def test_two_prekey_messages_for_one_one_time_prekey(new_store: Callable[..., Store]) -> None:
    """Two senders race for one one-time prekey inside one batch: the first in batch order
    wins, the second fails on its own (never a lost-race loop, never two sessions)."""
    bob = new_store()
    bundle = bob.new_bundle(1, prekey_id=5, signed_prekey_id=5, kyber=False)
    a1, a2 = _mem(), _mem()
    x1, x2 = Address("one", 1), Address("two", 1)
    SessionCipher(a1, BOB).process_bundle(bundle)
    SessionCipher(a2, BOB).process_bundle(bundle)
    m1 = SessionCipher(a1, BOB).encrypt(b"first")
    m2 = SessionCipher(a2, BOB).encrypt(b"second")
    results = decrypt_many(bob, [(x2, m2), (x1, m1)])
    assert results[0] == b"second"
    assert isinstance(results[1], errors.TextSecureError)
    assert bob.session(x1) is None
    # a replay of the winner in a later batch is a duplicate
    again = decrypt_many(bob, [(x2, m2)])
    assert isinstance(again[0], errors.TextSecureError)


def test_replayed_prekey_message_inside_one_batch(new_store: Callable[..., Store]) -> None:
    bob = new_store()
    bundle = bob.new_bundle(1, prekey_id=None, signed_prekey_id=3, kyber=False, one_time=False)
    alice = _mem()
    SessionCipher(alice, BOB).process_bundle(bundle)
    m = SessionCipher(alice, BOB).encrypt(b"once")
    addr = Address("alice", 1)
    other = Address("mallory", 1)  # the same envelope replayed under another address
    results = decrypt_many(bob, [(addr, m), (other, m), (addr, m)])
    assert results[0] == b"once"
    assert isinstance(results[1], errors.TextSecureError)
    assert isinstance(results[2], errors.TextSecureError)
    assert bob.session(other) is None


def test_encrypt_many_orders_counters(new_store: Callable[..., Store]) -> None:
    alice = new_store()
    bob = _mem()
    bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=False)
    SessionCipher(alice, BOB).process_bundle(bundle)
    out = encrypt_many(alice, [(BOB, f"n{k}".encode()) for k in range(5)])
    assert all(isinstance(m, PreKeySignalMessage) for m in out)
    counters = [m.message.counter for m in out if isinstance(m, PreKeySignalMessage)]
    assert counters == [0, 1, 2, 3, 4]
    sent = [m for m in out if not isinstance(m, errors.TextSecureError)]
    plaintexts = [SessionCipher(bob, Address("alice", 1)).decrypt(m) for m in sent]
    assert plaintexts == [f"n{k}".encode() for k in range(5)]


def test_batch_equals_one_by_one() -> None:
    """The same messages decrypted by a batch and one call at a time give the same results."""
    bob1 = _mem()
    bob2 = MemoryStore(bob1.identity_key_pair, 7)
    msgs: list[tuple[Address, Any]] = []
    for i in range(8):
        alice = _mem()
        addr = Address(f"a{i}", 1)
        bundle = bob1.new_bundle(1, prekey_id=i + 1, signed_prekey_id=i + 1, kyber=False)
        bob2.save_prekey(bob1.load_prekey(i + 1))  # type: ignore[arg-type]
        bob2.save_signed_prekey(bob1.load_signed_prekey(i + 1))  # type: ignore[arg-type]
        c = SessionCipher(alice, BOB)
        c.process_bundle(bundle)
        for k in range(4):
            msgs.append((addr, c.encrypt(f"{i}:{k}".encode())))
    # duplicates and a shuffle
    batch = msgs[::2] + msgs[1::2] + msgs[:3]
    one_by_one: list[Any] = []
    for addr, m in batch:
        try:
            one_by_one.append(SessionCipher(bob2, addr).decrypt(m))
        except errors.TextSecureError as e:
            one_by_one.append(type(e))
    batched = [r if isinstance(r, bytes) else type(r) for r in decrypt_many(bob1, batch)]
    assert batched == one_by_one
    assert sorted(a.name for a in bob1.session_addresses()) == sorted(
        a.name for a in bob2.session_addresses()
    )


def test_bad_items_raise_before_anything_runs(new_store: Callable[..., Store]) -> None:
    bob = new_store()
    [(alice, addr)] = _senders(bob, 1)
    m = SessionCipher(alice, BOB).encrypt(b"x")
    with pytest.raises(TypeError):
        decrypt_many(bob, [(addr, m), ("not an address", m)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        decrypt_many(bob, [(addr, m), (addr, 42)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        encrypt_many(bob, [(addr,)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        decrypt_many(object(), [])  # type: ignore[arg-type]
    assert bob.session(addr) is None  # the first (valid) item did not run
    assert decrypt_many(bob, []) == []
    assert decrypt_many(bob, iter([(addr, m)])) == [b"x"]


def test_groups_many(new_store: Callable[..., Store]) -> None:
    store = new_store()
    dist = uuid.uuid4()
    senders = [Address(f"s{i}", 1) for i in range(5)]
    sender_stores = [_mem() for _ in senders]
    gc_store = GroupCipher(store, dist)
    for s, st in zip(senders, sender_stores, strict=True):
        gc_store.process_distribution(s, GroupCipher(st, dist).create_distribution(s))
    items: list[tuple[Address, Any]] = []
    for s, st in zip(senders, sender_stores, strict=True):
        sent = [
            _ok(m)
            for m in GroupCipher(st, dist).encrypt_many(
                [(s, f"{s.name}:{k}".encode()) for k in range(3)]
            )
        ]
        assert [m.iteration for m in sent] == [0, 1, 2]
        items += [(s, m) for m in sent]
    items.append(items[0])  # a duplicate
    results = gc_store.decrypt_many(items)
    assert results[:-1] == [f"{s.name}:{k}".encode() for s in senders for k in range(3)]
    assert isinstance(results[-1], errors.DuplicateMessage)
    # our own sender key, several messages in one batch
    me = Address("me", 1)
    dm = gc_store.create_distribution(me)
    peer = _mem()
    GroupCipher(peer, dist).process_distribution(me, dm)
    out = gc_store.encrypt_many([(me, b"a"), (me, b"b"), (Address("nokey", 1), b"c")])
    assert isinstance(out[2], errors.NoSenderKey)
    assert GroupCipher(peer, dist).decrypt_many([(me, _ok(out[1])), (me, _ok(out[0]))]) == [
        b"b",
        b"a",
    ]


def test_legacy_groups_many(new_store: Callable[..., Store]) -> None:
    store = new_store()
    sender, st = Address("s", 1), _mem()
    LegacyGroupCipher(store, "g1").process_distribution(
        sender, LegacyGroupCipher(st, "g1").create_distribution(sender)
    )
    sent = [
        _ok(m) for m in LegacyGroupCipher(st, "g1").encrypt_many([(sender, b"x"), (sender, b"y")])
    ]
    results = LegacyGroupCipher(store, "g1").decrypt_many(
        [(sender, bytes(sent[1])), (sender, b"\x33junk"), (sender, sent[0])]
    )
    assert results[0] == b"y"
    assert isinstance(results[1], errors.InvalidMessage)
    assert results[2] == b"x"


def test_fanout_still_one_result_per_peer(new_store: Callable[..., Store]) -> None:
    alice = new_store()
    peers = []
    for i in range(6):
        bob = _mem()
        addr = Address(f"p{i}", 1)
        bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=False)
        if i != 3:
            SessionCipher(alice, addr).process_bundle(bundle)
        peers.append((bob, addr))
    out = encrypt_fanout(alice, [a for _, a in peers], b"all")
    for i, (bob, addr) in enumerate(peers):
        if i == 3:
            assert isinstance(out[addr], errors.NoSession)
        else:
            msg = out[addr]
            assert isinstance(msg, PreKeySignalMessage)
            assert SessionCipher(bob, Address("alice", 1)).decrypt(msg) == b"all"


def test_durable_batches_commit_per_limit(new_store: Callable[..., Store]) -> None:
    bob = new_store()
    senders = _senders(bob, 3)
    items = []
    for i, (alice, addr) in enumerate(senders):
        c = SessionCipher(alice, BOB)
        items += [(addr, c.encrypt(f"{i}.{k}".encode())) for k in range(4)]
    if hasattr(bob, "account"):  # durable: the session of each sender spans units of work
        bob._batch_limit = 5
    assert decrypt_many(bob, items) == [f"{i}.{k}".encode() for i in range(3) for k in range(4)]


def test_threads_share_sessions_without_forking() -> None:
    """Threads decrypt overlapping batches on one MemoryStore: every message decrypts exactly
    once, whichever thread gets it; the rest are duplicates."""
    bob = _mem()
    senders = _senders(bob, 12)
    msgs = []
    for alice, addr in senders:
        c = SessionCipher(alice, BOB)
        msgs += [(addr, c.encrypt(b"%s %d" % (addr.name.encode(), k))) for k in range(10)]
    got: list[list[Any]] = [[] for _ in range(4)]

    def work(t: int) -> None:
        for start in range(0, len(msgs), 17):
            got[t] += decrypt_many(bob, msgs[start : start + 17])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    plaintexts = [r for g in got for r in g if isinstance(r, bytes)]
    assert sorted(plaintexts) == sorted(
        b"%s %d" % (a.name.encode(), k) for _, a in senders for k in range(10)
    )
    others = [r for g in got for r in g if not isinstance(r, bytes)]
    assert len(others) == 3 * len(msgs)
    assert all(isinstance(r, errors.DuplicateMessage) for r in others)


@pytest.mark.parametrize("key", [None, b"k" * 32], ids=["clear", "sealed"])
def test_a_damaged_session_row_fails_only_its_items(tmp_path: Any, key: bytes | None) -> None:
    """A stored session row that does not open or parse fails the batch items of that
    session with InvalidRecord; the other sessions of the batch go ahead."""
    import sqlite3

    from textsecure import SQLiteStore

    path = str(tmp_path / "bob.db")
    bob = SQLiteStore(path, account="bob", key=key)
    try:
        senders = _senders(bob, 3)
        first = [(addr, SessionCipher(a, BOB).encrypt(b"hi")) for a, addr in senders]
        assert decrypt_many(bob, first) == [b"hi"] * 3
        items = [(addr, SessionCipher(a, BOB).encrypt(b"next")) for a, addr in senders]
        damaged = senders[1][1].canonical()
        with sqlite3.connect(path) as db:
            n = db.execute(
                "UPDATE sessions SET record = ? WHERE account = 'bob' AND address = ?",
                (b"\x0a\x05junk!", str(damaged)),
            ).rowcount
        assert n == 1
        results = decrypt_many(bob, items)
        assert results[0] == b"next"
        assert isinstance(results[1], errors.InvalidRecord)
        assert results[2] == b"next"
        # the one-by-one call reports the same
        with pytest.raises(errors.InvalidRecord):
            SessionCipher(bob, damaged).decrypt(items[1][1])
    finally:
        bob.close()
