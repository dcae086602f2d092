//! SignalMessage and PreKeySignalMessage: parsing, construction, MAC (protocol-notes §2).

use hmac::Mac;
use prost::Message as _;

use crate::crypto;
use crate::curve::PublicKey;
use crate::error::{Error, Result};
use crate::proto::wire;

/// Length of the truncated MAC on a SignalMessage.
pub const MAC_LENGTH: usize = 8;
/// The `CiphertextMessageType` of a SignalMessage.
pub const WHISPER_TYPE: u8 = 2;
/// The `CiphertextMessageType` of a PreKeySignalMessage.
pub const PREKEY_TYPE: u8 = 3;
/// The `CiphertextMessageType` of a SenderKeyMessage.
pub const SENDERKEY_TYPE: u8 = 7;
/// Serialized Kyber ciphertext length (type byte + 1568).
pub const KYBER_CIPHERTEXT_LENGTH: usize = 1569;

/// SignalMessage field 6 (libsignal ≥ 0.91): sender ServiceId (17) ‖ sender device (1) ‖
/// recipient ServiceId (17) ‖ recipient device (1). `None` unless both names are ServiceIds
/// and both device ids fit in a byte.
pub fn addresses_field(
    sender: &crate::address::Address,
    recipient: &crate::address::Address,
) -> Option<Vec<u8>> {
    let s = sender.service_id_binary()?;
    let r = recipient.service_id_binary()?;
    let sd = u8::try_from(sender.device_id).ok()?;
    let rd = u8::try_from(recipient.device_id).ok()?;
    let mut out = Vec::with_capacity(36);
    out.extend_from_slice(&s);
    out.push(sd);
    out.extend_from_slice(&r);
    out.push(rd);
    Some(out)
}

/// The version byte written for a session version: 0x33 for v3 (what libsignal-node and
/// python-axolotl require), 0x44 for v4.
pub fn version_byte_for(session_version: u8) -> u8 {
    (session_version << 4) | session_version
}

fn check_version(byte: u8) -> Result<u8> {
    let v = byte >> 4;
    if !(3..=4).contains(&v) {
        return Err(Error::UnsupportedVersion(v));
    }
    Ok(v)
}

fn key33(field: Option<Vec<u8>>, what: &'static str) -> Result<PublicKey> {
    let b = field.ok_or(Error::InvalidMessage(what))?;
    PublicKey::deserialize_exact(&b).map_err(|_| Error::InvalidMessage(what))
}

/// A Double Ratchet message: `version ‖ protobuf ‖ MAC(8)`.
#[derive(Clone, Debug)]
pub struct SignalMessage {
    version_byte: u8,
    ratchet_key: PublicKey,
    counter: u32,
    previous_counter: u32,
    ciphertext: Vec<u8>,
    pq_ratchet: Vec<u8>,
    addresses: Option<Vec<u8>>,
    serialized: Vec<u8>,
}

/// The inputs of a new SignalMessage.
pub struct SignalMessageParts<'a> {
    /// The full version byte.
    pub version_byte: u8,
    /// The sender's current ratchet key.
    pub ratchet_key: &'a PublicKey,
    /// Index in the sending chain.
    pub counter: u32,
    /// Length of the previous sending chain.
    pub previous_counter: u32,
    /// AES-CBC output.
    pub ciphertext: Vec<u8>,
    /// SPQR message (field 5); empty for none.
    pub pq_ratchet: Vec<u8>,
    /// Field 6, if any.
    pub addresses: Option<Vec<u8>>,
}

impl SignalMessage {
    /// Builds and MACs a message.
    pub fn new(
        parts: SignalMessageParts<'_>,
        mac_key: &[u8; 32],
        sender_identity: &PublicKey,
        receiver_identity: &PublicKey,
    ) -> Result<Self> {
        let proto = wire::SignalMessage {
            ratchet_key: Some(parts.ratchet_key.serialize().to_vec()),
            counter: Some(parts.counter),
            previous_counter: Some(parts.previous_counter),
            ciphertext: Some(parts.ciphertext),
            pq_ratchet: (!parts.pq_ratchet.is_empty()).then(|| parts.pq_ratchet.clone()),
            addresses: parts.addresses.clone(),
        };
        let mut serialized = Vec::with_capacity(1 + proto.encoded_len() + MAC_LENGTH);
        serialized.push(parts.version_byte);
        proto
            .encode(&mut serialized)
            .map_err(|_| Error::InvalidMessage("encoding failed"))?;
        let mac = compute_mac(sender_identity, receiver_identity, mac_key, &serialized);
        serialized.extend_from_slice(&mac[..MAC_LENGTH]);
        Ok(Self {
            version_byte: parts.version_byte,
            ratchet_key: *parts.ratchet_key,
            counter: parts.counter,
            previous_counter: parts.previous_counter,
            ciphertext: proto.ciphertext.unwrap_or_default(),
            pq_ratchet: parts.pq_ratchet,
            addresses: parts.addresses,
            serialized,
        })
    }

    /// Parses the wire form. Does not check the MAC (that needs the session).
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        if data.len() < 1 + MAC_LENGTH {
            return Err(Error::InvalidMessage("SignalMessage too short"));
        }
        check_version(data[0])?;
        let body = &data[1..data.len() - MAC_LENGTH];
        let proto = wire::SignalMessage::decode(body)
            .map_err(|_| Error::InvalidMessage("SignalMessage protobuf is invalid"))?;
        let ratchet_key = key33(
            proto.ratchet_key,
            "SignalMessage ratchet key is missing or invalid",
        )?;
        let counter = proto
            .counter
            .ok_or(Error::InvalidMessage("SignalMessage counter is missing"))?;
        let ciphertext = proto
            .ciphertext
            .ok_or(Error::InvalidMessage("SignalMessage ciphertext is missing"))?;
        Ok(Self {
            version_byte: data[0],
            ratchet_key,
            counter,
            previous_counter: proto.previous_counter.unwrap_or(0),
            ciphertext,
            pq_ratchet: proto.pq_ratchet.unwrap_or_default(),
            addresses: proto.addresses,
            serialized: data.to_vec(),
        })
    }

    /// The session version (high nibble of the version byte).
    pub fn message_version(&self) -> u8 {
        self.version_byte >> 4
    }
    /// The full version byte.
    pub fn version_byte(&self) -> u8 {
        self.version_byte
    }
    /// The sender's ratchet key.
    pub fn ratchet_key(&self) -> &PublicKey {
        &self.ratchet_key
    }
    /// The counter.
    pub fn counter(&self) -> u32 {
        self.counter
    }
    /// The previous counter.
    pub fn previous_counter(&self) -> u32 {
        self.previous_counter
    }
    /// The AES-CBC ciphertext.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }
    /// The SPQR message (field 5); empty for none.
    pub fn pq_ratchet(&self) -> &[u8] {
        &self.pq_ratchet
    }
    /// Field 6, if present.
    pub fn addresses(&self) -> Option<&[u8]> {
        self.addresses.as_deref()
    }
    /// The exact wire bytes.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// Checks the 8-byte MAC in constant time.
    pub fn verify_mac(
        &self,
        sender_identity: &PublicKey,
        receiver_identity: &PublicKey,
        mac_key: &[u8; 32],
    ) -> bool {
        let n = self.serialized.len();
        let mac = compute_mac(
            sender_identity,
            receiver_identity,
            mac_key,
            &self.serialized[..n - MAC_LENGTH],
        );
        crypto::ct_eq(&mac[..MAC_LENGTH], &self.serialized[n - MAC_LENGTH..])
    }
}

fn compute_mac(
    sender_identity: &PublicKey,
    receiver_identity: &PublicKey,
    mac_key: &[u8; 32],
    version_and_body: &[u8],
) -> [u8; 32] {
    let mut m = crypto::hmac(mac_key);
    m.update(&sender_identity.serialize());
    m.update(&receiver_identity.serialize());
    m.update(version_and_body);
    m.finalize().into_bytes().into()
}

/// A session-starting message: `version ‖ protobuf` (no MAC of its own).
#[derive(Clone, Debug)]
pub struct PreKeySignalMessage {
    version_byte: u8,
    registration_id: u32,
    pre_key_id: Option<u32>,
    signed_pre_key_id: u32,
    kyber_pre_key_id: Option<u32>,
    kyber_ciphertext: Option<Vec<u8>>,
    base_key: PublicKey,
    identity_key: PublicKey,
    message: SignalMessage,
    serialized: Vec<u8>,
}

/// The inputs of a new PreKeySignalMessage.
pub struct PreKeyParts {
    /// The full version byte.
    pub version_byte: u8,
    /// The sender's registration id.
    pub registration_id: u32,
    /// The one-time prekey used, if any.
    pub pre_key_id: Option<u32>,
    /// The signed prekey used.
    pub signed_pre_key_id: u32,
    /// The Kyber prekey used (v4).
    pub kyber_pre_key_id: Option<u32>,
    /// The Kyber ciphertext (v4).
    pub kyber_ciphertext: Option<Vec<u8>>,
    /// The sender's base key.
    pub base_key: PublicKey,
    /// The sender's identity key.
    pub identity_key: PublicKey,
}

impl PreKeySignalMessage {
    /// Wraps a SignalMessage.
    pub fn new(parts: PreKeyParts, message: SignalMessage) -> Result<Self> {
        let proto = wire::PreKeySignalMessage {
            registration_id: Some(parts.registration_id),
            pre_key_id: parts.pre_key_id,
            signed_pre_key_id: Some(parts.signed_pre_key_id),
            kyber_pre_key_id: parts.kyber_pre_key_id,
            kyber_ciphertext: parts.kyber_ciphertext.clone(),
            base_key: Some(parts.base_key.serialize().to_vec()),
            identity_key: Some(parts.identity_key.serialize().to_vec()),
            message: Some(message.serialized().to_vec()),
        };
        let mut serialized = Vec::with_capacity(1 + proto.encoded_len());
        serialized.push(parts.version_byte);
        proto
            .encode(&mut serialized)
            .map_err(|_| Error::InvalidMessage("encoding failed"))?;
        Ok(Self {
            version_byte: parts.version_byte,
            registration_id: parts.registration_id,
            pre_key_id: parts.pre_key_id,
            signed_pre_key_id: parts.signed_pre_key_id,
            kyber_pre_key_id: parts.kyber_pre_key_id,
            kyber_ciphertext: parts.kyber_ciphertext,
            base_key: parts.base_key,
            identity_key: parts.identity_key,
            message,
            serialized,
        })
    }

    /// Parses the wire form.
    pub fn deserialize(data: &[u8]) -> Result<Self> {
        let (&first, body) = data
            .split_first()
            .ok_or(Error::InvalidMessage("PreKeySignalMessage is empty"))?;
        let version = check_version(first)?;
        let proto = wire::PreKeySignalMessage::decode(body)
            .map_err(|_| Error::InvalidMessage("PreKeySignalMessage protobuf is invalid"))?;
        let signed_pre_key_id = proto
            .signed_pre_key_id
            .ok_or(Error::InvalidMessage("signed prekey id is missing"))?;
        let base_key = key33(proto.base_key, "base key is missing or invalid")?;
        let identity_key = key33(proto.identity_key, "identity key is missing or invalid")?;
        let inner = proto
            .message
            .ok_or(Error::InvalidMessage("inner message is missing"))?;
        let message = SignalMessage::deserialize(&inner)?;
        if message.message_version() != version {
            return Err(Error::InvalidMessage("inner message version differs"));
        }
        match (&proto.kyber_pre_key_id, &proto.kyber_ciphertext) {
            (Some(_), Some(ct)) => {
                if ct.len() != KYBER_CIPHERTEXT_LENGTH {
                    return Err(Error::InvalidMessage(
                        "Kyber ciphertext has the wrong length",
                    ));
                }
            }
            (None, None) => {
                if version > 3 {
                    return Err(Error::InvalidMessage(
                        "Kyber prekey must be present for this session version",
                    ));
                }
            }
            _ => {
                return Err(Error::InvalidMessage(
                    "Kyber prekey id and ciphertext must be both present or both absent",
                ))
            }
        }
        Ok(Self {
            version_byte: first,
            registration_id: proto.registration_id.unwrap_or(0),
            pre_key_id: proto.pre_key_id,
            signed_pre_key_id,
            kyber_pre_key_id: proto.kyber_pre_key_id,
            kyber_ciphertext: proto.kyber_ciphertext,
            base_key,
            identity_key,
            message,
            serialized: data.to_vec(),
        })
    }

    /// The session version.
    pub fn message_version(&self) -> u8 {
        self.version_byte >> 4
    }
    /// The full version byte.
    pub fn version_byte(&self) -> u8 {
        self.version_byte
    }
    /// The sender's registration id (not authenticated).
    pub fn registration_id(&self) -> u32 {
        self.registration_id
    }
    /// The one-time prekey id.
    pub fn pre_key_id(&self) -> Option<u32> {
        self.pre_key_id
    }
    /// The signed prekey id.
    pub fn signed_pre_key_id(&self) -> u32 {
        self.signed_pre_key_id
    }
    /// The Kyber prekey id.
    pub fn kyber_pre_key_id(&self) -> Option<u32> {
        self.kyber_pre_key_id
    }
    /// The Kyber ciphertext.
    pub fn kyber_ciphertext(&self) -> Option<&[u8]> {
        self.kyber_ciphertext.as_deref()
    }
    /// Alice's base key.
    pub fn base_key(&self) -> &PublicKey {
        &self.base_key
    }
    /// Alice's identity key.
    pub fn identity_key(&self) -> &PublicKey {
        &self.identity_key
    }
    /// The inner SignalMessage.
    pub fn message(&self) -> &SignalMessage {
        &self.message
    }
    /// The exact wire bytes.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// Either kind of 1:1 message.
#[derive(Clone, Debug)]
pub enum CiphertextMessage {
    /// A SignalMessage (type 2).
    Whisper(SignalMessage),
    /// A PreKeySignalMessage (type 3).
    PreKey(PreKeySignalMessage),
}

impl CiphertextMessage {
    /// The `CiphertextMessageType`.
    pub fn message_type(&self) -> u8 {
        match self {
            Self::Whisper(_) => WHISPER_TYPE,
            Self::PreKey(_) => PREKEY_TYPE,
        }
    }
    /// The wire bytes.
    pub fn serialized(&self) -> &[u8] {
        match self {
            Self::Whisper(m) => m.serialized(),
            Self::PreKey(m) => m.serialized(),
        }
    }
}
