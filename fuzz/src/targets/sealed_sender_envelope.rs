//! Sealed sender v1 and the v2 received form, opened by a fixed recipient: the fixed Bob
//! (trust root, server and sender certificates of `support`) or the recipient of
//! `sealed_sender_pqxdh.json` (its trust root and time); first input byte, bit 0.
//!
//! Checked for a sequence of envelopes: never panics; `decrypt_to_usmc` gives content that
//! re-parses to the same fields; `unseal` succeeds only where `decrypt_to_usmc` does, and for the
//! fixed Bob only with a sender certificate the fixed server key signed; `sealed_sender_decrypt`
//! into the recipient's store either fails with the store byte-for-byte unchanged or succeeds
//! once (the same envelope then fails, unchanged).
//!
//! Input: flags ‖ (field: envelope)*.

use std::sync::OnceLock;

use textsecure_core::curve::PublicKey;
use textsecure_core::sealed_sender::{
    decrypt_to_usmc, sealed_sender_decrypt, unseal, UnidentifiedSenderMessageContent,
    UnsealOptions,
};
use textsecure_core::store::{Address, InMemoryStore};

use super::support::{
    bob_address, fixed_bob, fixture_sender_certs, fixture_server_certs, snapshot, trust_root,
    Input, VALIDATION_TIME,
};
use super::vector_bobs;

/// Most envelopes per input.
const MAX_ENVELOPES: usize = 8;

struct Recipient {
    store: InMemoryStore,
    root: PublicKey,
    time: u64,
    local: Option<Address>,
    fixed: bool,
}

fn recipients() -> &'static [Recipient] {
    static R: OnceLock<Vec<Recipient>> = OnceLock::new();
    R.get_or_init(|| {
        let mut v = vec![Recipient {
            store: fixed_bob().store.clone(),
            root: trust_root().public_key(),
            time: VALIDATION_TIME,
            local: Some(bob_address()),
            fixed: true,
        }];
        let root = PublicKey::deserialize(&vector_bobs::unhex(vector_bobs::SEALED_TRUST_ROOT));
        if let (Some(store), Ok(root)) = (vector_bobs::sealed_store(), root) {
            v.push(Recipient {
                store,
                root,
                time: vector_bobs::SEALED_VALIDATION_TIME,
                local: None,
                fixed: false,
            });
        }
        v
    })
}

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let all = recipients();
    let r = &all[usize::from(input.u8() & 1) % all.len()];
    let mut store = r.store.clone();
    let ours = store.identity().clone();
    let roots = [r.root];
    let opts = UnsealOptions {
        trust_roots: &roots,
        timestamp: r.time,
        known_servers: fixture_server_certs(),
        local_address: r.local.as_ref(),
    };
    for _ in 0..MAX_ENVELOPES {
        if input.is_empty() {
            break;
        }
        let env = input.field();
        let usmc = decrypt_to_usmc(env, &ours);
        if let Ok(u) = &usmc {
            let back = UnidentifiedSenderMessageContent::deserialize(u.serialized())
                .expect("decrypted content re-parses");
            assert_eq!(back.msg_type(), u.msg_type());
            assert_eq!(back.contents(), u.contents());
            assert_eq!(back.content_hint(), u.content_hint());
            assert_eq!(back.group_id(), u.group_id());
            assert_eq!(back.sender(), u.sender());
        }
        let unsealed = unseal(env, &ours, &opts);
        if let Ok(u) = &unsealed {
            assert!(usmc.is_ok(), "unseal accepted what decrypt_to_usmc refused");
            if r.fixed {
                assert!(
                    fixture_sender_certs()
                        .iter()
                        .any(|f| f.certificate() == u.sender().certificate()),
                    "a sender certificate the server never signed was accepted"
                );
            }
        }
        let before = snapshot(&store);
        match sealed_sender_decrypt(&mut store, env, &opts) {
            Err(_) => assert!(snapshot(&store) == before, "failed decrypt changed the store"),
            Ok(res) => {
                assert!(unsealed.is_ok(), "decrypted what unseal refused");
                assert_eq!(res.usmc.serialized(), usmc.as_ref().map(|u| u.serialized()).unwrap_or_default());
                let after = snapshot(&store);
                assert!(
                    sealed_sender_decrypt(&mut store, env, &opts).is_err(),
                    "the same envelope decrypted twice"
                );
                assert!(snapshot(&store) == after, "failed replay changed the store");
            }
        }
    }
}
