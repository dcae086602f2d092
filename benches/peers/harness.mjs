// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Shared timing code of the Node workers: the same rules as harness.py (read it first).
// A workload's makeBatch(n) prepares n operations (not timed) and returns an async `run`
// (or {run, cleanup}); verify() runs the same code end to end before anything is timed, and
// when `expect` is set every timed run must return it (the last plaintext decrypted). The
// batch size is calibrated to about BENCH_BUDGET seconds per repetition; the result is the
// median per-operation time of BENCH_REPS repetitions (process.hrtime.bigint()). One JSON
// line on stdout; logs on stderr.

export const PAYLOAD = Buffer.alloc(100, 0x42);

export function config() {
  const quick = process.env.BENCH_QUICK === '1';
  return {
    budget: Number(process.env.BENCH_BUDGET ?? (quick ? '0.02' : '0.15')),
    reps: Number(process.env.BENCH_REPS ?? (quick ? '3' : '5')),
    maxN: Number(process.env.BENCH_MAX_N ?? (quick ? '2000' : '20000')),
  };
}

export function check(got, want = PAYLOAD) {
  if (!got || !Buffer.from(got).equals(want)) throw new Error(`round trip failed: got ${got && Buffer.from(got).toString('hex').slice(0, 40)}`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function timed(wl, n) {
  const made = await wl.makeBatch(n);
  const run = typeof made === 'function' ? made : made.run;
  const cleanup = typeof made === 'function' ? null : made.cleanup;
  try {
    if (global.gc) global.gc();
    const t0 = process.hrtime.bigint();
    const out = await run();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (wl.expect) check(out, wl.expect);
    return dt;
  } finally {
    if (cleanup) await cleanup();
  }
}

async function measure(wl, cfg) {
  const cap = Math.min(cfg.maxN, wl.maxN ?? cfg.maxN);
  let n = 1;
  let dt = await timed(wl, n); // also a warm-up
  while (dt < cfg.budget * 0.25 && n < cap) {
    const grow = (cfg.budget * 0.5) / Math.max(dt, 1e-6);
    n = Math.min(cap, Math.max(n * 2, Math.floor(n * Math.min(grow, 100))));
    dt = await timed(wl, n);
  }
  n = Math.max(1, Math.min(cap, Math.round((n * cfg.budget) / Math.max(dt, 1e-9))));
  const samples = [];
  for (let i = 0; i < cfg.reps; i++) samples.push((await timed(wl, n)) / n);
  return { median_s: median(samples), samples, n, per: wl.per ?? 'op' };
}

export async function runWorkloads(report, workloads) {
  const cfg = config();
  const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : null;
  for (const wl of workloads) {
    if (only && !only.includes(wl.name)) continue;
    const row = { workload: wl.name, variant: wl.variant, compare: wl.compare ?? wl.variant, note: wl.note ?? '' };
    if (wl.unsupported) {
      row.unsupported = wl.unsupported;
      report.rows.push(row);
      continue;
    }
    const t0 = Date.now();
    try {
      if (wl.verify) await wl.verify();
      Object.assign(row, await measure(wl, cfg));
    } catch (e) {
      row.error = `${e && e.name ? e.name : 'Error'}: ${e && e.message ? e.message : e}`;
      process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    }
    const shown = row.median_s !== undefined ? `${(row.median_s * 1e6).toFixed(2).padStart(10)} us/${wl.per ?? 'op'}` : row.error;
    process.stderr.write(`  ${report.impl.padEnd(18)} ${wl.name.padEnd(14)} ${String(wl.variant).padEnd(16)} ${shown} (${((Date.now() - t0) / 1000).toFixed(1)}s)\n`);
    report.rows.push(row);
  }
}

export function emit(report) {
  process.stdout.write(JSON.stringify(report) + '\n');
}

export function fail(impl, reason) {
  process.stdout.write(JSON.stringify({ impl, error: reason }) + '\n');
}

// The generic workloads, as in harness.py. pair() resolves to {encAB, decB, encBA, decA,
// cleanup?} over a session that carried one message each way; group() to {enc, dec}.
export function pairWorkloads(variant, pair, { compare, note } = {}) {
  const verify = async () => {
    const p = await pair();
    for (let i = 0; i < 3; i++) check(await p.decB(await p.encAB(PAYLOAD)));
    for (let i = 0; i < 2; i++) {
      check(await p.decA(await p.encBA(PAYLOAD)));
      check(await p.decB(await p.encAB(PAYLOAD)));
    }
  };
  const encrypt = async (n) => {
    const p = await pair();
    check(await p.decB(await p.encAB(PAYLOAD))); // in chain from here on
    return async () => {
      for (let i = 0; i < n; i++) await p.encAB(PAYLOAD);
    };
  };
  const decrypt = async (n) => {
    const p = await pair();
    check(await p.decB(await p.encAB(PAYLOAD))); // the receiver's DH ratchet step, not timed
    const wire = [];
    for (let i = 0; i < n; i++) wire.push(await p.encAB(PAYLOAD));
    return async () => {
      let pt = null;
      for (const w of wire) pt = await p.decB(w);
      return pt;
    };
  };
  const pingpong = async (n) => {
    const p = await pair();
    return async () => {
      let pt = null;
      for (let i = 0; i < n; i++) {
        await p.decB(await p.encAB(PAYLOAD));
        pt = await p.decA(await p.encBA(PAYLOAD));
      }
      return pt;
    };
  };
  const c = compare ?? variant;
  return [
    { name: 'encrypt', variant, makeBatch: encrypt, verify, compare: c, note },
    { name: 'decrypt', variant, makeBatch: decrypt, verify, expect: PAYLOAD, compare: c, note },
    { name: 'pingpong', variant, makeBatch: pingpong, verify, expect: PAYLOAD, compare: c, note, per: 'rt' },
  ];
}

export function groupWorkloads(variant, group, { compare, note } = {}) {
  const verify = async () => {
    const g = await group();
    for (let i = 0; i < 3; i++) check(await g.dec(await g.enc(PAYLOAD)));
  };
  const encrypt = async (n) => {
    const g = await group();
    return async () => {
      for (let i = 0; i < n; i++) await g.enc(PAYLOAD);
    };
  };
  const decrypt = async (n) => {
    const g = await group();
    const wire = [];
    for (let i = 0; i < n; i++) wire.push(await g.enc(PAYLOAD));
    return async () => {
      let pt = null;
      for (const w of wire) pt = await g.dec(w);
      return pt;
    };
  };
  const c = compare ?? variant;
  return [
    { name: 'group_encrypt', variant, makeBatch: encrypt, verify, compare: c, note },
    { name: 'group_decrypt', variant, makeBatch: decrypt, verify, expect: PAYLOAD, compare: c, note },
  ];
}

// prepare(n) resolves to n async calls, each: process a fresh recipient's bundle, encrypt the
// first message, have the recipient decrypt it, return the plaintext.
export function handshakeWorkload(variant, prepare, { compare, note } = {}) {
  return {
    name: 'handshake',
    variant,
    compare: compare ?? variant,
    note,
    expect: PAYLOAD,
    verify: async () => {
      for (const call of await prepare(2)) check(await call());
    },
    makeBatch: async (n) => {
      const calls = await prepare(n);
      return async () => {
        let pt = null;
        for (const call of calls) pt = await call();
        return pt;
      };
    },
  };
}

export function x25519Workload(agree, verify) {
  return {
    name: 'x25519',
    variant: '',
    compare: '',
    verify,
    makeBatch: async (n) => async () => {
      for (let i = 0; i < n; i++) agree();
    },
  };
}
