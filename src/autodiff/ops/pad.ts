/**
 * Differentiable padding (ONNX Pad: constant, reflect, edge; negative pads crop). Its backward is
 * the exact adjoint of the forward: each input element receives the sum of the output gradient over
 * every output that read it (several for reflect and edge borders, none where cropped).
 */
import type { Tensor } from '../../runtime/tensor.js';
import { pad as padKernel, padBackward, type PadMode, type PadOptions } from '../../kernels/pad.js';
import { defineOp } from '../tape.js';

export type { PadMode, PadOptions } from '../../kernels/pad.js';

interface PadSaved {
  inputShape: readonly number[];
  outputShape: readonly number[];
  pads: number[];
  mode: PadMode;
}

const padDef = defineOp<PadSaved>('pad', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { inputShape, outputShape, pads, mode } = ctx.saved;
  const g = dy.reshape(outputShape); // a backward seed need only match in size
  try {
    return [await padBackward(g, inputShape, pads, { mode })];
  } finally {
    g.dispose();
  }
});

/**
 * x padded by `pads` in ONNX order ([begin per dimension, then end per dimension]; negative values
 * crop), recorded as 'pad'. The constant `value` is not an input: it receives no gradient.
 */
export async function pad(x: Tensor, pads: readonly number[], options: PadOptions = {}): Promise<Tensor> {
  const y = await padKernel(x, pads, options);
  padDef.record([x], y, { inputShape: x.shape, outputShape: y.shape, pads: [...pads], mode: options.mode ?? 'constant' });
  return y;
}
