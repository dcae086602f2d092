"""Batch decryption on one core and on every core: ``decrypt_many`` with the rayon pool
limited to 1 thread and with all threads, in alternated runs (1, N, 1, N, ...), on
MemoryStore and SQLiteStore; and the same messages decrypted one call at a time, from one
Python thread and from one Python thread per core.

    .venv/bin/python benches/batch_scaling.py [--sessions 2000] [--per 5] [--pairs 3]

Each run is a fresh process (the pool size is fixed when rayon starts): it sets up the
sessions, then times ``rounds`` batches of ``sessions x per`` in-chain messages (v3, 100
bytes). Prints msg/s per run and the median ratio of each alternated pair."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor


def worker(
    kind: str, sessions: int, per: int, rounds: int, mode: str, workload: str
) -> dict[str, float]:
    from textsecure import (
        Address,
        IdentityKeyPair,
        MemoryStore,
        PreKeyBundle,
        PreKeyRecord,
        PreKeySignalMessage,
        SessionCipher,
        SignalMessage,
        SignedPreKeyRecord,
        SQLiteStore,
        decrypt_many,
        encrypt_many,
    )

    tmp = tempfile.mkdtemp()
    ident = IdentityKeyPair.generate()
    bob = (
        MemoryStore(ident, 2)
        if kind == "memory"
        else SQLiteStore(os.path.join(tmp, "bob.db"), identity=ident, registration_id=2)
    )
    me = Address("bob", 1)
    spk = SignedPreKeyRecord.generate(1, ident)
    bob.save_signed_prekey(spk)
    peers = []
    first = []
    prekeys = [PreKeyRecord.generate(i + 1) for i in range(sessions)]
    for pk in prekeys:
        bob.save_prekey(pk)
    for i, pk in enumerate(prekeys):
        alice = MemoryStore(IdentityKeyPair.generate(), 3)
        addr = Address(f"alice-{i}", 1)
        c = SessionCipher(alice, me)
        c.process_bundle(
            PreKeyBundle(
                registration_id=2,
                device_id=1,
                identity_key=ident.public_key,
                signed_prekey_id=1,
                signed_prekey_public=spk.public_key,
                signed_prekey_signature=spk.signature,
                prekey_id=pk.id,
                prekey_public=pk.public_key,
            )
        )
        first.append((addr, c.encrypt(b"hello")))
        peers.append((addr, c))
    decrypt_many(bob, first)
    body = b"x" * 100

    def next_batch() -> list[tuple[Address, SignalMessage | PreKeySignalMessage]]:
        if workload == "ratchet":
            # bob answers every peer first: each peer's next message starts a new chain, so
            # bob's decryption of it takes a DH ratchet step (two X25519 and a key pair)
            replies = encrypt_many(bob, [(addr, b"ok") for addr, _ in peers])
            for (_, c), reply in zip(peers, replies, strict=True):
                c.decrypt(reply)  # type: ignore[arg-type]
        return [(addr, c.encrypt(body)) for addr, c in peers for _ in range(per)]

    batches = [next_batch() for _ in range(1 if workload == "ratchet" else rounds)]
    rates = []
    for r in range(rounds):
        batch = (
            batches[r] if workload != "ratchet" else (batches.pop() if batches else next_batch())
        )
        t = time.perf_counter()
        if mode == "batch":
            out = decrypt_many(bob, batch)
        elif mode == "threads":
            # one Python thread per core, each with its own sessions, one call per message
            n = os.cpu_count() or 1
            parts = [[x for i, x in enumerate(batch) if hash(x[0]) % n == k] for k in range(n)]
            with ThreadPoolExecutor(n) as pool:
                done = pool.map(
                    lambda part: [SessionCipher(bob, addr).decrypt(m) for addr, m in part], parts
                )
                out = [r for rs in done for r in rs]
        else:
            out = [SessionCipher(bob, addr).decrypt(m) for addr, m in batch]
        dt = time.perf_counter() - t
        if any(r != body for r in out):
            raise SystemExit("a message did not decrypt")
        rates.append(len(batch) / dt)
    return {"msg_per_s": statistics.median(rates)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--per", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--kinds", default="memory,sqlite")
    ap.add_argument("--workload", choices=("chain", "ratchet"), default="chain")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "MODE"))
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker[0], a.sessions, a.per, a.rounds, a.worker[1], a.workload)))
        return
    cores = os.cpu_count() or 1

    def run(kind: str, mode: str, threads: int) -> float:
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        args = [sys.executable, __file__, "--worker", kind, mode]
        args += ["--sessions", str(a.sessions), "--per", str(a.per), "--rounds", str(a.rounds)]
        args += ["--workload", a.workload]
        out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
        return float(json.loads(out)["msg_per_s"])

    # The machine's own ceiling: a perfectly parallel, GIL-free workload (SHA-256 of 1 MiB
    # buffers, hashlib releases the GIL) on every core against one thread, alternated.
    data = b"x" * (1 << 20)

    def hashes(n: int) -> None:
        for _ in range(n):
            hashlib.sha256(data).digest()

    ceilings = []
    for _ in range(5):
        t = time.perf_counter()
        hashes(40 * cores)
        one_t = time.perf_counter() - t
        with ThreadPoolExecutor(cores) as pool:
            t = time.perf_counter()
            list(pool.map(hashes, [40] * cores))
            ceilings.append(one_t / (time.perf_counter() - t))
    print(
        f"machine ceiling ({cores} threads of SHA-256 / one thread): "
        f"{statistics.median(ceilings):.2f}x ({', '.join(f'{c:.2f}' for c in ceilings)})"
    )
    what = "the first of a new chain (a DH ratchet step)" if a.workload == "ratchet" else "in-chain"
    print(
        f"{cores} cores; {a.sessions} sessions x {a.per} messages per batch (v3, 100 bytes; "
        f"each session's first message {what})"
    )
    for kind in a.kinds.split(","):
        ratios, vs_seq, thr = [], [], []
        for p in range(a.pairs):
            one = run(kind, "batch", 1)
            many = run(kind, "batch", cores)
            seq = run(kind, "sequential", cores)
            threads = run(kind, "threads", cores)
            ratios.append(many / one)
            vs_seq.append(many / seq)
            thr.append(threads / seq)
            print(
                f"{kind:7} round {p + 1}: one-by-one {seq:8.0f} msg/s | {cores} threads one-by-one "
                f"{threads:8.0f} | batch on 1 thread {one:8.0f} | batch on {cores} {many:8.0f}"
            )

        def med(v: list[float]) -> str:
            return f"{statistics.median(v):.2f}x ({', '.join(f'{r:.2f}' for r in v)})"

        print(f"{kind:7} batch, {cores} threads / 1 thread: {med(ratios)}")
        print(f"{kind:7} batch on {cores} threads / one-by-one: {med(vs_seq)}")
        print(f"{kind:7} {cores} Python threads / one thread, one-by-one: {med(thr)}")


if __name__ == "__main__":
    main()
