"""Enumerations of the public API."""

from __future__ import annotations

import enum

__all__ = ["MessageType", "PqRatchet"]


class MessageType(enum.IntEnum):
    """libsignal's ``CiphertextMessageType``."""

    WHISPER = 2
    PREKEY = 3
    SENDERKEY = 7
    PLAINTEXT = 8


class PqRatchet(enum.Enum):
    """SPQR (post-quantum triple ratchet) policy for new version-4 sessions."""

    #: New v4 sessions require SPQR v1 (libsignal 0.92 and later).
    REQUIRED = "required"
    #: Offer SPQR but accept a peer without it (libsignal 0.83 to 0.91).
    PREFERRED = "preferred"
