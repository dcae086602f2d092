//! KEM decapsulation of hostile ciphertexts with fixed Kyber-1024 and ML-KEM-1024 secret keys:
//! never panics; succeeds exactly for well-formed ciphertexts (right type byte and length),
//! deterministically.

use std::sync::OnceLock;

use textsecure_core::kem;

fn keys() -> &'static [kem::KeyPair; 2] {
    static KEYS: OnceLock<[kem::KeyPair; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            kem::KeyPair::from_seed(kem::KeyType::Kyber1024, &[0x6b; 64]).expect("Kyber key"),
            kem::KeyPair::from_seed(kem::KeyType::MlKem1024, &[0x6c; 64]).expect("ML-KEM key"),
        ]
    })
}

/// Target entry point.
pub fn run(data: &[u8]) {
    for pair in keys() {
        let t = pair.secret_key.key_type().byte();
        let r = pair.secret_key.decapsulate(data);
        let well_formed = data.len() == 1 + kem::CIPHERTEXT_LENGTH && data[0] == t;
        assert_eq!(r.is_ok(), well_formed);
        if let Ok(ss) = r {
            let again = pair.secret_key.decapsulate(data).expect("decapsulate again");
            assert_eq!(*ss, *again);
        }
    }
}
