/**
 * Differentiable elementwise ops. add, sub, mul and div broadcast (NumPy rules); their backward
 * sums each input's gradient back to that input's shape (sumToShape), so a bias of [1, C, 1, 1]
 * added to [N, C, H, W] gets the per-channel sum.
 */
import type { Tensor } from '../../runtime/tensor.js';
import * as kernels from '../../kernels/elementwise.js';
import { sumToShape } from '../../kernels/reduce.js';
import { defineOp } from '../tape.js';

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

interface Shapes {
  aShape: Shape;
  bShape: Shape;
}
interface Operands {
  a: Tensor;
  b: Tensor;
}

const addDef = defineOp<Shapes>('add', async (dy, ctx) => {
  const { aShape, bShape } = ctx.saved;
  return [ctx.needsGrad[0] ? await sumToShape(dy, aShape) : null, ctx.needsGrad[1] ? await sumToShape(dy, bShape) : null];
});

/** a + b, broadcasting. */
export async function add(a: Tensor, b: Tensor): Promise<Tensor> {
  const y = await kernels.add(a, b);
  addDef.record([a, b], y, { aShape: a.shape, bShape: b.shape });
  return y;
}

const subDef = defineOp<Shapes>('sub', async (dy, ctx) => {
  const { aShape, bShape } = ctx.saved;
  const da = ctx.needsGrad[0] ? await sumToShape(dy, aShape) : null;
  let db: Tensor | null = null;
  if (ctx.needsGrad[1]) {
    const s = await sumToShape(dy, bShape);
    db = await using([s], () => kernels.neg(s));
  }
  return [da, db];
});

/** a − b, broadcasting. */
export async function sub(a: Tensor, b: Tensor): Promise<Tensor> {
  const y = await kernels.sub(a, b);
  subDef.record([a, b], y, { aShape: a.shape, bShape: b.shape });
  return y;
}

const mulDef = defineOp<Operands>('mul', async (dy, ctx) => {
  const { a, b } = ctx.saved;
  const da = ctx.needsGrad[0] ? await reduceOwned(await kernels.mul(dy, b), a.shape) : null;
  const db = ctx.needsGrad[1] ? await reduceOwned(await kernels.mul(dy, a), b.shape) : null;
  return [da, db];
});

/** a · b, broadcasting. */
export async function mul(a: Tensor, b: Tensor): Promise<Tensor> {
  const y = await kernels.mul(a, b);
  mulDef.record([a, b], y, { a, b });
  return y;
}

const divDef = defineOp<Operands>('div', async (dy, ctx) => {
  const { a, b } = ctx.saved;
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

/** a / b, broadcasting. */
export async function div(a: Tensor, b: Tensor): Promise<Tensor> {
  const y = await kernels.div(a, b);
  divDef.record([a, b], y, { a, b });
  return y;
}

const scaleDef = defineOp<{ alpha: number }>('scale', async (dy, ctx) => [ctx.needsGrad[0] ? await kernels.scale(dy, ctx.saved.alpha, 0) : null]);

/** alpha · x + beta. */
export async function scale(x: Tensor, alpha: number, beta = 0): Promise<Tensor> {
  const y = await kernels.scale(x, alpha, beta);
  scaleDef.record([x], y, { alpha });
  return y;
}

const negDef = defineOp('neg', async (dy, ctx) => [ctx.needsGrad[0] ? await kernels.neg(dy) : null]);

/** −x. */
export async function neg(x: Tensor): Promise<Tensor> {
  const y = await kernels.neg(x);
  negDef.record([x], y);
  return y;
}
