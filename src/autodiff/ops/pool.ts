/**
 * Differentiable pooling. Max pooling saves its switches: its backward is unpooling with
 * switches (the gradient goes back to the recorded argmax of each window), which is also exactly
 * DeconvNet's rule, so DeconvNet needs no override here.
 */
import type { Tensor } from '../../runtime/tensor.js';
import {
  avgPool2d as avgPool2dKernel,
  avgPool2dBackward,
  globalAvgPool as globalAvgPoolKernel,
  globalAvgPoolBackward,
  maxPool2dWithSwitches,
  spatialAxes,
  maxUnpool2d,
  type AvgPool2dParams,
  type Pool2dParams,
} from '../../kernels/pool.js';
import { defineOp } from '../tape.js';
import { max } from './reduce.js';

/** Runs f on dy viewed with the op's output shape (a backward seed need only match in size). */
async function asShape<T>(dy: Tensor, shape: readonly number[], f: (g: Tensor) => Promise<T>): Promise<T> {
  if (dy.shape.length === shape.length && dy.shape.every((d, i) => d === shape[i])) return f(dy);
  const view = dy.reshape(shape);
  try {
    return await f(view);
  } finally {
    view.dispose();
  }
}

const maxPool2dDef = defineOp<{ switches: Tensor; inputShape: readonly number[]; params: Pool2dParams }>('maxpool2d', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { switches, inputShape, params } = ctx.saved;
  return [await asShape(dy, switches.shape, (g) => maxUnpool2d(g, switches, inputShape, params))];
}, { traceRule: ({ switches }, hold) => ({ kind: 'switches', rule: 'switches', ...(hold ? { tensors: { switches: hold(switches) } } : {}) }) });

/** Max pooling, recorded as 'maxpool2d' (saves the switches and the input shape). */
export async function maxPool2d(x: Tensor, params: Pool2dParams): Promise<Tensor> {
  const { output, switches } = await maxPool2dWithSwitches(x, params);
  maxPool2dDef.record([x], output, { switches, inputShape: x.shape, params: { ...params } });
  switches.dispose(); // the tape retains it when it records the op
  return output;
}

const avgPool2dDef = defineOp<{ inputShape: readonly number[]; outputShape: readonly number[]; params: AvgPool2dParams }>('avgpool2d', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { inputShape, outputShape, params } = ctx.saved;
  return [await asShape(dy, outputShape, (g) => avgPool2dBackward(g, inputShape, params))];
});

/** Average pooling, recorded as 'avgpool2d'. */
export async function avgPool2d(x: Tensor, params: AvgPool2dParams): Promise<Tensor> {
  const y = await avgPool2dKernel(x, params);
  avgPool2dDef.record([x], y, { inputShape: x.shape, outputShape: y.shape, params: { ...params } });
  return y;
}

const globalAvgPoolDef = defineOp<{ inputShape: readonly number[] }>('globalavgpool', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { inputShape } = ctx.saved;
  return [await asShape(dy, inputShape.slice(0, 2), (g) => globalAvgPoolBackward(g, inputShape))];
});

/** Global average pooling [N, C, H, W] → [N, C], recorded as 'globalavgpool'. */
export async function globalAvgPool(x: Tensor): Promise<Tensor> {
  const y = await globalAvgPoolKernel(x);
  globalAvgPoolDef.record([x], y, { inputShape: x.shape });
  return y;
}

/**
 * Global max pooling [N, C, H, W] (or [N, C, spatial…]) → [N, C], recorded as the reduction 'max'
 * over the spatial axes: the gradient of each plane goes to its first maximal element in row-major
 * order (the switch a max pooling would record; DeconvNet's unpooling needs no other rule).
 */
export async function globalMaxPool(x: Tensor): Promise<Tensor> {
  return max(x, spatialAxes('globalMaxPool', x));
}
