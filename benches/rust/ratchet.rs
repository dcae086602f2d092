//! Criterion benches of the core: X25519, XEdDSA, chain step, encrypt / decrypt in chain,
//! ping-pong (a DH ratchet step per message) and the X3DH handshake.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches abort on a broken setup

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use textsecure_core::curve::{KeyPair, PrivateKey};
use textsecure_core::message::CiphertextMessage;
use textsecure_core::prekey::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use textsecure_core::ratchet::{ChainKey, MessageKeys, Secret32};
use textsecure_core::session::{decrypt, encrypt, process_prekey_bundle};
use textsecure_core::store::{Address, InMemoryStore};

fn bundle_for(store: &mut InMemoryStore) -> PreKeyBundle {
    let id = store.identity().clone();
    let spk = SignedPreKeyRecord::generate(1, &id, 0);
    let otk = PreKeyRecord::new(1, PrivateKey::generate());
    let b = PreKeyBundle {
        registration_id: store.registration_id(),
        device_id: 1,
        identity_key: id.public_key,
        signed_prekey_id: 1,
        signed_prekey: spk.key_pair.public_key,
        signed_prekey_signature: spk.signature.clone(),
        prekey: Some((1, otk.key_pair.public_key)),
        kyber: None,
    };
    store.signed_prekeys.insert(1, spk);
    store.prekeys.insert(1, otk);
    b
}

fn pair() -> (InMemoryStore, InMemoryStore, Address, Address) {
    let mut a = InMemoryStore::new(IdentityKeyPair::generate(), 1);
    let mut b = InMemoryStore::new(IdentityKeyPair::generate(), 2);
    let (aa, ba) = (Address::new("alice", 1), Address::new("bob", 1));
    let bundle = bundle_for(&mut b);
    process_prekey_bundle(&mut a, &ba, &bundle).unwrap();
    let m = encrypt(&mut a, &ba, b"hi").unwrap();
    decrypt(&mut b, &aa, &m).unwrap();
    let r = encrypt(&mut b, &aa, b"hi").unwrap();
    decrypt(&mut a, &ba, &r).unwrap();
    (a, b, aa, ba)
}

fn bench(c: &mut Criterion) {
    let k1 = KeyPair::generate();
    let k2 = KeyPair::generate();
    c.bench_function("x25519_agree", |b| {
        b.iter(|| k1.private_key.agree(black_box(&k2.public_key)).unwrap())
    });
    c.bench_function("x25519_keygen", |b| b.iter(KeyPair::generate));
    let sig = k1.private_key.sign(b"message");
    c.bench_function("xeddsa_sign", |b| {
        b.iter(|| k1.private_key.sign(black_box(b"message")))
    });
    c.bench_function("xeddsa_verify", |b| {
        b.iter(|| k1.public_key.verify_signature(black_box(b"message"), &sig))
    });
    let ck = ChainKey::new(Secret32::from_slice(&[7u8; 32]).unwrap(), 0);
    c.bench_function("chain_step_and_message_keys", |b| {
        b.iter(|| {
            let (seed, next) = black_box(&ck).step();
            (MessageKeys::derive(&seed, 0, None).unwrap(), next)
        })
    });

    let payload = [0x42u8; 100];
    let (mut a, mut b_store, aa, ba) = pair();
    c.bench_function("encrypt_in_chain_100B", |b| {
        b.iter(|| encrypt(&mut a, &ba, black_box(&payload)).unwrap())
    });
    let (mut a, mut b_store2, aa2, ba2) = pair();
    let _ = (&mut b_store, &aa);
    c.bench_function("decrypt_in_chain_100B", |b| {
        b.iter_batched(
            || encrypt(&mut a, &ba2, &payload).unwrap(),
            |m| decrypt(&mut b_store2, &aa2, &m).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    let (mut a, mut b, aa, ba) = pair();
    c.bench_function("ping_pong_round_trip_100B", |bench| {
        bench.iter(|| {
            let m = encrypt(&mut a, &ba, &payload).unwrap();
            decrypt(&mut b, &aa, &m).unwrap();
            let r = encrypt(&mut b, &aa, &payload).unwrap();
            decrypt(&mut a, &ba, &r).unwrap();
        })
    });
    let mut alice = InMemoryStore::new(IdentityKeyPair::generate(), 1);
    let aa = Address::new("alice", 1);
    c.bench_function("x3dh_handshake", |bench| {
        bench.iter_batched(
            || {
                let mut bob = InMemoryStore::new(IdentityKeyPair::generate(), 2);
                let bundle = bundle_for(&mut bob);
                (bob, bundle)
            },
            |(mut bob, bundle)| {
                let ba = Address::new("bob", 1);
                alice.sessions.clear();
                alice.identities.clear();
                process_prekey_bundle(&mut alice, &ba, &bundle).unwrap();
                let m = encrypt(&mut alice, &ba, &payload).unwrap();
                assert!(matches!(m, CiphertextMessage::PreKey(_)));
                decrypt(&mut bob, &aa, &m).unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
