//! Curve25519 private keys: `PrivateKey::deserialize` never panics; a parsed key clamps,
//! round-trips, signs verifiably and agrees symmetrically.

use textsecure_core::curve::PrivateKey;

use super::support::{fixed_private, SplitMix};

/// Target entry point.
pub fn run(data: &[u8]) {
    let Ok(k) = PrivateKey::deserialize(data) else {
        assert_ne!(data.len(), 32);
        return;
    };
    let bytes = k.serialize();
    assert_eq!(bytes[0] & 7, 0);
    assert_eq!(bytes[31] & 0xc0, 0x40);
    let again = PrivateKey::deserialize(&bytes).expect("re-parse");
    assert_eq!(again.serialize(), bytes);
    let public = k.public_key();
    assert!(public.is_canonical());
    let sig = k.sign_multipart_with(&[data], &mut SplitMix(u64::from(data[0])));
    assert!(public.verify_signature(data, &sig));
    assert!(!public.verify_signature(&bytes, &sig) || bytes[..] == data[..]);
    let other = fixed_private(9);
    let ab = k.agree(&other.public_key()).expect("agreement with a good key");
    let ba = other.agree(&public).expect("agreement with a good key");
    assert_eq!(*ab, *ba);
}
