/**
 * Differentiable pointwise ops that ONNX models use and src/autodiff/ops does not have yet:
 * HardSigmoid, HardSwish, Clip with any bounds, PRelu. None of them is a ReLU, so guided backprop
 * and DeconvNet leave them alone (as PyTorch's hooks on ReLU modules do); Clip(0, 6) and Clip(0, ∞)
 * are ReLU6 and ReLU and run as those elsewhere (activation.ts).
 *
 * Gradients follow PyTorch's: HardSigmoid passes α·dy strictly inside (0, 1); HardSwish's slope is
 * x/3 + 1/2 on [−3, 3], 0 below, 1 above; Clip passes dy where lo ≤ x ≤ hi; PRelu multiplies dy
 * by 1 where x > 0 and by the slope elsewhere.
 */
import { recordOp, registerBackward } from '../../../autodiff/tape.js';
import * as k from '../../../kernels/elementwise.js';
import type { Tensor } from '../../../runtime/tensor.js';

/** dy · mask, with mask a pointwise function of the saved input x; disposes the mask. */
async function masked(dy: Tensor, x: Tensor, expr: string, alpha = 0, beta = 0): Promise<Tensor> {
  const m = await k.unary(expr, x, alpha, beta, 'onnxGradMask');
  const g = dy.reshape(x.shape);
  try {
    return await k.mul(g, m);
  } finally {
    m.dispose();
    g.dispose();
  }
}

export async function hardSigmoid(x: Tensor, alpha: number, beta: number): Promise<Tensor> {
  const y = await k.unary('clamp(alpha * x + beta, 0.0, 1.0)', x, alpha, beta, 'hardSigmoid');
  recordOp(x.gpu, 'onnx.hardSigmoid', [x], y, { x, alpha, beta });
  return y;
}

registerBackward('onnx.hardSigmoid', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { x, alpha, beta } = ctx.saved as { x: Tensor; alpha: number; beta: number };
  return [await masked(dy, x, 'select(0.0, alpha, alpha * x + beta > 0.0 && alpha * x + beta < 1.0)', alpha, beta)];
});

export async function hardSwish(x: Tensor): Promise<Tensor> {
  const y = await k.unary('x * clamp(x / 6.0 + 0.5, 0.0, 1.0)', x, 0, 0, 'hardSwish');
  recordOp(x.gpu, 'onnx.hardSwish', [x], y, { x });
  return y;
}

registerBackward('onnx.hardSwish', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { x } = ctx.saved as { x: Tensor };
  return [await masked(dy, x, 'select(select(x / 3.0 + 0.5, 1.0, x > 3.0), 0.0, x < -3.0)')];
});

/** Bounds beyond float32 (an open side) are clamped to ±3.4e38, which the kernel's uniforms accept. */
const F32_MAX = 3.4e38;
const bound = (v: number) => Math.min(Math.max(v, -F32_MAX), F32_MAX);

export async function clip(x: Tensor, lo: number, hi: number): Promise<Tensor> {
  const [a, b] = [bound(lo), bound(hi)];
  const y = await k.unary('clamp(x, alpha, beta)', x, a, b, 'clip');
  recordOp(x.gpu, 'onnx.clip', [x], y, { x, lo: a, hi: b });
  return y;
}

registerBackward('onnx.clip', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { x, lo, hi } = ctx.saved as { x: Tensor; lo: number; hi: number };
  return [await masked(dy, x, 'select(0.0, 1.0, x >= alpha && x <= beta)', lo, hi)];
});

/** PRelu: x where x > 0, slope · x elsewhere; `slope` broadcasts against x (a constant: no gradient for it). */
export async function prelu(x: Tensor, slope: Tensor): Promise<Tensor> {
  const pos = await k.unary('max(x, 0.0)', x, 0, 0, 'preluPos');
  const neg = await k.unary('min(x, 0.0)', x, 0, 0, 'preluNeg');
  let scaled: Tensor | null = null;
  try {
    scaled = await k.mul(neg, slope);
    const y = await k.add(pos, scaled);
    recordOp(x.gpu, 'onnx.prelu', [x], y, { x, slope });
    return y;
  } finally {
    for (const t of [pos, neg, scaled]) t?.dispose();
  }
}

registerBackward('onnx.prelu', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { x, slope } = ctx.saved as { x: Tensor; slope: Tensor };
  const through = await masked(dy, x, 'select(0.0, 1.0, x > 0.0)'); // dy where x > 0
  const g = dy.reshape(x.shape);
  let rest: Tensor | null = null;
  let scaled: Tensor | null = null;
  try {
    rest = await k.sub(g, through);
    scaled = await k.mul(rest, slope);
    return [await k.add(through, scaled)];
  } finally {
    for (const t of [g, through, rest, scaled]) t?.dispose();
  }
});
