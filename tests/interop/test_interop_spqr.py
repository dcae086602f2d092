"""SPQR (the post-quantum triple ratchet) live against libsignal-client 0.103.0, which requires
SPQR v1 for new sessions: long conversations that run through many ML-KEM Braid epochs, a
one-way burst, loss and reordering (the erasure code must still complete epochs), and session
records moved between the two libraries in both directions."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import textsecure as ts
from test_interop_sessions import (
    ROLES,
    TS_NAME,
    Conv,
    Msg,
    NewStore,
    PeerSide,
    Spawn,
    TsSide,
    spawn_peers,
)

pytestmark = pytest.mark.interop


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    yield from spawn_peers()


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def spqr_epoch(msg: Msg) -> int:
    """The SPQR epoch of a message (field 5: 0x01 ‖ varint epoch ‖ varint index ‖ ...)."""
    return message_epoch(msg.type, msg.body)


def message_epoch(type: int, body: bytes) -> int:
    """``spqr_epoch`` of a message given as (type, body)."""
    parsed = ts.parse_message(type, body)
    inner = parsed.message if isinstance(parsed, ts.PreKeySignalMessage) else parsed
    assert isinstance(inner, ts.SignalMessage)
    field = inner.pq_ratchet
    assert field and field[0] == 0x01, "every message carries SPQR v1"
    return _varint(field, 1)[0]


def conversation(spawn: Spawn, new_store: NewStore, role: str) -> Conv:
    c = Conv(
        TsSide(new_store), PeerSide(spawn("ls0103")), ts_initiates=role == "ts_initiates", version=4
    )
    c.start()
    return c


@pytest.mark.parametrize("role", ROLES)
def test_300_ping_pong_turns_run_several_epochs(
    spawn: Spawn, new_store: NewStore, role: str
) -> None:
    c = conversation(spawn, new_store, role)
    epochs = set()
    for _ in range(300):
        for side in (c.ts, c.peer):
            m = c.send(side)
            epochs.add(spqr_epoch(m))
            c.deliver(m)
    assert max(epochs) >= 5, f"only epochs {sorted(epochs)}"


@pytest.mark.parametrize("role", ROLES)
def test_long_one_way_burst_then_replies(spawn: Spawn, new_store: NewStore, role: str) -> None:
    c = conversation(spawn, new_store, role)
    for sender in (c.ts, c.peer):
        burst = [c.send(sender) for _ in range(600)]
        for m in burst:
            c.deliver(m)
        c.ping_pong(20, first=c.other(sender))
    c.check_ts_session()


@pytest.mark.parametrize("role", ROLES)
def test_twenty_percent_lost_rest_shuffled(spawn: Spawn, new_store: NewStore, role: str) -> None:
    """Each round both sides send a batch; 20% of each batch is lost at random and the rest is
    delivered shuffled. The ML-KEM Braid must still complete epochs (its erasure-coded chunks
    survive the loss) and every delivered message decrypts exactly once."""
    c = conversation(spawn, new_store, role)
    rng = random.Random(20261128)
    first_epochs = {spqr_epoch(c.send(s)) for s in (c.ts, c.peer)}
    epochs: set[int] = set()
    delivered = lost = 0
    for _ in range(40):
        for sender in (c.ts, c.peer):
            batch = [c.send(sender) for _ in range(10)]
            epochs.update(spqr_epoch(m) for m in batch)
            kept = [m for m in batch if rng.random() >= 0.2]
            lost += len(batch) - len(kept)
            rng.shuffle(kept)
            for m in kept:
                c.deliver(m)
            delivered += len(kept)
    assert lost > 100 and delivered > 500
    assert max(epochs) >= max(first_epochs) + 3, f"epochs {sorted(epochs)}"
    c.ping_pong(3)


def test_session_exported_from_libsignal_continues_in_textsecure(
    spawn: Spawn, new_store: NewStore
) -> None:
    """Two libsignal 0.103 parties talk; one's record (SPQR state included) is imported into
    textsecure, which continues the conversation in both directions."""
    a = spawn("ls0103")
    b = spawn("ls0103")
    a.create("alice", 1)
    b_identity = b.create("bob", 1)
    a.process_bundle("bob", 1, b.bundle(prekey_id=1, signed_prekey_id=1, kyber=True))
    for i in range(30):
        t, body = a.encrypt("bob", 1, b"a%d" % i)
        assert b.decrypt("alice", 1, t, body) == b"a%d" % i
        t, body = b.encrypt("alice", 1, b"b%d" % i)
        assert a.decrypt("bob", 1, t, body) == b"b%d" % i
    record = a.session_record("bob", 1)
    imported = ts.SessionRecord.from_bytes(record)
    assert bytes(imported) == record and imported.version == 4
    store = new_store(ts.IdentityKeyPair.generate(), 77)
    bob = ts.Address("bob", 1)
    store.save_session(bob, imported)
    store.trust(bob, b_identity)
    cipher = ts.SessionCipher(store, bob)
    for i in range(30):
        m = cipher.encrypt(b"ts%d" % i)
        assert b.decrypt("alice", 1, int(m.type), bytes(m)) == b"ts%d" % i
        t, body = b.encrypt("alice", 1, b"back%d" % i)
        assert cipher.decrypt(ts.parse_message(t, body)) == b"back%d" % i


def test_session_exported_from_textsecure_continues_in_libsignal(
    spawn: Spawn, new_store: NewStore
) -> None:
    """textsecure talks to libsignal 0.103; textsecure's record is imported into another
    libsignal instance, which continues the conversation in both directions."""
    c = Conv(TsSide(new_store), PeerSide(spawn("ls0103")), ts_initiates=True, version=4)
    c.start()
    c.ping_pong(30)
    record = c.ts.store.session(c.ts.address(c.peer.name))
    assert record is not None
    heir = spawn("ls0103")
    heir.create(TS_NAME, 1)
    heir.trust(c.peer.name, 1, c.peer.identity_key())
    heir.import_session(c.peer.name, 1, bytes(record))
    for i in range(30):
        t, body = heir.encrypt(c.peer.name, 1, b"heir%d" % i)
        assert c.peer.peer.decrypt(TS_NAME, 1, t, body) == b"heir%d" % i
        t, body = c.peer.peer.encrypt(TS_NAME, 1, b"reply%d" % i)
        assert heir.decrypt(c.peer.name, 1, t, body) == b"reply%d" % i
