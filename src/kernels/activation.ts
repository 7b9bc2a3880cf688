/**
 * Activation kernels: forward (out = act(x)) and the backward rules, computed from the forward
 * pass's output y so that fused kernels (conv+bias+relu, linear+relu) need to save only y.
 *
 * Each backward rule is a named entry point of shaders/activation_backward.wgsl, `<act>_<rule>`
 * (e.g. `relu_guided`), where its formula is written next to the code. The ReLU family has three:
 *   ordinary  g · 1[x > 0]                  (relu6: g · 1[0 < x < 6])
 *   guided    g · 1[x > 0] · 1[g > 0]       (Springenberg et al.)
 *   deconv    max(g, 0)                     (Zeiler & Fergus; the forward sign is ignored)
 * with strict inequalities (relu'(0) = 0); x > 0 is read from y > 0.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { ACTIVATIONS, ACTIVATION_WGSL, assertFinite, assertFloat, linearWorkgroups, type Activation } from './common.js';

/** An activation that has a backward rule (every activation but 'none'). */
export type ActivationName = Exclude<Activation, 'none'>;

/**
 * The backward rules of a ReLU or ReLU6. Rule names say what happens at one ReLU; the methods that
 * use them are named after their papers: `vanilla` (and Grad-CAM, …) use 'ordinary',
 * `guidedBackprop` uses 'guided', and `deconvnet` uses 'deconv'. The method is more than the rule
 * (DeconvNet also unpools through max-pool switches and runs convolutions transposed, which are
 * the ordinary gradients of those layers), so 'deconv' names only the ReLU part.
 */
export type ReluRule = 'ordinary' | 'guided' | 'deconv';

/**
 * The backward rules each activation has: the entry points `<activation>_<rule>` of
 * shaders/activation_backward.wgsl. A rule name outside this table is a compile-time error in
 * `tape.backward(…, { rules })` and `activationBackward`.
 */
export interface ActivationRules {
  relu: ReluRule;
  relu6: ReluRule;
  leakyrelu: 'ordinary';
  sigmoid: 'ordinary';
  tanh: 'ordinary';
}

/** A backward rule name of activation A (of any activation when A is not given). */
export type ActivationRuleName<A extends ActivationName = ActivationName> = ActivationRules[A];

/** The same table as values, in the shader's order. */
export const ACTIVATION_RULES: { readonly [A in ActivationName]: readonly ActivationRules[A][] } = {
  relu: ['ordinary', 'guided', 'deconv'],
  relu6: ['ordinary', 'guided', 'deconv'],
  leakyrelu: ['ordinary'],
  sigmoid: ['ordinary'],
  tanh: ['ordinary'],
};

/** True if `rule` is a backward rule of activation `act` (for names that come from outside TypeScript). */
export function isActivationRule<A extends ActivationName>(act: A, rule: string): rule is ActivationRules[A] {
  return Object.hasOwn(ACTIVATION_RULES, act) && (ACTIVATION_RULES[act] as readonly string[]).includes(rule);
}

/**
 * Throws a clear error for an unknown activation name, a non-finite alpha, or a negative leaky
 * slope (with alpha < 0 the sign of y no longer tells the sign of x, which the backward rule needs).
 */
export function checkActivation(op: string, act: string, alpha: number): asserts act is Activation {
  if (!(ACTIVATIONS as readonly string[]).includes(act)) {
    throw new ArgumentError(`${op}: unknown activation '${act}'; known: ${ACTIVATIONS.join(', ')}`);
  }
  assertFinite(op, { alpha });
  if (act === 'leakyrelu' && alpha < 0) {
    throw new ArgumentError(`${op}: the leaky ReLU slope alpha must be ≥ 0, got ${alpha}`);
  }
}

/** out = act(x), elementwise. `alpha` is the leaky ReLU slope. Returns a new tensor. */
export async function activationForward(x: Tensor, act: Activation, alpha = 0.01): Promise<Tensor> {
  const name = `activation(${act})`;
  assertFloat(name, 'x', x);
  checkActivation('activation', act, alpha);
  const gpu = x.gpu;
  const kernel = await gpu.kernel('activation', { ACTIVATION: ACTIVATION_WGSL[act] });
  const out = empty(gpu, x.shape);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms().u32(x.size).f32(alpha),
    buffers: [x, out],
    workgroups: linearWorkgroups(gpu, x.size, 256),
  });
  return out;
}

/**
 * gradIn = rule(gradOut, y) for activation `act` and backward rule `rule` (an entry point of
 * shaders/activation_backward.wgsl), where y is the activation's forward output. Returns a new
 * tensor of y's shape.
 */
export async function activationBackward<A extends ActivationName>(
  act: A,
  rule: ActivationRules[A],
  gradOut: Tensor,
  y: Tensor,
  alpha = 0.01,
): Promise<Tensor> {
  if (!Object.hasOwn(ACTIVATION_RULES, act)) {
    throw new ArgumentError(`activation backward: unknown activation '${act}'; known: ${Object.keys(ACTIVATION_RULES).join(', ')}`);
  }
  if (!isActivationRule(act, rule)) {
    throw new ArgumentError(`activation backward: unknown rule '${rule}' for ${act}; known: ${ACTIVATION_RULES[act].join(', ')}`);
  }
  const name = `${act} backward (${rule})`;
  assertFloat(name, 'gradOut', gradOut);
  assertFloat(name, 'y', y);
  if (gradOut.size !== y.size) {
    throw new ShapeError(`${name}: gradOut ${formatShape(gradOut.shape)} and y ${formatShape(y.shape)} must have the same number of elements`);
  }
  assertFinite(name, { alpha });
  const gpu = y.gpu;
  const kernel = await gpu.kernel('activation_backward', {}, `${act}_${rule}`);
  const out = empty(gpu, y.shape);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms().u32(y.size).f32(alpha),
    buffers: [gradOut, y, out],
    workgroups: linearWorkgroups(gpu, y.size, 256),
  });
  return out;
}

/** ReLU, ordinary gradient: g · 1[y > 0]. */
export const reluBackwardOrdinary = (gradOut: Tensor, y: Tensor) => activationBackward('relu', 'ordinary', gradOut, y);
/** ReLU, guided backprop: g · 1[y > 0] · 1[g > 0]. */
export const reluBackwardGuided = (gradOut: Tensor, y: Tensor) => activationBackward('relu', 'guided', gradOut, y);
/** ReLU, DeconvNet: max(g, 0); y only fixes the shape. */
export const reluBackwardDeconv = (gradOut: Tensor, y: Tensor) => activationBackward('relu', 'deconv', gradOut, y);
/** ReLU6, ordinary gradient: g · 1[0 < y < 6]. */
export const relu6BackwardOrdinary = (gradOut: Tensor, y: Tensor) => activationBackward('relu6', 'ordinary', gradOut, y);
/** ReLU6, guided backprop: g · 1[0 < y < 6] · 1[g > 0]. */
export const relu6BackwardGuided = (gradOut: Tensor, y: Tensor) => activationBackward('relu6', 'guided', gradOut, y);
/** ReLU6, DeconvNet: max(g, 0). */
export const relu6BackwardDeconv = (gradOut: Tensor, y: Tensor) => activationBackward('relu6', 'deconv', gradOut, y);
/** Leaky ReLU: g · (y > 0 ? 1 : alpha). */
export const leakyReluBackward = (gradOut: Tensor, y: Tensor, alpha = 0.01) => activationBackward('leakyrelu', 'ordinary', gradOut, y, alpha);
/** Sigmoid: g · y · (1 − y). */
export const sigmoidBackward = (gradOut: Tensor, y: Tensor) => activationBackward('sigmoid', 'ordinary', gradOut, y);
/** Tanh: g · (1 − y²). */
export const tanhBackward = (gradOut: Tensor, y: Tensor) => activationBackward('tanh', 'ordinary', gradOut, y);
