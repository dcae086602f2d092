//! Wycheproof vectors (../shared/wycheproof, Apache-2.0) run against `crypto` and `curve`.
//!
//! The vectors live outside the repository; without them every test prints why it skipped and
//! passes (under `TEXTSECURE_STRICT=1` it fails: `shared_data`). Each family asserts that it ran more than zero vectors, so a renamed file or a
//! changed schema cannot turn the suite into a silent no-op.
//!
//! How Wycheproof's `result` is read here:
//!
//! * X25519 (`xdh_comp_schema_v1`): every case must compute RFC 7748's output, except that
//!   `PrivateKey::agree` rejects an all-zero shared secret (libsignal does the same). So:
//!   * `valid` → `agree` must succeed and equal `shared`;
//!   * `acceptable` with an all-zero `shared` (flag `ZeroSharedSecret`, low-order public
//!     keys) → `agree` must fail with `Error::InvalidKey`;
//!   * any other `acceptable` (twist points, non-canonical u ≥ p, bit 255 set, …) → `agree`
//!     must succeed and equal `shared` (X25519 masks bit 255 and reduces u mod p);
//!   * `invalid` → `agree` must fail (the current file has none).
//!
//!   In addition, keys flagged `LowOrderPublic` or `NonCanonicalPublic` must fail
//!   `PublicKey::is_canonical` (libsignal's check on an incoming base key).
//! * HKDF: `valid` → equal `okm`; `invalid` (`SizeTooLarge`, L > 255·32) → `Err`.
//! * HMAC: the tag may be truncated (`tagSize` 128): the first `tagSize/8` bytes of our tag are
//!   compared, in constant time, with the vector's tag. `valid` → equal; `invalid` → differ.
//! * AES-CBC-PKCS5: only `keySize` 256 groups (our API is AES-256). `valid` → encryption gives
//!   `ct` and decryption gives `msg`; `invalid` (bad or missing padding) → decryption fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod shared_data;

use serde_json::Value;
use textsecure_core::crypto::{
    aes256_cbc_decrypt, aes256_cbc_encrypt, ct_eq, hkdf_sha256, hmac_sha256,
};
use textsecure_core::curve::{PrivateKey, PublicKey};
use textsecure_core::Error;

/// Loads `shared/wycheproof/<name>`, or prints why not and returns `None` (panics instead
/// under `TEXTSECURE_STRICT=1`).
fn load(name: &str) -> Option<Value> {
    shared_data::json(&format!("wycheproof/{name}"))
}

fn hexf(t: &Value, key: &str) -> Vec<u8> {
    hex::decode(t[key].as_str().unwrap_or_else(|| panic!("missing {key}"))).unwrap()
}

fn flags(t: &Value) -> Vec<&str> {
    t["flags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn groups(doc: &Value) -> &Vec<Value> {
    doc["testGroups"].as_array().unwrap()
}

fn tests(group: &Value) -> &Vec<Value> {
    group["tests"].as_array().unwrap()
}

#[test]
fn wycheproof_x25519() {
    let Some(doc) = load("x25519_test.json") else {
        return;
    };
    let (mut ran, mut zero_rejected, mut acceptable_computed) = (0usize, 0usize, 0usize);
    for group in groups(&doc) {
        assert_eq!(group["curve"], "curve25519");
        for t in tests(group) {
            let id = &t["tcId"];
            let result = t["result"].as_str().unwrap();
            let private = PrivateKey::deserialize(&hexf(t, "private")).unwrap();
            let u: [u8; 32] = hexf(t, "public").try_into().unwrap();
            let public = PublicKey::from_djb_bytes(u);
            let shared = hexf(t, "shared");
            let fl = flags(t);
            let all_zero = shared.iter().all(|&b| b == 0);
            assert_eq!(
                all_zero,
                fl.contains(&"ZeroSharedSecret"),
                "tc {id}: ZeroSharedSecret flag disagrees with the shared value"
            );
            let got = private.agree(&public);
            match result {
                "valid" | "acceptable" if all_zero => {
                    assert_eq!(
                        got.map(|s| *s),
                        Err(Error::InvalidKey("agreement with a low-order public key")),
                        "tc {id}: an all-zero shared secret must be rejected"
                    );
                    zero_rejected += 1;
                }
                "valid" | "acceptable" => {
                    let got = got.unwrap_or_else(|e| panic!("tc {id} ({result}): {e}"));
                    assert_eq!(&got[..], &shared[..], "tc {id} ({result}) {fl:?}");
                    if result == "acceptable" {
                        acceptable_computed += 1;
                    }
                }
                "invalid" => assert!(got.is_err(), "tc {id}: invalid case accepted"),
                other => panic!("tc {id}: unknown result {other}"),
            }
            if fl.contains(&"LowOrderPublic") || fl.contains(&"NonCanonicalPublic") {
                assert!(
                    !public.is_canonical(),
                    "tc {id}: {fl:?} key passed is_canonical"
                );
            }
            ran += 1;
        }
    }
    eprintln!(
        "x25519: ran {ran} vectors ({zero_rejected} all-zero secrets rejected, \
         {acceptable_computed} 'acceptable' computed)"
    );
    assert!(ran > 0 && zero_rejected > 0 && acceptable_computed > 0);
}

#[test]
fn wycheproof_hkdf_sha256() {
    let Some(doc) = load("hkdf_sha256_test.json") else {
        return;
    };
    let (mut ran, mut rejected) = (0usize, 0usize);
    for group in groups(&doc) {
        for t in tests(group) {
            let id = &t["tcId"];
            let size = usize::try_from(t["size"].as_u64().unwrap()).unwrap();
            let (ikm, salt, info) = (hexf(t, "ikm"), hexf(t, "salt"), hexf(t, "info"));
            let mut out = vec![0u8; size];
            let r = hkdf_sha256(Some(&salt), &ikm, &info, &mut out);
            match t["result"].as_str().unwrap() {
                "valid" => {
                    r.unwrap_or_else(|e| panic!("tc {id}: {e}"));
                    assert_eq!(out, hexf(t, "okm"), "tc {id}");
                    // An empty salt and an absent salt are the same thing in RFC 5869.
                    if salt.is_empty() {
                        let mut out2 = vec![0u8; size];
                        hkdf_sha256(None, &ikm, &info, &mut out2).unwrap();
                        assert_eq!(out2, out, "tc {id}: None salt");
                    }
                }
                "invalid" => {
                    assert!(r.is_err(), "tc {id}: invalid size {size} accepted");
                    rejected += 1;
                }
                other => panic!("tc {id}: unexpected result {other}"),
            }
            ran += 1;
        }
    }
    eprintln!("hkdf-sha256: ran {ran} vectors ({rejected} rejected as invalid)");
    assert!(ran > 0 && rejected > 0);
}

#[test]
fn wycheproof_hmac_sha256() {
    let Some(doc) = load("hmac_sha256_test.json") else {
        return;
    };
    let (mut ran, mut truncated, mut invalid) = (0usize, 0usize, 0usize);
    for group in groups(&doc) {
        let tag_bytes = usize::try_from(group["tagSize"].as_u64().unwrap()).unwrap() / 8;
        assert!((1..=32).contains(&tag_bytes));
        for t in tests(group) {
            let id = &t["tcId"];
            let (key, msg, tag) = (hexf(t, "key"), hexf(t, "msg"), hexf(t, "tag"));
            assert_eq!(tag.len(), tag_bytes, "tc {id}");
            let ours = hmac_sha256(&key, &[&msg]);
            let equal = ct_eq(&ours[..tag_bytes], &tag);
            match t["result"].as_str().unwrap() {
                "valid" => assert!(equal, "tc {id}: tag mismatch"),
                "invalid" => {
                    assert!(!equal, "tc {id}: modified tag accepted");
                    invalid += 1;
                }
                other => panic!("tc {id}: unexpected result {other}"),
            }
            // Split input must give the same MAC as one part.
            let mid = msg.len() / 2;
            assert_eq!(hmac_sha256(&key, &[&msg[..mid], &msg[mid..]]), ours);
            if tag_bytes < 32 {
                truncated += 1;
            }
            ran += 1;
        }
    }
    eprintln!(
        "hmac-sha256: ran {ran} vectors ({truncated} with truncated tags, {invalid} invalid)"
    );
    assert!(ran > 0 && truncated > 0 && invalid > 0);
}

#[test]
fn wycheproof_aes_cbc_pkcs5() {
    let Some(doc) = load("aes_cbc_pkcs5_test.json") else {
        return;
    };
    let (mut ran, mut skipped, mut rejected) = (0usize, 0usize, 0usize);
    for group in groups(&doc) {
        if group["keySize"].as_u64() != Some(256) || group["ivSize"].as_u64() != Some(128) {
            skipped += tests(group).len();
            continue;
        }
        for t in tests(group) {
            let id = &t["tcId"];
            let key: [u8; 32] = hexf(t, "key").try_into().unwrap();
            let iv: [u8; 16] = hexf(t, "iv").try_into().unwrap();
            let (msg, ct) = (hexf(t, "msg"), hexf(t, "ct"));
            match t["result"].as_str().unwrap() {
                "valid" => {
                    assert_eq!(aes256_cbc_encrypt(&key, &iv, &msg), ct, "tc {id}: encrypt");
                    let pt = aes256_cbc_decrypt(&key, &iv, &ct)
                        .unwrap_or_else(|e| panic!("tc {id}: decrypt: {e}"));
                    assert_eq!(pt, msg, "tc {id}: decrypt");
                }
                "invalid" => {
                    let r = aes256_cbc_decrypt(&key, &iv, &ct);
                    assert!(
                        matches!(r, Err(Error::InvalidMessage(_))),
                        "tc {id}: {:?} accepted: {r:?}",
                        flags(t)
                    );
                    rejected += 1;
                }
                other => panic!("tc {id}: unexpected result {other}"),
            }
            ran += 1;
        }
    }
    eprintln!(
        "aes-256-cbc-pkcs5: ran {ran} vectors ({rejected} rejected), skipped {skipped} \
         with 128/192-bit keys"
    );
    assert!(ran > 0 && rejected > 0);
}
