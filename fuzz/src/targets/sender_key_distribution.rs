//! `SenderKeyDistributionMessage::deserialize` / `deserialize_legacy` (first input byte,
//! bit 0: legacy): never panics; what parses keeps its exact bytes and re-encodes (our own
//! protobuf writer) to the same fields; processing it for the wrong distribution (other UUID,
//! other format) fails with the store unchanged; processing it for its own distribution (into a
//! receiver that already holds the fixed sender's key) succeeds, leaves its chain as the newest
//! state with its signing key (and its iteration unless the same chain was already known), at
//! most five states, and a second processing changes nothing.
//!
//! Input: flags ‖ message bytes.

use textsecure_core::group::{self, DistributionKey, MAX_SENDER_KEY_STATES};

use textsecure_core::store::Address;

use super::support::{
    assert_secrets_hidden, encode_skdm, group_receiver, group_sender_address, parse_skdm, sender_key_bytes, snapshot,
    Input, GROUP_ID,
};

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let legacy = input.u8() & 1 == 1;
    let bytes = input.rest();
    let Some(m) = parse_skdm(legacy, bytes) else {
        return;
    };
    assert_eq!(m.serialized(), bytes);
    assert_eq!(m.message_version(), 3);
    assert_eq!(m.is_legacy(), legacy);
    let again = encode_skdm(
        m.distribution_id(),
        m.chain_id(),
        m.iteration(),
        m.chain_key().expose(),
        &m.signing_key().serialize(),
    );
    let back = parse_skdm(legacy, &again).expect("re-encoded distribution parses");
    assert_eq!(back.distribution_id(), m.distribution_id());
    assert_eq!(back.chain_id(), m.chain_id());
    assert_eq!(back.iteration(), m.iteration());
    assert_eq!(back.chain_key().expose(), m.chain_key().expose());
    assert_eq!(back.signing_key(), m.signing_key());
    // Debug shows the public parts only, never the chain key.
    assert_secrets_hidden(
        &m,
        &[m.chain_key().expose().to_vec()],
        &format!("{:?}", m.signing_key()),
    );

    let from = group_sender_address();
    let mut store = group_receiver().clone();
    let own = match m.distribution_id() {
        Some(u) => DistributionKey::Uuid(u),
        None => DistributionKey::GroupId(GROUP_ID.to_owned()),
    };
    let mut wrong = vec![match m.distribution_id() {
        Some(u) => DistributionKey::GroupId(format!("{:02x}", u[0])),
        None => DistributionKey::Uuid([0; 16]),
    }];
    if let Some(mut u) = m.distribution_id() {
        u[15] ^= 1;
        wrong.push(DistributionKey::Uuid(u));
    }
    let before = snapshot(&store);
    for key in &wrong {
        assert!(group::process_distribution(&mut store, &from, key, &m).is_err());
        assert!(snapshot(&store) == before, "refused distribution changed the store");
    }
    let known = store
        .sender_keys
        .get(&(from.clone(), own.clone()))
        .and_then(|r| {
            r.states()
                .find(|s| s.chain_id() == m.chain_id() && s.signing_key() == m.signing_key())
                .map(|s| s.iteration())
        });
    group::process_distribution(&mut store, &from, &own, &m).expect("own distribution");
    let rec = &store.sender_keys[&(from.clone(), own.clone())];
    assert!(rec.states().len() <= MAX_SENDER_KEY_STATES);
    let newest = rec.states().next().expect("a state");
    assert_eq!(newest.chain_id(), m.chain_id());
    assert_eq!(newest.signing_key(), m.signing_key());
    assert!(!newest.has_private_key());
    assert_eq!(newest.iteration(), known.unwrap_or(m.iteration()));
    assert_eq!(
        rec.states().filter(|s| s.chain_id() == m.chain_id()).count(),
        1,
        "two states for one chain id"
    );
    let after = sender_key_bytes(&store, &from, &own);
    group::process_distribution(&mut store, &from, &own, &m).expect("again");
    assert_eq!(sender_key_bytes(&store, &from, &own), after, "reprocessing changed the record");

    // The receiver starts sending in the same distribution: a new chain of its own (with its
    // private key), in the same format, parsed back to the same fields, created once (a second
    // call returns the same message), and a message it encrypts decrypts at the first receiver.
    let me = Address::new("group-member", 1);
    let created = group::create_distribution(&mut store, &me, &own).expect("create");
    assert_eq!(created.is_legacy(), legacy);
    let parsed = parse_skdm(legacy, created.serialized()).expect("created distribution parses");
    assert_eq!(parsed.chain_id(), created.chain_id());
    assert_eq!(parsed.chain_key().expose(), created.chain_key().expose());
    assert_eq!(parsed.signing_key(), created.signing_key());
    let twice = group::create_distribution(&mut store, &me, &own).expect("create again");
    assert_eq!(twice.serialized(), created.serialized(), "a second create made a new chain");
    let mut other = group_receiver().clone();
    group::process_distribution(&mut other, &me, &own, &parsed).expect("process created");
    let sent = group::encrypt(&mut store, &me, &own, b"hello").expect("encrypt");
    let got = group::decrypt(&mut other, &me, &own, &sent).expect("decrypt");
    assert_eq!(got, b"hello");
}
