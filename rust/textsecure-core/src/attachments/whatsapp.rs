//! WhatsApp media: AES-256-CBC(plaintext) ‖ HMAC-SHA256(IV ‖ ciphertext)[..10], keys from
//! HKDF-SHA256(media key, no salt, `WhatsApp <Type> Keys`, 112 bytes).

use hmac::Mac;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::cbc_stream::{pkcs7_data_len, CbcBlocksEnc, CbcDecStream, CbcEncStream, BLOCK};
use super::pipeline::{handoff, split, Threads};
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

/// One-shot encryption into `out`, which must be exactly [`enc_len`]`(plaintext.len())` bytes
/// (its contents are overwritten): AES-CBC writes straight into `out`; the plaintext hash is
/// taken beside it, the HMAC and the file hash read each piece right after it is written (on a
/// helper thread when `threads` says two).
pub fn encrypt_into(
    media_key: &[u8],
    media_type: MediaType,
    plaintext: &[u8],
    out: &mut [u8],
    threads: Threads,
) -> Result<WhatsAppEncryptResult> {
    let keys = MediaKeys::derive(media_key, media_type)?;
    let n = plaintext.len();
    if out.len() as u64 != enc_len(n as u64) {
        return Err(Error::InvalidArgument(
            "output buffer must be enc_len(size) bytes",
        ));
    }
    let mut mac = hmac(&*keys.mac_key);
    mac.update(&keys.iv);
    let mut enc_sha = Sha256::new();
    let mut plain_sha = Sha256::new();
    let (body, mac_out) = out.split_at_mut(out.len() - MAC_LEN);
    let whole = n - n % BLOCK;
    let (direct, tail) = body.split_at_mut(whole);
    // The last block: the rest of the plaintext and PKCS#7 padding, encrypted in place.
    let r = n - whole;
    tail[..r].copy_from_slice(&plaintext[whole..]);
    tail[r..].fill((BLOCK - r) as u8);
    let mut cbc = CbcBlocksEnc::new(&keys.cipher_key, &keys.iv);
    let piece = threads.piece(n);
    let mut pos = 0;
    handoff(
        threads.two(n),
        direct.chunks_mut(piece).chain(core::iter::once(tail)),
        |p| {
            if pos < whole {
                let input = &plaintext[pos..pos + p.len()];
                plain_sha.update(input);
                cbc.encrypt_to(input, p);
            } else {
                plain_sha.update(&plaintext[whole..]);
                cbc.encrypt_in_place(p);
            }
            pos += p.len();
        },
        |p| {
            mac.update(p);
            enc_sha.update(p);
        },
    );
    let mut full: [u8; 32] = mac.finalize().into_bytes().into();
    mac_out.copy_from_slice(&full[..MAC_LEN]);
    enc_sha.update(&full[..MAC_LEN]);
    full.zeroize();
    Ok(WhatsAppEncryptResult {
        file_sha256: plain_sha.finalize().into(),
        file_enc_sha256: enc_sha.finalize().into(),
        file_length: n as u64,
    })
}

/// One-shot encryption (on the calling thread): returns the file (ciphertext ‖ MAC) and its
/// hashes.
pub fn encrypt(
    media_key: &[u8],
    media_type: MediaType,
    plaintext: &[u8],
) -> Result<(Vec<u8>, WhatsAppEncryptResult)> {
    let len = usize::try_from(enc_len(plaintext.len() as u64))
        .map_err(|_| Error::InvalidArgument("media too large"))?;
    let mut out = vec![0u8; len];
    let r = encrypt_into(media_key, media_type, plaintext, &mut out, Threads::One)?;
    Ok((out, r))
}

/// A media file whose length, MAC, `fileEncSha256` (when given) and padding were checked by
/// [`verify`]: [`Self::len`] is its plaintext length, [`Self::decrypt_into`] decrypts it.
pub struct VerifiedMedia<'f> {
    cbc: CbcDecStream,
    /// The ciphertext before the last block.
    ct: &'f [u8],
    last: [u8; 16],
    in_last: usize,
    file_sha256: Option<[u8; 32]>,
    threads: Threads,
}

/// First half of one-shot decryption: checks the length, the MAC and `fileEncSha256` (when
/// given) over the whole file, then the padding — nothing is decrypted before the MAC
/// verified except the last block, so the plaintext length (which the padding decides) is
/// known before any output is allocated. With two `threads` the MAC and the file hash run side
/// by side.
pub fn verify<'f>(
    media_key: &[u8],
    media_type: MediaType,
    file: &'f [u8],
    file_sha256: Option<&[u8]>,
    file_enc_sha256: Option<&[u8]>,
    threads: Threads,
) -> Result<VerifiedMedia<'f>> {
    let keys = MediaKeys::derive(media_key, media_type)?;
    let mut mac = hmac(&*keys.mac_key);
    mac.update(&keys.iv);
    let file_sha256 = opt32(file_sha256, "fileSha256 must be 32 bytes")?;
    let file_enc_sha256 = opt32(file_enc_sha256, "fileEncSha256 must be 32 bytes")?;
    let n = file.len();
    if n < BLOCK + MAC_LEN || (n - MAC_LEN) % BLOCK != 0 {
        return Err(Error::InvalidMessage("bad media file length"));
    }
    let (ct, theirs) = file.split_at(n - MAC_LEN);
    let mut enc_sha = file_enc_sha256.map(|_| Sha256::new());
    let piece = threads.piece(n);
    let range = |i: usize| (i * piece, ((i + 1) * piece).min(ct.len()));
    split(
        threads.two(n) && enc_sha.is_some(),
        ct.len().div_ceil(piece),
        |i| {
            let (a, b) = range(i);
            mac.update(&ct[a..b]);
            true
        },
        |i| {
            let (a, b) = range(i);
            if let Some(h) = enc_sha.as_mut() {
                h.update(&ct[a..b]);
            }
        },
    );
    let ours: [u8; 32] = mac.finalize().into_bytes().into();
    if !ct_eq(&ours[..MAC_LEN], theirs) {
        return Err(Error::InvalidMessage("bad media MAC"));
    }
    if let (Some(mut h), Some(want)) = (enc_sha, file_enc_sha256) {
        h.update(theirs);
        let got: [u8; 32] = h.finalize().into();
        if !ct_eq(&want, &got) {
            return Err(Error::InvalidMessage("bad fileEncSha256"));
        }
    }
    let last_at = ct.len() - BLOCK;
    let mut prev = keys.iv;
    if last_at > 0 {
        prev.copy_from_slice(&ct[last_at - BLOCK..last_at]);
    }
    let mut last = [0u8; 16];
    CbcDecStream::new(&keys.cipher_key, &prev).decrypt_to(&ct[last_at..], &mut last);
    let Some(in_last) = pkcs7_data_len(&last) else {
        return Err(Error::InvalidMessage("bad padding"));
    };
    Ok(VerifiedMedia {
        cbc: CbcDecStream::new(&keys.cipher_key, &keys.iv),
        ct: &ct[..last_at],
        last,
        in_last,
        file_sha256,
        threads,
    })
}

impl VerifiedMedia<'_> {
    /// The plaintext length.
    pub fn len(&self) -> usize {
        self.ct.len() + self.in_last
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decrypts into `out` ([`Self::len`] bytes) and checks `fileSha256` when given (with two
    /// threads, hashed on the helper as pieces are decrypted). On error `out` must be
    /// discarded.
    pub fn decrypt_into(mut self, out: &mut [u8]) -> Result<()> {
        if out.len() != self.len() {
            return Err(Error::InvalidArgument("output buffer must be len() bytes"));
        }
        let (direct, tail) = out.split_at_mut(self.ct.len());
        tail.copy_from_slice(&self.last[..self.in_last]);
        self.last.zeroize();
        let mut plain_sha = self.file_sha256.map(|_| Sha256::new());
        let n = self.ct.len();
        let two = self.threads.two(n) && plain_sha.is_some();
        let piece = self.threads.piece(n);
        let ct = self.ct;
        let cbc = &mut self.cbc;
        let mut pos = 0;
        handoff(
            two,
            direct.chunks_mut(piece),
            |p| {
                cbc.decrypt_to(&ct[pos..pos + p.len()], p);
                pos += p.len();
            },
            |p| {
                if let Some(h) = plain_sha.as_mut() {
                    h.update(p);
                }
            },
        );
        if let (Some(mut h), Some(want)) = (plain_sha, self.file_sha256) {
            h.update(tail);
            let got: [u8; 32] = h.finalize().into();
            if !ct_eq(&want, &got) {
                return Err(Error::InvalidMessage("bad fileSha256"));
            }
        }
        Ok(())
    }
}

/// One-shot decryption (on the calling thread): checks the MAC, and the hashes when given.
pub fn decrypt(
    media_key: &[u8],
    media_type: MediaType,
    file: &[u8],
    file_sha256: Option<&[u8]>,
    file_enc_sha256: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let v = verify(
        media_key,
        media_type,
        file,
        file_sha256,
        file_enc_sha256,
        Threads::One,
    )?;
    let mut out = vec![0u8; v.len()];
    v.decrypt_into(&mut out)?;
    Ok(out)
}

/// One-shot decryption through [`WhatsAppDecryptor`] (the reference for [`verify`]).
pub fn decrypt_streaming(
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

    #[test]
    fn one_shot_matches_streaming_on_both_thread_counts() {
        let mk = [9u8; 32];
        let t = MediaType::from_name("image").unwrap();
        for n in [0usize, 1, 15, 16, 17, 4095, 70_000, 300_001] {
            let pt: Vec<u8> = (0..n).map(|i| (i * 29 + 3) as u8).collect();
            let mut e = WhatsAppEncryptor::new(&mk, t).unwrap();
            let mut want = Vec::new();
            e.update(&pt, &mut want);
            let wr = e.finalize(&mut want);
            for threads in [Threads::One, Threads::Two] {
                let mut enc = vec![0xAAu8; want.len()];
                let r = encrypt_into(&mk, t, &pt, &mut enc, threads).unwrap();
                assert_eq!(enc, want);
                assert_eq!(r, wr);
                for sha in [None, Some(&r.file_sha256[..])] {
                    for esha in [None, Some(&r.file_enc_sha256[..])] {
                        let v = verify(&mk, t, &enc, sha, esha, threads).unwrap();
                        assert_eq!(v.len(), n);
                        let mut out = vec![0x55u8; n];
                        v.decrypt_into(&mut out).unwrap();
                        assert_eq!(out, pt);
                    }
                }
                let v = verify(&mk, t, &enc, None, None, threads).unwrap();
                assert!(v.decrypt_into(&mut [0u8; 1]).is_err() || n == 1);
            }
            let mut small = vec![0u8; 3];
            assert!(encrypt_into(&mk, t, &pt, &mut small, Threads::One).is_err());
        }
    }

    #[test]
    fn one_shot_rejects_what_streaming_rejects() {
        let mk = [9u8; 32];
        let t = MediaType::from_name("audio").unwrap();
        let pt: Vec<u8> = (0..100u8).collect();
        let (enc, r) = encrypt(&mk, t, &pt).unwrap();
        let sha = Some(&r.file_sha256[..]);
        let esha = Some(&r.file_enc_sha256[..]);
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x04;
            for threads in [Threads::One, Threads::Two] {
                for (s, e) in [(None, None), (sha, None), (None, esha), (sha, esha)] {
                    let got = verify(&mk, t, &bad, s, e, threads).and_then(|v| {
                        let mut out = vec![0u8; v.len()];
                        v.decrypt_into(&mut out)
                    });
                    assert!(got.is_err(), "byte {i}");
                    assert!(decrypt_streaming(&mk, t, &bad, s, e).is_err());
                }
            }
        }
        // Hash mismatches are caught even when the file is intact.
        let zero = Some(&[0u8; 32][..]);
        assert!(decrypt(&mk, t, &enc, zero, None).is_err());
        assert!(decrypt(&mk, t, &enc, None, zero).is_err());
        assert!(decrypt(&mk, t, &enc, Some(&[0u8; 31]), None).is_err());
        for len in [0, 10, 25, 26, 27, enc.len() - 1] {
            assert!(decrypt(&mk, t, &enc[..len], None, None).is_err());
        }
        // A file whose padding is bad but whose MAC is right (made with the raw primitives).
        let keys = MediaKeys::derive(&mk, t).unwrap();
        let mut ct = vec![0u8; 32];
        ct[31] = 0; // zero is never valid PKCS#7 padding
        CbcBlocksEnc::new(&keys.cipher_key, &keys.iv).encrypt_in_place(&mut ct);
        let mut m = hmac(&*keys.mac_key);
        m.update(&keys.iv);
        m.update(&ct);
        let tag: [u8; 32] = m.finalize().into_bytes().into();
        ct.extend_from_slice(&tag[..MAC_LEN]);
        assert!(decrypt(&mk, t, &ct, None, None).is_err());
        assert!(decrypt_streaming(&mk, t, &ct, None, None).is_err());
        ct.truncate(32);
        ct[..16].fill(0);
        let mut last = [16u8; 16];
        last[0] = 16;
        let mut c2 = vec![0u8; 32];
        c2[16..].copy_from_slice(&last);
        CbcBlocksEnc::new(&keys.cipher_key, &keys.iv).encrypt_in_place(&mut c2);
        let mut m = hmac(&*keys.mac_key);
        m.update(&keys.iv);
        m.update(&c2);
        let tag: [u8; 32] = m.finalize().into_bytes().into();
        c2.extend_from_slice(&tag[..MAC_LEN]);
        assert_eq!(decrypt(&mk, t, &c2, None, None).unwrap(), vec![0u8; 16]);
        assert_eq!(
            decrypt_streaming(&mk, t, &c2, None, None).unwrap(),
            vec![0u8; 16]
        );
    }
}
