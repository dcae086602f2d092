//! textsecure-core: the Signal protocol in pure Rust.
//!
//! X25519 / XEdDSA keys with libsignal's encodings, X3DH (session version 3) and PQXDH
//! (version 4), the Double Ratchet with libsignal's KDFs and wire formats, sender keys (group
//! messaging, current and WhatsApp-era formats), and libsignal's storage records. No Python
//! here: the PyO3 layer lives in `textsecure-py`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod address;
pub mod attachments;
pub mod crypto;
pub mod curve;
pub mod error;
pub mod fingerprint;
pub mod group;
pub mod kem;
pub mod message;
pub mod prekey;
pub mod proto;
pub mod proto_sealed;
pub mod ratchet;
pub mod seal;
pub mod sealed_sender;
pub mod session;
pub mod spqr;
pub mod state;
pub mod store;
pub mod uow;

/// The shared reference material (Wycheproof, …) for unit tests, as the integration tests
/// reach it (`tests/shared_data`: skipped when absent).
#[cfg(test)]
#[path = "../tests/shared_data/mod.rs"]
mod shared_data;

pub use error::{Error, Result};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
