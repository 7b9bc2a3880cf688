/**
 * 2-D convolution kernels (NCHW activations, PyTorch OIHW filters): forward with fused bias and
 * activation, input gradient (transposed convolution with the same filters), filter gradient and
 * bias gradient. Stride, asymmetric padding, dilation and groups (depthwise, channel multiplier).
 *
 * Forward, input gradient and filter gradient come in two strategies (`Conv2dStrategy`). On GPUs
 * they are tiled implicit GEMMs (see the shaders' headers), with the tile shape chosen from the
 * GEMM's column count so that narrow problems (3 input channels, depthwise) do not waste most of a
 * 64-wide tile. On CPU adapters they are direct register-blocked loops (the *_direct shaders).
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
export interface Conv2dTile {
  TM: number;
  TN: number;
  TK: number;
  RM: number;
  RN: number;
}
type Tile = Conv2dTile;

const WIDE: Tile = { TM: 64, TN: 64, TK: 16, RM: 4, RN: 4 }; // 16×16 threads
/** Many pixels, at most 64 channels (the first layers of a large image): more reuse per thread. */
const TALL: Tile = { TM: 128, TN: 64, TK: 16, RM: 8, RN: 4 }; // 16×16 threads
const MID: Tile = { TM: 64, TN: 32, TK: 16, RM: 4, RN: 2 }; // 16×16 threads
const SMALL: Tile = { TM: 32, TN: 32, TK: 16, RM: 2, RN: 2 }; // 16×16 threads
/**
 * Workgroups a GEMM needs before larger tiles pay: below it the GPU is not full and the time is one
 * workgroup's walk along K. Measured on an H200 (VGG16 at 224×224, batch 1): each layer was
 * fastest with the largest of TALL/WIDE/MID/SMALL that still gave about 200 workgroups.
 */
const FILL_WORKGROUPS = 200;
const NARROW: Tile = { TM: 128, TN: 16, TK: 16, RM: 4, RN: 2 }; // 32×8 threads
const THIN: Tile = { TM: 256, TN: 4, TK: 8, RM: 4, RN: 1 }; // 64×4 threads
/** Filter gradient with few filters per group (depthwise): 16×16 threads over a 16×64 tile. */
const FEW_ROWS: Tile = { TM: 16, TN: 64, TK: 16, RM: 1, RN: 4 };

/**
 * Tiles the benchmark compares (`npm run bench -- --tiles all`), all runnable by the tiled forward
 * and input-gradient shaders; the tests check each against the reference.
 */
export const CONV2D_TILE_CANDIDATES: readonly string[] = [
  '64x64x16/4x4',
  '64x64x8/4x4',
  '128x128x8/8x8',
  '128x64x16/8x4',
  '64x128x16/4x8',
  '256x64x8/8x8',
  '128x32x16/4x4',
  '64x32x16/4x2',
  '32x64x16/2x4',
  '32x32x16/2x2',
];

/** The workgroup memory the tiled forward and input-gradient kernels stage per K step, in bytes. */
function stagedBytes(t: Tile): number {
  return 4 * t.TK * (t.TM + t.TN + 1);
}

/**
 * Throws an ArgumentError for a tile the tiled forward and input-gradient shaders cannot run: they
 * need 256 threads, (TM/RM)·(TN/RN) = 256, TM and TK dividing 256, TK·TM a multiple of 256, and
 * at most 16 KiB of workgroup memory (WebGPU's default limit).
 */
export function checkConv2dTile(tile: Conv2dTile): void {
  const { TM, TN, TK, RM, RN } = tile;
  const ok =
    [TM, TN, TK, RM, RN].every((v) => Number.isInteger(v) && v > 0) &&
    TM % RM === 0 && TN % RN === 0 && (TM / RM) * (TN / RN) === 256 &&
    256 % TM === 0 && 256 % TK === 0 && (TK * TM) % 256 === 0 && stagedBytes(tile) <= 16384;
  if (!ok) {
    throw new ArgumentError(
      `conv2d: tile ${formatConv2dTile(tile)} is not runnable: need (TM/RM)·(TN/RN) = 256 threads, TM and TK dividing 256, ` +
        `TK·TM a multiple of 256 and 4·TK·(TM+TN+1) ≤ 16384 bytes of workgroup memory`,
    );
  }
}

/**
 * Benchmark aid: the tiled forward and input-gradient kernels of `gpu` use `tile` for every
 * problem (null restores the choice by shape). Refuses tiles the shaders cannot run (see
 * checkConv2dTile).
 */
export function setConv2dTile(gpu: Gpu, tile: Conv2dTile | null): void {
  if (tile) checkConv2dTile(tile);
  settingsOf(gpu).tile = tile ? { ...tile } : null;
}

/** "TMxTNxTK/RMxRN", the form parseConv2dTile reads. */
export function formatConv2dTile(t: Conv2dTile): string {
  return `${t.TM}x${t.TN}x${t.TK}/${t.RM}x${t.RN}`;
}

/** Reads "TMxTNxTK/RMxRN" (e.g. "128x128x8/8x8"); throws an ArgumentError otherwise. */
export function parseConv2dTile(s: string): Conv2dTile {
  const m = /^(\d+)x(\d+)x(\d+)\/(\d+)x(\d+)$/.exec(s.trim());
  if (!m) throw new ArgumentError(`conv2d: a tile is written TMxTNxTK/RMxRN (e.g. 128x128x8/8x8), got '${s}'`);
  const [TM, TN, TK, RM, RN] = m.slice(1).map(Number) as [number, number, number, number, number];
  return { TM, TN, TK, RM, RN };
}

/**
 * Tile for a GEMM whose rows are pixels and whose columns are channels (`cols`). Few pixels
 * (a deep layer of a small image, batch 1) take the 16-row tile, so that most of a 64-row tile
 * is not padding.
 */
function pixelRowsTile(cols: number, rows: number, groups: number, forced: Tile | null): Tile {
  if (forced) return forced;
  if (rows <= 16 && cols > 16) return FEW_ROWS;
  if (cols <= 4) return THIN;
  if (cols <= 16) return NARROW;
  const workgroups = (t: Tile) => Math.ceil(rows / t.TM) * Math.ceil(cols / t.TN) * groups;
  if (cols <= 64 && workgroups(TALL) >= FILL_WORKGROUPS) return TALL;
  return [WIDE, MID].find((t) => workgroups(t) >= FILL_WORKGROUPS) ?? SMALL;
}

/**
 * Benchmark aid: whether the tiled forward and input-gradient kernels of `gpu` may split K when a
 * problem has too few tiles to fill the GPU (default true).
 */
export function setConv2dSplitK(gpu: Gpu, enabled: boolean): void {
  settingsOf(gpu).splitK = enabled;
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
  return { m, n, k, tilesN, tiles: Math.ceil(m / tile.TM) * tilesN, kChunk: k, splits: 1, total: 0 };
}

/**
 * The uniform block of the conv2d shaders (substituted for `${CONV2D_PARAMS}` in each), in the
 * order `uniforms` writes it.
 */
const CONV2D_PARAMS = `struct Params {
  batch: u32, cin: u32, h: u32, w: u32,
  cout: u32, ho: u32, wo: u32, groups: u32,
  cin_g: u32, cout_g: u32, kh: u32, kw: u32,
  stride_h: i32, stride_w: i32, pad_t: i32, pad_l: i32,
  dil_h: i32, dil_w: i32, alpha: f32, tiles_n: u32,
  gemm_m: u32, gemm_n: u32, gemm_k: u32, tiles: u32,
  k_chunk: u32, splits: u32, total: u32,
}`;

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

/**
 * Testing aid: pretend `gpu` allows only `max` workgroups per grid dimension (null restores the
 * real limit), so that small problems exercise the folded grids that large layers need.
 */
export function setConv2dGridLimitForTesting(gpu: Gpu, max: number | null): void {
  settingsOf(gpu).gridLimit = max;
}

function deviceLimits(gpu: Gpu): Conv2dLimits {
  return {
    maxComputeWorkgroupsPerDimension: settingsOf(gpu).gridLimit ?? gpu.limits.maxComputeWorkgroupsPerDimension,
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

/**
 * Which kernels run a convolution. 'tiled': implicit GEMMs staged through workgroup memory, for
 * GPUs. 'direct': register-blocked loops without workgroup memory or barriers, for CPU adapters
 * (lavapipe, SwiftShader), where each load is emulated lane by lane and the tiled kernels run about
 * 5× slower. Both compute the same sums in the same order of taps.
 */
export type Conv2dStrategy = 'tiled' | 'direct';

/**
 * Forces one kind of conv2d kernel on `gpu` (for tests and benchmarks); null restores the default,
 * which is 'direct' on CPU adapters and 'tiled' on GPUs.
 */
export function setConv2dStrategy(gpu: Gpu, strategy: Conv2dStrategy | null): void {
  if (strategy !== null && strategy !== 'tiled' && strategy !== 'direct') {
    throw new ArgumentError(`conv2d: strategy must be 'tiled', 'direct' or null, got ${JSON.stringify(strategy)}`);
  }
  settingsOf(gpu).strategy = strategy;
}

/** The conv2d kernels `gpu` uses now. */
export function conv2dStrategy(gpu: Gpu): Conv2dStrategy {
  return settingsOf(gpu).strategy ?? (gpu.adapter.isSoftware ? 'direct' : 'tiled');
}

/**
 * The conv2d settings of one device. They belong to a Gpu, not to the module: two devices in one
 * process (a benchmark's, a test's, a page's) never see each other's settings.
 */
export interface Conv2dSettings {
  /** Forced kernels; null: 'direct' on CPU adapters, 'tiled' on GPUs (see conv2dStrategy). */
  strategy: Conv2dStrategy | null;
  /** One tile for every problem of the tiled forward and input-gradient kernels; null: by shape. */
  tile: Conv2dTile | null;
  /** Whether the tiled forward and input-gradient kernels may split K (default true). */
  splitK: boolean;
  /** The register block of the direct forward and input-gradient kernels; null: by adapter (see directBlockFor). */
  directBlock: Conv2dDirectBlock | null;
  /** Testing: the workgroups per grid dimension assumed instead of the device's; null: the device's. */
  gridLimit: number | null;
}

const settingsByGpu = new WeakMap<Gpu, Conv2dSettings>();

function settingsOf(gpu: Gpu): Conv2dSettings {
  let s = settingsByGpu.get(gpu);
  if (!s) settingsByGpu.set(gpu, (s = { strategy: null, tile: null, splitK: true, directBlock: null, gridLimit: null }));
  return s;
}

/** A copy of `gpu`'s conv2d settings (change them with the setConv2d* functions). */
export function conv2dSettings(gpu: Gpu): Conv2dSettings {
  const s = settingsOf(gpu);
  return { ...s, tile: s.tile ? { ...s.tile } : null, directBlock: s.directBlock ? { ...s.directBlock } : null };
}

/**
 * The register block of the direct kernels: each invocation computes `pixels` output pixels ×
 * up to `channels` channels (fewer when the layer has fewer), loading pixels + channels values per
 * filter tap for pixels × channels FMAs.
 */
export interface Conv2dDirectBlock {
  pixels: number;
  channels: number;
}

/** Register blocks the direct kernels are built for: each side 1, 2, 4, 8, 16 or 32, at most 256 accumulators. */
export function checkConv2dDirectBlock(b: Conv2dDirectBlock): void {
  const sides = [1, 2, 4, 8, 16, 32];
  if (!sides.includes(b.pixels) || !sides.includes(b.channels) || b.pixels * b.channels > 256) {
    throw new ArgumentError(
      `conv2d: a direct block is pixels×channels with each of 1, 2, 4, 8, 16 or 32 and at most 256 accumulators, got ${b.pixels}×${b.channels}`,
    );
  }
}

/** "PIXELSxCHANNELS", the form parseConv2dDirectBlock reads. */
export function formatConv2dDirectBlock(b: Conv2dDirectBlock): string {
  return `${b.pixels}x${b.channels}`;
}

/** Reads "PIXELSxCHANNELS" (e.g. "4x16"); throws an ArgumentError otherwise. */
export function parseConv2dDirectBlock(s: string): Conv2dDirectBlock {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) throw new ArgumentError(`conv2d: a direct block is written PIXELSxCHANNELS, such as 4x16, got ${JSON.stringify(s)}`);
  const b = { pixels: Number(m[1]), channels: Number(m[2]) };
  checkConv2dDirectBlock(b);
  return b;
}

/**
 * The direct kernels' register block for `adapter`. lavapipe compiles with LLVM, which keeps an
 * 8×8 block in registers; SwiftShader (Chrome's software adapter) compiles with Subzero, and with
 * an 8×8 block VGG16's first forward pass at 32×32 took 8.6 s there (1.4 s with 4×16, most of the
 * difference compiling) and its 13 conv layers then ran in 0.86 s against 0.77 s with 4×16.
 */
export function directBlockFor(adapter: { name: string }): Conv2dDirectBlock {
  return /swiftshader/i.test(adapter.name) ? { pixels: 4, channels: 16 } : { ...DEFAULT_DIRECT_BLOCK };
}

/** The block where the compiler keeps it in registers by itself (lavapipe's LLVM). */
const DEFAULT_DIRECT_BLOCK: Readonly<Conv2dDirectBlock> = Object.freeze({ pixels: 8, channels: 8 });

/**
 * Benchmark aid: the direct forward and input-gradient kernels of `gpu` use this register block
 * (null restores the choice by adapter, directBlockFor).
 */
export function setConv2dDirectBlock(gpu: Gpu, block: Conv2dDirectBlock | null): void {
  if (block) checkConv2dDirectBlock(block);
  settingsOf(gpu).directBlock = block ? { ...block } : null;
}

/** The register block the direct kernels of `gpu` use now: the one set, else the adapter's (directBlockFor). */
export function conv2dDirectBlock(gpu: Gpu): Conv2dDirectBlock {
  const set = settingsOf(gpu).directBlock;
  return set ? { ...set } : directBlockFor(gpu.adapter);
}

/** The settings a dispatch plan depends on. */
type PlanSettings = Pick<Conv2dSettings, 'tile' | 'splitK'> & { directBlock: Conv2dDirectBlock };
const DEFAULT_PLAN: PlanSettings = { tile: null, splitK: true, directBlock: DEFAULT_DIRECT_BLOCK };

function planSettings(gpu: Gpu): PlanSettings {
  const s = settingsOf(gpu);
  return { tile: s.tile, splitK: s.splitK, directBlock: conv2dDirectBlock(gpu) };
}

interface Plan {
  shader: string;
  defines: Record<string, number | boolean>;
  gemm: GemmShape;
  workgroups: [number, number, number];
}

/** Invocations per workgroup of the direct kernels. */
const DIRECT_WG = 64;

/** The largest power of two ≤ min(n, max): a register block that fits `n` channels without waste. */
function blockFor(n: number, max: number): number {
  let b = 1;
  while (b * 2 <= Math.min(n, max)) b *= 2;
  return b;
}

/** A direct kernel over M pixels (RM per invocation) × `cols` channels (RN per invocation). */
function directPixelPlan(op: string, shader: string, g: Geometry, m: number, cols: number, k: number, limits: Conv2dLimits, block: Conv2dDirectBlock, extra: Record<string, number | boolean> = {}): Plan {
  const RM = block.pixels;
  const RN = blockFor(cols, block.channels);
  const tilesN = Math.ceil(cols / RN);
  // Workgroups of DIRECT_WG invocations over all (pixel block, channel block) pairs.
  const tiles = Math.ceil((Math.ceil(m / RM) * tilesN) / DIRECT_WG);
  const gemm: GemmShape = { m, n: cols, k, tilesN, tiles, kChunk: 0, splits: 1, total: 0 };
  return { shader, defines: { RM, RN, WG: DIRECT_WG, ...extra }, gemm, workgroups: grid(op, tiles, g.p.groups, limits) };
}

/** Workgroups split K aims for, and the shortest K chunk worth a workgroup (forward, input gradient). */
const SPLIT_K_TARGET = 512;
const SPLIT_K_MIN_CHUNK = 256;

/**
 * Splits K of a tiled forward or input-gradient GEMM whose tiles do not fill the GPU (deep layers
 * at batch 1): each of `splits` workgroups per tile sums one chunk of taps into a partial output of
 * `outputSize` elements, and conv2d_split_sum adds the partials. Leaves `gemm` unsplit otherwise.
 */
function splitK(gemm: GemmShape, tile: Tile, groups: number, outputSize: number, limits: Conv2dLimits, enabled: boolean): void {
  if (!enabled) return;
  const maxByMemory = Math.floor(limits.maxStorageBufferBindingSize / (outputSize * 4));
  let splits = Math.min(Math.ceil(SPLIT_K_TARGET / (gemm.tiles * groups)), Math.floor(gemm.k / SPLIT_K_MIN_CHUNK), maxByMemory);
  if (splits <= 1) return;
  const kChunk = Math.ceil(Math.ceil(gemm.k / splits) / tile.TK) * tile.TK;
  splits = Math.ceil(gemm.k / kChunk);
  if (splits <= 1) return;
  Object.assign(gemm, { kChunk, splits, total: outputSize });
}

function forwardPlan(g: Geometry, limits: Conv2dLimits, strategy: Conv2dStrategy, settings: PlanSettings): Plan {
  const m = g.batch * g.ho * g.wo;
  const k = g.cinG * g.kh * g.kw;
  if (strategy === 'direct') return directPixelPlan('conv2d', 'conv2d_forward_direct', g, m, g.coutG, k, limits, settings.directBlock);
  const tile = pixelRowsTile(g.coutG, m, g.p.groups, settings.tile);
  const gemm = gemmShape(tile, m, g.coutG, k);
  splitK(gemm, tile, g.p.groups, g.batch * g.cout * g.ho * g.wo, limits, settings.splitK);
  return { shader: 'conv2d_forward', defines: tileDefines(tile), gemm, workgroups: grid('conv2d', gemm.tiles * gemm.splits, g.p.groups, limits) };
}

function inputGradPlan(g: Geometry, limits: Conv2dLimits, strategy: Conv2dStrategy, settings: PlanSettings): Plan {
  const op = 'conv2dBackwardInput';
  const m = g.batch * g.h * g.w;
  const k = g.coutG * g.kh * g.kw;
  if (strategy === 'direct') {
    return directPixelPlan(op, 'conv2d_input_grad_direct', g, m, g.cinG, k, limits, settings.directBlock, {
      SH: g.p.stride[0],
      SW: g.p.stride[1],
      STRIDED: g.p.stride[0] > 1 || g.p.stride[1] > 1,
    });
  }
  const tile = pixelRowsTile(g.cinG, m, g.p.groups, settings.tile);
  const gemm = gemmShape(tile, m, g.cinG, k);
  splitK(gemm, tile, g.p.groups, g.batch * g.cin * g.h * g.w, limits, settings.splitK);
  return { shader: 'conv2d_input_grad', defines: tileDefines(tile), gemm, workgroups: grid(op, gemm.tiles * gemm.splits, g.p.groups, limits) };
}

/** Workgroups the filter gradient aims for before it stops splitting K (fills a large GPU). */
const SPLIT_TARGET_WORKGROUPS = 512;
/** Smallest K chunk worth a workgroup of its own. */
const MIN_K_CHUNK = 256;
/** The same for the direct filter gradient: enough workgroups for a CPU's threads. */
const DIRECT_SPLIT_TARGET_WORKGROUPS = 32;
const DIRECT_MIN_K_CHUNK = 64;
const DIRECT_FILTER_WG = 32;

function filterGradPlan(g: Geometry, limits: Conv2dLimits, strategy: Conv2dStrategy): Plan & { sumWorkgroups: [number, number] | null } {
  const groups = g.p.groups;
  const cols = g.cinG * g.kh * g.kw;
  const k = g.batch * g.ho * g.wo;
  const total = g.cout * cols; // the filter's size
  const direct = strategy === 'direct';
  let gemm: GemmShape;
  let defines: Record<string, number>;
  if (direct) {
    const RM = blockFor(g.coutG, 8);
    const RN = blockFor(cols, 8);
    const tilesN = Math.ceil(cols / RN);
    const invocations = Math.ceil(g.coutG / RM) * tilesN;
    gemm = { m: g.coutG, n: cols, k, tilesN, tiles: Math.ceil(invocations / DIRECT_FILTER_WG), kChunk: 0, splits: 1, total };
    defines = { RM, RN, WG: DIRECT_FILTER_WG };
  } else {
    const tile = g.coutG <= 16 ? FEW_ROWS : WIDE;
    gemm = gemmShape(tile, g.coutG, cols, k);
    defines = tileDefines(tile);
  }
  // Split the long K (every output pixel of the batch) so that small filters still occupy many
  // workgroups; each split writes a partial filter, summed by a second kernel.
  const target = direct ? DIRECT_SPLIT_TARGET_WORKGROUPS : SPLIT_TARGET_WORKGROUPS;
  const minChunk = direct ? DIRECT_MIN_K_CHUNK : MIN_K_CHUNK;
  const step = direct ? 1 : defines.TK!;
  const maxByMemory = Math.max(1, Math.floor(limits.maxStorageBufferBindingSize / (total * 4)));
  let splits = Math.min(Math.ceil(target / (gemm.tiles * groups)), Math.floor(k / minChunk), maxByMemory);
  splits = Math.max(1, splits);
  const kChunk = Math.ceil(Math.ceil(k / splits) / step) * step;
  splits = Math.ceil(k / kChunk);
  Object.assign(gemm, { kChunk, splits, total });
  const op = 'conv2dBackwardFilter';
  const workgroups = grid(op, gemm.tiles * splits, groups, limits);
  const sumWorkgroups = splits > 1 ? fold(Math.ceil(total / 256), limits.maxComputeWorkgroupsPerDimension) : null;
  return { shader: direct ? 'conv2d_weight_grad_direct' : 'conv2d_weight_grad', defines, gemm, workgroups, sumWorkgroups };
}

/**
 * What the four conv2d kernels would dispatch for this problem (for checks and benchmarks), with a
 * device's `settings` (default: tiles by shape, K split where it pays).
 */
export interface Conv2dDispatchSizes {
  forward: [number, number, number];
  /** K chunks of the tiled forward and input gradient (1: not split). */
  forwardSplits: number;
  inputGrad: [number, number, number];
  inputGradSplits: number;
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
  strategy: Conv2dStrategy = 'tiled',
  settings: Partial<PlanSettings> = {},
): Conv2dDispatchSizes {
  const g = geometry('conv2d', xShape, wShape, params);
  const plan = { ...DEFAULT_PLAN, ...settings };
  const fg = filterGradPlan(g, limits, strategy);
  const fw = forwardPlan(g, limits, strategy, plan);
  const ig = inputGradPlan(g, limits, strategy, plan);
  return {
    forward: fw.workgroups,
    forwardSplits: fw.gemm.splits,
    inputGrad: ig.workgroups,
    inputGradSplits: ig.gemm.splits,
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
  const { shader, defines, gemm, workgroups } = forwardPlan(g, deviceLimits(gpu), conv2dStrategy(gpu), planSettings(gpu));
  const yShape = [g.batch, g.cout, g.ho, g.wo];
  if (gemm.splits > 1) {
    // Partial sums first; bias and activation come with their sum.
    const kernel = await gpu.kernel(shader, { ...defines, CONV2D_PARAMS, ACTIVATION: ACTIVATION_WGSL.none, HAS_BIAS: false, SPLIT: true });
    return splitSum(gpu, gemm, yShape, g.ho * g.wo, bias, g.p.activation, g.p.alpha, (partial) =>
      gpu.dispatch(kernel, { uniforms: uniforms(g, gemm), buffers: [x, w, partial], workgroups }),
    );
  }
  const kernel = await gpu.kernel(shader, {
    ...defines,
    CONV2D_PARAMS,
    ACTIVATION: ACTIVATION_WGSL[g.p.activation],
    HAS_BIAS: !!bias,
    SPLIT: false,
  });
  const y = empty(gpu, yShape);
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
  const { shader, defines, gemm, workgroups } = inputGradPlan(g, deviceLimits(gpu), conv2dStrategy(gpu), planSettings(gpu));
  const split = gemm.splits > 1;
  const kernel = await gpu.kernel(shader, { ...defines, CONV2D_PARAMS, ...(shader === 'conv2d_input_grad' ? { SPLIT: split } : {}) });
  if (split) {
    // The backward kernels ignore the forward's activation.
    return splitSum(gpu, gemm, [g.batch, g.cin, g.h, g.w], g.h * g.w, null, 'none', 0, (partial) =>
      gpu.dispatch(kernel, { uniforms: uniforms(g, gemm), buffers: [dy, w, partial], workgroups }),
    );
  }
  const dx = empty(gpu, [g.batch, g.cin, g.h, g.w]);
  gpu.dispatch(kernel, { uniforms: uniforms(g, gemm), buffers: [dy, w, dx], workgroups });
  return dx;
}

/**
 * The second half of a split-K forward or input gradient: `record` dispatches the GEMM into a
 * partial buffer [splits, total], then conv2d_split_sum adds the chunks (and bias and activation).
 */
async function splitSum(
  gpu: Gpu,
  gemm: GemmShape,
  shape: number[],
  plane: number,
  bias: Tensor | null,
  activation: Activation,
  alpha: number,
  record: (partial: Tensor) => void,
): Promise<Tensor> {
  const sum = await gpu.kernel('conv2d_split_sum', { HAS_BIAS: !!bias, ACTIVATION: ACTIVATION_WGSL[activation] });
  const out = empty(gpu, shape);
  let partial: Tensor;
  try {
    partial = empty(gpu, [gemm.splits, gemm.total]);
  } catch (e) {
    out.dispose();
    throw e;
  }
  try {
    record(partial);
    gpu.dispatch(sum, {
      uniforms: new Uniforms().u32(gemm.total, gemm.splits, plane, shape[1]!).f32(alpha),
      buffers: bias ? [partial, bias, out] : [partial, out],
      workgroups: fold(Math.ceil(gemm.total / 256), deviceLimits(gpu).maxComputeWorkgroupsPerDimension),
    });
  } catch (e) {
    out.dispose();
    throw e;
  } finally {
    // The pool hands the buffer out again only to work recorded after this point.
    partial.dispose();
  }
  return out;
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
  const { shader, defines, gemm, workgroups, sumWorkgroups } = filterGradPlan(g, deviceLimits(gpu), conv2dStrategy(gpu));
  const kernel = await gpu.kernel(shader, { ...defines, CONV2D_PARAMS });
  // Both strategies leave partial filters in the same layout; the tiled shader's sum_splits adds them.
  const sum = sumWorkgroups ? await gpu.kernel('conv2d_weight_grad', { ...tileDefines(WIDE), CONV2D_PARAMS }, 'sum_splits') : null;
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
