/**
 * The weights of a TF.js model.json: float32, int32 and bool, or quantised to uint8/uint16
 * (value = q·scale + min) or float16. Each group's bytes are checked against the manifest before
 * decoding, and a NaN in a decoded weight is reported as a corrupt file.
 */
import { FormatError } from '../../runtime/errors.js';
import { concatBytes } from '../../runtime/fetch.js';
import { checkedElements, halfToFloatTable, hostLimits, shapeElements, type GraphLimits, type HostTensor } from '../graph/host.js';
import { entryBytes, type TfjsWeightEntry, type TfjsWeightsGroup } from './format.js';

/** Copies `n` values of `bytes` at `offset` into an aligned typed array. */
function view<T extends Float32Array | Int32Array | Uint16Array | Uint8Array>(
  Ctor: { new (b: ArrayBuffer): T; BYTES_PER_ELEMENT: number },
  bytes: Uint8Array,
  offset: number,
  n: number,
): T {
  const copy = bytes.slice(offset, offset + n * Ctor.BYTES_PER_ELEMENT);
  return new Ctor(copy.buffer);
}

function decodeEntry(e: TfjsWeightEntry, bytes: Uint8Array, offset: number, file: string): HostTensor {
  const n = shapeElements(e.shape);
  const q = e.quantization;
  let values: Float32Array;
  if (!q) {
    if (e.dtype === 'float32') values = view(Float32Array, bytes, offset, n);
    else if (e.dtype === 'int32') return { dtype: 'int32', shape: [...e.shape], data: view(Int32Array, bytes, offset, n) };
    else return { dtype: 'bool', shape: [...e.shape], data: Int32Array.from(bytes.subarray(offset, offset + n)) };
  } else if (q.dtype === 'float16') {
    const table = halfToFloatTable();
    const h = view(Uint16Array, bytes, offset, n);
    values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = table[h[i]!]!;
  } else {
    const { min, scale } = q;
    if (typeof min !== 'number' || typeof scale !== 'number' || !Number.isFinite(min) || !Number.isFinite(scale)) {
      throw new FormatError(`${file}: weight '${e.name}' is quantised to ${q.dtype} without a finite min and scale`);
    }
    const raw = q.dtype === 'uint8' ? bytes.subarray(offset, offset + n) : view(Uint16Array, bytes, offset, n);
    values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = raw[i]! * scale + min;
    if (e.dtype === 'int32') return { dtype: 'int32', shape: [...e.shape], data: Int32Array.from(values, Math.round) };
  }
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) throw new FormatError(`${file}: weight '${e.name}' holds NaN at index ${i}: the weights file is corrupt`);
    if (!Number.isFinite(v)) throw new FormatError(`${file}: weight '${e.name}' holds ${v} at index ${i}: weights must be finite`);
  }
  return { dtype: 'float32', shape: [...e.shape], data: values };
}

/**
 * The bytes each manifest group declares, every entry's shape checked against the limits first (a
 * declared size is never allocated before it passes).
 */
export function manifestBytes(manifest: readonly TfjsWeightsGroup[], source: string, limits: GraphLimits = hostLimits()): number[] {
  const need = manifest.map((g) => g.weights.reduce((a, e) => (checkedElements(e.shape, limits, `${source}: weight '${e.name}'`), a + entryBytes(e, source)), 0));
  const total = need.reduce((a, b) => a + b, 0);
  if (total > limits.maxBytes) throw new FormatError(`${source} lists ${total} bytes of weights, more than the limit of ${limits.maxBytes}`);
  return need;
}

/**
 * Decodes the weights of a model.json. `shards[g][k]` holds the bytes of file k of manifest group g.
 * Each group's byte count is checked against the manifest first: a truncated or padded file gets a
 * FormatError that names it.
 */
export function decodeTfjsWeights(
  manifest: readonly TfjsWeightsGroup[],
  shards: readonly (readonly Uint8Array[])[],
  source = 'model.json',
  limits: GraphLimits = hostLimits(),
): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  const needs = manifestBytes(manifest, source, limits);
  manifest.forEach((group, g) => {
    const files = group.paths ?? [];
    const parts = shards[g] ?? [];
    const need = needs[g]!;
    const have = parts.reduce((a, p) => a + p.byteLength, 0);
    if (have !== need) {
      // Converter shards all have the same size but the last: blame the odd one out.
      const sizes = parts.map((p) => p.byteLength);
      const full = Math.max(...sizes);
      let bad = have > need ? sizes.indexOf(full) : sizes.findIndex((b, k) => k < sizes.length - 1 && b < full);
      if (bad < 0) bad = parts.length - 1;
      const name = files[bad] ?? `weight group ${g}`;
      const others = files.length > 1 ? ` (together with ${files.filter((_, k) => k !== bad).join(', ')})` : '';
      throw new FormatError(
        `weights file '${name}'${others} holds ${have} bytes, but ${source} lists ${need} bytes of weights for it: the file is ${have < need ? 'truncated' : 'corrupt (too long)'}`,
      );
    }
    const bytes = concatBytes(parts);
    let offset = 0;
    const file = files.join(', ') || source;
    for (const e of group.weights) {
      out.set(e.name, decodeEntry(e, bytes, offset, file));
      offset += entryBytes(e, source);
    }
  });
  return out;
}
