"""``textsecure fingerprint``: the safety number of two identities, as 60 digits and as a QR
code drawn in the terminal, and the comparison of a scanned one."""

from __future__ import annotations

import argparse
import sys
import uuid

import textsecure as ts
from textsecure import errors
from textsecure.cli._common import CliError, print_json, read_value

__all__ = ["add_parser", "identifier", "public_key"]

#: exit status of --compare: the scanned code is of another fingerprint version
EXIT_VERSION_MISMATCH = 2


def identifier(text: str, version: int, raw: bool) -> bytes:
    """The id bytes the safety number hashes: for version 2 a UUID (an ACI) is its 16 bytes,
    as the Signal apps hash it; otherwise (a phone number for version 1) the UTF-8 text."""
    if not raw and version >= 2:
        try:
            return uuid.UUID(text).bytes
        except ValueError:
            pass
    return text.encode("utf-8")


def public_key(text: str, what: str) -> ts.PublicKey:
    """A public key from hex / base64 / a file: 33 bytes (``0x05`` first) or 32 raw bytes."""
    data = read_value(text, what)
    if len(data) == 32:
        data = b"\x05" + data
    try:
        return ts.PublicKey.from_bytes(data)
    except errors.TextSecureError as e:
        raise CliError(f"{what}: not a public key ({len(data)} bytes): {e}") from e


def groups(digits: str) -> list[str]:
    """The 60 digits as 12 blocks of 5."""
    return [digits[i : i + 5] for i in range(0, len(digits), 5)]


def draw_qr(data: bytes) -> str:
    """``data`` as a QR code in terminal characters (two rows per line, light border)."""
    try:
        import segno
    except ImportError:
        raise CliError(
            "--qr needs the segno package: pip install 'textsecure[cli]' (or: pip install segno)"
        ) from None
    import io

    out = io.StringIO()
    segno.make(data, error="m", micro=False, boost_error=False).terminal(out=out, compact=True)
    return out.getvalue()


def run(args: argparse.Namespace) -> int:
    local_key: ts.PublicKey
    if args.local_key is not None:
        if args.db is not None:
            raise CliError("give --local-key or --db, not both")
        local_key = public_key(args.local_key, "--local-key")
    elif args.db is not None:
        from textsecure.cli._accounts import open_store

        with open_store(args.db, args.account, args.key_file) as store:
            local_key = store.identity_key_pair.public_key
    else:
        raise CliError("the local identity is missing: give --local-key KEY or --db PATH")
    remote_key = public_key(args.remote_key, "--remote-key")
    fp = ts.Fingerprint.create(
        local_id=identifier(args.local_id, args.version, args.raw_ids),
        local_key=local_key,
        remote_id=identifier(args.remote_id, args.version, args.raw_ids),
        remote_key=remote_key,
        version=args.version,
        iterations=args.iterations,
    )
    if args.compare is not None:
        return _compare(args, fp)
    digits = fp.displayable
    if args.json:
        print_json(
            {
                "version": fp.version,
                "safety_number": digits,
                "groups": groups(digits),
                "scannable": fp.scannable.hex(),
            }
        )
        return 0
    qr = draw_qr(fp.scannable) if args.qr else None
    print(" ".join(groups(digits)))
    if qr is not None:
        sys.stdout.write(qr)
    return 0


def _compare(args: argparse.Namespace, fp: ts.Fingerprint) -> int:
    scanned = read_value(args.compare, "--compare")
    try:
        same = fp.matches(scanned)
    except errors.FingerprintVersionMismatch as e:
        if not e.theirs:
            raise CliError("--compare: not a scannable safety number") from e
        status, detail, code = (
            "version mismatch",
            f"the scanned code is version {e.theirs}, ours is {e.ours}",
            EXIT_VERSION_MISMATCH,
        )
    except errors.InvalidMessage as e:
        raise CliError(f"--compare: not a scannable safety number: {e}") from e
    else:
        if same:
            status, detail, code = "match", "the scanned code shows these two identities", 0
        else:
            status, detail, code = "no match", "the scanned code shows other identities", 1
    if args.json:
        print_json({"result": status, "detail": detail})
    else:
        print(f"{status}: {detail}")
    return code


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "fingerprint",
        help="the safety number of two identities; --qr draws it, --compare checks a scan",
        description=(
            "Print the safety number of two identities (60 digits in 12 blocks of 5). "
            "--compare exits 0 on a match, 1 when the scanned code shows other identities "
            "and 2 when it is of another fingerprint version."
        ),
    )
    p.add_argument("--local-id", required=True, metavar="ID", help="our ACI (UUID) or number")
    p.add_argument("--local-key", metavar="KEY", help="our identity key: hex, base64 or a file")
    p.add_argument("--remote-id", required=True, metavar="ID", help="their ACI or number")
    p.add_argument(
        "--remote-key", required=True, metavar="KEY", help="their identity key: hex, base64, file"
    )
    p.add_argument("--db", metavar="PATH", help="take our identity key from this store")
    p.add_argument("--account", default="default", metavar="NAME", help="the store's account")
    p.add_argument("--key-file", metavar="FILE", help="the store's encryption key, if any")
    p.add_argument(
        "--version",
        type=int,
        default=2,
        choices=[1, 2],
        help="fingerprint version (2: ids are ACIs; 1: phone numbers)",
    )
    p.add_argument("--iterations", type=int, default=5200, help="hash iterations (5200)")
    p.add_argument(
        "--raw-ids",
        action="store_true",
        help="hash the ids as UTF-8 text even when they are UUIDs",
    )
    p.add_argument("--qr", action="store_true", help="draw the scannable form as a QR code")
    p.add_argument(
        "--compare",
        metavar="SCANNED",
        help="compare with a scanned code (hex, base64 or a file of its bytes)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)
