/**
 * 2-D convolution kernels (NCHW activations, PyTorch OIHW filters): forward with fused bias and
 * activation, input gradient (transposed convolution with the same filters), filter gradient and
 * bias gradient. Stride, asymmetric padding, dilation and groups (depthwise, channel multiplier).
 *
 * Forward, input gradient and filter gradient are tiled implicit GEMMs (see the shaders' headers);
 * the tile shape is chosen from the GEMM's column count so that narrow problems (3 input channels,
 * depthwise) do not waste most of a 64-wide tile.
 */
import { ArgumentError, GpuError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms, type Gpu } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { ACTIVATIONS, ACTIVATION_WGSL, assertFinite, assertFloat, type Activation } from './common.js';

export interface Conv2dParams {
  /** Step between output pixels, [vertical, horizontal] or both. Default 1. */
  stride?: number | [number, number];
  /**
   * Zero padding: one number for all sides, [vertical, horizontal], or [top, bottom, left, right]
   * (asymmetric, as TF's 'SAME' needs; see `samePadding`). Default 0.
   */
  padding?: number | [number, number] | [number, number, number, number];
  /** Spacing between filter taps, [vertical, horizontal] or both. Default 1. */
  dilation?: number | [number, number];
  /** Channel groups: Cin and Cout must be multiples; groups = Cin = Cout is depthwise. Default 1. */
  groups?: number;
  /** Activation fused into the forward pass. Default 'none'. The backward kernels ignore it. */
  activation?: Activation;
  /** Slope of 'leakyrelu' for negative inputs. Default 0.01 (as the other layers). */
  alpha?: number;
}

/** Conv2dParams with every field filled in. */
export interface NormalizedConv2dParams {
  stride: [number, number];
  /** [top, bottom, left, right] */
  padding: [number, number, number, number];
  dilation: [number, number];
  groups: number;
  activation: Activation;
  alpha: number;
}

/** Validates `params` and fills in the defaults. */
export function normalizeConv2dParams(params: Conv2dParams = {}, op = 'conv2d'): NormalizedConv2dParams {
  const pair = (name: string, v: number | [number, number] | undefined, dflt: number, min: number): [number, number] => {
    const r: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
    if (!Array.isArray(v) && typeof v !== 'number' && v !== undefined) throw new ArgumentError(`${op}: ${name} must be a number or a pair`);
    if (Array.isArray(v) && v.length !== 2) throw new ArgumentError(`${op}: ${name} must be a number or a pair, got ${JSON.stringify(v)}`);
    if (r.some((x) => !Number.isInteger(x) || x < min)) {
      throw new ArgumentError(`${op}: ${name} must be ${min === 0 ? 'non-negative' : 'positive'} integers, got ${JSON.stringify(v)}`);
    }
    return r;
  };
  const stride = pair('stride', params.stride, 1, 1);
  const dilation = pair('dilation', params.dilation, 1, 1);
  let padding: [number, number, number, number];
  const pad = params.padding ?? 0;
  if (typeof pad === 'number') padding = [pad, pad, pad, pad];
  else if (Array.isArray(pad) && pad.length === 2) padding = [pad[0], pad[0], pad[1], pad[1]];
  else if (Array.isArray(pad) && pad.length === 4) padding = [pad[0], pad[1], pad[2], pad[3]];
  else throw new ArgumentError(`${op}: padding must be a number, [vertical, horizontal] or [top, bottom, left, right], got ${JSON.stringify(pad)}`);
  if (padding.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new ArgumentError(`${op}: padding must be non-negative integers, got ${JSON.stringify(pad)}`);
  }
  const groups = params.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new ArgumentError(`${op}: groups must be a positive integer, got ${groups}`);
  const activation = params.activation ?? 'none';
  if (!ACTIVATIONS.includes(activation)) {
    throw new ArgumentError(`${op}: unknown activation '${activation}'; known: ${ACTIVATIONS.join(', ')}`);
  }
  const alpha = params.alpha ?? 0.01;
  assertFinite(op, { alpha });
  return { stride, padding, dilation, groups, activation, alpha };
}


/** Everything a conv2d kernel needs to know about the problem. */
interface Geometry {
  batch: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  ho: number;
  wo: number;
  kh: number;
  kw: number;
  cinG: number;
  coutG: number;
  p: NormalizedConv2dParams;
}

function checkShape4(op: string, name: string, shape: readonly number[], layout: string): void {
  if (!Array.isArray(shape) || shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new ShapeError(`${op}: ${name} must have rank 4 (${layout}) with positive dimensions, got ${formatShape(shape ?? [])}`);
  }
}

function geometry(op: string, xShape: readonly number[], wShape: readonly number[], params: Conv2dParams | undefined): Geometry {
  checkShape4(op, 'x', xShape, 'N, C, H, W');
  checkShape4(op, 'w', wShape, 'Cout, Cin/groups, kh, kw');
  const p = normalizeConv2dParams(params, op);
  const [batch, cin, h, w] = xShape as [number, number, number, number];
  const [cout, cinG, kh, kw] = wShape as [number, number, number, number];
  const g = p.groups;
  if (cin % g !== 0 || cout % g !== 0) {
    throw new ShapeError(`${op}: groups (${g}) must divide the input channels (${cin}) and the output channels (${cout})`);
  }
  if (cinG * g !== cin) {
    throw new ShapeError(
      `${op}: x ${formatShape(xShape)} has ${cin} channels but w ${formatShape(wShape)} expects ${cinG} × ${g} group(s) = ${cinG * g} ` +
        `(w must be [Cout, Cin/groups, kh, kw])`,
    );
  }
  const [sh, sw] = p.stride;
  const [dh, dw] = p.dilation;
  const [pt, pb, pl, pr] = p.padding;
  const ho = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const wo = Math.floor((w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  if (ho <= 0 || wo <= 0) {
    throw new ShapeError(
      `${op}: the output would be ${ho}×${wo}: input ${h}×${w} padded by [${p.padding.join(', ')}] is smaller than the ` +
        `${kh}×${kw} kernel dilated by ${dh}×${dw} (${dh * (kh - 1) + 1}×${dw * (kw - 1) + 1})`,
    );
  }
  return { batch, cin, h, w, cout, ho, wo, kh, kw, cinG, coutG: cout / g, p };
}

/** The output shape [N, Cout, Ho, Wo] of a convolution, or a ShapeError explaining why there is none. */
export function conv2dOutputShape(xShape: readonly number[], wShape: readonly number[], params?: Conv2dParams): number[] {
  const g = geometry('conv2d', xShape, wShape, params);
  return [g.batch, g.cout, g.ho, g.wo];
}

// -----------------------------------------------------------------------------------------------
// Tiles

/** A GEMM tile: TM×TN outputs per 256-thread workgroup, RM×RN per thread, K step TK. */
interface Tile {
  TM: number;
  TN: number;
  TK: number;
  RM: number;
  RN: number;
}

const WIDE: Tile = { TM: 64, TN: 64, TK: 16, RM: 4, RN: 4 }; // 16×16 threads
const NARROW: Tile = { TM: 128, TN: 16, TK: 16, RM: 4, RN: 2 }; // 32×8 threads
const THIN: Tile = { TM: 256, TN: 4, TK: 8, RM: 4, RN: 1 }; // 64×4 threads
/** Filter gradient with few filters per group (depthwise): 16×16 threads over a 16×64 tile. */
const FEW_ROWS: Tile = { TM: 16, TN: 64, TK: 16, RM: 1, RN: 4 };

/**
 * Tile for a GEMM whose rows are pixels and whose columns are channels (`cols`). Few pixels
 * (a deep layer of a small image, batch 1) take the 16-row tile, so that most of a 64-row tile
 * is not padding.
 */
function pixelRowsTile(cols: number, rows: number): Tile {
  if (rows <= 16 && cols > 16) return FEW_ROWS;
  return cols <= 4 ? THIN : cols <= 16 ? NARROW : WIDE;
}

function tileDefines(t: Tile): Record<string, number> {
  return { TM: t.TM, TN: t.TN, TK: t.TK, RM: t.RM, RN: t.RN };
}

interface GemmShape {
  m: number;
  n: number;
  k: number;
  tilesN: number;
  tiles: number;
  kChunk: number;
  splits: number;
  total: number;
}

function gemmShape(tile: Tile, m: number, n: number, k: number): GemmShape {
  const tilesN = Math.ceil(n / tile.TN);
  return { m, n, k, tilesN, tiles: Math.ceil(m / tile.TM) * tilesN, kChunk: 0, splits: 1, total: 0 };
}

function uniforms(g: Geometry, gemm: GemmShape): Uniforms {
  const { p } = g;
  return new Uniforms()
    .u32(g.batch, g.cin, g.h, g.w, g.cout, g.ho, g.wo, p.groups, g.cinG, g.coutG, g.kh, g.kw)
    .i32(p.stride[0], p.stride[1], p.padding[0], p.padding[2], p.dilation[0], p.dilation[1])
    .f32(p.alpha)
    .u32(gemm.tilesN, gemm.m, gemm.n, gemm.k, gemm.tiles, gemm.kChunk, gemm.splits, gemm.total);
}

/** The device limits a dispatch plan depends on. */
export interface Conv2dLimits {
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBufferBindingSize: number;
}

let gridLimitOverride: number | null = null;

/**
 * Testing aid: pretend the device allows only `max` workgroups per grid dimension (null restores
 * the real limit), so that small problems exercise the folded grids that large layers need.
 */
export function setConv2dGridLimitForTesting(max: number | null): void {
  gridLimitOverride = max;
}

function deviceLimits(gpu: Gpu): Conv2dLimits {
  return {
    maxComputeWorkgroupsPerDimension: gridLimitOverride ?? gpu.limits.maxComputeWorkgroupsPerDimension,
    maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize,
  };
}

/** `count` workgroups folded into x·y ≥ count with both ≤ max (shaders skip the surplus). */
function fold(count: number, max: number): [number, number] {
  if (count <= max) return [Math.max(count, 1), 1];
  const y = Math.ceil(count / max);
  if (y > max) throw new GpuError(`conv2d: ${count} workgroups exceed ${max}×${max}; use a smaller batch`);
  return [Math.ceil(count / y), y];
}

/** Grid for `count` workgroups per group: folded into x,y; groups on z. */
function grid(op: string, count: number, groups: number, limits: Conv2dLimits): [number, number, number] {
  const max = limits.maxComputeWorkgroupsPerDimension;
  if (groups > max) throw new GpuError(`${op}: ${groups} groups exceed the device's ${max} workgroups per dimension`);
  const [x, y] = fold(count, max);
  return [x, y, groups];
}

interface Plan {
  tile: Tile;
  gemm: GemmShape;
  workgroups: [number, number, number];
}

function forwardPlan(g: Geometry, limits: Conv2dLimits): Plan {
  const tile = pixelRowsTile(g.coutG, g.batch * g.ho * g.wo);
  const gemm = gemmShape(tile, g.batch * g.ho * g.wo, g.coutG, g.cinG * g.kh * g.kw);
  return { tile, gemm, workgroups: grid('conv2d', gemm.tiles, g.p.groups, limits) };
}

function inputGradPlan(g: Geometry, limits: Conv2dLimits): Plan {
  const tile = pixelRowsTile(g.cinG, g.batch * g.h * g.w);
  const gemm = gemmShape(tile, g.batch * g.h * g.w, g.cinG, g.coutG * g.kh * g.kw);
  return { tile, gemm, workgroups: grid('conv2dBackwardInput', gemm.tiles, g.p.groups, limits) };
}

/** Workgroups the filter gradient aims for before it stops splitting K (fills a large GPU). */
const SPLIT_TARGET_WORKGROUPS = 512;
/** Smallest K chunk worth a workgroup of its own. */
const MIN_K_CHUNK = 256;

function filterGradPlan(g: Geometry, limits: Conv2dLimits): Plan & { sumWorkgroups: [number, number] | null } {
  const tile = g.coutG <= 16 ? FEW_ROWS : WIDE;
  const groups = g.p.groups;
  const gemm = gemmShape(tile, g.coutG, g.cinG * g.kh * g.kw, g.batch * g.ho * g.wo);
  const total = g.cout * gemm.n; // the filter's size
  // Split the long K (every output pixel of the batch) so that small filters still occupy many
  // workgroups; each split writes a partial filter, summed by a second kernel.
  const maxByMemory = Math.max(1, Math.floor(limits.maxStorageBufferBindingSize / (total * 4)));
  let splits = Math.min(Math.ceil(SPLIT_TARGET_WORKGROUPS / (gemm.tiles * groups)), Math.floor(gemm.k / MIN_K_CHUNK), maxByMemory);
  splits = Math.max(1, splits);
  const kChunk = Math.ceil(Math.ceil(gemm.k / splits) / tile.TK) * tile.TK;
  splits = Math.ceil(gemm.k / kChunk);
  Object.assign(gemm, { kChunk, splits, total });
  const workgroups = grid('conv2dBackwardFilter', gemm.tiles * splits, groups, limits);
  const sumWorkgroups = splits > 1 ? fold(Math.ceil(total / 256), limits.maxComputeWorkgroupsPerDimension) : null;
  return { tile, gemm, workgroups, sumWorkgroups };
}

/** What the four conv2d kernels would dispatch for this problem (for checks and benchmarks). */
export interface Conv2dDispatchSizes {
  forward: [number, number, number];
  inputGrad: [number, number, number];
  filterGrad: [number, number, number];
  /** The split-K sum of the filter gradient, when K is split. */
  filterGradSum: [number, number] | null;
  filterGradSplits: number;
  biasGrad: [number, number];
}

export function conv2dDispatchSizes(
  xShape: readonly number[],
  wShape: readonly number[],
  params: Conv2dParams | undefined,
  limits: Conv2dLimits,
): Conv2dDispatchSizes {
  const g = geometry('conv2d', xShape, wShape, params);
  const fg = filterGradPlan(g, limits);
  return {
    forward: forwardPlan(g, limits).workgroups,
    inputGrad: inputGradPlan(g, limits).workgroups,
    filterGrad: fg.workgroups,
    filterGradSum: fg.sumWorkgroups,
    filterGradSplits: fg.gemm.splits,
    biasGrad: fold(g.cout, limits.maxComputeWorkgroupsPerDimension),
  };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

// -----------------------------------------------------------------------------------------------
// Kernels

/**
 * y = activation(conv2d(x, w) + bias). x [N, Cin, H, W], w [Cout, Cin/groups, kh, kw],
 * bias [Cout] or null; returns a new [N, Cout, Ho, Wo] tensor.
 */
export async function conv2dForward(x: Tensor, w: Tensor, bias: Tensor | null, params?: Conv2dParams): Promise<Tensor> {
  const op = 'conv2d';
  assertFloat(op, 'x', x);
  assertFloat(op, 'w', w);
  const g = geometry(op, x.shape, w.shape, params);
  if (bias) {
    assertFloat(op, 'bias', bias);
    if (bias.rank !== 1 || bias.shape[0] !== g.cout) {
      throw new ShapeError(`${op}: bias must be [Cout] = [${g.cout}], got ${formatShape(bias.shape)}`);
    }
  }
  const gpu = x.gpu;
  const { tile, gemm, workgroups } = forwardPlan(g, deviceLimits(gpu));
  const kernel = await gpu.kernel('conv2d_forward', {
    ...tileDefines(tile),
    ACTIVATION: ACTIVATION_WGSL[g.p.activation],
    HAS_BIAS: !!bias,
  });
  const y = empty(gpu, [g.batch, g.cout, g.ho, g.wo]);
  gpu.dispatch(kernel, {
    uniforms: uniforms(g, gemm),
    buffers: bias ? [x, w, bias, y] : [x, w, y],
    workgroups,
  });
  return y;
}

/**
 * dL/dx of a convolution (without its activation) from dL/dy: the transposed convolution of dy
 * with the same filters w. Returns a new tensor of shape `xShape`.
 */
export async function conv2dBackwardInput(dy: Tensor, w: Tensor, xShape: readonly number[], params?: Conv2dParams): Promise<Tensor> {
  const op = 'conv2dBackwardInput';
  assertFloat(op, 'dy', dy);
  assertFloat(op, 'w', w);
  const g = geometry(op, xShape, w.shape, params);
  const expected = [g.batch, g.cout, g.ho, g.wo];
  if (!sameShape(dy.shape, expected)) {
    throw new ShapeError(`${op}: dy must be ${formatShape(expected)} (the output of x ${formatShape(xShape)} and w ${formatShape(w.shape)}), got ${formatShape(dy.shape)}`);
  }
  const gpu = dy.gpu;
  const { tile, gemm, workgroups } = inputGradPlan(g, deviceLimits(gpu));
  const kernel = await gpu.kernel('conv2d_input_grad', tileDefines(tile));
  const dx = empty(gpu, [g.batch, g.cin, g.h, g.w]);
  gpu.dispatch(kernel, { uniforms: uniforms(g, gemm), buffers: [dy, w, dx], workgroups });
  return dx;
}

/**
 * dL/dw of a convolution (without its activation) from the input x and dL/dy. Returns a new
 * tensor of shape `wShape` = [Cout, Cin/groups, kh, kw].
 */
export async function conv2dBackwardFilter(x: Tensor, dy: Tensor, wShape: readonly number[], params?: Conv2dParams): Promise<Tensor> {
  const op = 'conv2dBackwardFilter';
  assertFloat(op, 'x', x);
  assertFloat(op, 'dy', dy);
  const g = geometry(op, x.shape, wShape, params);
  const expected = [g.batch, g.cout, g.ho, g.wo];
  if (!sameShape(dy.shape, expected)) {
    throw new ShapeError(`${op}: dy must be ${formatShape(expected)} (the output of x ${formatShape(x.shape)} and w ${formatShape(wShape)}), got ${formatShape(dy.shape)}`);
  }
  const gpu = x.gpu;
  const { tile, gemm, workgroups, sumWorkgroups } = filterGradPlan(g, deviceLimits(gpu));
  const kernel = await gpu.kernel('conv2d_weight_grad', tileDefines(tile));
  const sum = sumWorkgroups ? await gpu.kernel('conv2d_weight_grad', tileDefines(tile), 'sum_splits') : null;
  const dw = empty(gpu, wShape);
  if (!sum || !sumWorkgroups) {
    gpu.dispatch(kernel, { uniforms: uniforms(g, gemm), buffers: [dy, x, dw], workgroups });
    return dw;
  }
  let partial: Tensor;
  try {
    partial = empty(gpu, [gemm.splits, gemm.total]);
  } catch (e) {
    dw.dispose();
    throw e;
  }
  gpu.dispatch(kernel, { uniforms: uniforms(g, gemm), buffers: [dy, x, partial], workgroups });
  gpu.dispatch(sum, { uniforms: uniforms(g, gemm), buffers: [partial, dw], workgroups: sumWorkgroups });
  // The pool hands the buffer out again only to work recorded after this point.
  partial.dispose();
  return dw;
}

/** dL/dbias = dL/dy summed over N, H and W: [C] from dy [N, C, H, W]. */
export async function conv2dBackwardBias(dy: Tensor): Promise<Tensor> {
  const op = 'conv2dBackwardBias';
  assertFloat(op, 'dy', dy);
  checkShape4(op, 'dy', dy.shape, 'N, C, H, W');
  const [batch, channels, h, w] = dy.shape as [number, number, number, number];
  const gpu = dy.gpu;
  const kernel = await gpu.kernel('conv2d_bias_grad');
  const db = empty(gpu, [channels]);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms().u32(batch, channels, h * w),
    buffers: [dy, db],
    workgroups: fold(channels, deviceLimits(gpu).maxComputeWorkgroupsPerDimension),
  });
  return db;
}
