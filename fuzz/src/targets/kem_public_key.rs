//! KEM public keys (`kem::PublicKey::deserialize`, type byte 0x08 Kyber-1024 or 0x0A
//! ML-KEM-1024): never panics; a parsed key round-trips and encapsulates.

use textsecure_core::kem;

/// Target entry point.
pub fn run(data: &[u8]) {
    let Ok(k) = kem::PublicKey::deserialize(data) else {
        return;
    };
    assert_eq!(k.serialize(), data);
    let (_ss, ct) = k.encapsulate().expect("encapsulate to a parsed key");
    assert_eq!(ct.len(), 1 + kem::CIPHERTEXT_LENGTH);
    assert_eq!(ct[0], k.key_type().byte());
}
