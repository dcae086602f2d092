"""Sender keys (GroupCipher, LegacyGroupCipher) and the 1:1 fan-out, in process.

Covers both wire formats, out-of-order delivery and the limits (25,000 forward jumps, 2,000
stored keys, 5 states), duplicates, missing keys, hostile input (truncations and bit flips of
every group message leave the stored record byte-for-byte unchanged; a bad signature never
advances the chain), the shared libsignal / python-axolotl vectors, and `encrypt_fanout`.

Every test with stores runs once per store kind (``new_store``: MemoryStore, SQLiteStore,
PostgresStore). Where one party only produces tens of thousands of messages for the other
(the limit tests), the sender keeps a MemoryStore: the limits are the receiver's.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import textsecure as ts
from support import Store, StoreFactory, require_shared
from textsecure import errors

GROUP = "120363000000000000@g.us"


def _memory() -> ts.MemoryStore:
    return ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)


class Format:
    """One wire format behind a uniform interface."""

    def __init__(self, legacy: bool) -> None:
        self.legacy = legacy
        self.key: uuid.UUID | str = GROUP if legacy else uuid.uuid4()

    def __repr__(self) -> str:
        return "legacy" if self.legacy else "current"

    def cipher(self, store: Store) -> ts.GroupCipher | ts.LegacyGroupCipher:
        if self.legacy:
            assert isinstance(self.key, str)
            return ts.LegacyGroupCipher(store, self.key)
        assert isinstance(self.key, uuid.UUID)
        return ts.GroupCipher(store, self.key)

    def create(self, store: Store, sender: ts.Address) -> bytes:
        return bytes(self.cipher(store).create_distribution(sender))

    def process(self, store: Store, sender: ts.Address, skdm: bytes) -> None:
        if self.legacy:
            ts.LegacyGroupCipher(store, GROUP).process_distribution(sender, skdm)
        else:
            assert isinstance(self.key, uuid.UUID)
            message = ts.SenderKeyDistributionMessage.from_bytes(skdm)
            ts.GroupCipher(store, self.key).process_distribution(sender, message)

    def encrypt(self, store: Store, sender: ts.Address, plaintext: bytes) -> bytes:
        return bytes(self.cipher(store).encrypt(sender, plaintext))

    def decrypt(self, store: Store, sender: ts.Address, body: bytes) -> bytes:
        if self.legacy:
            return ts.LegacyGroupCipher(store, GROUP).decrypt(sender, body)
        assert isinstance(self.key, uuid.UUID)
        message = ts.parse_message(7, body)
        return ts.GroupCipher(store, self.key).decrypt(sender, message)

    def record(self, store: Store, sender: ts.Address) -> bytes | None:
        rec = store.sender_key(sender, self.key)
        return None if rec is None else bytes(rec)


FORMATS = [Format(False), Format(True)]
IDS = ["current", "legacy"]
ALICE = ts.Address("alice", 1)


def _pair(
    fmt: Format, new_store: StoreFactory, *, sender: Store | None = None
) -> tuple[Store, Store]:
    sender = sender if sender is not None else new_store(registration_id=1)
    receiver = new_store(registration_id=2)
    fmt.process(receiver, ALICE, fmt.create(sender, ALICE))
    return sender, receiver


# -- behaviour ------------------------------------------------------------------------------


def test_current_format_messages_and_attributes(new_store: StoreFactory) -> None:
    dist = uuid.uuid4()
    sender, receiver = new_store(), new_store()
    skdm = ts.GroupCipher(sender, dist).create_distribution(ALICE)
    assert isinstance(skdm, ts.SenderKeyDistributionMessage)
    assert skdm.distribution_id == dist and skdm.iteration == 0 and skdm.version == 3
    assert 0 <= skdm.chain_id < 2**31, "chain ids are 31-bit"
    assert bytes(skdm)[0] == 0x33
    assert ts.SenderKeyDistributionMessage.from_bytes(bytes(skdm)).chain_id == skdm.chain_id
    again = ts.GroupCipher(sender, dist).create_distribution(ALICE)
    assert bytes(again) == bytes(skdm), "the existing sender key is distributed again"
    ts.GroupCipher(receiver, dist).process_distribution(ALICE, skdm)

    m = ts.GroupCipher(sender, dist).encrypt(ALICE, bytearray(b"hello group"))
    assert isinstance(m, ts.SenderKeyMessage)
    assert m.type is ts.MessageType.SENDERKEY and int(m.type) == 7
    assert m.distribution_id == dist and m.chain_id == skdm.chain_id and m.iteration == 0
    assert m.version == 3 and bytes(m)[0] == 0x33
    parsed = ts.parse_message(ts.MessageType.SENDERKEY, memoryview(bytes(m)))
    assert isinstance(parsed, ts.SenderKeyMessage) and bytes(parsed) == bytes(m)
    assert ts.GroupCipher(receiver, dist).decrypt(ALICE, parsed) == b"hello group"
    m2 = ts.GroupCipher(sender, dist).encrypt(ALICE, b"")
    assert m2.iteration == 1
    assert ts.GroupCipher(receiver, dist).decrypt(ALICE, m2) == b""
    assert ts.GroupCipher(sender, dist).create_distribution(ALICE).iteration == 2
    assert ts.GroupCipher(sender, dist).distribution_id == dist


def test_legacy_format_messages_and_attributes(new_store: StoreFactory) -> None:
    sender, receiver = new_store(), new_store()
    skdm = ts.LegacyGroupCipher(sender, GROUP).create_distribution(ALICE)
    assert isinstance(skdm, ts.LegacySenderKeyDistributionMessage)
    assert skdm.iteration == 0 and skdm.version == 3 and bytes(skdm)[0] == 0x33
    # {id=1, iteration=2, chainKey=3, signingKey=4}: the id field comes first, as a varint.
    assert bytes(skdm)[1] == 0x08
    with pytest.raises(errors.InvalidMessage):
        ts.SenderKeyDistributionMessage.from_bytes(bytes(skdm))
    ts.LegacyGroupCipher(receiver, GROUP).process_distribution(
        ALICE, ts.LegacySenderKeyDistributionMessage.from_bytes(bytes(skdm))
    )
    m = ts.LegacyGroupCipher(sender, GROUP).encrypt(ALICE, b"legacy")
    assert isinstance(m, ts.LegacySenderKeyMessage)
    assert m.type is ts.MessageType.SENDERKEY and m.chain_id == skdm.chain_id
    assert bytes(m)[0] == 0x33 and bytes(m)[1] == 0x08
    with pytest.raises(errors.InvalidMessage):
        ts.SenderKeyMessage.from_bytes(bytes(m))
    cipher = ts.LegacyGroupCipher(receiver, GROUP)
    assert cipher.group_id == GROUP
    assert cipher.decrypt(ALICE, m) == b"legacy"
    m2 = ts.LegacyGroupCipher(sender, GROUP).encrypt(ALICE, b"as bytes")
    assert cipher.decrypt(ALICE, bytearray(bytes(m2))) == b"as bytes"
    # Another group id names another sender key.
    with pytest.raises(errors.NoSenderKey):
        ts.LegacyGroupCipher(receiver, "other@g.us").decrypt(ALICE, bytes(m2))


@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_out_of_order_and_duplicates(new_store: StoreFactory, fmt: Format) -> None:
    sender, receiver = _pair(fmt, new_store)
    rng = random.Random(5)
    batch = [(b"msg %d" % i, fmt.encrypt(sender, ALICE, b"msg %d" % i)) for i in range(300)]
    rng.shuffle(batch)
    for plaintext, body in batch:
        assert fmt.decrypt(receiver, ALICE, body) == plaintext
    for _, body in batch[:20]:
        before = fmt.record(receiver, ALICE)
        with pytest.raises(errors.DuplicateMessage):
            fmt.decrypt(receiver, ALICE, body)
        assert fmt.record(receiver, ALICE) == before


@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_missing_sender_key(new_store: StoreFactory, fmt: Format) -> None:
    sender, receiver = new_store(), new_store()
    with pytest.raises(errors.NoSenderKey):
        fmt.encrypt(sender, ALICE, b"no key yet")
    fmt.create(sender, ALICE)
    body = fmt.encrypt(sender, ALICE, b"x")
    with pytest.raises(errors.NoSenderKey):
        fmt.decrypt(receiver, ALICE, body)
    assert fmt.record(receiver, ALICE) is None
    # A state exists, but not for this chain id.
    fmt.process(receiver, ALICE, fmt.create(new_store(), ALICE))
    with pytest.raises(errors.NoSenderKey):
        fmt.decrypt(receiver, ALICE, body)
    # Someone else's key does not let us send.
    with pytest.raises(errors.NoSenderKey):
        fmt.encrypt(receiver, ALICE, b"not ours")


@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_stored_key_and_jump_limits(new_store: StoreFactory, fmt: Format) -> None:
    sender, receiver = _pair(fmt, new_store, sender=_memory())
    first = fmt.encrypt(sender, ALICE, b"first")
    kept = [fmt.encrypt(sender, ALICE, b"k%d" % i) for i in range(2500)]
    last = fmt.encrypt(sender, ALICE, b"last")
    assert fmt.decrypt(receiver, ALICE, last) == b"last"
    # 2,501 keys were skipped; only the newest 2,000 are kept.
    before = fmt.record(receiver, ALICE)
    with pytest.raises(errors.DuplicateMessage):
        fmt.decrypt(receiver, ALICE, first)
    for i in range(500):
        with pytest.raises(errors.DuplicateMessage):
            fmt.decrypt(receiver, ALICE, kept[i])
    assert fmt.record(receiver, ALICE) == before
    assert fmt.decrypt(receiver, ALICE, kept[500]) == b"k500"
    assert fmt.decrypt(receiver, ALICE, kept[-1]) == b"k2499"

    # Exactly 25,000 skipped messages are allowed; 25,001 are not.
    sender, fresh = _pair(fmt, new_store, sender=_memory())
    bodies = [fmt.encrypt(sender, ALICE, b"j") for _ in range(25_002)]
    before = fmt.record(fresh, ALICE)
    with pytest.raises(errors.MessageGapTooLarge):
        fmt.decrypt(fresh, ALICE, bodies[25_001])
    assert fmt.record(fresh, ALICE) == before
    assert fmt.decrypt(fresh, ALICE, bodies[25_000]) == b"j"
    assert fmt.decrypt(fresh, ALICE, bodies[24_999]) == b"j", "kept among the newest 2,000"


@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_five_states_and_rotation(new_store: StoreFactory, fmt: Format) -> None:
    receiver = new_store()
    senders = [new_store() for _ in range(7)]
    in_flight = []
    for s in senders:
        fmt.process(receiver, ALICE, fmt.create(s, ALICE))
        in_flight.append(fmt.encrypt(s, ALICE, b"from an older chain"))
    record = receiver.sender_key(ALICE, fmt.key)
    assert record is not None and len(record) == 5
    # The two oldest chains were dropped; the five newest still decrypt.
    for body in in_flight[:2]:
        with pytest.raises(errors.NoSenderKey):
            fmt.decrypt(receiver, ALICE, body)
    for body in in_flight[2:]:
        assert fmt.decrypt(receiver, ALICE, body) == b"from an older chain"
    # Processing the same distribution again keeps the chain's progress.
    skdm = fmt.create(senders[-1], ALICE)
    m = fmt.encrypt(senders[-1], ALICE, b"after")
    assert fmt.decrypt(receiver, ALICE, m) == b"after"
    fmt.process(receiver, ALICE, skdm)
    with pytest.raises(errors.DuplicateMessage):
        fmt.decrypt(receiver, ALICE, m)


def test_cipher_checks_distribution_and_types(new_store: StoreFactory) -> None:
    sender, receiver = new_store(), new_store()
    d1, d2 = uuid.uuid4(), uuid.uuid4()
    skdm = ts.GroupCipher(sender, d1).create_distribution(ALICE)
    with pytest.raises(errors.InvalidMessage):
        ts.GroupCipher(receiver, d2).process_distribution(ALICE, skdm)
    assert receiver.sender_key(ALICE, d2) is None
    ts.GroupCipher(receiver, d1).process_distribution(ALICE, skdm)
    m = ts.GroupCipher(sender, d1).encrypt(ALICE, b"x")
    with pytest.raises(errors.InvalidMessage):
        ts.GroupCipher(receiver, d2).decrypt(ALICE, m)
    bad: Any = bytes(m)
    with pytest.raises(TypeError):
        ts.GroupCipher(receiver, d1).decrypt(ALICE, bad)
    with pytest.raises(TypeError):
        ts.GroupCipher(receiver, bad)
    with pytest.raises(TypeError):
        ts.GroupCipher(receiver, str(d1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ts.LegacyGroupCipher(receiver, GROUP).decrypt(ALICE, m)  # type: ignore[arg-type]
    assert ts.GroupCipher(receiver, d1).decrypt(ALICE, m) == b"x"


@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_record_serialization_and_redaction(new_store: StoreFactory, fmt: Format) -> None:
    sender, receiver = _pair(fmt, new_store)
    for i in range(5):
        fmt.encrypt(sender, ALICE, b"%d" % i)
    fmt.decrypt(receiver, ALICE, fmt.encrypt(sender, ALICE, b"x"))
    for store in (sender, receiver):
        rec = store.sender_key(ALICE, fmt.key)
        assert rec is not None
        data = bytes(rec)
        again = ts.SenderKeyRecord.from_bytes(data)
        assert bytes(again) == data
        assert again.chain_ids == rec.chain_ids and again.iteration == 6
        assert "chain_ids" in repr(rec)
    # A restored record continues the chain.
    restored = new_store()
    rec = receiver.sender_key(ALICE, fmt.key)
    assert rec is not None
    restored.save_sender_key(ALICE, fmt.key, ts.SenderKeyRecord.from_bytes(bytes(rec)))
    assert fmt.decrypt(restored, ALICE, fmt.encrypt(sender, ALICE, b"y")) == b"y"
    restored.remove_sender_key(ALICE, fmt.key)
    assert restored.sender_key(ALICE, fmt.key) is None
    with pytest.raises(errors.InvalidRecord):
        ts.SenderKeyRecord.from_bytes(b"\x0a\x05junk!")
    skdm = fmt.cipher(sender).create_distribution(ALICE)
    chain_key_hex = bytes(skdm)[-70:-35].hex()
    assert chain_key_hex[:16] not in repr(skdm)
    assert "chain_id" in repr(skdm)


# -- hostile input ----------------------------------------------------------------------------


def _mutations(data: bytes) -> list[bytes]:
    out = [data[:n] for n in range(len(data))]
    for i in range(len(data)):
        for bit in range(8):
            b = bytearray(data)
            b[i] ^= 1 << bit
            out.append(bytes(b))
    return out


@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_every_truncation_and_bit_flip_of_a_message_fails_cleanly(
    new_store: StoreFactory, fmt: Format
) -> None:
    sender, receiver = _pair(fmt, new_store)
    fmt.decrypt(receiver, ALICE, fmt.encrypt(sender, ALICE, b"warm up"))
    body = fmt.encrypt(sender, ALICE, b"the genuine message, 100 bytes or so" * 2)
    before = fmt.record(receiver, ALICE)
    mutations = _mutations(body)
    assert len(mutations) == len(body) * 9
    for bad in mutations:
        with pytest.raises(errors.TextSecureError):
            fmt.decrypt(receiver, ALICE, bad)
        assert fmt.record(receiver, ALICE) == before, bad.hex()
    assert fmt.decrypt(receiver, ALICE, body) == b"the genuine message, 100 bytes or so" * 2


@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_bad_signature_never_advances_the_chain(new_store: StoreFactory, fmt: Format) -> None:
    sender, receiver = _pair(fmt, new_store)
    genuine = fmt.encrypt(sender, ALICE, b"genuine")
    before = fmt.record(receiver, ALICE)
    # The same bytes with a valid XEdDSA signature by another key.
    other = ts.PrivateKey.generate()
    forged = genuine[:-64] + other.sign(genuine[:-64])
    # And a message far ahead, signed by the wrong key: must not move the chain either.
    ahead = [fmt.encrypt(sender, ALICE, b"ahead %d" % i) for i in range(50)][-1]
    forged_ahead = ahead[:-64] + other.sign(ahead[:-64])
    for bad in (forged, forged_ahead):
        with pytest.raises(errors.InvalidSignature):
            fmt.decrypt(receiver, ALICE, bad)
        assert fmt.record(receiver, ALICE) == before
    assert fmt.decrypt(receiver, ALICE, genuine) == b"genuine"
    assert fmt.decrypt(receiver, ALICE, ahead) == b"ahead 49"


@pytest.mark.parametrize("fmt", FORMATS, ids=IDS)
def test_distribution_truncations_and_bit_flips(new_store: StoreFactory, fmt: Format) -> None:
    """A distribution message carries no signature or MAC (it travels inside an authenticated
    1:1 message), so a bit flip can give another valid key. What must hold: every truncation
    is refused; any refused input leaves the record unchanged; nothing panics."""
    _, receiver = _pair(fmt, new_store)
    skdm = fmt.create(new_store(), ALICE)
    before = fmt.record(receiver, ALICE)
    rec0 = receiver.sender_key(ALICE, fmt.key)
    assert rec0 is not None
    accepted = 0
    for n in range(len(skdm)):
        with pytest.raises(errors.TextSecureError):
            fmt.process(receiver, ALICE, skdm[:n])
        assert fmt.record(receiver, ALICE) == before
    for bad in _mutations(skdm)[len(skdm) :]:
        try:
            fmt.process(receiver, ALICE, bad)
        except errors.TextSecureError:
            assert fmt.record(receiver, ALICE) == before
        else:
            accepted += 1
            receiver.save_sender_key(ALICE, fmt.key, rec0)
    # Flips inside the chain key or the signing key give valid (different) keys.
    assert 0 < accepted < len(skdm) * 8


# -- shared vectors ---------------------------------------------------------------------------


def _b64(s: str) -> bytes:
    return base64.b64decode(s)


@pytest.mark.needs_shared
@pytest.mark.parametrize(
    "name", ["group_in_order.json", "group_out_of_order.json", "axolotl_group_legacy.json"]
)
def test_shared_vectors(new_store: StoreFactory, name: str) -> None:
    doc = json.loads(require_shared("vectors", name).read_text())
    legacy = doc.get("format") == "legacy"
    sender = ts.Address(doc["sender"]["name"], doc["sender"]["device_id"])
    store = new_store()
    skdm = _b64(doc["skdm"])
    decrypt: Callable[[bytes], bytes]
    if legacy:
        cipher_l = ts.LegacyGroupCipher(store, doc["group_id"])
        parsed_l = ts.LegacySenderKeyDistributionMessage.from_bytes(skdm)
        assert parsed_l.chain_id == doc["skdm_header"]["key_id"]
        assert bytes(parsed_l) == skdm
        cipher_l.process_distribution(sender, parsed_l)

        def decrypt(body: bytes) -> bytes:
            return cipher_l.decrypt(sender, ts.LegacySenderKeyMessage.from_bytes(body))
    else:
        dist = uuid.UUID(doc["distribution_id"])
        cipher = ts.GroupCipher(store, dist)
        parsed = ts.SenderKeyDistributionMessage.from_bytes(skdm)
        assert parsed.distribution_id == dist
        assert parsed.chain_id == doc["skdm_header"]["chain_id"]
        assert bytes(parsed) == skdm
        cipher.process_distribution(sender, parsed)

        def decrypt(body: bytes) -> bytes:
            m = ts.parse_message(7, body)
            assert m.distribution_id == dist
            return cipher.decrypt(sender, m)

    steps = doc["steps"]
    assert steps
    for step in steps:
        assert step["type"] == 7
        body = _b64(step["body"])
        if step.get("expect_error") == "duplicate":
            with pytest.raises(errors.DuplicateMessage):
                decrypt(body)
        else:
            assert "expect_error" not in step
            assert decrypt(body) == _b64(step["plaintext"])
    # The record round-trips in libsignal's format.
    key: uuid.UUID | str = doc["group_id"] if legacy else uuid.UUID(doc["distribution_id"])
    rec = store.sender_key(sender, key)
    assert rec is not None and bytes(ts.SenderKeyRecord.from_bytes(bytes(rec))) == bytes(rec)


# -- fan-out ------------------------------------------------------------------------------------


def test_encrypt_fanout_per_address_results_and_errors(new_store: StoreFactory) -> None:
    alice = new_store(registration_id=1)
    alice_addr = ts.Address("alice", 1)
    recipients: dict[ts.Address, Store] = {}
    for name, device in [("bob", 1), ("bob", 2), ("carol", 1), ("dave", 7)]:
        store = new_store(registration_id=10 + device)
        addr = ts.Address(name, device)
        bundle = store.new_bundle(device, prekey_id=1, signed_prekey_id=2, kyber=device != 7)
        ts.SessionCipher(alice, addr).process_bundle(bundle)
        recipients[addr] = store
    # carol.1 replied once, so her session is acknowledged.
    carol = ts.Address("carol", 1)
    hello = ts.SessionCipher(alice, carol).encrypt(b"hi carol")
    ts.SessionCipher(recipients[carol], alice_addr).decrypt(hello)
    reply = ts.SessionCipher(recipients[carol], alice_addr).encrypt(b"hi alice")
    ts.SessionCipher(alice, carol).decrypt(reply)

    no_session = ts.Address("erin", 1)
    # dave.7 changed identity: alice's trusted key no longer matches.
    dave = ts.Address("dave", 7)
    alice.trust(dave, ts.IdentityKeyPair.generate().public_key)

    dist = uuid.uuid4()
    skdm = ts.GroupCipher(alice, dist).create_distribution(alice_addr)
    order = [ts.Address("bob", 1), no_session, ts.Address("bob", 2), carol, dave, carol]

    def sessions() -> dict[ts.Address, bytes]:
        return {a: bytes(r) for a in order if (r := alice.session(a)) is not None}

    before = sessions()
    out = ts.encrypt_fanout(alice, order, bytes(skdm))
    assert list(out) == [ts.Address("bob", 1), no_session, ts.Address("bob", 2), carol, dave]
    assert isinstance(out[no_session], errors.NoSession)
    err = out[dave]
    assert isinstance(err, errors.UntrustedIdentity) and err.address == dave
    session = alice.session(dave)
    assert session is not None and bytes(session) == before[dave], "failed address unchanged"
    assert isinstance(out[carol], ts.SignalMessage)
    for addr in (ts.Address("bob", 1), ts.Address("bob", 2)):
        assert isinstance(out[addr], ts.PreKeySignalMessage)
    for addr in (ts.Address("bob", 1), ts.Address("bob", 2), carol):
        msg = out[addr]
        assert isinstance(msg, ts.SignalMessage | ts.PreKeySignalMessage)
        store = recipients[addr]
        payload = ts.SessionCipher(store, alice_addr).decrypt(msg)
        got = ts.SenderKeyDistributionMessage.from_bytes(payload)
        ts.GroupCipher(store, dist).process_distribution(alice_addr, got)
        group_msg = ts.GroupCipher(alice, dist).encrypt(alice_addr, b"to the group")
        assert ts.GroupCipher(store, dist).decrypt(alice_addr, group_msg) == b"to the group"

    # A bad argument anywhere is refused before anything is encrypted.
    snapshot = sessions()
    with pytest.raises(TypeError):
        ts.encrypt_fanout(alice, [carol, "bob.1"], b"x")  # type: ignore[list-item]
    assert sessions() == snapshot
    assert ts.encrypt_fanout(alice, [], b"x") == {}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_chain_at_the_iteration_limit_fails_cleanly(new_store: StoreFactory) -> None:
    """A distribution at iteration 2**32 - 1 (hand-made, legacy layout) is accepted, as in
    libsignal, but no message can be decrypted or encrypted at the end of the chain, and
    nothing overflows or panics."""
    signer = ts.PrivateKey.generate()
    top = 2**32 - 1
    skdm = (
        b"\x33\x08\x07\x10"
        + _varint(top)
        + b"\x1a\x20"
        + bytes(range(32))
        + b"\x22\x21"
        + bytes(signer.public_key)
    )
    store = new_store()
    cipher = ts.LegacyGroupCipher(store, GROUP)
    cipher.process_distribution(ALICE, skdm)
    record = store.sender_key(ALICE, GROUP)
    assert record is not None and record.iteration == top
    for iteration in (top, top - 1, 0):
        body = b"\x33\x08\x07\x10" + _varint(iteration) + b"\x1a\x10" + bytes(16)
        message = body + signer.sign(body)
        with pytest.raises(errors.TextSecureError):
            cipher.decrypt(ALICE, message)
        assert store.sender_key(ALICE, GROUP) is not None
        assert bytes(store.sender_key(ALICE, GROUP) or record) == bytes(record)
    # Someone else's chain (no private signing key) never encrypts.
    mine = new_store()
    mine.save_sender_key(ALICE, GROUP, record)
    with pytest.raises(errors.NoSenderKey):
        ts.LegacyGroupCipher(mine, GROUP).encrypt(ALICE, b"x")
