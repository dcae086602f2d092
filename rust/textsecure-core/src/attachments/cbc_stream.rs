//! Streaming AES-256-CBC (public for known-answer tests) over the RustCrypto `cbc` crate: blocks are encrypted / decrypted in
//! place in the output buffer, so there is exactly one copy of the data and AES-NI sees long runs
//! of blocks (the decryptor processes 8 blocks in parallel).
//!
//! This module uses `cbc` 0.2 / `aes` 0.9 (the `cbc02` / `aes09` aliases) while the rest of the
//! crate is on `cbc` 0.1 / `aes` 0.8: built with the workspace's release profile (fat LTO and
//! overflow checks), `cbc` 0.1 reaches only ~75% of `cbc` 0.2's CBC encryption speed and ~55%
//! of its decryption speed here. The ciphertext is the same (known-answer tests below and in
//! `tests/media_*.rs`).

use cbc02::cipher::array::Array;
use cbc02::cipher::consts::U16;
use cbc02::cipher::{BlockModeDecrypt, BlockModeEncrypt, InOutBuf, KeyIvInit};
use zeroize::Zeroize;

type Aes256 = aes09::Aes256;
type Block = Array<u8, U16>;

/// The AES block size.
pub const BLOCK: usize = 16;

/// CBC encryption with PKCS#7 padding at the end.
pub struct CbcEncStream {
    enc: cbc02::Encryptor<Aes256>,
    partial: [u8; BLOCK],
    partial_len: usize,
}

impl CbcEncStream {
    /// An encryptor with `key` and `iv`.
    pub fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        Self {
            enc: cbc02::Encryptor::new(key.into(), iv.into()),
            partial: [0; BLOCK],
            partial_len: 0,
        }
    }

    fn encrypt_in_place(&mut self, buf: &mut [u8]) {
        let (blocks, _tail) = InOutBuf::from(buf).into_chunks::<U16>();
        self.enc.encrypt_blocks_inout(blocks);
    }

    /// Appends the ciphertext of every block completed by `data` to `out`.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        if self.partial_len > 0 {
            let take = (BLOCK - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < BLOCK {
                return;
            }
            out.extend_from_slice(&self.partial);
            self.partial_len = 0;
        }
        let whole = data.len() - data.len() % BLOCK;
        out.extend_from_slice(&data[..whole]);
        let rest = &data[whole..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
        self.encrypt_in_place(&mut out[start..]);
    }

    /// Appends the last block (PKCS#7 padding, a whole block when the length was aligned).
    pub fn finalize(mut self, out: &mut Vec<u8>) {
        let pad = BLOCK - self.partial_len;
        let mut last = self.partial;
        for b in &mut last[self.partial_len..] {
            // pad is in 1..=16
            *b = pad as u8;
        }
        let start = out.len();
        out.extend_from_slice(&last);
        last.zeroize();
        self.partial.zeroize();
        self.encrypt_in_place(&mut out[start..]);
    }
}

/// Equal-length whole-block prefixes of `input` and `out` as blocks.
fn io_blocks<'i, 'o>(input: &'i [u8], out: &'o mut [u8]) -> Option<InOutBuf<'i, 'o, Block>> {
    debug_assert_eq!(input.len(), out.len());
    let n = input.len().min(out.len());
    let n = n - n % BLOCK;
    InOutBuf::new(&input[..n], &mut out[..n])
        .ok()
        .map(|b| b.into_chunks::<U16>().0)
}

/// CBC encryption of whole blocks, out of place or in place, for the one-shot paths (they
/// lay out the padding themselves).
pub struct CbcBlocksEnc {
    enc: cbc02::Encryptor<Aes256>,
}

impl CbcBlocksEnc {
    /// An encryptor with `key` and `iv`.
    pub fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        Self {
            enc: cbc02::Encryptor::new(key.into(), iv.into()),
        }
    }

    /// Encrypts `input` (a multiple of 16 bytes) into `out` (the same length), continuing the
    /// chain.
    pub fn encrypt_to(&mut self, input: &[u8], out: &mut [u8]) {
        if let Some(blocks) = io_blocks(input, out) {
            self.enc.encrypt_blocks_inout(blocks);
        }
    }

    /// Encrypts `buf` (a multiple of 16 bytes) in place, continuing the chain.
    pub fn encrypt_in_place(&mut self, buf: &mut [u8]) {
        let (blocks, _tail) = InOutBuf::from(buf).into_chunks::<U16>();
        self.enc.encrypt_blocks_inout(blocks);
    }
}

/// CBC decryption of whole blocks (the caller handles the last block's padding).
pub struct CbcDecStream {
    dec: cbc02::Decryptor<Aes256>,
}

impl CbcDecStream {
    /// A decryptor with `key` and `iv`.
    pub fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        Self {
            dec: cbc02::Decryptor::new(key.into(), iv.into()),
        }
    }

    /// Decrypts `ct` (a multiple of 16 bytes) in place.
    pub fn decrypt_in_place(&mut self, ct: &mut [u8]) {
        let (blocks, _tail) = InOutBuf::from(ct).into_chunks::<U16>();
        self.dec.decrypt_blocks_inout(blocks);
    }

    /// Decrypts `ct` (a multiple of 16 bytes) into `out` (the same length), continuing the
    /// chain.
    pub fn decrypt_to(&mut self, ct: &[u8], out: &mut [u8]) {
        if let Some(blocks) = io_blocks(ct, out) {
            self.dec.decrypt_blocks_inout(blocks);
        }
    }
}

/// Checks PKCS#7 padding of the last decrypted block; returns the number of data bytes in it.
/// Constant-time in the padding value.
pub fn pkcs7_data_len(last: &[u8; BLOCK]) -> Option<usize> {
    use subtle::{ConstantTimeEq, ConstantTimeGreater};
    let pad = last[BLOCK - 1];
    let mut ok = pad.ct_gt(&0) & !pad.ct_gt(&(BLOCK as u8));
    for (i, b) in last.iter().enumerate() {
        // byte i is padding when i >= 16 - pad
        let in_pad = !(((BLOCK - i) as u8).ct_gt(&pad));
        ok &= !in_pad | b.ct_eq(&pad);
    }
    if bool::from(ok) {
        Some(BLOCK - pad as usize)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::aes256_cbc_encrypt;

    #[test]
    fn streaming_matches_one_shot() {
        let key = [3u8; 32];
        let iv = [5u8; 16];
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        for len in [0usize, 1, 15, 16, 17, 999] {
            for step in [1usize, 5, 16, 33, 1000] {
                let mut e = CbcEncStream::new(&key, &iv);
                let mut out = vec![0xEEu8; 3]; // prefix must be left alone
                for piece in data[..len].chunks(step) {
                    e.update(piece, &mut out);
                }
                e.finalize(&mut out);
                assert_eq!(&out[..3], &[0xEE; 3]);
                let want = aes256_cbc_encrypt(&key, &iv, &data[..len]);
                assert_eq!(&out[3..], &want[..]);
                let mut blocks = vec![0u8; want.len()];
                let whole = len - len % 16;
                let mut b = CbcBlocksEnc::new(&key, &iv);
                b.encrypt_to(&data[..whole], &mut blocks[..whole]);
                blocks[whole..len].copy_from_slice(&data[whole..len]);
                let pad = (16 - len % 16) as u8;
                blocks[len..].fill(pad);
                b.encrypt_in_place(&mut blocks[whole..]);
                assert_eq!(blocks, want);
                let mut d = CbcDecStream::new(&key, &iv);
                let mut pt = vec![0u8; want.len()];
                d.decrypt_to(&want[..whole], &mut pt[..whole]);
                pt[whole..].copy_from_slice(&want[whole..]);
                d.decrypt_in_place(&mut pt[whole..]);
                assert_eq!(&pt[..len], &data[..len]);
                let last: [u8; 16] = pt[pt.len() - 16..].try_into().unwrap();
                assert_eq!(pkcs7_data_len(&last), Some(16 - (16 - len % 16)));
            }
        }
    }

    #[test]
    fn pkcs7_rejects_bad_padding() {
        let mut b = [0u8; 16];
        assert_eq!(pkcs7_data_len(&b), None);
        b[15] = 17;
        assert_eq!(pkcs7_data_len(&b), None);
        b[15] = 2;
        assert_eq!(pkcs7_data_len(&b), None);
        b[14] = 2;
        assert_eq!(pkcs7_data_len(&b), Some(14));
        b = [16u8; 16];
        assert_eq!(pkcs7_data_len(&b), Some(0));
        b[0] = 15;
        assert_eq!(pkcs7_data_len(&b), None);
    }
}
