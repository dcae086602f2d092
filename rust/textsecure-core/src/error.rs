//! The one error type of the core.
//!
//! Variants carry counters, ids and public values only: never key bytes or plaintext.
//! The Python binding maps each variant to one class of `textsecure.errors` in a single place
//! (`rust/textsecure-py/src/errors.rs`).

/// Every failure the core reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A key had the wrong length, type byte or value.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A signature (XEdDSA, prekey signature) did not verify.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// A message was malformed, failed its MAC or could not be decrypted.
    #[error("invalid message: {0}")]
    InvalidMessage(&'static str),
    /// A message counter was already used (or its key was discarded).
    #[error("duplicate message (chain index {index}, counter {counter})")]
    DuplicateMessage {
        /// The receiving chain's next index.
        index: u32,
        /// The message's counter.
        counter: u32,
    },
    /// A message jumped further ahead in its chain than allowed.
    #[error("message too far in the future: {jump} skipped messages (limit {limit})")]
    MessageGapTooLarge {
        /// How many keys would have to be skipped.
        jump: u32,
        /// The limit.
        limit: u32,
    },
    /// A message or record version this implementation does not speak.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// No usable session exists for the remote address.
    #[error("no session: {0}")]
    NoSession(&'static str),
    /// The remote identity differs from the trusted one.
    #[error("untrusted identity")]
    UntrustedIdentity {
        /// The identity key presented (33 bytes, public).
        identity: Vec<u8>,
    },
    /// A prekey referenced by a message or bundle is not in the store.
    #[error("no {kind} prekey with id {id}")]
    InvalidPreKeyId {
        /// "one-time", "signed" or "kyber".
        kind: &'static str,
        /// The id.
        id: u32,
    },
    /// A serialized record (session, prekey, sender key) could not be read.
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    /// No sender key state exists for the distribution / chain.
    #[error("no sender key: {0}")]
    NoSenderKey(&'static str),
    /// An argument was out of its allowed range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A sealed-sender server or sender certificate was malformed, not signed by the trust
    /// root / server, revoked or expired.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(&'static str),
    /// Two scannable fingerprints of different versions cannot be compared.
    #[error("fingerprint version mismatch (theirs {theirs}, ours {ours})")]
    FingerprintVersionMismatch {
        /// The version in the other party's scannable fingerprint.
        theirs: u32,
        /// Our version.
        ours: u32,
    },
    /// An external store failed; the binding carries the original error.
    #[error("store error")]
    Store,
}

/// Result alias of the core.
pub type Result<T> = core::result::Result<T, Error>;
