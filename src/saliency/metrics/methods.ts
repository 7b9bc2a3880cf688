/**
 * The methods the metrics re-run (max-sensitivity, randomisation, the command line): the classifier
 * methods of the registry (../methods.ts), found by name, or a function of the caller's own.
 */
import { ArgumentError } from '../../runtime/errors.js';
import type { Tensor } from '../../runtime/tensor.js';
import type { ExplainableModel } from '../core.js';
import { CLASSIFIER_METHOD_NAMES, isMethodName, methodByName, type ClassifierSettings } from '../methods.js';
import type { MapKind } from './common.js';

/** A method as the metrics call it: the model, a batch of images, one class per image and the method's settings. */
export type MethodFunction = (model: ExplainableModel, x: Tensor, settings: ClassifierSettings & { target: number[] }) => Promise<Tensor>;

export interface MetricMethod {
  name: string;
  /** How its maps are reduced to H×W (the registry's display kind: 'cam' is one channel, used as it is). */
  kind: MapKind;
  run: MethodFunction;
}

/** The methods the metrics know by name: the registry's classifier methods, in its order. */
export const METRIC_METHODS: readonly string[] = CLASSIFIER_METHOD_NAMES;

/**
 * A registry method by name, or a method function (whose maps are reduced as `kind` says, default
 * 'attribution'). An unknown name is an error naming the metric and listing the methods.
 */
export function metricMethod(metric: string, method: string | MethodFunction, kind?: MapKind): MetricMethod {
  if (typeof method === 'function') return { name: method.name || 'method', kind: kind ?? 'attribution', run: method };
  const entry = isMethodName(method) ? methodByName(method) : null;
  if (entry?.kind === 'detector') throw new ArgumentError(`${metric}: ${entry.name} explains object detectors; the metrics score classifier maps (methods: ${METRIC_METHODS.join(', ')})`);
  if (!entry) {
    throw new ArgumentError(`${metric}: unknown method ${JSON.stringify(method)}; methods: ${METRIC_METHODS.join(', ')}`);
  }
  return { name: entry.name, kind: kind ?? entry.display, run: (model, x, settings) => entry.run(model, x, settings) };
}
