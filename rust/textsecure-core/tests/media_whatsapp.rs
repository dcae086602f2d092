//! WhatsApp media against the Baileys-made vectors (`../shared/vectors/whatsapp_media.json`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod shared_data;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use textsecure_core::attachments::whatsapp::{decrypt, encrypt, MediaKeys, MediaType};

fn b(v: &serde_json::Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn baileys_vectors() {
    let Some(doc) = shared_data::json("vectors/whatsapp_media.json") else {
        return;
    };
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 126);
    for c in cases {
        let mt = MediaType::from_name(c["media_type"].as_str().unwrap()).unwrap();
        assert_eq!(mt.hkdf_info(), c["hkdf_info"].as_str().unwrap());
        let mk = b(&c["media_key"]);
        let keys = MediaKeys::derive(&mk, mt).unwrap();
        assert_eq!(keys.iv.to_vec(), b(&c["iv"]));
        assert_eq!(keys.cipher_key.to_vec(), b(&c["cipher_key"]));
        assert_eq!(keys.mac_key.to_vec(), b(&c["mac_key"]));
        assert_eq!(keys.ref_key.to_vec(), b(&c["ref_key"]));
        let rule = &c["plaintext_rule"];
        let (mul, add) = (rule["mul"].as_u64().unwrap(), rule["add"].as_u64().unwrap());
        let n = c["plaintext_size"].as_u64().unwrap();
        let pt: Vec<u8> = (0..n).map(|i| ((i * mul + add) % 256) as u8).collect();
        if let Some(given) = c.get("plaintext").filter(|v| v.is_string()) {
            assert_eq!(b(given), pt);
        }
        let (enc, r) = encrypt(&mk, mt, &pt).unwrap();
        assert_eq!(enc, b(&c["enc"]), "{}", c["id"]);
        assert_eq!(r.file_sha256.to_vec(), b(&c["file_sha256"]));
        assert_eq!(r.file_enc_sha256.to_vec(), b(&c["file_enc_sha256"]));
        assert_eq!(r.file_length, c["file_length"].as_u64().unwrap());
        let back = decrypt(
            &mk,
            mt,
            &enc,
            Some(&r.file_sha256),
            Some(&r.file_enc_sha256),
        )
        .unwrap();
        assert_eq!(back, pt);
    }
}
