/**
 * `npm run bench:web` end to end, small: VGG16 at 32×32 in headless Chromium (SwiftShader), each
 * work run once (--reps 0: first calls only, no medians), and time to first map of fashion-vgg
 * with its pipelines compiled ahead. Our forward pass, vanilla gradient and Grad-CAM must agree with TF.js WebGPU's in
 * the same page, and our forward pass with ONNX Runtime Web's on the exported network. Its times
 * are not asserted: these machines are shared and noisy.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { FirstMap, PageRow } from '../src/bench/web-page.js';
import { haveChromium } from './chromium.js';

const run = promisify(execFile);
const bench = 'dist/bench/web.js';

interface BenchWebJson {
  browser: string;
  adapter: string;
  size: number;
  conv: string;
  direct_block: string | null;
  reps: number;
  results: PageRow[];
  agreement: { tfjs: Record<string, number> | null; ort: Record<string, number> | null };
  memory: { budget_mib: number | null; ours_peak_mib: number; tfjs_live_peak_mib: number | null; tfjs_pool_mib: number | null };
  first_map_ms: Record<string, { cold: FirstMap; warm: FirstMap; revisit: FirstMap; runs: number }>;
}

describe.runIf(existsSync(bench) && haveChromium)('npm run bench:web', () => {
  it('times the works in our library, TF.js and ONNX Runtime Web in one page, and their results agree', { timeout: 600_000 }, async () => {
    const args = [bench, '--size', '32', '--reps', '0', '--works', 'forward,vanilla,gradcam', '--first-map-models', 'fashion-vgg', '--precompile', 'on', '--json'];
    const { stdout } = await run('node', args, { maxBuffer: 16 << 20 });
    const out = JSON.parse(stdout) as BenchWebJson;
    expect(out.browser).toMatch(/Chrome/);
    expect(out.adapter).toMatch(/swiftshader/i);
    expect(out.size).toBe(32);
    // SwiftShader: the direct conv kernels with the block chosen for its compiler
    expect([out.conv, out.direct_block]).toEqual(['direct', '4x16']);
    expect(out.results.map((r) => r.work)).toEqual(['forward', 'vanilla', 'gradcam']);
    expect(out.reps).toBe(0);
    for (const r of out.results) {
      expect(r.tfjs_error).toBeUndefined();
      expect(r.ours_first_ms).toBeGreaterThan(0);
      expect(r.tfjs_first_ms).toBeGreaterThan(0);
      // No repetitions, so no medians and no ratios.
      expect([r.ours_ms, r.tfjs_ms, r.ratio]).toEqual([null, null, null]);
      // Peak memory per work: our pool holds at least the live tensors, the weights among them
      // (VGG16 at 32×32: about 130 MiB of fp32 weights).
      expect(r.ours_live_peak_mib).toBeGreaterThan(100);
      expect(r.ours_peak_mib).toBeGreaterThanOrEqual(r.ours_live_peak_mib);
      expect(r.tfjs_live_peak_mib).toBeGreaterThan(100);
      expect(r.tfjs_pool_mib).toBeGreaterThan(0);
    }
    // ONNX Runtime Web runs the forward pass only.
    const [forward, ...others] = out.results;
    expect(forward!.ort_error).toBeUndefined();
    expect(forward!.ort_first_ms).toBeGreaterThan(0);
    for (const r of others) expect(r.ort_first_ms).toBeUndefined();
    // The same network and input in each library gives the same results.
    expect(Object.keys(out.agreement.tfjs ?? {})).toEqual(['forward', 'vanilla', 'gradcam']);
    for (const v of Object.values(out.agreement.tfjs!)) expect(v).toBeLessThan(1e-4);
    expect(out.agreement.ort?.forward).toBeLessThan(1e-4);
    expect(out.memory.ours_peak_mib).toBe(Math.max(...out.results.map((r) => r.ours_peak_mib)));
    expect(out.memory.tfjs_live_peak_mib).toBe(Math.max(...out.results.map((r) => r.tfjs_live_peak_mib!)));
    expect(out.memory.budget_mib).toBeGreaterThan(0);
    // Time to first map: the first view compiles its pipelines, the second one in the page none.
    const f = out.first_map_ms['fashion-vgg']!;
    expect(f.runs).toBe(1);
    expect(f.cold.pipelines).toBeGreaterThan(3);
    expect(f.cold.compile).toBeGreaterThan(0);
    expect(f.cold.total).toBeGreaterThanOrEqual(f.cold.load + f.cold.compile + f.cold.run - 1);
    expect(f.warm).toMatchObject({ pipelines: 0, compile: 0 });
    expect(f.warm.load).toBeLessThan(5); // the model is cached in the page
    expect(f.revisit.pipelines).toBe(f.cold.pipelines);
  });
});
