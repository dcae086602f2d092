"""CPU-time rates of the main operations through the Python API (single thread).

On a shared, loaded machine wall-clock benchmarks swing by 2x; process CPU time is far
steadier. Run: `.venv/bin/python benches/cpu_time.py` (pytest-benchmark's wall-clock numbers
are in `make bench`)."""

# ruff: noqa: B023  (each closure runs inside the loop iteration that defines it)
from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import textsecure as ts

P = b"x" * 100


def rate(label: str, n: int, fn: Callable[[], object], per: str = "op") -> float:
    best = float("inf")
    for _ in range(3):
        t = time.process_time()
        fn()
        best = min(best, (time.process_time() - t) / n)
    print(f"{label:<42} {best * 1e6:9.1f} us/{per}  {1 / best:>11,.0f} {per}/s (CPU)")
    return best


def pair(kyber: bool) -> tuple[ts.SessionCipher, ts.SessionCipher]:
    a = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    b = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
    to_b = ts.SessionCipher(a, ts.Address("bob", 1))
    to_a = ts.SessionCipher(b, ts.Address("alice", 1))
    to_b.process_bundle(b.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=kyber))
    to_a.decrypt(to_b.encrypt(b"hi"))
    to_b.decrypt(to_a.encrypt(b"hi"))
    return to_b, to_a


def main() -> None:
    results = {}
    for version in (3, 4):
        to_b, to_a = pair(version == 4)
        n = 20000
        results[f"enc{version}"] = rate(
            f"encrypt in chain, v{version}{' + SPQR' if version == 4 else ''}",
            n,
            lambda: [to_b.encrypt(P) for _ in range(n)],
        )
        to_b, to_a = pair(version == 4)  # a fresh session: no gap before the batches
        batches = [[to_b.encrypt(P) for _ in range(n)] for _ in range(3)]
        it = iter(batches)

        def dec() -> None:
            for m in next(it):
                to_a.decrypt(m)

        results[f"dec{version}"] = rate(f"decrypt in chain, v{version}", n, dec)

        def pp() -> None:
            for _ in range(500):
                to_a.decrypt(to_b.encrypt(P))
                to_b.decrypt(to_a.encrypt(P))

        results[f"pp{version}"] = rate(f"ping-pong round trip, v{version}", 500, pp, "rt")
    print(
        f"SPQR in-chain ratio: encrypt {results['enc3'] / results['enc4']:.2f}, "
        f"decrypt {results['dec3'] / results['dec4']:.2f}"
    )
    for kyber in (False, True):
        alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
        me = ts.Address("alice", 1)
        rounds = []
        for r in range(3):
            peers = []
            for i in range(100):
                s = ts.MemoryStore(ts.IdentityKeyPair.generate(), 5)
                bundle = s.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=kyber)
                peers.append((ts.Address(f"b{r}.{i}", 1), s, bundle))
            rounds.append(peers)
        it2 = iter(rounds)

        def hs() -> None:
            for addr, s, bundle in next(it2):
                c = ts.SessionCipher(alice, addr)
                c.process_bundle(bundle)
                ts.SessionCipher(s, me).decrypt(c.encrypt(P))

        rate(f"handshake {'PQXDH' if kyber else 'X3DH'} (bundle, encrypt, decrypt)", 100, hs)
    # groups
    a = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    b = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
    g = uuid.uuid4()
    sender = ts.Address("alice", 1)
    skdm = ts.GroupCipher(a, g).create_distribution(sender)
    ts.GroupCipher(b, g).process_distribution(sender, skdm)
    ga, gb = ts.GroupCipher(a, g), ts.GroupCipher(b, g)
    rate("group encrypt (sender key)", 2000, lambda: [ga.encrypt(sender, P) for _ in range(2000)])
    gmsgs = [[ga.encrypt(sender, P) for _ in range(2000)] for _ in range(3)]
    it3 = iter(gmsgs)
    rate("group decrypt", 2000, lambda: [gb.decrypt(sender, m) for m in next(it3)])
    k1, k2 = ts.IdentityKeyPair.generate(), ts.IdentityKeyPair.generate()
    rate(
        "safety number (5200 iterations, both sides)",
        20,
        lambda: [
            ts.Fingerprint.create(
                local_id=b"a" * 16,
                local_key=k1.public_key,
                remote_id=b"b" * 16,
                remote_key=k2.public_key,
            )
            for _ in range(20)
        ],
    )


if __name__ == "__main__":
    main()
