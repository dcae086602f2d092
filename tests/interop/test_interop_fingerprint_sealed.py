"""Live interop of safety numbers and sealed sender with @signalapp/libsignal-client 0.103.0.

Safety numbers are computed on both sides for random identities and ids (versions 1 and 2):
the displayable numbers are equal and each side's scannable form matches the other's.

Sealed sender v1 and v2 in both directions. libsignal 0.103 needs SPQR for 1:1 sessions,
which textsecure does not have yet, so the sealed inner messages here are PlaintextContent
(type 8, opaque bytes) or a libsignal SenderKeyMessage (type 7), and each side opens the
envelope to the sealed content (USMC) and validates the certificate. Rejections: an expired
certificate, a certificate from another trust root, and a sender whose identity key is not
the one in its certificate. The sealed-sender tests run once per store kind (``new_store``:
MemoryStore, SQLiteStore, PostgresStore) for textsecure's parties.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import textsecure as ts
from peers import NodePeer, PeerError, bundle_to_wire, require_node_lib
from support import Store, StoreFactory
from textsecure import errors

pytestmark = pytest.mark.interop

LIB = "ls0103"
NOW = 1_700_000_000_000
EXPIRES = NOW + 86_400_000


@pytest.fixture
def peer() -> Iterator[NodePeer]:
    require_node_lib(LIB)
    p = NodePeer(LIB)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def peer2() -> Iterator[NodePeer]:
    require_node_lib(LIB)
    p = NodePeer(LIB)
    try:
        yield p
    finally:
        p.close()


# -- safety numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_fingerprints_random_identities(peer: NodePeer, version: int) -> None:
    for i in range(6):
        a, b = ts.IdentityKeyPair.generate().public_key, ts.IdentityKeyPair.generate().public_key
        a_id = os.urandom(16) if i % 2 else f"+1415{i:07d}".encode()
        b_id = os.urandom(i * 3)  # includes the empty id
        iterations = [5200, 2, 1024][i % 3]
        mine = ts.Fingerprint.create(
            local_id=a_id,
            local_key=a,
            remote_id=b_id,
            remote_key=b,
            version=version,
            iterations=iterations,
        )
        theirs = peer.fingerprint(
            version=version,
            iterations=iterations,
            local_id=b_id,
            local_key=bytes(b),
            remote_id=a_id,
            remote_key=bytes(a),
        )
        same_side = peer.fingerprint(
            version=version,
            iterations=iterations,
            local_id=a_id,
            local_key=bytes(a),
            remote_id=b_id,
            remote_key=bytes(b),
        )
        assert mine.displayable == theirs.displayable == same_side.displayable
        assert mine.scannable == same_side.scannable
        assert mine.matches(theirs.scannable)
        assert peer.fingerprint_compare(theirs.scannable, mine.scannable)
        assert not mine.matches(same_side.scannable)


def test_fingerprint_version_mismatch_both_sides(peer: NodePeer) -> None:
    a, b = ts.IdentityKeyPair.generate().public_key, ts.IdentityKeyPair.generate().public_key
    mine = ts.Fingerprint.create(local_id=b"a", local_key=a, remote_id=b"b", remote_key=b)
    theirs_v1 = peer.fingerprint(
        version=1,
        iterations=5200,
        local_id=b"b",
        local_key=bytes(b),
        remote_id=b"a",
        remote_key=bytes(a),
    )
    with pytest.raises(errors.FingerprintVersionMismatch):
        mine.matches(theirs_v1.scannable)
    with pytest.raises(PeerError):
        peer.fingerprint_compare(theirs_v1.scannable, mine.scannable)


# -- sealed sender: helpers -------------------------------------------------------------------


class Server:
    """A trust root and one server key, with the server certificate made by textsecure."""

    def __init__(self, key_id: int = 7) -> None:
        self.root = ts.PrivateKey.generate()
        self.key = ts.PrivateKey.generate()
        self.cert = ts.ServerCertificate.create(key_id, self.key.public_key, self.root)

    @property
    def root_public(self) -> bytes:
        return bytes(self.root.public_key)

    def sender_cert(
        self, sender_uuid: str, device: int, key: ts.PublicKey, expiration: int = EXPIRES
    ) -> ts.SenderCertificate:
        return ts.SenderCertificate.create(
            sender_uuid=sender_uuid,
            sender_device_id=device,
            identity_key=key,
            expiration=expiration,
            server_certificate=self.cert,
            server_key=self.key,
        )


def _uuid() -> str:
    return str(uuid.uuid4())


PLAINTEXT_CONTENT = b"\xc0" + b"opaque plaintext content \x00\x01\x02"


def _python_party(
    new_store: StoreFactory, device: int = 1
) -> tuple[str, Store, ts.SealedSessionCipher]:
    ident = ts.IdentityKeyPair.generate()
    store = new_store(ident, 4000 + device)
    return _uuid(), store, ts.SealedSessionCipher(store)


# -- sealed sender: libsignal -> textsecure ---------------------------------------------------


def test_certificates_cross_validate(peer: NodePeer) -> None:
    server = Server()
    peer_uuid = _uuid()
    peer_key = peer.create(peer_uuid, 3)
    # libsignal's server certificate for a trust root we hold; we validate it.
    root_priv, root_pub = peer.keypair()
    srv_priv, srv_pub = peer.keypair()
    their_server = peer.server_certificate(
        key_id=42, server_public=srv_pub, trust_root_private=root_priv
    )
    sc = ts.ServerCertificate.from_bytes(their_server)
    assert sc.key_id == 42 and bytes(sc.key) == srv_pub
    sc.validate(ts.PublicKey.from_bytes(root_pub))
    with pytest.raises(errors.InvalidCertificate):
        sc.validate(server.root.public_key)
    cert_bytes = peer.sender_certificate(
        sender_uuid=peer_uuid,
        sender_device_id=3,
        expiration=EXPIRES,
        server_certificate=their_server,
        server_private=srv_priv,
        sender_e164="+14155550100",
    )
    cert = ts.SenderCertificate.from_bytes(cert_bytes)
    assert (cert.sender_uuid, cert.sender_device_id, cert.sender_e164) == (
        peer_uuid,
        3,
        "+14155550100",
    )
    assert bytes(cert.identity_key) == peer_key and cert.expiration == EXPIRES
    assert cert.server_certificate_id == 42 and cert.sender_address == ts.Address(peer_uuid, 3)
    cert.validate(root_pub, NOW)
    cert.validate(root_pub, EXPIRES)  # valid up to and including the expiry
    with pytest.raises(errors.InvalidCertificate, match="expired"):
        cert.validate(root_pub, EXPIRES + 1)
    with pytest.raises(errors.InvalidCertificate, match="trust root"):
        cert.validate(server.root_public, NOW)
    cert.validate([server.root_public, root_pub], NOW)

    # Ours, read and validated by libsignal.
    mine = server.sender_cert(peer_uuid, 5, ts.PublicKey.from_bytes(peer_key))
    info = peer.sender_certificate_info(bytes(mine), trust_root=server.root_public, time=NOW)
    assert info["valid"] is True
    assert (info["sender_uuid"], info["sender_device_id"], info["identity_key"]) == (
        peer_uuid,
        5,
        peer_key,
    )
    assert info["server_key_id"] == 7
    assert not peer.sender_certificate_info(
        bytes(mine), trust_root=server.root_public, time=EXPIRES + 1
    )["valid"]
    assert not peer.sender_certificate_info(bytes(mine), trust_root=root_pub, time=NOW)["valid"]


def test_v1_from_libsignal(peer: NodePeer, new_store: StoreFactory) -> None:
    server = Server()
    bob_uuid, bob_store, bob = _python_party(new_store)
    alice_uuid = _uuid()
    alice_key = peer.create(alice_uuid, 2)
    peer.trust(bob_uuid, 1, bytes(bob_store.identity_key_pair.public_key))
    cert = server.sender_cert(alice_uuid, 2, ts.PublicKey.from_bytes(alice_key))
    body, usmc_bytes = peer.sealed_encrypt_v1(
        bob_uuid,
        1,
        sender_certificate=bytes(cert),
        plaintext_content=PLAINTEXT_CONTENT,
        content_hint=ts.ContentHint.RESENDABLE,
        group_id=b"group-id-16bytes",
    )
    assert body[0] == 0x11
    usmc = bob.unseal(body, trust_root=server.root.public_key, timestamp=NOW)
    assert bytes(usmc) == usmc_bytes
    assert usmc.sender == ts.Address(alice_uuid, 2)
    assert usmc.message_type == ts.MessageType.PLAINTEXT
    assert usmc.contents == PLAINTEXT_CONTENT
    assert usmc.content_hint == ts.ContentHint.RESENDABLE
    assert usmc.group_id == b"group-id-16bytes"
    assert usmc.sender_certificate == cert
    # The same through the functional API.
    usmc2 = ts.sealed_sender_decrypt_to_usmc(body, bob_store.identity_key_pair)
    assert bytes(usmc2) == usmc_bytes

    # Rejections, all with clear errors and without touching the store.
    with pytest.raises(errors.InvalidCertificate, match="expired"):
        bob.unseal(body, trust_root=server.root.public_key, timestamp=EXPIRES + 1)
    with pytest.raises(errors.InvalidCertificate, match="trust root"):
        bob.unseal(body, trust_root=Server().root.public_key, timestamp=NOW)
    with pytest.raises(errors.InvalidMessage, match="claims to come from this device"):
        bob.unseal(
            body,
            trust_root=server.root.public_key,
            timestamp=NOW,
            local_address=ts.Address(alice_uuid, 2),
        )
    # A sealed message for someone else does not open.
    _, _, carol = _python_party(new_store)
    with pytest.raises(errors.InvalidMessage):
        carol.decrypt_to_usmc(body)


def test_v1_from_libsignal_rejects_identity_mismatch(
    peer: NodePeer, new_store: StoreFactory
) -> None:
    """libsignal seals with its own identity but presents a certificate for another key:
    the sealed sender key and the certificate key differ, so we refuse it."""
    server = Server()
    bob_uuid, bob_store, bob = _python_party(new_store)
    mallory_uuid = _uuid()
    peer.create(mallory_uuid, 1)
    peer.trust(bob_uuid, 1, bytes(bob_store.identity_key_pair.public_key))
    victim = ts.IdentityKeyPair.generate().public_key
    cert = server.sender_cert(mallory_uuid, 1, victim)
    body, _ = peer.sealed_encrypt_v1(
        bob_uuid, 1, sender_certificate=bytes(cert), plaintext_content=PLAINTEXT_CONTENT
    )
    with pytest.raises(errors.InvalidMessage, match="does not match"):
        bob.unseal(body, trust_root=server.root.public_key, timestamp=NOW)
    with pytest.raises(errors.InvalidMessage, match="does not match"):
        bob.decrypt_to_usmc(body)


def test_v1_sender_key_message_from_libsignal(peer: NodePeer, new_store: StoreFactory) -> None:
    server = Server()
    bob_uuid, bob_store, bob = _python_party(new_store)
    alice_uuid = _uuid()
    alice_key = peer.create(alice_uuid, 1)
    peer.trust(bob_uuid, 1, bytes(bob_store.identity_key_pair.public_key))
    dist = uuid.uuid4()
    peer.group_create_distribution(dist)
    cert = server.sender_cert(alice_uuid, 1, ts.PublicKey.from_bytes(alice_key))
    body, _ = peer.sealed_encrypt_v1(
        bob_uuid,
        1,
        sender_certificate=bytes(cert),
        distribution_id=dist,
        plaintext=b"group hello",
        content_hint=ts.ContentHint.IMPLICIT,
        group_id=b"\x01" * 32,
    )
    usmc = bob.unseal(body, trust_root=server.root.public_key, timestamp=NOW)
    assert usmc.message_type == ts.MessageType.SENDERKEY
    assert usmc.content_hint == ts.ContentHint.IMPLICIT and usmc.group_id == b"\x01" * 32
    assert usmc.contents[0] >> 4 == 3  # a SenderKeyMessage version byte
    # The 1:1 convenience refuses a group message instead of guessing.
    with pytest.raises(errors.InvalidMessage, match="not a 1:1 message"):
        bob.decrypt(body, trust_root=server.root.public_key, timestamp=NOW)


def _peer_session_to(peer: NodePeer, name: str, store: Store, device: int = 1) -> None:
    bundle = store.new_bundle(device, prekey_id=11, signed_prekey_id=12, kyber_prekey_id=13)
    wire = {
        k: getattr(bundle, k)
        for k in (
            "registration_id",
            "device_id",
            "prekey_id",
            "signed_prekey_id",
            "kyber_prekey_id",
        )
    }
    for k in (
        "identity_key",
        "prekey_public",
        "signed_prekey_public",
        "kyber_prekey_public",
    ):
        wire[k] = bytes(getattr(bundle, k))
    for k in ("signed_prekey_signature", "kyber_prekey_signature"):
        wire[k] = bytes(getattr(bundle, k))
    peer.process_bundle(name, device, bundle_to_wire(wire))


def test_v2_from_libsignal(peer: NodePeer, new_store: StoreFactory) -> None:
    server = Server()
    bob_uuid, bob_store, bob = _python_party(new_store, 1)
    carol_uuid, carol_store, carol = _python_party(new_store, 2)
    excluded = [_uuid(), f"PNI:{_uuid()}"]
    alice_uuid = _uuid()
    alice_key = peer.create(alice_uuid, 4)
    _peer_session_to(peer, bob_uuid, bob_store)
    _peer_session_to(peer, carol_uuid, carol_store)
    cert = server.sender_cert(alice_uuid, 4, ts.PublicKey.from_bytes(alice_key))
    sent, usmc_bytes = peer.sealed_encrypt_v2(
        [(bob_uuid, 1), (carol_uuid, 1)],
        sender_certificate=bytes(cert),
        excluded=excluded,
        plaintext_content=PLAINTEXT_CONTENT,
        content_hint=ts.ContentHint.RESENDABLE,
        group_id=b"g" * 32,
    )
    parsed = ts.SealedSenderMultiRecipientMessage.from_bytes(sent)
    assert parsed.version == 0x23
    assert parsed.recipients == {
        bob_uuid: [(1, bob_store.registration_id)],
        carol_uuid: [(1, carol_store.registration_id)],
    }
    assert parsed.excluded_recipients == excluded
    theirs = peer.sealed_parse_sent(sent)
    for name, cipher in ((bob_uuid, bob), (carol_uuid, carol)):
        received = parsed.message_for_recipient(name)
        assert received == theirs["messages"][name]  # same fan-out as libsignal's server code
        assert received[0] == 0x22
        usmc = cipher.unseal(received, trust_root=server.root.public_key, timestamp=NOW)
        assert bytes(usmc) == usmc_bytes
        assert usmc.sender == ts.Address(alice_uuid, 4)
        assert usmc.contents == PLAINTEXT_CONTENT and usmc.group_id == b"g" * 32
        with pytest.raises(errors.InvalidCertificate, match="expired"):
            cipher.unseal(received, trust_root=server.root.public_key, timestamp=EXPIRES + 1)
        with pytest.raises(errors.InvalidCertificate, match="trust root"):
            cipher.unseal(received, trust_root=Server().root.public_key, timestamp=NOW)
    with pytest.raises(errors.InvalidMessage):
        carol.decrypt_to_usmc(parsed.message_for_recipient(bob_uuid))
    with pytest.raises(errors.InvalidArgument):
        parsed.message_for_recipient(excluded[0])

    # One recipient: libsignal's single-recipient helper and ours agree.
    single, _ = peer.sealed_encrypt_v2(
        [(bob_uuid, 1)], sender_certificate=bytes(cert), plaintext_content=PLAINTEXT_CONTENT
    )
    mine = ts.sealed_sender_multi_recipient_message_for_single_recipient(single)
    assert mine == peer.sealed_single_recipient(single)
    assert bob.unseal(mine, trust_root=server.root.public_key, timestamp=NOW).sender == (
        ts.Address(alice_uuid, 4)
    )


def test_v2_from_libsignal_rejects_identity_mismatch(
    peer: NodePeer, new_store: StoreFactory
) -> None:
    server = Server()
    bob_uuid, bob_store, bob = _python_party(new_store)
    mallory_uuid = _uuid()
    peer.create(mallory_uuid, 1)
    _peer_session_to(peer, bob_uuid, bob_store)
    cert = server.sender_cert(mallory_uuid, 1, ts.IdentityKeyPair.generate().public_key)
    sent, _ = peer.sealed_encrypt_v2(
        [(bob_uuid, 1)], sender_certificate=bytes(cert), plaintext_content=PLAINTEXT_CONTENT
    )
    received = ts.sealed_sender_multi_recipient_message_for_single_recipient(sent)
    with pytest.raises(errors.InvalidMessage, match="authentication tag"):
        bob.unseal(received, trust_root=server.root.public_key, timestamp=NOW)


# -- sealed sender: textsecure -> libsignal ---------------------------------------------------


def test_v1_to_libsignal(peer: NodePeer, new_store: StoreFactory) -> None:
    server = Server()
    alice_uuid, alice_store, alice = _python_party(new_store)
    bob_uuid = _uuid()
    bob_key = peer.create(bob_uuid, 1)
    alice_store.trust(ts.Address(bob_uuid, 1), bob_key)
    me = alice_store.identity_key_pair
    cert = server.sender_cert(alice_uuid, 1, me.public_key)
    content = ts.UnidentifiedSenderMessageContent(
        ts.MessageType.PLAINTEXT,
        cert,
        PLAINTEXT_CONTENT,
        content_hint=ts.ContentHint.RESENDABLE,
        group_id=b"gid",
    )
    for body in (
        alice.seal(ts.Address(bob_uuid, 1), content),
        ts.sealed_sender_encrypt(content, sender=me, recipient=bob_key),
    ):
        assert body[0] == 0x11
        r = peer.sealed_decrypt_to_usmc(body, trust_root=server.root_public, time=NOW)
        assert r["valid"] is True
        assert r["usmc"] == bytes(content)
        assert (r["msg_type"], r["contents"], r["content_hint"], r["group_id"]) == (
            8,
            PLAINTEXT_CONTENT,
            1,
            b"gid",
        )
        assert (r["sender_uuid"], r["sender_device_id"], r["sender_key"]) == (
            alice_uuid,
            1,
            bytes(me.public_key),
        )
        assert not peer.sealed_decrypt_to_usmc(
            body, trust_root=server.root_public, time=EXPIRES + 1
        )["valid"]
        assert not peer.sealed_decrypt_to_usmc(body, trust_root=Server().root_public, time=NOW)[
            "valid"
        ]

    # Our certificate names another identity than the one we seal with: libsignal refuses.
    bad_cert = server.sender_cert(alice_uuid, 1, ts.IdentityKeyPair.generate().public_key)
    bad = ts.UnidentifiedSenderMessageContent(ts.MessageType.PLAINTEXT, bad_cert, PLAINTEXT_CONTENT)
    with pytest.raises(PeerError) as ei:
        peer.sealed_decrypt_to_usmc(ts.sealed_sender_encrypt(bad, sender=me, recipient=bob_key))
    assert ei.value.kind == "invalid_message"


def test_v2_to_libsignal(peer: NodePeer, new_store: StoreFactory, peer2: NodePeer) -> None:
    server = Server()
    alice_uuid, alice_store, alice = _python_party(new_store)
    peers = []
    for p, device in ((peer, 1), (peer2, 2)):
        name = _uuid()
        key = p.create(name, device)
        bundle = p.bundle(signed_prekey_id=1, prekey_id=2, kyber_prekey_id=3, kyber=True)
        b = {k: v for k, v in bundle.items()}
        ts.SessionCipher(alice_store, ts.Address(name, device)).process_bundle(ts.PreKeyBundle(**b))
        peers.append((p, name, device, key, int(bundle["registration_id"])))
    me = alice_store.identity_key_pair
    cert = server.sender_cert(alice_uuid, 3, me.public_key)
    content = ts.UnidentifiedSenderMessageContent(
        ts.MessageType.PLAINTEXT, cert, PLAINTEXT_CONTENT, group_id=b"group"
    )
    excluded = [_uuid()]
    sent_store = alice.multi_recipient_encrypt(
        [ts.Address(n, d) for _, n, d, _, _ in peers], content, excluded=excluded
    )
    sent_pure = ts.sealed_sender_multi_recipient_encrypt(
        content,
        [(n, k, [(d, reg)]) for _, n, d, k, reg in peers],
        sender=me,
        excluded=excluded,
        threads=2,
    )
    for sent in (sent_store, sent_pure):
        assert sent[0] == 0x23
        server_view = peer.sealed_parse_sent(sent)
        assert server_view["excluded"] == excluded
        assert server_view["recipients"] == {n: [[d, reg]] for _, n, d, _, reg in peers}
        ours = ts.SealedSenderMultiRecipientMessage.from_bytes(sent)
        for p, name, _, _, _ in peers:
            received = server_view["messages"][name]
            assert received == ours.message_for_recipient(name)
            r = p.sealed_decrypt_to_usmc(received, trust_root=server.root_public, time=NOW)
            assert r["valid"] is True and r["usmc"] == bytes(content)
            assert (r["sender_uuid"], r["sender_device_id"]) == (alice_uuid, 3)
            assert not p.sealed_decrypt_to_usmc(
                received, trust_root=server.root_public, time=EXPIRES + 1
            )["valid"]
        # Each peer can open only its own copy.
        with pytest.raises(PeerError):
            peer2.sealed_decrypt_to_usmc(server_view["messages"][peers[0][1]])

    # A single-recipient message through libsignal's helper.
    p, name, device, key, reg = peers[0]
    single = ts.sealed_sender_multi_recipient_encrypt(
        content, [(name, key, [(device, reg)])], sender=me
    )
    r = p.sealed_decrypt_to_usmc(p.sealed_single_recipient(single))
    assert r["usmc"] == bytes(content)

    # Sealing with an identity the certificate does not name: libsignal refuses (bad AT).
    other = ts.IdentityKeyPair.generate()
    forged = ts.sealed_sender_multi_recipient_encrypt(
        content, [(name, key, [(device, reg)])], sender=other
    )
    with pytest.raises(PeerError) as ei:
        p.sealed_decrypt_to_usmc(p.sealed_single_recipient(forged))
    assert ei.value.kind == "invalid_message"
