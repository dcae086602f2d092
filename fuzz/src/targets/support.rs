//! Shared by every target: an input reader, a deterministic RNG, fixed parties whose keys never
//! change (so committed corpora keep decrypting), and a byte-exact snapshot of a store.
//!
//! Only `textsecure_core` and the core's own dependencies are used here, so this directory can
//! be compiled both by the fuzz crate and, through `#[path]`, by the core's integration tests
//! (`rust/textsecure-core/tests/fuzz_corpus.rs`, `conversation_fuzz.rs`).

use std::fmt;
use std::sync::OnceLock;

use rand_core::{CryptoRng, RngCore};
use textsecure_core::curve::{KeyPair, PrivateKey, PublicKey};
use textsecure_core::group::{
    self, DistributionKey, SenderKeyDistributionMessage, SenderKeyMessage, SenderKeyRecord,
};
use textsecure_core::kem;
use textsecure_core::prekey::{
    IdentityKeyPair, KyberBundlePart, KyberPreKeyRecord, PreKeyBundle, PreKeyRecord,
    SignedPreKeyRecord,
};
use textsecure_core::sealed_sender::{
    SenderCertificate, SenderCertificateParts, ServerCertificate,
    REVOKED_SERVER_CERTIFICATE_KEY_IDS,
};
use textsecure_core::spqr;
use textsecure_core::state::SessionRecord;
use textsecure_core::store::{Address, InMemoryStore};

use super::vector_bobs;

/// Reads structured values from fuzz input; past the end every read yields zeros / empty.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }
    /// True when everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// One byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    /// Little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    /// Little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// Little-endian u64.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    /// A field: u16 little-endian length, then that many bytes (fewer at the end).
    pub fn field(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.bytes(n)
    }
    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}

/// Appends a field in [`Input::field`]'s format (for building seeds).
pub fn put_field(out: &mut Vec<u8>, data: &[u8]) {
    let n = u16::try_from(data.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&data[..usize::from(n)]);
}

/// SplitMix64: a tiny deterministic RNG (for deterministic signatures and the seedable runner).
/// Not a cryptographic RNG; the `CryptoRng` marker only lets tests pass it to signing.
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 bits.
    pub fn next_word(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl RngCore for SplitMix {
    fn next_u32(&mut self) -> u32 {
        (self.next_word() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.next_word()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_word().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for SplitMix {}

/// A private key from a label (deterministic).
pub fn fixed_private(label: u64) -> PrivateKey {
    PrivateKey::generate_with(&mut SplitMix(label))
}

/// A deterministic XEdDSA signature.
pub fn fixed_sign(key: &PrivateKey, message: &[u8]) -> Vec<u8> {
    key.sign_multipart_with(&[message], &mut SplitMix(0x5167))
        .to_vec()
}

/// Alice's address, as Bob sees her.
pub fn alice_address() -> Address {
    Address::new("alice", 1)
}

/// Bob's address, as Alice sees him.
pub fn bob_address() -> Address {
    Address::new("bob", 1)
}

/// Ids of the fixed Bob's prekeys.
pub const FIXED_PREKEY_ID: u32 = 11;
/// Signed prekey id of the fixed Bob.
pub const FIXED_SIGNED_ID: u32 = 12;
/// Kyber prekey id of the fixed Bob.
pub const FIXED_KYBER_ID: u32 = 13;

/// A Bob with fixed keys and the public bundle Alice would fetch (with a one-time prekey and a
/// Kyber prekey; drop parts of it for X3DH or no one-time key).
pub struct FixedBob {
    /// Bob's store: identity, one-time, signed and Kyber (one-time) prekeys, no sessions.
    pub store: InMemoryStore,
    /// Bob's full public bundle.
    pub bundle: PreKeyBundle,
}

fn build_fixed_bob() -> FixedBob {
    let identity = IdentityKeyPair::from_private(fixed_private(0xb0b));
    let mut store = InMemoryStore::new(identity.clone(), 4242);
    let otk = PreKeyRecord::new(FIXED_PREKEY_ID, fixed_private(0xb0b1));
    let spk_pair = KeyPair::from_private(fixed_private(0xb0b2));
    let spk = SignedPreKeyRecord {
        id: FIXED_SIGNED_ID,
        signature: fixed_sign(&identity.private_key, &spk_pair.public_key.serialize()),
        key_pair: spk_pair,
        timestamp: 1_700_000_000_000,
    };
    let kyber_pair = kem::KeyPair::from_seed(kem::KeyType::Kyber1024, &[0x6b; 64]);
    let kyber = kyber_pair.map(|key_pair| KyberPreKeyRecord {
        id: FIXED_KYBER_ID,
        signature: fixed_sign(&identity.private_key, &key_pair.public_key.serialize()),
        key_pair,
        timestamp: 1_700_000_000_000,
    });
    let bundle = PreKeyBundle {
        registration_id: 4242,
        device_id: 1,
        identity_key: identity.public_key,
        signed_prekey_id: spk.id,
        signed_prekey: spk.key_pair.public_key,
        signed_prekey_signature: spk.signature.clone(),
        prekey: Some((otk.id, otk.key_pair.public_key)),
        kyber: kyber.as_ref().ok().map(|k| KyberBundlePart {
            id: k.id,
            public_key: k.key_pair.public_key.clone(),
            signature: k.signature.clone(),
        }),
    };
    store.prekeys.insert(otk.id, otk);
    store.signed_prekeys.insert(spk.id, spk);
    if let Ok(k) = kyber {
        store.kyber_prekeys.insert(k.id, (k, false));
    }
    FixedBob { store, bundle }
}

/// The fixed Bob (built once).
pub fn fixed_bob() -> &'static FixedBob {
    static BOB: OnceLock<FixedBob> = OnceLock::new();
    BOB.get_or_init(build_fixed_bob)
}

/// The fixed Alice's identity.
pub fn fixed_alice_identity() -> IdentityKeyPair {
    IdentityKeyPair::from_private(fixed_private(0xa11ce))
}

/// A receiving store for `session_decrypt`: 0 is the fixed Bob, 1.. are the Bobs of the
/// interop vectors (`/work/shared/vectors`: libsignal-node v3, libsignal 0.72 v3, python-axolotl
/// v3, libsignal 0.72 PQXDH), whose prekeys are embedded in `vector_bobs.rs`.
pub fn receiver(which: u8) -> &'static InMemoryStore {
    static STORES: OnceLock<Vec<InMemoryStore>> = OnceLock::new();
    let all = STORES.get_or_init(|| {
        let mut v = vec![fixed_bob().store.clone()];
        v.extend(vector_bobs::stores());
        v
    });
    &all[usize::from(which) % all.len()]
}

/// Everything about a store that a failed operation must leave unchanged, serialized in a
/// canonical order: every session record (`SessionRecord::serialize`), every trusted identity,
/// every prekey record (one-time, signed, Kyber with its last-resort flag), every replay
/// record and every sender-key record (`SenderKeyRecord::serialize`).
pub fn snapshot(store: &InMemoryStore) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |tag: u8, b: &[u8]| {
        out.push(tag);
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    };
    let mut sessions: Vec<_> = store.sessions.iter().collect();
    sessions.sort_by(|a, b| a.0.cmp(b.0));
    for (addr, rec) in sessions {
        push(1, addr.to_string().as_bytes());
        push(2, &rec.serialize());
    }
    let mut ids: Vec<_> = store.identities.iter().collect();
    ids.sort_by(|a, b| a.0.cmp(b.0));
    for (addr, key) in ids {
        push(3, addr.to_string().as_bytes());
        push(4, &key.serialize());
    }
    let mut pk: Vec<_> = store.prekeys.values().map(|r| r.serialize()).collect();
    pk.sort();
    for r in pk {
        push(5, &r);
    }
    let mut spk: Vec<_> = store
        .signed_prekeys
        .values()
        .map(|r| r.serialize())
        .collect();
    spk.sort();
    for r in spk {
        push(6, &r);
    }
    // Kyber records are large: id, flag and signature identify one.
    let mut kpk: Vec<_> = store
        .kyber_prekeys
        .iter()
        .map(|(id, (r, last))| (*id, *last, r.signature.clone()))
        .collect();
    kpk.sort();
    for (id, last, sig) in kpk {
        push(7, &id.to_le_bytes());
        push(8, &[u8::from(last)]);
        push(9, &sig);
    }
    let mut used: Vec<(u32, [u8; 33])> = store
        .used_base_keys
        .iter()
        .flat_map(|(id, set)| set.iter().map(move |k| (*id, k.serialize())))
        .collect();
    used.sort();
    for (id, k) in used {
        push(10, &id.to_le_bytes());
        push(11, &k);
    }
    let mut sk: Vec<_> = store.sender_keys.iter().collect();
    sk.sort_by(|a, b| a.0.cmp(b.0));
    for ((addr, key), rec) in sk {
        push(12, format!("{addr}/{key:?}").as_bytes());
        push(13, &rec.serialize());
    }
    out
}

/// A public key from fuzz bytes: the 33-byte encoding if it parses, else a key from the bytes.
pub fn any_public_key(bytes: &[u8]) -> PublicKey {
    PublicKey::deserialize(bytes).unwrap_or_else(|_| {
        let mut u = [0u8; 32];
        for (d, s) in u.iter_mut().zip(bytes) {
            *d = *s;
        }
        PublicKey::from_djb_bytes(u)
    })
}

// ---------------------------------------------------------------------------------------------
// Protobuf writing (seeds and re-encoding checks; independent of the core's encoder)
// ---------------------------------------------------------------------------------------------

/// Appends a protobuf varint.
pub fn pb_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a varint field (wire type 0).
pub fn pb_uint(out: &mut Vec<u8>, tag: u32, v: u64) {
    pb_varint(out, u64::from(tag) << 3);
    pb_varint(out, v);
}

/// Appends a length-delimited field (wire type 2).
pub fn pb_bytes(out: &mut Vec<u8>, tag: u32, data: &[u8]) {
    pb_varint(out, u64::from(tag) << 3 | 2);
    pb_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

// ---------------------------------------------------------------------------------------------
// Sender keys: a fixed group sender
// ---------------------------------------------------------------------------------------------

/// The fixed group's distribution UUID (current format).
pub const GROUP_UUID: [u8; 16] = *b"fuzz-group-uuid!";
/// The fixed group's id (legacy format).
pub const GROUP_ID: &str = "120363000000000042@g.us";
/// The fixed sender's chain id.
pub const GROUP_CHAIN_ID: u32 = 0x2468_ace1;
/// The fixed sender's chain key at iteration 0.
pub const GROUP_CHAIN_KEY: [u8; 32] = [0x47; 32];

/// The group sender's address (as receivers see it).
pub fn group_sender_address() -> Address {
    Address::new("group-sender", 3)
}

/// The distribution key of the fixed group in either format.
pub fn group_key(legacy: bool) -> DistributionKey {
    if legacy {
        DistributionKey::GroupId(GROUP_ID.to_owned())
    } else {
        DistributionKey::Uuid(GROUP_UUID)
    }
}

/// The fixed sender's signing key.
pub fn group_signing_key() -> PrivateKey {
    fixed_private(0x6709)
}

/// A signing key whose private half signs nothing anywhere (fuzz input cannot know a valid
/// signature under it).
pub fn unknown_signing_key() -> PrivateKey {
    fixed_private(0xdead_5167)
}

/// A SenderKeyDistributionMessage (`0x33 ‖ protobuf`) in either format.
pub fn encode_skdm(
    distribution_id: Option<[u8; 16]>,
    chain_id: u32,
    iteration: u32,
    chain_key: &[u8],
    signing_key: &[u8],
) -> Vec<u8> {
    let (mut out, base) = sender_key_prefix(distribution_id, chain_id, iteration);
    pb_bytes(&mut out, base + 3, chain_key);
    pb_bytes(&mut out, base + 4, signing_key);
    out
}

/// `0x33 ‖` the fields both sender-key messages start with (the distribution id in the current
/// format, then chain id and iteration), and the tag offset of the fields after them (1 in the
/// current format, where the distribution id is field 1; 0 in the legacy one).
fn sender_key_prefix(
    distribution_id: Option<[u8; 16]>,
    chain_id: u32,
    iteration: u32,
) -> (Vec<u8>, u32) {
    let mut out = vec![0x33];
    let base = match distribution_id {
        Some(u) => {
            pb_bytes(&mut out, 1, &u);
            1
        }
        None => 0,
    };
    pb_uint(&mut out, base + 1, u64::from(chain_id));
    pb_uint(&mut out, base + 2, u64::from(iteration));
    (out, base)
}

/// The body of a SenderKeyMessage (`0x33 ‖ protobuf`, before the signature) in either format.
pub fn encode_skm_body(
    distribution_id: Option<[u8; 16]>,
    chain_id: u32,
    iteration: u32,
    ciphertext: &[u8],
) -> Vec<u8> {
    let (mut out, base) = sender_key_prefix(distribution_id, chain_id, iteration);
    pb_bytes(&mut out, base + 3, ciphertext);
    out
}

/// A SenderKeyRecord (libsignal's storage protobuf) with one state.
pub fn encode_sender_key_record(
    chain_id: u32,
    iteration: u32,
    chain_key: &[u8],
    public: &[u8],
    private: Option<&[u8]>,
) -> Vec<u8> {
    let mut ck = Vec::new();
    pb_uint(&mut ck, 1, u64::from(iteration));
    pb_bytes(&mut ck, 2, chain_key);
    let mut sk = Vec::new();
    pb_bytes(&mut sk, 1, public);
    if let Some(p) = private {
        pb_bytes(&mut sk, 2, p);
    }
    let mut state = Vec::new();
    pb_uint(&mut state, 1, u64::from(chain_id));
    pb_bytes(&mut state, 2, &ck);
    pb_bytes(&mut state, 3, &sk);
    pb_uint(&mut state, 5, 3);
    let mut out = Vec::new();
    pb_bytes(&mut out, 1, &state);
    out
}

/// The fixed sender's distribution message in either format (iteration 0).
pub fn group_skdm(legacy: bool) -> Vec<u8> {
    encode_skdm(
        group_key(legacy).distribution_id(),
        GROUP_CHAIN_ID,
        0,
        &GROUP_CHAIN_KEY,
        &group_signing_key().public_key().serialize(),
    )
}

/// The fixed sender's own store: its sender key (with the private signing key) for the fixed
/// group in both formats, at iteration 0.
pub fn group_sender() -> &'static InMemoryStore {
    static S: OnceLock<InMemoryStore> = OnceLock::new();
    S.get_or_init(|| {
        let mut store = InMemoryStore::new(fixed_alice_identity(), 7);
        let key = group_signing_key();
        let rec = encode_sender_key_record(
            GROUP_CHAIN_ID,
            0,
            &GROUP_CHAIN_KEY,
            &key.public_key().serialize(),
            Some(&key.serialize()),
        );
        for legacy in [false, true] {
            let rec = SenderKeyRecord::deserialize(&rec).expect("fixture sender record");
            store
                .sender_keys
                .insert((group_sender_address(), group_key(legacy)), rec);
        }
        store
    })
}

/// A receiver that has processed the fixed sender's distribution in both formats.
pub fn group_receiver() -> &'static InMemoryStore {
    static S: OnceLock<InMemoryStore> = OnceLock::new();
    S.get_or_init(|| {
        let mut store = fixed_bob().store.clone();
        for legacy in [false, true] {
            let bytes = group_skdm(legacy);
            let m = if legacy {
                SenderKeyDistributionMessage::deserialize_legacy(&bytes)
            } else {
                SenderKeyDistributionMessage::deserialize(&bytes)
            }
            .expect("fixture distribution parses");
            group::process_distribution(
                &mut store,
                &group_sender_address(),
                &group_key(legacy),
                &m,
            )
            .expect("fixture distribution processes");
        }
        store
    })
}

/// Parses a SenderKeyMessage in the given format.
pub fn parse_skm(legacy: bool, data: &[u8]) -> Option<SenderKeyMessage> {
    if legacy {
        SenderKeyMessage::deserialize_legacy(data).ok()
    } else {
        SenderKeyMessage::deserialize(data).ok()
    }
}

/// Parses a SenderKeyDistributionMessage in the given format.
pub fn parse_skdm(legacy: bool, data: &[u8]) -> Option<SenderKeyDistributionMessage> {
    if legacy {
        SenderKeyDistributionMessage::deserialize_legacy(data).ok()
    } else {
        SenderKeyDistributionMessage::deserialize(data).ok()
    }
}

/// The serialized sender-key record of (`sender`, `key`), empty if none.
pub fn sender_key_bytes(store: &InMemoryStore, sender: &Address, key: &DistributionKey) -> Vec<u8> {
    store
        .sender_keys
        .get(&(sender.clone(), key.clone()))
        .map(SenderKeyRecord::serialize)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Sealed sender: a fixed trust root, server and sender certificates
// ---------------------------------------------------------------------------------------------

/// The fixed trust root.
pub fn trust_root() -> PrivateKey {
    fixed_private(0x7257_0007)
}

/// The fixed server key (certified by the trust root).
pub fn server_key() -> PrivateKey {
    fixed_private(0x5e4e_0007)
}

/// The fixed server certificate's key id.
pub const SERVER_KEY_ID: u32 = 7;
/// The fixed Alice's sender uuid.
pub const ALICE_UUID: &str = "a11ce000-0000-4000-8000-00000000a11c";
/// Expiry of the fixed sender certificate.
pub const SENDER_CERT_EXPIRES: u64 = 2_000_000_000_000;
/// Validation time used with the fixed certificates.
pub const VALIDATION_TIME: u64 = 1_800_000_000_000;

/// Every server certificate the fixed trust root ever signed: key id 7 (valid) and the revoked
/// id `0xDEADC357`, both for the fixed server key.
pub fn fixture_server_certs() -> &'static [ServerCertificate] {
    static S: OnceLock<Vec<ServerCertificate>> = OnceLock::new();
    S.get_or_init(|| {
        [SERVER_KEY_ID, REVOKED_SERVER_CERTIFICATE_KEY_IDS[0]]
            .iter()
            .map(|id| {
                ServerCertificate::new_with(
                    *id,
                    &server_key().public_key(),
                    &trust_root(),
                    &mut SplitMix(u64::from(*id)),
                )
                .expect("fixture server certificate")
            })
            .collect()
    })
}

/// Every sender certificate the fixed server key ever signed (all for the fixed Alice, under
/// server certificate 7): one valid until [`SENDER_CERT_EXPIRES`], one expired long ago (both
/// embedding the server certificate), and one valid until [`SENDER_CERT_EXPIRES`] naming it by
/// id ([`sender_cert_by_reference`]).
pub fn fixture_sender_certs() -> &'static [SenderCertificate] {
    static S: OnceLock<Vec<SenderCertificate>> = OnceLock::new();
    S.get_or_init(|| {
        let alice = fixed_alice_identity().public_key;
        let by_reference = sender_cert_by_reference(
            &SenderCertificateParts {
                sender_uuid: ALICE_UUID,
                sender_e164: Some("+15550000001"),
                sender_device_id: 1,
                identity_key: &alice,
                expiration: SENDER_CERT_EXPIRES,
            },
            SERVER_KEY_ID,
            &server_key(),
        );
        let by_reference =
            SenderCertificate::deserialize(&by_reference).expect("fixture sender certificate");
        [SENDER_CERT_EXPIRES, 1_000]
            .iter()
            .map(|exp| {
                SenderCertificate::new_with(
                    SenderCertificateParts {
                        sender_uuid: ALICE_UUID,
                        sender_e164: Some("+15550000001"),
                        sender_device_id: 1,
                        identity_key: &alice,
                        expiration: *exp,
                    },
                    &fixture_server_certs()[0],
                    &server_key(),
                    &mut SplitMix(*exp),
                )
                .expect("fixture sender certificate")
            })
            .chain([by_reference])
            .collect()
    })
}

/// A serialized sender certificate whose signer is server certificate `server_id` named by id
/// (`Signer::Id`; the core only creates embedding ones), signed by `server_key`; written
/// independently of the core's encoder.
pub fn sender_cert_by_reference(
    parts: &SenderCertificateParts<'_>,
    server_id: u32,
    server_key: &PrivateKey,
) -> Vec<u8> {
    let mut data = Vec::new();
    if let Some(e164) = parts.sender_e164 {
        pb_bytes(&mut data, 1, e164.as_bytes());
    }
    pb_uint(&mut data, 2, u64::from(parts.sender_device_id));
    pb_varint(&mut data, 3 << 3 | 1);
    data.extend_from_slice(&parts.expiration.to_le_bytes());
    pb_bytes(&mut data, 4, &parts.identity_key.serialize());
    pb_bytes(&mut data, 6, parts.sender_uuid.as_bytes());
    pb_uint(&mut data, 8, u64::from(server_id));
    let mut out = Vec::new();
    pb_bytes(&mut out, 1, &data);
    pb_bytes(&mut out, 2, &fixed_sign(server_key, &data));
    out
}

// ---------------------------------------------------------------------------------------------
// Secrets never in Debug output
// ---------------------------------------------------------------------------------------------

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts that neither `{:?}` nor `{:#?}` of `value` contains the lower-case hex of any of
/// `secrets` (those shorter than 16 bytes are ignored). A secret whose hex is in `public` (the
/// `Debug` text of the public values that `value` shows, e.g. its public keys) is not looked
/// for: a hostile record can make a secret equal to a public value. Returns how many secrets
/// were looked for.
pub fn assert_secrets_hidden<T: fmt::Debug + ?Sized>(
    value: &T,
    secrets: &[Vec<u8>],
    public: &str,
) -> usize {
    let text = format!("{value:?}\n{value:#?}");
    let mut looked = 0;
    for s in secrets.iter().filter(|s| s.len() >= 16) {
        let h = hex(s);
        if public.contains(&h) {
            continue;
        }
        looked += 1;
        assert!(!text.contains(&h), "a secret in hex in Debug output");
    }
    looked
}

/// The length-delimited fields numbered `tag` of a protobuf message (empty if it is malformed).
pub fn pb_fields(mut data: &[u8], tag: u32) -> Vec<&[u8]> {
    fn varint(data: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = data.split_first()?;
            *data = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !data.is_empty() {
        let Some(key) = varint(&mut data) else {
            return Vec::new();
        };
        let skip = match key & 7 {
            0 => {
                if varint(&mut data).is_none() {
                    return Vec::new();
                }
                0
            }
            1 => 8,
            5 => 4,
            2 => match varint(&mut data).and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n <= data.len() => {
                    if key >> 3 == u64::from(tag) {
                        out.push(&data[..n]);
                    }
                    n
                }
                _ => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        if skip > data.len() {
            return Vec::new();
        }
        data = &data[skip..];
    }
    out
}

/// The secrets of an SPQR state: authenticator keys, the chain's next root, every link's next
/// chain keys and kept keys.
pub fn spqr_secrets(state: &spqr::State) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(b) = state.braid() {
        out.push(b.auth.root_key.to_vec());
        out.push(b.auth.mac_key.to_vec());
    }
    if let Some(c) = state.chain() {
        out.push(c.next_root.to_vec());
        for link in &c.links {
            for d in [&link.send, &link.recv] {
                out.extend(d.next.iter().map(|k| k.to_vec()));
                out.extend(d.prev.chunks_exact(36).map(|e| e[4..].to_vec()));
            }
        }
    }
    out
}

/// The secrets of a session record (root keys, ratchet private keys, chain keys, message keys,
/// SPQR secrets) and the `Debug` text of the public keys it shows.
pub fn session_secrets(rec: &SessionRecord) -> (Vec<Vec<u8>>, String) {
    let mut secrets = Vec::new();
    let mut public = String::new();
    for s in rec.sessions() {
        public.push_str(&format!("{:?}|{:?}|", s.local_identity, s.remote_identity));
        if let Some(c) = &s.sender_chain {
            public.push_str(&format!("{:?}|", c.ratchet.public_key));
        }
        for c in &s.receiver_chains {
            public.push_str(&format!("{:?}|", c.ratchet_key));
        }
        let p = s.to_proto();
        secrets.push(p.root_key.clone());
        for c in p.sender_chain.iter().chain(&p.receiver_chains) {
            secrets.push(c.sender_ratchet_key_private.clone());
            secrets.extend(c.chain_key.iter().map(|k| k.key.clone()));
            for mk in &c.message_keys {
                for k in [&mk.cipher_key, &mk.mac_key, &mk.iv, &mk.seed] {
                    secrets.push(k.clone());
                }
            }
        }
        secrets.extend(spqr_secrets(&s.pq_ratchet));
    }
    (secrets, public)
}

/// The secrets of a serialized sender-key record (chain keys, private signing keys, skipped
/// message-key seeds), read from libsignal's storage protobuf.
pub fn sender_key_secrets(serialized: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for state in pb_fields(serialized, 1) {
        for ck in pb_fields(state, 2) {
            out.extend(pb_fields(ck, 2).into_iter().map(<[u8]>::to_vec));
        }
        for sk in pb_fields(state, 3) {
            out.extend(pb_fields(sk, 2).into_iter().map(<[u8]>::to_vec));
        }
        for mk in pb_fields(state, 4) {
            out.extend(pb_fields(mk, 2).into_iter().map(<[u8]>::to_vec));
        }
    }
    out
}
