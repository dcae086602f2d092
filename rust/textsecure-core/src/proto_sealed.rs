//! Sealed-sender protobufs (libsignal `sealed_sender.proto`, proto2), hand-written prost
//! structs with libsignal's field numbers. Field declaration order is the encoding order.
#![allow(missing_docs)]

/// `ServerCertificate`: `{ certificate = 1, signature = 2 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServerCertificate {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub certificate: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signature: Option<Vec<u8>>,
}

/// `ServerCertificate.Certificate`: `{ id = 1, key = 2 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServerCertificateData {
    #[prost(uint32, optional, tag = "1")]
    pub id: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub key: Option<Vec<u8>>,
}

/// `SenderCertificate`: `{ certificate = 1, signature = 2 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SenderCertificate {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub certificate: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signature: Option<Vec<u8>>,
}

/// The `signer` oneof of `SenderCertificate.Certificate`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Signer {
    /// An embedded serialized `ServerCertificate`.
    #[prost(bytes, tag = "5")]
    Certificate(Vec<u8>),
    /// The id of a server certificate the receiver already knows.
    #[prost(uint32, tag = "8")]
    Id(u32),
}

/// The `senderUuid` oneof of `SenderCertificate.Certificate`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum SenderUuid {
    #[prost(string, tag = "6")]
    UuidString(String),
    #[prost(bytes, tag = "7")]
    UuidBytes(Vec<u8>),
}

/// `SenderCertificate.Certificate`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SenderCertificateData {
    #[prost(string, optional, tag = "1")]
    pub sender_e164: Option<String>,
    #[prost(uint32, optional, tag = "2")]
    pub sender_device: Option<u32>,
    #[prost(fixed64, optional, tag = "3")]
    pub expires: Option<u64>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub identity_key: Option<Vec<u8>>,
    #[prost(oneof = "Signer", tags = "5, 8")]
    pub signer: Option<Signer>,
    #[prost(oneof = "SenderUuid", tags = "6, 7")]
    pub sender_uuid: Option<SenderUuid>,
}

/// `UnidentifiedSenderMessage` (the v1 envelope after the version byte).
#[derive(Clone, PartialEq, prost::Message)]
pub struct UnidentifiedSenderMessage {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub ephemeral_public: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub encrypted_static: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub encrypted_message: Option<Vec<u8>>,
}

/// `UnidentifiedSenderMessage.Message` ("USMC"), the sealed plaintext of v1 and v2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UnidentifiedSenderMessageContent {
    /// PREKEY_MESSAGE = 1, MESSAGE = 2, SENDERKEY_MESSAGE = 7, PLAINTEXT_CONTENT = 8.
    #[prost(int32, optional, tag = "1")]
    pub r#type: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub sender_certificate: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub content: Option<Vec<u8>>,
    /// RESENDABLE = 1, IMPLICIT = 2; absent = default (0).
    #[prost(int32, optional, tag = "4")]
    pub content_hint: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub group_id: Option<Vec<u8>>,
}
