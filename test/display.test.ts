/** Display transforms and colour maps: hand-computable cases (CPU only, no GPU). */
import { describe, expect, it } from 'vitest';
import {
  clipPercentile,
  largestComponent,
  normalize,
  percentile,
  reduceChannels,
  threshold,
  type MapData,
} from '../src/saliency/display.js';
import {
  applyColormap,
  colorbar,
  colormap,
  greyToRgba,
  mapToImage,
  overlay,
  resizeRgba,
  type RgbaImage,
} from '../src/saliency/colormaps.js';
import { DEFAULT_OPACITY, displayMap, renderOverlay } from '../src/saliency/render.js';
import { addColorbarKey } from '../src/saliency/image.js';
import { ArgumentError, ShapeError } from '../src/runtime/errors.js';
import { expectClose } from './helpers.js';

const map = (data: number[], shape: number[]): MapData => ({ data: Float32Array.from(data), shape });
const image = (width: number, height: number, pixels: number[][]): RgbaImage => ({
  width,
  height,
  data: Uint8ClampedArray.from(pixels.flat()),
});

describe('reduceChannels', () => {
  // [1, 3, 2, 2]: three channels of four pixels.
  const m = map([1, -2, 3, 0, /**/ -4, 1, 0, 0.5, /**/ 2, 2, -5, -1], [1, 3, 2, 2]);

  it('max |·| over channels (Simonyan et al.) is the default', () => {
    const r = reduceChannels(m);
    expect(r.shape).toEqual([1, 1, 2, 2]);
    expect(Array.from(r.data)).toEqual([4, 2, 5, 1]);
  });

  it('sum of |·| and signed sum', () => {
    expect(Array.from(reduceChannels(m, 'sumAbs').data)).toEqual([7, 5, 8, 1.5]);
    expect(Array.from(reduceChannels(m, 'sum').data)).toEqual([-1, 1, -2, -0.5]);
  });

  it('works per batch item and keeps a rank-3 map rank 3', () => {
    const two = map([1, 2, 3, 4, /**/ -5, 6, 7, -8], [2, 1, 2, 2]);
    const r = reduceChannels(two, 'maxAbs');
    expect(r.shape).toEqual([2, 1, 2, 2]);
    expect(Array.from(r.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const chw = reduceChannels(map([1, -3, 2, 1], [2, 1, 2]), 'sum');
    expect(chw.shape).toEqual([1, 1, 2]);
    expect(Array.from(chw.data)).toEqual([3, -2]);
  });

  it('does not change its input', () => {
    const before = Array.from(m.data);
    reduceChannels(m, 'sum');
    expect(Array.from(m.data)).toEqual(before);
  });

  it('rejects bad shapes and modes', () => {
    expect(() => reduceChannels(map([1, 2, 3], [1, 1, 2, 2]))).toThrow(ShapeError);
    expect(() => reduceChannels(map([1, 2, 3], [1, 1, 2, 2]))).toThrow(/3 values but shape \[1, 1, 2, 2\] needs 4/);
    expect(() => reduceChannels(map([1, 2], [1, 2]))).toThrow(/must be \[N, C, H, W\] or \[C, H, W\]/);
    expect(() => reduceChannels(m, 'mean' as never)).toThrow(ArgumentError);
    expect(() => reduceChannels(m, 'mean' as never)).toThrow(/unknown mode "mean"/);
  });
});

describe('percentile and clipPercentile', () => {
  const ramp = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i);

  it('percentile interpolates between ranks', () => {
    expect(percentile([4, 1, 3, 2], 50)).toBeCloseTo(2.5, 12);
    expect(percentile([4, 1, 3, 2], 0)).toBe(1);
    expect(percentile([4, 1, 3, 2], 100)).toBe(4);
    expect(percentile(ramp(0, 100), 99)).toBeCloseTo(98.01, 10);
  });

  it('clips 0..99 at the 99th percentile by default', () => {
    const r = clipPercentile(map(ramp(0, 100), [1, 1, 10, 10]));
    expect(r.shape).toEqual([1, 1, 10, 10]);
    expect(Array.from(r.data.subarray(0, 99))).toEqual(ramp(0, 99));
    expect(r.data[99]).toBeCloseTo(98.01, 4);
  });

  it('clips both ends', () => {
    const r = clipPercentile(map(ramp(0, 100), [1, 10, 10]), { low: 10, high: 90 });
    expect(r.data[0]).toBeCloseTo(9.9, 4);
    expect(r.data[50]).toBe(50);
    expect(r.data[99]).toBeCloseTo(89.1, 4);
    expect(Math.min(...r.data)).toBeCloseTo(9.9, 4);
    expect(Math.max(...r.data)).toBeCloseTo(89.1, 4);
  });

  it('clips each image by its own percentiles, or the batch with perImage false', () => {
    const two = map([...ramp(0, 100), ...ramp(100, 100)], [2, 1, 10, 10]);
    const r = clipPercentile(two);
    expect(r.data[99]).toBeCloseTo(98.01, 4);
    expect(r.data[199]).toBeCloseTo(198.01, 3);
    const g = clipPercentile(two, { perImage: false });
    expect(g.data[99]).toBe(99);
    expect(g.data[199]).toBeCloseTo(197.01, 3);
  });

  it('rejects bad percentiles and non-finite maps', () => {
    const m = map(ramp(0, 4), [1, 1, 2, 2]);
    expect(() => clipPercentile(m, { low: 60, high: 40 })).toThrow(/low \(60\) must not exceed high \(40\)/);
    expect(() => clipPercentile(m, { high: 101 })).toThrow(/high must be a percentile in \[0, 100\], got 101/);
    expect(() => clipPercentile(map([1, NaN, 2, 3], [1, 1, 2, 2]))).toThrow(/non-finite value \(NaN\) at index 1/);
  });
});

describe('normalize', () => {
  it('min-max to [0, 1]', () => {
    expectClose(normalize(map([2, 4, 6, 10], [1, 1, 2, 2])).data, [0, 0.25, 0.5, 1], 1e-7, 0);
  });

  it('a constant map becomes all 0, without NaN', () => {
    expect(Array.from(normalize(map([3, 3, 3, 3], [1, 1, 2, 2])).data)).toEqual([0, 0, 0, 0]);
    expect(Array.from(normalize(map([0, 0], [1, 1, 2])).data)).toEqual([0, 0]);
  });

  it('absmax maps signed values symmetrically: 0 → 0.5', () => {
    expectClose(normalize(map([-2, 0, 1, 4], [1, 1, 2, 2]), { mode: 'absmax' }).data, [0.25, 0.5, 0.625, 1], 1e-7, 0);
    expectClose(normalize(map([-4, 0, 2, 1], [1, 1, 2, 2]), { mode: 'absmax' }).data, [0, 0.5, 0.75, 0.625], 1e-7, 0);
    expect(Array.from(normalize(map([0, 0, 0, 0], [1, 1, 2, 2]), { mode: 'absmax' }).data)).toEqual([0.5, 0.5, 0.5, 0.5]);
  });

  it('per image by default, or over the whole batch', () => {
    const two = map([0, 1, 0, 10], [2, 1, 1, 2]);
    expectClose(normalize(two).data, [0, 1, 0, 1], 1e-7, 0);
    expectClose(normalize(two, { perImage: false }).data, [0, 0.1, 0, 1], 1e-7, 0);
  });

  it('normalises all channels of an image together', () => {
    expectClose(normalize(map([0, 2, 4, 8], [1, 2, 1, 2])).data, [0, 0.25, 0.5, 1], 1e-7, 0);
  });

  it('rejects unknown modes and NaN', () => {
    expect(() => normalize(map([1, 2], [1, 1, 2]), { mode: 'zscore' as never })).toThrow(/unknown mode "zscore"/);
    expect(() => normalize(map([1, Infinity], [1, 1, 2]))).toThrow(/non-finite value \(Infinity\) at index 1/);
  });
});

describe('displayMap: the display steps in order', () => {
  // Two channels, three pixels: max |·| over channels is [1, 2, 4].
  const attribution = map([-1, 2, 0, 0.5, -1, -4], [1, 2, 1, 3]);

  it('attribution: max |·| over channels, clip at a percentile, then min-max', () => {
    expectClose(displayMap(attribution, { clip: 100 }).data, [0, 1 / 3, 1]);
    // The 50th percentile of [1, 2, 4] is 2: [1, 2, 2] → [0, 1, 1].
    expectClose(displayMap(attribution, { clip: 50 }).data, [0, 1, 1]);
    // sum of |·| is [1.5, 3, 4].
    expectClose(displayMap(attribution, { reduce: 'sumAbs', clip: 100 }).data, [0, 0.6, 1]);
    expect(displayMap(attribution).shape).toEqual([1, 1, 1, 3]);
  });

  it('cam: a one-channel map is min-max normalised as it is, signs and all', () => {
    expectClose(displayMap(map([-1, 0, 3], [1, 1, 1, 3]), { kind: 'cam' }).data, [0, 0.25, 1]);
  });

  it('rejects an unknown kind and a clip outside [0, 100]', () => {
    expect(() => displayMap(attribution, { kind: 'heat' as 'cam' })).toThrow(ArgumentError);
    expect(() => displayMap(attribution, { kind: 'heat' as 'cam' })).toThrow(`displayMap: kind must be 'attribution' or 'cam', got "heat"`);
    expect(() => displayMap(attribution, { clip: 200 })).toThrow('clipPercentile: high must be a percentile in [0, 100], got 200');
    expect(() => displayMap(attribution, { clip: NaN })).toThrow(ArgumentError);
  });
});

describe('threshold', () => {
  // 6 rows × 8 columns. Blob A: 3 pixels of 1.0 at the top left. Blob B: 6 pixels of 0.8 (rows 2–4,
  // columns 4–6, an L shape). Background 0.1, below 0.5·max.
  const W = 8;
  const H = 6;
  function crafted(): Float32Array {
    const d = new Float32Array(W * H).fill(0.1);
    for (const [x, y] of [[0, 0], [1, 0], [0, 1]]) d[y * W + x!] = 1.0;
    for (const [x, y] of [[4, 2], [5, 2], [6, 2], [4, 3], [4, 4], [5, 4]]) d[y * W + x!] = 0.8;
    return d;
  }

  it('mask ≥ fraction·max; box of the largest 4-connected component', () => {
    const [r] = threshold({ data: crafted(), shape: [1, 1, H, W] });
    expect(r!.threshold).toBeCloseTo(0.5, 7);
    expect(r!.width).toBe(W);
    expect(r!.height).toBe(H);
    // Both blobs are in the mask, nothing else.
    const expected = new Uint8Array(W * H);
    for (const p of [0, 1, 8, 2 * 8 + 4, 2 * 8 + 5, 2 * 8 + 6, 3 * 8 + 4, 4 * 8 + 4, 4 * 8 + 5]) expected[p] = 1;
    expect(Array.from(r!.mask)).toEqual(Array.from(expected));
    // Blob B is larger (6 > 3): columns 4..6, rows 2..4 → edges [4, 2, 7, 5].
    expect(r!.box).toEqual([4, 2, 7, 5]);
    expect(r!.area).toBe(6);
  });

  it('a higher fraction keeps only the brightest blob', () => {
    const [r] = threshold({ data: crafted(), shape: [1, H, W] }, { fraction: 0.9 });
    expect(r!.box).toEqual([0, 0, 2, 2]);
    expect(r!.area).toBe(3);
  });

  it('an absolute value threshold', () => {
    const [r] = threshold({ data: crafted(), shape: [1, 1, H, W] }, { value: 0.05 });
    expect(r!.threshold).toBe(0.05);
    expect(r!.mask.every((v) => v === 1)).toBe(true);
    expect(r!.box).toEqual([0, 0, W, H]);
    expect(r!.area).toBe(W * H);
  });

  it('diagonal neighbours are separate components; ties go to the first in row-major order', () => {
    // X . .
    // . X X
    const { box, area } = largestComponent(Uint8Array.from([1, 0, 0, 0, 1, 1]), 3, 2);
    expect(box).toEqual([1, 1, 3, 2]);
    expect(area).toBe(2);
    const tie = largestComponent(Uint8Array.from([0, 1, 0, 1, 0, 0]), 3, 2);
    expect(tie.box).toEqual([1, 0, 2, 1]);
    expect(tie.area).toBe(1);
  });

  it('one result per batch item; an all-zero map gives an empty mask and no box', () => {
    const data = new Float32Array(2 * W * H);
    data.set(crafted(), W * H);
    const rs = threshold({ data, shape: [2, 1, H, W] });
    expect(rs).toHaveLength(2);
    expect(rs[0]!.box).toBeNull();
    expect(rs[0]!.area).toBe(0);
    expect(rs[0]!.mask.every((v) => v === 0)).toBe(true);
    expect(rs[1]!.box).toEqual([4, 2, 7, 5]);
  });

  it('needs a one-channel map and a valid option', () => {
    const m = map(new Array(8).fill(1), [1, 2, 2, 2]);
    expect(() => threshold(m)).toThrow(ShapeError);
    expect(() => threshold(m)).toThrow(/has 2 channels; reduce them to one first with reduceChannels/);
    const one = map([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(() => threshold(one, { fraction: 1.5 })).toThrow(/fraction must be a number in \[0, 1\], got 1.5/);
    expect(() => threshold(one, { value: NaN })).toThrow(/value must be a finite number/);
    expect(() => threshold(one, { fraction: 0.5, value: 1 } as never)).toThrow(/either fraction or value, not both/);
  });
});

describe('colour maps', () => {
  it('viridis endpoints and middle', () => {
    expect(colormap('viridis', 0)).toEqual([68, 1, 84]);
    expect(colormap('viridis', 1)).toEqual([253, 231, 37]);
    // round(0.5·255) = entry 128 of matplotlib's table: (0.1299, 0.5696, 0.5519).
    expect(colormap('viridis', 0.5)).toEqual([33, 145, 140]);
  });

  it('turbo endpoints', () => {
    expect(colormap('turbo', 0)).toEqual([48, 18, 59]);
    expect(colormap('turbo', 1)).toEqual([122, 4, 3]);
  });

  it('grey is linear, gray is the same, values are clamped', () => {
    expect(colormap('grey', 0)).toEqual([0, 0, 0]);
    expect(colormap('grey', 1)).toEqual([255, 255, 255]);
    expect(colormap('grey', 0.2)).toEqual([51, 51, 51]);
    expect(colormap('gray', 0.6)).toEqual([153, 153, 153]);
    expect(colormap('grey', -3)).toEqual([0, 0, 0]);
    expect(colormap('grey', 7)).toEqual([255, 255, 255]);
    expect(colormap('viridis', 2)).toEqual([253, 231, 37]);
  });

  it('viridis gets lighter monotonically (CIE L*, up to 8-bit rounding)', () => {
    const linear = (c: number) => ((c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    const lightness = ([r, g, b]: number[]) => {
      const y = 0.2126 * linear(r!) + 0.7152 * linear(g!) + 0.0722 * linear(b!);
      return y > 0.008856 ? 116 * Math.cbrt(y) - 16 : 903.3 * y;
    };
    const ls = Array.from({ length: 256 }, (_, i) => lightness(colormap('viridis', i / 255)));
    for (let i = 1; i < 256; i++) expect(ls[i]!).toBeGreaterThan(ls[i - 1]! - 0.1);
    expect(ls[255]! - ls[0]!).toBeGreaterThan(60);
  });

  it('rejects unknown names', () => {
    expect(() => colormap('jet' as never, 0.5)).toThrow(/unknown colour map "jet"; use one of viridis, turbo, grey, gray/);
    expect(() => applyColormap([0.5], 'hot' as never)).toThrow(ArgumentError);
  });

  it('applyColormap and greyToRgba give opaque RGBA; NaN is transparent', () => {
    const rgba = applyColormap(Float32Array.from([0, 1, NaN]), 'viridis');
    expect(rgba).toBeInstanceOf(Uint8ClampedArray);
    expect(Array.from(rgba)).toEqual([68, 1, 84, 255, 253, 231, 37, 255, 0, 0, 0, 0]);
    expect(Array.from(greyToRgba([0, 0.5, 1]))).toEqual([0, 0, 0, 255, 128, 128, 128, 255, 255, 255, 255, 255]);
  });

  it('mapToImage colours one image of a batch', () => {
    const m = map([0, 0, 0, 0, /**/ 0, 1, 1, 0], [2, 1, 2, 2]);
    const img = mapToImage(m, { index: 1, colormap: 'grey' });
    expect(img.width).toBe(2);
    expect(img.height).toBe(2);
    expect(Array.from(img.data)).toEqual([0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 255]);
    expect(() => mapToImage(m, { index: 2 })).toThrow(/index 2 is out of range for a batch of 2/);
    expect(() => mapToImage(map([0, 0], [1, 2, 1, 1]))).toThrow(/reduce channels first/);
  });

  it('colorbar runs 0 → 1 left to right, or bottom to top', () => {
    const h = colorbar(256, 3, 'grey');
    expect(h.width).toBe(256);
    expect(h.height).toBe(3);
    for (const x of [0, 1, 100, 255]) {
      for (let y = 0; y < 3; y++) expect(Array.from(h.data.subarray(4 * (y * 256 + x), 4 * (y * 256 + x) + 4))).toEqual([x, x, x, 255]);
    }
    const v = colorbar(2, 256, 'viridis');
    expect(Array.from(v.data.subarray(0, 4))).toEqual([253, 231, 37, 255]); // top = 1
    expect(Array.from(v.data.subarray(4 * 255 * 2, 4 * 255 * 2 + 4))).toEqual([68, 1, 84, 255]); // bottom = 0
    expect(() => colorbar(0, 10)).toThrow(/positive integers/);
  });
});

describe('overlay', () => {
  const base = image(2, 1, [[100, 100, 100, 255], [0, 200, 40, 255]]);
  const heat = image(2, 1, [[200, 0, 50, 255], [255, 0, 0, 0]]);

  it('blends a·heat + (1 − a)·base with a = opacity · heat alpha', () => {
    const out = overlay(base, heat);
    // Pixel 0: 0.5·(200, 0, 50) + 0.5·(100, 100, 100). Pixel 1: the heat pixel is transparent.
    expect(Array.from(out.data)).toEqual([150, 50, 75, 255, 0, 200, 40, 255]);
    expect(Array.from(overlay(base, heat, 0.25).data.subarray(0, 4))).toEqual([125, 75, 88, 255]);
    expect(Array.from(overlay(base, heat, 0).data)).toEqual(Array.from(base.data));
    expect(Array.from(overlay(base, heat, 1).data.subarray(0, 4))).toEqual([200, 0, 50, 255]);
  });

  it('over a transparent base, the result is the heat colour at alpha a', () => {
    const clear = image(1, 1, [[9, 9, 9, 0]]);
    expect(Array.from(overlay(clear, image(1, 1, [[200, 100, 0, 255]]), 0.4).data)).toEqual([200, 100, 0, 102]);
  });

  it('needs equal sizes and an opacity in [0, 1]', () => {
    expect(() => overlay(base, image(1, 1, [[0, 0, 0, 0]]))).toThrow(ShapeError);
    expect(() => overlay(base, image(1, 1, [[0, 0, 0, 0]]))).toThrow(/base image is 2×1 but heat image is 1×1/);
    expect(() => overlay(base, heat, 1.5)).toThrow(/opacity must be a number in \[0, 1\], got 1.5/);
    expect(() => overlay(base, { width: 2, height: 1, data: new Uint8ClampedArray(4) })).toThrow(/needs 8 bytes of RGBA, but has 4/);
  });
});

describe('renderOverlay: low values leave the image as it is', () => {
  // A one-channel CAM map 0, 0.5, 1 (min-max normalised as it is) over a mid-grey image, at its own size.
  const grey = image(3, 1, [[100, 100, 100, 255], [100, 100, 100, 255], [100, 100, 100, 255]]);
  const cam = map([0, 0.5, 1], [1, 1, 1, 3]);

  it("each pixel's opacity rises with its value, from 0 to the opacity", () => {
    const out = renderOverlay(cam, grey, { kind: 'cam', width: 3, height: 1 });
    expect(Array.from(out.data.subarray(0, 4))).toEqual([100, 100, 100, 255]); // value 0: untouched
    for (const [p, v] of [[1, 0.5], [2, 1]] as const) {
      const heat = colormap('viridis', v);
      const a = DEFAULT_OPACITY * Math.round(255 * v) / 255;
      const want = heat.map((c) => Math.round(a * c + (1 - a) * 100));
      const got = Array.from(out.data.subarray(4 * p, 4 * p + 3));
      got.forEach((g, k) => expect(Math.abs(g - want[k]!), `pixel ${p}`).toBeLessThanOrEqual(1));
    }
  });

  it("alpha: 'constant' tints every pixel alike, as before", () => {
    const out = renderOverlay(cam, grey, { kind: 'cam', width: 3, height: 1, alpha: 'constant', opacity: 0.5 });
    const dark = colormap('viridis', 0);
    expect(Array.from(out.data.subarray(0, 3))).toEqual(dark.map((c) => Math.round(0.5 * c + 50)));
    expect(() => renderOverlay(cam, grey, { alpha: 'linear' as 'value' })).toThrow(/alpha must be 'value' or 'constant'/);
  });

  it('addColorbarKey puts the colour map, low to high, under a picture', () => {
    const pic = image(40, 2, Array.from({ length: 80 }, () => [9, 9, 9, 255]));
    const out = addColorbarKey(pic, { width: 28, gap: 6 });
    expect(out.width).toBe(40);
    expect(Array.from(out.data.subarray(0, 4 * 80))).toEqual(Array.from(pic.data)); // the picture, unchanged
    const row = 2; // the bar starts right under the picture
    const px = (x: number) => Array.from(out.data.subarray(4 * (row * 40 + x), 4 * (row * 40 + x) + 3));
    expect(px(6)).toEqual(colormap('viridis', 0).map(Math.round));
    expect(px(6 + 27)).toEqual(colormap('viridis', 1).map(Math.round));
    expect(px(2)).toEqual([255, 255, 255]);
    expect(() => addColorbarKey(pic, { width: 4 })).toThrow(/at least 8 pixels/);
  });
});

describe('resizeRgba', () => {
  const grey = (vs: number[]) => vs.map((v) => [v, v, v, 255]);
  const px = (img: RgbaImage) => Array.from({ length: img.width * img.height }, (_, i) => img.data[4 * i]!);

  it('nearest upscaling repeats pixels as blocks', () => {
    const out = resizeRgba(image(2, 2, grey([10, 20, 30, 40])), 4, 4, 'nearest');
    expect(out.width).toBe(4);
    expect(out.height).toBe(4);
    expect(px(out)).toEqual([10, 10, 20, 20, 10, 10, 20, 20, 30, 30, 40, 40, 30, 30, 40, 40]);
    expect(out.data[3]).toBe(255);
  });

  it('bilinear upscaling uses half-pixel centres (PyTorch align_corners=false)', () => {
    // 2×2 of 40·(1, 2, 3, 4) → 4×4 of 40·(1, 1.25, 1.75, 2, …).
    const out = resizeRgba(image(2, 2, grey([40, 80, 120, 160])), 4, 4, 'bilinear');
    const expected = [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4].map((v) => v * 40);
    expect(px(out)).toEqual(expected);
  });

  it('bilinear shrinking averages with a widened triangle filter', () => {
    // 4 → 2, scale 2: output 0 has centre 1, weights 0.75, 0.75, 0.25 on pixels 0, 1, 2 (normalised).
    const out = resizeRgba(image(4, 1, grey([0, 70, 140, 210])), 2, 1, 'bilinear');
    expect(px(out)).toEqual([Math.round((0.75 * 70 + 0.25 * 140) / 1.75), Math.round((0.25 * 70 + 0.75 * 140 + 0.75 * 210) / 1.75)]);
    const flat = resizeRgba(image(3, 3, grey(new Array(9).fill(77))), 2, 2, 'bilinear');
    expect(px(flat)).toEqual([77, 77, 77, 77]);
  });

  it('rejects bad sizes and modes', () => {
    const img = image(1, 1, [[0, 0, 0, 255]]);
    expect(() => resizeRgba(img, 0, 4)).toThrow(/positive integers, got 0×4/);
    expect(() => resizeRgba(img, 2, 2, 'cubic' as never)).toThrow(/unknown mode "cubic"/);
  });
});
