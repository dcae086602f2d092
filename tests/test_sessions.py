"""Behaviour of the public 1:1 session API (two in-process parties).

Every test with parties runs once per store kind (``new_store``: MemoryStore, SQLiteStore,
PostgresStore); both parties use that kind."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
import textsecure as ts
from support import Store, StoreFactory
from textsecure import errors

NewStore = Callable[[ts.IdentityKeyPair, int], Store]


class Party:
    def __init__(self, new_store: NewStore, name: str, registration_id: int) -> None:
        self.identity = ts.IdentityKeyPair.generate()
        self.store: Store = new_store(self.identity, registration_id)
        self.address = ts.Address(name, 1)

    def cipher(self, other: Party) -> ts.SessionCipher:
        return ts.SessionCipher(self.store, other.address)

    def session_bytes(self, other: Party) -> bytes:
        record = self.store.session(other.address)
        assert record is not None
        return bytes(record)


def _connect(
    new_store: NewStore, kyber: bool, one_time: bool = True, alice_store: NewStore | None = None
) -> tuple[Party, Party]:
    alice = Party(alice_store or new_store, "alice", 11)
    bob = Party(new_store, "bob", 22)
    bundle = bob.store.new_bundle(
        1, prekey_id=5, signed_prekey_id=6, one_time=one_time, kyber=kyber
    )
    alice.cipher(bob).process_bundle(bundle)
    return alice, bob


def _decrypt(
    receiver: Party, sender: Party, message: ts.SignalMessage | ts.PreKeySignalMessage
) -> bytes:
    parsed = ts.parse_message(message.type, bytes(message))
    return receiver.cipher(sender).decrypt(parsed)


@pytest.mark.parametrize("kyber", [False, True], ids=["x3dh", "pqxdh"])
def test_conversation_versions_and_types(new_store: StoreFactory, kyber: bool) -> None:
    alice, bob = _connect(new_store, kyber)
    version = 4 if kyber else 3
    m1 = alice.cipher(bob).encrypt(b"one")
    m2 = alice.cipher(bob).encrypt(b"two")
    for m in (m1, m2):
        assert isinstance(m, ts.PreKeySignalMessage)
        assert m.type is ts.MessageType.PREKEY
        assert m.version == version
        assert bytes(m)[0] == (0x33 if version == 3 else 0x44)
        assert m.prekey_id == 5 and m.signed_prekey_id == 6
        assert m.kyber_prekey_id == (6 if kyber else None)
        assert m.identity_key == alice.identity.public_key
    assert _decrypt(bob, alice, m2) == b"two"
    assert _decrypt(bob, alice, m1) == b"one"
    assert bob.store.load_prekey(5) is None, "one-time prekey consumed"
    assert bob.store.load_signed_prekey(6) is not None, "signed prekey kept"
    if kyber:
        assert bob.store.load_kyber_prekey(6) is None, "one-time Kyber prekey consumed"
    record = bob.store.session(alice.address)
    assert record is not None and record.version == version and not record.is_unacknowledged
    reply = bob.cipher(alice).encrypt(b"reply")
    assert isinstance(reply, ts.SignalMessage) and reply.type is ts.MessageType.WHISPER
    assert _decrypt(alice, bob, reply) == b"reply"
    after = alice.cipher(bob).encrypt(b"acknowledged")
    assert isinstance(after, ts.SignalMessage), "a reply acknowledges the session"
    assert _decrypt(bob, alice, after) == b"acknowledged"


def test_long_out_of_order_and_ping_pong(new_store: StoreFactory) -> None:
    alice, bob = _connect(new_store, kyber=False)
    to_bob, to_alice = alice.cipher(bob), bob.cipher(alice)
    to_alice.decrypt(to_bob.encrypt(b"start"))
    rng = random.Random(7)
    for turn in range(40):
        batch = [(f"{turn}:{i}".encode(), to_bob.encrypt(f"{turn}:{i}".encode())) for i in range(5)]
        rng.shuffle(batch)
        for plaintext, message in batch:
            assert to_alice.decrypt(message) == plaintext
        back = to_alice.encrypt(b"ack %d" % turn)
        assert to_bob.decrypt(back) == b"ack %d" % turn


def test_duplicate_leaves_state_unchanged(new_store: StoreFactory) -> None:
    alice, bob = _connect(new_store, kyber=True)
    first = alice.cipher(bob).encrypt(b"first")
    assert bob.cipher(alice).decrypt(first) == b"first"
    before = bob.session_bytes(alice)
    with pytest.raises(errors.DuplicateMessage):
        bob.cipher(alice).decrypt(first)
    assert bob.session_bytes(alice) == before
    second = alice.cipher(bob).encrypt(b"second")
    assert isinstance(second, ts.PreKeySignalMessage)
    assert bob.cipher(alice).decrypt(second.message) == b"second"
    with pytest.raises(errors.DuplicateMessage):
        bob.cipher(alice).decrypt(second)


def test_skipped_keys_and_gap_limit(new_store: StoreFactory) -> None:
    # The limits are the receiver's: Bob's store is of the kind under test; Alice, who only
    # encrypts 27,500 messages, keeps hers in memory.
    alice, bob = _connect(new_store, kyber=False, alice_store=ts.MemoryStore)
    to_bob, to_alice = alice.cipher(bob), bob.cipher(alice)
    to_alice.decrypt(to_bob.encrypt(b"x"))
    late = to_bob.encrypt(b"late")
    for _ in range(2500):
        to_bob.encrypt(b"lost")
    newest = to_bob.encrypt(b"newest")
    assert to_alice.decrypt(newest) == b"newest"
    # 2,501 keys were skipped; only the newest 2,000 are kept, so the oldest is gone.
    before = bob.session_bytes(alice)
    with pytest.raises(errors.DuplicateMessage):
        to_alice.decrypt(late)
    assert bob.session_bytes(alice) == before
    for _ in range(25_001):
        to_bob.encrypt(b"x")
    too_far = to_bob.encrypt(b"too far")
    with pytest.raises(errors.MessageGapTooLarge):
        to_alice.decrypt(too_far)
    assert bob.session_bytes(alice) == before


def test_new_session_archives_old_and_in_flight_messages_decrypt(
    new_store: StoreFactory,
) -> None:
    alice, bob = _connect(new_store, kyber=False)
    to_bob, to_alice = alice.cipher(bob), bob.cipher(alice)
    to_alice.decrypt(to_bob.encrypt(b"hello"))
    to_bob.decrypt(to_alice.encrypt(b"hi"))
    in_flight = [to_alice.encrypt(b"old %d" % i) for i in range(3)]
    # Alice starts over with a fresh bundle while Bob's old messages are still in flight.
    to_bob.process_bundle(bob.store.new_bundle(1, prekey_id=9, signed_prekey_id=10, kyber=True))
    record = alice.store.session(bob.address)
    assert record is not None and record.version == 4 and record.archived_count == 1
    fresh = to_bob.encrypt(b"new session")
    assert isinstance(fresh, ts.PreKeySignalMessage)
    for i, m in enumerate(in_flight):
        assert to_bob.decrypt(m) == b"old %d" % i
    # Decrypting on the archived session promoted it; Bob's new-session message still works.
    assert to_alice.decrypt(fresh) == b"new session"
    reply = to_alice.encrypt(b"on the new one")
    assert to_bob.decrypt(reply) == b"on the new one"
    record = alice.store.session(bob.address)
    assert record is not None and record.version == 4


def test_simultaneous_initiation_converges(new_store: StoreFactory) -> None:
    alice, bob = Party(new_store, "alice", 1), Party(new_store, "bob", 2)
    a_bundle = alice.store.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=False)
    b_bundle = bob.store.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=False)
    to_bob, to_alice = alice.cipher(bob), bob.cipher(alice)
    to_bob.process_bundle(b_bundle)
    to_alice.process_bundle(a_bundle)
    from_alice = to_bob.encrypt(b"alice first")
    from_bob = to_alice.encrypt(b"bob first")
    assert to_alice.decrypt(from_alice) == b"alice first"
    assert to_bob.decrypt(from_bob) == b"bob first"
    for i in range(5):
        assert to_alice.decrypt(to_bob.encrypt(b"a%d" % i)) == b"a%d" % i
        assert to_bob.decrypt(to_alice.encrypt(b"b%d" % i)) == b"b%d" % i
    assert isinstance(to_bob.encrypt(b"x"), ts.SignalMessage)
    assert isinstance(to_alice.encrypt(b"y"), ts.SignalMessage)


def test_changed_identity_needs_trust(new_store: StoreFactory) -> None:
    alice, bob = _connect(new_store, kyber=False)
    bob.cipher(alice).decrypt(alice.cipher(bob).encrypt(b"hello"))
    # Alice reinstalls: a new identity and a new session to Bob.
    new_alice = Party(new_store, "alice", 11)
    new_alice.cipher(bob).process_bundle(
        bob.store.new_bundle(1, prekey_id=7, signed_prekey_id=8, kyber=False)
    )
    message = new_alice.cipher(bob).encrypt(b"it's me")
    before = bob.session_bytes(alice)
    with pytest.raises(errors.UntrustedIdentity) as info:
        bob.cipher(alice).decrypt(message)
    assert info.value.address == alice.address
    assert info.value.identity_key == new_alice.identity.public_key
    assert bob.session_bytes(alice) == before
    assert bob.store.load_prekey(7) is not None, "nothing consumed on failure"
    assert bob.store.identity(alice.address) == alice.identity.public_key
    # Encrypting to a peer whose bundle shows a changed identity is refused too.
    with pytest.raises(errors.UntrustedIdentity):
        bob.cipher(alice).process_bundle(
            new_alice.store.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=False)
        )
    bob.store.trust(alice.address, new_alice.identity.public_key)
    assert bob.cipher(alice).decrypt(message) == b"it's me"
    assert bob.store.identity(alice.address) == new_alice.identity.public_key


def test_errors_leave_state_unchanged(new_store: StoreFactory) -> None:
    alice, bob = _connect(new_store, kyber=False)
    with pytest.raises(errors.NoSession):
        bob.cipher(alice).encrypt(b"no session yet")
    message = alice.cipher(bob).encrypt(b"hello")
    assert isinstance(message, ts.PreKeySignalMessage)
    bob.store.remove_prekey(5)
    with pytest.raises(errors.InvalidPreKeyId):
        bob.cipher(alice).decrypt(message)
    assert bob.store.session(alice.address) is None
    assert bob.store.identity(alice.address) is None
    with pytest.raises(errors.NoSession):
        bob.cipher(alice).decrypt(message.message)
    with pytest.raises(TypeError):
        bob.cipher(alice).decrypt(b"raw bytes")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidMessage):
        ts.parse_message(9, bytes(message))
    with pytest.raises(errors.InvalidMessage):
        ts.SignalMessage.from_bytes(b"\x33" + b"\x00" * 4)
    with pytest.raises(errors.UnsupportedVersion):
        ts.SignalMessage.from_bytes(b"\x23" + bytes(message.message)[1:])
    with pytest.raises(errors.UnsupportedVersion):
        ts.PreKeySignalMessage.from_bytes(b"\x53" + bytes(message)[1:])


def test_bad_bundle_signature_is_rejected(new_store: StoreFactory) -> None:
    bob = Party(new_store, "bob", 2)
    alice = Party(new_store, "alice", 1)
    good = bob.store.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=True)
    fields: dict[str, Any] = dict(
        registration_id=good.registration_id,
        device_id=good.device_id,
        identity_key=good.identity_key,
        signed_prekey_id=good.signed_prekey_id,
        signed_prekey_public=good.signed_prekey_public,
        signed_prekey_signature=good.signed_prekey_signature,
        prekey_id=good.prekey_id,
        prekey_public=good.prekey_public,
        kyber_prekey_id=good.kyber_prekey_id,
        kyber_prekey_public=good.kyber_prekey_public,
        kyber_prekey_signature=good.kyber_prekey_signature,
    )
    sig = bytearray(good.signed_prekey_signature)
    sig[3] ^= 1
    with pytest.raises(errors.InvalidSignature):
        alice.cipher(bob).process_bundle(
            ts.PreKeyBundle(**{**fields, "signed_prekey_signature": bytes(sig)})
        )
    ksig = bytearray(good.kyber_prekey_signature or b"")
    ksig[0] ^= 1
    with pytest.raises(errors.InvalidSignature):
        alice.cipher(bob).process_bundle(
            ts.PreKeyBundle(**{**fields, "kyber_prekey_signature": bytes(ksig)})
        )
    assert alice.store.session(bob.address) is None
    # The same fields given as bytes build the same bundle.
    as_bytes: dict[str, Any] = {
        k: (bytes(v) if isinstance(v, ts.PublicKey | ts.KyberPublicKey) else v)
        for k, v in fields.items()
    }
    alice.cipher(bob).process_bundle(ts.PreKeyBundle(**as_bytes))
    record = alice.store.session(bob.address)
    assert record is not None and record.version == 4


def test_records_round_trip_and_restore(new_store: StoreFactory) -> None:
    alice, bob = _connect(new_store, kyber=True)
    bob.cipher(alice).decrypt(alice.cipher(bob).encrypt(b"hello"))
    record = bob.store.session(alice.address)
    assert record is not None
    data = bytes(record)
    assert bytes(ts.SessionRecord.from_bytes(data)) == data
    # A restored store continues the conversation.
    restored = new_store(bob.identity, 22)
    restored.save_session(alice.address, ts.SessionRecord.from_bytes(data))
    restored.trust(alice.address, alice.identity.public_key)
    assert (
        ts.SessionCipher(restored, alice.address).decrypt(
            alice.cipher(bob).encrypt(b"after restore")
        )
        == b"after restore"
    )
    with pytest.raises(errors.InvalidRecord):
        ts.SessionRecord.from_bytes(b"\x0a\x05garbage")
    pk = ts.PreKeyRecord.generate(3)
    assert bytes(ts.PreKeyRecord.from_bytes(bytes(pk))) == bytes(pk)
    spk = ts.SignedPreKeyRecord.generate(4, alice.identity, timestamp=1234)
    again = ts.SignedPreKeyRecord.from_bytes(bytes(spk))
    assert (again.id, again.timestamp, again.signature) == (4, 1234, spk.signature)
    assert alice.identity.public_key.verify(bytes(spk.public_key), spk.signature)
    kpk = ts.KyberPreKeyRecord.generate(5, alice.identity, timestamp=99)
    assert bytes(ts.KyberPreKeyRecord.from_bytes(bytes(kpk))) == bytes(kpk)
    assert len(bytes(kpk.public_key)) == 1569 and bytes(kpk.public_key)[0] == 0x08
    assert alice.identity.public_key.verify(bytes(kpk.public_key), kpk.signature)
    ikp = ts.IdentityKeyPair.from_bytes(bytes(alice.identity))
    assert ikp.public_key == alice.identity.public_key


def test_keys_and_secrets_are_redacted() -> None:
    key = ts.PrivateKey.generate()
    secret_hex = bytes(key).hex()
    identity = ts.IdentityKeyPair.generate()
    kyber = ts.KyberKeyPair.generate()
    for obj in (key, identity, kyber, kyber.secret_key, ts.PreKeyRecord.generate(1)):
        assert secret_hex not in repr(obj)
        assert bytes(identity.private_key).hex() not in repr(obj)
    assert "redacted" in repr(key) and "redacted" in repr(identity)
    clamped = ts.PrivateKey.from_bytes(b"\xff" * 32)
    raw = bytes(clamped)
    assert raw[0] & 7 == 0 and raw[31] & 0x80 == 0 and raw[31] & 0x40
    other = ts.PrivateKey.generate()
    assert key.agree(other.public_key) == other.agree(bytes(key.public_key))
    sig = key.sign(memoryview(b"message"))
    assert key.public_key.verify(bytearray(b"message"), sig)
    assert not key.public_key.verify(b"messagE", sig)
    with pytest.raises(errors.InvalidKey):
        ts.PublicKey.from_bytes(b"\x05" + b"\x01" * 31)
    with pytest.raises(errors.InvalidKey):
        ts.PublicKey.from_bytes(b"\x06" + b"\x01" * 32)
    with pytest.raises(TypeError):
        ts.PrivateKey.from_bytes("not bytes")  # type: ignore[arg-type]
    ss, ct = kyber.encapsulate()
    assert kyber.decapsulate(ct) == ss and len(ct) == 1569
    ml = ts.KyberKeyPair.generate(ml_kem=True)
    assert bytes(ml.public_key)[0] == 0x0A
    with pytest.raises(errors.InvalidMessage):
        kyber.decapsulate(bytes(ml.encapsulate()[1]))


def test_address_semantics() -> None:
    a = ts.Address("+14155550123", 2)
    assert str(a) == "+14155550123.2" and a.name == "+14155550123" and a.device_id == 2
    assert a == ts.Address("+14155550123", 2) and a != ts.Address("+14155550123", 3)
    assert len({a, ts.Address("+14155550123", 2)}) == 1
    assert sorted([ts.Address("b", 1), ts.Address("a", 2)])[0].name == "a"


def test_last_resort_kyber_prekey_serves_many_sessions(new_store: StoreFactory) -> None:
    bob = Party(new_store, "bob", 2)
    bundle = bob.store.new_bundle(
        1,
        signed_prekey_id=1,
        kyber_prekey_id=50,
        one_time=False,
        kyber=True,
        kyber_last_resort=True,
    )
    for name in ("carol", "dave"):
        sender = Party(new_store, name, 3)
        sender.cipher(bob).process_bundle(bundle)
        assert (
            bob.cipher(sender).decrypt(sender.cipher(bob).encrypt(name.encode())) == name.encode()
        )
    assert bob.store.load_kyber_prekey(50) is not None


@pytest.mark.parametrize("kyber", [False, True], ids=["x3dh", "pqxdh-last-resort"])
def test_replayed_prekey_message_never_sets_up_a_second_session(
    new_store: StoreFactory, kyber: bool
) -> None:
    alice, bob = Party(new_store, "alice", 1), Party(new_store, "bob", 2)
    bundle = bob.store.new_bundle(
        1, signed_prekey_id=3, one_time=False, kyber=kyber, kyber_last_resort=True
    )
    alice.cipher(bob).process_bundle(bundle)
    message = alice.cipher(bob).encrypt(b"only once")
    assert bob.cipher(alice).decrypt(message) == b"only once"
    with pytest.raises(errors.DuplicateMessage):
        bob.cipher(alice).decrypt(message)
    # Even with the session gone, the replay must not decrypt again.
    bob.store.remove_session(alice.address)
    with pytest.raises(errors.InvalidMessage):
        bob.cipher(alice).decrypt(message)
    assert bob.store.session(alice.address) is None
    # A new session from the same (last-resort) bundle with a fresh base key still works.
    again = alice.cipher(bob)
    again.process_bundle(bundle)
    assert bob.cipher(alice).decrypt(again.encrypt(b"new base key")) == b"new base key"


ALICE_ACI = "9d0652a3-dcc3-4d11-975f-74d61598733f"
BOB_ACI = "796abedb-ca4e-4f18-8803-1fde5b921f9f"


def test_addresses_field_between_service_ids(new_store: StoreFactory) -> None:
    alice_store = new_store(ts.IdentityKeyPair.generate(), 1)
    bob_store = new_store(ts.IdentityKeyPair.generate(), 2)
    alice, bob = ts.Address(ALICE_ACI, 1), ts.Address(BOB_ACI, 2)
    to_bob = ts.SessionCipher(alice_store, bob, local_address=alice)
    to_bob.process_bundle(bob_store.new_bundle(2, prekey_id=1, signed_prekey_id=1))
    message = to_bob.encrypt(b"hi")
    assert isinstance(message, ts.PreKeySignalMessage)
    field = message.message.addresses
    assert field is not None and len(field) == 36
    assert field[0] == 0 and field[1:17].hex() == ALICE_ACI.replace("-", "") and field[17] == 1
    assert field[18] == 0 and field[19:35].hex() == BOB_ACI.replace("-", "") and field[35] == 2
    # The wrong recipient device (a re-routed message) fails like a bad MAC, nothing stored.
    misrouted = ts.SessionCipher(bob_store, alice, local_address=ts.Address(BOB_ACI, 3))
    with pytest.raises(errors.InvalidMessage):
        misrouted.decrypt(message)
    assert bob_store.session(alice) is None and bob_store.load_prekey(1) is not None
    # Presented as coming from another sender: rejected too.
    with pytest.raises(errors.InvalidMessage):
        ts.SessionCipher(bob_store, ts.Address(ALICE_ACI, 7), local_address=bob).decrypt(message)
    assert bob_store.session(ts.Address(ALICE_ACI, 7)) is None
    to_alice = ts.SessionCipher(bob_store, alice, local_address=bob)
    assert to_alice.decrypt(message) == b"hi"
    # Only PreKey messages carry the field; names that are not ServiceIds never do.
    reply = to_alice.encrypt(b"hello")
    assert isinstance(reply, ts.SignalMessage) and reply.addresses is None
    assert to_bob.decrypt(reply) == b"hello"
    plain = _connect(new_store, kyber=True)[0].cipher(Party(new_store, "bob", 1)).encrypt(b"x")
    assert isinstance(plain, ts.PreKeySignalMessage) and plain.message.addresses is None
    assert ts.SessionCipher(bob_store, alice, local_address=bob).local_address == bob
