//! Sealed sender: certificates, the sealed content (USMC), v1 / v2 encryption and decryption,
//! and `SealedSessionCipher` over a `MemoryStore`.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyType};

use textsecure_core::curve;
use textsecure_core::sealed_sender as ss;
use textsecure_core::Error;

use crate::convert::{message_type, BytesLike, Int};
use crate::errors::{to_py, CoreResultExt};
use crate::keys::{
    new_identity_key, private_key_arg, public_key_arg, IdentityKey, IdentityKeyPair, PublicKey,
};
use crate::store::Address;

static CONTENT_HINT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `textsecure.enums.ContentHint(value)`, or the plain int for a value it does not name.
fn content_hint_obj(py: Python<'_>, value: u32) -> PyResult<Py<PyAny>> {
    let cls = CONTENT_HINT.import(py, "textsecure.enums", "ContentHint")?;
    match cls.call1((value,)) {
        Ok(v) => Ok(v.unbind()),
        Err(_) => Ok(value.into_pyobject(py)?.into_any().unbind()),
    }
}

fn opt_bytes<'py>(py: Python<'py>, b: Option<&[u8]>) -> Option<Bound<'py, PyBytes>> {
    b.map(|b| PyBytes::new(py, b))
}

/// A trust root argument: one public key or a sequence of them.
fn trust_roots_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<curve::PublicKey>> {
    if let Ok(k) = public_key_arg(obj) {
        return Ok(vec![k]);
    }
    let mut out = Vec::new();
    let iter = obj
        .try_iter()
        .map_err(|_| PyTypeError::new_err("trust_root must be a PublicKey or a list of them"))?;
    for item in iter {
        out.push(public_key_arg(&item?)?);
    }
    if out.is_empty() {
        return Err(to_py(Error::InvalidArgument(
            "at least one trust root is needed",
        )));
    }
    Ok(out)
}

fn server_certs_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<ss::ServerCertificate>> {
    let Some(obj) = obj else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let c = item.cast::<ServerCertificate>().map_err(|_| {
            PyTypeError::new_err("server_certificates must hold ServerCertificates")
        })?;
        out.push(c.get().inner.clone());
    }
    Ok(out)
}

/// Runs `f` on a rayon pool of `threads` threads (the global pool when `None`).
/// The largest `threads=` accepted (a caller passing more has a bug; see `with_threads`).
const MAX_THREADS: usize = 1024;

fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    match threads {
        None => Ok(f()),
        Some(0) => Err(to_py(Error::InvalidArgument("threads must be at least 1"))),
        Some(n) if n > MAX_THREADS => Err(to_py(Error::InvalidArgument(
            "threads must be at most 1024",
        ))),
        Some(n) => {
            // More threads than CPUs only adds context switches: the pool never exceeds them.
            let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n.min(cpus))
                .build()
                .map_err(|_| to_py(Error::InvalidArgument("cannot start the thread pool")))?;
            Ok(pool.install(f))
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// A server certificate: a server key signed by a trust root. ``validate`` raises
/// ``InvalidCertificate``; it never returns False.
#[pyclass(module = "textsecure._native", name = "ServerCertificate", frozen)]
#[derive(Clone)]
pub(crate) struct ServerCertificate {
    inner: ss::ServerCertificate,
}

#[pymethods]
impl ServerCertificate {
    /// Creates a server certificate for `key`, signed by the trust root's private key.
    #[staticmethod]
    fn create(
        key_id: Int<u32>,
        key: &Bound<'_, PyAny>,
        trust_root: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let key_id = key_id.0;
        let key = public_key_arg(key)?;
        let root = private_key_arg(trust_root)?;
        Ok(Self {
            inner: ss::ServerCertificate::new(key_id, &key, &root).py()?,
        })
    }

    /// Reads the serialized certificate; raises ``InvalidCertificate`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: ss::ServerCertificate::deserialize(&data).py()?,
        })
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.serialized())
    }

    /// The key id (``0xDEADC357`` is revoked).
    #[getter]
    fn key_id(&self) -> u32 {
        self.inner.key_id()
    }

    /// The server's public key.
    #[getter]
    fn key(&self) -> PublicKey {
        PublicKey {
            inner: *self.inner.key(),
        }
    }

    /// The signed part (serialized).
    #[getter]
    fn certificate<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.certificate())
    }

    /// The trust root's signature over ``certificate``.
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.signature())
    }

    /// Raises `InvalidCertificate` unless a trust root signed it and its id is not revoked.
    fn validate(&self, trust_root: &Bound<'_, PyAny>) -> PyResult<()> {
        let roots = trust_roots_arg(trust_root)?;
        self.inner.validate_with_trust_roots(&roots).py()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<ServerCertificate>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        format!("<ServerCertificate key_id={:#x}>", self.inner.key_id())
    }
}

/// A sealed-sender certificate: the sender's ids and identity key, an expiration, signed by a
/// server certificate. ``validate`` raises ``InvalidCertificate``; it never returns False.
#[pyclass(module = "textsecure._native", name = "SenderCertificate", frozen)]
#[derive(Clone)]
pub(crate) struct SenderCertificate {
    inner: ss::SenderCertificate,
}

#[pymethods]
impl SenderCertificate {
    /// Creates a sender certificate signed by `server_key` (whose certificate is embedded).
    #[staticmethod]
    #[pyo3(signature = (*, sender_uuid, sender_device_id, identity_key, expiration, server_certificate, server_key, sender_e164 = None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        sender_uuid: &str,
        sender_device_id: Int<u32>,
        identity_key: &Bound<'_, PyAny>,
        expiration: Int<u64>,
        server_certificate: &Bound<'_, ServerCertificate>,
        server_key: &Bound<'_, PyAny>,
        sender_e164: Option<&str>,
    ) -> PyResult<Self> {
        let sender_device_id = sender_device_id.0;
        let expiration = expiration.0;
        let key = public_key_arg(identity_key)?;
        let server_key = private_key_arg(server_key)?;
        let inner = ss::SenderCertificate::new(
            ss::SenderCertificateParts {
                sender_uuid,
                sender_e164,
                sender_device_id,
                identity_key: &key,
                expiration,
            },
            &server_certificate.get().inner,
            &server_key,
        )
        .py()?;
        Ok(Self { inner })
    }

    /// Reads the serialized certificate; raises ``InvalidCertificate`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: ss::SenderCertificate::deserialize(&data).py()?,
        })
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.serialized())
    }

    /// The sender's ACI.
    #[getter]
    fn sender_uuid(&self) -> &str {
        self.inner.sender_uuid()
    }

    /// The sender's phone number, or None.
    #[getter]
    fn sender_e164(&self) -> Option<&str> {
        self.inner.sender_e164()
    }

    /// The sender's device id.
    #[getter]
    fn sender_device_id(&self) -> u32 {
        self.inner.sender_device_id()
    }

    /// `Address(sender_uuid, sender_device_id)`.
    #[getter]
    fn sender_address(&self) -> Address {
        Address {
            inner: self.inner.sender_address(),
        }
    }

    /// The sender's identity key.
    #[getter]
    fn identity_key(&self, py: Python<'_>) -> PyResult<Py<IdentityKey>> {
        new_identity_key(py, *self.inner.key())
    }

    /// Expiry in milliseconds since 1970 (valid up to and including it).
    #[getter]
    fn expiration(&self) -> u64 {
        self.inner.expiration()
    }

    /// The embedded server certificate (None when the certificate names one by id).
    #[getter]
    fn server_certificate(&self) -> Option<ServerCertificate> {
        self.inner
            .server_certificate()
            .map(|c| ServerCertificate { inner: c.clone() })
    }

    /// The id of the server certificate that signed it.
    #[getter]
    fn server_certificate_id(&self) -> u32 {
        match self.inner.signer() {
            ss::CertificateSigner::Embedded(c) => c.key_id(),
            ss::CertificateSigner::Reference(id) => *id,
        }
    }

    /// The signed part (serialized).
    #[getter]
    fn certificate<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.certificate())
    }

    /// The server certificate key's signature over ``certificate``.
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.signature())
    }

    /// Raises `InvalidCertificate` unless the certificate chains to `trust_root` (one key or
    /// a list) and has not expired at `timestamp` (ms).
    #[pyo3(signature = (trust_root, timestamp, *, server_certificates = None))]
    fn validate(
        &self,
        trust_root: &Bound<'_, PyAny>,
        timestamp: Int<u64>,
        server_certificates: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let timestamp = timestamp.0;
        let roots = trust_roots_arg(trust_root)?;
        let known = server_certs_arg(server_certificates)?;
        self.inner.validate_with(&roots, timestamp, &known).py()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<SenderCertificate>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "<SenderCertificate {}.{} expiration={}>",
            self.inner.sender_uuid(),
            self.inner.sender_device_id(),
            self.inner.expiration()
        )
    }
}

/// What sealed sender encrypts ("USMC"): the inner message's type and bytes, the sender
/// certificate, a content hint and an optional group id.
#[pyclass(
    module = "textsecure._native",
    name = "UnidentifiedSenderMessageContent",
    frozen
)]
pub(crate) struct UnidentifiedSenderMessageContent {
    pub(crate) inner: ss::UnidentifiedSenderMessageContent,
}

#[pymethods]
impl UnidentifiedSenderMessageContent {
    #[new]
    #[pyo3(
        signature = (message_type, sender_certificate, contents, *, content_hint = Int(0), group_id = None),
        text_signature = "(message_type, sender_certificate, contents, *, content_hint=0, group_id=None)"
    )]
    fn new(
        message_type: Int<u8>,
        sender_certificate: &Bound<'_, SenderCertificate>,
        contents: BytesLike<'_>,
        content_hint: Int<u32>,
        group_id: Option<BytesLike<'_>>,
    ) -> PyResult<Self> {
        let message_type = message_type.0;
        let content_hint = content_hint.0;
        Ok(Self {
            inner: ss::UnidentifiedSenderMessageContent::new(
                message_type,
                sender_certificate.get().inner.clone(),
                contents.to_vec(),
                content_hint,
                group_id.map(|g| g.to_vec()),
            )
            .py()?,
        })
    }

    /// Reads the serialized content; raises ``InvalidMessage`` on bad input.
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: ss::UnidentifiedSenderMessageContent::deserialize(&data).py()?,
        })
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.serialized())
    }

    /// The inner message's `MessageType`.
    #[getter]
    fn message_type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        message_type(py, self.inner.msg_type())
    }

    /// The sender certificate (not validated here).
    #[getter]
    fn sender_certificate(&self) -> SenderCertificate {
        SenderCertificate {
            inner: self.inner.sender().clone(),
        }
    }

    /// The sender's address from the certificate.
    #[getter]
    fn sender(&self) -> Address {
        Address {
            inner: self.inner.sender().sender_address(),
        }
    }

    /// The inner message bytes.
    #[getter]
    fn contents<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.contents())
    }

    /// The content hint (``ContentHint``, or an int for an unknown value).
    #[getter]
    fn content_hint(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        content_hint_obj(py, self.inner.content_hint())
    }

    /// The group id, or None.
    #[getter]
    fn group_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.inner.group_id())
    }

    fn __repr__(&self) -> String {
        format!(
            "<UnidentifiedSenderMessageContent type={} from={} size={}>",
            self.inner.msg_type(),
            self.inner.sender().sender_address(),
            self.inner.contents().len()
        )
    }
}

// ---------------------------------------------------------------------------------------------

/// The Python result of a sealed-sender decryption.
pub(crate) fn sealed_result(
    py: Python<'_>,
    usmc: ss::UnidentifiedSenderMessageContent,
    plaintext: &[u8],
) -> PyResult<Py<PyAny>> {
    Ok(Py::new(
        py,
        SealedSenderResult {
            content: Py::new(py, UnidentifiedSenderMessageContent { inner: usmc })?,
            plaintext: PyBytes::new(py, plaintext).unbind(),
        },
    )?
    .into_any())
}

/// What ``SealedSessionCipher.decrypt`` returns: the validated sender and the decrypted plaintext
/// (a secret of the conversation).
#[pyclass(module = "textsecure._native", name = "SealedSenderResult", frozen)]
pub(crate) struct SealedSenderResult {
    content: Py<UnidentifiedSenderMessageContent>,
    plaintext: Py<PyBytes>,
}

#[pymethods]
impl SealedSenderResult {
    /// The sender's address (uuid, device) from the validated certificate.
    #[getter]
    fn sender(&self) -> Address {
        Address {
            inner: self.content.get().inner.sender().sender_address(),
        }
    }
    /// The sender's ACI (from the validated certificate).
    #[getter]
    fn sender_uuid(&self) -> String {
        self.content.get().inner.sender().sender_uuid().to_owned()
    }
    /// The sender's phone number, or None.
    #[getter]
    fn sender_e164(&self) -> Option<String> {
        self.content
            .get()
            .inner
            .sender()
            .sender_e164()
            .map(str::to_owned)
    }
    /// The sender's device id.
    #[getter]
    fn device_id(&self) -> u32 {
        self.content.get().inner.sender().sender_device_id()
    }
    /// The inner message's type.
    #[getter]
    fn message_type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        message_type(py, self.content.get().inner.msg_type())
    }
    /// The content hint (``ContentHint``, or an int for an unknown value).
    #[getter]
    fn content_hint(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        content_hint_obj(py, self.content.get().inner.content_hint())
    }
    /// The group id, or None.
    #[getter]
    fn group_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        opt_bytes(py, self.content.get().inner.group_id())
    }
    /// The decrypted inner message.
    #[getter]
    fn plaintext(&self, py: Python<'_>) -> Py<PyBytes> {
        self.plaintext.clone_ref(py)
    }
    /// The sealed content (USMC).
    #[getter]
    fn content(&self, py: Python<'_>) -> Py<UnidentifiedSenderMessageContent> {
        self.content.clone_ref(py)
    }
    fn __repr__(&self) -> String {
        let c = &self.content.get().inner;
        format!(
            "<SealedSenderResult from={} type={}>",
            c.sender().sender_address(),
            c.msg_type()
        )
    }
}

/// A sealed sender v2 message in its sent form, as a server reads it: the recipients and, per
/// recipient, the received form to deliver.
#[pyclass(
    module = "textsecure._native",
    name = "SealedSenderMultiRecipientMessage",
    frozen
)]
pub(crate) struct SealedSenderMultiRecipientMessage {
    inner: ss::SentMessage,
}

#[pymethods]
impl SealedSenderMultiRecipientMessage {
    /// Parses a v2 sent message (what a server receives and fans out).
    #[staticmethod]
    fn from_bytes(data: BytesLike<'_>) -> PyResult<Self> {
        Ok(Self {
            inner: ss::SentMessage::parse(&data).py()?,
        })
    }

    /// The version byte (``0x22`` or ``0x23``).
    #[getter]
    fn version(&self) -> u8 {
        self.inner.version
    }

    /// `{service_id: [(device_id, registration_id), ...]}` for every included recipient.
    #[getter]
    fn recipients<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for r in self
            .inner
            .recipients
            .iter()
            .filter(|r| !r.devices.is_empty())
        {
            let devs: Vec<(u32, u32)> = r
                .devices
                .iter()
                .map(|d| (d.device_id, d.registration_id))
                .collect();
            d.set_item(&r.service_id, PyList::new(py, devs)?)?;
        }
        Ok(d)
    }

    /// The service ids listed as deliberately excluded.
    #[getter]
    fn excluded_recipients(&self) -> Vec<String> {
        self.inner
            .recipients
            .iter()
            .filter(|r| r.devices.is_empty())
            .map(|r| r.service_id.clone())
            .collect()
    }

    /// The received form for one recipient (the same for all its devices).
    fn message_for_recipient<'py>(
        &self,
        py: Python<'py>,
        service_id: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.inner.received_message_for(service_id).py()?;
        Ok(PyBytes::new(py, &b))
    }

    fn __repr__(&self) -> String {
        format!(
            "<SealedSenderMultiRecipientMessage version={:#x} recipients={}>",
            self.inner.version,
            self.inner.recipients.len()
        )
    }
}

// ---------------------------------------------------------------------------------------------

/// Seals `content` for one recipient (sealed sender v1).
#[pyfunction]
#[pyo3(signature = (content, *, sender, recipient))]
fn sealed_sender_encrypt<'py>(
    py: Python<'py>,
    content: &Bound<'py, UnidentifiedSenderMessageContent>,
    sender: &Bound<'py, IdentityKeyPair>,
    recipient: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let recipient = public_key_arg(recipient)?;
    let out = ss::encrypt_v1(&content.get().inner, &sender.get().inner, &recipient).py()?;
    Ok(PyBytes::new(py, &out))
}

type RecipientArg<'py> = (String, Bound<'py, PyAny>, Vec<(u32, u32)>);

fn multi_recipients(recipients: Vec<RecipientArg<'_>>) -> PyResult<Vec<ss::MultiRecipient>> {
    recipients
        .into_iter()
        .map(|(service_id, key, devices)| {
            Ok(ss::MultiRecipient {
                service_id,
                identity_key: public_key_arg(&key)?,
                devices: devices
                    .into_iter()
                    .map(|(device_id, registration_id)| ss::RecipientDevice {
                        device_id,
                        registration_id,
                    })
                    .collect(),
            })
        })
        .collect()
}

/// Seals `content` once for many recipients (sealed sender v2, the sent form). Each recipient
/// is `(service_id, identity_key, [(device_id, registration_id), ...])`.
#[pyfunction]
#[pyo3(signature = (content, recipients, *, sender, excluded = Vec::new(), threads = None))]
fn sealed_sender_multi_recipient_encrypt<'py>(
    py: Python<'py>,
    content: &Bound<'py, UnidentifiedSenderMessageContent>,
    recipients: Vec<RecipientArg<'py>>,
    sender: &Bound<'py, IdentityKeyPair>,
    excluded: Vec<String>,
    threads: Option<Int<usize>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let threads = threads.map(|v| v.0);
    let recipients = multi_recipients(recipients)?;
    let usmc = &content.get().inner;
    let sender = &sender.get().inner;
    let out = py
        .detach(|| {
            with_threads(threads, || {
                ss::encrypt_v2(usmc, sender, &recipients, &excluded)
            })
        })?
        .py()?;
    Ok(PyBytes::new(py, &out))
}

/// Opens a sealed message (v1 or v2 received form) without validating its certificate.
#[pyfunction]
fn sealed_sender_decrypt_to_usmc(
    data: BytesLike<'_>,
    identity: &Bound<'_, IdentityKeyPair>,
) -> PyResult<UnidentifiedSenderMessageContent> {
    Ok(UnidentifiedSenderMessageContent {
        inner: ss::decrypt_to_usmc(&data, &identity.get().inner).py()?,
    })
}

/// The received form of a v2 sent message that has exactly one recipient.
#[pyfunction]
fn sealed_sender_multi_recipient_message_for_single_recipient<'py>(
    py: Python<'py>,
    data: BytesLike<'_>,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = ss::SentMessage::received_message_for_single_recipient(&data).py()?;
    Ok(PyBytes::new(py, &out))
}

// ---------------------------------------------------------------------------------------------

/// Sealed sender v1 and v2 over a store's 1:1 sessions: ``encrypt`` / ``seal`` /
/// ``multi_recipient_encrypt`` hide the sender; ``decrypt`` / ``unseal`` validate the sender
/// certificate (raising ``InvalidCertificate``) before anything is decrypted.
#[pyclass(module = "textsecure._native", name = "SealedSessionCipher", frozen)]
pub(crate) struct SealedSessionCipher {
    store: Py<PyAny>,
    options: textsecure_core::session::SessionOptions,
}

struct UnsealArgs {
    roots: Vec<curve::PublicKey>,
    timestamp: u64,
    known: Vec<ss::ServerCertificate>,
    local: Option<textsecure_core::store::Address>,
}

impl UnsealArgs {
    fn parse(
        trust_root: &Bound<'_, PyAny>,
        timestamp: u64,
        local_address: Option<&Bound<'_, Address>>,
        server_certificates: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Self {
            roots: trust_roots_arg(trust_root)?,
            timestamp,
            known: server_certs_arg(server_certificates)?,
            local: local_address.map(|a| a.get().inner.clone()),
        })
    }
    fn options(&self) -> ss::UnsealOptions<'_> {
        ss::UnsealOptions {
            trust_roots: &self.roots,
            timestamp: self.timestamp,
            known_servers: &self.known,
            local_address: self.local.as_ref(),
        }
    }
}

#[pymethods]
impl SealedSessionCipher {
    /// `pq_ratchet` and `local_address` are the session options of the 1:1 sessions under
    /// the seal, as for `SessionCipher`.
    #[new]
    #[pyo3(signature = (store, *, pq_ratchet = None, local_address = None))]
    fn new(
        store: &Bound<'_, PyAny>,
        pq_ratchet: Option<&Bound<'_, PyAny>>,
        local_address: Option<&Bound<'_, Address>>,
    ) -> PyResult<Self> {
        Ok(Self {
            store: crate::uow::check_store(store)?,
            options: textsecure_core::session::SessionOptions {
                local_address: local_address.map(|a| a.get().inner.clone()),
                pq_ratchet: crate::cipher::pq_policy(pq_ratchet)?,
            },
        })
    }

    /// Encrypts with the 1:1 session to `remote`, then seals (v1) with `sender_certificate`.
    #[pyo3(
        signature = (remote, plaintext, sender_certificate, *, content_hint = Int(0), group_id = None),
        text_signature = "($self, remote, plaintext, sender_certificate, *, content_hint=0, group_id=None)"
    )]
    fn encrypt<'py>(
        &self,
        py: Python<'py>,
        remote: &Bound<'py, Address>,
        plaintext: BytesLike<'_>,
        sender_certificate: &Bound<'py, SenderCertificate>,
        content_hint: Int<u32>,
        group_id: Option<BytesLike<'_>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let op = textsecure_core::uow::Operation::SealedEncrypt {
            remote: remote.get().inner.clone(),
            certificate: sender_certificate.get().inner.clone(),
            plaintext: plaintext.to_vec(),
            content_hint: content_hint.0,
            group_id: group_id.map(|g| g.to_vec()),
            options: self.options.clone(),
        };
        Ok(crate::uow::execute(py, self.store.bind(py), op)?
            .into_bound(py)
            .cast_into::<PyBytes>()?)
    }

    /// Seals an already built content for `remote` (v1); its identity comes from the store.
    fn seal<'py>(
        &self,
        py: Python<'py>,
        remote: &Bound<'py, Address>,
        content: &Bound<'py, UnidentifiedSenderMessageContent>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let store = self.store.bind(py);
        let their = crate::uow::store_identity(store, &remote.get().inner)?
            .ok_or_else(|| to_py(Error::NoSession("no identity stored for this address")))?;
        let ours = crate::uow::store_identity_key_pair(store)?;
        let out = ss::encrypt_v1(&content.get().inner, &ours, &their).py()?;
        Ok(PyBytes::new(py, &out))
    }

    /// Seals `content` once for all `recipients` (v2 sent form). Consecutive addresses with the
    /// same name are one recipient (its devices); names must be service ids. Identity keys and
    /// registration ids come from the store's identities and sessions.
    #[pyo3(signature = (recipients, content, *, excluded = Vec::new(), threads = None))]
    fn multi_recipient_encrypt<'py>(
        &self,
        py: Python<'py>,
        recipients: Vec<Bound<'py, Address>>,
        content: &Bound<'py, UnidentifiedSenderMessageContent>,
        excluded: Vec<String>,
        threads: Option<Int<usize>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let threads = threads.map(|v| v.0);
        let (list, identity) = {
            let store = self.store.bind(py);
            let mut list: Vec<ss::MultiRecipient> = Vec::new();
            for a in &recipients {
                let addr = &a.get().inner.canonical();
                let registration_id = crate::uow::store_remote_registration_id(store, addr)?
                    .ok_or_else(|| to_py(Error::NoSession("no session with a recipient")))?;
                let device = ss::RecipientDevice {
                    device_id: addr.device_id,
                    registration_id,
                };
                match list.last_mut() {
                    Some(last) if last.service_id == addr.name => last.devices.push(device),
                    _ => {
                        let key = crate::uow::store_identity(store, addr)?.ok_or_else(|| {
                            to_py(Error::NoSession("no identity stored for a recipient"))
                        })?;
                        list.push(ss::MultiRecipient {
                            service_id: addr.name.clone(),
                            identity_key: key,
                            devices: vec![device],
                        });
                    }
                }
            }
            (list, crate::uow::store_identity_key_pair(store)?)
        };
        let usmc = &content.get().inner;
        let out = py
            .detach(|| {
                with_threads(threads, || {
                    ss::encrypt_v2(usmc, &identity, &list, &excluded)
                })
            })?
            .py()?;
        Ok(PyBytes::new(py, &out))
    }

    /// Opens a sealed message without validating its certificate.
    fn decrypt_to_usmc(
        &self,
        py: Python<'_>,
        data: BytesLike<'_>,
    ) -> PyResult<UnidentifiedSenderMessageContent> {
        let ours = crate::uow::store_identity_key_pair(self.store.bind(py))?;
        Ok(UnidentifiedSenderMessageContent {
            inner: ss::decrypt_to_usmc(&data, &ours).py()?,
        })
    }

    /// Opens a sealed message and validates its certificate (any inner message type).
    #[pyo3(signature = (data, *, trust_root, timestamp, local_address = None, server_certificates = None))]
    fn unseal(
        &self,
        py: Python<'_>,
        data: BytesLike<'_>,
        trust_root: &Bound<'_, PyAny>,
        timestamp: Int<u64>,
        local_address: Option<&Bound<'_, Address>>,
        server_certificates: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<UnidentifiedSenderMessageContent> {
        let timestamp = timestamp.0;
        let args = UnsealArgs::parse(trust_root, timestamp, local_address, server_certificates)?;
        let ours = crate::uow::store_identity_key_pair(self.store.bind(py))?;
        Ok(UnidentifiedSenderMessageContent {
            inner: ss::unseal(&data, &ours, &args.options()).py()?,
        })
    }

    /// Unseals, validates the certificate, then decrypts the inner 1:1 message from the
    /// certificate's sender. Nothing is stored unless everything succeeds.
    #[pyo3(signature = (data, *, trust_root, timestamp, local_address = None, server_certificates = None))]
    fn decrypt(
        &self,
        py: Python<'_>,
        data: BytesLike<'_>,
        trust_root: &Bound<'_, PyAny>,
        timestamp: Int<u64>,
        local_address: Option<&Bound<'_, Address>>,
        server_certificates: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<SealedSenderResult>> {
        let timestamp = timestamp.0;
        let args = UnsealArgs::parse(trust_root, timestamp, local_address, server_certificates)?;
        let ours = crate::uow::store_identity_key_pair(self.store.bind(py))?;
        let usmc = ss::unseal(&data, &ours, &args.options()).py()?;
        let mut options = self.options.clone();
        if args.local.is_some() {
            options.local_address = args.local.clone();
        }
        let op = textsecure_core::uow::Operation::SealedDecrypt { usmc, options };
        Ok(crate::uow::execute(py, self.store.bind(py), op)?
            .into_bound(py)
            .cast_into::<SealedSenderResult>()?
            .unbind())
    }

    fn __repr__(&self) -> String {
        "<SealedSessionCipher>".to_owned()
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ServerCertificate>()?;
    m.add_class::<SenderCertificate>()?;
    m.add_class::<UnidentifiedSenderMessageContent>()?;
    m.add_class::<SealedSenderResult>()?;
    m.add_class::<SealedSenderMultiRecipientMessage>()?;
    m.add_class::<SealedSessionCipher>()?;
    m.add_function(wrap_pyfunction!(sealed_sender_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(sealed_sender_multi_recipient_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(sealed_sender_decrypt_to_usmc, m)?)?;
    m.add_function(wrap_pyfunction!(
        sealed_sender_multi_recipient_message_for_single_recipient,
        m
    )?)?;
    Ok(())
}
