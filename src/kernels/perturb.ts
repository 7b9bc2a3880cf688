/**
 * Perturbed images for the faithfulness metrics, made on the GPU from a ranking of each image's
 * pixels: `selectByRank` (deletion, insertion: shaders/perturb_ranked.wgsl) and
 * `imputeNoisyLinear` (ROAD's noisy linear imputation by conjugate gradients:
 * shaders/road_impute.wgsl).
 *
 * Both take the ranking as an int32 tensor [N, H·W] (rank of each pixel, 0 = most salient) and a
 * list of items, each (image, lo, hi, key): the output image b is source image `image` with the
 * pixels ranked in [lo, hi) changed; `key` identifies the item for ROAD's noise.
 */
import { ArgumentError, GpuError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms } from '../runtime/gpu.js';
import { empty, tensor, type Tensor } from '../runtime/tensor.js';
import { assertFloat, linearWorkgroups } from './common.js';

/** One perturbed image: source image, the rank range [lo, hi) changed, and a key for its noise. */
export interface RankItem {
  image: number;
  lo: number;
  hi: number;
  /** ROAD: identifies the item's noise (same key, same noise); default 0. */
  key?: number;
}

function checkRanks(op: string, ranks: Tensor, n: number, hw: number): void {
  if (ranks.dtype !== 'int32' || ranks.rank !== 2 || ranks.shape[0] !== n || ranks.shape[1] !== hw) {
    throw new ShapeError(`${op}: ranks must be int32 [${n}, ${hw}], got ${ranks.describe()}`);
  }
}

function itemTensor(op: string, ranks: Tensor, items: readonly RankItem[]): Tensor {
  const [n, hw] = ranks.shape as [number, number];
  if (items.length === 0) throw new ArgumentError(`${op}: no items`);
  const data = new Int32Array(4 * items.length);
  items.forEach((it, b) => {
    const { image, lo, hi, key = 0 } = it;
    if (![image, lo, hi, key].every(Number.isInteger) || image < 0 || image >= n || lo < 0 || hi < lo || hi > hw || key < 0 || key > 0x7fffffff) {
      throw new ArgumentError(`${op}: item ${b} (image ${image}, ranks [${lo}, ${hi}), key ${key}) is out of range for ${n} images of ${hw} pixels`);
    }
    data.set([image, lo, hi, key], 4 * b);
  });
  return tensor(ranks.gpu, data, [items.length, 4], 'int32');
}

/**
 * For each item b: image b of the result takes `inside`'s pixel where the pixel's rank lies in
 * [lo, hi), and `outside`'s elsewhere (all channels together). `inside` and `outside` are
 * [N, C, H, W] (one per source image) or [1, C, H, W] (shared). Returns [B, C, H, W].
 */
export async function selectByRank(inside: Tensor, outside: Tensor, ranks: Tensor, items: readonly RankItem[]): Promise<Tensor> {
  const op = 'selectByRank';
  assertFloat(op, 'inside', inside);
  assertFloat(op, 'outside', outside);
  const n = ranks.shape[0]!;
  const [, c, h, w] = (inside.rank === 4 ? inside.shape : outside.shape) as [number, number, number, number];
  for (const [name, t] of [['inside', inside], ['outside', outside]] as const) {
    if (t.rank !== 4 || (t.shape[0] !== 1 && t.shape[0] !== n) || t.shape[1] !== c || t.shape[2] !== h || t.shape[3] !== w) {
      throw new ShapeError(`${op}: ${name} must be [${n} or 1, ${c}, ${h}, ${w}], got ${formatShape(t.shape)}`);
    }
  }
  checkRanks(op, ranks, n, h * w);
  const gpu = inside.gpu;
  const list = itemTensor(op, ranks, items);
  try {
    const kernel = await gpu.kernel('perturb_ranked');
    const out = empty(gpu, [items.length, c, h, w]);
    gpu.dispatch(kernel, {
      uniforms: new Uniforms().u32(out.size, c, h * w, inside.shape[0] === n && n > 1 ? 1 : 0, outside.shape[0] === n && n > 1 ? 1 : 0),
      buffers: [list, ranks, inside, outside, out],
      workgroups: linearWorkgroups(gpu, out.size, 256),
    });
    return out;
  } finally {
    list.dispose();
  }
}

export interface ImputeOptions {
  /** σ of the Gaussian noise added to the imputed pixels (ROAD: 0.01). */
  sigma: number;
  /** Seed of the noise. */
  seed: number;
  /** Stop at relative residual ‖b − Av‖/‖b‖ ≤ tolerance (default 1e-5). */
  tolerance?: number;
  /** CG steps per dispatch before the state is read back (default 64). */
  iterationsPerDispatch?: number;
}

export interface ImputeResult {
  /** [B, C, H, W]: the source images with the removed pixels imputed (plus noise). */
  images: Tensor;
  /** CG steps each system took, [B·C] (system b·C + c). */
  iterations: number[];
}

/**
 * ROAD's noisy linear imputation: for each item, the pixels ranked in [lo, hi) of its source image
 * x [N, C, H, W] are removed and replaced, channel by channel, by the solution of the
 * neighbour-average equations (see shaders/road_impute.wgsl), plus N(0, σ²) noise.
 */
export async function imputeNoisyLinear(x: Tensor, ranks: Tensor, items: readonly RankItem[], options: ImputeOptions): Promise<ImputeResult> {
  const op = 'imputeNoisyLinear';
  assertFloat(op, 'x', x);
  if (x.rank !== 4) throw new ShapeError(`${op}: x must be [N, C, H, W], got ${formatShape(x.shape)}`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  checkRanks(op, ranks, n, h * w);
  const { sigma, seed, tolerance = 1e-5, iterationsPerDispatch = 64 } = options;
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new ArgumentError(`${op}: sigma must be a finite number ≥ 0, got ${sigma}`);
  if (!Number.isInteger(seed)) throw new ArgumentError(`${op}: seed must be an integer, got ${seed}`);
  if (!(tolerance > 0 && tolerance < 1)) throw new ArgumentError(`${op}: tolerance must be in (0, 1), got ${tolerance}`);
  if (!Number.isInteger(iterationsPerDispatch) || iterationsPerDispatch < 1) {
    throw new ArgumentError(`${op}: iterationsPerDispatch must be a positive integer, got ${iterationsPerDispatch}`);
  }
  const gpu = x.gpu;
  const systems = items.length * c;
  const maxWg = gpu.limits.maxComputeWorkgroupsPerDimension;
  const workgroups: [number, number] = systems <= maxWg ? [systems, 1] : [maxWg, Math.ceil(systems / maxWg)];
  const list = itemTensor(op, ranks, items);
  const kernel = await gpu.kernel('road_impute').catch((e: unknown) => {
    list.dispose();
    throw e;
  });
  const out = empty(gpu, [items.length, c, h, w]);
  const work = empty(gpu, [3, items.length, c, h * w]);
  const state = empty(gpu, [systems, 4]);
  try {
    // In exact arithmetic CG ends within as many steps as there are unknowns; rounding can add a
    // few. A system still short of the tolerance after twice that has stalled.
    const cap = 2 * h * w + 2 * iterationsPerDispatch;
    let status: Float32Array;
    for (let done = 0; ; done += iterationsPerDispatch) {
      gpu.dispatch(kernel, {
        uniforms: new Uniforms().u32(systems, c, h, w, done === 0 ? 1 : 0, iterationsPerDispatch, seed >>> 0).f32(tolerance * tolerance, sigma),
        buffers: [list, x, ranks, out, work, state],
        workgroups,
      });
      status = await state.read();
      let open = 0;
      for (let s = 0; s < systems; s++) if (status[4 * s + 3] !== 1) open++;
      if (open === 0) break;
      if (done + iterationsPerDispatch >= cap) {
        throw new GpuError(`${op}: conjugate gradients did not reach a relative residual of ${tolerance} within ${cap} steps on ${open} of ${systems} systems`);
      }
    }
    const iterations = Array.from({ length: systems }, (_, s) => status[4 * s + 2]!);
    return { images: out, iterations };
  } catch (e) {
    out.dispose();
    throw e;
  } finally {
    list.dispose();
    work.dispose();
    state.dispose();
  }
}
