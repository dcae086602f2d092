"""Hazardous primitives: for testing and interop, not the protocol API.

These are the raw building blocks under textsecure (X25519, XEdDSA, HKDF-SHA256,
HMAC-SHA256, AES-256-CBC and AES-256-CTR), exposed so tests and interop tools can
cross-check them against other implementations. Nothing here authenticates, pads
lengths, manages nonces or protects keys: use the session API for messaging.

Every function accepts any bytes-like object (``bytes``, ``bytearray``, ``memoryview``
or another buffer) and raises :class:`TypeError` for other types. Bad key lengths raise
:class:`textsecure.errors.InvalidKey`, other bad lengths
:class:`textsecure.errors.InvalidArgument`, bad CBC padding
:class:`textsecure.errors.InvalidMessage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textsecure import _native

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "aes256_cbc_decrypt",
    "aes256_cbc_encrypt",
    "aes256_ctr",
    "hkdf_sha256",
    "hmac_sha256",
    "x25519",
    "x25519_public",
    "xeddsa_sign",
    "xeddsa_verify",
]


def x25519(private: Buffer, public_u: Buffer) -> bytes:
    """X25519 (RFC 7748) of a 32-byte private key and a raw 32-byte u-coordinate.

    Hazardous: for testing and interop, not the protocol API. The private key is clamped;
    an all-zero result (low-order public key) raises InvalidKey, as in libsignal.
    """
    return _native.hazmat_x25519(private, public_u)


def x25519_public(private: Buffer) -> bytes:
    """The raw 32-byte X25519 public key (u-coordinate, no 0x05 prefix) of a private key.

    Hazardous: for testing and interop, not the protocol API.
    """
    return _native.hazmat_x25519_public(private)


def hkdf_sha256(ikm: Buffer, salt: Buffer | None, info: Buffer, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869); ``salt=None`` (or empty) means no salt; 0 <= length <= 8160.

    Hazardous: for testing and interop, not the protocol API.
    """
    return _native.hazmat_hkdf_sha256(ikm, salt, info, length)


def hmac_sha256(key: Buffer, data: Buffer) -> bytes:
    """HMAC-SHA256 (32 bytes) with a key of any length.

    Hazardous: for testing and interop, not the protocol API.
    """
    return _native.hazmat_hmac_sha256(key, data)


def aes256_cbc_encrypt(key: Buffer, iv: Buffer, plaintext: Buffer) -> bytes:
    """AES-256-CBC with PKCS#7 padding (32-byte key, 16-byte IV). Unauthenticated.

    Hazardous: for testing and interop, not the protocol API.
    """
    return _native.hazmat_aes256_cbc_encrypt(key, iv, plaintext)


def aes256_cbc_decrypt(key: Buffer, iv: Buffer, ciphertext: Buffer) -> bytes:
    """AES-256-CBC decryption with PKCS#7 unpadding; InvalidMessage on bad length or padding.

    Hazardous: for testing and interop, not the protocol API (it is a padding oracle unless
    the ciphertext was authenticated first).
    """
    return _native.hazmat_aes256_cbc_decrypt(key, iv, ciphertext)


def aes256_ctr(key: Buffer, nonce16: Buffer, data: Buffer) -> bytes:
    """AES-256-CTR from a 16-byte initial counter block (last 4 bytes count big-endian).

    Hazardous: for testing and interop, not the protocol API. Encrypts and decrypts; the
    32-bit counter wraps after 2**32 blocks (64 GiB) and a key/nonce pair must never repeat.
    """
    return _native.hazmat_aes256_ctr(key, nonce16, data)


def xeddsa_sign(private: Buffer, message: Buffer) -> bytes:
    """A 64-byte XEdDSA signature with fresh randomness, in libsignal's convention.

    Hazardous: for testing and interop, not the protocol API.
    """
    return _native.hazmat_xeddsa_sign(private, message)


def xeddsa_verify(public33: Buffer, message: Buffer, signature: Buffer) -> bool:
    """Verifies an XEdDSA signature against a 33-byte (0x05-prefixed) public key.

    Hazardous: for testing and interop, not the protocol API. Honours libsignal's sign bit
    (top bit of the last byte). A signature of the wrong length is simply not valid (False);
    a malformed public key raises InvalidKey.
    """
    return _native.hazmat_xeddsa_verify(public33, message, signature)
