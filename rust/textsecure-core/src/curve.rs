//! Curve25519 keys in libsignal's encodings, X25519 agreement and XEdDSA signatures.
//!
//! * Public keys serialize as `0x05 || u` (33 bytes); private keys as 32 raw (clamped) bytes.
//! * XEdDSA follows libsignal's convention: the signer does not negate its Edwards key; it
//!   stores the sign bit of `A` in the top bit of the signature's last byte, and the verifier
//!   reads it from there (see protocol-notes §7).
//! * X25519 (agreement and public keys) runs on AWS-LC (aws-lc-rs; on x86-64 and aarch64
//!   s2n-bignum's formally verified assembly) under the `fast-x25519` feature (on by default),
//!   else on curve25519-dalek; both give the same bytes (tests below, docs/curve.md). XEdDSA
//!   and the point checks always use curve25519-dalek.

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

/// The X25519 scalar multiplications of [`PrivateKey::public_key`] and [`PrivateKey::agree`],
/// one module per backend with the same two functions; `active` is the one the keys use.
mod x25519 {
    #[cfg(feature = "fast-x25519")]
    pub(super) use self::aws_lc as active;
    #[cfg(not(feature = "fast-x25519"))]
    pub(super) use self::dalek as active;

    /// curve25519-dalek (the Montgomery ladder; the fixed base through the Edwards basepoint
    /// table).
    #[cfg_attr(feature = "fast-x25519", allow(dead_code))]
    pub(super) mod dalek {
        use curve25519_dalek::montgomery::MontgomeryPoint;
        use subtle::ConstantTimeEq;
        use zeroize::Zeroizing;

        /// The public key of the (clamped) private bytes `k`.
        pub(in crate::curve) fn public(k: &[u8; 32]) -> [u8; 32] {
            MontgomeryPoint::mul_base_clamped(*k).to_bytes()
        }

        /// X25519(`k`, `u`), or `None` when it is all zero (a low-order `u`).
        pub(in crate::curve) fn agree(k: &[u8; 32], u: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
            let shared = Zeroizing::new(MontgomeryPoint(*u).mul_clamped(*k).to_bytes());
            if bool::from(shared.ct_eq(&[0u8; 32])) {
                None
            } else {
                Some(shared)
            }
        }
    }

    /// AWS-LC through aws-lc-rs. Importing a raw private key (`EVP_PKEY_new_raw_private_key`)
    /// computes its public key, so `agree` costs one fixed-base and one variable-base
    /// multiplication; still faster than dalek's one (docs/curve.md). AWS-LC keeps the key in
    /// memory it wipes when freed.
    #[cfg(feature = "fast-x25519")]
    pub(super) mod aws_lc {
        use aws_lc_rs::agreement::{agree as lc_agree, PrivateKey, UnparsedPublicKey, X25519};
        use zeroize::Zeroizing;

        /// The public key of the (clamped) private bytes `k`.
        pub(in crate::curve) fn public(k: &[u8; 32]) -> [u8; 32] {
            PrivateKey::from_private_key(&X25519, k)
                .ok()
                .and_then(|key| key.compute_public_key().ok())
                .and_then(|p| <[u8; 32]>::try_from(p.as_ref()).ok())
                // AWS-LC fails here only when it cannot allocate: compute it without AWS-LC.
                .unwrap_or_else(|| super::dalek::public(k))
        }

        /// X25519(`k`, `u`), or `None` when it is all zero (a low-order `u`): AWS-LC's
        /// `X25519` refuses an all-zero output (checked in constant time). An allocation
        /// failure inside AWS-LC also gives `None`.
        pub(in crate::curve) fn agree(k: &[u8; 32], u: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
            let key = PrivateKey::from_private_key(&X25519, k).ok()?;
            let mut shared = Zeroizing::new([0u8; 32]);
            lc_agree(&key, UnparsedPublicKey::new(&X25519, u), (), |s| {
                shared.copy_from_slice(s.get(..32).ok_or(())?);
                Ok(())
            })
            .ok()?;
            Some(shared)
        }
    }
}

/// X25519 operations by kind on this thread, counted in test builds only (the counts of a
/// handshake and a round trip in docs/curve.md: `handshake_and_round_trip_op_counts` below).
#[cfg(test)]
pub(crate) mod op_count {
    use std::cell::Cell;

    /// Operations since the last [`take`].
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub(crate) struct Counts {
        /// Fixed-base X25519: `PrivateKey::public_key` (key generation).
        pub(crate) fixed_base: u32,
        /// Variable-base X25519: `PrivateKey::agree`.
        pub(crate) variable_base: u32,
        /// XEdDSA signatures made.
        pub(crate) signs: u32,
        /// XEdDSA signatures verified.
        pub(crate) verifies: u32,
    }

    thread_local! {
        static COUNTS: Cell<Counts> = Cell::new(Counts::default());
    }

    pub(crate) fn bump(f: impl FnOnce(&mut Counts)) {
        COUNTS.with(|c| {
            let mut v = c.get();
            f(&mut v);
            c.set(v);
        });
    }

    /// The counts so far, reset to zero.
    pub(crate) fn take() -> Counts {
        COUNTS.with(|c| c.replace(Counts::default()))
    }
}

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
    #[cfg(test)]
    op_count::bump(|c| c.verifies += 1);
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
    #[cfg(test)]
    op_count::bump(|c| c.signs += 1);
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
        #[cfg(test)]
        op_count::bump(|c| c.fixed_base += 1);
        PublicKey(x25519::active::public(&self.0))
    }

    /// X25519 agreement; rejects an all-zero shared secret (a low-order peer key).
    pub fn agree(&self, their: &PublicKey) -> Result<Zeroizing<[u8; 32]>> {
        #[cfg(test)]
        op_count::bump(|c| c.variable_base += 1);
        x25519::active::agree(&self.0, &their.0)
            .ok_or(Error::InvalidKey("agreement with a low-order public key"))
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

    /// The X25519 backends give identical bytes (and reject the same all-zero secrets) on
    /// random keys, on the edge cases of RFC 7748 and on Wycheproof's x25519 vectors when the
    /// shared folder is there (`tests/shared_data`: skipped without it).
    #[cfg(feature = "fast-x25519")]
    mod backends {
        use super::super::x25519::{aws_lc, dalek};
        use crate::shared_data;
        use rand::{Rng, SeedableRng};

        fn same(k: &[u8; 32], u: &[u8; 32]) -> bool {
            let (a, d) = (aws_lc::agree(k, u), dalek::agree(k, u));
            assert_eq!(a.as_deref(), d.as_deref(), "k {k:02x?} u {u:02x?}");
            d.is_some()
        }

        #[test]
        fn random_keys_agree_and_public_keys_match() {
            let mut rng = rand::rngs::StdRng::seed_from_u64(25519);
            for _ in 0..300 {
                // Raw (unclamped) bytes: both backends clamp.
                let k: [u8; 32] = rng.gen();
                assert_eq!(aws_lc::public(&k), dalek::public(&k));
                let peer = dalek::public(&rng.gen());
                assert!(same(&k, &peer));
                // Any 32 bytes as a peer key: twist points, bit 255 set, u >= p.
                let u: [u8; 32] = rng.gen();
                same(&k, &u);
            }
        }

        #[test]
        fn low_order_and_non_canonical_public_keys() {
            // Points of order 1, 2, 4 and 8 (u = 0, 1, the two of order 8, p - 1) and the
            // non-canonical u = p (0) and p + 1 (1), each also with bit 255 set (masked by
            // X25519): every one gives an all-zero secret, refused by both.
            let hex32 = |s: &str| <[u8; 32]>::try_from(hex::decode(s).unwrap()).unwrap();
            let low_order = [
                hex32("0000000000000000000000000000000000000000000000000000000000000000"),
                hex32("0100000000000000000000000000000000000000000000000000000000000000"),
                hex32("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
                hex32("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
                hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
                hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
                hex32("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            ];
            let mut rng = rand::rngs::StdRng::seed_from_u64(7748);
            for u in &low_order {
                let mut high = *u;
                high[31] |= 0x80;
                for u in [u, &high] {
                    for _ in 0..8 {
                        let k: [u8; 32] = rng.gen();
                        assert!(!same(&k, u), "u {u:02x?} must give an all-zero secret");
                    }
                }
            }
            // u >= p and bit 255 set on an ordinary point: computed (mod p, bit masked).
            let mut k = [0u8; 32];
            rng.fill(&mut k);
            let mut u = dalek::public(&rng.gen());
            u[31] |= 0x80;
            assert!(same(&k, &u));
            let mut small = [0u8; 32];
            small[0] = 3;
            let mut above_p =
                hex32("efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
            above_p[0] = 0xed + 3; // p + 3, the same point as u = 3
            assert!(same(&k, &small));
            assert_eq!(
                aws_lc::agree(&k, &above_p).as_deref(),
                dalek::agree(&k, &small).as_deref()
            );
        }

        #[test]
        fn wycheproof_x25519_both_backends() {
            let Some(doc) = shared_data::json("wycheproof/x25519_test.json") else {
                return;
            };
            let mut ran = 0;
            let mut zero = 0;
            for group in doc["testGroups"].as_array().unwrap() {
                for t in group["tests"].as_array().unwrap() {
                    let field = |name: &str| -> [u8; 32] {
                        hex::decode(t[name].as_str().unwrap())
                            .unwrap()
                            .try_into()
                            .unwrap()
                    };
                    let (k, u, shared) = (field("private"), field("public"), field("shared"));
                    let (a, d) = (aws_lc::agree(&k, &u), dalek::agree(&k, &u));
                    assert_eq!(a.as_deref(), d.as_deref(), "tc {}", t["tcId"]);
                    match d {
                        Some(d) => assert_eq!(*d, shared, "tc {}", t["tcId"]),
                        None => {
                            assert_eq!(shared, [0u8; 32], "tc {}", t["tcId"]);
                            zero += 1;
                        }
                    }
                    assert_eq!(aws_lc::public(&k), dalek::public(&k));
                    ran += 1;
                }
            }
            eprintln!("x25519 backends: {ran} Wycheproof vectors, {zero} all-zero refused by both");
            assert!(ran > 0 && zero > 0);
        }
    }

    /// The X25519 operations of a v3 handshake and of a ping-pong round trip (docs/curve.md).
    /// Exact counts: a change in them is a change in the protocol's cost, to be documented.
    #[test]
    fn handshake_and_round_trip_op_counts() {
        use super::op_count::{self, Counts};
        use crate::prekey::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
        use crate::session::{decrypt, encrypt, process_prekey_bundle};
        use crate::store::{Address, InMemoryStore};

        let mut alice = InMemoryStore::new(IdentityKeyPair::generate(), 1);
        let mut bob = InMemoryStore::new(IdentityKeyPair::generate(), 2);
        let (aa, ba) = (Address::new("alice", 1), Address::new("bob", 1));
        let id = bob.identity().clone();
        let spk = SignedPreKeyRecord::generate(1, &id, 0);
        let otk = PreKeyRecord::new(1, PrivateKey::generate());
        let bundle = PreKeyBundle {
            registration_id: 2,
            device_id: 1,
            identity_key: id.public_key,
            signed_prekey_id: 1,
            signed_prekey: spk.key_pair.public_key,
            signed_prekey_signature: spk.signature.clone(),
            prekey: Some((1, otk.key_pair.public_key)),
            kyber: None,
        };
        bob.signed_prekeys.insert(1, spk);
        bob.prekeys.insert(1, otk);

        let _ = op_count::take();
        process_prekey_bundle(&mut alice, &ba, &bundle).unwrap();
        let m = encrypt(&mut alice, &ba, b"hi").unwrap();
        let alice_side = op_count::take();
        decrypt(&mut bob, &aa, &m).unwrap();
        let bob_side = op_count::take();
        eprintln!("v3 handshake: Alice {alice_side:?}, Bob {bob_side:?}");
        // Alice: a base key and a sending ratchet key (2 fixed base); X3DH with a one-time
        // prekey (4) and the first ratchet step (1); the signed prekey's signature.
        let counts = |fixed_base, variable_base, signs, verifies| Counts {
            fixed_base,
            variable_base,
            signs,
            verifies,
        };
        assert_eq!(alice_side, counts(2, 5, 0, 1));
        // Bob: X3DH (4); a DH ratchet step on Alice's ratchet key: the receiving chain (1),
        // then a new ratchet key (1 fixed base) and his sending chain (1).
        assert_eq!(bob_side, counts(1, 6, 0, 0));

        // Ping-pong in steady state: each message starts a DH ratchet step on both sides.
        let r = encrypt(&mut bob, &aa, b"hi").unwrap();
        decrypt(&mut alice, &ba, &r).unwrap();
        let _ = op_count::take();
        let m = encrypt(&mut alice, &ba, b"ping").unwrap();
        decrypt(&mut bob, &aa, &m).unwrap();
        let r = encrypt(&mut bob, &aa, b"pong").unwrap();
        decrypt(&mut alice, &ba, &r).unwrap();
        let round_trip = op_count::take();
        eprintln!("ping-pong round trip: {round_trip:?}");
        assert_eq!(round_trip, counts(2, 4, 0, 0));
    }
}
