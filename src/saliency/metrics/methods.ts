/**
 * The methods the metrics re-run (max-sensitivity, randomisation, the command line): the classifier
 * methods of the registry (../methods.ts), found by name, or a function of the caller's own; and
 * running one over a batch of images in batches within the memory budget.
 */
import { ArgumentError } from '../../runtime/errors.js';
import type { Tensor } from '../../runtime/tensor.js';
import type { ExplainableModel } from '../core.js';
import { CLASSIFIER_METHOD_NAMES, isMethodName, methodByName, type ClassifierMethod, type ClassifierSettings } from '../methods.js';
import { checkAborted, inBatches, sliceImages, type MapKind, type MetricOptions } from './common.js';

/** A method as the metrics call it: the model, a batch of images, one class per image and the method's settings. */
export type MethodFunction = (model: ExplainableModel, x: Tensor, settings: ClassifierSettings & { target: number[] }) => Promise<Tensor>;

export interface MetricMethod {
  name: string;
  /** How its maps are reduced to H×W (the registry's display kind: 'cam' is one channel, used as it is). */
  kind: MapKind;
  run: MethodFunction;
  /**
   * Whether it batches its own work within the memory budget (SmoothGrad: its noisy samples). Such
   * a method is called one image at a time (see `explainInBatches`).
   */
  batchesItself: boolean;
  /** Tells apart the costs of methods in the memory cache: the registry name, or one per function. */
  id: string;
}

/** The methods the metrics know by name: the registry's classifier methods, in its order. */
export const METRIC_METHODS: readonly string[] = CLASSIFIER_METHOD_NAMES;

const functionIds = new WeakMap<MethodFunction, string>();
let nextFunctionId = 0;

/**
 * Whether a registry method batches its own work within the memory budget: it reads both `samples`
 * and `batchSize` (SmoothGrad, whose noisy samples run in batches that fit).
 */
export function batchesItself(entry: Pick<ClassifierMethod, 'options'>): boolean {
  return entry.options.includes('samples') && entry.options.includes('batchSize');
}

/**
 * Settings that make one image's work the smallest a registry method allows, for measuring the
 * memory an image takes in a batch of images: a method that batches its own samples runs one
 * sample in one batch ({} for the others). Its own batches then fill what the batch leaves.
 */
export function smallestSettings(entry: Pick<ClassifierMethod, 'options'>): Partial<ClassifierSettings> {
  return batchesItself(entry) ? { samples: 1, batchSize: 1 } : {};
}

/**
 * A registry method by name, or a method function (whose maps are reduced as `kind` says, default
 * 'attribution'). An unknown name is an error naming the metric and listing the methods.
 */
export function metricMethod(metric: string, method: string | MethodFunction, kind?: MapKind): MetricMethod {
  if (typeof method === 'function') {
    let id = functionIds.get(method);
    if (id === undefined) functionIds.set(method, (id = `function ${nextFunctionId++}`));
    return { name: method.name || 'method', kind: kind ?? 'attribution', run: method, batchesItself: false, id };
  }
  const entry = isMethodName(method) ? methodByName(method) : null;
  if (entry?.kind === 'detector') throw new ArgumentError(`${metric}: ${entry.name} explains object detectors; the metrics score classifier maps (methods: ${METRIC_METHODS.join(', ')})`);
  if (!entry) {
    throw new ArgumentError(`${metric}: unknown method ${JSON.stringify(method)}; methods: ${METRIC_METHODS.join(', ')}`);
  }
  return { name: entry.name, kind: kind ?? entry.display, run: (model, x, settings) => entry.run(model, x, settings), batchesItself: batchesItself(entry), id: entry.name };
}

export interface ExplainBatchesOptions extends Pick<MetricOptions, 'batchSize' | 'signal'> {
  /** The model the method explains (default: `model`; randomisation's re-initialised copies). */
  net?: ExplainableModel;
  /** What an image is in messages (default 'image'). */
  unit?: string;
}

/**
 * The method's maps of `total` images in batches within the memory budget (see `inBatches`):
 * `images(start, count)` makes images start..start+count−1 (a new tensor, disposed here) and
 * `classes[i]` is image i's class; `onBatch(start, maps)` gets each batch's maps, disposed after
 * it returns. The memory of one image is measured once per model, method, settings and input shape.
 *
 * A method that batches its own work (SmoothGrad) is called one image at a time instead, whatever
 * `batchSize` says: it fills the budget with its own batches (of noisy samples), and its map of
 * an image depends on that image alone, not on the images batched with it (SmoothGrad's noise
 * stream starts afresh for each call's first image, as when the image is explained alone).
 */
export async function explainInBatches(
  metric: string,
  model: ExplainableModel,
  method: MetricMethod,
  total: number,
  images: (start: number, count: number) => Promise<Tensor>,
  classes: readonly number[],
  settings: Omit<ClassifierSettings, 'target'>,
  o: ExplainBatchesOptions,
  onBatch: (start: number, maps: Tensor) => Promise<void>,
): Promise<void> {
  const net = o.net ?? model;
  const explain = async (start: number, count: number) => {
    const x = await images(start, count);
    try {
      return await method.run(net, x, { ...settings, target: classes.slice(start, start + count) });
    } finally {
      x.dispose();
    }
  };
  const batch = async (start: number, count: number) => {
    const maps = await explain(start, count);
    try {
      await onBatch(start, maps);
    } finally {
      maps.dispose();
    }
  };
  if (method.batchesItself) {
    for (let i = 0; i < total; i++) {
      checkAborted(metric, o.signal);
      await batch(i, 1);
    }
    return;
  }
  const measure = async () => (await explain(0, 1)).dispose();
  const signature = `maps|${method.id}|${JSON.stringify(settings)}`;
  await inBatches(metric, model, total, o, { unit: o.unit ?? 'image', signature, measure }, batch);
}

/** Images start..start+count−1 of x, as a new tensor: `images` for explainInBatches. */
export function imagesOf(x: Tensor): (start: number, count: number) => Promise<Tensor> {
  return async (start, count) => sliceImages(x, start, count);
}
