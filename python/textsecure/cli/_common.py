"""What every subcommand shares: the error the CLI raises for bad input, reading bytes from a
file / stdin / the command line (raw, hex or base64), keys, output helpers."""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CliError",
    "Encoding",
    "Input",
    "b64",
    "decode_text",
    "print_json",
    "read_input",
    "read_value",
]

Encoding = Literal["auto", "raw", "hex", "base64"]

_HEX = re.compile(rb"\A(?:[0-9a-fA-F]{2})+\Z")
_B64 = re.compile(rb"\A[A-Za-z0-9+/\-_]+={0,2}\Z")
_SPACE = re.compile(rb"\s+")


class CliError(Exception):
    """Bad input or a refused request: printed as one ``textsecure: error: ...`` line, exit 1."""


def b64(data: bytes) -> str:
    """Standard base64 with padding (what every JSON output of the CLI uses for bytes)."""
    return base64.b64encode(data).decode("ascii")


def _unhex(text: bytes) -> bytes | None:
    compact = _SPACE.sub(b"", text)
    if compact[:2] in (b"0x", b"0X"):
        compact = compact[2:]
    if not compact or not _HEX.match(compact):
        return None
    return bytes.fromhex(compact.decode("ascii"))


def _unbase64(text: bytes) -> bytes | None:
    compact = _SPACE.sub(b"", text)
    if not compact or not _B64.match(compact):
        return None
    compact = compact.rstrip(b"=")
    if len(compact) % 4 == 1:
        return None
    padded = compact + b"=" * (-len(compact) % 4)
    try:
        if b"-" in padded or b"_" in padded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_text(data: bytes, encoding: Encoding, what: str) -> tuple[bytes, str]:
    """``data`` decoded as ``encoding``; ``auto``: hex if it is hex, else base64 if it is
    base64, else the bytes as they are (JSON text is always taken as it is). Returns the
    bytes and the encoding used."""
    if encoding == "raw":
        return data, "raw"
    if encoding == "hex":
        out = _unhex(data)
        if out is None:
            raise CliError(f"{what} is not hex")
        return out, "hex"
    if encoding == "base64":
        out = _unbase64(data)
        if out is None:
            raise CliError(f"{what} is not base64")
        return out, "base64"
    if data.lstrip()[:1] in (b"{", b"["):
        return data, "raw"
    out = _unhex(data)
    if out is not None:
        return out, "hex"
    out = _unbase64(data)
    if out is not None:
        return out, "base64"
    return data, "raw"


@dataclass(frozen=True, slots=True)
class Input:
    """Bytes read by ``read_input``."""

    data: bytes
    #: how they were encoded: raw, hex or base64
    encoding: str
    #: written on the command line (no file of that name exists)
    inline: bool


def read_input(source: str, encoding: Encoding) -> Input:
    """The bytes named by ``source``: ``-`` is stdin, an existing path is that file, anything
    else is the data itself written on the command line (hex or base64)."""
    inline_data = False
    if source == "-":
        data, used = decode_text(sys.stdin.buffer.read(), encoding, "stdin")
    elif Path(source).exists():
        data, used = decode_text(Path(source).read_bytes(), encoding, repr(source))
    else:
        text = source.encode("utf-8", "surrogateescape")
        if encoding == "raw":
            raise CliError(f"no such file: {source!r}")
        inline = _unhex(text) if encoding in ("auto", "hex") else None
        if inline is not None:
            data, used = inline, "hex"
        else:
            inline = _unbase64(text) if encoding in ("auto", "base64") else None
            if inline is None:
                if encoding == "auto":
                    raise CliError(f"no such file, and not hex or base64 data: {source!r}")
                raise CliError(f"no such file, and not {encoding} data: {source!r}")
            data, used = inline, "base64"
        inline_data = True
    if not data:
        raise CliError("the input is empty")
    return Input(data, used, inline_data)


def read_value(text: str, what: str) -> bytes:
    """A binary command-line value (a key, a scanned safety number): hex, base64, or the path
    of a file holding it (raw bytes, hex or base64)."""
    path = Path(text)
    if text and path.is_file():
        data, _ = decode_text(path.read_bytes(), "auto", f"{what} ({text!r})")
    else:
        raw = text.encode("utf-8", "surrogateescape")
        decoded = _unhex(raw)
        if decoded is None:
            decoded = _unbase64(raw)
        if decoded is None:
            raise CliError(f"{what}: not hex, base64 or a file: {text!r}")
        data = decoded
    if not data:
        raise CliError(f"{what} is empty")
    return data


def print_json(value: Any) -> None:
    """One JSON document on stdout (indented, keys in the order they were built)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
