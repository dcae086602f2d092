"""Exactly once through SIGKILL: 8 worker processes decrypt 10,000 messages (50 sessions, v3
and v4) of one account and die at random points: they kill themselves (seeded RNG) before the
decrypt, inside the store's unit of work before COMMIT, with COMMIT in flight, right after
COMMIT, before acknowledging / telling the parent, ..., and the parent SIGKILLs random
workers now and then. The parent redelivers every message whose handling a worker did not
confirm (at-least-once delivery, as a server does) and restarts the dead.

Two exactly-once modes of the application:

- ``inbox``: ``inbox_decrypt``, then the application appends the plaintext to its own log
  (deduplicating by the inbox hash), then ``inbox_ack``; on restart ``inbox_pending()`` first;
- ``tx``: ``with store.transaction() as tx:`` the decrypt and the application's INSERT on
  ``tx.connection`` commit together; a redelivery of a committed message is DuplicateMessage.

Afterwards the application has every message exactly once with the right plaintext, the inbox
holds nothing unacknowledged, and every session works both ways."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from stress.common import (
    Farm,
    Target,
    app_rows,
    check_database_health,
    check_sessions_both_ways,
    create_app_tables,
    delivery_order,
    make_senders,
    plaintext,
)

WORKERS = 8
SESSIONS = 50
PER_SESSION = 200
#: where workers kill themselves (worker.py); every incarnation dies at one of them, the
#: points taken in turn, after 0..2 * MEAN_LIFE messages
KILL_POINTS = {
    "inbox": [
        "before_decrypt",
        "before_commit",
        "in_commit",
        "after_commit",
        "after_decrypt",
        "log_before_commit",
        "after_handle",
        "before_answer",
    ],
    "tx": [
        "before_decrypt",
        "in_tx",
        "before_commit",
        "in_commit",
        "after_commit",
        "before_answer",
    ],
}
MEAN_LIFE = 200
#: the parent SIGKILLs a random worker after every 200..600 confirmed messages
PARENT_KILL_EVERY = (200, 600)
#: the share of messages handed to a second worker at the same time (at-least-once delivery
#: racing itself)
ECHO = 0.02


@pytest.mark.parametrize("mode", ["inbox", "tx"])
def test_kill_workers_anywhere(
    target: Target, mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(f"crash/{target.engine}/{mode}")
    server = target.open()
    try:
        create_app_tables(target)
        senders = make_senders(server, SESSIONS, PER_SESSION)
        messages = {(s.sid, i): m for s in senders for i, m in enumerate(s.messages)}
        order = delivery_order(SESSIONS, PER_SESSION, rng)
        total = len(order)
        farm = Farm(
            target,
            mode=mode,
            workers=WORKERS,
            seed=rng.randrange(2**32),
            log_path=tmp_path / "workers.log",
            kill_points=KILL_POINTS[mode],
            mean_life=MEAN_LIFE,
            parent_kill_every=PARENT_KILL_EVERY,
            echo=ECHO,
        )
        out = farm.run(messages, order)
        st = out.stats
        assert out.errors == []
        check_database_health(target)
        assert sorted(out.confirmations) == sorted(messages), "messages never confirmed"
        wrong = [k for k, text in out.plaintexts.items() if text != plaintext(*k)]
        assert wrong == [], f"wrong plaintexts: {wrong[:10]}"

        # the application handled every message exactly once, with the right plaintext
        if mode == "inbox":
            rows = app_rows(target.engine, target.app, "app_log")
            assert server.inbox_pending() == []
        else:
            rows = app_rows(target.engine, target.store, "app_messages")
        handled = Counter((sid, idx) for sid, idx, _ in rows)
        missing = sorted(set(messages) - set(handled))
        twice = sorted(k for k, n in handled.items() if n > 1)
        assert missing == [], f"{len(missing)} messages never handled: {missing[:10]}"
        assert twice == [], f"{len(twice)} messages handled more than once: {twice[:10]}"
        assert len(rows) == total
        assert all(text == plaintext(sid, idx) for sid, idx, text in rows)

        # the run did what it is meant to: kills at every point, redeliveries, restarts
        for point in KILL_POINTS[mode] + (["recovery"] if mode == "inbox" else []):
            assert st.self_kills[point] > 0, f"no worker died at {point}: {st.self_kills}"
        assert st.parent_kills > 0 and st.redeliveries > 0 and st.duplicates_confirmed > 0
        assert st.echoes > 0
        assert set(st.exit_codes) <= {-9}, st.exit_codes

        check_sessions_both_ways(server, senders)
    finally:
        server.close()
    with capsys.disabled():
        kills = ", ".join(f"{k} {n}" for k, n in sorted(st.self_kills.items()))
        print(
            f"\n[stress] {target.engine}/{mode}: {total} messages, {SESSIONS} sessions, "
            f"{WORKERS} workers: {st.seconds:.1f}s, {total / st.seconds:.0f} msg/s; "
            f"{sum(st.self_kills.values())} self-kills ({kills}), {st.parent_kills} parent "
            f"kills, {st.restarts} restarts, {st.redeliveries} redeliveries, "
            f"{st.echoes} messages delivered to two workers at once, "
            f"{st.duplicates_confirmed} DuplicateMessage on redelivery, "
            f"{st.pending_handled_at_start} inbox items handled on restart, "
            f"{st.dedup_hits} plaintexts the application's log had already"
        )
