"""``make demo``: alice, bob and carol talk through the Signal protocol, every party's state in
its own account of one SQLite database; then the process closes its stores, a new process
opens the same database file and carries the conversation on.

Prints every message on the wire with its type, session version and size.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import textsecure as ts
from textsecure import attachments

__all__ = ["DATABASE", "MAILBOX", "continue_after_restart", "run"]

Out = Callable[[str], None]

#: the SQLite file holding every party's state (one account per party)
DATABASE = "demo.db"
#: messages in flight between the two processes (what a server would hold)
MAILBOX = "mailbox.json"

ACIS = {
    "alice": "9d0652a3-dcc3-4d11-975f-74d61598733f",
    "bob": "796abedb-ca4e-4f18-8803-1fde5b921f9f",
    "carol": "0f3b2c3e-5a7d-4e8f-9a1b-2c3d4e5f6a7b",
}
REGISTRATION_IDS = {"alice": 1001, "bob": 2002, "carol": 3003}
ADDRESSES = {name: ts.Address(aci, 1) for name, aci in ACIS.items()}

#: what alice sends just before her process ends (decrypted by the next process)
BEFORE_RESTART = {
    "bob": "Still there after my process ends, Bob?",
    "carol": "Still there after my process ends, Carol?",
    "group": "Group: see you after the restart!",
}
AFTER_RESTART = {
    "bob": "Yes: a new process, same ratchet.",
    "carol": "Yes: SPQR state and all.",
}


class Parties:
    """The parties' stores: accounts of one SQLite database, opened by this process."""

    def __init__(self, path: Path, names: list[str]) -> None:
        self.path = path
        self.stores: dict[str, ts.SQLiteStore] = {}
        try:
            for name in names:
                self.stores[name] = ts.SQLiteStore(
                    path, account=name, registration_id=REGISTRATION_IDS[name]
                )
        except BaseException:
            self.close()
            raise

    def __getitem__(self, name: str) -> ts.SQLiteStore:
        return self.stores[name]

    def cipher(self, local: str, remote: str) -> ts.SessionCipher:
        return ts.SessionCipher(self.stores[local], ADDRESSES[remote])

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


def _line(sender: str, receiver: str, message: Any, wire: bytes, note: str) -> str:
    parsed = message.message if isinstance(message, ts.PreKeySignalMessage) else message
    pq = getattr(parsed, "pq_ratchet", b"")
    spqr = f" (SPQR {len(pq)} B)" if pq else ""
    return (
        f"{sender:>5} -> {receiver:<5} {message.type.name:<7} v{message.version} "
        f"{len(wire):4d} bytes{spqr}  {note}"
    )


def _conversation(p: Parties, a: str, b: str, kyber: bool, out: Out) -> None:
    label = (
        "PQXDH (session version 4, Kyber-1024) with the SPQR triple ratchet"
        if kyber
        else "X3DH (session version 3)"
    )
    out(f"== {label}: {a} and {b}")
    bundle = p[b].new_bundle(1, prekey_id=1, signed_prekey_id=1, kyber=kyber)
    out(
        f"{b} publishes a bundle: signed prekey {bundle.signed_prekey_id}, one-time prekey "
        f"{bundle.prekey_id}, Kyber prekey {bundle.kyber_prekey_id}"
    )
    ciphers = {a: p.cipher(a, b), b: p.cipher(b, a)}
    ciphers[a].process_bundle(bundle)

    script: list[tuple[str, bytes]] = [
        (a, b"Hi! This is end-to-end encrypted."),
        (a, b"(a second message before the first answer)"),
        (b, b"Hi, got both."),
        (a, b"Ratchet step on every reply."),
        (b, b"Forward secrecy and post-compromise security."),
        (b, b"Two in a row stay in one chain."),
        (a, b"Bye!"),
    ]
    wire = b""
    for sender, text in script:
        receiver = b if sender == a else a
        message = ciphers[sender].encrypt(text)
        wire = bytes(message)
        parsed = ts.parse_message(message.type, wire)
        assert isinstance(parsed, ts.SignalMessage | ts.PreKeySignalMessage)
        plaintext = ciphers[receiver].decrypt(parsed)
        assert plaintext == text
        out(_line(sender, receiver, parsed, wire, plaintext.decode()))
    record = p[a].session(ADDRESSES[b])
    assert record is not None
    out(
        f"{a}'s session record with {b}: version {record.version}, {len(bytes(record))} bytes "
        f"in libsignal's storage format, a row of {p.path.name}"
    )
    try:
        peer_message = p.cipher(b, a).decrypt(ts.parse_message(ts.MessageType.WHISPER, wire))
    except ts.errors.DuplicateMessage:
        out("replaying the last message: rejected as a duplicate, state unchanged")
    else:  # pragma: no cover - would be a bug
        raise AssertionError(f"replay decrypted: {peer_message!r}")


def _picture(width: int = 96, height: int = 64) -> bytes:
    """A small RGB gradient as a real PNG file."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 128))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _picture_message(p: Parties, out: Out) -> None:
    """Sends a picture: the blob goes to a (pretend) CDN, its pointer through the session."""
    out("== an encrypted picture (Signal attachment, then WhatsApp media): alice to carol")
    picture = _picture()
    cdn: dict[str, bytes] = {}

    sent = attachments.encrypt(picture)
    cdn["attachment-1"] = sent.blob
    pointer = json.dumps(
        {
            "cdn_key": "attachment-1",
            "key": sent.key.hex(),
            "digest": sent.digest.hex(),
            "size": sent.plaintext_size,
            "incremental_mac": sent.incremental_mac.hex(),
            "chunk_size": sent.chunk_size,
            "content_type": "image/png",
        }
    ).encode()
    message = p.cipher("alice", "carol").encrypt(pointer)
    received = json.loads(p.cipher("carol", "alice").decrypt(message))
    image = attachments.decrypt(
        cdn[received["cdn_key"]],
        key=bytes.fromhex(received["key"]),
        digest=bytes.fromhex(received["digest"]),
        size=received["size"],
        incremental_mac=bytes.fromhex(received["incremental_mac"]),
        chunk_size=received["chunk_size"],
    )
    assert image == picture
    out(
        _line(
            "alice",
            "carol",
            message,
            bytes(message),
            f"pointer to a {len(picture)}-byte PNG; blob on the CDN: {len(sent.blob)} bytes "
            f"(padded, IV, MAC); digest {sent.digest.hex()[:16]}...",
        )
    )
    out(f"  carol decrypted the picture: {len(image)} bytes, MAC, digest and incremental MAC ok")

    tampered = bytearray(sent.blob)
    tampered[100] ^= 1
    try:
        attachments.decrypt(bytes(tampered), key=sent.key, digest=sent.digest, size=len(picture))
    except ts.errors.InvalidMessage:
        out("  a blob with one flipped bit is rejected")
    else:  # pragma: no cover - would be a bug
        raise AssertionError("tampered blob decrypted")

    wa = attachments.encrypt_whatsapp(picture, "image")
    back = attachments.decrypt_whatsapp(
        wa.blob,
        "image",
        wa.media_key,
        file_sha256=wa.file_sha256,
        file_enc_sha256=wa.file_enc_sha256,
    )
    assert back == picture
    out(
        f"  WhatsApp image: {len(wa.blob)}-byte upload (AES-CBC + 10-byte MAC), "
        f"fileSha256 {wa.file_sha256.hex()[:16]}..., decrypted and verified"
    )


def _group(p: Parties, group_id: uuid.UUID, out: Out) -> None:
    """bob and carol start a session; the three exchange sender keys and talk."""
    out("== a three-member group (sender keys)")
    to_bob = p.cipher("carol", "bob")
    to_bob.process_bundle(p["bob"].new_bundle(1, prekey_id=2, signed_prekey_id=2))
    p.cipher("bob", "carol").decrypt(to_bob.encrypt(b"hi"))
    to_bob.decrypt(p.cipher("bob", "carol").encrypt(b"hi"))
    out("carol and bob start a PQXDH session (alice has one with each already)")

    sender_key_messages = 0
    for sender in ACIS:
        skdm = ts.GroupCipher(p[sender], group_id).create_distribution(ADDRESSES[sender])
        others = [ADDRESSES[n] for n in ACIS if n != sender]
        for to, sent in ts.encrypt_fanout(p[sender], others, bytes(skdm)).items():
            assert not isinstance(sent, ts.errors.TextSecureError), sent
            receiver = next(n for n in ACIS if ADDRESSES[n] == to)
            got = p.cipher(receiver, sender).decrypt(sent)
            ts.GroupCipher(p[receiver], group_id).process_distribution(
                ADDRESSES[sender], ts.SenderKeyDistributionMessage.from_bytes(got)
            )
            sender_key_messages += 1
    out(
        f"3 members exchanged their sender keys over 1:1 sessions "
        f"({sender_key_messages} fan-out messages)"
    )
    for sender, text in (("alice", b"Lunch at noon?"), ("bob", b"Yes!"), ("carol", b"Count me in")):
        message = ts.GroupCipher(p[sender], group_id).encrypt(ADDRESSES[sender], text)
        wire = bytes(message)
        for receiver in ACIS:
            if receiver != sender:
                parsed = ts.parse_message(ts.MessageType.SENDERKEY, wire)
                got = ts.GroupCipher(p[receiver], group_id).decrypt(ADDRESSES[sender], parsed)
                assert got == text
        out(
            f"{sender:>5} -> group {message.type.name:<9} {len(wire):4d} bytes, one ciphertext "
            f"for all members, signed  {text.decode()}"
        )


def _sealed_sender_and_safety_numbers(p: Parties, out: Out) -> None:
    """A sealed-sender message over alice's X3DH session with bob; their safety numbers."""
    out("== sealed sender, safety numbers")
    trust_root = ts.PrivateKey.generate()
    server_key = ts.PrivateKey.generate()
    server_cert = ts.ServerCertificate.create(1, server_key.public_key, trust_root)
    now = int(time.time() * 1000)
    alice_cert = ts.SenderCertificate.create(
        sender_uuid=ACIS["alice"],
        sender_device_id=1,
        identity_key=p["alice"].identity_key_pair.public_key,
        expiration=now + 86_400_000,
        server_certificate=server_cert,
        server_key=server_key,
    )
    sealed = ts.SealedSessionCipher(p["alice"]).encrypt(
        ADDRESSES["bob"], b"A secret from someone", alice_cert
    )
    result = ts.SealedSessionCipher(p["bob"]).decrypt(
        sealed, trust_root=trust_root.public_key, timestamp=now, local_address=ADDRESSES["bob"]
    )
    assert result.plaintext == b"A secret from someone" and result.sender == ADDRESSES["alice"]
    out(
        f"sealed sender v1: {len(sealed)} bytes on the wire, no visible sender; bob's store "
        f"finds the sender certificate of alice ({result.sender}) and decrypts: "
        f"{result.plaintext.decode()}"
    )

    # Safety numbers: both sides compute the same 60 digits; the QR codes cross-match.
    alice_key = p["alice"].identity_key_pair.public_key
    bob_key = p["bob"].identity_key_pair.public_key
    alice_id, bob_id = uuid.UUID(ACIS["alice"]).bytes, uuid.UUID(ACIS["bob"]).bytes
    alice_view = ts.Fingerprint.create(
        local_id=alice_id, local_key=alice_key, remote_id=bob_id, remote_key=bob_key
    )
    bob_view = ts.Fingerprint.create(
        local_id=bob_id, local_key=bob_key, remote_id=alice_id, remote_key=alice_key
    )
    assert alice_view.displayable == bob_view.displayable
    assert alice_view.matches(bob_view.scannable) and bob_view.matches(alice_view.scannable)
    digits = alice_view.displayable
    groups = " ".join(digits[i : i + 5] for i in range(0, 60, 5))
    out(f"safety number (alice's view): {groups}")
    out(f"safety number (bob's view):   {groups}  (same; scanned QR codes match)")


def _send_before_restart(p: Parties, group_id: uuid.UUID, out: Out) -> list[dict[str, Any]]:
    """alice's last messages before her process ends: what a server would queue."""
    pending: list[dict[str, Any]] = []
    for to in ("bob", "carol"):
        message = p.cipher("alice", to).encrypt(BEFORE_RESTART[to].encode())
        wire = bytes(message)
        pending.append({"to": to, "type": int(message.type), "body": wire.hex()})
        out(_line("alice", to, message, wire, BEFORE_RESTART[to]))
    group_message = ts.GroupCipher(p["alice"], group_id).encrypt(
        ADDRESSES["alice"], BEFORE_RESTART["group"].encode()
    )
    wire = bytes(group_message)
    pending.append({"to": "group", "type": int(group_message.type), "body": wire.hex()})
    out(
        f"alice -> group {group_message.type.name:<9} {len(wire):4d} bytes  "
        f"{BEFORE_RESTART['group']}"
    )
    return pending


def _restart(p: Parties, directory: Path, group_id: uuid.UUID, out: Out) -> None:
    """Sends, closes every store, hands over to a new process, reopens alice's account and
    decrypts what the new process answered."""
    out(f"== restart: everything lives in {p.path.name}, nothing else carries over")
    pending = _send_before_restart(p, group_id, out)
    mailbox = directory / MAILBOX
    mailbox.write_text(
        json.dumps({"group_id": str(group_id), "pending": pending, "replies": []}, indent=1)
    )
    p.close()
    command = [sys.executable, "-m", "textsecure", "demo", "--continue", str(directory)]
    out(f"process pid {os.getpid()} closed every store; {len(pending)} messages wait in {MAILBOX}")
    out(f"starting a new process: python -m textsecure demo --continue {directory}")
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in child.stdout.splitlines():
        out(f"  | {line}")
    if child.returncode != 0:
        raise RuntimeError(f"the new process failed (rc={child.returncode}):\n{child.stderr}")
    state = json.loads(mailbox.read_text())
    child_pid = int(state["continued_by"])
    if child_pid == os.getpid():  # pragma: no cover - would be a bug
        raise AssertionError("the conversation was continued in the same process")
    out(f"process pid {child_pid} exited (rc 0)")

    again = Parties(p.path, ["alice"])
    try:
        out(f"process pid {os.getpid()} reopens alice's account in {p.path.name}")
        for reply in state["replies"]:
            sender = reply["from"]
            message = ts.parse_message(reply["type"], bytes.fromhex(reply["body"]))
            text = again.cipher("alice", sender).decrypt(message).decode()
            assert text == AFTER_RESTART[sender], text
            out(f"alice decrypted {sender}'s reply from pid {child_pid}: {text}")
    finally:
        again.close()


def continue_after_restart(directory: Path | str, out: Out = print) -> None:
    """The new process (``python -m textsecure demo --continue DIR``): opens bob's and
    carol's accounts in ``DIR/demo.db``, decrypts what alice sent before the restart, and
    replies."""
    directory = Path(directory)
    path = directory / DATABASE
    mailbox = directory / MAILBOX
    if not path.is_file() or not mailbox.is_file():
        raise FileNotFoundError(f"{directory} has no {DATABASE} and {MAILBOX} (run the demo)")
    state = json.loads(mailbox.read_text())
    group_id = uuid.UUID(state["group_id"])
    p = Parties(path, ["bob", "carol"])
    try:
        out(f"restarted: new process pid {os.getpid()} opened {path} (accounts bob, carol)")
        for item in state["pending"]:
            body = bytes.fromhex(item["body"])
            if item["to"] == "group":
                for receiver in ("bob", "carol"):
                    message = ts.parse_message(ts.MessageType.SENDERKEY, body)
                    text = ts.GroupCipher(p[receiver], group_id).decrypt(
                        ADDRESSES["alice"], message
                    )
                    out(
                        f"{receiver} decrypted alice's group message from before the restart: "
                        f"{text.decode()}"
                    )
                continue
            receiver = item["to"]
            parsed = ts.parse_message(item["type"], body)
            text = p.cipher(receiver, "alice").decrypt(parsed)
            out(
                f"{receiver} decrypted alice's v{parsed.version} message from before the "
                f"restart: {text.decode()}"
            )
        for sender in ("bob", "carol"):
            reply = p.cipher(sender, "alice").encrypt(AFTER_RESTART[sender].encode())
            wire = bytes(reply)
            state["replies"].append({"from": sender, "type": int(reply.type), "body": wire.hex()})
            out(_line(sender, "alice", reply, wire, AFTER_RESTART[sender]))
    finally:
        p.close()
    state["pending"] = []
    state["continued_by"] = os.getpid()
    mailbox.write_text(json.dumps(state, indent=1))


def run(out: Out = print, directory: Path | str | None = None) -> None:
    """Runs the demo: X3DH and PQXDH conversations, a picture, a group, sealed sender, safety
    numbers, and a restart, on an SQLite database in ``directory`` (a new, empty one; by
    default a temporary directory, removed afterwards)."""
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="textsecure-demo-") as tmp:
            run(out, tmp)
        return
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DATABASE
    if path.exists():
        raise FileExistsError(f"{path} exists: give the demo an empty directory")
    out(f"textsecure {ts.__version__}, demo process pid {os.getpid()}")
    p = Parties(path, ["alice", "bob", "carol"])
    out(f"state: {path} (SQLite, one account per party: alice, bob, carol)")
    try:
        _conversation(p, "alice", "bob", kyber=False, out=out)
        _conversation(p, "alice", "carol", kyber=True, out=out)
        _picture_message(p, out)
        group_id = uuid.uuid4()
        _group(p, group_id, out)
        _sealed_sender_and_safety_numbers(p, out)
        _restart(p, directory, group_id, out)
    finally:
        p.close()
