/**
 * Differentiable piecewise-linear activations from ONNX: Clip, HardSigmoid, HardSwish and PRelu.
 * Each saves its input x, since its derivative is written in x (see src/kernels/piecewise.ts).
 *
 * Guided backprop and DeconvNet change only the backward rule of ReLU and ReLU6 (the activations
 * that pass exactly the positive part): the guided rule is defined for ReLU, as its gradient masked
 * by the sign of the signal from above, and DeconvNet's as a ReLU applied to that signal. These
 * ops are not ReLUs, so they always use their ordinary gradient (their rule can still be replaced
 * for one call through `rules.ops`, by op name). Clip with bounds (0, +∞) and (0, 6) *is* a ReLU
 * and a ReLU6, so `clip` records those as the activation op and the ReLU rules apply to them.
 */
import type { Tensor } from '../../runtime/tensor.js';
import {
  HARD_SWISH_ALPHA,
  HARD_SWISH_BETA,
  clipBounds,
  piecewiseBackward,
  piecewiseForward,
  prelu as preluKernel,
  preluBackward,
  type PiecewiseActivation,
} from '../../kernels/piecewise.js';
import { sumToShape } from '../../kernels/reduce.js';
import { defineOp, type BackwardRule } from '../tape.js';
import { relu, relu6 } from './activation.js';

interface PiecewiseSaved {
  x: Tensor;
  act: PiecewiseActivation;
  a: number;
  b: number;
}

const piecewiseRule: BackwardRule<Readonly<PiecewiseSaved>> = async (dy, ctx) => {
  if (!ctx.needsGrad[0]) return [null];
  const { x, act, a, b } = ctx.saved;
  return [await piecewiseBackward(act, dy, x, a, b)];
};

const clipDef = defineOp<PiecewiseSaved>('clip', piecewiseRule);
const hardSigmoidDef = defineOp<PiecewiseSaved>('hardSigmoid', piecewiseRule);
const hardSwishDef = defineOp<PiecewiseSaved>('hardSwish', piecewiseRule);

async function piecewise(def: typeof clipDef, act: PiecewiseActivation, x: Tensor, a: number, b: number): Promise<Tensor> {
  const y = await piecewiseForward(act, x, a, b);
  def.record([x], y, { x, act, a, b });
  return y;
}

/**
 * ONNX Clip: min(max(x, min), max), a missing (or infinite) bound being no bound; gradient
 * g·1[min < x < max]. Recorded as 'clip', except that Clip(0, ∞) is `relu` and Clip(0, 6) is
 * `relu6` (op 'activation'), so that guided backprop and DeconvNet treat them as the ReLUs they are.
 */
export async function clip(x: Tensor, min?: number, max?: number): Promise<Tensor> {
  const [lo, hi] = clipBounds(min, max);
  if (min === 0 && (max === undefined || max === Infinity)) return relu(x);
  if (min === 0 && max === 6) return relu6(x);
  return piecewise(clipDef, 'clip', x, lo, hi);
}

/** ONNX HardSigmoid: max(0, min(1, alpha·x + beta)) (defaults 0.2, 0.5), recorded as 'hardSigmoid'. */
export function hardSigmoid(x: Tensor, alpha = 0.2, beta = 0.5): Promise<Tensor> {
  return piecewise(hardSigmoidDef, 'hardsigmoid', x, alpha, beta);
}

/** ONNX HardSwish: x · max(0, min(1, x/6 + 1/2)), recorded as 'hardSwish'. */
export function hardSwish(x: Tensor): Promise<Tensor> {
  return piecewise(hardSwishDef, 'hardswish', x, HARD_SWISH_ALPHA, HARD_SWISH_BETA);
}

const preluDef = defineOp<{ x: Tensor; slope: Tensor }>('prelu', async (dy, ctx) => {
  const { x, slope } = ctx.saved;
  const [needX, needSlope] = ctx.needsGrad;
  const { dx, slopeTerms } = await preluBackward(dy, x, slope, needSlope);
  try {
    const dslope = slopeTerms ? await sumToShape(slopeTerms, slope.shape) : null;
    if (needX) return [dx, dslope];
    dx.dispose();
    return [null, dslope];
  } catch (e) {
    dx.dispose();
    throw e;
  } finally {
    slopeTerms?.dispose();
  }
});

/**
 * ONNX PRelu: x > 0 ? x : slope·x, the slope broadcast to x (e.g. [C, 1, 1] against NCHW, or a
 * single value). Recorded as 'prelu' (inputs x, slope); both get gradients.
 */
export async function prelu(x: Tensor, slope: Tensor): Promise<Tensor> {
  const y = await preluKernel(x, slope);
  preluDef.record([x, slope], y, { x, slope });
  return y;
}
