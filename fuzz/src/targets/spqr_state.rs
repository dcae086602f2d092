//! `spqr::State::from_bytes` on hostile storage (libsignal's `PqRatchetState`): never panics;
//! what parses serializes to bytes that parse to the same serialization (and the same braid
//! status and negotiation flag).
//!
//! Input: the state bytes.

use textsecure_core::spqr::State;

use super::support::{assert_secrets_hidden, spqr_secrets};

/// Target entry point.
pub fn run(data: &[u8]) {
    let Ok(s) = State::from_bytes(data) else {
        return;
    };
    let once = s.to_bytes();
    assert_eq!(once.is_empty(), s.is_v0());
    let back = State::from_bytes(&once).expect("a serialized SPQR state parses");
    assert_eq!(back.to_bytes(), once, "SPQR state round trip is not stable");
    assert_eq!(back.braid_status(), s.braid_status());
    assert_eq!(back.negotiating(), s.negotiating());
    assert_eq!(back.is_v0(), s.is_v0());
    assert_secrets_hidden(&s, &spqr_secrets(&s), "");
}
