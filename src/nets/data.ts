/**
 * Seeded randomness and a shuffling minibatch loader.
 *
 * Everything random in training (shuffling, augmentation, initialisation) draws from `Rng`, a
 * Mulberry32 generator, so a run is reproduced exactly by its seed. Epoch e's order depends only on
 * (seed, e): resuming at epoch 5 shuffles as the uninterrupted run did.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import type { Gpu } from '../runtime/gpu.js';
import { tensor, type Tensor } from '../runtime/tensor.js';

/** Mulberry32: a fast 32-bit seeded generator of uniforms in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded random number generator (Mulberry32). */
export class Rng {
  private readonly next: () => number;
  private spare: number | null = null;

  constructor(readonly seed: number) {
    if (!Number.isFinite(seed)) throw new ArgumentError(`Rng: seed must be a finite number, got ${seed}`);
    this.next = mulberry32(seed);
  }

  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Normal with the given mean and standard deviation (Box–Muller; the second value is kept). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.next(); // log(0) is -Infinity
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Shuffles `a` in place (Fisher–Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}

/** One minibatch: the images on the GPU (the caller disposes `x`) and their labels. */
export interface Batch {
  /** [B, ...sampleShape] */
  x: Tensor;
  labels: Int32Array;
  /** Positions of the batch's samples in the data set. */
  indices: Uint32Array;
  /** Index of the batch within its epoch. */
  step: number;
}

/**
 * Changes one sample in place before upload (data augmentation). `sample` is a copy the loader
 * owns; `index` is the sample's position in the data set; draw randomness from `rng`.
 */
export type Augment = (sample: Float32Array, rng: Rng, index: number) => void;

export interface DataLoaderOptions {
  /** Samples, concatenated: N × prod(sampleShape) values. */
  images: Float32Array;
  /** N integer labels. */
  labels: ArrayLike<number>;
  /** Shape of one sample, e.g. [1, 28, 28]. */
  sampleShape: readonly number[];
  batchSize: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /** Seed of the shuffle and of `augment`'s rng (default 0). */
  seed?: number;
  /** Drop the last, smaller batch of each epoch (default false). */
  dropLast?: boolean;
  augment?: Augment;
}

/** Iterates minibatches of (images, labels), reshuffled each epoch by a seeded RNG. */
export class DataLoader {
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly sampleShape: readonly number[];
  readonly sampleSize: number;
  readonly count: number;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  private readonly augment?: Augment;
  private staging: Float32Array;
  private epochCounter = 0;

  constructor(
    readonly gpu: Gpu,
    options: DataLoaderOptions,
  ) {
    const { images, labels, sampleShape, batchSize, shuffle = true, seed = 0, dropLast = false, augment } = options;
    if (!Array.isArray(sampleShape) || sampleShape.length === 0 || sampleShape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new ShapeError(`DataLoader: sampleShape must be positive integers, got ${JSON.stringify(sampleShape)}`);
    }
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new ArgumentError(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isFinite(seed)) throw new ArgumentError(`DataLoader: seed must be a finite number, got ${seed}`);
    const sampleSize = sampleShape.reduce((a, b) => a * b, 1);
    const count = labels.length;
    if (count === 0) throw new ArgumentError('DataLoader: the data set is empty');
    if (images.length !== count * sampleSize) {
      throw new ShapeError(
        `DataLoader: ${images.length} image values do not match ${count} labels × sample ${formatShape(sampleShape)} (${count * sampleSize} values)`,
      );
    }
    const intLabels = Int32Array.from(labels);
    for (let i = 0; i < count; i++) {
      if (intLabels[i] !== labels[i] || intLabels[i]! < 0) throw new ArgumentError(`DataLoader: label ${labels[i]} at index ${i} is not a non-negative integer`);
    }
    if (dropLast && count < batchSize) {
      throw new ArgumentError(`DataLoader: dropLast with batchSize ${batchSize} > ${count} samples would give no batch at all`);
    }
    this.images = images;
    this.labels = intLabels;
    this.sampleShape = Object.freeze([...sampleShape]);
    this.sampleSize = sampleSize;
    this.count = count;
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    this.augment = augment;
    this.staging = new Float32Array(batchSize * sampleSize);
  }

  /** Batches per epoch. */
  get length(): number {
    return this.dropLast ? Math.floor(this.count / this.batchSize) : Math.ceil(this.count / this.batchSize);
  }

  /** Samples per epoch (fewer than `count` with dropLast). */
  get samplesPerEpoch(): number {
    return this.dropLast ? this.length * this.batchSize : this.count;
  }

  /** The sample order of epoch `epoch` (0-based): a function of (seed, epoch) only. */
  order(epoch: number): Uint32Array {
    const idx = new Uint32Array(this.count);
    for (let i = 0; i < idx.length; i++) idx[i] = i;
    if (this.shuffle) this.epochRng(epoch, 0).shuffle(idx);
    return idx;
  }

  /**
   * Yields epoch `epoch`'s batches (default: the next epoch, counting calls). Each batch's `x` is
   * uploaded when it is yielded and belongs to the caller.
   */
  async *batches(epoch = this.epochCounter): AsyncGenerator<Batch> {
    this.epochCounter = epoch + 1;
    const order = this.order(epoch);
    const augRng = this.augment ? this.epochRng(epoch, 1) : null;
    for (let step = 0; step < this.length; step++) {
      const begin = step * this.batchSize;
      const indices = order.slice(begin, Math.min(begin + this.batchSize, this.count));
      yield this.gather(indices, step, augRng);
    }
  }

  /** Uploads the samples at `indices` as one batch (any indices, e.g. for evaluation). */
  batchOf(indices: ArrayLike<number>): Batch {
    const idx = Uint32Array.from(indices);
    for (const i of idx) {
      if (i >= this.count) throw new ArgumentError(`DataLoader.batchOf: index ${i} is out of range (${this.count} samples)`);
    }
    return this.gather(idx, 0, null);
  }

  private gather(indices: Uint32Array, step: number, augRng: Rng | null): Batch {
    const n = indices.length;
    const s = this.sampleSize;
    if (this.staging.length < n * s) this.staging = new Float32Array(n * s);
    const data = this.staging.subarray(0, n * s);
    const labels = new Int32Array(n);
    for (let b = 0; b < n; b++) {
      const i = indices[b]!;
      data.set(this.images.subarray(i * s, (i + 1) * s), b * s);
      labels[b] = this.labels[i]!;
      if (augRng) this.augment!(data.subarray(b * s, (b + 1) * s), augRng, i);
    }
    // writeBuffer copies the data at once, so the staging array can be reused for the next batch.
    const x = tensor(this.gpu, data, [n, ...this.sampleShape]);
    return { x, labels, indices, step };
  }

  private epochRng(epoch: number, stream: number): Rng {
    // Distinct, well-mixed seeds per (seed, epoch, stream).
    const mix = Math.imul((this.seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch + 1, 0xc2b2ae35) ^ Math.imul(stream + 1, 0x27d4eb2f);
    return new Rng(mix >>> 0);
  }
}
