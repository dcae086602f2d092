#!/usr/bin/env python3
"""Seeds the fuzz corpora from the interop vectors (``../shared/vectors``, JSON, base64).

Writes ``fuzz/src/targets/vector_bobs.rs`` (the receiving Bobs of the 1:1 files, so their
messages decrypt inside ``session_decrypt``) and one file per seed into ``fuzz/corpus/<target>/``
named by the SHA-1 of its content. Run from the repository root:

    python3 fuzz/tools/seeds_from_vectors.py [path/to/vectors]

Only files whose messages need no SPQR are used for messages; every file gives keys/records.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VECTORS = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "vectors"
CORPUS = ROOT / "fuzz" / "corpus"
ONE_TO_ONE = [
    "x3dh_v3.json",
    "x3dh_v3_libsignal072.json",
    "axolotl_v3.json",
    "pqxdh_nospqr.json",
]
ALL_1TO1 = [*ONE_TO_ONE, "pqxdh_in_order.json", "pqxdh_out_of_order.json", "pqxdh_ping_pong.json"]


def b64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


def seed(target: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def field(data: bytes) -> bytes:
    return struct.pack("<H", len(data)) + data


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_bytes(tag: int, data: bytes) -> bytes:
    return varint(tag << 3 | 2) + varint(len(data)) + data


def pb_inner_message(body: bytes) -> bytes | None:
    """The inner SignalMessage (field 4) of a PreKeySignalMessage body (after the version)."""
    i = 1
    while i < len(body):
        key, i = read_varint(body, i)
        tag, wt = key >> 3, key & 7
        if wt == 0:
            _, i = read_varint(body, i)
        elif wt == 2:
            n, i = read_varint(body, i)
            if tag == 4:
                return body[i : i + n]
            i += n
        else:
            return None
    return None


def read_varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def hexs(b: bytes) -> str:
    return '"' + b.hex() + '"'


def main() -> None:
    bobs = []
    for fixture, name in enumerate(ONE_TO_ONE, start=1):
        d = json.loads((VECTORS / name).read_text())
        bobs.append(vector_bob(name, d["bob"]))
        # session_decrypt: the messages Bob receives before his first reply, in file order.
        seq = bytearray([fixture])
        for step in d["steps"]:
            if step["op"] != "receive":
                break
            body = b64(step["body"])
            assert body is not None
            seq += bytes([step["type"]]) + field(body)
            seed("session_decrypt", bytes([fixture, step["type"]]) + field(body))
        seed("session_decrypt", bytes(seq))

    for name in ALL_1TO1:
        d = json.loads((VECTORS / name).read_text())
        bob = d["bob"]
        for step in d["steps"]:
            body = b64(step.get("body") or step.get("reference_body"))
            typ = step.get("type") or step.get("reference_type")
            if body is None:
                continue
            if typ == 3:
                seed("prekey_signal_message", body)
                inner = pb_inner_message(body)
                if inner:
                    seed("signal_message", inner)
                ct = step.get("header", {}).get("kyber_ciphertext")
                if ct:
                    seed("kem_decapsulate", b64(ct) or b"")
            elif typ == 2:
                seed("signal_message", body)
            rec = b64(step.get("bob_session_record_after"))
            if rec:
                seed("session_record", rec)
        for key, target in [
            ("prekey_record", "prekey_record"),
            ("signed_prekey_record", "signed_prekey_record"),
            ("kyber_prekey_record", "kyber_prekey_record"),
            ("kyber_prekey_public", "kem_public_key"),
            ("kyber_secret_key", "kem_secret_key"),
            ("identity_key", "curve_public_key"),
            ("prekey_public", "curve_public_key"),
            ("identity_private", "curve_private_key"),
        ]:
            v = b64(bob.get(key))
            if v:
                seed(target, v)
        priv, pub = b64(bob["identity_private"]), b64(bob["identity_key"])
        assert priv is not None and pub is not None
        seed("identity_key_pair", pb_bytes(1, pub) + pb_bytes(2, priv))
        bundle = d["bundle"]
        seed("prekey_bundle", bundle_input(bundle))

    sealed = json.loads((VECTORS / "sealed_sender_pqxdh.json").read_text())
    sealed_bob = {
        "bob": vector_bob("sealed_sender_pqxdh.json", sealed["bob"]),
        "trust_root": b64(sealed["trust_root_public"]),
        "time": sealed["validation_timestamp"],
    }
    write_vector_bobs(bobs, sealed_bob)
    group_seeds()
    sealed_seeds(sealed)
    spqr_seeds()


def group_seeds() -> None:
    """Sender keys: group_decrypt (input format: flags, [field skdm], (op, field message)*),
    sender_key_message, sender_key_distribution."""
    for name, legacy in [
        ("group_in_order.json", False),
        ("group_out_of_order.json", False),
        ("axolotl_group_legacy.json", True),
    ]:
        d = json.loads((VECTORS / name).read_text())
        flags = 2 | (1 if legacy else 0)
        skdm = b64(d["skdm"]) or b""
        seed("sender_key_distribution", bytes([flags & 1]) + skdm)
        msgs = [b64(st["body"]) or b"" for st in d["steps"] if st.get("body")]
        for m in msgs[:3]:
            seed("sender_key_message", bytes([flags & 1]) + struct.pack("<I", 0) + m)
        head = bytes([flags]) + field(skdm)
        # The whole file in delivery order (duplicates included), then short pieces.
        seed("group_decrypt", head + b"".join(b"\x00" + field(m) for m in msgs))
        seed("group_decrypt", head + b"\x00" + field(msgs[0]) + b"\x01" + b"\x00" + field(msgs[0]))
        for m in msgs[:4]:
            seed("group_decrypt", head + b"\x00" + field(m))


def sealed_seeds(d: dict) -> None:
    """Sealed sender: the vector's envelopes (recipient 1) in order, one by one, and their
    certificates."""
    bodies = [b64(st["body"]) or b"" for st in d["steps"] if st.get("body")]
    seed("sealed_sender_envelope", b"\x01" + b"".join(field(b) for b in bodies))
    for b in bodies[:2]:
        seed("sealed_sender_envelope", b"\x01" + field(b))
        seed("sealed_sender_envelope", b"\x00" + field(b))
    t = struct.pack("<Q", d["validation_timestamp"])
    certs = {b64(st["sender_certificate"]) for st in d["steps"] if st.get("sender_certificate")}
    for c in sorted(certs):
        seed("sealed_sender_certificate", b"\x01" + t + c)
        server = pb_field(c, 1)
        server = pb_field(server, 6) if server else None  # SenderCertificate.Certificate.signer
        if server:
            seed("sealed_sender_certificate", b"\x00" + t + server)


def pb_field(b: bytes | None, tag: int) -> bytes | None:
    """The first length-delimited field `tag` of a protobuf message."""
    i = 0
    while b is not None and i < len(b):
        key, i = read_varint(b, i)
        t, wt = key >> 3, key & 7
        if wt == 0:
            _, i = read_varint(b, i)
        elif wt == 2:
            n, i = read_varint(b, i)
            if t == tag:
                return b[i : i + n]
            i += n
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            return None
    return None


def spqr_seeds() -> None:
    """SPQR: spqr_message (field state, (field message)*) from libsignal's trace: each receive
    with the receiver's state before it (and the following receives of that party), and every
    distinct state for spqr_state."""
    d = json.loads((VECTORS / "spqr_libsignal_trace.json").read_text())
    for sc in d["scenarios"]:
        last: dict[str, bytes] = {}
        steps = sc["steps"]
        picked = 0
        for k, st in enumerate(steps):
            party = st["party"]
            if st["op"] == "recv" and party in last and picked < 6:
                msgs = [
                    b64(s2["pq_ratchet"]) or b""
                    for s2 in steps[k : k + 40]
                    if s2["op"] == "recv" and s2["party"] == party
                ][:4]
                seed("spqr_message", field(last[party]) + b"".join(field(m) for m in msgs))
                picked += 1
            state = b64(st["spqr_state_after"]) or b""
            if state != last.get(party) and k % 23 == 0:
                seed("spqr_state", state)
            last[party] = state


def vector_bob(name: str, bob: dict) -> tuple:
    """A receiving Bob's keys, as embedded in ``vector_bobs.rs``."""
    kyber = None
    if bob.get("kyber_secret_key"):
        kyber = (
            bob["kyber_prekey_id"],
            b64(bob["kyber_secret_key"]),
            b64(bob["kyber_prekey_public"]),
            b64(bob["kyber_prekey_signature"]),
        )
    return (
        name,
        bob["registration_id"],
        b64(bob["identity_private"]),
        (bob["prekey_id"], b64(bob["prekey_private"])),
        (
            bob["signed_prekey_id"],
            b64(bob["signed_prekey_private"]),
            b64(bob["signed_prekey_signature"]),
            bob.get("signed_prekey_timestamp") or 0,
        ),
        kyber,
    )


def bundle_input(b: dict) -> bytes:
    """prekey_bundle's input format (see fuzz/src/targets/prekey_bundle.rs)."""
    out = struct.pack(
        "<IIII",
        b["registration_id"],
        b["device_id"],
        b["signed_prekey_id"],
        b.get("prekey_id") or 0,
    )
    out += struct.pack("<I", b.get("kyber_prekey_id") or 0)
    flags = (1 if b.get("prekey_public") else 0) | (2 if b.get("kyber_prekey_public") else 0)
    out += bytes([flags])
    for k in [
        "identity_key",
        "signed_prekey_public",
        "signed_prekey_signature",
        "prekey_public",
        "kyber_prekey_public",
        "kyber_prekey_signature",
    ]:
        out += field(b64(b.get(k)) or b"")
    return out


def bob_entry(bob: tuple) -> list[str]:
    name, reg, ident, (pid, ppriv), (sid, spriv, ssig, sts), kyber = bob
    lines = [f"    // {name}", "    VectorBob {"]
    lines.append(f"        registration_id: {reg},")
    lines.append(f"        identity_private: {hexs(ident)},")
    lines.append(f"        prekey: ({pid}, {hexs(ppriv)}),")
    lines.append(f"        signed: ({sid}, {hexs(spriv)}, {hexs(ssig)}, {sts}),")
    if kyber is None:
        lines.append("        kyber: None,")
    else:
        kid, ksec, kpub, ksig = kyber
        lines.append(f"        kyber: Some(({kid}, {hexs(ksec)}, {hexs(kpub)}, {hexs(ksig)})),")
    lines.append("    },")
    return lines


def write_vector_bobs(bobs: list, sealed: dict) -> None:
    lines = [
        "//! The receiving Bobs of the 1:1 interop vectors (`shared/vectors`), so that their"
        " messages",
        "//! decrypt in `session_decrypt`, and the recipient of `sealed_sender_pqxdh.json`"
        " (with its",
        "//! trust root) for `sealed_sender_envelope`. Generated by",
        "//! `fuzz/tools/seeds_from_vectors.py` and `cargo fmt`: do not edit.",
        "",
        "use textsecure_core::curve::{KeyPair, PrivateKey};",
        "use textsecure_core::kem;",
        "use textsecure_core::prekey::{",
        "    IdentityKeyPair, KyberPreKeyRecord, PreKeyRecord, SignedPreKeyRecord,",
        "};",
        "use textsecure_core::store::InMemoryStore;",
        "",
        "struct VectorBob {",
        "    registration_id: u32,",
        "    identity_private: &'static str,",
        "    prekey: (u32, &'static str),",
        "    signed: (u32, &'static str, &'static str, u64),",
        "    kyber: Option<(u32, &'static str, &'static str, &'static str)>,",
        "}",
        "",
        "const BOBS: &[VectorBob] = &[",
    ]
    for bob in bobs:
        lines += bob_entry(bob)
    lines += ["];", "", "const SEALED_BOB: &[VectorBob] = &["]
    lines += bob_entry(sealed["bob"])
    lines += [
        "];",
        "",
        "/// The trust root of `sealed_sender_pqxdh.json` (serialized public key, hex).",
        f"pub const SEALED_TRUST_ROOT: &str = {hexs(sealed['trust_root'])};",
        "/// Its validation time (ms since 1970).",
        f"pub const SEALED_VALIDATION_TIME: u64 = {sealed['time']};",
        "",
        "/// Decodes a hex string (the constants above).",
        "pub fn unhex(s: &str) -> Vec<u8> {",
        "    s.as_bytes()",
        "        .chunks(2)",
        "        .map(|p| {",
        "            let d = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;",
        "            d(p[0]) << 4 | d(p[1])",
        "        })",
        "        .collect()",
        "}",
        "",
        "/// Bob's store of every vector file, in the order of `ONE_TO_ONE` in the generator.",
        "pub fn stores() -> Vec<InMemoryStore> {",
        "    BOBS.iter().filter_map(build).collect()",
        "}",
        "",
        "/// The recipient of `sealed_sender_pqxdh.json`.",
        "pub fn sealed_store() -> Option<InMemoryStore> {",
        "    SEALED_BOB.iter().find_map(build)",
        "}",
        "",
        "fn build(b: &VectorBob) -> Option<InMemoryStore> {",
        "    let (Ok(id), Ok(otk), Ok(spk)) = (",
        "        PrivateKey::deserialize(&unhex(b.identity_private)),",
        "        PrivateKey::deserialize(&unhex(b.prekey.1)),",
        "        PrivateKey::deserialize(&unhex(b.signed.1)),",
        "    ) else {",
        "        return None;",
        "    };",
        "    let mut s = InMemoryStore::new(IdentityKeyPair::from_private(id), b.registration_id);",
        "    s.prekeys.insert(b.prekey.0, PreKeyRecord::new(b.prekey.0, otk));",
        "    s.signed_prekeys.insert(",
        "        b.signed.0,",
        "        SignedPreKeyRecord {",
        "            id: b.signed.0,",
        "            key_pair: KeyPair::from_private(spk),",
        "            signature: unhex(b.signed.2),",
        "            timestamp: b.signed.3,",
        "        },",
        "    );",
        "    if let Some((kid, sec, public, sig)) = b.kyber {",
        "        let pair = kem::SecretKey::deserialize(&unhex(sec)).and_then(|sk| {",
        "            kem::PublicKey::deserialize(&unhex(public))"
        ".and_then(|pk| kem::KeyPair::new(sk, pk))",
        "        });",
        "        if let Ok(key_pair) = pair {",
        "            let rec = KyberPreKeyRecord {",
        "                id: kid,",
        "                key_pair,",
        "                signature: unhex(sig),",
        "                timestamp: b.signed.3,",
        "            };",
        "            s.kyber_prekeys.insert(kid, (rec, false));",
        "        }",
        "    }",
        "    Some(s)",
        "}",
        "",
    ]
    (ROOT / "fuzz" / "src" / "targets" / "vector_bobs.rs").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
