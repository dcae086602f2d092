"""The ``textsecure`` command, run for real in a subprocess (``python -m textsecure`` and the
installed ``textsecure`` console script): inspect of every type (round-tripped from objects
made here, text and JSON, secrets redacted or shown, detection, every input encoding), the
safety number (digits, QR code, comparison), accounts and the prekey lifecycle on a SQLite
file, bench, and one-line errors without a traceback for bad input."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import pty
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import textsecure as ts
from textsecure import cli
from textsecure.cli import _inspect

PYTHON_M = [sys.executable, "-m", "textsecure"]
SCRIPT = Path(sys.executable).parent / "textsecure"
ALICE = ts.Address("9d0652a3-dcc3-4d11-975f-74d61598733f", 1)
BOB = ts.Address("796abedb-ca4e-4f18-8803-1fde5b921f9f", 1)
BOB_ACI = BOB.name
HAVE_SEGNO = importlib.util.find_spec("segno") is not None


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(*args: str | Path, input: bytes | None = None, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        [*PYTHON_M, *map(str, args)],
        input=input,
        capture_output=True,
        timeout=120,
        env=env,
        check=False,
    )
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def ok(*args: str | Path, input: bytes | None = None) -> Result:
    r = run(*args, input=input)
    assert r.code == 0, r.err
    assert "Traceback" not in r.err
    return r


def fails(*args: str | Path, input: bytes | None = None, code: int = 1) -> str:
    """The command fails with one ``textsecure: error:`` line and no traceback."""
    r = run(*args, input=input)
    assert r.code == code, (r.out, r.err)
    assert "Traceback" not in r.err and "Traceback" not in r.out
    lines = r.err.splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("textsecure: error: "), r.err
    return lines[0]


# --- objects of every type --------------------------------------------------------------


@dataclass
class World:
    alice: ts.MemoryStore
    bob: ts.MemoryStore
    root: ts.PrivateKey
    objects: dict[str, tuple[object, bytes]]


@pytest.fixture(scope="module")
def world() -> World:
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 1)
    bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 2)
    to_bob = ts.SessionCipher(alice, BOB)
    to_bob.process_bundle(bob.new_bundle(1, prekey_id=7, signed_prekey_id=8))
    prekey = to_bob.encrypt(b"hello")
    to_alice = ts.SessionCipher(bob, ALICE)
    to_alice.decrypt(prekey)
    signal = to_alice.encrypt(b"hi")
    dist = uuid.UUID("0f3b2c3e-5a7d-4e8f-9a1b-2c3d4e5f6a7b")
    group = ts.GroupCipher(alice, dist)
    skdm = group.create_distribution(ALICE)
    skm = group.encrypt(ALICE, b"group")
    legacy = ts.LegacyGroupCipher(alice, "group-id")
    lskdm = legacy.create_distribution(ALICE)
    lskm = legacy.encrypt(ALICE, b"legacy group")
    root, server = ts.PrivateKey.generate(), ts.PrivateKey.generate()
    server_cert = ts.ServerCertificate.create(7, server.public_key, root)
    sender_cert = ts.SenderCertificate.create(
        sender_uuid=ALICE.name,
        sender_device_id=1,
        identity_key=alice.identity_key_pair.public_key,
        expiration=int(time.time() * 1000) + 86_400_000,
        server_certificate=server_cert,
        server_key=server,
        sender_e164="+14155550100",
    )
    usmc = ts.UnidentifiedSenderMessageContent(2, sender_cert, bytes(signal), content_hint=1)
    sealed_v1 = ts.sealed_sender_encrypt(
        usmc, sender=alice.identity_key_pair, recipient=bob.identity_key_pair.public_key
    )
    multi = ts.sealed_sender_multi_recipient_encrypt(
        usmc,
        [(BOB_ACI, bob.identity_key_pair.public_key, [(1, 2)])],
        sender=alice.identity_key_pair,
    )
    sealed_multi = ts.SealedSenderMultiRecipientMessage.from_bytes(multi)
    sealed_v2 = sealed_multi.message_for_recipient(BOB_ACI)
    session = alice.session(BOB)
    sender_key = alice.sender_key(ALICE, dist)
    assert session is not None and sender_key is not None
    spk = ts.SignedPreKeyRecord.generate(11, alice.identity_key_pair, 1_700_000_000_000)
    kpk = ts.KyberPreKeyRecord.generate(12, alice.identity_key_pair, 1_700_000_000_000)
    pk = ts.PreKeyRecord.generate(13)
    objects: dict[str, tuple[object, bytes]] = {
        "signal": (signal, bytes(signal)),
        "prekey": (prekey, bytes(prekey)),
        "skdm": (skdm, bytes(skdm)),
        "legacy-skdm": (lskdm, bytes(lskdm)),
        "sender-key": (skm, bytes(skm)),
        "legacy-sender-key": (lskm, bytes(lskm)),
        "sealed": (sealed_v1, sealed_v1),
        "sealed-multi": (sealed_multi, multi),
        "usmc": (usmc, bytes(usmc)),
        "server-cert": (server_cert, bytes(server_cert)),
        "sender-cert": (sender_cert, bytes(sender_cert)),
        "session-record": (session, bytes(session)),
        "prekey-record": (pk, bytes(pk)),
        "signed-prekey-record": (spk, bytes(spk)),
        "kyber-prekey-record": (kpk, bytes(kpk)),
        "sender-key-record": (sender_key, bytes(sender_key)),
        "identity-key-pair": (alice.identity_key_pair, bytes(alice.identity_key_pair)),
        "public-key": (
            alice.identity_key_pair.public_key,
            bytes(alice.identity_key_pair.public_key),
        ),
    }
    bundle = bob.new_bundle(1, prekey_id=21, signed_prekey_id=22)
    objects["bundle"] = (bundle, json.dumps(_inspect.bundle_to_json(bundle)).encode())
    objects["sealed-v2"] = (sealed_v2, sealed_v2)
    return World(alice, bob, root, objects)


def _hex(key: Any) -> str:
    return bytes(key).hex()


def expected_fields(name: str, obj: Any) -> dict[str, Any]:
    """A few fields per type, as ``inspect --json`` must print them."""
    if name == "signal":
        return {
            "counter": obj.counter,
            "version": obj.version,
            "ratchet_key": _hex(obj.ratchet_key),
        }
    if name == "prekey":
        return {
            "registration_id": obj.registration_id,
            "prekey_id": 7,
            "signed_prekey_id": 8,
            "base_key": _hex(obj.base_key),
            "identity_key": _hex(obj.identity_key),
        }
    if name == "skdm":
        return {
            "distribution_id": str(obj.distribution_id),
            "chain_id": obj.chain_id,
            "signing_key": _hex(obj.signing_key),
            "chain_key": "<redacted 32 bytes>",
        }
    if name == "legacy-skdm":
        return {"chain_id": obj.chain_id, "chain_key": "<redacted 32 bytes>"}
    if name in ("sender-key", "legacy-sender-key"):
        return {"chain_id": obj.chain_id, "iteration": obj.iteration, "version": obj.version}
    if name in ("sealed", "sealed-v2"):
        return {"version": "1 (0x11)" if name == "sealed" else "2 (0x22, received form)"}
    if name == "sealed-multi":
        return {"recipients": [{"service_id": BOB_ACI, "devices": ["1 (registration id 2)"]}]}
    if name == "usmc":
        return {"message_type": "2 (WHISPER)", "content_hint": "1 (RESENDABLE)"}
    if name == "server-cert":
        return {"key_id": 7, "key": _hex(obj.key)}
    if name == "sender-cert":
        return {
            "sender_uuid": ALICE.name,
            "sender_e164": "+14155550100",
            "sender_device_id": 1,
            "expiration": obj.expiration,
            "expired": False,
        }
    if name == "session-record":
        return {
            "version": 4,
            "has_current_session": True,
            "remote_registration_id": 2,
            "record": f"<redacted {len(bytes(obj))} bytes>",
        }
    if name == "prekey-record":
        return {"id": 13, "public_key": _hex(obj.public_key), "private_key": "<redacted 32 bytes>"}
    if name == "signed-prekey-record":
        return {"id": 11, "timestamp": 1_700_000_000_000, "signature": obj.signature.hex()}
    if name == "kyber-prekey-record":
        return {"id": 12, "kem": "Kyber-1024", "secret_key": "<redacted 3169 bytes>"}
    if name == "sender-key-record":
        return {"states": 1, "chain_ids": obj.chain_ids}
    if name == "identity-key-pair":
        return {"public_key": _hex(obj.public_key), "private_key": "<redacted 32 bytes>"}
    if name == "public-key":
        return {"public_key": _hex(obj)}
    if name == "bundle":
        return {
            "session_version": "4 (PQXDH)",
            "prekey_id": 21,
            "signed_prekey_id": 22,
            "identity_key": _hex(obj.identity_key),
            "signed_prekey_signature_valid": True,
            "kyber_prekey_signature_valid": True,
        }
    raise AssertionError(name)


#: the secret of each secret-bearing type, as --show-secrets prints it (hex)
def secret_of(name: str, obj: Any, data: bytes) -> str | None:
    if name in ("prekey-record", "signed-prekey-record", "identity-key-pair"):
        return _hex(obj.private_key)
    if name == "kyber-prekey-record":
        return _hex(obj.key_pair.secret_key)
    if name in ("session-record", "sender-key-record"):
        return data.hex()
    return None


ALL_TYPES = [*_inspect.TYPES, "sealed-v2"]


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / f"{name}.bin"
    path.write_bytes(data)
    return path


# --- inspect ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_TYPES)
def test_inspect_detects_every_type(world: World, tmp_path: Path, name: str) -> None:
    obj, data = world.objects[name]
    kind = "sealed" if name == "sealed-v2" else name
    path = _file(tmp_path, name, data)
    text = ok("inspect", path).out
    title = _inspect.TYPES[kind].title
    assert text.splitlines()[0].startswith(f"{title} ({kind}, {len(data)} bytes; detected")
    doc = ok("inspect", path, "--json").json()
    assert (doc["type"], doc["class"], doc["size"], doc["detected"]) == (
        kind,
        title,
        len(data),
        True,
    )
    for key, value in expected_fields(name, obj).items():
        assert doc["fields"][key] == value, key
    # Named instead of detected: the same fields.
    named = ok("inspect", path, "--json", "--type", kind).json()
    assert named["detected"] is False and named["fields"] == doc["fields"]
    # Text shows the same values (hex keys in full when short).
    for key, value in expected_fields(name, obj).items():
        if isinstance(value, str) and len(value) <= 128:
            assert f"{key}: {value}" in text, key


@pytest.mark.parametrize("name", ALL_TYPES)
def test_inspect_redacts_secrets_unless_asked(world: World, tmp_path: Path, name: str) -> None:
    obj, data = world.objects[name]
    path = _file(tmp_path, name, data)
    secret = secret_of(name, obj, data)
    hidden_text = ok("inspect", path, "--full").out
    hidden_json = ok("inspect", path, "--json").out
    if name in ("skdm", "legacy-skdm"):
        # The chain key is not a property: it is the 32 bytes --show-secrets reveals.
        shown = ok("inspect", path, "--json", "--show-secrets").json()["fields"]["chain_key"]
        assert len(shown) == 64 and shown in data.hex()
        secret = shown
    if secret is None:
        assert "<redacted" not in hidden_text and "<redacted" not in hidden_json
        return
    assert secret not in hidden_text and secret not in hidden_json
    assert "<redacted" in hidden_text and "<redacted" in hidden_json
    assert secret in ok("inspect", path, "--show-secrets", "--full").out
    assert secret in ok("inspect", path, "--show-secrets", "--json").out


def test_inspect_reads_every_encoding(world: World, tmp_path: Path) -> None:
    _, data = world.objects["signal"]
    expected = ok("inspect", _file(tmp_path, "signal", data), "--json").json()["fields"]
    hexed, b64 = data.hex(), base64.b64encode(data).decode()
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    cases: list[tuple[list[str | Path], bytes | None, str]] = [
        (["-"], data, "raw"),
        (["-"], hexed.encode() + b"\n", "hex"),
        (["-"], b64.encode() + b"\n", "base64"),
        ([hexed], None, "hex"),
        ([b64], None, "base64"),
        ([urlsafe, "--base64"], None, "base64"),
        ([" ".join(hexed[i : i + 8] for i in range(0, len(hexed), 8)), "--hex"], None, "hex"),
        ([_file(tmp_path, "hexfile", hexed.encode()), "--hex"], None, "hex"),
        ([_file(tmp_path, "b64file", b64.encode())], None, "base64"),
        ([_file(tmp_path, "rawfile", data), "--raw"], None, "raw"),
    ]
    for args, stdin, encoding in cases:
        doc = ok("inspect", *args, "--json", input=stdin).json()
        assert (doc["encoding"], doc["type"]) == (encoding, "signal"), args
        assert doc["fields"] == expected
    assert "read as hex" in ok("inspect", hexed).out.splitlines()[0]


def test_inspect_nested_and_long_values(world: World, tmp_path: Path) -> None:
    obj, data = world.objects["prekey"]
    assert isinstance(obj, ts.PreKeySignalMessage)
    doc = ok("inspect", _file(tmp_path, "p", data), "--json").json()["fields"]
    assert doc["message"]["counter"] == obj.message.counter
    assert doc["message"]["ratchet_key"] == _hex(obj.message.ratchet_key)
    kobj, kdata = world.objects["kyber-prekey-record"]
    assert isinstance(kobj, ts.KyberPreKeyRecord)
    path = _file(tmp_path, "k", kdata)
    public = _hex(kobj.public_key)
    assert "(1569 bytes)" in ok("inspect", path).out and public not in ok("inspect", path).out
    assert public in ok("inspect", path, "--full").out
    assert ok("inspect", path, "--json").json()["fields"]["public_key"] == public


def test_inspect_ambiguous_and_unknown_inputs(tmp_path: Path) -> None:
    # Field 5 = 1: an unknown field to both record parsers, which both accept it.
    line = fails("inspect", "2801")
    assert "ambiguous" in line and "session-record" in line and "sender-key-record" in line
    assert "--type" in line
    doc = ok("inspect", "2801", "--type", "session-record", "--json").json()
    assert doc["fields"]["has_current_session"] is False
    line = fails("inspect", _file(tmp_path, "junk", b"\xff\x00 definitely nothing"))
    assert "not a known type" in line


def test_detect_and_describe_mutated_inputs_fail_cleanly(world: World) -> None:
    """In process, for speed: truncations, bit flips and random bytes are detected as some
    type and described, or refused with a CliError; nothing else escapes."""
    rnd = random.Random(13)
    ctx = _inspect.Context(now_ms=int(time.time() * 1000))
    samples = [data for name, (_, data) in world.objects.items() if name != "bundle"]
    for _ in range(3000):
        data = bytearray(rnd.choice(samples))
        how = rnd.randrange(3)
        if how == 0:
            data = data[: rnd.randrange(1, len(data))]
        elif how == 1:
            for _ in range(rnd.randrange(1, 4)):
                data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        else:
            data = bytearray(rnd.randbytes(rnd.randrange(1, 120)))
        try:
            name, obj = _inspect.detect(bytes(data))
        except cli.CliError:
            continue
        fields = _inspect.describe(name, obj, bytes(data), ctx)
        json.dumps(_inspect.to_json(fields, show=True))
        _inspect.render_text(fields, show=False, full=False)


def test_inspect_sealed_opened_with_the_recipients_key(world: World, tmp_path: Path) -> None:
    bob = world.bob.identity_key_pair
    key_file = _file(tmp_path, "bob-identity", bytes(bob).hex().encode())
    root = bytes(world.root.public_key).hex()
    for name in ("sealed", "sealed-v2"):
        path = _file(tmp_path, name, world.objects[name][1])
        closed = ok("inspect", path, "--json").json()["fields"]
        assert isinstance(closed["content"], str) and "--identity" in closed["content"]
        assert len(closed["ephemeral_public"]) in (64, 66)
        opened = ok("inspect", path, "--json", "--identity", key_file, "--trust-root", root)
        content = opened.json()["fields"]["content"]
        assert content["sender"] == f"{ALICE.name}.1"
        assert content["sender_certificate"]["validation"] == "valid"
        assert content["contents"]["type"] == "signal"
        wrong = ok(
            "inspect", path, "--json", "--identity", key_file, "--trust-root", "05" + "11" * 32
        )
        assert wrong.json()["fields"]["content"]["sender_certificate"]["validation"].startswith(
            "invalid"
        )
        # Someone else's key: one line, exit 1.
        other = bytes(world.alice.identity_key_pair).hex()
        fails("inspect", path, "--identity", other)
    # The recipient's identity from a store.
    db = tmp_path / "bob.db"
    with ts.SQLiteStore(db, account="bob", identity=bob):
        pass
    text = ok(
        "inspect", _file(tmp_path, "s", world.objects["sealed"][1]), "--db", db, "--account", "bob"
    )
    assert f"sender: {ALICE.name}.1" in text.out


def test_inspect_bundle_round_trip_and_bad_signature(world: World, tmp_path: Path) -> None:
    x3dh = world.bob.new_bundle(1, prekey_id=31, signed_prekey_id=32, kyber=False)
    doc = _inspect.bundle_to_json(x3dh)
    assert "kyber_prekey_id" not in doc
    fields = ok("inspect", "-", "--json", input=json.dumps(doc).encode()).json()["fields"]
    assert fields["session_version"] == "3 (X3DH)" and fields["prekey_id"] == 31
    assert _inspect.bundle_to_json(_inspect.bundle_from_json(json.dumps(doc).encode())) == doc
    sig = bytearray(base64.b64decode(str(doc["signed_prekey_signature"])))
    sig[0] ^= 1
    doc["signed_prekey_signature"] = base64.b64encode(bytes(sig)).decode()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    assert "signed_prekey_signature_valid: no" in ok("inspect", path).out
    path.write_text(json.dumps({**doc, "extra": 1}))
    assert "unknown field" in fails("inspect", path)
    path.write_text(json.dumps({**doc, "identity_key": "!!"}))
    assert "identity_key" in fails("inspect", path, "--type", "bundle")
    path.write_text("{not json")
    assert "not JSON" in fails("inspect", path, "--type", "bundle")
    assert "not a known type" in fails("inspect", path)  # then it is tried as binary


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (["/nonexistent/file.bin", "--raw"], None, "no such file"),
        (["message.bin"], None, "no such file"),
        (["-"], b"", "empty"),
        (["zz", "--hex"], None, "not hex"),
        (["-", "--hex"], b"abc", "not hex"),
        (["-", "--type", "signal"], b"\x33garbage", "not a valid signal"),
        (["-", "--type", "sealed"], b"\x11\xff", "not a valid sealed"),
        (["/"], None, "directory"),
        (["-", "--identity", "00"], b"\x11", "--identity"),
        (["-", "--db", "/nonexistent.db"], b"\x11", "no database"),
    ],
)
def test_inspect_bad_input_is_one_line(args: list[str], stdin: bytes | None, needle: str) -> None:
    assert needle in fails("inspect", *args, input=stdin)


def test_usage_errors_exit_2() -> None:
    r = run("inspect", "-", "--type", "nope", input=b"x")
    assert r.code == 2 and "invalid choice" in r.err and "Traceback" not in r.err
    r = run("demo", "--dir", "a", "--continue", "b")
    assert r.code == 2 and "not allowed with" in r.err
    assert run().code == 2


# --- fingerprint ------------------------------------------------------------------------


def _fp_args(local: ts.IdentityKey, remote: ts.IdentityKey, *, swap: bool = False) -> list[str]:
    ids = [ALICE.name, BOB_ACI]
    if swap:
        ids.reverse()
    return [
        "fingerprint",
        "--local-id",
        ids[0],
        "--local-key",
        _hex(local),
        "--remote-id",
        ids[1],
        "--remote-key",
        base64.b64encode(bytes(remote)).decode(),
    ]


def test_fingerprint_numeric(world: World) -> None:
    a = world.alice.identity_key_pair.public_key
    b = world.bob.identity_key_pair.public_key
    fp = ts.Fingerprint.create(
        local_id=uuid.UUID(ALICE.name).bytes,
        local_key=a,
        remote_id=uuid.UUID(BOB_ACI).bytes,
        remote_key=b,
    )
    out = ok(*_fp_args(a, b)).out.strip()
    assert out.split() == [fp.displayable[i : i + 5] for i in range(0, 60, 5)]
    assert ok(*_fp_args(b, a, swap=True)).out.strip() == out  # the other side's view
    doc = ok(*_fp_args(a, b), "--json").json()
    assert doc["safety_number"] == fp.displayable and doc["scannable"] == fp.scannable.hex()
    assert len(doc["groups"]) == 12 and doc["version"] == 2
    raw = ok(*_fp_args(a, b), "--raw-ids", "--json").json()["safety_number"]
    assert raw != fp.displayable  # the ids hashed as text instead of 16 bytes


def test_fingerprint_local_identity_from_a_store(world: World, tmp_path: Path) -> None:
    ok("account", "create", "--db", tmp_path / "a.db", "--account", "me")
    with ts.SQLiteStore(tmp_path / "a.db", account="me") as store:
        mine = store.identity_key_pair.public_key
    b = world.bob.identity_key_pair.public_key
    args = ["--local-id", ALICE.name, "--remote-id", BOB_ACI, "--remote-key", _hex(b)]
    from_db = ok("fingerprint", *args, "--db", tmp_path / "a.db", "--account", "me").out
    assert from_db == ok(*_fp_args(mine, b)).out
    assert "local identity" in fails("fingerprint", *args)


def _qr_rows(text: str) -> list[list[bool]]:
    """The terminal drawing back to modules (True = light): two rows per line."""
    cells = {"█": (True, True), " ": (False, False), "▀": (True, False), "▄": (False, True)}
    rows: list[list[bool]] = []
    for line in text.splitlines():
        pairs = [cells[c] for c in line]
        rows.append([p[0] for p in pairs])
        rows.append([p[1] for p in pairs])
    return rows


@pytest.mark.skipif(not HAVE_SEGNO, reason="segno (the cli extra) is not installed")
def test_fingerprint_qr_draws_the_scannable_form(world: World) -> None:
    import segno

    a = world.alice.identity_key_pair.public_key
    b = world.bob.identity_key_pair.public_key
    out = ok(*_fp_args(a, b), "--qr").out
    first, drawing = out.split("\n", 1)
    assert len(first.split()) == 12
    scannable = bytes.fromhex(ok(*_fp_args(a, b), "--json").json()["scannable"])
    qr = segno.make(scannable, error="m", micro=False, boost_error=False)
    assert qr.mode == "byte"
    border = 4
    modules = [[not dark for dark in row] for row in qr.matrix]
    size = len(modules)
    rows = _qr_rows(drawing)
    inner = [row[border : border + size] for row in rows[border : border + size]]
    assert inner == modules
    assert all(all(row) for row in rows[:border])  # the quiet zone is light


def test_fingerprint_qr_without_segno_is_one_line(world: World, tmp_path: Path) -> None:
    fake = tmp_path / "nosegno" / "segno"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no segno here')\n")
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    a = world.alice.identity_key_pair.public_key
    r = run(*_fp_args(a, a), "--qr", env=env)
    assert r.code == 1 and "Traceback" not in r.err
    assert r.err.count("\n") == 1 and "textsecure[cli]" in r.err and r.out == ""


def test_fingerprint_compare(world: World, tmp_path: Path) -> None:
    a = world.alice.identity_key_pair.public_key
    b = world.bob.identity_key_pair.public_key
    c = ts.IdentityKeyPair.generate().public_key
    theirs = ts.Fingerprint.create(
        local_id=uuid.UUID(BOB_ACI).bytes,
        local_key=b,
        remote_id=uuid.UUID(ALICE.name).bytes,
        remote_key=a,
    )
    r = run(*_fp_args(a, b), "--compare", theirs.scannable.hex())
    assert (r.code, r.out.split(":")[0]) == (0, "match")
    scanned = _file(tmp_path, "scan", theirs.scannable)
    assert run(*_fp_args(a, b), "--compare", scanned).code == 0
    b64 = base64.b64encode(theirs.scannable).decode()
    r = run(*_fp_args(a, c), "--compare", b64)
    assert (r.code, r.out.split(":")[0]) == (1, "no match")
    v1 = ts.Fingerprint.create(
        local_id=b"+14155550101", local_key=b, remote_id=b"+14155550100", remote_key=a, version=1
    )
    r = run(*_fp_args(a, b), "--compare", v1.scannable.hex())
    assert (r.code, r.out.split(":")[0]) == (2, "version mismatch")
    assert "version 1" in r.out
    doc = json.loads(run(*_fp_args(a, b), "--compare", v1.scannable.hex(), "--json").out)
    assert doc["result"] == "version mismatch"
    assert "not a scannable" in fails(*_fp_args(a, b), "--compare", "7878")
    assert "--local-key" in fails(*_fp_args(a, b)[:3], "--local-key", "05ff", *_fp_args(a, b)[5:])


# --- account / prekeys ------------------------------------------------------------------


def test_account_commands(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    created = ok("account", "create", "--db", db, "--account", "bot", "--registration-id", "77")
    assert "created account 'bot'" in created.out
    assert "already exists" in fails("account", "create", "--db", db, "--account", "bot")
    ok("account", "create", "--db", db)
    shown = ok("account", "show", "--db", db, "--account", "bot", "--json").json()
    with ts.SQLiteStore(db, account="bot") as store:
        identity = bytes(store.identity_key_pair.public_key)
    assert shown["identity_key"] == identity.hex() and shown["registration_id"] == 77
    assert base64.b64decode(shown["identity_key_base64"]) == identity
    assert shown["sessions"] == 0
    assert (
        f"identity_key: {identity.hex()}"
        in ok("account", "show", "--db", db, "--account", "bot").out
    )
    assert ok("account", "list", "--db", db).out.split() == ["bot", "default"]
    assert ok("account", "list", "--db", db, "--json").json() == ["bot", "default"]
    assert "no account 'nobody'" in fails("account", "show", "--db", db, "--account", "nobody")
    assert "no database" in fails("account", "show", "--db", tmp_path / "none.db")
    assert not (tmp_path / "none.db").exists()
    assert "no database" in fails("account", "list", "--db", tmp_path / "none.db")


def test_account_with_an_encryption_key(tmp_path: Path) -> None:
    db, key = tmp_path / "sealed.db", tmp_path / "key"
    key.write_text(os.urandom(32).hex())
    ok("account", "create", "--db", db, "--key-file", key)
    assert ok("account", "show", "--db", db, "--key-file", key).code == 0
    assert "InvalidRecord" in fails("account", "show", "--db", db)
    (tmp_path / "short").write_bytes(b"\x01" * 5)
    assert "32 bytes" in fails("account", "show", "--db", db, "--key-file", tmp_path / "short")


def _status(db: Path, account: str = "bot") -> dict[str, Any]:
    doc: dict[str, Any] = ok("prekeys", "status", "--db", db, "--account", account, "--json").json()
    return doc


def test_prekey_lifecycle(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    pending = Path(str(db) + ".pending-uploads.json")
    ok("account", "create", "--db", db, "--account", "bot")
    s = _status(db)
    assert (s["prekeys"], s["refill_due"], s["rotation_due"]) == (0, True, True)
    assert s["signed_prekey_age_ms"] is None
    text = ok("prekeys", "status", "--db", db, "--account", "bot").out
    assert "prekeys generate" in text and "prekeys rotate" in text and "--account bot" in text

    gen = ok("prekeys", "generate", "--db", db, "--account", "bot", "--count", "7", "--json").json()
    assert len(gen["prekeys"]) == 7 and len(gen["kyber_prekeys"]) == 7
    assert all(len(base64.b64decode(k["public_key"])) == 33 for k in gen["prekeys"])
    assert all("signature" in k for k in gen["kyber_prekeys"])
    ok("prekeys", "generate", "--db", db, "--account", "bot", "--count", "3", "--no-kyber")
    rotated = ok("prekeys", "rotate", "--db", db, "--account", "bot").out
    assert "signed prekey" in rotated and "unconfirmed" in rotated
    assert "nothing due" in ok("prekeys", "rotate", "--db", db, "--account", "bot").out
    s = _status(db)
    assert (s["unconfirmed_prekeys"], s["unconfirmed_kyber_prekeys"]) == (10, 7)
    assert s["unconfirmed_signed_prekeys"] == 1 and s["pending_uploads"] == 3
    # Public parts only in the pending file.
    assert pending.exists() and "private" not in pending.read_text()

    confirmed = ok("prekeys", "confirm", "--db", db, "--account", "bot").out
    assert confirmed.count("confirmed") == 3
    s = _status(db)
    assert (s["prekeys"], s["kyber_prekeys"], s["unconfirmed_prekeys"]) == (10, 7, 0)
    assert s["signed_prekey_age_ms"] is not None and s["rotation_due"] is False
    assert s["pending_uploads"] == 0 and not pending.exists()
    assert "nothing to confirm" in ok("prekeys", "confirm", "--db", db, "--account", "bot").out
    assert ok("prekeys", "rotate", "--db", db, "--account", "bot", "--force").code == 0
    assert _status(db)["unconfirmed_signed_prekeys"] == 1

    # One upload confirmed from its file (what `generate --json` printed).
    upload = tmp_path / "upload.json"
    upload.write_text(
        ok("prekeys", "generate", "--db", db, "--account", "bot", "--count", "2", "--json").out
    )
    ok("prekeys", "confirm", "--db", db, "--account", "bot", "--upload", upload)
    s = _status(db)
    assert (s["prekeys"], s["pending_uploads"]) == (12, 1)  # the forced rotation still pending
    assert "--count" in fails("prekeys", "generate", "--db", db, "--account", "bot", "--count", "0")


def test_exported_bundle_starts_a_real_session(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    ok("account", "create", "--db", db, "--account", "bot")
    ok("prekeys", "generate", "--db", db, "--account", "bot", "--count", "2")
    ok("prekeys", "rotate", "--db", db, "--account", "bot")
    ok("prekeys", "confirm", "--db", db, "--account", "bot")
    exported = ok("prekeys", "bundle", "--db", db, "--account", "bot", "--device", "3", "--json")
    doc = exported.json()
    assert doc["device_id"] == 3 and all(
        k in doc for k in ("prekey_id", "kyber_prekey_id", "signed_prekey_signature")
    )
    path = tmp_path / "bundle.json"
    path.write_text(exported.out)
    read_back = ok("inspect", path, "--json").json()
    assert read_back["type"] == "bundle" and read_back["detected"] is True
    assert read_back["fields"]["signed_prekey_signature_valid"] is True
    assert (
        "PreKeyBundle of account 'bot', device 3"
        in ok("prekeys", "bundle", "--db", db, "--account", "bot", "--device", "3").out
    )
    x3dh = ok("prekeys", "bundle", "--db", db, "--account", "bot", "--no-kyber", "--json").json()
    assert "kyber_prekey_id" not in x3dh

    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 5)
    to_bot = ts.SessionCipher(alice, ts.Address("bot", 3))
    to_bot.process_bundle(_inspect.bundle_from_json(exported.out.encode()))
    message = to_bot.encrypt(b"hello bot")
    with ts.SQLiteStore(db, account="bot") as store:
        assert ts.SessionCipher(store, ALICE).decrypt(message) == b"hello bot"


# --- bench ------------------------------------------------------------------------------


def test_bench_quick_table_and_json() -> None:
    r = ok("bench", "--quick", "--only", "handshake-v3,encrypt-v4", "--only", "group-decrypt")
    lines = r.out.splitlines()
    assert lines[0].split() == ["workload", "ops", "ops/s", "µs/op"]
    assert [line.split()[0] for line in lines[1:4]] == [
        "handshake-v3",
        "encrypt-v4",
        "group-decrypt",
    ]
    assert all(int(line.split()[1]) > 0 for line in lines[1:4])
    assert r.err == ""  # no progress bar when stderr is not a terminal
    doc = ok("bench", "--quick", "--only", "ping-pong-v3", "--json").json()
    assert doc[0]["workload"] == "ping-pong-v3" and doc[0]["ops"] > 0
    assert doc[0]["us_per_op"] > 0
    assert "sqlite-ping-pong-v4" in ok("bench", "--list").out
    assert "unknown workload" in fails("bench", "--only", "nope")


def test_bench_every_workload_runs() -> None:
    doc = ok("bench", "--quick", "--sqlite", "--json").json()
    assert {d["workload"] for d in doc} == set(cli._bench.WORKLOADS)
    assert all(d["ops"] > 0 for d in doc)


def test_bench_progress_bar_on_a_terminal() -> None:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [*PYTHON_M, "bench", "--quick", "--only", "encrypt-v3,decrypt-v3"],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
            check=False,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    drawn = b"".join(chunks).decode()
    assert "\r" in drawn and "%" in drawn and "encrypt-v3" in drawn
    assert b"encrypt-v3" in proc.stdout


# --- the command itself -----------------------------------------------------------------


def entry_points() -> Iterator[list[str]]:
    yield PYTHON_M
    if SCRIPT.exists():
        yield [str(SCRIPT)]


@pytest.mark.parametrize("command", list(entry_points()), ids=lambda c: Path(c[-1]).name)
def test_entry_points(command: list[str], world: World) -> None:
    version = subprocess.run([*command, "version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == ts.__version__
    help_text = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True)
    for sub in ("inspect", "fingerprint", "account", "prekeys", "bench", "demo", "version"):
        assert sub in help_text.stdout
    _, data = world.objects["signal"]
    inspected = subprocess.run(
        [*command, "inspect", data.hex(), "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(inspected.stdout)["type"] == "signal"
    bad = subprocess.run([*command, "inspect", "-"], input="", capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("textsecure: error:")


def test_internal_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(args: object) -> int:
        raise RuntimeError("something broke\nacross lines")

    monkeypatch.setattr(cli, "_version", boom)
    monkeypatch.delenv("TEXTSECURE_DEBUG", raising=False)
    assert cli.main(["version"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: something broke across" in err
    monkeypatch.setenv("TEXTSECURE_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["version"])
