//! Encryption at rest: every stored row sealed with AES-256-GCM-SIV, bound to its place.
//!
//! A sealed row is `0x01 ‖ key id (8) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`. The additional
//! data binds it to `(account, table, row key)`, so a row copied to another row, table or
//! account does not open. The AEAD key and the key id are derived from the caller's 32-byte key
//! with HKDF-SHA256 under separate labels; old keys may be kept for opening while rows are
//! re-sealed under a new one (key rotation). GCM-SIV keeps a repeated random nonce from being
//! catastrophic.

use std::fmt;

use aes_gcm_siv::aead::{Aead, Payload};
use aes_gcm_siv::{Aes256GcmSiv, KeyInit, Nonce};
use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const FORMAT: u8 = 0x01;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

struct SealingKey {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256GcmSiv,
}

impl SealingKey {
    fn new(key: &[u8]) -> Result<Self> {
        if key.len() != 32 {
            return Err(Error::InvalidArgument("a record key is 32 bytes"));
        }
        let hk = Hkdf::<Sha256>::new(Some(b"textsecure.row.v1"), key);
        let mut aead_key = Zeroizing::new([0u8; 32]);
        let mut id = [0u8; KEY_ID_LEN];
        hk.expand(b"aead key", aead_key.as_mut())
            .map_err(|_| Error::InvalidArgument("record key derivation"))?;
        hk.expand(b"key id", &mut id)
            .map_err(|_| Error::InvalidArgument("record key derivation"))?;
        let cipher = Aes256GcmSiv::new_from_slice(aead_key.as_ref())
            .map_err(|_| Error::InvalidArgument("a record key is 32 bytes"))?;
        Ok(Self { id, cipher })
    }
}

/// Seals and opens stored rows of one account. Keys are wiped on drop (the AEAD's key
/// schedule zeroizes itself) and never shown by `Debug`.
pub struct RecordSealer {
    account: String,
    current: SealingKey,
    old: Vec<SealingKey>,
}

impl fmt::Debug for RecordSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordSealer")
            .field("account", &self.account)
            .field("keys", &(1 + self.old.len()))
            .finish_non_exhaustive()
    }
}

fn aad(account: &str, table: &str, row_key: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(32 + account.len() + table.len() + row_key.len());
    v.extend_from_slice(b"textsecure.row.v1\0");
    v.extend_from_slice(account.as_bytes());
    v.push(0);
    v.extend_from_slice(table.as_bytes());
    v.push(0);
    v.extend_from_slice(row_key.as_bytes());
    v
}

impl RecordSealer {
    /// A sealer for `account` that seals under `key` and also opens rows sealed under any of
    /// `old_keys`.
    pub fn new(key: &[u8], account: &str, old_keys: &[&[u8]]) -> Result<Self> {
        Ok(Self {
            account: account.to_owned(),
            current: SealingKey::new(key)?,
            old: old_keys
                .iter()
                .map(|k| SealingKey::new(k))
                .collect::<Result<_>>()?,
        })
    }

    /// The account rows are bound to.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Seals `data` as the row `row_key` of `table`.
    pub fn seal(&self, table: &str, row_key: &str, data: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = aad(&self.account, table, row_key);
        let ct = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: data,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::InvalidArgument("record too large to seal"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.push(FORMAT);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens the row `row_key` of `table`; any mismatch (other key, other place, a flipped
    /// bit, a truncation) is [`Error::InvalidRecord`]. The plaintext is wiped when dropped.
    pub fn open(&self, table: &str, row_key: &str, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        const BAD: Error = Error::InvalidRecord("sealed row does not open (wrong key or place)");
        if blob.len() < HEADER_LEN + TAG_LEN || blob[0] != FORMAT {
            return Err(Error::InvalidRecord("sealed row is malformed"));
        }
        let id = &blob[1..1 + KEY_ID_LEN];
        let key = std::iter::once(&self.current)
            .chain(self.old.iter())
            .find(|k| k.id == id)
            .ok_or(BAD)?;
        let aad = aad(&self.account, table, row_key);
        key.cipher
            .decrypt(
                Nonce::from_slice(&blob[1 + KEY_ID_LEN..HEADER_LEN]),
                Payload {
                    msg: &blob[HEADER_LEN..],
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| BAD)
    }

    /// Whether `blob` is sealed under the current key (rows under old keys need re-sealing).
    pub fn is_current(&self, blob: &[u8]) -> bool {
        blob.len() >= HEADER_LEN && blob[0] == FORMAT && blob[1..1 + KEY_ID_LEN] == self.current.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_bound_to_place() {
        let s = RecordSealer::new(&[7u8; 32], "acct", &[]).unwrap();
        let blob = s.seal("sessions", "alice.1", b"secret record").unwrap();
        assert_eq!(
            s.open("sessions", "alice.1", &blob).unwrap().as_slice(),
            b"secret record"
        );
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        for (t, k) in [("sessions", "alice.2"), ("prekeys", "alice.1")] {
            assert!(matches!(s.open(t, k, &blob), Err(Error::InvalidRecord(_))));
        }
        let other = RecordSealer::new(&[7u8; 32], "acct2", &[]).unwrap();
        assert!(other.open("sessions", "alice.1", &blob).is_err());
        for i in 0..blob.len() {
            let mut b = blob.clone();
            b[i] ^= 0x10;
            assert!(s.open("sessions", "alice.1", &b).is_err());
            assert!(s.open("sessions", "alice.1", &blob[..i]).is_err());
        }
        assert!(!format!("{s:?}").contains("cipher"));
    }

    #[test]
    fn rotation() {
        let old = RecordSealer::new(&[1u8; 32], "a", &[]).unwrap();
        let blob = old.seal("t", "k", b"x").unwrap();
        let new = RecordSealer::new(&[2u8; 32], "a", &[&[1u8; 32]]).unwrap();
        assert!(!new.is_current(&blob));
        assert_eq!(new.open("t", "k", &blob).unwrap().as_slice(), b"x");
        let resealed = new.seal("t", "k", b"x").unwrap();
        assert!(new.is_current(&resealed));
        let only_new = RecordSealer::new(&[2u8; 32], "a", &[]).unwrap();
        assert!(only_new.open("t", "k", &blob).is_err());
        assert!(RecordSealer::new(&[1u8; 31], "a", &[]).is_err());
    }
}
