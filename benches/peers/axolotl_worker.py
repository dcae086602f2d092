"""python-axolotl 0.2.3 (pure Python with a C curve25519; X3DH, session version 3) in
benches/peers, on the in-memory store the library ships (axolotl.tests.inmemoryaxolotlstore:
records are kept serialized, as its durable stores keep them). Groups: its sender keys (the
WhatsApp-era format, compared with textsecure's LegacyGroupCipher).
Run by run.py with benches/peers/.venv-peers/bin/python."""

from __future__ import annotations

import sys
import warnings
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
    x25519_workload,
)

warnings.simplefilter("ignore")  # the library's DeprecationWarnings, on every call

try:
    from axolotl.axolotladdress import AxolotlAddress
    from axolotl.ecc.curve import Curve
    from axolotl.groups.groupcipher import GroupCipher
    from axolotl.groups.groupsessionbuilder import GroupSessionBuilder
    from axolotl.groups.senderkeyname import SenderKeyName
    from axolotl.groups.state.senderkeyrecord import SenderKeyRecord
    from axolotl.groups.state.senderkeystore import SenderKeyStore
    from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage
    from axolotl.protocol.senderkeydistributionmessage import SenderKeyDistributionMessage
    from axolotl.protocol.whispermessage import WhisperMessage
    from axolotl.sessionbuilder import SessionBuilder
    from axolotl.sessioncipher import SessionCipher
    from axolotl.state.prekeybundle import PreKeyBundle
    from axolotl.tests.inmemoryaxolotlstore import InMemoryAxolotlStore
    from axolotl.util.keyhelper import KeyHelper
except Exception as e:
    fail("python-axolotl", f"cannot import axolotl: {type(e).__name__}: {e}")
    sys.exit(0)

GROUP = "120363000000000000@g.us"


def bundle_of(store: Any) -> Any:
    ident = store.getIdentityKeyPair()
    prekey = KeyHelper.generatePreKeys(1, 1)[0]
    signed = KeyHelper.generateSignedPreKey(ident, 1)
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
        ident.getPublicKey(),
    )


def handshake(alice: Any, bob: Any, name: str, bundle: Any) -> tuple[Any, Any, bytes]:
    SessionBuilder(alice, alice, alice, alice, name, 1).processPreKeyBundle(bundle)
    to_b = SessionCipher(alice, alice, alice, alice, name, 1)
    to_a = SessionCipher(bob, bob, bob, bob, "alice", 1)
    first = to_b.encrypt(PAYLOAD).serialize()
    pt = to_a.decryptPkmsg(PreKeyWhisperMessage(serialized=first))
    return to_b, to_a, bytes(pt)


def pair() -> tuple[Any, Any, Any, Any, Cleanup]:
    alice, bob = InMemoryAxolotlStore(), InMemoryAxolotlStore()
    to_b, to_a, pt = handshake(alice, bob, "bob", bundle_of(bob))
    check(pt)
    e_ab, d_b, e_ba, d_a = to_b.encrypt, to_a.decryptMsg, to_a.encrypt, to_b.decryptMsg

    def enc_ab(pt: bytes) -> bytes:
        return e_ab(pt).serialize()

    def enc_ba(pt: bytes) -> bytes:
        return e_ba(pt).serialize()

    def dec_b(w: bytes) -> bytes:
        return bytes(d_b(WhisperMessage(serialized=w)))

    def dec_a(w: bytes) -> bytes:
        return bytes(d_a(WhisperMessage(serialized=w)))

    check(dec_a(enc_ba(PAYLOAD)))  # Bob's reply: Alice's next messages are WhisperMessages
    return enc_ab, dec_b, enc_ba, dec_a, None


def handshakes(n: int) -> tuple[list[Callable[[], bytes]], Cleanup]:
    alice = InMemoryAxolotlStore()
    calls = []
    for i in range(n):
        bob = InMemoryAxolotlStore()
        bundle = bundle_of(bob)

        def call(bob: Any = bob, bundle: Any = bundle, name: str = f"bob{i}") -> bytes:
            return handshake(alice, bob, name, bundle)[2]

        calls.append(call)
    return calls, None


class Senders(SenderKeyStore):  # type: ignore[misc]
    def __init__(self) -> None:
        self.records: dict[str, Any] = {}

    def storeSenderKey(self, senderKeyName: Any, senderKeyRecord: Any) -> None:
        self.records[senderKeyName.serialize()] = senderKeyRecord

    def loadSenderKey(self, senderKeyName: Any) -> Any:
        rec = self.records.get(senderKeyName.serialize())
        return rec if rec is not None else SenderKeyRecord()


def group() -> tuple[Any, Any, Cleanup]:
    name = SenderKeyName(GROUP, AxolotlAddress("alice", 1))
    sa, sb = Senders(), Senders()
    created = GroupSessionBuilder(sa).create(name)
    skdm = SenderKeyDistributionMessage(serialized=bytes(created.serialize()))
    GroupSessionBuilder(sb).process(name, skdm)
    e, d = GroupCipher(sa, name).encrypt, GroupCipher(sb, name).decrypt

    def enc(pt: bytes) -> bytes:
        return bytes(e(pt))

    def dec(w: bytes) -> bytes:
        return bytes(d(w))

    return enc, dec, None


def x25519() -> Workload:
    a, b = Curve.generateKeyPair(), Curve.generateKeyPair()
    a_priv, b_pub = a.getPrivateKey(), b.getPublicKey()

    def verify() -> None:
        ab = Curve.calculateAgreement(b_pub, a_priv)
        ba = Curve.calculateAgreement(a.getPublicKey(), b.getPrivateKey())
        if ab != ba:
            raise AssertionError("X25519 agreements differ")

    agree = Curve.calculateAgreement
    return x25519_workload(lambda: agree(b_pub, a_priv), verify)


def main() -> None:
    wls: list[Workload] = [handshake_workload("v3", handshakes)]
    wls += pair_workloads("v3", pair)
    wls += group_workloads("legacy", group, note="WhatsApp-era sender keys")
    wls.append(x25519())
    report = Report("python-axolotl", version("python-axolotl"), {"python": sys.version.split()[0]})
    run_workloads(report, wls)
    emit(report)


if __name__ == "__main__":
    main()
