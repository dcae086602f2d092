//! Wycheproof known answers for the attachment primitives: AES-256-CBC/PKCS#7 through the
//! streaming CBC code, HMAC-SHA256 through the incremental MAC (its final digest is a plain HMAC).
//! Skips when `../shared/wycheproof` is absent (fails under `TEXTSECURE_STRICT=1`: `shared_data`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod shared_data;

use textsecure_core::attachments::cbc_stream::{pkcs7_data_len, CbcDecStream, CbcEncStream};
use textsecure_core::attachments::IncrementalMac;

fn load(name: &str) -> Option<serde_json::Value> {
    shared_data::json(&format!("wycheproof/{name}"))
}

fn h(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn aes_256_cbc_pkcs5() {
    let Some(doc) = load("aes_cbc_pkcs5_test.json") else {
        return;
    };
    let mut checked = 0;
    for g in doc["testGroups"].as_array().unwrap() {
        if g["keySize"].as_u64() != Some(256) {
            continue;
        }
        for t in g["tests"].as_array().unwrap() {
            let key: [u8; 32] = h(&t["key"]).try_into().unwrap();
            let iv: [u8; 16] = h(&t["iv"]).try_into().unwrap();
            let (msg, ct) = (h(&t["msg"]), h(&t["ct"]));
            let valid = t["result"] == "valid";
            if valid {
                for step in [1usize, 16, 1000] {
                    let mut e = CbcEncStream::new(&key, &iv);
                    let mut out = Vec::new();
                    for p in msg.chunks(step) {
                        e.update(p, &mut out);
                    }
                    e.finalize(&mut out);
                    assert_eq!(out, ct, "tcId {}", t["tcId"]);
                }
            }
            let mut pt = ct.clone();
            let ok = if pt.is_empty() || pt.len() % 16 != 0 {
                None
            } else {
                CbcDecStream::new(&key, &iv).decrypt_in_place(&mut pt);
                let last: [u8; 16] = pt[pt.len() - 16..].try_into().unwrap();
                pkcs7_data_len(&last).map(|k| pt.len() - 16 + k)
            };
            match ok {
                Some(n) => {
                    assert!(valid, "tcId {} accepted", t["tcId"]);
                    assert_eq!(&pt[..n], &msg[..]);
                }
                None => assert!(!valid, "tcId {} rejected", t["tcId"]),
            }
            checked += 1;
        }
    }
    assert!(checked > 50);
}

#[test]
fn hmac_sha256() {
    let Some(doc) = load("hmac_sha256_test.json") else {
        return;
    };
    let mut checked = 0;
    for g in doc["testGroups"].as_array().unwrap() {
        let tag_bytes = g["tagSize"].as_u64().unwrap() as usize / 8;
        for t in g["tests"].as_array().unwrap() {
            let (key, msg, tag) = (h(&t["key"]), h(&t["msg"]), h(&t["tag"]));
            let mut m = IncrementalMac::new(&key, 7).unwrap();
            m.update(&msg);
            let list = m.finalize();
            let full = &list[list.len() - 32..];
            let matches = full[..tag_bytes] == tag[..];
            assert_eq!(matches, t["result"] == "valid", "tcId {}", t["tcId"]);
            checked += 1;
        }
    }
    assert!(checked > 100);
}
