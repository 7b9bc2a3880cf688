/**
 * D-RISE (Petsiuk et al. 2021): black-box saliency for object detectors.
 *
 * N random masks M_i are laid over the image; the detector runs on every masked image x ⊙ M_i;
 * each mask is weighted by how well its detections still match the target,
 *   w_i = max_j IoU(L_t, L_j) · cos(P_t, P_j) · O_j,
 * and the saliency map is S = Σ_i w_i M_i. Masks are made on the GPU and the masked images are
 * multiplied there in batches; only the detections pass through the CPU. Batch sizes come from the
 * Gpu's memory budget (src/runtime/memory.ts): the first call with a detector (and image shape)
 * measures the memory of one masked image on a detection it throws away; mask i is the same
 * whatever the batching.
 */
import { Uniforms } from '../runtime/gpu.js';
import { ArgumentError, CancelledError, ShapeError, formatShape } from '../runtime/errors.js';
import { BatchSizer, checkBatchSize } from '../runtime/memory.js';
import { empty, tensor, type Tensor } from '../runtime/tensor.js';
import type { Gpu } from '../runtime/gpu.js';
import { linearWorkgroups } from '../kernels/common.js';
import { add, div, fill, maximum, mul, scale } from '../kernels/elementwise.js';
import { matmul } from '../kernels/matmul.js';
import { iou } from '../nets/boxes.js';
import { checkFinite, methodJob } from './job.js';

export { iou };

import type { Detection, Detector } from '../nets/types.js';

/** One detection (box in pixels [x1, y1, x2, y2], objectness, class probabilities) and any detector: defined in nets/types.ts. */
export type { Detection, Detector };

export interface DriseOptions {
  /** The detection(s) to explain, usually from running the detector on the clean image. */
  target: Detection | Detection[];
  /** Number of masks N (default 5000). */
  masks?: number;
  /** Grid cells per side s (default 16). */
  gridSize?: number;
  /** Probability p that a cell is kept (default 0.5). */
  p?: number;
  /** Seed of the masks (default 0). */
  seed?: number;
  /**
   * Masked images per detector call. 'auto' (default): as many as fit in the Gpu's memory budget,
   * at most 256. A number: at most that many; a batch that would not fit is split, with a warning
   * to the Gpu's log.
   */
  batchSize?: number | 'auto';
  /** Divide S by nothing (default), by Σ_i M_i per pixel ('masks'), or by N·p ('np'). */
  normalize?: 'none' | 'masks' | 'np';
  /** Called after each batch with masks done and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Stops the run between batches with a CancelledError; nothing stays allocated. */
  signal?: AbortSignal;
}

/** The saliency maps [T, 1, H, W], with how fast the masks went and the batch sizes run. */
export type DriseResult = Tensor & { masksPerSecond: number; seconds: number; batches: number[] };

/** In 'auto', the largest batch: beyond it a detector call gains little and progress comes too rarely. */
export const DRISE_MAX_AUTO_BATCH = 256;

export function cosine(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new ShapeError(`D-RISE: class vectors of different lengths (${a.length} and ${b.length})`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/** s(d_t, d_j) = IoU(L_t, L_j) · cos(P_t, P_j) · O_j. */
export function similarity(target: Detection, proposal: Detection): number {
  return iou(target.box, proposal.box) * cosine(target.scores, proposal.scores) * (proposal.objectness ?? 1);
}

/**
 * w_i = max_j s(d_t, d_j) over the proposals of each mask; 0 for a mask with no proposals.
 * One target gives one weight per mask; several give weights[mask][target].
 */
export function driseWeights(target: Detection, detectionsPerMask: Detection[][]): number[];
export function driseWeights(targets: Detection[], detectionsPerMask: Detection[][]): number[][];
export function driseWeights(target: Detection | Detection[], detectionsPerMask: Detection[][]): number[] | number[][] {
  const weight = (t: Detection, proposals: Detection[]) => proposals.reduce((best, d) => Math.max(best, similarity(t, d)), 0);
  if (!Array.isArray(target)) return detectionsPerMask.map((proposals) => weight(target, proposals));
  return detectionsPerMask.map((proposals) => target.map((t) => weight(t, proposals)));
}

/**
 * Masks first … first+count−1 of the seed's sequence, [count, 1, H, W], made on the GPU (see
 * shaders/drise_masks.wgsl for the exact construction).
 */
export async function driseMasks(
  gpu: Gpu,
  o: { height: number; width: number; count: number; first?: number; gridSize?: number; p?: number; seed?: number },
): Promise<Tensor> {
  const { height: h, width: w, count, first = 0, gridSize: s = 16, p = 0.5, seed = 0 } = o;
  for (const [k, v] of Object.entries({ height: h, width: w, count, gridSize: s })) {
    if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`D-RISE masks: ${k} must be a positive integer, got ${v}`);
  }
  if (!(p >= 0 && p <= 1)) throw new ArgumentError(`D-RISE masks: p must be in [0, 1], got ${p}`);
  if (!Number.isInteger(seed) || !Number.isInteger(first) || first < 0) throw new ArgumentError('D-RISE masks: seed and first must be integers (first ≥ 0)');
  const kernel = await gpu.kernel('drise_masks');
  const out = empty(gpu, [count, 1, h, w]);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms().u32(out.size, h, w, s, Math.ceil(h / s), Math.ceil(w / s), first, seed >>> 0).f32(p),
    buffers: [out],
    workgroups: linearWorkgroups(gpu, out.size, 256),
  });
  return out;
}

/**
 * Checks what a detector returned for a batch of `b` images: one list per image of detections with
 * a box of 4 finite numbers, finite scores and a finite objectness (if any). NaN or ±Inf there
 * would turn the whole map into NaN.
 */
function checkDetections(detections: unknown, b: number): asserts detections is Detection[][] {
  if (!Array.isArray(detections) || detections.length !== b) {
    const got = detections === null ? 'null' : Array.isArray(detections) ? `${detections.length} results` : typeof detections;
    throw new ArgumentError(`drise: the detector returned ${got} for a batch of ${b} image${b === 1 ? '' : 's'}; it must return one list of detections per image`);
  }
  detections.forEach((list: unknown, i) => {
    if (!Array.isArray(list)) throw new ArgumentError(`drise: the detector's result for image ${i} of the batch is ${list === null ? 'null' : typeof list}, not a list of detections`);
    list.forEach((d: unknown, j) => {
      const at = `drise: detection ${j} of image ${i}`;
      const { box, scores, objectness } = (d ?? {}) as Partial<Detection>;
      if (!d || typeof d !== 'object' || !Array.isArray(box) || box.length !== 4 || !Array.isArray(scores)) {
        throw new ArgumentError(`${at} is not a detection { box, objectness?, scores }`);
      }
      if (!box.every((v) => Number.isFinite(v))) throw new ArgumentError(`${at} has a non-finite box [${box.join(', ')}]`);
      const bad = scores.find((v) => !Number.isFinite(v));
      if (bad !== undefined || scores.some((v) => typeof v !== 'number')) throw new ArgumentError(`${at} has a non-finite score (${bad})`);
      if (objectness !== undefined && !Number.isFinite(objectness)) throw new ArgumentError(`${at} has a non-finite objectness (${objectness})`);
    });
  });
}

/** D-RISE saliency of `targets` in `image` [1, C, H, W] for any detector. */
export function drise(detector: Detector, image: Tensor, options: DriseOptions): Promise<DriseResult> {
  const gpu = image && typeof image === 'object' ? image.gpu : undefined;
  return methodJob('drise', gpu, image, () => driseJob(detector, image, options), 'an image tensor [1, C, H, W]');
}

async function driseJob(detector: Detector, image: Tensor, options: DriseOptions): Promise<DriseResult> {
  const { masks: total = 5000, gridSize = 16, p = 0.5, seed = 0, normalize = 'none', onProgress, signal } = options;
  if (typeof detector !== 'function') throw new ArgumentError('drise: detector must be an async function from an image batch to detections');
  if (image.rank !== 4 || image.shape[0] !== 1) throw new ShapeError(`drise: image must be one image [1, C, H, W], got ${formatShape(image.shape)}`);
  const targets = Array.isArray(options.target) ? options.target : [options.target];
  if (targets.length === 0) throw new ArgumentError('drise: give at least one target detection');
  for (const t of targets) {
    if (!t || !Array.isArray(t.box) || t.box.length !== 4 || !Array.isArray(t.scores)) {
      throw new ArgumentError('drise: a target must be a detection { box: [x1, y1, x2, y2], objectness?, scores: number[] }');
    }
    if (![...t.box, ...t.scores, t.objectness ?? 0].every((v) => Number.isFinite(v))) {
      throw new ArgumentError('drise: a target detection holds a non-finite box, score or objectness');
    }
  }
  if (!Number.isInteger(total) || total < 1) throw new ArgumentError(`drise: masks must be a positive integer, got ${total}`);
  const batchSize = checkBatchSize('drise', options.batchSize);
  if (!['none', 'masks', 'np'].includes(normalize)) throw new ArgumentError(`drise: normalize must be 'none', 'masks' or 'np', got ${JSON.stringify(normalize)}`);
  if (normalize === 'np' && !(p > 0)) throw new ArgumentError(`drise: normalize 'np' divides by N·p; p must be > 0, got ${p}`);
  const gpu = image.gpu;
  // Before any mask: one read back is nothing next to thousands of detector calls.
  await checkFinite('drise', image, 'the input x', 'saliency needs finite input values (check the image or the tensor it was made from)');
  const [, , h, w] = image.shape as [number, number, number, number];
  const T = targets.length;
  const started = performance.now();
  const sizer = new BatchSizer(gpu, {
    label: 'drise',
    unit: 'mask',
    batchSize,
    maxBatch: DRISE_MAX_AUTO_BATCH,
    cacheKey: detector,
    signature: `${image.shape.join('x')}|${T}|${normalize === 'masks'}`,
  });

  /** Masks first..first+b−1: the detector's findings on the masked images, added to the running sums. */
  const addBatch = async (first: number, b: number, sums: { saliency: Tensor; coverage: Tensor | null }) => {
    const masks = await driseMasks(gpu, { height: h, width: w, count: b, first, gridSize, p, seed });
    let detections: Detection[][];
    try {
      const masked = await mul(image, masks); // x ⊙ M_i, broadcast over channels
      try {
        detections = await detector(masked);
      } finally {
        masked.dispose();
      }
      checkDetections(detections, b);
    } catch (e) {
      masks.dispose();
      throw e;
    }
    // The batch's temporaries die with this scope; the running sums it returns move up.
    const next = await gpu
      .scope(async () => {
        const weights = driseWeights(targets, detections); // [b][T]
        const wt = tensor(gpu, Float32Array.from({ length: T * b }, (_, k) => weights[k % b]![Math.floor(k / b)]!), [T, b]);
        const flat = masks.reshape([b, h * w]);
        const saliency = await add(sums.saliency, await matmul(wt, flat)); // + Σ_i w_i M_i, [T, H·W]
        const coverage = sums.coverage ? await add(sums.coverage, await matmul(await fill(gpu, [1, b], 1), flat)) : null;
        return { saliency, coverage };
      })
      .finally(() => masks.dispose());
    sums.saliency.dispose();
    sums.coverage?.dispose();
    Object.assign(sums, next);
  };
  const zeros = async () => ({ saliency: await fill(gpu, [T, h * w], 0), coverage: normalize === 'masks' ? await fill(gpu, [1, h * w], 0) : null });

  // No scope around the detector's calls: it must be free to keep tensors of its own between calls.
  if (sizer.needsMeasurement) {
    // The memory of one masked image, measured on mask 0 and thrown away (once per detector and
    // image shape on this Gpu): the batches then never depend on whether it was measured before.
    const scratch = await zeros();
    try {
      await sizer.measure(() => addBatch(0, 1, scratch));
    } finally {
      scratch.saliency.dispose();
      scratch.coverage?.dispose();
    }
  }
  const sums = await zeros();
  let map: Tensor;
  try {
    for (let done = 0; done < total; ) {
      if (signal?.aborted) throw new CancelledError('drise: cancelled');
      const b = sizer.next(total - done);
      await sizer.run(b, () => addBatch(done, b, sums));
      done += b;
      onProgress?.(done, total);
    }
    sizer.report();
    map = await gpu.scope(async () => {
      const { saliency, coverage } = sums;
      let out = saliency;
      if (normalize === 'np') out = await scale(saliency, 1 / (total * p));
      if (coverage) out = await div(saliency, await maximum(coverage, await fill(gpu, [1, 1], 1e-6)));
      return out.reshape([T, 1, h, w]);
    });
  } finally {
    sums.saliency.dispose();
    sums.coverage?.dispose();
  }
  await gpu.sync();
  const seconds = (performance.now() - started) / 1000;
  return Object.assign(map, { masksPerSecond: total / seconds, seconds, batches: sizer.batches });
}
