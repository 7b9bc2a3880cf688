/** Shared test helpers: one GPU per test file, a seeded RNG, and numeric comparisons. */
import { afterAll, expect } from 'vitest';
import { initGpu, type Gpu } from '../src/runtime/gpu.js';

let shared: Promise<Gpu> | null = null;

/** The test file's GPU (lavapipe on CI). Destroyed after the file's tests. */
export function getGpu(): Promise<Gpu> {
  if (!shared) {
    shared = initGpu();
    afterAll(async () => {
      const gpu = await shared!;
      gpu.destroy();
      shared = null;
    });
  }
  return shared;
}

/** Mulberry32: a small seeded generator, so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform values in [lo, hi). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Asserts |a - b| ≤ atol + rtol·|b| elementwise, reporting the worst index. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const err = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(err <= 0) && (worst < 0 || err > worstErr || Number.isNaN(a))) {
      worst = i;
      worstErr = Number.isNaN(a) ? Infinity : err;
    }
  }
  if (worst >= 0) {
    expect.fail(`mismatch at index ${worst}: got ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
