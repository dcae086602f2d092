"""textsecure: the Signal protocol for Python, with its hot path in Rust."""

from __future__ import annotations

from textsecure import attachments, errors
from textsecure._native import __version__

__all__ = ["__version__", "attachments", "errors"]
