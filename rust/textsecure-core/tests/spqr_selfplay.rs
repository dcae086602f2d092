//! Two SPQR states talking to each other: ping-pong over several epochs, one-way bursts, loss and
//! reordering, version negotiation, and hostile input (errors, never panics, `self` unchanged).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)] // test helpers

#[path = "spqr_common/mod.rs"]
mod common;
mod shared_data;

use common::*;
use textsecure_core::spqr::wire::{Message, Payload};
use textsecure_core::spqr::{Direction, Params, State, Version};
use textsecure_core::Error;

fn pair(min: Version) -> (State, State) {
    let ak = [0x42; 32];
    let p = |d| Params {
        auth_key: ak,
        direction: d,
        min_version: min,
        max_jump: 25_000,
        max_ooo_keys: 2_000,
    };
    (
        State::initial(&p(Direction::A2B)).unwrap(),
        State::initial(&p(Direction::B2A)).unwrap(),
    )
}

fn epoch(s: &State) -> u64 {
    s.braid_status().unwrap().0
}

/// Sends one message from `from` to `to`, checks the keys agree, and roundtrips both states
/// through serialization.
fn deliver(from: &mut State, to: &mut State, rng: &mut TestRng) {
    let (f2, msg, k1) = from.send(rng).unwrap();
    let (t2, k2) = to.recv(&msg).unwrap();
    assert!(k1.is_some());
    assert_eq!(k1, k2);
    *from = f2;
    *to = t2;
}

#[test]
fn ping_pong_300_turns_completes_several_epochs() {
    let (mut a, mut b) = pair(Version::V1);
    let mut rng = TestRng(1);
    let mut epochs_seen = vec![];
    for turn in 0..300 {
        deliver(&mut a, &mut b, &mut rng);
        deliver(&mut b, &mut a, &mut rng);
        if turn % 25 == 0 {
            // serialization is lossless mid-flight
            a = State::from_bytes(&a.to_bytes()).unwrap();
            b = State::from_bytes(&b.to_bytes()).unwrap();
        }
        epochs_seen.push(epoch(&a));
    }
    let ep = a
        .chain()
        .unwrap()
        .current_epoch
        .min(b.chain().unwrap().current_epoch);
    eprintln!(
        "300 ping-pong turns: {ep} epochs completed (braid epochs a={} b={})",
        epoch(&a),
        epoch(&b)
    );
    assert!(ep >= 6, "only {ep} epochs");
    assert_eq!(
        a.to_bytes(),
        State::from_bytes(&a.to_bytes()).unwrap().to_bytes()
    );
}

#[test]
fn long_one_way_burst_then_recovery() {
    let (mut a, mut b) = pair(Version::V1);
    let mut rng = TestRng(2);
    for _ in 0..3000 {
        deliver(&mut a, &mut b, &mut rng);
    }
    assert_eq!(
        a.chain().unwrap().current_epoch,
        0,
        "one-sided traffic completes no epoch"
    );
    for _ in 0..1000 {
        deliver(&mut b, &mut a, &mut rng);
    }
    for _ in 0..120 {
        deliver(&mut a, &mut b, &mut rng);
        deliver(&mut b, &mut a, &mut rng);
    }
    assert!(a.chain().unwrap().current_epoch >= 1);
}

/// Shuffled delivery within a window, 20% loss, both directions interleaved.
#[test]
fn lossy_shuffled_channel_still_completes_epochs() {
    let (mut a, mut b) = pair(Version::V1);
    let mut rng = TestRng(3);
    let mut shuffle = TestRng(99);
    let (mut to_b, mut to_a): (Vec<(Vec<u8>, [u8; 32])>, Vec<(Vec<u8>, [u8; 32])>) =
        (vec![], vec![]);
    let (mut delivered, mut lost) = (0, 0);
    for round in 0..1500 {
        for _ in 0..(1 + shuffle.next() % 3) {
            let (a2, m, k) = a.send(&mut rng).unwrap();
            a = a2;
            to_b.push((m, k.unwrap()));
        }
        for _ in 0..(1 + shuffle.next() % 3) {
            let (b2, m, k) = b.send(&mut rng).unwrap();
            b = b2;
            to_a.push((m, k.unwrap()));
        }
        // deliver a random subset of the queued messages in random order
        for (q, dst) in [(&mut to_b, &mut b), (&mut to_a, &mut a)] {
            while q.len() > 2 || (round % 7 == 0 && !q.is_empty()) {
                let i = (shuffle.next() % q.len() as u64) as usize;
                let (m, k) = q.swap_remove(i);
                if shuffle.next() % 5 == 0 {
                    lost += 1;
                    continue;
                }
                let (d2, k2) = dst
                    .recv(&m)
                    .unwrap_or_else(|e| panic!("round {round}: {e} on {:?}", Message::parse(&m)));
                assert_eq!(k2, Some(k));
                *dst = d2;
                delivered += 1;
            }
        }
    }
    let ep = a
        .chain()
        .unwrap()
        .current_epoch
        .min(b.chain().unwrap().current_epoch);
    eprintln!("lossy channel: {delivered} delivered, {lost} lost, {ep} epochs completed");
    assert!(ep >= 3, "only {ep} epochs");
}

trait Next {
    fn next(&mut self) -> u64;
}
impl Next for TestRng {
    fn next(&mut self) -> u64 {
        rand_core::RngCore::next_u64(self)
    }
}

#[test]
fn negotiation_rules() {
    let mut rng = TestRng(4);
    // min V1: an empty field (V0 peer) is rejected while negotiating, state unchanged.
    let (a, b) = pair(Version::V1);
    let before = b.to_bytes();
    assert_eq!(
        b.recv(&[]).unwrap_err(),
        Error::InvalidMessage(textsecure_core::spqr::errors::MINIMUM_VERSION)
    );
    assert_eq!(
        b.recv(&[0]).unwrap_err(),
        Error::InvalidMessage(textsecure_core::spqr::errors::MINIMUM_VERSION)
    );
    assert_eq!(b.to_bytes(), before);
    // min V1: the very first message already has a key.
    let (a1, m, k) = a.send(&mut rng).unwrap();
    assert!(k.is_some());
    let (b1, k2) = b.recv(&m).unwrap();
    assert_eq!(k, k2);
    assert!(a1.negotiating() && !b1.negotiating());
    // After a V1 receive, negotiation is closed: V0 is a version mismatch.
    assert_eq!(
        b1.recv(&[]).unwrap_err(),
        Error::InvalidMessage(textsecure_core::spqr::errors::VERSION_MISMATCH)
    );
    // Unknown newer version: ignored, state unchanged, no key.
    let (b2, k3) = b1.recv(&[2, 1, 2, 3]).unwrap();
    assert_eq!(b2.to_bytes(), b1.to_bytes());
    assert_eq!(k3, None);

    // min V0: a V0 peer downgrades us while negotiating.
    let (a, b) = pair(Version::V0);
    let (bv0, k) = b.recv(&[]).unwrap();
    assert!(bv0.is_v0() && k.is_none() && bv0.to_bytes().is_empty());
    let (bv0b, m, k) = bv0.send(&mut rng).unwrap();
    assert!(bv0b.is_v0() && m.is_empty() && k.is_none());
    // A V0 state ignores V1 messages.
    let (_, m1, _) = a.send(&mut rng).unwrap();
    let (still, k) = bv0.recv(&m1).unwrap();
    assert!(still.is_v0() && k.is_none());
    // min V0: no chain before the first receive → index 0, no key; the receiver gets no key either.
    let (a1, m1, k1) = a.send(&mut rng).unwrap();
    assert!(k1.is_none());
    let parsed = Message::parse(&m1).unwrap();
    assert_eq!((parsed.epoch, parsed.index), (1, 0));
    let (b1, kb) = b.recv(&m1).unwrap();
    assert!(kb.is_none());
    // Bob has a chain now (built at receive): his messages carry keys, and Alice gets them.
    let (b2, m2, k2) = b1.send(&mut rng).unwrap();
    assert!(k2.is_some());
    let (a2, ka) = a1.recv(&m2).unwrap();
    assert_eq!(ka, k2);
    let (_, m3, k3) = a2.send(&mut rng).unwrap();
    let (_, kb3) = b2.recv(&m3).unwrap();
    assert!(k3.is_some() && k3 == kb3);
    // Downgrade is refused once negotiation closed.
    assert!(b1.recv(&[]).is_err());

    // from_bytes(empty) is V0.
    assert!(State::from_bytes(&[]).unwrap().is_v0());
}

/// Mutations of a valid message: bad chunk indices, wrong epochs, oversized varints, truncation,
/// duplicates. None may panic; every error leaves `self` unchanged.
#[test]
fn hostile_messages_never_panic_and_leave_state_unchanged() {
    let (mut a, mut b) = pair(Version::V1);
    let mut rng = TestRng(5);
    let mut fuzz = TestRng(77);
    let mut errors = 0;
    let mut oks = 0;
    // Drive both sides into various states and fuzz the receiver at every turn.
    for turn in 0..220 {
        let (a2, msg, _) = a.send(&mut rng).unwrap();
        for variant in 0..12 {
            let mut m = msg.clone();
            match variant {
                0 => m.truncate((fuzz.next() as usize) % m.len()),
                1 => {
                    let i = (fuzz.next() as usize) % m.len();
                    m[i] ^= 1 << (fuzz.next() % 8);
                }
                2 => m = vec![1, 0x7f, 1, 1, 0, 0], // epoch far ahead, short chunk
                3 => {
                    m = vec![1];
                    m.extend_from_slice(&[0xff; 11]); // oversized varint
                }
                4 => m = vec![1, 1, 0xff, 0xff, 0xff, 0xff, 0x1f, 0], // index > u32
                5 => m = vec![1, 1, 5, 1, 0x80, 0x80, 0x04], // chunk index > 65535, truncated
                6 => {
                    // chunk index 65535 with garbage data of every type
                    m = vec![
                        1,
                        epoch(&b) as u8,
                        200,
                        1 + (fuzz.next() % 6) as u8,
                        0xff,
                        0xff,
                        0x03,
                    ];
                    m.extend((0..32).map(|_| fuzz.next() as u8));
                }
                7 => m = vec![1, 2, 1, 0], // epoch + 1
                8 => m = (0..(fuzz.next() % 60)).map(|_| fuzz.next() as u8).collect(),
                9 => {
                    // same chain index as the previous good message
                    if m.len() > 3 {
                        m[2] = m[2].wrapping_sub(1);
                    }
                }
                10 => m = vec![1, 1, 0, 9], // bad type
                _ => {
                    // random chunk data under a valid header
                    if m.len() >= 37 {
                        for x in &mut m[5..] {
                            *x = fuzz.next() as u8;
                        }
                    }
                }
            }
            let before = b.to_bytes();
            match b.recv(&m) {
                Err(e) => {
                    assert!(
                        matches!(e, Error::InvalidMessage(s) if s.starts_with("post-quantum ratchet error")),
                        "{e}"
                    );
                    errors += 1;
                }
                Ok(_) => oks += 1,
            }
            assert_eq!(
                b.to_bytes(),
                before,
                "turn {turn} variant {variant}: self modified"
            );
        }
        let (b2, _) = b.recv(&msg).unwrap();
        a = a2;
        b = b2;
        let (b3, m, _) = b.send(&mut rng).unwrap();
        let (a3, _) = a.recv(&m).unwrap();
        a = a3;
        b = b3;
    }
    eprintln!(
        "hostile messages: {errors} rejected, {oks} accepted (ignored payloads / fresh indices)"
    );
}

#[test]
fn corrupted_chunks_fail_the_macs_and_ek_check() {
    let mut rng = TestRng(6);
    // Header: Bob collects a forged parity chunk among the three → header MAC fails.
    let (a, b) = pair(Version::V1);
    let (a1, m0, _) = a.send(&mut rng).unwrap();
    let (a2, m1, _) = a1.send(&mut rng).unwrap();
    let (_, m2, _) = a2.send(&mut rng).unwrap();
    let (b1, _) = b.recv(&m0).unwrap();
    let (b2, _) = b1.recv(&m1).unwrap();
    let mut bad = m2.clone();
    bad[10] ^= 0x40;
    assert_eq!(
        b2.recv(&bad).unwrap_err(),
        Error::InvalidMessage(textsecure_core::spqr::errors::MAC_VERIFY_FAILED)
    );
    // Repeated chunk index with different data is ignored (first copy kept); the real one completes.
    let mut dup = m1.clone();
    dup[2] = 9; // fresh chain index 9 so the key is derivable
    dup[20] ^= 1;
    let (b2b, _) = b2.recv(&dup).unwrap();
    assert_eq!(b2b.braid_status().unwrap().1, "NoHeaderReceived");
    assert_eq!(
        b2.recv(&m2).unwrap().0.braid_status().unwrap().1,
        "HeaderReceived"
    );

    // ek: corrupt one ek chunk → the CT side reports erroneous data when ek completes.
    let (mut a, mut b) = pair(Version::V1);
    let mut saw_err = false;
    for _ in 0..60 {
        let (a2, mut m, _) = a.send(&mut rng).unwrap();
        let p = Message::parse(&m).unwrap();
        if matches!(p.payload, Payload::Ek((3, _))) {
            let n = m.len();
            m[n - 1] ^= 0x5a;
        }
        match b.recv(&m) {
            Ok((b2, _)) => b = b2,
            Err(e) => {
                assert_eq!(
                    e,
                    Error::InvalidMessage(textsecure_core::spqr::errors::ERRONEOUS_DATA)
                );
                saw_err = true;
                break;
            }
        }
        a = a2;
        let (b3, m, _) = b.send(&mut rng).unwrap();
        a = a.recv(&m).unwrap().0;
        b = b3;
    }
    assert!(saw_err);
}

#[test]
fn mutated_states_never_panic() {
    let (mut a, mut b) = pair(Version::V1);
    let mut rng = TestRng(8);
    let mut fuzz = TestRng(9);
    let mut states = vec![];
    for _ in 0..100 {
        deliver(&mut a, &mut b, &mut rng);
        deliver(&mut b, &mut a, &mut rng);
        states.push(a.to_bytes());
        states.push(b.to_bytes());
    }
    let (_, probe, _) = a.send(&mut rng).unwrap();
    let (mut parsed, mut rejected) = (0, 0);
    for s in states.iter().step_by(7) {
        for _ in 0..40 {
            let mut m = s.clone();
            for _ in 0..(1 + fuzz.next() % 3) {
                let i = (fuzz.next() as usize) % m.len();
                m[i] = fuzz.next() as u8;
            }
            if fuzz.next() % 4 == 0 {
                m.truncate((fuzz.next() as usize) % m.len());
            }
            match State::from_bytes(&m) {
                Ok(st) => {
                    parsed += 1;
                    let _ = st.send(&mut rng);
                    let _ = st.recv(&probe);
                    let _ = st.to_bytes();
                }
                Err(Error::InvalidRecord(_)) => rejected += 1,
                Err(e) => panic!("unexpected error kind {e}"),
            }
        }
    }
    eprintln!("mutated states: {parsed} parsed and exercised, {rejected} rejected");
}
