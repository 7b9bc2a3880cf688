/**
 * Central finite differences against the tape's analytic gradients.
 *
 * The loss is L = Σ r ⊙ f(inputs) for a fixed random r, so every output element matters. Each
 * checked input element is perturbed by ±eps and f re-run on the GPU (in no-grad mode); the
 * numerical derivative (L+ − L−)/(2·eps) is accumulated in float64 on the CPU.
 */
import { expect } from 'vitest';
import { Tape, noGrad } from '../src/autodiff/tape.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { randomArray } from './helpers.js';

export interface GradCheckInput {
  data: Float32Array;
  shape: number[];
  /** Check this input's gradient (default true). Unchecked inputs are constants. */
  check?: boolean;
}

export interface GradCheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
}

export async function gradCheck(
  gpu: Gpu,
  f: (inputs: Tensor[]) => Promise<Tensor>,
  inputs: GradCheckInput[],
  options: GradCheckOptions = {},
): Promise<void> {
  const { eps = 1e-2, atol = 5e-4, rtol = 5e-3, seed = 99 } = options;
  const before = gpu.memory().inUse;
  await gpu.scope(async () => {
    const ts = inputs.map((inp) => tensor(gpu, inp.data, inp.shape));
    const tape = new Tape(gpu);
    ts.forEach((t, i) => inputs[i]!.check !== false && tape.watch(t));
    const out = await tape.run(() => f(ts));
    const r = randomArray(out.size, seed);
    const seedT = tensor(gpu, r, out.shape);
    const grads = await tape.backward(out, { seed: seedT });
    const analytic: (Float32Array | null)[] = [];
    for (let i = 0; i < ts.length; i++) {
      const g = inputs[i]!.check === false ? undefined : grads.get(ts[i]!);
      analytic.push(g ? await g.read() : null);
    }
    grads.dispose();
    tape.dispose();

    const loss = async (values: Float32Array[]): Promise<number> =>
      gpu.scope(async () => {
        const o = await noGrad(gpu, () => f(values.map((v, i) => tensor(gpu, v, inputs[i]!.shape))));
        const y = await o.read();
        let s = 0;
        for (let k = 0; k < y.length; k++) s += r[k]! * y[k]!;
        return s;
      });

    for (let i = 0; i < inputs.length; i++) {
      if (inputs[i]!.check === false) continue;
      const values = inputs.map((inp) => Float32Array.from(inp.data));
      const numeric = new Float64Array(values[i]!.length);
      for (let j = 0; j < numeric.length; j++) {
        const orig = values[i]![j]!;
        values[i]![j] = orig + eps;
        const lp = await loss(values);
        values[i]![j] = orig - eps;
        const lm = await loss(values);
        values[i]![j] = orig;
        numeric[j] = (lp - lm) / (2 * eps);
      }
      const a = analytic[i] ?? new Float32Array(numeric.length); // no gradient = zero gradient
      for (let j = 0; j < numeric.length; j++) {
        const err = Math.abs(a[j]! - numeric[j]!);
        if (err > atol + rtol * Math.abs(numeric[j]!)) {
          expect.fail(`input ${i} element ${j}: analytic ${a[j]}, finite differences ${numeric[j]} (eps ${eps})`);
        }
      }
    }
  });
  expect(gpu.memory().inUse).toBe(before);
}
