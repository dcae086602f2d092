//! Bindings for the primitives, exposed as `textsecure.hazmat` for cross-checking.

use pyo3::prelude::*;

pub(crate) fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
