/**
 * A pool of GPU buffers keyed by size class and usage.
 *
 * Creating and destroying GPUBuffers is slow and fragments memory, so released buffers are kept and
 * handed out again for any request of the same size class. Size classes are powers of two split
 * into quarters (2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k), which wastes at most 25% per buffer.
 */

/** Counters that tests and benchmarks read to check that memory is returned. */
export interface PoolStats {
  /** Buffers created by the pool and not destroyed (in use + free). */
  buffers: number;
  /** Bytes in those buffers. */
  bytes: number;
  /** Buffers currently handed out. */
  inUse: number;
  /** Bytes currently handed out. */
  inUseBytes: number;
  /** Largest `bytes` seen so far. */
  peakBytes: number;
}

export function sizeClass(bytes: number): number {
  const min = 256;
  if (bytes <= min) return min;
  const p = 2 ** Math.floor(Math.log2(bytes));
  if (p === bytes) return p;
  const quarter = p / 4;
  return p + Math.ceil((bytes - p) / quarter) * quarter;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private live = new Set<GPUBuffer>();
  private stats: PoolStats = { buffers: 0, bytes: 0, inUse: 0, inUseBytes: 0, peakBytes: 0 };

  /** Buffers released while recorded work may still use them; see `Gpu.writeBuffer`. */
  readonly releasedSinceFlush = new Set<GPUBuffer>();

  /**
   * @param maxBufferSize the largest buffer to hand out (the device's storage binding limit):
   *   rounding up to a size class never crosses it
   * @param hasPendingWork tells whether recorded commands may still use a released buffer
   * @param flush submits recorded work, before `trim` destroys buffers it may use
   */
  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    private readonly hasPendingWork: () => boolean = () => false,
    private readonly flush: () => void = () => {},
  ) {}

  acquire(bytes: number, usage: GPUBufferUsageFlags, label = 'tensor'): GPUBuffer {
    let size = sizeClass(Math.max(4, bytes));
    if (size > this.maxBufferSize) size = align4(bytes); // the largest buffers are not rounded up
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    let buffer = list?.pop();
    if (!buffer) {
      buffer = this.device.createBuffer({ size: align4(size), usage, label });
      this.live.add(buffer);
      this.stats.buffers++;
      this.stats.bytes += buffer.size;
      this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.bytes);
    }
    this.stats.inUse++;
    this.stats.inUseBytes += buffer.size;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    if (!this.live.has(buffer)) return;
    const key = `${buffer.usage}:${buffer.size}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buffer);
    if (this.hasPendingWork()) this.releasedSinceFlush.add(buffer);
    this.stats.inUse--;
    this.stats.inUseBytes -= buffer.size;
  }

  /** Destroys every free buffer (in-use buffers are untouched), after submitting recorded work. */
  trim(): void {
    this.flush();
    for (const list of this.free.values()) {
      for (const b of list) {
        this.live.delete(b);
        this.stats.buffers--;
        this.stats.bytes -= b.size;
        b.destroy();
      }
    }
    this.free.clear();
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }

  destroyAll(): void {
    for (const b of this.live) b.destroy();
    this.live.clear();
    this.free.clear();
    this.stats = { buffers: 0, bytes: 0, inUse: 0, inUseBytes: 0, peakBytes: this.stats.peakBytes };
  }
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
