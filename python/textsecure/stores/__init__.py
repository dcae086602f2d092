"""Durable stores: ``SQLiteStore`` and ``PostgresStore`` (one SQL code path, many accounts per
database, transactions shared with the application, encryption at rest, an exactly-once
inbox, the prekey lifecycle). They have every ``MemoryStore`` method. ``StoreBackend`` is the
protocol every store meets; ``UnitOfWorkStore`` the base class for writing another one."""

from __future__ import annotations

from textsecure.stores._base import DurableStore, InboxItem, Transaction
from textsecure.stores._prekeys import PreKeyCounts, PreKeyUpload, UploadKey
from textsecure.stores._sql import LATEST_VERSION
from textsecure.stores.postgres import PostgresStore
from textsecure.stores.protocol import Conflict, ManagedStore, StoreBackend, UnitOfWorkStore
from textsecure.stores.sqlite import SQLiteStore

__all__ = [
    "Conflict",
    "DurableStore",
    "InboxItem",
    "LATEST_VERSION",
    "ManagedStore",
    "PostgresStore",
    "PreKeyCounts",
    "PreKeyUpload",
    "SQLiteStore",
    "StoreBackend",
    "Transaction",
    "UnitOfWorkStore",
    "UploadKey",
]
