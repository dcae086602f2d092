//! Sender keys (group messaging) in two wire formats (protocol-notes §2, §6).
//!
//! * **Current** (libsignal): the sender key is named by (sender, distribution UUID); the
//!   SenderKeyDistributionMessage and SenderKeyMessage carry the UUID (fields 1–5 / 1–4).
//! * **Legacy** (WhatsApp-era: libsignal-protocol-java, python-axolotl, Baileys): named by
//!   (sender, group-id string); the messages carry no distribution id (SKDM fields
//!   `{id, iteration, chainKey, signingKey}`, message fields `{id, iteration, ciphertext}`).
//!
//! Both formats share the key schedule and the stored record: chain step HMAC(ck, 0x01) /
//! HMAC(ck, 0x02), message keys HKDF(no salt, seed, `WhisperGroup`, 48) = IV (16) ‖ AES-256
//! key (32), AES-256-CBC/PKCS#7, and an XEdDSA signature by the chain's signing key over
//! `version ‖ protobuf`. Records serialize as libsignal's `SenderKeyRecordStructure`
//! (python-axolotl's record has the same field numbers).
//!
//! Every operation computes its whole outcome from the stored record first and commits only
//! after full success: a bad signature, a duplicate, a too-large gap or a bad ciphertext
//! leaves the record exactly as it was.

use std::collections::VecDeque;
use std::fmt;

use prost::Message as _;
use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::address::Address;
use crate::crypto;
use crate::curve::{KeyPair, PrivateKey, PublicKey, SigningKey, VerifyingKey, SIGNATURE_LENGTH};
use crate::error::{Error, Result};
use crate::proto::{storage, wire};
use crate::ratchet::{ChainKey, Secret32, MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS};
use crate::store::ProtocolStore;

/// The sender-key message version (version byte `0x33`).
pub const SENDERKEY_MESSAGE_VERSION: u8 = 3;
/// Most sender-key states kept per record (oldest dropped).
pub const MAX_SENDER_KEY_STATES: usize = 5;

const VERSION_BYTE: u8 = (SENDERKEY_MESSAGE_VERSION << 4) | SENDERKEY_MESSAGE_VERSION;

/// What names a sender key besides the sender's address; it also selects the wire format.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DistributionKey {
    /// The current format: a distribution UUID (16 raw bytes).
    Uuid([u8; 16]),
    /// The legacy (WhatsApp-era) format: a group id string.
    GroupId(String),
}

impl DistributionKey {
    /// The UUID carried in current-format messages; None for the legacy format.
    pub fn distribution_id(&self) -> Option<[u8; 16]> {
        match self {
            Self::Uuid(u) => Some(*u),
            Self::GroupId(_) => None,
        }
    }

    fn check_message(&self, distribution_id: Option<[u8; 16]>) -> Result<()> {
        match (self.distribution_id(), distribution_id) {
            (Some(ours), Some(theirs)) if ours == theirs => Ok(()),
            (None, None) => Ok(()),
            (Some(_), Some(_)) => Err(Error::InvalidMessage(
                "message belongs to another distribution",
            )),
            _ => Err(Error::InvalidMessage(
                "message format does not match this group cipher",
            )),
        }
    }
}

fn check_version(byte: u8) -> Result<()> {
    match byte >> 4 {
        SENDERKEY_MESSAGE_VERSION => Ok(()),
        v => Err(Error::UnsupportedVersion(v)),
    }
}

fn uuid16(b: Option<Vec<u8>>) -> Result<[u8; 16]> {
    b.and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok())
        .ok_or(Error::InvalidMessage(
            "distribution id is missing or invalid",
        ))
}

// ---------------------------------------------------------------------------------------
// Message keys
// ---------------------------------------------------------------------------------------

/// The keys of one group message: HKDF(seed, `WhisperGroup`, 48) = IV ‖ cipher key.
#[derive(Zeroize, ZeroizeOnDrop)]
struct SenderMessageKeys {
    iv: [u8; 16],
    cipher_key: [u8; 32],
}

impl SenderMessageKeys {
    fn derive(seed: &Secret32) -> Result<Self> {
        let mut out = Zeroizing::new([0u8; 48]);
        crypto::hkdf_sha256(None, seed.expose(), b"WhisperGroup", out.as_mut())?;
        let mut k = Self {
            iv: [0; 16],
            cipher_key: [0; 32],
        };
        k.iv.copy_from_slice(&out[..16]);
        k.cipher_key.copy_from_slice(&out[16..]);
        Ok(k)
    }
}

// ---------------------------------------------------------------------------------------
// Wire messages
// ---------------------------------------------------------------------------------------

/// A group message: `0x33 ‖ protobuf ‖ XEdDSA signature (64)`, in either format.
#[derive(Clone, Debug)]
pub struct SenderKeyMessage {
    distribution_id: Option<[u8; 16]>,
    chain_id: u32,
    iteration: u32,
    ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SenderKeyMessage {
    fn new_signed(
        distribution_id: Option<[u8; 16]>,
        chain_id: u32,
        iteration: u32,
        ciphertext: Vec<u8>,
        signer: &SigningKey,
    ) -> Result<Self> {
        let mut serialized = Vec::with_capacity(ciphertext.len() + 40 + SIGNATURE_LENGTH);
        serialized.push(VERSION_BYTE);
        let encoded = match distribution_id {
            Some(u) => wire::SenderKeyMessage {
                distribution_uuid: Some(u.to_vec()),
                chain_id: Some(chain_id),
                iteration: Some(iteration),
                ciphertext: Some(ciphertext.clone()),
            }
            .encode(&mut serialized),
            None => wire::LegacySenderKeyMessage {
                id: Some(chain_id),
                iteration: Some(iteration),
                ciphertext: Some(ciphertext.clone()),
            }
            .encode(&mut serialized),
        };
        encoded.map_err(|_| Error::InvalidMessage("encoding failed"))?;
        let signature = signer.sign_multipart_with(&[&serialized], &mut OsRng);
        serialized.extend_from_slice(&signature);
        Ok(Self {
            distribution_id,
            chain_id,
            iteration,
            ciphertext,
            serialized,
        })
    }

    fn split(data: &[u8]) -> Result<&[u8]> {
        if data.len() < 1 + SIGNATURE_LENGTH {
            return Err(Error::InvalidMessage("SenderKeyMessage too short"));
        }
        check_version(data[0])?;
        Ok(&data[1..data.len() - SIGNATURE_LENGTH])
    }

    /// Parses the current (libsignal) format. Does not check the signature (that needs the
    /// sender key).
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let body = Self::split(data)?;
        let p = wire::SenderKeyMessage::decode(body)
            .map_err(|_| Error::InvalidMessage("SenderKeyMessage protobuf is invalid"))?;
        Ok(Self {
            distribution_id: Some(uuid16(p.distribution_uuid)?),
            chain_id: p.chain_id.ok_or(Error::InvalidMessage(
                "SenderKeyMessage chain id is missing",
            ))?,
            iteration: p.iteration.ok_or(Error::InvalidMessage(
                "SenderKeyMessage iteration is missing",
            ))?,
            ciphertext: p.ciphertext.ok_or(Error::InvalidMessage(
                "SenderKeyMessage ciphertext is missing",
            ))?,
            serialized: data.to_vec(),
        })
    }

    /// Parses the legacy (WhatsApp-era) format.
    pub fn deserialize_legacy(data: &[u8]) -> Result<Self> {
        let body = Self::split(data)?;
        let p = wire::LegacySenderKeyMessage::decode(body)
            .map_err(|_| Error::InvalidMessage("SenderKeyMessage protobuf is invalid"))?;
        Ok(Self {
            distribution_id: None,
            chain_id: p
                .id
                .ok_or(Error::InvalidMessage("SenderKeyMessage id is missing"))?,
            iteration: p.iteration.ok_or(Error::InvalidMessage(
                "SenderKeyMessage iteration is missing",
            ))?,
            ciphertext: p.ciphertext.ok_or(Error::InvalidMessage(
                "SenderKeyMessage ciphertext is missing",
            ))?,
            serialized: data.to_vec(),
        })
    }

    /// True for the legacy format.
    pub fn is_legacy(&self) -> bool {
        self.distribution_id.is_none()
    }
    /// The message version (high nibble of the version byte; always 3).
    pub fn message_version(&self) -> u8 {
        self.serialized.first().map_or(0, |b| b >> 4)
    }
    /// The distribution UUID (None in the legacy format).
    pub fn distribution_id(&self) -> Option<[u8; 16]> {
        self.distribution_id
    }
    /// The chain id (the legacy format's `id`).
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }
    /// The message's index in its chain.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }
    /// The AES-256-CBC ciphertext.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }
    /// The exact wire bytes.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    fn verify_signature(&self, key: &VerifyingKey) -> bool {
        let n = self.serialized.len();
        match n.checked_sub(SIGNATURE_LENGTH) {
            Some(split) => {
                key.verify_multipart(&[&self.serialized[..split]], &self.serialized[split..])
            }
            None => false,
        }
    }
}

/// A sender key distribution: `0x33 ‖ protobuf`, no MAC or signature (it travels inside an
/// authenticated 1:1 message). Holds the chain key: secret, redacted in `Debug`.
#[derive(Clone)]
pub struct SenderKeyDistributionMessage {
    distribution_id: Option<[u8; 16]>,
    chain_id: u32,
    iteration: u32,
    chain_key: Secret32,
    signing_key: PublicKey,
    serialized: Zeroizing<Vec<u8>>,
}

impl SenderKeyDistributionMessage {
    fn new(
        distribution_id: Option<[u8; 16]>,
        chain_id: u32,
        iteration: u32,
        chain_key: Secret32,
        signing_key: PublicKey,
    ) -> Result<Self> {
        let mut serialized = Zeroizing::new(Vec::with_capacity(100));
        serialized.push(VERSION_BYTE);
        let encoded = match distribution_id {
            Some(u) => wire::SenderKeyDistributionMessage {
                distribution_uuid: Some(u.to_vec()),
                chain_id: Some(chain_id),
                iteration: Some(iteration),
                chain_key: Some(chain_key.expose().to_vec()),
                signing_key: Some(signing_key.serialize().to_vec()),
            }
            .encode(&mut *serialized),
            None => wire::LegacySenderKeyDistributionMessage {
                id: Some(chain_id),
                iteration: Some(iteration),
                chain_key: Some(chain_key.expose().to_vec()),
                signing_key: Some(signing_key.serialize().to_vec()),
            }
            .encode(&mut *serialized),
        };
        encoded.map_err(|_| Error::InvalidMessage("encoding failed"))?;
        Ok(Self {
            distribution_id,
            chain_id,
            iteration,
            chain_key,
            signing_key,
            serialized,
        })
    }

    fn parts(
        chain_key: Option<&[u8]>,
        signing_key: Option<&[u8]>,
    ) -> Result<(Secret32, PublicKey)> {
        let ck = chain_key.ok_or(Error::InvalidMessage(
            "SenderKeyDistributionMessage chain key is missing",
        ))?;
        let ck = Secret32::from_slice(ck).ok_or(Error::InvalidMessage(
            "SenderKeyDistributionMessage chain key must be 32 bytes",
        ))?;
        let sk = signing_key.ok_or(Error::InvalidMessage(
            "SenderKeyDistributionMessage signing key is missing",
        ))?;
        let sk = PublicKey::deserialize_exact(sk).map_err(|_| {
            Error::InvalidMessage("SenderKeyDistributionMessage signing key is invalid")
        })?;
        Ok((ck, sk))
    }

    /// Parses the current (libsignal) format.
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let (&first, body) = data.split_first().ok_or(Error::InvalidMessage(
            "SenderKeyDistributionMessage is empty",
        ))?;
        check_version(first)?;
        let mut p = wire::SenderKeyDistributionMessage::decode(body).map_err(|_| {
            Error::InvalidMessage("SenderKeyDistributionMessage protobuf is invalid")
        })?;
        let distribution_id = uuid16(p.distribution_uuid.take())?;
        let chain_id = p.chain_id.ok_or(Error::InvalidMessage(
            "SenderKeyDistributionMessage chain id is missing",
        ))?;
        let iteration = p.iteration.ok_or(Error::InvalidMessage(
            "SenderKeyDistributionMessage iteration is missing",
        ))?;
        let (chain_key, signing_key) =
            Self::parts(p.chain_key.as_deref(), p.signing_key.as_deref())?;
        Ok(Self {
            distribution_id: Some(distribution_id),
            chain_id,
            iteration,
            chain_key,
            signing_key,
            serialized: Zeroizing::new(data.to_vec()),
        })
    }

    /// Parses the legacy (WhatsApp-era) format.
    pub fn deserialize_legacy(data: &[u8]) -> Result<Self> {
        let (&first, body) = data.split_first().ok_or(Error::InvalidMessage(
            "SenderKeyDistributionMessage is empty",
        ))?;
        check_version(first)?;
        let p = wire::LegacySenderKeyDistributionMessage::decode(body).map_err(|_| {
            Error::InvalidMessage("SenderKeyDistributionMessage protobuf is invalid")
        })?;
        let chain_id = p.id.ok_or(Error::InvalidMessage(
            "SenderKeyDistributionMessage id is missing",
        ))?;
        let iteration = p.iteration.ok_or(Error::InvalidMessage(
            "SenderKeyDistributionMessage iteration is missing",
        ))?;
        let (chain_key, signing_key) =
            Self::parts(p.chain_key.as_deref(), p.signing_key.as_deref())?;
        Ok(Self {
            distribution_id: None,
            chain_id,
            iteration,
            chain_key,
            signing_key,
            serialized: Zeroizing::new(data.to_vec()),
        })
    }

    /// True for the legacy format.
    pub fn is_legacy(&self) -> bool {
        self.distribution_id.is_none()
    }
    /// The message version (always 3).
    pub fn message_version(&self) -> u8 {
        self.serialized.first().map_or(0, |b| b >> 4)
    }
    /// The distribution UUID (None in the legacy format).
    pub fn distribution_id(&self) -> Option<[u8; 16]> {
        self.distribution_id
    }
    /// The chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }
    /// The chain's iteration the receiver starts from.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }
    /// The chain key (secret).
    pub fn chain_key(&self) -> &Secret32 {
        &self.chain_key
    }
    /// The sender's signing public key.
    pub fn signing_key(&self) -> &PublicKey {
        &self.signing_key
    }
    /// The exact wire bytes (they contain the chain key: secret).
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

impl fmt::Debug for SenderKeyDistributionMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyDistributionMessage")
            .field("legacy", &self.is_legacy())
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.iteration)
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------
// State and record (libsignal's storage format)
// ---------------------------------------------------------------------------------------

/// One sender-key chain: its id, chain key, signing key and skipped message keys.
#[derive(Clone)]
pub struct SenderKeyState {
    /// As stored (0 in the first records means version 3).
    message_version: u32,
    chain_id: u32,
    chain_key: ChainKey,
    signing_public: VerifyingKey,
    signing_private: Option<SigningKey>,
    /// Skipped message-key seeds, oldest first (libsignal's order).
    message_keys: VecDeque<(u32, Secret32)>,
}

impl SenderKeyState {
    fn new(
        message_version: u8,
        chain_id: u32,
        chain_key: ChainKey,
        signing_public: PublicKey,
        signing_private: Option<PrivateKey>,
    ) -> Self {
        Self {
            message_version: u32::from(message_version),
            chain_id,
            chain_key,
            signing_public: VerifyingKey::new(signing_public),
            signing_private: signing_private.map(SigningKey::new),
            message_keys: VecDeque::new(),
        }
    }

    /// The message version (a stored 0 reads as 3, as in libsignal).
    pub fn message_version(&self) -> u32 {
        match self.message_version {
            0 => u32::from(SENDERKEY_MESSAGE_VERSION),
            v => v,
        }
    }
    /// The chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }
    /// The next iteration of the chain.
    pub fn iteration(&self) -> u32 {
        self.chain_key.index()
    }
    /// The signing public key.
    pub fn signing_key(&self) -> &PublicKey {
        self.signing_public.public_key()
    }
    /// True if this is our own chain (we hold the private signing key).
    pub fn has_private_key(&self) -> bool {
        self.signing_private.is_some()
    }
    /// Number of stored skipped message keys.
    pub fn skipped_keys(&self) -> usize {
        self.message_keys.len()
    }

    fn to_proto(&self) -> storage::SenderKeyStateStructure {
        storage::SenderKeyStateStructure {
            chain_id: self.chain_id,
            sender_chain_key: Some(storage::SenderChainKey {
                iteration: self.chain_key.index(),
                seed: self.chain_key.key().expose().to_vec(),
            }),
            sender_signing_key: Some(storage::SenderSigningKey {
                public: self.signing_public.public_key().serialize().to_vec(),
                private: self
                    .signing_private
                    .as_ref()
                    .map(|k| k.private_key().serialize().to_vec())
                    .unwrap_or_default(),
            }),
            sender_message_keys: self
                .message_keys
                .iter()
                .map(|(i, s)| storage::SenderMessageKey {
                    iteration: *i,
                    seed: s.expose().to_vec(),
                })
                .collect(),
            message_version: self.message_version,
        }
    }

    fn from_proto(p: &storage::SenderKeyStateStructure) -> Result<Self> {
        let ck = p
            .sender_chain_key
            .as_ref()
            .ok_or(Error::InvalidRecord("sender key state has no chain key"))?;
        let seed = Secret32::from_slice(&ck.seed)
            .ok_or(Error::InvalidRecord("sender chain key must be 32 bytes"))?;
        let sk = p
            .sender_signing_key
            .as_ref()
            .ok_or(Error::InvalidRecord("sender key state has no signing key"))?;
        let public = PublicKey::deserialize_exact(&sk.public)
            .map_err(|_| Error::InvalidRecord("sender signing key is invalid"))?;
        let private = if sk.private.is_empty() {
            None
        } else {
            let k = PrivateKey::deserialize(&sk.private)
                .map_err(|_| Error::InvalidRecord("sender private signing key is invalid"))?;
            if k.public_key() != public {
                return Err(Error::InvalidRecord(
                    "sender signing key pair does not match",
                ));
            }
            Some(SigningKey::new(k))
        };
        let mut message_keys = VecDeque::with_capacity(p.sender_message_keys.len());
        for mk in &p.sender_message_keys {
            let s = Secret32::from_slice(&mk.seed)
                .ok_or(Error::InvalidRecord("sender message key must be 32 bytes"))?;
            message_keys.push_back((mk.iteration, s));
        }
        Ok(Self {
            message_version: p.message_version,
            chain_id: p.chain_id,
            chain_key: ChainKey::new(seed, ck.iteration),
            signing_public: VerifyingKey::new(public),
            signing_private: private,
            message_keys,
        })
    }
}

impl fmt::Debug for SenderKeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyState")
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain_key.index())
            .field("signing_key", self.signing_public.public_key())
            .field("own", &self.signing_private.is_some())
            .field("skipped_keys", &self.message_keys.len())
            .finish_non_exhaustive()
    }
}

/// The sender-key states of one (sender, distribution): newest first, at most
/// [`MAX_SENDER_KEY_STATES`]. Serializes as libsignal's `SenderKeyRecordStructure`.
#[derive(Clone, Debug, Default)]
pub struct SenderKeyRecord {
    states: VecDeque<SenderKeyState>,
}

impl SenderKeyRecord {
    /// The states, newest first.
    pub fn states(&self) -> impl ExactSizeIterator<Item = &SenderKeyState> {
        self.states.iter()
    }

    /// True without any state.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    fn state_for_chain_id(&self, chain_id: u32) -> Option<&SenderKeyState> {
        self.states.iter().find(|s| s.chain_id == chain_id)
    }

    fn state_for_chain_id_mut(&mut self, chain_id: u32) -> Option<&mut SenderKeyState> {
        self.states.iter_mut().find(|s| s.chain_id == chain_id)
    }

    /// Adds a state as the newest, as libsignal does: a state with the same chain id and
    /// signing key is kept (with its progress) and moved to the front; states with the same
    /// chain id but another key are dropped; the oldest beyond the limit are dropped.
    fn add_state(&mut self, state: SenderKeyState) {
        let existing = self
            .states
            .iter()
            .position(|s| s.chain_id == state.chain_id && s.signing_key() == state.signing_key())
            .and_then(|i| self.states.remove(i));
        self.states.retain(|s| s.chain_id != state.chain_id);
        while self.states.len() >= MAX_SENDER_KEY_STATES {
            self.states.pop_back();
        }
        self.states.push_front(existing.unwrap_or(state));
    }

    /// libsignal's serialization (protobuf `SenderKeyRecordStructure`). Contains secrets.
    pub fn serialize(&self) -> Vec<u8> {
        let p = storage::SenderKeyRecordStructure {
            sender_key_states: self.states.iter().map(SenderKeyState::to_proto).collect(),
        };
        p.encode_to_vec()
    }

    /// Reads libsignal's (or python-axolotl's) serialization.
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let p = storage::SenderKeyRecordStructure::decode(data)
            .map_err(|_| Error::InvalidRecord("SenderKeyRecord protobuf is invalid"))?;
        let states = p
            .sender_key_states
            .iter()
            .map(SenderKeyState::from_proto)
            .collect::<Result<VecDeque<_>>>()?;
        Ok(Self { states })
    }
}

// ---------------------------------------------------------------------------------------
// Operations over a store
// ---------------------------------------------------------------------------------------

fn distribution_from_state(
    key: &DistributionKey,
    state: &SenderKeyState,
) -> Result<SenderKeyDistributionMessage> {
    SenderKeyDistributionMessage::new(
        key.distribution_id(),
        state.chain_id,
        state.chain_key.index(),
        state.chain_key.key().clone(),
        *state.signing_key(),
    )
}

/// Our distribution message for (`sender` = us, `key`): creates a fresh sender key (random
/// 31-bit chain id, random chain key, new signing key pair) if none is stored, otherwise
/// describes the newest state at its current iteration.
pub fn create_distribution<S: ProtocolStore>(
    store: &mut S,
    sender: &Address,
    key: &DistributionKey,
) -> Result<SenderKeyDistributionMessage> {
    let existing = store.read_sender_key(sender, key, |rec| {
        rec.and_then(|r| r.states.front())
            .map(|s| distribution_from_state(key, s))
            .transpose()
    })?;
    if let Some(m) = existing {
        return Ok(m);
    }
    let chain_id = OsRng.next_u32() >> 1;
    let mut seed = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(seed.as_mut());
    let chain_key = ChainKey::new(Secret32(*seed), 0);
    let pair = KeyPair::generate();
    let state = SenderKeyState::new(
        SENDERKEY_MESSAGE_VERSION,
        chain_id,
        chain_key,
        pair.public_key,
        Some(pair.private_key),
    );
    let message = distribution_from_state(key, &state)?;
    store.update_sender_key(sender, key, |rec| rec.add_state(state))?;
    Ok(message)
}

/// Stores the sender key that `sender` distributed. The message's format (and distribution
/// id) must match `key`. Processing the same distribution again keeps the chain's progress.
pub fn process_distribution<S: ProtocolStore>(
    store: &mut S,
    sender: &Address,
    key: &DistributionKey,
    message: &SenderKeyDistributionMessage,
) -> Result<()> {
    key.check_message(message.distribution_id)?;
    let state = SenderKeyState::new(
        message.message_version(),
        message.chain_id,
        ChainKey::new(message.chain_key.clone(), message.iteration),
        message.signing_key,
        None,
    );
    store.update_sender_key(sender, key, |rec| rec.add_state(state))
}

/// Encrypts with our newest sender key for (`sender` = us, `key`) and signs the message.
pub fn encrypt<S: ProtocolStore>(
    store: &mut S,
    sender: &Address,
    key: &DistributionKey,
    plaintext: &[u8],
) -> Result<SenderKeyMessage> {
    let (message, next) = store.read_sender_key(sender, key, |rec| {
        let state = rec
            .and_then(|r| r.states.front())
            .ok_or(Error::NoSenderKey("no sender key for this distribution"))?;
        let signer = state.signing_private.as_ref().ok_or(Error::NoSenderKey(
            "the sender key has no private signing key",
        ))?;
        let iteration = state.chain_key.index();
        if iteration == u32::MAX {
            return Err(Error::NoSenderKey("the sender chain is exhausted"));
        }
        let (seed, next) = state.chain_key.step();
        let keys = SenderMessageKeys::derive(&seed)?;
        let ciphertext = crypto::aes256_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
        let message = SenderKeyMessage::new_signed(
            key.distribution_id(),
            state.chain_id,
            iteration,
            ciphertext,
            signer,
        )?;
        Ok((message, next))
    })?;
    let chain_id = message.chain_id;
    store.update_sender_key(sender, key, |rec| {
        if let Some(state) = rec.states.front_mut().filter(|s| s.chain_id == chain_id) {
            state.chain_key = next;
        }
    })?;
    Ok(message)
}

/// How a decryption changes its state.
enum KeyUse {
    /// A stored skipped key (at this position) was used.
    Stored(usize),
    /// The chain advanced; these skipped keys are kept.
    Advance {
        skipped: Vec<(u32, Secret32)>,
        next: ChainKey,
    },
}

fn plan_key(state: &SenderKeyState, iteration: u32) -> Result<(Secret32, KeyUse)> {
    let current = state.chain_key.index();
    if iteration < current {
        let pos = state
            .message_keys
            .iter()
            .position(|(i, _)| *i == iteration)
            .ok_or(Error::DuplicateMessage {
                index: current,
                counter: iteration,
            })?;
        let seed = state.message_keys[pos].1.clone();
        return Ok((seed, KeyUse::Stored(pos)));
    }
    let jump = iteration - current;
    if jump > MAX_FORWARD_JUMPS {
        return Err(Error::MessageGapTooLarge {
            jump,
            limit: MAX_FORWARD_JUMPS,
        });
    }
    if iteration == u32::MAX {
        return Err(Error::InvalidMessage("sender chain is too long"));
    }
    // Only the newest MAX_MESSAGE_KEYS skipped keys would survive, so only those are kept.
    let keep_from = iteration.saturating_sub(MAX_MESSAGE_KEYS as u32);
    let mut skipped = Vec::with_capacity((iteration - current.max(keep_from)) as usize);
    let mut ck = state.chain_key.clone();
    while ck.index() < iteration {
        let (seed, next) = ck.step();
        if ck.index() >= keep_from {
            skipped.push((ck.index(), seed));
        }
        ck = next;
    }
    let (seed, next) = ck.step();
    Ok((seed, KeyUse::Advance { skipped, next }))
}

fn apply_key_use(state: &mut SenderKeyState, usage: KeyUse) {
    match usage {
        KeyUse::Stored(pos) => {
            state.message_keys.remove(pos);
        }
        KeyUse::Advance { skipped, next } => {
            state.message_keys.extend(skipped);
            while state.message_keys.len() > MAX_MESSAGE_KEYS {
                state.message_keys.pop_front();
            }
            state.chain_key = next;
        }
    }
}

/// Decrypts a group message from `sender`: finds the state by chain id, checks the
/// signature, then derives (or takes the stored) message key. Nothing is stored unless the
/// message decrypts.
pub fn decrypt<S: ProtocolStore>(
    store: &mut S,
    sender: &Address,
    key: &DistributionKey,
    message: &SenderKeyMessage,
) -> Result<Vec<u8>> {
    key.check_message(message.distribution_id)?;
    let (plaintext, usage) = store.read_sender_key(sender, key, |rec| {
        let rec = rec.ok_or(Error::NoSenderKey(
            "no sender key for this sender and distribution",
        ))?;
        let state = rec
            .state_for_chain_id(message.chain_id)
            .ok_or(Error::NoSenderKey("no sender key state for this chain id"))?;
        if state.message_version() != u32::from(message.message_version()) {
            return Err(Error::InvalidMessage(
                "message version does not match the sender key",
            ));
        }
        if !message.verify_signature(&state.signing_public) {
            return Err(Error::InvalidSignature("sender key message signature"));
        }
        let (seed, usage) = plan_key(state, message.iteration)?;
        let keys = SenderMessageKeys::derive(&seed)?;
        let plaintext = crypto::aes256_cbc_decrypt(&keys.cipher_key, &keys.iv, &message.ciphertext)
            .map_err(|_| Error::InvalidMessage("decryption failed"))?;
        Ok((plaintext, usage))
    })?;
    let chain_id = message.chain_id;
    store.update_sender_key(sender, key, |rec| {
        if let Some(state) = rec.state_for_chain_id_mut(chain_id) {
            apply_key_use(state, usage);
        }
    })?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prekey::IdentityKeyPair;
    use crate::store::InMemoryStore;

    fn store() -> InMemoryStore {
        InMemoryStore::new(IdentityKeyPair::generate(), 1)
    }

    fn keys() -> [DistributionKey; 2] {
        [
            DistributionKey::Uuid([7u8; 16]),
            DistributionKey::GroupId("123@g.us".into()),
        ]
    }

    fn setup(key: &DistributionKey) -> (InMemoryStore, InMemoryStore, Address) {
        let alice = Address::new("alice", 1);
        let mut a = store();
        let mut b = store();
        let skdm = create_distribution(&mut a, &alice, key).unwrap();
        let reparsed = if key.distribution_id().is_some() {
            SenderKeyDistributionMessage::deserialize(skdm.serialized()).unwrap()
        } else {
            SenderKeyDistributionMessage::deserialize_legacy(skdm.serialized()).unwrap()
        };
        process_distribution(&mut b, &alice, key, &reparsed).unwrap();
        (a, b, alice)
    }

    fn record_bytes(s: &InMemoryStore, who: &Address, key: &DistributionKey) -> Vec<u8> {
        s.sender_keys
            .get(&(who.clone(), key.clone()))
            .map(SenderKeyRecord::serialize)
            .unwrap_or_default()
    }

    #[test]
    fn roundtrip_out_of_order_and_duplicates() {
        for key in keys() {
            let (mut a, mut b, alice) = setup(&key);
            let msgs: Vec<_> = (0..10u8)
                .map(|i| encrypt(&mut a, &alice, &key, &[i; 3]).unwrap())
                .collect();
            for i in [3usize, 0, 9, 1, 2, 8, 4, 5, 7, 6] {
                let parsed = if key.distribution_id().is_some() {
                    SenderKeyMessage::deserialize(msgs[i].serialized()).unwrap()
                } else {
                    SenderKeyMessage::deserialize_legacy(msgs[i].serialized()).unwrap()
                };
                assert_eq!(parsed.iteration(), i as u32);
                assert_eq!(
                    decrypt(&mut b, &alice, &key, &parsed).unwrap(),
                    vec![i as u8; 3]
                );
            }
            let before = record_bytes(&b, &alice, &key);
            assert!(matches!(
                decrypt(&mut b, &alice, &key, &msgs[4]),
                Err(Error::DuplicateMessage { .. })
            ));
            assert_eq!(record_bytes(&b, &alice, &key), before);
        }
    }

    #[test]
    fn bad_signature_never_advances() {
        for key in keys() {
            let (mut a, mut b, alice) = setup(&key);
            let m = encrypt(&mut a, &alice, &key, b"hi").unwrap();
            let mut forged = m.serialized().to_vec();
            let n = forged.len();
            forged[n - 10] ^= 1;
            let forged = if key.distribution_id().is_some() {
                SenderKeyMessage::deserialize(&forged).unwrap()
            } else {
                SenderKeyMessage::deserialize_legacy(&forged).unwrap()
            };
            let before = record_bytes(&b, &alice, &key);
            assert!(matches!(
                decrypt(&mut b, &alice, &key, &forged),
                Err(Error::InvalidSignature(_))
            ));
            assert_eq!(record_bytes(&b, &alice, &key), before);
            assert_eq!(decrypt(&mut b, &alice, &key, &m).unwrap(), b"hi");
        }
    }

    #[test]
    fn limits() {
        let key = DistributionKey::Uuid([1u8; 16]);
        let (mut a, mut b, alice) = setup(&key);
        let first = encrypt(&mut a, &alice, &key, b"first").unwrap();
        for _ in 0..2500 {
            encrypt(&mut a, &alice, &key, b"x").unwrap();
        }
        let last = encrypt(&mut a, &alice, &key, b"last").unwrap();
        assert_eq!(decrypt(&mut b, &alice, &key, &last).unwrap(), b"last");
        let rec = b.sender_keys.get(&(alice.clone(), key.clone())).unwrap();
        assert_eq!(
            rec.states().next().unwrap().skipped_keys(),
            MAX_MESSAGE_KEYS
        );
        assert!(matches!(
            decrypt(&mut b, &alice, &key, &first),
            Err(Error::DuplicateMessage { .. })
        ));
        // Jump exactly MAX_FORWARD_JUMPS ahead: fine; one more: refused.
        let mut c = store();
        let skdm = create_distribution(&mut a, &alice, &key).unwrap();
        process_distribution(&mut c, &alice, &key, &skdm).unwrap();
        let mut msgs = Vec::new();
        for _ in 0..=(MAX_FORWARD_JUMPS + 1) {
            msgs.push(encrypt(&mut a, &alice, &key, b"j").unwrap());
        }
        let before = record_bytes(&c, &alice, &key);
        assert!(matches!(
            decrypt(&mut c, &alice, &key, &msgs[MAX_FORWARD_JUMPS as usize + 1]),
            Err(Error::MessageGapTooLarge { .. })
        ));
        assert_eq!(record_bytes(&c, &alice, &key), before);
        assert!(decrypt(&mut c, &alice, &key, &msgs[MAX_FORWARD_JUMPS as usize]).is_ok());
    }

    #[test]
    fn record_keeps_five_states_and_roundtrips() {
        let key = DistributionKey::Uuid([2u8; 16]);
        let alice = Address::new("alice", 1);
        let mut b = store();
        let mut chain_ids = Vec::new();
        for _ in 0..7 {
            let mut a = store();
            let skdm = create_distribution(&mut a, &alice, &key).unwrap();
            chain_ids.push(skdm.chain_id());
            process_distribution(&mut b, &alice, &key, &skdm).unwrap();
            // Processing it twice keeps one state.
            process_distribution(&mut b, &alice, &key, &skdm).unwrap();
        }
        let rec = b.sender_keys.get(&(alice.clone(), key.clone())).unwrap();
        let ids: Vec<u32> = rec.states().map(SenderKeyState::chain_id).collect();
        let mut expected: Vec<u32> = chain_ids.iter().rev().take(5).copied().collect();
        expected.dedup();
        assert_eq!(ids, expected);
        let bytes = rec.serialize();
        assert_eq!(
            SenderKeyRecord::deserialize(&bytes).unwrap().serialize(),
            bytes
        );
        assert!(SenderKeyRecord::deserialize(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn formats_do_not_mix() {
        let [current, legacy] = keys();
        let (mut a, _, alice) = setup(&current);
        let skdm = create_distribution(&mut a, &alice, &current).unwrap();
        let mut c = store();
        assert!(process_distribution(&mut c, &alice, &legacy, &skdm).is_err());
        assert!(
            process_distribution(&mut c, &alice, &DistributionKey::Uuid([9; 16]), &skdm).is_err()
        );
        assert!(c.sender_keys.is_empty());
        let m = encrypt(&mut a, &alice, &current, b"x").unwrap();
        assert!(SenderKeyMessage::deserialize_legacy(m.serialized()).is_err());
        assert!(matches!(
            decrypt(&mut c, &alice, &current, &m),
            Err(Error::NoSenderKey(_))
        ));
        assert!(format!("{skdm:?}").contains("chain_id"));
        assert!(!format!("{skdm:?}").contains("chain_key"));
    }
}
