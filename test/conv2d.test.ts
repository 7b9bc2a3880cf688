import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  conv2dBackwardBias,
  conv2dBackwardFilter,
  conv2dBackwardInput,
  conv2dDispatchSizes,
  conv2dForward,
  conv2dOutputShape,
  setConv2dGridLimitForTesting,
  setConv2dSplitK,
  setConv2dStrategy,
  setConv2dDirectBlock,
  parseConv2dDirectBlock,
  directBlockFor,
  setConv2dTile,
  conv2dSettings,
  conv2dStrategy,
  parseConv2dTile,
  CONV2D_TILE_CANDIDATES,
  type Conv2dParams,
  type Conv2dStrategy,
} from '../src/kernels/conv2d.js';
import { ACTIVATIONS, samePadding, type Activation } from '../src/kernels/common.js';
import { conv2d } from '../src/autodiff/ops/conv.js';
import { activation as activationOp } from '../src/autodiff/ops/activation.js';
import { Tape } from '../src/autodiff/tape.js';
import { ArgumentError, ShapeError } from '../src/runtime/errors.js';
import type { Gpu } from '../src/runtime/gpu.js';
import { tensor } from '../src/runtime/tensor.js';
import { gradCheck } from './gradcheck.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import {
  conv2dBiasGradReference,
  conv2dFilterGradReference,
  conv2dInputGradReference,
  conv2dReference,
  type RefConvParams,
} from './reference/conv2d.js';

/** The reference's explicit parameters, converted independently of the kernel's normaliser. */
function refParams(p: Conv2dParams): RefConvParams {
  const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
    v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;
  const pad = p.padding ?? 0;
  const padding: [number, number, number, number] =
    typeof pad === 'number' ? [pad, pad, pad, pad] : pad.length === 2 ? [pad[0], pad[0], pad[1], pad[1]] : pad;
  return { stride: pair(p.stride, 1), padding, dilation: pair(p.dilation, 1), groups: p.groups ?? 1 };
}

interface Case {
  name: string;
  x: number[];
  w: number[];
  params: Conv2dParams;
  bias?: boolean;
  activation?: Activation;
}

// Forward pipelines are keyed by tile shape (from Cout/groups and the workgroup count) × activation × bias;
// the cases stick to (none, no bias) and (relu, bias) on the larger tiles to keep compiles few.
const CASES: Case[] = [
  { name: '3→5, 7×9, padding 1', x: [1, 3, 7, 9], w: [5, 3, 3, 3], params: { padding: 1 }, bias: true, activation: 'relu' },
  { name: '17→33, batch 3, stride 2, asymmetric padding', x: [3, 17, 9, 7], w: [33, 17, 3, 3], params: { stride: 2, padding: [0, 2, 1, 0] }, bias: true, activation: 'relu' },
  { name: 'stride 3, padding 2, dilation 2', x: [2, 4, 8, 8], w: [6, 4, 3, 3], params: { stride: 3, padding: 2, dilation: 2 } },
  { name: 'depthwise, stride 2', x: [2, 6, 7, 9], w: [6, 1, 3, 3], params: { stride: 2, padding: 1, groups: 6 }, bias: true, activation: 'relu6' },
  { name: 'depthwise channel multiplier 3, dilation [2, 1]', x: [1, 4, 9, 7], w: [12, 1, 3, 3], params: { padding: [2, 1], dilation: [2, 1], groups: 4 } },
  { name: 'groups 2, 1×3 kernel, stride [1, 2]', x: [3, 8, 5, 6], w: [10, 4, 1, 3], params: { stride: [1, 2], padding: [1, 2], groups: 2 }, bias: true, activation: 'relu' },
  { name: 'groups 4 of 8 channels', x: [1, 32, 6, 6], w: [32, 8, 3, 3], params: { padding: 1, groups: 4 } },
  { name: '1×1 kernel', x: [2, 5, 6, 6], w: [7, 5, 1, 1], params: {}, bias: true, activation: 'relu' },
  { name: 'kernel as large as the input (1×1 output)', x: [2, 2, 4, 5], w: [3, 2, 4, 5], params: {} },
  { name: '5×5, stride 2, TF SAME padding', x: [2, 3, 10, 11], w: [4, 3, 5, 5], params: { stride: 2, padding: samePadding([10, 11], [5, 5], 2) }, bias: true, activation: 'tanh' },
  { name: 'stride larger than the kernel (input pixels no output sees)', x: [1, 3, 9, 9], w: [4, 3, 2, 2], params: { stride: 3, padding: [0, 1, 1, 0] } },
  { name: 'full tiles: N=2, 16→32, 20×20 (split-K filter gradient)', x: [2, 16, 20, 20], w: [32, 16, 3, 3], params: { padding: 1 }, bias: true, activation: 'relu' },
  { name: 'two column tiles: 8→70', x: [1, 8, 12, 12], w: [70, 8, 3, 3], params: { padding: 1 } },
  { name: 'many pixel tiles: 3→8, 23×23', x: [2, 3, 23, 23], w: [8, 3, 3, 3], params: { padding: 1 } },
  { name: 'few pixels, many channels (16-row tile): 24→40 at 3×3', x: [1, 24, 3, 3], w: [40, 24, 3, 3], params: { padding: 1 }, bias: true, activation: 'relu' },
  { name: 'few pixels, two column tiles: 70→20 at 2×2, batch 2', x: [2, 70, 2, 2], w: [20, 70, 3, 3], params: { padding: 1 } },
  // Tiled: few tiles and K = 64·9 = 576 taps forward, 60·9 = 540 backward: both split K in two.
  { name: 'split K: 64→60 at 6×5, batch 2', x: [2, 64, 6, 5], w: [60, 64, 3, 3], params: { padding: 1 }, bias: true, activation: 'relu' },
  // Split K on the narrow tiles: input gradients 3 and 10 channels wide (K = 576), and the 16-row
  // tile both ways (9 pixels, K = 576).
  { name: 'split K, narrow input gradient: 3→64', x: [1, 3, 6, 6], w: [64, 3, 3, 3], params: { padding: 1 } },
  { name: 'split K, 10→64', x: [1, 10, 5, 6], w: [64, 10, 3, 3], params: { padding: 1 } },
  { name: 'split K, 16-row tile: 64→64 at 3×3', x: [1, 64, 3, 3], w: [64, 64, 3, 3], params: { padding: 1 }, bias: true, activation: 'relu' },
  { name: 'split K with groups 2: 128→128 at 4×4', x: [1, 128, 4, 4], w: [128, 64, 3, 3], params: { padding: 1, groups: 2 }, bias: true, activation: 'relu' },
];

async function checkCase(gpu: Gpu, c: Case, seed: number): Promise<void> {
  const x = randomArray(product(c.x), seed);
  const w = randomArray(product(c.w), seed + 1);
  const b = c.bias ? randomArray(c.w[0]!, seed + 2) : null;
  const act = c.activation ?? 'none';
  const rp = refParams(c.params);
  const ref = conv2dReference(x, c.x, w, c.w, b, rp, act, 0.1);
  expect(conv2dOutputShape(c.x, c.w, c.params)).toEqual(ref.shape);
  const dy = randomArray(product(ref.shape), seed + 3);
  await gpu.scope(async () => {
    const tx = tensor(gpu, x, c.x);
    const tw = tensor(gpu, w, c.w);
    const tb = b ? tensor(gpu, b, [c.w[0]!]) : null;
    const tdy = tensor(gpu, dy, ref.shape);
    const y = await conv2dForward(tx, tw, tb, { ...c.params, activation: act, alpha: 0.1 });
    expect(y.shape).toEqual(ref.shape);
    expectClose(await y.read(), ref.data, 1e-4, 1e-4);
    const dx = await conv2dBackwardInput(tdy, tw, c.x, c.params);
    expect(dx.shape).toEqual(c.x);
    expectClose(await dx.read(), conv2dInputGradReference(dy, w, c.x, c.w, rp), 1e-4, 1e-4);
    const dw = await conv2dBackwardFilter(tx, tdy, c.w, c.params);
    expect(dw.shape).toEqual(c.w);
    expectClose(await dw.read(), conv2dFilterGradReference(x, c.x, dy, c.w, rp), 2e-4, 1e-4);
    const db = await conv2dBackwardBias(tdy);
    expectClose(await db.read(), conv2dBiasGradReference(dy, ref.shape), 1e-4, 1e-4);
  });
}

// Both kernel strategies are checked whatever the adapter: 'direct' is the default on CPU adapters
// (lavapipe here), 'tiled' on GPUs.
for (const strategy of ['tiled', 'direct'] as Conv2dStrategy[]) {
  describe(`conv2d ${strategy} kernels against the reference`, () => {
    beforeAll(async () => setConv2dStrategy(await getGpu(), strategy));
    afterAll(async () => setConv2dStrategy(await getGpu(), null));

    CASES.forEach((c, i) => {
      it(c.name, async () => {
        const gpu = await getGpu();
        const before = gpu.memory().inUse;
        await checkCase(gpu, c, 10 * i + 1);
        expect(gpu.memory().inUse).toBe(before);
      });
    });

    it('every fused activation, with and without bias', async () => {
      const gpu = await getGpu();
      const xs = [2, 3, 6, 5];
      const ws = [4, 3, 3, 3];
      const x = randomArray(product(xs), 201, -2, 2);
      const w = randomArray(product(ws), 202, -1.5, 1.5); // wide enough that relu6 clamps at 6
      const b = randomArray(4, 203, -1, 1);
      const rp = refParams({ padding: 1 });
      await gpu.scope(async () => {
        const tx = tensor(gpu, x, xs);
        const tw = tensor(gpu, w, ws);
        const tb = tensor(gpu, b, [4]);
        let clamped = 0;
        // Each (activation, bias) pair is a pipeline; lavapipe takes ~1 s to compile one, so bias off
        // is checked with 'none' and 'relu' only (the other tile shapes use those two pairs too).
        // The direct kernel (several seconds per compile on lavapipe) substitutes the same
        // activation expressions; three of them show that the substitution is wired.
        const activations: readonly Activation[] = strategy === 'tiled' ? ACTIVATIONS : ['none', 'relu6', 'leakyrelu'];
        for (const act of activations) {
          for (const withBias of act === 'none' || act === 'relu' ? [true, false] : [true]) {
            const y = await conv2dForward(tx, tw, withBias ? tb : null, { padding: 1, activation: act, alpha: 0.3 });
            const ref = conv2dReference(x, xs, w, ws, withBias ? b : null, rp, act, 0.3);
            const got = await y.read();
            expectClose(got, ref.data, 1e-4, 1e-4);
            if (act === 'relu6') clamped += got.filter((v) => v === 6).length;
          }
        }
        expect(clamped).toBeGreaterThan(0);
      });
    });

    it('the input gradient ignores a fused activation in its parameters (split K or not)', async () => {
      const gpu = await getGpu();
      for (const [xs, ws] of [[[1, 64, 4, 4], [8, 64, 3, 3]], [[1, 8, 4, 4], [64, 8, 3, 3]]] as const) {
        const w = randomArray(product(ws), 601, -1, 1);
        const dy = randomArray(product([1, ws[0], 4, 4]), 602, -1, 1); // negative values: a ReLU would change them
        await gpu.scope(async () => {
          const dx = await conv2dBackwardInput(tensor(gpu, dy, [1, ws[0], 4, 4]), tensor(gpu, w, [...ws]), xs, { padding: 1, activation: 'relu' });
          expectClose(await dx.read(), conv2dInputGradReference(dy, w, xs, ws, refParams({ padding: 1 })), 1e-4, 1e-4);
        });
      }
    });

    it('folded grids (x·y workgroups beyond the per-dimension limit) give the same results', async () => {
      const gpu = await getGpu();
      setConv2dGridLimitForTesting(gpu, 6);
      try {
        // Tiled: forward 25 tiles → 5×5, input gradient 7 → 4×2, filter gradient 9 → 5×2, its sum 18 → 6×3,
      // bias 32 → 6×6. Direct: filter gradient 33 workgroups (11 splits) → 6×6.
        await checkCase(gpu, CASES.find((c) => c.name.startsWith('full tiles'))!, 500);
        await checkCase(gpu, CASES.find((c) => c.name.startsWith('depthwise channel'))!, 510);
      } finally {
        setConv2dGridLimitForTesting(gpu, null);
      }
    });
  });
}

/** The forward pass and the input gradient of each case against the reference (the kernels a setting changes). */
async function checkForwardAndInputGrad(gpu: Gpu, cases: Case[], seed: number): Promise<void> {
  for (const [i, c] of cases.entries()) {
    const x = randomArray(product(c.x), seed + i);
    const w = randomArray(product(c.w), seed + 10 + i);
    const b = c.bias ? randomArray(c.w[0]!, seed + 20 + i) : null;
    const rp = refParams(c.params);
    const ref = conv2dReference(x, c.x, w, c.w, b, rp, c.activation ?? 'none', 0.01);
    const dy = randomArray(product(ref.shape), seed + 30 + i);
    await gpu.scope(async () => {
      const y = await conv2dForward(tensor(gpu, x, c.x), tensor(gpu, w, c.w), b && tensor(gpu, b, [c.w[0]!]), { ...c.params, activation: c.activation });
      expectClose(await y.read(), ref.data, 1e-4, 1e-4);
      const dx = await conv2dBackwardInput(tensor(gpu, dy, ref.shape), tensor(gpu, w, c.w), c.x, c.params);
      expectClose(await dx.read(), conv2dInputGradReference(dy, w, c.x, c.w, rp), 1e-4, 1e-4);
    });
  }
}

// The benchmark can force any of these tiles on the tiled forward and input-gradient kernels (to
// choose the defaults on a GPU); each must compute the same convolution. Two cases: several
// partial tiles in both GEMM dimensions (with bias and ReLU), and a strided, padded, grouped one.
describe('tiled conv2d with each benchmark tile', () => {
  beforeAll(async () => setConv2dStrategy(await getGpu(), 'tiled'));
  afterAll(async () => {
    const gpu = await getGpu();
    setConv2dStrategy(gpu, null);
    setConv2dTile(gpu, null);
  });
  const cases: Case[] = [
    { name: '', x: [2, 12, 11, 13], w: [70, 12, 3, 3], params: { padding: 1 }, bias: true, activation: 'relu' },
    { name: '', x: [1, 8, 9, 7], w: [36, 4, 3, 3], params: { stride: 2, padding: [0, 2, 1, 0], groups: 2 } },
  ];
  for (const name of CONV2D_TILE_CANDIDATES) {
    it(name, async () => {
      const gpu = await getGpu();
      setConv2dTile(gpu, parseConv2dTile(name));
      await checkForwardAndInputGrad(gpu, cases, 700);
    });
  }

  it('refuses tiles the shaders cannot run, and misspelt ones', async () => {
    const gpu = await getGpu();
    expect(() => setConv2dTile(gpu, { TM: 64, TN: 64, TK: 16, RM: 2, RN: 2 })).toThrow(ArgumentError); // 1024 threads
    expect(() => setConv2dTile(gpu, { TM: 128, TN: 128, TK: 16, RM: 8, RN: 8 })).toThrow(/16384 bytes/); // 16.4 KB staged
    expect(() => parseConv2dTile('64x64')).toThrow(/TMxTNxTK\/RMxRN/);
    expect(parseConv2dTile('128x64x16/8x4')).toEqual({ TM: 128, TN: 64, TK: 16, RM: 8, RN: 4 });
  });
});

// The direct kernels' register block is chosen by adapter (8×8, 4×16 on SwiftShader; the
// benchmark can force any): each block must compute the same convolution, including blocks wider
// than the layer (channels past it repeat the last and are not stored) and pixel blocks that
// straddle images and rows.
describe('direct conv2d with each register block', () => {
  beforeAll(async () => setConv2dStrategy(await getGpu(), 'direct'));
  afterAll(async () => {
    const gpu = await getGpu();
    setConv2dStrategy(gpu, null);
    setConv2dDirectBlock(gpu, null);
  });
  const cases: Case[] = [
    { name: '', x: [2, 12, 5, 7], w: [37, 12, 3, 3], params: { padding: 1 }, bias: true, activation: 'relu' },
    { name: '', x: [1, 8, 9, 7], w: [36, 4, 3, 3], params: { stride: 2, padding: [0, 2, 1, 0], groups: 2 } },
  ];
  for (const name of ['4x16', '1x32', '32x1', '2x4']) {
    it(name, async () => {
      const gpu = await getGpu();
      setConv2dDirectBlock(gpu, parseConv2dDirectBlock(name));
      expect(conv2dSettings(gpu).directBlock).toEqual(parseConv2dDirectBlock(name));
      await checkForwardAndInputGrad(gpu, cases, 800);
    });
  }

  it('chooses the block by adapter and refuses blocks the shaders are not built for', async () => {
    expect(directBlockFor({ name: 'llvmpipe (LLVM 19.1.7, 256 bits)' })).toEqual({ pixels: 8, channels: 8 });
    expect(directBlockFor({ name: 'google swiftshader' })).toEqual({ pixels: 4, channels: 16 });
    expect(directBlockFor({ name: 'SwiftShader driver 5.0.0' })).toEqual({ pixels: 4, channels: 16 });
    const gpu = await getGpu();
    expect(() => setConv2dDirectBlock(gpu, { pixels: 3, channels: 8 })).toThrow(ArgumentError);
    expect(() => setConv2dDirectBlock(gpu, { pixels: 16, channels: 32 })).toThrow(/at most 256 accumulators/);
    expect(() => parseConv2dDirectBlock('4×16')).toThrow(/PIXELSxCHANNELS/);
    expect(parseConv2dDirectBlock(' 8x4 ')).toEqual({ pixels: 8, channels: 4 });
  });
});

describe('conv2d dispatch plans and errors', () => {
  it('VGG16 at 224×224 stays within 65,535 workgroups per dimension, even at batch 256', () => {
    const limits = { maxComputeWorkgroupsPerDimension: 65535, maxStorageBufferBindingSize: 2 ** 31 - 4 };
    for (const strategy of ['tiled', 'direct'] as Conv2dStrategy[]) {
      const layers: [number, number, number][] = [
        [3, 64, 224], [64, 64, 224], [64, 128, 112], [128, 128, 112], [128, 256, 56], [256, 256, 56],
        [256, 512, 28], [512, 512, 28], [512, 512, 14],
      ];
      for (const batch of [1, 64, 256]) {
        for (const [cin, cout, size] of layers) {
          const s = conv2dDispatchSizes([batch, cin, size, size], [cout, cin, 3, 3], { padding: 1 }, limits, strategy);
          for (const dims of [s.forward, s.inputGrad, s.filterGrad, s.filterGradSum ?? [1, 1], s.biasGrad]) {
            for (const d of dims) expect(d).toBeLessThanOrEqual(65535);
          }
        }
      }
      }
      // The first layer's filter gradient (64 filters × 27 taps) must be split over its long K.
      const first = conv2dDispatchSizes([8, 3, 224, 224], [64, 3, 3, 3], { padding: 1 }, limits);
      expect(first.filterGradSplits).toBeGreaterThan(100);
      expect(first.filterGrad[0] * first.filterGrad[1]).toBeGreaterThanOrEqual(first.filterGradSplits);
      // Deep layers at batch 1 have too few tiles to fill a GPU: K is split. At batch 64 they have enough.
      const deep = conv2dDispatchSizes([1, 512, 14, 14], [512, 512, 3, 3], { padding: 1 }, limits);
      expect(deep.forwardSplits).toBeGreaterThan(1);
      expect(deep.inputGradSplits).toBeGreaterThan(1);
      const small = conv2dDispatchSizes([2, 64, 6, 5], [60, 64, 3, 3], { padding: 1 }, limits);
      expect([small.forwardSplits, small.inputGradSplits]).toEqual([2, 2]); // the 'split K' case above
      expect(conv2dDispatchSizes([1, 3, 6, 6], [64, 3, 3, 3], { padding: 1 }, limits).inputGradSplits).toBe(2);
      expect(conv2dDispatchSizes([1, 10, 5, 6], [64, 10, 3, 3], { padding: 1 }, limits).inputGradSplits).toBe(2);
      const few = conv2dDispatchSizes([1, 64, 3, 3], [64, 64, 3, 3], { padding: 1 }, limits);
      expect([few.forwardSplits, few.inputGradSplits]).toEqual([2, 2]);
      const grouped = conv2dDispatchSizes([1, 128, 4, 4], [128, 64, 3, 3], { padding: 1, groups: 2 }, limits);
      expect([grouped.forwardSplits, grouped.inputGradSplits]).toEqual([2, 2]);
      const deep64 = conv2dDispatchSizes([64, 512, 14, 14], [512, 512, 3, 3], { padding: 1 }, limits);
      expect([deep64.forwardSplits, deep64.inputGradSplits]).toEqual([1, 1]);
      expect(conv2dDispatchSizes([1, 512, 14, 14], [512, 512, 3, 3], { padding: 1 }, limits, 'direct').forwardSplits).toBe(1);
      // Batch 256 at 224×224 needs more than 65,535 forward tiles: they are folded into y.
      const big = conv2dDispatchSizes([256, 64, 224, 224], [64, 64, 3, 3], { padding: 1 }, limits);
      expect(big.forward[1]).toBeGreaterThan(1);
    });

    it('tiles by workgroup count: the largest of 128×64 (≤ 64 channels), 64×64, 64×32, 32×32 giving ≥ 200', () => {
      const limits = { maxComputeWorkgroupsPerDimension: 65535, maxStorageBufferBindingSize: 2 ** 31 - 4 };
      // Without split K, workgroups = tiles.
      {
        const forward = (cin: number, cout: number, size: number, batch = 1) =>
          conv2dDispatchSizes([batch, cin, size, size], [cout, cin, 3, 3], { padding: 1 }, limits, 'tiled', { splitK: false }).forward[0];
        expect(forward(64, 64, 224)).toBe(392); // 128×64: 392 tiles (64×64 would give 784)
        expect(forward(64, 128, 112)).toBe(392); // 128 channels: 64×64, 196 × 2
        expect(forward(128, 256, 56)).toBe(392); // 64×64 gives 196 < 200: 64×32, 49 × 8
        expect(forward(256, 512, 28)).toBe(208); // 64×32: 13 × 16
        expect(forward(512, 512, 14)).toBe(112); // nothing reaches 200: 32×32, 7 × 16
        expect(forward(512, 512, 14, 8)).toBe(200); // batch 8: 64×64, 25 × 8
      }
    });

    it('settings belong to one Gpu: another device keeps its own', async () => {
      const gpu = await getGpu();
      const other = { adapter: { isSoftware: false }, limits: gpu.limits } as unknown as Gpu; // only what the settings read
      const tile = parseConv2dTile('32x32x16/2x2');
      setConv2dStrategy(gpu, 'tiled');
      setConv2dTile(gpu, tile);
      setConv2dSplitK(gpu, false);
      setConv2dDirectBlock(gpu, { pixels: 2, channels: 16 });
      try {
        expect(conv2dSettings(gpu)).toEqual({ strategy: 'tiled', tile, splitK: false, directBlock: { pixels: 2, channels: 16 }, gridLimit: null });
        expect(conv2dSettings(other)).toEqual({ strategy: null, tile: null, splitK: true, directBlock: null, gridLimit: null });
        expect(conv2dStrategy(other)).toBe('tiled'); // a GPU's default
        setConv2dStrategy(other, 'direct');
        expect(conv2dStrategy(gpu)).toBe('tiled');
        expect(conv2dStrategy(other)).toBe('direct');
        expect(() => setConv2dStrategy(gpu, 'fast' as Conv2dStrategy)).toThrow(/'tiled', 'direct' or null/);
      } finally {
        setConv2dStrategy(gpu, null);
        setConv2dTile(gpu, null);
        setConv2dSplitK(gpu, true);
        setConv2dDirectBlock(gpu, null);
      }
      expect(conv2dSettings(gpu)).toEqual({ strategy: null, tile: null, splitK: true, directBlock: null, gridLimit: null });
    });

    it('output shapes and TF SAME padding', () => {
      expect(conv2dOutputShape([1, 3, 7, 9], [5, 3, 3, 3], { stride: 2, padding: samePadding([7, 9], [3, 3], 2) })).toEqual([1, 5, 4, 5]);
      expect(samePadding([7, 9], [3, 3], 2)).toEqual([1, 1, 1, 1]);
      expect(samePadding([8, 8], [3, 3], 2)).toEqual([0, 1, 0, 1]); // the odd pixel goes bottom/right
      expect(samePadding([8, 8], [1, 1], 1)).toEqual([0, 0, 0, 0]);
      expect(conv2dOutputShape([2, 4, 10, 10], [8, 2, 3, 3], { groups: 2, dilation: 2, padding: [1, 0, 0, 1] })).toEqual([2, 8, 7, 7]);
    });

    it('rejects bad shapes and parameters with clear errors and allocates nothing', async () => {
      const gpu = await getGpu();
      await gpu.scope(async () => {
        const x = tensor(gpu, randomArray(100, 1), [1, 4, 5, 5]);
        const x3 = tensor(gpu, randomArray(100, 1), [4, 5, 5]);
        const w = tensor(gpu, randomArray(54, 2), [2, 3, 3, 3]);
        const w4 = tensor(gpu, randomArray(72, 2), [2, 4, 3, 3]);
        const w3g = tensor(gpu, randomArray(54, 2), [3, 2, 3, 3]);
        const bias3 = tensor(gpu, randomArray(3, 3), [3]);
        const dyBad = tensor(gpu, randomArray(2 * 9, 4), [1, 2, 3, 3]);
        const before = gpu.memory().inUse;
        const tensorsBefore = gpu.memory().tensors;
        const bad: [() => Promise<unknown>, RegExp, typeof ShapeError | typeof ArgumentError][] = [
          [() => conv2dForward(x3, w4, null), /x must have rank 4/, ShapeError],
          [() => conv2dForward(x, w, null), /x \[1, 4, 5, 5\] has 4 channels but w \[2, 3, 3, 3\] expects 3 × 1 group\(s\) = 3/, ShapeError],
          [() => conv2dForward(x, w4, bias3), /bias must be \[Cout\] = \[2\], got \[3\]/, ShapeError],
          [() => conv2dForward(x, w3g, null, { groups: 2 }), /groups \(2\) must divide the input channels \(4\) and the output channels \(3\)/, ShapeError],
          [() => conv2dForward(x, w4, null, { dilation: 3 }), /output would be -1×-1/, ShapeError],
          [() => conv2dForward(x, w4, null, { stride: 0 }), /stride must be positive integers/, ArgumentError],
          [() => conv2dForward(x, w4, null, { padding: [1, 2, 3] as unknown as [number, number] }), /padding must be/, ArgumentError],
          [() => conv2dForward(x, w4, null, { activation: 'gelu' as Activation }), /unknown activation 'gelu'/, ArgumentError],
          [() => conv2dForward(x, w4, null, { activation: 'leakyrelu', alpha: NaN }), /alpha must be a finite number/, ShapeError],
          [() => conv2dBackwardInput(dyBad, w4, [1, 4, 5, 5], { padding: 1 }), /dy must be \[1, 2, 5, 5\].*got \[1, 2, 3, 3\]/, ShapeError],
          [() => conv2dBackwardFilter(x, dyBad, [2, 4, 3, 3], { stride: 2 }), /dy must be \[1, 2, 2, 2\]/, ShapeError],
          [() => conv2dBackwardBias(x3), /dy must have rank 4/, ShapeError],
          [() => conv2d(x, w, null), /has 4 channels but w/, ShapeError],
        ];
        for (const [fn, message, type] of bad) {
          const err = await fn().then(
            () => null,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(type);
          expect((err as Error).message).toMatch(message);
          expect(gpu.memory().inUse).toBe(before);
          expect(gpu.memory().tensors).toBe(tensorsBefore);
        }
        expect(() => conv2dOutputShape([1, 1, 2, 2], [1, 1, 3, 3], {})).toThrow(/output would be 0×0/);
      });
    });
  });

  describe('conv2d op: gradients on the tape', () => {
    const gradCases: { name: string; x: number[]; w: number[]; params: Conv2dParams }[] = [
      { name: 'plain 3×3', x: [2, 2, 5, 4], w: [3, 2, 3, 3], params: {} },
      { name: 'stride 2, asymmetric padding, dilation [1, 2]', x: [1, 2, 5, 6], w: [3, 2, 3, 2], params: { stride: 2, padding: [1, 0, 2, 1], dilation: [1, 2] } },
      { name: 'groups 2, dilation 2, padding 2', x: [1, 4, 4, 4], w: [4, 2, 2, 2], params: { groups: 2, dilation: 2, padding: 2 } },
      { name: 'depthwise ×2 multiplier, stride [2, 1]', x: [1, 2, 5, 4], w: [4, 1, 3, 3], params: { groups: 2, stride: [2, 1], padding: 1 } },
    ];
    for (const c of gradCases) {
      it(`finite differences for x, w and bias: ${c.name}`, async () => {
        const gpu = await getGpu();
        await gradCheck(gpu, ([x, w, b]) => conv2d(x!, w!, b!, c.params), [
          { data: randomArray(product(c.x), 301), shape: c.x },
          { data: randomArray(product(c.w), 302, -0.5, 0.5), shape: c.w },
          { data: randomArray(c.w[0]!, 303), shape: [c.w[0]!] },
        ]);
      });
    }

    it('finite differences through fused smooth activations (tanh, sigmoid)', async () => {
      const gpu = await getGpu();
      for (const act of ['tanh', 'sigmoid'] as const) {
        await gradCheck(gpu, ([x, w, b]) => conv2d(x!, w!, b!, { padding: 1, stride: [1, 2], activation: act }), [
          { data: randomArray(2 * 4 * 4, 311), shape: [1, 2, 4, 4] },
          { data: randomArray(2 * 2 * 9, 312, -0.5, 0.5), shape: [2, 2, 3, 3] },
          { data: randomArray(2, 313), shape: [2] },
        ]);
      }
    });

    it('a fused ReLU / leaky ReLU follows the tape rule (ordinary, guided, deconv) like a separate one', async () => {
      const gpu = await getGpu();
      const xs = [2, 2, 6, 6];
      const ws = [3, 2, 3, 3];
      const before = gpu.memory().inUse;
      const run = async (fused: boolean, act: 'relu' | 'leakyrelu', variant: string): Promise<Float32Array[]> =>
        gpu.scope(async () => {
          const x = tensor(gpu, randomArray(product(xs), 401), xs);
          const w = tensor(gpu, randomArray(product(ws), 402), ws);
          const b = tensor(gpu, randomArray(3, 403), [3]);
          w.requiresGrad = true;
          const tape = new Tape(gpu);
          tape.watch(x);
          const params: Conv2dParams = { padding: 1, stride: [1, 2] };
          const y = await tape.run(async () =>
            fused ? conv2d(x, w, b, { ...params, activation: act, alpha: 0.1 }) : activationOp(await conv2d(x, w, b, params), act, 0.1),
          );
          const seed = tensor(gpu, randomArray(y.size, 404), y.shape); // both signs: guided/deconv differ
          const grads = await tape.backward(y, { seed, rules: { activations: { [act]: variant } } });
          const out = [await grads.of(x).read(), await grads.of(w).read()];
          expect(grads.get(b)).toBeUndefined(); // b is neither watched nor a parameter
          grads.dispose();
          tape.dispose();
          return out;
        });
      const results = new Map<string, Float32Array>();
      for (const [act, variant] of [['relu', 'ordinary'], ['relu', 'guided'], ['relu', 'deconv'], ['leakyrelu', 'ordinary']] as const) {
        const fused = await run(true, act, variant);
        const separate = await run(false, act, variant);
        expectClose(fused[0]!, separate[0]!, 1e-5, 1e-4);
        expectClose(fused[1]!, separate[1]!, 1e-5, 1e-4);
        results.set(`${act}:${variant}`, fused[0]!);
      }
      // The override really changed the fused rule.
      const diff = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0);
      expect(diff(results.get('relu:ordinary')!, results.get('relu:guided')!)).toBeGreaterThan(1e-3);
      expect(diff(results.get('relu:guided')!, results.get('relu:deconv')!)).toBeGreaterThan(1e-3);
      expect(gpu.memory().inUse).toBe(before);
    });

    it('computes only the gradients that are needed', async () => {
      const gpu = await getGpu();
      const before = gpu.memory().inUse;
      await gpu.scope(async () => {
        const x = tensor(gpu, randomArray(2 * 3 * 5 * 5, 501), [2, 3, 5, 5]);
        const w = tensor(gpu, randomArray(4 * 3 * 9, 502), [4, 3, 3, 3]);
        const b = tensor(gpu, randomArray(4, 503), [4]);
        b.requiresGrad = true;
        const tape = new Tape(gpu);
        const y = await tape.run(() => conv2d(x, w, b, { padding: 1 }));
        const grads = await tape.backward(y);
        expect(grads.get(x)).toBeUndefined();
        expect(grads.get(w)).toBeUndefined();
        // dL/dbias with an all-ones seed = N·Ho·Wo per channel.
        expectClose(await grads.of(b).read(), new Float32Array(4).fill(2 * 25));
        grads.dispose();
        tape.dispose();
      });
      expect(gpu.memory().inUse).toBe(before);
    });
  });

  afterEach(async () => setConv2dGridLimitForTesting(await getGpu(), null));
