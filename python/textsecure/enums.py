"""Enumerations of the public API."""

from __future__ import annotations

import enum

__all__ = ["ContentHint", "MessageType", "PqRatchet"]


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


class ContentHint(enum.IntEnum):
    """Sealed sender's content hint: how a receiver that cannot decrypt should react."""

    #: The sender will not resend: show an error at once.
    DEFAULT = 0
    #: The sender will try to resend: delay any error.
    RESENDABLE = 1
    #: Sent implicitly (a receipt, a typing message): show no error.
    IMPLICIT = 2
