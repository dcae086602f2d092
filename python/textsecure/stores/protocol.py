"""The store protocol: what a store must do for the ciphers, and a base class to build one on.

Every cipher (``SessionCipher``, ``GroupCipher``, ``LegacyGroupCipher``,
``SealedSessionCipher``, ``encrypt_fanout``) accepts a ``MemoryStore`` (run natively) or any
object of the :class:`StoreBackend` protocol. For such an object a cipher call becomes one
``store._execute(op)`` with a native ``Operation`` ``op``, and the cipher returns what
``_execute`` returns. ``_execute`` must run the operation as one *unit of work*:

1. ``needs = op.needs()`` says what the operation reads (sessions, identities, prekeys, base
   keys, sender keys) and which locks serialise it (``needs.lock_keys``).
2. The store loads exactly those rows into a native ``Snapshot`` (row bytes as stored, with
   their versions).
3. ``changes, result = op.plan(snapshot)`` runs the protocol in Rust against the snapshot
   (touching no store); it raises a ``textsecure.errors`` exception and changes nothing when the
   operation fails.
4. The store applies the whole ``ChangeSet`` atomically -- every row or none -- checking that
   nothing it read moved meanwhile (below). A lost race rolls back and runs steps 2-4 again,
   at most :data:`MAX_ATTEMPTS` times, then raises ``errors.StoreError``.

**Versions.** Session and sender-key rows carry an integer version: 0 when there is no row,
1 when first written, +1 per write. A removed record stays as a *tombstone* (no record, its
version kept), so a version number never names two different records: a change set planned
against a removed record can never match a later one.

**Conflicts (a lost race).** Applying a change set conflicts when a session or sender-key row
is no longer at the version it was read at, a one-time prekey (EC or Kyber) to consume is
already gone, or a base key / last-resort Kyber use to record is already recorded. Identities
are written unconditionally (last writer wins).

**Addresses** are canonical (``address.canonical()``: a ServiceId in lower case, ``PNI:``
prefixed) before anything is keyed or locked; the operation's needs and change sets already
are. Row keys are ``str(address)`` (``"name.device"``) of the canonical address; a
distribution is keyed by ``str(uuid)`` (lower-case, hyphenated) or ``"legacy:" + group_id``.

**Encryption at rest** is optional: with a ``RecordSealer`` the snapshot opens and the plan
seals every record in Rust, so rows are stored exactly as given. A store seals the rows it
writes itself the same way: table ``sessions`` / ``identities`` / ``sender_keys`` /
``prekeys`` / ``signed_prekeys`` / ``kyber_prekeys``, row key ``str(address)``,
``f"{address}/{distribution}"`` or ``str(id)``.

:class:`UnitOfWorkStore` implements all of this, and ``MemoryStore``'s record methods, on top
of a handful of primitives a backend author writes (a transaction and reads / conditional
writes of single rows). ``textsecure.testing.conformance`` checks a store against the protocol.
"""

from __future__ import annotations

import abc
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from textsecure import errors
from textsecure._native import (
    Address,
    ChangeSet,
    IdentityKey,
    IdentityKeyPair,
    KyberPreKeyRecord,
    Needs,
    Operation,
    PreKeyBundle,
    PreKeyRecord,
    PublicKey,
    RecordSealer,
    SenderKeyRecord,
    SessionRecord,
    SignedPreKeyRecord,
    Snapshot,
    generate_bundle,
)
from textsecure.stores import _native_api as nat

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "MAX_ATTEMPTS",
    "Conflict",
    "ManagedStore",
    "PreKeyTable",
    "StoreBackend",
    "UnitOfWorkStore",
    "distribution_key",
]

R = TypeVar("R")

#: how many times a unit of work that lost a race runs before ``errors.StoreError``
MAX_ATTEMPTS = 8

#: the prekey tables (and ``RecordSealer`` table names) of :meth:`UnitOfWorkStore.load_prekey_row`
PreKeyTable = Literal["prekeys", "signed_prekeys", "kyber_prekeys"]


@runtime_checkable
class StoreBackend(Protocol):
    """What a cipher needs of a store other than ``MemoryStore``.

    ``identity_key_pair`` and ``registration_id`` are the local account's. ``identity`` and
    ``session`` read the trusted identity / current session record of an address (any
    spelling: canonicalise it), outside any operation (sealed sender uses them). ``_execute``
    runs one native ``Operation`` as a unit of work (see the module documentation) and returns
    what ``op.plan`` returned as its result; it raises what ``op.plan`` raised, or
    ``errors.StoreError`` (the backend's exception as ``__cause__``) when the store fails or
    the operation lost the race :data:`MAX_ATTEMPTS` times.
    """

    @property
    def identity_key_pair(self) -> IdentityKeyPair:
        """The account's identity key pair."""

    @property
    def registration_id(self) -> int:
        """The account's registration id."""

    def identity(self, address: Address, /) -> IdentityKey | None:
        """The stored identity key of ``address`` (canonical), or None."""

    def session(self, address: Address, /) -> SessionRecord | None:
        """The session record of ``address``, or None."""

    def _execute(self, op: Operation, /) -> Any: ...


@runtime_checkable
class ManagedStore(StoreBackend, Protocol):
    """A :class:`StoreBackend` with ``MemoryStore``'s record methods (every built-in store and
    every :class:`UnitOfWorkStore` has them): what an application uses to publish prekeys and
    manage sessions, and what the conformance kit drives. The ciphers do not need them.

    Addresses are canonicalised; ``remove_*`` of something absent does nothing; a
    ``uuid.UUID`` distribution id names a current-format sender key, a ``str`` a legacy
    group id. ``save_session`` / ``remove_session`` / ``save_sender_key`` /
    ``remove_sender_key`` must move the row's version (so a cipher operation that read the
    old row conflicts), never reuse one."""

    def save_prekey(self, record: PreKeyRecord, /) -> None:
        """Stores a one-time prekey."""

    def load_prekey(self, id: int, /) -> PreKeyRecord | None:
        """The one-time prekey ``id``, or None."""

    def remove_prekey(self, id: int, /) -> None:
        """Removes the one-time prekey ``id``."""

    def save_signed_prekey(self, record: SignedPreKeyRecord, /) -> None:
        """Stores a signed prekey."""

    def load_signed_prekey(self, id: int, /) -> SignedPreKeyRecord | None:
        """The signed prekey ``id``, or None."""

    def remove_signed_prekey(self, id: int, /) -> None:
        """Removes the signed prekey ``id`` (and the replay records of sessions set up with it)."""

    def save_kyber_prekey(self, record: KyberPreKeyRecord, /, *, last_resort: bool = ...) -> None:
        """Stores a Kyber prekey; a ``last_resort`` one is kept after use."""

    def load_kyber_prekey(self, id: int, /) -> KyberPreKeyRecord | None:
        """The Kyber prekey ``id``, or None."""

    def remove_kyber_prekey(self, id: int, /) -> None:
        """Removes the Kyber prekey ``id``."""

    def save_session(self, address: Address, record: SessionRecord, /) -> None:
        """Stores the session record of ``address`` (replacing any)."""

    def remove_session(self, address: Address, /) -> None:
        """Removes the session of ``address`` (a tombstone keeps its version)."""

    def session_addresses(self) -> list[Address]:
        """The addresses that have a session."""

    def trust(self, address: Address, identity_key: PublicKey | Buffer, /) -> None:
        """Accepts ``identity_key`` as the identity of ``address``."""

    def sender_key(
        self, sender: Address, distribution_id: uuid.UUID | str, /
    ) -> SenderKeyRecord | None:
        """The sender-key record of (``sender``, ``distribution_id``), or None."""

    def save_sender_key(
        self, sender: Address, distribution_id: uuid.UUID | str, record: SenderKeyRecord, /
    ) -> None:
        """Stores a sender-key record."""

    def remove_sender_key(self, sender: Address, distribution_id: uuid.UUID | str, /) -> None:
        """Removes a sender-key record."""


class Conflict(Exception):
    """A unit of work lost a race. :class:`UnitOfWorkStore` raises it inside
    ``unit_of_work`` when a conditional write returns False (the unit must then roll back);
    a backend may raise it itself, e.g. from ``unit_of_work`` on a serialisation failure at
    commit. Either way the unit is run again from the start."""


def distribution_key(distribution_id: uuid.UUID | str) -> str:
    """The row key of a distribution: ``str(uuid)`` or ``"legacy:" + group_id``."""
    if isinstance(distribution_id, uuid.UUID):
        return str(distribution_id)
    if isinstance(distribution_id, str):
        return "legacy:" + distribution_id
    raise TypeError("distribution id must be a uuid.UUID or a group id str")


def _session_lock(address: Address) -> str:
    return f"session/{address}"


def _sender_key_lock(address: Address, dist: str) -> str:
    return f"sender_key/{address}/{dist}"


def _version(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise errors.StoreError(f"{what}: a version must be an int >= 0, got {value!r}")
    return value


def _row(value: object, what: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, bytes | bytearray | memoryview):
        raise errors.StoreError(f"{what}: a row must be bytes or None, got {type(value)}")
    return bytes(value)


def retry(attempts: int, once: Callable[[], R], what: str = "a store operation") -> R:
    """``once()``, run again while it raises :class:`Conflict` (``attempts`` runs at most,
    then ``errors.StoreError``): the loop of every unit of work."""
    for _ in range(attempts):
        try:
            return once()
        except Conflict:
            continue
    raise errors.StoreError(f"{what} lost the race to concurrent writers {attempts} times")


_PreKey = TypeVar("_PreKey", PreKeyRecord, SignedPreKeyRecord, KyberPreKeyRecord)
#: a prekey row to store: (table, id, row as stored, last_resort)
PreKeyRow = tuple[PreKeyTable, int, bytes, bool]


class _PreKeyMethods:
    """What :class:`UnitOfWorkStore` and ``DurableStore`` share: the account, sealing, and
    ``MemoryStore``'s prekey methods and ``new_bundle``, over three primitives of a store
    (each its own unit of work): :meth:`_store_prekey_rows`, :meth:`_read_prekey_row` and
    :meth:`_delete_prekey_row`."""

    _identity: IdentityKeyPair
    _registration_id: int
    _sealer: RecordSealer | None

    def _store_prekey_rows(self, rows: Sequence[PreKeyRow]) -> None:
        """Stores (inserts or replaces) ``rows``, all or none."""
        raise NotImplementedError

    def _read_prekey_row(self, table: PreKeyTable, id: int) -> bytes | None:
        """Prekey ``id`` of ``table`` as stored, or None."""
        raise NotImplementedError

    def _delete_prekey_row(self, table: PreKeyTable, id: int) -> None:
        """Deletes prekey ``id`` of ``table`` (nothing when there is none)."""
        raise NotImplementedError

    @property
    def identity_key_pair(self) -> IdentityKeyPair:
        """The account's identity key pair (a secret: see the Secrets page)."""
        return self._identity

    @property
    def registration_id(self) -> int:
        """The account's registration id."""
        return self._registration_id

    def _seal(self, table: str, row_key: str, data: bytes) -> bytes:
        return data if self._sealer is None else self._sealer.seal(table, row_key, data)

    def _open(self, table: str, row_key: str, row: bytes) -> bytes:
        return bytes(row) if self._sealer is None else self._sealer.open(table, row_key, row)

    def _prekey_row(self, table: PreKeyTable, record: _PreKey, last_resort: bool) -> PreKeyRow:
        return (table, record.id, self._seal(table, str(record.id), bytes(record)), last_resort)

    def _load_prekey(self, cls: type[_PreKey], table: PreKeyTable, id: int) -> _PreKey | None:
        row = self._read_prekey_row(table, id)
        return None if row is None else nat.parse_row(cls, self._open(table, str(id), row))

    def save_prekey(self, record: PreKeyRecord) -> None:
        """Stores a one-time prekey (its private half: a secret)."""
        if not isinstance(record, PreKeyRecord):
            raise TypeError("record must be a PreKeyRecord")
        self._store_prekey_rows([self._prekey_row("prekeys", record, False)])

    def load_prekey(self, id: int) -> PreKeyRecord | None:
        """The one-time prekey ``id``, or None."""
        return self._load_prekey(PreKeyRecord, "prekeys", id)

    def remove_prekey(self, id: int) -> None:
        """Removes the one-time prekey ``id`` (nothing when there is none)."""
        self._delete_prekey_row("prekeys", id)

    def save_signed_prekey(self, record: SignedPreKeyRecord) -> None:
        """Stores a signed prekey (its private half: a secret)."""
        if not isinstance(record, SignedPreKeyRecord):
            raise TypeError("record must be a SignedPreKeyRecord")
        self._store_prekey_rows([self._prekey_row("signed_prekeys", record, False)])

    def load_signed_prekey(self, id: int) -> SignedPreKeyRecord | None:
        """The signed prekey ``id``, or None."""
        return self._load_prekey(SignedPreKeyRecord, "signed_prekeys", id)

    def remove_signed_prekey(self, id: int) -> None:
        """Removes the signed prekey ``id`` (a durable store also the replay records of the
        sessions set up with it)."""
        self._delete_prekey_row("signed_prekeys", id)

    def save_kyber_prekey(self, record: KyberPreKeyRecord, *, last_resort: bool = False) -> None:
        """Stores a Kyber prekey; a ``last_resort`` one is kept after use and may serve many
        sessions, a one-time one is removed after its first use."""
        if not isinstance(record, KyberPreKeyRecord):
            raise TypeError("record must be a KyberPreKeyRecord")
        self._store_prekey_rows([self._prekey_row("kyber_prekeys", record, bool(last_resort))])

    def load_kyber_prekey(self, id: int) -> KyberPreKeyRecord | None:
        """The Kyber prekey ``id``, or None."""
        return self._load_prekey(KyberPreKeyRecord, "kyber_prekeys", id)

    def remove_kyber_prekey(self, id: int) -> None:
        """Removes the Kyber prekey ``id`` (a durable store also the record of its
        last-resort uses)."""
        self._delete_prekey_row("kyber_prekeys", id)

    def new_bundle(
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
        """Generates prekeys, stores their private halves (one unit of work) and returns the
        public bundle, as ``MemoryStore.new_bundle``: ``kyber=False`` gives an X3DH (v3)
        bundle; the Kyber prekey id defaults to the signed prekey id."""
        if one_time and prekey_id is None:
            raise errors.InvalidArgument("one_time=True needs a prekey_id")
        bundle, spk, otk, kpk = generate_bundle(
            self._identity,
            self._registration_id,
            device_id,
            signed_prekey_id=signed_prekey_id,
            prekey_id=prekey_id if one_time else None,
            kyber_prekey_id=(
                (signed_prekey_id if kyber_prekey_id is None else kyber_prekey_id)
                if kyber
                else None
            ),
            timestamp_ms=time.time_ns() // 1_000_000,
        )
        rows = [self._prekey_row("signed_prekeys", spk, False)]
        if otk is not None:
            rows.append(self._prekey_row("prekeys", otk, False))
        if kpk is not None:
            rows.append(self._prekey_row("kyber_prekeys", kpk, bool(kyber_last_resort)))
        self._store_prekey_rows(rows)
        return bundle


class UnitOfWorkStore(_PreKeyMethods, abc.ABC):
    """A complete store (:class:`ManagedStore`) built on a few primitives of a backend.

    A subclass implements :meth:`unit_of_work` (a transaction) and the ``*_row`` / ``base_key``
    / ``kyber`` primitives, which this class calls only inside a unit of work, on the thread
    that entered it, never nesting units. Everything else -- ``_execute`` (load, plan, apply,
    retry), sealing, canonical addresses, the ``MemoryStore`` methods -- is here.

    Row bytes are opaque to the backend (sealed when ``sealer`` is given); it stores and
    returns them unchanged. Addresses it receives are canonical; key rows by ``str(address)``
    (and ``distribution``, a str) or by id. ``identity`` and ``registration_id`` are the
    account's: persisting them is the application's (or the subclass's) business.

    Any exception of the backend (an instance of ``backend_errors``) leaving a unit becomes
    ``errors.StoreError`` with it as ``__cause__``; ``textsecure.errors`` pass through.
    """

    #: exceptions of the backend turned into ``errors.StoreError`` (the cause kept)
    backend_errors: ClassVar[tuple[type[Exception], ...]] = (Exception,)
    #: runs of a unit of work that lost its race before ``errors.StoreError``
    max_attempts: ClassVar[int] = MAX_ATTEMPTS

    def __init__(
        self,
        identity: IdentityKeyPair,
        registration_id: int,
        *,
        sealer: RecordSealer | None = None,
    ) -> None:
        if not isinstance(identity, IdentityKeyPair):
            raise TypeError("identity must be an IdentityKeyPair")
        if (
            not isinstance(registration_id, int)
            or isinstance(registration_id, bool)
            or not 0 <= registration_id <= 0xFFFFFFFF
        ):
            raise errors.InvalidArgument("registration_id must be an int in 0..2**32-1")
        if sealer is not None and not isinstance(sealer, RecordSealer):
            raise TypeError("sealer must be a RecordSealer or None")
        self._identity = identity
        self._registration_id = registration_id
        self._sealer = sealer

    # -- the primitives a backend implements -----------------------------------------------

    @abc.abstractmethod
    def unit_of_work(self, lock_keys: Sequence[str]) -> AbstractContextManager[object]:
        """A transaction: the primitives called inside the block read and write in it. On a
        normal exit commit, atomically (all writes visible to other units together, or none);
        if the block raises, roll back every write of the block and let the exception go on.

        Conditional writes (``write_*_row``, ``delete_prekey_row``, ``insert_*``) must decide
        against the latest committed state, atomically with respect to other units (of this
        and of any other store object or process on the same backend): either serialise units
        that touch the same rows (take the ``lock_keys`` -- ``session/<address>``,
        ``sender_key/<address>/<distribution>``, sorted, so taking them in order cannot
        deadlock -- or one lock for everything), or validate every conditional write again
        when committing and raise :class:`Conflict` from here if one no longer holds.
        ``lock_keys`` may be empty (record methods on prekeys)."""

    @abc.abstractmethod
    def load_session_row(self, address: Address) -> tuple[bytes | None, int]:
        """``(row, version)`` of the session with ``address``: ``(None, 0)`` when there is no
        row, ``(None, n)`` for a tombstone."""

    @abc.abstractmethod
    def write_session_row(self, address: Address, expected_version: int, row: bytes | None) -> bool:
        """Compare-and-swap: when the stored version (0 without a row) is
        ``expected_version``, store ``row`` (``None``: a tombstone) at version
        ``expected_version + 1`` and return True; else change nothing and return False."""

    @abc.abstractmethod
    def load_identity_row(self, address: Address) -> bytes | None:
        """The stored identity row of ``address``, or None."""

    @abc.abstractmethod
    def write_identity_row(self, address: Address, row: bytes) -> None:
        """Stores (inserts or replaces) the identity row of ``address``."""

    @abc.abstractmethod
    def load_prekey_row(self, table: PreKeyTable, id: int) -> tuple[bytes, bool] | None:
        """``(row, last_resort)`` of prekey ``id`` in ``table``, or None. ``last_resort`` is
        the flag saved with a Kyber prekey (False in the other tables)."""

    @abc.abstractmethod
    def save_prekey_row(self, table: PreKeyTable, id: int, row: bytes, last_resort: bool) -> None:
        """Stores (inserts or replaces) prekey ``id`` of ``table``."""

    @abc.abstractmethod
    def delete_prekey_row(self, table: PreKeyTable, id: int) -> bool:
        """Deletes prekey ``id`` of ``table``; True when there was one. (Deleting a signed
        prekey may also forget the base keys recorded with it, a Kyber prekey its last-resort
        uses: a message naming a missing prekey fails anyway.)"""

    @abc.abstractmethod
    def base_key_seen(self, signed_prekey_id: int, base_key: bytes) -> bool:
        """Whether ``(signed_prekey_id, base_key)`` was recorded (a session was set up from
        it without a one-time EC prekey: a second time is a replay)."""

    @abc.abstractmethod
    def insert_base_key(self, signed_prekey_id: int, base_key: bytes) -> bool:
        """Records ``(signed_prekey_id, base_key)``; False (and no change) when it already is
        recorded."""

    @abc.abstractmethod
    def insert_kyber_last_resort_use(
        self, kyber_prekey_id: int, signed_prekey_id: int, base_key: bytes
    ) -> bool:
        """Records a use of a last-resort Kyber prekey; False (and no change) when this
        ``(kyber_prekey_id, signed_prekey_id, base_key)`` already is recorded."""

    @abc.abstractmethod
    def load_sender_key_row(self, sender: Address, distribution: str) -> tuple[bytes | None, int]:
        """``(row, version)`` of a sender key, as :meth:`load_session_row`."""

    @abc.abstractmethod
    def write_sender_key_row(
        self, sender: Address, distribution: str, expected_version: int, row: bytes | None
    ) -> bool:
        """Compare-and-swap of a sender-key row, as :meth:`write_session_row`."""

    @abc.abstractmethod
    def session_row_addresses(self) -> Iterable[Address]:
        """The addresses with a stored session record (not the tombstones)."""

    # -- the store protocol -----------------------------------------------------------------

    @property
    def sealer(self) -> RecordSealer | None:
        """The ``RecordSealer`` rows are sealed with, or None (stored in the clear)."""
        return self._sealer

    def _execute(self, op: Operation, /) -> Any:
        """Runs a native ``Operation``: load its needs, plan, apply; again on a lost race."""
        needs = op.needs()

        def run() -> Any:
            changes, result = op.plan(self._load(needs))
            self._apply(changes)
            return result

        return self._unit(list(needs.lock_keys), run)

    def _unit(self, lock_keys: Sequence[str], body: Callable[[], R]) -> R:
        """``body()`` in a unit of work, again (up to ``max_attempts`` runs) on a conflict."""

        def once() -> R:
            with self.unit_of_work(lock_keys):
                return body()

        with self._translated():
            return retry(self.max_attempts, once)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except (errors.TextSecureError, Conflict):
            raise
        except self.backend_errors as e:
            raise errors.StoreError(f"{type(self).__name__}: {type(e).__name__}: {e}") from e

    def _load(self, needs: Needs) -> Snapshot:
        snap = Snapshot(self._identity, self._registration_id, sealer=self._sealer)
        for address in needs.sessions:
            row, version = self.load_session_row(address)
            snap.add_session(address, _row(row, "session"), _version(version, "session"))
        for address in needs.identities:
            snap.add_identity(address, _row(self.load_identity_row(address), "identity"))
        for id in needs.prekeys:
            found = self.load_prekey_row("prekeys", id)
            snap.add_prekey(id, None if found is None else _row(found[0], "prekey"))
        for id in needs.signed_prekeys:
            found = self.load_prekey_row("signed_prekeys", id)
            snap.add_signed_prekey(id, None if found is None else _row(found[0], "signed prekey"))
        for id in needs.kyber_prekeys:
            found = self.load_prekey_row("kyber_prekeys", id)
            if found is None:
                snap.add_kyber_prekey(id, None, False)
            else:
                snap.add_kyber_prekey(id, _row(found[0], "kyber prekey"), bool(found[1]))
        for spk_id, base_key in needs.base_keys:
            snap.add_base_key(spk_id, base_key, bool(self.base_key_seen(spk_id, bytes(base_key))))
        for sender, dist in needs.sender_keys:
            row, version = self.load_sender_key_row(sender, dist)
            snap.add_sender_key(sender, dist, _row(row, "sender key"), _version(version, "sender"))
        return snap

    def _apply(self, changes: ChangeSet) -> None:
        """Writes a change set; raises :class:`Conflict` (the unit rolls back) at the first
        conditional write that fails."""
        for address, expected, row in changes.sessions:
            if not self.write_session_row(address, expected, bytes(row)):
                raise Conflict
        for id in changes.removed_prekeys:
            if not self.delete_prekey_row("prekeys", id):
                raise Conflict
        for id in changes.removed_kyber_prekeys:
            if not self.delete_prekey_row("kyber_prekeys", id):
                raise Conflict
        for kyber_id, spk_id, base_key in changes.kyber_last_resort_uses:
            if not self.insert_kyber_last_resort_use(kyber_id, spk_id, bytes(base_key)):
                raise Conflict
        for spk_id, base_key in changes.base_keys:
            if not self.insert_base_key(spk_id, bytes(base_key)):
                raise Conflict
        for sender, dist, expected, row in changes.sender_keys:
            if not self.write_sender_key_row(sender, dist, expected, bytes(row)):
                raise Conflict
        for address, row in changes.identities:
            self.write_identity_row(address, bytes(row))

    # -- identities ---------------------------------------------------------------------------

    def identity(self, address: Address, /) -> IdentityKey | None:
        """The trusted identity of ``address``, or None."""
        addr = address.canonical()
        row = self._unit([], lambda: _row(self.load_identity_row(addr), "identity"))
        if row is None:
            return None
        return nat.parse_row(IdentityKey, self._open("identities", str(addr), row))

    def trust(self, address: Address, identity_key: PublicKey | Buffer, /) -> None:
        """Accepts ``identity_key`` for ``address`` (replacing a changed one)."""
        raw = bytes(IdentityKey.from_bytes(bytes(identity_key)))
        addr = address.canonical()
        row = self._seal("identities", str(addr), raw)
        self._unit([_session_lock(addr)], lambda: self.write_identity_row(addr, row))

    # -- sessions -------------------------------------------------------------------------------

    def session(self, address: Address, /) -> SessionRecord | None:
        """The session record with ``address``, or None."""
        addr = address.canonical()
        row, _ = self._unit([], lambda: self.load_session_row(addr))
        if row is None:
            return None
        return nat.parse_row(SessionRecord, self._open("sessions", str(addr), bytes(row)))

    def _swap_session(self, addr: Address, row: bytes | None) -> None:
        def body() -> None:
            current, version = self.load_session_row(addr)
            if (current is None and row is None) or self.write_session_row(addr, version, row):
                return
            raise Conflict

        self._unit([_session_lock(addr)], body)

    def save_session(self, address: Address, record: SessionRecord, /) -> None:
        """Stores ``record`` as the session with ``address`` (a new version)."""
        if not isinstance(record, SessionRecord):
            raise TypeError("record must be a SessionRecord")
        addr = address.canonical()
        self._swap_session(addr, self._seal("sessions", str(addr), bytes(record)))

    def remove_session(self, address: Address, /) -> None:
        """Removes the session with ``address`` (a tombstone at a new version)."""
        self._swap_session(address.canonical(), None)

    def session_addresses(self) -> list[Address]:
        """Addresses with a stored session, sorted."""
        return sorted(self._unit([], lambda: list(self.session_row_addresses())))

    # -- prekeys --------------------------------------------------------------------------------

    def _store_prekey_rows(self, rows: Sequence[PreKeyRow]) -> None:
        def body() -> None:
            for table, id, row, last_resort in rows:
                self.save_prekey_row(table, id, row, last_resort)

        self._unit([], body)

    def _read_prekey_row(self, table: PreKeyTable, id: int) -> bytes | None:
        found = self._unit([], lambda: self.load_prekey_row(table, id))
        return None if found is None else bytes(found[0])

    def _delete_prekey_row(self, table: PreKeyTable, id: int) -> None:
        self._unit([], lambda: self.delete_prekey_row(table, id))

    # -- sender keys ------------------------------------------------------------------------------

    def sender_key(
        self, sender: Address, distribution_id: uuid.UUID | str, /
    ) -> SenderKeyRecord | None:
        """The sender-key record of (``sender``, ``distribution_id``), or None."""
        addr = sender.canonical()
        dist = distribution_key(distribution_id)
        row, _ = self._unit([], lambda: self.load_sender_key_row(addr, dist))
        if row is None:
            return None
        return nat.parse_row(
            SenderKeyRecord, self._open("sender_keys", f"{addr}/{dist}", bytes(row))
        )

    def _swap_sender_key(self, addr: Address, dist: str, row: bytes | None) -> None:
        def body() -> None:
            current, version = self.load_sender_key_row(addr, dist)
            if (current is None and row is None) or self.write_sender_key_row(
                addr, dist, version, row
            ):
                return
            raise Conflict

        self._unit([_sender_key_lock(addr, dist)], body)

    def save_sender_key(
        self, sender: Address, distribution_id: uuid.UUID | str, record: SenderKeyRecord, /
    ) -> None:
        """Stores a sender-key record."""
        if not isinstance(record, SenderKeyRecord):
            raise TypeError("record must be a SenderKeyRecord")
        addr = sender.canonical()
        dist = distribution_key(distribution_id)
        self._swap_sender_key(
            addr, dist, self._seal("sender_keys", f"{addr}/{dist}", bytes(record))
        )

    def remove_sender_key(self, sender: Address, distribution_id: uuid.UUID | str, /) -> None:
        """Removes a sender-key record (a tombstone at a new version)."""
        self._swap_sender_key(sender.canonical(), distribution_key(distribution_id), None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} registration_id={self._registration_id}>"
