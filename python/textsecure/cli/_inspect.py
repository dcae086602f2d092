"""``textsecure inspect``: decode a wire message, record, bundle, sender-key message,
sealed-sender envelope or certificate, named or detected, to text or JSON; secrets redacted
unless asked for."""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import textsecure as ts
from textsecure import errors
from textsecure.cli import _proto
from textsecure.cli._common import CliError, b64, print_json, read_input, read_value
from textsecure.enums import ContentHint, MessageType

__all__ = [
    "BUNDLE_FIELDS",
    "TYPES",
    "Bin",
    "Secret",
    "Time",
    "add_parser",
    "bundle_from_json",
    "bundle_to_json",
    "describe",
    "detect",
    "render_text",
    "to_json",
]

Fields = dict[str, object]

#: bytes shown in full in text output; longer ones are shortened unless --full
_TEXT_LIMIT = 64


@dataclass(frozen=True, slots=True)
class Bin:
    """Public bytes: hex in text and JSON output."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Secret:
    """Secret bytes: ``<redacted N bytes>`` unless secrets are shown."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Time:
    """Milliseconds since the epoch (text output adds the UTC date)."""

    ms: int


@dataclass(frozen=True, slots=True)
class Context:
    """What some types need besides their bytes."""

    identity: ts.IdentityKeyPair | None = None
    trust_roots: tuple[ts.PublicKey, ...] = ()
    now_ms: int = 0


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    title: str
    parse: Callable[[bytes], object]
    describe: Callable[[Any, bytes, Context], Fields]
    help: str


# --- helpers ------------------------------------------------------------------------------


def _message_type(value: int) -> str:
    try:
        return f"{value} ({MessageType(value).name})"
    except ValueError:
        return str(value)


def _content_hint(value: int) -> str:
    try:
        return f"{value} ({ContentHint(value).name})"
    except ValueError:
        return str(value)


def _kyber_kind(public: bytes) -> str:
    return {0x08: "Kyber-1024", 0x0A: "ML-KEM-1024"}.get(public[0], f"type {public[0]:#04x}")


def _check(run: Callable[[], object]) -> str:
    try:
        run()
    except errors.TextSecureError as e:
        return f"invalid: {e}"
    return "valid"


# --- the types ----------------------------------------------------------------------------


def _signal(m: ts.SignalMessage, data: bytes, ctx: Context) -> Fields:
    spqr = m.pq_ratchet
    return {
        "version": m.version,
        "counter": m.counter,
        "previous_counter": m.previous_counter,
        "ratchet_key": Bin(bytes(m.ratchet_key)),
        "pq_ratchet": Bin(spqr) if spqr else None,
        "addresses": None if m.addresses is None else Bin(m.addresses),
        "mac": Bin(data[-8:]),
    }


def _prekey(m: ts.PreKeySignalMessage, data: bytes, ctx: Context) -> Fields:
    inner = m.message
    return {
        "version": m.version,
        "registration_id": m.registration_id,
        "prekey_id": m.prekey_id,
        "signed_prekey_id": m.signed_prekey_id,
        "kyber_prekey_id": m.kyber_prekey_id,
        "base_key": Bin(bytes(m.base_key)),
        "identity_key": Bin(bytes(m.identity_key)),
        "message": _signal(inner, bytes(inner), ctx),
    }


def _chain_key(data: bytes, field: int) -> Secret | None:
    try:
        key = _proto.first_bytes(_proto.fields(data[1:]), field)
    except _proto.ProtoError:
        return None
    return None if key is None else Secret(key)


def _skdm(m: ts.SenderKeyDistributionMessage, data: bytes, ctx: Context) -> Fields:
    return {
        "version": m.version,
        "distribution_id": str(m.distribution_id),
        "chain_id": m.chain_id,
        "iteration": m.iteration,
        "chain_key": _chain_key(data, 4),
        "signing_key": Bin(bytes(m.signing_key)),
    }


def _legacy_skdm(m: ts.LegacySenderKeyDistributionMessage, data: bytes, ctx: Context) -> Fields:
    return {
        "version": m.version,
        "chain_id": m.chain_id,
        "iteration": m.iteration,
        "chain_key": _chain_key(data, 3),
        "signing_key": Bin(bytes(m.signing_key)),
    }


def _ciphertext_size(data: bytes, field: int) -> int | None:
    try:
        body = _proto.first_bytes(_proto.fields(data[1:-64]), field)
    except _proto.ProtoError:
        return None
    return None if body is None else len(body)


def _sender_key(m: ts.SenderKeyMessage, data: bytes, ctx: Context) -> Fields:
    return {
        "version": m.version,
        "distribution_id": str(m.distribution_id),
        "chain_id": m.chain_id,
        "iteration": m.iteration,
        "ciphertext_size": _ciphertext_size(data, 4),
        "signature": Bin(data[-64:]),
    }


def _legacy_sender_key(m: ts.LegacySenderKeyMessage, data: bytes, ctx: Context) -> Fields:
    return {
        "version": m.version,
        "chain_id": m.chain_id,
        "iteration": m.iteration,
        "ciphertext_size": _ciphertext_size(data, 3),
        "signature": Bin(data[-64:]),
    }


def _session_record(r: ts.SessionRecord, data: bytes, ctx: Context) -> Fields:
    remote = r.remote_identity_key
    return {
        "version": r.version,
        "has_current_session": r.has_current_session,
        "archived_count": r.archived_count,
        "remote_identity_key": None if remote is None else Bin(bytes(remote)),
        "remote_registration_id": r.remote_registration_id,
        "is_unacknowledged": r.is_unacknowledged,
        "record": Secret(data),
    }


def _prekey_record(r: ts.PreKeyRecord, data: bytes, ctx: Context) -> Fields:
    return {
        "id": r.id,
        "public_key": Bin(bytes(r.public_key)),
        "private_key": Secret(bytes(r.private_key)),
    }


def _signed_prekey_record(r: ts.SignedPreKeyRecord, data: bytes, ctx: Context) -> Fields:
    return {
        "id": r.id,
        "public_key": Bin(bytes(r.public_key)),
        "private_key": Secret(bytes(r.private_key)),
        "signature": Bin(r.signature),
        "timestamp": Time(r.timestamp),
    }


def _kyber_prekey_record(r: ts.KyberPreKeyRecord, data: bytes, ctx: Context) -> Fields:
    public = bytes(r.public_key)
    return {
        "id": r.id,
        "kem": _kyber_kind(public),
        "public_key": Bin(public),
        "secret_key": Secret(bytes(r.key_pair.secret_key)),
        "signature": Bin(r.signature),
        "timestamp": Time(r.timestamp),
    }


def _sender_key_record(r: ts.SenderKeyRecord, data: bytes, ctx: Context) -> Fields:
    return {
        "states": len(r),
        "chain_ids": r.chain_ids,
        "iteration": r.iteration,
        "record": Secret(data),
    }


def _identity_key_pair(k: ts.IdentityKeyPair, data: bytes, ctx: Context) -> Fields:
    return {
        "public_key": Bin(bytes(k.public_key)),
        "private_key": Secret(bytes(k.private_key)),
    }


def _public_key(k: ts.PublicKey, data: bytes, ctx: Context) -> Fields:
    return {"kind": "Curve25519 (djb, type 0x05)", "public_key": Bin(bytes(k))}


def _server_cert(c: ts.ServerCertificate, data: bytes, ctx: Context) -> Fields:
    out: Fields = {
        "key_id": c.key_id,
        "key": Bin(bytes(c.key)),
        "signature": Bin(c.signature),
    }
    if ctx.trust_roots:
        out["validation"] = _check(lambda: c.validate(list(ctx.trust_roots)))
    return out


def _sender_cert(c: ts.SenderCertificate, data: bytes, ctx: Context) -> Fields:
    server = c.server_certificate
    out: Fields = {
        "sender_uuid": c.sender_uuid,
        "sender_e164": c.sender_e164,
        "sender_device_id": c.sender_device_id,
        "identity_key": Bin(bytes(c.identity_key)),
        "expiration": Time(c.expiration),
        "expired": c.expiration < ctx.now_ms,
        "server_certificate": (
            {"key_id": c.server_certificate_id}
            if server is None
            else _server_cert(server, bytes(server), ctx)
        ),
        "signature": Bin(c.signature),
    }
    if ctx.trust_roots:
        out["validation"] = _check(lambda: c.validate(list(ctx.trust_roots), ctx.now_ms))
    return out


def _contents(message_type: int, contents: bytes, ctx: Context) -> object:
    inner = {2: "signal", 3: "prekey", 7: "sender-key"}.get(message_type)
    if inner is None:
        return Bin(contents)
    kind = TYPES[inner]
    try:
        return {"type": inner, **kind.describe(kind.parse(contents), contents, ctx)}
    except errors.TextSecureError as e:
        return {"type": inner, "error": str(e), "bytes": Bin(contents)}


def _usmc(u: ts.UnidentifiedSenderMessageContent, data: bytes, ctx: Context) -> Fields:
    cert = u.sender_certificate
    return {
        "message_type": _message_type(int(u.message_type)),
        "content_hint": _content_hint(int(u.content_hint)),
        "group_id": None if u.group_id is None else Bin(u.group_id),
        "sender": str(u.sender),
        "sender_certificate": _sender_cert(cert, bytes(cert), ctx),
        "contents": _contents(int(u.message_type), u.contents, ctx),
    }


@dataclass(frozen=True, slots=True)
class Sealed:
    """The outer layer of a received sealed-sender message (v1, or v2 received form)."""

    data: bytes
    version: int
    fields: Fields


_V2_HEADER = 1 + 32 + 16 + 32


def _parse_sealed(data: bytes) -> Sealed:
    if data[0] >> 4 in (0, 1):
        try:
            parsed = _proto.fields(data[1:])
        except _proto.ProtoError as e:
            raise errors.InvalidMessage(f"sealed sender v1: {e}") from e
        ephemeral = _proto.first_bytes(parsed, 1)
        static = _proto.first_bytes(parsed, 2)
        message = _proto.first_bytes(parsed, 3)
        if ephemeral is None or static is None or message is None or set(parsed) - {1, 2, 3}:
            raise errors.InvalidMessage("sealed sender v1: not an UnidentifiedSenderMessage")
        key = ts.PublicKey.from_bytes(ephemeral)
        return Sealed(
            data,
            1,
            {
                "version": f"1 (0x{data[0]:02x})",
                "ephemeral_public": Bin(bytes(key)),
                "encrypted_static_size": len(static),
                "encrypted_message_size": len(message),
            },
        )
    if data[0] == 0x22:
        if len(data) <= _V2_HEADER:
            raise errors.InvalidMessage("sealed sender v2: too short")
        return Sealed(
            data,
            2,
            {
                "version": "2 (0x22, received form)",
                "ephemeral_public": Bin(data[49:81]),
                "encrypted_message_key": Bin(data[1:33]),
                "authentication_tag": Bin(data[33:49]),
                "ciphertext_size": len(data) - _V2_HEADER,
            },
        )
    raise errors.UnsupportedVersion(f"not a received sealed-sender message (0x{data[0]:02x})")


def _sealed(s: Sealed, data: bytes, ctx: Context) -> Fields:
    out = dict(s.fields)
    if ctx.identity is None:
        out["content"] = "sealed (give --identity or --db to open it)"
    else:
        usmc = ts.sealed_sender_decrypt_to_usmc(data, ctx.identity)
        out["content"] = _usmc(usmc, bytes(usmc), ctx)
    return out


def _sealed_multi(m: ts.SealedSenderMultiRecipientMessage, data: bytes, ctx: Context) -> Fields:
    return {
        "version": f"2 (0x{data[0]:02x}, sent form)",
        "recipients": [
            {
                "service_id": service_id,
                "devices": [f"{device} (registration id {rid})" for device, rid in devices],
            }
            for service_id, devices in m.recipients.items()
        ],
        "excluded_recipients": m.excluded_recipients,
    }


# --- bundles: JSON with base64 bytes, the keyword arguments of PreKeyBundle -----------------

#: the JSON keys of a bundle, in order; bytes fields are base64
BUNDLE_FIELDS: dict[str, type] = {
    "registration_id": int,
    "device_id": int,
    "identity_key": bytes,
    "signed_prekey_id": int,
    "signed_prekey_public": bytes,
    "signed_prekey_signature": bytes,
    "prekey_id": int,
    "prekey_public": bytes,
    "kyber_prekey_id": int,
    "kyber_prekey_public": bytes,
    "kyber_prekey_signature": bytes,
}


def bundle_to_json(bundle: ts.PreKeyBundle) -> dict[str, object]:
    """The JSON form of a bundle (``None`` fields left out)."""
    out: dict[str, object] = {}
    for name, kind in BUNDLE_FIELDS.items():
        value = getattr(bundle, name)
        if value is None:
            continue
        out[name] = b64(bytes(value)) if kind is bytes else int(value)
    return out


def bundle_from_json(data: bytes) -> ts.PreKeyBundle:
    """A bundle from its JSON form (what ``bundle_to_json`` and ``prekeys bundle --json``
    write)."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise errors.InvalidMessage(f"bundle: not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise errors.InvalidMessage("bundle: the JSON is not an object")
    unknown = sorted(set(doc) - set(BUNDLE_FIELDS))
    if unknown:
        raise errors.InvalidMessage(f"bundle: unknown field(s): {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, kind in BUNDLE_FIELDS.items():
        value = doc.get(name)
        if value is None:
            continue
        if kind is int:
            if not isinstance(value, int) or isinstance(value, bool):
                raise errors.InvalidMessage(f"bundle: {name} must be an integer")
            kwargs[name] = value
        else:
            if not isinstance(value, str):
                raise errors.InvalidMessage(f"bundle: {name} must be a base64 string")
            try:
                kwargs[name] = base64.b64decode(value, validate=True)
            except ValueError as e:
                raise errors.InvalidMessage(f"bundle: {name} is not base64") from e
    for name in ("registration_id", "device_id", "identity_key", "signed_prekey_id"):
        if name not in kwargs:
            raise errors.InvalidMessage(f"bundle: {name} is missing")
    try:
        return ts.PreKeyBundle(**kwargs)
    except TypeError as e:
        raise errors.InvalidMessage(f"bundle: {e}") from e


def _bundle(b: ts.PreKeyBundle, data: bytes, ctx: Context) -> Fields:
    identity = b.identity_key
    spk = bytes(b.signed_prekey_public)
    kyber = b.kyber_prekey_public
    out: Fields = {
        "session_version": "4 (PQXDH)" if kyber is not None else "3 (X3DH)",
        "registration_id": b.registration_id,
        "device_id": b.device_id,
        "identity_key": Bin(bytes(identity)),
        "signed_prekey_id": b.signed_prekey_id,
        "signed_prekey_public": Bin(spk),
        "signed_prekey_signature": Bin(b.signed_prekey_signature),
        "signed_prekey_signature_valid": identity.verify(spk, b.signed_prekey_signature),
        "prekey_id": b.prekey_id,
        "prekey_public": None if b.prekey_public is None else Bin(bytes(b.prekey_public)),
    }
    if kyber is not None:
        sig = b.kyber_prekey_signature or b""
        out["kyber_prekey_id"] = b.kyber_prekey_id
        out["kyber_prekey_kem"] = _kyber_kind(bytes(kyber))
        out["kyber_prekey_public"] = Bin(bytes(kyber))
        out["kyber_prekey_signature"] = Bin(sig)
        out["kyber_prekey_signature_valid"] = identity.verify(bytes(kyber), sig)
    return out


def _kind(
    name: str, title: str, parse: Callable[[bytes], object], describe: Any, help: str
) -> Kind:
    return Kind(name, title, parse, describe, help)


#: every type, in the order detection tries them
TYPES: dict[str, Kind] = {
    k.name: k
    for k in (
        _kind("signal", "SignalMessage", ts.SignalMessage.from_bytes, _signal, "1:1 message"),
        _kind(
            "prekey",
            "PreKeySignalMessage",
            ts.PreKeySignalMessage.from_bytes,
            _prekey,
            "1:1 message that starts a session",
        ),
        _kind(
            "skdm",
            "SenderKeyDistributionMessage",
            ts.SenderKeyDistributionMessage.from_bytes,
            _skdm,
            "group sender key distribution (secret: chain key)",
        ),
        _kind(
            "legacy-skdm",
            "LegacySenderKeyDistributionMessage",
            ts.LegacySenderKeyDistributionMessage.from_bytes,
            _legacy_skdm,
            "WhatsApp-era distribution message (secret: chain key)",
        ),
        _kind(
            "sender-key",
            "SenderKeyMessage",
            ts.SenderKeyMessage.from_bytes,
            _sender_key,
            "group message",
        ),
        _kind(
            "legacy-sender-key",
            "LegacySenderKeyMessage",
            ts.LegacySenderKeyMessage.from_bytes,
            _legacy_sender_key,
            "WhatsApp-era group message",
        ),
        _kind(
            "sealed",
            "sealed-sender message",
            _parse_sealed,
            _sealed,
            "v1 / v2 received form; opened with --identity or --db",
        ),
        _kind(
            "sealed-multi",
            "SealedSenderMultiRecipientMessage",
            ts.SealedSenderMultiRecipientMessage.from_bytes,
            _sealed_multi,
            "sealed sender v2, sent (client to server) form",
        ),
        _kind(
            "usmc",
            "UnidentifiedSenderMessageContent",
            ts.UnidentifiedSenderMessageContent.from_bytes,
            _usmc,
            "the content inside a sealed-sender message",
        ),
        _kind(
            "server-cert",
            "ServerCertificate",
            ts.ServerCertificate.from_bytes,
            _server_cert,
            "sealed-sender server certificate",
        ),
        _kind(
            "sender-cert",
            "SenderCertificate",
            ts.SenderCertificate.from_bytes,
            _sender_cert,
            "sealed-sender sender certificate",
        ),
        _kind(
            "session-record",
            "SessionRecord",
            ts.SessionRecord.from_bytes,
            _session_record,
            "libsignal session record (secret)",
        ),
        _kind(
            "prekey-record",
            "PreKeyRecord",
            ts.PreKeyRecord.from_bytes,
            _prekey_record,
            "one-time prekey (secret)",
        ),
        _kind(
            "signed-prekey-record",
            "SignedPreKeyRecord",
            ts.SignedPreKeyRecord.from_bytes,
            _signed_prekey_record,
            "signed prekey (secret)",
        ),
        _kind(
            "kyber-prekey-record",
            "KyberPreKeyRecord",
            ts.KyberPreKeyRecord.from_bytes,
            _kyber_prekey_record,
            "Kyber prekey (secret)",
        ),
        _kind(
            "sender-key-record",
            "SenderKeyRecord",
            ts.SenderKeyRecord.from_bytes,
            _sender_key_record,
            "group sender key record (secret)",
        ),
        _kind(
            "identity-key-pair",
            "IdentityKeyPair",
            ts.IdentityKeyPair.from_bytes,
            _identity_key_pair,
            "identity key pair (secret)",
        ),
        _kind(
            "public-key",
            "PublicKey",
            ts.PublicKey.from_bytes,
            _public_key,
            "33-byte Curve25519 public key",
        ),
        _kind(
            "bundle",
            "PreKeyBundle",
            bundle_from_json,
            _bundle,
            "prekey bundle, JSON with base64 fields (prekeys bundle --json)",
        ),
    )
}


# --- detection ----------------------------------------------------------------------------


def _resolve(data: bytes, found: dict[str, object]) -> dict[str, object]:
    """Narrows candidates that are known to overlap."""
    if {"prekey-record", "signed-prekey-record"} <= found.keys():
        signed = found["signed-prekey-record"]
        assert isinstance(signed, ts.SignedPreKeyRecord)
        drop = "prekey-record" if signed.signature else "signed-prekey-record"
        found = {k: v for k, v in found.items() if k != drop}
    if {"sealed", "sealed-multi"} <= found.keys():
        found = {k: v for k, v in found.items() if k != "sealed"}
    return found


def detect(data: bytes) -> tuple[str, object]:
    """The one type ``data`` parses as; CliError when none or several do."""
    if data.lstrip()[:1] == b"{":
        try:
            json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass  # binary that starts with 0x7b: try the binary formats
        else:
            try:
                return "bundle", bundle_from_json(data)
            except errors.TextSecureError as e:
                raise CliError(f"JSON, but not a bundle: {e}") from e
    found: dict[str, object] = {}
    for name, kind in TYPES.items():
        if name == "bundle":
            continue
        try:
            found[name] = kind.parse(data)
        except (errors.TextSecureError, ValueError):
            continue
    found = _resolve(data, found)
    if not found:
        raise CliError(
            "not a known type (tried "
            + ", ".join(n for n in TYPES if n != "bundle")
            + "); name one with --type"
        )
    if len(found) > 1:
        raise CliError(
            "ambiguous input: it parses as " + ", ".join(found) + "; name one with --type"
        )
    ((name, obj),) = found.items()
    return name, obj


def describe(name: str, obj: object, data: bytes, ctx: Context) -> Fields:
    return TYPES[name].describe(obj, data, ctx)


# --- output -------------------------------------------------------------------------------


def _scalar_text(value: object, show: bool, full: bool) -> str:
    if isinstance(value, Secret):
        if not show:
            return f"<redacted {len(value.data)} bytes>"
        value = Bin(value.data)
    if isinstance(value, Bin):
        hexed = value.data.hex()
        if not full and len(value.data) > _TEXT_LIMIT:
            return f"{hexed[:32]}…{hexed[-8:]} ({len(value.data)} bytes)"
        return hexed if value.data else "(empty)"
    if isinstance(value, Time):
        try:
            when = datetime.datetime.fromtimestamp(value.ms / 1000, tz=datetime.UTC)
        except (OverflowError, OSError, ValueError):
            return str(value.ms)
        return f"{value.ms} ({when:%Y-%m-%d %H:%M:%S} UTC)"
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_scalar_text(v, show, full) for v in value) or "-"
    return str(value)


def render_text(fields: Fields, *, show: bool, full: bool, indent: int = 2) -> list[str]:
    """Indented ``key: value`` lines."""
    pad = " " * indent
    lines: list[str] = []
    for key, value in fields.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.extend(render_text(value, show=show, full=full, indent=indent + 2))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{pad}{key}:")
            for item in value:
                block = render_text(item, show=show, full=full, indent=indent + 4)
                block[0] = f"{pad}  - {block[0].lstrip()}"
                lines.extend(block)
        else:
            lines.append(f"{pad}{key}: {_scalar_text(value, show, full)}")
    return lines


def to_json(value: object, *, show: bool) -> object:
    """The JSON form: bytes as hex, secrets redacted unless ``show``."""
    if isinstance(value, Secret):
        return value.data.hex() if show else f"<redacted {len(value.data)} bytes>"
    if isinstance(value, Bin):
        return value.data.hex()
    if isinstance(value, Time):
        return value.ms
    if isinstance(value, dict):
        return {k: to_json(v, show=show) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v, show=show) for v in value]
    return value


# --- the command --------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    types = "\n".join(f"  {k.name:<21} {k.title}: {k.help}" for k in TYPES.values())
    p = sub.add_parser(
        "inspect",
        help="decode a message, record, bundle, sealed envelope or certificate",
        description=(
            "Decode SOURCE and print its fields. Secrets (private keys, chain keys, record "
            "internals) are redacted unless --show-secrets.\n\ntypes (--type):\n" + types
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="a file, '-' for stdin, or the data itself in hex or base64",
    )
    p.add_argument(
        "-t",
        "--type",
        choices=list(TYPES),
        metavar="TYPE",
        help="the type (see above; default: detect it)",
    )
    enc = p.add_mutually_exclusive_group()
    enc.add_argument(
        "--hex", dest="encoding", action="store_const", const="hex", help="SOURCE is hex"
    )
    enc.add_argument(
        "--base64",
        dest="encoding",
        action="store_const",
        const="base64",
        help="SOURCE is base64 (standard or URL-safe)",
    )
    enc.add_argument(
        "--raw", dest="encoding", action="store_const", const="raw", help="SOURCE is binary"
    )
    p.set_defaults(encoding="auto")
    p.add_argument("--json", action="store_true", help="print JSON (bytes as hex)")
    p.add_argument(
        "--show-secrets", action="store_true", help="print private and chain keys, records"
    )
    p.add_argument("--full", action="store_true", help="print long byte strings in full")
    p.add_argument(
        "--identity",
        metavar="KEYPAIR",
        help="the recipient's IdentityKeyPair (hex, base64 or file) to open a sealed message",
    )
    p.add_argument("--db", metavar="PATH", help="take the recipient's identity from this store")
    p.add_argument("--account", default="default", help="the store's account (default: default)")
    p.add_argument("--key-file", metavar="FILE", help="the store's encryption key, if any")
    p.add_argument(
        "--trust-root",
        metavar="KEY",
        action="append",
        default=[],
        help="validate certificates against this public key (hex, base64 or file; repeatable)",
    )
    p.set_defaults(run=run)


def _context(args: argparse.Namespace) -> Context:
    identity = None
    if args.identity is not None and args.db is not None:
        raise CliError("give --identity or --db, not both")
    if args.identity is not None:
        try:
            identity = ts.IdentityKeyPair.from_bytes(read_value(args.identity, "--identity"))
        except errors.TextSecureError as e:
            raise CliError(f"--identity: not an IdentityKeyPair: {e}") from e
    elif args.db is not None:
        from textsecure.cli._accounts import open_store

        with open_store(args.db, args.account, args.key_file) as store:
            identity = store.identity_key_pair
    from textsecure.cli._fingerprint import public_key

    roots = tuple(public_key(r, "--trust-root") for r in args.trust_root)
    return Context(identity=identity, trust_roots=roots, now_ms=int(time.time() * 1000))


def run(args: argparse.Namespace) -> int:
    source = read_input(args.source, args.encoding)
    data, encoding = source.data, source.encoding
    ctx = _context(args)
    if args.type is None:
        try:
            name, obj = detect(data)
        except CliError as e:
            if source.inline:
                raise CliError(f"{args.source!r} is no file; read as {encoding} data: {e}") from e
            raise
        detected = True
    else:
        name, detected = args.type, False
        try:
            obj = TYPES[name].parse(data)
        except (errors.TextSecureError, ValueError) as e:
            raise CliError(f"not a valid {name} ({TYPES[name].title}): {e}") from e
    kind = TYPES[name]
    fields = kind.describe(obj, data, ctx)
    if args.json:
        print_json(
            {
                "type": name,
                "class": kind.title,
                "size": len(data),
                "encoding": encoding,
                "detected": detected,
                "fields": to_json(fields, show=args.show_secrets),
            }
        )
        return 0
    how = ["detected" if detected else "as named"]
    if encoding != "raw":
        how.append(f"read as {encoding}")
    print(f"{kind.title} ({name}, {len(data)} bytes; {', '.join(how)})")
    for line in render_text(fields, show=args.show_secrets, full=args.full):
        print(line)
    return 0
