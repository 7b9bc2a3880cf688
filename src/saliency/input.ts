/**
 * An RGBA image as model input (NCHW floats in [0, 1]). Pure TypeScript, browser-safe: the CLI
 * (through image.ts) and the <saliency-view> web component use this same function, so a page and
 * the Node path feed a model identical numbers for the same pixels.
 */
import { ArgumentError } from '../runtime/errors.js';
import { getLimits, raiseHint } from '../runtime/limits.js';
import { checkImage, resample, type RgbaImage, type ResizeMode } from './colormaps.js';

export interface ImageToTensorOptions {
  /** 3: RGB planes (default); 1: luminance 0.299·R + 0.587·G + 0.114·B. */
  channels?: 1 | 3;
  /** Output size; default the image's own. */
  width?: number;
  height?: number;
  /** How to resize (half-pixel centres; bilinear is antialiased when shrinking). Default 'bilinear'. */
  resize?: ResizeMode;
  /**
   * Composite transparent pixels over this colour ([r, g, b], 0..255) first. Default: alpha is
   * ignored and the stored colour is used.
   */
  background?: [number, number, number];
}

/**
 * An image as model input: a Float32Array in NCHW order for shape [1, channels, height, width],
 * values in [0, 1] (byte / 255), resized to width×height.
 */
export function imageToTensorData(img: RgbaImage, options: ImageToTensorOptions = {}): Float32Array {
  checkImage(img, 'imageToTensorData');
  const { channels = 3, width = img.width, height = img.height, resize = 'bilinear', background } = options;
  if (channels !== 1 && channels !== 3) throw new ArgumentError(`imageToTensorData: channels must be 1 or 3, got ${channels}`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ArgumentError(`imageToTensorData: width and height must be positive integers, got ${width}×${height}`);
  }
  const limit = getLimits().maxImagePixels;
  if (width * height > limit) {
    throw new ArgumentError(`imageToTensorData: an output of ${width}×${height} pixels is more than the limit of ${limit} pixels (${raiseHint('maxImagePixels')})`);
  }
  if (resize !== 'bilinear' && resize !== 'nearest') {
    throw new ArgumentError(`imageToTensorData: unknown resize mode ${JSON.stringify(resize)}; use 'bilinear' or 'nearest'`);
  }
  if (background !== undefined && (!Array.isArray(background) || background.length !== 3 || !background.every((v) => Number.isFinite(v)))) {
    throw new ArgumentError('imageToTensorData: background must be [r, g, b] with values in 0..255');
  }
  const n = img.width * img.height;
  const rgb = new Float32Array(n * 3);
  for (let p = 0; p < n; p++) {
    const a = background ? img.data[4 * p + 3]! / 255 : 1;
    for (let k = 0; k < 3; k++) {
      const v = img.data[4 * p + k]!;
      rgb[3 * p + k] = (background ? a * v + (1 - a) * background[k]! : v) / 255;
    }
  }
  const sized = img.width === width && img.height === height ? rgb : resample(rgb, img.width, img.height, 3, width, height, resize);
  const hw = width * height;
  const out = new Float32Array(channels * hw);
  for (let p = 0; p < hw; p++) {
    const r = sized[3 * p]!;
    const g = sized[3 * p + 1]!;
    const b = sized[3 * p + 2]!;
    if (channels === 1) {
      out[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    } else {
      out[p] = r;
      out[hw + p] = g;
      out[2 * hw + p] = b;
    }
  }
  return out;
}

/**
 * Model input back to a picture (the image as the model sees it): [channels, height, width] floats
 * in [0, 1], 1 (grey) or 3 (RGB planes) channels → opaque RGBA bytes, round(255·v).
 */
export function inputToRgba(data: Float32Array, channels: number, width: number, height: number): RgbaImage {
  const plane = width * height;
  if (channels !== 1 && channels !== 3) throw new ArgumentError(`inputToRgba: channels must be 1 or 3, got ${channels}`);
  if (data.length < channels * plane) throw new ArgumentError(`inputToRgba: ${data.length} values are fewer than ${channels}×${height}×${width}`);
  const out = new Uint8ClampedArray(plane * 4);
  for (let p = 0; p < plane; p++) {
    for (let k = 0; k < 3; k++) out[4 * p + k] = Math.round(255 * data[(channels === 1 ? 0 : k) * plane + p]!);
    out[4 * p + 3] = 255;
  }
  return { width, height, data: out };
}

/** The region [x, y, width, height] (whole pixels, inside the image) of an RGBA image. */
export function cropRgba(img: RgbaImage, region: readonly [number, number, number, number]): RgbaImage {
  checkImage(img, 'cropRgba');
  const [x, y, w, h] = region;
  if (![x, y, w, h].every((v) => Number.isInteger(v) && v >= 0) || w === 0 || h === 0) {
    throw new ArgumentError(`cropRgba: the region must be x, y, width, height in whole pixels with width, height > 0, got ${region.join(', ')}`);
  }
  if (x + w > img.width || y + h > img.height) {
    throw new ArgumentError(`cropRgba: the region ${x},${y},${w},${h} reaches outside the ${img.width}×${img.height} image`);
  }
  const data = new Uint8ClampedArray(w * h * 4);
  for (let r = 0; r < h; r++) data.set(img.data.subarray(((y + r) * img.width + x) * 4, ((y + r) * img.width + x + w) * 4), r * w * 4);
  return { width: w, height: h, data };
}
