//! Hostile messages against a receiver with fixed prekeys: a sequence of (type, body) pairs
//! decrypted in order by one store (first byte: which receiver, see `support::receiver`).
//!
//! Checked after every message: no panic; a failure leaves the store byte-for-byte unchanged;
//! a success is never repeated (the same bytes fail the second time, and no (session, ratchet
//! key, counter) decrypts twice, whatever bytes carried it, even after the session was deleted:
//! type byte 0xff deletes the receiver's session, so replays must be stopped by the used
//! one-time prekey or the replay record of the base key).

use std::collections::HashSet;

use textsecure_core::message::{CiphertextMessage, PreKeySignalMessage, SignalMessage};
use textsecure_core::session::{decrypt_with, PqRatchetPolicy, SessionOptions};

/// The most permissive policy: SPQR when offered, none from peers without it (libsignal 0.72
/// vectors), so every receiver's messages are reachable.
fn decrypt(
    store: &mut textsecure_core::store::InMemoryStore,
    from: &textsecure_core::store::Address,
    msg: &CiphertextMessage,
) -> textsecure_core::Result<Vec<u8>> {
    let opts = SessionOptions {
        local_address: None,
        pq_ratchet: PqRatchetPolicy::Preferred,
    };
    decrypt_with(store, from, msg, &opts)
}

use super::support::{alice_address, receiver, snapshot, Input};

/// Most messages per input (bounds the work of one run).
const MAX_MESSAGES: usize = 32;

/// Parses `body` as the given `CiphertextMessageType` (2 or 3; anything else by its low bit).
pub fn parse(kind: u8, body: &[u8]) -> Option<CiphertextMessage> {
    if kind & 1 == 1 {
        PreKeySignalMessage::deserialize(body)
            .ok()
            .map(CiphertextMessage::PreKey)
    } else {
        SignalMessage::deserialize(body)
            .ok()
            .map(CiphertextMessage::Whisper)
    }
}

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut store = receiver(input.u8()).clone();
    let from = alice_address();
    let mut seen: HashSet<(Vec<u8>, u8, [u8; 33], u32)> = HashSet::new();
    for _ in 0..MAX_MESSAGES {
        if input.is_empty() {
            break;
        }
        let kind = input.u8();
        if kind == 0xff {
            store.sessions.remove(&from);
            continue;
        }
        let body = input.field();
        let Some(msg) = parse(kind, body) else {
            continue;
        };
        let before = snapshot(&store);
        match decrypt(&mut store, &from, &msg) {
            Err(_) => assert!(snapshot(&store) == before, "failed decrypt changed the store"),
            Ok(_) => {
                let inner = match &msg {
                    CiphertextMessage::Whisper(m) => m,
                    CiphertextMessage::PreKey(m) => m.message(),
                };
                // Which session decrypted it: the current one (a success makes it current).
                let session = store
                    .sessions
                    .get(&from)
                    .and_then(|r| r.current.as_ref())
                    .and_then(|s| s.alice_base_key)
                    .map(|k| k.serialize().to_vec())
                    .unwrap_or_default();
                let id = (
                    session,
                    inner.message_version(),
                    inner.ratchet_key().serialize(),
                    inner.counter(),
                );
                assert!(seen.insert(id), "a message key was used twice");
                let after = snapshot(&store);
                let again = decrypt(&mut store, &from, &msg);
                assert!(again.is_err(), "the same message decrypted twice");
                assert!(snapshot(&store) == after, "failed replay changed the store");
            }
        }
    }
}
