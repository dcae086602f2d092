//! Every fuzz target's logic, as plain `fn(&[u8])`: the libFuzzer binaries in
//! `fuzz/fuzz_targets/` call it, and `rust/textsecure-core/tests/fuzz_corpus.rs` replays the
//! committed corpora and regressions through it with a plain `cargo test`.
//!
//! Adding a target (e.g. a sender-key or sealed-sender decoder): write
//! `fuzz/src/targets/<name>.rs` with `pub fn run(data: &[u8])`, then run
//! `fuzz/tools/new_target.sh <name>`, which adds its line to the list below, its libFuzzer
//! stub and its `[[bin]]` entry. `fuzz_corpus.rs` fails if any of the three is missing.
//!
//! A target must not panic on any input except to report a broken invariant.

pub mod flaky_store;
pub mod support;
pub mod vector_bobs;

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(pub mod $name;)*
        /// Every target: (name, entry point).
        pub const ALL: &[(&str, fn(&[u8]))] = &[$((stringify!($name), $name::run)),*];
    };
}

targets! {
    signal_message,
    prekey_signal_message,
    session_decrypt,
    session_record,
    prekey_record,
    signed_prekey_record,
    kyber_prekey_record,
    identity_key_pair,
    curve_public_key,
    curve_private_key,
    kem_public_key,
    kem_secret_key,
    kem_decapsulate,
    prekey_bundle,
    attachment_signal,
    attachment_whatsapp,
    sender_key_message,
    sender_key_distribution,
    sender_key_record,
    group_decrypt,
    sealed_sender_certificate,
    sealed_sender_envelope,
    spqr_message,
    spqr_state,
    sealed_sender_multi,
    conversation_uow,
    conversation,
}
