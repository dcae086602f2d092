//! Sealed sender v1 and v2 (protocol-notes §9), wire-compatible with libsignal.
//!
//! * Certificates: a trust root signs a [`ServerCertificate`] (key id + server key); the server
//!   key signs a [`SenderCertificate`] (sender uuid / e164 / device, identity key, expiry).
//!   Signatures are XEdDSA. Key id `0xDEADC357` is revoked.
//! * The sealed plaintext is an [`UnidentifiedSenderMessageContent`] (USMC): the inner message
//!   type and bytes, the sender certificate, a content hint and an optional group id.
//! * v1 (`0x11`): one recipient; an ephemeral X25519 key hides the sender's identity key
//!   (AES-256-CTR + 10-byte HMAC), a key derived from both identities encrypts the USMC.
//! * v2: one AES-256-GCM-SIV ciphertext of the USMC for many recipients; per recipient a
//!   32-byte wrapped message key `C` and a 16-byte sender authentication tag `AT`. The sent
//!   (client to server) form lists the recipients; the received form (`0x22`) is what one
//!   recipient gets.
//!
//! Decryption to the USMC checks the envelope (MACs / AEAD, the sender's identity key against
//! the certificate's key) but not the certificate: [`SenderCertificate::validate`] does that.
//! [`sealed_sender_decrypt`] does both and then decrypts a 1:1 inner message with the store.

use aes_gcm_siv::aead::AeadInPlace;
use aes_gcm_siv::{Aes256GcmSiv, KeyInit};
use prost::Message as _;
use rand_core::{CryptoRng, OsRng, RngCore};
use rayon::prelude::*;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::address::Address;
use crate::crypto;
use crate::curve::{KeyPair, PrivateKey, PublicKey};
use crate::error::{Error, Result};
use crate::message::{
    CiphertextMessage, PreKeySignalMessage, SignalMessage, PREKEY_TYPE, SENDERKEY_TYPE,
    WHISPER_TYPE,
};
use crate::prekey::IdentityKeyPair;
use crate::proto_sealed as pb;
use crate::session;
use crate::store::ProtocolStore;

/// The `CiphertextMessageType` of a PlaintextContent message.
pub const PLAINTEXT_CONTENT_TYPE: u8 = 8;
/// Server certificate key ids that are revoked (libsignal's test id).
pub const REVOKED_SERVER_CERTIFICATE_KEY_IDS: [u32; 1] = [0xDEADC357];
/// Version byte of sealed sender v1.
pub const V1_VERSION: u8 = 0x11;
/// Version byte of the v2 received form (and of the legacy sent form with 16-byte ACIs).
pub const V2_UUID_VERSION: u8 = 0x22;
/// Version byte of the v2 sent form with 17-byte service ids.
pub const V2_SERVICE_ID_VERSION: u8 = 0x23;
/// Registration ids fit in 14 bits.
pub const REGISTRATION_ID_MASK: u16 = 0x3FFF;
/// The largest device id (device ids are one byte on the v2 wire, 1..=127).
pub const MAX_DEVICE_ID: u32 = 127;

const V1_MAC_LEN: usize = 10;
const V2_MESSAGE_KEY_LEN: usize = 32;
const V2_AUTH_TAG_LEN: usize = 16;
const V2_PUBLIC_KEY_LEN: usize = 32;
const V2_LABEL_R: &[u8] = b"Sealed Sender v2: r (2023-08)";
const V2_LABEL_K: &[u8] = b"Sealed Sender v2: K";
const V2_LABEL_DH: &[u8] = b"Sealed Sender v2: DH";
const V2_LABEL_DH_S: &[u8] = b"Sealed Sender v2: DH-sender";

fn bad_cert(what: &'static str) -> Error {
    Error::InvalidCertificate(what)
}

// ---------------------------------------------------------------------------------------------
// Service ids
// ---------------------------------------------------------------------------------------------

/// Parses a hyphenated UUID (case-insensitive) to its 16 bytes.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0usize;
    let mut i = 0usize;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        let hi = (b[i] as char).to_digit(16)?;
        let lo = (*b.get(i + 1)? as char).to_digit(16)?;
        if n >= 16 {
            return None;
        }
        out[n] = ((hi << 4) | lo) as u8;
        n += 1;
        i += 2;
    }
    (n == 16).then_some(out)
}

/// The lowercase hyphenated form of 16 UUID bytes.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, byte) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{byte:02x}"));
    }
    s
}

/// A service id string (`uuid` for an ACI, `PNI:uuid` for a PNI) in its 17-byte fixed-width
/// binary form (kind byte 0 ACI / 1 PNI, then the UUID).
pub fn service_id_fixed_width(s: &str) -> Result<[u8; 17]> {
    let (kind, rest) = match s.strip_prefix("PNI:") {
        Some(rest) => (1u8, rest),
        None => (0u8, s),
    };
    let u = parse_uuid(rest).ok_or(Error::InvalidArgument(
        "a service id must be a UUID (ACI) or PNI:UUID",
    ))?;
    let mut out = [0u8; 17];
    out[0] = kind;
    out[1..].copy_from_slice(&u);
    Ok(out)
}

/// The string form of a 17-byte fixed-width service id.
pub fn service_id_string(b: &[u8; 17]) -> Result<String> {
    let mut u = [0u8; 16];
    u.copy_from_slice(&b[1..]);
    match b[0] {
        0 => Ok(format_uuid(&u)),
        1 => Ok(format!("PNI:{}", format_uuid(&u))),
        _ => Err(Error::InvalidMessage("unknown service id kind")),
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/// A server certificate: a server key and its id, signed by a trust root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCertificate {
    key_id: u32,
    key: PublicKey,
    certificate: Vec<u8>,
    signature: Vec<u8>,
    serialized: Vec<u8>,
}

impl ServerCertificate {
    /// Creates and signs a server certificate with the trust root's private key.
    pub fn new(key_id: u32, key: &PublicKey, trust_root: &PrivateKey) -> Result<Self> {
        Self::new_with(key_id, key, trust_root, &mut OsRng)
    }

    /// [`ServerCertificate::new`] with the signature randomness from `rng`.
    pub fn new_with<R: RngCore + CryptoRng>(
        key_id: u32,
        key: &PublicKey,
        trust_root: &PrivateKey,
        rng: &mut R,
    ) -> Result<Self> {
        let certificate = pb::ServerCertificateData {
            id: Some(key_id),
            key: Some(key.serialize().to_vec()),
        }
        .encode_to_vec();
        let signature = trust_root
            .sign_multipart_with(&[&certificate], rng)
            .to_vec();
        let serialized = pb::ServerCertificate {
            certificate: Some(certificate.clone()),
            signature: Some(signature.clone()),
        }
        .encode_to_vec();
        Ok(Self {
            key_id,
            key: *key,
            certificate,
            signature,
            serialized,
        })
    }

    /// Parses the serialized form.
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let outer = pb::ServerCertificate::decode(data)
            .map_err(|_| bad_cert("server certificate is not a valid protobuf"))?;
        let (Some(certificate), Some(signature)) = (outer.certificate, outer.signature) else {
            return Err(bad_cert("server certificate lacks its data or signature"));
        };
        let inner = pb::ServerCertificateData::decode(certificate.as_slice())
            .map_err(|_| bad_cert("server certificate data is not a valid protobuf"))?;
        let key_id = inner
            .id
            .ok_or(bad_cert("server certificate has no key id"))?;
        let key = inner
            .key
            .ok_or(bad_cert("server certificate has no key"))
            .and_then(|k| {
                PublicKey::deserialize(&k)
                    .map_err(|_| bad_cert("server certificate key is invalid"))
            })?;
        Ok(Self {
            key_id,
            key,
            certificate,
            signature,
            serialized: data.to_vec(),
        })
    }

    /// Checks the key id is not revoked and the trust root signed this certificate.
    pub fn validate(&self, trust_root: &PublicKey) -> Result<()> {
        self.validate_with_trust_roots(std::slice::from_ref(trust_root))
    }

    /// Like [`ServerCertificate::validate`], accepting a signature by any of `trust_roots`.
    /// Every root is checked (which one signed is not revealed by timing).
    pub fn validate_with_trust_roots(&self, trust_roots: &[PublicKey]) -> Result<()> {
        if REVOKED_SERVER_CERTIFICATE_KEY_IDS.contains(&self.key_id) {
            return Err(bad_cert("server certificate key id is revoked"));
        }
        let mut any = Choice::from(0u8);
        for root in trust_roots {
            any |= Choice::from(u8::from(
                root.verify_signature(&self.certificate, &self.signature),
            ));
        }
        if !bool::from(any) {
            return Err(bad_cert(
                "server certificate is not signed by the trust root",
            ));
        }
        Ok(())
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }
    /// The server's public key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }
    /// The signed certificate data.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }
    /// The trust root's signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
    /// The serialized form.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// Who signed a sender certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateSigner {
    /// An embedded server certificate.
    Embedded(ServerCertificate),
    /// The id of a server certificate the receiver must already know.
    Reference(u32),
}

/// A sender certificate: the sender's address and identity key, signed by a server key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderCertificate {
    signer: CertificateSigner,
    key: PublicKey,
    sender_device_id: u32,
    sender_uuid: String,
    sender_e164: Option<String>,
    expiration: u64,
    certificate: Vec<u8>,
    signature: Vec<u8>,
    serialized: Vec<u8>,
}

/// The fields of a new sender certificate.
pub struct SenderCertificateParts<'a> {
    /// The sender's ACI (a UUID string).
    pub sender_uuid: &'a str,
    /// The sender's phone number, if it is to be shown.
    pub sender_e164: Option<&'a str>,
    /// The sender's device id (1..=127).
    pub sender_device_id: u32,
    /// The sender's identity key.
    pub identity_key: &'a PublicKey,
    /// Expiry, milliseconds since 1970 (valid up to and including this instant).
    pub expiration: u64,
}

impl SenderCertificate {
    /// Creates a sender certificate signed by `server_key`, embedding `server_certificate`.
    pub fn new(
        parts: SenderCertificateParts<'_>,
        server_certificate: &ServerCertificate,
        server_key: &PrivateKey,
    ) -> Result<Self> {
        Self::new_with(parts, server_certificate, server_key, &mut OsRng)
    }

    /// [`SenderCertificate::new`] with the signature randomness from `rng`.
    pub fn new_with<R: RngCore + CryptoRng>(
        parts: SenderCertificateParts<'_>,
        server_certificate: &ServerCertificate,
        server_key: &PrivateKey,
        rng: &mut R,
    ) -> Result<Self> {
        if !(1..=MAX_DEVICE_ID).contains(&parts.sender_device_id) {
            return Err(Error::InvalidArgument("device id must be 1..=127"));
        }
        let certificate = pb::SenderCertificateData {
            sender_e164: parts.sender_e164.map(str::to_owned),
            sender_device: Some(parts.sender_device_id),
            expires: Some(parts.expiration),
            identity_key: Some(parts.identity_key.serialize().to_vec()),
            signer: Some(pb::Signer::Certificate(
                server_certificate.serialized().to_vec(),
            )),
            sender_uuid: Some(pb::SenderUuid::UuidString(parts.sender_uuid.to_owned())),
        }
        .encode_to_vec();
        let signature = server_key
            .sign_multipart_with(&[&certificate], rng)
            .to_vec();
        let serialized = pb::SenderCertificate {
            certificate: Some(certificate.clone()),
            signature: Some(signature.clone()),
        }
        .encode_to_vec();
        Ok(Self {
            signer: CertificateSigner::Embedded(server_certificate.clone()),
            key: *parts.identity_key,
            sender_device_id: parts.sender_device_id,
            sender_uuid: parts.sender_uuid.to_owned(),
            sender_e164: parts.sender_e164.map(str::to_owned),
            expiration: parts.expiration,
            certificate,
            signature,
            serialized,
        })
    }

    /// Parses the serialized form (does not validate it).
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let outer = pb::SenderCertificate::decode(data)
            .map_err(|_| bad_cert("sender certificate is not a valid protobuf"))?;
        let (Some(certificate), Some(signature)) = (outer.certificate, outer.signature) else {
            return Err(bad_cert("sender certificate lacks its data or signature"));
        };
        let inner = pb::SenderCertificateData::decode(certificate.as_slice())
            .map_err(|_| bad_cert("sender certificate data is not a valid protobuf"))?;
        let sender_device_id = inner
            .sender_device
            .filter(|d| (1..=MAX_DEVICE_ID).contains(d))
            .ok_or(bad_cert(
                "sender certificate device id is missing or out of range",
            ))?;
        let expiration = inner
            .expires
            .ok_or(bad_cert("sender certificate has no expiry"))?;
        let signer = match inner
            .signer
            .ok_or(bad_cert("sender certificate has no signer"))?
        {
            pb::Signer::Certificate(c) => {
                CertificateSigner::Embedded(ServerCertificate::deserialize(&c)?)
            }
            pb::Signer::Id(id) => CertificateSigner::Reference(id),
        };
        let sender_uuid = match inner
            .sender_uuid
            .ok_or(bad_cert("sender certificate has no sender uuid"))?
        {
            pb::SenderUuid::UuidString(s) => s,
            pb::SenderUuid::UuidBytes(b) => {
                let u: [u8; 16] = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad_cert("sender certificate uuid is not 16 bytes"))?;
                format_uuid(&u)
            }
        };
        let key = inner
            .identity_key
            .ok_or(bad_cert("sender certificate has no identity key"))
            .and_then(|k| {
                PublicKey::deserialize(&k)
                    .map_err(|_| bad_cert("sender certificate identity key is invalid"))
            })?;
        Ok(Self {
            signer,
            key,
            sender_device_id,
            sender_uuid,
            sender_e164: inner.sender_e164,
            expiration,
            certificate,
            signature,
            serialized: data.to_vec(),
        })
    }

    /// Validates against one trust root at `validation_time` (ms since 1970).
    pub fn validate(&self, trust_root: &PublicKey, validation_time: u64) -> Result<()> {
        self.validate_with(std::slice::from_ref(trust_root), validation_time, &[])
    }

    /// Validates: the server certificate (embedded, or found by id in `known_servers`) is not
    /// revoked and is signed by one of `trust_roots`; the server key signed this certificate;
    /// and it has not expired at `validation_time` (ms; valid up to and including `expiration`).
    pub fn validate_with(
        &self,
        trust_roots: &[PublicKey],
        validation_time: u64,
        known_servers: &[ServerCertificate],
    ) -> Result<()> {
        let server = match &self.signer {
            CertificateSigner::Embedded(s) => s,
            CertificateSigner::Reference(id) => known_servers
                .iter()
                .find(|s| s.key_id() == *id)
                .ok_or(bad_cert(
                    "sender certificate names an unknown server certificate",
                ))?,
        };
        server.validate_with_trust_roots(trust_roots)?;
        if !server
            .key()
            .verify_signature(&self.certificate, &self.signature)
        {
            return Err(bad_cert(
                "sender certificate is not signed by its server certificate",
            ));
        }
        if validation_time > self.expiration {
            return Err(bad_cert("sender certificate has expired"));
        }
        Ok(())
    }

    /// The signer.
    pub fn signer(&self) -> &CertificateSigner {
        &self.signer
    }
    /// The embedded server certificate, if any.
    pub fn server_certificate(&self) -> Option<&ServerCertificate> {
        match &self.signer {
            CertificateSigner::Embedded(s) => Some(s),
            CertificateSigner::Reference(_) => None,
        }
    }
    /// The sender's identity key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }
    /// The sender's device id.
    pub fn sender_device_id(&self) -> u32 {
        self.sender_device_id
    }
    /// The sender's uuid string.
    pub fn sender_uuid(&self) -> &str {
        &self.sender_uuid
    }
    /// The sender's phone number, if present.
    pub fn sender_e164(&self) -> Option<&str> {
        self.sender_e164.as_deref()
    }
    /// The sender's address (uuid, device).
    pub fn sender_address(&self) -> Address {
        Address::new(self.sender_uuid.clone(), self.sender_device_id)
    }
    /// Expiry (ms since 1970).
    pub fn expiration(&self) -> u64 {
        self.expiration
    }
    /// The signed certificate data.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }
    /// The server's signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
    /// The serialized form.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

// ---------------------------------------------------------------------------------------------
// The sealed content
// ---------------------------------------------------------------------------------------------

fn proto_type_from_ciphertext_type(t: u8) -> Result<i32> {
    match t {
        PREKEY_TYPE => Ok(1),
        WHISPER_TYPE => Ok(2),
        SENDERKEY_TYPE => Ok(7),
        PLAINTEXT_CONTENT_TYPE => Ok(8),
        _ => Err(Error::InvalidArgument(
            "sealed message type must be 2 (whisper), 3 (prekey), 7 (sender key) or 8 (plaintext)",
        )),
    }
}

fn ciphertext_type_from_proto(t: i32) -> Result<u8> {
    match t {
        1 => Ok(PREKEY_TYPE),
        2 => Ok(WHISPER_TYPE),
        7 => Ok(SENDERKEY_TYPE),
        8 => Ok(PLAINTEXT_CONTENT_TYPE),
        _ => Err(Error::InvalidMessage(
            "sealed content has an unknown message type",
        )),
    }
}

/// `UnidentifiedSenderMessage.Message`: what sealed sender encrypts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnidentifiedSenderMessageContent {
    msg_type: u8,
    sender: SenderCertificate,
    contents: Vec<u8>,
    content_hint: u32,
    group_id: Option<Vec<u8>>,
    serialized: Vec<u8>,
}

impl UnidentifiedSenderMessageContent {
    /// Builds the content. `msg_type` is a `CiphertextMessageType` (2, 3, 7 or 8);
    /// `content_hint` 0 (default), 1 (resendable), 2 (implicit) or another raw value; an empty
    /// group id is the same as none.
    pub fn new(
        msg_type: u8,
        sender: SenderCertificate,
        contents: Vec<u8>,
        content_hint: u32,
        group_id: Option<Vec<u8>>,
    ) -> Result<Self> {
        let proto_type = proto_type_from_ciphertext_type(msg_type)?;
        let group_id = group_id.filter(|g| !g.is_empty());
        let serialized = pb::UnidentifiedSenderMessageContent {
            r#type: Some(proto_type),
            sender_certificate: Some(sender.serialized().to_vec()),
            content: Some(contents.clone()),
            content_hint: (content_hint != 0).then_some(content_hint as i32),
            group_id: group_id.clone(),
        }
        .encode_to_vec();
        Ok(Self {
            msg_type,
            sender,
            contents,
            content_hint,
            group_id,
            serialized,
        })
    }

    /// Parses the serialized form.
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let p = pb::UnidentifiedSenderMessageContent::decode(data)
            .map_err(|_| Error::InvalidMessage("sealed content is not a valid protobuf"))?;
        let msg_type = ciphertext_type_from_proto(
            p.r#type
                .ok_or(Error::InvalidMessage("sealed content has no message type"))?,
        )?;
        let sender = SenderCertificate::deserialize(&p.sender_certificate.ok_or(
            Error::InvalidMessage("sealed content has no sender certificate"),
        )?)?;
        let contents = p
            .content
            .ok_or(Error::InvalidMessage("sealed content has no inner message"))?;
        Ok(Self {
            msg_type,
            sender,
            contents,
            content_hint: p.content_hint.map_or(0, |h| h as u32),
            group_id: p.group_id,
            serialized: data.to_vec(),
        })
    }

    /// The inner message's `CiphertextMessageType` (2, 3, 7 or 8).
    pub fn msg_type(&self) -> u8 {
        self.msg_type
    }
    /// The sender certificate (not validated by parsing).
    pub fn sender(&self) -> &SenderCertificate {
        &self.sender
    }
    /// The inner message bytes.
    pub fn contents(&self) -> &[u8] {
        &self.contents
    }
    /// The content hint (0 default, 1 resendable, 2 implicit).
    pub fn content_hint(&self) -> u32 {
        self.content_hint
    }
    /// The group id, if any.
    pub fn group_id(&self) -> Option<&[u8]> {
        self.group_id.as_deref()
    }
    /// The serialized form.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

// ---------------------------------------------------------------------------------------------
// v1
// ---------------------------------------------------------------------------------------------

/// A 32-byte secret, zeroized on drop.
type Key32 = Zeroizing<[u8; 32]>;

struct V1EphemeralKeys {
    chain_key: Zeroizing<[u8; 32]>,
    cipher_key: Zeroizing<[u8; 32]>,
    mac_key: Zeroizing<[u8; 32]>,
}

fn split96(okm: &[u8; 96]) -> (Key32, Key32, Key32) {
    let mut a = Zeroizing::new([0u8; 32]);
    let mut b = Zeroizing::new([0u8; 32]);
    let mut c = Zeroizing::new([0u8; 32]);
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..64]);
    c.copy_from_slice(&okm[64..]);
    (a, b, c)
}

fn v1_ephemeral_keys(
    shared: &[u8; 32],
    recipient: &PublicKey,
    ephemeral: &PublicKey,
) -> Result<V1EphemeralKeys> {
    let mut salt = Vec::with_capacity(20 + 66);
    salt.extend_from_slice(b"UnidentifiedDelivery");
    salt.extend_from_slice(&recipient.serialize());
    salt.extend_from_slice(&ephemeral.serialize());
    let mut okm = Zeroizing::new([0u8; 96]);
    crypto::hkdf_sha256(Some(&salt), shared, &[], okm.as_mut())?;
    let (chain_key, cipher_key, mac_key) = split96(&okm);
    Ok(V1EphemeralKeys {
        chain_key,
        cipher_key,
        mac_key,
    })
}

/// (cipher key, mac key) of the static layer.
fn v1_static_keys(
    shared: &[u8; 32],
    chain_key: &[u8; 32],
    encrypted_static: &[u8],
) -> Result<(Key32, Key32)> {
    let mut salt = Vec::with_capacity(32 + encrypted_static.len());
    salt.extend_from_slice(chain_key);
    salt.extend_from_slice(encrypted_static);
    let mut okm = Zeroizing::new([0u8; 96]);
    crypto::hkdf_sha256(Some(&salt), shared, &[], okm.as_mut())?;
    let (_, cipher_key, mac_key) = split96(&okm);
    Ok((cipher_key, mac_key))
}

fn ctr_hmac_encrypt(plaintext: &[u8], cipher_key: &[u8; 32], mac_key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len() + V1_MAC_LEN);
    out.extend_from_slice(plaintext);
    crypto::aes256_ctr32_apply(cipher_key, &[0u8; 16], &mut out);
    let mac = crypto::hmac_sha256(mac_key, &[&out]);
    out.extend_from_slice(&mac[..V1_MAC_LEN]);
    out
}

fn ctr_hmac_decrypt(
    data: &[u8],
    cipher_key: &[u8; 32],
    mac_key: &[u8; 32],
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>> {
    if data.len() < V1_MAC_LEN {
        return Err(Error::InvalidMessage(what));
    }
    let (ct, mac) = data.split_at(data.len() - V1_MAC_LEN);
    let ours = crypto::hmac_sha256(mac_key, &[ct]);
    if !crypto::ct_eq(&ours[..V1_MAC_LEN], mac) {
        return Err(Error::InvalidMessage(what));
    }
    let mut pt = Zeroizing::new(ct.to_vec());
    crypto::aes256_ctr32_apply(cipher_key, &[0u8; 16], &mut pt);
    Ok(pt)
}

/// Seals `usmc` for one recipient (v1). The sender's identity must be the key in the USMC's
/// certificate for the recipient to accept it.
pub fn encrypt_v1(
    usmc: &UnidentifiedSenderMessageContent,
    sender: &IdentityKeyPair,
    recipient: &PublicKey,
) -> Result<Vec<u8>> {
    encrypt_v1_with(usmc, sender, recipient, &mut OsRng)
}

/// [`encrypt_v1`] with the ephemeral key from `rng`.
pub fn encrypt_v1_with<R: RngCore + CryptoRng>(
    usmc: &UnidentifiedSenderMessageContent,
    sender: &IdentityKeyPair,
    recipient: &PublicKey,
    rng: &mut R,
) -> Result<Vec<u8>> {
    let ephemeral = KeyPair::from_private(PrivateKey::generate_with(rng));
    let eph = v1_ephemeral_keys(
        &*ephemeral.private_key.agree(recipient)?,
        recipient,
        &ephemeral.public_key,
    )?;
    let encrypted_static = ctr_hmac_encrypt(
        &sender.public_key.serialize(),
        &eph.cipher_key,
        &eph.mac_key,
    );
    let (cipher_key, mac_key) = v1_static_keys(
        &*sender.private_key.agree(recipient)?,
        &eph.chain_key,
        &encrypted_static,
    )?;
    let encrypted_message = ctr_hmac_encrypt(usmc.serialized(), &cipher_key, &mac_key);
    let body = pb::UnidentifiedSenderMessage {
        ephemeral_public: Some(ephemeral.public_key.serialize().to_vec()),
        encrypted_static: Some(encrypted_static),
        encrypted_message: Some(encrypted_message),
    };
    let mut out = Vec::with_capacity(1 + body.encoded_len());
    out.push(V1_VERSION);
    body.encode(&mut out)
        .map_err(|_| Error::InvalidMessage("encoding failed"))?;
    Ok(out)
}

fn decrypt_v1(body: &[u8], ours: &IdentityKeyPair) -> Result<UnidentifiedSenderMessageContent> {
    let p = pb::UnidentifiedSenderMessage::decode(body)
        .map_err(|_| Error::InvalidMessage("sealed sender v1 envelope is not a valid protobuf"))?;
    let (Some(eph_pub), Some(encrypted_static), Some(encrypted_message)) =
        (p.ephemeral_public, p.encrypted_static, p.encrypted_message)
    else {
        return Err(Error::InvalidMessage(
            "sealed sender v1 envelope is missing a field",
        ));
    };
    let eph_pub = PublicKey::deserialize(&eph_pub)
        .map_err(|_| Error::InvalidMessage("sealed sender v1 ephemeral key is invalid"))?;
    let eph = v1_ephemeral_keys(
        &*ours
            .private_key
            .agree(&eph_pub)
            .map_err(|_| Error::InvalidMessage("sealed sender v1 ephemeral key is invalid"))?,
        &ours.public_key,
        &eph_pub,
    )?;
    let static_key_bytes = ctr_hmac_decrypt(
        &encrypted_static,
        &eph.cipher_key,
        &eph.mac_key,
        "failed to decrypt the sealed sender v1 sender key",
    )?;
    let static_key = PublicKey::deserialize(&static_key_bytes)
        .map_err(|_| Error::InvalidMessage("sealed sender v1 sender key is invalid"))?;
    let (cipher_key, mac_key) = v1_static_keys(
        &*ours
            .private_key
            .agree(&static_key)
            .map_err(|_| Error::InvalidMessage("sealed sender v1 sender key is invalid"))?,
        &eph.chain_key,
        &encrypted_static,
    )?;
    let plaintext = ctr_hmac_decrypt(
        &encrypted_message,
        &cipher_key,
        &mac_key,
        "failed to decrypt the sealed sender v1 message",
    )?;
    let usmc = UnidentifiedSenderMessageContent::deserialize(&plaintext)?;
    if !crypto::ct_eq(&static_key_bytes, &usmc.sender().key().serialize()) {
        return Err(Error::InvalidMessage(
            "sender certificate key does not match the sealed sender key",
        ));
    }
    Ok(usmc)
}

// ---------------------------------------------------------------------------------------------
// v2
// ---------------------------------------------------------------------------------------------

struct V2Keys {
    e: KeyPair,
    k: Zeroizing<[u8; 32]>,
}

fn v2_keys(m: &[u8; V2_MESSAGE_KEY_LEN]) -> Result<V2Keys> {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, m);
    let mut r = Zeroizing::new([0u8; 32]);
    let mut k = Zeroizing::new([0u8; 32]);
    hk.expand(V2_LABEL_R, r.as_mut())
        .and_then(|_| hk.expand(V2_LABEL_K, k.as_mut()))
        .map_err(|_| Error::InvalidArgument("HKDF output too long"))?;
    Ok(V2Keys {
        e: KeyPair::from_private(PrivateKey::deserialize(r.as_ref())?),
        k,
    })
}

/// `C = HKDF(DH(e, R) || e_pub || R_pub, "…DH", 32) XOR m` (and its inverse).
fn v2_xor_key(
    shared: &[u8; 32],
    e_pub: &PublicKey,
    recipient: &PublicKey,
    input: &[u8; V2_MESSAGE_KEY_LEN],
) -> Result<Zeroizing<[u8; V2_MESSAGE_KEY_LEN]>> {
    let mut ikm = Zeroizing::new([0u8; 32 + 33 + 33]);
    ikm[..32].copy_from_slice(shared);
    ikm[32..65].copy_from_slice(&e_pub.serialize());
    ikm[65..].copy_from_slice(&recipient.serialize());
    let mut out = Zeroizing::new([0u8; V2_MESSAGE_KEY_LEN]);
    crypto::hkdf_sha256(None, ikm.as_ref(), V2_LABEL_DH, out.as_mut())?;
    for (o, i) in out.iter_mut().zip(input) {
        *o ^= i;
    }
    Ok(out)
}

/// `AT = HKDF(DH(S, R) || e_pub || C || S_pub || R_pub, "…DH-sender", 16)`.
fn v2_auth_tag(
    shared: &[u8; 32],
    e_pub: &PublicKey,
    c: &[u8; V2_MESSAGE_KEY_LEN],
    sender: &PublicKey,
    recipient: &PublicKey,
) -> Result<[u8; V2_AUTH_TAG_LEN]> {
    let mut ikm = Zeroizing::new([0u8; 32 + 33 + 32 + 33 + 33]);
    ikm[..32].copy_from_slice(shared);
    ikm[32..65].copy_from_slice(&e_pub.serialize());
    ikm[65..97].copy_from_slice(c);
    ikm[97..130].copy_from_slice(&sender.serialize());
    ikm[130..].copy_from_slice(&recipient.serialize());
    let mut out = [0u8; V2_AUTH_TAG_LEN];
    crypto::hkdf_sha256(None, ikm.as_ref(), V2_LABEL_DH_S, &mut out)?;
    Ok(out)
}

/// One device of a v2 recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecipientDevice {
    /// Device id, 1..=127.
    pub device_id: u32,
    /// Registration id, 14 bits.
    pub registration_id: u32,
}

/// A v2 recipient: a service id with its identity key and devices (all devices of a service
/// id share one identity key and one `C`/`AT` pair).
#[derive(Clone, Debug)]
pub struct MultiRecipient {
    /// The service id string (`uuid` or `PNI:uuid`).
    pub service_id: String,
    /// The recipient's identity key.
    pub identity_key: PublicKey,
    /// The recipient's devices (at least one).
    pub devices: Vec<RecipientDevice>,
}

fn encode_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn decode_varint(buf: &mut &[u8]) -> Result<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first().ok_or(Error::InvalidMessage(
            "sealed sender v2 message is truncated",
        ))?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Error::InvalidMessage(
        "sealed sender v2 recipient count is too long",
    ))
}

/// Seals `usmc` once for many recipients (v2 sent form, version `0x23`). `excluded` are
/// service ids deliberately left out (listed with no devices). Per-recipient key agreements
/// run in parallel on the current rayon pool.
pub fn encrypt_v2(
    usmc: &UnidentifiedSenderMessageContent,
    sender: &IdentityKeyPair,
    recipients: &[MultiRecipient],
    excluded: &[String],
) -> Result<Vec<u8>> {
    let mut m = Zeroizing::new([0u8; V2_MESSAGE_KEY_LEN]);
    OsRng.fill_bytes(m.as_mut());
    encrypt_v2_with_m(usmc, sender, recipients, excluded, &m)
}

/// [`encrypt_v2`] with the message secret `m` given (tests only; `m` must be fresh random).
pub fn encrypt_v2_with_m(
    usmc: &UnidentifiedSenderMessageContent,
    sender: &IdentityKeyPair,
    recipients: &[MultiRecipient],
    excluded: &[String],
    m: &[u8; V2_MESSAGE_KEY_LEN],
) -> Result<Vec<u8>> {
    // Check and encode every recipient's header before any expensive work.
    let mut headers = Vec::with_capacity(recipients.len());
    for r in recipients {
        if r.devices.is_empty() {
            return Err(Error::InvalidArgument(
                "a sealed sender v2 recipient needs at least one device",
            ));
        }
        let mut h = Vec::with_capacity(17 + 3 * r.devices.len());
        h.extend_from_slice(&service_id_fixed_width(&r.service_id)?);
        for (i, d) in r.devices.iter().enumerate() {
            if !(1..=MAX_DEVICE_ID).contains(&d.device_id) {
                return Err(Error::InvalidArgument("device id must be 1..=127"));
            }
            let reg = u16::try_from(d.registration_id)
                .ok()
                .filter(|r| r & !REGISTRATION_ID_MASK == 0)
                .ok_or(Error::InvalidArgument(
                    "registration id must fit in 14 bits",
                ))?;
            let more = if i + 1 < r.devices.len() { 0x8000 } else { 0 };
            h.push(d.device_id as u8);
            h.extend_from_slice(&(reg | more).to_be_bytes());
        }
        headers.push(h);
    }
    let mut excluded_ids = Vec::with_capacity(excluded.len());
    for s in excluded {
        excluded_ids.push(service_id_fixed_width(s)?);
    }

    let keys = v2_keys(m)?;
    let e_pub = keys.e.public_key;
    let sender_pub = sender.public_key;

    let per_recipient: Vec<[u8; V2_MESSAGE_KEY_LEN + V2_AUTH_TAG_LEN]> = recipients
        .par_iter()
        .map(|r| {
            let c = v2_xor_key(
                &*keys.e.private_key.agree(&r.identity_key)?,
                &e_pub,
                &r.identity_key,
                m,
            )?;
            let at = v2_auth_tag(
                &*sender.private_key.agree(&r.identity_key)?,
                &e_pub,
                &c,
                &sender_pub,
                &r.identity_key,
            )?;
            let mut out = [0u8; V2_MESSAGE_KEY_LEN + V2_AUTH_TAG_LEN];
            out[..V2_MESSAGE_KEY_LEN].copy_from_slice(c.as_ref());
            out[V2_MESSAGE_KEY_LEN..].copy_from_slice(&at);
            Ok(out)
        })
        .collect::<Result<_>>()?;

    let mut ciphertext = usmc.serialized().to_vec();
    let tag = Aes256GcmSiv::new(keys.k.as_ref().into())
        .encrypt_in_place_detached(&Default::default(), &[], &mut ciphertext)
        .map_err(|_| Error::InvalidMessage("AES-GCM-SIV encryption failed"))?;
    ciphertext.extend_from_slice(&tag);

    let header_len: usize = headers.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(
        1 + 10
            + header_len
            + 48 * recipients.len()
            + 18 * excluded_ids.len()
            + 32
            + ciphertext.len(),
    );
    out.push(V2_SERVICE_ID_VERSION);
    encode_varint((recipients.len() + excluded_ids.len()) as u64, &mut out);
    for (h, kat) in headers.iter().zip(&per_recipient) {
        out.extend_from_slice(h);
        out.extend_from_slice(kat);
    }
    for x in &excluded_ids {
        out.extend_from_slice(x);
        out.push(0);
    }
    out.extend_from_slice(e_pub.djb_bytes());
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// One recipient of a parsed v2 sent message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentRecipient {
    /// The service id string.
    pub service_id: String,
    /// Its devices (empty for an excluded recipient).
    pub devices: Vec<RecipientDevice>,
    c_and_at: Option<[u8; V2_MESSAGE_KEY_LEN + V2_AUTH_TAG_LEN]>,
}

/// A parsed v2 sent message (what a server fans out).
#[derive(Clone, Debug)]
pub struct SentMessage {
    /// The version byte (`0x22` or `0x23`).
    pub version: u8,
    /// Recipients in order of first appearance (excluded ones have no devices).
    pub recipients: Vec<SentRecipient>,
    shared: Vec<u8>,
}

impl SentMessage {
    /// Parses the sent form.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let (&version, mut rest) = data
            .split_first()
            .ok_or(Error::InvalidMessage("sealed sender message is empty"))?;
        if version != V2_UUID_VERSION && version != V2_SERVICE_ID_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let trunc = Error::InvalidMessage("sealed sender v2 message is truncated");
        fn take<'a>(buf: &mut &'a [u8], n: usize, err: &Error) -> Result<&'a [u8]> {
            if buf.len() < n {
                return Err(err.clone());
            }
            let (a, b) = buf.split_at(n);
            *buf = b;
            Ok(a)
        }
        let count = decode_varint(&mut rest)?;
        let mut recipients: Vec<SentRecipient> =
            Vec::with_capacity(usize::try_from(count.min(6000)).unwrap_or(6000));
        for _ in 0..count {
            let service_id = if version == V2_UUID_VERSION {
                let mut u = [0u8; 16];
                u.copy_from_slice(take(&mut rest, 16, &trunc)?);
                format_uuid(&u)
            } else {
                let mut b = [0u8; 17];
                b.copy_from_slice(take(&mut rest, 17, &trunc)?);
                service_id_string(&b)?
            };
            let mut devices = Vec::new();
            loop {
                let device_id = take(&mut rest, 1, &trunc)?[0];
                if device_id == 0 {
                    if !devices.is_empty() {
                        return Err(Error::InvalidMessage(
                            "sealed sender v2 device list has a zero device id",
                        ));
                    }
                    break;
                }
                if u32::from(device_id) > MAX_DEVICE_ID {
                    return Err(Error::InvalidMessage(
                        "sealed sender v2 device id is out of range",
                    ));
                }
                let r = take(&mut rest, 2, &trunc)?;
                let reg = u16::from_be_bytes([r[0], r[1]]);
                devices.push(RecipientDevice {
                    device_id: u32::from(device_id),
                    registration_id: u32::from(reg & REGISTRATION_ID_MASK),
                });
                if reg & 0x8000 == 0 {
                    break;
                }
            }
            let c_and_at = if devices.is_empty() {
                None
            } else {
                let mut k = [0u8; V2_MESSAGE_KEY_LEN + V2_AUTH_TAG_LEN];
                k.copy_from_slice(take(
                    &mut rest,
                    V2_MESSAGE_KEY_LEN + V2_AUTH_TAG_LEN,
                    &trunc,
                )?);
                Some(k)
            };
            match recipients.iter_mut().find(|r| r.service_id == service_id) {
                Some(existing) => {
                    if existing.devices.is_empty() || devices.is_empty() {
                        return Err(Error::InvalidMessage(
                            "sealed sender v2 recipient is listed twice with no devices",
                        ));
                    }
                    existing.devices.extend(devices);
                }
                None => recipients.push(SentRecipient {
                    service_id,
                    devices,
                    c_and_at,
                }),
            }
        }
        if rest.len() < V2_PUBLIC_KEY_LEN {
            return Err(trunc);
        }
        Ok(Self {
            version,
            recipients,
            shared: rest.to_vec(),
        })
    }

    /// The received form (`0x22 || C || AT || e_pub || ciphertext`) for `service_id`.
    pub fn received_message_for(&self, service_id: &str) -> Result<Vec<u8>> {
        let r = self
            .recipients
            .iter()
            .find(|r| r.service_id == service_id)
            .ok_or(Error::InvalidArgument("no such recipient in this message"))?;
        Self::received(r, &self.shared)
    }

    fn received(r: &SentRecipient, shared: &[u8]) -> Result<Vec<u8>> {
        let kat = r.c_and_at.ok_or(Error::InvalidArgument(
            "this recipient is excluded from the message",
        ))?;
        let mut out = Vec::with_capacity(1 + kat.len() + shared.len());
        out.push(V2_UUID_VERSION);
        out.extend_from_slice(&kat);
        out.extend_from_slice(shared);
        Ok(out)
    }

    /// The received form of a message with exactly one recipient (libsignal's
    /// `sealedSenderMultiRecipientMessageForSingleRecipient`).
    pub fn received_message_for_single_recipient(data: &[u8]) -> Result<Vec<u8>> {
        let parsed = Self::parse(data)?;
        match parsed.recipients.as_slice() {
            [only] => Self::received(only, &parsed.shared),
            _ => Err(Error::InvalidArgument(
                "only supports messages with exactly one recipient",
            )),
        }
    }
}

fn decrypt_v2(body: &[u8], ours: &IdentityKeyPair) -> Result<UnidentifiedSenderMessageContent> {
    const PREFIX: usize = V2_MESSAGE_KEY_LEN + V2_AUTH_TAG_LEN + V2_PUBLIC_KEY_LEN;
    if body.len() < PREFIX {
        return Err(Error::InvalidMessage(
            "sealed sender v2 message is truncated",
        ));
    }
    let mut c = [0u8; V2_MESSAGE_KEY_LEN];
    c.copy_from_slice(&body[..32]);
    let at = &body[32..48];
    let mut e_raw = [0u8; 32];
    e_raw.copy_from_slice(&body[48..80]);
    let e_pub = PublicKey::from_djb_bytes(e_raw);
    let ciphertext = &body[PREFIX..];

    let shared = ours
        .private_key
        .agree(&e_pub)
        .map_err(|_| Error::InvalidMessage("sealed sender v2 ephemeral key is invalid"))?;
    let m = v2_xor_key(&shared, &e_pub, &ours.public_key, &c)?;
    let keys = v2_keys(&m)?;
    if !bool::from(keys.e.public_key.djb_bytes().ct_eq(e_pub.djb_bytes())) {
        return Err(Error::InvalidMessage(
            "sealed sender v2 message key does not match its ephemeral key",
        ));
    }
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    Aes256GcmSiv::new(keys.k.as_ref().into())
        .decrypt_in_place(&Default::default(), &[], &mut *plaintext)
        .map_err(|_| Error::InvalidMessage("failed to decrypt the sealed sender v2 message"))?;
    let usmc = UnidentifiedSenderMessageContent::deserialize(&plaintext)?;
    let sender_key = *usmc.sender().key();
    let expected = v2_auth_tag(
        &*ours
            .private_key
            .agree(&sender_key)
            .map_err(|_| Error::InvalidMessage("sender certificate key is invalid"))?,
        &e_pub,
        &c,
        &sender_key,
        &ours.public_key,
    )?;
    if !crypto::ct_eq(&expected, at) {
        return Err(Error::InvalidMessage(
            "sender certificate key does not match the authentication tag",
        ));
    }
    Ok(usmc)
}

// ---------------------------------------------------------------------------------------------
// Decryption entry points
// ---------------------------------------------------------------------------------------------

/// Opens a sealed message (v1, or the v2 received form) addressed to `ours`. Checks the
/// envelope and that the sender's identity key is the one in the certificate; does NOT
/// validate the certificate (see [`SenderCertificate::validate`]).
pub fn decrypt_to_usmc(
    data: &[u8],
    ours: &IdentityKeyPair,
) -> Result<UnidentifiedSenderMessageContent> {
    let (&version, body) = data
        .split_first()
        .ok_or(Error::InvalidMessage("sealed sender message is empty"))?;
    match version >> 4 {
        0 | 1 => decrypt_v1(body, ours),
        2 => decrypt_v2(body, ours),
        v => Err(Error::UnsupportedVersion(v)),
    }
}

/// Where sealed messages must come from and when.
pub struct UnsealOptions<'a> {
    /// Trust roots; the server certificate must be signed by one of them.
    pub trust_roots: &'a [PublicKey],
    /// Validation time, ms since 1970.
    pub timestamp: u64,
    /// Server certificates that sender certificates may name by id.
    pub known_servers: &'a [ServerCertificate],
    /// Our own address: a message claiming to come from it is refused.
    pub local_address: Option<&'a Address>,
}

/// [`decrypt_to_usmc`], then validates the sender certificate and refuses a message from our
/// own address.
pub fn unseal(
    data: &[u8],
    ours: &IdentityKeyPair,
    opts: &UnsealOptions<'_>,
) -> Result<UnidentifiedSenderMessageContent> {
    let usmc = decrypt_to_usmc(data, ours)?;
    usmc.sender()
        .validate_with(opts.trust_roots, opts.timestamp, opts.known_servers)?;
    if let Some(local) = opts.local_address {
        let cert = usmc.sender();
        if cert.sender_uuid().eq_ignore_ascii_case(&local.name)
            && cert.sender_device_id() == local.device_id
        {
            return Err(Error::InvalidMessage(
                "sealed sender message claims to come from this device",
            ));
        }
    }
    Ok(usmc)
}

/// The result of [`sealed_sender_decrypt`].
#[derive(Debug)]
pub struct SealedSenderDecryptionResult {
    /// The validated sealed content.
    pub usmc: UnidentifiedSenderMessageContent,
    /// The decrypted inner 1:1 message.
    pub plaintext: Vec<u8>,
}

/// The 1:1 message inside a sealed-sender content (whisper or prekey); any other content type
/// is refused.
pub fn inner_message(usmc: &UnidentifiedSenderMessageContent) -> Result<CiphertextMessage> {
    match usmc.msg_type() {
        WHISPER_TYPE => Ok(CiphertextMessage::Whisper(SignalMessage::deserialize(
            usmc.contents(),
        )?)),
        PREKEY_TYPE => Ok(CiphertextMessage::PreKey(PreKeySignalMessage::deserialize(
            usmc.contents(),
        )?)),
        _ => Err(Error::InvalidMessage(
            "sealed message is not a 1:1 message (use unseal for sender key and plaintext content)",
        )),
    }
}

/// Decrypts the 1:1 message inside an unsealed (and validated) content from the certificate's
/// sender, with the session options. Nothing is stored unless it decrypts.
pub fn decrypt_usmc_with<S: ProtocolStore>(
    store: &mut S,
    usmc: &UnidentifiedSenderMessageContent,
    options: &session::SessionOptions,
) -> Result<Vec<u8>> {
    let remote = usmc.sender().sender_address().canonical();
    let message = inner_message(usmc)?;
    session::decrypt_with(store, &remote, &message, options)
}

/// Unseals (validating the certificate), then decrypts the inner 1:1 message (whisper or
/// prekey) from the certificate's sender address with the store. Nothing is stored unless
/// everything succeeds. `opts.local_address` also serves as the session's local address.
pub fn sealed_sender_decrypt<S: ProtocolStore>(
    store: &mut S,
    data: &[u8],
    opts: &UnsealOptions<'_>,
) -> Result<SealedSenderDecryptionResult> {
    let options = session::SessionOptions {
        local_address: opts.local_address.cloned(),
        ..Default::default()
    };
    sealed_sender_decrypt_with(store, data, opts, &options)
}

/// [`sealed_sender_decrypt`] with session options (SPQR policy, local address).
pub fn sealed_sender_decrypt_with<S: ProtocolStore>(
    store: &mut S,
    data: &[u8],
    opts: &UnsealOptions<'_>,
    options: &session::SessionOptions,
) -> Result<SealedSenderDecryptionResult> {
    let ours = store.identity_key_pair()?;
    let usmc = unseal(data, &ours, opts)?;
    let plaintext = decrypt_usmc_with(store, &usmc, options)?;
    Ok(SealedSenderDecryptionResult { usmc, plaintext })
}

/// Encrypts `plaintext` with the 1:1 session to `remote`, then seals it (v1) with our
/// certificate. The recipient's identity comes from the store; the session advances only if
/// sealing can succeed.
pub fn sealed_sender_encrypt<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    sender_certificate: &SenderCertificate,
    plaintext: &[u8],
    content_hint: u32,
    group_id: Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    sealed_sender_encrypt_with(
        store,
        remote,
        sender_certificate,
        plaintext,
        content_hint,
        group_id,
        &session::SessionOptions::default(),
    )
}

/// [`sealed_sender_encrypt`] with session options (the local address for field 6).
pub fn sealed_sender_encrypt_with<S: ProtocolStore>(
    store: &mut S,
    remote: &Address,
    sender_certificate: &SenderCertificate,
    plaintext: &[u8],
    content_hint: u32,
    group_id: Option<Vec<u8>>,
    options: &session::SessionOptions,
) -> Result<Vec<u8>> {
    let ours = store.identity_key_pair()?;
    let their = store
        .identity(remote)?
        .ok_or(Error::NoSession("no identity stored for this address"))?;
    // Everything that can fail in sealing fails here, before the session moves.
    ours.private_key.agree(&their)?;
    if sender_certificate.key() != &ours.public_key {
        return Err(Error::InvalidArgument(
            "the sender certificate is not for this store's identity",
        ));
    }
    let msg = session::encrypt_with(store, remote, plaintext, options)?;
    let usmc = UnidentifiedSenderMessageContent::new(
        msg.message_type(),
        sender_certificate.clone(),
        msg.serialized().to_vec(),
        content_hint,
        group_id,
    )?;
    encrypt_v1(&usmc, &ours, &their)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certs(
        sender: &IdentityKeyPair,
        expiration: u64,
    ) -> (PrivateKey, ServerCertificate, PrivateKey, SenderCertificate) {
        let root = PrivateKey::generate();
        let server = PrivateKey::generate();
        let sc = ServerCertificate::new(1, &server.public_key(), &root).unwrap();
        let cert = SenderCertificate::new(
            SenderCertificateParts {
                sender_uuid: "9d0652a3-dcc3-4d11-975f-74d61598733f",
                sender_e164: Some("+14152222222"),
                sender_device_id: 1,
                identity_key: &sender.public_key,
                expiration,
            },
            &sc,
            &server,
        )
        .unwrap();
        (root, sc, server, cert)
    }

    #[test]
    fn uuid_and_service_ids() {
        let s = "9D0652A3-dcc3-4d11-975f-74d61598733f";
        let u = parse_uuid(s).unwrap();
        assert_eq!(format_uuid(&u), s.to_lowercase());
        assert!(parse_uuid("9d0652a3dcc34d11975f74d61598733f").is_none());
        assert!(parse_uuid("9d0652a3-dcc3-4d11-975f-74d61598733g").is_none());
        let p = service_id_fixed_width(&format!("PNI:{s}")).unwrap();
        assert_eq!(p[0], 1);
        assert_eq!(
            service_id_string(&p).unwrap(),
            format!("PNI:{}", s.to_lowercase())
        );
        assert!(service_id_fixed_width("alice").is_err());
    }

    #[test]
    fn certificates_validate() {
        let sender = IdentityKeyPair::generate();
        let (root, sc, _, cert) = certs(&sender, 1000);
        let root_pub = root.public_key();
        assert_eq!(ServerCertificate::deserialize(sc.serialized()).unwrap(), sc);
        let parsed = SenderCertificate::deserialize(cert.serialized()).unwrap();
        assert_eq!(parsed, cert);
        parsed.validate(&root_pub, 1000).unwrap();
        assert!(parsed.validate(&root_pub, 1001).is_err());
        assert!(parsed
            .validate(&PrivateKey::generate().public_key(), 0)
            .is_err());
        let server = PrivateKey::generate();
        let revoked = ServerCertificate::new(0xDEADC357, &server.public_key(), &root).unwrap();
        assert!(revoked.validate(&root_pub).is_err());
    }

    #[test]
    fn v1_and_v2_roundtrip() {
        let alice = IdentityKeyPair::generate();
        let bob = IdentityKeyPair::generate();
        let (_, _, _, cert) = certs(&alice, 1000);
        let usmc = UnidentifiedSenderMessageContent::new(
            SENDERKEY_TYPE,
            cert,
            b"inner".to_vec(),
            1,
            Some(b"group".to_vec()),
        )
        .unwrap();
        let sealed = encrypt_v1(&usmc, &alice, &bob.public_key).unwrap();
        assert_eq!(sealed[0], V1_VERSION);
        assert_eq!(decrypt_to_usmc(&sealed, &bob).unwrap(), usmc);
        assert!(decrypt_to_usmc(&sealed, &alice).is_err());

        let carol = IdentityKeyPair::generate();
        let recipients = vec![
            MultiRecipient {
                service_id: "9d0652a3-dcc3-4d11-975f-74d61598733f".into(),
                identity_key: bob.public_key,
                devices: vec![
                    RecipientDevice {
                        device_id: 1,
                        registration_id: 77,
                    },
                    RecipientDevice {
                        device_id: 2,
                        registration_id: 78,
                    },
                ],
            },
            MultiRecipient {
                service_id: "PNI:0d0652a3-dcc3-4d11-975f-74d61598733f".into(),
                identity_key: carol.public_key,
                devices: vec![RecipientDevice {
                    device_id: 3,
                    registration_id: 0x3fff,
                }],
            },
        ];
        let excluded = vec!["1d0652a3-dcc3-4d11-975f-74d61598733f".to_owned()];
        let sent = encrypt_v2(&usmc, &alice, &recipients, &excluded).unwrap();
        let parsed = SentMessage::parse(&sent).unwrap();
        assert_eq!(parsed.recipients.len(), 3);
        assert_eq!(parsed.recipients[0].devices, recipients[0].devices);
        assert!(parsed.recipients[2].devices.is_empty());
        let for_bob = parsed
            .received_message_for(&recipients[0].service_id)
            .unwrap();
        let for_carol = parsed
            .received_message_for(&recipients[1].service_id)
            .unwrap();
        assert_eq!(decrypt_to_usmc(&for_bob, &bob).unwrap(), usmc);
        assert_eq!(decrypt_to_usmc(&for_carol, &carol).unwrap(), usmc);
        assert!(decrypt_to_usmc(&for_bob, &carol).is_err());
        assert!(parsed.received_message_for(&excluded[0]).is_err());
    }
}
