/**
 * GPU memory budget and automatic batch sizes.
 *
 * Every Gpu has a memory budget (`initGpu({ memoryBudget })`, in bytes): the buffer pool destroys
 * free buffers when a new one would take it past the budget, and the batching methods choose
 * their batch sizes so that the tensors they keep alive fit in it. WebGPU does not say how much
 * memory a GPU has, so the default is a fixed figure per environment: 1 GiB in a browser (a tab
 * must leave room for the page and the other tabs) and 2 GiB in Node, lowered to a quarter of the
 * machine's memory where that memory is what the adapter uses (a software adapter such as
 * lavapipe or SwiftShader; any adapter in a browser, where integrated GPUs share it).
 *
 * The reusable API, for any loop that runs N items in GPU batches (SmoothGrad's noisy samples,
 * D-RISE's masks, a metric's perturbed images, a folder of images):
 *
 *   const sizer = new BatchSizer(gpu, { label: 'deletion', unit: 'image', batchSize: options.batchSize,
 *                                       cacheKey: model, signature: shape.join('x') });
 *   if (sizer.needsMeasurement) await sizer.measure(() => oneItemThrownAway());
 *   for (let done = 0; done < n; ) {
 *     const b = sizer.next(n - done);            // how many items the next batch may take
 *     await sizer.run(b, () => work(done, b));   // runs it (work frees its temporaries)
 *     done += b;
 *   }
 *   sizer.report();                               // one 'info' line to the Gpu's log
 *
 * or the same in one call: `await autoBatch(gpu, n, { ...options, measure }, (start, count) => work(start, count))`.
 *
 * How the size is chosen. The cost of one item is measured once: `measure` runs one item's work
 * (whose result the caller throws away) while the pool's in-use bytes are followed
 * (`BufferPool.watch`); the cost is the peak minus what was in use before (c₁ bytes allocated,
 * r₁ ≤ c₁ bytes asked for before rounding to size classes). Without `measure`, the first batch
 * has one item and is measured the same way. A batch of b items is then predicted to cost at most
 * 1.25·r₁·b (the bytes asked for grow at most in proportion when the cost is a fixed part plus a
 * part per item; rounding to size classes adds at most a quarter), and the largest tensor in
 * proportion. The batch is the largest whose prediction fits in the budget minus the bytes in use
 * and whose largest tensor fits the adapter's maxStorageBufferBindingSize; the batches are then
 * balanced (50 items at most 11 per batch run as 5 batches of 10), so that they reuse the same
 * buffers. The cost is remembered per Gpu under `cacheKey` and `signature` (e.g. the model and the
 * input shape), so later calls measure nothing. Because the batches depend only on that cost, the
 * budget and the bytes in use, not on when the cost was measured, the same call in the same state
 * makes the same batches and the same result, bit for bit, every time (with `measure`; without
 * it, the first call's one-item batch is the exception). A batch that nevertheless takes the pool
 * past the budget makes its own cost the cost, with a warning. `bytesPerItem`, for callers that
 * compute the cost from shapes, replaces the measurement.
 *
 * An explicit batch size runs as asked when it fits; when it cannot fit, it is split into batches
 * that do, and the Gpu's log (`initGpu({ log })`) gets one 'warning' saying so. A single item that
 * does not fit runs alone, with a warning, rather than not at all. `report()` sends the Gpu's log
 * a line at level 'info' with the batches run.
 */
import { ArgumentError, CancelledError } from './errors.js';
import type { AdapterReport, Gpu } from './gpu.js';
import type { PeakReading } from './pool.js';

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;
/** Default budget in a browser tab. */
export const BROWSER_MEMORY_BUDGET = GiB;
/** Default budget in Node. */
export const NODE_MEMORY_BUDGET = 2 * GiB;
/** Worst-case growth from rounding buffers up to their size classes (see pool.ts). */
const ROUNDING_MARGIN = 1.25;

/** How serious a library message is: 'warning' when something was not done as asked. */
export type MessageLevel = 'info' | 'warning';

/** What the environment says about memory. */
export interface MemoryEnvironment {
  /** Running in Node (rather than a browser or a worker). */
  isNode: boolean;
  /** The machine's memory in bytes, where known (Node's os.totalmem, a browser's navigator.deviceMemory). */
  systemMemory: number | null;
}

/**
 * The budget a Gpu gets without `memoryBudget`: 2 GiB in Node, 1 GiB in a browser, at most a
 * quarter of the machine's memory where the adapter uses that memory (a software adapter, or any
 * adapter in a browser), and never under 256 MiB.
 */
export function defaultMemoryBudget(adapter: Pick<AdapterReport, 'isSoftware'>, env: MemoryEnvironment): number {
  let budget = env.isNode ? NODE_MEMORY_BUDGET : BROWSER_MEMORY_BUDGET;
  if (env.systemMemory && (adapter.isSoftware || !env.isNode)) budget = Math.min(budget, Math.floor(env.systemMemory / 4));
  return Math.max(budget, 256 * MiB);
}

/** What this process runs in, for `defaultMemoryBudget`. */
export async function memoryEnvironment(): Promise<MemoryEnvironment> {
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (isNode) {
    try {
      const name = 'node:os'; // hidden from bundlers, like 'webgpu' in gpu.ts
      const os = (await import(/* @vite-ignore */ name)) as { totalmem(): number };
      return { isNode, systemMemory: os.totalmem() };
    } catch {
      return { isNode, systemMemory: null };
    }
  }
  const gib = (globalThis as { navigator?: { deviceMemory?: number } }).navigator?.deviceMemory;
  return { isNode, systemMemory: typeof gib === 'number' && gib > 0 ? gib * GiB : null };
}

/** Checks a budget given by the user: a whole number of bytes > 0, or Infinity for none. */
export function checkMemoryBudget(where: string, bytes: unknown): number {
  if (typeof bytes !== 'number' || !(bytes === Infinity || (Number.isSafeInteger(bytes) && bytes > 0))) {
    throw new ArgumentError(`${where}: memoryBudget must be a whole number of bytes > 0 (or Infinity for no budget), got ${typeof bytes === 'number' ? bytes : JSON.stringify(bytes)}`);
  }
  return bytes;
}

/** What one measured batch cost. */
export interface BatchCost {
  /** Items in the batch. */
  items: number;
  /** Its peak in-use bytes (buffers as allocated) above what was in use when it started. */
  bytes: number;
  /** The same peak counting the bytes asked for, before rounding to size classes (default: `bytes`). */
  requestedBytes?: number;
  /** The largest tensor it allocated, in bytes (0 if unknown). */
  largestRequest: number;
}

export interface ChooseBatchOptions {
  /** A measured batch (see `BatchCost`), or a computed one. */
  cost: BatchCost;
  /** The memory budget in bytes. */
  budget: number;
  /** Bytes in use before the batch (model weights, running sums…). */
  inUse: number;
  /** The adapter's maxStorageBufferBindingSize: no tensor may be larger. */
  maxBindingSize?: number;
  /** Never more than this many items. */
  max?: number;
}

/**
 * The largest batch predicted to fit (see the module's header), or 0 when not even one item does.
 * Pure: for callers that compute a cost from shapes, and for tests.
 */
export function chooseBatchSize(o: ChooseBatchOptions): number {
  const { cost, budget, inUse, maxBindingSize = Infinity, max = Infinity } = o;
  const headroom = budget - inUse;
  const requested = Math.min(cost.requestedBytes ?? cost.bytes, cost.bytes);
  let fit: number;
  if (cost.bytes <= 0) fit = Infinity;
  else {
    // More items than measured: the bytes asked for grow in proportion at most (a fixed part
    // grows not at all), and rounding to size classes adds at most a quarter.
    const extrapolated = requested > 0 ? Math.floor((headroom * cost.items) / (requested * ROUNDING_MARGIN)) : Infinity;
    // Up to as many items as measured cost no more than the measured batch (costs grow with the batch).
    fit = cost.bytes <= headroom ? Math.max(cost.items, extrapolated) : Math.min(cost.items - 1, Math.max(0, extrapolated));
  }
  if (cost.largestRequest > 0 && Number.isFinite(maxBindingSize)) {
    fit = Math.min(fit, Math.max(0, Math.floor((maxBindingSize * cost.items) / cost.largestRequest)));
  }
  return Math.min(fit, max);
}

export interface BatchSizerOptions {
  /** Names the work in messages, e.g. 'smoothGrad'. */
  label: string;
  /** What one item is, in messages (default 'item'), e.g. 'sample' or 'mask'. */
  unit?: string;
  /** 'auto' (default): the budget decides; a number: the largest batch, split if it cannot fit. */
  batchSize?: number | 'auto';
  /** In 'auto', never more than this many items per batch (default: no limit). */
  maxBatch?: number;
  /** Costs measured under the same key object and signature on this Gpu are reused. */
  cacheKey?: object;
  /** Tells apart works under one key (e.g. the input shape and the method's options). */
  signature?: string;
  /** The cost per item in bytes, if known from shapes: no one-item batch is measured first. */
  bytesPerItem?: number;
}

const costCaches = new WeakMap<Gpu, WeakMap<object, Map<string, BatchCost>>>();

/** Checks a user's batchSize option: 'auto', undefined, or a positive integer. */
export function checkBatchSize(where: string, batchSize: unknown): number | 'auto' {
  if (batchSize === undefined || batchSize === 'auto') return 'auto';
  if (typeof batchSize !== 'number' || !Number.isInteger(batchSize) || batchSize < 1) {
    throw new ArgumentError(`${where}: batchSize must be 'auto' or a positive integer, got ${typeof batchSize === 'number' ? batchSize : JSON.stringify(batchSize)}`);
  }
  return batchSize;
}

/** Chooses batch sizes within the Gpu's memory budget; see the module's header. */
export class BatchSizer {
  /** The sizes of the batches run so far, in order (not counting a `measure` call). */
  readonly batches: number[] = [];
  private readonly requested: number | 'auto';
  private readonly maxBatch: number;
  private readonly unit: string;
  private cost: BatchCost | null;
  private warned = false;
  private readonly startInUse: number;

  constructor(
    readonly gpu: Gpu,
    readonly options: BatchSizerOptions,
  ) {
    this.requested = checkBatchSize(options.label, options.batchSize);
    const { maxBatch = Infinity, bytesPerItem } = options;
    if (!(maxBatch >= 1)) throw new ArgumentError(`${options.label}: maxBatch must be ≥ 1, got ${maxBatch}`);
    this.maxBatch = Math.floor(maxBatch);
    this.unit = options.unit ?? 'item';
    if (bytesPerItem !== undefined && !(bytesPerItem >= 0 && Number.isFinite(bytesPerItem))) {
      throw new ArgumentError(`${options.label}: bytesPerItem must be a finite number ≥ 0, got ${bytesPerItem}`);
    }
    this.cost = bytesPerItem !== undefined ? { items: 1, bytes: bytesPerItem, largestRequest: 0 } : (this.cache()?.get(this.signature) ?? null);
    this.startInUse = gpu.memory().inUseBytes;
  }

  /** The cost this sizer goes by (measured, remembered or given); null until one is known. */
  get measured(): Readonly<BatchCost> | null {
    return this.cost;
  }

  /** True until a cost is known: then `measure` (or else the first batch, of one item) finds it. */
  get needsMeasurement(): boolean {
    return this.cost === null;
  }

  /**
   * Runs `fn`, which must do the work of `items` items (default 1) and free what it made, and
   * takes its memory as the cost. Its results are the caller's to discard: batches then depend
   * only on this cost, not on when it was measured.
   */
  async measure(fn: () => Promise<unknown>, items = 1): Promise<void> {
    const watch = this.gpu.pool.watch();
    try {
      await fn();
    } catch (e) {
      watch.stop();
      throw e;
    }
    this.setCost(costOf(watch.stop(), items));
  }

  /** The size of the next batch, 1..remaining. */
  next(remaining: number): number {
    if (!Number.isInteger(remaining) || remaining < 1) throw new ArgumentError(`${this.options.label}: nothing left to batch (${remaining})`);
    const cap = this.requested === 'auto' ? this.maxBatch : this.requested;
    if (!this.cost) return 1; // no measurement: the first batch, of one item, is it
    const memory = this.gpu.memory();
    const fit = chooseBatchSize({
      cost: this.cost,
      budget: memory.budgetBytes,
      inUse: memory.inUseBytes,
      maxBindingSize: this.gpu.limits.maxStorageBufferBindingSize,
    });
    if (fit < 1) {
      this.warn(
        `one ${this.unit} needs about ${formatBytes(this.perItem())}, more than the memory budget leaves ` +
          `(${formatBytes(memory.budgetBytes)}, of which ${formatBytes(memory.inUseBytes)} in use); running one at a time. ` +
          `initGpu({ memoryBudget }) sets the budget`,
      );
      return 1;
    }
    if (this.requested !== 'auto' && Math.min(this.requested, remaining) > fit) {
      this.warn(
        `a batch of ${this.requested} ${this.unit}s needs about ${formatBytes(this.perItem() * this.requested)}, more than the memory budget ` +
          `leaves (${formatBytes(memory.budgetBytes)}, of which ${formatBytes(memory.inUseBytes)} in use); running batches of at most ${fit} instead`,
      );
    }
    const limit = Math.max(1, Math.min(cap, fit));
    if (this.requested !== 'auto' && limit === this.requested) return Math.min(limit, remaining);
    const count = Math.ceil(remaining / limit);
    return Math.ceil(remaining / count); // balanced: equal batches reuse the same buffers
  }

  /**
   * Runs one batch of `count` items. Without a cost yet, its memory becomes the cost. A batch
   * that took the pool past the budget (more than its cost predicted) makes the cost its own,
   * with a warning, so that the next batches are smaller.
   */
  async run<T>(count: number, fn: () => Promise<T>): Promise<T> {
    const watch = this.gpu.pool.watch();
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      watch.stop();
      throw e;
    }
    const r = watch.stop();
    this.batches.push(count);
    const observed = costOf(r, count);
    if (!this.cost) this.setCost(observed);
    else if (count > 1 && r.peakInUseBytes > this.gpu.memoryBudget && observed.bytes / count > this.perItem()) {
      this.warn(
        `a batch of ${count} ${this.unit}s took ${formatBytes(observed.bytes)}, more than measured before, and the memory ` +
          `budget (${formatBytes(this.gpu.memoryBudget)}) was passed; smaller batches from now on`,
      );
      this.setCost(observed);
    }
    return result;
  }

  /** One line on what this sizer ran, sent to the Gpu's log at level 'info'. */
  report(): void {
    if (this.batches.length === 0) return;
    const total = this.batches.reduce((a, b) => a + b, 0);
    const sizes = [...new Set(this.batches)].sort((a, b) => b - a);
    this.gpu.log(
      `${this.options.label}: ${total} ${this.unit}${total === 1 ? '' : 's'} in ${this.batches.length} batch${this.batches.length === 1 ? '' : 'es'}` +
        ` of ${sizes.join('/')} (about ${formatBytes(this.perItem())} per ${this.unit}; memory budget ${formatBytes(this.gpu.memory().budgetBytes)}, ` +
        `${formatBytes(this.startInUse)} in use before)`,
      'info',
    );
  }

  private setCost(c: BatchCost): void {
    this.cost = c;
    if (this.options.bytesPerItem === undefined) this.cache(true)?.set(this.signature, c);
  }

  private perItem(): number {
    return this.cost ? this.cost.bytes / this.cost.items : 0;
  }

  private warn(message: string): void {
    if (this.warned) return;
    this.warned = true;
    this.gpu.log(`${this.options.label}: ${message}`, 'warning');
  }

  private get signature(): string {
    return `${this.options.label}|${this.options.signature ?? ''}`;
  }

  private cache(create = false): Map<string, BatchCost> | undefined {
    const key = this.options.cacheKey;
    if (!key) return undefined;
    let perGpu = costCaches.get(this.gpu);
    if (!perGpu && create) costCaches.set(this.gpu, (perGpu = new WeakMap()));
    let map = perGpu?.get(key);
    if (!map && create && perGpu) perGpu.set(key, (map = new Map()));
    return map;
  }
}

function costOf(r: PeakReading, items: number): BatchCost {
  return {
    items,
    bytes: Math.max(0, r.peakInUseBytes - r.startInUseBytes),
    requestedBytes: Math.max(0, r.peakRequestedBytes - r.startRequestedBytes),
    largestRequest: r.largestRequest,
  };
}

/**
 * Runs `total` items in batches chosen by a `BatchSizer`: `work(start, count)` does items
 * start..start+count−1 and must free its temporaries before it resolves. `measure`, if given, does
 * one item's work without keeping its result (see `BatchSizer.measure`); without it the first
 * batch has one item. Returns the batch sizes.
 */
export async function autoBatch(
  gpu: Gpu,
  total: number,
  options: BatchSizerOptions & { signal?: AbortSignal; measure?: () => Promise<unknown> },
  work: (start: number, count: number) => Promise<void>,
): Promise<number[]> {
  if (!Number.isInteger(total) || total < 0) throw new ArgumentError(`${options.label}: the number of items must be an integer ≥ 0, got ${total}`);
  const sizer = new BatchSizer(gpu, options);
  if (total > 0 && options.measure && sizer.needsMeasurement) await sizer.measure(options.measure);
  for (let done = 0; done < total; ) {
    if (options.signal?.aborted) throw new CancelledError(`${options.label}: cancelled`);
    const b = sizer.next(total - done);
    await sizer.run(b, () => work(done, b));
    done += b;
  }
  sizer.report();
  return sizer.batches;
}

/** 1536 → "1.5 KiB", 3·2^30 → "3 GiB". */
export function formatBytes(bytes: number): string {
  if (bytes === Infinity) return 'no limit';
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? Math.round(v) : Number(v.toFixed(v < 10 ? 1 : 0))} ${units[u]}`;
}
