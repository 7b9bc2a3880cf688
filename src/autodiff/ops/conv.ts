/**
 * Differentiable 2-D convolution with fused bias and activation.
 *
 *   y = act(z),  z = conv2d(x, w) + bias
 *   dz = act'(dy, y)             (the tape's activation rule: ordinary, guided or deconv for ReLU)
 *   dx = conv_transpose(dz, w),  dw = conv2d_filter_grad(x, dz),  dbias = Σ_{n,h,w} dz
 *
 * Because dz goes through `ctx.activation`, guided backprop and DeconvNet apply to fused ReLUs
 * exactly as to separate ones.
 */
import './activation.js'; // registers the activation rules that the fused backward uses
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
import { recordOp, registerBackward } from '../tape.js';

interface ConvSaved {
  x: Tensor;
  w: Tensor;
  /** The output, only when an activation is fused (its backward rule needs it). */
  y?: Tensor;
  outShape: readonly number[];
  params: NormalizedConv2dParams;
}

/**
 * y = activation(conv2d(x, w) + bias): x [N, Cin, H, W], w [Cout, Cin/groups, kh, kw] (PyTorch
 * layout), bias [Cout] or null. Recorded as op 'conv2d' (inputs x, w, bias).
 */
export async function conv2d(x: Tensor, w: Tensor, bias: Tensor | null, params: Conv2dParams = {}): Promise<Tensor> {
  const p = normalizeConv2dParams(params);
  const y = await conv2dForward(x, w, bias, p);
  const saved: ConvSaved = { x, w, outShape: y.shape, params: p };
  if (p.activation !== 'none') saved.y = y;
  recordOp(x.gpu, 'conv2d', [x, w, bias], y, saved as unknown as Record<string, unknown>);
  return y;
}

registerBackward('conv2d', async (dy, ctx) => {
  const { x, w, y, outShape, params } = ctx.saved as unknown as ConvSaved;
  const [needX, needW, needB] = ctx.needsGrad;
  const temps: Tensor[] = [];
  const grads: (Tensor | null)[] = [null, null, null];
  try {
    let dz = dy.reshape(outShape);
    temps.push(dz);
    if (params.activation !== 'none') {
      dz = await ctx.activation(params.activation, dz, { y: y!, alpha: params.alpha });
      temps.push(dz);
    }
    if (needX) grads[0] = await conv2dBackwardInput(dz, w, x.shape, params);
    if (needW) grads[1] = await conv2dBackwardFilter(x, dz, w.shape, params);
    if (needB) grads[2] = await conv2dBackwardBias(dz);
    return grads;
  } catch (e) {
    for (const g of grads) g?.dispose();
    throw e;
  } finally {
    for (const t of temps) t.dispose();
  }
});
