"""Shared timing code of the Python workers (standard library only: it runs in .venv and in
benches/peers/.venv-peers alike).

A worker describes each workload as a ``Workload``: ``make_batch(n)`` prepares what ``n``
operations need (bundles, messages to decrypt; not timed) and returns ``run``, a callable that
performs the ``n`` operations (timed), or ``(run, cleanup)``. ``verify()`` exercises the same
code end to end (encrypt, then decrypt and compare with the plaintext) before anything is
timed; if it raises, the workload's row carries the reason instead of a time. For workloads
with ``expect`` set, every timed ``run()`` must return that value (the last plaintext it
decrypted), so a timed loop that stopped decrypting correctly cannot report a time.

Timing: the batch size ``n`` is calibrated so that one repetition takes about BENCH_BUDGET
seconds, then BENCH_REPS repetitions are timed with ``time.perf_counter``; the result is the
median per-operation time. The worker prints one JSON line on stdout; logs go to stderr.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PAYLOAD = b"\x42" * 100  # every workload sends 100-byte messages

Cleanup = Callable[[], None] | None


@dataclass(frozen=True)
class Config:
    budget: float  # seconds per timed repetition
    reps: int  # timed repetitions per workload
    max_n: int  # operations per repetition, at most

    @staticmethod
    def from_env() -> Config:
        quick = os.environ.get("BENCH_QUICK") == "1"
        return Config(
            budget=float(os.environ.get("BENCH_BUDGET", "0.02" if quick else "0.15")),
            reps=int(os.environ.get("BENCH_REPS", "3" if quick else "5")),
            max_n=int(os.environ.get("BENCH_MAX_N", "2000" if quick else "20000")),
        )


@dataclass
class Workload:
    name: str  # handshake, encrypt, decrypt, pingpong, group_encrypt, group_decrypt, ...
    variant: str  # e.g. "v3", "v4", "sqlite-v4", "batch1-v3", "current", "legacy"
    make_batch: Callable[[int], Any] | None
    verify: Callable[[], None] | None = None
    expect: bytes | None = None
    compare: str | None = None  # the textsecure variant this row is compared with
    max_n: int | None = None  # a lower cap for expensive set-ups (e.g. SQLite handshakes)
    unsupported: str | None = None  # why the peer has no such workload
    note: str = ""
    per: str = "op"


def _split(made: Any) -> tuple[Callable[[], Any], Cleanup]:
    if isinstance(made, tuple):
        return made[0], made[1]
    return made, None


def _timed(wl: Workload, n: int) -> float:
    run, cleanup = _split(wl.make_batch(n))  # type: ignore[misc]
    try:
        gc.collect()
        t0 = time.perf_counter()
        out = run()
        dt = time.perf_counter() - t0
        if wl.expect is not None and out != wl.expect:
            raise AssertionError(f"timed run returned {out!r:.60}, expected the plaintext")
        return dt
    finally:
        if cleanup is not None:
            cleanup()


def measure(wl: Workload, cfg: Config) -> dict[str, Any]:
    cap = min(cfg.max_n, wl.max_n or cfg.max_n)
    n = 1
    dt = _timed(wl, n)  # also a warm-up
    while dt < cfg.budget * 0.25 and n < cap:
        grow = cfg.budget * 0.5 / max(dt, 1e-6)
        n = min(cap, max(n * 2, int(n * min(grow, 100))))
        dt = _timed(wl, n)
    n = max(1, min(cap, round(n * cfg.budget / max(dt, 1e-9))))
    samples = [_timed(wl, n) / n for _ in range(cfg.reps)]
    return {"median_s": statistics.median(samples), "samples": samples, "n": n, "per": wl.per}


@dataclass
class Report:
    impl: str
    version: str
    info: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def run_workloads(report: Report, workloads: list[Workload]) -> None:
    cfg = Config.from_env()
    only = os.environ.get("BENCH_ONLY")  # comma-separated names, for debugging
    for wl in workloads:
        if only and wl.name not in only.split(","):
            continue
        row: dict[str, Any] = {
            "workload": wl.name,
            "variant": wl.variant,
            "compare": wl.compare,
            "note": wl.note,
        }
        if wl.unsupported is not None:
            row["unsupported"] = wl.unsupported
            report.rows.append(row)
            continue
        t0 = time.perf_counter()
        try:
            if wl.verify is not None:
                wl.verify()
            row.update(measure(wl, cfg))
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {e}"
            traceback.print_exc(file=sys.stderr)
        took = time.perf_counter() - t0
        shown = f"{row['median_s'] * 1e6:10.2f} us/{wl.per}" if "median_s" in row else row["error"]
        print(
            f"  {report.impl:<18} {wl.name:<14} {wl.variant:<16} {shown} ({took:.1f}s)",
            file=sys.stderr,
        )
        report.rows.append(row)


def emit(report: Report) -> None:
    json.dump(
        {"impl": report.impl, "version": report.version, "info": report.info, "rows": report.rows},
        sys.stdout,
    )
    sys.stdout.write("\n")
    sys.stdout.flush()


def fail(impl: str, reason: str) -> None:
    """The whole peer cannot run (import failed, ...): one JSON line saying why."""
    json.dump({"impl": impl, "error": reason}, sys.stdout)
    sys.stdout.write("\n")


def check(got: object, want: bytes = PAYLOAD) -> None:
    if got != want:
        raise AssertionError(f"round trip failed: got {got!r:.60}")


def pair_workloads(
    variant: str,
    pair: Callable[
        [],
        tuple[
            Callable[[bytes], Any],
            Callable[[Any], bytes],
            Callable[[bytes], Any],
            Callable[[Any], bytes],
            Cleanup,
        ],
    ],
    *,
    compare: str | None = None,
    note: str = "",
) -> list[Workload]:
    """In-chain encrypt, in-chain decrypt and ping-pong over one established session.

    ``pair()`` returns ``(enc_ab, dec_b, enc_ba, dec_a, cleanup)``: Alice's encrypt to Bob
    and Bob's decrypt of it, then the reverse direction, and what closes the stores (or
    None); each works on wire bytes (what a transport carries) as far as the library has a
    wire format. The session must already have
    carried one message each way, so that in-chain messages are ordinary (not PreKey) ones.
    The in-chain workloads send one more message first (decrypted, not timed), so the DH
    ratchet step of a new receiving chain is not in the timed batch whatever its size.
    """

    def verify() -> None:
        enc_ab, dec_b, enc_ba, dec_a, cleanup = pair()
        try:
            for _ in range(3):
                check(dec_b(enc_ab(PAYLOAD)))
            for _ in range(2):
                check(dec_a(enc_ba(PAYLOAD)))
                check(dec_b(enc_ab(PAYLOAD)))
        finally:
            if cleanup is not None:
                cleanup()

    def encrypt(n: int) -> Any:
        enc_ab, dec_b, _, _, cleanup = pair()
        check(dec_b(enc_ab(PAYLOAD)))  # the chain exists on both sides: what follows is in chain

        def run() -> Any:
            for _ in range(n):
                enc_ab(PAYLOAD)

        return run, cleanup

    def decrypt(n: int) -> Any:
        enc_ab, dec_b, _, _, cleanup = pair()
        check(dec_b(enc_ab(PAYLOAD)))  # the receiver's DH ratchet step is not part of the batch
        wire = [enc_ab(PAYLOAD) for _ in range(n)]

        def run() -> Any:
            pt = None
            for w in wire:
                pt = dec_b(w)
            return pt

        return run, cleanup

    def pingpong(n: int) -> Any:
        enc_ab, dec_b, enc_ba, dec_a, cleanup = pair()

        def run() -> Any:
            pt = None
            for _ in range(n):
                dec_b(enc_ab(PAYLOAD))
                pt = dec_a(enc_ba(PAYLOAD))
            return pt

        return run, cleanup

    c = compare or variant
    return [
        Workload("encrypt", variant, encrypt, verify, compare=c, note=note),
        Workload("decrypt", variant, decrypt, verify, PAYLOAD, compare=c, note=note),
        Workload("pingpong", variant, pingpong, verify, PAYLOAD, compare=c, note=note, per="rt"),
    ]


def group_workloads(
    variant: str,
    group: Callable[[], tuple[Callable[[bytes], Any], Callable[[Any], bytes], Cleanup]],
    *,
    compare: str | None = None,
    note: str = "",
) -> list[Workload]:
    """Group encrypt and decrypt: ``group()`` returns ``(encrypt, decrypt, cleanup)`` for one
    sender whose key (sender key distribution, Megolm session key) the receiver has processed."""

    def verify() -> None:
        enc, dec, cleanup = group()
        try:
            for _ in range(3):
                check(dec(enc(PAYLOAD)))
        finally:
            if cleanup is not None:
                cleanup()

    def encrypt(n: int) -> Any:
        enc, _, cleanup = group()

        def run() -> Any:
            for _ in range(n):
                enc(PAYLOAD)

        return run, cleanup

    def decrypt(n: int) -> Any:
        enc, dec, cleanup = group()
        wire = [enc(PAYLOAD) for _ in range(n)]

        def run() -> Any:
            pt = None
            for w in wire:
                pt = dec(w)
            return pt

        return run, cleanup

    c = compare or variant
    return [
        Workload("group_encrypt", variant, encrypt, verify, compare=c, note=note),
        Workload("group_decrypt", variant, decrypt, verify, PAYLOAD, compare=c, note=note),
    ]


def handshake_workload(
    variant: str,
    prepare: Callable[[int], tuple[list[Callable[[], bytes]], Cleanup]],
    *,
    compare: str | None = None,
    note: str = "",
    max_n: int | None = None,
) -> Workload:
    """``prepare(n)`` makes n fresh recipients with their published bundles (not timed) and
    returns one callable per handshake: process the bundle, encrypt the first message, have
    the recipient decrypt it, return the plaintext."""

    def verify() -> None:
        calls, cleanup = prepare(2)
        try:
            for call in calls:
                check(call())
        finally:
            if cleanup is not None:
                cleanup()

    def batch(n: int) -> Any:
        calls, cleanup = prepare(n)

        def run() -> Any:
            pt = None
            for call in calls:
                pt = call()
            return pt

        return (run, cleanup) if cleanup is not None else run

    return Workload(
        "handshake",
        variant,
        batch,
        verify,
        PAYLOAD,
        compare=compare or variant,
        note=note,
        max_n=max_n,
    )


def x25519_workload(agree: Callable[[], Any], verify: Callable[[], None]) -> Workload:
    """One X25519 key agreement (the floor of everything that ratchets)."""

    def batch(n: int) -> Callable[[], Any]:
        def run() -> Any:
            for _ in range(n):
                agree()

        return run

    return Workload("x25519", "", batch, verify, compare="")
