/**
 * `npm run bench` end to end, small: VGG16 at 32×32, one timed repetition. It must run every work
 * in both libraries, find that they computed the same results, and report what docs/benchmarks.md's
 * tables are made of. (Its times are not asserted: these machines are shared and noisy.)
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { WorkRow } from '../src/bench/works.js';

const run = promisify(execFile);
const bench = 'dist/bench/main.js';

interface BenchJson {
  size: number;
  conv: string;
  direct_block: string | null;
  results: WorkRow[];
  smoothgrad_vs_one_batch: number | null;
  agreement: Record<string, number> | null;
  memory: { budget_mib: number | null; ours_peak_mib: number; tfjs_live_peak_mib: number | null; tfjs_pool_mib: number | null };
  profiles: Record<string, { gpu_ms: number; dispatches: number }> | null;
  drise: { masks: number; masks_per_second: number; batches: number[] } | null;
  batch: { images: number; speedup: number; batch1: { batch_size: number; images_per_second: number; gpu_seconds: number; decode_seconds: number }; auto: { batch_size: number; images_per_second: number } } | null;
  metrics: {
    images: number;
    methods: string[];
    curves: number;
    points: number;
    batched: { curves_per_second: number; forward_images: number };
    one_at_a_time: { curves_per_second: number; forward_images: number };
    ratio: number;
    agreement: number;
  } | { skipped: string } | null;
  ort: { provider: string; ours_ms: number; ort_ms: number; ratio: number; agreement: number } | null;
}

describe.runIf(existsSync(bench))('npm run bench', () => {
  it('refuses an unknown work in --works before opening the GPU', async () => {
    const err = await run('node', [bench, '--works', 'forward,smoothgrad-2batch']).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/--works takes a comma-separated list of forward, vanilla, gradcam, smoothgrad, smoothgrad-1batch, guided-backprop; got "forward,smoothgrad-2batch"/);
  });

  it('times every work in both libraries, and their results agree', { timeout: 300_000 }, async () => {
    const { stdout } = await run('node', [bench, '--size', '32', '--reps', '1', '--samples', '2', '--drise', '4', '--batch', '6', '--metrics', '1', '--no-kernels', '--budget', '1024', '--peer', 'tfjs,ort', '--json'], {
      maxBuffer: 16 << 20,
    });
    const out = JSON.parse(stdout) as BenchJson;
    expect(out.size).toBe(32);
    // lavapipe: the direct conv kernels with their 8×8 register block
    expect([out.conv, out.direct_block]).toEqual(['direct', '8x8']);
    expect(out.results.map((r) => r.work)).toEqual(['forward', 'vanilla', 'gradcam', 'smoothgrad', 'smoothgrad-1batch', 'guided-backprop']);
    for (const r of out.results) {
      expect(r.ours_ms).toBeGreaterThan(0);
      // Each work's peak: the pool holds at least the live tensors, and at least VGG16's weights at
      // 32×32 (14.7M conv + 2.1M + 16.8M + 4.1M linear parameters: 143.8 MiB).
      expect(r.ours_live_peak_mib).toBeGreaterThan(143.8);
      expect(r.ours_peak_mib).toBeGreaterThanOrEqual(r.ours_live_peak_mib);
      if (r.work.startsWith('smoothgrad')) expect(r.batching).toMatch(/^smoothGrad: 2 samples in \d+ batch(es)? of /);
      // TF.js has no guided backprop of its own, and runs SmoothGrad in one batch only; it runs everything else.
      if (r.work === 'guided-backprop' || r.work === 'smoothgrad-1batch') {
        expect(r.tfjs_ms).toBeNull();
        continue;
      }
      expect(r.tfjs_error).toBeUndefined();
      expect(r.tfjs_ms).toBeGreaterThan(0);
      expect(r.ratio).toBeCloseTo(r.tfjs_ms! / r.ours_ms!, 1);
      expect(r.tfjs_live_peak_mib).toBeGreaterThan(143.8);
      expect(r.tfjs_pool_mib).toBeGreaterThan(0);
    }
    expect(out.smoothgrad_vs_one_batch).toBeGreaterThan(0);
    // The same network and input in TF.js: forward, vanilla gradient and Grad-CAM agree closely
    // (SmoothGrad's noise differs between the libraries).
    expect(Object.keys(out.agreement ?? {})).toEqual(['forward', 'vanilla', 'gradcam']);
    for (const v of Object.values(out.agreement!)) expect(v).toBeLessThan(1e-4);
    expect(out.memory.budget_mib).toBe(1024);
    expect(out.memory.ours_peak_mib).toBe(Math.max(...out.results.map((r) => r.ours_peak_mib)));
    expect(out.drise?.masks).toBe(4);
    expect(out.drise?.batches.reduce((a, b) => a + b, 0)).toBe(4);
    expect(out.drise?.masks_per_second).toBeGreaterThan(0);
    // saliency batch at batch 1 and at the automatic size, on fashion-vgg.
    expect(out.batch?.images).toBe(6);
    expect(out.batch?.batch1.batch_size).toBe(1);
    expect(out.batch?.auto.batch_size).toBeGreaterThan(1);
    for (const r of [out.batch!.batch1, out.batch!.auto]) expect(r.images_per_second).toBeGreaterThan(0);
    expect(out.batch!.batch1.gpu_seconds).toBeGreaterThan(0);
    expect(out.batch!.batch1.decode_seconds).toBeGreaterThan(0);
    // Deletion and insertion curves of the 7 methods fashion-vgg supports, batched and one forward
    // pass per step: the same curves (skipped only where the Fashion-MNIST test set is missing).
    const m = out.metrics!;
    if (!('skipped' in m)) {
      expect(m.methods).toHaveLength(7);
      expect(m.curves).toBe(14);
      expect(m.one_at_a_time.forward_images).toBe(m.points);
      expect(m.batched.forward_images).toBeLessThanOrEqual(m.points);
      expect(m.agreement).toBeLessThan(1e-4);
      expect(m.ratio).toBeCloseTo(m.batched.curves_per_second / m.one_at_a_time.curves_per_second, 1);
    }
    // ONNX Runtime's forward on the same network exported to ONNX (WebGPU where it offers it).
    expect(['webgpu', 'cpu']).toContain(out.ort?.provider);
    expect(out.ort!.agreement).toBeLessThan(1e-4);
    expect(out.ort!.ratio).toBeCloseTo(out.ort!.ort_ms / out.ort!.ours_ms, 1);
  });
});
