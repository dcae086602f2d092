//! KEM keys in libsignal's encoding: one type byte + raw key (protocol-notes §1).
//!
//! * `0x08`: Kyber-1024 **round 3** (what Signal uses in PQXDH; not FIPS 203).
//! * `0x0A`: ML-KEM-1024 (FIPS 203).
//!
//! Both through `libcrux-ml-kem`; sizes are the same, the derived secrets differ.

use core::fmt;

use libcrux_ml_kem::mlkem1024 as ml;
use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Raw public key length (both types).
pub const PUBLIC_KEY_LENGTH: usize = 1568;
/// Raw secret key length (both types).
pub const SECRET_KEY_LENGTH: usize = 3168;
/// Raw ciphertext length (both types).
pub const CIPHERTEXT_LENGTH: usize = 1568;
/// Offset of the embedded public key inside the secret key (after the CPA secret key).
const EMBEDDED_PUBLIC_OFFSET: usize = 1536;

/// The KEM algorithm of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// Kyber-1024 round 3 (type byte 0x08).
    Kyber1024,
    /// ML-KEM-1024, FIPS 203 (type byte 0x0A).
    MlKem1024,
}

impl KeyType {
    /// The type byte.
    pub fn byte(self) -> u8 {
        match self {
            Self::Kyber1024 => 0x08,
            Self::MlKem1024 => 0x0A,
        }
    }

    fn from_byte(b: u8) -> Result<Self> {
        match b {
            0x08 => Ok(Self::Kyber1024),
            0x0A => Ok(Self::MlKem1024),
            _ => Err(Error::InvalidKey("unknown KEM key type")),
        }
    }
}

fn split_typed<'a>(
    data: &'a [u8],
    raw_len: usize,
    what: &'static str,
) -> Result<(KeyType, &'a [u8])> {
    let (&t, rest) = data.split_first().ok_or(Error::InvalidKey(what))?;
    let kt = KeyType::from_byte(t)?;
    if rest.len() != raw_len {
        return Err(Error::InvalidKey(what));
    }
    Ok((kt, rest))
}

/// A KEM public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key_type: KeyType,
    raw: Vec<u8>,
}

impl PublicKey {
    /// Parses `type ‖ key` (1569 bytes).
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let (key_type, raw) = split_typed(
            data,
            PUBLIC_KEY_LENGTH,
            "KEM public key has the wrong length",
        )?;
        let arr: [u8; PUBLIC_KEY_LENGTH] = raw
            .try_into()
            .map_err(|_| Error::InvalidKey("KEM public key"))?;
        if !ml::validate_public_key(&ml::MlKem1024PublicKey::from(arr)) {
            return Err(Error::InvalidKey("KEM public key is not canonical"));
        }
        Ok(Self {
            key_type,
            raw: raw.to_vec(),
        })
    }

    /// `type ‖ key`.
    pub fn serialize(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + self.raw.len());
        v.push(self.key_type.byte());
        v.extend_from_slice(&self.raw);
        v
    }

    /// The algorithm.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Encapsulates: returns (shared secret, serialized ciphertext with type byte).
    pub fn encapsulate(&self) -> Result<(Zeroizing<[u8; 32]>, Vec<u8>)> {
        let arr: [u8; PUBLIC_KEY_LENGTH] = self
            .raw
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidKey("KEM public key"))?;
        let pk = ml::MlKem1024PublicKey::from(arr);
        let mut rand = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(rand.as_mut());
        let (ct, ss) = match self.key_type {
            KeyType::Kyber1024 => libcrux_ml_kem::kyber1024::encapsulate(&pk, *rand),
            KeyType::MlKem1024 => ml::encapsulate(&pk, *rand),
        };
        let mut out = Vec::with_capacity(1 + CIPHERTEXT_LENGTH);
        out.push(self.key_type.byte());
        out.extend_from_slice(ct.as_slice());
        Ok((Zeroizing::new(ss), out))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KemPublicKey({:?}, {} bytes)",
            self.key_type,
            self.raw.len()
        )
    }
}

/// A KEM secret key; zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct SecretKey {
    key_type: KeyType,
    raw: Zeroizing<Vec<u8>>,
}

impl SecretKey {
    /// Parses `type ‖ key` (3169 bytes).
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let (key_type, raw) = split_typed(
            data,
            SECRET_KEY_LENGTH,
            "KEM secret key has the wrong length",
        )?;
        Ok(Self {
            key_type,
            raw: Zeroizing::new(raw.to_vec()),
        })
    }

    /// `type ‖ key`. Secret.
    pub fn serialize(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + self.raw.len());
        v.push(self.key_type.byte());
        v.extend_from_slice(&self.raw);
        v
    }

    /// The algorithm.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Decapsulates a serialized ciphertext (type byte must match, exact length).
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let (ct_type, raw_ct) = split_typed(
            ciphertext,
            CIPHERTEXT_LENGTH,
            "KEM ciphertext has the wrong length",
        )
        .map_err(|_| Error::InvalidMessage("KEM ciphertext has the wrong type or length"))?;
        if ct_type != self.key_type {
            return Err(Error::InvalidMessage(
                "KEM ciphertext type does not match the key",
            ));
        }
        let ct_arr: [u8; CIPHERTEXT_LENGTH] = raw_ct
            .try_into()
            .map_err(|_| Error::InvalidMessage("KEM ciphertext"))?;
        let mut sk_arr: Zeroizing<[u8; SECRET_KEY_LENGTH]> =
            Zeroizing::new([0u8; SECRET_KEY_LENGTH]);
        sk_arr.copy_from_slice(&self.raw);
        let sk = ml::MlKem1024PrivateKey::from(*sk_arr);
        let ct = ml::MlKem1024Ciphertext::from(ct_arr);
        let ss = match self.key_type {
            KeyType::Kyber1024 => libcrux_ml_kem::kyber1024::decapsulate(&sk, &ct),
            KeyType::MlKem1024 => ml::decapsulate(&sk, &ct),
        };
        let mut sk_bytes: [u8; SECRET_KEY_LENGTH] = sk.into();
        sk_bytes.zeroize();
        Ok(Zeroizing::new(ss))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KemSecretKey({:?}, <redacted>)", self.key_type)
    }
}

/// A KEM key pair.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// The secret key.
    pub secret_key: SecretKey,
    /// The public key.
    pub public_key: PublicKey,
}

impl KeyPair {
    /// A fresh key pair.
    pub fn generate(key_type: KeyType) -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 64]);
        OsRng.fill_bytes(seed.as_mut());
        Self::from_seed(key_type, seed.as_ref())
    }

    /// The key pair derived from a 64-byte seed (`d ‖ z` of FIPS 203 key generation; Kyber
    /// round 3 uses the same layout). For known-answer tests and deterministic derivation.
    pub fn from_seed(key_type: KeyType, seed: &[u8]) -> Result<Self> {
        let seed: Zeroizing<[u8; 64]> = Zeroizing::new(
            seed.try_into()
                .map_err(|_| Error::InvalidKey("KEM key generation seed must be 64 bytes"))?,
        );
        let kp = match key_type {
            KeyType::Kyber1024 => libcrux_ml_kem::kyber1024::generate_key_pair(*seed),
            KeyType::MlKem1024 => ml::generate_key_pair(*seed),
        };
        Ok(Self {
            secret_key: SecretKey {
                key_type,
                raw: Zeroizing::new(kp.private_key().as_slice().to_vec()),
            },
            public_key: PublicKey {
                key_type,
                raw: kp.public_key().as_slice().to_vec(),
            },
        })
    }

    /// Pairs a secret and a public key; both must be of one type and the public key must be
    /// the one embedded in the secret key.
    pub fn new(secret_key: SecretKey, public_key: PublicKey) -> Result<Self> {
        if secret_key.key_type != public_key.key_type {
            return Err(Error::InvalidKey("KEM key types differ"));
        }
        let embedded =
            &secret_key.raw[EMBEDDED_PUBLIC_OFFSET..EMBEDDED_PUBLIC_OFFSET + PUBLIC_KEY_LENGTH];
        if embedded != public_key.raw.as_slice() {
            return Err(Error::InvalidKey(
                "KEM public key does not match the secret key",
            ));
        }
        Ok(Self {
            secret_key,
            public_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_both_types() {
        for kt in [KeyType::Kyber1024, KeyType::MlKem1024] {
            let kp = KeyPair::generate(kt).unwrap();
            let pk = PublicKey::deserialize(&kp.public_key.serialize()).unwrap();
            let sk = SecretKey::deserialize(&kp.secret_key.serialize()).unwrap();
            let kp2 = KeyPair::new(sk, pk).unwrap();
            let (ss, ct) = kp2.public_key.encapsulate().unwrap();
            assert_eq!(ct.len(), 1569);
            assert_eq!(ct[0], kt.byte());
            assert_eq!(*kp.secret_key.decapsulate(&ct).unwrap(), *ss);
            assert!(kp.secret_key.decapsulate(&ct[..1568]).is_err());
        }
    }

    #[test]
    fn kyber_and_mlkem_differ() {
        // Same key bytes, one interpreted as Kyber round 3 and one as ML-KEM: the
        // decapsulated secrets must differ (the reason for two type bytes).
        let kp = KeyPair::generate(KeyType::Kyber1024).unwrap();
        let (ss, ct) = kp.public_key.encapsulate().unwrap();
        let mut ml_sk = kp.secret_key.serialize();
        ml_sk[0] = 0x0A;
        let ml_sk = SecretKey::deserialize(&ml_sk).unwrap();
        let mut ml_ct = ct.clone();
        ml_ct[0] = 0x0A;
        assert_ne!(*ml_sk.decapsulate(&ml_ct).unwrap(), *ss);
        assert!(kp.secret_key.decapsulate(&ml_ct).is_err());
    }
}
