// Incremental-MAC interop peer around @signalapp/libsignal-client 0.103 (npm alias `ls0103`).
//
// JSON lines on stdin, one JSON answer per line on stdout. Binary values are standard base64.
// Data is either given (`data`) or generated (`gen: {size, mul, add}`: byte i = (i*mul+add) & 255)
// so large inputs need not cross the pipe.
//   {"op":"chunk_size","data_size":N}                   -> {"chunk_size":n}   (inferChunkSize)
//   {"op":"digest","key","chunk_size"|null,data|gen,"piece"} -> {"digest","chunk_size"}
//        chunk_size null means inferChunkSize(data length)
//   {"op":"validate","key","chunk_size","digest",data|gen,"piece"}
//        -> {"ok":bool,"released":n,"released_sha256","error"?}  (ValidatingPassThrough)
import { createHash } from 'node:crypto';
import * as readline from 'node:readline';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import {
  DigestingPassThrough,
  ValidatingPassThrough,
  chunkSizeInBytes,
  everyNthByte,
  inferChunkSize,
} from 'ls0103/dist/incremental_mac.js';

const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));
const enc = (u) => Buffer.from(u).toString('base64');

function input(req) {
  if (req.data !== undefined) return b64(req.data);
  const { size, mul, add } = req.gen;
  const period = new Uint8Array(256);
  for (let i = 0; i < 256; i++) period[i] = (i * mul + add) & 255;
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 256) out.set(period.subarray(0, Math.min(256, size - i)), i);
  return out;
}

function pieces(data, piece) {
  const step = piece || 65536;
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += step) yield data.subarray(i, i + step);
    })(),
    { objectMode: false }
  );
}

async function digest(req) {
  const data = input(req);
  const choice = req.chunk_size ? everyNthByte(req.chunk_size) : inferChunkSize(data.length);
  const t = new DigestingPassThrough(b64(req.key), choice);
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  await pipeline(pieces(data, req.piece), t, sink);
  return { digest: enc(t.getFinalDigest()), chunk_size: chunkSizeInBytes(choice) };
}

async function validate(req) {
  const data = input(req);
  const t = new ValidatingPassThrough(b64(req.key), everyNthByte(req.chunk_size), b64(req.digest));
  const h = createHash('sha256');
  let released = 0;
  const sink = new Writable({
    write: (c, _e, cb) => {
      released += c.length;
      h.update(c);
      cb();
    },
  });
  try {
    await pipeline(pieces(data, req.piece), t, sink);
    return { ok: true, released, released_sha256: h.digest('base64') };
  } catch (e) {
    return { ok: false, released, released_sha256: h.digest('base64'), error: String(e) };
  }
}

async function handle(req) {
  switch (req.op) {
    case 'chunk_size':
      return { chunk_size: chunkSizeInBytes(inferChunkSize(req.data_size)) };
    case 'digest':
      return digest(req);
    case 'validate':
      return validate(req);
    default:
      return { error: `unknown op ${req.op}` };
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = await handle(JSON.parse(line));
  } catch (e) {
    answer = { error: String(e && e.stack ? e.stack : e) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
