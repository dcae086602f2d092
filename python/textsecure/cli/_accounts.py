"""``textsecure account`` and ``textsecure prekeys``: accounts of a SQLite store, their
identity, and the prekey lifecycle (generate, rotate, confirm, counts, the current bundle).

Keys a command generates are stored unconfirmed (``docs/stores.md``). Their public parts, what
an application uploads to its server, are kept in ``<db>.pending-uploads.json`` next to the
database (public keys, signatures and ids only: nothing secret) until ``prekeys confirm``
marks them confirmed in the store and removes them from that file.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import textsecure as ts
from textsecure.cli._common import CliError, b64, print_json, read_value
from textsecure.cli._inspect import Context, bundle_to_json, describe, render_text
from textsecure.stores import PreKeyUpload, UploadKey
from textsecure.stores._prekeys import BATCH, MAX_BATCH, REFILL_THRESHOLD, ROTATION_INTERVAL_MS

__all__ = [
    "add_parsers",
    "open_store",
    "pending_path",
    "upload_from_json",
    "upload_to_json",
]

_PENDING_SUFFIX = ".pending-uploads.json"


def _store_key(key_file: str | None) -> bytes | None:
    if key_file is None:
        return None
    key = read_value(key_file, "--key-file")
    if len(key) != 32:
        raise CliError(f"--key-file: the store key must be 32 bytes, not {len(key)}")
    return key


@contextlib.contextmanager
def open_store(db: str, account: str, key_file: str | None) -> Iterator[ts.SQLiteStore]:
    """An existing account of an existing database (never creates either)."""
    if not Path(db).is_file():
        raise CliError(f"no database at {db!r} (textsecure account create --db {db})")
    key = _store_key(key_file)
    if account not in ts.SQLiteStore.list_accounts(db):
        raise CliError(
            f"no account {account!r} in {db!r} (textsecure account create --db {db} "
            f"--account {account})"
        )
    with ts.SQLiteStore(db, account=account, key=key) as store:
        yield store


# --- pending uploads ----------------------------------------------------------------------


def pending_path(db: str) -> Path:
    """Where the uploads that await ``prekeys confirm`` are kept."""
    return Path(db + _PENDING_SUFFIX)


def _key_json(key: UploadKey) -> dict[str, object]:
    out: dict[str, object] = {"id": key.id, "public_key": b64(key.public_key)}
    if key.signature is not None:
        out["signature"] = b64(key.signature)
    return out


def upload_to_json(upload: PreKeyUpload) -> dict[str, object]:
    """The public parts of an upload: base64 keys and signatures."""
    out: dict[str, object] = {"created_at": upload.created_at}
    if upload.signed_prekey is not None:
        out["signed_prekey"] = _key_json(upload.signed_prekey)
    if upload.last_resort_kyber_prekey is not None:
        out["last_resort_kyber_prekey"] = _key_json(upload.last_resort_kyber_prekey)
    out["prekeys"] = [_key_json(k) for k in upload.prekeys]
    out["kyber_prekeys"] = [_key_json(k) for k in upload.kyber_prekeys]
    return out


def _key_from_json(value: Any, what: str) -> UploadKey:
    if not isinstance(value, dict) or not isinstance(value.get("id"), int):
        raise CliError(f"upload: {what} is not a key object with an id")
    try:
        public = base64.b64decode(value["public_key"], validate=True)
        sig = value.get("signature")
        signature = None if sig is None else base64.b64decode(sig, validate=True)
    except (KeyError, TypeError, ValueError) as e:
        raise CliError(f"upload: {what}: bad public_key / signature") from e
    return UploadKey(int(value["id"]), public, signature)


def upload_from_json(doc: Any) -> PreKeyUpload:
    """An upload from its JSON form (``upload_to_json``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("created_at"), int):
        raise CliError("upload: not an upload object (created_at missing)")

    def one(name: str) -> UploadKey | None:
        value = doc.get(name)
        return None if value is None else _key_from_json(value, name)

    def many(name: str) -> tuple[UploadKey, ...]:
        values = doc.get(name, [])
        if not isinstance(values, list):
            raise CliError(f"upload: {name} is not a list")
        return tuple(_key_from_json(v, name) for v in values)

    return PreKeyUpload(
        doc["created_at"],
        signed_prekey=one("signed_prekey"),
        last_resort_kyber_prekey=one("last_resort_kyber_prekey"),
        prekeys=many("prekeys"),
        kyber_prekeys=many("kyber_prekeys"),
    )


def _read_pending(db: str) -> dict[str, list[Any]]:
    path = pending_path(db)
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CliError(f"{path}: not JSON: {e}") from e
    accounts = doc.get("accounts") if isinstance(doc, dict) else None
    if not isinstance(accounts, dict):
        raise CliError(f"{path}: not a pending-uploads file")
    return {str(k): list(v) for k, v in accounts.items() if isinstance(v, list)}


def _write_pending(db: str, pending: dict[str, list[Any]]) -> None:
    path = pending_path(db)
    pending = {k: v for k, v in pending.items() if v}
    if not pending:
        path.unlink(missing_ok=True)
        return
    text = json.dumps({"version": 1, "accounts": pending}, indent=1) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _remember(db: str, account: str, upload: PreKeyUpload) -> None:
    pending = _read_pending(db)
    pending.setdefault(account, []).append(upload_to_json(upload))
    _write_pending(db, pending)


# --- output helpers -----------------------------------------------------------------------


def _age(ms: int | None) -> str:
    if ms is None:
        return "none"
    seconds = ms // 1000
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def _hint(args: argparse.Namespace, command: str) -> str:
    """The command line of another prekeys command on the same account."""
    line = f"textsecure prekeys {command} --db {shlex.quote(args.db)}"
    if args.account != "default":
        line += f" --account {shlex.quote(args.account)}"
    return line


def _upload_summary(upload: PreKeyUpload) -> str:
    parts = []
    if upload.prekeys:
        parts.append(f"{len(upload.prekeys)} one-time EC prekeys")
    if upload.kyber_prekeys:
        parts.append(f"{len(upload.kyber_prekeys)} one-time Kyber prekeys")
    if upload.signed_prekey is not None:
        parts.append(f"signed prekey {upload.signed_prekey.id}")
    if upload.last_resort_kyber_prekey is not None:
        parts.append(f"last-resort Kyber prekey {upload.last_resort_kyber_prekey.id}")
    return ", ".join(parts) or "nothing"


# --- account ------------------------------------------------------------------------------


def _account_create(args: argparse.Namespace) -> int:
    db = args.db
    key = _store_key(args.key_file)
    if Path(db).exists() and args.account in ts.SQLiteStore.list_accounts(db):
        raise CliError(f"account {args.account!r} already exists in {db!r}")
    with ts.SQLiteStore(
        db, account=args.account, registration_id=args.registration_id, key=key
    ) as store:
        return _print_account(args, store, created=True)


def _print_account(args: argparse.Namespace, store: ts.SQLiteStore, *, created: bool) -> int:
    identity = bytes(store.identity_key_pair.public_key)
    info: dict[str, object] = {
        "account": store.account,
        "database": str(Path(args.db).resolve()),
        "registration_id": store.registration_id,
        "identity_key": identity.hex(),
        "identity_key_base64": b64(identity),
    }
    if not created:
        info["sessions"] = len(store.session_addresses())
    if args.json:
        print_json(info)
        return 0
    if created:
        print(f"created account {store.account!r} in {args.db}")
    for k, v in info.items():
        print(f"{k}: {v}")
    return 0


def _account_show(args: argparse.Namespace) -> int:
    with open_store(args.db, args.account, args.key_file) as store:
        return _print_account(args, store, created=False)


def _account_list(args: argparse.Namespace) -> int:
    if not Path(args.db).is_file():
        raise CliError(f"no database at {args.db!r}")
    accounts = ts.SQLiteStore.list_accounts(args.db)
    if args.json:
        print_json(accounts)
    else:
        for name in accounts:
            print(name)
    return 0


# --- prekeys ------------------------------------------------------------------------------


def _prekeys_status(args: argparse.Namespace) -> int:
    with open_store(args.db, args.account, args.key_file) as store:
        c = store.prekey_counts()
    pending = _read_pending(args.db).get(args.account, [])

    def due(age: int | None) -> bool:
        return age is None or age >= ROTATION_INTERVAL_MS

    info: dict[str, object] = {
        "account": args.account,
        "prekeys": c.prekeys,
        "unconfirmed_prekeys": c.unconfirmed_prekeys,
        "kyber_prekeys": c.kyber_prekeys,
        "unconfirmed_kyber_prekeys": c.unconfirmed_kyber_prekeys,
        "signed_prekey_age_ms": c.signed_prekey_age_ms,
        "unconfirmed_signed_prekeys": c.unconfirmed_signed_prekeys,
        "last_resort_kyber_prekey_age_ms": c.last_resort_kyber_prekey_age_ms,
        "unconfirmed_last_resort_kyber_prekeys": c.unconfirmed_last_resort_kyber_prekeys,
        "refill_due": c.prekeys < REFILL_THRESHOLD or c.kyber_prekeys < REFILL_THRESHOLD,
        "rotation_due": due(c.signed_prekey_age_ms) or due(c.last_resort_kyber_prekey_age_ms),
        "pending_uploads": len(pending),
    }
    if args.json:
        print_json(info)
        return 0
    rows = [
        ("one-time EC prekeys", str(c.prekeys), str(c.unconfirmed_prekeys), "-"),
        ("one-time Kyber prekeys", str(c.kyber_prekeys), str(c.unconfirmed_kyber_prekeys), "-"),
        (
            "signed prekey",
            "1" if c.signed_prekey_age_ms is not None else "0",
            str(c.unconfirmed_signed_prekeys),
            _age(c.signed_prekey_age_ms),
        ),
        (
            "last-resort Kyber prekey",
            "1" if c.last_resort_kyber_prekey_age_ms is not None else "0",
            str(c.unconfirmed_last_resort_kyber_prekeys),
            _age(c.last_resort_kyber_prekey_age_ms),
        ),
    ]
    print(f"account {args.account!r} in {args.db}")
    print(f"  {'':<26}{'confirmed':>10}{'unconfirmed':>13}{'age':>10}")
    for name, confirmed, unconfirmed, age in rows:
        print(f"  {name:<26}{confirmed:>10}{unconfirmed:>13}{age:>10}")
    if info["refill_due"]:
        print(f"  fewer than {REFILL_THRESHOLD} one-time prekeys: {_hint(args, 'generate')}")
    if info["rotation_due"]:
        print(f"  signed / last-resort prekey missing or 2 days old: {_hint(args, 'rotate')}")
    if pending:
        print(f"  {len(pending)} upload(s) await confirmation: {_hint(args, 'confirm')}")
    return 0


def _report_upload(args: argparse.Namespace, upload: PreKeyUpload) -> None:
    _remember(args.db, args.account, upload)
    if args.json:
        print_json(upload_to_json(upload))
    else:
        print(f"generated {_upload_summary(upload)} (unconfirmed)")
        print(f"upload their public parts, then: {_hint(args, 'confirm')}")


def _prekeys_generate(args: argparse.Namespace) -> int:
    if not 1 <= args.count <= MAX_BATCH:
        raise CliError(f"--count must be in 1..{MAX_BATCH}")
    with open_store(args.db, args.account, args.key_file) as store:
        upload = store.generate_prekeys(args.count, kyber=not args.no_kyber)
    _report_upload(args, upload)
    return 0


def _prekeys_rotate(args: argparse.Namespace) -> int:
    with open_store(args.db, args.account, args.key_file) as store:
        if args.force:
            upload = store.rotate_signed_prekeys(interval_ms=0)
        else:
            upload = store.rotate_signed_prekeys()
    if upload is None:
        if args.json:
            print_json(None)
        else:
            print("nothing due: the signed and last-resort prekeys are younger than 2 days")
        return 0
    _report_upload(args, upload)
    return 0


def _prekeys_confirm(args: argparse.Namespace) -> int:
    pending = _read_pending(args.db)
    mine = pending.get(args.account, [])
    if args.upload is not None:
        text = sys.stdin.buffer.read() if args.upload == "-" else Path(args.upload).read_bytes()
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CliError(f"--upload: not JSON: {e}") from e
        chosen = [doc]
        rest = [p for p in mine if p != doc]
    else:
        chosen, rest = mine, []
    uploads = [upload_from_json(doc) for doc in chosen]
    if not uploads:
        print("nothing to confirm")
        return 0
    with open_store(args.db, args.account, args.key_file) as store:
        for upload in uploads:
            store.confirm_upload(upload)
    pending[args.account] = rest
    _write_pending(args.db, pending)
    for upload in uploads:
        print(f"confirmed {_upload_summary(upload)}")
    return 0


def _prekeys_bundle(args: argparse.Namespace) -> int:
    with open_store(args.db, args.account, args.key_file) as store:
        bundle = store.current_bundle(args.device, kyber=not args.no_kyber)
    if args.json:
        print_json(bundle_to_json(bundle))
        return 0
    fields = describe("bundle", bundle, b"", Context())
    print(f"PreKeyBundle of account {args.account!r}, device {args.device}")
    for line in render_text(fields, show=False, full=False):
        print(line)
    return 0


# --- parsers ------------------------------------------------------------------------------


def _store_options(*, required_db: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--db", required=required_db, metavar="PATH", help="the SQLite database")
    p.add_argument(
        "--account", default="default", metavar="NAME", help="the account (default: default)"
    )
    p.add_argument(
        "--key-file",
        metavar="FILE",
        help="the store's 32-byte encryption key (raw, hex or base64) if it has one",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    store = _store_options()
    account = sub.add_parser("account", help="create, show or list accounts of a SQLite store")
    acc = account.add_subparsers(dest="account_command", required=True, metavar="COMMAND")
    create = acc.add_parser(
        "create", parents=[store], help="create an account (a new identity key pair)"
    )
    create.add_argument("--registration-id", type=int, metavar="N", help="default: a random one")
    create.set_defaults(run=_account_create)
    acc.add_parser(
        "show", parents=[store], help="the account's identity key and registration id"
    ).set_defaults(run=_account_show)
    lst = acc.add_parser("list", help="the accounts of a database")
    lst.add_argument("--db", required=True, metavar="PATH", help="the SQLite database")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(run=_account_list)

    prekeys = sub.add_parser(
        "prekeys", help="prekey counts and ages; generate, rotate, confirm; export a bundle"
    )
    pk = prekeys.add_subparsers(dest="prekeys_command", required=True, metavar="COMMAND")
    pk.add_parser(
        "status", parents=[store], help="counts (confirmed / unconfirmed) and ages"
    ).set_defaults(run=_prekeys_status)
    gen = pk.add_parser(
        "generate", parents=[store], help="new one-time prekeys (stored unconfirmed)"
    )
    gen.add_argument("--count", type=int, default=BATCH, help=f"default: {BATCH}")
    gen.add_argument("--no-kyber", action="store_true", help="EC prekeys only")
    gen.set_defaults(run=_prekeys_generate)
    rot = pk.add_parser(
        "rotate",
        parents=[store],
        help="a new signed and last-resort Kyber prekey when due (2 days); clean up old ones",
    )
    rot.add_argument("--force", action="store_true", help="rotate even when not due")
    rot.set_defaults(run=_prekeys_rotate)
    conf = pk.add_parser(
        "confirm",
        parents=[store],
        help="mark the pending uploads (or --upload FILE) as taken by the server",
    )
    conf.add_argument(
        "--upload", metavar="FILE", help="confirm this upload (generate --json output; '-')"
    )
    conf.set_defaults(run=_prekeys_confirm)
    bundle = pk.add_parser("bundle", parents=[store], help="the bundle a server would hand out now")
    bundle.add_argument("--device", type=int, default=1, help="device id (default: 1)")
    bundle.add_argument("--no-kyber", action="store_true", help="an X3DH bundle")
    bundle.set_defaults(run=_prekeys_bundle)
