/**
 * From a raw attribution to a picture: the display steps, named and in order. Input-shaped maps
 * are reduced over channels (max of |·|, the paper's), clipped at the 99th percentile and
 * min-max normalised; one-channel maps (CAM, Grad-CAM) are min-max normalised. The result is
 * coloured and laid over the input, each pixel the more opaque the higher its value.
 */
import { colorbar, mapToImage, overlay, resizeRgba, type ColormapName, type RgbaImage } from './colormaps.js';
import { ArgumentError } from '../runtime/errors.js';
import { clipPercentile, normalize, reduceChannels, type ChannelReduction, type MapData } from './display.js';

export interface RenderOptions {
  /**
   * 'attribution' (default): an input-shaped gradient map, shown as max over channels of |·|;
   * 'cam': a one-channel class activation map, shown as it is.
   */
  kind?: 'attribution' | 'cam';
  /** Channel reduction for multi-channel maps (default 'maxAbs'). */
  reduce?: ChannelReduction;
  /** Upper percentile to clip at, for multi-channel maps (default 99; 100 = no clipping). */
  clip?: number;
  colormap?: ColormapName;
  /**
   * Opacity of the heat map over the image where the map is highest (default 0.7; 1 = heat map
   * only there).
   */
  opacity?: number;
  /**
   * 'value' (default): each pixel's opacity rises with its displayed value, from 0 (the image
   * shows as it is) to `opacity`, so low values do not tint the picture. 'constant': `opacity`
   * everywhere.
   */
  alpha?: 'value' | 'constant';
  /** Side of the rendered square image in pixels (default 224). */
  size?: number;
  /** Width and height of the rendered image instead of a square (e.g. the photo's aspect ratio). */
  width?: number;
  height?: number;
}

/** The heat map's opacity where the map is highest. */
export const DEFAULT_OPACITY = 0.7;

/** The display steps: [N, C, H, W] → [N, 1, H, W] in [0, 1]. */
export function displayMap(raw: MapData, options: RenderOptions = {}): MapData {
  const { kind = 'attribution', clip = 99 } = options;
  if (kind !== 'attribution' && kind !== 'cam') throw new ArgumentError(`displayMap: kind must be 'attribution' or 'cam', got ${JSON.stringify(kind)}`);
  let m = raw;
  if (kind === 'attribution') {
    m = reduceChannels(m, options.reduce ?? 'maxAbs'); // also takes |·| of one-channel (grey) inputs
    if (clip !== 100) m = clipPercentile(m, { high: clip }); // which checks that clip is a percentile
  }
  return normalize(m, { mode: 'minmax' });
}

/**
 * Image `index` of a raw map, coloured and laid over `base`, at `size`×`size` pixels (or
 * `width`×`height`). The map and the base are each stretched to that size.
 */
export function renderOverlay(raw: MapData, base: RgbaImage, options: RenderOptions & { index?: number } = {}): RgbaImage {
  const size = options.size ?? 224;
  const width = options.width ?? size;
  const height = options.height ?? size;
  const { alpha = 'value' } = options;
  if (alpha !== 'value' && alpha !== 'constant') throw new ArgumentError(`renderOverlay: alpha must be 'value' or 'constant', got ${JSON.stringify(alpha)}`);
  const shown = displayMap(raw, options);
  const index = options.index ?? 0;
  const heat = mapToImage(shown, { index, colormap: options.colormap ?? 'viridis' });
  if (alpha === 'value') {
    const plane = heat.width * heat.height;
    const values = shown.data.subarray(index * plane, (index + 1) * plane);
    for (let p = 0; p < plane; p++) heat.data[4 * p + 3] = Math.round(255 * values[p]!);
  }
  const big = resizeRgba(heat, width, height, 'bilinear');
  return overlay(resizeRgba(base, width, height, 'bilinear'), big, options.opacity ?? DEFAULT_OPACITY);
}

/** A horizontal colour bar for figures (low on the left). */
export function renderColorbar(width: number, colormap: ColormapName = 'viridis'): RgbaImage {
  return colorbar(width, Math.max(8, Math.round(width / 16)), colormap);
}
