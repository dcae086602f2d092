//! The conversation fuzzer on a durable store that fails: two or three parties talk 1:1, with
//! sealed sender and in a sender-key group, every protocol operation running through the unit
//! of work (`uow::plan` over a snapshot, a compare-and-swap commit) on a
//! [`FlakyStore`](super::flaky_store::FlakyStore) whose commits the schedule makes fail, whose
//! connection it drops after a commit, and whose commits it makes lose races (another writer,
//! or another worker running the same operation first). The network drops, duplicates,
//! reorders, re-delivers, bit-flips and truncates 1:1 messages, sealed envelopes, group
//! messages and sender-key distributions.
//!
//! The schedule comes from a [`Source`]: the fuzz input (libFuzzer target `conversation_uow`)
//! or a seeded `SplitMix` stream (`rust/textsecure-core/tests/conversation_uow_fuzz.rs`).
//!
//! Checked (a violation panics with a description), besides the store-level invariants the
//! flaky store checks itself (a plan writes nothing; a conflicting commit writes nothing; a
//! stale change set is never applied):
//! * every message has one fate: it decrypts at most once, to what was sent, whichever way it
//!   arrives (again, duplicated, raced by a second worker, retried after a failed commit or a
//!   dropped connection); a message whose decryption was committed before the connection
//!   dropped is consumed (its plaintext lost to the caller, as without an inbox) and every
//!   later delivery of it fails with `DuplicateMessage`;
//! * nothing is lost to a fault: a decryption whose commit failed leaves the receiver's store
//!   byte-for-byte unchanged and decrypts, to the same plaintext, when retried; an intact
//!   message within the protocol's limits (decided from the receiver's state, as in
//!   `conversation`) decrypts; after the run everything in flight is delivered and every pair
//!   and the group talk again;
//! * a retried encryption after a dropped connection makes a fresh message (the next counter,
//!   or the next sender-key iteration), never the lost one's key again; a retried distribution
//!   describes the same sender key;
//! * a duplicate fails with `DuplicateMessage` while its chain is kept (any error after);
//!   a group message before the distribution fails with `NoSenderKey`;
//! * a damaged message, envelope or distribution fails with the receiver's store byte-for-byte
//!   unchanged, except for the known semantics of unauthenticated header fields (a
//!   PreKeySignalMessage's, the sealed envelope's version nibble): then it decrypts to the
//!   plaintext of its undelivered original, which counts as delivered; an unsealed damaged
//!   envelope never names another sender.

use std::collections::{HashMap, HashSet};

use textsecure_core::group::{DistributionKey, SenderKeyDistributionMessage, SenderKeyMessage};
use textsecure_core::message::{CiphertextMessage, PREKEY_TYPE};
use textsecure_core::prekey::{generate_bundle, BundleSpec, IdentityKeyPair, PreKeyBundle};
use textsecure_core::ratchet::MAX_FORWARD_JUMPS;
use textsecure_core::sealed_sender::{
    decrypt_to_usmc, unseal, SenderCertificate, SenderCertificateParts, UnsealOptions,
};
use textsecure_core::session::SessionOptions;
use textsecure_core::state::SessionState;
use textsecure_core::store::{Address, InMemoryStore};
use textsecure_core::uow::{Operation, Output};
use textsecure_core::{spqr, Error};

use super::conversation::Source;
use super::flaky_store::{Failure, Fault, FlakyStats, FlakyStore};
use super::session_decrypt::parse;
use super::support::{
    fixture_server_certs, server_key, snapshot, trust_root, Input, SplitMix, GROUP_UUID,
    SENDER_CERT_EXPIRES, VALIDATION_TIME,
};

/// Bounds of one run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most network steps before the network heals.
    pub max_steps: usize,
}

impl Config {
    /// What one libFuzzer execution does.
    pub fn fuzz() -> Self {
        Self { max_steps: 160 }
    }
}

/// Counts of what happened.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Network steps.
    pub steps: u64,
    /// 1:1 messages sent (sealed included).
    pub sent_direct: u64,
    /// Sealed-sender messages sent.
    pub sent_sealed: u64,
    /// Group messages sent (each delivered to every member).
    pub sent_group: u64,
    /// Distributions processed.
    pub distributions: u64,
    /// Messages decrypted once, to the caller.
    pub delivered: u64,
    /// Decryptions committed whose connection dropped (consumed, plaintext lost to the caller).
    pub consumed: u64,
    /// Deliveries of a delivered or consumed message, refused.
    pub duplicates_refused: u64,
    /// Intact messages refused by the protocol's limits (or before the distribution).
    pub limits_refused: u64,
    /// Damaged messages refused.
    pub damaged_refused: u64,
    /// Damaged messages accepted under the known semantics.
    pub damaged_accepted: u64,
    /// Retries after a failed commit that then decrypted.
    pub retried_after_commit_failure: u64,
    /// Encryptions retried after a dropped connection (a fresh message each).
    pub resent_after_drop: u64,
    /// Sessions started.
    pub sessions: u64,
    /// What the flaky stores injected.
    pub faults: FlakyStats,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.sent_direct += o.sent_direct;
        self.sent_sealed += o.sent_sealed;
        self.sent_group += o.sent_group;
        self.distributions += o.distributions;
        self.delivered += o.delivered;
        self.consumed += o.consumed;
        self.duplicates_refused += o.duplicates_refused;
        self.limits_refused += o.limits_refused;
        self.damaged_refused += o.damaged_refused;
        self.damaged_accepted += o.damaged_accepted;
        self.retried_after_commit_failure += o.retried_after_commit_failure;
        self.resent_after_drop += o.resent_after_drop;
        self.sessions += o.sessions;
        self.faults.add(&o.faults);
    }
}

fn violation(what: &str) -> ! {
    panic!("conversation_uow invariant violated: {what}");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Direct,
    Sealed,
    Group,
    Distribution,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Pending,
    /// Decrypted once, to the caller.
    Delivered,
    /// Decryption committed, the connection dropped: the caller never had the plaintext.
    Consumed,
}

struct Msg {
    kind: Kind,
    from: usize,
    to: usize,
    /// What travels (1:1: the message of `wire_type`; sealed: the envelope; group: the
    /// SenderKeyMessage; distribution: the SenderKeyDistributionMessage).
    bytes: Vec<u8>,
    /// The 1:1 message's type (direct and sealed).
    wire_type: u8,
    /// The 1:1 message (direct: `bytes`; sealed: inside the envelope).
    inner: Vec<u8>,
    plaintext: Vec<u8>,
    /// The sender's session (its Alice base key) and version (1:1 and sealed).
    session: [u8; 33],
    version: u8,
    /// Group: (chain id, iteration); distribution: (chain id, iteration described).
    chain: (u32, u32),
    fate: Fate,
}

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Succeed,
    /// Must fail, with `DuplicateMessage` when `dup`.
    Fail { why: &'static str, dup: bool },
    /// Must fail with `NoSenderKey`.
    NoSenderKey,
}

struct Party {
    fs: FlakyStore,
    address: Address,
    certificate: SenderCertificate,
}

struct World {
    parties: Vec<Party>,
    msgs: Vec<Msg>,
    network: Vec<usize>,
    /// (receiver, session, ratchet key) for every receiving chain a receiver ever had.
    seen_ratchets: HashSet<(usize, [u8; 33], [u8; 33])>,
    /// (receiver, sender) -> (chain id, first iteration the receiver holds).
    group_base: HashMap<(usize, usize), (u32, u32)>,
    next_id: u32,
    sequence: u64,
    stats: Stats,
}

fn group_key() -> DistributionKey {
    DistributionKey::Uuid(GROUP_UUID)
}

fn options() -> SessionOptions {
    SessionOptions::default()
}

fn session_key(s: &SessionState) -> [u8; 33] {
    s.alice_base_key.map(|k| k.serialize()).unwrap_or([0; 33])
}

fn inner_counter(kind: u8, bytes: &[u8]) -> Option<(u32, [u8; 33])> {
    let m = parse(kind, bytes)?;
    let inner = match &m {
        CiphertextMessage::Whisper(m) => m,
        CiphertextMessage::PreKey(m) => m.message(),
    };
    Some((inner.counter(), inner.ratchet_key().serialize()))
}

fn is_spqr_window(version: u8, e: &Error) -> bool {
    version == 4
        && (matches!(e, Error::MessageGapTooLarge { .. })
            || *e == Error::InvalidMessage(spqr::errors::KEY_TRIMMED)
            || *e == Error::InvalidMessage(spqr::errors::EPOCH_OUT_OF_RANGE))
}

impl World {
    fn new(n: usize) -> Self {
        let mut parties = Vec::new();
        for i in 0..n {
            let identity = IdentityKeyPair::generate();
            let name = format!("5eed{i:04x}-0000-4000-8000-{:012x}", 0xc0de + i);
            let certificate = SenderCertificate::new_with(
                SenderCertificateParts {
                    sender_uuid: &name,
                    sender_e164: None,
                    sender_device_id: 1,
                    identity_key: &identity.public_key,
                    expiration: SENDER_CERT_EXPIRES,
                },
                &fixture_server_certs()[0],
                &server_key(),
                &mut SplitMix(i as u64),
            )
            .unwrap_or_else(|e| violation(&format!("a sender certificate: {e}")));
            let store = InMemoryStore::new(identity, 100 + i as u32);
            parties.push(Party {
                fs: FlakyStore::new(store),
                address: Address::new(name, 1),
                certificate,
            });
        }
        World {
            parties,
            msgs: Vec::new(),
            network: Vec::new(),
            seen_ratchets: HashSet::new(),
            group_base: HashMap::new(),
            next_id: 1000,
            sequence: 0,
            stats: Stats::default(),
        }
    }

    fn store(&self, p: usize) -> &InMemoryStore {
        &self.parties[p].fs.store
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn plaintext(&mut self, tag: &str, x: usize, extra: &[u8]) -> Vec<u8> {
        self.sequence += 1;
        let mut p = format!("{tag} {x} #{}", self.sequence).into_bytes();
        p.extend_from_slice(extra);
        p
    }

    // -----------------------------------------------------------------------------------
    // Sessions
    // -----------------------------------------------------------------------------------

    /// A fresh bundle of `p`, its prekeys uploaded (bit 0: no one-time prekey, bit 1: X3DH,
    /// bit 2: a last-resort Kyber key).
    fn bundle(&mut self, p: usize, opts: u8) -> PreKeyBundle {
        let (otk, spk, kyber) = (self.id(), self.id(), self.id());
        let store = &mut self.parties[p].fs.store;
        let nb = generate_bundle(
            &store.identity().clone(),
            store.registration_id(),
            &BundleSpec {
                device_id: 1,
                prekey_id: (opts & 1 == 0).then_some(otk),
                signed_prekey_id: spk,
                kyber_prekey_id: (opts & 2 == 0).then_some(kyber),
                timestamp_ms: 1_700_000_000_000,
            },
        )
        .unwrap_or_else(|e| violation(&format!("generate_bundle: {e}")));
        store.signed_prekeys.insert(spk, nb.signed_prekey);
        if let Some(k) = nb.prekey {
            store.prekeys.insert(k.id, k);
        }
        if let Some(k) = nb.kyber_prekey {
            store.kyber_prekeys.insert(k.id, (k, opts & 4 != 0));
        }
        nb.bundle
    }

    /// `x` starts a new session with `y`.
    fn start_session(&mut self, x: usize, y: usize, opts: u8, fault: Fault) {
        let bundle = self.bundle(y, opts);
        let op = Operation::ProcessBundle {
            remote: self.parties[y].address.clone(),
            bundle,
            options: options(),
        };
        let a = self.parties[x].fs.execute(&op, fault);
        if let Some(Err(e)) = a.rival {
            violation(&format!("a rival's genuine bundle was refused: {e}"));
        }
        match a.result {
            Ok(_) => {}
            Err(Failure::Refused(e)) => violation(&format!("a genuine bundle was refused: {e}")),
            // Not told whether it happened: process it again (a second session from the
            // same bundle replaces the first, which sent nothing).
            Err(Failure::CommitFailed) | Err(Failure::Dropped(_)) => {
                if let Err(e) = self.parties[x].fs.execute(&op, Fault::None).result {
                    violation(&format!("a retried bundle failed: {e:?}"));
                }
            }
        }
        self.stats.sessions += 1;
    }

    fn current_session(&self, x: usize, y: usize) -> Option<&SessionState> {
        self.store(x)
            .sessions
            .get(&self.parties[y].address)
            .and_then(|r| r.current.as_ref())
    }

    // -----------------------------------------------------------------------------------
    // Sending
    // -----------------------------------------------------------------------------------

    /// The 1:1 message inside an encrypt's or sealed encrypt's output (for the recipient `y`).
    fn inner_of(&self, y: usize, out: &Output) -> (u8, Vec<u8>) {
        match out {
            Output::Message(m) => (m.message_type(), m.serialized().to_vec()),
            Output::Sealed(bytes) => match decrypt_to_usmc(bytes, self.store(y).identity()) {
                Ok(u) => (u.msg_type(), u.contents().to_vec()),
                Err(e) => violation(&format!("a sealed message does not open: {e}")),
            },
            o => violation(&format!("an encrypt returned {o:?}")),
        }
    }

    /// Records a 1:1 message `x` sent to `y` and puts it in flight.
    fn record_direct(&mut self, x: usize, y: usize, out: &Output, plaintext: &[u8]) {
        let (wire_type, inner) = self.inner_of(y, out);
        let (kind, bytes) = match out {
            Output::Sealed(b) => (Kind::Sealed, b.clone()),
            _ => (Kind::Direct, inner.clone()),
        };
        let Some(state) = self.current_session(x, y) else {
            violation("an encrypt left no current session");
        };
        let (session, version) = (session_key(state), state.version);
        self.msgs.push(Msg {
            kind,
            from: x,
            to: y,
            bytes,
            wire_type,
            inner,
            plaintext: plaintext.to_vec(),
            session,
            version,
            chain: (0, 0),
            fate: Fate::Pending,
        });
        self.network.push(self.msgs.len() - 1);
        self.stats.sent_direct += 1;
        if kind == Kind::Sealed {
            self.stats.sent_sealed += 1;
        }
    }

    /// `x` sends `y` a 1:1 message, sealed or not, through a store with `fault`.
    fn send_direct(&mut self, x: usize, y: usize, sealed: bool, extra: &[u8], fault: Fault) {
        if self.current_session(x, y).is_none() {
            self.start_session(x, y, extra.first().copied().unwrap_or(0), Fault::None);
        }
        let plaintext = self.plaintext(if sealed { "sealed" } else { "direct" }, x, extra);
        let remote = self.parties[y].address.clone();
        let op = if sealed {
            Operation::SealedEncrypt {
                remote,
                certificate: self.parties[x].certificate.clone(),
                plaintext: plaintext.clone(),
                content_hint: 0,
                group_id: None,
                options: options(),
            }
        } else {
            Operation::Encrypt {
                remote,
                plaintext: plaintext.clone(),
                options: options(),
            }
        };
        let a = self.parties[x].fs.execute(&op, fault);
        // A rival worker sent the same plaintext first: a real message too.
        match a.rival {
            Some(Ok(out)) => self.record_direct(x, y, &out, &plaintext),
            Some(Err(e)) => violation(&format!("a rival's encrypt failed: {e}")),
            None => {}
        }
        let out = match a.result {
            Ok(out) => out,
            Err(Failure::Refused(e)) => violation(&format!("an encrypt failed: {e}")),
            Err(Failure::CommitFailed) => {
                let before = snapshot(self.store(x));
                match self.parties[x].fs.execute(&op, Fault::None).result {
                    Ok(out) => {
                        if before == snapshot(self.store(x)) {
                            violation("a retried encrypt changed nothing");
                        }
                        out
                    }
                    Err(e) => violation(&format!("a retried encrypt failed: {e:?}")),
                }
            }
            Err(Failure::Dropped(lost)) => {
                // The lost message's key is used up: the retry must take the next one.
                let (lt, li) = self.inner_of(y, &lost);
                let out = match self.parties[x].fs.execute(&op, Fault::None).result {
                    Ok(out) => out,
                    Err(e) => violation(&format!("a retried encrypt failed: {e:?}")),
                };
                let (nt, ni) = self.inner_of(y, &out);
                match (inner_counter(lt, &li), inner_counter(nt, &ni)) {
                    (Some((lc, lr)), Some((nc, nr))) if lr == nr && nc == lc + 1 => {}
                    (l, n) => violation(&format!(
                        "a retried encrypt after a dropped connection is not the next message: {l:?} then {n:?}"
                    )),
                }
                self.stats.resent_after_drop += 1;
                out
            }
        };
        self.record_direct(x, y, &out, &plaintext);
    }

    // -----------------------------------------------------------------------------------
    // Groups
    // -----------------------------------------------------------------------------------

    fn own_sender_key(&self, x: usize) -> Option<(u32, u32)> {
        let key = (self.parties[x].address.clone(), group_key());
        self.store(x)
            .sender_keys
            .get(&key)
            .and_then(|r| r.states().next())
            .map(|s| (s.chain_id(), s.iteration()))
    }

    /// `x` creates (or describes again) its sender key and sends the distribution to the
    /// members `to` (bit i: member i).
    fn distribute(&mut self, x: usize, to: u8, fault: Fault) {
        let op = Operation::CreateDistribution {
            sender: self.parties[x].address.clone(),
            key: group_key(),
        };
        let a = self.parties[x].fs.execute(&op, fault);
        let rival_chain = match &a.rival {
            Some(Ok(Output::Distribution(m))) => Some(m.chain_id()),
            Some(o) => violation(&format!("a rival's distribution: {o:?}")),
            None => None,
        };
        let m = match a.result {
            Ok(Output::Distribution(m)) => m,
            Ok(o) => violation(&format!("a distribution returned {o:?}")),
            Err(Failure::Refused(e)) => violation(&format!("a distribution failed: {e}")),
            Err(Failure::CommitFailed) => match self.parties[x].fs.execute(&op, Fault::None).result
            {
                Ok(Output::Distribution(m)) => m,
                o => violation(&format!("a retried distribution: {o:?}")),
            },
            Err(Failure::Dropped(lost)) => {
                let Output::Distribution(lost) = *lost else {
                    violation("a distribution returned something else");
                };
                match self.parties[x].fs.execute(&op, Fault::None).result {
                    Ok(Output::Distribution(m)) => {
                        if m.chain_id() != lost.chain_id()
                            || m.signing_key() != lost.signing_key()
                            || m.iteration() != lost.iteration()
                        {
                            violation("a retried distribution describes another sender key");
                        }
                        m
                    }
                    o => violation(&format!("a retried distribution: {o:?}")),
                }
            }
        };
        if rival_chain.is_some_and(|c| c != m.chain_id()) {
            violation("two workers created two sender keys");
        }
        if self.own_sender_key(x).map(|s| s.0) != Some(m.chain_id()) {
            violation("the distribution is not the stored sender key");
        }
        for y in 0..self.parties.len() {
            if y != x && to & (1 << y) != 0 {
                self.msgs.push(Msg {
                    kind: Kind::Distribution,
                    from: x,
                    to: y,
                    bytes: m.serialized().to_vec(),
                    wire_type: 0,
                    inner: Vec::new(),
                    plaintext: Vec::new(),
                    session: [0; 33],
                    version: 0,
                    chain: (m.chain_id(), m.iteration()),
                    fate: Fate::Pending,
                });
                self.network.push(self.msgs.len() - 1);
            }
        }
    }

    fn record_group(&mut self, x: usize, m: &SenderKeyMessage, plaintext: &[u8]) {
        for y in 0..self.parties.len() {
            if y == x {
                continue;
            }
            self.msgs.push(Msg {
                kind: Kind::Group,
                from: x,
                to: y,
                bytes: m.serialized().to_vec(),
                wire_type: 0,
                inner: Vec::new(),
                plaintext: plaintext.to_vec(),
                session: [0; 33],
                version: 0,
                chain: (m.chain_id(), m.iteration()),
                fate: Fate::Pending,
            });
            self.network.push(self.msgs.len() - 1);
        }
        self.stats.sent_group += 1;
    }

    /// `x` sends a group message (creating and distributing its sender key first if needed).
    fn send_group(&mut self, x: usize, extra: &[u8], fault: Fault) {
        if self.own_sender_key(x).is_none() {
            let op = Operation::GroupEncrypt {
                sender: self.parties[x].address.clone(),
                key: group_key(),
                plaintext: b"before the key".to_vec(),
            };
            let before = snapshot(self.store(x));
            match self.parties[x].fs.execute(&op, fault).result {
                Err(Failure::Refused(Error::NoSenderKey(_))) => {}
                o => violation(&format!("a group encrypt without a sender key: {o:?}")),
            }
            if snapshot(self.store(x)) != before {
                violation("a refused group encrypt changed the store");
            }
            self.distribute(x, 0xff, Fault::None);
        }
        let plaintext = self.plaintext("group", x, extra);
        let op = Operation::GroupEncrypt {
            sender: self.parties[x].address.clone(),
            key: group_key(),
            plaintext: plaintext.clone(),
        };
        let a = self.parties[x].fs.execute(&op, fault);
        match a.rival {
            Some(Ok(Output::GroupMessage(m))) => self.record_group(x, &m, &plaintext),
            Some(o) => violation(&format!("a rival's group encrypt: {o:?}")),
            None => {}
        }
        let m = match a.result {
            Ok(Output::GroupMessage(m)) => m,
            Ok(o) => violation(&format!("a group encrypt returned {o:?}")),
            Err(Failure::Refused(e)) => violation(&format!("a group encrypt failed: {e}")),
            Err(Failure::CommitFailed) => match self.parties[x].fs.execute(&op, Fault::None).result
            {
                Ok(Output::GroupMessage(m)) => m,
                o => violation(&format!("a retried group encrypt: {o:?}")),
            },
            Err(Failure::Dropped(lost)) => {
                let Output::GroupMessage(lost) = *lost else {
                    violation("a group encrypt returned something else");
                };
                match self.parties[x].fs.execute(&op, Fault::None).result {
                    Ok(Output::GroupMessage(m)) => {
                        if m.chain_id() != lost.chain_id() || m.iteration() != lost.iteration() + 1
                        {
                            violation("a retried group encrypt is not the next iteration");
                        }
                        self.stats.resent_after_drop += 1;
                        m
                    }
                    o => violation(&format!("a retried group encrypt: {o:?}")),
                }
            }
        };
        if self.own_sender_key(x) != Some((m.chain_id(), m.iteration() + 1)) {
            violation("the sender key did not move past the message sent");
        }
        self.record_group(x, &m, &plaintext);
    }

    // -----------------------------------------------------------------------------------
    // Expectations
    // -----------------------------------------------------------------------------------

    /// What delivering the intact message `id` must do, from its receiver's state.
    fn expect(&self, id: usize) -> Expect {
        let s = &self.msgs[id];
        match s.kind {
            Kind::Direct | Kind::Sealed => self.expect_direct(s),
            Kind::Group => self.expect_group(s),
            Kind::Distribution => Expect::Succeed,
        }
    }

    fn expect_group(&self, s: &Msg) -> Expect {
        let Some(&(chain, base)) = self.group_base.get(&(s.to, s.from)) else {
            return Expect::NoSenderKey;
        };
        if chain != s.chain.0 {
            violation("a sender has two chains");
        }
        if s.fate != Fate::Pending {
            Expect::Fail {
                why: "already decrypted",
                dup: true,
            }
        } else if s.chain.1 < base {
            Expect::Fail {
                why: "before the distribution the receiver holds",
                dup: true,
            }
        } else {
            Expect::Succeed
        }
    }

    fn expect_direct(&self, s: &Msg) -> Expect {
        let receiver = self.store(s.to);
        let from = &self.parties[s.from].address;
        let Some(msg) = parse(s.wire_type, &s.inner) else {
            violation("an intact message does not parse");
        };
        let inner = match &msg {
            CiphertextMessage::Whisper(m) => m,
            CiphertextMessage::PreKey(m) => m.message(),
        };
        let (counter, ratchet) = (inner.counter(), inner.ratchet_key());
        let fail = |why| Expect::Fail { why, dup: false };
        let state = receiver.sessions.get(from).and_then(|r| {
            r.sessions()
                .find(|st| st.version == s.version && session_key(st) == s.session)
        });
        let e = match state {
            Some(st) => match st.receiver_chain_index(ratchet) {
                Some(i) => {
                    let chain = &st.receiver_chains[i];
                    let index = chain.chain_key.index();
                    if counter >= index {
                        if counter - index <= MAX_FORWARD_JUMPS {
                            Expect::Succeed
                        } else {
                            fail("forward jump past the limit")
                        }
                    } else if chain.message_keys.iter().any(|(c, _)| *c == counter) {
                        Expect::Succeed
                    } else {
                        Expect::Fail {
                            why: "key used or discarded",
                            dup: true,
                        }
                    }
                }
                None => {
                    if self
                        .seen_ratchets
                        .contains(&(s.to, s.session, ratchet.serialize()))
                    {
                        fail("receiving chain no longer kept")
                    } else {
                        Expect::Succeed
                    }
                }
            },
            None => match &msg {
                CiphertextMessage::Whisper(_) => fail("session not kept"),
                CiphertextMessage::PreKey(m) => {
                    let have = m
                        .pre_key_id()
                        .is_none_or(|id| receiver.prekeys.contains_key(&id))
                        && receiver
                            .signed_prekeys
                            .contains_key(&m.signed_pre_key_id())
                        && m.kyber_pre_key_id()
                            .is_none_or(|id| receiver.kyber_prekeys.contains_key(&id));
                    let replayed = m.pre_key_id().is_none()
                        && receiver
                            .used_base_keys
                            .get(&m.signed_pre_key_id())
                            .is_some_and(|set| set.contains(m.base_key()));
                    if !have {
                        fail("prekeys used up")
                    } else if replayed {
                        fail("base key already used")
                    } else {
                        Expect::Succeed
                    }
                }
            },
        };
        if s.fate != Fate::Pending {
            if e == Expect::Succeed {
                violation("the receiver's state would decrypt a message a second time");
            }
            return match e {
                Expect::Fail { dup: true, .. } => e,
                _ => fail("already decrypted, its chain gone"),
            };
        }
        e
    }

    fn note_chains(&mut self, p: usize, from: usize) {
        let addr = &self.parties[from].address;
        let Some(record) = self.store(p).sessions.get(addr) else {
            return;
        };
        let mut seen = Vec::new();
        for state in record.sessions() {
            let session = session_key(state);
            for c in &state.receiver_chains {
                seen.push((p, session, c.ratchet_key.serialize()));
            }
        }
        self.seen_ratchets.extend(seen);
    }

    // -----------------------------------------------------------------------------------
    // Receiving
    // -----------------------------------------------------------------------------------

    /// The operation that decrypts `bytes` as a message of `kind` from `from` at `to`
    /// (None: it does not parse, or the envelope does not unseal; then `unsealed_from` is
    /// irrelevant). Also returns the sender a sealed envelope named.
    fn receive_op(
        &self,
        kind: Kind,
        wire_type: u8,
        from: usize,
        to: usize,
        bytes: &[u8],
    ) -> Option<(Operation, Option<Address>)> {
        let sender = self.parties[from].address.clone();
        Some(match kind {
            Kind::Direct => (
                Operation::Decrypt {
                    remote: sender,
                    message: parse(wire_type, bytes)?,
                    options: options(),
                },
                None,
            ),
            Kind::Sealed => {
                let roots = [trust_root().public_key()];
                let opts = UnsealOptions {
                    trust_roots: &roots,
                    timestamp: VALIDATION_TIME,
                    known_servers: &[],
                    local_address: Some(&self.parties[to].address),
                };
                let usmc = unseal(bytes, self.store(to).identity(), &opts).ok()?;
                let named = usmc.sender().sender_address();
                (
                    Operation::SealedDecrypt {
                        usmc,
                        options: options(),
                    },
                    Some(named),
                )
            }
            Kind::Group => (
                Operation::GroupDecrypt {
                    sender,
                    key: group_key(),
                    message: SenderKeyMessage::deserialize(bytes).ok()?,
                },
                None,
            ),
            Kind::Distribution => (
                Operation::ProcessDistribution {
                    sender,
                    key: group_key(),
                    message: SenderKeyDistributionMessage::deserialize(bytes).ok()?,
                },
                None,
            ),
        })
    }

    fn plaintext_of(out: Output) -> Option<Vec<u8>> {
        match out {
            Output::Plaintext(p) | Output::SealedPlaintext(_, p) => Some(p),
            _ => None,
        }
    }

    /// Judges one decryption outcome of the intact message `id` against `expect`; returns
    /// whether it decrypted (and so changed the message's fate to `fate`).
    fn judge(&mut self, id: usize, expect: &Expect, r: Result<Vec<u8>, Error>, fate: Fate) -> bool {
        let s = &self.msgs[id];
        match r {
            Ok(pt) => {
                if s.fate != Fate::Pending {
                    violation(&format!(
                        "a message decrypted twice ({:?}, {:?})",
                        s.kind, s.fate
                    ));
                }
                if pt != s.plaintext {
                    violation("a message decrypted to another plaintext");
                }
                if *expect != Expect::Succeed {
                    violation(&format!("a message that must fail decrypted: {expect:?}"));
                }
                let (to, from) = (s.to, s.from);
                self.msgs[id].fate = fate;
                match fate {
                    Fate::Delivered => self.stats.delivered += 1,
                    _ => self.stats.consumed += 1,
                }
                self.note_chains(to, from);
                true
            }
            Err(e) => {
                match expect {
                    Expect::Succeed => {
                        if !is_spqr_window(s.version, &e) {
                            violation(&format!(
                                "an intact message within the limits failed ({:?}): {e}",
                                s.kind
                            ));
                        }
                        self.stats.limits_refused += 1;
                    }
                    Expect::Fail { dup, why } => {
                        if *dup && !matches!(e, Error::DuplicateMessage { .. }) {
                            violation(&format!(
                                "a duplicate ({why}, {:?}) failed with {e}, not DuplicateMessage",
                                s.kind
                            ));
                        }
                        if s.fate == Fate::Pending {
                            self.stats.limits_refused += 1;
                        } else {
                            self.stats.duplicates_refused += 1;
                        }
                    }
                    Expect::NoSenderKey => {
                        if !matches!(e, Error::NoSenderKey(_)) {
                            violation(&format!("a group message before its key failed with {e}"));
                        }
                        self.stats.limits_refused += 1;
                    }
                }
                false
            }
        }
    }

    /// Processes the distribution `id` at its receiver (an outcome of `ProcessDistribution`).
    fn judge_distribution(&mut self, id: usize, before: Option<(u32, u32, Vec<u8>)>) {
        let (from, to, chain) = (self.msgs[id].from, self.msgs[id].to, self.msgs[id].chain);
        let key = (self.parties[from].address.clone(), group_key());
        let rec = self.store(to).sender_keys.get(&key);
        let Some(state) = rec.and_then(|r| r.states().find(|s| s.chain_id() == chain.0)) else {
            violation("a processed distribution left no state");
        };
        match before {
            Some((c, it, bytes)) if c == chain.0 => {
                if state.iteration() != it || rec.map(|r| r.serialize()) != Some(bytes) {
                    violation("processing a distribution again changed the chain's progress");
                }
            }
            _ => {
                if state.iteration() != chain.1 {
                    violation("a new distribution's state is not at its iteration");
                }
            }
        }
        self.group_base.entry((to, from)).or_insert(chain);
        self.stats.distributions += 1;
    }

    fn held_chain(&self, id: usize) -> Option<(u32, u32, Vec<u8>)> {
        let (from, to) = (self.msgs[id].from, self.msgs[id].to);
        let key = (self.parties[from].address.clone(), group_key());
        let rec = self.store(to).sender_keys.get(&key)?;
        let s = rec.states().next()?;
        Some((s.chain_id(), s.iteration(), rec.serialize()))
    }

    /// Delivers the intact message `id` through a store with `fault` (`retry_now`: after a
    /// failed commit the receiver tries again at once; otherwise the message goes back in
    /// flight). Returns whether the caller got its plaintext.
    fn deliver(&mut self, id: usize, fault: Fault, retry_now: bool) -> bool {
        let (kind, wire_type, from, to) = {
            let s = &self.msgs[id];
            (s.kind, s.wire_type, s.from, s.to)
        };
        let bytes = self.msgs[id].bytes.clone();
        let Some((op, named)) = self.receive_op(kind, wire_type, from, to, &bytes) else {
            violation(&format!("an intact {kind:?} does not parse or unseal"));
        };
        if named.is_some_and(|n| n != self.parties[from].address) {
            violation("an intact envelope names another sender");
        }
        if kind == Kind::Distribution {
            let before = self.held_chain(id);
            let a = self.parties[to].fs.execute(&op, fault);
            if let Some(r) = a.rival {
                if let Err(e) = r {
                    violation(&format!("a rival's distribution failed: {e}"));
                }
                self.judge_distribution(id, before.clone());
            }
            match a.result {
                Ok(_) | Err(Failure::Dropped(_)) => self.judge_distribution(id, before),
                Err(Failure::Refused(e)) => violation(&format!("a distribution failed: {e}")),
                Err(Failure::CommitFailed) => {
                    if self.held_chain(id) != before {
                        violation("a failed commit of a distribution changed the store");
                    }
                    if retry_now {
                        return self.deliver(id, Fault::None, false);
                    }
                    self.network.push(id);
                }
            }
            return true;
        }
        let expect = self.expect(id);
        let before = snapshot(self.store(to));
        let a = self.parties[to].fs.execute(&op, fault);
        let mut rival_decrypted = false;
        if let Some(r) = a.rival {
            let r = r.map(|o| Self::plaintext_of(o).unwrap_or_default());
            // The rival worker hands its plaintext to the application.
            rival_decrypted = self.judge(id, &expect, r, Fate::Delivered);
        }
        // Our (retried) attempt runs after the rival's commit.
        let expect = if rival_decrypted { self.expect(id) } else { expect };
        match a.result {
            Ok(out) => {
                let pt = Self::plaintext_of(out).unwrap_or_default();
                self.judge(id, &expect, Ok(pt), Fate::Delivered)
            }
            Err(Failure::Refused(e)) => {
                if !rival_decrypted && snapshot(self.store(to)) != before {
                    violation(&format!("a failed decrypt ({e}) changed the store"));
                }
                self.judge(id, &expect, Err(e), Fate::Delivered);
                false
            }
            Err(Failure::CommitFailed) => {
                if snapshot(self.store(to)) != before {
                    violation("a failed commit changed the store");
                }
                if self.msgs[id].fate != Fate::Pending || expect != Expect::Succeed {
                    violation("a message that must fail planned a commit");
                }
                // Nothing lost: the retry decrypts it, once.
                if retry_now {
                    let ok = self.deliver(id, Fault::None, false);
                    if ok {
                        self.stats.retried_after_commit_failure += 1;
                    }
                    return ok;
                }
                self.network.push(id);
                false
            }
            Err(Failure::Dropped(out)) => {
                // Committed: the receiver consumed it; the caller never saw the plaintext.
                let pt = Self::plaintext_of(*out).unwrap_or_default();
                self.judge(id, &expect, Ok(pt), Fate::Consumed);
                // The caller retries: the same message must now be a duplicate.
                let expect = self.expect(id);
                let before = snapshot(self.store(to));
                let r = self.parties[to].fs.execute(&op, Fault::None).result;
                match r {
                    Ok(_) | Err(Failure::Dropped(_)) | Err(Failure::CommitFailed) => {
                        violation("a decrypt retried after a dropped connection decrypted again")
                    }
                    Err(Failure::Refused(e)) => {
                        if snapshot(self.store(to)) != before {
                            violation("a refused retry changed the store");
                        }
                        self.judge(id, &expect, Err(e), Fate::Delivered);
                    }
                }
                false
            }
        }
    }

    /// Delivers `bytes`, made by damaging message `id`: it must fail and change nothing,
    /// except under the known semantics of unauthenticated header fields.
    fn deliver_damaged(&mut self, id: usize, bytes: Vec<u8>, fault: Fault) {
        let (kind, wire_type, from, to) = {
            let s = &self.msgs[id];
            (s.kind, s.wire_type, s.from, s.to)
        };
        if bytes == self.msgs[id].bytes {
            self.deliver(id, fault, true);
            return;
        }
        // Distributions travel inside authenticated 1:1 messages; on their own they are not
        // authenticated, and a damaged one that parses may rightly install another key.
        if kind == Kind::Distribution {
            return;
        }
        let Some((op, named)) = self.receive_op(kind, wire_type, from, to, &bytes) else {
            self.stats.damaged_refused += 1;
            return;
        };
        if named.is_some_and(|n| n != self.parties[from].address) {
            violation("a damaged envelope unsealed naming another sender");
        }
        let before = snapshot(self.store(to));
        let a = self.parties[to].fs.execute(&op, fault);
        let outcomes = a
            .rival
            .map(|r| r.map_err(Failure::Refused))
            .into_iter()
            .chain([a.result]);
        for r in outcomes {
            let (out, fate) = match r {
                Err(Failure::Refused(_)) | Err(Failure::CommitFailed) => {
                    self.stats.damaged_refused += 1;
                    continue;
                }
                Ok(out) => (out, Fate::Delivered),
                Err(Failure::Dropped(out)) => (*out, Fate::Consumed),
            };
            let pt = Self::plaintext_of(out).unwrap_or_default();
            let original = &self.msgs[id];
            let same_inner = || {
                let damaged_inner = match &op {
                    Operation::Decrypt { message, .. } => message.serialized().to_vec(),
                    Operation::SealedDecrypt { usmc, .. } => usmc.contents().to_vec(),
                    _ => Vec::new(),
                };
                match (
                    parse(original.wire_type, &original.inner),
                    parse(PREKEY_TYPE, &damaged_inner),
                ) {
                    (Some(CiphertextMessage::PreKey(o)), Some(CiphertextMessage::PreKey(d))) => {
                        o.message().serialized() == d.message().serialized()
                            && o.base_key() == d.base_key()
                            && o.identity_key() == d.identity_key()
                    }
                    (Some(CiphertextMessage::Whisper(o)), _) => {
                        // Sealed: only the envelope's header changed.
                        kind == Kind::Sealed && o.serialized() == damaged_inner.as_slice()
                    }
                    _ => kind == Kind::Sealed && original.inner == damaged_inner,
                }
            };
            if kind == Kind::Group
                || original.fate != Fate::Pending
                || pt != original.plaintext
                || !same_inner()
            {
                violation(&format!(
                    "a damaged {kind:?} decrypted ({:?}, same plaintext: {})",
                    original.fate,
                    pt == original.plaintext
                ));
            }
            self.msgs[id].fate = fate;
            self.stats.damaged_accepted += 1;
            self.note_chains(to, from);
        }
        if self.msgs[id].fate == Fate::Pending && snapshot(self.store(to)) != before
        {
            violation("a refused damaged message changed the store");
        }
    }

    // -----------------------------------------------------------------------------------
    // The schedule
    // -----------------------------------------------------------------------------------

    fn pick_pair(&self, a: u8, b: u8) -> (usize, usize) {
        let n = self.parties.len();
        let x = usize::from(a) % n;
        (x, (x + 1 + usize::from(b) % (n - 1)) % n)
    }

    fn pick_flight(&self, b: u8) -> Option<usize> {
        (!self.network.is_empty()).then(|| usize::from(b) % self.network.len())
    }

    fn step(&mut self, src: &mut dyn Source) -> bool {
        let Some(op) = src.byte() else {
            return false;
        };
        let mut b = || src.byte().unwrap_or(0);
        self.stats.steps += 1;
        match op {
            0..=69 => {
                let (x, y) = self.pick_pair(b(), b());
                let fault = Fault::from_byte(b());
                let n = usize::from(b() % 24);
                let extra: Vec<u8> = (0..n).map(|_| b()).collect();
                self.send_direct(x, y, op >= 50, &extra, fault);
            }
            70..=84 => {
                let x = usize::from(b()) % self.parties.len();
                let fault = Fault::from_byte(b());
                let n = usize::from(b() % 24);
                let extra: Vec<u8> = (0..n).map(|_| b()).collect();
                self.send_group(x, &extra, fault);
            }
            85..=89 => {
                let x = usize::from(b()) % self.parties.len();
                let (to, fault) = (b(), Fault::from_byte(b()));
                self.distribute(x, to, fault);
            }
            90..=154 => {
                if let Some(i) = self.pick_flight(b()) {
                    let f = b();
                    let id = self.network.remove(i);
                    self.deliver(id, Fault::from_byte(f), f & 0x80 != 0);
                }
            }
            155..=164 => {
                if let Some(i) = self.pick_flight(b()) {
                    self.network.remove(i);
                }
            }
            165..=179 => {
                if let Some(i) = self.pick_flight(b()) {
                    let f = b();
                    let id = self.network[i];
                    self.deliver(id, Fault::from_byte(f), f & 0x80 != 0);
                }
            }
            180..=189 => {
                if !self.msgs.is_empty() {
                    let i = usize::from(u16::from_le_bytes([b(), b()])) % self.msgs.len();
                    let f = b();
                    self.deliver(i, Fault::from_byte(f), f & 0x80 != 0);
                }
            }
            190..=214 => {
                if let Some(i) = self.pick_flight(b()) {
                    let id = self.network[i];
                    let mut bytes = self.msgs[id].bytes.clone();
                    let pos = usize::from(u16::from_le_bytes([b(), b()])) % bytes.len();
                    bytes[pos] ^= 1 << (b() % 8);
                    let fault = Fault::from_byte(b());
                    self.deliver_damaged(id, bytes, fault);
                }
            }
            215..=224 => {
                if let Some(i) = self.pick_flight(b()) {
                    let id = self.network[i];
                    let mut bytes = self.msgs[id].bytes.clone();
                    let keep = usize::from(u16::from_le_bytes([b(), b()])) % bytes.len();
                    bytes.truncate(keep);
                    let fault = Fault::from_byte(b());
                    self.deliver_damaged(id, bytes, fault);
                }
            }
            225..=234 => {
                let (x, y) = self.pick_pair(b(), b());
                let (opts, fault) = (b(), Fault::from_byte(b()));
                self.start_session(x, y, opts, fault);
            }
            235..=255 => {
                if let Some(i) = self.pick_flight(b()) {
                    let id = self.network.remove(i);
                    self.network.push(id);
                }
            }
        }
        true
    }

    /// The network heals: everything in flight arrives (the sender-key distributions
    /// first, as a client sends them before group messages), then every pair talks 1:1
    /// and sealed, and everyone's group messages reach everyone.
    fn heal(&mut self) {
        let mut flights = std::mem::take(&mut self.network);
        flights.sort_by_key(|&id| self.msgs[id].kind != Kind::Distribution);
        for id in flights {
            self.deliver(id, Fault::None, true);
        }
        let n = self.parties.len();
        for x in 0..n {
            for y in 0..n {
                if x != y {
                    self.heal_direct(x, y);
                }
            }
        }
        for x in 0..n {
            if self.own_sender_key(x).is_none() {
                self.distribute(x, 0xff, Fault::None);
                let ids = std::mem::take(&mut self.network);
                for id in ids {
                    self.deliver(id, Fault::None, true);
                }
            }
            for y in 0..n {
                if y != x && !self.group_base.contains_key(&(y, x)) {
                    self.distribute(x, 1 << y, Fault::None);
                    let ids = std::mem::take(&mut self.network);
                    for id in ids {
                        self.deliver(id, Fault::None, true);
                    }
                }
            }
            self.send_group(x, b"heal", Fault::None);
            let ids = std::mem::take(&mut self.network);
            for id in ids {
                if !self.deliver(id, Fault::None, true) {
                    violation("a group message after the network healed did not decrypt");
                }
            }
        }
    }

    fn heal_direct(&mut self, x: usize, y: usize) {
        for attempt in 0..6 {
            let mut ok = true;
            for sealed in [false, true] {
                self.send_direct(x, y, sealed, b"heal", Fault::None);
                let id = self.msgs.len() - 1;
                self.network.retain(|&i| i != id);
                ok &= self.deliver(id, Fault::None, true);
            }
            if ok {
                return;
            }
            // The protocol's own recovery (e.g. past SPQR's window), as clients do it: the
            // side that cannot decrypt starts a new session, then the sender.
            if attempt % 2 == 0 {
                self.start_session(y, x, 0, Fault::None);
            } else {
                self.start_session(x, y, 0, Fault::None);
            }
        }
        violation("two parties could not talk again after the network healed");
    }
}

/// Runs one conversation over `src` and returns its statistics.
pub fn run_with(src: &mut dyn Source, parties: usize, config: &Config) -> Stats {
    let mut w = World::new(parties.clamp(2, 3));
    let mut steps = 0;
    while steps < config.max_steps && w.step(src) {
        steps += 1;
    }
    w.heal();
    let mut stats = w.stats.clone();
    for p in &w.parties {
        stats.faults.add(&p.fs.stats);
    }
    stats
}

/// The deterministic runner: `runs` conversations with schedules from SplitMix seeded by
/// `seed`, `seed + 1`, ... (parties alternate 2 and 3). Panics on a violation, naming the
/// seed.
pub fn run_seeded(seed: u64, runs: u64, config: &Config) -> Stats {
    let mut total = Stats::default();
    for r in 0..runs {
        let s = seed.wrapping_add(r);
        let stats = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_with(&mut SplitMix(s), 2 + (s % 2) as usize, config)
        }));
        match stats {
            Ok(st) => total.add(&st),
            Err(e) => std::panic::resume_unwind(Box::new(format!(
                "conversation_uow seed {s} ({} steps): {}",
                config.max_steps,
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
