//! libsignal v0.73's X3DH ratchet vectors (`tests/vectors/libsignal_kat.json`, key `x3dh_v3`,
//! from `rust/protocol/tests/ratchet.rs`) through the core's own session-setup functions:
//! `PrivateKey::agree`, `ratchet::derive_initial_keys` and `RootKey::create_chain`.
//!
//! * Bob (`test_ratcheting_session_as_bob`): his initial sending chain key is the X3DH chain
//!   key; expected `bob.expected_sender_chain_key`, root key `bob.derived.root_key`.
//! * Alice (`test_ratcheting_session_as_alice`): her receiving chain for Bob's ratchet key is
//!   the X3DH chain key; expected `alice.expected_receiver_chain_key`, root key
//!   `alice.derived.x3dh_root_key`. Her sending chain uses a random key in libsignal, so it has
//!   no expected value; here it is checked against an independent HKDF and against Bob's side
//!   of the same DH ratchet step.
//!
//! The vectors' Alice base pair and Bob ephemeral pair do not match (see the JSON's `_note`),
//! which is why the two sides' chain keys differ; each side uses exactly the keys the file's
//! `uses` lists.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::Value;
use textsecure_core::crypto::hkdf_sha256;
use textsecure_core::curve::{PrivateKey, PublicKey};
use textsecure_core::ratchet::{derive_initial_keys, DerivedKeys, RootKey};

fn kat() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/libsignal_kat.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["x3dh_v3"].clone()
}

fn h(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))).unwrap()
}

struct Keys<'a> {
    keys: &'a Value,
    uses: Vec<String>,
}

impl Keys<'_> {
    fn new<'a>(x: &'a Value, side: &str) -> Keys<'a> {
        let uses = x[side]["uses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_owned())
            .collect();
        Keys {
            keys: &x["keys"],
            uses,
        }
    }
    fn check_used(&self, name: &str) {
        assert!(
            self.uses.iter().any(|u| u == name),
            "{name} is not among the keys this side uses: {:?}",
            self.uses
        );
    }
    fn private(&self, name: &str) -> PrivateKey {
        self.check_used(name);
        PrivateKey::deserialize(&h(self.keys, name)).unwrap()
    }
    fn public(&self, name: &str) -> PublicKey {
        self.check_used(name);
        PublicKey::deserialize_exact(&h(self.keys, name)).unwrap()
    }
}

/// X3DH without a one-time prekey: 0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3.
fn x3dh(dhs: [&[u8; 32]; 3], pqxdh: bool) -> DerivedKeys {
    let mut secret = vec![0xffu8; 32];
    for d in dhs {
        secret.extend_from_slice(d);
    }
    derive_initial_keys(&secret, pqxdh).unwrap()
}

/// The DH ratchet step with an explicit root key, computed with plain HKDF (not the core's
/// `create_chain`): (root key, chain key).
fn ratchet_step_reference(root: &[u8], shared: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let mut out = [0u8; 64];
    hkdf_sha256(Some(root), shared, b"WhisperRatchet", &mut out).unwrap();
    (out[..32].try_into().unwrap(), out[32..].try_into().unwrap())
}

/// Asserts that `root` holds exactly `expected` bytes, observed through `create_chain` (the
/// core keeps root keys opaque): a DH ratchet step from `root` must equal the same step from
/// `expected` computed with plain HKDF.
fn assert_root_key(root: &RootKey, expected: &[u8]) {
    let their = PrivateKey::deserialize(&[0x42; 32]).unwrap().public_key();
    let our = PrivateKey::deserialize(&[0x24; 32]).unwrap();
    let (next_root, chain) = root.create_chain(&their, &our).unwrap();
    let (ref_root, ref_chain) = ratchet_step_reference(expected, &our.agree(&their).unwrap());
    assert_eq!(chain.key().expose(), &ref_chain);
    assert_eq!(chain.index(), 0);
    // And the next root key too (observed the same way, one level down).
    let (_, chain2) = next_root.create_chain(&their, &our).unwrap();
    let (_, ref_chain2) = ratchet_step_reference(&ref_root, &our.agree(&their).unwrap());
    assert_eq!(chain2.key().expose(), &ref_chain2);
}

#[test]
fn vector_shape() {
    let x = kat();
    assert_eq!(x["session_version"], 3);
    assert_eq!(x["kdf"]["info_text"], "WhisperText");
    assert_eq!(x["kdf"]["length"], 64);
    assert!(x["kdf"]["salt"].is_null());
    assert!(x["bob"]["one_time_prekey"].is_null());
    assert_eq!(x["bob"]["expected_session_version"], 3);
    assert_eq!(x["alice"]["expected_session_version"], 3);
    assert_eq!(x["alice"]["receiver_chain_for"], "bob_ephemeral_public");
}

#[test]
fn bob_sender_chain_key() {
    let x = kat();
    let k = Keys::new(&x, "bob");
    let spk = k.private("bob_signed_prekey_private");
    let ik = k.private("bob_identity_private");
    assert_eq!(spk.public_key(), k.public("bob_signed_prekey_public"));
    assert_eq!(ik.public_key(), k.public("bob_identity_public"));
    let alice_identity = k.public("alice_identity_public");
    let alice_base = k.public("alice_base_public");

    let derived = x3dh(
        [
            &spk.agree(&alice_identity).unwrap(),
            &ik.agree(&alice_base).unwrap(),
            &spk.agree(&alice_base).unwrap(),
        ],
        false,
    );
    // Bob's sending chain starts at the X3DH chain key, index 0.
    assert_eq!(
        derived.chain_key.key().expose()[..],
        h(&x["bob"], "expected_sender_chain_key")[..]
    );
    assert_eq!(derived.chain_key.index(), 0);
    assert!(derived.pq_auth_key.is_none());
    assert_root_key(&derived.root_key, &h(&x["bob"]["derived"], "root_key"));

    // Bob's ratchet key in the vector is bob_ephemeral; its private half does not match its
    // public one (see the JSON) and is not used for the chain key.
    let eph = k.private("bob_ephemeral_private");
    assert_ne!(eph.public_key(), k.public("bob_ephemeral_public"));

    // The same input under the PQXDH label gives different keys (the label is bound).
    let pq = x3dh(
        [
            &spk.agree(&alice_identity).unwrap(),
            &ik.agree(&alice_base).unwrap(),
            &spk.agree(&alice_base).unwrap(),
        ],
        true,
    );
    assert_ne!(pq.chain_key, derived.chain_key);
    assert_ne!(pq.root_key, derived.root_key);
    assert!(pq.pq_auth_key.is_some());
}

#[test]
fn alice_receiver_chain_key() {
    let x = kat();
    let k = Keys::new(&x, "alice");
    let ik = k.private("alice_identity_private");
    let base = k.private("alice_base_private");
    assert_eq!(ik.public_key(), k.public("alice_identity_public"));
    let bob_identity = k.public("bob_identity_public");
    let bob_spk = k.public("bob_signed_prekey_public");

    let derived = x3dh(
        [
            &ik.agree(&bob_spk).unwrap(),
            &base.agree(&bob_identity).unwrap(),
            &base.agree(&bob_spk).unwrap(),
        ],
        false,
    );
    // Alice's receiving chain for Bob's ratchet key is the X3DH chain key.
    assert_eq!(
        derived.chain_key.key().expose()[..],
        h(&x["alice"], "expected_receiver_chain_key")[..]
    );
    assert_eq!(derived.chain_key.index(), 0);
    assert_root_key(
        &derived.root_key,
        &h(&x["alice"]["derived"], "x3dh_root_key"),
    );

    // Her sending chain: one DH ratchet step against Bob's ratchet key (bob_ephemeral_public)
    // with her own ratchet key (random in libsignal; fixed here).
    let bob_ratchet = k.public("bob_ephemeral_public");
    let alice_ratchet = PrivateKey::deserialize(&[0x17; 32]).unwrap();
    let (root, send) = derived
        .root_key
        .create_chain(&bob_ratchet, &alice_ratchet)
        .unwrap();
    let (ref_root, ref_send) = ratchet_step_reference(
        &h(&x["alice"]["derived"], "x3dh_root_key"),
        &alice_ratchet.agree(&bob_ratchet).unwrap(),
    );
    assert_eq!(send.key().expose(), &ref_send);
    assert_root_key(&root, &ref_root);
}

/// One DH ratchet step seen from both ends gives the same keys (the receiver uses the
/// private half of the key the sender ratchets against).
#[test]
fn dh_ratchet_step_is_symmetric() {
    let x = kat();
    let k = Keys::new(&x, "alice");
    let derived = x3dh(
        [
            &k.private("alice_identity_private")
                .agree(&k.public("bob_signed_prekey_public"))
                .unwrap(),
            &k.private("alice_base_private")
                .agree(&k.public("bob_identity_public"))
                .unwrap(),
            &k.private("alice_base_private")
                .agree(&k.public("bob_signed_prekey_public"))
                .unwrap(),
        ],
        false,
    );
    let kb = Keys::new(&x, "bob");
    let bob_spk = kb.private("bob_signed_prekey_private");
    let alice_ratchet = PrivateKey::deserialize(&[0x17; 32]).unwrap();
    let (root_a, send_a) = derived
        .root_key
        .create_chain(&bob_spk.public_key(), &alice_ratchet)
        .unwrap();
    let (root_b, recv_b) = derived
        .root_key
        .create_chain(&alice_ratchet.public_key(), &bob_spk)
        .unwrap();
    assert_eq!(send_a, recv_b);
    assert_eq!(root_a, root_b);
    // Different ratchet keys give different chains.
    let other = PrivateKey::deserialize(&[0x18; 32]).unwrap();
    let (_, send_c) = derived
        .root_key
        .create_chain(&bob_spk.public_key(), &other)
        .unwrap();
    assert_ne!(send_a, send_c);
}
