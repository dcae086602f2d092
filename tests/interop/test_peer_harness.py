"""The interop harness itself, proven with real libraries talking to each other.

No textsecure code is involved here: these tests pin down what the reference peers
do, so that textsecure's interop tests can rely on the harness (and so that a
change of behaviour in a pinned library shows up here first).

Peer names: ls072 / ls090 / ls0103 (@signalapp/libsignal-client 0.72.1 / 0.90.0 /
0.103.0), node (libsignal-node 6.0.0), axolotl (python-axolotl 0.2.3, in-process).
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from peers import (
    AxolotlPeer,
    NodePeer,
    Peer,
    PeerError,
    PeerProcessError,
    available_node_libs,
    require_axolotl,
    require_node_lib,
)

pytestmark = pytest.mark.interop

Spawn = Callable[[str], Peer]

ALICE, BOB, CAROL = "alice", "bob", "carol"
WHISPER, PREKEY = 2, 3
V3_LIBS = ("ls072", "node", "axolotl")  # speak X3DH (session version 3)
PQ_LIBS = ("ls072", "ls090", "ls0103")  # speak PQXDH (session version 4)


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start peers on demand (skipping if their library is absent); close them afterwards."""
    started: list[Peer] = []

    def make(lib: str) -> Peer:
        peer: Peer
        if lib == "axolotl":
            require_axolotl()
            peer = AxolotlPeer()
        else:
            require_node_lib(lib)
            peer = NodePeer(lib)
        started.append(peer)
        return peer

    yield make
    for p in started:
        p.close()


def start_session(
    alice: Peer,
    bob: Peer,
    *,
    kyber: bool,
    one_time: bool = True,
    plaintext: bytes = b"hello bob",
) -> tuple[int, bytes]:
    """alice and bob get identities; alice processes bob's bundle and encrypts once."""
    alice.create(ALICE, 1)
    bob.create(BOB, 1)
    bundle = bob.bundle(
        signed_prekey_id=1,
        prekey_id=11,
        kyber_prekey_id=21 if kyber else None,
        one_time=one_time,
        kyber=kyber,
    )
    alice.process_bundle(BOB, 1, bundle)
    return alice.encrypt(BOB, 1, plaintext)


def converse(alice: Peer, bob: Peer, first: tuple[int, bytes]) -> None:
    """bob reads alice's first message, then a few ratchet turns and an out-of-order pair."""
    t, body = first
    assert t == PREKEY
    assert bob.decrypt(ALICE, 1, t, body) == b"hello bob"
    assert bob.has_session(ALICE, 1)
    assert alice.identity(BOB, 1) is not None
    assert bob.identity(ALICE, 1) is not None

    for i in range(3):
        t, body = bob.encrypt(ALICE, 1, b"to alice %d" % i)
        assert t == WHISPER
        assert alice.decrypt(BOB, 1, t, body) == b"to alice %d" % i
        t, body = alice.encrypt(BOB, 1, b"to bob %d" % i)
        assert t == WHISPER  # acknowledged: no more PreKey messages
        assert bob.decrypt(ALICE, 1, t, body) == b"to bob %d" % i

    early = alice.encrypt(BOB, 1, b"early")
    late = alice.encrypt(BOB, 1, b"late")
    assert bob.decrypt(ALICE, 1, *late) == b"late"
    assert bob.decrypt(ALICE, 1, *early) == b"early"


# ---------------------------------------------------------------------------
# The harness itself
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("lib", ["ls072", "ls090", "ls0103", "node"])
def test_node_peer_starts_and_survives_bad_commands(lib: str) -> None:
    require_node_lib(lib)
    with NodePeer(lib) as peer:
        assert peer.version
        with pytest.raises(PeerError) as e:
            peer.call("no_such_command")
        assert e.value.kind == "unsupported"
        with pytest.raises(PeerError) as e:
            peer.bundle(signed_prekey_id=1)  # before create
        assert e.value.kind == "other"
        with pytest.raises(PeerError) as e:
            peer.call("create", name=ALICE)  # missing device_id
        assert e.value.kind == "other"
        ik = peer.create(ALICE, 1, registration_id=4242)
        assert len(ik) == 33 and ik[0] == 0x05
        with pytest.raises(PeerError) as e:
            peer.decrypt(BOB, 1, 2, b"\x33garbage-garbage")
        assert e.value.kind == "no_session"
        with pytest.raises(PeerError) as e:
            peer.encrypt(BOB, 1, b"x")
        assert e.value.kind == "no_session"
        assert peer.identity(BOB, 1) is None
        assert not peer.has_session(BOB, 1)
        b = peer.bundle(signed_prekey_id=7, prekey_id=8)
        assert b["registration_id"] == 4242 and b["device_id"] == 1
        assert b["identity_key"] == ik
        assert b["prekey_id"] == 8 and len(b["prekey_public"]) == 33
        assert b["signed_prekey_id"] == 7 and len(b["signed_prekey_signature"]) == 64
        assert b["kyber_prekey_id"] is None and b["kyber_prekey_public"] is None
        # the same ids give the same keys back
        assert peer.bundle(signed_prekey_id=7, prekey_id=8) == b
    with pytest.raises(PeerProcessError):
        peer.create(ALICE, 1)  # closed


def test_dead_or_hung_peer_raises_process_error(monkeypatch: pytest.MonkeyPatch) -> None:
    require_node_lib("node")
    # Killed before the request: the write meets a broken pipe. waitid(WNOWAIT) returns once
    # the process is dead (its pipes closed) without reaping it, so the harness still can.
    with NodePeer("node") as peer:
        peer.create(ALICE, 1)
        os.kill(peer.pid, signal.SIGKILL)
        os.waitid(os.P_PID, peer.pid, os.WEXITED | os.WNOWAIT)
        with pytest.raises(PeerProcessError, match=r"exited \(rc=-9; cannot write"):
            peer.create(ALICE, 1)
        with pytest.raises(PeerProcessError, match="closed"):
            peer.create(ALICE, 1)
    # Killed after the request was written: its output ends. The peer is stopped first (so it
    # cannot answer) and killed once the request is in the pipe, when the harness reads.
    with NodePeer("node") as peer:
        peer.create(ALICE, 1)
        os.kill(peer.pid, signal.SIGSTOP)
        os.waitid(os.P_PID, peer.pid, os.WSTOPPED | os.WNOWAIT)
        read_reply = peer._next_message

        def kill_then_read(timeout: float) -> dict[str, Any]:
            os.kill(peer.pid, signal.SIGKILL)
            return read_reply(timeout)

        monkeypatch.setattr(peer, "_next_message", kill_then_read)
        with pytest.raises(PeerProcessError, match=r"exited \(rc=-9; its output ended"):
            peer.create(ALICE, 1)
        with pytest.raises(PeerProcessError, match="closed"):
            peer.create(ALICE, 1)
    with NodePeer("node", timeout=1.0) as peer:
        os.kill(peer.pid, signal.SIGSTOP)  # our own child: it stops answering
        with pytest.raises(PeerProcessError, match="no reply"):
            peer.create(ALICE, 1)


def test_unknown_lib_is_refused() -> None:
    with pytest.raises(ValueError):
        NodePeer("ls999")


def test_available_node_libs_are_known() -> None:
    assert set(available_node_libs()) <= {"ls072", "ls090", "ls0103", "node"}


@pytest.mark.parametrize("lib", ["ls090", "ls0103"])
def test_kyber_bundle_shape(spawn: Spawn, lib: str) -> None:
    peer = spawn(lib)
    peer.create(BOB, 3)
    b = peer.bundle(signed_prekey_id=1, one_time=False, kyber=True, kyber_prekey_id=5)
    assert b["prekey_id"] is None and b["prekey_public"] is None
    assert b["kyber_prekey_id"] == 5
    assert len(b["kyber_prekey_public"]) == 1569 and b["kyber_prekey_public"][0] == 0x08
    assert len(b["kyber_prekey_signature"]) == 64


@pytest.mark.parametrize("lib", ["node", "axolotl"])
def test_v3_only_peers_refuse_kyber(spawn: Spawn, lib: str) -> None:
    peer = spawn(lib)
    peer.create(BOB, 1)
    with pytest.raises(PeerError) as e:
        peer.bundle(signed_prekey_id=1, kyber=True)
    assert e.value.kind == "unsupported"


# ---------------------------------------------------------------------------
# X3DH (v3): libsignal-client 0.72 <-> libsignal-node <-> python-axolotl
# ---------------------------------------------------------------------------


def test_ls072_to_node_is_refused_for_0x34(spawn: Spawn) -> None:
    """0.72 writes 0x34; libsignal-node accepts only 0x33 (protocol-notes, live findings)."""
    alice, bob = spawn("ls072"), spawn("node")
    t, body = start_session(alice, bob, kyber=False)
    assert (t, body[0]) == (PREKEY, 0x34)
    with pytest.raises(PeerError) as e:
        bob.decrypt(ALICE, 1, t, body)
    assert e.value.kind == "invalid_version"
    assert "Incompatible version" in e.value.message
    assert not bob.has_session(ALICE, 1)


def test_node_to_ls072_works_one_way(spawn: Spawn) -> None:
    """libsignal-node's 0x33 messages are read by 0.72; 0.72's 0x34 replies are not."""
    alice, bob = spawn("node"), spawn("ls072")
    t, body = start_session(alice, bob, kyber=False)
    assert (t, body[0]) == (PREKEY, 0x33)
    assert bob.decrypt(ALICE, 1, t, body) == b"hello bob"
    t2, reply = bob.encrypt(ALICE, 1, b"reply")
    assert (t2, reply[0]) == (WHISPER, 0x34)
    with pytest.raises(PeerError) as e:
        alice.decrypt(BOB, 1, t2, reply)
    assert e.value.kind == "invalid_version"
    assert "Incompatible version" in e.value.message
    # alice never got an answer, so she keeps sending PreKey messages, which 0.72 reads
    t3, more = alice.encrypt(BOB, 1, b"still here")
    assert t3 == PREKEY
    assert bob.decrypt(ALICE, 1, t3, more) == b"still here"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("axolotl", "node"),
        ("node", "axolotl"),
        ("axolotl", "ls072"),
        ("ls072", "axolotl"),
        ("node", "node"),
        ("axolotl", "axolotl"),
        ("ls072", "ls072"),
    ],
)
def test_v3_conversation(spawn: Spawn, a: str, b: str) -> None:
    alice, bob = spawn(a), spawn(b)
    first = start_session(alice, bob, kyber=False)
    assert first[1][0] == (0x34 if a == "ls072" else 0x33)
    converse(alice, bob, first)


@pytest.mark.parametrize("receiver", ["ls072", "node"])
def test_v3_without_one_time_prekey(spawn: Spawn, receiver: str) -> None:
    alice, bob = spawn("axolotl"), spawn(receiver)
    t, body = start_session(alice, bob, kyber=False, one_time=False)
    assert bob.decrypt(ALICE, 1, t, body) == b"hello bob"


def test_axolotl_refuses_prekey_message_without_one_time_prekey(spawn: Spawn) -> None:
    alice, bob = spawn("node"), spawn("axolotl")
    t, body = start_session(alice, bob, kyber=False, one_time=False)
    with pytest.raises(PeerError) as e:
        bob.decrypt(ALICE, 1, t, body)
    assert e.value.kind == "invalid_key_id"
    assert "No such prekeyrecord" in e.value.message


@pytest.mark.parametrize("sender", ["node", "axolotl"])
@pytest.mark.parametrize("receiver", ["ls090", "ls0103"])
def test_pq_only_libsignal_refuses_x3dh(spawn: Spawn, sender: str, receiver: str) -> None:
    alice, bob = spawn(sender), spawn(receiver)
    alice.create(ALICE, 1)
    bob.create(BOB, 1)
    # bob can still *publish* an X3DH-shaped bundle; a v3 peer uses it...
    alice.process_bundle(BOB, 1, bob.bundle(signed_prekey_id=1, prekey_id=2))
    t, body = alice.encrypt(BOB, 1, b"v3")
    with pytest.raises(PeerError) as e:
        bob.decrypt(ALICE, 1, t, body)
    assert e.value.kind == "invalid_version"
    assert "X3DH no longer supported" in e.value.message


@pytest.mark.parametrize("lib", ["ls090", "ls0103"])
def test_pq_only_libsignal_cannot_start_x3dh(spawn: Spawn, lib: str) -> None:
    alice, bob = spawn(lib), spawn("node")
    alice.create(ALICE, 1)
    bob.create(BOB, 1)
    with pytest.raises(PeerError) as e:
        alice.process_bundle(BOB, 1, bob.bundle(signed_prekey_id=1))
    assert e.value.kind == "invalid_version"


# ---------------------------------------------------------------------------
# PQXDH (v4) between libsignal-client generations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ls090", "ls0103"),
        ("ls0103", "ls090"),
        ("ls072", "ls090"),
        ("ls090", "ls072"),
        ("ls0103", "ls0103"),
        ("ls072", "ls072"),
    ],
)
def test_pqxdh_conversation(spawn: Spawn, a: str, b: str) -> None:
    alice, bob = spawn(a), spawn(b)
    first = start_session(alice, bob, kyber=True)
    assert first[1][0] == 0x44
    converse(alice, bob, first)


@pytest.mark.parametrize(("a", "b"), [("ls072", "ls0103"), ("ls0103", "ls072")])
def test_pqxdh_072_and_0103_fail_on_first_message(spawn: Spawn, a: str, b: str) -> None:
    """0.103 requires SPQR v1, 0.72 has no SPQR: the first message already fails."""
    alice, bob = spawn(a), spawn(b)
    t, body = start_session(alice, bob, kyber=True)
    with pytest.raises(PeerError) as e:
        bob.decrypt(ALICE, 1, t, body)
    assert e.value.kind == "invalid_message"
    assert "decryption failed" in e.value.message
    assert not bob.has_session(ALICE, 1)


@pytest.mark.parametrize(("lib", "mode"), [("ls090", "preferred"), ("ls0103", "required")])
def test_pq_ratchet_option_matches_fixed_mode(spawn: Spawn, lib: str, mode: str) -> None:
    alice, bob = spawn(lib), spawn(lib)
    alice.create(ALICE, 1)
    bob.create(BOB, 1)
    bundle = bob.bundle(signed_prekey_id=1, kyber=True)
    other = "required" if mode == "preferred" else "preferred"
    with pytest.raises(PeerError) as e:
        alice.process_bundle(BOB, 1, bundle, pq_ratchet=other)
    assert e.value.kind == "unsupported"
    alice.process_bundle(BOB, 1, bundle, pq_ratchet=mode)
    t, body = alice.encrypt(BOB, 1, b"pq")
    assert bob.decrypt(ALICE, 1, t, body) == b"pq"


@pytest.mark.parametrize("lib", ["ls072", "ls090", "ls0103"])
def test_kyber_last_resort_is_kept_and_one_time_is_used_up(spawn: Spawn, lib: str) -> None:
    bob = spawn(lib)
    bob.create(BOB, 1)
    for last_resort, kyber_id in ((True, 31), (False, 32)):
        # two initiators fetch bundles sharing one Kyber prekey before either message arrives
        names = [f"alice{n}-{kyber_id}" for n in (1, 2)]
        bundles = [
            bob.bundle(
                signed_prekey_id=1,
                prekey_id=100 * n + kyber_id,
                kyber=True,
                kyber_prekey_id=kyber_id,
                last_resort=last_resort,
            )
            for n in (1, 2)
        ]
        assert bundles[0]["kyber_prekey_public"] == bundles[1]["kyber_prekey_public"]
        outcomes = []
        for name, bundle in zip(names, bundles, strict=True):
            alice = spawn(lib)
            alice.create(name, 1)
            alice.process_bundle(BOB, 1, bundle)
            t, body = alice.encrypt(BOB, 1, b"hi")
            try:
                outcomes.append(bob.decrypt(name, 1, t, body))
            except PeerError as e:
                outcomes.append(e.kind.encode())
        if last_resort:
            assert outcomes == [b"hi", b"hi"]
        else:
            assert outcomes == [b"hi", b"invalid_key_id"]


# ---------------------------------------------------------------------------
# Error kinds, identities, session records
# ---------------------------------------------------------------------------

PAIRS_BY_RECEIVER = {
    "ls072": ("ls072", False),
    "ls090": ("ls090", True),
    "ls0103": ("ls0103", True),
    "node": ("node", False),
    "axolotl": ("axolotl", False),
}


@pytest.mark.parametrize("lib", list(PAIRS_BY_RECEIVER))
def test_duplicate_messages(spawn: Spawn, lib: str) -> None:
    sender, kyber = PAIRS_BY_RECEIVER[lib]
    alice, bob = spawn(sender), spawn(lib)
    first = start_session(alice, bob, kyber=kyber)
    assert bob.decrypt(ALICE, 1, *first) == b"hello bob"
    with pytest.raises(PeerError) as e:
        bob.decrypt(ALICE, 1, *first)  # replayed PreKey message
    assert e.value.kind == "duplicate"
    t, body = bob.encrypt(ALICE, 1, b"ack")
    alice.decrypt(BOB, 1, t, body)
    msg = alice.encrypt(BOB, 1, b"once")
    assert msg[0] == WHISPER
    assert bob.decrypt(ALICE, 1, *msg) == b"once"
    with pytest.raises(PeerError) as e:
        bob.decrypt(ALICE, 1, *msg)  # replayed whisper message
    assert e.value.kind == "duplicate"
    # the session is still fine
    assert bob.decrypt(ALICE, 1, *alice.encrypt(BOB, 1, b"next")) == b"next"


@pytest.mark.parametrize("lib", list(PAIRS_BY_RECEIVER))
def test_changed_identity_needs_trust_on_receive(spawn: Spawn, lib: str) -> None:
    sender, kyber = PAIRS_BY_RECEIVER[lib]
    alice, bob = spawn(sender), spawn(lib)
    first = start_session(alice, bob, kyber=kyber)
    assert bob.decrypt(ALICE, 1, *first) == b"hello bob"
    old_key = bob.identity(ALICE, 1)

    new_key = alice.create(ALICE, 1)  # alice re-installs
    assert new_key != old_key
    alice.process_bundle(
        BOB,
        1,
        bob.bundle(
            signed_prekey_id=2, prekey_id=12, kyber_prekey_id=22 if kyber else None, kyber=kyber
        ),
    )
    msg = alice.encrypt(BOB, 1, b"new me")
    with pytest.raises(PeerError) as e:
        bob.decrypt(ALICE, 1, *msg)
    assert e.value.kind == "untrusted_identity"
    assert bob.identity(ALICE, 1) == old_key

    bob.trust(ALICE, 1, new_key)
    assert bob.identity(ALICE, 1) == new_key
    assert bob.decrypt(ALICE, 1, *msg) == b"new me"
    t, body = bob.encrypt(ALICE, 1, b"welcome back")
    assert alice.decrypt(BOB, 1, t, body) == b"welcome back"


@pytest.mark.parametrize("lib", list(PAIRS_BY_RECEIVER))
def test_changed_identity_needs_trust_on_send(spawn: Spawn, lib: str) -> None:
    other, kyber = PAIRS_BY_RECEIVER[lib]
    alice, bob = spawn(lib), spawn(other)
    first = start_session(alice, bob, kyber=kyber)
    bob.decrypt(ALICE, 1, *first)

    new_bob = bob.create(BOB, 1)
    bundle = bob.bundle(
        signed_prekey_id=5, prekey_id=15, kyber_prekey_id=25 if kyber else None, kyber=kyber
    )
    with pytest.raises(PeerError) as e:
        alice.process_bundle(BOB, 1, bundle)
    assert e.value.kind == "untrusted_identity"
    alice.trust(BOB, 1, new_bob)
    alice.process_bundle(BOB, 1, bundle)
    assert bob.decrypt(ALICE, 1, *alice.encrypt(BOB, 1, b"again")) == b"again"


@pytest.mark.parametrize("lib", list(PAIRS_BY_RECEIVER))
def test_missing_prekey_is_invalid_key_id(spawn: Spawn, lib: str) -> None:
    sender, kyber = PAIRS_BY_RECEIVER[lib]
    alice, bob = spawn(sender), spawn(lib)
    first = start_session(alice, bob, kyber=kyber)
    bob.create(BOB, 1)  # re-install: the prekeys alice used are gone
    with pytest.raises(PeerError) as e:
        bob.decrypt(ALICE, 1, *first)
    assert e.value.kind == "invalid_key_id"


@pytest.mark.parametrize("lib", list(PAIRS_BY_RECEIVER))
def test_garbage_is_invalid_message(spawn: Spawn, lib: str) -> None:
    sender, kyber = PAIRS_BY_RECEIVER[lib]
    alice, bob = spawn(sender), spawn(lib)
    t, body = start_session(alice, bob, kyber=kyber)
    bob.decrypt(ALICE, 1, t, body)
    alice.decrypt(BOB, 1, *bob.encrypt(ALICE, 1, b"ack"))
    t, body = alice.encrypt(BOB, 1, b"tamper with me")
    assert t == WHISPER  # ends with its 8-byte MAC (a PreKey message's outer fields are unMACed)
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(PeerError) as e:
        bob.decrypt(ALICE, 1, t, tampered)
    assert e.value.kind == "invalid_message"
    assert bob.decrypt(ALICE, 1, t, body) == b"tamper with me"


@pytest.mark.parametrize("lib", list(PAIRS_BY_RECEIVER))
def test_bad_signed_prekey_signature(spawn: Spawn, lib: str) -> None:
    other, kyber = PAIRS_BY_RECEIVER[lib]
    alice, bob = spawn(lib), spawn(other)
    alice.create(ALICE, 1)
    bob.create(BOB, 1)
    bundle = bob.bundle(signed_prekey_id=1, kyber=kyber)
    sig = bytearray(bundle["signed_prekey_signature"])
    sig[0] ^= 1
    bundle["signed_prekey_signature"] = bytes(sig)
    if lib == "node":
        # libsignal-node calls its verifySignature with isInit=true, which skips the check:
        # it starts a session on a forged signed prekey.
        alice.process_bundle(BOB, 1, bundle)
        assert alice.has_session(BOB, 1)
        return
    with pytest.raises(PeerError) as e:
        alice.process_bundle(BOB, 1, bundle)
    assert e.value.kind == "signature"
    assert not alice.has_session(BOB, 1)


@pytest.mark.parametrize("lib", ["ls072", "ls090", "ls0103", "axolotl"])
def test_session_record_export_and_import(spawn: Spawn, lib: str) -> None:
    _, kyber = PAIRS_BY_RECEIVER[lib]
    alice, bob = spawn(lib), spawn(lib)
    t, body = start_session(alice, bob, kyber=kyber)
    bob.decrypt(ALICE, 1, t, body)
    alice.decrypt(BOB, 1, *bob.encrypt(ALICE, 1, b"ack"))
    saved = alice.session_record(BOB, 1)
    first = alice.encrypt(BOB, 1, b"first")
    alice.import_session(BOB, 1, saved)  # roll alice's sending chain back
    again = alice.encrypt(BOB, 1, b"again")
    assert bob.decrypt(ALICE, 1, *first) == b"first"
    with pytest.raises(PeerError) as e:
        bob.decrypt(ALICE, 1, *again)  # same chain index as `first`
    assert e.value.kind == "duplicate"
    with pytest.raises(PeerError) as e:
        alice.session_record(CAROL, 1)
    assert e.value.kind == "no_session"


def test_node_session_records_are_unsupported(spawn: Spawn) -> None:
    alice, bob = spawn("node"), spawn("node")
    bob.decrypt(ALICE, 1, *start_session(alice, bob, kyber=False))
    for call in (lambda: alice.session_record(BOB, 1), lambda: alice.import_session(BOB, 1, b"")):
        with pytest.raises(PeerError) as e:
            call()
        assert e.value.kind == "unsupported"


# ---------------------------------------------------------------------------
# Stretch: sender keys, fingerprints, legacy (python-axolotl) sender keys
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [("ls072", "ls0103"), ("ls0103", "ls072"), ("ls090", "ls0103"), ("ls0103", "ls090")],
)
def test_sender_keys(spawn: Spawn, a: str, b: str) -> None:
    sender, receiver = spawn(a), spawn(b)
    assert isinstance(sender, NodePeer) and isinstance(receiver, NodePeer)
    sender.create(ALICE, 1)
    receiver.create(BOB, 1)
    dist = uuid.uuid4()
    skdm = sender.group_create_distribution(dist)
    assert skdm[0] == 0x33
    with pytest.raises(PeerError) as e:
        receiver.group_decrypt(ALICE, 1, sender.group_encrypt(dist, b"too early"))
    assert e.value.kind == "no_session"
    receiver.group_process_distribution(ALICE, 1, skdm)
    msgs = [sender.group_encrypt(dist, b"group %d" % i) for i in range(4)]
    assert all(m[0] == 0x33 for m in msgs)
    for i in (1, 3, 2):
        assert receiver.group_decrypt(ALICE, 1, msgs[i]) == b"group %d" % i
    with pytest.raises(PeerError) as e:
        receiver.group_decrypt(ALICE, 1, msgs[3])
    assert e.value.kind == "duplicate"
    forged = msgs[2][:-1] + bytes([msgs[2][-1] ^ 1])
    with pytest.raises(PeerError) as e:
        receiver.group_decrypt(ALICE, 1, forged)
    assert e.value.kind in ("signature", "invalid_message")


def test_sender_keys_unsupported_on_v3_peers(spawn: Spawn) -> None:
    for lib in ("node", "axolotl"):
        p = spawn(lib)
        p.create(ALICE, 1)
        with pytest.raises(PeerError) as e:
            p.group_create_distribution(uuid.uuid4())  # type: ignore[attr-defined]
        assert e.value.kind == "unsupported"


def test_fingerprints_agree_across_versions(spawn: Spawn) -> None:
    peers = [spawn(lib) for lib in ("ls072", "ls090", "ls0103")]
    assert all(isinstance(p, NodePeer) for p in peers)
    k_alice = peers[0].create(ALICE, 1)
    k_bob = peers[1].create(BOB, 1)
    a_id, b_id = uuid.uuid4().bytes, uuid.uuid4().bytes
    results = []
    for p in peers:
        assert isinstance(p, NodePeer)
        mine = p.fingerprint(
            version=2,
            iterations=5200,
            local_id=a_id,
            local_key=k_alice,
            remote_id=b_id,
            remote_key=k_bob,
        )
        theirs = p.fingerprint(
            version=2,
            iterations=5200,
            local_id=b_id,
            local_key=k_bob,
            remote_id=a_id,
            remote_key=k_alice,
        )
        assert mine.displayable == theirs.displayable
        assert len(mine.displayable) == 60 and mine.displayable.isdigit()
        assert p.fingerprint_compare(mine.scannable, theirs.scannable)
        assert not p.fingerprint_compare(mine.scannable, mine.scannable)
        results.append(mine)
    assert len(set(results)) == 1


def test_legacy_sender_keys_axolotl(spawn: Spawn) -> None:
    sender, receiver = spawn("axolotl"), spawn("axolotl")
    assert isinstance(sender, AxolotlPeer) and isinstance(receiver, AxolotlPeer)
    sender.create(ALICE, 1)
    receiver.create(BOB, 1)
    skdm = sender.legacy_group_create_distribution("group-1")
    receiver.legacy_group_process_distribution(ALICE, 1, "group-1", skdm)
    msgs = [sender.legacy_group_encrypt("group-1", b"legacy %d" % i) for i in range(3)]
    assert receiver.legacy_group_decrypt(ALICE, 1, "group-1", msgs[2]) == b"legacy 2"
    assert receiver.legacy_group_decrypt(ALICE, 1, "group-1", msgs[0]) == b"legacy 0"
    with pytest.raises(PeerError) as e:
        receiver.legacy_group_decrypt(ALICE, 1, "group-1", msgs[0])
    assert e.value.kind == "duplicate"
    with pytest.raises(PeerError) as e:
        receiver.legacy_group_decrypt(ALICE, 1, "other-group", msgs[1])
    assert e.value.kind == "no_session"


@pytest.mark.parametrize("lib", ["ls072", "ls0103"])
def test_legacy_and_current_sender_keys_do_not_mix(spawn: Spawn, lib: str) -> None:
    ax, ls = spawn("axolotl"), spawn(lib)
    assert isinstance(ax, AxolotlPeer) and isinstance(ls, NodePeer)
    ax.create(ALICE, 1)
    ls.create(BOB, 1)
    with pytest.raises(PeerError):
        ls.group_process_distribution(ALICE, 1, ax.legacy_group_create_distribution("g"))
    with pytest.raises(PeerError):
        ax.legacy_group_process_distribution(
            BOB, 1, "g", ls.group_create_distribution(uuid.uuid4())
        )
