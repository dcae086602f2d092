//! The store interface the session logic runs against, and an in-memory store.

pub use crate::address::Address;
use crate::curve::PublicKey;
use crate::error::{Error, Result};
use crate::group::{DistributionKey, SenderKeyRecord};
use crate::prekey::{IdentityKeyPair, KyberPreKeyRecord, PreKeyRecord, SignedPreKeyRecord};
use crate::state::SessionRecord;
use crate::uow::{ChangeSet, Conflict, Needs, Snapshot, Version};
use std::collections::{HashMap, HashSet};

/// Everything the session logic needs from a store.
///
/// Session updates follow a read-then-commit pattern: the logic reads a record, computes the
/// whole outcome (failing without side effects), then commits with [`update_session`].
///
/// [`update_session`]: ProtocolStore::update_session
pub trait ProtocolStore {
    /// Our identity.
    fn identity_key_pair(&self) -> Result<IdentityKeyPair>;
    /// Our registration id.
    fn local_registration_id(&self) -> Result<u32>;
    /// Trust on first use: true if no identity is stored for `address` or it equals `key`.
    fn is_trusted_identity(&self, address: &Address, key: &PublicKey) -> Result<bool>;
    /// Records `key` as the identity of `address`.
    fn save_identity(&mut self, address: &Address, key: &PublicKey) -> Result<()>;
    /// The stored identity of `address`.
    fn identity(&self, address: &Address) -> Result<Option<PublicKey>>;
    /// Runs `f` on the session record of `address` (None if there is none).
    fn read_session<R>(
        &self,
        address: &Address,
        f: impl FnOnce(Option<&SessionRecord>) -> Result<R>,
    ) -> Result<R>;
    /// Applies `f` to the record of `address` (an empty record if there is none) and saves it.
    fn update_session(
        &mut self,
        address: &Address,
        f: impl FnOnce(&mut SessionRecord),
    ) -> Result<()>;
    /// A one-time prekey.
    fn load_prekey(&self, id: u32) -> Result<Option<PreKeyRecord>>;
    /// Removes a used one-time prekey.
    fn remove_prekey(&mut self, id: u32) -> Result<()>;
    /// A signed prekey.
    fn load_signed_prekey(&self, id: u32) -> Result<Option<SignedPreKeyRecord>>;
    /// A Kyber prekey.
    fn load_kyber_prekey(&self, id: u32) -> Result<Option<KyberPreKeyRecord>>;
    /// Marks a Kyber prekey used by a session set up with `signed_prekey_id` and `base_key`: a
    /// one-time key is removed; a last-resort key is kept and the triple recorded, and a
    /// triple seen before fails with [`Error::InvalidMessage`] (as libsignal's store does).
    fn mark_kyber_prekey_used(
        &mut self,
        id: u32,
        signed_prekey_id: u32,
        base_key: &PublicKey,
    ) -> Result<()>;
    /// Records that a session was set up from `base_key` with signed prekey `signed_prekey_id`
    /// and no one-time EC prekey. Fails with [`Error::InvalidMessage`] if that pair was seen
    /// before: a replayed PreKeySignalMessage must never set up a second session, even after
    /// the first one was deleted. Records may be dropped when the signed prekey is removed.
    ///
    /// [`Error::InvalidMessage`]: crate::Error::InvalidMessage
    fn record_base_key(&mut self, signed_prekey_id: u32, base_key: &PublicKey) -> Result<()>;

    /// The sender-key record of (`sender`, `distribution`), if any.
    fn load_sender_key(
        &self,
        sender: &Address,
        distribution: &DistributionKey,
    ) -> Result<Option<SenderKeyRecord>>;
    /// Saves the sender-key record of (`sender`, `distribution`).
    fn store_sender_key(
        &mut self,
        sender: &Address,
        distribution: &DistributionKey,
        record: &SenderKeyRecord,
    ) -> Result<()>;
    /// Runs `f` on the sender-key record (None if there is none). The default loads a copy;
    /// in-memory stores lend theirs.
    fn read_sender_key<R>(
        &self,
        sender: &Address,
        distribution: &DistributionKey,
        f: impl FnOnce(Option<&SenderKeyRecord>) -> Result<R>,
    ) -> Result<R> {
        let record = self.load_sender_key(sender, distribution)?;
        f(record.as_ref())
    }
    /// Applies `f` to the sender-key record (an empty one if there is none) and saves it.
    fn update_sender_key(
        &mut self,
        sender: &Address,
        distribution: &DistributionKey,
        f: impl FnOnce(&mut SenderKeyRecord),
    ) -> Result<()> {
        let mut record = self
            .load_sender_key(sender, distribution)?
            .unwrap_or_default();
        f(&mut record);
        self.store_sender_key(sender, distribution, &record)
    }
}

/// Every store in memory.
#[derive(Clone, Debug)]
pub struct InMemoryStore {
    identity: IdentityKeyPair,
    registration_id: u32,
    /// Remote identities.
    pub identities: HashMap<Address, PublicKey>,
    /// Session records.
    pub sessions: HashMap<Address, SessionRecord>,
    /// One-time prekeys.
    pub prekeys: HashMap<u32, PreKeyRecord>,
    /// Signed prekeys.
    pub signed_prekeys: HashMap<u32, SignedPreKeyRecord>,
    /// Kyber prekeys, with their last-resort flag.
    pub kyber_prekeys: HashMap<u32, (KyberPreKeyRecord, bool)>,
    /// Base keys of sessions set up without a one-time EC prekey, per signed prekey id.
    pub used_base_keys: HashMap<u32, HashSet<PublicKey>>,
    /// Sender-key records by (sender, distribution).
    pub sender_keys: HashMap<(Address, DistributionKey), SenderKeyRecord>,
    /// Last-resort Kyber uses: (Kyber id, signed prekey id, base key).
    pub kyber_last_resort_uses: HashSet<(u32, u32, PublicKey)>,
    /// Versions of session records (kept after removal, so a version is never reused).
    session_versions: HashMap<Address, Version>,
    /// Versions of sender-key records (likewise).
    sender_key_versions: HashMap<(Address, DistributionKey), Version>,
}

impl InMemoryStore {
    /// An empty store for an identity.
    pub fn new(identity: IdentityKeyPair, registration_id: u32) -> Self {
        Self {
            identity,
            registration_id,
            identities: HashMap::new(),
            sessions: HashMap::new(),
            prekeys: HashMap::new(),
            signed_prekeys: HashMap::new(),
            kyber_prekeys: HashMap::new(),
            used_base_keys: HashMap::new(),
            sender_keys: HashMap::new(),
            kyber_last_resort_uses: HashSet::new(),
            session_versions: HashMap::new(),
            sender_key_versions: HashMap::new(),
        }
    }

    /// Our identity (borrowed).
    pub fn identity(&self) -> &IdentityKeyPair {
        &self.identity
    }

    /// Our registration id.
    pub fn registration_id(&self) -> u32 {
        self.registration_id
    }

    /// Removes a signed prekey and the replay records that belong to it.
    pub fn remove_signed_prekey(&mut self, id: u32) {
        self.signed_prekeys.remove(&id);
        self.used_base_keys.remove(&id);
    }

    /// Replaces the identity of `address` (explicit trust of a changed key).
    pub fn trust(&mut self, address: &Address, key: PublicKey) {
        self.identities.insert(address.clone(), key);
    }

    /// The version of the session record of `address` (0: never stored).
    pub fn session_version(&self, address: &Address) -> Version {
        self.session_versions.get(address).copied().unwrap_or(0)
    }

    fn bump_session(&mut self, address: &Address) {
        *self.session_versions.entry(address.clone()).or_insert(0) += 1;
    }

    fn bump_sender_key(&mut self, key: &(Address, DistributionKey)) {
        *self.sender_key_versions.entry(key.clone()).or_insert(0) += 1;
    }

    /// Stores (replaces) the session record of `address`.
    pub fn put_session(&mut self, address: &Address, record: SessionRecord) {
        self.sessions.insert(address.clone(), record);
        self.bump_session(address);
    }

    /// Removes the session record of `address`.
    pub fn delete_session(&mut self, address: &Address) {
        if self.sessions.remove(address).is_some() {
            self.bump_session(address);
        }
    }

    /// Stores (replaces) a sender-key record.
    pub fn put_sender_key(&mut self, key: (Address, DistributionKey), record: SenderKeyRecord) {
        self.bump_sender_key(&key);
        self.sender_keys.insert(key, record);
    }

    /// Removes a sender-key record.
    pub fn delete_sender_key(&mut self, key: &(Address, DistributionKey)) {
        if self.sender_keys.remove(key).is_some() {
            self.bump_sender_key(key);
        }
    }

    /// Loads what an operation needs (copies: the store may change while the plan runs).
    pub fn snapshot(&self, needs: &Needs) -> Snapshot {
        let mut s = Snapshot::new(self.identity.clone(), self.registration_id);
        for a in &needs.sessions {
            s.add_session(
                a.clone(),
                self.sessions.get(a).cloned(),
                self.session_version(a),
            );
        }
        for a in &needs.identities {
            s.add_identity(a.clone(), self.identities.get(a).copied());
        }
        for id in &needs.prekeys {
            s.add_prekey(*id, self.prekeys.get(id).cloned());
        }
        for id in &needs.signed_prekeys {
            s.add_signed_prekey(*id, self.signed_prekeys.get(id).cloned());
        }
        for id in &needs.kyber_prekeys {
            s.add_kyber_prekey(*id, self.kyber_prekeys.get(id).cloned());
        }
        for (id, base) in &needs.base_keys {
            let seen = self
                .used_base_keys
                .get(id)
                .is_some_and(|b| b.contains(base));
            s.add_base_key(*id, *base, seen);
        }
        for key in &needs.sender_keys {
            let version = self.sender_key_versions.get(key).copied().unwrap_or(0);
            s.add_sender_key(
                key.0.clone(),
                key.1.clone(),
                self.sender_keys.get(key).cloned(),
                version,
            );
        }
        s
    }

    /// Applies a change set atomically: if any record it read has changed since, a unique use
    /// was recorded meanwhile, or a one-time prekey it consumes is gone, nothing is applied and
    /// [`Conflict`] is returned.
    pub fn apply(&mut self, changes: ChangeSet) -> std::result::Result<(), Conflict> {
        let stale = changes
            .sessions
            .iter()
            .any(|(a, v, _)| self.session_version(a) != *v)
            || changes.sender_keys.iter().any(|(s, d, v, _)| {
                let key = (s.clone(), d.clone());
                self.sender_key_versions.get(&key).copied().unwrap_or(0) != *v
            })
            || changes
                .base_keys
                .iter()
                .any(|(id, b)| self.used_base_keys.get(id).is_some_and(|s| s.contains(b)))
            || changes
                .kyber_last_resort_uses
                .iter()
                .any(|t| self.kyber_last_resort_uses.contains(t))
            // A one-time prekey consumed meanwhile (by another session) is a lost race too:
            // one prekey must never set up two sessions.
            || changes
                .removed_prekeys
                .iter()
                .any(|id| !self.prekeys.contains_key(id))
            || changes
                .removed_kyber_prekeys
                .iter()
                .any(|id| !self.kyber_prekeys.contains_key(id));
        if stale {
            return Err(Conflict);
        }
        for (a, _, r) in changes.sessions {
            self.put_session(&a, r);
        }
        for (a, k) in changes.identities {
            self.identities.insert(a, k);
        }
        for id in changes.removed_prekeys {
            self.prekeys.remove(&id);
        }
        for id in changes.removed_kyber_prekeys {
            self.kyber_prekeys.remove(&id);
        }
        for t in changes.kyber_last_resort_uses {
            self.kyber_last_resort_uses.insert(t);
        }
        for (id, b) in changes.base_keys {
            self.used_base_keys.entry(id).or_default().insert(b);
        }
        for (s, d, _, r) in changes.sender_keys {
            self.put_sender_key((s, d), r);
        }
        Ok(())
    }
}

impl ProtocolStore for InMemoryStore {
    fn identity_key_pair(&self) -> Result<IdentityKeyPair> {
        Ok(self.identity.clone())
    }
    fn local_registration_id(&self) -> Result<u32> {
        Ok(self.registration_id)
    }
    fn is_trusted_identity(&self, address: &Address, key: &PublicKey) -> Result<bool> {
        Ok(self.identities.get(address).is_none_or(|k| k == key))
    }
    fn save_identity(&mut self, address: &Address, key: &PublicKey) -> Result<()> {
        self.identities.insert(address.clone(), *key);
        Ok(())
    }
    fn identity(&self, address: &Address) -> Result<Option<PublicKey>> {
        Ok(self.identities.get(address).copied())
    }
    fn read_session<R>(
        &self,
        address: &Address,
        f: impl FnOnce(Option<&SessionRecord>) -> Result<R>,
    ) -> Result<R> {
        f(self.sessions.get(address))
    }
    fn update_session(
        &mut self,
        address: &Address,
        f: impl FnOnce(&mut SessionRecord),
    ) -> Result<()> {
        match self.sessions.get_mut(address) {
            Some(r) => f(r),
            None => f(self.sessions.entry(address.clone()).or_default()),
        }
        self.bump_session(address);
        Ok(())
    }
    fn load_prekey(&self, id: u32) -> Result<Option<PreKeyRecord>> {
        Ok(self.prekeys.get(&id).cloned())
    }
    fn remove_prekey(&mut self, id: u32) -> Result<()> {
        self.prekeys.remove(&id);
        Ok(())
    }
    fn load_signed_prekey(&self, id: u32) -> Result<Option<SignedPreKeyRecord>> {
        Ok(self.signed_prekeys.get(&id).cloned())
    }
    fn load_kyber_prekey(&self, id: u32) -> Result<Option<KyberPreKeyRecord>> {
        Ok(self.kyber_prekeys.get(&id).map(|(r, _)| r.clone()))
    }
    fn mark_kyber_prekey_used(
        &mut self,
        id: u32,
        signed_prekey_id: u32,
        base_key: &PublicKey,
    ) -> Result<()> {
        match self.kyber_prekeys.get(&id) {
            Some((_, false)) => {
                self.kyber_prekeys.remove(&id);
            }
            Some((_, true)) => {
                let fresh = self
                    .kyber_last_resort_uses
                    .insert((id, signed_prekey_id, *base_key));
                if !fresh {
                    return Err(Error::InvalidMessage(
                        "PreKeySignalMessage replayed (last-resort Kyber use seen)",
                    ));
                }
            }
            None => {}
        }
        Ok(())
    }
    fn record_base_key(&mut self, signed_prekey_id: u32, base_key: &PublicKey) -> Result<()> {
        if self
            .used_base_keys
            .entry(signed_prekey_id)
            .or_default()
            .insert(*base_key)
        {
            Ok(())
        } else {
            Err(Error::InvalidMessage(
                "PreKeySignalMessage replayed (base key already used)",
            ))
        }
    }
    fn load_sender_key(
        &self,
        sender: &Address,
        distribution: &DistributionKey,
    ) -> Result<Option<SenderKeyRecord>> {
        Ok(self
            .sender_keys
            .get(&(sender.clone(), distribution.clone()))
            .cloned())
    }
    fn store_sender_key(
        &mut self,
        sender: &Address,
        distribution: &DistributionKey,
        record: &SenderKeyRecord,
    ) -> Result<()> {
        self.put_sender_key((sender.clone(), distribution.clone()), record.clone());
        Ok(())
    }
    fn read_sender_key<R>(
        &self,
        sender: &Address,
        distribution: &DistributionKey,
        f: impl FnOnce(Option<&SenderKeyRecord>) -> Result<R>,
    ) -> Result<R> {
        f(self
            .sender_keys
            .get(&(sender.clone(), distribution.clone())))
    }
    fn update_sender_key(
        &mut self,
        sender: &Address,
        distribution: &DistributionKey,
        f: impl FnOnce(&mut SenderKeyRecord),
    ) -> Result<()> {
        let key = (sender.clone(), distribution.clone());
        f(self.sender_keys.entry(key.clone()).or_default());
        self.bump_sender_key(&key);
        Ok(())
    }
}
