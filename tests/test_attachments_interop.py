"""Incremental MAC, live against libsignal-client 0.103 (npm alias ``ls0103``).

Runs ``tests/interop/media_peer.mjs``; skips when Node or ``tests/interop/node_modules/ls0103``
is absent (install with ``npm install --no-save --prefix tests/interop
ls0103@npm:@signalapp/libsignal-client@0.103.0``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textsecure import attachments as att
from textsecure.errors import InvalidMessage

HERE = Path(__file__).resolve().parent / "interop"
PEER = HERE / "media_peer.mjs"
KiB, MiB = 1024, 1024 * 1024

pytestmark = pytest.mark.interop


class Peer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["node", str(PEER)],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __call__(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        assert "error" not in answer or req["op"] == "validate", answer
        return answer

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    if not (HERE / "node_modules" / "ls0103").exists():
        pytest.skip(
            "tests/interop/node_modules/ls0103 absent: npm install --no-save --prefix "
            "tests/interop ls0103@npm:@signalapp/libsignal-client@0.103.0"
        )
    if shutil.which("node") is None:
        pytest.skip("node not found")
    p = Peer()
    yield p
    p.close()


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def gen(size: int, mul: int = 31, add: int = 7) -> bytes:
    period = bytes((i * mul + add) & 0xFF for i in range(256))
    return (period * (size // 256 + 1))[:size]


KEY = bytes(range(100, 132))
# Around every chunk-size boundary of libsignal's rule (16 MiB and 512 MiB) and beyond.
RULE_SIZES = [0, 1, 64 * KiB, 16 * MiB - 1, 16 * MiB, 16 * MiB + 1, 100 * MiB, 256 * MiB]
RULE_SIZES += [512 * MiB - 257, 512 * MiB - 256, 512 * MiB - 1, 512 * MiB, 2**31 - 1]


def test_chunk_size_rule_matches(peer: Peer) -> None:
    for n in RULE_SIZES:
        from_libsignal = peer(op="chunk_size", data_size=n)["chunk_size"]
        assert att.libsignal_chunk_size(n) == from_libsignal, n


@pytest.mark.parametrize(
    ("size", "chunk"),
    [
        (0, 64 * KiB),
        (1, 64 * KiB),
        (64 * KiB - 1, 64 * KiB),
        (64 * KiB, 64 * KiB),
        (64 * KiB + 1, 64 * KiB),
        (2 * 64 * KiB, 64 * KiB),
        (1000, 32),
        (1024, 32),
        (16 * MiB - 1, None),
        (16 * MiB, None),
        (16 * MiB + 1, None),
    ],
)
def test_digests_match_libsignal(peer: Peer, size: int, chunk: int | None) -> None:
    data = gen(size)
    theirs = peer(op="digest", key=b64(KEY), chunk_size=chunk, gen=dict(size=size, mul=31, add=7))
    used = theirs["chunk_size"]
    if chunk is None:
        assert used == att.libsignal_chunk_size(size)
    ours = att.incremental_mac(KEY, data, used)
    assert base64.b64decode(theirs["digest"]) == ours
    # libsignal validates ours, releasing everything.
    v = peer(
        op="validate",
        key=b64(KEY),
        chunk_size=used,
        digest=b64(ours),
        gen=dict(size=size, mul=31, add=7),
        piece=10_007,
    )
    assert v["ok"] and v["released"] == size
    assert base64.b64decode(v["released_sha256"]) == hashlib.sha256(data).digest()


def test_real_attachment_validated_by_libsignal(peer: Peer) -> None:
    pt = gen(700_000, 13, 1)
    a = att.encrypt(pt)
    theirs = peer(op="digest", key=b64(a.key[32:]), chunk_size=a.chunk_size, data=b64(a.blob))
    assert base64.b64decode(theirs["digest"]) == a.incremental_mac
    v = peer(
        op="validate",
        key=b64(a.key[32:]),
        chunk_size=a.chunk_size,
        digest=b64(a.incremental_mac),
        data=b64(a.blob),
    )
    assert v["ok"] and v["released"] == len(a.blob)
    # And libsignal's digest of our blob validates in our streaming decryptor.
    out = b"".join(
        att.decrypt_stream(
            a.blob,
            key=a.key,
            digest=a.digest,
            size=len(pt),
            incremental_mac=base64.b64decode(theirs["digest"]),
            chunk_size=a.chunk_size,
        )
    )
    assert out == pt


def test_tampered_data_both_sides_stop_at_the_same_chunk(peer: Peer) -> None:
    chunk = 64 * KiB
    pt = gen(5 * chunk + 500, 7, 3)
    a = att.encrypt(pt, chunk_size=chunk)
    bad = bytearray(a.blob)
    bad[3 * chunk + 10] ^= 1
    v = peer(
        op="validate",
        key=b64(a.key[32:]),
        chunk_size=chunk,
        digest=b64(a.incremental_mac),
        data=b64(bytes(bad)),
        piece=chunk,
    )
    assert not v["ok"]
    assert v["released"] == 3 * chunk  # libsignal released the three verified chunks
    released: list[bytes] = []
    with pytest.raises(InvalidMessage):
        for piece in att.decrypt_stream(
            bytes(bad),
            key=a.key,
            digest=a.digest,
            size=len(pt),
            incremental_mac=a.incremental_mac,
            chunk_size=chunk,
        ):
            released.append(piece)
    got = b"".join(released)
    # Ours released the plaintext of those same chunks (minus the IV, block aligned).
    assert 3 * chunk - 16 - 16 <= len(got) <= 3 * chunk - 16
    assert got == pt[: len(got)]
