//! `PreKeySignalMessage::deserialize`: never panics; what parses is consistent (versions,
//! Kyber fields) and re-encodes to the same fields.

use textsecure_core::message::{PreKeyParts, PreKeySignalMessage, KYBER_CIPHERTEXT_LENGTH};

/// Target entry point.
pub fn run(data: &[u8]) {
    let Ok(m) = PreKeySignalMessage::deserialize(data) else {
        return;
    };
    assert_eq!(m.serialized(), data);
    assert_eq!(m.message().message_version(), m.message_version());
    assert_eq!(m.kyber_pre_key_id().is_some(), m.kyber_ciphertext().is_some());
    if let Some(ct) = m.kyber_ciphertext() {
        assert_eq!(ct.len(), KYBER_CIPHERTEXT_LENGTH);
    } else {
        assert_eq!(m.message_version(), 3);
    }
    let rebuilt = PreKeySignalMessage::new(
        PreKeyParts {
            version_byte: m.version_byte(),
            registration_id: m.registration_id(),
            pre_key_id: m.pre_key_id(),
            signed_pre_key_id: m.signed_pre_key_id(),
            kyber_pre_key_id: m.kyber_pre_key_id(),
            kyber_ciphertext: m.kyber_ciphertext().map(<[u8]>::to_vec),
            base_key: *m.base_key(),
            identity_key: *m.identity_key(),
        },
        m.message().clone(),
    )
    .expect("re-encoding a parsed PreKeySignalMessage");
    let back = PreKeySignalMessage::deserialize(rebuilt.serialized()).expect("re-parse");
    assert_eq!(back.version_byte(), m.version_byte());
    assert_eq!(back.registration_id(), m.registration_id());
    assert_eq!(back.pre_key_id(), m.pre_key_id());
    assert_eq!(back.signed_pre_key_id(), m.signed_pre_key_id());
    assert_eq!(back.kyber_pre_key_id(), m.kyber_pre_key_id());
    assert_eq!(back.kyber_ciphertext(), m.kyber_ciphertext());
    assert_eq!(back.base_key(), m.base_key());
    assert_eq!(back.identity_key(), m.identity_key());
    assert_eq!(back.message().serialized(), m.message().serialized());
}
