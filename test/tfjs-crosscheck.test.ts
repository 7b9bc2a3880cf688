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

  it('SmoothGrad with the same noise tensors', async () => {
    const gpu = await getGpu();
    const samples = 6;
    const noiseLevel = 0.2;
    const seed = 9;
    const ours = await (await saliency.smoothGrad(model, x, { target: CLASSES, samples, noiseLevel, seed, batchSize: 4 })).read();
    const pixels = 3 * 16 * 16;
    const expected = new Float32Array(N * pixels);
    for (let i = 0; i < N; i++) {
      const img = X.subarray(i * pixels, (i + 1) * pixels);
      const sigma = noiseLevel * (Math.max(...img) - Math.min(...img));
      // The noise our stream gives image i: values (i·samples + k)·pixels onwards, N(0, σ²).
      const noise = await (await randomNormal(gpu, [samples, 3, 16, 16], { seed, offset: i * samples * pixels, std: sigma })).read();
      const noisy = Float32Array.from(noise, (v, j) => v + img[j % pixels]!);
      const g = tfNet.inputGradient(noisy, [samples, 3, 16, 16], new Array(samples).fill(CLASSES[i]), 'ordinary');
      for (let j = 0; j < pixels; j++) {
        let s = 0;
        for (let k = 0; k < samples; k++) s += g[k * pixels + j]!;
        expected[i * pixels + j] = s / samples;
      }
    }
    expectMatch(ours, expected);
  });
});
