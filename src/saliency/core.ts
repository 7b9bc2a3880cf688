/**
 * What every gradient method shares: choosing the score to explain, seeding the backward pass
 * with it, and running one forward + backward on a tape with the ReLU rules of the method.
 *
 * The score S_c is the model's pre-softmax output (logit) for class c, as in the papers; a model
 * that ends in softmax or sigmoid is cut before it unless `score: 'output'` is asked for.
 */
import { Tape, type Gradients, type RuleOverrides } from '../autodiff/tape.js';
import type { TraceMode } from '../autodiff/trace.js';
import { activeMethodTrace } from './trace.js';
import type { Layer } from '../nets/model.js';
import type { ExplainableModel } from '../nets/types.js';
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import type { Gpu } from '../runtime/gpu.js';
import { tensor, type Tensor } from '../runtime/tensor.js';

/** The model interface the methods use (defined in nets/types.ts, below the methods). */
export type { ExplainableModel };

/**
 * One neuron of an inner layer (Zeiler & Fergus; Springenberg et al.): channel `channel` of layer
 * `layer`, at `position`, or, without a position, at the channel's strongest activation in each
 * image (ties go to the first in row-major order). What is passed back from that neuron is chosen
 * by the `seed` option of the gradient methods (NeuronSeed).
 */
export interface NeuronTarget {
  layer: string;
  channel: number;
  /** [row, column] of one neuron; default: the channel's strongest activation in each image. */
  position?: [number, number];
}

/**
 * What a neuron target's backward pass starts from, at the chosen neuron (every other activation
 * of the layer gets 0):
 * - 'one': 1, so the method returns the neuron's gradient ∂a/∂x (Captum's NeuronGradient and
 *   NeuronGuidedBackprop). The default of vanilla, guidedBackprop and gradTimesInput.
 * - 'activation': the activation a itself, so the method returns Zeiler and Fergus's projection of
 *   the activation, a·∂a/∂x for the vanilla gradient; it scales with a. The default of deconvnet
 *   (and of `saliency features`).
 */
export type NeuronSeed = 'one' | 'activation';

/** A class index for every image, one index per image (any array-like, e.g. labels), the predicted class ('top'), or a neuron. */
export type Target = number | ArrayLike<number> | 'top' | NeuronTarget;

export type ClassTarget = Exclude<Target, NeuronTarget>;

export interface ScoreOptions {
  /** Which class (or neuron) to explain. */
  target: Target;
  /** 'logits' (default): the score before a final softmax/sigmoid. 'output': the model's output. */
  score?: 'logits' | 'output';
  /**
   * Also return the trace of every forward and backward pass the method made: the method then
   * resolves with `{ result, trace }` (see trace.ts). true: statistics; 'tensors': with the tensors,
   * freed by `trace.dispose()`. Default false: the method resolves with the map alone.
   */
  trace?: TraceMode;
}

/** The ReLU-family backward rules of each gradient method. ReLU6 follows ReLU. */
export const RULES = {
  ordinary: undefined,
  guided: { activations: { relu: 'guided', relu6: 'guided' } },
  deconv: { activations: { relu: 'deconv', relu6: 'deconv' } },
} as const satisfies Record<string, RuleOverrides | undefined>;

export type RuleSet = keyof typeof RULES;

export function checkInput(op: string, model: ExplainableModel, x: Tensor): void {
  const expected = model.inputShape;
  if (typeof x !== 'object' || x === null || !Array.isArray(x.shape)) {
    throw new ArgumentError(`${op}: x must be a Tensor of shape [N, ${expected.join(', ')}], got ${x === null ? 'null' : typeof x}`);
  }
  if (x.rank !== expected.length + 1 || expected.some((d, i) => x.shape[i + 1] !== d)) {
    throw new ShapeError(`${op}: model '${model.name}' expects x of shape [N, ${expected.join(', ')}], got ${formatShape(x.shape)}`);
  }
}

/** Resolves a class target to one class index per image, checking the range. */
export async function classIndices(op: string, target: ClassTarget, scores: Tensor): Promise<number[]> {
  const [n, k] = [scores.shape[0]!, scores.size / scores.shape[0]!];
  let out: number[];
  if (target === 'top') {
    const s = await scores.read();
    out = Array.from({ length: n }, (_, i) => {
      let best = 0;
      for (let j = 1; j < k; j++) if (s[i * k + j]! > s[i * k + best]!) best = j;
      return best;
    });
  } else if (typeof target === 'number') {
    out = new Array<number>(n).fill(target);
  } else if (isClassList(target)) {
    if (target.length !== n) throw new ArgumentError(`${op}: ${target.length} targets for a batch of ${n} images`);
    out = Array.from(target);
  } else {
    throw new ArgumentError(`${op}: target must be a class index, an array of them, 'top', or { layer, channel }`);
  }
  for (const c of out) {
    if (!Number.isInteger(c)) throw new ArgumentError(`${op}: a target class must be an integer, got ${c}`);
    if (c < 0 || c >= k) {
      throw new ArgumentError(`${op}: target class ${c} is out of range; the model has ${k} outputs (0..${k - 1})`);
    }
  }
  return out;
}

/** Whether to score the logits (`score: 'logits'`, the default) rather than the model's output. */
export function scoresLogits(op: string, score: ScoreOptions['score']): boolean {
  if (score !== undefined && score !== 'logits' && score !== 'output') {
    throw new ArgumentError(`${op}: score must be 'logits' or 'output', got ${JSON.stringify(score)}`);
  }
  return score !== 'output';
}

/** A one-hot seed [N, K]: the gradient of Σ_i S_{c_i}(x_i) with respect to the scores. */
export function oneHot(gpu: Gpu, classes: readonly number[], shape: readonly number[]): Tensor {
  const k = shape.slice(1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(classes.length * k);
  classes.forEach((c, i) => (data[i * k + c] = 1));
  return tensor(gpu, data, shape);
}

export function isNeuronTarget(t: Target): t is NeuronTarget {
  return typeof t === 'object' && t !== null && 'layer' in t;
}

/** One class index per image: an array or a typed array (e.g. a label array). */
export function isClassList(t: unknown): t is ArrayLike<number> {
  return Array.isArray(t) || ArrayBuffer.isView(t);
}

export interface GradientRun {
  tape: Tape;
  /** Gradients of the backward pass (of x, and of nothing else unless parameters are watched). */
  grads: Gradients;
  /** The scores (logits or outputs), [N, K]; for neuron targets, the layer's activation. */
  scores: Tensor;
  /** The class explained for each image (empty for neuron targets). */
  classes: number[];
}

export interface GradientRunOptions extends ScoreOptions {
  rules?: RuleOverrides;
  /** A neuron target's seed (default 'one'). */
  seed?: NeuronSeed;
  /** Layers whose activation and gradient to capture (tape hooks). */
  hooks?: string[];
  /** Back-propagate only down to the hooks (`stopAtHooks`): `run.grads` is then empty. */
  hooksOnly?: boolean;
  /**
   * Free the forward pass's tensors during the backward pass (`releaseSaved`): for callers that
   * need only `run.grads`, not `run.tape` afterwards.
   */
  releaseSaved?: boolean;
}

/**
 * One forward and one backward pass for ∂S/∂x with the given rules. The caller disposes
 * `run.tape` and `run.grads` (or calls `disposeRun`).
 */
export async function gradientRun(op: string, model: ExplainableModel, x: Tensor, o: GradientRunOptions): Promise<GradientRun> {
  checkInput(op, model, x);
  const logits = scoresLogits(op, o.score);
  const gpu = model.gpu;
  const neuron = isNeuronTarget(o.target) ? o.target : null;
  const seedMode = neuronSeedMode(op, o.seed, neuron !== null);
  if (neuron) model.layer(neuron.layer); // unknown names: an error that lists the layers
  for (const h of o.hooks ?? []) model.layer(h);
  const tape = new Tape(gpu);
  try {
    tape.watch(x);
    for (const h of [...(o.hooks ?? []), ...(neuron ? [neuron.layer] : [])]) tape.hook(h);
    // A traced method collects the trace of both passes.
    const traces = activeMethodTrace(gpu);
    const backwardLabel = `backward (${ruleLabel(o.rules)}${o.hooksOnly ? `, down to ${o.hooks!.join(', ')}` : ''})`;
    // Everything made from here on is freed on error, and only the run's parts survive success.
    return await gpu.scope(async () => {
      const out = await tape.run(() => model.forward(x, { logits }), { trace: traces?.mode });
      traces?.add(tape.takeForwardTrace(), 'forward');
      if (neuron) {
        const activation = tape.activation(neuron.layer);
        const seed = await neuronSeed(op, activation, neuron, seedMode);
        const scores = activation.reshape(activation.shape); // our own handle, before releaseSaved can free it
        const grads = await tape.backward(activation, { seed, rules: o.rules, trace: traces?.mode, releaseSaved: o.releaseSaved });
        traces?.add(grads.takeTrace(), `${backwardLabel} from ${neuron.layer}`);
        return { tape, grads, scores, classes: [] };
      }
      if (out.rank !== 2) throw new ShapeError(`${op}: the model's scores have shape ${formatShape(out.shape)}; expected [N, classes]`);
      const classes = await classIndices(op, o.target as ClassTarget, out);
      const grads = await tape.backward(out, { seed: oneHot(gpu, classes, out.shape), rules: o.rules, stopAtHooks: o.hooksOnly, trace: traces?.mode, releaseSaved: o.releaseSaved });
      traces?.add(grads.takeTrace(), backwardLabel);
      return { tape, grads, scores: out, classes };
    });
  } catch (e) {
    tape.dispose();
    throw e;
  }
}

/**
 * The `seed` option, checked: a neuron target's seed (`fallback` when not given); a class score is
 * always seeded with 1, so only 'one' may be asked for there.
 */
export function neuronSeedMode(op: string, seed: unknown, neuron: boolean, fallback: NeuronSeed = 'one'): NeuronSeed {
  if (seed === undefined) return neuron ? fallback : 'one';
  if (seed !== 'one' && seed !== 'activation') throw new ArgumentError(`${op}: seed must be 'one' or 'activation', got ${JSON.stringify(seed)}`);
  if (seed === 'activation' && !neuron) {
    throw new ArgumentError(`${op}: seed 'activation' is for neuron targets { layer, channel }; a class score is seeded with 1`);
  }
  return seed;
}

/**
 * The seed for a neuron target: at the chosen position of the chosen channel in each image (by
 * default its strongest activation, ties to the first in row-major order), 1 (mode 'one') or the
 * activation itself (mode 'activation'); every other activation 0.
 */
async function neuronSeed(op: string, a: Tensor, t: NeuronTarget, mode: NeuronSeed): Promise<Tensor> {
  const [n, c] = [a.shape[0]!, a.shape[1] ?? 1];
  const plane = a.size / (n * c);
  if (!Number.isInteger(t.channel) || t.channel < 0 || t.channel >= c) {
    throw new ArgumentError(`${op}: channel ${t.channel} is out of range for layer '${t.layer}' with ${c} channels (0..${c - 1})`);
  }
  let fixed = -1;
  if (t.position) {
    const [h, w] = [a.shape[2] ?? 1, a.shape[3] ?? 1];
    const [i, j] = t.position;
    if (a.rank !== 4 || !Number.isInteger(i) || !Number.isInteger(j) || i < 0 || j < 0 || i >= h || j >= w) {
      throw new ArgumentError(`${op}: position [${i}, ${j}] is outside layer '${t.layer}' of shape ${formatShape(a.shape)}`);
    }
    fixed = i * w + j;
  }
  const values = await a.read();
  const seed = new Float32Array(a.size);
  for (let b = 0; b < n; b++) {
    const base = (b * c + t.channel) * plane;
    let best = fixed;
    if (best < 0) {
      best = 0;
      for (let p = 1; p < plane; p++) if (values[base + p]! > values[base + best]!) best = p;
    }
    seed[base + best] = mode === 'one' ? 1 : values[base + best]!;
  }
  return tensor(a.gpu, seed, a.shape);
}

/** 'ordinary', 'guided', … : the ReLU rule a set of overrides applies, for trace labels. */
export function ruleLabel(rules: RuleOverrides | undefined): string {
  const relu = rules?.activations?.relu;
  return `${typeof relu === 'function' ? 'custom' : (relu ?? 'ordinary')} rule`;
}

/** Frees what a gradient run holds. */
export function disposeRun(run: GradientRun): void {
  run.grads.dispose();
  run.scores.dispose();
  run.tape.dispose();
}

/**
 * The layer Grad-CAM uses by default: the model's own choice where it has one (imported graphs:
 * the last spatial map before the global pooling), else the last conv or activation layer with a
 * spatial map.
 */
export function defaultCamLayer(op: string, model: ExplainableModel): string {
  if (model.defaultCamLayer) return model.defaultCamLayer;
  const spatial = (l: Layer) => l.outputShape.length === 3 && (l.outputShape[1]! > 1 || l.outputShape[2]! > 1);
  const kinds = new Set(['conv2d', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'tanh']);
  for (let i = model.layers.length - 1; i >= 0; i--) {
    const l = model.layers[i]!;
    if (kinds.has(l.type) && spatial(l)) return l.name;
  }
  throw new ArgumentError(`${op}: model '${model.name}' has no conv or activation layer with a spatial output; pass { layer }`);
}

/** Checks that `layer` exists and has a spatial output [C, h, w]. */
export function spatialLayer(op: string, model: ExplainableModel, layer: string): Layer {
  const l = model.layer(layer);
  if (l.outputShape.length !== 3) {
    throw new ArgumentError(`${op}: layer '${layer}' has output shape ${formatShape(l.outputShape)} per image; it needs a spatial map [C, h, w]`);
  }
  return l;
}
