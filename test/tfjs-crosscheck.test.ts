/**
 * The methods against an independent implementation: TF.js (CPU backend) running the same
 * VGG-style network with the same random weights and inputs. Guided backprop and DeconvNet use
 * TF.js custom-gradient ReLUs; SmoothGrad is fed the very noise our GPU stream produced.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomNormal } from '../src/kernels/random.js';
import { modelFromSpec, type Model } from '../src/nets/model.js';
import type { ModelSpec } from '../src/nets/spec.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import * as saliency from '../src/saliency/index.js';
import { getGpu, randomArray } from './helpers.js';

const spec: ModelSpec = {
  name: 'vgg-mini',
  input: [3, 16, 16],
  layers: [
    { name: 'conv1', type: 'conv2d', in: 3, out: 8, kernel: 3, padding: 1 },
    { name: 'relu1', type: 'relu' },
    { name: 'conv2', type: 'conv2d', in: 8, out: 8, kernel: 3, padding: 1 },
    { name: 'relu2', type: 'relu' },
    { name: 'pool1', type: 'maxpool2d', kernel: 2 },
    { name: 'conv3', type: 'conv2d', in: 8, out: 16, kernel: 3, padding: 1 },
    { name: 'relu3', type: 'relu' },
    { name: 'conv4', type: 'conv2d', in: 16, out: 16, kernel: 3, padding: 1 },
    { name: 'relu4', type: 'relu' },
    { name: 'pool2', type: 'maxpool2d', kernel: 2 },
    { name: 'flat', type: 'flatten' },
    { name: 'fc1', type: 'linear', in: 256, out: 32 },
    { name: 'relu5', type: 'relu' },
    { name: 'fc2', type: 'linear', in: 32, out: 10 },
  ],
};

type ReluKind = 'ordinary' | 'guided' | 'deconv';

const reluWith = (kind: ReluKind) =>
  kind === 'ordinary'
    ? tf.relu
    : (tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
        save([x]);
        return {
          value: tf.relu(x),
          gradFunc: (dy: tf.Tensor, [input]: tf.Tensor[]) =>
            kind === 'guided' ? dy.mul(input!.greater(0)).mul(dy.greater(0)) : tf.relu(dy),
        };
      }) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor);

/** The same network in TF.js (NHWC inside, NCHW at the edges). */
class TfNet {
  w: Record<string, tf.Tensor> = {};
  constructor(weights: Record<string, { shape: number[]; data: Float32Array }>) {
    for (const [k, v] of Object.entries(weights)) {
      const t = tf.tensor(v.data, v.shape);
      // conv [out, in, kh, kw] → [kh, kw, in, out]; linear [out, in] stays (used as x·Wᵀ)
      this.w[k] = v.shape.length === 4 ? t.transpose([2, 3, 1, 0]) : t;
    }
  }
  conv(x: tf.Tensor4D, name: string, relu: (x: tf.Tensor) => tf.Tensor) {
    return relu(tf.conv2d(x, this.w[`${name}.weight`] as tf.Tensor4D, 1, 'same').add(this.w[`${name}.bias`]!)) as tf.Tensor4D;
  }
  /** NCHW input → features at relu4 (NHWC). */
  features(xNchw: tf.Tensor, kind: ReluKind): tf.Tensor4D {
    const r = reluWith(kind);
    let h = xNchw.transpose([0, 2, 3, 1]) as tf.Tensor4D;
    h = this.conv(h, 'conv1', r);
    h = this.conv(h, 'conv2', r);
    h = tf.maxPool(h, 2, 2, 'valid');
    h = this.conv(h, 'conv3', r);
    return this.conv(h, 'conv4', r);
  }
  /** relu4 features (NHWC) → logits. */
  head(a: tf.Tensor4D, kind: ReluKind): tf.Tensor2D {
    const r = reluWith(kind);
    const p = tf.maxPool(a, 2, 2, 'valid').transpose([0, 3, 1, 2]); // back to NCHW so flatten is C,H,W
    const flat = p.reshape([p.shape[0]!, -1]);
    const h = r(tf.matMul(flat, this.w['fc1.weight']!, false, true).add(this.w['fc1.bias']!));
    return tf.matMul(h, this.w['fc2.weight']!, false, true).add(this.w['fc2.bias']!) as tf.Tensor2D;
  }
  inputGradient(x: Float32Array, shape: number[], classes: number[], kind: ReluKind): Float32Array {
    const onehot = tf.oneHot(classes, 10).toFloat();
    const g = tf.grad((xx: tf.Tensor) => this.head(this.features(xx, kind), kind).mul(onehot).sum())(tf.tensor(x, shape));
    return g.dataSync() as Float32Array;
  }
}

const N = 2;
// Two images with different value ranges ([0, 1] and [−2, 3]), so a per-image σ is tested.
const X = Float32Array.from(randomArray(N * 3 * 16 * 16, 21, 0, 1), (v, i) => (i < 3 * 16 * 16 ? v : 5 * v - 2));
const CLASSES = [3, 7];
let model: Model;
let x: Tensor;
let tfNet: TfNet;

/** Max-normalised comparison: float32 sums in a different order differ by ~1e-6 relative. */
function expectMatch(ours: ArrayLike<number>, theirs: ArrayLike<number>, tol = 1e-4) {
  expect(ours.length).toBe(theirs.length);
  let scale = 0;
  for (let i = 0; i < theirs.length; i++) scale = Math.max(scale, Math.abs(theirs[i]!));
  expect(scale).toBeGreaterThan(0);
  let worst = 0;
  for (let i = 0; i < theirs.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!) / scale);
  expect(worst).toBeLessThan(tol);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  const gpu = await getGpu();
  model = modelFromSpec(gpu, spec, undefined, { seed: 5 });
  x = tensor(gpu, X, [N, 3, 16, 16]);
  tfNet = new TfNet(await model.exportWeights());
});

describe('cross-check against TF.js gradients of the same network', () => {
  it('logits agree', async () => {
    const ours = await (await model.forward(x)).read();
    const theirs = tfNet.head(tfNet.features(tf.tensor(X, [N, 3, 16, 16]), 'ordinary'), 'ordinary').dataSync();
    expectMatch(ours, theirs, 1e-5);
  });

  for (const [method, kind] of [
    ['vanilla', 'ordinary'],
    ['guidedBackprop', 'guided'],
    ['deconvnet', 'deconv'],
  ] as const) {
    it(`${method} = TF.js input gradient with ${kind} ReLUs`, async () => {
      const ours = await (await saliency[method](model, x, { target: CLASSES })).read();
      expectMatch(ours, tfNet.inputGradient(X, [N, 3, 16, 16], CLASSES, kind));
    });
  }

  it('Gradient × Input', async () => {
    const ours = await (await saliency.gradTimesInput(model, x, { target: CLASSES })).read();
    const g = tfNet.inputGradient(X, [N, 3, 16, 16], CLASSES, 'ordinary');
    expectMatch(ours, g.map((v, i) => v * X[i]!));
  });

  it('Grad-CAM at relu4', async () => {
    const ours = await (await saliency.gradCam(model, x, { target: CLASSES, layer: 'relu4', upsample: 'none' })).read();
    const A = tfNet.features(tf.tensor(X, [N, 3, 16, 16]), 'ordinary');
    const onehot = tf.oneHot(CLASSES, 10).toFloat();
    const dA = tf.grad((a: tf.Tensor) => tfNet.head(a as tf.Tensor4D, 'ordinary').mul(onehot).sum())(A);
    const alpha = dA.mean([1, 2], true); // over h, w (NHWC)
    const map = tf.relu(A.mul(alpha).sum(3)); // [N, h, w]
    expectMatch(ours, map.dataSync());
  });

  /**
   * TF.js's input gradient of every noisy copy SmoothGrad (seed 9, 6 samples, σ = 0.2 of each
   * image's range) runs, [N][samples·pixels]: the noise is read back from our seeded GPU stream at
   * the offsets smoothGrad documents, the gradients are TF.js's own.
   */
  const SG = { samples: 6, noiseLevel: 0.2, seed: 9, batchSize: 4 }; // 6 = 4 + 2: a partial last batch
  const PIXELS = 3 * 16 * 16;
  async function tfSampleGradients(): Promise<Float32Array[]> {
    const gpu = await getGpu();
    const { samples, noiseLevel, seed } = SG;
    const out: Float32Array[] = [];
    for (let i = 0; i < N; i++) {
      const img = X.subarray(i * PIXELS, (i + 1) * PIXELS);
      const sigma = noiseLevel * (Math.max(...img) - Math.min(...img));
      // The noise our stream gives image i: values (i·samples + k)·pixels onwards, N(0, σ²).
      const noise = await (await randomNormal(gpu, [samples, 3, 16, 16], { seed, offset: i * samples * PIXELS, std: sigma })).read();
      const noisy = Float32Array.from(noise, (v, j) => v + img[j % PIXELS]!);
      out.push(tfNet.inputGradient(noisy, [samples, 3, 16, 16], new Array(samples).fill(CLASSES[i]), 'ordinary'));
    }
    return out;
  }
  /** Per pixel over the samples (float64): E[g], E[g²], and the population variance E[g²] − E[g]². */
  function sampleMoments(grads: Float32Array[]) {
    const { samples } = SG;
    const mean = new Float64Array(N * PIXELS);
    const meanSquare = new Float64Array(N * PIXELS);
    const variance = new Float64Array(N * PIXELS);
    grads.forEach((g, i) => {
      for (let j = 0; j < PIXELS; j++) {
        let s1 = 0;
        let s2 = 0;
        for (let k = 0; k < samples; k++) {
          const v = g[k * PIXELS + j]!;
          s1 += v;
          s2 += v * v;
        }
        const m = s1 / samples;
        mean[i * PIXELS + j] = m;
        meanSquare[i * PIXELS + j] = s2 / samples;
        // Two-pass (Σ (g − ḡ)²) / n: the same quantity as E[g²] − E[g]², without the cancellation.
        let d2 = 0;
        for (let k = 0; k < samples; k++) d2 += (g[k * PIXELS + j]! - m) ** 2;
        variance[i * PIXELS + j] = d2 / samples;
      }
    });
    return { mean, meanSquare, variance };
  }

  it('SmoothGrad with the same noise tensors', async () => {
    const ours = await (await saliency.smoothGrad(model, x, { target: CLASSES, ...SG })).read();
    expectMatch(ours, sampleMoments(await tfSampleGradients()).mean);
  });

  // The linear-model tests elsewhere give every sample the same gradient (variance 0, E[g²] = E[g]²),
  // so only a network whose gradient changes with the noise tells these formulas apart.
  it("SmoothGrad² (aggregate 'meanSquare') and VarGrad (aggregate 'variance') with the same noise tensors", async () => {
    const { mean, meanSquare, variance } = sampleMoments(await tfSampleGradients());
    // The check has teeth: the gradients really vary between the noisy copies, so E[g²] is far
    // from E[g]², and the population and sample (n − 1) variances differ by 6/5.
    let vMax = 0;
    let mMax = 0;
    for (let j = 0; j < variance.length; j++) {
      vMax = Math.max(vMax, variance[j]!);
      mMax = Math.max(mMax, meanSquare[j]!);
      expect(meanSquare[j]!).toBeGreaterThanOrEqual(mean[j]! ** 2 - 1e-12);
    }
    expect(vMax).toBeGreaterThan(0.05 * mMax);
    const sq = await saliency.smoothGrad(model, x, { target: CLASSES, ...SG, aggregate: 'meanSquare' });
    const vg = await saliency.smoothGrad(model, x, { target: CLASSES, ...SG, aggregate: 'variance' });
    expect(sq.shape).toEqual([N, 3, 16, 16]);
    expect(vg.shape).toEqual([N, 3, 16, 16]);
    expectMatch(await sq.read(), meanSquare);
    // VarGrad in float32 as E[g²] − E[g]² loses a little to cancellation: same max-normalised 1e-4.
    expectMatch(await vg.read(), variance);
    sq.dispose();
    vg.dispose();
  });
});
