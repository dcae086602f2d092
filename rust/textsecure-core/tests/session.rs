//! Two in-memory parties talking through the core API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use textsecure_core::message::CiphertextMessage;
use textsecure_core::prekey::{
    IdentityKeyPair, KyberBundlePart, KyberPreKeyRecord, PreKeyBundle, PreKeyRecord,
    SignedPreKeyRecord,
};
use textsecure_core::session::{decrypt, encrypt, process_prekey_bundle};
use textsecure_core::store::{Address, InMemoryStore};
use textsecure_core::{curve::PrivateKey, Error};

fn party(reg: u32) -> InMemoryStore {
    InMemoryStore::new(IdentityKeyPair::generate(), reg)
}

fn bundle(store: &mut InMemoryStore, one_time: bool, kyber: bool) -> PreKeyBundle {
    let id = store.identity().clone();
    let spk = SignedPreKeyRecord::generate(7, &id, 1000);
    let otk = PreKeyRecord::new(11, PrivateKey::generate());
    let b = PreKeyBundle {
        registration_id: store.registration_id(),
        device_id: 1,
        identity_key: id.public_key,
        signed_prekey_id: spk.id,
        signed_prekey: spk.key_pair.public_key,
        signed_prekey_signature: spk.signature.clone(),
        prekey: one_time.then_some((otk.id, otk.key_pair.public_key)),
        kyber: kyber.then(|| {
            let k = KyberPreKeyRecord::generate(21, &id, 1000).unwrap();
            let part = KyberBundlePart {
                id: k.id,
                public_key: k.key_pair.public_key.clone(),
                signature: k.signature.clone(),
            };
            store.kyber_prekeys.insert(k.id, (k, false));
            part
        }),
    };
    store.signed_prekeys.insert(spk.id, spk);
    if one_time {
        store.prekeys.insert(otk.id, otk);
    }
    b
}

fn setup(kyber: bool) -> (InMemoryStore, InMemoryStore, Address, Address) {
    let mut alice = party(1);
    let mut bob = party(2);
    let a = Address::new("alice", 1);
    let b = Address::new("bob", 1);
    let bb = bundle(&mut bob, true, kyber);
    process_prekey_bundle(&mut alice, &b, &bb).unwrap();
    (alice, bob, a, b)
}

#[test]
fn conversation_v3_and_v4() {
    for kyber in [false, true] {
        let (mut alice, mut bob, a, b) = setup(kyber);
        let m1 = encrypt(&mut alice, &b, b"hello bob").unwrap();
        assert!(matches!(m1, CiphertextMessage::PreKey(_)));
        let v = if kyber { 0x44 } else { 0x33 };
        assert_eq!(m1.serialized()[0], v);
        let m2 = encrypt(&mut alice, &b, b"second").unwrap();
        assert!(matches!(m2, CiphertextMessage::PreKey(_)));
        assert_eq!(decrypt(&mut bob, &a, &m2).unwrap(), b"second");
        assert_eq!(decrypt(&mut bob, &a, &m1).unwrap(), b"hello bob");
        assert!(bob.prekeys.is_empty(), "one-time prekey removed");
        // duplicate
        let before = bob.sessions[&a].serialize();
        assert!(matches!(
            decrypt(&mut bob, &a, &m1),
            Err(Error::DuplicateMessage { .. })
        ));
        assert_eq!(bob.sessions[&a].serialize(), before);
        let r = encrypt(&mut bob, &a, b"reply").unwrap();
        assert!(matches!(r, CiphertextMessage::Whisper(_)));
        assert_eq!(decrypt(&mut alice, &b, &r).unwrap(), b"reply");
        let m3 = encrypt(&mut alice, &b, b"now whisper").unwrap();
        assert!(matches!(m3, CiphertextMessage::Whisper(_)));
        assert_eq!(decrypt(&mut bob, &a, &m3).unwrap(), b"now whisper");
        // ping-pong
        for i in 0..20u32 {
            let x = encrypt(&mut alice, &b, &i.to_be_bytes()).unwrap();
            assert_eq!(decrypt(&mut bob, &a, &x).unwrap(), i.to_be_bytes());
            let y = encrypt(&mut bob, &a, &i.to_le_bytes()).unwrap();
            assert_eq!(decrypt(&mut alice, &b, &y).unwrap(), i.to_le_bytes());
        }
        // out of order
        let msgs: Vec<_> = (0..30u32)
            .map(|i| encrypt(&mut alice, &b, &i.to_be_bytes()).unwrap())
            .collect();
        for i in (0..30usize).rev() {
            assert_eq!(
                decrypt(&mut bob, &a, &msgs[i]).unwrap(),
                (i as u32).to_be_bytes()
            );
        }
        // record round trip
        let rec = bob.sessions[&a].serialize();
        let back = textsecure_core::state::SessionRecord::deserialize(&rec).unwrap();
        assert_eq!(back.serialize(), rec);
    }
}

#[test]
fn tamper_leaves_state_unchanged() {
    let (mut alice, mut bob, a, b) = setup(false);
    let m1 = encrypt(&mut alice, &b, b"x").unwrap();
    decrypt(&mut bob, &a, &m1).unwrap();
    let m = encrypt(&mut alice, &b, b"hello there").unwrap();
    let CiphertextMessage::PreKey(pk) = &m else {
        panic!()
    };
    let inner = pk.message().serialized().to_vec();
    let before = bob.sessions[&a].serialize();
    for i in 0..inner.len() * 8 {
        let mut bad = inner.clone();
        bad[i / 8] ^= 1 << (i % 8);
        if let Ok(msg) = textsecure_core::message::SignalMessage::deserialize(&bad) {
            let r = decrypt(&mut bob, &a, &CiphertextMessage::Whisper(msg));
            assert!(r.is_err(), "flip {i} decrypted");
        }
        assert_eq!(bob.sessions[&a].serialize(), before);
    }
    let msg = textsecure_core::message::SignalMessage::deserialize(&inner).unwrap();
    assert_eq!(
        decrypt(&mut bob, &a, &CiphertextMessage::Whisper(msg)).unwrap(),
        b"hello there"
    );
}

#[test]
fn debug_never_shows_secrets() {
    let (mut alice, mut bob, a, b) = setup(true);
    let m = encrypt(&mut alice, &b, b"x").unwrap();
    decrypt(&mut bob, &a, &m).unwrap();
    for store in [&alice, &bob] {
        let text = format!("{store:?}");
        let id_private = hex::encode(store.identity().private_key.serialize());
        assert!(!text.contains(&id_private));
        for rec in store.sessions.values() {
            let s = rec.current.as_ref().unwrap();
            let text = format!("{rec:?}");
            let p = s.to_proto();
            for secret in [
                hex::encode(&p.root_key),
                hex::encode(&p.sender_chain.as_ref().unwrap().sender_ratchet_key_private),
            ] {
                assert!(!text.contains(&secret), "secret in Debug output");
            }
            let bytes_dbg = format!("{:?}", p.root_key);
            assert!(!text.contains(&bytes_dbg), "root key bytes in Debug output");
        }
    }
}
