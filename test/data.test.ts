import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DataLoader, Rng, mulberry32 } from '../src/nets/data.js';
import { FASHION_CLASSES, loadFashionMnist, parseIdx, readIdx } from '../src/nets/idx.js';
import { getGpu, rng } from './helpers.js';

/** An unsigned-byte IDX file of `shape` holding 0, 1, 2, … (mod 256). */
function idxBytes(shape: number[], dataBytes = shape.reduce((a, b) => a * b, 1)): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + dataBytes);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < dataBytes; i++) out[4 + 4 * shape.length + i] = i % 256;
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'idx-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('IDX reader', () => {
  it('parses labels (0x801) and images (0x803) with big-endian sizes', () => {
    const labels = parseIdx(idxBytes([5]));
    expect(labels.shape).toEqual([5]);
    expect([...labels.data]).toEqual([0, 1, 2, 3, 4]);
    const images = parseIdx(idxBytes([2, 3, 300])); // 300 > 255: a size needing more than one byte
    expect(images.shape).toEqual([2, 3, 300]);
    expect(images.data.length).toBe(1800);
    expect(images.data[257]).toBe(1);
  });

  it('reads plain and gzipped files', () => {
    const bytes = idxBytes([3, 4, 4]);
    writeFileSync(join(tmp, 'a-idx3-ubyte'), bytes);
    writeFileSync(join(tmp, 'a-idx3-ubyte.gz'), gzipSync(bytes));
    const plain = readIdx(join(tmp, 'a-idx3-ubyte'));
    const gz = readIdx(join(tmp, 'a-idx3-ubyte.gz'));
    expect(gz.shape).toEqual([3, 4, 4]);
    expect([...gz.data]).toEqual([...plain.data]);
  });

  it('gives clear errors: missing file, bad magic, truncated data', () => {
    expect(() => readIdx(join(tmp, 'nope.gz'))).toThrow(/not found.*dataset-fashion-mnist.*\/usr\/share\/datasets\/fashion-mnist/);
    const bad = idxBytes([4]);
    bad[2] = 0x0d; // float data
    expect(() => parseIdx(bad, 'x.idx')).toThrow(/x\.idx: bad IDX magic number 0x00000d01/);
    expect(() => parseIdx(idxBytes([10, 28, 28], 28 * 28 * 10 - 1))).toThrow(/truncated data.*needs 7840 bytes.*7839/);
    expect(() => parseIdx(idxBytes([10, 28, 28]).subarray(0, 10))).toThrow(/truncated header/);
    writeFileSync(join(tmp, 'broken.gz'), gzipSync(idxBytes([100])).subarray(0, 20));
    expect(() => readIdx(join(tmp, 'broken.gz'))).toThrow(/broken\.gz: could not gunzip/);
    expect(() => loadFashionMnist('test', tmp)).toThrow(/t10k-images-idx3-ubyte\.gz not found.*dataset-fashion-mnist/);
  });

  it('loads the Fashion-MNIST test split from the Debian package', () => {
    const d = loadFashionMnist('test');
    expect(d.count).toBe(10000);
    expect(d.images.length).toBe(10000 * 784);
    expect(d.labels.length).toBe(10000);
    expect(d.classNames).toEqual(FASHION_CLASSES);
    expect(FASHION_CLASSES[9]).toBe('Ankle boot');
    let min = Infinity;
    let max = -Infinity;
    for (const v of d.images) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    const perClass = new Array(10).fill(0);
    for (const l of d.labels) perClass[l]++;
    expect(perClass).toEqual(new Array(10).fill(1000)); // the test set is balanced
    // The first test image is an ankle boot (label 9), as in every Fashion-MNIST distribution.
    expect(d.labels[0]).toBe(9);
    const first = loadFashionMnist('test', undefined, { limit: 3 });
    expect(first.count).toBe(3);
    expect([...first.labels]).toEqual([...d.labels.subarray(0, 3)]);
    expect([...first.images]).toEqual([...d.images.subarray(0, 3 * 784)]);
    expect(() => loadFashionMnist('test', undefined, { limit: 0 })).toThrow(/limit must be a positive integer/);
  });
});

describe('Rng', () => {
  it('is reproducible by seed and matches mulberry32', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const ref = rng(42);
    const m = mulberry32(42);
    const xs = Array.from({ length: 5 }, () => a.uniform());
    expect(Array.from({ length: 5 }, () => b.uniform())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.uniform())).not.toEqual(xs);
    expect(xs).toEqual(Array.from({ length: 5 }, () => ref()));
    expect(m()).toBe(xs[0]);
  });

  it('draws uniforms in range and normals with the right moments', () => {
    const r = new Rng(7);
    let s = 0;
    let s2 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const u = r.uniform(-2, 3);
      expect(u >= -2 && u < 3).toBe(true);
      const z = r.normal(1.5, 2);
      s += z;
      s2 += z * z;
    }
    const mean = s / n;
    const std = Math.sqrt(s2 / n - mean * mean);
    expect(Math.abs(mean - 1.5)).toBeLessThan(0.05);
    expect(Math.abs(std - 2)).toBeLessThan(0.05);
    const counts = new Array(4).fill(0);
    for (let i = 0; i < 4000; i++) counts[r.int(4)]++;
    for (const c of counts) expect(c).toBeGreaterThan(850);
  });
});

describe('DataLoader', () => {
  const N = 23;
  const images = Float32Array.from({ length: N * 6 }, (_, i) => i); // sample i holds 6i..6i+5
  const labels = Array.from({ length: N }, (_, i) => i % 5);

  it('yields every sample once per epoch, reshuffled each epoch, reproducibly by seed', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    const make = (seed: number) => new DataLoader(gpu, { images, labels, sampleShape: [1, 2, 3], batchSize: 5, seed });
    const loader = make(3);
    expect(loader.length).toBe(5);
    const seen: number[][] = [];
    for (let epoch = 0; epoch < 2; epoch++) {
      const order: number[] = [];
      const sizes: number[] = [];
      for await (const batch of loader.batches()) {
        expect(batch.x.shape).toEqual([batch.indices.length, 1, 2, 3]);
        const x = await batch.x.read();
        batch.indices.forEach((idx, b) => {
          expect([...x.subarray(b * 6, b * 6 + 6)]).toEqual([0, 1, 2, 3, 4, 5].map((k) => idx * 6 + k));
          expect(batch.labels[b]).toBe(idx % 5);
        });
        batch.x.dispose();
        order.push(...batch.indices);
        sizes.push(batch.indices.length);
      }
      expect(sizes).toEqual([5, 5, 5, 5, 3]);
      expect([...order].sort((a, b) => a - b)).toEqual([...Array(N).keys()]);
      expect(order).not.toEqual([...Array(N).keys()]);
      seen.push(order);
    }
    expect(seen[1]).not.toEqual(seen[0]); // reshuffled
    expect([...make(3).order(0)]).toEqual(seen[0]); // same seed, same order
    expect([...make(3).order(1)]).toEqual(seen[1]);
    expect([...make(4).order(0)]).not.toEqual(seen[0]);
    expect(gpu.memory().inUse).toBe(before);
  });

  it('drops the last partial batch on request, and can keep the data order', async () => {
    const gpu = await getGpu();
    const loader = new DataLoader(gpu, { images, labels, sampleShape: [6], batchSize: 5, dropLast: true, shuffle: false });
    expect(loader.length).toBe(4);
    expect(loader.samplesPerEpoch).toBe(20);
    const all: number[] = [];
    for await (const batch of loader.batches(0)) {
      expect(batch.x.shape).toEqual([5, 6]);
      all.push(...batch.indices);
      batch.x.dispose();
    }
    expect(all).toEqual([...Array(20).keys()]);
  });

  it('applies a seeded augmentation to copies of the samples', async () => {
    const gpu = await getGpu();
    const make = () =>
      new DataLoader(gpu, {
        images,
        labels,
        sampleShape: [6],
        batchSize: 8,
        seed: 1,
        augment: (s, r) => {
          if (r.uniform() < 0.5) s.reverse();
        },
      });
    const read = async (l: DataLoader) => {
      const out: number[] = [];
      for await (const b of l.batches(0)) {
        out.push(...(await b.x.read()));
        b.x.dispose();
      }
      return out;
    };
    const a = await read(make());
    expect(await read(make())).toEqual(a);
    expect(images[0]).toBe(0); // the data set itself is untouched
    expect(images[5]).toBe(5);
    let reversed = 0;
    for (let b = 0; b < N; b++) if (a[b * 6]! > a[b * 6 + 5]!) reversed++;
    expect(reversed).toBeGreaterThan(3);
    expect(reversed).toBeLessThan(N - 3);
  });

  it('rejects inconsistent data with clear errors', async () => {
    const gpu = await getGpu();
    const before = gpu.memory().inUse;
    expect(() => new DataLoader(gpu, { images, labels: labels.slice(1), sampleShape: [6], batchSize: 4 })).toThrow(/138 image values do not match 22 labels × sample \[6\]/);
    expect(() => new DataLoader(gpu, { images, labels, sampleShape: [6], batchSize: 0 })).toThrow(/batchSize must be a positive integer/);
    expect(() => new DataLoader(gpu, { images, labels: labels.map((l) => l + 0.5), sampleShape: [6], batchSize: 4 })).toThrow(/label 0.5 at index 0/);
    expect(() => new DataLoader(gpu, { images, labels, sampleShape: [6], batchSize: 30, dropLast: true })).toThrow(/no batch at all/);
    const loader = new DataLoader(gpu, { images, labels, sampleShape: [6], batchSize: 4 });
    expect(() => loader.batchOf([0, 23])).toThrow(/index 23 is out of range \(23 samples\)/);
    expect(gpu.memory().inUse).toBe(before);
  });
});
