//! Curve25519 public keys: `PublicKey::deserialize(_exact)`, `is_canonical`, X25519 agreement
//! and XEdDSA verification on hostile keys and signatures never panic, and agree with each
//! other. Input: key bytes (33 or more), then a 64-byte signature, then the signed message.

use textsecure_core::curve::PublicKey;

use super::support::{fixed_private, Input};

/// Target entry point.
pub fn run(data: &[u8]) {
    let lenient = PublicKey::deserialize(data);
    let exact = PublicKey::deserialize_exact(data);
    if let Ok(e) = &exact {
        assert_eq!(lenient.as_ref().ok(), Some(e));
        assert_eq!(&e.serialize()[..], data);
    }
    let mut input = Input::new(data);
    let key_bytes = input.bytes(33);
    let sig = input.bytes(64);
    let message = input.rest();
    let Ok(key) = PublicKey::deserialize(key_bytes) else {
        return;
    };
    assert_eq!(&key.serialize()[..], key_bytes);
    assert_eq!(PublicKey::deserialize(&key.serialize()).ok(), Some(key));
    let canonical = key.is_canonical();
    let ours = fixed_private(7);
    // An all-zero shared secret (low-order point) is an error, never a silent zero key.
    if let Ok(shared) = ours.agree(&key) {
        assert_ne!(*shared, [0u8; 32]);
    } else {
        assert!(!canonical, "agreement failed with a canonical, torsion-free key");
    }
    let _ = key.verify_signature(message, sig);
    let _ = key.verify_signature_multipart(&[message, sig], sig);
}
