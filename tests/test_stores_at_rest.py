"""A dump of an encrypted database holds none of the secrets.

Three accounts in one database (SQLite file / PostgreSQL database), all with ``key=``, hold a
v4 (PQXDH + SPQR) conversation with skipped message keys, a group (sender keys handed out
through ``encrypt_fanout``), unused one-time, signed and Kyber prekeys (one last-resort) and
inbox plaintexts. The test collects every secret it can know: the identity private keys,
the prekey private keys, the Kyber secret keys, the session secrets of every record the
conversation went through (root keys, chain keys, ratchet private keys, message keys, SPQR
state; parsed out of ``bytes(SessionRecord)`` as in ``test_secrets.py``), the sender-key
chain seeds and signing keys, the inbox plaintexts and the at-rest key itself. Then it scans

* SQLite: the database file, its ``-wal`` and ``-shm`` while the stores are open, and the
  file again after they are closed (checkpointed);
* PostgreSQL: every row of every table (``SELECT *``) and the text of ``pg_dump``,

as raw bytes, and as hex and base64 text. The same run without a key is the control: there
the scan finds the secrets the database currently holds, so the scan can see them.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import textsecure as ts
from pgcluster import PgCluster
from test_secrets import fields, session_secrets
from textsecure.stores import DurableStore, PostgresStore, SQLiteStore

KEY = bytes.fromhex("5f" * 4) + bytes(range(200, 228))
ALICE, BOB, CAROL = ts.Address("alice", 1), ts.Address("bob", 1), ts.Address("carol", 1)
MARKER = b"inbox plaintext 7c1f0e5b2d9a4e83"
TABLES = (
    "schema_version",
    "accounts",
    "sessions",
    "identities",
    "prekeys",
    "signed_prekeys",
    "kyber_prekeys",
    "base_keys",
    "kyber_last_resort_uses",
    "sender_keys",
    "inbox",
)


def _sub(b: bytes, tag: int) -> list[bytes]:
    return [v for t, v in fields(b) if t == tag and isinstance(v, bytes)]


def sender_key_secrets(record: bytes) -> list[bytes]:
    """Chain seeds, signing private keys and message-key seeds of every state of a
    serialized ``SenderKeyRecordStructure``."""
    out: list[bytes] = []
    for state in _sub(record, 1):
        for chain in _sub(state, 2):
            out += _sub(chain, 2)  # seed
        for signing in _sub(state, 3):
            out += _sub(signing, 2)  # private
        for mk in _sub(state, 4):
            out += _sub(mk, 2)  # seed
    return [x for x in out if len(x) >= 16]


class Secrets:
    """What the test knows: ``current`` (must be in a plain database), ``all`` (must be in no
    sealed one)."""

    def __init__(self) -> None:
        self.all: dict[bytes, str] = {}
        self.current: dict[bytes, str] = {}

    def add(self, what: str, secret: bytes, *, current: bool = False) -> None:
        assert len(secret) >= 16, what
        self.all.setdefault(secret, what)
        if current:
            self.current.setdefault(secret, what)

    def sessions(self, store: DurableStore, remote: ts.Address, *, current: bool = False) -> None:
        record = store.session(remote)
        assert record is not None
        for s in session_secrets(bytes(record)):
            self.add(f"session secret of {store.account} with {remote}", s, current=current)

    def sender_keys(self, store: DurableStore, sender: ts.Address, dist: uuid.UUID) -> None:
        record = store.sender_key(sender, dist)
        assert record is not None
        for s in sender_key_secrets(bytes(record)):
            self.add(f"sender-key secret of {store.account} for {sender}", s)


def _needles(secret: bytes) -> list[bytes]:
    """Raw windows of a secret: the whole of a short one; 32-byte windows at the start,
    middle and end of a long one (a Kyber secret key)."""
    if len(secret) <= 64:
        return [secret]
    mid = len(secret) // 2
    return [secret[:32], secret[mid : mid + 32], secret[-32:]]


def _find(blobs: dict[str, bytes], secrets: dict[bytes, str]) -> list[str]:
    """Where any secret appears in ``blobs``: raw, hex (either case) or base64."""
    found = []
    for secret, what in secrets.items():
        for needle in _needles(secret):
            forms = {
                "raw": needle,
                "hex": needle.hex().encode(),
                "HEX": needle.hex().upper().encode(),
                "base64": base64.b64encode(needle)[:-4],  # the aligned part of the encoding
            }
            hit = next(
                (
                    f"{what} ({len(secret)} bytes) as {form} in {name}"
                    for name, blob in blobs.items()
                    for form, pattern in forms.items()
                    if pattern in blob
                ),
                None,
            )
            if hit is not None:
                found.append(hit)
                break
    return found


def _conversation(open_store: Callable[[str], DurableStore], key: bytes | None) -> Secrets:
    """Alice, Bob and Carol talk (1:1 and in a group); returns what the test knows."""
    known = Secrets()
    if key is not None:
        known.add("the at-rest key", key)
    alice, bob, carol = (open_store(n) for n in ("alice", "bob", "carol"))
    for s in (alice, bob, carol):
        known.add(
            f"{s.account}'s identity private key",
            bytes(s.identity_key_pair.private_key),
            current=True,
        )
        known.add(
            f"{s.account}'s identity key pair record", bytes(s.identity_key_pair), current=True
        )

    def prekeys(store: DurableStore, bundle: ts.PreKeyBundle, *, current: bool) -> None:
        who = store.account
        if bundle.prekey_id is not None:
            pk = store.load_prekey(bundle.prekey_id)
            assert pk is not None
            known.add(f"{who}'s prekey private key", bytes(pk.private_key), current=current)
        spk = store.load_signed_prekey(bundle.signed_prekey_id)
        assert spk is not None
        known.add(f"{who}'s signed prekey private key", bytes(spk.private_key), current=True)
        if bundle.kyber_prekey_id is not None:
            kpk = store.load_kyber_prekey(bundle.kyber_prekey_id)
            assert kpk is not None
            known.add(f"{who}'s Kyber secret key", bytes(kpk.key_pair.secret_key), current=current)

    # PQXDH sessions alice -> bob, alice -> carol (SPQR required, the default)
    for store, remote, ids in ((bob, BOB, 1), (carol, CAROL, 10)):
        bundle = store.new_bundle(1, prekey_id=ids, signed_prekey_id=ids, kyber_prekey_id=ids)
        prekeys(store, bundle, current=False)  # consumed by the first message
        ts.SessionCipher(alice, remote).process_bundle(bundle)
    # unused prekeys stay in the store, and a last-resort Kyber prekey
    for store in (bob, carol):
        prekeys(store, store.new_bundle(1, prekey_id=50, signed_prekey_id=51), current=True)
        last_resort = store.new_bundle(
            1, signed_prekey_id=60, kyber_prekey_id=61, one_time=False, kyber_last_resort=True
        )
        prekeys(store, last_resort, current=True)

    to_bob, to_alice = ts.SessionCipher(alice, BOB), ts.SessionCipher(bob, ALICE)
    to_carol, carol_to_alice = ts.SessionCipher(alice, CAROL), ts.SessionCipher(carol, ALICE)
    first = to_bob.encrypt(b"hello bob")
    assert bob.inbox_decrypt(ALICE, first).plaintext == b"hello bob"
    assert carol_to_alice.decrypt(to_carol.encrypt(b"hello carol")) == b"hello carol"
    for turn in range(40):
        burst = [to_bob.encrypt(b"a%d" % (turn * 3 + i)) for i in range(3)]
        for m in burst[::-1] if turn % 3 else burst:  # out of order: skipped keys are kept
            to_alice.decrypt(m)
        to_bob.decrypt(to_alice.encrypt(b"b%d" % turn))
        carol_to_alice.decrypt(to_carol.encrypt(b"c%d" % turn))
        to_carol.decrypt(carol_to_alice.encrypt(b"d%d" % turn))
        for store, remote in ((alice, BOB), (bob, ALICE), (alice, CAROL), (carol, ALICE)):
            known.sessions(store, remote)
    late = to_bob.encrypt(b"in flight")
    to_alice.decrypt(to_bob.encrypt(b"after the one in flight"))  # one skipped key stays
    # inbox plaintexts, pending (sealed in the inbox table)
    for i in range(3):
        item = bob.inbox_decrypt(ALICE, to_bob.encrypt(MARKER + b" %d" % i))
        assert item.plaintext == MARKER + b" %d" % i
        known.add("an inbox plaintext", item.plaintext, current=True)
    assert to_alice.decrypt(late) == b"in flight"
    to_alice.decrypt(to_bob.encrypt(b"keep one skipped key"))
    to_bob.encrypt(b"lost")
    to_alice.decrypt(to_bob.encrypt(b"after a lost one"))
    for store, remote in ((alice, BOB), (bob, ALICE), (alice, CAROL), (carol, ALICE)):
        known.sessions(store, remote)

    # a group: alice's sender key goes to bob and carol through the 1:1 sessions
    dist = uuid.uuid4()
    skdm = ts.GroupCipher(alice, dist).create_distribution(ALICE)
    out = ts.encrypt_fanout(alice, [BOB, CAROL], bytes(skdm))
    for store, remote in ((bob, BOB), (carol, CAROL)):
        message = out[remote]
        assert isinstance(message, ts.SignalMessage | ts.PreKeySignalMessage)
        payload = ts.SessionCipher(store, ALICE).decrypt(message)
        ts.GroupCipher(store, dist).process_distribution(
            ALICE, ts.SenderKeyDistributionMessage.from_bytes(payload)
        )
    bodies = [ts.GroupCipher(alice, dist).encrypt(ALICE, b"g%d" % i) for i in range(12)]
    for store in (bob, carol):
        for body in bodies[::2] + bodies[1:8:2]:  # 9 and 11 stay skipped
            ts.GroupCipher(store, dist).decrypt(ALICE, body)
            known.sender_keys(store, ALICE, dist)
    known.sender_keys(alice, ALICE, dist)
    for store in (alice, bob, carol):
        record = store.sender_key(ALICE, dist)
        assert record is not None
        for secret in sender_key_secrets(bytes(record)):
            known.add(f"{store.account}'s current sender-key secret", secret, current=True)
    for store, remote in ((alice, BOB), (bob, ALICE), (alice, CAROL), (carol, ALICE)):
        known.sessions(store, remote, current=True)
    return known


@pytest.fixture
def stores() -> Iterator[list[DurableStore]]:
    opened: list[DurableStore] = []
    yield opened
    for s in opened:
        s.close()


@pytest.mark.parametrize("key", [KEY, None], ids=["sealed", "plain-control"])
def test_sqlite_file_and_wal_hold_no_secret(
    tmp_path: Path, stores: list[DurableStore], key: bytes | None
) -> None:
    path = tmp_path / "at-rest.db"

    def open_store(account: str) -> DurableStore:
        s = SQLiteStore(path, account=account, key=key)
        stores.append(s)
        return s

    known = _conversation(open_store, key)

    def files() -> dict[str, bytes]:
        return {
            p.name: p.read_bytes()
            for p in sorted(tmp_path.iterdir())
            if p.name.startswith(path.name) and p.is_file()
        }

    while_open = files()
    assert f"{path.name}-wal" in while_open, sorted(while_open)
    for s in stores:
        s.close()
    after_close = files()
    _check(known, {**{f"{k} (open)": v for k, v in while_open.items()}, **after_close}, key)


@pytest.mark.parametrize("key", [KEY, None], ids=["sealed", "plain-control"])
def test_postgres_tables_and_pg_dump_hold_no_secret(
    postgres_cluster: PgCluster, postgres_db: str, stores: list[DurableStore], key: bytes | None
) -> None:
    import psycopg

    def open_store(account: str) -> DurableStore:
        s = PostgresStore(postgres_db, account=account, key=key)
        stores.append(s)
        return s

    known = _conversation(open_store, key)
    blobs: dict[str, bytes] = {}
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        for table in TABLES:
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            assert rows or table in ("base_keys", "kyber_last_resort_uses"), f"{table} is empty"
            blobs[f"table {table}"] = b"\x00".join(
                bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                for row in rows
                for v in row
            )
    dump = subprocess.run(
        [str(postgres_cluster.bindir / "pg_dump"), "--dbname", postgres_db],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    assert b"COPY public.sessions" in dump
    blobs["pg_dump"] = dump
    _check(known, blobs, key)


def _check(known: Secrets, blobs: dict[str, bytes], key: bytes | None) -> None:
    assert len(known.all) > 500 and len(known.current) >= 50, (len(known.all), len(known.current))
    kinds = {what.split(" of ")[0].split("'s ")[-1] for what in known.current.values()}
    for needed in (
        "identity private key",
        "prekey private key",
        "signed prekey private key",
        "Kyber secret key",
        "session secret",
        "current sender-key secret",
    ):
        assert needed in kinds, (needed, kinds)
    if key is None:
        # the control: a plain database holds what it currently stores, and the scan sees it
        missing = [what for s, what in known.current.items() if not _find(blobs, {s: what})]
        assert not missing, f"the scan misses {len(missing)} stored secrets: {missing[:5]}"
        return
    leaks = _find(blobs, known.all)
    assert not leaks, f"{len(leaks)} secrets in the sealed database:\n" + "\n".join(leaks[:20])
    for name, blob in blobs.items():
        assert MARKER not in blob, f"an inbox plaintext in {name}"
