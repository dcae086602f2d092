"""Sealed sender through the public API: certificates, v1 and v2 round trips, the 1:1
convenience over a store, the libsignal 0.103 vector (sealed_sender_pqxdh.json), and hostile
input (every truncation and bit flip) that must raise textsecure.errors and change nothing.

Live interop with libsignal-client is in tests/interop/test_interop_fingerprint_sealed.py.
Every test with a store runs once per store kind (``new_store``: MemoryStore, SQLiteStore,
PostgresStore).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import textsecure as ts
from support import Store, StoreFactory, require_shared
from textsecure import errors

NOW = 1_700_000_000_000
EXPIRES = NOW + 3_600_000
PC = b"\xc0opaque"


class Server:
    def __init__(self, key_id: int = 1) -> None:
        self.root = ts.PrivateKey.generate()
        self.key = ts.PrivateKey.generate()
        self.cert = ts.ServerCertificate.create(key_id, self.key.public_key, self.root)

    def sender_cert(
        self, name: str, device: int, key: ts.PublicKey, expiration: int = EXPIRES
    ) -> ts.SenderCertificate:
        return ts.SenderCertificate.create(
            sender_uuid=name,
            sender_device_id=device,
            identity_key=key,
            expiration=expiration,
            server_certificate=self.cert,
            server_key=self.key,
        )


def _party(new_store: StoreFactory, reg: int = 1) -> tuple[str, Store]:
    return str(uuid.uuid4()), new_store(ts.IdentityKeyPair.generate(), reg)


def _snapshot(store: Store) -> dict[str, Any]:
    return {
        "sessions": {
            str(a): bytes(r)
            for a in store.session_addresses()
            if (r := store.session(a)) is not None
        },
        "identities": {
            str(a): bytes(k)
            for a in store.session_addresses()
            if (k := store.identity(a)) is not None
        },
    }


# -- certificates -----------------------------------------------------------------------------


def test_certificates_roundtrip_and_validation() -> None:
    server = Server(key_id=0x1234)
    sc = ts.ServerCertificate.from_bytes(bytes(server.cert))
    assert sc == server.cert and sc.key_id == 0x1234 and sc.key == server.key.public_key
    sc.validate(server.root.public_key)
    sc.validate(bytes(server.root.public_key))
    with pytest.raises(errors.InvalidCertificate, match="trust root"):
        sc.validate(ts.PrivateKey.generate().public_key)
    assert server.root.public_key.verify(sc.certificate, sc.signature)

    key = ts.IdentityKeyPair.generate().public_key
    cert = ts.SenderCertificate.create(
        sender_uuid="9d0652a3-dcc3-4d11-975f-74d61598733f",
        sender_e164="+14152222222",
        sender_device_id=127,
        identity_key=key,
        expiration=EXPIRES,
        server_certificate=server.cert,
        server_key=server.key,
    )
    again = ts.SenderCertificate.from_bytes(bytes(cert))
    assert again == cert
    assert again.sender_address == ts.Address("9d0652a3-dcc3-4d11-975f-74d61598733f", 127)
    assert again.sender_e164 == "+14152222222" and again.identity_key == key
    assert again.server_certificate == server.cert and again.server_certificate_id == 0x1234
    again.validate(server.root.public_key, EXPIRES)
    again.validate([ts.PrivateKey.generate().public_key, server.root.public_key], NOW)
    with pytest.raises(errors.InvalidCertificate, match="expired"):
        again.validate(server.root.public_key, EXPIRES + 1)
    with pytest.raises(errors.InvalidCertificate, match="trust root"):
        again.validate(ts.PrivateKey.generate().public_key, NOW)

    # Signed by a server key other than the one in the embedded server certificate.
    forged = ts.SenderCertificate.create(
        sender_uuid=cert.sender_uuid,
        sender_device_id=1,
        identity_key=key,
        expiration=EXPIRES,
        server_certificate=server.cert,
        server_key=ts.PrivateKey.generate(),
    )
    with pytest.raises(errors.InvalidCertificate, match="not signed by its server"):
        forged.validate(server.root.public_key, NOW)

    for bad_device in (0, 128):
        with pytest.raises(errors.InvalidArgument):
            server.sender_cert(cert.sender_uuid, bad_device, key)


def test_revoked_server_key_id() -> None:
    server = Server(key_id=0xDEADC357)
    with pytest.raises(errors.InvalidCertificate, match="revoked"):
        server.cert.validate(server.root.public_key)
    cert = server.sender_cert(str(uuid.uuid4()), 1, ts.IdentityKeyPair.generate().public_key)
    with pytest.raises(errors.InvalidCertificate, match="revoked"):
        cert.validate(server.root.public_key, NOW)


# -- round trips ------------------------------------------------------------------------------


def test_usmc_fields() -> None:
    server = Server()
    cert = server.sender_cert(str(uuid.uuid4()), 2, ts.IdentityKeyPair.generate().public_key)
    for mt in (ts.MessageType.WHISPER, ts.MessageType.PREKEY, 7, 8):
        u = ts.UnidentifiedSenderMessageContent(mt, cert, b"x", content_hint=2, group_id=b"g")
        back = ts.UnidentifiedSenderMessageContent.from_bytes(bytes(u))
        assert back.message_type == mt and back.contents == b"x"
        assert back.content_hint == ts.ContentHint.IMPLICIT and back.group_id == b"g"
        assert back.sender == cert.sender_address
    u = ts.UnidentifiedSenderMessageContent(8, cert, b"x", content_hint=9, group_id=b"")
    assert u.content_hint == 9 and u.group_id is None
    with pytest.raises(errors.InvalidArgument):
        ts.UnidentifiedSenderMessageContent(1, cert, b"x")


def test_v1_and_v2_roundtrip_functional() -> None:
    server = Server()
    alice = ts.IdentityKeyPair.generate()
    bob, carol = ts.IdentityKeyPair.generate(), ts.IdentityKeyPair.generate()
    cert = server.sender_cert(str(uuid.uuid4()), 1, alice.public_key)
    content = ts.UnidentifiedSenderMessageContent(8, cert, PC, group_id=b"gid")
    v1 = ts.sealed_sender_encrypt(content, sender=alice, recipient=bob.public_key)
    assert bytes(ts.sealed_sender_decrypt_to_usmc(v1, bob)) == bytes(content)
    bob_id, carol_id = str(uuid.uuid4()), f"PNI:{uuid.uuid4()}"
    sent = ts.sealed_sender_multi_recipient_encrypt(
        content,
        [
            (bob_id, bob.public_key, [(1, 100), (2, 0x3FFF)]),
            (carol_id, bytes(carol.public_key), [(5, 7)]),
        ],
        sender=alice,
        excluded=[str(uuid.uuid4())],
        threads=1,
    )
    m = ts.SealedSenderMultiRecipientMessage.from_bytes(sent)
    assert m.recipients == {bob_id: [(1, 100), (2, 0x3FFF)], carol_id: [(5, 7)]}
    assert len(m.excluded_recipients) == 1
    for sid, who in ((bob_id, bob), (carol_id, carol)):
        assert bytes(ts.sealed_sender_decrypt_to_usmc(m.message_for_recipient(sid), who)) == (
            bytes(content)
        )
    with pytest.raises(errors.InvalidArgument):
        ts.sealed_sender_multi_recipient_message_for_single_recipient(sent)
    bads: list[list[tuple[str, ts.PublicKey, list[tuple[int, int]]]]] = [
        [("alice", bob.public_key, [(1, 1)])],  # not a service id
        [(bob_id, bob.public_key, [])],  # no devices
        [(bob_id, bob.public_key, [(128, 1)])],  # device id
        [(bob_id, bob.public_key, [(1, 0x4000)])],  # registration id
    ]
    for bad in bads:
        with pytest.raises(errors.InvalidArgument):
            ts.sealed_sender_multi_recipient_encrypt(content, bad, sender=alice)
    with pytest.raises(errors.InvalidArgument):
        ts.sealed_sender_multi_recipient_encrypt(
            content, [(bob_id, bob.public_key, [(1, 1)])], sender=alice, threads=0
        )


def _session_pair(
    new_store: StoreFactory,
) -> tuple[Server, str, Store, ts.SealedSessionCipher, str, Store, ts.SealedSessionCipher]:
    server = Server()
    a_name, a_store = _party(new_store, 11)
    b_name, b_store = _party(new_store, 22)
    bundle = b_store.new_bundle(1, prekey_id=1, signed_prekey_id=2, kyber_prekey_id=3)
    ts.SessionCipher(a_store, ts.Address(b_name, 1)).process_bundle(bundle)
    return (
        server,
        a_name,
        a_store,
        ts.SealedSessionCipher(a_store),
        b_name,
        b_store,
        ts.SealedSessionCipher(b_store),
    )


def test_sealed_session_conversation(new_store: StoreFactory) -> None:
    """1:1 messages sealed end to end, both directions, with the certificate validated."""
    server, a_name, a_store, alice, b_name, b_store, bob = _session_pair(new_store)
    a_cert = server.sender_cert(a_name, 1, a_store.identity_key_pair.public_key)
    b_cert = server.sender_cert(b_name, 1, b_store.identity_key_pair.public_key)
    root = server.root.public_key
    for i in range(3):
        sealed = alice.encrypt(ts.Address(b_name, 1), b"hi %d" % i, a_cert, content_hint=1)
        r = bob.decrypt(sealed, trust_root=root, timestamp=NOW, local_address=ts.Address(b_name, 1))
        assert r.plaintext == b"hi %d" % i and r.sender == ts.Address(a_name, 1)
        assert r.message_type == (ts.MessageType.PREKEY if i == 0 else ts.MessageType.WHISPER)
        assert r.content_hint == ts.ContentHint.RESENDABLE and r.group_id is None
        assert r.sender_uuid == a_name and r.device_id == 1 and r.sender_e164 is None
        back = bob.encrypt(ts.Address(a_name, 1), b"ok %d" % i, b_cert, group_id=b"G")
        r2 = alice.decrypt(back, trust_root=[root], timestamp=NOW)
        assert r2.plaintext == b"ok %d" % i and r2.group_id == b"G"
        assert r2.content.sender_certificate == b_cert


def test_sealed_decrypt_failures_leave_state_unchanged(new_store: StoreFactory) -> None:
    server, a_name, a_store, alice, b_name, b_store, bob = _session_pair(new_store)
    a_cert = server.sender_cert(a_name, 1, a_store.identity_key_pair.public_key)
    sealed = alice.encrypt(ts.Address(b_name, 1), b"first", a_cert)
    before = _snapshot(b_store)
    prekeys = (b_store.load_prekey(1), b_store.load_kyber_prekey(3))
    root = server.root.public_key
    with pytest.raises(errors.InvalidCertificate):
        bob.decrypt(sealed, trust_root=root, timestamp=EXPIRES + 1)
    with pytest.raises(errors.InvalidCertificate):
        bob.decrypt(sealed, trust_root=Server().root.public_key, timestamp=NOW)
    with pytest.raises(errors.InvalidMessage):
        bob.decrypt(sealed, trust_root=root, timestamp=NOW, local_address=ts.Address(a_name, 1))
    assert _snapshot(b_store) == before
    assert b_store.identity(ts.Address(a_name, 1)) is None
    assert (b_store.load_prekey(1) is None, b_store.load_kyber_prekey(3) is None) == (
        prekeys[0] is None,
        prekeys[1] is None,
    )
    r = bob.decrypt(sealed, trust_root=root, timestamp=NOW)
    assert r.plaintext == b"first"
    # A replay is a duplicate or a missing prekey, and changes nothing.
    after = _snapshot(b_store)
    with pytest.raises(errors.TextSecureError):
        bob.decrypt(sealed, trust_root=root, timestamp=NOW)
    assert _snapshot(b_store) == after


def test_sender_side_checks_before_the_session_moves(new_store: StoreFactory) -> None:
    server, a_name, a_store, alice, b_name, _, _ = _session_pair(new_store)
    before = _snapshot(a_store)
    wrong = server.sender_cert(a_name, 1, ts.IdentityKeyPair.generate().public_key)
    with pytest.raises(errors.InvalidArgument):
        alice.encrypt(ts.Address(b_name, 1), b"x", wrong)
    with pytest.raises(errors.NoSession):
        alice.encrypt(
            ts.Address(str(uuid.uuid4()), 1),
            b"x",
            server.sender_cert(a_name, 1, a_store.identity_key_pair.public_key),
        )
    assert _snapshot(a_store) == before


def test_multi_recipient_through_store(new_store: StoreFactory) -> None:
    server, a_name, a_store, alice, b_name, _, bob = _session_pair(new_store)
    c_name, c_store = _party(new_store, 33)
    for dev in (1, 2):
        bundle = c_store.new_bundle(
            dev, prekey_id=10 + dev, signed_prekey_id=20 + dev, kyber_prekey_id=30 + dev
        )
        ts.SessionCipher(a_store, ts.Address(c_name, dev)).process_bundle(bundle)
    cert = server.sender_cert(a_name, 1, a_store.identity_key_pair.public_key)
    content = ts.UnidentifiedSenderMessageContent(7, cert, b"skm bytes", group_id=b"grp")
    sent = alice.multi_recipient_encrypt(
        [ts.Address(b_name, 1), ts.Address(c_name, 1), ts.Address(c_name, 2)], content
    )
    m = ts.SealedSenderMultiRecipientMessage.from_bytes(sent)
    assert m.recipients == {b_name: [(1, 22)], c_name: [(1, 33), (2, 33)]}
    u = bob.unseal(
        m.message_for_recipient(b_name), trust_root=server.root.public_key, timestamp=NOW
    )
    assert u.contents == b"skm bytes" and u.message_type == ts.MessageType.SENDERKEY
    c = ts.SealedSessionCipher(c_store)
    assert bytes(c.decrypt_to_usmc(m.message_for_recipient(c_name))) == bytes(content)
    with pytest.raises(errors.NoSession):
        alice.multi_recipient_encrypt([ts.Address(str(uuid.uuid4()), 1)], content)


# -- the libsignal 0.103 vector ---------------------------------------------------------------


@pytest.mark.needs_shared
def test_libsignal_vector_outer_layer_and_certificate(new_store: StoreFactory) -> None:
    """sealed_sender_pqxdh.json: libsignal-client 0.103 sealed (v1) PreKey messages to Bob.
    The inner PQXDH messages need SPQR (not yet in textsecure), so this checks the outer layer,
    the certificate and the inner message's framing."""
    data = json.loads(require_shared("vectors", "sealed_sender_pqxdh.json").read_text())
    b = data["bob"]
    bob = ts.IdentityKeyPair.from_private_bytes(base64.b64decode(b["identity_private"]))
    assert bytes(bob.public_key) == base64.b64decode(b["identity_key"])
    root = ts.PublicKey.from_bytes(base64.b64decode(data["trust_root_public"]))
    when = data["validation_timestamp"]
    store = new_store(bob, b["registration_id"])
    cipher = ts.SealedSessionCipher(store)
    steps = [s for s in data["steps"] if s["op"] == "receive_sealed"]
    assert steps
    for s in steps:
        body = base64.b64decode(s["body"])
        assert body[0] == 0x11
        usmc = cipher.unseal(body, trust_root=root, timestamp=when)
        cert = usmc.sender_certificate
        assert bytes(cert) == base64.b64decode(s["sender_certificate"])
        assert cert.sender_uuid == s["sender_uuid"] == data["alice"]["name"]
        assert cert.sender_device_id == s["sender_device_id"] == data["alice"]["device_id"]
        assert bytes(cert.identity_key) == base64.b64decode(data["alice"]["identity_key"])
        assert usmc.message_type == ts.MessageType.PREKEY
        inner = ts.PreKeySignalMessage.from_bytes(usmc.contents)
        assert inner.version == 4 and inner.identity_key == cert.identity_key
        assert inner.signed_prekey_id == b["signed_prekey_id"]
        assert inner.kyber_prekey_id == b["kyber_prekey_id"]
        cert.validate(root, when)
        with pytest.raises(errors.InvalidCertificate, match="expired"):
            cert.validate(root, cert.expiration + 1)
        with pytest.raises(errors.InvalidCertificate, match="trust root"):
            cert.validate(ts.PrivateKey.generate().public_key, when)


# -- hostile input ----------------------------------------------------------------------------


def _mutations(data: bytes, *, step: int = 1) -> list[bytes]:
    out = [data[:n] for n in range(len(data))]
    for i in range(0, len(data), step):
        for bit in range(8):
            b = bytearray(data)
            b[i] ^= 1 << bit
            out.append(bytes(b))
    return out


def _hostile_fixture(new_store: StoreFactory) -> dict[str, Any]:
    server = Server()
    alice = ts.IdentityKeyPair.generate()
    bob_name, bob_store = _party(new_store, 5)
    bob = bob_store.identity_key_pair
    cert = server.sender_cert(str(uuid.uuid4()), 1, alice.public_key)
    content = ts.UnidentifiedSenderMessageContent(8, cert, PC, content_hint=1, group_id=b"g")
    v1 = ts.sealed_sender_encrypt(content, sender=alice, recipient=bob.public_key)
    sent = ts.sealed_sender_multi_recipient_encrypt(
        content,
        [(bob_name, bob.public_key, [(1, 5), (2, 6)])],
        sender=alice,
        excluded=[str(uuid.uuid4())],
    )
    received = ts.SealedSenderMultiRecipientMessage.from_bytes(sent).message_for_recipient(bob_name)
    return {
        "server": server,
        "store": bob_store,
        "cipher": ts.SealedSessionCipher(bob_store),
        "content": content,
        "cert": cert,
        "v1": v1,
        "sent": sent,
        "received": received,
        "bob_name": bob_name,
    }


@pytest.mark.parametrize("kind", ["v1", "received"])
def test_hostile_sealed_messages(new_store: StoreFactory, kind: str) -> None:
    """Every truncation and every single-bit flip of a v1 message and of a v2 received
    message: a textsecure error (never a crash, never a different content), store unchanged."""
    f = _hostile_fixture(new_store)
    store, cipher, content = f["store"], f["cipher"], f["content"]
    good: bytes = f[kind]
    before = _snapshot(store)
    opened = 0
    for bad in _mutations(good):
        try:
            u = cipher.decrypt_to_usmc(bad)
        except errors.TextSecureError:
            continue
        # Only a flip of the version byte's low nibble may still open (as libsignal).
        assert bad[1:] == good[1:] and bytes(u) == bytes(content)
        opened += 1
        with pytest.raises(errors.InvalidMessage):
            cipher.decrypt(bad, trust_root=f["server"].root.public_key, timestamp=NOW)
    assert opened <= 5  # low-nibble flips of the version byte, and 0x11 -> 0x01 (as libsignal)
    assert _snapshot(store) == before
    assert bytes(cipher.decrypt_to_usmc(good)) == bytes(content)


def test_hostile_sent_form(new_store: StoreFactory) -> None:
    """Parsing the v2 sent form (server side) never crashes on truncations and bit flips."""
    f = _hostile_fixture(new_store)
    for bad in _mutations(f["sent"]):
        try:
            m = ts.SealedSenderMultiRecipientMessage.from_bytes(bad)
        except errors.TextSecureError:
            continue
        for sid in m.recipients:
            msg = m.message_for_recipient(sid)
            try:
                f["cipher"].decrypt_to_usmc(msg)
            except errors.TextSecureError:
                pass
    for junk in (b"", b"\x23", b"\x23\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b"\x24\x00"):
        with pytest.raises(errors.TextSecureError):
            ts.SealedSenderMultiRecipientMessage.from_bytes(junk)
    # A huge claimed recipient count with no data is a clean error, not an allocation.
    with pytest.raises(errors.InvalidMessage):
        ts.SealedSenderMultiRecipientMessage.from_bytes(b"\x23\xff\xff\xff\xff\x0f" + b"\x00" * 40)


@pytest.mark.parametrize("what", ["sender", "server", "usmc"])
@pytest.mark.parametrize("store_kind", ["memory"])  # parses certificates only, no store
def test_hostile_certificates_and_content(new_store: StoreFactory, what: str) -> None:
    f = _hostile_fixture(new_store)
    root = f["server"].root.public_key
    data: bytes = {
        "sender": bytes(f["cert"]),
        "server": bytes(f["server"].cert),
        "usmc": bytes(f["content"]),
    }[what]
    parse: Any = {
        "sender": ts.SenderCertificate.from_bytes,
        "server": ts.ServerCertificate.from_bytes,
        "usmc": ts.UnidentifiedSenderMessageContent.from_bytes,
    }[what]
    for bad in _mutations(data, step=1 if len(data) < 400 else 3):
        try:
            obj = parse(bad)
        except errors.TextSecureError:
            continue
        if what == "usmc":
            obj = obj.sender_certificate
        try:
            if what == "server":
                obj.validate(root)
            else:
                obj.validate(root, NOW)
        except errors.TextSecureError:
            continue
        # Still valid: only a change outside the certificate (in the USMC) can do that.
        assert what == "usmc" and bytes(obj) == bytes(f["cert"])
