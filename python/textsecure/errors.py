"""The exception hierarchy of textsecure (the source of truth; the Rust layer imports these).

Every failure of the library raises a subclass of :class:`TextSecureError`, and leaves every
stored state as it was before the call.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TextSecureError",
    "InvalidKey",
    "InvalidSignature",
    "InvalidMessage",
    "MessageGapTooLarge",
    "DuplicateMessage",
    "UnsupportedVersion",
    "NoSession",
    "UntrustedIdentity",
    "InvalidPreKeyId",
    "InvalidRecord",
    "NoSenderKey",
    "InvalidArgument",
    "StoreError",
    "InvalidCertificate",
    "FingerprintVersionMismatch",
]


class TextSecureError(Exception):
    """Base class of every textsecure error."""


class InvalidKey(TextSecureError, ValueError):
    """A key had the wrong length, type byte or value."""


class InvalidSignature(TextSecureError, ValueError):
    """A signature (prekey, certificate, message) did not verify."""


class InvalidMessage(TextSecureError, ValueError):
    """A message was malformed, failed authentication or could not be decrypted.

    Authentication failures carry no detail on purpose, so errors are no oracle.
    """


class MessageGapTooLarge(InvalidMessage):
    """A message skipped further ahead in its chain than the limit allows."""


class DuplicateMessage(TextSecureError):
    """The message was already decrypted (its key is used up). State is unchanged."""


class UnsupportedVersion(TextSecureError, ValueError):
    """A message or record version this implementation does not speak."""


class NoSession(TextSecureError):
    """There is no usable session with that address."""


class UntrustedIdentity(TextSecureError):
    """The remote identity key differs from the trusted one; ``store.trust()`` accepts it."""

    address: Any
    identity_key: Any

    def __init__(self, message: str, address: Any = None, identity_key: Any = None) -> None:
        super().__init__(message)
        self.address = address
        self.identity_key = identity_key


class InvalidPreKeyId(TextSecureError):
    """A prekey (one-time, signed or Kyber) named by a message is not in the store."""


class InvalidRecord(TextSecureError, ValueError):
    """A serialized record (session, prekey, sender key) could not be read."""


class NoSenderKey(TextSecureError):
    """No sender key state exists for that sender and distribution."""


class InvalidArgument(TextSecureError, ValueError):
    """An argument was outside its allowed range."""


class StoreError(TextSecureError):
    """A store could not load or save; the original error is chained as ``__cause__``."""


class InvalidCertificate(TextSecureError, ValueError):
    """A sealed-sender certificate was malformed, not signed by the trust root (or by its
    server certificate), revoked, or expired at the validation time."""


class FingerprintVersionMismatch(TextSecureError, ValueError):
    """Two scannable safety numbers of different versions cannot be compared.

    ``theirs`` is the version in the other party's encoding, ``ours`` our own.
    """

    theirs: int | None
    ours: int | None

    def __init__(self, message: str, theirs: int | None = None, ours: int | None = None) -> None:
        super().__init__(message)
        self.theirs = theirs
        self.ours = ours
