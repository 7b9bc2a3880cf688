/**
 * Average Drop and Increase in Confidence (Chattopadhyay et al. 2018, Grad-CAM++). The map, made
 * ≥ 0 (|·|) and divided by its maximum, then upsampled to H×W, masks the image: O = f_c(x ⊙ E),
 * E broadcast over the channels, against Y = f_c(x).
 *
 *   Drop = 100 · mean over images of max(0, Y − O) / Y      (lower is better)
 *   Increase = 100 · fraction of images with O > Y          (higher is better)
 */
import { mul } from '../../kernels/elementwise.js';
import { ArgumentError } from '../../runtime/errors.js';
import { tensor, type Tensor } from '../../runtime/tensor.js';
import type { ExplainableModel } from '../core.js';
import {
  Progress,
  checkCommonOptions,
  checkMap,
  cleanScores,
  imageDims,
  mapValues,
  reduceMap,
  scoreItems,
  sliceImages,
  upsample,
  type MapInput,
  type MetricOptions,
} from './common.js';

export type AverageDropOptions = Omit<MetricOptions, 'score'> & {
  /** f_c must be a probability here (the drop divides by it): only 'probability' is accepted. */
  score?: 'probability';
};

export interface AverageDropResult {
  /** Average Drop in percent (lower is better). */
  drop: number;
  /** Increase in Confidence in percent (higher is better). */
  increase: number;
  /** Per image: Y = f_c(x), O = f_c(x ⊙ E), and the class. */
  images: { y: number; o: number; target: number }[];
}

export async function averageDrop(model: ExplainableModel, x: Tensor, map: MapInput, options: AverageDropOptions = {}): Promise<AverageDropResult> {
  const metric = 'averageDrop';
  checkCommonOptions(metric, options);
  if (options.score !== undefined && options.score !== 'probability') {
    throw new ArgumentError(`${metric}: score must be 'probability' (the drop is relative to f_c(x)), got ${JSON.stringify(options.score)}`);
  }
  const dims = imageDims(metric, model, x);
  const { n, h, w } = dims;
  const kind = checkMap(metric, map, dims, options.kind);
  const read = await mapValues(metric, map);
  const [, , mh, mw] = read.shape as [number, number, number, number];
  // ≥ 0, divided by the maximum at the map's own resolution, then upsampled.
  const masks = new Float32Array(n * h * w);
  reduceMap(read, kind, mh, mw).forEach((m, i) => {
    let max = 0;
    for (let p = 0; p < m.length; p++) max = Math.max(max, (m[p] = Math.abs(m[p]!)));
    if (max > 0) for (let p = 0; p < m.length; p++) m[p]! /= max;
    masks.set(upsample(m, mh, mw, h, w), i * h * w);
  });

  const clean = await cleanScores(metric, model, x, options);
  const gpu = x.gpu;
  const masked = await gpu.scope(async () => mul(x, tensor(gpu, masks, [n, 1, h, w])));
  try {
    const items = Array.from({ length: n }, (_, i) => i);
    const progress = new Progress(n, options.onProgress);
    const o = await scoreItems(metric, model, items, (i) => clean.classes[i]!, async (part) => sliceImages(masked, part[0]!, part.length), options, progress);
    const images = items.map((i) => ({ y: clean.scores[i]!, o: o[i]!, target: clean.classes[i]! }));
    const drop = (100 * images.reduce((a, im) => a + Math.max(0, im.y - im.o) / im.y, 0)) / n;
    const increase = (100 * images.filter((im) => im.o > im.y).length) / n;
    return { drop, increase, images };
  } finally {
    masked.dispose();
  }
}
