//! Argument conversions shared by the bindings.

use std::borrow::Cow;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyType};

/// Any bytes-like argument: `bytes` is borrowed without a copy; `bytearray`, `memoryview`
/// and other buffers are copied.
pub(crate) struct BytesLike<'a>(pub(crate) Cow<'a, [u8]>);

impl<'a, 'py> FromPyObject<'a, 'py> for BytesLike<'a> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(b) = <&'a [u8] as FromPyObject<'a, 'py>>::extract(obj) {
            return Ok(Self(Cow::Borrowed(b)));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(Self(Cow::Owned(b.to_vec())));
        }
        match PyBuffer::<u8>::get(&obj) {
            Ok(buf) => Ok(Self(Cow::Owned(buf.to_vec(obj.py())?))),
            Err(_) => Err(PyTypeError::new_err(format!(
                "expected a bytes-like object, got {}",
                obj.get_type().name()?
            ))),
        }
    }
}

impl std::ops::Deref for BytesLike<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// An integer argument of type `T`. A Python `int` outside `T`'s range raises
/// `errors.InvalidArgument` (a `ValueError`) rather than pyo3's `OverflowError`; a non-integer
/// still raises `TypeError`.
#[derive(Clone, Copy)]
pub(crate) struct Int<T>(pub(crate) T);

/// The unsigned integer types an [`Int`] argument can have, with their largest value.
pub(crate) trait Unsigned {
    const MAX: u64;
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(impl Unsigned for $t { const MAX: u64 = <$t>::MAX as u64; })*};
}
unsigned!(u8, u16, u32, u64, usize);

impl<'a, 'py, T> FromPyObject<'a, 'py> for Int<T>
where
    T: FromPyObject<'a, 'py, Error = PyErr> + Unsigned,
{
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        T::extract(obj).map(Self).map_err(|e| {
            if e.is_instance_of::<PyOverflowError>(obj.py()) {
                crate::errors::out_of_range(obj, T::MAX)
            } else {
                e
            }
        })
    }
}

static MESSAGE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `textsecure.enums.MessageType(value)`.
pub(crate) fn message_type(py: Python<'_>, value: u8) -> PyResult<Bound<'_, PyAny>> {
    MESSAGE_TYPE
        .import(py, "textsecure.enums", "MessageType")?
        .call1((value,))
}

/// Python-style rendering of an optional value for `repr`.
pub(crate) fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_owned(), |x| x.to_string())
}
