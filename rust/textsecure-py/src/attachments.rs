//! Bindings for `textsecure_core::attachments`.
//!
//! Every call that touches sizable data releases the GIL (`py.detach`) for the crypto, so two
//! threads encrypting two files use two cores. Arguments are `bytes` (the Python layer converts
//! other bytes-like objects); the core does all the work.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use textsecure_core::attachments::file::{self, FileError, Incremental};
use textsecure_core::attachments::signal::{self, SignalEncryptResult};
use textsecure_core::attachments::whatsapp::{self, MediaKeys, MediaType};
use textsecure_core::attachments::{
    chunk_size_for, padded_size, IncrementalMac, SignalDecryptor, SignalEncryptor, Threads,
    WhatsAppDecryptor, WhatsAppEncryptor,
};

use crate::convert::Int;
use crate::errors::CoreResultExt;

/// Below this many bytes the GIL is kept (releasing it costs more than the work).
const DETACH_MIN: usize = 16 * 1024;

fn file_py<T>(r: Result<T, FileError>) -> PyResult<T> {
    match r {
        Ok(v) => Ok(v),
        Err(FileError::Io(e)) => Err(e.into()),
        Err(FileError::Crypto(e)) => Err::<T, _>(e).py(),
    }
}

fn media_type(name: &str) -> PyResult<MediaType> {
    MediaType::from_name(name).py()
}

fn bytes<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, b)
}

fn run<T: Send>(py: Python<'_>, size: usize, f: impl FnOnce() -> T + Send) -> T {
    if size >= DETACH_MIN {
        py.detach(f)
    } else {
        f()
    }
}

type SignalInfo<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, usize, u64, u64);

fn signal_info<'py>(py: Python<'py>, r: &SignalEncryptResult) -> SignalInfo<'py> {
    (
        bytes(py, &r.digest),
        bytes(py, &r.incremental_mac),
        r.chunk_size,
        r.plaintext_size,
        r.blob_len,
    )
}

/// Signal's padded size for a plaintext of `size` bytes.
#[pyfunction]
fn attachment_padded_size(size: Int<u64>) -> u64 {
    let size = size.0;
    padded_size(size)
}

/// Length of the blob for a plaintext of `size` bytes.
#[pyfunction]
fn attachment_blob_len(size: Int<u64>) -> u64 {
    let size = size.0;
    signal::blob_len(size)
}

/// The incremental-MAC chunk size Signal clients use for a plaintext of `size` bytes.
#[pyfunction]
fn attachment_chunk_size(size: Int<u64>) -> usize {
    let size = size.0;
    signal::default_chunk_size(size)
}

/// libsignal's chunk-size rule for `data_size` MACed bytes.
#[pyfunction]
fn incremental_chunk_size(data_size: Int<u64>) -> usize {
    let data_size = data_size.0;
    chunk_size_for(data_size)
}

/// The incremental MAC digest list of `data`.
#[pyfunction]
fn incremental_mac<'py>(
    py: Python<'py>,
    key: &[u8],
    data: &[u8],
    chunk_size: Int<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    let chunk_size = chunk_size.0;
    let mut m = IncrementalMac::new(key, chunk_size).py()?;
    let list = run(py, data.len(), || {
        m.update(data);
        m.finalize()
    });
    Ok(bytes(py, &list))
}

fn too_large<T>() -> PyResult<T> {
    Err::<T, _>(textsecure_core::Error::InvalidArgument("data too large")).py()
}

/// A new `bytes` of `len` bytes filled by `fill`, which runs without the GIL when `len` is
/// sizable: the output is written once, straight into the Python object (no intermediate
/// buffer, no copy).
fn bytes_with<'py>(
    py: Python<'py>,
    len: usize,
    work: usize,
    fill: impl FnOnce(&mut [u8]) -> textsecure_core::Result<()> + Send,
) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, len, |buf| run(py, work.max(len), || fill(buf)).py())
}

/// One-shot encryption: (blob, digest, incremental_mac, chunk_size, plaintext_size, blob_len).
#[pyfunction]
#[pyo3(signature = (data, key, iv, chunk_size=None, threads=None))]
fn attachment_encrypt<'py>(
    py: Python<'py>,
    data: &[u8],
    key: &[u8],
    iv: &[u8],
    chunk_size: Option<Int<usize>>,
    threads: Option<Int<usize>>,
) -> PyResult<(Bound<'py, PyBytes>, SignalInfo<'py>)> {
    let chunk_size = chunk_size.map(|v| v.0);
    let threads = threads.map(|v| v.0);
    let chunk = chunk_size.unwrap_or_else(|| signal::default_chunk_size(data.len() as u64));
    // Argument errors before allocating.
    SignalEncryptor::new(key, iv, chunk).py()?;
    let Ok(len) = usize::try_from(signal::blob_len(data.len() as u64)) else {
        return too_large();
    };
    let th = Threads::from_count(threads);
    let mut info = None;
    let blob = bytes_with(py, len, data.len(), |buf| {
        info = Some(signal::encrypt_into(key, iv, chunk, data, buf, th)?);
        Ok(())
    })?;
    match info {
        Some(r) => Ok((blob, signal_info(py, &r))),
        None => too_large(),
    }
}

/// One-shot decryption (MAC, digest when given, incremental MAC when given).
#[pyfunction]
#[pyo3(signature = (blob, key, digest, size, incremental_mac=None, chunk_size=None, threads=None))]
#[allow(clippy::too_many_arguments)]
fn attachment_decrypt<'py>(
    py: Python<'py>,
    blob: &[u8],
    key: &[u8],
    digest: Option<&[u8]>,
    size: Int<u64>,
    incremental_mac: Option<&[u8]>,
    chunk_size: Option<Int<usize>>,
    threads: Option<Int<usize>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let size = size.0;
    let chunk_size = chunk_size.map(|v| v.0);
    let threads = threads.map(|v| v.0);
    let inc = match (incremental_mac, chunk_size) {
        (Some(m), Some(c)) => Some((m, c)),
        (None, _) => None,
        (Some(_), None) => {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "incremental_mac needs chunk_size",
            ))
            .py()
        }
    };
    match usize::try_from(size) {
        // The plaintext is `size` bytes: decrypted straight into the result.
        Ok(len) if len <= blob.len() => {
            let th = Threads::from_count(threads);
            bytes_with(py, len, blob.len(), |buf| {
                signal::decrypt_into(key, blob, digest, size, inc, buf, th)
            })
        }
        // Larger than the blob: surely an error; the reference path says which.
        _ => {
            let out = run(py, blob.len(), || {
                signal::decrypt_streaming(key, blob, digest, size, inc)
            })
            .py()?;
            Ok(bytes(py, &out))
        }
    }
}

/// Encrypts the file `src` into `dst`: (digest, incremental_mac, chunk_size, size, blob_len).
#[pyfunction]
#[pyo3(signature = (src, dst, key, iv, chunk_size=None))]
fn attachment_encrypt_file<'py>(
    py: Python<'py>,
    src: PathBuf,
    dst: PathBuf,
    key: &[u8],
    iv: &[u8],
    chunk_size: Option<Int<usize>>,
) -> PyResult<SignalInfo<'py>> {
    let chunk_size = chunk_size.map(|v| v.0);
    let r = py.detach(|| file::signal_encrypt_file(&src, &dst, key, iv, chunk_size));
    Ok(signal_info(py, &file_py(r)?))
}

/// Decrypts the file `src` into `dst`; `dst` appears only if every check passed.
#[pyfunction]
#[pyo3(signature = (src, dst, key, digest, size, incremental_mac=None, chunk_size=None))]
#[allow(clippy::too_many_arguments)]
fn attachment_decrypt_file(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    key: &[u8],
    digest: Option<&[u8]>,
    size: Int<u64>,
    incremental_mac: Option<&[u8]>,
    chunk_size: Option<Int<usize>>,
) -> PyResult<()> {
    let size = size.0;
    let chunk_size = chunk_size.map(|v| v.0);
    let inc = match (incremental_mac, chunk_size) {
        (Some(digests), Some(chunk_size)) => Some(Incremental {
            digests,
            chunk_size,
        }),
        (None, _) => None,
        (Some(_), None) => {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "incremental_mac needs chunk_size",
            ))
            .py()
        }
    };
    file_py(py.detach(|| file::signal_decrypt_file(&src, &dst, key, digest, size, inc)))
}

/// Streaming Signal attachment encryption.
#[pyclass(module = "textsecure._native")]
struct AttachmentEncryptor {
    inner: Option<SignalEncryptor>,
    /// Output buffer reused across calls (no fresh pages per chunk).
    buf: Vec<u8>,
}

#[pymethods]
impl AttachmentEncryptor {
    #[new]
    fn new(key: &[u8], iv: &[u8], chunk_size: Int<usize>) -> PyResult<Self> {
        let chunk_size = chunk_size.0;
        Ok(Self {
            inner: Some(SignalEncryptor::new(key, iv, chunk_size).py()?),
            buf: Vec::new(),
        })
    }

    /// Encrypts `data`; returns the blob bytes produced.
    fn update<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let Self { inner, buf } = self;
        let Some(e) = inner.as_mut() else {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "encryptor already finalized",
            ))
            .py();
        };
        buf.clear();
        run(py, data.len(), || e.update(data, buf)).py()?;
        Ok(bytes(py, buf))
    }

    /// Ends the plaintext; returns up to about `max` bytes of padding ciphertext and whether
    /// the padding is complete.
    fn pad<'py>(
        &mut self,
        py: Python<'py>,
        max: Int<usize>,
    ) -> PyResult<(Bound<'py, PyBytes>, bool)> {
        let max = max.0;
        let Some(e) = self.inner.as_mut() else {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "encryptor already finalized",
            ))
            .py();
        };
        let buf = &mut self.buf;
        buf.clear();
        let done = run(py, max, || e.pad(buf, max));
        Ok((bytes(py, buf), done))
    }

    /// Finishes: (tail bytes, (digest, incremental_mac, chunk_size, size, blob_len)).
    fn finalize<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyBytes>, SignalInfo<'py>)> {
        let Some(e) = self.inner.take() else {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "encryptor already finalized",
            ))
            .py();
        };
        let (out, r) = py.detach(|| {
            let mut out = Vec::new();
            let r = e.finalize(&mut out);
            (out, r)
        });
        Ok((bytes(py, &out), signal_info(py, &r)))
    }
}

/// Streaming Signal attachment decryption.
#[pyclass(module = "textsecure._native")]
struct AttachmentDecryptor {
    inner: Option<SignalDecryptor>,
    /// Output buffer reused across calls.
    buf: Vec<u8>,
}

#[pymethods]
impl AttachmentDecryptor {
    #[new]
    #[pyo3(signature = (key, size, digest, incremental_mac=None, chunk_size=None, blob_len=None))]
    fn new(
        key: &[u8],
        size: Int<u64>,
        digest: Option<&[u8]>,
        incremental_mac: Option<&[u8]>,
        chunk_size: Option<Int<usize>>,
        blob_len: Option<Int<u64>>,
    ) -> PyResult<Self> {
        let size = size.0;
        let chunk_size = chunk_size.map(|v| v.0);
        let blob_len = blob_len.map(|v| v.0);
        let inner = match (incremental_mac, chunk_size) {
            (Some(m), Some(c)) => SignalDecryptor::new(key, size, digest, m, c, blob_len),
            (None, None) => SignalDecryptor::new_releasing_unverified(key, size, digest, blob_len),
            _ => Err(textsecure_core::Error::InvalidArgument(
                "incremental_mac and chunk_size go together",
            )),
        };
        Ok(Self {
            inner: Some(inner.py()?),
            buf: Vec::new(),
        })
    }

    /// Feeds blob bytes; returns the plaintext released.
    fn update<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let Self { inner, buf } = self;
        let Some(d) = inner.as_mut() else {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "decryptor already finalized",
            ))
            .py();
        };
        buf.clear();
        let r = run(py, data.len(), || d.update(data, buf));
        if r.is_err() {
            *inner = None;
            *buf = Vec::new();
        }
        r.py()?;
        Ok(bytes(py, buf))
    }

    /// Checks everything; returns the last plaintext bytes.
    fn finalize<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let Some(d) = self.inner.take() else {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "decryptor already finalized",
            ))
            .py();
        };
        let out = py
            .detach(|| {
                let mut out = Vec::new();
                d.finalize(&mut out).map(|()| out)
            })
            .py()?;
        Ok(bytes(py, &out))
    }
}

/// Baileys' media type names.
#[pyfunction]
fn whatsapp_media_types() -> Vec<&'static str> {
    MediaType::names().collect()
}

/// The HKDF info of a media type.
#[pyfunction]
fn whatsapp_hkdf_info(media_type: &str) -> PyResult<&'static str> {
    Ok(self::media_type(media_type)?.hkdf_info())
}

type Four<'py> = (
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
);

/// The 112-byte expansion, split: (iv, cipher_key, mac_key, ref_key).
#[pyfunction]
fn whatsapp_media_keys<'py>(
    py: Python<'py>,
    media_key: &[u8],
    media_type: &str,
) -> PyResult<Four<'py>> {
    let k = MediaKeys::derive(media_key, self::media_type(media_type)?).py()?;
    Ok((
        bytes(py, &k.iv),
        bytes(py, &*k.cipher_key),
        bytes(py, &*k.mac_key),
        bytes(py, &*k.ref_key),
    ))
}

type WaInfo<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, u64);

fn wa_info<'py>(py: Python<'py>, r: &whatsapp::WhatsAppEncryptResult) -> WaInfo<'py> {
    (
        bytes(py, &r.file_sha256),
        bytes(py, &r.file_enc_sha256),
        r.file_length,
    )
}

/// One-shot: (file, (file_sha256, file_enc_sha256, file_length)).
#[pyfunction]
#[pyo3(signature = (data, media_type, media_key, threads=None))]
fn whatsapp_encrypt<'py>(
    py: Python<'py>,
    data: &[u8],
    media_type: &str,
    media_key: &[u8],
    threads: Option<Int<usize>>,
) -> PyResult<(Bound<'py, PyBytes>, WaInfo<'py>)> {
    let threads = threads.map(|v| v.0);
    let t = self::media_type(media_type)?;
    // Argument errors before allocating.
    MediaKeys::derive(media_key, t).py()?;
    let Ok(len) = usize::try_from(whatsapp::enc_len(data.len() as u64)) else {
        return too_large();
    };
    let th = Threads::from_count(threads);
    let mut info = None;
    let blob = bytes_with(py, len, data.len(), |buf| {
        info = Some(whatsapp::encrypt_into(media_key, t, data, buf, th)?);
        Ok(())
    })?;
    match info {
        Some(r) => Ok((blob, wa_info(py, &r))),
        None => too_large(),
    }
}

/// One-shot: checks the MAC, and the hashes when given.
#[pyfunction]
#[pyo3(signature = (blob, media_type, media_key, file_sha256=None, file_enc_sha256=None, threads=None))]
fn whatsapp_decrypt<'py>(
    py: Python<'py>,
    blob: &[u8],
    media_type: &str,
    media_key: &[u8],
    file_sha256: Option<&[u8]>,
    file_enc_sha256: Option<&[u8]>,
    threads: Option<Int<usize>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let threads = threads.map(|v| v.0);
    let t = self::media_type(media_type)?;
    let th = Threads::from_count(threads);
    // MAC and hashes first; the plaintext length is known only then (it depends on the padding).
    let v = run(py, blob.len(), || {
        whatsapp::verify(media_key, t, blob, file_sha256, file_enc_sha256, th)
    })
    .py()?;
    let len = v.len();
    bytes_with(py, len, len, |buf| v.decrypt_into(buf))
}

/// Encrypts the file `src` into `dst`: (file_sha256, file_enc_sha256, file_length).
#[pyfunction]
fn whatsapp_encrypt_file<'py>(
    py: Python<'py>,
    src: PathBuf,
    dst: PathBuf,
    media_type: &str,
    media_key: &[u8],
) -> PyResult<WaInfo<'py>> {
    let t = self::media_type(media_type)?;
    let r = py.detach(|| file::whatsapp_encrypt_file(&src, &dst, media_key, t));
    Ok(wa_info(py, &file_py(r)?))
}

/// Decrypts the file `src` into `dst` atomically; returns the plaintext length.
#[pyfunction]
#[pyo3(signature = (src, dst, media_type, media_key, file_sha256=None, file_enc_sha256=None))]
fn whatsapp_decrypt_file(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    media_type: &str,
    media_key: &[u8],
    file_sha256: Option<&[u8]>,
    file_enc_sha256: Option<&[u8]>,
) -> PyResult<u64> {
    let t = self::media_type(media_type)?;
    file_py(py.detach(|| {
        file::whatsapp_decrypt_file(&src, &dst, media_key, t, file_sha256, file_enc_sha256)
    }))
}

/// Streaming WhatsApp media encryption.
#[pyclass(module = "textsecure._native")]
struct WhatsAppMediaEncryptor {
    inner: Option<WhatsAppEncryptor>,
    /// Output buffer reused across calls.
    buf: Vec<u8>,
}

#[pymethods]
impl WhatsAppMediaEncryptor {
    #[new]
    fn new(media_key: &[u8], media_type: &str) -> PyResult<Self> {
        let t = self::media_type(media_type)?;
        Ok(Self {
            inner: Some(WhatsAppEncryptor::new(media_key, t).py()?),
            buf: Vec::new(),
        })
    }

    fn update<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let Self { inner, buf } = self;
        let Some(e) = inner.as_mut() else {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "encryptor already finalized",
            ))
            .py();
        };
        buf.clear();
        run(py, data.len(), || e.update(data, buf));
        Ok(bytes(py, buf))
    }

    fn finalize<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyBytes>, WaInfo<'py>)> {
        let Some(e) = self.inner.take() else {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "encryptor already finalized",
            ))
            .py();
        };
        let mut out = Vec::new();
        let r = e.finalize(&mut out);
        Ok((bytes(py, &out), wa_info(py, &r)))
    }
}

/// Streaming WhatsApp media decryption (output is authenticated only by `finalize`).
#[pyclass(module = "textsecure._native")]
struct WhatsAppMediaDecryptor {
    inner: Option<WhatsAppDecryptor>,
    /// Output buffer reused across calls.
    buf: Vec<u8>,
}

#[pymethods]
impl WhatsAppMediaDecryptor {
    #[new]
    #[pyo3(signature = (media_key, media_type, file_sha256=None, file_enc_sha256=None, enc_len=None))]
    fn new(
        media_key: &[u8],
        media_type: &str,
        file_sha256: Option<&[u8]>,
        file_enc_sha256: Option<&[u8]>,
        enc_len: Option<Int<u64>>,
    ) -> PyResult<Self> {
        let enc_len = enc_len.map(|v| v.0);
        let t = self::media_type(media_type)?;
        let d = WhatsAppDecryptor::new(media_key, t, file_sha256, file_enc_sha256, enc_len).py()?;
        Ok(Self {
            inner: Some(d),
            buf: Vec::new(),
        })
    }

    fn update<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let Self { inner, buf } = self;
        let Some(d) = inner.as_mut() else {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "decryptor already finalized",
            ))
            .py();
        };
        buf.clear();
        let r = run(py, data.len(), || d.update(data, buf));
        if r.is_err() {
            *inner = None;
            *buf = Vec::new();
        }
        r.py()?;
        Ok(bytes(py, buf))
    }

    fn finalize<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyBytes>, u64)> {
        let Some(d) = self.inner.take() else {
            return Err::<_, textsecure_core::Error>(textsecure_core::Error::InvalidArgument(
                "decryptor already finalized",
            ))
            .py();
        };
        let mut out = Vec::new();
        let n = d.finalize(&mut out).py()?;
        Ok((bytes(py, &out), n))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(attachment_padded_size, m)?)?;
    m.add_function(wrap_pyfunction!(attachment_blob_len, m)?)?;
    m.add_function(wrap_pyfunction!(attachment_chunk_size, m)?)?;
    m.add_function(wrap_pyfunction!(incremental_chunk_size, m)?)?;
    m.add_function(wrap_pyfunction!(incremental_mac, m)?)?;
    m.add_function(wrap_pyfunction!(attachment_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(attachment_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(attachment_encrypt_file, m)?)?;
    m.add_function(wrap_pyfunction!(attachment_decrypt_file, m)?)?;
    m.add_class::<AttachmentEncryptor>()?;
    m.add_class::<AttachmentDecryptor>()?;
    m.add_function(wrap_pyfunction!(whatsapp_media_types, m)?)?;
    m.add_function(wrap_pyfunction!(whatsapp_hkdf_info, m)?)?;
    m.add_function(wrap_pyfunction!(whatsapp_media_keys, m)?)?;
    m.add_function(wrap_pyfunction!(whatsapp_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(whatsapp_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(whatsapp_encrypt_file, m)?)?;
    m.add_function(wrap_pyfunction!(whatsapp_decrypt_file, m)?)?;
    m.add_class::<WhatsAppMediaEncryptor>()?;
    m.add_class::<WhatsAppMediaDecryptor>()?;
    Ok(())
}
