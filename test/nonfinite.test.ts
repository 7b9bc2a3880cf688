/**
 * Non-finite values and wrong arguments that used to crash or give NaN maps silently: each gives
 * one SaliencyError that names the cause, where it can first be seen.
 */
import { describe, expect, it } from 'vitest';
import { modelFromSpec } from '../src/nets/model.js';
import { FASHION_GAP } from '../src/nets/zoo.js';
import type { ModelSpec } from '../src/nets/spec.js';
import { ArgumentError, SaliencyError } from '../src/runtime/errors.js';
import { initGpu } from '../src/runtime/gpu.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import * as saliency from '../src/saliency/index.js';
import type { Detection, Detector } from '../src/saliency/drise.js';
import { getGpu, randomArray } from './helpers.js';

async function failure(f: () => Promise<unknown>): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

async function setup(values?: (data: Float32Array) => void) {
  const gpu = await getGpu();
  const model = modelFromSpec(gpu, FASHION_GAP, undefined, { seed: 1 });
  const data = randomArray(28 * 28, 3, 0, 1);
  values?.(data);
  const x = tensor(gpu, data, [1, 1, 28, 28]);
  return { gpu, model, x };
}

describe('non-finite input values', () => {
  for (const [name, value] of [
    ['NaN', NaN],
    ['+Inf', Infinity],
    ['-Inf', -Infinity],
  ] as const) {
    it(`a ${name} pixel: vanilla, Grad-CAM and SmoothGrad refuse it, naming the value and where it is`, async () => {
      const { gpu, model, x } = await setup((d) => (d[3 * 28 + 4] = value));
      const before = gpu.memory().tensors;
      for (const run of [
        () => saliency.vanilla(model, x, { target: 0 }),
        () => saliency.gradCam(model, x, { target: 0 }),
        () => saliency.smoothGrad(model, x, { target: 0, samples: 2 }),
        () => saliency.cam(model, x, { target: 'top' }),
      ]) {
        const err = await failure(run);
        expect(err).toBeInstanceOf(ArgumentError);
        expect(err.message).toMatch(new RegExp(`: the input x holds 1 non-finite value \\(first: ${String(value).replace('+', '')} at \\[0, 0, 3, 4\\]\\); saliency needs finite input values`));
      }
      expect(gpu.memory().tensors).toBe(before);
      x.dispose();
      model.dispose();
    });
  }

  it('a result that overflows float32 is refused, not returned as a NaN map', async () => {
    const gpu = await getGpu();
    const spec: ModelSpec = {
      input: [1, 2, 2],
      layers: [
        { name: 'flat', type: 'flatten' },
        { name: 'fc1', type: 'linear', in: 4, out: 4 },
        { name: 'fc2', type: 'linear', in: 4, out: 2 },
      ],
    };
    const big = (n: number) => new Array(n).fill(1e30);
    const model = modelFromSpec(gpu, spec, { fc1: { weight: big(16), bias: [0, 0, 0, 0] }, fc2: { weight: big(8), bias: [0, 0] } });
    const x = tensor(gpu, [1, 1, 1, 1], [1, 1, 2, 2]);
    const err = await failure(() => saliency.vanilla(model, x, { target: 0 }));
    expect(err).toBeInstanceOf(ArgumentError);
    expect(err.message).toMatch(/vanilla: the result holds 4 non-finite values \(first: Infinity at \[0, 0, 0, 0\]\); the model's scores or gradients overflowed/);
    x.dispose();
    model.dispose();
  });
});

describe('D-RISE detectors that misbehave', () => {
  const target: Detection = { box: [0, 0, 8, 8], scores: [1, 0] };
  const good: Detection = { box: [0, 0, 8, 8], objectness: 0.9, scores: [0.8, 0.2] };
  const cases: [string, (b: number) => unknown, RegExp][] = [
    // The first call measures one mask's memory, on a detector call of its own.
    ['returns null', () => null, /drise: the detector returned null for a batch of 1 image; it must return one list of detections per image/],
    ['returns a null list for an image', (b) => Array.from({ length: b }, () => null), /drise: the detector's result for image 0 of the batch is null, not a list of detections/],
    ['returns a null detection', (b) => Array.from({ length: b }, () => [null]), /drise: detection 0 of image 0 is not a detection \{ box, objectness\?, scores \}/],
    ['returns a NaN score', (b) => Array.from({ length: b }, (_, i) => [i === 2 ? { ...good, scores: [NaN, 0.2] } : good]), /drise: detection 0 of image 2 has a non-finite score \(NaN\)/],
    ['returns an infinite objectness', (b) => Array.from({ length: b }, () => [{ ...good, objectness: Infinity }]), /drise: detection 0 of image 0 has a non-finite objectness \(Infinity\)/],
    ['returns a NaN box', (b) => Array.from({ length: b }, () => [{ ...good, box: [0, NaN, 8, 8] }]), /drise: detection 0 of image 0 has a non-finite box \[0, NaN, 8, 8\]/],
  ];
  for (const [name, result, message] of cases) {
    it(`a detector that ${name}: one ArgumentError, nothing left allocated`, async () => {
      const gpu = await getGpu();
      const image = tensor(gpu, randomArray(3 * 8 * 8, 1, 0, 1), [1, 3, 8, 8]);
      const before = gpu.memory().tensors;
      const detector = (async (images: Tensor) => result(images.shape[0]!)) as unknown as Detector;
      const err = await failure(() => saliency.drise(detector, image, { target, masks: 8, batchSize: 4 }));
      expect(err, err.stack).toBeInstanceOf(ArgumentError);
      expect(err.message).toMatch(message);
      expect(gpu.memory().tensors).toBe(before);
      image.dispose();
    });
  }

  it('a NaN pixel in the image is refused before any mask is made', async () => {
    const gpu = await getGpu();
    const data = randomArray(3 * 8 * 8, 1, 0, 1);
    data[5] = NaN;
    const image = tensor(gpu, data, [1, 3, 8, 8]);
    let calls = 0;
    const err = await failure(() => saliency.drise(async (imgs) => (calls++, Array.from({ length: imgs.shape[0]! }, () => [good])), image, { target, masks: 8 }));
    expect(err.message).toMatch(/drise: the input x holds 1 non-finite value \(first: NaN at \[0, 0, 0, 5\]\)/);
    expect(calls).toBe(0);
    image.dispose();
  });
});

describe('a tensor from another Gpu', () => {
  it('is refused with a clear error instead of "was not computed on this tape"', async () => {
    const { model, x } = await setup();
    const other = await initGpu();
    try {
      const foreign = tensor(other, randomArray(28 * 28, 4, 0, 1), [1, 1, 28, 28]);
      for (const run of [
        () => saliency.vanilla(model, foreign, { target: 0 }),
        () => saliency.smoothGrad(model, foreign, { target: 0, samples: 2 }),
        () => saliency.gradCam(model, foreign, { target: 0 }),
      ]) {
        const err = await failure(run);
        expect(err).toBeInstanceOf(SaliencyError);
        expect(err.message).toMatch(/: x \(Tensor#\d+ \[1, 1, 28, 28\]\) was made on another Gpu than the model's/);
      }
      foreign.dispose();
    } finally {
      other.destroy();
    }
    x.dispose();
    model.dispose();
  });
});
