import { describe, expect, it } from 'vitest';
import { add, div, mul, neg, scale, sub } from '../src/autodiff/ops/elementwise.js';
import { sum } from '../src/autodiff/ops/reduce.js';
import { Tape } from '../src/autodiff/tape.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import { gradCheck, type GradCheckInput } from './gradcheck.js';

const input = (shape: number[], seed: number, lo = -1, hi = 1, check = true): GradCheckInput => ({
  data: randomArray(product(shape), seed, lo, hi),
  shape,
  check,
});

type Binary = (a: Tensor, b: Tensor) => Promise<Tensor>;
const OPS: [string, Binary][] = [
  ['add', add],
  ['sub', sub],
  ['mul', mul],
  ['div', div],
];

describe('elementwise op gradients', () => {
  for (const [name, op] of OPS) {
    it(`${name}: same shapes and broadcast [2,3,1] with [3,4] and [4]`, async () => {
      const gpu = await getGpu();
      // b stays away from 0 so that div is smooth.
      await gradCheck(gpu, ([a, b]) => op(a!, b!), [input([3, 4], 1), input([3, 4], 2, 0.5, 1.5)]);
      await gradCheck(gpu, ([a, b]) => op(a!, b!), [input([2, 3, 1], 3), input([3, 4], 4, 0.5, 1.5)]);
      await gradCheck(gpu, ([a, b]) => op(a!, b!), [input([4], 5), input([2, 3, 4], 6, 0.5, 1.5)]);
    });
  }

  // The broadcast cases: [2,3,4,5] with a per-channel [1,3,1,1] and a trailing [5]. The big
  // tensor is checked once (120 elements); the other checks keep it constant to stay fast.
  it('add and mul: [2,3,4,5] with [1,3,1,1]', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([a, b]) => add(a!, b!), [input([2, 3, 4, 5], 7), input([1, 3, 1, 1], 8)]);
    await gradCheck(gpu, ([a, b]) => mul(a!, b!), [input([2, 3, 4, 5], 9, -1, 1, false), input([1, 3, 1, 1], 10)]);
  });

  it('add and mul: [2,3,4,5] with [5]', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([a, b]) => mul(a!, b!), [input([2, 3, 4, 5], 11), input([5], 12)]);
    await gradCheck(gpu, ([a, b]) => add(a!, b!), [input([2, 3, 4, 5], 13, -1, 1, false), input([5], 14)]);
  });

  it('scale and neg', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([x]) => scale(x!, -2.5, 0.75), [input([3, 5], 15)]);
    await gradCheck(gpu, ([x]) => neg(x!), [input([3, 5], 16)]);
  });

  it('a tensor used by several ops gets the sum of their gradients', async () => {
    const gpu = await getGpu();
    // f(x, w) = Σ (x·w + x) / w − x  →  ∂/∂x = 1 + 1/w − 1 = 1/w (per element, w broadcast)
    await gradCheck(
      gpu,
      async ([x, w]) => sub(await div(await add(await mul(x!, w!), x!), w!), x!),
      [input([2, 3], 17), input([3], 18, 0.5, 1.5)],
    );
    const before = gpu.memory().inUse;
    await gpu.scope(async () => {
      const x = tensor(gpu, randomArray(6, 19), [2, 3]);
      const w = tensor(gpu, [0.5, 1, 2], [3]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const y = await tape.run(async () => sum(await sub(await div(await add(await mul(x, w), x), w), x)));
      const grads = await tape.backward(y);
      expectClose(await grads.of(x).read(), [2, 1, 0.5, 2, 1, 0.5], 1e-5, 1e-5);
      expect(grads.get(w)).toBeUndefined();
      grads.dispose();
      tape.dispose();
    });
    expect(gpu.memory().inUse).toBe(before);
  });

  it('broadcast shape errors leave no buffers behind', async () => {
    const gpu = await getGpu();
    const a = tensor(gpu, new Float32Array(6), [2, 3]);
    const b = tensor(gpu, new Float32Array(4), [4]);
    const before = gpu.memory().inUse;
    for (const [, op] of OPS) await expect(op(a, b)).rejects.toThrow(/cannot be broadcast/);
    expect(gpu.memory().inUse).toBe(before);
  });
});
