//! 1:1 wire messages.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use textsecure_core::message;

use crate::convert::opt;
use crate::convert::{message_type, BytesLike};
use crate::errors::{to_py, CoreResultExt};
use crate::keys::{new_identity_key, IdentityKey, PublicKey};

/// A Double Ratchet message (type 2, ``MessageType.WHISPER``). ``bytes()`` is the exact wire form.
#[pyclass(module = "textsecure._native", name = "SignalMessage", frozen)]
pub(crate) struct SignalMessage {
    pub(crate) inner: message::SignalMessage,
}

#[pymethods]
impl SignalMessage {
    /// Reads the wire form; raises ``InvalidMessage`` or ``UnsupportedVersion`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: message::SignalMessage::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.serialized())
    }
    /// ``MessageType.WHISPER`` (2).
    #[getter]
    fn r#type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        message_type(py, message::WHISPER_TYPE)
    }
    /// The session version (3 or 4).
    #[getter]
    fn version(&self) -> u8 {
        self.inner.message_version()
    }
    /// The message's index in its sending chain.
    #[getter]
    fn counter(&self) -> u32 {
        self.inner.counter()
    }
    /// The length of the sender's previous sending chain.
    #[getter]
    fn previous_counter(&self) -> u32 {
        self.inner.previous_counter()
    }
    /// The sender's current ratchet public key.
    #[getter]
    fn ratchet_key(&self) -> PublicKey {
        PublicKey {
            inner: *self.inner.ratchet_key(),
        }
    }
    /// Field 6 (both ServiceIds and device ids), if present.
    #[getter]
    fn addresses<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.addresses().map(|a| PyBytes::new(py, a))
    }
    /// The SPQR message (field 5); empty if none.
    #[getter]
    fn pq_ratchet<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.pq_ratchet())
    }
    fn __repr__(&self) -> String {
        format!(
            "<SignalMessage version={} counter={} size={}>",
            self.inner.message_version(),
            self.inner.counter(),
            self.inner.serialized().len()
        )
    }
}

/// The first messages of a session (type 3, ``MessageType.PREKEY``): the session setup (prekey ids,
/// base key, identity key) and a ``SignalMessage``. ``bytes()`` is the exact wire form.
#[pyclass(module = "textsecure._native", name = "PreKeySignalMessage", frozen)]
pub(crate) struct PreKeySignalMessage {
    pub(crate) inner: message::PreKeySignalMessage,
}

#[pymethods]
impl PreKeySignalMessage {
    /// Reads the wire form; raises ``InvalidMessage`` or ``UnsupportedVersion`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: message::PreKeySignalMessage::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.serialized())
    }
    /// ``MessageType.PREKEY`` (3).
    #[getter]
    fn r#type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        message_type(py, message::PREKEY_TYPE)
    }
    /// The session version (3 or 4).
    #[getter]
    fn version(&self) -> u8 {
        self.inner.message_version()
    }
    /// The sender's registration id.
    #[getter]
    fn registration_id(&self) -> u32 {
        self.inner.registration_id()
    }
    /// The one-time prekey used, or None.
    #[getter]
    fn prekey_id(&self) -> Option<u32> {
        self.inner.pre_key_id()
    }
    /// The signed prekey used.
    #[getter]
    fn signed_prekey_id(&self) -> u32 {
        self.inner.signed_pre_key_id()
    }
    /// The Kyber prekey used (PQXDH), or None (X3DH).
    #[getter]
    fn kyber_prekey_id(&self) -> Option<u32> {
        self.inner.kyber_pre_key_id()
    }
    /// The sender's ephemeral base key.
    #[getter]
    fn base_key(&self) -> PublicKey {
        PublicKey {
            inner: *self.inner.base_key(),
        }
    }
    /// The sender's identity key.
    #[getter]
    fn identity_key(&self, py: Python<'_>) -> PyResult<Py<IdentityKey>> {
        new_identity_key(py, *self.inner.identity_key())
    }
    /// The ``SignalMessage`` inside.
    #[getter]
    fn message(&self) -> SignalMessage {
        SignalMessage {
            inner: self.inner.message().clone(),
        }
    }
    fn __repr__(&self) -> String {
        format!(
            "<PreKeySignalMessage version={} signed_prekey_id={} prekey_id={} kyber_prekey_id={} size={}>",
            self.inner.message_version(),
            self.inner.signed_pre_key_id(),
            opt(self.inner.pre_key_id()),
            opt(self.inner.kyber_pre_key_id()),
            self.inner.serialized().len()
        )
    }
}

/// Parses a message by its `CiphertextMessageType` (2 whisper, 3 prekey, 7 sender key in
/// the current format).
#[pyfunction]
#[pyo3(name = "parse_message")]
pub(crate) fn parse_message(
    py: Python<'_>,
    r#type: &Bound<'_, PyAny>,
    body: BytesLike<'_>,
) -> PyResult<Py<PyAny>> {
    let t: i64 = r#type.extract().map_err(|e: PyErr| {
        if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) {
            to_py(textsecure_core::Error::InvalidMessage(
                "unknown message type",
            ))
        } else {
            e
        }
    })?;
    match t {
        2 => Ok(Py::new(py, SignalMessage::from_bytes(body)?)?.into_any()),
        3 => Ok(Py::new(py, PreKeySignalMessage::from_bytes(body)?)?.into_any()),
        7 => Ok(Py::new(py, crate::groups::SenderKeyMessage::from_bytes(body)?)?.into_any()),
        _ => Err(to_py(textsecure_core::Error::InvalidMessage(
            "unknown message type",
        ))),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SignalMessage>()?;
    m.add_class::<PreKeySignalMessage>()?;
    m.add_function(wrap_pyfunction!(parse_message, m)?)?;
    Ok(())
}
