/**
 * Differentiable 2-D transposed convolution (ONNX ConvTranspose, PyTorch ConvTranspose2d):
 *
 *   y = convTranspose(x, w) + bias
 *   dx = conv2d(dy, w),  dw = conv2d_filter_grad(dy, x),  dbias = Σ_{n,h,w} dy
 *
 * all on the convolution kernels (see src/kernels/conv-transpose.ts).
 */
import { conv2dBackwardBias } from '../../kernels/conv2d.js';
import {
  convTranspose2d as convTranspose2dKernel,
  convTranspose2dBackwardFilter,
  convTranspose2dBackwardInput,
  type ConvTranspose2dParams,
} from '../../kernels/conv-transpose.js';
import type { Tensor } from '../../runtime/tensor.js';
import { defineOp, makeGrads } from '../tape.js';

export type { ConvTranspose2dParams } from '../../kernels/conv-transpose.js';

interface ConvTransposeSaved {
  x: Tensor;
  w: Tensor;
  params: ConvTranspose2dParams;
  outShape: readonly number[];
}

const convTransposeDef = defineOp<ConvTransposeSaved>('convTranspose2d', async (dy, ctx) => {
  const { x, w, params, outShape } = ctx.saved;
  const [needX, needW, needB] = ctx.needsGrad;
  return makeGrads(3, async (grads, temps) => {
    const g = dy.reshape(outShape); // a backward seed need only match in size
    temps.push(g);
    if (needX) grads[0] = await convTranspose2dBackwardInput(g, w, x.shape, params);
    if (needW) grads[1] = await convTranspose2dBackwardFilter(x, g, w.shape, params);
    if (needB) grads[2] = await conv2dBackwardBias(g);
  });
});

/**
 * Transposed convolution: x [N, C, H, W], w [C, M/groups, kh, kw], bias [M] or null; returns
 * [N, M, Ho, Wo] with Ho = stride·(H − 1) + outputPadding + dilation·(kh − 1) + 1 − padTop − padBottom.
 * Recorded as 'convTranspose2d' (inputs x, w, bias).
 */
export async function convTranspose2d(x: Tensor, w: Tensor, bias: Tensor | null, params: ConvTranspose2dParams = {}): Promise<Tensor> {
  const y = await convTranspose2dKernel(x, w, bias, params);
  convTransposeDef.record([x, w, bias], y, { x, w, params: { ...params }, outShape: y.shape });
  return y;
}
