"""The asyncio ciphers and batch calls.

A call never runs crypto or store I/O on the event loop. On an ``AsyncPostgresStore`` the
1:1 session operations are native ``Operation`` objects run by the store's async unit of work;
every other call runs the sync cipher of the same name on a worker thread, against the store
the async one wraps (``store.sync``: on ``AsyncPostgresStore`` its database round trips are
coroutines on the loop) or against a sync store given directly (the loop's default executor).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeAlias, TypeVar

import textsecure
from textsecure import errors
from textsecure._native import (
    Address,
    GroupCipher,
    LegacyGroupCipher,
    LegacySenderKeyDistributionMessage,
    LegacySenderKeyMessage,
    MemoryStore,
    Operation,
    PreKeyBundle,
    PreKeySignalMessage,
    PublicKey,
    SealedSenderResult,
    SealedSessionCipher,
    SenderCertificate,
    SenderKeyDistributionMessage,
    SenderKeyMessage,
    ServerCertificate,
    SessionCipher,
    SignalMessage,
    UnidentifiedSenderMessageContent,
)
from textsecure.enums import PqRatchet
from textsecure.stores import DurableStore
from textsecure.stores.protocol import StoreBackend

from ._postgres import AsyncPostgresStore
from ._stores import AsyncDurableStore

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "AnyStore",
    "AsyncGroupCipher",
    "AsyncLegacyGroupCipher",
    "AsyncSealedSessionCipher",
    "AsyncSessionCipher",
    "decrypt_many",
    "encrypt_fanout",
    "encrypt_many",
]

P = ParamSpec("P")
R = TypeVar("R")

#: every store the async ciphers take: an async store of ``textsecure.aio``, or a sync one
AnyStore: TypeAlias = AsyncDurableStore[Any] | MemoryStore | StoreBackend
#: a 1:1 message as the ciphers take it (parsed, or the ``(type, body)`` pair off the wire)
Message: TypeAlias = "SignalMessage | PreKeySignalMessage | tuple[int, Buffer]"
TrustRoot: TypeAlias = "PublicKey | Buffer | Sequence[PublicKey | Buffer]"


def _check_store(store: object) -> None:
    if isinstance(store, AsyncDurableStore | MemoryStore) or hasattr(store, "_execute"):
        return
    raise TypeError(
        "store must be a textsecure store (an async store of textsecure.aio, MemoryStore, "
        "SQLiteStore, PostgresStore or a textsecure.stores.StoreBackend)"
    )


def _sync_store(store: AnyStore) -> MemoryStore | StoreBackend:
    """The store a sync cipher on a worker thread works on."""
    if isinstance(store, AsyncDurableStore):
        sync: DurableStore = store.sync
        return sync
    return store


async def _offload(store: AnyStore, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` on a worker thread: the async store's executor, or the loop's
    default executor for a sync store."""
    if isinstance(store, AsyncDurableStore):
        return await store._call(fn, *args, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))


class AsyncSessionCipher:
    """``SessionCipher`` for asyncio: ``await process_bundle / encrypt / decrypt``. ``store``
    is an async store of ``textsecure.aio`` or any sync store; the options are
    ``SessionCipher``'s. On an ``AsyncPostgresStore`` each call is one natively async unit of
    work; elsewhere the sync cipher runs on a worker thread."""

    def __init__(
        self,
        store: AnyStore,
        remote: Address,
        *,
        pq_ratchet: PqRatchet | None = None,
        local_address: Address | None = None,
    ) -> None:
        _check_store(store)
        if not isinstance(remote, Address):
            raise TypeError("remote must be an Address")
        if pq_ratchet is not None and not isinstance(pq_ratchet, PqRatchet):
            raise TypeError("pq_ratchet must be a PqRatchet or None")
        if local_address is not None and not isinstance(local_address, Address):
            raise TypeError("local_address must be an Address or None")
        self._store = store
        self._remote = remote
        self._pq_ratchet = pq_ratchet
        self._local_address = local_address
        self._cipher: SessionCipher | None = None

    @property
    def store(self) -> AnyStore:
        """The store the cipher works on."""
        return self._store

    @property
    def remote(self) -> Address:
        """The remote device."""
        return self._remote

    @property
    def pq_ratchet(self) -> PqRatchet | None:
        """The SPQR policy for new version-4 sessions (None: ``PqRatchet.REQUIRED``)."""
        return self._pq_ratchet

    @property
    def local_address(self) -> Address | None:
        """This side's address (SignalMessage field 6), or None."""
        return self._local_address

    def _sync(self) -> SessionCipher:
        if self._cipher is None:
            self._cipher = SessionCipher(
                _sync_store(self._store),
                self._remote,
                pq_ratchet=self._pq_ratchet,
                local_address=self._local_address,
            )
        return self._cipher

    async def process_bundle(self, bundle: PreKeyBundle) -> None:
        """Starts a session from the peer's bundle (X3DH or PQXDH); verifies its signatures."""
        store = self._store
        if isinstance(store, AsyncPostgresStore):
            op = Operation.process_bundle(self._remote, bundle, pq_ratchet=self._pq_ratchet)
            await store._execute_async(op)
            return
        await _offload(store, self._sync().process_bundle, bundle)

    async def encrypt(self, plaintext: Buffer) -> SignalMessage | PreKeySignalMessage:
        """Encrypts: a PreKeySignalMessage until the peer has replied, then SignalMessages."""
        store = self._store
        if isinstance(store, AsyncPostgresStore):
            op = Operation.encrypt(self._remote, plaintext, local_address=self._local_address)
            result: SignalMessage | PreKeySignalMessage = await store._execute_async(op)
            return result
        return await _offload(store, self._sync().encrypt, plaintext)

    async def decrypt(self, message: Message) -> bytes:
        """Decrypts a SignalMessage or PreKeySignalMessage (or a ``(type, body)`` pair). On
        any failure nothing is stored."""
        store = self._store
        if isinstance(store, AsyncPostgresStore):
            op = Operation.decrypt(
                self._remote,
                message,
                pq_ratchet=self._pq_ratchet,
                local_address=self._local_address,
            )
            plaintext: bytes = await store._execute_async(op)
            return plaintext
        return await _offload(store, self._sync().decrypt, message)

    def __repr__(self) -> str:
        return f"<AsyncSessionCipher remote={self._remote}>"


class AsyncGroupCipher:
    """``GroupCipher`` (sender keys, libsignal's format) for asyncio: every method is a
    coroutine running the sync cipher on a worker thread."""

    def __init__(self, store: AnyStore, distribution_id: uuid.UUID) -> None:
        _check_store(store)
        if not isinstance(distribution_id, uuid.UUID):
            raise TypeError("distribution_id must be a uuid.UUID")
        self._store = store
        self._distribution_id = distribution_id
        self._cipher: GroupCipher | None = None

    @property
    def distribution_id(self) -> uuid.UUID:
        """The distribution (group) id."""
        return self._distribution_id

    def _sync(self) -> GroupCipher:
        if self._cipher is None:
            self._cipher = GroupCipher(_sync_store(self._store), self._distribution_id)
        return self._cipher

    async def create_distribution(self, sender: Address) -> SenderKeyDistributionMessage:
        """Creates (or reuses) ``sender``'s sender key; the message to send the group."""
        return await _offload(self._store, self._sync().create_distribution, sender)

    async def process_distribution(
        self, sender: Address, message: SenderKeyDistributionMessage
    ) -> None:
        """Stores ``sender``'s sender key from its distribution message."""
        await _offload(self._store, self._sync().process_distribution, sender, message)

    async def encrypt(self, sender: Address, plaintext: Buffer) -> SenderKeyMessage:
        """Encrypts to the group with ``sender``'s sender key."""
        return await _offload(self._store, self._sync().encrypt, sender, plaintext)

    async def decrypt(self, sender: Address, message: SenderKeyMessage) -> bytes:
        """Decrypts a group message from ``sender``."""
        return await _offload(self._store, self._sync().decrypt, sender, message)


class AsyncLegacyGroupCipher:
    """``LegacyGroupCipher`` (the WhatsApp-era sender keys) for asyncio: every method is a
    coroutine running the sync cipher on a worker thread."""

    def __init__(self, store: AnyStore, group_id: str) -> None:
        _check_store(store)
        if not isinstance(group_id, str):
            raise TypeError("group_id must be a str")
        self._store = store
        self._group_id = group_id
        self._cipher: LegacyGroupCipher | None = None

    @property
    def group_id(self) -> str:
        """The group id naming the sender keys."""
        return self._group_id

    def _sync(self) -> LegacyGroupCipher:
        if self._cipher is None:
            self._cipher = LegacyGroupCipher(_sync_store(self._store), self._group_id)
        return self._cipher

    async def create_distribution(self, sender: Address) -> LegacySenderKeyDistributionMessage:
        """Creates (or reuses) ``sender``'s sender key; the message to send the group."""
        return await _offload(self._store, self._sync().create_distribution, sender)

    async def process_distribution(
        self, sender: Address, message: LegacySenderKeyDistributionMessage | Buffer
    ) -> None:
        """Stores ``sender``'s sender key from its distribution message."""
        await _offload(self._store, self._sync().process_distribution, sender, message)

    async def encrypt(self, sender: Address, plaintext: Buffer) -> LegacySenderKeyMessage:
        """Encrypts to the group with ``sender``'s sender key."""
        return await _offload(self._store, self._sync().encrypt, sender, plaintext)

    async def decrypt(self, sender: Address, message: LegacySenderKeyMessage | Buffer) -> bytes:
        """Decrypts a group message from ``sender``."""
        return await _offload(self._store, self._sync().decrypt, sender, message)


class AsyncSealedSessionCipher:
    """``SealedSessionCipher`` (sealed sender v1 / v2) for asyncio: every method is a
    coroutine running the sync cipher on a worker thread; the options are its own."""

    def __init__(
        self,
        store: AnyStore,
        *,
        pq_ratchet: PqRatchet | None = None,
        local_address: Address | None = None,
    ) -> None:
        _check_store(store)
        self._store = store
        self._pq_ratchet = pq_ratchet
        self._local_address = local_address
        self._cipher: SealedSessionCipher | None = None

    def _sync(self) -> SealedSessionCipher:
        if self._cipher is None:
            self._cipher = SealedSessionCipher(
                _sync_store(self._store),
                pq_ratchet=self._pq_ratchet,
                local_address=self._local_address,
            )
        return self._cipher

    async def encrypt(
        self,
        remote: Address,
        plaintext: Buffer,
        sender_certificate: SenderCertificate,
        *,
        content_hint: int = 0,
        group_id: Buffer | None = None,
    ) -> bytes:
        """Encrypts to ``remote``'s session and seals it (sealed sender v1)."""
        return await _offload(
            self._store,
            self._sync().encrypt,
            remote,
            plaintext,
            sender_certificate,
            content_hint=content_hint,
            group_id=group_id,
        )

    async def seal(self, remote: Address, content: UnidentifiedSenderMessageContent) -> bytes:
        """Seals already encrypted content to ``remote``."""
        return await _offload(self._store, self._sync().seal, remote, content)

    async def multi_recipient_encrypt(
        self,
        recipients: Sequence[Address],
        content: UnidentifiedSenderMessageContent,
        *,
        excluded: Sequence[str] = (),
        threads: int | None = None,
    ) -> bytes:
        """Seals ``content`` to many recipients at once (sealed sender v2)."""
        return await _offload(
            self._store,
            self._sync().multi_recipient_encrypt,
            recipients,
            content,
            excluded=excluded,
            threads=threads,
        )

    async def decrypt_to_usmc(self, data: Buffer) -> UnidentifiedSenderMessageContent:
        """Opens the outer layer only (no certificate check, no session touched)."""
        return await _offload(self._store, self._sync().decrypt_to_usmc, data)

    async def unseal(
        self,
        data: Buffer,
        *,
        trust_root: TrustRoot,
        timestamp: int,
        local_address: Address | None = None,
        server_certificates: Sequence[ServerCertificate] | None = None,
    ) -> UnidentifiedSenderMessageContent:
        """Opens the seal and validates the sender certificate (no session touched)."""
        return await _offload(
            self._store,
            self._sync().unseal,
            data,
            trust_root=trust_root,
            timestamp=timestamp,
            local_address=local_address,
            server_certificates=server_certificates,
        )

    async def decrypt(
        self,
        data: Buffer,
        *,
        trust_root: TrustRoot,
        timestamp: int,
        local_address: Address | None = None,
        server_certificates: Sequence[ServerCertificate] | None = None,
    ) -> SealedSenderResult:
        """Opens the seal, validates the certificate and decrypts the message inside."""
        return await _offload(
            self._store,
            self._sync().decrypt,
            data,
            trust_root=trust_root,
            timestamp=timestamp,
            local_address=local_address,
            server_certificates=server_certificates,
        )


async def encrypt_fanout(
    store: AnyStore, addresses: Iterable[Address], plaintext: Buffer
) -> dict[Address, SignalMessage | PreKeySignalMessage | errors.TextSecureError]:
    """``textsecure.encrypt_fanout`` for asyncio (on a worker thread): one plaintext to many
    sessions, one result (a message or the error) per address."""
    _check_store(store)
    return await _offload(
        store, textsecure.encrypt_fanout, _sync_store(store), list(addresses), plaintext
    )


# -- batches --------------------------------------------------------------------------------


def _each(
    run: Callable[[Address, Any], R], items: Sequence[tuple[Address, Any]]
) -> list[R | errors.TextSecureError]:
    """``run`` on each item in order; a ``textsecure.errors`` failure is its item's result."""
    out: list[R | errors.TextSecureError] = []
    for address, value in items:
        try:
            out.append(run(address, value))
        except errors.TextSecureError as e:
            out.append(e)
    return out


async def _each_session(
    store: AsyncPostgresStore,
    items: Sequence[tuple[Address, Any]],
    make: Callable[[Address, Any], Operation],
) -> list[Any]:
    """The items of each session in order, the sessions concurrently (natively async)."""
    results: list[Any] = [None] * len(items)
    by_session: dict[Address, list[int]] = {}
    for i, (address, _) in enumerate(items):
        by_session.setdefault(address.canonical(), []).append(i)

    async def session(indices: list[int]) -> None:
        for i in indices:
            address, value = items[i]
            try:
                results[i] = await store._execute_async(make(address, value))
            except errors.TextSecureError as e:
                results[i] = e

    async with asyncio.TaskGroup() as tg:
        for indices in by_session.values():
            tg.create_task(session(indices))
    return results


def _items(items: Iterable[tuple[Address, Any]]) -> list[tuple[Address, Any]]:
    out = list(items)
    for item in out:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Address)):
            raise TypeError("items must be (Address, value) pairs")
    return out


async def decrypt_many(
    store: AnyStore,
    items: Iterable[tuple[Address, Message]],
    *,
    pq_ratchet: PqRatchet | None = None,
    local_address: Address | None = None,
) -> list[bytes | errors.TextSecureError]:
    """Decrypts many 1:1 messages: ``items`` are ``(sender, message)`` pairs; returns, in
    order, each plaintext or the ``textsecure.errors`` exception that item raised (a failed
    item changes nothing). Messages of one session are decrypted in their order.

    With ``textsecure.decrypt_many`` (one unit of work per batch) it runs that on a worker
    thread; without it, each message is a unit of work of its own (on ``AsyncPostgresStore``
    the sessions concurrently)."""
    _check_store(store)
    batch = _items(items)
    native: Callable[..., list[bytes | errors.TextSecureError]] | None = getattr(
        textsecure, "decrypt_many", None
    )
    options: dict[str, Any] = {}
    if pq_ratchet is not None:
        options["pq_ratchet"] = pq_ratchet
    if local_address is not None:
        options["local_address"] = local_address
    if native is not None:
        return await _offload(store, native, _sync_store(store), batch, **options)
    if isinstance(store, AsyncPostgresStore):
        return await _each_session(store, batch, lambda a, m: Operation.decrypt(a, m, **options))
    sync = _sync_store(store)

    def one(address: Address, message: Any) -> bytes:
        return SessionCipher(sync, address, **options).decrypt(message)

    return await _offload(store, _each, one, batch)


async def encrypt_many(
    store: AnyStore,
    items: Iterable[tuple[Address, Buffer]],
    *,
    local_address: Address | None = None,
) -> list[SignalMessage | PreKeySignalMessage | errors.TextSecureError]:
    """Encrypts many 1:1 messages: ``items`` are ``(recipient, plaintext)`` pairs; returns,
    in order, each message or the ``textsecure.errors`` exception that item raised. Messages
    to one session are encrypted in their order (as ``decrypt_many``)."""
    _check_store(store)
    batch = _items(items)
    native: Callable[..., list[SignalMessage | PreKeySignalMessage | errors.TextSecureError]]
    native_or_none = getattr(textsecure, "encrypt_many", None)
    if native_or_none is not None:
        native = native_or_none
        kwargs = {} if local_address is None else {"local_address": local_address}
        return await _offload(store, native, _sync_store(store), batch, **kwargs)
    if isinstance(store, AsyncPostgresStore):
        return await _each_session(
            store, batch, lambda a, p: Operation.encrypt(a, p, local_address=local_address)
        )
    sync = _sync_store(store)

    def one(address: Address, plaintext: Any) -> SignalMessage | PreKeySignalMessage:
        return SessionCipher(sync, address, local_address=local_address).encrypt(plaintext)

    return await _offload(store, _each, one, batch)
