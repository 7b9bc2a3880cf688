/**
 * Differentiable helpers that imported graphs of every format use, beyond src/autodiff/ops:
 * zero padding of any axes (TF Pad, ONNX Pad in constant mode with 0).
 */
import { recordOp, registerBackward } from '../../autodiff/tape.js';
import { slice as sliceKernel, sliceBackward } from '../../kernels/shape.js';
import type { Tensor } from '../../runtime/tensor.js';

/** Runs f on a temporary and disposes it. */
export async function using<T>(t: Tensor, f: (t: Tensor) => Promise<T>): Promise<T> {
  try {
    return await f(t);
  } finally {
    t.dispose();
  }
}

/** x placed in zeros of shape `padded` at offset `begin` (any rank); its gradient is the matching slice. */
export async function zeroPad(x: Tensor, padded: readonly number[], begin: readonly number[]): Promise<Tensor> {
  const y = await sliceBackward(x, padded, begin);
  recordOp(x.gpu, 'graph.zeroPad', [x], y, { begin: [...begin], shape: [...x.shape] });
  return y;
}

registerBackward('graph.zeroPad', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { begin, shape } = ctx.saved as { begin: number[]; shape: number[] };
  return [await sliceKernel(dy, begin, shape)];
});
