//! SPQR error messages (all reported as [`crate::error::Error::InvalidMessage`] for bad input,
//! [`crate::error::Error::InvalidRecord`] for unparsable state).

use crate::error::Error;

/// Malformed SPQR message.
pub const MSG_DECODE: &str = "post-quantum ratchet error: malformed message";
/// Message epoch ahead of ours.
pub const EPOCH_OUT_OF_RANGE: &str = "post-quantum ratchet error: epoch out of range";
/// Header or ciphertext MAC mismatch.
pub const MAC_VERIFY_FAILED: &str = "post-quantum ratchet error: MAC verification failed";
/// The encapsulation key does not match the authenticated header.
pub const ERRONEOUS_DATA: &str = "post-quantum ratchet error: erroneous data received";
/// Chain counter jumped too far.
pub const KEY_JUMP: &str = "post-quantum ratchet error: key jump too large";
/// Key already discarded.
pub const KEY_TRIMMED: &str = "post-quantum ratchet error: key trimmed";
/// Key already used.
pub const KEY_ALREADY_REQUESTED: &str = "post-quantum ratchet error: key already requested";
/// Peer speaks an older version and negotiation is closed.
pub const VERSION_MISMATCH: &str = "post-quantum ratchet error: version mismatch";
/// Peer speaks a version below our minimum.
pub const MINIMUM_VERSION: &str = "post-quantum ratchet error: peer below minimum version";
/// No chain and no negotiation data to build one.
pub const CHAIN_NOT_AVAILABLE: &str = "post-quantum ratchet error: chain not available";
/// Send epoch went backwards (corrupted state).
pub const SEND_KEY_EPOCH_DECREASED: &str = "post-quantum ratchet error: send key epoch decreased";
/// Internal inconsistency (corrupted state, counter overflow, KEM failure).
pub const INTERNAL: &str = "post-quantum ratchet error: internal state error";

/// Whether `kind` says the message lies outside SPQR's windows (its key was discarded, or its
/// epoch is no longer kept): a property of the message's position, not of its authenticity.
pub fn is_window(kind: &str) -> bool {
    kind == KEY_TRIMMED || kind == EPOCH_OUT_OF_RANGE
}

/// `Error::InvalidMessage(kind)`.
pub fn err(kind: &'static str) -> Error {
    Error::InvalidMessage(kind)
}

/// `Error::InvalidRecord(what)` for unparsable state.
pub fn bad_state(what: &'static str) -> Error {
    Error::InvalidRecord(what)
}
