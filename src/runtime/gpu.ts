/**
 * The WebGPU runtime: adapter and device set-up, a pipeline cache, batched dispatch, a buffer pool,
 * read-back, error reporting and tensor scopes.
 *
 * Work is recorded, not run: every `dispatch` goes into one command encoder (one compute pass),
 * with its uniforms packed into one shared uniform buffer and its bind group reused when the same
 * pipeline, slot and buffers come again. The batch is submitted when something needs its result
 * (`read`), when a buffer must be written from the CPU, and every SUBMIT_EVERY dispatches, so that
 * the GPU works while the CPU records the rest. This is what keeps WebGPU fast: one submit per
 * batch, not per kernel.
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { SHADERS } from '../kernels/shaders.generated.js';
import { ArgumentError, GpuError, NoGpuError } from './errors.js';
import { checkMemoryBudget, defaultMemoryBudget, memoryEnvironment, type MessageLevel } from './memory.js';
import { BufferPool, type PoolStats } from './pool.js';
import { DeviceQueue, hasAsyncContext, loadAsyncContext } from './queue.js';

/** What `initGpu` got. */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A short name for logs, e.g. "llvmpipe (lavapipe)" or "nvidia-h100". */
  name: string;
  /** True when the adapter is a CPU (software) implementation such as lavapipe or SwiftShader. */
  isSoftware: boolean;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
}

export interface InitGpuOptions {
  /** Use this adapter instead of requesting one. */
  adapter?: GPUAdapter;
  powerPreference?: GPUPowerPreference;
  /**
   * Submit after every dispatch and check its errors, so that a GPU error names exactly the
   * kernel that caused it. Slow; for debugging.
   */
  debug?: boolean;
  /**
   * Receives the library's messages, one line each: the adapter once it is ready ('info'), the
   * batches a batching method ran ('info'), and a batch size given by the caller that had to be
   * split to fit the memory budget ('warning'). Without it the messages are dropped.
   */
  log?: (message: string, level: MessageLevel) => void;
  /**
   * GPU memory budget in bytes (Infinity: none). The buffer pool frees unused buffers to stay
   * within it, and SmoothGrad and D-RISE choose batch sizes that fit it. Default: 2 GiB in Node,
   * 1 GiB in a browser, at most a quarter of the machine's memory where the adapter uses that
   * memory (a software adapter, or any adapter in a browser), and at least 256 MiB. WebGPU does
   * not tell how much memory a GPU has: set it to use more of a large GPU.
   */
  memoryBudget?: number;
}

/** Anything a scope can free. Tensors implement it. */
export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

/**
 * Objects that own tensors (gradients, hooks, results) implement this method, so that a
 * `gpu.scope` returning them keeps their tensors alive.
 */
export const HOLDS_TENSORS: unique symbol = Symbol.for('webgpu-saliency.holdsTensors');

/** A compiled compute pipeline and the name used in error messages. */
export interface Kernel {
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

/** Values substituted for `${NAME}` in a shader; booleans drive `#if ${NAME}` blocks. */
export type ShaderDefines = Record<string, string | number | boolean>;

/** A buffer bound to a kernel: a raw GPUBuffer or anything holding one (a Tensor). */
export type Bindable = GPUBuffer | { readonly buffer: GPUBuffer };

export interface DispatchArgs {
  /** Bound at @binding(0) as a uniform buffer; build it with `new Uniforms()`. */
  uniforms?: Uniforms;
  /** Bound in order at @binding(1), @binding(2), … as storage buffers. */
  buffers: readonly Bindable[];
  /** Workgroup counts; each must be ≤ the device's maxComputeWorkgroupsPerDimension. */
  workgroups: readonly [number, number?, number?];
}

/** What `kernel` gives while `precompile` rehearses: never dispatched. */
const PLANNED_KERNEL: Kernel = Object.freeze({
  name: 'precompile',
  get pipeline(): GPUComputePipeline {
    throw new GpuError('precompile: a rehearsal kernel was used outside the rehearsal');
  },
  get layout(): GPUBindGroupLayout {
    throw new GpuError('precompile: a rehearsal kernel was used outside the rehearsal');
  },
});

const UNIFORM_SLOT = 256; // ≥ minUniformBufferOffsetAlignment on every adapter
const UNIFORM_SLOTS = 512;
const MAX_DISPATCHES_PER_BATCH = 512;
/**
 * Dispatches recorded before the batch is submitted anyway, so that the GPU starts on the first
 * layers while the CPU records the rest (recording costs tens of µs per dispatch, which would
 * otherwise come on top of the GPU's time; measured on an H200).
 */
const SUBMIT_EVERY = 16;
/**
 * Bind groups kept for reuse (then the cache starts over). Creating one is about half of a
 * dispatch's CPU cost; a model run again gets the same pooled buffers in the same order, so its
 * dispatches find theirs.
 */
const BIND_GROUP_CACHE = 4096;

/**
 * Packs a kernel's parameters in the layout of a WGSL struct made of 4-byte scalars and
 * `vec4<u32|i32|f32>` fields (each vec4 must start at a multiple of 16 bytes).
 */
export class Uniforms {
  private readonly data = new ArrayBuffer(UNIFORM_SLOT);
  private readonly view = new DataView(this.data);
  private offset = 0;

  u32(...values: number[]): this {
    for (const v of values) this.put(4).setUint32(this.offset - 4, v, true);
    return this;
  }
  i32(...values: number[]): this {
    for (const v of values) this.put(4).setInt32(this.offset - 4, v, true);
    return this;
  }
  f32(...values: number[]): this {
    for (const v of values) this.put(4).setFloat32(this.offset - 4, v, true);
    return this;
  }
  /** A vec4<u32>; pads with zeros to 4 values and aligns to 16 bytes. */
  vec4u(values: readonly number[]): this {
    this.alignTo(16);
    for (let i = 0; i < 4; i++) this.u32(values[i] ?? 0);
    return this;
  }
  vec4i(values: readonly number[]): this {
    this.alignTo(16);
    for (let i = 0; i < 4; i++) this.i32(values[i] ?? 0);
    return this;
  }
  get byteLength(): number {
    return Math.max(16, Math.ceil(this.offset / 16) * 16);
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.data, 0, this.byteLength);
  }
  private alignTo(n: number): void {
    while (this.offset % n !== 0) this.u32(0);
  }
  private put(n: number): DataView {
    if (this.offset + n > UNIFORM_SLOT) throw new ArgumentError(`kernel parameters exceed ${UNIFORM_SLOT} bytes`);
    this.offset += n;
    return this.view;
  }
}

/**
 * Expands `${NAME}` placeholders from `defines`, resolves `#if` blocks with wgsl-preprocessor, then
 * unrolls `#unroll NAME COUNT` … `#endunroll` blocks (see unroll).
 */
export function preprocess(source: string, defines: ShaderDefines, shaderName = 'shader'): string {
  const strings: string[] = [];
  const values: unknown[] = [];
  let last = 0;
  for (const m of source.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    const name = m[1]!;
    if (!(name in defines)) {
      throw new ArgumentError(`shader '${shaderName}' needs a value for \${${name}}`);
    }
    strings.push(source.slice(last, m.index));
    values.push(defines[name]);
    last = m.index! + m[0].length;
  }
  strings.push(source.slice(last));
  const raw = Object.assign([...strings], { raw: strings }) as unknown as TemplateStringsArray;
  return unroll(wgsl(raw, ...values), shaderName);
}

const UNROLL = /^[ \t]*#unroll[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]+(\d+)[ \t]*$/;
const END_UNROLL = /^[ \t]*#endunroll[ \t]*$/;

/**
 * Writes out loops whose trip count is a compile-time constant. A block
 *
 *     #unroll r 4
 *       acc_#{r} = fma(x_#{r}, w, acc_#{r});
 *     #endunroll
 *
 * becomes its body 4 times, with `#{r}` replaced by 0, 1, 2, 3 (blocks nest). Shaders use it for
 * register blocks: an array in a `var` indexed by a loop counter lives in memory on compilers that
 * do not unroll (SwiftShader's Subzero reads and writes it lane by lane), while one named variable
 * per element stays in a register everywhere.
 */
export function unroll(source: string, shaderName = 'shader'): string {
  const lines = source.split('\n');
  let i = 0;
  const block = (depth: number): string[] => {
    const out: string[] = [];
    while (i < lines.length) {
      const line = lines[i++]!;
      if (END_UNROLL.test(line)) {
        if (depth === 0) throw new ArgumentError(`shader '${shaderName}': #endunroll without #unroll (line ${i})`);
        return out;
      }
      const m = UNROLL.exec(line);
      if (m === null) {
        if (/^[ \t]*#(end)?unroll\b/.test(line)) throw new ArgumentError(`shader '${shaderName}': malformed '${line.trim()}' (line ${i}); write #unroll NAME COUNT`);
        out.push(line);
        continue;
      }
      const body = block(depth + 1);
      const token = `#{${m[1]}}`;
      for (let k = 0; k < Number(m[2]); k++) out.push(...body.map((l) => l.replaceAll(token, String(k))));
    }
    if (depth > 0) throw new ArgumentError(`shader '${shaderName}': #unroll has no #endunroll`);
    return out;
  };
  if (!source.includes('#unroll') && !source.includes('#endunroll')) return source;
  const out = block(0).join('\n');
  const left = /#\{([A-Za-z_][A-Za-z0-9_]*)\}/.exec(out);
  if (left !== null) throw new ArgumentError(`shader '${shaderName}': ${left[0]} outside an #unroll ${left[1]} block`);
  return out;
}

const extraShaders = new Map<string, string>();

/**
 * Adds a WGSL shader under `name`, for kernels defined outside shaders/ (extensions, tests).
 * The name must not clash with a built-in shader.
 */
export function registerShader(name: string, source: string): void {
  if (SHADERS[name] !== undefined) throw new ArgumentError(`a built-in shader is already named '${name}'`);
  extraShaders.set(name, source);
}

let nodeGpu: GPU | undefined;

async function getNavigatorGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!isNode) {
    throw new NoGpuError(
      'WebGPU is not available in this browser (navigator.gpu is missing). Use a browser with WebGPU ' +
        'enabled (Chrome/Edge 113+, or Firefox/Safari with WebGPU turned on), served over https or localhost.',
    );
  }
  if (!nodeGpu) {
    // Hidden from bundlers: the browser path never loads Dawn.
    const moduleName = 'webgpu';
    let mod: { create: (flags: string[]) => GPU; globals: object };
    try {
      mod = await import(/* @vite-ignore */ moduleName);
    } catch (e) {
      throw new NoGpuError(`could not load the 'webgpu' package (Dawn for Node): ${(e as Error).message}. Run 'npm ci'.`);
    }
    Object.assign(globalThis, mod.globals);
    // Browsers round GPU timestamps to 65.5 µs (a privacy measure); in Node `Gpu.profile` wants them exact.
    nodeGpu = mod.create(['disable-dawn-features=timestamp_quantization']);
  }
  return nodeGpu;
}

const NO_ADAPTER_HELP =
  'no WebGPU adapter found. On a machine without a GPU, install a software Vulkan driver: ' +
  "Mesa lavapipe from bookworm-backports ('bash scripts/setup-system.sh' does it; Debian 12's own Mesa 22.3 " +
  'is too old for Dawn), and if several drivers are installed, choose it with ' +
  'VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json. With a GPU, install its Vulkan driver.';

/** Opens the GPU: `navigator.gpu` in a browser, the `webgpu` package (Dawn) in Node. */
export async function initGpu(options: InitGpuOptions = {}): Promise<Gpu> {
  let adapter = options.adapter ?? null;
  const { powerPreference } = options;
  if (powerPreference !== undefined && powerPreference !== 'high-performance' && powerPreference !== 'low-power') {
    throw new ArgumentError(`initGpu: powerPreference must be 'high-performance' or 'low-power', got ${JSON.stringify(powerPreference)}`);
  }
  if (options.memoryBudget !== undefined) checkMemoryBudget('initGpu', options.memoryBudget);
  if (!adapter) {
    const gpu = await getNavigatorGpu();
    adapter = await gpu.requestAdapter({ powerPreference: powerPreference ?? 'high-performance' });
  }
  if (!adapter) throw new NoGpuError(NO_ADAPTER_HELP);
  await loadAsyncContext(); // lets the device queue tell nested calls from concurrent ones (Node)

  // Ask for what the adapter can do, not the spec's defaults (128 MiB bindings, 16 KiB shared memory).
  const requiredLimits: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, unknown>;
  for (const key in limits) {
    const v = limits[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'webgpu-saliency' });
  } catch (e) {
    throw new NoGpuError(`the WebGPU adapter refused to create a device: ${(e as Error).message}`);
  }
  const report = describeAdapter(adapter);
  const budget = options.memoryBudget ?? defaultMemoryBudget(report, await memoryEnvironment());
  const gpu = new Gpu(device, report, options.debug ?? false, { memoryBudget: budget, log: options.log });
  gpu.log(`webgpu-saliency: using ${gpu.adapter.name}`);
  return gpu;
}

function describeAdapter(adapter: GPUAdapter): AdapterReport {
  const info = (adapter as { info?: GPUAdapterInfo }).info;
  const vendor = info?.vendor ?? '';
  const architecture = info?.architecture ?? '';
  const device = info?.device ?? '';
  const description = info?.description ?? '';
  const text = `${vendor} ${architecture} ${device} ${description}`.toLowerCase();
  const isSoftware = /llvmpipe|lavapipe|swiftshader|software|cpu/.test(text) || (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const name = (description || [vendor, architecture, device].filter(Boolean).join(' ') || 'unknown adapter').trim();
  return {
    vendor,
    architecture,
    device,
    description,
    name,
    isSoftware,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
    maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
  };
}

/** GPU time of one dispatch, measured by `Gpu.profile`. */
export interface KernelTime {
  /** The kernel's name (shader, and entry point where it is not `main`). */
  name: string;
  workgroups: [number, number, number];
  /** Milliseconds between the start and the end of the dispatch on the GPU. */
  ms: number;
}

/** What `Gpu.profile` returns: the function's result and the GPU time of each dispatch it made. */
export interface Profile<T> {
  result: T;
  /** In dispatch order. */
  kernels: KernelTime[];
  /** The sum of `kernels[].ms`. */
  gpuMs: number;
}

interface ProfileState {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  /** Name and workgroups of each dispatch of the batch being recorded. */
  batch: { name: string; workgroups: [number, number, number] }[];
  /** Submitted batches whose timestamps are being copied back. */
  pending: { dispatches: { name: string; workgroups: [number, number, number] }[]; readback: GPUBuffer }[];
}

interface PendingScope {
  kernels: string[];
  errors: Promise<(GPUError | null)[]>;
}

/** One WebGPU device with its caches. Create it with `initGpu()`. */
export class Gpu {
  readonly pool: BufferPool;
  readonly limits: GPUSupportedLimits;
  /** Tensors created and not yet disposed; tests use it to find leaks. */
  liveTensors = 0;

  private readonly kernels = new Map<string, Promise<Kernel>>();
  /** Compilations in flight, since when, finished ones, and their wall-clock total (compileStats). */
  private readonly compiling = { count: 0, since: 0, done: 0, ms: 0 };
  /** While `precompile` rehearses: the pipelines asked for. */
  private planned: Promise<Kernel>[] | null = null;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private batchKernels: string[] = [];
  private readonly uniformBuffer: GPUBuffer;
  private readonly uniformMirror = new Uint8Array(UNIFORM_SLOT * UNIFORM_SLOTS);
  private uniformSlots = 0;
  private pendingScopes: PendingScope[] = [];
  private uncaptured: GPUError[] = [];
  private lostMessage: string | null = null;
  /** Kernel names of the last submitted batch, for error messages. */
  private lastBatch: string[] = [];
  private destroyed = false;
  private profiling: ProfileState | null = null;
  /** Bind groups by pipeline, uniform slot and buffers (see BIND_GROUP_CACHE). */
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly objectIds = new WeakMap<object, number>();
  private nextObjectId = 1;
  private readonly scopes: Set<Disposable>[] = [];
  /** Stack of active autodiff tapes (null = no-grad); managed by src/autodiff. */
  readonly tapeStack: unknown[] = [];
  /**
   * Told of every dispatch as it is recorded (kernel name, workgroups): the autodiff trace uses it
   * to list the kernels of each tape step. Observers must not dispatch.
   */
  readonly dispatchObservers = new Set<(kernel: string, workgroups: [number, number, number]) => void>();
  /** The device's job queue: the saliency methods run one at a time through it (`exclusive`). */
  readonly queue = new DeviceQueue();

  private readonly logger: ((message: string, level: MessageLevel) => void) | undefined;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterReport,
    readonly debug = false,
    memory: { memoryBudget?: number; log?: (message: string, level: MessageLevel) => void } = {},
  ) {
    this.limits = device.limits;
    this.logger = memory.log;
    this.pool = new BufferPool(
      device,
      Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize),
      () => this.encoder !== null,
      () => this.flush(),
      checkMemoryBudget('Gpu', memory.memoryBudget ?? Infinity),
    );
    this.uniformBuffer = device.createBuffer({
      size: this.uniformMirror.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: 'uniforms',
    });
    device.lost.then((info) => {
      if (!this.destroyed) {
        const recent = [...new Set([...this.lastBatch, ...this.batchKernels])];
        this.lostMessage =
          `the GPU device was lost (${info.reason}): ${info.message}` +
          (recent.length ? ` (kernels of the last batch: ${recent.join(', ')})` : '');
      }
    });
    device.addEventListener?.('uncapturederror', (ev) => {
      this.uncaptured.push((ev as GPUUncapturedErrorEvent).error);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Kernels

  /**
   * Compiles (once) the entry point `entry` of `shaders/<shader>.wgsl` with the given defines.
   * Pipelines are cached by (shader, entry, defines); shapes belong in uniforms, not defines, so a
   * new size reuses the pipeline. Concurrent requests for the same key share one compilation.
   */
  kernel(shader: string, defines: ShaderDefines = {}, entry = 'main'): Promise<Kernel> {
    const key = `${shader}:${entry}:${stableKey(defines)}`;
    let k = this.kernels.get(key);
    if (!k) {
      k = this.compile(shader, defines, entry, key);
      this.kernels.set(key, k);
      k.catch(() => this.kernels.delete(key));
    }
    if (this.planned) {
      // precompile: the compilation goes on; the caller records nothing, so it need not wait.
      this.planned.push(k);
      return Promise.resolve(PLANNED_KERNEL);
    }
    return k;
  }

  /**
   * Compiles every pipeline `fn` asks for at once, in parallel, instead of one after another as a
   * first run does (each kernel waits for its pipeline before the next one is even requested).
   * `fn` runs as a rehearsal: its kernels start compiling and are not waited for, nothing is
   * dispatched or copied, reads give zeros, and its tensors are freed. Run the real work after it:
   * it finds its pipelines compiled. A rehearsal that takes another path than the real work (it
   * reads zeros: e.g. no detection above a threshold) compiles less; an error in it is swallowed
   * (the real run reports it). The rehearsal is a job of the device's queue (`exclusive`): work
   * queued before it finishes first, work queued after it waits for it, and `fn`'s own calls of the
   * methods (which queue themselves) run at once as part of it. Where there is no async context
   * (browsers), call it outside your own jobs, as the methods; and there any job queued while `fn`
   * runs counts as part of it, so nothing else should queue work meanwhile (the rehearsal never
   * waits for the GPU, a timer or an event, so work started by events waits for it). Resolves with
   * the number of pipelines `fn` needed that were not compiled yet and how long they took.
   */
  async precompile(fn: () => Promise<unknown> | unknown): Promise<{ pipelines: number; ms: number }> {
    this.assertUsable();
    if (this.planned) throw new GpuError('precompile: already precompiling');
    return this.exclusive(async () => {
      if (this.planned) throw new GpuError('precompile: already precompiling');
      const before = new Set(this.kernels.values());
      const t0 = performance.now();
      const planned: Promise<Kernel>[] = [];
      this.planned = planned;
      try {
        const result = await this.scope(fn);
        const made = new Set<Disposable>();
        collectDisposables(result, made, 0);
        for (const t of made) if (!t.isDisposed) t.dispose();
      } catch {
        /* the real run reports it */
      } finally {
        this.planned = null;
      }
      const fresh = [...new Set(planned)].filter((k) => !before.has(k));
      await Promise.allSettled(planned);
      return { pipelines: fresh.length, ms: performance.now() - t0 };
    });
  }

  /** Number of distinct pipelines compiled so far. */
  get pipelineCount(): number {
    return this.kernels.size;
  }

  /**
   * Pipelines compiled so far and the wall-clock milliseconds during which at least one was being
   * compiled (overlapping compilations count once): what first runs spend compiling.
   */
  compileStats(): { pipelines: number; ms: number } {
    const running = this.compiling.count ? performance.now() - this.compiling.since : 0;
    return { pipelines: this.compiling.done, ms: this.compiling.ms + running };
  }

  private async compile(shader: string, defines: ShaderDefines, entry: string, key: string): Promise<Kernel> {
    this.assertUsable();
    const c = this.compiling;
    if (c.count++ === 0) c.since = performance.now();
    try {
      return await this.compilePipeline(shader, defines, entry, key);
    } finally {
      c.done++;
      if (--c.count === 0) c.ms += performance.now() - c.since;
    }
  }

  private async compilePipeline(shader: string, defines: ShaderDefines, entry: string, key: string): Promise<Kernel> {
    const source = SHADERS[shader] ?? extraShaders.get(shader);
    if (source === undefined) throw new ArgumentError(`no shader named '${shader}' in shaders/`);
    const name = entry === 'main' ? shader : `${shader}.${entry}`;
    const code = preprocess(source, defines, shader);
    // The module's own errors are reported below with the compiler's messages; keep them out of
    // the uncaptured-error channel (push and pop without an await in between).
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: name });
    const moduleError = this.device.popErrorScope();
    try {
      const pipeline = await this.device.createComputePipelineAsync({
        layout: 'auto',
        compute: { module, entryPoint: entry },
        label: `${name} ${stableKey(defines)}`,
      });
      await moduleError;
      return { name, pipeline, layout: pipeline.getBindGroupLayout(0) };
    } catch (e) {
      await moduleError;
      let details = '';
      try {
        const info = await module.getCompilationInfo();
        details = info.messages
          .map((m) => `  ${m.type} at line ${m.lineNum}:${m.linePos}: ${m.message}\n    ${code.split('\n')[m.lineNum - 1] ?? ''}`)
          .join('\n');
      } catch {
        /* getCompilationInfo is optional */
      }
      throw new GpuError(`WGSL kernel '${name}' (${key}) failed to compile: ${(e as Error).message}${details ? '\n' + details : ''}`);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Recording and submitting work

  /** Records one dispatch of `kernel`. Nothing runs until the batch is flushed. */
  dispatch(kernel: Kernel, args: DispatchArgs): void {
    this.assertUsable();
    if (this.planned) return;
    const [x, y = 1, z = 1] = args.workgroups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new GpuError(`kernel '${kernel.name}': dispatch of ${x}×${y}×${z} workgroups exceeds the device limit of ${maxWg} per dimension`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    // Resolve every buffer first: a disposed tensor throws here, before any state changes.
    const buffers = args.buffers.map((b) => ('buffer' in b ? b.buffer : b));
    if (this.uniformSlots >= UNIFORM_SLOTS || this.batchKernels.length >= MAX_DISPATCHES_PER_BATCH) this.flush();
    const prof = this.profiling;
    if (prof) {
      // Each dispatch gets a pass of its own whose start and end are timestamped.
      this.endPass();
      const i = prof.batch.length;
      prof.batch.push({ name: kernel.name, workgroups: [x, y, z] });
      this.pass = this.beginEncoder().beginComputePass({
        label: kernel.name,
        timestampWrites: { querySet: prof.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
    }
    const pass = this.beginPass();
    const entries: GPUBindGroupEntry[] = [];
    let key = `${this.idOf(kernel.pipeline)}|`;
    if (args.uniforms) {
      const offset = this.uniformSlots++ * UNIFORM_SLOT;
      const bytes = args.uniforms.bytes();
      this.uniformMirror.set(bytes, offset);
      entries.push({ binding: 0, resource: { buffer: this.uniformBuffer, offset, size: bytes.byteLength } });
      key += `${offset}:${bytes.byteLength}`;
    }
    buffers.forEach((buffer, i) => {
      entries.push({ binding: i + 1, resource: { buffer } });
      key += `|${this.idOf(buffer)}`;
    });
    let bindGroup = this.bindGroups.get(key);
    if (!bindGroup) {
      bindGroup = this.device.createBindGroup({ layout: kernel.layout, entries, label: kernel.name });
      if (this.bindGroups.size >= BIND_GROUP_CACHE) this.bindGroups.clear();
      this.bindGroups.set(key, bindGroup);
    }
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.batchKernels.push(kernel.name);
    if (this.dispatchObservers.size && !this.queue.foreign()) for (const observe of this.dispatchObservers) observe(kernel.name, [x, y, z]);
    if (prof) this.endPass();
    if (this.debug || this.batchKernels.length >= SUBMIT_EVERY) this.flush();
  }

  /** Records a buffer-to-buffer copy in the current batch. */
  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.assertUsable();
    if (this.planned) return;
    const encoder = this.beginEncoder();
    this.endPass();
    encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.batchKernels.push('copyBuffer');
  }

  /** True when work has been recorded but not submitted. */
  get hasPendingWork(): boolean {
    return this.encoder !== null;
  }

  /** Submits the recorded batch. Errors it causes are reported by the next `sync()` or `read`. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    const prof = this.profiling;
    if (prof && prof.batch.length > 0) {
      const n = prof.batch.length;
      const readback = this.device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'profile readback' });
      this.encoder.resolveQuerySet(prof.querySet, 0, 2 * n, prof.resolve, 0);
      this.encoder.copyBufferToBuffer(prof.resolve, 0, readback, 0, 16 * n);
      prof.pending.push({ dispatches: prof.batch, readback });
      prof.batch = [];
    }
    if (this.uniformSlots > 0) {
      this.device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformMirror, 0, this.uniformSlots * UNIFORM_SLOT);
    }
    const commands = this.encoder.finish({ label: 'webgpu-saliency batch' });
    this.device.queue.submit([commands]);
    this.encoder = null;
    this.uniformSlots = 0;
    this.pool.releasedSinceFlush.clear();
    const kernels = this.batchKernels;
    this.batchKernels = [];
    this.lastBatch = kernels;
    const oom = this.device.popErrorScope();
    const validation = this.device.popErrorScope();
    this.pendingScopes.push({ kernels, errors: Promise.all([validation, oom]) });
  }

  /** Flushes, waits for the GPU to finish, and throws the first GPU error seen since the last check. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  /** Throws a GpuError for any error reported by submitted batches. */
  async checkErrors(): Promise<void> {
    const scopes = this.pendingScopes;
    this.pendingScopes = [];
    let first: string | null = null;
    for (const s of scopes) {
      const errs = await s.errors;
      for (const e of errs) {
        if (e && !first) {
          const names = [...new Set(s.kernels)];
          const where =
            names.length === 1
              ? `kernel '${names[0]}'`
              : `a batch of kernels (${names.join(', ')}; initGpu({ debug: true }) names the exact one)`;
          first = `GPU ${e.constructor?.name === 'GPUOutOfMemoryError' ? 'out of memory' : 'error'} in ${where}: ${e.message}`;
        }
      }
    }
    if (!first && this.uncaptured.length) first = `GPU error outside any kernel batch: ${this.uncaptured[0]!.message}`;
    this.uncaptured = [];
    if (first) throw new GpuError(first);
    this.assertUsable();
  }

  /** Writes CPU data into a GPU buffer, after submitting recorded work that may still read it. */
  writeBuffer(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    this.assertUsable();
    // queue.writeBuffer runs before any not-yet-submitted command. A pooled buffer released since
    // the last submit may still be used by such a command, so submit those first.
    if (this.pool.releasedSinceFlush.has(buffer)) this.flush();
    this.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Copies `bytes` bytes of `buffer` to the CPU. Submits pending work first. */
  async readBuffer(buffer: GPUBuffer, bytes: number, byteOffset = 0): Promise<ArrayBuffer> {
    this.assertUsable();
    if (this.planned) return new ArrayBuffer(bytes); // precompile's rehearsal reads zeros
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.pool.acquire(size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'readback');
    try {
      this.copyBuffer(buffer, byteOffset, staging, 0, size);
      this.flush();
      await this.checkErrors();
      await staging.mapAsync(GPUMapMode.READ, 0, size);
      const out = staging.getMappedRange(0, size).slice(0, bytes);
      staging.unmap();
      return out;
    } finally {
      this.pool.release(staging);
    }
  }

  private beginEncoder(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.device.pushErrorScope('out-of-memory');
      this.encoder = this.device.createCommandEncoder({ label: 'webgpu-saliency batch' });
    }
    return this.encoder;
  }

  private beginPass(): GPUComputePassEncoder {
    const encoder = this.beginEncoder();
    if (!this.pass) this.pass = encoder.beginComputePass({ label: 'webgpu-saliency pass' });
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private assertUsable(): void {
    if (this.destroyed) throw new GpuError('this Gpu was destroyed; call initGpu() again');
    if (this.lostMessage) throw new GpuError(this.lostMessage);
  }

  // ---------------------------------------------------------------------------------------------
  // Concurrent callers

  /**
   * Runs `job` when the jobs queued before it on this device have finished, one at a time, in
   * order (a failed job does not stop the others). The saliency methods run this way, so that
   * concurrent calls on one Gpu neither record onto each other's tapes nor free each other's
   * tensors; queue your own multi-step GPU work (tapes, scopes, forward passes) the same way.
   * In Node a job may call the methods itself (they run at once, as part of it); in a browser,
   * which cannot tell such a call from a concurrent one, that call would wait forever: call the
   * methods outside your jobs there. See src/runtime/queue.ts and docs/security.md.
   */
  exclusive<T>(job: () => Promise<T> | T): Promise<T> {
    // precompile's rehearsal holds the queue; without async context its own jobs cannot be told
    // from others', and they must not wait for it.
    if (this.planned && !hasAsyncContext()) return Promise.resolve().then(job);
    return this.queue.run(job);
  }

  // ---------------------------------------------------------------------------------------------
  // Scopes: deterministic freeing of tensors

  /**
   * Called by every new tensor: it belongs to the innermost open scope, if any, unless it is made
   * outside the job running on the device (`exclusive`), whose scopes are not the caller's.
   */
  track(t: Disposable): void {
    this.liveTensors++;
    if (this.queue.foreign()) return;
    this.scopes[this.scopes.length - 1]?.add(t);
  }

  /** Called by a tensor when it is freed. */
  untrack(t: Disposable): void {
    this.liveTensors--;
    for (const s of this.scopes) s.delete(t);
  }

  /** Removes `t` from every open scope, so that it outlives them. */
  keep<T extends Disposable>(t: T): T {
    for (const s of this.scopes) s.delete(t);
    return t;
  }

  /**
   * Runs `fn` and frees every tensor created inside it, except those it returns (a tensor, or
   * tensors inside a returned array or plain object), which move to the enclosing scope. Scopes
   * nest; do not interleave two scopes concurrently on one Gpu.
   */
  async scope<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.queue.foreign()) return this.exclusive(() => this.scope(fn)); // after the running job
    const set = new Set<Disposable>();
    this.scopes.push(set);
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      this.closeScope(set, new Set());
      throw e;
    }
    const kept = new Set<Disposable>();
    collectDisposables(result, kept, 0);
    this.closeScope(set, kept);
    return result;
  }

  private closeScope(set: Set<Disposable>, kept: Set<Disposable>): void {
    const i = this.scopes.lastIndexOf(set);
    if (i >= 0) this.scopes.splice(i, 1);
    const parent = this.scopes[this.scopes.length - 1];
    for (const t of set) {
      if (kept.has(t)) parent?.add(t);
      else if (!t.isDisposed) t.dispose();
    }
  }

  // ---------------------------------------------------------------------------------------------

  /** Destroys the pool's free buffers (after submitting recorded work that may use them). */
  trim(): void {
    this.pool.trim();
    this.bindGroups.clear(); // they may name destroyed buffers
  }

  /**
   * Memory counters of the buffer pool, which holds every tensor's buffer: `bytes` is the GPU
   * memory it holds (buffers in use and free ones kept for reuse), `peakBytes` the most it held
   * since the last `resetPeak()` (or since initGpu), `inUseBytes`/`peakInUseBytes` the same for
   * the buffers of live tensors alone, `budgetBytes` the memory budget. The pool's figures leave
   * out the few fixed buffers of the runtime itself (the 128 KiB uniform buffer, profiling queries).
   */
  memory(): PoolStats & { tensors: number } {
    return { ...this.pool.snapshot(), tensors: this.liveTensors };
  }

  /** Starts `peakBytes` and `peakInUseBytes` over from the current figures. */
  resetPeak(): void {
    this.pool.resetPeak();
  }

  /** The memory budget in bytes (Infinity: none); see `InitGpuOptions.memoryBudget`. */
  get memoryBudget(): number {
    return this.pool.budget;
  }

  /** Changes the memory budget; free buffers beyond a lower one are destroyed at once. */
  setMemoryBudget(bytes: number): void {
    this.pool.setBudget(checkMemoryBudget('setMemoryBudget', bytes));
  }

  /** Sends one line to the `log` given to initGpu, if any. */
  log(message: string, level: MessageLevel = 'info'): void {
    this.logger?.(message, level);
  }

  /** A number that stays with `o` (a buffer or pipeline) for the bind group cache's keys. */
  private idOf(o: object): number {
    let id = this.objectIds.get(o);
    if (id === undefined) this.objectIds.set(o, (id = this.nextObjectId++));
    return id;
  }

  /** True if this device can time dispatches (`profile`); adapters without 'timestamp-query' cannot. */
  get canProfile(): boolean {
    return this.device.features.has('timestamp-query');
  }

  /**
   * Runs `fn` and measures, with GPU timestamps, how long each dispatch it records takes on the
   * GPU. While profiling every dispatch gets its own compute pass, which can cost a little overlap
   * between kernels: use it to see where the time goes, and plain wall-clock runs for totals.
   * Throws a GpuError on adapters without the 'timestamp-query' feature, and if already profiling.
   */
  async profile<T>(fn: () => Promise<T> | T): Promise<Profile<T>> {
    this.assertUsable();
    if (!this.canProfile) throw new GpuError(`profile: the adapter ${this.adapter.name} cannot write GPU timestamps (no 'timestamp-query' feature)`);
    if (this.profiling) throw new GpuError('profile: already profiling');
    await this.sync(); // earlier work is neither timed nor blamed for errors found here
    const queries = 2 * MAX_DISPATCHES_PER_BATCH;
    const prof: ProfileState = {
      querySet: this.device.createQuerySet({ type: 'timestamp', count: queries, label: 'profile' }),
      resolve: this.device.createBuffer({ size: 8 * queries, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'profile resolve' }),
      batch: [],
      pending: [],
    };
    this.profiling = prof;
    let result: T | undefined;
    let returned = false;
    try {
      result = await fn();
      returned = true;
      this.flush();
      const kernels: KernelTime[] = [];
      for (const { dispatches, readback } of prof.pending) {
        await readback.mapAsync(GPUMapMode.READ);
        const t = new BigUint64Array(readback.getMappedRange().slice(0));
        readback.unmap();
        dispatches.forEach((d, i) => {
          const ns = t[2 * i + 1]! > t[2 * i]! ? Number(t[2 * i + 1]! - t[2 * i]!) : 0;
          kernels.push({ ...d, ms: ns / 1e6 });
        });
      }
      await this.checkErrors();
      return { result: result as T, kernels, gpuMs: kernels.reduce((a, k) => a + k.ms, 0) };
    } catch (e) {
      // fn's tensors are freed when the profile fails after fn returned (a GPU error, a lost device).
      if (returned) {
        const made = new Set<Disposable>();
        collectDisposables(result, made, 0);
        for (const t of made) if (!t.isDisposed) t.dispose();
      }
      throw e;
    } finally {
      this.flush();
      this.profiling = null;
      for (const { readback } of prof.pending) readback.destroy();
      prof.resolve.destroy();
      prof.querySet.destroy();
    }
  }

  /** Frees every GPU resource and the device. The Gpu cannot be used afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    try {
      this.flush();
    } catch {
      /* the device may already be lost */
    }
    this.destroyed = true;
    this.pool.destroyAll();
    this.uniformBuffer.destroy();
    this.device.destroy();
  }
}

function stableKey(defines: ShaderDefines): string {
  return Object.keys(defines)
    .sort()
    .map((k) => `${k}=${defines[k]}`)
    .join(',');
}

function collectDisposables(value: unknown, out: Set<Disposable>, depth: number): void {
  if (!value || typeof value !== 'object' || depth > 3) return;
  if (typeof (value as Disposable).dispose === 'function' && 'isDisposed' in (value as object)) {
    out.add(value as Disposable);
    return;
  }
  const holder = (value as { [HOLDS_TENSORS]?: () => Iterable<Disposable> })[HOLDS_TENSORS];
  if (typeof holder === 'function') {
    for (const t of holder.call(value)) out.add(t);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectDisposables(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype || value instanceof Map) {
    const values = value instanceof Map ? [...value.values()] : Object.values(value);
    for (const v of values) collectDisposables(v, out, depth + 1);
  }
}
