//! The incremental MAC of Signal attachments (libsignal's `incremental_mac`).
//!
//! One running HMAC-SHA256 over the data; every `chunk_size` bytes the running state is cloned
//! and finalized, so each digest is the HMAC of the whole prefix up to that boundary. After the
//! last byte the full HMAC is appended. The digest list is the concatenation of these 32-byte
//! values (when the length is an exact multiple of the chunk size, the last boundary digest and
//! the final one are equal and both appear).

use hmac::Mac;

use crate::crypto::{ct_eq, hmac, HmacSha256};
use crate::error::{Error, Result};

/// Size of one digest in the list.
pub const DIGEST_LEN: usize = 32;
const MINIMUM_CHUNK_SIZE: u64 = 64 * 1024;
const MAXIMUM_CHUNK_SIZE: u64 = 2 * 1024 * 1024;
const TARGET_DIGEST_COUNT: u64 = 8 * 1024 / DIGEST_LEN as u64;

/// libsignal's chunk-size rule for `data_size` bytes of MACed data (for attachments, Signal
/// clients pass the length of the encrypted blob): 64 KiB below 256 × 64 KiB, then
/// `ceil(data_size / 256)` below 256 × 2 MiB, then 2 MiB. This keeps the digest list near 8 KiB.
pub fn chunk_size_for(data_size: u64) -> usize {
    let size = if data_size < TARGET_DIGEST_COUNT * MINIMUM_CHUNK_SIZE {
        MINIMUM_CHUNK_SIZE
    } else if data_size < TARGET_DIGEST_COUNT * MAXIMUM_CHUNK_SIZE {
        data_size.div_ceil(TARGET_DIGEST_COUNT)
    } else {
        MAXIMUM_CHUNK_SIZE
    };
    // At most 2 MiB: fits any usize.
    usize::try_from(size).unwrap_or(2 * 1024 * 1024)
}

/// The running HMAC with chunk-boundary tracking shared by producer and validator.
#[derive(Clone)]
pub(crate) struct ChunkedMac {
    mac: HmacSha256,
    chunk_size: usize,
    unused: usize,
}

impl ChunkedMac {
    pub(crate) fn new(key: &[u8], chunk_size: usize) -> Result<Self> {
        if chunk_size == 0 {
            return Err(Error::InvalidArgument(
                "incremental MAC chunk size must be positive",
            ));
        }
        Ok(Self {
            mac: hmac(key),
            chunk_size,
            unused: chunk_size,
        })
    }

    pub(crate) fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Feeds `data`; calls `boundary` with the prefix HMAC at every chunk boundary crossed.
    pub(crate) fn update<E>(
        &mut self,
        mut data: &[u8],
        mut boundary: impl FnMut([u8; 32]) -> core::result::Result<(), E>,
    ) -> core::result::Result<(), E> {
        while !data.is_empty() {
            let take = self.unused.min(data.len());
            let (now, rest) = data.split_at(take);
            self.mac.update(now);
            self.unused -= take;
            data = rest;
            if self.unused == 0 {
                self.unused = self.chunk_size;
                boundary(self.current())?;
            }
        }
        Ok(())
    }

    /// The HMAC of everything fed so far (the state continues).
    pub(crate) fn current(&self) -> [u8; 32] {
        self.mac.clone().finalize().into_bytes().into()
    }

    /// Bytes fed since the last boundary.
    pub(crate) fn pending(&self) -> usize {
        self.chunk_size - self.unused
    }
}

/// Produces an incremental MAC digest list.
#[derive(Clone)]
pub struct IncrementalMac {
    inner: ChunkedMac,
    digests: Vec<u8>,
}

impl IncrementalMac {
    /// A producer keyed with `key` (for attachments: the 32-byte HMAC half of the key material).
    pub fn new(key: &[u8], chunk_size: usize) -> Result<Self> {
        Ok(Self {
            inner: ChunkedMac::new(key, chunk_size)?,
            digests: Vec::new(),
        })
    }

    /// The chunk size in bytes.
    pub fn chunk_size(&self) -> usize {
        self.inner.chunk_size()
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        let digests = &mut self.digests;
        let r: core::result::Result<(), core::convert::Infallible> = self.inner.update(data, |d| {
            digests.extend_from_slice(&d);
            Ok(())
        });
        let Ok(()) = r;
    }

    /// The HMAC of everything fed so far.
    pub fn current(&self) -> [u8; 32] {
        self.inner.current()
    }

    /// The digest list: every boundary digest, then the full HMAC.
    pub fn finalize(mut self) -> Vec<u8> {
        let last = self.inner.current();
        self.digests.extend_from_slice(&last);
        self.digests
    }
}

/// Validates data against an incremental MAC digest list, chunk by chunk.
#[derive(Clone)]
pub struct ValidatingMac {
    inner: ChunkedMac,
    expected: Vec<u8>,
    next: usize,
    validated: u64,
    fed: u64,
    failed: bool,
}

impl ValidatingMac {
    /// A validator for `digests` (a non-empty multiple of 32 bytes).
    pub fn new(key: &[u8], chunk_size: usize, digests: &[u8]) -> Result<Self> {
        if digests.is_empty() || digests.len() % DIGEST_LEN != 0 {
            return Err(Error::InvalidArgument(
                "incremental MAC must be a non-empty multiple of 32 bytes",
            ));
        }
        Ok(Self {
            inner: ChunkedMac::new(key, chunk_size)?,
            expected: digests.to_vec(),
            next: 0,
            validated: 0,
            fed: 0,
            failed: false,
        })
    }

    /// The chunk size in bytes.
    pub fn chunk_size(&self) -> usize {
        self.inner.chunk_size()
    }

    fn check(&mut self, got: &[u8; 32]) -> Result<()> {
        let start = self.next * DIGEST_LEN;
        match self.expected.get(start..start + DIGEST_LEN) {
            Some(want) if ct_eq(want, got) => {
                self.next += 1;
                Ok(())
            }
            _ => {
                self.failed = true;
                Err(Error::InvalidMessage("incremental MAC mismatch"))
            }
        }
    }

    /// Feeds `data`; returns how many bytes from the start are now validated (always a multiple
    /// of the chunk size). After a failure every call fails.
    pub fn update(&mut self, data: &[u8]) -> Result<u64> {
        if self.failed {
            return Err(Error::InvalidMessage("incremental MAC mismatch"));
        }
        let mut inner = self.inner.clone();
        let r = inner.update(data, |d| self.check(&d));
        self.inner = inner;
        r?;
        self.fed += data.len() as u64;
        self.validated = self.fed - self.inner.pending() as u64;
        Ok(self.validated)
    }

    /// Bytes validated so far.
    pub fn validated(&self) -> u64 {
        self.validated
    }

    /// The HMAC of everything fed so far.
    pub fn current(&self) -> [u8; 32] {
        self.inner.current()
    }

    /// Checks the final digest, which must be the last one of the list. Returns the total
    /// number of validated bytes.
    pub fn finalize(mut self) -> Result<u64> {
        if self.failed || (self.next + 1) * DIGEST_LEN != self.expected.len() {
            return Err(Error::InvalidMessage("incremental MAC mismatch"));
        }
        let last = self.inner.current();
        self.check(&last)?;
        Ok(self.fed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a83481457efecc69ad1342e21d9c0297f71debbf5c9304b4c1b2e433c1a78f98";

    fn key() -> Vec<u8> {
        hex::decode(KEY).unwrap()
    }

    /// libsignal's known answer (`IncrementalStreamsTest`, node `IncrementalMacTest`).
    #[test]
    fn libsignal_vector() {
        let parts = ["this is a test", " input to the incremental ", "mac stream"];
        let mut m = IncrementalMac::new(&key(), 32).unwrap();
        for p in parts {
            m.update(p.as_bytes());
        }
        assert_eq!(
            hex::encode(m.finalize()),
            "84892f70600e549fb72879667a9d96a273f144b698ff9ef5a76062a56061a909\
             884f6d9f42918a9e476ed518c4ac8f714bd33f045152ae049877fd3d1b0db25a"
        );
        // The newer Java test appends an emoji.
        let mut m = IncrementalMac::new(&key(), 32).unwrap();
        m.update("this is a test input to the incremental mac stream 👋".as_bytes());
        assert_eq!(
            hex::encode(m.finalize()),
            "84892f70600e549fb72879667a9d96a273f144b698ff9ef5a76062a56061a909\
             ac028f107e1306e1ec8d17c989fa3430d88d7b294d00828a65a2acb3efa31a1f"
        );
    }

    #[test]
    fn chunk_sizes() {
        const K: u64 = 1024;
        const M: u64 = 1024 * K;
        for (size, want) in [
            (0, 64 * K),
            (M, 64 * K),
            (16 * M - 1, 64 * K),
            (16 * M, 64 * K),
            (16 * M + 1, 64 * K + 1),
            (20 * M, 80 * K),
            (100 * M, 400 * K),
            (256 * M, M),
            (512 * M - 1, 2 * M),
            (512 * M, 2 * M),
            (2048 * M, 2 * M),
        ] {
            assert_eq!(chunk_size_for(size) as u64, want, "size {size}");
        }
    }

    #[test]
    fn validate_roundtrip_and_failures() {
        let data: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        for len in [0usize, 1, 31, 32, 33, 64, 100, 200] {
            let mut m = IncrementalMac::new(&key(), 32).unwrap();
            m.update(&data[..len]);
            let digests = m.finalize();
            assert_eq!(digests.len(), 32 * (len / 32 + 1));
            let mut v = ValidatingMac::new(&key(), 32, &digests).unwrap();
            for piece in data[..len].chunks(7) {
                let ok = v.update(piece).unwrap();
                assert_eq!(ok % 32, 0);
            }
            assert_eq!(v.finalize().unwrap(), len as u64);
            // Any flipped digest byte fails, at the latest at finalize.
            for i in (0..digests.len()).step_by(13) {
                let mut bad = digests.clone();
                bad[i] ^= 1;
                let mut v = ValidatingMac::new(&key(), 32, &bad).unwrap();
                let r = v.update(&data[..len]).and_then(|_| v.finalize());
                assert!(r.is_err(), "len {len} byte {i}");
            }
            // A missing final digest fails.
            if digests.len() > 32 {
                let mut v = ValidatingMac::new(&key(), 32, &digests[..digests.len() - 32]).unwrap();
                assert!(v.update(&data[..len]).and_then(|_| v.finalize()).is_err());
            }
        }
        assert!(IncrementalMac::new(&key(), 0).is_err());
        assert!(ValidatingMac::new(&key(), 32, &[0u8; 31]).is_err());
    }
}
