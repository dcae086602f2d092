//! `IdentityKeyPair::deserialize`: never panics; what parses round-trips, its halves match
//! and it signs verifiably.

use textsecure_core::prekey::IdentityKeyPair;

use super::support::{assert_secrets_hidden, SplitMix};

/// Target entry point.
pub fn run(data: &[u8]) {
    let Ok(k) = IdentityKeyPair::deserialize(data) else {
        return;
    };
    assert_eq!(k.private_key.public_key(), k.public_key);
    let back = IdentityKeyPair::deserialize(&k.serialize()).expect("re-parse");
    assert_eq!(back.public_key, k.public_key);
    assert_eq!(back.serialize(), k.serialize());
    assert_secrets_hidden(
        &k,
        &[k.private_key.serialize().to_vec()],
        &format!("{:?}", k.public_key),
    );
    let sig = k
        .private_key
        .sign_multipart_with(&[data], &mut SplitMix(data.len() as u64));
    assert!(k.public_key.verify_signature(data, &sig));
    assert!(!k.public_key.verify_signature(b"other message", &sig));
}
