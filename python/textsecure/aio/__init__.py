"""textsecure for asyncio: async stores, ciphers and batch calls (``docs/asyncio.md``).

- ``AsyncPostgresStore`` (psycopg's ``AsyncConnectionPool``): the ciphers' units of work run
  natively on the event loop (locks, reads, writes), the native plan on a thread;
- ``AsyncSQLiteStore``: ``SQLiteStore`` on one dedicated thread;
- ``AsyncSessionCipher``, ``AsyncGroupCipher``, ``AsyncLegacyGroupCipher``,
  ``AsyncSealedSessionCipher``, ``encrypt_fanout``, ``decrypt_many``, ``encrypt_many``: every
  method a coroutine; they take the async stores and the sync ones (``MemoryStore``,
  ``SQLiteStore``, ``PostgresStore``, any ``StoreBackend``).

Neither crypto nor database I/O ever runs on the event loop's thread. Importing this module
imports neither psycopg nor psycopg_pool (``AsyncPostgresStore`` does when it opens).
"""

from __future__ import annotations

from textsecure.aio._ciphers import (
    AnyStore as AnyStore,  # a type alias: every store the async ciphers take
)
from textsecure.aio._ciphers import (
    AsyncGroupCipher,
    AsyncLegacyGroupCipher,
    AsyncSealedSessionCipher,
    AsyncSessionCipher,
    decrypt_many,
    encrypt_fanout,
    encrypt_many,
)
from textsecure.aio._postgres import AsyncPostgresStore
from textsecure.aio._stores import AsyncDurableStore, AsyncSQLiteStore

__all__ = [
    "AsyncDurableStore",
    "AsyncGroupCipher",
    "AsyncLegacyGroupCipher",
    "AsyncPostgresStore",
    "AsyncSQLiteStore",
    "AsyncSealedSessionCipher",
    "AsyncSessionCipher",
    "decrypt_many",
    "encrypt_fanout",
    "encrypt_many",
]
