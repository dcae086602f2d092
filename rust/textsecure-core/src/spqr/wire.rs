//! The V1 SPQR message carried in SignalMessage field 5 (notes §3).
//!
//! ```text
//! 0x01 ‖ varint epoch (≥ 1) ‖ varint index (u32) ‖ type byte ‖ [varint chunk index (≤ 65535) ‖ 32 bytes]
//! ```
//! Types 1 (Hdr), 2 (Ek), 3 (EkCt1Ack), 5 (Ct1) and 6 (Ct2) carry a chunk; 0 (None) and
//! 4 (Ct1Ack) do not. Trailing bytes are ignored.

use super::erasure::CHUNK;
use super::errors::{err, MSG_DECODE};
use crate::error::Result;

/// A chunk on the wire: `(index, data)`.
pub type Chunk = (u16, [u8; CHUNK]);

/// What a message carries besides epoch and index.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Payload {
    /// Type 0: nothing.
    None,
    /// Type 1: a chunk of `header ‖ header MAC`.
    Hdr(Chunk),
    /// Type 2: a chunk of the encapsulation key.
    Ek(Chunk),
    /// Type 3: a chunk of the encapsulation key, acknowledging ct1.
    EkCt1Ack(Chunk),
    /// Type 4: acknowledges ct1.
    Ct1Ack,
    /// Type 5: a chunk of ct1.
    Ct1(Chunk),
    /// Type 6: a chunk of `ct2 ‖ ciphertext MAC`.
    Ct2(Chunk),
}

impl Payload {
    /// The wire type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Payload::None => 0,
            Payload::Hdr(_) => 1,
            Payload::Ek(_) => 2,
            Payload::EkCt1Ack(_) => 3,
            Payload::Ct1Ack => 4,
            Payload::Ct1(_) => 5,
            Payload::Ct2(_) => 6,
        }
    }

    /// The chunk, if any.
    pub fn chunk(&self) -> Option<&Chunk> {
        match self {
            Payload::Hdr(c)
            | Payload::Ek(c)
            | Payload::EkCt1Ack(c)
            | Payload::Ct1(c)
            | Payload::Ct2(c) => Some(c),
            Payload::None | Payload::Ct1Ack => None,
        }
    }
}

/// A parsed V1 message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Message {
    /// The sender's braid epoch (≥ 1).
    pub epoch: u64,
    /// The sender's chain counter for chain epoch `epoch - 1` (0 = no key).
    pub index: u32,
    /// Payload.
    pub payload: Payload,
}

/// Appends a protobuf-style varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint of at most 10 bytes whose value fits in 64 bits.
pub fn get_varint(b: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v: u64 = 0;
    for i in 0..10u32 {
        let byte = *b.get(*pos).ok_or_else(|| err(MSG_DECODE))?;
        *pos += 1;
        let bits = u64::from(byte & 0x7F);
        if i == 9 && bits > 1 {
            return Err(err(MSG_DECODE));
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(err(MSG_DECODE))
}

impl Message {
    /// Serializes the message (V1).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        out.push(1);
        put_varint(&mut out, self.epoch);
        put_varint(&mut out, u64::from(self.index));
        out.push(self.payload.type_byte());
        if let Some((ci, data)) = self.payload.chunk() {
            put_varint(&mut out, u64::from(*ci));
            out.extend_from_slice(data);
        }
        out
    }

    /// Parses a V1 message (the caller has checked that the first byte is 1).
    pub fn parse(b: &[u8]) -> Result<Self> {
        if b.first() != Some(&1) {
            return Err(err(MSG_DECODE));
        }
        let mut pos = 1usize;
        let epoch = get_varint(b, &mut pos)?;
        if epoch == 0 {
            return Err(err(MSG_DECODE));
        }
        let index = u32::try_from(get_varint(b, &mut pos)?).map_err(|_| err(MSG_DECODE))?;
        let ty = *b.get(pos).ok_or_else(|| err(MSG_DECODE))?;
        pos += 1;
        let chunk = |pos: &mut usize| -> Result<Chunk> {
            let ci = u16::try_from(get_varint(b, pos)?).map_err(|_| err(MSG_DECODE))?;
            let data: [u8; CHUNK] = b
                .get(*pos..*pos + CHUNK)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| err(MSG_DECODE))?;
            *pos += CHUNK;
            Ok((ci, data))
        };
        let payload = match ty {
            0 => Payload::None,
            1 => Payload::Hdr(chunk(&mut pos)?),
            2 => Payload::Ek(chunk(&mut pos)?),
            3 => Payload::EkCt1Ack(chunk(&mut pos)?),
            4 => Payload::Ct1Ack,
            5 => Payload::Ct1(chunk(&mut pos)?),
            6 => Payload::Ct2(chunk(&mut pos)?),
            _ => return Err(err(MSG_DECODE)),
        };
        Ok(Message {
            epoch,
            index,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_examples() {
        let m = Message::parse(&[1, 1, 0x28, 4]).unwrap();
        assert_eq!(
            m,
            Message {
                epoch: 1,
                index: 40,
                payload: Payload::Ct1Ack
            }
        );
        assert_eq!(m.to_bytes(), vec![1, 1, 0x28, 4]);
        let m = Message {
            epoch: 300,
            index: 70000,
            payload: Payload::Ct1((200, [9; 32])),
        };
        let b = m.to_bytes();
        assert_eq!(Message::parse(&b).unwrap(), m);
        let mut t = b.clone();
        t.extend_from_slice(b"trailing");
        assert_eq!(Message::parse(&t).unwrap(), m);
        for cut in 0..b.len() {
            assert!(Message::parse(&b[..cut]).is_err());
        }
        assert!(Message::parse(&[1, 0, 1, 0]).is_err());
        assert!(Message::parse(&[1, 1, 1, 7]).is_err());
        assert!(Message::parse(&[1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0]).is_err());
        let mut big = vec![1u8];
        big.extend_from_slice(&[0xFF; 9]);
        big.extend_from_slice(&[0x02, 1, 0]);
        assert!(Message::parse(&big).is_err());
    }
}
