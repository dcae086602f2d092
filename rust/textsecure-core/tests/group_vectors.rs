//! Sender-key vectors from ../shared/vectors (made by libsignal-client 0.103.0 and
//! python-axolotl 0.2.3): `group_in_order.json`, `group_out_of_order.json`,
//! `axolotl_group_legacy.json`. Skipped (with a note) when the shared folder is absent; under
//! `TEXTSECURE_STRICT=1` that fails (`shared_data`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod shared_data;

use base64::Engine as _;
use serde_json::Value;
use textsecure_core::group::{
    self, DistributionKey, SenderKeyDistributionMessage, SenderKeyMessage,
};
use textsecure_core::prekey::IdentityKeyPair;
use textsecure_core::store::{Address, InMemoryStore};
use textsecure_core::Error;

fn load(name: &str) -> Option<Value> {
    shared_data::json(&format!("vectors/{name}"))
}

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

fn uuid_bytes(s: &str) -> [u8; 16] {
    hex::decode(s.replace('-', "")).unwrap().try_into().unwrap()
}

fn replay(name: &str) {
    let Some(doc) = load(name) else { return };
    let legacy = doc["format"].as_str() == Some("legacy");
    let key = if legacy {
        DistributionKey::GroupId(doc["group_id"].as_str().unwrap().to_owned())
    } else {
        DistributionKey::Uuid(uuid_bytes(doc["distribution_id"].as_str().unwrap()))
    };
    let sender = Address::new(
        doc["sender"]["name"].as_str().unwrap(),
        doc["sender"]["device_id"].as_u64().unwrap() as u32,
    );
    let mut store = InMemoryStore::new(IdentityKeyPair::generate(), 7);
    let skdm_bytes = b64(&doc["skdm"]);
    let skdm = if legacy {
        SenderKeyDistributionMessage::deserialize_legacy(&skdm_bytes).unwrap()
    } else {
        SenderKeyDistributionMessage::deserialize(&skdm_bytes).unwrap()
    };
    assert_eq!(skdm.serialized(), &skdm_bytes[..]);
    group::process_distribution(&mut store, &sender, &key, &skdm).unwrap();
    let steps = doc["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    for (n, step) in steps.iter().enumerate() {
        let body = b64(&step["body"]);
        let msg = if legacy {
            SenderKeyMessage::deserialize_legacy(&body).unwrap()
        } else {
            SenderKeyMessage::deserialize(&body).unwrap()
        };
        assert_eq!(
            msg.iteration() as u64,
            step["header"]["iteration"].as_u64().unwrap()
        );
        let result = group::decrypt(&mut store, &sender, &key, &msg);
        match step["expect_error"].as_str() {
            Some("duplicate") => assert!(
                matches!(result, Err(Error::DuplicateMessage { .. })),
                "{name} step {n}: {result:?}"
            ),
            Some(other) => panic!("unknown expectation {other}"),
            None => assert_eq!(result.unwrap(), b64(&step["plaintext"]), "{name} step {n}"),
        }
    }
}

#[test]
fn group_in_order() {
    replay("group_in_order.json");
}

#[test]
fn group_out_of_order() {
    replay("group_out_of_order.json");
}

#[test]
fn axolotl_group_legacy() {
    replay("axolotl_group_legacy.json");
}
