"""The primitives under textsecure, through the Python hazmat API.

* cross-checked against the ``cryptography`` package (OpenSSL) on random inputs;
* XEdDSA round trips, tampering, libsignal's vector, and verification of our signatures by
  OpenSSL's Ed25519 after the Montgomery-to-Edwards map (an independent verifier);
* libsignal's known answers (tests/vectors/libsignal_kat.json);
* Wycheproof X25519 / HKDF / HMAC / AES-CBC (from ../shared, skipped without it);
* argument handling: bytes-likes accepted, wrong types and lengths raise, never crash.
"""

from __future__ import annotations

import array
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support import REPO_ROOT, require_shared
from textsecure import errors, hazmat

KAT_PATH = REPO_ROOT / "tests" / "vectors" / "libsignal_kat.json"
P = 2**255 - 19
CROSS_CHECK = settings(max_examples=300, deadline=None)

b32 = st.binary(min_size=32, max_size=32)
b16 = st.binary(min_size=16, max_size=16)


def kat() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(KAT_PATH.read_text())
    return data


def H(s: str) -> bytes:
    return bytes.fromhex(s)


# --- models on top of cryptography (OpenSSL) -------------------------------------------------


def ossl_x25519(private: bytes, public_u: bytes) -> bytes:
    priv = X25519PrivateKey.from_private_bytes(private)
    return priv.exchange(X25519PublicKey.from_public_bytes(public_u))


def ossl_x25519_public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def ossl_hkdf(ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


def ossl_hmac(key: bytes, data: bytes) -> bytes:
    m = c_hmac.HMAC(key, hashes.SHA256())
    m.update(data)
    return m.finalize()


def ossl_cbc_encrypt(key: bytes, iv: bytes, pt: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(pt) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


def ossl_cbc_decrypt(key: bytes, iv: bytes, ct: bytes) -> bytes:
    """Raises ValueError on bad length or padding."""
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(ct) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def ossl_ctr32(key: bytes, nonce: bytes, data: bytes) -> bytes:
    """AES-CTR whose counter is only the last 32 bits (big-endian, wrapping), as libsignal's
    Ctr32BE; built from single-block AES so that the wrap is modelled exactly."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    prefix, ctr = nonce[:12], int.from_bytes(nonce[12:], "big")
    nblocks = (len(data) + 15) // 16
    blocks = b"".join(prefix + ((ctr + i) % 2**32).to_bytes(4, "big") for i in range(nblocks))
    stream = ecb.update(blocks) + ecb.finalize()
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


def edwards_public(u: bytes, sign: int) -> bytes:
    """The Ed25519 encoding of the Edwards point birationally equivalent to Montgomery u."""
    x = int.from_bytes(u, "little") & (2**255 - 1)
    y = (x - 1) * pow(x + 1, P - 2, P) % P
    return (y | (sign << 255)).to_bytes(32, "little")


def ossl_xeddsa_verify(public_u: bytes, message: bytes, signature: bytes, sign: int) -> bool:
    """XEdDSA verification by OpenSSL's Ed25519 with A's sign bit taken as `sign`."""
    a = Ed25519PublicKey.from_public_bytes(edwards_public(public_u, sign))
    sig = signature[:63] + bytes([signature[63] & 0x7F])
    try:
        a.verify(sig, message)
    except InvalidSignature:
        return False
    return True


# --- cross-checks ----------------------------------------------------------------------------


@CROSS_CHECK
@given(private=b32, public_u=b32)
@example(private=bytes(32), public_u=(9).to_bytes(32, "little"))
@example(private=b"\xff" * 32, public_u=b"\xff" * 32)  # u >= p with bit 255 set
def test_x25519_matches_openssl(private: bytes, public_u: bytes) -> None:
    assert hazmat.x25519_public(private) == ossl_x25519_public(private)
    try:
        expected = ossl_x25519(private, public_u)
    except ValueError:  # OpenSSL refuses an all-zero shared secret, as do we
        with pytest.raises(errors.InvalidKey):
            hazmat.x25519(private, public_u)
        return
    assert hazmat.x25519(private, public_u) == expected


@CROSS_CHECK
@given(a=b32, b=b32)
def test_x25519_agreement_is_symmetric(a: bytes, b: bytes) -> None:
    assert hazmat.x25519(a, hazmat.x25519_public(b)) == hazmat.x25519(b, hazmat.x25519_public(a))


@CROSS_CHECK
@given(
    ikm=st.binary(max_size=100),
    salt=st.none() | st.binary(max_size=100),
    info=st.binary(max_size=100),
    length=st.integers(min_value=1, max_value=255 * 32),
)
def test_hkdf_matches_openssl(ikm: bytes, salt: bytes | None, info: bytes, length: int) -> None:
    assert hazmat.hkdf_sha256(ikm, salt, info, length) == ossl_hkdf(ikm, salt, info, length)


def test_hkdf_edges() -> None:
    assert hazmat.hkdf_sha256(b"k", None, b"", 0) == b""
    assert hazmat.hkdf_sha256(b"k", b"", b"i", 64) == hazmat.hkdf_sha256(b"k", None, b"i", 64)
    assert hazmat.hkdf_sha256(b"k", bytes(32), b"i", 64) == hazmat.hkdf_sha256(b"k", None, b"i", 64)
    assert len(hazmat.hkdf_sha256(b"k", None, b"", 8160)) == 8160
    for bad in (8161, -1, 2**70):
        with pytest.raises(errors.InvalidArgument):
            hazmat.hkdf_sha256(b"k", None, b"", bad)


@CROSS_CHECK
@given(key=st.binary(max_size=200), data=st.binary(max_size=500))
def test_hmac_matches_openssl(key: bytes, data: bytes) -> None:
    ours = hazmat.hmac_sha256(key, data)
    assert ours == ossl_hmac(key, data)
    assert ours == hmac.new(key, data, hashlib.sha256).digest()


@CROSS_CHECK
@given(key=b32, iv=b16, pt=st.binary(max_size=300))
def test_aes_cbc_matches_openssl(key: bytes, iv: bytes, pt: bytes) -> None:
    ct = hazmat.aes256_cbc_encrypt(key, iv, pt)
    assert ct == ossl_cbc_encrypt(key, iv, pt)
    assert hazmat.aes256_cbc_decrypt(key, iv, ct) == pt


@CROSS_CHECK
@given(
    key=b32,
    iv=b16,
    ct=st.binary(max_size=80),
    last=st.integers(0, 17),
    mode=st.sampled_from(["as-is", "padding", "last-byte"]),
)
def test_aes_cbc_padding_checks_match_openssl(
    key: bytes, iv: bytes, ct: bytes, last: int, mode: str
) -> None:
    # Random ciphertexts almost never decrypt to valid padding; re-encrypt a plaintext whose
    # tail is a full padding ("padding") or only ends in the byte `last` ("last-byte").
    if mode != "as-is" and ct and len(ct) % 16 == 0:
        dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        pt = bytearray(dec.update(ct) + dec.finalize())
        if mode == "padding" and 0 < last <= 16:
            pt[-last:] = bytes([last]) * last
        else:
            pt[-1] = last
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        ct = enc.update(bytes(pt)) + enc.finalize()
    try:
        expected: bytes | None = ossl_cbc_decrypt(key, iv, ct)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(errors.InvalidMessage):
            hazmat.aes256_cbc_decrypt(key, iv, ct)
    else:
        assert hazmat.aes256_cbc_decrypt(key, iv, ct) == expected


@CROSS_CHECK
@given(key=b32, nonce=b16, data=st.binary(max_size=300))
@example(key=bytes(32), nonce=b"\xff" * 16, data=bytes(64))  # the 32-bit counter wraps
def test_aes_ctr_matches_openssl(key: bytes, nonce: bytes, data: bytes) -> None:
    ours = hazmat.aes256_ctr(key, nonce, data)
    assert ours == ossl_ctr32(key, nonce, data)
    assert hazmat.aes256_ctr(key, nonce, ours) == data
    # Where the low 32 bits do not wrap, it is plain AES-CTR (OpenSSL's 128-bit counter).
    if int.from_bytes(nonce[12:], "big") + (len(data) + 15) // 16 <= 2**32:
        enc = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
        assert ours == enc.update(data) + enc.finalize()


def test_aes_ctr_counter_is_32_bits() -> None:
    key, nonce = bytes(range(32)), b"\xab" * 12 + b"\xff\xff\xff\xff"
    ours = hazmat.aes256_ctr(key, nonce, bytes(32))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    # Block 1 uses counter 0 with the prefix unchanged (no carry into byte 11).
    assert ours[16:] == ecb.update(b"\xab" * 12 + bytes(4))
    full = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    assert ours[16:] != (full.update(bytes(32)) + full.finalize())[16:]


# --- XEdDSA ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(private=b32, message=st.binary(max_size=200))
def test_xeddsa_round_trip_and_openssl(private: bytes, message: bytes) -> None:
    public_u = hazmat.x25519_public(private)
    public33 = b"\x05" + public_u
    sig = hazmat.xeddsa_sign(private, message)
    assert len(sig) == 64
    assert hazmat.xeddsa_verify(public33, message, sig)
    # Independent check: OpenSSL's Ed25519 accepts it with the transmitted sign bit.
    assert ossl_xeddsa_verify(public_u, message, sig, sig[63] >> 7)
    # Randomized: two signatures of the same message differ.
    assert hazmat.xeddsa_sign(private, message) != sig


@settings(max_examples=100, deadline=None)
@given(
    private=b32,
    other=b32,
    message=st.binary(min_size=1, max_size=100),
    data=st.data(),
)
def test_xeddsa_tampering_rejected(private: bytes, other: bytes, message: bytes, data: Any) -> None:
    public33 = b"\x05" + hazmat.x25519_public(private)
    sig = hazmat.xeddsa_sign(private, message)
    i = data.draw(st.integers(0, 63))
    bit = data.draw(st.integers(0, 7))
    bad_sig = bytearray(sig)
    bad_sig[i] ^= 1 << bit
    assert not hazmat.xeddsa_verify(public33, message, bytes(bad_sig))
    j = data.draw(st.integers(0, len(message) - 1))
    bad_msg = bytearray(message)
    bad_msg[j] ^= 1
    assert not hazmat.xeddsa_verify(public33, bytes(bad_msg), sig)
    assert not hazmat.xeddsa_verify(public33, message + b"\x00", sig)
    if hazmat.x25519_public(other) != public33[1:]:
        assert not hazmat.xeddsa_verify(b"\x05" + hazmat.x25519_public(other), message, sig)
    assert not hazmat.xeddsa_verify(public33, message, sig[:63])
    assert not hazmat.xeddsa_verify(public33, message, sig + b"\x00")


def test_xeddsa_libsignal_vector() -> None:
    for v in kat()["xeddsa"]:
        private, public_u = H(v["private"]), H(v["public"])
        msg, sig = H(v["message"]), H(v["signature"])
        assert hazmat.x25519_public(private) == public_u
        public33 = H(v["derived"]["public_serialized"])
        assert public33 == b"\x05" + public_u
        assert hazmat.xeddsa_verify(public33, msg, sig)
        assert hazmat.xeddsa_verify(bytearray(public33), memoryview(msg), bytearray(sig))
        # Sign bit 1: OpenSSL accepts with it and rejects with sign 0 (a strict verifier).
        assert sig[63] >> 7 == 1
        assert ossl_xeddsa_verify(public_u, msg, sig, 1)
        assert not ossl_xeddsa_verify(public_u, msg, sig, 0)
        cleared = sig[:63] + bytes([sig[63] & 0x7F])
        assert not hazmat.xeddsa_verify(public33, msg, cleared)
        for i in range(64):
            bad = bytearray(sig)
            bad[i] ^= 1
            assert not hazmat.xeddsa_verify(public33, msg, bytes(bad))
        # Our signatures with this key carry the same sign bit.
        assert hazmat.xeddsa_sign(private, msg)[63] >> 7 == 1


# --- libsignal known answers -----------------------------------------------------------------


def test_libsignal_x25519() -> None:
    for v in kat()["x25519"]:
        assert hazmat.x25519_public(H(v["alice_private"])) == H(v["alice_public"])
        assert hazmat.x25519_public(H(v["bob_private"])) == H(v["bob_public"])
        assert hazmat.x25519(H(v["alice_private"]), H(v["bob_public"])) == H(v["shared"])
        assert hazmat.x25519(H(v["bob_private"]), H(v["alice_public"])) == H(v["shared"])


def test_libsignal_chain_key() -> None:
    for v in kat()["chain_key"]:
        ck = H(v["chain_key"])
        seed = hazmat.hmac_sha256(ck, b"\x01")
        keys = hazmat.hkdf_sha256(seed, None, b"WhisperMessageKeys", 80)
        assert keys[:32] == H(v["cipher_key"])
        assert keys[32:64] == H(v["mac_key"])
        assert hazmat.hmac_sha256(ck, b"\x02") == H(v["next_chain_key"])
        assert seed == H(v["derived"]["message_key_seed"])
        assert keys[64:] == H(v["derived"]["iv"])


def test_libsignal_x3dh_v3_derivation() -> None:
    x = kat()["x3dh_v3"]
    k = {name: H(val) for name, val in x["keys"].items()}

    def derive(*dhs: bytes) -> bytes:
        return hazmat.hkdf_sha256(b"\xff" * 32 + b"".join(dhs), None, b"WhisperText", 64)

    bob = derive(
        hazmat.x25519(k["bob_signed_prekey_private"], k["alice_identity_public"][1:]),
        hazmat.x25519(k["bob_identity_private"], k["alice_base_public"][1:]),
        hazmat.x25519(k["bob_signed_prekey_private"], k["alice_base_public"][1:]),
    )
    assert bob[32:] == H(x["bob"]["expected_sender_chain_key"])
    assert bob[:32] == H(x["bob"]["derived"]["root_key"])
    alice = derive(
        hazmat.x25519(k["alice_identity_private"], k["bob_signed_prekey_public"][1:]),
        hazmat.x25519(k["alice_base_private"], k["bob_identity_public"][1:]),
        hazmat.x25519(k["alice_base_private"], k["bob_signed_prekey_public"][1:]),
    )
    assert alice[32:] == H(x["alice"]["expected_receiver_chain_key"])
    assert alice[:32] == H(x["alice"]["derived"]["x3dh_root_key"])


def test_libsignal_hkdf_rfc5869() -> None:
    for v in kat()["hkdf_rfc5869"]:
        ikm, salt, info = H(v["ikm"]), H(v["salt"]), H(v["info"])
        assert hazmat.hkdf_sha256(ikm, salt, info, v["length"]) == H(v["okm"])
        assert hazmat.hmac_sha256(salt, ikm) == H(v["prk"])


def test_libsignal_incremental_mac() -> None:
    for v in kat()["incremental_mac"]:
        key, data, size = H(v["key"]), "".join(v["input_parts_text"]).encode(), v["chunk_size"]
        assert data == H(v["input"])
        ends = [*range(size, len(data), size), len(data)]
        assert b"".join(hazmat.hmac_sha256(key, data[:e]) for e in ends) == H(v["digest"])


def test_libsignal_aes() -> None:
    doc = kat()
    for v in doc["aes256_ctr32"]:
        assert hazmat.aes256_ctr(H(v["key"]), H(v["nonce"]), H(v["plaintext"])) == H(
            v["ciphertext"]
        )
    for v in doc["aes256_cbc"]:
        key, iv = H(v["key"]), H(v["iv"])
        assert hazmat.aes256_cbc_encrypt(key, iv, H(v["plaintext"])) == H(v["ciphertext"])
        assert hazmat.aes256_cbc_decrypt(key, iv, H(v["ciphertext"])) == H(v["plaintext"])
        got = hazmat.aes256_cbc_decrypt(key, H(v["bad_iv"]), H(v["ciphertext"]))
        assert got == H(v["plaintext_with_bad_iv"])
        with pytest.raises(errors.InvalidMessage):
            hazmat.aes256_cbc_decrypt(key, iv, H(v["plaintext"]))


def test_libsignal_fingerprint_vectors_recompute() -> None:
    """Checks the recorded fingerprint vectors themselves (hashlib; the fingerprint API is
    tested elsewhere): SHA-512 iterated per protocol-notes section 8."""

    def side(key: bytes, stable_id: bytes, iterations: int) -> bytes:
        digest = hashlib.sha512(b"\x00\x00" + key + stable_id + key).digest()
        for _ in range(iterations - 1):
            digest = hashlib.sha512(digest + key).digest()
        return digest

    def display(d: bytes) -> str:
        return "".join(
            f"{int.from_bytes(d[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5)
        )

    for v in kat()["fingerprint"]:
        a = side(H(v["alice_identity"]), v["alice_stable_id_text"].encode(), v["iterations"])
        b = side(H(v["bob_identity"]), v["bob_stable_id_text"].encode(), v["iterations"])
        assert "".join(sorted([display(a), display(b)])) == v["displayable"]
        ver = bytes([0x08, v["version"]])
        assert ver + b"\x12\x22\x0a\x20" + a[:32] + b"\x1a\x22\x0a\x20" + b[:32] == H(
            v["alice_scannable"]
        )
        assert ver + b"\x12\x22\x0a\x20" + b[:32] + b"\x1a\x22\x0a\x20" + a[:32] == H(
            v["bob_scannable"]
        )


# --- Wycheproof through the Python API -------------------------------------------------------


def wycheproof(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    doc = json.loads(require_shared("wycheproof", name).read_text())
    return [(g, t) for g in doc["testGroups"] for t in g["tests"]]


@pytest.mark.needs_shared
def test_wycheproof_x25519() -> None:
    ran = 0
    for _g, t in wycheproof("x25519_test.json"):
        shared = H(t["shared"])
        if t["result"] == "invalid" or shared == bytes(32):
            with pytest.raises(errors.InvalidKey):
                hazmat.x25519(H(t["private"]), H(t["public"]))
        else:  # valid, and acceptable non-zero results (twist, non-canonical u, ...)
            assert hazmat.x25519(H(t["private"]), H(t["public"])) == shared, t["tcId"]
        ran += 1
    assert ran > 0


@pytest.mark.needs_shared
def test_wycheproof_hkdf() -> None:
    ran = 0
    for _g, t in wycheproof("hkdf_sha256_test.json"):
        args = (H(t["ikm"]), H(t["salt"]), H(t["info"]), t["size"])
        if t["result"] == "valid":
            assert hazmat.hkdf_sha256(*args) == H(t["okm"]), t["tcId"]
        else:
            with pytest.raises(errors.InvalidArgument):
                hazmat.hkdf_sha256(*args)
        ran += 1
    assert ran > 0


@pytest.mark.needs_shared
def test_wycheproof_hmac() -> None:
    ran = 0
    for g, t in wycheproof("hmac_sha256_test.json"):
        tag = hazmat.hmac_sha256(H(t["key"]), H(t["msg"]))[: g["tagSize"] // 8]
        assert hmac.compare_digest(tag, H(t["tag"])) == (t["result"] == "valid"), t["tcId"]
        ran += 1
    assert ran > 0


@pytest.mark.needs_shared
def test_wycheproof_aes_cbc() -> None:
    ran = 0
    for g, t in wycheproof("aes_cbc_pkcs5_test.json"):
        if g["keySize"] != 256:
            continue
        key, iv, msg, ct = H(t["key"]), H(t["iv"]), H(t["msg"]), H(t["ct"])
        if t["result"] == "valid":
            assert hazmat.aes256_cbc_encrypt(key, iv, msg) == ct, t["tcId"]
            assert hazmat.aes256_cbc_decrypt(key, iv, ct) == msg, t["tcId"]
        else:
            with pytest.raises(errors.InvalidMessage):
                hazmat.aes256_cbc_decrypt(key, iv, ct)
        ran += 1
    assert ran > 0


# --- arguments -------------------------------------------------------------------------------


def test_bytes_likes_are_accepted() -> None:
    key = bytes(range(32))
    expected = hazmat.hmac_sha256(key, b"abcdef")
    for k in (key, bytearray(key), memoryview(key), array.array("B", key)):
        for d in (b"abcdef", bytearray(b"abcdef"), memoryview(b"xabcdefx")[1:-1]):
            assert hazmat.hmac_sha256(k, d) == expected
    # A non-contiguous view is copied in logical order.
    assert hazmat.hmac_sha256(key, memoryview(b"aXbXcXdXeXfX")[::2]) == expected
    assert hazmat.x25519_public(bytearray(key)) == ossl_x25519_public(key)


NOT_BYTES: list[object] = ["x" * 32, 32, 3.0, None, [0] * 32, (0,) * 32, object()]


@pytest.mark.parametrize("bad", NOT_BYTES, ids=lambda b: type(b).__name__)
def test_wrong_types_raise_type_error(bad: object) -> None:
    k32, iv = bytes(32), bytes(16)
    calls: list[Callable[[], object]] = [
        lambda: hazmat.x25519(bad, k32),  # type: ignore[arg-type]
        lambda: hazmat.x25519(k32, bad),  # type: ignore[arg-type]
        lambda: hazmat.x25519_public(bad),  # type: ignore[arg-type]
        lambda: hazmat.hkdf_sha256(bad, None, b"", 32),  # type: ignore[arg-type]
        lambda: hazmat.hkdf_sha256(b"", None, bad, 32),  # type: ignore[arg-type]
        lambda: hazmat.hmac_sha256(bad, b""),  # type: ignore[arg-type]
        lambda: hazmat.hmac_sha256(b"", bad),  # type: ignore[arg-type]
        lambda: hazmat.aes256_cbc_encrypt(bad, iv, b""),  # type: ignore[arg-type]
        lambda: hazmat.aes256_cbc_decrypt(k32, bad, iv),  # type: ignore[arg-type]
        lambda: hazmat.aes256_ctr(k32, iv, bad),  # type: ignore[arg-type]
        lambda: hazmat.xeddsa_sign(bad, b""),  # type: ignore[arg-type]
        lambda: hazmat.xeddsa_verify(b"\x05" + k32, b"", bad),  # type: ignore[arg-type]
    ]
    if bad is not None:  # None is a valid salt
        calls.append(lambda: hazmat.hkdf_sha256(b"", bad, b"", 32))  # type: ignore[arg-type]
    for call in calls:
        with pytest.raises(TypeError):
            call()


def test_hkdf_length_must_be_an_int() -> None:
    for bad in (32.0, "32", None, b"\x20"):
        with pytest.raises(TypeError):
            hazmat.hkdf_sha256(b"", None, b"", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, 1, 16, 31, 33, 64])
def test_wrong_lengths_raise_library_errors(n: int) -> None:
    b, k32, iv = bytes(n), bytes(32), bytes(16)
    for call in (
        lambda: hazmat.x25519(b, k32),
        lambda: hazmat.x25519(k32, b),
        lambda: hazmat.x25519_public(b),
        lambda: hazmat.aes256_cbc_encrypt(b, iv, b""),
        lambda: hazmat.aes256_cbc_decrypt(b, iv, iv),
        lambda: hazmat.aes256_ctr(b, iv, b""),
        lambda: hazmat.xeddsa_sign(b, b""),
        lambda: hazmat.xeddsa_verify(b"\x05" + b, b"", bytes(64)),
    ):
        with pytest.raises(errors.InvalidKey):
            call()
    if n != 16:
        for call in (
            lambda: hazmat.aes256_cbc_encrypt(k32, b, b""),
            lambda: hazmat.aes256_cbc_decrypt(k32, b, iv),
            lambda: hazmat.aes256_ctr(k32, b, b""),
        ):
            with pytest.raises(errors.InvalidArgument):
                call()
    if n % 16 or n == 0:
        with pytest.raises(errors.InvalidMessage):
            hazmat.aes256_cbc_decrypt(k32, iv, b)
    # A wrong-length signature simply does not verify.
    public33 = b"\x05" + hazmat.x25519_public(k32)
    assert hazmat.xeddsa_verify(public33, b"", b) is False


def test_bad_public_key_encodings() -> None:
    u = hazmat.x25519_public(bytes(32))
    for bad in (b"\x06" + u, u, b"\x05" + u + b"\x00", b""):
        with pytest.raises(errors.InvalidKey):
            hazmat.xeddsa_verify(bad, b"", bytes(64))


def test_low_order_points_rejected() -> None:
    # u = 0 and u = 1 are low-order: the agreement is all zero and must be refused.
    for u in (bytes(32), (1).to_bytes(32, "little")):
        with pytest.raises(errors.InvalidKey):
            hazmat.x25519(bytes(range(32)), u)


def test_errors_are_library_errors() -> None:
    assert issubclass(errors.InvalidKey, errors.TextSecureError)
    with pytest.raises(errors.TextSecureError):
        hazmat.x25519_public(b"short")


def test_kat_file_is_valid_json() -> None:
    doc = kat()
    for key in ("x25519", "xeddsa", "chain_key", "x3dh_v3", "fingerprint", "incremental_mac"):
        assert doc[key], key
    assert Path(KAT_PATH).stat().st_size > 0
