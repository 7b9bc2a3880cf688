/**
 * Padding (ONNX Pad, opsets 2–21 for the constant, reflect and edge modes) of a tensor of rank ≤ 6,
 * and its gradient; see shaders/pad.wgsl. Negative pads crop.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { assertFinite, assertFloat, linearWorkgroups } from './common.js';

const MAX_RANK = 6;

export type PadMode = 'constant' | 'reflect' | 'edge';

const PAD_MODES: readonly PadMode[] = ['constant', 'reflect', 'edge'];

export interface PadOptions {
  /** Default 'constant'. */
  mode?: PadMode;
  /** The constant of 'constant' mode. Default 0. */
  value?: number;
}

/**
 * Checks `pads` (ONNX order: [begin_0, …, begin_{r−1}, end_0, …, end_{r−1}], negative = crop)
 * against an input shape and returns the padded shape.
 */
export function padOutputShape(shape: readonly number[], pads: readonly number[], mode: PadMode = 'constant', op = 'pad'): number[] {
  const rank = shape.length;
  if (rank > MAX_RANK) throw new ShapeError(`${op}: rank ${rank} > ${MAX_RANK} is not supported (${formatShape(shape)})`);
  if (!Array.isArray(pads) || pads.length !== 2 * rank || pads.some((v) => !Number.isInteger(v))) {
    throw new ArgumentError(
      `${op}: pads must be ${2 * rank} integers for ${formatShape(shape)} ([begin per dimension, then end per dimension]), got ${JSON.stringify(pads)}`,
    );
  }
  if (!PAD_MODES.includes(mode)) throw new ArgumentError(`${op}: mode must be one of ${PAD_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  return shape.map((n, d) => {
    const b = pads[d]!;
    const a = pads[d + rank]!;
    // As ONNX Runtime: crops first, then pads what is left (reflect within it).
    const kept = n + Math.min(b, 0) + Math.min(a, 0);
    if (kept < 1) throw new ShapeError(`${op}: dimension ${d} of ${formatShape(shape)} cropped by ${b} and ${a} would be empty`);
    if (mode === 'reflect' && Math.max(b, a) > kept - 1) {
      throw new ArgumentError(
        `${op}: reflect padding of dimension ${d} (size ${kept}${kept === n ? '' : ' after cropping'}) must be at most ${kept - 1} on each side, got ${b} and ${a}`,
      );
    }
    return n + b + a;
  });
}

function padUniforms(n: number, inShape: readonly number[], outShape: readonly number[], pads: readonly number[], mode: PadMode, value: number): Uniforms {
  const rank = inShape.length;
  const lead = (a: readonly number[], v: number) => [...new Array<number>(MAX_RANK - a.length).fill(v), ...a];
  const si = lead(inShape, 1);
  const so = lead(outShape, 1);
  const before = lead(pads.slice(0, rank), 0);
  return new Uniforms()
    .vec4u(si.slice(0, 4))
    .vec4u(si.slice(4))
    .vec4u(so.slice(0, 4))
    .vec4u(so.slice(4))
    .vec4i(before.slice(0, 4))
    .vec4i(before.slice(4))
    .u32(n, PAD_MODES.indexOf(mode))
    .f32(value);
}

/**
 * x padded by `pads` (ONNX order: all begins, then all ends; negative values crop) with a constant
 * (`value`), the mirror image without the edge ('reflect') or the edge value repeated ('edge').
 */
export async function pad(x: Tensor, pads: readonly number[], options: PadOptions = {}): Promise<Tensor> {
  const op = 'pad';
  assertFloat(op, 'x', x);
  const { mode = 'constant', value = 0 } = options;
  assertFinite(op, { value });
  const outShape = padOutputShape(x.shape, pads, mode, op);
  const gpu = x.gpu;
  const kernel = await gpu.kernel('pad', {}, 'forward');
  const y = empty(gpu, outShape);
  gpu.dispatch(kernel, {
    uniforms: padUniforms(y.size, x.shape, outShape, pads, mode, value),
    buffers: [x, y],
    workgroups: linearWorkgroups(gpu, y.size, 256),
  });
  return y;
}

/** Gradient of `pad` with respect to its input of shape `inputShape` (dy has the padded shape). */
export async function padBackward(dy: Tensor, inputShape: readonly number[], pads: readonly number[], options: PadOptions = {}): Promise<Tensor> {
  const op = 'padBackward';
  assertFloat(op, 'dy', dy);
  const { mode = 'constant' } = options;
  if (inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ShapeError(`${op}: input shape must be positive integers, got ${formatShape(inputShape)}`);
  }
  const outShape = padOutputShape(inputShape, pads, mode, op);
  if (dy.rank !== outShape.length || dy.shape.some((d, i) => d !== outShape[i])) {
    throw new ShapeError(`${op}: dy ${formatShape(dy.shape)} must have the padded shape ${formatShape(outShape)}`);
  }
  const gpu = dy.gpu;
  const kernel = await gpu.kernel('pad', {}, 'backward');
  const dx = empty(gpu, inputShape);
  gpu.dispatch(kernel, {
    uniforms: padUniforms(dx.size, inputShape, outShape, pads, mode, 0),
    buffers: [dy, dx],
    workgroups: linearWorkgroups(gpu, dx.size, 256),
  });
  return dx;
}
