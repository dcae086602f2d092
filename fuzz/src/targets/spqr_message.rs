//! SPQR field-5 bytes received by an SPQR state: the state comes from the input
//! (`spqr::State::from_bytes`; seeds are states of a seeded run of two fixed parties and of
//! libsignal's trace), then a sequence of messages is received in order.
//!
//! Checked: never panics; `recv` and `send` leave the state's serialization byte-for-byte
//! unchanged (failures included); a successful `recv` is deterministic (the same next state and
//! key twice); every new state round-trips through its serialization; no message key is ever
//! handed out twice; what a V1 state sends parses as an SPQR message.
//!
//! Input: field: state ‖ (field: message)*.

use std::collections::HashSet;

use textsecure_core::spqr::wire::Message;
use textsecure_core::spqr::State;

use super::support::{Input, SplitMix};

/// Most messages per input.
const MAX_MESSAGES: usize = 16;

fn round_trip(s: &State) {
    let bytes = s.to_bytes();
    let back = State::from_bytes(&bytes).expect("a serialized SPQR state parses");
    assert_eq!(back.to_bytes(), bytes, "SPQR state round trip is not stable");
}

fn check_send(s: &State) {
    let before = s.to_bytes();
    let a = s.send(&mut SplitMix(0x5e9d));
    assert_eq!(s.to_bytes(), before, "send changed the state");
    if let Ok((next, bytes, _)) = &a {
        if !s.is_v0() {
            assert!(Message::parse(bytes).is_ok(), "sent SPQR message does not parse");
        }
        round_trip(next);
        let b = s.send(&mut SplitMix(0x5e9d)).expect("send is deterministic");
        assert_eq!(&b.1, bytes);
        assert_eq!(b.0.to_bytes(), next.to_bytes());
    }
}

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let Ok(mut state) = State::from_bytes(input.field()) else {
        return;
    };
    check_send(&state);
    let mut keys: HashSet<[u8; 32]> = HashSet::new();
    for _ in 0..MAX_MESSAGES {
        if input.is_empty() {
            break;
        }
        let msg = input.field();
        let before = state.to_bytes();
        let r = state.recv(msg);
        assert_eq!(state.to_bytes(), before, "recv changed the state");
        let Ok((next, key)) = r else {
            continue;
        };
        let (again, key2) = state.recv(msg).expect("recv is deterministic");
        assert_eq!(key, key2);
        let next_bytes = next.to_bytes();
        assert_eq!(again.to_bytes(), next_bytes, "recv is not deterministic");
        round_trip(&next);
        if let Some(k) = key {
            assert!(keys.insert(k), "an SPQR message key was handed out twice");
        }
        state = next;
        check_send(&state);
    }
}
