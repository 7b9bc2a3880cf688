/**
 * Display transforms for saliency maps, on CPU arrays (a map read back from the GPU with
 * `tensor.read()`, plus its shape). Pure TypeScript: works in Node and in browsers.
 *
 * The methods return raw, signed attributions; everything here is a separate, named step that a
 * caller applies for display (see docs/methods.md):
 * - `reduceChannels`: |·| max over channels (Simonyan et al.), |·| sum, or signed sum.
 * - `clipPercentile`: clip each image to its [low, high] percentiles.
 * - `normalize`: scale to [0, 1] (min-max, or symmetric about 0 for signed maps).
 * - `threshold`: binary mask and bounding box (weakly supervised localisation).
 *
 * Maps are `[N, C, H, W]` or `[C, H, W]` (one image). Every function returns a new map and leaves
 * its input unchanged.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';

/** A map on the CPU: `data` in row-major order for `shape` ([N, C, H, W] or [C, H, W]). */
export type MapData = { data: Float32Array; shape: readonly number[] };

/** How `reduceChannels` combines the channels of each pixel. */
export type ChannelReduction = 'maxAbs' | 'sumAbs' | 'sum';

export interface ClipPercentileOptions {
  /** Lower percentile in [0, 100]; default 0 (no clipping from below). */
  low?: number;
  /** Upper percentile in [0, 100]; default 99. */
  high?: number;
  /** Percentiles of each image separately (default), or of the whole batch. */
  perImage?: boolean;
}

export type NormalizeMode = 'minmax' | 'absmax';

export interface NormalizeOptions {
  /**
   * - `'minmax'` (default): (v − min) / (max − min). A constant map becomes all 0.
   * - `'absmax'`: v / (2·max|v|) + 0.5, for signed maps: 0 → 0.5, −max|v| → 0, +max|v| → 1.
   *   An all-zero map becomes all 0.5 (the value of 0 on this scale).
   */
  mode?: NormalizeMode;
  /** Statistics of each image separately (default), or of the whole batch. */
  perImage?: boolean;
}

/** `threshold` options: a fraction of each image's maximum (default 0.5), or an absolute value. */
export type ThresholdOptions = { fraction?: number } | { value: number };

/** A box in pixel-edge coordinates: it covers columns x1 … x2−1 and rows y1 … y2−1. */
export type Box = [x1: number, y1: number, x2: number, y2: number];

export interface ThresholdResult {
  /** 1 where the map is ≥ the threshold, else 0; H·W entries in row-major order. */
  mask: Uint8Array;
  width: number;
  height: number;
  /** The threshold actually used for this image. */
  threshold: number;
  /** Bounding box of the largest 4-connected component of the mask; null when the mask is empty. */
  box: Box | null;
  /** Number of pixels in that component (0 when the mask is empty). */
  area: number;
}

interface Dims {
  n: number;
  c: number;
  h: number;
  w: number;
}

/** Checks a map and returns its dimensions, treating [C, H, W] as one image. */
function dims(map: MapData, fn: string): Dims {
  if (map === null || typeof map !== 'object' || !(map.data instanceof Float32Array) || !Array.isArray(map.shape)) {
    throw new ArgumentError(`${fn}: expected a map { data: Float32Array, shape: number[] }`);
  }
  const { shape, data } = map;
  if (shape.length !== 3 && shape.length !== 4) {
    throw new ShapeError(`${fn}: map shape ${formatShape(shape)} must be [N, C, H, W] or [C, H, W]`);
  }
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 1) {
      throw new ShapeError(`${fn}: map shape ${formatShape(shape)} must contain positive integers`);
    }
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) {
    throw new ShapeError(`${fn}: map data has ${data.length} values but shape ${formatShape(shape)} needs ${size}`);
  }
  const [n, c, h, w] = shape.length === 4 ? shape : [1, ...shape];
  return { n: n!, c: c!, h: h!, w: w! };
}

function requireFinite(data: Float32Array, fn: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new ArgumentError(`${fn}: the map holds a non-finite value (${data[i]}) at index ${i}`);
    }
  }
}

/** Index ranges [start, end) of the images (or of the whole batch with perImage false). */
function groups(n: number, per: number, perImage: boolean): [number, number][] {
  if (!perImage) return [[0, n * per]];
  const out: [number, number][] = [];
  for (let i = 0; i < n; i++) out.push([i * per, (i + 1) * per]);
  return out;
}

/**
 * Combines the channels of each pixel: `'maxAbs'` = max_c |m(c, i, j)| (the map of Simonyan et
 * al.), `'sumAbs'` = Σ_c |m|, `'sum'` = Σ_c m (signed). [N, C, H, W] → [N, 1, H, W]; a rank-3
 * [C, H, W] map gives [1, H, W].
 */
export function reduceChannels(map: MapData, mode: ChannelReduction = 'maxAbs'): MapData {
  const { n, c, h, w } = dims(map, 'reduceChannels');
  if (mode !== 'maxAbs' && mode !== 'sumAbs' && mode !== 'sum') {
    throw new ArgumentError(`reduceChannels: unknown mode ${JSON.stringify(mode)}; use 'maxAbs', 'sumAbs' or 'sum'`);
  }
  const hw = h * w;
  const src = map.data;
  const out = new Float32Array(n * hw);
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < hw; p++) {
      let acc = mode === 'maxAbs' ? -Infinity : 0;
      for (let k = 0; k < c; k++) {
        const v = src[(b * c + k) * hw + p]!;
        if (mode === 'maxAbs') acc = Math.max(acc, Math.abs(v));
        else if (mode === 'sumAbs') acc += Math.abs(v);
        else acc += v;
      }
      out[b * hw + p] = acc;
    }
  }
  const shape = map.shape.length === 4 ? [n, 1, h, w] : [1, h, w];
  return { data: out, shape };
}

/**
 * The p-th percentile (0 ≤ p ≤ 100) of `values`, interpolating linearly between the two nearest
 * ranks (NumPy's default): position p/100 · (n − 1) in the sorted values.
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (!Number.isFinite(p) || p < 0 || p > 100) {
    throw new ArgumentError(`percentile: p must be a number in [0, 100], got ${p}`);
  }
  if (values.length === 0) throw new ArgumentError('percentile: no values');
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const pos = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const f = pos - lo;
  return sorted[lo]! + f * (sorted[hi]! - sorted[lo]!);
}

/**
 * Clips each image (all its channels together) to [percentile(low), percentile(high)], e.g. the
 * common "clip at the 99th percentile" before scaling, which keeps a few extreme pixels from
 * darkening the rest. Same shape as the input.
 */
export function clipPercentile(map: MapData, options: ClipPercentileOptions = {}): MapData {
  const { n, c, h, w } = dims(map, 'clipPercentile');
  const { low = 0, high = 99, perImage = true } = options;
  for (const [name, v] of [['low', low], ['high', high]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) {
      throw new ArgumentError(`clipPercentile: ${name} must be a percentile in [0, 100], got ${v}`);
    }
  }
  if (low > high) throw new ArgumentError(`clipPercentile: low (${low}) must not exceed high (${high})`);
  requireFinite(map.data, 'clipPercentile');
  const out = new Float32Array(map.data);
  for (const [start, end] of groups(n, c * h * w, perImage)) {
    const part = out.subarray(start, end);
    const lo = percentile(part, low);
    const hi = percentile(part, high);
    for (let i = 0; i < part.length; i++) part[i] = Math.min(hi, Math.max(lo, part[i]!));
  }
  return { data: out, shape: [...map.shape] };
}

/** Scales each image (all its channels together) to [0, 1]; see `NormalizeOptions`. */
export function normalize(map: MapData, options: NormalizeOptions = {}): MapData {
  const { n, c, h, w } = dims(map, 'normalize');
  const { mode = 'minmax', perImage = true } = options;
  if (mode !== 'minmax' && mode !== 'absmax') {
    throw new ArgumentError(`normalize: unknown mode ${JSON.stringify(mode)}; use 'minmax' or 'absmax'`);
  }
  requireFinite(map.data, 'normalize');
  const out = new Float32Array(map.data);
  for (const [start, end] of groups(n, c * h * w, perImage)) {
    const part = out.subarray(start, end);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < part.length; i++) {
      min = Math.min(min, part[i]!);
      max = Math.max(max, part[i]!);
    }
    if (mode === 'minmax') {
      const range = max - min;
      for (let i = 0; i < part.length; i++) part[i] = range > 0 ? (part[i]! - min) / range : 0;
    } else {
      const m = Math.max(Math.abs(min), Math.abs(max));
      for (let i = 0; i < part.length; i++) part[i] = m > 0 ? part[i]! / (2 * m) + 0.5 : 0.5;
    }
  }
  return { data: out, shape: [...map.shape] };
}

/**
 * Turns each image of a one-channel map into a binary mask and a bounding box: the weakly
 * supervised localisation use of saliency maps in Simonyan et al.
 *
 * - mask = 1 where v ≥ t, with t = fraction · (the image's maximum) (default fraction 0.5) or
 *   t = `value`. With `fraction`, an image whose maximum is not positive gets an empty mask.
 * - box = bounding box of the largest 4-connected component of the mask (pixels sharing an edge),
 *   which drops small, scattered responses away from the object. Ties between components of equal
 *   size go to the one met first in row-major order. `box` is null when the mask is empty.
 * - Boxes are in pixel-edge coordinates: [x1, y1, x2, y2] covers columns x1 … x2−1 and rows
 *   y1 … y2−1, so a single pixel at (x, y) is [x, y, x+1, y+1] and width = x2 − x1.
 *
 * The map must have one channel ([N, 1, H, W] or [1, H, W]): reduce channels first.
 */
export function threshold(map: MapData, options: ThresholdOptions = {}): ThresholdResult[] {
  const { n, c, h, w } = dims(map, 'threshold');
  if (c !== 1) {
    throw new ShapeError(
      `threshold: map shape ${formatShape(map.shape)} has ${c} channels; reduce them to one first with reduceChannels`,
    );
  }
  const hasValue = 'value' in options && options.value !== undefined;
  const hasFraction = 'fraction' in options && options.fraction !== undefined;
  if (hasValue && hasFraction) throw new ArgumentError('threshold: give either fraction or value, not both');
  let fraction = 0.5;
  let value = 0;
  if (hasValue) {
    value = (options as { value: number }).value;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new ArgumentError(`threshold: value must be a finite number, got ${value}`);
    }
  } else if (hasFraction) {
    fraction = (options as { fraction: number }).fraction;
    if (typeof fraction !== 'number' || !Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
      throw new ArgumentError(`threshold: fraction must be a number in [0, 1], got ${fraction}`);
    }
  }
  const hw = h * w;
  const results: ThresholdResult[] = [];
  for (let b = 0; b < n; b++) {
    const img = map.data.subarray(b * hw, (b + 1) * hw);
    let t: number;
    let empty = false;
    if (hasValue) {
      t = value;
    } else {
      let max = -Infinity;
      for (let i = 0; i < hw; i++) if (img[i]! > max) max = img[i]!;
      t = fraction * max;
      empty = !(max > 0);
    }
    const mask = new Uint8Array(hw);
    if (!empty) for (let i = 0; i < hw; i++) mask[i] = img[i]! >= t ? 1 : 0;
    const { box, area } = largestComponent(mask, w, h);
    results.push({ mask, width: w, height: h, threshold: t, box, area });
  }
  return results;
}

/**
 * The largest 4-connected component of a binary mask (non-zero = set): its bounding box in
 * pixel-edge coordinates (see `threshold`) and its pixel count. Ties go to the component met
 * first in row-major order.
 */
export function largestComponent(mask: Uint8Array, width: number, height: number): { box: Box | null; area: number } {
  if (mask.length !== width * height) {
    throw new ShapeError(`largestComponent: mask has ${mask.length} entries but ${width}×${height} needs ${width * height}`);
  }
  const seen = new Uint8Array(mask.length);
  const stack = new Int32Array(mask.length);
  let best: Box | null = null;
  let bestArea = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    let area = 0;
    let x1 = width;
    let y1 = height;
    let x2 = -1;
    let y2 = -1;
    while (top > 0) {
      const p = stack[--top]!;
      area++;
      const x = p % width;
      const y = (p - x) / width;
      if (x < x1) x1 = x;
      if (x > x2) x2 = x;
      if (y < y1) y1 = y;
      if (y > y2) y2 = y;
      const visit = (q: number): void => {
        if (mask[q] && !seen[q]) {
          seen[q] = 1;
          stack[top++] = q;
        }
      };
      if (x > 0) visit(p - 1);
      if (x < width - 1) visit(p + 1);
      if (y > 0) visit(p - width);
      if (y < height - 1) visit(p + width);
    }
    if (area > bestArea) {
      bestArea = area;
      best = [x1, y1, x2 + 1, y2 + 1];
    }
  }
  return { box: best, area: bestArea };
}
