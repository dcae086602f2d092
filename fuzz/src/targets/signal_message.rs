//! `SignalMessage::deserialize`: never panics; what parses re-encodes to the same fields and
//! the MAC check of anything parsed never panics.

use textsecure_core::message::{SignalMessage, SignalMessageParts};

use super::support::{fixed_alice_identity, fixed_bob};

/// Target entry point.
pub fn run(data: &[u8]) {
    let Ok(m) = SignalMessage::deserialize(data) else {
        return;
    };
    assert_eq!(m.serialized(), data);
    assert!(matches!(m.message_version(), 3 | 4));
    let alice = fixed_alice_identity().public_key;
    let bob = fixed_bob().bundle.identity_key;
    let key = [0x4du8; 32];
    // A forged MAC under a key the input cannot know never verifies.
    assert!(!m.verify_mac(&alice, &bob, &key));
    let rebuilt = SignalMessage::new(
        SignalMessageParts {
            version_byte: m.version_byte(),
            ratchet_key: m.ratchet_key(),
            counter: m.counter(),
            previous_counter: m.previous_counter(),
            ciphertext: m.ciphertext().to_vec(),
            pq_ratchet: m.pq_ratchet().to_vec(),
            addresses: m.addresses().map(<[u8]>::to_vec),
        },
        &key,
        &alice,
        &bob,
    )
    .expect("re-encoding a parsed SignalMessage");
    let back = SignalMessage::deserialize(rebuilt.serialized()).expect("re-parse");
    assert_eq!(back.version_byte(), m.version_byte());
    assert_eq!(back.ratchet_key(), m.ratchet_key());
    assert_eq!(back.counter(), m.counter());
    assert_eq!(back.previous_counter(), m.previous_counter());
    assert_eq!(back.ciphertext(), m.ciphertext());
    assert_eq!(back.pq_ratchet(), m.pq_ratchet());
    assert_eq!(back.addresses(), m.addresses());
    assert!(back.verify_mac(&alice, &bob, &key));
    assert!(!back.verify_mac(&bob, &alice, &key));
}
