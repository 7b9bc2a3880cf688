/**
 * A pool of GPU buffers keyed by size class and usage, kept within a memory budget.
 *
 * Creating and destroying GPUBuffers is slow and fragments memory, so released buffers are kept and
 * handed out again for any request of the same size class. Size classes are powers of two split
 * into quarters (2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k), which wastes at most 25% per buffer.
 *
 * The budget bounds what the pool holds (in use + kept free): when a new buffer would take the
 * pool past it, free buffers are destroyed first, the largest first. Buffers in use are never
 * touched, so the pool goes past its budget only when the tensors alive need more; the batching
 * methods (src/runtime/memory.ts) choose their batch sizes so that they do not.
 */

/** Counters that tests and benchmarks read to check that memory is returned. */
export interface PoolStats {
  /** Buffers created by the pool and not destroyed (in use + free). */
  buffers: number;
  /** Bytes in those buffers: the GPU memory the pool holds. */
  bytes: number;
  /** Buffers currently handed out. */
  inUse: number;
  /** Bytes currently handed out (the tensors alive, each rounded up to its size class). */
  inUseBytes: number;
  /** Largest `bytes` since the pool was made or `resetPeak()` was last called. */
  peakBytes: number;
  /** Largest `inUseBytes` over the same time. */
  peakInUseBytes: number;
  /** The memory budget in bytes (Infinity: none). */
  budgetBytes: number;
  /** Free buffers destroyed so far to stay within the budget. */
  evictions: number;
}

/** What a `PeakWatch` saw between its start and `stop()`. */
export interface PeakReading {
  /** `inUseBytes` when the watch started. */
  startInUseBytes: number;
  /** Largest `inUseBytes` while it ran. */
  peakInUseBytes: number;
  /** The same two for the bytes asked for (before rounding up to size classes). */
  startRequestedBytes: number;
  peakRequestedBytes: number;
  /** Largest single request while it ran, in bytes (0 if none). */
  largestRequest: number;
}

/** Follows the pool's in-use peak over one stretch of work without touching `peakBytes`. */
export interface PeakWatch {
  stop(): PeakReading;
}

export function sizeClass(bytes: number): number {
  const min = 256;
  if (bytes <= min) return min;
  const p = 2 ** Math.floor(Math.log2(bytes));
  if (p === bytes) return p;
  const quarter = p / 4;
  return p + Math.ceil((bytes - p) / quarter) * quarter;
}

interface Watch {
  start: number;
  peak: number;
  startRequested: number;
  peakRequested: number;
  largest: number;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private freeBytes = 0;
  private live = new Set<GPUBuffer>();
  /** Bytes asked for by each buffer in use, and their sum. */
  private requested = new Map<GPUBuffer, number>();
  private requestedBytes = 0;
  private stats: PoolStats;
  private readonly watches = new Set<Watch>();

  /** Buffers released while recorded work may still use them; see `Gpu.writeBuffer`. */
  readonly releasedSinceFlush = new Set<GPUBuffer>();

  /**
   * @param maxBufferSize the largest buffer to hand out (the device's storage binding limit):
   *   rounding up to a size class never crosses it
   * @param hasPendingWork tells whether recorded commands may still use a released buffer
   * @param flush submits recorded work, before `trim` destroys buffers it may use
   * @param budget bytes the pool tries to stay within (Infinity: no limit)
   */
  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    private readonly hasPendingWork: () => boolean = () => false,
    private readonly flush: () => void = () => {},
    budget = Infinity,
  ) {
    this.stats = { buffers: 0, bytes: 0, inUse: 0, inUseBytes: 0, peakBytes: 0, peakInUseBytes: 0, budgetBytes: budget, evictions: 0 };
  }

  /** The memory budget in bytes. */
  get budget(): number {
    return this.stats.budgetBytes;
  }

  /** Sets the budget (bytes > 0, or Infinity) and frees what it can of the excess at once. */
  setBudget(bytes: number): void {
    this.stats.budgetBytes = bytes;
    if (this.stats.bytes > bytes) this.evict(this.stats.bytes - bytes);
  }

  acquire(bytes: number, usage: GPUBufferUsageFlags, label = 'tensor'): GPUBuffer {
    let size = sizeClass(Math.max(4, bytes));
    if (size > this.maxBufferSize) size = align4(bytes); // the largest buffers are not rounded up
    size = align4(size);
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    let buffer = list?.pop();
    if (buffer) {
      this.freeBytes -= buffer.size;
    } else {
      const over = this.stats.bytes + size - this.stats.budgetBytes;
      if (over > 0 && this.freeBytes > 0) this.evict(over);
      buffer = this.device.createBuffer({ size, usage, label });
      this.live.add(buffer);
      this.stats.buffers++;
      this.stats.bytes += buffer.size;
      this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.bytes);
    }
    this.stats.inUse++;
    this.stats.inUseBytes += buffer.size;
    this.stats.peakInUseBytes = Math.max(this.stats.peakInUseBytes, this.stats.inUseBytes);
    this.requested.set(buffer, bytes);
    this.requestedBytes += bytes;
    for (const w of this.watches) {
      w.peak = Math.max(w.peak, this.stats.inUseBytes);
      w.peakRequested = Math.max(w.peakRequested, this.requestedBytes);
      w.largest = Math.max(w.largest, bytes);
    }
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    if (!this.live.has(buffer) || !this.requested.has(buffer)) return;
    this.requestedBytes -= this.requested.get(buffer)!;
    this.requested.delete(buffer);
    const key = `${buffer.usage}:${buffer.size}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buffer);
    this.freeBytes += buffer.size;
    if (this.hasPendingWork()) this.releasedSinceFlush.add(buffer);
    this.stats.inUse--;
    this.stats.inUseBytes -= buffer.size;
  }

  /**
   * Destroys free buffers, the largest first, until at least `bytes` are freed or none is left.
   * Recorded work is submitted first: it may still use them (destroying a buffer that submitted
   * work uses is safe; WebGPU frees it once that work is done).
   */
  private evict(bytes: number): void {
    if (this.freeBytes === 0) return;
    this.flush();
    const keys = [...this.free.keys()].sort((a, b) => sizeOfKey(b) - sizeOfKey(a));
    let freed = 0;
    for (const key of keys) {
      const list = this.free.get(key)!;
      while (list.length > 0 && freed < bytes) {
        const b = list.pop()!;
        freed += b.size;
        this.destroyFree(b);
        this.stats.evictions++;
      }
      if (list.length === 0) this.free.delete(key);
      if (freed >= bytes) break;
    }
  }

  private destroyFree(b: GPUBuffer): void {
    this.live.delete(b);
    this.releasedSinceFlush.delete(b);
    this.freeBytes -= b.size;
    this.stats.buffers--;
    this.stats.bytes -= b.size;
    b.destroy();
  }

  /** Destroys every free buffer (in-use buffers are untouched), after submitting recorded work. */
  trim(): void {
    this.flush();
    for (const list of this.free.values()) for (const b of list) this.destroyFree(b);
    this.free.clear();
  }

  /** Starts the peaks over: `peakBytes` and `peakInUseBytes` become the current values. */
  resetPeak(): void {
    this.stats.peakBytes = this.stats.bytes;
    this.stats.peakInUseBytes = this.stats.inUseBytes;
  }

  /** Starts following the in-use peak and the largest buffer handed out, until `stop()`. */
  watch(): PeakWatch {
    const w: Watch = { start: this.stats.inUseBytes, peak: this.stats.inUseBytes, startRequested: this.requestedBytes, peakRequested: this.requestedBytes, largest: 0 };
    this.watches.add(w);
    return {
      stop: () => {
        this.watches.delete(w);
        return { startInUseBytes: w.start, peakInUseBytes: w.peak, startRequestedBytes: w.startRequested, peakRequestedBytes: w.peakRequested, largestRequest: w.largest };
      },
    };
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }

  destroyAll(): void {
    for (const b of this.live) b.destroy();
    this.live.clear();
    this.free.clear();
    this.requested.clear();
    this.requestedBytes = 0;
    this.freeBytes = 0;
    this.stats = { ...this.stats, buffers: 0, bytes: 0, inUse: 0, inUseBytes: 0 };
  }
}

function sizeOfKey(key: string): number {
  return Number(key.slice(key.indexOf(':') + 1));
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
