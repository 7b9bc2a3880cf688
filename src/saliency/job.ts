/**
 * What every public saliency method does around its computation: it checks that its input tensor
 * lives on the model's device, queues itself on that device (`gpu.exclusive`, so concurrent calls
 * do not interleave), refuses non-finite input values before any work, and refuses a non-finite
 * result instead of returning a NaN map.
 *
 * The finiteness checks run on the GPU: one kernel marks the values whose exponent bits are all
 * ones (±Inf and NaN; a bit test, exact where float arithmetic on NaN is not guaranteed), a sum
 * counts them, and 4 bytes come back. Only when some are found is the tensor read to name the first.
 */
import { unary } from '../kernels/elementwise.js';
import { sum } from '../kernels/reduce.js';
import { ArgumentError } from '../runtime/errors.js';
import type { Gpu } from '../runtime/gpu.js';
import { Tensor } from '../runtime/tensor.js';

const NON_FINITE = 'select(0.0, 1.0, (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u)';

/** How many values of `t` are NaN or ±Inf (exact up to 2^24). */
export async function countNonFinite(t: Tensor): Promise<number> {
  const marks = await unary(NON_FINITE, t, 0, 0, 'nonFinite');
  try {
    const total = await sum(marks);
    try {
      return (await total.read())[0]!;
    } finally {
      total.dispose();
    }
  } finally {
    marks.dispose();
  }
}

/** The first non-finite value of `t` and its index, e.g. 'NaN at [0, 2, 5, 7]'. */
async function firstNonFinite(t: Tensor): Promise<string> {
  const v = await t.read();
  const i = v.findIndex((a) => !Number.isFinite(a));
  if (i < 0) return 'a non-finite value';
  const index: number[] = [];
  let rest = i;
  for (let d = t.shape.length - 1; d >= 0; d--) {
    index.unshift(rest % t.shape[d]!);
    rest = Math.floor(rest / t.shape[d]!);
  }
  return `${v[i]} at [${index.join(', ')}]`;
}

/** Throws an ArgumentError naming `what` when `t` holds NaN or ±Inf. */
export async function checkFinite(op: string, t: Tensor, what: string, why: string): Promise<void> {
  const n = await countNonFinite(t);
  if (n > 0) throw new ArgumentError(`${op}: ${what} holds ${n} non-finite value${n === 1 ? '' : 's'} (first: ${await firstNonFinite(t)}); ${why}`);
}

/** Checks that `x` is a tensor made on `gpu` (not on another device), before it is queued there. */
export function checkDevice(op: string, gpu: Gpu, x: unknown, what = 'x'): void {
  if (!(x instanceof Tensor)) return; // the method's own checks describe what x should be
  if (x.gpu !== gpu) {
    throw new ArgumentError(`${op}: ${what} (${x.describe()}) was made on another Gpu than the model's; make it with tensor(model.gpu, …), or load the model on its Gpu`);
  }
}

/**
 * Runs a saliency method: checks the device of `x`, queues on `gpu`, refuses non-finite values in
 * `x`, runs `compute`, and refuses a non-finite result (which it disposes).
 */
export function methodJob<T extends Tensor>(op: string, gpu: unknown, x: unknown, compute: () => Promise<T>, first = 'a model'): Promise<T> {
  if (!gpu || typeof (gpu as Gpu).exclusive !== 'function') {
    return Promise.reject(new ArgumentError(`${op}: expected ${first} as the first argument, got ${gpu === null ? 'null' : typeof gpu}`));
  }
  const device = gpu as Gpu;
  try {
    checkDevice(op, device, x);
  } catch (e) {
    return Promise.reject(e);
  }
  return device.exclusive(async () => {
    if (x instanceof Tensor && !x.isDisposed) {
      await checkFinite(op, x, 'the input x', 'saliency needs finite input values (check the image or the tensor it was made from)');
    }
    const out = await compute();
    try {
      await checkFinite(op, out, 'the result', "the model's scores or gradients overflowed or hit an invalid operation for this input");
    } catch (e) {
      out.dispose();
      throw e;
    }
    return out;
  });
}
