#!/usr/bin/env node
/**
 * `npm run bench`: our library against TF.js's WebGPU backend, in one process, on the same Dawn
 * adapter, on a VGG16-shaped network with random fp32 weights. Times (medians after warm-up, each
 * including reading the result back): forward, vanilla gradient, Grad-CAM at the last conv layer,
 * SmoothGrad with 50 samples in one batch, guided backprop (ours only). Also: the first call of
 * each (pipeline compilation included), peak GPU memory, conv/matmul GFLOP/s per VGG16 layer
 * shape, and D-RISE masks per second on the detector.
 */
import { createRequire } from 'node:module';
import { Command, InvalidArgumentError } from 'commander';
import { decimal } from '../cli/parse.js';
import {
  CONV2D_TILE_CANDIDATES,
  checkConv2dTile,
  conv2dBackwardInput,
  conv2dForward,
  conv2dStrategy,
  formatConv2dTile,
  parseConv2dTile,
  setConv2dSplitK,
  setConv2dStrategy,
  setConv2dTile,
  type Conv2dStrategy,
  type Conv2dTile,
} from '../kernels/conv2d.js';
import { matmul } from '../kernels/matmul.js';
import { randomNormal } from '../kernels/random.js';
import { detect, FASHION_DETECTOR } from '../nets/detector.js';
import { modelFromSpec, type Model } from '../nets/model.js';
import { initGpu, type Gpu } from '../runtime/gpu.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import { runMethod } from '../saliency/methods.js';
import { batchSpeed } from './batch.js';
import { TfVgg, WORKS, benchInput, checkAgreement, median, ourWorks, profileWorks, relativeDifference, round, tfjsResultInOurLayout, tfjsWorks, time, vgg16Spec, type Tf } from './works.js';

interface Options {
  size?: number;
  reps?: number;
  json?: boolean;
  samples: number;
  tfjs: boolean;
  kernels: boolean;
  drise: number;
  batch: number;
  conv: 'auto' | Conv2dStrategy;
  tile?: Conv2dTile;
  tiles?: (Conv2dTile | null)[];
  profile: boolean;
  splitK: boolean;
}


interface Row {
  work: string;
  ours_ms: number | null;
  tfjs_ms: number | null;
  ratio: number | null;
  ours_first_ms: number | null;
  tfjs_first_ms: number | null;
  /** Why TF.js has no time for this work, when it failed. */
  tfjs_error?: string;
}

async function main(): Promise<void> {
  const program = new Command()
    .name('bench')
    .description('benchmark webgpu-saliency against TF.js WebGPU on the same adapter (VGG16 shape, random weights)')
    .option('--size <px>', 'input side (multiple of 32); default 224 on a GPU, 64 on a software adapter', (v) => intArg(v, '--size'))
    .option('--reps <n>', 'timed repetitions after one warm-up; default 10 on a GPU, 3 on a software adapter', (v) => intArg(v, '--reps'))
    .option('--samples <n>', 'SmoothGrad samples', (v) => intArg(v, '--samples'), 50)
    .option('--no-tfjs', 'time our library only')
    .option('--no-kernels', 'skip the per-kernel GFLOP/s table')
    .option('--drise <masks>', 'D-RISE masks to time on the detector (0 = skip)', (v) => intArg(v, '--drise', true), 256)
    .option('--batch <images>', "images for the 'saliency batch' speed (Grad-CAM on fashion-vgg, batch 1 and auto; 0 = skip)", (v) => intArg(v, '--batch', true), 192)
    .option('--conv <kind>', "conv2d kernels: auto (direct on a CPU adapter, tiled on a GPU), tiled or direct", convArg, 'auto')
    .option('--tile <TMxTNxTK/RMxRN>', 'tiled conv2d kernels: use this one tile for every layer (default: chosen by shape)', tileArg)
    .option('--tiles <list>', "kernel table: compare these comma-separated tiles ('all': a built-in list; 'auto': the choice by shape; default: auto)", tilesArg)
    .option('--no-split-k', 'tiled conv2d kernels: never split K (deep layers at batch 1 otherwise split it to fill the GPU)')
    .option('--no-profile', 'skip the per-kernel GPU time breakdown of each work (GPU timestamps)')
    .option('--json', 'print one JSON object instead of tables');
  program.parse(process.argv);
  const o = program.opts<Options>();
  const log = (s: string) => {
    if (!o.json) process.stdout.write(s + '\n');
  };

  const gpu = await initGpu();
  if (o.conv !== 'auto') setConv2dStrategy(gpu, o.conv);
  if ((o.tile || o.tiles?.some(Boolean)) && conv2dStrategy(gpu) !== 'tiled') {
    throw new InvalidArgumentError(`--tile and --tiles choose tiles of the tiled conv kernels; this adapter uses the ${conv2dStrategy(gpu)} ones: add --conv tiled`);
  }
  if (o.tile) setConv2dTile(gpu, o.tile);
  setConv2dSplitK(gpu, o.splitK);
  const conv = conv2dStrategy(gpu);
  const size = o.size ?? (gpu.adapter.isSoftware ? 64 : 224);
  const reps = o.reps ?? (gpu.adapter.isSoftware ? 3 : 10);
  const warmMs = gpu.adapter.isSoftware ? 0 : 500;
  if (size % 32) throw new InvalidArgumentError('--size must be a multiple of 32');
  log(`adapter: ${gpu.adapter.name}; VGG16 at ${size}×${size}, batch 1, fp32; ${conv} conv kernels${o.tile ? ` (tile ${formatConv2dTile(o.tile)})` : ''}${o.splitK ? '' : ', K never split'}; medians of ${reps} after a warm-up${warmMs ? ` (≥ ${warmMs} ms)` : ""}, read-back included`);

  const spec = vgg16Spec(size);
  const model = modelFromSpec(gpu, spec, undefined, { seed: 1 });
  const xData = benchInput(size);
  const x = tensor(gpu, xData, [1, 3, size, size]);
  let tf: Tf | null = null;
  let tfNet: TfVgg | null = null;
  if (o.tfjs) {
    const require = createRequire(import.meta.url);
    (globalThis as { navigator?: unknown }).navigator = { gpu: await nodeGpu() };
    tf = require('@tensorflow/tfjs') as Tf;
    require('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend');
    tfNet = new TfVgg(tf, spec, await model.exportWeights());
  }
  const rows: Row[] = [];
  const ourWork: Record<string, () => Promise<Tensor>> = ourWorks(model, x, o.samples);
  const ours = Object.fromEntries(Object.entries(ourWork).map(([k, f]) => [k, () => readAndFree(f())]));
  // TF.js's results (NHWC), made inside tf.tidy; timed with the read-back, like ours.
  const theirWork: Record<string, () => import('@tensorflow/tfjs').Tensor> = {};
  const theirs: Record<string, (() => Promise<unknown>) | undefined> = {};
  if (tf && tfNet) {
    const t = tf;
    Object.assign(theirWork, tfjsWorks(t, tfNet, xData, size, o.samples));
    for (const [k, f] of Object.entries(theirWork)) {
      theirs[k] = async () => {
        const r = t.tidy(f);
        await r.data();
        r.dispose();
      };
    }
  }

  for (const work of WORKS) {
    const a = await time(reps, ours[work]!, warmMs);
    // TF.js may fail where we do not (e.g. a batch of 50 at 224×224 over its buffer limits): the
    // row then says why instead of ending the benchmark.
    let b: { first: number; median: number } | null = null;
    let tfjsError: string | undefined;
    if (theirs[work]) {
      try {
        b = await time(reps, theirs[work]!, warmMs);
      } catch (e) {
        tfjsError = (e as Error).message.split('\n')[0];
      }
    }
    const row: Row = {
      work,
      ours_ms: round(a.median),
      tfjs_ms: b ? round(b.median) : null,
      ratio: b ? round(b.median / a.median, 2) : null,
      ours_first_ms: round(a.first),
      tfjs_first_ms: b ? round(b.first) : null,
      ...(tfjsError ? { tfjs_error: tfjsError } : {}),
    };
    rows.push(row);
    log(
      `${work.padEnd(16)} ours ${fmt(row.ours_ms)} ms   tfjs ${fmt(row.tfjs_ms)} ms   tfjs/ours ${row.ratio ?? '—'}   (first call: ours ${fmt(row.ours_first_ms)}, tfjs ${fmt(row.tfjs_first_ms)})` +
        (tfjsError ? `\n${''.padEnd(16)} tfjs failed: ${tfjsError}` : ''),
    );
  }
  // Both libraries computed the same thing: each result once more, compared (after the timings, so
  // that the first calls above still include compiling).
  const agreement = tf ? await agreeWithTfjs(tf, ourWork, theirWork, rows, log) : null;
  const memory = {
    ours_peak_mib: round(gpu.memory().peakBytes / 2 ** 20, 1),
    tfjs_peak_mib: tf ? round(((tf.memory() as { numBytesInGPUAllocated?: number; numBytes: number }).numBytesInGPUAllocated ?? tf.memory().numBytes) / 2 ** 20, 1) : null,
  };
  log(`GPU memory: ours peak ${memory.ours_peak_mib} MiB (buffer pool); tfjs ${memory.tfjs_peak_mib ?? '—'} MiB allocated at the end`);

  const profiles = o.profile && gpu.canProfile ? await profileWorks(gpu, ours, log) : null;
  const kernels = o.kernels ? await kernelTable(gpu, size, reps, o.tile ? [o.tile] : (o.tiles ?? [null]), o.tile ?? null, log) : [];
  const driseResult = o.drise > 0 ? await driseSpeed(gpu, o.drise, log) : null;
  const batchResult = o.batch > 0 ? await batchSpeed(o.batch, log) : null;
  if (o.json) {
    process.stdout.write(
      JSON.stringify({ adapter: gpu.adapter.name, size, reps, conv, tile: o.tile ? formatConv2dTile(o.tile) : 'auto', split_k: o.splitK, results: rows, agreement, memory, profiles, kernels, drise: driseResult, batch: batchResult, date: new Date().toISOString() }) + '\n',
    );
  }
  model.dispose();
  gpu.destroy();
}

/**
 * For each work both libraries ran (SmoothGrad aside: the noise differs), max |ours − TF.js| over
 * max |TF.js|. Throws when a result is off by more than AGREEMENT_TOLERANCE: the times would then
 * compare different computations.
 */
async function agreeWithTfjs(
  tf: Tf,
  ourWork: Record<string, () => Promise<Tensor>>,
  theirWork: Record<string, () => import('@tensorflow/tfjs').Tensor>,
  rows: Row[],
  log: (s: string) => void,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const work of ['forward', 'vanilla', 'gradcam']) {
    if (!theirWork[work] || rows.find((r) => r.work === work)?.tfjs_error) continue;
    const oursT = await ourWork[work]!();
    const a = await oursT.read();
    oursT.dispose();
    // NHWC → NCHW for input-shaped results; Grad-CAM's [1, h, w] is already in our order.
    const theirsT = tfjsResultInOurLayout(tf, theirWork[work]!);
    const b = (await theirsT.data()) as Float32Array;
    theirsT.dispose();
    out[work] = relativeDifference(work, a, b);
  }
  log(`agreement with TF.js (max |ours − tfjs| / max |tfjs|): ${Object.entries(out).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
  checkAgreement('TF.js', out);
  return out;
}

async function readAndFree(p: Promise<Tensor>): Promise<void> {
  const t = await p;
  await t.read();
  t.dispose();
}

/**
 * Milliseconds per call of `make`, which records one kernel's work and returns its output. With
 * GPU timestamps (`gpu.canProfile`): the median GPU time of `reps`·`inner` calls. Without: `inner`
 * calls are recorded into one batch and waited for together, so that the submit and the wait are
 * not counted `inner` times, and the median over `reps` such batches is divided by `inner`.
 */
async function timeKernel(gpu: Gpu, reps: number, inner: number, make: () => Promise<Tensor>): Promise<number> {
  if (gpu.canProfile) {
    // GPU timestamps around each call: no submit or wait counted, and no overlap between calls.
    // After the first call (compilation), a GPU is kept busy for 200 ms so that it raises its clock.
    (await make()).dispose();
    const until = performance.now() + (gpu.adapter.isSoftware ? 0 : 200);
    while (performance.now() < until) {
      for (let i = 0; i < 10; i++) (await make()).dispose();
      await gpu.sync();
    }
    const runs: number[] = [];
    for (let i = 0; i < reps * inner; i++) {
      const p = await gpu.profile(async () => (await make()).dispose());
      runs.push(p.gpuMs);
    }
    return median(runs);
  }
  const batch = async () => {
    for (let i = 0; i < inner; i++) (await make()).dispose();
    await gpu.sync();
  };
  const t = await time(reps, batch);
  return t.median / inner;
}

/**
 * GFLOP/s of our conv kernels (forward, and input gradient as vanilla saliency needs) on each
 * distinct VGG16 layer shape at batch 1, for each tile in `tiles` (null: the choice by shape), and
 * of the matmul kernels on the classifier's shapes.
 */
async function kernelTable(gpu: Gpu, size: number, reps: number, tiles: (Conv2dTile | null)[], forced: Conv2dTile | null, log: (s: string) => void) {
  const out: { kernel: string; shape: string; tile: string; ms: number; gflops: number }[] = [];
  const inner = gpu.adapter.isSoftware ? 1 : 10;
  log(`kernels (batch 1; ${gpu.canProfile ? 'GPU timestamps, median' : `host clock${inner > 1 ? `, ${inner} calls per submit` : ''}`}):`);
  const seen = new Set<string>();
  const row = (kernel: string, shape: string, tile: string, ms: number, flops: number) => {
    const gflops = round(flops / ms / 1e6, 1);
    out.push({ kernel, shape, tile, ms: round(ms, 3), gflops });
    log(`  ${kernel.padEnd(18)} ${shape.padEnd(16)} ${tile.padEnd(14)} ${ms.toFixed(3).padStart(8)} ms  ${gflops} GFLOP/s`);
  };
  let s = size;
  let c = 3;
  try {
    for (const [co, n] of [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]] as const) {
      for (let i = 0; i < n; i++) {
        const key = `${c}→${co} @${s}`;
        if (!seen.has(key)) {
          seen.add(key);
          const x = await randomNormal(gpu, [1, c, s, s], { seed: 1 });
          const w = await randomNormal(gpu, [co, c, 3, 3], { seed: 2 });
          const dy = await randomNormal(gpu, [1, co, s, s], { seed: 3 });
          const flops = 2 * s * s * co * c * 9;
          for (const tile of tiles) {
            setConv2dTile(gpu, tile);
            const name = tile ? formatConv2dTile(tile) : 'auto';
            row('conv2d', key, name, await timeKernel(gpu, reps, inner, () => conv2dForward(x, w, null, { padding: 1 })), flops);
            row('conv2d-input-grad', key, name, await timeKernel(gpu, reps, inner, () => conv2dBackwardInput(dy, w, x.shape, { padding: 1 })), flops);
          }
          x.dispose();
          w.dispose();
          dy.dispose();
        }
        c = co;
      }
      s /= 2;
    }
  } finally {
    setConv2dTile(gpu, forced);
  }
  // The classifier's layers at batch 1, forward (x·wᵀ) and input gradient (dy·w).
  for (const [k, nOut] of [[512 * s * s, 4096], [4096, 4096], [4096, 1000]] as const) {
    const a = await randomNormal(gpu, [1, k], { seed: 4 });
    const b = await randomNormal(gpu, [nOut, k], { seed: 5, std: 0.01 });
    const dy = await randomNormal(gpu, [1, nOut], { seed: 6 });
    row('matmul', `1×${k}·${k}×${nOut}`, '', await timeKernel(gpu, reps, inner, () => matmul(a, b, { transB: true })), 2 * k * nOut);
    row('matmul', `1×${nOut}·${nOut}×${k}`, '', await timeKernel(gpu, reps, inner, () => matmul(dy, b)), 2 * k * nOut);
    a.dispose();
    b.dispose();
    dy.dispose();
  }
  return out;
}

/** D-RISE on the detector architecture (speed does not depend on the weights). */
async function driseSpeed(gpu: Gpu, masks: number, log: (s: string) => void) {
  const detector: Model = modelFromSpec(gpu, FASHION_DETECTOR, undefined, { seed: 1 });
  const image = await randomNormal(gpu, [1, 1, 96, 96], { seed: 3, mean: 0.3, std: 0.2 });
  const target = { box: [20, 20, 60, 60] as [number, number, number, number], objectness: 1, scores: new Array(10).fill(0.1) };
  const detectorFn = (b: Tensor) => detect(detector, b, { threshold: 0 });
  const warm = await runMethod('drise', detectorFn, image, { target, masks: 32, batchSize: 32 });
  warm.dispose();
  const map = await runMethod('drise', detectorFn, image, { target, masks, batchSize: 64 });
  const result = { masks, seconds: round(map.seconds, 2), masks_per_second: round(map.masksPerSecond, 1) };
  log(`D-RISE on fashion-detector (96×96): ${result.masks_per_second} masks/s (${masks} masks, batches of 64)`);
  map.dispose();
  image.dispose();
  detector.dispose();
  return result;
}

async function nodeGpu(): Promise<GPU> {
  const name = 'webgpu';
  const mod = (await import(name)) as { create: (f: string[]) => GPU };
  return mod.create([]);
}

function convArg(v: string): 'auto' | Conv2dStrategy {
  if (v !== 'auto' && v !== 'tiled' && v !== 'direct') throw new InvalidArgumentError('--conv must be auto, tiled or direct');
  return v;
}

function tileArg(v: string): Conv2dTile {
  try {
    const t = parseConv2dTile(v);
    checkConv2dTile(t);
    return t;
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function tilesArg(v: string): (Conv2dTile | null)[] {
  const names = v === 'all' ? ['auto', ...CONV2D_TILE_CANDIDATES] : v.split(',');
  return names.map((n) => (n.trim() === 'auto' ? null : tileArg(n)));
}

function intArg(v: string, name: string, zero = false): number {
  const n = decimal(v);
  if (!Number.isSafeInteger(n) || n < (zero ? 0 : 1)) throw new InvalidArgumentError(`${name} must be an integer ≥ ${zero ? 0 : 1}`);
  return n;
}

function fmt(v: number | null): string {
  return v === null ? '—'.padStart(8) : v.toFixed(1).padStart(8);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
