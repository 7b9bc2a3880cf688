/**
 * 2-D resize of the last two dimensions (bilinear or nearest) and its exact adjoint, the gradient.
 * The coordinate maps are documented in shaders/resize.wgsl. By default pixel centres are aligned
 * (align_corners = false, half-pixel centres), as PyTorch's F.interpolate(align_corners=False) and
 * TF's half_pixel_centers; Grad-CAM needs this alignment.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { assertFloat, linearWorkgroups } from './common.js';

export type ResizeMode = 'bilinear' | 'nearest';

export interface ResizeOptions {
  /** Default 'bilinear'. */
  mode?: ResizeMode;
  /** Map corner pixel centres onto each other instead of half-pixel centres. Default false. */
  alignCorners?: boolean;
  /**
   * With alignCorners false: half-pixel centres (true, the default) or TF's legacy map
   * src = o·in/out (false: TF resize with align_corners = half_pixel_centers = false).
   */
  halfPixelCenters?: boolean;
}

interface Axis {
  a: number;
  b: number;
  p: number;
  q: number;
  r: number;
}

/** src = o·a + b for bilinear, i = (o·p + q) / r for nearest; see shaders/resize.wgsl. */
function axisMap(nIn: number, nOut: number, alignCorners: boolean, halfPixel = true): Axis {
  if (alignCorners) {
    const a = nOut > 1 ? (nIn - 1) / (nOut - 1) : 0;
    return nOut > 1 ? { a, b: 0, p: 2 * (nIn - 1), q: nOut - 1, r: 2 * (nOut - 1) } : { a, b: 0, p: 0, q: 0, r: 1 };
  }
  const a = nIn / nOut;
  if (!halfPixel) return { a, b: 0, p: nIn, q: 0, r: nOut }; // TF legacy: floor(o·in/out)
  return { a, b: a / 2 - 0.5, p: 2 * nIn, q: nIn, r: 2 * nOut };
}

function checkOptions(op: string, options: ResizeOptions): { mode: ResizeMode; alignCorners: boolean; halfPixel: boolean } {
  const mode = options.mode ?? 'bilinear';
  if (mode !== 'bilinear' && mode !== 'nearest') {
    throw new ArgumentError(`${op}: mode must be 'bilinear' or 'nearest', got ${JSON.stringify(mode)}`);
  }
  return { mode, alignCorners: options.alignCorners ?? false, halfPixel: options.halfPixelCenters ?? true };
}

function checkSize(op: string, size: readonly number[]): [number, number] {
  if (!Array.isArray(size) || size.length !== 2 || size.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ArgumentError(`${op}: output size must be [height, width] of positive integers, got ${JSON.stringify(size)}`);
  }
  return [size[0]!, size[1]!];
}

function resizeUniforms(op: string, n: number, inH: number, inW: number, outH: number, outW: number, alignCorners: boolean, halfPixel = true): Uniforms {
  // The exact nearest index (o·p + q) / r is computed in u32.
  if (2 * (Math.max(inH, inW) + 1) * (Math.max(outH, outW) + 1) >= 2 ** 32) {
    throw new ArgumentError(`${op}: sizes ${inH}×${inW} → ${outH}×${outW} are too large`);
  }
  const y = axisMap(inH, outH, alignCorners, halfPixel);
  const x = axisMap(inW, outW, alignCorners, halfPixel);
  return new Uniforms()
    .u32(n, inH, inW, outH, outW)
    .f32(y.a, y.b, x.a, x.b)
    .u32(y.p, y.q, y.r, x.p, x.q, x.r);
}

/** Resizes the last two dimensions of x ([..., H, W], e.g. NCHW) to [outH, outW]. */
export async function resize(x: Tensor, size: readonly [number, number] | readonly number[], options: ResizeOptions = {}): Promise<Tensor> {
  const op = 'resize';
  assertFloat(op, 'x', x);
  if (x.rank < 2) throw new ShapeError(`${op}: x must have rank ≥ 2 ([..., H, W]), got ${formatShape(x.shape)}`);
  const { mode, alignCorners, halfPixel } = checkOptions(op, options);
  const [outH, outW] = checkSize(op, size);
  const inH = x.shape[x.rank - 2]!;
  const inW = x.shape[x.rank - 1]!;
  const gpu = x.gpu;
  const outShape = [...x.shape.slice(0, -2), outH, outW];
  const n = outShape.reduce((a, b) => a * b, 1);
  const uniforms = resizeUniforms(op, n, inH, inW, outH, outW, alignCorners, halfPixel);
  const kernel = await gpu.kernel('resize', { NEAREST: mode === 'nearest' }, 'forward');
  const out = empty(gpu, outShape);
  gpu.dispatch(kernel, { uniforms, buffers: [x, out], workgroups: linearWorkgroups(gpu, n, 256) });
  return out;
}

/**
 * Gradient of `resize`: dy has the resized shape [..., outH, outW]; returns dx of shape inShape.
 * It is the exact adjoint: <resize(x), y> = <x, resizeBackward(y)>.
 */
export async function resizeBackward(dy: Tensor, inShape: readonly number[], options: ResizeOptions = {}): Promise<Tensor> {
  const op = 'resizeBackward';
  assertFloat(op, 'dy', dy);
  const { mode, alignCorners, halfPixel } = checkOptions(op, options);
  if (inShape.length < 2 || inShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ShapeError(`${op}: input shape must be [..., H, W] of positive integers, got ${formatShape(inShape)}`);
  }
  if (dy.rank !== inShape.length || inShape.slice(0, -2).some((d, i) => d !== dy.shape[i])) {
    throw new ShapeError(`${op}: dy ${formatShape(dy.shape)} does not match input shape ${formatShape(inShape)} in its leading dimensions`);
  }
  const inH = inShape[inShape.length - 2]!;
  const inW = inShape[inShape.length - 1]!;
  const outH = dy.shape[dy.rank - 2]!;
  const outW = dy.shape[dy.rank - 1]!;
  const gpu = dy.gpu;
  const n = inShape.reduce((a, b) => a * b, 1);
  const uniforms = resizeUniforms(op, n, inH, inW, outH, outW, alignCorners, halfPixel);
  const kernel = await gpu.kernel('resize', { NEAREST: mode === 'nearest' }, 'backward');
  const dx = empty(gpu, inShape);
  gpu.dispatch(kernel, { uniforms, buffers: [dy, dx], workgroups: linearWorkgroups(gpu, n, 256) });
  return dx;
}
