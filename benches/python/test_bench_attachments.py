"""Throughput of attachment / media encryption through the public API (includes FFI cost).

Run: pytest benches/python/test_bench_attachments.py --benchmark-enable
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from textsecure import attachments as att

SIZES = {"1MiB": 1 << 20, "256MiB": 256 << 20}
_cache: dict[int, bytes] = {}


def _data(n: int) -> bytes:
    if n not in _cache:
        _cache[n] = os.urandom(n)
    return _cache[n]


def _run(benchmark: Any, fn: Callable[[], object], n: int) -> None:
    rounds = 20 if n <= 1 << 20 else 2
    benchmark.extra_info["bytes"] = n
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:
        benchmark.extra_info["MB/s"] = n / benchmark.stats.stats.mean / 1e6


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_signal_encrypt(benchmark: Any, size: str) -> None:
    pt = _data(SIZES[size])
    key = bytes(64)
    _run(benchmark, lambda: att.encrypt(pt, key=key), len(pt))


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_signal_decrypt(benchmark: Any, size: str) -> None:
    pt = _data(SIZES[size])
    a = att.encrypt(pt)
    _run(
        benchmark,
        lambda: att.decrypt(a.blob, key=a.key, digest=a.digest, size=len(pt)),
        len(a.blob),
    )


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_whatsapp_encrypt(benchmark: Any, size: str) -> None:
    pt = _data(SIZES[size])
    mk = bytes(32)
    _run(benchmark, lambda: att.encrypt_whatsapp(pt, "video", media_key=mk), len(pt))


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_whatsapp_decrypt(benchmark: Any, size: str) -> None:
    pt = _data(SIZES[size])
    m = att.encrypt_whatsapp(pt, "video")
    _run(benchmark, lambda: att.decrypt_whatsapp(m.blob, "video", m.media_key), len(m.blob))


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_whatsapp_decrypt_with_hashes(benchmark: Any, size: str) -> None:
    pt = _data(SIZES[size])
    m = att.encrypt_whatsapp(pt, "video")
    _run(
        benchmark,
        lambda: att.decrypt_whatsapp(
            m.blob,
            "video",
            m.media_key,
            file_sha256=m.file_sha256,
            file_enc_sha256=m.file_enc_sha256,
        ),
        len(m.blob),
    )
