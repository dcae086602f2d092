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
}

#[pymethods]
impl SessionCipher {
    #[new]
    #[pyo3(signature = (store, remote, *, pq_ratchet = None))]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, PyAny>,
        remote: Bound<'_, Address>,
        pq_ratchet: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let store = store
            .cast::<MemoryStore>()
            .map_err(|_| PyTypeError::new_err("store must be a textsecure MemoryStore"))?
            .clone()
            .unbind();
        Ok(Self {
            store,
            remote: remote.unbind(),
            pq_ratchet: pq_ratchet.unwrap_or_else(|| py.None()),
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

    /// Starts a session from the peer's bundle (X3DH or PQXDH); verifies its signatures.
    fn process_bundle(&self, py: Python<'_>, bundle: &Bound<'_, PreKeyBundle>) -> PyResult<()> {
        let mut store = self.store.borrow_mut(py);
        let remote = self.remote.get();
        session::process_prekey_bundle(&mut store.inner, &remote.inner, &bundle.get().inner)
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
            session::encrypt(&mut store.inner, &remote.inner, &plaintext)
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
            session::decrypt_signal_message(&mut store.inner, &remote.inner, &m.get().inner)
        } else if let Ok(m) = message.cast::<PreKeySignalMessage>() {
            session::decrypt_prekey_message(&mut store.inner, &remote.inner, &m.get().inner)
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
