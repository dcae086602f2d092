// SPDX-License-Identifier: MIT OR Apache-2.0
//
// @signalapp/libsignal-client 0.103.0 (npm alias ls0103; Signal's Rust core through N-API) in
// benches/peers. It only sets up PQXDH sessions with SPQR (session version 4), so its rows
// are compared with textsecure v4. Stores are in-memory Maps holding the library's record
// objects (no serialization: its fastest in-memory store). Our own code, written against the
// library's public .d.ts; run by run.py as `node libsignal_client.mjs`.

import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import {
  PAYLOAD,
  check,
  emit,
  fail,
  groupWorkloads,
  handshakeWorkload,
  pairWorkloads,
  runWorkloads,
  x25519Workload,
} from './harness.mjs';

const require = createRequire(import.meta.url);
for (const k of ['log', 'info', 'warn', 'debug']) console[k] = () => {};

let ls;
let version;
try {
  ls = await import('ls0103');
  version = require('ls0103/package.json').version;
} catch (e) {
  fail('libsignal-client', `cannot load @signalapp/libsignal-client: ${e && e.message ? e.message : e}`);
  process.exit(0);
}

const key = (addr) => `${addr.name()}.${addr.deviceId()}`;

// One party's stores: identity, sessions, prekeys, signed prekeys, Kyber prekeys, sender keys.
function party(name, registrationId) {
  const priv = ls.PrivateKey.generate();
  const self = { name, address: ls.ProtocolAddress.new(name, 1), priv, pub: priv.getPublicKey(), registrationId };
  const sessions = new Map();
  const identities = new Map();
  const preKeys = new Map();
  const signed = new Map();
  const kyber = new Map();
  const senderKeys = new Map();
  self.sessions = new (class extends ls.SessionStore {
    async saveSession(a, r) {
      sessions.set(key(a), r);
    }
    async getSession(a) {
      return sessions.get(key(a)) ?? null;
    }
    async getExistingSessions(as) {
      return as.map((a) => sessions.get(key(a)));
    }
  })();
  self.identities = new (class extends ls.IdentityKeyStore {
    async getIdentityKey() {
      return priv;
    }
    async getLocalRegistrationId() {
      return registrationId;
    }
    async saveIdentity(a, k) {
      const old = identities.get(key(a));
      identities.set(key(a), k);
      return old && !old.equals(k) ? ls.IdentityChange.ReplacedExisting : ls.IdentityChange.NewOrUnchanged;
    }
    async isTrustedIdentity(a, k) {
      const old = identities.get(key(a));
      return !old || old.equals(k);
    }
    async getIdentity(a) {
      return identities.get(key(a)) ?? null;
    }
  })();
  self.preKeys = new (class extends ls.PreKeyStore {
    async savePreKey(id, r) {
      preKeys.set(id, r);
    }
    async getPreKey(id) {
      const r = preKeys.get(id);
      if (!r) throw new Error(`no prekey ${id}`);
      return r;
    }
    async removePreKey(id) {
      preKeys.delete(id);
    }
  })();
  self.signed = new (class extends ls.SignedPreKeyStore {
    async saveSignedPreKey(id, r) {
      signed.set(id, r);
    }
    async getSignedPreKey(id) {
      const r = signed.get(id);
      if (!r) throw new Error(`no signed prekey ${id}`);
      return r;
    }
  })();
  self.kyber = new (class extends ls.KyberPreKeyStore {
    async saveKyberPreKey(id, r) {
      kyber.set(id, r);
    }
    async getKyberPreKey(id) {
      const r = kyber.get(id);
      if (!r) throw new Error(`no kyber prekey ${id}`);
      return r;
    }
    async markKyberPreKeyUsed(id) {
      kyber.delete(id);
    }
  })();
  self.senderKeys = new (class extends ls.SenderKeyStore {
    async saveSenderKey(a, d, r) {
      senderKeys.set(`${key(a)}:${d}`, r);
    }
    async getSenderKey(a, d) {
      return senderKeys.get(`${key(a)}:${d}`) ?? null;
    }
  })();
  return self;
}

// What a server publishes: one-time prekey, signed prekey, Kyber prekey (not timed).
async function bundle(p) {
  const pre = ls.PrivateKey.generate();
  await p.preKeys.savePreKey(1, ls.PreKeyRecord.new(1, pre.getPublicKey(), pre));
  const spk = ls.PrivateKey.generate();
  const spkSig = p.priv.sign(spk.getPublicKey().serialize());
  await p.signed.saveSignedPreKey(1, ls.SignedPreKeyRecord.new(1, Date.now(), spk.getPublicKey(), spk, spkSig));
  const kem = ls.KEMKeyPair.generate();
  const kemSig = p.priv.sign(kem.getPublicKey().serialize());
  await p.kyber.saveKyberPreKey(1, ls.KyberPreKeyRecord.new(1, Date.now(), kem, kemSig));
  return ls.PreKeyBundle.new(p.registrationId, 1, 1, pre.getPublicKey(), 1, spk.getPublicKey(), spkSig, p.pub, 1, kem.getPublicKey(), kemSig);
}

const encryptTo = (from, to) => async (pt) => {
  const m = await ls.signalEncrypt(pt, to.address, from.address, from.sessions, from.identities);
  return { type: m.type(), body: m.serialize() };
};

const decryptFrom = (me, from) => async (w) => {
  if (w.type === ls.CiphertextMessageType.PreKey) {
    const m = ls.PreKeySignalMessage.deserialize(w.body);
    return ls.signalDecryptPreKey(m, from.address, me.address, me.sessions, me.identities, me.preKeys, me.signed, me.kyber);
  }
  return ls.signalDecrypt(ls.SignalMessage.deserialize(w.body), from.address, me.address, me.sessions, me.identities);
};

async function handshake(alice, bob, b) {
  await ls.processPreKeyBundle(b, bob.address, alice.address, alice.sessions, alice.identities);
  const first = await encryptTo(alice, bob)(PAYLOAD);
  return decryptFrom(bob, alice)(first);
}

async function pair() {
  const alice = party('alice', 1);
  const bob = party('bob', 2);
  check(await handshake(alice, bob, await bundle(bob)));
  const p = { encAB: encryptTo(alice, bob), decB: decryptFrom(bob, alice), encBA: encryptTo(bob, alice), decA: decryptFrom(alice, bob) };
  check(await p.decA(await p.encBA(PAYLOAD))); // Bob's reply: Alice's next messages are SignalMessages
  return p;
}

async function handshakes(n) {
  const alice = party('alice', 1);
  const calls = [];
  for (let i = 0; i < n; i++) {
    const bob = party(`bob${i}`, 2);
    const b = await bundle(bob);
    calls.push(() => handshake(alice, bob, b));
  }
  return calls;
}

async function group() {
  const alice = party('alice', 1);
  const bob = party('bob', 2);
  const dist = randomUUID();
  const skdm = await ls.SenderKeyDistributionMessage.create(alice.address, dist, alice.senderKeys);
  await ls.processSenderKeyDistributionMessage(alice.address, ls.SenderKeyDistributionMessage.deserialize(skdm.serialize()), bob.senderKeys);
  return {
    enc: async (pt) => (await ls.groupEncrypt(alice.address, dist, alice.senderKeys, pt)).serialize(),
    dec: (w) => ls.groupDecrypt(alice.address, bob.senderKeys, w),
  };
}

function x25519() {
  const a = ls.PrivateKey.generate();
  const b = ls.PrivateKey.generate();
  const bPub = b.getPublicKey();
  const verify = async () => {
    if (!Buffer.from(a.agree(bPub)).equals(Buffer.from(b.agree(a.getPublicKey())))) throw new Error('X25519 agreements differ');
  };
  return x25519Workload(() => a.agree(bPub), verify);
}

const note = 'PQXDH + SPQR';
const report = { impl: 'libsignal-client', version, info: { node: process.version }, rows: [] };
await runWorkloads(report, [
  handshakeWorkload('v4', handshakes, { note }),
  ...pairWorkloads('v4', pair, { note }),
  ...groupWorkloads('current', group),
  x25519(),
]);
emit(report);
