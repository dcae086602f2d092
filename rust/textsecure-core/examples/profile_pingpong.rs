//! Profiling driver: N ping-pong round trips (or in-chain messages) between two in-memory
//! parties, v3 or v4 with SPQR
//! (`valgrind --tool=callgrind target/release/examples/profile_pingpong 200 inchain v4`).

use textsecure_core::curve::PrivateKey;
use textsecure_core::prekey::{IdentityKeyPair, PreKeyBundle, SignedPreKeyRecord};
use textsecure_core::session::{decrypt, encrypt, process_prekey_bundle};
use textsecure_core::store::{Address, InMemoryStore};

fn main() -> Result<(), textsecure_core::Error> {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mode = std::env::args().nth(2).unwrap_or_else(|| "pingpong".into());
    let v4 = std::env::args().nth(3).is_some_and(|v| v == "v4");
    let mut a = InMemoryStore::new(IdentityKeyPair::generate(), 1);
    let mut b = InMemoryStore::new(IdentityKeyPair::generate(), 2);
    let (aa, ba) = (Address::new("alice", 1), Address::new("bob", 1));
    let id = b.identity().clone();
    let spk = SignedPreKeyRecord::generate(1, &id, 0);
    let bundle = PreKeyBundle {
        registration_id: 2,
        device_id: 1,
        identity_key: id.public_key,
        signed_prekey_id: 1,
        signed_prekey: spk.key_pair.public_key,
        signed_prekey_signature: spk.signature.clone(),
        prekey: None,
        kyber: None,
    };
    let mut bundle = bundle;
    if v4 {
        let k = textsecure_core::prekey::KyberPreKeyRecord::generate(1, &id, 0)?;
        bundle.kyber = Some(textsecure_core::prekey::KyberBundlePart {
            id: 1,
            public_key: k.key_pair.public_key.clone(),
            signature: k.signature.clone(),
        });
        b.kyber_prekeys.insert(1, (k, false));
    }
    b.signed_prekeys.insert(1, spk);
    let _ = PrivateKey::generate();
    process_prekey_bundle(&mut a, &ba, &bundle)?;
    let payload = [7u8; 100];
    let m = encrypt(&mut a, &ba, &payload)?;
    decrypt(&mut b, &aa, &m)?;
    for _ in 0..n {
        if mode == "pingpong" {
            let r = encrypt(&mut b, &aa, &payload)?;
            decrypt(&mut a, &ba, &r)?;
        }
        let m = encrypt(&mut a, &ba, &payload)?;
        decrypt(&mut b, &aa, &m)?;
    }
    Ok(())
}
