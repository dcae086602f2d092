//! KEM secret keys (`kem::SecretKey::deserialize`): never panics; a parsed key round-trips,
//! decapsulates any well-formed ciphertext of its type (implicit rejection) without a panic,
//! and pairs with the public key embedded in it when that one is valid.

use textsecure_core::kem;

/// Target entry point.
pub fn run(data: &[u8]) {
    let Ok(sk) = kem::SecretKey::deserialize(data) else {
        return;
    };
    assert_eq!(sk.serialize(), data);
    let mut ct = vec![0u8; 1 + kem::CIPHERTEXT_LENGTH];
    ct[0] = sk.key_type().byte();
    for (i, b) in ct.iter_mut().enumerate().skip(1) {
        *b = data[i % data.len()];
    }
    assert!(sk.decapsulate(&ct).is_ok());
    // The embedded public key sits after the 1536-byte CPA secret key.
    let mut public = vec![sk.key_type().byte()];
    public.extend_from_slice(&data[1 + 1536..1 + 1536 + kem::PUBLIC_KEY_LENGTH]);
    if let Ok(pk) = kem::PublicKey::deserialize(&public) {
        let pair = kem::KeyPair::new(sk, pk).expect("secret key with its own public key");
        let (ss, ct) = pair.public_key.encapsulate().expect("encapsulate");
        let dec = pair.secret_key.decapsulate(&ct).expect("decapsulate");
        // Only a genuine key pair must agree; hostile secret keys may not.
        let _ = *dec == *ss;
    }
}
