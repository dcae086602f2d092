"""``make demo``: two parties talk in-process, each through its own in-memory store.

Prints every message on the wire with its type, session version and size.
"""

from __future__ import annotations

from collections.abc import Callable

import textsecure as ts

__all__ = ["run"]


def _party(name: str, registration_id: int) -> tuple[ts.MemoryStore, ts.Address]:
    return ts.MemoryStore(ts.IdentityKeyPair.generate(), registration_id), ts.Address(name, 1)


def _conversation(kyber: bool, out: Callable[[str], None]) -> None:
    alice_store, alice = _party("alice", 1001)
    bob_store, bob = _party("bob", 2002)
    label = "PQXDH (session version 4, Kyber-1024)" if kyber else "X3DH (session version 3)"
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
        out(
            f"{sender:>5} -> {receiver:<5} {message.type.name:<7} v{message.version} "
            f"{len(wire):4d} bytes  {plaintext.decode()}"
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


def run(out: Callable[[str], None] = print) -> None:
    """Runs the demo conversations (X3DH, then PQXDH)."""
    out(f"textsecure {ts.__version__}")
    _conversation(kyber=False, out=out)
    _conversation(kyber=True, out=out)
