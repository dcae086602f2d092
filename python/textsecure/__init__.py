"""textsecure: the Signal protocol for Python, with its hot path in Rust.

X3DH (session version 3) and PQXDH (version 4) session setup, the Double Ratchet, sender keys
for groups (libsignal's format and the WhatsApp-era one), libsignal's wire and storage formats.
Everything public is importable from here; ``textsecure._native`` is an implementation detail.
"""

from __future__ import annotations

from textsecure import attachments, errors, hazmat
from textsecure._native import (
    Address,
    GroupCipher,
    IdentityKey,
    IdentityKeyPair,
    KyberKeyPair,
    KyberPreKeyRecord,
    KyberPublicKey,
    KyberSecretKey,
    LegacyGroupCipher,
    LegacySenderKeyDistributionMessage,
    LegacySenderKeyMessage,
    MemoryStore,
    PreKeyBundle,
    PreKeyRecord,
    PreKeySignalMessage,
    PrivateKey,
    PublicKey,
    SenderKeyDistributionMessage,
    SenderKeyMessage,
    SenderKeyRecord,
    SessionCipher,
    SessionRecord,
    SignalMessage,
    SignedPreKeyRecord,
    __version__,
    encrypt_fanout,
    parse_message,
)
from textsecure.enums import MessageType, PqRatchet

__all__ = [
    "Address",
    "attachments",
    "GroupCipher",
    "IdentityKey",
    "IdentityKeyPair",
    "KyberKeyPair",
    "KyberPreKeyRecord",
    "KyberPublicKey",
    "KyberSecretKey",
    "LegacyGroupCipher",
    "LegacySenderKeyDistributionMessage",
    "LegacySenderKeyMessage",
    "MemoryStore",
    "MessageType",
    "PqRatchet",
    "PreKeyBundle",
    "PreKeyRecord",
    "PreKeySignalMessage",
    "PrivateKey",
    "PublicKey",
    "SenderKeyDistributionMessage",
    "SenderKeyMessage",
    "SenderKeyRecord",
    "SessionCipher",
    "SessionRecord",
    "SignalMessage",
    "SignedPreKeyRecord",
    "__version__",
    "encrypt_fanout",
    "errors",
    "hazmat",
    "parse_message",
]
