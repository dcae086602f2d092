//! Thin wrappers over the audited primitives (RustCrypto): HMAC-SHA256, HKDF-SHA256,
//! AES-256-CBC/PKCS#7, AES-256-CTR, and constant-time comparison.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// HMAC-SHA256.
pub type HmacSha256 = Hmac<Sha256>;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;
type Aes256Ctr32BE = ctr::Ctr32BE<aes::Aes256>;

/// A keyed HMAC-SHA256 instance (any key length is valid for HMAC).
pub fn hmac(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => unreachable_hmac(),
    }
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    // An empty key is always accepted; used only to satisfy the type without panicking.
    <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default())
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = hmac(key);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// HKDF-SHA256 (RFC 5869). An empty or absent salt means 32 zero bytes.
pub fn hkdf_sha256(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], out: &mut [u8]) -> Result<()> {
    let hk = hkdf::Hkdf::<Sha256>::new(salt, ikm);
    hk.expand(info, out)
        .map_err(|_| Error::InvalidArgument("HKDF output too long"))
}

/// HKDF-SHA256 with the info given as several parts (hashed as their concatenation).
pub fn hkdf_sha256_multi(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[&[u8]],
    out: &mut [u8],
) -> Result<()> {
    let hk = hkdf::Hkdf::<Sha256>::new(salt, ikm);
    hk.expand_multi_info(info, out)
        .map_err(|_| Error::InvalidArgument("HKDF output too long"))
}

/// AES-256-CBC with PKCS#7 padding.
pub fn aes256_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    Aes256CbcEnc::new(key.into(), iv.into())
        .encrypt_padded_vec_mut::<cbc::cipher::block_padding::Pkcs7>(plaintext)
}

/// AES-256-CBC decryption with PKCS#7 unpadding. The input must be a non-empty multiple of
/// 16 bytes; a bad padding is reported as [`Error::InvalidMessage`].
pub fn aes256_cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], ciphertext: &[u8]) -> Result<Vec<u8>> {
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(Error::InvalidMessage(
            "ciphertext length is not a positive multiple of 16",
        ));
    }
    Aes256CbcDec::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<cbc::cipher::block_padding::Pkcs7>(ciphertext)
        .map_err(|_| Error::InvalidMessage("bad padding"))
}

/// AES-256-CTR with a 16-byte initial counter block whose last 32 bits count big-endian
/// (libsignal's sealed-sender v1 construction). Encrypts or decrypts in place.
pub fn aes256_ctr32_apply(key: &[u8; 32], nonce: &[u8; 16], data: &mut [u8]) {
    let mut c = Aes256Ctr32BE::new(key.into(), nonce.into());
    c.apply_keystream(data);
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbc_roundtrip_and_bad_lengths() {
        let key = [7u8; 32];
        let iv = [9u8; 16];
        for n in [0usize, 1, 15, 16, 17, 100] {
            let pt = vec![0xabu8; n];
            let ct = aes256_cbc_encrypt(&key, &iv, &pt);
            assert_eq!(ct.len(), (n / 16 + 1) * 16);
            assert_eq!(aes256_cbc_decrypt(&key, &iv, &ct).unwrap(), pt);
        }
        assert!(aes256_cbc_decrypt(&key, &iv, &[]).is_err());
        assert!(aes256_cbc_decrypt(&key, &iv, &[0u8; 15]).is_err());
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
