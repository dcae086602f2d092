"""The prekey lifecycle of the durable stores, as Signal's clients run it: one-time EC and Kyber
prekeys generated in batches of 100 and refilled when the server holds fewer than 10; the
signed prekey and the last-resort Kyber prekey rotated every 2 days (never older than 14 days
in a bundle); replaced ones deleted 30 days after their replacement (the newest kept); one-time
prekeys deleted after 90 days; 24-bit ids from per-account counters that wrap and skip ids
still stored.

New keys are stored *unconfirmed*: the application uploads ``PreKeyUpload``'s public parts
and calls ``confirm_upload`` once the server took them. A confirmed signed / last-resort key
replaces the older ones (their ``replaced_at`` is set then, starting the grace period).

Each public method of ``DurableStore`` that drives this is one unit of work (one transaction,
or a savepoint of the application's) under the account's ``prekeys`` lock (PostgreSQL; SQLite
holds the database lock). The functions here run inside it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textsecure import errors
from textsecure._native import (
    KyberPreKeyRecord,
    PreKeyBundle,
    PreKeyRecord,
    SignedPreKeyRecord,
)
from textsecure.stores import _native_api as nat
from textsecure.stores._sql import Statement

if TYPE_CHECKING:
    from textsecure.stores._base import DurableStore

__all__ = [
    "BATCH",
    "DAY_MS",
    "MAX_BUNDLE_KEY_AGE_MS",
    "MAX_PREKEY_ID",
    "ONE_TIME_MAX_AGE_MS",
    "REFILL_THRESHOLD",
    "REPLACED_GRACE_MS",
    "ROTATION_INTERVAL_MS",
    "PreKeyCounts",
    "PreKeyUpload",
    "UploadKey",
]

#: prekey ids are 24-bit (Signal's ``Medium.MAX_VALUE``): 1 ..= MAX_PREKEY_ID, then 1 again
MAX_PREKEY_ID = 0xFFFFFF
DAY_MS = 24 * 3600 * 1000
#: one-time keys per batch (Signal-Server takes at most 100 EC and 100 Kyber per upload)
BATCH = 100
#: refill when the server holds fewer one-time keys than this
REFILL_THRESHOLD = 10
#: rotate the signed prekey and the last-resort Kyber prekey this often
ROTATION_INTERVAL_MS = 2 * DAY_MS
#: a replaced signed / last-resort key is kept this long after its replacement (messages
#: sent to the old bundle may still be in flight)
REPLACED_GRACE_MS = 30 * DAY_MS
#: a bundle never carries a signed or last-resort key older than this
MAX_BUNDLE_KEY_AGE_MS = 14 * DAY_MS
#: one-time prekeys older than this are stale and deleted
ONE_TIME_MAX_AGE_MS = 90 * DAY_MS
#: the most one-time keys of each kind one ``generate_prekeys`` call makes
MAX_BATCH = 10_000

LOCK_KEY = "prekeys"

_COUNTER = {
    "prekeys": "next_prekey_id",
    "signed_prekeys": "next_signed_prekey_id",
    "kyber_prekeys": "next_kyber_prekey_id",
}


@dataclass(frozen=True, slots=True)
class UploadKey:
    """The public part of one prekey, as a server takes it: ``public_key`` serialized (a
    33-byte EC key, a 1569-byte Kyber-1024 key) and, for a signed prekey and a Kyber prekey,
    the identity key's XEdDSA ``signature`` over it (None for a one-time EC prekey)."""

    id: int
    public_key: bytes
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class PreKeyUpload:
    """Keys a store just generated (stored unconfirmed): what to upload to the server, then
    hand to ``store.confirm_upload``. Fields without new keys are None / empty."""

    #: when the keys were generated (ms since the epoch)
    created_at: int
    signed_prekey: UploadKey | None = None
    last_resort_kyber_prekey: UploadKey | None = None
    #: one-time EC prekeys (no signature)
    prekeys: tuple[UploadKey, ...] = ()
    #: one-time Kyber prekeys (signed)
    kyber_prekeys: tuple[UploadKey, ...] = ()

    @property
    def prekey_ids(self) -> tuple[int, ...]:
        """The one-time EC prekeys' ids."""
        return tuple(k.id for k in self.prekeys)

    @property
    def kyber_prekey_ids(self) -> tuple[int, ...]:
        """The one-time Kyber prekeys' ids (not the last-resort one's)."""
        return tuple(k.id for k in self.kyber_prekeys)

    @property
    def signed_prekey_id(self) -> int | None:
        """The new signed prekey's id, or None."""
        return None if self.signed_prekey is None else self.signed_prekey.id

    @property
    def last_resort_kyber_prekey_id(self) -> int | None:
        """The new last-resort Kyber prekey's id, or None."""
        k = self.last_resort_kyber_prekey
        return None if k is None else k.id


@dataclass(frozen=True, slots=True)
class PreKeyCounts:
    """What a store holds of its prekeys. "Confirmed" keys are those ``confirm_upload``
    marked as taken by the server; one-time keys are counted until a session consumes them."""

    #: confirmed one-time EC prekeys still stored
    prekeys: int
    #: confirmed one-time Kyber prekeys still stored
    kyber_prekeys: int
    unconfirmed_prekeys: int
    unconfirmed_kyber_prekeys: int
    unconfirmed_signed_prekeys: int
    unconfirmed_last_resort_kyber_prekeys: int
    #: age of the newest confirmed signed prekey (None: there is none)
    signed_prekey_age_ms: int | None
    #: age of the newest confirmed last-resort Kyber prekey (None: there is none)
    last_resort_kyber_prekey_age_ms: int | None


# ---------------------------------------------------------------------------------------
# Inside a unit of work
# ---------------------------------------------------------------------------------------


def check_now(now_ms: int | None, default: int) -> int:
    if now_ms is None:
        return default
    if not isinstance(now_ms, int) or isinstance(now_ms, bool) or now_ms < 0:
        raise errors.InvalidArgument("now_ms must be a non-negative int (ms since the epoch)")
    return now_ms


def check_count(name: str, value: int, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise errors.InvalidArgument(f"{name} must be an int in {low}..{high}")
    return value


def _random_id() -> int:
    return secrets.randbelow(MAX_PREKEY_ID) + 1


def take_ids(store: DurableStore, conn: Any, table: str, count: int) -> list[int]:
    """``count`` ids for new keys of ``table`` from the account's counter (started at a random
    id, as Signal's clients do), wrapping after MAX_PREKEY_ID and skipping ids still stored."""
    if count == 0:
        return []
    a = store._account
    column = _COUNTER[table]
    store._q(
        conn,
        "INSERT INTO prekey_ids "
        "(account, next_prekey_id, next_signed_prekey_id, next_kyber_prekey_id) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (account) DO NOTHING",
        a,
        _random_id(),
        _random_id(),
        _random_id(),
    )
    row = store._q(conn, f"SELECT {column} FROM prekey_ids WHERE account = $1", a).one()
    assert row is not None
    live = {int(r[0]) for r in store._q(conn, f"SELECT id FROM {table} WHERE account = $1", a).rows}
    if len(live) + count > MAX_PREKEY_ID:
        raise errors.StoreError(f"no free ids left for {count} new {table}")
    next_id = int(row[0])
    if not 1 <= next_id <= MAX_PREKEY_ID:
        next_id = 1
    ids: list[int] = []
    while len(ids) < count:
        if next_id not in live:
            ids.append(next_id)
        next_id = next_id % MAX_PREKEY_ID + 1
    store._q(conn, f"UPDATE prekey_ids SET {column} = $2 WHERE account = $1", a, next_id)
    return ids


def _insert(store: DurableStore, table: str, id: int, record: bytes, now: int) -> Statement:
    blob = store._seal(table, str(id), record)
    return (
        f"INSERT INTO {table} (account, id, record, created_at, confirmed) "
        "VALUES ($1, $2, $3, $4, FALSE)",
        (store._account, id, blob, now),
    )


def _insert_kyber(
    store: DurableStore, id: int, record: bytes, now: int, *, last_resort: bool
) -> Statement:
    blob = store._seal("kyber_prekeys", str(id), record)
    return (
        "INSERT INTO kyber_prekeys (account, id, record, last_resort, created_at, confirmed) "
        "VALUES ($1, $2, $3, $4, $5, FALSE)",
        (store._account, id, blob, last_resort, now),
    )


def generate_one_time(
    store: DurableStore, conn: Any, count: int, kyber: bool, now: int
) -> PreKeyUpload:
    identity = store._identity
    statements: list[Statement] = []
    prekeys: list[UploadKey] = []
    for id in take_ids(store, conn, "prekeys", count):
        pk = PreKeyRecord.generate(id)
        statements.append(_insert(store, "prekeys", id, bytes(pk), now))
        prekeys.append(UploadKey(id, bytes(pk.public_key)))
    kyber_prekeys: list[UploadKey] = []
    for id in take_ids(store, conn, "kyber_prekeys", count if kyber else 0):
        kpk = KyberPreKeyRecord.generate(id, identity, now)
        statements.append(_insert_kyber(store, id, bytes(kpk), now, last_resort=False))
        kyber_prekeys.append(UploadKey(id, bytes(kpk.public_key), kpk.signature))
    store._engine.run_many(conn, statements)
    return PreKeyUpload(now, prekeys=tuple(prekeys), kyber_prekeys=tuple(kyber_prekeys))


_LAST_RESORT = " AND last_resort"


def _newest(
    store: DurableStore, conn: Any, table: str, *, confirmed_only: bool
) -> tuple[int, int, bytes] | None:
    """(id, created_at, row bytes) of the newest signed (``signed_prekeys``) or last-resort
    (``kyber_prekeys``) key."""
    where = _LAST_RESORT if table == "kyber_prekeys" else ""
    if confirmed_only:
        where += " AND confirmed"
    row = store._q(
        conn,
        f"SELECT id, created_at, record FROM {table} WHERE account = $1{where} "
        "ORDER BY created_at DESC, id DESC LIMIT 1",
        store._account,
    ).one()
    return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]))


def _due(newest: tuple[int, int, bytes] | None, now: int, max_age_ms: int) -> bool:
    return newest is None or now - newest[1] >= max_age_ms


def generate_signed(
    store: DurableStore, conn: Any, now: int, *, signed: bool, last_resort: bool
) -> PreKeyUpload:
    """A new signed prekey and / or last-resort Kyber prekey, stored unconfirmed."""
    identity = store._identity
    statements: list[Statement] = []
    spk_key = lr_key = None
    if signed:
        (id,) = take_ids(store, conn, "signed_prekeys", 1)
        spk = SignedPreKeyRecord.generate(id, identity, now)
        statements.append(_insert(store, "signed_prekeys", id, bytes(spk), now))
        spk_key = UploadKey(id, bytes(spk.public_key), spk.signature)
    if last_resort:
        (id,) = take_ids(store, conn, "kyber_prekeys", 1)
        kpk = KyberPreKeyRecord.generate(id, identity, now)
        statements.append(_insert_kyber(store, id, bytes(kpk), now, last_resort=True))
        lr_key = UploadKey(id, bytes(kpk.public_key), kpk.signature)
    store._engine.run_many(conn, statements)
    return PreKeyUpload(now, signed_prekey=spk_key, last_resort_kyber_prekey=lr_key)


def rotate(
    store: DurableStore, conn: Any, now: int, interval_ms: int, grace_ms: int
) -> PreKeyUpload | None:
    signed = _due(_newest(store, conn, "signed_prekeys", confirmed_only=False), now, interval_ms)
    last_resort = _due(
        _newest(store, conn, "kyber_prekeys", confirmed_only=False), now, interval_ms
    )
    upload = None
    if signed or last_resort:
        upload = generate_signed(store, conn, now, signed=signed, last_resort=last_resort)
    clean_up(store, conn, now, grace_ms)
    return upload


def clean_up(store: DurableStore, conn: Any, now: int, grace_ms: int) -> None:
    """Deletes signed / last-resort keys replaced ``grace_ms`` ago or earlier (never the
    newest confirmed one) with their replay records, and one-time keys older than 90 days."""
    a = store._account
    statements: list[Statement] = []
    for table, replay_deletes in (
        (
            "signed_prekeys",
            (
                "DELETE FROM base_keys WHERE account = $1 AND signed_prekey_id = $2",
                "DELETE FROM kyber_last_resort_uses WHERE account = $1 AND signed_id = $2",
            ),
        ),
        (
            "kyber_prekeys",
            ("DELETE FROM kyber_last_resort_uses WHERE account = $1 AND kyber_id = $2",),
        ),
    ):
        keep = _newest(store, conn, table, confirmed_only=True)
        where = _LAST_RESORT if table == "kyber_prekeys" else ""
        expired = store._q(
            conn,
            f"SELECT id FROM {table} WHERE account = $1{where} "
            "AND replaced_at IS NOT NULL AND replaced_at <= $2",
            a,
            now - grace_ms,
        ).rows
        for (id,) in expired:
            if keep is not None and int(id) == keep[0]:
                continue
            statements.append((f"DELETE FROM {table} WHERE account = $1 AND id = $2", (a, id)))
            statements.extend((sql, (a, id)) for sql in replay_deletes)
    stale = now - ONE_TIME_MAX_AGE_MS
    statements.append(("DELETE FROM prekeys WHERE account = $1 AND created_at < $2", (a, stale)))
    statements.append(
        (
            "DELETE FROM kyber_prekeys WHERE account = $1 AND NOT last_resort AND created_at < $2",
            (a, stale),
        )
    )
    store._engine.run_many(conn, statements)


def confirm(store: DurableStore, conn: Any, upload: PreKeyUpload, now: int) -> None:
    """Marks the upload's keys confirmed; a confirmed signed / last-resort key replaces every
    older one (``replaced_at`` = now, unless already set)."""
    a = store._account
    statements: list[Statement] = []

    def mark(table: str, ids: Sequence[int], where: str = "") -> None:
        statements.extend(
            (
                f"UPDATE {table} SET confirmed = TRUE WHERE account = $1 AND id = $2{where}",
                (a, id),
            )
            for id in ids
        )

    mark("prekeys", upload.prekey_ids)
    mark("kyber_prekeys", upload.kyber_prekey_ids, " AND NOT last_resort")
    if upload.signed_prekey_id is not None:
        mark("signed_prekeys", [upload.signed_prekey_id])
    if upload.last_resort_kyber_prekey_id is not None:
        mark("kyber_prekeys", [upload.last_resort_kyber_prekey_id], _LAST_RESORT)
    store._engine.run_many(conn, statements)
    mark_replaced(store, conn, now)


def mark_replaced(store: DurableStore, conn: Any, now: int) -> None:
    for table in ("signed_prekeys", "kyber_prekeys"):
        newest = _newest(store, conn, table, confirmed_only=True)
        if newest is None:
            continue
        id, created_at, _ = newest
        where = _LAST_RESORT if table == "kyber_prekeys" else ""
        store._q(
            conn,
            f"UPDATE {table} SET replaced_at = $2 WHERE account = $1{where} "
            "AND replaced_at IS NULL AND (created_at < $3 OR (created_at = $3 AND id < $4))",
            store._account,
            now,
            created_at,
            id,
        )


def counts(store: DurableStore, conn: Any, now: int) -> PreKeyCounts:
    row = store._q(
        conn,
        "SELECT "
        "(SELECT COUNT(*) FROM prekeys WHERE account = $1 AND confirmed), "
        "(SELECT COUNT(*) FROM kyber_prekeys "
        "WHERE account = $1 AND NOT last_resort AND confirmed), "
        "(SELECT COUNT(*) FROM prekeys WHERE account = $1 AND NOT confirmed), "
        "(SELECT COUNT(*) FROM kyber_prekeys "
        "WHERE account = $1 AND NOT last_resort AND NOT confirmed), "
        "(SELECT COUNT(*) FROM signed_prekeys WHERE account = $1 AND NOT confirmed), "
        "(SELECT COUNT(*) FROM kyber_prekeys "
        "WHERE account = $1 AND last_resort AND NOT confirmed), "
        "(SELECT MAX(created_at) FROM signed_prekeys WHERE account = $1 AND confirmed), "
        "(SELECT MAX(created_at) FROM kyber_prekeys "
        "WHERE account = $1 AND last_resort AND confirmed)",
        store._account,
    ).one()
    assert row is not None

    def age(created_at: Any) -> int | None:
        return None if created_at is None else max(0, now - int(created_at))

    return PreKeyCounts(
        prekeys=int(row[0]),
        kyber_prekeys=int(row[1]),
        unconfirmed_prekeys=int(row[2]),
        unconfirmed_kyber_prekeys=int(row[3]),
        unconfirmed_signed_prekeys=int(row[4]),
        unconfirmed_last_resort_kyber_prekeys=int(row[5]),
        signed_prekey_age_ms=age(row[6]),
        last_resort_kyber_prekey_age_ms=age(row[7]),
    )


def bundle(
    store: DurableStore, conn: Any, device_id: int, now: int, kyber: bool, max_age_ms: int
) -> PreKeyBundle:
    """The bundle a server would hand out now: the newest confirmed signed and last-resort
    keys (rotated and confirmed here first when missing or older than ``max_age_ms``), the
    oldest confirmed one-time EC prekey and one-time Kyber prekey (the last-resort key when
    there is none). Nothing is consumed: a server hands a one-time key out once; here it is
    deleted when a session uses it."""
    spk_row = _newest(store, conn, "signed_prekeys", confirmed_only=True)
    lr_row = _newest(store, conn, "kyber_prekeys", confirmed_only=True) if kyber else None
    stale_signed = _due(spk_row, now, max_age_ms)
    stale_last_resort = kyber and _due(lr_row, now, max_age_ms)
    if stale_signed or stale_last_resort:
        fresh = generate_signed(
            store, conn, now, signed=stale_signed, last_resort=stale_last_resort
        )
        confirm(store, conn, fresh, now)
        spk_row = _newest(store, conn, "signed_prekeys", confirmed_only=True)
        if kyber:
            lr_row = _newest(store, conn, "kyber_prekeys", confirmed_only=True)
    assert spk_row is not None
    spk = nat.parse_row(
        SignedPreKeyRecord, store._open("signed_prekeys", str(spk_row[0]), spk_row[2])
    )
    a = store._account
    otk_row = store._q(
        conn,
        "SELECT id, record FROM prekeys WHERE account = $1 AND confirmed "
        "ORDER BY created_at, id LIMIT 1",
        a,
    ).one()
    otk = (
        None
        if otk_row is None
        else nat.parse_row(PreKeyRecord, store._open("prekeys", str(otk_row[0]), otk_row[1]))
    )
    kpk = None
    if kyber:
        k_row = store._q(
            conn,
            "SELECT id, record FROM kyber_prekeys WHERE account = $1 AND confirmed "
            "AND NOT last_resort ORDER BY created_at, id LIMIT 1",
            a,
        ).one()
        if k_row is None:
            assert lr_row is not None
            k_row = (lr_row[0], lr_row[2])
        kpk = nat.parse_row(
            KyberPreKeyRecord, store._open("kyber_prekeys", str(k_row[0]), k_row[1])
        )
    return PreKeyBundle(
        registration_id=store._registration_id,
        device_id=device_id,
        identity_key=store._identity.public_key,
        signed_prekey_id=spk.id,
        signed_prekey_public=spk.public_key,
        signed_prekey_signature=spk.signature,
        prekey_id=None if otk is None else otk.id,
        prekey_public=None if otk is None else otk.public_key,
        kyber_prekey_id=None if kpk is None else kpk.id,
        kyber_prekey_public=None if kpk is None else kpk.public_key,
        kyber_prekey_signature=None if kpk is None else kpk.signature,
    )
