/**
 * Activation kernels: forward (out = act(x)) and the backward rules, computed from the forward
 * pass's output y so that fused kernels (conv+bias+relu, linear+relu) need to save only y.
 *
 * ReLU-family rules (strict inequalities, relu'(0) = 0):
 *   ordinary  g · 1[y > 0]                  (relu6: g · 1[0 < y < 6])
 *   guided    g · 1[y > 0] · 1[g > 0]       (Springenberg et al.; relu6 also needs y < 6)
 *   deconv    max(g, 0)                     (Zeiler & Fergus; the forward sign is ignored)
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { ACTIVATIONS, ACTIVATION_WGSL, assertFinite, assertFloat, linearWorkgroups, type Activation } from './common.js';

/** Backward variants of the activations that have them. */
export type ReluVariant = 'ordinary' | 'guided' | 'deconv';

/** WGSL expressions in `g` (gradient above), `y` (forward output) and `alpha`, per activation and variant. */
export const ACTIVATION_BACKWARD_WGSL: Readonly<Record<Exclude<Activation, 'none'>, Readonly<Record<string, string>>>> = {
  relu: {
    ordinary: 'select(0.0, g, y > 0.0)',
    guided: 'select(0.0, g, y > 0.0 && g > 0.0)',
    deconv: 'max(g, 0.0)',
  },
  relu6: {
    ordinary: 'select(0.0, g, y > 0.0 && y < 6.0)',
    guided: 'select(0.0, g, y > 0.0 && y < 6.0 && g > 0.0)',
    deconv: 'max(g, 0.0)',
  },
  // y > 0 exactly when x > 0, because alpha ≥ 0 is enforced in the forward pass.
  leakyrelu: { ordinary: 'g * select(alpha, 1.0, y > 0.0)' },
  sigmoid: { ordinary: 'g * y * (1.0 - y)' },
  tanh: { ordinary: 'g * (1.0 - y * y)' },
};

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
 * gradIn = rule(gradOut, y) for activation `act` and backward variant `variant`, where y is the
 * activation's forward output. Returns a new tensor of y's shape.
 */
export async function activationBackward(
  act: Exclude<Activation, 'none'>,
  variant: string,
  gradOut: Tensor,
  y: Tensor,
  alpha = 0.01,
): Promise<Tensor> {
  const rules = ACTIVATION_BACKWARD_WGSL[act];
  if (!rules) throw new ArgumentError(`activation backward: unknown activation '${act}'; known: ${Object.keys(ACTIVATION_BACKWARD_WGSL).join(', ')}`);
  const rule = rules[variant];
  if (rule === undefined) {
    throw new ArgumentError(`activation backward: unknown rule '${variant}' for ${act}; known: ${Object.keys(rules).join(', ')}`);
  }
  const name = `${act} backward (${variant})`;
  assertFloat(name, 'gradOut', gradOut);
  assertFloat(name, 'y', y);
  if (gradOut.size !== y.size) {
    throw new ShapeError(`${name}: gradOut ${formatShape(gradOut.shape)} and y ${formatShape(y.shape)} must have the same number of elements`);
  }
  assertFinite(name, { alpha });
  const gpu = y.gpu;
  const kernel = await gpu.kernel('activation_backward', { RULE: rule });
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
