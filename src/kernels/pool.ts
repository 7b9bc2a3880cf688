/**
 * Pooling kernels (NCHW): max pooling with switches and its unpooling (the max-pool gradient, which
 * is exactly DeconvNet's "unpooling with switches"), average pooling and its gradient, and global
 * average pooling and its gradient.
 *
 * Output size along an axis (PyTorch's rule, ONNX's since opset 19 and ONNX Runtime's at every
 * opset, with asymmetric padding allowed for TF 'SAME' and ONNX pads), for a kernel of k taps
 * dilated by d, i.e. spanning e = (k − 1)·d + 1 inputs:
 *   floor mode: out = floor((in + padBefore + padAfter − e) / s) + 1
 *   ceil mode:  out = ceil((in + padBefore + padAfter − e) / s) + 1, minus one if the last window
 *               would start at or beyond in + padBefore (i.e. in the right padding).
 * With that rule every window holds at least one real input unless a padding is ≥ the kernel's
 * span (or dilation skips every real input); such windows give 0 (max: switch −1; avg: 0) and
 * receive no gradient.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { assertFloat, assertRank, linearWorkgroups } from './common.js';
import { max } from './reduce.js';

export interface Pool2dParams {
  /** Window size, [kh, kw] or one value for both. */
  kernel: number | [number, number];
  /** Step between windows; default = kernel. */
  stride?: number | [number, number];
  /** Spacing between the taps of a window (ONNX dilations), [vertical, horizontal] or both. Default 1. */
  dilation?: number | [number, number];
  /** One value, [vertical, horizontal], or [top, bottom, left, right] (asymmetric, for TF 'SAME'). */
  padding?: number | [number, number] | [number, number, number, number];
  /** Round the output size up (PyTorch ceil_mode). Default false. */
  ceilMode?: boolean;
}

export interface AvgPool2dParams extends Pool2dParams {
  /** Divide by the whole window including padding (PyTorch default, true), or only by the real inputs (false, TF 'SAME'). */
  countIncludePad?: boolean;
}

/** Normalised pooling geometry for one input size. */
export interface PoolGeometry {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  /** Dilation (spacing of the taps). */
  dh: number;
  dw: number;
  /** Padding top, bottom, left, right. */
  pt: number;
  pb: number;
  pl: number;
  pr: number;
  ceilMode: boolean;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
}

function pair(op: string, name: string, v: number | readonly number[] | undefined, fallback: [number, number]): [number, number] {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2) return [v[0]!, v[1]!];
  throw new ArgumentError(`${op}: ${name} must be a number or [vertical, horizontal], got ${JSON.stringify(v)}`);
}

function poolOutputSize(op: string, axis: string, n: number, k: number, d: number, s: number, before: number, after: number, ceil: boolean): number {
  const extent = (k - 1) * d + 1;
  const span = n + before + after - extent;
  if (span < 0) {
    const kernel = d === 1 ? `${k}-wide kernel` : `${k}-tap kernel dilated by ${d} (${extent} wide)`;
    throw new ShapeError(`${op}: the ${kernel} is larger than the padded input along ${axis} (${n} + ${before} + ${after} padding = ${n + before + after})`);
  }
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (out - 1) * s >= n + before) out--;
  return out;
}

/** Validates `params` for an input of spatial size inH × inW and returns the full geometry. */
export function poolGeometry(op: string, inH: number, inW: number, params: Pool2dParams): PoolGeometry {
  if (!params || typeof params !== 'object' || params.kernel === undefined) {
    throw new ArgumentError(`${op}: params must be an object with at least { kernel }`);
  }
  const [kh, kw] = pair(op, 'kernel', params.kernel, [0, 0]);
  const [sh, sw] = pair(op, 'stride', params.stride, [kh, kw]);
  const [dh, dw] = pair(op, 'dilation', params.dilation, [1, 1]);
  let pt: number, pb: number, pl: number, pr: number;
  const pad = params.padding ?? 0;
  if (Array.isArray(pad) && pad.length === 4) [pt, pb, pl, pr] = pad as [number, number, number, number];
  else {
    const [ph, pw] = pair(op, 'padding (or [top, bottom, left, right])', pad, [0, 0]);
    [pt, pb, pl, pr] = [ph, ph, pw, pw];
  }
  for (const [name, v] of [['kernel', kh], ['kernel', kw], ['stride', sh], ['stride', sw], ['dilation', dh], ['dilation', dw]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`${op}: ${name} must be a positive integer, got ${v}`);
  }
  for (const v of [pt, pb, pl, pr]) {
    if (!Number.isInteger(v) || v < 0) throw new ArgumentError(`${op}: padding must be non-negative integers, got ${JSON.stringify(params.padding)}`);
  }
  const ceilMode = params.ceilMode ?? false;
  const outH = poolOutputSize(op, 'height', inH, kh, dh, sh, pt, pb, ceilMode);
  const outW = poolOutputSize(op, 'width', inW, kw, dw, sw, pl, pr, ceilMode);
  return { kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, ceilMode, inH, inW, outH, outW };
}

/** The output shape [N, C, outH, outW] of pooling an input of shape [N, C, H, W] with `params`. */
export function poolOutputShape(inputShape: readonly number[], params: Pool2dParams): number[] {
  if (inputShape.length !== 4) throw new ShapeError(`pool: input shape must be [N, C, H, W], got ${formatShape(inputShape)}`);
  const g = poolGeometry('pool', inputShape[2]!, inputShape[3]!, params);
  return [inputShape[0]!, inputShape[1]!, g.outH, g.outW];
}


function poolUniforms(n: number, g: PoolGeometry, countIncludePad = true): Uniforms {
  return new Uniforms()
    .u32(n)
    .i32(g.inH, g.inW, g.outH, g.outW, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, g.pb, g.pr)
    .u32(countIncludePad ? 1 : 0);
}

/** Checks a gradient dy [N, C, outH, outW] against the pooled input shape; returns the geometry. */
function backwardGeometry(op: string, dy: Tensor, inputShape: readonly number[], params: Pool2dParams): PoolGeometry {
  assertFloat(op, 'dy', dy);
  assertRank(op, 'dy', dy, 4);
  if (inputShape.length !== 4 || inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ShapeError(`${op}: input shape must be [N, C, H, W] of positive integers, got ${formatShape(inputShape)}`);
  }
  const g = poolGeometry(op, inputShape[2]!, inputShape[3]!, params);
  const expected = [inputShape[0]!, inputShape[1]!, g.outH, g.outW];
  if (dy.shape.some((d, i) => d !== expected[i])) {
    throw new ShapeError(`${op}: dy ${formatShape(dy.shape)} does not match the pooled shape ${formatShape(expected)} of input ${formatShape(inputShape)}`);
  }
  return g;
}

/**
 * Max pooling that also returns the switches: for every output, the flat index iy·W + ix of the
 * chosen input in its plane (int32, same shape as the output). Padding never wins; ties go to the
 * first index in row-major window order.
 */
export async function maxPool2dWithSwitches(x: Tensor, params: Pool2dParams): Promise<{ output: Tensor; switches: Tensor }> {
  const op = 'maxPool2d';
  assertFloat(op, 'x', x);
  assertRank(op, 'x', x, 4);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const g = poolGeometry(op, h, w, params);
  const gpu = x.gpu;
  const kernel = await gpu.kernel('pool', {}, 'max_forward');
  const shape = [n, c, g.outH, g.outW];
  const output = empty(gpu, shape);
  const switches = empty(gpu, shape, 'int32');
  gpu.dispatch(kernel, {
    uniforms: poolUniforms(output.size, g),
    buffers: [x, output, switches],
    workgroups: linearWorkgroups(gpu, output.size, 256),
  });
  return { output, switches };
}

/** Max pooling without the switches. */
export async function maxPool2d(x: Tensor, params: Pool2dParams): Promise<Tensor> {
  const { output, switches } = await maxPool2dWithSwitches(x, params);
  switches.dispose();
  return output;
}

/**
 * Unpooling with switches, the gradient of max pooling: input position p receives the sum of dy
 * over the windows whose switch points to p (several when windows overlap), zero elsewhere.
 * `params` must be those of the forward pooling (they say which windows contain each position).
 */
export async function maxUnpool2d(dy: Tensor, switches: Tensor, inputShape: readonly number[], params: Pool2dParams): Promise<Tensor> {
  const op = 'maxUnpool2d';
  const g = backwardGeometry(op, dy, inputShape, params);
  if (switches.dtype !== 'int32') throw new ShapeError(`${op}: switches must be int32, got ${switches.dtype}`);
  if (switches.rank !== 4 || switches.shape.some((d, i) => d !== dy.shape[i])) {
    throw new ShapeError(`${op}: switches ${formatShape(switches.shape)} must have the shape of dy ${formatShape(dy.shape)}`);
  }
  const gpu = dy.gpu;
  const kernel = await gpu.kernel('pool', {}, 'max_unpool');
  const dx = empty(gpu, inputShape);
  gpu.dispatch(kernel, {
    uniforms: poolUniforms(dx.size, g),
    buffers: [dy, dx, switches],
    workgroups: linearWorkgroups(gpu, dx.size, 256),
  });
  return dx;
}

/** Average pooling; see AvgPool2dParams.countIncludePad for the divisor. */
export async function avgPool2d(x: Tensor, params: AvgPool2dParams): Promise<Tensor> {
  const op = 'avgPool2d';
  assertFloat(op, 'x', x);
  assertRank(op, 'x', x, 4);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const g = poolGeometry(op, h, w, params);
  const gpu = x.gpu;
  const kernel = await gpu.kernel('pool', {}, 'avg_forward');
  const out = empty(gpu, [n, c, g.outH, g.outW]);
  gpu.dispatch(kernel, {
    uniforms: poolUniforms(out.size, g, params.countIncludePad ?? true),
    buffers: [x, out],
    workgroups: linearWorkgroups(gpu, out.size, 256),
  });
  return out;
}

/** Gradient of avgPool2d with respect to its input of shape xShape. */
export async function avgPool2dBackward(dy: Tensor, xShape: readonly number[], params: AvgPool2dParams): Promise<Tensor> {
  const op = 'avgPool2dBackward';
  const g = backwardGeometry(op, dy, xShape, params);
  const gpu = dy.gpu;
  const kernel = await gpu.kernel('pool', {}, 'avg_backward');
  const dx = empty(gpu, xShape);
  gpu.dispatch(kernel, {
    uniforms: poolUniforms(dx.size, g, params.countIncludePad ?? true),
    buffers: [dy, dx],
    workgroups: linearWorkgroups(gpu, dx.size, 256),
  });
  return dx;
}

function globalUniforms(n: number, planes: number, size: number): Uniforms {
  return new Uniforms().u32(n, planes, size).f32(1 / size);
}

/** Global average pooling: [N, C, H, W] → [N, C]. */
export async function globalAvgPool(x: Tensor): Promise<Tensor> {
  const op = 'globalAvgPool';
  assertFloat(op, 'x', x);
  assertRank(op, 'x', x, 4);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const gpu = x.gpu;
  const wg = h * w > 1024 ? 256 : 64;
  const kernel = await gpu.kernel('pool_global', { WG: wg }, 'forward');
  const out = empty(gpu, [n, c]);
  gpu.dispatch(kernel, {
    uniforms: globalUniforms(0, n * c, h * w),
    buffers: [x, out],
    workgroups: linearWorkgroups(gpu, n * c, 1),
  });
  return out;
}

/** Gradient of globalAvgPool: dx[n, c, h, w] = dy[n, c] / (H·W). */
export async function globalAvgPoolBackward(dy: Tensor, xShape: readonly number[]): Promise<Tensor> {
  const op = 'globalAvgPoolBackward';
  assertFloat(op, 'dy', dy);
  if (xShape.length !== 4 || xShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ShapeError(`${op}: input shape must be [N, C, H, W] of positive integers, got ${formatShape(xShape)}`);
  }
  const [n, c, h, w] = xShape as [number, number, number, number];
  if (dy.rank !== 2 || dy.shape[0] !== n || dy.shape[1] !== c) {
    throw new ShapeError(`${op}: dy ${formatShape(dy.shape)} must be [N, C] = ${formatShape([n, c])} for input ${formatShape(xShape)}`);
  }
  const gpu = dy.gpu;
  const kernel = await gpu.kernel('pool_global', { WG: 256 }, 'backward');
  const dx = empty(gpu, xShape);
  gpu.dispatch(kernel, {
    uniforms: globalUniforms(dx.size, n * c, h * w),
    buffers: [dy, dx],
    workgroups: linearWorkgroups(gpu, dx.size, 256),
  });
  return dx;
}

/** The spatial axes 2… of an [N, C, spatial…] tensor (rank ≥ 3), for the global poolings. */
export function spatialAxes(op: string, x: Tensor): number[] {
  if (x.rank < 3) throw new ShapeError(`${op}: x must be [N, C, H, W] (or [N, C, spatial…]), got ${formatShape(x.shape)}`);
  return [...Array(x.rank - 2).keys()].map((i) => i + 2);
}

/**
 * Global max pooling: [N, C, H, W] (or any [N, C, spatial…]) → [N, C], the maximum of each plane.
 * Its gradient (the differentiable op, through `max`'s first argmax) goes to the first maximal
 * element in row-major order, as max pooling's switches do.
 */
export async function globalMaxPool(x: Tensor): Promise<Tensor> {
  const op = 'globalMaxPool';
  assertFloat(op, 'x', x);
  return max(x, spatialAxes(op, x));
}
