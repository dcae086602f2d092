"""python-olm (libolm through CFFI, PyPI ``python-olm``) in benches/peers.

The same workloads as vodozemac_worker.py: Olm for 1:1 (the handshake verifies the
recipient's Ed25519 signature on its one-time key), Megolm for groups. libolm's wire format
is base64 text, and its decrypt returns ``str`` (UTF-8 decoded); the workers encode it back
to bytes to compare with the plaintext. libolm is deprecated upstream (Matrix moved to
vodozemac). Run by run.py with benches/peers/.venv-peers/bin/python."""

from __future__ import annotations

import json
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
    import olm
except Exception as e:
    fail("python-olm", f"cannot import olm: {type(e).__name__}: {e}")
    sys.exit(0)


def identity(account: Any) -> tuple[str, str]:
    keys = account.identity_keys
    return keys["curve25519"], keys["ed25519"]


def published_key(account: Any) -> tuple[str, str, str]:
    """One fresh one-time key of ``account`` (base64), its signed form and the signature."""
    account.generate_one_time_keys(1)
    otk = next(iter(account.one_time_keys["curve25519"].values()))
    account.mark_keys_as_published()
    signed = json.dumps({"key": otk}, separators=(",", ":"))
    return otk, signed, account.sign(signed)


PRE_KEY = olm.OlmPreKeyMessage("x").message_type  # libolm's type number of PreKey messages


def message(w: tuple[int, str]) -> Any:
    t, c = w
    return olm.OlmPreKeyMessage(c) if t == PRE_KEY else olm.OlmMessage(c)


def pair() -> tuple[Any, Any, Any, Any, Cleanup]:
    alice, bob = olm.Account(), olm.Account()
    otk, _, _ = published_key(bob)
    sa = olm.OutboundSession(alice, identity(bob)[0], otk)
    first = sa.encrypt(PAYLOAD)
    sb = olm.InboundSession(bob, first, identity(alice)[0])
    bob.remove_one_time_keys(sb)
    check(sb.decrypt(first).encode())
    e_ab, d_b, e_ba, d_a = sa.encrypt, sb.decrypt, sb.encrypt, sa.decrypt
    check(d_a(e_ba(PAYLOAD)).encode())  # Bob's reply: Alice's next messages are ordinary ones

    def enc_ab(pt: bytes) -> tuple[int, str]:
        m = e_ab(pt)
        return (m.message_type, m.ciphertext)

    def enc_ba(pt: bytes) -> tuple[int, str]:
        m = e_ba(pt)
        return (m.message_type, m.ciphertext)

    def dec_b(w: tuple[int, str]) -> bytes:
        return d_b(message(w)).encode()

    def dec_a(w: tuple[int, str]) -> bytes:
        return d_a(message(w)).encode()

    return enc_ab, dec_b, enc_ba, dec_a, None


def handshakes(n: int) -> tuple[list[Callable[[], bytes]], Cleanup]:
    alice = olm.Account()
    alice_key = identity(alice)[0]
    verify = olm.ed25519_verify
    calls = []
    for _ in range(n):
        bob = olm.Account()
        otk, signed, sig = published_key(bob)
        curve, ed = identity(bob)

        def call(
            bob: Any = bob,
            otk: str = otk,
            signed: str = signed,
            sig: str = sig,
            curve: str = curve,
            ed: str = ed,
        ) -> bytes:
            verify(ed, signed, sig)  # raises OlmVerifyError if bad
            session = olm.OutboundSession(alice, curve, otk)
            m = session.encrypt(PAYLOAD)
            first = olm.OlmPreKeyMessage(m.ciphertext)
            inbound = olm.InboundSession(bob, first, alice_key)
            bob.remove_one_time_keys(inbound)
            return inbound.decrypt(first).encode()

        calls.append(call)
    return calls, None


def group() -> tuple[Any, Any, Cleanup]:
    outbound = olm.OutboundGroupSession()
    inbound = olm.InboundGroupSession(outbound.session_key)
    e, d = outbound.encrypt, inbound.decrypt

    def dec(w: str) -> bytes:
        return d(w)[0].encode()

    return e, dec, None


def main() -> None:
    note = "Olm (3DH + one Ed25519 check)"
    wls: list[Workload] = [handshake_workload("olm", handshakes, compare="v3", note=note)]
    wls += pair_workloads("olm", pair, compare="v3", note="Olm")
    wls += group_workloads("megolm", group, compare="current", note="Megolm")
    report = Report("python-olm", version("python-olm"), {"python": sys.version.split()[0]})
    run_workloads(report, wls)
    emit(report)


if __name__ == "__main__":
    main()
