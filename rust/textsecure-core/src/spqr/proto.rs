//! Protobuf schema of the stored SPQR state (`signal.proto.pq_ratchet.PqRatchetState`, notes §11),
//! as hand-written prost structs. Used only by `State::from_bytes` / `State::to_bytes`.
#![allow(missing_docs)]

#[derive(Clone, PartialEq, prost::Message)]
pub struct PqRatchetState {
    #[prost(message, optional, tag = "1")]
    pub version_negotiation: Option<VersionNegotiation>,
    #[prost(message, optional, tag = "2")]
    pub chain: Option<Chain>,
    #[prost(oneof = "pq_ratchet_state::Inner", tags = "3")]
    pub inner: Option<pq_ratchet_state::Inner>,
}

pub mod pq_ratchet_state {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Inner {
        #[prost(message, tag = "3")]
        V1(super::V1State),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionNegotiation {
    #[prost(bytes = "vec", tag = "1")]
    pub auth_key: Vec<u8>,
    #[prost(int32, tag = "2")]
    pub direction: i32,
    #[prost(int32, tag = "3")]
    pub min_version: i32,
    #[prost(message, optional, tag = "4")]
    pub chain_params: Option<ChainParams>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChainParams {
    #[prost(uint32, tag = "1")]
    pub max_jump: u32,
    #[prost(uint32, tag = "2")]
    pub max_ooo_keys: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Chain {
    #[prost(int32, tag = "1")]
    pub direction: i32,
    #[prost(uint64, tag = "2")]
    pub current_epoch: u64,
    #[prost(message, repeated, tag = "3")]
    pub links: Vec<Epoch>,
    #[prost(bytes = "vec", tag = "4")]
    pub next_root: Vec<u8>,
    #[prost(uint64, tag = "5")]
    pub send_epoch: u64,
    #[prost(message, optional, tag = "6")]
    pub params: Option<ChainParams>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Epoch {
    #[prost(message, optional, tag = "1")]
    pub send: Option<EpochDirection>,
    #[prost(message, optional, tag = "2")]
    pub recv: Option<EpochDirection>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EpochDirection {
    #[prost(uint32, tag = "1")]
    pub ctr: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub next: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub prev: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Authenticator {
    #[prost(bytes = "vec", tag = "1")]
    pub root_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub mac_key: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PolynomialEncoder {
    #[prost(uint32, tag = "1")]
    pub idx: u32,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub pts: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub polys: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PolynomialDecoder {
    #[prost(uint32, tag = "1")]
    pub pts_needed: u32,
    #[prost(uint32, tag = "2")]
    pub polys: u32,
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub pts: Vec<Vec<u8>>,
    #[prost(bool, tag = "4")]
    pub is_complete: bool,
}

/// The "unchunked" core state: every variant is `{ uint64 epoch = 1; Authenticator auth = 2; ... }`;
/// the optional bytes fields 3..5 hold the variant's values in schema order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Unchunked {
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    #[prost(message, optional, tag = "2")]
    pub auth: Option<Authenticator>,
    #[prost(bytes = "vec", tag = "3")]
    pub f3: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub f4: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    pub f5: Vec<u8>,
}

/// A "chunked" state: `{ Unchunked uc = 1; encoder/decoder fields 2, 3 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedEnc2 {
    #[prost(message, optional, tag = "1")]
    pub uc: Option<Unchunked>,
    #[prost(message, optional, tag = "2")]
    pub enc: Option<PolynomialEncoder>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedDec2 {
    #[prost(message, optional, tag = "1")]
    pub uc: Option<Unchunked>,
    #[prost(message, optional, tag = "2")]
    pub dec: Option<PolynomialDecoder>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedDec3 {
    #[prost(message, optional, tag = "1")]
    pub uc: Option<Unchunked>,
    #[prost(message, optional, tag = "3")]
    pub dec: Option<PolynomialDecoder>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedEncDec {
    #[prost(message, optional, tag = "1")]
    pub uc: Option<Unchunked>,
    #[prost(message, optional, tag = "2")]
    pub enc: Option<PolynomialEncoder>,
    #[prost(message, optional, tag = "3")]
    pub dec: Option<PolynomialDecoder>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedUc {
    #[prost(message, optional, tag = "1")]
    pub uc: Option<Unchunked>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct V1State {
    #[prost(
        oneof = "v1_state::InnerState",
        tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11"
    )]
    pub inner_state: Option<v1_state::InnerState>,
}

pub mod v1_state {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum InnerState {
        #[prost(message, tag = "1")]
        KeysUnsampled(super::ChunkedUc),
        #[prost(message, tag = "2")]
        KeysSampled(super::ChunkedEnc2),
        #[prost(message, tag = "3")]
        HeaderSent(super::ChunkedEncDec),
        #[prost(message, tag = "4")]
        Ct1Received(super::ChunkedEnc2),
        #[prost(message, tag = "5")]
        EkSentCt1Received(super::ChunkedDec3),
        #[prost(message, tag = "6")]
        NoHeaderReceived(super::ChunkedDec2),
        #[prost(message, tag = "7")]
        HeaderReceived(super::ChunkedDec2),
        #[prost(message, tag = "8")]
        Ct1Sampled(super::ChunkedEncDec),
        #[prost(message, tag = "9")]
        EkReceivedCt1Sampled(super::ChunkedEnc2),
        #[prost(message, tag = "10")]
        Ct1Acknowledged(super::ChunkedDec2),
        #[prost(message, tag = "11")]
        Ct2Sampled(super::ChunkedEnc2),
    }
}
