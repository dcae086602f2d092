"""Heartbeat of the event loop while textsecure.aio decrypts many sessions.

N sessions (X3DH, session version 3) are set up in memory: one peer store talks to N
addresses of ours, each session answered once, so every measured message is a SignalMessage.
Our side's session records are then copied into each store under test (MemoryStore,
AsyncSQLiteStore, and AsyncPostgresStore when ``TEXTSECURE_AIO_PG_DSN`` names a database),
and one message per session is decrypted through the async API: per message
(``AsyncSessionCipher.decrypt``, at most ``--concurrency`` in flight) and in batches
(``aio.decrypt_many``, ``--batch`` messages per call, ``--batches-in-flight`` calls at once).

Meanwhile a coroutine sleeps 1 ms in a loop and records how late each wake-up is: its worst
and 99th-percentile delay say how long the event loop was ever kept from running other
coroutines. Printed per store and mode, with the throughput (messages per second, wall
clock). Every plaintext is checked.

    .venv/bin/python benches/aio_heartbeat.py                 # 10,000 sessions
    .venv/bin/python benches/aio_heartbeat.py --sessions 500  # quick
    TEXTSECURE_AIO_PG_DSN="host=... dbname=..." .venv/bin/python benches/aio_heartbeat.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import textsecure as ts
from textsecure import aio, errors

PAYLOAD = b"x" * 120
T = TypeVar("T")


class Fixture:
    """N established sessions: our records, and one SignalMessage from each peer."""

    def __init__(self, n: int) -> None:
        self.identity = ts.IdentityKeyPair.generate()
        ours = ts.MemoryStore(self.identity, 1)
        bundle = ours.new_bundle(1, signed_prekey_id=1, one_time=False, kyber=False)
        peers = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
        self.addresses: list[ts.Address] = []
        self.messages: list[ts.SignalMessage | ts.PreKeySignalMessage] = []
        for i in range(n):
            theirs = ts.SessionCipher(peers, ts.Address(f"us-{i}", 1))
            theirs.process_bundle(bundle)
            address = ts.Address(f"peer-{i}", 1)
            mine = ts.SessionCipher(ours, address)
            mine.decrypt(theirs.encrypt(b"hello"))
            theirs.decrypt(mine.encrypt(b"hi"))
            self.addresses.append(address)
            self.messages.append(theirs.encrypt(PAYLOAD))
        self.records = [ours.session(a) for a in self.addresses]
        self.peer_key = peers.identity_key_pair.public_key

    def fill(self, store: ts.MemoryStore | ts.stores.DurableStore) -> None:
        """Copies our side into ``store`` (one transaction on a durable store)."""

        def copy() -> None:
            for address, record in zip(self.addresses, self.records, strict=True):
                assert record is not None
                store.trust(address, self.peer_key)
                store.save_session(address, record)

        if isinstance(store, ts.MemoryStore):
            copy()
        else:
            with store.transaction():
                copy()


class Heartbeat:
    """A coroutine sleeping 1 ms in a loop; ``delays`` are how late each wake-up was."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            start = loop.time()
            await asyncio.sleep(0.001)
            self.delays.append(max(0.0, loop.time() - start - 0.001))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    def summary(self) -> str:
        if not self.delays:
            return "no heartbeat"
        d = sorted(self.delays)
        p99 = d[min(len(d) - 1, int(len(d) * 0.99))]
        return (
            f"heartbeat worst {d[-1] * 1000:7.2f} ms  p99 {p99 * 1000:6.2f} ms  "
            f"median {statistics.median(d) * 1000:5.2f} ms  ({len(d)} beats)"
        )


async def workers(n: int, jobs: list[T], work: Callable[[T], Awaitable[list[Any]]]) -> list[Any]:
    """``n`` worker coroutines taking ``jobs`` in turn (what a server's consumers do);
    the results in the jobs' order."""
    results: list[list[Any]] = [[] for _ in jobs]
    queue = iter(enumerate(jobs))

    async def worker() -> None:
        for i, job in queue:
            results[i] = await work(job)

    await asyncio.gather(*(worker() for _ in range(n)))
    return [x for r in results for x in r]


async def per_message(store: aio.AnyStore, fx: Fixture, concurrency: int) -> list[Any]:
    async def one(item: tuple[ts.Address, Any]) -> list[Any]:
        return [await aio.AsyncSessionCipher(store, item[0]).decrypt(item[1])]

    return await workers(concurrency, list(zip(fx.addresses, fx.messages, strict=True)), one)


async def batched(store: aio.AnyStore, fx: Fixture, batch: int, in_flight: int) -> list[Any]:
    items = list(zip(fx.addresses, fx.messages, strict=True))
    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]

    async def one(chunk: list[tuple[ts.Address, Any]]) -> list[bytes | errors.TextSecureError]:
        return await aio.decrypt_many(store, chunk)

    return await workers(in_flight, chunks, one)


async def measure(
    label: str,
    fx: Fixture,
    make: Callable[[], Awaitable[tuple[aio.AnyStore, Callable[[], Awaitable[None]]]]],
    args: argparse.Namespace,
) -> None:
    for mode in ("per message", "batches"):
        store, close = await make()
        try:
            beat = Heartbeat()
            beat.start()
            await asyncio.sleep(0.05)  # a few idle beats first
            start = time.perf_counter()
            if mode == "per message":
                out = await per_message(store, fx, args.concurrency)
            else:
                out = await batched(store, fx, args.batch, args.batches_in_flight)
            elapsed = time.perf_counter() - start
            await beat.stop()
        finally:
            await close()
        bad = sum(1 for x in out if x != PAYLOAD)
        if bad:
            raise SystemExit(f"{label} / {mode}: {bad} messages did not decrypt")
        rate = len(out) / elapsed
        print(f"{label:<22} {mode:<12} {rate:8.0f} msg/s  {beat.summary()}", flush=True)


async def main(args: argparse.Namespace) -> None:
    print(f"setting up {args.sessions} sessions (X3DH, v3) ...", flush=True)
    t = time.perf_counter()
    fx = Fixture(args.sessions)
    print(f"  {time.perf_counter() - t:.1f} s", flush=True)
    if hasattr(ts, "decrypt_many"):
        print("batches: textsecure.decrypt_many (one unit of work per batch)")
    else:
        print("batches: no textsecure.decrypt_many in this build (one unit per message)")
    idle = Heartbeat()
    idle.start()
    await asyncio.sleep(0.5)
    await idle.stop()
    print(f"{'idle loop':<22} {'':<12} {'':>14}  {idle.summary()}", flush=True)
    stores = args.stores.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="textsecure-aio-bench-"))

    if "memory" in stores:

        async def memory() -> tuple[aio.AnyStore, Callable[[], Awaitable[None]]]:
            store = ts.MemoryStore(fx.identity, 1)
            fx.fill(store)

            async def close() -> None:
                return None

            return store, close

        await measure("MemoryStore", fx, memory, args)

    if "sqlite" in stores:

        async def sqlite() -> tuple[aio.AnyStore, Callable[[], Awaitable[None]]]:
            path = tmp / f"{uuid.uuid4()}.db"
            with ts.SQLiteStore(path, account="bench", identity=fx.identity) as sync:
                fx.fill(sync)
            store = await aio.AsyncSQLiteStore(path, account="bench").open()
            return store, store.aclose

        await measure("AsyncSQLiteStore", fx, sqlite, args)

    dsn = os.environ.get("TEXTSECURE_AIO_PG_DSN")
    if "postgres" in stores and dsn:

        async def postgres() -> tuple[aio.AnyStore, Callable[[], Awaitable[None]]]:
            account = f"bench-{uuid.uuid4()}"
            with ts.PostgresStore(dsn, account=account, identity=fx.identity) as sync:
                await asyncio.to_thread(fx.fill, sync)
            store = aio.AsyncPostgresStore(dsn, account=account, pool_size=args.pool_size)
            await store.open()

            async def close() -> None:
                await store.aclose()
                await asyncio.to_thread(ts.PostgresStore.delete_account, dsn, account)

            return store, close

        await measure("AsyncPostgresStore", fx, postgres, args)
    elif "postgres" in stores:
        print("AsyncPostgresStore: skipped (set TEXTSECURE_AIO_PG_DSN to a database)")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sessions", type=int, default=10_000)
    p.add_argument("--stores", default="memory,sqlite,postgres")
    p.add_argument("--concurrency", type=int, default=64, help="messages in flight (per message)")
    p.add_argument("--batch", type=int, default=256, help="messages per decrypt_many call")
    p.add_argument("--batches-in-flight", type=int, default=4)
    p.add_argument("--pool-size", type=int, default=8, help="AsyncPostgresStore connections")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
