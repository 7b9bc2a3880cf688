/**
 * Line plots as RGBA images, drawn with the project's own pixel helpers (the 5×7 font of image.ts):
 * axes with ticks and numbers, axis labels, a title, one coloured line per series with a marker at
 * each point, and a legend. Used for `saliency metrics`' curves.png and randomisation.png.
 */
import { ArgumentError } from '../runtime/errors.js';
import type { RGB, RgbaImage } from './colormaps.js';
import { drawText, textHeight, textWidth } from './image.js';

export interface PlotSeries {
  label: string;
  /** y values; at x = `x[i]`, or evenly over the x range when `x` is left out. */
  y: readonly number[];
  x?: readonly number[];
  color?: RGB;
  /** Dashed line (e.g. a control). */
  dashed?: boolean;
}

export interface LinePlotOptions {
  series: readonly PlotSeries[];
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Default: the data's range (y padded to include 0 when close). */
  xRange?: [number, number];
  yRange?: [number, number];
  /** Names for x = 0, 1, 2, … (a categorical axis, e.g. layer names), instead of numbers. */
  xCategories?: readonly string[];
  width?: number;
  height?: number;
}

/** Ten distinguishable colours (matplotlib's tab10). */
export const PLOT_COLORS: readonly RGB[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

function put(img: RgbaImage, x: number, y: number, c: RGB): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const o = 4 * (y * img.width + x);
  img.data[o] = c[0];
  img.data[o + 1] = c[1];
  img.data[o + 2] = c[2];
  img.data[o + 3] = 255;
}

function disc(img: RgbaImage, cx: number, cy: number, r: number, c: RGB): void {
  for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= r * r + r) put(img, Math.round(cx + dx), Math.round(cy + dy), c);
}

/** A line `thickness` pixels wide from (x0, y0) to (x1, y1); dashed: 8 on, 6 off. */
function line(img: RgbaImage, x0: number, y0: number, x1: number, y1: number, c: RGB, thickness = 1, dashed = false): void {
  const len = Math.hypot(x1 - x0, y1 - y0);
  const n = Math.max(1, Math.ceil(len));
  const r = Math.floor(thickness / 2);
  for (let i = 0; i <= n; i++) {
    if (dashed && ((i * len) / n) % 14 >= 8) continue;
    const t = i / n;
    const [x, y] = [x0 + (x1 - x0) * t, y0 + (y1 - y0) * t];
    if (r === 0) put(img, Math.round(x), Math.round(y), c);
    else disc(img, x, y, r, c);
  }
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** A tick's number with as many decimals as the step needs (0.25 → 2, 0.2 → 1, 5 → 0). */
function tickText(v: number, step: number): string {
  let digits = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  while (digits < 6 && Math.abs(step * 10 ** digits - Math.round(step * 10 ** digits)) > 1e-6) digits++;
  return v.toFixed(digits);
}

/** A line plot of the series, white background, as an RGBA image. */
export function linePlot(o: LinePlotOptions): RgbaImage {
  const { series, title = '', xLabel = '', yLabel = '', width = 800, height = 440, xCategories } = o;
  if (!Array.isArray(series) || series.length === 0) throw new ArgumentError('linePlot: give at least one series');
  for (const s of series) {
    if (!Array.isArray(s.y) || s.y.length === 0) throw new ArgumentError(`linePlot: series '${s.label}' has no values`);
    if (s.x && s.x.length !== s.y.length) throw new ArgumentError(`linePlot: series '${s.label}' has ${s.x.length} x and ${s.y.length} y values`);
  }
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 200 || height < 150) {
    throw new ArgumentError(`linePlot: width and height must be integers of at least 200×150, got ${width}×${height}`);
  }
  const img: RgbaImage = { width, height, data: new Uint8ClampedArray(width * height * 4).fill(255) };
  const xsOf = (s: PlotSeries) => s.x ?? s.y.map((_, i) => (xCategories ? i : s.y.length > 1 ? i / (s.y.length - 1) : 0));
  const finite = (v: number[]) => v.filter(Number.isFinite);
  const allX = finite(series.flatMap((s) => [...xsOf(s)]));
  const allY = finite(series.flatMap((s) => [...s.y]));
  let [x0, x1] = o.xRange ?? [Math.min(...allX), Math.max(...allX)];
  let [y0, y1] = o.yRange ?? [Math.min(0, ...allY), Math.max(...allY)];
  if (!(x1 > x0)) [x0, x1] = [x0 - 0.5, x0 + 0.5];
  if (!(y1 > y0)) [y0, y1] = [y0 - 0.5, y0 + 0.5];
  if (!o.yRange) {
    const pad = (y1 - y0) * 0.05;
    if (y0 !== 0) y0 -= pad;
    y1 += pad;
  }

  const s1 = 1;
  const s2 = 2;
  const black: RGB = [0, 0, 0];
  const grey: RGB = [225, 225, 225];
  const yTicks = niceTicks(y0, y1);
  const yStep = yTicks.length > 1 ? yTicks[1]! - yTicks[0]! : 1;
  const labelW = Math.max(...yTicks.map((v) => textWidth(tickText(v, yStep), s2)));
  const left = labelW + 20;
  const top = (title ? textHeight(s2) + 16 : 12) + (yLabel ? textHeight(s2) + 8 : 0);
  const bottom = height - (textHeight(s2) + 14 + (xLabel ? textHeight(s2) + 10 : 0));
  // The legend sits to the right of the plot area; a category name may reach past the last tick.
  const legendW = Math.max(...series.map((s) => textWidth(s.label, s2))) + 34;
  const overhang = xCategories?.length ? textWidth(xCategories[xCategories.length - 1]!, s2) / 2 : 0;
  const right = width - Math.max(16, overhang + 4) - legendW - 12;
  if (right - left < 80) throw new ArgumentError(`linePlot: ${width} pixels are too narrow for the labels and the legend`);
  const px = (x: number) => left + ((x - x0) / (x1 - x0)) * (right - left);
  const py = (y: number) => bottom - ((y - y0) / (y1 - y0)) * (bottom - top);

  // Grid, axes, ticks.
  for (const v of yTicks) {
    const y = Math.round(py(v));
    line(img, left, y, right, y, grey);
    line(img, left - 5, y, left, y, black);
    const t = tickText(v, yStep);
    drawText(img, t, left - 8 - textWidth(t, s2), y - textHeight(s2) / 2 + 1, { scale: s2 });
  }
  const xTicks = xCategories ? xCategories.map((_, i) => i) : niceTicks(x0, x1);
  const xStep = xTicks.length > 1 ? xTicks[1]! - xTicks[0]! : 1;
  // Category names shrink to fit their slot.
  const slot = xCategories ? (right - left) / Math.max(1, xCategories.length - 1) : Infinity;
  const catScale = xCategories && xCategories.some((n) => textWidth(n, s2) > slot - 4) ? s1 : s2;
  for (const v of xTicks) {
    const x = Math.round(px(v));
    line(img, x, top, x, bottom, grey);
    line(img, x, bottom, x, bottom + 5, black);
    let t = xCategories ? xCategories[v]! : tickText(v, xStep);
    const sc = xCategories ? catScale : s2;
    while (xCategories && t.length > 1 && textWidth(t, sc) > slot - 2) t = t.slice(0, -1);
    drawText(img, t, x - textWidth(t, sc) / 2, bottom + 8, { scale: sc });
  }
  line(img, left, top, left, bottom, black);
  line(img, left, bottom, right, bottom, black);
  if (title) drawText(img, title, (width - textWidth(title, s2)) / 2, 8, { scale: s2 });
  if (yLabel) drawText(img, yLabel, 6, top - textHeight(s2) - 6, { scale: s2 });
  if (xLabel) drawText(img, xLabel, left + (right - left - textWidth(xLabel, s2)) / 2, height - textHeight(s2) - 6, { scale: s2 });

  // The series, clipped to the plot area.
  const clip = (y: number) => Math.max(top, Math.min(bottom, y));
  series.forEach((s, k) => {
    const color = s.color ?? PLOT_COLORS[k % PLOT_COLORS.length]!;
    const xs = xsOf(s);
    for (let i = 0; i < s.y.length; i++) {
      if (!Number.isFinite(s.y[i]!)) continue;
      const [x, y] = [px(xs[i]!), clip(py(s.y[i]!))];
      if (i > 0 && Number.isFinite(s.y[i - 1]!)) line(img, px(xs[i - 1]!), clip(py(s.y[i - 1]!)), x, y, color, 2, s.dashed);
      if (s.y.length <= 40) disc(img, x, y, 2, color);
    }
  });

  // Legend, right of the plot area.
  const rowH = textHeight(s2) + 6;
  const lx = width - legendW - 8;
  const ly = top;
  series.forEach((s, k) => {
    const color = s.color ?? PLOT_COLORS[k % PLOT_COLORS.length]!;
    const y = ly + k * rowH + textHeight(s2) / 2;
    line(img, lx, y, lx + 22, y, color, 2, s.dashed);
    drawText(img, s.label, lx + 28, ly + k * rowH, { scale: s2 });
  });
  return img;
}
