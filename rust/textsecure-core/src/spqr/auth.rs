//! The braid authenticator (notes §8): a root key and a MAC key, updated with every epoch secret,
//! MACing the header and the ciphertext.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::kdf::hkdf_z32;
use crate::crypto::{ct_eq, hmac_sha256};
use crate::error::Result;

const UPDATE: &[u8] = b"Signal_PQCKA_V1_MLKEM768:Authenticator Update";
const HDR: &[u8] = b"Signal_PQCKA_V1_MLKEM768:ekheader";
const CT: &[u8] = b"Signal_PQCKA_V1_MLKEM768:ciphertext";

/// Authenticator keys.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Authenticator {
    /// Root key.
    pub root_key: [u8; 32],
    /// MAC key.
    pub mac_key: [u8; 32],
}

impl core::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Authenticator { .. }")
    }
}

impl Authenticator {
    /// `new(auth_key, epoch)`: zero keys updated with the auth key.
    pub fn new(auth_key: &[u8], epoch: u64) -> Result<Self> {
        let mut a = Authenticator {
            root_key: [0; 32],
            mac_key: [0; 32],
        };
        a.update(epoch, auth_key)?;
        Ok(a)
    }

    /// Mixes `k` into the keys for `epoch`.
    pub fn update(&mut self, epoch: u64, k: &[u8]) -> Result<()> {
        let mut ikm = zeroize::Zeroizing::new(Vec::with_capacity(32 + k.len()));
        ikm.extend_from_slice(&self.root_key);
        ikm.extend_from_slice(k);
        let mut out = zeroize::Zeroizing::new([0u8; 64]);
        hkdf_z32(&ikm, &[UPDATE, &epoch.to_be_bytes()], &mut out[..])?;
        self.root_key.copy_from_slice(&out[..32]);
        self.mac_key.copy_from_slice(&out[32..]);
        Ok(())
    }

    /// Header MAC.
    pub fn mac_hdr(&self, epoch: u64, hdr: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.mac_key, &[HDR, &epoch.to_be_bytes(), hdr])
    }

    /// Ciphertext MAC over `ct1 ‖ ct2`.
    pub fn mac_ct(&self, epoch: u64, ct1: &[u8], ct2: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.mac_key, &[CT, &epoch.to_be_bytes(), ct1, ct2])
    }

    /// Constant-time header MAC check.
    pub fn verify_hdr(&self, epoch: u64, hdr: &[u8], mac: &[u8]) -> bool {
        ct_eq(&self.mac_hdr(epoch, hdr), mac)
    }

    /// Constant-time ciphertext MAC check.
    pub fn verify_ct(&self, epoch: u64, ct1: &[u8], ct2: &[u8], mac: &[u8]) -> bool {
        ct_eq(&self.mac_ct(epoch, ct1, ct2), mac)
    }
}
