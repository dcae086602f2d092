//! Session setup (X3DH v3, PQXDH v4) and the Double Ratchet's encrypt / decrypt over a store.
//!
//! Every operation first computes its whole outcome from the stored state without changing
//! it, and only then commits. A message that fails (bad MAC, duplicate, malformed, untrusted
//! identity, missing prekey) leaves every stored state exactly as it was.

use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::OsRng;
use zeroize::Zeroizing;

use crate::address::Address;
use crate::crypto;
use crate::curve::{KeyPair, PublicKey};
use crate::error::{Error, Result};
use crate::message::{
    addresses_field, version_byte_for, CiphertextMessage, PreKeyParts, PreKeySignalMessage,
    SignalMessage, SignalMessageParts,
};
use crate::prekey::PreKeyBundle;
use crate::ratchet::{
    derive_initial_keys, ChainKey, MessageKeys, RootKey, Secret32, MAX_FORWARD_JUMPS,
    MAX_MESSAGE_KEYS,
};
use crate::spqr;
use crate::state::{
    PendingPreKey, ReceiverChain, SenderChain, SessionRecord, SessionState, StoredMessageKey,
};
use crate::store::ProtocolStore;

/// Whether new version-4 sessions require the SPQR triple ratchet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PqRatchetPolicy {
    /// New v4 sessions require SPQR v1 (libsignal 0.92 and later).
    #[default]
    Required,
    /// Offer SPQR but accept a peer without it (libsignal 0.83 to 0.91).
    Preferred,
}

/// Per-call options of the session functions.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// Our own address. With it, PreKey messages between two ServiceId addresses carry
    /// SignalMessage field 6 (both addresses, MACed), and a received field 6 is checked in
    /// full; without it only the sender half of a received field 6 is checked.
    pub local_address: Option<Address>,
    /// SPQR policy for new version-4 sessions.
    pub pq_ratchet: PqRatchetPolicy,
}

/// Checks a received SignalMessage field 6 against the addresses we expect.
fn addresses_match(field: &[u8], remote: &Address, local: Option<&Address>) -> bool {
    if field.len() != 36 {
        return false;
    }
    let (sender, recipient) = field.split_at(18);
    let Some(remote_id) = remote.service_id_binary() else {
        return false;
    };
    let sender_ok = sender[..17] == remote_id && u32::from(sender[17]) == remote.device_id;
    let recipient_ok = match local {
        None => true,
        Some(l) => match l.service_id_binary() {
            Some(id) => recipient[..17] == id && u32::from(recipient[17]) == l.device_id,
            None => false,
        },
    };
    sender_ok && recipient_ok
}

/// The SPQR state of a new session: V1 (with the policy's minimum version) for version 4,
/// none for version 3.
fn initial_pq_state(
    version: u8,
    pq_auth_key: Option<&Secret32>,
    direction: spqr::Direction,
    policy: PqRatchetPolicy,
) -> Result<spqr::State> {
    match (version, pq_auth_key) {
        (4, Some(auth_key)) => spqr::State::initial(&spqr::Params {
            auth_key: *auth_key.expose(),
            direction,
            min_version: match policy {
                PqRatchetPolicy::Required => spqr::Version::V1,
                PqRatchetPolicy::Preferred => spqr::Version::V0,
            },
            max_jump: MAX_FORWARD_JUMPS,
            max_ooo_keys: MAX_MESSAGE_KEYS as u32,
        }),
        _ => Ok(spqr::State::v0()),
    }
}

/// An unacknowledged session older than this (seconds) can no longer send.
pub const MAX_UNACKNOWLEDGED_SESSION_AGE_SECS: u64 = 30 * 24 * 60 * 60;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn untrusted(key: &PublicKey) -> Error {
    Error::UntrustedIdentity {
        identity: key.serialize().to_vec(),
    }
}

/// Starts a session as the initiator from the peer's bundle (X3DH without a Kyber prekey,
/// PQXDH with one). Verifies both prekey signatures before anything else. A new session
/// archives the current one.
pub fn process_prekey_bundle<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    bundle: &PreKeyBundle,
) -> Result<()> {
    process_prekey_bundle_with(store, remote, bundle, &SessionOptions::default())
}

/// [`process_prekey_bundle`] with options.
pub fn process_prekey_bundle_with<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    bundle: &PreKeyBundle,
    options: &SessionOptions,
) -> Result<()> {
    bundle.verify_signatures()?;
    if !store.is_trusted_identity(remote, &bundle.identity_key)? {
        return Err(untrusted(&bundle.identity_key));
    }
    let identity = store.identity_key_pair()?;
    let base = KeyPair::generate();
    let version: u8 = if bundle.kyber.is_some() { 4 } else { 3 };

    let mut secrets = Zeroizing::new(Vec::with_capacity(32 * 6));
    secrets.extend_from_slice(&[0xffu8; 32]);
    secrets.extend_from_slice(identity.private_key.agree(&bundle.signed_prekey)?.as_ref());
    secrets.extend_from_slice(base.private_key.agree(&bundle.identity_key)?.as_ref());
    secrets.extend_from_slice(base.private_key.agree(&bundle.signed_prekey)?.as_ref());
    if let Some((_, opk)) = &bundle.prekey {
        secrets.extend_from_slice(base.private_key.agree(opk)?.as_ref());
    }
    let kyber = match &bundle.kyber {
        Some(k) => {
            let (ss, ct) = k.public_key.encapsulate()?;
            secrets.extend_from_slice(ss.as_ref());
            Some((k.id, ct))
        }
        None => None,
    };
    let derived = derive_initial_keys(&secrets, version == 4)?;
    let pq_ratchet = initial_pq_state(
        version,
        derived.pq_auth_key.as_ref(),
        spqr::Direction::A2B,
        options.pq_ratchet,
    )?;

    let sending = KeyPair::generate();
    let (root, send_ck) = derived
        .root_key
        .create_chain(&bundle.signed_prekey, &sending.private_key)?;
    let state = SessionState {
        version,
        local_identity: identity.public_key,
        remote_identity: bundle.identity_key,
        root_key: root,
        previous_counter: 0,
        sender_chain: Some(SenderChain {
            ratchet: sending,
            chain_key: send_ck,
        }),
        receiver_chains: vec![ReceiverChain {
            ratchet_key: bundle.signed_prekey,
            chain_key: derived.chain_key,
            message_keys: Default::default(),
        }],
        pending_prekey: Some(PendingPreKey {
            pre_key_id: bundle.prekey.as_ref().map(|(id, _)| *id),
            signed_pre_key_id: bundle.signed_prekey_id,
            base_key: base.public_key,
            timestamp: now_secs(),
            kyber,
        }),
        remote_registration_id: bundle.registration_id,
        local_registration_id: store.local_registration_id()?,
        alice_base_key: Some(base.public_key),
        pq_ratchet,
    };
    store.save_identity(remote, &bundle.identity_key)?;
    store.update_session(remote, |rec| rec.promote_state(state))
}

/// Encrypts with the current session: a PreKeySignalMessage until the session is
/// acknowledged, a SignalMessage after.
pub fn encrypt<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    plaintext: &[u8],
) -> Result<CiphertextMessage> {
    encrypt_with(store, remote, plaintext, &SessionOptions::default())
}

/// [`encrypt`] with options.
pub fn encrypt_with<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    plaintext: &[u8],
    options: &SessionOptions,
) -> Result<CiphertextMessage> {
    let (message, next_chain_key, next_pq, remote_identity) =
        store.read_session(remote, |rec| {
            let state = rec
                .and_then(|r| r.current.as_ref())
                .ok_or(Error::NoSession("no session with this address"))?;
            let addresses = match (&state.pending_prekey, &options.local_address) {
                (Some(_), Some(local)) => addresses_field(local, remote),
                _ => None,
            };
            encrypt_with_state(state, plaintext, addresses)
        })?;
    if !store.is_trusted_identity(remote, &remote_identity)? {
        return Err(untrusted(&remote_identity));
    }
    store.update_session(remote, |rec| {
        if let Some(state) = rec.current.as_mut() {
            if let Some(chain) = state.sender_chain.as_mut() {
                chain.chain_key = next_chain_key;
            }
            state.pq_ratchet = next_pq;
        }
    })?;
    Ok(message)
}

/// A message, the sender chain key and SPQR state after it, and the remote identity.
type Encrypted = (CiphertextMessage, ChainKey, spqr::State, PublicKey);

fn encrypt_with_state(
    state: &SessionState,
    plaintext: &[u8],
    addresses: Option<Vec<u8>>,
) -> Result<Encrypted> {
    let chain = state
        .sender_chain
        .as_ref()
        .ok_or(Error::NoSession("session has no sending chain"))?;
    if let Some(p) = &state.pending_prekey {
        if now_secs().saturating_sub(p.timestamp) > MAX_UNACKNOWLEDGED_SESSION_AGE_SECS {
            return Err(Error::NoSession("unacknowledged session is too old"));
        }
    }
    let counter = chain.chain_key.index();
    if counter == u32::MAX {
        return Err(Error::NoSession("sending chain exhausted"));
    }
    // SPQR first: its per-message key salts the message keys (the "triple ratchet").
    let (next_pq, pq_message, pq_key) = state.pq_ratchet.send(&mut OsRng)?;
    let (seed, next) = chain.chain_key.step();
    let keys = MessageKeys::derive(&seed, counter, pq_key.as_ref())?;
    let ciphertext = crypto::aes256_cbc_encrypt(keys.cipher_key(), keys.iv(), plaintext);
    let version_byte = version_byte_for(state.version);
    let signal = SignalMessage::new(
        SignalMessageParts {
            version_byte,
            ratchet_key: &chain.ratchet.public_key,
            counter,
            previous_counter: state.previous_counter,
            ciphertext,
            pq_ratchet: pq_message,
            addresses,
        },
        keys.mac_key(),
        &state.local_identity,
        &state.remote_identity,
    )?;
    let message = match &state.pending_prekey {
        None => CiphertextMessage::Whisper(signal),
        Some(p) => {
            let (kyber_pre_key_id, kyber_ciphertext) = match &p.kyber {
                Some((id, ct)) => (Some(*id), Some(ct.clone())),
                None => (None, None),
            };
            CiphertextMessage::PreKey(PreKeySignalMessage::new(
                PreKeyParts {
                    version_byte,
                    registration_id: state.local_registration_id,
                    pre_key_id: p.pre_key_id,
                    signed_pre_key_id: p.signed_pre_key_id,
                    kyber_pre_key_id,
                    kyber_ciphertext,
                    base_key: p.base_key,
                    identity_key: state.local_identity,
                },
                signal,
            )?)
        }
    };
    Ok((message, next, next_pq, state.remote_identity))
}

/// The two ends of a message being decrypted (for the field-6 check).
struct Who<'a> {
    remote: &'a Address,
    local: Option<&'a Address>,
}

/// What a successful decryption changes in its session.
#[derive(Debug)]
struct Update {
    chain: ChainUpdate,
    pq_ratchet: spqr::State,
}

/// What a successful decryption changes in the Double Ratchet.
#[derive(Debug)]
enum ChainUpdate {
    /// The message was on a known receiving chain.
    Existing {
        chain: usize,
        used_key: Option<usize>,
        skipped: Vec<(u32, StoredMessageKey)>,
        next_chain_key: Option<ChainKey>,
    },
    /// The message started a new receiving chain (a DH ratchet step).
    New {
        root_key: RootKey,
        receiver: ReceiverChain,
        sender: SenderChain,
        previous_counter: u32,
    },
}

/// Skipped keys, the message's key seed and the next chain key.
type Advanced = (Vec<(u32, StoredMessageKey)>, Secret32, ChainKey);

/// Steps `chain_key` up to `counter`, returning the skipped keys, the message's key seed and
/// the next chain key.
fn advance_to(chain_key: &ChainKey, counter: u32) -> Result<Advanced> {
    let jump = counter - chain_key.index();
    if jump > MAX_FORWARD_JUMPS {
        return Err(Error::MessageGapTooLarge {
            jump,
            limit: MAX_FORWARD_JUMPS,
        });
    }
    let mut skipped = Vec::with_capacity(jump as usize);
    let mut ck = chain_key.clone();
    while ck.index() < counter {
        let (seed, next) = ck.step();
        skipped.push((ck.index(), StoredMessageKey::Seed(seed)));
        ck = next;
    }
    let (seed, next) = ck.step();
    Ok((skipped, seed, next))
}

/// Where a message's keys come from: a fresh seed, or a key stored for a skipped message.
enum KeySource<'a> {
    Seed(Secret32),
    Stored(&'a StoredMessageKey),
}

/// Computes the plaintext and the state change of decrypting `msg` with `state`, without
/// changing anything.
fn plan_decrypt(
    state: &SessionState,
    msg: &SignalMessage,
    who: &Who<'_>,
) -> Result<(Vec<u8>, Update)> {
    if msg.message_version() != state.version {
        return Err(Error::InvalidMessage(
            "message version does not match the session",
        ));
    }
    let counter = msg.counter();
    if counter == u32::MAX {
        return Err(Error::InvalidMessage("counter out of range"));
    }
    let their = msg.ratchet_key();
    let (source, update) = match state.receiver_chain_index(their) {
        Some(i) => {
            let chain = &state.receiver_chains[i];
            let index = chain.chain_key.index();
            if counter < index {
                let pos = chain
                    .message_keys
                    .iter()
                    .position(|(c, _)| *c == counter)
                    .ok_or(Error::DuplicateMessage { index, counter })?;
                (
                    KeySource::Stored(&chain.message_keys[pos].1),
                    ChainUpdate::Existing {
                        chain: i,
                        used_key: Some(pos),
                        skipped: Vec::new(),
                        next_chain_key: None,
                    },
                )
            } else {
                let (skipped, seed, next) = advance_to(&chain.chain_key, counter)?;
                (
                    KeySource::Seed(seed),
                    ChainUpdate::Existing {
                        chain: i,
                        used_key: None,
                        skipped,
                        next_chain_key: Some(next),
                    },
                )
            }
        }
        None => {
            let sender = state
                .sender_chain
                .as_ref()
                .ok_or(Error::InvalidMessage("session has no sending chain"))?;
            if counter > MAX_FORWARD_JUMPS {
                return Err(Error::MessageGapTooLarge {
                    jump: counter,
                    limit: MAX_FORWARD_JUMPS,
                });
            }
            let (root1, recv_ck) = state
                .root_key
                .create_chain(their, &sender.ratchet.private_key)?;
            let (skipped, seed, next) = advance_to(&recv_ck, counter)?;
            let ratchet = KeyPair::generate();
            let (root2, send_ck) = root1.create_chain(their, &ratchet.private_key)?;
            let mut receiver = ReceiverChain {
                ratchet_key: *their,
                chain_key: next,
                message_keys: Default::default(),
            };
            receiver.add_skipped(skipped);
            (
                KeySource::Seed(seed),
                ChainUpdate::New {
                    root_key: root2,
                    receiver,
                    sender: SenderChain {
                        ratchet,
                        chain_key: send_ck,
                    },
                    previous_counter: sender.chain_key.index().saturating_sub(1),
                },
            )
        }
    };
    // Duplicates were rejected above, before SPQR runs (as libsignal does).
    let (pq_ratchet, pq_key) = state.pq_ratchet.recv(msg.pq_ratchet())?;
    let keys = match source {
        KeySource::Seed(seed) => MessageKeys::derive(&seed, counter, pq_key.as_ref())?,
        KeySource::Stored(stored) => stored.keys(counter, pq_key.as_ref())?,
    };
    if !msg.verify_mac(
        &state.remote_identity,
        &state.local_identity,
        keys.mac_key(),
    ) {
        return Err(Error::InvalidMessage("decryption failed"));
    }
    // Field 6 is inside the MACed protobuf; a mismatch fails like a bad MAC.
    if let Some(field) = msg.addresses() {
        if !addresses_match(field, who.remote, who.local) {
            return Err(Error::InvalidMessage("decryption failed"));
        }
    }
    let plaintext = crypto::aes256_cbc_decrypt(keys.cipher_key(), keys.iv(), msg.ciphertext())
        .map_err(|_| Error::InvalidMessage("decryption failed"))?;
    Ok((
        plaintext,
        Update {
            chain: update,
            pq_ratchet,
        },
    ))
}

fn apply_update(state: &mut SessionState, update: Update) {
    state.pq_ratchet = update.pq_ratchet;
    match update.chain {
        ChainUpdate::Existing {
            chain,
            used_key,
            skipped,
            next_chain_key,
        } => {
            if let Some(c) = state.receiver_chains.get_mut(chain) {
                if let Some(pos) = used_key {
                    c.message_keys.remove(pos);
                }
                c.add_skipped(skipped);
                if let Some(next) = next_chain_key {
                    c.chain_key = next;
                }
            }
        }
        ChainUpdate::New {
            root_key,
            receiver,
            sender,
            previous_counter,
        } => {
            state.root_key = root_key;
            state.previous_counter = previous_counter;
            state.add_receiver_chain(receiver);
            state.sender_chain = Some(sender);
        }
    }
    // Any message from the peer acknowledges the session.
    state.pending_prekey = None;
}

/// Decrypts a SignalMessage: tries the current session, then the archived ones (a success
/// in an archived session makes it current again).
pub fn decrypt_signal_message<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    msg: &SignalMessage,
) -> Result<Vec<u8>> {
    decrypt_signal_message_with(store, remote, msg, &SessionOptions::default())
}

/// [`decrypt_signal_message`] with options.
pub fn decrypt_signal_message_with<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    msg: &SignalMessage,
    options: &SessionOptions,
) -> Result<Vec<u8>> {
    let who = Who {
        remote,
        local: options.local_address.as_ref(),
    };
    let (plaintext, which, update, remote_identity) = store.read_session(remote, |rec| {
        let rec = rec.ok_or(Error::NoSession("no session with this address"))?;
        if rec.current.is_none() && rec.previous.is_empty() {
            return Err(Error::NoSession("no session with this address"));
        }
        let mut gap = None;
        for (i, state) in rec.sessions().enumerate() {
            match plan_decrypt(state, msg, &who) {
                Ok((pt, upd)) => return Ok((pt, i, upd, state.remote_identity)),
                Err(e @ Error::DuplicateMessage { .. }) => return Err(e),
                Err(e @ Error::MessageGapTooLarge { .. }) => gap = gap.or(Some(e)),
                Err(e @ Error::InvalidMessage(what)) if spqr::errors::is_window(what) => {
                    gap = gap.or(Some(e));
                }
                Err(_) => continue,
            }
        }
        // Authentication failures stay uniform; a message outside a window (too far ahead, or
        // too old for SPQR's kept keys) is reported as such.
        Err(gap.unwrap_or(Error::InvalidMessage("decryption failed")))
    })?;
    if !store.is_trusted_identity(remote, &remote_identity)? {
        return Err(untrusted(&remote_identity));
    }
    let has_current =
        store.read_session(remote, |rec| Ok(rec.is_some_and(|r| r.current.is_some())))?;
    store.update_session(remote, |rec| commit(rec, which, has_current, update))?;
    Ok(plaintext)
}

/// Applies `update` to session `which` (0-based over current-then-archived) and makes it
/// current.
fn commit(rec: &mut SessionRecord, which: usize, has_current: bool, update: Update) {
    let archived_index = if has_current {
        match which.checked_sub(1) {
            None => {
                if let Some(cur) = rec.current.as_mut() {
                    apply_update(cur, update);
                }
                return;
            }
            Some(i) => i,
        }
    } else {
        which
    };
    if let Some(state) = rec.previous.get_mut(archived_index) {
        apply_update(state, update);
        rec.promote_old_session(archived_index);
    }
}

/// Decrypts a PreKeySignalMessage: builds the responder's session (X3DH or PQXDH) unless one
/// with the same base key exists, then decrypts the inner message with it. The session, the
/// identity and the prekey removals are committed only if the inner message decrypts.
pub fn decrypt_prekey_message<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    msg: &PreKeySignalMessage,
) -> Result<Vec<u8>> {
    decrypt_prekey_message_with(store, remote, msg, &SessionOptions::default())
}

/// [`decrypt_prekey_message`] with options.
pub fn decrypt_prekey_message_with<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    msg: &PreKeySignalMessage,
    options: &SessionOptions,
) -> Result<Vec<u8>> {
    let who = Who {
        remote,
        local: options.local_address.as_ref(),
    };
    let version = msg.message_version();
    if !store.is_trusted_identity(remote, msg.identity_key())? {
        return Err(untrusted(msg.identity_key()));
    }
    let existing = store.read_session(remote, |rec| {
        let Some(rec) = rec else { return Ok(None) };
        let Some(i) = rec.find_session_with_base_key(version, msg.base_key()) else {
            return Ok(None);
        };
        let state = rec
            .sessions()
            .nth(i)
            .ok_or(Error::InvalidMessage("session vanished"))?;
        if state.remote_identity != *msg.identity_key() {
            return Err(Error::InvalidMessage(
                "identity differs from the matching session",
            ));
        }
        let (pt, upd) = plan_decrypt(state, msg.message(), &who)?;
        Ok(Some((pt, i, upd, rec.current.is_some())))
    })?;
    if let Some((plaintext, which, update, has_current)) = existing {
        store.update_session(remote, |rec| commit(rec, which, has_current, update))?;
        return Ok(plaintext);
    }

    let mut state = responder_state(store, msg, options.pq_ratchet)?;
    let (plaintext, update) = plan_decrypt(&state, msg.message(), &who)?;
    apply_update(&mut state, update);

    // Without a one-time EC prekey nothing else stops a replay once the session is gone.
    if msg.pre_key_id().is_none() {
        store.record_base_key(msg.signed_pre_key_id(), msg.base_key())?;
    }
    store.save_identity(remote, msg.identity_key())?;
    store.update_session(remote, |rec| rec.promote_state(state))?;
    if let Some(id) = msg.pre_key_id() {
        store.remove_prekey(id)?;
    }
    if let Some(id) = msg.kyber_pre_key_id() {
        store.mark_kyber_prekey_used(id, msg.signed_pre_key_id(), msg.base_key())?;
    }
    Ok(plaintext)
}

/// The responder's (Bob's) new session from a PreKeySignalMessage.
fn responder_state<S: ProtocolStore>(
    store: &S,
    msg: &PreKeySignalMessage,
    policy: PqRatchetPolicy,
) -> Result<SessionState> {
    let version = msg.message_version();
    let identity = store.identity_key_pair()?;
    let signed =
        store
            .load_signed_prekey(msg.signed_pre_key_id())?
            .ok_or(Error::InvalidPreKeyId {
                kind: "signed",
                id: msg.signed_pre_key_id(),
            })?;
    let one_time = match msg.pre_key_id() {
        None => None,
        Some(id) => Some(store.load_prekey(id)?.ok_or(Error::InvalidPreKeyId {
            kind: "one-time",
            id,
        })?),
    };
    let kyber_secret = match (version, msg.kyber_pre_key_id(), msg.kyber_ciphertext()) {
        (4, Some(id), Some(ct)) => {
            let rec = store
                .load_kyber_prekey(id)?
                .ok_or(Error::InvalidPreKeyId { kind: "kyber", id })?;
            Some(rec.key_pair.secret_key.decapsulate(ct)?)
        }
        (4, _, _) => return Err(Error::InvalidMessage("Kyber prekey is missing")),
        _ => None,
    };
    let base = msg.base_key();
    if !base.is_canonical() {
        return Err(Error::InvalidMessage("base key is not canonical"));
    }
    let mut secrets = Zeroizing::new(Vec::with_capacity(32 * 6));
    secrets.extend_from_slice(&[0xffu8; 32]);
    secrets.extend_from_slice(
        signed
            .key_pair
            .private_key
            .agree(msg.identity_key())?
            .as_ref(),
    );
    secrets.extend_from_slice(identity.private_key.agree(base)?.as_ref());
    secrets.extend_from_slice(signed.key_pair.private_key.agree(base)?.as_ref());
    if let Some(otk) = &one_time {
        secrets.extend_from_slice(otk.key_pair.private_key.agree(base)?.as_ref());
    }
    if let Some(ss) = &kyber_secret {
        secrets.extend_from_slice(ss.as_ref());
    }
    let derived = derive_initial_keys(&secrets, version == 4)?;
    let pq_ratchet = initial_pq_state(
        version,
        derived.pq_auth_key.as_ref(),
        spqr::Direction::B2A,
        policy,
    )?;
    Ok(SessionState {
        version,
        local_identity: identity.public_key,
        remote_identity: *msg.identity_key(),
        root_key: derived.root_key,
        previous_counter: 0,
        sender_chain: Some(SenderChain {
            ratchet: signed.key_pair.clone(),
            chain_key: derived.chain_key,
        }),
        receiver_chains: Vec::new(),
        pending_prekey: None,
        remote_registration_id: msg.registration_id(),
        local_registration_id: store.local_registration_id()?,
        alice_base_key: Some(*base),
        pq_ratchet,
    })
}

/// Decrypts either kind of message.
pub fn decrypt<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    msg: &CiphertextMessage,
) -> Result<Vec<u8>> {
    decrypt_with(store, remote, msg, &SessionOptions::default())
}

/// [`decrypt`] with options.
pub fn decrypt_with<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    msg: &CiphertextMessage,
    options: &SessionOptions,
) -> Result<Vec<u8>> {
    match msg {
        CiphertextMessage::Whisper(m) => decrypt_signal_message_with(store, remote, m, options),
        CiphertextMessage::PreKey(m) => decrypt_prekey_message_with(store, remote, m, options),
    }
}
