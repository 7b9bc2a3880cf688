/**
 * The model-randomisation sanity check (Adebayo et al. 2018). The model's parameterised layers
 * (conv and linear; in imported graphs also transposed convs and matrix products by a constant
 * matrix) are re-initialised, weights from N(0, σ²) with σ the standard deviation of that
 * layer's trained weights and biases set to 0 (batch-norm layers keep everything), and the method
 * is run again for the same class:
 *
 * - 'cascading': from the top (the logits) down, one more layer at each step;
 * - 'independent': one layer at a time, the others as trained.
 *
 * Each step's maps are compared with the trained model's: Spearman's rank correlation of |E| and of
 * the signed E, and SSIM of the two maps scaled to [0, 1] (scikit-image's defaults: a 7×7 uniform
 * window, K1 = 0.01, K2 = 0.03, data range 1). A map that explains the model loses similarity.
 *
 * The work happens on a copy of the model (`clone()`: our `Model`, and the imported graphs, ONNX
 * and TF.js); the original is never changed. A layer's fresh weights come from its own seeded
 * stream, so it gets the same values in both orders.
 */
import { Rng } from '../../nets/data.js';
import { ArgumentError } from '../../runtime/errors.js';
import type { Tensor } from '../../runtime/tensor.js';
import type { ExplainableModel } from '../core.js';
import { normalize } from '../display.js';
import {
  Progress,
  checkAborted,
  checkCommonOptions,
  checkMap,
  cleanScores,
  imageDims,
  mapValues,
  reduceMap,
  type MetricOptions,
} from './common.js';
import type { ClassifierSettings } from '../methods.js';
import { explainInBatches, imagesOf, metricMethod, type MethodFunction } from './methods.js';
import { spearman, ssim } from './stats.js';

/** A model that can copy itself (new buffers, same weights): what randomisation needs. */
export interface ClonableModel extends ExplainableModel {
  clone(): ExplainableModel & { dispose(): void } | Promise<ExplainableModel & { dispose(): void }>;
}

export interface RandomisationOptions extends Omit<MetricOptions, 'score'> {
  /** 'cascading' (default) or 'independent'. */
  order?: 'cascading' | 'independent';
  /** Seed of the fresh weights (default 0). */
  seed?: number;
  /** The layers to re-initialise (default: every parameterised layer, see `parameterisedLayers`), given in any order. */
  layers?: string[];
  /** The method's own settings (e.g. { layer } for Grad-CAM, { samples, seed } for SmoothGrad). */
  methodOptions?: Omit<ClassifierSettings, 'target'>;
}

/** The similarities at one step; per image, and their means. */
export interface RandomisationStep {
  /** The layer re-initialised at this step (null: the trained model). */
  layer: string | null;
  /** Every layer re-initialised at this step. */
  randomised: string[];
  spearmanAbs: number[];
  spearmanSigned: number[];
  ssim: number[];
  mean: { spearmanAbs: number; spearmanSigned: number; ssim: number };
}

export interface RandomisationResult {
  order: 'cascading' | 'independent';
  /** The parameterised layers, top (logits) first. */
  layers: string[];
  /** Step 0 is the trained model (similarity 1), then one step per layer. */
  steps: RandomisationStep[];
  targets: number[];
}

/** Layer types with weights to re-initialise: ours, and those imported graphs add (ConvTranspose; MatMul or Gemm by a constant that is not a linear layer). */
const PARAMETERISED = new Set<string>(['conv2d', 'linear', 'convtranspose', 'matmul']);

/**
 * The layers randomisation re-initialises by default: those with weights (conv, linear, and in
 * imported graphs transposed conv and matrix products by a constant), in model order (an imported
 * graph's layers run in dependency order, so the reverse is a cascade from the logits down).
 */
export function parameterisedLayers(model: ExplainableModel): string[] {
  return model.layers.filter((l) => PARAMETERISED.has(l.type) && l.params.has('weight')).map((l) => l.name);
}

/** Fresh weights for one layer: N(0, σ²) with σ the population standard deviation of `trained`. */
export function redrawWeights(trained: Float32Array, seed: number, layerIndex: number): Float32Array {
  let mean = 0;
  for (const v of trained) mean += v;
  mean /= trained.length;
  let variance = 0;
  for (const v of trained) variance += (v - mean) ** 2;
  const sigma = Math.sqrt(variance / trained.length);
  const rng = new Rng((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(layerIndex + 1, 0x85ebca6b)) >>> 0);
  return Float32Array.from(trained, () => rng.normal(0, sigma));
}

/** Writes values into a parameter of a model copy, after the work recorded so far that reads it. */
function overwrite(t: Tensor, values: Float32Array): void {
  t.gpu.flush();
  t.gpu.writeBuffer(t.buffer, values);
}

/**
 * A copy of `model` with the named layers re-initialised as the check does (weights N(0, σ²),
 * biases 0); the original is untouched. Dispose the copy when done.
 */
export async function reinitialisedCopy(model: ClonableModel, layers: readonly string[], options: { seed?: number } = {}): Promise<ExplainableModel & { dispose(): void }> {
  const all = parameterisedLayers(model);
  for (const l of layers) checkParameterised('reinitialisedCopy', model, l, all);
  checkClonable('reinitialisedCopy', model);
  const copy = await model.clone();
  try {
    for (const name of layers) await reinitialise(copy, name, options.seed ?? 0, all.indexOf(name));
    return copy;
  } catch (e) {
    copy.dispose();
    throw e;
  }
}

function checkParameterised(metric: string, model: ExplainableModel, layer: string, all: readonly string[]): void {
  model.layer(layer); // an unknown name lists the layers
  if (!all.includes(layer)) throw new ArgumentError(`${metric}: layer '${layer}' has no weights to re-initialise; parameterised layers: ${all.join(', ')}`);
}

/** Re-initialises one layer of `copy` in place; returns its trained values, to restore them. */
async function reinitialise(copy: ExplainableModel, name: string, seed: number, index: number): Promise<Map<string, Float32Array>> {
  const params = copy.layer(name).params;
  const saved = new Map<string, Float32Array>();
  for (const [key, t] of params) {
    const trained = await t.read();
    saved.set(key, trained);
    if (key === 'weight') overwrite(t, redrawWeights(trained, seed, index));
    else if (key === 'bias') overwrite(t, new Float32Array(trained.length));
  }
  return saved;
}

function checkClonable(metric: string, model: ExplainableModel): asserts model is ClonableModel {
  if (typeof (model as Partial<ClonableModel>).clone !== 'function') {
    throw new ArgumentError(`${metric}: model '${model.name}' cannot make a copy of itself (it has no clone()), so its layers cannot be re-initialised without changing it`);
  }
}

export async function randomisation(
  model: ExplainableModel,
  method: string | MethodFunction,
  x: Tensor,
  options: RandomisationOptions = {},
): Promise<RandomisationResult> {
  const metric = 'randomisation';
  checkCommonOptions(metric, options);
  const m = metricMethod(metric, method, options.kind);
  const { order = 'cascading', seed = 0, methodOptions = {} } = options;
  if (order !== 'cascading' && order !== 'independent') throw new ArgumentError(`${metric}: order must be 'cascading' or 'independent', got ${JSON.stringify(order)}`);
  if (!Number.isInteger(seed) || seed < 0) throw new ArgumentError(`${metric}: seed must be an integer ≥ 0, got ${seed}`);
  if (typeof methodOptions !== 'object' || methodOptions === null) throw new ArgumentError(`${metric}: methodOptions must be an object`);
  const dims = imageDims(metric, model, x);
  const { n, h, w } = dims;
  if (h < 7 || w < 7) throw new ArgumentError(`${metric}: SSIM's 7×7 window needs images of at least 7×7, got ${h}×${w}`);
  const all = parameterisedLayers(model);
  const chosen = options.layers ?? all;
  if (!Array.isArray(chosen) || chosen.length === 0) throw new ArgumentError(`${metric}: layers must be a non-empty array of layer names`);
  for (const l of chosen) checkParameterised(metric, model, l, all);
  checkClonable(metric, model);
  // Top (the logits) first.
  const layers = all.filter((l) => chosen.includes(l)).reverse();
  const { classes } = await cleanScores(metric, model, x, { ...options, score: 'logit' });
  const progress = new Progress(n * (layers.length + 1), options.onProgress);

  /**
   * The method's maps of every image on `net`, reduced to H×W: |E|-like ('abs') and signed. The
   * batches' memory is the trained model's (the copies have the same shapes).
   */
  const explainAll = async (net: ExplainableModel) => {
    const abs: Float32Array[] = [];
    const signed: Float32Array[] = [];
    await explainInBatches(metric, model, m, n, imagesOf(x), classes, methodOptions, { batchSize: options.batchSize, signal: options.signal, net }, async (_, maps) => {
      const b = maps.shape[0]!;
      const kind = checkMap(metric, maps, { ...dims, n: b }, m.kind);
      const values = await mapValues(metric, maps);
      abs.push(...reduceMap(values, kind, h, w, 'abs'));
      signed.push(...reduceMap(values, kind, h, w, 'signed'));
      progress.add(b);
    });
    return { abs, signed };
  };
  const scaled = (v: Float32Array) => normalize({ data: v, shape: [1, h, w] }).data;

  const trained = await explainAll(model);
  const trainedScaled = trained.abs.map(scaled);
  const compare = (layer: string | null, randomised: string[], maps: { abs: Float32Array[]; signed: Float32Array[] }): RandomisationStep => {
    const spearmanAbs = maps.abs.map((v, i) => spearman(v.map(Math.abs), trained.abs[i]!.map(Math.abs)));
    const spearmanSigned = maps.signed.map((v, i) => spearman(v, trained.signed[i]!));
    const ssims = maps.abs.map((v, i) => ssim(scaled(v), trainedScaled[i]!, h, w));
    const avg = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    return { layer, randomised, spearmanAbs, spearmanSigned, ssim: ssims, mean: { spearmanAbs: avg(spearmanAbs), spearmanSigned: avg(spearmanSigned), ssim: avg(ssims) } };
  };
  const steps: RandomisationStep[] = [compare(null, [], trained)];

  const copy = await model.clone();
  try {
    const done: string[] = [];
    for (const layer of layers) {
      checkAborted(metric, options.signal);
      const saved = await reinitialise(copy, layer, seed, all.indexOf(layer));
      const randomised = order === 'cascading' ? [...done, layer] : [layer];
      steps.push(compare(layer, randomised, await explainAll(copy)));
      if (order === 'cascading') done.push(layer);
      else for (const [key, values] of saved) overwrite(copy.layer(layer).params.get(key)!, values);
    }
  } finally {
    copy.dispose();
  }
  return { order, layers, steps, targets: classes };
}
