//! The store interface the session logic runs against, and an in-memory store.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::curve::PublicKey;
use crate::error::{Error, Result};
use crate::group::{DistributionKey, SenderKeyRecord};
use crate::prekey::{IdentityKeyPair, KyberPreKeyRecord, PreKeyRecord, SignedPreKeyRecord};
use crate::state::SessionRecord;

/// A remote party: a name (service id, phone number, JID user...) and a device id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// The name.
    pub name: String,
    /// The device id.
    pub device_id: u32,
}

impl Address {
    /// A new address.
    pub fn new(name: impl Into<String>, device_id: u32) -> Self {
        Self {
            name: name.into(),
            device_id,
        }
    }
}

impl Address {
    /// The fixed-width binary ServiceId of the name (17 bytes: kind 0x00 ACI or 0x01 PNI, then
    /// the 16 UUID bytes), if the name is a ServiceId string: a hyphenated UUID (an ACI) or
    /// `PNI:` followed by one.
    pub fn service_id_binary(&self) -> Option<[u8; 17]> {
        let (kind, uuid) = match self.name.strip_prefix("PNI:") {
            Some(rest) => (1u8, rest),
            None => (0u8, self.name.as_str()),
        };
        let b = uuid.as_bytes();
        if b.len() != 36 {
            return None;
        }
        let mut out = [0u8; 17];
        out[0] = kind;
        let mut n = 0usize;
        let mut hi: Option<u8> = None;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let v = (c as char).to_digit(16)? as u8;
            match hi.take() {
                None => hi = Some(v),
                Some(h) => {
                    n += 1;
                    *out.get_mut(n)? = (h << 4) | v;
                }
            }
        }
        (n == 16).then_some(out)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.device_id)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

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
    /// Marks a Kyber prekey used: a one-time key is removed, a last-resort key is kept.
    fn mark_kyber_prekey_used(&mut self, id: u32) -> Result<()>;
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
    fn mark_kyber_prekey_used(&mut self, id: u32) -> Result<()> {
        if let Some((_, false)) = self.kyber_prekeys.get(&id) {
            self.kyber_prekeys.remove(&id);
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
        f(self
            .sender_keys
            .entry((sender.clone(), distribution.clone()))
            .or_default());
        Ok(())
    }
}
