//! Signal attachments and WhatsApp media encryption, streaming.
//!
//! * [`signal`]: Signal attachments. 64-byte key material (AES-256 key ‖ HMAC-SHA256 key), the
//!   plaintext zero-padded to [`padded_size`], blob = IV ‖ AES-256-CBC/PKCS#7 ‖
//!   HMAC-SHA256(IV ‖ ciphertext), `digest` = SHA-256(blob), and the incremental MAC
//!   ([`incremental`]) so a receiver can validate the blob chunk by chunk.
//! * [`whatsapp`]: WhatsApp media. 32-byte media key, HKDF-SHA256 with info
//!   `WhatsApp <Type> Keys` to 112 bytes (IV, cipher key, MAC key, ref key), blob =
//!   AES-256-CBC/PKCS#7 ‖ first 10 bytes of HMAC-SHA256(IV ‖ ciphertext), `fileSha256` and
//!   `fileEncSha256`.
//!
//! Every encryptor and decryptor is push-based: `update(input, &mut out)` appends output to `out`
//! and hashes/MACs the data in the same pass (one pass over each byte per primitive), so memory
//! stays bounded by the caller's chunk size (plus at most one incremental-MAC chunk when
//! decrypting). Files are handled by [`file`].

pub mod cbc_stream;
pub mod file;
pub mod incremental;
pub mod padding;
pub mod pipeline;
pub mod signal;
pub mod whatsapp;

pub use incremental::{chunk_size_for, IncrementalMac, ValidatingMac};
pub use padding::padded_size;
pub use pipeline::Threads;
pub use signal::{SignalDecryptor, SignalEncryptResult, SignalEncryptor};
pub use whatsapp::{
    MediaKeys, MediaType, WhatsAppDecryptor, WhatsAppEncryptResult, WhatsAppEncryptor,
};

/// How much data the encryptors and decryptors like to process per step (cache friendly, large
/// enough for AES-NI pipelining and cheap per-call overhead).
pub const STEP: usize = 64 * 1024;
