//! PreKeyBundle parts from hostile bytes (identity key, signed prekey and signature, one-time
//! prekey, Kyber prekey and signature), then `process_prekey_bundle` into a fresh store:
//! never panics; a failure leaves the store unchanged; a success gives a session whose first
//! message names exactly the bundle's prekeys.
//!
//! Input (see `encode`): registration id, device id, signed / one-time / Kyber prekey ids
//! (u32 LE), a flags byte (1: one-time prekey, 2: Kyber prekey, 4: a different identity is
//! already trusted), then six fields: identity key, signed prekey, its signature, one-time
//! prekey, Kyber public key, its signature.

use textsecure_core::curve::PublicKey;
use textsecure_core::kem;
use textsecure_core::message::CiphertextMessage;
use textsecure_core::prekey::{KyberBundlePart, PreKeyBundle};
use textsecure_core::session::{encrypt, process_prekey_bundle};
use textsecure_core::store::InMemoryStore;
use textsecure_core::Error;

use super::support::{bob_address, fixed_alice_identity, fixed_private, put_field, snapshot, Input};

/// This target's input for a bundle.
pub fn encode(b: &PreKeyBundle) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [
        b.registration_id,
        b.device_id,
        b.signed_prekey_id,
        b.prekey.map_or(0, |p| p.0),
        b.kyber.as_ref().map_or(0, |k| k.id),
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.push(u8::from(b.prekey.is_some()) | (u8::from(b.kyber.is_some()) << 1));
    put_field(&mut out, &b.identity_key.serialize());
    put_field(&mut out, &b.signed_prekey.serialize());
    put_field(&mut out, &b.signed_prekey_signature);
    put_field(&mut out, &b.prekey.map(|p| p.1.serialize()).unwrap_or([0; 33]));
    let kyber = b.kyber.as_ref();
    put_field(&mut out, &kyber.map(|k| k.public_key.serialize()).unwrap_or_default());
    put_field(&mut out, &kyber.map(|k| k.signature.clone()).unwrap_or_default());
    out
}

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let registration_id = input.u32();
    let device_id = input.u32();
    let signed_prekey_id = input.u32();
    let prekey_id = input.u32();
    let kyber_id = input.u32();
    let flags = input.u8();
    let Ok(identity_key) = PublicKey::deserialize(input.field()) else {
        return;
    };
    let Ok(signed_prekey) = PublicKey::deserialize(input.field()) else {
        return;
    };
    let signed_prekey_signature = input.field().to_vec();
    let prekey = PublicKey::deserialize(input.field()).ok();
    let kyber_public = kem::PublicKey::deserialize(input.field()).ok();
    let kyber_signature = input.field().to_vec();
    let bundle = PreKeyBundle {
        registration_id,
        device_id,
        identity_key,
        signed_prekey_id,
        signed_prekey,
        signed_prekey_signature,
        prekey: prekey.filter(|_| flags & 1 != 0).map(|k| (prekey_id, k)),
        kyber: kyber_public
            .filter(|_| flags & 2 != 0)
            .map(|public_key| KyberBundlePart {
                id: kyber_id,
                public_key,
                signature: kyber_signature,
            }),
    };
    let signatures_ok = bundle.verify_signatures().is_ok();

    let mut alice = InMemoryStore::new(fixed_alice_identity(), 7);
    let bob = bob_address();
    if flags & 4 != 0 {
        alice.trust(&bob, fixed_private(99).public_key());
    }
    let before = snapshot(&alice);
    match process_prekey_bundle(&mut alice, &bob, &bundle) {
        Err(e) => {
            assert!(snapshot(&alice) == before, "failed bundle changed the store");
            if !signatures_ok {
                assert!(matches!(e, Error::InvalidSignature(_)));
            }
        }
        Ok(()) => {
            assert!(signatures_ok, "bundle with a bad signature accepted");
            assert!(flags & 4 == 0, "bundle of an untrusted identity accepted");
            let version = alice.sessions[&bob].version();
            assert_eq!(version, Some(if bundle.kyber.is_some() { 4 } else { 3 }));
            let Ok(CiphertextMessage::PreKey(m)) = encrypt(&mut alice, &bob, b"hi") else {
                panic!("first message of a new session is not a PreKeySignalMessage");
            };
            assert_eq!(m.signed_pre_key_id(), bundle.signed_prekey_id);
            assert_eq!(m.pre_key_id(), bundle.prekey.map(|p| p.0));
            assert_eq!(m.kyber_pre_key_id(), bundle.kyber.as_ref().map(|k| k.id));
            assert_eq!(m.registration_id(), 7);
        }
    }
}
