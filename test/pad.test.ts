import { describe, expect, it } from 'vitest';
import { pad as padKernel, padBackward, padOutputShape, type PadMode } from '../src/kernels/pad.js';
import { pad } from '../src/autodiff/ops/pad.js';
import { ArgumentError, ShapeError } from '../src/runtime/errors.js';
import { tensor } from '../src/runtime/tensor.js';
import { gradCheck } from './gradcheck.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import { padBackwardReference, padReference } from './reference/pad.js';

const CASES: [string, number[], number[]][] = [
  ['NCHW, H and W', [2, 3, 4, 5], [0, 0, 1, 2, 0, 0, 2, 1]],
  ['NCHW, all four dims', [2, 2, 3, 3], [1, 1, 2, 0, 0, 1, 1, 2]],
  ['crop on one side, pad on the other', [1, 2, 5, 6], [0, 0, -1, 2, 0, 0, 1, -2]],
  ['crop only', [2, 2, 4, 4], [0, 0, -1, -1, 0, 0, -2, 0]],
  ['rank 1', [7], [3, 2]],
  ['rank 6', [2, 2, 2, 2, 3, 2], [0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1]],
];

describe('pad kernel', () => {
  for (const mode of ['constant', 'reflect', 'edge'] as PadMode[]) {
    for (const [name, shape, pads] of CASES) {
      it(`${mode}: ${name} ${JSON.stringify(shape)} pads ${JSON.stringify(pads)}, forward and gradient against the references`, async () => {
        const gpu = await getGpu();
        const before = gpu.memory().inUse;
        const data = randomArray(product(shape), 3);
        const ref = padReference(data, shape, pads, mode, 0.75);
        expect(padOutputShape(shape, pads, mode)).toEqual(ref.shape);
        const x = tensor(gpu, data, shape);
        const y = await padKernel(x, pads, { mode, value: 0.75 });
        expect(y.shape).toEqual(ref.shape);
        expectClose(await y.read(), ref.data, 0, 0);
        const g = randomArray(y.size, 4);
        const dy = tensor(gpu, g, y.shape);
        const dx = await padBackward(dy, shape, pads, { mode });
        expectClose(await dx.read(), padBackwardReference(g, shape, pads, mode), 1e-6, 1e-6);
        for (const t of [x, y, dy, dx]) t.dispose();
        expect(gpu.memory().inUse).toBe(before);
      });
    }
  }

  it('hand-computed rows: [1, 2, 3] padded by 2 and 2', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, [1, 2, 3], [3]);
    const expected: Record<PadMode, number[]> = {
      constant: [9, 9, 1, 2, 3, 9, 9],
      reflect: [3, 2, 1, 2, 3, 2, 1],
      edge: [1, 1, 1, 2, 3, 3, 3],
    };
    for (const mode of ['constant', 'reflect', 'edge'] as PadMode[]) {
      const y = await padKernel(x, [2, 2], { mode, value: 9 });
      expect(Array.from(await y.read())).toEqual(expected[mode]);
      // The gradient of Σ y is how often each input is read.
      const ones = tensor(gpu, [1, 1, 1, 1, 1, 1, 1], [7]);
      const dx = await padBackward(ones, [3], [2, 2], { mode });
      expect(Array.from(await dx.read())).toEqual({ constant: [1, 1, 1], reflect: [2, 3, 2], edge: [3, 1, 3] }[mode]);
      for (const t of [y, ones, dx]) t.dispose();
    }
    x.dispose();
  });

  it('large edge pads: the corner element gathers the whole corner block', async () => {
    const gpu = await getGpu();
    const shape = [1, 1, 2, 3];
    const pads = [0, 0, 5, 4, 0, 0, 3, 6];
    const data = randomArray(6, 5);
    const x = tensor(gpu, data, shape);
    const y = await padKernel(x, pads, { mode: 'edge' });
    const g = randomArray(y.size, 6);
    const dy = tensor(gpu, g, y.shape);
    const dx = await padBackward(dy, shape, pads, { mode: 'edge' });
    expectClose(await dx.read(), padBackwardReference(g, shape, pads, 'edge'), 1e-5, 1e-5);
    for (const t of [x, y, dy, dx]) t.dispose();
  });

  it('rejects bad pads with clear errors', async () => {
    expect(() => padOutputShape([1, 2], [1, 1])).toThrow(/pads must be 4 integers for \[1, 2\]/);
    expect(() => padOutputShape([1, 2], [0, 0, 0, 1.5])).toThrow(ArgumentError);
    expect(() => padOutputShape([1, 3], [0, 3, 0, 0], 'reflect')).toThrow(/reflect padding of dimension 1 \(size 3\) must be at most 2/);
    expect(() => padOutputShape([1, 3], [0, -2, 0, -1])).toThrow(ShapeError);
    expect(() => padOutputShape([1, 3], [0, -3, 0, 2])).toThrow(/cropped by -3 and 2 would be empty/);
    // ONNX Runtime crops first: [1, 2, 3] cropped to [1, 2] cannot be reflected by 2.
    expect(() => padOutputShape([1, 3], [0, 2, 0, -1], 'reflect')).toThrow(/size 2 after cropping\) must be at most 1/);
    expect(() => padOutputShape([1, 3], [0, 0, 0, 0], 'wrap' as PadMode)).toThrow(/mode must be one of constant, reflect, edge/);
    const gpu = await getGpu();
    const x = tensor(gpu, [1, 2, 3], [3]);
    await expect(padKernel(x, [1, 1], { value: NaN })).rejects.toThrow(/value must be a finite number/);
    x.dispose();
  });
});

describe('pad op', () => {
  for (const mode of ['constant', 'reflect', 'edge'] as PadMode[]) {
    it(`${mode}: gradient by finite differences, with a crop`, async () => {
      const gpu = await getGpu();
      await gradCheck(gpu, ([x]) => pad(x!, [0, 0, 2, -1, 0, 0, 1, 2], { mode, value: -0.5 }), [{ data: randomArray(24, 7), shape: [1, 2, 3, 4] }]);
    });
  }
});
