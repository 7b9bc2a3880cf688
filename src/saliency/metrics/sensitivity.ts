/**
 * Max-sensitivity (Yeh et al. 2019; Captum's `sensitivity_max`, normalised):
 *
 *   SENS = max over n samples of ‖Φ(x + δ) − Φ(x)‖_F / ‖Φ(x)‖_F,   δ ~ U[−r, r] per input value,
 *
 * with Φ the method explaining the same class as on x. The perturbed copies are made on the GPU
 * from a seeded stream (sample j of image i is values (i·n + j)·C·H·W … of the seed's stream) and
 * explained in batches within the memory budget (the same values whatever the batches). Lower is more stable. Where Φ(x) = 0, SENS is 0 if every Φ(x + δ) is 0 too,
 * else Infinity.
 */
import { add } from '../../kernels/elementwise.js';
import { randomUniform } from '../../kernels/random.js';
import { concat } from '../../kernels/shape.js';
import { ArgumentError } from '../../runtime/errors.js';
import type { Tensor } from '../../runtime/tensor.js';
import type { ExplainableModel } from '../core.js';
import { Progress, checkAborted, checkCommonOptions, cleanScores, imageDims, sliceImages, type MetricOptions } from './common.js';
import type { ClassifierSettings } from '../methods.js';
import { explainInBatches, imagesOf, metricMethod, type MethodFunction } from './methods.js';

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
  const m = metricMethod(metric, method);
  const { radius = 0.02, samples = 10, seed = 0, methodOptions = {} } = options;
  if (!(radius >= 0) || !Number.isFinite(radius)) throw new ArgumentError(`${metric}: radius must be a finite number ≥ 0, got ${radius}`);
  if (!Number.isInteger(samples) || samples < 1) throw new ArgumentError(`${metric}: samples must be a positive integer, got ${samples}`);
  if (!Number.isInteger(seed) || seed < 0) throw new ArgumentError(`${metric}: seed must be an integer ≥ 0, got ${seed}`);
  if (typeof methodOptions !== 'object' || methodOptions === null) throw new ArgumentError(`${metric}: methodOptions must be an object`);
  const { n } = imageDims(metric, model, x);
  const per = x.size / n;
  if ((n * samples + 1) * per > 2 ** 31) throw new ArgumentError(`${metric}: ${n} images × ${samples} samples exceed the random stream (2^31 values); use fewer`);
  const gpu = x.gpu;
  const { classes } = await cleanScores(metric, model, x, { ...options, score: 'logit' });
  const progress = new Progress(n * (samples + 1), options.onProgress);
  const batching = { batchSize: options.batchSize, signal: options.signal };
  // Φ(x), in batches of images.
  const parts: { start: number; values: Float32Array }[] = [];
  let mapSize = 0;
  await explainInBatches(metric, model, m, n, imagesOf(x), classes, methodOptions, batching, async (start, maps) => {
    mapSize = maps.size / maps.shape[0]!;
    parts.push({ start, values: await maps.read() });
    progress.add(maps.shape[0]!);
  });
  const cleanMaps = new Float32Array(n * mapSize);
  for (const p of parts) cleanMaps.set(p.values, p.start * mapSize);

  // Φ(x + δ) for sample j of image i, global index g = i·n + j, in batches of samples.
  const values = new Array<number>(n).fill(0);
  const owner = (g: number) => Math.floor(g / samples);
  const perturbed = (g0: number, b: number) =>
    gpu.scope(async () => {
      const delta = await randomUniform(gpu, [b, ...x.shape.slice(1)], { seed, offset: g0 * per, lo: -radius, hi: radius });
      const sources = Array.from({ length: b }, (_, k) => sliceImages(x, owner(g0 + k), 1, per));
      return add(sources.length === 1 ? sources[0]! : await concat(sources, 0), delta);
    });
  const sampleClasses = Array.from({ length: n * samples }, (_, g) => classes[owner(g)]!);
  await explainInBatches(metric, model, m, n * samples, perturbed, sampleClasses, methodOptions, { ...batching, unit: 'perturbed image' }, async (g0, maps) => {
    const b = maps.shape[0]!;
    const v = await maps.read();
    for (let k = 0; k < b; k++) {
      const i = owner(g0 + k);
      values[i] = Math.max(values[i]!, relativeChange(v, cleanMaps, k * mapSize, mapSize, i * mapSize));
    }
    progress.add(b);
  });
  checkAborted(metric, options.signal);
  const finite = values.filter(Number.isFinite);
  return { values, mean: finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : NaN, targets: classes };
}
