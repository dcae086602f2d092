//! The one place where core errors become Python exceptions (classes from `textsecure.errors`).

use pyo3::prelude::*;

pyo3::import_exception!(textsecure.errors, InvalidKey);
pyo3::import_exception!(textsecure.errors, InvalidSignature);
pyo3::import_exception!(textsecure.errors, InvalidMessage);
pyo3::import_exception!(textsecure.errors, MessageGapTooLarge);
pyo3::import_exception!(textsecure.errors, DuplicateMessage);
pyo3::import_exception!(textsecure.errors, UnsupportedVersion);
pyo3::import_exception!(textsecure.errors, NoSession);
pyo3::import_exception!(textsecure.errors, UntrustedIdentity);
pyo3::import_exception!(textsecure.errors, InvalidPreKeyId);
pyo3::import_exception!(textsecure.errors, InvalidRecord);
pyo3::import_exception!(textsecure.errors, NoSenderKey);
pyo3::import_exception!(textsecure.errors, InvalidArgument);
pyo3::import_exception!(textsecure.errors, StoreError);
pyo3::import_exception!(textsecure.errors, InvalidCertificate);
pyo3::import_exception!(textsecure.errors, FingerprintVersionMismatch);

use textsecure_core::Error;

/// Maps a core error to its Python exception.
pub(crate) fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::InvalidKey(_) => InvalidKey::new_err(msg),
        Error::InvalidSignature(_) => InvalidSignature::new_err(msg),
        Error::InvalidMessage(_) => InvalidMessage::new_err(msg),
        Error::MessageGapTooLarge { .. } => MessageGapTooLarge::new_err(msg),
        Error::DuplicateMessage { .. } => DuplicateMessage::new_err(msg),
        Error::UnsupportedVersion(_) => UnsupportedVersion::new_err(msg),
        Error::NoSession(_) => NoSession::new_err(msg),
        Error::UntrustedIdentity { .. } => UntrustedIdentity::new_err(msg),
        Error::InvalidPreKeyId { .. } => InvalidPreKeyId::new_err(msg),
        Error::InvalidRecord(_) => InvalidRecord::new_err(msg),
        Error::NoSenderKey(_) => NoSenderKey::new_err(msg),
        Error::InvalidArgument(_) => InvalidArgument::new_err(msg),
        Error::Store => StoreError::new_err(msg),
        Error::InvalidCertificate(_) => InvalidCertificate::new_err(msg),
        Error::FingerprintVersionMismatch { theirs, ours } => {
            FingerprintVersionMismatch::new_err((msg, theirs, ours))
        }
    }
}

/// `InvalidArgument` for an integer argument outside `0..=max`.
pub(crate) fn out_of_range(value: pyo3::Borrowed<'_, '_, PyAny>, max: u64) -> PyErr {
    let shown = value
        .str()
        .map_or_else(|_| "?".to_owned(), |s| s.to_string());
    let shown = if shown.len() > 40 {
        format!("{}...", &shown[..40])
    } else {
        shown
    };
    InvalidArgument::new_err(format!("integer {shown} out of range 0..={max}"))
}

/// `.py()?` turns a core result into a `PyResult`.
pub(crate) trait CoreResultExt<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> CoreResultExt<T> for textsecure_core::Result<T> {
    #[inline]
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Maps a core error raised while talking to `remote`; an `UntrustedIdentity` carries the
/// address and the presented identity key.
pub(crate) fn to_py_for(py: Python<'_>, e: Error, remote: &crate::store::Address) -> PyErr {
    if let Error::UntrustedIdentity { identity } = &e {
        let key = textsecure_core::curve::PublicKey::deserialize(identity)
            .ok()
            .and_then(|k| crate::keys::new_identity_key(py, k).ok());
        let addr = pyo3::Py::new(py, remote.clone()).ok();
        return UntrustedIdentity::new_err((
            format!("untrusted identity for {}", remote.inner),
            addr,
            key,
        ));
    }
    to_py(e)
}
