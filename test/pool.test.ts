import { describe, expect, it } from 'vitest';
import {
  avgPool2d,
  avgPool2dBackward,
  globalAvgPool,
  globalAvgPoolBackward,
  globalMaxPool,
  maxPool2dWithSwitches,
  maxUnpool2d,
  poolOutputShape,
  type AvgPool2dParams,
  type Pool2dParams,
} from '../src/kernels/pool.js';
import { samePadding } from '../src/kernels/common.js';
import * as ops from '../src/autodiff/ops/pool.js';
import { Tape } from '../src/autodiff/tape.js';
import { ArgumentError, ShapeError } from '../src/runtime/errors.js';
import { empty, tensor } from '../src/runtime/tensor.js';
import { gradCheck } from './gradcheck.js';
import { expectClose, getGpu, product, randomArray, rng } from './helpers.js';
import {
  avgPoolBackwardRef,
  avgPoolRef,
  globalAvgPoolRef,
  globalMaxPoolRef,
  maxPoolRef,
  maxUnpoolRef,
  refOutSize,
  type RefPool,
} from './reference/pool.js';

function toRef(p: Pool2dParams): RefPool {
  const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);
  const kernel = pair(p.kernel);
  const stride = p.stride === undefined ? kernel : pair(p.stride);
  const pd = p.padding ?? 0;
  const pad: [number, number, number, number] =
    typeof pd === 'number' ? [pd, pd, pd, pd] : pd.length === 2 ? [pd[0], pd[0], pd[1], pd[1]] : pd;
  return { kernel, stride, pad, ceil: p.ceilMode, dilation: p.dilation === undefined ? undefined : pair(p.dilation) };
}

/** Values in [0, 1) quantised to `levels` steps: many exact ties. */
function quantised(n: number, seed: number, levels: number, offset = 0): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => Math.floor(r() * levels) + offset);
}

/** A random permutation of 0..n-1 scaled by `step`: distinct, well separated values (no kinks for FD). */
function distinct(n: number, seed: number, step = 0.1): Float32Array {
  const r = rng(seed);
  const v = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return Float32Array.from(v, (k) => (k - n / 2) * step);
}

const CASES: [string, number[], Pool2dParams][] = [
  ['k2 s2', [2, 3, 7, 9], { kernel: 2 }],
  ['k3 s1 p1 (overlapping)', [2, 3, 7, 9], { kernel: 3, stride: 1, padding: 1 }],
  ['k3 s2 p1 ceil', [1, 2, 7, 9], { kernel: 3, stride: 2, padding: 1, ceilMode: true }],
  ['k2 s2 ceil, odd input', [2, 2, 5, 7], { kernel: 2, ceilMode: true }],
  ['k3 s3 asymmetric padding', [2, 2, 8, 8], { kernel: 3, stride: 3, padding: [0, 1, 1, 0] }],
  ['k[2,3] s[1,2] p[1,0] ceil', [1, 3, 9, 7], { kernel: [2, 3], stride: [1, 2], padding: [1, 0], ceilMode: true }],
  ['k3 s2 TF SAME', [2, 1, 6, 7], { kernel: 3, stride: 2, padding: samePadding([6, 7], 3, 2) }],
  ['k2 s2 p2: all-padding windows', [1, 2, 3, 5], { kernel: 2, stride: 2, padding: 2 }],
  ['k2 s1 p[2,0] ceil, windows in padding', [1, 1, 3, 4], { kernel: 2, stride: 1, padding: [2, 0], ceilMode: true }],
  // ONNX dilations
  ['k3 s1 d2 p2', [2, 2, 7, 8], { kernel: 3, stride: 1, dilation: 2, padding: 2 }],
  ['k[2,3] s2 d[3,2] asymmetric padding, ceil', [1, 2, 9, 10], { kernel: [2, 3], stride: 2, dilation: [3, 2], padding: [1, 2, 0, 1], ceilMode: true }],
  ['k2 s3 d2 ceil, a window hanging past the padding', [1, 1, 8, 9], { kernel: 2, stride: 3, dilation: 2, padding: [0, 1, 1, 0], ceilMode: true }],
  ['k3 s2 d2 p[2,2,1,1] ceil (ONNX Runtime probe)', [1, 1, 6, 6], { kernel: 3, stride: 2, dilation: 2, padding: [2, 1, 2, 1], ceilMode: true }],
];

describe('pooling kernels', () => {
  for (const [name, shape, params] of CASES) {
    it(`max pool, switches, unpool, avg pool and its gradient: ${name} ${JSON.stringify(shape)}`, async () => {
      const gpu = await getGpu();
      const ref = toRef(params);
      const data = randomArray(product(shape), 11, -2, 2);
      const x = tensor(gpu, data, shape);
      const m = maxPoolRef(data, shape, ref);
      expect(poolOutputShape(shape, params)).toEqual(m.shape);

      const { output, switches } = await maxPool2dWithSwitches(x, params);
      expect(output.shape).toEqual(m.shape);
      expect(switches.dtype).toBe('int32');
      expect(Array.from(await switches.readInt32())).toEqual(Array.from(m.switches));
      expectClose(await output.read(), m.out, 0, 0);

      const dy = randomArray(output.size, 12);
      const tdy = tensor(gpu, dy, output.shape);
      const dx = await maxUnpool2d(tdy, switches, shape, params);
      expectClose(await dx.read(), maxUnpoolRef(dy, m.switches, m.shape, shape), 1e-6, 1e-5);

      for (const countIncludePad of [true, false]) {
        const ap: AvgPool2dParams = { ...params, countIncludePad };
        const a = avgPoolRef(data, shape, ref, countIncludePad);
        const y = await avgPool2d(x, ap);
        expect(y.shape).toEqual(a.shape);
        expectClose(await y.read(), a.out, 1e-6, 1e-5);
        const g = await avgPool2dBackward(tdy, shape, ap);
        expectClose(await g.read(), avgPoolBackwardRef(dy, shape, ref, countIncludePad), 1e-6, 1e-5);
        y.dispose();
        g.dispose();
      }
      for (const t of [x, output, switches, tdy, dx]) t.dispose();
    });
  }

  it('the output-size rule matches PyTorch (ceil mode drops a window that starts past the input)', () => {
    expect(poolOutputShape([1, 1, 5, 5], { kernel: 2, ceilMode: true })).toEqual([1, 1, 3, 3]);
    expect(poolOutputShape([1, 1, 5, 5], { kernel: 2 })).toEqual([1, 1, 2, 2]);
    // 6 + 1 + 1 = 8 padded, k 2, s 2, ceil: 4 windows, but the 5th would start at 8 ≥ 6 + 1.
    expect(poolOutputShape([1, 1, 6, 6], { kernel: 2, stride: 2, padding: 1, ceilMode: true })).toEqual([1, 1, 4, 4]);
    expect(refOutSize(6, 2, 2, 1, 1, true)).toBe(4);
    // TF SAME: out = ceil(in / s), the odd extra padding at the bottom/right.
    expect(samePadding([7, 6], 3, 2)).toEqual([1, 1, 0, 1]);
    expect(poolOutputShape([1, 1, 7, 6], { kernel: 3, stride: 2, padding: samePadding([7, 6], 3, 2) })).toEqual([1, 1, 4, 3]);
  });

  it('an all-padding window gives 0, switch −1, and no gradient', async () => {
    const gpu = await getGpu();
    // H = W = 3, k 2, s 2, padding 2: the first window of each axis lies in the padding.
    const data = Float32Array.from({ length: 9 }, (_, i) => -1 - i);
    const x = tensor(gpu, data, [1, 1, 3, 3]);
    const { output, switches } = await maxPool2dWithSwitches(x, { kernel: 2, stride: 2, padding: 2 });
    expect(output.shape).toEqual([1, 1, 3, 3]);
    const sw = await switches.readInt32();
    const y = await output.read();
    // Row 0 and column 0 of the output are all padding.
    for (const o of [0, 1, 2, 3, 6]) {
      expect(sw[o]).toBe(-1);
      expect(y[o]).toBe(0);
    }
    // Window (1,1) covers input rows/cols 0..1: max of -1, -2, -4, -5 is -1 at index 0.
    expect(sw[4]).toBe(0);
    expect(y[4]).toBe(-1);
    const dx = await maxUnpool2d(await fillTensor(gpu, [1, 1, 3, 3], 1), switches, [1, 1, 3, 3], { kernel: 2, stride: 2, padding: 2 });
    // Only the real windows' argmaxes (indices 0, 2, 6, 8) get gradient.
    expect(Array.from(await dx.read())).toEqual([1, 0, 1, 0, 0, 0, 1, 0, 1]);
    const avg = await avgPool2d(x, { kernel: 2, stride: 2, padding: 2, countIncludePad: false });
    const a = await avg.read();
    expect(a[0]).toBe(0);
    expect(a[4]).toBeCloseTo((-1 - 2 - 4 - 5) / 4, 6);
  });

  it('ties go to the first index in row-major window order; padding never wins over negatives', async () => {
    const gpu = await getGpu();
    // Hand-made: one 2×2 window of equal values, one with a tie between positions 1 and 2.
    const hand = Float32Array.from([5, 5, 1, 2, 5, 5, 2, 1, 0, 3, 7, 7, 3, 0, 7, 7]);
    const x = tensor(gpu, hand, [1, 1, 4, 4]);
    const { switches } = await maxPool2dWithSwitches(x, { kernel: 2 });
    expect(Array.from(await switches.readInt32())).toEqual([0, 3, 9, 10]);
    // Overlapping windows over heavily tied data (3 levels), negative everywhere, with padding.
    const shape = [2, 2, 7, 9];
    const tied = quantised(product(shape), 5, 3, -3); // values in {-3, -2, -1}
    const t = tensor(gpu, tied, shape);
    for (const params of [
      { kernel: 3, stride: 1, padding: 1 },
      { kernel: [3, 2], stride: [2, 1], padding: [1, 1, 0, 1], ceilMode: true },
    ] as Pool2dParams[]) {
      const m = maxPoolRef(tied, shape, toRef(params));
      const { output, switches: s } = await maxPool2dWithSwitches(t, params);
      const y = await output.read();
      expect(Array.from(await s.readInt32())).toEqual(Array.from(m.switches));
      expect(Array.from(y)).toEqual(Array.from(m.out));
      expect(Math.max(...y)).toBeLessThan(0); // padding (−∞) is never chosen, so no 0 appears
      // Many windows share an argmax here: unpooling must sum them.
      const dy = randomArray(output.size, 6);
      const tdy = tensor(gpu, dy, output.shape);
      const dx = await maxUnpool2d(tdy, s, shape, params);
      expectClose(await dx.read(), maxUnpoolRef(dy, m.switches, m.shape, shape), 1e-6, 1e-5);
      for (const z of [output, s, tdy, dx]) z.dispose();
    }
  });

  it('global average pooling: small, large planes (parallel reduction) and many planes (folded grid)', async () => {
    const gpu = await getGpu();
    for (const shape of [
      [2, 3, 5, 7],
      [1, 2, 230, 231],
      [1, 70000, 1, 1],
    ]) {
      const data = randomArray(product(shape), 21, 0, 2);
      const x = tensor(gpu, data, shape);
      const y = await globalAvgPool(x);
      expect(y.shape).toEqual(shape.slice(0, 2));
      expectClose(await y.read(), globalAvgPoolRef(data, shape), 1e-6, 1e-5);
      const dy = randomArray(y.size, 22);
      const g = await globalAvgPoolBackward(tensor(gpu, dy, y.shape), shape);
      const hw = shape[2]! * shape[3]!;
      const expected = Float32Array.from({ length: product(shape) }, (_, i) => dy[Math.floor(i / hw)]! / hw);
      expectClose(await g.read(), expected, 1e-7, 1e-5);
      x.dispose();
      y.dispose();
      g.dispose();
    }
  });

  it('rejects bad parameters and shapes clearly, leaving no buffer behind', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, randomArray(2 * 3 * 4 * 5, 1), [2, 3, 4, 5]);
    const { output, switches } = await maxPool2dWithSwitches(x, { kernel: 2 });
    const before = gpu.memory().inUse;
    await expect(maxPool2dWithSwitches(x, { kernel: 5 })).rejects.toThrow(ShapeError);
    await expect(maxPool2dWithSwitches(x, { kernel: 5 })).rejects.toThrow(/kernel is larger than the padded input along height/);
    await expect(avgPool2d(x, { kernel: [2, 6], padding: [0, 0] })).rejects.toThrow(/larger than the padded input along width/);
    await expect(maxPool2dWithSwitches(x, { kernel: 2, stride: 0 })).rejects.toThrow(ArgumentError);
    await expect(maxPool2dWithSwitches(x, { kernel: 2, stride: 0 })).rejects.toThrow(/stride must be a positive integer, got 0/);
    await expect(avgPool2d(x, { kernel: 0 })).rejects.toThrow(/kernel must be a positive integer/);
    await expect(avgPool2d(x, { kernel: 2, dilation: 0 })).rejects.toThrow(/dilation must be a positive integer, got 0/);
    await expect(maxPool2dWithSwitches(x, { kernel: 2, dilation: 4 })).rejects.toThrow(/the 2-tap kernel dilated by 4 \(5 wide\) is larger than the padded input along height/);
    await expect(avgPool2d(x, { kernel: 2, padding: -1 })).rejects.toThrow(/padding must be non-negative/);
    await expect(avgPool2d(x, { kernel: 2, padding: [1, 2, 3] as unknown as number })).rejects.toThrow(/padding/);
    const flat = x.reshape([6, 4, 5]);
    await expect(maxPool2dWithSwitches(flat, { kernel: 2 })).rejects.toThrow(/rank 4/);
    flat.dispose();
    const badSw = empty(gpu, [2, 3, 2, 1], 'int32');
    await expect(maxUnpool2d(output, badSw, [2, 3, 4, 5], { kernel: 2 })).rejects.toThrow(/switches \[2, 3, 2, 1\] must have the shape of dy \[2, 3, 2, 2\]/);
    await expect(maxUnpool2d(output, output, [2, 3, 4, 5], { kernel: 2 })).rejects.toThrow(/switches must be int32/);
    await expect(maxUnpool2d(output, switches, [2, 3, 6, 5], { kernel: 2 })).rejects.toThrow(/does not match the pooled shape \[2, 3, 3, 2\]/);
    await expect(avgPool2dBackward(output, [2, 3, 4], { kernel: 2 })).rejects.toThrow(/\[N, C, H, W\]/);
    await expect(globalAvgPoolBackward(output, [2, 3, 4, 5])).rejects.toThrow(/must be \[N, C\]/);
    badSw.dispose();
    expect(gpu.memory().inUse).toBe(before);
    for (const t of [x, output, switches]) t.dispose();
  });
});

async function fillTensor(gpu: Awaited<ReturnType<typeof getGpu>>, shape: number[], v: number) {
  return tensor(gpu, new Float32Array(product(shape)).fill(v), shape);
}

describe('pooling gradients (finite differences)', () => {
  it('maxPool2d: overlapping windows, padding, ceil mode', async () => {
    const gpu = await getGpu();
    const shape = [1, 2, 5, 5];
    await gradCheck(gpu, ([x]) => ops.maxPool2d(x!, { kernel: 3, stride: 2, padding: 1, ceilMode: true }), [{ data: distinct(product(shape), 3), shape }]);
    await gradCheck(gpu, ([x]) => ops.maxPool2d(x!, { kernel: 2, stride: 1, padding: [0, 1, 1, 0] }), [{ data: distinct(product(shape), 4), shape }]);
  });

  it('maxPool2d and avgPool2d with dilation, asymmetric padding and ceil mode', async () => {
    const gpu = await getGpu();
    const shape = [1, 2, 6, 7];
    const params: Pool2dParams = { kernel: [2, 3], stride: [2, 1], dilation: [2, 2], padding: [1, 0, 2, 1], ceilMode: true };
    await gradCheck(gpu, ([x]) => ops.maxPool2d(x!, params), [{ data: distinct(product(shape), 12), shape }]);
    for (const countIncludePad of [true, false]) {
      await gradCheck(gpu, ([x]) => ops.avgPool2d(x!, { ...params, countIncludePad }), [{ data: randomArray(product(shape), 13), shape }]);
    }
  });

  it('avgPool2d: count_include_pad true and false', async () => {
    const gpu = await getGpu();
    const shape = [2, 1, 5, 4];
    const data = randomArray(product(shape), 7);
    await gradCheck(gpu, ([x]) => ops.avgPool2d(x!, { kernel: 3, stride: 2, padding: 1, ceilMode: true }), [{ data, shape }]);
    await gradCheck(gpu, ([x]) => ops.avgPool2d(x!, { kernel: [2, 3], stride: 1, padding: [1, 0, 1, 1], countIncludePad: false }), [{ data, shape }]);
  });

  it('globalAvgPool', async () => {
    const gpu = await getGpu();
    const shape = [2, 3, 3, 3];
    await gradCheck(gpu, ([x]) => ops.globalAvgPool(x!), [{ data: randomArray(product(shape), 8), shape }]);
  });

  it("maxPool2d's recorded backward is unpooling with the recorded switches", async () => {
    const gpu = await getGpu();
    const shape = [1, 1, 4, 4];
    const data = Float32Array.from([1, 3, 3, 0, 2, 3, 0, 0, 9, 9, 1, 1, 9, 9, 1, 1]);
    const before = gpu.memory().inUse;
    await gpu.scope(async () => {
      const x = tensor(gpu, data, shape);
      const tape = new Tape(gpu);
      tape.watch(x);
      const y = await tape.run(() => ops.maxPool2d(x, { kernel: 2 }));
      const grads = await tape.backward(y, { seed: tensor(gpu, [10, 20, 30, 40], [1, 1, 2, 2]) });
      // First-in-row-major argmaxes: 3 at (0,1), 3 at (0,2), 9 at (2,0), 1 at (2,2).
      expect(Array.from(await grads.of(x).read())).toEqual([0, 10, 20, 0, 0, 0, 0, 0, 30, 0, 40, 0, 0, 0, 0, 0]);
      grads.dispose();
      tape.dispose();
    });
    expect(gpu.memory().inUse).toBe(before);
  });

  it('a backward seed with the output size but another shape is accepted (e.g. [N, C, 1, 1])', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    await gpu.scope(async () => {
      const x = tensor(gpu, randomArray(2 * 3 * 2 * 2, 3), [2, 3, 2, 2]);
      const tape = new Tape(gpu);
      tape.watch(x);
      const y = await tape.run(() => ops.globalAvgPool(x));
      const seed = tensor(gpu, [4, 8, 12, 16, 20, 24], [2, 3, 1, 1]);
      const grads = await tape.backward(y, { seed });
      expect(Array.from(await grads.of(x).read())).toEqual([1, 2, 3, 4, 5, 6].flatMap((v) => [v, v, v, v]));
      grads.dispose();
      tape.dispose();
    });
    expect(gpu.memory().inUse).toBe(before);
  });
});

describe('global max pooling', () => {
  it('values and the first row-major argmax per plane, on tied data, large planes and rank 3 and 5', async () => {
    const gpu = await getGpu();
    for (const [shape, levels] of [
      [[2, 3, 4, 5], 3],
      [[1, 2, 150, 131], 7],
      [[2, 3, 10], 2],
      [[1, 2, 3, 4, 2], 4],
    ] as [number[], number][]) {
      const before = gpu.memory().inUse;
      const data = quantised(product(shape), 9, levels, -5); // heavy ties, all negative
      const ref = globalMaxPoolRef(data, shape);
      const x = tensor(gpu, data, shape);
      const y = await globalMaxPool(x);
      expect(y.shape).toEqual(shape.slice(0, 2));
      expectClose(await y.read(), ref.out, 0, 0);
      // The recorded gradient lands on the first argmax of each plane only.
      const tape = new Tape(gpu);
      tape.watch(x);
      const z = await tape.run(() => ops.globalMaxPool(x));
      const dy = randomArray(z.size, 10);
      const seed = tensor(gpu, dy, [...z.shape, 1, 1]);
      const grads = await tape.backward(z, { seed });
      const expected = new Float32Array(data.length);
      ref.arg.forEach((a, pl) => (expected[pl * ref.size + a] = dy[pl]!));
      expect(Array.from(await grads.of(x).read())).toEqual(Array.from(expected));
      grads.dispose();
      tape.dispose();
      for (const t of [x, y, z, seed]) t.dispose();
      expect(gpu.memory().inUse).toBe(before);
    }
  });

  it('gradient by finite differences, and a clear error for rank < 3', async () => {
    const gpu = await getGpu();
    const shape = [2, 2, 3, 3];
    await gradCheck(gpu, ([x]) => ops.globalMaxPool(x!), [{ data: distinct(product(shape), 11), shape }]);
    const flat = tensor(gpu, [1, 2, 3, 4], [2, 2]);
    await expect(globalMaxPool(flat)).rejects.toThrow(/x must be \[N, C, H, W\] \(or \[N, C, spatial…\]\), got \[2, 2\]/);
    flat.dispose();
  });
});
