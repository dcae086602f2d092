"""``make demo``: two parties talk in-process, each through its own in-memory store.

Prints every message on the wire with its type, session version and size.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
import zlib
from collections.abc import Callable

import textsecure as ts
from textsecure import attachments

__all__ = ["run"]


def _party(name: str, registration_id: int) -> tuple[ts.MemoryStore, ts.Address]:
    return ts.MemoryStore(ts.IdentityKeyPair.generate(), registration_id), ts.Address(name, 1)


def _conversation(kyber: bool, out: Callable[[str], None]) -> None:
    alice_store, alice = _party("alice", 1001)
    bob_store, bob = _party("bob", 2002)
    label = (
        "PQXDH (session version 4, Kyber-1024) with the SPQR triple ratchet"
        if kyber
        else "X3DH (session version 3)"
    )
    out(f"== {label}")
    bundle = bob_store.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=kyber)
    out(
        f"bob publishes a bundle: signed prekey {bundle.signed_prekey_id}, one-time prekey "
        f"{bundle.prekey_id}, Kyber prekey {bundle.kyber_prekey_id}"
    )
    to_bob = ts.SessionCipher(alice_store, bob)
    to_alice = ts.SessionCipher(bob_store, alice)
    to_bob.process_bundle(bundle)

    script: list[tuple[str, bytes]] = [
        ("alice", b"Hi Bob! This is end-to-end encrypted."),
        ("alice", b"(a second message before Bob answers)"),
        ("bob", b"Hi Alice, got both."),
        ("alice", b"Ratchet step on every reply."),
        ("bob", b"Forward secrecy and post-compromise security."),
        ("bob", b"Two in a row stay in one chain."),
        ("alice", b"Bye!"),
    ]
    for sender, text in script:
        cipher, peer = (to_bob, to_alice) if sender == "alice" else (to_alice, to_bob)
        receiver = "bob" if sender == "alice" else "alice"
        message = cipher.encrypt(text)
        wire = bytes(message)
        parsed = ts.parse_message(message.type, wire)
        assert isinstance(parsed, ts.SignalMessage | ts.PreKeySignalMessage)
        plaintext = peer.decrypt(parsed)
        assert plaintext == text
        inner = parsed.message if isinstance(parsed, ts.PreKeySignalMessage) else parsed
        spqr = f" (SPQR {len(inner.pq_ratchet)} B)" if inner.pq_ratchet else ""
        out(
            f"{sender:>5} -> {receiver:<5} {message.type.name:<7} v{message.version} "
            f"{len(wire):4d} bytes{spqr}  {plaintext.decode()}"
        )
    record = alice_store.session(bob)
    assert record is not None
    out(
        f"alice's session record with bob: version {record.version}, "
        f"{len(bytes(record))} bytes in libsignal's storage format"
    )
    try:
        peer_message = ts.SessionCipher(bob_store, alice).decrypt(
            ts.parse_message(ts.MessageType.WHISPER, wire)
        )
    except ts.errors.DuplicateMessage:
        out("replaying the last message: rejected as a duplicate, state unchanged")
    else:  # pragma: no cover - would be a bug
        raise AssertionError(f"replay decrypted: {peer_message!r}")


def _picture(width: int = 96, height: int = 64) -> bytes:
    """A small RGB gradient as a real PNG file."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 128))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _picture_message(out: Callable[[str], None]) -> None:
    """Sends a picture: the blob goes to a (pretend) CDN, its pointer through the session."""
    out("== an encrypted picture (Signal attachment, then WhatsApp media)")
    alice_store, alice = _party("alice", 1001)
    bob_store, bob = _party("bob", 2002)
    to_bob = ts.SessionCipher(alice_store, bob)
    to_alice = ts.SessionCipher(bob_store, alice)
    to_bob.process_bundle(bob_store.new_bundle(1, prekey_id=1, signed_prekey_id=1))
    picture = _picture()
    cdn: dict[str, bytes] = {}

    sent = attachments.encrypt(picture)
    cdn["attachment-1"] = sent.blob
    pointer = json.dumps(
        {
            "cdn_key": "attachment-1",
            "key": sent.key.hex(),
            "digest": sent.digest.hex(),
            "size": sent.plaintext_size,
            "incremental_mac": sent.incremental_mac.hex(),
            "chunk_size": sent.chunk_size,
            "content_type": "image/png",
        }
    ).encode()
    message = to_bob.encrypt(pointer)
    received = json.loads(to_alice.decrypt(message))
    image = attachments.decrypt(
        cdn[received["cdn_key"]],
        key=bytes.fromhex(received["key"]),
        digest=bytes.fromhex(received["digest"]),
        size=received["size"],
        incremental_mac=bytes.fromhex(received["incremental_mac"]),
        chunk_size=received["chunk_size"],
    )
    assert image == picture
    out(
        f"alice -> bob   {message.type.name:<7} v{message.version} {len(bytes(message)):4d} bytes  "
        f"pointer to a {len(picture)}-byte PNG; blob on the CDN: {len(sent.blob)} bytes "
        f"(padded, IV, MAC); digest {sent.digest.hex()[:16]}..."
    )
    out(f"  bob decrypted the picture: {len(image)} bytes, MAC, digest and incremental MAC ok")

    tampered = bytearray(sent.blob)
    tampered[100] ^= 1
    try:
        attachments.decrypt(bytes(tampered), key=sent.key, digest=sent.digest, size=len(picture))
    except ts.errors.InvalidMessage:
        out("  a blob with one flipped bit is rejected")
    else:  # pragma: no cover - would be a bug
        raise AssertionError("tampered blob decrypted")

    wa = attachments.encrypt_whatsapp(picture, "image")
    back = attachments.decrypt_whatsapp(
        wa.blob,
        "image",
        wa.media_key,
        file_sha256=wa.file_sha256,
        file_enc_sha256=wa.file_enc_sha256,
    )
    assert back == picture
    out(
        f"  WhatsApp image: {len(wa.blob)}-byte upload (AES-CBC + 10-byte MAC), "
        f"fileSha256 {wa.file_sha256.hex()[:16]}..., decrypted and verified"
    )


def _group_sealed_and_safety_numbers(out: Callable[[str], None]) -> None:
    """A three-member group over sender keys, a sealed-sender message, safety numbers."""
    out("== a three-member group (sender keys), sealed sender, safety numbers")
    names = {
        "alice": "9d0652a3-dcc3-4d11-975f-74d61598733f",
        "bob": "796abedb-ca4e-4f18-8803-1fde5b921f9f",
        "carol": "0f3b2c3e-5a7d-4e8f-9a1b-2c3d4e5f6a7b",
    }
    stores = {n: ts.MemoryStore(ts.IdentityKeyPair.generate(), 10 + i) for i, n in enumerate(names)}
    addr = {n: ts.Address(aci, 1) for n, aci in names.items()}
    # Everyone has a 1:1 session with everyone (each answers once, acknowledging it).
    for a in names:
        for b in names:
            if a < b:
                to_b = ts.SessionCipher(stores[a], addr[b])
                to_b.process_bundle(stores[b].new_bundle(1, signed_prekey_id=1, one_time=False))
                ts.SessionCipher(stores[b], addr[a]).decrypt(to_b.encrypt(b"hi"))
                to_b.decrypt(ts.SessionCipher(stores[b], addr[a]).encrypt(b"hi"))

    group_id = uuid.uuid4()
    sender_key_messages = 0
    for sender in names:
        skdm = ts.GroupCipher(stores[sender], group_id).create_distribution(addr[sender])
        others = [addr[n] for n in names if n != sender]
        for to, sent in ts.encrypt_fanout(stores[sender], others, bytes(skdm)).items():
            assert not isinstance(sent, ts.errors.TextSecureError), sent
            receiver = next(n for n in names if addr[n] == to)
            got = ts.SessionCipher(stores[receiver], addr[sender]).decrypt(sent)
            ts.GroupCipher(stores[receiver], group_id).process_distribution(
                addr[sender], ts.SenderKeyDistributionMessage.from_bytes(got)
            )
            sender_key_messages += 1
    out(
        f"3 members exchanged their sender keys over 1:1 sessions "
        f"({sender_key_messages} fan-out messages)"
    )
    for sender, text in (("alice", b"Lunch at noon?"), ("bob", b"Yes!"), ("carol", b"Count me in")):
        message = ts.GroupCipher(stores[sender], group_id).encrypt(addr[sender], text)
        wire = bytes(message)
        for receiver in names:
            if receiver != sender:
                parsed = ts.parse_message(ts.MessageType.SENDERKEY, wire)
                got = ts.GroupCipher(stores[receiver], group_id).decrypt(addr[sender], parsed)
                assert got == text
        out(
            f"{sender:>5} -> group {message.type.name:<9} {len(wire):4d} bytes, one ciphertext "
            f"for all members, signed  {text.decode()}"
        )

    # Sealed sender: the server sees neither who sent the message nor its content.
    trust_root = ts.PrivateKey.generate()
    server_key = ts.PrivateKey.generate()
    server_cert = ts.ServerCertificate.create(1, server_key.public_key, trust_root)
    now = int(time.time() * 1000)
    alice_cert = ts.SenderCertificate.create(
        sender_uuid=names["alice"],
        sender_device_id=1,
        identity_key=stores["alice"].identity_key_pair.public_key,
        expiration=now + 86_400_000,
        server_certificate=server_cert,
        server_key=server_key,
    )
    sealed = ts.SealedSessionCipher(stores["alice"]).encrypt(
        addr["bob"], b"A secret from someone", alice_cert
    )
    result = ts.SealedSessionCipher(stores["bob"]).decrypt(
        sealed, trust_root=trust_root.public_key, timestamp=now, local_address=addr["bob"]
    )
    assert result.plaintext == b"A secret from someone" and result.sender == addr["alice"]
    out(
        f"sealed sender v1: {len(sealed)} bytes on the wire, no visible sender; bob's store "
        f"finds the sender certificate of {result.sender} and decrypts: "
        f"{result.plaintext.decode()}"
    )

    # Safety numbers: both sides compute the same 60 digits; the QR codes cross-match.
    alice_key = stores["alice"].identity_key_pair.public_key
    bob_key = stores["bob"].identity_key_pair.public_key
    alice_id, bob_id = uuid.UUID(names["alice"]).bytes, uuid.UUID(names["bob"]).bytes
    alice_view = ts.Fingerprint.create(
        local_id=alice_id, local_key=alice_key, remote_id=bob_id, remote_key=bob_key
    )
    bob_view = ts.Fingerprint.create(
        local_id=bob_id, local_key=bob_key, remote_id=alice_id, remote_key=alice_key
    )
    assert alice_view.displayable == bob_view.displayable
    assert alice_view.matches(bob_view.scannable) and bob_view.matches(alice_view.scannable)
    digits = alice_view.displayable
    groups = " ".join(digits[i : i + 5] for i in range(0, 60, 5))
    out(f"safety number (alice's view): {groups}")
    out(f"safety number (bob's view):   {groups}  (same; scanned QR codes match)")


def run(out: Callable[[str], None] = print) -> None:
    """Runs the demo: X3DH and PQXDH conversations, a picture, a group, sealed sender and
    safety numbers."""
    out(f"textsecure {ts.__version__}")
    _conversation(kyber=False, out=out)
    _conversation(kyber=True, out=out)
    _picture_message(out)
    _group_sealed_and_safety_numbers(out)
