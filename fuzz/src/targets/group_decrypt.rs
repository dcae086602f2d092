//! Hostile group messages against a receiver that processed one distribution: the fixed
//! sender's (`support::group_skdm`), or one from the input (so the interop vectors' messages
//! decrypt). A sequence of messages is decrypted in order.
//!
//! Checked after every message: no panic; a failure leaves the store (every sender-key record)
//! byte-for-byte unchanged; no (chain id, iteration) decrypts twice, whatever bytes carry it;
//! the same bytes fail the second time. Reprocessing the same distribution keeps the chain's
//! progress (the record does not change).
//!
//! Input: flags (bit 0: legacy format; bit 1: the distribution is a field of the input) ‖
//! [field: distribution] ‖ (op ‖ field: message)*, op odd = reprocess the distribution.

use std::collections::HashSet;

use textsecure_core::group::{self, DistributionKey};

use super::support::{
    group_receiver, group_sender_address, group_skdm, parse_skdm, parse_skm, sender_key_bytes,
    snapshot, Input, GROUP_ID,
};

/// Most messages per input.
const MAX_MESSAGES: usize = 32;

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let legacy = flags & 1 == 1;
    let from = group_sender_address();
    let (skdm, mut store) = if flags & 2 == 2 {
        let Some(m) = parse_skdm(legacy, input.field()) else {
            return;
        };
        let mut store = group_receiver().clone();
        store.sender_keys.clear();
        (m, store)
    } else {
        let m = parse_skdm(legacy, &group_skdm(legacy)).expect("fixture distribution");
        (m, group_receiver().clone())
    };
    let key = match skdm.distribution_id() {
        Some(u) => DistributionKey::Uuid(u),
        None => DistributionKey::GroupId(GROUP_ID.to_owned()),
    };
    group::process_distribution(&mut store, &from, &key, &skdm).expect("distribution");
    let mut seen: HashSet<(u32, u32)> = HashSet::new();
    for _ in 0..MAX_MESSAGES {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        if op & 1 == 1 {
            let before = sender_key_bytes(&store, &from, &key);
            group::process_distribution(&mut store, &from, &key, &skdm).expect("again");
            assert_eq!(
                sender_key_bytes(&store, &from, &key),
                before,
                "reprocessing the distribution changed the record"
            );
            continue;
        }
        let Some(m) = parse_skm(legacy, input.field()) else {
            continue;
        };
        let before = snapshot(&store);
        match group::decrypt(&mut store, &from, &key, &m) {
            Err(_) => assert!(snapshot(&store) == before, "failed decrypt changed the store"),
            Ok(_) => {
                assert!(
                    seen.insert((m.chain_id(), m.iteration())),
                    "a group message key was used twice"
                );
                let after = snapshot(&store);
                assert!(
                    group::decrypt(&mut store, &from, &key, &m).is_err(),
                    "the same message decrypted twice"
                );
                assert!(snapshot(&store) == after, "failed replay changed the store");
            }
        }
    }
}
