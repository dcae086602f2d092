//! `Address` and the in-memory store.

use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;

use std::sync::{Mutex, MutexGuard};

use textsecure_core::address as core_store;
use textsecure_core::prekey as core_prekey;
use textsecure_core::store::InMemoryStore;
use textsecure_core::uow;
use textsecure_core::Error;

use crate::convert::Int;
use crate::errors::{to_py, CoreResultExt, StoreError};
use crate::keys::{new_identity_key, public_key_arg, IdentityKey, IdentityKeyPair};
use crate::records::{
    now_ms, KyberPreKeyRecord, PreKeyBundle, PreKeyRecord, SessionRecord, SignedPreKeyRecord,
};

/// A device of a contact: ``Address(name, device_id)``, as libsignal's ``ProtocolAddress``.
/// Hashable and ordered; ``str()`` is ``"name.device_id"``. Stores key and lock by ``canonical()``.
#[pyclass(module = "textsecure._native", name = "Address", frozen)]
#[derive(Clone)]
pub(crate) struct Address {
    pub(crate) inner: core_store::Address,
}

#[pymethods]
impl Address {
    #[new]
    fn new(name: String, device_id: Int<u32>) -> Self {
        let device_id = device_id.0;
        Self {
            inner: core_store::Address::new(name, device_id),
        }
    }
    /// The contact's name: a ServiceId (an ACI UUID, ``PNI:`` and a UUID), a phone number, or any
    /// string.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// The device id (an int, 1 for a primary device).
    #[getter]
    fn device_id(&self) -> u32 {
        self.inner.device_id
    }
    fn __str__(&self) -> String {
        self.inner.to_string()
    }
    fn __repr__(&self) -> String {
        format!("Address({:?}, {})", self.inner.name, self.inner.device_id)
    }
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.hash(&mut h);
        h.finish()
    }
    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(o) = other.cast::<Address>() else {
            return Ok(py.NotImplemented());
        };
        let r = op.matches(self.inner.cmp(&o.get().inner));
        Ok(r.into_pyobject(py)?.to_owned().into_any().unbind())
    }
    /// The canonical spelling of this address (a ServiceId name in lower case, `PNI:`
    /// prefix), the one stores key and lock by.
    fn canonical(&self) -> Address {
        Address {
            inner: self.inner.canonical(),
        }
    }
    fn __getnewargs__(&self) -> (String, u32) {
        (self.inner.name.clone(), self.inner.device_id)
    }
}

/// Every protocol store in memory: identities (trust on first use), sessions, prekeys,
/// signed prekeys, Kyber prekeys, sender keys. Thread-safe: operations load under a lock, run
/// their crypto with the GIL released and without the lock, and commit only if what they read
/// is unchanged (else they run again), so threads never fork a ratchet.
#[pyclass(module = "textsecure._native", name = "MemoryStore", frozen)]
pub(crate) struct MemoryStore {
    inner: Mutex<InMemoryStore>,
}

impl MemoryStore {
    /// The store, locked.
    pub(crate) fn lock(&self) -> PyResult<MutexGuard<'_, InMemoryStore>> {
        self.inner
            .lock()
            .map_err(|_| to_py(Error::InvalidArgument("MemoryStore lock poisoned")))
    }

    /// Runs an operation: snapshot under the lock, plan without it (GIL released), commit if
    /// nothing it read has changed meanwhile, else again.
    pub(crate) fn run(&self, py: Python<'_>, op: &uow::Operation) -> PyResult<Py<PyAny>> {
        let needs = op.needs().py()?;
        for _ in 0..crate::uow::MAX_ATTEMPTS {
            let snap = self.lock()?.snapshot(&needs);
            let (out, changes) = py
                .detach(|| uow::plan(op, &snap))
                .map_err(|e| crate::uow::op_error(py, e, op))?;
            drop(snap);
            if self.lock()?.apply(changes).is_ok() {
                return crate::uow::output_to_py(py, op, out);
            }
        }
        Err(StoreError::new_err(
            "the operation lost the race for its records too many times",
        ))
    }
}

/// Items per unit of work of a batch on a `MemoryStore`.
const MEMORY_CHUNK: usize = 256;

impl MemoryStore {
    /// Runs a batch in chunks of [`MEMORY_CHUNK`] items, in order: for each, one snapshot of
    /// everything it reads under the lock, the plan on every core without it (GIL released),
    /// one commit; the chunk again if anything it read changed meanwhile. (Chunks keep the
    /// snapshot's records in cache: one snapshot of 10,000 sessions halves the throughput.)
    pub(crate) fn run_batch(
        &self,
        py: Python<'_>,
        ops: &[uow::Operation],
    ) -> PyResult<Vec<textsecure_core::Result<uow::Output>>> {
        py.detach(|| {
            let mut results = Vec::with_capacity(ops.len());
            for chunk in ops.chunks(MEMORY_CHUNK) {
                results.extend(self.run_chunk(chunk)?);
            }
            Ok(results)
        })
    }

    fn run_chunk(
        &self,
        ops: &[uow::Operation],
    ) -> PyResult<Vec<textsecure_core::Result<uow::Output>>> {
        let needs = uow::batch_needs(ops);
        for _ in 0..crate::uow::MAX_ATTEMPTS {
            let snap = self.lock()?.snapshot(&needs);
            let (results, changes) = uow::plan_batch(ops, &snap);
            drop(snap);
            if self.lock()?.apply(changes).is_ok() {
                return Ok(results);
            }
        }
        Err(StoreError::new_err(
            "the batch lost the race for its records too many times",
        ))
    }
}

#[pymethods]
impl MemoryStore {
    #[new]
    fn new(identity: &Bound<'_, IdentityKeyPair>, registration_id: Int<u32>) -> Self {
        let registration_id = registration_id.0;
        Self {
            inner: Mutex::new(InMemoryStore::new(
                identity.get().inner.clone(),
                registration_id,
            )),
        }
    }

    /// The identity key pair (a secret: see the Secrets page).
    #[getter]
    fn identity_key_pair(&self) -> PyResult<IdentityKeyPair> {
        Ok(IdentityKeyPair {
            inner: self.lock()?.identity().clone(),
        })
    }

    /// The registration id.
    #[getter]
    fn registration_id(&self) -> PyResult<u32> {
        Ok(self.lock()?.registration_id())
    }

    /// Stores a one-time prekey (replacing one with its id).
    fn save_prekey(&self, record: &Bound<'_, PreKeyRecord>) -> PyResult<()> {
        let r = record.get().inner.clone();
        self.lock()?.prekeys.insert(r.id, r);
        Ok(())
    }
    /// The one-time prekey ``id``, or None.
    fn load_prekey(&self, id: Int<u32>) -> PyResult<Option<PreKeyRecord>> {
        Ok(self
            .lock()?
            .prekeys
            .get(&id.0)
            .map(|r| PreKeyRecord { inner: r.clone() }))
    }
    /// Removes the one-time prekey ``id`` (nothing when there is none).
    fn remove_prekey(&self, id: Int<u32>) -> PyResult<()> {
        self.lock()?.prekeys.remove(&id.0);
        Ok(())
    }

    /// Stores a signed prekey (replacing one with its id).
    fn save_signed_prekey(&self, record: &Bound<'_, SignedPreKeyRecord>) -> PyResult<()> {
        let r = record.get().inner.clone();
        self.lock()?.signed_prekeys.insert(r.id, r);
        Ok(())
    }
    /// The signed prekey ``id``, or None.
    fn load_signed_prekey(&self, id: Int<u32>) -> PyResult<Option<SignedPreKeyRecord>> {
        Ok(self
            .lock()?
            .signed_prekeys
            .get(&id.0)
            .map(|r| SignedPreKeyRecord { inner: r.clone() }))
    }
    /// Removes a signed prekey (and the replay records of sessions set up with it).
    fn remove_signed_prekey(&self, id: Int<u32>) -> PyResult<()> {
        self.lock()?.remove_signed_prekey(id.0);
        Ok(())
    }

    /// Stores a Kyber prekey; a `last_resort` one is kept after use and may serve many
    /// sessions, a one-time one is removed after its first use.
    #[pyo3(signature = (record, *, last_resort = false))]
    fn save_kyber_prekey(
        &self,
        record: &Bound<'_, KyberPreKeyRecord>,
        last_resort: bool,
    ) -> PyResult<()> {
        let r = record.get().inner.clone();
        self.lock()?.kyber_prekeys.insert(r.id, (r, last_resort));
        Ok(())
    }
    /// The Kyber prekey ``id``, or None.
    fn load_kyber_prekey(&self, id: Int<u32>) -> PyResult<Option<KyberPreKeyRecord>> {
        Ok(self
            .lock()?
            .kyber_prekeys
            .get(&id.0)
            .map(|(r, _)| KyberPreKeyRecord { inner: r.clone() }))
    }
    /// Removes the Kyber prekey ``id`` (nothing when there is none).
    fn remove_kyber_prekey(&self, id: Int<u32>) -> PyResult<()> {
        self.lock()?.kyber_prekeys.remove(&id.0);
        Ok(())
    }

    /// Generates prekeys, stores their private halves and returns the public bundle.
    /// `kyber=False` gives an X3DH (v3) bundle; the Kyber prekey id defaults to the signed
    /// prekey id.
    #[pyo3(signature = (device_id, *, prekey_id = None, signed_prekey_id, kyber_prekey_id = None,
        one_time = true, kyber = true, kyber_last_resort = false))]
    #[allow(clippy::too_many_arguments)]
    fn new_bundle(
        &self,
        py: Python<'_>,
        device_id: Int<u32>,
        prekey_id: Option<Int<u32>>,
        signed_prekey_id: Int<u32>,
        kyber_prekey_id: Option<Int<u32>>,
        one_time: bool,
        kyber: bool,
        kyber_last_resort: bool,
    ) -> PyResult<PreKeyBundle> {
        let spec = bundle_spec(
            device_id,
            prekey_id,
            signed_prekey_id,
            kyber_prekey_id,
            one_time,
            kyber,
        )?;
        let (identity, registration_id) = {
            let s = self.lock()?;
            (s.identity().clone(), s.registration_id())
        };
        let nb = py
            .detach(|| core_prekey::generate_bundle(&identity, registration_id, &spec))
            .py()?;
        let mut s = self.lock()?;
        s.signed_prekeys
            .insert(nb.signed_prekey.id, nb.signed_prekey);
        if let Some(r) = nb.prekey {
            s.prekeys.insert(r.id, r);
        }
        if let Some(r) = nb.kyber_prekey {
            s.kyber_prekeys.insert(r.id, (r, kyber_last_resort));
        }
        Ok(PreKeyBundle { inner: nb.bundle })
    }

    /// A snapshot of the session record with `address`, or None.
    fn session(&self, address: &Bound<'_, Address>) -> PyResult<Option<SessionRecord>> {
        Ok(self
            .lock()?
            .sessions
            .get(&address.get().inner.canonical())
            .map(|r| SessionRecord { inner: r.clone() }))
    }
    /// Stores ``record`` as the session with ``address`` (replacing any).
    fn save_session(
        &self,
        address: &Bound<'_, Address>,
        record: &Bound<'_, SessionRecord>,
    ) -> PyResult<()> {
        self.lock()?
            .put_session(&address.get().inner.canonical(), record.get().inner.clone());
        Ok(())
    }
    /// Removes the session with ``address`` (nothing when there is none).
    fn remove_session(&self, address: &Bound<'_, Address>) -> PyResult<()> {
        self.lock()?
            .delete_session(&address.get().inner.canonical());
        Ok(())
    }
    /// Addresses with a stored session, sorted.
    fn session_addresses(&self) -> PyResult<Vec<Address>> {
        let mut v: Vec<_> = self
            .lock()?
            .sessions
            .keys()
            .map(|a| Address { inner: a.clone() })
            .collect();
        v.sort_by(|a, b| a.inner.cmp(&b.inner));
        Ok(v)
    }

    /// The trusted identity of `address`, or None.
    fn identity(
        &self,
        py: Python<'_>,
        address: &Bound<'_, Address>,
    ) -> PyResult<Option<Py<IdentityKey>>> {
        let k = self
            .lock()?
            .identities
            .get(&address.get().inner.canonical())
            .copied();
        k.map(|k| new_identity_key(py, k)).transpose()
    }
    /// Accepts `identity_key` for `address` (replacing a changed one).
    fn trust(&self, address: &Bound<'_, Address>, identity_key: &Bound<'_, PyAny>) -> PyResult<()> {
        let k = public_key_arg(identity_key)?;
        self.lock()?.trust(&address.get().inner.canonical(), k);
        Ok(())
    }

    fn __repr__(&self) -> PyResult<String> {
        let s = self.lock()?;
        Ok(format!(
            "<MemoryStore registration_id={} sessions={} prekeys={}>",
            s.registration_id(),
            s.sessions.len(),
            s.prekeys.len()
        ))
    }

    /// A snapshot of the sender-key record of (`sender`, `distribution_id`), or None. A
    /// `uuid.UUID` names a current-format distribution, a `str` a legacy group id.
    fn sender_key(
        &self,
        sender: &Bound<'_, Address>,
        distribution_id: &Bound<'_, PyAny>,
    ) -> PyResult<Option<crate::groups::SenderKeyRecord>> {
        let key = crate::groups::distribution_key_arg(distribution_id)?;
        Ok(self
            .lock()?
            .sender_keys
            .get(&(sender.get().inner.canonical(), key))
            .map(|r| crate::groups::SenderKeyRecord { inner: r.clone() }))
    }
    /// Stores (replaces) the sender-key record of (`sender`, `distribution_id`).
    fn save_sender_key(
        &self,
        sender: &Bound<'_, Address>,
        distribution_id: &Bound<'_, PyAny>,
        record: &Bound<'_, crate::groups::SenderKeyRecord>,
    ) -> PyResult<()> {
        let key = crate::groups::distribution_key_arg(distribution_id)?;
        self.lock()?.put_sender_key(
            (sender.get().inner.canonical(), key),
            record.get().inner.clone(),
        );
        Ok(())
    }
    /// Forgets the sender-key record of (`sender`, `distribution_id`).
    fn remove_sender_key(
        &self,
        sender: &Bound<'_, Address>,
        distribution_id: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let key = crate::groups::distribution_key_arg(distribution_id)?;
        self.lock()?
            .delete_sender_key(&(sender.get().inner.canonical(), key));
        Ok(())
    }
}

/// The core's bundle spec from `new_bundle`'s arguments.
pub(crate) fn bundle_spec(
    device_id: Int<u32>,
    prekey_id: Option<Int<u32>>,
    signed_prekey_id: Int<u32>,
    kyber_prekey_id: Option<Int<u32>>,
    one_time: bool,
    kyber: bool,
) -> PyResult<core_prekey::BundleSpec> {
    let signed_prekey_id = signed_prekey_id.0;
    let prekey_id = match (one_time, prekey_id) {
        (true, None) => {
            return Err(to_py(Error::InvalidArgument(
                "one_time=True needs a prekey_id",
            )))
        }
        (true, Some(id)) => Some(id.0),
        (false, _) => None,
    };
    Ok(core_prekey::BundleSpec {
        device_id: device_id.0,
        prekey_id,
        signed_prekey_id,
        kyber_prekey_id: kyber.then(|| kyber_prekey_id.map_or(signed_prekey_id, |v| v.0)),
        timestamp_ms: now_ms(),
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Address>()?;
    m.add_class::<MemoryStore>()?;
    Ok(())
}
