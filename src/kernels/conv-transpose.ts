/**
 * 2-D transposed convolution (ONNX ConvTranspose, PyTorch ConvTranspose2d) on the convolution
 * kernels: its forward is the input gradient of the convolution with the same filters, and its
 * gradients are that convolution's forward (for the input) and filter gradient (for the filters).
 *
 * x [N, C, H, W], w [C, M/groups, kh, kw] (ONNX and PyTorch layout), output [N, M, Ho, Wo] with
 *   Ho = stride·(H − 1) + outputPadding + dilation·(kh − 1) + 1 − padTop − padBottom   (W alike):
 *   y[n, m, i] = Σ x[n, c, j]·w[c, m', k] over the taps with i = j·stride − padTop + k·dilation.
 *
 * The convolution it transposes reads an image of Ho rows whose last rows may receive no tap (the
 * output padding beyond the bottom padding): those rows are computed as zeros by a pad, the
 * convolution kernels seeing only the rows the taps reach (a bottom padding of max(0, padBottom −
 * outputPadding)). No copy is made when the output padding is at most the bottom padding
 * (PyTorch's usual padding = 1, output_padding = 1 for stride 2).
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import type { Tensor } from '../runtime/tensor.js';
import { assertFloat } from './common.js';
import { conv2dBackwardFilter, conv2dBackwardInput, conv2dForward, normalizeConv2dParams, type Conv2dParams } from './conv2d.js';
import { add } from './elementwise.js';
import { pad } from './pad.js';
import { slice } from './shape.js';

export interface ConvTranspose2dParams {
  /** Step between input pixels in the output, [vertical, horizontal] or both. Default 1. */
  stride?: number | [number, number];
  /**
   * Rows and columns removed from the full output: one number, [vertical, horizontal], or
   * [top, bottom, left, right] (ONNX pads [x1_begin, x2_begin, x1_end, x2_end] are [pads[0], pads[2], pads[1], pads[3]]).
   */
  padding?: number | [number, number] | [number, number, number, number];
  /** Extra rows (bottom) and columns (right) of output, [vertical, horizontal] or both. Default 0. */
  outputPadding?: number | [number, number];
  /** Spacing between filter taps. Default 1. */
  dilation?: number | [number, number];
  /** Channel groups: C and M must be multiples. Default 1. */
  groups?: number;
}

/** Everything the kernels need to run a transposed convolution as a convolution's input gradient. */
export interface ConvTranspose2dGeometry {
  /** [N, M, Ho, Wo] */
  outShape: number[];
  /** The rows and columns the taps reach, [N, M, Ho − zeroRows, Wo − zeroCols]. */
  coreShape: number[];
  /** Trailing rows and columns no tap reaches (zeros). */
  zeroRows: number;
  zeroCols: number;
  /** The convolution whose input gradient computes the core. */
  conv: Conv2dParams;
}

/** Validates the shapes and parameters and returns the geometry. */
export function convTranspose2dGeometry(xShape: readonly number[], wShape: readonly number[], params: ConvTranspose2dParams = {}): ConvTranspose2dGeometry {
  const op = 'convTranspose2d';
  for (const [name, s, layout] of [['x', xShape, 'N, C, H, W'], ['w', wShape, 'C, M/groups, kh, kw']] as const) {
    if (!Array.isArray(s) || s.length !== 4 || s.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new ShapeError(`${op}: ${name} must have rank 4 (${layout}) with positive dimensions, got ${formatShape(s ?? [])}`);
    }
  }
  const p = normalizeConv2dParams({ stride: params.stride, padding: params.padding, dilation: params.dilation, groups: params.groups }, op);
  const op2 = params.outputPadding ?? 0;
  const [oph, opw] = typeof op2 === 'number' ? [op2, op2] : Array.isArray(op2) && op2.length === 2 ? op2 : [NaN, NaN];
  if (![oph, opw].every((v) => Number.isInteger(v) && v >= 0)) {
    throw new ArgumentError(`${op}: outputPadding must be a non-negative integer or a pair, got ${JSON.stringify(params.outputPadding)}`);
  }
  const [n, c, h, w] = xShape as [number, number, number, number];
  const [wc, mg, kh, kw] = wShape as [number, number, number, number];
  const g = p.groups;
  if (wc !== c) throw new ShapeError(`${op}: x ${formatShape(xShape)} has ${c} channels but w ${formatShape(wShape)} is for ${wc} (w must be [C, M/groups, kh, kw])`);
  if (c % g !== 0) throw new ShapeError(`${op}: groups (${g}) must divide the input channels (${c})`);
  const m = mg * g;
  const [sh, sw] = p.stride;
  const [dh, dw] = p.dilation;
  const [pt, pb, pl, pr] = p.padding;
  const ho = sh * (h - 1) + oph + dh * (kh - 1) + 1 - pt - pb;
  const wo = sw * (w - 1) + opw + dw * (kw - 1) + 1 - pl - pr;
  if (ho < 1 || wo < 1) {
    throw new ShapeError(`${op}: the output would be ${ho}×${wo}: padding [${p.padding.join(', ')}] removes more than the ${h}×${w} input spreads to`);
  }
  const zeroRows = Math.min(Math.max(0, oph - pb), ho - 1);
  const zeroCols = Math.min(Math.max(0, opw - pr), wo - 1);
  const coreH = ho - zeroRows;
  const coreW = wo - zeroCols;
  // The convolution over [coreH, coreW] with this bottom/right padding has exactly H × W outputs.
  const pbCore = sh * (h - 1) + dh * (kh - 1) + 1 - coreH - pt;
  const prCore = sw * (w - 1) + dw * (kw - 1) + 1 - coreW - pl;
  if (pbCore < 0 || prCore < 0) {
    throw new ShapeError(`${op}: padding [${p.padding.join(', ')}] crops the output past every tap of the ${h}×${w} input`);
  }
  return {
    outShape: [n, m, ho, wo],
    coreShape: [n, m, coreH, coreW],
    zeroRows,
    zeroCols,
    conv: { stride: p.stride, dilation: p.dilation, groups: g, padding: [pt, pbCore, pl, prCore] },
  };
}

/** The output shape [N, M, Ho, Wo] of a transposed convolution. */
export function convTranspose2dOutputShape(xShape: readonly number[], wShape: readonly number[], params: ConvTranspose2dParams = {}): number[] {
  return convTranspose2dGeometry(xShape, wShape, params).outShape;
}

/** Zero rows and columns appended to the core (dispose-safe: frees `core`). */
async function withZeros(core: Tensor, g: ConvTranspose2dGeometry): Promise<Tensor> {
  if (!g.zeroRows && !g.zeroCols) return core;
  try {
    return await pad(core, [0, 0, 0, 0, 0, 0, g.zeroRows, g.zeroCols]);
  } finally {
    core.dispose();
  }
}

/**
 * y = convTranspose(x, w) + bias: x [N, C, H, W], w [C, M/groups, kh, kw], bias [M] or null;
 * returns [N, M, Ho, Wo].
 */
export async function convTranspose2d(x: Tensor, w: Tensor, bias: Tensor | null, params: ConvTranspose2dParams = {}): Promise<Tensor> {
  const op = 'convTranspose2d';
  assertFloat(op, 'x', x);
  assertFloat(op, 'w', w);
  const g = convTranspose2dGeometry(x.shape, w.shape, params);
  const m = g.outShape[1]!;
  if (bias) {
    assertFloat(op, 'bias', bias);
    if (bias.rank !== 1 || bias.shape[0] !== m) throw new ShapeError(`${op}: bias must be [M] = [${m}], got ${formatShape(bias.shape)}`);
  }
  const y = await withZeros(await conv2dBackwardInput(x, w, g.coreShape, g.conv), g);
  if (!bias) return y;
  const b = bias.reshape([m, 1, 1]);
  try {
    return await add(y, b);
  } finally {
    b.dispose();
    y.dispose();
  }
}

/** dy [N, M, Ho, Wo] cropped to the rows and columns the taps reach (a view or copy the caller frees). */
async function core(dy: Tensor, g: ConvTranspose2dGeometry, op: string): Promise<Tensor> {
  if (dy.rank !== 4 || dy.shape.some((d, i) => d !== g.outShape[i])) {
    throw new ShapeError(`${op}: dy must be ${formatShape(g.outShape)}, the transposed convolution's output, got ${formatShape(dy.shape)}`);
  }
  if (!g.zeroRows && !g.zeroCols) return dy.reshape(dy.shape);
  return slice(dy, [0, 0, 0, 0], g.coreShape);
}

/** The gradient of convTranspose2d with respect to x (of shape xShape): a convolution of dy with w. */
export async function convTranspose2dBackwardInput(dy: Tensor, w: Tensor, xShape: readonly number[], params: ConvTranspose2dParams = {}): Promise<Tensor> {
  const op = 'convTranspose2dBackwardInput';
  assertFloat(op, 'dy', dy);
  assertFloat(op, 'w', w);
  const g = convTranspose2dGeometry(xShape, w.shape, params);
  const c = await core(dy, g, op);
  try {
    return await conv2dForward(c, w, null, g.conv);
  } finally {
    c.dispose();
  }
}

/** The gradient of convTranspose2d with respect to w (of shape wShape), from x and dy. */
export async function convTranspose2dBackwardFilter(x: Tensor, dy: Tensor, wShape: readonly number[], params: ConvTranspose2dParams = {}): Promise<Tensor> {
  const op = 'convTranspose2dBackwardFilter';
  assertFloat(op, 'x', x);
  assertFloat(op, 'dy', dy);
  const g = convTranspose2dGeometry(x.shape, wShape, params);
  const c = await core(dy, g, op);
  try {
    // The transposed convolution is the input gradient of a convolution from its output (dy's
    // core) to x: that convolution's filter gradient, with x in the role of its output gradient.
    return await conv2dBackwardFilter(c, x, wShape, g.conv);
  } finally {
    c.dispose();
  }
}
