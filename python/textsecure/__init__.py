"""textsecure: the Signal protocol for Python, with its hot path in Rust.

X3DH (session version 3) and PQXDH (version 4) session setup, the Double Ratchet, libsignal's
wire and storage formats. Everything public is importable from here; ``textsecure._native``
is an implementation detail.
"""

from __future__ import annotations

from textsecure import errors, hazmat
from textsecure._native import (
    Address,
    Fingerprint,
    IdentityKey,
    IdentityKeyPair,
    KyberKeyPair,
    KyberPreKeyRecord,
    KyberPublicKey,
    KyberSecretKey,
    MemoryStore,
    PreKeyBundle,
    PreKeyRecord,
    PreKeySignalMessage,
    PrivateKey,
    PublicKey,
    SealedSenderMultiRecipientMessage,
    SealedSenderResult,
    SealedSessionCipher,
    SenderCertificate,
    ServerCertificate,
    SessionCipher,
    SessionRecord,
    SignalMessage,
    SignedPreKeyRecord,
    UnidentifiedSenderMessageContent,
    __version__,
    parse_message,
    sealed_sender_decrypt_to_usmc,
    sealed_sender_encrypt,
    sealed_sender_multi_recipient_encrypt,
    sealed_sender_multi_recipient_message_for_single_recipient,
)
from textsecure.enums import ContentHint, MessageType, PqRatchet

__all__ = [
    "Address",
    "ContentHint",
    "Fingerprint",
    "IdentityKey",
    "IdentityKeyPair",
    "KyberKeyPair",
    "KyberPreKeyRecord",
    "KyberPublicKey",
    "KyberSecretKey",
    "MemoryStore",
    "MessageType",
    "PqRatchet",
    "PreKeyBundle",
    "PreKeyRecord",
    "PreKeySignalMessage",
    "PrivateKey",
    "PublicKey",
    "SealedSenderMultiRecipientMessage",
    "SealedSenderResult",
    "SealedSessionCipher",
    "SenderCertificate",
    "ServerCertificate",
    "SessionCipher",
    "SessionRecord",
    "SignalMessage",
    "SignedPreKeyRecord",
    "UnidentifiedSenderMessageContent",
    "__version__",
    "errors",
    "hazmat",
    "parse_message",
    "sealed_sender_decrypt_to_usmc",
    "sealed_sender_encrypt",
    "sealed_sender_multi_recipient_encrypt",
    "sealed_sender_multi_recipient_message_for_single_recipient",
]
