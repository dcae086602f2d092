"""Structural types of the native objects ``DurableStore``'s unit of work takes apart
(``Needs``, ``ChangeSet``, ``Snapshot``, ``Operation`` of ``textsecure._native``): the SQL side
relies only on the attributes below, and is unit-tested with small stand-ins of them. Also
``parse_row``, the one parser of stored rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from textsecure import errors
from textsecure._native import Address

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)

__all__ = [
    "ChangeSetLike",
    "NeedsLike",
    "OperationLike",
    "SnapshotLike",
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
