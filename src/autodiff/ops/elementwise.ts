/**
 * Differentiable elementwise ops. add, sub, mul and div broadcast (NumPy rules); their backward
 * sums each input's gradient back to that input's shape (sumToShape), so a bias of [1, C, 1, 1]
 * added to [N, C, H, W] gets the per-channel sum.
 */
import type { Tensor } from '../../runtime/tensor.js';
import * as kernels from '../../kernels/elementwise.js';
import { sumToShape } from '../../kernels/reduce.js';
import { recordOp, registerBackward } from '../tape.js';

type Shape = readonly number[];

/** Runs `fn`, then disposes `temps` (also when it throws). */
async function using<T>(temps: Tensor[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    for (const t of temps) t.dispose();
  }
}

/** sumToShape(g, shape), disposing g. */
async function reduceOwned(g: Tensor, shape: Shape): Promise<Tensor> {
  return using([g], () => sumToShape(g, shape));
}

/** a + b, broadcasting. */
export async function add(a: Tensor, b: Tensor): Promise<Tensor> {
  const y = await kernels.add(a, b);
  recordOp(a.gpu, 'add', [a, b], y, { aShape: a.shape, bShape: b.shape });
  return y;
}

registerBackward('add', async (dy, ctx) => {
  const { aShape, bShape } = ctx.saved as { aShape: Shape; bShape: Shape };
  return [ctx.needsGrad[0] ? await sumToShape(dy, aShape) : null, ctx.needsGrad[1] ? await sumToShape(dy, bShape) : null];
});

/** a − b, broadcasting. */
export async function sub(a: Tensor, b: Tensor): Promise<Tensor> {
  const y = await kernels.sub(a, b);
  recordOp(a.gpu, 'sub', [a, b], y, { aShape: a.shape, bShape: b.shape });
  return y;
}

registerBackward('sub', async (dy, ctx) => {
  const { aShape, bShape } = ctx.saved as { aShape: Shape; bShape: Shape };
  const da = ctx.needsGrad[0] ? await sumToShape(dy, aShape) : null;
  let db: Tensor | null = null;
  if (ctx.needsGrad[1]) {
    const s = await sumToShape(dy, bShape);
    db = await using([s], () => kernels.neg(s));
  }
  return [da, db];
});

/** a · b, broadcasting. */
export async function mul(a: Tensor, b: Tensor): Promise<Tensor> {
  const y = await kernels.mul(a, b);
  recordOp(a.gpu, 'mul', [a, b], y, { a, b });
  return y;
}

registerBackward('mul', async (dy, ctx) => {
  const { a, b } = ctx.saved as { a: Tensor; b: Tensor };
  const da = ctx.needsGrad[0] ? await reduceOwned(await kernels.mul(dy, b), a.shape) : null;
  const db = ctx.needsGrad[1] ? await reduceOwned(await kernels.mul(dy, a), b.shape) : null;
  return [da, db];
});

/** a / b, broadcasting. */
export async function div(a: Tensor, b: Tensor): Promise<Tensor> {
  const y = await kernels.div(a, b);
  recordOp(a.gpu, 'div', [a, b], y, { a, b });
  return y;
}

registerBackward('div', async (dy, ctx) => {
  const { a, b } = ctx.saved as { a: Tensor; b: Tensor };
  const da = ctx.needsGrad[0] ? await reduceOwned(await kernels.div(dy, b), a.shape) : null;
  let db: Tensor | null = null;
  if (ctx.needsGrad[1]) {
    // ∂(a/b)/∂b = −a/b²
    const dyA = await kernels.mul(dy, a);
    const bb = await kernels.mul(b, b);
    const q = await using([dyA, bb], () => kernels.div(dyA, bb));
    const s = await reduceOwned(q, b.shape);
    db = await using([s], () => kernels.neg(s));
  }
  return [da, db];
});

/** alpha · x + beta. */
export async function scale(x: Tensor, alpha: number, beta = 0): Promise<Tensor> {
  const y = await kernels.scale(x, alpha, beta);
  recordOp(x.gpu, 'scale', [x], y, { alpha });
  return y;
}

registerBackward('scale', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { alpha } = ctx.saved as { alpha: number };
  return [await kernels.scale(dy, alpha, 0)];
});

/** −x. */
export async function neg(x: Tensor): Promise<Tensor> {
  const y = await kernels.neg(x);
  recordOp(x.gpu, 'neg', [x], y);
  return y;
}

registerBackward('neg', async (dy, ctx) => [ctx.needsGrad[0] ? await kernels.neg(dy) : null]);
