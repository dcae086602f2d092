// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Test-time interop peer for textsecure.
//
//     node peer.mjs <lib>        lib: ls072 | ls090 | ls0103 | node
//
// One long-running process per peer. It reads one JSON command per line on
// stdin ({"cmd": "<name>", ...args, "id"?: any}) and writes exactly one JSON
// reply per line on stdout: {"ok": result} or {"error": {"kind", "message"}}
// (with "id" echoed when the command had one). Binary values are standard
// base64. Right after start-up it writes one line {"ready": {lib, version}}
// (or {"error": ...} and exits if the library cannot be loaded).
//
// The reference libraries are *run* here as separate processes; this file is
// our own code, written against their public (.d.ts / documented) APIs only.

import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { randomInt } from 'node:crypto';
import { format } from 'node:util';

const require = createRequire(import.meta.url);

// stdout carries the protocol: nothing else may write to it. The libraries
// (libsignal-node especially) log freely with console.*; send that to stderr
// when INTEROP_PEER_DEBUG is set, drop it otherwise.
{
  const debug = !!process.env.INTEROP_PEER_DEBUG;
  const sink = debug ? (...a) => process.stderr.write(format(...a) + '\n') : () => {};
  for (const k of ['log', 'info', 'warn', 'error', 'debug', 'trace']) console[k] = sink;
}

const LIB = process.argv[2];
const CLIENT_LIBS = { ls072: 'ls072', ls090: 'ls090', ls0103: 'ls0103' };

class PeerFailure extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

const b64 = (buf) => Buffer.from(buf).toString('base64');
function unb64(s, what) {
  if (typeof s !== 'string') throw new PeerFailure('other', `${what}: expected a base64 string`);
  return Buffer.from(s, 'base64');
}
function need(args, key, type) {
  const v = args[key];
  if (v === undefined || v === null) throw new PeerFailure('other', `missing argument: ${key}`);
  if (type && typeof v !== type) throw new PeerFailure('other', `argument ${key} must be a ${type}`);
  return v;
}
function optInt(args, key) {
  const v = args[key];
  if (v === undefined || v === null) return null;
  if (!Number.isInteger(v)) throw new PeerFailure('other', `argument ${key} must be an integer`);
  return v;
}
function randomRegistrationId() {
  return randomInt(1, 16381);
}

// ---------------------------------------------------------------------------
// Error normalisation. Order matters: the first matching rule wins.
// ---------------------------------------------------------------------------
const MESSAGE_RULES = [
  [/untrusted identity|UntrustedIdentity/i, 'untrusted_identity'],
  [/duplicate|old counter|Key used already/i, 'duplicate'],
  [/X3DH no longer supported|version|legacy ciphertext|must be present for this session version/i, 'invalid_version'],
  [/signature/i, 'signature'],
  [/no (signed |kyber )?pre ?key with id|(signed |kyber )?pre ?key .*not found|invalid (signed |kyber )?pre ?key (id|identifier)|InvalidKeyId|invalid prekey identifier|Invalid PreKey ID|Missing SignedPreKey/i, 'invalid_key_id'],
  [/no session|session.*not found|no sessions|no open session|no session record|SessionNotFound|No sender key|sender key.*not found|missing sender key/i, 'no_session'],
  [/mac|decrypt|invalid message|InvalidMessage|protobuf|invalid .*message|bad (key|message)|incomplete|wire type|index out of range|illegal buffer/i, 'invalid_message'],
  [/not supported|unsupported/i, 'unsupported'],
];

function classifyMessage(message) {
  for (const [re, kind] of MESSAGE_RULES) if (re.test(message)) return kind;
  return 'other';
}

function errorText(e) {
  if (e instanceof Error) return `${e.name && e.name !== 'Error' ? e.name + ': ' : ''}${e.message || ''}`.trim() || String(e);
  return String(e);
}

// libsignal-client: LibSignalErrorBase has .name = ErrorCode key, .code.
function classifyClientError(e) {
  if (e instanceof PeerFailure) return { kind: e.kind, message: e.message };
  const message = errorText(e);
  switch (e && e.name) {
    case 'DuplicatedMessage':
      return { kind: 'duplicate', message };
    case 'UntrustedIdentity':
      return { kind: 'untrusted_identity', message };
    case 'InvalidSenderKeySession':
      return { kind: 'no_session', message };
    case 'InvalidRegistrationId':
      return { kind: 'other', message };
    default:
      break;
  }
  return { kind: classifyMessage(message), message };
}

// ---------------------------------------------------------------------------
// libsignal-client (@signalapp/libsignal-client 0.72 / 0.90 / 0.103)
// ---------------------------------------------------------------------------
async function makeClientPeer(libName) {
  const mod = await import(libName);
  const pkg = require(`${libName}/package.json`);
  const version = pkg.version;
  // Since 0.9x the session functions take the local address as third argument.
  const takesLocalAddress = mod.signalEncrypt.length >= 5 || mod.processPreKeyBundle.length >= 6;
  const hasSpqr = !/^0\.7[0-3]\./.test(version);
  // PQXDH-only libraries (>= 0.75) reject X3DH bundles; 0.92+ force SPQR v1.
  const spqrMode = !hasSpqr ? 'none' : /^0\.(7\d|8\d|9[01])\./.test(version) ? 'preferred' : 'required';

  const st = {
    self: null, // { name, deviceId, registrationId, identity: IdentityKeyPair-ish {pub, priv} }
    identities: new Map(), // "name.device" -> Buffer(33)
    sessions: new Map(), // "name.device" -> Buffer (serialized SessionRecord)
    preKeys: new Map(), // id -> Buffer (serialized PreKeyRecord)
    signedPreKeys: new Map(),
    kyberPreKeys: new Map(),
    lastResortKyber: new Set(),
    senderKeys: new Map(), // "name.device::uuid" -> Buffer
    nextPreKeyId: 1000,
    nextKyberPreKeyId: 2000,
  };
  const akey = (addr) => `${addr.name()}.${addr.deviceId()}`;
  const key = (name, dev) => `${name}.${dev}`;
  const address = (name, dev) => mod.ProtocolAddress.new(name, dev);
  const requireSelf = () => {
    if (!st.self) throw new PeerFailure('other', 'no local identity: call create first');
    return st.self;
  };
  const localAddress = () => address(requireSelf().name, requireSelf().deviceId);

  class Sessions extends mod.SessionStore {
    async saveSession(addr, record) {
      st.sessions.set(akey(addr), Buffer.from(record.serialize()));
    }
    async getSession(addr) {
      const b = st.sessions.get(akey(addr));
      return b ? mod.SessionRecord.deserialize(b) : null;
    }
    async getExistingSessions(addrs) {
      return addrs.map((a) => {
        const b = st.sessions.get(akey(a));
        if (!b) throw new Error(`no session for ${akey(a)}`);
        return mod.SessionRecord.deserialize(b);
      });
    }
  }
  class Identities extends mod.IdentityKeyStore {
    async getIdentityKey() {
      return requireSelf().priv;
    }
    async getLocalRegistrationId() {
      return requireSelf().registrationId;
    }
    async saveIdentity(addr, pub) {
      const k = akey(addr);
      const old = st.identities.get(k);
      const ser = Buffer.from(pub.serialize());
      st.identities.set(k, ser);
      const changed = old !== undefined && !old.equals(ser);
      return changed ? mod.IdentityChange.ReplacedExisting : mod.IdentityChange.NewOrUnchanged;
    }
    // Strict trust on first use, both directions: unknown -> trusted, same -> trusted,
    // different -> untrusted until `trust` stores the new key.
    async isTrustedIdentity(addr, pub /*, direction */) {
      const old = st.identities.get(akey(addr));
      return old === undefined || old.equals(Buffer.from(pub.serialize()));
    }
    async getIdentity(addr) {
      const b = st.identities.get(akey(addr));
      return b ? mod.PublicKey.deserialize(b) : null;
    }
  }
  class PreKeys extends mod.PreKeyStore {
    async savePreKey(id, record) {
      st.preKeys.set(id, Buffer.from(record.serialize()));
    }
    async getPreKey(id) {
      const b = st.preKeys.get(id);
      if (!b) throw new Error(`no prekey with id ${id}`);
      return mod.PreKeyRecord.deserialize(b);
    }
    async removePreKey(id) {
      st.preKeys.delete(id);
    }
  }
  class SignedPreKeys extends mod.SignedPreKeyStore {
    async saveSignedPreKey(id, record) {
      st.signedPreKeys.set(id, Buffer.from(record.serialize()));
    }
    async getSignedPreKey(id) {
      const b = st.signedPreKeys.get(id);
      if (!b) throw new Error(`no signed prekey with id ${id}`);
      return mod.SignedPreKeyRecord.deserialize(b);
    }
  }
  class KyberPreKeys extends mod.KyberPreKeyStore {
    async saveKyberPreKey(id, record) {
      st.kyberPreKeys.set(id, Buffer.from(record.serialize()));
    }
    async getKyberPreKey(id) {
      const b = st.kyberPreKeys.get(id);
      if (!b) throw new Error(`no kyber prekey with id ${id}`);
      return mod.KyberPreKeyRecord.deserialize(b);
    }
    // 0.72: (id); 0.90+: (id, signedPreKeyId, baseKey). Last-resort keys stay.
    async markKyberPreKeyUsed(id) {
      if (!st.lastResortKyber.has(id)) st.kyberPreKeys.delete(id);
    }
  }
  class SenderKeys extends mod.SenderKeyStore {
    async saveSenderKey(sender, distributionId, record) {
      st.senderKeys.set(`${akey(sender)}::${distributionId}`, Buffer.from(record.serialize()));
    }
    async getSenderKey(sender, distributionId) {
      const b = st.senderKeys.get(`${akey(sender)}::${distributionId}`);
      return b ? mod.SenderKeyRecord.deserialize(b) : null;
    }
  }
  const sessions = new Sessions();
  const identities = new Identities();
  const preKeys = new PreKeys();
  const signedPreKeys = new SignedPreKeys();
  const kyberPreKeys = new KyberPreKeys();
  const senderKeys = new SenderKeys();

  // Calls that gained a localAddress parameter in 0.9x.
  const withLocal = (remote) => (takesLocalAddress ? [remote, localAddress()] : [remote]);

  // The inner message: `plaintext_content` (PlaintextContent bytes, 0xC0 || body, type 8)
  // or a SenderKeyMessage from this peer's sender key for `distribution_id` (type 7).
  const makeUsmc = async (a) => {
    let message;
    if (a.distribution_id) {
      const self = requireSelf();
      message = await mod.groupEncrypt(
        address(self.name, self.deviceId),
        a.distribution_id,
        senderKeys,
        unb64(need(a, 'plaintext'), 'plaintext'),
      );
    } else {
      const pc = mod.PlaintextContent.deserialize(unb64(need(a, 'plaintext_content'), 'plaintext_content'));
      message = mod.CiphertextMessage.from(pc);
    }
    const cert = mod.SenderCertificate.deserialize(unb64(need(a, 'sender_certificate'), 'sender_certificate'));
    const groupId = a.group_id ? unb64(a.group_id, 'group_id') : null;
    return mod.UnidentifiedSenderMessageContent.new(message, cert, a.content_hint ?? 0, groupId);
  };

  const commands = {
    async create(a) {
      const name = need(a, 'name', 'string');
      const deviceId = need(a, 'device_id', 'number');
      const regId = optInt(a, 'registration_id') ?? randomRegistrationId();
      const priv = mod.PrivateKey.generate();
      const pub = priv.getPublicKey();
      const replacing = st.self !== null;
      st.self = { name, deviceId, registrationId: regId, priv, pub };
      if (replacing) {
        // A re-installed device: its old prekeys were signed by the old identity.
        st.preKeys.clear();
        st.signedPreKeys.clear();
        st.kyberPreKeys.clear();
        st.lastResortKyber.clear();
      }
      return { identity_key: b64(pub.serialize()), registration_id: regId };
    },

    async bundle(a) {
      const self = requireSelf();
      const oneTime = a.one_time === undefined ? true : !!a.one_time;
      const kyber = !!a.kyber;
      const lastResort = !!a.last_resort;
      const spkId = need(a, 'signed_prekey_id', 'number');
      const out = {
        registration_id: self.registrationId,
        device_id: self.deviceId,
        identity_key: b64(self.pub.serialize()),
        prekey_id: null,
        prekey_public: null,
        signed_prekey_id: spkId,
        signed_prekey_public: null,
        signed_prekey_signature: null,
        kyber_prekey_id: null,
        kyber_prekey_public: null,
        kyber_prekey_signature: null,
      };
      if (oneTime) {
        const id = optInt(a, 'prekey_id') ?? st.nextPreKeyId++;
        let rec;
        if (st.preKeys.has(id)) rec = mod.PreKeyRecord.deserialize(st.preKeys.get(id));
        else {
          const p = mod.PrivateKey.generate();
          rec = mod.PreKeyRecord.new(id, p.getPublicKey(), p);
          await preKeys.savePreKey(id, rec);
        }
        out.prekey_id = id;
        out.prekey_public = b64(rec.publicKey().serialize());
      }
      let spk;
      if (st.signedPreKeys.has(spkId)) spk = mod.SignedPreKeyRecord.deserialize(st.signedPreKeys.get(spkId));
      else {
        const p = mod.PrivateKey.generate();
        const sig = self.priv.sign(p.getPublicKey().serialize());
        spk = mod.SignedPreKeyRecord.new(spkId, Date.now(), p.getPublicKey(), p, sig);
        await signedPreKeys.saveSignedPreKey(spkId, spk);
      }
      out.signed_prekey_public = b64(spk.publicKey().serialize());
      out.signed_prekey_signature = b64(spk.signature());
      if (kyber) {
        if (!mod.KEMKeyPair) throw new PeerFailure('unsupported', `${libName} has no Kyber prekeys`);
        const id = optInt(a, 'kyber_prekey_id') ?? st.nextKyberPreKeyId++;
        let rec;
        if (st.kyberPreKeys.has(id)) rec = mod.KyberPreKeyRecord.deserialize(st.kyberPreKeys.get(id));
        else {
          const kp = mod.KEMKeyPair.generate();
          const sig = self.priv.sign(kp.getPublicKey().serialize());
          rec = mod.KyberPreKeyRecord.new(id, Date.now(), kp, sig);
          await kyberPreKeys.saveKyberPreKey(id, rec);
        }
        if (lastResort) st.lastResortKyber.add(id);
        out.kyber_prekey_id = id;
        out.kyber_prekey_public = b64(rec.publicKey().serialize());
        out.kyber_prekey_signature = b64(rec.signature());
      }
      return out;
    },

    async process_bundle(a) {
      requireSelf();
      const name = need(a, 'name', 'string');
      const dev = need(a, 'device_id', 'number');
      const b = need(a, 'bundle', 'object');
      if (a.pq_ratchet !== undefined && a.pq_ratchet !== null) {
        // None of the pinned versions exposes an SPQR switch: 0.72 has no SPQR, 0.74-0.91
        // negotiate it (downgrade allowed), 0.92+ require it. Accept the request only when it
        // matches the library's fixed behaviour.
        if (a.pq_ratchet !== 'required' && a.pq_ratchet !== 'preferred')
          throw new PeerFailure('other', `pq_ratchet must be "required" or "preferred"`);
        if (a.pq_ratchet !== spqrMode)
          throw new PeerFailure(
            'unsupported',
            `${libName} ${version} cannot be told pq_ratchet=${a.pq_ratchet}: its SPQR mode is fixed (${spqrMode})`,
          );
      }
      const pk = (s) => mod.PublicKey.deserialize(unb64(s, 'public key'));
      const hasKyber = b.kyber_prekey_id !== null && b.kyber_prekey_id !== undefined;
      const args = [
        need(b, 'registration_id', 'number'),
        need(b, 'device_id', 'number'),
        b.prekey_id ?? null,
        b.prekey_public ? pk(b.prekey_public) : null,
        need(b, 'signed_prekey_id', 'number'),
        pk(need(b, 'signed_prekey_public', 'string')),
        unb64(need(b, 'signed_prekey_signature', 'string'), 'signed_prekey_signature'),
        pk(need(b, 'identity_key', 'string')),
      ];
      if (hasKyber) {
        args.push(
          b.kyber_prekey_id,
          mod.KEMPublicKey.deserialize(unb64(b.kyber_prekey_public, 'kyber_prekey_public')),
          unb64(b.kyber_prekey_signature, 'kyber_prekey_signature'),
        );
      } else if (version !== '0.72.1' && !/^0\.7[0-4]\./.test(version)) {
        // PreKeyBundle.new requires the Kyber triple in these versions; report what the
        // protocol layer would (libsignal >= 0.75 dropped X3DH session setup).
        throw new PeerFailure('invalid_version', `${libName} ${version}: bundle has no Kyber prekey (X3DH no longer supported)`);
      }
      const bundle = mod.PreKeyBundle.new(...args);
      await mod.processPreKeyBundle(bundle, ...withLocal(address(name, dev)), sessions, identities);
      return {};
    },

    async encrypt(a) {
      requireSelf();
      const addr = address(need(a, 'name', 'string'), need(a, 'device_id', 'number'));
      if (!st.sessions.has(akey(addr))) throw new PeerFailure('no_session', `no session with ${akey(addr)}`);
      const msg = await mod.signalEncrypt(unb64(need(a, 'plaintext'), 'plaintext'), ...withLocal(addr), sessions, identities);
      return { type: msg.type(), body: b64(msg.serialize()) };
    },

    async decrypt(a) {
      requireSelf();
      const addr = address(need(a, 'name', 'string'), need(a, 'device_id', 'number'));
      const type = need(a, 'type', 'number');
      const body = unb64(need(a, 'body'), 'body');
      let pt;
      if (type === 3) {
        const m = mod.PreKeySignalMessage.deserialize(body);
        pt = await mod.signalDecryptPreKey(m, ...withLocal(addr), sessions, identities, preKeys, signedPreKeys, kyberPreKeys);
      } else if (type === 2) {
        if (!st.sessions.has(akey(addr))) throw new PeerFailure('no_session', `no session with ${akey(addr)}`);
        const m = mod.SignalMessage.deserialize(body);
        pt = await mod.signalDecrypt(m, ...withLocal(addr), sessions, identities);
      } else {
        throw new PeerFailure('invalid_message', `unknown message type ${type}`);
      }
      return { plaintext: b64(pt) };
    },

    async trust(a) {
      const k = key(need(a, 'name', 'string'), need(a, 'device_id', 'number'));
      const ik = unb64(need(a, 'identity_key'), 'identity_key');
      mod.PublicKey.deserialize(ik); // validate
      st.identities.set(k, ik);
      return {};
    },

    async identity(a) {
      const b = st.identities.get(key(need(a, 'name', 'string'), need(a, 'device_id', 'number')));
      return { identity_key: b ? b64(b) : null };
    },

    async has_session(a) {
      const b = st.sessions.get(key(need(a, 'name', 'string'), need(a, 'device_id', 'number')));
      if (!b) return { has_session: false };
      return { has_session: mod.SessionRecord.deserialize(b).hasCurrentState() };
    },

    async session_record(a) {
      const k = key(need(a, 'name', 'string'), need(a, 'device_id', 'number'));
      const b = st.sessions.get(k);
      if (!b) throw new PeerFailure('no_session', `no session with ${k}`);
      return { record: b64(b) };
    },

    async import_session(a) {
      const k = key(need(a, 'name', 'string'), need(a, 'device_id', 'number'));
      const rec = mod.SessionRecord.deserialize(unb64(need(a, 'record'), 'record'));
      st.sessions.set(k, Buffer.from(rec.serialize()));
      return {};
    },

    async group_create_distribution(a) {
      const self = requireSelf();
      const dist = need(a, 'distribution_id', 'string');
      const skdm = await mod.SenderKeyDistributionMessage.create(address(self.name, self.deviceId), dist, senderKeys);
      return { skdm: b64(skdm.serialize()) };
    },

    async group_process_distribution(a) {
      const addr = address(need(a, 'name', 'string'), need(a, 'device_id', 'number'));
      const skdm = mod.SenderKeyDistributionMessage.deserialize(unb64(need(a, 'skdm'), 'skdm'));
      await mod.processSenderKeyDistributionMessage(addr, skdm, senderKeys);
      return {};
    },

    async group_encrypt(a) {
      const self = requireSelf();
      const dist = need(a, 'distribution_id', 'string');
      const m = await mod.groupEncrypt(address(self.name, self.deviceId), dist, senderKeys, unb64(need(a, 'plaintext'), 'plaintext'));
      return { body: b64(m.serialize()) };
    },

    async group_decrypt(a) {
      const addr = address(need(a, 'name', 'string'), need(a, 'device_id', 'number'));
      const pt = await mod.groupDecrypt(addr, senderKeys, unb64(need(a, 'body'), 'body'));
      return { plaintext: b64(pt) };
    },

    async fingerprint(a) {
      const fp = mod.Fingerprint.new(
        need(a, 'iterations', 'number'),
        need(a, 'version', 'number'),
        unb64(need(a, 'local_id'), 'local_id'),
        mod.PublicKey.deserialize(unb64(need(a, 'local_key'), 'local_key')),
        unb64(need(a, 'remote_id'), 'remote_id'),
        mod.PublicKey.deserialize(unb64(need(a, 'remote_key'), 'remote_key')),
      );
      return {
        displayable: fp.displayableFingerprint().toString(),
        scannable: b64(fp.scannableFingerprint().toBuffer()),
      };
    },

    async fingerprint_compare(a) {
      const mine = mod.ScannableFingerprint._fromBuffer(unb64(need(a, 'scannable'), 'scannable'));
      const theirs = mod.ScannableFingerprint._fromBuffer(unb64(need(a, 'other'), 'other'));
      return { matches: mine.compare(theirs) };
    },

    // -- sealed sender (libsignal-client only) ------------------------------------------
    // Keys are given explicitly (base64) so tests control trust roots and servers.

    async keypair() {
      const priv = mod.PrivateKey.generate();
      return { private: b64(priv.serialize()), public: b64(priv.getPublicKey().serialize()) };
    },

    async server_certificate(a) {
      const cert = mod.ServerCertificate.new(
        need(a, 'key_id', 'number'),
        mod.PublicKey.deserialize(unb64(need(a, 'server_public'), 'server_public')),
        mod.PrivateKey.deserialize(unb64(need(a, 'trust_root_private'), 'trust_root_private')),
      );
      return { server_certificate: b64(cert.serialize()), key_id: cert.keyId() };
    },

    async sender_certificate(a) {
      const key = a.identity_key ? mod.PublicKey.deserialize(unb64(a.identity_key, 'identity_key')) : requireSelf().pub;
      const cert = mod.SenderCertificate.new(
        need(a, 'sender_uuid', 'string'),
        a.sender_e164 ?? null,
        need(a, 'sender_device_id', 'number'),
        key,
        need(a, 'expiration', 'number'),
        mod.ServerCertificate.deserialize(unb64(need(a, 'server_certificate'), 'server_certificate')),
        mod.PrivateKey.deserialize(unb64(need(a, 'server_private'), 'server_private')),
      );
      return { sender_certificate: b64(cert.serialize()) };
    },

    async sender_certificate_info(a) {
      const cert = mod.SenderCertificate.deserialize(unb64(need(a, 'sender_certificate'), 'sender_certificate'));
      const out = {
        sender_uuid: cert.senderUuid(),
        sender_e164: cert.senderE164(),
        sender_device_id: cert.senderDeviceId(),
        identity_key: b64(cert.key().serialize()),
        expiration: cert.expiration(),
        server_key_id: cert.serverCertificate().keyId(),
      };
      if (a.trust_root) {
        out.valid = cert.validate(mod.PublicKey.deserialize(unb64(a.trust_root, 'trust_root')), need(a, 'time', 'number'));
      }
      return out;
    },

    async sealed_encrypt_v1(a) {
      requireSelf();
      const usmc = await makeUsmc(a);
      const addr = address(need(a, 'name', 'string'), need(a, 'device_id', 'number'));
      const body = await mod.sealedSenderEncrypt(usmc, addr, identities);
      return { body: b64(body), usmc: b64(usmc.serialize()) };
    },

    async sealed_encrypt_v2(a) {
      requireSelf();
      const usmc = await makeUsmc(a);
      const recipients = need(a, 'recipients', 'object').map((r) => address(need(r, 'name', 'string'), need(r, 'device_id', 'number')));
      const excludedRecipients = (a.excluded ?? []).map((s) => mod.ServiceId.parseFromServiceIdString(s));
      const body = await mod.sealedSenderMultiRecipientEncrypt({
        content: usmc,
        recipients,
        excludedRecipients,
        identityStore: identities,
        sessionStore: sessions,
      });
      return { body: b64(body), usmc: b64(usmc.serialize()) };
    },

    async sealed_single_recipient(a) {
      return { body: b64(mod.sealedSenderMultiRecipientMessageForSingleRecipient(unb64(need(a, 'body'), 'body'))) };
    },

    async sealed_parse_sent(a) {
      const { default: SSMRM } = await import(`${libName}/dist/SealedSenderMultiRecipientMessage.js`);
      const m = new SSMRM(unb64(need(a, 'body'), 'body'));
      const recipients = {};
      const messages = {};
      for (const [sid, r] of Object.entries(m.recipientsByServiceIdString())) {
        recipients[sid] = r.deviceIds.map((d, i) => [d, r.registrationIds[i]]);
        messages[sid] = b64(m.messageForRecipient(r));
      }
      return { recipients, excluded: [...m.excludedRecipientServiceIdStrings()], messages };
    },

    async sealed_decrypt_to_usmc(a) {
      requireSelf();
      const usmc = await mod.sealedSenderDecryptToUsmc(unb64(need(a, 'body'), 'body'), identities);
      const cert = usmc.senderCertificate();
      const out = {
        msg_type: usmc.msgType(),
        contents: b64(usmc.contents()),
        content_hint: usmc.contentHint(),
        group_id: usmc.groupId() ? b64(usmc.groupId()) : null,
        sender_certificate: b64(cert.serialize()),
        sender_uuid: cert.senderUuid(),
        sender_device_id: cert.senderDeviceId(),
        sender_key: b64(cert.key().serialize()),
        usmc: b64(usmc.serialize()),
      };
      if (a.trust_root) {
        out.valid = cert.validate(mod.PublicKey.deserialize(unb64(a.trust_root, 'trust_root')), need(a, 'time', 'number'));
      }
      return out;
    },
  };

  return { version, commands, classify: classifyClientError };
}

// ---------------------------------------------------------------------------
// libsignal-node (npm "libsignal" 6.0.0, used by Baileys): X3DH v3 only.
// ---------------------------------------------------------------------------
async function makeNodePeer() {
  const ls = require('libsignal');
  const version = require('libsignal/package.json').version;

  // libsignal-node identifies a remote party by its bare name in some calls and by
  // "name.device" in others; identities are kept per name (ProtocolAddress forbids '.').
  const bare = (id) => String(id).replace(/\.\d+$/, '');

  const st = {
    self: null, // { name, deviceId, registrationId, pair: {pubKey, privKey} }
    identities: new Map(), // name -> Buffer(33)
    sessions: new Map(), // "name.device" -> JSON string of SessionRecord.serialize()
    preKeys: new Map(), // id -> {pubKey, privKey}
    signedPreKeys: new Map(), // id -> {keyPair, signature}
    nextPreKeyId: 1000,
  };
  const requireSelf = () => {
    if (!st.self) throw new PeerFailure('other', 'no local identity: call create first');
    return st.self;
  };

  // The library's storage interface (see its index.d.ts, SignalStorage).
  const storage = {
    async loadSession(id) {
      const s = st.sessions.get(id);
      return s ? ls.SessionRecord.deserialize(JSON.parse(s)) : undefined;
    },
    async storeSession(id, record) {
      st.sessions.set(id, JSON.stringify(record.serialize()));
    },
    // The library never saves identities itself: trust on first use happens here.
    async isTrustedIdentity(identifier, identityKey /*, direction */) {
      const name = bare(identifier);
      const k = Buffer.from(identityKey);
      const old = st.identities.get(name);
      if (old === undefined) {
        st.identities.set(name, k);
        return true;
      }
      return old.equals(k);
    },
    async loadPreKey(id) {
      const kp = st.preKeys.get(Number(id));
      return kp ? { pubKey: kp.pubKey, privKey: kp.privKey } : undefined;
    },
    async removePreKey(id) {
      st.preKeys.delete(Number(id));
    },
    async loadSignedPreKey(id) {
      const s = st.signedPreKeys.get(Number(id));
      return s ? { pubKey: s.keyPair.pubKey, privKey: s.keyPair.privKey } : undefined;
    },
    async getOurRegistrationId() {
      return requireSelf().registrationId;
    },
    async getOurIdentity() {
      const p = requireSelf().pair;
      return { pubKey: p.pubKey, privKey: p.privKey };
    },
  };

  // Remember the per-session failures inside "No matching sessions found" so a replayed
  // message can be told apart from a bad one.
  class Cipher extends ls.SessionCipher {
    constructor(...args) {
      super(...args);
      this.attemptErrors = [];
    }
    async doDecryptWhisperMessage(...args) {
      try {
        return await super.doDecryptWhisperMessage(...args);
      } catch (e) {
        this.attemptErrors.push(e);
        throw e;
      }
    }
  }

  function classify(e, cipher) {
    if (e instanceof PeerFailure) return { kind: e.kind, message: e.message };
    const message = errorText(e);
    if (e instanceof ls.UntrustedIdentityKeyError) return { kind: 'untrusted_identity', message: message || 'UntrustedIdentityKeyError' };
    if (e instanceof ls.MessageCounterError) return { kind: 'duplicate', message };
    if (e instanceof ls.PreKeyError) return { kind: 'invalid_key_id', message };
    if (/No matching sessions found/.test(message) && cipher && cipher.attemptErrors.length) {
      const inner = cipher.attemptErrors;
      const detail = `${message} (${inner.map(errorText).join('; ')})`;
      if (inner.every((x) => x instanceof ls.MessageCounterError)) return { kind: 'duplicate', message: detail };
      if (inner.some((x) => /version/i.test(errorText(x)))) return { kind: 'invalid_version', message: detail };
      return { kind: 'invalid_message', message: detail };
    }
    if (/No sessions|No open session|No session record|No sessions available/i.test(message)) return { kind: 'no_session', message };
    if (/Incompatible version/i.test(message)) return { kind: 'invalid_version', message };
    if (/signature/i.test(message)) return { kind: 'signature', message };
    return { kind: classifyMessage(message), message };
  }

  const addr = (a) => new ls.ProtocolAddress(need(a, 'name', 'string'), need(a, 'device_id', 'number'));
  let lastCipher = null;

  const unsupported = (what) => async () => {
    throw new PeerFailure('unsupported', `libsignal-node ${version}: ${what}`);
  };

  const commands = {
    async create(a) {
      const name = need(a, 'name', 'string');
      const deviceId = need(a, 'device_id', 'number');
      const regId = optInt(a, 'registration_id') ?? randomRegistrationId();
      const pair = ls.keyhelper.generateIdentityKeyPair();
      const replacing = st.self !== null;
      st.self = { name, deviceId, registrationId: regId, pair };
      if (replacing) {
        st.preKeys.clear();
        st.signedPreKeys.clear();
      }
      return { identity_key: b64(pair.pubKey), registration_id: regId };
    },

    async bundle(a) {
      const self = requireSelf();
      if (a.kyber) throw new PeerFailure('unsupported', `libsignal-node ${version} has no Kyber prekeys (X3DH only)`);
      const oneTime = a.one_time === undefined ? true : !!a.one_time;
      const spkId = need(a, 'signed_prekey_id', 'number');
      const out = {
        registration_id: self.registrationId,
        device_id: self.deviceId,
        identity_key: b64(self.pair.pubKey),
        prekey_id: null,
        prekey_public: null,
        signed_prekey_id: spkId,
        signed_prekey_public: null,
        signed_prekey_signature: null,
        kyber_prekey_id: null,
        kyber_prekey_public: null,
        kyber_prekey_signature: null,
      };
      if (oneTime) {
        const id = optInt(a, 'prekey_id') ?? st.nextPreKeyId++;
        if (!st.preKeys.has(id)) st.preKeys.set(id, ls.keyhelper.generatePreKey(id).keyPair);
        out.prekey_id = id;
        out.prekey_public = b64(st.preKeys.get(id).pubKey);
      }
      if (!st.signedPreKeys.has(spkId)) st.signedPreKeys.set(spkId, ls.keyhelper.generateSignedPreKey(self.pair, spkId));
      const spk = st.signedPreKeys.get(spkId);
      out.signed_prekey_public = b64(spk.keyPair.pubKey);
      out.signed_prekey_signature = b64(spk.signature);
      return out;
    },

    async process_bundle(a) {
      requireSelf();
      const b = need(a, 'bundle', 'object');
      if (a.pq_ratchet !== undefined && a.pq_ratchet !== null)
        throw new PeerFailure('unsupported', `libsignal-node ${version} has no PQ ratchet`);
      // Kyber fields, if any, are ignored: libsignal-node only knows X3DH.
      const device = {
        registrationId: need(b, 'registration_id', 'number'),
        identityKey: unb64(need(b, 'identity_key'), 'identity_key'),
        signedPreKey: {
          keyId: need(b, 'signed_prekey_id', 'number'),
          publicKey: unb64(need(b, 'signed_prekey_public'), 'signed_prekey_public'),
          signature: unb64(need(b, 'signed_prekey_signature'), 'signed_prekey_signature'),
        },
      };
      if (b.prekey_id !== null && b.prekey_id !== undefined) {
        device.preKey = { keyId: b.prekey_id, publicKey: unb64(b.prekey_public, 'prekey_public') };
      }
      await new ls.SessionBuilder(storage, addr(a)).initOutgoing(device);
      return {};
    },

    async encrypt(a) {
      requireSelf();
      const cipher = (lastCipher = new Cipher(storage, addr(a)));
      const r = await cipher.encrypt(unb64(need(a, 'plaintext'), 'plaintext'));
      // libsignal-node numbers a plain WhisperMessage 1; normalise to libsignal's 2.
      return { type: r.type === 3 ? 3 : 2, body: b64(r.body) };
    },

    async decrypt(a) {
      requireSelf();
      const cipher = (lastCipher = new Cipher(storage, addr(a)));
      const type = need(a, 'type', 'number');
      const body = unb64(need(a, 'body'), 'body');
      let pt;
      if (type === 3) pt = await cipher.decryptPreKeyWhisperMessage(body);
      else if (type === 2 || type === 1) pt = await cipher.decryptWhisperMessage(body);
      else throw new PeerFailure('invalid_message', `unknown message type ${type}`);
      return { plaintext: b64(pt) };
    },

    async trust(a) {
      need(a, 'device_id', 'number');
      st.identities.set(need(a, 'name', 'string'), unb64(need(a, 'identity_key'), 'identity_key'));
      return {};
    },

    async identity(a) {
      need(a, 'device_id', 'number');
      const b = st.identities.get(need(a, 'name', 'string'));
      return { identity_key: b ? b64(b) : null };
    },

    async has_session(a) {
      const s = st.sessions.get(addr(a).toString());
      if (!s) return { has_session: false };
      return { has_session: ls.SessionRecord.deserialize(JSON.parse(s)).haveOpenSession() };
    },

    session_record: unsupported('no libsignal-compatible session record serialization'),
    import_session: unsupported('no libsignal-compatible session record serialization'),
    group_create_distribution: unsupported('no sender keys'),
    group_process_distribution: unsupported('no sender keys'),
    group_encrypt: unsupported('no sender keys'),
    group_decrypt: unsupported('no sender keys'),
    fingerprint: unsupported('no public fingerprint API'),
    fingerprint_compare: unsupported('no public fingerprint API'),
    keypair: unsupported('no sealed sender'),
    server_certificate: unsupported('no sealed sender'),
    sender_certificate: unsupported('no sealed sender'),
    sender_certificate_info: unsupported('no sealed sender'),
    sealed_encrypt_v1: unsupported('no sealed sender'),
    sealed_encrypt_v2: unsupported('no sealed sender'),
    sealed_single_recipient: unsupported('no sealed sender'),
    sealed_parse_sent: unsupported('no sealed sender'),
    sealed_decrypt_to_usmc: unsupported('no sealed sender'),
  };

  return { version, commands, classify: (e) => classify(e, lastCipher) };
}

// ---------------------------------------------------------------------------
// Main loop.
// ---------------------------------------------------------------------------
function writeLine(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  let peer;
  try {
    if (LIB === 'node') peer = await makeNodePeer();
    else if (CLIENT_LIBS[LIB]) peer = await makeClientPeer(CLIENT_LIBS[LIB]);
    else throw new PeerFailure('unsupported', `unknown lib ${JSON.stringify(LIB)}; expected one of ls072, ls090, ls0103, node`);
  } catch (e) {
    writeLine({ error: { kind: e instanceof PeerFailure ? e.kind : 'unsupported', message: `cannot load ${LIB}: ${errorText(e)}` } });
    process.exitCode = 2;
    return;
  }
  writeLine({ ready: { lib: LIB, version: peer.version } });

  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let req;
    try {
      req = JSON.parse(line);
      if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new Error('command must be a JSON object');
    } catch (e) {
      writeLine({ error: { kind: 'other', message: `bad command line: ${errorText(e)}` } });
      continue;
    }
    const id = req.id;
    const reply = (obj) => writeLine(id === undefined ? obj : { id, ...obj });
    if (req.cmd === 'quit') {
      reply({ ok: {} });
      break;
    }
    const fn = Object.prototype.hasOwnProperty.call(peer.commands, req.cmd) ? peer.commands[req.cmd] : null;
    if (!fn) {
      reply({ error: { kind: 'unsupported', message: `unknown command ${JSON.stringify(req.cmd)}` } });
      continue;
    }
    try {
      reply({ ok: await fn(req) });
    } catch (e) {
      let err;
      try {
        err = peer.classify(e);
      } catch (e2) {
        err = { kind: 'other', message: `${errorText(e)} (while classifying: ${errorText(e2)})` };
      }
      reply({ error: err });
    }
  }
  rl.close();
  process.stdin.destroy();
}

process.on('unhandledRejection', (e) => {
  process.stderr.write(`unhandled rejection: ${errorText(e)}\n`);
});

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e) => {
    process.stderr.write(`peer crashed: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  },
);
