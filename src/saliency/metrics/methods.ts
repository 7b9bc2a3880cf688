/**
 * The methods the metrics can re-run (max-sensitivity, randomisation, the command line), found by
 * name in one place. (To be replaced by the project's method registry, src/saliency/methods.ts.)
 */
import { ArgumentError } from '../../runtime/errors.js';
import type { Tensor } from '../../runtime/tensor.js';
import { cam, gradCam, guidedGradCam } from '../cam.js';
import type { ExplainableModel } from '../core.js';
import { deconvnet, gradTimesInput, guidedBackprop, vanilla } from '../gradients.js';
import { smoothGrad } from '../smoothgrad.js';
import type { MapKind } from './common.js';

/** A method as the metrics call it: one class per image, plus the method's own options. */
export type MethodFunction = (model: ExplainableModel, x: Tensor, options: { target: number[] } & Record<string, unknown>) => Promise<Tensor>;

export interface MetricMethod {
  name: string;
  /** How its maps are reduced to H×W ('cam': one channel, used as it is). */
  kind: MapKind;
  run: MethodFunction;
}

const METHODS: Readonly<Record<string, MetricMethod>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, MetricMethod>, {
    vanilla: { name: 'vanilla', kind: 'attribution', run: vanilla },
    deconvnet: { name: 'deconvnet', kind: 'attribution', run: deconvnet },
    guidedBackprop: { name: 'guidedBackprop', kind: 'attribution', run: guidedBackprop },
    gradTimesInput: { name: 'gradTimesInput', kind: 'attribution', run: gradTimesInput },
    smoothGrad: { name: 'smoothGrad', kind: 'attribution', run: smoothGrad },
    cam: { name: 'cam', kind: 'cam', run: cam },
    gradCam: { name: 'gradCam', kind: 'cam', run: gradCam },
    guidedGradCam: { name: 'guidedGradCam', kind: 'attribution', run: guidedGradCam },
  } satisfies Record<string, MetricMethod>),
);

/** The names `metricMethod` knows, in the README's order. */
export const METRIC_METHODS: readonly string[] = Object.keys(METHODS);

/**
 * A method by name, or a method function (whose maps are reduced as `kind` says, default
 * 'attribution'). An unknown name is an error naming the metric and listing the methods.
 */
export function metricMethod(metric: string, method: string | MethodFunction, kind?: MapKind): MetricMethod {
  if (typeof method === 'function') return { name: method.name || 'method', kind: kind ?? 'attribution', run: method };
  const found = typeof method === 'string' ? METHODS[method] : undefined;
  if (!found) throw new ArgumentError(`${metric}: unknown method ${JSON.stringify(method)}; methods: ${METRIC_METHODS.join(', ')}`);
  return kind ? { ...found, kind } : found;
}
