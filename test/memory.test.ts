/** The memory budget, peak reporting, the pool's release of free buffers, and automatic batch sizes. */
import { afterAll, describe, expect, it } from 'vitest';
import { initGpu, type Gpu } from '../src/runtime/gpu.js';
import { ArgumentError, CancelledError } from '../src/runtime/errors.js';
import { empty, tensor } from '../src/runtime/tensor.js';
import { scale } from '../src/kernels/elementwise.js';
import {
  BatchSizer,
  GiB,
  MiB,
  autoBatch,
  checkBatchSize,
  chooseBatchSize,
  defaultMemoryBudget,
  formatBytes,
  memoryEnvironment,
  type MessageLevel,
} from '../src/runtime/memory.js';
import { getGpu } from './helpers.js';

const KiB = 1024;

/** A Gpu of this file's own, with a small budget and its messages collected. */
let own: Promise<{ gpu: Gpu; messages: { message: string; level: MessageLevel }[] }> | null = null;
function ownGpu() {
  own ??= (async () => {
    const messages: { message: string; level: MessageLevel }[] = [];
    const gpu = await initGpu({ memoryBudget: 4 * MiB, log: (message, level) => messages.push({ message, level }) });
    return { gpu, messages };
  })();
  return own;
}
afterAll(async () => {
  if (own) (await own).gpu.destroy();
});

describe('chooseBatchSize', () => {
  const cost = { items: 1, bytes: MiB, requestedBytes: MiB, largestRequest: MiB };
  it('fits the measured cost, scaled up with a quarter for size-class rounding, into the budget left', () => {
    // 8 MiB left; 1.25 MiB per extra item: 6 items.
    expect(chooseBatchSize({ cost, budget: 10 * MiB, inUse: 2 * MiB })).toBe(6);
    // Asked-for bytes below the allocated ones (rounding already seen): the quarter is taken on them.
    expect(chooseBatchSize({ cost: { ...cost, requestedBytes: 0.8 * MiB }, budget: 10 * MiB, inUse: 2 * MiB })).toBe(8);
    // A measured batch of 4 (4 MiB) fits 4.5 MiB as it is, though 4·1.25 MiB would not.
    const four = { items: 4, bytes: 4 * MiB, requestedBytes: 4 * MiB, largestRequest: 2 * MiB };
    expect(chooseBatchSize({ cost: four, budget: 4.5 * MiB, inUse: 0 })).toBe(4);
    // 3 MiB left: fewer items than measured, scaled down: floor(3·4 / 5) = 2.
    expect(chooseBatchSize({ cost: four, budget: 3 * MiB, inUse: 0 })).toBe(2);
    expect(chooseBatchSize({ cost, budget: MiB, inUse: 2 * MiB })).toBe(0);
  });

  it("keeps the largest tensor within the adapter's binding limit, and under max", () => {
    expect(chooseBatchSize({ cost, budget: GiB, inUse: 0, maxBindingSize: 3 * MiB })).toBe(3);
    expect(chooseBatchSize({ cost, budget: GiB, inUse: 0, max: 5 })).toBe(5);
    expect(chooseBatchSize({ cost: { items: 2, bytes: 0, largestRequest: 0 }, budget: MiB, inUse: 0, max: 50 })).toBe(50);
  });
});

describe('the memory budget', () => {
  it('defaults to 2 GiB in Node and 1 GiB in a browser, at most a quarter of the memory an adapter shares', () => {
    const hw = { isSoftware: false };
    const sw = { isSoftware: true };
    expect(defaultMemoryBudget(hw, { isNode: true, systemMemory: 8 * GiB })).toBe(2 * GiB); // a GPU's own memory
    expect(defaultMemoryBudget(hw, { isNode: false, systemMemory: null })).toBe(GiB);
    expect(defaultMemoryBudget(hw, { isNode: false, systemMemory: 2 * GiB })).toBe(512 * MiB); // navigator.deviceMemory 2
    expect(defaultMemoryBudget(sw, { isNode: true, systemMemory: 4 * GiB })).toBe(GiB);
    expect(defaultMemoryBudget(sw, { isNode: true, systemMemory: 64 * GiB })).toBe(2 * GiB);
    expect(defaultMemoryBudget(sw, { isNode: true, systemMemory: 512 * MiB })).toBe(256 * MiB);
  });

  it('initGpu takes memoryBudget in bytes, and refuses what is not a whole number of bytes', async () => {
    const gpu = await getGpu();
    expect(gpu.memory().budgetBytes).toBe(defaultMemoryBudget(gpu.adapter, await memoryEnvironment()));
    expect(gpu.memoryBudget).toBe(gpu.memory().budgetBytes);
    for (const bad of [0, -1, 1.5, NaN, '1GB']) {
      await expect(initGpu({ memoryBudget: bad as number })).rejects.toThrow(ArgumentError);
    }
    await expect(initGpu({ memoryBudget: -1 })).rejects.toThrow('initGpu: memoryBudget must be a whole number of bytes > 0 (or Infinity for no budget), got -1');
    expect(() => gpu.setMemoryBudget(0)).toThrow('setMemoryBudget: memoryBudget must be a whole number of bytes > 0');
    const { gpu: small } = await ownGpu();
    expect(small.memory().budgetBytes).toBe(4 * MiB);
  });

  it('the pool destroys free buffers, the largest first, when a new one would pass the budget', async () => {
    const { gpu } = await ownGpu();
    gpu.trim();
    const start = gpu.memory();
    expect(start.bytes).toBe(0);
    const ones = [0, 1, 2].map(() => empty(gpu, [MiB / 4])); // 1 MiB each
    for (const t of ones) t.dispose();
    expect(gpu.memory().bytes).toBe(3 * MiB); // kept for reuse
    const two = empty(gpu, [MiB / 2]); // 2 MiB: one 1 MiB buffer must go
    let m = gpu.memory();
    expect(m.bytes).toBe(4 * MiB);
    expect(m.evictions).toBe(start.evictions + 1);
    // Live tensors are never touched: past the budget only when they need it.
    const three = tensor(gpu, new Float32Array((3 * MiB) / 4).fill(7), [(3 * MiB) / 4]);
    m = gpu.memory();
    expect(m.inUseBytes).toBe(5 * MiB);
    expect(m.bytes).toBe(5 * MiB); // both free 1 MiB buffers destroyed
    expect(m.peakBytes).toBe(5 * MiB);
    expect((await three.read())[12345]).toBe(7);
    two.dispose();
    three.dispose();
    gpu.resetPeak();
    m = gpu.memory();
    expect(m.peakBytes).toBe(m.bytes);
    expect(m.peakInUseBytes).toBe(0);
    // A lower budget frees the excess of free buffers at once.
    gpu.setMemoryBudget(3 * MiB);
    expect(gpu.memory().bytes).toBeLessThanOrEqual(3 * MiB);
    gpu.setMemoryBudget(4 * MiB);
  });

  it('a free buffer that recorded work still reads is destroyed only after that work is submitted', async () => {
    const { gpu } = await ownGpu();
    gpu.trim();
    const x = tensor(gpu, new Float32Array(MiB / 4).fill(3), [MiB / 4]); // 1 MiB
    const y = await scale(x, 2); // recorded, not yet submitted
    x.dispose();
    expect(gpu.hasPendingWork).toBe(true);
    const evictions = gpu.memory().evictions;
    const big = empty(gpu, [(3 * MiB) / 4]); // 3 MiB: x's buffer must go
    expect(gpu.memory().evictions).toBe(evictions + 1);
    expect((await y.read())[777]).toBe(6);
    y.dispose();
    big.dispose();
  });
});

describe('BatchSizer and autoBatch', () => {
  /** A batch of b items: b × 256 KiB, plus 64 KiB whatever b. */
  const work = (gpu: Gpu, b: number) => async () => {
    const perItem = empty(gpu, [b, (256 * KiB) / 4]);
    const fixed = empty(gpu, [(64 * KiB) / 4]);
    perItem.dispose();
    fixed.dispose();
  };
  const runAll = async (sizer: BatchSizer, gpu: Gpu, total: number) => {
    for (let done = 0; done < total; ) {
      const b = sizer.next(total - done);
      await sizer.run(b, work(gpu, b));
      done += b;
    }
    return sizer.batches;
  };

  it('measures one item, then takes what fits, balanced; the next call reuses the measurement', async () => {
    const { gpu, messages } = await ownGpu();
    gpu.trim();
    gpu.resetPeak();
    expect(gpu.memory().inUseBytes).toBe(0);
    const key = {};
    messages.length = 0;
    // Without a measurement the first batch has one item: 256 + 64 = 320 KiB, all asked for.
    // 4096 KiB / (320 KiB · 1.25) = 10.24: at most 10 per batch, so the 19 left go as 10 + 9.
    const first = new BatchSizer(gpu, { label: 'test', unit: 'image', cacheKey: key, signature: 'a' });
    expect(first.needsMeasurement).toBe(true);
    expect(await runAll(first, gpu, 20)).toEqual([1, 10, 9]);
    expect(first.measured).toEqual({ items: 1, bytes: 320 * KiB, requestedBytes: 320 * KiB, largestRequest: 256 * KiB });
    expect(gpu.memory().peakBytes).toBeLessThanOrEqual(4 * MiB);
    first.report();
    expect(messages).toEqual([{ level: 'info', message: 'test: 20 images in 3 batches of 10/9/1 (about 320 KiB per image; memory budget 4 MiB, 0 bytes in use before)' }]);
    // Same key and signature: no one-item batch, and the same batches every time.
    for (let i = 0; i < 2; i++) expect(await runAll(new BatchSizer(gpu, { label: 'test', cacheKey: key, signature: 'a' }), gpu, 20)).toEqual([10, 10]);
    // Another signature measures again; measure() does it on work whose result is thrown away.
    const other = new BatchSizer(gpu, { label: 'test', cacheKey: key, signature: 'b' });
    await other.measure(work(gpu, 1));
    expect(other.needsMeasurement).toBe(false);
    expect(await runAll(other, gpu, 20)).toEqual([10, 10]);
    // A cost given in bytes per item: 4096 / (300 · 1.25) = 10.9.
    expect(await runAll(new BatchSizer(gpu, { label: 'test', bytesPerItem: 300 * KiB }), gpu, 30)).toEqual([10, 10, 10]);
    // maxBatch caps 'auto'.
    expect(await runAll(new BatchSizer(gpu, { label: 'test', cacheKey: key, signature: 'a', maxBatch: 4 }), gpu, 10)).toEqual([4, 3, 3]);
    expect(gpu.memory().peakBytes).toBeLessThanOrEqual(4 * MiB);
  });

  it('a batch that passes the budget (more than its cost said) makes the next ones smaller, with a warning', async () => {
    const { gpu, messages } = await ownGpu();
    gpu.trim();
    messages.length = 0;
    // Told 100 KiB per item, it runs 20 of the 40 (4096 / 125 = 32, balanced); they take 5184 KiB.
    // Then 4096 · 20 / (5184 · 1.25) = 12.6: the 20 left go as 10 + 10.
    const sizer = new BatchSizer(gpu, { label: 'test', bytesPerItem: 100 * KiB });
    expect(await runAll(sizer, gpu, 40)).toEqual([20, 10, 10]);
    expect(messages).toEqual([
      { level: 'warning', message: 'test: a batch of 20 items took 5.1 MiB, more than measured before, and the memory budget (4 MiB) was passed; smaller batches from now on' },
    ]);
  });

  it('runs an explicit batch size as asked when it fits, and splits it with one warning when it does not', async () => {
    const { gpu, messages } = await ownGpu();
    const key = {};
    await runAll(new BatchSizer(gpu, { label: 'test', cacheKey: key }), gpu, 11); // measures: 1, then 10
    messages.length = 0;
    expect(await runAll(new BatchSizer(gpu, { label: 'test', cacheKey: key, batchSize: 8 }), gpu, 20)).toEqual([8, 8, 4]);
    expect(messages).toEqual([]);
    gpu.resetPeak();
    expect(await runAll(new BatchSizer(gpu, { label: 'test', unit: 'mask', cacheKey: key, batchSize: 16 }), gpu, 40)).toEqual([10, 10, 10, 10]);
    expect(messages).toEqual([
      {
        level: 'warning',
        message: 'test: a batch of 16 masks needs about 5 MiB, more than the memory budget leaves (4 MiB, of which 0 bytes in use); running batches of at most 10 instead',
      },
    ]);
    expect(gpu.memory().peakBytes).toBeLessThanOrEqual(4 * MiB);
    // Not even one item fits: one at a time, with a warning.
    messages.length = 0;
    gpu.setMemoryBudget(128 * KiB);
    try {
      expect(await runAll(new BatchSizer(gpu, { label: 'test', cacheKey: key }), gpu, 2)).toEqual([1, 1]);
    } finally {
      gpu.setMemoryBudget(4 * MiB);
    }
    expect(messages).toHaveLength(1);
    expect(messages[0]!.message).toMatch(/^test: one item needs about 320 KiB, more than the memory budget leaves \(128 KiB, of which 0 bytes in use\); running one at a time/);
  });

  it('autoBatch covers every item once, in order, and stops when cancelled', async () => {
    const { gpu } = await ownGpu();
    const seen: [number, number][] = [];
    const sizes = await autoBatch(gpu, 23, { label: 'test' }, async (start, count) => {
      seen.push([start, count]);
      await work(gpu, count)();
    });
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(23);
    expect(sizes[0]).toBe(1); // no measure: the first batch measures
    let measured = 0;
    const measuredSizes = await autoBatch(gpu, 23, { label: 'test', measure: async () => void (measured++, await work(gpu, 1)()) }, (_, count) => work(gpu, count)());
    expect(measured).toBe(1);
    expect(measuredSizes).toEqual([8, 8, 7]); // at most 10 per batch (as above), balanced
    let next = 0;
    for (const [start, count] of seen) {
      expect(start).toBe(next);
      next += count;
    }
    expect(await autoBatch(gpu, 0, { label: 'test' }, async () => {})).toEqual([]);
    const controller = new AbortController();
    const run = autoBatch(gpu, 10, { label: 'test', signal: controller.signal }, async () => controller.abort());
    await expect(run).rejects.toThrow(CancelledError);
    await expect(autoBatch(gpu, 10, { label: 'test', signal: controller.signal }, async () => {})).rejects.toThrow('test: cancelled');
  });

  it('checks its options', async () => {
    const { gpu } = await ownGpu();
    expect(checkBatchSize('x', undefined)).toBe('auto');
    expect(checkBatchSize('x', 'auto')).toBe('auto');
    expect(checkBatchSize('x', 7)).toBe(7);
    for (const bad of [0, -2, 1.5, 'big', null]) expect(() => checkBatchSize('smoothGrad', bad)).toThrow(/^smoothGrad: batchSize must be 'auto' or a positive integer, got/);
    expect(() => new BatchSizer(gpu, { label: 'test', bytesPerItem: -1 })).toThrow('test: bytesPerItem must be a finite number ≥ 0, got -1');
    expect(() => new BatchSizer(gpu, { label: 'test', maxBatch: 0 })).toThrow('test: maxBatch must be ≥ 1, got 0');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * GiB)).toBe('3 GiB');
    expect(formatBytes(300)).toBe('300 bytes');
  });
});
