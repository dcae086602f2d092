"""textsecure PQXDH (session version 4) against real libsignal-client, both directions.

The scenarios of ``test_interop_sessions.py`` over Kyber bundles, with and without a
one-time EC prekey, against libsignal-client 0.72.1 (no SPQR: textsecure talks to it with
``PqRatchet.PREFERRED``), 0.90.0 (offers SPQR) and 0.103.0 (requires SPQR v1, as textsecure
does by default): with 0.90 and 0.103 every message carries SPQR. Then prekey lifetimes: a
last-resort Kyber prekey serves several initiators, a one-time Kyber prekey serves one; and
with SPQR required, textsecure and 0.72 refuse each other cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import textsecure as ts
from peers import PeerError
from test_interop_sessions import (
    PREKEY,
    ROLES,
    SCENARIOS,
    TS_NAME,
    Conv,
    NewStore,
    PeerSide,
    Spawn,
    TsSide,
    bundle_dict,
    spawn_peers,
    stores_by_lib,
)
from textsecure import errors

pytestmark = pytest.mark.interop

PQXDH_PEERS = ("ls072", "ls090", "ls0103")


def policy(*libs: str) -> ts.PqRatchet:
    """SPQR required (the default), except with libsignal 0.72, which has no SPQR."""
    return ts.PqRatchet.PREFERRED if "ls072" in libs else ts.PqRatchet.REQUIRED


OTK = {"one_time": True, "no_one_time": False}


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    yield from spawn_peers()


def check_prekey_message(m_type: int, body: bytes, kyber_prekey_id: int | None) -> None:
    assert m_type == PREKEY and body[0] == 0x44
    msg = ts.parse_message(m_type, body)
    assert isinstance(msg, ts.PreKeySignalMessage)
    assert msg.version == 4 and msg.message.version == 4
    assert msg.kyber_prekey_id == kyber_prekey_id


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("otk", list(OTK))
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("store_kind", "lib"), stores_by_lib(PQXDH_PEERS, "ls0103"))
def test_pqxdh(
    spawn: Spawn, new_store: NewStore, lib: str, role: str, otk: str, scenario: str
) -> None:
    c = Conv(
        TsSide(new_store, pq_ratchet=policy(lib)),
        PeerSide(spawn(lib)),
        ts_initiates=role == "ts_initiates",
        version=4,
        one_time=OTK[otk],
    )
    SCENARIOS[scenario](c)
    rec = c.ts.store.session(c.ts.address(c.peer.name))
    assert rec is not None and rec.version == 4


@pytest.mark.parametrize("otk", list(OTK))
@pytest.mark.parametrize("lib", PQXDH_PEERS)
def test_pqxdh_prekeys_used_by_responder(
    spawn: Spawn, new_store: NewStore, lib: str, otk: str
) -> None:
    """textsecure as responder: the PreKey message names its Kyber (and EC) prekey, and
    both one-time prekeys are gone afterwards; the signed prekey stays."""
    c = Conv(
        TsSide(new_store, pq_ratchet=policy(lib)),
        PeerSide(spawn(lib)),
        ts_initiates=False,
        version=4,
        one_time=OTK[otk],
    )
    bundle = c.ts.new_bundle(kyber=True, one_time=c.one_time)
    assert bundle.kyber_prekey_id is not None
    assert (bundle.prekey_id is not None) == c.one_time
    c.peer.process_bundle(c.ts.name, bundle_dict(bundle))
    m = c.send(c.peer, "hello")
    check_prekey_message(m.type, m.body, bundle.kyber_prekey_id)
    parsed = ts.parse_message(m.type, m.body)
    assert isinstance(parsed, ts.PreKeySignalMessage)
    assert parsed.prekey_id == bundle.prekey_id
    assert parsed.signed_prekey_id == bundle.signed_prekey_id
    c.deliver(m)
    assert c.ts.store.load_kyber_prekey(bundle.kyber_prekey_id) is None
    if bundle.prekey_id is not None:
        assert c.ts.store.load_prekey(bundle.prekey_id) is None
    assert c.ts.store.load_signed_prekey(bundle.signed_prekey_id) is not None
    c.check_ts_session()
    c.ping_pong(3, first=c.ts)


@pytest.mark.parametrize("one_time_ec", [False, True], ids=["no_one_time", "one_time"])
@pytest.mark.parametrize(
    ("first", "second"), [("ls072", "ls090"), ("ls090", "ls072"), ("ls0103", "ls090")]
)
def test_last_resort_kyber_prekey_serves_two_initiators(
    spawn: Spawn, new_store: NewStore, first: str, second: str, one_time_ec: bool
) -> None:
    """Two libsignal initiators use one textsecure bundle whose Kyber prekey is last-resort.

    Without a one-time EC prekey both sessions work and the Kyber prekey stays. With one,
    the first initiator uses it up and the second's PreKey message is refused
    (InvalidPreKeyId, nothing stored).
    """
    me = TsSide(new_store, pq_ratchet=policy(first, second))
    bundle = me.new_bundle(kyber=True, one_time=one_time_ec, last_resort=True)
    kid = bundle.kyber_prekey_id
    assert kid is not None
    for i, lib in enumerate((first, second)):
        c = Conv(me, PeerSide(spawn(lib), name=f"initiator{i}"), ts_initiates=False, version=4)
        c.peer.process_bundle(me.name, bundle_dict(bundle))
        m = c.send(c.peer, f"hello from {lib}")
        check_prekey_message(m.type, m.body, kid)
        if i == 1 and one_time_ec:
            before = me.snapshot(c.peer.name)
            assert before == (None, None)
            with pytest.raises(errors.InvalidPreKeyId):
                c.deliver(m)
            assert me.snapshot(c.peer.name) == before
            assert me.store.load_kyber_prekey(kid) is not None
            continue
        c.deliver(m)
        c.check_ts_session()
        c.ping_pong(3, first=c.ts)
        assert me.store.load_kyber_prekey(kid) is not None  # last resort: kept
        if bundle.prekey_id is not None:
            assert me.store.load_prekey(bundle.prekey_id) is None
    assert {a.name for a in me.store.session_addresses()} == (
        {"initiator0"} if one_time_ec else {"initiator0", "initiator1"}
    )


@pytest.mark.parametrize("lib", PQXDH_PEERS)
def test_one_time_kyber_prekey_serves_one_initiator(
    spawn: Spawn, new_store: NewStore, lib: str
) -> None:
    """A one-time Kyber prekey is consumed: a second initiator with the same bundle is refused."""
    me = TsSide(new_store, pq_ratchet=policy(lib))
    bundle = me.new_bundle(kyber=True, one_time=False, last_resort=False)
    kid = bundle.kyber_prekey_id
    assert kid is not None
    peer0 = PeerSide(spawn(lib), name="initiator0")
    peer1 = PeerSide(spawn(lib), name="initiator1")
    for p in (peer0, peer1):
        p.process_bundle(me.name, bundle_dict(bundle))
    c0 = Conv(me, peer0, ts_initiates=False, version=4)
    c0.deliver(c0.send(peer0, "first"))
    assert me.store.load_kyber_prekey(kid) is None
    c0.ping_pong(2, first=me)
    c1 = Conv(me, peer1, ts_initiates=False, version=4)
    m = c1.send(peer1, "second")
    check_prekey_message(m.type, m.body, kid)
    with pytest.raises(errors.InvalidPreKeyId):
        c1.deliver(m)
    assert me.snapshot(peer1.name) == (None, None)
    c0.ping_pong(1)  # the first session is untouched


@pytest.mark.parametrize("lib", PQXDH_PEERS)
def test_peer_kyber_prekeys_as_initiator(spawn: Spawn, new_store: NewStore, lib: str) -> None:
    """The other way round: two textsecure stores start sessions from one libsignal bundle.
    With a last-resort Kyber prekey both work; with a one-time one the second is refused."""
    peer = PeerSide(spawn(lib))
    for last_resort in (True, False):
        bundle = peer.bundle(kyber=True, one_time=False, last_resort=last_resort)
        results = []
        for i in range(2):
            me = TsSide(
                new_store,
                f"ts{i}-{'last_resort' if last_resort else 'one_time'}",
                pq_ratchet=policy(lib),
            )
            c = Conv(me, peer, ts_initiates=True, version=4, one_time=False)
            me.process_bundle(peer.name, bundle)
            m = c.send(me, "hello")
            check_prekey_message(m.type, m.body, bundle["kyber_prekey_id"])
            try:
                c.deliver(m)
            except PeerError as e:
                assert e.kind == "invalid_key_id", e
                results.append(False)
                continue
            results.append(True)
            c.check_ts_session()
            c.ping_pong(2, first=peer)
        assert results == ([True, True] if last_resort else [True, False])


@pytest.mark.parametrize("role", ROLES)
def test_spqr_required_and_libsignal_072_refuse_each_other(
    spawn: Spawn, new_store: NewStore, role: str
) -> None:
    """With SPQR required (textsecure's default, like libsignal >= 0.92), a new session with
    libsignal 0.72 (no SPQR) fails cleanly on the first message in both directions: 0.72
    cannot derive SPQR-salted keys, and textsecure refuses a v4 peer without SPQR. Nothing is
    kept on either side."""
    c = Conv(
        TsSide(new_store), PeerSide(spawn("ls072")), ts_initiates=role == "ts_initiates", version=4
    )
    if c.ts_initiates:
        c.ts.process_bundle(c.peer.name, c.bundle_of(c.peer))
        m = c.send(c.ts, "hello")
        assert m.type == PREKEY
        first = ts.parse_message(m.type, m.body)
        assert isinstance(first, ts.PreKeySignalMessage) and first.message.pq_ratchet
        with pytest.raises(PeerError) as e:
            c.deliver(m)
        assert e.value.kind == "invalid_message", e.value
        assert not c.peer.peer.has_session(TS_NAME, 1)
    else:
        bundle = c.ts.new_bundle(kyber=True, one_time=True)
        c.peer.process_bundle(c.ts.name, bundle_dict(bundle))
        m = c.send(c.peer, "hello")
        check_prekey_message(m.type, m.body, bundle.kyber_prekey_id)
        before = c.ts.snapshot(c.peer.name)
        with pytest.raises(errors.InvalidMessage):
            c.deliver(m)
        assert c.ts.snapshot(c.peer.name) == before == (None, None)
        assert bundle.prekey_id is not None and bundle.kyber_prekey_id is not None
        assert c.ts.store.load_prekey(bundle.prekey_id) is not None
        assert c.ts.store.load_kyber_prekey(bundle.kyber_prekey_id) is not None


@pytest.mark.parametrize("role", ROLES)
def test_every_message_carries_spqr_with_libsignal_0103(
    spawn: Spawn, new_store: NewStore, role: str
) -> None:
    """With libsignal 0.103 both sides speak SPQR v1 from the first message on (field 5 in
    every SignalMessage), across many epochs of ping-pong."""
    c = Conv(
        TsSide(new_store), PeerSide(spawn("ls0103")), ts_initiates=role == "ts_initiates", version=4
    )
    c.start()
    for i in range(60):
        for sender in (c.ts, c.peer):
            m = c.send(sender, f"turn {i}")
            parsed = ts.parse_message(m.type, m.body)
            inner = parsed.message if isinstance(parsed, ts.PreKeySignalMessage) else parsed
            assert isinstance(inner, ts.SignalMessage) and inner.pq_ratchet, (i, sender.name)
            c.deliver(m)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("lib", ["ls090", "ls0103"])
def test_pq_only_libsignal_refuses_x3dh_from_textsecure(
    spawn: Spawn, new_store: NewStore, lib: str, role: str
) -> None:
    """0.90 and 0.103 speak no X3DH: they refuse textsecure's v3 bundle and v3 PreKey message."""
    c = Conv(
        TsSide(new_store), PeerSide(spawn(lib)), ts_initiates=role == "ts_initiates", version=3
    )
    if c.ts_initiates:
        bundle = c.peer.bundle(kyber=False, one_time=True)  # an X3DH-shaped bundle
        c.ts.process_bundle(c.peer.name, bundle)
        m = c.send(c.ts, "v3")
        assert (m.type, m.body[0]) == (PREKEY, 0x33)
        with pytest.raises(PeerError) as e:
            c.deliver(m)
    else:
        with pytest.raises(PeerError) as e:
            c.peer.process_bundle(c.ts.name, c.ts.bundle(kyber=False, one_time=True))
    assert e.value.kind == "invalid_version", e.value
    assert not c.peer.peer.has_session(TS_NAME, 1)
