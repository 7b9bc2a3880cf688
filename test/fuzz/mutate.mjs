/**
 * Seeded mutations of real files for the fuzz suite: byte-level changes (bit flips, interesting
 * values, cuts, insertions, duplicated slices) and structure-aware ones (a JSON value anywhere in a
 * model.json or a safetensors header replaced by an interesting value, a key renamed to
 * '__proto__', a PNG or JPEG header field changed). Everything is drawn from one seeded generator,
 * so a failing case is reproduced from its seed.
 */

/** Mulberry32: a small seeded generator. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
  };
  return r;
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x20, 0x22, 0x2c, 0x5b, 0x7b];
const INTERESTING_U32 = [0, 1, 2, 0x7f, 0xff, 0x100, 0x7fff, 0xffff, 30000, 100000, 0x7fffffff, 0x80000000, 0xffffffff];
const INTERESTING_NUMBERS = [0, -1, 1, 2, 3, 0.5, -0.5, 7, 64, 255, 256, 1000, 30000, 65536, 100000, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1e300, -1e300, 1e-300];
const INTERESTING_STRINGS = [
  '',
  '__proto__',
  'constructor',
  'toString',
  'prototype',
  'hasOwnProperty',
  '__proto__.allowMissing',
  'constructor.weight',
  '../../../../etc/passwd',
  '../../dev/zero',
  '/dev/zero',
  '/etc/passwd',
  'C:\\windows',
  'file:///etc/passwd',
  'http://example.invalid/x',
  '%',
  '%00',
  '\u0000',
  '\ud800',
  'x'.repeat(5000),
  'F32',
  'F16',
  'I64',
  'BOOL',
  'float32',
  'int32',
  'uint8',
  'float16',
  'graph-model',
  'layers-model',
  'Conv2D',
  'Relu',
  'Placeholder',
  'Const',
  'SAME',
  'VALID',
  'NHWC',
  'NCHW',
  'AAAA',
  '!!!!',
  'conv1',
  'gap',
  'linear',
  'conv2d',
  'batchnorm',
];

function interestingValue(r, depth = 0) {
  switch (r.int(depth > 1 ? 4 : 7)) {
    case 0:
      return r.pick(INTERESTING_NUMBERS);
    case 1:
      return r.pick(INTERESTING_STRINGS);
    case 2:
      return r.pick([null, true, false]);
    case 3:
      return r.int(3) === 0 ? -r.int(10) : r.int(100);
    case 4:
      return [];
    case 5:
      return {};
    default:
      return Array.from({ length: r.int(5) }, () => interestingValue(r, depth + 1));
  }
}

/** Every [container, key] pair in a JSON value (objects and arrays), in document order. */
function slots(value, out = []) {
  if (value && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      out.push([value, key]);
      slots(value[key], out);
    }
  }
  return out;
}

/** Changes 1–3 places of a parsed JSON value in place (and returns the new root, which may be replaced). */
export function mutateJson(root, r) {
  const edits = 1 + r.int(3);
  for (let e = 0; e < edits; e++) {
    const all = slots(root);
    if (!all.length) return interestingValue(r);
    const [obj, key] = r.pick(all);
    const old = obj[key];
    switch (r.int(9)) {
      case 0: // replace by an interesting value
        obj[key] = interestingValue(r);
        break;
      case 1: // delete
        if (Array.isArray(obj)) obj.splice(Number(key), 1);
        else delete obj[key];
        break;
      case 2: // a number nudged or made extreme
        obj[key] = typeof old === 'number' ? r.pick([old + 1, old - 1, old * 2, -old, old * 1000, r.pick(INTERESTING_NUMBERS)]) : r.pick(INTERESTING_NUMBERS);
        break;
      case 3: // a string changed
        obj[key] = typeof old === 'string' ? r.pick([old + r.pick(INTERESTING_STRINGS), old.slice(0, r.int(old.length + 1)), r.pick(INTERESTING_STRINGS)]) : r.pick(INTERESTING_STRINGS);
        break;
      case 4: // the key renamed to a dangerous one (objects), or the element duplicated (arrays)
        if (Array.isArray(obj)) obj.splice(Number(key), 0, structuredClone(old));
        else {
          const name = r.pick(['__proto__', 'constructor', 'toString', 'prototype', `${key}.${key}`, '']);
          delete obj[key];
          Object.defineProperty(obj, name, { value: old, enumerable: true, writable: true, configurable: true });
        }
        break;
      case 5: // wrapped in a list or an object
        obj[key] = r.chance(0.5) ? [old] : { value: old };
        break;
      case 6: // a type swapped: number ↔ string, list ↔ object
        obj[key] = typeof old === 'number' ? String(old) : typeof old === 'string' ? Number(old) || old.length : Array.isArray(old) ? Object.assign({}, old) : old && typeof old === 'object' ? Object.values(old) : String(old);
        break;
      case 7: // a value copied from elsewhere in the document
        obj[key] = structuredClone(r.pick(all)[0]);
        break;
      default: // a list made long
        if (Array.isArray(old)) obj[key] = [...old, ...old, ...old];
        else obj[key] = Array.from({ length: 1 + r.int(8) }, () => old);
    }
  }
  return root;
}

/** 1–4 byte-level changes; returns a new array. */
export function mutateBytes(bytes, r, { from = 0 } = {}) {
  let b = new Uint8Array(bytes);
  const n = 1 + r.int(4);
  for (let k = 0; k < n; k++) {
    const at = () => Math.min(b.length - 1, from + r.int(Math.max(1, b.length - from)));
    if (b.length === 0) return new Uint8Array([r.int(256)]);
    switch (r.int(8)) {
      case 0:
        b[at()] ^= 1 << r.int(8);
        break;
      case 1:
        b[at()] = r.pick(INTERESTING_BYTES);
        break;
      case 2: {
        const i = at();
        const v = r.pick(INTERESTING_U32);
        const le = r.chance(0.5);
        for (let j = 0; j < 4 && i + j < b.length; j++) b[i + j] = le ? (v >>> (8 * j)) & 255 : (v >>> (8 * (3 - j))) & 255;
        break;
      }
      case 3: // truncate
        b = b.subarray(0, r.chance(0.5) ? at() : Math.max(0, b.length - 1 - r.int(64)));
        break;
      case 4: {
        // insert random bytes
        const i = at();
        const ins = Uint8Array.from({ length: 1 + r.int(16) }, () => r.int(256));
        b = concat(b.subarray(0, i), ins, b.subarray(i));
        break;
      }
      case 5: {
        // delete a slice
        const i = at();
        b = concat(b.subarray(0, i), b.subarray(Math.min(b.length, i + 1 + r.int(64))));
        break;
      }
      case 6: {
        // duplicate a slice
        const i = at();
        const j = Math.min(b.length, i + 1 + r.int(256));
        b = concat(b.subarray(0, j), b.subarray(i, j), b.subarray(j));
        break;
      }
      default: // a run of one value
        {
          const i = at();
          b.fill(r.pick(INTERESTING_BYTES), i, Math.min(b.length, i + 1 + r.int(32)));
        }
        break;
    }
  }
  return b;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A safetensors file with its header JSON changed structurally (the length prefix kept right), or its bytes. */
export function mutateSafetensors(bytes, r) {
  if (r.chance(0.35)) return mutateBytes(bytes, r);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  // Often the embedded spec (a JSON string inside the metadata) rather than the tensor table.
  if (header.__metadata__?.spec && r.chance(0.5)) {
    header.__metadata__.spec = JSON.stringify(mutateJson(JSON.parse(header.__metadata__.spec), r));
  } else {
    mutateJson(header, r);
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + (bytes.length - 8 - n));
  new DataView(out.buffer).setBigUint64(0, BigInt(r.chance(0.95) ? json.length : r.pick([0, json.length + 1, json.length - 1, 2 ** 40])), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + n), 8 + json.length);
  return out;
}

/** A TF.js model: { json: text, shard: bytes } with the JSON changed structurally or as text, or the shard's bytes. */
export function mutateTfjs(seed, r) {
  const k = r.int(10);
  if (k < 6) return { json: JSON.stringify(mutateJson(JSON.parse(seed.json), r)), shard: seed.shard };
  if (k < 8) return { json: new TextDecoder().decode(mutateBytes(new TextEncoder().encode(seed.json), r)), shard: seed.shard };
  return { json: seed.json, shard: mutateBytes(seed.shard, r) };
}

const PNG_CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = PNG_CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG with an IHDR field changed (its CRC fixed, mostly), or its bytes. */
export function mutatePng(bytes, r) {
  if (r.chance(0.5) || bytes.length < 33) return mutateBytes(bytes, r, { from: r.chance(0.3) ? 0 : 8 });
  const b = new Uint8Array(bytes);
  const dv = new DataView(b.buffer);
  switch (r.int(5)) {
    case 0:
      dv.setUint32(16, r.pick(INTERESTING_U32));
      break;
    case 1:
      dv.setUint32(20, r.pick(INTERESTING_U32));
      break;
    case 2:
      b[24] = r.pick([1, 2, 4, 8, 16, 3, 0, 255]);
      break;
    case 3:
      b[25] = r.pick([0, 2, 3, 4, 6, 1, 7, 255]);
      break;
    default:
      b[28] = r.pick([0, 1, 2]);
  }
  if (r.chance(0.9)) dv.setUint32(29, crc32(b.subarray(12, 29)));
  return b;
}

/** A JPEG with its frame size changed (from the SOF segment), or its bytes. */
export function mutateJpeg(bytes, r) {
  const b = new Uint8Array(bytes);
  let at = 2;
  while (at + 9 < b.length && b[at] === 0xff && !(b[at + 1] >= 0xc0 && b[at + 1] <= 0xc2)) at += 2 + ((b[at + 2] << 8) | b[at + 3]);
  if (r.chance(0.5) || at + 9 >= b.length) return mutateBytes(bytes, r);
  const dv = new DataView(b.buffer);
  const field = r.pick([5, 7]);
  dv.setUint16(at + field, r.pick([0, 1, 2, 100, 1000, 8192, 30000, 65535]));
  if (r.chance(0.3)) b[at + 9] = r.pick([0, 1, 3, 4, 255]); // components
  return b;
}
