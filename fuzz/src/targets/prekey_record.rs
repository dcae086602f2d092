//! `PreKeyRecord::deserialize`: never panics; what parses round-trips and has a matching key
//! pair.

use textsecure_core::prekey::PreKeyRecord;

use super::support::assert_secrets_hidden;

/// Target entry point.
pub fn run(data: &[u8]) {
    let Ok(r) = PreKeyRecord::deserialize(data) else {
        return;
    };
    assert_eq!(r.key_pair.private_key.public_key(), r.key_pair.public_key);
    let back = PreKeyRecord::deserialize(&r.serialize()).expect("re-parse");
    assert_eq!(back.id, r.id);
    assert_eq!(back.key_pair.public_key, r.key_pair.public_key);
    assert_eq!(back.serialize(), r.serialize());
    assert_secrets_hidden(
        &r,
        &[r.key_pair.private_key.serialize().to_vec()],
        &format!("{:?}", r.key_pair.public_key),
    );
}
