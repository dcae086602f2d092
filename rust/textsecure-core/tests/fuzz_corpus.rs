//! Replays every committed fuzz input through its target's logic, without libFuzzer (the
//! `run_corpus` idea of vodozemac): `fuzz/corpus/<target>/*` (the minimized corpora) and
//! `fuzz/regressions/<target>/*` (inputs that once found a bug). The target logic is the fuzz
//! crate's own (`fuzz/src/targets/`), compiled here through `#[path]`.
//!
//! In unoptimized builds the corpora of [`SLOW_IN_DEBUG`] (e.g. `conversation`: each input sets
//! up several sessions) are sampled: a deterministic share of at most [`DEBUG_SAMPLE`] files;
//! optimized builds (`make fuzz-ci`, `make fuzz`) replay everything.
//! Regressions are always replayed in full.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` (re)writes the seeds that come from
//! our own tests; `fuzz/tools/seeds_from_vectors.py` writes those from the interop vectors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    dead_code
)]

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/targets/mod.rs"]
mod targets;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Most corpus inputs of a [`SLOW_IN_DEBUG`] target replayed by an unoptimized build.
const DEBUG_SAMPLE: usize = 24;

/// Targets whose inputs are slow without optimization (sessions set up, long sender-key or
/// SPQR chains stepped, envelopes opened): sampled in debug builds.
const SLOW_IN_DEBUG: &[&str] = &[
    "conversation",
    "conversation_uow",
    "group_decrypt",
    "sealed_sender_envelope",
    "spqr_message",
];

#[test]
fn corpora_and_regressions_replay() {
    let mut total = 0;
    for (name, run) in targets::ALL {
        let mut corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "target {name} has no committed corpus");
        if cfg!(debug_assertions) && SLOW_IN_DEBUG.contains(name) && corpus.len() > DEBUG_SAMPLE {
            let step = corpus.len().div_ceil(DEBUG_SAMPLE);
            corpus = corpus.into_iter().step_by(step).collect();
        }
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        let t = std::time::Instant::now();
        for path in corpus.iter().chain(&regressions) {
            let data = fs::read(path).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{name}: {} fails", path.display());
            total += 1;
        }
        eprintln!(
            "{name}: {} inputs in {:.1} s",
            corpus.len() + regressions.len(),
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!("replayed {total} fuzz inputs");
}

#[test]
fn every_target_is_wired() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let names: Vec<&str> = targets::ALL.iter().map(|(n, _)| *n).collect();
    for name in &names {
        let stub = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let src = fs::read_to_string(&stub).unwrap_or_default();
        assert!(
            src.contains(&format!("targets::{name}::run")),
            "{} must call targets::{name}::run",
            stub.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
    for sub in ["fuzz_targets", "corpus", "regressions"] {
        let Ok(rd) = fs::read_dir(fuzz_dir().join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            if stem.starts_with('.') || stem == "README" {
                continue;
            }
            assert!(
                names.contains(&stem.as_str()),
                "{} belongs to no registered target",
                p.display()
            );
        }
    }
}

/// The Bobs embedded from the interop vectors really are those files' receivers: the first
/// message of each file's seed decrypts.
#[test]
fn vector_receivers_decrypt_their_seeds() {
    use targets::support::{alice_address, receiver, Input};
    use textsecure_core::session::{decrypt_with, PqRatchetPolicy, SessionOptions};
    let opts = SessionOptions {
        local_address: None,
        pq_ratchet: PqRatchetPolicy::Preferred,
    };
    let mut ok = [false; 5];
    for path in files(&fuzz_dir().join("corpus/session_decrypt")) {
        let data = fs::read(&path).unwrap();
        let mut input = Input::new(&data);
        let which = input.u8();
        if which == 0 || which > 4 {
            continue;
        }
        let mut store = receiver(which).clone();
        let kind = input.u8();
        if let Some(m) = targets::session_decrypt::parse(kind, input.field()) {
            ok[usize::from(which)] |= decrypt_with(&mut store, &alice_address(), &m, &opts).is_ok();
        }
    }
    assert_eq!(
        ok[1..],
        [true; 4],
        "a vector receiver decrypts none of its messages"
    );
}

/// Writes the seeds that come from our own code (fixed parties, records, keys, blobs).
#[test]
#[ignore = "writes fuzz/corpus; run by hand when the seeds change"]
fn write_seeds() {
    seeds::write_all(&fuzz_dir().join("corpus"));
}

mod seeds {
    use std::collections::HashSet;
    use std::fs;
    use std::path::Path;

    use sha2::{Digest, Sha256};
    use textsecure_core::curve::PrivateKey;
    use textsecure_core::kem;
    use textsecure_core::message::{
        CiphertextMessage, PreKeyParts, PreKeySignalMessage, SignalMessage, SignalMessageParts,
    };
    use textsecure_core::prekey::{
        IdentityKeyPair, KyberPreKeyRecord, PreKeyRecord, SignedPreKeyRecord,
    };
    use textsecure_core::session::{decrypt, encrypt, process_prekey_bundle};
    use textsecure_core::store::InMemoryStore;

    use super::targets::support::{
        alice_address, bob_address, fixed_alice_identity, fixed_bob, put_field, SplitMix,
    };
    use super::targets::{attachment_signal, attachment_whatsapp, prekey_bundle};

    fn put(root: &Path, target: &str, data: &[u8]) {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap();
        let name: String = Sha256::digest(data)[..20]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        fs::write(dir.join(name), data).unwrap();
    }

    fn message_input(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![kind];
        put_field(&mut v, body);
        v
    }

    pub(super) fn write_all(root: &Path) {
        let bob = fixed_bob();
        // Fixed Alice to fixed Bob, each kind of bundle: PQXDH / X3DH, with / without one-time
        // prekey.
        for (kyber, otk) in [(true, true), (true, false), (false, true), (false, false)] {
            let mut bundle = bob.bundle.clone();
            if !kyber {
                bundle.kyber = None;
            }
            if !otk {
                bundle.prekey = None;
            }
            put(root, "prekey_bundle", &prekey_bundle::encode(&bundle));
            let mut alice = InMemoryStore::new(fixed_alice_identity(), 7);
            process_prekey_bundle(&mut alice, &bob_address(), &bundle).unwrap();
            let msgs: Vec<CiphertextMessage> = (0..4u8)
                .map(|i| encrypt(&mut alice, &bob_address(), &[b'm', i]).unwrap())
                .collect();
            for m in &msgs {
                let CiphertextMessage::PreKey(p) = m else {
                    unreachable!()
                };
                put(root, "prekey_signal_message", p.serialized());
                put(root, "signal_message", p.message().serialized());
                if let Some(ct) = p.kyber_ciphertext() {
                    put(root, "kem_decapsulate", ct);
                }
            }
            // 4 = the session is deleted (type 0xff): replays must still fail.
            for order in [
                &[0usize][..],
                &[0, 1, 2, 3],
                &[2, 0, 3, 1, 1],
                &[1, 1, 0],
                &[0, 4, 0, 1],
            ] {
                let mut input = vec![0u8];
                for &i in order {
                    match msgs.get(i) {
                        Some(m) => input.extend(message_input(3, m.serialized())),
                        None => input.push(0xff),
                    }
                }
                put(root, "session_decrypt", &input);
            }
            // Forged follow-ups to the first message (each must fail; they reach the checks
            // before the MAC): counter u32::MAX, a new ratchet key 30,000 ahead, the known base
            // key with another identity, a Kyber ciphertext one byte short.
            let CiphertextMessage::PreKey(first) = &msgs[0] else {
                unreachable!()
            };
            let inner = first.message();
            let forge = |counter: u32, ratchet: &textsecure_core::curve::PublicKey| {
                SignalMessage::new(
                    SignalMessageParts {
                        version_byte: inner.version_byte(),
                        ratchet_key: ratchet,
                        counter,
                        previous_counter: 0,
                        ciphertext: inner.ciphertext().to_vec(),
                        pq_ratchet: Vec::new(),
                        addresses: None,
                    },
                    &[7; 32],
                    first.identity_key(),
                    &bob.bundle.identity_key,
                )
                .unwrap()
            };
            let other = PrivateKey::generate_with(&mut SplitMix(5)).public_key();
            let rewrap = |identity_key, kyber_ciphertext: Option<Vec<u8>>, m: SignalMessage| {
                PreKeySignalMessage::new(
                    PreKeyParts {
                        version_byte: first.version_byte(),
                        registration_id: first.registration_id(),
                        pre_key_id: first.pre_key_id(),
                        signed_pre_key_id: first.signed_pre_key_id(),
                        kyber_pre_key_id: first.kyber_pre_key_id(),
                        kyber_ciphertext,
                        base_key: *first.base_key(),
                        identity_key,
                    },
                    m,
                )
                .unwrap()
            };
            let ct = first.kyber_ciphertext().map(<[u8]>::to_vec);
            let forged = [
                message_input(2, forge(u32::MAX, inner.ratchet_key()).serialized()),
                message_input(2, forge(30_000, &other).serialized()),
                message_input(3, rewrap(other, ct.clone(), inner.clone()).serialized()),
            ];
            for f in &forged {
                let mut input = vec![0u8];
                input.extend(message_input(3, first.serialized()));
                input.extend_from_slice(f);
                put(root, "session_decrypt", &input);
            }
            if let Some(mut short) = ct {
                short.pop();
                let m = rewrap(*first.identity_key(), Some(short), inner.clone());
                put(root, "prekey_signal_message", m.serialized());
            }
            // Alice's record while unacknowledged (pending prekey, Kyber ciphertext).
            let mut input = Vec::new();
            put_field(&mut input, &alice.sessions[&bob_address()].serialize());
            put(root, "session_record", &input);
            // Bob's record after a conversation (with archived sessions), plus a message.
            let mut bob_store = bob.store.clone();
            // Out of order: skipped message keys are stored (as seeds).
            for m in [&msgs[2], &msgs[0]] {
                decrypt(&mut bob_store, &alice_address(), m).unwrap();
            }
            let reply = encrypt(&mut bob_store, &alice_address(), b"reply").unwrap();
            decrypt(&mut alice, &bob_address(), &reply).unwrap();
            let w = encrypt(&mut alice, &bob_address(), b"whisper").unwrap();
            put(root, "signal_message", w.serialized());
            for rec in [
                &bob_store.sessions[&alice_address()],
                &alice.sessions[&bob_address()],
            ] {
                let mut input = Vec::new();
                put_field(&mut input, &rec.serialize());
                input.extend(message_input(w.message_type(), w.serialized()));
                put(root, "session_record", &input);
            }
        }
        // A record whose skipped key is stored as derived keys (python-axolotl's layout).
        {
            use textsecure_core::ratchet::MessageKeys;
            use textsecure_core::state::StoredMessageKey;
            let mut store = bob.store.clone();
            let mut alice = InMemoryStore::new(fixed_alice_identity(), 7);
            process_prekey_bundle(&mut alice, &bob_address(), &bob.bundle).unwrap();
            let m = encrypt(&mut alice, &bob_address(), b"x").unwrap();
            decrypt(&mut store, &alice_address(), &m).unwrap();
            let rec = store.sessions.get_mut(&alice_address()).unwrap();
            let state = rec.current.as_mut().unwrap();
            let chain = &mut state.receiver_chains[0];
            let keys = MessageKeys::from_parts([1; 32], [2; 32], [3; 16], 9);
            chain
                .message_keys
                .push_front((9, StoredMessageKey::Keys(keys)));
            let mut input = Vec::new();
            put_field(&mut input, &rec.serialize());
            put(root, "session_record", &input);
        }
        // Keys and records.
        let mut rng = SplitMix(1);
        let id = IdentityKeyPair::from_private(PrivateKey::generate_with(&mut rng));
        put(root, "identity_key_pair", &id.serialize());
        let pk = PreKeyRecord::new(5, PrivateKey::generate_with(&mut rng));
        put(root, "prekey_record", &pk.serialize());
        put(
            root,
            "signed_prekey_record",
            &SignedPreKeyRecord::generate(6, &id, 9).serialize(),
        );
        for kt in [kem::KeyType::Kyber1024, kem::KeyType::MlKem1024] {
            let pair = kem::KeyPair::from_seed(kt, &[kt.byte(); 64]).unwrap();
            put(root, "kem_public_key", &pair.public_key.serialize());
            put(root, "kem_secret_key", &pair.secret_key.serialize());
            let (_ss, ct) = pair.public_key.encapsulate().unwrap();
            put(root, "kem_decapsulate", &ct);
            let rec = KyberPreKeyRecord {
                id: 8,
                key_pair: pair,
                signature: vec![0; 64],
                timestamp: 1,
            };
            put(root, "kyber_prekey_record", &rec.serialize());
        }
        let k = PrivateKey::generate_with(&mut rng);
        put(root, "curve_private_key", &k.serialize());
        let sig = k.sign_multipart_with(&[b"message"], &mut rng);
        let mut input = k.public_key().serialize().to_vec();
        input.extend_from_slice(&sig);
        input.extend_from_slice(b"message");
        put(root, "curve_public_key", &input);
        // Low-order and non-canonical public keys (u = 0, 1, p, p + 1, 2^255 - 1, top bit set).
        let p = {
            let mut p = [0xffu8; 32];
            p[0] = 0xed;
            p[31] = 0x7f;
            p
        };
        let mut p1 = p;
        p1[0] = 0xee;
        let mut top = [0xffu8; 32];
        top[31] = 0x7f;
        for u in [[0u8; 32], [1u8; 32], [0xffu8; 32], p, p1, top] {
            let mut v = vec![5u8];
            v.extend_from_slice(&u);
            put(root, "curve_public_key", &v);
        }
        // Attachments.
        let mut seen = HashSet::new();
        for n in [0usize, 1, 15, 16, 17, 100, 1000] {
            let pt: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            for inc in [false, true] {
                let v = attachment_signal::encode(&pt, &[n as u8; 16], inc);
                if seen.insert(v.clone()) {
                    put(root, "attachment_signal", &v);
                }
            }
            put(
                root,
                "attachment_whatsapp",
                &attachment_whatsapp::encode(n as u8, &pt),
            );
        }
        group_seeds(root);
        sealed_seeds(root);
        sealed_multi_seeds(root);
        spqr_seeds(root);
        // Conversations: random schedules.
        for s in 0..12u64 {
            let mut r = SplitMix(s);
            let len = 64 + (r.next_word() % 400) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| r.next_word() as u8).collect();
            put(root, "conversation", &bytes);
        }
    }

    /// Sender keys from the fixed group sender (`support::group_sender`), both formats.
    fn group_seeds(root: &Path) {
        use textsecure_core::group;

        use super::targets::support::{
            encode_sender_key_record, group_key, group_sender, group_sender_address, group_skdm,
            unknown_signing_key, GROUP_CHAIN_ID, GROUP_CHAIN_KEY,
        };
        for legacy in [false, true] {
            let flags = u8::from(legacy);
            let key = group_key(legacy);
            let from = group_sender_address();
            let mut sender = group_sender().clone();
            let msgs: Vec<Vec<u8>> = (0..6u8)
                .map(|i| {
                    group::encrypt(&mut sender, &from, &key, &[b'g', i])
                        .unwrap()
                        .serialized()
                        .to_vec()
                })
                .collect();
            let mut skdm = vec![flags];
            skdm.extend(group_skdm(legacy));
            put(root, "sender_key_distribution", &skdm);
            for m in &msgs[..2] {
                let mut v = vec![flags];
                v.extend_from_slice(&0u32.to_le_bytes());
                v.extend_from_slice(m);
                put(root, "sender_key_message", &v);
            }
            // group_decrypt: in order, out of order with a duplicate, reprocessing in between.
            for order in [&[0usize, 1, 2][..], &[3, 0, 5, 0, 4], &[1, 9, 1, 2]] {
                let mut v = vec![flags];
                for &i in order {
                    match msgs.get(i) {
                        Some(m) => {
                            v.push(0);
                            put_field(&mut v, m);
                        }
                        None => v.push(1),
                    }
                }
                put(root, "group_decrypt", &v);
            }
            // sender_key_record: the sender's own record (with the private key) and the
            // receiver's view, each with a message.
            let public = group::SenderKeyRecord::serialize(
                &sender.sender_keys[&(from.clone(), key.clone())],
            );
            let theirs = encode_sender_key_record(
                GROUP_CHAIN_ID,
                0,
                &GROUP_CHAIN_KEY,
                &unknown_signing_key().public_key().serialize(),
                None,
            );
            for rec in [public, theirs] {
                let mut v = Vec::new();
                put_field(&mut v, &rec);
                v.push(flags);
                put_field(&mut v, &msgs[5]);
                put(root, "sender_key_record", &v);
            }
        }
    }

    /// Sealed sender: the fixed certificates, and v1 / v2 envelopes from the fixed Alice to
    /// the fixed Bob carrying PreKey and whisper messages.
    fn sealed_seeds(root: &Path) {
        use textsecure_core::sealed_sender::{
            encrypt_v1_with, encrypt_v2_with_m, MultiRecipient, RecipientDevice, SentMessage,
            UnidentifiedSenderMessageContent,
        };

        use super::targets::support::{
            fixture_sender_certs, fixture_server_certs, VALIDATION_TIME,
        };
        for c in fixture_server_certs() {
            let mut v = vec![0u8];
            v.extend_from_slice(&VALIDATION_TIME.to_le_bytes());
            v.extend_from_slice(c.serialized());
            put(root, "sealed_sender_certificate", &v);
        }
        for c in fixture_sender_certs() {
            for t in [VALIDATION_TIME, c.expiration(), c.expiration() + 1] {
                let mut v = vec![1u8];
                v.extend_from_slice(&t.to_le_bytes());
                v.extend_from_slice(c.serialized());
                put(root, "sealed_sender_certificate", &v);
            }
        }
        let bob = fixed_bob();
        let alice_id = fixed_alice_identity();
        let mut alice = InMemoryStore::new(alice_id.clone(), 7);
        process_prekey_bundle(&mut alice, &bob_address(), &bob.bundle).unwrap();
        let mut envs = Vec::new();
        for (i, cert) in [0usize, 0, 1].into_iter().enumerate() {
            let m = encrypt(&mut alice, &bob_address(), &[b's', i as u8]).unwrap();
            let usmc = UnidentifiedSenderMessageContent::new(
                m.message_type(),
                fixture_sender_certs()[cert].clone(),
                m.serialized().to_vec(),
                0,
                None,
            )
            .unwrap();
            let v1 = encrypt_v1_with(
                &usmc,
                &alice_id,
                &bob.bundle.identity_key,
                &mut SplitMix(i as u64),
            )
            .unwrap();
            let sent = encrypt_v2_with_m(
                &usmc,
                &alice_id,
                &[MultiRecipient {
                    service_id: "b0b00000-0000-4000-8000-000000000b0b".into(),
                    identity_key: bob.bundle.identity_key,
                    devices: vec![RecipientDevice {
                        device_id: 1,
                        registration_id: 4242,
                    }],
                }],
                &[],
                &[i as u8 + 1; 32],
            )
            .unwrap();
            let v2 = SentMessage::received_message_for_single_recipient(&sent).unwrap();
            envs.push((v1, v2));
        }
        for (v1, v2) in &envs {
            for e in [v1, v2] {
                let mut v = vec![0u8];
                put_field(&mut v, e);
                put(root, "sealed_sender_envelope", &v);
            }
        }
        // In order (v1, then v2), with a replay and an expired certificate.
        let mut v = vec![0u8];
        for e in [&envs[0].0, &envs[1].1, &envs[0].0, &envs[2].0] {
            put_field(&mut v, e);
        }
        put(root, "sealed_sender_envelope", &v);
        // The other content types (whisper, sender key, plaintext), with a hint and a group id,
        // under the embedding and the by-reference certificate (deterministic: SplitMix only).
        for (i, (t, cert)) in [(2u8, 0usize), (7, 2), (8, 0)].into_iter().enumerate() {
            let usmc = UnidentifiedSenderMessageContent::new(
                t,
                fixture_sender_certs()[cert].clone(),
                vec![t; 40],
                i as u32,
                Some(vec![0x67; 16]),
            )
            .unwrap();
            let v1 = encrypt_v1_with(
                &usmc,
                &alice_id,
                &bob.bundle.identity_key,
                &mut SplitMix(0x7e + i as u64),
            )
            .unwrap();
            let mut v = vec![0u8];
            put_field(&mut v, &v1);
            put(root, "sealed_sender_envelope", &v);
        }
    }

    /// Sealed sender v2 sent forms from the core's encryptor: the fixed Bob (ACI) with others
    /// (ACI and PNI, several devices), with and without excluded recipients; one also as `0x22`.
    fn sealed_multi_seeds(root: &Path) {
        use textsecure_core::sealed_sender::{
            decrypt_to_usmc, encrypt_v2_with_m, MultiRecipient, RecipientDevice, SentMessage,
            UnidentifiedSenderMessageContent, V2_UUID_VERSION,
        };

        use super::targets::sealed_sender_multi::{self, BOB_ACI};
        use super::targets::support::{fixed_private, fixture_sender_certs};

        let bob = fixed_bob();
        let alice_id = fixed_alice_identity();
        let dev = |device_id, registration_id| RecipientDevice {
            device_id,
            registration_id,
        };
        let bob_r = MultiRecipient {
            service_id: BOB_ACI.into(),
            identity_key: bob.bundle.identity_key,
            devices: vec![dev(1, 4242)],
        };
        let carol = MultiRecipient {
            service_id: "ca401000-0000-4000-8000-00000000ca40".into(),
            identity_key: fixed_private(0xca401).public_key(),
            devices: vec![dev(1, 77), dev(2, 0x3fff), dev(127, 1)],
        };
        let dave_pni = MultiRecipient {
            service_id: "PNI:da7e0000-0000-4000-8000-00000000da7e".into(),
            identity_key: fixed_private(0xda7e).public_key(),
            devices: vec![dev(3, 9)],
        };
        let excluded = [
            "e0c10000-0000-4000-8000-0000000000e1".to_string(),
            "PNI:e0c20000-0000-4000-8000-0000000000e2".to_string(),
        ];
        let cases: [(Vec<MultiRecipient>, &[String]); 5] = [
            (vec![bob_r.clone()], &[]),
            (vec![bob_r.clone(), carol.clone()], &[]),
            (
                vec![carol.clone(), bob_r.clone(), dave_pni.clone()],
                &excluded,
            ),
            (vec![dave_pni], &excluded[..1]),
            (vec![bob_r, carol], &excluded[..1]),
        ];
        for (i, (recipients, excluded)) in cases.iter().enumerate() {
            let usmc = UnidentifiedSenderMessageContent::new(
                if i % 2 == 0 { 2 } else { 8 },
                fixture_sender_certs()[i % 2].clone(),
                vec![b'm', i as u8],
                (i % 3) as u32,
                (i == 2).then(|| b"group".to_vec()),
            )
            .unwrap();
            let sent = encrypt_v2_with_m(
                &usmc,
                &alice_id,
                recipients,
                excluded,
                &[0x40 + i as u8; 32],
            )
            .unwrap();
            put(root, "sealed_sender_multi", &sent);
            let parsed = SentMessage::parse(&sent).unwrap();
            if let Ok(received) = parsed.received_message_for(BOB_ACI) {
                let got = decrypt_to_usmc(&received, bob.store.identity()).unwrap();
                assert_eq!(got.serialized(), usmc.serialized());
            }
            if let Some(old) = sealed_sender_multi::encode(&parsed, V2_UUID_VERSION) {
                put(root, "sealed_sender_multi", &old);
            }
        }
    }

    /// SPQR: a seeded run of two fixed parties (alternating, with some messages lost and
    /// delivered out of order); each receive's state and message.
    fn spqr_seeds(root: &Path) {
        use textsecure_core::spqr::{Direction, Params, State, Version};
        let params = |direction| Params {
            auth_key: [0x51; 32],
            direction,
            min_version: Version::V1,
            max_jump: 0,
            max_ooo_keys: 0,
        };
        let mut a = State::initial(&params(Direction::A2B)).unwrap();
        let mut b = State::initial(&params(Direction::B2A)).unwrap();
        let mut rng = SplitMix(0x5e9d);
        let mut n = 0;
        put(root, "spqr_state", &a.to_bytes());
        put(root, "spqr_state", &b.to_bytes());
        for round in 0..60u32 {
            // Each round one side sends three messages; the receiver gets 1st and 3rd, then 2nd.
            let (tx, rx) = if round % 2 == 0 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            let mut msgs = Vec::new();
            for _ in 0..3 {
                let (next, m, _) = tx.send(&mut rng).unwrap();
                *tx = next;
                msgs.push(m);
            }
            let before = rx.to_bytes();
            for i in [0usize, 2, 1] {
                if let Ok((next, _)) = rx.recv(&msgs[i]) {
                    *rx = next;
                }
            }
            if round % 7 == 0 || round < 4 {
                let mut v = Vec::new();
                put_field(&mut v, &before);
                for i in [0usize, 2, 1, 1] {
                    put_field(&mut v, &msgs[i]);
                }
                put(root, "spqr_message", &v);
                put(root, "spqr_state", &rx.to_bytes());
                n += 1;
            }
        }
        assert!(n > 0);
    }
}
