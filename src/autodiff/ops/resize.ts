/** Differentiable resize (bilinear or nearest); its backward is the exact adjoint of the forward. */
import type { Tensor } from '../../runtime/tensor.js';
import { resize as resizeKernel, resizeBackward, type ResizeOptions } from '../../kernels/resize.js';
import { defineOp } from '../tape.js';

export type { CoordinateTransformationMode, NearestMode, ResizeMode, ResizeOptions } from '../../kernels/resize.js';

interface ResizeSaved {
  inputShape: readonly number[];
  outputShape: readonly number[];
  options: ResizeOptions;
}

const resizeDef = defineOp<ResizeSaved>('resize', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { inputShape, outputShape, options } = ctx.saved;
  // A backward seed need only match the output in size: view it with the output's shape.
  const sameShape = dy.shape.length === outputShape.length && dy.shape.every((d, i) => d === outputShape[i]);
  const g = sameShape ? dy : dy.reshape(outputShape);
  try {
    return [await resizeBackward(g, inputShape, options)];
  } finally {
    if (g !== dy) g.dispose();
  }
});

/** Resizes the last two dimensions of x to `size`, recorded as 'resize'. */
export async function resize(x: Tensor, size: readonly [number, number] | readonly number[], options: ResizeOptions = {}): Promise<Tensor> {
  const y = await resizeKernel(x, size, options);
  resizeDef.record([x], y, { inputShape: x.shape, outputShape: y.shape, options: { ...options } });
  return y;
}
