/**
 * modelToOnnx: our sequential models written as ONNX files. Every layer type, exported and loaded
 * back by loadOnnxModel and by ONNX Runtime, gives the model's own output; the gradient through the
 * import equals the model's; a model that uses every layer type round-trips.
 */
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { noGrad } from '../src/autodiff/tape.js';
import { modelFromSpec } from '../src/nets/model.js';
import { modelToOnnx } from '../src/nets/onnx/export.js';
import { loadOnnxModel } from '../src/nets/onnx/model.js';
import type { ModelSpec } from '../src/nets/spec.js';
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
    const err = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
    expect(err(gotData, wantData)).toBeLessThan(1e-5);
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
    const r = await session.run({ input: new ort.Tensor('float32', await x.read(), [2, 3, 13, 11]) });
    await session.release();
    expect(err(r[session.outputNames[0]!]!.data as Float32Array, wantData)).toBeLessThan(1e-5);
    // The input gradient of a class, through the model and through its import.
    const g1 = await saliency.vanilla(model, x, { target: 2 });
    const g2 = await saliency.vanilla(onnx, x, { target: 2 });
    const [a, b] = [await g1.read(), await g2.read()];
    expect(err(a, b) / Math.max(...b.map(Math.abs))).toBeLessThan(1e-5);
    for (const t of [x, want, got, g1, g2]) t.dispose();
    onnx.dispose();
    model.dispose();
  });
});
