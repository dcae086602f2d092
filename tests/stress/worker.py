"""A worker process of the stress tests (``python -m stress.worker FD CONFIG``): opens its own
store on the shared server account, takes messages from the parent over the socket ``FD`` and
decrypts them, in one of three modes:

- ``plain``: ``SessionCipher(store, sender).decrypt(message)``, answer the plaintext;
- ``inbox``: ``store.inbox_decrypt``, then the application handles the plaintext (appends it
  to its own log, in its own transaction, unless the log has that inbox hash already), then
  ``store.inbox_ack``, then the answer. On start, ``store.inbox_pending()`` is handled first;
- ``tx``: ``with store.transaction() as tx:`` decrypt and INSERT the plaintext into the
  application's table on ``tx.connection``; one commit for both, then the answer.

A DuplicateMessage (a redelivery) is answered ``dup`` when the application has the message
already, and is an error when it has not (the message would be lost).

With a kill ``plan`` in the config (chosen by the parent's seeded RNG: a point and a number
of messages) the worker SIGKILLs itself the first time it passes that point after it has
received that many messages (one line ``SELFKILL <point>`` on stderr first). The points:

- ``before_decrypt``: the message was received, nothing done;
- ``before_commit``: in the store's unit of work (or ``store.transaction()``), every row
  written, COMMIT not sent;
- ``in_commit``: PostgreSQL: COMMIT sent to the server, its answer not read; SQLite: COMMIT
  running while another thread sends the SIGKILL 0..300 microseconds later;
- ``after_commit``: COMMIT acknowledged, the store call has not returned yet;
- ``in_tx`` (tx): inside ``store.transaction()``, after the decrypt and the INSERT;
- ``after_decrypt`` (inbox): ``inbox_decrypt`` returned, nothing handled;
- ``log_before_commit`` (inbox): in the application log's own transaction, INSERT done,
  COMMIT not sent;
- ``after_handle`` (inbox): the application's log has it, not acknowledged;
- ``recovery`` (inbox, besides the plan's point, in some incarnations): on restart, one of
  the ``inbox_pending()`` items handled but not acknowledged;
- ``before_answer``: handled and committed / acknowledged, the parent not told.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import textsecure as ts
from textsecure import errors
from textsecure.stores import DurableStore, InboxItem

from stress.common import ACCOUNT, app_connect, mark, parse_plaintext, sender_address


def die(point: str) -> None:
    os.write(2, f"SELFKILL {point}\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # never reached


class Killer:
    def __init__(self, plan: dict[str, Any] | None) -> None:
        self.point: str | None = None if plan is None else plan["point"]
        self.after: int = 0 if plan is None else plan["after"]
        self.rng = random.Random(None if plan is None else plan["seed"])
        self.received = 0
        self.recovery = plan is not None and plan["recovery"]

    def due(self, point: str) -> bool:
        return point == self.point and self.received >= self.after

    def maybe(self, point: str) -> None:
        if self.due(point):
            die(point)

    def hook_commits(self, store: DurableStore, engine_name: str) -> None:
        """Wraps the store engine's COMMIT (every unit of work and ``transaction()`` ends
        there) with the ``before_commit`` / ``in_commit`` / ``after_commit`` kill points."""
        engine: Any = store._engine
        original: Callable[[Any], None] = engine.commit

        def commit(conn: Any) -> None:
            self.maybe("before_commit")
            if self.due("in_commit"):
                if engine_name == "postgres":
                    conn.pgconn.send_query(b"COMMIT")
                    conn.pgconn.flush()
                    die("in_commit")
                delay = self.rng.uniform(0, 300e-6)
                threading.Thread(target=_kill_after, args=(delay,), daemon=True).start()
                original(conn)
                time.sleep(60)  # the thread kills us (during or right after the COMMIT)
            original(conn)
            self.maybe("after_commit")

        engine.commit = commit


def _kill_after(delay: float) -> None:
    time.sleep(delay)  # releases the GIL: the main thread is in sqlite3's COMMIT meanwhile
    die("in_commit")


class App:
    """The application's side: its own log (inbox mode) or its table (tx mode)."""

    def __init__(self, config: dict[str, Any], store: DurableStore) -> None:
        self.engine = config["engine"]
        self.m = mark(self.engine)
        self.store = store
        self.log = app_connect(self.engine, config["app"]) if config["mode"] == "inbox" else None
        self.pid = os.getpid()

    def handle(self, item: InboxItem, killer: Killer) -> bool:
        """Appends the plaintext to the log once per inbox hash (the application's dedup: a
        redelivered, not yet acknowledged envelope comes back with the same hash). Returns
        whether the log had it already (an application without this check would have handled
        the message twice)."""
        assert self.log is not None
        sid, idx = parse_plaintext(item.plaintext)
        m = self.m
        if self.engine == "sqlite":
            self.log.execute("BEGIN IMMEDIATE")
        else:
            self.log.execute("BEGIN")
            self.log.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (item.hash.hex(),)
            )
        try:
            seen = self.log.execute(
                f"SELECT COUNT(*) FROM app_log WHERE hash = {m}", (item.hash,)
            ).fetchone()[0]
            if not seen:
                self.log.execute(
                    f"INSERT INTO app_log (hash, sid, idx, plaintext, pid) "
                    f"VALUES ({m}, {m}, {m}, {m}, {m})",
                    (item.hash, sid, idx, item.plaintext, self.pid),
                )
            killer.maybe("log_before_commit")
            self.log.execute("COMMIT")
        except BaseException:
            self.log.execute("ROLLBACK")
            raise
        return bool(seen)

    def logged(self, sid: int, idx: int) -> bool:
        assert self.log is not None
        m = self.m
        row = self.log.execute(
            f"SELECT COUNT(*) FROM app_log WHERE sid = {m} AND idx = {m}", (sid, idx)
        ).fetchone()
        return bool(row[0])

    def insert(self, conn: Any, sid: int, idx: int, text: bytes) -> None:
        m = self.m
        conn.execute(
            f"INSERT INTO app_messages (sid, idx, plaintext, pid) VALUES ({m}, {m}, {m}, {m})",
            (sid, idx, text, self.pid),
        )

    def stored(self, sid: int, idx: int) -> bool:
        m = self.m
        with self.store.transaction() as tx:
            row = tx.connection.execute(
                f"SELECT COUNT(*) FROM app_messages WHERE sid = {m} AND idx = {m}", (sid, idx)
            ).fetchone()
        return bool(row[0])


def open_store(config: dict[str, Any]) -> DurableStore:
    from textsecure.stores import PostgresStore, SQLiteStore

    if config["engine"] == "sqlite":
        return SQLiteStore(config["store"], account=ACCOUNT)
    return PostgresStore(config["store"], account=ACCOUNT)


def main() -> None:
    conn = Connection(int(sys.argv[1]))
    config: dict[str, Any] = json.loads(sys.argv[2])
    mode = config["mode"]
    killer = Killer(config["plan"])
    store = open_store(config)
    if killer.point is not None:
        killer.hook_commits(store, config["engine"])
    app = App(config, store)
    if mode == "inbox":
        pending = store.inbox_pending()
        victim = killer.rng.randrange(len(pending)) if killer.recovery and pending else -1
        for n, item in enumerate(pending):
            if app.handle(item, killer):
                conn.send(("dedup",))
            if n == victim:
                die("recovery")
            store.inbox_ack(item.hash)
            sid, idx = parse_plaintext(item.plaintext)
            conn.send(("pending", sid, idx))
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "stop":
            conn.send(("bye",))
            return
        _, did, sid, idx, _attempt, mtype, data = request
        killer.received += 1
        killer.maybe("before_decrypt")
        address = sender_address(sid)
        message = ts.parse_message(mtype, data)
        try:
            if mode == "plain":
                text = ts.SessionCipher(store, address).decrypt(message)
            elif mode == "inbox":
                try:
                    item = store.inbox_decrypt(address, message)
                except errors.DuplicateMessage:
                    if not app.logged(sid, idx):
                        raise
                    killer.maybe("before_answer")
                    conn.send(("dup", did, sid, idx))
                    continue
                killer.maybe("after_decrypt")
                if app.handle(item, killer):
                    conn.send(("dedup",))
                killer.maybe("after_handle")
                store.inbox_ack(item.hash)
                text = item.plaintext
            else:
                try:
                    with store.transaction() as tx:
                        text = ts.SessionCipher(store, address).decrypt(message)
                        app.insert(tx.connection, sid, idx, text)
                        killer.maybe("in_tx")
                except errors.DuplicateMessage:
                    if not app.stored(sid, idx):
                        raise
                    killer.maybe("before_answer")
                    conn.send(("dup", did, sid, idx))
                    continue
        except errors.TextSecureError as e:
            conn.send(("err", did, sid, idx, f"{type(e).__name__}: {e}"))
            continue
        killer.maybe("before_answer")
        conn.send(("ok", did, sid, idx, text))


if __name__ == "__main__":
    main()
