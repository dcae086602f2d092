//! Encrypting and decrypting between `Read` and `Write` (files), in bounded memory.
//!
//! Decryption into a path writes a temporary file next to the destination and renames it into
//! place only after every check passed; on failure the temporary file is removed, so no
//! unauthenticated plaintext is ever left at the destination.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::signal::{default_chunk_size, SignalDecryptor, SignalEncryptResult, SignalEncryptor};
use super::whatsapp::{MediaType, WhatsAppDecryptor, WhatsAppEncryptResult, WhatsAppEncryptor};
use crate::error::Error;

/// Read size of the file helpers.
pub const IO_BUF: usize = 1 << 20;

/// An I/O failure or a cryptographic one.
#[derive(Debug)]
pub enum FileError {
    /// Reading or writing failed.
    Io(io::Error),
    /// Bad key, tampered data...
    Crypto(Error),
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<Error> for FileError {
    fn from(e: Error) -> Self {
        Self::Crypto(e)
    }
}

/// Result of the file helpers.
pub type FileResult<T> = Result<T, FileError>;

/// Reads until `buf` is full or EOF; returns the count.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Streams `r` through `step`, writing its output to `w`.
fn pump(
    r: &mut impl Read,
    w: &mut impl Write,
    mut step: impl FnMut(&[u8], &mut Vec<u8>) -> Result<(), Error>,
) -> FileResult<()> {
    let mut inp = vec![0u8; IO_BUF];
    let mut out = Vec::with_capacity(IO_BUF + 4096);
    loop {
        let n = read_full(r, &mut inp)?;
        if n == 0 {
            return Ok(());
        }
        out.clear();
        step(&inp[..n], &mut out)?;
        w.write_all(&out)?;
    }
}

/// Encrypts a Signal attachment from `r` to `w`. `chunk_size` defaults to Signal's rule for
/// `size_hint` (the plaintext size, when known).
pub fn signal_encrypt_stream(
    r: &mut impl Read,
    w: &mut impl Write,
    key: &[u8],
    iv: &[u8],
    chunk_size: usize,
) -> FileResult<SignalEncryptResult> {
    let mut e = SignalEncryptor::new(key, iv, chunk_size)?;
    pump(r, w, |d, out| e.update(d, out))?;
    let mut out = Vec::with_capacity(IO_BUF + 4096);
    while !e.pad(&mut out, IO_BUF) {
        w.write_all(&out)?;
        out.clear();
    }
    let res = e.finalize(&mut out);
    w.write_all(&out)?;
    w.flush()?;
    Ok(res)
}

/// Encrypts the file `src` into `dst` (created or truncated).
pub fn signal_encrypt_file(
    src: &Path,
    dst: &Path,
    key: &[u8],
    iv: &[u8],
    chunk_size: Option<usize>,
) -> FileResult<SignalEncryptResult> {
    let mut r = File::open(src)?;
    let size = r.metadata()?.len();
    let chunk = chunk_size.unwrap_or_else(|| default_chunk_size(size));
    let mut w = File::create(dst)?;
    signal_encrypt_stream(&mut r, &mut w, key, iv, chunk)
}

/// A temporary file next to `dst`, removed on drop unless persisted.
struct TempOut {
    path: PathBuf,
    file: Option<File>,
}

impl TempOut {
    fn new(dst: &Path) -> io::Result<Self> {
        let dir = dst
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dst
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut rnd = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut rnd);
        let tag: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let path = dir.join(format!(".{name}.{tag}.partial"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Self {
            path,
            file: Some(file),
        })
    }

    fn persist(mut self, dst: &Path) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        std::fs::rename(&self.path, dst)
    }
}

impl Drop for TempOut {
    fn drop(&mut self) {
        self.file.take();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where the incremental MAC comes from, for [`signal_decrypt_file`].
pub struct Incremental<'a> {
    /// The digest list.
    pub digests: &'a [u8],
    /// Its chunk size.
    pub chunk_size: usize,
}

/// Decrypts the Signal attachment `src` into `dst`, atomically (see the module docs).
pub fn signal_decrypt_file(
    src: &Path,
    dst: &Path,
    key: &[u8],
    digest: Option<&[u8]>,
    size: u64,
    incremental: Option<Incremental<'_>>,
) -> FileResult<()> {
    let mut r = File::open(src)?;
    let blob_len = Some(r.metadata()?.len());
    let mut d = match incremental {
        Some(i) => SignalDecryptor::new(key, size, digest, i.digests, i.chunk_size, blob_len)?,
        None => SignalDecryptor::new_releasing_unverified(key, size, digest, blob_len)?,
    };
    let mut tmp = TempOut::new(dst)?;
    {
        let Some(w) = tmp.file.as_mut() else {
            return Err(FileError::Io(io::Error::other("temporary file closed")));
        };
        let mut w = io::BufWriter::with_capacity(IO_BUF, w);
        pump(&mut r, &mut w, |b, out| d.update(b, out))?;
        let mut out = Vec::new();
        d.finalize(&mut out)?;
        w.write_all(&out)?;
        w.flush()?;
    }
    tmp.persist(dst)?;
    Ok(())
}

/// Encrypts WhatsApp media from `r` to `w`.
pub fn whatsapp_encrypt_stream(
    r: &mut impl Read,
    w: &mut impl Write,
    media_key: &[u8],
    media_type: MediaType,
) -> FileResult<WhatsAppEncryptResult> {
    let mut e = WhatsAppEncryptor::new(media_key, media_type)?;
    pump(r, w, |d, out| {
        e.update(d, out);
        Ok(())
    })?;
    let mut out = Vec::new();
    let res = e.finalize(&mut out);
    w.write_all(&out)?;
    w.flush()?;
    Ok(res)
}

/// Encrypts the file `src` into `dst` (created or truncated).
pub fn whatsapp_encrypt_file(
    src: &Path,
    dst: &Path,
    media_key: &[u8],
    media_type: MediaType,
) -> FileResult<WhatsAppEncryptResult> {
    let mut r = File::open(src)?;
    let mut w = File::create(dst)?;
    whatsapp_encrypt_stream(&mut r, &mut w, media_key, media_type)
}

/// Decrypts WhatsApp media `src` into `dst`, atomically; returns the plaintext length.
pub fn whatsapp_decrypt_file(
    src: &Path,
    dst: &Path,
    media_key: &[u8],
    media_type: MediaType,
    file_sha256: Option<&[u8]>,
    file_enc_sha256: Option<&[u8]>,
) -> FileResult<u64> {
    let mut r = File::open(src)?;
    let enc_len = Some(r.metadata()?.len());
    let mut d =
        WhatsAppDecryptor::new(media_key, media_type, file_sha256, file_enc_sha256, enc_len)?;
    let mut tmp = TempOut::new(dst)?;
    let n;
    {
        let Some(w) = tmp.file.as_mut() else {
            return Err(FileError::Io(io::Error::other("temporary file closed")));
        };
        let mut w = io::BufWriter::with_capacity(IO_BUF, w);
        pump(&mut r, &mut w, |b, out| d.update(b, out))?;
        let mut out = Vec::new();
        n = d.finalize(&mut out)?;
        w.write_all(&out)?;
        w.flush()?;
    }
    tmp.persist(dst)?;
    Ok(n)
}
