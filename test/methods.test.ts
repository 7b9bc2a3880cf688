/**
 * The method registry: one entry per method, every front end's list derived from it, and
 * `runMethod` giving exactly what the method's own function gives.
 */
import { describe, expect, it } from 'vitest';
import { modelFromSpec } from '../src/nets/model.js';
import type { ModelSpec } from '../src/nets/spec.js';
import { ArgumentError } from '../src/runtime/errors.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import * as saliency from '../src/saliency/index.js';
import { RULES } from '../src/saliency/core.js';
import { CLASSIFIER_METHOD_NAMES, METHODS, METHOD_NAMES, isMethodName, methodByName, runMethod, type ClassifierSettings } from '../src/saliency/methods.js';
import { METHODS as CLI_METHODS } from '../src/cli/explain.js';
import { METHOD_LABELS, VIEW_METHODS } from '../src/web/saliency-view.js';
import { getGpu, randomArray } from './helpers.js';

/** conv → relu → GAP → linear: every classifier method (CAM included) applies. */
const gapSpec: ModelSpec = {
  name: 'tiny-gap',
  input: [1, 5, 5],
  layers: [
    { name: 'conv1', type: 'conv2d', in: 1, out: 3, kernel: 2 },
    { name: 'relu1', type: 'relu' },
    { name: 'gap', type: 'gap' },
    { name: 'fc', type: 'linear', in: 3, out: 4 },
  ],
};
/** Without a GAP head: CAM cannot explain it. */
const flatSpec: ModelSpec = {
  name: 'tiny-flat',
  input: [1, 5, 5],
  layers: [
    { name: 'conv1', type: 'conv2d', in: 1, out: 2, kernel: 2 },
    { name: 'relu1', type: 'relu' },
    { name: 'flat', type: 'flatten' },
    { name: 'fc', type: 'linear', in: 32, out: 3 },
  ],
};

describe('the method registry', () => {
  it('lists each method once, and the CLI, <saliency-view> and its labels derive from it', () => {
    expect(METHOD_NAMES).toEqual(['vanilla', 'deconvnet', 'guidedBackprop', 'gradTimesInput', 'smoothGrad', 'cam', 'gradCam', 'guidedGradCam', 'drise']);
    expect(new Set(METHOD_NAMES).size).toBe(METHOD_NAMES.length);
    expect(new Set(METHODS.map((m) => m.label)).size).toBe(METHODS.length);
    expect(CLASSIFIER_METHOD_NAMES).toEqual(METHOD_NAMES.filter((n) => n !== 'drise'));
    expect(CLI_METHODS).toEqual(CLASSIFIER_METHOD_NAMES);
    expect(VIEW_METHODS).toEqual(METHOD_NAMES);
    expect(METHOD_LABELS.guidedBackprop).toBe('Guided backprop');
    expect(methodByName('drise').kind).toBe('detector');
    expect(isMethodName('gradCam')).toBe(true);
    expect(isMethodName('toString')).toBe(false);
    expect(() => methodByName('gradcam')).toThrow(ArgumentError);
    expect(() => methodByName('gradcam')).toThrow(/unknown method "gradcam"; methods: vanilla, deconvnet, .*, drise/);
  });

  it("ties each gradient method to the ReLU rule of its backward pass (one word per rule, the paper's per method)", () => {
    expect(methodByName('vanilla').reluRule).toBe('ordinary');
    expect(methodByName('guidedBackprop').reluRule).toBe('guided');
    expect(methodByName('deconvnet').reluRule).toBe('deconv');
    // The overrides the methods apply are exactly those rules.
    expect(RULES.guided.activations.relu).toBe(methodByName('guidedBackprop').reluRule);
    expect(RULES.deconv.activations.relu).toBe(methodByName('deconvnet').reluRule);
    expect(methodByName('gradCam').reluRule).toBeNull();
  });

  it('display kinds: signed input-shaped attributions vs one-channel maps', () => {
    const cams = METHODS.filter((m) => m.display === 'cam').map((m) => m.name);
    expect(cams).toEqual(['cam', 'gradCam', 'drise']);
  });

  it('runMethod gives what each method function gives, reading only the settings it lists', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    const model = modelFromSpec(gpu, gapSpec, undefined, { seed: 3 });
    const x = tensor(gpu, randomArray(25, 4, 0, 1), [1, 1, 5, 5]);
    const settings: ClassifierSettings & { trace?: false } = { target: 2, layer: 'conv1', samples: 3, noiseLevel: 0.1, seed: 7, upsample: 'nearest' };
    const direct: Record<string, () => Promise<Tensor>> = {
      vanilla: () => saliency.vanilla(model, x, { target: 2 }),
      deconvnet: () => saliency.deconvnet(model, x, { target: 2 }),
      guidedBackprop: () => saliency.guidedBackprop(model, x, { target: 2 }),
      gradTimesInput: () => saliency.gradTimesInput(model, x, { target: 2 }),
      smoothGrad: () => saliency.smoothGrad(model, x, { target: 2, samples: 3, noiseLevel: 0.1, seed: 7 }),
      cam: () => saliency.cam(model, x, { target: 2, upsample: 'nearest' }),
      gradCam: () => saliency.gradCam(model, x, { target: 2, layer: 'conv1', upsample: 'nearest' }),
      guidedGradCam: () => saliency.guidedGradCam(model, x, { target: 2, layer: 'conv1' }),
    };
    expect(Object.keys(direct)).toEqual([...CLASSIFIER_METHOD_NAMES]);
    for (const name of CLASSIFIER_METHOD_NAMES) {
      const a = await runMethod(name, model, x, settings);
      const b = await direct[name]!();
      expect({ name, shape: a.shape }).toEqual({ name, shape: b.shape });
      expect({ name, values: [...(await a.read())] }).toEqual({ name, values: [...(await b.read())] });
      a.dispose();
      b.dispose();
    }
    x.dispose();
    model.dispose();
    expect(gpu.memory().tensors).toBe(start.tensors);
  });

  it('D-RISE is the detector entry: it takes a detector function and a detection', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, randomArray(64, 5, 0, 1), [1, 1, 8, 8]);
    // A detector that finds one box whose score is the mean brightness of the image's top-left quarter.
    const detector = async (images: Tensor) => {
      const v = await images.read();
      return Array.from({ length: images.shape[0]! }, (_, b) => {
        let s = 0;
        for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) s += v[b * 64 + i * 8 + j]!;
        return [{ box: [0, 0, 4, 4] as [number, number, number, number], objectness: s / 16, scores: [1, 0] }];
      });
    };
    const target = { box: [0, 0, 4, 4] as [number, number, number, number], scores: [1, 0] };
    const a = await runMethod('drise', detector, x, { target, masks: 6, gridSize: 4, seed: 2 });
    const b = await saliency.drise(detector, x, { target, masks: 6, gridSize: 4, seed: 2 });
    expect([...(await a.read())]).toEqual([...(await b.read())]);
    expect(a.masksPerSecond).toBeGreaterThan(0);
    a.dispose();
    b.dispose();
    const model = modelFromSpec(gpu, gapSpec, undefined, { seed: 3 });
    await expect(runMethod('drise', model as never, x, { target })).rejects.toThrow(/explains object detectors; pass a detector function/);
    await expect(runMethod('vanilla', detector as never, x, { target: 0 })).rejects.toThrow(/explains classifiers; pass a model/);
    model.dispose();
    x.dispose();
  });

  it('says why a model cannot be explained (CAM without a GAP head) and checks settings first', async () => {
    const gpu = await getGpu();
    const flat = modelFromSpec(gpu, flatSpec, undefined, { seed: 1 });
    const gap = modelFromSpec(gpu, gapSpec, undefined, { seed: 1 });
    expect(methodByName('cam').unsupported(flat)).toMatch(/global average pooling → one linear layer/);
    expect(methodByName('cam').unsupported(gap)).toBeNull();
    expect(methodByName('vanilla').unsupported(flat)).toBeNull();
    expect(() => methodByName('gradCam').check(flat, { layer: 'fc' })).toThrow(/layer 'fc' has output shape \[3\] per image; it needs a spatial map/);
    expect(() => methodByName('gradCam').check(flat, { layer: 'nope' })).toThrow(/has no layer 'nope'; layers: conv1, relu1, flat, fc/);
    expect(() => methodByName('vanilla').check(flat, { layer: 'nope' })).not.toThrow(); // vanilla reads no layer
    expect(methodByName('gradCam').options).toContain('layer');
    expect(methodByName('smoothGrad').progressUnit).toBe('samples');
    flat.dispose();
    gap.dispose();
  });
});
