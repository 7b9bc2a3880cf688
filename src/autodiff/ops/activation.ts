/**
 * Differentiable activations. One op, 'activation', covers them all: it saves the output y, the
 * activation's name and alpha, and its backward asks the tape for the activation rule in force
 * (`ctx.activation`), so per-call overrides such as `{ activations: { relu: 'guided' } }` apply.
 * The rules themselves are entry points of shaders/activation_backward.wgsl.
 */
import type { Tensor } from '../../runtime/tensor.js';
import type { Activation } from '../../kernels/common.js';
import { activationForward, checkActivation } from '../../kernels/activation.js';
import { defineOp } from '../tape.js';

const activationDef = defineOp<{ y: Tensor; act: Activation; alpha: number }>('activation', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { y, act, alpha } = ctx.saved;
  if (act === 'none') return [dy.reshape(dy.shape)]; // a new handle on the same data
  return [await ctx.activation(act, dy, { y, alpha })];
});

/** y = act(x), recorded as one 'activation' op. `alpha` is the leaky ReLU slope. */
export async function activation(x: Tensor, act: Activation, alpha = 0.01): Promise<Tensor> {
  checkActivation('activation', act, alpha);
  const y = await activationForward(x, act, alpha);
  activationDef.record([x], y, { y, act, alpha });
  return y;
}

export const relu = (x: Tensor) => activation(x, 'relu');
export const relu6 = (x: Tensor) => activation(x, 'relu6');
export const leakyRelu = (x: Tensor, alpha = 0.01) => activation(x, 'leakyrelu', alpha);
export const sigmoid = (x: Tensor) => activation(x, 'sigmoid');
export const tanh = (x: Tensor) => activation(x, 'tanh');
