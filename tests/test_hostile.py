"""Hostile input for the 1:1 protocol (X3DH v3 and PQXDH v4).

The property (from the issue): every truncation and every single-bit flip of a valid
SignalMessage raises a ``textsecure.errors`` exception (never a crash or panic) and leaves the
stored state byte-for-byte identical; the same for a PreKeySignalMessage, except that a flip of
bytes nobody authenticates may still decrypt, to the same plaintext. No mutation ever yields a
different plaintext, and after all attempts the original message still decrypts.

Which PreKeySignalMessage flips can decrypt, precisely (libsignal behaves the same way):

* new session (the first PreKeySignalMessage): only flips that leave every field that feeds the
  key agreement or the MAC unchanged, i.e. flips in the registration id field (its value, or its
  tag, turning it into an unknown field or into a duplicate of a later field that overrides it)
  and in the low nibble of the outer version byte, which libsignal ignores (0x34 = session
  version 3 written by a version-4 library; the inner SignalMessage's version byte is MACed);
* existing session (a PreKeySignalMessage whose base key matches a stored session): the session
  is found by base key, so the prekey ids and the Kyber ciphertext are not used at all and flips
  in them decrypt too, to the same plaintext; base key, identity key and inner message are still
  authenticated. A re-delivered (already decrypted) PreKeySignalMessage raises for every
  mutation, since its inner message is a duplicate.

Also here: wrong argument types, unknown message types and garbage, malformed Kyber
ciphertexts, bundles with bad signatures, missing prekeys, counter gaps beyond 25,000 and the
2,000-skipped-key limit.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import textsecure as ts
from hypothesis import given, settings
from hypothesis import strategies as st
from test_vectors_v3 import alice_address, b64, bob_store, load_vector, pb_encode, pb_fields
from textsecure import errors

ALICE = ts.Address("alice", 1)
BOB = ts.Address("bob", 2)
PREKEY_ID, SIGNED_ID, KYBER_ID = 31, 32, 33
VERSIONS = [3, 4]
MAX_FORWARD_JUMPS = 25_000
MAX_MESSAGE_KEYS = 2_000


# --- two parties -------------------------------------------------------------------------


@dataclass
class BobKeys:
    """Everything needed to rebuild Bob's store in any state."""

    identity: Any
    registration_id: int
    prekeys: list[Any]
    signed: list[Any]
    kyber: list[Any]
    kyber_last_resort: bool = False

    def store(self, session: bytes | None = None, alice_identity: Any = None) -> Any:
        s = ts.MemoryStore(self.identity, self.registration_id)
        for r in self.prekeys:
            s.save_prekey(r)
        for r in self.signed:
            s.save_signed_prekey(r)
        for r in self.kyber:
            s.save_kyber_prekey(r, last_resort=self.kyber_last_resort)
        if session is not None:
            s.save_session(ALICE, ts.SessionRecord.from_bytes(session))
        if alice_identity is not None:
            s.trust(ALICE, alice_identity)
        return s


@dataclass
class Pair:
    version: int
    alice: Any
    bob: Any
    keys: BobKeys
    bundle: Any
    to_bob: Any = field(init=False)
    to_alice: Any = field(init=False)

    def __post_init__(self) -> None:
        self.to_bob = ts.SessionCipher(self.alice, BOB)
        self.to_alice = ts.SessionCipher(self.bob, ALICE)


def new_pair(version: int, *, process: bool = True) -> Pair:
    """Alice and Bob; Alice has processed Bob's bundle (X3DH for 3, PQXDH for 4)."""
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 4001)
    bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 4002)
    bundle = bob.new_bundle(
        2,
        prekey_id=PREKEY_ID,
        signed_prekey_id=SIGNED_ID,
        kyber_prekey_id=KYBER_ID,
        kyber=version == 4,
    )
    keys = BobKeys(
        identity=bob.identity_key_pair,
        registration_id=bob.registration_id,
        prekeys=[bob.load_prekey(PREKEY_ID)],
        signed=[bob.load_signed_prekey(SIGNED_ID)],
        kyber=[bob.load_kyber_prekey(KYBER_ID)] if version == 4 else [],
    )
    pair = Pair(version, alice, bob, keys, bundle)
    if process:
        pair.to_bob.process_bundle(bundle)
    return pair


def state(store: Any, keys: BobKeys) -> tuple[Any, ...]:
    """Everything a failed decryption must leave alone."""
    session = store.session(ALICE)
    identity = store.identity(ALICE)
    return (
        None if session is None else bytes(session),
        None if identity is None else bytes(identity),
        tuple(store.load_prekey(r.id) is not None for r in keys.prekeys),
        tuple(store.load_signed_prekey(r.id) is not None for r in keys.signed),
        tuple(store.load_kyber_prekey(r.id) is not None for r in keys.kyber),
    )


# --- mutations -----------------------------------------------------------------------------


def mutations(body: bytes, bits: Callable[[int], range | tuple[int, ...]]) -> Iterator[bytes]:
    """Every proper prefix, then single-bit flips (``bits(i)`` chooses the bits of byte i)."""
    for n in range(len(body)):
        yield body[:n]
    for i in range(len(body)):
        for bit in bits(i):
            mutated = bytearray(body)
            mutated[i] ^= 1 << bit
            yield bytes(mutated)


def all_bits(_: int) -> range:
    return range(8)


def kyber_sparse_bits(
    body: bytes, sparse: tuple[int, ...]
) -> Callable[[int], range | tuple[int, ...]]:
    """All bits of every byte, except inside the Kyber ciphertext of a v4 PreKeySignalMessage,
    where only ``sparse`` bits of each byte are flipped (all 8 in its first two and last two
    bytes: the KEM type byte and the ends). Every flip inside the ciphertext takes the same path
    (ML-KEM's implicit rejection gives an unrelated secret, so the MAC fails); decapsulation
    dominates the cost, and all 12,552 bits would take tens of seconds."""
    ct = kyber_ciphertext(body)
    if ct is None:
        return all_bits
    start = body.index(ct)
    assert body.count(ct) == 1 and len(ct) == 1569
    edges = {start, start + 1, start + len(ct) - 2, start + len(ct) - 1}
    inside = range(start, start + len(ct))

    def bits(i: int) -> range | tuple[int, ...]:
        return sparse if i in inside and i not in edges else range(8)

    return bits


def same_authenticated_content(original: Any, mutant: Any, *, new_session: bool) -> bool:
    """A decrypting mutant of a PreKeySignalMessage may differ from the original only in what
    nobody authenticates (see the module docstring)."""
    same = (
        mutant.version == original.version
        and bytes(mutant.base_key) == bytes(original.base_key)
        and bytes(mutant.identity_key) == bytes(original.identity_key)
        and bytes(mutant.message) == bytes(original.message)
    )
    if new_session:
        same = same and (
            mutant.prekey_id == original.prekey_id
            and mutant.signed_prekey_id == original.signed_prekey_id
            and mutant.kyber_prekey_id == original.kyber_prekey_id
            and kyber_ciphertext(bytes(mutant)) == kyber_ciphertext(bytes(original))
        )
    return same


def kyber_ciphertext(body: bytes) -> bytes | None:
    found = [v for f, v in pb_fields(body[1:]) if f == 8]
    assert len(found) <= 1
    if not found:
        return None
    assert isinstance(found[0], bytes), "field 8 is not length-delimited"
    return found[0]


def attack(
    *,
    message: Any,
    plaintext: bytes,
    keys: BobKeys,
    store: Any,
    rebuild: Callable[[], Any],
    bits: Callable[[int], range | tuple[int, ...]] = all_bits,
    may_decrypt: Callable[[Any], bool] = lambda _: False,
    pq_ratchet: ts.PqRatchet = ts.PqRatchet.REQUIRED,
) -> tuple[collections.Counter[str], Any]:
    """Feeds every mutation of ``message`` to Bob. A mutant must raise a textsecure error and
    leave ``state`` unchanged, or, if ``may_decrypt`` allows it, decrypt to ``plaintext`` (Bob's
    store is then rebuilt with ``rebuild``). Returns the outcome counts and Bob's final store."""
    body = bytes(message)
    msg_type = int(message.type)
    outcomes: collections.Counter[str] = collections.Counter()
    before = state(store, keys)
    for n, mutated in enumerate(mutations(body, bits)):
        try:
            mutant = ts.parse_message(msg_type, mutated)
            result = ts.SessionCipher(store, ALICE, pq_ratchet=pq_ratchet).decrypt(mutant)
        except errors.TextSecureError as e:
            outcomes[type(e).__name__] += 1
            assert state(store, keys) == before, f"mutation {n} changed the state ({e!r})"
            continue
        except BaseException as e:  # a panic (pyo3 PanicException) or any foreign error
            raise AssertionError(f"mutation {n}: {type(e).__name__}: {e}") from e
        assert result == plaintext, f"mutation {n} decrypted to a different plaintext"
        assert may_decrypt(mutant), f"mutation {n} decrypted: {mutated.hex()}"
        outcomes["decrypted to the same plaintext"] += 1
        store = rebuild()
        assert state(store, keys) == before
    total = len(body) + sum(len(bits(i)) for i in range(len(body)))
    assert sum(outcomes.values()) == total
    return outcomes, store


# --- SignalMessage -------------------------------------------------------------------------


def handshake(version: int) -> Pair:
    """A session both ways: Bob read Alice's PreKeySignalMessage and replied, Alice read the
    reply, so Alice's next message starts a new chain."""
    p = new_pair(version)
    assert p.to_alice.decrypt(p.to_bob.encrypt(b"hi")) == b"hi"
    assert p.to_bob.decrypt(p.to_alice.encrypt(b"hello")) == b"hello"
    return p


def established(version: int) -> tuple[Pair, list[Any]]:
    """``handshake``, then Alice's next three messages (not yet delivered)."""
    p = handshake(version)
    sent = [p.to_bob.encrypt(b"signal message %d" % i) for i in range(3)]
    assert all(isinstance(m, ts.SignalMessage) and m.version == version for m in sent)
    return p, sent


@pytest.mark.parametrize("version", VERSIONS)
def test_signal_message_mutations_all_raise(version: int) -> None:
    """Three positions in the ratchet: a message that starts a new receiving chain (DH step),
    one that skips ahead on a known chain, and one decrypted from a stored skipped key."""
    p, (m0, m1, m2) = established(version)
    store = p.bob
    for message, plaintext in ((m0, b"signal message 0"), (m2, b"signal message 2")):
        session = bytes(store.session(ALICE))
        outcomes, store = attack(
            message=message,
            plaintext=plaintext,
            keys=p.keys,
            store=store,
            rebuild=lambda: pytest.fail("unreachable"),
        )
        # Mostly MAC failures; a counter flipped to an already-used one is reported as a
        # duplicate before any MAC check (as in libsignal), a version flip as unsupported.
        assert outcomes["InvalidMessage"] > len(bytes(message)) * 7, outcomes
        assert bytes(store.session(ALICE)) == session
        assert ts.SessionCipher(store, ALICE).decrypt(message) == plaintext
    # m1 is now a skipped key of a known chain.
    outcomes, store = attack(
        message=m1,
        plaintext=b"signal message 1",
        keys=p.keys,
        store=store,
        rebuild=lambda: pytest.fail("unreachable"),
    )
    assert outcomes["InvalidMessage"] > len(bytes(m1)) * 7, outcomes
    assert ts.SessionCipher(store, ALICE).decrypt(m1) == b"signal message 1"
    with pytest.raises(errors.DuplicateMessage):
        ts.SessionCipher(store, ALICE).decrypt(m1)


# --- PreKeySignalMessage -------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_first_prekey_message_mutations(version: int) -> None:
    """New-session path: a failing mutant stores no session, consumes no prekey (one-time or
    Kyber) and trusts no identity."""
    p = new_pair(version)
    m0 = p.to_bob.encrypt(b"first")
    assert isinstance(m0, ts.PreKeySignalMessage) and m0.version == version
    store = p.keys.store()
    outcomes, store = attack(
        message=m0,
        plaintext=b"first",
        keys=p.keys,
        store=store,
        rebuild=p.keys.store,
        bits=kyber_sparse_bits(bytes(m0), (0, 3, 7)),
        may_decrypt=lambda mutant: same_authenticated_content(m0, mutant, new_session=True),
    )
    assert store.session(ALICE) is None and store.identity(ALICE) is None
    assert store.load_prekey(PREKEY_ID) is not None
    assert all(store.load_kyber_prekey(r.id) is not None for r in p.keys.kyber)
    assert outcomes["InvalidMessage"] > 0 and outcomes["InvalidPreKeyId"] > 0
    assert ts.SessionCipher(store, ALICE).decrypt(m0) == b"first"
    assert store.load_prekey(PREKEY_ID) is None
    assert bytes(store.identity(ALICE)) == bytes(p.alice.identity_key_pair.public_key)


@pytest.mark.parametrize("version", VERSIONS)
def test_repeated_prekey_message_mutations_all_raise(version: int) -> None:
    """A PreKeySignalMessage delivered again on the session it created: every mutation raises
    (the unmodified one as a duplicate) and the session bytes never change."""
    p = new_pair(version)
    m0 = p.to_bob.encrypt(b"first")
    assert p.to_alice.decrypt(m0) == b"first"
    session = bytes(p.bob.session(ALICE))
    outcomes, store = attack(
        message=m0,
        plaintext=b"first",
        keys=p.keys,
        store=p.bob,
        rebuild=lambda: pytest.fail("unreachable"),
    )
    assert outcomes["DuplicateMessage"] > 0
    assert bytes(store.session(ALICE)) == session
    with pytest.raises(errors.DuplicateMessage):
        ts.SessionCipher(store, ALICE).decrypt(m0)
    assert bytes(store.session(ALICE)) == session


@pytest.mark.parametrize("version", VERSIONS)
def test_second_prekey_message_mutations(version: int) -> None:
    """Alice's second PreKeySignalMessage (Bob has the session, not this message): mutants
    raise with the session unchanged, or decrypt to the same plaintext when only the
    unauthenticated header (registration id, prekey ids, Kyber ciphertext) changed."""
    p = new_pair(version)
    m0, m1 = p.to_bob.encrypt(b"first"), p.to_bob.encrypt(b"second")
    assert p.to_alice.decrypt(m0) == b"first"
    session = bytes(p.bob.session(ALICE))
    alice_identity = p.bob.identity(ALICE)
    store = p.keys.store(session, alice_identity)
    store.remove_prekey(PREKEY_ID)  # used up by m0
    for r in p.keys.kyber:
        store.remove_kyber_prekey(r.id)
    keys = BobKeys(p.keys.identity, p.keys.registration_id, [], p.keys.signed, [])

    def rebuild() -> Any:
        return keys.store(session, alice_identity)

    assert state(store, keys) == state(rebuild(), keys)
    outcomes, store = attack(
        message=m1,
        plaintext=b"second",
        keys=keys,
        store=store,
        rebuild=rebuild,
        may_decrypt=lambda mutant: same_authenticated_content(m1, mutant, new_session=False),
    )
    assert outcomes["InvalidMessage"] > 0
    assert bytes(store.session(ALICE)) == session
    assert ts.SessionCipher(store, ALICE).decrypt(m1) == b"second"


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", ["x3dh_v3_libsignal072.json", "pqxdh_nospqr.json"])
def test_libsignal_first_prekey_message_mutations(name: str) -> None:
    """The same on libsignal 0.72's own encoding (its field order puts the registration id
    elsewhere). For the v4 message all bits of every byte outside the Kyber ciphertext, and
    bit 5 of each byte inside it (see ``kyber_sparse_bits``). libsignal 0.72 has no SPQR, so
    Bob accepts it with ``PqRatchet.PREFERRED`` (the libsignal 0.83-0.91 policy)."""
    pq = ts.PqRatchet.PREFERRED
    doc = load_vector(name)
    step = doc["steps"][0]
    m0 = ts.parse_message(3, b64(step["body"]))
    body = bytes(m0)
    ct = kyber_ciphertext(body)
    assert (ct is not None) == (doc["session_version"] == 4)
    # Bob's store holds nothing address-specific before the first message, so the attack
    # can use ALICE for the file's Alice.
    assert alice_address(doc) != ALICE
    bob = doc["bob"]
    first = bob_store(doc)
    vec_keys = BobKeys(
        identity=first.identity_key_pair,
        registration_id=first.registration_id,
        prekeys=[first.load_prekey(bob["prekey_id"])],
        signed=[first.load_signed_prekey(bob["signed_prekey_id"])],
        kyber=[] if ct is None else [first.load_kyber_prekey(bob["kyber_prekey_id"])],
    )
    store = vec_keys.store()
    _, store = attack(
        message=m0,
        plaintext=b64(step["plaintext"]),
        keys=vec_keys,
        store=store,
        rebuild=vec_keys.store,
        bits=kyber_sparse_bits(body, (5,)),
        may_decrypt=lambda mutant: same_authenticated_content(m0, mutant, new_session=True),
        pq_ratchet=pq,
    )
    assert store.session(ALICE) is None and store.identity(ALICE) is None
    assert ts.SessionCipher(store, ALICE, pq_ratchet=pq).decrypt(m0) == b64(step["plaintext"])


# --- argument types and parsing ------------------------------------------------------------


def test_decrypt_rejects_wrong_types() -> None:
    p, (m0, _, _) = established(3)
    session = bytes(p.bob.session(ALICE))
    for wrong in (bytes(m0), bytearray(bytes(m0)), None, 2, "text", p.bundle, p.bob.session(ALICE)):
        with pytest.raises(TypeError):
            p.to_alice.decrypt(wrong)
        assert bytes(p.bob.session(ALICE)) == session
    assert p.to_alice.decrypt(m0) == b"signal message 0"


@pytest.mark.parametrize("msg_type", [0, 1, 4, 5, 6, 7, 8, 9, 255, -1, 2**31, 2**32 + 2])
def test_parse_message_unknown_types(msg_type: int) -> None:
    _, (m0, _, _) = established(3)
    for body in (bytes(m0), b"", b"\x33"):
        with pytest.raises(errors.InvalidMessage):
            ts.parse_message(msg_type, body)


@pytest.mark.parametrize("msg_type", [2**63, -(2**63) - 1, 2**64 + 2])
def test_parse_message_huge_type_is_a_textsecure_error(msg_type: int) -> None:
    with pytest.raises(errors.InvalidMessage):
        ts.parse_message(msg_type, b"\x33")


@pytest.mark.parametrize(
    ("msg_type", "body"),
    [
        (2, b""),
        (3, b""),
        (2, b"\x33"),
        (3, b"\x33"),
        (2, b"\x33" + b"\x00" * 8),
        (3, b"\x44\x00"),
        (2, b"\x23" + b"\x00" * 40),  # version 2
        (3, b"\x53\x0a\x00"),  # version 5
        (2, b"\xff" * 60),
        (3, b"\x33\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),  # varint overflow
        (3, b"\x33\x22\xff\xff\xff\xff\x0f"),  # field 4 claims ~4 GiB
    ],
)
def test_parse_message_garbage(msg_type: int, body: bytes) -> None:
    with pytest.raises(errors.TextSecureError):
        ts.parse_message(msg_type, body)


@settings(max_examples=200, deadline=None)
@given(
    msg_type=st.sampled_from([2, 3]),
    version=st.sampled_from([b"", b"\x33", b"\x34", b"\x44", b"\x43"]),
    rest=st.binary(max_size=200),
)
def test_random_garbage_never_decrypts(msg_type: int, version: bytes, rest: bytes) -> None:
    p = handshake(4)
    session = bytes(p.bob.session(ALICE))
    body = version + rest
    try:
        msg = ts.parse_message(msg_type, body)
    except errors.TextSecureError:
        return
    assert bytes(msg) == body
    with pytest.raises(errors.TextSecureError):
        p.to_alice.decrypt(msg)
    assert bytes(p.bob.session(ALICE)) == session


# --- Kyber ciphertexts ---------------------------------------------------------------------


def _replace_field(body: bytes, number: int, value: bytes | int | None) -> bytes:
    """Re-encodes a PreKeySignalMessage with field ``number`` replaced (None: removed)."""
    fields = pb_fields(body[1:])
    out: list[tuple[int, int | bytes]] = []
    for f, v in fields:
        if f == number:
            if value is not None:
                out.append((f, value))
        else:
            out.append((f, v))
    return body[:1] + pb_encode(out)


def test_reencoding_helper_is_faithful() -> None:
    """The re-encoder used below reproduces a decryptable message (so the failures below are
    about the changed field, not about our encoder)."""
    p = new_pair(4)
    m0 = p.to_bob.encrypt(b"first")
    ct = kyber_ciphertext(bytes(m0))
    assert ct is not None
    same = _replace_field(bytes(m0), 8, ct)
    assert p.to_alice.decrypt(ts.parse_message(3, same)) == b"first"


@pytest.mark.parametrize(
    "change",
    [
        "type 0x00",
        "type 0x07",
        "type 0x09",
        "type 0x0a",  # ML-KEM-1024's type byte, for a Kyber-1024 prekey
        "type 0xff",
        "length 0",
        "length 1",
        "length 1568 (no type byte)",
        "length 1568 (truncated)",
        "length 1570",
        "length 3138",
        "missing ciphertext",
        "missing kyber id",
        "missing both",
        "ciphertext of another encapsulation",
    ],
)
def test_malformed_kyber_ciphertext(change: str) -> None:
    p = new_pair(4)
    m0 = p.to_bob.encrypt(b"first")
    body = bytes(m0)
    ct = kyber_ciphertext(body)
    assert ct is not None and len(ct) == 1569 and ct[0] == 0x08
    kind, _, arg = change.partition(" ")
    if kind == "type":
        mutated = _replace_field(body, 8, bytes([int(arg, 16)]) + ct[1:])
    elif change == "length 1568 (no type byte)":
        mutated = _replace_field(body, 8, ct[1:])
    elif change == "length 1568 (truncated)":
        mutated = _replace_field(body, 8, ct[:-1])
    elif kind == "length":
        n = int(arg)
        mutated = _replace_field(body, 8, (ct * 2)[:n])
    elif change == "missing ciphertext":
        mutated = _replace_field(body, 8, None)
    elif change == "missing kyber id":
        mutated = _replace_field(body, 7, None)
    elif change == "missing both":
        mutated = _replace_field(_replace_field(body, 7, None), 8, None)
    else:
        # A second encapsulation to the same Kyber prekey, by another sender.
        carol = ts.MemoryStore(ts.IdentityKeyPair.generate(), 4003)
        to_bob = ts.SessionCipher(carol, BOB)
        to_bob.process_bundle(p.bundle)
        other_ct = kyber_ciphertext(bytes(to_bob.encrypt(b"x")))
        assert other_ct is not None and other_ct != ct
        mutated = _replace_field(body, 8, other_ct)
    assert mutated != body
    store = p.keys.store()
    before = state(store, p.keys)
    with pytest.raises(errors.TextSecureError):
        ts.SessionCipher(store, ALICE).decrypt(ts.parse_message(3, mutated))
    assert state(store, p.keys) == before
    assert store.session(ALICE) is None
    assert ts.SessionCipher(store, ALICE).decrypt(m0) == b"first"


# --- hostile keys in a PreKeySignalMessage ------------------------------------------------

_P = 2**255 - 19
#: Curve25519 u-coordinates of low order (0, 1, the two points of order 8, p - 1) and
#: non-canonical encodings (p, p + 1 = 1, 2^255 - 1, and 2^256 - 1, whose top bit libsignal
#: masks).
_HOSTILE_U = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    _P - 1,
    _P,
    _P + 1,
    2**255 - 1,
    2**256 - 1,
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("field_number", "what"), [(2, "base key"), (3, "identity key")])
def test_prekey_message_with_hostile_keys(version: int, field_number: int, what: str) -> None:
    """Low-order or non-canonical base / identity keys: a textsecure error, nothing stored."""
    p = new_pair(version)
    m0 = p.to_bob.encrypt(b"first")
    for u in _HOSTILE_U:
        for key in (b"\x05" + u.to_bytes(32, "little"), u.to_bytes(32, "little")):
            body = _replace_field(bytes(m0), field_number, key)
            store = p.keys.store()
            before = state(store, p.keys)
            with pytest.raises(errors.TextSecureError):
                ts.SessionCipher(store, ALICE).decrypt(ts.parse_message(3, body))
            assert state(store, p.keys) == before, (what, hex(u))
    store = p.keys.store()
    assert ts.SessionCipher(store, ALICE).decrypt(m0) == b"first"


# --- bundles -------------------------------------------------------------------------------


def _bundle_with(bundle: Any, **changes: Any) -> Any:
    fields = {
        name: getattr(bundle, name)
        for name in (
            "registration_id",
            "device_id",
            "identity_key",
            "signed_prekey_id",
            "signed_prekey_public",
            "signed_prekey_signature",
            "prekey_id",
            "prekey_public",
            "kyber_prekey_id",
            "kyber_prekey_public",
            "kyber_prekey_signature",
        )
    }
    fields.update(changes)
    return ts.PreKeyBundle(**fields)


def _flip(sig: bytes, i: int) -> bytes:
    return sig[:i] + bytes([sig[i] ^ 0x01]) + sig[i + 1 :]


@pytest.mark.parametrize(
    "defect",
    [
        "signed prekey signature: first bit",
        "signed prekey signature: last byte",
        "signed prekey signature: zeros",
        "signed prekey signature: truncated",
        "signed prekey signature: of the Kyber key",
        "signed prekey: another key",
        "identity: another key",
        "kyber signature: first bit",
        "kyber signature: last byte",
        "kyber signature: of the signed prekey",
        "kyber prekey: another key",
    ],
)
@pytest.mark.parametrize("existing_session", [False, True])
def test_bundle_with_bad_signature(defect: str, existing_session: bool) -> None:
    p = new_pair(4, process=False)
    b = p.bundle
    spk_sig, kyber_sig = bytes(b.signed_prekey_signature), bytes(b.kyber_prekey_signature)
    table: dict[str, dict[str, Any]] = {
        "signed prekey signature: first bit": {"signed_prekey_signature": _flip(spk_sig, 0)},
        "signed prekey signature: last byte": {"signed_prekey_signature": _flip(spk_sig, 63)},
        "signed prekey signature: zeros": {"signed_prekey_signature": bytes(64)},
        "signed prekey signature: truncated": {"signed_prekey_signature": spk_sig[:63]},
        "signed prekey signature: of the Kyber key": {"signed_prekey_signature": kyber_sig},
        "signed prekey: another key": {"signed_prekey_public": ts.PrivateKey.generate().public_key},
        "identity: another key": {"identity_key": ts.IdentityKeyPair.generate().public_key},
        "kyber signature: first bit": {"kyber_prekey_signature": _flip(kyber_sig, 0)},
        "kyber signature: last byte": {"kyber_prekey_signature": _flip(kyber_sig, 63)},
        "kyber signature: of the signed prekey": {"kyber_prekey_signature": spk_sig},
        "kyber prekey: another key": {"kyber_prekey_public": ts.KyberKeyPair.generate().public_key},
    }
    changes = table[defect]
    bad = _bundle_with(b, **changes)
    session = None
    if existing_session:
        p.to_bob.process_bundle(b)
        session = bytes(p.alice.session(BOB))
    with pytest.raises(errors.InvalidSignature):
        p.to_bob.process_bundle(bad)
    now = p.alice.session(BOB)
    assert (None if now is None else bytes(now)) == session
    if existing_session:
        assert bytes(p.alice.identity(BOB)) == bytes(b.identity_key)
    else:
        assert p.alice.identity(BOB) is None
    # The untouched bundle still works.
    p.to_bob.process_bundle(b)
    assert p.to_alice.decrypt(p.to_bob.encrypt(b"ok")) == b"ok"


def test_v3_bundle_with_bad_signature() -> None:
    p = new_pair(3, process=False)
    bad = _bundle_with(
        p.bundle, signed_prekey_signature=_flip(bytes(p.bundle.signed_prekey_signature), 5)
    )
    with pytest.raises(errors.InvalidSignature):
        p.to_bob.process_bundle(bad)
    assert p.alice.session(BOB) is None and p.alice.identity(BOB) is None


# --- missing prekeys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "missing"),
    [(3, "one-time"), (3, "signed"), (4, "one-time"), (4, "signed"), (4, "kyber")],
)
def test_prekey_message_naming_a_missing_prekey(version: int, missing: str) -> None:
    p = new_pair(version)
    m0 = p.to_bob.encrypt(b"first")
    store = p.keys.store()
    if missing == "one-time":
        store.remove_prekey(PREKEY_ID)
    elif missing == "signed":
        store.remove_signed_prekey(SIGNED_ID)
    else:
        store.remove_kyber_prekey(KYBER_ID)
    before = state(store, p.keys)
    with pytest.raises(errors.InvalidPreKeyId):
        ts.SessionCipher(store, ALICE).decrypt(m0)
    assert state(store, p.keys) == before
    assert store.session(ALICE) is None and store.identity(ALICE) is None
    # With the prekeys back, the same message decrypts.
    store = p.keys.store()
    assert ts.SessionCipher(store, ALICE).decrypt(m0) == b"first"


# --- counters: the 25,000 gap and the 2,000 skipped keys -----------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_message_gap_limits(version: int) -> None:
    """A new receiving chain accepts a first counter of L but not L + 1; a known chain at index
    i accepts i + L but not i + L + 1, where L = 25,000 skipped messages. In a version-4 session
    SPQR's own chain (whose counter starts at 1, with the same 25,000 limit, as in libsignal)
    makes L = 24,999. A rejected message raises MessageGapTooLarge and changes nothing. Of the
    keys skipped, only the newest 2,000 are kept: an older one's message can no longer be
    decrypted (DuplicateMessage), a kept one's can."""
    p = handshake(version)
    lim = 25_000 if version == 3 else 24_999
    keep = {0, lim - 2001, lim - 2000, lim - 1, lim, lim + 1}
    keep |= {2 * lim - 2000, 2 * lim - 1999, 2 * lim + 1, 2 * lim + 2}
    sent = {}
    for i in range(2 * lim + 3):
        m = p.to_bob.encrypt(b"n%d" % i)
        if i in keep:
            assert m.counter == i
            sent[i] = m
    bob = p.to_alice

    def rejected(i: int, error: type[Exception]) -> None:
        before = state(p.bob, p.keys)
        with pytest.raises(error):
            bob.decrypt(sent[i])
        assert state(p.bob, p.keys) == before

    def accepted(i: int) -> None:
        assert bob.decrypt(sent[i]) == b"n%d" % i

    rejected(lim + 1, errors.MessageGapTooLarge)  # new chain, one too far
    accepted(lim)  # new chain, at the limit
    rejected(lim - 2001, errors.DuplicateMessage)  # its key was dropped
    rejected(0, errors.DuplicateMessage)
    accepted(lim - 2000)  # oldest kept key
    accepted(lim - 1)
    rejected(lim - 2000, errors.DuplicateMessage)
    # The chain is at index lim + 1 now.
    rejected(2 * lim + 2, errors.MessageGapTooLarge)
    accepted(2 * lim + 1)
    # lim more keys were skipped (lim + 1 to 2 lim): the newest 2,000 are kept.
    rejected(lim + 1, errors.DuplicateMessage)
    rejected(2 * lim - 2000, errors.DuplicateMessage)
    accepted(2 * lim - 1999)


@pytest.mark.parametrize("version", VERSIONS)
def test_two_thousand_skipped_keys(version: int) -> None:
    """2,001 skipped keys on one chain: the oldest is dropped, the other 2,000 work."""
    p = handshake(version)
    sent = [p.to_bob.encrypt(b"k%d" % i) for i in range(MAX_MESSAGE_KEYS + 2)]
    bob = p.to_alice
    assert bob.decrypt(sent[-1]) == b"k%d" % (MAX_MESSAGE_KEYS + 1)
    before = state(p.bob, p.keys)
    with pytest.raises(errors.DuplicateMessage):
        bob.decrypt(sent[0])
    assert state(p.bob, p.keys) == before
    for i in (1, 2, MAX_MESSAGE_KEYS // 2, MAX_MESSAGE_KEYS):
        assert bob.decrypt(sent[i]) == b"k%d" % i
