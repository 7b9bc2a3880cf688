/**
 * Max-sensitivity (Yeh et al. 2019; Captum's `sensitivity_max`, normalised):
 *
 *   SENS = max over n samples of ‖Φ(x + δ) − Φ(x)‖_F / ‖Φ(x)‖_F,   δ ~ U[−r, r] per input value,
 *
 * with Φ the method explaining the same class as on x. The perturbed copies are made on the GPU
 * from a seeded stream (sample j of image i is values (i·n + j)·C·H·W … of the seed's stream) and
 * explained in batches. Lower is more stable. Where Φ(x) = 0, SENS is 0 if every Φ(x + δ) is 0 too,
 * else Infinity.
 */
import { add } from '../../kernels/elementwise.js';
import { randomUniform } from '../../kernels/random.js';
import { concat } from '../../kernels/shape.js';
import { ArgumentError } from '../../runtime/errors.js';
import type { Tensor } from '../../runtime/tensor.js';
import type { ExplainableModel } from '../core.js';
import { Progress, checkAborted, checkCommonOptions, cleanScores, defaultBatchSize, imageDims, sliceImages, type MetricOptions } from './common.js';
import type { ClassifierSettings } from '../methods.js';
import { metricMethod, type MethodFunction } from './methods.js';

export interface MaxSensitivityOptions extends Omit<MetricOptions, 'kind' | 'score'> {
  /** r: δ is uniform in [−r, r] per input value (default 0.02, in input units). */
  radius?: number;
  /** n: perturbed samples per image (default 10). */
  samples?: number;
  /** Seed of δ (default 0). */
  seed?: number;
  /** The method's own settings (e.g. { layer } for Grad-CAM, { samples, seed } for SmoothGrad). */
  methodOptions?: Omit<ClassifierSettings, 'target'>;
}

export interface MaxSensitivityResult {
  /** SENS per image. */
  values: number[];
  /** Mean of the finite values. */
  mean: number;
  /** The class each image's maps explain. */
  targets: number[];
}

/** ‖a − b‖ / ‖b‖ over one image's values (Frobenius); see the header for ‖b‖ = 0. */
function relativeChange(a: Float32Array, b: Float32Array, from: number, size: number, bFrom = from): number {
  let num = 0;
  let den = 0;
  for (let k = 0; k < size; k++) {
    const d = a[from + k]! - b[bFrom + k]!;
    num += d * d;
    den += b[bFrom + k]! * b[bFrom + k]!;
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}

export async function maxSensitivity(
  model: ExplainableModel,
  method: string | MethodFunction,
  x: Tensor,
  options: MaxSensitivityOptions = {},
): Promise<MaxSensitivityResult> {
  const metric = 'maxSensitivity';
  checkCommonOptions(metric, options);
  const run = metricMethod(metric, method).run;
  const { radius = 0.02, samples = 10, seed = 0, methodOptions = {} } = options;
  if (!(radius >= 0) || !Number.isFinite(radius)) throw new ArgumentError(`${metric}: radius must be a finite number ≥ 0, got ${radius}`);
  if (!Number.isInteger(samples) || samples < 1) throw new ArgumentError(`${metric}: samples must be a positive integer, got ${samples}`);
  if (!Number.isInteger(seed) || seed < 0) throw new ArgumentError(`${metric}: seed must be an integer ≥ 0, got ${seed}`);
  if (typeof methodOptions !== 'object' || methodOptions === null) throw new ArgumentError(`${metric}: methodOptions must be an object`);
  const { n } = imageDims(metric, model, x);
  const per = x.size / n;
  if ((n * samples + 1) * per > 2 ** 31) throw new ArgumentError(`${metric}: ${n} images × ${samples} samples exceed the random stream (2^31 values); use fewer`);
  const batch = options.batchSize ?? defaultBatchSize(model);
  const gpu = x.gpu;
  const explain = (images: Tensor, classes: number[]) => run(model, images, { ...methodOptions, target: classes });

  const { classes } = await cleanScores(metric, model, x, { ...options, score: 'logit' });
  const progress = new Progress(n * (samples + 1), options.onProgress);
  // Φ(x), in batches of images.
  const clean: Float32Array[] = [];
  for (let start = 0; start < n; start += batch) {
    checkAborted(metric, options.signal);
    const b = Math.min(batch, n - start);
    const images = sliceImages(x, start, b, per);
    const maps = await explain(images, classes.slice(start, start + b)).finally(() => images.dispose());
    clean.push(await maps.read().finally(() => maps.dispose()));
    progress.add(b);
  }
  const mapSize = clean[0]!.length / Math.min(batch, n);
  const cleanOf = (i: number) => ({ values: clean[Math.floor(i / batch)]!, at: (i % batch) * mapSize });

  // Φ(x + δ) for sample j of image i, global index g = i·n + j, in batches of samples.
  const values = new Array<number>(n).fill(0);
  const total = n * samples;
  for (let g0 = 0; g0 < total; g0 += batch) {
    checkAborted(metric, options.signal);
    const b = Math.min(batch, total - g0);
    const owners = Array.from({ length: b }, (_, k) => Math.floor((g0 + k) / samples));
    const maps = await gpu.scope(async () => {
      const delta = await randomUniform(gpu, [b, ...x.shape.slice(1)], { seed, offset: g0 * per, lo: -radius, hi: radius });
      const sources = owners.map((i) => sliceImages(x, i, 1, per));
      const perturbed = await add(sources.length === 1 ? sources[0]! : await concat(sources, 0), delta);
      return explain(perturbed, owners.map((i) => classes[i]!));
    });
    const v = await maps.read().finally(() => maps.dispose());
    owners.forEach((i, k) => {
      const c = cleanOf(i);
      values[i] = Math.max(values[i]!, relativeChange(v, c.values, k * mapSize, mapSize, c.at));
    });
    progress.add(b);
  }
  const finite = values.filter(Number.isFinite);
  return { values, mean: finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : NaN, targets: classes };
}
