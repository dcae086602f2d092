"""Many processes, one account: 8 worker processes decrypt 40,000 messages of 200 sessions
(v3 and v4 mixed) through one durable store (a SQLite file / a PostgreSQL database), the
messages of each session handed to random workers and shuffled within a window. Every
message must come out exactly once with the right plaintext, no DuplicateMessage, no error,
and afterwards every session works both ways with one unforked session state."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from stress.common import (
    Farm,
    Target,
    check_sessions_both_ways,
    delivery_order,
    make_senders,
    max_displacement,
    plaintext,
    timed,
)

WORKERS = 8
SESSIONS = 200
PER_SESSION = 200


def test_workers_share_one_account(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions, per_session = SESSIONS, PER_SESSION
    rng = random.Random(20240611)
    server = target.open()
    try:
        with timed() as setup:
            senders = make_senders(server, sessions, per_session)
        messages = {(s.sid, i): m for s in senders for i, m in enumerate(s.messages)}
        order = delivery_order(sessions, per_session, rng)
        total = len(order)
        assert total == sessions * per_session == len(messages)
        farm = Farm(
            target,
            mode="plain",
            workers=WORKERS,
            seed=rng.randrange(2**32),
            log_path=tmp_path / "workers.log",
        )
        out = farm.run(messages, order)
        assert out.errors == []
        st = out.stats
        assert st.deaths == 0 and st.redeliveries == 0
        assert sorted(out.plaintexts) == sorted(messages), "messages lost"
        wrong = [k for k, text in out.plaintexts.items() if text != plaintext(*k)]
        assert wrong == [], f"wrong plaintexts: {wrong[:10]}"
        assert set(out.confirmations.values()) == {1}
        # the run did what it is meant to: workers met on sessions, chains went out of order
        assert st.shared_session_deliveries > total // 10
        assert st.out_of_order > total // 20
        with timed() as both_ways:
            check_sessions_both_ways(server, senders)
    finally:
        server.close()
    with capsys.disabled():
        print(
            f"\n[stress] {target.engine}: {total} messages, {sessions} sessions "
            f"({sessions // 2} v3 + {sessions // 2} v4), {WORKERS} worker processes: "
            f"{st.seconds:.1f}s, {total / st.seconds:.0f} msg/s "
            f"(setup {setup[0]:.1f}s, both-ways check {both_ways[0]:.1f}s, "
            f"max in-session displacement {max_displacement(order)}, "
            f"{st.shared_session_deliveries} deliveries while another worker held the session, "
            f"{st.out_of_order} decrypted after a later message of their chain)"
        )
