//! Safety numbers ("fingerprints"): libsignal's numeric fingerprint (protocol-notes §8).
//!
//! * Per side: `H = SHA-512(0x0000 || key(33) || id || key(33))`, then `iterations - 1` times
//!   `H = SHA-512(H || key(33))`. The `0x0000` prefix is the same for every fingerprint version.
//! * Displayable: the first 30 bytes of each side's hash as six 5-byte big-endian integers
//!   mod 100000, five digits each; the two 30-digit halves in lexicographic order (60 digits).
//! * Scannable: protobuf `CombinedFingerprints { version = 1, local = 2 { content = 1 },
//!   remote = 3 { content = 1 } }` with the first 32 bytes of each hash.
//! * [`Fingerprint::matches`] compares a peer's scannable form with ours in constant time:
//!   their local is our remote and their remote is our local.

use core::fmt;

use prost::Message as _;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::curve::PublicKey;
use crate::error::{Error, Result};

/// The smallest accepted iteration count.
pub const MIN_ITERATIONS: u32 = 2;
/// The largest accepted iteration count.
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// The iteration count the Signal apps use.
pub const DEFAULT_ITERATIONS: u32 = 5200;
/// The versions this implementation produces and compares (v1: phone numbers as ids,
/// v2: service-id bytes as ids; the hash is the same).
pub const SUPPORTED_VERSIONS: [u32; 2] = [1, 2];

const SCANNABLE_LENGTH: usize = 32;
const DISPLAY_BYTES: usize = 30;

mod pb {
    #![allow(missing_docs)]

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct LogicalFingerprint {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub(super) content: Option<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct CombinedFingerprints {
        #[prost(uint32, optional, tag = "1")]
        pub(super) version: Option<u32>,
        #[prost(message, optional, tag = "2")]
        pub(super) local_fingerprint: Option<LogicalFingerprint>,
        #[prost(message, optional, tag = "3")]
        pub(super) remote_fingerprint: Option<LogicalFingerprint>,
    }
}

/// One side's iterated hash (64 bytes).
pub fn iterated_hash(iterations: u32, id: &[u8], key: &PublicKey) -> Result<[u8; 64]> {
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(Error::InvalidArgument(
            "fingerprint iterations must be between 2 and 1000000",
        ));
    }
    let key = key.serialize();
    let mut h = Sha512::new();
    h.update([0u8, 0u8]);
    h.update(key);
    h.update(id);
    h.update(key);
    let mut buf: [u8; 64] = h.finalize().into();
    for _ in 1..iterations {
        let mut h = Sha512::new();
        h.update(buf);
        h.update(key);
        buf = h.finalize().into();
    }
    Ok(buf)
}

/// Six groups of five digits from the first 30 bytes of a hash.
fn display_half(hash: &[u8; 64]) -> String {
    let mut out = String::with_capacity(30);
    for chunk in hash[..DISPLAY_BYTES].chunks_exact(5) {
        let v = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        out.push_str(&format!("{:05}", v % 100_000));
    }
    out
}

fn encode_scannable(version: u32, local: &[u8], remote: &[u8]) -> Vec<u8> {
    pb::CombinedFingerprints {
        version: Some(version),
        local_fingerprint: Some(pb::LogicalFingerprint {
            content: Some(local.to_vec()),
        }),
        remote_fingerprint: Some(pb::LogicalFingerprint {
            content: Some(remote.to_vec()),
        }),
    }
    .encode_to_vec()
}

/// A safety number for one pair of identities, as seen from the local side.
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprint {
    version: u32,
    local: [u8; SCANNABLE_LENGTH],
    remote: [u8; SCANNABLE_LENGTH],
    displayable: String,
    scannable: Vec<u8>,
}

impl Fingerprint {
    /// Computes the fingerprint of (`local_id`, `local_key`) with (`remote_id`, `remote_key`).
    ///
    /// `version` is 1 or 2; `iterations` is 2..=1,000,000 (Signal uses 5200).
    pub fn new(
        version: u32,
        iterations: u32,
        local_id: &[u8],
        local_key: &PublicKey,
        remote_id: &[u8],
        remote_key: &PublicKey,
    ) -> Result<Self> {
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(Error::InvalidArgument("fingerprint version must be 1 or 2"));
        }
        let lh = iterated_hash(iterations, local_id, local_key)?;
        let rh = iterated_hash(iterations, remote_id, remote_key)?;
        let (ld, rd) = (display_half(&lh), display_half(&rh));
        let displayable = if ld <= rd { ld + &rd } else { rd + &ld };
        let mut local = [0u8; SCANNABLE_LENGTH];
        local.copy_from_slice(&lh[..SCANNABLE_LENGTH]);
        let mut remote = [0u8; SCANNABLE_LENGTH];
        remote.copy_from_slice(&rh[..SCANNABLE_LENGTH]);
        let scannable = encode_scannable(version, &local, &remote);
        Ok(Self {
            version,
            local,
            remote,
            displayable,
            scannable,
        })
    }

    /// The version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The 60-digit number both parties see.
    pub fn displayable(&self) -> &str {
        &self.displayable
    }

    /// The scannable (QR code) encoding: protobuf `CombinedFingerprints`.
    pub fn scannable(&self) -> &[u8] {
        &self.scannable
    }

    /// True if `their_scannable` (the peer's scannable form, computed from their side) shows
    /// the same two identities. Constant time in the fingerprint contents.
    ///
    /// A malformed encoding is [`Error::InvalidMessage`]; a different version is
    /// [`Error::FingerprintVersionMismatch`] (the two apps cannot compare).
    pub fn matches(&self, their_scannable: &[u8]) -> Result<bool> {
        let theirs = pb::CombinedFingerprints::decode(their_scannable)
            .map_err(|_| Error::InvalidMessage("scannable fingerprint is not a valid encoding"))?;
        let their_version = theirs.version.unwrap_or(0);
        if their_version != self.version {
            return Err(Error::FingerprintVersionMismatch {
                theirs: their_version,
                ours: self.version,
            });
        }
        let content = |f: Option<pb::LogicalFingerprint>| -> Result<Vec<u8>> {
            f.and_then(|l| l.content).ok_or(Error::InvalidMessage(
                "scannable fingerprint is missing a side",
            ))
        };
        let their_local = content(theirs.local_fingerprint)?;
        let their_remote = content(theirs.remote_fingerprint)?;
        if their_local.len() != SCANNABLE_LENGTH || their_remote.len() != SCANNABLE_LENGTH {
            return Ok(false);
        }
        let same =
            their_local.as_slice().ct_eq(&self.remote) & their_remote.as_slice().ct_eq(&self.local);
        Ok(bool::from(same))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fingerprint")
            .field("version", &self.version)
            .field("displayable", &self.displayable)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hexs: &str) -> PublicKey {
        PublicKey::deserialize_exact(&hex::decode(hexs).unwrap()).unwrap()
    }

    // libsignal's published v1/v2 test identities (protocol-notes §8).
    const ALICE: &str = "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868";
    const BOB: &str = "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b";
    const DISPLAY: &str = "300354477692869396892869876765458257569162576843440918079131";

    #[test]
    fn libsignal_vectors_v1_v2() {
        let (a, b) = (key(ALICE), key(BOB));
        for version in [1u32, 2] {
            let fa =
                Fingerprint::new(version, 5200, b"+14152222222", &a, b"+14153333333", &b).unwrap();
            let fb =
                Fingerprint::new(version, 5200, b"+14153333333", &b, b"+14152222222", &a).unwrap();
            assert_eq!(fa.displayable(), DISPLAY);
            assert_eq!(fb.displayable(), DISPLAY);
            assert_eq!(
                fa.scannable()[..6],
                [0x08, version as u8, 0x12, 0x22, 0x0a, 0x20]
            );
            assert!(fa.matches(fb.scannable()).unwrap());
            assert!(fb.matches(fa.scannable()).unwrap());
            assert!(!fa.matches(fa.scannable()).unwrap());
        }
    }

    #[test]
    fn mismatches_and_errors() {
        let (a, b) = (key(ALICE), key(BOB));
        let fa = Fingerprint::new(2, 2, b"a", &a, b"b", &b).unwrap();
        let fb1 = Fingerprint::new(1, 2, b"b", &b, b"a", &a).unwrap();
        assert!(matches!(
            fa.matches(fb1.scannable()),
            Err(Error::FingerprintVersionMismatch { theirs: 1, ours: 2 })
        ));
        let other = Fingerprint::new(2, 2, b"c", &b, b"a", &a).unwrap();
        assert!(!fa.matches(other.scannable()).unwrap());
        assert!(fa.matches(&[0xff]).is_err());
        assert!(Fingerprint::new(2, 1, b"a", &a, b"b", &b).is_err());
        assert!(Fingerprint::new(2, 1_000_001, b"a", &a, b"b", &b).is_err());
        assert!(Fingerprint::new(3, 2, b"a", &a, b"b", &b).is_err());
    }
}
