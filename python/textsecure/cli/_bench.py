"""``textsecure bench``: the standard workloads, in this process, each for a fixed time; a
progress bar on stderr when it is a terminal, a table at the end."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import textsecure as ts
from textsecure.cli._common import CliError, print_json

__all__ = ["WORKLOADS", "add_parser"]

ALICE = ts.Address("9d0652a3-dcc3-4d11-975f-74d61598733f", 1)
BOB = ts.Address("796abedb-ca4e-4f18-8803-1fde5b921f9f", 1)
PLAINTEXT = b"x" * 160

#: one timed step: runs some operations, returns how many
Step = Callable[[], int]


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    description: str
    #: sets up (untimed) and returns the step to time, inside the given exit stack
    setup: Callable[[contextlib.ExitStack], Step]
    sqlite: bool = False


def _memory(rid: int) -> ts.MemoryStore:
    return ts.MemoryStore(ts.IdentityKeyPair.generate(), rid)


def _pair(
    kyber: bool, a: ts.MemoryStore | ts.SQLiteStore, b: ts.MemoryStore | ts.SQLiteStore
) -> tuple[ts.SessionCipher, ts.SessionCipher]:
    """An established session a -> b (both directions acknowledged)."""
    to_b = ts.SessionCipher(a, BOB)
    if isinstance(b, ts.MemoryStore):
        bundle = b.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=kyber)
    else:
        upload = b.generate_prekeys(1, kyber=kyber)
        b.confirm_upload(upload)
        bundle = b.current_bundle(1, kyber=kyber)
    to_b.process_bundle(bundle)
    to_a = ts.SessionCipher(b, ALICE)
    to_a.decrypt(to_b.encrypt(b"hello"))
    to_b.decrypt(to_a.encrypt(b"hi"))
    return to_b, to_a


def _handshake(kyber: bool) -> Callable[[contextlib.ExitStack], Step]:
    def setup(_: contextlib.ExitStack) -> Step:
        def step() -> int:
            alice, bob = _memory(1), _memory(2)
            bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=kyber)
            to_bob = ts.SessionCipher(alice, BOB)
            to_bob.process_bundle(bundle)
            ts.SessionCipher(bob, ALICE).decrypt(to_bob.encrypt(PLAINTEXT))
            return 1

        return step

    return setup


def _encrypt(kyber: bool) -> Callable[[contextlib.ExitStack], Step]:
    def setup(_: contextlib.ExitStack) -> Step:
        to_b, _to_a = _pair(kyber, _memory(1), _memory(2))

        def step() -> int:
            for _ in range(50):
                to_b.encrypt(PLAINTEXT)
            return 50

        return step

    return setup


def _decrypt(kyber: bool) -> Callable[[contextlib.ExitStack], Step]:
    def setup(_: contextlib.ExitStack) -> Step:
        to_b, to_a = _pair(kyber, _memory(1), _memory(2))
        batch: list[ts.SignalMessage | ts.PreKeySignalMessage] = []

        def step() -> int:
            if not batch:  # a refill: returns 0, so it is not timed
                batch.extend(to_b.encrypt(PLAINTEXT) for _ in range(50))
                return 0
            for message in batch:
                to_a.decrypt(message)
            n = len(batch)
            batch.clear()
            return n

        return step

    return setup


def _ping_pong(kyber: bool, sqlite: bool) -> Callable[[contextlib.ExitStack], Step]:
    def setup(stack: contextlib.ExitStack) -> Step:
        if sqlite:
            path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "bench.db"
            a: ts.MemoryStore | ts.SQLiteStore = stack.enter_context(
                ts.SQLiteStore(path, account="alice")
            )
            b: ts.MemoryStore | ts.SQLiteStore = stack.enter_context(
                ts.SQLiteStore(path, account="bob")
            )
        else:
            a, b = _memory(1), _memory(2)
        to_b, to_a = _pair(kyber, a, b)

        def step() -> int:
            to_a.decrypt(to_b.encrypt(PLAINTEXT))
            to_b.decrypt(to_a.encrypt(PLAINTEXT))
            return 2

        return step

    return setup


def _group(decrypt: bool) -> Callable[[contextlib.ExitStack], Step]:
    def setup(_: contextlib.ExitStack) -> Step:
        dist = uuid.UUID("0f3b2c3e-5a7d-4e8f-9a1b-2c3d4e5f6a7b")
        sender, receiver = _memory(1), _memory(2)
        out = ts.GroupCipher(sender, dist)
        into = ts.GroupCipher(receiver, dist)
        into.process_distribution(ALICE, out.create_distribution(ALICE))
        batch: list[ts.SenderKeyMessage] = []

        def step() -> int:
            if not decrypt:
                for _ in range(50):
                    out.encrypt(ALICE, PLAINTEXT)
                return 50
            if not batch:
                batch.extend(out.encrypt(ALICE, PLAINTEXT) for _ in range(50))
                return 0
            for message in batch:
                into.decrypt(ALICE, message)
            n = len(batch)
            batch.clear()
            return n

        return step

    return setup


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("handshake-v3", "X3DH: bundle, process_bundle, first message", _handshake(False)),
        Workload(
            "handshake-v4", "PQXDH + SPQR: bundle, process_bundle, first message", _handshake(True)
        ),
        Workload("encrypt-v3", "in-chain encrypt, session v3", _encrypt(False)),
        Workload("decrypt-v3", "in-chain decrypt, session v3", _decrypt(False)),
        Workload("encrypt-v4", "in-chain encrypt, session v4 (SPQR)", _encrypt(True)),
        Workload("decrypt-v4", "in-chain decrypt, session v4 (SPQR)", _decrypt(True)),
        Workload(
            "ping-pong-v3", "encrypt + decrypt, turns alternate, v3", _ping_pong(False, False)
        ),
        Workload("ping-pong-v4", "encrypt + decrypt, turns alternate, v4", _ping_pong(True, False)),
        Workload("group-encrypt", "sender-key encrypt", _group(False)),
        Workload("group-decrypt", "sender-key decrypt", _group(True)),
        Workload(
            "sqlite-ping-pong-v4",
            "ping-pong-v4 on a SQLiteStore (one commit per operation)",
            _ping_pong(True, True),
            sqlite=True,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    ops: int
    seconds: float

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def us_per_op(self) -> float:
        return self.seconds * 1e6 / self.ops if self.ops else 0.0


class Progress:
    """A bar on stderr, only when stderr is a terminal."""

    def __init__(self, total_seconds: float) -> None:
        self.enabled = sys.stderr.isatty()
        self.total = max(total_seconds, 1e-9)
        self.done = 0.0
        self.last = 0.0

    def show(self, label: str, elapsed: float, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        fraction = min(1.0, (self.done + elapsed) / self.total)
        width = 30
        filled = int(fraction * width)
        bar = "█" * filled + "░" * (width - filled)
        sys.stderr.write(f"\r{bar} {fraction * 100:5.1f}%  {label:<22}")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 64 + "\r")
            sys.stderr.flush()


def _run_one(w: Workload, seconds: float, progress: Progress) -> Result:
    with contextlib.ExitStack() as stack:
        step = w.setup(stack)
        step()  # warm up
        ops = 0
        timed = 0.0
        while timed < seconds:
            start = time.perf_counter()
            n = step()
            if n:
                timed += time.perf_counter() - start
                ops += n
            progress.show(w.name, timed)
        progress.done += seconds
        return Result(w.name, ops, timed)


def _choose(args: argparse.Namespace) -> list[Workload]:
    if args.only:
        names = [n.strip() for part in args.only for n in part.split(",") if n.strip()]
        unknown = [n for n in names if n not in WORKLOADS]
        if unknown:
            raise CliError(
                f"unknown workload(s): {', '.join(unknown)} (known: {', '.join(WORKLOADS)})"
            )
        return [WORKLOADS[n] for n in names]
    return [w for w in WORKLOADS.values() if args.sqlite or not w.sqlite]


def run(args: argparse.Namespace) -> int:
    if args.list:
        for w in WORKLOADS.values():
            print(f"{w.name:<22} {w.description}")
        return 0
    seconds = 0.05 if args.quick else args.seconds
    if not seconds > 0:
        raise CliError("--seconds must be positive")
    chosen = _choose(args)
    progress = Progress(seconds * len(chosen))
    results = []
    try:
        for w in chosen:
            progress.show(w.name, 0.0, force=True)
            results.append(_run_one(w, seconds, progress))
    finally:
        progress.finish()
    if args.json:
        print_json(
            [
                {
                    "workload": r.name,
                    "ops": r.ops,
                    "seconds": round(r.seconds, 6),
                    "ops_per_second": round(r.ops_per_second, 1),
                    "us_per_op": round(r.us_per_op, 2),
                }
                for r in results
            ]
        )
        return 0
    print(f"{'workload':<22}{'ops':>10}{'ops/s':>12}{'µs/op':>11}")
    for r in results:
        print(f"{r.name:<22}{r.ops:>10}{r.ops_per_second:>12,.0f}{r.us_per_op:>11,.1f}")
    print(f"textsecure {ts.__version__}, {seconds:g} s per workload, one thread")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="the standard workloads: handshakes, in-chain, ping-pong, groups",
        description="Time the standard workloads in this process; print ops/s and µs/op.",
    )
    p.add_argument(
        "--seconds", type=float, default=1.0, help="timed seconds per workload (default: 1)"
    )
    p.add_argument("--quick", action="store_true", help="a few operations each (a smoke test)")
    p.add_argument("--sqlite", action="store_true", help="also the SQLite store workload")
    p.add_argument(
        "--only", action="append", metavar="NAMES", help="these workloads (comma-separated)"
    )
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run)
