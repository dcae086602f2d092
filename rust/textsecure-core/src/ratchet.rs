//! The Double Ratchet's key schedule with libsignal's KDFs (protocol-notes §4):
//! root KDF `WhisperRatchet`, chain steps HMAC(ck, 0x01) / HMAC(ck, 0x02), message keys
//! `WhisperMessageKeys` (80 bytes: cipher key, MAC key, IV), and the X3DH / PQXDH key
//! agreement (`WhisperText`, `WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024`).

use core::fmt;

use hmac::Mac;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto;
use crate::curve::{PrivateKey, PublicKey};
use crate::error::Result;

/// Most keys a receiving chain may skip ahead in one message.
pub const MAX_FORWARD_JUMPS: u32 = 25_000;
/// Most skipped message keys kept per receiving chain.
pub const MAX_MESSAGE_KEYS: usize = 2_000;
/// Most receiving chains kept per session.
pub const MAX_RECEIVER_CHAINS: usize = 5;
/// Most archived sessions kept per record.
pub const ARCHIVED_STATES_MAX_LENGTH: usize = 40;

const MESSAGE_KEY_SEED: [u8; 1] = [0x01];
const CHAIN_KEY_SEED: [u8; 1] = [0x02];

/// A 32-byte secret, zeroized on drop and redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret32(pub(crate) [u8; 32]);

impl Secret32 {
    /// From bytes (must be 32).
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(Self)
    }
    /// The secret bytes. Never log them.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A root key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootKey(pub(crate) Secret32);

impl RootKey {
    /// The DH ratchet: HKDF(salt = root, IKM = DH(our, their), `WhisperRatchet`, 64).
    pub fn create_chain(&self, their: &PublicKey, our: &PrivateKey) -> Result<(RootKey, ChainKey)> {
        let shared = our.agree(their)?;
        let mut out = Zeroizing::new([0u8; 64]);
        crypto::hkdf_sha256(
            Some(self.0.expose()),
            shared.as_ref(),
            b"WhisperRatchet",
            out.as_mut(),
        )?;
        let mut rk = [0u8; 32];
        let mut ck = [0u8; 32];
        rk.copy_from_slice(&out[..32]);
        ck.copy_from_slice(&out[32..]);
        Ok((RootKey(Secret32(rk)), ChainKey::new(Secret32(ck), 0)))
    }
}

/// A symmetric-ratchet chain key with its index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainKey {
    pub(crate) key: Secret32,
    pub(crate) index: u32,
}

impl ChainKey {
    /// A chain key at `index`.
    pub fn new(key: Secret32, index: u32) -> Self {
        Self { key, index }
    }

    /// The chain index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The key bytes (secret).
    pub fn key(&self) -> &Secret32 {
        &self.key
    }

    /// One step: (message-key seed for this index, chain key for the next index).
    /// The HMAC key schedule is computed once and shared by both outputs.
    pub fn step(&self) -> (Secret32, ChainKey) {
        let keyed = crypto::hmac(self.key.expose());
        let mut m1 = keyed.clone();
        m1.update(&MESSAGE_KEY_SEED);
        let mut m2 = keyed;
        m2.update(&CHAIN_KEY_SEED);
        let seed = Secret32(m1.finalize().into_bytes().into());
        let next = ChainKey::new(Secret32(m2.finalize().into_bytes().into()), self.index + 1);
        (seed, next)
    }

    /// The chain key for the next index.
    pub fn next(&self) -> ChainKey {
        self.step().1
    }

    /// The message-key seed for this index.
    pub fn message_seed(&self) -> Secret32 {
        self.step().0
    }
}

/// The keys of one message.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MessageKeys {
    pub(crate) cipher_key: [u8; 32],
    pub(crate) mac_key: [u8; 32],
    pub(crate) iv: [u8; 16],
    #[zeroize(skip)]
    pub(crate) counter: u32,
}

impl MessageKeys {
    /// HKDF(salt = SPQR key or none, IKM = seed, `WhisperMessageKeys`, 80).
    pub fn derive(seed: &Secret32, counter: u32, pq_salt: Option<&[u8; 32]>) -> Result<Self> {
        let mut out = Zeroizing::new([0u8; 80]);
        crypto::hkdf_sha256(
            pq_salt.map(|s| s.as_slice()),
            seed.expose(),
            b"WhisperMessageKeys",
            out.as_mut(),
        )?;
        let mut k = MessageKeys {
            cipher_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
            counter,
        };
        k.cipher_key.copy_from_slice(&out[..32]);
        k.mac_key.copy_from_slice(&out[32..64]);
        k.iv.copy_from_slice(&out[64..]);
        Ok(k)
    }

    /// From already derived keys (records written by python-axolotl and old libsignal).
    pub fn from_parts(cipher_key: [u8; 32], mac_key: [u8; 32], iv: [u8; 16], counter: u32) -> Self {
        Self {
            cipher_key,
            mac_key,
            iv,
            counter,
        }
    }

    /// The AES-256 key.
    pub fn cipher_key(&self) -> &[u8; 32] {
        &self.cipher_key
    }
    /// The HMAC key.
    pub fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }
    /// The CBC IV.
    pub fn iv(&self) -> &[u8; 16] {
        &self.iv
    }
    /// The counter these keys belong to.
    pub fn counter(&self) -> u32 {
        self.counter
    }
}

impl fmt::Debug for MessageKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageKeys")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// The output of the initial key agreement.
pub struct DerivedKeys {
    /// The initial root key.
    pub root_key: RootKey,
    /// The initial chain key.
    pub chain_key: ChainKey,
    /// The SPQR authentication key (PQXDH only).
    pub pq_auth_key: Option<Secret32>,
}

/// HKDF over the X3DH / PQXDH secret input (0xFF×32 ‖ DHs ‖ [Kyber secret]).
pub fn derive_initial_keys(secret_input: &[u8], pqxdh: bool) -> Result<DerivedKeys> {
    let mut out = Zeroizing::new([0u8; 96]);
    let (info, len): (&[u8], usize) = if pqxdh {
        (b"WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024", 96)
    } else {
        (b"WhisperText", 64)
    };
    crypto::hkdf_sha256(None, secret_input, info, &mut out[..len])?;
    let take = |r: core::ops::Range<usize>| {
        let mut k = [0u8; 32];
        k.copy_from_slice(&out[r]);
        Secret32(k)
    };
    Ok(DerivedKeys {
        root_key: RootKey(take(0..32)),
        chain_key: ChainKey::new(take(32..64), 0),
        pq_auth_key: pqxdh.then(|| take(64..96)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_step_matches_hmac() {
        let ck = ChainKey::new(Secret32([3u8; 32]), 7);
        let (seed, next) = ck.step();
        assert_eq!(seed.expose(), &crypto::hmac_sha256(&[3u8; 32], &[&[1]]));
        assert_eq!(next.key.expose(), &crypto::hmac_sha256(&[3u8; 32], &[&[2]]));
        assert_eq!(next.index(), 8);
    }
}
