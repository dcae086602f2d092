// SPDX-License-Identifier: MIT OR Apache-2.0
//
// libsignal-node 6.0.0 (npm `libsignal`, the JavaScript port WhatsApp Web clients such as
// Baileys run; X3DH, session version 3, no sender keys) in benches/peers. Its storage is an
// in-memory Map holding the library's SessionRecord objects (no serialization). Our own code,
// written against the library's index.d.ts; run by run.py as `node libsignal_node.mjs`.

import { createRequire } from 'node:module';
import { PAYLOAD, check, emit, fail, handshakeWorkload, pairWorkloads, runWorkloads, x25519Workload } from './harness.mjs';

const require = createRequire(import.meta.url);
// The library logs with console.*: stdout carries the result line only.
for (const k of ['log', 'info', 'warn', 'debug', 'error', 'trace']) console[k] = () => {};

let ls;
let curve;
let version;
try {
  ls = require('libsignal');
  curve = require('libsignal/src/curve.js');
  version = require('libsignal/package.json').version;
} catch (e) {
  fail('libsignal-node', `cannot load libsignal: ${e && e.message ? e.message : e}`);
  process.exit(0);
}

const bare = (id) => String(id).replace(/\.\d+$/, '');

// One party: identity, registration id, sessions, prekeys (SignalStorage of index.d.ts).
function party(name, registrationId) {
  const pair = ls.keyhelper.generateIdentityKeyPair();
  const sessions = new Map();
  const identities = new Map();
  const preKeys = new Map();
  const signed = new Map();
  const storage = {
    async loadSession(id) {
      return sessions.get(id);
    },
    async storeSession(id, record) {
      sessions.set(id, record);
    },
    async isTrustedIdentity(id, k) {
      const old = identities.get(bare(id));
      if (old === undefined) {
        identities.set(bare(id), Buffer.from(k));
        return true;
      }
      return old.equals(Buffer.from(k));
    },
    async loadPreKey(id) {
      return preKeys.get(Number(id));
    },
    async removePreKey(id) {
      preKeys.delete(Number(id));
    },
    async loadSignedPreKey(id) {
      return signed.get(Number(id))?.keyPair;
    },
    getOurRegistrationId: () => registrationId,
    getOurIdentity: () => pair,
  };
  return { name, registrationId, pair, storage, preKeys, signed, address: new ls.ProtocolAddress(name, 1) };
}

// What a server publishes (not timed).
function device(p) {
  const pre = ls.keyhelper.generatePreKey(1);
  p.preKeys.set(1, pre.keyPair);
  const spk = ls.keyhelper.generateSignedPreKey(p.pair, 1);
  p.signed.set(1, spk);
  return {
    registrationId: p.registrationId,
    identityKey: p.pair.pubKey,
    signedPreKey: { keyId: 1, publicKey: spk.keyPair.pubKey, signature: spk.signature },
    preKey: { keyId: 1, publicKey: pre.keyPair.pubKey },
  };
}

const encryptTo = (from, to) => {
  const cipher = new ls.SessionCipher(from.storage, to.address);
  return async (pt) => {
    const r = await cipher.encrypt(pt);
    return { type: r.type, body: Buffer.from(r.body) };
  };
};

const decryptFrom = (me, from) => {
  const cipher = new ls.SessionCipher(me.storage, from.address);
  return (w) => (w.type === 3 ? cipher.decryptPreKeyWhisperMessage(w.body) : cipher.decryptWhisperMessage(w.body));
};

async function handshake(alice, bob, d) {
  await new ls.SessionBuilder(alice.storage, bob.address).initOutgoing(d);
  return decryptFrom(bob, alice)(await encryptTo(alice, bob)(PAYLOAD));
}

async function pair() {
  const alice = party('alice', 1);
  const bob = party('bob', 2);
  check(await handshake(alice, bob, device(bob)));
  const p = { encAB: encryptTo(alice, bob), decB: decryptFrom(bob, alice), encBA: encryptTo(bob, alice), decA: decryptFrom(alice, bob) };
  check(await p.decA(await p.encBA(PAYLOAD))); // Bob's reply: Alice's next messages are WhisperMessages
  return p;
}

async function handshakes(n) {
  const alice = party('alice', 1);
  const calls = [];
  for (let i = 0; i < n; i++) {
    const bob = party(`bob${i}`, 2);
    const d = device(bob);
    calls.push(() => handshake(alice, bob, d));
  }
  return calls;
}

function x25519() {
  const a = curve.generateKeyPair();
  const b = curve.generateKeyPair();
  const verify = async () => {
    if (!Buffer.from(curve.calculateAgreement(b.pubKey, a.privKey)).equals(Buffer.from(curve.calculateAgreement(a.pubKey, b.privKey))))
      throw new Error('X25519 agreements differ');
  };
  return x25519Workload(() => curve.calculateAgreement(b.pubKey, a.privKey), verify);
}

const report = { impl: 'libsignal-node', version, info: { node: process.version }, rows: [] };
await runWorkloads(report, [
  handshakeWorkload('v3', handshakes),
  ...pairWorkloads('v3', pair),
  { name: 'group_encrypt', variant: '', unsupported: 'no sender keys in libsignal-node' },
  { name: 'group_decrypt', variant: '', unsupported: 'no sender keys in libsignal-node' },
  x25519(),
]);
emit(report);
