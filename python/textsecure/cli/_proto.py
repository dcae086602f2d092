"""A minimal protobuf reader for the few fields the native classes do not expose (the chain key
of a distribution message, the outer layer of a sealed-sender v1 envelope). Display only: the
native parsers stay the judges of validity."""

from __future__ import annotations

__all__ = ["ProtoError", "fields"]


class ProtoError(ValueError):
    """Not a protobuf message this reader understands."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise ProtoError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ProtoError("varint too long")


def fields(data: bytes) -> dict[int, list[int | bytes]]:
    """Every field of one message: number -> values (ints for varints and fixed-width fields,
    bytes for length-delimited ones), in order."""
    out: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            if pos + 8 > len(data):
                raise ProtoError("truncated fixed64")
            value = int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtoError("truncated bytes field")
            value = data[pos : pos + length]
            pos += length
        elif wire == 5:
            if pos + 4 > len(data):
                raise ProtoError("truncated fixed32")
            value = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        else:
            raise ProtoError(f"unsupported wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def first_bytes(parsed: dict[int, list[int | bytes]], number: int) -> bytes | None:
    """The first length-delimited value of field ``number``, or None."""
    for value in parsed.get(number, []):
        if isinstance(value, bytes):
            return value
    return None
