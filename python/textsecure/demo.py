"""``make demo``: two parties talk in-process, each through its own in-memory store.

Prints every message on the wire with its type, session version and size.
"""

from __future__ import annotations

import json
import struct
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


def run(out: Callable[[str], None] = print) -> None:
    """Runs the demo conversations (X3DH, then PQXDH) and a picture message."""
    out(f"textsecure {ts.__version__}")
    _conversation(kyber=False, out=out)
    _conversation(kyber=True, out=out)
    _picture_message(out)
