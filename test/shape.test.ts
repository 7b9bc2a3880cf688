import { describe, expect, it } from 'vitest';
import { broadcastTo, concat, flatten, reshape, slice, sliceBackward, transpose } from '../src/kernels/shape.js';
import * as ops from '../src/autodiff/ops/shape.js';
import { tensor } from '../src/runtime/tensor.js';
import { ArgumentError, ShapeError } from '../src/runtime/errors.js';
import { expectClose, getGpu, product, randomArray, rng } from './helpers.js';
import { gradCheck } from './gradcheck.js';
import { broadcastToReference, concatReference, sliceReference, transposeReference } from './reference/shape.js';

function shuffle(n: number, seed: number): number[] {
  const r = rng(seed);
  const a = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

describe('shape kernels', () => {
  it('reshape and flatten are views in C, H, W order', async () => {
    const gpu = await getGpu();
    const x = randomArray(2 * 3 * 4 * 5, 1);
    const t = tensor(gpu, x, [2, 3, 4, 5]);
    const before = gpu.memory().inUse;
    const f = flatten(t);
    const r = reshape(t, [6, -1]);
    expect(f.shape).toEqual([2, 60]);
    expect(r.shape).toEqual([6, 20]);
    expect(gpu.memory().inUse).toBe(before);
    expectClose(await f.read(), x, 0, 0);
    f.dispose();
    r.dispose();
    expect(() => reshape(t, [7, -1])).toThrow(ShapeError);
    t.dispose();
  });

  const sliceCases: [number[], number[], number[]][] = [
    [[10], [3], [4]],
    [[10], [9], [-1]],
    [[5, 7], [1, 2], [3, 4]],
    [[5, 7], [2, 0], [2, -1]], // one contiguous block: a buffer copy
    [[2, 3, 4, 5], [1, 1, 0, 2], [1, 2, -1, 3]],
    [[2, 3, 4, 5], [0, 2, 3, 0], [2, 1, 1, -1]],
    [[3, 1, 4, 1, 5, 2], [1, 0, 1, 0, 2, 1], [2, 1, 2, 1, 3, 1]],
  ];
  for (const [shape, begin, size] of sliceCases) {
    it(`slice ${JSON.stringify(shape)} at ${JSON.stringify(begin)} size ${JSON.stringify(size)}`, async () => {
      const gpu = await getGpu();
      const x = randomArray(product(shape), 2);
      const t = tensor(gpu, x, shape);
      const out = await slice(t, begin, size);
      expect(out.shape).toEqual(size.map((s, i) => (s === -1 ? shape[i]! - begin[i]! : s)));
      expectClose(await out.read(), sliceReference(x, shape, begin, size), 0, 0);
      // sliceBackward puts it back in place, zeros elsewhere.
      const back = await sliceBackward(out, shape, begin);
      const expected = new Float32Array(x.length);
      const marker = sliceReference(Float64Array.from(x.keys()), shape, begin, size);
      marker.forEach((i) => (expected[i] = x[i]!));
      expectClose(await back.read(), expected, 0, 0);
      out.dispose();
      back.dispose();
      t.dispose();
    });
  }

  for (let rank = 2; rank <= 6; rank++) {
    it(`transpose rank ${rank}`, async () => {
      const gpu = await getGpu();
      const shape = [2, 3, 4, 2, 3, 2].slice(0, rank);
      const x = randomArray(product(shape), 3 + rank);
      const t = tensor(gpu, x, shape);
      const perms = [shuffle(rank, rank), [...Array(rank).keys()].reverse(), [...Array(rank).keys()]];
      for (const perm of perms) {
        const out = await transpose(t, perm);
        const ref = transposeReference(x, shape, perm);
        expect(out.shape).toEqual(ref.shape);
        expectClose(await out.read(), ref.data, 0, 0);
        out.dispose();
      }
      t.dispose();
    });
  }

  it('transpose of a larger NHWC weight to OIHW-like order', async () => {
    const gpu = await getGpu();
    const shape = [3, 3, 64, 65];
    const x = randomArray(product(shape), 9);
    const out = await transpose(tensor(gpu, x, shape), [3, 2, 0, 1]);
    expectClose(await out.read(), transposeReference(x, shape, [3, 2, 0, 1]).data, 0, 0);
  });

  for (let axis = -1; axis < 4; axis++) {
    it(`concat of three rank-4 tensors along axis ${axis}`, async () => {
      const gpu = await getGpu();
      const ax = axis < 0 ? axis + 4 : axis;
      const base = [2, 3, 4, 5];
      const parts = [2, 1, 3].map((n, k) => {
        const shape = [...base];
        shape[ax] = n;
        return { data: randomArray(product(shape), 10 + k), shape };
      });
      const ts = parts.map((p) => tensor(gpu, p.data, p.shape));
      const out = await concat(ts, axis);
      const ref = concatReference(parts, ax);
      expect(out.shape).toEqual(ref.shape);
      expectClose(await out.read(), ref.data, 0, 0);
      out.dispose();
      ts.forEach((t) => t.dispose());
    });
  }

  it('broadcastTo', async () => {
    const gpu = await getGpu();
    for (const [from, to] of [
      [[3, 1, 1], [2, 3, 4, 5]],
      [[5], [2, 3, 5]],
      [[1], [7]],
      [[2, 1, 4], [2, 3, 4]],
    ] as [number[], number[]][]) {
      const x = randomArray(product(from), 12);
      const out = await broadcastTo(tensor(gpu, x, from), to);
      expect(out.shape).toEqual(to);
      expectClose(await out.read(), broadcastToReference(x, from, to), 0, 0);
    }
  });

  it('copies int32 tensors bit-exactly', async () => {
    const gpu = await getGpu();
    const data = Int32Array.from([-1, 2147483647, -2147483648, 5, 0, -7]);
    const t = tensor(gpu, data, [2, 3], 'int32');
    const tr = await transpose(t, [1, 0]);
    expect(tr.dtype).toBe('int32');
    expect(Array.from(await tr.readInt32())).toEqual([-1, 5, 2147483647, 0, -2147483648, -7]);
    const c = await concat([t, t], 1);
    expect(Array.from(await c.readInt32())).toEqual([-1, 2147483647, -2147483648, -1, 2147483647, -2147483648, 5, 0, -7, 5, 0, -7]);
  });

  it('rejects bad arguments with clear errors and no leaked buffers', async () => {
    const gpu = await getGpu();
    const a = tensor(gpu, new Float32Array(24), [2, 3, 4]);
    const b = tensor(gpu, new Float32Array(30), [2, 3, 5]);
    const i = tensor(gpu, new Int32Array(24), [2, 3, 4], 'int32');
    const before = gpu.memory().inUse;
    await expect(concat([a, b], 1)).rejects.toThrow(/tensor 1 \[2, 3, 5\] does not match tensor 0 \[2, 3, 4\] outside axis 1/);
    const ok = await concat([a, b], 2);
    expect(ok.shape).toEqual([2, 3, 9]);
    ok.dispose();
    await expect(concat([a, i], 0)).rejects.toThrow(/int32/);
    await expect(concat([], 0)).rejects.toThrow(ArgumentError);
    await expect(concat([a], 3)).rejects.toThrow(/axis 3 is out of range/);
    await expect(slice(a, [0, 0, 4], [1, 1, 1])).rejects.toThrow(/dimension 2 of \[2, 3, 4\]: begin 4/);
    await expect(slice(a, [0, 2, 0], [1, 2, 1])).rejects.toThrow(ShapeError);
    await expect(slice(a, [0, 0], [1, 1])).rejects.toThrow(/one entry per dimension/);
    await expect(slice(a, [-1, 0, 0], [1, 1, 1])).rejects.toThrow(ShapeError);
    await expect(slice(a, [0, 0, 0], [0, 1, 1])).rejects.toThrow(ShapeError);
    await expect(transpose(a, [0, 1])).rejects.toThrow(/not a permutation of the 3 axes/);
    await expect(transpose(a, [0, 1, 1])).rejects.toThrow(ArgumentError);
    await expect(transpose(a, [0, 1, 3])).rejects.toThrow(ArgumentError);
    await expect(broadcastTo(a, [3, 3, 4])).rejects.toThrow(ShapeError);
    await expect(broadcastTo(a, [3, 4])).rejects.toThrow(ShapeError);
    await expect(sliceBackward(a, [2, 3, 3], [0, 0, 0])).rejects.toThrow(ShapeError);
    expect(gpu.memory().inUse).toBe(before);
  });
});

describe('shape op gradients', () => {
  it('reshape and flatten', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, async ([x]) => ops.reshape(x!, [4, 6]), [{ data: randomArray(24, 1), shape: [2, 3, 4] }]);
    await gradCheck(gpu, async ([x]) => ops.flatten(x!), [{ data: randomArray(24, 2), shape: [2, 3, 2, 2] }]);
  });

  it('concat', async () => {
    const gpu = await getGpu();
    await gradCheck(
      gpu,
      ([a, b, c]) => ops.concat([a!, b!, c!], 1),
      [
        { data: randomArray(8, 3), shape: [2, 2, 2] },
        { data: randomArray(4, 4), shape: [2, 1, 2] },
        { data: randomArray(12, 5), shape: [2, 3, 2], check: false },
      ],
    );
  });

  it('slice', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([x]) => ops.slice(x!, [1, 0, 1], [1, -1, 2]), [{ data: randomArray(24, 6), shape: [2, 3, 4] }]);
  });

  it('transpose', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([x]) => ops.transpose(x!, [2, 0, 1]), [{ data: randomArray(24, 7), shape: [2, 3, 4] }]);
  });

  it('broadcastTo', async () => {
    const gpu = await getGpu();
    await gradCheck(gpu, ([x]) => ops.broadcastTo(x!, [2, 3, 4]), [{ data: randomArray(3, 8), shape: [3, 1] }]);
  });

  it('a tensor used twice (slice + transpose chain) accumulates', async () => {
    const gpu = await getGpu();
    await gradCheck(
      gpu,
      async ([x]) => {
        const s = await ops.slice(x!, [0, 0], [2, 3]);
        const t = await ops.transpose(x!, [1, 0]);
        const t2 = await ops.slice(t, [0, 0], [2, 3]);
        return ops.concat([s, t2], 0);
      },
      [{ data: randomArray(9, 9), shape: [3, 3] }],
    );
  });
});
