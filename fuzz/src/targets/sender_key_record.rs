//! `SenderKeyRecord::deserialize` on hostile storage: never panics; what parses re-serializes
//! stably with the same states. Used as our own sending key, encrypt either fails with the
//! store unchanged or gives a message that a receiver holding the same record (and a matching
//! message version) decrypts to the plaintext, exactly once. Used as a receiver's record, a
//! hostile message (both formats) decrypts or fails without changing the store.
//!
//! Input: field with the record ‖ flags (bit 0: legacy) ‖ field with a message.

use textsecure_core::group::{self, SenderKeyRecord};

use super::support::{
    assert_secrets_hidden, group_key, group_receiver, group_sender_address, parse_skm,
    sender_key_secrets, snapshot, Input,
};

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let Ok(rec) = SenderKeyRecord::deserialize(input.field()) else {
        return;
    };
    let once = rec.serialize();
    let back = SenderKeyRecord::deserialize(&once).expect("a serialized record parses");
    assert_eq!(back.serialize(), once, "record round trip is not stable");
    assert_eq!(back.states().len(), rec.states().len());
    for (a, b) in back.states().zip(rec.states()) {
        assert_eq!(a.chain_id(), b.chain_id());
        assert_eq!(a.iteration(), b.iteration());
        assert_eq!(a.signing_key(), b.signing_key());
        assert_eq!(a.has_private_key(), b.has_private_key());
        assert_eq!(a.skipped_keys(), b.skipped_keys());
    }
    let public: String = rec
        .states()
        .map(|s| format!("{:?}|", s.signing_key()))
        .collect();
    assert_secrets_hidden(&rec, &sender_key_secrets(&once), &public);
    let legacy = input.u8() & 1 == 1;
    let key = group_key(legacy);
    let from = group_sender_address();
    let slot = (from.clone(), key.clone());

    // As our own sender key.
    let mut sender = group_receiver().clone();
    sender.sender_keys.insert(slot.clone(), rec.clone());
    let before = snapshot(&sender);
    match group::encrypt(&mut sender, &from, &key, b"fuzz") {
        Err(_) => assert!(snapshot(&sender) == before, "failed encrypt changed the store"),
        Ok(m) => {
            let newest = rec.states().next().expect("encrypt used a state");
            assert!(newest.has_private_key());
            assert_eq!(m.chain_id(), newest.chain_id());
            assert_eq!(m.iteration(), newest.iteration());
            assert_eq!(
                sender.sender_keys[&slot].states().next().map(|s| s.iteration()),
                Some(newest.iteration() + 1)
            );
            let m = parse_skm(legacy, m.serialized()).expect("own message parses");
            let mut receiver = group_receiver().clone();
            receiver.sender_keys.insert(slot.clone(), rec.clone());
            let r = group::decrypt(&mut receiver, &from, &key, &m);
            if newest.message_version() == 3 {
                assert_eq!(r.expect("own message decrypts"), b"fuzz");
                let after = snapshot(&receiver);
                assert!(group::decrypt(&mut receiver, &from, &key, &m).is_err());
                assert!(snapshot(&receiver) == after, "failed replay changed the store");
            } else {
                assert!(r.is_err(), "a message decrypted under another message version");
            }
        }
    }

    // As a receiver's record, with a hostile message.
    let Some(m) = parse_skm(legacy, input.field()) else {
        return;
    };
    let mut receiver = group_receiver().clone();
    receiver.sender_keys.insert(slot, rec);
    let before = snapshot(&receiver);
    match group::decrypt(&mut receiver, &from, &key, &m) {
        Err(_) => assert!(snapshot(&receiver) == before, "failed decrypt changed the store"),
        Ok(_) => {
            let after = snapshot(&receiver);
            assert!(group::decrypt(&mut receiver, &from, &key, &m).is_err(), "decrypted twice");
            assert!(snapshot(&receiver) == after, "failed replay changed the store");
        }
    }
}
