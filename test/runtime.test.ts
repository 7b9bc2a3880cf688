import { describe, expect, it } from 'vitest';
import { Uniforms, initGpu, preprocess, registerShader, unroll } from '../src/runtime/gpu.js';
import { ArgumentError, GpuError, NoGpuError, ShapeError, DisposedError } from '../src/runtime/errors.js';
import { empty, tensor, type Tensor } from '../src/runtime/tensor.js';
import { sizeClass } from '../src/runtime/pool.js';
import { add, fill, scale } from '../src/kernels/elementwise.js';
import { getGpu } from './helpers.js';

describe('initGpu', () => {
  it('reports the adapter and requests its limits rather than the defaults', async () => {
    const gpu = await getGpu();
    expect(gpu.adapter.name.length).toBeGreaterThan(0);
    // lavapipe offers 128 MiB bindings and 32 KiB of workgroup memory; the spec default is 16 KiB.
    expect(gpu.limits.maxComputeWorkgroupStorageSize).toBe(gpu.adapter.maxComputeWorkgroupStorageSize);
    expect(gpu.limits.maxStorageBufferBindingSize).toBe(gpu.adapter.maxStorageBufferBindingSize);
  });

  it('says what to install when there is no adapter', async () => {
    const g = globalThis as { navigator?: unknown };
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    Object.defineProperty(globalThis, 'navigator', {
      value: { gpu: { requestAdapter: async () => null } },
      configurable: true,
      writable: true,
    });
    try {
      await expect(initGpu()).rejects.toThrow(NoGpuError);
      await expect(initGpu()).rejects.toThrow(/lavapipe.*bookworm-backports/s);
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else delete g.navigator;
    }
  });

  it('refuses an unknown power preference before asking for an adapter', async () => {
    await expect(initGpu({ powerPreference: 'fast' as GPUPowerPreference })).rejects.toThrow(
      `initGpu: powerPreference must be 'high-performance' or 'low-power', got "fast"`,
    );
  });
});

describe('preprocess', () => {
  it('substitutes values and resolves #if blocks', () => {
    const src = 'a ${X} b\n#if ${F}\nyes\n#else\nno\n#endif\n';
    expect(preprocess(src, { X: 7, F: true })).toContain('a 7 b');
    expect(preprocess(src, { X: 7, F: true })).toContain('yes');
    expect(preprocess(src, { X: 7, F: false })).not.toContain('yes');
    expect(() => preprocess(src, { F: true }, 'demo')).toThrow(/'demo' needs a value for \$\{X\}/);
  });

  it('writes out #unroll blocks, nested, with the count from a value', () => {
    const src = 'start\n#unroll r ${RM}\n  let x_#{r} = X[#{r}u];\n#unroll j 2\n  acc_#{r}_#{j} += x_#{r} * w_#{j};\n#endunroll\n#endunroll\nend';
    expect(preprocess(src, { RM: 2 }).split('\n')).toEqual([
      'start',
      '  let x_0 = X[0u];',
      '  acc_0_0 += x_0 * w_0;',
      '  acc_0_1 += x_0 * w_1;',
      '  let x_1 = X[1u];',
      '  acc_1_0 += x_1 * w_0;',
      '  acc_1_1 += x_1 * w_1;',
      'end',
    ]);
    expect(unroll('a\n#unroll i 0\nnever\n#endunroll\nb')).toBe('a\nb');
    // #if is resolved first, so a block may hold a condition and a condition a block
    const lines = (src: string, B: boolean) => preprocess(src, { B }).split('\n').filter((l) => l.trim() !== '');
    expect(lines('#unroll i 2\n#if ${B}\nv_#{i}\n#endif\n#endunroll', true)).toEqual(['v_0', 'v_1']);
    expect(lines('#if ${B}\n#unroll i 2\nv_#{i}\n#endunroll\n#endif\nw', false)).toEqual(['w']);
  });

  it('refuses unbalanced or malformed #unroll blocks, naming the shader', () => {
    expect(() => unroll('#unroll i 2\nx', 'demo')).toThrow(/'demo': #unroll has no #endunroll/);
    expect(() => unroll('x\n#endunroll', 'demo')).toThrow(/'demo': #endunroll without #unroll \(line 2\)/);
    expect(() => unroll('#unroll i\nx\n#endunroll', 'demo')).toThrow(/malformed '#unroll i' \(line 1\)/);
    expect(() => unroll('#unroll i 2\nx_#{j}\n#endunroll', 'demo')).toThrow(/#\{j\} outside an #unroll j block/);
    for (const bad of ['#unroll i 2\nx', 'x\n#endunroll']) expect(() => unroll(bad)).toThrow(ArgumentError);
  });
});

describe('pipelines and dispatch', () => {
  it('caches pipelines by key: a new size does not compile again', async () => {
    const gpu = await getGpu();
    const a = await fill(gpu, [10], 1);
    const before = gpu.pipelineCount;
    const b = await fill(gpu, [1000, 3], 2);
    expect(gpu.pipelineCount).toBe(before);
    const k1 = gpu.kernel('fill');
    const k2 = gpu.kernel('fill');
    expect(await k1).toBe(await k2);
    a.dispose();
    b.dispose();
  });

  it('records dispatches in batches of 16, submits the rest when read, and keeps their order', async () => {
    const gpu = await getGpu();
    await gpu.sync();
    const queue = gpu.device.queue;
    const submit = queue.submit.bind(queue);
    let submits = 0;
    queue.submit = (buffers) => {
      submits++;
      submit(buffers);
    };
    try {
      let t = await fill(gpu, [64], 0);
      for (let i = 0; i < 100; i++) {
        const u = await scale(t, 1, 1);
        t.dispose();
        t = u;
      }
      expect(submits).toBe(6); // 101 dispatches: after the 16th, 32nd, … 96th
      expect(gpu.hasPendingWork).toBe(true);
      const v = await t.read();
      expect(gpu.hasPendingWork).toBe(false);
      expect(v[0]).toBe(100);
      expect(v[63]).toBe(100);
      t.dispose();
    } finally {
      queue.submit = submit;
    }
  });

  it('reuses bind groups when a run is repeated, and forgets them when trim() destroys buffers', async () => {
    const gpu = await getGpu();
    await gpu.sync();
    const device = gpu.device;
    const create = device.createBindGroup.bind(device);
    let created = 0;
    device.createBindGroup = (d) => {
      created++;
      return create(d);
    };
    const run = async () => {
      const a = await fill(gpu, [300], 1);
      const b = await scale(a, 3, 1);
      const c = await add(a, b);
      const v = await c.read();
      for (const t of [a, b, c]) t.dispose();
      return v[299];
    };
    try {
      // The pool hands freed buffers back last-in first-out, so runs alternate between two
      // assignments of buffers; after both, the same kernels, uniform slots and buffers recur.
      expect(await run()).toBe(5);
      expect(await run()).toBe(5);
      const warm = created;
      expect(warm).toBeGreaterThan(0);
      for (let i = 0; i < 3; i++) expect(await run()).toBe(5);
      expect(created).toBe(warm);
      gpu.trim();
      expect(await run()).toBe(5); // new buffers, new bind groups
      expect(created).toBeGreaterThan(warm);
    } finally {
      device.createBindGroup = create;
    }
  });

  it('profile times each dispatch with GPU timestamps', async () => {
    const gpu = await getGpu();
    expect(gpu.canProfile).toBe(true); // lavapipe has 'timestamp-query'
    const before = gpu.memory().inUse;
    const p = await gpu.profile(async () => {
      const a = await fill(gpu, [1 << 16], 1);
      const b = await scale(a, 2, 1);
      const c = await add(a, b);
      a.dispose();
      b.dispose();
      return c;
    });
    expect(p.kernels.map((k) => k.name)).toEqual(['fill', 'elementwise_unary', 'elementwise_binary']);
    for (const k of p.kernels) expect(k.ms).toBeGreaterThan(0);
    expect(p.kernels.map((k) => k.workgroups[0])).toEqual([256, 256, 256]); // 65,536 elements, 256 a workgroup
    expect([...(await p.result.read()).slice(0, 2)]).toEqual([4, 4]);
    p.result.dispose();
    // Not nested; a function that throws ends the profile, and the next one works.
    await expect(gpu.profile(() => gpu.profile(() => 1))).rejects.toThrow(/already profiling/);
    await expect(gpu.profile(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect((await gpu.profile(() => 7)).result).toBe(7);
    expect(gpu.memory().inUse).toBe(before);
  });

  it('names the kernel in a WGSL compile error', async () => {
    const gpu = await getGpu();
    registerShader('test_broken', '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_thing; }');
    await expect(gpu.kernel('test_broken')).rejects.toThrow(GpuError);
    await expect(gpu.kernel('test_broken')).rejects.toThrow(/'test_broken'.*failed to compile/s);
  });

  it('surfaces a GPU validation error with the kernel name instead of swallowing it', async () => {
    const gpu = await getGpu();
    const k = await gpu.kernel('fill');
    // A buffer without STORAGE usage cannot be bound as storage: invalid on purpose.
    const bad = gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    gpu.dispatch(k, { uniforms: new Uniforms().u32(4).f32(1), buffers: [bad], workgroups: [1] });
    await expect(gpu.sync()).rejects.toThrow(/GPU error in kernel 'fill'/);
    await gpu.sync(); // the error was reported once; the device still works
    // In a batch of several kernels the message lists them and says how to find the exact one.
    const ok = await fill(gpu, [4], 1);
    const other = await scale(ok, 2);
    gpu.dispatch(k, { uniforms: new Uniforms().u32(4).f32(1), buffers: [bad], workgroups: [1] });
    await expect(gpu.sync()).rejects.toThrow(/a batch of kernels \(fill, elementwise_unary.*debug: true/);
    ok.dispose();
    other.dispose();
    bad.destroy();
    const t = await fill(gpu, [4], 3);
    expect([...(await t.read())]).toEqual([3, 3, 3, 3]);
    t.dispose();
  });

  it('rejects dispatches beyond the per-dimension workgroup limit', async () => {
    const gpu = await getGpu();
    const k = await gpu.kernel('fill');
    const t = empty(gpu, [4]);
    expect(() => gpu.dispatch(k, { uniforms: new Uniforms().u32(4).f32(0), buffers: [t], workgroups: [70000] })).toThrow(/fill.*exceeds/);
    t.dispose();
  });

  it('packs uniforms with 16-byte aligned vec4 fields', () => {
    const u = new Uniforms().u32(1).vec4u([2, 3]).f32(0.5);
    const b = u.bytes();
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    expect(view.getUint32(0, true)).toBe(1);
    expect(view.getUint32(16, true)).toBe(2);
    expect(view.getUint32(20, true)).toBe(3);
    expect(view.getFloat32(32, true)).toBe(0.5);
    expect(b.byteLength).toBe(48);
  });
});

describe('tensors, pool and scopes', () => {
  it('round-trips data and checks shapes', async () => {
    const gpu = await getGpu();
    const t = tensor(gpu, [1, 2, 3, 4, 5, 6], [2, 3]);
    expect([...(await t.read())]).toEqual([1, 2, 3, 4, 5, 6]);
    const v = t.reshape([3, -1]);
    expect(v.shape).toEqual([3, 2]);
    t.dispose();
    expect([...(await v.read())]).toEqual([1, 2, 3, 4, 5, 6]); // the view keeps the storage alive
    v.dispose();
    expect(() => tensor(gpu, [1, 2, 3], [2, 2])).toThrow(ShapeError);
    expect(() => tensor(gpu, [1, 2, 3], [3, 0])).toThrow(/positive integers/);
    expect(() => tensor(gpu, [1], [NaN])).toThrow('invalid shape [NaN]: dimensions must be positive integers');
    expect(() => empty(gpu, [1024, 1024, 1024])).toThrow(/largest storage binding/);
    const i = tensor(gpu, [1, -2, 3], [3], 'int32');
    expect([...(await i.readInt32())]).toEqual([1, -2, 3]);
    i.dispose();
  });

  it('throws a clear error when a disposed tensor is used', async () => {
    const gpu = await getGpu();
    const t = tensor(gpu, [1, 2], [2]);
    t.dispose();
    t.dispose(); // twice is harmless
    const before = gpu.memory();
    await expect(scale(t, 2)).rejects.toThrow(DisposedError);
    await expect(scale(t, 2)).rejects.toThrow(/scale: x \(Tensor#\d+ \[2\]\) was used after it was disposed/);
    expect(gpu.memory().inUse).toBe(before.inUse); // the output was never allocated
    expect(gpu.memory().tensors).toBe(before.tensors);
  });

  it('a buffer freed while recorded work still reads it is not overwritten by an upload', async () => {
    const gpu = await getGpu();
    await gpu.sync();
    const x = tensor(gpu, [1, 2, 3, 4], [4]);
    const y = await scale(x, 10); // recorded, not submitted
    expect(gpu.hasPendingWork).toBe(true);
    x.dispose(); // x's buffer goes back to the pool while the scale still has to read it
    const z = tensor(gpu, [7, 7, 7, 7], [4]); // same size class: reuses x's buffer
    expect([...(await y.read())]).toEqual([10, 20, 30, 40]);
    expect([...(await z.read())]).toEqual([7, 7, 7, 7]);
    y.dispose();
    z.dispose();
  });

  it('an upload into a fresh buffer does not split the batch', async () => {
    const gpu = await getGpu();
    await gpu.sync();
    const a = await fill(gpu, [1000], 1);
    expect(gpu.hasPendingWork).toBe(true);
    const b = tensor(gpu, new Float32Array(1000).fill(2), [1000]);
    expect(gpu.hasPendingWork).toBe(true); // still one batch
    const c = await add(a, b);
    expect((await c.read())[999]).toBe(3);
    for (const t of [a, b, c]) t.dispose();
  });

  it('trim() submits recorded work before destroying free buffers', async () => {
    const gpu = await getGpu();
    const x = tensor(gpu, [1, 2], [2]);
    const y = await scale(x, 2);
    x.dispose();
    gpu.trim();
    expect([...(await y.read())]).toEqual([2, 4]);
    y.dispose();
  });

  it('a holder keeps a tensor alive after its creator (or a scope) disposes it', async () => {
    const gpu = await getGpu();
    const start = gpu.memory().tensors;
    let held!: Tensor;
    await gpu.scope(async () => {
      held = tensor(gpu, [5, 6], [2]);
      held.retain(); // e.g. a hook
      held.dispose(); // the creator lets go...
      held.dispose(); // ...once, however often it says so; the scope's dispose at its end, too
    });
    expect(held.isDisposed).toBe(false); // the scope's dispose did not take the holder's reference
    expect([...(await held.read())]).toEqual([5, 6]);
    held.release();
    expect(held.isDisposed).toBe(true);
    expect(gpu.memory().tensors).toBe(start);
  });

  it('reuses pooled buffers of the same size class', async () => {
    const gpu = await getGpu();
    expect(sizeClass(1000)).toBe(1024);
    expect(sizeClass(1100)).toBe(1280);
    expect(sizeClass(5)).toBe(256);
    const a = empty(gpu, [300]);
    a.dispose();
    const before = gpu.memory().buffers;
    const b = empty(gpu, [290]); // same size class (1280 bytes)
    expect(gpu.memory().buffers).toBe(before);
    b.dispose();
  });

  it('scope frees what it created and keeps what it returns', async () => {
    const gpu = await getGpu();
    const start = gpu.memory();
    const kept = await gpu.scope(async () => {
      const a = await fill(gpu, [8], 1);
      const b = await scale(a, 2);
      await scale(b, 3);
      return { b };
    });
    expect(gpu.memory().tensors).toBe(start.tensors + 1);
    expect(kept.b.isDisposed).toBe(false);
    kept.b.dispose();
    expect(gpu.memory().tensors).toBe(start.tensors);
    expect(gpu.memory().inUse).toBe(start.inUse);
    await expect(
      gpu.scope(async () => {
        await fill(gpu, [8], 1);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(gpu.memory().inUse).toBe(start.inUse);
  });
});

describe('device loss', () => {
  it('turns a lost device into a clear error on the next operation', async () => {
    const gpu = await initGpu();
    gpu.device.destroy();
    await gpu.device.lost;
    await new Promise((r) => setTimeout(r, 0));
    await expect(fill(gpu, [4], 1)).rejects.toThrow(/GPU device was lost/);
    gpu.destroy();
  });
});
