/**
 * The methods on models small enough to work out on paper (the expected values are derived in the
 * comments, not produced by the code), plus the properties the definitions imply.
 */
import { describe, expect, it } from 'vitest';
import { modelFromSpec } from '../src/nets/model.js';
import { FASHION_GAP, loadModel } from '../src/nets/zoo.js';
import { initGpu } from '../src/runtime/gpu.js';
import { MiB, type MessageLevel } from '../src/runtime/memory.js';
import { noGrad } from '../src/autodiff/tape.js';
import type { ModelSpec } from '../src/nets/spec.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import * as saliency from '../src/saliency/index.js';
import { resize } from '../src/kernels/resize.js';
import { expectClose, getGpu, randomArray } from './helpers.js';
import { CONV, X, setupTiny, tinyGapSpec } from './tiny-model.js';

// The tiny network of tiny-model.ts (its values are worked out there).
const setup = setupTiny;

const read = async (t: Promise<Tensor>) => [...(await (await t).read())];

describe('gradient methods by hand', () => {
  it('vanilla gradient', async () => {
    const { model, x } = await setup();
    // Class 0: ∂S/∂flat = 1 everywhere; relu passes map 0 entirely and map 1 only at (1,1);
    // conv 0 sends +1 to x(0..1, 0..1), conv 1 sends −1 to x(2,2).
    expect(await read(saliency.vanilla(model, x, { target: 0 }))).toEqual([1, 1, 0, 1, 1, 0, 0, 0, -1]);
    // Class 1: only map 1's active unit (1,1) passes, with ∂S/∂unit = −1; conv 1 turns it into +1 at x(2,2).
    expect(await read(saliency.vanilla(model, x, { target: 1 }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });

  it('guided backprop blocks negative gradients; DeconvNet ignores the forward sign', async () => {
    const { model, x } = await setup();
    // Class 1, guided: the one active unit receives −1 < 0 and is blocked → all zero.
    expect(await read(saliency.guidedBackprop(model, x, { target: 1 }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Class 1, deconv: relu([[1, 1], [1, −1]]) = [[1, 1], [1, 0]] flows back through filter 1 (−1 at
    // offset (1,1)) regardless of the forward sign: −1 at x(1,1), x(1,2), x(2,1).
    expect(await read(saliency.deconvnet(model, x, { target: 1 }))).toEqual([0, 0, 0, 0, -1, -1, 0, -1, 0]);
    // Class 0: every gradient is +1, so guided = vanilla, and deconv passes map 1 everywhere.
    expect(await read(saliency.guidedBackprop(model, x, { target: 0 }))).toEqual([1, 1, 0, 1, 1, 0, 0, 0, -1]);
    expect(await read(saliency.deconvnet(model, x, { target: 0 }))).toEqual([1, 1, 0, 1, 0, -1, 0, -1, -1]);
  });

  it('gradient × input, signed, with either base', async () => {
    const { model, x } = await setup();
    expect(await read(saliency.gradTimesInput(model, x, { target: 1 }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, -9]);
    expect(await read(saliency.gradTimesInput(model, x, { target: 0, base: 'guidedBackprop' }))).toEqual([1, 2, 0, 4, 5, 0, 0, 0, 9]);
  });

  it("a neuron target: its gradient ∂a/∂x by default, the projection of its activation with seed: 'activation' (DeconvNet's default)", async () => {
    const { model, x } = await setup();
    const neuron = { layer: 'relu1', channel: 1 };
    // Map 1 of relu1 is strongest at (1,1): a = relu(−x(2,2)) = 9, so ∂a/∂x is −1 at x(2,2), 0 elsewhere.
    expect(await read(saliency.vanilla(model, x, { target: neuron }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, -1]);
    // Guided: the seed 1 > 0 and a > 0 both pass the guided rule at relu1: the same −1.
    expect(await read(saliency.guidedBackprop(model, x, { target: neuron }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, -1]);
    // Seeding with the activation (9 there, 0 elsewhere) projects a itself: a·∂a/∂x = −9.
    expect(await read(saliency.vanilla(model, x, { target: neuron, seed: 'activation' }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, -9]);
    expect(await read(saliency.guidedBackprop(model, x, { target: neuron, seed: 'activation' }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, -9]);
    // DeconvNet projects by default (relu(9) = 9 through filter 1), and passes 1 with seed 'one'.
    expect(await read(saliency.deconvnet(model, x, { target: neuron }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, -9]);
    expect(await read(saliency.deconvnet(model, x, { target: neuron, seed: 'one' }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, -1]);
    // Position (0,1) of map 0 holds 2 and copies x(0,1): gradient 1 there, projection 2.
    const at01 = { layer: 'relu1', channel: 0, position: [0, 1] as [number, number] };
    expect(await read(saliency.vanilla(model, x, { target: at01 }))).toEqual([0, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(await read(saliency.deconvnet(model, x, { target: at01 }))).toEqual([0, 2, 0, 0, 0, 0, 0, 0, 0]);
    // Through the registry, the setting is neuronSeed.
    expect(await read(saliency.runMethod('vanilla', model, x, { target: neuron, neuronSeed: 'activation' }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, -9]);
  });

  it('a neuron target without a position: the strongest activation, ties to the first in row-major order', async () => {
    const { gpu, model } = await setup();
    // x(1,1) = x(1,2) = x(2,2) = −5: map 1 = relu(−x(1..2, 1..2)) = [[5, 5], [0, 5]], three ties at 5.
    // The first, (0,0), is a = relu(−x(1,1)): ∂a/∂x is −1 at x(1,1) (index 4).
    const x = tensor(gpu, [1, 2, 3, 4, -5, -5, 7, 8, -5], [1, 1, 3, 3]);
    expect(await read(saliency.vanilla(model, x, { target: { layer: 'relu1', channel: 1 } }))).toEqual([0, 0, 0, 0, -1, 0, 0, 0, 0]);
    // A batch: each image gets its own strongest neuron (image 2 is the first test's: (1,1), x(2,2)).
    const batch = tensor(gpu, [1, 2, 3, 4, -5, -5, 7, 8, -5, ...X], [2, 1, 3, 3]);
    expect(await read(saliency.vanilla(model, batch, { target: { layer: 'relu1', channel: 1 } }))).toEqual([0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1]);
    x.dispose();
    batch.dispose();
  });

  it('rejects a seed other than one or activation, and an activation seed for a class score', async () => {
    const { model, x } = await setup();
    await expect(saliency.vanilla(model, x, { target: { layer: 'relu1', channel: 1 }, seed: 'ones' as never })).rejects.toThrow(/vanilla: seed must be 'one' or 'activation', got "ones"/);
    await expect(saliency.vanilla(model, x, { target: 1, seed: 'activation' })).rejects.toThrow(/seed 'activation' is for neuron targets/);
    expect(await read(saliency.vanilla(model, x, { target: 1, seed: 'one' }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });
});

describe('CAM family by hand', () => {
  it('Grad-CAM at relu1 without upsampling', async () => {
    const { model, x } = await setup();
    // Class 0: ∂S/∂A = 1 → α = [1, 1] → map 0 + map 1 = [[1, 2], [4, 14]].
    expect(await read(saliency.gradCam(model, x, { target: 0, layer: 'relu1', upsample: 'none' }))).toEqual([1, 2, 4, 14]);
    // Class 1: α = [0, (1 + 1 + 1 − 1)/4] = [0, 0.5] → 0.5 · map 1 = [[0, 0], [0, 4.5]].
    expect(await read(saliency.gradCam(model, x, { target: 1, layer: 'relu1', upsample: 'none' }))).toEqual([0, 0, 0, 4.5]);
    // Default layer: the last conv/ReLU layer with a spatial map.
    expect(saliency.defaultCamLayer('gradCam', model)).toBe('relu1');
  });

  it("Grad-CAM's backward pass stops at its layer: no gradient reaches the convolution or the input", async () => {
    const { gpu, model, x } = await setup();
    const names = async (fn: () => Promise<Tensor>) => {
      const p = await gpu.profile(fn);
      p.result.dispose();
      return p.kernels.map((k) => k.name);
    };
    const cam = await names(() => saliency.gradCam(model, x, { target: 0, layer: 'relu1', upsample: 'none' }));
    expect(cam.some((n) => n.startsWith('conv2d_input_grad'))).toBe(false);
    expect(cam.some((n) => n.startsWith('activation_backward'))).toBe(false); // relu1's own backward is below the hook
    // The vanilla gradient of the same model does run them.
    const vanilla = await names(() => saliency.vanilla(model, x, { target: 0 }));
    expect(vanilla.some((n) => n.startsWith('conv2d_input_grad'))).toBe(true);
  });

  it('upsamples with half-pixel centres, and Guided Grad-CAM multiplies guided backprop by the map', async () => {
    const { model, x } = await setup();
    const coarse = await saliency.gradCam(model, x, { target: 0, upsample: 'none' });
    const expected = await read(resize(coarse, [3, 3], { mode: 'bilinear' }));
    // Centre pixel of a 2×2 → 3×3 bilinear resize is the mean of the four: (1 + 2 + 4 + 14)/4.
    expect(expected[4]).toBeCloseTo(5.25, 5);
    expectClose(await read(saliency.gradCam(model, x, { target: 0 })), expected);
    const nearest = await read(saliency.gradCam(model, x, { target: 0, upsample: 'nearest' }));
    expect(nearest[0]).toBe(1);
    expect(nearest[8]).toBe(14);
    const gb = [1, 1, 0, 1, 1, 0, 0, 0, -1];
    expectClose(await read(saliency.guidedGradCam(model, x, { target: 0 })), gb.map((g, i) => g * expected[i]!));
  });

  it('bilinear upsampling uses half-pixel centres (2×2 → 4×4 weights 1, ¾/¼, ¼/¾, 1)', async () => {
    const gpu = await getGpu();
    // A 4×4 input and a 3×3 kernel give a 2×2 map; the upsampled map is checked against the
    // half-pixel weights worked out by hand (align_corners = true would give thirds instead).
    const model = modelFromSpec(gpu, { input: [1, 4, 4], layers: [{ name: 'c', type: 'conv2d', in: 1, out: 1, kernel: 3 }, { name: 'r', type: 'relu' }, { type: 'flatten' }, { name: 'fc', type: 'linear', in: 4, out: 1 }] }, { c: { weight: [0, 0, 0, 0, 1, 0, 0, 0, 0], bias: [0] }, fc: { weight: [1, 1, 1, 1], bias: [0] } });
    const x4 = tensor(gpu, [0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0], [1, 1, 4, 4]);
    const m = await read(saliency.gradCam(model, x4, { target: 0, upsample: 'none' }));
    expect(m).toEqual([1, 2, 3, 4]); // the centre 2×2 of x (α = 1/4 · 4 = 1 per the single channel)
    const w = [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]];
    const expected: number[] = [];
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
      let v = 0;
      for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) v += w[i]![a]! * w[j]![b]! * m[a * 2 + b]!;
      expected.push(v);
    }
    expectClose(await read(saliency.gradCam(model, x4, { target: 0 })), expected);
    model.dispose();
  });

  it('CAM = Σ_k w_k^c A^k on a GAP head; Grad-CAM there is CAM/(h·w) where positive', async () => {
    const { gpu, x } = await setup();
    const model = modelFromSpec(gpu, tinyGapSpec, { conv1: CONV, fc: { weight: [1, 2, 3, -1], bias: [5, 5] } });
    expect(saliency.camFeatureLayer(model)).toBe('relu1'); // the features entering GAP
    // score 'output' differentiates the softmax instead of the logit. GAP gives a = [3, 2.25], so
    // z = [1·3 + 2·2.25 + 5, 3·3 − 2.25 + 5] = [12.5, 11.75] and p0 = σ(z0 − z1) = σ(0.75); then
    // ∂p0/∂x = p0(1 − p0)·(∂z0/∂x − ∂z1/∂x).
    const p0 = 1 / (1 + Math.exp(-0.75));
    const dz0 = await read(saliency.vanilla(model, x, { target: 0 }));
    const dz1 = await read(saliency.vanilla(model, x, { target: 1 }));
    expect(dz0.some((v, i) => v !== dz1[i])).toBe(true);
    expectClose(
      await read(saliency.vanilla(model, x, { target: 0, score: 'output' })),
      dz0.map((v, i) => p0 * (1 - p0) * (v - dz1[i]!)),
      1e-6,
    );
    // Class 0: 1·[[1, 2], [4, 5]] + 2·[[0, 0], [0, 9]] = [[1, 2], [4, 23]] (bias ignored).
    expect(await read(saliency.cam(model, x, { target: 0, upsample: 'none' }))).toEqual([1, 2, 4, 23]);
    // Class 1: 3·map 0 − map 1 = [[3, 6], [12, 6]].
    expect(await read(saliency.cam(model, x, { target: 1, upsample: 'none' }))).toEqual([3, 6, 12, 6]);
    expectClose(await read(saliency.gradCam(model, x, { target: 1, upsample: 'none' })), [3, 6, 12, 6].map((v) => v / 4));
    // A batch with one target per image (a typed array of labels works too).
    const x2 = tensor(gpu, [...X, ...X.map((v) => -v)], [2, 1, 3, 3]);
    const both = await read(saliency.cam(model, x2, { target: new Uint8Array([0, 1]), upsample: 'none' }));
    expect(both.slice(0, 4)).toEqual([1, 2, 4, 23]);
    // Image 2 = −x: map 0 = relu(−[[1,2],[4,5]]) = 0, map 1 = relu([[5,6],[8,−9]]) = [[5,6],[8,0]] → 3·0 − map 1.
    expect(both.slice(4)).toEqual([-5, -6, -8, 0]);
    // The usual PyTorch head, GAP → flatten → linear, is a CAM head too.
    const flatSpec = { ...tinyGapSpec, name: 'gap-flatten', layers: [...tinyGapSpec.layers.slice(0, 3), { name: 'flat', type: 'flatten' as const }, ...tinyGapSpec.layers.slice(3)] };
    const flat = modelFromSpec(gpu, flatSpec, { conv1: CONV, fc: { weight: [1, 2, 3, -1], bias: [5, 5] } });
    expect(await read(saliency.cam(flat, x, { target: 0, upsample: 'none' }))).toEqual([1, 2, 4, 23]);
    // A rejected target leaves nothing allocated.
    await gpu.sync();
    const before = gpu.memory();
    await expect(saliency.cam(model, x, { target: 5 })).rejects.toThrow(/target class 5 is out of range/);
    await gpu.sync();
    expect(gpu.memory().tensors).toBe(before.tensors);
    expect(gpu.memory().inUse).toBe(before.inUse);
    flat.dispose();
    model.dispose();
  });
});

describe('properties', () => {
  it('on a linear model all gradient methods agree (no ReLU to treat differently)', async () => {
    const gpu = await getGpu();
    const w = randomArray(3 * 12, 5);
    const model = modelFromSpec(gpu, { input: [3, 2, 2], layers: [{ type: 'flatten' }, { name: 'fc', type: 'linear', in: 12, out: 3 }] }, { fc: { weight: w, bias: [0, 0, 0] } });
    const x = tensor(gpu, randomArray(24, 6), [2, 3, 2, 2]);
    const row2 = [...w.subarray(24, 36), ...w.subarray(24, 36)];
    for (const method of [saliency.vanilla, saliency.guidedBackprop, saliency.deconvnet]) {
      expectClose(await read(method(model, x, { target: 2 })), row2);
    }
    const sg = await read(saliency.smoothGrad(model, x, { target: 2, samples: 5, noiseLevel: 0.5, seed: 1 }));
    expectClose(sg, row2, 1e-5);
    const sq = await read(saliency.smoothGrad(model, x, { target: 2, samples: 5, aggregate: 'meanSquare' }));
    expectClose(sq, row2.map((v) => v * v), 1e-5);
    const vg = await read(saliency.smoothGrad(model, x, { target: 2, samples: 5, aggregate: 'variance' }));
    expectClose(vg, new Array(24).fill(0), 1e-6);
    model.dispose();
  });

  it('SmoothGrad with noise 0 equals vanilla; the same seed gives the same map; noise changes it', async () => {
    const { model, x } = await setup();
    const v = await read(saliency.vanilla(model, x, { target: 0 }));
    expect(await read(saliency.smoothGrad(model, x, { target: 0, samples: 7, noiseLevel: 0, batchSize: 3 }))).toEqual(v);
    const a = await read(saliency.smoothGrad(model, x, { target: 0, samples: 10, seed: 4, batchSize: 4 }));
    const b = await read(saliency.smoothGrad(model, x, { target: 0, samples: 10, seed: 4, batchSize: 10 }));
    expectClose(a, b, 1e-6); // batching does not change the noise
    expect(a).not.toEqual(v);
    let progress = 0;
    await saliency.smoothGrad(model, x, { target: 0, samples: 6, batchSize: 4, onProgress: (done, total) => (progress = done / total) });
    expect(progress).toBe(1);
  });
});

describe('errors', () => {
  it('unknown layers, bad targets and wrong heads get clear errors and leave nothing allocated', async () => {
    const { gpu, model, x } = await setup();
    await gpu.sync();
    const before = gpu.memory();
    await expect(saliency.gradCam(model, x, { target: 0, layer: 'conv9' })).rejects.toThrow(
      "model 'tiny' has no layer 'conv9'; layers: conv1, relu1, flat, fc",
    );
    await expect(saliency.gradCam(model, x, { target: 0, layer: 'fc' })).rejects.toThrow(/layer 'fc' has output shape \[2\].*spatial map/);
    await expect(saliency.vanilla(model, x, { target: 2 })).rejects.toThrow('vanilla: target class 2 is out of range; the model has 2 outputs (0..1)');
    await expect(saliency.vanilla(model, x, { target: [0, 1] })).rejects.toThrow(/2 targets for a batch of 1/);
    await expect(saliency.vanilla(model, x, { target: { layer: 'relu1', channel: 5 } })).rejects.toThrow(/channel 5 is out of range/);
    expect(() => saliency.camFeatureLayer(model)).toThrow(/cam: needs a model whose head is conv features/);
    await expect(saliency.cam(model, x, { target: 0 })).rejects.toThrow(
      /cam: needs a model whose head is conv features → global average pooling → one linear layer; model 'tiny' ends with relu1 \(relu\) → flat \(flatten\) → fc \(linear\)/,
    );
    await expect(saliency.smoothGrad(model, x, { target: 0, samples: 0 })).rejects.toThrow(/samples must be a positive integer/);
    await expect(saliency.vanilla(model, x, { target: 0.5 })).rejects.toThrow('vanilla: a target class must be an integer, got 0.5');
    await expect(saliency.guidedBackprop(model, x, { target: NaN })).rejects.toThrow('guidedBackprop: a target class must be an integer, got NaN');
    // Options outside their types (from JavaScript) are refused before any GPU work, by name.
    const loose = saliency as unknown as Record<string, (m: unknown, x: unknown, o: unknown) => Promise<unknown>>;
    for (const method of ['vanilla', 'smoothGrad', 'cam', 'gradCam']) {
      await expect(loose[method]!(model, x, { target: 0, score: 'probabilities' })).rejects.toThrow(
        `${method}: score must be 'logits' or 'output', got "probabilities"`,
      );
    }
    for (const method of ['gradCam', 'guidedGradCam']) {
      await expect(loose[method]!(model, x, { target: 0, layer: 'relu1', upsample: 'cubic' })).rejects.toThrow(
        `${method}: upsample must be 'bilinear', 'nearest' or 'none', got "cubic"`,
      );
    }
    await expect(loose.vanilla!(model, null, { target: 0 })).rejects.toThrow('vanilla: x must be a Tensor of shape [N, 1, 3, 3], got null');
    await expect(loose.gradCam!(model, [[1, 2, 3]], { target: 0 })).rejects.toThrow('gradCam: x must be a Tensor of shape [N, 1, 3, 3], got object');
    const wrong = tensor(gpu, new Float32Array(16), [1, 1, 4, 4]);
    await expect(saliency.vanilla(model, wrong, { target: 0 })).rejects.toThrow("vanilla: model 'tiny' expects x of shape [N, 1, 3, 3], got [1, 1, 4, 4]");
    wrong.dispose();
    await gpu.sync();
    expect(gpu.memory().inUse).toBe(before.inUse);
    expect(gpu.memory().tensors).toBe(before.tensors);
  });

  it('a cancelled SmoothGrad frees everything', async () => {
    const { gpu, model, x } = await setup();
    await gpu.sync();
    const before = gpu.memory();
    const controller = new AbortController();
    const run = saliency.smoothGrad(model, x, {
      target: 0,
      samples: 20,
      batchSize: 2,
      signal: controller.signal,
      onProgress: (done) => done >= 4 && controller.abort(),
    });
    await expect(run).rejects.toThrow('smoothGrad: cancelled');
    await gpu.sync();
    expect(gpu.memory().inUse).toBe(before.inUse);
  });
});

describe('memory', () => {
  it('a long session of every method (and D-RISE) ends where it started, and the pool stops growing after the first round', async () => {
    const gpu = await getGpu();
    // A random-weight fashion-gap: a conv stack with a CAM head, so every method applies.
    const model = modelFromSpec(gpu, FASHION_GAP, undefined, { seed: 3 });
    const x = tensor(gpu, randomArray(2 * 28 * 28, 21, 0, 1), [2, 1, 28, 28]);
    // D-RISE needs a detector: here one fixed box per image, scored by the model's softmax.
    const detector = async (images: Tensor) => {
      const logits = await noGrad(gpu, () => model.forward(images));
      const v = await logits.read();
      logits.dispose();
      return Array.from({ length: images.shape[0]! }, (_, i) => {
        const row = [...v.subarray(i * 10, i * 10 + 10)].map(Math.exp);
        const total = row.reduce((a, b) => a + b, 0);
        return [{ box: [4, 4, 24, 24] as [number, number, number, number], scores: row.map((e) => e / total) }];
      });
    };
    const image = tensor(gpu, randomArray(28 * 28, 22, 0, 1), [1, 1, 28, 28]);
    const [target] = (await detector(image))[0]!;
    const round = async () => {
      const maps = [
        await saliency.vanilla(model, x, { target: [1, 2] }),
        await saliency.deconvnet(model, x, { target: 'top' }),
        await saliency.guidedBackprop(model, x, { target: { layer: 'conv3', channel: 4 } }),
        await saliency.gradTimesInput(model, x, { target: 3, base: 'guidedBackprop' }),
        await saliency.smoothGrad(model, x, { target: 0, samples: 6, batchSize: 4, aggregate: 'variance' }),
        await saliency.cam(model, x, { target: 5 }),
        await saliency.gradCam(model, x, { target: 6, layer: 'relu3', upsample: 'nearest' }),
        await saliency.guidedGradCam(model, x, { target: 7 }),
        await saliency.drise(detector, image, { target: target!, masks: 8, gridSize: 4, batchSize: 3 }),
      ];
      for (const m of maps) m.dispose();
    };
    await gpu.sync();
    const start = gpu.memory();
    await round();
    await gpu.sync();
    const afterFirst = gpu.memory();
    for (let i = 0; i < 20; i++) await round();
    await gpu.sync();
    const end = gpu.memory();
    expect(end.inUse).toBe(start.inUse);
    expect(end.tensors).toBe(start.tensors);
    expect(end.buffers).toBeLessThanOrEqual(afterFirst.buffers);
    expect(end.bytes).toBeLessThanOrEqual(afterFirst.bytes);
    image.dispose();
    x.dispose();
    model.dispose();
  });
});

describe('memory budget', () => {
  it('SmoothGrad, 200 samples on fashion-vgg: within 64 MiB, and in batches within 32 MiB (an explicit batch of 200 split with a warning), the map of one batch within 1e-6', async () => {
    const messages: { message: string; level: MessageLevel }[] = [];
    const gpu = await initGpu({ memoryBudget: 64 * MiB, log: (message, level) => messages.push({ message, level }) });
    try {
      const model = await loadModel(gpu, 'fashion-vgg');
      const x = tensor(gpu, randomArray(28 * 28, 31, 0, 1), [1, 1, 28, 28]);
      const options = { target: 3, samples: 200, seed: 5 };
      const readAndFree = async (t: Promise<Tensor>) => {
        const map = await t;
        const values = [...(await map.read())];
        map.dispose();
        return values;
      };
      await gpu.sync();
      const start = gpu.memory();
      const batchesRun = () => Number(/^smoothGrad: 200 samples in (\d+) batch/.exec(messages.find((m) => m.level === 'info')?.message ?? '')?.[1]);
      gpu.trim();
      gpu.resetPeak();
      const within64 = await readAndFree(saliency.smoothGrad(model, x, options)); // batchSize 'auto', the default
      expect(gpu.memory().peakBytes).toBeLessThan(64 * MiB);

      // 32 MiB: the live tensors of one batch of 200 would not fit.
      gpu.setMemoryBudget(32 * MiB);
      messages.length = 0;
      gpu.resetPeak();
      const auto = await readAndFree(saliency.smoothGrad(model, x, options));
      expect(gpu.memory().peakBytes).toBeLessThan(32 * MiB);
      expect(batchesRun()).toBeGreaterThan(1);
      // The first call measured a sample's memory on a gradient it threw away: a second call makes
      // the same batches, and the same map, bit for bit.
      expect(await readAndFree(saliency.smoothGrad(model, x, options))).toEqual(auto);

      messages.length = 0;
      gpu.resetPeak();
      const split = await readAndFree(saliency.smoothGrad(model, x, { ...options, batchSize: 200 }));
      expect(gpu.memory().peakBytes).toBeLessThan(32 * MiB);
      const warnings = messages.filter((m) => m.level === 'warning').map((m) => m.message);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^smoothGrad: a batch of 200 samples needs about \d+ MiB, more than the memory budget leaves \(32 MiB, of which .* in use\); running batches of at most \d+ instead$/);

      // One batch of 200, the budget lifted: what the batches must reproduce, and what the budget saved.
      gpu.setMemoryBudget(Infinity);
      gpu.trim();
      messages.length = 0;
      gpu.resetPeak();
      const one = await readAndFree(saliency.smoothGrad(model, x, { ...options, batchSize: 200 }));
      expect(batchesRun()).toBe(1);
      expect(gpu.memory().peakInUseBytes).toBeGreaterThan(32 * MiB);
      expect(gpu.memory().peakBytes).toBeGreaterThan(64 * MiB); // the pool keeps what it freed
      const scale = Math.max(...one.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      for (const batched of [within64, auto, split]) expectClose(batched, one, 1e-6 * scale, 0);
      await gpu.sync();
      expect(gpu.memory().inUse).toBe(start.inUse);
      expect(gpu.memory().tensors).toBe(start.tensors);
      x.dispose();
      model.dispose();
    } finally {
      gpu.destroy();
    }
  });
});
