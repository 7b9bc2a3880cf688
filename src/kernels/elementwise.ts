/** Elementwise kernels: binary ops with broadcasting, unary ops, fill and copy. */
import { ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms, type Gpu } from '../runtime/gpu.js';
import { empty, shapeSize, type Tensor } from '../runtime/tensor.js';
import { assertFinite, assertFloat, linearWorkgroups } from './common.js';

const MAX_RANK = 6;

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min';

const BINARY_EXPR: Record<BinaryOp, string> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  max: 'max(a, b)',
  min: 'min(a, b)',
};

/** NumPy broadcasting: dimensions are aligned on the right; each pair must be equal or contain a 1. */
export function broadcastShapes(a: readonly number[], b: readonly number[], op = 'broadcast'): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast together`);
    }
    out.push(Math.max(da, db));
  }
  return out;
}

/** Element strides of `shape` seen through the rank-6 right-aligned `outShape` (0 where broadcast). */
function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = new Array<number>(MAX_RANK).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i]!;
    const pos = MAX_RANK - (shape.length - i);
    strides[pos] = d === 1 && outShape[outShape.length - (shape.length - i)] !== 1 ? 0 : s;
    s *= d;
  }
  return strides;
}

function padShape(shape: readonly number[]): number[] {
  return [...new Array<number>(MAX_RANK - shape.length).fill(1), ...shape];
}

/** out = a OP b, broadcasting a and b against each other. */
export async function binary(op: BinaryOp, a: Tensor, b: Tensor): Promise<Tensor> {
  assertFloat(op, 'a', a);
  assertFloat(op, 'b', b);
  const outShape = broadcastShapes(a.shape, b.shape, op);
  if (outShape.length > MAX_RANK) throw new ShapeError(`${op}: rank ${outShape.length} > ${MAX_RANK} is not supported`);
  const gpu = a.gpu;
  const same = sameShape(a.shape, outShape) && sameShape(b.shape, outShape);
  const kernel = await gpu.kernel('elementwise_binary', { OP: BINARY_EXPR[op], BROADCAST: !same });
  const out = empty(gpu, outShape);
  const n = out.size;
  const shape = padShape(outShape);
  const sa = broadcastStrides(a.shape, outShape);
  const sb = broadcastStrides(b.shape, outShape);
  const uniforms = new Uniforms()
    .vec4u(shape.slice(0, 4))
    .vec4u(shape.slice(4))
    .vec4u(sa.slice(0, 4))
    .vec4u(sa.slice(4))
    .vec4u(sb.slice(0, 4))
    .vec4u(sb.slice(4))
    .u32(n);
  gpu.dispatch(kernel, { uniforms, buffers: [a, b, out], workgroups: linearWorkgroups(gpu, n, 256) });
  return out;
}

export const add = (a: Tensor, b: Tensor) => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor) => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor) => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor) => binary('div', a, b);
export const maximum = (a: Tensor, b: Tensor) => binary('max', a, b);
export const minimum = (a: Tensor, b: Tensor) => binary('min', a, b);

/**
 * out = OP(x) for a WGSL expression in `x`, `alpha` and `beta`. Prefer the named wrappers below;
 * this is exported for kernels that need a one-off pointwise function.
 */
export async function unary(expr: string, x: Tensor, alpha = 0, beta = 0, name = 'unary'): Promise<Tensor> {
  assertFloat(name, 'x', x);
  assertFinite(name, { alpha, beta });
  const gpu = x.gpu;
  const kernel = await gpu.kernel('elementwise_unary', { OP: expr });
  const out = empty(gpu, x.shape);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms().u32(x.size).f32(alpha, beta),
    buffers: [x, out],
    workgroups: linearWorkgroups(gpu, x.size, 256),
  });
  return out;
}

/** alpha · x + beta. */
export const scale = (x: Tensor, alpha: number, beta = 0) => unary('alpha * x + beta', x, alpha, beta, 'scale');
export const neg = (x: Tensor) => unary('-x', x, 0, 0, 'neg');
export const abs = (x: Tensor) => unary('abs(x)', x, 0, 0, 'abs');
export const square = (x: Tensor) => unary('x * x', x, 0, 0, 'square');
export const sqrt = (x: Tensor) => unary('sqrt(x)', x, 0, 0, 'sqrt');
export const exp = (x: Tensor) => unary('exp(x)', x, 0, 0, 'exp');
export const log = (x: Tensor) => unary('log(x)', x, 0, 0, 'log');
/** min(max(x, lo), hi). */
export const clamp = (x: Tensor, lo: number, hi: number) => unary('clamp(x, alpha, beta)', x, lo, hi, 'clamp');

/** A new tensor of `shape` filled with `value`. */
export async function fill(gpu: Gpu, shape: readonly number[], value: number): Promise<Tensor> {
  assertFinite('fill', { value });
  const kernel = await gpu.kernel('fill');
  const out = empty(gpu, shape);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms().u32(out.size).f32(value),
    buffers: [out],
    workgroups: linearWorkgroups(gpu, out.size, 256),
  });
  return out;
}

export const zeros = (gpu: Gpu, shape: readonly number[]) => fill(gpu, shape, 0);
export const ones = (gpu: Gpu, shape: readonly number[]) => fill(gpu, shape, 1);

/** A copy of `x` in a new buffer. */
export function clone(x: Tensor): Tensor {
  const out = empty(x.gpu, x.shape, x.dtype);
  x.gpu.copyBuffer(x.buffer, 0, out.buffer, 0, shapeSize(x.shape) * 4);
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
