//! Bindings for the primitives, exposed as `textsecure.hazmat` for cross-checking.
//!
//! Hazardous: these are raw primitives for tests and interop, not the protocol API. Every
//! function takes any bytes-like object (bytes, bytearray, memoryview or another buffer) and
//! returns `bytes` (or `bool`). Errors go through the single mapping point in `errors.rs`.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyInt, PyMemoryView};
use textsecure_core::crypto;
use textsecure_core::curve::{PrivateKey, PublicKey};
use textsecure_core::{Error, Result as CoreResult};

use crate::errors::CoreResultExt;

/// HKDF-SHA256 can expand at most 255 hash lengths.
const HKDF_MAX_OUTPUT: usize = 255 * 32;

/// Any bytes-like argument: `bytes` and `bytearray` directly, other buffer-protocol objects
/// (memoryview, array.array, …) through a `memoryview(...).tobytes()` copy. `str`, `int` and
/// sequences are refused with `TypeError` (no `bytes(obj)`-style coercion).
struct BytesLike(PyBackedBytes);

impl<'a, 'py> FromPyObject<'a, 'py> for BytesLike {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(b) = obj.extract::<PyBackedBytes>() {
            return Ok(Self(b));
        }
        let not_bytes = || {
            let type_name = obj
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".to_owned());
            PyTypeError::new_err(format!("expected a bytes-like object, got {type_name}"))
        };
        let view = PyMemoryView::from(&obj.to_owned()).map_err(|_| not_bytes())?;
        let copy = view.call_method0("tobytes")?;
        copy.extract::<PyBackedBytes>()
            .map(Self)
            .map_err(|_| not_bytes())
    }
}

impl core::ops::Deref for BytesLike {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

fn key32(b: &[u8]) -> CoreResult<[u8; 32]> {
    b.try_into()
        .map_err(|_| Error::InvalidKey("key must be 32 bytes"))
}

fn u_coordinate(b: &[u8]) -> CoreResult<PublicKey> {
    let u: [u8; 32] = b
        .try_into()
        .map_err(|_| Error::InvalidKey("X25519 public key must be 32 raw bytes"))?;
    Ok(PublicKey::from_djb_bytes(u))
}

fn block16(b: &[u8], what: &'static str) -> CoreResult<[u8; 16]> {
    b.try_into().map_err(|_| Error::InvalidArgument(what))
}

/// X25519(private, public_u): 32 raw bytes each. The private key is clamped. An all-zero
/// result (low-order public key) raises InvalidKey.
#[pyfunction]
fn hazmat_x25519<'py>(
    py: Python<'py>,
    private: BytesLike,
    public_u: BytesLike,
) -> PyResult<Bound<'py, PyBytes>> {
    let k = PrivateKey::deserialize(&private).py()?;
    let p = u_coordinate(&public_u).py()?;
    let shared = k.agree(&p).py()?;
    Ok(PyBytes::new(py, shared.as_ref()))
}

/// The raw 32-byte X25519 public key (u-coordinate) of a 32-byte private key.
#[pyfunction]
fn hazmat_x25519_public<'py>(py: Python<'py>, private: BytesLike) -> PyResult<Bound<'py, PyBytes>> {
    let k = PrivateKey::deserialize(&private).py()?;
    Ok(PyBytes::new(py, k.public_key().djb_bytes()))
}

/// HKDF-SHA256 (RFC 5869); `salt=None` or empty means no salt. At most 8160 bytes.
#[pyfunction]
#[pyo3(signature = (ikm, salt, info, length))]
fn hazmat_hkdf_sha256<'py>(
    py: Python<'py>,
    ikm: BytesLike,
    salt: Option<BytesLike>,
    info: BytesLike,
    length: &Bound<'py, PyInt>,
) -> PyResult<Bound<'py, PyBytes>> {
    let length = length
        .extract::<usize>()
        .ok()
        .filter(|&n| n <= HKDF_MAX_OUTPUT)
        .ok_or(Error::InvalidArgument(
            "HKDF output length must be 0..=8160",
        ))
        .py()?;
    let mut out = vec![0u8; length];
    crypto::hkdf_sha256(salt.as_deref(), &ikm, &info, &mut out).py()?;
    Ok(PyBytes::new(py, &out))
}

/// HMAC-SHA256(key, data): 32 bytes. Any key length.
#[pyfunction]
fn hazmat_hmac_sha256<'py>(
    py: Python<'py>,
    key: BytesLike,
    data: BytesLike,
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &crypto::hmac_sha256(&key, &[&data])))
}

/// AES-256-CBC with PKCS#7 padding.
#[pyfunction]
fn hazmat_aes256_cbc_encrypt<'py>(
    py: Python<'py>,
    key: BytesLike,
    iv: BytesLike,
    plaintext: BytesLike,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = key32(&key).py()?;
    let iv = block16(&iv, "IV must be 16 bytes").py()?;
    Ok(PyBytes::new(
        py,
        &crypto::aes256_cbc_encrypt(&key, &iv, &plaintext),
    ))
}

/// AES-256-CBC decryption with PKCS#7 unpadding; bad length or padding raises InvalidMessage.
#[pyfunction]
fn hazmat_aes256_cbc_decrypt<'py>(
    py: Python<'py>,
    key: BytesLike,
    iv: BytesLike,
    ciphertext: BytesLike,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = key32(&key).py()?;
    let iv = block16(&iv, "IV must be 16 bytes").py()?;
    let pt = crypto::aes256_cbc_decrypt(&key, &iv, &ciphertext).py()?;
    Ok(PyBytes::new(py, &pt))
}

/// AES-256-CTR from a 16-byte initial counter block whose last 4 bytes count big-endian
/// (wrapping mod 2^32). Encryption and decryption are the same operation.
#[pyfunction]
fn hazmat_aes256_ctr<'py>(
    py: Python<'py>,
    key: BytesLike,
    nonce16: BytesLike,
    data: BytesLike,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = key32(&key).py()?;
    let nonce = block16(&nonce16, "CTR nonce must be 16 bytes").py()?;
    let mut buf = data.to_vec();
    crypto::aes256_ctr32_apply(&key, &nonce, &mut buf);
    Ok(PyBytes::new(py, &buf))
}

/// XEdDSA signature (64 bytes, libsignal's sign-bit convention) with fresh randomness.
#[pyfunction]
fn hazmat_xeddsa_sign<'py>(
    py: Python<'py>,
    private: BytesLike,
    message: BytesLike,
) -> PyResult<Bound<'py, PyBytes>> {
    let k = PrivateKey::deserialize(&private).py()?;
    Ok(PyBytes::new(py, &k.sign(&message)))
}

/// XEdDSA verification against a 33-byte (0x05-prefixed) public key. A signature that is not
/// 64 bytes simply does not verify (False); a malformed public key raises InvalidKey.
#[pyfunction]
fn hazmat_xeddsa_verify(
    public33: BytesLike,
    message: BytesLike,
    signature: BytesLike,
) -> PyResult<bool> {
    let p = PublicKey::deserialize_exact(&public33).py()?;
    Ok(p.verify_signature(&message, &signature))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hazmat_x25519, m)?)?;
    m.add_function(wrap_pyfunction!(hazmat_x25519_public, m)?)?;
    m.add_function(wrap_pyfunction!(hazmat_hkdf_sha256, m)?)?;
    m.add_function(wrap_pyfunction!(hazmat_hmac_sha256, m)?)?;
    m.add_function(wrap_pyfunction!(hazmat_aes256_cbc_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(hazmat_aes256_cbc_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(hazmat_aes256_ctr, m)?)?;
    m.add_function(wrap_pyfunction!(hazmat_xeddsa_sign, m)?)?;
    m.add_function(wrap_pyfunction!(hazmat_xeddsa_verify, m)?)?;
    Ok(())
}
