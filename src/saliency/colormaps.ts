/**
 * Colour maps, colour bars, overlays and resizing for RGBA images. Pure TypeScript: works in Node
 * and in browsers (an `RgbaImage` has the layout of the DOM's `ImageData`).
 *
 * - `colormap(name, t)`: one colour, t in [0, 1] → [r, g, b] in 0..255.
 * - `applyColormap(values01, name)`, `greyToRgba(values01)`: a [0, 1] map → RGBA pixels.
 * - `mapToImage(map, …)`: one image of a normalised one-channel map → `RgbaImage`.
 * - `colorbar`, `overlay`, `resizeRgba`.
 *
 * viridis and turbo are 256-entry look-up tables of the published colours; t picks the nearest
 * entry, round(t·255).
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import type { MapData } from './display.js';

/** An 8-bit RGBA image, row-major, 4 bytes per pixel (the layout of the DOM's ImageData). */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

export type ColormapName = 'viridis' | 'turbo' | 'grey' | 'gray';
export type RGB = [r: number, g: number, b: number];
export type ResizeMode = 'nearest' | 'bilinear';

export const COLORMAPS: readonly ColormapName[] = ['viridis', 'turbo', 'grey', 'gray'];

// matplotlib's viridis (van der Walt & Smith), 256 entries, each channel round(255·v).
const VIRIDIS_HEX =
  '44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467481668481769' +
  '48186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979472a7a472c7a' +
  '472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f85' +
  '4240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b' +
  '3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d' +
  '33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e' +
  '2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e' +
  '26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d' +
  '21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f88' +
  '1fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad81' +
  '28ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc74' +
  '3fbc7340bd7242be7144bf7046c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc863' +
  '5ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d' +
  '84d44b86d54989d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32' +
  'addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21a' +
  'd8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723fde725';

// Google's Turbo (Mikhailov 2019), 256 entries as published in sRGB bytes.
const TURBO_HEX =
  '30123b32154333184a341b51351e5836215f37246638276d392a733a2d793b2f803c32863d358b3e38913f3b973f3e9c' +
  '4040a24143a74146ac4249b1424bb5434eba4451bf4454c34456c74559cb455ccf455ed34661d64664da4666dd4669e0' +
  '466be3476ee64771e94773eb4776ee4778f0477bf2467df44680f64682f84685fa4687fb458afc458cfd448ffe4391fe' +
  '4294ff4196ff4099ff3e9bfe3d9efe3ba0fd3aa3fc38a5fb37a8fa35abf833adf731aff52fb2f42eb4f22cb7f02ab9ee' +
  '28bceb27bee925c0e723c3e422c5e220c7df1fc9dd1ecbda1ccdd81bd0d51ad2d21ad4d019d5cd18d7ca18d9c818dbc5' +
  '18ddc218dec018e0bd19e2bb19e3b91ae4b61ce6b41de7b21fe9af20eaac22ebaa25eca727eea42aefa12cf09e2ff19b' +
  '32f29835f39438f4913cf58e3ff68a43f78746f8844af8804ef97d52fa7a55fa7659fb735dfc6f61fc6c65fd6969fd66' +
  '6dfe6271fe5f75fe5c79fe597dff5680ff5384ff5188ff4e8bff4b8fff4992ff4796fe4499fe429cfe409ffd3fa1fd3d' +
  'a4fc3ca7fc3aa9fb39acfb38affa37b1f936b4f836b7f735b9f635bcf534bef434c1f334c3f134c6f034c8ef34cbed34' +
  'cdec34d0ea34d2e935d4e735d7e535d9e436dbe236dde037dfdf37e1dd37e3db38e5d938e7d739e9d539ebd339ecd13a' +
  'eecf3aefcd3af1cb3af2c93af4c73af5c53af6c33af7c13af8be39f9bc39faba39fbb838fbb637fcb336fcb136fdae35' +
  'fdac34fea933fea732fea431fea130fe9e2ffe9b2dfe992cfe962bfe932afe9029fd8d27fd8a26fc8725fc8423fb8122' +
  'fb7e21fa7b1ff9781ef9751df8721cf76f1af66c19f56918f46617f36315f26014f15d13f05b12ef5811ed5510ec530f' +
  'eb500eea4e0de84b0ce7490ce5470be4450ae2430ae14109df3f08dd3d08dc3b07da3907d83706d63506d43305d23105' +
  'd02f05ce2d04cc2b04ca2a04c82803c52603c32503c12302be2102bc2002b91e02b71d02b41b01b21a01af1801ac1701' +
  'a91601a71401a41301a112019e10019b0f01980e01950d01920b018e0a018b09028808028507028106027e05027a0403';

function decodeTable(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

let tables: Record<'viridis' | 'turbo', Uint8Array> | null = null;

/** The 256×3 byte table of a colour map (grey is computed, not stored). */
function table(name: ColormapName): Uint8Array | null {
  if (name === 'grey' || name === 'gray') return null;
  tables ??= { viridis: decodeTable(VIRIDIS_HEX), turbo: decodeTable(TURBO_HEX) };
  return tables[name];
}

function checkName(name: unknown, fn: string): ColormapName {
  if (!COLORMAPS.includes(name as ColormapName)) {
    throw new ArgumentError(`${fn}: unknown colour map ${JSON.stringify(name)}; use one of ${COLORMAPS.join(', ')}`);
  }
  return name as ColormapName;
}

/** Table index of t: clamped to [0, 1], then round(t·255). NaN → -1. */
function index(t: number): number {
  if (Number.isNaN(t)) return -1;
  return Math.round(Math.min(1, Math.max(0, t)) * 255);
}

/**
 * The colour of t ∈ [0, 1] (values outside are clamped) as [r, g, b] in 0..255. Grey is linear:
 * round(255·t) in each channel.
 */
export function colormap(name: ColormapName, t: number): RGB {
  const tab = table(checkName(name, 'colormap'));
  if (typeof t !== 'number' || Number.isNaN(t)) throw new ArgumentError(`colormap: t must be a number in [0, 1], got ${t}`);
  const i = index(t);
  return tab ? [tab[3 * i]!, tab[3 * i + 1]!, tab[3 * i + 2]!] : [i, i, i];
}

/**
 * Colours every value of a [0, 1] map: RGBA bytes, 4 per value, alpha 255. Values outside [0, 1]
 * are clamped; NaN becomes transparent (0, 0, 0, 0).
 */
export function applyColormap(values01: ArrayLike<number>, name: ColormapName = 'viridis'): Uint8ClampedArray {
  const tab = table(checkName(name, 'applyColormap'));
  const out = new Uint8ClampedArray(values01.length * 4);
  for (let p = 0; p < values01.length; p++) {
    const i = index(values01[p]!);
    if (i < 0) continue;
    if (tab) {
      out[4 * p] = tab[3 * i]!;
      out[4 * p + 1] = tab[3 * i + 1]!;
      out[4 * p + 2] = tab[3 * i + 2]!;
    } else {
      out[4 * p] = out[4 * p + 1] = out[4 * p + 2] = i;
    }
    out[4 * p + 3] = 255;
  }
  return out;
}

/** A [0, 1] map as opaque grey RGBA pixels: round(255·v); same as applyColormap(v, 'grey'). */
export function greyToRgba(values01: ArrayLike<number>): Uint8ClampedArray {
  return applyColormap(values01, 'grey');
}

function checkSize(width: number, height: number, fn: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ArgumentError(`${fn}: width and height must be positive integers, got ${width}×${height}`);
  }
}

/** Checks that `img` is an RgbaImage whose data fits its size. */
export function checkImage(img: RgbaImage, fn: string, what = 'image'): void {
  const data: unknown = img?.data;
  if (img === null || typeof img !== 'object' || !(data instanceof Uint8ClampedArray || data instanceof Uint8Array)) {
    throw new ArgumentError(`${fn}: ${what} must be { width, height, data: Uint8ClampedArray }`);
  }
  checkSize(img.width, img.height, `${fn}: ${what}`);
  if (img.data.length !== img.width * img.height * 4) {
    throw new ShapeError(
      `${fn}: ${what} is ${img.width}×${img.height} and needs ${img.width * img.height * 4} bytes of RGBA, but has ${img.data.length}`,
    );
  }
}

/**
 * One image of a one-channel map with values in [0, 1] (normalise first), coloured with a colour
 * map: `map` is [N, 1, H, W] or [1, H, W], `index` picks the image (default 0).
 */
export function mapToImage(map: MapData, options: { index?: number; colormap?: ColormapName } = {}): RgbaImage {
  const { index: n = 0, colormap: name = 'viridis' } = options;
  const shape = map.shape;
  const s4 = shape.length === 4 ? shape : shape.length === 3 ? [1, ...shape] : null;
  if (!s4 || s4[1] !== 1) {
    throw new ShapeError(`mapToImage: map shape ${formatShape(shape)} must be [N, 1, H, W] or [1, H, W]; reduce channels first`);
  }
  const [count, , height, width] = s4 as [number, number, number, number];
  if (map.data.length !== count * height * width) {
    throw new ShapeError(`mapToImage: map data has ${map.data.length} values but shape ${formatShape(shape)} needs ${count * height * width}`);
  }
  if (!Number.isInteger(n) || n < 0 || n >= count) {
    throw new ArgumentError(`mapToImage: index ${n} is out of range for a batch of ${count}`);
  }
  const hw = height * width;
  return { width, height, data: applyColormap(map.data.subarray(n * hw, (n + 1) * hw), name) };
}

/**
 * A colour bar: the colour map from 0 to 1, left to right when width ≥ height, otherwise bottom
 * to top (as beside a figure). Opaque RGBA.
 */
export function colorbar(width: number, height: number, name: ColormapName = 'viridis'): RgbaImage {
  checkSize(width, height, 'colorbar');
  checkName(name, 'colorbar');
  const horizontal = width >= height;
  const steps = horizontal ? width : height;
  const ramp = new Float32Array(steps);
  for (let i = 0; i < steps; i++) ramp[i] = steps === 1 ? 0 : i / (steps - 1);
  const colours = applyColormap(ramp, name);
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = horizontal ? x : height - 1 - y;
      data.set(colours.subarray(4 * i, 4 * i + 4), 4 * (y * width + x));
    }
  }
  return { width, height, data };
}

/**
 * Alpha-blends `heat` over `base` (equal sizes). Each heat pixel's weight is
 * a = opacity · alpha_heat / 255; over an opaque base the result is a·heat + (1 − a)·base, and in
 * general Porter–Duff "over": alpha_out = a + alpha_base·(1 − a). Channels are rounded.
 */
export function overlay(base: RgbaImage, heat: RgbaImage, opacity = 0.5): RgbaImage {
  checkImage(base, 'overlay', 'base image');
  checkImage(heat, 'overlay', 'heat image');
  if (base.width !== heat.width || base.height !== heat.height) {
    throw new ShapeError(
      `overlay: base image is ${base.width}×${base.height} but heat image is ${heat.width}×${heat.height}; resize one with resizeRgba`,
    );
  }
  if (typeof opacity !== 'number' || !Number.isFinite(opacity) || opacity < 0 || opacity > 1) {
    throw new ArgumentError(`overlay: opacity must be a number in [0, 1], got ${opacity}`);
  }
  const out = new Uint8ClampedArray(base.data.length);
  for (let p = 0; p < out.length; p += 4) {
    const a = (opacity * heat.data[p + 3]!) / 255;
    const ab = base.data[p + 3]! / 255;
    const ao = a + ab * (1 - a);
    for (let k = 0; k < 3; k++) {
      out[p + k] = ao > 0 ? Math.round((a * heat.data[p + k]! + ab * (1 - a) * base.data[p + k]!) / ao) : 0;
    }
    out[p + 3] = Math.round(ao * 255);
  }
  return { width: base.width, height: base.height, data: out };
}

/** Per output index along one axis: the source indices and weights that make it. */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array[];
}

/**
 * Sampling weights for resizing one axis from `inSize` to `outSize`, half-pixel centres
 * (align_corners = false). Nearest: source floor((o + 0.5)·in/out). Bilinear: the triangle filter;
 * when upscaling this is plain bilinear interpolation with edge clamping, and when downscaling the
 * filter widens by the scale factor so that every source pixel contributes (antialiasing, as in
 * PIL's resize), instead of sampling 2 of every in/out pixels.
 */
function axisWeights(inSize: number, outSize: number, mode: ResizeMode): AxisWeights {
  const scale = inSize / outSize;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights: Float64Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    if (mode === 'nearest') {
      start[o] = Math.min(inSize - 1, Math.floor(centre));
      count[o] = 1;
      weights.push(Float64Array.of(1));
      continue;
    }
    const support = Math.max(scale, 1);
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(inSize, Math.ceil(centre + support));
    const ws = new Float64Array(hi - lo);
    let total = 0;
    for (let i = lo; i < hi; i++) {
      const wgt = Math.max(0, 1 - Math.abs((i + 0.5 - centre) / support));
      ws[i - lo] = wgt;
      total += wgt;
    }
    for (let i = 0; i < ws.length; i++) ws[i]! /= total;
    start[o] = lo;
    count[o] = ws.length;
    weights.push(ws);
  }
  return { start, count, weights };
}

/**
 * Resizes an interleaved image of `channels` values per pixel (separably: rows, then columns).
 * Returns unrounded values as a Float32Array of dstW·dstH·channels.
 */
export function resample(
  src: ArrayLike<number>,
  srcW: number,
  srcH: number,
  channels: number,
  dstW: number,
  dstH: number,
  mode: ResizeMode = 'bilinear',
): Float32Array {
  if (mode !== 'nearest' && mode !== 'bilinear') {
    throw new ArgumentError(`resize: unknown mode ${JSON.stringify(mode)}; use 'nearest' or 'bilinear'`);
  }
  checkSize(srcW, srcH, 'resize: source');
  checkSize(dstW, dstH, 'resize: target');
  const xw = axisWeights(srcW, dstW, mode);
  const yw = axisWeights(srcH, dstH, mode);
  // Horizontal pass: srcH rows of dstW pixels.
  const mid = new Float32Array(srcH * dstW * channels);
  for (let y = 0; y < srcH; y++) {
    for (let x = 0; x < dstW; x++) {
      const s = xw.start[x]!;
      const ws = xw.weights[x]!;
      for (let k = 0; k < channels; k++) {
        let acc = 0;
        for (let i = 0; i < ws.length; i++) acc += ws[i]! * src[(y * srcW + s + i) * channels + k]!;
        mid[(y * dstW + x) * channels + k] = acc;
      }
    }
  }
  // Vertical pass.
  const out = new Float32Array(dstH * dstW * channels);
  for (let y = 0; y < dstH; y++) {
    const s = yw.start[y]!;
    const ws = yw.weights[y]!;
    for (let x = 0; x < dstW; x++) {
      for (let k = 0; k < channels; k++) {
        let acc = 0;
        for (let i = 0; i < ws.length; i++) acc += ws[i]! * mid[((s + i) * dstW + x) * channels + k]!;
        out[(y * dstW + x) * channels + k] = acc;
      }
    }
  }
  return out;
}

/**
 * Resizes an RGBA image to width×height, e.g. to show a 7×7 Grad-CAM map or a 28×28 input at a
 * visible size: `'nearest'` keeps the pixels as sharp blocks, `'bilinear'` (half-pixel centres,
 * antialiased when shrinking) smooths them. Channels are rounded.
 */
export function resizeRgba(img: RgbaImage, width: number, height: number, mode: ResizeMode = 'nearest'): RgbaImage {
  checkImage(img, 'resizeRgba');
  checkSize(width, height, 'resizeRgba');
  const values = resample(img.data, img.width, img.height, 4, width, height, mode);
  const data = new Uint8ClampedArray(values.length);
  for (let i = 0; i < values.length; i++) data[i] = Math.round(values[i]!);
  return { width, height, data };
}
