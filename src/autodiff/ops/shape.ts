/**
 * Differentiable shape ops. reshape and flatten are views whose backward is a reshape back; concat's
 * backward slices the gradient; slice's places it in zeros; transpose's applies the inverse
 * permutation; broadcastTo's sums it back.
 */
import type { Tensor } from '../../runtime/tensor.js';
import * as shapes from '../../kernels/shape.js';
import { inversePermutation } from '../../kernels/shape.js';
import { normalizeAxis, sumToShape } from '../../kernels/reduce.js';
import { defineOp } from '../tape.js';

/** A view of x with a new shape (one dimension may be -1). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return shapes.reshape(x, shape); // Tensor.reshape records the view on the active tape
}

/** A view of x as [N, C·H·W…] (PyTorch's flatten from dim 1). */
export function flatten(x: Tensor): Tensor {
  return shapes.flatten(x);
}

const concatDef = defineOp<{ axis: number; shapes: (readonly number[])[] }>('concat', async (dy, ctx) => {
  const { axis, shapes: inShapes } = ctx.saved;
  const out: (Tensor | null)[] = [];
  let at = 0;
  for (let i = 0; i < inShapes.length; i++) {
    const shape = inShapes[i]!;
    if (ctx.needsGrad[i]) {
      const begin = shape.map((_, d) => (d === axis ? at : 0));
      try {
        out.push(await shapes.slice(dy, begin, shape));
      } catch (e) {
        for (const t of out) t?.dispose();
        throw e;
      }
    } else {
      out.push(null);
    }
    at += shape[axis]!;
  }
  return out;
});

/** Joins tensors along `axis`. */
export async function concat(tensors: readonly Tensor[], axis: number): Promise<Tensor> {
  const y = await shapes.concat(tensors, axis);
  concatDef.record(tensors, y, { axis: normalizeAxis('concat', y.shape, axis), shapes: tensors.map((t) => t.shape) });
  return y;
}

const sliceDef = defineOp<{ shape: readonly number[]; begin: number[] }>('slice', async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { shape, begin } = ctx.saved;
  return [await shapes.sliceBackward(dy, shape, begin)];
});

/** The block of x starting at `begin` with `size` (−1 = to the end of that dimension). */
export async function slice(x: Tensor, begin: readonly number[], size: readonly number[]): Promise<Tensor> {
  const y = await shapes.slice(x, begin, size);
  sliceDef.record([x], y, { shape: x.shape, begin: [...begin] });
  return y;
}

const transposeDef = defineOp<{ perm: number[] }>('transpose', async (dy, ctx) => [
  ctx.needsGrad[0] ? await shapes.transpose(dy, inversePermutation(ctx.saved.perm)) : null,
]);

/** out.shape[i] = x.shape[perm[i]]. */
export async function transpose(x: Tensor, perm: readonly number[]): Promise<Tensor> {
  const y = await shapes.transpose(x, perm);
  transposeDef.record([x], y, { perm: [...perm] });
  return y;
}

const broadcastToDef = defineOp<{ shape: readonly number[] }>('broadcastTo', async (dy, ctx) => [
  ctx.needsGrad[0] ? await sumToShape(dy, ctx.saved.shape) : null,
]);

/** A copy of x broadcast to `shape`. */
export async function broadcastTo(x: Tensor, shape: readonly number[]): Promise<Tensor> {
  const y = await shapes.broadcastTo(x, shape);
  broadcastToDef.record([x], y, { shape: x.shape });
  return y;
}
