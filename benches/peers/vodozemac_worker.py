"""vodozemac (Matrix's Rust Olm/Megolm, PyPI ``vodozemac``, PyO3) in benches/peers.

Olm sessions stand in for the 1:1 workloads and Megolm for the group ones. Olm's handshake is
a triple Diffie-Hellman with the recipient's one-time key; Matrix clients also check the
recipient's Ed25519 signature on that key, so the handshake here verifies one signature (over
the key's base64 form) as bundle processing, as libsignal verifies the signed prekey's.
Run by run.py with benches/peers/.venv-peers/bin/python."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import version
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
)

try:
    import vodozemac as vz
except Exception as e:
    fail("vodozemac", f"cannot import vodozemac: {type(e).__name__}: {e}")
    sys.exit(0)


def published_key(account: Any) -> tuple[Any, bytes, Any]:
    """One fresh one-time key of ``account``, its signed form and the signature."""
    account.generate_one_time_keys(1)
    otk = next(iter(account.one_time_keys.values()))
    account.mark_keys_as_published()
    signed = otk.to_base64().encode()
    return otk, signed, account.sign(signed)


def pair() -> tuple[Any, Any, Any, Any, Cleanup]:
    alice, bob = vz.Account(), vz.Account()
    otk, _, _ = published_key(bob)
    sa = alice.create_outbound_session(bob.curve25519_key, otk)
    first = sa.encrypt(PAYLOAD).to_parts()
    pre = vz.AnyOlmMessage.from_parts(*first).to_pre_key()
    sb, pt = bob.create_inbound_session(alice.curve25519_key, pre)
    check(pt)
    from_parts = vz.AnyOlmMessage.from_parts
    e_ab, d_b, e_ba, d_a = sa.encrypt, sb.decrypt, sb.encrypt, sa.decrypt
    check(d_a(e_ba(PAYLOAD)))  # Bob's reply: Alice's next messages are ordinary ones

    def enc_ab(pt: bytes) -> tuple[int, bytes]:
        return e_ab(pt).to_parts()

    def enc_ba(pt: bytes) -> tuple[int, bytes]:
        return e_ba(pt).to_parts()

    def dec_b(w: tuple[int, bytes]) -> bytes:
        return d_b(from_parts(*w))

    def dec_a(w: tuple[int, bytes]) -> bytes:
        return d_a(from_parts(*w))

    return enc_ab, dec_b, enc_ba, dec_a, None


def handshakes(n: int) -> tuple[list[Callable[[], bytes]], Cleanup]:
    alice = vz.Account()
    alice_key = alice.curve25519_key
    from_parts = vz.AnyOlmMessage.from_parts
    calls = []
    for _ in range(n):
        bob = vz.Account()
        otk, signed, sig = published_key(bob)
        identity, signing = bob.curve25519_key, bob.ed25519_key

        def call(
            bob: Any = bob,
            otk: Any = otk,
            signed: bytes = signed,
            sig: Any = sig,
            identity: Any = identity,
            signing: Any = signing,
        ) -> bytes:
            signing.verify_signature(signed, sig)  # raises if bad
            session = alice.create_outbound_session(identity, otk)
            first = session.encrypt(PAYLOAD).to_parts()
            pre = from_parts(*first).to_pre_key()
            _, pt = bob.create_inbound_session(alice_key, pre)
            return bytes(pt)

        calls.append(call)
    return calls, None


def group() -> tuple[Any, Any, Cleanup]:
    outbound = vz.GroupSession()
    inbound = vz.InboundGroupSession(outbound.session_key)
    e, d, parse = outbound.encrypt, inbound.decrypt, vz.MegolmMessage.from_bytes

    def enc(pt: bytes) -> bytes:
        return e(pt).to_bytes()

    def dec(w: bytes) -> bytes:
        return d(parse(w)).plaintext

    return enc, dec, None


def main() -> None:
    note = "Olm (3DH + one Ed25519 check)"
    wls: list[Workload] = [handshake_workload("olm", handshakes, compare="v3", note=note)]
    wls += pair_workloads("olm", pair, compare="v3", note="Olm")
    wls += group_workloads("megolm", group, compare="current", note="Megolm")
    report = Report("vodozemac", version("vodozemac"), {"python": sys.version.split()[0]})
    run_workloads(report, wls)
    emit(report)


if __name__ == "__main__":
    main()
