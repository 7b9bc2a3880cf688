#!/usr/bin/env node
/**
 * `npm run bench`: our library against TF.js's WebGPU backend, in one process, on the same Dawn
 * adapter, on a VGG16-shaped network with random fp32 weights. Times (medians after warm-up, each
 * including reading the result back): forward, vanilla gradient, Grad-CAM at the last conv layer,
 * SmoothGrad with 50 samples in batches chosen from the memory budget and in one batch (ours;
 * TF.js runs one batch), guided backprop (ours only). Also: the first call of each (pipeline
 * compilation included), each work's peak GPU memory, conv/matmul GFLOP/s per VGG16 layer shape,
 * D-RISE masks per second on the detector, and deletion + insertion curves per second on
 * fashion-vgg, batched against one forward pass per step.
 *
 * Memory, per work: ours is the buffer pool (which holds every tensor, the model's weights
 * included), emptied of free buffers before the work (`gpu.trim()`, `gpu.resetPeak()`): `peak` is
 * the most GPU memory it held during the work's calls (buffers in use and free ones kept for
 * reuse), `live` the most held by live tensors. TF.js's `live` is `tf.profile`'s peakBytes over one
 * more call of the work (the bytes of its live tensors, the weights included); its `pool` is the
 * bytes its WebGPU buffer manager has allocated after the work, which only grows (freed buffers
 * are kept), so it is the most TF.js has held so far in the run, all works together.
 */
import { createRequire } from 'node:module';
import { Command, InvalidArgumentError } from 'commander';
import { decimal } from '../cli/parse.js';
import { noGrad } from '../autodiff/tape.js';
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
  setConv2dDirectBlock,
  parseConv2dDirectBlock,
  conv2dDirectBlock,
  formatConv2dDirectBlock,
  type Conv2dDirectBlock,
  type Conv2dStrategy,
  type Conv2dTile,
} from '../kernels/conv2d.js';
import { matmul } from '../kernels/matmul.js';
import { randomNormal } from '../kernels/random.js';
import { detect, FASHION_DETECTOR } from '../nets/detector.js';
import { loadFashionMnist } from '../nets/idx.js';
import { loadModel } from '../nets/zoo.js';
import { modelFromSpec, type Model } from '../nets/model.js';
import { initGpu, type Gpu } from '../runtime/gpu.js';
import { MiB, formatBytes } from '../runtime/memory.js';
import { empty, tensor, type Tensor } from '../runtime/tensor.js';
import * as metrics from '../saliency/metrics/index.js';
import { runMethod } from '../saliency/methods.js';
import { batchSpeed } from './batch.js';
import {
  AGREEMENT_TOLERANCE,
  TfVgg,
  UNBUDGETED,
  WORKS,
  benchInput,
  checkAgreement,
  median,
  ourWorks,
  profileWorks,
  relativeDifference,
  round,
  tfjsResultInOurLayout,
  tfjsWorks,
  time,
  timeInTurn,
  vgg16Spec,
  type Tf,
  type Work,
  type WorkRow,
} from './works.js';

interface Options {
  size?: number;
  reps?: number;
  json?: boolean;
  samples: number;
  tfjs: boolean;
  peer?: string[];
  kernels: boolean;
  drise: number;
  batch: number;
  conv: 'auto' | Conv2dStrategy;
  tile?: Conv2dTile;
  directBlock?: Conv2dDirectBlock;
  tiles?: (Conv2dTile | null)[];
  profile: boolean;
  splitK: boolean;
  metrics?: number;
  budget?: number;
  works?: Work[];
}

async function main(): Promise<void> {
  const program = new Command()
    .name('bench')
    .description('benchmark webgpu-saliency against TF.js WebGPU on the same adapter (VGG16 shape, random weights)')
    .option('--size <px>', 'input side (multiple of 32); default 224 on a GPU, 64 on a software adapter', (v) => intArg(v, '--size'))
    .option('--reps <n>', 'timed repetitions after one warm-up; default 10 on a GPU, 3 on a software adapter', (v) => intArg(v, '--reps'))
    .option('--samples <n>', 'SmoothGrad samples', (v) => intArg(v, '--samples'), 50)
    .option('--no-tfjs', 'time our library only')
    .option('--peer <names>', "the peers to time against, comma-separated: tfjs (TF.js WebGPU, every work; the default) and ort (ONNX Runtime's forward pass on the same network exported to ONNX, on its WebGPU provider where it offers one, else its CPU one)", peerArg)
    .option('--no-kernels', 'skip the per-kernel GFLOP/s table')
    .option('--drise <masks>', 'D-RISE masks to time on the detector (0 = skip)', (v) => intArg(v, '--drise', true), 256)
    .option('--batch <images>', "images for the 'saliency batch' speed (Grad-CAM on fashion-vgg, batch 1 and auto; 0 = skip)", (v) => intArg(v, '--batch', true), 192)
    .option('--metrics <images>', 'deletion + insertion curves of every method on fashion-vgg for this many Fashion-MNIST test images, batched and one forward pass per step (0 = skip); default 100 on a GPU, 10 on a software adapter', (v) => intArg(v, '--metrics', true))
    .option('--conv <kind>', "conv2d kernels: auto (direct on a CPU adapter, tiled on a GPU), tiled or direct", convArg, 'auto')
    .option('--tile <TMxTNxTK/RMxRN>', 'tiled conv2d kernels: use this one tile for every layer (default: chosen by shape)', tileArg)
    .option('--direct-block <PxC>', 'direct conv2d kernels: each invocation computes P pixels × up to C channels (default: 8x8, 4x16 on SwiftShader)', directBlockArg)
    .option('--tiles <list>', "kernel table: compare these comma-separated tiles ('all': a built-in list; 'auto': the choice by shape; default: auto)", tilesArg)
    .option('--no-split-k', 'tiled conv2d kernels: never split K (deep layers at batch 1 otherwise split it to fill the GPU)')
    .option('--no-profile', 'skip the per-kernel GPU time breakdown of each work (GPU timestamps)')
    .option('--budget <MiB>', "our GPU memory budget in MiB (default: initGpu's, 2048 in Node or a quarter of RAM on a software adapter)", (v) => intArg(v, '--budget'))
    .option('--works <list>', `comma-separated works to time (default: all of ${WORKS.join(', ')})`, worksArg)
    .option('--json', 'print one JSON object instead of tables');
  program.parse(process.argv);
  const o = program.opts<Options>();
  const log = (s: string) => {
    if (!o.json) process.stdout.write(s + '\n');
  };

  // The library's 'info' lines say how a batching method ran; the last one per method is kept.
  const batching = new Map<string, string>();
  const gpu = await initGpu({
    ...(o.budget !== undefined ? { memoryBudget: o.budget * MiB } : {}),
    log: (message, level) => {
      const method = /^(\w+): /.exec(message)?.[1];
      if (level === 'info' && method) batching.set(method, message);
      if (level === 'warning') process.stderr.write(`bench: ${message}\n`);
    },
  });
  if (o.conv !== 'auto') setConv2dStrategy(gpu, o.conv);
  if ((o.tile || o.tiles?.some(Boolean)) && conv2dStrategy(gpu) !== 'tiled') {
    throw new InvalidArgumentError(`--tile and --tiles choose tiles of the tiled conv kernels; this adapter uses the ${conv2dStrategy(gpu)} ones: add --conv tiled`);
  }
  if (o.directBlock && conv2dStrategy(gpu) !== 'direct') {
    throw new InvalidArgumentError(`--direct-block sets the block of the direct conv kernels; this adapter uses the ${conv2dStrategy(gpu)} ones: add --conv direct`);
  }
  if (o.tile) setConv2dTile(gpu, o.tile);
  if (o.directBlock) setConv2dDirectBlock(gpu, o.directBlock);
  setConv2dSplitK(gpu, o.splitK);
  const conv = conv2dStrategy(gpu);
  const block = conv2dDirectBlock(gpu);
  const convText = conv === 'direct' ? `direct conv kernels (block ${block.pixels}×${block.channels})` : `tiled conv kernels${o.tile ? ` (tile ${formatConv2dTile(o.tile)})` : ''}`;
  const size = o.size ?? (gpu.adapter.isSoftware ? 64 : 224);
  const reps = o.reps ?? (gpu.adapter.isSoftware ? 3 : 10);
  const warmMs = gpu.adapter.isSoftware ? 0 : 500;
  if (size % 32) throw new InvalidArgumentError('--size must be a multiple of 32');
  log(`adapter: ${gpu.adapter.name}; VGG16 at ${size}×${size}, batch 1, fp32; ${convText}${o.splitK ? '' : ', K never split'}; medians of ${reps} after a warm-up${warmMs ? ` (≥ ${warmMs} ms)` : ""}, read-back included; our memory budget ${formatBytes(gpu.memoryBudget)}`);

  const spec = vgg16Spec(size);
  const model = modelFromSpec(gpu, spec, undefined, { seed: 1 });
  const xData = benchInput(size);
  const x = tensor(gpu, xData, [1, 3, size, size]);
  const peers = o.peer ?? ['tfjs'];
  let tf: Tf | null = null;
  let tfNet: TfVgg | null = null;
  if (o.tfjs && peers.includes('tfjs')) {
    const require = createRequire(import.meta.url);
    (globalThis as { navigator?: unknown }).navigator = { gpu: await nodeGpu() };
    tf = require('@tensorflow/tfjs') as Tf;
    require('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend');
    tfNet = new TfVgg(tf, spec, await model.exportWeights());
  }
  const rows: WorkRow[] = [];
  const ourWork: Record<string, () => Promise<Tensor>> = ourWorks(model, x, o.samples);
  const ours = Object.fromEntries(Object.entries(ourWork).map(([k, f]) => [k, () => readAndFree(f())]));
  // TF.js's results (NHWC), made inside tf.tidy; timed with the read-back, like ours.
  const theirWork: Record<string, () => import('@tensorflow/tfjs').Tensor> = {};
  const theirs: Record<string, (() => Promise<unknown>) | undefined> = {};
  if (tf && tfNet) {
    const t = tf;
    const net = tfNet;
    Object.assign(theirWork, tfjsWorks(t, net, xData, size, o.samples));
    for (const [k, f] of Object.entries(theirWork)) {
      theirs[k] = async () => {
        const r = t.tidy(f);
        await r.data();
        r.dispose();
      };
    }
  }

  const budget = gpu.memoryBudget;
  const works: readonly Work[] = o.works ?? WORKS;
  for (const work of works) {
    // Each work's memory from an empty pool: the model's weights and what the work adds.
    if (UNBUDGETED.has(work)) gpu.setMemoryBudget(Infinity);
    gpu.trim();
    gpu.resetPeak();
    batching.delete('smoothGrad');
    const a = await time(reps, ours[work]!, warmMs);
    const mem = gpu.memory();
    gpu.setMemoryBudget(budget);
    // TF.js may fail where we do not (e.g. a batch of 50 at 224×224 over its buffer limits): the
    // row then says why instead of ending the benchmark.
    let b: { first: number; median: number } | null = null;
    let tfjsError: string | undefined;
    let tfjsLive: number | null = null;
    let tfjsPool: number | null = null;
    if (theirs[work] && tf) {
      try {
        b = await time(reps, theirs[work]!, warmMs);
        const t = tf;
        const profile = await t.profile(() => t.tidy(theirWork[work]!));
        (profile.result as import('@tensorflow/tfjs').Tensor).dispose();
        tfjsLive = profile.peakBytes;
        tfjsPool = (tf.memory() as { numBytesAllocatedInGPU?: number }).numBytesAllocatedInGPU ?? null;
      } catch (e) {
        tfjsError = (e as Error).message.split('\n')[0];
      }
    }
    const row: WorkRow = {
      work,
      ours_ms: round(a.median),
      tfjs_ms: b ? round(b.median) : null,
      ratio: b ? round(b.median / a.median, 2) : null,
      ours_first_ms: round(a.first),
      tfjs_first_ms: b ? round(b.first) : null,
      ...(tfjsError ? { tfjs_error: tfjsError } : {}),
      ours_peak_mib: round(mem.peakBytes / MiB),
      ours_live_peak_mib: round(mem.peakInUseBytes / MiB),
      tfjs_live_peak_mib: tfjsLive === null ? null : round(tfjsLive / MiB),
      tfjs_pool_mib: tfjsPool === null ? null : round(tfjsPool / MiB),
      ...(work.startsWith('smoothgrad') && batching.has('smoothGrad') ? { batching: batching.get('smoothGrad')! } : {}),
    };
    rows.push(row);
    log(
      `${work.padEnd(18)} ours ${fmt(row.ours_ms)} ms   tfjs ${fmt(row.tfjs_ms)} ms   tfjs/ours ${String(row.ratio ?? '—').padEnd(5)}` +
        `   peak MiB: ours ${row.ours_peak_mib} (live ${row.ours_live_peak_mib}), tfjs live ${row.tfjs_live_peak_mib ?? '—'} (pool ${row.tfjs_pool_mib ?? '—'})` +
        `   (first call: ours ${fmt(row.ours_first_ms)}, tfjs ${fmt(row.tfjs_first_ms)})` +
        (row.batching ? `\n${''.padEnd(18)} ${row.batching}` : '') +
        (tfjsError ? `\n${''.padEnd(18)} tfjs failed: ${tfjsError}` : ''),
    );
  }
  const auto = rows.find((r) => r.work === 'smoothgrad');
  const single = rows.find((r) => r.work === 'smoothgrad-1batch');
  const smoothgradVsOneBatch = auto?.ours_ms && single?.ours_ms ? round(auto.ours_ms / single.ours_ms, 3) : null;
  if (smoothgradVsOneBatch !== null) {
    log(`SmoothGrad in batches within the budget: ${smoothgradVsOneBatch}× the time of one batch; peak ${auto!.ours_peak_mib} MiB against ${single!.ours_peak_mib} MiB`);
  }
  const ort = peers.includes('ort') ? await ortForward(model, ours.forward!, xData, size, reps, warmMs, log) : null;
  // Both libraries computed the same thing: each result once more, compared (after the timings, so
  // that the first calls above still include compiling).
  const agreement = tf ? await agreeWithTfjs(tf, ourWork, theirWork, rows, log) : null;
  const memory = {
    budget_mib: Number.isFinite(budget) ? round(budget / MiB) : null,
    ours_peak_mib: Math.max(...rows.map((r) => r.ours_peak_mib)),
    tfjs_live_peak_mib: tf ? Math.max(0, ...rows.map((r) => r.tfjs_live_peak_mib ?? 0)) : null,
    tfjs_pool_mib: tf ? round(((tf.memory() as { numBytesAllocatedInGPU?: number }).numBytesAllocatedInGPU ?? 0) / MiB) : null,
  };
  log(
    `GPU memory (MiB): ours peak ${memory.ours_peak_mib} over all works (buffer pool, budget ${memory.budget_mib ?? 'none'}); ` +
      `tfjs live tensors peak ${memory.tfjs_live_peak_mib ?? '—'}, its buffer manager ${memory.tfjs_pool_mib ?? '—'} allocated at the end`,
  );

  const profiles = o.profile && gpu.canProfile ? await profileWorks(gpu, Object.fromEntries(works.map((w) => [w, ours[w]!])), log) : null;
  const kernels = o.kernels ? await kernelTable(gpu, size, reps, o.tile ? [o.tile] : (o.tiles ?? [null]), o.tile ?? null, log) : [];
  const driseResult = o.drise > 0 ? await driseSpeed(gpu, o.drise, log) : null;
  const batchResult = o.batch > 0 ? await batchSpeed(o.batch, log) : null;
  const metricsImages = o.metrics ?? (gpu.adapter.isSoftware ? 10 : 100);
  const metricsResult = metricsImages > 0 ? await metricsSpeed(gpu, metricsImages, log) : null;
  if (o.json) {
    process.stdout.write(
      JSON.stringify({ adapter: gpu.adapter.name, size, reps, conv, tile: o.tile ? formatConv2dTile(o.tile) : 'auto', direct_block: conv === 'direct' ? formatConv2dDirectBlock(block) : null, split_k: o.splitK, results: rows, smoothgrad_vs_one_batch: smoothgradVsOneBatch, agreement, memory, profiles, kernels, drise: driseResult, batch: batchResult, metrics: metricsResult, ort, date: new Date().toISOString() }) + '\n',
    );
  }
  model.dispose();
  gpu.destroy();
}

function peerArg(v: string): string[] {
  const names = v.split(',').map((p) => p.trim());
  for (const p of names) if (p !== 'tfjs' && p !== 'ort') throw new InvalidArgumentError(`unknown peer '${p}'; peers: tfjs, ort`);
  return names;
}

/**
 * ONNX Runtime's forward pass on our network (exported to ONNX), timed like ours, its output checked
 * against ours first (the times must compare the same work).
 */
async function ortForward(
  model: Model,
  oursForward: () => Promise<unknown>,
  xData: Float32Array,
  size: number,
  reps: number,
  warmMs: number,
  log: (s: string) => void,
): Promise<{ provider: string; webgpu_error?: string; ours_ms: number; ort_ms: number; ort_first_ms: number; ratio: number; agreement: number }> {
  const { ortPeer } = await import('./ort.js');
  const peer = await ortPeer(model);
  try {
    const shape = [1, 3, size, size];
    const theirs = await peer.forward(xData, shape);
    const x = tensor(model.gpu, xData, shape);
    const y = await noGrad(model.gpu, () => model.forward(x));
    const mine = await y.read();
    x.dispose();
    y.dispose();
    const agreement = relativeDifference('forward', mine, theirs);
    checkAgreement('ONNX Runtime', { forward: agreement });
    // Taking turns, so that the load of a shared machine weighs on both alike.
    const [a, b] = await timeInTurn(reps, warmMs, 1, [oursForward, () => peer.forward(xData, shape)]);
    if (!a || a instanceof Error) throw a ?? new Error('forward: not run');
    if (!b || b instanceof Error) throw b ?? new Error('ONNX Runtime: not run');
    const row = { provider: peer.provider, ...(peer.webgpuError ? { webgpu_error: peer.webgpuError } : {}), ours_ms: round(a.median), ort_ms: round(b.median), ort_first_ms: round(b.first), ratio: round(b.median / a.median, 2), agreement };
    log(
      `${'forward'.padEnd(16)} ours ${fmt(row.ours_ms)} ms   ort (${peer.provider}) ${fmt(row.ort_ms)} ms   ort/ours ${row.ratio}   (ort's first call ${fmt(row.ort_first_ms)} ms; max |ours − ort| / max |ort| ${agreement.toExponential(1)})` +
        (peer.webgpuError ? `\n${''.padEnd(16)} ONNX Runtime's WebGPU provider is not used: ${peer.webgpuError}` : ''),
    );
    return row;
  } finally {
    await peer.release();
  }
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
  rows: WorkRow[],
  log: (s: string) => void,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const work of ['forward', 'vanilla', 'gradcam']) {
    const row = rows.find((r) => r.work === work);
    if (!theirWork[work] || !row || row.tfjs_error) continue;
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
  // One detector function for both calls: the warm-up measures the memory per mask, so the timed
  // call runs its batches ('auto', from the memory budget) from the start.
  const run = (b: Tensor) => detect(detector, b, { threshold: 0 });
  const warm = await runMethod('drise', run, image, { target, masks: Math.min(masks, 64) });
  warm.dispose();
  const map = await runMethod('drise', run, image, { target, masks });
  const sizes = [...new Set(map.batches)].sort((a, b) => b - a);
  const result = { masks, seconds: round(map.seconds, 2), masks_per_second: round(map.masksPerSecond, 1), batches: map.batches };
  log(`D-RISE on fashion-detector (96×96): ${result.masks_per_second} masks/s (${masks} masks in ${map.batches.length} batch${map.batches.length === 1 ? '' : 'es'} of ${sizes.join('/')})`);
  map.dispose();
  image.dispose();
  detector.dispose();
  return result;
}

/**
 * Deletion and insertion curves of every method fashion-vgg supports (all but CAM, which needs a
 * GAP head) on the first `images` Fashion-MNIST test images: the library's batched metrics against
 * the same curves computed one forward pass per step (each perturbed image built on the CPU,
 * uploaded, scored and read back alone, as a plain loop does it). Both must give the same curves.
 */
async function metricsSpeed(gpu: Gpu, images: number, log: (s: string) => void) {
  let test: { images: Float32Array };
  let model: Model;
  try {
    test = loadFashionMnist('test', undefined, { limit: images });
    model = await loadModel(gpu, 'fashion-vgg');
  } catch (e) {
    log(`metrics: skipped (${(e as Error).message})`);
    return { skipped: (e as Error).message };
  }
  const methods = metrics.METRIC_METHODS.filter((m) => m !== 'cam');
  const n = images;
  const [h, w] = [28, 28];
  const x = tensor(gpu, test.images.subarray(0, n * h * w), [n, 1, h, w]);
  const { classes } = await metrics.classScores(model, x);
  const maps = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const m of methods) {
    const method = metrics.metricMethod('bench', m);
    const raw = await method.run(model, x, { target: classes, ...(m === 'smoothGrad' ? { samples: 10, batchSize: 10 } : {}) });
    maps.set(m, { data: await raw.read(), shape: [...raw.shape] });
    raw.dispose();
  }
  const kindOf = (m: string) => metrics.metricMethod('bench', m).kind;
  const curves = 2 * methods.length * n;

  // Batched, as the library runs them; forward images counted (steps that change nothing are skipped).
  let forwardImages = 0;
  const counted = Object.create(model) as Model;
  counted.forward = (t, opts) => {
    forwardImages += t.shape[0]!;
    return model.forward(t, opts);
  };
  const batched = new Map<string, number[][]>();
  // Warm-up on the first image (pipelines compiled), not timed.
  const first = tensor(gpu, test.images.subarray(0, h * w), [1, 1, h, w]);
  for (const metric of ['deletion', 'insertion'] as const) {
    await metrics[metric](model, first, { data: maps.get(methods[0]!)!.data.slice(0, h * w), shape: [1, 1, h, w] }, { target: classes[0]!, kind: 'attribution' });
  }
  first.dispose();
  const cpuSeconds = (since: NodeJS.CpuUsage) => {
    const u = process.cpuUsage(since);
    return (u.user + u.system) / 1e6;
  };
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  for (const m of methods) {
    for (const metric of ['deletion', 'insertion'] as const) {
      const r = await metrics[metric](counted, x, maps.get(m)!, { target: classes, kind: kindOf(m) });
      batched.set(`${m} ${metric}`, r.map((c) => c.curve));
    }
  }
  const batchedSeconds = (performance.now() - t0) / 1000;
  const batchedCpu = cpuSeconds(cpu0);

  // One forward pass per step.
  const xs = await x.read();
  const blur = await metrics.blurImages(x);
  const blurred = await blur.read();
  blur.dispose();
  let worst = 0;
  let loopForwards = 0;
  cpu0 = process.cpuUsage();
  t0 = performance.now();
  for (const m of methods) {
    const values = metrics.reduceMap(maps.get(m)!, kindOf(m), h, w);
    for (const metric of ['deletion', 'insertion'] as const) {
      for (let i = 0; i < n; i++) {
        const { order } = metrics.rankPixels(values[i]!);
        const image = xs.slice(i * h * w, (i + 1) * h * w);
        const base = metric === 'deletion' ? new Float32Array(h * w) : blurred.slice(i * h * w, (i + 1) * h * w);
        const start = metric === 'deletion' ? image : base.slice();
        const curve: number[] = [];
        for (let k = 0; k <= h; k++) {
          for (let j = (k - 1) * w; k > 0 && j < k * w; j++) start[order[j]!] = metric === 'deletion' ? 0 : image[order[j]!]!;
          const t = tensor(gpu, start, [1, 1, h, w]);
          const out = await noGrad(gpu, () => model.forward(t, { logits: true }));
          const logits = await out.read();
          out.dispose();
          t.dispose();
          loopForwards++;
          const top = Math.max(...logits);
          const sum = logits.reduce((a, v) => a + Math.exp(v - top), 0);
          curve.push(Math.exp(logits[classes[i]!]! - top) / sum);
        }
        const ours = batched.get(`${m} ${metric}`)![i]!;
        for (let k = 0; k <= h; k++) worst = Math.max(worst, Math.abs(curve[k]! - ours[k]!));
      }
    }
  }
  const loopSeconds = (performance.now() - t0) / 1000;
  const loopCpu = cpuSeconds(cpu0);
  x.dispose();
  model.dispose();
  if (worst > AGREEMENT_TOLERANCE) throw new Error(`metrics: the batched curves differ from the one-at-a-time ones by ${worst.toExponential(2)}`);
  const result = {
    model: 'fashion-vgg',
    images: n,
    methods,
    curves,
    points: curves * (h + 1),
    batched: { seconds: round(batchedSeconds, 2), cpu_seconds: round(batchedCpu, 2), curves_per_second: round(curves / batchedSeconds, 2), forward_images: forwardImages },
    one_at_a_time: { seconds: round(loopSeconds, 2), cpu_seconds: round(loopCpu, 2), curves_per_second: round(curves / loopSeconds, 2), forward_images: loopForwards },
    ratio: round(loopSeconds / batchedSeconds, 2),
    cpu_ratio: round(loopCpu / batchedCpu, 2),
    agreement: worst,
  };
  log(
    `metrics: deletion + insertion curves on fashion-vgg, ${methods.length} methods × ${n} images: batched ${result.batched.curves_per_second} curves/s ` +
      `(${forwardImages} forward images for ${result.points} points: unchanged steps skipped), one forward pass per step ${result.one_at_a_time.curves_per_second} curves/s; ` +
      `batched/loop ${result.ratio}× in wall-clock time, ${result.cpu_ratio}× in CPU time (curves agree within ${worst.toExponential(1)})`,
  );
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

function directBlockArg(v: string): Conv2dDirectBlock {
  try {
    return parseConv2dDirectBlock(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
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

function worksArg(v: string): Work[] {
  const names = v.split(',').map((w) => w.trim());
  const unknown = names.filter((w) => !(WORKS as readonly string[]).includes(w));
  if (unknown.length || names.length === 0) throw new InvalidArgumentError(`--works takes a comma-separated list of ${WORKS.join(', ')}; got ${JSON.stringify(v)}`);
  return names as Work[];
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
