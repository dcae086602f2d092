"""Static PQXDH (session version 4) vectors from ``../shared/vectors`` (skipped without it).

* ``pqxdh_nospqr.json`` (libsignal-client 0.72.1 on both sides, PQXDH without SPQR) must replay
  completely, like the v3 files (see ``test_vectors_v3.py``).
* ``pqxdh_in_order.json``, ``pqxdh_out_of_order.json`` and ``pqxdh_ping_pong.json``
  (libsignal-client 0.103.0) key every message with SPQR, which textsecure does not implement
  yet. ``test_spqr_vectors_currently_rejected`` pins the current behaviour exactly: every
  message fails with a ``textsecure.errors`` exception and nothing is stored. When SPQR lands
  that test fails on purpose and becomes a replay test.
* The libsignal records in all four files (prekeys, Kyber prekeys, session records with SPQR
  state) round-trip byte for byte.
"""

from __future__ import annotations

from typing import Any

import pytest
import textsecure as ts
from test_vectors_v3 import (
    STEP_COUNTS,
    alice_address,
    b64,
    bob_store,
    check_delivery,
    check_header,
    expected_replay,
    load_vector,
    replay,
    session_fields,
)
from textsecure import errors

#: every test here replays ../shared/vectors (make test-unit leaves them out)
pytestmark = pytest.mark.needs_shared

SPQR_FILES = ["pqxdh_in_order.json", "pqxdh_out_of_order.json", "pqxdh_ping_pong.json"]
ALL_V4_FILES = ["pqxdh_nospqr.json", *SPQR_FILES]


def test_pqxdh_nospqr_replays() -> None:
    doc = load_vector("pqxdh_nospqr.json")
    assert doc["session_version"] == 4
    check_delivery(doc)
    # PREFERRED: libsignal 0.83-0.91 behaviour, which accepts a peer without SPQR.
    result = replay(doc, pq_ratchet=ts.PqRatchet.PREFERRED)
    assert result == expected_replay(doc)
    assert (result.decrypted, result.duplicates, result.sends) == (22, 1, 1)
    assert result.decrypted + result.duplicates + result.sends == STEP_COUNTS["pqxdh_nospqr.json"]


def test_pqxdh_nospqr_messages_carry_no_spqr_and_0x44() -> None:
    doc = load_vector("pqxdh_nospqr.json")
    for step in doc["steps"]:
        if step["op"] == "receive":
            assert "pq_ratchet" not in step["header"]
            assert b64(step["body"])[0] == 0x44


@pytest.mark.parametrize("last_resort", [False, True])
def test_pqxdh_first_message_uses_up_a_one_time_kyber_prekey(last_resort: bool) -> None:
    doc = load_vector("pqxdh_nospqr.json")
    bob = doc["bob"]
    store = bob_store(doc, kyber_last_resort=last_resort)
    addr = alice_address(doc)
    step = doc["steps"][0]
    msg = ts.parse_message(3, b64(step["body"]))
    assert isinstance(msg, ts.PreKeySignalMessage)
    check_header(msg, step)
    assert msg.kyber_prekey_id == bob["kyber_prekey_id"]
    cipher = ts.SessionCipher(store, addr, pq_ratchet=ts.PqRatchet.PREFERRED)
    assert cipher.decrypt(msg) == b64(step["plaintext"])
    assert store.session(addr).version == 4
    assert store.load_prekey(bob["prekey_id"]) is None
    kept = store.load_kyber_prekey(bob["kyber_prekey_id"])
    assert (kept is not None) == last_resort
    fields = session_fields(bytes(store.session(addr)))
    assert fields["version"] == 4 and fields["pq_ratchet_state"] is None


def test_pq_ratchet_required_refuses_a_session_without_spqr() -> None:
    """As libsignal >= 0.92 does: a new v4 session whose peer sends no SPQR is refused."""
    doc = load_vector("pqxdh_nospqr.json")
    store = bob_store(doc)
    addr = alice_address(doc)
    cipher = ts.SessionCipher(store, addr, pq_ratchet=ts.PqRatchet.REQUIRED)
    with pytest.raises(errors.TextSecureError):
        cipher.decrypt(ts.parse_message(3, b64(doc["steps"][0]["body"])))
    assert store.session(addr) is None


@pytest.mark.parametrize("name", SPQR_FILES)
def test_spqr_vectors_decrypt(name: str) -> None:
    """libsignal 0.103 conversations (SPQR in every message) decrypt with SPQR required (the
    default policy). At `op: send` Bob continues from libsignal's own record (SPQR state
    included), because his reply depended on libsignal's randomness; the record must
    round-trip byte for byte. The duplicate step raises DuplicateMessage, state unchanged."""
    doc = load_vector(name)
    assert doc["session_version"] == 4
    bob = doc["bob"]
    store = bob_store(doc)
    addr = alice_address(doc)
    cipher = ts.SessionCipher(store, addr)
    decrypted = duplicates = 0
    for n, step in enumerate(doc["steps"]):
        if step["op"] == "send":
            data = b64(step["bob_session_record_after"])
            record = ts.SessionRecord.from_bytes(data)
            assert bytes(record) == data, f"step {n}: record round trip"
            store.save_session(addr, record)
            continue
        assert step["header"].get("pq_ratchet"), f"step {n} carries no SPQR data"
        msg = ts.parse_message(step["type"], b64(step["body"]))
        check_header(msg, step)
        if step.get("expect_error") == "duplicate":
            before = bytes(store.session(addr) or ts.SessionRecord.from_bytes(b""))
            with pytest.raises(errors.DuplicateMessage):
                cipher.decrypt(msg)
            assert bytes(store.session(addr) or ts.SessionRecord.from_bytes(b"")) == before
            duplicates += 1
            continue
        assert cipher.decrypt(msg) == b64(step["plaintext"]), f"step {n}"
        decrypted += 1
        if n == 0:
            assert store.load_prekey(bob["prekey_id"]) is None
            assert store.identity(addr) == ts.IdentityKey.from_bytes(
                b64(doc["alice"]["identity_key"])
            )
    record = store.session(addr)
    assert record is not None and record.version == 4
    assert decrypted + duplicates == sum(s["op"] == "receive" for s in doc["steps"])
    assert decrypted > 0


@pytest.mark.parametrize("name", ALL_V4_FILES)
def test_v4_prekey_records_round_trip(name: str) -> None:
    bob = load_vector(name)["bob"]
    for field, cls in (
        ("prekey_record", ts.PreKeyRecord),
        ("signed_prekey_record", ts.SignedPreKeyRecord),
        ("kyber_prekey_record", ts.KyberPreKeyRecord),
    ):
        data = b64(bob[field])
        record: Any = cls.from_bytes(data)
        assert bytes(record) == data, field
    kyber = ts.KyberPreKeyRecord.from_bytes(b64(bob["kyber_prekey_record"]))
    assert bytes(kyber.signature) == b64(bob["kyber_prekey_signature"])
    assert len(bytes(kyber.public_key)) == 1569 and bytes(kyber.public_key)[0] == 0x08


@pytest.mark.parametrize("name", ["pqxdh_nospqr.json", "pqxdh_ping_pong.json"])
def test_v4_session_records_round_trip_byte_exact(name: str) -> None:
    """libsignal 0.72's record (no SPQR) and every one of libsignal 0.103's records in the
    ping-pong file (with SPQR state, SessionStructure field 15, which we keep opaque)."""
    doc = load_vector(name)
    records = [b64(s["bob_session_record_after"]) for s in doc["steps"] if s["op"] == "send"]
    assert records
    for data in records:
        record = ts.SessionRecord.from_bytes(data)
        assert record.version == 4
        assert bytes(record) == data
        pq_state = session_fields(data)["pq_ratchet_state"]
        assert (pq_state is not None) == (name == "pqxdh_ping_pong.json")
