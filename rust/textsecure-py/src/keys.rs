//! Key types: Curve25519 keys, identity keys, Kyber / ML-KEM keys.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::PyBytes;

use textsecure_core::{curve, kem, prekey};

use crate::convert::BytesLike;
use crate::errors::CoreResultExt;

/// A Curve25519 public key; ``bytes()`` is libsignal's 33-byte form (``0x05`` and the key).
/// ``verify`` returns False for a signature that does not verify and never raises on the
/// signature's content.
#[pyclass(module = "textsecure._native", name = "PublicKey", frozen, subclass)]
#[derive(Clone)]
pub(crate) struct PublicKey {
    pub(crate) inner: curve::PublicKey,
}

#[pymethods]
impl PublicKey {
    /// Reads the 33-byte form; raises ``InvalidKey`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: curve::PublicKey::deserialize_exact(&data).py()?,
        })
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.serialize())
    }

    /// Verifies an XEdDSA signature (libsignal's convention).
    fn verify(&self, message: BytesLike<'_>, signature: BytesLike<'_>) -> bool {
        self.inner.verify_signature(&message, &signature)
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(o) = other.cast::<PublicKey>() else {
            return Ok(py.NotImplemented());
        };
        let eq = o.get().inner == self.inner;
        match op {
            CompareOp::Eq => Ok(eq.into_pyobject(py)?.to_owned().into_any().unbind()),
            CompareOp::Ne => Ok((!eq).into_pyobject(py)?.to_owned().into_any().unbind()),
            _ => Ok(py.NotImplemented()),
        }
    }

    fn __hash__(&self) -> u64 {
        let b = self.inner.djb_bytes();
        let mut h = [0u8; 8];
        h.copy_from_slice(&b[..8]);
        u64::from_le_bytes(h)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let name = slf.get_type().name()?;
        Ok(format!("<{name} 05{}>", hex(slf.get().inner.djb_bytes())))
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An identity key: a public key used as a long-term identity.
#[pyclass(module = "textsecure._native", name = "IdentityKey", frozen, extends = PublicKey)]
pub(crate) struct IdentityKey;

#[pymethods]
impl IdentityKey {
    /// Reads an identity key from its 33 bytes (``0x05`` and the key); raises ``InvalidKey`` on bad
    /// input.
    #[staticmethod]
    #[pyo3(name = "from_bytes")]
    fn from_bytes_identity(py: Python<'_>, data: BytesLike<'_>) -> PyResult<Py<IdentityKey>> {
        let k = curve::PublicKey::deserialize_exact(&data).py()?;
        new_identity_key(py, k)
    }
}

pub(crate) fn new_identity_key(py: Python<'_>, k: curve::PublicKey) -> PyResult<Py<IdentityKey>> {
    Py::new(
        py,
        PyClassInitializer::from(PublicKey { inner: k }).add_subclass(IdentityKey),
    )
}

/// A public key argument: a `PublicKey` (or `IdentityKey`) or its 33 bytes.
pub(crate) fn public_key_arg(obj: &Bound<'_, PyAny>) -> PyResult<curve::PublicKey> {
    if let Ok(k) = obj.cast::<PublicKey>() {
        return Ok(k.get().inner);
    }
    match obj.extract::<BytesLike<'_>>() {
        Ok(b) => curve::PublicKey::deserialize_exact(&b).py(),
        Err(_) => Err(PyTypeError::new_err("expected a PublicKey or its 33 bytes")),
    }
}

/// A Curve25519 private key. ``bytes()`` is the 32 raw bytes: a secret (see the Secrets page);
/// ``repr()`` never shows them.
#[pyclass(module = "textsecure._native", name = "PrivateKey", frozen)]
pub(crate) struct PrivateKey {
    pub(crate) inner: curve::PrivateKey,
}

#[pymethods]
impl PrivateKey {
    /// Generates a new random private key.
    #[staticmethod]
    fn generate() -> Self {
        Self {
            inner: curve::PrivateKey::generate(),
        }
    }

    /// From 32 bytes; clamps, as libsignal does.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: curve::PrivateKey::deserialize(&data).py()?,
        })
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.serialize())
    }

    /// The matching public key.
    #[getter]
    fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.public_key(),
        }
    }

    /// X25519 agreement (32 bytes).
    fn agree<'py>(
        &self,
        py: Python<'py>,
        public_key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let k = public_key_arg(public_key)?;
        let shared = self.inner.agree(&k).py()?;
        Ok(PyBytes::new(py, shared.as_ref()))
    }

    /// XEdDSA signature (64 bytes).
    fn sign<'py>(&self, py: Python<'py>, message: BytesLike<'_>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.sign(&message))
    }

    fn __repr__(&self) -> String {
        format!(
            "<PrivateKey public=05{} private=<redacted>>",
            hex(self.inner.public_key().djb_bytes())
        )
    }
}

/// A private key argument: a `PrivateKey` or its 32 bytes.
pub(crate) fn private_key_arg(obj: &Bound<'_, PyAny>) -> PyResult<curve::PrivateKey> {
    if let Ok(k) = obj.cast::<PrivateKey>() {
        return Ok(k.get().inner.clone());
    }
    match obj.extract::<BytesLike<'_>>() {
        Ok(b) => curve::PrivateKey::deserialize(&b).py(),
        Err(_) => Err(PyTypeError::new_err(
            "expected a PrivateKey or its 32 bytes",
        )),
    }
}

/// An account's long-term identity: the identity key and its private key. ``bytes()`` is
/// libsignal's ``IdentityKeyPairStructure`` and CONTAINS THE PRIVATE KEY: a secret (see the Secrets
/// page).
#[pyclass(module = "textsecure._native", name = "IdentityKeyPair", frozen)]
pub(crate) struct IdentityKeyPair {
    pub(crate) inner: prekey::IdentityKeyPair,
}

#[pymethods]
impl IdentityKeyPair {
    /// Generates a new random identity key pair.
    #[staticmethod]
    fn generate() -> Self {
        Self {
            inner: prekey::IdentityKeyPair::generate(),
        }
    }

    /// The identity key pair of a 32-byte private key (the public key is derived).
    #[staticmethod]
    fn from_private_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: prekey::IdentityKeyPair::from_private(
                curve::PrivateKey::deserialize(&data).py()?,
            ),
        })
    }

    /// From libsignal's `IdentityKeyPairStructure`.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: prekey::IdentityKeyPair::deserialize(&data).py()?,
        })
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.serialize())
    }

    /// The identity key (public; shared with every contact).
    #[getter]
    fn public_key(&self, py: Python<'_>) -> PyResult<Py<IdentityKey>> {
        new_identity_key(py, self.inner.public_key)
    }

    /// The private key: a secret.
    #[getter]
    fn private_key(&self) -> PrivateKey {
        PrivateKey {
            inner: self.inner.private_key.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<IdentityKeyPair public=05{} private=<redacted>>",
            hex(self.inner.public_key.djb_bytes())
        )
    }
}

/// A Kyber-1024 (type byte ``0x08``) or ML-KEM-1024 (``0x0A``) public key; ``bytes()`` is the type
/// byte and the raw key.
#[pyclass(module = "textsecure._native", name = "KyberPublicKey", frozen)]
#[derive(Clone)]
pub(crate) struct KyberPublicKey {
    pub(crate) inner: kem::PublicKey,
}

#[pymethods]
impl KyberPublicKey {
    /// Reads a type byte and raw key; raises ``InvalidKey`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: kem::PublicKey::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.serialize())
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<KyberPublicKey>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }
    fn __hash__(&self) -> u64 {
        let s = self.inner.serialize();
        let mut h = [0u8; 8];
        h.copy_from_slice(&s[1..9]);
        u64::from_le_bytes(h)
    }
    fn __repr__(&self) -> String {
        format!(
            "<KyberPublicKey type=0x{:02x}>",
            self.inner.key_type().byte()
        )
    }
}

/// A Kyber public key argument: a `KyberPublicKey` or its 1569 bytes.
pub(crate) fn kyber_public_arg(obj: &Bound<'_, PyAny>) -> PyResult<kem::PublicKey> {
    if let Ok(k) = obj.cast::<KyberPublicKey>() {
        return Ok(k.get().inner.clone());
    }
    match obj.extract::<BytesLike<'_>>() {
        Ok(b) => kem::PublicKey::deserialize(&b).py(),
        Err(_) => Err(PyTypeError::new_err(
            "expected a KyberPublicKey or its bytes",
        )),
    }
}

/// A Kyber-1024 secret key. ``bytes()`` (type byte and raw key) exports it: a secret (see the
/// Secrets page).
#[pyclass(module = "textsecure._native", name = "KyberSecretKey", frozen)]
pub(crate) struct KyberSecretKey {
    pub(crate) inner: kem::SecretKey,
}

#[pymethods]
impl KyberSecretKey {
    /// Reads a type byte and raw secret key; raises ``InvalidKey`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: kem::SecretKey::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.serialize())
    }
    fn __repr__(&self) -> String {
        format!(
            "<KyberSecretKey type=0x{:02x} <redacted>>",
            self.inner.key_type().byte()
        )
    }
}

/// A Kyber-1024 (or ML-KEM-1024) key pair. Its ``secret_key`` is a secret.
#[pyclass(module = "textsecure._native", name = "KyberKeyPair", frozen)]
pub(crate) struct KyberKeyPair {
    pub(crate) inner: kem::KeyPair,
}

#[pymethods]
impl KyberKeyPair {
    #[new]
    fn new(
        secret_key: &Bound<'_, KyberSecretKey>,
        public_key: &Bound<'_, KyberPublicKey>,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: kem::KeyPair::new(
                secret_key.get().inner.clone(),
                public_key.get().inner.clone(),
            )
            .py()?,
        })
    }

    /// A fresh Kyber-1024 (type 0x08) key pair; `ml_kem=True` gives ML-KEM-1024 (0x0A).
    #[staticmethod]
    #[pyo3(signature = (*, ml_kem = false))]
    fn generate(ml_kem: bool) -> PyResult<Self> {
        let t = if ml_kem {
            kem::KeyType::MlKem1024
        } else {
            kem::KeyType::Kyber1024
        };
        Ok(Self {
            inner: kem::KeyPair::generate(t).py()?,
        })
    }

    /// The public key.
    #[getter]
    fn public_key(&self) -> KyberPublicKey {
        KyberPublicKey {
            inner: self.inner.public_key.clone(),
        }
    }

    /// The secret key: a secret (``bytes()`` of it exports the key).
    #[getter]
    fn secret_key(&self) -> KyberSecretKey {
        KyberSecretKey {
            inner: self.inner.secret_key.clone(),
        }
    }

    /// Encapsulates to this key pair's public key: (shared secret, ciphertext).
    fn encapsulate<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let (ss, ct) = self.inner.public_key.encapsulate().py()?;
        Ok((PyBytes::new(py, ss.as_ref()), PyBytes::new(py, &ct)))
    }

    /// Decapsulates a serialized ciphertext (type byte + 1568 bytes).
    fn decapsulate<'py>(
        &self,
        py: Python<'py>,
        ciphertext: BytesLike<'_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let ss = self.inner.secret_key.decapsulate(&ciphertext).py()?;
        Ok(PyBytes::new(py, ss.as_ref()))
    }

    fn __repr__(&self) -> String {
        format!(
            "<KyberKeyPair type=0x{:02x} <redacted>>",
            self.inner.public_key.key_type().byte()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PublicKey>()?;
    m.add_class::<IdentityKey>()?;
    m.add_class::<PrivateKey>()?;
    m.add_class::<IdentityKeyPair>()?;
    m.add_class::<KyberPublicKey>()?;
    m.add_class::<KyberSecretKey>()?;
    m.add_class::<KyberKeyPair>()?;
    Ok(())
}
