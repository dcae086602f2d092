//! libsignal's known-answer vectors (tests/vectors/libsignal_kat.json) for the primitives.
//!
//! What the primitives alone can check: X25519 agreement, XEdDSA verification (with
//! libsignal's sign-bit convention), the chain-key / message-key KDF, the X3DH v3 secret
//! derivation, RFC 5869 HKDF, the incremental-MAC digest, AES-256-CTR and AES-256-CBC.
//! Session-level use of the X3DH and fingerprint vectors belongs to the ratchet tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use serde_json::Value;
use sha2::{Digest, Sha512};
use textsecure_core::crypto::{
    aes256_cbc_decrypt, aes256_cbc_encrypt, aes256_ctr32_apply, hkdf_sha256, hmac_sha256,
};
use textsecure_core::curve::{PrivateKey, PublicKey};

fn kat() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/libsignal_kat.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn h(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))).unwrap()
}

fn h32(v: &Value, key: &str) -> [u8; 32] {
    h(v, key).try_into().unwrap()
}

fn entries<'a>(doc: &'a Value, key: &str) -> &'a Vec<Value> {
    let a = doc[key]
        .as_array()
        .unwrap_or_else(|| panic!("missing {key}"));
    assert!(!a.is_empty(), "{key} is empty");
    a
}

#[test]
fn x25519_agreement() {
    let doc = kat();
    for v in entries(&doc, "x25519") {
        let alice = PrivateKey::deserialize(&h(v, "alice_private")).unwrap();
        let bob = PrivateKey::deserialize(&h(v, "bob_private")).unwrap();
        assert_eq!(alice.public_key().djb_bytes(), &h32(v, "alice_public"));
        assert_eq!(bob.public_key().djb_bytes(), &h32(v, "bob_public"));
        let shared = h32(v, "shared");
        let a = alice
            .agree(&PublicKey::from_djb_bytes(h32(v, "bob_public")))
            .unwrap();
        let b = bob
            .agree(&PublicKey::from_djb_bytes(h32(v, "alice_public")))
            .unwrap();
        assert_eq!(*a, shared);
        assert_eq!(*b, shared);
        // The 33-byte form round-trips.
        let ser = alice.public_key().serialize();
        assert_eq!(ser[0], 0x05);
        assert_eq!(
            PublicKey::deserialize_exact(&ser).unwrap(),
            alice.public_key()
        );
    }
}

/// The XEdDSA verification equation R == s·B − h·A with the Edwards key A of sign `sign`
/// (bit 255 of the signature masked off s), written against curve25519-dalek directly so it is
/// independent of `curve.rs`.
fn xeddsa_equation(u: &[u8; 32], msg: &[u8], sig: &[u8; 64], sign: u8) -> bool {
    let Some(a) = MontgomeryPoint(*u).to_edwards(sign) else {
        return false;
    };
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    s[31] &= 0x7f;
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
        return false;
    };
    let mut hasher = Sha512::new();
    hasher.update(&sig[..32]);
    hasher.update(a.compress().as_bytes());
    hasher.update(msg);
    let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    let r = EdwardsPoint::vartime_double_scalar_mul_basepoint(&(-k), &a, &s);
    r.compress().as_bytes() == &sig[..32]
}

/// A verifier that follows the XEdDSA paper strictly: A always has sign 0 and s must be
/// below 2^253, so bit 255 of the signature must be clear.
fn strict_xeddsa_verify(u: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    sig[63] & 0xe0 == 0 && xeddsa_equation(u, msg, sig, 0)
}

#[test]
fn xeddsa_signature_vector() {
    let doc = kat();
    for v in entries(&doc, "xeddsa") {
        let private = PrivateKey::deserialize(&h(v, "private")).unwrap();
        let u = h32(v, "public");
        assert_eq!(private.public_key().djb_bytes(), &u);
        let public = PublicKey::from_djb_bytes(u);
        let msg = h(v, "message");
        let sig: [u8; 64] = h(v, "signature").try_into().unwrap();

        assert!(
            public.verify_signature(&msg, &sig),
            "libsignal signature must verify"
        );
        assert!(public.verify_signature_multipart(&[&msg[..5], &msg[5..]], &sig));
        let serialized = h(&v["derived"], "public_serialized");
        assert_eq!(PublicKey::deserialize(&serialized).unwrap(), public);

        // The vector carries sign bit 1: a strict sign-0 verifier rejects it, while the same
        // equation with the transmitted sign accepts it. Ours must honour the bit.
        assert_eq!(sig[63] >> 7, 1);
        assert!(xeddsa_equation(&u, &msg, &sig, 1));
        assert!(!xeddsa_equation(&u, &msg, &sig, 0), "holds for sign 0 too?");
        assert!(
            !strict_xeddsa_verify(&u, &msg, &sig),
            "strict verifier should fail"
        );
        let mut cleared = sig;
        cleared[63] &= 0x7f;
        assert!(!strict_xeddsa_verify(&u, &msg, &cleared));
        assert!(!public.verify_signature(&msg, &cleared), "sign bit ignored");

        // Flipping bit 0 of any byte (libsignal's check), any bit of the first and last
        // bytes (R's encoding; s's top bits and the sign bit), or any message byte is rejected.
        let flips = (0..64)
            .map(|i| (i, 0))
            .chain((0..8).flat_map(|b| [(0, b), (63, b)]));
        for (i, bit) in flips {
            let mut bad = sig;
            bad[i] ^= 1 << bit;
            assert!(
                !public.verify_signature(&msg, &bad),
                "flip byte {i} bit {bit}"
            );
        }
        for i in 0..msg.len() {
            let mut bad = msg.clone();
            bad[i] ^= 1;
            assert!(!public.verify_signature(&bad, &sig), "message flip {i}");
        }
        assert!(!public.verify_signature(&msg, &sig[..63]));

        // Our signer uses the same convention: its signatures carry A's sign bit (1 here), and
        // they verify through the independent verifier with that sign.
        for _ in 0..16 {
            let ours = private.sign(&msg);
            assert_eq!(ours[63] >> 7, 1);
            assert!(public.verify_signature(&msg, &ours));
            assert!(xeddsa_equation(&u, &msg, &ours, 1));
        }
    }
}

#[test]
fn chain_key_derivation() {
    let doc = kat();
    for v in entries(&doc, "chain_key") {
        let ck = h(v, "chain_key");
        let seed = hmac_sha256(&ck, &[&[0x01]]);
        let next = hmac_sha256(&ck, &[&[0x02]]);
        let mut keys = [0u8; 80];
        hkdf_sha256(None, &seed, b"WhisperMessageKeys", &mut keys).unwrap();
        assert_eq!(keys[..32], h(v, "cipher_key")[..]);
        assert_eq!(keys[32..64], h(v, "mac_key")[..]);
        assert_eq!(next[..], h(v, "next_chain_key")[..]);
        // The values we derived and recorded (cross-checked with OpenSSL when recorded).
        let d = &v["derived"];
        assert_eq!(seed[..], h(d, "message_key_seed")[..]);
        assert_eq!(keys[64..], h(d, "iv")[..]);
        let seed1 = hmac_sha256(&next, &[&[0x01]]);
        hkdf_sha256(None, &seed1, b"WhisperMessageKeys", &mut keys).unwrap();
        assert_eq!(seed1[..], h(d, "next_message_key_seed")[..]);
        assert_eq!(keys[..32], h(d, "next_cipher_key")[..]);
        assert_eq!(keys[32..64], h(d, "next_mac_key")[..]);
        assert_eq!(keys[64..], h(d, "next_iv")[..]);
    }
}

/// The X3DH v3 secret (no one-time prekey) through `agree` and `hkdf_sha256` only.
#[test]
fn x3dh_v3_key_derivation() {
    let doc = kat();
    let x = &doc["x3dh_v3"];
    let k = &x["keys"];
    let private = |n: &str| PrivateKey::deserialize(&h(k, n)).unwrap();
    let public = |n: &str| PublicKey::deserialize_exact(&h(k, n)).unwrap();
    let derive = |dhs: [[u8; 32]; 3]| {
        let mut ikm = vec![0xffu8; 32];
        for d in dhs {
            ikm.extend_from_slice(&d);
        }
        let mut out = [0u8; 64];
        hkdf_sha256(None, &ikm, b"WhisperText", &mut out).unwrap();
        out
    };

    let (spk_b, ik_b) = (
        private("bob_signed_prekey_private"),
        private("bob_identity_private"),
    );
    let bob = derive([
        *spk_b.agree(&public("alice_identity_public")).unwrap(),
        *ik_b.agree(&public("alice_base_public")).unwrap(),
        *spk_b.agree(&public("alice_base_public")).unwrap(),
    ]);
    assert_eq!(bob[32..], h(&x["bob"], "expected_sender_chain_key")[..]);
    assert_eq!(bob[..32], h(&x["bob"]["derived"], "root_key")[..]);

    let (ik_a, ek_a) = (
        private("alice_identity_private"),
        private("alice_base_private"),
    );
    let alice = derive([
        *ik_a.agree(&public("bob_signed_prekey_public")).unwrap(),
        *ek_a.agree(&public("bob_identity_public")).unwrap(),
        *ek_a.agree(&public("bob_signed_prekey_public")).unwrap(),
    ]);
    assert_eq!(
        alice[32..],
        h(&x["alice"], "expected_receiver_chain_key")[..]
    );
    assert_eq!(alice[..32], h(&x["alice"]["derived"], "x3dh_root_key")[..]);

    // The identity and signed-prekey pairs are consistent; alice_base is not (see the JSON).
    assert_eq!(ik_b.public_key(), public("bob_identity_public"));
    assert_eq!(spk_b.public_key(), public("bob_signed_prekey_public"));
    assert_eq!(ik_a.public_key(), public("alice_identity_public"));
    assert_ne!(ek_a.public_key(), public("alice_base_public"));
}

#[test]
fn hkdf_rfc5869() {
    let doc = kat();
    for v in entries(&doc, "hkdf_rfc5869") {
        let (ikm, salt, info) = (h(v, "ikm"), h(v, "salt"), h(v, "info"));
        let mut okm = vec![0u8; usize::try_from(v["length"].as_u64().unwrap()).unwrap()];
        hkdf_sha256(Some(&salt), &ikm, &info, &mut okm).unwrap();
        assert_eq!(okm, h(v, "okm"), "{}", v["source"]);
        assert_eq!(hmac_sha256(&salt, &[&ikm])[..], h(v, "prk")[..], "PRK");
        if salt.is_empty() {
            let mut okm2 = vec![0u8; okm.len()];
            hkdf_sha256(None, &ikm, &info, &mut okm2).unwrap();
            assert_eq!(okm2, okm);
        }
    }
}

#[test]
fn incremental_mac_digest() {
    let doc = kat();
    for v in entries(&doc, "incremental_mac") {
        let (key, input) = (h(v, "key"), h(v, "input"));
        let parts: String = v["input_parts_text"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(parts.as_bytes(), &input[..]);
        let chunk = usize::try_from(v["chunk_size"].as_u64().unwrap()).unwrap();
        let mut ends: Vec<usize> = (chunk..input.len()).step_by(chunk).collect();
        ends.push(input.len());
        let digest: Vec<u8> = ends
            .iter()
            .flat_map(|&end| hmac_sha256(&key, &[&input[..end]]))
            .collect();
        assert_eq!(digest, h(v, "digest"));
    }
}

#[test]
fn aes256_ctr32_vectors() {
    let doc = kat();
    for v in entries(&doc, "aes256_ctr32") {
        let key = h32(v, "key");
        let nonce: [u8; 16] = h(v, "nonce").try_into().unwrap();
        let mut data = h(v, "plaintext");
        aes256_ctr32_apply(&key, &nonce, &mut data);
        assert_eq!(data, h(v, "ciphertext"), "{}", v["source"]);
        aes256_ctr32_apply(&key, &nonce, &mut data);
        assert_eq!(data, h(v, "plaintext"));
    }
}

#[test]
fn aes256_cbc_vector() {
    let doc = kat();
    for v in entries(&doc, "aes256_cbc") {
        let key = h32(v, "key");
        let iv: [u8; 16] = h(v, "iv").try_into().unwrap();
        let (pt, ct) = (h(v, "plaintext"), h(v, "ciphertext"));
        assert_eq!(aes256_cbc_encrypt(&key, &iv, &pt), ct);
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &ct).unwrap(), pt);
        assert!(aes256_cbc_decrypt(&key, &iv, &pt).is_err());
        let ct_as_iv: [u8; 16] = ct[..16].try_into().unwrap();
        assert!(aes256_cbc_decrypt(&key, &ct_as_iv, &ct).is_err());
        let bad_iv: [u8; 16] = h(v, "bad_iv").try_into().unwrap();
        assert_eq!(
            aes256_cbc_decrypt(&key, &bad_iv, &ct).unwrap(),
            h(v, "plaintext_with_bad_iv")
        );
    }
}

/// The fingerprint vectors are consumed by the fingerprint tests; here only the recorded
/// scannable encodings are checked for internal consistency.
#[test]
fn fingerprint_vectors_are_consistent() {
    let doc = kat();
    for v in entries(&doc, "fingerprint") {
        let ver = u8::try_from(v["version"].as_u64().unwrap()).unwrap();
        let (a, b) = (
            h(&v["derived"], "alice_hash_prefix32"),
            h(&v["derived"], "bob_hash_prefix32"),
        );
        let enc = |l: &[u8], r: &[u8]| {
            let mut e = vec![0x08, ver, 0x12, 0x22, 0x0a, 0x20];
            e.extend_from_slice(l);
            e.extend_from_slice(&[0x1a, 0x22, 0x0a, 0x20]);
            e.extend_from_slice(r);
            e
        };
        assert_eq!(enc(&a, &b), h(v, "alice_scannable"));
        assert_eq!(enc(&b, &a), h(v, "bob_scannable"));
        assert_eq!(v["displayable"].as_str().unwrap().len(), 60);
    }
}
