"""Property tests of the public API (hypothesis): the invariants of the stateful conversation
fuzzer (``fuzz/src/targets/conversation.rs``), checked through Python, and wrong types and
sizes for every argument of every public callable.

Invariants, after every step of a two-party conversation over a hostile network:

* nothing raises anything but a ``textsecure.errors`` exception (never a ``PanicException``);
* a message that decrypts yields exactly what was sent, and never twice;
* a failed decryption leaves the receiver's state (session record, identity, prekeys)
  byte-for-byte unchanged;
* the newest message of a direction, delivered intact with no new session or identity change
  since it was sent, decrypts (the Rust fuzzer checks the full "within the limits" rule);
* a damaged message fails, or (PreKeySignalMessage, unauthenticated header fields) carries the
  same authenticated content as an undelivered original and decrypts to its plaintext;
* once the network behaves, the two parties can talk again.

Run time: the ``textsecure-ci`` profile (the default) keeps this file near 30 s; set
``TEXTSECURE_HYPOTHESIS_PROFILE=textsecure-long`` for a longer search, by hand:
``TEXTSECURE_HYPOTHESIS_PROFILE=textsecure-long pytest tests/test_properties.py``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import textsecure as ts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    rule,
)
from textsecure import _native, errors

settings.register_profile(
    "textsecure-ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    stateful_step_count=40,
)
settings.register_profile(
    "textsecure-long",
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    stateful_step_count=100,
)
PROFILE = settings.get_profile(os.environ.get("TEXTSECURE_HYPOTHESIS_PROFILE", "textsecure-ci"))


def allowed(e: BaseException) -> bool:
    """What the public API may raise for bad input: a TypeError or a textsecure error."""
    return isinstance(e, TypeError | errors.TextSecureError)


# --- the conversation state machine -------------------------------------------------------


@dataclass
class Sent:
    n: int
    sender: int
    body: bytes
    type: ts.MessageType
    plaintext: bytes
    epoch: int
    delivered: bool = False


class Party:
    def __init__(self, name: str, registration_id: int) -> None:
        self.address = ts.Address(name, 1)
        self.registration_id = registration_id
        self.store = ts.MemoryStore(ts.IdentityKeyPair.generate(), registration_id)
        self.prekey_ids: list[int] = []
        self.kyber_ids: list[int] = []

    def state(self, peer: Party) -> tuple[Any, ...]:
        record = self.store.session(peer.address)
        identity = self.store.identity(peer.address)
        return (
            None if record is None else bytes(record),
            None if identity is None else bytes(identity),
            tuple(self.store.load_prekey(i) is not None for i in self.prekey_ids),
            tuple(self.store.load_kyber_prekey(i) is not None for i in self.kyber_ids),
        )


def parse_pk(body: bytes) -> Any:
    try:
        return ts.PreKeySignalMessage.from_bytes(body)
    except errors.TextSecureError:
        return None


class Conversation(RuleBasedStateMachine):
    """Alice (0) and Bob (1) over a network that the rules make hostile."""

    inflight = Bundle("inflight")

    def __init__(self) -> None:
        super().__init__()
        self.parties = [Party("alice", 101), Party("bob", 202)]
        self.sent: list[Sent] = []
        self.epoch = 0
        self.next_id = 10
        self.latest: dict[int, int] = {}

    # -- helpers --

    def cipher(self, me: int) -> ts.SessionCipher:
        return ts.SessionCipher(self.parties[me].store, self.parties[1 - me].address)

    def start_session(self, me: int, kyber: bool, one_time: bool) -> None:
        peer = self.parties[1 - me]
        self.next_id += 3
        spk, otk, kid = self.next_id, self.next_id + 1, self.next_id + 2
        bundle = peer.store.new_bundle(
            1,
            prekey_id=otk,
            signed_prekey_id=spk,
            kyber_prekey_id=kid,
            one_time=one_time,
            kyber=kyber,
        )
        peer.prekey_ids.append(otk)
        peer.kyber_ids.append(kid)
        self.cipher(me).process_bundle(bundle)
        self.epoch += 1

    def deliver(
        self, s: Sent, body: bytes | None = None, type_: int | None = None, also: Sent | None = None
    ) -> bool:
        """Delivers ``s`` intact, or damaged ``body`` made from ``s`` (and ``also``, a splice);
        returns True if it decrypted."""
        data = s.body if body is None else body
        msg_type = int(s.type) if type_ is None else type_
        for o in (s, also):
            if o is not None and data == o.body and msg_type == int(o.type) and o is not s:
                return self.deliver(o)
        intact = data == s.body and msg_type == int(s.type)
        receiver, sender = self.parties[1 - s.sender], self.parties[s.sender]
        must = (
            intact
            and not s.delivered
            and s.epoch == self.epoch
            and self.latest.get(s.sender) == s.n
        )
        before = receiver.state(sender)
        try:
            message = ts.parse_message(msg_type, data)
            plaintext = ts.SessionCipher(receiver.store, sender.address).decrypt(message)
        except BaseException as e:
            if not allowed(e):
                raise AssertionError(f"{type(e).__name__}: {e}") from e
            assert receiver.state(sender) == before, f"failed decrypt changed state: {e!r}"
            assert not must, f"the newest intact message failed: {e!r}"
            return False
        if intact:
            assert plaintext == s.plaintext, "decrypted to a different plaintext"
            assert not s.delivered, "a message decrypted twice"
            s.delivered = True
            return True
        # Damaged: only a PreKeySignalMessage whose authenticated content is that of an
        # undelivered original from the same sender, to that original's plaintext.
        mutant = parse_pk(data)
        assert mutant is not None, "a damaged SignalMessage decrypted"
        for o in (s, also):
            original = None if o is None else parse_pk(o.body)
            if (
                o is not None
                and original is not None
                and o.sender == s.sender
                and not o.delivered
                and plaintext == o.plaintext
                and bytes(mutant.message) == bytes(original.message)
                and bytes(mutant.base_key) == bytes(original.base_key)
                and bytes(mutant.identity_key) == bytes(original.identity_key)
            ):
                o.delivered = True
                return True
        raise AssertionError("a damaged message decrypted to another plaintext or twice")

    # -- rules --

    @initialize(kyber=st.booleans(), one_time=st.booleans())
    def connect(self, kyber: bool, one_time: bool) -> None:
        self.start_session(0, kyber, one_time)

    @rule(target=inflight, me=st.integers(0, 1), text=st.binary(max_size=40))
    def send(self, me: int, text: bytes) -> Sent:
        return self._send(me, text)

    def _send(self, me: int, text: bytes) -> Sent:
        if self.parties[me].store.session(self.parties[1 - me].address) is None:
            self.start_session(me, True, True)
        plaintext = b"%d:" % len(self.sent) + text
        m = self.cipher(me).encrypt(plaintext)
        s = Sent(len(self.sent), me, bytes(m), m.type, plaintext, self.epoch)
        self.sent.append(s)
        self.latest[me] = s.n
        return s

    @rule(s=inflight)
    def deliver_intact(self, s: Sent) -> None:
        self.deliver(s)

    @rule(s=inflight, pos=st.integers(0, 1 << 16), bit=st.integers(0, 7))
    def deliver_flipped(self, s: Sent, pos: int, bit: int) -> None:
        body = bytearray(s.body)
        body[pos % len(body)] ^= 1 << bit
        self.deliver(s, bytes(body))

    @rule(s=inflight, keep=st.integers(0, 1 << 16))
    def deliver_truncated(self, s: Sent, keep: int) -> None:
        self.deliver(s, s.body[: keep % len(s.body)])

    @rule(a=inflight, b=inflight, i=st.integers(0, 1 << 16), j=st.integers(0, 1 << 16))
    def deliver_spliced(self, a: Sent, b: Sent, i: int, j: int) -> None:
        body = a.body[: i % (len(a.body) + 1)] + b.body[j % (len(b.body) + 1) :]
        self.deliver(a, body, also=b)

    @rule(s=inflight)
    def deliver_as_other_type(self, s: Sent) -> None:
        other = 2 if s.type == ts.MessageType.PREKEY else 3
        self.deliver(s, s.body, other)

    @rule(me=st.integers(0, 1), kyber=st.booleans(), one_time=st.booleans())
    def new_session(self, me: int, kyber: bool, one_time: bool) -> None:
        self.start_session(me, kyber, one_time)

    @rule(s=inflight)
    def replay_from_store(self, s: Sent) -> None:
        """A record round trip (save what we loaded) changes nothing."""
        p = self.parties[s.sender]
        peer = self.parties[1 - s.sender].address
        record = p.store.session(peer)
        if record is not None:
            raw = bytes(record)
            p.store.save_session(peer, ts.SessionRecord.from_bytes(raw))
            again = p.store.session(peer)
            assert again is not None and bytes(again) == raw

    def teardown(self) -> None:
        """The network behaves: the parties can talk again."""
        for attempt in range(4):
            ok = True
            for me in (0, 1):
                ok = self.deliver(self._send(me, b"heal")) and ok
            if ok:
                for me in (1, 0):
                    assert self.deliver(self._send(me, b"again"))
                return
            if attempt >= 1:
                self.start_session(0, True, True)
        raise AssertionError("the parties could not talk again")


TestConversation = Conversation.TestCase
TestConversation.settings = settings(PROFILE, max_examples=PROFILE.max_examples // 2 or 1)


# --- single-shot properties ---------------------------------------------------------------


@settings(PROFILE)
@given(data=st.binary(max_size=3000), type_=st.integers(-(2**70), 2**70))
def test_parse_message_never_panics(data: bytes, type_: int) -> None:
    try:
        ts.parse_message(type_, data)
    except BaseException as e:
        assert allowed(e), f"{type(e).__name__}: {e}"


def _pair(kyber: bool) -> tuple[Party, Party]:
    alice, bob = Party("alice", 1), Party("bob", 2)
    bundle = bob.store.new_bundle(
        1, prekey_id=5, signed_prekey_id=6, kyber_prekey_id=7, kyber=kyber
    )
    bob.prekey_ids, bob.kyber_ids = [5], [7]
    ts.SessionCipher(alice.store, bob.address).process_bundle(bundle)
    return alice, bob


@pytest.mark.parametrize("kyber", [False, True], ids=["x3dh", "pqxdh"])
@settings(PROFILE, max_examples=max(PROFILE.max_examples // 4, 5))
@given(
    plaintexts=st.lists(st.binary(max_size=64), min_size=1, max_size=8),
    order=st.randoms(use_true_random=False),
)
def test_any_delivery_order_decrypts_each_exactly_once(
    kyber: bool, plaintexts: list[bytes], order: Any
) -> None:
    alice, bob = _pair(kyber)
    to_bob = ts.SessionCipher(alice.store, bob.address)
    to_alice = ts.SessionCipher(bob.store, alice.address)
    sent = [(to_bob.encrypt(p), p) for p in plaintexts]
    deliveries = sent + sent[: len(sent) // 2]
    order.shuffle(deliveries)
    got: list[bytes] = []
    seen: set[bytes] = set()
    for m, p in deliveries:
        before = bob.state(alice)
        try:
            got.append(to_alice.decrypt(ts.parse_message(m.type, bytes(m))))
        except errors.TextSecureError:
            assert bytes(m) in seen, "a first delivery failed"
            assert bob.state(alice) == before
        else:
            assert got[-1] == p and bytes(m) not in seen
        seen.add(bytes(m))
    assert sorted(got) == sorted(plaintexts)


# --- wrong types and sizes for every argument -----------------------------------------------


def _fixtures() -> dict[str, Any]:
    ident = ts.IdentityKeyPair.generate()
    store = ts.MemoryStore(ident, 9)
    bundle = store.new_bundle(1, prekey_id=1, signed_prekey_id=2, kyber_prekey_id=3)
    other = ts.MemoryStore(ts.IdentityKeyPair.generate(), 10)
    addr = ts.Address("x", 1)
    ts.SessionCipher(other, addr).process_bundle(bundle)
    msg = ts.SessionCipher(other, addr).encrypt(b"hi")
    kyber = ts.KyberKeyPair.generate()
    spk = store.load_signed_prekey(2)
    kpk = store.load_kyber_prekey(3)
    record = other.session(addr)
    assert spk is not None and kpk is not None and record is not None
    assert isinstance(msg, ts.PreKeySignalMessage)
    return {
        "ident": ident,
        "priv": ts.PrivateKey.generate(),
        "pub": ident.public_key,
        "store": store,
        "other": other,
        "addr": addr,
        "bundle": bundle,
        "msg": msg,
        "inner": msg.message,
        "kyber": kyber,
        "spk": spk,
        "kpk": kpk,
        "record": record,
    }


F = _fixtures()

# (name, callable, valid arguments, valid keyword arguments)
CALLS: list[tuple[str, Callable[..., Any], list[Any], dict[str, Any]]] = [
    ("PublicKey.from_bytes", ts.PublicKey.from_bytes, [bytes(F["pub"])], {}),
    ("PublicKey.verify", F["pub"].verify, [b"m", bytes(64)], {}),
    ("IdentityKey.from_bytes", ts.IdentityKey.from_bytes, [bytes(F["pub"])], {}),
    ("PrivateKey.from_bytes", ts.PrivateKey.from_bytes, [bytes(F["priv"])], {}),
    ("PrivateKey.agree", F["priv"].agree, [F["pub"]], {}),
    ("PrivateKey.sign", F["priv"].sign, [b"m"], {}),
    (
        "IdentityKeyPair.from_private_bytes",
        ts.IdentityKeyPair.from_private_bytes,
        [bytes(F["priv"])],
        {},
    ),
    ("IdentityKeyPair.from_bytes", ts.IdentityKeyPair.from_bytes, [bytes(F["ident"])], {}),
    ("KyberPublicKey.from_bytes", ts.KyberPublicKey.from_bytes, [bytes(F["kyber"].public_key)], {}),
    ("KyberSecretKey.from_bytes", ts.KyberSecretKey.from_bytes, [bytes(F["kyber"].secret_key)], {}),
    ("KyberKeyPair", ts.KyberKeyPair, [F["kyber"].secret_key, F["kyber"].public_key], {}),
    ("KyberKeyPair.generate", ts.KyberKeyPair.generate, [], {"ml_kem": False}),
    ("KyberKeyPair.decapsulate", F["kyber"].decapsulate, [F["kyber"].encapsulate()[1]], {}),
    ("PreKeyRecord", ts.PreKeyRecord, [1, F["priv"]], {}),
    ("PreKeyRecord.generate", ts.PreKeyRecord.generate, [1], {}),
    (
        "PreKeyRecord.from_bytes",
        ts.PreKeyRecord.from_bytes,
        [bytes(ts.PreKeyRecord.generate(1))],
        {},
    ),
    ("SignedPreKeyRecord", ts.SignedPreKeyRecord, [1, F["priv"], bytes(64), 5], {}),
    ("SignedPreKeyRecord.generate", ts.SignedPreKeyRecord.generate, [1, F["ident"], 5], {}),
    ("SignedPreKeyRecord.from_bytes", ts.SignedPreKeyRecord.from_bytes, [bytes(F["spk"])], {}),
    ("KyberPreKeyRecord", ts.KyberPreKeyRecord, [1, F["kyber"], bytes(64), 5], {}),
    ("KyberPreKeyRecord.generate", ts.KyberPreKeyRecord.generate, [1, F["ident"], 5], {}),
    ("KyberPreKeyRecord.from_bytes", ts.KyberPreKeyRecord.from_bytes, [bytes(F["kpk"])], {}),
    ("SessionRecord.from_bytes", ts.SessionRecord.from_bytes, [bytes(F["record"])], {}),
    ("SignalMessage.from_bytes", ts.SignalMessage.from_bytes, [bytes(F["inner"])], {}),
    ("PreKeySignalMessage.from_bytes", ts.PreKeySignalMessage.from_bytes, [bytes(F["msg"])], {}),
    ("parse_message", ts.parse_message, [3, bytes(F["msg"])], {}),
    ("Address", ts.Address, ["n", 1], {}),
    ("MemoryStore", ts.MemoryStore, [F["ident"], 5], {}),
    ("MemoryStore.save_prekey", F["store"].save_prekey, [ts.PreKeyRecord.generate(50)], {}),
    ("MemoryStore.load_prekey", F["store"].load_prekey, [1], {}),
    ("MemoryStore.remove_prekey", F["store"].remove_prekey, [999], {}),
    ("MemoryStore.save_signed_prekey", F["store"].save_signed_prekey, [F["spk"]], {}),
    ("MemoryStore.load_signed_prekey", F["store"].load_signed_prekey, [2], {}),
    ("MemoryStore.remove_signed_prekey", F["store"].remove_signed_prekey, [999], {}),
    (
        "MemoryStore.save_kyber_prekey",
        F["store"].save_kyber_prekey,
        [F["kpk"]],
        {"last_resort": False},
    ),
    ("MemoryStore.load_kyber_prekey", F["store"].load_kyber_prekey, [3], {}),
    ("MemoryStore.remove_kyber_prekey", F["store"].remove_kyber_prekey, [999], {}),
    (
        "MemoryStore.new_bundle",
        F["store"].new_bundle,
        [1],
        {"prekey_id": 60, "signed_prekey_id": 61, "kyber_prekey_id": 62},
    ),
    ("MemoryStore.session", F["store"].session, [F["addr"]], {}),
    ("MemoryStore.save_session", F["store"].save_session, [ts.Address("y", 1), F["record"]], {}),
    ("MemoryStore.remove_session", F["store"].remove_session, [ts.Address("z", 1)], {}),
    ("MemoryStore.identity", F["store"].identity, [F["addr"]], {}),
    ("MemoryStore.trust", F["store"].trust, [ts.Address("w", 1), F["pub"]], {}),
    ("SessionCipher", ts.SessionCipher, [F["other"], F["addr"]], {}),
    ("SessionCipher.encrypt", ts.SessionCipher(F["other"], F["addr"]).encrypt, [b"x"], {}),
    (
        "SessionCipher.decrypt",
        ts.SessionCipher(F["store"], ts.Address("q", 1)).decrypt,
        [F["msg"]],
        {},
    ),
    (
        "SessionCipher.process_bundle",
        ts.SessionCipher(
            ts.MemoryStore(ts.IdentityKeyPair.generate(), 3), F["addr"]
        ).process_bundle,
        [F["bundle"]],
        {},
    ),
    (
        "PreKeyBundle",
        ts.PreKeyBundle,
        [],
        {
            "registration_id": 1,
            "device_id": 1,
            "identity_key": F["pub"],
            "signed_prekey_id": 2,
            "signed_prekey_public": F["spk"].public_key,
            "signed_prekey_signature": F["spk"].signature,
            "prekey_id": 3,
            "prekey_public": F["priv"].public_key,
            "kyber_prekey_id": 4,
            "kyber_prekey_public": F["kpk"].public_key,
            "kyber_prekey_signature": F["kpk"].signature,
        },
    ),
]


def _more_calls() -> list[tuple[str, Callable[..., Any], list[Any], dict[str, Any]]]:
    """Groups, safety numbers, sealed sender, attachments, WhatsApp media and hazmat: every
    public callable that takes arguments, with valid arguments."""
    from textsecure import attachments as att
    from textsecure import hazmat

    ident, store, other, addr = F["ident"], F["store"], F["other"], F["addr"]
    sender = ts.Address("5e2d0c4e-8d0a-4f7a-9a53-3f1c2b7d9e01", 1)
    dist = uuid.UUID("0b6f5a8e-3d0c-4c52-8d0e-2e0a9f3b7c11")
    g_store = ts.MemoryStore(ts.IdentityKeyPair.generate(), 7)
    gc = ts.GroupCipher(g_store, dist)
    skdm = gc.create_distribution(sender)
    skm = gc.encrypt(sender, b"g")
    g_recv = ts.GroupCipher(ts.MemoryStore(ts.IdentityKeyPair.generate(), 8), dist)
    g_recv.process_distribution(sender, skdm)
    lgc = ts.LegacyGroupCipher(g_store, "group")
    lskdm = lgc.create_distribution(sender)
    lskm = lgc.encrypt(sender, b"g")
    l_recv = ts.LegacyGroupCipher(ts.MemoryStore(ts.IdentityKeyPair.generate(), 9), "group")
    l_recv.process_distribution(sender, lskdm)
    record = g_store.sender_key(sender, dist)
    assert record is not None

    root = ts.PrivateKey.generate()
    server = ts.PrivateKey.generate()
    server_cert = ts.ServerCertificate.create(1, server.public_key, root)
    sender_cert = ts.SenderCertificate.create(
        sender_uuid=sender.name,
        sender_device_id=1,
        identity_key=ident.public_key,
        expiration=2**40,
        server_certificate=server_cert,
        server_key=server,
    )
    usmc = ts.UnidentifiedSenderMessageContent(2, sender_cert, b"contents")
    recipient = ts.IdentityKeyPair.generate()
    sealed = ts.sealed_sender_encrypt(usmc, sender=ident, recipient=recipient.public_key)
    rcpt_id = "9f0c2d4e-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
    multi = ts.sealed_sender_multi_recipient_encrypt(
        usmc, [(rcpt_id, recipient.public_key, [(1, 5)])], sender=ident
    )
    smrm = ts.SealedSenderMultiRecipientMessage.from_bytes(multi)
    fp = ts.Fingerprint.create(
        local_id=b"a", local_key=ident.public_key, remote_id=b"b", remote_key=recipient.public_key
    )
    sealed_cipher = ts.SealedSessionCipher(ts.MemoryStore(recipient, 11))

    key64, iv16, mkey = bytes(range(64)), bytes(16), bytes(range(32))
    blob, info = _native.attachment_encrypt(b"data", key64, iv16)
    wa_blob, wa_info = _native.whatsapp_encrypt(b"data", "image", mkey)
    enc = _native.AttachmentEncryptor(key64, iv16, 65536)
    dec = _native.AttachmentDecryptor(key64, 4, info[0])
    wenc = _native.WhatsAppMediaEncryptor(mkey, "image")
    wdec = _native.WhatsAppMediaDecryptor(mkey, "image")
    a = att.encrypt(b"data")
    w = att.encrypt_whatsapp(b"data", media_type="image")
    spk = ts.PrivateKey.generate()

    def consume(f: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *args, **kwargs: list(f(*args, **kwargs))

    return [
        ("IdentityKey.verify", ident.public_key.verify, [b"m", bytes(64)], {}),
        ("KyberKeyPair.encapsulate", F["kyber"].encapsulate, [], {}),
        ("SessionRecord", ts.SessionRecord, [], {}),
        ("MemoryStore.sender_key", g_store.sender_key, [sender, dist], {}),
        ("MemoryStore.save_sender_key", g_store.save_sender_key, [sender, dist, record], {}),
        (
            "MemoryStore.remove_sender_key",
            ts.MemoryStore(ident, 3).remove_sender_key,
            [sender, dist],
            {},
        ),
        (
            "SenderKeyDistributionMessage.from_bytes",
            ts.SenderKeyDistributionMessage.from_bytes,
            [bytes(skdm)],
            {},
        ),
        ("SenderKeyMessage.from_bytes", ts.SenderKeyMessage.from_bytes, [bytes(skm)], {}),
        (
            "LegacySenderKeyDistributionMessage.from_bytes",
            ts.LegacySenderKeyDistributionMessage.from_bytes,
            [bytes(lskdm)],
            {},
        ),
        (
            "LegacySenderKeyMessage.from_bytes",
            ts.LegacySenderKeyMessage.from_bytes,
            [bytes(lskm)],
            {},
        ),
        ("SenderKeyRecord.from_bytes", ts.SenderKeyRecord.from_bytes, [bytes(record)], {}),
        ("GroupCipher", ts.GroupCipher, [g_store, dist], {}),
        ("GroupCipher.create_distribution", gc.create_distribution, [sender], {}),
        ("GroupCipher.process_distribution", g_recv.process_distribution, [sender, skdm], {}),
        ("GroupCipher.encrypt", gc.encrypt, [sender, b"x"], {}),
        ("GroupCipher.decrypt", g_recv.decrypt, [sender, skm], {}),
        ("LegacyGroupCipher", ts.LegacyGroupCipher, [g_store, "group"], {}),
        ("LegacyGroupCipher.create_distribution", lgc.create_distribution, [sender], {}),
        (
            "LegacyGroupCipher.process_distribution",
            l_recv.process_distribution,
            [sender, lskdm],
            {},
        ),
        ("LegacyGroupCipher.encrypt", lgc.encrypt, [sender, b"x"], {}),
        ("LegacyGroupCipher.decrypt", l_recv.decrypt, [sender, lskm], {}),
        ("encrypt_fanout", ts.encrypt_fanout, [other, [addr], b"x"], {}),
        (
            "Fingerprint.create",
            ts.Fingerprint.create,
            [],
            {
                "local_id": b"a",
                "local_key": ident.public_key,
                "remote_id": b"b",
                "remote_key": recipient.public_key,
                "version": 2,
                "iterations": 2,
            },
        ),
        ("Fingerprint.matches", fp.matches, [fp.scannable], {}),
        ("ServerCertificate.create", ts.ServerCertificate.create, [1, server.public_key, root], {}),
        ("ServerCertificate.from_bytes", ts.ServerCertificate.from_bytes, [bytes(server_cert)], {}),
        ("ServerCertificate.validate", server_cert.validate, [root.public_key], {}),
        (
            "SenderCertificate.create",
            ts.SenderCertificate.create,
            [],
            {
                "sender_uuid": sender.name,
                "sender_device_id": 1,
                "identity_key": ident.public_key,
                "expiration": 2**40,
                "server_certificate": server_cert,
                "server_key": server,
                "sender_e164": "+15550100",
            },
        ),
        ("SenderCertificate.from_bytes", ts.SenderCertificate.from_bytes, [bytes(sender_cert)], {}),
        (
            "SenderCertificate.validate",
            sender_cert.validate,
            [root.public_key, 5],
            {"server_certificates": [server_cert]},
        ),
        (
            "UnidentifiedSenderMessageContent",
            ts.UnidentifiedSenderMessageContent,
            [2, sender_cert, b"c"],
            {"content_hint": 1, "group_id": b"g"},
        ),
        (
            "UnidentifiedSenderMessageContent.from_bytes",
            ts.UnidentifiedSenderMessageContent.from_bytes,
            [bytes(usmc)],
            {},
        ),
        (
            "sealed_sender_encrypt",
            ts.sealed_sender_encrypt,
            [usmc],
            {"sender": ident, "recipient": recipient.public_key},
        ),
        (
            "sealed_sender_decrypt_to_usmc",
            ts.sealed_sender_decrypt_to_usmc,
            [sealed, recipient],
            {},
        ),
        (
            "sealed_sender_multi_recipient_encrypt",
            ts.sealed_sender_multi_recipient_encrypt,
            [usmc, [(rcpt_id, recipient.public_key, [(1, 5)])]],
            {"sender": ident, "excluded": [sender.name], "threads": 1},
        ),
        (
            "sealed_sender_multi_recipient_message_for_single_recipient",
            ts.sealed_sender_multi_recipient_message_for_single_recipient,
            [multi],
            {},
        ),
        (
            "SealedSenderMultiRecipientMessage.from_bytes",
            ts.SealedSenderMultiRecipientMessage.from_bytes,
            [multi],
            {},
        ),
        (
            "SealedSenderMultiRecipientMessage.message_for_recipient",
            smrm.message_for_recipient,
            [rcpt_id],
            {},
        ),
        ("SealedSessionCipher", ts.SealedSessionCipher, [store], {}),
        (
            "SealedSessionCipher.encrypt",
            ts.SealedSessionCipher(other).encrypt,
            [addr, b"x", sender_cert],
            {"content_hint": 0, "group_id": None},
        ),
        ("SealedSessionCipher.seal", ts.SealedSessionCipher(other).seal, [addr, usmc], {}),
        (
            "SealedSessionCipher.multi_recipient_encrypt",
            ts.SealedSessionCipher(other).multi_recipient_encrypt,
            [[addr], usmc],
            {"excluded": [], "threads": 1},
        ),
        ("SealedSessionCipher.decrypt_to_usmc", sealed_cipher.decrypt_to_usmc, [sealed], {}),
        (
            "SealedSessionCipher.unseal",
            sealed_cipher.unseal,
            [sealed],
            {
                "trust_root": root.public_key,
                "timestamp": 5,
                "local_address": None,
                "server_certificates": [server_cert],
            },
        ),
        (
            "SealedSessionCipher.decrypt",
            sealed_cipher.decrypt,
            [sealed],
            {"trust_root": [root.public_key], "timestamp": 5},
        ),
        ("hazmat.x25519", hazmat.x25519, [bytes(spk), bytes(F["pub"])[1:]], {}),
        ("hazmat.x25519_public", hazmat.x25519_public, [bytes(spk)], {}),
        ("hazmat.hkdf_sha256", hazmat.hkdf_sha256, [b"k", None, b"i", 32], {}),
        ("hazmat.hmac_sha256", hazmat.hmac_sha256, [b"k", b"d"], {}),
        ("hazmat.aes256_cbc_encrypt", hazmat.aes256_cbc_encrypt, [mkey, iv16, b"p"], {}),
        ("hazmat.aes256_cbc_decrypt", hazmat.aes256_cbc_decrypt, [mkey, iv16, bytes(16)], {}),
        ("hazmat.aes256_ctr", hazmat.aes256_ctr, [mkey, iv16, b"d"], {}),
        ("hazmat.xeddsa_sign", hazmat.xeddsa_sign, [bytes(spk), b"m"], {}),
        ("hazmat.xeddsa_verify", hazmat.xeddsa_verify, [bytes(F["pub"]), b"m", bytes(64)], {}),
        ("_native.attachment_padded_size", _native.attachment_padded_size, [5], {}),
        ("_native.attachment_blob_len", _native.attachment_blob_len, [5], {}),
        ("_native.attachment_chunk_size", _native.attachment_chunk_size, [5], {}),
        ("_native.incremental_chunk_size", _native.incremental_chunk_size, [5], {}),
        ("_native.incremental_mac", _native.incremental_mac, [mkey, b"d", 65536], {}),
        (
            "_native.attachment_encrypt",
            _native.attachment_encrypt,
            [b"d", key64, iv16],
            {"chunk_size": 65536, "threads": 1},
        ),
        (
            "_native.attachment_decrypt",
            _native.attachment_decrypt,
            [blob, key64, info[0], 4],
            {"incremental_mac": info[1], "chunk_size": info[2], "threads": 1},
        ),
        ("_native.AttachmentEncryptor", _native.AttachmentEncryptor, [key64, iv16, 65536], {}),
        ("_native.AttachmentEncryptor.update", enc.update, [b"d"], {}),
        ("_native.AttachmentEncryptor.pad", enc.pad, [16], {}),
        (
            "_native.AttachmentDecryptor",
            _native.AttachmentDecryptor,
            [key64, 4, info[0]],
            {"incremental_mac": info[1], "chunk_size": info[2], "blob_len": len(blob)},
        ),
        ("_native.AttachmentDecryptor.update", dec.update, [blob[:5]], {}),
        ("_native.whatsapp_hkdf_info", _native.whatsapp_hkdf_info, ["image"], {}),
        ("_native.whatsapp_media_keys", _native.whatsapp_media_keys, [mkey, "image"], {}),
        (
            "_native.whatsapp_encrypt",
            _native.whatsapp_encrypt,
            [b"d", "image", mkey],
            {"threads": 1},
        ),
        (
            "_native.whatsapp_decrypt",
            _native.whatsapp_decrypt,
            [wa_blob, "image", mkey],
            {"file_sha256": wa_info[0], "file_enc_sha256": wa_info[1], "threads": 1},
        ),
        ("_native.WhatsAppMediaEncryptor", _native.WhatsAppMediaEncryptor, [mkey, "image"], {}),
        ("_native.WhatsAppMediaEncryptor.update", wenc.update, [b"d"], {}),
        (
            "_native.WhatsAppMediaDecryptor",
            _native.WhatsAppMediaDecryptor,
            [mkey, "image"],
            {"file_sha256": wa_info[0], "file_enc_sha256": wa_info[1], "enc_len": len(wa_blob)},
        ),
        ("_native.WhatsAppMediaDecryptor.update", wdec.update, [wa_blob[:5]], {}),
        ("attachments.padded_size", att.padded_size, [5], {}),
        ("attachments.blob_size", att.blob_size, [5], {}),
        ("attachments.incremental_chunk_size", att.incremental_chunk_size, [5], {}),
        ("attachments.libsignal_chunk_size", att.libsignal_chunk_size, [5], {}),
        ("attachments.incremental_mac", att.incremental_mac, [mkey, b"d", 65536], {}),
        (
            "attachments.encrypt",
            att.encrypt,
            [b"d"],
            {"key": key64, "iv": iv16, "chunk_size": 65536, "threads": 1},
        ),
        (
            "attachments.decrypt",
            att.decrypt,
            [a.blob],
            {
                "key": a.key,
                "digest": a.digest,
                "size": a.plaintext_size,
                "incremental_mac": a.incremental_mac,
                "chunk_size": a.chunk_size,
                "threads": 1,
            },
        ),
        (
            "attachments.encrypt_stream",
            consume(att.encrypt_stream),
            [[b"d"]],
            {"key": key64, "size": 1, "chunk_size": 65536, "iv": iv16},
        ),
        (
            "attachments.decrypt_stream",
            consume(att.decrypt_stream),
            [[a.blob]],
            {
                "key": a.key,
                "digest": a.digest,
                "size": a.plaintext_size,
                "incremental_mac": a.incremental_mac,
                "chunk_size": a.chunk_size,
            },
        ),
        ("attachments.whatsapp_hkdf_info", att.whatsapp_hkdf_info, ["image"], {}),
        ("attachments.whatsapp_media_keys", att.whatsapp_media_keys, [mkey, "image"], {}),
        (
            "attachments.encrypt_whatsapp",
            att.encrypt_whatsapp,
            [b"d"],
            {"media_type": "image", "media_key": mkey},
        ),
        (
            "attachments.decrypt_whatsapp",
            att.decrypt_whatsapp,
            [w.blob],
            {
                "media_type": "image",
                "media_key": w.media_key,
                "file_sha256": w.file_sha256,
                "file_enc_sha256": w.file_enc_sha256,
            },
        ),
    ]


CALLS += _more_calls()

#: Arguments that take a path as well as data: a string names a file, and a missing one
#: raises the usual ``OSError``.
PATH_ARGUMENTS = {("attachments.encrypt_stream", 0), ("attachments.decrypt_stream", 0)}

BAD_VALUES: list[Any] = [
    None,
    0,
    -1,
    2**32,
    2**64,
    -(2**63) - 1,
    1.5,
    float("nan"),
    True,
    "text",
    "",
    b"",
    b"\x05",
    bytes(31),
    bytes(32),
    b"\x05" + bytes(32),
    bytes(33),
    bytes(64),
    b"\x08" + bytes(1568),
    b"\x0a" + bytes(3168),
    bytes(100_000),
    bytearray(33),
    memoryview(b"\x05" + bytes(32)),
    [1, 2],
    {"a": 1},
    object(),
    ts.Address("a", 1),
    ts.MessageType.WHISPER,
]


def _cases() -> list[tuple[str, int | str, int]]:
    out: list[tuple[str, int | str, int]] = []
    for name, _f, args, kwargs in CALLS:
        positions: list[int | str] = [*range(len(args)), *kwargs]
        for pos in positions:
            for v in range(len(BAD_VALUES)):
                out.append((name, pos, v))
    return out


def _call(name: str, pos: int | str, value: Any) -> Any:
    """Calls ``name`` with its valid arguments, argument ``pos`` replaced by ``value``."""
    _, f, args, kwargs = next(c for c in CALLS if c[0] == name)
    args, kwargs = list(args), dict(kwargs)
    if isinstance(pos, int):
        args[pos] = value
    else:
        kwargs[pos] = value
    return f(*args, **kwargs)


def _call_with(name: str, pos: int | str, value: Any) -> None:
    try:
        _call(name, pos, value)
    except BaseException as e:
        path_arg = (name, pos) in PATH_ARGUMENTS and isinstance(value, str)
        if not (allowed(e) or (path_arg and isinstance(e, OSError))):
            raise AssertionError(f"{name} arg {pos}={value!r:.40}: {type(e).__name__}: {e}") from e


@pytest.mark.parametrize("name", [c[0] for c in CALLS])
def test_wrong_types_and_sizes_every_argument(name: str) -> None:
    """Every argument of every public callable gets every bad value (the others valid)."""
    for n, pos, v in _cases():
        if n == name:
            _call_with(name, pos, BAD_VALUES[v])


@pytest.mark.parametrize(
    "name,pos,value",
    [
        ("PreKeyRecord", 0, -1),
        ("MemoryStore.load_prekey", 0, 2**32),
        ("SignedPreKeyRecord", 3, -1),
        ("PreKeyBundle", "registration_id", 2**64),
        ("Address", 1, -(2**63) - 1),
        ("PreKeyBundle", "prekey_id", None),
        ("MemoryStore.new_bundle", "prekey_id", None),
    ],
)
def test_out_of_range_and_unpaired_arguments(name: str, pos: int | str, value: Any) -> None:
    """An integer outside its argument's range, or one of a group of optional arguments that go
    together left out, raises ``errors.InvalidArgument`` (a ``ValueError``), not pyo3's
    ``OverflowError`` or a bare ``ValueError``."""
    with pytest.raises(errors.InvalidArgument):
        _call(name, pos, value)


@settings(PROFILE)
@given(
    call=st.sampled_from([c[0] for c in CALLS]),
    data=st.data(),
    value=st.one_of(
        st.binary(max_size=4000),
        st.integers(-(2**80), 2**80),
        st.text(max_size=20),
        st.none(),
        st.floats(),
        st.lists(st.integers(0, 255), max_size=40),
    ),
)
def test_random_arguments(call: str, data: st.DataObject, value: Any) -> None:
    _, _f, args, kwargs = next(c for c in CALLS if c[0] == call)
    positions: list[int | str] = [*range(len(args)), *kwargs]
    if not positions:
        return
    pos = data.draw(st.sampled_from(positions))
    _call_with(call, pos, value)
