import { describe, expect, it } from 'vitest';
import { add, broadcastShapes, clamp, fill, maximum, minimum, mul, scale, sub, div } from '../src/kernels/elementwise.js';
import { tensor } from '../src/runtime/tensor.js';
import { ShapeError } from '../src/runtime/errors.js';
import { expectClose, getGpu, product, randomArray } from './helpers.js';
import { broadcastBinaryReference } from './reference/elementwise.js';

describe('elementwise kernels', () => {
  const cases: [number[], number[]][] = [
    [[2, 3, 5, 7], [2, 3, 5, 7]],
    [[2, 3, 5, 7], [1, 3, 1, 1]], // per-channel bias
    [[2, 3, 5, 7], [2, 1, 1, 1]], // per-batch scale
    [[3, 1, 5], [4, 1]],
    [[7], [1]],
    [[1, 2, 1, 3, 1, 2], [2, 1, 4, 1, 5, 1]], // rank 6 both ways
  ];
  for (const [sa, sb] of cases) {
    it(`add/sub/mul/div/maximum/minimum broadcast ${JSON.stringify(sa)} with ${JSON.stringify(sb)}`, async () => {
      const gpu = await getGpu();
      const a = randomArray(product(sa), 1);
      const b = randomArray(product(sb), 2, 0.5, 2);
      const ta = tensor(gpu, a, sa);
      const tb = tensor(gpu, b, sb);
      for (const [fn, f] of [
        [add, (x: number, y: number) => x + y],
        [sub, (x: number, y: number) => x - y],
        [mul, (x: number, y: number) => x * y],
        [div, (x: number, y: number) => x / y],
        // a is in [-1, 1) and b in [0.5, 2): each side wins somewhere.
        [maximum, Math.max],
        [minimum, Math.min],
      ] as const) {
        const out = await fn(ta, tb);
        const ref = broadcastBinaryReference(a, sa, b, sb, f);
        expect(out.shape).toEqual(ref.shape);
        expectClose(await out.read(), ref.data);
        out.dispose();
      }
      ta.dispose();
      tb.dispose();
    });
  }

  it('rejects shapes that do not broadcast', async () => {
    const gpu = await getGpu();
    expect(() => broadcastShapes([2, 3], [4, 3])).toThrow(ShapeError);
    const a = tensor(gpu, new Float32Array(6), [2, 3]);
    const b = tensor(gpu, new Float32Array(12), [4, 3]);
    const before = gpu.memory().inUse;
    await expect(add(a, b)).rejects.toThrow(/\[2, 3\] and \[4, 3\] cannot be broadcast/);
    expect(gpu.memory().inUse).toBe(before);
    a.dispose();
    b.dispose();
  });

  it('scale, clamp and fill', async () => {
    const gpu = await getGpu();
    const x = randomArray(1000, 3, -5, 5);
    const t = tensor(gpu, x, [10, 100]);
    expectClose(await (await scale(t, 2.5, -1)).read(), x.map((v) => 2.5 * v - 1));
    expectClose(await (await clamp(t, -1, 2)).read(), x.map((v) => Math.min(Math.max(v, -1), 2)));
    expectClose(await (await fill(gpu, [3, 4], 7)).read(), new Float32Array(12).fill(7));
    await expect(scale(t, NaN)).rejects.toThrow(/finite/);
  });

  it('handles more elements than one grid dimension holds (2-D folded dispatch)', async () => {
    const gpu = await getGpu();
    const n = 65535 * 256 + 1000;
    const t = await fill(gpu, [n], 1.5);
    const u = await scale(t, 2, 0);
    const out = await u.read();
    expect(out[0]).toBe(3);
    expect(out[n - 1]).toBe(3);
    expect(out[65535 * 256 + 7]).toBe(3);
  });
});
