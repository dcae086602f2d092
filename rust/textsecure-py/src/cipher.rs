//! `SessionCipher`: 1:1 encryption over a store.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use textsecure_core::message::CiphertextMessage;
use textsecure_core::session;

use crate::errors::to_py_for;
use crate::messages::{PreKeySignalMessage, SignalMessage};
use crate::records::PreKeyBundle;
use crate::store::{Address, MemoryStore};

#[pyclass(module = "textsecure._native", name = "SessionCipher")]
pub(crate) struct SessionCipher {
    store: Py<MemoryStore>,
    remote: Py<Address>,
    pq_ratchet: Py<PyAny>,
    local: Option<Py<Address>>,
    options: session::SessionOptions,
}

/// `PqRatchet.REQUIRED` / `PqRatchet.PREFERRED` (by value, so any enum with those values works).
fn pq_policy(obj: Option<&Bound<'_, PyAny>>) -> PyResult<session::PqRatchetPolicy> {
    let Some(obj) = obj else {
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
        let store = store
            .cast::<MemoryStore>()
            .map_err(|_| PyTypeError::new_err("store must be a textsecure MemoryStore"))?
            .clone()
            .unbind();
        Ok(Self {
            store,
            remote: remote.unbind(),
            pq_ratchet: pq_ratchet.map_or_else(|| py.None(), Bound::unbind),
            local: local_address.map(Bound::unbind),
            options,
        })
    }

    #[getter]
    fn remote(&self, py: Python<'_>) -> Py<Address> {
        self.remote.clone_ref(py)
    }

    #[getter]
    fn pq_ratchet(&self, py: Python<'_>) -> Py<PyAny> {
        self.pq_ratchet.clone_ref(py)
    }

    #[getter]
    fn local_address(&self, py: Python<'_>) -> Option<Py<Address>> {
        self.local.as_ref().map(|a| a.clone_ref(py))
    }

    /// Starts a session from the peer's bundle (X3DH or PQXDH); verifies its signatures.
    fn process_bundle(&self, py: Python<'_>, bundle: &Bound<'_, PreKeyBundle>) -> PyResult<()> {
        let mut store = self.store.borrow_mut(py);
        let remote = self.remote.get();
        session::process_prekey_bundle_with(
            &mut store.inner,
            &remote.inner,
            &bundle.get().inner,
            &self.options,
        )
        .map_err(|e| to_py_for(py, e, remote))
    }

    /// Encrypts: a PreKeySignalMessage until the peer has replied, then SignalMessages.
    fn encrypt(
        &self,
        py: Python<'_>,
        plaintext: crate::convert::BytesLike<'_>,
    ) -> PyResult<Py<PyAny>> {
        let msg = {
            let mut store = self.store.borrow_mut(py);
            let remote = self.remote.get();
            session::encrypt_with(&mut store.inner, &remote.inner, &plaintext, &self.options)
                .map_err(|e| to_py_for(py, e, remote))?
        };
        Ok(match msg {
            CiphertextMessage::Whisper(m) => Py::new(py, SignalMessage { inner: m })?.into_any(),
            CiphertextMessage::PreKey(m) => {
                Py::new(py, PreKeySignalMessage { inner: m })?.into_any()
            }
        })
    }

    /// Decrypts a SignalMessage or PreKeySignalMessage. On any failure nothing is stored.
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let mut store = self.store.borrow_mut(py);
        let remote = self.remote.get();
        let r = if let Ok(m) = message.cast::<SignalMessage>() {
            session::decrypt_signal_message_with(
                &mut store.inner,
                &remote.inner,
                &m.get().inner,
                &self.options,
            )
        } else if let Ok(m) = message.cast::<PreKeySignalMessage>() {
            session::decrypt_prekey_message_with(
                &mut store.inner,
                &remote.inner,
                &m.get().inner,
                &self.options,
            )
        } else {
            return Err(PyTypeError::new_err(
                "message must be a SignalMessage or PreKeySignalMessage",
            ));
        };
        let pt = r.map_err(|e| to_py_for(py, e, remote))?;
        Ok(pyo3::types::PyBytes::new(py, &pt))
    }

    fn __repr__(&self) -> String {
        format!("<SessionCipher remote={}>", self.remote.get().inner)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SessionCipher>()?;
    Ok(())
}
