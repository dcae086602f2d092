"""textsecure's side of benches/peers: every workload on MemoryStore (v3 = X3DH, v4 = PQXDH +
SPQR), on SQLiteStore (one temporary database file, an account per store; each cipher call
its own transaction), and through the batch calls ``decrypt_many`` / ``encrypt_many`` when
this build has them.

Run by run.py with the project's .venv python; prints one JSON line (harness.py)."""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    PAYLOAD,
    Cleanup,
    Report,
    Workload,
    check,
    emit,
    fail,
    group_workloads,
    handshake_workload,
    pair_workloads,
    run_workloads,
    x25519_workload,
)

try:
    import textsecure as ts
    from textsecure import hazmat
except Exception as e:  # the extension is being rebuilt, or not built
    fail("textsecure", f"cannot import textsecure: {type(e).__name__}: {e}")
    sys.exit(0)

ALICE = ts.Address("alice", 1)
BOB = ts.Address("bob", 1)
GROUP = "120363000000000000@g.us"


def wire(m: Any) -> tuple[int, bytes]:
    return (m.type, bytes(m))


class Stores:
    """Makes the stores of one measurement: MemoryStores, or SQLiteStores (one account each)
    in one database file in a temporary directory, which cleanup() closes and removes."""

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite
        self.dir: str | None = None
        self.opened: list[Any] = []
        self.count = 0

    def new(self, registration_id: int) -> Any:
        self.count += 1
        if not self.sqlite:
            return ts.MemoryStore(ts.IdentityKeyPair.generate(), registration_id)
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="bench-peers-")
        path = Path(self.dir) / "stores.db"
        store = ts.SQLiteStore(path, account=f"a{self.count}", registration_id=registration_id)
        self.opened.append(store)
        return store

    def cleanup(self) -> None:
        for s in self.opened:
            s.close()
        self.opened.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def session_pair(kyber: bool, stores: Stores) -> tuple[Any, Any, Any, Any]:
    """Alice's store and cipher to Bob, Bob's store and cipher to Alice, one message each way."""
    a, b = stores.new(1), stores.new(2)
    to_b, to_a = ts.SessionCipher(a, BOB), ts.SessionCipher(b, ALICE)
    to_b.process_bundle(b.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=kyber))
    check(to_a.decrypt(wire(to_b.encrypt(PAYLOAD))))
    check(to_b.decrypt(wire(to_a.encrypt(PAYLOAD))))
    return a, to_b, b, to_a


def cipher_pair(kyber: bool, sqlite: bool) -> Callable[[], Any]:
    def pair() -> tuple[Any, Any, Any, Any, Cleanup]:
        stores = Stores(sqlite)
        _, to_b, _, to_a = session_pair(kyber, stores)
        e_ab, d_b, e_ba, d_a = to_b.encrypt, to_a.decrypt, to_a.encrypt, to_b.decrypt

        def enc_ab(pt: bytes) -> tuple[int, bytes]:
            m = e_ab(pt)
            return (m.type, bytes(m))

        def enc_ba(pt: bytes) -> tuple[int, bytes]:
            m = e_ba(pt)
            return (m.type, bytes(m))

        return enc_ab, d_b, enc_ba, d_a, stores.cleanup

    return pair


def handshakes(kyber: bool, sqlite: bool) -> Callable[[int], Any]:
    def prepare(n: int) -> tuple[list[Callable[[], bytes]], Cleanup]:
        stores = Stores(sqlite)
        alice = stores.new(1)
        calls = []
        for i in range(n):
            bob = stores.new(2)
            bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=kyber)
            addr = ts.Address(f"bob{i}", 1)

            def call(bob: Any = bob, bundle: Any = bundle, addr: Any = addr) -> bytes:
                cipher = ts.SessionCipher(alice, addr)
                cipher.process_bundle(bundle)
                m = cipher.encrypt(PAYLOAD)
                return ts.SessionCipher(bob, ALICE).decrypt((m.type, bytes(m)))

            calls.append(call)
        return calls, stores.cleanup

    return prepare


def groups(legacy: bool) -> Callable[[], Any]:
    def group() -> tuple[Any, Any, Cleanup]:
        a = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
        b = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
        if legacy:
            ca: Any = ts.LegacyGroupCipher(a, GROUP)
            cb: Any = ts.LegacyGroupCipher(b, GROUP)
            cb.process_distribution(ALICE, bytes(ca.create_distribution(ALICE)))
            e, d = ca.encrypt, cb.decrypt

            def dec(w: bytes) -> bytes:
                return d(ALICE, w)
        else:
            dist = uuid.uuid4()
            ca, cb = ts.GroupCipher(a, dist), ts.GroupCipher(b, dist)
            skdm = ts.SenderKeyDistributionMessage.from_bytes(bytes(ca.create_distribution(ALICE)))
            cb.process_distribution(ALICE, skdm)
            e, d = ca.encrypt, cb.decrypt
            parse = ts.SenderKeyMessage.from_bytes

            def dec(w: bytes) -> bytes:
                return d(ALICE, parse(w))

        def enc(pt: bytes) -> bytes:
            return bytes(e(ALICE, pt))

        return enc, dec, None

    return group


# -- batch calls (decrypt_many / encrypt_many), detected with hasattr -----------------------


def many_senders(kyber: bool, sqlite: bool, senders: int) -> tuple[Any, list[Any], Stores]:
    """One receiving store with sessions from ``senders`` senders (one message each way,
    then one more to the receiver).
    Returns (receiver store, [(address, sender's cipher to the receiver, receiver's cipher to
    the sender)], stores)."""
    stores = Stores(sqlite)
    me = stores.new(1)
    out = []
    for i in range(senders):
        s = stores.new(2)
        addr = ts.Address(f"peer{i}", 1)
        to_me = ts.SessionCipher(s, ALICE)
        to_me.process_bundle(me.new_bundle(1, prekey_id=i + 1, signed_prekey_id=1, kyber=kyber))
        to_s = ts.SessionCipher(me, addr)
        check(to_s.decrypt(wire(to_me.encrypt(PAYLOAD))))
        check(to_me.decrypt(wire(to_s.encrypt(PAYLOAD))))
        # one more to the receiver: its DH ratchet step is not part of the batches below
        check(to_s.decrypt(wire(to_me.encrypt(PAYLOAD))))
        out.append((addr, to_me, to_s))
    return me, out, stores


def batch_workloads(kyber: bool, sqlite: bool, senders: int) -> list[Workload]:
    v = ("sqlite-" if sqlite else "") + ("v4" if kyber else "v3")
    variant = f"batch{senders}-{v}"
    note = f"{senders} session{'s' if senders > 1 else ''}, one call per repetition"

    def verify() -> None:
        me, peers, stores = many_senders(kyber, sqlite, senders)
        try:
            items = [(addr, wire(to_me.encrypt(PAYLOAD))) for addr, to_me, _ in peers * 2]
            for r in ts.decrypt_many(me, items):
                check(r)
            out = ts.encrypt_many(me, [(addr, PAYLOAD) for addr, _, _ in peers * 2])
            for (_, to_me, _), m in zip(peers * 2, out, strict=True):
                check(to_me.decrypt(wire(m)))
        finally:
            stores.cleanup()

    # The sessions are set up once per workload and reused by every repetition (each batch
    # continues the chains), then closed at exit: 32 SQLite handshakes per repetition would
    # make the set-up, not the measurement, the run's length.
    made: list[tuple[Any, list[Any], Stores]] = []

    def setup() -> tuple[Any, list[Any]]:
        if not made:
            made.append(many_senders(kyber, sqlite, senders))
            atexit.register(made[0][2].cleanup)
        return made[0][0], made[0][1]

    def decrypt(n: int) -> Any:
        me, peers = setup()
        items = []
        for i in range(n):
            addr, to_me, _ = peers[i % senders]
            items.append((addr, wire(to_me.encrypt(PAYLOAD))))

        def run() -> Any:
            out = ts.decrypt_many(me, items)
            return out[-1]

        return run

    def encrypt(n: int) -> Any:
        me, peers = setup()
        items = [(peers[i % senders][0], PAYLOAD) for i in range(n)]

        def run() -> Any:
            out = ts.encrypt_many(me, items)
            wires = [bytes(m) for m in out]  # what a transport carries, as in the loops
            return None if len(wires) == len(items) else "short"

        return run

    cap = 2000 if sqlite else None
    return [
        Workload("encrypt", variant, encrypt, verify, None, note=note, max_n=cap),
        Workload("decrypt", variant, decrypt, verify, PAYLOAD, note=note, max_n=cap),
    ]


def x25519() -> Workload:
    a, b = ts.PrivateKey.generate(), ts.PrivateKey.generate()
    a_pub, b_pub = a.public_key, b.public_key

    def verify() -> None:
        if a.agree(b_pub) != b.agree(a_pub):
            raise AssertionError("X25519 agreements differ")
        if hazmat.x25519(bytes(a), bytes(b_pub)[1:]) != a.agree(b_pub):
            raise AssertionError("PrivateKey.agree disagrees with hazmat.x25519")

    agree = a.agree
    return x25519_workload(lambda: agree(b_pub), verify)


def main() -> None:
    wls: list[Workload] = []
    for kyber in (False, True):
        v = "v4" if kyber else "v3"
        wls.append(handshake_workload(v, handshakes(kyber, False)))
        wls += pair_workloads(v, cipher_pair(kyber, False))
        wls.append(handshake_workload(f"sqlite-{v}", handshakes(kyber, True), max_n=40))
        wls += pair_workloads(f"sqlite-{v}", cipher_pair(kyber, True))
    wls += group_workloads("current", groups(False))
    wls += group_workloads("legacy", groups(True), note="WhatsApp-era sender keys")
    batch = hasattr(ts, "decrypt_many") and hasattr(ts, "encrypt_many")
    if batch:
        for kyber in (False, True):
            for sqlite in (False, True):
                for senders in (1, 32):
                    wls += batch_workloads(kyber, sqlite, senders)
    wls.append(x25519())
    report = Report(
        "textsecure",
        ts.__version__,
        {"batch_calls": batch, "python": sys.version.split()[0]},
    )
    run_workloads(report, wls)
    emit(report)


if __name__ == "__main__":
    main()
