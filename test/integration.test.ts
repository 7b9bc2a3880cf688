/**
 * The pieces together: a small conv net trained-style (weights need gradients) and saliency-style
 * (input gradient with swapped ReLU rules), checked for memory stability and rule coverage.
 */
import { describe, expect, it } from 'vitest';
import { Tape } from '../src/autodiff/tape.js';
import { conv2d } from '../src/autodiff/ops/conv.js';
import { relu } from '../src/autodiff/ops/activation.js';
import { maxPool2d } from '../src/autodiff/ops/pool.js';
import { linear } from '../src/autodiff/ops/linear.js';
import { flatten } from '../src/autodiff/ops/shape.js';
import { sum } from '../src/autodiff/ops/reduce.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { expectClose, getGpu, randomArray } from './helpers.js';

interface Net {
  w1: Tensor;
  b1: Tensor;
  w2: Tensor;
  b2: Tensor;
}

async function forward(net: Net, x: Tensor, fused: boolean): Promise<Tensor> {
  const a = fused
    ? await conv2d(x, net.w1, net.b1, { padding: 1, activation: 'relu' })
    : await relu(await conv2d(x, net.w1, net.b1, { padding: 1 }));
  const p = await maxPool2d(a, { kernel: 2 });
  return linear(await flatten(p), net.w2, net.b2);
}

function makeNet(gpu: Awaited<ReturnType<typeof getGpu>>): Net {
  return {
    w1: tensor(gpu, randomArray(4 * 1 * 3 * 3, 11), [4, 1, 3, 3]),
    b1: tensor(gpu, randomArray(4, 12, -0.1, 0.1), [4]),
    w2: tensor(gpu, randomArray(3 * 64, 13, -0.3, 0.3), [3, 64]),
    b2: tensor(gpu, randomArray(3, 14), [3]),
  };
}

describe('conv net forward + backward', () => {
  it('1,000 forward+backward iterations end with the buffer pool no larger than after the first', async () => {
    const gpu = await getGpu();
    const net = makeNet(gpu);
    for (const p of Object.values(net)) p.requiresGrad = true;
    const x = tensor(gpu, randomArray(2 * 64, 15, 0, 1), [2, 1, 8, 8]);
    const baseline = gpu.memory();
    let afterFirst = baseline;
    let firstLoss = NaN;
    let lastLoss = NaN;
    for (let i = 0; i < 1000; i++) {
      await gpu.scope(async () => {
        const tape = new Tape(gpu);
        tape.watch(x);
        const loss = await tape.run(async () => sum(await forward(net, x, true), 'all'));
        const grads = await tape.backward(loss);
        expect(grads.get(net.w1)).toBeDefined();
        expect(grads.get(x)).toBeDefined();
        if (i === 0 || i === 999) {
          const v = (await loss.read())[0]!;
          if (i === 0) firstLoss = v;
          else lastLoss = v;
        }
        grads.dispose();
        tape.dispose();
      });
      if (i === 0) {
        await gpu.sync();
        afterFirst = gpu.memory();
      }
    }
    await gpu.sync();
    const end = gpu.memory();
    expect(end.buffers).toBeLessThanOrEqual(afterFirst.buffers);
    expect(end.bytes).toBeLessThanOrEqual(afterFirst.bytes);
    expect(end.inUse).toBe(baseline.inUse);
    expect(end.tensors).toBe(baseline.tensors);
    expect(lastLoss).toBe(firstLoss); // same weights, same input: deterministic
  });

  it('guided and deconv rules reach ReLUs fused into conv exactly as standalone ReLUs', async () => {
    const gpu = await getGpu();
    const net = makeNet(gpu);
    const x = tensor(gpu, randomArray(2 * 64, 16, 0, 1), [2, 1, 8, 8]);
    const seed = tensor(gpu, [1, 0, 0, 0, 1, 0], [2, 3]);
    const inputGrad = (fused: boolean, rule?: 'guided' | 'deconv') =>
      gpu.scope(async () => {
        const tape = new Tape(gpu);
        tape.watch(x);
        const y = await tape.run(() => forward(net, x, fused));
        const grads = await tape.backward(y, { seed, rules: rule ? { activations: { relu: rule } } : undefined });
        const g = await grads.of(x).read();
        grads.dispose();
        tape.dispose();
        return g;
      });
    const results: Record<string, Float32Array> = {};
    for (const rule of [undefined, 'guided', 'deconv'] as const) {
      const fused = await inputGrad(true, rule);
      const separate = await inputGrad(false, rule);
      expectClose(fused, separate, 1e-6, 1e-5);
      results[rule ?? 'ordinary'] = fused;
    }
    // The three rules must give three different answers on this input.
    const differs = (a: Float32Array, b: Float32Array) => a.some((v, i) => Math.abs(v - b[i]!) > 1e-4);
    expect(differs(results.ordinary!, results.guided!)).toBe(true);
    expect(differs(results.guided!, results.deconv!)).toBe(true);
  });
});
