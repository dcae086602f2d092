"""A session record made by libsignal 0.103 moves into a durable store and lives on there.

Two libsignal-client 0.103.0 parties (live peers) talk; one party's ``SessionRecord`` (its own
side, SPQR state included, in libsignal's storage format) is saved into an ``SQLiteStore``
with ``save_session`` together with the remote identity (``trust``). The store is closed and
opened again from its file, and textsecure, in that party's place, continues the conversation
with the other live 0.103 peer in both directions for hundreds of messages across several
SPQR epochs, closing and reopening the store on the way. With and without an at-rest key.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import textsecure as ts
from peers import NodePeer, require_node_lib
from test_interop_spqr import message_epoch
from textsecure.stores import SQLiteStore

pytestmark = pytest.mark.interop

LIB = "ls0103"
KEY = bytes(range(100, 132))


@pytest.fixture
def peers() -> Iterator[tuple[NodePeer, NodePeer]]:
    require_node_lib(LIB)
    a = NodePeer(LIB)
    try:
        b = NodePeer(LIB)
        try:
            yield a, b
        finally:
            b.close()
    finally:
        a.close()


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "sealed"])
@pytest.mark.parametrize("imported", ["initiator", "responder"])
def test_libsignal_0103_record_continues_in_sqlite_across_reopen(
    peers: tuple[NodePeer, NodePeer], tmp_path: Path, imported: str, key: bytes | None
) -> None:
    a, b = peers
    a.create("alice", 1)
    b.create("bob", 1)
    # ``a`` initiates; the record moved to textsecure is a's or b's own side of the session.
    a.process_bundle("bob", 1, b.bundle(prekey_id=1, signed_prekey_id=1, kyber=True))
    epochs_before = set()
    for i in range(40):
        t, body = a.encrypt("bob", 1, b"a%d" % i)
        epochs_before.add(message_epoch(t, body))
        assert b.decrypt("alice", 1, t, body) == b"a%d" % i
        t, body = b.encrypt("alice", 1, b"b%d" % i)
        epochs_before.add(message_epoch(t, body))
        assert a.decrypt("bob", 1, t, body) == b"b%d" % i
    if imported == "initiator":
        source, live, me, remote = a, b, "alice", "bob"
    else:
        source, live, me, remote = b, a, "bob", "alice"
    remote_key = source.identity(remote, 1)
    assert remote_key is not None
    record = source.session_record(remote, 1)
    parsed = ts.SessionRecord.from_bytes(record)
    assert bytes(parsed) == record and parsed.version == 4 and parsed.has_current_session

    path = tmp_path / "imported.db"
    addr = ts.Address(remote, 1)
    store = SQLiteStore(path, account=me, registration_id=77, key=key)
    store.save_session(addr, parsed)
    store.trust(addr, remote_key)
    identity = bytes(store.identity_key_pair)
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        (row,) = db.execute(
            "SELECT record FROM sessions WHERE account = ? AND address = ?", (me, str(addr))
        ).fetchall()
    assert (bytes(row[0]) == record) == (key is None), "sealed at rest only with a key"

    def reopen() -> SQLiteStore:
        s = SQLiteStore(path, account=me, key=key)
        assert bytes(s.identity_key_pair) == identity and s.registration_id == 77
        return s

    store = reopen()
    try:
        stored = store.session(addr)
        assert stored is not None and bytes(stored) == record, "stored byte for byte"
        ik = store.identity(addr)
        assert ik is not None and bytes(ik) == remote_key
        epochs_after = set()
        for i in range(300):
            if i in (100, 200):  # and across more reopens, mid-conversation
                store.close()
                store = reopen()
            if i % 50 == 49:  # one-way bursts in both directions too
                burst = [ts.SessionCipher(store, addr).encrypt(b"burst%d" % j) for j in range(20)]
                for j, m in enumerate(burst):
                    assert live.decrypt(me, 1, int(m.type), bytes(m)) == b"burst%d" % j
                replies = [live.encrypt(me, 1, b"reply%d" % j) for j in range(20)]
                for j, (t, body) in enumerate(replies):
                    got = ts.SessionCipher(store, addr).decrypt(ts.parse_message(t, body))
                    assert got == b"reply%d" % j
            m = ts.SessionCipher(store, addr).encrypt(b"ts%d" % i)
            assert isinstance(m, ts.SignalMessage), "the imported session is acknowledged"
            epochs_after.add(message_epoch(int(m.type), bytes(m)))
            assert live.decrypt(me, 1, int(m.type), bytes(m)) == b"ts%d" % i
            t, body = live.encrypt(me, 1, b"live%d" % i)
            epochs_after.add(message_epoch(t, body))
            assert ts.SessionCipher(store, addr).decrypt(ts.parse_message(t, body)) == (
                b"live%d" % i
            )
        assert max(epochs_after) >= max(epochs_before) + 4, (
            f"SPQR epochs before the import {sorted(epochs_before)}, after {sorted(epochs_after)}"
        )
        # the record textsecure keeps is still libsignal's format: it goes back to libsignal
        final = store.session(addr)
        assert final is not None and final.version == 4
    finally:
        store.close()
    heir = NodePeer(LIB)
    try:
        heir.create(me, 1)
        heir.trust(remote, 1, remote_key)
        heir.import_session(remote, 1, bytes(final))
        t, body = heir.encrypt(remote, 1, b"back in libsignal")
        assert live.decrypt(me, 1, t, body) == b"back in libsignal"
        t, body = live.encrypt(me, 1, b"welcome back")
        assert heir.decrypt(remote, 1, t, body) == b"welcome back"
    finally:
        heir.close()
