/**
 * Pictures of tensors for the "Inside the network" view, as RGBA images of one pixel per value
 * (the page scales them up with `image-rendering: pixelated`), so that a test can read a canvas back
 * and find each value where it was drawn.
 *
 * - Values: a diverging scale, red for positive, blue for negative, white for 0, symmetric around 0
 *   (`divergingColor`); one scale per picture, so channels drawn together compare.
 * - Masks (1[x > 0], 1[g > 0], the switches): MASK_ON where 1, MASK_OFF where 0.
 * - A tensor [1, C, H, W] is drawn as a grid of its C channels, 1 px apart; a vector [1, N] as rows
 *   of at most 64 values (cells past N in GAP_COLOUR).
 *
 * Pure functions on arrays: they run in Node too (the browser test draws the expected pictures
 * with them).
 */
import type { RgbaImage } from '../../src/saliency/colormaps.js';
import type { Plane } from './trace-data.js';

export type RGB = readonly [number, number, number];

export const POSITIVE: RGB = [178, 24, 43];
export const NEGATIVE: RGB = [33, 102, 172];
export const ZERO: RGB = [255, 255, 255];
export const MASK_ON: RGB = [34, 34, 34];
export const MASK_OFF: RGB = [255, 255, 255];
export const GAP_COLOUR: RGB = [204, 204, 216];

/** Values per row when a vector is drawn. */
export const VECTOR_ROW = 64;

/** The colour of v on a scale where ±scale are the full colours (clipped beyond); 0 is white. */
export function divergingColor(v: number, scale: number): RGB {
  if (!Number.isFinite(v)) return GAP_COLOUR;
  const t = scale > 0 ? Math.max(-1, Math.min(1, v / scale)) : 0;
  const end = t >= 0 ? POSITIVE : NEGATIVE;
  const a = Math.abs(t);
  return [Math.round(ZERO[0] + (end[0] - ZERO[0]) * a), Math.round(ZERO[1] + (end[1] - ZERO[1]) * a), Math.round(ZERO[2] + (end[2] - ZERO[2]) * a)];
}

/** max |v| (0 for an empty array). */
export function absMax(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]!);
    if (a > m) m = a;
  }
  return m;
}

/** How a tensor is laid out as pictures: C channels of h×w, of which `valid` values each are real. */
export interface PlaneDims {
  channels: number;
  h: number;
  w: number;
  valid: number;
}

/** [1, C, H, W] → C planes of H×W; [1, N] (or any other rank) → one plane of rows of VECTOR_ROW. */
export function planeDims(shape: readonly number[]): PlaneDims {
  if (shape.length === 4) return { channels: shape[1]!, h: shape[2]!, w: shape[3]!, valid: shape[2]! * shape[3]! };
  const n = shape.slice(1).reduce((a, b) => a * b, 1);
  const w = Math.min(n, VECTOR_ROW);
  return { channels: 1, h: Math.ceil(n / Math.max(1, w)), w, valid: n };
}

/** The grid of C tiles: columns, rows, and the image size with 1 px between tiles. */
export function gridLayout(d: PlaneDims): { cols: number; rows: number; width: number; height: number } {
  const cols = Math.ceil(Math.sqrt(d.channels));
  const rows = Math.ceil(d.channels / cols);
  return { cols, rows, width: cols * d.w + (cols - 1), height: rows * d.h + (rows - 1) };
}

/** The tile (channel) under pixel (px, py) of a grid image, or null on a gap. */
export function tileAt(d: PlaneDims, px: number, py: number): number | null {
  const { cols } = gridLayout(d);
  const col = Math.floor(px / (d.w + 1));
  const row = Math.floor(py / (d.h + 1));
  if (px - col * (d.w + 1) >= d.w || py - row * (d.h + 1) >= d.h || col >= cols) return null;
  const c = row * cols + col;
  return c < d.channels ? c : null;
}

function image(width: number, height: number, fill: RGB): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let p = 0; p < width * height; p++) data.set([fill[0], fill[1], fill[2], 255], p * 4);
  return { width, height, data };
}

function put(img: RgbaImage, x: number, y: number, c: RGB): void {
  const o = (y * img.width + x) * 4;
  img.data[o] = c[0];
  img.data[o + 1] = c[1];
  img.data[o + 2] = c[2];
  img.data[o + 3] = 255;
}

/**
 * Every channel of `plane` as a grid, on one diverging scale (default: max |v| of the whole
 * tensor), or, with scale 'mask', as a 0/1 mask (MASK_ON where the value is not 0).
 */
export function gridImage(plane: Plane, scale: number | 'mask' = absMax(plane.values)): RgbaImage {
  const d = planeDims(plane.shape);
  const { cols, width, height } = gridLayout(d);
  const img = image(width, height, GAP_COLOUR);
  const per = d.h * d.w;
  for (let c = 0; c < d.channels; c++) {
    const x0 = (c % cols) * (d.w + 1);
    const y0 = Math.floor(c / cols) * (d.h + 1);
    for (let p = 0; p < per; p++) {
      const v = plane.values[c * d.valid + p]!;
      const colour = p >= d.valid ? GAP_COLOUR : scale === 'mask' ? (v !== 0 ? MASK_ON : MASK_OFF) : divergingColor(v, scale);
      put(img, x0 + (p % d.w), y0 + Math.floor(p / d.w), colour);
    }
  }
  return img;
}

/** The values of channel c of `plane` (the whole vector for [1, N]). */
export function channelValues(plane: Plane, c: number): Float32Array {
  const d = planeDims(plane.shape);
  return plane.values.subarray(c * d.valid, (c + 1) * d.valid);
}

/** Channel c of `plane` as one picture, on a diverging scale (default: that channel's max |v|). */
export function channelImage(plane: Plane, c: number, scale?: number): RgbaImage {
  const d = planeDims(plane.shape);
  const values = channelValues(plane, c);
  const s = scale ?? absMax(values);
  const img = image(d.w, d.h, GAP_COLOUR);
  for (let p = 0; p < d.valid; p++) put(img, p % d.w, Math.floor(p / d.w), divergingColor(values[p]!, s));
  return img;
}

/** A 0/1 mask laid out as a channel of `dims` (MASK_ON for 1). */
export function maskImage(bits: ArrayLike<number>, dims: PlaneDims): RgbaImage {
  const img = image(dims.w, dims.h, GAP_COLOUR);
  for (let p = 0; p < dims.valid; p++) put(img, p % dims.w, Math.floor(p / dims.w), bits[p] ? MASK_ON : MASK_OFF);
  return img;
}

/** 1 where v > 0, else 0. */
export function positive(values: ArrayLike<number>): Uint8Array {
  return Uint8Array.from({ length: values.length }, (_, i) => (values[i]! > 0 ? 1 : 0));
}

/** Of an input plane of `size` values: 1 where some switch of the channel points (its window's maximum). */
export function switchTargets(switches: ArrayLike<number>, size: number): Uint8Array {
  const bits = new Uint8Array(size);
  for (let i = 0; i < switches.length; i++) {
    const s = switches[i]!;
    if (s >= 0 && s < size) bits[s] = 1;
  }
  return bits;
}

/** Reads the values of a drawn mask back (for tests): 1 where the pixel is MASK_ON. */
export function readMask(img: RgbaImage): Uint8Array {
  return Uint8Array.from({ length: img.width * img.height }, (_, p) =>
    img.data[p * 4] === MASK_ON[0] && img.data[p * 4 + 1] === MASK_ON[1] && img.data[p * 4 + 2] === MASK_ON[2] ? 1 : 0,
  );
}
