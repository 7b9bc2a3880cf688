/**
 * Differentiable matrix products: `linear` (a fully connected layer with fused activation) and
 * `matmulOp` (a plain, optionally batched, product).
 *
 * linear: y = act(z), z = x · wᵀ + b   →   dz = act'(dy, y), dx = dz · w, dw = dzᵀ · x, db = Σ_rows dz
 * matmul: c = a · b                     →   da = dc · bᵀ,     db = aᵀ · dc
 * The fused activation's rule comes from the tape (`ctx.activation`), so guided backprop and
 * DeconvNet overrides apply to it as to a separate ReLU.
 */
import type { Tensor } from '../../runtime/tensor.js';
import type { Activation } from '../../kernels/common.js';
import { checkActivation } from '../../kernels/activation.js';
import { columnSums, linearForward, matmul } from '../../kernels/matmul.js';
import { defineOp, makeGrads } from '../tape.js';
import { fusedActivationBackward, type FusedActivation } from './fused.js';

export interface LinearOptions {
  /** Activation fused into the layer's output. Default 'none'. */
  activation?: Activation;
  /** Leaky ReLU slope. Default 0.01. */
  alpha?: number;
}

interface LinearSaved extends FusedActivation {
  x: Tensor;
  w: Tensor;
}

const linearDef = defineOp<LinearSaved>('linear', async (dy, ctx) => {
  const { x, w } = ctx.saved;
  return fusedActivationBackward(dy, ctx, ctx.saved, [
    (dz) => matmul(dz, w), // [N, out] · [out, in]
    (dz) => matmul(dz, x, { transA: true }), // [N, out]ᵀ · [N, in]
    (dz) => columnSums(dz),
  ]);
});

/** y = act(x · wᵀ + b), x [N, in], w [out, in] (PyTorch layout), b [out] or null. Returns [N, out]. */
export async function linear(x: Tensor, w: Tensor, b: Tensor | null = null, options: LinearOptions = {}): Promise<Tensor> {
  const { activation = 'none', alpha = 0.01 } = options;
  checkActivation('linear', activation, alpha);
  const y = await linearForward(x, w, b, activation, alpha);
  const saved: LinearSaved = { x, w, activation, alpha, outShape: y.shape };
  if (activation !== 'none') saved.y = y;
  linearDef.record([x, w, b], y, saved);
  return y;
}

interface MatmulSaved {
  a: Tensor;
  b: Tensor;
  c: Tensor;
}

const matmulDef = defineOp<MatmulSaved>('matmul', async (dy, ctx) => {
  const { a, b, c } = ctx.saved;
  const [needA, needB] = ctx.needsGrad;
  return makeGrads(2, async (grads, temps) => {
    const view = (t: Tensor, shape: number[]) => {
      const v = t.reshape(shape);
      temps.push(v);
      return v;
    };
    const dc = view(dy, [...c.shape]);
    if (needA) {
      if (a.rank === 2 && b.rank === 3) {
        // a was shared by the batch: sum the per-entry gradients dc_i · b_iᵀ.
        const per = await matmul(dc, b, { transB: true });
        temps.push(per);
        grads[0] = await columnSums(view(per, [per.shape[0]!, a.size]));
      } else {
        grads[0] = await matmul(dc, b, { transB: true });
      }
    }
    if (needB) {
      if (b.rank === 2 && a.rank === 3) {
        // b was shared by the batch: Σ_i a_iᵀ · dc_i is one product over the stacked rows.
        const [batch, M, K] = a.shape as [number, number, number];
        grads[1] = await matmul(view(a, [batch * M, K]), view(dc, [batch * M, c.shape[2]!]), { transA: true });
      } else {
        grads[1] = await matmul(a, dc, { transA: true });
      }
    }
  });
});

/**
 * c = a · b for a [M, K] or [B, M, K] and b [K, N] or [B, K, N] (a 2-D operand is shared by the
 * whole batch). Recorded as op 'matmul'.
 */
export async function matmulOp(a: Tensor, b: Tensor): Promise<Tensor> {
  const c = await matmul(a, b);
  matmulDef.record([a, b], c, { a, b, c });
  return c;
}
