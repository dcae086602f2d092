"""The shared half of the stress tests: senders, delivery plans, the application's tables and
the *farm* (the parent's dispatcher of worker processes).

One "server" account (the receiver) lives in a durable store that every worker process opens
on its own (``SQLiteStore`` on one file / ``PostgresStore`` on one database). The remote
senders are ``MemoryStore``\\ s in the parent: each starts its session with a PreKey message
from a bundle the server store generated, and the parent encrypts all of its messages up
front. The farm hands the messages out, one at a time, to random workers (so the messages of
one session are decrypted by different processes at once, out of order), redelivers what a
killed worker had not confirmed, and restarts killed workers.

Workers are ``python -m stress.worker`` subprocesses; each talks to the parent over its own
socketpair (``multiprocessing.connection.Connection``), so a worker killed in the middle of a
write can corrupt nothing but its own channel.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import textsecure as ts
from textsecure.stores import DurableStore, PostgresStore, SQLiteStore

SERVER = ts.Address("server", 1)
ACCOUNT = "server"
TESTS_DIR = Path(__file__).resolve().parent.parent

#: inbox mode: the share of worker incarnations that, finding unacknowledged inbox items when
#: they start, die while handling them (before one of them is acknowledged)
RECOVERY_KILLS = 0.2
#: how many messages a worker may have been handed and not yet answered
WORKER_CAPACITY = 4


def full() -> bool:
    """``TEXTSECURE_STRESS_FULL=1``: the sizes of the issue even where they are the default."""
    return os.environ.get("TEXTSECURE_STRESS_FULL") == "1"


def sender_address(sid: int) -> ts.Address:
    return ts.Address(f"sender{sid:04d}", 1)


def plaintext(sid: int, idx: int) -> bytes:
    """Message ``idx`` of session ``sid``: its coordinates, then 0..63 bytes that depend on
    them (so a plaintext handed to the wrong message is caught)."""
    tag = b"%d:%d:" % (sid, idx)
    filler = hashlib.sha512(b"stress/" + tag).digest()
    return tag + filler[: (sid * 31 + idx * 7) % 64]


def parse_plaintext(data: bytes) -> tuple[int, int]:
    sid, idx, _ = data.split(b":", 2)
    return int(sid), int(idx)


# -- engines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the server account lives: a SQLite file or a PostgreSQL database, plus the
    application's own log (inbox mode): another SQLite file / the same PG database."""

    engine: str  # "sqlite" | "postgres"
    store: str  # path or conninfo
    app: str  # path or conninfo

    def open(self) -> DurableStore:
        if self.engine == "sqlite":
            return SQLiteStore(self.store, account=ACCOUNT)
        return PostgresStore(self.store, account=ACCOUNT)

    def config(self) -> dict[str, str]:
        return {"engine": self.engine, "store": self.store, "app": self.app}


# -- the application's tables -------------------------------------------------------------

#: inbox mode: the application's log, outside the store's transactions. No UNIQUE constraint:
#: the application dedups by the inbox hash itself, so a duplicate would show in the count.
APP_LOG = (
    "CREATE TABLE IF NOT EXISTS app_log (hash {blob} NOT NULL, sid INTEGER NOT NULL, "
    "idx INTEGER NOT NULL, plaintext {blob} NOT NULL, pid INTEGER NOT NULL)"
)
#: transaction mode: written on ``tx.connection`` in the decrypt's transaction. No UNIQUE
#: constraint either: only the shared commit keeps it free of duplicates.
APP_MESSAGES = (
    "CREATE TABLE IF NOT EXISTS app_messages (sid INTEGER NOT NULL, idx INTEGER NOT NULL, "
    "plaintext {blob} NOT NULL, pid INTEGER NOT NULL)"
)


def app_connect(engine: str, target: str) -> Any:
    """The application's own connection (autocommit; it issues BEGIN / COMMIT itself)."""
    if engine == "sqlite":
        import sqlite3

        conn = sqlite3.connect(target, isolation_level=None, timeout=60)
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA journal_mode = WAL")
        return conn
    import psycopg

    return psycopg.connect(target, autocommit=True)


def mark(engine: str) -> str:
    return "?" if engine == "sqlite" else "%s"


def create_app_tables(target: Target) -> None:
    blob = "BLOB" if target.engine == "sqlite" else "BYTEA"
    for where in {target.store, target.app}:
        conn = app_connect(target.engine, where)
        try:
            conn.execute(APP_LOG.format(blob=blob))
            conn.execute(APP_MESSAGES.format(blob=blob))
        finally:
            conn.close()


def app_rows(engine: str, where: str, table: str) -> list[tuple[int, int, bytes]]:
    conn = app_connect(engine, where)
    try:
        rows = conn.execute(f"SELECT sid, idx, plaintext FROM {table}").fetchall()
    finally:
        conn.close()
    return [(int(s), int(i), bytes(p)) for s, i, p in rows]


def check_database_health(target: Target) -> None:
    """After the workers are gone: SQLite files pass ``PRAGMA integrity_check``; on PostgreSQL
    no backend of a killed worker lingers (holding locks or a transaction) for long: the only
    other client is the parent's own store, idle."""
    if target.engine == "sqlite":
        for path in {target.store, target.app}:
            conn = app_connect("sqlite", path)
            try:
                assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], path
            finally:
                conn.close()
        return
    conn = app_connect("postgres", target.store)
    try:
        deadline = time.monotonic() + 20
        while True:
            others = conn.execute(
                "SELECT pid, state, wait_event_type, left(query, 80) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            ).fetchall()
            if (len(others) <= 1 and all(o[1] == "idle" for o in others)) or (
                time.monotonic() > deadline
            ):
                break
            time.sleep(0.2)
        assert len(others) <= 1 and all(o[1] == "idle" for o in others), (
            f"backends of dead workers linger: {others}"
        )
        locks = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        ).fetchone()
        assert locks == (0,), f"advisory locks still held: {locks}"
    finally:
        conn.close()


# -- senders and delivery plans -----------------------------------------------------------


@dataclass
class Sender:
    sid: int
    v4: bool
    store: ts.MemoryStore
    cipher: ts.SessionCipher
    messages: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def address(self) -> ts.Address:
        return sender_address(self.sid)


def make_senders(server: DurableStore, sessions: int, per_session: int) -> list[Sender]:
    """``sessions`` senders (odd ones PQXDH / v4, even ones X3DH / v3), each with a bundle of
    its own from the server store and ``per_session`` messages encrypted in order (all of them
    PreKey messages: the server has not answered yet)."""
    senders = []
    for sid in range(sessions):
        v4 = sid % 2 == 1
        bundle = server.new_bundle(1, prekey_id=sid + 1, signed_prekey_id=sid + 1, kyber=v4)
        store = ts.MemoryStore(ts.IdentityKeyPair.generate(), registration_id=sid + 1)
        cipher = ts.SessionCipher(store, SERVER)
        cipher.process_bundle(bundle)
        sender = Sender(sid, v4, store, cipher)
        for idx in range(per_session):
            m = cipher.encrypt(plaintext(sid, idx))
            sender.messages.append((int(m.type), bytes(m)))
        senders.append(sender)
    return senders


def delivery_order(
    sessions: int, per_session: int, rng: random.Random, *, active: int = 12, window: int = 16
) -> list[tuple[int, int]]:
    """The order in which the farm hands the messages out. About ``active`` sessions are in
    flight at any time (so several workers work on one session at once, and new sessions keep
    starting while others run); within a session the order is shuffled in a window of about
    ``window`` messages (idx + U(0, window) sorted), far below the 2,000 skipped keys a chain
    may keep."""
    orders = {
        sid: sorted(range(per_session), key=lambda i: i + rng.uniform(0, window))
        for sid in range(sessions)
    }
    waiting = deque(range(sessions))
    live: list[int] = []
    pos = Counter[int]()
    out: list[tuple[int, int]] = []
    while waiting or live:
        while waiting and len(live) < active:
            live.append(waiting.popleft())
        k = rng.randrange(len(live))
        sid = live[k]
        out.append((sid, orders[sid][pos[sid]]))
        pos[sid] += 1
        if pos[sid] == per_session:
            live.pop(k)
    return out


def max_displacement(order: Sequence[tuple[int, int]]) -> int:
    """The largest number of later messages of one session handed out before an earlier one
    (how far the chain has to skip ahead at most, before the workers' own reordering)."""
    worst = 0
    seen: dict[int, int] = {}
    for sid, idx in order:
        top = seen.get(sid, -1)
        worst = max(worst, top - idx)
        seen[sid] = max(top, idx)
    return worst


# -- both directions after the run --------------------------------------------------------


def check_sessions_both_ways(server: DurableStore, senders: Sequence[Sender]) -> None:
    """For every session: one session state on the server (no fork: nothing archived, the
    right version), the server replies and the sender decrypts, the sender (now answered, so a
    plain SignalMessage) sends once more and the server decrypts."""
    for s in senders:
        record = server.session(s.address)
        assert record is not None, f"session {s.sid}: no session on the server"
        assert record.has_current_session, f"session {s.sid}: no current session"
        assert record.archived_count == 0, (
            f"session {s.sid}: {record.archived_count} archived states (the session forked)"
        )
        assert record.version == (4 if s.v4 else 3), f"session {s.sid}: v{record.version}"
        reply = ts.SessionCipher(server, s.address).encrypt(b"reply %d" % s.sid)
        assert s.cipher.decrypt(reply) == b"reply %d" % s.sid, f"session {s.sid}: reply"
        again = s.cipher.encrypt(b"again %d" % s.sid)
        assert isinstance(again, ts.SignalMessage), f"session {s.sid}: still a PreKey message"
        got = ts.SessionCipher(server, s.address).decrypt(again)
        assert got == b"again %d" % s.sid, f"session {s.sid}: second message"


# -- the farm -----------------------------------------------------------------------------


@dataclass
class WorkerHandle:
    slot: int
    incarnation: int
    proc: subprocess.Popen[bytes]
    conn: Connection
    inflight: dict[int, tuple[int, int]] = field(default_factory=dict)
    ready: bool = False
    spawned_at: float = field(default_factory=time.monotonic)


@dataclass
class FarmStats:
    deliveries: int = 0
    redeliveries: int = 0
    confirmed: int = 0
    duplicates_confirmed: int = 0
    #: messages handed to a second worker while the first still had them
    echoes: int = 0
    pending_handled_at_start: int = 0
    #: inbox mode: plaintexts the application's log had already (handled twice without it)
    dedup_hits: int = 0
    parent_kills: int = 0
    deaths: int = 0
    restarts: int = 0
    seconds: float = 0.0
    #: deliveries handed out while another worker held a message of the same session
    shared_session_deliveries: int = 0
    #: messages confirmed after a later message of their session (decrypted with a skipped key)
    out_of_order: int = 0
    #: seconds from spawning a worker to its "ready" (store opened, inbox_pending handled)
    startup_seconds: list[float] = field(default_factory=list)
    #: the longest time the parent waited for any answer
    longest_stall: float = 0.0
    self_kills: Counter[str] = field(default_factory=Counter)
    exit_codes: Counter[int] = field(default_factory=Counter)


@dataclass
class Outcome:
    """What the workers answered: the plaintext of every confirmed message (decrypted here or
    by the worker from the inbox), and every error (which fails the test)."""

    plaintexts: dict[tuple[int, int], bytes] = field(default_factory=dict)
    confirmations: Counter[tuple[int, int]] = field(default_factory=Counter)
    #: "ok" answers (a decrypt, or in inbox mode the stored plaintext) per message
    decrypted: Counter[tuple[int, int]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    stats: FarmStats = field(default_factory=FarmStats)


class Farm:
    """Runs ``workers`` worker processes in ``mode`` ("plain", "inbox" or "tx") against
    ``target``, restarting the dead and handing out again what they had not confirmed.

    Kills: with ``kill_points``, every worker incarnation gets a kill plan from the farm's
    seeded RNG: a point (the points taken in turn, so each gets its share) and a number of
    messages (uniform in 0..2 * ``mean_life``) after which it SIGKILLs itself the next time it
    passes that point (see worker.py); in inbox mode some also die in their inbox recovery
    (``RECOVERY_KILLS``). With ``parent_kill_every`` (a range of confirmed
    messages) the parent SIGKILLs a random worker now and then, wherever it is.

    ``echo``: the share of messages also handed to a second worker at once (a server's
    at-least-once redelivery racing the first attempt). Only the inbox may then answer a
    message's plaintext twice (the stored one, before the ack); a second decrypt anywhere else
    is an error."""

    def __init__(
        self,
        target: Target,
        *,
        mode: str,
        workers: int,
        seed: int,
        log_path: Path,
        kill_points: Sequence[str] = (),
        mean_life: int = 150,
        parent_kill_every: tuple[int, int] | None = None,
        echo: float = 0.0,
        timeout: float = 900.0,
    ) -> None:
        self.target = target
        self.mode = mode
        self.n = workers
        self.seed = seed
        self.rng = random.Random(seed)
        self.log_path = log_path
        self.kill_points = list(kill_points)
        self.mean_life = mean_life
        self.parent_kill_every = parent_kill_every
        self.echo = echo
        self.timeout = timeout
        self.workers: dict[int, WorkerHandle] = {}
        self.incarnations = Counter[int]()
        self.stats = FarmStats()
        self._highest: dict[int, int] = {}
        self._plans: list[str] = []

    def _plan(self) -> dict[str, Any] | None:
        if not self.kill_points:
            return None
        if not self._plans:
            self._plans = list(self.kill_points)
            self.rng.shuffle(self._plans)
        return {
            "point": self._plans.pop(),
            "after": self.rng.randint(0, 2 * self.mean_life),
            "seed": self.rng.randrange(2**32),
            "recovery": self.mode == "inbox" and self.rng.random() < RECOVERY_KILLS,
        }

    # -- processes

    def _spawn(self, slot: int) -> WorkerHandle:
        self.incarnations[slot] += 1
        ours, theirs = socket.socketpair()
        config = {
            **self.target.config(),
            "mode": self.mode,
            "plan": self._plan(),
        }
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(TESTS_DIR), *filter(None, [env.get("PYTHONPATH")])]
        )
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "stress.worker", str(theirs.fileno()), json.dumps(config)],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=TESTS_DIR,
            )
        theirs.close()
        conn = Connection(ours.detach())
        handle = WorkerHandle(slot, self.incarnations[slot], proc, conn)
        self.workers[slot] = handle
        return handle

    def _reap(self, w: WorkerHandle) -> list[tuple[int, int]]:
        """A worker's channel closed: collect its exit code and the messages it held."""
        w.conn.close()
        try:
            rc = w.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(w.proc.pid, signal.SIGKILL)
            rc = w.proc.wait(timeout=30)
        self.stats.exit_codes[rc] += 1
        self.stats.deaths += 1
        del self.workers[w.slot]
        return list(w.inflight.values())

    def kill_all(self) -> None:
        for w in list(self.workers.values()):
            if w.proc.poll() is None:
                os.kill(w.proc.pid, signal.SIGKILL)
            w.proc.wait()
            w.conn.close()
        self.workers.clear()

    # -- the run

    def run(
        self, messages: dict[tuple[int, int], tuple[int, bytes]], order: list[tuple[int, int]]
    ) -> Outcome:
        out = Outcome(stats=self.stats)
        st = self.stats
        pending: deque[tuple[int, int]] = deque(order)
        attempts = Counter[tuple[int, int]]()
        total = len(order)
        done: set[tuple[int, int]] = set()
        held: dict[int, list[tuple[int, int]]] = defaultdict(list)
        next_id = 0
        for slot in range(self.n):
            self._spawn(slot)
        start = time.monotonic()
        last_progress = start
        every = self.parent_kill_every
        next_kill = self.rng.randint(*every) if every else None

        def deliver(w: WorkerHandle, key: tuple[int, int], last_id: int) -> int:
            did = last_id + 1
            attempts[key] += 1
            st.deliveries += 1
            if attempts[key] > 1:
                st.redeliveries += 1
            if any(
                k[0] == key[0]
                for other in self.workers.values()
                if other is not w
                for k in other.inflight.values()
            ):
                st.shared_session_deliveries += 1
            w.inflight[did] = key
            mtype, data = messages[key]
            try:
                w.conn.send(("msg", did, key[0], key[1], attempts[key], mtype, data))
            except OSError:
                pass  # it died: its channel reports EOF in the loop
            return did

        def settle(w: WorkerHandle, did: int) -> tuple[int, int] | None:
            key = w.inflight.pop(did, None)
            if key is None:
                out.errors.append(f"worker {w.slot}: answer for unknown delivery {did}")
            return key

        try:
            while len(done) < total:
                now = time.monotonic()
                if now - start > self.timeout:
                    raise AssertionError(
                        f"stress run timed out after {self.timeout:.0f}s: {len(done)}/{total} "
                        f"confirmed, {len(pending)} pending, "
                        f"in flight {[len(w.inflight) for w in self.workers.values()]}"
                    )
                if now - last_progress > 120:
                    raise AssertionError(f"no progress for 120s: {len(done)}/{total} confirmed")
                # hand out: each message to a random worker that has room
                while pending:
                    room = [w for w in self.workers.values() if len(w.inflight) < WORKER_CAPACITY]
                    if not room:
                        break
                    w = self.rng.choice(room)
                    key = pending.popleft()
                    if key in done:
                        continue
                    next_id = deliver(w, key, next_id)
                    others = [o for o in room if o is not w]
                    if others and self.rng.random() < self.echo:
                        # at-least-once delivery: the same envelope to a second worker at once
                        st.echoes += 1
                        next_id = deliver(self.rng.choice(others), key, next_id)
                # the parent's own kills
                if every and next_kill is not None and len(done) >= next_kill:
                    victims = [w for w in self.workers.values() if w.proc.poll() is None]
                    if victims:
                        victim = self.rng.choice(victims)
                        os.kill(victim.proc.pid, signal.SIGKILL)
                        st.parent_kills += 1
                    next_kill = len(done) + self.rng.randint(*every)
                by_conn = {w.conn: w for w in self.workers.values()}
                for c in wait(list(by_conn), timeout=0.05):
                    assert isinstance(c, Connection)
                    w = by_conn[c]
                    try:
                        while c.poll():
                            answer = c.recv()
                            self._answer(w, answer, out, done, attempts, settle)
                            t = time.monotonic()
                            if st.confirmed:
                                st.longest_stall = max(st.longest_stall, t - last_progress)
                            last_progress = t
                    except (EOFError, OSError):
                        # what it held goes out again once its successor is up (as a server
                        # redelivers when the client is back): the successor's inbox recovery
                        # runs first
                        held[w.slot].extend(self._reap(w))
                        st.restarts += 1
                        self._spawn(w.slot)
                    if self.workers.get(w.slot) is w and w.ready and held.get(w.slot):
                        for key in held.pop(w.slot):
                            if key not in done:
                                pos = self.rng.randrange(min(len(pending), 64) + 1)
                                pending.insert(pos, key)
            st.seconds = time.monotonic() - start
            for w in self.workers.values():
                try:
                    w.conn.send(("stop",))
                except OSError:
                    pass
            for w in list(self.workers.values()):
                try:
                    while True:
                        answer = w.conn.recv()
                        if answer[0] == "bye":
                            break
                        self._answer(w, answer, out, done, attempts, settle)
                except (EOFError, OSError):
                    pass
                rc = w.proc.wait(timeout=60)
                if rc != 0:
                    out.errors.append(f"worker {w.slot} exited with {rc} at the end")
                w.conn.close()
            self.workers.clear()
        finally:
            self.kill_all()
        st.self_kills = self_kills(self.log_path)
        out.errors.extend(worker_errors(self.log_path))
        return out

    def _answer(
        self,
        w: WorkerHandle,
        answer: tuple[Any, ...],
        out: Outcome,
        done: set[tuple[int, int]],
        attempts: Counter[tuple[int, int]],
        settle: Any,
    ) -> None:
        kind = answer[0]
        st = self.stats
        if kind == "ready":
            w.ready = True
            st.startup_seconds.append(time.monotonic() - w.spawned_at)
        elif kind == "pending":
            st.pending_handled_at_start += 1
        elif kind == "dedup":
            st.dedup_hits += 1
        elif kind == "ok":
            _, did, sid, idx, text = answer
            key = settle(w, did)
            if key != (sid, idx):
                out.errors.append(f"worker {w.slot}: answer {(sid, idx)} for delivery {key}")
                return
            out.confirmations[key] += 1
            out.decrypted[key] += 1
            if out.plaintexts.setdefault(key, text) != text:
                out.errors.append(f"{key}: two different plaintexts")
            if out.decrypted[key] > 1 and self.mode != "inbox":
                # only the inbox hands a plaintext out twice (the stored one, until the ack)
                out.errors.append(f"{key}: decrypted twice")
            if key in done:
                return  # a "dup" of a racing delivery came first
            done.add(key)
            if self._highest.get(sid, -1) > idx:
                st.out_of_order += 1
            self._highest[sid] = max(self._highest.get(sid, -1), idx)
            st.confirmed += 1
        elif kind == "dup":
            # DuplicateMessage, and the application had handled the message already
            _, did, sid, idx = answer
            key = settle(w, did)
            if key is None:
                return
            if attempts[key] < 2:
                out.errors.append(f"{key}: DuplicateMessage on its first delivery")
            out.confirmations[key] += 1
            st.duplicates_confirmed += 1
            if key not in done:
                done.add(key)
                st.confirmed += 1
        elif kind == "err":
            _, did, sid, idx, text = answer
            key = settle(w, did)
            out.errors.append(f"{(sid, idx)} (delivery {attempts[(sid, idx)]}): {text}")
            if key is not None:
                done.add(key)  # do not deliver it forever; the test fails on the error
        else:
            out.errors.append(f"worker {w.slot}: unexpected answer {answer!r}")


def self_kills(log_path: Path) -> Counter[str]:
    counts = Counter[str]()
    if log_path.exists():
        for line in log_path.read_text("utf-8", "replace").splitlines():
            if line.startswith("SELFKILL "):
                counts[line.split()[1]] += 1
    return counts


def worker_errors(log_path: Path) -> list[str]:
    """Anything a worker wrote to stderr besides its kill notes (tracebacks) is an error."""
    if not log_path.exists():
        return []
    text = log_path.read_text("utf-8", "replace")
    other = [line for line in text.splitlines() if line and not line.startswith("SELFKILL ")]
    return ["worker output:\n" + "\n".join(other[-60:])] if other else []


@contextmanager
def timed() -> Iterator[list[float]]:
    box = [0.0]
    t = time.monotonic()
    try:
        yield box
    finally:
        box[0] = time.monotonic() - t
