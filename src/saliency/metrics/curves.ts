/**
 * Deletion and insertion (Petsiuk, Das, Saenko 2018, RISE). Pixels are changed in the map's order,
 * `step` at a time, and the score f_c is read after each step:
 *
 * - deletion: from x, the next `step` ranked pixels go to the baseline (default 'zero'); lower is better;
 * - insertion: from the baseline (default 'blur'), the original pixels come back; higher is better.
 *
 * n = ⌈H·W / step⌉ steps give n + 1 points y_0 … y_n, and AUC = (Σ y_k − y_0/2 − y_n/2) / n.
 * Every perturbed image is made on the GPU (shaders/perturb_ranked.wgsl) and scored in batches.
 * A step that changes no pixel's value (its pixels already equal the baseline, as the black
 * background of a Fashion-MNIST image under deletion) gives the same image as the step before: its
 * point is that step's score, without a forward pass.
 */
import { conv2dForward } from '../../kernels/conv2d.js';
import { fill } from '../../kernels/elementwise.js';
import { selectByRank, type RankItem } from '../../kernels/perturb.js';
import { mean } from '../../kernels/reduce.js';
import { broadcastTo } from '../../kernels/shape.js';
import { ArgumentError, ShapeError, formatShape } from '../../runtime/errors.js';
import { tensor, type Tensor } from '../../runtime/tensor.js';
import type { ExplainableModel } from '../core.js';
import {
  Progress,
  checkAborted,
  checkCommonOptions,
  checkMap,
  cleanScores,
  imageDims,
  mapValues,
  rankPixels,
  rankTensor,
  reduceMap,
  scoreItems,
  type MapInput,
  type MetricOptions,
} from './common.js';
import { curveAuc } from './stats.js';

/** What changed pixels become: 0, x blurred, each channel's mean, or given values [1 or N, C, H, W]. */
export type Baseline = 'zero' | 'blur' | 'mean' | Tensor;

export interface CurveOptions extends MetricOptions {
  /** Pixels changed per step (default W, one row's worth). */
  step?: number;
  /** Default 'zero' for deletion, 'blur' for insertion. */
  baseline?: Baseline;
}

/** One image's curve. */
export interface CurveResult {
  /** Area under the curve, x axis scaled to [0, 1]. */
  auc: number;
  /** f_c after k·step pixels (clamped to H·W) have been changed, k = 0 … n. */
  curve: number[];
  /** The class whose score the curve follows. */
  target: number;
}

/** Deletion: scores as the map's most salient pixels go to the baseline (lower AUC is better). */
export function deletion(model: ExplainableModel, x: Tensor, map: MapInput, options: CurveOptions = {}): Promise<CurveResult[]> {
  return curves('deletion', model, x, map, options);
}

/** Insertion: scores as the map's most salient pixels come back over the baseline (higher AUC is better). */
export function insertion(model: ExplainableModel, x: Tensor, map: MapInput, options: CurveOptions = {}): Promise<CurveResult[]> {
  return curves('insertion', model, x, map, options);
}

/** RISE's blur: a normalised 11×11 Gaussian, σ = 5, as [11·11] weights (row-major). */
export function gaussianKernel(size = 11, sigma = 5): Float32Array {
  const r = (size - 1) / 2;
  const k = new Float64Array(size * size);
  let total = 0;
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const v = Math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2 * sigma * sigma));
      k[i * size + j] = v;
      total += v;
    }
  }
  return Float32Array.from(k, (v) => v / total);
}

/**
 * x [N, C, H, W] convolved with the 11×11 Gaussian (σ = 5), each channel separately, zero padding
 * of 5 on each side: the insertion baseline.
 */
export async function blurImages(x: Tensor): Promise<Tensor> {
  const c = x.shape[1]!;
  const k = gaussianKernel();
  const weights = new Float32Array(c * k.length);
  for (let i = 0; i < c; i++) weights.set(k, i * k.length);
  const w = tensor(x.gpu, weights, [c, 1, 11, 11]);
  try {
    return await conv2dForward(x, w, null, { padding: 5, groups: c });
  } finally {
    w.dispose();
  }
}

/** Checks a baseline option (before any GPU work). */
export function checkBaseline(metric: string, baseline: Baseline, dims: { n: number; c: number; h: number; w: number }): void {
  if (baseline === 'zero' || baseline === 'blur' || baseline === 'mean') return;
  const t = baseline as Tensor;
  if (typeof t !== 'object' || t === null || !('rank' in t)) {
    throw new ArgumentError(`${metric}: baseline must be 'zero', 'blur', 'mean' or a Tensor, got ${JSON.stringify(baseline)}`);
  }
  const { n, c, h, w } = dims;
  if (t.rank !== 4 || (t.shape[0] !== 1 && t.shape[0] !== n) || t.shape[1] !== c || t.shape[2] !== h || t.shape[3] !== w) {
    throw new ShapeError(`${metric}: a baseline tensor must be [1 or ${n}, ${c}, ${h}, ${w}], got ${formatShape(t.shape)}`);
  }
}

/** The baseline as a tensor [1 or N, C, H, W] (a new one the caller disposes, or the caller's own). */
export async function baselineTensor(x: Tensor, baseline: Baseline): Promise<Tensor> {
  const [, c, h, w] = x.shape as [number, number, number, number];
  if (baseline === 'zero') return fill(x.gpu, [1, c, h, w], 0);
  if (baseline === 'blur') return blurImages(x);
  if (baseline === 'mean') return x.gpu.scope(async () => broadcastTo(await mean(x, [2, 3], true), x.shape));
  return baseline;
}

async function curves(metric: 'deletion' | 'insertion', model: ExplainableModel, x: Tensor, map: MapInput, options: CurveOptions): Promise<CurveResult[]> {
  checkCommonOptions(metric, options);
  const dims = imageDims(metric, model, x);
  const { n, c, h, w } = dims;
  const hw = h * w;
  const step = options.step ?? w;
  if (!Number.isInteger(step) || step < 1 || step > hw) {
    throw new ArgumentError(`${metric}: step must be an integer from 1 to H·W = ${hw}, got ${step}`);
  }
  const baseline = options.baseline ?? (metric === 'deletion' ? 'zero' : 'blur');
  checkBaseline(metric, baseline, dims);
  const kind = checkMap(metric, map, dims, options.kind);
  const values = reduceMap(await mapValues(metric, map), kind, h, w);
  const ranks = values.map((v) => rankPixels(v));
  const steps = Math.ceil(hw / step);

  const clean = await cleanScores(metric, model, x, options);
  const base = await baselineTensor(x, baseline);
  let rankT: Tensor | null = null;
  try {
    // Which pixels the baseline changes (any channel), to skip steps that change nothing.
    const [xv, bv] = [await x.read(), await base.read()];
    const shared = base.shape[0] === 1 && n > 1;
    const differs = (i: number, p: number) => {
      for (let k = 0; k < c; k++) if (xv[(i * c + k) * hw + p] !== bv[((shared ? 0 : i) * c + k) * hw + p]) return true;
      return false;
    };
    // Point k of image i: its own forward pass (an item), or the same value as point `same`.
    const items: (RankItem & { point: number })[] = [];
    const same: Int32Array[] = [];
    for (let i = 0; i < n; i++) {
      const alias = new Int32Array(steps + 1).fill(-1);
      const { order } = ranks[i]!;
      for (let k = 0; k <= steps; k++) {
        const count = Math.min(k * step, hw);
        if (metric === 'deletion' ? k === 0 : k === steps) continue; // x itself: the clean score
        if (k > 0) {
          let changes = false;
          for (let j = (k - 1) * step; j < count && !changes; j++) changes = differs(i, order[j]!);
          if (!changes) {
            alias[k] = k - 1;
            continue;
          }
        }
        items.push({ image: i, lo: 0, hi: count, point: k });
      }
      same.push(alias);
    }
    rankT = rankTensor(x, ranks.map((r) => r.rank));
    const [inside, outside] = metric === 'deletion' ? [base, x] : [x, base];
    const ranksOnGpu = rankT;
    const progress = new Progress(items.length, options.onProgress);
    const scores = await scoreItems(metric, model, items, (it) => clean.classes[it.image]!, (part) => selectByRank(inside, outside, ranksOnGpu, part), options, progress);
    checkAborted(metric, options.signal);
    const curvesOut = Array.from({ length: n }, () => new Array<number>(steps + 1).fill(NaN));
    for (let i = 0; i < n; i++) curvesOut[i]![metric === 'deletion' ? 0 : steps] = clean.scores[i]!;
    items.forEach((it, j) => (curvesOut[it.image]![it.point] = scores[j]!));
    return curvesOut.map((curve, i) => {
      for (let k = 0; k <= steps; k++) if (same[i]![k]! >= 0) curve[k] = curve[same[i]![k]!]!;
      return { auc: curveAuc(curve), curve, target: clean.classes[i]! };
    });
  } finally {
    rankT?.dispose();
    if (base !== baseline) base.dispose();
  }
}
