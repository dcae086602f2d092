//! Sender keys (`GroupCipher`, `LegacyGroupCipher`), their messages and record, and the
//! 1:1 fan-out (`encrypt_fanout`).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyType};

use textsecure_core::group::{self, DistributionKey};
use textsecure_core::message::SENDERKEY_TYPE;

use crate::convert::{message_type, BytesLike};
use crate::errors::CoreResultExt;
use crate::keys::PublicKey;
use crate::store::Address;
use textsecure_core::uow::Operation as Op;

static UUID_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn uuid_class(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    UUID_CLASS.import(py, "uuid", "UUID")
}

/// `uuid.UUID(bytes=...)`.
fn new_uuid<'py>(py: Python<'py>, bytes: &[u8; 16]) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("bytes", PyBytes::new(py, bytes))?;
    uuid_class(py)?.call((), Some(&kwargs))
}

/// The 16 bytes of a `uuid.UUID`.
fn uuid_arg(obj: &Bound<'_, PyAny>) -> PyResult<[u8; 16]> {
    if !obj.is_instance(uuid_class(obj.py())?)? {
        return Err(PyTypeError::new_err(format!(
            "distribution_id must be a uuid.UUID, got {}",
            obj.get_type().name()?
        )));
    }
    let b: Vec<u8> = obj.getattr("bytes")?.extract()?;
    <[u8; 16]>::try_from(b.as_slice()).map_err(|_| PyTypeError::new_err("bad uuid.UUID"))
}

/// A store key: a `uuid.UUID` names a current-format distribution, a `str` a legacy group.
pub(crate) fn distribution_key_arg(obj: &Bound<'_, PyAny>) -> PyResult<DistributionKey> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(DistributionKey::GroupId(s.to_str()?.to_owned()));
    }
    uuid_arg(obj)
        .map(DistributionKey::Uuid)
        .map_err(|_| PyTypeError::new_err("distribution id must be a uuid.UUID or a group id str"))
}

/// Runs a sender-key operation on the cipher's store.
fn run(
    py: Python<'_>,
    store: &Py<PyAny>,
    op: textsecure_core::uow::Operation,
) -> PyResult<Py<PyAny>> {
    crate::uow::execute(py, store.bind(py), op)
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// A current-format SenderKeyDistributionMessage. Its bytes hold the chain key: a secret (see
/// the Secrets page); send it only inside a 1:1 session.
#[pyclass(
    module = "textsecure._native",
    name = "SenderKeyDistributionMessage",
    frozen
)]
pub(crate) struct SenderKeyDistributionMessage {
    pub(crate) inner: group::SenderKeyDistributionMessage,
}

#[pymethods]
impl SenderKeyDistributionMessage {
    /// Reads the current (libsignal) format; raises ``InvalidMessage`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: group::SenderKeyDistributionMessage::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.serialized())
    }
    /// The message version (3).
    #[getter]
    fn version(&self) -> u8 {
        self.inner.message_version()
    }
    /// The distribution id (``uuid.UUID``).
    #[getter]
    fn distribution_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        new_uuid(py, &self.inner.distribution_id().unwrap_or_default())
    }
    /// The sender key's chain id.
    #[getter]
    fn chain_id(&self) -> u32 {
        self.inner.chain_id()
    }
    /// The chain iteration the distributed chain key is at.
    #[getter]
    fn iteration(&self) -> u32 {
        self.inner.iteration()
    }
    /// The sender's public signing key.
    #[getter]
    fn signing_key(&self) -> PublicKey {
        PublicKey {
            inner: *self.inner.signing_key(),
        }
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<SenderKeyDistributionMessage distribution_id={} chain_id={} iteration={}>",
            self.distribution_id(py)?.str()?,
            self.inner.chain_id(),
            self.inner.iteration()
        ))
    }
}

/// A current-format SenderKeyMessage (type 7).
#[pyclass(module = "textsecure._native", name = "SenderKeyMessage", frozen)]
pub(crate) struct SenderKeyMessage {
    pub(crate) inner: group::SenderKeyMessage,
}

#[pymethods]
impl SenderKeyMessage {
    /// Reads the current (libsignal) format; raises ``InvalidMessage`` on bad input.
    #[staticmethod]
    pub(crate) fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: group::SenderKeyMessage::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.serialized())
    }
    /// ``MessageType.SENDERKEY`` (7).
    #[getter]
    fn r#type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        message_type(py, SENDERKEY_TYPE)
    }
    /// The message version (3).
    #[getter]
    fn version(&self) -> u8 {
        self.inner.message_version()
    }
    /// The distribution id (``uuid.UUID``).
    #[getter]
    fn distribution_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        new_uuid(py, &self.inner.distribution_id().unwrap_or_default())
    }
    /// The sender key's chain id.
    #[getter]
    fn chain_id(&self) -> u32 {
        self.inner.chain_id()
    }
    /// The chain iteration of this message.
    #[getter]
    fn iteration(&self) -> u32 {
        self.inner.iteration()
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<SenderKeyMessage distribution_id={} chain_id={} iteration={} size={}>",
            self.distribution_id(py)?.str()?,
            self.inner.chain_id(),
            self.inner.iteration(),
            self.inner.serialized().len()
        ))
    }
}

/// A WhatsApp-era SenderKeyDistributionMessage (no distribution id). Its bytes hold the
/// chain key (secret).
#[pyclass(
    module = "textsecure._native",
    name = "LegacySenderKeyDistributionMessage",
    frozen
)]
pub(crate) struct LegacySenderKeyDistributionMessage {
    pub(crate) inner: group::SenderKeyDistributionMessage,
}

#[pymethods]
impl LegacySenderKeyDistributionMessage {
    /// Reads the WhatsApp-era format; raises ``InvalidMessage`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: group::SenderKeyDistributionMessage::deserialize_legacy(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.serialized())
    }
    /// The message version (3).
    #[getter]
    fn version(&self) -> u8 {
        self.inner.message_version()
    }
    /// The chain id (the legacy format's `id` field).
    #[getter]
    fn chain_id(&self) -> u32 {
        self.inner.chain_id()
    }
    /// The chain iteration the distributed chain key is at.
    #[getter]
    fn iteration(&self) -> u32 {
        self.inner.iteration()
    }
    /// The sender's public signing key.
    #[getter]
    fn signing_key(&self) -> PublicKey {
        PublicKey {
            inner: *self.inner.signing_key(),
        }
    }
    fn __repr__(&self) -> String {
        format!(
            "<LegacySenderKeyDistributionMessage chain_id={} iteration={}>",
            self.inner.chain_id(),
            self.inner.iteration()
        )
    }
}

/// A WhatsApp-era SenderKeyMessage (python-axolotl's type 4; `.type` is SENDERKEY = 7).
#[pyclass(module = "textsecure._native", name = "LegacySenderKeyMessage", frozen)]
pub(crate) struct LegacySenderKeyMessage {
    pub(crate) inner: group::SenderKeyMessage,
}

#[pymethods]
impl LegacySenderKeyMessage {
    /// Reads the WhatsApp-era format; raises ``InvalidMessage`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: group::SenderKeyMessage::deserialize_legacy(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.serialized())
    }
    /// ``MessageType.SENDERKEY`` (7; python-axolotl numbers it 4).
    #[getter]
    fn r#type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        message_type(py, SENDERKEY_TYPE)
    }
    /// The message version (3).
    #[getter]
    fn version(&self) -> u8 {
        self.inner.message_version()
    }
    /// The chain id (the legacy format's `id` field).
    #[getter]
    fn chain_id(&self) -> u32 {
        self.inner.chain_id()
    }
    /// The chain iteration of this message.
    #[getter]
    fn iteration(&self) -> u32 {
        self.inner.iteration()
    }
    fn __repr__(&self) -> String {
        format!(
            "<LegacySenderKeyMessage chain_id={} iteration={} size={}>",
            self.inner.chain_id(),
            self.inner.iteration(),
            self.inner.serialized().len()
        )
    }
}

// ---------------------------------------------------------------------------------------
// Record
// ---------------------------------------------------------------------------------------

/// The sender-key states of one (sender, distribution), in libsignal's storage format.
/// ``bytes()`` CONTAINS THE CHAIN KEYS (and, for your own sender key, the private signing
/// key): a secret (see the Secrets page).
#[pyclass(module = "textsecure._native", name = "SenderKeyRecord", frozen)]
pub(crate) struct SenderKeyRecord {
    pub(crate) inner: group::SenderKeyRecord,
}

#[pymethods]
impl SenderKeyRecord {
    /// Reads libsignal's ``SenderKeyRecordStructure``; raises ``InvalidRecord`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: group::SenderKeyRecord::deserialize(&data).py()?,
        })
    }
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.serialize())
    }
    /// The chain ids of the states, newest first.
    #[getter]
    fn chain_ids(&self) -> Vec<u32> {
        self.inner
            .states()
            .map(group::SenderKeyState::chain_id)
            .collect()
    }
    /// The next iteration of the newest state (None for an empty record).
    #[getter]
    fn iteration(&self) -> Option<u32> {
        self.inner
            .states()
            .next()
            .map(group::SenderKeyState::iteration)
    }
    fn __len__(&self) -> usize {
        self.inner.states().len()
    }
    fn __repr__(&self) -> String {
        format!(
            "<SenderKeyRecord states={} chain_ids={:?}>",
            self.inner.states().len(),
            self.chain_ids()
        )
    }
}

fn pair<'py>(
    item: Bound<'py, PyAny>,
    what: &str,
) -> PyResult<(Bound<'py, Address>, Bound<'py, PyAny>)> {
    crate::uow::pair(item, what)
}

fn current_message(m: &Bound<'_, PyAny>) -> PyResult<group::SenderKeyMessage> {
    m.cast::<SenderKeyMessage>()
        .map(|m| m.get().inner.clone())
        .map_err(|_| PyTypeError::new_err("message must be a SenderKeyMessage"))
}

fn legacy_message(m: &Bound<'_, PyAny>) -> PyResult<group::SenderKeyMessage> {
    if let Ok(m) = m.cast::<LegacySenderKeyMessage>() {
        return Ok(m.get().inner.clone());
    }
    let data: BytesLike<'_> = m
        .extract()
        .map_err(|_| PyTypeError::new_err("message must be a LegacySenderKeyMessage or bytes"))?;
    group::SenderKeyMessage::deserialize_legacy(&data).py()
}

// ---------------------------------------------------------------------------------------
// Ciphers
// ---------------------------------------------------------------------------------------

/// Sender keys in the current (libsignal) format for one distribution id.
#[pyclass(module = "textsecure._native", name = "GroupCipher", frozen)]
pub(crate) struct GroupCipher {
    store: Py<PyAny>,
    key: DistributionKey,
    distribution_id: Py<PyAny>,
}

#[pymethods]
impl GroupCipher {
    #[new]
    fn new(store: &Bound<'_, PyAny>, distribution_id: &Bound<'_, PyAny>) -> PyResult<Self> {
        let id = uuid_arg(distribution_id)?;
        Ok(Self {
            store: crate::uow::check_store(store)?,
            key: DistributionKey::Uuid(id),
            distribution_id: distribution_id.clone().unbind(),
        })
    }

    /// The distribution id (``uuid.UUID``) this cipher's sender keys are named by.
    #[getter]
    fn distribution_id(&self, py: Python<'_>) -> Py<PyAny> {
        self.distribution_id.clone_ref(py)
    }

    /// Our distribution message (creates our sender key on first use).
    fn create_distribution(
        &self,
        py: Python<'_>,
        sender: &Bound<'_, Address>,
    ) -> PyResult<Py<PyAny>> {
        let op = Op::CreateDistribution {
            sender: sender.get().inner.clone(),
            key: self.key.clone(),
        };
        run(py, &self.store, op)
    }

    /// Stores the sender key that `sender` distributed (for this distribution id).
    fn process_distribution(
        &self,
        py: Python<'_>,
        sender: &Bound<'_, Address>,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let m = message
            .cast::<SenderKeyDistributionMessage>()
            .map_err(|_| PyTypeError::new_err("message must be a SenderKeyDistributionMessage"))?;
        let op = Op::ProcessDistribution {
            sender: sender.get().inner.clone(),
            key: self.key.clone(),
            message: m.get().inner.clone(),
        };
        run(py, &self.store, op).map(drop)
    }

    /// Encrypts and signs with our sender key.
    fn encrypt(
        &self,
        py: Python<'_>,
        sender: &Bound<'_, Address>,
        plaintext: BytesLike<'_>,
    ) -> PyResult<Py<PyAny>> {
        let op = Op::GroupEncrypt {
            sender: sender.get().inner.clone(),
            key: self.key.clone(),
            plaintext: plaintext.to_vec(),
        };
        run(py, &self.store, op)
    }

    /// Verifies and decrypts a message from `sender`. On any failure nothing is stored.
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        sender: &Bound<'py, Address>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let m = message
            .cast::<SenderKeyMessage>()
            .map_err(|_| PyTypeError::new_err("message must be a SenderKeyMessage"))?;
        let op = Op::GroupDecrypt {
            sender: sender.get().inner.clone(),
            key: self.key.clone(),
            message: m.get().inner.clone(),
        };
        run(py, &self.store, op)
    }

    /// Encrypts many plaintexts: `items` are (sender Address, plaintext) pairs. One result
    /// per item, in order: the message, or the `textsecure.errors` exception for that item
    /// (which changed nothing). Items of one sender run in order (consecutive iterations).
    fn encrypt_many(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
        let mut ops = Vec::new();
        for item in items.try_iter()? {
            let (sender, p) = pair(item?, "plaintext")?;
            let plaintext: BytesLike<'_> = p.extract()?;
            ops.push(Ok(Op::GroupEncrypt {
                sender: sender.get().inner.clone(),
                key: self.key.clone(),
                plaintext: plaintext.to_vec(),
            }));
        }
        crate::uow::run_many(py, self.store.bind(py), ops)
    }

    /// Decrypts many group messages: `items` are (sender Address, message) pairs. One result
    /// per item, in order: the plaintext, or the `textsecure.errors` exception for that item
    /// (which changed nothing). Different senders are decrypted on every core.
    fn decrypt_many(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
        let mut ops = Vec::new();
        for item in items.try_iter()? {
            let (sender, m) = pair(item?, "message")?;
            ops.push(match current_message(&m) {
                Ok(message) => Ok(Op::GroupDecrypt {
                    sender: sender.get().inner.clone(),
                    key: self.key.clone(),
                    message,
                }),
                Err(e) => Err(crate::uow::item_error(py, e)?),
            });
        }
        crate::uow::run_many(py, self.store.bind(py), ops)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<GroupCipher distribution_id={}>",
            self.distribution_id.bind(py).str()?
        ))
    }
}

/// Sender keys in the WhatsApp-era format, named by a group id string.
#[pyclass(module = "textsecure._native", name = "LegacyGroupCipher", frozen)]
pub(crate) struct LegacyGroupCipher {
    store: Py<PyAny>,
    key: DistributionKey,
    group_id: String,
}

#[pymethods]
impl LegacyGroupCipher {
    #[new]
    fn new(store: &Bound<'_, PyAny>, group_id: String) -> PyResult<Self> {
        Ok(Self {
            store: crate::uow::check_store(store)?,
            key: DistributionKey::GroupId(group_id.clone()),
            group_id,
        })
    }

    /// The group id string this cipher's sender keys are named by.
    #[getter]
    fn group_id(&self) -> &str {
        &self.group_id
    }

    /// Our distribution message (creates our sender key on first use).
    fn create_distribution(
        &self,
        py: Python<'_>,
        sender: &Bound<'_, Address>,
    ) -> PyResult<Py<PyAny>> {
        let op = Op::CreateDistribution {
            sender: sender.get().inner.clone(),
            key: self.key.clone(),
        };
        run(py, &self.store, op)
    }

    /// Stores the sender key that `sender` distributed; takes a
    /// LegacySenderKeyDistributionMessage or its bytes.
    fn process_distribution(
        &self,
        py: Python<'_>,
        sender: &Bound<'_, Address>,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let parsed;
        let m = match message.cast::<LegacySenderKeyDistributionMessage>() {
            Ok(m) => &m.get().inner,
            Err(_) => {
                let data: BytesLike<'_> = message.extract().map_err(|_| {
                    PyTypeError::new_err(
                        "message must be a LegacySenderKeyDistributionMessage or bytes",
                    )
                })?;
                parsed = group::SenderKeyDistributionMessage::deserialize_legacy(&data).py()?;
                &parsed
            }
        };
        let op = Op::ProcessDistribution {
            sender: sender.get().inner.clone(),
            key: self.key.clone(),
            message: m.clone(),
        };
        run(py, &self.store, op).map(drop)
    }

    /// Encrypts and signs with our sender key.
    fn encrypt(
        &self,
        py: Python<'_>,
        sender: &Bound<'_, Address>,
        plaintext: BytesLike<'_>,
    ) -> PyResult<Py<PyAny>> {
        let op = Op::GroupEncrypt {
            sender: sender.get().inner.clone(),
            key: self.key.clone(),
            plaintext: plaintext.to_vec(),
        };
        run(py, &self.store, op)
    }

    /// Verifies and decrypts a LegacySenderKeyMessage (or its bytes) from `sender`.
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        sender: &Bound<'py, Address>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let parsed;
        let m = match message.cast::<LegacySenderKeyMessage>() {
            Ok(m) => &m.get().inner,
            Err(_) => {
                let data: BytesLike<'_> = message.extract().map_err(|_| {
                    PyTypeError::new_err("message must be a LegacySenderKeyMessage or bytes")
                })?;
                parsed = group::SenderKeyMessage::deserialize_legacy(&data).py()?;
                &parsed
            }
        };
        let op = Op::GroupDecrypt {
            sender: sender.get().inner.clone(),
            key: self.key.clone(),
            message: m.clone(),
        };
        run(py, &self.store, op)
    }

    /// Encrypts many plaintexts: `items` are (sender Address, plaintext) pairs. One result
    /// per item, in order: the message, or the `textsecure.errors` exception for that item
    /// (which changed nothing). Items of one sender run in order (consecutive iterations).
    fn encrypt_many(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
        let mut ops = Vec::new();
        for item in items.try_iter()? {
            let (sender, p) = pair(item?, "plaintext")?;
            let plaintext: BytesLike<'_> = p.extract()?;
            ops.push(Ok(Op::GroupEncrypt {
                sender: sender.get().inner.clone(),
                key: self.key.clone(),
                plaintext: plaintext.to_vec(),
            }));
        }
        crate::uow::run_many(py, self.store.bind(py), ops)
    }

    /// Decrypts many group messages: `items` are (sender Address, message) pairs. One result
    /// per item, in order: the plaintext, or the `textsecure.errors` exception for that item
    /// (which changed nothing). Different senders are decrypted on every core.
    fn decrypt_many(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
        let mut ops = Vec::new();
        for item in items.try_iter()? {
            let (sender, m) = pair(item?, "message")?;
            ops.push(match legacy_message(&m) {
                Ok(message) => Ok(Op::GroupDecrypt {
                    sender: sender.get().inner.clone(),
                    key: self.key.clone(),
                    message,
                }),
                Err(e) => Err(crate::uow::item_error(py, e)?),
            });
        }
        crate::uow::run_many(py, self.store.bind(py), ops)
    }

    fn __repr__(&self) -> String {
        format!("<LegacyGroupCipher group_id={:?}>", self.group_id)
    }
}

// ---------------------------------------------------------------------------------------
// Fan-out
// ---------------------------------------------------------------------------------------

/// Encrypts `plaintext` to each address over its 1:1 session. Returns a dict from address
/// to the message, or to the `textsecure.errors` exception for that address (the loop never
/// stops at a failure; a failed address keeps its session unchanged). Repeated addresses
/// are encrypted to once.
#[pyfunction]
pub(crate) fn encrypt_fanout<'py>(
    py: Python<'py>,
    store: &Bound<'py, PyAny>,
    addresses: &Bound<'py, PyAny>,
    plaintext: BytesLike<'_>,
) -> PyResult<Bound<'py, PyDict>> {
    let store = crate::uow::check_store(store)?;
    // Check every argument before the first encryption, so a TypeError changes nothing.
    let mut targets: Vec<Bound<'py, Address>> = Vec::new();
    for item in addresses.try_iter()? {
        let item = item?;
        let addr = item
            .cast_into::<Address>()
            .map_err(|_| PyTypeError::new_err("addresses must be textsecure Address objects"))?;
        targets.push(addr);
    }
    let op = Op::Fanout {
        remotes: targets.iter().map(|a| a.get().inner.clone()).collect(),
        plaintext: plaintext.to_vec(),
        options: Default::default(),
    };
    // The operation canonicalises and de-duplicates; results come back per canonical address.
    let canonical: Vec<_> = match op.clone().canonicalize() {
        Op::Fanout { remotes, .. } => remotes,
        _ => Vec::new(),
    };
    let results = run(py, &store, op)?;
    let results = results.bind(py);
    let out = PyDict::new(py);
    for addr in targets {
        if out.contains(&addr)? {
            continue;
        }
        let c = addr.get().inner.canonical();
        let Some(i) = canonical.iter().position(|x| *x == c) else {
            continue;
        };
        out.set_item(&addr, results.get_item(i)?)?;
    }
    Ok(out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SenderKeyDistributionMessage>()?;
    m.add_class::<SenderKeyMessage>()?;
    m.add_class::<LegacySenderKeyDistributionMessage>()?;
    m.add_class::<LegacySenderKeyMessage>()?;
    m.add_class::<SenderKeyRecord>()?;
    m.add_class::<GroupCipher>()?;
    m.add_class::<LegacyGroupCipher>()?;
    m.add_function(wrap_pyfunction!(encrypt_fanout, m)?)?;
    Ok(())
}
