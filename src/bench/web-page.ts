/**
 * The page `npm run bench:web` drives in Chromium (web/bench.html, built by Vite; see
 * src/bench/web.ts). Query parameters pick what it measures:
 *
 *   ?mode=works&size=64&reps=3&samples=50&peers=tfjs,ort[&budget=MiB]
 *     Our works (src/bench/works.ts) on VGG16 with seeded random weights, the same works in TF.js's
 *     WebGPU backend, and ONNX Runtime Web's forward pass (WebGPU execution provider) on the same
 *     network exported to ONNX in the page: medians after a warm-up, read-back included, the
 *     libraries taking turns call by call; how far each peer's results are from ours; and each
 *     work's peak GPU memory, measured as `npm run bench` does (src/bench/main.ts): ours from an
 *     emptied buffer pool (`gpu.trim()`, `gpu.resetPeak()`), TF.js's `tf.profile` peak of live
 *     tensor bytes over one more call and its buffer manager's allocation after the work.
 *   ?mode=first-map&model=fashion-vgg&method=gradCam[&precompile=1]
 *     Time to first map: a <saliency-view> is connected and the time until its first map is drawn
 *     is split into its parts (RunTimings); then a second view in the same page (warm).
 *
 * The result goes to `window.__bench` ({ result } or { error }); progress lines to the console.
 * TF.js (tf.min.js, tf-backend-webgpu.min.js) and ONNX Runtime Web (ort.webgpu.min.mjs and its
 * .wasm) are loaded at run time from the server's /bench-vendor/ mounts, not bundled.
 */
import { conv2dDirectBlock, conv2dStrategy, formatConv2dDirectBlock, parseConv2dDirectBlock, setConv2dDirectBlock, setConv2dStrategy } from '../kernels/conv2d.js';
import { modelFromSpec } from '../nets/model.js';
import { modelToOnnx } from '../nets/onnx/export.js';
import { initGpu, type Gpu } from '../runtime/gpu.js';
import { MiB } from '../runtime/memory.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import { isMethodName } from '../saliency/methods.js';
import { sharedGpu, type SaliencyResultDetail, type SaliencyView } from '../web/index.js';
import {
  TfVgg,
  UNBUDGETED,
  WORKS,
  benchInput,
  checkAgreement,
  ourWorks,
  profileWorks,
  relativeDifference,
  round,
  tfjsWorks,
  timeInTurn,
  vgg16Spec,
  type Tf,
  type Work,
  type WorkRow,
} from './works.js';

type Ort = typeof import('onnxruntime-web');

/** Where the server mounts the peers' files (src/bench/web.ts). */
export const VENDOR = {
  tfjs: '/bench-vendor/tfjs/tf.min.js',
  tfjsWebgpu: '/bench-vendor/tfjs-webgpu/tf-backend-webgpu.min.js',
  ort: '/bench-vendor/ort/',
} as const;

/** A row of the table, with ONNX Runtime Web's figures on the forward pass. */
export interface PageRow extends WorkRow {
  /** ONNX Runtime Web (forward only). */
  ort_ms?: number | null;
  /** ORT / ours. */
  ort_ratio?: number | null;
  ort_first_ms?: number | null;
  ort_error?: string;
}

export interface WorksResult {
  adapter: string;
  isSoftware: boolean;
  size: number;
  reps: number;
  samples: number;
  conv: string;
  /** The direct conv kernels' register block, PIXELSxCHANNELS (null with the tiled ones). */
  direct_block: string | null;
  results: PageRow[];
  agreement: { tfjs: Record<string, number> | null; ort: Record<string, number> | null };
  /**
   * Peaks over all works (MiB): our buffer pool, TF.js's live tensors, and its buffer manager's
   * allocation at the end (it keeps freed buffers, so: the most it held). ONNX Runtime Web reports none.
   */
  memory: { budget_mib: number | null; ours_peak_mib: number; tfjs_live_peak_mib: number | null; tfjs_pool_mib: number | null };
  /** Pipelines our works compiled, and the wall-clock time spent compiling them. */
  compile: { pipelines: number; ms: number };
  /** ONNX file size (MiB), export time and ONNX Runtime's session creation. */
  onnx: { mib: number; export_ms: number; session_ms: number } | null;
  /** GPU time per kernel of each of our works (with ?profile=1, where the adapter has timestamps). */
  profiles: Awaited<ReturnType<typeof profileWorks>> | null;
  canProfile: boolean;
}

/** Time to first map of one <saliency-view>: its RunTimings, and the total from connecting to drawn. */
export interface FirstMap {
  total: number;
  gpu: number;
  image: number;
  load: number;
  compile: number;
  run: number;
  /** What is left: scheduling, the queue, drawing, the next frame. */
  other: number;
  pipelines: number;
}

export interface FirstMapResult {
  model: string;
  method: string;
  adapter: string;
  precompile: boolean;
  /** The first view on this page. */
  first: FirstMap;
  /** A second view in the same page: model and pipelines already there. */
  second: FirstMap;
}

declare global {
  interface Window {
    __bench?: { result?: unknown; error?: string };
  }
}

const log = (s: string) => console.log(`bench: ${s}`);

function loadScript(src: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = () => resolve();
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  });
}

async function readAndFree(p: Promise<Tensor>): Promise<Float32Array> {
  const t = await p;
  try {
    return await t.read();
  } finally {
    t.dispose();
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

/** NHWC → NCHW, on the CPU: TF.js's input-shaped results in our layout. */
function nhwcToNchw(data: Float32Array, shape: readonly number[]): Float32Array {
  if (shape.length !== 4) return data;
  const [n, h, w, c] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + x] = data[((b * h + y) * w + x) * c + k]!;
  return out;
}

async function works(q: URLSearchParams): Promise<WorksResult> {
  // The library's 'info' lines say how a batching method ran; the last one per method is kept.
  const batching = new Map<string, string>();
  const budgetMib = q.get('budget');
  const gpu = await initGpu({
    ...(budgetMib ? { memoryBudget: Number(budgetMib) * MiB } : {}),
    log: (message, level) => {
      const method = /^(\w+): /.exec(message)?.[1];
      if (level === 'info' && method) batching.set(method, message);
      if (level === 'warning') log(message);
    },
  });
  const conv = q.get('conv');
  if (conv === 'tiled' || conv === 'direct') setConv2dStrategy(gpu, conv);
  const blockText = q.get('block');
  if (blockText) setConv2dDirectBlock(gpu, parseConv2dDirectBlock(blockText));
  const size = Number(q.get('size') ?? (gpu.adapter.isSoftware ? 64 : 224));
  const reps = Number(q.get('reps') ?? (gpu.adapter.isSoftware ? 3 : 10));
  const warmup = reps ? Number(q.get('warmup') ?? 1) : 0;
  const samples = Number(q.get('samples') ?? 50);
  const peers = new Set((q.get('peers') ?? 'tfjs,ort').split(',').filter(Boolean));
  const chosen = new Set((q.get('works') ?? WORKS.join(',')).split(','));
  const warmMs = gpu.adapter.isSoftware || !reps ? 0 : 500;
  log(`adapter ${gpu.adapter.name}; VGG16 at ${size}×${size}; ${conv2dStrategy(gpu)} conv kernels; medians of ${reps}`);
  const spec = vgg16Spec(size);
  const model = modelFromSpec(gpu, spec, undefined, { seed: 1 });
  const xData = benchInput(size);
  const x = tensor(gpu, xData, [1, 3, size, size]);
  const ourWork = ourWorks(model, x, samples);

  let tf: Tf | null = null;
  let tfNet: TfVgg | null = null;
  let tfWork: ReturnType<typeof tfjsWorks> = {};
  if (peers.has('tfjs')) {
    await loadScript(VENDOR.tfjs);
    await loadScript(VENDOR.tfjsWebgpu);
    tf = (window as unknown as { tf: Tf }).tf;
    if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend');
    await tf.ready();
    tfNet = new TfVgg(tf, spec, await model.exportWeights());
    tfWork = tfjsWorks(tf, tfNet, xData, size, samples);
  }
  let ort: Ort | null = null;
  let session: import('onnxruntime-web').InferenceSession | null = null;
  let onnx: WorksResult['onnx'] = null;
  if (peers.has('ort') && chosen.has('forward')) {
    ort = (await import(/* @vite-ignore */ `${VENDOR.ort}ort.webgpu.min.mjs`)) as Ort;
    ort.env.wasm.wasmPaths = VENDOR.ort;
    ort.env.wasm.numThreads = 1; // no cross-origin isolation here, so no wasm threads
    let t0 = performance.now();
    const bytes = await modelToOnnx(model);
    const exportMs = performance.now() - t0;
    t0 = performance.now();
    session = await ort.InferenceSession.create(bytes, { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' });
    onnx = { mib: round(bytes.byteLength / 2 ** 20, 1), export_ms: round(exportMs), session_ms: round(performance.now() - t0) };
    log(`ONNX export ${onnx.mib} MiB in ${onnx.export_ms} ms; ORT session ${onnx.session_ms} ms`);
  }

  // Each library's last result of each work, for the agreement check after the timings.
  const last = { ours: new Map<Work, Float32Array>(), tfjs: new Map<Work, Float32Array>(), ort: new Map<Work, Float32Array>() };
  const ours = (work: Work) => async () => last.ours.set(work, await readAndFree(ourWork[work]()));
  const theirs = (t: Tf, work: Work, f: () => import('@tensorflow/tfjs').Tensor) => async () => {
    const r = t.tidy(f);
    try {
      last.tfjs.set(work, nhwcToNchw((await r.data()) as Float32Array, r.shape));
    } finally {
      r.dispose();
    }
  };
  const ortForward = async () => {
    const s = session!;
    const out = await s.run({ [s.inputNames[0]!]: new ort!.Tensor('float32', xData, [1, 3, size, size]) });
    last.ort.set('forward', (await out[s.outputNames[0]!]!.getData()) as Float32Array);
    for (const t of Object.values(out)) t.dispose();
  };

  // With reps 0 each work runs once: its first call is all there is (a check of the results).
  const ms = (t: { median: number }) => (reps ? round(t.median) : null);
  const ratio = (theirs: { median: number }, ours: { median: number }) => (reps ? round(theirs.median / ours.median, 2) : null);
  const tfjsPool = (t: Tf) => (t.memory() as { numBytesAllocatedInGPU?: number }).numBytesAllocatedInGPU ?? null;
  const mib = (bytes: number | null) => (bytes === null ? null : round(bytes / MiB));
  const budget = gpu.memoryBudget;
  const rows: PageRow[] = [];
  for (const work of WORKS.filter((w) => chosen.has(w))) {
    const f = tfWork[work];
    // Our memory from an empty pool: the model's weights and what the work adds.
    if (UNBUDGETED.has(work)) gpu.setMemoryBudget(Infinity);
    gpu.trim();
    gpu.resetPeak();
    batching.delete('smoothGrad');
    const [a, b, c] = await timeInTurn(reps, warmMs, warmup, [ours(work), tf && f ? theirs(tf, work, f) : null, session && work === 'forward' ? ortForward : null]).finally(() => gpu.setMemoryBudget(budget));
    const mem = gpu.memory();
    if (a instanceof Error) throw a;
    const row: PageRow = {
      work,
      ours_ms: ms(a!),
      tfjs_ms: null,
      ratio: null,
      ours_first_ms: round(a!.first),
      tfjs_first_ms: null,
      ours_peak_mib: round(mem.peakBytes / MiB),
      ours_live_peak_mib: round(mem.peakInUseBytes / MiB),
      tfjs_live_peak_mib: null,
      tfjs_pool_mib: null,
      ...(work.startsWith('smoothgrad') && batching.has('smoothGrad') ? { batching: batching.get('smoothGrad')! } : {}),
    };
    if (b instanceof Error) row.tfjs_error = firstLine(b);
    else if (b && tf && f) {
      Object.assign(row, { tfjs_ms: ms(b), ratio: ratio(b, a!), tfjs_first_ms: round(b.first) });
      const t = tf;
      const profile = await t.profile(() => t.tidy(f));
      (profile.result as import('@tensorflow/tfjs').Tensor).dispose();
      Object.assign(row, { tfjs_live_peak_mib: mib(profile.peakBytes), tfjs_pool_mib: mib(tfjsPool(t)) });
    }
    if (c instanceof Error) Object.assign(row, { ort_ms: null, ort_ratio: null, ort_first_ms: null, ort_error: firstLine(c) });
    else if (c) Object.assign(row, { ort_ms: ms(c), ort_ratio: ratio(c, a!), ort_first_ms: round(c.first) });
    rows.push(row);
    log(`${work}: ours ${row.ours_ms} ms, tfjs ${row.tfjs_ms ?? '—'} ms${row.ort_ms !== undefined ? `, ort ${row.ort_ms ?? '—'} ms` : ''}; peak MiB ours ${row.ours_peak_mib}, tfjs live ${row.tfjs_live_peak_mib ?? '—'}`);
  }
  const compile = gpu.compileStats();

  // The same results? The last timed ones, compared (SmoothGrad aside: the noise differs).
  const agreement = (peer: 'tfjs' | 'ort', name: string) => {
    const out: Record<string, number> = {};
    for (const work of ['forward', 'vanilla', 'gradcam'] as const) {
      const b = last[peer].get(work);
      if (b) out[work] = relativeDifference(work, last.ours.get(work)!, b);
    }
    if (!Object.keys(out).length) return null;
    checkAgreement(name, out);
    return out;
  };
  const tfAgreement = tf ? agreement('tfjs', 'TF.js') : null;
  const ortAgreement = session ? agreement('ort', 'ONNX Runtime') : null;
  const profiles = gpu.canProfile && q.get('profile') === '1' ? await profileWorks(gpu, Object.fromEntries(rows.map((r) => [r.work, ours(r.work)])), log) : null;
  const memory = {
    budget_mib: Number.isFinite(budget) ? round(budget / MiB) : null,
    ours_peak_mib: Math.max(0, ...rows.map((r) => r.ours_peak_mib)),
    tfjs_live_peak_mib: tf ? Math.max(0, ...rows.map((r) => r.tfjs_live_peak_mib ?? 0)) : null,
    tfjs_pool_mib: tf ? mib(tfjsPool(tf)) : null,
  };
  await session?.release();
  tfNet?.dispose();
  x.dispose();
  model.dispose();
  const adapter = gpu.adapter;
  const canProfile = gpu.canProfile;
  const strategy = conv2dStrategy(gpu);
  const directBlock = strategy === 'direct' ? formatConv2dDirectBlock(conv2dDirectBlock(gpu)) : null;
  gpu.destroy();
  return {
    adapter: adapter.name,
    isSoftware: adapter.isSoftware,
    size,
    reps,
    samples,
    conv: strategy,
    direct_block: directBlock,
    results: rows,
    agreement: { tfjs: tfAgreement, ort: ortAgreement },
    memory,
    compile: { pipelines: compile.pipelines, ms: round(compile.ms) },
    onnx,
    profiles,
    canProfile,
  };
}

/** A 64×64 grey test picture (a bright ellipse on a gradient): no fetch, the same in every run. */
function testImage(): ImageData {
  const n = 64;
  const data = new Uint8ClampedArray(n * n * 4);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const inside = ((x - 32) / 20) ** 2 + ((y - 30) / 26) ** 2 < 1;
      const v = inside ? 200 - ((x * 3 + y) % 40) : 20 + y;
      data.set([v, v, v, 255], 4 * (y * n + x));
    }
  }
  return new ImageData(data, n, n);
}

/** Connects a <saliency-view> and waits for its first map to be drawn (the frame after the result). */
async function viewFirstMap(model: string, method: string, precompile: boolean, gpu: () => Gpu | null): Promise<FirstMap> {
  const view = document.createElement('saliency-view') as SaliencyView;
  view.setAttribute('precompile', precompile ? 'on' : 'off');
  view.setAttribute('model', model);
  view.setAttribute('method', method);
  view.image = testImage();
  const before = gpu()?.compileStats().pipelines ?? 0;
  const done = new Promise<SaliencyResultDetail>((resolve, reject) => {
    view.addEventListener('saliency-result', (e) => resolve(e.detail), { once: true });
    view.addEventListener('saliency-error', (e) => reject(new Error(`${method} on ${model}: ${e.detail.message}`)), { once: true });
  });
  const t0 = performance.now();
  document.body.append(view);
  const detail = await done;
  await new Promise((r) => requestAnimationFrame(() => r(undefined)));
  const total = performance.now() - t0;
  const t = detail.timings;
  const parts = t.gpu + t.image + t.load + t.compile + t.run;
  const pipelines = (gpu()?.compileStats().pipelines ?? 0) - before;
  return { total: round(total), gpu: round(t.gpu), image: round(t.image), load: round(t.load), compile: round(t.compile), run: round(t.run), other: round(total - parts), pipelines };
}

async function firstMap(q: URLSearchParams): Promise<FirstMapResult> {
  const model = q.get('model') ?? 'fashion-vgg';
  const method = q.get('method') ?? 'gradCam';
  if (!isMethodName(method)) throw new Error(`unknown method ${method}`);
  const precompile = q.get('precompile') === '1';
  let gpu: Gpu | null = null;
  void sharedGpu().then((g) => (gpu = g));
  const first = await viewFirstMap(model, method, precompile, () => gpu);
  const second = await viewFirstMap(model, method, precompile, () => gpu);
  return { model, method, adapter: gpu!.adapter.name, precompile, first, second };
}

async function main(): Promise<void> {
  const q = new URLSearchParams(location.search);
  const mode = q.get('mode') ?? 'works';
  try {
    const result = mode === 'works' ? await works(q) : mode === 'first-map' ? await firstMap(q) : null;
    if (!result) throw new Error(`unknown mode '${mode}' (works, first-map)`);
    window.__bench = { result };
  } catch (e) {
    window.__bench = { error: e instanceof Error ? `${e.message}` : String(e) };
  }
}

void main();
