/**
 * Softmax and log-softmax along any axis, numerically stable (the row's max is subtracted before
 * exp), and their backward passes. The tensor is seen as [outer, len, inner] around the axis, so no
 * transpose is needed for axis ≠ -1 (e.g. softmax over the channels of an NCHW map).
 */
import { Uniforms } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { assertFloat, assertSameShape, linearWorkgroups } from './common.js';
import { normalizeAxis } from './reduce.js';

const WG = 256;

interface RowView {
  rows: number;
  len: number;
  inner: number;
}

function rowView(shape: readonly number[], axis: number): RowView {
  const prod = (a: readonly number[]) => a.reduce((x, y) => x * y, 1);
  const outer = prod(shape.slice(0, axis));
  const inner = prod(shape.slice(axis + 1));
  return { rows: outer * inner, len: shape[axis]!, inner };
}

/** Long rows get a workgroup each; short rows, or rows interleaved in memory (inner > 1), a thread. */
function entryFor(v: RowView): 'softmax_group' | 'softmax_thread' {
  return v.len <= 64 || (v.inner > 1 && v.rows >= 1024) ? 'softmax_thread' : 'softmax_group';
}

async function run(op: string, log: boolean, inputs: { x?: Tensor; dy?: Tensor; y?: Tensor }, axis: number): Promise<Tensor> {
  const main = (inputs.x ?? inputs.dy)!;
  const backward = !inputs.x;
  if (backward) {
    assertFloat(op, 'dy', inputs.dy!);
    assertFloat(op, 'y', inputs.y!);
    assertSameShape(op, inputs.dy!, inputs.y!, ['dy', 'y']);
  } else {
    assertFloat(op, 'x', main);
  }
  const ax = normalizeAxis(op, main.shape, axis);
  const view = rowView(main.shape, ax);
  const entry = entryFor(view);
  const gpu = main.gpu;
  const kernel = await gpu.kernel('softmax', { LOG: log, BACKWARD: backward }, entry);
  const out = empty(gpu, main.shape);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms().u32(view.rows, view.len, view.inner),
    buffers: backward ? [inputs.dy!, inputs.y!, out] : [main, out],
    workgroups: linearWorkgroups(gpu, view.rows, entry === 'softmax_group' ? 1 : WG),
  });
  return out;
}

/** exp(x − max) / Σ exp(x − max) along `axis`. */
export function softmax(x: Tensor, axis = -1): Promise<Tensor> {
  return run('softmax', false, { x }, axis);
}

/** x − max − log Σ exp(x − max) along `axis`. */
export function logSoftmax(x: Tensor, axis = -1): Promise<Tensor> {
  return run('logSoftmax', true, { x }, axis);
}

/** Softmax's backward from its output y: dx = y · (dy − Σ dy·y). */
export function softmaxBackward(dy: Tensor, y: Tensor, axis = -1): Promise<Tensor> {
  return run('softmaxBackward', false, { dy, y }, axis);
}

/** Log-softmax's backward from its output y: dx = dy − exp(y) · Σ dy. */
export function logSoftmaxBackward(dy: Tensor, y: Tensor, axis = -1): Promise<Tensor> {
  return run('logSoftmaxBackward', true, { dy, y }, axis);
}
