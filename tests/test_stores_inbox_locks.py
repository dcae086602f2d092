"""Regression (found by tests/stress): on PostgreSQL, ``inbox_decrypt`` took the envelope's lock
before the session's, while a transaction that had already decrypted on that session held the
session's lock first; an envelope redelivered to another connection at that moment deadlocked
the two (``StoreError: DeadlockDetected``). Locks are now taken sessions first, envelope last.
"""

from __future__ import annotations

import threading
import time

import pytest
import textsecure as ts
from textsecure.stores import PostgresStore

SERVER = ts.Address("server", 1)
ALICE = ts.Address("alice", 1)


@pytest.mark.needs_postgres
def test_redelivery_racing_a_transaction_waits_instead_of_deadlocking(postgres_db: str) -> None:
    s1 = PostgresStore(postgres_db, account="server")
    s2 = PostgresStore(postgres_db, account="server")
    try:
        alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
        to = ts.SessionCipher(alice, SERVER)
        to.process_bundle(s1.new_bundle(1, prekey_id=1, signed_prekey_id=1))
        ts.SessionCipher(s1, ALICE).decrypt(to.encrypt(b"0"))
        a, b = to.encrypt(b"a"), to.encrypt(b"b")
        go = threading.Event()
        results: dict[str, object] = {}

        def redelivery() -> None:
            go.wait()
            try:
                results["other"] = s2.inbox_decrypt(ALICE, b).plaintext
            except Exception as e:  # reported below
                results["other"] = e

        thread = threading.Thread(target=redelivery)
        thread.start()
        try:
            with s1.transaction():
                assert ts.SessionCipher(s1, ALICE).decrypt(a) == b"a"  # holds the session lock
                go.set()
                time.sleep(0.5)  # the redelivery is now waiting for a lock
                results["tx"] = s1.inbox_decrypt(ALICE, b).plaintext
        finally:
            go.set()
            thread.join(60)
        # Both see the one decryption of b: the transaction decrypted it, the redelivery (which
        # waited for the transaction) got the stored plaintext.
        assert results == {"tx": b"b", "other": b"b"}
        assert [i.plaintext for i in s1.inbox_pending()] == [b"b"]
    finally:
        s1.close()
        s2.close()
