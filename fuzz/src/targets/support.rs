//! Shared by every target: an input reader, a deterministic RNG, fixed parties whose keys never
//! change (so committed corpora keep decrypting), and a byte-exact snapshot of a store.
//!
//! Only `textsecure_core` and the core's own dependencies are used here, so this directory can
//! be compiled both by the fuzz crate and, through `#[path]`, by the core's integration tests
//! (`rust/textsecure-core/tests/fuzz_corpus.rs`, `conversation_fuzz.rs`).

use std::sync::OnceLock;

use rand_core::{CryptoRng, RngCore};
use textsecure_core::curve::{KeyPair, PrivateKey, PublicKey};
use textsecure_core::kem;
use textsecure_core::prekey::{
    IdentityKeyPair, KyberBundlePart, KyberPreKeyRecord, PreKeyBundle, PreKeyRecord,
    SignedPreKeyRecord,
};
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
/// every prekey record (one-time, signed, Kyber with its last-resort flag) and every replay
/// record.
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
