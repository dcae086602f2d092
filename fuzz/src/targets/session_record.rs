//! `SessionRecord::deserialize` on hostile storage: never panics; what parses re-serializes
//! stably; a parsed record put into a store can be used (encrypt, then decrypt a hostile
//! message) without a panic, and a failure leaves the store unchanged.
//!
//! Input: a field with the record, then a message type byte and a field with its body.

use textsecure_core::session::{decrypt, encrypt};
use textsecure_core::state::SessionRecord;

use super::session_decrypt::parse;
use super::support::{
    alice_address, assert_secrets_hidden, fixed_bob, session_secrets, snapshot, Input,
};

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let Ok(rec) = SessionRecord::deserialize(input.field()) else {
        return;
    };
    let once = rec.serialize();
    let back = SessionRecord::deserialize(&once).expect("a serialized record parses");
    assert_eq!(back.serialize(), once, "record round trip is not stable");
    assert_eq!(back.version(), rec.version());
    assert_eq!(back.previous.len(), rec.previous.len());
    let (secrets, public) = session_secrets(&rec);
    assert_secrets_hidden(&rec, &secrets, &public);

    let from = alice_address();
    let mut store = fixed_bob().store.clone();
    store.sessions.insert(from.clone(), rec);
    let before = snapshot(&store);
    if encrypt(&mut store, &from, b"fuzz").is_err() {
        assert!(snapshot(&store) == before, "failed encrypt changed the store");
    }
    let kind = input.u8();
    if let Some(msg) = parse(kind, input.field()) {
        let before = snapshot(&store);
        if decrypt(&mut store, &from, &msg).is_err() {
            assert!(snapshot(&store) == before, "failed decrypt changed the store");
        }
    }
}
