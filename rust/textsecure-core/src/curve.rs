//! Curve25519 keys in libsignal's encodings, X25519 agreement and XEdDSA signatures.
//!
//! * Public keys serialize as `0x05 || u` (33 bytes); private keys as 32 raw (clamped) bytes.
//! * XEdDSA follows libsignal's convention: the signer does not negate its Edwards key; it
//!   stores the sign bit of `A` in the top bit of the signature's last byte, and the verifier
//!   reads it from there (see protocol-notes §7).

use core::fmt;
use std::sync::OnceLock;

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, OsRng, RngCore};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// The type byte of a Curve25519 ("DJB") public key.
pub const DJB_TYPE: u8 = 0x05;
/// Serialized public key length.
pub const PUBLIC_KEY_LENGTH: usize = 33;
/// Serialized private key length.
pub const PRIVATE_KEY_LENGTH: usize = 32;
/// XEdDSA signature length.
pub const SIGNATURE_LENGTH: usize = 64;

/// A Curve25519 public key (the Montgomery u-coordinate).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses libsignal's 33-byte form (`0x05 || u`). Trailing bytes are tolerated, as in
    /// libsignal.
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            None => Err(Error::InvalidKey("empty public key")),
            Some((&DJB_TYPE, rest)) if rest.len() >= 32 => {
                let mut u = [0u8; 32];
                u.copy_from_slice(&rest[..32]);
                Ok(Self(u))
            }
            Some((&DJB_TYPE, _)) => Err(Error::InvalidKey("public key too short")),
            Some(_) => Err(Error::InvalidKey("bad public key type byte")),
        }
    }

    /// Parses exactly 33 bytes (no trailing data allowed).
    pub fn deserialize_exact(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != PUBLIC_KEY_LENGTH {
            return Err(Error::InvalidKey("public key must be 33 bytes"));
        }
        Self::deserialize(bytes)
    }

    /// From the raw 32-byte u-coordinate.
    pub fn from_djb_bytes(u: [u8; 32]) -> Self {
        Self(u)
    }

    /// The 33-byte serialization.
    pub fn serialize(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = DJB_TYPE;
        out[1..].copy_from_slice(&self.0);
        out
    }

    /// The raw 32-byte u-coordinate.
    pub fn djb_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// True if the encoding is canonical (u < 2^255 - 19, top bit clear) and the point is
    /// torsion-free, as libsignal requires of an incoming base key.
    pub fn is_canonical(&self) -> bool {
        // Check u < p = 2^255 - 19 and the top bit clear.
        if self.0[31] & 0x80 != 0 {
            return false;
        }
        let mut u_mod_p = self.0;
        // Reduce via field arithmetic: a MontgomeryPoint to_edwards round trip is not needed;
        // compare against p directly (little endian).
        let p: [u8; 32] = {
            let mut p = [0xffu8; 32];
            p[0] = 0xed;
            p[31] = 0x7f;
            p
        };
        let mut lt = false;
        for i in (0..32).rev() {
            if u_mod_p[i] != p[i] {
                lt = u_mod_p[i] < p[i];
                break;
            }
        }
        u_mod_p.zeroize();
        if !lt {
            return false;
        }
        match MontgomeryPoint(self.0).to_edwards(0) {
            Some(ed) => ed.is_torsion_free(),
            None => false,
        }
    }

    /// Verifies an XEdDSA signature with libsignal's sign-bit convention.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verify_signature_multipart(&[message], signature)
    }

    /// Verifies an XEdDSA signature over the concatenation of `parts`.
    pub fn verify_signature_multipart(&self, parts: &[&[u8]], signature: &[u8]) -> bool {
        let Ok(sig) = <&[u8; SIGNATURE_LENGTH]>::try_from(signature) else {
            return false;
        };
        let Some(a_point) = MontgomeryPoint(self.0).to_edwards(sig[63] >> 7) else {
            return false;
        };
        xeddsa_verify(&a_point, &a_point.compress().to_bytes(), parts, sig)
    }
}

/// XEdDSA verification against the Edwards form `a_point` (compressed: `a_bytes`) of the
/// signer's key, already chosen with the sign bit of `sig[63]`.
fn xeddsa_verify(
    a_point: &EdwardsPoint,
    a_bytes: &[u8; 32],
    parts: &[&[u8]],
    sig: &[u8; SIGNATURE_LENGTH],
) -> bool {
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    s_bytes[31] &= 0x7f;
    if s_bytes[31] & 0xe0 != 0 {
        return false;
    }
    let s = Scalar::from_bytes_mod_order(s_bytes);
    let mut hasher = Sha512::new();
    hasher.update(&sig[..32]);
    hasher.update(a_bytes);
    for p in parts {
        hasher.update(p);
    }
    let h = scalar_from_hash(hasher);
    let r_check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&(-h), a_point, &s);
    bool::from(r_check.compress().as_bytes().ct_eq(&sig[..32]))
}

/// XEdDSA signing with the clamped private bytes `k`, its scalar `a` and the compressed
/// Edwards public key `ed_public` (whose sign bit is stored in the signature).
fn xeddsa_sign<R: RngCore + CryptoRng>(
    k: &[u8; 32],
    a: &Scalar,
    ed_public: &[u8; 32],
    parts: &[&[u8]],
    rng: &mut R,
) -> [u8; SIGNATURE_LENGTH] {
    let mut z = Zeroizing::new([0u8; 64]);
    rng.fill_bytes(z.as_mut());
    let sign_bit = ed_public[31] & 0x80;

    let mut prefix = [0xffu8; 32];
    prefix[0] = 0xfe;
    let mut hasher = Sha512::new();
    hasher.update(prefix);
    hasher.update(k);
    for p in parts {
        hasher.update(p);
    }
    hasher.update(z.as_ref());
    let r = Zeroizing::new(scalar_from_hash(hasher));
    let cap_r = (&*r * ED25519_BASEPOINT_TABLE).compress();

    let mut hasher = Sha512::new();
    hasher.update(cap_r.as_bytes());
    hasher.update(ed_public);
    for p in parts {
        hasher.update(p);
    }
    let h = scalar_from_hash(hasher);
    let s = Zeroizing::new(h * a + *r);

    let mut sig = [0u8; SIGNATURE_LENGTH];
    sig[..32].copy_from_slice(cap_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig[63] &= 0x7f;
    sig[63] |= sign_bit;
    sig
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(05")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A Curve25519 private key: 32 clamped bytes, zeroized on drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey([u8; 32]);

fn scalar_from_hash(h: Sha512) -> Scalar {
    let wide: [u8; 64] = h.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn clamp(mut k: [u8; 32]) -> [u8; 32] {
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

impl PrivateKey {
    /// A fresh random key from the OS RNG.
    pub fn generate() -> Self {
        Self::generate_with(&mut OsRng)
    }

    /// A fresh random key from `rng`.
    pub fn generate_with<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(k.as_mut());
        Self(clamp(*k))
    }

    /// From 32 bytes; clamps, as libsignal does.
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let k: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::InvalidKey("private key must be 32 bytes"))?;
        Ok(Self(clamp(k)))
    }

    /// The 32 raw (clamped) bytes. Secret: callers must not log them.
    pub fn serialize(&self) -> [u8; 32] {
        self.0
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }

    /// X25519 agreement; rejects an all-zero shared secret (a low-order peer key).
    pub fn agree(&self, their: &PublicKey) -> Result<Zeroizing<[u8; 32]>> {
        let shared = Zeroizing::new(MontgomeryPoint(their.0).mul_clamped(self.0).to_bytes());
        if bool::from(shared.ct_eq(&[0u8; 32])) {
            return Err(Error::InvalidKey("agreement with a low-order public key"));
        }
        Ok(shared)
    }

    /// XEdDSA signature with fresh randomness.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LENGTH] {
        self.sign_multipart_with(&[message], &mut OsRng)
    }

    /// XEdDSA signature over the concatenation of `parts` with randomness from `rng`.
    pub fn sign_multipart_with<R: RngCore + CryptoRng>(
        &self,
        parts: &[&[u8]],
        rng: &mut R,
    ) -> [u8; SIGNATURE_LENGTH] {
        let a = Zeroizing::new(Scalar::from_bytes_mod_order(self.0));
        let ed_public = (&*a * ED25519_BASEPOINT_TABLE).compress().to_bytes();
        xeddsa_sign(&self.0, &a, &ed_public, parts, rng)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A private key with its public key.
#[derive(Clone)]
pub struct KeyPair {
    /// The public half.
    pub public_key: PublicKey,
    /// The private half.
    pub private_key: PrivateKey,
}

impl KeyPair {
    /// A fresh random pair.
    pub fn generate() -> Self {
        Self::from_private(PrivateKey::generate())
    }

    /// The pair of a private key.
    pub fn from_private(private_key: PrivateKey) -> Self {
        Self {
            public_key: private_key.public_key(),
            private_key,
        }
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key", &self.public_key)
            .field("private_key", &self.private_key)
            .finish()
    }
}

/// An Edwards point with its compressed encoding.
type EdwardsForm = (EdwardsPoint, [u8; 32]);

/// A public key prepared for verifying many XEdDSA signatures: the Edwards form of the key
/// for each sign bit is computed once, on first use, and kept.
#[derive(Clone)]
pub struct VerifyingKey {
    key: PublicKey,
    edwards: [OnceLock<Option<EdwardsForm>>; 2],
}

impl VerifyingKey {
    /// Wraps a public key (nothing is computed until the first verification).
    pub fn new(key: PublicKey) -> Self {
        Self {
            key,
            edwards: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Verifies like [`PublicKey::verify_signature_multipart`], reusing the cached Edwards form.
    pub fn verify_multipart(&self, parts: &[&[u8]], signature: &[u8]) -> bool {
        let Ok(sig) = <&[u8; SIGNATURE_LENGTH]>::try_from(signature) else {
            return false;
        };
        let bit = sig[63] >> 7;
        let cached = self.edwards[usize::from(bit)].get_or_init(|| {
            MontgomeryPoint(self.key.0)
                .to_edwards(bit)
                .map(|p| (p, p.compress().to_bytes()))
        });
        match cached {
            Some((point, bytes)) => xeddsa_verify(point, bytes, parts, sig),
            None => false,
        }
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for VerifyingKey {}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({:?})", self.key)
    }
}

/// A private key prepared for signing many messages: its scalar and compressed Edwards public
/// key are computed once, on first use, and kept (zeroized on drop).
#[derive(Clone)]
pub struct SigningKey {
    key: PrivateKey,
    prepared: OnceLock<(Zeroizing<Scalar>, [u8; 32])>,
}

impl SigningKey {
    /// Wraps a private key (nothing is computed until the first signature).
    pub fn new(key: PrivateKey) -> Self {
        Self {
            key,
            prepared: OnceLock::new(),
        }
    }

    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// Signs like [`PrivateKey::sign_multipart_with`], reusing the cached Edwards form; the
    /// signatures are identical for identical randomness.
    pub fn sign_multipart_with<R: RngCore + CryptoRng>(
        &self,
        parts: &[&[u8]],
        rng: &mut R,
    ) -> [u8; SIGNATURE_LENGTH] {
        let (a, ed_public) = self.prepared.get_or_init(|| {
            let a = Zeroizing::new(Scalar::from_bytes_mod_order(self.key.0));
            let ed = (&*a * ED25519_BASEPOINT_TABLE).compress().to_bytes();
            (a, ed)
        });
        xeddsa_sign(&self.key.0, a, ed_public, parts, rng)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn sign_verify_roundtrip_and_tamper() {
        for _ in 0..50 {
            let k = PrivateKey::generate();
            let p = k.public_key();
            let sig = k.sign(b"hello");
            assert!(p.verify_signature(b"hello", &sig));
            assert!(!p.verify_signature(b"hellp", &sig));
            let mut bad = sig;
            bad[5] ^= 1;
            assert!(!p.verify_signature(b"hello", &bad));
            assert!(!p.verify_signature(b"hello", &sig[..63]));
        }
    }

    #[test]
    fn prepared_keys_match_plain_keys() {
        use rand_core::SeedableRng;
        for i in 0..20u64 {
            let k = PrivateKey::generate();
            let p = k.public_key();
            let signer = SigningKey::new(k.clone());
            let verifier = VerifyingKey::new(p);
            let mut r1 = rand::rngs::StdRng::seed_from_u64(i);
            let mut r2 = rand::rngs::StdRng::seed_from_u64(i);
            let a = k.sign_multipart_with(&[b"ab", b"c"], &mut r1);
            let b = signer.sign_multipart_with(&[b"ab", b"c"], &mut r2);
            assert_eq!(a, b, "same randomness, same signature");
            assert!(verifier.verify_multipart(&[b"abc"], &b));
            assert!(verifier.verify_multipart(&[b"abc"], &b), "cached path");
            assert!(!verifier.verify_multipart(&[b"abd"], &b));
            let mut flipped = b;
            flipped[63] ^= 0x80;
            assert!(!verifier.verify_multipart(&[b"abc"], &flipped));
            assert!(!p.verify_signature(b"abc", &flipped));
            assert!(!verifier.verify_multipart(&[b"abc"], &b[..63]));
        }
        assert_eq!(
            format!("{:?}", SigningKey::new(PrivateKey::generate())),
            "SigningKey(<redacted>)"
        );
    }

    #[test]
    fn debug_redacts_private() {
        let k = PrivateKey::generate();
        assert_eq!(format!("{k:?}"), "PrivateKey(<redacted>)");
    }

    #[test]
    fn public_key_encoding() {
        let k = PrivateKey::generate();
        let p = k.public_key();
        let s = p.serialize();
        assert_eq!(s[0], 5);
        assert_eq!(PublicKey::deserialize(&s).unwrap(), p);
        assert!(PublicKey::deserialize(&s[..32]).is_err());
        let mut bad = s;
        bad[0] = 6;
        assert!(PublicKey::deserialize(&bad).is_err());
        assert!(p.is_canonical());
        let _ = unhex("05");
    }
}
