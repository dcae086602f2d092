"""The durable stores' prekey lifecycle, on SQLite and PostgreSQL: counts, batches and refills,
24-bit ids from a wrapping counter that skips live ids, rotation of the signed and last-resort
keys with injected time, the grace period of replaced keys, stale one-time keys, confirmation
of uploads, ``current_bundle`` (confirmed keys only, never older than 14 days) and a real
session set up from it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import textsecure as ts
from textsecure import _native, errors
from textsecure.stores import (
    DurableStore,
    PostgresStore,
    PreKeyCounts,
    PreKeyUpload,
    SQLiteStore,
    UploadKey,
)

DAY = 24 * 3600 * 1000
T0 = 1_700_000_000_000
MAX_ID = 0xFFFFFF
KEY = bytes(range(32))
ALICE = ts.Address("alice", 1)
BOB = ts.Address("bob", 1)

needs_native_uow = pytest.mark.skipif(
    not all(n in vars(_native) for n in ("Snapshot", "Operation", "RecordSealer")),
    reason="this build of textsecure._native has no Snapshot / Operation / RecordSealer yet",
)


class Db:
    def __init__(self, kind: str, target: str) -> None:
        self.kind = kind
        self.target = target
        self.opened: list[DurableStore] = []

    def store(self, **kw: Any) -> DurableStore:
        s: DurableStore = (
            SQLiteStore(self.target, **kw)
            if self.kind == "sqlite"
            else PostgresStore(self.target, **kw)
        )
        self.opened.append(s)
        return s

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        s = self.store(account="_query")
        try:
            with s._unit() as conn:
                return s._engine.execute(conn, sql, params).rows
        finally:
            s.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        d = Db("sqlite", str(tmp_path / "prekeys.db"))
    else:
        d = Db("postgres", request.getfixturevalue("postgres_db"))
    yield d
    for s in d.opened:
        s.close()


def _ids(db: Db, table: str, where: str = "") -> list[int]:
    rows = db.query(f"SELECT id FROM {table} WHERE account = 'a'{where} ORDER BY id")
    return [int(r[0]) for r in rows]


def _set_counter(db: Db, column: str, value: int) -> None:
    db.query(f"UPDATE prekey_ids SET {column} = $1 WHERE account = 'a'", value)


def _both(upload: PreKeyUpload | None) -> tuple[int, int]:
    """The ids of an upload's signed prekey and last-resort Kyber prekey (both present)."""
    assert upload is not None
    assert upload.signed_prekey is not None and upload.last_resort_kyber_prekey is not None
    return upload.signed_prekey.id, upload.last_resort_kyber_prekey.id


def _zero_counts() -> PreKeyCounts:
    return PreKeyCounts(0, 0, 0, 0, 0, 0, None, None)


# ---------------------------------------------------------------------------------------
# Batches, counts, confirmation
# ---------------------------------------------------------------------------------------


def test_generate_counts_confirm(db: Db) -> None:
    s = db.store(account="a")
    assert s.prekey_counts(now_ms=T0) == _zero_counts()
    upload = s.generate_prekeys(5, now_ms=T0)
    assert isinstance(upload, PreKeyUpload) and upload.created_at == T0
    assert upload.signed_prekey is None and upload.last_resort_kyber_prekey is None
    assert len(upload.prekeys) == 5 and len(upload.kyber_prekeys) == 5
    assert sorted(upload.prekey_ids) == _ids(db, "prekeys")
    assert sorted(upload.kyber_prekey_ids) == _ids(db, "kyber_prekeys")
    identity = s.identity_key_pair.public_key
    for key in upload.prekeys:
        assert 1 <= key.id <= MAX_ID and key.signature is None
        record = s.load_prekey(key.id)
        assert record is not None and bytes(record.public_key) == key.public_key
    for key in upload.kyber_prekeys:
        assert 1 <= key.id <= MAX_ID and key.signature is not None
        assert len(key.public_key) == 1569
        assert identity.verify(key.public_key, key.signature)
        kyber = s.load_kyber_prekey(key.id)
        assert kyber is not None and bytes(kyber.public_key) == key.public_key
        assert kyber.timestamp == T0
    assert s.prekey_counts(now_ms=T0) == PreKeyCounts(0, 0, 5, 5, 0, 0, None, None)
    s.confirm_upload(upload)
    assert s.prekey_counts(now_ms=T0) == PreKeyCounts(5, 5, 0, 0, 0, 0, None, None)
    ec_only = s.generate_prekeys(3, kyber=False, now_ms=T0)
    assert len(ec_only.prekeys) == 3 and ec_only.kyber_prekeys == ()
    assert s.prekey_counts(now_ms=T0) == PreKeyCounts(5, 5, 3, 0, 0, 0, None, None)
    assert len(s.generate_prekeys(now_ms=T0).prekeys) == 100  # Signal's batch

    rotated = s.rotate_signed_prekeys(now_ms=T0)
    assert rotated is not None and rotated.prekeys == () and rotated.kyber_prekeys == ()
    assert rotated.signed_prekey is not None and rotated.last_resort_kyber_prekey is not None
    spk_sig = rotated.signed_prekey.signature
    assert spk_sig is not None and identity.verify(rotated.signed_prekey.public_key, spk_sig)
    lr = rotated.last_resort_kyber_prekey
    assert lr.signature is not None and identity.verify(lr.public_key, lr.signature)
    counts = s.prekey_counts(now_ms=T0 + 5)
    assert counts.unconfirmed_signed_prekeys == 1
    assert counts.unconfirmed_last_resort_kyber_prekeys == 1
    assert counts.signed_prekey_age_ms is None  # nothing confirmed yet
    s.confirm_upload(rotated)
    counts = s.prekey_counts(now_ms=T0 + 5)
    assert counts.unconfirmed_signed_prekeys == 0
    assert counts.signed_prekey_age_ms == 5 and counts.last_resort_kyber_prekey_age_ms == 5
    # a last-resort key is not a one-time Kyber key
    assert counts.kyber_prekeys == 5 and counts.unconfirmed_kyber_prekeys == 100
    assert db.query("SELECT last_resort FROM kyber_prekeys WHERE account = 'a' AND id = $1", lr.id)[
        0
    ][0] in (True, 1)


def test_refill_below_threshold_only(db: Db) -> None:
    s = db.store(account="a")
    assert s.refill_prekeys(server_count=10, now_ms=T0) is None
    assert s.refill_prekeys(server_count=50, server_kyber_count=10, now_ms=T0) is None
    assert _ids(db, "prekeys") == []
    upload = s.refill_prekeys(server_count=9, now_ms=T0)
    assert upload is not None and len(upload.prekeys) == len(upload.kyber_prekeys) == 100
    upload = s.refill_prekeys(server_count=50, server_kyber_count=3, batch=7, now_ms=T0)
    assert upload is not None and len(upload.prekeys) == len(upload.kyber_prekeys) == 7
    upload = s.refill_prekeys(server_count=4, batch=20, threshold=5, kyber=False, now_ms=T0)
    assert upload is not None and len(upload.prekeys) == 20 and upload.kyber_prekeys == ()
    assert s.refill_prekeys(server_count=5, threshold=5, now_ms=T0) is None
    assert s.refill_prekeys(server_count=50, server_kyber_count=0, kyber=False) is None
    assert len(_ids(db, "prekeys")) == 127 and len(_ids(db, "kyber_prekeys")) == 107


def test_ids_wrap_and_skip_live_ids(db: Db) -> None:
    s = db.store(account="a")
    first = s.generate_prekeys(1, now_ms=T0)  # the counters start at a random id
    assert 1 <= first.prekey_ids[0] <= MAX_ID and 1 <= first.kyber_prekey_ids[0] <= MAX_ID
    s.remove_prekey(first.prekey_ids[0])
    s.remove_kyber_prekey(first.kyber_prekey_ids[0])
    for id in (MAX_ID, 1, 3):
        s.save_prekey(ts.PreKeyRecord.generate(id))
    s.save_kyber_prekey(ts.KyberPreKeyRecord.generate(2, s.identity_key_pair))
    s.save_kyber_prekey(
        ts.KyberPreKeyRecord.generate(MAX_ID - 1, s.identity_key_pair), last_resort=True
    )
    _set_counter(db, "next_prekey_id", MAX_ID - 1)
    _set_counter(db, "next_kyber_prekey_id", MAX_ID - 1)
    upload = s.generate_prekeys(3, now_ms=T0)
    assert upload.prekey_ids == (MAX_ID - 1, 2, 4)
    assert upload.kyber_prekey_ids == (MAX_ID, 1, 3)
    assert db.query("SELECT next_prekey_id, next_kyber_prekey_id FROM prekey_ids") == [(5, 4)]
    # a signed prekey's id comes from its own counter, wrapping the same way
    s.save_signed_prekey(ts.SignedPreKeyRecord.generate(MAX_ID, s.identity_key_pair))
    for table in ("signed_prekeys", "kyber_prekeys"):  # saved by hand: make them old
        db.query(f"UPDATE {table} SET created_at = $1", T0)
    _set_counter(db, "next_signed_prekey_id", MAX_ID)
    rotated = s.rotate_signed_prekeys(now_ms=T0 + 3 * DAY)
    assert rotated is not None and rotated.signed_prekey_id == 1
    assert rotated.last_resort_kyber_prekey_id == 4
    # the stored keys were never overwritten
    assert sorted(_ids(db, "prekeys")) == [1, 2, 3, 4, MAX_ID - 1, MAX_ID]


def test_concurrent_stores_take_distinct_ids(db: Db) -> None:
    stores = [db.store(account="a") for _ in range(3)]
    failures: list[BaseException] = []
    uploads: list[PreKeyUpload] = []
    barrier = threading.Barrier(len(stores))

    def work(s: DurableStore) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                uploads.append(s.generate_prekeys(10, now_ms=T0))
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    ids = [i for u in uploads for i in u.prekey_ids]
    kyber_ids = [i for u in uploads for i in u.kyber_prekey_ids]
    assert len(set(ids)) == len(ids) == 90 and len(set(kyber_ids)) == 90
    assert len(_ids(db, "prekeys")) == 90


def test_a_rolled_back_transaction_keeps_nothing(db: Db) -> None:
    s = db.store(account="a")
    s.generate_prekeys(1, now_ms=T0)
    counter = db.query("SELECT * FROM prekey_ids")
    with pytest.raises(KeyError), s.transaction():
        s.generate_prekeys(5, now_ms=T0)
        s.rotate_signed_prekeys(now_ms=T0)
        raise KeyError
    assert db.query("SELECT * FROM prekey_ids") == counter
    assert len(_ids(db, "prekeys")) == 1 and _ids(db, "signed_prekeys") == []


def test_arguments_are_checked(db: Db) -> None:
    s = db.store(account="a")
    for bad in (0, -1, 10_001):
        with pytest.raises(errors.InvalidArgument):
            s.generate_prekeys(bad)
    with pytest.raises(errors.InvalidArgument):
        s.generate_prekeys(1, now_ms=-5)
    with pytest.raises(errors.InvalidArgument):
        s.refill_prekeys(server_count=-1)
    with pytest.raises(TypeError):
        s.confirm_upload("nope")  # type: ignore[arg-type]
    assert _ids(db, "prekeys") == []


# ---------------------------------------------------------------------------------------
# Rotation, grace period, stale one-time keys
# ---------------------------------------------------------------------------------------


def test_rotation_after_two_days(db: Db) -> None:
    s = db.store(account="a")
    first = s.rotate_signed_prekeys(now_ms=T0)
    assert first is not None and first.created_at == T0
    spk1, lr1 = _both(first)
    spk = s.load_signed_prekey(spk1)
    assert spk is not None and spk.timestamp == T0
    assert s.rotate_signed_prekeys(now_ms=T0 + DAY) is None
    assert s.rotate_signed_prekeys(now_ms=T0 + 2 * DAY - 1) is None
    # due whether or not the newest was confirmed (an unconfirmed one is not rotated again
    # before its time: a failed upload is retried, or the next rotation replaces it)
    spk2, lr2 = _both(s.rotate_signed_prekeys(now_ms=T0 + 2 * DAY))
    assert spk2 != spk1 and lr2 != lr1
    assert len(_ids(db, "signed_prekeys")) == 2
    # each kind on its own schedule
    s.remove_signed_prekey(spk1)
    s.remove_signed_prekey(spk2)
    third = s.rotate_signed_prekeys(now_ms=T0 + 3 * DAY)
    assert third is not None and third.signed_prekey is not None
    assert third.last_resort_kyber_prekey is None
    only_last_resort = s.rotate_signed_prekeys(now_ms=T0 + 3 * DAY, interval_ms=DAY)
    assert only_last_resort is not None and only_last_resort.signed_prekey is None
    assert only_last_resort.last_resort_kyber_prekey is not None
    assert s.rotate_signed_prekeys(now_ms=T0 + 4 * DAY - 1, interval_ms=DAY) is None
    both = s.rotate_signed_prekeys(now_ms=T0 + 4 * DAY, interval_ms=DAY)
    assert both is not None and both.signed_prekey is not None
    assert both.last_resort_kyber_prekey is not None


def test_replaced_keys_deleted_after_grace_keeping_the_newest(db: Db) -> None:
    s = db.store(account="a")
    u1 = s.rotate_signed_prekeys(now_ms=T0)
    assert u1 is not None
    s.confirm_upload(u1, now_ms=T0)
    spk1, lr1 = _both(u1)
    assert db.query("SELECT replaced_at FROM signed_prekeys") == [(None,)]
    # sessions were set up with the first keys (replay records)
    s.save_session(ALICE, _session())
    with s._unit() as conn:
        s._q(conn, "INSERT INTO base_keys VALUES ('a', $1, $2)", spk1, b"base")
        s._q(conn, "INSERT INTO kyber_last_resort_uses VALUES ('a', $1, $2, $3)", lr1, spk1, b"b")

    t1 = T0 + 2 * DAY
    u2 = s.rotate_signed_prekeys(now_ms=t1)
    assert u2 is not None
    spk2, lr2 = _both(u2)
    # not replaced until the new keys are confirmed
    assert db.query("SELECT replaced_at FROM signed_prekeys WHERE id = $1", spk1) == [(None,)]
    s.confirm_upload(u2, now_ms=t1 + 10)
    for table, old, new in (("signed_prekeys", spk1, spk2), ("kyber_prekeys", lr1, lr2)):
        assert db.query(f"SELECT replaced_at FROM {table} WHERE id = $1", old) == [(t1 + 10,)]
        assert db.query(f"SELECT replaced_at FROM {table} WHERE id = $1", new) == [(None,)]

    # kept through the grace period (rotation goes on meanwhile, unconfirmed)
    assert s.rotate_signed_prekeys(now_ms=t1 + 10 + 30 * DAY - 1) is not None
    assert s.load_signed_prekey(spk1) is not None and s.load_kyber_prekey(lr1) is not None
    # deleted 30 days after the replacement, with their replay records
    s.rotate_signed_prekeys(now_ms=t1 + 10 + 30 * DAY)
    assert s.load_signed_prekey(spk1) is None and s.load_kyber_prekey(lr1) is None
    assert db.query("SELECT COUNT(*) FROM base_keys")[0][0] == 0
    assert db.query("SELECT COUNT(*) FROM kyber_last_resort_uses")[0][0] == 0
    # the newest confirmed keys stay, and so do the unconfirmed newer ones
    assert s.load_signed_prekey(spk2) is not None and s.load_kyber_prekey(lr2) is not None
    assert len(_ids(db, "signed_prekeys")) == 2
    counts = s.prekey_counts(now_ms=t1 + 10 + 30 * DAY)
    assert counts.unconfirmed_signed_prekeys == 1
    assert counts.signed_prekey_age_ms == 10 + 30 * DAY
    assert s.session(ALICE) is not None  # sessions are not touched

    # the newest confirmed key is kept even if marked replaced
    db.query("UPDATE signed_prekeys SET replaced_at = 1")
    db.query("UPDATE kyber_prekeys SET replaced_at = 1")
    spk5, lr5 = _both(s.rotate_signed_prekeys(now_ms=t1 + 60 * DAY, grace_ms=0))
    # (the keys just generated are unconfirmed, not replaced)
    assert _ids(db, "signed_prekeys") == sorted([spk2, spk5])
    assert _ids(db, "kyber_prekeys") == sorted([lr2, lr5])


def test_one_time_keys_stale_after_90_days(db: Db) -> None:
    s = db.store(account="a")
    old = s.generate_prekeys(3, now_ms=T0)
    s.confirm_upload(old)
    young = s.generate_prekeys(2, now_ms=T0 + 10 * DAY)
    s.rotate_signed_prekeys(now_ms=T0 + 90 * DAY)
    assert len(_ids(db, "prekeys")) == 5
    s.rotate_signed_prekeys(now_ms=T0 + 90 * DAY + 1)
    assert _ids(db, "prekeys") == sorted(young.prekey_ids)
    assert _ids(db, "kyber_prekeys", " AND NOT last_resort") == sorted(young.kyber_prekey_ids)
    assert len(_ids(db, "kyber_prekeys", " AND last_resort")) == 1  # not a one-time key


# ---------------------------------------------------------------------------------------
# current_bundle and a real session
# ---------------------------------------------------------------------------------------


def _session() -> ts.SessionRecord:
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
    ts.SessionCipher(alice, BOB).process_bundle(bob.new_bundle(1, signed_prekey_id=1, prekey_id=1))
    record = alice.session(BOB)
    assert record is not None
    return record


def _published(s: DurableStore, now: int, count: int = 3) -> tuple[PreKeyUpload, PreKeyUpload]:
    """Keys generated and confirmed, as an application does after a successful upload."""
    rotated = s.rotate_signed_prekeys(now_ms=now)
    assert rotated is not None
    s.confirm_upload(rotated, now_ms=now)
    batch = s.generate_prekeys(count, now_ms=now)
    s.confirm_upload(batch, now_ms=now)
    return rotated, batch


def test_current_bundle_has_confirmed_keys_only(db: Db) -> None:
    s = db.store(account="a", registration_id=321)
    rotated, batch = _published(s, T0)
    unconfirmed_batch = s.generate_prekeys(3, now_ms=T0 - 1000)  # older, but unconfirmed
    newer = s.rotate_signed_prekeys(now_ms=T0 + 2 * DAY)  # newer, but unconfirmed
    assert newer is not None
    bundle = s.current_bundle(7, now_ms=T0 + 2 * DAY)
    assert bundle.registration_id == 321 and bundle.device_id == 7
    assert bundle.identity_key == s.identity_key_pair.public_key
    assert bundle.signed_prekey_id == rotated.signed_prekey_id
    assert rotated.signed_prekey is not None
    assert bytes(bundle.signed_prekey_public) == rotated.signed_prekey.public_key
    assert bundle.signed_prekey_signature == rotated.signed_prekey.signature
    assert bundle.prekey_id in batch.prekey_ids
    assert bundle.kyber_prekey_id in batch.kyber_prekey_ids
    assert bundle.prekey_id not in unconfirmed_batch.prekey_ids
    # once confirmed, the newer keys are used
    s.confirm_upload(newer, now_ms=T0 + 2 * DAY)
    bundle = s.current_bundle(7, now_ms=T0 + 2 * DAY)
    assert bundle.signed_prekey_id == newer.signed_prekey_id
    # without a confirmed one-time key: no one-time EC key, the last-resort Kyber key
    for id in batch.prekey_ids:
        s.remove_prekey(id)
    for id in batch.kyber_prekey_ids:
        s.remove_kyber_prekey(id)
    bundle = s.current_bundle(7, now_ms=T0 + 2 * DAY)
    assert bundle.prekey_id is None and bundle.prekey_public is None
    assert bundle.kyber_prekey_id == newer.last_resort_kyber_prekey_id
    x3dh = s.current_bundle(7, kyber=False, now_ms=T0 + 2 * DAY)
    assert x3dh.kyber_prekey_id is None and x3dh.signed_prekey_id == newer.signed_prekey_id


def test_current_bundle_never_uses_keys_older_than_14_days(db: Db) -> None:
    s = db.store(account="a")
    rotated, _ = _published(s, T0)
    late = T0 + 14 * DAY - 1
    assert s.current_bundle(1, now_ms=late).signed_prekey_id == rotated.signed_prekey_id
    stale = T0 + 14 * DAY
    bundle = s.current_bundle(1, now_ms=stale)
    assert bundle.signed_prekey_id != rotated.signed_prekey_id
    spk = s.load_signed_prekey(bundle.signed_prekey_id)
    assert spk is not None and spk.timestamp == stale
    counts = s.prekey_counts(now_ms=stale)
    assert counts.signed_prekey_age_ms == 0 and counts.last_resort_kyber_prekey_age_ms == 0
    assert counts.unconfirmed_signed_prekeys == 0
    # the old keys are replaced (deleted after the grace period), the one-time keys kept
    assert db.query(
        "SELECT replaced_at FROM signed_prekeys WHERE id = $1", rotated.signed_prekey_id
    ) == [(stale,)]
    assert bundle.prekey_id is not None
    # a store with nothing confirmed gets fresh signed and last-resort keys the same way
    fresh = db.store(account="fresh")
    bundle = fresh.current_bundle(2, now_ms=T0)
    assert bundle.prekey_id is None and bundle.kyber_prekey_id is not None
    assert fresh.prekey_counts(now_ms=T0).signed_prekey_age_ms == 0


@needs_native_uow
@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "sealed"])
def test_session_from_current_bundle(db: Db, key: bytes | None) -> None:
    bob = db.store(account="a", key=key)
    _, batch = _published(bob, time.time_ns() // 1_000_000, count=1)
    bundle = bob.current_bundle(1)
    assert bundle.prekey_id == batch.prekey_ids[0]
    assert bundle.kyber_prekey_id == batch.kyber_prekey_ids[0]

    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    to_bob = ts.SessionCipher(alice, BOB)
    to_bob.process_bundle(bundle)
    first = to_bob.encrypt(b"hello bob")
    to_alice = ts.SessionCipher(bob, ALICE)
    assert to_alice.decrypt(first) == b"hello bob"
    # the one-time keys are consumed; the last-resort key stays
    counts = bob.prekey_counts()
    assert counts.prekeys == 0 and counts.kyber_prekeys == 0
    assert to_bob.decrypt(to_alice.encrypt(b"hi alice")) == b"hi alice"

    # the next peer gets the last-resort Kyber key and no one-time EC key
    bundle = bob.current_bundle(1)
    assert bundle.prekey_id is None
    carol = ts.MemoryStore(ts.IdentityKeyPair.generate(), 3)
    from_carol = ts.SessionCipher(carol, BOB)
    from_carol.process_bundle(bundle)
    msg = from_carol.encrypt(b"from carol")
    assert ts.SessionCipher(bob, ts.Address("carol", 1)).decrypt(msg) == b"from carol"
    assert bob.prekey_counts().last_resort_kyber_prekey_age_ms is not None

    # an X3DH bundle works as well
    dave = ts.MemoryStore(ts.IdentityKeyPair.generate(), 4)
    from_dave = ts.SessionCipher(dave, BOB)
    from_dave.process_bundle(bob.current_bundle(1, kyber=False))
    msg = from_dave.encrypt(b"from dave")
    assert ts.SessionCipher(bob, ts.Address("dave", 1)).decrypt(msg) == b"from dave"


def test_upload_key_is_a_plain_value() -> None:
    k = UploadKey(5, b"\x05" * 33)
    assert k.signature is None and k == UploadKey(5, b"\x05" * 33)
    u = PreKeyUpload(1, signed_prekey=UploadKey(9, b"p", b"s"), prekeys=(k,))
    assert u.prekey_ids == (5,) and u.signed_prekey_id == 9
    assert u.kyber_prekey_ids == () and u.last_resort_kyber_prekey_id is None
