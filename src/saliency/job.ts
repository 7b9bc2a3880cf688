/**
 * What every public saliency method does around its computation: it checks that its input tensor
 * lives on the model's device, queues itself on that device (`gpu.exclusive`, so concurrent calls
 * do not interleave), and refuses non-finite input values and a non-finite result instead of
 * returning a NaN map (or a finite map made from NaN pixels, which ReLUs can hide).
 *
 * The finiteness checks run on the GPU: one kernel marks the values whose exponent bits are all
 * ones (±Inf and NaN; a bit test, exact where float arithmetic on NaN is not guaranteed) and a sum
 * counts them. The input's count is recorded before the method's work and the result's after it,
 * and both come back in one 8-byte read at the end: one round trip per call, which the caller
 * waits for anyway when it reads the map. Only when a count is not zero is the tensor read, to
 * name the first bad value. (SmoothGrad, which reads x anyway, refuses a bad x on the spot.)
 */
import { unary } from '../kernels/elementwise.js';
import { sum } from '../kernels/reduce.js';
import { concat } from '../kernels/shape.js';
import { ArgumentError } from '../runtime/errors.js';
import type { Gpu } from '../runtime/gpu.js';
import { Tensor } from '../runtime/tensor.js';

const NON_FINITE = 'select(0.0, 1.0, (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u)';

/** A [1] tensor: how many values of `t` are NaN or ±Inf (exact up to 2^24). Nothing is read back. */
export async function nonFiniteCount(t: Tensor): Promise<Tensor> {
  const marks = await unary(NON_FINITE, t, 0, 0, 'nonFinite');
  try {
    const total = await sum(marks);
    try {
      return total.reshape([1]);
    } finally {
      total.dispose(); // the view keeps the data
    }
  } finally {
    marks.dispose();
  }
}

/** How many values of `t` are NaN or ±Inf. */
export async function countNonFinite(t: Tensor): Promise<number> {
  const n = await nonFiniteCount(t);
  try {
    return (await n.read())[0]!;
  } finally {
    n.dispose();
  }
}

/** The first non-finite value of `values` (laid out as `shape`) and its index, e.g. 'NaN at [0, 2, 5, 7]'. */
export function firstNonFinite(values: ArrayLike<number>, shape: readonly number[]): string {
  let i = 0;
  while (i < values.length && Number.isFinite(values[i]!)) i++;
  if (i >= values.length) return 'a non-finite value';
  const index: number[] = [];
  let rest = i;
  for (let d = shape.length - 1; d >= 0; d--) {
    index.unshift(rest % shape[d]!);
    rest = Math.floor(rest / shape[d]!);
  }
  return `${values[i]} at [${index.join(', ')}]`;
}

const INPUT_WHY = 'saliency needs finite input values (check the image or the tensor it was made from)';
const RESULT_WHY = "the model's scores or gradients overflowed or hit an invalid operation for this input";

/** The error for `n` non-finite values in `t` (which it reads to name the first). */
async function nonFiniteError(op: string, t: Tensor, n: number, what: string, why: string): Promise<ArgumentError> {
  return new ArgumentError(`${op}: ${what} holds ${n} non-finite value${n === 1 ? '' : 's'} (first: ${firstNonFinite(await t.read(), t.shape)}); ${why}`);
}

/** Throws an ArgumentError naming `what` when `t` holds NaN or ±Inf (one read back). */
export async function checkFinite(op: string, t: Tensor, what: string, why: string): Promise<void> {
  const n = await countNonFinite(t);
  if (n > 0) throw await nonFiniteError(op, t, n, what, why);
}

/** The same check on values already on the CPU. */
export function checkFiniteValues(op: string, values: ArrayLike<number>, shape: readonly number[], what = 'the input x'): void {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) n++;
  if (n > 0) throw new ArgumentError(`${op}: ${what} holds ${n} non-finite value${n === 1 ? '' : 's'} (first: ${firstNonFinite(values, shape)}); ${INPUT_WHY}`);
}

/** Checks that `x` is a tensor made on `gpu` (not on another device), before it is queued there. */
export function checkDevice(op: string, gpu: Gpu, x: unknown, what = 'x'): void {
  if (!(x instanceof Tensor)) return; // the method's own checks describe what x should be
  if (x.gpu !== gpu) {
    throw new ArgumentError(`${op}: ${what} (${x.describe()}) was made on another Gpu than the model's; make it with tensor(model.gpu, …), or load the model on its Gpu`);
  }
}

/** The map of a method's result: the tensor itself, or `result` of a traced run ({ result, trace }). */
function mapOf(out: unknown): Tensor | null {
  if (out instanceof Tensor) return out;
  const result = (out as { result?: unknown } | null)?.result;
  return result instanceof Tensor ? result : null;
}

/** Frees a method's result: the tensor, or a traced run's map and trace. */
function disposeResult(out: unknown): void {
  if (out instanceof Tensor) return out.dispose();
  const o = out as { result?: { dispose?: () => void }; trace?: { dispose?: () => void } } | null;
  o?.result?.dispose?.();
  o?.trace?.dispose?.();
}

/**
 * Runs a saliency method: checks the device of `x`, queues on `gpu`, runs `compute`, and refuses
 * non-finite values in `x` (also when `compute` failed because of them) or in the result's map
 * (the result, traced or not, is then freed). `first` describes the first argument for the error
 * when it has no gpu.
 */
export function methodJob<R>(op: string, gpu: unknown, x: unknown, compute: () => Promise<R>, first = 'a model'): Promise<R> {
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
    const input = x instanceof Tensor && !x.isDisposed && x.dtype === 'float32' ? x : null;
    const inputCount = input ? await nonFiniteCount(input) : null;
    try {
      let out: R;
      try {
        out = await compute();
      } catch (e) {
        // NaN pixels can make a method fail on something else (a NaN class score, say): name them.
        if (input && inputCount && !input.isDisposed) {
          const n = (await inputCount.read())[0]!;
          if (n > 0) throw await nonFiniteError(op, input, n, 'the input x', INPUT_WHY);
        }
        throw e;
      }
      const map = mapOf(out);
      try {
        if (!map) throw new ArgumentError(`${op}: the method returned no map`); // a bug: every method returns one
        const outCount = await nonFiniteCount(map);
        let counts: Float32Array;
        try {
          if (!inputCount) counts = Float32Array.of(0, (await outCount.read())[0]!);
          else {
            const both = await concat([inputCount, outCount], 0);
            counts = await both.read().finally(() => both.dispose());
          }
        } finally {
          outCount.dispose();
        }
        if (counts[0]! > 0) throw await nonFiniteError(op, input!, counts[0]!, 'the input x', INPUT_WHY);
        if (counts[1]! > 0) throw await nonFiniteError(op, map, counts[1]!, 'the result', RESULT_WHY);
      } catch (e) {
        disposeResult(out);
        throw e;
      }
      return out;
    } finally {
      inputCount?.dispose();
    }
  });
}
