//! `SessionCipher`: 1:1 encryption over a store.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use pyo3::types::PyTuple;

use textsecure_core::message::{
    self as core_message, CiphertextMessage, PREKEY_TYPE, WHISPER_TYPE,
};
use textsecure_core::session;
use textsecure_core::uow;

use crate::errors::{to_py, CoreResultExt};
use crate::messages::{PreKeySignalMessage, SignalMessage};
use crate::records::PreKeyBundle;
use crate::store::Address;
use crate::uow::{check_store, execute};

/// Encrypts to and decrypts from one remote device over its 1:1 session in ``store``:
/// ``process_bundle`` starts a session (X3DH or PQXDH), ``encrypt`` / ``decrypt`` run the Double
/// Ratchet (and SPQR). Every operation is one atomic unit of work on the store; a failure changes
/// nothing.
#[pyclass(module = "textsecure._native", name = "SessionCipher", frozen)]
pub(crate) struct SessionCipher {
    store: Py<PyAny>,
    remote: Py<Address>,
    pq_ratchet: Py<PyAny>,
    local: Option<Py<Address>>,
    options: session::SessionOptions,
}

/// `PqRatchet.REQUIRED` / `PqRatchet.PREFERRED` (by value, so any enum with those values works).
pub(crate) fn pq_policy(obj: Option<&Bound<'_, PyAny>>) -> PyResult<session::PqRatchetPolicy> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(session::PqRatchetPolicy::Required);
    };
    let value: String = obj
        .getattr("value")
        .and_then(|v| v.extract())
        .map_err(|_| PyTypeError::new_err("pq_ratchet must be a textsecure.PqRatchet"))?;
    match value.as_str() {
        "required" => Ok(session::PqRatchetPolicy::Required),
        "preferred" => Ok(session::PqRatchetPolicy::Preferred),
        _ => Err(PyTypeError::new_err(
            "pq_ratchet must be a textsecure.PqRatchet",
        )),
    }
}

/// A 1:1 message argument: a `SignalMessage`, a `PreKeySignalMessage`, or a `(type, body)`
/// pair as received from the wire.
pub(crate) fn message_arg(message: &Bound<'_, PyAny>) -> PyResult<CiphertextMessage> {
    if let Ok(m) = message.cast::<SignalMessage>() {
        return Ok(CiphertextMessage::Whisper(m.get().inner.clone()));
    }
    if let Ok(m) = message.cast::<PreKeySignalMessage>() {
        return Ok(CiphertextMessage::PreKey(m.get().inner.clone()));
    }
    if let Ok(t) = message.cast::<PyTuple>() {
        if t.len() == 2 {
            let ty: crate::convert::Int<u8> = t.get_item(0)?.extract()?;
            let item = t.get_item(1)?;
            let body: crate::convert::BytesLike<'_> = item.extract()?;
            return match ty.0 {
                WHISPER_TYPE => Ok(CiphertextMessage::Whisper(
                    core_message::SignalMessage::deserialize(&body).py()?,
                )),
                PREKEY_TYPE => Ok(CiphertextMessage::PreKey(
                    core_message::PreKeySignalMessage::deserialize(&body).py()?,
                )),
                _ => Err(to_py(textsecure_core::Error::InvalidMessage(
                    "not a 1:1 message type (2 or 3)",
                ))),
            };
        }
    }
    Err(PyTypeError::new_err(
        "message must be a SignalMessage, a PreKeySignalMessage or a (type, body) pair",
    ))
}

#[pymethods]
impl SessionCipher {
    #[new]
    #[pyo3(signature = (store, remote, *, pq_ratchet = None, local_address = None))]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, PyAny>,
        remote: Bound<'_, Address>,
        pq_ratchet: Option<Bound<'_, PyAny>>,
        local_address: Option<Bound<'_, Address>>,
    ) -> PyResult<Self> {
        let options = session::SessionOptions {
            local_address: local_address.as_ref().map(|a| a.get().inner.clone()),
            pq_ratchet: pq_policy(pq_ratchet.as_ref())?,
        };
        Ok(Self {
            store: check_store(store)?,
            remote: remote.unbind(),
            pq_ratchet: pq_ratchet.map_or_else(|| py.None(), Bound::unbind),
            local: local_address.map(Bound::unbind),
            options,
        })
    }

    /// The store the cipher works on.
    #[getter]
    fn store(&self, py: Python<'_>) -> Py<PyAny> {
        self.store.clone_ref(py)
    }

    /// The remote device.
    #[getter]
    fn remote(&self, py: Python<'_>) -> Py<Address> {
        self.remote.clone_ref(py)
    }

    /// The SPQR policy for new version-4 sessions (None: ``PqRatchet.REQUIRED``).
    #[getter]
    fn pq_ratchet(&self, py: Python<'_>) -> Py<PyAny> {
        self.pq_ratchet.clone_ref(py)
    }

    /// This side's address (SignalMessage field 6), or None.
    #[getter]
    fn local_address(&self, py: Python<'_>) -> Option<Py<Address>> {
        self.local.as_ref().map(|a| a.clone_ref(py))
    }

    /// Starts a session from the peer's bundle (X3DH or PQXDH); verifies its signatures.
    fn process_bundle(&self, py: Python<'_>, bundle: &Bound<'_, PreKeyBundle>) -> PyResult<()> {
        let op = uow::Operation::ProcessBundle {
            remote: self.remote.get().inner.clone(),
            bundle: bundle.get().inner.clone(),
            options: self.options.clone(),
        };
        execute(py, self.store.bind(py), op).map(drop)
    }

    /// Encrypts: a PreKeySignalMessage until the peer has replied, then SignalMessages.
    fn encrypt(
        &self,
        py: Python<'_>,
        plaintext: crate::convert::BytesLike<'_>,
    ) -> PyResult<Py<PyAny>> {
        let op = uow::Operation::Encrypt {
            remote: self.remote.get().inner.clone(),
            plaintext: plaintext.to_vec(),
            options: self.options.clone(),
        };
        execute(py, self.store.bind(py), op)
    }

    /// Decrypts a SignalMessage or PreKeySignalMessage (or a `(type, body)` pair). On any
    /// failure nothing is stored.
    fn decrypt(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let op = uow::Operation::Decrypt {
            remote: self.remote.get().inner.clone(),
            message: message_arg(message)?,
            options: self.options.clone(),
        };
        execute(py, self.store.bind(py), op)
    }

    fn __repr__(&self) -> String {
        format!("<SessionCipher remote={}>", self.remote.get().inner)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SessionCipher>()?;
    Ok(())
}
