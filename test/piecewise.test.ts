import { describe, expect, it } from 'vitest';
import * as k from '../src/kernels/piecewise.js';
import { clip, hardSigmoid, hardSwish, prelu } from '../src/autodiff/ops/piecewise.js';
import { Tape, type RuleOverrides } from '../src/autodiff/tape.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { gradCheck } from './gradcheck.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import {
  clipGradRef,
  clipRef,
  hardSigmoidGradRef,
  hardSigmoidRef,
  hardSwishGradRef,
  hardSwishRef,
  preluGradRef,
  preluRef,
} from './reference/piecewise.js';

/** Random values in [lo, hi) moved at least `margin` away from each kink (finite differences need smooth points). */
function awayFrom(n: number, seed: number, lo: number, hi: number, kinks: number[], margin = 0.05): Float32Array {
  const v = randomArray(n, seed, lo, hi);
  return v.map((x) => {
    for (const c of kinks) if (Math.abs(x - c) < margin) return x < c ? c - margin : c + margin;
    return x;
  });
}

async function forwardAndBackward(gpu: Gpu, x: Tensor, f: () => Promise<Tensor>, b: (g: Tensor) => Promise<Tensor>, seed: number) {
  const y = await f();
  const g = randomArray(x.size, seed);
  const tg = tensor(gpu, g, x.shape);
  const dx = await b(tg);
  const out = { y: await y.read(), g, dx: await dx.read() };
  for (const t of [y, tg, dx]) t.dispose();
  return out;
}

describe('piecewise activation kernels', () => {
  // Values exactly at the kinks check the strict inequalities of the gradients.
  const special = [-3, 3, -2.5, 2.5, -0.5, 0.7, 0, -6, 6];
  const data = Float32Array.from([...randomArray(200, 1, -7, 7), ...special]);

  it('clip with both bounds, one bound, none, and min > max', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    const x = tensor(gpu, data, [data.length]);
    for (const [lo, hi] of [[-0.5, 0.7], [undefined, 2], [-1, undefined], [undefined, undefined], [-Infinity, Infinity], [2, 1]] as [number | undefined, number | undefined][]) {
      const r = await forwardAndBackward(gpu, x, () => k.clip(x, lo, hi), (g) => k.piecewiseBackward('clip', g, x, ...k.clipBounds(lo, hi)), 2);
      // The bounds are float32 uniforms.
      const [flo, fhi] = [lo === undefined ? lo : Math.fround(lo), hi === undefined ? hi : Math.fround(hi)];
      expectClose(r.y, Array.from(data, (v) => clipRef(v, flo, fhi)), 0, 0);
      expectClose(r.dx, Array.from(data, (v, i) => r.g[i]! * clipGradRef(v, flo, fhi)), 0, 0);
    }
    x.dispose();
    expect(gpu.memory().inUse).toBe(before);
  });

  it('hardSigmoid (ONNX defaults and other parameters) and hardSwish', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, data, [data.length]);
    for (const [alpha, beta] of [[0.2, 0.5], [1 / 6, 0.5], [0.5, -0.25]]) {
      const r = await forwardAndBackward(gpu, x, () => k.hardSigmoid(x, alpha, beta), (g) => k.piecewiseBackward('hardsigmoid', g, x, alpha!, beta!), 3);
      expectClose(r.y, Array.from(data, (v) => hardSigmoidRef(v, alpha, beta)), 1e-7, 1e-6);
      expectClose(r.dx, Array.from(data, (v, i) => r.g[i]! * hardSigmoidGradRef(v, alpha, beta)), 1e-7, 1e-6);
    }
    const r = await forwardAndBackward(gpu, x, () => k.hardSwish(x), (g) => k.piecewiseBackward('hardswish', g, x, k.HARD_SWISH_ALPHA, k.HARD_SWISH_BETA), 4);
    expectClose(r.y, Array.from(data, hardSwishRef), 1e-6, 1e-6);
    // At the kinks ±3 the derivative is that of the flat side: 0 at −3, 1 at 3.
    expectClose(r.dx, Array.from(data, (v, i) => r.g[i]! * hardSwishGradRef(v)), 1e-6, 1e-6);
    x.dispose();
  });

  it('prelu with slopes [C, 1, 1], [1], [W] and full shape, and its gradients', async () => {
    const gpu = await getGpu();
    const shape = [2, 3, 4, 5];
    const xd = Float32Array.from([0, ...randomArray(product(shape) - 1, 5)]);
    for (const slopeShape of [[3, 1, 1], [1], [5], [1, 3, 1, 5], shape]) {
      const sd = randomArray(product(slopeShape), 6, -0.5, 1.5);
      const x = tensor(gpu, xd, shape);
      const s = tensor(gpu, sd, slopeShape);
      const y = await k.prelu(x, s);
      expectClose(await y.read(), preluRef(xd, shape, sd, slopeShape).y, 0, 0);
      const g = randomArray(x.size, 7);
      const tg = tensor(gpu, g, shape);
      const { dx, slopeTerms } = await k.preluBackward(tg, x, s, true);
      const ref = preluGradRef(g, xd, shape, sd, slopeShape);
      expectClose(await dx.read(), ref.dx, 1e-7, 1e-6);
      const terms = await slopeTerms!.read();
      expectClose(terms, Array.from(xd, (v, i) => (v > 0 ? 0 : g[i]! * v)), 1e-7, 1e-6);
      for (const t of [x, s, y, tg, dx, slopeTerms!]) t.dispose();
    }
  });

  it('rejects bad parameters and shapes', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, [1, 2, 3, 4, 5, 6], [1, 2, 3]);
    const s = tensor(gpu, [1, 2, 3], [3, 1]);
    await expect(k.prelu(x, s)).rejects.toThrow(/slope \[3, 1\] does not broadcast to x \[1, 2, 3\]/);
    await expect(k.hardSigmoid(x, NaN)).rejects.toThrow(/alpha must be a finite number/);
    await expect(k.clip(x, NaN, 1)).rejects.toThrow(/min must be a finite number/);
    x.dispose();
    s.dispose();
  });
});

describe('piecewise activation ops', () => {
  it('gradients by finite differences, away from the kinks', async () => {
    const gpu = await getGpu();
    const shape = [2, 3, 5];
    await gradCheck(gpu, ([x]) => clip(x!, -0.5, 0.7), [{ data: awayFrom(30, 1, -1, 1, [-0.5, 0.7]), shape }]);
    await gradCheck(gpu, ([x]) => clip(x!, undefined, 0.2), [{ data: awayFrom(30, 2, -1, 1, [0.2]), shape }]);
    await gradCheck(gpu, ([x]) => hardSigmoid(x!, 0.3, 0.4), [{ data: awayFrom(30, 3, -4, 4, [-4 / 3, 2]), shape }]);
    await gradCheck(gpu, ([x]) => hardSwish(x!), [{ data: awayFrom(30, 4, -5, 5, [-3, 3]), shape }]);
  });

  it('prelu: gradients of x and of a per-channel slope by finite differences', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([x, s]) => prelu(x!, s!), [
      { data: awayFrom(2 * 3 * 2 * 2, 5, -1, 1, [0]), shape: [2, 3, 2, 2] },
      { data: randomArray(3, 6, -0.5, 0.5), shape: [3, 1, 1] },
    ]);
    await gradCheck(gpu, ([x, s]) => prelu(x!, s!), [
      { data: awayFrom(12, 7, -1, 1, [0]), shape: [3, 4] },
      { data: Float32Array.of(0.25), shape: [1] },
    ]);
  });

  async function inputGradient(gpu: Gpu, data: number[], f: (x: Tensor) => Promise<Tensor>, rules?: RuleOverrides): Promise<{ grad: Float32Array }> {
    const tape = new Tape(gpu);
    const x = tape.watch(tensor(gpu, data, [data.length]));
    const y = await tape.run(() => f(x));
    const seed = tensor(gpu, data.map((_, i) => (i % 2 ? -1 : 1)), [data.length]);
    const grads = await tape.backward(y, { seed, rules });
    const grad = await grads.of(x).read();
    grads.dispose();
    tape.dispose();
    for (const t of [x, y, seed]) t.dispose();
    return { grad };
  }

  it('Clip(0, 6) and Clip(0, ∞) are recorded as ReLU6 and ReLU, so the guided rule applies to them', async () => {
    const gpu = await getGpu();
    const data = [1, 2, 3, 4, -1, 7];
    const guided = { activations: { relu: 'guided', relu6: 'guided' } } as const;
    const r6 = await inputGradient(gpu, data, (x) => clip(x, 0, 6), guided);
    // seed +1, −1, +1, −1, …: guided zeroes the negative signal and what the forward blocked.
    expect(Array.from(r6.grad)).toEqual([1, 0, 1, 0, 0, 0]);
    const r = await inputGradient(gpu, data, (x) => clip(x, 0), guided);
    expect(Array.from(r.grad)).toEqual([1, 0, 1, 0, 0, 0]);
    const other = await inputGradient(gpu, data, (x) => clip(x, 0, 5), guided);
    // Other bounds: the ordinary gradient 1[0 < x < 5], negative signal kept.
    expect(Array.from(other.grad, (v) => v + 0)).toEqual([1, -1, 1, -1, 0, 0]);
  });

  it('HardSwish, HardSigmoid and PRelu keep their ordinary gradient under the guided and DeconvNet rules', async () => {
    const gpu = await getGpu();
    const data = [1, 2, -1, -2, 0.5, -0.5];
    const slope = tensor(gpu, [0.25], [1]);
    for (const f of [(x: Tensor) => hardSwish(x), (x: Tensor) => hardSigmoid(x), (x: Tensor) => prelu(x, slope)]) {
      const plain = await inputGradient(gpu, data, f);
      for (const variant of ['guided', 'deconv'] as const) {
        const over = await inputGradient(gpu, data, f, { activations: { relu: variant, relu6: variant } });
        expect(Array.from(over.grad)).toEqual(Array.from(plain.grad));
      }
    }
    slope.dispose();
  });
});
