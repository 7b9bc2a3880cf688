/**
 * Real architectures exported from PyTorch (scripts/make-onnx-fixtures.py: torchvision's resnet18,
 * mobilenet_v2, squeezenet1_1 and vgg11_bn, narrowed, random weights, 64×64, dynamic batch, opsets
 * 9 to 17): the forward pass against ONNX Runtime on the same file, the input gradient against
 * PyTorch's autograd, and guided backprop against PyTorch with the guided rule on every ReLU and
 * ReLU6 module, for a batch of two images.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadOnnxModel } from '../src/nets/onnx/model.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor } from '../src/runtime/tensor.js';
import * as saliency from '../src/saliency/index.js';
import { getGpu } from './helpers.js';

const DIR = 'test/fixtures/onnx';

interface Fixture {
  name: string;
  opset: number;
  seed: number;
  input: number[];
  classes: number[];
}

/** The fixture script's input: an LCG from `seed`, value = (s >> 8) / 2^24. */
export function lcgInput(seed: number, n: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(1664525, s) + 1013904223) >>> 0;
    out[i] = (s >>> 8) / 16777216;
  }
  return out;
}

export function readFixture(name: string): { meta: Fixture; x: Float32Array; logits: Float32Array; vanilla: Float32Array; guided: Float32Array } {
  const meta = JSON.parse(readFileSync(`${DIR}/${name}.json`, 'utf8')) as Fixture;
  const n = meta.input.reduce((a, b) => a * b, 1);
  const bin = readFileSync(`${DIR}/${name}.expected.bin`);
  const all = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  const k = meta.input[0]! * 1000;
  return { meta, x: lcgInput(meta.seed, n), logits: all.subarray(0, k), vanilla: all.subarray(k, k + n), guided: all.subarray(k + n, k + 2 * n) };
}

/** max |a − b| / max |b|. */
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(a[i]!)) return Infinity;
    scale = Math.max(scale, Math.abs(b[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  return err / scale;
}

let gpu: Gpu;
beforeAll(async () => {
  gpu = await getGpu();
});

describe('torchvision CNNs exported by PyTorch', () => {
  for (const name of ['resnet18', 'mobilenet_v2', 'squeezenet1_1', 'vgg11_bn']) {
    it(`${name}: forward = ONNX Runtime, input gradient and guided backprop = PyTorch`, async () => {
      const f = readFixture(name);
      const before = gpu.memory();
      const model = await loadOnnxModel(gpu, `${DIR}/${name}.onnx`);
      expect(model.name).toBe(name);
      expect(model.opset).toBe(f.meta.opset);
      expect(model.inputShape).toEqual([3, 64, 64]);
      expect(model.outputShape).toEqual([1000]);
      const x = tensor(gpu, f.x, f.meta.input);
      // Forward, batch of two, against ONNX Runtime (CPU) on the same file and against PyTorch.
      const y = await model.forward(x);
      const ours = await y.read();
      const session = await ort.InferenceSession.create(`${DIR}/${name}.onnx`, { executionProviders: ['cpu'] });
      const ref = (await session.run({ input: new ort.Tensor('float32', f.x, f.meta.input) })).logits!.data as Float32Array;
      await session.release();
      const fwd = relError(ours, ref);
      expect(fwd, 'forward vs ONNX Runtime').toBeLessThan(1e-4);
      expect(relError(ours, f.logits), 'forward vs PyTorch').toBeLessThan(1e-4);
      // The dynamic batch: one image alone gives the first row.
      const x1 = tensor(gpu, f.x.subarray(0, f.x.length / 2), [1, 3, 64, 64]);
      const y1 = await model.forward(x1);
      expect(relError(await y1.read(), ours.subarray(0, 1000))).toBeLessThan(1e-5);
      // Gradients of each image's own class (PyTorch's argmax).
      const vanilla = await saliency.vanilla(model, x, { target: f.meta.classes });
      const guided = await saliency.guidedBackprop(model, x, { target: f.meta.classes });
      const gv = relError(await vanilla.read(), f.vanilla);
      const gg = relError(await guided.read(), f.guided);
      console.log(`${name}: forward ${fwd.toExponential(1)} vs ORT; input gradient ${gv.toExponential(1)}, guided ${gg.toExponential(1)} vs PyTorch`);
      expect(gv, 'input gradient vs PyTorch').toBeLessThan(1e-4);
      expect(gg, 'guided backprop vs PyTorch').toBeLessThan(1e-4);
      // The guided rule changed something.
      expect(relError(await guided.read(), f.vanilla)).toBeGreaterThan(0.05);
      for (const t of [x, y, x1, y1, vanilla, guided]) t.dispose();
      model.dispose();
      expect(gpu.memory().tensors).toBe(before.tensors);
      expect(gpu.memory().inUse).toBe(before.inUse);
    });
  }
});
