/**
 * Piecewise-linear activations that ONNX adds beside the ReLU family, and their gradients (from
 * the input x; at the kinks the derivative is that of the flat side, as the strict inequalities say):
 *
 *   Clip(min, max)         y = min(max(x, min), max)          y' = 1[min < x < max]
 *   HardSigmoid(α, β)      y = max(0, min(1, α·x + β))        y' = α·1[0 < α·x + β < 1]
 *   HardSwish              y = x · HardSigmoid(x; 1/6, 1/2)   y' = HardSigmoid(x) + x·α·1[0 < α·x + β < 1]
 *
 *   PRelu(slope)           y = x > 0 ? x : slope·x            dx = g·(x > 0 ? 1 : slope), dslope = Σ g·x·1[x ≤ 0]
 *
 * Clip, HardSigmoid and HardSwish run on the elementwise unary kernel forward and on
 * shaders/unary_backward.wgsl backward, their parameters in uniforms, so one pipeline serves every
 * value. PRelu, whose slope is a broadcast tensor, has its own shaders/prelu.wgsl.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { assertFinite, assertFloat, linearWorkgroups } from './common.js';
import { unary } from './elementwise.js';

export type PiecewiseActivation = 'clip' | 'hardsigmoid' | 'hardswish';

const FORWARD: Record<PiecewiseActivation, string> = {
  // min(max()) rather than clamp(): with min > max, ONNX Runtime gives max, while WGSL's clamp is then undefined.
  clip: 'min(max(x, alpha), beta)',
  hardsigmoid: 'max(0.0, min(1.0, alpha * x + beta))',
  hardswish: 'x * max(0.0, min(1.0, alpha * x + beta))',
};

const DERIVATIVE: Record<PiecewiseActivation, string> = {
  clip: 'select(0.0, 1.0, x > alpha && x < beta)',
  hardsigmoid: 'select(0.0, alpha, alpha * x + beta > 0.0 && alpha * x + beta < 1.0)',
  hardswish: 'max(0.0, min(1.0, alpha * x + beta)) + select(0.0, alpha * x, alpha * x + beta > 0.0 && alpha * x + beta < 1.0)',
};

/** The largest float32: a missing or infinite Clip bound (uniforms must be finite). */
const F32_MAX = 3.4028234663852886e38;

/** ONNX's HardSwish parameters. */
export const HARD_SWISH_ALPHA = 1 / 6;
export const HARD_SWISH_BETA = 0.5;

/** Clip's bounds as the kernels take them: −∞/+∞ (or undefined) become ∓F32_MAX. */
export function clipBounds(min: number | undefined, max: number | undefined): [number, number] {
  const lo = min === undefined || min === -Infinity ? -F32_MAX : min;
  const hi = max === undefined || max === Infinity ? F32_MAX : max;
  assertFinite('clip', { min: lo, max: hi });
  return [lo, hi];
}

function params(act: PiecewiseActivation, a: number, b: number): [number, number] {
  if (act === 'clip') return clipBounds(a, b);
  assertFinite(act, { alpha: a, beta: b });
  return [a, b];
}

/** y = act(x; a, b) elementwise: Clip (a = min, b = max), HardSigmoid (a = α, b = β), HardSwish (α, β). */
export async function piecewiseForward(act: PiecewiseActivation, x: Tensor, a: number, b: number): Promise<Tensor> {
  const expr = FORWARD[act];
  if (!expr) throw new ArgumentError(`piecewise activation: unknown '${act}'; known: ${Object.keys(FORWARD).join(', ')}`);
  const [p, q] = params(act, a, b);
  return unary(expr, x, p, q, act);
}

/** gradIn = gradOut · act'(x; a, b), x being the forward's input. */
export async function piecewiseBackward(act: PiecewiseActivation, gradOut: Tensor, x: Tensor, a: number, b: number): Promise<Tensor> {
  const expr = DERIVATIVE[act];
  if (!expr) throw new ArgumentError(`piecewise activation backward: unknown '${act}'; known: ${Object.keys(DERIVATIVE).join(', ')}`);
  const name = `${act} backward`;
  assertFloat(name, 'gradOut', gradOut);
  assertFloat(name, 'x', x);
  if (gradOut.size !== x.size) {
    throw new ShapeError(`${name}: gradOut ${formatShape(gradOut.shape)} and x ${formatShape(x.shape)} must have the same number of elements`);
  }
  const [p, q] = params(act, a, b);
  const gpu = x.gpu;
  const kernel = await gpu.kernel('unary_backward', { DERIVATIVE: expr });
  const out = empty(gpu, x.shape);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms().u32(x.size).f32(p, q),
    buffers: [gradOut, x, out],
    workgroups: linearWorkgroups(gpu, x.size, 256),
  });
  return out;
}

/** ONNX Clip: min(max(x, min), max); a missing bound is no bound. */
export async function clip(x: Tensor, min?: number, max?: number): Promise<Tensor> {
  const [lo, hi] = clipBounds(min, max);
  return piecewiseForward('clip', x, lo, hi);
}
/** ONNX HardSigmoid: max(0, min(1, α·x + β)); ONNX's defaults α = 0.2, β = 0.5. */
export const hardSigmoid = (x: Tensor, alpha = 0.2, beta = 0.5) => piecewiseForward('hardsigmoid', x, alpha, beta);
/** ONNX HardSwish: x · max(0, min(1, x/6 + 1/2)). */
export const hardSwish = (x: Tensor) => piecewiseForward('hardswish', x, HARD_SWISH_ALPHA, HARD_SWISH_BETA);

const MAX_RANK = 6;

/** Checks that `slope` broadcasts to x's shape without growing it; returns its strides in x's rank-6 shape. */
function preluGeometry(op: string, xShape: readonly number[], slopeShape: readonly number[]): { shape: number[]; strides: number[] } {
  if (xShape.length > MAX_RANK) throw new ShapeError(`${op}: rank ${xShape.length} > ${MAX_RANK} is not supported (${formatShape(xShape)})`);
  const lead = xShape.length - slopeShape.length;
  const ok = lead >= 0 && slopeShape.every((d, i) => d === 1 || d === xShape[lead + i]);
  if (!ok) throw new ShapeError(`${op}: slope ${formatShape(slopeShape)} does not broadcast to x ${formatShape(xShape)}`);
  const shape = [...new Array<number>(MAX_RANK - xShape.length).fill(1), ...xShape];
  const strides = new Array<number>(MAX_RANK).fill(0);
  let s = 1;
  for (let i = slopeShape.length - 1; i >= 0; i--) {
    if (slopeShape[i] !== 1) strides[MAX_RANK - slopeShape.length + i] = s;
    s *= slopeShape[i]!;
  }
  return { shape, strides };
}

function preluUniforms(n: number, g: { shape: number[]; strides: number[] }): Uniforms {
  return new Uniforms()
    .vec4u(g.shape.slice(0, 4))
    .vec4u(g.shape.slice(4))
    .vec4u(g.strides.slice(0, 4))
    .vec4u(g.strides.slice(4))
    .u32(n);
}

/** ONNX PRelu: y = x > 0 ? x : slope·x, slope broadcast to x (e.g. [C, 1, 1] for NCHW, or [1]). */
export async function prelu(x: Tensor, slope: Tensor): Promise<Tensor> {
  const op = 'prelu';
  assertFloat(op, 'x', x);
  assertFloat(op, 'slope', slope);
  const geo = preluGeometry(op, x.shape, slope.shape);
  const gpu = x.gpu;
  const kernel = await gpu.kernel('prelu', { SLOPE_GRAD: false }, 'forward');
  const y = empty(gpu, x.shape);
  gpu.dispatch(kernel, { uniforms: preluUniforms(x.size, geo), buffers: [x, slope, y], workgroups: linearWorkgroups(gpu, x.size, 256) });
  return y;
}

/**
 * PRelu's gradients from the forward's x and slope and the output gradient: dx = g·(x > 0 ? 1 : slope),
 * and, when `slopeGrad`, the per-element terms g·x·1[x ≤ 0] (same shape as x) that sum to dslope.
 */
export async function preluBackward(gradOut: Tensor, x: Tensor, slope: Tensor, slopeGrad = false): Promise<{ dx: Tensor; slopeTerms: Tensor | null }> {
  const op = 'prelu backward';
  assertFloat(op, 'gradOut', gradOut);
  assertFloat(op, 'x', x);
  assertFloat(op, 'slope', slope);
  if (gradOut.size !== x.size) {
    throw new ShapeError(`${op}: gradOut ${formatShape(gradOut.shape)} and x ${formatShape(x.shape)} must have the same number of elements`);
  }
  const geo = preluGeometry(op, x.shape, slope.shape);
  const gpu = x.gpu;
  const kernel = await gpu.kernel('prelu', { SLOPE_GRAD: slopeGrad }, 'backward');
  const dx = empty(gpu, x.shape);
  let terms: Tensor | null = null;
  try {
    if (slopeGrad) terms = empty(gpu, x.shape);
  } catch (e) {
    dx.dispose();
    throw e;
  }
  gpu.dispatch(kernel, {
    uniforms: preluUniforms(x.size, geo),
    buffers: terms ? [x, slope, dx, gradOut, terms] : [x, slope, dx, gradOut],
    workgroups: linearWorkgroups(gpu, x.size, 256),
  });
  return { dx, slopeTerms: terms };
}
