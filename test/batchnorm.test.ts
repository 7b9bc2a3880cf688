import { describe, expect, it } from 'vitest';
import { batchNorm as batchNormKernel, batchNormInputGrad, batchNormParamGrads } from '../src/kernels/batchnorm.js';
import { batchNorm } from '../src/autodiff/ops/batchnorm.js';
import { Tape } from '../src/autodiff/tape.js';
import { ShapeError } from '../src/runtime/errors.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { gradCheck } from './gradcheck.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import { batchNormGradRef, batchNormRef } from './reference/batchnorm.js';

function params(C: number, seed: number) {
  return {
    scale: randomArray(C, seed, -2, 2),
    bias: randomArray(C, seed + 1, -1, 1),
    mean: randomArray(C, seed + 2, -0.5, 0.5),
    variance: randomArray(C, seed + 3, 0.2, 2),
  };
}

describe('batch normalisation (inference)', () => {
  for (const shape of [[2, 3, 4, 5], [4, 3], [1, 2, 2, 3, 2], [2, 5, 40, 31]]) {
    it(`${JSON.stringify(shape)}: forward, input gradient and parameter gradients against the reference`, async () => {
      const gpu = await getGpu();
      const before = gpu.memory().inUse;
      const C = shape[1]!;
      const p = params(C, 3);
      const epsilon = 1e-3;
      const xd = randomArray(product(shape), 7, -3, 3);
      const dyd = randomArray(product(shape), 8);
      const x = tensor(gpu, xd, shape);
      const dy = tensor(gpu, dyd, shape);
      const t = {
        scale: tensor(gpu, p.scale, [C]),
        bias: tensor(gpu, p.bias, [C]),
        mean: tensor(gpu, p.mean, [C]),
        variance: tensor(gpu, p.variance, [C]),
      };
      const y = await batchNormKernel(x, { ...t, epsilon });
      expectClose(await y.read(), batchNormRef(xd, shape, { ...p, epsilon }), 1e-5, 1e-5);
      const ref = batchNormGradRef(dyd, xd, shape, { ...p, epsilon });
      const dx = await batchNormInputGrad(dy, { ...t, epsilon });
      expectClose(await dx.read(), ref.dx, 1e-5, 1e-5);
      const g = await batchNormParamGrads(dy, x, { ...t, epsilon });
      expect(g.scale.shape).toEqual([C]);
      const tol = 1e-4 * Math.sqrt(product(shape) / C);
      expectClose(await g.scale.read(), ref.dscale, tol, 1e-4);
      expectClose(await g.bias.read(), ref.dbias, tol, 1e-4);
      expectClose(await g.mean.read(), ref.dmean, tol, 1e-4);
      expectClose(await g.variance.read(), ref.dvar, tol, 1e-4);
      for (const z of [x, dy, y, dx, ...Object.values(t), ...Object.values(g)]) z.dispose();
      expect(gpu.memory().inUse).toBe(before);
    });
  }

  it('gradients of x and of every parameter by finite differences', async () => {
    const gpu = await getGpu();
    const shape = [2, 3, 2, 2];
    const p = params(3, 11);
    const withGrad = (t: Tensor) => ((t.requiresGrad = true), t);
    await gradCheck(
      gpu,
      ([x, scale, bias, mean, variance]) =>
        batchNorm(x!, { scale: withGrad(scale!), bias: withGrad(bias!), mean: withGrad(mean!), variance: withGrad(variance!), epsilon: 1e-3 }),
      [
        { data: randomArray(product(shape), 12), shape },
        { data: p.scale, shape: [3] },
        { data: p.bias, shape: [3] },
        { data: p.mean, shape: [3] },
        { data: p.variance, shape: [3] },
      ],
      { eps: 1e-3 },
    );
  });

  it('constant parameters: x is not kept, and asking for their gradient anyway is a clear error', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    const C = 2;
    const p = params(C, 21);
    const tape = new Tape(gpu);
    const x = tape.watch(tensor(gpu, randomArray(8, 22), [1, C, 2, 2]));
    const scale = tape.watch(tensor(gpu, p.scale, [C])); // tracked, but without requiresGrad
    const [bias, mean, variance] = [p.bias, p.mean, p.variance].map((d) => tensor(gpu, d, [C])) as [Tensor, Tensor, Tensor];
    const y = await tape.run(() => batchNorm(x, { scale, bias, mean, variance }));
    await expect(tape.backward(y)).rejects.toThrow(/get gradients only when one of them has requiresGrad set before the forward pass/);
    tape.dispose();
    for (const t of [x, scale, bias, mean, variance, y]) t.dispose();
    expect(gpu.memory().inUse).toBe(before);
  });

  it('rejects parameters of the wrong shape and a negative epsilon', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, randomArray(12, 1), [1, 3, 2, 2]);
    const c3 = tensor(gpu, [1, 1, 1], [3]);
    const c2 = tensor(gpu, [1, 1], [2]);
    await expect(batchNormKernel(x, { scale: c3, bias: c2, mean: c3, variance: c3 })).rejects.toThrow(ShapeError);
    await expect(batchNormKernel(x, { scale: c3, bias: c2, mean: c3, variance: c3 })).rejects.toThrow(/bias must be \[C\] = \[3\] for x \[1, 3, 2, 2\], got \[2\]/);
    await expect(batchNormKernel(x, { scale: c3, bias: c3, mean: c3, variance: c3, epsilon: -1 })).rejects.toThrow(/epsilon must be ≥ 0/);
    for (const t of [x, c3, c2]) t.dispose();
  });
});
