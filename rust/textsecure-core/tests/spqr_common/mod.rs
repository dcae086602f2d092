//! Shared helpers of the SPQR tests (included with `#[path]`).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use base64::Engine as _;
use rand_core::{CryptoRng, RngCore};
use textsecure_core::spqr::{Direction, Params, Version};

pub fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// The libsignal 0.103 trace, or `None` (skip; a failure under `TEXTSECURE_STRICT=1`).
pub fn trace() -> Option<serde_json::Value> {
    super::shared_data::json("vectors/spqr_libsignal_trace.json")
}

pub fn params(auth_key: [u8; 32], direction: Direction) -> Params {
    Params {
        auth_key,
        direction,
        min_version: Version::V1,
        max_jump: 25_000,
        max_ooo_keys: 2_000,
    }
}

/// An RNG that yields recorded bytes (then zeros).
pub struct Replay(pub Vec<u8>, pub usize);
impl RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest.iter_mut() {
            *d = self.0.get(self.1).copied().unwrap_or(0);
            self.1 += 1;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Replay {}

/// Deterministic test RNG (xorshift; not for production).
pub struct TestRng(pub u64);
impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest.iter_mut() {
            *d = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for TestRng {}

/// Minimal protobuf walker: returns (field number, wire type, payload) of the top-level fields.
pub fn fields(mut b: &[u8]) -> Vec<(u64, u8, Vec<u8>)> {
    let mut out = Vec::new();
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        let mut s = 0;
        loop {
            let x = b[0];
            *b = &b[1..];
            v |= u64::from(x & 0x7f) << s;
            s += 7;
            if x & 0x80 == 0 {
                return v;
            }
        }
    }
    while !b.is_empty() {
        let key = varint(&mut b);
        let (f, wt) = (key >> 3, (key & 7) as u8);
        match wt {
            0 => {
                let v = varint(&mut b);
                out.push((f, 0, v.to_le_bytes().to_vec()));
            }
            2 => {
                let l = varint(&mut b) as usize;
                out.push((f, 2, b[..l].to_vec()));
                b = &b[l..];
            }
            _ => panic!("wire type {wt}"),
        }
    }
    out
}

pub fn field(b: &[u8], n: u64) -> Option<Vec<u8>> {
    fields(b).into_iter().find(|f| f.0 == n).map(|f| f.2)
}

/// The auth key from a fresh state's version negotiation.
pub fn auth_key_of(state: &[u8]) -> [u8; 32] {
    let neg = field(state, 1).unwrap();
    field(&neg, 1).unwrap().try_into().unwrap()
}
