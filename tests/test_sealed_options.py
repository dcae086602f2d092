"""SealedSessionCipher honours the session options of the sessions under the seal: the local
address (SignalMessage field 6 is written when sending and checked in full when receiving) and
the SPQR policy (passed on to new sessions)."""

from __future__ import annotations

import uuid

import pytest
import textsecure as ts
from textsecure import errors

NOW = 1_700_000_000_000


def _cert(
    root: ts.PrivateKey, name: str, key: ts.PublicKey
) -> tuple[ts.SenderCertificate, ts.PublicKey]:
    server_key = ts.PrivateKey.generate()
    sc = ts.ServerCertificate.create(1, server_key.public_key, root)
    cert = ts.SenderCertificate.create(
        sender_uuid=name,
        sender_device_id=1,
        identity_key=key,
        expiration=NOW + 3_600_000,
        server_certificate=sc,
        server_key=server_key,
    )
    return cert, root.public_key


def test_local_address_writes_and_checks_field_6() -> None:
    a_name, b_name, c_name = (str(uuid.uuid4()) for _ in range(3))
    a_store = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    b_store = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
    a_addr, b_addr, c_addr = (ts.Address(n, 1) for n in (a_name, b_name, c_name))
    bundle = b_store.new_bundle(1, prekey_id=1, signed_prekey_id=2)
    alice = ts.SealedSessionCipher(a_store, local_address=a_addr)
    ts.SessionCipher(a_store, b_addr).process_bundle(bundle)
    cert, root = _cert(ts.PrivateKey.generate(), a_name, a_store.identity_key_pair.public_key)
    sealed = alice.encrypt(b_addr, b"hello", cert)

    # The sender's local address put both addresses (field 6) into the PreKey message.
    usmc = ts.SealedSessionCipher(b_store).decrypt_to_usmc(sealed)
    inner = ts.parse_message(usmc.message_type, usmc.contents)
    assert isinstance(inner, ts.PreKeySignalMessage)
    assert inner.message.addresses is not None

    # A receiver whose local address is another one refuses it, and stores nothing.
    wrong = ts.SealedSessionCipher(b_store, local_address=c_addr)
    with pytest.raises(errors.InvalidMessage):
        wrong.decrypt(sealed, trust_root=root, timestamp=NOW)
    assert b_store.session(a_addr) is None and b_store.load_prekey(1) is not None
    # decrypt(local_address=) overrides the cipher's.
    r = wrong.decrypt(sealed, trust_root=root, timestamp=NOW, local_address=b_addr)
    assert r.plaintext == b"hello"
    assert b_store.session(a_addr) is not None and b_store.load_prekey(1) is None


def test_pq_ratchet_option_is_checked() -> None:
    store = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    ts.SealedSessionCipher(store, pq_ratchet=ts.PqRatchet.PREFERRED)
    ts.SealedSessionCipher(store, pq_ratchet=ts.PqRatchet.REQUIRED)
    with pytest.raises(TypeError):
        ts.SealedSessionCipher(store, pq_ratchet="sometimes")  # type: ignore[arg-type]
