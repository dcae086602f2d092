"""Test helpers for applications and store authors (they need pytest).

``textsecure.testing.conformance.StoreConformance``: the conformance kit a store (a
``textsecure.stores.protocol.StoreBackend``) is run against.
"""

from __future__ import annotations

from textsecure.testing.conformance import StoreConformance

__all__ = ["StoreConformance"]
