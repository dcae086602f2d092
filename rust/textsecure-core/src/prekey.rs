//! Identity key pairs, prekey records (libsignal's storage format) and prekey bundles.

use prost::Message as _;

use crate::curve::{KeyPair, PrivateKey, PublicKey};
use crate::error::{Error, Result};
use crate::kem;
use crate::proto::storage;

/// An identity key pair; serializes as libsignal's `IdentityKeyPairStructure`.
#[derive(Clone, Debug)]
pub struct IdentityKeyPair {
    /// The public identity key.
    pub public_key: PublicKey,
    /// The private identity key.
    pub private_key: PrivateKey,
}

impl IdentityKeyPair {
    /// A fresh identity.
    pub fn generate() -> Self {
        Self::from_private(PrivateKey::generate())
    }

    /// The identity of a private key.
    pub fn from_private(private_key: PrivateKey) -> Self {
        Self {
            public_key: private_key.public_key(),
            private_key,
        }
    }

    /// libsignal's `IdentityKeyPairStructure`.
    pub fn serialize(&self) -> Vec<u8> {
        storage::IdentityKeyPairStructure {
            public_key: self.public_key.serialize().to_vec(),
            private_key: self.private_key.serialize().to_vec(),
        }
        .encode_to_vec()
    }

    /// Parses `IdentityKeyPairStructure`; the public key must match the private key.
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let p = storage::IdentityKeyPairStructure::decode(data)
            .map_err(|_| Error::InvalidKey("IdentityKeyPair protobuf is invalid"))?;
        let public = PublicKey::deserialize_exact(&p.public_key)?;
        let private = PrivateKey::deserialize(&p.private_key)?;
        if private.public_key() != public {
            return Err(Error::InvalidKey(
                "identity public key does not match private key",
            ));
        }
        Ok(Self {
            public_key: public,
            private_key: private,
        })
    }

    /// As a plain key pair.
    pub fn key_pair(&self) -> KeyPair {
        KeyPair {
            public_key: self.public_key,
            private_key: self.private_key.clone(),
        }
    }
}

/// A one-time EC prekey.
#[derive(Clone, Debug)]
pub struct PreKeyRecord {
    /// Its id.
    pub id: u32,
    /// The key pair.
    pub key_pair: KeyPair,
}

impl PreKeyRecord {
    /// A record for a key pair.
    pub fn new(id: u32, private_key: PrivateKey) -> Self {
        Self {
            id,
            key_pair: KeyPair::from_private(private_key),
        }
    }

    /// libsignal's `PreKeyRecordStructure`.
    pub fn serialize(&self) -> Vec<u8> {
        storage::PreKeyRecordStructure {
            id: self.id,
            public_key: self.key_pair.public_key.serialize().to_vec(),
            private_key: self.key_pair.private_key.serialize().to_vec(),
        }
        .encode_to_vec()
    }

    /// Parses `PreKeyRecordStructure`.
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let p = storage::PreKeyRecordStructure::decode(data)
            .map_err(|_| Error::InvalidRecord("PreKeyRecord protobuf is invalid"))?;
        let private = PrivateKey::deserialize(&p.private_key)
            .map_err(|_| Error::InvalidRecord("PreKeyRecord private key is invalid"))?;
        let public = PublicKey::deserialize(&p.public_key)
            .map_err(|_| Error::InvalidRecord("PreKeyRecord public key is invalid"))?;
        if private.public_key() != public {
            return Err(Error::InvalidRecord("PreKeyRecord key pair does not match"));
        }
        Ok(Self::new(p.id, private))
    }
}

/// A signed EC prekey.
#[derive(Clone, Debug)]
pub struct SignedPreKeyRecord {
    /// Its id.
    pub id: u32,
    /// The key pair.
    pub key_pair: KeyPair,
    /// XEdDSA signature by the identity key over the 33-byte public key.
    pub signature: Vec<u8>,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
}

impl SignedPreKeyRecord {
    /// A new signed prekey for `identity`.
    pub fn generate(id: u32, identity: &IdentityKeyPair, timestamp: u64) -> Self {
        let key_pair = KeyPair::generate();
        let signature = identity
            .private_key
            .sign(&key_pair.public_key.serialize())
            .to_vec();
        Self {
            id,
            key_pair,
            signature,
            timestamp,
        }
    }

    /// libsignal's `SignedPreKeyRecordStructure`.
    pub fn serialize(&self) -> Vec<u8> {
        storage::SignedPreKeyRecordStructure {
            id: self.id,
            public_key: self.key_pair.public_key.serialize().to_vec(),
            private_key: self.key_pair.private_key.serialize().to_vec(),
            signature: self.signature.clone(),
            timestamp: self.timestamp,
        }
        .encode_to_vec()
    }

    /// Parses `SignedPreKeyRecordStructure`.
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let p = storage::SignedPreKeyRecordStructure::decode(data)
            .map_err(|_| Error::InvalidRecord("SignedPreKeyRecord protobuf is invalid"))?;
        let private = PrivateKey::deserialize(&p.private_key)
            .map_err(|_| Error::InvalidRecord("SignedPreKeyRecord private key is invalid"))?;
        let public = PublicKey::deserialize(&p.public_key)
            .map_err(|_| Error::InvalidRecord("SignedPreKeyRecord public key is invalid"))?;
        if private.public_key() != public {
            return Err(Error::InvalidRecord(
                "SignedPreKeyRecord key pair does not match",
            ));
        }
        Ok(Self {
            id: p.id,
            key_pair: KeyPair::from_private(private),
            signature: p.signature.clone(),
            timestamp: p.timestamp,
        })
    }
}

/// A signed Kyber prekey (libsignal reuses `SignedPreKeyRecordStructure` with KEM keys).
#[derive(Clone, Debug)]
pub struct KyberPreKeyRecord {
    /// Its id.
    pub id: u32,
    /// The KEM key pair.
    pub key_pair: kem::KeyPair,
    /// XEdDSA signature by the identity key over the serialized public key.
    pub signature: Vec<u8>,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
}

impl KyberPreKeyRecord {
    /// A new Kyber-1024 prekey signed by `identity`.
    pub fn generate(id: u32, identity: &IdentityKeyPair, timestamp: u64) -> Result<Self> {
        let key_pair = kem::KeyPair::generate(kem::KeyType::Kyber1024)?;
        let signature = identity
            .private_key
            .sign(&key_pair.public_key.serialize())
            .to_vec();
        Ok(Self {
            id,
            key_pair,
            signature,
            timestamp,
        })
    }

    /// libsignal's record layout.
    pub fn serialize(&self) -> Vec<u8> {
        storage::SignedPreKeyRecordStructure {
            id: self.id,
            public_key: self.key_pair.public_key.serialize(),
            private_key: self.key_pair.secret_key.serialize(),
            signature: self.signature.clone(),
            timestamp: self.timestamp,
        }
        .encode_to_vec()
    }

    /// Parses libsignal's record layout.
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let p = storage::SignedPreKeyRecordStructure::decode(data)
            .map_err(|_| Error::InvalidRecord("KyberPreKeyRecord protobuf is invalid"))?;
        let public = kem::PublicKey::deserialize(&p.public_key)
            .map_err(|_| Error::InvalidRecord("KyberPreKeyRecord public key is invalid"))?;
        let secret = kem::SecretKey::deserialize(&p.private_key)
            .map_err(|_| Error::InvalidRecord("KyberPreKeyRecord secret key is invalid"))?;
        Ok(Self {
            id: p.id,
            key_pair: kem::KeyPair::new(secret, public)?,
            signature: p.signature.clone(),
            timestamp: p.timestamp,
        })
    }
}

/// The Kyber part of a bundle.
#[derive(Clone, Debug)]
pub struct KyberBundlePart {
    /// Kyber prekey id.
    pub id: u32,
    /// Kyber public key.
    pub public_key: kem::PublicKey,
    /// Its signature by the identity key.
    pub signature: Vec<u8>,
}

/// A public prekey bundle. No Kyber part means X3DH (v3); with it, PQXDH (v4).
#[derive(Clone, Debug)]
pub struct PreKeyBundle {
    /// The owner's registration id.
    pub registration_id: u32,
    /// The owner's device id.
    pub device_id: u32,
    /// The owner's identity key.
    pub identity_key: PublicKey,
    /// Signed prekey id.
    pub signed_prekey_id: u32,
    /// Signed prekey.
    pub signed_prekey: PublicKey,
    /// Its signature.
    pub signed_prekey_signature: Vec<u8>,
    /// Optional one-time prekey.
    pub prekey: Option<(u32, PublicKey)>,
    /// Optional Kyber prekey.
    pub kyber: Option<KyberBundlePart>,
}

impl PreKeyBundle {
    /// Verifies the signed-prekey signature and, if present, the Kyber prekey signature.
    pub fn verify_signatures(&self) -> Result<()> {
        if !self.identity_key.verify_signature(
            &self.signed_prekey.serialize(),
            &self.signed_prekey_signature,
        ) {
            return Err(Error::InvalidSignature("signed prekey signature"));
        }
        if let Some(k) = &self.kyber {
            if !self
                .identity_key
                .verify_signature(&k.public_key.serialize(), &k.signature)
            {
                return Err(Error::InvalidSignature("Kyber prekey signature"));
            }
        }
        Ok(())
    }
}

/// A new bundle's private parts, to be stored by the caller.
#[derive(Debug)]
pub struct NewBundle {
    /// The public bundle.
    pub bundle: PreKeyBundle,
    /// The signed prekey.
    pub signed_prekey: SignedPreKeyRecord,
    /// The one-time EC prekey, if any.
    pub prekey: Option<PreKeyRecord>,
    /// The Kyber prekey, if any.
    pub kyber_prekey: Option<KyberPreKeyRecord>,
}

/// What [`generate_bundle`] makes.
#[derive(Debug, Clone, Copy)]
pub struct BundleSpec {
    /// The device id the bundle announces.
    pub device_id: u32,
    /// One-time EC prekey id (None: no one-time prekey).
    pub prekey_id: Option<u32>,
    /// Signed prekey id.
    pub signed_prekey_id: u32,
    /// Kyber prekey id (None: no Kyber prekey, an X3DH bundle).
    pub kyber_prekey_id: Option<u32>,
    /// Timestamp of the signed and Kyber prekeys (ms since the epoch).
    pub timestamp_ms: u64,
}

/// Generates the prekeys of a bundle (signed, optional one-time, optional Kyber) for
/// `identity` and the public bundle announcing them.
pub fn generate_bundle(
    identity: &IdentityKeyPair,
    registration_id: u32,
    spec: &BundleSpec,
) -> Result<NewBundle> {
    let signed = SignedPreKeyRecord::generate(spec.signed_prekey_id, identity, spec.timestamp_ms);
    let prekey = spec
        .prekey_id
        .map(|id| PreKeyRecord::new(id, PrivateKey::generate()));
    let kyber = spec
        .kyber_prekey_id
        .map(|id| KyberPreKeyRecord::generate(id, identity, spec.timestamp_ms))
        .transpose()?;
    let bundle = PreKeyBundle {
        registration_id,
        device_id: spec.device_id,
        identity_key: identity.public_key,
        signed_prekey_id: signed.id,
        signed_prekey: signed.key_pair.public_key,
        signed_prekey_signature: signed.signature.clone(),
        prekey: prekey.as_ref().map(|r| (r.id, r.key_pair.public_key)),
        kyber: kyber.as_ref().map(|r| KyberBundlePart {
            id: r.id,
            public_key: r.key_pair.public_key.clone(),
            signature: r.signature.clone(),
        }),
    };
    Ok(NewBundle {
        bundle,
        signed_prekey: signed,
        prekey,
        kyber_prekey: kyber,
    })
}
