/**
 * The ONNX exporter of the benchmarks (src/bench/onnx-export.ts): ONNX Runtime (onnxruntime-node,
 * CPU) runs the exported file and must give our forward pass's outputs, for networks that use every
 * layer type and every padding form, on a non-square input (a swapped H and W would show).
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { modelToOnnx } from '../src/bench/onnx-export.js';
import { noGrad } from '../src/autodiff/tape.js';
import { modelFromSpec } from '../src/nets/model.js';
import type { ModelSpec, Weights } from '../src/nets/spec.js';
import { tensor } from '../src/runtime/tensor.js';
import { getGpu, randomArray } from './helpers.js';

const H = 10;
const W = 14;

/** Every layer type; conv and pool padding as pixels, pairs, quadruples, 'same' and 'valid'. */
const IMAGE_NET: ModelSpec = {
  name: 'every-layer',
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
    { name: 'pool3', type: 'avgpool2d', kernel: 2, padding: 'same' },
    { name: 'act5', type: 'relu' },
    { name: 'gap', type: 'gap' },
    { name: 'drop', type: 'dropout', p: 0.3 },
    { name: 'fc', type: 'linear', in: 5, out: 7 },
    { name: 'bn2', type: 'batchnorm', features: 7 },
    { name: 'prob', type: 'softmax' },
  ],
};

const FLAT_NET: ModelSpec = {
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

describe('modelToOnnx', () => {
  for (const spec of [IMAGE_NET, FLAT_NET]) {
    it(`${spec.name}: ONNX Runtime computes our forward pass`, async () => {
      const gpu = await getGpu();
      // Batch-norm statistics that are not the identity, so that each of them matters.
      const bn = (n: number, seed: number) => ({
        weight: randomArray(n, seed, 0.5, 1.5),
        bias: randomArray(n, seed + 1),
        running_mean: randomArray(n, seed + 2),
        running_var: randomArray(n, seed + 3, 0.2, 2),
      });
      const weights: Weights = spec === IMAGE_NET ? { bn1: bn(4, 10), bn2: bn(7, 20) } : {};
      const model = modelFromSpec(gpu, spec, weights, { seed: 3, allowMissing: true });
      const batch = 2;
      const data = randomArray(batch * spec.input.reduce((a, b) => a * b, 1), 5, 0, 1);
      const x = tensor(gpu, data, [batch, ...spec.input]);
      const y = await noGrad(gpu, () => model.forward(x));
      const ours = await y.read();
      const session = await ort.InferenceSession.create(await modelToOnnx(model));
      const out = await session.run({ input: new ort.Tensor('float32', data, [batch, ...spec.input]) });
      const theirs = out.output!;
      expect(theirs.dims).toEqual(y.shape);
      const t = theirs.data as Float32Array;
      let worst = 0;
      for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - t[i]!));
      expect(worst).toBeLessThan(1e-5);
      // The outputs are not all alike (a network that lost its input would give one row twice).
      expect(ours.slice(0, ours.length / 2)).not.toEqual(ours.slice(ours.length / 2));
      await session.release();
      for (const v of [x, y]) v.dispose();
      model.dispose();
    });
  }
});
