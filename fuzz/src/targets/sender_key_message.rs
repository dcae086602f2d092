//! `SenderKeyMessage::deserialize` / `deserialize_legacy` (first input byte, bit 0: legacy):
//! never panics; what parses keeps its exact bytes, re-encodes (our own protobuf writer) to the
//! same fields; its signature never verifies under a key the input cannot know (decrypt fails
//! with `InvalidSignature`, the record unchanged); re-signed under that key it passes the
//! signature check and then fails (or decrypts once) without changing a failed record.
//!
//! Input: flags ‖ u32 iteration of the receiver's chain ‖ message bytes.

use textsecure_core::group::{self, DistributionKey, SenderKeyRecord};
use textsecure_core::store::InMemoryStore;
use textsecure_core::Error;

use super::support::{
    encode_sender_key_record, encode_skm_body, fixed_alice_identity, fixed_sign, group_sender_address,
    parse_skm, sender_key_bytes, snapshot, unknown_signing_key, Input, GROUP_ID,
};

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let legacy = input.u8() & 1 == 1;
    let state_iteration = input.u32();
    let bytes = input.rest();
    let Some(m) = parse_skm(legacy, bytes) else {
        return;
    };
    assert_eq!(m.serialized(), bytes);
    assert_eq!(m.message_version(), 3);
    assert_eq!(m.is_legacy(), legacy);
    assert_eq!(m.distribution_id().is_none(), legacy);

    // Re-encoded with the original signature: the same fields.
    let sig = &bytes[bytes.len() - 64..];
    let body = encode_skm_body(m.distribution_id(), m.chain_id(), m.iteration(), m.ciphertext());
    let mut again = body.clone();
    again.extend_from_slice(sig);
    let back = parse_skm(legacy, &again).expect("re-encoded SenderKeyMessage parses");
    assert_eq!(back.distribution_id(), m.distribution_id());
    assert_eq!(back.chain_id(), m.chain_id());
    assert_eq!(back.iteration(), m.iteration());
    assert_eq!(back.ciphertext(), m.ciphertext());
    // The other format never reads the same bytes as the same message.
    if let Some(other) = parse_skm(!legacy, bytes) {
        assert_ne!(other.is_legacy(), m.is_legacy());
    }

    // A receiver whose state for this chain is signed by a key the input cannot know.
    let key = match m.distribution_id() {
        Some(u) => DistributionKey::Uuid(u),
        None => DistributionKey::GroupId(GROUP_ID.to_owned()),
    };
    let signer = unknown_signing_key();
    let rec = encode_sender_key_record(
        m.chain_id(),
        state_iteration,
        &[0x3c; 32],
        &signer.public_key().serialize(),
        None,
    );
    let rec = SenderKeyRecord::deserialize(&rec).expect("receiver record");
    let from = group_sender_address();
    let mut store = InMemoryStore::new(fixed_alice_identity(), 9);
    store.sender_keys.insert((from.clone(), key.clone()), rec);
    let before = snapshot(&store);
    let r = group::decrypt(&mut store, &from, &key, &m);
    assert!(
        matches!(r, Err(Error::InvalidSignature(_))),
        "a signature under an unknown key verified: {r:?}"
    );
    assert!(snapshot(&store) == before, "failed decrypt changed the store");

    // Re-signed under that key: past the signature, the chain and cipher checks decide.
    let mut signed = body;
    signed.extend(fixed_sign(&signer, &signed.clone()));
    let m2 = parse_skm(legacy, &signed).expect("re-signed message parses");
    match group::decrypt(&mut store, &from, &key, &m2) {
        Err(e) => {
            assert!(!matches!(e, Error::InvalidSignature(_)), "valid signature refused");
            assert!(snapshot(&store) == before, "failed decrypt changed the store");
        }
        Ok(_) => {
            let after = sender_key_bytes(&store, &from, &key);
            assert!(group::decrypt(&mut store, &from, &key, &m2).is_err(), "decrypted twice");
            assert_eq!(sender_key_bytes(&store, &from, &key), after);
        }
    }
}
