/**
 * The gradient family: vanilla gradient, DeconvNet, guided backpropagation and Gradient × Input.
 * Each returns the raw, signed attribution with the input's shape; display steps come later.
 */
import { mul } from '../kernels/elementwise.js';
import { ArgumentError } from '../runtime/errors.js';
import type { Tensor } from '../runtime/tensor.js';
import { RULES, disposeRun, gradientRun, neuronSeedMode, isNeuronTarget, type ExplainableModel, type NeuronSeed, type RuleSet, type ScoreOptions } from './core.js';
import { withMethodTrace, type TraceOn, type Traced } from './trace.js';
import { methodJob } from './job.js';

/** The device a model runs on, for the method queue (undefined for a bad argument, reported there). */
export const deviceOf = (model: ExplainableModel | null | undefined) => (model && typeof model === 'object' ? model.gpu : undefined);

/** Options of the input-gradient methods. */
export interface GradientOptions extends ScoreOptions {
  /**
   * For a neuron target: start the backward pass from 1 at the neuron ('one': the neuron's
   * gradient ∂a/∂x) or from its activation ('activation': Zeiler and Fergus's projection). Default
   * 'one' for vanilla, guidedBackprop and gradTimesInput; 'activation' for deconvnet.
   */
  seed?: NeuronSeed;
}

/** ∂S/∂x through the network with the given ReLU rules (a neuron target seeded as `seed` says). */
export async function inputGradient(op: string, model: ExplainableModel, x: Tensor, options: GradientOptions, rules: RuleSet, defaultSeed: NeuronSeed = 'one'): Promise<Tensor> {
  const seed = neuronSeedMode(op, options.seed, isNeuronTarget(options.target), defaultSeed);
  // Only the input's gradient is kept: the forward pass's tensors go as the backward pass passes them.
  const run = await gradientRun(op, model, x, { ...options, seed, rules: RULES[rules], releaseSaved: true });
  try {
    return run.grads.take(x);
  } finally {
    disposeRun(run);
  }
}

/**
 * Simonyan et al. 2014: g = ∂S_c/∂x, one ordinary backward pass. For a neuron target, ∂a/∂x
 * (`seed: 'activation'` for the projection a·∂a/∂x).
 */
export function vanilla(model: ExplainableModel, x: Tensor, options: GradientOptions & { trace: TraceOn }): Promise<Traced>;
export function vanilla(model: ExplainableModel, x: Tensor, options: GradientOptions & { trace?: false }): Promise<Tensor>;
export function vanilla(model: ExplainableModel, x: Tensor, options: GradientOptions): Promise<Tensor | Traced>;
export function vanilla(model: ExplainableModel, x: Tensor, options: GradientOptions): Promise<Tensor | Traced> {
  return methodJob('vanilla', deviceOf(model), x, () => withMethodTrace(model.gpu, 'vanilla', options.trace, () => inputGradient('vanilla', model, x, options, 'ordinary')));
}

/**
 * Zeiler & Fergus 2014: the signal goes back through the same filters (transposed convolution),
 * max pools are undone through their recorded switches, and every ReLU passes relu(signal from
 * above), ignoring the forward input's sign. A neuron target is projected from its activation
 * (`seed: 'activation'`, the default here; 'one' starts from 1 instead).
 */
export function deconvnet(model: ExplainableModel, x: Tensor, options: GradientOptions & { trace: TraceOn }): Promise<Traced>;
export function deconvnet(model: ExplainableModel, x: Tensor, options: GradientOptions & { trace?: false }): Promise<Tensor>;
export function deconvnet(model: ExplainableModel, x: Tensor, options: GradientOptions): Promise<Tensor | Traced>;
export function deconvnet(model: ExplainableModel, x: Tensor, options: GradientOptions): Promise<Tensor | Traced> {
  return methodJob('deconvnet', deviceOf(model), x, () => withMethodTrace(model.gpu, 'deconvnet', options.trace, () => inputGradient('deconvnet', model, x, options, 'deconv', 'activation')));
}

/**
 * Springenberg et al. 2015: at every ReLU, g_in = g_out · 1[x > 0] · 1[g_out > 0] — the ordinary
 * rule and DeconvNet's together. Every other layer uses its ordinary gradient. For a neuron target,
 * the guided gradient of the neuron (`seed: 'activation'` for the projection of its activation).
 */
export function guidedBackprop(model: ExplainableModel, x: Tensor, options: GradientOptions & { trace: TraceOn }): Promise<Traced>;
export function guidedBackprop(model: ExplainableModel, x: Tensor, options: GradientOptions & { trace?: false }): Promise<Tensor>;
export function guidedBackprop(model: ExplainableModel, x: Tensor, options: GradientOptions): Promise<Tensor | Traced>;
export function guidedBackprop(model: ExplainableModel, x: Tensor, options: GradientOptions): Promise<Tensor | Traced> {
  return methodJob('guidedBackprop', deviceOf(model), x, () => withMethodTrace(model.gpu, 'guidedBackprop', options.trace, () => inputGradient('guidedBackprop', model, x, options, 'guided')));
}

export interface GradTimesInputOptions extends GradientOptions {
  /** The gradient to multiply by x: 'vanilla' (default) or 'guidedBackprop'. */
  base?: 'vanilla' | 'guidedBackprop';
}

/** x ⊙ ∂S_c/∂x, signed. */
export function gradTimesInput(model: ExplainableModel, x: Tensor, options: GradTimesInputOptions & { trace: TraceOn }): Promise<Traced>;
export function gradTimesInput(model: ExplainableModel, x: Tensor, options: GradTimesInputOptions & { trace?: false }): Promise<Tensor>;
export function gradTimesInput(model: ExplainableModel, x: Tensor, options: GradTimesInputOptions): Promise<Tensor | Traced>;
export function gradTimesInput(model: ExplainableModel, x: Tensor, options: GradTimesInputOptions): Promise<Tensor | Traced> {
  return methodJob('gradTimesInput', deviceOf(model), x, () => withMethodTrace(model.gpu, 'gradTimesInput', options.trace, async () => {
    if (options.base !== undefined && options.base !== 'vanilla' && options.base !== 'guidedBackprop') {
      throw new ArgumentError(`gradTimesInput: base must be 'vanilla' or 'guidedBackprop', got ${JSON.stringify(options.base)}`);
    }
    const g = await inputGradient('gradTimesInput', model, x, options, options.base === 'guidedBackprop' ? 'guided' : 'ordinary');
    try {
      return await mul(x, g);
    } finally {
      g.dispose();
    }
  }));
}
