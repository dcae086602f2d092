"""The store conformance kit: run it against your own store.

A store passes when the real ciphers, driven through it, behave as the protocol requires:
conversations (X3DH v3, PQXDH v4 with SPQR) both ways, out-of-order and duplicate delivery,
tampered and replayed messages refused with every stored state unchanged, one-time prekeys
consumed exactly once, untrusted identities, groups (both sender-key formats), sealed sender,
the fan-out, canonical addresses, two store objects racing on one session from two threads
(no fork: every message decrypts exactly once), and -- when the store can be reopened --
everything surviving a reopen.

Subclass :class:`StoreConformance` in a pytest module (the class name must start with
``Test``) and implement :meth:`~StoreConformance.make_store`; a durable store also implements
:meth:`~StoreConformance.reopen`, which adds the persistence tests::

    import pytest
    from textsecure.testing.conformance import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture(autouse=True)
        def _database(self, tmp_path):      # any fixture the hooks need
            self.path = tmp_path / "store.db"
            self.accounts = 0

        def make_store(self, identity, registration_id):
            self.accounts += 1              # every party is an account of its own
            return MyStore(self.path, account=f"party{self.accounts}",
                           identity=identity, registration_id=registration_id)

        def reopen(self, store):            # a second object on the same account
            return MyStore(self.path, account=store.account)

The kit needs nothing but textsecure and pytest. Stores it made are closed after each test
(:meth:`~StoreConformance.close_store`). For pytest's detailed assertion messages, call
``pytest.register_assert_rewrite("textsecure.testing.conformance")`` in your ``conftest.py``.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, TypeAlias

import pytest

from textsecure import errors
from textsecure._native import (
    Address,
    GroupCipher,
    IdentityKeyPair,
    LegacyGroupCipher,
    MemoryStore,
    PreKeyBundle,
    PreKeySignalMessage,
    PrivateKey,
    SealedSenderMultiRecipientMessage,
    SealedSessionCipher,
    SenderCertificate,
    SenderKeyDistributionMessage,
    ServerCertificate,
    SessionCipher,
    SignalMessage,
    UnidentifiedSenderMessageContent,
    encrypt_fanout,
    generate_bundle,
    parse_message,
)
from textsecure.enums import MessageType
from textsecure.stores.protocol import ManagedStore, StoreBackend

__all__ = ["Store", "StoreConformance"]

#: what :meth:`StoreConformance.make_store` returns
Store: TypeAlias = MemoryStore | ManagedStore
Message: TypeAlias = SignalMessage | PreKeySignalMessage

NOW = 1_700_000_000_000
EXPIRES = NOW + 3_600_000
GROUP_ID = "120363000000000000@g.us"

_PERSISTENCE_TESTS = ("test_persistence_across_reopen",)


def _wire(message: Message) -> Message:
    """The message as the receiver parses it off the wire."""
    return parse_message(int(message.type), bytes(message))


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def _bad_mac(message: Message) -> Message:
    """``message`` with the last byte of its (inner) MAC flipped."""
    if isinstance(message, PreKeySignalMessage):
        outer, inner = bytes(message), bytes(message.message)
        assert outer.count(inner) == 1
        return PreKeySignalMessage.from_bytes(outer.replace(inner, _flip(inner, -1)))
    return SignalMessage.from_bytes(_flip(bytes(message), -1))


class _Party:
    """One side of a conversation: a store made by the kit's hook, and an address."""

    def __init__(self, store: Store, identity: IdentityKeyPair, address: Address) -> None:
        self.store = store
        self.identity = identity
        self.address = address

    def cipher(self, other: _Party | Address, store: Store | None = None) -> SessionCipher:
        remote = other.address if isinstance(other, _Party) else other
        return SessionCipher(self.store if store is None else store, remote)

    def send(self, other: _Party, plaintext: bytes) -> Message:
        return _wire(self.cipher(other).encrypt(plaintext))

    def receive(self, other: _Party, message: Message) -> bytes:
        return self.cipher(other).decrypt(message)

    def session_bytes(self, other: _Party | Address) -> bytes | None:
        remote = other.address if isinstance(other, _Party) else other
        record = self.store.session(remote)
        return None if record is None else bytes(record)

    def publish(
        self,
        device_id: int = 1,
        *,
        prekey_id: int | None,
        signed_prekey_id: int,
        kyber_prekey_id: int | None,
        kyber_last_resort: bool = False,
    ) -> PreKeyBundle:
        """Stores fresh prekeys (``save_*``) and returns their public bundle."""
        bundle, spk, otk, kpk = generate_bundle(
            self.store.identity_key_pair,
            self.store.registration_id,
            device_id,
            signed_prekey_id=signed_prekey_id,
            prekey_id=prekey_id,
            kyber_prekey_id=kyber_prekey_id,
            timestamp_ms=time.time_ns() // 1_000_000,
        )
        self.store.save_signed_prekey(spk)
        if otk is not None:
            self.store.save_prekey(otk)
        if kpk is not None:
            self.store.save_kyber_prekey(kpk, last_resort=kyber_last_resort)
        return bundle


class _Format:
    """A sender-key wire format behind one interface."""

    def __init__(self, legacy: bool) -> None:
        self.legacy = legacy
        self.key: uuid.UUID | str = GROUP_ID if legacy else uuid.uuid4()

    def distribute(self, sender: Store, receiver: Store, address: Address) -> None:
        if self.legacy:
            legacy = LegacyGroupCipher(sender, GROUP_ID).create_distribution(address)
            LegacyGroupCipher(receiver, GROUP_ID).process_distribution(address, bytes(legacy))
        else:
            assert isinstance(self.key, uuid.UUID)
            skdm = GroupCipher(sender, self.key).create_distribution(address)
            GroupCipher(receiver, self.key).process_distribution(
                address, SenderKeyDistributionMessage.from_bytes(bytes(skdm))
            )

    def encrypt(self, store: Store, sender: Address, plaintext: bytes) -> bytes:
        if self.legacy:
            return bytes(LegacyGroupCipher(store, GROUP_ID).encrypt(sender, plaintext))
        assert isinstance(self.key, uuid.UUID)
        return bytes(GroupCipher(store, self.key).encrypt(sender, plaintext))

    def decrypt(self, store: Store, sender: Address, body: bytes) -> bytes:
        if self.legacy:
            return LegacyGroupCipher(store, GROUP_ID).decrypt(sender, body)
        assert isinstance(self.key, uuid.UUID)
        message = parse_message(MessageType.SENDERKEY, body)
        return GroupCipher(store, self.key).decrypt(sender, message)

    def record(self, store: Store, sender: Address) -> bytes | None:
        record = store.sender_key(sender, self.key)
        return None if record is None else bytes(record)


def _run_together(*jobs: Callable[[], None]) -> list[BaseException]:
    """Runs ``jobs`` on threads released at once; the exceptions they raised."""
    barrier = threading.Barrier(len(jobs))
    failures: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        try:
            barrier.wait()
            job()
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def _first_contact(
    outcomes: dict[str, object], cipher: SessionCipher, message: Message
) -> Callable[[], None]:
    def run() -> None:
        try:
            outcomes[cipher.remote.name] = cipher.decrypt(message)
        except errors.InvalidPreKeyId as e:
            outcomes[cipher.remote.name] = e

    return run


class StoreConformance:
    """The conformance tests; subclass it (as ``Test...``) and implement the hooks.

    Hooks:

    - :meth:`make_store` (required): a new, empty store of the local account with
      ``identity`` and ``registration_id``. Every party of a test gets one (so one test makes
      several, which must not share records: give each its own account, database or file).
    - :meth:`reopen` (durable stores): another store object on the same backend and account
      as ``store``, seeing what was committed through it, as another process would open it.
      ``store`` stays open and in use (the race tests use both at once from two threads).
      Overriding it adds the persistence tests; by default the race tests run two threads on
      one store object.
    - :meth:`close_store`: releases a store the kit made or reopened (after each test).
    """

    #: the persistence tests, present only where :meth:`reopen` is overridden
    persistence_tests: ClassVar[tuple[str, ...]] = _PERSISTENCE_TESTS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.persistence_tests:
            # pytest collects only callables: None hides a test from a store without reopen()
            setattr(cls, name, vars(StoreConformance)[name] if cls.can_reopen() else None)

    # -- hooks ----------------------------------------------------------------------------

    def make_store(self, identity: IdentityKeyPair, registration_id: int) -> Store:
        """A new, empty store of ``identity`` / ``registration_id``."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_store()")

    def reopen(self, store: Store) -> Store:
        """Another store object on ``store``'s backend and account (durable stores)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement reopen()")

    def close_store(self, store: Store) -> None:
        """Releases ``store`` (default: ``store.close()`` when it has one)."""
        close = getattr(store, "close", None)
        if callable(close):
            close()

    @classmethod
    def can_reopen(cls) -> bool:
        """Whether the subclass implements ``reopen`` (the persistence and two-object tests need
        it)."""
        return cls.reopen is not StoreConformance.reopen

    # -- plumbing -------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _textsecure_conformance_stores(self) -> Iterator[None]:
        self._ts_opened: list[Store] = []
        self._ts_closed: list[Store] = []
        yield
        for store in reversed(self._ts_opened):
            if not any(store is c for c in self._ts_closed):
                self.close_store(store)

    def _track(self, store: Store) -> Store:
        self._ts_opened.append(store)
        return store

    def _new_store(self, identity: IdentityKeyPair, registration_id: int) -> Store:
        store = self._track(self.make_store(identity, registration_id))
        assert isinstance(store, (MemoryStore, StoreBackend)), (
            f"make_store() returned {store!r}, which is not a textsecure StoreBackend"
        )
        return store

    def _reopen(self, store: Store) -> Store:
        again = self._track(self.reopen(store))
        assert again is not store, "reopen() must return another store object"
        return again

    def _twin(self, store: Store) -> Store:
        """A second store object on ``store``'s account, or ``store`` itself."""
        return self._reopen(store) if self.can_reopen() else store

    def _close(self, store: Store) -> None:
        self._ts_closed.append(store)
        self.close_store(store)

    def party(self, name: str | None = None, registration_id: int = 1, device: int = 1) -> _Party:
        """A party whose store :meth:`make_store` makes (``name``: a random ServiceId)."""
        identity = IdentityKeyPair.generate()
        store = self._new_store(identity, registration_id)
        return _Party(store, identity, Address(name or str(uuid.uuid4()), device))

    def connect(self, kyber: bool = True) -> tuple[_Party, _Party]:
        """Alice has processed Bob's bundle (one-time prekey 5, signed 6, Kyber 7 if
        ``kyber``); nothing sent yet."""
        alice, bob = self.party("alice", 11), self.party("bob", 22)
        bundle = bob.publish(prekey_id=5, signed_prekey_id=6, kyber_prekey_id=7 if kyber else None)
        alice.cipher(bob).process_bundle(bundle)
        return alice, bob

    def acknowledged(self, kyber: bool = True) -> tuple[_Party, _Party]:
        """A session Bob has received and answered."""
        alice, bob = self.connect(kyber)
        assert bob.receive(alice, alice.send(bob, b"hello")) == b"hello"
        assert alice.receive(bob, bob.send(alice, b"hi")) == b"hi"
        return alice, bob

    # -- the store protocol ---------------------------------------------------------------

    def test_store_protocol(self) -> None:
        """The store meets ``StoreBackend`` (and ``ManagedStore``) and keeps its identity."""
        identity = IdentityKeyPair.generate()
        store = self._new_store(identity, 4242)
        if not isinstance(store, MemoryStore):
            assert isinstance(store, StoreBackend)
        assert store.identity_key_pair.public_key == identity.public_key
        assert bytes(store.identity_key_pair) == bytes(identity)
        assert store.registration_id == 4242
        nobody = Address(str(uuid.uuid4()), 1)
        assert store.session(nobody) is None and store.identity(nobody) is None
        assert store.session_addresses() == []

    # -- 1:1 sessions ----------------------------------------------------------------------

    @pytest.mark.parametrize("kyber", [False, True], ids=["x3dh-v3", "pqxdh-v4"])
    def test_conversation(self, kyber: bool) -> None:
        """A v3 or v4 conversation in both directions through the store."""
        alice, bob = self.connect(kyber)
        version = 4 if kyber else 3
        assert alice.store.identity(bob.address) == bob.identity.public_key
        first, second = alice.send(bob, b"one"), alice.send(bob, b"two")
        for m in (first, second):
            assert isinstance(m, PreKeySignalMessage) and m.version == version
            assert m.prekey_id == 5 and m.signed_prekey_id == 6
            assert m.kyber_prekey_id == (7 if kyber else None)
            assert (len(m.message.pq_ratchet) > 0) == kyber, "v4 sessions run SPQR"
        assert bob.receive(alice, second) == b"two"
        assert bob.receive(alice, first) == b"one"
        assert bob.store.load_prekey(5) is None, "the one-time prekey is consumed"
        assert bob.store.load_signed_prekey(6) is not None, "the signed prekey is kept"
        if kyber:
            assert bob.store.load_kyber_prekey(7) is None, "the one-time Kyber key is consumed"
        assert bob.store.identity(alice.address) == alice.identity.public_key
        record = bob.store.session(alice.address)
        assert record is not None and record.version == version
        assert bob.store.session_addresses() == [alice.address]
        for turn in range(4):
            reply = bob.send(alice, b"reply %d" % turn)
            assert isinstance(reply, SignalMessage) and reply.version == version
            assert alice.receive(bob, reply) == b"reply %d" % turn
            again = alice.send(bob, b"again %d" % turn)
            assert isinstance(again, SignalMessage), "a reply acknowledges the session"
            assert bob.receive(alice, again) == b"again %d" % turn
        for party, other in ((alice, bob), (bob, alice)):
            record = party.store.session(other.address)
            assert record is not None and record.version == version
            assert not record.is_unacknowledged

    def test_out_of_order_and_duplicates(self) -> None:
        """Out-of-order messages decrypt; a duplicate raises ``DuplicateMessage`` and changes
        nothing."""
        alice, bob = self.acknowledged()
        rng = random.Random(1)
        seen: list[tuple[Message, _Party, _Party]] = []
        for turn in range(4):
            sender, receiver = (alice, bob) if turn % 2 == 0 else (bob, alice)
            batch = [
                (b"%d:%d" % (turn, i), sender.send(receiver, b"%d:%d" % (turn, i)))
                for i in range(8)
            ]
            rng.shuffle(batch)
            for plaintext, message in batch:
                assert receiver.receive(sender, message) == plaintext
                seen.append((message, sender, receiver))
        for message, sender, receiver in rng.sample(seen, 10):
            before = receiver.session_bytes(sender)
            with pytest.raises(errors.DuplicateMessage):
                receiver.receive(sender, message)
            assert receiver.session_bytes(sender) == before, "a duplicate changed the session"
        assert bob.receive(alice, alice.send(bob, b"still fine")) == b"still fine"
        assert alice.receive(bob, bob.send(alice, b"both ways")) == b"both ways"

    def test_duplicate_prekey_message(self) -> None:
        """A PreKey message delivered twice decrypts once."""
        alice, bob = self.connect()
        first = alice.send(bob, b"first")
        assert bob.receive(alice, first) == b"first"
        before = bob.session_bytes(alice)
        with pytest.raises(errors.DuplicateMessage):
            bob.receive(alice, first)
        assert bob.session_bytes(alice) == before
        second = alice.send(bob, b"second")
        assert isinstance(second, PreKeySignalMessage)
        assert bob.receive(alice, second.message) == b"second"
        with pytest.raises(errors.DuplicateMessage):
            bob.receive(alice, second)
        assert bob.session_bytes(alice) != before

    def test_tampered_messages_change_nothing(self) -> None:
        """Tampered messages fail and leave every stored record unchanged."""
        alice, bob = self.connect()
        first = alice.send(bob, b"hello")
        assert isinstance(first, PreKeySignalMessage)

        def state() -> tuple[object, ...]:
            return (
                bob.session_bytes(alice),
                bob.store.identity(alice.address),
                bob.store.load_prekey(5) is not None,
                bob.store.load_kyber_prekey(7) is not None,
                bob.store.load_signed_prekey(6) is not None,
            )

        fresh = state()
        assert fresh == (None, None, True, True, True)
        raw = bytes(first)
        for bad in (bytes(_bad_mac(first)), raw[: len(raw) // 2], _flip(raw, len(raw) // 2)):
            with pytest.raises(errors.TextSecureError):
                bob.receive(alice, PreKeySignalMessage.from_bytes(bad))
            assert state() == fresh, "a refused PreKey message changed the store"
        assert bob.receive(alice, first) == b"hello"
        reply = bob.send(alice, b"hi")
        alice.receive(bob, reply)
        message = alice.send(bob, b"on the session")
        assert isinstance(message, SignalMessage)
        established = state()
        raw = bytes(message)
        for bad_bytes in (bytes(_bad_mac(message)), raw[:-9], _flip(raw, len(raw) - 12)):
            with pytest.raises(errors.TextSecureError):
                bob.receive(alice, SignalMessage.from_bytes(bad_bytes))
            assert state() == established, "a refused message changed the store"
        assert bob.receive(alice, message) == b"on the session"

    @pytest.mark.parametrize("kyber", [False, True], ids=["x3dh", "pqxdh-last-resort"])
    def test_replayed_prekey_message_after_session_removed(self, kyber: bool) -> None:
        """A replayed PreKey message never sets up a second session, even after the first was
        removed."""
        alice, bob = self.party("alice", 1), self.party("bob", 2)
        bundle = bob.publish(
            prekey_id=None,
            signed_prekey_id=3,
            kyber_prekey_id=4 if kyber else None,
            kyber_last_resort=True,
        )
        alice.cipher(bob).process_bundle(bundle)
        message = alice.send(bob, b"only once")
        assert isinstance(message, PreKeySignalMessage) and message.prekey_id is None
        assert bob.receive(alice, message) == b"only once"
        with pytest.raises(errors.DuplicateMessage):
            bob.receive(alice, message)
        bob.store.remove_session(alice.address)
        assert bob.store.session(alice.address) is None
        assert bob.store.session_addresses() == []
        with pytest.raises(errors.InvalidMessage):
            bob.receive(alice, message)  # the base key was seen: a replay
        assert bob.store.session(alice.address) is None, "a replay set up a session"
        if kyber:
            assert bob.store.load_kyber_prekey(4) is not None, "a last-resort key is kept"
        again = alice.cipher(bob)
        again.process_bundle(bundle)  # a fresh base key from the same bundle
        assert bob.receive(alice, _wire(again.encrypt(b"new base key"))) == b"new base key"
        assert alice.receive(bob, bob.send(alice, b"ok")) == b"ok"

    def test_one_time_prekey_consumed_exactly_once(self) -> None:
        """A one-time prekey serves exactly one session."""
        bob = self.party("bob", 2)
        bundle = bob.publish(prekey_id=5, signed_prekey_id=6, kyber_prekey_id=7)
        carol, dave = self.party("carol", 3), self.party("dave", 4)
        carol.cipher(bob).process_bundle(bundle)
        dave.cipher(bob).process_bundle(bundle)
        from_carol, from_dave = carol.send(bob, b"carol"), dave.send(bob, b"dave")
        assert bob.receive(carol, from_carol) == b"carol"
        assert bob.store.load_prekey(5) is None and bob.store.load_kyber_prekey(7) is None
        with pytest.raises(errors.InvalidPreKeyId):
            bob.receive(dave, from_dave)
        assert bob.store.session(dave.address) is None
        assert bob.store.identity(dave.address) is None
        assert bob.store.session_addresses() == [carol.address]
        # Carol's session goes on; Dave starts again from a new bundle.
        assert bob.receive(carol, carol.send(bob, b"more")) == b"more"
        dave.cipher(bob).process_bundle(
            bob.publish(prekey_id=8, signed_prekey_id=6, kyber_prekey_id=9)
        )
        assert bob.receive(dave, dave.send(bob, b"again")) == b"again"
        assert bob.store.load_prekey(8) is None

    def test_untrusted_identity_then_trust(self) -> None:
        """A changed identity raises ``UntrustedIdentity`` until ``trust()`` accepts it."""
        alice, bob = self.acknowledged(kyber=False)
        # Alice reinstalls: a new identity, a new session to Bob.
        new_alice = self.party("alice", 11)
        new_alice.cipher(bob).process_bundle(
            bob.publish(prekey_id=17, signed_prekey_id=18, kyber_prekey_id=19)
        )
        message = new_alice.send(bob, b"it's me")
        before = bob.session_bytes(alice)
        with pytest.raises(errors.UntrustedIdentity) as info:
            bob.receive(alice, message)
        assert info.value.address == alice.address
        assert info.value.identity_key == new_alice.identity.public_key
        assert bob.session_bytes(alice) == before
        assert bob.store.identity(alice.address) == alice.identity.public_key
        assert bob.store.load_prekey(17) is not None, "nothing consumed on failure"
        assert bob.store.load_kyber_prekey(19) is not None, "nothing consumed on failure"
        with pytest.raises(errors.UntrustedIdentity):
            bob.cipher(alice).process_bundle(
                new_alice.publish(prekey_id=1, signed_prekey_id=1, kyber_prekey_id=None)
            )
        assert bob.session_bytes(alice) == before
        bob.store.trust(alice.address, new_alice.identity.public_key)
        assert bob.store.identity(alice.address) == new_alice.identity.public_key
        assert bob.receive(new_alice, message) == b"it's me"
        assert bob.store.load_prekey(17) is None
        assert new_alice.receive(bob, bob.send(new_alice, b"welcome back")) == b"welcome back"

    def test_canonical_addresses(self) -> None:
        """Two spellings of one ServiceId address name one session."""
        a_id, b_id = str(uuid.uuid4()), str(uuid.uuid4())
        alice, bob = self.party(a_id, 1), self.party(b_id, 2)
        shouting = Address(b_id.upper(), 1)
        alice.cipher(shouting).process_bundle(
            bob.publish(prekey_id=1, signed_prekey_id=2, kyber_prekey_id=3)
        )
        assert alice.store.session_addresses() == [Address(b_id, 1)]
        assert alice.session_bytes(bob) is not None
        assert alice.session_bytes(shouting) == alice.session_bytes(bob)
        message = _wire(alice.cipher(Address(b_id, 1)).encrypt(b"hi"))
        assert bob.cipher(Address(a_id.upper(), 1)).decrypt(message) == b"hi"
        assert bob.store.identity(Address(a_id.upper(), 1)) == alice.identity.public_key
        reply = bob.cipher(alice).encrypt(b"hello")
        assert alice.cipher(shouting).decrypt(_wire(reply)) == b"hello"
        assert bob.store.session_addresses() == [alice.address]
        # A PNI in either spelling is one contact, distinct from the ACI.
        pni = Address("pni:" + a_id.upper(), 1)
        bob.store.trust(pni, alice.identity.public_key)
        assert bob.store.identity(Address("PNI:" + a_id, 1)) == alice.identity.public_key
        carol = self.party("carol", 3)
        carol_key = carol.identity.public_key
        bob.store.trust(Address("PNI:" + a_id, 1), carol_key)
        assert bob.store.identity(pni) == carol_key
        assert bob.store.identity(alice.address) == alice.identity.public_key
        # Sender keys too.
        dist = uuid.uuid4()
        skdm = GroupCipher(alice.store, dist).create_distribution(alice.address)
        GroupCipher(bob.store, dist).process_distribution(Address(a_id.upper(), 1), skdm)
        assert bob.store.sender_key(alice.address, dist) is not None
        body = GroupCipher(alice.store, dist).encrypt(Address(a_id.upper(), 1), b"group")
        assert GroupCipher(bob.store, dist).decrypt(alice.address, body) == b"group"

    # -- groups -------------------------------------------------------------------------------

    @pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
    def test_group_messages(self, legacy: bool) -> None:
        """Sender keys (current or legacy format) through the store."""
        fmt = _Format(legacy)
        alice, bob = self.party("alice", 1), self.party("bob", 2)
        with pytest.raises(errors.NoSenderKey):
            fmt.encrypt(alice.store, alice.address, b"no key yet")
        fmt.distribute(alice.store, bob.store, alice.address)
        assert fmt.record(bob.store, alice.address) is not None
        rng = random.Random(2)
        batch = [
            (b"g%d" % i, fmt.encrypt(alice.store, alice.address, b"g%d" % i)) for i in range(12)
        ]
        rng.shuffle(batch)
        for plaintext, body in batch:
            assert fmt.decrypt(bob.store, alice.address, body) == plaintext
        for _, body in batch[:4]:
            before = fmt.record(bob.store, alice.address)
            with pytest.raises(errors.DuplicateMessage):
                fmt.decrypt(bob.store, alice.address, body)
            assert fmt.record(bob.store, alice.address) == before
        genuine = fmt.encrypt(alice.store, alice.address, b"genuine")
        ahead = [fmt.encrypt(alice.store, alice.address, b"ahead %d" % i) for i in range(20)][-1]
        before = fmt.record(bob.store, alice.address)
        other = PrivateKey.generate()
        forgeries = [m[:-64] + other.sign(m[:-64]) for m in (genuine, ahead)]
        for forged in forgeries:
            with pytest.raises(errors.InvalidSignature):
                fmt.decrypt(bob.store, alice.address, forged)
            assert fmt.record(bob.store, alice.address) == before, "a forgery moved the chain"
        for bad in (genuine[:-70], _flip(genuine, len(genuine) // 2), _flip(genuine, -1)):
            with pytest.raises(errors.TextSecureError):
                fmt.decrypt(bob.store, alice.address, bad)
            assert fmt.record(bob.store, alice.address) == before
        # An unknown sender has no key, and gets no record.
        stranger = Address(str(uuid.uuid4()), 1)
        with pytest.raises(errors.NoSenderKey):
            fmt.decrypt(bob.store, stranger, genuine)
        assert fmt.record(bob.store, stranger) is None
        assert fmt.decrypt(bob.store, alice.address, genuine) == b"genuine"
        assert fmt.decrypt(bob.store, alice.address, ahead) == b"ahead 19"
        # A removed sender key is gone until the sender distributes again.
        bob.store.remove_sender_key(alice.address, fmt.key)
        assert fmt.record(bob.store, alice.address) is None
        later = fmt.encrypt(alice.store, alice.address, b"later")
        with pytest.raises(errors.NoSenderKey):
            fmt.decrypt(bob.store, alice.address, later)
        fmt.distribute(alice.store, bob.store, alice.address)
        assert (
            fmt.decrypt(bob.store, alice.address, fmt.encrypt(alice.store, alice.address, b"x"))
            == b"x"
        )
        # Bob answers with his own sender key.
        fmt.distribute(bob.store, alice.store, bob.address)
        body = fmt.encrypt(bob.store, bob.address, b"from bob")
        assert fmt.decrypt(alice.store, bob.address, body) == b"from bob"

    # -- sealed sender ------------------------------------------------------------------------

    def test_sealed_sender_round_trip(self) -> None:
        """Sealed sender (single and multi-recipient) through the store."""
        root, server_key = PrivateKey.generate(), PrivateKey.generate()
        server = ServerCertificate.create(1, server_key.public_key, root)
        alice, bob = self.party(None, 11), self.party(None, 22)

        def certificate(party: _Party) -> SenderCertificate:
            return SenderCertificate.create(
                sender_uuid=party.address.name,
                sender_device_id=party.address.device_id,
                identity_key=party.identity.public_key,
                expiration=EXPIRES,
                server_certificate=server,
                server_key=server_key,
            )

        alice.cipher(bob).process_bundle(
            bob.publish(prekey_id=1, signed_prekey_id=2, kyber_prekey_id=3)
        )
        to_bob, to_alice = SealedSessionCipher(alice.store), SealedSessionCipher(bob.store)
        a_cert, b_cert = certificate(alice), certificate(bob)
        sealed = to_bob.encrypt(bob.address, b"sealed 0", a_cert)
        before = (bob.session_bytes(alice), bob.store.load_prekey(1) is not None)
        with pytest.raises(errors.InvalidCertificate):
            to_alice.decrypt(sealed, trust_root=PrivateKey.generate().public_key, timestamp=NOW)
        with pytest.raises(errors.InvalidCertificate):
            to_alice.decrypt(sealed, trust_root=root.public_key, timestamp=EXPIRES + 1)
        assert (bob.session_bytes(alice), bob.store.load_prekey(1) is not None) == before
        for i in range(3):
            if i:
                sealed = to_bob.encrypt(bob.address, b"sealed %d" % i, a_cert)
            got = to_alice.decrypt(
                sealed, trust_root=root.public_key, timestamp=NOW, local_address=bob.address
            )
            assert got.plaintext == b"sealed %d" % i and got.sender == alice.address
            assert got.message_type == (MessageType.PREKEY if i == 0 else MessageType.WHISPER)
            back = to_alice.encrypt(alice.address, b"back %d" % i, b_cert)
            got = to_bob.decrypt(back, trust_root=[root.public_key], timestamp=NOW)
            assert got.plaintext == b"back %d" % i and got.sender == bob.address
        # Multi-recipient (v2): the registration id comes from the store's session.
        content = UnidentifiedSenderMessageContent(
            MessageType.SENDERKEY, a_cert, b"to the group", group_id=b"group"
        )
        sent = SealedSenderMultiRecipientMessage.from_bytes(
            to_bob.multi_recipient_encrypt([bob.address], content)
        )
        assert sent.recipients == {bob.address.name: [(1, 22)]}
        usmc = to_alice.unseal(
            sent.message_for_recipient(bob.address.name), trust_root=root.public_key, timestamp=NOW
        )
        assert usmc.contents == b"to the group" and usmc.sender == alice.address
        after = bob.session_bytes(alice)
        with pytest.raises(errors.TextSecureError):
            to_alice.decrypt(sealed, trust_root=root.public_key, timestamp=NOW)
        assert bob.session_bytes(alice) == after, "a replayed sealed message changed the session"
        assert bob.store.identity(alice.address) == alice.identity.public_key

    # -- fan-out --------------------------------------------------------------------------------

    def test_encrypt_fanout_with_failing_addresses(self) -> None:
        """``encrypt_fanout`` reports failing addresses and changes nothing for them."""
        alice = self.party("alice", 1)
        recipients: dict[Address, _Party] = {}
        for name, device, kyber in (("bob", 1, True), ("bob", 2, True), ("carol", 1, False)):
            peer = self.party(name, 10 + device, device)
            bundle = peer.publish(
                device, prekey_id=1, signed_prekey_id=2, kyber_prekey_id=3 if kyber else None
            )
            alice.cipher(peer).process_bundle(bundle)
            recipients[peer.address] = peer
        carol = recipients[Address("carol", 1)]
        carol.receive(alice, alice.send(carol, b"hi carol"))
        alice.receive(carol, carol.send(alice, b"hi alice"))  # carol's session acknowledged
        dave = self.party("dave", 7, 7)
        alice.cipher(dave).process_bundle(
            dave.publish(7, prekey_id=1, signed_prekey_id=2, kyber_prekey_id=3)
        )
        alice.store.trust(dave.address, IdentityKeyPair.generate().public_key)  # changed
        erin = Address("erin", 1)  # no session
        order = [Address("bob", 1), erin, Address("bob", 2), carol.address, dave.address]
        before = {a: alice.session_bytes(a) for a in order}
        out = encrypt_fanout(alice.store, [*order, carol.address], b"to everyone")
        assert list(out) == order, "one result per address, in order, without repeats"
        assert isinstance(out[erin], errors.NoSession)
        failed = out[dave.address]
        assert isinstance(failed, errors.UntrustedIdentity) and failed.address == dave.address
        assert alice.session_bytes(dave) == before[dave.address], "a failed address changed"
        assert alice.session_bytes(erin) is None
        for address, peer in recipients.items():
            message = out[address]
            assert isinstance(message, SignalMessage | PreKeySignalMessage), message
            assert alice.session_bytes(address) != before[address]
            assert peer.receive(alice, _wire(message)) == b"to everyone"
            assert alice.receive(peer, peer.send(alice, b"got it")) == b"got it"
        assert isinstance(out[carol.address], SignalMessage)

    # -- concurrency ----------------------------------------------------------------------------

    def test_two_store_objects_race_on_one_session(self) -> None:
        """Two store objects on one account (one, if ``reopen`` is not provided), two threads,
        one session: every message decrypts exactly once, encryption never forks the chain,
        and the session still works both ways afterwards."""
        alice, bob = self.acknowledged()
        first, second = bob.store, self._twin(bob.store)
        count = 30
        messages = [alice.send(bob, b"m%d" % i) for i in range(count)]
        decrypted: list[tuple[int, bytes]] = []
        duplicates: list[int] = []

        def receive(store: Store, order: Sequence[int]) -> Callable[[], None]:
            def job() -> None:
                for i in order:
                    try:
                        decrypted.append((i, bob.cipher(alice, store).decrypt(messages[i])))
                    except errors.DuplicateMessage:
                        duplicates.append(i)

            return job

        failures = _run_together(
            receive(first, range(count)), receive(second, range(count - 1, -1, -1))
        )
        assert failures == [], failures
        assert sorted(i for i, _ in decrypted) == list(range(count)), "not exactly once"
        assert all(p == b"m%d" % i for i, p in decrypted)
        assert sorted(duplicates) == list(range(count))
        # Both objects encrypt at once: no two messages may share a chain position.
        sent: list[tuple[bytes, Message]] = []

        def send(store: Store, tag: bytes) -> Callable[[], None]:
            def job() -> None:
                for i in range(count // 2):
                    plaintext = b"%s%d" % (tag, i)
                    sent.append((plaintext, _wire(bob.cipher(alice, store).encrypt(plaintext))))

            return job

        failures = _run_together(send(first, b"a"), send(second, b"b"))
        assert failures == [], failures
        assert len(sent) == count
        random.Random(3).shuffle(sent)
        for plaintext, message in sent:
            assert alice.receive(bob, message) == plaintext, "the sending chain forked"
        for store in (first, second):
            assert bob.cipher(alice, store).decrypt(alice.send(bob, b"after")) == b"after"
            reply = _wire(bob.cipher(alice, store).encrypt(b"reply"))
            assert alice.receive(bob, reply) == b"reply"

    def test_two_store_objects_race_on_one_sender_key(self) -> None:
        """Two store objects on one account race on one sender key: every message decrypts once."""
        fmt = _Format(legacy=False)
        alice, bob = self.party("alice", 1), self.party("bob", 2)
        fmt.distribute(alice.store, bob.store, alice.address)
        first, second = bob.store, self._twin(bob.store)
        count = 30
        bodies = [fmt.encrypt(alice.store, alice.address, b"g%d" % i) for i in range(count)]
        decrypted: list[tuple[int, bytes]] = []

        def receive(store: Store, order: Sequence[int]) -> Callable[[], None]:
            def job() -> None:
                for i in order:
                    try:
                        decrypted.append((i, fmt.decrypt(store, alice.address, bodies[i])))
                    except errors.DuplicateMessage:
                        pass

            return job

        failures = _run_together(
            receive(first, range(count)), receive(second, range(count - 1, -1, -1))
        )
        assert failures == [], failures
        assert sorted(i for i, _ in decrypted) == list(range(count)), "not exactly once"
        assert all(p == b"g%d" % i for i, p in decrypted)
        last = fmt.encrypt(alice.store, alice.address, b"last")
        assert fmt.decrypt(second, alice.address, last) == b"last"

    def test_racing_for_one_one_time_prekey(self) -> None:
        """Two senders use the same one-time prekey; two store objects decrypt their first
        messages at once: exactly one session is set up."""
        bob = self.party("bob", 2)
        first, second = bob.store, self._twin(bob.store)
        for n in range(10):  # a race: give a wrong store many chances to show it
            bundle = bob.publish(prekey_id=100 + n, signed_prekey_id=6, kyber_prekey_id=200 + n)
            carol, dave = self.party(None, 3), self.party(None, 4)
            carol.cipher(bob).process_bundle(bundle)
            dave.cipher(bob).process_bundle(bundle)
            jobs = [(first, carol, carol.send(bob, b"c")), (second, dave, dave.send(bob, b"d"))]
            outcomes: dict[str, object] = {}
            failures = _run_together(
                *(_first_contact(outcomes, bob.cipher(p, store), m) for store, p, m in jobs)
            )
            assert failures == [], failures
            won = [name for name, r in outcomes.items() if isinstance(r, bytes)]
            lost = [name for name, r in outcomes.items() if isinstance(r, errors.InvalidPreKeyId)]
            assert len(won) == 1 and len(lost) == 1, outcomes
            assert bob.store.load_prekey(100 + n) is None
            assert bob.store.load_kyber_prekey(200 + n) is None
            sessions = {a.name for a in bob.store.session_addresses()}
            assert won[0] in sessions and lost[0] not in sessions

    # -- persistence (only where reopen() is provided) ------------------------------------------

    def test_persistence_across_reopen(self) -> None:
        """A reopened store continues every session (durable stores only)."""
        alice, bob = self.acknowledged()
        first = alice.send(bob, b"first")
        assert bob.receive(alice, first) == b"first"
        fmt = _Format(legacy=False)
        fmt.distribute(alice.store, bob.store, alice.address)
        assert (
            fmt.decrypt(bob.store, alice.address, fmt.encrypt(alice.store, alice.address, b"g"))
            == b"g"
        )
        old_alice, old_bob = alice.store, bob.store
        state = (
            alice.session_bytes(bob),
            bob.session_bytes(alice),
            fmt.record(bob.store, alice.address),
            fmt.record(alice.store, alice.address),
        )
        alice.store, bob.store = self._reopen(old_alice), self._reopen(old_bob)
        self._close(old_alice)
        self._close(old_bob)
        for party, identity, registration_id in (
            (alice, alice.identity, 11),
            (bob, bob.identity, 22),
        ):
            assert bytes(party.store.identity_key_pair) == bytes(identity)
            assert party.store.registration_id == registration_id
        assert (
            alice.session_bytes(bob),
            bob.session_bytes(alice),
            fmt.record(bob.store, alice.address),
            fmt.record(alice.store, alice.address),
        ) == state, "records changed across reopen"
        assert bob.store.identity(alice.address) == alice.identity.public_key
        assert alice.store.identity(bob.address) == bob.identity.public_key
        assert bob.store.session_addresses() == [alice.address]
        assert bob.store.load_prekey(5) is None and bob.store.load_kyber_prekey(7) is None
        assert bob.store.load_signed_prekey(6) is not None
        with pytest.raises(errors.DuplicateMessage):
            bob.receive(alice, first)
        for i in range(3):
            assert bob.receive(alice, alice.send(bob, b"a%d" % i)) == b"a%d" % i
            assert alice.receive(bob, bob.send(alice, b"b%d" % i)) == b"b%d" % i
        body = fmt.encrypt(alice.store, alice.address, b"group again")
        assert fmt.decrypt(bob.store, alice.address, body) == b"group again"
        # And a second reopen sees what the reopened objects wrote.
        again = self._reopen(bob.store)
        assert bytes(again.session(alice.address) or b"") == bob.session_bytes(alice)
