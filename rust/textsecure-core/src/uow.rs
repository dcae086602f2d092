//! Units of work: every protocol operation as one load, one pure plan, one atomic commit.
//!
//! An [`Operation`] says what it reads ([`Needs`]). A store loads exactly that into a
//! [`Snapshot`] (one round of reads); [`plan`] runs the protocol against the snapshot without
//! touching any store and returns the operation's [`Output`] and a [`ChangeSet`]: every record
//! the operation changes (sessions, identities, prekeys consumed, Kyber last-resort uses, base
//! keys seen, sender keys). The store applies the change set atomically, or not at all, and
//! only if every session and sender-key record it read is still the stored one: each carries
//! the version it was read at, and a commit compares it (compare-and-swap). A lost race is a
//! [`Conflict`]; the caller loads again and plans again, so a ratchet never forks.
//!
//! A failed plan returns an error and no change set: nothing is written.

use std::collections::{BTreeSet, HashMap};

use crate::address::Address;
use crate::curve::PublicKey;
use crate::error::{Error, Result};
use crate::group::SenderKeyRecord;
use crate::group::{self, DistributionKey, SenderKeyDistributionMessage, SenderKeyMessage};
use crate::message::CiphertextMessage;
use crate::prekey::{
    IdentityKeyPair, KyberPreKeyRecord, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord,
};
use crate::sealed_sender::{self, SenderCertificate, UnidentifiedSenderMessageContent};
use crate::session::{self, SessionOptions};
use crate::state::SessionRecord;
use crate::store::ProtocolStore;

/// The version a record was read at: 0 when absent, then 1, 2, ... per committed change.
pub type Version = u64;

/// A commit found a record changed since it was read (or a unique row already present): load
/// and plan again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict;

/// What an operation reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Session records, by canonical address.
    pub sessions: Vec<Address>,
    /// Remote identities.
    pub identities: Vec<Address>,
    /// One-time EC prekeys.
    pub prekeys: Vec<u32>,
    /// Signed prekeys.
    pub signed_prekeys: Vec<u32>,
    /// Kyber prekeys (with their last-resort flag).
    pub kyber_prekeys: Vec<u32>,
    /// (signed prekey id, base key): has a session been set up from it before?
    pub base_keys: Vec<(u32, PublicKey)>,
    /// Sender-key records.
    pub sender_keys: Vec<(Address, DistributionKey)>,
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl Needs {
    fn session_of(&mut self, a: &Address) {
        push_unique(&mut self.sessions, a.clone());
        push_unique(&mut self.identities, a.clone());
    }

    /// The locks a store that serialises by lock (rather than by compare-and-swap alone) takes
    /// before loading, in this (sorted) order: one per session and per sender key, spelled
    /// canonically.
    pub fn lock_keys(&self) -> Vec<String> {
        let mut keys: BTreeSet<String> = BTreeSet::new();
        for a in &self.sessions {
            keys.insert(format!("session/{}", a.canonical()));
        }
        for (a, d) in &self.sender_keys {
            keys.insert(format!(
                "sender_key/{}/{}",
                a.canonical(),
                distribution_key_string(d)
            ));
        }
        keys.into_iter().collect()
    }
}

/// The text form of a distribution key, as stores key rows by it: a current-format id as its
/// lower-case hyphenated UUID, a legacy group id as `legacy:` and the id.
pub fn distribution_key_string(d: &DistributionKey) -> String {
    match d {
        DistributionKey::Uuid(u) => sealed_sender::format_uuid(u),
        DistributionKey::GroupId(g) => format!("legacy:{g}"),
    }
}

/// Parses [`distribution_key_string`]'s form.
pub fn parse_distribution_key(s: &str) -> Result<DistributionKey> {
    if let Some(g) = s.strip_prefix("legacy:") {
        return Ok(DistributionKey::GroupId(g.to_owned()));
    }
    sealed_sender::parse_uuid(s)
        .map(DistributionKey::Uuid)
        .ok_or(Error::InvalidArgument(
            "distribution key is neither a UUID nor legacy:<id>",
        ))
}

/// What a store loaded for an operation's [`Needs`].
#[derive(Debug, Clone)]
pub struct Snapshot {
    identity: IdentityKeyPair,
    registration_id: u32,
    sessions: HashMap<Address, (Option<SessionRecord>, Version)>,
    damaged_sessions: HashMap<Address, Error>,
    identities: HashMap<Address, Option<PublicKey>>,
    prekeys: HashMap<u32, Option<PreKeyRecord>>,
    signed_prekeys: HashMap<u32, Option<SignedPreKeyRecord>>,
    kyber_prekeys: HashMap<u32, Option<(KyberPreKeyRecord, bool)>>,
    base_keys: HashMap<(u32, PublicKey), bool>,
    sender_keys: HashMap<(Address, DistributionKey), (Option<SenderKeyRecord>, Version)>,
}

impl Snapshot {
    /// An empty snapshot of an account.
    pub fn new(identity: IdentityKeyPair, registration_id: u32) -> Self {
        Self {
            identity,
            registration_id,
            sessions: HashMap::new(),
            damaged_sessions: HashMap::new(),
            identities: HashMap::new(),
            prekeys: HashMap::new(),
            signed_prekeys: HashMap::new(),
            kyber_prekeys: HashMap::new(),
            base_keys: HashMap::new(),
            sender_keys: HashMap::new(),
        }
    }
    /// The account's identity.
    pub fn identity(&self) -> &IdentityKeyPair {
        &self.identity
    }
    /// The session of `address` (None: there is none) at `version`.
    pub fn add_session(
        &mut self,
        address: Address,
        record: Option<SessionRecord>,
        version: Version,
    ) {
        self.sessions.insert(address, (record, version));
    }
    /// A stored session of `address` that could not be read (`error`, e.g. an invalid
    /// record): every operation that reads or writes it fails with that error, the others
    /// (of a batch) are unaffected.
    pub fn add_damaged_session(&mut self, address: Address, error: Error) {
        self.sessions.remove(&address);
        self.damaged_sessions.insert(address, error);
    }
    /// The stored identity of `address`.
    pub fn add_identity(&mut self, address: Address, key: Option<PublicKey>) {
        self.identities.insert(address, key);
    }
    /// A one-time EC prekey.
    pub fn add_prekey(&mut self, id: u32, record: Option<PreKeyRecord>) {
        self.prekeys.insert(id, record);
    }
    /// A signed prekey.
    pub fn add_signed_prekey(&mut self, id: u32, record: Option<SignedPreKeyRecord>) {
        self.signed_prekeys.insert(id, record);
    }
    /// A Kyber prekey and whether it is a last-resort key.
    pub fn add_kyber_prekey(&mut self, id: u32, record: Option<(KyberPreKeyRecord, bool)>) {
        self.kyber_prekeys.insert(id, record);
    }
    /// Whether (signed prekey id, base key) set up a session before.
    pub fn add_base_key(&mut self, signed_prekey_id: u32, base_key: PublicKey, seen: bool) {
        self.base_keys.insert((signed_prekey_id, base_key), seen);
    }
    /// A sender-key record at `version`.
    pub fn add_sender_key(
        &mut self,
        sender: Address,
        distribution: DistributionKey,
        record: Option<SenderKeyRecord>,
        version: Version,
    ) {
        self.sender_keys
            .insert((sender, distribution), (record, version));
    }
}

/// Everything an operation changes; a store applies all of it or none.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    /// New session records: (address, the version read, the record).
    pub sessions: Vec<(Address, Version, SessionRecord)>,
    /// Remote identities to store.
    pub identities: Vec<(Address, PublicKey)>,
    /// One-time EC prekeys consumed.
    pub removed_prekeys: Vec<u32>,
    /// One-time Kyber prekeys consumed.
    pub removed_kyber_prekeys: Vec<u32>,
    /// Last-resort Kyber uses: (Kyber id, signed prekey id, base key); unique.
    pub kyber_last_resort_uses: Vec<(u32, u32, PublicKey)>,
    /// Base keys that set up a session without a one-time EC prekey; unique.
    pub base_keys: Vec<(u32, PublicKey)>,
    /// New sender-key records: (sender, distribution, the version read, the record).
    pub sender_keys: Vec<(Address, DistributionKey, Version, SenderKeyRecord)>,
}

impl ChangeSet {
    /// True when the operation changed nothing.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.identities.is_empty()
            && self.removed_prekeys.is_empty()
            && self.removed_kyber_prekeys.is_empty()
            && self.kyber_last_resort_uses.is_empty()
            && self.base_keys.is_empty()
            && self.sender_keys.is_empty()
    }
}

const NOT_LOADED: Error = Error::InvalidArgument("the operation read a record its snapshot lacks");

/// A [`ProtocolStore`] over a snapshot that records writes instead of making them.
struct Staged<'a> {
    snap: &'a Snapshot,
    sessions: HashMap<Address, SessionRecord>,
    identities: HashMap<Address, PublicKey>,
    removed_prekeys: BTreeSet<u32>,
    removed_kyber_prekeys: BTreeSet<u32>,
    kyber_uses: Vec<(u32, u32, PublicKey)>,
    base_keys: Vec<(u32, PublicKey)>,
    sender_keys: HashMap<(Address, DistributionKey), SenderKeyRecord>,
}

impl<'a> Staged<'a> {
    fn new(snap: &'a Snapshot) -> Self {
        Self {
            snap,
            sessions: HashMap::new(),
            identities: HashMap::new(),
            removed_prekeys: BTreeSet::new(),
            removed_kyber_prekeys: BTreeSet::new(),
            kyber_uses: Vec::new(),
            base_keys: Vec::new(),
            sender_keys: HashMap::new(),
        }
    }

    fn snap_session(&self, a: &Address) -> Result<&(Option<SessionRecord>, Version)> {
        match self.snap.sessions.get(a) {
            Some(s) => Ok(s),
            None => Err(self
                .snap
                .damaged_sessions
                .get(a)
                .cloned()
                .unwrap_or(NOT_LOADED)),
        }
    }

    fn snap_sender_key(
        &self,
        s: &Address,
        d: &DistributionKey,
    ) -> Result<&(Option<SenderKeyRecord>, Version)> {
        self.snap
            .sender_keys
            .get(&(s.clone(), d.clone()))
            .ok_or(NOT_LOADED)
    }

    /// Marks a point to roll back to (fan-out, batches: one failed item changes nothing).
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            sessions: self.sessions.clone(),
            identities: self.identities.clone(),
            removed_prekeys: self.removed_prekeys.clone(),
            removed_kyber_prekeys: self.removed_kyber_prekeys.clone(),
            kyber_uses: self.kyber_uses.len(),
            base_keys: self.base_keys.len(),
            sender_keys: self.sender_keys.clone(),
        }
    }

    fn rollback(&mut self, c: Checkpoint) {
        self.sessions = c.sessions;
        self.identities = c.identities;
        self.removed_prekeys = c.removed_prekeys;
        self.removed_kyber_prekeys = c.removed_kyber_prekeys;
        self.kyber_uses.truncate(c.kyber_uses);
        self.base_keys.truncate(c.base_keys);
        self.sender_keys = c.sender_keys;
    }

    fn into_changes(self) -> Result<ChangeSet> {
        let mut sessions = Vec::with_capacity(self.sessions.len());
        for (a, r) in self.sessions {
            let version = self.snap.sessions.get(&a).ok_or(NOT_LOADED)?.1;
            sessions.push((a, version, r));
        }
        let mut sender_keys = Vec::with_capacity(self.sender_keys.len());
        for ((s, d), r) in self.sender_keys {
            let version = self
                .snap
                .sender_keys
                .get(&(s.clone(), d.clone()))
                .ok_or(NOT_LOADED)?
                .1;
            sender_keys.push((s, d, version, r));
        }
        sessions.sort_by(|a, b| a.0.cmp(&b.0));
        let mut identities: Vec<_> = self.identities.into_iter().collect();
        identities.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(ChangeSet {
            sessions,
            identities,
            removed_prekeys: self.removed_prekeys.into_iter().collect(),
            removed_kyber_prekeys: self.removed_kyber_prekeys.into_iter().collect(),
            kyber_last_resort_uses: self.kyber_uses,
            base_keys: self.base_keys,
            sender_keys,
        })
    }
}

struct Checkpoint {
    sessions: HashMap<Address, SessionRecord>,
    identities: HashMap<Address, PublicKey>,
    removed_prekeys: BTreeSet<u32>,
    removed_kyber_prekeys: BTreeSet<u32>,
    kyber_uses: usize,
    base_keys: usize,
    sender_keys: HashMap<(Address, DistributionKey), SenderKeyRecord>,
}

impl ProtocolStore for Staged<'_> {
    fn identity_key_pair(&self) -> Result<IdentityKeyPair> {
        Ok(self.snap.identity.clone())
    }
    fn local_registration_id(&self) -> Result<u32> {
        Ok(self.snap.registration_id)
    }
    fn is_trusted_identity(&self, address: &Address, key: &PublicKey) -> Result<bool> {
        Ok(self.identity(address)?.is_none_or(|k| k == *key))
    }
    fn save_identity(&mut self, address: &Address, key: &PublicKey) -> Result<()> {
        if self.identity(address)? != Some(*key) {
            self.identities.insert(address.clone(), *key);
        }
        Ok(())
    }
    fn identity(&self, address: &Address) -> Result<Option<PublicKey>> {
        if let Some(k) = self.identities.get(address) {
            return Ok(Some(*k));
        }
        self.snap.identities.get(address).copied().ok_or(NOT_LOADED)
    }
    fn read_session<R>(
        &self,
        address: &Address,
        f: impl FnOnce(Option<&SessionRecord>) -> Result<R>,
    ) -> Result<R> {
        match self.sessions.get(address) {
            Some(r) => f(Some(r)),
            None => f(self.snap_session(address)?.0.as_ref()),
        }
    }
    fn update_session(
        &mut self,
        address: &Address,
        f: impl FnOnce(&mut SessionRecord),
    ) -> Result<()> {
        if !self.sessions.contains_key(address) {
            let base = self.snap_session(address)?.0.clone().unwrap_or_default();
            self.sessions.insert(address.clone(), base);
        }
        if let Some(r) = self.sessions.get_mut(address) {
            f(r);
        }
        Ok(())
    }
    fn load_prekey(&self, id: u32) -> Result<Option<PreKeyRecord>> {
        if self.removed_prekeys.contains(&id) {
            return Ok(None);
        }
        self.snap.prekeys.get(&id).cloned().ok_or(NOT_LOADED)
    }
    fn remove_prekey(&mut self, id: u32) -> Result<()> {
        self.removed_prekeys.insert(id);
        Ok(())
    }
    fn load_signed_prekey(&self, id: u32) -> Result<Option<SignedPreKeyRecord>> {
        self.snap.signed_prekeys.get(&id).cloned().ok_or(NOT_LOADED)
    }
    fn load_kyber_prekey(&self, id: u32) -> Result<Option<KyberPreKeyRecord>> {
        if self.removed_kyber_prekeys.contains(&id) {
            return Ok(None);
        }
        Ok(self
            .snap
            .kyber_prekeys
            .get(&id)
            .ok_or(NOT_LOADED)?
            .as_ref()
            .map(|(r, _)| r.clone()))
    }
    fn mark_kyber_prekey_used(
        &mut self,
        id: u32,
        signed_prekey_id: u32,
        base_key: &PublicKey,
    ) -> Result<()> {
        match self.snap.kyber_prekeys.get(&id).ok_or(NOT_LOADED)? {
            Some((_, true)) => {
                let triple = (id, signed_prekey_id, *base_key);
                if self.kyber_uses.contains(&triple) {
                    return Err(Error::InvalidMessage(
                        "PreKeySignalMessage replayed (last-resort Kyber use seen)",
                    ));
                }
                self.kyber_uses.push(triple);
            }
            Some((_, false)) => {
                self.removed_kyber_prekeys.insert(id);
            }
            None => {}
        }
        Ok(())
    }
    fn record_base_key(&mut self, signed_prekey_id: u32, base_key: &PublicKey) -> Result<()> {
        let key = (signed_prekey_id, *base_key);
        let seen = *self.snap.base_keys.get(&key).ok_or(NOT_LOADED)?;
        if seen || self.base_keys.contains(&key) {
            return Err(Error::InvalidMessage(
                "PreKeySignalMessage replayed (base key already used)",
            ));
        }
        self.base_keys.push(key);
        Ok(())
    }
    fn load_sender_key(
        &self,
        sender: &Address,
        distribution: &DistributionKey,
    ) -> Result<Option<SenderKeyRecord>> {
        if let Some(r) = self
            .sender_keys
            .get(&(sender.clone(), distribution.clone()))
        {
            return Ok(Some(r.clone()));
        }
        Ok(self.snap_sender_key(sender, distribution)?.0.clone())
    }
    fn store_sender_key(
        &mut self,
        sender: &Address,
        distribution: &DistributionKey,
        record: &SenderKeyRecord,
    ) -> Result<()> {
        self.snap_sender_key(sender, distribution)?;
        self.sender_keys
            .insert((sender.clone(), distribution.clone()), record.clone());
        Ok(())
    }
    fn read_sender_key<R>(
        &self,
        sender: &Address,
        distribution: &DistributionKey,
        f: impl FnOnce(Option<&SenderKeyRecord>) -> Result<R>,
    ) -> Result<R> {
        match self
            .sender_keys
            .get(&(sender.clone(), distribution.clone()))
        {
            Some(r) => f(Some(r)),
            None => f(self.snap_sender_key(sender, distribution)?.0.as_ref()),
        }
    }
}

/// One protocol operation on a store. Addresses are canonicalised when the operation is
/// built ([`Operation::canonicalize`]).
#[derive(Debug, Clone)]
pub enum Operation {
    /// Start a session from a bundle (X3DH / PQXDH).
    ProcessBundle {
        /// The peer.
        remote: Address,
        /// Its bundle.
        bundle: PreKeyBundle,
        /// Session options.
        options: SessionOptions,
    },
    /// Encrypt to one peer.
    Encrypt {
        /// The peer.
        remote: Address,
        /// The plaintext.
        plaintext: Vec<u8>,
        /// Session options.
        options: SessionOptions,
    },
    /// Decrypt a SignalMessage or PreKeySignalMessage.
    Decrypt {
        /// The sender.
        remote: Address,
        /// The message.
        message: CiphertextMessage,
        /// Session options.
        options: SessionOptions,
    },
    /// Encrypt the same plaintext to each peer (each its own outcome).
    Fanout {
        /// The peers, without repeats.
        remotes: Vec<Address>,
        /// The plaintext.
        plaintext: Vec<u8>,
        /// Session options.
        options: SessionOptions,
    },
    /// Our sender key's distribution message (created if missing).
    CreateDistribution {
        /// Us.
        sender: Address,
        /// The distribution.
        key: DistributionKey,
    },
    /// Store a sender key someone distributed.
    ProcessDistribution {
        /// Its sender.
        sender: Address,
        /// The distribution.
        key: DistributionKey,
        /// The distribution message.
        message: SenderKeyDistributionMessage,
    },
    /// Encrypt to a group with our sender key.
    GroupEncrypt {
        /// Us.
        sender: Address,
        /// The distribution.
        key: DistributionKey,
        /// The plaintext.
        plaintext: Vec<u8>,
    },
    /// Decrypt a group message.
    GroupDecrypt {
        /// Its sender.
        sender: Address,
        /// The distribution.
        key: DistributionKey,
        /// The message.
        message: SenderKeyMessage,
    },
    /// Encrypt with the session, then seal (sealed sender v1).
    SealedEncrypt {
        /// The peer.
        remote: Address,
        /// Our sender certificate.
        certificate: SenderCertificate,
        /// The plaintext.
        plaintext: Vec<u8>,
        /// Content hint.
        content_hint: u32,
        /// Group id.
        group_id: Option<Vec<u8>>,
        /// Session options.
        options: SessionOptions,
    },
    /// Decrypt the 1:1 message inside an unsealed, validated sealed-sender content.
    SealedDecrypt {
        /// The content (its certificate names the sender).
        usmc: UnidentifiedSenderMessageContent,
        /// Session options.
        options: SessionOptions,
    },
}

/// What an operation returns.
#[derive(Debug)]
pub enum Output {
    /// Nothing (bundle processed, distribution stored).
    Unit,
    /// A 1:1 message.
    Message(CiphertextMessage),
    /// A plaintext.
    Plaintext(Vec<u8>),
    /// One outcome per fan-out peer, in order.
    Fanout(Vec<Result<CiphertextMessage>>),
    /// A distribution message.
    Distribution(SenderKeyDistributionMessage),
    /// A group message.
    GroupMessage(SenderKeyMessage),
    /// A sealed message.
    Sealed(Vec<u8>),
    /// A sealed message's content and plaintext.
    SealedPlaintext(UnidentifiedSenderMessageContent, Vec<u8>),
}

impl Operation {
    /// The same operation with every address in its canonical spelling.
    pub fn canonicalize(mut self) -> Self {
        match &mut self {
            Self::ProcessBundle { remote, .. }
            | Self::Encrypt { remote, .. }
            | Self::Decrypt { remote, .. }
            | Self::SealedEncrypt { remote, .. } => *remote = remote.canonical(),
            Self::Fanout { remotes, .. } => {
                let mut seen = Vec::with_capacity(remotes.len());
                for r in remotes.drain(..) {
                    push_unique(&mut seen, r.canonical());
                }
                *remotes = seen;
            }
            Self::CreateDistribution { sender, .. }
            | Self::ProcessDistribution { sender, .. }
            | Self::GroupEncrypt { sender, .. }
            | Self::GroupDecrypt { sender, .. } => *sender = sender.canonical(),
            Self::SealedDecrypt { .. } => {}
        }
        self
    }

    /// The address a 1:1 operation concerns (None for group and fan-out operations).
    pub fn remote(&self) -> Option<Address> {
        match self {
            Self::ProcessBundle { remote, .. }
            | Self::Encrypt { remote, .. }
            | Self::Decrypt { remote, .. }
            | Self::SealedEncrypt { remote, .. } => Some(remote.clone()),
            Self::SealedDecrypt { usmc, .. } => Some(usmc.sender().sender_address().canonical()),
            _ => None,
        }
    }

    /// What the operation reads.
    pub fn needs(&self) -> Result<Needs> {
        let mut n = Needs::default();
        match self {
            Self::ProcessBundle { remote, .. }
            | Self::Encrypt { remote, .. }
            | Self::SealedEncrypt { remote, .. } => n.session_of(remote),
            Self::Fanout { remotes, .. } => remotes.iter().for_each(|r| n.session_of(r)),
            Self::Decrypt {
                remote, message, ..
            } => decrypt_needs(&mut n, remote, message),
            Self::SealedDecrypt { usmc, .. } => {
                let remote = usmc.sender().sender_address().canonical();
                let message = sealed_inner_message(usmc)?;
                decrypt_needs(&mut n, &remote, &message);
            }
            Self::CreateDistribution { sender, key }
            | Self::ProcessDistribution { sender, key, .. }
            | Self::GroupEncrypt { sender, key, .. }
            | Self::GroupDecrypt { sender, key, .. } => {
                n.sender_keys.push((sender.clone(), key.clone()));
            }
        }
        Ok(n)
    }
}

fn decrypt_needs(n: &mut Needs, remote: &Address, message: &CiphertextMessage) {
    n.session_of(remote);
    if let CiphertextMessage::PreKey(m) = message {
        n.signed_prekeys.push(m.signed_pre_key_id());
        match m.pre_key_id() {
            Some(id) => n.prekeys.push(id),
            None => n.base_keys.push((m.signed_pre_key_id(), *m.base_key())),
        }
        if let Some(id) = m.kyber_pre_key_id() {
            n.kyber_prekeys.push(id);
        }
    }
}

fn sealed_inner_message(usmc: &UnidentifiedSenderMessageContent) -> Result<CiphertextMessage> {
    sealed_sender::inner_message(usmc)
}

/// Runs `op` against `snapshot`: its output and everything it changes. Touches no store.
///
/// A fan-out encrypts to its peers on every core (each peer's session is independent), as a
/// batch does.
pub fn plan(op: &Operation, snapshot: &Snapshot) -> Result<(Output, ChangeSet)> {
    if let Operation::Fanout {
        remotes,
        plaintext,
        options,
    } = op
    {
        let ops: Vec<Operation> = remotes
            .iter()
            .map(|r| Operation::Encrypt {
                remote: r.clone(),
                plaintext: plaintext.clone(),
                options: options.clone(),
            })
            .collect();
        let (results, changes) = plan_batch(&ops, snapshot);
        let results = results
            .into_iter()
            .map(|r| {
                r.and_then(|o| match o {
                    Output::Message(m) => Ok(m),
                    _ => Err(Error::InvalidArgument("an encryption returned no message")),
                })
            })
            .collect();
        return Ok((Output::Fanout(results), changes));
    }
    let mut st = Staged::new(snapshot);
    let out = run(&mut st, op)?;
    Ok((out, st.into_changes()?))
}

/// Runs `op` on a staged store.
fn run(st: &mut Staged<'_>, op: &Operation) -> Result<Output> {
    Ok(match op {
        Operation::ProcessBundle {
            remote,
            bundle,
            options,
        } => {
            session::process_prekey_bundle_with(st, remote, bundle, options)?;
            Output::Unit
        }
        Operation::Encrypt {
            remote,
            plaintext,
            options,
        } => Output::Message(session::encrypt_with(st, remote, plaintext, options)?),
        Operation::Decrypt {
            remote,
            message,
            options,
        } => Output::Plaintext(session::decrypt_with(st, remote, message, options)?),
        Operation::Fanout {
            remotes,
            plaintext,
            options,
        } => {
            let mut results = Vec::with_capacity(remotes.len());
            for r in remotes {
                let mark = st.checkpoint();
                let res = session::encrypt_with(st, r, plaintext, options);
                if res.is_err() {
                    st.rollback(mark);
                }
                results.push(res);
            }
            Output::Fanout(results)
        }
        Operation::CreateDistribution { sender, key } => {
            Output::Distribution(group::create_distribution(st, sender, key)?)
        }
        Operation::ProcessDistribution {
            sender,
            key,
            message,
        } => {
            group::process_distribution(st, sender, key, message)?;
            Output::Unit
        }
        Operation::GroupEncrypt {
            sender,
            key,
            plaintext,
        } => Output::GroupMessage(group::encrypt(st, sender, key, plaintext)?),
        Operation::GroupDecrypt {
            sender,
            key,
            message,
        } => Output::Plaintext(group::decrypt(st, sender, key, message)?),
        Operation::SealedEncrypt {
            remote,
            certificate,
            plaintext,
            content_hint,
            group_id,
            options,
        } => Output::Sealed(sealed_sender::sealed_sender_encrypt_with(
            st,
            remote,
            certificate,
            plaintext,
            *content_hint,
            group_id.clone(),
            options,
        )?),
        Operation::SealedDecrypt { usmc, options } => {
            let pt = sealed_sender::decrypt_usmc_with(st, usmc, options)?;
            Output::SealedPlaintext(usmc.clone(), pt)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

/// What a batch item may write, or read in a way another item's write could change. Two items
/// that share a claim run one after the other, in batch order, on one staged store; items
/// that share none run in parallel.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Claim {
    Session(Address),
    Identity(Address),
    PreKey(u32),
    KyberPreKey(u32),
    /// A PreKeySignalMessage's base key: it is recorded (base keys, last-resort Kyber uses),
    /// and a replay carries the same one.
    BaseKey(PublicKey),
    SenderKey(Address, DistributionKey),
}

fn prekey_message_base_key(op: &Operation) -> Option<PublicKey> {
    match op {
        Operation::Decrypt {
            message: CiphertextMessage::PreKey(m),
            ..
        } => Some(*m.base_key()),
        Operation::SealedDecrypt { usmc, .. } => match sealed_inner_message(usmc) {
            Ok(CiphertextMessage::PreKey(m)) => Some(*m.base_key()),
            _ => None,
        },
        _ => None,
    }
}

fn claims(op: &Operation, needs: &Needs, snapshot: &Snapshot) -> Vec<Claim> {
    let mut c = Vec::new();
    c.extend(needs.sessions.iter().cloned().map(Claim::Session));
    c.extend(needs.identities.iter().cloned().map(Claim::Identity));
    c.extend(needs.prekeys.iter().copied().map(Claim::PreKey));
    for id in &needs.kyber_prekeys {
        // A last-resort Kyber prekey is never consumed: its uses are keyed by base key.
        if !matches!(snapshot.kyber_prekeys.get(id), Some(Some((_, true)))) {
            c.push(Claim::KyberPreKey(*id));
        }
    }
    c.extend(needs.base_keys.iter().map(|(_, b)| Claim::BaseKey(*b)));
    if let Some(b) = prekey_message_base_key(op) {
        c.push(Claim::BaseKey(b));
    }
    c.extend(
        needs
            .sender_keys
            .iter()
            .map(|(a, d)| Claim::SenderKey(a.clone(), d.clone())),
    );
    c
}

/// Everything a batch of operations reads: the union of their [`Needs`], each record once.
/// (An item whose needs cannot be stated fails on its own in [`plan_batch`].)
pub fn batch_needs(ops: &[Operation]) -> Needs {
    fn add<T: Clone + Eq + std::hash::Hash>(
        seen: &mut std::collections::HashSet<T>,
        out: &mut Vec<T>,
        items: &[T],
    ) {
        for x in items {
            if seen.insert(x.clone()) {
                out.push(x.clone());
            }
        }
    }
    let mut n = Needs::default();
    let (mut s, mut i, mut p, mut sp, mut k, mut b, mut sk) = Default::default();
    for op in ops {
        let Ok(m) = op.needs() else { continue };
        add(&mut s, &mut n.sessions, &m.sessions);
        add(&mut i, &mut n.identities, &m.identities);
        add(&mut p, &mut n.prekeys, &m.prekeys);
        add(&mut sp, &mut n.signed_prekeys, &m.signed_prekeys);
        add(&mut k, &mut n.kyber_prekeys, &m.kyber_prekeys);
        add(&mut b, &mut n.base_keys, &m.base_keys);
        add(&mut sk, &mut n.sender_keys, &m.sender_keys);
    }
    n
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// The items of a batch in groups that share no [`Claim`]: each group in batch order, the
/// groups in the order of their first item. Items whose needs fail are left out (`needs[i]`
/// is the error).
fn batch_groups(
    ops: &[Operation],
    needs: &[Result<Needs>],
    snapshot: &Snapshot,
) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..ops.len()).collect();
    let mut owner: HashMap<Claim, usize> = HashMap::new();
    for (i, (op, n)) in ops.iter().zip(needs).enumerate() {
        let Ok(n) = n else { continue };
        for c in claims(op, n, snapshot) {
            match owner.get(&c) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    // the smaller index is the root: a group is named by its first item
                    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                    parent[hi] = lo;
                }
                None => {
                    owner.insert(c, i);
                }
            }
        }
    }
    let mut index_of_root: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, n) in needs.iter().enumerate() {
        if n.is_err() {
            continue;
        }
        let root = find(&mut parent, i);
        let g = *index_of_root.entry(root).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// A group's results (by batch index) and its changes.
type PlannedGroup = (Vec<(usize, Result<Output>)>, ChangeSet);

/// One group of a batch, in order on one staged store; a failed item is rolled back.
fn plan_group(ops: &[Operation], group: &[usize], snapshot: &Snapshot) -> PlannedGroup {
    let mut st = Staged::new(snapshot);
    let mut results = Vec::with_capacity(group.len());
    let single = group.len() == 1;
    for &i in group {
        // a lone item that fails leaves the whole staged store unused: no restore point needed
        let mark = (!single).then(|| st.checkpoint());
        let res = run(&mut st, &ops[i]);
        if res.is_err() {
            if let Some(mark) = mark {
                st.rollback(mark);
            }
        }
        results.push((i, res));
    }
    let any_ok = results.iter().any(|(_, r)| r.is_ok());
    match st.into_changes() {
        Ok(changes) if any_ok => (results, changes),
        Ok(_) => (results, ChangeSet::default()),
        Err(e) => (
            results
                .into_iter()
                .map(|(i, r)| (i, r.and(Err(e.clone()))))
                .collect(),
            ChangeSet::default(),
        ),
    }
}

impl ChangeSet {
    fn absorb(&mut self, other: ChangeSet) {
        self.sessions.extend(other.sessions);
        self.identities.extend(other.identities);
        self.removed_prekeys.extend(other.removed_prekeys);
        self.removed_kyber_prekeys
            .extend(other.removed_kyber_prekeys);
        self.kyber_last_resort_uses
            .extend(other.kyber_last_resort_uses);
        self.base_keys.extend(other.base_keys);
        self.sender_keys.extend(other.sender_keys);
    }
}

/// Runs a batch of operations against one snapshot (loaded for [`batch_needs`]): one result
/// per item, in order, and one change set for all the items that succeeded.
///
/// Items that touch the same records (a session, a sender key, a one-time prekey, a base key)
/// run in batch order, each seeing the ones before it; the others run in parallel on the
/// process's thread pool (rayon). A failed item changes nothing and does not hold the others
/// back. Touches no store: apply the change set atomically (a [`Conflict`] means load and
/// plan the whole batch again).
pub fn plan_batch(ops: &[Operation], snapshot: &Snapshot) -> (Vec<Result<Output>>, ChangeSet) {
    use rayon::prelude::*;
    let needs: Vec<Result<Needs>> = ops.iter().map(Operation::needs).collect();
    let groups = batch_groups(ops, &needs, snapshot);
    let planned: Vec<PlannedGroup> = if groups.len() <= 1 || rayon::current_num_threads() <= 1 {
        groups
            .iter()
            .map(|g| plan_group(ops, g, snapshot))
            .collect()
    } else {
        groups
            .par_iter()
            .map(|g| plan_group(ops, g, snapshot))
            .collect()
    };
    let mut results: Vec<Option<Result<Output>>> = needs
        .into_iter()
        .map(|n| match n {
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect();
    let mut changes = ChangeSet::default();
    for (rs, cs) in planned {
        for (i, r) in rs {
            results[i] = Some(r);
        }
        changes.absorb(cs);
    }
    // one order for every store: rows are written (and locked) sorted
    changes.sessions.sort_by(|a, b| a.0.cmp(&b.0));
    changes.identities.sort_by(|a, b| a.0.cmp(&b.0));
    changes.removed_prekeys.sort_unstable();
    changes.removed_kyber_prekeys.sort_unstable();
    changes
        .sender_keys
        .sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let results = results
        .into_iter()
        .map(|r| r.unwrap_or(Err(Error::InvalidArgument("a batch item was not planned"))))
        .collect();
    (results, changes)
}
