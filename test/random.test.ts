import { describe, expect, it } from 'vitest';
import { randomNormal, randomUniform } from '../src/kernels/random.js';
import { expectClose, getGpu } from './helpers.js';
import { normalReference, uniformReference } from './reference/random.js';

describe('random kernels', () => {
  it('match the TypeScript reference stream exactly (up to float rounding)', async () => {
    const gpu = await getGpu();
    expectClose(await (await randomUniform(gpu, [1000], { seed: 42 })).read(), uniformReference(1000, 42), 1e-7, 0);
    expectClose(await (await randomNormal(gpu, [1000], { seed: 42 })).read(), normalReference(1000, 42), 1e-5, 1e-5);
  });

  it('are reproducible by seed, differ across seeds, and join up across offsets', async () => {
    const gpu = await getGpu();
    const a = await (await randomNormal(gpu, [3, 100], { seed: 7 })).read();
    const b = await (await randomNormal(gpu, [3, 100], { seed: 7 })).read();
    const c = await (await randomNormal(gpu, [3, 100], { seed: 8 })).read();
    const tail = await (await randomNormal(gpu, [100], { seed: 7, offset: 200 })).read();
    expect([...a]).toEqual([...b]);
    expect([...a]).not.toEqual([...c]);
    expect([...tail]).toEqual([...a.subarray(200)]);
  });

  it('have the requested moments', async () => {
    const gpu = await getGpu();
    const n = 200_000;
    const v = await (await randomNormal(gpu, [n], { seed: 1, mean: 2, std: 3 })).read();
    const mean = v.reduce((s, x) => s + x, 0) / n;
    const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / n);
    expect(mean).toBeCloseTo(2, 1);
    expect(sd).toBeCloseTo(3, 1);
    const u = await (await randomUniform(gpu, [n], { seed: 2, lo: -1, hi: 1 })).read();
    expect(u.every((x) => x >= -1 && x < 1)).toBe(true);
    expect(u.reduce((s, x) => s + x, 0) / n).toBeCloseTo(0, 2);
  });

  it('reject bad seeds and offsets', async () => {
    const gpu = await getGpu();
    await expect(randomNormal(gpu, [4], { seed: 1.5 })).rejects.toThrow(/integers/);
    await expect(randomNormal(gpu, [4], { seed: NaN })).rejects.toThrow(/finite/);
  });
});
