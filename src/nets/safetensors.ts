/**
 * Reader and writer for the safetensors format (Hugging Face), the weight format PyTorch users
 * already have:
 *
 *   [u64 little-endian N] [N bytes of JSON header, space-padded] [raw little-endian tensor data]
 *
 * The header maps each tensor name to { dtype, shape, data_offsets: [begin, end] } (offsets into
 * the data section), plus an optional "__metadata__" map of strings. We read F32, F16, BF16, F64,
 * I32, I64, I16, I8, U8 and BOOL into Float32Array, and write F32.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { raiseHint, resolveLimits, type Limits } from '../runtime/limits.js';

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, NamedArray & { dtype: string }>;
  metadata: Record<string, string>;
}

const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** A string from a file, cut for an error message. */
const cut = (s: string, max = 200) => (s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`);

/** Largest header we accept (the reference implementation uses 100 MB). */
const MAX_HEADER = 100_000_000;

export interface ParseSafetensorsOptions {
  /** Limits for this file (default: the process-wide ones): each tensor's elements (`maxTensorElements`). */
  limits?: Partial<Limits>;
}

/**
 * Parses a safetensors file. Throws an ArgumentError naming the problem for corrupt input. Safe
 * for files from strangers: every declared size is checked against the file and the limits before
 * anything is allocated, and `metadata` has no prototype (a key '__proto__' is an ordinary key).
 */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors file', options: ParseSafetensorsOptions = {}): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new ArgumentError(`parseSafetensors: expected bytes (Uint8Array), got ${typeof bytes}`);
  const limits = resolveLimits(options.limits, 'parseSafetensors');
  const fail = (why: string) => new ArgumentError(`${source} is not a valid safetensors file: ${why}`);
  if (bytes.byteLength < 8) throw fail(`only ${bytes.byteLength} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER || 8 + headerLength > bytes.byteLength) {
    throw fail(`header length ${headerLength} exceeds the file size ${bytes.byteLength}`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw fail(`header is not JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw fail('header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = Object.create(null);
  const tensors = new Map<string, NamedArray & { dtype: string }>();
  const ranges: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (entry && typeof entry === 'object') {
        for (const [k, v] of Object.entries(entry)) {
          if (typeof v !== 'string') throw fail(`metadata value '${cut(k)}' is not a string`);
          metadata[k] = v;
        }
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e?.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) {
      throw fail(`tensor '${cut(name)}' has unsupported dtype ${cut(String(JSON.stringify(e?.dtype)))}`);
    }
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw fail(`tensor '${cut(name)}' has an invalid shape ${cut(String(JSON.stringify(e.shape)))}`);
    }
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      throw fail(`tensor '${cut(name)}' has invalid data_offsets ${cut(String(JSON.stringify(offsets)))}`);
    }
    const [begin, end] = offsets as [number, number];
    const shape = e.shape as number[];
    const count = shape.reduce((a, b) => a * b, 1);
    if (count > limits.maxTensorElements) {
      throw fail(`tensor '${cut(name)}' of shape ${formatShape(shape)} has ${count} elements, more than the limit of ${limits.maxTensorElements} (${raiseHint('maxTensorElements')})`);
    }
    const expectedBytes = count * DTYPE_BYTES[e.dtype]!;
    if (end < begin || end > dataLength) {
      throw fail(`tensor '${cut(name)}' data [${begin}, ${end}) lies outside the ${dataLength}-byte data section (truncated file?)`);
    }
    if (end - begin !== expectedBytes) {
      throw fail(`tensor '${cut(name)}' of shape ${formatShape(shape)} and dtype ${e.dtype} needs ${expectedBytes} bytes, the file gives ${end - begin}`);
    }
    ranges.push([begin, end, name]);
    tensors.set(name, { dtype: e.dtype, shape, data: decode(bytes, dataStart + begin, count, e.dtype) });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]![0] < ranges[i - 1]![1]) throw fail(`tensors '${cut(ranges[i - 1]![2])}' and '${cut(ranges[i]![2])}' overlap`);
  }
  return { tensors, metadata };
}

function decode(bytes: Uint8Array, offset: number, count: number, dtype: string): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * DTYPE_BYTES[dtype]!);
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      break;
    case 'BF16': {
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < count; i++) {
        tmp.setUint32(0, view.getUint16(i * 2, true) << 16, true);
        out[i] = tmp.getFloat32(0, true);
      }
      break;
    }
    case 'I64':
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(i * 8, true));
      break;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      break;
    case 'I16':
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
      break;
    case 'I8':
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      break;
    default: // U8, BOOL
      for (let i = 0; i < count; i++) out[i] = view.getUint8(i);
  }
  return out;
}

/** IEEE 754 half precision to float. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Serialises float32 tensors (names sorted, as the reference implementation does). */
export function serializeSafetensors(tensors: Record<string, NamedArray>, metadata: Record<string, string> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const { shape, data } = tensors[name]!;
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== data.length) {
      throw new ShapeError(`safetensors: '${name}' has ${data.length} values but shape ${formatShape(shape)}`);
    }
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.length * 4] };
    offset += data.length * 4;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8; // keeps the data section 8-byte aligned
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const name of names) {
    const { data } = tensors[name]!;
    for (let i = 0; i < data.length; i++) view.setFloat32(pos + i * 4, data[i]!, true);
    pos += data.length * 4;
  }
  return out;
}
