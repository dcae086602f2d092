//! Wycheproof ML-KEM-1024 vectors through the `0x0A` KEM key type (FIPS 203), from
//! `../shared/wycheproof/mlkem_1024_test.json`: key generation from the seed reproduces `ek`,
//! decapsulation reproduces `K` (including implicit rejection), and malformed seeds or
//! ciphertexts are rejected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod shared_data;

use textsecure_core::kem::{KeyPair, KeyType};

fn vectors() -> Option<serde_json::Value> {
    shared_data::json("wycheproof/mlkem_1024_test.json")
}

#[test]
fn wycheproof_mlkem_1024() {
    let Some(v) = vectors() else { return };
    let (mut valid, mut invalid) = (0, 0);
    for group in v["testGroups"].as_array().unwrap() {
        for t in group["tests"].as_array().unwrap() {
            let id = t["tcId"].as_u64().unwrap();
            let seed = hex::decode(t["seed"].as_str().unwrap()).unwrap();
            let c = hex::decode(t["c"].as_str().unwrap()).unwrap();
            let mut ct = vec![0x0A];
            ct.extend_from_slice(&c);
            let outcome = KeyPair::from_seed(KeyType::MlKem1024, &seed).and_then(|kp| {
                let pk = kp.public_key.serialize();
                let k = kp.secret_key.decapsulate(&ct)?;
                Ok((pk, k))
            });
            match t["result"].as_str().unwrap() {
                "valid" => {
                    let (pk, k) = outcome.unwrap_or_else(|e| panic!("tc {id}: {e}"));
                    assert_eq!(pk[0], 0x0A);
                    assert_eq!(
                        hex::encode(&pk[1..]),
                        t["ek"].as_str().unwrap(),
                        "tc {id} ek"
                    );
                    assert_eq!(hex::encode(*k), t["K"].as_str().unwrap(), "tc {id} K");
                    valid += 1;
                }
                "invalid" => {
                    assert!(outcome.is_err(), "tc {id} should be rejected");
                    invalid += 1;
                }
                other => panic!("tc {id}: unexpected result {other}"),
            }
        }
    }
    assert_eq!((valid, invalid), (153, 40));
}

#[test]
fn kyber_round3_differs_from_mlkem_for_the_same_seed() {
    let seed = [7u8; 64];
    let ky = KeyPair::from_seed(KeyType::Kyber1024, &seed).unwrap();
    let ml = KeyPair::from_seed(KeyType::MlKem1024, &seed).unwrap();
    // FIPS 203 key generation domain-separates G(d) with the rank byte; round 3 does not.
    assert_ne!(
        ky.public_key.serialize()[1..],
        ml.public_key.serialize()[1..]
    );
    assert_eq!(ky.public_key.serialize()[0], 0x08);
    assert_eq!(ml.public_key.serialize()[0], 0x0A);
    // A round-3 ciphertext decapsulated with the same key bytes as ML-KEM gives another secret.
    let (ss, ct) = ky.public_key.encapsulate().unwrap();
    let mut sk_as_ml = ky.secret_key.serialize();
    sk_as_ml[0] = 0x0A;
    let sk_as_ml = textsecure_core::kem::SecretKey::deserialize(&sk_as_ml).unwrap();
    let mut ct_as_ml = ct.clone();
    ct_as_ml[0] = 0x0A;
    assert_ne!(*sk_as_ml.decapsulate(&ct_as_ml).unwrap(), *ss);
    assert_eq!(*ky.secret_key.decapsulate(&ct).unwrap(), *ss);
}
