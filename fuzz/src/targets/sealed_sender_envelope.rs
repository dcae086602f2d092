//! Sealed sender v1 and the v2 received form, opened by a fixed recipient: the fixed Bob
//! (trust root, server and sender certificates of `support`) or the recipient of
//! `sealed_sender_pqxdh.json` (its trust root and time); first input byte, bit 0.
//!
//! Checked for a sequence of envelopes: never panics; `decrypt_to_usmc` gives content that
//! re-parses to the same fields; `unseal` succeeds only where `decrypt_to_usmc` does, and for the
//! fixed Bob only with a sender certificate the fixed server key signed (and then the fixed
//! Alice's re-sealed copy unseals to the same fields); opened content rebuilt with
//! `UnidentifiedSenderMessageContent::new` re-parses to the same fields, and re-sealed by the
//! fixed Alice to the recipient (v1, and v2 to one device) opens to the same fields exactly
//! when its certificate names Alice's identity key; `sealed_sender_decrypt`
//! into the recipient's store either fails with the store byte-for-byte unchanged or succeeds
//! once (the same envelope then fails, unchanged).
//!
//! Input: flags ‖ (field: envelope)*.

use std::sync::OnceLock;

use textsecure_core::curve::PublicKey;
use textsecure_core::prekey::IdentityKeyPair;
use textsecure_core::sealed_sender::{
    decrypt_to_usmc, encrypt_v1_with, encrypt_v2_with_m, sealed_sender_decrypt, unseal,
    MultiRecipient, RecipientDevice, SentMessage, UnidentifiedSenderMessageContent, UnsealOptions,
    REGISTRATION_ID_MASK,
};
use textsecure_core::store::{Address, InMemoryStore};

use super::support::{
    bob_address, fixed_alice_identity, fixed_bob, fixture_sender_certs, fixture_server_certs,
    snapshot, trust_root, Input, SplitMix, VALIDATION_TIME,
};
use super::vector_bobs;

/// The service id the v2 re-seal is addressed to.
const RECIPIENT_UUID: &str = "b0b00000-0000-4000-8000-00000000b0b0";

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
            assert_same_content(&back, u);
            resealed(u, &ours, store.registration_id());
        }
        let unsealed = unseal(env, &ours, &opts);
        if let Ok(u) = &unsealed {
            assert!(usmc.is_ok(), "unseal accepted what decrypt_to_usmc refused");
            if r.fixed {
                // Only the fixed Alice holds a certificate the fixed server signed, so her
                // re-sealed copy passes `unseal` too.
                let again = encrypt_v1_with(u, &fixed_alice_identity(), &ours.public_key, &mut SplitMix(3))
                    .expect("re-seal");
                let opened = unseal(&again, &ours, &opts).expect("re-sealed envelope unseals");
                assert_same_content(&opened, u);
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
                assert_eq!(
                    res.usmc.serialized(),
                    usmc.as_ref().map(|u| u.serialized()).unwrap_or_default()
                );
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

/// Same type, sender certificate, contents, hint and group id (an empty group id is none).
fn assert_same_content(a: &UnidentifiedSenderMessageContent, b: &UnidentifiedSenderMessageContent) {
    assert_eq!(a.msg_type(), b.msg_type());
    assert_eq!(a.sender(), b.sender());
    assert_eq!(a.contents(), b.contents());
    assert_eq!(a.content_hint(), b.content_hint());
    assert_eq!(
        a.group_id().filter(|g| !g.is_empty()),
        b.group_id().filter(|g| !g.is_empty())
    );
}

/// Rebuilds opened content with `UnidentifiedSenderMessageContent::new` (it must re-parse to the
/// same fields) and seals it again, sent by the fixed Alice, to `ours`: v1 and, to one device,
/// v2. Either opens to the same fields exactly when the sender certificate names Alice's
/// identity key (the recipient refuses a certificate that is not the sealing sender's).
fn resealed(u: &UnidentifiedSenderMessageContent, ours: &IdentityKeyPair, registration_id: u32) {
    let rebuilt = UnidentifiedSenderMessageContent::new(
        u.msg_type(),
        u.sender().clone(),
        u.contents().to_vec(),
        u.content_hint(),
        u.group_id().map(<[u8]>::to_vec),
    )
    .expect("opened content rebuilds");
    assert_same_content(&rebuilt, u);
    let back = UnidentifiedSenderMessageContent::deserialize(rebuilt.serialized())
        .expect("rebuilt content parses");
    assert_same_content(&back, u);
    assert_eq!(back.serialized(), rebuilt.serialized());

    let alice = fixed_alice_identity();
    let hers = u.sender().key() == &alice.public_key;
    let v1 = encrypt_v1_with(&rebuilt, &alice, &ours.public_key, &mut SplitMix(1))
        .expect("v1 seal");
    let v2 = encrypt_v2_with_m(
        &rebuilt,
        &alice,
        &[MultiRecipient {
            service_id: RECIPIENT_UUID.to_owned(),
            identity_key: ours.public_key,
            devices: vec![RecipientDevice {
                device_id: 1,
                registration_id: registration_id & u32::from(REGISTRATION_ID_MASK),
            }],
        }],
        &[],
        &[0x4d; 32],
    )
    .expect("v2 seal");
    let v2 = SentMessage::received_message_for_single_recipient(&v2)
        .expect("one-recipient v2 message has a received form");
    for sealed in [v1, v2] {
        match decrypt_to_usmc(&sealed, ours) {
            Ok(opened) => {
                assert!(hers, "opened under a certificate of another identity key");
                assert_same_content(&opened, u);
                assert_eq!(opened.serialized(), rebuilt.serialized());
            }
            Err(e) => assert!(!hers, "re-sealed content does not open: {e}"),
        }
    }
}
