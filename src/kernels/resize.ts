/**
 * 2-D resize of the last two dimensions (bilinear or nearest) and its exact adjoint, the gradient.
 *
 * The coordinate maps are computed here, once per call, into a small table per axis (for each output
 * index its two input taps and the second tap's weight; for each input index the outputs that sample
 * it), which shaders/resize.wgsl reads. Two families of maps:
 *
 * - The library's own (`alignCorners`, `halfPixelCenters`), in exact arithmetic: by default pixel
 *   centres are aligned (half-pixel centres, as PyTorch's F.interpolate(align_corners=False) and TF's
 *   half_pixel_centers), which Grad-CAM needs; `alignCorners` maps corner centres onto each other;
 *   `halfPixelCenters: false` is TF's legacy map src = o·in/out. Nearest rounds halves up
 *   (half-pixel: floor((o + ½)·in/out)).
 * - ONNX Resize's (`coordinateTransformationMode`, `nearestMode`, optional `scales`), computed as
 *   ONNX Runtime does in float32: with scale = out/in (or the given scale) per axis,
 *     half_pixel           src = (o + ½)/scale − ½
 *     pytorch_half_pixel   src = out > 1 ? (o + ½)/scale − ½ : 0
 *     align_corners        src = out > 1 ? o·(in − 1)/(out − 1) : 0
 *     asymmetric           src = o/scale
 *     tf_half_pixel_for_nn src = (o + ½)/scale
 *     half_pixel_symmetric src = c·(1 − out/(scale·in)) + (o + ½)/scale − ½, c = in/2
 *   nearest: i = round_prefer_floor | round_prefer_ceil | floor | ceil of src, clamped to [0, in);
 *   linear: src clamped to [0, in − 1], taps floor(src) and the next (clamped), weight src − floor(src).
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms, type Gpu } from '../runtime/gpu.js';
import { empty, tensor, type Tensor } from '../runtime/tensor.js';
import { assertFloat, linearWorkgroups } from './common.js';

export type ResizeMode = 'bilinear' | 'nearest';

/** ONNX Resize's coordinate_transformation_mode values that we support (all but tf_crop_and_resize). */
export type CoordinateTransformationMode =
  | 'half_pixel'
  | 'pytorch_half_pixel'
  | 'align_corners'
  | 'asymmetric'
  | 'tf_half_pixel_for_nn'
  | 'half_pixel_symmetric';

/** ONNX Resize's nearest_mode. */
export type NearestMode = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil';

export const COORDINATE_TRANSFORMATION_MODES: readonly CoordinateTransformationMode[] = [
  'half_pixel',
  'pytorch_half_pixel',
  'align_corners',
  'asymmetric',
  'tf_half_pixel_for_nn',
  'half_pixel_symmetric',
];
export const NEAREST_MODES: readonly NearestMode[] = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];

export interface ResizeOptions {
  /** Default 'bilinear' (ONNX 'linear' on H and W). */
  mode?: ResizeMode;
  /** Map corner pixel centres onto each other instead of half-pixel centres. Default false. */
  alignCorners?: boolean;
  /**
   * With alignCorners false: half-pixel centres (true, the default) or TF's legacy map
   * src = o·in/out (false: TF resize with align_corners = half_pixel_centers = false).
   */
  halfPixelCenters?: boolean;
  /**
   * ONNX Resize's coordinate_transformation_mode. When set, the maps are ONNX Runtime's (see the
   * module comment) and alignCorners/halfPixelCenters must not be given.
   */
  coordinateTransformationMode?: CoordinateTransformationMode;
  /** ONNX nearest_mode, for mode 'nearest' with a coordinateTransformationMode. Default 'round_prefer_floor' (ONNX's). */
  nearestMode?: NearestMode;
  /**
   * ONNX scales of H and W, when the node gave scales rather than sizes: the maps divide by them
   * instead of by out/in (they differ when in·scale is not an integer). Needs coordinateTransformationMode.
   */
  scales?: readonly [number, number] | readonly number[];
}

/** Per axis: output o samples inputs i0[o] (weight 1 − w1[o]) and i1[o] (weight w1[o]). */
export interface AxisTaps {
  i0: Int32Array;
  i1: Int32Array;
  w1: Float32Array;
}

interface Checked {
  mode: ResizeMode;
  onnx: { ctm: CoordinateTransformationMode; nearest: NearestMode; scales: [number, number] | null } | null;
  alignCorners: boolean;
  halfPixel: boolean;
}

function checkOptions(op: string, options: ResizeOptions): Checked {
  const mode = options.mode ?? 'bilinear';
  if (mode !== 'bilinear' && mode !== 'nearest') {
    throw new ArgumentError(`${op}: mode must be 'bilinear' or 'nearest', got ${JSON.stringify(mode)}`);
  }
  const ctm = options.coordinateTransformationMode;
  if (ctm === undefined) {
    if (options.nearestMode !== undefined || options.scales !== undefined) {
      throw new ArgumentError(`${op}: nearestMode and scales are ONNX options: they need a coordinateTransformationMode`);
    }
    return { mode, onnx: null, alignCorners: options.alignCorners ?? false, halfPixel: options.halfPixelCenters ?? true };
  }
  if (!COORDINATE_TRANSFORMATION_MODES.includes(ctm)) {
    throw new ArgumentError(`${op}: coordinateTransformationMode must be one of ${COORDINATE_TRANSFORMATION_MODES.join(', ')}, got ${JSON.stringify(ctm)}`);
  }
  if (options.alignCorners !== undefined || options.halfPixelCenters !== undefined) {
    throw new ArgumentError(`${op}: give either coordinateTransformationMode or alignCorners/halfPixelCenters, not both`);
  }
  const nearest = options.nearestMode ?? 'round_prefer_floor';
  if (!NEAREST_MODES.includes(nearest)) {
    throw new ArgumentError(`${op}: nearestMode must be one of ${NEAREST_MODES.join(', ')}, got ${JSON.stringify(nearest)}`);
  }
  let scales: [number, number] | null = null;
  if (options.scales !== undefined) {
    const s = options.scales;
    if (!Array.isArray(s) || s.length !== 2 || s.some((v) => typeof v !== 'number' || !Number.isFinite(v) || v <= 0)) {
      throw new ArgumentError(`${op}: scales must be two positive numbers [height, width], got ${JSON.stringify(s)}`);
    }
    scales = [s[0]!, s[1]!];
  }
  return { mode, onnx: { ctm, nearest, scales }, alignCorners: false, halfPixel: true };
}

function checkSize(op: string, size: readonly number[]): [number, number] {
  if (!Array.isArray(size) || size.length !== 2 || size.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ArgumentError(`${op}: output size must be [height, width] of positive integers, got ${JSON.stringify(size)}`);
  }
  return [size[0]!, size[1]!];
}

const f = Math.fround;

/**
 * ONNX Runtime's source coordinate of output o, in its float32 arithmetic (half_pixel_symmetric
 * divides in double, as ONNX Runtime does).
 */
function onnxSource(o: number, nIn: number, nOut: number, scale: number, ctm: CoordinateTransformationMode): number {
  const x = f(o);
  const s = f(scale);
  switch (ctm) {
    case 'half_pixel':
      return f(f(f(x + 0.5) / s) - 0.5);
    case 'pytorch_half_pixel':
      return nOut > 1 ? f(f(f(x + 0.5) / s) - 0.5) : 0;
    case 'align_corners':
      return nOut === 1 ? 0 : f(f(x * (nIn - 1)) / (nOut - 1));
    case 'asymmetric':
      return f(x / s);
    case 'tf_half_pixel_for_nn':
      return f(f(x + 0.5) / s);
    case 'half_pixel_symmetric': {
      const adjustment = f(nOut / f(s * nIn));
      const offset = f(f(nIn / 2) * f(1 - adjustment));
      return f(offset + (x + 0.5) / s - 0.5);
    }
  }
}

/**
 * The same coordinate in exact arithmetic (`scale` null: out/in as a ratio of integers), which is
 * what ONNX Runtime's round_prefer_* modes resolve halves by: measured against onnxruntime-node 1.31
 * on every size pair 1..24 and every transformation mode, floor and ceil follow the float32
 * coordinate and the rounding modes this one.
 */
function exactSource(o: number, nIn: number, nOut: number, scale: number | null, ctm: CoordinateTransformationMode): number {
  const h = scale === null ? ((o + 0.5) * nIn) / nOut : (o + 0.5) / scale;
  switch (ctm) {
    case 'half_pixel':
      return h - 0.5;
    case 'pytorch_half_pixel':
      return nOut > 1 ? h - 0.5 : 0;
    case 'align_corners':
      return nOut === 1 ? 0 : (o * (nIn - 1)) / (nOut - 1);
    case 'asymmetric':
      return scale === null ? (o * nIn) / nOut : o / scale;
    case 'tf_half_pixel_for_nn':
      return h;
    case 'half_pixel_symmetric':
      // With scale = out/in the offset is 0.
      return scale === null ? h - 0.5 : (nIn / 2) * (1 - nOut / (scale * nIn)) + h - 0.5;
  }
}

function roundNearest(v: number, mode: NearestMode): number {
  switch (mode) {
    case 'round_prefer_floor':
      return Math.ceil(v - 0.5);
    case 'round_prefer_ceil':
      return Math.floor(v + 0.5);
    case 'floor':
      return Math.floor(v);
    case 'ceil':
      return Math.ceil(v);
  }
}

/**
 * The taps of every output index along one axis of size nIn → nOut (axis 0 = height, 1 = width).
 * With ONNX options, an axis whose scale is 1 maps each output to the same input, as ONNX Runtime
 * does (and so does every axis when the output has the input's shape: see `resize`).
 */
export function axisTaps(nIn: number, nOut: number, options: ResizeOptions = {}, axis: 0 | 1 = 0): AxisTaps {
  const c = checkOptions('resize', options);
  const i0 = new Int32Array(nOut);
  const i1 = new Int32Array(nOut);
  const w1 = new Float32Array(nOut);
  const clampIndex = (i: number) => Math.min(Math.max(i, 0), nIn - 1);
  const given = c.onnx?.scales ? c.onnx.scales[axis] : null;
  const identity = !!c.onnx && f(given ?? nOut / nIn) === 1;
  for (let o = 0; o < nOut; o++) {
    if (identity) {
      i0[o] = i1[o] = clampIndex(o);
    } else if (c.onnx) {
      const { ctm, nearest } = c.onnx;
      if (c.mode === 'nearest') {
        const rounding = nearest === 'round_prefer_floor' || nearest === 'round_prefer_ceil';
        const src = rounding ? exactSource(o, nIn, nOut, given, ctm) : onnxSource(o, nIn, nOut, given ?? nOut / nIn, ctm);
        i0[o] = i1[o] = clampIndex(roundNearest(src, nearest));
      } else {
        const s = Math.min(Math.max(onnxSource(o, nIn, nOut, given ?? nOut / nIn, ctm), 0), nIn - 1);
        i0[o] = Math.floor(s);
        i1[o] = Math.min(i0[o]! + 1, nIn - 1);
        w1[o] = f(s - i0[o]!);
      }
    } else if (c.mode === 'nearest') {
      // Exact: half-pixel floor((o + ½)·in/out), align corners round(o·(in − 1)/(out − 1)) halves up, legacy floor(o·in/out).
      const i = c.alignCorners
        ? nOut === 1
          ? 0
          : Math.floor((2 * o * (nIn - 1) + (nOut - 1)) / (2 * (nOut - 1)))
        : c.halfPixel
          ? Math.floor(((2 * o + 1) * nIn) / (2 * nOut))
          : Math.floor((o * nIn) / nOut);
      i0[o] = i1[o] = clampIndex(i);
    } else {
      const src = c.alignCorners ? (nOut > 1 ? (o * (nIn - 1)) / (nOut - 1) : 0) : c.halfPixel ? ((o + 0.5) * nIn) / nOut - 0.5 : (o * nIn) / nOut;
      const s = Math.max(src, 0);
      i0[o] = Math.min(Math.floor(s), nIn - 1);
      i1[o] = Math.min(i0[o]! + 1, nIn - 1);
      w1[o] = f(Math.min(s - i0[o]!, 1));
    }
  }
  return { i0, i1, w1 };
}

/**
 * The table shaders/resize.wgsl reads: for each axis, per output (i0, i1, bits of w1), then per input
 * the range [lo, hi) of outputs with a tap on it (contiguous, as the taps never decrease).
 */
function tapTable(gpu: Gpu, inH: number, inW: number, outH: number, outW: number, options: ResizeOptions): { table: Tensor; offsets: number[] } {
  // ONNX Runtime copies a tensor that Resize leaves at its size, whatever the scales say.
  const same = options.coordinateTransformationMode !== undefined && inH === outH && inW === outW;
  const opts = same ? { ...options, scales: undefined } : options;
  const axes = [axisTaps(inH, outH, opts, 0), axisTaps(inW, outW, opts, 1)];
  const ins = [inH, inW];
  const size = 3 * (outH + outW) + 2 * (inH + inW);
  const words = new Int32Array(size);
  const bits = new Float32Array(words.buffer);
  const offsets: number[] = [];
  let at = 0;
  for (const t of axes) {
    offsets.push(at);
    for (let o = 0; o < t.i0.length; o++) {
      words[at++] = t.i0[o]!;
      words[at++] = t.i1[o]!;
      bits[at++] = t.w1[o]!;
    }
  }
  axes.forEach((t, a) => {
    offsets.push(at);
    const nIn = ins[a]!;
    const lo = new Int32Array(nIn).fill(t.i0.length);
    const hi = new Int32Array(nIn).fill(0);
    for (let o = 0; o < t.i0.length; o++) {
      for (const i of [t.i0[o]!, t.i1[o]!]) {
        lo[i] = Math.min(lo[i]!, o);
        hi[i] = Math.max(hi[i]!, o + 1);
      }
    }
    for (let i = 0; i < nIn; i++) {
      words[at++] = Math.min(lo[i]!, hi[i]!);
      words[at++] = hi[i]!;
    }
  });
  return { table: tensor(gpu, words, [size], 'int32'), offsets };
}

async function dispatchResize(op: string, entry: 'forward' | 'backward', src: Tensor, outShape: readonly number[], inH: number, inW: number, outH: number, outW: number, options: ResizeOptions): Promise<Tensor> {
  const { mode } = checkOptions(op, options);
  const gpu = src.gpu;
  const kernel = await gpu.kernel('resize', { NEAREST: mode === 'nearest' }, entry);
  const n = outShape.reduce((a, b) => a * b, 1);
  const { table, offsets } = tapTable(gpu, inH, inW, outH, outW, options);
  try {
    const dst = empty(gpu, outShape);
    gpu.dispatch(kernel, {
      uniforms: new Uniforms().u32(n, inH, inW, outH, outW, ...offsets),
      buffers: [src, dst, table],
      workgroups: linearWorkgroups(gpu, n, 256),
    });
    return dst;
  } finally {
    table.dispose(); // the pool hands the buffer out again only to work recorded after this point
  }
}

/** Resizes the last two dimensions of x ([..., H, W], e.g. NCHW) to [outH, outW]. */
export async function resize(x: Tensor, size: readonly [number, number] | readonly number[], options: ResizeOptions = {}): Promise<Tensor> {
  const op = 'resize';
  assertFloat(op, 'x', x);
  if (x.rank < 2) throw new ShapeError(`${op}: x must have rank ≥ 2 ([..., H, W]), got ${formatShape(x.shape)}`);
  checkOptions(op, options);
  const [outH, outW] = checkSize(op, size);
  const inH = x.shape[x.rank - 2]!;
  const inW = x.shape[x.rank - 1]!;
  return dispatchResize(op, 'forward', x, [...x.shape.slice(0, -2), outH, outW], inH, inW, outH, outW, options);
}

/**
 * Gradient of `resize`: dy has the resized shape [..., outH, outW]; returns dx of shape inShape.
 * It is the exact adjoint: <resize(x), y> = <x, resizeBackward(y)>.
 */
export async function resizeBackward(dy: Tensor, inShape: readonly number[], options: ResizeOptions = {}): Promise<Tensor> {
  const op = 'resizeBackward';
  assertFloat(op, 'dy', dy);
  checkOptions(op, options);
  if (inShape.length < 2 || inShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ShapeError(`${op}: input shape must be [..., H, W] of positive integers, got ${formatShape(inShape)}`);
  }
  if (dy.rank !== inShape.length || inShape.slice(0, -2).some((d, i) => d !== dy.shape[i])) {
    throw new ShapeError(`${op}: dy ${formatShape(dy.shape)} does not match input shape ${formatShape(inShape)} in its leading dimensions`);
  }
  const inH = inShape[inShape.length - 2]!;
  const inW = inShape[inShape.length - 1]!;
  return dispatchResize(op, 'backward', dy, inShape, inH, inW, dy.shape[dy.rank - 2]!, dy.shape[dy.rank - 1]!, options);
}
