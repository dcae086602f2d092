//! Session state and the session record (current session + archived ones), serialized in
//! libsignal's `RecordStructure` storage format.

use std::collections::VecDeque;
use std::fmt;

use prost::Message as _;

use crate::curve::{KeyPair, PrivateKey, PublicKey};
use crate::error::{Error, Result};
use crate::proto::storage;
use crate::ratchet::{
    ChainKey, MessageKeys, RootKey, Secret32, ARCHIVED_STATES_MAX_LENGTH, MAX_MESSAGE_KEYS,
    MAX_RECEIVER_CHAINS,
};
use crate::spqr;

/// A skipped message key kept for out-of-order delivery.
#[derive(Clone, Debug)]
pub enum StoredMessageKey {
    /// libsignal ≥ 0.72 stores the 32-byte seed and re-derives the keys on use.
    Seed(Secret32),
    /// Older writers (python-axolotl, old libsignal) store the derived keys.
    Keys(MessageKeys),
}

impl StoredMessageKey {
    /// The message keys: derived from the seed (salted with the message's SPQR key, if any), or
    /// the stored derived keys (which predate SPQR, so there must be no SPQR key).
    pub fn keys(&self, counter: u32, pq_salt: Option<&[u8; 32]>) -> Result<MessageKeys> {
        match (self, pq_salt) {
            (Self::Seed(s), salt) => MessageKeys::derive(s, counter, salt),
            (Self::Keys(k), None) => Ok(k.clone()),
            (Self::Keys(_), Some(_)) => Err(Error::InvalidMessage("decryption failed")),
        }
    }
}

/// Our sending chain.
#[derive(Clone, Debug)]
pub struct SenderChain {
    /// Our current ratchet key pair.
    pub ratchet: KeyPair,
    /// The sending chain key.
    pub chain_key: ChainKey,
}

/// One receiving chain (per remote ratchet key).
#[derive(Clone, Debug)]
pub struct ReceiverChain {
    /// The remote ratchet key.
    pub ratchet_key: PublicKey,
    /// The next chain key.
    pub chain_key: ChainKey,
    /// Skipped keys, newest first.
    pub message_keys: VecDeque<(u32, StoredMessageKey)>,
}

impl ReceiverChain {
    /// Inserts skipped keys (in increasing counter order) at the front, dropping the oldest
    /// beyond [`MAX_MESSAGE_KEYS`].
    pub fn add_skipped(&mut self, keys: Vec<(u32, StoredMessageKey)>) {
        for k in keys {
            self.message_keys.push_front(k);
        }
        self.message_keys.truncate(MAX_MESSAGE_KEYS);
    }
}

/// Unacknowledged-session data that the initiator repeats in every PreKeySignalMessage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingPreKey {
    /// One-time prekey id, if one was used.
    pub pre_key_id: Option<u32>,
    /// Signed prekey id.
    pub signed_pre_key_id: u32,
    /// Our base key.
    pub base_key: PublicKey,
    /// Seconds since the epoch when the session was created.
    pub timestamp: u64,
    /// The Kyber prekey id and ciphertext (v4).
    pub kyber: Option<(u32, Vec<u8>)>,
}

/// The state of one session. `Debug` shows only public values and counts.
#[derive(Clone)]
pub struct SessionState {
    /// Session version (3 = X3DH, 4 = PQXDH).
    pub version: u8,
    /// Our identity key.
    pub local_identity: PublicKey,
    /// Their identity key.
    pub remote_identity: PublicKey,
    /// The root key.
    pub root_key: RootKey,
    /// Length of our previous sending chain.
    pub previous_counter: u32,
    /// Our sending chain.
    pub sender_chain: Option<SenderChain>,
    /// Receiving chains, newest first.
    pub receiver_chains: Vec<ReceiverChain>,
    /// Set until the first message from the peer is decrypted.
    pub pending_prekey: Option<PendingPreKey>,
    /// Their registration id.
    pub remote_registration_id: u32,
    /// Our registration id.
    pub local_registration_id: u32,
    /// Alice's base key (recognises repeated PreKey messages).
    pub alice_base_key: Option<PublicKey>,
    /// The SPQR state (V0: none), serialized as SessionStructure field 15.
    pub pq_ratchet: spqr::State,
}

impl fmt::Debug for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionState")
            .field("version", &self.version)
            .field("local_identity", &self.local_identity)
            .field("remote_identity", &self.remote_identity)
            .field("root_key", &self.root_key)
            .field("previous_counter", &self.previous_counter)
            .field("sender_chain", &self.sender_chain)
            .field("receiver_chains", &self.receiver_chains)
            .field("pending_prekey", &self.pending_prekey.is_some())
            .field("pq_ratchet", &self.pq_ratchet)
            .finish_non_exhaustive()
    }
}

impl SessionState {
    /// Index of the receiving chain for `key`.
    pub fn receiver_chain_index(&self, key: &PublicKey) -> Option<usize> {
        self.receiver_chains
            .iter()
            .position(|c| &c.ratchet_key == key)
    }

    /// Adds a receiving chain at the front, dropping the oldest beyond the limit.
    pub fn add_receiver_chain(&mut self, chain: ReceiverChain) {
        self.receiver_chains.insert(0, chain);
        self.receiver_chains.truncate(MAX_RECEIVER_CHAINS);
    }

    /// To libsignal's `SessionStructure`.
    pub fn to_proto(&self) -> storage::SessionStructure {
        let sender_chain = self.sender_chain.as_ref().map(|c| storage::Chain {
            sender_ratchet_key: c.ratchet.public_key.serialize().to_vec(),
            sender_ratchet_key_private: c.ratchet.private_key.serialize().to_vec(),
            chain_key: Some(chain_key_proto(&c.chain_key)),
            message_keys: vec![],
        });
        let receiver_chains = self
            .receiver_chains
            .iter()
            .map(|c| storage::Chain {
                sender_ratchet_key: c.ratchet_key.serialize().to_vec(),
                sender_ratchet_key_private: vec![],
                chain_key: Some(chain_key_proto(&c.chain_key)),
                message_keys: c
                    .message_keys
                    .iter()
                    .map(|(index, k)| match k {
                        StoredMessageKey::Seed(s) => storage::MessageKey {
                            index: *index,
                            cipher_key: vec![],
                            mac_key: vec![],
                            iv: vec![],
                            seed: s.expose().to_vec(),
                        },
                        StoredMessageKey::Keys(k) => storage::MessageKey {
                            index: *index,
                            cipher_key: k.cipher_key().to_vec(),
                            mac_key: k.mac_key().to_vec(),
                            iv: k.iv().to_vec(),
                            seed: vec![],
                        },
                    })
                    .collect(),
            })
            .collect();
        let (pending_pre_key, pending_kyber_pre_key) = match &self.pending_prekey {
            None => (None, None),
            Some(p) => (
                Some(storage::PendingPreKey {
                    pre_key_id: p.pre_key_id,
                    signed_pre_key_id: p.signed_pre_key_id as i32,
                    base_key: p.base_key.serialize().to_vec(),
                    timestamp: p.timestamp,
                }),
                p.kyber
                    .as_ref()
                    .map(|(id, ct)| storage::PendingKyberPreKey {
                        pre_key_id: *id,
                        ciphertext: ct.clone(),
                    }),
            ),
        };
        storage::SessionStructure {
            session_version: u32::from(self.version),
            local_identity_public: self.local_identity.serialize().to_vec(),
            remote_identity_public: self.remote_identity.serialize().to_vec(),
            root_key: self.root_key.0.expose().to_vec(),
            previous_counter: self.previous_counter,
            sender_chain,
            receiver_chains,
            pending_pre_key,
            remote_registration_id: self.remote_registration_id,
            local_registration_id: self.local_registration_id,
            alice_base_key: self
                .alice_base_key
                .map(|k| k.serialize().to_vec())
                .unwrap_or_default(),
            pending_kyber_pre_key,
            pq_ratchet_state: self.pq_ratchet.to_bytes(),
        }
    }

    /// From libsignal's (or python-axolotl's) `SessionStructure`.
    pub fn from_proto(p: storage::SessionStructure) -> Result<Self> {
        let bad = Error::InvalidRecord;
        let version = match p.session_version {
            // python-axolotl leaves the version at 0 or 2 for very old sessions; we only speak 3+.
            3 => 3,
            4 => 4,
            _ => return Err(Error::InvalidRecord("unsupported session version")),
        };
        let key = |b: &[u8], what: &'static str| PublicKey::deserialize(b).map_err(|_| bad(what));
        let secret =
            |b: &[u8], what: &'static str| Secret32::from_slice(b).ok_or_else(|| bad(what));
        let chain_key = |c: &Option<storage::ChainKey>| -> Result<ChainKey> {
            let c = c.as_ref().ok_or(bad("chain without chain key"))?;
            Ok(ChainKey::new(secret(&c.key, "bad chain key")?, c.index))
        };
        let sender_chain = match &p.sender_chain {
            None => None,
            Some(c) => {
                let private = PrivateKey::deserialize(&c.sender_ratchet_key_private)
                    .map_err(|_| bad("bad sender ratchet private key"))?;
                let public = key(&c.sender_ratchet_key, "bad sender ratchet key")?;
                // The stored public half is taken as stored, as libsignal does: recomputing it
                // costs one X25519 multiplication per stored state (every archived one too)
                // on every load, which dominated the durable stores' cost per message. A pair
                // that does not match can only come from a damaged or forged row: our next
                // messages then fail the peer's MAC and change nothing there (integrity of
                // stored rows is what sealing with a store key gives).
                Some(SenderChain {
                    ratchet: KeyPair {
                        public_key: public,
                        private_key: private,
                    },
                    chain_key: chain_key(&c.chain_key)?,
                })
            }
        };
        let mut receiver_chains = Vec::with_capacity(p.receiver_chains.len());
        for c in &p.receiver_chains {
            let mut message_keys = VecDeque::with_capacity(c.message_keys.len());
            for mk in &c.message_keys {
                let stored = if !mk.seed.is_empty() {
                    StoredMessageKey::Seed(secret(&mk.seed, "bad message key seed")?)
                } else {
                    let ck: [u8; 32] = mk
                        .cipher_key
                        .as_slice()
                        .try_into()
                        .map_err(|_| bad("bad cipher key"))?;
                    let mac: [u8; 32] = mk
                        .mac_key
                        .as_slice()
                        .try_into()
                        .map_err(|_| bad("bad mac key"))?;
                    let iv: [u8; 16] = mk.iv.as_slice().try_into().map_err(|_| bad("bad iv"))?;
                    StoredMessageKey::Keys(MessageKeys::from_parts(ck, mac, iv, mk.index))
                };
                message_keys.push_back((mk.index, stored));
            }
            receiver_chains.push(ReceiverChain {
                ratchet_key: key(&c.sender_ratchet_key, "bad receiver ratchet key")?,
                chain_key: chain_key(&c.chain_key)?,
                message_keys,
            });
        }
        let pending_prekey = match &p.pending_pre_key {
            None => None,
            Some(pp) => Some(PendingPreKey {
                pre_key_id: pp.pre_key_id,
                signed_pre_key_id: pp.signed_pre_key_id as u32,
                base_key: key(&pp.base_key, "bad pending base key")?,
                timestamp: pp.timestamp,
                kyber: p
                    .pending_kyber_pre_key
                    .as_ref()
                    .map(|k| (k.pre_key_id, k.ciphertext.clone())),
            }),
        };
        Ok(Self {
            version,
            local_identity: key(&p.local_identity_public, "bad local identity")?,
            remote_identity: key(&p.remote_identity_public, "bad remote identity")?,
            root_key: RootKey(secret(&p.root_key, "bad root key")?),
            previous_counter: p.previous_counter,
            sender_chain,
            receiver_chains,
            pending_prekey,
            remote_registration_id: p.remote_registration_id,
            local_registration_id: p.local_registration_id,
            alice_base_key: if p.alice_base_key.is_empty() {
                None
            } else {
                Some(key(&p.alice_base_key, "bad alice base key")?)
            },
            pq_ratchet: spqr::State::from_bytes(&p.pq_ratchet_state)
                .map_err(|_| Error::InvalidRecord("bad SPQR state"))?,
        })
    }
}

fn chain_key_proto(c: &ChainKey) -> storage::ChainKey {
    storage::ChainKey {
        index: c.index(),
        key: c.key().expose().to_vec(),
    }
}

/// A session record: the current session and up to 40 archived ones (most recent first).
#[derive(Clone, Debug, Default)]
pub struct SessionRecord {
    /// The current session.
    pub current: Option<SessionState>,
    /// Archived sessions, most recent first.
    pub previous: VecDeque<SessionState>,
}

impl SessionRecord {
    /// A record holding one session.
    pub fn new(state: SessionState) -> Self {
        Self {
            current: Some(state),
            previous: VecDeque::new(),
        }
    }

    /// Makes `state` current, archiving the current session (without its pending prekey).
    pub fn promote_state(&mut self, state: SessionState) {
        self.archive_current_state();
        self.current = Some(state);
    }

    /// Archives the current session, if any.
    pub fn archive_current_state(&mut self) {
        if let Some(mut cur) = self.current.take() {
            cur.pending_prekey = None;
            self.previous.push_front(cur);
            self.previous.truncate(ARCHIVED_STATES_MAX_LENGTH);
        }
    }

    /// Makes archived session `index` current again, archiving the current one.
    pub fn promote_old_session(&mut self, index: usize) {
        if let Some(old) = self.previous.remove(index) {
            self.promote_state(old);
        }
    }

    /// True if any session (current or archived) has this version and Alice base key.
    pub fn find_session_with_base_key(&self, version: u8, base_key: &PublicKey) -> Option<usize> {
        self.sessions()
            .position(|s| s.version == version && s.alice_base_key.as_ref() == Some(base_key))
    }

    /// Current first, then archived.
    pub fn sessions(&self) -> impl Iterator<Item = &SessionState> {
        self.current.iter().chain(self.previous.iter())
    }

    /// The current session's version.
    pub fn version(&self) -> Option<u8> {
        self.current.as_ref().map(|s| s.version)
    }

    /// Serializes as libsignal's `RecordStructure`.
    pub fn serialize(&self) -> Vec<u8> {
        let rs = storage::RecordStructure {
            current_session: self.current.as_ref().map(SessionState::to_proto),
            previous_sessions: self
                .previous
                .iter()
                .map(|s| s.to_proto().encode_to_vec())
                .collect(),
        };
        rs.encode_to_vec()
    }

    /// Parses libsignal's `RecordStructure` (python-axolotl's layout is the same on the wire).
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let rs = storage::RecordStructure::decode(data)
            .map_err(|_| Error::InvalidRecord("SessionRecord protobuf is invalid"))?;
        let current = rs
            .current_session
            .map(SessionState::from_proto)
            .transpose()?;
        let mut previous = VecDeque::with_capacity(rs.previous_sessions.len());
        for b in &rs.previous_sessions {
            let p = storage::SessionStructure::decode(b.as_slice())
                .map_err(|_| Error::InvalidRecord("archived session protobuf is invalid"))?;
            previous.push_back(SessionState::from_proto(p)?);
        }
        Ok(Self { current, previous })
    }
}
