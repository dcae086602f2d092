"""The rule of docs/API.md ("Checks"): ``verify`` / ``matches`` return a bool and raise only
when the question cannot be asked; ``validate`` returns None or raises. One test per check
method the package has, and a walk that finds no other."""

from __future__ import annotations

import inspect

import pytest
import textsecure as ts
from textsecure import errors, hazmat

#: every public check method (name starting with verify / matches / validate) in the API
CHECKS = {
    "PublicKey.verify",
    "IdentityKey.verify",  # inherited
    "Fingerprint.matches",
    "ServerCertificate.validate",
    "SenderCertificate.validate",
}


def test_these_are_all_the_checks() -> None:
    found = set()
    for name in ts.__all__:
        obj = getattr(ts, name)
        if inspect.isclass(obj):
            for attr in dir(obj):
                if attr.startswith(("verify", "matches", "validate")):
                    found.add(f"{name}.{attr}")
    assert found == CHECKS
    assert [n for n in dir(hazmat) if n.endswith(("verify", "matches", "validate"))] == [
        "xeddsa_verify"
    ]


def test_verify_returns_false_and_never_raises_on_the_signature() -> None:
    key = ts.PrivateKey.generate()
    signature = key.sign(b"message")
    public = key.public_key
    assert public.verify(b"message", signature) is True
    assert public.verify(b"other", signature) is False
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    for bad in (flipped, signature[:-1], signature + b"\0", b"", bytes(64), b"\xff" * 64):
        assert public.verify(b"message", bad) is False
    with pytest.raises(TypeError):
        public.verify(b"message", 5)  # type: ignore[arg-type]
    identity = ts.IdentityKeyPair.generate()
    signed = identity.private_key.sign(b"m")
    assert identity.public_key.verify(b"m", signed) is True
    assert identity.public_key.verify(b"m", signed[:10]) is False


def test_hazmat_verify_raises_only_for_an_undecodable_key() -> None:
    key = ts.PrivateKey.generate()
    signature = key.sign(b"m")
    assert hazmat.xeddsa_verify(bytes(key.public_key), b"m", signature) is True
    assert hazmat.xeddsa_verify(bytes(key.public_key), b"m", signature[:-1]) is False
    with pytest.raises(errors.InvalidKey):
        hazmat.xeddsa_verify(b"\x05\x00", b"m", signature)


def test_matches_returns_false_and_raises_only_when_it_cannot_compare() -> None:
    a, b, c = (ts.IdentityKeyPair.generate().public_key for _ in range(3))
    mine = ts.Fingerprint.create(local_id=b"a", local_key=a, remote_id=b"b", remote_key=b)
    theirs = ts.Fingerprint.create(local_id=b"b", local_key=b, remote_id=b"a", remote_key=a)
    other = ts.Fingerprint.create(local_id=b"c", local_key=c, remote_id=b"a", remote_key=a)
    assert mine.matches(theirs.scannable) is True
    assert mine.matches(other.scannable) is False
    assert mine.matches(mine.scannable) is False  # our own, not theirs
    v1 = ts.Fingerprint.create(local_id=b"b", local_key=b, remote_id=b"a", remote_key=a, version=1)
    with pytest.raises(errors.FingerprintVersionMismatch) as e:
        mine.matches(v1.scannable)
    assert (e.value.theirs, e.value.ours) == (1, 2)
    with pytest.raises(errors.InvalidMessage):
        mine.matches(b"\xff\xff not protobuf")


def test_validate_returns_none_or_raises() -> None:
    root = ts.PrivateKey.generate()
    server_key = ts.PrivateKey.generate()
    server = ts.ServerCertificate.create(1, server_key.public_key, root)
    returned: list[object] = []
    returned.append(server.validate(root.public_key))  # type: ignore[func-returns-value]
    with pytest.raises(errors.InvalidCertificate):
        server.validate(ts.PrivateKey.generate().public_key)
    sender = ts.SenderCertificate.create(
        sender_uuid="9d0652a3-dcc3-4d11-975f-74d61598733f",
        sender_device_id=1,
        identity_key=ts.IdentityKeyPair.generate().public_key,
        expiration=2_000,
        server_certificate=server,
        server_key=server_key,
    )
    returned.append(sender.validate(root.public_key, 1_000))  # type: ignore[func-returns-value]
    assert returned == [None, None]
    with pytest.raises(errors.InvalidCertificate):
        sender.validate(root.public_key, 3_000)  # expired
    with pytest.raises(errors.InvalidCertificate):
        sender.validate(ts.PrivateKey.generate().public_key, 1_000)
