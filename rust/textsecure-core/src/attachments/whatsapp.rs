//! WhatsApp media: AES-256-CBC(plaintext) ‖ HMAC-SHA256(IV ‖ ciphertext)[..10], keys from
//! HKDF-SHA256(media key, no salt, `WhatsApp <Type> Keys`, 112 bytes).

use hmac::Mac;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::cbc_stream::{pkcs7_data_len, CbcDecStream, CbcEncStream, BLOCK};
use super::STEP;
use crate::crypto::{ct_eq, hkdf_sha256, hmac, HmacSha256};
use crate::error::{Error, Result};

/// Length of a media key.
pub const MEDIA_KEY_LEN: usize = 32;
/// Length of the truncated MAC at the end of the file.
pub const MAC_LEN: usize = 10;

/// A WhatsApp media type, named as in Baileys' `MEDIA_HKDF_KEY_MAPPING`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaType {
    name: &'static str,
    info: &'static str,
}

/// Baileys' table: media type → HKDF info (`"WhatsApp " + mapping + " Keys"`).
const TABLE: &[(&str, &str)] = &[
    ("audio", "WhatsApp Audio Keys"),
    ("document", "WhatsApp Document Keys"),
    ("gif", "WhatsApp Video Keys"),
    ("image", "WhatsApp Image Keys"),
    ("ppic", "WhatsApp  Keys"),
    ("product", "WhatsApp Image Keys"),
    ("ptt", "WhatsApp Audio Keys"),
    ("sticker", "WhatsApp Image Keys"),
    ("video", "WhatsApp Video Keys"),
    ("thumbnail-document", "WhatsApp Document Thumbnail Keys"),
    ("thumbnail-image", "WhatsApp Image Thumbnail Keys"),
    ("thumbnail-video", "WhatsApp Video Thumbnail Keys"),
    ("thumbnail-link", "WhatsApp Link Thumbnail Keys"),
    ("md-msg-hist", "WhatsApp History Keys"),
    ("md-app-state", "WhatsApp App State Keys"),
    ("product-catalog-image", "WhatsApp  Keys"),
    ("payment-bg-image", "WhatsApp Payment Background Keys"),
    ("ptv", "WhatsApp Video Keys"),
];

impl MediaType {
    /// Looks a type up by its Baileys name.
    pub fn from_name(name: &str) -> Result<Self> {
        TABLE
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(name, info)| Self { name, info })
            .ok_or(Error::InvalidArgument("unknown WhatsApp media type"))
    }

    /// Every known type name.
    pub fn names() -> impl Iterator<Item = &'static str> {
        TABLE.iter().map(|(n, _)| *n)
    }

    /// The Baileys name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The HKDF info string.
    pub fn hkdf_info(&self) -> &'static str {
        self.info
    }
}

/// The 112-byte expansion of a media key.
#[derive(Clone)]
pub struct MediaKeys {
    /// Bytes 0–15: the CBC IV (never transmitted).
    pub iv: [u8; 16],
    /// Bytes 16–47: the AES-256 key.
    pub cipher_key: Zeroizing<[u8; 32]>,
    /// Bytes 48–79: the HMAC-SHA256 key.
    pub mac_key: Zeroizing<[u8; 32]>,
    /// Bytes 80–111: the "ref key" (derived, unused by Baileys).
    pub ref_key: Zeroizing<[u8; 32]>,
}

impl MediaKeys {
    /// HKDF-SHA256(media_key, salt none, info of `media_type`, 112 bytes), split.
    pub fn derive(media_key: &[u8], media_type: MediaType) -> Result<Self> {
        if media_key.len() != MEDIA_KEY_LEN {
            return Err(Error::InvalidKey("WhatsApp media key must be 32 bytes"));
        }
        let mut okm = Zeroizing::new([0u8; 112]);
        hkdf_sha256(None, media_key, media_type.info.as_bytes(), &mut *okm)?;
        let mut keys = Self {
            iv: [0; 16],
            cipher_key: Zeroizing::new([0; 32]),
            mac_key: Zeroizing::new([0; 32]),
            ref_key: Zeroizing::new([0; 32]),
        };
        keys.iv.copy_from_slice(&okm[..16]);
        keys.cipher_key.copy_from_slice(&okm[16..48]);
        keys.mac_key.copy_from_slice(&okm[48..80]);
        keys.ref_key.copy_from_slice(&okm[80..112]);
        Ok(keys)
    }
}

/// What the sender puts into the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhatsAppEncryptResult {
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// SHA-256 of the uploaded file (ciphertext ‖ MAC).
    pub file_enc_sha256: [u8; 32],
    /// Plaintext length.
    pub file_length: u64,
}

/// Length of the uploaded file for a plaintext of `size` bytes.
pub fn enc_len(size: u64) -> u64 {
    (size / 16 + 1) * 16 + MAC_LEN as u64
}

/// Streaming WhatsApp media encryption.
pub struct WhatsAppEncryptor {
    cbc: CbcEncStream,
    mac: HmacSha256,
    plain_sha: Sha256,
    enc_sha: Sha256,
    len: u64,
}

impl WhatsAppEncryptor {
    /// An encryptor for `media_key` (32 bytes) and `media_type`.
    pub fn new(media_key: &[u8], media_type: MediaType) -> Result<Self> {
        let keys = MediaKeys::derive(media_key, media_type)?;
        let mut mac = hmac(&*keys.mac_key);
        mac.update(&keys.iv);
        Ok(Self {
            cbc: CbcEncStream::new(&keys.cipher_key, &keys.iv),
            mac,
            plain_sha: Sha256::new(),
            enc_sha: Sha256::new(),
            len: 0,
        })
    }

    fn absorb(&mut self, ct: &[u8]) {
        self.mac.update(ct);
        self.enc_sha.update(ct);
    }

    /// Encrypts more plaintext, appending ciphertext to `out`.
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.len += data.len() as u64;
        for piece in data.chunks(STEP) {
            self.plain_sha.update(piece);
            let start = out.len();
            self.cbc.update(piece, out);
            self.absorb(&out[start..]);
        }
    }

    /// Appends the last block and the 10-byte MAC.
    pub fn finalize(mut self, out: &mut Vec<u8>) -> WhatsAppEncryptResult {
        let start = out.len();
        let cbc = core::mem::replace(&mut self.cbc, CbcEncStream::new(&[0; 32], &[0; 16]));
        cbc.finalize(out);
        self.absorb(&out[start..]);
        let mut full: [u8; 32] = self.mac.finalize().into_bytes().into();
        out.extend_from_slice(&full[..MAC_LEN]);
        self.enc_sha.update(&full[..MAC_LEN]);
        full.zeroize();
        WhatsAppEncryptResult {
            file_sha256: self.plain_sha.finalize().into(),
            file_enc_sha256: self.enc_sha.finalize().into(),
            file_length: self.len,
        }
    }
}

/// Streaming WhatsApp media decryption.
///
/// WhatsApp has no incremental MAC: plaintext is released before the MAC (at the end of the
/// file) is checked, so the caller must discard all output unless [`Self::finalize`] succeeds
/// (the file API writes to a temporary file and renames it only then).
pub struct WhatsAppDecryptor {
    cbc: CbcDecStream,
    mac: HmacSha256,
    enc_sha: Option<Sha256>,
    plain_sha: Option<Sha256>,
    file_sha256: Option<[u8; 32]>,
    file_enc_sha256: Option<[u8; 32]>,
    enc_len: Option<u64>,
    pending: Vec<u8>,
    received: u64,
    released: u64,
    failed: bool,
}

fn opt32(v: Option<&[u8]>, what: &'static str) -> Result<Option<[u8; 32]>> {
    match v {
        None => Ok(None),
        Some(b) => <[u8; 32]>::try_from(b)
            .map(Some)
            .map_err(|_| Error::InvalidArgument(what)),
    }
}

impl WhatsAppDecryptor {
    /// A decryptor; the hashes are computed and checked at the end only when given; `enc_len`
    /// is the file length when known.
    pub fn new(
        media_key: &[u8],
        media_type: MediaType,
        file_sha256: Option<&[u8]>,
        file_enc_sha256: Option<&[u8]>,
        enc_len: Option<u64>,
    ) -> Result<Self> {
        let keys = MediaKeys::derive(media_key, media_type)?;
        let mut mac = hmac(&*keys.mac_key);
        mac.update(&keys.iv);
        let file_sha256 = opt32(file_sha256, "fileSha256 must be 32 bytes")?;
        let file_enc_sha256 = opt32(file_enc_sha256, "fileEncSha256 must be 32 bytes")?;
        Ok(Self {
            cbc: CbcDecStream::new(&keys.cipher_key, &keys.iv),
            mac,
            enc_sha: file_enc_sha256.map(|_| Sha256::new()),
            plain_sha: file_sha256.map(|_| Sha256::new()),
            file_sha256,
            file_enc_sha256,
            enc_len,
            pending: Vec::new(),
            received: 0,
            released: 0,
            failed: false,
        })
    }

    fn fail(&mut self, msg: &'static str) -> Error {
        self.failed = true;
        self.pending = Vec::new();
        Error::InvalidMessage(msg)
    }

    /// Feeds file bytes; appends (not yet authenticated) plaintext to `out`.
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.failed {
            return Err(Error::InvalidMessage("media decryption already failed"));
        }
        if self
            .enc_len
            .is_some_and(|n| self.received + data.len() as u64 > n)
        {
            return Err(self.fail("media file longer than expected"));
        }
        if let Some(h) = self.enc_sha.as_mut() {
            h.update(data);
        }
        for piece in data.chunks(4 * STEP) {
            self.received += piece.len() as u64;
            self.pending.extend_from_slice(piece);
            // Keep the last block and the MAC back.
            let hold = (BLOCK + MAC_LEN).min(self.pending.len());
            let hold = match self.enc_len {
                Some(n) => {
                    let before_tail = n.saturating_sub((BLOCK + MAC_LEN) as u64);
                    let can = before_tail.saturating_sub(self.received - self.pending.len() as u64);
                    self.pending.len()
                        - usize::try_from(can)
                            .unwrap_or(usize::MAX)
                            .min(self.pending.len())
                }
                None => hold,
            };
            let avail = self.pending.len() - hold;
            let n = avail - avail % BLOCK;
            if n > 0 {
                let ct = &mut self.pending[..n];
                self.mac.update(ct);
                self.cbc.decrypt_in_place(ct);
                if let Some(h) = self.plain_sha.as_mut() {
                    h.update(&*ct);
                }
                out.extend_from_slice(ct);
                self.released += n as u64;
                self.pending.drain(..n);
            }
        }
        Ok(())
    }

    /// Checks length, MAC and the hashes given; appends the rest of the plaintext. Returns the
    /// plaintext length.
    pub fn finalize(mut self, out: &mut Vec<u8>) -> Result<u64> {
        if self.failed {
            return Err(Error::InvalidMessage("media decryption already failed"));
        }
        let n = self.received;
        if n < (BLOCK + MAC_LEN) as u64
            || (n - MAC_LEN as u64) % BLOCK as u64 != 0
            || self.enc_len.is_some_and(|e| e != n)
        {
            return Err(self.fail("bad media file length"));
        }
        let split = self.pending.len() - MAC_LEN;
        let (ct, theirs) = self.pending.split_at_mut(split);
        self.mac.update(ct);
        let ours: [u8; 32] = self.mac.clone().finalize().into_bytes().into();
        if !ct_eq(&ours[..MAC_LEN], theirs) {
            return Err(self.fail("bad media MAC"));
        }
        if let (Some(h), Some(want)) = (self.enc_sha.take(), self.file_enc_sha256) {
            let got: [u8; 32] = h.finalize().into();
            if !ct_eq(&want, &got) {
                return Err(self.fail("bad fileEncSha256"));
            }
        }
        self.cbc.decrypt_in_place(ct);
        let Some(last) = ct.len().checked_sub(BLOCK).and_then(|i| ct.get(i..)) else {
            return Err(self.fail("bad media file length"));
        };
        let last: [u8; 16] = last
            .try_into()
            .map_err(|_| Error::InvalidMessage("bad length"))?;
        let Some(in_last) = pkcs7_data_len(&last) else {
            return Err(self.fail("bad padding"));
        };
        let keep = ct.len() - BLOCK + in_last;
        if let (Some(mut h), Some(want)) = (self.plain_sha.take(), self.file_sha256) {
            h.update(&ct[..keep]);
            let got: [u8; 32] = h.finalize().into();
            if !ct_eq(&want, &got) {
                return Err(self.fail("bad fileSha256"));
            }
        }
        out.extend_from_slice(&ct[..keep]);
        Ok(self.released + keep as u64)
    }
}

/// One-shot encryption: returns the file (ciphertext ‖ MAC) and its hashes.
pub fn encrypt(
    media_key: &[u8],
    media_type: MediaType,
    plaintext: &[u8],
) -> Result<(Vec<u8>, WhatsAppEncryptResult)> {
    let mut e = WhatsAppEncryptor::new(media_key, media_type)?;
    let mut out = Vec::with_capacity(usize::try_from(enc_len(plaintext.len() as u64)).unwrap_or(0));
    e.update(plaintext, &mut out);
    let r = e.finalize(&mut out);
    Ok((out, r))
}

/// One-shot decryption: checks the MAC, and the hashes when given.
pub fn decrypt(
    media_key: &[u8],
    media_type: MediaType,
    file: &[u8],
    file_sha256: Option<&[u8]>,
    file_enc_sha256: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let mut d = WhatsAppDecryptor::new(
        media_key,
        media_type,
        file_sha256,
        file_enc_sha256,
        Some(file.len() as u64),
    )?;
    let mut out = Vec::with_capacity(file.len());
    d.update(file, &mut out)?;
    d.finalize(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_any_split_and_tamper() {
        let mk = [7u8; 32];
        let t = MediaType::from_name("video").unwrap();
        for n in [0usize, 1, 16, 17, 1_000_003] {
            let pt: Vec<u8> = (0..n).map(|i| (i * 13) as u8).collect();
            let (enc, r) = encrypt(&mk, t, &pt).unwrap();
            assert_eq!(enc.len() as u64, enc_len(n as u64));
            for step in [1usize, 7, 16, 4096, 1 << 22] {
                if n > 100_000 && step < 4096 {
                    continue;
                }
                for el in [None, Some(enc.len() as u64)] {
                    let sha = Some(&r.file_sha256[..]);
                    let esha = Some(&r.file_enc_sha256[..]);
                    let mut d = WhatsAppDecryptor::new(&mk, t, sha, esha, el).unwrap();
                    let mut out = Vec::new();
                    for p in enc.chunks(step) {
                        d.update(p, &mut out).unwrap();
                    }
                    assert_eq!(d.finalize(&mut out).unwrap(), n as u64);
                    assert_eq!(out, pt);
                }
            }
            if n < 100 {
                for i in 0..enc.len() {
                    let mut bad = enc.clone();
                    bad[i] ^= 1;
                    assert!(decrypt(&mk, t, &bad, None, None).is_err(), "n {n} byte {i}");
                }
                assert!(decrypt(&mk, t, &enc[..enc.len() - 1], None, None).is_err());
                let mut ext = enc.clone();
                ext.push(0);
                assert!(decrypt(&mk, t, &ext, None, None).is_err());
                assert!(decrypt(&mk, t, &enc, Some(&[0u8; 32]), None).is_err());
                assert!(decrypt(&mk, t, &enc, None, Some(&[0u8; 32])).is_err());
                let other = MediaType::from_name("audio").unwrap();
                assert!(decrypt(&mk, other, &enc, None, None).is_err());
            }
        }
        assert!(MediaType::from_name("nope").is_err());
        assert!(MediaKeys::derive(&[0u8; 31], MediaType::from_name("image").unwrap()).is_err());
    }
}
