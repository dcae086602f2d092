//! `Fingerprint`: safety numbers.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use textsecure_core::fingerprint;

use crate::convert::{BytesLike, Int};
use crate::errors::CoreResultExt;
use crate::keys::public_key_arg;

/// A safety number of two identities: ``displayable`` (60 digits) and ``scannable`` (QR code)
/// forms. Create with ``Fingerprint.create``; compare with ``matches``, which returns False for a
/// different safety number and raises only for an undecodable or incomparable (other version)
/// encoding.
#[pyclass(module = "textsecure._native", name = "Fingerprint", frozen)]
pub(crate) struct Fingerprint {
    inner: fingerprint::Fingerprint,
}

#[pymethods]
impl Fingerprint {
    /// Computes the safety number of two identities. The hashing runs without the GIL.
    #[staticmethod]
    #[pyo3(
        signature = (*, local_id, local_key, remote_id, remote_key, version = Int(2), iterations = Int(5200)),
        text_signature = "(*, local_id, local_key, remote_id, remote_key, version=2, iterations=5200)"
    )]
    fn create(
        py: Python<'_>,
        local_id: BytesLike<'_>,
        local_key: &Bound<'_, PyAny>,
        remote_id: BytesLike<'_>,
        remote_key: &Bound<'_, PyAny>,
        version: Int<u32>,
        iterations: Int<u32>,
    ) -> PyResult<Self> {
        let version = version.0;
        let iterations = iterations.0;
        let local_key = public_key_arg(local_key)?;
        let remote_key = public_key_arg(remote_key)?;
        let (local_id, remote_id): (&[u8], &[u8]) = (&local_id, &remote_id);
        let inner = py
            .detach(|| {
                fingerprint::Fingerprint::new(
                    version,
                    iterations,
                    local_id,
                    &local_key,
                    remote_id,
                    &remote_key,
                )
            })
            .py()?;
        Ok(Self { inner })
    }

    /// The version (1 or 2).
    #[getter]
    fn version(&self) -> u32 {
        self.inner.version()
    }

    /// The 60-digit safety number.
    #[getter]
    fn displayable(&self) -> &str {
        self.inner.displayable()
    }

    /// The scannable (QR code) encoding.
    #[getter]
    fn scannable<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.scannable())
    }

    /// True if the other party's scannable encoding shows the same two identities.
    fn matches(&self, other_scannable: BytesLike<'_>) -> PyResult<bool> {
        self.inner.matches(&other_scannable).py()
    }

    fn __str__(&self) -> &str {
        self.inner.displayable()
    }

    fn __repr__(&self) -> String {
        format!(
            "<Fingerprint version={} {}>",
            self.inner.version(),
            self.inner.displayable()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Fingerprint>()?;
    Ok(())
}
