"""1:1 session benches through the public Python API (FFI and wrapper cost included).

Each operation is measured for textsecure and, in the same run and group, for python-axolotl
0.2.3 (pure Python, X3DH v3), so the report gives side-by-side ratios on this machine:

    make bench-python      # or: pytest benches/python --benchmark-enable

Groups: in-chain encrypt / decrypt of a 100-byte message, a ping-pong round trip (one DH
ratchet step per message), and the handshake (process a bundle, encrypt the first message,
decrypt it). Without python-axolotl installed its half is skipped.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import textsecure as ts

PAYLOAD = b"\x42" * 100
BATCH = 1000  # messages per timed call: the reported time is per BATCH operations

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _run(
    benchmark: Any,
    target: Callable[..., object],
    *,
    setup: Any = None,
    rounds: int = 10,
    batch: int = BATCH,
) -> None:
    """Times ``target`` (which does ``batch`` operations); records the per-operation cost."""
    if setup is None:
        benchmark.pedantic(target, rounds=rounds, iterations=1, warmup_rounds=1)
    else:
        benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=1)
    benchmark.extra_info["batch"] = batch
    benchmark.extra_info["ops_per_second"] = batch / benchmark.stats.stats.median


# -- textsecure ------------------------------------------------------------------------------


def _ts_pair(kyber: bool = False) -> tuple[ts.SessionCipher, ts.SessionCipher]:
    a = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    b = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
    to_b = ts.SessionCipher(a, ts.Address("bob", 1))
    to_a = ts.SessionCipher(b, ts.Address("alice", 1))
    to_b.process_bundle(b.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=kyber))
    to_a.decrypt(to_b.encrypt(b"hello"))
    to_b.decrypt(to_a.encrypt(b"hello"))
    return to_b, to_a


# v3 and v4 run the same Double Ratchet; v4 adds SPQR (the triple ratchet) to every message,
# so the v4/v3 ratio is SPQR's cost.
VERSIONS = pytest.mark.parametrize("version", [3, 4], ids=["v3", "v4-spqr"])


@VERSIONS
@pytest.mark.benchmark(group="encrypt-in-chain")
def test_textsecure_encrypt(benchmark: Any, version: int) -> None:
    to_b, _ = _ts_pair(kyber=version == 4)

    def batch() -> None:
        for _ in range(BATCH):
            to_b.encrypt(PAYLOAD)

    _run(benchmark, batch)


@VERSIONS
@pytest.mark.benchmark(group="decrypt-in-chain")
def test_textsecure_decrypt(benchmark: Any, version: int) -> None:
    to_b, to_a = _ts_pair(kyber=version == 4)

    def setup() -> tuple[tuple[list[Any]], dict[str, Any]]:
        return ([to_b.encrypt(PAYLOAD) for _ in range(BATCH)],), {}

    def batch(messages: list[Any]) -> None:
        for m in messages:
            to_a.decrypt(m)

    _run(benchmark, batch, setup=setup)


@VERSIONS
@pytest.mark.benchmark(group="ping-pong-round-trip")
def test_textsecure_ping_pong(benchmark: Any, version: int) -> None:
    to_b, to_a = _ts_pair(kyber=version == 4)

    def batch() -> None:
        for _ in range(100):
            to_a.decrypt(to_b.encrypt(PAYLOAD))
            to_b.decrypt(to_a.encrypt(PAYLOAD))

    _run(benchmark, batch, batch=100)


def _ts_handshakes(benchmark: Any, kyber: bool, n: int) -> None:
    alice_addr = ts.Address("alice", 1)

    def setup() -> tuple[tuple[ts.MemoryStore, list[Any]], dict[str, Any]]:
        alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
        peers = []
        for i in range(n):
            bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
            bundle = bob.new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=kyber)
            peers.append((ts.Address(f"bob{i}", 1), bob, bundle))
        return (alice, peers), {}

    def batch(alice: ts.MemoryStore, peers: list[Any]) -> None:
        for addr, bob, bundle in peers:
            cipher = ts.SessionCipher(alice, addr)
            cipher.process_bundle(bundle)
            ts.SessionCipher(bob, alice_addr).decrypt(cipher.encrypt(PAYLOAD))

    _run(benchmark, batch, setup=setup, batch=n)


@pytest.mark.benchmark(group="handshake-x3dh")
def test_textsecure_handshake_x3dh(benchmark: Any) -> None:
    _ts_handshakes(benchmark, False, 100)


@pytest.mark.benchmark(group="handshake-pqxdh")
def test_textsecure_handshake_pqxdh(benchmark: Any) -> None:
    _ts_handshakes(benchmark, True, 100)


def test_spqr_bytes_per_message() -> None:
    """Not timed: what SPQR adds to the wire, over a long v4 ping-pong against v3."""
    sizes: dict[int, list[int]] = {}
    for version in (3, 4):
        to_b, to_a = _ts_pair(kyber=version == 4)
        out = sizes.setdefault(version, [])
        for _ in range(300):
            for src, dst in ((to_b, to_a), (to_a, to_b)):
                m = src.encrypt(PAYLOAD)
                out.append(len(bytes(m)))
                dst.decrypt(m)
    extra = sum(sizes[4]) / len(sizes[4]) - sum(sizes[3]) / len(sizes[3])
    print(f"\nSPQR adds {extra:.1f} bytes per message on average (v4 vs v3, 600 messages)")
    assert 0 < extra < 100


# -- python-axolotl ---------------------------------------------------------------------------

AX_BATCH = 200

needs_axolotl = pytest.mark.skipif(
    importlib.util.find_spec("axolotl") is None,
    reason="python-axolotl not installed (pip install -r tests/interop/requirements.txt)",
)


def _ax_store() -> Any:
    from axolotl.tests.inmemoryaxolotlstore import InMemoryAxolotlStore

    return InMemoryAxolotlStore()


def _ax_bundle(store: Any) -> Any:
    from axolotl.state.prekeybundle import PreKeyBundle
    from axolotl.util.keyhelper import KeyHelper

    identity = store.getIdentityKeyPair()
    prekey = KeyHelper.generatePreKeys(1, 1)[0]
    signed = KeyHelper.generateSignedPreKey(identity, 1)
    store.storePreKey(prekey.getId(), prekey)
    store.storeSignedPreKey(signed.getId(), signed)
    return PreKeyBundle(
        store.getLocalRegistrationId(),
        1,
        prekey.getId(),
        prekey.getKeyPair().getPublicKey(),
        signed.getId(),
        signed.getKeyPair().getPublicKey(),
        signed.getSignature(),
        identity.getPublicKey(),
    )


def _ax_session(alice: Any, bob: Any, bob_name: str) -> tuple[Any, Any]:
    from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage
    from axolotl.sessionbuilder import SessionBuilder
    from axolotl.sessioncipher import SessionCipher

    SessionBuilder(alice, alice, alice, alice, bob_name, 1).processPreKeyBundle(_ax_bundle(bob))
    to_b = SessionCipher(alice, alice, alice, alice, bob_name, 1)
    to_a = SessionCipher(bob, bob, bob, bob, "alice", 1)
    first = to_b.encrypt(b"hello")
    to_a.decryptPkmsg(PreKeyWhisperMessage(serialized=first.serialize()))
    return to_b, to_a


def _ax_pair() -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        to_b, to_a = _ax_session(_ax_store(), _ax_store(), "bob")
        _ax_decrypt(to_b, to_a.encrypt(b"hello"))
    return to_b, to_a


def _ax_decrypt(cipher: Any, message: Any) -> bytes:
    from axolotl.protocol.whispermessage import WhisperMessage

    return bytes(cipher.decryptMsg(WhisperMessage(serialized=message.serialize())))


@needs_axolotl
@pytest.mark.benchmark(group="encrypt-in-chain")
def test_axolotl_encrypt(benchmark: Any) -> None:
    to_b, _ = _ax_pair()

    def batch() -> None:
        for _ in range(AX_BATCH):
            to_b.encrypt(PAYLOAD)

    _run(benchmark, batch, rounds=5, batch=AX_BATCH)


@needs_axolotl
@pytest.mark.benchmark(group="decrypt-in-chain")
def test_axolotl_decrypt(benchmark: Any) -> None:
    from axolotl.protocol.whispermessage import WhisperMessage

    to_b, to_a = _ax_pair()

    def setup() -> tuple[tuple[list[bytes]], dict[str, Any]]:
        return ([to_b.encrypt(PAYLOAD).serialize() for _ in range(AX_BATCH)],), {}

    def batch(wire: list[bytes]) -> None:
        for w in wire:
            to_a.decryptMsg(WhisperMessage(serialized=w))

    _run(benchmark, batch, setup=setup, rounds=5, batch=AX_BATCH)


@needs_axolotl
@pytest.mark.benchmark(group="ping-pong-round-trip")
def test_axolotl_ping_pong(benchmark: Any) -> None:
    to_b, to_a = _ax_pair()

    def batch() -> None:
        for _ in range(20):
            _ax_decrypt(to_a, to_b.encrypt(PAYLOAD))
            _ax_decrypt(to_b, to_a.encrypt(PAYLOAD))

    _run(benchmark, batch, rounds=5, batch=20)


@needs_axolotl
@pytest.mark.benchmark(group="handshake-x3dh")
def test_axolotl_handshake(benchmark: Any) -> None:
    counter = iter(range(10**9))

    def setup() -> tuple[tuple[Any, list[Any]], dict[str, Any]]:
        return (_ax_store(), [_ax_store() for _ in range(20)]), {}

    def batch(alice: Any, bobs: list[Any]) -> None:
        for bob in bobs:
            _ax_session(alice, bob, f"bob{next(counter)}")

    _run(benchmark, batch, setup=setup, rounds=5, batch=20)
