"""Live interop of textsecure's sender keys with real libraries.

* Current format against @signalapp/libsignal-client (0.103.0 is the one that matters; 0.72.1
  and 0.90.0 run the same scenarios when installed): a libsignal sender with two textsecure
  receivers, and a textsecure sender with two libsignal receivers (two peer processes).
* WhatsApp-era format against python-axolotl 0.2.3 (`AxolotlPeer.legacy_group_*`), both
  directions, the same scenarios.

Each scenario: the distribution message goes from the sender to both receivers, then 500
group messages; every receiver gets its own shuffle with 10% of the messages lost, must
decrypt every delivered one, and must refuse a redelivered one as a duplicate. The
distribution message travels as raw bytes (the 1:1 layer that would carry it is tested
elsewhere). Peers that are absent skip with the reason. textsecure's parties keep their state
in the store the ``new_store`` fixture makes (MemoryStore, SQLiteStore, PostgresStore).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from typing import Protocol

import pytest
import textsecure as ts
from peers import AxolotlPeer, NodePeer, PeerError, require_axolotl, require_node_lib
from support import Store, StoreFactory
from textsecure import errors

pytestmark = pytest.mark.interop

N_MESSAGES = 500
LOSS = 0.10
GROUP_ID = "120363359954924594@g.us"
CURRENT_LIBS = ["ls0103", "ls090", "ls072"]
ALICE = ("alice", 1)


class Receiver(Protocol):
    name: str

    def process(self, skdm: bytes) -> None: ...

    def decrypt(self, body: bytes) -> bytes: ...

    def is_duplicate_error(self, e: Exception) -> bool: ...


def _plaintext(i: int) -> bytes:
    return b"group message #%d " % i + bytes(random.Random(i).randrange(256) for _ in range(i % 90))


def _deliver(sent: list[tuple[bytes, bytes]], receivers: list[Receiver], seed: int) -> None:
    """Each receiver: its own shuffle, 10% lost; every delivered message must decrypt; then a
    redelivery must be refused as a duplicate."""
    for k, r in enumerate(receivers):
        rng = random.Random(seed * 100 + k)
        delivered = [m for m in sent if rng.random() >= LOSS]
        rng.shuffle(delivered)
        assert len(delivered) < len(sent)
        for plaintext, body in delivered:
            assert r.decrypt(body) == plaintext, r.name
        for _, body in delivered[:3]:
            with pytest.raises(Exception) as e:  # a peer- or textsecure-specific error
                r.decrypt(body)
            assert r.is_duplicate_error(e.value), f"{r.name}: {e.value!r}"


# -- textsecure as a receiver / sender ---------------------------------------------------------


class TsReceiver:
    def __init__(self, new_store: StoreFactory, name: str, key: uuid.UUID | str) -> None:
        self.name = f"textsecure:{name}"
        self.store: Store = new_store(ts.IdentityKeyPair.generate(), 7)
        self.key = key
        self.sender = ts.Address(*ALICE)

    def process(self, skdm: bytes) -> None:
        if isinstance(self.key, str):
            ts.LegacyGroupCipher(self.store, self.key).process_distribution(self.sender, skdm)
        else:
            message = ts.SenderKeyDistributionMessage.from_bytes(skdm)
            assert message.distribution_id == self.key
            ts.GroupCipher(self.store, self.key).process_distribution(self.sender, message)

    def decrypt(self, body: bytes) -> bytes:
        if isinstance(self.key, str):
            return ts.LegacyGroupCipher(self.store, self.key).decrypt(self.sender, body)
        return ts.GroupCipher(self.store, self.key).decrypt(
            self.sender, ts.SenderKeyMessage.from_bytes(body)
        )

    def is_duplicate_error(self, e: Exception) -> bool:
        return isinstance(e, errors.DuplicateMessage)


class PeerReceiver:
    def __init__(self, peer: NodePeer | AxolotlPeer, key: uuid.UUID | str) -> None:
        self.peer = peer
        self.name = f"{peer.lib}:{peer.version}"
        self.key = key

    def process(self, skdm: bytes) -> None:
        if isinstance(self.peer, AxolotlPeer):
            assert isinstance(self.key, str)
            self.peer.legacy_group_process_distribution(*ALICE, self.key, skdm)
        else:
            self.peer.group_process_distribution(*ALICE, skdm)

    def decrypt(self, body: bytes) -> bytes:
        if isinstance(self.peer, AxolotlPeer):
            assert isinstance(self.key, str)
            return self.peer.legacy_group_decrypt(*ALICE, self.key, body)
        return self.peer.group_decrypt(*ALICE, body)

    def is_duplicate_error(self, e: Exception) -> bool:
        return isinstance(e, PeerError) and e.kind == "duplicate"


Spawn = Callable[[str], NodePeer | AxolotlPeer]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    started: list[NodePeer | AxolotlPeer] = []

    def make(lib: str) -> NodePeer | AxolotlPeer:
        peer: NodePeer | AxolotlPeer
        if lib == "axolotl":
            require_axolotl()
            peer = AxolotlPeer()
        else:
            require_node_lib(lib)
            peer = NodePeer(lib)
        started.append(peer)
        return peer

    yield make
    for p in started:
        p.close()


# -- current format: libsignal-client ----------------------------------------------------------


@pytest.mark.parametrize("lib", CURRENT_LIBS)
def test_libsignal_sender_two_textsecure_receivers(
    spawn: Spawn, new_store: StoreFactory, lib: str
) -> None:
    sender = spawn(lib)
    assert isinstance(sender, NodePeer)
    sender.create(*ALICE)
    dist = uuid.uuid4()
    skdm = sender.group_create_distribution(dist)
    receivers: list[Receiver] = [
        TsReceiver(new_store, "bob", dist),
        TsReceiver(new_store, "carol", dist),
    ]
    for r in receivers:
        r.process(skdm)
    sent = [(_plaintext(i), sender.group_encrypt(dist, _plaintext(i))) for i in range(N_MESSAGES)]
    for _, body in sent:
        m = ts.SenderKeyMessage.from_bytes(body)
        assert m.distribution_id == dist and body[0] == 0x33
    assert [ts.SenderKeyMessage.from_bytes(b).iteration for _, b in sent] == list(range(N_MESSAGES))
    _deliver(sent, receivers, seed=1)

    # The sender rotates its key (a new distribution id is a new sender key in libsignal):
    # the receivers take the new distribution while the old one still works.
    dist2 = uuid.uuid4()
    skdm2 = sender.group_create_distribution(dist2)
    for r in receivers:
        assert isinstance(r, TsReceiver)
        message = ts.SenderKeyDistributionMessage.from_bytes(skdm2)
        ts.GroupCipher(r.store, dist2).process_distribution(r.sender, message)
        body = sender.group_encrypt(dist2, b"rotated")
        assert (
            ts.GroupCipher(r.store, dist2).decrypt(r.sender, ts.SenderKeyMessage.from_bytes(body))
            == b"rotated"
        )


@pytest.mark.parametrize("lib", CURRENT_LIBS)
def test_textsecure_sender_two_libsignal_receivers(
    spawn: Spawn, new_store: StoreFactory, lib: str
) -> None:
    peers = [spawn(lib), spawn(lib)]
    for i, p in enumerate(peers):
        assert isinstance(p, NodePeer)
        p.create(f"receiver{i}", 1)
    store = new_store(ts.IdentityKeyPair.generate(), 5)
    me = ts.Address(*ALICE)
    dist = uuid.uuid4()
    cipher = ts.GroupCipher(store, dist)
    skdm = bytes(cipher.create_distribution(me))
    receivers: list[Receiver] = [PeerReceiver(p, dist) for p in peers]
    for r in receivers:
        r.process(skdm)
    sent = [(_plaintext(i), bytes(cipher.encrypt(me, _plaintext(i)))) for i in range(N_MESSAGES)]
    _deliver(sent, receivers, seed=2)
    # A forged signature is refused by libsignal too.
    body = bytes(cipher.encrypt(me, b"signed"))
    forged = body[:-64] + ts.PrivateKey.generate().sign(body[:-64])
    with pytest.raises(PeerError):
        receivers[0].decrypt(forged)
    assert receivers[0].decrypt(body) == b"signed"


# -- legacy format: python-axolotl -------------------------------------------------------------


def test_axolotl_sender_two_textsecure_receivers(spawn: Spawn, new_store: StoreFactory) -> None:
    sender = spawn("axolotl")
    assert isinstance(sender, AxolotlPeer)
    sender.create(*ALICE)
    skdm = sender.legacy_group_create_distribution(GROUP_ID)
    receivers: list[Receiver] = [
        TsReceiver(new_store, "bob", GROUP_ID),
        TsReceiver(new_store, "carol", GROUP_ID),
    ]
    for r in receivers:
        r.process(skdm)
    sent = [
        (_plaintext(i), sender.legacy_group_encrypt(GROUP_ID, _plaintext(i)))
        for i in range(N_MESSAGES)
    ]
    assert [ts.LegacySenderKeyMessage.from_bytes(b).iteration for _, b in sent] == list(
        range(N_MESSAGES)
    )
    _deliver(sent, receivers, seed=3)


def test_textsecure_sender_two_axolotl_receivers(spawn: Spawn, new_store: StoreFactory) -> None:
    peers = [spawn("axolotl"), spawn("axolotl")]
    for i, p in enumerate(peers):
        assert isinstance(p, AxolotlPeer)
        p.create(f"receiver{i}", 1)
    store = new_store(ts.IdentityKeyPair.generate(), 5)
    me = ts.Address(*ALICE)
    cipher = ts.LegacyGroupCipher(store, GROUP_ID)
    skdm = bytes(cipher.create_distribution(me))
    receivers: list[Receiver] = [PeerReceiver(p, GROUP_ID) for p in peers]
    for r in receivers:
        r.process(skdm)
    sent = [(_plaintext(i), bytes(cipher.encrypt(me, _plaintext(i)))) for i in range(N_MESSAGES)]
    _deliver(sent, receivers, seed=4)
    body = bytes(cipher.encrypt(me, b"signed"))
    forged = body[:-64] + ts.PrivateKey.generate().sign(body[:-64])
    with pytest.raises(PeerError):
        receivers[0].decrypt(forged)
    assert receivers[0].decrypt(body) == b"signed"


# -- the formats are selected per group and do not mix -----------------------------------------


def test_formats_do_not_mix_with_real_peers(spawn: Spawn, new_store: StoreFactory) -> None:
    ls, ax = spawn("ls0103"), spawn("axolotl")
    assert isinstance(ls, NodePeer) and isinstance(ax, AxolotlPeer)
    ls.create(*ALICE)
    ax.create(*ALICE)
    store = new_store(ts.IdentityKeyPair.generate(), 9)
    sender = ts.Address(*ALICE)
    with pytest.raises(errors.TextSecureError):
        ts.LegacyGroupCipher(store, GROUP_ID).process_distribution(
            sender, ls.group_create_distribution(uuid.uuid4())
        )
    with pytest.raises(errors.TextSecureError):
        ts.SenderKeyDistributionMessage.from_bytes(ax.legacy_group_create_distribution(GROUP_ID))
    assert store.sender_key(sender, GROUP_ID) is None


def test_legacy_records_move_between_axolotl_and_textsecure(
    spawn: Spawn, new_store: StoreFactory
) -> None:
    """python-axolotl's SenderKeyRecord bytes load as a textsecure SenderKeyRecord (same field
    numbers as libsignal's) and continue the chain, and the other way round."""
    sender, receiver = spawn("axolotl"), spawn("axolotl")
    assert isinstance(sender, AxolotlPeer) and isinstance(receiver, AxolotlPeer)
    sender.create(*ALICE)
    receiver.create("bob", 1)
    receiver.legacy_group_process_distribution(
        *ALICE, GROUP_ID, sender.legacy_group_create_distribution(GROUP_ID)
    )
    first = sender.legacy_group_encrypt(GROUP_ID, b"first")
    second = sender.legacy_group_encrypt(GROUP_ID, b"second")
    assert receiver.legacy_group_decrypt(*ALICE, GROUP_ID, second) == b"second"
    (ax_record,) = receiver._senderkeys.records.values()

    store = new_store(ts.IdentityKeyPair.generate(), 3)
    me = ts.Address(*ALICE)
    record = ts.SenderKeyRecord.from_bytes(ax_record)
    assert record.iteration == 2
    store.save_sender_key(me, GROUP_ID, record)
    cipher = ts.LegacyGroupCipher(store, GROUP_ID)
    assert cipher.decrypt(me, first) == b"first", "a skipped key stored by python-axolotl"
    assert cipher.decrypt(me, sender.legacy_group_encrypt(GROUP_ID, b"third")) == b"third"

    # And back: the textsecure record continues in python-axolotl.
    ts_record = store.sender_key(me, GROUP_ID)
    assert ts_record is not None
    (name,) = receiver._senderkeys.records
    receiver._senderkeys.records[name] = bytes(ts_record)
    fourth = sender.legacy_group_encrypt(GROUP_ID, b"fourth")
    assert receiver.legacy_group_decrypt(*ALICE, GROUP_ID, fourth) == b"fourth"
