import { describe, expect, it } from 'vitest';
import { drise, driseMasks, driseWeights, iou, type Detection } from '../src/saliency/drise.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { expectClose, getGpu } from './helpers.js';
import { maskReference, maskShift } from './reference/drise.js';

describe('driseWeights', () => {
  const target: Detection = { box: [0, 0, 10, 10], objectness: 1, scores: [1, 0] };
  it('is IoU × cosine × objectness, maximised over proposals', () => {
    const exact: Detection = { box: [0, 0, 10, 10], objectness: 0.5, scores: [2, 0] }; // 1 · 1 · 0.5
    const shifted: Detection = { box: [5, 0, 15, 10], scores: [1, 1] }; // IoU 50/150, cos 1/√2, O = 1
    expect(iou(target.box, shifted.box)).toBeCloseTo(1 / 3, 12);
    const [w1, w2, w3] = driseWeights(target, [[exact], [shifted], [exact, shifted]]);
    expect(w1).toBeCloseTo(0.5, 12);
    expect(w2).toBeCloseTo(1 / 3 / Math.SQRT2, 12);
    expect(w3).toBeCloseTo(0.5, 12);
  });
  it('gives 0 without proposals, and one column per target', () => {
    const other: Detection = { box: [20, 20, 30, 30], scores: [0, 1] };
    expect(driseWeights([target, other], [[], [other]])).toEqual([
      [0, 0],
      [0, 1],
    ]);
  });
});

describe('D-RISE masks', () => {
  it('match the reference construction, and the same seed gives the same masks', async () => {
    const gpu = await getGpu();
    const [h, w, s, p] = [20, 27, 4, 0.4];
    const masks = await (await driseMasks(gpu, { height: h, width: w, count: 6, gridSize: s, p, seed: 3 })).read();
    for (let m = 0; m < 6; m++) expectClose(masks.subarray(m * h * w, (m + 1) * h * w), maskReference(h, w, s, p, 3, m), 1e-5, 0);
    const later = await (await driseMasks(gpu, { height: h, width: w, count: 2, first: 4, gridSize: s, p, seed: 3 })).read();
    expect([...later]).toEqual([...masks.subarray(4 * h * w)]);
    const other = await (await driseMasks(gpu, { height: h, width: w, count: 6, gridSize: s, p, seed: 4 })).read();
    expect([...other]).not.toEqual([...masks]);
  });

  it('have mean ≈ p, values in [0, 1], and uniform shifts', async () => {
    const gpu = await getGpu();
    const m = await (await driseMasks(gpu, { height: 32, width: 32, count: 400, gridSize: 8, p: 0.3, seed: 1 })).read();
    expect(m.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(m.reduce((a, b) => a + b, 0) / m.length).toBeCloseTo(0.3, 1);
    // Shifts in [0, ⌈H/s⌉) = [0, 4): each of the 16 (dy, dx) pairs about equally often over 4000 masks.
    const counts = new Array(16).fill(0);
    for (let k = 0; k < 4000; k++) {
      const [dy, dx] = maskShift(1, k, 4, 4);
      counts[dy * 4 + dx]++;
    }
    const chi2 = counts.reduce((acc, c) => acc + (c - 250) ** 2 / 250, 0);
    expect(chi2).toBeLessThan(37.7); // χ²(15) at p = 0.001
  });
});

describe('drise end to end', () => {
  // A black box whose only detection's objectness is the mean brightness of one 8×8 region.
  const region = [8, 8, 16, 16];
  const detector = async (images: Tensor): Promise<Detection[][]> => {
    const [b, , h, w] = images.shape as number[];
    const v = await images.read();
    return Array.from({ length: b! }, (_, i) => {
      let sum = 0;
      for (let y = region[1]!; y < region[3]!; y++) for (let x = region[0]!; x < region[2]!; x++) sum += v[i * h! * w! + y * w! + x]!;
      return [{ box: region as [number, number, number, number], objectness: sum / 64, scores: [1, 0] }];
    });
  };

  it('puts the saliency peak in the region the detector looks at, and reports progress and speed', async () => {
    const gpu = await getGpu();
    const image = tensor(gpu, new Float32Array(32 * 32).fill(1), [1, 1, 32, 32]);
    let progress = 0;
    const map = await drise(detector, image, {
      target: { box: region as [number, number, number, number], scores: [1, 0] },
      masks: 400,
      gridSize: 8,
      seed: 2,
      batchSize: 64,
      onProgress: (done, total) => (progress = done / total),
    });
    expect(map.shape).toEqual([1, 1, 32, 32]);
    expect(progress).toBe(1);
    expect(map.masksPerSecond).toBeGreaterThan(0);
    const s = await map.read();
    const peak = s.indexOf(Math.max(...s));
    const [py, px] = [Math.floor(peak / 32), peak % 32];
    expect(px).toBeGreaterThanOrEqual(region[0]!);
    expect(px).toBeLessThan(region[2]!);
    expect(py).toBeGreaterThanOrEqual(region[1]!);
    expect(py).toBeLessThan(region[3]!);
    // Far from the region, the saliency is lower than inside it.
    expect(s[30 * 32 + 30]!).toBeLessThan(s[peak]! * 0.9);
    map.dispose();
    image.dispose();
  });

  it('normalises by Σ M_i or by N·p', async () => {
    const gpu = await getGpu();
    const image = tensor(gpu, new Float32Array(16 * 16).fill(1), [1, 1, 16, 16]);
    // A detector that always finds the target exactly: every weight is 1, so S = Σ M_i.
    const always = async (images: Tensor): Promise<Detection[][]> => Array.from({ length: images.shape[0]! }, () => [{ box: [0, 0, 8, 8], scores: [1, 0] }]);
    const options = { target: { box: [0, 0, 8, 8] as [number, number, number, number], scores: [1, 0] }, masks: 40, gridSize: 4, seed: 6 };
    const byMasks = await (await drise(always, image, { ...options, normalize: 'masks' })).read();
    expectClose(byMasks, new Float32Array(256).fill(1), 1e-5, 1e-5);
    const raw = await (await drise(always, image, options)).read();
    const byNp = await (await drise(always, image, { ...options, p: 0.5, normalize: 'np' })).read();
    expectClose(byNp, raw.map((v) => v / (40 * 0.5)), 1e-6, 1e-5);
    await expect(drise(always, image, { ...options, p: 0, normalize: 'np' })).rejects.toThrow(/p must be > 0/);
    image.dispose();
  });

  it('leaves tensors the detector keeps between calls alone', async () => {
    const gpu = await getGpu();
    const image = tensor(gpu, new Float32Array(16 * 16).fill(1), [1, 1, 16, 16]);
    let state: Tensor | null = null; // e.g. a wrapper's lazily built constant
    const stateful = async (images: Tensor): Promise<Detection[][]> => {
      state ??= tensor(gpu, [1, 2, 3], [3]);
      await state.read(); // fails if a previous batch's scope freed it
      return Array.from({ length: images.shape[0]! }, () => []);
    };
    const map = await drise(stateful, image, { target: { box: [0, 0, 4, 4], scores: [1] }, masks: 20, batchSize: 5 });
    expect(state!.isDisposed).toBe(false);
    map.dispose();
    state!.dispose();
    image.dispose();
  });

  it('cancels cleanly and checks its input', async () => {
    const gpu = await getGpu();
    const image = tensor(gpu, new Float32Array(16 * 16).fill(1), [1, 1, 16, 16]);
    await gpu.sync();
    const before = gpu.memory();
    const controller = new AbortController();
    await expect(
      drise(detector, image, {
        target: { box: [0, 0, 4, 4], scores: [1, 0] },
        masks: 100,
        batchSize: 10,
        signal: controller.signal,
        onProgress: (done) => done >= 30 && controller.abort(),
      }),
    ).rejects.toThrow('drise: cancelled');
    await expect(drise(async () => [], image, { target: { box: [0, 0, 4, 4], scores: [1] }, masks: 5 })).rejects.toThrow(
      /returned 0 results for a batch of 5 images/,
    );
    await gpu.sync();
    expect(gpu.memory().inUse).toBe(before.inUse);
    expect(gpu.memory().tensors).toBe(before.tensors);
    image.dispose();
  });
});
