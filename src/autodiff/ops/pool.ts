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
import { recordOp, registerBackward } from '../tape.js';
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

/** Max pooling, recorded as 'maxpool2d' (saves the switches and the input shape). */
export async function maxPool2d(x: Tensor, params: Pool2dParams): Promise<Tensor> {
  const { output, switches } = await maxPool2dWithSwitches(x, params);
  recordOp(x.gpu, 'maxpool2d', [x], output, { switches, inputShape: x.shape, params: { ...params } });
  switches.dispose(); // the tape retains it when it records the op
  return output;
}

registerBackward('maxpool2d', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { switches, inputShape, params } = ctx.saved as { switches: Tensor; inputShape: number[]; params: Pool2dParams };
  return [await asShape(dy, switches.shape, (g) => maxUnpool2d(g, switches, inputShape, params))];
});

/** Average pooling, recorded as 'avgpool2d'. */
export async function avgPool2d(x: Tensor, params: AvgPool2dParams): Promise<Tensor> {
  const y = await avgPool2dKernel(x, params);
  recordOp(x.gpu, 'avgpool2d', [x], y, { inputShape: x.shape, outputShape: y.shape, params: { ...params } });
  return y;
}

registerBackward('avgpool2d', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { inputShape, outputShape, params } = ctx.saved as { inputShape: number[]; outputShape: number[]; params: AvgPool2dParams };
  return [await asShape(dy, outputShape, (g) => avgPool2dBackward(g, inputShape, params))];
});

/** Global average pooling [N, C, H, W] → [N, C], recorded as 'globalavgpool'. */
export async function globalAvgPool(x: Tensor): Promise<Tensor> {
  const y = await globalAvgPoolKernel(x);
  recordOp(x.gpu, 'globalavgpool', [x], y, { inputShape: x.shape });
  return y;
}

registerBackward('globalavgpool', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { inputShape } = ctx.saved as { inputShape: number[] };
  return [await asShape(dy, inputShape.slice(0, 2), (g) => globalAvgPoolBackward(g, inputShape))];
});

/**
 * Global max pooling [N, C, H, W] (or [N, C, spatial…]) → [N, C], recorded as the reduction 'max'
 * over the spatial axes: the gradient of each plane goes to its first maximal element in row-major
 * order (the switch a max pooling would record; DeconvNet's unpooling needs no other rule).
 */
export async function globalMaxPool(x: Tensor): Promise<Tensor> {
  return max(x, spatialAxes('globalMaxPool', x));
}
