import { describe, expect, it } from 'vitest';
import { max, maxWithIndices, maxBackward, mean, sum, sumToShape, type Axes } from '../src/kernels/reduce.js';
import { logSoftmax, logSoftmaxBackward, softmax, softmaxBackward } from '../src/kernels/softmax.js';
import * as ops from '../src/autodiff/ops/reduce.js';
import { fill } from '../src/kernels/elementwise.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { ArgumentError, ShapeError } from '../src/runtime/errors.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import { gradCheck } from './gradcheck.js';
import { reduceReference, softmaxBackwardReference, softmaxReference } from './reference/reduce.js';

type Kind = 'sum' | 'mean' | 'max';
const KERNELS: Record<Kind, (x: Tensor, axes: Axes, keepDims: boolean) => Promise<Tensor>> = { sum, mean, max };

function normalize(axes: Axes, rank: number): number[] {
  return axes === 'all' ? [...Array(rank).keys()] : axes.map((a) => (a < 0 ? a + rank : a));
}

describe('reduction kernels', () => {
  const cases: [number[], Axes][] = [
    [[7], 'all'],
    [[3, 5], [1]],
    [[3, 5], [0]],
    [[2, 3, 4, 5], [0, 2]], // non-contiguous axes
    [[2, 3, 4, 5], [-1]],
    [[2, 3, 4, 5], [1, 3]],
    [[2, 3, 4, 5], [0, 2, 3]], // per-channel
    [[2, 3, 4, 5], 'all'],
    [[2, 3, 4, 5], []], // nothing reduced: a copy
    [[2, 1, 3, 4, 5], [0, 2, -1]],
    [[2, 3, 2, 3, 2, 3], [1, 3, 5]],
    [[2, 3, 2, 3, 2, 3], [0, 1, 2]],
    [[5, 70], [1]], // long enough for the workgroup path
    [[9, 40, 33], [0, 2]],
  ];
  for (const [shape, axes] of cases) {
    for (const keepDims of [false, true]) {
      it(`sum/mean/max of ${JSON.stringify(shape)} over ${JSON.stringify(axes)}${keepDims ? ', keepDims' : ''}`, async () => {
        const gpu = await getGpu();
        const x = randomArray(product(shape), 7 + shape.length);
        const t = tensor(gpu, x, shape);
        for (const kind of ['sum', 'mean', 'max'] as const) {
          const out = await KERNELS[kind](t, axes, keepDims);
          const ref = reduceReference(x, shape, normalize(axes, shape.length), keepDims, kind);
          expect(out.shape).toEqual(ref.shape);
          expectClose(await out.read(), ref.data, 1e-5, 1e-4);
          out.dispose();
        }
        const { values, indices } = await maxWithIndices(t, axes, keepDims);
        const ref = reduceReference(x, shape, normalize(axes, shape.length), keepDims, 'max');
        expect(indices.shape).toEqual(ref.shape);
        expect(Array.from(await indices.readInt32())).toEqual(Array.from(ref.indices));
        expectClose(await values.read(), ref.data, 0, 0);
        values.dispose();
        indices.dispose();
        t.dispose();
      });
    }
  }

  it('reduces 100,003 values (chunked into partials, both paths)', async () => {
    const gpu = await getGpu();
    const n = 100_003;
    const x = randomArray(n, 3);
    x[77_777] = 5; // the max, far from the start
    const t = tensor(gpu, x, [n]);
    for (const kind of ['sum', 'mean', 'max'] as const) {
      const out = await KERNELS[kind](t, 'all', false);
      expect(out.shape).toEqual([]);
      // float32 partial sums of 100,003 values in [-1, 1): the sum is off by ~1e-4 at most; the mean
      // (about 1e-3 here) by 1e-9.
      expectClose(await out.read(), reduceReference(x, [n], [0], false, kind).data, kind === 'mean' ? 1e-8 : 1e-3, 1e-5);
    }
    const { indices } = await maxWithIndices(t, 'all');
    expect((await indices.readInt32())[0]).toBe(77_777);

    // [3, n] along the contiguous axis (workgroup path) and [n, 3] along the outer axis (thread path).
    const x2 = randomArray(3 * n, 4);
    for (const [shape, axes] of [
      [[3, n], [1]],
      [[n, 3], [0]],
    ] as const) {
      const t2 = tensor(gpu, x2, shape);
      for (const kind of ['sum', 'max'] as const) {
        const out = await KERNELS[kind](t2, [...axes], false);
        expectClose(await out.read(), reduceReference(x2, shape, [...axes], false, kind).data, 1e-3, 1e-4);
      }
      const mi = await maxWithIndices(t2, [...axes]);
      expect(Array.from(await mi.indices.readInt32())).toEqual(Array.from(reduceReference(x2, shape, [...axes], false, 'max').indices));
    }
  });

  it('argmax ties go to the first maximal element, also across chunks', async () => {
    const gpu = await getGpu();
    const small = new Float32Array([1, 3, 3, 0, 2, 2, 2, 2, 5, 1, 5, 5]);
    const r1 = await maxWithIndices(tensor(gpu, small, [3, 4]), [1]);
    expect(Array.from(await r1.indices.readInt32())).toEqual([1, 0, 0]);
    const r0 = await maxWithIndices(tensor(gpu, small, [3, 4]), [0]);
    expect(Array.from(await r0.indices.readInt32())).toEqual([2, 0, 2, 2]);
    for (const n of [100_003, 3_000]) {
      const ones = await fill(gpu, [n], 1);
      expect((await (await maxWithIndices(ones, 'all')).indices.readInt32())[0]).toBe(0);
      const x = new Float32Array(n);
      x[n - 7] = 2;
      x[Math.floor(n / 2)] = 2;
      x[n - 1] = 2;
      const r = await maxWithIndices(tensor(gpu, x, [n]), [0]);
      expect((await r.indices.readInt32())[0]).toBe(Math.floor(n / 2));
    }
    // [2, n] along axis 0 with ties everywhere: index 0 for every column.
    const cols = await maxWithIndices(await fill(gpu, [2, 50_000], 1), [0]);
    expect((await cols.indices.readInt32()).every((v) => v === 0)).toBe(true);
  });

  it('max of -Infinity values and large negative values', async () => {
    const gpu = await getGpu();
    const x = new Float32Array([-Infinity, -Infinity, -3e38, -Infinity]);
    expect(Array.from(await (await max(tensor(gpu, x, [2, 2]), [1])).read())).toEqual([-Infinity, Math.fround(-3e38)]);
    const r = await maxWithIndices(tensor(gpu, x, [2, 2]), [1]);
    expect(Array.from(await r.indices.readInt32())).toEqual([0, 0]);
  });

  it('per-channel sum of a [50, 3, 224, 224] batch is exact (time printed)', async () => {
    const gpu = await getGpu();
    const x = await fill(gpu, [50, 3, 224, 224], 1);
    await gpu.sync();
    const t0 = performance.now();
    const s = await sum(x, [0, 2, 3]);
    const m = await mean(x, [0, 2, 3], true);
    const values = await s.read();
    const ms = performance.now() - t0;
    expect(Array.from(values)).toEqual([50 * 224 * 224, 50 * 224 * 224, 50 * 224 * 224]);
    expect(m.shape).toEqual([1, 3, 1, 1]);
    expectClose(await m.read(), [1, 1, 1], 1e-6, 0);
    console.log(`per-channel sum + mean of 7.5M values on ${gpu.adapter.name}: ${ms.toFixed(0)} ms`);
    x.dispose();
    s.dispose();
    m.dispose();
  });

  it('sumToShape undoes broadcasting', async () => {
    const gpu = await getGpu();
    const shape = [2, 3, 4, 5];
    const g = randomArray(product(shape), 5);
    const t = tensor(gpu, g, shape);
    for (const [to, axes] of [
      [[1, 3, 1, 1], [0, 2, 3]],
      [[5], [0, 1, 2]],
      [[3, 1, 1], [0, 2, 3]],
      [[4, 1], [0, 1, 3]],
      [[1, 1, 1, 1, 1], [0, 1, 2, 3]],
    ] as [number[], number[]][]) {
      const out = await sumToShape(t, to);
      expect(out.shape).toEqual(to);
      expectClose(await out.read(), reduceReference(g, shape, axes, true, 'sum').data, 1e-5, 1e-4);
      out.dispose();
    }
    const before = gpu.memory().inUse;
    const same = await sumToShape(t, shape);
    expect(gpu.memory().inUse).toBe(before); // a view: no new buffer
    expect(same.buffer).toBe(t.buffer);
    same.dispose();
    await expect(sumToShape(t, [4])).rejects.toThrow(ShapeError);
    await expect(sumToShape(t, [2, 2, 3, 4, 5])).rejects.toThrow(/does not broadcast/);
    expect(gpu.memory().inUse).toBe(before);
    t.dispose();
  });

  it('maxBackward routes dy to the argmax', async () => {
    const gpu = await getGpu();
    const x = new Float32Array([1, 9, 3, 4, 8, 6, 7, 2, 5, 0, 11, 10]);
    const t = tensor(gpu, x, [2, 3, 2]);
    const { values, indices } = await maxWithIndices(t, [0, 2]);
    expect(Array.from(await values.read())).toEqual([9, 5, 11]);
    const dy = tensor(gpu, [10, 20, 30], [3]);
    const dx = await maxBackward(dy, indices, [2, 3, 2], [0, 2]);
    expect(Array.from(await dx.read())).toEqual([0, 10, 0, 0, 0, 0, 0, 0, 20, 0, 30, 0]);
  });

  it('rejects bad axes with clear errors and no leaked buffers', async () => {
    const gpu = await getGpu();
    const t = tensor(gpu, new Float32Array(6), [2, 3]);
    const before = gpu.memory().inUse;
    await expect(sum(t, [2])).rejects.toThrow(/axis 2 is out of range for a tensor of rank 2/);
    await expect(mean(t, [-3])).rejects.toThrow(ShapeError);
    await expect(max(t, [0, 0])).rejects.toThrow(ArgumentError);
    await expect(max(t, [-1, 1])).rejects.toThrow(/given twice/);
    await expect(sum(t, [0.5])).rejects.toThrow(ShapeError);
    await expect(softmax(t, 2)).rejects.toThrow(/axis 2 is out of range/);
    await expect(logSoftmax(t, -3)).rejects.toThrow(ShapeError);
    await expect(softmaxBackward(t, tensor(gpu, new Float32Array(3), [3]), -1)).rejects.toThrow(/same shape/);
    expect(gpu.memory().inUse).toBe(before + 1); // only the y tensor created in the line above
  });
});

describe('softmax kernels', () => {
  const cases: [number[], number][] = [
    [[4, 10], -1],
    [[4, 10], 0],
    [[3, 1000], 1], // workgroup per row
    [[2, 5, 3, 4], 1], // channels of NCHW (rows interleaved, thread per row)
    [[2, 300, 5], 1], // long rows with a stride
    [[7], 0],
    [[40, 40, 2], 1],
  ];
  for (const [shape, axis] of cases) {
    it(`softmax/logSoftmax and backward of ${JSON.stringify(shape)} along ${axis}`, async () => {
      const gpu = await getGpu();
      const ax = axis < 0 ? axis + shape.length : axis;
      const x = randomArray(product(shape), 20, -4, 4);
      const dy = randomArray(product(shape), 21);
      const t = tensor(gpu, x, shape);
      const tdy = tensor(gpu, dy, shape);
      for (const log of [false, true]) {
        const y = await (log ? logSoftmax : softmax)(t, axis);
        const yRef = softmaxReference(x, shape, ax, log);
        const yv = await y.read();
        expectClose(yv, yRef, 1e-6, 1e-4);
        const dx = await (log ? logSoftmaxBackward : softmaxBackward)(tdy, y, axis);
        expectClose(await dx.read(), softmaxBackwardReference(dy, yv, shape, ax, log), 1e-5, 1e-3);
        y.dispose();
        dx.dispose();
      }
      t.dispose();
      tdy.dispose();
    });
  }

  it('stays finite for logits of ±1000', async () => {
    const gpu = await getGpu();
    const x = new Float32Array([1000, 999, -1000, 0, 1000, 1000, -1000, -1000, -1000]);
    const t = tensor(gpu, x, [3, 3]);
    const y = await (await softmax(t)).read();
    const l = await (await logSoftmax(t)).read();
    expect(y.every(Number.isFinite)).toBe(true);
    expect(l.every(Number.isFinite)).toBe(true);
    expectClose(y, softmaxReference(x, [3, 3], 1), 1e-6, 1e-4);
    expectClose(l, softmaxReference(x, [3, 3], 1, true), 1e-4, 1e-5);
    const big = randomArray(2000, 5, -1000, 1000);
    const yb = await (await softmax(tensor(gpu, big, [2, 1000]))).read();
    expect(yb.every(Number.isFinite)).toBe(true);
    expectClose(yb, softmaxReference(big, [2, 1000], 1), 1e-6, 1e-4);
  });
});

describe('reduction and softmax gradients', () => {
  const x24 = (seed: number) => ({ data: randomArray(24, seed), shape: [2, 3, 4] });

  it('sum over axes', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([x]) => ops.sum(x!, [0, 2]), [x24(1)]);
    await gradCheck(gpu, ([x]) => ops.sum(x!, [-1], true), [x24(2)]);
    await gradCheck(gpu, ([x]) => ops.sum(x!, 'all'), [x24(3)]);
  });

  it('mean over axes', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([x]) => ops.mean(x!, [1]), [x24(4)]);
    await gradCheck(gpu, ([x]) => ops.mean(x!, [0, 2], true), [x24(5)]);
  });

  it('max (distinct values) sends the gradient to the argmax', async () => {
    const gpu = await getGpu();
    // A shuffled ramp: values 0.1 apart, so ±eps never changes which element is the max.
    const n = 24;
    const order = Array.from(randomArray(n, 6)).map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
    const data = new Float32Array(n);
    order.forEach(([, i], k) => (data[i] = k * 0.1));
    await gradCheck(gpu, ([x]) => ops.max(x!, [1]), [{ data, shape: [2, 3, 4] }]);
    await gradCheck(gpu, ([x]) => ops.max(x!, [0, 2], true), [{ data, shape: [2, 3, 4] }]);
    await gradCheck(gpu, ([x]) => ops.max(x!, 'all'), [{ data, shape: [2, 3, 4] }]);
  });

  it('softmax and logSoftmax', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([x]) => ops.softmax(x!), [{ data: randomArray(12, 7, -2, 2), shape: [3, 4] }]);
    await gradCheck(gpu, ([x]) => ops.softmax(x!, 1), [x24(8)]);
    await gradCheck(gpu, ([x]) => ops.logSoftmax(x!), [{ data: randomArray(12, 9, -2, 2), shape: [3, 4] }]);
    await gradCheck(gpu, ([x]) => ops.logSoftmax(x!, 0), [x24(10)]);
  });
});
