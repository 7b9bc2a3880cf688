/**
 * SmoothGrad (Smilkov et al. 2017): M = (1/n) Σ_i G(x + ε_i), ε_i ~ N(0, σ²),
 * σ = noiseLevel · (x_max − x_min) of each image.
 *
 * The n noisy copies of an image run as GPU batches; the noise comes from a seeded GPU stream, so
 * the same seed gives the same map, however the samples are batched. Aggregates: the mean of G,
 * the mean of G² ("SmoothGrad squared"), or the variance (VarGrad).
 *
 * Batch sizes come from the Gpu's memory budget (src/runtime/memory.ts): the first call on a model
 * (and input shape) measures the memory of one sample on a gradient it throws away; every call
 * then runs as many samples per batch as fit.
 */
import { add, clone, fill, mul, scale, sub } from '../kernels/elementwise.js';
import { randomNormal } from '../kernels/random.js';
import { sum } from '../kernels/reduce.js';
import { concat, slice } from '../kernels/shape.js';
import { ArgumentError } from '../runtime/errors.js';
import { BatchSizer } from '../runtime/memory.js';
import type { Tensor } from '../runtime/tensor.js';
import { noGrad } from '../autodiff/tape.js';
import { CancelledError } from '../runtime/errors.js';
import { checkInput, classIndices, isClassList, isNeuronTarget, scoresLogits, type ClassTarget, type ExplainableModel, type ScoreOptions } from './core.js';
import { deviceOf, inputGradient } from './gradients.js';
import { checkFiniteValues, methodJob } from './job.js';
import { untraced, withMethodTrace, type TraceOn, type Traced } from './trace.js';

export interface SmoothGradOptions extends ScoreOptions {
  /** Noisy samples per image (default 50, as in the paper). */
  samples?: number;
  /** σ as a fraction of the image's value range (default 0.15; the paper uses 0.1–0.2). */
  noiseLevel?: number;
  /** Seed of the noise (default 0). */
  seed?: number;
  /** The gradient to smooth (default 'vanilla'). */
  base?: 'vanilla' | 'gradTimesInput' | 'guidedBackprop';
  /** 'mean' (default), 'meanSquare' (SmoothGrad²) or 'variance' (VarGrad). */
  aggregate?: 'mean' | 'meanSquare' | 'variance';
  /**
   * Noisy copies per GPU batch. 'auto' (default): as many as fit in the Gpu's memory budget, at
   * most 64. A number: that many, or, when they would not fit, smaller batches and a warning to
   * the Gpu's log.
   */
  batchSize?: number | 'auto';
  /** Called after each batch with the samples done and the total, over all images. */
  onProgress?: (done: number, total: number) => void;
  /** Stops the run between batches with a CancelledError; nothing stays allocated. */
  signal?: AbortSignal;
}

/**
 * In 'auto', the largest batch: progress (and cancelling) comes at least every 64 samples, and on
 * a GPU VGG16's 224×224 samples are held to fewer by the memory budget anyway.
 */
export const SMOOTHGRAD_MAX_AUTO_BATCH = 64;

export function smoothGrad(model: ExplainableModel, x: Tensor, options: SmoothGradOptions & { trace: TraceOn }): Promise<Traced>;
export function smoothGrad(model: ExplainableModel, x: Tensor, options: SmoothGradOptions & { trace?: false }): Promise<Tensor>;
export function smoothGrad(model: ExplainableModel, x: Tensor, options: SmoothGradOptions): Promise<Tensor | Traced>;
export function smoothGrad(model: ExplainableModel, x: Tensor, options: SmoothGradOptions): Promise<Tensor | Traced> {
  return methodJob('smoothGrad', deviceOf(model), x, () => withMethodTrace(model.gpu, 'smoothGrad', options.trace, () => smoothGradMap(model, x, options)));
}

async function smoothGradMap(model: ExplainableModel, x: Tensor, options: SmoothGradOptions): Promise<Tensor> {
  const { samples = 50, noiseLevel = 0.15, seed = 0, base = 'vanilla', aggregate = 'mean', onProgress, signal } = options;
  checkInput('smoothGrad', model, x);
  scoresLogits('smoothGrad', options.score);
  if (!Number.isInteger(samples) || samples < 1) throw new ArgumentError(`smoothGrad: samples must be a positive integer, got ${samples}`);
  if (!(noiseLevel >= 0) || !Number.isFinite(noiseLevel)) throw new ArgumentError(`smoothGrad: noiseLevel must be a finite number ≥ 0, got ${noiseLevel}`);
  if (!['vanilla', 'gradTimesInput', 'guidedBackprop'].includes(base)) {
    throw new ArgumentError(`smoothGrad: base must be 'vanilla', 'gradTimesInput' or 'guidedBackprop', got ${JSON.stringify(base)}`);
  }
  if (!['mean', 'meanSquare', 'variance'].includes(aggregate)) {
    throw new ArgumentError(`smoothGrad: aggregate must be 'mean', 'meanSquare' or 'variance', got ${JSON.stringify(aggregate)}`);
  }
  if (isNeuronTarget(options.target)) throw new ArgumentError('smoothGrad: explains class scores; neuron targets are for vanilla, deconvnet and guidedBackprop');
  const gpu = model.gpu;
  const n = x.shape[0]!;
  const sampleShape = x.shape.slice(1);
  const sizer = new BatchSizer(gpu, {
    label: 'smoothGrad',
    unit: 'sample',
    batchSize: options.batchSize,
    maxBatch: SMOOTHGRAD_MAX_AUTO_BATCH,
    cacheKey: model,
    signature: `${base}|${aggregate}|${options.score ?? ''}|${sampleShape.join('x')}`,
  });
  const pixels = x.size / n;
  const values = await x.read();
  checkFiniteValues('smoothGrad', values, x.shape); // before σ is computed from them
  const classes = await perImageTargets(model, x, options.target as ClassTarget, n, options.score);

  // σ of each image, from its value range.
  const sigmas = Array.from({ length: n }, (_, i) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (let p = i * pixels; p < (i + 1) * pixels; p++) {
      lo = Math.min(lo, values[p]!);
      hi = Math.max(hi, values[p]!);
    }
    return noiseLevel * (hi - lo);
  });
  const imageOf = (i: number) => slice(x, [i, ...sampleShape.map(() => 0)], [1, ...sampleShape]);
  /** Adds the gradients of noisy samples first..first+b−1 of image i to the running sums. */
  const addBatch = async (i: number, xi: Tensor, first: number, b: number, sums: { s1: Tensor; s2: Tensor }) => {
    // Noise of sample k of image i is values [(i·samples + k)·pixels, …) of the seed's stream.
    const noise = await randomNormal(gpu, [b, ...sampleShape], { seed, offset: (i * samples + first) * pixels, std: sigmas[i]! });
    const noisy = await add(noise, xi);
    noise.dispose();
    const g = await baseGradient(model, noisy, classes[i]!, base, options.score);
    noisy.dispose();
    const gs = await sum(g, [0], true);
    const next1 = await add(sums.s1, gs);
    sums.s1.dispose();
    sums.s1 = next1;
    gs.dispose();
    if (aggregate !== 'mean') {
      const g2 = await mul(g, g);
      const g2s = await sum(g2, [0], true);
      const next2 = await add(sums.s2, g2s);
      sums.s2.dispose();
      sums.s2 = next2;
      g2.dispose();
      g2s.dispose();
    }
    g.dispose();
  };
  const zeros = async () => ({ s1: await fill(gpu, [1, ...sampleShape], 0), s2: await fill(gpu, [1, ...sampleShape], 0) });
  // The memory of one sample, measured on a sample whose gradient is thrown away (once per model
  // and input shape on this Gpu): the batches then never depend on whether it was measured before.
  if (sizer.needsMeasurement) await sizer.measure(() => untraced(gpu, () => gpu.scope(async () => addBatch(0, await imageOf(0), 0, 1, await zeros()))));

  const perImage: Tensor[] = [];
  try {
    for (let i = 0; i < n; i++) {
      perImage.push(
        await gpu.scope(async () => {
          const xi = await imageOf(i);
          const sums = await zeros(); // Σ G, Σ G²
          for (let done = 0; done < samples; ) {
            if (signal?.aborted) throw new CancelledError('smoothGrad: cancelled');
            const b = sizer.next(samples - done);
            await sizer.run(b, () => addBatch(i, xi, done, b, sums));
            done += b;
            onProgress?.(i * samples + done, n * samples);
          }
          const mean = await scale(sums.s1, 1 / samples);
          if (aggregate === 'mean') return mean;
          const meanSquare = await scale(sums.s2, 1 / samples);
          if (aggregate === 'meanSquare') return meanSquare;
          return sub(meanSquare, await mul(mean, mean)); // VarGrad: E[G²] − E[G]²
        }),
      );
    }
    sizer.report();
    return perImage.length === 1 ? clone(perImage[0]!) : await concat(perImage, 0);
  } finally {
    for (const t of perImage) t.dispose();
  }
}

async function baseGradient(
  model: ExplainableModel,
  noisy: Tensor,
  target: number,
  base: NonNullable<SmoothGradOptions['base']>,
  score: ScoreOptions['score'],
): Promise<Tensor> {
  const rules = base === 'guidedBackprop' ? 'guided' : 'ordinary';
  const g = await inputGradient('smoothGrad', model, noisy, { target, score }, rules);
  if (base !== 'gradTimesInput') return g;
  const gx = await mul(noisy, g); // Gradient × Input of the noisy copy
  g.dispose();
  return gx;
}

/** Class per image: 'top' is decided on the clean image, so every noisy copy explains the same class. */
async function perImageTargets(model: ExplainableModel, x: Tensor, target: ClassTarget, n: number, score: ScoreOptions['score']): Promise<number[]> {
  if (typeof target === 'number') return new Array<number>(n).fill(target);
  if (isClassList(target)) {
    if (target.length !== n) throw new ArgumentError(`smoothGrad: ${target.length} targets for a batch of ${n} images`);
    return Array.from(target);
  }
  const scores = await noGrad(model.gpu, () => model.forward(x, { logits: scoresLogits('smoothGrad', score) }));
  try {
    return await classIndices('smoothGrad', target, scores);
  } finally {
    scores.dispose();
  }
}
