/**
 * Constants of an imported graph on the CPU (weights, shapes, axes), and the CPU work done on them
 * once at load time: half-float decoding, axis permutation, size checks against limits.
 */
import { FormatError, formatShape } from '../../runtime/errors.js';
import { raiseHint, resolveLimits, type Limits } from '../../runtime/limits.js';

/**
 * A constant on the CPU. Floats of any width are decoded to float32; integers (int32, int64 shape
 * values, bools) are int32, with int64 values beyond the int32 range clamped (they occur as
 * "to the end" slice bounds).
 */
export interface HostTensor {
  dtype: 'float32' | 'int32' | 'bool';
  shape: number[];
  data: Float32Array | Int32Array;
}

/** The number of elements of `shape` (1 for a scalar). */
export function shapeElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** IEEE half → float, by table (built on first use). */
let halfTable: Float32Array | null = null;
export function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    t[h] = e === 0 ? sign * f * 2 ** -24 : e === 31 ? (f ? NaN : sign * Infinity) : sign * (1 + f / 1024) * 2 ** (e - 15);
  }
  return (halfTable = t);
}

/**
 * NumPy broadcasting of static shapes; −1 (an unknown batch) broadcasts with 1, with itself and
 * with any size (taking that size). A FormatError when they do not broadcast.
 */
export function broadcastShapes(a: readonly number[], b: readonly number[], where: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else if (x === -1 || y === -1) out.push(x === -1 ? y : x);
    else throw new FormatError(`${where}: shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast together`);
  }
  return out;
}

/** A host tensor with its axes permuted: out.shape[i] = shape[perm[i]]. */
export function permuteHost(h: HostTensor, perm: readonly number[]): HostTensor {
  const shape = perm.map((p) => h.shape[p]!);
  const rank = h.shape.length;
  const strides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    strides[i] = s;
    s *= h.shape[i]!;
  }
  const src = perm.map((p) => strides[p]!);
  const out = h.data instanceof Float32Array ? new Float32Array(h.data.length) : new Int32Array(h.data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let at = 0;
    for (let d = 0; d < rank; d++) at += idx[d]! * src[d]!;
    out[o] = h.data[at]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return { dtype: h.dtype, shape, data: out };
}

/** The same host tensor with leading 1s added up to `rank` (NumPy broadcasting aligns trailing axes). */
export function padRank(h: HostTensor, rank: number): HostTensor {
  if (h.shape.length >= rank) return h;
  return { ...h, shape: [...new Array<number>(rank - h.shape.length).fill(1), ...h.shape] };
}

/**
 * The limits an imported graph is held to (from runtime/limits.ts: maxTensorElements and
 * maxModelBytes, process-wide or given per call), checked from the shapes the file declares
 * before anything of that size is allocated.
 */
export interface GraphLimits {
  /** The most values one tensor (a weight, or one image's activation) may hold. */
  maxElements: number;
  /** The most bytes of model file and weights the loader reads. */
  maxBytes: number;
  /** The most values one storage buffer of the device holds (Infinity without a device). */
  deviceElements: number;
}

/** The graph limits from the library's limits (`overrides` for one call), without a device bound. */
export function hostLimits(overrides?: Partial<Limits>): GraphLimits {
  const l = resolveLimits(overrides, 'limits');
  return { maxElements: l.maxTensorElements, maxBytes: l.maxModelBytes, deviceElements: Infinity };
}

/**
 * The element count of a declared shape, refusing negative, fractional or non-finite dimensions and
 * counts above `limits.maxElements`, before any allocation.
 */
export function checkedElements(shape: readonly number[], limits: GraphLimits, what: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new FormatError(`${what} has an invalid shape ${formatShape(shape)}`);
    n *= d;
  }
  if (n > limits.maxElements) {
    throw new FormatError(`${what} ${formatShape(shape)} has ${n} elements, more than the limit of ${limits.maxElements} (${raiseHint('maxTensorElements')})`);
  }
  if (n > limits.deviceElements) {
    throw new FormatError(`${what} ${formatShape(shape)} has ${n} elements, more than this device's largest storage buffer holds (${limits.deviceElements})`);
  }
  return n;
}
