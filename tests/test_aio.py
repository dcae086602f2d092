"""textsecure.aio: the async stores and ciphers against the sync ones.

Every store kind: ``memory`` (a sync ``MemoryStore`` given to the async ciphers), ``sqlite``
(``AsyncSQLiteStore``), ``sqlite-sync`` (a sync ``SQLiteStore`` given to them) and
``postgres`` (``AsyncPostgresStore`` on a fresh database of the session's throwaway cluster).
Tests run their coroutines with ``asyncio.run`` (no pytest-asyncio); they assert outcomes
(plaintexts, typed errors, stored state), never timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import textsecure as ts
from textsecure import aio, errors
from textsecure._native import Operation

T = TypeVar("T")

KINDS = ("memory", "sqlite", "sqlite-sync", "postgres")
NOW = 1_700_000_000_000


class Env:
    """Where a test's stores live: one SQLite file, one PostgreSQL database."""

    def __init__(self, kind: str, tmp_path: Path, dsn: str | None) -> None:
        self.kind = kind
        self.path = tmp_path / "aio.db"
        self.dsn = dsn

    @contextlib.asynccontextmanager
    async def store(
        self, account: str, identity: ts.IdentityKeyPair | None = None, reg: int = 7
    ) -> AsyncIterator[aio.AnyStore]:
        """A store of this kind for ``account`` (closed at the end)."""
        ikp = identity or ts.IdentityKeyPair.generate()
        if self.kind == "memory":
            yield ts.MemoryStore(ikp, reg)
        elif self.kind == "sqlite":
            async with aio.AsyncSQLiteStore(
                self.path, account=account, identity=ikp, registration_id=reg
            ) as s:
                yield s
        elif self.kind == "sqlite-sync":
            with ts.SQLiteStore(
                self.path, account=account, identity=ikp, registration_id=reg
            ) as ss:
                yield ss
        else:
            assert self.dsn is not None
            async with aio.AsyncPostgresStore(
                self.dsn, account=account, identity=ikp, registration_id=reg, pool_size=4
            ) as ps:
                yield ps


@pytest.fixture(params=KINDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    kind = str(request.param)
    dsn = str(request.getfixturevalue("postgres_db")) if kind == "postgres" else None
    return Env(kind, tmp_path, dsn)


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


async def session_bytes(store: aio.AnyStore, address: ts.Address) -> bytes | None:
    """The stored session record of ``address`` as bytes (read off the loop)."""
    if isinstance(store, aio.AsyncDurableStore):
        record = await store.session(address)
    else:
        record = await asyncio.to_thread(store.session, address)
    return None if record is None else bytes(record)


async def new_bundle(store: aio.AnyStore, *, kyber: bool, one_time: bool = True) -> ts.PreKeyBundle:
    if isinstance(store, aio.AsyncDurableStore):
        return await store.new_bundle(
            1, prekey_id=1, signed_prekey_id=2, kyber_prekey_id=3, kyber=kyber, one_time=one_time
        )
    assert isinstance(store, ts.MemoryStore | ts.SQLiteStore)
    return store.new_bundle(
        1, prekey_id=1, signed_prekey_id=2, kyber_prekey_id=3, kyber=kyber, one_time=one_time
    )


BOB = ts.Address("bob", 1)
ALICE = ts.Address("alice", 1)


# -- the module ---------------------------------------------------------------------------


def test_import_is_lazy_about_psycopg() -> None:
    """``import textsecure`` and ``import textsecure.aio`` import neither psycopg nor the pool."""
    code = (
        "import sys, textsecure, textsecure.aio\n"
        "assert 'psycopg' not in sys.modules and 'psycopg_pool' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        aio.AsyncSessionCipher(object(), BOB)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        aio.AsyncSessionCipher(ts.MemoryStore(ts.IdentityKeyPair.generate(), 1), "bob")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgument):
        aio.AsyncPostgresStore(object())  # type: ignore[arg-type]


def test_store_life_cycle(tmp_path: Path) -> None:
    async def main() -> None:
        store = aio.AsyncSQLiteStore(tmp_path / "x.db", account="a")
        with pytest.raises(errors.StoreError, match="not open"):
            _ = store.sync
        async with store:
            assert store.account == "a" and not store.closed
            assert isinstance(store.sync, ts.SQLiteStore)
            ikp = store.identity_key_pair
            rid = store.registration_id
        assert store.closed
        await store.aclose()  # idempotent
        with pytest.raises(errors.StoreError):
            await store.session(BOB)
        async with aio.AsyncSQLiteStore(tmp_path / "x.db", account="a") as again:
            assert bytes(again.identity_key_pair) == bytes(ikp)
            assert again.registration_id == rid
        with pytest.raises(errors.InvalidArgument):
            async with aio.AsyncSQLiteStore(
                tmp_path / "x.db", account="a", identity=ts.IdentityKeyPair.generate()
            ):
                pass

    run(main())


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("kyber", [False, True], ids=["x3dh", "pqxdh"])
def test_round_trip_async_initiates(env: Env, kyber: bool) -> None:
    """The async side starts the session from a sync peer's bundle; both directions."""

    async def main() -> None:
        bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
        bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=2, kyber_prekey_id=3, kyber=kyber)
        async with env.store("alice") as alice:
            to_bob = aio.AsyncSessionCipher(alice, BOB)
            await to_bob.process_bundle(bundle)
            to_alice = ts.SessionCipher(bob, ALICE)
            for i in range(4):
                message = await to_bob.encrypt(b"ping %d" % i)
                assert message.type == (ts.MessageType.PREKEY if i == 0 else ts.MessageType.WHISPER)
                assert to_alice.decrypt(message) == b"ping %d" % i
                reply = to_alice.encrypt(b"pong %d" % i)
                assert await to_bob.decrypt((reply.type, bytes(reply))) == b"pong %d" % i
            record = await session_bytes(alice, BOB)
            assert record is not None
            assert ts.SessionRecord.from_bytes(record).version == (4 if kyber else 3)

    run(main())


@pytest.mark.parametrize("kyber", [False, True], ids=["x3dh", "pqxdh"])
def test_round_trip_sync_initiates(env: Env, kyber: bool) -> None:
    """A sync peer starts the session from the async side's bundle (prekeys consumed)."""

    async def main() -> None:
        bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
        async with env.store("alice") as alice:
            bundle = await new_bundle(alice, kyber=kyber)
            to_alice = ts.SessionCipher(bob, ALICE)
            to_alice.process_bundle(bundle)
            from_bob = aio.AsyncSessionCipher(alice, BOB)
            first = to_alice.encrypt(b"hello")
            assert await from_bob.decrypt(first) == b"hello"
            with pytest.raises(errors.DuplicateMessage):
                await from_bob.decrypt(first)
            assert to_alice.decrypt(await from_bob.encrypt(b"hi")) == b"hi"
            if isinstance(alice, aio.AsyncDurableStore):
                assert await alice.load_prekey(1) is None  # the one-time prekey was used
                assert (await alice.identity(BOB)) == bob.identity_key_pair.public_key

    run(main())


def test_async_store_and_sync_store_share_an_account(tmp_path: Path, postgres_db: str) -> None:
    """``AsyncPostgresStore`` and ``PostgresStore`` on one account: each continues the
    ratchet the other moved (same schema, same locks)."""

    async def main() -> None:
        bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
        bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=2)
        to_alice = ts.SessionCipher(bob, ALICE)
        async with aio.AsyncPostgresStore(postgres_db, account="alice") as alice:
            await aio.AsyncSessionCipher(alice, BOB).process_bundle(bundle)
            with ts.PostgresStore(postgres_db, account="alice") as same:
                sync_cipher = ts.SessionCipher(same, BOB)
                async_cipher = aio.AsyncSessionCipher(alice, BOB)
                for i in range(6):
                    cipher_is_async = i % 2 == 0
                    if cipher_is_async:
                        message = await async_cipher.encrypt(b"m%d" % i)
                    else:
                        message = await asyncio.to_thread(sync_cipher.encrypt, b"m%d" % i)
                    assert to_alice.decrypt(message) == b"m%d" % i
                    reply = to_alice.encrypt(b"r%d" % i)
                    if cipher_is_async:
                        got = await asyncio.to_thread(sync_cipher.decrypt, reply)
                    else:
                        got = await async_cipher.decrypt(reply)
                    assert got == b"r%d" % i

    run(main())


def test_sync_view_from_a_worker_thread(tmp_path: Path, postgres_db: str) -> None:
    """``AsyncPostgresStore.sync`` works from worker threads (sync ciphers, transactions,
    the inbox) and refuses on the event loop's thread."""

    async def main() -> None:
        bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
        async with aio.AsyncPostgresStore(postgres_db, account="alice") as alice:
            with pytest.raises(errors.StoreError, match="event loop"):
                alice.sync.session(BOB)
            bundle = await alice.new_bundle(1, prekey_id=1, signed_prekey_id=2)
            to_alice = ts.SessionCipher(bob, ALICE)
            to_alice.process_bundle(bundle)
            messages = [to_alice.encrypt(b"%d" % i) for i in range(3)]

            def worker() -> list[bytes]:
                cipher = ts.SessionCipher(alice.sync, BOB)
                with alice.sync.transaction():
                    out = [cipher.decrypt(messages[0]), cipher.decrypt(messages[1])]
                return out

            assert await asyncio.to_thread(worker) == [b"0", b"1"]
            item = await alice.inbox_decrypt(BOB, messages[2])
            assert item.plaintext == b"2"
            again = await alice.inbox_decrypt(BOB, messages[2])  # redelivered: stored plaintext
            assert again.plaintext == b"2" and again.hash == item.hash
            assert [i.hash for i in await alice.inbox_pending()] == [item.hash]
            assert await alice.inbox_ack(item.hash)
            with pytest.raises(errors.DuplicateMessage):
                await alice.inbox_decrypt(BOB, messages[2])

    run(main())


# -- groups, sealed sender, fan-out -------------------------------------------------------


def test_groups(env: Env) -> None:
    async def main() -> None:
        bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
        async with env.store("alice") as alice:
            group = aio.AsyncGroupCipher(alice, uuid.uuid4())
            distribution = await group.create_distribution(ALICE)
            theirs = ts.GroupCipher(bob, group.distribution_id)
            theirs.process_distribution(ALICE, distribution)
            for i in range(3):
                sent = await group.encrypt(ALICE, b"g%d" % i)
                assert theirs.decrypt(ALICE, sent) == b"g%d" % i
            await group.process_distribution(BOB, theirs.create_distribution(BOB))
            assert await group.decrypt(BOB, theirs.encrypt(BOB, b"back")) == b"back"
            with pytest.raises(errors.DuplicateMessage):
                message = theirs.encrypt(BOB, b"once")
                await group.decrypt(BOB, message)
                await group.decrypt(BOB, message)

            legacy = aio.AsyncLegacyGroupCipher(alice, "group-1")
            theirs_legacy = ts.LegacyGroupCipher(bob, "group-1")
            theirs_legacy.process_distribution(ALICE, await legacy.create_distribution(ALICE))
            assert theirs_legacy.decrypt(ALICE, await legacy.encrypt(ALICE, b"old")) == b"old"
            await legacy.process_distribution(BOB, theirs_legacy.create_distribution(BOB))
            assert await legacy.decrypt(BOB, theirs_legacy.encrypt(BOB, b"x")) == b"x"

    run(main())


def test_sealed_sender_and_fanout(env: Env) -> None:
    async def main() -> None:
        root = ts.PrivateKey.generate()
        server_key = ts.PrivateKey.generate()
        server_cert = ts.ServerCertificate.create(1, server_key.public_key, root)

        def cert(name: str, key: ts.PublicKey) -> ts.SenderCertificate:
            return ts.SenderCertificate.create(
                sender_uuid=name,
                sender_device_id=1,
                identity_key=key,
                expiration=NOW + 3_600_000,
                server_certificate=server_cert,
                server_key=server_key,
            )

        bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
        async with env.store("alice") as alice:
            bundle = await new_bundle(alice, kyber=True)
            ts.SessionCipher(bob, ALICE).process_bundle(bundle)
            sealed_bob = ts.SealedSessionCipher(bob)
            sealed_alice = aio.AsyncSealedSessionCipher(alice)
            data = sealed_bob.encrypt(
                ALICE, b"sealed", cert("bob", bob.identity_key_pair.public_key)
            )
            result = await sealed_alice.decrypt(data, trust_root=root.public_key, timestamp=NOW)
            assert result.plaintext == b"sealed" and result.sender == BOB
            ikp = alice.identity_key_pair
            back = await sealed_alice.encrypt(BOB, b"reply", cert("alice", ikp.public_key))
            opened = sealed_bob.decrypt(back, trust_root=root.public_key, timestamp=NOW)
            assert opened.plaintext == b"reply"
            usmc = await sealed_alice.decrypt_to_usmc(
                sealed_bob.encrypt(ALICE, b"u", cert("bob", bob.identity_key_pair.public_key))
            )
            assert usmc.sender == BOB

            out = await aio.encrypt_fanout(alice, [BOB, ts.Address("nobody", 1)], b"all")
            assert isinstance(out[ts.Address("nobody", 1)], errors.NoSession)
            message = out[BOB]
            assert not isinstance(message, errors.TextSecureError)
            assert ts.SessionCipher(bob, ALICE).decrypt(message) == b"all"

    run(main())


# -- errors leave state unchanged ---------------------------------------------------------


def test_errors_are_typed_and_change_nothing(env: Env) -> None:
    async def main() -> None:
        bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
        async with env.store("alice") as alice:
            bundle = await new_bundle(alice, kyber=True)
            to_alice = ts.SessionCipher(bob, ALICE)
            to_alice.process_bundle(bundle)
            cipher = aio.AsyncSessionCipher(alice, BOB)
            assert await cipher.decrypt(to_alice.encrypt(b"first")) == b"first"
            to_alice.decrypt(await cipher.encrypt(b"ack"))
            before = await session_bytes(alice, BOB)

            good = to_alice.encrypt(b"second")
            body = bytearray(bytes(good))
            body[-3] ^= 1  # the MAC
            with pytest.raises(errors.InvalidMessage):
                await cipher.decrypt((good.type, bytes(body)))
            with pytest.raises(errors.InvalidMessage):
                await cipher.decrypt((2, b"\x33garbage"))
            with pytest.raises(errors.NoSession):
                await aio.AsyncSessionCipher(alice, ts.Address("carol", 1)).encrypt(b"x")
            assert await session_bytes(alice, BOB) == before
            assert await cipher.decrypt(good) == b"second"
            with pytest.raises(errors.DuplicateMessage):
                await cipher.decrypt(good)

            # a changed identity: refused until trusted, nothing stored meanwhile
            mallory = ts.MemoryStore(ts.IdentityKeyPair.generate(), 3)
            other = await new_bundle(alice, kyber=False, one_time=False)
            impostor = ts.SessionCipher(mallory, ALICE)
            impostor.process_bundle(other)
            before = await session_bytes(alice, BOB)
            with pytest.raises(errors.UntrustedIdentity) as info:
                await cipher.decrypt(impostor.encrypt(b"evil"))
            assert info.value.address == BOB
            assert await session_bytes(alice, BOB) == before

    run(main())


# -- batches ------------------------------------------------------------------------------


@pytest.mark.parametrize("native", [True, False], ids=["native-batches", "fallback"])
def test_batches(env: Env, native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """decrypt_many / encrypt_many: results in order, errors in place, sessions in order;
    with textsecure's batch calls, and with the fallback (one unit of work per message)."""
    if native and not hasattr(ts, "decrypt_many"):
        pytest.skip("textsecure.decrypt_many is not in this build")
    if not native:
        monkeypatch.delattr(ts, "decrypt_many", raising=False)
        monkeypatch.delattr(ts, "encrypt_many", raising=False)

    async def main() -> None:
        async with env.store("alice") as alice:
            if isinstance(alice, aio.AsyncPostgresStore):
                assert isinstance(alice.sync, ts.PostgresStore)  # its _batch_limit too
            bundle = await new_bundle(alice, kyber=False, one_time=False)
            peers = {
                ts.Address(f"peer{i}", 1): ts.MemoryStore(ts.IdentityKeyPair.generate(), 9)
                for i in range(5)
            }
            ciphers = {a: ts.SessionCipher(s, ALICE) for a, s in peers.items()}
            for c in ciphers.values():
                c.process_bundle(bundle)
            items: list[tuple[ts.Address, Any]] = []
            expected: list[bytes | type[errors.TextSecureError]] = []
            for round_ in range(3):
                for a, c in ciphers.items():
                    pt = f"{a.name}/{round_}".encode()
                    items.append((a, c.encrypt(pt)))
                    expected.append(pt)
            items.insert(4, (ts.Address("peer1", 1), (2, b"\x33bad")))
            expected.insert(4, errors.InvalidMessage)
            items.append(items[0])  # a duplicate
            expected.append(errors.DuplicateMessage)
            out = await aio.decrypt_many(alice, items)
            assert len(out) == len(expected)
            for got, want in zip(out, expected, strict=True):
                if isinstance(want, bytes):
                    assert got == want
                else:
                    assert isinstance(got, want)

            replies = await aio.encrypt_many(
                alice, [(a, b"r1") for a in ciphers] + [(ts.Address("nobody", 1), b"x")]
            )
            assert isinstance(replies[-1], errors.NoSession)
            for c, reply in zip(ciphers.values(), replies, strict=False):
                assert not isinstance(reply, errors.TextSecureError)
                assert c.decrypt(reply) == b"r1"

    run(main())


# -- concurrency --------------------------------------------------------------------------


def _peer_sessions(
    bundle: ts.PreKeyBundle, n: int
) -> tuple[ts.MemoryStore, list[tuple[ts.Address, ts.SessionCipher]]]:
    """One sync peer store talking to ``n`` sessions of ours (as ``peer<i>`` for us)."""
    peers = ts.MemoryStore(ts.IdentityKeyPair.generate(), 9)
    out = []
    for i in range(n):
        cipher = ts.SessionCipher(peers, ts.Address(f"alice{i}", 1))
        cipher.process_bundle(bundle)
        out.append((ts.Address(f"peer{i}", 1), cipher))
    return peers, out


@pytest.mark.parametrize("env", ["sqlite", "postgres"], indirect=True)
def test_many_coroutines_many_sessions(env: Env) -> None:
    """Many coroutines on many sessions at once through one store (on PostgreSQL one
    pool): every message decrypts once, replies continue every ratchet, and concurrent
    decrypts of one message succeed exactly once."""

    async def main() -> None:
        async with env.store("alice") as alice:
            bundle = await new_bundle(alice, kyber=False, one_time=False)
            _, sessions = _peer_sessions(bundle, 24)
            per_session = 5
            messages = [
                (
                    address,
                    [
                        peer.encrypt(b"%s/%d" % (address.name.encode(), k))
                        for k in range(per_session)
                    ],
                )
                for address, peer in sessions
            ]

            async def conversation(address: ts.Address, batch: list[Any]) -> list[bytes]:
                cipher = aio.AsyncSessionCipher(alice, address)
                order = list(range(len(batch)))
                random.shuffle(order[1:])  # the PreKey message first, the rest in any order
                got = {}
                for k in order:
                    got[k] = await cipher.decrypt(batch[k])
                return [got[k] for k in range(len(batch))]

            results = await asyncio.gather(*(conversation(a, b) for a, b in messages))
            for (address, _), plaintexts in zip(messages, results, strict=True):
                assert plaintexts == [
                    b"%s/%d" % (address.name.encode(), k) for k in range(per_session)
                ]

            # replies from every session at once, then the peers answer: no ratchet forked
            replies = await asyncio.gather(
                *(aio.AsyncSessionCipher(alice, a).encrypt(b"reply") for a, _ in sessions)
            )
            for (_, peer), reply in zip(sessions, replies, strict=True):
                assert peer.decrypt(reply) == b"reply"

            # the same message decrypted by many coroutines at once: exactly one succeeds
            address, peer = sessions[0]
            message = peer.encrypt(b"once")
            outcomes = await asyncio.gather(
                *(aio.AsyncSessionCipher(alice, address).decrypt(message) for _ in range(8)),
                return_exceptions=True,
            )
            assert outcomes.count(b"once") == 1
            assert all(isinstance(o, errors.DuplicateMessage) for o in outcomes if o != b"once")
            assert (
                await aio.AsyncSessionCipher(alice, address).decrypt(peer.encrypt(b"next"))
                == b"next"
            )

    run(main())


@pytest.mark.parametrize("env", ["sqlite", "postgres", "memory"], indirect=True)
def test_cancellation_leaves_the_store_consistent(env: Env) -> None:
    """Coroutines cancelled at every stage of a decrypt: each message was then either
    applied (a retry is a duplicate) or not at all (a retry decrypts it); the ratchet goes
    on in both directions; the pool has every connection back."""

    async def main() -> None:
        async with env.store("alice") as alice:
            bundle = await new_bundle(alice, kyber=False, one_time=False)
            _, sessions = _peer_sessions(bundle, 4)
            rng = random.Random(7)
            applied = retried = 0
            for round_ in range(12):
                tasks = []
                sent = []
                for address, peer in sessions:
                    message = peer.encrypt(b"%d" % round_)
                    sent.append((address, message))
                    tasks.append(
                        asyncio.ensure_future(
                            aio.AsyncSessionCipher(alice, address).decrypt(message)
                        )
                    )
                for _ in range(rng.randrange(0, 6)):
                    await asyncio.sleep(0)
                if rng.random() < 0.5:
                    await asyncio.sleep(rng.random() * 0.003)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await asyncio.sleep(0.01)  # worker threads still running finish their unit
                for address, message in sent:
                    try:
                        assert (
                            await aio.AsyncSessionCipher(alice, address).decrypt(message)
                            == b"%d" % round_
                        )
                        retried += 1
                    except errors.DuplicateMessage:
                        applied += 1
            assert applied + retried == 12 * len(sessions)
            print(f"cancellation: {applied} applied, {retried} not applied")
            for address, peer in sessions:
                reply = await aio.AsyncSessionCipher(alice, address).encrypt(b"still here")
                assert peer.decrypt(reply) == b"still here"
                assert (
                    await aio.AsyncSessionCipher(alice, address).decrypt(peer.encrypt(b"ok"))
                    == b"ok"
                )
            if isinstance(alice, aio.AsyncPostgresStore):
                stats = alice.pool.get_stats()
                assert stats.get("pool_available", 0) == stats.get("pool_size")

    run(main())


@pytest.mark.parametrize("env", ["memory", "sqlite", "postgres"], indirect=True)
def test_heartbeat_runs_while_sessions_decrypt(env: Env) -> None:
    """A coroutine sleeping 1 ms in a loop keeps running while N sessions are decrypted (the
    loop is never blocked for the whole batch). Its worst delay is measured, not asserted
    (benches/aio_heartbeat.py prints it)."""

    async def main() -> None:
        async with env.store("alice") as alice:
            bundle = await new_bundle(alice, kyber=False, one_time=False)
            _, sessions = _peer_sessions(bundle, 40)
            items = [(address, peer.encrypt(b"hb")) for address, peer in sessions]
            ticks = 0
            worst = 0.0
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()

            async def heartbeat() -> None:
                nonlocal ticks, worst
                while not stop.is_set():
                    start = loop.time()
                    await asyncio.sleep(0.001)
                    worst = max(worst, loop.time() - start - 0.001)
                    ticks += 1

            beat = asyncio.create_task(heartbeat())
            await asyncio.sleep(0)
            decrypted: list[bytes | errors.TextSecureError] = list(
                await asyncio.gather(
                    *(aio.AsyncSessionCipher(alice, a).decrypt(m) for a, m in items)
                )
            )
            batch = [(address, peer.encrypt(b"hb2")) for address, peer in sessions]
            decrypted += await aio.decrypt_many(alice, batch)
            stop.set()
            await beat
            assert decrypted == [b"hb"] * len(items) + [b"hb2"] * len(batch)
            assert ticks > 0 and worst >= 0.0

    run(main())


def test_plans_run_off_the_event_loop(postgres_db: str) -> None:
    """On AsyncPostgresStore every plan runs on a plan thread, never the loop's."""

    async def main() -> None:
        threads: set[str] = set()
        async with aio.AsyncPostgresStore(postgres_db, account="alice", plan_threads=2) as alice:
            bundle = await alice.new_bundle(1, prekey_id=1, signed_prekey_id=2)
            _, sessions = _peer_sessions(bundle, 1)
            address, peer = sessions[0]

            class Spy:
                def __init__(self, op: Any) -> None:
                    self.op = op

                def needs(self) -> Any:
                    return self.op.needs()

                def plan(self, snapshot: Any) -> Any:
                    threads.add(threading.current_thread().name)
                    return self.op.plan(snapshot)

            op = Operation.decrypt(address, peer.encrypt(b"spy"))
            assert await alice._execute_async(Spy(op)) == b"spy"  # type: ignore[arg-type]
        assert threads and all(name.startswith("textsecure-plan") for name in threads)

    run(main())


@pytest.mark.parametrize("env", ["sqlite", "postgres"], indirect=True)
def test_store_methods(env: Env) -> None:
    """The record methods and the prekey lifecycle as coroutines (the async stores)."""

    async def main() -> None:
        async with env.store("alice") as alice:
            assert isinstance(alice, aio.AsyncDurableStore)
            upload = await alice.refill_prekeys(server_count=0, batch=5)
            assert upload is not None
            await alice.confirm_upload(upload)
            rotated = await alice.rotate_signed_prekeys()
            assert rotated is not None
            await alice.confirm_upload(rotated)
            counts = await alice.prekey_counts()
            assert counts is not None
            bundle = await alice.current_bundle(1)
            bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
            to_alice = ts.SessionCipher(bob, ALICE)
            to_alice.process_bundle(bundle)
            assert await aio.AsyncSessionCipher(alice, BOB).decrypt(to_alice.encrypt(b"x")) == b"x"
            assert await alice.session_addresses() == [BOB]
            record = await alice.session(BOB)
            assert record is not None
            await alice.remove_session(BOB)
            assert await alice.session(BOB) is None
            await alice.save_session(BOB, record)
            assert await alice.session(BOB) is not None
            await alice.trust(BOB, bob.identity_key_pair.public_key)
            assert await alice.identity(BOB) == bob.identity_key_pair.public_key
            record_pk = ts.PreKeyRecord.generate(77)
            await alice.save_prekey(record_pk)
            loaded = await alice.load_prekey(77)
            assert loaded is not None and bytes(loaded) == bytes(record_pk)
            await alice.remove_prekey(77)
            assert await alice.load_prekey(77) is None
            dist = uuid.uuid4()
            assert await alice.sender_key(BOB, dist) is None
            await alice.rotate_key(bytes(32))
            assert await alice.session(BOB) is not None

    run(main())
