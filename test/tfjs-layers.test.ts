/**
 * TF.js layers models (Keras model.json): models built and saved by TF.js itself (tfjs-layers on
 * the CPU backend) are imported with loadTfjsLayersModel, and their outputs and input gradients
 * compared with TF.js's own on the same inputs.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { noGrad } from '../src/autodiff/tape.js';
import { loadTfjsLayersModel } from '../src/nets/tfjs-layers.js';
import { tensor } from '../src/runtime/tensor.js';
import * as saliency from '../src/saliency/index.js';
import { expectClose, getGpu, randomArray } from './helpers.js';

interface Saved {
  modelJson: { format: string; modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  weights: Uint8Array;
}

/** The model.json and weights TF.js writes for `model` (as model.save('file://…') would). */
async function save(model: tfl.LayersModel): Promise<Saved> {
  let saved: Saved | null = null;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = {
        modelJson: { format: 'layers-model', modelTopology: a.modelTopology as object, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs! }] },
        weights: new Uint8Array(a.weightData as ArrayBuffer),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return saved!;
}

/** Random weights everywhere (BatchNormalization's variance kept positive), seeded. */
function randomize(model: tfl.LayersModel, seed: number): void {
  model.setWeights(
    model.weights.map((w, i) => {
      const shape = w.shape as number[];
      const data = randomArray(shape.reduce((a, b) => a * b, 1), seed + i, -0.6, 0.6);
      if (w.name.includes('moving_variance')) for (let k = 0; k < data.length; k++) data[k] = 0.5 + Math.abs(data[k]!);
      return tf.tensor(data, shape);
    }),
  );
}

/** NHWC data → NCHW. */
function toNchw(data: Float32Array, [n, h, w, c]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let b = 0; b < n!; b++) for (let y = 0; y < h!; y++) for (let x = 0; x < w!; x++) for (let k = 0; k < c!; k++) {
    out[((b * c! + k) * h! + y) * w! + x] = data[((b * h! + y) * w! + x) * c! + k]!;
  } // prettier-ignore
  return out;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('TF.js layers models (Keras model.json)', () => {
  it('a Sequential conv/depthwise/batchnorm/pool/dense model: outputs match TF.js', async () => {
    const m = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [12, 11, 3], filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv1' }),
        tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'valid', name: 'dw' }),
        tfl.layers.batchNormalization({ name: 'bn', epsilon: 0.01 }),
        tfl.layers.reLU({ maxValue: 6, name: 'relu6' }),
        tfl.layers.maxPooling2d({ poolSize: 2, padding: 'same', name: 'pool' }),
        tfl.layers.flatten({ name: 'flat' }),
        tfl.layers.dense({ units: 9, activation: 'tanh', name: 'fc1' }),
        tfl.layers.dropout({ rate: 0.4, name: 'drop' }),
        tfl.layers.dense({ units: 4, activation: 'softmax', name: 'fc2' }),
      ],
    });
    randomize(m, 10);
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    const model = await loadTfjsLayersModel(gpu, await save(m), { classNames: ['a', 'b', 'c', 'd'] });
    expect(model.inputShape).toEqual([3, 12, 11]);
    expect(model.classNames).toEqual(['a', 'b', 'c', 'd']);
    const shape = [2, 12, 11, 3];
    const x = randomArray(2 * 12 * 11 * 3, 20, 0, 1);
    const expected = (m.predict(tf.tensor(x, shape)) as tf.Tensor).dataSync();
    const xt = tensor(gpu, toNchw(x, shape), [2, 3, 12, 11]);
    const y = await noGrad(gpu, () => model.forward(xt));
    expectClose(await y.read(), Float32Array.from(expected), 1e-5, 1e-4);
    y.dispose();
    xt.dispose();
    model.dispose();
    expect(gpu.memory().inUse).toBe(before);
  });

  it('a functional chain with GAP, leaky ReLU and average pooling: input gradients and CAM match TF.js', async () => {
    const input = tfl.input({ shape: [10, 10, 3] });
    let h = tfl.layers.conv2d({ filters: 5, kernelSize: 3, name: 'c1' }).apply(input) as tfl.SymbolicTensor;
    h = tfl.layers.leakyReLU({ alpha: 0.2, name: 'lrelu' }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.averagePooling2d({ poolSize: 2, strides: 2, padding: 'same', name: 'avg' }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.conv2d({ filters: 4, kernelSize: 2, dilationRate: 1, activation: 'relu', name: 'c2' }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 3, name: 'logits' }).apply(h) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: input, outputs: out });
    randomize(m, 30);
    const gpu = await getGpu();
    const model = await loadTfjsLayersModel(gpu, await save(m));
    const shape = [2, 10, 10, 3];
    const x = randomArray(2 * 300, 40, 0, 1);
    const xt = tensor(gpu, toNchw(x, shape), [2, 3, 10, 10]);
    const y = await noGrad(gpu, () => model.forward(xt));
    expectClose(await y.read(), Float32Array.from((m.predict(tf.tensor(x, shape)) as tf.Tensor).dataSync()), 1e-5, 1e-4);
    // ∂ logit_1 / ∂x, per image, in TF.js (NHWC) and ours (NCHW); and CAM works on the GAP head.
    const hot = tf.oneHot([1, 1], 3);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(m.apply(xx) as tf.Tensor, hot)))(tf.tensor(x, shape));
    const ours = await saliency.vanilla(model, xt, { target: 1 });
    expectClose(await ours.read(), toNchw(Float32Array.from(g.dataSync()), shape), 1e-5, 1e-4);
    const cam = await saliency.cam(model, xt, { target: 1, upsample: 'none' });
    expect(cam.shape).toEqual([2, 1, 3, 3]); // 10 → conv 3 → 8 → pool 2 → 4 → conv 2 → 3
    // CAM_1(i, j) = Σ_k w_k1 A^k(i, j): TF.js's activations entering GAP (c2 after its ReLU), [2, 3, 3, 4]
    // NHWC, and column 1 of the Dense kernel [4, 3].
    const features = tfl.model({ inputs: m.inputs, outputs: m.getLayer('c2').output as tfl.SymbolicTensor });
    const A = (features.predict(tf.tensor(x, shape)) as tf.Tensor).dataSync();
    const W = m.getLayer('logits').getWeights()[0]!.dataSync();
    const camRef = Float32Array.from({ length: 2 * 9 }, (_, p) => [0, 1, 2, 3].reduce((s, k) => s + W[k * 3 + 1]! * A[p * 4 + k]!, 0));
    expectClose(await cam.read(), camRef, 1e-5, 1e-4);
    for (const t of [y, ours, cam, xt]) t.dispose();
    model.dispose();

    // The same model as files, by path, and through the command line.
    const dir = mkdtempSync(join(tmpdir(), 'layers-'));
    const saved = await save(m);
    writeFileSync(join(dir, 'model.json'), JSON.stringify(saved.modelJson));
    writeFileSync(join(dir, 'weights.bin'), saved.weights);
    const fromFile = await loadTfjsLayersModel(gpu, join(dir, 'model.json'));
    expect(fromFile.name).toBe('model');
    fromFile.dispose();
    if (existsSync('dist/cli/main.js')) {
      const run = promisify(execFile);
      const r = await run(process.execPath, ['dist/cli/main.js', 'explain', '--model', join(dir, 'model.json'), '--image', 'assets/chelsea.png', '--method', 'gradCam', '--out', dir]);
      expect(r.stdout).toMatch(/gradCam .* ms {2}→ .*gradCam\.png/);
    }
  });

  it('clear errors: unsupported layers, missing weights, graph models', async () => {
    const gpu = await getGpu();
    const m = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 2, name: 'd' })] });
    const image = tfl.sequential({ layers: [tfl.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3, name: 'c' }), tfl.layers.flatten({ name: 'f' })] });
    const saved = await save(image);
    const topo = () => JSON.parse(JSON.stringify(saved.modelJson)) as Saved['modelJson'] & { modelTopology: { config: { layers: { class_name: string; config: Record<string, unknown> }[] } } };

    const bad = topo();
    bad.modelTopology.config.layers[1]!.class_name = 'SeparableConv2D';
    await expect(loadTfjsLayersModel(gpu, { modelJson: bad, weights: saved.weights })).rejects.toThrow(
      /layer 'f' \(SeparableConv2D\): layer class 'SeparableConv2D' is not supported; supported: InputLayer, Conv2D/,
    );
    const noBias = topo();
    noBias.weightsManifest[0]!.weights = noBias.weightsManifest[0]!.weights.filter((w) => !w.name.endsWith('bias'));
    await expect(loadTfjsLayersModel(gpu, { modelJson: noBias, weights: saved.weights.subarray(0, 9 * 2 * 4) })).rejects.toThrow(
      /the weights have no 'c\/bias' for layer 'c' \(Conv2D\)/,
    );
    await expect(loadTfjsLayersModel(gpu, { modelJson: saved.modelJson, weights: saved.weights.subarray(4) })).rejects.toThrow(/truncated/);
    await expect(loadTfjsLayersModel(gpu, await save(m))).rejects.toThrow(/the first layer must give an image input shape \[null, H, W, C\]/);
    await expect(loadTfjsLayersModel(gpu, 'node_modules/@vladmandic/human/models/emotion.json')).rejects.toThrow(/is a TF.js graph model; load it with loadTfjsGraphModel/);
  });
});
