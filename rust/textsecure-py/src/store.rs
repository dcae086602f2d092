//! `Address` and the in-memory store.

use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;

use textsecure_core::curve;
use textsecure_core::prekey as core_prekey;
use textsecure_core::store::{self as core_store, InMemoryStore};
use textsecure_core::Error;

use crate::convert::Int;
use crate::errors::{to_py, CoreResultExt};
use crate::keys::{new_identity_key, public_key_arg, IdentityKey, IdentityKeyPair};
use crate::records::{
    now_ms, KyberPreKeyRecord, PreKeyBundle, PreKeyRecord, SessionRecord, SignedPreKeyRecord,
};

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
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
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
    fn __getnewargs__(&self) -> (String, u32) {
        (self.inner.name.clone(), self.inner.device_id)
    }
}

/// Every protocol store in memory: identities (trust on first use), sessions, prekeys,
/// signed prekeys, Kyber prekeys.
#[pyclass(module = "textsecure._native", name = "MemoryStore")]
pub(crate) struct MemoryStore {
    pub(crate) inner: InMemoryStore,
}

#[pymethods]
impl MemoryStore {
    #[new]
    fn new(identity: &Bound<'_, IdentityKeyPair>, registration_id: Int<u32>) -> Self {
        let registration_id = registration_id.0;
        Self {
            inner: InMemoryStore::new(identity.get().inner.clone(), registration_id),
        }
    }

    #[getter]
    fn identity_key_pair(&self) -> IdentityKeyPair {
        IdentityKeyPair {
            inner: self.inner.identity().clone(),
        }
    }

    #[getter]
    fn registration_id(&self) -> u32 {
        self.inner.registration_id()
    }

    fn save_prekey(&mut self, record: &Bound<'_, PreKeyRecord>) {
        let r = record.get().inner.clone();
        self.inner.prekeys.insert(r.id, r);
    }
    fn load_prekey(&self, id: Int<u32>) -> Option<PreKeyRecord> {
        let id = id.0;
        self.inner
            .prekeys
            .get(&id)
            .map(|r| PreKeyRecord { inner: r.clone() })
    }
    fn remove_prekey(&mut self, id: Int<u32>) {
        let id = id.0;
        self.inner.prekeys.remove(&id);
    }

    fn save_signed_prekey(&mut self, record: &Bound<'_, SignedPreKeyRecord>) {
        let r = record.get().inner.clone();
        self.inner.signed_prekeys.insert(r.id, r);
    }
    fn load_signed_prekey(&self, id: Int<u32>) -> Option<SignedPreKeyRecord> {
        let id = id.0;
        self.inner
            .signed_prekeys
            .get(&id)
            .map(|r| SignedPreKeyRecord { inner: r.clone() })
    }
    /// Removes a signed prekey (and the replay records of sessions set up with it).
    fn remove_signed_prekey(&mut self, id: Int<u32>) {
        let id = id.0;
        self.inner.remove_signed_prekey(id);
    }

    /// Stores a Kyber prekey; a `last_resort` one is kept after use and may serve many
    /// sessions, a one-time one is removed after its first use.
    #[pyo3(signature = (record, *, last_resort = false))]
    fn save_kyber_prekey(&mut self, record: &Bound<'_, KyberPreKeyRecord>, last_resort: bool) {
        let r = record.get().inner.clone();
        self.inner.kyber_prekeys.insert(r.id, (r, last_resort));
    }
    fn load_kyber_prekey(&self, id: Int<u32>) -> Option<KyberPreKeyRecord> {
        let id = id.0;
        self.inner
            .kyber_prekeys
            .get(&id)
            .map(|(r, _)| KyberPreKeyRecord { inner: r.clone() })
    }
    fn remove_kyber_prekey(&mut self, id: Int<u32>) {
        let id = id.0;
        self.inner.kyber_prekeys.remove(&id);
    }

    /// Generates prekeys, stores their private halves and returns the public bundle.
    /// `kyber=False` gives an X3DH (v3) bundle; the Kyber prekey id defaults to the signed
    /// prekey id.
    #[pyo3(signature = (device_id, *, prekey_id = None, signed_prekey_id, kyber_prekey_id = None,
        one_time = true, kyber = true, kyber_last_resort = false))]
    #[allow(clippy::too_many_arguments)]
    fn new_bundle(
        &mut self,
        device_id: Int<u32>,
        prekey_id: Option<Int<u32>>,
        signed_prekey_id: Int<u32>,
        kyber_prekey_id: Option<Int<u32>>,
        one_time: bool,
        kyber: bool,
        kyber_last_resort: bool,
    ) -> PyResult<PreKeyBundle> {
        let device_id = device_id.0;
        let prekey_id = prekey_id.map(|v| v.0);
        let signed_prekey_id = signed_prekey_id.0;
        let kyber_prekey_id = kyber_prekey_id.map(|v| v.0);
        let identity = self.inner.identity().clone();
        let spk = core_prekey::SignedPreKeyRecord::generate(signed_prekey_id, &identity, now_ms());
        let otk = if one_time {
            let id = prekey_id
                .ok_or_else(|| to_py(Error::InvalidArgument("one_time=True needs a prekey_id")))?;
            Some(core_prekey::PreKeyRecord::new(
                id,
                curve::PrivateKey::generate(),
            ))
        } else {
            None
        };
        let kyber_rec = if kyber {
            let id = kyber_prekey_id.unwrap_or(signed_prekey_id);
            Some(core_prekey::KyberPreKeyRecord::generate(id, &identity, now_ms()).py()?)
        } else {
            None
        };
        let bundle = core_prekey::PreKeyBundle {
            registration_id: self.inner.registration_id(),
            device_id,
            identity_key: identity.public_key,
            signed_prekey_id,
            signed_prekey: spk.key_pair.public_key,
            signed_prekey_signature: spk.signature.clone(),
            prekey: otk.as_ref().map(|r| (r.id, r.key_pair.public_key)),
            kyber: kyber_rec.as_ref().map(|r| core_prekey::KyberBundlePart {
                id: r.id,
                public_key: r.key_pair.public_key.clone(),
                signature: r.signature.clone(),
            }),
        };
        self.inner.signed_prekeys.insert(spk.id, spk);
        if let Some(r) = otk {
            self.inner.prekeys.insert(r.id, r);
        }
        if let Some(r) = kyber_rec {
            self.inner
                .kyber_prekeys
                .insert(r.id, (r, kyber_last_resort));
        }
        Ok(PreKeyBundle { inner: bundle })
    }

    /// A snapshot of the session record with `address`, or None.
    fn session(&self, address: &Bound<'_, Address>) -> Option<SessionRecord> {
        self.inner
            .sessions
            .get(&address.get().inner)
            .map(|r| SessionRecord { inner: r.clone() })
    }
    fn save_session(&mut self, address: &Bound<'_, Address>, record: &Bound<'_, SessionRecord>) {
        self.inner
            .sessions
            .insert(address.get().inner.clone(), record.get().inner.clone());
    }
    fn remove_session(&mut self, address: &Bound<'_, Address>) {
        self.inner.sessions.remove(&address.get().inner);
    }
    /// Addresses with a stored session, sorted.
    fn session_addresses(&self) -> Vec<Address> {
        let mut v: Vec<_> = self
            .inner
            .sessions
            .keys()
            .map(|a| Address { inner: a.clone() })
            .collect();
        v.sort_by(|a, b| a.inner.cmp(&b.inner));
        v
    }

    /// The trusted identity of `address`, or None.
    fn identity(
        &self,
        py: Python<'_>,
        address: &Bound<'_, Address>,
    ) -> PyResult<Option<Py<IdentityKey>>> {
        self.inner
            .identities
            .get(&address.get().inner)
            .map(|k| new_identity_key(py, *k))
            .transpose()
    }
    /// Accepts `identity_key` for `address` (replacing a changed one).
    fn trust(
        &mut self,
        address: &Bound<'_, Address>,
        identity_key: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let k = public_key_arg(identity_key)?;
        self.inner.trust(&address.get().inner, k);
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!(
            "<MemoryStore registration_id={} sessions={} prekeys={}>",
            self.inner.registration_id(),
            self.inner.sessions.len(),
            self.inner.prekeys.len()
        )
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
            .inner
            .sender_keys
            .get(&(sender.get().inner.clone(), key))
            .map(|r| crate::groups::SenderKeyRecord { inner: r.clone() }))
    }
    /// Stores (replaces) the sender-key record of (`sender`, `distribution_id`).
    fn save_sender_key(
        &mut self,
        sender: &Bound<'_, Address>,
        distribution_id: &Bound<'_, PyAny>,
        record: &Bound<'_, crate::groups::SenderKeyRecord>,
    ) -> PyResult<()> {
        let key = crate::groups::distribution_key_arg(distribution_id)?;
        self.inner.sender_keys.insert(
            (sender.get().inner.clone(), key),
            record.get().inner.clone(),
        );
        Ok(())
    }
    /// Forgets the sender-key record of (`sender`, `distribution_id`).
    fn remove_sender_key(
        &mut self,
        sender: &Bound<'_, Address>,
        distribution_id: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let key = crate::groups::distribution_key_arg(distribution_id)?;
        self.inner
            .sender_keys
            .remove(&(sender.get().inner.clone(), key));
        Ok(())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Address>()?;
    m.add_class::<MemoryStore>()?;
    Ok(())
}
