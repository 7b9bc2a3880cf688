/**
 * Shape ops: reshape and flatten (views, no copy), and copies through one strided-copy kernel
 * (shaders/copy_strided.wgsl): slice, transpose, concat, broadcastTo, and slice's backward.
 * Copies of one contiguous block use a plain buffer-to-buffer copy instead.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms, type Gpu } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { assertFloat, linearWorkgroups } from './common.js';
import { broadcastShapes, fill } from './elementwise.js';
import { contiguousStrides, normalizeAxis } from './reduce.js';

const MAX_RANK = 6;
const WG = 256;

/** One strided copy: for each index of `shape`, out[outOffset + idx·outStrides] = in[inOffset + idx·inStrides]. */
interface CopyPlan {
  shape: number[];
  inStrides: number[];
  outStrides: number[];
  inOffset: number;
  outOffset: number;
}

/** Drops size-1 dims and merges adjacent dims that are contiguous on both sides. */
function simplify(plan: CopyPlan): CopyPlan {
  const shape: number[] = [];
  const si: number[] = [];
  const so: number[] = [];
  plan.shape.forEach((d, i) => {
    if (d === 1) return;
    const k = shape.length - 1;
    if (k >= 0 && si[k] === plan.inStrides[i]! * d && so[k] === plan.outStrides[i]! * d) {
      shape[k] *= d;
      si[k] = plan.inStrides[i]!;
      so[k] = plan.outStrides[i]!;
    } else {
      shape.push(d);
      si.push(plan.inStrides[i]!);
      so.push(plan.outStrides[i]!);
    }
  });
  return { shape, inStrides: si, outStrides: so, inOffset: plan.inOffset, outOffset: plan.outOffset };
}

/** Records the copy: one copyBuffer when both sides are one contiguous block, else the kernel. */
async function copyStrided(gpu: Gpu, src: Tensor, dst: Tensor, plan: CopyPlan): Promise<void> {
  const p = simplify(plan);
  const n = p.shape.reduce((a, b) => a * b, 1);
  if (p.shape.length <= 1 && (p.shape.length === 0 || (p.inStrides[0] === 1 && p.outStrides[0] === 1))) {
    gpu.copyBuffer(src.buffer, p.inOffset * 4, dst.buffer, p.outOffset * 4, n * 4);
    return;
  }
  const kernel = await gpu.kernel('copy_strided');
  const pad = (a: number[], v: number) => [...new Array<number>(MAX_RANK - a.length).fill(v), ...a];
  const shape = pad(p.shape, 1);
  const si = pad(p.inStrides, 0);
  const so = pad(p.outStrides, 0);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms()
      .vec4u(shape.slice(0, 4))
      .vec4u(shape.slice(4))
      .vec4u(si.slice(0, 4))
      .vec4u(si.slice(4))
      .vec4u(so.slice(0, 4))
      .vec4u(so.slice(4))
      .u32(p.inOffset, p.outOffset, n),
    buffers: [src, dst],
    workgroups: linearWorkgroups(gpu, n, WG),
  });
}

function assertMaxRank(op: string, shape: readonly number[]): void {
  if (shape.length > MAX_RANK) throw new ShapeError(`${op}: rank ${shape.length} > ${MAX_RANK} is not supported (${formatShape(shape)})`);
}

/** A view of x with a new shape (no copy); one dimension may be -1. Dispose it like any tensor. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return x.reshape(shape);
}

/** A view of x as [N, C·H·W…] (PyTorch's flatten from dim 1, in C, H, W order). */
export function flatten(x: Tensor): Tensor {
  if (x.rank < 1) throw new ShapeError(`flatten: x must have a batch dimension, got ${formatShape(x.shape)}`);
  return x.reshape([x.shape[0]!, x.size / x.shape[0]!]);
}

/** Validates slice arguments; returns the resolved sizes (size −1 = to the end). */
function resolveSlice(op: string, shape: readonly number[], begin: readonly number[], size: readonly number[]): number[] {
  const rank = shape.length;
  if (!Array.isArray(begin) || !Array.isArray(size) || begin.length !== rank || size.length !== rank) {
    throw new ShapeError(`${op}: begin ${JSON.stringify(begin)} and size ${JSON.stringify(size)} must each have one entry per dimension of ${formatShape(shape)}`);
  }
  return shape.map((d, i) => {
    const b = begin[i]!;
    const s = size[i] === -1 ? d - b : size[i]!;
    if (!Number.isInteger(b) || !Number.isInteger(s) || b < 0 || b >= d || s < 1 || b + s > d) {
      throw new ShapeError(
        `${op}: dimension ${i} of ${formatShape(shape)}: begin ${b}, size ${size[i]} is out of range ` +
          `(need 0 ≤ begin < ${d}, size ≥ 1 or -1, begin + size ≤ ${d})`,
      );
    }
    return s;
  });
}

/** The block of x starting at `begin` with `size` (−1 = to the end of that dimension). */
export async function slice(x: Tensor, begin: readonly number[], size: readonly number[]): Promise<Tensor> {
  const op = 'slice';
  assertMaxRank(op, x.shape);
  const sizes = resolveSlice(op, x.shape, begin, size);
  const strides = contiguousStrides(x.shape);
  const gpu = x.gpu;
  if (!isOneBlock(x.shape, begin, sizes)) await gpu.kernel('copy_strided'); // compile before allocating
  const out = empty(gpu, sizes, x.dtype);
  await copyStrided(gpu, x, out, {
    shape: sizes,
    inStrides: strides,
    outStrides: contiguousStrides(sizes),
    inOffset: begin.reduce((a, b, i) => a + b * strides[i]!, 0),
    outOffset: 0,
  });
  return out;
}

/** True when the slice is one contiguous run of x's memory. */
function isOneBlock(shape: readonly number[], begin: readonly number[], sizes: readonly number[]): boolean {
  let j = 0;
  while (j < shape.length && sizes[j] === 1) j++;
  for (let d = j + 1; d < shape.length; d++) if (sizes[d] !== shape[d] || begin[d] !== 0) return false;
  return true;
}

/**
 * Slice's backward: a zero tensor of `inputShape` with dy placed at `begin` (dy's shape is the
 * slice's size).
 */
export async function sliceBackward(dy: Tensor, inputShape: readonly number[], begin: readonly number[]): Promise<Tensor> {
  const op = 'sliceBackward';
  assertFloat(op, 'dy', dy);
  assertMaxRank(op, inputShape);
  const sizes = resolveSlice(op, inputShape, begin, dy.shape);
  if (sizes.some((s, i) => s !== dy.shape[i])) throw new ShapeError(`${op}: dy ${formatShape(dy.shape)} does not fit in ${formatShape(inputShape)} at ${JSON.stringify(begin)}`);
  const gpu = dy.gpu;
  await gpu.kernel('copy_strided');
  const dx = await fill(gpu, inputShape, 0);
  const strides = contiguousStrides(inputShape);
  await copyStrided(gpu, dy, dx, {
    shape: sizes,
    inStrides: contiguousStrides(sizes),
    outStrides: strides,
    inOffset: 0,
    outOffset: begin.reduce((a, b, i) => a + b * strides[i]!, 0),
  });
  return dx;
}

/** Throws unless `perm` is a permutation of 0..rank-1. */
export function checkPermutation(op: string, rank: number, perm: readonly number[]): void {
  const ok =
    Array.isArray(perm) &&
    perm.length === rank &&
    perm.every((p) => Number.isInteger(p) && p >= 0 && p < rank) &&
    new Set(perm).size === rank;
  if (!ok) throw new ArgumentError(`${op}: ${JSON.stringify(perm)} is not a permutation of the ${rank} axes 0..${rank - 1}`);
}

/** The inverse permutation: transpose(transpose(x, perm), inversePermutation(perm)) = x. */
export function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** out.shape[i] = x.shape[perm[i]] (NumPy's transpose(x, axes)), rank ≤ 6. */
export async function transpose(x: Tensor, perm: readonly number[]): Promise<Tensor> {
  const op = 'transpose';
  assertMaxRank(op, x.shape);
  checkPermutation(op, x.rank, perm);
  const strides = contiguousStrides(x.shape);
  const shape = perm.map((p) => x.shape[p]!);
  const gpu = x.gpu;
  await gpu.kernel('copy_strided');
  const out = empty(gpu, shape, x.dtype);
  await copyStrided(gpu, x, out, {
    shape,
    inStrides: perm.map((p) => strides[p]!),
    outStrides: contiguousStrides(shape),
    inOffset: 0,
    outOffset: 0,
  });
  return out;
}

/** Joins tensors along `axis`; all other dimensions must match. */
export async function concat(tensors: readonly Tensor[], axis: number): Promise<Tensor> {
  const op = 'concat';
  if (!Array.isArray(tensors) || tensors.length === 0) throw new ArgumentError(`${op}: needs at least one tensor`);
  const first = tensors[0]!;
  assertMaxRank(op, first.shape);
  const ax = normalizeAxis(op, first.shape, axis);
  for (let k = 0; k < tensors.length; k++) {
    const t: Tensor = tensors[k]!;
    if (t.gpu !== first.gpu) throw new ArgumentError(`${op}: tensor ${k} lives on another Gpu`);
    if (t.dtype !== first.dtype) throw new ShapeError(`${op}: tensor ${k} is ${t.dtype}, tensor 0 is ${first.dtype}`);
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new ShapeError(
        `${op}: tensor ${k} ${formatShape(t.shape)} does not match tensor 0 ${formatShape(first.shape)} outside axis ${ax}`,
      );
    }
  }
  const shape = [...first.shape];
  shape[ax] = tensors.reduce((a, t) => a + t.shape[ax]!, 0);
  const gpu = first.gpu;
  await gpu.kernel('copy_strided');
  const out = empty(gpu, shape, first.dtype);
  const outStrides = contiguousStrides(shape);
  let at = 0;
  for (const t of tensors) {
    await copyStrided(gpu, t, out, {
      shape: [...t.shape],
      inStrides: contiguousStrides(t.shape),
      outStrides,
      inOffset: 0,
      outOffset: at * outStrides[ax]!,
    });
    at += t.shape[ax]!;
  }
  return out;
}

/** A copy of x broadcast to `shape` (NumPy rules: x's dims, right-aligned, equal those of shape or are 1). */
export async function broadcastTo(x: Tensor, shape: readonly number[]): Promise<Tensor> {
  const op = 'broadcastTo';
  assertMaxRank(op, shape);
  const b = broadcastShapes(x.shape, shape, op);
  if (b.length !== shape.length || b.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`${op}: ${formatShape(x.shape)} cannot be broadcast to ${formatShape(shape)}`);
  }
  const xs = contiguousStrides(x.shape);
  const lead = shape.length - x.rank;
  const inStrides = shape.map((d, i) => {
    const j = i - lead;
    return j < 0 || x.shape[j] === 1 ? 0 : xs[j]!;
  });
  const gpu = x.gpu;
  await gpu.kernel('copy_strided');
  const out = empty(gpu, shape, x.dtype);
  await copyStrided(gpu, x, out, { shape: [...shape], inStrides, outStrides: contiguousStrides(shape), inOffset: 0, outOffset: 0 });
  return out;
}
