/**
 * Reductions over any set of axes: sum, mean, max (with the first argmax), max's backward, and
 * sumToShape (the reduction that undoes broadcasting, used by every broadcasting op's backward).
 *
 * The input is seen as kept and reduced groups of adjacent dimensions (see shaders/reduce.wgsl).
 * Long contiguous reductions run one workgroup per output with a tree reduction in workgroup
 * memory; reductions over outer axes or short ones run one thread per output so that neighbouring
 * threads read neighbouring values. When there are few outputs and many values each, the work is
 * split into chunks written as partials, then reduced again.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms, type Kernel } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { assertFloat, linearWorkgroups } from './common.js';
import { fill } from './elementwise.js';

const MAX_RANK = 6;
const WG = 256;
/** Workgroups the group path aims for, so that a large GPU has work on every core. */
const GROUP_TARGET = 1024;
/** Values one workgroup reduces at least before the work is split further. */
const GROUP_MIN_CHUNK = 4096;
/** Threads the thread path aims for. */
const THREAD_TARGET = 1 << 16;
/** Values one thread reduces at least before the work is split further. */
const THREAD_MIN_CHUNK = 128;

/** Axes to reduce: a list (negative counts from the end) or every axis. */
export type Axes = readonly number[] | 'all';

/** Sorted, distinct, non-negative axes; throws a ShapeError/ArgumentError for bad ones. */
export function normalizeAxes(op: string, shape: readonly number[], axes: Axes): number[] {
  const rank = shape.length;
  if (axes === 'all') return [...Array(rank).keys()];
  if (!Array.isArray(axes)) throw new ArgumentError(`${op}: axes must be an array of integers or 'all', got ${String(axes)}`);
  const out: number[] = [];
  for (const a of axes) {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw new ShapeError(`${op}: axis ${a} is out of range for a tensor of rank ${rank} ${formatShape(shape)} (valid: ${-rank}..${rank - 1})`);
    }
    const n = a < 0 ? a + rank : a;
    if (out.includes(n)) throw new ArgumentError(`${op}: axis ${a} is given twice in ${JSON.stringify(axes)}`);
    out.push(n);
  }
  return out.sort((x, y) => x - y);
}

/** The axis in 0..rank-1; throws a ShapeError when out of range. */
export function normalizeAxis(op: string, shape: readonly number[], axis: number): number {
  const rank = shape.length;
  if (!Number.isInteger(axis)) throw new ArgumentError(`${op}: axis must be an integer, got ${axis}`);
  if (rank === 0 || axis < -rank || axis >= rank) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for a tensor of rank ${rank} ${formatShape(shape)}${rank ? ` (valid: ${-rank}..${rank - 1})` : ''}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** The shape of a reduction's result. */
export function reducedShape(shape: readonly number[], axes: readonly number[], keepDims: boolean): number[] {
  const set = new Set(axes);
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!set.has(i)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

interface Group {
  size: number;
  stride: number;
}

/** A reduction seen as kept groups (numbering the outputs) and reduced groups. */
interface ReducePlan {
  kept: Group[];
  red: Group[];
  nOut: number;
  rLen: number;
}

function planReduction(shape: readonly number[], axes: readonly number[]): ReducePlan {
  const set = new Set(axes);
  const strides = contiguousStrides(shape);
  const kept: Group[] = [];
  const red: Group[] = [];
  let lastType: 'kept' | 'red' | null = null;
  shape.forEach((d, i) => {
    if (d === 1) return; // a size-1 dimension changes no offset
    const type = set.has(i) ? 'red' : 'kept';
    const list = type === 'red' ? red : kept;
    if (type === lastType) {
      // Adjacent dimensions of one kind merge: row-major strides make them one longer dimension.
      const g = list[list.length - 1]!;
      g.size *= d;
      g.stride = strides[i]!;
    } else {
      list.push({ size: d, stride: strides[i]! });
    }
    lastType = type;
  });
  const prod = (gs: Group[]) => gs.reduce((a, g) => a * g.size, 1);
  return { kept, red, nOut: prod(kept), rLen: prod(red) };
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

type Entry = 'reduce_group' | 'reduce_thread';

/** Which entry point, and into how many chunks each output's reduction is split. */
function choosePath(plan: ReducePlan): { entry: Entry; chunks: number; chunkLen: number } {
  const { nOut, rLen } = plan;
  const innermostReducedIsContiguous = plan.red.length > 0 && plan.red[plan.red.length - 1]!.stride === 1;
  let entry: Entry;
  let chunks: number;
  if (!innermostReducedIsContiguous || rLen <= 32 || (rLen <= 64 && nOut >= 1024)) {
    entry = 'reduce_thread';
    chunks = rLen <= 2 * THREAD_MIN_CHUNK ? 1 : clamp(Math.ceil(THREAD_TARGET / nOut), 1, Math.ceil(rLen / THREAD_MIN_CHUNK));
  } else {
    entry = 'reduce_group';
    chunks = clamp(Math.ceil(GROUP_TARGET / nOut), 1, Math.ceil(rLen / GROUP_MIN_CHUNK));
  }
  const chunkLen = Math.ceil(rLen / chunks);
  return { entry, chunks: Math.ceil(rLen / chunkLen), chunkLen };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}

function planUniforms(plan: ReducePlan, chunks: number, chunkLen: number, scale: number): Uniforms {
  const groups = (gs: Group[], f: (g: Group) => number, pad: number) => [0, 1, 2, 3].map((i) => (gs[i] ? f(gs[i]!) : pad));
  return new Uniforms()
    .vec4u(groups(plan.kept, (g) => g.size, 1))
    .vec4u(groups(plan.kept, (g) => g.stride, 0))
    .vec4u(groups(plan.red, (g) => g.size, 1))
    .vec4u(groups(plan.red, (g) => g.stride, 0))
    .u32(plan.kept.length, plan.red.length, plan.nOut, plan.rLen, chunks, chunkLen)
    .f32(scale);
}

interface ReduceRequest {
  op: string;
  x: Tensor;
  axes: Axes;
  keepDims: boolean;
  isMax: boolean;
  withIndices: boolean;
  mean: boolean;
}

/** Validates a reduction; returns the normalized axes, result shape and plan. */
function prepare(op: string, x: Tensor, axes: Axes, keepDims: boolean) {
  assertFloat(op, 'x', x);
  if (x.rank > MAX_RANK) throw new ShapeError(`${op}: rank ${x.rank} > ${MAX_RANK} is not supported (${formatShape(x.shape)})`);
  if (typeof keepDims !== 'boolean') throw new ArgumentError(`${op}: keepDims must be a boolean, got ${String(keepDims)}`);
  const ax = normalizeAxes(op, x.shape, axes);
  const plan = planReduction(x.shape, ax);
  if (plan.kept.length > 4 || plan.red.length > 4) throw new ShapeError(`${op}: too many separate axis groups in ${formatShape(x.shape)}`);
  return { axes: ax, outShape: reducedShape(x.shape, ax, keepDims), plan };
}

async function runReduction(req: ReduceRequest): Promise<{ values: Tensor; indices: Tensor | null }> {
  const { op, x, isMax, withIndices } = req;
  const { outShape, plan: first } = prepare(op, x, req.axes, req.keepDims);
  const gpu = x.gpu;
  const totalScale = req.mean ? 1 / first.rLen : 1;

  // Compile every pass's kernel before allocating, so that a failure leaves nothing behind.
  type Pass = { plan: ReducePlan; entry: Entry; chunks: number; chunkLen: number; kernel: Kernel; indexIn: boolean };
  const passes: Pass[] = [];
  let plan = first;
  for (;;) {
    const { entry, chunks, chunkLen } = choosePath(plan);
    const indexIn = passes.length > 0 && withIndices;
    const kernel = await gpu.kernel('reduce', { IS_MAX: isMax, INDEX_OUT: withIndices, INDEX_IN: indexIn }, entry);
    passes.push({ plan, entry, chunks, chunkLen, kernel, indexIn });
    if (chunks === 1) break;
    // Partials [nOut, chunks] reduced along their contiguous last axis.
    plan = { kept: plan.nOut > 1 ? [{ size: plan.nOut, stride: chunks }] : [], red: [{ size: chunks, stride: 1 }], nOut: plan.nOut, rLen: chunks };
  }

  let src = x;
  let srcIdx: Tensor | null = null;
  for (let k = 0; k < passes.length; k++) {
    const { plan, entry, chunks, chunkLen, kernel, indexIn } = passes[k]!;
    const last = k === passes.length - 1;
    const n = plan.nOut * chunks;
    const values = empty(gpu, last ? outShape : [n]);
    const indices = withIndices ? empty(gpu, last ? outShape : [n], 'int32') : null;
    const buffers = [src, values, ...(indices ? [indices] : []), ...(indexIn ? [srcIdx!] : [])];
    gpu.dispatch(kernel, {
      uniforms: planUniforms(plan, chunks, chunkLen, last ? totalScale : 1),
      buffers,
      workgroups: linearWorkgroups(gpu, n, entry === 'reduce_group' ? 1 : WG),
    });
    if (src !== x) src.dispose();
    srcIdx?.dispose();
    src = values;
    srcIdx = indices;
  }
  return { values: src, indices: srcIdx };
}

/** Σ of x over `axes` (negative axes count from the end). */
export async function sum(x: Tensor, axes: Axes = 'all', keepDims = false): Promise<Tensor> {
  return (await runReduction({ op: 'sum', x, axes, keepDims, isMax: false, withIndices: false, mean: false })).values;
}

/** Mean of x over `axes`. */
export async function mean(x: Tensor, axes: Axes = 'all', keepDims = false): Promise<Tensor> {
  return (await runReduction({ op: 'mean', x, axes, keepDims, isMax: false, withIndices: false, mean: true })).values;
}

/** Max of x over `axes`. */
export async function max(x: Tensor, axes: Axes = 'all', keepDims = false): Promise<Tensor> {
  return (await runReduction({ op: 'max', x, axes, keepDims, isMax: true, withIndices: false, mean: false })).values;
}

/**
 * Max of x over `axes`, and where it is: an int32 tensor of the result's shape holding, for each
 * output, the row-major position of its FIRST maximal element within the reduced axes (for one
 * axis, the index along that axis, as PyTorch's `max(dim)` returns).
 */
export async function maxWithIndices(x: Tensor, axes: Axes = 'all', keepDims = false): Promise<{ values: Tensor; indices: Tensor }> {
  const r = await runReduction({ op: 'maxWithIndices', x, axes, keepDims, isMax: true, withIndices: true, mean: false });
  return { values: r.values, indices: r.indices! };
}

/**
 * Max's backward: a tensor of `inputShape`, zero except dy at each output's argmax (`indices` from
 * maxWithIndices with the same axes).
 */
export async function maxBackward(dy: Tensor, indices: Tensor, inputShape: readonly number[], axes: Axes): Promise<Tensor> {
  const op = 'maxBackward';
  assertFloat(op, 'dy', dy);
  if (indices.dtype !== 'int32') throw new ShapeError(`${op}: indices must be int32, got ${indices.dtype}`);
  if (inputShape.length > MAX_RANK) throw new ShapeError(`${op}: rank ${inputShape.length} > ${MAX_RANK} is not supported`);
  const ax = normalizeAxes(op, inputShape, axes);
  const plan = planReduction(inputShape, ax);
  if (dy.size !== plan.nOut || indices.size !== plan.nOut) {
    throw new ShapeError(
      `${op}: dy ${formatShape(dy.shape)} and indices ${formatShape(indices.shape)} must have ${plan.nOut} values, ` +
        `one per output of a max of ${formatShape(inputShape)} over axes ${JSON.stringify(ax)}`,
    );
  }
  const gpu = dy.gpu;
  const kernel = await gpu.kernel('reduce', { IS_MAX: true, INDEX_OUT: true, INDEX_IN: false }, 'max_scatter');
  const dx = await fill(gpu, inputShape, 0);
  gpu.dispatch(kernel, {
    uniforms: planUniforms(plan, 1, plan.rLen, 1),
    buffers: [dy, dx, indices],
    workgroups: linearWorkgroups(gpu, plan.nOut, WG),
  });
  return dx;
}

/**
 * The axes along which a tensor of `from` must be summed to get `to` (NumPy broadcasting: shapes
 * aligned on the right, `to`'s dims equal to `from`'s or 1). Throws when `to` does not broadcast to `from`.
 */
export function broadcastReductionAxes(from: readonly number[], to: readonly number[], op = 'sumToShape'): number[] {
  const bad = () => new ShapeError(`${op}: ${formatShape(to)} does not broadcast to ${formatShape(from)}, so a gradient of ${formatShape(from)} cannot be summed back to it`);
  const lead = from.length - to.length;
  if (lead < 0) {
    // `to` may only have extra leading 1s.
    if (to.slice(0, -lead).some((d) => d !== 1)) throw bad();
  }
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    const j = i - lead;
    const t = j >= 0 ? to[j]! : 1;
    if (t === from[i]) continue;
    if (t !== 1) throw bad();
    axes.push(i);
  }
  return axes;
}

/**
 * Sums a broadcast gradient g back to `shape` (NumPy broadcasting rules, right-aligned). When no
 * summing is needed the result is a view of g (its own reference: dispose it as usual).
 */
export async function sumToShape(g: Tensor, shape: readonly number[]): Promise<Tensor> {
  const axes = broadcastReductionAxes(g.shape, shape);
  if (axes.length === 0) return g.reshape(shape);
  const s = await sum(g, axes, true);
  if (s.shape.length === shape.length && s.shape.every((d, i) => d === shape[i])) return s;
  const r = s.reshape(shape);
  s.dispose();
  return r;
}
