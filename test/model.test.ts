import { describe, expect, it } from 'vitest';
import { Tape, noGrad } from '../src/autodiff/tape.js';
import { modelFromSafetensors, modelFromSpec } from '../src/nets/model.js';
import type { ModelSpec, Weights } from '../src/nets/spec.js';
import { ArgumentError, ShapeError } from '../src/runtime/errors.js';
import { tensor } from '../src/runtime/tensor.js';
import { conv2dReference } from './reference/conv2d.js';
import { avgPoolRef, globalAvgPoolRef, maxPoolRef } from './reference/pool.js';
import { matmulReference } from './reference/matmul.js';
import { expectClose, getGpu, randomArray } from './helpers.js';

// The example from the issue: 1×6×6 → conv 3×3 (2 maps of 4×4) → relu → pool 2 → 8 features → 4 logits.
const exampleSpec: ModelSpec = {
  input: [1, 6, 6],
  layers: [
    { name: 'conv1', type: 'conv2d', in: 1, out: 2, kernel: 3, stride: 1, padding: 0 },
    { name: 'relu1', type: 'relu' },
    { name: 'pool1', type: 'maxpool2d', kernel: 2, stride: 2 },
    { name: 'flat', type: 'flatten' },
    { name: 'fc1', type: 'linear', in: 8, out: 4 },
  ],
};

function exampleWeights(): Weights {
  return {
    conv1: { weight: randomArray(18, 1), bias: [0.1, -0.2] },
    fc1: { weight: randomArray(32, 2), bias: randomArray(4, 3) },
  };
}

/** The example model computed with the plain TypeScript references. */
function exampleReference(x: Float32Array, n: number, w: Weights): Float32Array {
  const c = conv2dReference(x, [n, 1, 6, 6], w.conv1!.weight as ArrayLike<number>, [2, 1, 3, 3], w.conv1!.bias as ArrayLike<number>, {
    stride: [1, 1],
    padding: [0, 0, 0, 0],
    dilation: [1, 1],
    groups: 1,
  }, 'relu');
  const p = maxPoolRef(c.data, c.shape, { kernel: [2, 2], stride: [2, 2], pad: [0, 0, 0, 0] });
  return matmulReference(p.out, [n, 8], w.fc1!.weight as ArrayLike<number>, [4, 8], {
    transB: true,
    bias: w.fc1!.bias as ArrayLike<number>,
  }).data;
}

describe('modelFromSpec', () => {
  it('runs the example spec like the plain TypeScript references', async () => {
    const gpu = await getGpu();
    const w = exampleWeights();
    const model = modelFromSpec(gpu, exampleSpec, w);
    expect(model.layerNames).toEqual(['conv1', 'relu1', 'pool1', 'flat', 'fc1']);
    expect(model.layer('pool1').outputShape).toEqual([2, 2, 2]);
    expect(model.outputShape).toEqual([4]);
    const xs = randomArray(3 * 36, 4);
    const y = await noGrad(gpu, () => model.forward(tensor(gpu, xs, [3, 1, 6, 6])));
    expect(y.shape).toEqual([3, 4]);
    expectClose(await y.read(), exampleReference(xs, 3, w), 1e-5, 1e-4);
    model.dispose();
  });

  it('names every layer as a hook point; a hooked conv keeps its own (pre-ReLU) output', async () => {
    const gpu = await getGpu();
    const model = modelFromSpec(gpu, exampleSpec, exampleWeights());
    const x = tensor(gpu, randomArray(36, 5), [1, 1, 6, 6]);
    // Unhooked: conv1 and relu1 run as one fused kernel; asking for conv1 explains why it is missing.
    const t1 = new Tape(gpu);
    t1.watch(x);
    await t1.run(() => model.forward(x));
    expect(t1.layerNames).toEqual(['relu1', 'pool1', 'flat', 'fc1']);
    expect(() => t1.activation('conv1')).toThrow(/'conv1' ran fused with 'relu1'.*tape.hook\('conv1'\)/);
    const fusedGrad = await (await t1.backward(await t1.run(async () => model.forward(x)))).of(x).read();
    t1.dispose();
    // Hooked: conv1 runs unfused; its activation has negative values, relu1's does not.
    const t2 = new Tape(gpu);
    t2.watch(x);
    const hook = t2.hook('conv1');
    const y = await t2.run(() => model.forward(x));
    expect(t2.layerNames).toEqual(['conv1', 'relu1', 'pool1', 'flat', 'fc1']);
    const pre = await hook.activation!.read();
    const post = await t2.activation('relu1').read();
    expect(pre.some((v) => v < 0)).toBe(true);
    expectClose(post, pre.map((v) => Math.max(v, 0)));
    const grads = await t2.backward(y);
    expect(hook.gradient!.shape).toEqual([1, 2, 4, 4]);
    expectClose(await grads.of(x).read(), fusedGrad, 1e-6, 1e-5);
    t2.dispose();
    model.dispose();
  });

  it('reports bad specs and weights naming the layer and both shapes, leaving nothing allocated', async () => {
    const gpu = await getGpu();
    const before = gpu.memory();
    const w = exampleWeights();
    const bad = structuredClone(exampleSpec);
    (bad.layers[4] as { in: number }).in = 9;
    expect(() => modelFromSpec(gpu, bad)).toThrow("layer 'fc1' (linear) expects 9 input features, but receives [8]");
    expect(() => modelFromSpec(gpu, exampleSpec, { ...w, conv1: { weight: randomArray(17, 1), bias: [0, 0] } })).toThrow(
      "layer 'conv1' (conv2d): weight has shape [17] (17 values), expected [2, 1, 3, 3] (18 values)",
    );
    expect(() =>
      modelFromSpec(gpu, exampleSpec, { ...w, fc1: { weight: { data: randomArray(32, 1), shape: [8, 4] }, bias: randomArray(4, 1) } }),
    ).toThrow("layer 'fc1' (linear): weight has shape [8, 4] (32 values), expected [4, 8] (32 values)");
    expect(() => modelFromSpec(gpu, exampleSpec, { conv1: w.conv1! })).toThrow("layer 'fc1' (linear): no weights given (expected weight [4, 8], bias [4])");
    expect(() => modelFromSpec(gpu, exampleSpec, { ...w, conv9: {} })).toThrow(/weights given for 'conv9', which is not a layer/);
    expect(() => modelFromSpec(gpu, { ...exampleSpec, layers: [{ type: 'conv3d' } as never] })).toThrow(/unknown type "conv3d"; known: conv2d/);
    const noFlatten = { ...exampleSpec, layers: exampleSpec.layers.filter((l) => l.type !== 'flatten') };
    expect(() => modelFromSpec(gpu, noFlatten)).toThrow(/add a "flatten" or "gap" layer/);
    const dup = { ...exampleSpec, layers: [...exampleSpec.layers.slice(0, 2), { name: 'relu1', type: 'relu' as const }, ...exampleSpec.layers.slice(2)] };
    expect(() => modelFromSpec(gpu, dup)).toThrow(/two layers are named 'relu1'/);
    expect(() => modelFromSpec(gpu, { ...exampleSpec, classes: ['a', 'b'] })).toThrow(/2 class names, but the model has 4 outputs/);
    const model = modelFromSpec(gpu, exampleSpec, w);
    await expect(model.forward(tensor(gpu, new Float32Array(25), [1, 1, 5, 5]))).rejects.toThrow(ShapeError);
    expect(() => model.layer('conv7')).toThrow("model 'model' has no layer 'conv7'; layers: conv1, relu1, pool1, flat, fc1");
    model.dispose();
    await gpu.sync();
    expect(gpu.memory().inUse).toBe(before.inUse + 1); // only the rejected input tensor
  });

  it('He-initialises layers without weights from a seed', async () => {
    const gpu = await getGpu();
    const spec: ModelSpec = { input: [64, 8, 8], layers: [{ name: 'c', type: 'conv2d', in: 64, out: 64, kernel: 3 }] };
    const weightsFor = async (seed: number) => {
      const m = modelFromSpec(gpu, spec, undefined, { seed });
      const w = await m.layer('c').params.get('weight')!.read();
      m.dispose();
      return w;
    };
    const [a, b, c] = [await weightsFor(1), await weightsFor(1), await weightsFor(2)];
    expect([...a]).toEqual([...b]);
    expect([...a]).not.toEqual([...c]);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(std).toBeGreaterThan(Math.sqrt(2 / 576) * 0.95); // fan-in 64·3·3
    expect(std).toBeLessThan(Math.sqrt(2 / 576) * 1.05);
  });

  it('supports every layer type, with batchnorm, dropout and softmax behaving as specified', async () => {
    const gpu = await getGpu();
    const spec: ModelSpec = {
      input: [2, 8, 8],
      classes: ['a', 'b', 'c'],
      layers: [
        { name: 'c1', type: 'conv2d', in: 2, out: 4, kernel: 3, padding: 'same', stride: 2 },
        { name: 'bn', type: 'batchnorm', features: 4, eps: 1e-3 },
        { name: 'a1', type: 'leakyrelu', alpha: 0.1 },
        { name: 'dw', type: 'conv2d', in: 4, out: 4, kernel: 3, padding: 1, groups: 4, dilation: 1, bias: false },
        { name: 'a2', type: 'relu6' },
        { name: 'ap', type: 'avgpool2d', kernel: 2 },
        { name: 'c2', type: 'conv2d', in: 4, out: 6, kernel: 1 },
        { name: 'a3', type: 'tanh' },
        { name: 'mp', type: 'maxpool2d', kernel: 2, stride: 1 },
        { name: 'gap', type: 'gap' },
        { name: 'drop', type: 'dropout', p: 0.5 },
        { name: 'fc', type: 'linear', in: 6, out: 3 },
        { name: 'sig', type: 'sigmoid' },
        { name: 'fc2', type: 'linear', in: 3, out: 3 },
        { name: 'sm', type: 'softmax' },
      ],
    };
    const bnWeights = { weight: [1, 2, 3, 4], bias: [0.5, 0, -0.5, 1], running_mean: [0.1, 0.2, 0.3, 0.4], running_var: [1, 4, 0.25, 2] };
    const model = modelFromSpec(gpu, spec, { bn: bnWeights }, { allowMissing: true, seed: 3 });
    expect(model.layer('c1').outputShape).toEqual([4, 4, 4]);
    expect(model.layer('mp').outputShape).toEqual([6, 1, 1]);
    const x = tensor(gpu, randomArray(2 * 2 * 64, 6), [2, 2, 8, 8]);
    const tape = new Tape(gpu);
    tape.watch(x);
    tape.hook('c1');
    const probs = await tape.run(() => model.forward(x));
    const p = await probs.read();
    expect(p[0]! + p[1]! + p[2]!).toBeCloseTo(1, 5);
    // batchnorm: (x − mean)/√(var + eps)·γ + β per channel
    const c1 = await tape.activation('c1').read();
    const bn = await tape.activation('bn').read();
    for (const i of [0, 17, 35, 50, 127]) {
      const ch = Math.floor(i / 16) % 4;
      const v = (c1[i]! - bnWeights.running_mean[ch]!) / Math.sqrt(bnWeights.running_var[ch]! + 1e-3) * bnWeights.weight[ch]! + bnWeights.bias[ch]!;
      expect(bn[i]).toBeCloseTo(v, 4);
    }
    // dropout is the identity at inference
    expectClose(await tape.activation('drop').read(), await tape.activation('gap').read());
    // The whole forward pass again from the plain references, with the model's own weights.
    const w = await model.exportWeights();
    type Act = { data: Float32Array; shape: number[] };
    const conv = (h: Act, name: string, p: { stride?: number; pad: [number, number, number, number]; groups?: number }) =>
      conv2dReference(h.data, h.shape, w[`${name}.weight`]!.data, w[`${name}.weight`]!.shape, w[`${name}.bias`]?.data ?? null, {
        stride: [p.stride ?? 1, p.stride ?? 1],
        padding: p.pad,
        dilation: [1, 1],
        groups: p.groups ?? 1,
      });
    const map = (h: Act, f: (v: number, i: number) => number): Act => ({ data: h.data.map(f), shape: h.shape });
    const perChannel = (i: number, shape: number[]) => Math.floor(i / (shape[2]! * shape[3]!)) % shape[1]!;
    // TF's 'same' for 8 pixels, kernel 3, stride 2: 4 outputs need (4 − 1)·2 + 3 − 8 = 1 pixel of
    // padding, which goes after (bottom, right).
    let h: Act = conv({ data: await x.read(), shape: [2, 2, 8, 8] }, 'c1', { stride: 2, pad: [0, 1, 0, 1] });
    expectClose(h.data, await tape.activation('c1').read(), 1e-5, 1e-4); // c1
    const [rm, rv, g, b] = ['running_mean', 'running_var', 'weight', 'bias'].map((k) => w[`bn.${k}`]!.data);
    h = map(h, (v, i) => {
      const c = perChannel(i, h.shape);
      return ((v - rm![c]!) / Math.sqrt(rv![c]! + 1e-3)) * g![c]! + b![c]!;
    });
    expectClose(h.data, await tape.activation('bn').read(), 1e-5, 1e-4); // bn
    h = map(h, (v) => (v > 0 ? v : 0.1 * v));
    expectClose(h.data, await tape.activation('a1').read(), 1e-5, 1e-4); // a1
    h = conv(h, 'dw', { pad: [1, 1, 1, 1], groups: 4 }); // runs fused with a2: compared after it
    h = map(h, (v) => Math.min(Math.max(v, 0), 6));
    expectClose(h.data, await tape.activation('a2').read(), 1e-5, 1e-4); // a2
    h = { data: avgPoolRef(h.data, h.shape, { kernel: [2, 2], stride: [2, 2], pad: [0, 0, 0, 0] }).out, shape: [2, 4, 2, 2] };
    expectClose(h.data, await tape.activation('ap').read(), 1e-5, 1e-4); // ap
    h = map(conv(h, 'c2', { pad: [0, 0, 0, 0] }), Math.tanh);
    expectClose(h.data, await tape.activation('a3').read(), 1e-5, 1e-4); // a3
    h = { data: maxPoolRef(h.data, h.shape, { kernel: [2, 2], stride: [1, 1], pad: [0, 0, 0, 0] }).out, shape: [2, 6, 1, 1] };
    expectClose(h.data, await tape.activation('mp').read(), 1e-5, 1e-4); // mp
    let f: Act = { data: globalAvgPoolRef(h.data, h.shape), shape: [2, 6] };
    expectClose(f.data, await tape.activation('gap').read(), 1e-5, 1e-4); // gap
    f = matmulReference(f.data, f.shape, w['fc.weight']!.data, w['fc.weight']!.shape, { transB: true, bias: w['fc.bias']!.data, activation: 'sigmoid' });
    expectClose(f.data, await tape.activation('sig').read(), 1e-5, 1e-4); // sig
    f = matmulReference(f.data, f.shape, w['fc2.weight']!.data, w['fc2.weight']!.shape, { transB: true, bias: w['fc2.bias']!.data });
    expectClose(f.data, await tape.activation('fc2').read(), 1e-5, 1e-4); // fc2
    const expected = [0, 1].flatMap((n) => {
      const row = [...f.data.subarray(n * 3, n * 3 + 3)].map(Math.exp);
      return row.map((e) => e / row.reduce((s, v) => s + v, 0));
    });
    expectClose(p, expected, 1e-5, 1e-4);
    const logits = await noGrad(gpu, () => model.forward(x, { logits: true }));
    const l = await logits.read();
    const e = [Math.exp(l[0]!), Math.exp(l[1]!), Math.exp(l[2]!)];
    expect(p[0]).toBeCloseTo(e[0]! / (e[0]! + e[1]! + e[2]!), 5);
    tape.dispose();
    // dropout in training drops about p of the units and scales the rest by 1/(1 − p)
    const wide = modelFromSpec(gpu, { input: [1, 100, 100], layers: [{ type: 'dropout', p: 0.3 }] });
    const ones = tensor(gpu, new Float32Array(10000).fill(1), [1, 1, 100, 100]);
    const dropped = await (await wide.forward(ones, { training: true })).read();
    const zeros = dropped.filter((v) => v === 0).length;
    expect(zeros / 10000).toBeGreaterThan(0.27);
    expect(zeros / 10000).toBeLessThan(0.33);
    expect(dropped.every((v) => v === 0 || Math.abs(v - 1 / 0.7) < 1e-6)).toBe(true);
    model.dispose();
  });

  it('round-trips through safetensors with the spec in the metadata', async () => {
    const gpu = await getGpu();
    const model = modelFromSpec(gpu, { ...exampleSpec, classes: ['w', 'x', 'y', 'z'] }, exampleWeights());
    const bytes = await model.toSafetensors({ seed: '7' });
    const again = modelFromSafetensors(gpu, bytes);
    expect(again.classNames).toEqual(['w', 'x', 'y', 'z']);
    const x = tensor(gpu, randomArray(72, 8), [2, 1, 6, 6]);
    expectClose(await (await again.forward(x)).read(), await (await model.forward(x)).read(), 0, 0);
    expect(() => modelFromSafetensors(gpu, bytes.subarray(0, bytes.length - 10), undefined, 'm.safetensors')).toThrow(/m.safetensors is not a valid safetensors file/);
    expect(() => modelFromSafetensors(gpu, new Uint8Array(20))).toThrow(ArgumentError);
    model.dispose();
    again.dispose();
  });
});
