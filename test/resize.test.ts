import { describe, expect, it } from 'vitest';
import {
  COORDINATE_TRANSFORMATION_MODES,
  NEAREST_MODES,
  axisTaps,
  resize,
  resizeBackward,
  type CoordinateTransformationMode,
  type NearestMode,
  type ResizeMode,
  type ResizeOptions,
} from '../src/kernels/resize.js';
import * as ops from '../src/autodiff/ops/resize.js';
import { ArgumentError, ShapeError } from '../src/runtime/errors.js';
import { tensor } from '../src/runtime/tensor.js';
import { gradCheck } from './gradcheck.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import { onnxTapsRef, resizeBackwardRef, resizeRef, resizeTapsBackwardRef, resizeTapsRef } from './reference/resize.js';

const MODES: [ResizeMode, boolean][] = [
  ['bilinear', false],
  ['bilinear', true],
  ['nearest', false],
  ['nearest', true],
];

// [input shape, output size]: up, down, odd factors, identity, 1-pixel inputs and outputs.
const SIZES: [number[], [number, number]][] = [
  [[2, 3, 7, 9], [16, 5]],
  [[1, 2, 16, 5], [5, 12]],
  [[1, 1, 28, 28], [28, 28]],
  [[2, 1, 1, 1], [4, 4]],
  [[1, 2, 1, 4], [3, 9]],
  [[1, 1, 6, 3], [1, 1]],
  [[3, 5, 7], [13, 4]], // rank 3
];

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

describe('resize kernels', () => {
  it('2×2 → 4×4 by hand (PyTorch values)', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, [1, 2, 3, 4], [1, 1, 2, 2]);
    const half = await resize(x, [4, 4]);
    expectClose(await half.read(), [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4], 1e-6, 0);
    const corners = await resize(x, [4, 4], { mode: 'bilinear', alignCorners: true });
    const t = 1 / 3;
    expectClose(
      await corners.read(),
      [1, 1 + t, 1 + 2 * t, 2, 1 + 2 * t, 2, 2 + t, 2 + 2 * t, 2 + t, 2 + 2 * t, 3, 3 + t, 3, 3 + t, 3 + 2 * t, 4],
      1e-6,
      0,
    );
    const nearest = await resize(x, [4, 4], { mode: 'nearest' });
    expect(Array.from(await nearest.read())).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    // 3 → 2 nearest with align_corners: o·(3−1)/(2−1) = 0, 2; half-pixel: floor((o+0.5)·1.5) = 0, 2.
    const y = tensor(gpu, [1, 2, 3], [1, 3]);
    expect(Array.from(await (await resize(y, [1, 2], { mode: 'nearest', alignCorners: true })).read())).toEqual([1, 3]);
    expect(Array.from(await (await resize(y, [1, 2], { mode: 'nearest' })).read())).toEqual([1, 3]);
    // 2 → 3 nearest align_corners rounds 0.5 up: indices 0, 1 (0.5), 1.
    const z = tensor(gpu, [5, 6], [1, 2]);
    expect(Array.from(await (await resize(z, [1, 3], { mode: 'nearest', alignCorners: true })).read())).toEqual([5, 6, 6]);
  });

  for (const [mode, alignCorners] of MODES) {
    it(`${mode}${alignCorners ? ' align_corners' : ''}: forward and backward against the references`, async () => {
      const gpu = await getGpu();
      for (const [shape, [oh, ow]] of SIZES) {
        const data = randomArray(product(shape), 31, -1, 1);
        const x = tensor(gpu, data, shape);
        const y = await resize(x, [oh, ow], { mode, alignCorners });
        expect(y.shape).toEqual([...shape.slice(0, -2), oh, ow]);
        expectClose(await y.read(), resizeRef(data, shape, oh, ow, mode, alignCorners), 1e-5, 1e-5);
        const dy = randomArray(y.size, 32);
        const tdy = tensor(gpu, dy, y.shape);
        const dx = await resizeBackward(tdy, shape, { mode, alignCorners });
        expect(dx.shape).toEqual(shape);
        expectClose(await dx.read(), resizeBackwardRef(dy, shape, oh, ow, mode, alignCorners), 1e-5, 1e-5);
        for (const t of [x, y, tdy, dx]) t.dispose();
      }
    });
  }

  it('the backward is the exact adjoint: <resize(x), y> = <x, resizeBackward(y)>', async () => {
    const gpu = await getGpu();
    const cases: [number[], [number, number]][] = [
      [[2, 3, 7, 7], [16, 16]],
      [[1, 2, 16, 16], [5, 5]],
      [[1, 1, 28, 28], [28, 28]],
      [[1, 3, 1, 1], [4, 4]],
      [[1, 1, 7, 16], [16, 5]],
      [[1, 1, 9, 40], [64, 13]],
    ];
    for (const [mode, alignCorners] of MODES) {
      for (const [shape, [oh, ow]] of cases) {
        const xd = randomArray(product(shape), 41);
        const outShape = [...shape.slice(0, -2), oh, ow];
        const yd = randomArray(product(outShape), 42);
        const x = tensor(gpu, xd, shape);
        const y = tensor(gpu, yd, outShape);
        const rx = await resize(x, [oh, ow], { mode, alignCorners });
        const ry = await resizeBackward(y, shape, { mode, alignCorners });
        const lhs = dot(await rx.read(), yd);
        const rhs = dot(xd, await ry.read());
        const scale = Math.max(Math.abs(lhs), Math.abs(rhs), 1e-3);
        expect(Math.abs(lhs - rhs) / scale, `${mode} align=${alignCorners} ${JSON.stringify(shape)} → ${oh}×${ow}: ${lhs} vs ${rhs}`).toBeLessThan(1e-4);
        for (const t of [x, y, rx, ry]) t.dispose();
      }
    }
  });

  it('a constant image stays constant', async () => {
    const gpu = await getGpu();
    for (const [mode, alignCorners] of MODES) {
      for (const [shape, [oh, ow]] of SIZES) {
        const x = tensor(gpu, new Float32Array(product(shape)).fill(0.7), shape);
        const y = await resize(x, [oh, ow], { mode, alignCorners });
        expectClose(await y.read(), new Float32Array(y.size).fill(0.7), 1e-6, 1e-6);
        x.dispose();
        y.dispose();
      }
    }
  });

  it('rejects bad sizes, modes and shapes clearly, leaving no buffer behind', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, randomArray(24, 1), [1, 2, 3, 4]);
    const before = gpu.memory().inUse;
    await expect(resize(x, [0, 4])).rejects.toThrow(ArgumentError);
    await expect(resize(x, [0, 4])).rejects.toThrow(/output size must be \[height, width\] of positive integers, got \[0,4\]/);
    await expect(resize(x, [2.5, 4])).rejects.toThrow(/positive integers/);
    await expect(resize(x, [4] as unknown as [number, number])).rejects.toThrow(/\[height, width\]/);
    await expect(resize(x, [4, 4], { mode: 'bicubic' as ResizeMode })).rejects.toThrow(/mode must be 'bilinear' or 'nearest'/);
    await expect(resizeBackward(x, [1, 3, 3, 4])).rejects.toThrow(ShapeError);
    await expect(resizeBackward(x, [1, 2, 3])).rejects.toThrow(/leading dimensions/);
    await expect(resizeBackward(x, [1, 2, 0, 4])).rejects.toThrow(/positive integers/);
    expect(gpu.memory().inUse).toBe(before);
    x.dispose();
  });
});

describe('resize with ONNX coordinate transformation and nearest modes', () => {
  // Ratios of powers of two (and the given scale 1.5) keep every coordinate exact in float32, so the
  // float64 reference and ONNX Runtime's float32 arithmetic agree.
  const ONNX_SIZES: [number[], [number, number], [number, number] | undefined][] = [
    [[2, 3, 4, 6], [8, 12], undefined],
    [[1, 2, 8, 12], [4, 3], undefined],
    [[1, 1, 4, 4], [1, 16], undefined],
    [[1, 1, 1, 3], [4, 6], undefined],
    [[1, 2, 4, 5], [6, 7], [1.5, 1.5]], // given scales: 5·1.5 = 7.5 → 7 outputs, mapped with 1.5, not 7/5
    [[1, 1, 5, 5], [5, 10], undefined], // H scale 1: identity
  ];

  for (const mode of ['nearest', 'bilinear'] as ResizeMode[]) {
    for (const ctm of COORDINATE_TRANSFORMATION_MODES) {
      const nearestModes: (NearestMode | undefined)[] = mode === 'nearest' ? [...NEAREST_MODES, undefined] : [undefined];
      for (const nearestMode of nearestModes) {
        it(`${mode}, ${ctm}${nearestMode ? `, ${nearestMode}` : ''}: forward and backward against the ONNX definition`, async () => {
          const gpu = await getGpu();
          const before = gpu.memory().inUse;
          for (const [shape, [oh, ow], scales] of ONNX_SIZES) {
            const options: ResizeOptions = { mode, coordinateTransformationMode: ctm, nearestMode, scales };
            const taps = (o: number, nIn: number, nOut: number, axis: 0 | 1) =>
              onnxTapsRef(o, nIn, nOut, mode, ctm, nearestMode, scales ? scales[axis] : nOut / nIn);
            const data = randomArray(product(shape), 33);
            const x = tensor(gpu, data, shape);
            const y = await resize(x, [oh, ow], options);
            expectClose(await y.read(), resizeTapsRef(data, shape, oh, ow, taps), 1e-5, 1e-5);
            const dy = randomArray(y.size, 34);
            const tdy = tensor(gpu, dy, y.shape);
            const dx = await resizeBackward(tdy, shape, options);
            expectClose(await dx.read(), resizeTapsBackwardRef(dy, shape, oh, ow, taps), 1e-5, 1e-5);
            for (const t of [x, y, tdy, dx]) t.dispose();
          }
          expect(gpu.memory().inUse).toBe(before);
        });
      }
    }
  }

  it('by hand: the maps PyTorch exports (nearest asymmetric floor; bilinear pytorch_half_pixel and align_corners)', () => {
    const idx = (nIn: number, nOut: number, o: ResizeOptions) => Array.from(axisTaps(nIn, nOut, o).i0);
    expect(idx(3, 6, { mode: 'nearest', coordinateTransformationMode: 'asymmetric', nearestMode: 'floor' })).toEqual([0, 0, 1, 1, 2, 2]);
    expect(idx(4, 2, { mode: 'nearest', coordinateTransformationMode: 'asymmetric', nearestMode: 'floor' })).toEqual([0, 2]);
    // half_pixel 2 → 4: src = −0.25, 0.25, 0.75, 1.25; round_prefer_floor; ceil.
    expect(idx(2, 4, { mode: 'nearest', coordinateTransformationMode: 'half_pixel' })).toEqual([0, 0, 1, 1]);
    expect(idx(2, 4, { mode: 'nearest', coordinateTransformationMode: 'half_pixel', nearestMode: 'ceil' })).toEqual([0, 1, 1, 1]);
    // A tie: 3 → 2 half_pixel gives src = 0.25, 1.75; 2 → 1 gives 0.5: floor or ceil by the mode.
    expect(idx(2, 1, { mode: 'nearest', coordinateTransformationMode: 'half_pixel' })).toEqual([0]);
    expect(idx(2, 1, { mode: 'nearest', coordinateTransformationMode: 'half_pixel', nearestMode: 'round_prefer_ceil' })).toEqual([1]);
    // pytorch_half_pixel to one output samples index 0, half_pixel samples the centre.
    const one = (ctm: CoordinateTransformationMode) => {
      const t = axisTaps(4, 1, { coordinateTransformationMode: ctm });
      return [t.i0[0], t.i1[0], t.w1[0]];
    };
    expect(one('pytorch_half_pixel')).toEqual([0, 1, 0]);
    expect(one('half_pixel')).toEqual([1, 2, 0.5]);
    expect(one('align_corners')).toEqual([0, 1, 0]);
    // ONNX Runtime's float32 arithmetic: 7 → 8 asymmetric floor puts o = 8·k at 7k… exactly, but
    // round_prefer_ceil resolves the half at o = 4 (3.5) upwards, as onnxruntime-node 1.31 does.
    expect(idx(7, 8, { mode: 'nearest', coordinateTransformationMode: 'asymmetric', nearestMode: 'round_prefer_ceil' })).toEqual([0, 1, 2, 3, 4, 4, 5, 6]);
  });

  it('the gradient by finite differences (linear with given scales, nearest round_prefer_ceil)', async () => {
    const gpu = await getGpu();
    const shape = [1, 2, 3, 4];
    const data = randomArray(product(shape), 52);
    await gradCheck(gpu, ([x]) => ops.resize(x!, [4, 6], { coordinateTransformationMode: 'half_pixel', scales: [1.5, 1.5] }), [{ data, shape }]);
    await gradCheck(gpu, ([x]) => ops.resize(x!, [5, 2], { mode: 'nearest', coordinateTransformationMode: 'pytorch_half_pixel', nearestMode: 'round_prefer_ceil' }), [{ data, shape }]);
  });

  it('rejects mixed or unknown options clearly', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, randomArray(12, 1), [1, 1, 3, 4]);
    await expect(resize(x, [6, 8], { coordinateTransformationMode: 'half_pixel', alignCorners: true })).rejects.toThrow(/either coordinateTransformationMode or alignCorners\/halfPixelCenters/);
    await expect(resize(x, [6, 8], { nearestMode: 'floor' })).rejects.toThrow(/need a coordinateTransformationMode/);
    await expect(resize(x, [6, 8], { coordinateTransformationMode: 'tf_crop_and_resize' as CoordinateTransformationMode })).rejects.toThrow(/must be one of half_pixel, pytorch_half_pixel/);
    await expect(resize(x, [6, 8], { coordinateTransformationMode: 'asymmetric', nearestMode: 'up' as NearestMode })).rejects.toThrow(/nearestMode must be one of/);
    await expect(resize(x, [6, 8], { coordinateTransformationMode: 'asymmetric', scales: [2, 0] })).rejects.toThrow(/scales must be two positive numbers/);
    x.dispose();
  });
});

describe('resize gradients (finite differences)', () => {
  for (const [mode, alignCorners] of MODES) {
    it(`${mode}${alignCorners ? ' align_corners' : ''}`, async () => {
      const gpu = await getGpu();
      const shape = [1, 2, 3, 4];
      const data = randomArray(product(shape), 51);
      await gradCheck(gpu, ([x]) => ops.resize(x!, [5, 3], { mode, alignCorners }), [{ data, shape }]);
    });
  }
});
