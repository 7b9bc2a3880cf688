import { describe, expect, it } from 'vitest';
import { conv2d, flatten, linear, maxPool2d } from '../src/autodiff/ops/index.js';
import { Gradients, Tape } from '../src/autodiff/tape.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { DataLoader, Rng } from '../src/nets/data.js';
import { loadFashionMnist } from '../src/nets/idx.js';
import { Adam, SGD, type Optimizer } from '../src/nets/optim.js';
import { crossEntropy, evaluate, predict, train } from '../src/nets/train.js';
import type { ForwardOptions, Trainable } from '../src/nets/types.js';
import { gradCheck } from './gradcheck.js';
import { expectClose, getGpu, randomArray } from './helpers.js';
import { adamReference, crossEntropyReference, sgdReference } from './reference/optim.js';

/** conv 3×3 (1→C) + ReLU → max-pool 2 → flatten → linear (C·13·13 → 10), for 28×28 inputs. */
class TinyNet implements Trainable {
  readonly params: Tensor[];
  constructor(gpu: Gpu, seed: number, channels = 8) {
    const r = new Rng(seed);
    const he = (n: number, fanIn: number) => Float32Array.from({ length: n }, () => r.normal(0, Math.sqrt(2 / fanIn)));
    const features = channels * 13 * 13;
    this.params = [
      tensor(gpu, he(channels * 9, 9), [channels, 1, 3, 3]),
      tensor(gpu, new Float32Array(channels), [channels]),
      tensor(gpu, he(10 * features, features), [10, features]),
      tensor(gpu, new Float32Array(10), [10]),
    ];
  }
  async forward(x: Tensor, _options?: ForwardOptions): Promise<Tensor> {
    const [w1, b1, w2, b2] = this.params as [Tensor, Tensor, Tensor, Tensor];
    const h = await conv2d(x, w1, b1, { activation: 'relu' });
    const p = await maxPool2d(h, { kernel: 2, stride: 2 });
    const f = flatten(p);
    const y = await linear(f, w2, b2);
    for (const t of [h, p, f]) t.dispose(); // the tape keeps what backward needs
    return y;
  }
  parameters(): Tensor[] {
    return this.params;
  }
  dispose(): void {
    for (const p of this.params) p.dispose();
  }
}

let fashion: ReturnType<typeof loadFashionMnist> | null = null;
/** The first n (≤ 256) training images of Fashion-MNIST. */
function fashionSubset(n: number): { images: Float32Array; labels: Uint8Array } {
  fashion ??= loadFashionMnist('train', undefined, { limit: 256 });
  return { images: fashion.images.subarray(0, n * 784), labels: fashion.labels.subarray(0, n) };
}

/** Runs `opt` for grads.length steps on a parameter starting at p0; returns the values after each step. */
async function runOptimizer(gpu: Gpu, opt: Optimizer, p0: Float32Array, shape: number[], grads: Float32Array[]): Promise<Float32Array[]> {
  const p = tensor(gpu, p0, shape);
  const out: Float32Array[] = [];
  for (const g of grads) {
    const gt = tensor(gpu, g, shape);
    await opt.step([p], new Gradients(new Map([[p.id, gt]])));
    gt.dispose();
    out.push(await p.read());
  }
  p.dispose();
  return out;
}

describe('optimizers against a TypeScript reference', () => {
  const shape = [37]; // not a multiple of the workgroup size
  const p0 = randomArray(37, 1);
  const grads = [2, 3, 4, 5].map((s) => randomArray(37, s, -2, 2));

  const sgdCases = [
    { lr: 0.1, momentum: 0, weightDecay: 0, nesterov: false },
    { lr: 0.05, momentum: 0.9, weightDecay: 0, nesterov: false },
    { lr: 0.05, momentum: 0.8, weightDecay: 0.01, nesterov: true },
  ];
  for (const o of sgdCases) {
    it(`SGD ${JSON.stringify(o)}`, async () => {
      const gpu = await getGpu();
      const before = gpu.memory().inUse;
      const opt = new SGD(o);
      const got = await runOptimizer(gpu, opt, p0, shape, grads);
      const want = sgdReference(p0, grads, o);
      got.forEach((g, i) => expectClose(g, want[i]!, 1e-5, 1e-5));
      expect(opt.stateCount).toBe(1);
      opt.dispose();
      expect(gpu.memory().inUse).toBe(before);
    });
  }

  const adamCases = [
    { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false },
    { lr: 3e-2, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, decoupled: false },
    { lr: 3e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decoupled: true },
  ];
  for (const o of adamCases) {
    it(`Adam ${JSON.stringify(o)}`, async () => {
      const gpu = await getGpu();
      const before = gpu.memory().inUse;
      const opt = new Adam({ ...o, decoupledWeightDecay: o.decoupled });
      const got = await runOptimizer(gpu, opt, p0, [37], grads);
      const want = adamReference(p0, grads, o);
      got.forEach((g, i) => expectClose(g, want[i]!, 2e-6, 1e-5));
      // The first Adam step moves every element by about lr (bias correction at work).
      const d0 = got[0]!.map((v, i) => Math.abs(v - p0[i]!));
      if (!o.weightDecay) for (const d of d0) expect(Math.abs(d - o.lr)).toBeLessThan(o.lr * 0.01);
      opt.dispose();
      expect(gpu.memory().inUse).toBe(before);
    });
  }

  it('leaves parameters without a gradient alone and keeps state per parameter', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    const a = tensor(gpu, [1, 2, 3], [3]);
    const b = tensor(gpu, [4, 5], [2]);
    const opt = new SGD({ lr: 0.5, momentum: 0.5 });
    const ga = tensor(gpu, [1, 1, 1], [3]);
    await opt.step([a, b], new Gradients(new Map([[a.id, ga]])));
    await opt.step([a, b], new Gradients(new Map([[a.id, ga]])));
    expectClose(await a.read(), [1 - 0.5 - 0.75, 2 - 1.25, 3 - 1.25]);
    expect([...(await b.read())]).toEqual([4, 5]);
    expect(opt.stateCount).toBe(1);
    opt.dispose();
    await expect(opt.step([a], new Gradients(new Map([[a.id, ga]])))).rejects.toThrow(/after dispose/);
    for (const t of [a, b, ga]) t.dispose();
    expect(gpu.memory().inUse).toBe(before);
  });

  it('rejects bad settings', () => {
    expect(() => new SGD({ lr: -1 })).toThrow(/lr must be > 0/);
    expect(() => new SGD({ lr: 0.1, momentum: 1 })).toThrow(/momentum must be in \[0, 1\)/);
    expect(() => new SGD({ lr: 0.1, momentum: 0, nesterov: true })).toThrow(/nesterov needs momentum/);
    expect(() => new Adam({ lr: NaN })).toThrow(/lr must be a finite number/);
    expect(() => new Adam({ beta2: 1 })).toThrow(/beta1 and beta2 must be in \[0, 1\)/);
  });
});

describe('crossEntropy', () => {
  it('matches the reference value and gradient (softmax − onehot) / N', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    const n = 5;
    const k = 7;
    const logitsData = randomArray(n * k, 11, -4, 4);
    logitsData[3] = 40; // large logits must not overflow
    const labels = [3, 0, 6, 2, 2];
    const ref = crossEntropyReference(logitsData, labels, n, k);
    await gpu.scope(async () => {
      const logits = tensor(gpu, logitsData, [n, k]);
      const tape = new Tape(gpu);
      tape.watch(logits);
      const loss = await tape.run(() => crossEntropy(logits, labels));
      expect(loss.size).toBe(1);
      expectClose(await loss.read(), [ref.loss], 1e-5, 1e-5);
      const grads = await tape.backward(loss);
      expectClose(await grads.of(logits).read(), ref.grad, 1e-6, 1e-4);
      grads.dispose();
      tape.dispose();
    });
    expect(gpu.memory().inUse).toBe(before);
  });

  it('passes a finite-difference check', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([x]) => crossEntropy(x!, [1, 3, 0]), [{ data: randomArray(12, 12, -2, 2), shape: [3, 4] }], { eps: 1e-2 });
  });

  it('rejects bad labels and shapes before allocating anything', async () => {
    const gpu = await getGpu();
    const logits = tensor(gpu, randomArray(6, 1), [2, 3]);
    const before = gpu.memory().inUse;
    await expect(crossEntropy(logits, [0, 3])).rejects.toThrow(/label 3 at index 1 is not a class index in 0\.\.2/);
    await expect(crossEntropy(logits, [0, -1])).rejects.toThrow(/label -1 at index 1/);
    await expect(crossEntropy(logits, [0.5, 1])).rejects.toThrow(/label 0.5 at index 0/);
    await expect(crossEntropy(logits, [0])).rejects.toThrow(/1 labels for 2 rows/);
    const flat = logits.reshape([6]);
    await expect(crossEntropy(flat, [0])).rejects.toThrow(/logits must be \[N, classes\], got \[6\]/);
    flat.dispose();
    expect(gpu.memory().inUse).toBe(before);
    logits.dispose();
  });
});

describe('training on Fashion-MNIST', () => {
  it('a tiny conv net learns: the loss falls, accuracy beats chance, memory stays flat', async () => {
    const gpu = await getGpu();
    const { images, labels } = fashionSubset(256);
    const model = new TinyNet(gpu, 1);
    const loader = new DataLoader(gpu, { images, labels, sampleShape: [1, 28, 28], batchSize: 32, seed: 5 });
    const optimizer = new Adam({ lr: 3e-3 });
    const accBefore = await evaluate(model, images, labels, { batchSize: 128 });
    const before = gpu.memory();
    const buffersAt: number[] = [];
    const lines: string[] = [];
    const history = await train(model, loader, {
      epochs: 5,
      optimizer,
      log: (l) => lines.push(l),
      logEvery: 4,
      onProgress: () => buffersAt.push(gpu.memory().buffers),
    });
    const losses = history.losses;
    expect(losses.length).toBe(40);
    expect(history.stopped).toBe(false);
    expect(history.epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5]);
    const last10 = losses.slice(-10).reduce((a, b) => a + b, 0) / 10;
    expect(losses[0]).toBeGreaterThan(1.5); // about ln 10 for an untrained net
    expect(last10).toBeLessThan(0.7 * losses[0]!);
    expect(history.epochs[4]!.meanLoss).toBeLessThan(history.epochs[0]!.meanLoss);

    const acc = await evaluate(model, images, labels, { batchSize: 100 });
    expect(acc).toBeGreaterThan(0.6); // chance is 0.1
    expect(acc).toBeGreaterThan(accBefore + 0.3);

    // Progress lines: epoch, step/steps, loss, running loss, throughput, and the epoch's ETA
    // (none on its last step).
    expect(lines[0]).toMatch(/^epoch 1\/5 {2}step 4\/8 {2}loss \d+\.\d{4} {2}running \d+\.\d{4} {2}\d+ img\/s {2}epoch ETA (\d+\.\d s|\d+ s|\d+m \d\ds)$/);
    expect(lines[1]).toMatch(/^epoch 1\/5 {2}step 8\/8 {2}.* img\/s$/);
    expect(lines.some((l) => /^epoch 5\/5 done: mean loss \d\.\d{4}, \d+\.\d s, \d+ img\/s$/.test(l))).toBe(true);

    // No growth: no new pool buffers after the first steps; afterwards only the model and the
    // optimizer's two moments per parameter remain.
    expect(Math.max(...buffersAt.slice(3))).toBeLessThanOrEqual(buffersAt[2]!);
    expect(gpu.memory().inUse).toBe(before.inUse + 2 * model.parameters().length);
    expect(gpu.memory().tensors).toBe(before.tensors + 2 * model.parameters().length);
    optimizer.dispose();
    expect(gpu.memory().inUse).toBe(before.inUse);
    model.dispose();
  });

  it('is reproducible by seed, stops on an abort signal, and SGD trains too', async () => {
    const gpu = await getGpu();
    const { images, labels } = fashionSubset(96);
    const run = async (signalAfter?: number) => {
      const model = new TinyNet(gpu, 2, 4);
      const loader = new DataLoader(gpu, { images, labels, sampleShape: [1, 28, 28], batchSize: 16, seed: 9 });
      const optimizer = new SGD({ lr: 0.05, momentum: 0.9 });
      const controller = new AbortController();
      let steps = 0;
      const h = await train(model, loader, {
        epochs: 2,
        optimizer,
        signal: controller.signal,
        onProgress: () => {
          if (++steps === signalAfter) controller.abort();
        },
      });
      optimizer.dispose();
      model.dispose();
      return h;
    };
    const before = gpu.memory().inUse;
    const a = await run();
    const b = await run();
    expect(a.losses.length).toBe(12);
    expect(b.losses).toEqual(a.losses);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean(a.losses.slice(-4))).toBeLessThan(mean(a.losses.slice(0, 4)));
    // onProgress runs one step late (step 3's loss is read back after step 4 is recorded), so an
    // abort in step 3's report stops training before step 5.
    const c = await run(3);
    expect(c.stopped).toBe(true);
    expect(c.losses.length).toBe(4);
    expect(c.epochs.length).toBe(1);
    expect(c.losses).toEqual(a.losses.slice(0, c.losses.length));
    expect(gpu.memory().inUse).toBe(before);
  });

  it('validates its options, and does nothing under an already aborted signal', async () => {
    const gpu = await getGpu();
    const { images, labels } = fashionSubset(16);
    const model = new TinyNet(gpu, 4, 2);
    const loader = new DataLoader(gpu, { images, labels, sampleShape: [1, 28, 28], batchSize: 8 });
    const optimizer = new Adam();
    const before = gpu.memory().inUse;
    await expect(train(model, loader, { epochs: 0, optimizer })).rejects.toThrow(/epochs must be a positive integer, got 0/);
    await expect(train(model, loader, { epochs: 1 } as never)).rejects.toThrow(/optimizer is required/);
    await expect(train(model, loader, { epochs: 2, optimizer, startEpoch: 2 })).rejects.toThrow(/startEpoch must be an integer in 0\.\.1/);
    const h = await train(model, loader, { epochs: 1, optimizer, signal: AbortSignal.abort() });
    expect(h).toEqual({ losses: [], epochs: [], stopped: true });
    expect(gpu.memory().inUse).toBe(before);
    optimizer.dispose();
    model.dispose();
  });

  it('predict gives the same logits in any batch size; evaluate counts argmax hits', async () => {
    const gpu = await getGpu();
    const { images, labels } = fashionSubset(70);
    const model = new TinyNet(gpu, 3, 4);
    const before = gpu.memory().inUse;
    const whole = await predict(model, images, { batchSize: 70 });
    const parts = await predict(model, images, { batchSize: 32 }); // 32 + 32 + 6
    expect(whole.numClasses).toBe(10);
    expect(whole.logits.length).toBe(700);
    expectClose(parts.logits, whole.logits, 1e-5, 1e-5);
    let hits = 0;
    for (let i = 0; i < 70; i++) {
      const row = whole.logits.subarray(i * 10, i * 10 + 10);
      const best = row.indexOf(Math.max(...row));
      expect(whole.classes[i]).toBe(best);
      if (best === labels[i]) hits++;
    }
    expect(await evaluate(model, images, labels, { batchSize: 32 })).toBeCloseTo(hits / 70, 10);
    await expect(predict(model, images.subarray(0, 100), {})).rejects.toThrow(/100 values are not a whole number of \[1, 28, 28\] images/);
    await expect(evaluate(model, images, labels.subarray(0, 5))).rejects.toThrow(/5 labels for 70 images/);
    expect(gpu.memory().inUse).toBe(before);
    model.dispose();
  });
});
