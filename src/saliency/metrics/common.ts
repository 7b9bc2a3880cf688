/**
 * What the metrics share (docs/metrics.md, "Shared conventions"): checking options before any GPU
 * work, reducing a map to H×W, ranking its pixels, the score f_c, the target, batches within the
 * memory budget, progress and cancelling.
 */
import { noGrad } from '../../autodiff/tape.js';
import { Rng } from '../../nets/data.js';
import { ArgumentError, CancelledError, ShapeError, formatShape } from '../../runtime/errors.js';
import { BatchSizer, checkBatchSize } from '../../runtime/memory.js';
import { empty, tensor, type Tensor } from '../../runtime/tensor.js';
import { resample } from '../colormaps.js';
import { checkInput, isClassList, type ExplainableModel } from '../core.js';
import type { MapData } from '../display.js';

/** A batch of maps: a tensor as the methods return it, or its values read back. */
export type MapInput = Tensor | MapData;

/**
 * How a map becomes one value per pixel, as for display: 'attribution' takes max |·| over the
 * channels (a one-channel map: |·|); 'cam' uses a one-channel map as it is (CAM, Grad-CAM, D-RISE).
 */
export type MapKind = 'attribution' | 'cam';

/** The class explained: an index, one index per image, or 'top' (the predicted class on x). */
export type MetricTarget = number | ArrayLike<number> | 'top';

/** The score f_c: the softmax probability (a single output: its sigmoid), or the logit. */
export type ScoreKind = 'probability' | 'logit';

export interface MetricOptions {
  /** The class the maps explain (default 'top': the predicted class on the unperturbed image). */
  target?: MetricTarget;
  /** f_c: 'probability' (default) or 'logit'. */
  score?: ScoreKind;
  /**
   * How to reduce the map to H×W. Default: 'cam' for a one-channel map of a multi-channel image or
   * a map smaller than the image, otherwise 'attribution'. Pass 'cam' for CAM and Grad-CAM maps of
   * one-channel images: they are signed or non-negative as they are, not |·|.
   */
  kind?: MapKind;
  /**
   * Images per forward pass (and per call of the method that maxSensitivity and randomisation
   * re-run). 'auto' (default): as many as fit the Gpu's memory budget, at most
   * METRIC_MAX_AUTO_BATCH, from the memory of one image measured once per model, metric and input
   * shape (src/runtime/memory.ts). A number: that many, or, when they would not fit, smaller
   * batches and a warning to the Gpu's log.
   */
  batchSize?: number | 'auto';
  /** Called after each batch with the work done and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Stops the run between batches with a CancelledError; nothing stays allocated. */
  signal?: AbortSignal;
}

/**
 * In 'auto', the most images per batch: progress (and cancelling) comes at least every 128 images;
 * the memory budget usually allows fewer for large inputs.
 */
export const METRIC_MAX_AUTO_BATCH = 128;

/** Checks the options every metric shares; call first, before any GPU work. */
export function checkCommonOptions(metric: string, o: MetricOptions): void {
  if (o === null || typeof o !== 'object') throw new ArgumentError(`${metric}: options must be an object`);
  const t = o.target;
  if (t !== undefined && t !== 'top' && typeof t !== 'number' && !isClassList(t)) {
    throw new ArgumentError(`${metric}: target must be a class index, an array of them, or 'top', got ${JSON.stringify(t)}`);
  }
  if (o.score !== undefined && o.score !== 'probability' && o.score !== 'logit') {
    throw new ArgumentError(`${metric}: score must be 'probability' or 'logit', got ${JSON.stringify(o.score)}`);
  }
  if (o.kind !== undefined && o.kind !== 'attribution' && o.kind !== 'cam') {
    throw new ArgumentError(`${metric}: kind must be 'attribution' or 'cam', got ${JSON.stringify(o.kind)}`);
  }
  checkBatchSize(metric, o.batchSize);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new ArgumentError(`${metric}: onProgress must be a function`);
  if (o.signal !== undefined && (o.signal === null || typeof o.signal.aborted !== 'boolean')) {
    throw new ArgumentError(`${metric}: signal must be an AbortSignal`);
  }
}

/** x [N, C, H, W] for this model, as its dimensions. */
export function imageDims(metric: string, model: ExplainableModel, x: Tensor): { n: number; c: number; h: number; w: number } {
  checkInput(metric, model, x);
  if (x.rank !== 4) throw new ShapeError(`${metric}: x must be images [N, C, H, W], got ${formatShape(x.shape)}`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return { n, c, h, w };
}

/** Throws a CancelledError when the signal is aborted. */
export function checkAborted(metric: string, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError(`${metric}: cancelled`);
}

/** The maps' values and shape [N, C', h, w], checked against the images (shape only). */
function mapShape(metric: string, map: MapInput, images: { n: number; c: number; h: number; w: number }): number[] {
  const isTensor = typeof map === 'object' && map !== null && 'rank' in map && 'buffer' in map;
  const valid = isTensor || (typeof map === 'object' && map !== null && (map as MapData).data instanceof Float32Array && Array.isArray((map as MapData).shape));
  if (!valid) throw new ArgumentError(`${metric}: the map must be a Tensor or { data: Float32Array, shape: number[] }`);
  const shape = [...map.shape];
  const { n, c, h, w } = images;
  const size = shape.reduce((a, b) => a * b, 1);
  if (!isTensor && (map as MapData).data.length !== size) {
    throw new ShapeError(`${metric}: the map holds ${(map as MapData).data.length} values but its shape ${formatShape(shape)} needs ${size}`);
  }
  const [mn, mc, mh, mw] = shape as [number, number, number, number];
  const full = mh === h && mw === w && (mc === 1 || mc === c);
  const coarse = mc === 1 && mh >= 1 && mw >= 1 && mh <= h && mw <= w;
  if (shape.length !== 4 || mn !== n || !(full || coarse) || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ShapeError(
      `${metric}: a map of shape ${formatShape(shape)} does not fit images ${formatShape([n, c, h, w])}; ` +
        `expected [${n}, ${c === 1 ? 1 : `1 or ${c}`}, ${h}, ${w}], or [${n}, 1, h, w] at a layer's resolution (h ≤ ${h}, w ≤ ${w})`,
    );
  }
  return shape;
}

/** Checks a map's shape against the images at once (before any GPU work), and returns its kind. */
export function checkMap(metric: string, map: MapInput, images: { n: number; c: number; h: number; w: number }, kind?: MapKind): MapKind {
  const [, mc, mh, mw] = mapShape(metric, map, images) as [number, number, number, number];
  const resolved = kind ?? (mc === 1 && (images.c > 1 || mh !== images.h || mw !== images.w) ? 'cam' : 'attribution');
  if (resolved === 'cam' && mc !== 1) throw new ShapeError(`${metric}: kind 'cam' needs a one-channel map, got ${mc} channels`);
  if (resolved === 'attribution' && (mh !== images.h || mw !== images.w)) {
    throw new ShapeError(`${metric}: an attribution map must have the image's size ${images.h}×${images.w}, got ${mh}×${mw}; pass kind 'cam' for a layer-resolution map`);
  }
  return resolved;
}

/** The values of a map, read back if it is a tensor, checked to be finite. */
export async function mapValues(metric: string, map: MapInput): Promise<{ data: Float32Array; shape: number[] }> {
  const data = 'read' in map && typeof map.read === 'function' ? await map.read() : (map as MapData).data;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw new ArgumentError(`${metric}: the map holds a non-finite value (${data[i]}) at index ${i}`);
  }
  return { data, shape: [...map.shape] };
}

/** One image's H×W values of a checked map: 'abs' (the ranking value) or 'signed'. */
export type Reduction = 'abs' | 'signed';

/**
 * Reduces each image of a map to H×W values: with `reduction` 'abs', as for display (attribution:
 * max |·| over channels; cam: as it is); with 'signed', signed values (attribution: Σ over
 * channels; cam: as it is). A map at a layer's resolution is upsampled bilinearly (half-pixel
 * centres) to H×W.
 */
export function reduceMap(values: { data: Float32Array; shape: number[] }, kind: MapKind, h: number, w: number, reduction: Reduction = 'abs'): Float32Array[] {
  const [n, c, mh, mw] = values.shape as [number, number, number, number];
  const plane = mh * mw;
  const out: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const r = new Float32Array(plane);
    for (let p = 0; p < plane; p++) {
      let acc = 0;
      for (let k = 0; k < c; k++) {
        const v = values.data[(i * c + k) * plane + p]!;
        if (kind === 'cam') acc = v;
        else if (reduction === 'abs') acc = Math.max(acc, Math.abs(v));
        else acc += v;
      }
      r[p] = acc;
    }
    out.push(upsample(r, mh, mw, h, w));
  }
  return out;
}

/** An mh×mw map brought to h×w: bilinear, half-pixel centres (as `resize`); the same array if already h×w. */
export function upsample(values: Float32Array, mh: number, mw: number, h: number, w: number): Float32Array {
  return mh === h && mw === w ? values : resample(values, mw, mh, 1, w, h, 'bilinear');
}

/**
 * The ranking of one image's pixels: `order[k]` is the k-th most salient pixel (E descending, ties
 * to the lower row-major index) and `rank[p]` is pixel p's place in that order.
 */
export function rankPixels(values: ArrayLike<number>): { order: Int32Array; rank: Int32Array } {
  const n = values.length;
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => values[b]! - values[a]! || a - b);
  const rank = new Int32Array(n);
  for (let k = 0; k < n; k++) rank[order[k]!] = k;
  return { order, rank };
}

/** The ranks of a batch as an int32 tensor [N, H·W]. */
export function rankTensor(x: Tensor, ranks: readonly Int32Array[]): Tensor {
  const hw = ranks[0]!.length;
  const data = new Int32Array(ranks.length * hw);
  ranks.forEach((r, i) => data.set(r, i * hw));
  return tensor(x.gpu, data, [ranks.length, hw], 'int32');
}

/** Checks a class target's form; its range is checked once the number of classes is known. */
function targetClasses(metric: string, target: MetricTarget, n: number, logits: Float32Array, k: number): number[] {
  let out: number[];
  if (target === 'top') {
    out = Array.from({ length: n }, (_, i) => {
      let best = 0;
      for (let j = 1; j < k; j++) if (logits[i * k + j]! > logits[i * k + best]!) best = j;
      return best;
    });
  } else if (typeof target === 'number') {
    out = new Array<number>(n).fill(target);
  } else {
    if (target.length !== n) throw new ArgumentError(`${metric}: ${target.length} targets for a batch of ${n} images`);
    out = Array.from(target);
  }
  for (const c of out) {
    if (!Number.isInteger(c) || c < 0 || c >= k) throw new ArgumentError(`${metric}: target class ${c} is out of range; the model has ${k} outputs (0..${k - 1})`);
  }
  return out;
}

/** f_c of each row of logits [B, K], in float64: softmax (K = 1: sigmoid) or the logit itself. */
export function scoresOf(logits: Float32Array, k: number, classes: readonly number[], kind: ScoreKind): Float64Array {
  const out = new Float64Array(classes.length);
  classes.forEach((c, b) => {
    const row = logits.subarray(b * k, (b + 1) * k);
    if (kind === 'logit') out[b] = row[c]!;
    else if (k === 1) out[b] = 1 / (1 + Math.exp(-row[0]!));
    else {
      let m = -Infinity;
      for (let j = 0; j < k; j++) m = Math.max(m, row[j]!);
      let s = 0;
      for (let j = 0; j < k; j++) s += Math.exp(row[j]! - m);
      out[b] = Math.exp(row[c]! - m) / s;
    }
  });
  return out;
}

/** The model's logits for a batch of images, read back: [B, K] values and K. */
export async function logitsOf(metric: string, model: ExplainableModel, images: Tensor): Promise<{ values: Float32Array; k: number }> {
  const out = await noGrad(model.gpu, () => model.forward(images, { logits: true }));
  try {
    if (out.rank !== 2) throw new ShapeError(`${metric}: needs a classifier; the model's output per batch has shape ${formatShape(out.shape)}, not [N, classes]`);
    return { values: await out.read(), k: out.shape[1]! };
  } finally {
    out.dispose();
  }
}

/** The classes explained and f_c(x) of the unperturbed images, in batches. */
export async function cleanScores(
  metric: string,
  model: ExplainableModel,
  x: Tensor,
  o: MetricOptions,
): Promise<{ classes: number[]; scores: Float64Array; k: number }> {
  const n = x.shape[0]!;
  const per = x.size / n;
  const parts: Float32Array[] = [];
  let k = 0;
  const logitsOfImages = async (start: number, count: number) => {
    const images = count === n ? x : sliceImages(x, start, count, per);
    try {
      return await logitsOf(metric, model, images);
    } finally {
      if (images !== x) images.dispose();
    }
  };
  await inBatches(metric, model, n, o, { unit: 'image', signature: 'clean', measure: () => logitsOfImages(0, 1) }, async (start, count) => {
    const r = await logitsOfImages(start, count);
    parts.push(r.values);
    k = r.k;
  });
  const all = parts.length === 1 ? parts[0]! : concatFloat32(parts);
  const classes = targetClasses(metric, o.target ?? 'top', n, all, k);
  return { classes, scores: scoresOf(all, k, classes, o.score ?? 'probability'), k };
}

/**
 * The class each image's maps explain (`target`, default 'top': the predicted class) and its score
 * f_c on the unperturbed image, computed in batches.
 */
export async function classScores(
  model: ExplainableModel,
  x: Tensor,
  options: Pick<MetricOptions, 'target' | 'score' | 'batchSize' | 'signal'> = {},
): Promise<{ classes: number[]; scores: Float64Array }> {
  checkCommonOptions('classScores', options);
  imageDims('classScores', model, x);
  const { classes, scores } = await cleanScores('classScores', model, x, options);
  return { classes, scores };
}

function concatFloat32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Images start … start+count−1 of x as a new tensor (a GPU copy of a contiguous range). */
export function sliceImages(x: Tensor, start: number, count: number, per = x.size / x.shape[0]!): Tensor {
  const out = empty(x.gpu, [count, ...x.shape.slice(1)]);
  x.gpu.copyBuffer(x.buffer, start * per * 4, out.buffer, 0, count * per * 4);
  return out;
}

/** One loop of a metric over items (perturbed images, images to explain) in GPU batches. */
export interface BatchLoop {
  /** What one item is, in messages ('image', 'perturbed image'). */
  unit: string;
  /** Tells this loop's memory apart from the metric's other loops (the input shape is added). */
  signature: string;
  /** The memory measured is remembered under this object (default: the model). */
  cacheKey?: object;
  /**
   * Does one item's work, result thrown away, freeing what it made: its memory is the cost per
   * item. Run once per model, metric, loop and input shape on a Gpu (and never for a loop of one
   * item, whose one batch is measured instead), so that the batches never depend on whether the
   * cost was known before.
   */
  measure: () => Promise<unknown>;
}

/**
 * Runs `work(start, count)` over items 0..total−1 in batches within the Gpu's memory budget
 * (src/runtime/memory.ts): `batchSize` 'auto' takes as many as fit, at most METRIC_MAX_AUTO_BATCH;
 * a number runs as asked, or split with a warning when it cannot fit. Checks the signal before
 * each batch; `work` must free its temporaries. Returns the batch sizes.
 */
export async function inBatches(
  metric: string,
  model: ExplainableModel,
  total: number,
  o: Pick<MetricOptions, 'batchSize' | 'signal'>,
  loop: BatchLoop,
  work: (start: number, count: number) => Promise<void>,
): Promise<number[]> {
  const sizer = new BatchSizer(model.gpu, {
    label: metric,
    unit: loop.unit,
    batchSize: o.batchSize,
    maxBatch: METRIC_MAX_AUTO_BATCH,
    cacheKey: loop.cacheKey ?? model,
    signature: `${loop.signature}|${model.inputShape.join('x')}`,
  });
  if (total > 1 && sizer.needsMeasurement && o.batchSize !== 1) {
    checkAborted(metric, o.signal);
    await sizer.measure(loop.measure);
  }
  for (let done = 0; done < total; ) {
    checkAborted(metric, o.signal);
    const b = sizer.next(total - done);
    await sizer.run(b, () => work(done, b));
    done += b;
  }
  sizer.report();
  return sizer.batches;
}

/** Scores items in batches: `build(items)` makes their images on the GPU; returns f_c per item. */
export async function scoreItems<T>(
  metric: string,
  model: ExplainableModel,
  items: readonly T[],
  classOf: (item: T) => number,
  build: (items: readonly T[]) => Promise<Tensor>,
  o: MetricOptions & { kind?: MapKind },
  progress: Progress,
): Promise<Float64Array> {
  const out = new Float64Array(items.length);
  const logitsOfItems = async (part: readonly T[]) => {
    const images = await build(part);
    try {
      return await logitsOf(metric, model, images);
    } finally {
      images.dispose();
    }
  };
  const measure = () => logitsOfItems(items.slice(0, 1));
  await inBatches(metric, model, items.length, o, { unit: 'perturbed image', signature: 'scores', measure }, async (start, count) => {
    const part = items.slice(start, start + count);
    const logits = await logitsOfItems(part);
    out.set(scoresOf(logits.values, logits.k, part.map(classOf), o.score ?? 'probability'), start);
    progress.add(part.length);
  });
  return out;
}

/** Progress over a run's whole work, reported through onProgress. */
export class Progress {
  private done = 0;
  constructor(
    private readonly total: number,
    private readonly report?: (done: number, total: number) => void,
  ) {}
  add(n: number): void {
    this.done += n;
    this.report?.(this.done, this.total);
  }
}

/**
 * The control map: uniform values in [0, 1), [N, 1, H, W]. Image i's values come from its own
 * seeded stream (seed, i), so they do not depend on the batch it is in.
 */
export function randomMap(n: number, h: number, w: number, seed = 0): MapData {
  for (const [k, v] of Object.entries({ n, h, w })) {
    if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`randomMap: ${k} must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(seed) || seed < 0) throw new ArgumentError(`randomMap: seed must be an integer ≥ 0, got ${seed}`);
  const data = new Float32Array(n * h * w);
  for (let i = 0; i < n; i++) {
    const rng = new Rng((Math.imul(seed + 1, 0x27d4eb2d) ^ Math.imul(i + 1, 0x165667b1)) >>> 0);
    for (let p = 0; p < h * w; p++) data[i * h * w + p] = rng.uniform();
  }
  return { data, shape: [n, 1, h, w] };
}
