//! Incremental ML-KEM-768 glue over `libcrux-ml-kem`'s `mlkem768::incremental` API (notes §6).
//!
//! * key generation from a 64-byte seed `d ‖ z`: header `ρ ‖ H(ek)` (64), ek = `t̂` (1152),
//!   dk = standard FIPS 203 decapsulation key (2400);
//! * encapsulation step 1 from the header and a 32-byte `m`: ct1 (960), encaps state (2080),
//!   shared secret;
//! * encapsulation step 2 from the encaps state and ek: ct2 (128);
//! * decapsulation of `ct1 ‖ ct2` with dk.

use libcrux_ml_kem::mlkem768::incremental as inc;
use zeroize::Zeroizing;

use super::errors::{err, INTERNAL};
use super::kdf::hkdf_z32;
use crate::error::Result;

/// Header length.
pub const HDR_LEN: usize = 64;
/// Encapsulation-key vector length.
pub const EK_LEN: usize = 1152;
/// Decapsulation key length.
pub const DK_LEN: usize = 2400;
/// ct1 length.
pub const CT1_LEN: usize = 960;
/// ct2 length.
pub const CT2_LEN: usize = 128;
/// Encapsulation state length.
pub const ES_LEN: usize = 2080;

const SCKA_KEY: &[u8] = b"Signal_PQCKA_V1_MLKEM768:SCKA Key";

/// A generated key pair.
pub struct KeyPair {
    /// `ρ ‖ H(ek_full)`.
    pub hdr: [u8; HDR_LEN],
    /// `t̂` encoding.
    pub ek: [u8; EK_LEN],
    /// Decapsulation key.
    pub dk: Zeroizing<[u8; DK_LEN]>,
}

/// Key generation from the 64-byte seed `d ‖ z`.
pub fn generate(seed: &[u8; 64]) -> KeyPair {
    let mut dk = Zeroizing::new([0u8; DK_LEN]);
    inc::generate_key_pair_compressed(*seed, &mut dk);
    let mut hdr = [0u8; HDR_LEN];
    hdr.copy_from_slice(&dk[2 * EK_LEN..2 * EK_LEN + HDR_LEN]);
    let mut ek = [0u8; EK_LEN];
    ek.copy_from_slice(&dk[EK_LEN..2 * EK_LEN]);
    KeyPair { hdr, ek, dk }
}

/// Encapsulation step 1: `(ct1, es, shared secret)`.
#[allow(clippy::type_complexity)]
pub fn encaps1(
    hdr: &[u8; HDR_LEN],
    m: &[u8; 32],
) -> Result<([u8; CT1_LEN], Zeroizing<[u8; ES_LEN]>, Zeroizing<[u8; 32]>)> {
    let mut es = Zeroizing::new([0u8; ES_LEN]);
    let mut ss = Zeroizing::new([0u8; 32]);
    let ct1 = inc::encapsulate1(hdr, *m, &mut es[..], &mut ss[..]).map_err(|_| err(INTERNAL))?;
    Ok((ct1.value, es, ss))
}

/// libcrux issue 1275: encaps states written by old portable builds hold big-endian i16s.
/// Detects that from the `e2` region and byte-swaps the polynomial part (notes §6.5).
pub fn repair_es(es: &mut [u8; ES_LEN]) {
    let mut swap = false;
    for pair in es[1536..2048].chunks_exact(2) {
        let v = i16::from_le_bytes([pair[0], pair[1]]);
        match v {
            1 | 2 | -2 => break,
            0x0100 | 0x0200 | -257 => {
                swap = true;
                break;
            }
            0 | -1 => continue,
            _ => break,
        }
    }
    if swap {
        for pair in es[..2048].chunks_exact_mut(2) {
            pair.swap(0, 1);
        }
    }
}

/// Encapsulation step 2: ct2.
pub fn encaps2(es: &[u8; ES_LEN], ek: &[u8; EK_LEN]) -> [u8; CT2_LEN] {
    let mut fixed = Zeroizing::new(*es);
    repair_es(&mut fixed);
    inc::encapsulate2(&fixed, ek).value
}

/// Whether `ek` matches the header (`H(ek ‖ ρ)` and the modulus check).
pub fn validate(hdr: &[u8; HDR_LEN], ek: &[u8; EK_LEN]) -> bool {
    inc::validate_pk_bytes(hdr, ek).is_ok()
}

/// Decapsulation of `ct1 ‖ ct2`.
pub fn decaps(dk: &[u8; DK_LEN], ct1: &[u8; CT1_LEN], ct2: &[u8; CT2_LEN]) -> Zeroizing<[u8; 32]> {
    let c1 = inc::Ciphertext1 { value: *ct1 };
    let c2 = inc::Ciphertext2 { value: *ct2 };
    Zeroizing::new(inc::decapsulate_compressed_key(dk, &c1, &c2))
}

/// Epoch secret from the shared secret.
pub fn epoch_secret(ss: &[u8], epoch: u64) -> Result<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    hkdf_z32(ss, &[SCKA_KEY, &epoch.to_be_bytes()], &mut out[..])?;
    Ok(out)
}

const Q: u16 = 3329;

/// Whether every 12-bit coefficient of a ByteEncode12 vector is `< q` (FIPS 203 modulus check).
pub fn coeffs_below_q(bytes: &[u8]) -> bool {
    bytes.len() % 3 == 0
        && bytes.chunks_exact(3).all(|b| {
            let (b0, b1, b2) = (u16::from(b[0]), u16::from(b[1]), u16::from(b[2]));
            let d0 = b0 | ((b1 & 0x0F) << 8);
            let d1 = (b1 >> 4) | (b2 << 4);
            d0 < Q && d1 < Q
        })
}

/// Sanity check of a stored decapsulation key, so that a corrupted state cannot feed libcrux
/// out-of-range values: `dk_PKE` coefficients `< q`, and the embedded `ek ‖ ρ` matches the
/// embedded `H(ek)` and passes the modulus check.
pub fn dk_ok(dk: &[u8; DK_LEN]) -> bool {
    coeffs_below_q(&dk[..EK_LEN])
        && inc::validate_pk_bytes(
            &dk[2 * EK_LEN..2 * EK_LEN + HDR_LEN],
            &dk[EK_LEN..2 * EK_LEN],
        )
        .is_ok()
}

/// Sanity check of a stored encapsulation state (after the issue-1275 repair, on a copy):
/// `ŷ` coefficients within `±(q-1)` and `e2` within `±2`.
pub fn es_ok(es: &[u8; ES_LEN]) -> bool {
    let mut fixed = Zeroizing::new(*es);
    repair_es(&mut fixed);
    let coeff = |p: &[u8]| i16::from_le_bytes([p[0], p[1]]);
    fixed[..1536]
        .chunks_exact(2)
        .all(|p| coeff(p).unsigned_abs() < Q)
        && fixed[1536..2048]
            .chunks_exact(2)
            .all(|p| coeff(p).unsigned_abs() <= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_material_passes_checks_and_round_trips() {
        let kp = generate(&[7u8; 64]);
        assert!(dk_ok(&kp.dk) && coeffs_below_q(&kp.ek) && validate(&kp.hdr, &kp.ek));
        let (ct1, es, ss) = encaps1(&kp.hdr, &[9u8; 32]).unwrap();
        assert!(es_ok(&es));
        let ct2 = encaps2(&es, &kp.ek);
        assert_eq!(*decaps(&kp.dk, &ct1, &ct2), *ss);
        // Big-endian (issue 1275) encoding of the same state is repaired.
        let mut be = *es;
        for p in be[..2048].chunks_exact_mut(2) {
            p.swap(0, 1);
        }
        assert!(es_ok(&be));
        assert_eq!(encaps2(&be, &kp.ek), ct2);
        let mut bad = *kp.dk;
        bad[0] = 0xFF;
        bad[1] |= 0x0F;
        assert!(!dk_ok(&bad));
        let mut bad_es = *es;
        bad_es[0] = 0xFF;
        bad_es[1] = 0x7F;
        assert!(!es_ok(&bad_es));
    }
}
