"""Sender-key (group) benches through the public Python API (FFI and wrapper cost included).

    make bench-python      # or: pytest benches/python/test_bench_groups.py --benchmark-enable

Encrypt and decrypt of a 100-byte group message, current (libsignal) and WhatsApp-era formats.
Each encrypt is one XEdDSA signature, each decrypt one XEdDSA verification, plus HKDF, AES-CBC
and one chain step. Side by side, python-axolotl 0.2.3's legacy GroupCipher (pure Python with
a C curve25519) for the same operations when it is installed. The reported time is per BATCH
operations; `extra_info.ops_per_second` is the per-message rate.
"""

from __future__ import annotations

import importlib
import importlib.util
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import textsecure as ts

PAYLOAD = b"\x42" * 100
BATCH = 1000
GROUP = "120363000000000000@g.us"
SENDER = ts.Address("alice", 1)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _run(
    benchmark: Any, target: Callable[..., object], *, setup: Any = None, rounds: int = 10
) -> None:
    if setup is None:
        benchmark.pedantic(target, rounds=rounds, iterations=1, warmup_rounds=1)
    else:
        benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=1)
    benchmark.extra_info["batch"] = BATCH
    benchmark.extra_info["ops_per_second"] = BATCH / benchmark.stats.stats.median


def _ciphers(legacy: bool) -> tuple[Any, Any]:
    a = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    b = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
    if legacy:
        ca: Any = ts.LegacyGroupCipher(a, GROUP)
        cb: Any = ts.LegacyGroupCipher(b, GROUP)
    else:
        dist = uuid.uuid4()
        ca, cb = ts.GroupCipher(a, dist), ts.GroupCipher(b, dist)
    cb.process_distribution(SENDER, ca.create_distribution(SENDER))
    return ca, cb


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
@pytest.mark.benchmark(group="group-encrypt")
def test_textsecure_group_encrypt(benchmark: Any, legacy: bool) -> None:
    ca, _ = _ciphers(legacy)

    def batch() -> None:
        for _ in range(BATCH):
            ca.encrypt(SENDER, PAYLOAD)

    _run(benchmark, batch)


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
@pytest.mark.benchmark(group="group-decrypt")
def test_textsecure_group_decrypt(benchmark: Any, legacy: bool) -> None:
    ca, cb = _ciphers(legacy)

    def setup() -> tuple[tuple[list[Any]], dict[str, Any]]:
        return ([ca.encrypt(SENDER, PAYLOAD) for _ in range(BATCH)],), {}

    def batch(messages: list[Any]) -> None:
        for m in messages:
            cb.decrypt(SENDER, m)

    _run(benchmark, batch, setup=setup)


# -- python-axolotl 0.2.3 (legacy format), for scale -----------------------------------------


def _ax(mod: str) -> Any:
    return importlib.import_module(f"axolotl.{mod}")


def _axolotl_ciphers() -> tuple[Any, Any]:
    if importlib.util.find_spec("axolotl") is None:
        pytest.skip("python-axolotl is not installed (tests/interop/requirements.txt)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            store_mod = _ax("groups.state.senderkeystore")
            record_mod = _ax("groups.state.senderkeyrecord")
            builder_mod = _ax("groups.groupsessionbuilder")
            cipher_mod = _ax("groups.groupcipher")
            name_mod = _ax("groups.senderkeyname")
            addr_mod = _ax("axolotladdress")
            skdm_mod = _ax("protocol.senderkeydistributionmessage")
        except Exception as e:  # protobuf mismatch and the like
            pytest.skip(f"python-axolotl cannot be imported: {e}")

    class Store(store_mod.SenderKeyStore):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.records: dict[str, Any] = {}

        def storeSenderKey(self, senderKeyName: Any, senderKeyRecord: Any) -> None:
            self.records[senderKeyName.serialize()] = senderKeyRecord

        def loadSenderKey(self, senderKeyName: Any) -> Any:
            rec = self.records.get(senderKeyName.serialize())
            return rec if rec is not None else record_mod.SenderKeyRecord()

    name = name_mod.SenderKeyName(GROUP, addr_mod.AxolotlAddress("alice", 1))
    sa, sb = Store(), Store()
    created = builder_mod.GroupSessionBuilder(sa).create(name)
    skdm = skdm_mod.SenderKeyDistributionMessage(serialized=bytes(created.serialize()))
    builder_mod.GroupSessionBuilder(sb).process(name, skdm)
    return cipher_mod.GroupCipher(sa, name), cipher_mod.GroupCipher(sb, name)


@pytest.mark.benchmark(group="group-encrypt")
def test_axolotl_group_encrypt(benchmark: Any) -> None:
    ca, _ = _axolotl_ciphers()

    def batch() -> None:
        for _ in range(BATCH):
            ca.encrypt(PAYLOAD)

    _run(benchmark, batch, rounds=3)


@pytest.mark.benchmark(group="group-decrypt")
def test_axolotl_group_decrypt(benchmark: Any) -> None:
    ca, cb = _axolotl_ciphers()

    def setup() -> tuple[tuple[list[Any]], dict[str, Any]]:
        return ([ca.encrypt(PAYLOAD) for _ in range(BATCH)],), {}

    def batch(messages: list[Any]) -> None:
        for m in messages:
            cb.decrypt(m)

    _run(benchmark, batch, setup=setup, rounds=3)
