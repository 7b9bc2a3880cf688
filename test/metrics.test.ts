/**
 * The metrics (docs/metrics.md) on cases worked out by hand, with tiny models whose scores can be
 * computed on paper: a linear model l_c(x) = Σ_p w_cp x_p + b_c (flatten → linear), scored on its
 * logit or softmax. Also: bad input is refused, naming the metric, before any forward pass; runs
 * report progress, stop on an AbortSignal, and leave no GPU memory behind.
 */
import { describe, expect, it } from 'vitest';
import { imputeNoisyLinear } from '../src/kernels/perturb.js';
import { modelFromSpec, type Model } from '../src/nets/model.js';
import { loadModel } from '../src/nets/zoo.js';
import { CancelledError } from '../src/runtime/errors.js';
import { initGpu, type Gpu } from '../src/runtime/gpu.js';
import { MiB, type MessageLevel } from '../src/runtime/memory.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import * as metrics from '../src/saliency/metrics/index.js';
import { rankTensor } from '../src/saliency/metrics/common.js';
import { expectClose, getGpu, randomArray } from './helpers.js';
import { uniformReference } from './reference/random.js';

/** A linear classifier over a 1×h×w image: logits W x + b. */
function linearModel(gpu: Gpu, h: number, w: number, weights: number[][], bias: number[]): Model {
  return modelFromSpec(
    gpu,
    {
      name: 'linear',
      input: [1, h, w],
      layers: [
        { name: 'flat', type: 'flatten' },
        { name: 'fc', type: 'linear', in: h * w, out: weights.length },
      ],
    },
    { fc: { weight: weights.flat(), bias } },
  );
}

const dot = (a: readonly number[], b: ArrayLike<number>) => a.reduce((s, v, i) => s + v * b[i]!, 0);
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Wraps a model so that its forward passes are counted (bad input must be refused before any). */
function counted(model: Model): { model: Model; calls: () => number } {
  let calls = 0;
  const forward = model.forward.bind(model);
  const spy = Object.create(model) as Model;
  spy.forward = (...args) => {
    calls++;
    return forward(...args);
  };
  return { model: spy, calls: () => calls };
}

describe('deletion and insertion on a linear model', () => {
  // 3×3 image, class 0's logit weights; class 1's logit is 0.
  const w = [3, -1, 2, 0.5, 4, 1, -2, 1.5, 2.5];
  const b0 = 0.25;
  const x = [1, 2, 0.5, 1, 1, 2, 1, 0.5, 1];

  it('a constant map deletes in row-major order (step 1: one point per pixel), and AUC is the trapezoid rule', async () => {
    const gpu = await getGpu();
    const model = linearModel(gpu, 3, 3, [w, new Array(9).fill(0)], [b0, 0]);
    const xt = tensor(gpu, x, [1, 1, 3, 3]);
    const before = gpu.memory();
    const [r] = await metrics.deletion(model, xt, { data: new Float32Array(9).fill(7), shape: [1, 1, 3, 3] }, { step: 1, score: 'logit', target: 0 });
    // Point k: pixels 0 … k−1 (row-major) are 0, so the logit is b + Σ_{p ≥ k} w_p x_p.
    const expected = Array.from({ length: 10 }, (_, k) => b0 + dot(w.slice(k), x.slice(k)));
    expectClose(r!.curve, expected, 1e-5, 1e-5);
    const trapezoid = (expected.reduce((a, v) => a + v, 0) - expected[0]! / 2 - expected[9]! / 2) / 9;
    expect(r!.auc).toBeCloseTo(trapezoid, 5);
    expect(r!.target).toBe(0);
    // Insertion from a zero baseline: b + Σ_{p < k} w_p x_p.
    const [ins] = await metrics.insertion(model, xt, { data: new Float32Array(9), shape: [1, 1, 3, 3] }, { step: 1, score: 'logit', target: 0, baseline: 'zero' });
    expectClose(ins!.curve, Array.from({ length: 10 }, (_, k) => b0 + dot(w.slice(0, k), x.slice(0, k))), 1e-5, 1e-5);
    expect(gpu.memory().inUse).toBe(before.inUse);
    expect(gpu.memory().tensors).toBe(before.tensors);
    xt.dispose();
    model.dispose();
  });

  it('step 2 on 9 pixels: n = ⌈9/2⌉ = 5 steps, the last one clamped to H·W', async () => {
    const gpu = await getGpu();
    const model = linearModel(gpu, 3, 3, [w, new Array(9).fill(0)], [b0, 0]);
    const xt = tensor(gpu, x, [1, 1, 3, 3]);
    const [r] = await metrics.deletion(model, xt, { data: new Float32Array(9).fill(1), shape: [1, 1, 3, 3] }, { step: 2, score: 'logit', target: 0 });
    const expected = [0, 2, 4, 6, 8, 9].map((k) => b0 + dot(w.slice(k), x.slice(k)));
    expectClose(r!.curve, expected, 1e-5, 1e-5);
    xt.dispose();
    model.dispose();
  });

  it('deleting in the order of the gradient (constant x) or of gradient × input is the fastest drop of all 24 orders', async () => {
    const gpu = await getGpu();
    // Deleting pixel p lowers the logit by w_p x_p, so removing the k largest contributions first
    // gives the lowest score after every k: no order of the 2×2 pixels does better at any point.
    const w4 = [0.5, -1, 3, 2];
    const model = linearModel(gpu, 2, 2, [w4, [0, 0, 0, 0]], [0.1, 0]);
    const perms: number[][] = [];
    const permute = (rest: number[], acc: number[]) => (rest.length ? rest.forEach((v, i) => permute([...rest.slice(0, i), ...rest.slice(i + 1)], [...acc, v])) : perms.push(acc));
    permute([0, 1, 2, 3], []);
    for (const [xs, name] of [
      [[1, 1, 1, 1], 'vanilla'],
      [[2, 0.5, 0.25, 1.5], 'gradTimesInput'],
    ] as const) {
      const n = perms.length;
      const xt = tensor(gpu, Array.from({ length: n }, () => xs).flat(), [n, 1, 2, 2]);
      // Map j ranks the pixels in the order perms[j] (value 4 first).
      const maps = new Float32Array(4 * n);
      perms.forEach((perm, j) => perm.forEach((p, k) => (maps[4 * j + p] = 4 - k)));
      const all = await metrics.deletion(model, xt, { data: maps, shape: [n, 1, 2, 2] }, { step: 1, score: 'logit', target: 0 });
      const method = await metrics.metricMethod('test', name).run(model, xt, { target: new Array(n).fill(0) });
      const ours = await metrics.deletion(model, xt, method, { step: 1, score: 'logit', target: 0, kind: 'cam' });
      method.dispose();
      for (let k = 0; k <= 4; k++) {
        const best = Math.min(...all.map((r) => r.curve[k]!));
        expect(ours[0]!.curve[k]!).toBeCloseTo(best, 5);
      }
      expect(ours[0]!.auc).toBeCloseTo(Math.min(...all.map((r) => r.auc)), 5);
      // And strictly better than the worst order.
      expect(ours[0]!.auc).toBeLessThan(Math.max(...all.map((r) => r.auc)) - 0.5);
      xt.dispose();
    }
    model.dispose();
  });

  it('scores the softmax probability by default, and the sigmoid of a single output', async () => {
    const gpu = await getGpu();
    const two = linearModel(gpu, 3, 3, [w, new Array(9).fill(0.5)], [b0, 0]);
    const one = linearModel(gpu, 3, 3, [w], [b0]);
    const xt = tensor(gpu, x, [1, 1, 3, 3]);
    const flat = { data: new Float32Array(9).fill(1), shape: [1, 1, 3, 3] };
    const [p2] = await metrics.deletion(two, xt, flat, { step: 3, target: 0 });
    const [p1] = await metrics.deletion(one, xt, flat, { step: 3, target: 0 });
    [0, 3, 6, 9].forEach((k, i) => {
      const l0 = b0 + dot(w.slice(k), x.slice(k));
      const l1 = dot(new Array(9 - k).fill(0.5), x.slice(k));
      expect(p2!.curve[i]!).toBeCloseTo(Math.exp(l0) / (Math.exp(l0) + Math.exp(l1)), 6);
      expect(p1!.curve[i]!).toBeCloseTo(sigmoid(l0), 6);
    });
    xt.dispose();
    two.dispose();
    one.dispose();
  });

  it("the 'blur' baseline is x convolved with the normalised 11×11 Gaussian (σ = 5), zero-padded", async () => {
    const gpu = await getGpu();
    const [h, wd] = [9, 13];
    const img = randomArray(2 * h * wd, 5, 0, 1);
    const xt = tensor(gpu, img, [1, 2, h, wd]);
    const blurred = await metrics.blurImages(xt);
    const g = (d: number) => Math.exp(-(d * d) / 50);
    let total = 0;
    for (let i = -5; i <= 5; i++) for (let j = -5; j <= 5; j++) total += g(i) * g(j);
    const expected = new Float64Array(2 * h * wd);
    for (let c = 0; c < 2; c++) {
      for (let y = 0; y < h; y++) {
        for (let x0 = 0; x0 < wd; x0++) {
          let s = 0;
          for (let i = -5; i <= 5; i++) {
            for (let j = -5; j <= 5; j++) {
              const [yy, xx] = [y + i, x0 + j];
              if (yy >= 0 && yy < h && xx >= 0 && xx < wd) s += (g(i) * g(j) * img[(c * h + yy) * wd + xx]!) / total;
            }
          }
          expected[(c * h + y) * wd + x0] = s;
        }
      }
    }
    expectClose(await blurred.read(), expected, 1e-5, 1e-4);
    blurred.dispose();
    xt.dispose();
  });

  it('insertion starts from the blurred image and ends at x; steps that change nothing cost no forward pass', async () => {
    const gpu = await getGpu();
    const base = linearModel(gpu, 3, 3, [w, new Array(9).fill(0)], [b0, 0]);
    const { model, calls } = counted(base);
    const xt = tensor(gpu, x, [1, 1, 3, 3]);
    const blurred = await (await metrics.blurImages(xt)).read();
    const [r] = await metrics.insertion(model, xt, { data: new Float32Array(9).fill(1), shape: [1, 1, 3, 3] }, { step: 1, score: 'logit', target: 0 });
    const expected = Array.from({ length: 10 }, (_, k) => b0 + dot(w, [...x.slice(0, k), ...blurred.slice(k)]));
    expectClose(r!.curve, expected, 1e-5, 1e-5);
    // Deletion of an image that is 0 but for pixels 0 and 1: after them, nothing changes.
    const sparse = tensor(gpu, [1, 2, 0, 0, 0, 0, 0, 0, 0], [1, 1, 3, 3]);
    const run = () => metrics.deletion(model, sparse, { data: new Float32Array(9).fill(1), shape: [1, 1, 3, 3] }, { step: 1, score: 'logit', target: 0 });
    // The first deletion on this model also measures the memory of one perturbed image (a forward
    // pass whose scores are thrown away); later ones know it.
    let calls0 = calls();
    await run();
    expect(calls() - calls0).toBe(3);
    calls0 = calls();
    const [d] = await run();
    expectClose(d!.curve, [b0 + 3 - 2, b0 - 2, b0, b0, b0, b0, b0, b0, b0, b0], 1e-5, 1e-5);
    // One forward pass for the clean image and one batch for points 1 and 2 only.
    expect(calls() - calls0).toBe(2);
    sparse.dispose();
    xt.dispose();
    base.dispose();
  });
});

describe('ROAD', () => {
  it('imputes a 3×3 image by hand: the centre and a corner removed', async () => {
    const gpu = await getGpu();
    const xt = tensor(gpu, [1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
    // Ranks: pixel 4 (centre) first, pixel 0 (corner) second.
    const ranks = tensor(gpu, [1, 2, 3, 4, 0, 5, 6, 7, 8], [1, 9], 'int32');
    // Corner: neighbours 2 (direct), 4 (direct), v11 (diagonal): weights 1/6, 1/6, 1/12 over 5/12,
    //   v00 = (2/6 + 4/6 + v11/12) / (5/12) = (12 + v11) / 5.
    // Centre: v11 = (2 + 4 + 6 + 8)/6 + (v00 + 3 + 7 + 9)/12 = (59 + v00) / 12.
    // So 5 v00 = 12 + (59 + v00)/12: v00 = 203/59, v11 = 3684/708.
    const { images, iterations } = await imputeNoisyLinear(xt, ranks, [{ image: 0, lo: 0, hi: 2 }], { sigma: 0, seed: 0 });
    expectClose(await images.read(), [203 / 59, 2, 3, 4, 3684 / 708, 6, 7, 8, 9], 1e-5, 1e-5);
    expect(iterations[0]).toBeLessThanOrEqual(2); // CG: at most as many steps as unknowns
    // The centre alone: the plain weighted mean of its neighbours.
    const centre = await imputeNoisyLinear(xt, ranks, [{ image: 0, lo: 0, hi: 1 }], { sigma: 0, seed: 0 });
    expect((await centre.images.read())[4]).toBeCloseTo((2 + 4 + 6 + 8) / 6 + (1 + 3 + 7 + 9) / 12, 5);
    for (const t of [xt, ranks, images, centre.images]) t.dispose();
  });

  it('solves larger systems to a relative residual of 1e-5 (checked in float64), keeps the kept pixels, and adds σ = 0.01 noise to the removed ones only', async () => {
    const gpu = await getGpu();
    const [h, w] = [24, 20];
    const hw = h * w;
    const img = randomArray(2 * hw, 11, 0, 1);
    const xt = tensor(gpu, img, [1, 2, h, w]);
    const order = randomArray(hw, 12).map((v, i) => v * 1000 + i);
    const rank = new Int32Array(hw);
    [...order.keys()].sort((a, b) => order[b]! - order[a]!).forEach((p, k) => (rank[p] = k));
    const ranks = tensor(gpu, rank, [1, hw], 'int32');
    const lo = 0;
    const hi = Math.round(0.7 * hw);
    const removed = (p: number) => rank[p]! >= lo && rank[p]! < hi;
    const exact = await (await imputeNoisyLinear(xt, ranks, [{ image: 0, lo, hi }], { sigma: 0, seed: 0 })).images.read();
    for (let c = 0; c < 2; c++) {
      // ‖b − A v‖ / ‖b‖ of the symmetric system, in float64.
      let rr = 0;
      let bb = 0;
      for (let p = 0; p < hw; p++) {
        const v = exact[c * hw + p]!;
        if (!removed(p)) {
          expect(v).toBe(img[c * hw + p]);
          continue;
        }
        const [y, x] = [Math.floor(p / w), p % w];
        let diag = 0;
        let rhs = 0;
        let off = 0;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const [ny, nx] = [y + dy, x + dx];
            if ((dy === 0 && dx === 0) || ny < 0 || nx < 0 || ny >= h || nx >= w) continue;
            const wt = dy !== 0 && dx !== 0 ? 1 / 12 : 1 / 6;
            diag += wt;
            const q = ny * w + nx;
            if (removed(q)) off += wt * exact[c * hw + q]!;
            else rhs += wt * img[c * hw + q]!;
          }
        }
        rr += (rhs - (diag * v - off)) ** 2;
        bb += rhs * rhs;
      }
      expect(Math.sqrt(rr / bb)).toBeLessThan(2e-5); // float32 rounding on top of CG's 1e-5
    }
    const noisy = await imputeNoisyLinear(xt, ranks, [{ image: 0, lo, hi, key: 3 }], { sigma: 0.01, seed: 7 });
    const v = await noisy.images.read();
    const again = await (await imputeNoisyLinear(xt, ranks, [{ image: 0, lo, hi, key: 3 }, { image: 0, lo, hi, key: 4 }], { sigma: 0.01, seed: 7 })).images.read();
    expect([...again.subarray(0, 2 * hw)]).toEqual([...v]); // same seed and key, whatever the batch
    expect([...again.subarray(2 * hw)]).not.toEqual([...v]); // another key: other noise
    const diffs: number[] = [];
    for (let i = 0; i < 2 * hw; i++) {
      if (removed(i % hw)) diffs.push(v[i]! - exact[i]!);
      else expect(v[i]).toBe(img[i]);
    }
    const mean = diffs.reduce((a, d) => a + d, 0) / diffs.length;
    const std = Math.sqrt(diffs.reduce((a, d) => a + (d - mean) ** 2, 0) / diffs.length);
    expect(Math.abs(mean)).toBeLessThan(0.0015);
    expect(std).toBeGreaterThan(0.009);
    expect(std).toBeLessThan(0.011);
    for (const t of [xt, ranks, noisy.images]) t.dispose();
  });

  it('MoRF and LeRF on the linear model: f_c(imputed) − f_c(x) at each percentage, and the summaries', async () => {
    const gpu = await getGpu();
    const w = [1, 0, 0, 0, 2, 0, 0, 0, -1];
    const model = linearModel(gpu, 3, 3, [w], [0.5]);
    const xt = tensor(gpu, [1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
    // The map ranks the centre first, the corner second, …, and the last two: pixels 7 then 8.
    const map = { data: Float32Array.from([8, 7, 6, 5, 9, 4, 3, 2, 1]), shape: [1, 1, 3, 3] };
    const [r] = await metrics.road(model, xt, map, { percentages: [20, 10], sigma: 0, score: 'logit', target: 0 });
    const l = (v: number[]) => 0.5 + dot(w, v);
    const lx = l([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // 20% of 9 pixels: round(1.8) = 2 removed: MoRF the centre and the corner (values by hand above).
    const morf20 = l([203 / 59, 2, 3, 4, 3684 / 708, 6, 7, 8, 9]) - lx;
    // 10%: round(0.9) = 1 pixel: the centre; its neighbours' weighted mean.
    const morf10 = l([1, 2, 3, 4, 60 / 12, 6, 7, 8, 9]) - lx;
    // LeRF 10%: pixel 8 (corner: neighbours 5, 7 direct, 4 diagonal): (6/6 + 8/6 + 5/12) / (5/12) = 6.6.
    const lerf10 = l([1, 2, 3, 4, 5, 6, 7, 8, 6.6]) - lx;
    // LeRF 20%: pixels 7 and 8. v8 = (6/6 + v7/6 + 5/12)·12/5; v7 (bottom edge: 5 above, 7 and v8
    //   beside, 4 and 6 diagonal) = (5/6 + 7/6 + v8/6 + 4/12 + 6/12) / (3/6 + 2/12).
    //   So v8 = 17/5 + 2 v7/5 and v7 = 17/4 + v8/4: v8 = 51/9, v7 = 17/3.
    const [v7, v8] = [17 / 3, 51 / 9];
    const lerf20 = l([1, 2, 3, 4, 5, 6, 7, v7, v8]) - lx;
    expect(r!.percentages).toEqual([20, 10]);
    expectClose(r!.morf, [morf20, morf10], 1e-4, 1e-5);
    expectClose(r!.lerf, [lerf20, lerf10], 1e-4, 1e-5);
    expect(r!.morfMean).toBeCloseTo((morf20 + morf10) / 2, 4);
    expect(r!.lerfMean).toBeCloseTo((lerf20 + lerf10) / 2, 4);
    expect(r!.combined).toBeCloseTo((r!.lerfMean - r!.morfMean) / 2, 10);
    xt.dispose();
    model.dispose();
  });
});

describe('Average Drop and Increase in Confidence', () => {
  it('by hand on a two-class linear model: O = f_c(x ⊙ E/max E)', async () => {
    const gpu = await getGpu();
    const w = [2, 1, -1, -3];
    const model = linearModel(gpu, 2, 2, [w, [0, 0, 0, 0]], [0, 0]);
    const xt = tensor(gpu, [1, 1, 1, 1, 1, 1, 1, 1], [2, 1, 2, 2]);
    // Image 0: E = [4, 2, 0, 0]/4 (a signed map: |·|) → x⊙E = [1, .5, 0, 0]: l0 = 2.5 vs −1: an increase.
    // Image 1: E = [0, 0, 1, 1] → l0 = −4 vs −1: a drop.
    const map = { data: Float32Array.from([-4, 2, 0, 0, 0, 0, 1, 1]), shape: [2, 1, 2, 2] };
    const r = await metrics.averageDrop(model, xt, map, { target: 0 });
    const [y, o0, o1] = [sigmoid(-1), sigmoid(2.5), sigmoid(-4)]; // softmax of (l0, 0) is σ(l0)
    expect(r.images[0]!.y).toBeCloseTo(y, 6);
    expect(r.images[0]!.o).toBeCloseTo(o0, 6);
    expect(r.images[1]!.o).toBeCloseTo(o1, 6);
    expect(r.drop).toBeCloseTo((100 * (0 + (y - o1) / y)) / 2, 4);
    expect(r.increase).toBe(50);
    xt.dispose();
    model.dispose();
  });

  it('a map at a layer resolution is normalised, then upsampled bilinearly', async () => {
    const gpu = await getGpu();
    const model = linearModel(gpu, 4, 4, [new Array(16).fill(1)], [-8]);
    const xt = tensor(gpu, new Array(16).fill(1), [1, 1, 4, 4]);
    // 2×2 → 4×4 with half-pixel centres: rows/columns weights (1), (3/4, 1/4), (1/4, 3/4), (1).
    const r = await metrics.averageDrop(model, xt, { data: Float32Array.from([2, 0, 0, 0]), shape: [1, 1, 2, 2] }, { target: 0 });
    const axis = [1, 0.75, 0.25, 0];
    let sum = 0;
    for (const a of axis) for (const b of axis) sum += a * b;
    expect(r.images[0]!.o).toBeCloseTo(sigmoid(sum - 8), 6);
    xt.dispose();
    model.dispose();
  });
});

describe('max-sensitivity', () => {
  it('is 0 for the gradient of a linear model, and ‖w⊙δ‖/‖w⊙x‖ (max over the seeded δ) for gradient × input', async () => {
    const gpu = await getGpu();
    const w = [1, -2, 0.5, 3];
    const model = linearModel(gpu, 2, 2, [w, [0, 0, 0, 0]], [0, 0]);
    const x = [0.5, 1, 1.5, 2, 1, 1, 1, 1];
    const xt = tensor(gpu, x, [2, 1, 2, 2]);
    const vanilla = await metrics.maxSensitivity(model, 'vanilla', xt, { target: 0, samples: 3 });
    expect(vanilla.values).toEqual([0, 0]);
    const [r, n, seed] = [0.1, 5, 9];
    const got = await metrics.maxSensitivity(model, 'gradTimesInput', xt, { target: 0, samples: n, radius: r, seed, batchSize: 3 });
    for (let i = 0; i < 2; i++) {
      let best = 0;
      for (let j = 0; j < n; j++) {
        const u = uniformReference(4, seed, (i * n + j) * 4);
        const delta = Array.from(u, (v) => -r + 2 * r * v);
        const num = Math.hypot(...w.map((wp, p) => wp * delta[p]!));
        const den = Math.hypot(...w.map((wp, p) => wp * x[4 * i + p]!));
        best = Math.max(best, num / den);
      }
      expect(got.values[i]).toBeCloseTo(best, 5);
    }
    expect(got.targets).toEqual([0, 0]);
    xt.dispose();
    model.dispose();
  });
});

describe('model randomisation', () => {
  it('Model.clone() copies the weights into new buffers: same outputs, and changing or disposing the copy leaves the original as it was', async () => {
    const gpu = await getGpu();
    const model = modelFromSpec(gpu, { input: [2, 6, 6], layers: [{ name: 'conv', type: 'conv2d', in: 2, out: 3, kernel: 3 }, { name: 'bn', type: 'batchnorm', features: 3 }, { name: 'relu', type: 'relu' }, { name: 'flat', type: 'flatten' }, { name: 'fc', type: 'linear', in: 48, out: 4 }] }, undefined, { seed: 6 });
    const xt = tensor(gpu, randomArray(2 * 72, 41), [2, 2, 6, 6]);
    const before = gpu.memory().tensors;
    const out = async (m: Model) => {
      const y = await m.forward(xt);
      const v = await y.read();
      y.dispose();
      return [...v];
    };
    const original = await out(model);
    const copy = model.clone();
    expect(gpu.memory().tensors).toBe(before + model.namedParameters().size);
    expect(await out(copy)).toEqual(original);
    for (const [name, t] of copy.namedParameters()) expect(t.buffer).not.toBe(model.namedParameters().get(name)!.buffer);
    const w = copy.layer('fc').params.get('weight')!;
    gpu.writeBuffer(w.buffer, new Float32Array(w.size));
    expect(await out(copy)).not.toEqual(original);
    copy.dispose();
    expect(gpu.memory().tensors).toBe(before);
    expect(await out(model)).toEqual(original);
    xt.dispose();
    model.dispose();
  });

  it('a re-initialised copy redraws weights as N(0, σ²) with σ of the trained ones, zeroes biases, and leaves the original as it was', async () => {
    const gpu = await getGpu();
    const big = modelFromSpec(gpu, { input: [1, 8, 8], layers: [{ name: 'conv', type: 'conv2d', in: 1, out: 64, kernel: 5 }, { name: 'flat', type: 'flatten' }, { name: 'fc', type: 'linear', in: 64 * 16, out: 3 }] }, undefined, { seed: 3 });
    const trained = await big.layer('conv').params.get('weight')!.read();
    const fcBefore = await big.layer('fc').params.get('weight')!.read();
    const copy = await metrics.reinitialisedCopy(big, ['conv'], { seed: 5 });
    const fresh = await copy.layer('conv').params.get('weight')!.read();
    const std = (v: Float32Array) => {
      const m = v.reduce((a, b) => a + b, 0) / v.length;
      return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
    };
    expect(std(fresh) / std(trained)).toBeGreaterThan(0.95);
    expect(std(fresh) / std(trained)).toBeLessThan(1.05);
    expect(Math.abs(fresh.reduce((a, b) => a + b, 0) / fresh.length)).toBeLessThan(0.1 * std(trained));
    expect([...(await copy.layer('conv').params.get('bias')!.read())].every((v) => v === 0)).toBe(true);
    expect([...(await copy.layer('fc').params.get('weight')!.read())]).toEqual([...fcBefore]);
    expect([...(await big.layer('conv').params.get('weight')!.read())]).toEqual([...trained]); // the original
    const same = await metrics.reinitialisedCopy(big, ['conv'], { seed: 5 });
    expect([...(await same.layer('conv').params.get('weight')!.read())]).toEqual([...fresh]);
    copy.dispose();
    same.dispose();
    big.dispose();
  });

  it('cascading and independent steps compare the maps of the right copies (vanilla of a two-layer linear model, by hand)', async () => {
    const gpu = await getGpu();
    // 8×8 → 3 → 2, linear: the gradient of logit c is Σ_j W2[c, j] W1[j, :], whatever the image.
    const model = modelFromSpec(
      gpu,
      {
        name: 'two',
        input: [1, 8, 8],
        layers: [
          { name: 'flat', type: 'flatten' },
          { name: 'fc1', type: 'linear', in: 64, out: 3 },
          { name: 'fc2', type: 'linear', in: 3, out: 2 },
        ],
      },
      { fc1: { weight: randomArray(192, 21), bias: [0.1, 0.2, 0.3] }, fc2: { weight: randomArray(6, 22), bias: [1, -1] } },
    );
    const xt = tensor(gpu, randomArray(2 * 64, 23, 0, 1), [2, 1, 8, 8]);
    const before = gpu.memory();
    const weightsBefore = await model.layer('fc1').params.get('weight')!.read();
    const gradient = async (m: { layer(n: string): { params: ReadonlyMap<string, Tensor> } }, c: number) => {
      const [w1, w2] = [await m.layer('fc1').params.get('weight')!.read(), await m.layer('fc2').params.get('weight')!.read()];
      return Float32Array.from({ length: 64 }, (_, p) => [0, 1, 2].reduce((s, j) => s + w2[c * 3 + j]! * w1[j * 64 + p]!, 0));
    };
    const scaled = (v: Float32Array) => {
      const a = v.map(Math.abs);
      const [lo, hi] = [Math.min(...a), Math.max(...a)];
      return a.map((u) => (u - lo) / (hi - lo));
    };
    const g0 = await gradient(model, 1);
    for (const order of ['cascading', 'independent'] as const) {
      const r = await metrics.randomisation(model, 'vanilla', xt, { order, seed: 4, target: 1 });
      expect(r.layers).toEqual(['fc2', 'fc1']);
      expect(r.steps.map((s) => s.layer)).toEqual([null, 'fc2', 'fc1']);
      expect(r.steps.map((s) => s.randomised)).toEqual(order === 'cascading' ? [[], ['fc2'], ['fc2', 'fc1']] : [[], ['fc2'], ['fc1']]);
      expect(r.steps[0]!.mean).toEqual({ spearmanAbs: 1, spearmanSigned: 1, ssim: 1 });
      for (let k = 1; k <= 2; k++) {
        const copy = await metrics.reinitialisedCopy(model, r.steps[k]!.randomised, { seed: 4 });
        const g = await gradient(copy, 1);
        copy.dispose();
        const step = r.steps[k]!;
        for (let i = 0; i < 2; i++) {
          expect(step.spearmanAbs[i]).toBeCloseTo(metrics.spearman(g.map(Math.abs), g0.map(Math.abs)), 5);
          expect(step.spearmanSigned[i]).toBeCloseTo(metrics.spearman(g, g0), 5);
          expect(step.ssim[i]).toBeCloseTo(metrics.ssim(scaled(g), scaled(g0), 8, 8), 5);
        }
        expect(step.mean.spearmanAbs).toBeCloseTo(step.spearmanAbs[0]!, 10);
      }
      // A re-initialised top layer changes this map: the check can fail.
      expect(r.steps[1]!.mean.spearmanSigned).toBeLessThan(0.99);
    }
    expect([...(await model.layer('fc1').params.get('weight')!.read())]).toEqual([...weightsBefore]);
    expect(gpu.memory().tensors).toBe(before.tensors);
    expect(gpu.memory().inUse).toBe(before.inUse);
    xt.dispose();
    model.dispose();
  });
});

describe('pointing game', () => {
  it('a hit when the maximum lies in the box grown by the tolerance; ties go to the first pixel in row-major order', async () => {
    const map = new Float32Array(3 * 16);
    map[1 * 4 + 2] = 5; // image 0: maximum at (x 2, y 1)
    map.fill(1, 16, 32); // image 1: flat: the maximum is pixel 0, (0, 0)
    map[32 + 3 * 4 + 3] = -9; // image 2: |·| for an attribution map: (3, 3)
    const m = { data: map, shape: [3, 1, 4, 4] };
    const r = await metrics.pointingGame(m, [[2, 1, 3, 2], [[3, 3, 4, 4], [1, 1, 2, 2]], [0, 0, 2, 2]], { kind: 'attribution' });
    expect(r.images.map((i) => i.point)).toEqual([[2, 1], [0, 0], [3, 3]]);
    expect(r.images.map((i) => i.hit)).toEqual([true, false, false]);
    expect([r.hits, r.misses, r.accuracy]).toEqual([1, 2, 1 / 3]);
    const grown = await metrics.pointingGame(m, [[2, 1, 3, 2], [[3, 3, 4, 4], [1, 1, 2, 2]], [0, 0, 2, 2]], { kind: 'attribution', tolerance: 1 });
    expect(grown.images.map((i) => i.hit)).toEqual([true, true, false]);
    expect((await metrics.pointingGame(m, [[2, 1, 3, 2], [1, 1, 2, 2], [0, 0, 2, 2]], { kind: 'attribution', tolerance: 2 })).accuracy).toBe(1);
  });
});

describe('bad input is refused, naming the metric, before any forward pass', () => {
  it('maps that do not fit, non-finite maps, bad steps, percentages and method names', async () => {
    const gpu = await getGpu();
    const base = linearModel(gpu, 3, 3, [new Array(9).fill(1), new Array(9).fill(0)], [0, 0]);
    const { model, calls } = counted(base);
    const xt = tensor(gpu, new Array(18).fill(1), [2, 1, 3, 3]);
    const big = counted(linearModel(gpu, 8, 8, [new Array(64).fill(1), new Array(64).fill(0)], [0, 0]));
    const x8 = tensor(gpu, new Array(128).fill(1), [2, 1, 8, 8]);
    const ok = { data: new Float32Array(18).fill(1), shape: [2, 1, 3, 3] };
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ['deletion', () => metrics.deletion(model, xt, { data: new Float32Array(9), shape: [1, 1, 3, 3] }), /deletion: a map of shape \[1, 1, 3, 3\] does not fit images \[2, 1, 3, 3\]/],
      ['insertion', () => metrics.insertion(model, xt, { data: new Float32Array(24), shape: [2, 1, 3, 4] }), /insertion: a map of shape \[2, 1, 3, 4\] does not fit/],
      ['road', () => metrics.road(model, xt, { data: new Float32Array(36), shape: [2, 2, 3, 3] }), /road: a map of shape \[2, 2, 3, 3\] does not fit/],
      ['averageDrop', () => metrics.averageDrop(model, xt, { data: new Float32Array(17), shape: [2, 1, 3, 3] }), /averageDrop: the map holds 17 values/],
      ['deletion', () => metrics.deletion(model, xt, { data: Float32Array.from(ok.data, (v, i) => (i === 5 ? NaN : v)), shape: ok.shape }), /deletion: the map holds a non-finite value \(NaN\) at index 5/],
      ['insertion', () => metrics.insertion(model, xt, { data: Float32Array.from(ok.data, (v, i) => (i === 7 ? Infinity : v)), shape: ok.shape }), /insertion: the map holds a non-finite value \(Infinity\)/],
      ['road', () => metrics.road(model, xt, { data: Float32Array.from(ok.data, (v, i) => (i === 0 ? -Infinity : v)), shape: ok.shape }), /road: the map holds a non-finite value/],
      ['pointingGame', () => metrics.pointingGame({ data: Float32Array.from(ok.data, (v, i) => (i === 0 ? NaN : v)), shape: ok.shape }, [[0, 0, 1, 1], [0, 0, 1, 1]]), /pointingGame: the map holds a non-finite value/],
      ['deletion', () => metrics.deletion(model, xt, ok, { step: 0 }), /deletion: step must be an integer from 1 to H·W = 9, got 0/],
      ['insertion', () => metrics.insertion(model, xt, ok, { step: 10 }), /insertion: step must be an integer from 1 to H·W = 9, got 10/],
      ['deletion', () => metrics.deletion(model, xt, ok, { step: 1.5 }), /deletion: step must be an integer/],
      ['road', () => metrics.road(model, xt, ok, { percentages: [10, 100] }), /road: percentages must lie in \(0, 100\), got 100/],
      ['road', () => metrics.road(model, xt, ok, { percentages: [0] }), /road: percentages must lie in \(0, 100\), got 0/],
      ['road', () => metrics.road(model, xt, ok, { percentages: [-5] }), /road: percentages must lie in \(0, 100\), got -5/],
      ['maxSensitivity', () => metrics.maxSensitivity(model, 'vanila', xt), /maxSensitivity: unknown method "vanila"; methods: vanilla, deconvnet/],
      ['randomisation', () => metrics.randomisation(model, 'gradcam', xt), /randomisation: unknown method "gradcam"/],
      ['deletion', () => metrics.deletion(model, xt, ok, { batchSize: 0 }), /deletion: batchSize must be 'auto' or a positive integer, got 0/],
      ['insertion', () => metrics.insertion(model, xt, ok, { baseline: 'noise' as never }), /insertion: baseline must be 'zero', 'blur', 'mean' or a Tensor/],
      ['averageDrop', () => metrics.averageDrop(model, xt, ok, { score: 'logit' as never }), /averageDrop: score must be 'probability'/],
      ['randomisation', () => metrics.randomisation(big.model, 'vanilla', x8, { layers: ['flat'] }), /randomisation: layer 'flat' has no weights/],
      ['randomisation', () => metrics.randomisation(model, 'vanilla', xt), /randomisation: SSIM's 7×7 window needs images of at least 7×7, got 3×3/],
      ['pointingGame', () => metrics.pointingGame(ok, [[0, 0, 1, 1]]), /pointingGame: 1 box entries for 2 maps/],
    ];
    for (const [name, run, message] of cases) {
      const error = await run().then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(error, name).not.toBeNull();
      expect(error!.message).toMatch(message);
      expect(error!.message.startsWith(`${name}: `)).toBe(true);
    }
    expect(calls() + big.calls()).toBe(0);
    xt.dispose();
    x8.dispose();
    base.dispose();
    big.model.dispose();
  });
});

describe('long runs', () => {
  it('report progress, stop on an AbortSignal with nothing left allocated, and free everything when they finish', async () => {
    const gpu = await getGpu();
    const model = modelFromSpec(gpu, { input: [1, 12, 12], layers: [{ name: 'conv', type: 'conv2d', in: 1, out: 4, kernel: 3, padding: 1 }, { name: 'relu', type: 'relu' }, { name: 'gap', type: 'gap' }, { name: 'fc', type: 'linear', in: 4, out: 3 }] }, undefined, { seed: 2 });
    const xt = tensor(gpu, randomArray(6 * 144, 31, 0, 1), [6, 1, 12, 12]);
    const map = { data: randomArray(6 * 144, 32), shape: [6, 1, 12, 12] };
    const before = gpu.memory();
    const seen: [number, number][] = [];
    await metrics.deletion(model, xt, map, { batchSize: 16, onProgress: (d, t) => seen.push([d, t]) });
    expect(seen.length).toBeGreaterThan(1);
    expect(seen.at(-1)![0]).toBe(seen.at(-1)![1]);
    expect(seen.every(([d], i) => i === 0 || d > seen[i - 1]![0])).toBe(true);
    const runs: [string, (signal: AbortSignal, onProgress: () => void) => Promise<unknown>][] = [
      ['deletion', (signal, onProgress) => metrics.deletion(model, xt, map, { batchSize: 8, signal, onProgress })],
      ['insertion', (signal, onProgress) => metrics.insertion(model, xt, map, { batchSize: 8, signal, onProgress })],
      ['road', (signal, onProgress) => metrics.road(model, xt, map, { batchSize: 8, signal, onProgress })],
      ['averageDrop', (signal, onProgress) => metrics.averageDrop(model, xt, map, { batchSize: 2, signal, onProgress })],
      ['maxSensitivity', (signal, onProgress) => metrics.maxSensitivity(model, 'vanilla', xt, { batchSize: 4, signal, onProgress })],
      ['randomisation', (signal, onProgress) => metrics.randomisation(model, 'gradCam', xt, { batchSize: 2, signal, onProgress })],
    ];
    for (const [name, run] of runs) {
      const controller = new AbortController();
      const error = await run(controller.signal, () => controller.abort()).catch((e: unknown) => e);
      expect(error, name).toBeInstanceOf(CancelledError);
      expect((error as Error).message).toBe(`${name}: cancelled`);
      expect(gpu.memory().tensors, name).toBe(before.tensors);
      expect(gpu.memory().inUse, name).toBe(before.inUse);
      await run(new AbortController().signal, () => undefined);
      expect(gpu.memory().tensors, name).toBe(before.tensors);
      expect(gpu.memory().inUse, name).toBe(before.inUse);
    }
    xt.dispose();
    model.dispose();
  });
});

describe('memory budget', () => {
  it('every metric batches within a small budget by default, with the results of one batch (within 1e-6); a batchSize too large to fit is split, with one warning', async () => {
    const messages: { message: string; level: MessageLevel }[] = [];
    const budget = 4 * MiB; // fashion-vgg's weights take about 1 MiB, a 28×28 image's forward pass about 0.1 MiB
    const gpu = await initGpu({ memoryBudget: budget, log: (message, level) => messages.push({ message, level }) });
    try {
      const model = await loadModel(gpu, 'fashion-vgg');
      const n = 2;
      const x = tensor(gpu, randomArray(n * 784, 41, 0.05, 1), [n, 1, 28, 28]); // no pixel 0: deletion scores every step
      const map = { data: randomArray(n * 784, 42), shape: [n, 1, 28, 28] };
      const runs: Record<string, (extra: { batchSize?: number }) => Promise<unknown>> = {
        deletion: (e) => metrics.deletion(model, x, map, e),
        insertion: (e) => metrics.insertion(model, x, map, e),
        road: (e) => metrics.road(model, x, map, { percentages: [20, 60], ...e }),
        averageDrop: (e) => metrics.averageDrop(model, x, map, e),
        maxSensitivity: (e) => metrics.maxSensitivity(model, 'vanilla', x, { samples: 6, ...e }),
        randomisation: (e) => metrics.randomisation(model, 'gradTimesInput', x, { layers: ['fc2', 'conv4'], ...e }),
        // SmoothGrad batches its own samples: it gets one image per call, and fills the budget with
        // its samples; its map of an image does not depend on the batches.
        'maxSensitivity of smoothGrad': (e) => metrics.maxSensitivity(model, 'smoothGrad', x, { samples: 2, methodOptions: { samples: 24 }, ...e }),
      };
      /** The batches of the metric's main loop, from its 'info' line (the last one it sent). */
      const batchesOf = (name: string) => {
        const metric = name.split(' ')[0]!;
        const line = messages.filter((m) => m.level === 'info' && m.message.startsWith(`${metric}: `)).at(-1)?.message ?? '';
        return Number(/ in (\d+) batch/.exec(line)?.[1]);
      };
      const numbers = (r: unknown): number[] => (typeof r === 'number' ? [r] : Array.isArray(r) ? r.flatMap(numbers) : r && typeof r === 'object' ? Object.values(r).flatMap(numbers) : []);
      await gpu.sync();
      const start = gpu.memory();
      const within: Record<string, unknown> = {};
      const peaks: string[] = [];
      const batches: Record<string, number> = {};
      for (const [name, run] of Object.entries(runs)) {
        gpu.trim();
        gpu.resetPeak();
        within[name] = await run({}); // batchSize 'auto', the default
        const m = gpu.memory();
        expect(m.peakBytes, name).toBeLessThanOrEqual(budget);
        batches[name] = batchesOf(name);
        peaks.push(`${name} ${(m.peakBytes / MiB).toFixed(2)} MiB (live ${(m.peakInUseBytes / MiB).toFixed(2)} MiB; ${batches[name]} batches)`);
      }
      expect(messages.filter((m) => m.level === 'warning')).toEqual([]);
      // The budget, not the cap of 128, decided: 56 perturbed images (28 steps of 2 images) and 12 perturbed copies to explain.
      expect(batches.deletion).toBeGreaterThan(1);
      expect(batches.maxSensitivity).toBeGreaterThan(1);
      // SmoothGrad's samples ran in batches that fit what was left.
      // SmoothGrad's samples ran in batches that fit what the metric left (24 samples would not).
      const sampleBatches = messages.map((m) => /^smoothGrad: (\d+) samples in \d+ batch(?:es)? of (\d+)/.exec(m.message)).filter((r) => r !== null && Number(r[1]) >= 24);
      expect(sampleBatches.length).toBeGreaterThan(0);
      for (const r of sampleBatches) expect(Number(r![2])).toBeLessThan(24);

      // An explicit batch of 56 cannot fit: split, with one warning, and still within the budget.
      messages.length = 0;
      gpu.resetPeak();
      const split = await runs.deletion!({ batchSize: 56 });
      expect(gpu.memory().peakBytes).toBeLessThanOrEqual(budget);
      const warnings = messages.filter((m) => m.level === 'warning').map((m) => m.message);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^deletion: a batch of 56 perturbed images needs about .*, more than the memory budget leaves \(4 MiB, of which .* in use\); running batches of at most \d+ instead$/);
      expect(batchesOf('deletion')).toBeGreaterThan(1);

      // One batch each, the budget lifted: the same numbers within 1e-6.
      gpu.setMemoryBudget(Infinity);
      for (const [name, run] of Object.entries(runs)) {
        messages.length = 0;
        const one = numbers(await run({ batchSize: 1000 }));
        expect(batchesOf(name), name).toBe(1);
        const batched = numbers(within[name]);
        expect(batched.length, name).toBe(one.length);
        expectClose(batched, one, 1e-6, 0);
        if (name === 'deletion') expectClose(numbers(split), one, 1e-6, 0);
      }
      await gpu.sync();
      expect(gpu.memory().tensors).toBe(start.tensors);
      expect(gpu.memory().inUse).toBe(start.inUse);
      console.log(`metrics within ${budget / MiB} MiB, peaks: ${peaks.join(', ')}`);
      x.dispose();
      model.dispose();
    } finally {
      gpu.destroy();
    }
  }, 120_000);
});
