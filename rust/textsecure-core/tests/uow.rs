//! Units of work: load a snapshot, plan without a store, commit with compare-and-swap.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use textsecure_core::address::Address;
use textsecure_core::group::DistributionKey;
use textsecure_core::message::CiphertextMessage;
use textsecure_core::prekey::{generate_bundle, BundleSpec, IdentityKeyPair};
use textsecure_core::session::SessionOptions;
use textsecure_core::store::InMemoryStore;
use textsecure_core::uow::{batch_needs, plan, plan_batch, ChangeSet, Conflict, Operation, Output};
use textsecure_core::Error;

fn party(reg: u32) -> InMemoryStore {
    InMemoryStore::new(IdentityKeyPair::generate(), reg)
}

/// Runs `op` on `store` the way every store does: snapshot, plan, apply (retrying a conflict).
fn run(store: &mut InMemoryStore, op: Operation) -> Result<Output, Error> {
    let op = op.canonicalize();
    let needs = op.needs()?;
    loop {
        let snap = store.snapshot(&needs);
        let (out, changes) = plan(&op, &snap)?;
        if store.apply(changes).is_ok() {
            return Ok(out);
        }
    }
}

fn bundle_into(
    store: &mut InMemoryStore,
    one_time: bool,
    kyber: bool,
) -> textsecure_core::prekey::PreKeyBundle {
    let nb = generate_bundle(
        &store.identity().clone(),
        store.registration_id(),
        &BundleSpec {
            device_id: 1,
            prekey_id: one_time.then_some(11),
            signed_prekey_id: 7,
            kyber_prekey_id: kyber.then_some(21),
            timestamp_ms: 1000,
        },
    )
    .unwrap();
    store.signed_prekeys.insert(7, nb.signed_prekey);
    if let Some(p) = nb.prekey {
        store.prekeys.insert(p.id, p);
    }
    if let Some(k) = nb.kyber_prekey {
        store.kyber_prekeys.insert(k.id, (k, false));
    }
    nb.bundle
}

fn encrypt_op(to: &Address, pt: &[u8]) -> Operation {
    Operation::Encrypt {
        remote: to.clone(),
        plaintext: pt.to_vec(),
        options: SessionOptions::default(),
    }
}

fn decrypt_op(from: &Address, m: CiphertextMessage) -> Operation {
    Operation::Decrypt {
        remote: from.clone(),
        message: m,
        options: SessionOptions::default(),
    }
}

fn message(out: Output) -> CiphertextMessage {
    match out {
        Output::Message(m) => m,
        other => panic!("not a message: {other:?}"),
    }
}

fn plaintext(out: Output) -> Vec<u8> {
    match out {
        Output::Plaintext(p) => p,
        other => panic!("not a plaintext: {other:?}"),
    }
}

fn session_bytes(s: &InMemoryStore, a: &Address) -> Vec<u8> {
    s.sessions.get(a).map(|r| r.serialize()).unwrap_or_default()
}

#[test]
fn conversation_through_units_of_work() {
    for (one_time, kyber) in [(true, false), (false, false), (true, true), (false, true)] {
        let (mut alice, mut bob) = (party(1), party(2));
        let (a, b) = (Address::new("alice", 1), Address::new("bob", 1));
        let bundle = bundle_into(&mut bob, one_time, kyber);
        run(
            &mut alice,
            Operation::ProcessBundle {
                remote: b.clone(),
                bundle,
                options: SessionOptions::default(),
            },
        )
        .unwrap();
        for round in 0..4u8 {
            let m = message(run(&mut alice, encrypt_op(&b, &[round; 9])).unwrap());
            assert_eq!(
                plaintext(run(&mut bob, decrypt_op(&a, m)).unwrap()),
                [round; 9]
            );
            let r = message(run(&mut bob, encrypt_op(&a, &[round; 3])).unwrap());
            assert_eq!(
                plaintext(run(&mut alice, decrypt_op(&b, r)).unwrap()),
                [round; 3]
            );
        }
        // The first PreKey message consumed the one-time prekeys, in one commit.
        assert!(bob.prekeys.is_empty());
        assert!(bob.kyber_prekeys.is_empty());
        assert_eq!(
            bob.used_base_keys.values().map(|s| s.len()).sum::<usize>(),
            usize::from(!one_time)
        );
    }
}

#[test]
fn a_stale_change_set_conflicts_and_changes_nothing() {
    let (mut alice, mut bob) = (party(1), party(2));
    let b = Address::new("bob", 1);
    let bundle = bundle_into(&mut bob, true, true);
    run(
        &mut alice,
        Operation::ProcessBundle {
            remote: b.clone(),
            bundle,
            options: SessionOptions::default(),
        },
    )
    .unwrap();
    // Two writers plan from the same snapshot: the second loses the race.
    let op = encrypt_op(&b, b"x");
    let needs = op.needs().unwrap();
    let snap = alice.snapshot(&needs);
    let (first, c1) = plan(&op, &snap).unwrap();
    let (second, c2) = plan(&op, &snap).unwrap();
    let before = alice.session_version(&b);
    alice.apply(c1).unwrap();
    let after_first = session_bytes(&alice, &b);
    assert_eq!(alice.apply(c2), Err(Conflict));
    assert_eq!(session_bytes(&alice, &b), after_first);
    assert_eq!(alice.session_version(&b), before + 1);
    // Both planned the same counter: only one of them was committed, so no fork.
    let (CiphertextMessage::PreKey(m1), CiphertextMessage::PreKey(m2)) =
        (message(first), message(second))
    else {
        panic!("expected PreKey messages")
    };
    assert_eq!(m1.message().counter(), m2.message().counter());
    // Planning again from a fresh snapshot continues the chain.
    let m3 = message(run(&mut alice, encrypt_op(&b, b"y")).unwrap());
    let CiphertextMessage::PreKey(m3) = m3 else {
        panic!()
    };
    assert_eq!(m3.message().counter(), m1.message().counter() + 1);
}

#[test]
fn a_failed_plan_returns_no_change_set() {
    let (mut alice, mut bob) = (party(1), party(2));
    let (a, b) = (Address::new("alice", 1), Address::new("bob", 1));
    let bundle = bundle_into(&mut bob, false, true);
    // A last-resort Kyber key stays after use; only the base-key record stops a replay.
    for (_, last_resort) in bob.kyber_prekeys.values_mut() {
        *last_resort = true;
    }
    run(
        &mut alice,
        Operation::ProcessBundle {
            remote: b.clone(),
            bundle,
            options: SessionOptions::default(),
        },
    )
    .unwrap();
    let m = message(run(&mut alice, encrypt_op(&b, b"hi")).unwrap());
    assert_eq!(
        plaintext(run(&mut bob, decrypt_op(&a, m.clone())).unwrap()),
        b"hi"
    );
    // A replay after the session is gone is refused by the base-key record (no one-time key).
    bob.delete_session(&a);
    let err = run(&mut bob, decrypt_op(&a, m)).unwrap_err();
    assert!(matches!(err, Error::InvalidMessage(_)), "{err:?}");
    assert!(bob.sessions.is_empty());
    assert_eq!(bob.kyber_last_resort_uses.len(), 1);
}

#[test]
fn snapshots_only_hold_what_was_needed() {
    let (mut alice, bob_addr) = (party(1), Address::new("bob", 1));
    let op = encrypt_op(&bob_addr, b"x");
    // A snapshot for another address lacks this one: the plan refuses instead of guessing.
    let other = encrypt_op(&Address::new("carol", 1), b"x").needs().unwrap();
    let snap = alice.snapshot(&other);
    assert!(plan(&op, &snap).is_err());
    assert!(matches!(run(&mut alice, op), Err(Error::NoSession(_))));
}

#[test]
fn canonical_spellings_share_one_session_and_one_lock() {
    let u = "9D0652A3-DCC3-4D11-975F-74D61598733F";
    let upper = Address::new(u, 1);
    let lower = Address::new(u.to_ascii_lowercase(), 1);
    let n1 = encrypt_op(&upper, b"").canonicalize().needs().unwrap();
    let n2 = encrypt_op(&lower, b"").canonicalize().needs().unwrap();
    assert_eq!(n1, n2);
    assert_eq!(
        n1.lock_keys(),
        vec![format!("session/{}.1", u.to_ascii_lowercase())]
    );
    let g = Operation::GroupDecrypt {
        sender: upper,
        key: DistributionKey::GroupId("g".into()),
        message: {
            let mut s = party(3);
            let me = Address::new("me", 1);
            let key = DistributionKey::GroupId("g".into());
            run(
                &mut s,
                Operation::CreateDistribution {
                    sender: me.clone(),
                    key: key.clone(),
                },
            )
            .unwrap();
            match run(
                &mut s,
                Operation::GroupEncrypt {
                    sender: me,
                    key,
                    plaintext: b"x".to_vec(),
                },
            )
            .unwrap()
            {
                Output::GroupMessage(m) => m,
                other => panic!("{other:?}"),
            }
        },
    }
    .canonicalize();
    assert_eq!(
        g.needs().unwrap().lock_keys(),
        vec![format!("sender_key/{}.1/legacy:g", u.to_ascii_lowercase())]
    );
}

#[test]
fn fanout_failures_change_nothing_for_their_peer() {
    let (mut alice, mut bob) = (party(1), party(2));
    let b = Address::new("bob", 1);
    let nobody = Address::new("nobody", 1);
    let bundle = bundle_into(&mut bob, true, false);
    run(
        &mut alice,
        Operation::ProcessBundle {
            remote: b.clone(),
            bundle,
            options: SessionOptions::default(),
        },
    )
    .unwrap();
    let out = run(
        &mut alice,
        Operation::Fanout {
            remotes: vec![nobody.clone(), b.clone(), b.clone()],
            plaintext: b"all".to_vec(),
            options: SessionOptions::default(),
        },
    )
    .unwrap();
    let Output::Fanout(results) = out else {
        panic!()
    };
    assert_eq!(results.len(), 2, "repeats are encrypted to once");
    assert!(matches!(results[0], Err(Error::NoSession(_))));
    assert!(results[1].is_ok());
    assert!(!alice.sessions.contains_key(&nobody));
}

#[test]
fn one_one_time_prekey_never_sets_up_two_sessions() {
    for kyber in [false, true] {
        let mut bob = party(2);
        let bundle = bundle_into(&mut bob, true, kyber);
        let b = Address::new("bob", 1);
        // Two senders use the same one-time prekey; bob plans both first messages from
        // snapshots taken before either commits, as two threads or processes would.
        let mut planned = Vec::new();
        for name in ["carol", "dave"] {
            let mut s = party(3);
            run(
                &mut s,
                Operation::ProcessBundle {
                    remote: b.clone(),
                    bundle: bundle.clone(),
                    options: SessionOptions::default(),
                },
            )
            .unwrap();
            let m = message(run(&mut s, encrypt_op(&b, b"x")).unwrap());
            let op = decrypt_op(&Address::new(name, 1), m);
            let snap = bob.snapshot(&op.needs().unwrap());
            planned.push(plan(&op, &snap).unwrap().1);
        }
        let second = planned.pop().unwrap();
        bob.apply(planned.pop().unwrap()).unwrap();
        assert_eq!(bob.apply(second), Err(Conflict));
        assert_eq!(bob.sessions.len(), 1);
    }
}

#[test]
fn empty_change_set_for_reads() {
    assert!(ChangeSet::default().is_empty());
}

#[test]
fn sealed_decrypt_honours_the_pq_ratchet_option() {
    use textsecure_core::curve::PrivateKey;
    use textsecure_core::sealed_sender::{
        self as ss, SenderCertificate, SenderCertificateParts, ServerCertificate,
    };
    use textsecure_core::session::PqRatchetPolicy;
    use textsecure_core::spqr;

    let a_uuid = "9d0652a3-dcc3-4d11-975f-74d61598733f";
    let a = Address::new(a_uuid, 1);
    let b = Address::new("bob", 1);
    let (mut alice, mut bob) = (party(1), party(2));
    let bundle = bundle_into(&mut bob, true, true);
    run(
        &mut alice,
        Operation::ProcessBundle {
            remote: b.clone(),
            bundle,
            options: SessionOptions::default(),
        },
    )
    .unwrap();
    // Alice behaves like a PQXDH peer without SPQR (libsignal 0.72 to 0.91): no field 5.
    alice
        .sessions
        .get_mut(&b)
        .and_then(|r| r.current.as_mut())
        .unwrap()
        .pq_ratchet = spqr::State::v0();

    let root = PrivateKey::generate();
    let server = PrivateKey::generate();
    let sc = ServerCertificate::new(1, &server.public_key(), &root).unwrap();
    let cert = SenderCertificate::new(
        SenderCertificateParts {
            sender_uuid: a_uuid,
            sender_e164: None,
            sender_device_id: 1,
            identity_key: &alice.identity().public_key,
            expiration: u64::MAX,
        },
        &sc,
        &server,
    )
    .unwrap();
    let sealed = match run(
        &mut alice,
        Operation::SealedEncrypt {
            remote: b.clone(),
            certificate: cert,
            plaintext: b"no spqr".to_vec(),
            content_hint: 0,
            group_id: None,
            options: SessionOptions::default(),
        },
    )
    .unwrap()
    {
        Output::Sealed(v) => v,
        other => panic!("{other:?}"),
    };
    let roots = [root.public_key()];
    let usmc = ss::unseal(
        &sealed,
        bob.identity(),
        &ss::UnsealOptions {
            trust_roots: &roots,
            timestamp: 1,
            known_servers: &[],
            local_address: None,
        },
    )
    .unwrap();
    let with = |policy| Operation::SealedDecrypt {
        usmc: usmc.clone(),
        options: SessionOptions {
            pq_ratchet: policy,
            ..SessionOptions::default()
        },
    };
    // REQUIRED (the default) refuses the SPQR-less session and stores nothing...
    assert!(run(&mut bob, with(PqRatchetPolicy::Required)).is_err());
    assert!(!bob.sessions.contains_key(&a));
    // ...PREFERRED accepts it.
    match run(&mut bob, with(PqRatchetPolicy::Preferred)).unwrap() {
        Output::SealedPlaintext(_, pt) => assert_eq!(pt, b"no spqr"),
        other => panic!("{other:?}"),
    }
}

/// Runs a batch the way every store does: one snapshot of everything, plan, one apply.
fn run_batch(store: &mut InMemoryStore, ops: &[Operation]) -> Vec<Result<Output, Error>> {
    let ops: Vec<Operation> = ops.iter().cloned().map(Operation::canonicalize).collect();
    let needs = batch_needs(&ops);
    let snap = store.snapshot(&needs);
    let (results, changes) = plan_batch(&ops, &snap);
    store.apply(changes).expect("nothing else writes");
    results
}

/// `n` senders with a session to `bob` from bundles with their own one-time prekeys (v3 or
/// v4 with a last-resort Kyber key shared by all), and each sender's first `per` messages.
fn senders(
    bob: &mut InMemoryStore,
    n: u32,
    per: u8,
    kyber_last_resort: bool,
) -> Vec<(Address, Vec<CiphertextMessage>)> {
    let b = Address::new("bob", 1);
    let nb = generate_bundle(
        &bob.identity().clone(),
        bob.registration_id(),
        &BundleSpec {
            device_id: 1,
            prekey_id: None,
            signed_prekey_id: 7,
            kyber_prekey_id: kyber_last_resort.then_some(99),
            timestamp_ms: 1000,
        },
    )
    .unwrap();
    bob.signed_prekeys.insert(7, nb.signed_prekey);
    if let Some(k) = nb.kyber_prekey {
        bob.kyber_prekeys.insert(k.id, (k, true));
    }
    (0..n)
        .map(|i| {
            let mut alice = party(100 + i);
            run(
                &mut alice,
                Operation::ProcessBundle {
                    remote: b.clone(),
                    bundle: nb.bundle.clone(),
                    options: SessionOptions::default(),
                },
            )
            .unwrap();
            let msgs = (0..per)
                .map(|k| message(run(&mut alice, encrypt_op(&b, &[k; 5])).unwrap()))
                .collect();
            (Address::new(format!("alice{i}"), 1), msgs)
        })
        .collect()
}

#[test]
fn a_batch_decrypts_each_session_in_order_on_every_core() {
    for kyber in [false, true] {
        let mut bob = party(2);
        let convs = senders(&mut bob, 12, 4, kyber);
        // interleaved: round k of every sender, then round k+1
        let mut ops = Vec::new();
        let mut want = Vec::new();
        for k in 0..4u8 {
            for (a, msgs) in &convs {
                ops.push(decrypt_op(a, msgs[usize::from(k)].clone()));
                want.push(vec![k; 5]);
            }
        }
        let got: Vec<Vec<u8>> = run_batch(&mut bob, &ops)
            .into_iter()
            .map(|r| plaintext(r.unwrap()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(bob.sessions.len(), 12);
        // a last-resort Kyber key is used by every sender and consumed by none
        assert_eq!(bob.kyber_last_resort_uses.len(), if kyber { 12 } else { 0 });
        assert_eq!(bob.kyber_prekeys.len(), usize::from(kyber));
        // the whole batch again: every item a duplicate, nothing changes
        let before: Vec<Vec<u8>> = convs.iter().map(|(a, _)| session_bytes(&bob, a)).collect();
        for r in run_batch(&mut bob, &ops) {
            assert!(r.is_err());
        }
        let after: Vec<Vec<u8>> = convs.iter().map(|(a, _)| session_bytes(&bob, a)).collect();
        assert_eq!(before, after);
    }
}

#[test]
fn a_failed_batch_item_is_rolled_back_alone() {
    let mut bob = party(2);
    let convs = senders(&mut bob, 2, 3, false);
    let (a0, m0) = &convs[0];
    let (a1, m1) = &convs[1];
    // sender 1's PreKey message replayed under sender 0's address (a different session and
    // identity), between good items: it fails (base key already used), alone
    let ops = vec![
        decrypt_op(a0, m0[0].clone()),
        decrypt_op(a1, m1[0].clone()),
        decrypt_op(a0, m1[0].clone()),
        decrypt_op(a0, m0[1].clone()),
        decrypt_op(a1, m1[0].clone()),
        decrypt_op(a1, m1[2].clone()),
    ];
    let mut results: Vec<Option<Result<Output, Error>>> =
        run_batch(&mut bob, &ops).into_iter().map(Some).collect();
    let mut take = |i: usize| results[i].take().unwrap();
    assert_eq!(plaintext(take(0).unwrap()), [0; 5]);
    assert_eq!(plaintext(take(1).unwrap()), [0; 5]);
    assert!(take(2).is_err());
    assert_eq!(plaintext(take(3).unwrap()), [1; 5]);
    assert!(take(4).is_err()); // a duplicate
    assert_eq!(plaintext(take(5).unwrap()), [2; 5]);
    // the batch committed once: base keys of both first messages, nothing of the failures
    assert_eq!(
        bob.used_base_keys.values().map(|s| s.len()).sum::<usize>(),
        2
    );
    // sender 1's skipped message 1 still decrypts
    let late = run_batch(&mut bob, &[decrypt_op(a1, m1[1].clone())]);
    assert_eq!(plaintext(late.into_iter().next().unwrap().unwrap()), [1; 5]);
}

#[test]
fn batch_needs_name_each_record_once() {
    let mut bob = party(2);
    let convs = senders(&mut bob, 3, 2, true);
    let ops: Vec<Operation> = convs
        .iter()
        .flat_map(|(a, msgs)| msgs.iter().map(|m| decrypt_op(a, m.clone())))
        .collect();
    let needs = batch_needs(&ops);
    assert_eq!(needs.sessions.len(), 3);
    assert_eq!(needs.identities.len(), 3);
    assert_eq!(needs.signed_prekeys, vec![7]);
    assert_eq!(needs.kyber_prekeys, vec![99]);
    assert_eq!(needs.base_keys.len(), 3);
    assert_eq!(needs.lock_keys().len(), 3);
}
