//! Signal attachments: IV ‖ AES-256-CBC(padded plaintext) ‖ HMAC-SHA256(IV ‖ ciphertext).
//!
//! One running HMAC state serves both the blob MAC and the incremental MAC: the incremental MAC
//! is the HMAC over IV ‖ ciphertext ‖ MAC, whose state after IV ‖ ciphertext is exactly the state
//! that finalizes to the blob MAC. So every byte goes once through AES, once through the HMAC
//! and once through the SHA-256 of the `digest`.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::cbc_stream::{pkcs7_data_len, CbcBlocksEnc, CbcDecStream, CbcEncStream, BLOCK};
use super::incremental::{chunk_size_for, ChunkedMac, DIGEST_LEN};
use super::padding::padded_size;
use super::pipeline::{handoff, split, Threads};
use super::STEP;
use crate::crypto::ct_eq;
use crate::error::{Error, Result};

/// Length of the key material (AES-256 key ‖ HMAC-SHA256 key).
pub const KEY_LEN: usize = 64;
/// Length of the IV at the start of the blob.
pub const IV_LEN: usize = 16;
/// Length of the MAC at the end of the blob.
pub const MAC_LEN: usize = 32;

/// Length of the blob for a plaintext of `plaintext_size` bytes (after padding).
pub fn blob_len(plaintext_size: u64) -> u64 {
    let padded = padded_size(plaintext_size);
    IV_LEN as u64 + (padded / 16 + 1) * 16 + MAC_LEN as u64
}

/// The incremental-MAC chunk size Signal clients use for a plaintext of `plaintext_size` bytes
/// (libsignal's rule applied to the blob length, as Signal-Android does with the upload length).
pub fn default_chunk_size(plaintext_size: u64) -> usize {
    chunk_size_for(blob_len(plaintext_size))
}

type KeyPair32 = (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>);

fn split_key(key: &[u8]) -> Result<KeyPair32> {
    if key.len() != KEY_LEN {
        return Err(Error::InvalidKey(
            "attachment key material must be 64 bytes",
        ));
    }
    let mut aes = Zeroizing::new([0u8; 32]);
    let mut mac = Zeroizing::new([0u8; 32]);
    aes.copy_from_slice(&key[..32]);
    mac.copy_from_slice(&key[32..]);
    Ok((aes, mac))
}

/// What the sender puts into the AttachmentPointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalEncryptResult {
    /// SHA-256 of the whole blob.
    pub digest: [u8; 32],
    /// The incremental MAC digest list.
    pub incremental_mac: Vec<u8>,
    /// The incremental MAC chunk size.
    pub chunk_size: usize,
    /// The true plaintext size.
    pub plaintext_size: u64,
    /// The length of the blob.
    pub blob_len: u64,
}

/// Streaming Signal attachment encryption.
pub struct SignalEncryptor {
    cbc: CbcEncStream,
    iv: [u8; 16],
    mac: ChunkedMac,
    digests: Vec<u8>,
    sha: Sha256,
    plaintext_len: u64,
    padding_left: Option<u64>,
    written: u64,
    header_done: bool,
}

impl SignalEncryptor {
    /// An encryptor with 64-byte `key` material, a 16-byte `iv` (random in real use) and the
    /// incremental MAC chunk size (see [`default_chunk_size`]).
    pub fn new(key: &[u8], iv: &[u8], chunk_size: usize) -> Result<Self> {
        let (aes, mac_key) = split_key(key)?;
        let iv: [u8; 16] = iv
            .try_into()
            .map_err(|_| Error::InvalidArgument("IV must be 16 bytes"))?;
        Ok(Self {
            cbc: CbcEncStream::new(&aes, &iv),
            iv,
            mac: ChunkedMac::new(&*mac_key, chunk_size)?,
            digests: Vec::new(),
            sha: Sha256::new(),
            plaintext_len: 0,
            padding_left: None,
            written: 0,
            header_done: false,
        })
    }

    /// Absorbs blob bytes already appended to `out[start..]` into the hashes.
    fn absorb(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        let digests = &mut self.digests;
        let r: core::result::Result<(), core::convert::Infallible> = self.mac.update(bytes, |d| {
            digests.extend_from_slice(&d);
            Ok(())
        });
        let Ok(()) = r;
        self.written += bytes.len() as u64;
    }

    fn header(&mut self, out: &mut Vec<u8>) {
        if !self.header_done {
            self.header_done = true;
            let iv = self.iv;
            out.extend_from_slice(&iv);
            self.absorb(&iv);
        }
    }

    fn encrypt(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for piece in data.chunks(STEP) {
            let start = out.len();
            self.cbc.update(piece, out);
            // Hash what AES just wrote while it is still in cache.
            self.absorb(&out[start..]);
        }
    }

    /// Encrypts more plaintext, appending blob bytes to `out`.
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.padding_left.is_some() {
            return Err(Error::InvalidArgument("update after padding started"));
        }
        self.header(out);
        self.plaintext_len += data.len() as u64;
        self.encrypt(data, out);
        Ok(())
    }

    /// Plaintext bytes consumed so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Ends the plaintext and appends up to about `max` bytes of padding ciphertext (zero bytes
    /// up to [`padded_size`]); returns `true` once all padding is written. Callers that bound
    /// memory call this until it returns `true`, then [`Self::finalize`].
    pub fn pad(&mut self, out: &mut Vec<u8>, max: usize) -> bool {
        self.header(out);
        let left = match self.padding_left {
            Some(l) => l,
            None => padded_size(self.plaintext_len) - self.plaintext_len,
        };
        let zeros = [0u8; STEP];
        let mut todo = left.min(max.max(1) as u64);
        let mut left = left;
        while todo > 0 {
            let n = usize::try_from(todo).unwrap_or(STEP).min(STEP);
            self.encrypt(&zeros[..n], out);
            todo -= n as u64;
            left -= n as u64;
        }
        self.padding_left = Some(left);
        left == 0
    }

    /// Writes the remaining padding, the last block and the MAC; returns the pointer fields.
    pub fn finalize(mut self, out: &mut Vec<u8>) -> SignalEncryptResult {
        while !self.pad(out, usize::MAX) {}
        let start = out.len();
        let cbc = core::mem::replace(&mut self.cbc, CbcEncStream::new(&[0; 32], &[0; 16]));
        cbc.finalize(out);
        self.absorb(&out[start..]);
        let blob_mac = self.mac.current();
        out.extend_from_slice(&blob_mac);
        self.absorb(&blob_mac);
        let last = self.mac.current();
        self.digests.extend_from_slice(&last);
        SignalEncryptResult {
            digest: self.sha.finalize().into(),
            incremental_mac: self.digests,
            chunk_size: self.mac.chunk_size(),
            plaintext_size: self.plaintext_len,
            blob_len: self.written,
        }
    }
}

/// Streaming Signal attachment decryption.
///
/// With an incremental MAC ([`SignalDecryptor::new`] with `incremental`), plaintext is released
/// only for chunks whose incremental MAC verified; at most one chunk is buffered. Without one
/// ([`SignalDecryptor::new_releasing_unverified`]), plaintext is released as it is decrypted and
/// is only authenticated when [`SignalDecryptor::finalize`] succeeds: the caller must discard
/// everything on failure.
pub struct SignalDecryptor {
    aes_key: Zeroizing<[u8; 32]>,
    cbc: Option<CbcDecStream>,
    mac: ChunkedMac,
    expected: Option<Vec<u8>>,
    next: usize,
    sha: Option<Sha256>,
    expected_digest: Option<[u8; 32]>,
    plaintext_size: u64,
    released: u64,
    blob_len: Option<u64>,
    pending: Vec<u8>,
    pending_off: u64,
    received: u64,
    mac_fed: u64,
    dec_pos: u64,
    failed: bool,
}

impl SignalDecryptor {
    fn build(
        key: &[u8],
        plaintext_size: u64,
        digest: Option<&[u8]>,
        incremental: Option<(&[u8], usize)>,
        blob_len: Option<u64>,
    ) -> Result<Self> {
        let (aes_key, mac_key) = split_key(key)?;
        let expected_digest = match digest {
            None => None,
            Some(d) => Some(
                <[u8; 32]>::try_from(d)
                    .map_err(|_| Error::InvalidArgument("digest must be 32 bytes"))?,
            ),
        };
        let (expected, chunk_size) = match incremental {
            None => (None, usize::MAX),
            Some((list, chunk)) => {
                if list.is_empty() || list.len() % DIGEST_LEN != 0 {
                    return Err(Error::InvalidArgument(
                        "incremental MAC must be a non-empty multiple of 32 bytes",
                    ));
                }
                (Some(list.to_vec()), chunk)
            }
        };
        Ok(Self {
            aes_key,
            cbc: None,
            mac: ChunkedMac::new(&*mac_key, chunk_size)?,
            expected,
            next: 0,
            // The digest costs a SHA-256 pass: only computed when it is to be checked.
            sha: expected_digest.map(|_| Sha256::new()),
            expected_digest,
            plaintext_size,
            released: 0,
            blob_len,
            pending: Vec::new(),
            pending_off: 0,
            received: 0,
            mac_fed: 0,
            dec_pos: 0,
            failed: false,
        })
    }

    /// A decryptor that releases only plaintext covered by a verified incremental MAC chunk.
    /// `size` is the true plaintext size from the pointer, `digest` the blob's SHA-256 (checked
    /// at the end when given), `blob_len` the blob length when known (it lets whole chunks be
    /// verified without waiting for more input).
    pub fn new(
        key: &[u8],
        size: u64,
        digest: Option<&[u8]>,
        incremental_mac: &[u8],
        chunk_size: usize,
        blob_len: Option<u64>,
    ) -> Result<Self> {
        Self::build(
            key,
            size,
            digest,
            Some((incremental_mac, chunk_size)),
            blob_len,
        )
    }

    /// A decryptor without incremental MAC: plaintext is released before the blob MAC is
    /// checked, so the caller must discard all output unless [`Self::finalize`] succeeds.
    pub fn new_releasing_unverified(
        key: &[u8],
        size: u64,
        digest: Option<&[u8]>,
        blob_len: Option<u64>,
    ) -> Result<Self> {
        Self::build(key, size, digest, None, blob_len)
    }

    fn fail(&mut self, msg: &'static str) -> Error {
        self.failed = true;
        self.pending = Vec::new();
        Error::InvalidMessage(msg)
    }

    /// Feeds `data` to the MAC; checks incremental digests at boundaries.
    fn feed_mac(&mut self, upto: u64) -> Result<()> {
        if upto <= self.mac_fed {
            return Ok(());
        }
        let a = usize::try_from(self.mac_fed - self.pending_off).unwrap_or(usize::MAX);
        let b = usize::try_from(upto - self.pending_off).unwrap_or(usize::MAX);
        let Some(bytes) = self.pending.get(a..b) else {
            return Err(self.fail("internal buffer error"));
        };
        let expected = self.expected.as_deref();
        let next = &mut self.next;
        let r = self.mac.update(bytes, |d| {
            let at = *next * DIGEST_LEN;
            match expected {
                None => Ok(()),
                Some(list) => match list.get(at..at + DIGEST_LEN) {
                    Some(want) if ct_eq(want, &d) => {
                        *next += 1;
                        Ok(())
                    }
                    _ => Err(()),
                },
            }
        });
        self.mac_fed = upto;
        r.map_err(|()| self.fail("incremental MAC mismatch"))
    }

    /// Decrypts ciphertext from `dec_pos` to `end` (absolute blob offsets, 16-aligned from 16)
    /// and releases the plaintext that is within `size`.
    fn decrypt_to(&mut self, end: u64, out: &mut Vec<u8>) -> Result<()> {
        if end <= self.dec_pos {
            return Ok(());
        }
        let a = usize::try_from(self.dec_pos - self.pending_off).unwrap_or(usize::MAX);
        let b = usize::try_from(end - self.pending_off).unwrap_or(usize::MAX);
        let (Some(cbc), Some(ct)) = (self.cbc.as_mut(), self.pending.get_mut(a..b)) else {
            return Err(self.fail("internal buffer error"));
        };
        cbc.decrypt_in_place(ct);
        let keep = (self.plaintext_size - self.released).min(ct.len() as u64);
        let keep = usize::try_from(keep).unwrap_or(0);
        out.extend_from_slice(&ct[..keep]);
        self.released += keep as u64;
        self.dec_pos = end;
        Ok(())
    }

    fn compact(&mut self) {
        let consumed = self
            .dec_pos
            .min(self.mac_fed)
            .saturating_sub(self.pending_off);
        let consumed = usize::try_from(consumed).unwrap_or(0);
        if consumed > 0 && consumed >= self.pending.len() / 2 {
            self.pending.drain(..consumed);
            self.pending_off += consumed as u64;
        }
    }

    fn process(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let tail = (MAC_LEN + BLOCK) as u64;
        // Bytes that are surely IV or ciphertext can be MACed now.
        let mac_limit = match self.blob_len {
            Some(n) => self.received.min(n.saturating_sub(MAC_LEN as u64)),
            None => self.received.saturating_sub(MAC_LEN as u64),
        };
        self.feed_mac(mac_limit)?;
        if self.cbc.is_none() && self.received >= IV_LEN as u64 && self.pending_off == 0 {
            let iv: [u8; 16] = match self.pending.get(..IV_LEN).map(<[u8; 16]>::try_from) {
                Some(Ok(iv)) => iv,
                _ => return Err(self.fail("internal buffer error")),
            };
            self.cbc = Some(CbcDecStream::new(&self.aes_key, &iv));
            self.dec_pos = IV_LEN as u64;
        }
        if self.cbc.is_some() {
            // Keep the last ciphertext block (padding check) and the MAC for finalize.
            let safe = match self.blob_len {
                Some(n) => self.received.min(n.saturating_sub(tail)),
                None => self.received.saturating_sub(tail),
            };
            let verified = match self.expected {
                Some(_) => self.mac_fed - self.mac.pending() as u64,
                None => u64::MAX,
            };
            let end = safe.min(verified);
            if end > self.dec_pos {
                let end = end - (end - self.dec_pos) % BLOCK as u64;
                self.decrypt_to(end, out)?;
            }
        }
        self.compact();
        Ok(())
    }

    /// Feeds blob bytes; appends released plaintext to `out`.
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.failed {
            return Err(Error::InvalidMessage(
                "attachment decryption already failed",
            ));
        }
        if self
            .blob_len
            .is_some_and(|n| self.received + data.len() as u64 > n)
        {
            return Err(self.fail("attachment longer than expected"));
        }
        for piece in data.chunks(4 * STEP) {
            if let Some(h) = self.sha.as_mut() {
                h.update(piece);
            }
            self.received += piece.len() as u64;
            self.pending.extend_from_slice(piece);
            self.process(out)?;
        }
        Ok(())
    }

    /// Plaintext bytes released so far.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Checks the length, MAC, incremental MAC and digest, then releases the rest.
    pub fn finalize(mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.failed {
            return Err(Error::InvalidMessage(
                "attachment decryption already failed",
            ));
        }
        let n = self.received;
        let min = (IV_LEN + BLOCK + MAC_LEN) as u64;
        if n < min || (n - min) % BLOCK as u64 != 0 || self.blob_len.is_some_and(|b| b != n) {
            return Err(self.fail("bad attachment length"));
        }
        let mac_start = n - MAC_LEN as u64;
        self.feed_mac(mac_start)?;
        let ours = self.mac.current();
        let at = usize::try_from(mac_start - self.pending_off).unwrap_or(usize::MAX);
        let theirs: [u8; 32] = match self.pending.get(at..).map(<[u8; 32]>::try_from) {
            Some(Ok(t)) => t,
            _ => return Err(self.fail("internal buffer error")),
        };
        if !ct_eq(&ours, &theirs) {
            return Err(self.fail("bad attachment MAC"));
        }
        self.feed_mac(n)?;
        if let Some(list) = self.expected.as_deref() {
            let at = self.next * DIGEST_LEN;
            let last = self.mac.current();
            let ok = at + DIGEST_LEN == list.len()
                && list.get(at..).is_some_and(|want| ct_eq(want, &last));
            if !ok {
                return Err(self.fail("incremental MAC mismatch"));
            }
        }
        if let (Some(h), Some(want)) = (self.sha.take(), self.expected_digest) {
            let digest: [u8; 32] = h.finalize().into();
            if !ct_eq(&want, &digest) {
                return Err(self.fail("bad attachment digest"));
            }
        }
        // Authenticated: decrypt what is left and check the padding of the last block.
        let mut rest = Vec::new();
        let released_before = self.released;
        let size = self.plaintext_size;
        self.plaintext_size = u64::MAX;
        self.decrypt_to(mac_start, &mut rest)?;
        let Some(last) = rest.len().checked_sub(BLOCK).and_then(|i| rest.get(i..)) else {
            return Err(self.fail("bad attachment length"));
        };
        let last: [u8; 16] = last
            .try_into()
            .map_err(|_| Error::InvalidMessage("bad length"))?;
        let Some(data_in_last) = pkcs7_data_len(&last) else {
            return Err(self.fail("bad padding"));
        };
        let content_len = released_before + (rest.len() - BLOCK + data_in_last) as u64;
        if size > content_len {
            return Err(self.fail("attachment shorter than its declared size"));
        }
        let keep = usize::try_from(size - released_before).unwrap_or(0);
        out.extend_from_slice(&rest[..keep]);
        Ok(())
    }
}

/// The hashing side of Signal encryption: the running HMAC (blob MAC and incremental MAC) and
/// the SHA-256 `digest`, over blob bytes in order.
struct BlobHashes {
    mac: ChunkedMac,
    digests: Vec<u8>,
    sha: Sha256,
    written: u64,
}

impl BlobHashes {
    fn absorb(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        let digests = &mut self.digests;
        let r: core::result::Result<(), core::convert::Infallible> = self.mac.update(bytes, |d| {
            digests.extend_from_slice(&d);
            Ok(())
        });
        let Ok(()) = r;
        self.written += bytes.len() as u64;
    }
}

/// One-shot encryption into `out`, which must be exactly [`blob_len`]`(plaintext.len())` bytes
/// long (its contents are overwritten). The plaintext is read once: AES-CBC writes straight
/// into `out`, and the HMAC and digest read each piece right after it is written (on a helper
/// thread when `threads` says two).
pub fn encrypt_into(
    key: &[u8],
    iv: &[u8],
    chunk_size: usize,
    plaintext: &[u8],
    out: &mut [u8],
    threads: Threads,
) -> Result<SignalEncryptResult> {
    let (aes, mac_key) = split_key(key)?;
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| Error::InvalidArgument("IV must be 16 bytes"))?;
    let mut h = BlobHashes {
        mac: ChunkedMac::new(&*mac_key, chunk_size)?,
        digests: Vec::new(),
        sha: Sha256::new(),
        written: 0,
    };
    let n = plaintext.len();
    if out.len() as u64 != blob_len(n as u64) {
        return Err(Error::InvalidArgument(
            "output buffer must be blob_len(size) bytes",
        ));
    }
    // Both fit in usize: they are at most out.len().
    let padded = usize::try_from(padded_size(n as u64)).unwrap_or(usize::MAX);
    let ct_len = out.len() - IV_LEN - MAC_LEN;
    let (head, rest) = out.split_at_mut(IV_LEN);
    let (body, mac_out) = rest.split_at_mut(ct_len);
    head.copy_from_slice(&iv);
    // The whole plaintext blocks are encrypted out of place; the rest (the partial last block,
    // the zero padding and the PKCS#7 block) is laid out at the end of `body` and encrypted in
    // place.
    let whole = n - n % BLOCK;
    let (direct, tail) = body.split_at_mut(whole);
    let r = n - whole;
    tail[..r].copy_from_slice(&plaintext[whole..]);
    tail[r..padded - whole].fill(0);
    // PKCS#7 over the padded plaintext: 1..=16 bytes.
    tail[padded - whole..].fill((ct_len - padded) as u8);
    let mut cbc = CbcBlocksEnc::new(&aes, &iv);
    h.absorb(head);
    let piece = threads.piece(n);
    let mut pos = 0;
    handoff(
        threads.two(n),
        direct.chunks_mut(piece).chain(tail.chunks_mut(piece)),
        |p| {
            if pos < whole {
                cbc.encrypt_to(&plaintext[pos..pos + p.len()], p);
            } else {
                cbc.encrypt_in_place(p);
            }
            pos += p.len();
        },
        |p| h.absorb(p),
    );
    let blob_mac = h.mac.current();
    mac_out.copy_from_slice(&blob_mac);
    h.absorb(&blob_mac);
    let last = h.mac.current();
    h.digests.extend_from_slice(&last);
    Ok(SignalEncryptResult {
        digest: h.sha.finalize().into(),
        incremental_mac: h.digests,
        chunk_size: h.mac.chunk_size(),
        plaintext_size: n as u64,
        blob_len: h.written,
    })
}

/// One-shot encryption (on the calling thread).
pub fn encrypt(key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<(Vec<u8>, SignalEncryptResult)> {
    let len = usize::try_from(blob_len(plaintext.len() as u64))
        .map_err(|_| Error::InvalidArgument("attachment too large"))?;
    let mut out = vec![0u8; len];
    let chunk = default_chunk_size(plaintext.len() as u64);
    let r = encrypt_into(key, iv, chunk, plaintext, &mut out, Threads::One)?;
    Ok((out, r))
}

/// The running HMAC of a decryption, checking incremental digests at chunk boundaries.
struct MacCheck<'l> {
    mac: ChunkedMac,
    expected: Option<&'l [u8]>,
    next: usize,
    bad: bool,
}

impl MacCheck<'_> {
    /// Feeds `bytes`; `false` once a boundary digest did not match.
    fn update(&mut self, bytes: &[u8]) -> bool {
        if self.bad {
            return false;
        }
        let expected = self.expected;
        let next = &mut self.next;
        let r = self.mac.update(bytes, |d| {
            let at = *next * DIGEST_LEN;
            match expected {
                None => Ok(()),
                Some(list) => match list.get(at..at + DIGEST_LEN) {
                    Some(want) if ct_eq(want, &d) => {
                        *next += 1;
                        Ok(())
                    }
                    _ => Err(()),
                },
            }
        });
        self.bad = r.is_err();
        !self.bad
    }
}

/// One-shot decryption into `out`, which must be exactly `size` bytes long (the true plaintext
/// size from the pointer). Checks the same things in the same order as [`SignalDecryptor`]
/// (length, incremental MAC, MAC, digest when given, padding, size); on error the contents of
/// `out` are unspecified and must be discarded. Each piece of the blob is hashed and decrypted
/// while in cache (the digest, or without one the HMAC, on a helper thread when `threads` says
/// two); only the blocks that hold plaintext are decrypted, not the zero padding.
pub fn decrypt_into(
    key: &[u8],
    blob: &[u8],
    digest: Option<&[u8]>,
    size: u64,
    incremental: Option<(&[u8], usize)>,
    out: &mut [u8],
    threads: Threads,
) -> Result<()> {
    let (aes_key, mac_key) = split_key(key)?;
    let expected_digest = match digest {
        None => None,
        Some(d) => Some(
            <[u8; 32]>::try_from(d)
                .map_err(|_| Error::InvalidArgument("digest must be 32 bytes"))?,
        ),
    };
    let (expected, chunk_size) = match incremental {
        None => (None, usize::MAX),
        Some((list, chunk)) => {
            if list.is_empty() || list.len() % DIGEST_LEN != 0 {
                return Err(Error::InvalidArgument(
                    "incremental MAC must be a non-empty multiple of 32 bytes",
                ));
            }
            (Some(list), chunk)
        }
    };
    let mut chk = MacCheck {
        mac: ChunkedMac::new(&*mac_key, chunk_size)?,
        expected,
        next: 0,
        bad: false,
    };
    if out.len() as u64 != size {
        return Err(Error::InvalidArgument("output buffer must be size bytes"));
    }
    let n = blob.len();
    let min = IV_LEN + BLOCK + MAC_LEN;
    if n < min || (n - min) % BLOCK != 0 {
        return Err(Error::InvalidMessage("bad attachment length"));
    }
    let mac_start = n - MAC_LEN;
    let ct = &blob[IV_LEN..mac_start];
    let last_at = ct.len() - BLOCK;
    // Ciphertext decrypted straight into `out`: the whole blocks within `size`, never the last
    // block (PKCS#7) — a size reaching into it is an error found below.
    let direct = (out.len() - out.len() % BLOCK).min(last_at);
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&blob[..IV_LEN]);
    let mut dec = CbcDecStream::new(&aes_key, &iv);
    let mut sha = expected_digest.map(|_| Sha256::new());
    let two = threads.two(n);
    let piece = threads.piece(n);
    // With a digest the helper hashes it and the caller MACs and decrypts; without one the
    // helper MACs. On one thread it is all one loop.
    let mac_in_front = !two || sha.is_some();
    let (mut front_chk, mut back_chk) = if mac_in_front {
        (Some(&mut chk), None)
    } else {
        (None, Some(&mut chk))
    };
    let range = |i: usize| (i * piece, ((i + 1) * piece).min(mac_start));
    {
        let out = &mut *out;
        split(
            two,
            mac_start.div_ceil(piece),
            |i| {
                let (a, b) = range(i);
                if let Some(c) = front_chk.as_mut() {
                    if !c.update(&blob[a..b]) {
                        return false;
                    }
                }
                // The same piece as ciphertext offsets, within the direct part.
                let (ca, cb) = (a.max(IV_LEN) - IV_LEN, (b - IV_LEN).min(direct));
                if ca < cb {
                    dec.decrypt_to(&ct[ca..cb], &mut out[ca..cb]);
                }
                true
            },
            |i| {
                let (a, b) = range(i);
                if let Some(h) = sha.as_mut() {
                    h.update(&blob[a..b]);
                }
                if let Some(c) = back_chk.as_mut() {
                    c.update(&blob[a..b]);
                }
            },
        );
    }
    if chk.bad {
        return Err(Error::InvalidMessage("incremental MAC mismatch"));
    }
    let ours = chk.mac.current();
    let theirs = &blob[mac_start..];
    if !ct_eq(&ours, theirs) {
        return Err(Error::InvalidMessage("bad attachment MAC"));
    }
    if !chk.update(theirs) {
        return Err(Error::InvalidMessage("incremental MAC mismatch"));
    }
    if let Some(list) = expected {
        let at = chk.next * DIGEST_LEN;
        let last = chk.mac.current();
        let ok =
            at + DIGEST_LEN == list.len() && list.get(at..).is_some_and(|want| ct_eq(want, &last));
        if !ok {
            return Err(Error::InvalidMessage("incremental MAC mismatch"));
        }
    }
    if let (Some(mut h), Some(want)) = (sha, expected_digest) {
        h.update(theirs);
        let got: [u8; 32] = h.finalize().into();
        if !ct_eq(&want, &got) {
            return Err(Error::InvalidMessage("bad attachment digest"));
        }
    }
    // Authenticated. The rest of `out`: a partial block before the last one, or part of the
    // last block (after its padding is checked).
    let rest = out.len() - direct;
    if rest > 0 && direct < last_at {
        let mut block = [0u8; 16];
        dec.decrypt_to(&ct[direct..direct + BLOCK], &mut block);
        // direct < last_at means direct is `size` rounded down: rest < 16.
        out[direct..].copy_from_slice(&block[..rest]);
    }
    let mut prev = [0u8; 16];
    prev.copy_from_slice(&blob[IV_LEN + last_at - BLOCK..IV_LEN + last_at]);
    let mut last = [0u8; 16];
    CbcDecStream::new(&aes_key, &prev).decrypt_to(&ct[last_at..], &mut last);
    let Some(data_in_last) = pkcs7_data_len(&last) else {
        return Err(Error::InvalidMessage("bad padding"));
    };
    let content_len = (last_at + data_in_last) as u64;
    if size > content_len {
        return Err(Error::InvalidMessage(
            "attachment shorter than its declared size",
        ));
    }
    if rest > 0 && direct == last_at {
        // rest <= data_in_last < 16 by the check above.
        out[direct..].copy_from_slice(&last[..rest]);
    }
    Ok(())
}

/// One-shot decryption (checks MAC, digest and, when given, the incremental MAC), on the
/// calling thread.
pub fn decrypt(
    key: &[u8],
    blob: &[u8],
    digest: Option<&[u8]>,
    size: u64,
    incremental: Option<(&[u8], usize)>,
) -> Result<Vec<u8>> {
    match usize::try_from(size) {
        Ok(len) if len <= blob.len() => {
            let mut out = vec![0u8; len];
            decrypt_into(key, blob, digest, size, incremental, &mut out, Threads::One)?;
            Ok(out)
        }
        // Larger than the blob: surely an error; the streaming decryptor finds which one.
        _ => decrypt_streaming(key, blob, digest, size, incremental),
    }
}

/// One-shot decryption through [`SignalDecryptor`] (the reference for [`decrypt_into`]).
pub fn decrypt_streaming(
    key: &[u8],
    blob: &[u8],
    digest: Option<&[u8]>,
    size: u64,
    incremental: Option<(&[u8], usize)>,
) -> Result<Vec<u8>> {
    let bl = Some(blob.len() as u64);
    let mut d = match incremental {
        Some((list, chunk)) => SignalDecryptor::new(key, size, digest, list, chunk, bl)?,
        None => SignalDecryptor::new_releasing_unverified(key, size, digest, bl)?,
    };
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(blob.len()));
    d.update(blob, &mut out)?;
    d.finalize(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attachments::incremental::IncrementalMac;
    use crate::crypto::{aes256_cbc_decrypt, hmac_sha256};

    fn key() -> Vec<u8> {
        (0..64u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(1))
            .collect()
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn layout_matches_definition() {
        let k = key();
        let iv = [9u8; 16];
        for n in [0usize, 1, 540, 541, 542, 1000, 70_000] {
            let pt = data(n);
            let (blob, r) = encrypt(&k, &iv, &pt).unwrap();
            let padded = padded_size(n as u64) as usize;
            assert_eq!(blob.len() as u64, blob_len(n as u64));
            assert_eq!(r.blob_len, blob.len() as u64);
            assert_eq!(&blob[..16], &iv);
            let (body, mac) = blob.split_at(blob.len() - 32);
            assert_eq!(mac, hmac_sha256(&k[32..], &[body]));
            let k32: [u8; 32] = k[..32].try_into().unwrap();
            let dec = aes256_cbc_decrypt(&k32, &iv, &body[16..]).unwrap();
            assert_eq!(dec.len(), padded);
            assert_eq!(&dec[..n], &pt[..]);
            assert!(dec[n..].iter().all(|&b| b == 0));
            assert_eq!(r.digest, <[u8; 32]>::from(Sha256::digest(&blob)));
            let mut inc = IncrementalMac::new(&k[32..], r.chunk_size).unwrap();
            inc.update(&blob);
            assert_eq!(inc.finalize(), r.incremental_mac);
            assert_eq!(r.chunk_size, chunk_size_for(blob.len() as u64));
        }
    }

    #[test]
    fn streaming_roundtrip_any_split() {
        let k = key();
        let iv = [1u8; 16];
        for n in [0usize, 17, 600, 5000] {
            let pt = data(n);
            for chunk in [32usize, 48, 64 * 1024] {
                let mut e = SignalEncryptor::new(&k, &iv, chunk).unwrap();
                let mut blob = Vec::new();
                for p in pt.chunks(7) {
                    e.update(p, &mut blob).unwrap();
                }
                let r = e.finalize(&mut blob);
                for step in [1usize, 15, 33, 1 << 20] {
                    for bl in [None, Some(blob.len() as u64)] {
                        let mut d = SignalDecryptor::new(
                            &k,
                            n as u64,
                            Some(&r.digest),
                            &r.incremental_mac,
                            chunk,
                            bl,
                        )
                        .unwrap();
                        let mut out = Vec::new();
                        for p in blob.chunks(step) {
                            d.update(p, &mut out).unwrap();
                            // Released plaintext is always covered by verified chunks.
                            assert!(out.len() as u64 <= (d.mac_fed / chunk as u64) * chunk as u64);
                        }
                        d.finalize(&mut out).unwrap();
                        assert_eq!(out, pt);
                    }
                }
            }
        }
    }

    #[test]
    fn large_single_updates() {
        let k = key();
        let pt = data(1_000_003);
        let (blob, r) = encrypt(&k, &[2u8; 16], &pt).unwrap();
        for bl in [None, Some(blob.len() as u64)] {
            let mut d =
                SignalDecryptor::new_releasing_unverified(&k, pt.len() as u64, Some(&r.digest), bl)
                    .unwrap();
            let mut out = Vec::new();
            d.update(&blob, &mut out).unwrap();
            d.finalize(&mut out).unwrap();
            assert_eq!(out, pt);
            let mut d = SignalDecryptor::new(
                &k,
                pt.len() as u64,
                Some(&r.digest),
                &r.incremental_mac,
                r.chunk_size,
                bl,
            )
            .unwrap();
            let mut out = Vec::new();
            d.update(&blob, &mut out).unwrap();
            d.finalize(&mut out).unwrap();
            assert_eq!(out, pt);
        }
        assert_eq!(
            decrypt(&k, &blob, Some(&r.digest), pt.len() as u64, None).unwrap(),
            pt
        );
    }

    #[test]
    fn tampering_is_detected_everywhere() {
        let k = key();
        let pt = data(3000);
        let (blob, r) = encrypt(&k, &[4u8; 16], &pt).unwrap();
        let chunk = 64;
        let mut inc = IncrementalMac::new(&k[32..], chunk).unwrap();
        inc.update(&blob);
        let list = inc.finalize();
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x80;
            assert!(
                decrypt(&k, &bad, Some(&r.digest), 3000, None).is_err(),
                "byte {i}"
            );
            let mut d =
                SignalDecryptor::new(&k, 3000, Some(&r.digest), &list, chunk, None).unwrap();
            let mut out = Vec::new();
            let res = d.update(&bad, &mut out).and_then(|()| d.finalize(&mut out));
            assert!(res.is_err());
            // Nothing from the chunk holding the flipped byte (or later) was released.
            let chunk_start = (i / chunk * chunk) as u64;
            assert!(
                16 + out.len() as u64 <= chunk_start.max(16),
                "byte {i}: {}",
                out.len()
            );
            assert_eq!(&out[..], &pt[..out.len()]);
        }
        // Truncation, extension, wrong digest, wrong size, wrong key.
        assert!(decrypt(&k, &blob[..blob.len() - 1], Some(&r.digest), 3000, None).is_err());
        assert!(decrypt(&k, &blob[..blob.len() - 16], None, 3000, None).is_err());
        let mut ext = blob.clone();
        ext.extend_from_slice(&[0; 16]);
        assert!(decrypt(&k, &ext, None, 3000, None).is_err());
        assert!(decrypt(&k, &blob, Some(&[0u8; 32]), 3000, None).is_err());
        assert!(decrypt(&k, &blob, Some(&r.digest), 10_000, None).is_err());
        assert_eq!(decrypt(&k, &blob, Some(&r.digest), 3000, None).unwrap(), pt);
        let mut k2 = k.clone();
        k2[0] ^= 1;
        // A wrong AES key still passes the MAC but garbles data: the padding usually fails,
        // but either way the plaintext differs.
        assert_ne!(
            decrypt(&k2, &blob, Some(&r.digest), 3000, None).ok(),
            Some(pt.clone())
        );
        k2 = k.clone();
        k2[40] ^= 1;
        assert!(decrypt(&k2, &blob, Some(&r.digest), 3000, None).is_err());
        assert!(decrypt(&k[..63], &blob, None, 3000, None).is_err());
    }

    fn streaming_encrypt(
        k: &[u8],
        iv: &[u8],
        pt: &[u8],
        chunk: usize,
    ) -> (Vec<u8>, SignalEncryptResult) {
        let mut e = SignalEncryptor::new(k, iv, chunk).unwrap();
        let mut blob = Vec::new();
        e.update(pt, &mut blob).unwrap();
        let r = e.finalize(&mut blob);
        (blob, r)
    }

    #[test]
    fn one_shot_matches_streaming_on_both_thread_counts() {
        let k = key();
        let iv = [6u8; 16];
        for n in [
            0usize, 1, 15, 16, 17, 31, 540, 541, 542, 1000, 70_000, 300_001,
        ] {
            let pt = data(n);
            let chunk = if n > 5000 { 64 * 1024 } else { 64 };
            let (want, wr) = streaming_encrypt(&k, &iv, &pt, chunk);
            for threads in [Threads::One, Threads::Two] {
                let mut blob = vec![0xAAu8; want.len()];
                let r = encrypt_into(&k, &iv, chunk, &pt, &mut blob, threads).unwrap();
                assert_eq!(blob, want, "n {n}");
                assert_eq!(r, wr);
                let padded = padded_size(n as u64);
                for size in [
                    0,
                    n as u64 / 2,
                    n as u64,
                    n as u64 + 1,
                    padded,
                    padded + 1,
                    blob.len() as u64,
                ] {
                    for inc in [None, Some((&r.incremental_mac[..], chunk))] {
                        for dig in [None, Some(&r.digest[..])] {
                            let reference = decrypt_streaming(&k, &blob, dig, size, inc);
                            if size > blob.len() as u64 {
                                assert!(reference.is_err());
                                continue;
                            }
                            let mut out = vec![0x55u8; size as usize];
                            let got = decrypt_into(&k, &blob, dig, size, inc, &mut out, threads);
                            match reference {
                                Ok(p) => {
                                    got.unwrap();
                                    assert_eq!(out, p, "n {n} size {size}");
                                }
                                Err(_) => assert!(got.is_err(), "n {n} size {size}"),
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn one_shot_rejects_what_streaming_rejects() {
        let k = key();
        let pt = data(1000);
        let chunk = 64;
        let (blob, r) = streaming_encrypt(&k, &[8u8; 16], &pt, chunk);
        let inc = Some((&r.incremental_mac[..], chunk));
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x10;
            for threads in [Threads::One, Threads::Two] {
                for (dig, inc) in [(Some(&r.digest[..]), None), (None, None), (None, inc)] {
                    let mut out = vec![0u8; 1000];
                    let got = decrypt_into(&k, &bad, dig, 1000, inc, &mut out, threads);
                    assert!(got.is_err(), "byte {i}");
                    assert!(decrypt_streaming(&k, &bad, dig, 1000, inc).is_err());
                }
            }
        }
        for len in [0, 16, 47, 63, 64, 65, blob.len() - 1, blob.len() - 16] {
            let mut out = vec![0u8; 0];
            assert!(decrypt_into(&k, &blob[..len], None, 0, None, &mut out, Threads::One).is_err());
        }
        let mut out = vec![0u8; 10];
        // Wrong output length, bad arguments.
        assert!(decrypt_into(&k, &blob, None, 1000, None, &mut out, Threads::One).is_err());
        let mut out = vec![0u8; 1000];
        assert!(decrypt_into(
            &k,
            &blob,
            Some(&[0; 31]),
            1000,
            None,
            &mut out,
            Threads::One
        )
        .is_err());
        assert!(decrypt_into(
            &k,
            &blob,
            None,
            1000,
            Some((&[0; 33], 64)),
            &mut out,
            Threads::One
        )
        .is_err());
        assert!(decrypt_into(
            &k,
            &blob,
            None,
            1000,
            Some((&r.incremental_mac, 0)),
            &mut out,
            Threads::One
        )
        .is_err());
        assert!(decrypt_into(
            &k,
            &blob,
            None,
            1000,
            Some((&r.incremental_mac[32..], chunk)),
            &mut out,
            Threads::One
        )
        .is_err());
        let mut longer = r.incremental_mac.clone();
        longer.extend_from_slice(&[0; 32]);
        assert!(decrypt_into(
            &k,
            &blob,
            None,
            1000,
            Some((&longer, chunk)),
            &mut out,
            Threads::One
        )
        .is_err());
        let mut small = vec![0u8; 10];
        assert!(encrypt_into(&k, &[0; 16], chunk, &pt, &mut small, Threads::One).is_err());
        assert!(encrypt_into(&k, &[0; 15], chunk, &pt, &mut small, Threads::One).is_err());
        // A huge declared size goes the reference way and fails.
        assert!(decrypt(&k, &blob, None, u64::MAX, None).is_err());
    }
}
