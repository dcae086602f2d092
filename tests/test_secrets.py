"""Secrets never leak into ``repr()``, ``str()`` or exception messages, are wiped on drop, and
are compared in constant time.

* Sessions are produced (X3DH and PQXDH, out of order so skipped message keys are stored, a
  second session so one is archived); every secret is collected from the serialized records
  (``SessionRecord`` holds the root key, chain keys, ratchet private keys and skipped message
  keys / seeds; prekey records hold private keys; ``bytes(PrivateKey)``, Kyber secret keys).
  Then every ``repr()`` / ``str()`` of every public object and every exception message from a
  range of failures is scanned for them (hex, upper-case hex, and bytes repr of any 8-byte
  window). Rust ``Debug`` output is scanned the same way in
  ``rust/textsecure-core/tests/conversation_fuzz.rs``.
* Wiping on drop and constant-time comparison are checked at the source level: every type that
  holds a secret in the core derives ``ZeroizeOnDrop``, holds ``Zeroizing`` or implements a
  wiping ``Drop``; no MAC, signature, digest or tag is compared with ``==`` / ``!=``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import textsecure as ts
from textsecure import errors

CORE_SRC = Path(__file__).resolve().parent.parent / "rust" / "textsecure-core" / "src"


# --- a minimal protobuf reader ------------------------------------------------------------


def _varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def fields(b: bytes) -> Iterator[tuple[int, bytes | int]]:
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        tag, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(b, i)
            yield tag, v
        elif wire == 2:
            n, i = _varint(b, i)
            yield tag, b[i : i + n]
            i += n
        elif wire == 1:
            yield tag, b[i : i + 8]
            i += 8
        elif wire == 5:
            yield tag, b[i : i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wire}")


def _sub(b: bytes, tag: int) -> list[bytes]:
    return [v for t, v in fields(b) if t == tag and isinstance(v, bytes)]


def session_secrets(record: bytes) -> list[bytes]:
    """Root keys, chain keys, ratchet private keys and skipped message keys / seeds of every
    session (current and archived) in a serialized ``RecordStructure``."""
    out: list[bytes] = []
    sessions = _sub(record, 1) + _sub(record, 2)
    for s in sessions:
        out += _sub(s, 4)  # root key
        out += _sub(s, 15)  # SPQR state
        for chain in _sub(s, 6) + _sub(s, 7):
            out += _sub(chain, 2)  # sender ratchet private key
            for ck in _sub(chain, 3):
                out += _sub(ck, 2)
            for mk in _sub(chain, 4):
                for tag in (2, 3, 4, 5):
                    out += _sub(mk, tag)
    return [x for x in out if len(x) >= 16]


# --- producing secrets and text -------------------------------------------------------------


class World:
    def __init__(self) -> None:
        self.alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 11)
        self.bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 22)
        self.a, self.b = ts.Address("alice", 1), ts.Address("bob", 1)
        self.objects: list[Any] = [self.alice, self.bob, self.a, self.b]
        self.texts: list[str] = []
        self.secrets: list[bytes] = []

    def converse(self, kyber: bool, ids: int) -> None:
        bundle = self.bob.new_bundle(
            1, prekey_id=ids, signed_prekey_id=ids + 1, kyber_prekey_id=ids + 2, kyber=kyber
        )
        to_bob = ts.SessionCipher(self.alice, self.b)
        to_alice = ts.SessionCipher(self.bob, self.a)
        to_bob.process_bundle(bundle)
        first = [to_bob.encrypt(b"m%d" % i) for i in range(4)]
        to_alice.decrypt(first[3])  # skips 0..2: Bob stores their keys
        reply = to_alice.encrypt(b"reply")
        to_bob.decrypt(reply)
        later = [to_bob.encrypt(b"n%d" % i) for i in range(3)]
        to_alice.decrypt(later[2])
        head = first[0]
        assert isinstance(head, ts.PreKeySignalMessage)
        self.objects += [bundle, to_bob, to_alice, reply, *first, *later, head.message]
        for rid in (ids, ids + 1, ids + 2):
            for load in (self.bob.load_prekey, self.bob.load_signed_prekey):
                self.objects.append(load(rid))
        kpk = self.bob.load_kyber_prekey(ids + 2)
        if kpk is not None:
            self.objects += [kpk, kpk.key_pair, kpk.public_key, kpk.key_pair.secret_key]
            self.secrets.append(bytes(kpk.key_pair.secret_key))

    def collect(self) -> None:
        for store, peer in ((self.alice, self.b), (self.bob, self.a)):
            record = store.session(peer)
            assert record is not None
            self.objects.append(record)
            self.secrets += session_secrets(bytes(record))
            ident = store.identity_key_pair
            self.objects += [ident, ident.private_key, ident.public_key]
            self.secrets.append(bytes(ident.private_key))
        for obj in list(self.objects):
            for attr in ("private_key", "key_pair", "secret_key"):
                v = getattr(obj, attr, None)
                if v is not None and not callable(v):
                    self.objects.append(v)
                    if attr == "private_key" or attr == "secret_key":
                        self.secrets.append(bytes(v))

    def failures(self) -> None:
        """Exceptions from a range of failures, with the secrets' own bytes as inputs where an
        API takes bytes (a message must not echo its input back)."""
        cases: list[Any] = []
        to_alice = ts.SessionCipher(self.bob, self.a)
        to_bob = ts.SessionCipher(self.alice, self.b)
        m = to_bob.encrypt(b"x")
        to_alice.decrypt(m)
        cases.append(lambda: to_alice.decrypt(m))  # duplicate
        body = bytearray(bytes(m))
        body[-1] ^= 1
        cases.append(lambda: to_alice.decrypt(ts.parse_message(m.type, bytes(body))))
        cases.append(lambda: ts.SessionCipher(self.bob, ts.Address("nobody", 1)).encrypt(b"x"))
        for s in self.secrets[:40]:
            cases += [
                lambda s=s: ts.PublicKey.from_bytes(s),
                lambda s=s: ts.SessionRecord.from_bytes(s),
                lambda s=s: ts.PreKeyRecord.from_bytes(s),
                lambda s=s: ts.SignedPreKeyRecord.from_bytes(s),
                lambda s=s: ts.KyberSecretKey.from_bytes(s[:-1]),
                lambda s=s: ts.parse_message(3, b"\x33" + s),
                lambda s=s: ts.parse_message(2, b"\x44" + s),
                lambda s=s: ts.IdentityKeyPair.from_bytes(s),
                lambda s=s: ts.PrivateKey.from_bytes(s + b"\x00"),
            ]
        other = ts.IdentityKeyPair.generate()
        self.alice.trust(self.b, other.public_key)
        cases.append(lambda: to_bob.encrypt(b"x"))  # untrusted identity
        for case in cases:
            try:
                case()
            except errors.TextSecureError as e:
                self.texts += [str(e), repr(e), repr(e.args)]
                for attr in ("address", "identity_key"):
                    v = getattr(e, attr, None)
                    if v is not None:
                        self.texts += [str(v), repr(v)]


def needles(secret: bytes) -> list[str]:
    out = [secret.hex(), secret.hex().upper()]
    for i in range(0, len(secret) - 7, 4):
        w = secret[i : i + 8]
        out += [w.hex(), repr(w)[2:-1]]
    return out


@pytest.fixture(scope="module")
def world() -> World:
    w = World()
    w.converse(kyber=False, ids=100)
    w.converse(kyber=True, ids=200)  # archives the first session
    w.collect()
    w.failures()
    for obj in w.objects:
        if obj is not None:
            w.texts += [repr(obj), str(obj)]
    return w


def test_collected_enough(world: World) -> None:
    # Two records with archived sessions: root, chain, ratchet and skipped keys of each.
    assert len(world.secrets) > 30
    assert len(world.texts) > 100


def test_no_secret_in_repr_str_or_exceptions(world: World) -> None:
    text = "\n".join(world.texts)
    for secret in world.secrets:
        for needle in needles(secret):
            assert needle not in text, f"a secret ({len(secret)} bytes) appears in text output"


# --- source-level checks ----------------------------------------------------------------------


def _source(path: Path) -> str:
    """A core source file without its unit-test module (``#[cfg(test)] mod tests``; other
    test-only items, such as curve.rs's operation counters, stay)."""
    text = path.read_text()
    m = re.search(r"#\[cfg\(test\)\]\s*mod tests\b", text)
    return text if m is None else text[: m.start()]


SECRET_TYPES = {
    "curve.rs": ["pub struct PrivateKey"],
    "ratchet.rs": ["pub struct Secret32", "pub struct MessageKeys"],
}


@pytest.mark.parametrize("file,decls", SECRET_TYPES.items())
def test_secret_types_zeroize_on_drop(file: str, decls: list[str]) -> None:
    text = _source(CORE_SRC / file)
    for decl in decls:
        i = text.index(decl)
        derive = text.rfind("#[derive(", 0, i)
        assert "ZeroizeOnDrop" in text[derive:i], f"{decl} does not derive ZeroizeOnDrop"


def test_kem_secret_and_storage_protos_wipe() -> None:
    kem = _source(CORE_SRC / "kem.rs")
    assert re.search(r"pub struct SecretKey \{[^}]*raw: Zeroizing<", kem)
    proto = _source(CORE_SRC / "proto.rs")
    for name, fields_ in {
        "ChainKey": ["key"],
        "MessageKey": ["cipher_key", "mac_key", "iv", "seed"],
        "Chain": ["sender_ratchet_key_private"],
        "SessionStructure": ["root_key"],
        "PreKeyRecordStructure": ["private_key"],
        "SignedPreKeyRecordStructure": ["private_key"],
        "IdentityKeyPairStructure": ["private_key"],
    }.items():
        m = re.search(r"impl Drop for " + name + r" \{(.*?)\n    \}", proto, re.S)
        assert m, f"storage::{name} has no wiping Drop"
        for f in fields_:
            assert f"self.{f}.zeroize()" in m.group(1), f"storage::{name}.{f} is not wiped"


COMPARE = re.compile(r"([\w.\[\]()&*]+)\s*(==|!=)\s*([\w.\[\]()&*]+)")
SENSITIVE = re.compile(r"mac|sig|signature|digest|tag|hmac|auth", re.I)
# Lengths, counts, type bytes, and sender-key *public* signing keys (compared to pick the
# matching state of a record, never to authenticate anything) are not secrets.
HARMLESS = re.compile(r"len\(\)|_LEN\b|is_empty|\bNone\b|key_type|\b\d+\b|signing_key\(\)")


def test_no_variable_time_compare_of_macs_or_signatures() -> None:
    """``==`` / ``!=`` is never applied to MAC, signature, digest or tag bytes in the core
    (``crypto::ct_eq`` / ``subtle`` are); lengths, counts and type bytes are fine."""
    offenders = []
    for path in sorted(CORE_SRC.rglob("*.rs")):
        for n, line in enumerate(_source(path).splitlines(), 1):
            code = line.split("//")[0]
            for left, _op, right in COMPARE.findall(code):
                pair = left + " " + right
                if SENSITIVE.search(pair) and not HARMLESS.search(pair):
                    offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, "variable-time comparison of authenticators:\n" + "\n".join(offenders)
    # And the checks that matter do use constant-time comparison.
    assert "ct_eq(&mac[..MAC_LENGTH]" in _source(CORE_SRC / "message.rs")
    assert ".ct_eq(&sig[..32])" in _source(CORE_SRC / "curve.rs")
