/**
 * The backward half shared by layers with a fused activation (conv2d, linear):
 *
 *   y = act(z)   →   dz = act'(dy, y)   (the tape's rule in force: ordinary, guided or deconv)
 *
 * then one gradient per input from dz. Because dz goes through `ctx.activation`, guided backprop
 * and DeconvNet apply to fused ReLUs exactly as to separate ones.
 */
import type { Activation } from '../../kernels/common.js';
import type { Tensor } from '../../runtime/tensor.js';
import { makeGrads, type BackwardContext } from '../tape.js';

/** What a layer with a fused activation saves for its backward pass. */
export interface FusedActivation {
  activation: Activation;
  alpha: number;
  /** The layer's output; needed (and saved) only when an activation is fused. */
  y?: Tensor;
  /** The output's shape (a backward seed need only match it in size). */
  outShape: readonly number[];
}

/**
 * dz = act'(dy, y), then `inputGrads[i](dz)` for each input i that needs a gradient (null for the
 * others). Frees dz, and the gradients made so far when one of them fails.
 */
export async function fusedActivationBackward(
  dy: Tensor,
  ctx: BackwardContext<unknown>,
  fused: Readonly<FusedActivation>,
  inputGrads: readonly ((dz: Tensor) => Promise<Tensor>)[],
): Promise<(Tensor | null)[]> {
  return makeGrads(inputGrads.length, async (grads, temps) => {
    let dz = dy.reshape(fused.outShape);
    temps.push(dz);
    if (fused.activation !== 'none') {
      dz = await ctx.activation(fused.activation, dz, { y: fused.y!, alpha: fused.alpha });
      temps.push(dz);
    }
    for (let i = 0; i < inputGrads.length; i++) {
      if (ctx.needsGrad[i]) grads[i] = await inputGrads[i]!(dz);
    }
  });
}
