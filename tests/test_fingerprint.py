"""Safety numbers (``textsecure.Fingerprint``): libsignal's vectors, the shared vectors made
with libsignal-client 0.103.0, the API's argument handling and hostile scannable input.

Live cross-checks against libsignal-client are in tests/interop/test_interop_fingerprint_sealed.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import textsecure as ts
from support import REPO_ROOT, require_shared
from textsecure import errors

KAT = REPO_ROOT / "tests" / "vectors" / "libsignal_kat.json"


def _kat(name: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads(Path(KAT).read_text())
    cases: list[dict[str, Any]] = data[name]
    return cases


def _key(hex_or_b64: str) -> ts.IdentityKey:
    try:
        raw = bytes.fromhex(hex_or_b64)
    except ValueError:
        raw = base64.b64decode(hex_or_b64)
    return ts.IdentityKey.from_bytes(raw)


def _pair() -> tuple[ts.IdentityKey, ts.IdentityKey]:
    return ts.IdentityKeyPair.generate().public_key, ts.IdentityKeyPair.generate().public_key


def _reference_half(key: bytes, ident: bytes, iterations: int) -> bytes:
    """Independent hashlib model of one side's hash (protocol-notes §8)."""
    h = hashlib.sha512(b"\x00\x00" + key + ident + key).digest()
    for _ in range(iterations - 1):
        h = hashlib.sha512(h + key).digest()
    return h


def _reference_display(h: bytes) -> str:
    return "".join(f"{int.from_bytes(h[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5))


@pytest.mark.parametrize("case", _kat("fingerprint"), ids=lambda c: f"v{c['version']}")
def test_libsignal_vectors(case: dict[str, Any]) -> None:
    alice, bob = _key(case["alice_identity"]), _key(case["bob_identity"])
    a_id = case["alice_stable_id_text"].encode()
    b_id = case["bob_stable_id_text"].encode()
    fa = ts.Fingerprint.create(
        local_id=a_id,
        local_key=alice,
        remote_id=b_id,
        remote_key=bob,
        version=case["version"],
        iterations=case["iterations"],
    )
    fb = ts.Fingerprint.create(
        local_id=b_id,
        local_key=bob,
        remote_id=a_id,
        remote_key=alice,
        version=case["version"],
        iterations=case["iterations"],
    )
    assert fa.displayable == case["displayable"]
    assert fb.displayable == case["displayable"]
    assert fa.scannable == bytes.fromhex(case["alice_scannable"])
    assert fb.scannable == bytes.fromhex(case["bob_scannable"])
    assert fa.version == case["version"]
    assert fa.matches(fb.scannable) and fb.matches(fa.scannable)
    assert not fa.matches(fa.scannable)


@pytest.mark.parametrize("case", _kat("fingerprint_encoding"), ids=lambda c: f"v{c['version']}")
def test_libsignal_scannable_layout(case: dict[str, Any]) -> None:
    """libsignal's encoding vector: version, then local and remote as nested 32-byte fields.
    Our scannable has the same layout with our two hashes in those places."""
    expected = bytes.fromhex(case["scannable"])
    local, remote = bytes.fromhex(case["local"]), bytes.fromhex(case["remote"])
    a, b = _pair()
    fp = ts.Fingerprint.create(
        local_id=b"x", local_key=a, remote_id=b"y", remote_key=b, version=case["version"]
    )
    mine = fp.scannable
    assert len(mine) == len(expected)
    templ = expected.replace(local, b"L" * 32).replace(remote, b"R" * 32)
    ours = mine[:6] + b"L" * 32 + mine[38:42] + b"R" * 32
    assert ours == templ
    assert mine[6:38] == _reference_half(bytes(a), b"x", 5200)[:32]
    assert mine[42:74] == _reference_half(bytes(b), b"y", 5200)[:32]


def _shared_cases() -> list[dict[str, Any]]:
    path = require_shared("vectors", "fingerprint.json")
    cases: list[dict[str, Any]] = json.loads(path.read_text())["cases"]
    return cases


@pytest.mark.needs_shared
def test_shared_vectors_libsignal_0103() -> None:
    cases = _shared_cases()
    assert len(cases) >= 5
    for c in cases:
        args: dict[str, Any] = {
            "version": c["version"],
            "iterations": c["iterations"],
        }
        local_id, remote_id = base64.b64decode(c["local_id"]), base64.b64decode(c["remote_id"])
        lk, rk = _key(c["local_identity_key"]), _key(c["remote_identity_key"])
        mine = ts.Fingerprint.create(
            local_id=local_id, local_key=lk, remote_id=remote_id, remote_key=rk, **args
        )
        theirs = ts.Fingerprint.create(
            local_id=remote_id, local_key=rk, remote_id=local_id, remote_key=lk, **args
        )
        label = c.get("label", "")
        assert mine.displayable == c["displayable"], label
        assert theirs.displayable == c["displayable"], label
        assert mine.scannable == base64.b64decode(c["scannable"]), label
        assert theirs.scannable == base64.b64decode(c["remote_scannable"]), label
        assert mine.matches(base64.b64decode(c["remote_scannable"])), label


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("iterations", [2, 3, 1024, 5200])
def test_matches_hashlib_model(version: int, iterations: int) -> None:
    a, b = _pair()
    fp = ts.Fingerprint.create(
        local_id=b"\x00\x01uuid",
        local_key=a,
        remote_id=b"",
        remote_key=bytes(b),
        version=version,
        iterations=iterations,
    )
    ha = _reference_half(bytes(a), b"\x00\x01uuid", iterations)
    hb = _reference_half(bytes(b), b"", iterations)
    da, db = _reference_display(ha), _reference_display(hb)
    assert fp.displayable == (da + db if da <= db else db + da)
    assert len(fp.displayable) == 60 and fp.displayable.isdigit()
    assert str(fp) == fp.displayable
    assert fp.scannable[:2] == bytes([0x08, version])


def test_max_iterations_and_gil_released() -> None:
    """1,000,000 iterations is allowed; the hashing runs without the GIL, so another
    Python thread makes progress meanwhile."""
    a, b = _pair()
    ticks = 0
    done = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    try:
        fp = ts.Fingerprint.create(
            local_id=b"a", local_key=a, remote_id=b"b", remote_key=b, iterations=1_000_000
        )
    finally:
        done.set()
        t.join()
    assert len(fp.displayable) == 60
    assert ticks > 5


def test_argument_errors() -> None:
    a, b = _pair()
    for it in (0, 1, 1_000_001):
        with pytest.raises(errors.InvalidArgument):
            ts.Fingerprint.create(
                local_id=b"a", local_key=a, remote_id=b"b", remote_key=b, iterations=it
            )
    for v in (0, 3):
        with pytest.raises(errors.InvalidArgument):
            ts.Fingerprint.create(
                local_id=b"a", local_key=a, remote_id=b"b", remote_key=b, version=v
            )
    with pytest.raises(errors.InvalidArgument):
        ts.Fingerprint.create(
            local_id=b"a", local_key=a, remote_id=b"b", remote_key=b, iterations=-1
        )
    with pytest.raises(errors.InvalidKey):
        ts.Fingerprint.create(local_id=b"a", local_key=b"\x05" * 3, remote_id=b"b", remote_key=b)
    with pytest.raises(TypeError):
        ts.Fingerprint.create(local_id="a", local_key=a, remote_id=b"b", remote_key=b)  # type: ignore[arg-type]
    # bytes-like ids and keys
    f1 = ts.Fingerprint.create(
        local_id=bytearray(b"a"),
        local_key=memoryview(bytes(a)),
        remote_id=memoryview(b"b"),
        remote_key=bytearray(bytes(b)),
    )
    f2 = ts.Fingerprint.create(local_id=b"a", local_key=a, remote_id=b"b", remote_key=b)
    assert f1.displayable == f2.displayable and f1.scannable == f2.scannable


def test_matches_rejects_other_identities_and_versions() -> None:
    a, b = _pair()
    c, _ = _pair()
    mine = ts.Fingerprint.create(local_id=b"a", local_key=a, remote_id=b"b", remote_key=b)
    theirs = ts.Fingerprint.create(local_id=b"b", local_key=b, remote_id=b"a", remote_key=a)
    assert mine.matches(theirs.scannable)
    assert mine.matches(bytearray(theirs.scannable))
    # A MITM key, or a different id, gives a different safety number.
    for other in (
        ts.Fingerprint.create(local_id=b"b", local_key=c, remote_id=b"a", remote_key=a),
        ts.Fingerprint.create(local_id=b"b", local_key=b, remote_id=b"a", remote_key=c),
        ts.Fingerprint.create(local_id=b"B", local_key=b, remote_id=b"a", remote_key=a),
    ):
        assert not mine.matches(other.scannable)
        assert other.displayable != mine.displayable
    v1 = ts.Fingerprint.create(local_id=b"b", local_key=b, remote_id=b"a", remote_key=a, version=1)
    assert v1.displayable == mine.displayable  # the hash does not depend on the version
    with pytest.raises(errors.FingerprintVersionMismatch) as ei:
        mine.matches(v1.scannable)
    assert (ei.value.theirs, ei.value.ours) == (1, 2)


def test_hostile_scannable() -> None:
    """Truncations and bit flips of a scannable encoding: never a crash, never a false match
    (an error from textsecure.errors, or False)."""
    a, b = _pair()
    mine = ts.Fingerprint.create(local_id=b"a", local_key=a, remote_id=b"b", remote_key=b)
    good = ts.Fingerprint.create(local_id=b"b", local_key=b, remote_id=b"a", remote_key=a)
    data = good.scannable
    for n in range(len(data)):
        try:
            assert not mine.matches(data[:n])
        except errors.TextSecureError:
            pass
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            try:
                assert not mine.matches(bytes(bad))
            except errors.TextSecureError:
                pass
    for junk in (b"", b"\xff" * 80, b"\x08\x02", data + b"\x00"):
        try:
            assert not mine.matches(junk)
        except errors.TextSecureError:
            pass
    assert mine.matches(data)
