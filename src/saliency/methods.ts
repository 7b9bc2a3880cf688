/**
 * The method registry: every saliency method once, with its name, label, options, display kind and
 * run function. The CLI (`saliency explain --method`), `<saliency-view method="…">`, the demo page,
 * the bench and the metrics read this table; none keeps its own list of methods or a switch over
 * them. (Modelled on pytorch-grad-cam's `methods` dict.)
 *
 *   import { saliency } from 'webgpu-saliency';
 *   const map = await saliency.runMethod('gradCam', model, x, { target: 'top', layer: 'relu4' });
 *   for (const m of saliency.METHODS) console.log(m.name, m.label, m.display, m.options);
 *   saliency.methodByName('guidedBackprop').reluRule; // 'guided'
 *
 * - `METHODS`: the entries, in the order of the methods table (docs/methods.md).
 * - `METHOD_NAMES`, `CLASSIFIER_METHOD_NAMES`: their names; `isMethodName(s)` tells a name.
 * - `methodByName(name)`: the entry, or an ArgumentError that lists the methods.
 * - `runMethod(name, model, x, settings)`: runs one method with the settings front ends collect
 *   (`ClassifierSettings`); each method reads the settings its entry lists in `options`, besides
 *   `target`, `score` and `trace`. Returns the raw map, as the method's own function does, or
 *   `{ result, trace }` with `trace: true` (see trace.ts).
 *
 * Classifier methods take a model (`ExplainableModel`) and a class or neuron target. D-RISE is the
 * one black-box method for object detectors: its entry has `kind: 'detector'`, and it takes a
 * detector function (any async function from an image batch to detection lists) and the detection
 * to explain as its target (`DetectorSettings`). Front ends that explain classifiers list
 * `CLASSIFIER_METHOD_NAMES`; those that offer D-RISE too test `kind`.
 */
import type { ReluRule } from '../kernels/activation.js';
import { ArgumentError } from '../runtime/errors.js';
import type { Tensor } from '../runtime/tensor.js';
import { cam, camFeatureLayer, gradCam, guidedGradCam, type Upsample } from './cam.js';
import { spatialLayer, type ExplainableModel, type NeuronSeed, type ScoreOptions } from './core.js';
import { drise, type Detector, type DriseOptions, type DriseResult } from './drise.js';
import { deconvnet, gradTimesInput, guidedBackprop, vanilla } from './gradients.js';
import { smoothGrad } from './smoothgrad.js';
import { withMethodTrace, type TraceOn, type Traced } from './trace.js';

/** How a map is drawn (`renderOverlay`'s `kind`). */
export type DisplayKind =
  /** Signed, with the input's shape: |·| max over channels, clipped at the 99th percentile. */
  | 'attribution'
  /** One non-negative channel (CAM, Grad-CAM, D-RISE): drawn as it is, min-max scaled. */
  | 'cam';

/**
 * What front ends collect for a classifier method: the target and score, and the options of every
 * method. A method reads `target`, `score`, `onProgress`, `signal` and the options its entry lists.
 */
export interface ClassifierSettings extends ScoreOptions {
  /**
   * vanilla, guidedBackprop, deconvnet with a neuron target: start from 1 at the neuron ('one', its
   * gradient) or from its activation ('activation', the projection). Default: 'one', but
   * 'activation' for deconvnet (NeuronSeed).
   */
  neuronSeed?: NeuronSeed;
  /** Grad-CAM and Guided Grad-CAM: the feature layer (default: the last spatial conv/activation). */
  layer?: string;
  /** CAM and Grad-CAM: how the map reaches the input size (default 'bilinear'). */
  upsample?: Upsample;
  /** SmoothGrad: noisy samples per image (default 50). */
  samples?: number;
  /** SmoothGrad: σ as a fraction of the image's value range (default 0.15). */
  noiseLevel?: number;
  /** SmoothGrad: the noise seed (default 0). */
  seed?: number;
  /** SmoothGrad: noisy copies per GPU batch ('auto', the default: as many as fit the memory budget). */
  batchSize?: number | 'auto';
  /** Called as long methods progress (SmoothGrad: samples done of the total). */
  onProgress?: (done: number, total: number) => void;
  /** Stops long methods between batches with a CancelledError. */
  signal?: AbortSignal;
}

/** A setting a classifier method may read besides the target and score. */
export type ClassifierOption = 'neuronSeed' | 'layer' | 'upsample' | 'samples' | 'noiseLevel' | 'seed' | 'batchSize';

/** What D-RISE reads: DriseOptions (the detection to explain as `target`). */
export type DetectorSettings = DriseOptions;

/** A setting D-RISE reads besides the target. */
export type DetectorOption = 'masks' | 'gridSize' | 'p' | 'seed' | 'batchSize' | 'normalize';

export type ClassifierMethodName = 'vanilla' | 'deconvnet' | 'guidedBackprop' | 'gradTimesInput' | 'smoothGrad' | 'cam' | 'gradCam' | 'guidedGradCam';
export type DetectorMethodName = 'drise';
export type MethodName = ClassifierMethodName | DetectorMethodName;

interface MethodInfo<N extends MethodName> {
  readonly name: N;
  /** A readable name for labels, e.g. 'Guided backprop'. */
  readonly label: string;
  /** The paper, e.g. 'Springenberg et al. 2015'. */
  readonly paper: string;
  /** How its maps are drawn. */
  readonly display: DisplayKind;
  /** What the long-running methods count in `onProgress` ('samples', 'masks'); null otherwise. */
  readonly progressUnit: string | null;
  /** What a model needs beyond being a classifier (or detector), in words; null when nothing. */
  readonly requires: string | null;
}

/** A method that explains a classifier's class score (or an inner neuron). */
export interface ClassifierMethod<N extends ClassifierMethodName = ClassifierMethodName> extends MethodInfo<N> {
  readonly kind: 'classifier';
  /** The settings it reads besides `target` and `score` (the CLI flags and attributes it uses). */
  readonly options: readonly ClassifierOption[];
  /**
   * The ReLU rule of its input-gradient backward pass (shaders/activation_backward.wgsl): 'ordinary'
   * for the plain gradient, 'guided', 'deconv'. null for methods without one (CAM, Grad-CAM).
   */
  readonly reluRule: ReluRule | null;
  /** Whether it explains neuron targets `{ layer, channel }` as well as classes. */
  readonly neuronTargets: boolean;
  /**
   * Why this model cannot be explained by this method whatever the settings (CAM without a GAP →
   * linear head), or null. Front ends that run "all" methods skip those with a reason.
   */
  unsupported(model: ExplainableModel): string | null;
  /** Throws an ArgumentError, before any GPU work, for settings this model rejects (an unknown --layer). */
  check(model: ExplainableModel, settings: Partial<ClassifierSettings>): void;
  /** Runs the method: the raw map (see the method's own function for its shape). */
  run(model: ExplainableModel, x: Tensor, settings: ClassifierSettings): Promise<Tensor>;
}

/** A black-box method for object detectors (D-RISE). */
export interface DetectorMethod<N extends DetectorMethodName = DetectorMethodName> extends MethodInfo<N> {
  readonly kind: 'detector';
  readonly options: readonly DetectorOption[];
  readonly reluRule: null;
  readonly neuronTargets: false;
  run(detector: Detector, x: Tensor, settings: DetectorSettings): Promise<DriseResult>;
}

export type MethodEntry = ClassifierMethod | DetectorMethod;

/** The target and score of the settings; the trace, if any, is collected around the whole run by runMethod. */
const score = (s: ClassifierSettings): ScoreOptions & { trace?: false } => ({ target: s.target, score: s.score });

/** Checks --layer (or the layer attribute) for the methods that read it: it must have a spatial map. */
const checkCamLayer = (name: string) => (model: ExplainableModel, s: Partial<ClassifierSettings>) => {
  if (s.layer !== undefined) spatialLayer(name, model, s.layer);
};
const nothing = () => undefined;
const supported = () => null;

function gradientMethod<N extends ClassifierMethodName>(
  name: N,
  label: string,
  paper: string,
  reluRule: ReluRule,
  neuronTargets: boolean,
  run: ClassifierMethod<N>['run'],
): ClassifierMethod<N> {
  const options: ClassifierOption[] = neuronTargets ? ['neuronSeed'] : [];
  return { name, label, paper, kind: 'classifier', display: 'attribution', options, reluRule, neuronTargets, progressUnit: null, requires: null, unsupported: supported, check: nothing, run };
}

/** Every method, in the order of the methods table. */
export const METHODS = [
  gradientMethod('vanilla', 'Vanilla gradient', 'Simonyan et al. 2014', 'ordinary', true, (m, x, s) => vanilla(m, x, { ...score(s), seed: s.neuronSeed })),
  gradientMethod('deconvnet', 'DeconvNet', 'Zeiler & Fergus 2014', 'deconv', true, (m, x, s) => deconvnet(m, x, { ...score(s), seed: s.neuronSeed })),
  gradientMethod('guidedBackprop', 'Guided backprop', 'Springenberg et al. 2015', 'guided', true, (m, x, s) => guidedBackprop(m, x, { ...score(s), seed: s.neuronSeed })),
  gradientMethod('gradTimesInput', 'Gradient × input', 'Shrikumar et al. 2016', 'ordinary', false, (m, x, s) => gradTimesInput(m, x, score(s))),
  {
    name: 'smoothGrad',
    label: 'SmoothGrad',
    paper: 'Smilkov et al. 2017',
    kind: 'classifier',
    display: 'attribution',
    options: ['samples', 'noiseLevel', 'seed', 'batchSize'],
    reluRule: 'ordinary',
    neuronTargets: false,
    progressUnit: 'samples',
    requires: null,
    unsupported: supported,
    check: nothing,
    run: (m, x, s) =>
      smoothGrad(m, x, { ...score(s), samples: s.samples, noiseLevel: s.noiseLevel, seed: s.seed, batchSize: s.batchSize, onProgress: s.onProgress, signal: s.signal }),
  } satisfies ClassifierMethod<'smoothGrad'>,
  {
    name: 'cam',
    label: 'CAM',
    paper: 'Zhou et al. 2016',
    kind: 'classifier',
    display: 'cam',
    options: ['upsample'],
    reluRule: null,
    neuronTargets: false,
    progressUnit: null,
    requires: 'a global-average-pooling head (conv features → GAP → one linear layer), as the bundled fashion-gap has',
    unsupported: (m) => {
      try {
        camFeatureLayer(m);
        return null;
      } catch (e) {
        if (e instanceof ArgumentError) return e.message;
        throw e;
      }
    },
    check: nothing,
    run: (m, x, s) => cam(m, x, { ...score(s), upsample: s.upsample }),
  } satisfies ClassifierMethod<'cam'>,
  {
    name: 'gradCam',
    label: 'Grad-CAM',
    paper: 'Selvaraju et al. 2017',
    kind: 'classifier',
    display: 'cam',
    options: ['layer', 'upsample'],
    reluRule: null,
    neuronTargets: false,
    progressUnit: null,
    requires: null,
    unsupported: supported,
    check: checkCamLayer('gradCam'),
    run: (m, x, s) => gradCam(m, x, { ...score(s), layer: s.layer, upsample: s.upsample }),
  } satisfies ClassifierMethod<'gradCam'>,
  {
    name: 'guidedGradCam',
    label: 'Guided Grad-CAM',
    paper: 'Selvaraju et al. 2017',
    kind: 'classifier',
    display: 'attribution',
    options: ['layer'],
    reluRule: 'guided',
    neuronTargets: false,
    progressUnit: null,
    requires: null,
    unsupported: supported,
    check: checkCamLayer('guidedGradCam'),
    run: (m, x, s) => guidedGradCam(m, x, { ...score(s), layer: s.layer }),
  } satisfies ClassifierMethod<'guidedGradCam'>,
  {
    name: 'drise',
    label: 'D-RISE',
    paper: 'Petsiuk et al. 2021',
    kind: 'detector',
    display: 'cam',
    options: ['masks', 'gridSize', 'p', 'seed', 'batchSize', 'normalize'],
    reluRule: null,
    neuronTargets: false,
    progressUnit: 'masks',
    requires: 'an object detector',
    run: (detector, x, s) => drise(detector, x, s),
  } satisfies DetectorMethod<'drise'>,
] as const satisfies readonly MethodEntry[];

/** Every method's name, in the table's order. */
export const METHOD_NAMES: readonly MethodName[] = METHODS.map((m) => m.name);

/** The methods that explain classifiers (what `saliency explain --method all` runs). */
export const CLASSIFIER_METHOD_NAMES: readonly ClassifierMethodName[] = METHODS.filter((m): m is Extract<(typeof METHODS)[number], { kind: 'classifier' }> => m.kind === 'classifier').map((m) => m.name);

const byName: ReadonlyMap<string, MethodEntry> = new Map(METHODS.map((m) => [m.name, m as MethodEntry]));

/** True if `name` is a method's name (for names that come from outside TypeScript). */
export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && byName.has(name);
}

/** The entry of method `name`; an ArgumentError that lists the methods for any other string. */
export function methodByName<N extends ClassifierMethodName>(name: N): ClassifierMethod<N>;
export function methodByName<N extends DetectorMethodName>(name: N): DetectorMethod<N>;
export function methodByName(name: string): MethodEntry;
export function methodByName(name: string): MethodEntry {
  const m = byName.get(name);
  if (!m) throw new ArgumentError(`unknown method ${JSON.stringify(name)}; methods: ${METHOD_NAMES.join(', ')}`);
  return m;
}

/**
 * Runs method `name` with the front ends' settings: a classifier method on `model`, or D-RISE on
 * `detector` (a function from an image batch to detection lists). Resolves with the raw map, or,
 * with `trace: true` or 'tensors' (classifier methods), with `{ result, trace }`.
 */
export function runMethod(name: ClassifierMethodName, model: ExplainableModel, x: Tensor, settings: ClassifierSettings & { trace: TraceOn }): Promise<Traced>;
export function runMethod(name: ClassifierMethodName, model: ExplainableModel, x: Tensor, settings: ClassifierSettings & { trace?: false }): Promise<Tensor>;
export function runMethod(name: ClassifierMethodName, model: ExplainableModel, x: Tensor, settings: ClassifierSettings): Promise<Tensor | Traced>;
export function runMethod(name: DetectorMethodName, detector: Detector, x: Tensor, settings: DetectorSettings): Promise<DriseResult>;
export function runMethod(name: MethodName, subject: ExplainableModel | Detector, x: Tensor, settings: ClassifierSettings | DetectorSettings): Promise<Tensor | Traced>;
export async function runMethod(name: MethodName, subject: ExplainableModel | Detector, x: Tensor, settings: ClassifierSettings | DetectorSettings): Promise<Tensor | Traced> {
  const m = methodByName(name);
  if (m.kind === 'detector') {
    if (typeof subject !== 'function') throw new ArgumentError(`${name}: explains object detectors; pass a detector function (images → detections), not a model`);
    if ((settings as { trace?: unknown }).trace) throw new ArgumentError(`${name}: the detector is a black box to D-RISE; there is no tape to trace`);
    return m.run(subject, x, settings as DetectorSettings);
  }
  if (typeof subject === 'function') throw new ArgumentError(`${name}: explains classifiers; pass a model, not a detector function`);
  const s = settings as ClassifierSettings;
  m.check(subject, s);
  return withMethodTrace(subject.gpu, name, s.trace, () => m.run(subject, x, s));
}
