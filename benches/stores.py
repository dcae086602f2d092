"""Messages per second through the stores, beside the floor of the same SQL without crypto.

    .venv/bin/python benches/stores.py            # full run; writes docs/benchmarks-stores.md
    .venv/bin/python benches/stores.py --quick    # small sizes, to check the code (no file)

For MemoryStore, SQLiteStore and PostgresStore, session versions 3 (X3DH) and 4 (PQXDH + SPQR),
encrypt and decrypt of 100-byte messages in one session (in chain), one message per
transaction and in transactions of 100 and 1,000 (``with store.transaction():`` around the
batch); PostgreSQL also with 1, 2 and 4 worker processes, each with its own sessions (an
account of its own), all on one database.

The *floor* beside each figure is the same reads and writes of the same rows through the same
driver without any crypto and without the store's code: in the same transaction pattern, per
message ``SELECT record, version`` of the session row and ``SELECT key`` of the identity row
(one pipeline on PostgreSQL, as the store sends them), then ``UPDATE ... SET record = <the
bytes read>, version = version + 1 WHERE ... AND version = <read>``, on a copy of the real
session row (its real size). Store path and floor runs alternate (A, B, A, B, ...: the
machine's speed drifts); the table gives the medians and the median of the per-pair ratios.
``crypto`` is MemoryStore's rate (the same operation with no I/O); ``bound`` is what the
store path would reach if it added nothing to crypto + floor: 1 / (1/crypto + 1/floor).

Every run happens in worker processes (spawned once), so the parent's imports and the
measurement never share a process. PostgreSQL is a throwaway cluster (tests/pgcluster.py:
Unix socket, fsync off, synchronous_commit off) unless ``--pg-dsn`` names a database.
"""

# ruff: noqa: B023  (each closure runs inside the loop iteration that defines it)
from __future__ import annotations

import argparse
import cProfile
import datetime
import multiprocessing
import multiprocessing.connection
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import textsecure as ts

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = b"\x42" * 100
PEER = "peer.1"

# -- one side of a session and its floor (run inside a worker process) ----------------------


class Floor:
    """The store path's reads and writes of one session, through the bare driver."""

    SELECT_SESSION = (
        "SELECT record, version FROM floor_sessions WHERE account = {p} AND address = {p}"
    )
    SELECT_IDENTITY = "SELECT key FROM floor_identities WHERE account = {p} AND address = {p}"
    UPDATE_SESSION = (
        "UPDATE floor_sessions SET record = {p}, version = version + 1 "
        "WHERE account = {p} AND address = {p} AND version = {p}"
    )

    def __init__(self, kind: str, target: str, account: str) -> None:
        self.kind = kind
        self.account = account
        self.conn: Any
        blob = "BLOB" if kind == "sqlite" else "BYTEA"
        if kind == "sqlite":
            self.conn = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=30
            )
            # the settings SQLiteEngine gives its connection (WAL is the database's)
            self.conn.execute("PRAGMA busy_timeout = 30000")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            p = "?"
        else:
            import psycopg

            self.conn = psycopg.connect(target, autocommit=True)
            p = "%s"
        self.sql = {
            name: getattr(self, name).format(p=p)
            for name in ("SELECT_SESSION", "SELECT_IDENTITY", "UPDATE_SESSION", "SELECT_PAIR")
        }
        self.begin = "BEGIN IMMEDIATE" if kind == "sqlite" else "BEGIN"
        for ddl in (
            "CREATE TABLE IF NOT EXISTS floor_sessions (account TEXT NOT NULL, "
            f"address TEXT NOT NULL, version BIGINT NOT NULL, record {blob}, "
            "PRIMARY KEY (account, address))",
            "CREATE TABLE IF NOT EXISTS floor_identities (account TEXT NOT NULL, "
            f"address TEXT NOT NULL, key {blob} NOT NULL, PRIMARY KEY (account, address))",
        ):
            self._retry(ddl)

    def _retry(self, sql: str) -> None:
        # concurrent CREATE TABLE IF NOT EXISTS can race on PostgreSQL's catalog
        for attempt in range(20):
            try:
                self.conn.execute(sql)
                return
            except Exception:
                if attempt == 19:
                    raise
                time.sleep(0.05)

    def copy_row(self, record: bytes, identity: bytes) -> None:
        """Puts the real session row (and the identity key) into the floor tables."""
        p = "?" if self.kind == "sqlite" else "%s"
        for table, col, value in (
            ("floor_sessions", "record", record),
            ("floor_identities", "key", identity),
        ):
            self.conn.execute(
                f"DELETE FROM {table} WHERE account = {p} AND address = {p}", (self.account, PEER)
            )
            if table == "floor_sessions":
                self.conn.execute(
                    f"INSERT INTO {table} (account, address, version, {col}) "
                    f"VALUES ({p}, {p}, 1, {p})",
                    (self.account, PEER, value),
                )
            else:
                self.conn.execute(
                    f"INSERT INTO {table} (account, address, {col}) VALUES ({p}, {p}, {p})",
                    (self.account, PEER, value),
                )

    #: the store's read of the common shape (one session, one identity): one SELECT
    SELECT_PAIR = (
        "SELECT s.record, s.version, i.key FROM (SELECT 1) AS one "
        "LEFT JOIN floor_sessions AS s ON s.account = {p} AND s.address = {p} "
        "LEFT JOIN floor_identities AS i ON i.account = {p} AND i.address = {p}"
    )

    def _one(self, extras: bool, depth: int) -> None:
        conn, sql, key = self.conn, self.sql, (self.account, PEER)
        if extras:
            self._store_sql(depth)
            return
        if self.kind == "postgres":
            with conn.pipeline():
                c1 = conn.execute(sql["SELECT_SESSION"], key)
                c2 = conn.execute(sql["SELECT_IDENTITY"], key)
            row, ident = c1.fetchone(), c2.fetchone()
        else:
            row = conn.execute(sql["SELECT_SESSION"], key).fetchone()
            ident = conn.execute(sql["SELECT_IDENTITY"], key).fetchone()
        assert row is not None and ident is not None
        cur = conn.execute(sql["UPDATE_SESSION"], (bytes(row[0]), *key, row[1]))
        if cur.rowcount != 1:
            raise RuntimeError("floor: lost the version race")

    def _store_sql(self, depth: int) -> None:
        """The statements the store sends for one message of the common shape, in its round
        trips: SQLite one SELECT (LEFT JOINs of session and identity) and the UPDATE (no
        savepoint: a single write undoes itself when it fails); PostgreSQL one pipeline of
        SAVEPOINT (in a transaction), the advisory lock and the SELECT, then one of the
        UPDATE and RELEASE."""
        conn, sql, key = self.conn, self.sql, (self.account, PEER)
        pair = (self.account, PEER, self.account, PEER)
        if self.kind == "postgres":
            with conn.pipeline():
                if depth:
                    conn.execute("SAVEPOINT textsecure_1")
                conn.execute(
                    "SELECT pg_advisory_xact_lock("
                    "hashtextextended(%s::text || '/' || %s::text, 0))",
                    (self.account, "session/" + PEER),
                )
                c = conn.execute(sql["SELECT_PAIR"], pair)
            row = c.fetchone()
            assert row is not None and row[2] is not None
            with conn.pipeline():
                cur = conn.execute(sql["UPDATE_SESSION"], (bytes(row[0]), *key, row[1]))
                if depth:
                    conn.execute("RELEASE SAVEPOINT textsecure_1")
        else:
            row = conn.execute(sql["SELECT_PAIR"], pair).fetchone()
            assert row is not None and row[2] is not None
            cur = conn.execute(sql["UPDATE_SESSION"], (bytes(row[0]), *key, row[1]))
        if cur.rowcount != 1:
            raise RuntimeError("floor: lost the version race")

    def run(self, n: int, batch: int, extras: bool = False) -> None:
        """``n`` messages' worth of reads and writes, ``batch`` per transaction. ``extras``:
        the store's own statements instead (``_store_sql``)."""
        conn = self.conn
        for start in range(0, n, batch):
            conn.execute(self.begin)
            for _ in range(min(batch, n - start)):
                self._one(extras, 1 if batch > 1 else 0)
            conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class Side:
    """The measured party (``store``, of ``kind``) with one session to a MemoryStore peer."""

    def __init__(self, kind: str, target: str, account: str, version: int) -> None:
        self.kind = kind
        self.account = account
        identity = ts.IdentityKeyPair.generate()
        self.store: Any
        if kind == "memory":
            self.store = ts.MemoryStore(identity, 1)
        elif kind == "sqlite":
            self.store = ts.SQLiteStore(target, account=account, identity=identity)
        else:
            self.store = ts.PostgresStore(target, account=account, identity=identity)
        self.peer = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
        name, _, device = PEER.rpartition(".")
        self.cipher = ts.SessionCipher(self.store, ts.Address(name, int(device)))
        self.peer_cipher = ts.SessionCipher(self.peer, ts.Address(account, 1))
        bundle = self.peer.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=version == 4)
        self.cipher.process_bundle(bundle)
        self.peer_cipher.decrypt(self.cipher.encrypt(b"hello"))
        self.cipher.decrypt(self.peer_cipher.encrypt(b"hello"))
        record = self.store.session(ts.Address(name, int(device)))
        assert record is not None and record.version == version
        self.floor = Floor(kind, target, account) if kind != "memory" else None
        self._pending: list[Any] = []

    def row(self) -> tuple[bytes, bytes]:
        """The stored session row's bytes and the identity key, as the store holds them."""
        engine = self.store._engine  # the bench reads the real row to copy its size
        with engine.connection() as conn:
            r = engine.execute(
                conn,
                "SELECT record FROM sessions WHERE account = $1 AND address = $2",
                (self.account, PEER),
            ).one()
            i = engine.execute(
                conn,
                "SELECT key FROM identities WHERE account = $1 AND address = $2",
                (self.account, PEER),
            ).one()
        assert r is not None and i is not None
        return bytes(r[0]), bytes(i[0])

    def prepare(self, what: str, op: str, n: int) -> int:
        """Untimed: messages to decrypt; a fresh copy of the real row for the floor. Returns
        the session row's size in bytes (0 for memory)."""
        self._pending = []
        if what == "store" and op == "decrypt":
            self._pending = [self.peer_cipher.encrypt(PAYLOAD) for _ in range(n)]
        if self.floor is None:
            return 0
        record, identity = self.row()
        if what.startswith("floor"):
            self.floor.copy_row(record, identity)
        return len(record)

    def run(self, what: str, op: str, n: int, batch: int) -> None:
        if what == "floor":
            assert self.floor is not None
            self.floor.run(n, batch)
            return
        if what == "floor+extras":
            assert self.floor is not None
            self.floor.run(n, batch, extras=True)
            return
        cipher = self.cipher
        pending = iter(self._pending)
        for start in range(0, n, batch):
            tx: AbstractContextManager[Any] = (
                self.store.transaction() if batch > 1 and self.kind != "memory" else nullcontext()
            )
            with tx:
                if op == "encrypt":
                    for _ in range(min(batch, n - start)):
                        cipher.encrypt(PAYLOAD)
                else:
                    for _ in range(min(batch, n - start)):
                        cipher.decrypt(next(pending))

    def close(self) -> None:
        if self.floor is not None:
            self.floor.close()
        if self.kind != "memory":
            self.store.close()


def worker_main(conn: multiprocessing.connection.Connection) -> None:
    """A worker process: holds Sides, runs what the parent asks, reports monotonic times
    (CLOCK_MONOTONIC is one clock for every process on Linux)."""
    sides: dict[str, Side] = {}
    while True:
        msg = conn.recv()
        cmd = msg[0]
        try:
            if cmd == "quit":
                break
            if cmd == "setup":
                _, key, kind, target, account, version = msg
                sides[key] = Side(kind, target, account, version)
                conn.send(("ok", None))
            elif cmd == "prepare":
                _, key, what, op, n = msg
                conn.send(("ok", sides[key].prepare(what, op, n)))
            elif cmd == "go":
                _, key, what, op, n, batch, start_at = msg
                while time.monotonic() < start_at:
                    pass
                t0 = time.monotonic()
                sides[key].run(what, op, n, batch)
                conn.send(("ok", (t0, time.monotonic())))
            elif cmd == "drop":
                sides.pop(msg[1]).close()
                conn.send(("ok", None))
        except BaseException as e:
            conn.send(("error", f"{type(e).__name__}: {e}"))
    for side in sides.values():
        side.close()


class Workers:
    """Worker processes, spawned once, used by every configuration."""

    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[multiprocessing.connection.Connection] = []
        self.procs: list[Any] = []
        for _ in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def call(self, ids: range, messages: list[tuple[Any, ...]]) -> list[Any]:
        for i, msg in zip(ids, messages, strict=True):
            self.pipes[i].send(msg)
        out = []
        for i in ids:
            status, value = self.pipes[i].recv()
            if status != "ok":
                raise RuntimeError(f"worker {i}: {value}")
            out.append(value)
        return out

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(("quit",))
        for proc in self.procs:
            proc.join(10)


# -- measurement (parent) -------------------------------------------------------------------


@dataclass
class Row:
    kind: str
    version: int
    op: str
    batch: int
    workers: int
    n: int
    record_size: int = 0
    store: list[float] = field(default_factory=list)  # msg/s per pair
    floor: list[float] = field(default_factory=list)

    @property
    def store_rate(self) -> float:
        return statistics.median(self.store)

    @property
    def floor_rate(self) -> float | None:
        return statistics.median(self.floor) if self.floor else None

    @property
    def ratios(self) -> list[float]:
        return [s / f for s, f in zip(self.store, self.floor, strict=True)]


_COUNTER = iter(range(1_000_000))


def measure(
    workers: Workers,
    kind: str,
    target: str,
    version: int,
    op: str,
    batch: int,
    nworkers: int,
    n: int,
    pairs: int,
) -> Row:
    """``pairs`` x (store path, floor), alternating; every worker handles ``n`` messages of
    its own session per run."""
    ids = range(nworkers)
    key = f"c{next(_COUNTER)}"
    tag = f"{kind}-v{version}-{op}-b{batch}-w{nworkers}-{key}"
    workers.call(ids, [("setup", key, kind, target, f"{tag}-{i}", version) for i in ids])
    row = Row(kind, version, op, batch, nworkers, n)
    runs = ["store", "floor"] if kind != "memory" else ["store"]
    try:
        for _ in range(pairs):
            for what in runs:
                sizes = workers.call(ids, [("prepare", key, what, op, n)] * nworkers)
                row.record_size = max(sizes)
                start_at = time.monotonic() + 0.05
                times = workers.call(ids, [("go", key, what, op, n, batch, start_at)] * nworkers)
                elapsed = max(t1 for _, t1 in times) - min(t0 for t0, _ in times)
                rate = n * nworkers / elapsed
                (row.store if what == "store" else row.floor).append(rate)
    finally:
        workers.call(ids, [("drop", key)] * nworkers)
    return row


@contextmanager
def sqlite_target() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="textsecure-bench-") as tmp:
        yield str(Path(tmp) / "bench.db")


@contextmanager
def postgres_target(dsn: str | None, stack: ExitStack) -> Iterator[str | None]:
    """A database on the given server, or on a throwaway cluster; None without PostgreSQL."""
    if dsn is not None:
        yield dsn
        return
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from pgcluster import PgCluster, PgUnavailable
    except ImportError:
        yield None
        return
    try:
        cluster = stack.enter_context(PgCluster())
    except PgUnavailable as e:
        print(f"PostgreSQL skipped: {e}", file=sys.stderr)
        yield None
        return
    with cluster.database() as db:
        yield db


def fmt_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:,.0f}"


def table(rows: list[Row], crypto: dict[tuple[int, str], float]) -> str:
    head = (
        "| store | v | op | msgs/tx | workers | row B | store path msg/s | floor msg/s | "
        "store/floor (median; min-max) | crypto msg/s | bound msg/s | % of bound |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        floor = r.floor_rate
        c = crypto.get((r.version, r.op))
        if floor is not None and c is not None:
            ratios = r.ratios
            ratio = f"**{statistics.median(ratios):.0%}** ({min(ratios):.0%}-{max(ratios):.0%})"
            # per worker: crypto scales with the cores, not with the workers on 2 cores
            bound = 1 / (1 / (c * min(r.workers, os.cpu_count() or 1)) + 1 / floor)
            of_bound = f"{r.store_rate / bound:.0%}"
            bound_s = fmt_rate(bound)
        else:
            ratio, bound_s, of_bound = "—", "—", "—"
        lines.append(
            f"| {r.kind} | {r.version} | {r.op} | {r.batch:,} | {r.workers} | "
            f"{r.record_size or '—'} | {fmt_rate(r.store_rate)} | {fmt_rate(floor)} | {ratio} | "
            f"{fmt_rate(c)} | {bound_s} | {of_bound} |"
        )
    return head + "\n".join(lines) + "\n"


# -- profile (in this process) --------------------------------------------------------------


def _bucket(func: tuple[str, int, str]) -> str:
    filename, _, name = func
    if filename == "~":
        if "Operation" in name and "plan" in name:
            return "Rust: plan (the protocol, crypto, record encode/decode)"
        if "sqlite3" in name:
            return "driver: sqlite3 C calls (SQL)"
        if any(k in name for k in ("SessionCipher", "Snapshot", "Needs", "Operation", "ChangeSet")):
            return "Rust: op / needs / snapshot / change-set glue"
        if "psycopg" in name or "socket" in name or "select" in name or "poll" in name:
            return "driver: psycopg C calls + waiting for the server"
        return "Python builtins"
    if "psycopg" in filename:
        return "driver: psycopg (Python part)"
    if "textsecure/stores" in filename:
        return "store Python (stores/*.py)"
    if filename.endswith(("contextlib.py", "threading.py", "functools.py")):
        return "contextlib / threading (store plumbing)"
    if filename.endswith("stores.py"):
        return "bench loop"
    return "other Python"


def profile(kind: str, target: str, version: int, op: str, n: int, batch: int) -> str:
    side = Side(kind, target, f"profile-{kind}-v{version}-{op}-b{batch}", version)
    try:
        side.prepare("store", op, n)
        side.run("store", op, min(n, batch), batch)  # warm up
        side.prepare("store", op, n)
        prof = cProfile.Profile()
        prof.enable()
        side.run("store", op, n, batch)
        prof.disable()
    finally:
        side.close()
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    buckets: dict[str, float] = {}
    for func, (_, _, tottime, _, _) in raw.items():
        b = _bucket(func)
        buckets[b] = buckets.get(b, 0.0) + tottime
    out = [
        f"**{kind}, v{version} {op}, {batch:,} per transaction** (cProfile, {n:,} messages, "
        f"{total / n * 1e6:.0f} µs/message under the profiler)\n",
        "| where | share |",
        "|---|---:|",
    ]
    for b, t in sorted(buckets.items(), key=lambda kv: -kv[1]):
        out.append(f"| {b} | {t / total:.0%} |")
    out.append("\nTop functions by own time:\n")
    out.append("| function | calls | own µs/message |")
    out.append("|---|---:|---:|")
    top = sorted(raw.items(), key=lambda kv: -kv[1][2])[:12]
    for (filename, line, name), (cc, _, tottime, _, _) in top:
        where = name if filename == "~" else f"{Path(filename).name}:{line} {name}"
        out.append(f"| `{where}` | {cc:,} | {tottime / n * 1e6:.1f} |")
    return "\n".join(out) + "\n"


_CLOCK: dict[str, Callable[[], float]] = {
    "sqlite": time.process_time,
    "postgres": time.process_time,
}


def _median_us(
    fn: Callable[[], object], n: int, reps: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    times = []
    for _ in range(reps):
        t = clock()
        fn()
        times.append((clock() - t) / n * 1e6)
    return statistics.median(times)


def breakdown(kind: str, target: str, version: int, op: str, n: int, reps: int) -> list[float]:
    """Microseconds per message, in transactions of 1,000, without a profiler, each part
    measured alternately in this process (CPU time of this process): the store path; the
    floor; the store's own SQL in the floor's place (``Floor._store_sql``); the native unit of
    work alone (Snapshot + add_session of the real row + add_identity + plan: decode, the
    protocol, encode) on the same row; MemoryStore (the protocol alone)."""
    from textsecure import _native

    clock = _CLOCK[kind]  # this process's CPU time (steadier on a loaded machine)
    side = Side(kind, target, f"breakdown-{kind}-v{version}-{op}", version)
    mem = Side("memory", "", "breakdown-memory", version)
    name, _, device = PEER.rpartition(".")
    peer = ts.Address(name, int(device))
    parts: dict[str, list[float]] = {k: [] for k in ("store", "floor", "extras", "rust", "mem")}
    try:
        for _ in range(reps):
            side.prepare("store", op, n)
            parts["store"].append(_median_us(lambda: side.run("store", op, n, 1000), n, 1, clock))
            side.prepare("floor", op, n)
            parts["floor"].append(_median_us(lambda: side.run("floor", op, n, 1000), n, 1, clock))
            parts["extras"].append(
                _median_us(lambda: side.run("floor+extras", op, n, 1000), n, 1, clock)
            )
            mem.prepare("store", op, n)
            parts["mem"].append(_median_us(lambda: mem.run("store", op, n, 1000), n, 1, clock))
            message = side.peer_cipher.encrypt(PAYLOAD) if op == "decrypt" else None
            record, identity = side.row()
            ikp, rid = side.store.identity_key_pair, side.store.registration_id

            def uow() -> None:
                for _ in range(n):
                    o = (
                        _native.Operation.encrypt(peer, PAYLOAD)
                        if message is None
                        else _native.Operation.decrypt(peer, message)
                    )
                    o.needs()
                    snap = _native.Snapshot(ikp, rid)
                    snap.add_session(peer, record, 1)
                    snap.add_identity(peer, identity)
                    o.plan(snap)

            parts["rust"].append(_median_us(uow, n, 1, clock))
            if message is not None:
                side.cipher.decrypt(message)  # keep the session in step with the peer
    finally:
        side.close()
    store, floor, extras, rust, m = (statistics.median(parts[k]) for k in parts)
    return [store, floor, extras - floor, rust, m, store - extras - rust]


BREAKDOWN_HEAD = (
    "| store | v | op | store path | floor | store's SQL minus the floor's | "
    "native unit of work (decode + protocol + encode) | of which the protocol (MemoryStore) | "
    "rest: store Python |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n"
)


# -- main -----------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"textsecure {ts.__version__}"
    )


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; no docs file")
    parser.add_argument("--n", type=int, help="messages per run and worker")
    parser.add_argument("--pairs", type=int, help="store path / floor pairs per figure")
    parser.add_argument("--pg-dsn", help="benchmark on this PostgreSQL database instead")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiles")
    parser.add_argument("--profile-only", action="store_true", help="only the profiles")
    parser.add_argument(
        "--out", default=str(ROOT / "docs" / "benchmarks-stores.md"), help="markdown file"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    n = args.n or (1000 if quick else 2000)
    pairs = args.pairs or (1 if quick else 3)
    batches = (1, 100, 1000)
    versions = (3, 4)
    ops = ("encrypt", "decrypt")
    pg_workers = (1, 2) if quick else (1, 2, 4)
    if n < max(batches):
        parser.error(f"--n must be at least {max(batches)}")

    started = datetime.datetime.now(datetime.UTC)
    load_before = load()
    print(f"# {machine()}; load average before: {load_before}", flush=True)
    rows: list[Row] = []
    crypto: dict[tuple[int, str], float] = {}
    profiles: list[str] = []
    pg_version = "—"
    workers = Workers(max(pg_workers))
    t_start = time.monotonic()
    try:
        with ExitStack() as stack:
            sqlite_db = stack.enter_context(sqlite_target())
            pg_db = stack.enter_context(postgres_target(args.pg_dsn, stack))
            if pg_db is not None:
                import psycopg

                with psycopg.connect(pg_db) as c:
                    v = c.execute("SHOW server_version").fetchone()
                    pg_version = f"PostgreSQL {v[0] if v else '?'}, psycopg {psycopg.__version__}"
            plan: list[tuple[str, str, int]] = [("memory", "", 1)]
            plan += [("sqlite", sqlite_db, 1)]
            if pg_db is not None:
                plan += [("postgres", pg_db, w) for w in pg_workers]
            if args.profile_only:
                plan = []
            for kind, target, nworkers in plan:
                for version in versions:
                    for op in ops:
                        for batch in (1,) if kind == "memory" else batches:
                            row = measure(
                                workers, kind, target, version, op, batch, nworkers, n, pairs
                            )
                            rows.append(row)
                            if kind == "memory":
                                crypto[(version, op)] = row.store_rate
                            ratio = (
                                f"  {statistics.median(row.ratios):.0%} of the floor "
                                f"({fmt_rate(row.floor_rate)}/s)"
                                if row.floor
                                else ""
                            )
                            print(
                                f"{kind:<8} v{version} {op:<7} tx {batch:>5} x{nworkers}  "
                                f"{fmt_rate(row.store_rate):>8} msg/s{ratio}",
                                flush=True,
                            )
            breakdowns: list[str] = []
            bn, reps = (1000, 1) if quick else (2000, 3)
            if not args.no_profile:
                targets0 = [("sqlite", sqlite_db)] + ([("postgres", pg_db)] if pg_db else [])
                for kind, target in targets0:
                    for version in versions:
                        for op in ops:
                            b = breakdown(kind, target, version, op, bn, reps)
                            breakdowns.append(
                                f"| {kind} | {version} | {op} | "
                                + " | ".join(f"{x:.1f}" for x in b)
                                + " |"
                            )
                            print(breakdowns[-1], flush=True)
            if not args.no_profile:
                pn = 1000 if quick else 4000
                targets = [("sqlite", sqlite_db)] + ([("postgres", pg_db)] if pg_db else [])
                for kind, target in targets:
                    for version in versions:
                        profiles.append(profile(kind, target, version, "encrypt", pn, 1000))
                    profiles.append(profile(kind, target, 4, "decrypt", pn, 1000))
                    profiles.append(profile(kind, target, 3, "encrypt", pn // 4, 1))
    finally:
        workers.close()
    duration = time.monotonic() - t_start
    load_after = load()
    md = table(rows, crypto)
    bd = BREAKDOWN_HEAD + "\n".join(breakdowns) + "\n" if breakdowns else ""
    print()
    print(md)
    print(bd)
    for p in profiles:
        print(p)
    command = "python benches/stores.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    if quick or args.profile_only:
        print(f"({args.out} not written)")
        return 0
    doc = f"""# Store benchmarks

Messages per second through `MemoryStore`, `SQLiteStore` and `PostgresStore`: encrypt and
decrypt of 100-byte messages in one session (in chain), session versions 3 (X3DH) and 4
(PQXDH + SPQR), one message per transaction (the cipher call is its own transaction) and
100 and 1,000 per `with store.transaction():`; PostgreSQL also with 1, 2 and 4 worker
processes (each its own account and session, one database).

- **floor**: the same reads and writes through the same driver without crypto and without the
  store's code, in the same transaction pattern: per message `SELECT record, version` (session
  row) and `SELECT key` (identity row), one pipeline on PostgreSQL, then `UPDATE ... SET record
  = <the bytes read>, version = version + 1 WHERE ... AND version = <read>`, on a copy of the
  real session row (**row B** bytes). Store path and floor runs alternate (A, B, A, B, ...);
  figures are medians of {pairs} pairs, the ratio is the median of the per-pair ratios.
- **crypto**: MemoryStore, the same operation with no I/O. **bound**: the store path if it
  added nothing to crypto and floor, 1 / (1/crypto + 1/floor) (with crypto * min(workers,
  cores) for several workers). The floor has no crypto, so ≥70% of the floor is out of reach
  wherever crypto alone takes more than 30% of the floor's time; **% of bound** says how much
  the store's own code costs.

- Machine: {machine()}; {pg_version}. PostgreSQL: throwaway cluster on a Unix socket
  (`tests/pgcluster.py`: fsync off, synchronous_commit off); SQLite: WAL, synchronous=NORMAL,
  on {tempfile.gettempdir()}.
- Date: {started:%Y-%m-%d %H:%M} UTC, {duration:.0f} s; {n:,} messages per run and worker.
- Load average (1/5/15 min): {load_before} before, {load_after} after: the machine was shared
  with other jobs, so absolute figures are noisy; the alternated ratios less so.
- Command: `{command}` (`make bench-stores`)

{md}
## Where the store path spends its time

Microseconds per message in transactions of 1,000, measured without a profiler (medians of
{reps} alternated runs in one process), in **CPU time of the process** (a loaded machine disturbs
it less; on PostgreSQL it leaves out the server and the waiting for it: it is the client's
cost): the store path; the floor; what the store's own SQL costs beside the floor's (the
statements `DurableStore` sends for this shape, in its round trips: SQLite one SELECT with
LEFT JOINs for session and identity, then the UPDATE; PostgreSQL one pipeline of SAVEPOINT,
the advisory lock and that SELECT, then one of the UPDATE and RELEASE); the native unit of
work alone on the real row (Snapshot + add_session + add_identity + plan: decode the record,
run the protocol, encode the new record); the protocol alone (MemoryStore); the rest (store
path minus the store's SQL and the native unit of work) is the store's Python: `_execute`,
`_attempt_nested`, `_reads`, `fill`, `_writes`, the engine's `read_unit` / `write_unit`.

{bd}
### Profiles (cProfile: it inflates Python-heavy parts)

{chr(10).join(profiles)}
"""
    Path(args.out).write_text(doc)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
