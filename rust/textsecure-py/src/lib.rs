//! textsecure._native: the thin PyO3 layer over textsecure-core.
//!
//! Only argument conversion, one core call and error mapping live here; all protocol logic is
//! in the core. Users import from `textsecure`, never from `textsecure._native`.
#![deny(unsafe_code)]

use pyo3::prelude::*;

mod attachments;
mod cipher;
mod convert;
mod errors;
mod fingerprint;
mod groups;
mod hazmat;
mod keys;
mod messages;
mod records;
mod sealed;
mod store;
mod uow;

#[pymodule(gil_used = true)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", textsecure_core::VERSION)?;
    keys::register(m)?;
    records::register(m)?;
    messages::register(m)?;
    store::register(m)?;
    cipher::register(m)?;
    groups::register(m)?;
    attachments::register(m)?;
    hazmat::register(m)?;
    fingerprint::register(m)?;
    sealed::register(m)?;
    uow::register(m)?;
    Ok(())
}
