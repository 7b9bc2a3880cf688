/**
 * The metrics' statistics against plain references (test/reference/stats.ts), published values, and
 * numbers from SciPy and scikit-image (test/fixtures/metrics-reference.json, made by
 * scripts/metrics-reference.py).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { averageRanks, curveAuc, meanAndStd, spearman, ssim } from '../src/saliency/metrics/stats.js';
import { randomMap, rankPixels } from '../src/saliency/metrics/common.js';
import { randomArray } from './helpers.js';
import { countedRanks, spearmanReference, ssimReference } from './reference/stats.js';

interface Case {
  kind: 'ssim' | 'spearman';
  name: string;
  a: number[];
  b: number[];
  height?: number;
  width?: number;
  value: number | null;
}
const reference = JSON.parse(readFileSync(new URL('./fixtures/metrics-reference.json', import.meta.url), 'utf8')) as { cases: Case[] };

describe('Spearman', () => {
  it("matches the textbook example (IQ and hours of TV: ρ = −29/165)", () => {
    const iq = [106, 100, 86, 101, 99, 103, 97, 113, 112, 110];
    const tv = [7, 27, 2, 50, 28, 29, 20, 12, 6, 17];
    expect(spearman(iq, tv)).toBeCloseTo(-29 / 165, 12);
  });

  it('gives average ranks to ties, like the counting reference, and ±1 for monotone data', () => {
    const v = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];
    expect([...averageRanks(v)]).toEqual(countedRanks(v));
    expect(spearman([1, 2, 3, 4], [10, 20, 30, 1000])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    for (let seed = 1; seed <= 5; seed++) {
      // Rounded values: many ties.
      const a = randomArray(200, seed).map((x) => Math.round(x * 5));
      const b = randomArray(200, seed + 100).map((x, i) => Math.round(x * 3 + a[i]!));
      expect(spearman(a, b)).toBeCloseTo(spearmanReference(a, b), 10);
    }
  });

  it('matches scipy.stats.spearmanr; a constant side gives 0 here where SciPy gives NaN', () => {
    for (const c of reference.cases.filter((k) => k.kind === 'spearman')) {
      if (c.value === null) {
        expect(Number.isNaN(spearmanReference(c.a, c.b)), c.name).toBe(true);
        expect(spearman(c.a, c.b), c.name).toBe(0);
      } else expect(spearman(c.a, c.b), c.name).toBeCloseTo(c.value, 10);
    }
  });
});

describe('SSIM', () => {
  it("matches scikit-image's structural_similarity (data_range 1, its defaults)", () => {
    const cases = reference.cases.filter((k) => k.kind === 'ssim');
    expect(cases.length).toBeGreaterThanOrEqual(5);
    for (const c of cases) {
      expect(ssim(c.a, c.b, c.height!, c.width!), c.name).toBeCloseTo(c.value!, 10);
      expect(ssimReference(c.a, c.b, c.height!, c.width!), c.name).toBeCloseTo(c.value!, 10);
    }
  });

  it('agrees with the filter-and-crop reference on random maps, and is 1 for identical maps', () => {
    for (const [h, w, seed] of [[9, 9, 1], [28, 28, 2], [11, 30, 3]] as const) {
      const a = randomArray(h * w, seed, 0, 1);
      const b = randomArray(h * w, seed + 50, 0, 1).map((v, i) => 0.5 * v + 0.5 * a[i]!);
      expect(ssim(a, b, h, w)).toBeCloseTo(ssimReference(a, b, h, w), 10);
      expect(ssim(a, a, h, w)).toBeCloseTo(1, 12);
    }
    expect(() => ssim(new Float32Array(36), new Float32Array(36), 6, 6)).toThrow(/smaller than the 7×7 window/);
  });
});

describe('curves and rankings', () => {
  it('AUC is the trapezoid rule over [0, 1]', () => {
    expect(curveAuc([1, 0.5, 0])).toBeCloseTo(0.5, 12);
    expect(curveAuc([0, 1, 1, 1, 0])).toBeCloseTo(0.75, 12); // (0+1+1+1+0 − 0 − 0)/4
    expect(curveAuc([0.2, 0.6])).toBeCloseTo(0.4, 12);
    expect(curveAuc([0.7])).toBe(0);
  });

  it('ranks pixels by value, descending, ties to the lower row-major index', () => {
    const { order, rank } = rankPixels([0.5, 2, 0.5, 2, -1]);
    expect([...order]).toEqual([1, 3, 0, 2, 4]);
    expect([...rank]).toEqual([2, 0, 3, 1, 4]);
    expect([...rankPixels(new Float32Array(6).fill(3)).order]).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('the random control map depends on the seed and the image index, not on the batch', () => {
    const a = randomMap(3, 4, 5, 7);
    const b = randomMap(1, 4, 5, 7);
    expect([...a.data.subarray(0, 20)]).toEqual([...b.data]);
    expect([...randomMap(1, 4, 5, 8).data]).not.toEqual([...b.data]);
    expect(a.data.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(meanAndStd([1, 3, NaN, Infinity])).toEqual({ mean: 2, std: 1 });
  });
});
