//! `KyberPreKeyRecord::deserialize`: never panics; what parses round-trips, and its key pair
//! works (encapsulate to the public key, decapsulate with the secret key).

use textsecure_core::prekey::KyberPreKeyRecord;

use super::support::assert_secrets_hidden;

/// Target entry point.
pub fn run(data: &[u8]) {
    let Ok(r) = KyberPreKeyRecord::deserialize(data) else {
        return;
    };
    let back = KyberPreKeyRecord::deserialize(&r.serialize()).expect("re-parse");
    assert_eq!(back.id, r.id);
    assert_eq!(back.signature, r.signature);
    assert_eq!(back.timestamp, r.timestamp);
    assert_eq!(back.serialize(), r.serialize());
    let secret = r.key_pair.secret_key.serialize();
    let secret = secret.get(1..).unwrap_or_default();
    assert_secrets_hidden(
        &r,
        &[secret.to_vec(), secret.iter().take(32).copied().collect()],
        &format!("{:?}", r.key_pair.public_key),
    );
    // A secret key whose embedded public key matches must decapsulate its own ciphertexts only
    // if it is a real key pair; with hostile bytes it must at least not panic.
    let (_ss, ct) = r.key_pair.public_key.encapsulate().expect("encapsulate");
    assert!(r.key_pair.secret_key.decapsulate(&ct).is_ok());
}
