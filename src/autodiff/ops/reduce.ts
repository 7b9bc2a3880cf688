/**
 * Differentiable reductions and softmax. sum and mean send the gradient back by broadcasting it
 * over the reduced axes; max sends it to the first maximal element of each reduced block only.
 */
import type { Tensor } from '../../runtime/tensor.js';
import * as reduce from '../../kernels/reduce.js';
import { normalizeAxes, normalizeAxis, reducedShape, type Axes } from '../../kernels/reduce.js';
import * as sm from '../../kernels/softmax.js';
import { broadcastTo } from '../../kernels/shape.js';
import { scale } from '../../kernels/elementwise.js';
import { activeTape, defineOp } from '../tape.js';

interface ReduceSaved {
  shape: readonly number[];
  axes: number[];
}

/** dy (the reduction's output gradient) broadcast back over the reduced axes of `shape`. */
async function spread(dy: Tensor, { shape, axes }: ReduceSaved): Promise<Tensor> {
  const kept = dy.reshape(reducedShape(shape, axes, true));
  try {
    return await broadcastTo(kept, shape);
  } finally {
    kept.dispose();
  }
}

const sumDef = defineOp<ReduceSaved>('sum', async (dy, ctx) => [ctx.needsGrad[0] ? await spread(dy, ctx.saved) : null]);

/** Σ of x over `axes` (negative axes count from the end). */
export async function sum(x: Tensor, axes: Axes = 'all', keepDims = false): Promise<Tensor> {
  const y = await reduce.sum(x, axes, keepDims);
  sumDef.record([x], y, { shape: x.shape, axes: normalizeAxes('sum', x.shape, axes) });
  return y;
}

const meanDef = defineOp<ReduceSaved>('mean', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const saved = ctx.saved;
  const count = saved.axes.reduce((a, i) => a * saved.shape[i]!, 1);
  const scaled = await scale(dy, 1 / count, 0); // scale the small tensor, then broadcast
  try {
    return [await spread(scaled, saved)];
  } finally {
    scaled.dispose();
  }
});

/** Mean of x over `axes`. */
export async function mean(x: Tensor, axes: Axes = 'all', keepDims = false): Promise<Tensor> {
  const y = await reduce.mean(x, axes, keepDims);
  meanDef.record([x], y, { shape: x.shape, axes: normalizeAxes('mean', x.shape, axes) });
  return y;
}

const maxDef = defineOp<ReduceSaved & { indices: Tensor }>('max', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { shape, axes, indices } = ctx.saved;
  return [await reduce.maxBackward(dy, indices, shape, axes)];
});

/** Max of x over `axes`; its gradient goes to the first maximal element of each block. */
export async function max(x: Tensor, axes: Axes = 'all', keepDims = false): Promise<Tensor> {
  if (!activeTape(x.gpu)) return reduce.max(x, axes, keepDims);
  const { values, indices } = await reduce.maxWithIndices(x, axes, keepDims);
  maxDef.record([x], values, { shape: x.shape, axes: normalizeAxes('max', x.shape, axes), indices });
  indices.dispose(); // the tape holds its own reference when it recorded the op
  return values;
}

interface SoftmaxSaved {
  y: Tensor;
  axis: number;
}

const softmaxDef = defineOp<SoftmaxSaved>('softmax', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { y, axis } = ctx.saved;
  return [await sm.softmaxBackward(dy, y, axis)];
});

/** Softmax along `axis` (default: the last). */
export async function softmax(x: Tensor, axis = -1): Promise<Tensor> {
  const y = await sm.softmax(x, axis);
  softmaxDef.record([x], y, { y, axis: normalizeAxis('softmax', x.shape, axis) });
  return y;
}

const logSoftmaxDef = defineOp<SoftmaxSaved>('logSoftmax', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { y, axis } = ctx.saved;
  return [await sm.logSoftmaxBackward(dy, y, axis)];
});

/** Log-softmax along `axis` (default: the last). */
export async function logSoftmax(x: Tensor, axis = -1): Promise<Tensor> {
  const y = await sm.logSoftmax(x, axis);
  logSoftmaxDef.record([x], y, { y, axis: normalizeAxis('logSoftmax', x.shape, axis) });
  return y;
}
