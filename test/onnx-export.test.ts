/**
 * modelToOnnx (src/nets/onnx/export.ts): our sequential models written as ONNX files, the network
 * `npm run bench -- --peer ort` and `npm run bench:web` hand to ONNX Runtime. Every layer type,
 * exported and loaded back by loadOnnxModel and by ONNX Runtime (onnxruntime-node, CPU), gives the
 * model's own output; the gradient through the import equals the model's. Two more networks cover
 * every padding form (pixels, pairs, quadruples, 'same', 'valid'), dilation and stride pairs,
 * groups, layers without bias and batch-norm statistics that are not the identity, on a non-square
 * input (a swapped H and W would show).
 */
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { noGrad } from '../src/autodiff/tape.js';
import { modelFromSpec } from '../src/nets/model.js';
import { modelToOnnx } from '../src/nets/onnx/export.js';
import { loadOnnxModel } from '../src/nets/onnx/model.js';
import type { ModelSpec, Weights } from '../src/nets/spec.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor } from '../src/runtime/tensor.js';
import * as saliency from '../src/saliency/index.js';
import { getGpu, randomArray } from './helpers.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await getGpu();
});

const EVERY_LAYER: ModelSpec = {
  name: 'every-layer',
  input: [3, 13, 11],
  layers: [
    { name: 'conv1', type: 'conv2d', in: 3, out: 8, kernel: 3, stride: 2, padding: 'same' },
    { name: 'bn1', type: 'batchnorm', features: 8, eps: 1e-3 },
    { name: 'lrelu', type: 'leakyrelu', alpha: 0.1 },
    { name: 'dw', type: 'conv2d', in: 8, out: 16, kernel: 3, padding: 1, groups: 8 },
    { name: 'relu6', type: 'relu6' },
    { name: 'pool', type: 'maxpool2d', kernel: 2, ceilMode: true },
    { name: 'avg', type: 'avgpool2d', kernel: 3, stride: 1, padding: 1, countIncludePad: false },
    { name: 'conv2', type: 'conv2d', in: 16, out: 12, kernel: [1, 3], padding: [0, 1], dilation: 1 },
    { name: 'tanh', type: 'tanh' },
    { name: 'relu', type: 'relu' },
    { name: 'gap', type: 'gap' },
    { name: 'drop', type: 'dropout', p: 0.3 },
    { name: 'fc', type: 'linear', in: 12, out: 5 },
    { name: 'sig', type: 'sigmoid' },
    { name: 'fc2', type: 'linear', in: 5, out: 4 },
    { name: 'softmax', type: 'softmax' },
  ],
};

const H = 10;
const W = 14;

/** Padding as pixels, pairs, quadruples, 'same' and 'valid'; dilation pairs; pools with their defaults. */
const PADDINGS: ModelSpec = {
  name: 'paddings',
  input: [3, H, W],
  layers: [
    { name: 'conv1', type: 'conv2d', in: 3, out: 4, kernel: 3, padding: 'same', stride: 2 },
    { name: 'bn1', type: 'batchnorm', features: 4, eps: 1e-3 },
    { name: 'act1', type: 'leakyrelu', alpha: 0.2 },
    { name: 'conv2', type: 'conv2d', in: 4, out: 6, kernel: [3, 2], padding: [1, 2, 0, 1], dilation: [1, 2], groups: 2 },
    { name: 'act2', type: 'relu6' },
    { name: 'pool1', type: 'maxpool2d', kernel: 2, stride: 1, padding: [1, 0], ceilMode: true },
    { name: 'conv3', type: 'conv2d', in: 6, out: 5, kernel: 1, bias: false, padding: 'valid' },
    { name: 'act3', type: 'tanh' },
    { name: 'pool2', type: 'avgpool2d', kernel: 3, stride: 2, padding: 1, countIncludePad: false },
    { name: 'act4', type: 'sigmoid' },
    // 'same' padding without countIncludePad: the padded cells are not counted (as TF.js/Keras).
    { name: 'pool3', type: 'avgpool2d', kernel: 2, padding: 'same' },
    { name: 'act5', type: 'relu' },
    { name: 'gap', type: 'gap' },
    { name: 'drop', type: 'dropout', p: 0.3 },
    { name: 'fc', type: 'linear', in: 5, out: 7 },
    { name: 'bn2', type: 'batchnorm', features: 7 },
    { name: 'prob', type: 'softmax' },
  ],
};

/** A flatten in C, H, W order into linear layers (VGG's classifier), one without bias. */
const FLATTEN: ModelSpec = {
  name: 'flatten',
  input: [2, H, W],
  layers: [
    { name: 'conv', type: 'conv2d', in: 2, out: 3, kernel: 3, padding: 1 },
    { name: 'relu', type: 'relu' },
    { name: 'pool', type: 'maxpool2d', kernel: 2 },
    { name: 'flat', type: 'flatten' },
    { name: 'fc1', type: 'linear', in: 3 * (H / 2) * (W / 2), out: 6 },
    { name: 'fc2', type: 'linear', in: 6, out: 4, bias: false },
  ],
};

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('modelToOnnx', () => {
  it('every layer type: loadOnnxModel and ONNX Runtime give the model its own output; gradients agree', async () => {
    const model = modelFromSpec(gpu, EVERY_LAYER, undefined, { seed: 3 });
    const bytes = await modelToOnnx(model);
    const x = tensor(gpu, randomArray(2 * 3 * 13 * 11, 5), [2, 3, 13, 11]);
    const want = await noGrad(gpu, () => model.forward(x));
    const wantData = await want.read();
    const onnx = await loadOnnxModel(gpu, bytes);
    expect(onnx.name).toBe('every-layer');
    expect(onnx.layerNames).toContain('conv1');
    const got = await onnx.forward(x);
    const gotData = await got.read();
    expect(maxDiff(gotData, wantData)).toBeLessThan(1e-5);
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
    const r = await session.run({ input: new ort.Tensor('float32', await x.read(), [2, 3, 13, 11]) });
    await session.release();
    expect(maxDiff(r[session.outputNames[0]!]!.data as Float32Array, wantData)).toBeLessThan(1e-5);
    // The input gradient of a class, through the model and through its import.
    const g1 = await saliency.vanilla(model, x, { target: 2 });
    const g2 = await saliency.vanilla(onnx, x, { target: 2 });
    const [a, b] = [await g1.read(), await g2.read()];
    expect(maxDiff(a, b) / Math.max(...b.map(Math.abs))).toBeLessThan(1e-5);
    for (const t of [x, want, got, g1, g2]) t.dispose();
    onnx.dispose();
    model.dispose();
  });

  for (const spec of [PADDINGS, FLATTEN]) {
    it(`${spec.name}: ONNX Runtime computes our forward pass on a non-square input`, async () => {
      // Batch-norm statistics that are not the identity, so that each of them matters.
      const bn = (n: number, seed: number) => ({
        weight: randomArray(n, seed, 0.5, 1.5),
        bias: randomArray(n, seed + 1),
        running_mean: randomArray(n, seed + 2),
        running_var: randomArray(n, seed + 3, 0.2, 2),
      });
      const weights: Weights = spec === PADDINGS ? { bn1: bn(4, 10), bn2: bn(7, 20) } : {};
      const model = modelFromSpec(gpu, spec, weights, { seed: 3, allowMissing: true });
      const batch = 2;
      const data = randomArray(batch * spec.input.reduce((a, b) => a * b, 1), 5, 0, 1);
      const x = tensor(gpu, data, [batch, ...spec.input]);
      const y = await noGrad(gpu, () => model.forward(x));
      const ours = await y.read();
      const session = await ort.InferenceSession.create(await modelToOnnx(model), { executionProviders: ['cpu'] });
      const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', data, [batch, ...spec.input]) });
      const theirs = out[session.outputNames[0]!]!;
      expect(theirs.dims).toEqual(y.shape);
      expect(maxDiff(ours, theirs.data as Float32Array)).toBeLessThan(1e-5);
      // The outputs are not all alike (a network that lost its input would give one row twice).
      expect(ours.slice(0, ours.length / 2)).not.toEqual(ours.slice(ours.length / 2));
      await session.release();
      for (const v of [x, y]) v.dispose();
      model.dispose();
    });
  }
});
