"""The asyncio stores' common half (``AsyncDurableStore``) and ``AsyncSQLiteStore``.

An async store wraps a sync durable store (``sync``) and runs its methods off the event loop,
each as one call on a thread of the store's executor. ``AsyncPostgresStore`` (``_postgres.py``)
also runs the ciphers' units of work natively on the loop (``_execute_async``).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from os import PathLike
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Self, TypeVar

from textsecure import errors
from textsecure._native import (
    Address,
    IdentityKey,
    IdentityKeyPair,
    KyberPreKeyRecord,
    Operation,
    PreKeyBundle,
    PreKeyRecord,
    PublicKey,
    SenderKeyRecord,
    SessionRecord,
    SignedPreKeyRecord,
)
from textsecure.stores import (
    DurableStore,
    InboxItem,
    PreKeyCounts,
    PreKeyUpload,
    SQLiteStore,
    _prekeys,
)
from textsecure.stores._base import INBOX_RETENTION_MS

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["AsyncDurableStore", "AsyncSQLiteStore"]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=DurableStore)


class AsyncDurableStore(Generic[S]):
    """What every asyncio store has: the ``MemoryStore`` / durable-store methods as coroutines
    (each runs the sync store's method off the event loop), ``open()`` / ``aclose()`` /
    ``async with``, and ``sync``, the sync store object itself for code running on a worker
    thread (never on the event loop's thread)."""

    def __init__(self) -> None:
        self._sync_store: S | None = None
        self._closed = False
        self._open_lock: asyncio.Lock | None = None

    # -- life cycle ---------------------------------------------------------------------

    async def _open_sync(self) -> S:
        """Opens the sync store (creating or migrating the schema, opening the account)."""
        raise NotImplementedError

    async def _run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)`` on a thread of this store's executor."""
        raise NotImplementedError

    async def _release(self) -> None:
        """Frees what the store holds once ``sync`` is closed (executors, pool)."""
        raise NotImplementedError

    async def open(self) -> Self:
        """Opens the store (``async with`` does it): creates or migrates the schema and
        opens the account (its identity stored on first open, loaded later). Idempotent."""
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._closed:
                raise errors.StoreError("the store is closed")
            if self._sync_store is None:
                try:
                    self._sync_store = await self._open_sync()
                except BaseException:
                    self._closed = True
                    await self._release()
                    raise
        return self

    async def aclose(self) -> None:
        """Closes the store: waits for the calls in flight, closes the database connection(s)
        the store opened itself, stops its threads. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._sync_store is not None:
                await self._run_final(self._sync_store.close)
        finally:
            await self._release()

    async def _run_final(self, fn: Callable[[], None]) -> None:
        await self._run(fn)

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called."""
        return self._closed

    @property
    def sync(self) -> S:
        """The sync store (a ``DurableStore``) behind this one, for code on a worker thread:
        sync ciphers, ``transaction()``. Calling it on the event loop's thread blocks the
        loop (``AsyncPostgresStore``'s refuses with ``StoreError``)."""
        if self._sync_store is None:
            if self._closed:
                raise errors.StoreError("the store is closed")
            raise errors.StoreError("the store is not open yet: await store.open() first")
        return self._sync_store

    @property
    def identity_key_pair(self) -> IdentityKeyPair:
        """The account's identity key pair (a secret: see the Secrets page)."""
        return self.sync.identity_key_pair

    @property
    def registration_id(self) -> int:
        """The account's registration id."""
        return self.sync.registration_id

    @property
    def account(self) -> str:
        """The local account this store serves."""
        return self.sync.account

    async def _execute_async(self, op: Operation) -> Any:
        """Runs one native operation (or batch) as a unit of work, off the event loop."""
        store = self.sync
        return await self._run(store._execute, op)

    async def _call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)`` off the loop, refused once the store is closed."""
        if self._closed:
            raise errors.StoreError("the store is closed")
        return await self._run(fn, *args, **kwargs)

    # -- identities and sessions --------------------------------------------------------

    async def identity(self, address: Address) -> IdentityKey | None:
        """The trusted identity of ``address``, or None."""
        return await self._call(self.sync.identity, address)

    async def trust(self, address: Address, identity_key: PublicKey | Buffer) -> None:
        """Accepts ``identity_key`` for ``address`` (replacing a changed one)."""
        await self._call(self.sync.trust, address, identity_key)

    async def session(self, address: Address) -> SessionRecord | None:
        """The session record with ``address``, or None."""
        return await self._call(self.sync.session, address)

    async def save_session(self, address: Address, record: SessionRecord) -> None:
        """Stores ``record`` as the session with ``address`` (a new version)."""
        await self._call(self.sync.save_session, address, record)

    async def remove_session(self, address: Address) -> None:
        """Removes the session with ``address`` (a tombstone keeps its version)."""
        await self._call(self.sync.remove_session, address)

    async def session_addresses(self) -> list[Address]:
        """Addresses with a stored session, sorted."""
        return await self._call(self.sync.session_addresses)

    # -- prekeys ------------------------------------------------------------------------

    async def save_prekey(self, record: PreKeyRecord) -> None:
        """Stores a one-time prekey."""
        await self._call(self.sync.save_prekey, record)

    async def load_prekey(self, id: int) -> PreKeyRecord | None:
        """The one-time prekey ``id``, or None."""
        return await self._call(self.sync.load_prekey, id)

    async def remove_prekey(self, id: int) -> None:
        """Removes the one-time prekey ``id``."""
        await self._call(self.sync.remove_prekey, id)

    async def save_signed_prekey(self, record: SignedPreKeyRecord) -> None:
        """Stores a signed prekey."""
        await self._call(self.sync.save_signed_prekey, record)

    async def load_signed_prekey(self, id: int) -> SignedPreKeyRecord | None:
        """The signed prekey ``id``, or None."""
        return await self._call(self.sync.load_signed_prekey, id)

    async def remove_signed_prekey(self, id: int) -> None:
        """Removes the signed prekey ``id`` (and the replay records of its sessions)."""
        await self._call(self.sync.remove_signed_prekey, id)

    async def save_kyber_prekey(
        self, record: KyberPreKeyRecord, *, last_resort: bool = False
    ) -> None:
        """Stores a Kyber prekey; a ``last_resort`` one is kept after use."""
        await self._call(self.sync.save_kyber_prekey, record, last_resort=last_resort)

    async def load_kyber_prekey(self, id: int) -> KyberPreKeyRecord | None:
        """The Kyber prekey ``id``, or None."""
        return await self._call(self.sync.load_kyber_prekey, id)

    async def remove_kyber_prekey(self, id: int) -> None:
        """Removes the Kyber prekey ``id``."""
        await self._call(self.sync.remove_kyber_prekey, id)

    async def new_bundle(
        self,
        device_id: int,
        *,
        prekey_id: int | None = None,
        signed_prekey_id: int,
        kyber_prekey_id: int | None = None,
        one_time: bool = True,
        kyber: bool = True,
        kyber_last_resort: bool = False,
    ) -> PreKeyBundle:
        """Generates prekeys, stores their private halves and returns the public bundle
        (as ``MemoryStore.new_bundle``)."""
        return await self._call(
            self.sync.new_bundle,
            device_id,
            prekey_id=prekey_id,
            signed_prekey_id=signed_prekey_id,
            kyber_prekey_id=kyber_prekey_id,
            one_time=one_time,
            kyber=kyber,
            kyber_last_resort=kyber_last_resort,
        )

    # -- prekey lifecycle ---------------------------------------------------------------

    async def prekey_counts(self, *, now_ms: int | None = None) -> PreKeyCounts:
        """The prekey counts and ages (``DurableStore.prekey_counts``)."""
        return await self._call(self.sync.prekey_counts, now_ms=now_ms)

    async def generate_prekeys(
        self, count: int = _prekeys.BATCH, *, kyber: bool = True, now_ms: int | None = None
    ) -> PreKeyUpload:
        """A batch of unconfirmed one-time prekeys to upload (``DurableStore.generate_prekeys``)."""
        return await self._call(self.sync.generate_prekeys, count, kyber=kyber, now_ms=now_ms)

    async def refill_prekeys(
        self,
        *,
        server_count: int,
        server_kyber_count: int | None = None,
        batch: int = _prekeys.BATCH,
        threshold: int = _prekeys.REFILL_THRESHOLD,
        kyber: bool = True,
        now_ms: int | None = None,
    ) -> PreKeyUpload | None:
        """A new batch when the server runs low, else None (``DurableStore.refill_prekeys``)."""
        return await self._call(
            self.sync.refill_prekeys,
            server_count=server_count,
            server_kyber_count=server_kyber_count,
            batch=batch,
            threshold=threshold,
            kyber=kyber,
            now_ms=now_ms,
        )

    async def rotate_signed_prekeys(
        self,
        *,
        now_ms: int | None = None,
        interval_ms: int = _prekeys.ROTATION_INTERVAL_MS,
        grace_ms: int = _prekeys.REPLACED_GRACE_MS,
    ) -> PreKeyUpload | None:
        """New signed / last-resort prekeys when due, else None
        (``DurableStore.rotate_signed_prekeys``)."""
        return await self._call(
            self.sync.rotate_signed_prekeys,
            now_ms=now_ms,
            interval_ms=interval_ms,
            grace_ms=grace_ms,
        )

    async def confirm_upload(self, upload: PreKeyUpload, *, now_ms: int | None = None) -> None:
        """Marks ``upload``'s keys as taken by the server (``DurableStore.confirm_upload``)."""
        await self._call(self.sync.confirm_upload, upload, now_ms=now_ms)

    async def current_bundle(
        self, device_id: int, *, kyber: bool = True, now_ms: int | None = None
    ) -> PreKeyBundle:
        """The bundle a server would hand out (``DurableStore.current_bundle``)."""
        return await self._call(self.sync.current_bundle, device_id, kyber=kyber, now_ms=now_ms)

    # -- sender keys --------------------------------------------------------------------

    async def sender_key(
        self, sender: Address, distribution_id: uuid.UUID | str
    ) -> SenderKeyRecord | None:
        """The sender-key record of (``sender``, ``distribution_id``), or None."""
        return await self._call(self.sync.sender_key, sender, distribution_id)

    async def save_sender_key(
        self, sender: Address, distribution_id: uuid.UUID | str, record: SenderKeyRecord
    ) -> None:
        """Stores a sender-key record."""
        await self._call(self.sync.save_sender_key, sender, distribution_id, record)

    async def remove_sender_key(self, sender: Address, distribution_id: uuid.UUID | str) -> None:
        """Removes a sender-key record (a tombstone keeps its version)."""
        await self._call(self.sync.remove_sender_key, sender, distribution_id)

    # -- the exactly-once inbox ---------------------------------------------------------

    async def inbox_decrypt(
        self,
        address: Address,
        message: Any,
        *,
        pq_ratchet: Any = None,
        local_address: Address | None = None,
    ) -> InboxItem:
        """Decrypts ``message`` exactly once, the plaintext stored in the same commit
        (``DurableStore.inbox_decrypt``)."""
        return await self._call(
            self.sync.inbox_decrypt,
            address,
            message,
            pq_ratchet=pq_ratchet,
            local_address=local_address,
        )

    async def inbox_pending(self) -> list[InboxItem]:
        """Decrypted envelopes not acknowledged yet, oldest first."""
        return await self._call(self.sync.inbox_pending)

    async def inbox_ack(self, hash: bytes) -> bool:
        """Acknowledges a processed envelope; returns whether it was pending."""
        return await self._call(self.sync.inbox_ack, hash)

    async def inbox_purge(self, older_than_ms: int = INBOX_RETENTION_MS) -> int:
        """Deletes old inbox tombstones; returns how many."""
        return await self._call(self.sync.inbox_purge, older_than_ms)

    # -- encryption at rest -------------------------------------------------------------

    async def rotate_key(self, new_key: Buffer | None) -> None:
        """Re-seals every record of the account under ``new_key`` in one transaction."""
        await self._call(self.sync.rotate_key, new_key)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._sync_store is not None else "new"
        return f"<{type(self).__name__} {state}>"


class AsyncSQLiteStore(AsyncDurableStore[SQLiteStore]):
    """``SQLiteStore`` for asyncio: the same database, schema and methods, every call run on
    one dedicated thread (SQLite serialises writers anyway), so the event loop never waits
    for the disk or the crypto. ``async with AsyncSQLiteStore(path, account=...) as store:``;
    the async ciphers of ``textsecure.aio`` accept it."""

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        account: str = "default",
        identity: IdentityKeyPair | None = None,
        registration_id: int | None = None,
        key: Buffer | None = None,
    ) -> None:
        super().__init__()
        self._args = (path, account, identity, registration_id, key)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textsecure-sqlite")

    async def _open_sync(self) -> SQLiteStore:
        path, account, identity, registration_id, key = self._args
        return await self._run(
            SQLiteStore,
            path,
            account=account,
            identity=identity,
            registration_id=registration_id,
            key=key,
        )

    async def _run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def _release(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, True)

    def __repr__(self) -> str:
        return f"<AsyncSQLiteStore account={self._args[1]!r}{' closed' if self._closed else ''}>"
