/**
 * ROAD, RemOve And Debias (Rong et al. 2022). The top (MoRF) or bottom (LeRF) p% of the map's
 * pixels are removed and filled in by noisy linear imputation: each removed pixel becomes the
 * weighted mean of its 8 neighbours (1/6 direct, 1/12 diagonal, renormalised at the border), one
 * linear system per channel solved by conjugate gradients on the GPU to a relative residual of
 * 1e-5, then N(0, 0.01²) noise on the imputed pixels. The value at p is f_c(imputed) − f_c(x).
 * Summaries: the mean over the percentages of MoRF (lower is better) and of LeRF (higher is
 * better), and (LeRF − MoRF) / 2.
 */
import { imputeNoisyLinear, type RankItem } from '../../kernels/perturb.js';
import { ArgumentError } from '../../runtime/errors.js';
import type { Tensor } from '../../runtime/tensor.js';
import type { ExplainableModel } from '../core.js';
import {
  Progress,
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

export interface RoadOptions extends MetricOptions {
  /** Percentages of pixels to remove, each in (0, 100) (default 10, 20, …, 90). */
  percentages?: number[];
  /** σ of the noise on imputed pixels, in input units (default 0.01). */
  sigma?: number;
  /** Seed of the noise (default 0). */
  seed?: number;
  /** Relative residual at which the solver stops (default 1e-5). */
  tolerance?: number;
}

/** One image's ROAD scores. */
export interface RoadResult {
  percentages: number[];
  /** f_c(imputed) − f_c(x) with the most relevant p% removed, per percentage. */
  morf: number[];
  /** The same with the least relevant p% removed. */
  lerf: number[];
  /** Mean of `morf` (lower is better). */
  morfMean: number;
  /** Mean of `lerf` (higher is better). */
  lerfMean: number;
  /** (lerfMean − morfMean) / 2 (higher is better). */
  combined: number;
  target: number;
}

export const ROAD_PERCENTAGES: readonly number[] = [10, 20, 30, 40, 50, 60, 70, 80, 90];

/** Pixels removed at p% of an image of `pixels` pixels: the nearest whole number. */
export function removedPixels(p: number, pixels: number): number {
  return Math.round((p / 100) * pixels);
}

export async function road(model: ExplainableModel, x: Tensor, map: MapInput, options: RoadOptions = {}): Promise<RoadResult[]> {
  const metric = 'road';
  checkCommonOptions(metric, options);
  const { percentages = [...ROAD_PERCENTAGES], sigma = 0.01, seed = 0, tolerance = 1e-5 } = options;
  if (!Array.isArray(percentages) || percentages.length === 0) throw new ArgumentError(`${metric}: percentages must be a non-empty array`);
  for (const p of percentages) {
    if (typeof p !== 'number' || !(p > 0 && p < 100)) throw new ArgumentError(`${metric}: percentages must lie in (0, 100), got ${p}`);
  }
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new ArgumentError(`${metric}: sigma must be a finite number ≥ 0, got ${sigma}`);
  if (!Number.isInteger(seed) || seed < 0) throw new ArgumentError(`${metric}: seed must be an integer ≥ 0, got ${seed}`);
  if (!(tolerance > 0 && tolerance < 1)) throw new ArgumentError(`${metric}: tolerance must be in (0, 1), got ${tolerance}`);
  const dims = imageDims(metric, model, x);
  const { n, h, w } = dims;
  const hw = h * w;
  const kind = checkMap(metric, map, dims, options.kind);
  const values = reduceMap(await mapValues(metric, map), kind, h, w);
  const ranks = values.map((v) => rankPixels(v).rank);

  const clean = await cleanScores(metric, model, x, options);
  const P = percentages.length;
  const items: (RankItem & { lerf: boolean; j: number })[] = [];
  for (let i = 0; i < n; i++) {
    percentages.forEach((p, j) => {
      const count = removedPixels(p, hw);
      // The noise key names (image, percentage, order), so the same seed gives the same noise in any batch.
      items.push({ image: i, lo: 0, hi: count, key: (i * P + j) * 2, lerf: false, j });
      items.push({ image: i, lo: hw - count, hi: hw, key: (i * P + j) * 2 + 1, lerf: true, j });
    });
  }
  const rankT = rankTensor(x, ranks);
  try {
    const progress = new Progress(items.length, options.onProgress);
    const build = async (part: readonly RankItem[]) => (await imputeNoisyLinear(x, rankT, part, { sigma, seed, tolerance })).images;
    const scores = await scoreItems(metric, model, items, (it) => clean.classes[it.image]!, build, options, progress);
    const results: RoadResult[] = Array.from({ length: n }, (_, i) => ({
      percentages: [...percentages],
      morf: new Array<number>(P).fill(NaN),
      lerf: new Array<number>(P).fill(NaN),
      morfMean: NaN,
      lerfMean: NaN,
      combined: NaN,
      target: clean.classes[i]!,
    }));
    items.forEach((it, k) => {
      (it.lerf ? results[it.image]!.lerf : results[it.image]!.morf)[it.j] = scores[k]! - clean.scores[it.image]!;
    });
    for (const r of results) {
      r.morfMean = r.morf.reduce((a, b) => a + b, 0) / P;
      r.lerfMean = r.lerf.reduce((a, b) => a + b, 0) / P;
      r.combined = (r.lerfMean - r.morfMean) / 2;
    }
    return results;
  } finally {
    rankT.dispose();
  }
}
