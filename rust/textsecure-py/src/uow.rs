//! Units of work for every store: `Operation`, `Needs`, `Snapshot`, `ChangeSet`,
//! `RecordSealer`, and the one function the ciphers call to run an operation on a store.
//!
//! A `MemoryStore` runs operations natively (load under its lock, plan with the GIL released,
//! compare-and-swap commit). Any other store object runs them through its `_execute(op)` method
//! (the durable stores in `textsecure.stores`, or a user's own backend): it loads the
//! operation's `needs()` into a `Snapshot`, calls `op.plan(snapshot)` (GIL released, records
//! opened and sealed in Rust) and applies the returned `ChangeSet` in one transaction.

use std::sync::Mutex;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use rayon::prelude::*;
use zeroize::Zeroizing;

use textsecure_core::curve;
use textsecure_core::group::{self as core_group, DistributionKey};
use textsecure_core::message::CiphertextMessage;
use textsecure_core::prekey as core_prekey;
use textsecure_core::seal;
use textsecure_core::state;
use textsecure_core::uow::{self, Output};
use textsecure_core::Error;

use crate::convert::{BytesLike, Int};
use crate::errors::{to_py, to_py_for, CoreResultExt, StoreError};
use crate::keys::IdentityKeyPair;
use crate::messages::{PreKeySignalMessage, SignalMessage};
use crate::records::PreKeyBundle;
use crate::store::{Address, MemoryStore};

/// How often a lost race is retried before `StoreError`.
pub(crate) const MAX_ATTEMPTS: usize = 64;

// ---------------------------------------------------------------------------------------------
// Running an operation on any store
// ---------------------------------------------------------------------------------------------

/// Whether `store` can run operations (a `MemoryStore` or an object with `_execute`).
pub(crate) fn check_store(store: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    if store.cast::<MemoryStore>().is_ok() || store.hasattr("_execute")? {
        Ok(store.clone().unbind())
    } else {
        Err(PyTypeError::new_err(
            "store must be a textsecure store (MemoryStore, SQLiteStore, PostgresStore or a \
             textsecure.stores.StoreBackend)",
        ))
    }
}

/// Runs `op` on `store` and returns what the cipher method returns.
pub(crate) fn execute(
    py: Python<'_>,
    store: &Bound<'_, PyAny>,
    op: uow::Operation,
) -> PyResult<Py<PyAny>> {
    let op = op.canonicalize();
    if let Ok(mem) = store.cast::<MemoryStore>() {
        return mem.get().run(py, &op);
    }
    let obj = Py::new(py, Operation { inner: op })?;
    Ok(store.call_method1("_execute", (obj,))?.unbind())
}

/// The Python exception for a core error of `op` (an untrusted identity names its address).
pub(crate) fn op_error(py: Python<'_>, e: Error, op: &uow::Operation) -> PyErr {
    match op.remote() {
        Some(remote) => to_py_for(py, e, &Address { inner: remote }),
        None => to_py(e),
    }
}

fn is_legacy(op: &uow::Operation) -> bool {
    matches!(
        op,
        uow::Operation::CreateDistribution {
            key: DistributionKey::GroupId(_),
            ..
        } | uow::Operation::GroupEncrypt {
            key: DistributionKey::GroupId(_),
            ..
        }
    )
}

pub(crate) fn message_to_py(py: Python<'_>, m: CiphertextMessage) -> PyResult<Py<PyAny>> {
    Ok(match m {
        CiphertextMessage::Whisper(m) => Py::new(py, SignalMessage { inner: m })?.into_any(),
        CiphertextMessage::PreKey(m) => Py::new(py, PreKeySignalMessage { inner: m })?.into_any(),
    })
}

/// The Python value of an operation's output.
pub(crate) fn output_to_py(
    py: Python<'_>,
    op: &uow::Operation,
    out: Output,
) -> PyResult<Py<PyAny>> {
    use crate::groups as g;
    Ok(match out {
        Output::Unit => py.None(),
        Output::Message(m) => message_to_py(py, m)?,
        Output::Plaintext(p) => PyBytes::new(py, &Zeroizing::new(p)).into_any().unbind(),
        Output::Sealed(v) => PyBytes::new(py, &v).into_any().unbind(),
        Output::Fanout(results) => {
            let remotes = match op {
                uow::Operation::Fanout { remotes, .. } => remotes.as_slice(),
                _ => &[],
            };
            let list = PyList::empty(py);
            for (i, r) in results.into_iter().enumerate() {
                let v = match r {
                    Ok(m) => message_to_py(py, m)?,
                    Err(e) => match remotes.get(i) {
                        Some(a) => to_py_for(py, e, &Address { inner: a.clone() })
                            .into_value(py)
                            .into_any(),
                        None => to_py(e).into_value(py).into_any(),
                    },
                };
                list.append(v)?;
            }
            list.into_any().unbind()
        }
        Output::Distribution(m) if is_legacy(op) => {
            Py::new(py, g::LegacySenderKeyDistributionMessage { inner: m })?.into_any()
        }
        Output::Distribution(m) => {
            Py::new(py, g::SenderKeyDistributionMessage { inner: m })?.into_any()
        }
        Output::GroupMessage(m) if is_legacy(op) => {
            Py::new(py, g::LegacySenderKeyMessage { inner: m })?.into_any()
        }
        Output::GroupMessage(m) => Py::new(py, g::SenderKeyMessage { inner: m })?.into_any(),
        Output::SealedPlaintext(usmc, pt) => crate::sealed::sealed_result(py, usmc, &pt)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Encryption at rest
// ---------------------------------------------------------------------------------------------

/// Seals stored rows with AES-256-GCM-SIV, bound to (account, table, row key). The keys stay
/// in Rust and are wiped when the sealer is dropped.
#[pyclass(module = "textsecure._native", name = "RecordSealer", frozen)]
pub(crate) struct RecordSealer {
    pub(crate) inner: seal::RecordSealer,
}

#[pymethods]
impl RecordSealer {
    #[new]
    #[pyo3(signature = (key, account, *, old_keys = Vec::new()))]
    fn new(key: BytesLike<'_>, account: String, old_keys: Vec<Vec<u8>>) -> PyResult<Self> {
        let old_keys: Vec<Zeroizing<Vec<u8>>> = old_keys.into_iter().map(Zeroizing::new).collect();
        let old: Vec<&[u8]> = old_keys.iter().map(|k| k.as_slice()).collect();
        Ok(Self {
            inner: seal::RecordSealer::new(&key, &account, &old).py()?,
        })
    }
    #[getter]
    fn account(&self) -> &str {
        self.inner.account()
    }
    /// Seals `data` as row `row_key` of `table`.
    fn seal<'py>(
        &self,
        py: Python<'py>,
        table: &str,
        row_key: &str,
        data: BytesLike<'_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(
            py,
            &self.inner.seal(table, row_key, &data).py()?,
        ))
    }
    /// Opens row `row_key` of `table`; `InvalidRecord` if it does not open there.
    fn open<'py>(
        &self,
        py: Python<'py>,
        table: &str,
        row_key: &str,
        blob: BytesLike<'_>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(
            py,
            &self.inner.open(table, row_key, &blob).py()?,
        ))
    }
    /// Whether `blob` is sealed under the current key.
    fn is_current(&self, blob: BytesLike<'_>) -> bool {
        self.inner.is_current(&blob)
    }
    fn __repr__(&self) -> String {
        format!("<RecordSealer account={:?}>", self.inner.account())
    }
}

/// Row keys, as the native side binds sealed rows to them.
fn address_key(a: &textsecure_core::address::Address) -> String {
    a.to_string()
}

fn sender_key_row(a: &textsecure_core::address::Address, d: &DistributionKey) -> String {
    format!("{a}/{}", uow::distribution_key_string(d))
}

// ---------------------------------------------------------------------------------------------
// Needs
// ---------------------------------------------------------------------------------------------

/// What an operation reads.
#[pyclass(module = "textsecure._native", name = "Needs", frozen)]
pub(crate) struct Needs {
    inner: uow::Needs,
}

fn addresses(v: &[textsecure_core::address::Address]) -> Vec<Address> {
    v.iter().map(|a| Address { inner: a.clone() }).collect()
}

#[pymethods]
impl Needs {
    #[getter]
    fn sessions(&self) -> Vec<Address> {
        addresses(&self.inner.sessions)
    }
    #[getter]
    fn identities(&self) -> Vec<Address> {
        addresses(&self.inner.identities)
    }
    #[getter]
    fn prekeys(&self) -> Vec<u32> {
        self.inner.prekeys.clone()
    }
    #[getter]
    fn signed_prekeys(&self) -> Vec<u32> {
        self.inner.signed_prekeys.clone()
    }
    #[getter]
    fn kyber_prekeys(&self) -> Vec<u32> {
        self.inner.kyber_prekeys.clone()
    }
    #[getter]
    fn base_keys<'py>(&self, py: Python<'py>) -> Vec<(u32, Bound<'py, PyBytes>)> {
        self.inner
            .base_keys
            .iter()
            .map(|(id, k)| (*id, PyBytes::new(py, &k.serialize())))
            .collect()
    }
    #[getter]
    fn sender_keys(&self) -> Vec<(Address, String)> {
        self.inner
            .sender_keys
            .iter()
            .map(|(a, d)| {
                (
                    Address { inner: a.clone() },
                    uow::distribution_key_string(d),
                )
            })
            .collect()
    }
    #[getter]
    fn lock_keys(&self) -> Vec<String> {
        self.inner.lock_keys()
    }
    fn __repr__(&self) -> String {
        format!("<Needs {:?}>", self.inner.lock_keys())
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshot
// ---------------------------------------------------------------------------------------------

/// What a store loaded for an operation. Row bytes are passed exactly as stored (sealed when
/// the store has a key); they are opened and parsed here, in Rust: a row that does not open or
/// parse raises `InvalidRecord`.
#[pyclass(module = "textsecure._native", name = "Snapshot", frozen)]
pub(crate) struct Snapshot {
    inner: Mutex<uow::Snapshot>,
    sealer: Option<Py<RecordSealer>>,
    /// Session rows as stored, opened and parsed when a plan runs (on every core, with the
    /// GIL released): (address, row, version).
    pending: Mutex<Vec<PendingSession>>,
}

type PendingSession = (textsecure_core::address::Address, Row, u64);

/// Opens and parses the pending session rows of a snapshot (in parallel) into it; a row that
/// fails makes its session damaged (its operations fail with InvalidRecord, no others do).
fn materialize(
    pending: Vec<PendingSession>,
    sealer: Option<&seal::RecordSealer>,
    snap: &mut uow::Snapshot,
) {
    let parse = |(a, row, v): PendingSession| {
        let rec = match sealer {
            Some(s) => s.open("sessions", &address_key(&a), &row),
            None => Ok(row),
        }
        .and_then(|plain| state::SessionRecord::deserialize(&plain));
        (a, rec, v)
    };
    let parsed: Vec<_> = if pending.len() > 8 {
        pending.into_par_iter().map(parse).collect()
    } else {
        pending.into_iter().map(parse).collect()
    };
    for (a, rec, v) in parsed {
        match rec {
            Ok(r) => snap.add_session(a, Some(r), v),
            Err(Error::InvalidRecord(m)) => snap.add_damaged_session(a, Error::InvalidRecord(m)),
            Err(e) => snap.add_damaged_session(a, e),
        }
    }
}

impl Snapshot {
    fn open(&self, table: &str, row_key: &str, data: &[u8]) -> PyResult<Zeroizing<Vec<u8>>> {
        match &self.sealer {
            Some(s) => s.get().inner.open(table, row_key, data).py(),
            None => Ok(Zeroizing::new(data.to_vec())),
        }
    }
    fn take_pending(&self) -> PyResult<Vec<PendingSession>> {
        Ok(std::mem::take(&mut *self.pending.lock().map_err(|_| {
            StoreError::new_err("snapshot lock poisoned")
        })?))
    }
    fn with<R>(&self, f: impl FnOnce(&mut uow::Snapshot) -> R) -> PyResult<R> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| StoreError::new_err("snapshot lock poisoned"))?;
        Ok(f(&mut g))
    }
}

fn version_arg(v: Int<u64>) -> u64 {
    v.0
}

#[pymethods]
impl Snapshot {
    #[new]
    #[pyo3(signature = (identity, registration_id, *, sealer = None))]
    fn new(
        identity: &Bound<'_, IdentityKeyPair>,
        registration_id: Int<u32>,
        sealer: Option<Py<RecordSealer>>,
    ) -> Self {
        Self {
            inner: Mutex::new(uow::Snapshot::new(
                identity.get().inner.clone(),
                registration_id.0,
            )),
            sealer,
            pending: Mutex::new(Vec::new()),
        }
    }
    #[pyo3(signature = (address, record, version))]
    fn add_session(
        &self,
        address: &Bound<'_, Address>,
        record: Option<BytesLike<'_>>,
        version: Int<u64>,
    ) -> PyResult<()> {
        let a = address.get().inner.canonical();
        match record {
            Some(b) => {
                // opened and parsed when the plan runs, in parallel and without the GIL
                let row = Zeroizing::new(b.to_vec());
                self.pending
                    .lock()
                    .map_err(|_| StoreError::new_err("snapshot lock poisoned"))?
                    .push((a, row, version_arg(version)));
                Ok(())
            }
            None => self.with(|s| s.add_session(a, None, version_arg(version))),
        }
    }
    fn add_identity(
        &self,
        address: &Bound<'_, Address>,
        key: Option<BytesLike<'_>>,
    ) -> PyResult<()> {
        let a = address.get().inner.canonical();
        let k = match key {
            Some(b) => {
                let plain = self.open("identities", &address_key(&a), &b)?;
                Some(
                    curve::PublicKey::deserialize_exact(&plain)
                        .map_err(|_| to_py(Error::InvalidRecord("stored identity key")))?,
                )
            }
            None => None,
        };
        self.with(|s| s.add_identity(a, k))
    }
    fn add_prekey(&self, id: Int<u32>, record: Option<BytesLike<'_>>) -> PyResult<()> {
        let rec = match record {
            Some(b) => {
                let plain = self.open("prekeys", &id.0.to_string(), &b)?;
                Some(core_prekey::PreKeyRecord::deserialize(&plain).map_err(as_record)?)
            }
            None => None,
        };
        self.with(|s| s.add_prekey(id.0, rec))
    }
    fn add_signed_prekey(&self, id: Int<u32>, record: Option<BytesLike<'_>>) -> PyResult<()> {
        let rec = match record {
            Some(b) => {
                let plain = self.open("signed_prekeys", &id.0.to_string(), &b)?;
                Some(core_prekey::SignedPreKeyRecord::deserialize(&plain).map_err(as_record)?)
            }
            None => None,
        };
        self.with(|s| s.add_signed_prekey(id.0, rec))
    }
    #[pyo3(signature = (id, record, last_resort = false))]
    fn add_kyber_prekey(
        &self,
        id: Int<u32>,
        record: Option<BytesLike<'_>>,
        last_resort: bool,
    ) -> PyResult<()> {
        let rec = match record {
            Some(b) => {
                let plain = self.open("kyber_prekeys", &id.0.to_string(), &b)?;
                Some((
                    core_prekey::KyberPreKeyRecord::deserialize(&plain).map_err(as_record)?,
                    last_resort,
                ))
            }
            None => None,
        };
        self.with(|s| s.add_kyber_prekey(id.0, rec))
    }
    fn add_base_key(
        &self,
        signed_prekey_id: Int<u32>,
        base_key: BytesLike<'_>,
        seen: bool,
    ) -> PyResult<()> {
        let k = curve::PublicKey::deserialize_exact(&base_key).py()?;
        self.with(|s| s.add_base_key(signed_prekey_id.0, k, seen))
    }
    #[pyo3(signature = (sender, distribution, record, version))]
    fn add_sender_key(
        &self,
        sender: &Bound<'_, Address>,
        distribution: &str,
        record: Option<BytesLike<'_>>,
        version: Int<u64>,
    ) -> PyResult<()> {
        let a = sender.get().inner.canonical();
        let d = uow::parse_distribution_key(distribution).py()?;
        let rec = match record {
            Some(b) => {
                let plain = self.open("sender_keys", &sender_key_row(&a, &d), &b)?;
                Some(core_group::SenderKeyRecord::deserialize(&plain).map_err(as_record)?)
            }
            None => None,
        };
        self.with(|s| s.add_sender_key(a, d, rec, version_arg(version)))
    }
    fn __repr__(&self) -> String {
        "<Snapshot>".to_owned()
    }
}

/// A stored row that fails to parse is an invalid record, whatever the parser called it.
fn as_record(e: Error) -> PyErr {
    match e {
        Error::InvalidRecord(_) => to_py(e),
        _ => to_py(Error::InvalidRecord("stored record does not parse")),
    }
}

// ---------------------------------------------------------------------------------------------
// ChangeSet
// ---------------------------------------------------------------------------------------------

type Row = Zeroizing<Vec<u8>>;

/// Everything an operation changes, as rows ready to write (sealed when the snapshot had a
/// sealer). Apply all of it in one transaction, or none of it.
#[pyclass(module = "textsecure._native", name = "ChangeSet", frozen)]
pub(crate) struct ChangeSet {
    sessions: Vec<(textsecure_core::address::Address, u64, Row)>,
    identities: Vec<(textsecure_core::address::Address, Row)>,
    removed_prekeys: Vec<u32>,
    removed_kyber_prekeys: Vec<u32>,
    kyber_last_resort_uses: Vec<(u32, u32, [u8; 33])>,
    base_keys: Vec<(u32, [u8; 33])>,
    sender_keys: Vec<(textsecure_core::address::Address, String, u64, Row)>,
}

impl ChangeSet {
    fn rows(
        cs: uow::ChangeSet,
        sealer: Option<&seal::RecordSealer>,
    ) -> textsecure_core::Result<Self> {
        let put = |table: &str, key: &str, data: Vec<u8>| -> textsecure_core::Result<Row> {
            let data = Zeroizing::new(data);
            match sealer {
                Some(s) => s.seal(table, key, &data).map(Zeroizing::new),
                None => Ok(data),
            }
        };
        // a batch's sessions are serialised (and sealed) on every core
        let sessions = cs
            .sessions
            .into_par_iter()
            .map(|(a, v, r)| {
                let row = put("sessions", &address_key(&a), r.serialize())?;
                Ok((a, v, row))
            })
            .collect::<textsecure_core::Result<Vec<_>>>()?;
        let mut identities = Vec::with_capacity(cs.identities.len());
        for (a, k) in cs.identities {
            let row = put("identities", &address_key(&a), k.serialize().to_vec())?;
            identities.push((a, row));
        }
        let mut sender_keys = Vec::with_capacity(cs.sender_keys.len());
        for (a, d, v, r) in cs.sender_keys {
            let row = put("sender_keys", &sender_key_row(&a, &d), r.serialize())?;
            sender_keys.push((a, uow::distribution_key_string(&d), v, row));
        }
        Ok(Self {
            sessions,
            identities,
            removed_prekeys: cs.removed_prekeys,
            removed_kyber_prekeys: cs.removed_kyber_prekeys,
            kyber_last_resort_uses: cs
                .kyber_last_resort_uses
                .into_iter()
                .map(|(k, s, b)| (k, s, b.serialize()))
                .collect(),
            base_keys: cs
                .base_keys
                .into_iter()
                .map(|(s, b)| (s, b.serialize()))
                .collect(),
            sender_keys,
        })
    }
}

#[pymethods]
impl ChangeSet {
    /// (address, the version read, the new row).
    #[getter]
    fn sessions<'py>(&self, py: Python<'py>) -> Vec<(Address, u64, Bound<'py, PyBytes>)> {
        self.sessions
            .iter()
            .map(|(a, v, r)| (Address { inner: a.clone() }, *v, PyBytes::new(py, r)))
            .collect()
    }
    /// (address, the new row).
    #[getter]
    fn identities<'py>(&self, py: Python<'py>) -> Vec<(Address, Bound<'py, PyBytes>)> {
        self.identities
            .iter()
            .map(|(a, r)| (Address { inner: a.clone() }, PyBytes::new(py, r)))
            .collect()
    }
    #[getter]
    fn removed_prekeys(&self) -> Vec<u32> {
        self.removed_prekeys.clone()
    }
    #[getter]
    fn removed_kyber_prekeys(&self) -> Vec<u32> {
        self.removed_kyber_prekeys.clone()
    }
    /// (Kyber prekey id, signed prekey id, base key).
    #[getter]
    fn kyber_last_resort_uses<'py>(&self, py: Python<'py>) -> Vec<(u32, u32, Bound<'py, PyBytes>)> {
        self.kyber_last_resort_uses
            .iter()
            .map(|(k, s, b)| (*k, *s, PyBytes::new(py, b)))
            .collect()
    }
    /// (signed prekey id, base key).
    #[getter]
    fn base_keys<'py>(&self, py: Python<'py>) -> Vec<(u32, Bound<'py, PyBytes>)> {
        self.base_keys
            .iter()
            .map(|(s, b)| (*s, PyBytes::new(py, b)))
            .collect()
    }
    /// (sender, distribution key, the version read, the new row).
    #[getter]
    fn sender_keys<'py>(
        &self,
        py: Python<'py>,
    ) -> Vec<(Address, String, u64, Bound<'py, PyBytes>)> {
        self.sender_keys
            .iter()
            .map(|(a, d, v, r)| {
                (
                    Address { inner: a.clone() },
                    d.clone(),
                    *v,
                    PyBytes::new(py, r),
                )
            })
            .collect()
    }
    /// True when the operation changed nothing.
    fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.identities.is_empty()
            && self.removed_prekeys.is_empty()
            && self.removed_kyber_prekeys.is_empty()
            && self.kyber_last_resort_uses.is_empty()
            && self.base_keys.is_empty()
            && self.sender_keys.is_empty()
    }
    fn __repr__(&self) -> String {
        format!(
            "<ChangeSet sessions={} identities={} prekeys-={} kyber-={} sender_keys={}>",
            self.sessions.len(),
            self.identities.len(),
            self.removed_prekeys.len(),
            self.removed_kyber_prekeys.len(),
            self.sender_keys.len()
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Operation
// ---------------------------------------------------------------------------------------------

/// One protocol operation, handed by a cipher to a store's `_execute`.
#[pyclass(module = "textsecure._native", name = "Operation", frozen)]
pub(crate) struct Operation {
    pub(crate) inner: uow::Operation,
}

fn session_options(
    pq_ratchet: Option<&Bound<'_, PyAny>>,
    local_address: Option<&Bound<'_, Address>>,
) -> PyResult<textsecure_core::session::SessionOptions> {
    Ok(textsecure_core::session::SessionOptions {
        local_address: local_address.map(|a| a.get().inner.clone()),
        pq_ratchet: crate::cipher::pq_policy(pq_ratchet)?,
    })
}

#[pymethods]
impl Operation {
    /// Decrypting `message` (SignalMessage or PreKeySignalMessage) from `address`.
    #[staticmethod]
    #[pyo3(signature = (address, message, *, pq_ratchet = None, local_address = None))]
    fn decrypt(
        address: &Bound<'_, Address>,
        message: &Bound<'_, PyAny>,
        pq_ratchet: Option<&Bound<'_, PyAny>>,
        local_address: Option<&Bound<'_, Address>>,
    ) -> PyResult<Self> {
        let message = crate::cipher::message_arg(message)?;
        Ok(Self {
            inner: uow::Operation::Decrypt {
                remote: address.get().inner.clone(),
                message,
                options: session_options(pq_ratchet, local_address)?,
            }
            .canonicalize(),
        })
    }
    /// Encrypting `plaintext` to `address`.
    #[staticmethod]
    #[pyo3(signature = (address, plaintext, *, local_address = None))]
    fn encrypt(
        address: &Bound<'_, Address>,
        plaintext: BytesLike<'_>,
        local_address: Option<&Bound<'_, Address>>,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: uow::Operation::Encrypt {
                remote: address.get().inner.clone(),
                plaintext: plaintext.to_vec(),
                options: session_options(None, local_address)?,
            }
            .canonicalize(),
        })
    }
    /// Starting a session with `address` from its bundle.
    #[staticmethod]
    #[pyo3(signature = (address, bundle, *, pq_ratchet = None))]
    fn process_bundle(
        address: &Bound<'_, Address>,
        bundle: &Bound<'_, PreKeyBundle>,
        pq_ratchet: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: uow::Operation::ProcessBundle {
                remote: address.get().inner.clone(),
                bundle: bundle.get().inner.clone(),
                options: session_options(pq_ratchet, None)?,
            }
            .canonicalize(),
        })
    }

    /// The operation's kind: "process_bundle", "encrypt", "decrypt", "fanout",
    /// "create_distribution", "process_distribution", "group_encrypt", "group_decrypt",
    /// "sealed_encrypt" or "sealed_decrypt".
    #[getter]
    fn kind(&self) -> &'static str {
        use uow::Operation as O;
        match &self.inner {
            O::ProcessBundle { .. } => "process_bundle",
            O::Encrypt { .. } => "encrypt",
            O::Decrypt { .. } => "decrypt",
            O::Fanout { .. } => "fanout",
            O::CreateDistribution { .. } => "create_distribution",
            O::ProcessDistribution { .. } => "process_distribution",
            O::GroupEncrypt { .. } => "group_encrypt",
            O::GroupDecrypt { .. } => "group_decrypt",
            O::SealedEncrypt { .. } => "sealed_encrypt",
            O::SealedDecrypt { .. } => "sealed_decrypt",
        }
    }

    /// The (canonical) peer of a 1:1 operation, else None.
    #[getter]
    fn remote(&self) -> Option<Address> {
        self.inner.remote().map(|inner| Address { inner })
    }

    /// What the operation reads.
    fn needs(&self) -> PyResult<Needs> {
        Ok(Needs {
            inner: self.inner.needs().py()?,
        })
    }

    /// Runs the operation on `snapshot` (the GIL is released): the rows to write and the
    /// operation's result. Raises a `textsecure.errors` exception, and changes nothing, when
    /// the operation fails.
    fn plan(&self, py: Python<'_>, snapshot: &Bound<'_, Snapshot>) -> PyResult<Py<PyTuple>> {
        let snap = snapshot.get();
        let sealer = snap.sealer.as_ref().map(|s| &s.get().inner);
        let guard = snap
            .inner
            .lock()
            .map_err(|_| StoreError::new_err("snapshot lock poisoned"))?;
        let op = &self.inner;
        let pending = snap.take_pending()?;
        let mut guard = guard;
        let snapshot: &mut uow::Snapshot = &mut guard;
        let planned = py.detach(|| {
            materialize(pending, sealer, snapshot);
            let (out, cs) = uow::plan(op, snapshot)?;
            Ok::<_, Error>((out, ChangeSet::rows(cs, sealer)?))
        });
        drop(guard);
        let (out, rows) = planned.map_err(|e| op_error(py, e, op))?;
        let value = output_to_py(py, op, out)?;
        Ok(PyTuple::new(py, [Py::new(py, rows)?.into_any(), value])?.unbind())
    }

    fn __repr__(&self) -> String {
        match self.inner.remote() {
            Some(r) => format!("<Operation {} {r}>", self.kind()),
            None => format!("<Operation {}>", self.kind()),
        }
    }
}

/// Generates a bundle's prekeys for `identity`: the public bundle and the records to store.
#[pyfunction]
#[pyo3(signature = (identity, registration_id, device_id, *, signed_prekey_id, prekey_id = None,
    kyber_prekey_id = None, timestamp_ms))]
#[allow(clippy::type_complexity)]
pub(crate) fn generate_bundle(
    identity: &Bound<'_, IdentityKeyPair>,
    registration_id: Int<u32>,
    device_id: Int<u32>,
    signed_prekey_id: Int<u32>,
    prekey_id: Option<Int<u32>>,
    kyber_prekey_id: Option<Int<u32>>,
    timestamp_ms: Int<u64>,
) -> PyResult<(
    PreKeyBundle,
    crate::records::SignedPreKeyRecord,
    Option<crate::records::PreKeyRecord>,
    Option<crate::records::KyberPreKeyRecord>,
)> {
    let nb = core_prekey::generate_bundle(
        &identity.get().inner,
        registration_id.0,
        &core_prekey::BundleSpec {
            device_id: device_id.0,
            prekey_id: prekey_id.map(|v| v.0),
            signed_prekey_id: signed_prekey_id.0,
            kyber_prekey_id: kyber_prekey_id.map(|v| v.0),
            timestamp_ms: timestamp_ms.0,
        },
    )
    .py()?;
    Ok((
        PreKeyBundle { inner: nb.bundle },
        crate::records::SignedPreKeyRecord {
            inner: nb.signed_prekey,
        },
        nb.prekey
            .map(|inner| crate::records::PreKeyRecord { inner }),
        nb.kyber_prekey
            .map(|inner| crate::records::KyberPreKeyRecord { inner }),
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RecordSealer>()?;
    m.add_class::<Needs>()?;
    m.add_class::<Snapshot>()?;
    m.add_class::<ChangeSet>()?;
    m.add_class::<Operation>()?;
    m.add_class::<Batch>()?;
    m.add_function(wrap_pyfunction!(generate_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(decrypt_many, m)?)?;
    m.add_function(wrap_pyfunction!(encrypt_many, m)?)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reads the sealed-sender helpers make outside an operation
// ---------------------------------------------------------------------------------------------

/// The store's own identity key pair.
pub(crate) fn store_identity_key_pair(
    store: &Bound<'_, PyAny>,
) -> PyResult<core_prekey::IdentityKeyPair> {
    if let Ok(mem) = store.cast::<MemoryStore>() {
        return Ok(mem.get().lock()?.identity().clone());
    }
    let obj = store.getattr("identity_key_pair")?;
    let pair = obj
        .cast::<IdentityKeyPair>()
        .map_err(|_| PyTypeError::new_err("store.identity_key_pair must be an IdentityKeyPair"))?;
    Ok(pair.get().inner.clone())
}

/// The stored identity of `address` (canonical), if any.
pub(crate) fn store_identity(
    store: &Bound<'_, PyAny>,
    address: &textsecure_core::address::Address,
) -> PyResult<Option<curve::PublicKey>> {
    let address = address.canonical();
    if let Ok(mem) = store.cast::<MemoryStore>() {
        return Ok(mem.get().lock()?.identities.get(&address).copied());
    }
    let key = store.call_method1("identity", (Address { inner: address },))?;
    if key.is_none() {
        return Ok(None);
    }
    crate::keys::public_key_arg(&key).map(Some)
}

/// The registration id of the current session with `address`, if there is one.
pub(crate) fn store_remote_registration_id(
    store: &Bound<'_, PyAny>,
    address: &textsecure_core::address::Address,
) -> PyResult<Option<u32>> {
    let address = address.canonical();
    if let Ok(mem) = store.cast::<MemoryStore>() {
        return Ok(mem
            .get()
            .lock()?
            .sessions
            .get(&address)
            .and_then(|r| r.current.as_ref())
            .map(|s| s.remote_registration_id));
    }
    let rec = store.call_method1("session", (Address { inner: address },))?;
    if rec.is_none() {
        return Ok(None);
    }
    let rec = rec
        .cast::<crate::records::SessionRecord>()
        .map_err(|_| PyTypeError::new_err("store.session() must return a SessionRecord"))?;
    Ok(rec
        .get()
        .inner
        .current
        .as_ref()
        .map(|s| s.remote_registration_id))
}

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

/// Many operations handed to a store's `_execute` as one: `needs()` is everything they read,
/// `plan(snapshot)` runs them all (on every core, GIL released) and returns one `ChangeSet`
/// and the list of their results, in order: each a value or a `textsecure.errors` exception.
#[pyclass(module = "textsecure._native", name = "Batch", frozen)]
pub(crate) struct Batch {
    ops: Vec<uow::Operation>,
}

impl Batch {
    fn results_to_py<'py>(
        &self,
        py: Python<'py>,
        results: Vec<textsecure_core::Result<Output>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for (op, r) in self.ops.iter().zip(results) {
            let v = match r {
                Ok(out) => output_to_py(py, op, out)?,
                Err(e) => op_error(py, e, op).into_value(py).into_any(),
            };
            list.append(v)?;
        }
        Ok(list)
    }
}

#[pymethods]
impl Batch {
    /// Always "batch".
    #[getter]
    fn kind(&self) -> &'static str {
        "batch"
    }

    /// Always None (a batch has many peers).
    #[getter]
    fn remote(&self) -> Option<Address> {
        None
    }

    fn __len__(&self) -> usize {
        self.ops.len()
    }

    /// Everything the batch reads, each record once.
    fn needs(&self) -> Needs {
        Needs {
            inner: uow::batch_needs(&self.ops),
        }
    }

    /// Runs every operation on `snapshot` (GIL released, on every core): the rows to write
    /// for the items that succeeded, and the list of results in order.
    fn plan(&self, py: Python<'_>, snapshot: &Bound<'_, Snapshot>) -> PyResult<Py<PyTuple>> {
        let snap = snapshot.get();
        let sealer = snap.sealer.as_ref().map(|s| &s.get().inner);
        let guard = snap
            .inner
            .lock()
            .map_err(|_| StoreError::new_err("snapshot lock poisoned"))?;
        let ops = &self.ops;
        let pending = snap.take_pending()?;
        let mut guard = guard;
        let snapshot: &mut uow::Snapshot = &mut guard;
        let planned = py.detach(|| {
            materialize(pending, sealer, snapshot);
            let (results, cs) = uow::plan_batch(ops, snapshot);
            ChangeSet::rows(cs, sealer).map(|rows| (results, rows))
        });
        drop(guard);
        let (results, rows) = planned.map_err(to_py)?;
        let list = self.results_to_py(py, results)?;
        Ok(PyTuple::new(
            py,
            [Py::new(py, rows)?.into_any(), list.into_any().unbind()],
        )?
        .unbind())
    }

    fn __repr__(&self) -> String {
        format!("<Batch of {} operations>", self.ops.len())
    }
}

/// An item that could not become an operation: its error as a value when it is a
/// `textsecure.errors` exception (bad message bytes), else raised (a wrong type).
pub(crate) fn item_error(py: Python<'_>, e: PyErr) -> PyResult<Py<PyAny>> {
    let base = py.import("textsecure.errors")?.getattr("TextSecureError")?;
    if e.is_instance(py, &base) {
        Ok(e.into_value(py).into_any())
    } else {
        Err(e)
    }
}

/// How many items a store takes in one unit of work (`_batch_limit`; unlimited if absent).
fn batch_limit(store: &Bound<'_, PyAny>) -> PyResult<usize> {
    match store.getattr_opt("_batch_limit")? {
        Some(v) if !v.is_none() => Ok(v.extract::<usize>()?.max(1)),
        _ => Ok(usize::MAX),
    }
}

/// Runs `items` (each an operation, or the value already decided for it) on `store`: one
/// unit of work per store batch limit, the results in order.
pub(crate) fn run_many(
    py: Python<'_>,
    store: &Bound<'_, PyAny>,
    items: Vec<Result<uow::Operation, Py<PyAny>>>,
) -> PyResult<Py<PyList>> {
    let mut slots: Vec<Option<Py<PyAny>>> = Vec::with_capacity(items.len());
    let mut ops = Vec::new();
    let mut where_: Vec<usize> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Ok(op) => {
                slots.push(None);
                ops.push(op.canonicalize());
                where_.push(i);
            }
            Err(v) => slots.push(Some(v)),
        }
    }
    let mem = store.cast::<MemoryStore>().ok();
    let limit = if mem.is_some() {
        usize::MAX
    } else {
        batch_limit(store)?
    };
    let mut done = 0;
    while done < ops.len() {
        let end = ops.len().min(done.saturating_add(limit));
        let chunk: Vec<uow::Operation> = ops[done..end].to_vec();
        let batch = Batch { ops: chunk };
        let values: Bound<'_, PyList> = match mem {
            Some(m) => {
                let results = m.get().run_batch(py, &batch.ops)?;
                batch.results_to_py(py, results)?
            }
            None => {
                let obj = Py::new(py, batch)?;
                let out = store.call_method1("_execute", (obj,))?;
                out.cast_into::<PyList>().map_err(|_| {
                    PyTypeError::new_err("the store's _execute returned no list for a batch")
                })?
            }
        };
        for (k, v) in values.iter().enumerate() {
            if let Some(&slot) = where_.get(done + k) {
                slots[slot] = Some(v.unbind());
            }
        }
        done = end;
    }
    let list = PyList::empty(py);
    for s in slots {
        list.append(s.unwrap_or_else(|| py.None()))?;
    }
    Ok(list.unbind())
}

pub(crate) fn pair<'py>(
    item: Bound<'py, PyAny>,
    what: &str,
) -> PyResult<(Bound<'py, Address>, Bound<'py, PyAny>)> {
    let t = item
        .cast_into::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .ok_or_else(|| PyTypeError::new_err(format!("items must be (Address, {what}) pairs")))?;
    let a = t
        .get_item(0)?
        .cast_into::<Address>()
        .map_err(|_| PyTypeError::new_err(format!("items must be (Address, {what}) pairs")))?;
    Ok((a, t.get_item(1)?))
}

/// Decrypts many 1:1 messages: `items` are (Address, PreKeySignalMessage | SignalMessage |
/// (type, body)) pairs. Returns one result per item, in order: the plaintext, or the
/// `textsecure.errors` exception for that item (which changed nothing). Items for one address
/// are decrypted in order; the crypto runs on every core with the GIL released; a durable
/// store loads once and commits once (per `_batch_limit` items).
#[pyfunction]
#[pyo3(signature = (store, items, *, pq_ratchet = None, local_address = None))]
pub(crate) fn decrypt_many(
    py: Python<'_>,
    store: &Bound<'_, PyAny>,
    items: &Bound<'_, PyAny>,
    pq_ratchet: Option<&Bound<'_, PyAny>>,
    local_address: Option<&Bound<'_, Address>>,
) -> PyResult<Py<PyList>> {
    check_store(store)?;
    let options = session_options(pq_ratchet, local_address)?;
    let mut ops = Vec::new();
    for item in items.try_iter()? {
        let (a, m) = pair(item?, "message")?;
        ops.push(match crate::cipher::message_arg(&m) {
            Ok(message) => Ok(uow::Operation::Decrypt {
                remote: a.get().inner.clone(),
                message,
                options: options.clone(),
            }),
            Err(e) => Err(item_error(py, e)?),
        });
    }
    run_many(py, store, ops)
}

/// Encrypts many plaintexts: `items` are (Address, plaintext) pairs. Returns one result per
/// item, in order: the message, or the `textsecure.errors` exception for that item (which
/// changed nothing). Items for one address are encrypted in order (consecutive counters).
#[pyfunction]
#[pyo3(signature = (store, items, *, local_address = None))]
pub(crate) fn encrypt_many(
    py: Python<'_>,
    store: &Bound<'_, PyAny>,
    items: &Bound<'_, PyAny>,
    local_address: Option<&Bound<'_, Address>>,
) -> PyResult<Py<PyList>> {
    check_store(store)?;
    let options = session_options(None, local_address)?;
    let mut ops = Vec::new();
    for item in items.try_iter()? {
        let (a, p) = pair(item?, "plaintext")?;
        let plaintext: BytesLike<'_> = p.extract()?;
        ops.push(Ok(uow::Operation::Encrypt {
            remote: a.get().inner.clone(),
            plaintext: plaintext.to_vec(),
            options: options.clone(),
        }));
    }
    run_many(py, store, ops)
}
