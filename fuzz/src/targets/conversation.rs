//! The stateful conversation fuzzer: two or three parties talk through a hostile network that
//! drops, duplicates, reorders, delays (past the forward-jump limit), truncates, bit-flips and
//! splices messages, re-delivers old ones, sends them with the wrong type, and now and then
//! makes a party start a new session or change its identity (a reinstall).
//!
//! The schedule comes from a byte [`Source`]: the fuzz input (libFuzzer target `conversation`)
//! or a seeded [`SplitMix`] stream (the deterministic runner,
//! `rust/textsecure-core/tests/conversation_fuzz.rs`). Keys come from the OS RNG inside the
//! core, so a seed fixes the schedule, not the key bytes; no invariant depends on key bytes.
//!
//! Checked after every step (a violation panics with a description):
//! * no panic anywhere in the core;
//! * an intact message that is within the limits decrypts, exactly once, to what was sent.
//!   "Within the limits" is decided from the receiver's state before the delivery, by the
//!   protocol's rules, not by calling the code under test: the session the message belongs to
//!   (its Alice base key) is still kept (≤ 40 archived), its sender's identity is trusted, and
//!   either its receiving chain is kept (≤ 5) and the counter is at most 25,000 ahead of it or
//!   its skipped key is still stored (≤ 2,000), or its ratchet key is new to that session and
//!   the counter is at most 25,000, or (a PreKeySignalMessage for a session not yet there) every
//!   prekey it names is still in the receiver's store;
//! * a replayed or out-of-limit message fails; a damaged message fails, except for the known
//!   semantics of PreKeySignalMessages (unauthenticated header fields: registration id, the low
//!   nibble of the version byte, prekey ids / Kyber ciphertext once the session exists, some
//!   protobuf tags), and then it must carry the same authenticated content (inner message, base
//!   key, identity key) as an undelivered original and decrypt to that original's plaintext,
//!   which then counts as delivered;
//! * every failure (encrypt, bundle, decrypt) leaves the party's whole store byte-for-byte
//!   unchanged (`support::snapshot`: every `SessionRecord::serialize()`, identities, prekeys,
//!   replay records);
//! * once the network stops misbehaving, every pair can talk again: in-flight messages are
//!   delivered, then each pair exchanges messages; a pair stuck by the protocol's own limits
//!   (both sending chains past the forward-jump limit, a peer that reinstalled) recovers the
//!   way clients do, with a new session, and must then talk.

use std::collections::{HashMap, HashSet};

use textsecure_core::curve::{PrivateKey, PublicKey};
use textsecure_core::message::{CiphertextMessage, PREKEY_TYPE, WHISPER_TYPE};
use textsecure_core::prekey::{
    IdentityKeyPair, KyberBundlePart, KyberPreKeyRecord, PreKeyBundle, PreKeyRecord,
    SignedPreKeyRecord,
};
use textsecure_core::ratchet::MAX_FORWARD_JUMPS;
use textsecure_core::session::{decrypt, encrypt, process_prekey_bundle};
use textsecure_core::state::SessionState;
use textsecure_core::store::{Address, InMemoryStore};
use textsecure_core::Error;
use textsecure_core::spqr;

use super::session_decrypt::parse;
use super::support::{snapshot, Input, SplitMix};

/// Where the schedule comes from.
pub trait Source {
    /// The next byte, or `None` when the schedule is over.
    fn byte(&mut self) -> Option<u8>;
}

impl Source for Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        (!self.is_empty()).then(|| self.u8())
    }
}

impl Source for SplitMix {
    fn byte(&mut self) -> Option<u8> {
        Some(self.next_word() as u8)
    }
}

/// Bounds of one run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most network steps before the network heals.
    pub max_steps: usize,
    /// Most messages that forward jumps may encrypt and drop in one run.
    pub jump_budget: u64,
    /// Heal (and check that everyone can talk) every this many steps; 0: only at the end.
    pub heal_every: usize,
}

impl Config {
    /// What one libFuzzer execution does.
    pub fn fuzz() -> Self {
        Self {
            max_steps: 200,
            jump_budget: 30_000,
            heal_every: 0,
        }
    }
}

/// Counts of what happened (for the report).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Network steps taken.
    pub steps: u64,
    /// Messages encrypted (including forward-jump bursts).
    pub encrypted: u64,
    /// Intact first deliveries that decrypted.
    pub delivered: u64,
    /// Deliveries that failed as required (replays, damage, out of limits).
    pub rejected: u64,
    /// Damaged messages whose parse failed before reaching the session.
    pub unparseable: u64,
    /// Damaged PreKeySignalMessages accepted under the known semantics.
    pub damaged_accepted: u64,
    /// Sessions started (bundles processed).
    pub sessions: u64,
    /// Identity changes.
    pub identity_changes: u64,
    /// Changed identities accepted by a user (`trust`).
    pub trusts: u64,
    /// Heal phases completed.
    pub heals: u64,
    /// New sessions a heal needed (protocol-level recovery).
    pub heal_resets: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.encrypted += o.encrypted;
        self.delivered += o.delivered;
        self.rejected += o.rejected;
        self.unparseable += o.unparseable;
        self.damaged_accepted += o.damaged_accepted;
        self.sessions += o.sessions;
        self.identity_changes += o.identity_changes;
        self.trusts += o.trusts;
        self.heals += o.heals;
        self.heal_resets += o.heal_resets;
    }
}

struct Party {
    store: InMemoryStore,
    address: Address,
    signed_prekey_id: u32,
}

/// One encrypted message.
struct Sent {
    from: usize,
    to: usize,
    kind: u8,
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
    /// The Alice base key of the sender's session (names the session on both sides).
    session: [u8; 33],
    version: u8,
    sender_identity: PublicKey,
    delivered: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Succeed,
    Fail(&'static str),
}

fn version_of(msg: &CiphertextMessage) -> u8 {
    match msg {
        CiphertextMessage::Whisper(m) => m.message_version(),
        CiphertextMessage::PreKey(m) => m.message_version(),
    }
}

struct World {
    parties: Vec<Party>,
    sent: Vec<Sent>,
    by_bytes: HashMap<Vec<u8>, usize>,
    network: Vec<usize>,
    /// (receiver, session, ratchet key) for every receiving chain a receiver ever had.
    seen_ratchets: HashSet<(usize, [u8; 33], [u8; 33])>,
    next_id: u32,
    jump_budget: u64,
    stats: Stats,
    step: u64,
    /// `Display` and `Debug` of errors seen (bounded), for the secret scan.
    errors: Vec<String>,
}

fn violation(what: &str) -> ! {
    panic!("conversation invariant violated: {what}");
}

fn session_key(s: &SessionState) -> [u8; 33] {
    s.alice_base_key.map(|k| k.serialize()).unwrap_or([0; 33])
}

impl World {
    fn new(n: usize) -> Self {
        let mut w = World {
            parties: Vec::new(),
            sent: Vec::new(),
            by_bytes: HashMap::new(),
            network: Vec::new(),
            seen_ratchets: HashSet::new(),
            next_id: 1000,
            jump_budget: 0,
            stats: Stats::default(),
            step: 0,
            errors: Vec::new(),
        };
        for i in 0..n {
            let address = Address::new(format!("party{i}"), 1);
            let (store, signed_prekey_id) = w.fresh_store(i);
            w.parties.push(Party {
                store,
                address,
                signed_prekey_id,
            });
        }
        w
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// A new installation: identity, registration id and a signed prekey.
    fn fresh_store(&mut self, i: usize) -> (InMemoryStore, u32) {
        let identity = IdentityKeyPair::generate();
        let reg = self.id() & 0x3fff;
        let mut store = InMemoryStore::new(identity.clone(), reg + i as u32);
        let spk_id = self.id();
        store
            .signed_prekeys
            .insert(spk_id, SignedPreKeyRecord::generate(spk_id, &identity, 1));
        (store, spk_id)
    }

    /// A fresh bundle of `p` (new one-time and Kyber prekeys as `opts` asks: bit 0 no one-time
    /// prekey, bit 1 X3DH, bit 2 last-resort Kyber key, bit 3 a new signed prekey).
    fn bundle(&mut self, p: usize, opts: u8) -> PreKeyBundle {
        if opts & 8 != 0 {
            let id = self.id();
            let party = &mut self.parties[p];
            let rec = SignedPreKeyRecord::generate(id, party.store.identity(), 2);
            party.store.signed_prekeys.insert(id, rec);
            party.signed_prekey_id = id;
        }
        let (otk_id, kyber_id) = (self.id(), self.id());
        let party = &mut self.parties[p];
        let identity = party.store.identity().clone();
        let spk = &party.store.signed_prekeys[&party.signed_prekey_id];
        let mut bundle = PreKeyBundle {
            registration_id: party.store.registration_id(),
            device_id: 1,
            identity_key: identity.public_key,
            signed_prekey_id: spk.id,
            signed_prekey: spk.key_pair.public_key,
            signed_prekey_signature: spk.signature.clone(),
            prekey: None,
            kyber: None,
        };
        if opts & 1 == 0 {
            let otk = PreKeyRecord::new(otk_id, PrivateKey::generate());
            bundle.prekey = Some((otk_id, otk.key_pair.public_key));
            party.store.prekeys.insert(otk_id, otk);
        }
        if opts & 2 == 0 {
            if let Ok(k) = KyberPreKeyRecord::generate(kyber_id, &identity, 3) {
                bundle.kyber = Some(KyberBundlePart {
                    id: k.id,
                    public_key: k.key_pair.public_key.clone(),
                    signature: k.signature.clone(),
                });
                party.store.kyber_prekeys.insert(k.id, (k, opts & 4 != 0));
            }
        }
        bundle
    }

    /// `x` starts a new session with `y` from a fresh bundle of `y`'s.
    fn start_session(&mut self, x: usize, y: usize, opts: u8) {
        let bundle = self.bundle(y, opts);
        let addr = self.parties[y].address.clone();
        for _ in 0..2 {
            let store = &mut self.parties[x].store;
            let before = snapshot(store);
            match process_prekey_bundle(store, &addr, &bundle) {
                Ok(()) => {
                    self.stats.sessions += 1;
                    return;
                }
                Err(e) => {
                    if snapshot(store) != before {
                        violation("a failed process_prekey_bundle changed the store");
                    }
                    match e {
                        // The user accepts the peer's new safety number.
                        Error::UntrustedIdentity { .. } => {
                            store.trust(&addr, bundle.identity_key);
                            self.stats.trusts += 1;
                        }
                        e => violation(&format!("a genuine bundle was refused: {e}")),
                    }
                }
            }
        }
        violation("a trusted genuine bundle was refused");
    }

    fn current_session(&self, x: usize, y: usize) -> Option<&SessionState> {
        let addr = &self.parties[y].address;
        self.parties[x]
            .store
            .sessions
            .get(addr)
            .and_then(|r| r.current.as_ref())
    }

    /// `x` encrypts a new message for `y`; returns its index in `sent`.
    fn send(&mut self, x: usize, y: usize, extra: &[u8]) -> usize {
        match self.encrypt_message(x, y, extra, true) {
            Some(id) => id,
            None => violation("a recorded message was not recorded"),
        }
    }

    /// `x` encrypts a message for `y`. With `record`, it is logged in `sent` (its index is
    /// returned) and a failure is checked to leave the store unchanged; without, it is a
    /// message the network loses at once (forward-jump bursts), where any failure is a
    /// violation anyway.
    fn encrypt_message(&mut self, x: usize, y: usize, extra: &[u8], record: bool) -> Option<usize> {
        if self.current_session(x, y).is_none() {
            self.start_session(x, y, 0);
        }
        for _ in 0..2 {
            let Some(state) = self.current_session(x, y) else {
                violation("no session right after process_prekey_bundle");
            };
            let (session, version) = (session_key(state), state.version);
            let plaintext = {
                let mut p = format!("{}:{x}>{y}:", self.sent.len()).into_bytes();
                p.extend_from_slice(extra);
                p
            };
            let addr = self.parties[y].address.clone();
            let sender_identity = self.parties[x].store.identity().public_key;
            let store = &mut self.parties[x].store;
            let before = if record { snapshot(store) } else { Vec::new() };
            match encrypt(store, &addr, &plaintext) {
                Ok(m) if !record => {
                    drop(m);
                    self.stats.encrypted += 1;
                    return None;
                }
                Ok(m) => {
                    self.stats.encrypted += 1;
                    let kind = m.message_type();
                    let bytes = m.serialized().to_vec();
                    let id = self.sent.len();
                    self.by_bytes.insert(bytes.clone(), id);
                    self.sent.push(Sent {
                        from: x,
                        to: y,
                        kind,
                        bytes,
                        plaintext,
                        session,
                        version,
                        sender_identity,
                        delivered: false,
                    });
                    return Some(id);
                }
                Err(e) => {
                    if !record {
                        violation(&format!("encrypt failed in a burst: {e}"));
                    }
                    if snapshot(store) != before {
                        violation("a failed encrypt changed the store");
                    }
                    match e {
                        // Our current session is with an identity we no longer trust (the peer
                        // reinstalled and we accepted the new one): start a new session.
                        Error::UntrustedIdentity { .. } => self.start_session(x, y, 0),
                        e => violation(&format!("encrypt failed: {e}")),
                    }
                }
            }
        }
        violation("encrypt failed after a new session");
    }

    /// What must happen when `s` arrives intact, judged from the receiver's state.
    fn expect(&self, s: &Sent) -> Expect {
        if s.delivered {
            return Expect::Fail("replay");
        }
        let receiver = &self.parties[s.to].store;
        let from = &self.parties[s.from].address;
        if receiver
            .identities
            .get(from)
            .is_some_and(|k| *k != s.sender_identity)
        {
            return Expect::Fail("untrusted identity");
        }
        let Some(msg) = parse(s.kind, &s.bytes) else {
            violation("an intact message does not parse");
        };
        let inner = match &msg {
            CiphertextMessage::Whisper(m) => m,
            CiphertextMessage::PreKey(m) => m.message(),
        };
        let counter = inner.counter();
        let ratchet = inner.ratchet_key();
        let record = receiver.sessions.get(from);
        let state = record.and_then(|r| {
            r.sessions()
                .find(|st| st.version == s.version && session_key(st) == s.session)
        });
        match state {
            Some(st) => match st.receiver_chain_index(ratchet) {
                Some(i) => {
                    let chain = &st.receiver_chains[i];
                    let index = chain.chain_key.index();
                    if counter >= index {
                        if counter - index <= MAX_FORWARD_JUMPS {
                            Expect::Succeed
                        } else {
                            Expect::Fail("forward jump past the limit")
                        }
                    } else if chain.message_keys.iter().any(|(c, _)| *c == counter) {
                        Expect::Succeed
                    } else {
                        Expect::Fail("skipped key no longer stored")
                    }
                }
                None => {
                    let seen = (s.to, s.session, ratchet.serialize());
                    if self.seen_ratchets.contains(&seen) {
                        Expect::Fail("receiving chain no longer kept")
                    } else if counter > MAX_FORWARD_JUMPS {
                        Expect::Fail("forward jump past the limit on a new chain")
                    } else {
                        Expect::Succeed
                    }
                }
            },
            None => match &msg {
                CiphertextMessage::Whisper(_) => Expect::Fail("session not kept"),
                CiphertextMessage::PreKey(m) => {
                    let have_otk = m.pre_key_id().is_none_or(|id| receiver.prekeys.contains_key(&id));
                    let have_spk = receiver.signed_prekeys.contains_key(&m.signed_pre_key_id());
                    let have_kyber = m
                        .kyber_pre_key_id()
                        .is_none_or(|id| receiver.kyber_prekeys.contains_key(&id));
                    let replayed = m.pre_key_id().is_none()
                        && receiver
                            .used_base_keys
                            .get(&m.signed_pre_key_id())
                            .is_some_and(|set| set.contains(m.base_key()));
                    if !(have_otk && have_spk && have_kyber) {
                        Expect::Fail("prekeys used up or gone")
                    } else if replayed {
                        Expect::Fail("base key already used")
                    } else if counter > MAX_FORWARD_JUMPS {
                        Expect::Fail("forward jump past the limit in a new session")
                    } else {
                        Expect::Succeed
                    }
                }
            },
        }
    }

    fn note_error(&mut self, e: &Error) {
        if self.errors.len() < 4096 {
            self.errors.push(format!("{e} {e:?}"));
        }
    }

    fn note_chains(&mut self, p: usize, from: usize) {
        let addr = &self.parties[from].address;
        let Some(state) = self.parties[p]
            .store
            .sessions
            .get(addr)
            .and_then(|r| r.current.as_ref())
        else {
            return;
        };
        let session = session_key(state);
        for c in &state.receiver_chains {
            self.seen_ratchets
                .insert((p, session, c.ratchet_key.serialize()));
        }
    }

    /// Delivers `sent[id]` intact; returns true if it decrypted.
    fn deliver(&mut self, id: usize) -> bool {
        for _ in 0..2 {
            let expect = self.expect(&self.sent[id]);
            let s = &self.sent[id];
            let (from, to) = (s.from, s.to);
            let Some(msg) = parse(s.kind, &s.bytes) else {
                violation("an intact message does not parse");
            };
            let addr = self.parties[from].address.clone();
            let store = &mut self.parties[to].store;
            let before = snapshot(store);
            match decrypt(store, &addr, &msg) {
                Ok(pt) => {
                    if pt != self.sent[id].plaintext {
                        violation("an intact message decrypted to a different plaintext");
                    }
                    if let Expect::Fail(why) = expect {
                        violation(&format!("a message that must fail ({why}) decrypted"));
                    }
                    self.sent[id].delivered = true;
                    self.stats.delivered += 1;
                    self.note_chains(to, from);
                    return true;
                }
                Err(e) => {
                    if snapshot(store) != before {
                        violation(&format!("a failed decrypt ({e}) changed the store"));
                    }
                    // SPQR (v4) counts messages per epoch across Double-Ratchet chains, with
                    // the same 25,000 limit (its counter starts at 1), as libsignal does: a
                    // jump the Double Ratchet allows may still exceed SPQR's. That failure is
                    // allowed (state unchanged, checked above); any other is a violation.
                    // Likewise SPQR keeps keys of at most 2,000 messages back per epoch (again
                    // counted across chains) and of a few epochs: a message the Double Ratchet
                    // still has a key for may be too old for SPQR ("key trimmed", "epoch out of
                    // range"), as in libsignal.
                    let spqr_gap = version_of(&msg) == 4
                        && (matches!(e, Error::MessageGapTooLarge { .. })
                            || e == Error::InvalidMessage(spqr::errors::KEY_TRIMMED)
                            || e == Error::InvalidMessage(spqr::errors::EPOCH_OUT_OF_RANGE));
                    if expect == Expect::Succeed && !spqr_gap {
                        violation(&format!(
                            "an intact message within the limits failed: {e} (step {})",
                            self.step
                        ));
                    }
                    self.stats.rejected += 1;
                    self.note_error(&e);
                    // The user accepts the new safety number of the sender's current
                    // installation, then the message is tried again.
                    let current = self.parties[from].store.identity().public_key;
                    if matches!(e, Error::UntrustedIdentity { .. })
                        && self.sent[id].sender_identity == current
                    {
                        self.parties[to].store.trust(&addr, current);
                        self.stats.trusts += 1;
                        continue;
                    }
                    return false;
                }
            }
        }
        false
    }

    /// Delivers damaged bytes made from the messages `origins` (the first names the pair).
    fn deliver_damaged(&mut self, bytes: Vec<u8>, kind: u8, origins: &[usize]) {
        if let Some(&id) = self.by_bytes.get(&bytes) {
            if self.sent[id].kind == kind {
                self.deliver(id);
                return;
            }
        }
        let (from, to) = (self.sent[origins[0]].from, self.sent[origins[0]].to);
        let Some(msg) = parse(kind, &bytes) else {
            self.stats.unparseable += 1;
            return;
        };
        let addr = self.parties[from].address.clone();
        let store = &mut self.parties[to].store;
        let before = snapshot(store);
        match decrypt(store, &addr, &msg) {
            Err(e) => {
                if snapshot(store) != before {
                    violation(&format!(
                        "a failed decrypt of a damaged message ({e}) changed the store"
                    ));
                }
                self.stats.rejected += 1;
                self.note_error(&e);
            }
            Ok(pt) => {
                let CiphertextMessage::PreKey(m) = &msg else {
                    violation("a damaged SignalMessage decrypted");
                };
                let original = origins.iter().copied().find(|&o| {
                    let s = &self.sent[o];
                    if s.delivered || s.from != from || s.to != to || s.plaintext != pt {
                        return false;
                    }
                    match parse(s.kind, &s.bytes) {
                        Some(CiphertextMessage::PreKey(om)) => {
                            om.message().serialized() == m.message().serialized()
                                && om.base_key() == m.base_key()
                                && om.identity_key() == m.identity_key()
                        }
                        _ => false,
                    }
                });
                let Some(o) = original else {
                    violation("a damaged message decrypted to another plaintext, twice, or with other authenticated content");
                };
                self.sent[o].delivered = true;
                self.stats.damaged_accepted += 1;
                self.note_chains(to, from);
            }
        }
    }

    fn pick_party(&self, b: u8) -> usize {
        usize::from(b) % self.parties.len()
    }

    fn pick_pair(&self, a: u8, b: u8) -> (usize, usize) {
        let x = self.pick_party(a);
        let n = self.parties.len();
        let y = (x + 1 + usize::from(b) % (n - 1)) % n;
        (x, y)
    }

    fn pick_flight(&self, b: u8) -> Option<usize> {
        (!self.network.is_empty()).then(|| usize::from(b) % self.network.len())
    }

    /// Encrypts `n` messages from `x` to `y` that the network loses, except the first and the
    /// last, which it keeps (delayed).
    fn jump(&mut self, x: usize, y: usize, n: u64) {
        let n = n.min(self.jump_budget);
        if n == 0 {
            return;
        }
        self.jump_budget -= n;
        for i in 0..n {
            if i == 0 || i + 1 == n {
                let id = self.send(x, y, b"");
                self.network.push(id);
            } else {
                self.encrypt_message(x, y, b"", false);
            }
        }
    }

    /// One network step; false when the source is exhausted.
    fn step(&mut self, src: &mut dyn Source) -> bool {
        let Some(op) = src.byte() else {
            return false;
        };
        let mut b = || src.byte().unwrap_or(0);
        self.step += 1;
        self.stats.steps += 1;
        match op {
            0..=79 => {
                let (x, y) = self.pick_pair(b(), b());
                let n = usize::from(b() % 48);
                let extra: Vec<u8> = (0..n).map(|_| b()).collect();
                let id = self.send(x, y, &extra);
                self.network.push(id);
            }
            80..=159 => {
                if let Some(i) = self.pick_flight(b()) {
                    let id = self.network.remove(i);
                    self.deliver(id);
                }
            }
            160..=169 => {
                if let Some(i) = self.pick_flight(b()) {
                    self.network.remove(i);
                }
            }
            170..=184 => {
                if let Some(i) = self.pick_flight(b()) {
                    let id = self.network[i];
                    self.deliver(id);
                }
            }
            185..=194 => {
                if !self.sent.is_empty() {
                    let i = usize::from(u16::from_le_bytes([b(), b()])) % self.sent.len();
                    self.deliver(i);
                }
            }
            195..=209 => {
                if let Some(i) = self.pick_flight(b()) {
                    let id = self.network[i];
                    let mut bytes = self.sent[id].bytes.clone();
                    let pos = usize::from(u16::from_le_bytes([b(), b()])) % bytes.len();
                    bytes[pos] ^= 1 << (b() % 8);
                    let kind = self.sent[id].kind;
                    self.deliver_damaged(bytes, kind, &[id]);
                }
            }
            210..=219 => {
                if let Some(i) = self.pick_flight(b()) {
                    let id = self.network[i];
                    let mut bytes = self.sent[id].bytes.clone();
                    let keep = usize::from(u16::from_le_bytes([b(), b()])) % bytes.len();
                    bytes.truncate(keep);
                    let kind = self.sent[id].kind;
                    self.deliver_damaged(bytes, kind, &[id]);
                }
            }
            220..=229 => {
                if let (Some(i), Some(j)) = (self.pick_flight(b()), self.pick_flight(b())) {
                    let (a, c) = (self.network[i], self.network[j]);
                    let (ba, bc) = (&self.sent[a].bytes, &self.sent[c].bytes);
                    let cut_a = usize::from(u16::from_le_bytes([b(), b()])) % (ba.len() + 1);
                    let cut_c = usize::from(u16::from_le_bytes([b(), b()])) % (bc.len() + 1);
                    let mut bytes = ba[..cut_a].to_vec();
                    bytes.extend_from_slice(&bc[cut_c..]);
                    let kind = self.sent[a].kind;
                    self.deliver_damaged(bytes, kind, &[a, c]);
                }
            }
            230..=234 => {
                if let Some(i) = self.pick_flight(b()) {
                    let id = self.network[i];
                    let kind = if self.sent[id].kind == PREKEY_TYPE {
                        WHISPER_TYPE
                    } else {
                        PREKEY_TYPE
                    };
                    let bytes = self.sent[id].bytes.clone();
                    self.deliver_damaged(bytes, kind, &[id]);
                }
            }
            235..=241 => {
                let (x, y) = self.pick_pair(b(), b());
                let opts = b();
                self.start_session(x, y, opts);
            }
            242..=244 => {
                let p = self.pick_party(b());
                let (store, spk) = self.fresh_store(p);
                self.parties[p].store = store;
                self.parties[p].signed_prekey_id = spk;
                self.stats.identity_changes += 1;
            }
            245..=249 => {
                let (x, y) = self.pick_pair(b(), b());
                let n = match b() % 8 {
                    0 => 1999,
                    1 => 2000,
                    2 => 2001,
                    _ => u64::from(b() % 64) + 1,
                };
                self.jump(x, y, n);
            }
            250 => {
                let (x, y) = self.pick_pair(b(), b());
                let n = match b() % 4 {
                    0 => 25_000,
                    1 => 25_001,
                    2 => 25_002,
                    _ => 24_990 + u64::from(b() % 20),
                };
                self.jump(x, y, n);
            }
            251..=255 => {
                if let Some(i) = self.pick_flight(b()) {
                    let id = self.network.remove(i);
                    self.network.push(id);
                }
            }
        }
        true
    }

    /// The network stops misbehaving: everything in flight arrives, then every pair talks.
    fn heal(&mut self) {
        let flights = std::mem::take(&mut self.network);
        for id in flights {
            self.deliver(id);
        }
        let n = self.parties.len();
        for x in 0..n {
            for y in x + 1..n {
                self.heal_pair(x, y);
            }
        }
        self.stats.heals += 1;
    }

    fn send_and_deliver(&mut self, x: usize, y: usize) -> bool {
        let id = self.send(x, y, b"heal");
        self.deliver(id)
    }

    fn heal_pair(&mut self, x: usize, y: usize) {
        for attempt in 0..6 {
            let a = self.send_and_deliver(x, y);
            let b = self.send_and_deliver(y, x);
            if a && b {
                for _ in 0..2 {
                    if !(self.send_and_deliver(x, y) && self.send_and_deliver(y, x)) {
                        violation("a pair stopped talking right after a round trip");
                    }
                }
                return;
            }
            // The protocol's own recovery, as clients do it: a new session. First the side
            // that cannot decrypt resets (Signal's automatic session reset): had the sender
            // reset instead, the next message the receiver sends on the old session would
            // promote that session back on the sender's side (as libsignal does), and a
            // direction stuck for good (e.g. past SPQR's per-epoch limit, which only the
            // stuck direction's own messages could advance) would stay stuck. Then the sender.
            if attempt >= 1 {
                // Odd attempts: the receiver of the failing direction; even: its sender.
                let receiver_resets = attempt % 2 == 1;
                if !a {
                    let (r, p) = if receiver_resets { (y, x) } else { (x, y) };
                    self.start_session(r, p, 0);
                }
                if !b {
                    let (r, p) = if receiver_resets { (x, y) } else { (y, x) };
                    self.start_session(r, p, 0);
                }
                self.stats.heal_resets += 1;
            }
        }
        violation("two parties could not talk again after the network healed");
    }
}

/// Runs one conversation over `src` and returns its statistics.
pub fn run_with(src: &mut dyn Source, parties: usize, config: &Config) -> Stats {
    run_keeping_stores(src, parties, config).0
}

/// [`run_with`], also returning every party's final store and the text of the errors seen.
pub fn run_keeping_stores(
    src: &mut dyn Source,
    parties: usize,
    config: &Config,
) -> (Stats, Vec<InMemoryStore>, Vec<String>) {
    let mut w = World::new(parties.clamp(2, 3));
    w.jump_budget = config.jump_budget;
    let mut steps = 0;
    let mut more = true;
    while more && steps < config.max_steps {
        more = w.step(src);
        steps += 1;
        if config.heal_every > 0 && steps % config.heal_every == 0 {
            w.heal();
        }
    }
    w.heal();
    let stores = w.parties.into_iter().map(|p| p.store).collect();
    (w.stats, stores, w.errors)
}

/// The deterministic runner: `runs` conversations as `config` bounds them, with schedules from
/// SplitMix seeded by `seed`, `seed + 1`, ... (parties alternate 2 and 3). Panics on a
/// violation, naming the seed of the failing conversation.
pub fn run_seeded(seed: u64, runs: u64, config: &Config) -> Stats {
    let steps = config.max_steps;
    let mut total = Stats::default();
    for r in 0..runs {
        let s = seed.wrapping_add(r);
        let stats = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_with(&mut SplitMix(s), 2 + (s % 2) as usize, config)
        }));
        match stats {
            Ok(st) => total.add(&st),
            Err(e) => std::panic::resume_unwind(Box::new(format!(
                "conversation seed {s} ({steps} steps): {}",
                e.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("panic")
            ))),
        }
    }
    total
}

/// Target entry point: first byte chooses 2 or 3 parties, the rest is the schedule.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let parties = 2 + usize::from(input.u8() & 1);
    run_with(&mut input, parties, &Config::fuzz());
}
