//! HKDF-SHA256 (RFC 5869) specialised for SPQR: most SPQR derivations use the all-zero 32-byte
//! salt, so the extract HMAC's keyed state is computed once and cloned. Output is identical to
//! [`crate::crypto::hkdf_sha256_multi`] (checked in the tests).

use std::sync::OnceLock;

use hmac::Mac;
use zeroize::Zeroizing;

use crate::crypto::{hmac, HmacSha256};
use crate::error::{Error, Result};

fn zero_salt() -> &'static HmacSha256 {
    static Z: OnceLock<HmacSha256> = OnceLock::new();
    Z.get_or_init(|| hmac(&[0u8; 32]))
}

/// HKDF expand from a keyed PRK HMAC.
fn expand(prk: &HmacSha256, info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    if out.len() > 255 * 32 {
        return Err(Error::InvalidArgument("HKDF output too long"));
    }
    let mut prev: Option<Zeroizing<[u8; 32]>> = None;
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let mut m = prk.clone();
        if let Some(p) = &prev {
            m.update(&p[..]);
        }
        for part in info {
            m.update(part);
        }
        m.update(&[(i as u8).wrapping_add(1)]);
        let t: Zeroizing<[u8; 32]> = Zeroizing::new(m.finalize().into_bytes().into());
        let n = chunk.len();
        chunk.copy_from_slice(t.get(..n).unwrap_or(&[]));
        prev = Some(t);
    }
    Ok(())
}

/// HKDF-SHA256 with a given salt.
pub fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let mut m = hmac(salt);
    m.update(ikm);
    let prk: Zeroizing<[u8; 32]> = Zeroizing::new(m.finalize().into_bytes().into());
    expand(&hmac(&prk[..]), info, out)
}

/// HKDF-SHA256 with the 32-byte zero salt (= no salt).
pub fn hkdf_z32(ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let mut m = zero_salt().clone();
    m.update(ikm);
    let prk: Zeroizing<[u8; 32]> = Zeroizing::new(m.finalize().into_bytes().into());
    expand(&hmac(&prk[..]), info, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hkdf_sha256_multi;

    #[test]
    fn matches_generic_hkdf() {
        for len in [32usize, 64, 80, 96] {
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            let ikm: Vec<u8> = (0..len as u8).collect();
            hkdf_z32(&ikm, &[b"ab", b"cd"], &mut a).unwrap();
            hkdf_sha256_multi(Some(&[0u8; 32]), &ikm, &[b"ab", b"cd"], &mut b).unwrap();
            assert_eq!(a, b);
            hkdf(&[5u8; 32], &ikm, &[b"x"], &mut a).unwrap();
            hkdf_sha256_multi(Some(&[5u8; 32]), &ikm, &[b"x"], &mut b).unwrap();
            assert_eq!(a, b);
        }
    }
}
