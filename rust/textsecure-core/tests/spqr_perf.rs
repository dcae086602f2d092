//! Quick timing of SPQR per message (run in release:
//! `cargo test --release -p textsecure-core --test spqr_perf -- --ignored --nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

#[path = "spqr_common/mod.rs"]
mod common;
mod shared_data;

use std::time::Instant;

use common::*;
use textsecure_core::spqr::{Direction, State};

fn pair() -> (State, State) {
    let ak = [7u8; 32];
    (
        State::initial(&params(ak, Direction::A2B)).unwrap(),
        State::initial(&params(ak, Direction::B2A)).unwrap(),
    )
}

fn per<F: FnMut()>(label: &str, n: u32, mut f: F) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
    eprintln!("  {label}: {ns:.0} ns");
    ns
}

#[test]
#[ignore]
fn breakdown() {
    use std::hint::black_box;
    use textsecure_core::ratchet::{ChainKey, MessageKeys, Secret32};
    use textsecure_core::spqr::chain::Chain;
    let ck = ChainKey::new(Secret32::from_slice(&[7u8; 32]).unwrap(), 0);
    per(
        "DR chain step + message keys (baseline piece)",
        200_000,
        || {
            let (seed, next) = black_box(&ck).step();
            black_box((MessageKeys::derive(&seed, 0, None).unwrap(), next));
        },
    );
    let mut out = [0u8; 64];
    per("HKDF-SHA256 32->64", 200_000, || {
        textsecure_core::crypto::hkdf_sha256_multi(
            Some(&[0u8; 32]),
            black_box(&[1u8; 32]),
            &[&[0, 0, 0, 1], b"Signal PQ Ratchet V1 Chain Next"],
            &mut out,
        )
        .unwrap();
    });
    per("HMAC-SHA256 32B", 200_000, || {
        black_box(textsecure_core::crypto::hmac_sha256(
            &[1u8; 32],
            &[black_box(&[2u8; 32])],
        ));
    });
    let c = Chain::new(&[1; 32], Direction::A2B, 25_000, 2_000).unwrap();
    per("Chain clone", 200_000, || {
        black_box(black_box(&c).clone());
    });
    per("Chain clone + send_key", 200_000, || {
        let mut c2 = black_box(&c).clone();
        black_box(c2.send_key(0).unwrap());
    });
    let (a, _) = pair();
    let mut rng = TestRng(3);
    let mut a3 = a;
    for _ in 0..5 {
        a3 = a3.send(&mut rng).unwrap().0; // past the data chunks: parity polynomials cached
    }
    per(
        "State::send in KeysSampled (header parity chunk)",
        100_000,
        || {
            black_box(black_box(&a3).send(&mut rng).unwrap());
        },
    );
    let br = a3.braid().unwrap();
    per("  of which Braid::send", 100_000, || {
        black_box(black_box(br).send(&mut rng).unwrap());
    });
}

#[test]
#[ignore]
fn timing() {
    let mut rng = TestRng(11);
    let (mut a, mut b) = pair();
    // Ping-pong: full epochs included (ML-KEM work amortised over ~87 messages).
    let n = 20_000;
    let t = Instant::now();
    let (mut ts, mut tr) = (0u128, 0u128);
    for _ in 0..n {
        let t0 = Instant::now();
        let (a2, m, _) = a.send(&mut rng).unwrap();
        let t1 = Instant::now();
        let (b2, _) = b.recv(&m).unwrap();
        let t2 = Instant::now();
        let (b3, m, _) = b2.send(&mut rng).unwrap();
        let t3 = Instant::now();
        let (a3, _) = a2.recv(&m).unwrap();
        let t4 = Instant::now();
        ts += (t1 - t0).as_nanos() + (t3 - t2).as_nanos();
        tr += (t2 - t1).as_nanos() + (t4 - t3).as_nanos();
        a = a3;
        b = b3;
    }
    let total = t.elapsed().as_nanos() as f64 / (2 * n) as f64;
    eprintln!(
        "ping-pong ({} epochs): send {:.0} ns, recv {:.0} ns, send+recv {:.0} ns per message (all included)",
        a.chain().unwrap().current_epoch,
        ts as f64 / (2 * n) as f64,
        tr as f64 / (2 * n) as f64,
        total
    );
    // One-way in-chain burst (no ML-KEM work): header parity chunks, one chain step each side.
    let mut msgs = Vec::with_capacity(n);
    let t0 = Instant::now();
    for _ in 0..n {
        let (a2, m, _) = a.send(&mut rng).unwrap();
        a = a2;
        msgs.push(m);
    }
    let t1 = Instant::now();
    for m in &msgs {
        let (b2, _) = b.recv(m).unwrap();
        b = b2;
    }
    let t2 = Instant::now();
    eprintln!(
        "one-way in-chain burst: send {:.0} ns, recv {:.0} ns per message (state {:?})",
        (t1 - t0).as_nanos() as f64 / n as f64,
        (t2 - t1).as_nanos() as f64 / n as f64,
        a.braid_status()
    );
    // Serialization cost (for the session record).
    let bytes = b.to_bytes();
    let k = 2000;
    let t0 = Instant::now();
    for _ in 0..k {
        std::hint::black_box(State::from_bytes(&bytes).unwrap());
    }
    let t1 = Instant::now();
    for _ in 0..k {
        std::hint::black_box(b.to_bytes());
    }
    let t2 = Instant::now();
    eprintln!(
        "state of {} bytes: from_bytes {:.1} µs, to_bytes {:.1} µs",
        bytes.len(),
        (t1 - t0).as_nanos() as f64 / k as f64 / 1000.0,
        (t2 - t1).as_nanos() as f64 / k as f64 / 1000.0
    );
    // Cost of the ML-KEM messages.
    let (a, b) = pair();
    let t0 = Instant::now();
    for _ in 0..200 {
        std::hint::black_box(a.send(&mut rng).unwrap());
    }
    let t1 = Instant::now();
    eprintln!(
        "key-generation send: {:.1} µs",
        (t1 - t0).as_nanos() as f64 / 200.0 / 1000.0
    );
    let _ = b;
}

mod dr {
    use textsecure_core::curve::PrivateKey;
    use textsecure_core::prekey::{
        IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord,
    };
    use textsecure_core::session::{decrypt, encrypt, process_prekey_bundle};
    use textsecure_core::store::{Address, InMemoryStore};

    pub(crate) fn pair() -> (InMemoryStore, InMemoryStore, Address, Address) {
        let mut a = InMemoryStore::new(IdentityKeyPair::generate(), 1);
        let mut b = InMemoryStore::new(IdentityKeyPair::generate(), 2);
        let (aa, ba) = (Address::new("alice", 1), Address::new("bob", 1));
        let id = b.identity().clone();
        let spk = SignedPreKeyRecord::generate(1, &id, 0);
        let otk = PreKeyRecord::new(1, PrivateKey::generate());
        let bundle = PreKeyBundle {
            registration_id: b.registration_id(),
            device_id: 1,
            identity_key: id.public_key,
            signed_prekey_id: 1,
            signed_prekey: spk.key_pair.public_key,
            signed_prekey_signature: spk.signature.clone(),
            prekey: Some((1, otk.key_pair.public_key)),
            kyber: None,
        };
        b.signed_prekeys.insert(1, spk);
        b.prekeys.insert(1, otk);
        process_prekey_bundle(&mut a, &ba, &bundle).unwrap();
        let m = encrypt(&mut a, &ba, b"hi").unwrap();
        decrypt(&mut b, &aa, &m).unwrap();
        let r = encrypt(&mut b, &aa, b"hi").unwrap();
        decrypt(&mut a, &ba, &r).unwrap();
        (a, b, aa, ba)
    }
    pub(crate) use textsecure_core::session::{decrypt as dec, encrypt as enc};
}

/// In-chain (one-way) throughput: DR encrypt+decrypt of 100 B vs SPQR send+recv, interleaved
/// rounds, best round of each.
#[test]
#[ignore]
fn in_chain_ratio() {
    let n = 4000;
    let payload = [0x42u8; 100];
    let (mut a, mut b, aa, ba) = dr::pair();
    let mut rng = TestRng(5);
    let (mut sa, mut sb) = pair();
    // get SPQR into a steady state: Alice sending header parity, Bob holding the header.
    for _ in 0..10 {
        let (x, m, _) = sa.send(&mut rng).unwrap();
        sa = x;
        sb = sb.recv(&m).unwrap().0;
    }
    let (mut best_dr, mut best_send, mut best_recv) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..7 {
        let t0 = Instant::now();
        let msgs: Vec<_> = (0..n)
            .map(|_| dr::enc(&mut a, &ba, &payload).unwrap())
            .collect();
        for m in &msgs {
            dr::dec(&mut b, &aa, m).unwrap();
        }
        best_dr = best_dr.min(t0.elapsed().as_nanos() as f64 / n as f64);
        let t1 = Instant::now();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let (x, m, k) = sa.send(&mut rng).unwrap();
            sa = x;
            out.push((m, k));
        }
        let t2 = Instant::now();
        for (m, k) in &out {
            let (y, k2) = sb.recv(m).unwrap();
            assert_eq!(&k2, k);
            sb = y;
        }
        let t3 = Instant::now();
        best_send = best_send.min((t2 - t1).as_nanos() as f64 / n as f64);
        best_recv = best_recv.min((t3 - t2).as_nanos() as f64 / n as f64);
    }
    let spqr = best_send + best_recv;
    eprintln!(
        "in-chain (wall time, best of 9 interleaved rounds): DR encrypt+decrypt {best_dr:.0} ns/msg; SPQR send {best_send:.0} + recv {best_recv:.0} = {spqr:.0} ns/msg; \
         throughput with SPQR = {:.0}% of without (states {:?} / {:?})",
        100.0 * best_dr / (best_dr + spqr),
        sa.braid_status(),
        sb.braid_status()
    );
}
