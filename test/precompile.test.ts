/**
 * Gpu.precompile (all the pipelines a piece of work needs, compiled at once by a rehearsal of it)
 * and Gpu.compileStats (pipelines compiled and the wall-clock time spent on them).
 */
import { describe, expect, it } from 'vitest';
import { noGrad } from '../src/autodiff/tape.js';
import { add, fill } from '../src/kernels/elementwise.js';
import { modelFromSpec } from '../src/nets/model.js';
import { FASHION_VGG } from '../src/nets/zoo.js';
import { initGpu } from '../src/runtime/gpu.js';
import { GpuError } from '../src/runtime/errors.js';
import { tensor } from '../src/runtime/tensor.js';
import { runMethod } from '../src/saliency/methods.js';
import { randomArray } from './helpers.js';

describe('Gpu.precompile', () => {
  it('compiles what Grad-CAM needs, so that its run compiles nothing, and changes no result', async () => {
    const input = randomArray(28 * 28, 3, 0, 1);
    const settings = { target: 4, layer: 'relu4' } as const;
    const run = async (precompile: boolean) => {
      const gpu = await initGpu();
      try {
        const model = modelFromSpec(gpu, FASHION_VGG, undefined, { seed: 5 });
        const x = tensor(gpu, input, [1, 1, 28, 28]);
        const tensors = gpu.memory().tensors;
        let planned = null;
        if (precompile) {
          planned = await gpu.precompile(() => runMethod('gradCam', model, x, settings));
          // The rehearsal freed what it made.
          expect(gpu.memory().tensors).toBe(tensors);
        }
        const before = gpu.compileStats().pipelines;
        const map = await runMethod('gradCam', model, x, settings);
        const compiledByRun = gpu.compileStats().pipelines - before;
        const data = await map.read();
        map.dispose();
        x.dispose();
        model.dispose();
        expect(gpu.memory().tensors).toBe(0);
        return { data, compiledByRun, planned, total: gpu.compileStats().pipelines };
      } finally {
        gpu.destroy();
      }
    };
    const lazy = await run(false);
    const ahead = await run(true);
    expect(lazy.compiledByRun).toBeGreaterThan(3);
    expect(ahead.compiledByRun).toBe(0);
    expect(ahead.planned!.pipelines).toBe(lazy.total);
    expect(ahead.planned!.ms).toBeGreaterThan(0);
    expect(ahead.data).toEqual(lazy.data);
    expect(Math.max(...lazy.data)).toBeGreaterThan(0);
  });

  it('dispatches nothing and reads zeros while rehearsing; the next work runs normally', async () => {
    const gpu = await initGpu();
    try {
      const a = tensor(gpu, Float32Array.of(1, 2, 3), [3]);
      let seen: Float32Array | null = null;
      const p = await gpu.precompile(async () => {
        const b = await add(a, a);
        seen = await b.read();
        return b; // returned, yet freed: nothing a rehearsal makes outlives it
      });
      expect(seen).toEqual(new Float32Array(3));
      expect(p.pipelines).toBe(1);
      expect(gpu.memory().tensors).toBe(1);
      const c = await add(a, a);
      expect(await c.read()).toEqual(Float32Array.of(2, 4, 6));
      c.dispose();
      a.dispose();
    } finally {
      gpu.destroy();
    }
  });

  it('swallows the rehearsal’s error (the real run reports it), refuses nesting, and counts compile time', async () => {
    const gpu = await initGpu();
    try {
      const stats0 = gpu.compileStats();
      expect(stats0).toEqual({ pipelines: 0, ms: 0 });
      const p = await gpu.precompile(async () => {
        await fill(gpu, [4], 1);
        throw new Error('boom');
      });
      expect(p.pipelines).toBe(1);
      expect(gpu.memory().tensors).toBe(0);
      const stats = gpu.compileStats();
      expect(stats.pipelines).toBe(1);
      expect(stats.ms).toBeGreaterThan(0);
      let inner: unknown = null;
      await gpu.precompile(async () => {
        inner = await gpu.precompile(() => undefined).catch((e: unknown) => e);
      });
      expect(inner).toBeInstanceOf(GpuError);
      // A forward pass after all this is right.
      const model = modelFromSpec(gpu, FASHION_VGG, undefined, { seed: 1 });
      const x = tensor(gpu, randomArray(784, 1, 0, 1), [1, 1, 28, 28]);
      const y = await noGrad(gpu, () => model.forward(x));
      expect((await y.read()).some((v) => v !== 0)).toBe(true);
      for (const t of [x, y]) t.dispose();
      model.dispose();
    } finally {
      gpu.destroy();
    }
  });

  it('holds the device queue: work queued during the rehearsal waits for it and runs normally', async () => {
    const gpu = await initGpu();
    try {
      const a = tensor(gpu, Float32Array.of(1, 2, 3), [3]);
      let release!: () => void;
      const paused = new Promise<void>((r) => (release = r));
      let rehearsing = false;
      const order: string[] = [];
      const ahead = gpu.precompile(async () => {
        rehearsing = true;
        const b = await add(a, a);
        order.push(`rehearsal read ${Array.from(await b.read()).join(',')}`);
        await paused; // the rehearsal is still going on when the other work is queued
        rehearsing = false;
      });
      while (!rehearsing) await new Promise((r) => setTimeout(r, 1));
      const other = gpu.exclusive(async () => {
        order.push(`other job starts while rehearsing: ${rehearsing}`);
        const c = await add(a, a);
        const v = await c.read();
        c.dispose();
        return v;
      });
      await new Promise((r) => setTimeout(r, 20));
      release();
      const p = await ahead;
      expect(await other).toEqual(Float32Array.of(2, 4, 6));
      expect(order).toEqual(['rehearsal read 0,0,0', 'other job starts while rehearsing: false']);
      expect(p.pipelines).toBe(1);
      a.dispose();
      expect(gpu.memory().tensors).toBe(0);
    } finally {
      gpu.destroy();
    }
  });
});
