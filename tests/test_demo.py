"""`make demo` runs end to end and shows what it claims: the conversations, the group, sealed
sender, safety numbers, and a real restart (a new process continues from the SQLite file)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import textsecure as ts
from textsecure import demo


def _pid(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match is not None, f"no {pattern!r} in the output"
    return int(match.group(1))


def test_demo_conversation_output(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(lines.append, tmp_path)
    text = "\n".join(lines)
    assert "X3DH (session version 3)" in text and "PQXDH (session version 4" in text
    assert sum("PREKEY  v3" in line for line in lines) == 2
    assert sum("PREKEY  v4" in line for line in lines) == 2
    # 5 in the PQXDH conversation, the picture's pointer, 1 before and 1 after the restart
    assert sum("WHISPER v4" in line for line in lines) == 8
    assert sum("(SPQR " in line for line in lines) == 10  # every v4 message
    assert text.count("rejected as a duplicate") == 2
    assert "carol decrypted the picture" in text and "one flipped bit is rejected" in text
    assert sum("-> group SENDERKEY" in line for line in lines) == 4  # 3, and 1 before the restart
    assert "sealed sender v1" in text and "decrypts: A secret from someone" in text
    views = [
        line.split(":", 1)[1].split("(")[0].strip()
        for line in lines
        if line.startswith("safety number (")
    ]
    assert len(views) == 2 and views[0] == views[1] and len(views[0].replace(" ", "")) == 60
    assert f"opened {tmp_path / demo.DATABASE}" in text


def test_cli_demo_restarts_in_a_new_process(tmp_path: Path) -> None:
    """The real command: the conversation continues in a child process with another pid,
    which decrypts what was sent before the restart; its replies decrypt after it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "textsecure", "demo", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    lines = stdout.splitlines()
    assert _pid(r"demo process pid (\d+)", stdout) == proc.pid
    child = _pid(r"restarted: new process pid (\d+) opened " + re.escape(str(tmp_path)), stdout)
    assert child != proc.pid
    mailbox = json.loads((tmp_path / demo.MAILBOX).read_text())
    assert mailbox["continued_by"] == child and mailbox["pending"] == []

    restart = next(i for i, line in enumerate(lines) if "restarted: new process pid" in line)
    before, after = lines[:restart], lines[restart + 1 :]
    for to, v in (("bob", 3), ("carol", 4)):
        sent = demo.BEFORE_RESTART[to]
        assert any(
            line.startswith(f"alice -> {to:<5} WHISPER v{v}") and sent in line for line in before
        )
        assert not any(sent in line for line in after if "decrypted" not in line)
        assert f"  | {to} decrypted alice's v{v} message from before the restart: {sent}" in after
        assert f"alice decrypted {to}'s reply from pid {child}: {demo.AFTER_RESTART[to]}" in after
        group = demo.BEFORE_RESTART["group"]
        assert f"  | {to} decrypted alice's group message from before the restart: {group}" in after
    assert f"process pid {child} exited (rc 0)" in after
    assert after.index(f"process pid {child} exited (rc 0)") < next(
        i for i, line in enumerate(after) if line.startswith("alice decrypted bob's reply")
    )

    # A third process (this one) opens the same file: the sessions go on in both directions.
    path = tmp_path / demo.DATABASE
    assert ts.SQLiteStore.list_accounts(path) == ["alice", "bob", "carol"]
    stores = {n: ts.SQLiteStore(path, account=n) for n in ("alice", "bob", "carol")}
    try:
        for peer, version in (("bob", 3), ("carol", 4)):
            record = stores["alice"].session(demo.ADDRESSES[peer])
            assert record is not None and record.version == version
            to_peer = ts.SessionCipher(stores["alice"], demo.ADDRESSES[peer])
            to_alice = ts.SessionCipher(stores[peer], demo.ADDRESSES["alice"])
            assert to_alice.decrypt(to_peer.encrypt(b"third process")) == b"third process"
            assert to_peer.decrypt(to_alice.encrypt(b"still in sync")) == b"still in sync"
    finally:
        for store in stores.values():
            store.close()


def test_cli_demo_default_directory_is_temporary() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "textsecure", "demo"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "WhatsApp image" in result.stdout and "restarted: new process pid" in result.stdout
    match = re.search(r"^state: (\S+) \(SQLite", result.stdout, re.MULTILINE)
    assert match is not None
    assert not Path(match.group(1)).parent.exists()  # removed afterwards


def test_demo_refuses_a_used_directory(tmp_path: Path) -> None:
    (tmp_path / demo.DATABASE).write_bytes(b"")
    with pytest.raises(FileExistsError):
        demo.run(lambda _: None, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "textsecure", "demo", "--continue", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "run the demo" in result.stderr
