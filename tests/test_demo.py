"""`make demo` runs end to end and shows what it claims."""

from __future__ import annotations

import subprocess
import sys

from textsecure import demo


def test_demo_conversation_output() -> None:
    lines: list[str] = []
    demo.run(lines.append)
    text = "\n".join(lines)
    assert "X3DH (session version 3)" in text and "PQXDH (session version 4" in text
    assert sum("PREKEY  v3" in line for line in lines) == 2
    assert sum("PREKEY  v4" in line for line in lines) >= 2
    assert sum("WHISPER v4" in line for line in lines) == 5
    assert sum("(SPQR " in line for line in lines) == 7  # every message of the v4 conversation
    assert text.count("rejected as a duplicate") == 2
    assert "bob decrypted the picture" in text and "one flipped bit is rejected" in text
    assert sum("-> group SENDERKEY" in line for line in lines) == 3
    assert "sealed sender v1" in text and "decrypts: A secret from someone" in text
    views = [
        line.split(":", 1)[1].split("(")[0].strip()
        for line in lines
        if line.startswith("safety number (")
    ]
    assert len(views) == 2 and views[0] == views[1] and len(views[0].replace(" ", "")) == 60


def test_cli_demo_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "textsecure", "demo"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "WhatsApp image" in result.stdout
