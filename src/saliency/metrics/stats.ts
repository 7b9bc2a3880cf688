/**
 * The statistics the metrics report, in plain TypeScript (float64): the area under a curve,
 * Spearman's rank correlation and SSIM. See ../../../../shared/docs/metrics.md (docs/metrics.md).
 */
import { ArgumentError, ShapeError } from '../../runtime/errors.js';

/**
 * Area under a curve y_0 … y_n sampled at n equal steps of [0, 1] (the trapezoid rule):
 * (Σ y_k − y_0/2 − y_n/2) / n. A single point has area 0.
 */
export function curveAuc(curve: ArrayLike<number>): number {
  const n = curve.length - 1;
  if (n < 0) throw new ArgumentError('curveAuc: the curve has no points');
  if (n === 0) return 0;
  let sum = 0;
  for (let k = 0; k <= n; k++) sum += curve[k]!;
  return (sum - curve[0]! / 2 - curve[n]! / 2) / n;
}

/** Ranks 1 … n of `v` in ascending order, tied values sharing the mean of their ranks. */
export function averageRanks(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => v[a]! - v[b]! || a - b);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && v[order[j + 1]!] === v[order[i]!]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]!] = rank;
    i = j + 1;
  }
  return ranks;
}

/** Pearson's correlation; 0 when either side is constant (it has no variation to agree with). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  if (b.length !== n) throw new ShapeError(`pearson: ${n} and ${b.length} values`);
  if (n === 0) throw new ArgumentError('pearson: no values');
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma;
    const db = b[i]! - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa === 0 || sbb === 0) return 0;
  return Math.max(-1, Math.min(1, sab / Math.sqrt(saa * sbb)));
}

/**
 * Spearman's rank correlation: Pearson's correlation of the average ranks (as scipy.stats.spearmanr).
 * Where one side is constant (say a Grad-CAM map that randomisation turned to all zeros) scipy gives
 * NaN; here it is 0: a constant map shares no ordering with the other.
 */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new ShapeError(`spearman: ${a.length} and ${b.length} values`);
  return pearson(averageRanks(a), averageRanks(b));
}

export interface SsimOptions {
  /** Side of the square window (odd, default 7). */
  windowSize?: number;
  /** Range of the values (default 1: maps scaled to [0, 1]). */
  dataRange?: number;
  k1?: number;
  k2?: number;
}

/**
 * Mean structural similarity of two H×W images, as scikit-image's `structural_similarity` with its
 * defaults (and `data_range`): a uniform 7×7 window, K1 = 0.01, K2 = 0.03, sample covariances
 * (divided by 48, not 49), and the mean over the windows that lie wholly inside the image (skimage
 * crops (7 − 1)/2 pixels from each border before averaging).
 */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, height: number, width: number, options: SsimOptions = {}): number {
  const { windowSize: win = 7, dataRange = 1, k1 = 0.01, k2 = 0.03 } = options;
  if (a.length !== height * width || b.length !== height * width) {
    throw new ShapeError(`ssim: images of ${a.length} and ${b.length} values for ${height}×${width}`);
  }
  if (!Number.isInteger(win) || win < 3 || win % 2 === 0) throw new ArgumentError(`ssim: windowSize must be an odd integer ≥ 3, got ${win}`);
  if (height < win || width < win) throw new ShapeError(`ssim: a ${height}×${width} image is smaller than the ${win}×${win} window`);
  if (!(dataRange > 0)) throw new ArgumentError(`ssim: dataRange must be positive, got ${dataRange}`);
  const np = win * win;
  const covNorm = np / (np - 1);
  const c1 = (k1 * dataRange) ** 2;
  const c2 = (k2 * dataRange) ** 2;
  let total = 0;
  let count = 0;
  for (let y = 0; y + win <= height; y++) {
    for (let x = 0; x + win <= width; x++) {
      let sa = 0;
      let sb = 0;
      let saa = 0;
      let sbb = 0;
      let sab = 0;
      for (let dy = 0; dy < win; dy++) {
        for (let dx = 0; dx < win; dx++) {
          const i = (y + dy) * width + x + dx;
          const va = a[i]!;
          const vb = b[i]!;
          sa += va;
          sb += vb;
          saa += va * va;
          sbb += vb * vb;
          sab += va * vb;
        }
      }
      const ua = sa / np;
      const ub = sb / np;
      const va = covNorm * (saa / np - ua * ua);
      const vb = covNorm * (sbb / np - ub * ub);
      const vab = covNorm * (sab / np - ua * ub);
      total += ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2));
      count++;
    }
  }
  return total / count;
}

/** Mean and (population) standard deviation of the finite values; NaN for none. */
export function meanAndStd(values: readonly number[]): { mean: number; std: number } {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return { mean: NaN, std: NaN };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return { mean, std };
}
