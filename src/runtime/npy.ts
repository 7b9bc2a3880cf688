/**
 * NumPy's `.npy` format (version 1.0), float32 little-endian, C
 * order: what `numpy.load` reads directly. Node-only (`writeNpy` writes through `writeFileAtomic`).
 *
 * - `encodeNpy(data, shape)`: the file's bytes, identical to `numpy.save` of the same float32 array
 *   (tested against files numpy wrote: test/fixtures/npy, made by scripts/make-npy-fixtures.py).
 * - `writeNpy(path, data, shape)`: the same, written atomically (temporary name, then rename).
 * - `decodeNpy(bytes)`: reads a float32 `.npy` back, checking the header against the bytes there.
 *
 * The layout (numpy/lib/format.py): the magic `\x93NUMPY`, the version (1, 0), the header length
 * (uint16 LE; uint32 in version 2.0), then an ASCII Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and ended by
 * '\n' so that the data starts at a multiple of 64 bytes, then the values.
 */
import { FormatError, ArgumentError } from './errors.js';
import { writeFileAtomic } from './files.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;

/** A float32 array as read from a `.npy` file. */
export interface NpyArray {
  data: Float32Array;
  shape: number[];
}

function checkShape(op: string, data: Float32Array, shape: readonly number[]): void {
  if (!(data instanceof Float32Array)) throw new ArgumentError(`${op}: data must be a Float32Array`);
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new ArgumentError(`${op}: shape must be a list of whole numbers ≥ 0, got ${JSON.stringify(shape)}`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== data.length) throw new ArgumentError(`${op}: shape [${shape.join(', ')}] holds ${size} values, data has ${data.length}`);
}

/** The header dict as numpy writes it: a 1-tuple keeps its comma, `(3,)`. */
function headerText(shape: readonly number[]): string {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  return `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
}

/** The bytes of a `.npy` file holding `data` as a float32 array of `shape` (C order). */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  checkShape('encodeNpy', data, shape);
  const dict = headerText(shape);
  const prefix = MAGIC.length + 2 + 2; // magic, version 1.0, uint16 header length
  const total = Math.ceil((prefix + dict.length + 1) / ALIGN) * ALIGN;
  if (total - prefix > 0xffff) throw new ArgumentError(`encodeNpy: a shape of rank ${shape.length} does not fit a version 1.0 header`);
  const headerLength = total - prefix;
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, headerLength, true);
  const text = dict + ' '.repeat(headerLength - dict.length - 1) + '\n';
  for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i);
  const values = new DataView(out.buffer, total);
  for (let i = 0; i < data.length; i++) values.setFloat32(4 * i, data[i]!, true);
  return out;
}

/** Writes `data` as a float32 `.npy` file of `shape`, atomically (a reader never sees half a file). */
export function writeNpy(path: string, data: Float32Array, shape: readonly number[]): void {
  writeFileAtomic(path, encodeNpy(data, shape));
}

/**
 * Reads a float32, C-order `.npy` file (version 1.0, 2.0 or 3.0). Anything else, and any header that
 * does not match the bytes that follow it, is a FormatError. `name` is used in error messages.
 */
export function decodeNpy(bytes: Uint8Array, name = '.npy data'): NpyArray {
  if (!(bytes instanceof Uint8Array)) throw new ArgumentError('decodeNpy: expected bytes (Uint8Array)');
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) throw new FormatError(`${name} is not a .npy file (no \\x93NUMPY magic)`);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new FormatError(`${name}: unknown .npy version ${major}.${bytes[7]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const wide = major >= 2;
  const prefix = wide ? 12 : 10;
  if (bytes.length < prefix) throw new FormatError(`${name}: the .npy header is cut short`);
  const headerLength = wide ? view.getUint32(8, true) : view.getUint16(8, true);
  const start = prefix + headerLength;
  if (start > bytes.length) throw new FormatError(`${name}: the .npy header claims ${headerLength} bytes; the file has ${bytes.length - prefix} after the prefix`);
  let header = '';
  for (let i = prefix; i < start; i++) header += String.fromCharCode(bytes[i]!);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const dims = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || dims === undefined) throw new FormatError(`${name}: the .npy header is not a dict with descr, fortran_order and shape`);
  if (descr !== '<f4') throw new FormatError(`${name}: holds '${descr}' values; only float32 ('<f4') is read`);
  if (fortran !== 'False') throw new FormatError(`${name}: is in Fortran order; only C order is read`);
  const parts = dims.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.some((s) => !/^\d{1,15}$/.test(s))) throw new FormatError(`${name}: the .npy shape (${dims}) is not a tuple of whole numbers`);
  const shape = parts.map(Number);
  const size = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(size * 4) || bytes.length - start !== size * 4) {
    throw new FormatError(`${name}: the shape (${shape.join(', ')}) needs ${size * 4} bytes of data; the file has ${bytes.length - start}`);
  }
  const data = new Float32Array(size);
  const values = new DataView(bytes.buffer, bytes.byteOffset + start, size * 4);
  for (let i = 0; i < size; i++) data[i] = values.getFloat32(4 * i, true);
  return { data, shape };
}
