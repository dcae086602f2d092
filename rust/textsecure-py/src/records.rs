//! Records (libsignal's storage format) and prekey bundles.

use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use textsecure_core::{prekey, state, Error};

use crate::convert::{opt, BytesLike, Int};
use crate::errors::{to_py, CoreResultExt};
use crate::keys::{
    kyber_public_arg, new_identity_key, private_key_arg, public_key_arg, IdentityKey,
    IdentityKeyPair, KyberKeyPair, KyberPublicKey, PrivateKey, PublicKey,
};

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A one-time prekey as libsignal stores it: an id and a Curve25519 key pair. ``bytes()``
/// (libsignal's ``PreKeyRecordStructure``) CONTAINS THE PRIVATE KEY: a secret (see the Secrets
/// page).
#[pyclass(module = "textsecure._native", name = "PreKeyRecord", frozen)]
pub(crate) struct PreKeyRecord {
    pub(crate) inner: prekey::PreKeyRecord,
}

#[pymethods]
impl PreKeyRecord {
    #[new]
    fn new(id: Int<u32>, private_key: &Bound<'_, PyAny>) -> PyResult<Self> {
        let id = id.0;
        Ok(Self {
            inner: prekey::PreKeyRecord::new(id, private_key_arg(private_key)?),
        })
    }
    /// Generates a one-time prekey with id ``id``.
    #[staticmethod]
    fn generate(id: Int<u32>) -> Self {
        let id = id.0;
        Self {
            inner: prekey::PreKeyRecord::new(id, textsecure_core::curve::PrivateKey::generate()),
        }
    }
    /// Reads libsignal's ``PreKeyRecordStructure``; raises ``InvalidRecord`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: prekey::PreKeyRecord::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.serialize())
    }
    /// The prekey id.
    #[getter]
    fn id(&self) -> u32 {
        self.inner.id
    }
    /// The public key (what a bundle carries).
    #[getter]
    fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.key_pair.public_key,
        }
    }
    /// The private key: a secret.
    #[getter]
    fn private_key(&self) -> PrivateKey {
        PrivateKey {
            inner: self.inner.key_pair.private_key.clone(),
        }
    }
    fn __repr__(&self) -> String {
        format!("<PreKeyRecord id={}>", self.inner.id)
    }
}

/// A signed prekey as libsignal stores it: id, Curve25519 key pair, the identity key's signature
/// over the public key, and the creation time. ``bytes()`` (libsignal's
/// ``SignedPreKeyRecordStructure``) CONTAINS THE PRIVATE KEY: a secret (see the Secrets page).
#[pyclass(module = "textsecure._native", name = "SignedPreKeyRecord", frozen)]
pub(crate) struct SignedPreKeyRecord {
    pub(crate) inner: prekey::SignedPreKeyRecord,
}

#[pymethods]
impl SignedPreKeyRecord {
    #[new]
    fn new(
        id: Int<u32>,
        private_key: &Bound<'_, PyAny>,
        signature: BytesLike<'_>,
        timestamp: Int<u64>,
    ) -> PyResult<Self> {
        let id = id.0;
        let timestamp = timestamp.0;
        Ok(Self {
            inner: prekey::SignedPreKeyRecord {
                id,
                key_pair: textsecure_core::curve::KeyPair::from_private(private_key_arg(
                    private_key,
                )?),
                signature: signature.to_vec(),
                timestamp,
            },
        })
    }
    /// Generates a signed prekey signed by ``identity``; ``timestamp`` (ms) defaults to now.
    #[staticmethod]
    #[pyo3(signature = (id, identity, timestamp = None))]
    fn generate(
        id: Int<u32>,
        identity: &Bound<'_, IdentityKeyPair>,
        timestamp: Option<Int<u64>>,
    ) -> Self {
        let id = id.0;
        let timestamp = timestamp.map(|v| v.0);
        Self {
            inner: prekey::SignedPreKeyRecord::generate(
                id,
                &identity.get().inner,
                timestamp.unwrap_or_else(now_ms),
            ),
        }
    }
    /// Reads libsignal's ``SignedPreKeyRecordStructure``; raises ``InvalidRecord`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: prekey::SignedPreKeyRecord::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.serialize())
    }
    /// The prekey id.
    #[getter]
    fn id(&self) -> u32 {
        self.inner.id
    }
    /// The public key (what a bundle carries).
    #[getter]
    fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.key_pair.public_key,
        }
    }
    /// The private key: a secret.
    #[getter]
    fn private_key(&self) -> PrivateKey {
        PrivateKey {
            inner: self.inner.key_pair.private_key.clone(),
        }
    }
    /// The identity key's XEdDSA signature over the serialized public key.
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.signature)
    }
    /// When the prekey was created (ms since the epoch).
    #[getter]
    fn timestamp(&self) -> u64 {
        self.inner.timestamp
    }
    fn __repr__(&self) -> String {
        format!(
            "<SignedPreKeyRecord id={} timestamp={}>",
            self.inner.id, self.inner.timestamp
        )
    }
}

/// A Kyber prekey as libsignal stores it: id, key pair, the identity key's signature over the
/// public key, and the creation time. ``bytes()`` (libsignal's ``KyberPreKeyRecordStructure``)
/// CONTAINS THE SECRET KEY: a secret (see the Secrets page).
#[pyclass(module = "textsecure._native", name = "KyberPreKeyRecord", frozen)]
pub(crate) struct KyberPreKeyRecord {
    pub(crate) inner: prekey::KyberPreKeyRecord,
}

#[pymethods]
impl KyberPreKeyRecord {
    #[new]
    fn new(
        id: Int<u32>,
        key_pair: &Bound<'_, KyberKeyPair>,
        signature: BytesLike<'_>,
        timestamp: Int<u64>,
    ) -> Self {
        let id = id.0;
        let timestamp = timestamp.0;
        Self {
            inner: prekey::KyberPreKeyRecord {
                id,
                key_pair: key_pair.get().inner.clone(),
                signature: signature.to_vec(),
                timestamp,
            },
        }
    }
    /// Generates a Kyber-1024 prekey signed by ``identity``; ``timestamp`` (ms) defaults to now.
    #[staticmethod]
    #[pyo3(signature = (id, identity, timestamp = None))]
    fn generate(
        id: Int<u32>,
        identity: &Bound<'_, IdentityKeyPair>,
        timestamp: Option<Int<u64>>,
    ) -> PyResult<Self> {
        let id = id.0;
        let timestamp = timestamp.map(|v| v.0);
        Ok(Self {
            inner: prekey::KyberPreKeyRecord::generate(
                id,
                &identity.get().inner,
                timestamp.unwrap_or_else(now_ms),
            )
            .py()?,
        })
    }
    /// Reads libsignal's ``KyberPreKeyRecordStructure``; raises ``InvalidRecord`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: prekey::KyberPreKeyRecord::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.serialize())
    }
    /// The prekey id.
    #[getter]
    fn id(&self) -> u32 {
        self.inner.id
    }
    /// The Kyber public key (what a bundle carries).
    #[getter]
    fn public_key(&self) -> KyberPublicKey {
        KyberPublicKey {
            inner: self.inner.key_pair.public_key.clone(),
        }
    }
    /// The key pair, secret key included: a secret.
    #[getter]
    fn key_pair(&self) -> KyberKeyPair {
        KyberKeyPair {
            inner: self.inner.key_pair.clone(),
        }
    }
    /// The identity key's XEdDSA signature over the serialized public key.
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.signature)
    }
    /// When the prekey was created (ms since the epoch).
    #[getter]
    fn timestamp(&self) -> u64 {
        self.inner.timestamp
    }
    fn __repr__(&self) -> String {
        format!(
            "<KyberPreKeyRecord id={} timestamp={}>",
            self.inner.id, self.inner.timestamp
        )
    }
}

/// The public keys a server hands out for one device, to start a session with it: identity key,
/// signed prekey, optional one-time prekey and optional Kyber prekey (with it, PQXDH; without,
/// X3DH). Public: no secrets.
#[pyclass(module = "textsecure._native", name = "PreKeyBundle", frozen)]
pub(crate) struct PreKeyBundle {
    pub(crate) inner: prekey::PreKeyBundle,
}

#[pymethods]
impl PreKeyBundle {
    #[new]
    #[pyo3(signature = (*, registration_id, device_id, identity_key, signed_prekey_id,
        signed_prekey_public, signed_prekey_signature, prekey_id = None, prekey_public = None,
        kyber_prekey_id = None, kyber_prekey_public = None, kyber_prekey_signature = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        registration_id: Int<u32>,
        device_id: Int<u32>,
        identity_key: &Bound<'_, PyAny>,
        signed_prekey_id: Int<u32>,
        signed_prekey_public: &Bound<'_, PyAny>,
        signed_prekey_signature: BytesLike<'_>,
        prekey_id: Option<Int<u32>>,
        prekey_public: Option<&Bound<'_, PyAny>>,
        kyber_prekey_id: Option<Int<u32>>,
        kyber_prekey_public: Option<&Bound<'_, PyAny>>,
        kyber_prekey_signature: Option<BytesLike<'_>>,
    ) -> PyResult<Self> {
        let registration_id = registration_id.0;
        let device_id = device_id.0;
        let signed_prekey_id = signed_prekey_id.0;
        let prekey_id = prekey_id.map(|v| v.0);
        let kyber_prekey_id = kyber_prekey_id.map(|v| v.0);
        let prekey = match (prekey_id, prekey_public) {
            (Some(id), Some(k)) => Some((id, public_key_arg(k)?)),
            (None, None) => None,
            _ => {
                return Err(to_py(Error::InvalidArgument(
                    "prekey_id and prekey_public go together",
                )))
            }
        };
        let kyber =
            match (kyber_prekey_id, kyber_prekey_public, kyber_prekey_signature) {
                (Some(id), Some(k), Some(sig)) => Some(prekey::KyberBundlePart {
                    id,
                    public_key: kyber_public_arg(k)?,
                    signature: sig.to_vec(),
                }),
                (None, None, None) => None,
                _ => return Err(to_py(Error::InvalidArgument(
                    "kyber_prekey_id, kyber_prekey_public and kyber_prekey_signature go together",
                ))),
            };
        Ok(Self {
            inner: prekey::PreKeyBundle {
                registration_id,
                device_id,
                identity_key: public_key_arg(identity_key)?,
                signed_prekey_id,
                signed_prekey: public_key_arg(signed_prekey_public)?,
                signed_prekey_signature: signed_prekey_signature.to_vec(),
                prekey,
                kyber,
            },
        })
    }
    /// The device's registration id.
    #[getter]
    fn registration_id(&self) -> u32 {
        self.inner.registration_id
    }
    /// The device id.
    #[getter]
    fn device_id(&self) -> u32 {
        self.inner.device_id
    }
    /// The device's identity key.
    #[getter]
    fn identity_key(&self, py: Python<'_>) -> PyResult<Py<IdentityKey>> {
        new_identity_key(py, self.inner.identity_key)
    }
    /// The signed prekey's id.
    #[getter]
    fn signed_prekey_id(&self) -> u32 {
        self.inner.signed_prekey_id
    }
    /// The signed prekey's public key.
    #[getter]
    fn signed_prekey_public(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.signed_prekey,
        }
    }
    /// The identity key's signature over the signed prekey.
    #[getter]
    fn signed_prekey_signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.signed_prekey_signature)
    }
    /// The one-time prekey's id, or None.
    #[getter]
    fn prekey_id(&self) -> Option<u32> {
        self.inner.prekey.as_ref().map(|(id, _)| *id)
    }
    /// The one-time prekey's public key, or None.
    #[getter]
    fn prekey_public(&self) -> Option<PublicKey> {
        self.inner
            .prekey
            .as_ref()
            .map(|(_, k)| PublicKey { inner: *k })
    }
    /// The Kyber prekey's id, or None (an X3DH bundle).
    #[getter]
    fn kyber_prekey_id(&self) -> Option<u32> {
        self.inner.kyber.as_ref().map(|k| k.id)
    }
    /// The Kyber prekey's public key, or None.
    #[getter]
    fn kyber_prekey_public(&self) -> Option<KyberPublicKey> {
        self.inner.kyber.as_ref().map(|k| KyberPublicKey {
            inner: k.public_key.clone(),
        })
    }
    /// The identity key's signature over the Kyber prekey, or None.
    #[getter]
    fn kyber_prekey_signature<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner
            .kyber
            .as_ref()
            .map(|k| PyBytes::new(py, &k.signature))
    }
    fn __repr__(&self) -> String {
        format!(
            "<PreKeyBundle registration_id={} device_id={} signed_prekey_id={} prekey_id={} kyber_prekey_id={}>",
            self.inner.registration_id,
            self.inner.device_id,
            self.inner.signed_prekey_id,
            opt(self.inner.prekey.as_ref().map(|(id, _)| *id)),
            opt(self.inner.kyber.as_ref().map(|k| k.id))
        )
    }
}

/// The state of the sessions with one remote device (the current one and archived ones).
/// ``bytes()`` is libsignal's ``RecordStructure`` and CONTAINS THE ROOT, CHAIN AND MESSAGE KEYS: a
/// secret (see the Secrets page).
#[pyclass(module = "textsecure._native", name = "SessionRecord", frozen)]
pub(crate) struct SessionRecord {
    pub(crate) inner: state::SessionRecord,
}

#[pymethods]
impl SessionRecord {
    /// Reads libsignal's ``RecordStructure``; raises ``InvalidRecord`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: state::SessionRecord::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.serialize())
    }
    /// The current session's version (3 = X3DH, 4 = PQXDH); None for an empty record.
    #[getter]
    fn version(&self) -> Option<u8> {
        self.inner.version()
    }
    /// True if there is a current session.
    #[getter]
    fn has_current_session(&self) -> bool {
        self.inner.current.is_some()
    }
    /// Number of archived sessions.
    #[getter]
    fn archived_count(&self) -> usize {
        self.inner.previous.len()
    }
    /// The remote identity of the current session.
    #[getter]
    fn remote_identity_key(&self, py: Python<'_>) -> PyResult<Option<Py<IdentityKey>>> {
        self.inner
            .current
            .as_ref()
            .map(|s| new_identity_key(py, s.remote_identity))
            .transpose()
    }
    /// The remote registration id of the current session.
    #[getter]
    fn remote_registration_id(&self) -> Option<u32> {
        self.inner
            .current
            .as_ref()
            .map(|s| s.remote_registration_id)
    }
    /// True while the session is unacknowledged (messages go out as PreKeySignalMessages).
    #[getter]
    fn is_unacknowledged(&self) -> bool {
        self.inner
            .current
            .as_ref()
            .is_some_and(|s| s.pending_prekey.is_some())
    }
    fn __repr__(&self) -> String {
        format!(
            "<SessionRecord version={} archived={}>",
            opt(self.inner.version()),
            self.inner.previous.len()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PreKeyRecord>()?;
    m.add_class::<SignedPreKeyRecord>()?;
    m.add_class::<KyberPreKeyRecord>()?;
    m.add_class::<PreKeyBundle>()?;
    m.add_class::<SessionRecord>()?;
    Ok(())
}
