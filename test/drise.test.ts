import { describe, expect, it } from 'vitest';
import { drise, driseMasks, driseWeights, iou, type Detection } from '../src/saliency/drise.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { initGpu } from '../src/runtime/gpu.js';
import { type MessageLevel } from '../src/runtime/memory.js';
import { expectClose, getGpu, randomArray } from './helpers.js';
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

  it('have mean ≈ p, values in [0, 1], and uniform shifts (read off the kernel\'s own masks)', async () => {
    const gpu = await getGpu();
    const [h, w, s, p, seed, count, chunk] = [32, 32, 8, 0.3, 1, 4000, 1000];
    const c = Math.ceil(h / s); // ⌈H/s⌉ = ⌈W/s⌉ = 4: shifts in [0, 4) × [0, 4)
    const counts = new Array(c * c).fill(0);
    let sum = 0;
    let notReference = 0; // masks whose inferred shift is not the one the reference draws
    for (let first = 0; first < count; first += chunk) {
      const t = await driseMasks(gpu, { height: h, width: w, count: chunk, first, gridSize: s, p, seed });
      const m = await t.read();
      t.dispose();
      expect(m.every((v) => v >= 0 && v <= 1)).toBe(true);
      for (const v of m) sum += v;
      for (let k = 0; k < chunk; k++) {
        // The shift the kernel used: the one candidate (dy, dx) whose crop of the mask's upsampled
        // grid (the reference construction) reproduces the kernel's pixels.
        const got = m.subarray(k * h * w, (k + 1) * h * w);
        const fits: [number, number][] = [];
        for (let dy = 0; dy < c; dy++) {
          for (let dx = 0; dx < c; dx++) {
            const ref = maskReference(h, w, s, p, seed, first + k, [dy, dx]);
            if (ref.every((v, i) => Math.abs(v - got[i]!) <= 1e-5)) fits.push([dy, dx]);
          }
        }
        expect(fits, `mask ${first + k}`).toHaveLength(1); // no other crop of the same grid looks alike
        const [dy, dx] = fits[0]!;
        counts[dy * c + dx]++;
        const [ry, rx] = maskShift(seed, first + k, c, c);
        if (dy !== ry || dx !== rx) notReference++;
      }
    }
    expect(notReference).toBe(0);
    // Each of the 16 (dy, dx) pairs about equally often over 4000 masks.
    const chi2 = counts.reduce((acc, n) => acc + (n - count / (c * c)) ** 2 / (count / (c * c)), 0);
    expect(chi2).toBeLessThan(37.7); // χ²(15) at p = 0.001
    // Mean of all pixels ≈ p. Every pixel is a convex combination of the s×s cells, so a mask's
    // mean is m = Σ_c a_c g_c with a_c ≥ 0, Σ a_c = 1 and g_c ~ Bernoulli(p) independent:
    // E[m] = p and Var(m) = p(1 − p)·Σ a_c² ≤ p(1 − p)·max_c a_c. Along one axis a cell's weight
    // totals (s + 1)·⌈H/s⌉/s = 36/8 = 4.5 upsampled rows (edge clamping included), at most all of
    // them inside the 32-row crop, so a_c ≤ (4.5/32)² ≈ 0.0198 and sd(m) ≤ √(0.21 · 0.0198) ≈ 0.064.
    // Masks are independent, so the mean over 4000 has sd ≤ 0.064/√4000 ≈ 0.00102: 0.005 is ~5 sd.
    expect(Math.abs(sum / (count * h * w) - p)).toBeLessThan(0.005);
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

  it('S_t = Σ_i w_{i,t} M_i for two targets over full and partial batches, against a CPU reference', async () => {
    const gpu = await getGpu();
    const [C, H, W, s, p, seed, N, batchSize] = [2, 16, 20, 4, 0.5, 11, 40, 16]; // batches 16, 16, 8
    const data = randomArray(C * H * W, 5, 0.2, 1.2);
    const image = tensor(gpu, data, [1, C, H, W]);
    type Box = [number, number, number, number];
    const A: Box = [2, 2, 10, 9];
    const B: Box = [8, 5, 18, 14];
    // A deterministic black box: two proposals whose objectness, class vector and (for the first)
    // box width follow the mean brightness of regions A and B, so every mask gets its own weights,
    // and both proposals score against both targets (A and B overlap).
    const detect = (v: ArrayLike<number>, offset: number): Detection[] => {
      const mean = ([x1, y1, x2, y2]: Box) => {
        let sum = 0;
        for (let c = 0; c < C; c++) for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) sum += v[offset + (c * H + y) * W + x]!;
        return sum / (C * (y2 - y1) * (x2 - x1));
      };
      const [mA, mB] = [mean(A), mean(B)];
      return [
        { box: [2, 2, 8 + 4 * mB, 9], objectness: mA, scores: [1, mB] },
        { box: B, objectness: mB, scores: [0.5 * mA, 1] },
      ];
    };
    const batches: number[] = [];
    const detector = async (images: Tensor): Promise<Detection[][]> => {
      const b = images.shape[0]!;
      batches.push(b);
      const v = await images.read();
      return Array.from({ length: b }, (_, i) => detect(v, i * C * H * W));
    };
    const targets: Detection[] = [
      { box: A, scores: [1, 0] },
      { box: B, scores: [0, 1] },
    ];

    // The reference, in float64 and without the library's similarity code.
    const iouRef = (a: Box, b: Box) => {
      const inter = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])) * Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
      return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
    };
    const cosRef = (a: number[], b: number[]) => {
      const dot = a.reduce((acc, v, i) => acc + v * b[i]!, 0);
      return dot / Math.hypot(...a) / Math.hypot(...b);
    };
    const S = targets.map(() => new Float64Array(H * W));
    const coverage = new Float64Array(H * W);
    const weights: number[][] = [];
    for (let i = 0; i < N; i++) {
      const M = maskReference(H, W, s, p, seed, i);
      const masked = Float64Array.from(data, (v, k) => v * M[k % (H * W)]!); // x ⊙ M_i, every channel
      const proposals = detect(masked, 0);
      const w = targets.map((t) => Math.max(0, ...proposals.map((d) => iouRef(t.box, d.box) * cosRef(t.scores, d.scores) * d.objectness!)));
      weights.push(w);
      for (let k = 0; k < H * W; k++) {
        S.forEach((St, t) => (St[k]! += w[t]! * M[k]!));
        coverage[k]! += M[k]!;
      }
    }
    // The weights really differ between masks and between the two targets.
    const col = (t: number) => weights.map((w) => w[t]!);
    for (const t of [0, 1]) expect(Math.max(...col(t)) - Math.min(...col(t))).toBeGreaterThan(0.05);
    expect(Math.max(...weights.map(([w0, w1]) => Math.abs(w0! - w1!)))).toBeGreaterThan(0.1);

    const expected = {
      none: S,
      masks: S.map((St) => St.map((v, k) => v / Math.max(coverage[k]!, 1e-6))),
      np: S.map((St) => St.map((v) => v / (N * p))),
    };
    for (const normalize of ['none', 'masks', 'np'] as const) {
      batches.length = 0;
      const map = await drise(detector, image, { target: targets, masks: N, gridSize: s, p, seed, batchSize, normalize });
      // The first call with this detector (and normalisation) measures one mask's memory on a
      // detector call of its own; 'np' finds what 'none' measured. The batches are as asked.
      expect(batches).toEqual(normalize === 'np' ? [16, 16, 8] : [1, 16, 16, 8]);
      expect(map.batches).toEqual([16, 16, 8]);
      expect(map.shape).toEqual([2, 1, H, W]);
      const ours = await map.read();
      map.dispose();
      const want = new Float64Array(2 * H * W);
      expected[normalize].forEach((St, t) => want.set(St, t * H * W));
      const scale = Math.max(...want.map(Math.abs));
      expectClose(ours, want, 1e-5 * scale, 1e-5);
    }
    image.dispose();
  });

  it("batchSize 'auto', and an explicit batch split to fit a 256 KiB budget, give the map of one batch within 1e-6", async () => {
    const messages: { message: string; level: MessageLevel }[] = [];
    const gpu = await initGpu({ memoryBudget: Infinity, log: (message, level) => messages.push({ message, level }) });
    try {
      const image = tensor(gpu, randomArray(32 * 32, 9, 0.2, 1), [1, 1, 32, 32]);
      const options = { target: { box: region as [number, number, number, number], scores: [1, 0] }, masks: 96, gridSize: 8, seed: 3 };
      const run = async (batchSize: number | 'auto') => {
        const map = await drise(detector, image, { ...options, batchSize });
        const values = await map.read();
        map.dispose();
        return { values, batches: map.batches };
      };
      // One batch of 96; the first call measured a mask's memory first, which changes nothing.
      const one = await run(96);
      expect(one.batches).toEqual([96]);
      expect(await run(96)).toEqual(one);

      const budget = 256 * 1024;
      gpu.setMemoryBudget(budget);
      gpu.trim();
      gpu.resetPeak();
      messages.length = 0;
      const auto = await run('auto');
      expect(auto.batches.length).toBeGreaterThan(2);
      expect(auto.batches.reduce((a, b) => a + b, 0)).toBe(96);
      const split = await run(96);
      expect(gpu.memory().peakBytes).toBeLessThanOrEqual(budget);
      const warnings = messages.filter((m) => m.level === 'warning').map((m) => m.message);
      expect(warnings).toHaveLength(1);
      const most = Number(/^drise: a batch of 96 masks needs about .*, more than the memory budget leaves \(256 KiB, of which .* in use\); running batches of at most (\d+) instead$/.exec(warnings[0]!)?.[1]);
      expect(most).toBeGreaterThan(1);
      expect(Math.max(...split.batches)).toBeLessThanOrEqual(most);
      const scale = Math.max(...one.values.map(Math.abs));
      expectClose(auto.values, one.values, 1e-6 * scale, 0);
      expectClose(split.values, one.values, 1e-6 * scale, 0);
      image.dispose();
    } finally {
      gpu.destroy();
    }
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
    await expect(drise(async () => [], image, { target: { box: [0, 0, 4, 4], scores: [1] }, masks: 5, batchSize: 'auto' })).rejects.toThrow(
      'drise: the detector returned 0 results for a batch of 1 image; it must return one list of detections per image', // the measurement's call, with mask 0
    );
    await gpu.sync();
    expect(gpu.memory().inUse).toBe(before.inUse);
    expect(gpu.memory().tensors).toBe(before.tensors);
    image.dispose();
  });
});
