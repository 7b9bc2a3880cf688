/**
 * Differentiable batch normalisation with frozen statistics (ONNX BatchNormalization, inference):
 *   y = (x − mean)·scale/sqrt(var + ε) + bias per channel,   dx = dy·scale/sqrt(var + ε).
 * The parameters get gradients too (one more dispatch), when they are tracked: the forward pass
 * keeps x for them only if one of them has requiresGrad set, so that explaining an image (constant
 * parameters) keeps no extra tensor alive.
 */
import { ArgumentError } from '../../runtime/errors.js';
import type { Tensor } from '../../runtime/tensor.js';
import { batchNorm as batchNormKernel, batchNormInputGrad, batchNormParamGrads, type BatchNormParams } from '../../kernels/batchnorm.js';
import { defineOp, makeGrads } from '../tape.js';

export type { BatchNormParams } from '../../kernels/batchnorm.js';

interface BatchNormSaved {
  /** The input, kept only when a parameter requires a gradient. */
  x: Tensor | null;
  scale: Tensor;
  mean: Tensor;
  variance: Tensor;
  epsilon: number;
  shape: readonly number[];
}

const batchNormDef = defineOp<BatchNormSaved>('batchNorm', async (dy, ctx) => {
  const { x, scale, mean, variance, epsilon, shape } = ctx.saved;
  const [needX, ...needParams] = ctx.needsGrad;
  // Inputs are x, scale, bias, mean, variance.
  return makeGrads(5, async (grads, temps) => {
    const g = dy.reshape(shape);
    temps.push(g);
    if (needX) grads[0] = await batchNormInputGrad(g, { scale, variance, epsilon });
    if (needParams.some(Boolean)) {
      if (!x) {
        throw new ArgumentError(
          'batchNorm: its scale, bias, mean and variance get gradients only when one of them has requiresGrad set before the forward pass',
        );
      }
      const p = await batchNormParamGrads(g, x, { scale, mean, variance, epsilon });
      const order = [p.scale, p.bias, p.mean, p.variance];
      order.forEach((t, k) => {
        if (needParams[k]) grads[k + 1] = t;
        else t.dispose();
      });
    }
  });
});

/**
 * ONNX BatchNormalization (inference): x [N, C, …] normalised per channel with the frozen mean and
 * variance, then scaled and shifted; each parameter is [C]. Recorded as 'batchNorm' (inputs x,
 * scale, bias, mean, variance).
 */
export async function batchNorm(x: Tensor, params: BatchNormParams): Promise<Tensor> {
  const y = await batchNormKernel(x, params);
  const { scale, bias, mean, variance, epsilon = 1e-5 } = params;
  const keepX = [scale, bias, mean, variance].some((t) => t.requiresGrad);
  batchNormDef.record([x, scale, bias, mean, variance], y, { x: keepX ? x : null, scale, mean, variance, epsilon, shape: y.shape });
  return y;
}
