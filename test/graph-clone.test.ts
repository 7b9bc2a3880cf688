/**
 * `clone()` of the imported models (ONNX and TF.js graphs; a TF.js layers model loads as our own
 * Model): the copy computes the same outputs in new GPU buffers, changing or disposing it leaves the
 * original as it was (and the reverse), and the model-randomisation metric runs on the imports.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../src/nets/model.js';
import { loadOnnxModel, OnnxModel } from '../src/nets/onnx/model.js';
import { loadTfjsGraphModel, TfjsGraphModel, type TfjsGraphSource, type TfjsModelJson } from '../src/nets/tfjs-graph.js';
import { loadTfjsLayersModel } from '../src/nets/tfjs-layers.js';
import type { GraphModel } from '../src/nets/graph/executor.js';
import { ArgumentError } from '../src/runtime/errors.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import * as saliency from '../src/saliency/index.js';
import { getGpu, randomArray } from './helpers.js';

const { metrics } = saliency;
const ONNX = 'test/fixtures/onnx';
const HUMAN = 'node_modules/@vladmandic/human/models';

type Clonable = (GraphModel | Model) & { clone(): GraphModel | Model };

let gpu: Gpu;
beforeAll(async () => {
  gpu = await getGpu();
  await tf.setBackend('cpu');
});

async function logits(model: { forward: GraphModel['forward'] }, x: Tensor): Promise<Float32Array> {
  const y = await model.forward(x, { logits: true });
  try {
    return await y.read();
  } finally {
    y.dispose();
  }
}

/**
 * The checks every kind shares. `start` is gpu.memory() just before the model was loaded (x made
 * before it); `top` a layer with weights. Disposes the model.
 */
async function cloneChecks(model: Clonable, x: Tensor, top: string, start: { tensors: number; inUse: number }): Promise<void> {
  const constants = gpu.memory().tensors - start.tensors; // what the load kept on the GPU
  expect(constants).toBeGreaterThan(0);
  const trained = await logits(model, x);

  // Same layers and outputs, in new buffers (the copy holds as many tensors as the model).
  const copy = model.clone();
  expect(copy.constructor).toBe(model.constructor);
  expect(gpu.memory().tensors).toBe(start.tensors + 2 * constants);
  expect(copy.layerNames).toEqual(model.layerNames);
  expect(copy.inputShape).toEqual(model.inputShape);
  const buffers = new Set(model.layers.flatMap((l) => [...l.params.values()].map((t) => t.buffer)));
  let params = 0;
  for (const l of copy.layers) {
    expect([...l.params.keys()]).toEqual([...model.layer(l.name).params.keys()]);
    for (const t of l.params.values()) {
      expect(buffers.has(t.buffer), `${l.name}: a parameter buffer is shared`).toBe(false);
      params++;
    }
  }
  expect(params).toBeGreaterThan(0);
  expect(await logits(copy, x)).toEqual(trained);

  // Re-initialising the copy's top layer changes the copy, not the model.
  const fresh = await metrics.reinitialisedCopy(copy, [top], { seed: 3 });
  const changed = await logits(fresh, x);
  expect(changed).not.toEqual(trained);
  expect(await logits(copy, x)).toEqual(trained);
  expect(await logits(model, x)).toEqual(trained);
  const w = await model.layer(top).params.get('weight')!.read();
  expect(await fresh.layer(top).params.get('weight')!.read()).not.toEqual(w);
  expect(await copy.layer(top).params.get('weight')!.read()).toEqual(w);

  // Disposing a copy leaves the model working; disposing the model leaves a copy working.
  copy.dispose();
  expect(await logits(model, x)).toEqual(trained);
  model.dispose();
  expect(await logits(fresh, x)).toEqual(changed);
  expect(() => model.clone()).toThrow(ArgumentError);
  fresh.dispose();
  expect(gpu.memory().tensors).toBe(start.tensors);
  expect(gpu.memory().inUse).toBe(start.inUse);
}

describe('clone() of imported models', () => {
  it('ONNX (resnet18 from PyTorch): the weighted nodes are the layers to randomise, and a copy shares nothing with the model', async () => {
    const x = tensor(gpu, randomArray(2 * 3 * 64 * 64, 5, 0, 1), [2, 3, 64, 64]);
    const start = gpu.memory();
    const model = await loadOnnxModel(gpu, `${ONNX}/resnet18.onnx`);
    // ResNet-18: 17 convolutions on the main path, 3 downsampling ones, and the fc (Gemm), in the
    // order they run; the cascade starts at the fc, whose output is the logits.
    const weighted = metrics.parameterisedLayers(model);
    expect(weighted.map((l) => model.layer(l).op)).toEqual([...new Array<string>(20).fill('Conv'), 'Gemm']);
    expect(weighted.at(-1)).toBe(model.logitsName);
    // The copy keeps what the file said about itself, and finds layers by ONNX node name too.
    const copy = model.clone();
    expect(copy).toBeInstanceOf(OnnxModel);
    expect([copy.opset, copy.producer, copy.name]).toEqual([model.opset, model.producer, model.name]);
    const node = model.layers.find((l) => l.node !== undefined)!.node!;
    expect(copy.layer(node).name).toBe(model.layer(node).name);
    copy.dispose();
    // A model that cannot copy itself gets a clear error, not a TypeError.
    const noClone = Object.create(model, { clone: { value: undefined } }) as typeof model;
    await expect(metrics.reinitialisedCopy(noClone, [weighted.at(-1)!])).rejects.toThrow(/^reinitialisedCopy: model 'resnet18' cannot make a copy of itself/);
    await cloneChecks(model, x, weighted.at(-2)!, start);
    x.dispose();
  });

  it('TF.js graph (human’s emotion): a copy shares nothing with the model', async () => {
    const json = JSON.parse(readFileSync(`${HUMAN}/emotion.json`, 'utf8')) as TfjsModelJson;
    const x = tensor(gpu, randomArray(64 * 64, 8), [1, 1, 64, 64]);
    const start = gpu.memory();
    const model = await loadTfjsGraphModel(gpu, `${HUMAN}/emotion.json`);
    const copy = model.clone();
    expect(copy).toBeInstanceOf(TfjsGraphModel);
    expect(copy.modelJson).toEqual(json);
    expect(copy.logitsName).toBe(model.logitsName);
    copy.dispose();
    const weighted = metrics.parameterisedLayers(model);
    expect(weighted.length).toBeGreaterThan(2);
    expect(weighted.every((l) => ['conv2d', 'linear'].includes(model.layer(l).type))).toBe(true);
    await cloneChecks(model, x, weighted.at(-1)!, start);
    x.dispose();
  });

  it('TF.js layers (a Keras model saved by TF.js): it loads as a Model, which clones', async () => {
    const m = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 2], filters: 4, kernelSize: 3, activation: 'relu', name: 'conv' }),
        tfl.layers.flatten({ name: 'flat' }),
        tfl.layers.dense({ units: 3, activation: 'softmax', name: 'fc' }),
      ],
    });
    let saved: TfjsGraphSource | null = null;
    await m.save(
      tf.io.withSaveHandler(async (a) => {
        saved = {
          modelJson: { format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] },
          weights: new Uint8Array(a.weightData as ArrayBuffer),
        };
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    m.dispose();
    const x = tensor(gpu, randomArray(2 * 2 * 8 * 8, 9), [2, 2, 8, 8]);
    const start = gpu.memory();
    const model = await loadTfjsLayersModel(gpu, saved!);
    expect(model).toBeInstanceOf(Model);
    await cloneChecks(model, x, 'fc', start);
    x.dispose();
  });
});

describe('model randomisation on an imported graph', () => {
  it('ONNX resnet18, cascading over its top two layers: the copies are randomised, the model is not, and the map loses its similarity', async () => {
    const start = gpu.memory();
    const model = await loadOnnxModel(gpu, `${ONNX}/resnet18.onnx`);
    const all = metrics.parameterisedLayers(model);
    const top = all.slice(-2);
    const x = tensor(gpu, randomArray(3 * 64 * 64, 12, 0, 1), [1, 3, 64, 64]);
    const before = await logits(model, x);
    const r = await metrics.randomisation(model, 'vanilla', x, { layers: top, seed: 2, target: 7 });
    expect(r.layers).toEqual([...top].reverse());
    expect(r.steps.map((s) => s.randomised)).toEqual([[], [top[1]], [top[1], top[0]]]);
    expect(r.steps[0]!.mean).toEqual({ spearmanAbs: 1, spearmanSigned: 1, ssim: 1 });
    const last = r.steps[2]!;
    expect(last.mean.spearmanAbs).toBeLessThan(0.9);
    // The same number from a copy re-initialised by hand, and the plain gradients' Spearman.
    const grad = async (m: Parameters<typeof saliency.vanilla>[0]) => {
      const g = await saliency.vanilla(m, x, { target: 7 });
      const v = await g.read();
      g.dispose();
      return metrics.reduceMap({ data: v, shape: [1, 3, 64, 64] }, 'attribution', 64, 64, 'abs')[0]!;
    };
    const g0 = await grad(model);
    const copy = await metrics.reinitialisedCopy(model, last.randomised, { seed: 2 });
    const g2 = await grad(copy);
    copy.dispose();
    expect(last.spearmanAbs[0]).toBeCloseTo(metrics.spearman(g2, g0), 5);
    console.log(`resnet18, vanilla gradient, cascading: Spearman |E| ${r.steps.map((s) => s.mean.spearmanAbs.toFixed(3)).join(' → ')}, SSIM ${r.steps.map((s) => s.mean.ssim.toFixed(3)).join(' → ')}`);
    // The model itself is as it was, and nothing is left on the GPU.
    expect(await logits(model, x)).toEqual(before);
    x.dispose();
    model.dispose();
    expect(gpu.memory().tensors).toBe(start.tensors);
  });
});
