//! `ServerCertificate::deserialize` / `SenderCertificate::deserialize` (first input byte,
//! bit 0: sender) and validation against the fixed trust root at a time from the input.
//!
//! Checked: never panics; what parses keeps its exact bytes; re-created from its fields (signed
//! by the fixed root / server key) it parses to the same fields and validates; validation
//! passes only for certificate data the fixed root (and, for sender certificates, the fixed
//! server key) really signed (`support::fixture_*_certs`), never for a revoked key id, never
//! after the expiry, never under another root; a certificate valid at a time is valid at every
//! earlier time; one naming its server certificate by id validates only with that certificate
//! among the known ones (`known_servers`), and every sender certificate's fields re-signed by
//! reference to the valid / the revoked server id parse back the same and validate / do not.
//!
//! Input: flags ‖ u64 validation time ‖ certificate bytes.

use textsecure_core::sealed_sender::{
    CertificateSigner, SenderCertificate, SenderCertificateParts, ServerCertificate,
    REVOKED_SERVER_CERTIFICATE_KEY_IDS,
};

use super::support::{
    fixture_sender_certs, fixture_server_certs, sender_cert_by_reference, server_key, trust_root,
    unknown_signing_key, Input, SplitMix, SERVER_KEY_ID,
};

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let sender = input.u8() & 1 == 1;
    let time = input.u64();
    let bytes = input.rest();
    if sender {
        sender_certificate(bytes, time);
    } else {
        server_certificate(bytes);
    }
}

fn server_certificate(bytes: &[u8]) {
    let Ok(c) = ServerCertificate::deserialize(bytes) else {
        return;
    };
    assert_eq!(c.serialized(), bytes);
    let root = trust_root().public_key();
    let other = unknown_signing_key().public_key();
    if c.validate(&root).is_ok() {
        assert!(
            !REVOKED_SERVER_CERTIFICATE_KEY_IDS.contains(&c.key_id()),
            "a revoked server certificate validated"
        );
        assert!(
            fixture_server_certs()
                .iter()
                .any(|f| f.certificate() == c.certificate()),
            "a server certificate the root never signed validated"
        );
    }
    assert!(c.validate(&other).is_err(), "validated under an unknown root");
    assert_eq!(
        c.validate_with_trust_roots(&[other, root]).is_ok(),
        c.validate(&root).is_ok()
    );
    let again = ServerCertificate::new_with(c.key_id(), c.key(), &trust_root(), &mut SplitMix(1))
        .expect("re-created server certificate");
    let back = ServerCertificate::deserialize(again.serialized()).expect("re-parse");
    assert_eq!(back.key_id(), c.key_id());
    assert_eq!(back.key(), c.key());
    assert_eq!(
        back.validate(&root).is_ok(),
        !REVOKED_SERVER_CERTIFICATE_KEY_IDS.contains(&c.key_id())
    );
}

fn sender_certificate(bytes: &[u8], time: u64) {
    let Ok(c) = SenderCertificate::deserialize(bytes) else {
        return;
    };
    assert_eq!(c.serialized(), bytes);
    let root = trust_root().public_key();
    let other = unknown_signing_key().public_key();
    let known = fixture_server_certs();
    let valid = c.validate_with(&[root], time, known).is_ok();
    if valid {
        assert!(time <= c.expiration(), "an expired certificate validated");
        assert!(
            fixture_sender_certs()
                .iter()
                .any(|f| f.certificate() == c.certificate()),
            "a sender certificate the server never signed validated"
        );
        match c.signer() {
            CertificateSigner::Embedded(s) => assert!(s.validate(&root).is_ok()),
            CertificateSigner::Reference(id) => assert!(known
                .iter()
                .any(|k| k.key_id() == *id && k.validate(&root).is_ok())),
        }
        assert!(c.validate_with(&[root], 0, known).is_ok());
        assert!(c.validate_with(&[root], time / 2, known).is_ok());
    }
    if c.expiration() < u64::MAX {
        assert!(c.validate_with(&[root], c.expiration() + 1, known).is_err());
    }
    assert!(c.validate_with(&[other], time, known).is_err(), "validated under an unknown root");
    if c.server_certificate().is_some() {
        assert_eq!(c.validate(&root, time).is_ok(), valid);
    } else {
        assert!(
            c.validate(&root, time).is_err(),
            "validated by reference without known server certificates"
        );
        assert!(c.validate_with(&[root], time, &[]).is_err());
    }
    let again = SenderCertificate::new_with(
        SenderCertificateParts {
            sender_uuid: c.sender_uuid(),
            sender_e164: c.sender_e164(),
            sender_device_id: c.sender_device_id(),
            identity_key: c.key(),
            expiration: c.expiration(),
        },
        &known[0],
        &server_key(),
        &mut SplitMix(2),
    );
    if let Ok(again) = again {
        let back = SenderCertificate::deserialize(again.serialized()).expect("re-parse");
        assert_eq!(back.sender_uuid(), c.sender_uuid());
        assert_eq!(back.sender_e164(), c.sender_e164());
        assert_eq!(back.sender_device_id(), c.sender_device_id());
        assert_eq!(back.key(), c.key());
        assert_eq!(back.expiration(), c.expiration());
        assert!(back.validate(&root, c.expiration()).is_ok());
    }
    by_reference(&c);
}

/// `c`'s fields signed by the fixed server key, naming a known server certificate by id: it
/// parses to the same fields with that signer and validates (with the known certificates) only
/// for the valid id, never for the revoked one or without the known certificates.
fn by_reference(c: &SenderCertificate) {
    let root = trust_root().public_key();
    let known = fixture_server_certs();
    let parts = SenderCertificateParts {
        sender_uuid: c.sender_uuid(),
        sender_e164: c.sender_e164(),
        sender_device_id: c.sender_device_id(),
        identity_key: c.key(),
        expiration: c.expiration(),
    };
    for (id, ok) in [
        (SERVER_KEY_ID, true),
        (REVOKED_SERVER_CERTIFICATE_KEY_IDS[0], false),
    ] {
        let bytes = sender_cert_by_reference(&parts, id, &server_key());
        let back = SenderCertificate::deserialize(&bytes).expect("by-reference certificate parses");
        assert_eq!(back.serialized(), bytes);
        assert_eq!(back.signer(), &CertificateSigner::Reference(id));
        assert!(back.server_certificate().is_none());
        assert_eq!(back.sender_uuid(), c.sender_uuid());
        assert_eq!(back.sender_e164(), c.sender_e164());
        assert_eq!(back.sender_device_id(), c.sender_device_id());
        assert_eq!(back.key(), c.key());
        assert_eq!(back.expiration(), c.expiration());
        assert_eq!(
            back.validate_with(&[root], c.expiration(), known).is_ok(),
            ok
        );
        assert!(back.validate(&root, 0).is_err());
    }
}
