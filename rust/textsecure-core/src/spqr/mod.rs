//! SPQR v1: the sparse post-quantum ratchet ("ML-KEM Braid" plus its symmetric chain) that
//! libsignal ≥ 0.92 requires in every session (SignalMessage field 5, SessionStructure field 15).
//!
//! Written from `shared/spqr-notes.md` and Signal's public ML-KEM Braid specification; wire and
//! state formats are byte-compatible with libsignal 0.103 (checked against a recorded trace).
//!
//! # API
//! ```ignore
//! let st = State::initial(&Params { auth_key, direction: Direction::A2B, min_version: Version::V1,
//!                                   max_jump: 25_000, max_ooo_keys: 2_000 })?;
//! let (st2, field5, salt) = st.send(&mut rng)?;   // pure: `st` unchanged
//! let (st3, salt) = st2.recv(&peer_field5)?;      // pure
//! let bytes = st3.to_bytes();                      // SessionStructure field 15
//! let st4 = State::from_bytes(&bytes)?;
//! ```
//! * `send` returns the next state, the field-5 bytes (empty for a V0 state: omit the field) and
//!   the 32-byte HKDF salt for `WhisperMessageKeys` (or `None`).
//! * `recv` takes field 5 (empty if absent) and returns the next state and the salt.
//! * Both are pure; the caller commits the returned state only when the whole message succeeds.
//! * Errors: bad SPQR input → `Error::InvalidMessage("post-quantum ratchet error: …")`; an
//!   unparsable state → `Error::InvalidRecord`.
//!
//! Cloning a [`State`] is cheap: keys, ciphertexts and encoder data are shared behind `Arc`.

pub mod auth;
pub mod braid;
pub mod chain;
pub mod erasure;
pub mod errors;
pub mod gf;
pub mod kdf;
pub mod kem;
pub mod proto;
mod serialize;
pub mod wire;

use std::sync::Arc;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::error::Result;
use braid::Braid;
use chain::Chain;
use errors::{err, CHAIN_NOT_AVAILABLE, INTERNAL, MINIMUM_VERSION, VERSION_MISMATCH};
use wire::Message;

/// Which party: the session initiator (Alice) is `A2B`, the responder `B2A`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// Initiator.
    A2B,
    /// Responder.
    B2A,
}

/// SPQR protocol version.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Version {
    /// No SPQR.
    V0,
    /// SPQR v1.
    V1,
}

/// Parameters of a new session's SPQR state.
#[derive(Clone)]
pub struct Params {
    /// The SPQR auth key (PQXDH HKDF output bytes 64..96).
    pub auth_key: [u8; 32],
    /// `A2B` for the initiator, `B2A` for the responder.
    pub direction: Direction,
    /// Lowest version accepted from the peer (libsignal ≥ 0.92: `V1`).
    pub min_version: Version,
    /// Largest forward jump of a receive chain (libsignal: 25000, `u32::MAX` for self-sessions).
    pub max_jump: u32,
    /// Out-of-order keys kept per receive chain (libsignal: 2000).
    pub max_ooo_keys: u32,
}

impl core::fmt::Debug for Params {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Params")
            .field("auth_key", &"[redacted]")
            .field("direction", &self.direction)
            .field("min_version", &self.min_version)
            .field("max_jump", &self.max_jump)
            .field("max_ooo_keys", &self.max_ooo_keys)
            .finish()
    }
}

/// Negotiation data kept until the first successful V1 receive.
#[derive(Clone)]
pub(crate) struct Negotiation {
    pub(crate) auth_key: Zeroizing<Vec<u8>>,
    pub(crate) direction: Direction,
    pub(crate) min_version: Version,
    pub(crate) max_jump: u32,
    pub(crate) max_ooo: u32,
}

impl Negotiation {
    fn chain(&self) -> Result<Chain> {
        Chain::new(&self.auth_key, self.direction, self.max_jump, self.max_ooo)
    }
}

/// A parsed SPQR state (V0 = empty). Cheap to clone.
#[derive(Clone, Default)]
pub struct State {
    pub(crate) neg: Option<Arc<Negotiation>>,
    pub(crate) chain: Option<Chain>,
    pub(crate) braid: Option<Braid>,
}

impl core::fmt::Debug for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.braid {
            None => f.write_str("spqr::State(V0)"),
            Some(b) => f
                .debug_struct("spqr::State")
                .field("epoch", &b.epoch)
                .field("state", &b.st.name())
                .field("negotiating", &self.neg.is_some())
                .field("chain_epoch", &self.chain.as_ref().map(|c| c.current_epoch))
                .finish_non_exhaustive(),
        }
    }
}

fn key_out(k: &Zeroizing<[u8; 32]>) -> [u8; 32] {
    **k
}

impl State {
    /// A fresh V1 state (negotiation open): `KeysUnsampled(1)` for `A2B`, `NoHeaderReceived(1)`
    /// for `B2A`.
    pub fn initial(params: &Params) -> Result<State> {
        let braid = Braid::initial(&params.auth_key, params.direction == Direction::A2B)?;
        Ok(State {
            neg: Some(Arc::new(Negotiation {
                auth_key: Zeroizing::new(params.auth_key.to_vec()),
                direction: params.direction,
                min_version: params.min_version,
                max_jump: if params.max_jump == 0 {
                    chain::DEFAULT_MAX_JUMP
                } else {
                    params.max_jump
                },
                max_ooo: if params.max_ooo_keys == 0 {
                    chain::DEFAULT_MAX_OOO
                } else {
                    params.max_ooo_keys
                },
            })),
            chain: None,
            braid: Some(braid),
        })
    }

    /// The V0 state (no SPQR; serializes to empty bytes).
    pub fn v0() -> State {
        State::default()
    }

    /// Whether this is a V0 (no SPQR) state.
    pub fn is_v0(&self) -> bool {
        self.braid.is_none()
    }

    /// Whether version negotiation is still open (no V1 message received yet).
    pub fn negotiating(&self) -> bool {
        self.neg.is_some()
    }

    /// The braid epoch and state name (`None` for V0), for diagnostics and tests.
    pub fn braid_status(&self) -> Option<(u64, &'static str)> {
        self.braid.as_ref().map(|b| (b.epoch, b.st.name()))
    }

    /// The braid state (inspection for tests and diagnostics; `None` for V0).
    pub fn braid(&self) -> Option<&Braid> {
        self.braid.as_ref()
    }

    /// The symmetric chain, once created (inspection for tests and diagnostics).
    pub fn chain(&self) -> Option<&Chain> {
        self.chain.as_ref()
    }

    /// Prepares the SPQR part of one outgoing message. Returns the next state, the field-5 bytes
    /// (empty: omit the field) and the HKDF salt for the message keys. `self` is not modified.
    pub fn send<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
    ) -> Result<(State, Vec<u8>, Option<[u8; 32]>)> {
        let Some(braid) = &self.braid else {
            return Ok((State::v0(), Vec::new(), None));
        };
        let (next, payload, secret) = braid.send(rng)?;
        let mut chain = match (&self.chain, &self.neg) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(n)) if n.min_version > Version::V0 => Some(n.chain()?),
            (None, Some(_)) => None,
            (None, None) => return Err(err(CHAIN_NOT_AVAILABLE)),
        };
        let (index, key) = match &mut chain {
            Some(c) => {
                if let Some((e, s)) = &secret {
                    c.add_epoch(*e, s)?;
                }
                let ep = braid.epoch.checked_sub(1).ok_or_else(|| err(INTERNAL))?;
                let (i, k) = c.send_key(ep)?;
                (i, Some(key_out(&k)))
            }
            None => {
                if secret.is_some() {
                    return Err(err(CHAIN_NOT_AVAILABLE));
                }
                (0, None)
            }
        };
        let msg = Message {
            epoch: braid.epoch,
            index,
            payload,
        };
        let state = State {
            neg: self.neg.clone(),
            chain,
            braid: Some(next),
        };
        Ok((state, msg.to_bytes(), key))
    }

    /// Processes the SPQR part (field 5, empty if absent) of one incoming message. Returns the
    /// next state and the HKDF salt for the message keys. `self` is not modified.
    pub fn recv(&self, msg: &[u8]) -> Result<(State, Option<[u8; 32]>)> {
        let msg_version = match msg.first() {
            None | Some(0) => Version::V0,
            Some(1) => Version::V1,
            Some(_) => return Ok((self.clone(), None)),
        };
        let our_version = if self.braid.is_some() {
            Version::V1
        } else {
            Version::V0
        };
        if msg_version < our_version {
            let Some(neg) = &self.neg else {
                return Err(err(VERSION_MISMATCH));
            };
            if msg_version < neg.min_version {
                return Err(err(MINIMUM_VERSION));
            }
            return Ok((State::v0(), None));
        }
        let Some(braid) = &self.braid else {
            return Ok((State::v0(), None));
        };
        let m = Message::parse(msg)?;
        let (next, secret) = braid.recv(&m)?;
        let mut chain = match (&self.chain, &self.neg) {
            (Some(c), _) => c.clone(),
            (None, Some(n)) => n.chain()?,
            (None, None) => return Err(err(CHAIN_NOT_AVAILABLE)),
        };
        if let Some((e, s)) = &secret {
            chain.add_epoch(*e, s)?;
        }
        let ep = m.epoch - 1; // epoch ≥ 1 checked by the parser
        let key = if ep == 0 && m.index == 0 {
            None
        } else {
            Some(key_out(&chain.recv_key(ep, m.index)?))
        };
        Ok((
            State {
                neg: None,
                chain: Some(chain),
                braid: Some(next),
            },
            key,
        ))
    }
}
