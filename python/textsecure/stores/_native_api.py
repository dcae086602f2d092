"""The native objects the durable stores drive (``docs``: the store spec), as structural types.

``Needs``, ``ChangeSet``, ``Operation``, ``Snapshot`` and ``RecordSealer`` come from
``textsecure._native``; the store code only relies on the attributes below, so it is typed
against these protocols (and unit-tested with small stand-ins of ``Needs`` / ``ChangeSet``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from textsecure import _native, errors
from textsecure._native import Address, IdentityKeyPair

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)

__all__ = [
    "ChangeSetLike",
    "NeedsLike",
    "OperationLike",
    "SealerLike",
    "SnapshotLike",
    "canonical",
    "native",
    "parse_row",
]


class NeedsLike(Protocol):
    @property
    def sessions(self) -> Sequence[Address]: ...
    @property
    def identities(self) -> Sequence[Address]: ...
    @property
    def prekeys(self) -> Sequence[int]: ...
    @property
    def signed_prekeys(self) -> Sequence[int]: ...
    @property
    def kyber_prekeys(self) -> Sequence[int]: ...
    @property
    def base_keys(self) -> Sequence[tuple[int, bytes]]: ...
    @property
    def sender_keys(self) -> Sequence[tuple[Address, str]]: ...
    @property
    def lock_keys(self) -> Sequence[str]: ...


class ChangeSetLike(Protocol):
    @property
    def sessions(self) -> Sequence[tuple[Address, int, bytes]]: ...
    @property
    def identities(self) -> Sequence[tuple[Address, bytes]]: ...
    @property
    def removed_prekeys(self) -> Sequence[int]: ...
    @property
    def removed_kyber_prekeys(self) -> Sequence[int]: ...
    @property
    def kyber_last_resort_uses(self) -> Sequence[tuple[int, int, bytes]]: ...
    @property
    def base_keys(self) -> Sequence[tuple[int, bytes]]: ...
    @property
    def sender_keys(self) -> Sequence[tuple[Address, str, int, bytes]]: ...


class SnapshotLike(Protocol):
    def add_session(self, address: Address, record: bytes | None, version: int) -> None: ...
    def add_identity(self, address: Address, key: bytes | None) -> None: ...
    def add_prekey(self, id: int, record: bytes | None) -> None: ...
    def add_signed_prekey(self, id: int, record: bytes | None) -> None: ...
    def add_kyber_prekey(self, id: int, record: bytes | None, last_resort: bool) -> None: ...
    def add_base_key(self, signed_prekey_id: int, base_key: bytes, seen: bool) -> None: ...
    def add_sender_key(
        self, sender: Address, distribution: str, record: bytes | None, version: int
    ) -> None: ...


class OperationLike(Protocol):
    def needs(self) -> NeedsLike: ...
    def plan(self, snapshot: Any, /) -> tuple[ChangeSetLike, Any]: ...


class SealerLike(Protocol):
    def seal(self, table: str, row_key: str, data: bytes, /) -> bytes: ...
    def open(self, table: str, row_key: str, blob: bytes, /) -> bytes: ...


def native(name: str) -> Any:
    """A class of ``textsecure._native`` that may not be in this build yet."""
    obj = vars(_native).get(name)
    if obj is None:
        raise errors.StoreError(
            f"textsecure._native has no {name}: this build of the extension predates the "
            "durable stores"
        )
    return obj


def canonical(address: Address) -> Address:
    """The canonical form of an address (``Address.canonical()``; identity on older builds)."""
    method = getattr(address, "canonical", None)
    if method is None:
        return address
    result: Address = method()
    return result


def new_snapshot(identity: IdentityKeyPair, registration_id: int, sealer: Any) -> Any:
    snapshot_class = native("Snapshot")
    if sealer is None:
        return snapshot_class(identity, registration_id)
    return snapshot_class(identity, registration_id, sealer=sealer)


def new_sealer(key: bytes, account: str) -> SealerLike:
    sealer: SealerLike = native("RecordSealer")(key, account)
    return sealer


class _FromBytes(Protocol[_T_co]):
    def from_bytes(self, data: bytes, /) -> _T_co: ...


def parse_row(cls: _FromBytes[_T], data: bytes) -> _T:
    """Parses a stored row with ``cls.from_bytes``: a row that does not parse is an invalid
    record (``errors.InvalidRecord``), whatever the parser calls it (a damaged key inside a
    record would otherwise surface as ``InvalidKey``)."""
    try:
        result = cls.from_bytes(data)
    except errors.InvalidRecord:
        raise
    except errors.TextSecureError as e:
        name = getattr(cls, "__name__", "record")
        raise errors.InvalidRecord(f"stored {name} does not parse: {e}") from e
    return result
