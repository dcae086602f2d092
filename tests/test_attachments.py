"""Signal attachments and WhatsApp media: known answers, round trips, tampering, streaming."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from textsecure import _native
from textsecure import attachments as att
from textsecure.errors import InvalidArgument, InvalidKey, InvalidMessage

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
LIBSIGNAL_KEY = bytes.fromhex("a83481457efecc69ad1342e21d9c0297f71debbf5c9304b4c1b2e433c1a78f98")


def data(n: int, seed: int = 0) -> bytes:
    return bytes((i * 31 + 7 + seed) & 0xFF for i in range(n))


def aes_cbc_decrypt_raw(key: bytes, iv: bytes, ct: bytes) -> bytes:
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return d.update(ct) + d.finalize()


def hm(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def ref_incremental(key: bytes, blob: bytes, chunk: int) -> bytes:
    """The incremental MAC from its definition (HMAC of every prefix at each boundary)."""
    out = [hm(key, blob[:end]) for end in range(chunk, len(blob) + 1, chunk)]
    out.append(hm(key, blob))
    return b"".join(out)


# --- padding ----------------------------------------------------------------------------------


def exact_bucket(size: int) -> int:
    """max(541, floor(1.05^ceil(log_1.05 size))) in exact rational arithmetic, capped like
    Signal-Android's .toInt()."""
    p = Fraction(1)
    while p < size:
        p *= Fraction(21, 20)
    return max(541, min(p.numerator // p.denominator, 2**31 - 1))


def test_padding_at_every_bucket_boundary() -> None:
    p = Fraction(1)
    checked = 0
    while True:
        bucket = p.numerator // p.denominator
        if bucket > 2**31:
            break
        for size in (bucket - 1, bucket, bucket + 1):
            if size >= 0:
                want = max(size, exact_bucket(size)) if size > 0 else 541
                assert att.padded_size(size) == want, size
                checked += 1
        p *= Fraction(21, 20)
    assert checked > 1000
    assert [att.padded_size(s) for s in (0, 1, 541, 542, 568, 569)] == [
        541,
        541,
        541,
        568,
        568,
        596,
    ]
    # Beyond Android's int range nothing is padded.
    assert att.padded_size(2**31 - 1) == 2**31 - 1
    assert att.padded_size(2**31) == 2**31
    with pytest.raises(InvalidArgument):
        att.padded_size(-1)


# --- incremental MAC --------------------------------------------------------------------------


def test_libsignal_incremental_mac_vector() -> None:
    msg = b"this is a test input to the incremental mac stream"
    assert att.incremental_mac(LIBSIGNAL_KEY, msg, 32).hex() == (
        "84892f70600e549fb72879667a9d96a273f144b698ff9ef5a76062a56061a909"
        "884f6d9f42918a9e476ed518c4ac8f714bd33f045152ae049877fd3d1b0db25a"
    )
    msg = "this is a test input to the incremental mac stream 👋".encode()
    assert att.incremental_mac(LIBSIGNAL_KEY, msg, 32).hex() == (
        "84892f70600e549fb72879667a9d96a273f144b698ff9ef5a76062a56061a909"
        "ac028f107e1306e1ec8d17c989fa3430d88d7b294d00828a65a2acb3efa31a1f"
    )


def libsignal_chunk_rule(n: int) -> int:
    if n < 256 * 64 * 1024:
        return 64 * 1024
    if n < 256 * 2 * 1024 * 1024:
        return -(-n // 256)
    return 2 * 1024 * 1024


@pytest.mark.parametrize("size", [0, 2**20, 16 * 2**20 - 10**6, 16 * 2**20, 100 * 2**20, 2**31])
def test_chunk_size_rule(size: int) -> None:
    blob = att.blob_size(size)
    assert att.incremental_chunk_size(size) == libsignal_chunk_rule(blob)
    assert len(att.incremental_mac(b"k", bytes(1000), 64)) == 32 * (1000 // 64 + 1)


# --- Signal attachments -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 540, 541, 542, 4096, 70_000, 200_001])
def test_signal_layout_and_roundtrip(n: int) -> None:
    pt = data(n)
    a = att.encrypt(pt)
    assert len(a.key) == 64 and a.plaintext_size == n
    blob = a.blob
    padded = att.padded_size(n)
    assert len(blob) == a.blob_size == att.blob_size(n) == 16 + (padded // 16 + 1) * 16 + 32
    body, mac = blob[:-32], blob[-32:]
    assert mac == hm(a.key[32:], body)
    assert a.digest == hashlib.sha256(blob).digest()
    raw = aes_cbc_decrypt_raw(a.key[:32], blob[:16], body[16:])
    pad = raw[-1]
    assert raw[-pad:] == bytes([pad]) * pad
    assert raw[: len(raw) - pad] == pt + bytes(padded - n)
    assert a.chunk_size == att.incremental_chunk_size(n)
    assert a.incremental_mac == ref_incremental(a.key[32:], blob, a.chunk_size)
    assert att.decrypt(blob, key=a.key, digest=a.digest, size=n) == pt
    got = att.decrypt(
        blob,
        key=a.key,
        digest=a.digest,
        size=n,
        incremental_mac=a.incremental_mac,
        chunk_size=a.chunk_size,
    )
    assert got == pt


def test_fixed_key_and_iv_are_deterministic() -> None:
    key, iv = bytes(range(64)), bytes(16)
    a = att.encrypt(b"abc", key=key, iv=iv)
    b = att.encrypt(bytearray(b"abc"), key=memoryview(key), iv=iv)
    assert a.blob == b.blob and a.digest == b.digest
    with pytest.raises(InvalidKey):
        att.encrypt(b"abc", key=bytes(63))
    with pytest.raises(InvalidKey):
        att.decrypt(a.blob, key=bytes(32), digest=a.digest, size=3)


def _flip(b: bytes, i: int) -> bytes:
    x = bytearray(b)
    x[i] ^= 0x01
    return bytes(x)


def test_signal_tampering_anywhere_is_detected() -> None:
    pt = data(5000)
    a = att.encrypt(pt)
    n = len(a.blob)
    positions = [0, 15, 16, 17, 31, 32, 100, n // 2, n - 49, n - 48, n - 33, n - 32, n - 1]
    positions += list(range(16, n - 32, 16))  # the first byte of every ciphertext block
    for i in positions:
        with pytest.raises(InvalidMessage):
            att.decrypt(_flip(a.blob, i), key=a.key, digest=a.digest, size=5000)
        # Even without the digest the MAC catches it.
        with pytest.raises(InvalidMessage):
            att.decrypt(_flip(a.blob, i), key=a.key, digest=None, size=5000)
    cases = {
        "truncated by one": a.blob[:-1],
        "truncated by a block": a.blob[:-48] + a.blob[-32:],
        "extended": a.blob + bytes(16),
        "empty": b"",
    }
    for name, bad in cases.items():
        with pytest.raises(InvalidMessage):
            att.decrypt(bad, key=a.key, digest=None, size=5000)
        assert name
    with pytest.raises(InvalidMessage):
        att.decrypt(a.blob, key=a.key, digest=_flip(a.digest, 3), size=5000)
    with pytest.raises(InvalidMessage):
        att.decrypt(a.blob, key=a.key, digest=a.digest, size=att.padded_size(5000) + 1)
    with pytest.raises(InvalidMessage):
        att.decrypt(a.blob, key=_flip(a.key, 40), digest=a.digest, size=5000)
    with pytest.raises(InvalidMessage):
        att.decrypt(
            a.blob,
            key=a.key,
            digest=a.digest,
            size=5000,
            incremental_mac=_flip(a.incremental_mac, 0),
            chunk_size=a.chunk_size,
        )


def _pieces(b: bytes, step: int) -> Iterator[bytes]:
    for i in range(0, len(b), step):
        yield b[i : i + step]


def test_streaming_decrypt_releases_only_verified_chunks() -> None:
    chunk = 64 * 1024
    pt = data(10 * chunk + 1234)
    a = att.encrypt(pt, chunk_size=chunk)
    assert a.chunk_size == chunk
    # Clean run: chunks arrive as they verify.
    out = list(
        att.decrypt_stream(
            _pieces(a.blob, 10_000),
            key=a.key,
            digest=a.digest,
            size=len(pt),
            incremental_mac=a.incremental_mac,
            chunk_size=chunk,
        )
    )
    assert b"".join(out) == pt and len(out) > 5
    # Flip one byte in blob chunk 4: exactly the plaintext before that chunk comes out.
    for chunk_index in (0, 4, 10):
        i = chunk_index * chunk + 77
        bad = _flip(a.blob, i)
        released: list[bytes] = []
        with pytest.raises(InvalidMessage):
            for piece in att.decrypt_stream(
                _pieces(bad, 9_999),
                key=a.key,
                digest=a.digest,
                size=len(pt),
                incremental_mac=a.incremental_mac,
                chunk_size=chunk,
            ):
                released.append(piece)
        got = b"".join(released)
        assert len(got) + 16 <= max(chunk_index * chunk, 16)
        assert len(got) >= chunk_index * chunk - 16 - 2 * chunk
        assert got == pt[: len(got)]
    # Tampering in the MAC (last chunk): everything before the last chunk may come out, nothing
    # after it, and the stream raises.
    released = []
    with pytest.raises(InvalidMessage):
        for piece in att.decrypt_stream(
            _flip(a.blob, len(a.blob) - 1),
            key=a.key,
            digest=a.digest,
            size=len(pt),
            incremental_mac=a.incremental_mac,
            chunk_size=chunk,
        ):
            released.append(piece)
    assert len(b"".join(released)) <= 10 * chunk


def test_streaming_decrypt_without_incremental_mac_verifies_first() -> None:
    pt = data(300_000)
    a = att.encrypt(pt)
    got = b"".join(att.decrypt_stream(iter([a.blob]), key=a.key, digest=a.digest, size=len(pt)))
    assert got == pt
    released: list[bytes] = []
    with pytest.raises(InvalidMessage):
        for piece in att.decrypt_stream(
            _flip(a.blob, len(a.blob) - 40), key=a.key, digest=a.digest, size=len(pt)
        ):
            released.append(piece)
    assert released == []


@pytest.mark.parametrize("kind", ["bytes", "path", "file", "iter"])
def test_streaming_encrypt_sources(kind: str, tmp_path: Path) -> None:
    pt = data(3 * 2**20 + 5)
    src: Any
    if kind == "bytes":
        src = pt
    elif kind == "path":
        src = tmp_path / "in"
        src.write_bytes(pt)
    elif kind == "file":
        src = io.BytesIO(pt)
    else:
        src = _pieces(pt, 77_777)
    stream = att.encrypt_stream(src, size=len(pt) if kind == "iter" else None)
    with pytest.raises(InvalidArgument):
        _ = stream.info
    blob = b"".join(stream)
    info = stream.info
    assert info.plaintext_size == len(pt)
    assert info.digest == hashlib.sha256(blob).digest()
    assert info.chunk_size == att.incremental_chunk_size(len(pt))
    assert info.incremental_mac == ref_incremental(info.key[32:], blob, info.chunk_size)
    assert att.decrypt(blob, key=info.key, digest=info.digest, size=len(pt)) == pt


def test_file_api_paths_and_file_objects(tmp_path: Path) -> None:
    pt = data(2 * 2**20 + 99)
    (tmp_path / "p").write_bytes(pt)
    info = att.encrypt_file(tmp_path / "p", tmp_path / "c")
    blob = (tmp_path / "c").read_bytes()
    assert len(blob) == info.blob_size and info.digest == hashlib.sha256(blob).digest()
    att.decrypt_file(
        str(tmp_path / "c"), tmp_path / "d", key=info.key, digest=info.digest, size=len(pt)
    )
    assert (tmp_path / "d").read_bytes() == pt
    sink = io.BytesIO()
    att.decrypt_file(
        io.BytesIO(blob),
        sink,
        key=info.key,
        digest=info.digest,
        size=len(pt),
        incremental_mac=info.incremental_mac,
        chunk_size=info.chunk_size,
    )
    assert sink.getvalue() == pt
    sink2 = io.BytesIO()
    info2 = att.encrypt_file(io.BytesIO(pt), sink2)
    assert att.decrypt(sink2.getvalue(), key=info2.key, digest=info2.digest, size=len(pt)) == pt
    # A tampered blob leaves no destination file and writes nothing to a file object.
    (tmp_path / "bad").write_bytes(_flip(blob, 1_000_000))
    with pytest.raises(InvalidMessage):
        att.decrypt_file(
            tmp_path / "bad", tmp_path / "out", key=info.key, digest=info.digest, size=len(pt)
        )
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "c", "d", "p"]
    sink3 = io.BytesIO()
    with pytest.raises(InvalidMessage):
        att.decrypt_file(tmp_path / "bad", sink3, key=info.key, digest=info.digest, size=len(pt))
    assert sink3.getvalue() == b""
    with pytest.raises(FileNotFoundError):
        att.encrypt_file(tmp_path / "missing", tmp_path / "x")


# --- WhatsApp media ---------------------------------------------------------------------------


def _wa_vectors() -> dict[str, Any]:
    p = SHARED / "vectors" / "whatsapp_media.json"
    if not p.exists():
        pytest.skip(f"{p} not found (shared vectors absent)")
    doc: dict[str, Any] = json.loads(p.read_text())
    return doc


def _b64(s: str) -> bytes:
    return base64.b64decode(s)


def test_whatsapp_baileys_vectors_all_types_and_sizes() -> None:
    doc = _wa_vectors()
    cases = doc["cases"]
    assert {c["media_type"] for c in cases} == set(doc["hkdf_info_by_media_type"])
    assert set(att.MEDIA_TYPES) == set(doc["hkdf_info_by_media_type"])
    assert {c["plaintext_size"] for c in cases} == {0, 1, 15, 16, 17, 1000, 65539}
    for c in cases:
        t, mk = c["media_type"], _b64(c["media_key"])
        assert att.whatsapp_hkdf_info(t) == c["hkdf_info"]
        keys = att.whatsapp_media_keys(mk, t)
        assert keys.iv + keys.cipher_key + keys.mac_key + keys.ref_key == _b64(
            c["expanded_media_key"]
        )
        rule = c["plaintext_rule"]
        pt = bytes((i * rule["mul"] + rule["add"]) % 256 for i in range(c["plaintext_size"]))
        m = att.encrypt_whatsapp(pt, t, media_key=mk)
        assert m.blob == _b64(c["enc"]), c["id"]
        assert m.blob[-10:] == _b64(c["mac"])
        assert m.file_sha256 == _b64(c["file_sha256"])
        assert m.file_enc_sha256 == _b64(c["file_enc_sha256"])
        assert m.file_length == c["file_length"]
        back = att.decrypt_whatsapp(
            _b64(c["enc"]),
            t,
            mk,
            file_sha256=_b64(c["file_sha256"]),
            file_enc_sha256=_b64(c["file_enc_sha256"]),
        )
        assert back == pt


def test_whatsapp_tampering_is_detected() -> None:
    doc = _wa_vectors()
    c = next(c for c in doc["cases"] if c["id"] == "image-1000")
    enc, mk = _b64(c["enc"]), _b64(c["media_key"])
    sha, esha = _b64(c["file_sha256"]), _b64(c["file_enc_sha256"])
    # Baileys accepts these two (see baileys_observations); we must not.
    for i in [
        0,
        1,
        15,
        16,
        len(enc) // 2,
        len(enc) - 27,
        len(enc) - 11,
        len(enc) - 10,
        len(enc) - 1,
    ]:
        with pytest.raises(InvalidMessage):
            att.decrypt_whatsapp(_flip(enc, i), "image", mk)
    for bad in (enc[:-1], enc + b"\0", enc[:-26] + enc[-10:], b""):
        with pytest.raises(InvalidMessage):
            att.decrypt_whatsapp(bad, "image", mk)
    with pytest.raises(InvalidMessage):
        att.decrypt_whatsapp(enc, "image", mk, file_sha256=_flip(sha, 0))
    with pytest.raises(InvalidMessage):
        att.decrypt_whatsapp(enc, "image", mk, file_enc_sha256=_flip(esha, 0))
    with pytest.raises(InvalidMessage):
        att.decrypt_whatsapp(enc, "video", mk)  # wrong type, wrong keys
    with pytest.raises(InvalidArgument):
        att.decrypt_whatsapp(enc, "nonsense", mk)
    with pytest.raises(InvalidKey):
        att.decrypt_whatsapp(enc, "image", mk[:31])


def test_whatsapp_streaming_and_files(tmp_path: Path) -> None:
    pt = data(3 * 2**20 + 3)
    m = att.encrypt_whatsapp(pt, "document")
    gen = att.encrypt_whatsapp_stream(_pieces(pt, 100_001), "document", media_key=m.media_key)
    parts = []
    try:
        while True:
            parts.append(next(gen))
    except StopIteration as stop:
        info = stop.value
    assert b"".join(parts) == m.blob
    assert (info.file_sha256, info.file_enc_sha256, info.file_length) == (
        m.file_sha256,
        m.file_enc_sha256,
        len(pt),
    )
    (tmp_path / "p").write_bytes(pt)
    finfo = att.encrypt_whatsapp_file(
        tmp_path / "p", tmp_path / "c", "document", media_key=m.media_key
    )
    assert (tmp_path / "c").read_bytes() == m.blob and finfo.file_sha256 == m.file_sha256
    sink = io.BytesIO()
    finfo2 = att.encrypt_whatsapp_file(io.BytesIO(pt), sink, "document", media_key=m.media_key)
    assert sink.getvalue() == m.blob and finfo2.file_enc_sha256 == m.file_enc_sha256
    n = att.decrypt_whatsapp_file(
        tmp_path / "c", tmp_path / "d", "document", m.media_key, file_sha256=m.file_sha256
    )
    assert n == len(pt) and (tmp_path / "d").read_bytes() == pt
    got = b"".join(
        att.decrypt_whatsapp_stream(
            _pieces(m.blob, 65_536), "document", m.media_key, file_enc_sha256=m.file_enc_sha256
        )
    )
    assert got == pt
    (tmp_path / "bad").write_bytes(_flip(m.blob, 12345))
    with pytest.raises(InvalidMessage):
        att.decrypt_whatsapp_file(tmp_path / "bad", tmp_path / "out", "document", m.media_key)
    assert not (tmp_path / "out").exists()
    released: list[bytes] = []
    with pytest.raises(InvalidMessage):
        for piece in att.decrypt_whatsapp_stream(tmp_path / "bad", "document", m.media_key):
            released.append(piece)
    assert released == []


# --- concurrency ------------------------------------------------------------------------------


def _longest_pause_while(fn: Any) -> tuple[float, float]:
    """Runs ``fn`` in a thread; returns (longest pause seen by this thread, duration of fn)."""
    done = threading.Event()
    t0 = time.perf_counter()
    span: list[float] = []

    def work() -> None:
        fn()
        span.append(time.perf_counter() - t0)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    last, gap = time.perf_counter(), 0.0
    while not done.is_set():
        now = time.perf_counter()
        gap = max(gap, now - last)
        last = now
    worker.join()
    return gap, span[0]


def test_crypto_runs_without_the_gil() -> None:
    """While one thread encrypts a large buffer in Rust (one call), another thread keeps running
    Python code: its longest pause is a small fraction of the call (with the GIL held it would
    be the whole call). Best of three attempts, since other processes may preempt us."""
    pt = os.urandom(96 * 2**20)
    key = os.urandom(64)
    for fn in (
        lambda: att.encrypt(pt, key=key),
        lambda: att.encrypt_whatsapp(pt, "video", media_key=key[:32]),
    ):
        results = []
        for _ in range(3):
            gap, span = _longest_pause_while(fn)
            results.append((gap, span))
            if span > 0.1 and gap < 0.25 * span:
                break
        else:
            pytest.fail(f"the calling thread was blocked: (pause, duration) = {results}")


@pytest.mark.parametrize("n", [0, 1, 17, 70_001, (4 << 20) + 5])
def test_threads_give_identical_results(n: int) -> None:
    """One thread, two threads and the automatic choice produce the same bytes and checks."""
    pt = data(n, seed=7)
    key = bytes(range(64))
    iv = bytes(16)
    ref = att.encrypt(pt, key=key, iv=iv, threads=1)
    h = hashlib.sha256(ref.blob).digest()
    assert h == ref.digest
    mk = bytes(range(32))
    wref = att.encrypt_whatsapp(pt, "document", media_key=mk, threads=1)
    for threads in (2, 8, None):
        a = att.encrypt(pt, key=key, iv=iv, threads=threads)
        assert a == ref
        assert a.blob == ref.blob
        w = att.encrypt_whatsapp(pt, "document", media_key=mk, threads=threads)
        assert w == wref
        assert w.blob == wref.blob
    for threads in (1, 2, None):

        def dec(blob: bytes, size: int = n, th: int | None = threads, **inc: Any) -> bytes:
            return att.decrypt(blob, key=key, digest=ref.digest, size=size, threads=th, **inc)

        assert dec(ref.blob) == pt
        assert dec(ref.blob, incremental_mac=ref.incremental_mac, chunk_size=ref.chunk_size) == pt
        assert dec(ref.blob, n // 2) == pt[: n // 2]
        # Up to the padded size the padding zeros are content; beyond it is an error.
        padded = att.padded_size(n)
        assert dec(ref.blob, padded) == pt + bytes(padded - n)
        with pytest.raises(InvalidMessage):
            dec(ref.blob, padded + 1)
        with pytest.raises(InvalidMessage):
            dec(ref.blob, len(ref.blob) + 1)
        bad = bytearray(ref.blob)
        bad[len(bad) // 2] ^= 1
        with pytest.raises(InvalidMessage):
            dec(bytes(bad))
        got = att.decrypt_whatsapp(
            wref.blob,
            "document",
            mk,
            file_sha256=wref.file_sha256,
            file_enc_sha256=wref.file_enc_sha256,
            threads=threads,
        )
        assert got == pt
        wbad = bytearray(wref.blob)
        wbad[len(wbad) // 3] ^= 1
        with pytest.raises(InvalidMessage):
            att.decrypt_whatsapp(bytes(wbad), "document", mk, threads=threads)
    with pytest.raises(InvalidArgument):
        att.encrypt(pt, threads=0)
    with pytest.raises(InvalidArgument):
        att.decrypt(ref.blob, key=key, digest=None, size=n, threads=0)
    with pytest.raises(InvalidArgument):
        att.encrypt_whatsapp(pt, "document", threads=0)
    with pytest.raises(InvalidArgument):
        att.decrypt_whatsapp(wref.blob, "document", mk, threads=0)


def test_threads_reach_the_native_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The output is the same for any thread count, so check the keyword is passed on."""
    seen: list[object] = []

    def spy(name: str) -> Any:
        real = getattr(_native, name)

        def wrapper(*args: Any) -> Any:
            seen.append((name, args[-1]))
            return real(*args)

        return wrapper

    for name in (
        "attachment_encrypt",
        "attachment_decrypt",
        "whatsapp_encrypt",
        "whatsapp_decrypt",
    ):
        monkeypatch.setattr(_native, name, spy(name))
    a = att.encrypt(b"x", threads=2)
    att.decrypt(a.blob, key=a.key, digest=a.digest, size=1, threads=3)
    w = att.encrypt_whatsapp(b"x", "image", threads=4)
    att.decrypt_whatsapp(w.blob, "image", w.media_key, threads=5)
    assert seen == [
        ("attachment_encrypt", 2),
        ("attachment_decrypt", 3),
        ("whatsapp_encrypt", 4),
        ("whatsapp_decrypt", 5),
    ]
