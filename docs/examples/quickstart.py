"""The quick start (docs/quickstart.md): two parties, one session, in memory."""

from __future__ import annotations

import textsecure as ts


def main() -> None:
    # [memory]
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), registration_id=1)
    bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), registration_id=2)

    bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=1)  # PQXDH by default
    to_bob = ts.SessionCipher(alice, ts.Address("bob", 1))
    to_bob.process_bundle(bundle)

    message = to_bob.encrypt(b"hello")  # a PreKeySignalMessage
    wire = (message.type, bytes(message))  # what you transmit

    to_alice = ts.SessionCipher(bob, ts.Address("alice", 1))
    assert to_alice.decrypt(ts.parse_message(*wire)) == b"hello"

    reply = to_alice.encrypt(b"hi")  # a SignalMessage
    assert to_bob.decrypt(reply) == b"hi"

    session = alice.session(ts.Address("bob", 1))  # a SessionRecord, or None
    assert session is not None
    record = bytes(session)  # libsignal's storage format: a secret (see "Secrets")
    # [memory-end]
    assert ts.SessionRecord.from_bytes(record).version == 4


if __name__ == "__main__":
    main()
