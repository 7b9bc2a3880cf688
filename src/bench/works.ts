/**
 * What the benchmarks time, shared by `npm run bench` (Node, src/bench/main.ts) and
 * `npm run bench:web` (Chromium, src/bench/web-page.ts): the VGG16-shaped network, the works in
 * our library and the same works in TF.js, the timer, and the agreement check. Nothing here
 * touches Node or the DOM, so the browser bundle takes it as is.
 */
import { noGrad } from '../autodiff/tape.js';
import type { Model } from '../nets/model.js';
import type { LayerSpec, ModelSpec } from '../nets/spec.js';
import type { Gpu } from '../runtime/gpu.js';
import type { Tensor } from '../runtime/tensor.js';
import { runMethod } from '../saliency/methods.js';

/** TF.js's API: the package in Node, the global `tf` of tf.min.js in a page. */
export type Tf = typeof import('@tensorflow/tfjs');
type TfTensor = import('@tensorflow/tfjs').Tensor;

/**
 * The works timed, in the order of the tables. SmoothGrad twice: in batches chosen from the memory
 * budget (the default), and all samples in one batch (TF.js runs one batch, against the first);
 * guided backprop is ours only.
 */
export const WORKS = ['forward', 'vanilla', 'gradcam', 'smoothgrad', 'smoothgrad-1batch', 'guided-backprop'] as const;
export type Work = (typeof WORKS)[number];

/** Works run without a memory budget: one batch, however large. */
export const UNBUDGETED: ReadonlySet<Work> = new Set<Work>(['smoothgrad-1batch']);

/** One work's row of a bench table (npm run bench and bench:web print and write the same). */
export interface WorkRow {
  work: Work;
  /** Medians (ms, read-back included); null where not timed. */
  ours_ms: number | null;
  tfjs_ms: number | null;
  /** TF.js / ours. */
  ratio: number | null;
  /** First calls, pipeline compilation included. */
  ours_first_ms: number | null;
  tfjs_first_ms: number | null;
  /** Why TF.js has no time for this work, when it failed. */
  tfjs_error?: string;
  /** Our buffer pool's peak over the work's calls: all it held, and what live tensors held (MiB). */
  ours_peak_mib: number;
  ours_live_peak_mib: number;
  /** TF.js: tf.profile's peak of live tensor bytes over one call; its buffer manager's allocation after the work (MiB). */
  tfjs_live_peak_mib: number | null;
  tfjs_pool_mib: number | null;
  /** How our batching method ran its items (the library's own 'info' line), for SmoothGrad. */
  batching?: string;
}

/** Grad-CAM's layer: VGG16's last conv block, after its ReLU. */
export const LAST_CONV = 'relu5_3';
/** The class every gradient is taken for. */
export const TARGET = 7;

/** VGG16 (configuration D) for a size×size RGB input, 1000 classes. */
export function vgg16Spec(size: number): ModelSpec {
  const layers: LayerSpec[] = [];
  let c = 3;
  let block = 1;
  for (const [out, n] of [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]] as const) {
    for (let i = 1; i <= n; i++) {
      layers.push({ name: `conv${block}_${i}`, type: 'conv2d', in: c, out, kernel: 3, padding: 1 });
      layers.push({ name: `relu${block}_${i}`, type: 'relu' });
      c = out;
    }
    layers.push({ name: `pool${block}`, type: 'maxpool2d', kernel: 2 });
    block++;
  }
  const s = size / 32;
  layers.push({ name: 'flatten', type: 'flatten' });
  layers.push({ name: 'fc6', type: 'linear', in: 512 * s * s, out: 4096 }, { name: 'relu6', type: 'relu' });
  layers.push({ name: 'fc7', type: 'linear', in: 4096, out: 4096 }, { name: 'relu7', type: 'relu' });
  layers.push({ name: 'fc8', type: 'linear', in: 4096, out: 1000 });
  return { name: `vgg16-${size}`, input: [3, size, size], layers };
}

/** The benchmark's input image, [1, 3, size, size] in [0, 1]. */
export function benchInput(size: number): Float32Array {
  return Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(i) * 0.5 + 0.5);
}

/** The same network in TF.js (NHWC), with our weights. */
export class TfVgg {
  private readonly w = new Map<string, TfTensor>();
  constructor(
    private readonly tf: Tf,
    private readonly spec: ModelSpec,
    weights: Record<string, { shape: number[]; data: Float32Array }>,
  ) {
    for (const [k, v] of Object.entries(weights)) {
      const t = tf.tensor(v.data, v.shape);
      this.w.set(k, v.shape.length === 4 ? t.transpose([2, 3, 1, 0]) : t); // conv OIHW → HWIO
    }
  }
  /** Up to and including `until` (a layer name), or the logits. */
  run(x: TfTensor, from = 0, until?: string, relu = (t: TfTensor) => this.tf.relu(t)): TfTensor {
    const tf = this.tf;
    let h = x;
    const layers = this.spec.layers;
    for (let i = from; i < layers.length; i++) {
      const l = layers[i]!;
      switch (l.type) {
        case 'conv2d':
          h = tf.conv2d(h as import('@tensorflow/tfjs').Tensor4D, this.w.get(`${l.name}.weight`) as import('@tensorflow/tfjs').Tensor4D, 1, 'same').add(this.w.get(`${l.name}.bias`)!);
          break;
        case 'relu':
          h = relu(h);
          break;
        case 'maxpool2d':
          h = tf.maxPool(h as import('@tensorflow/tfjs').Tensor4D, 2, 2, 'valid');
          break;
        case 'flatten':
          h = h.transpose([0, 3, 1, 2]).reshape([h.shape[0]!, -1]); // C,H,W order, as ours
          break;
        case 'linear':
          h = tf.matMul(h as import('@tensorflow/tfjs').Tensor2D, this.w.get(`${l.name}.weight`) as import('@tensorflow/tfjs').Tensor2D, false, true).add(this.w.get(`${l.name}.bias`)!);
          break;
        default:
          throw new Error(`bench: layer type ${l.type} not in VGG16`);
      }
      if (l.name === until) return h;
    }
    return h;
  }
  indexOf(name: string): number {
    return this.spec.layers.findIndex((l) => l.name === name);
  }
  dispose(): void {
    for (const t of this.w.values()) t.dispose();
    this.w.clear();
  }
}

/** Our works on `model` and `x`: each resolves with its result tensor (the caller reads and frees it). */
export function ourWorks(model: Model, x: Tensor, samples: number): Record<Work, () => Promise<Tensor>> {
  return {
    forward: () => noGrad(model.gpu, () => model.forward(x)),
    // The methods through the registry, as every front end runs them.
    vanilla: () => runMethod('vanilla', model, x, { target: TARGET }),
    gradcam: () => runMethod('gradCam', model, x, { target: TARGET, layer: LAST_CONV, upsample: 'none' }),
    smoothgrad: () => runMethod('smoothGrad', model, x, { target: TARGET, samples, seed: 1 }),
    'smoothgrad-1batch': () => runMethod('smoothGrad', model, x, { target: TARGET, samples, batchSize: samples, seed: 1 }),
    'guided-backprop': () => runMethod('guidedBackprop', model, x, { target: TARGET }),
  };
}

/**
 * The same works in TF.js (guided backprop aside: TF.js has none of its own). Each returns its
 * result (NHWC for input-shaped ones) and must be called inside `tf.tidy`.
 */
export function tfjsWorks(tf: Tf, net: TfVgg, xData: Float32Array, size: number, samples: number): Partial<Record<Work, () => TfTensor>> {
  const xt = tf.tensor(xData, [1, 3, size, size]).transpose([0, 2, 3, 1]);
  const onehot = tf.oneHot([TARGET], 1000).toFloat();
  const cut = net.indexOf(LAST_CONV);
  return {
    forward: () => net.run(xt),
    vanilla: () => tf.grad((xx) => net.run(xx).mul(onehot).sum())(xt),
    gradcam: () => {
      const a = net.run(xt, 0, LAST_CONV);
      const da = tf.grad((aa) => net.run(aa, cut + 1).mul(onehot).sum())(a);
      return tf.relu(a.mul(da.mean([1, 2], true)).sum(3));
    },
    smoothgrad: () => {
      const [min, max] = [0, 1];
      const noisy = xt.tile([samples, 1, 1, 1]).add(tf.randomNormal([samples, size, size, 3], 0, 0.15 * (max - min), 'float32', 1));
      const hot = onehot.tile([samples, 1]);
      return tf.grad((xx) => net.run(xx).mul(hot).sum())(noisy).mean(0);
    },
  };
}

/** A TF.js work's result as ours would lay it out: NHWC → NCHW for input-shaped results. */
export function tfjsResultInOurLayout(tf: Tf, work: () => TfTensor): TfTensor {
  return tf.tidy(() => {
    const r = work();
    return r.rank === 4 ? r.transpose([0, 3, 1, 2]) : r;
  });
}

/** Results further apart than this (relative to the largest value) mean two libraries did different work. */
export const AGREEMENT_TOLERANCE = 1e-3;

/** max |a − b| over max |b|: how far our result `a` is from a peer's `b`. */
export function relativeDifference(work: string, a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`${work}: ours has ${a.length} values, the peer ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale > 0 ? diff / scale : diff;
}

/** Throws when a work's result is further than AGREEMENT_TOLERANCE from the peer's. */
export function checkAgreement(peer: string, out: Record<string, number>): void {
  const bad = Object.entries(out).filter(([, v]) => !(v <= AGREEMENT_TOLERANCE));
  if (bad.length) throw new Error(`our results differ from ${peer}'s (${bad.map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')} > ${AGREEMENT_TOLERANCE}): the times compare different work`);
}

/**
 * Where each work's GPU time goes: one run of each under `gpu.profile`, the dispatches summed by
 * kernel. `gpu_ms` against the work's wall-clock median shows the time spent outside kernels
 * (recording, submits, waiting, read-back).
 */
export async function profileWorks(gpu: Gpu, works: Record<string, () => Promise<unknown>>, log: (s: string) => void) {
  const out: Record<string, { gpu_ms: number; dispatches: number; kernels: { name: string; count: number; ms: number }[] }> = {};
  log('GPU time per kernel (one run of each, GPU timestamps):');
  for (const [work, fn] of Object.entries(works)) {
    const p = await gpu.profile(fn); // its pipelines were compiled by the timed runs
    const byName = new Map<string, { name: string; count: number; ms: number }>();
    for (const k of p.kernels) {
      const e = byName.get(k.name) ?? { name: k.name, count: 0, ms: 0 };
      e.count++;
      e.ms += k.ms;
      byName.set(k.name, e);
    }
    const kernels = [...byName.values()].sort((a, b) => b.ms - a.ms).map((k) => ({ ...k, ms: round(k.ms, 3) }));
    out[work] = { gpu_ms: round(p.gpuMs, 3), dispatches: p.kernels.length, kernels };
    log(`  ${work}: ${round(p.gpuMs, 2)} ms in ${p.kernels.length} dispatches; ` + kernels.slice(0, 6).map((k) => `${k.name} ×${k.count} ${k.ms.toFixed(2)}`).join(', '));
  }
  return out;
}

export function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]! + (s.length % 2 ? 0 : (s[s.length / 2]! - s[Math.floor((s.length - 1) / 2)]!) / 2);
}

/**
 * `time` for several libraries doing the same work, taking turns: each one's first call, then its
 * warm-up, then `reps` rounds in which each library runs once. On a shared machine whose load
 * changes from minute to minute, a slow spell then falls on every library alike. A library that
 * throws gets its error instead of times and is left out of the later rounds; null: not run.
 */
export async function timeInTurn(
  reps: number,
  warmMs: number,
  warmup: number,
  fns: ((() => Promise<unknown>) | null)[],
): Promise<({ first: number; median: number } | Error | null)[]> {
  const out: ({ first: number; median: number } | Error | null)[] = fns.map(() => null);
  const runs: number[][] = fns.map(() => []);
  const call = async (i: number): Promise<number | null> => {
    if (!fns[i] || out[i] instanceof Error) return null;
    const t0 = performance.now();
    try {
      await fns[i]!();
    } catch (e) {
      out[i] = e instanceof Error ? e : new Error(String(e));
      return null;
    }
    return performance.now() - t0;
  };
  const firsts: (number | null)[] = [];
  for (let i = 0; i < fns.length; i++) {
    firsts.push(await call(i));
    const until = performance.now() + warmMs;
    for (let w = 0; w < warmup || performance.now() < until; w++) if ((await call(i)) === null) break;
  }
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < fns.length; i++) {
      const t = await call(i);
      if (t !== null) runs[i]!.push(t);
    }
  }
  return fns.map((f, i) => (out[i] instanceof Error ? out[i] : f ? { first: firsts[i]!, median: runs[i]!.length ? median(runs[i]!) : NaN } : null));
}

/**
 * The first call (compilation included), then the median of `reps` calls (NaN for none) after a
 * warm-up: `warmup` calls (default one), and on a GPU calls for at least `warmMs` more, because a
 * GPU lowers its clock while the first call compiles and takes a few hundred ms to raise it again.
 */
export async function time(reps: number, fn: () => Promise<unknown>, warmMs = 0, warmup = 1): Promise<{ first: number; median: number }> {
  let t0 = performance.now();
  await fn();
  const first = performance.now() - t0;
  const until = performance.now() + warmMs;
  for (let i = 0; i < warmup || performance.now() < until; i++) await fn();
  const runs: number[] = [];
  for (let i = 0; i < reps; i++) {
    t0 = performance.now();
    await fn();
    runs.push(performance.now() - t0);
  }
  return { first, median: runs.length ? median(runs) : NaN };
}

export function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
