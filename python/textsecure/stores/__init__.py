"""Durable stores: ``SQLiteStore`` and ``PostgresStore`` (one SQL code path, many accounts per
database, transactions shared with the application, encryption at rest, an exactly-once
inbox, the prekey lifecycle). They have every ``MemoryStore`` method."""

from __future__ import annotations

from textsecure.stores._base import DurableStore, InboxItem, Transaction
from textsecure.stores._prekeys import PreKeyCounts, PreKeyUpload, UploadKey
from textsecure.stores._sql import LATEST_VERSION
from textsecure.stores.postgres import PostgresStore
from textsecure.stores.sqlite import SQLiteStore

__all__ = [
    "DurableStore",
    "InboxItem",
    "LATEST_VERSION",
    "PostgresStore",
    "PreKeyCounts",
    "PreKeyUpload",
    "SQLiteStore",
    "Transaction",
    "UploadKey",
]
