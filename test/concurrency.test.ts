/**
 * Concurrent callers on one Gpu: the saliency methods run one at a time in the device's queue
 * (`gpu.exclusive`), so `Promise.all` of several of them gives what running them one after
 * another gives, and leaves nothing allocated.
 */
import { describe, expect, it } from 'vitest';
import { noGrad } from '../src/autodiff/tape.js';
import * as ops from '../src/autodiff/ops/index.js';
import { modelFromSpec } from '../src/nets/model.js';
import { FASHION_GAP } from '../src/nets/zoo.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import * as saliency from '../src/saliency/index.js';
import type { Detection } from '../src/saliency/drise.js';
import { getGpu, randomArray } from './helpers.js';

async function setup() {
  const gpu = await getGpu();
  const model = modelFromSpec(gpu, FASHION_GAP, undefined, { seed: 3 });
  const x = tensor(gpu, randomArray(2 * 28 * 28, 5, 0, 1), [2, 1, 28, 28]);
  return { gpu, model, x };
}

type Run = () => Promise<Tensor>;

function runs(model: Awaited<ReturnType<typeof setup>>['model'], x: Tensor): Record<string, Run> {
  return {
    vanilla: () => saliency.vanilla(model, x, { target: 'top' }),
    deconvnet: () => saliency.deconvnet(model, x, { target: 3 }),
    guidedBackprop: () => saliency.guidedBackprop(model, x, { target: [1, 2] }),
    gradTimesInput: () => saliency.gradTimesInput(model, x, { target: 4 }),
    smoothGrad: () => saliency.smoothGrad(model, x, { target: 'top', samples: 6, batchSize: 4, seed: 9 }),
    cam: () => saliency.cam(model, x, { target: 5 }),
    gradCam: () => saliency.gradCam(model, x, { target: 'top' }),
    guidedGradCam: () => saliency.guidedGradCam(model, x, { target: 7, layer: 'relu3' }),
  };
}

const readAll = async (ts: Tensor[]) => Promise.all(ts.map(async (t) => [...(await t.read())]));

describe('concurrent callers on one Gpu', () => {
  it('Promise.all of every method equals running them one after another', async () => {
    const { gpu, model, x } = await setup();
    const all = runs(model, x);
    const sequential: Tensor[] = [];
    for (const run of Object.values(all)) sequential.push(await run());
    const want = await readAll(sequential);
    sequential.forEach((t) => t.dispose());
    const before = gpu.memory().tensors;

    const together = await Promise.all(Object.values(all).map((run) => run()));
    const got = await readAll(together);
    together.forEach((t) => t.dispose());
    Object.keys(all).forEach((name, i) => expect(got[i], name).toEqual(want[i]));
    expect(gpu.memory().tensors).toBe(before);
    x.dispose();
    model.dispose();
  });

  it('callers that make tensors of their own between calls keep them', async () => {
    const { gpu, model, x } = await setup();
    const before = gpu.memory().tensors;
    // Each caller makes its input, awaits a method, then runs kernels of its own while another
    // caller's method is running: its tensors must not land in that method's scopes.
    const one = async (seed: number) => {
      const xi = tensor(gpu, randomArray(28 * 28, seed, 0, 1), [1, 1, 28, 28]);
      const g = await saliency.vanilla(model, xi, { target: 1 });
      const doubled = await ops.scale(g, 2);
      const cam = await saliency.gradCam(model, xi, { target: 1 });
      const sum = [...(await doubled.read())].reduce((a, b) => a + b, 0) + [...(await cam.read())].reduce((a, b) => a + b, 0);
      for (const t of [xi, g, doubled, cam]) t.dispose();
      return sum;
    };
    const sequential = [];
    for (const s of [11, 12, 13]) sequential.push(await one(s));
    expect(await Promise.all([11, 12, 13].map(one))).toEqual(sequential);
    expect(gpu.memory().tensors).toBe(before);
    x.dispose();
    model.dispose();
  });

  it('gpu.exclusive runs jobs one at a time, in order; a job may call the methods (Node)', async () => {
    const { gpu, model, x } = await setup();
    const order: string[] = [];
    const job = (name: string, ms: number) =>
      gpu.exclusive(async () => {
        order.push(`${name} start`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${name} end`);
        return name;
      });
    expect(await Promise.all([job('a', 30), job('b', 1), job('c', 10)])).toEqual(['a', 'b', 'c']);
    expect(order).toEqual(['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
    // A failed job does not stop the queue.
    await expect(gpu.exclusive(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    // Nesting: a job that calls a queued method runs it as part of itself.
    const nested = await gpu.exclusive(async () => {
      const y = await noGrad(gpu, () => model.forward(x, { logits: true }));
      const g = await saliency.vanilla(model, x, { target: 0 });
      const out = [y.shape, g.shape];
      y.dispose();
      g.dispose();
      return out;
    });
    expect(nested).toEqual([
      [2, 10],
      [2, 1, 28, 28],
    ]);
    x.dispose();
    model.dispose();
  });

  it('D-RISE and a gradient method together equal the two alone', async () => {
    const { gpu, model } = await setup();
    const image = tensor(gpu, randomArray(3 * 16 * 16, 7, 0, 1), [1, 3, 16, 16]);
    // A toy detector: one box whose score is the mean brightness of its left half.
    const detector = async (images: Tensor): Promise<Detection[][]> => {
      const v = await images.read();
      const n = images.shape[0]!;
      const per = v.length / n;
      return Array.from({ length: n }, (_, i) => {
        let s = 0;
        for (let p = 0; p < per; p++) if (p % 16 < 8) s += v[i * per + p]!;
        return [{ box: [0, 0, 8, 16], scores: [s / per, 1 - s / per] }];
      });
    };
    const target: Detection = { box: [0, 0, 8, 16], scores: [0.5, 0.5] };
    const x = tensor(gpu, randomArray(28 * 28, 8, 0, 1), [1, 1, 28, 28]);
    const alone = [await saliency.drise(detector, image, { target, masks: 64, batchSize: 16 }), await saliency.vanilla(model, x, { target: 2 })];
    const want = await readAll(alone);
    alone.forEach((t) => t.dispose());
    const both = await Promise.all([saliency.drise(detector, image, { target, masks: 64, batchSize: 16 }), saliency.vanilla(model, x, { target: 2 })]);
    expect(await readAll(both)).toEqual(want);
    both.forEach((t) => t.dispose());
    for (const t of [image, x]) t.dispose();
    model.dispose();
  });
});
