"""Syndace's ``X3DH`` + ``DoubleRatchet`` (PyPI ``x3dh``, ``doubleratchet``; pure Python on
``cryptography`` and ``xeddsa``; what python-omemo builds on) in benches/peers.

The libraries define no wire format and no group messaging: messages are passed as the
library's objects (header + ciphertext), so its rows include no serialization, and it has no
group rows. Their API is asyncio; the coroutines never suspend (no I/O), so they are driven
directly (``coro.send(None)``, a fraction of a microsecond) instead of through an event loop.
Parameters follow the libraries' recommended classes: Curve25519 ratchet, HKDF-SHA-256 root
chain, HMAC-SHA-256 message chains, AES-256-CBC + HMAC-SHA-256 AEAD.
Run by run.py with benches/peers/.venv-peers/bin/python."""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Coroutine
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    PAYLOAD,
    Cleanup,
    Report,
    Workload,
    check,
    emit,
    fail,
    handshake_workload,
    pair_workloads,
    run_workloads,
    x25519_workload,
)

try:
    import doubleratchet
    import x3dh
    import xeddsa
    from doubleratchet.recommended import (
        HashFunction,
        aead_aes_hmac,
        diffie_hellman_ratchet_curve25519,
        kdf_hkdf,
        kdf_separate_hmacs,
    )
except Exception as e:
    fail("doubleratchet+x3dh", f"cannot import doubleratchet/x3dh: {type(e).__name__}: {e}")
    sys.exit(0)

T = TypeVar("T")


def sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("coroutine suspended: it needs an event loop")


class State(x3dh.BaseState):  # type: ignore[misc]
    @staticmethod
    def _encode_public_key(key_format: Any, pub: bytes) -> bytes:
        return b"\x05" + pub  # Signal's key type byte


class RootKDF(kdf_hkdf.KDF):  # type: ignore[misc]
    @staticmethod
    def _get_hash_function() -> Any:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return b"bench root chain"


class MessageKDF(kdf_separate_hmacs.KDF):  # type: ignore[misc]
    @staticmethod
    def _get_hash_function() -> Any:
        return HashFunction.SHA_256


class AEAD(aead_aes_hmac.AEAD):  # type: ignore[misc]
    @staticmethod
    def _get_hash_function() -> Any:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return b"bench message key"


class DoubleRatchet(doubleratchet.DoubleRatchet):  # type: ignore[misc]
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: Any) -> bytes:
        return (
            associated_data
            + header.ratchet_pub
            + struct.pack(">II", header.sending_chain_length, header.previous_sending_chain_length)
        )


DR_ARGS = (
    diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet,
    RootKDF,
    MessageKDF,
    b"\x01\x02",  # the message chain constant: two HMACs, 64 bytes
    1000,  # DoS protection threshold (skipped keys computed at most)
    1000,  # skipped message keys kept at most
    AEAD,
)


def new_state() -> Any:
    state = State.create(x3dh.IdentityKeyFormat.CURVE_25519, x3dh.HashFunction.SHA_256, b"bench")
    state.generate_pre_keys(1)
    return state


def handshake(alice: Any, bob: Any, bundle: Any) -> tuple[Any, Any, bytes]:
    """X3DH (active, passive) and the first Double Ratchet message both ways of use."""
    secret, ad, header = sync(alice.get_shared_secret_active(bundle))
    dr_a, first = sync(
        DoubleRatchet.encrypt_initial_message(*DR_ARGS, secret, bundle.signed_pre_key, PAYLOAD, ad)
    )
    secret_b, ad_b, spk = sync(bob.get_shared_secret_passive(header))
    bob.delete_pre_key(header.pre_key)  # one-time prekeys are used once
    dr_b, pt = sync(
        DoubleRatchet.decrypt_initial_message(*DR_ARGS, secret_b, spk.priv, first, ad_b)
    )
    return (dr_a, ad), (dr_b, ad_b), pt


def pair() -> tuple[Any, Any, Any, Any, Cleanup]:
    bob = new_state()
    (dr_a, ad), (dr_b, ad_b), pt = handshake(new_state(), bob, bob.bundle)
    check(pt)
    e_ab, d_b, e_ba, d_a = (
        dr_a.encrypt_message,
        dr_b.decrypt_message,
        dr_b.encrypt_message,
        dr_a.decrypt_message,
    )

    def enc_ab(pt: bytes) -> Any:
        return sync(e_ab(pt, ad))

    def enc_ba(pt: bytes) -> Any:
        return sync(e_ba(pt, ad_b))

    def dec_b(m: Any) -> bytes:
        return sync(d_b(m, ad_b))

    def dec_a(m: Any) -> bytes:
        return sync(d_a(m, ad))

    check(dec_a(enc_ba(PAYLOAD)))
    return enc_ab, dec_b, enc_ba, dec_a, None


def handshakes(n: int) -> tuple[list[Callable[[], bytes]], Cleanup]:
    alice = new_state()
    calls = []
    for _ in range(n):
        bob = new_state()

        def call(bob: Any = bob, bundle: Any = bob.bundle) -> bytes:
            return handshake(alice, bob, bundle)[2]

        calls.append(call)
    return calls, None


def x25519() -> Workload:
    a, b = xeddsa.priv_force_sign(b"\x01" * 32, False), xeddsa.priv_force_sign(b"\x02" * 32, False)
    a_pub, b_pub = xeddsa.priv_to_curve25519_pub(a), xeddsa.priv_to_curve25519_pub(b)

    def verify() -> None:
        if xeddsa.x25519(a, b_pub) != xeddsa.x25519(b, a_pub):
            raise AssertionError("X25519 agreements differ")

    agree = xeddsa.x25519
    return x25519_workload(lambda: agree(a, b_pub), verify)


def main() -> None:
    note = "no wire format: library objects passed"
    wls: list[Workload] = [handshake_workload("v3", handshakes, note=note)]
    wls += pair_workloads("v3", pair, note=note)
    for name in ("group_encrypt", "group_decrypt"):
        wls.append(Workload(name, "", None, unsupported="no group messaging in these libraries"))
    wls.append(x25519())
    report = Report(
        "doubleratchet+x3dh",
        f"{version('doubleratchet')} / {version('x3dh')}",
        {"python": sys.version.split()[0]},
    )
    run_workloads(report, wls)
    emit(report)


if __name__ == "__main__":
    main()
