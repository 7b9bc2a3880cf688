/**
 * Differentiable 2-D convolution with fused bias and activation.
 *
 *   y = act(z),  z = conv2d(x, w) + bias
 *   dz = act'(dy, y)             (the tape's activation rule: ordinary, guided or deconv for ReLU)
 *   dx = conv_transpose(dz, w),  dw = conv2d_filter_grad(x, dz),  dbias = Σ_{n,h,w} dz
 */
import {
  conv2dBackwardBias,
  conv2dBackwardFilter,
  conv2dBackwardInput,
  conv2dForward,
  normalizeConv2dParams,
  type Conv2dParams,
  type NormalizedConv2dParams,
} from '../../kernels/conv2d.js';
import type { Tensor } from '../../runtime/tensor.js';
import { defineOp } from '../tape.js';
import { fusedActivationBackward, type FusedActivation } from './fused.js';

interface ConvSaved extends FusedActivation {
  x: Tensor;
  w: Tensor;
  params: NormalizedConv2dParams;
}

const conv2dDef = defineOp<ConvSaved>('conv2d', async (dy, ctx) => {
  const { x, w, params } = ctx.saved;
  return fusedActivationBackward(dy, ctx, ctx.saved, [
    (dz) => conv2dBackwardInput(dz, w, x.shape, params),
    (dz) => conv2dBackwardFilter(x, dz, w.shape, params),
    (dz) => conv2dBackwardBias(dz),
  ]);
});

/**
 * y = activation(conv2d(x, w) + bias): x [N, Cin, H, W], w [Cout, Cin/groups, kh, kw] (PyTorch
 * layout), bias [Cout] or null. Recorded as op 'conv2d' (inputs x, w, bias).
 */
export async function conv2d(x: Tensor, w: Tensor, bias: Tensor | null, params: Conv2dParams = {}): Promise<Tensor> {
  const p = normalizeConv2dParams(params);
  const y = await conv2dForward(x, w, bias, p);
  const saved: ConvSaved = { x, w, params: p, activation: p.activation, alpha: p.alpha, outShape: y.shape };
  if (p.activation !== 'none') saved.y = y;
  conv2dDef.record([x, w, bias], y, saved);
  return y;
}
