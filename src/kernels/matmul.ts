/**
 * Matrix products: a tiled GEMM with fused bias and activation (matmul, linearForward), matvec
 * kernels for few rows (a batch-1 linear layer and its input gradient; shaders/matvec*.wgsl), and
 * the column-sum reduction used for bias gradients.
 */
import { ArgumentError, ShapeError, formatShape } from '../runtime/errors.js';
import { Uniforms } from '../runtime/gpu.js';
import { empty, type Tensor } from '../runtime/tensor.js';
import { ACTIVATION_WGSL, assertFloat, linearWorkgroups, type Activation } from './common.js';
import { checkActivation } from './activation.js';

export interface MatmulOptions {
  /** Read a as [K, M] (its transpose is used); no copy is made. */
  transA?: boolean;
  /** Read b as [N, K] (its transpose is used), e.g. PyTorch-layout weights [out, in]. */
  transB?: boolean;
  /** N values added to every row of the result (one per output column). */
  bias?: Tensor | null;
  /** Applied to the result, after the bias. Default 'none'. */
  activation?: Activation;
  /** Leaky ReLU slope. Default 0.01. */
  alpha?: number;
}

const TILE = 64;
/** Products with at most this many rows use the matvec kernel (shaders/matvec.wgsl). */
export const MATVEC_MAX_ROWS = 8;
/**
 * On CPU adapters the barrier-free kernels (matvec_rows, matvec_cols4_direct) take up to this
 * many rows, in blocks of 8, instead of the tiled GEMM, whose barriers are costly there: a
 * [50, 4096] · [4096, 4096]ᵀ product (VGG16's fc7 for a SmoothGrad batch of 50) took 1.9 s
 * against 9.9 s with the GEMM on SwiftShader, and 0.47 against 0.67 s on lavapipe; at 64 rows
 * 0.54 against 0.64 s there, so beyond that the GEMM is kept.
 */
export const CPU_DIRECT_MAX_ROWS = 64;

/**
 * out = act(op(a) · op(b) + bias), where op(a) is [M, K] and op(b) is [K, N].
 * a is [M, K] ([K, M] with transA) and b is [K, N] ([N, K] with transB). Either may carry a
 * leading batch dimension: [B, …] × [B, …] multiplies B pairs; a 3-D operand with a 2-D one
 * uses the 2-D matrix for every batch entry. The result is [M, N], or [B, M, N].
 */
export async function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Promise<Tensor> {
  return gemm('matmul', a, b, options);
}

/**
 * A fully connected layer: act(x · wᵀ + b) with x [N, in], w [out, in] (PyTorch's layout) and
 * b [out] or null. Returns [N, out].
 */
export async function linearForward(
  x: Tensor,
  w: Tensor,
  b: Tensor | null = null,
  activation: Activation = 'none',
  alpha = 0.01,
): Promise<Tensor> {
  const op = 'linear';
  assertFloat(op, 'x', x);
  assertFloat(op, 'w', w);
  if (x.rank !== 2) throw new ShapeError(`${op}: x must be [batch, in_features], got ${formatShape(x.shape)}`);
  if (w.rank !== 2) throw new ShapeError(`${op}: w must be [out_features, in_features], got ${formatShape(w.shape)}`);
  if (x.shape[1] !== w.shape[1]) {
    throw new ShapeError(`${op}: x ${formatShape(x.shape)} has ${x.shape[1]} input features but w ${formatShape(w.shape)} expects ${w.shape[1]}`);
  }
  if (b && (b.rank !== 1 || b.shape[0] !== w.shape[0])) {
    throw new ShapeError(`${op}: bias must have shape [${w.shape[0]}] (one per output feature of w ${formatShape(w.shape)}), got ${formatShape(b.shape)}`);
  }
  return gemm(op, x, w, { transB: true, bias: b, activation, alpha });
}

async function gemm(op: string, a: Tensor, b: Tensor, options: MatmulOptions): Promise<Tensor> {
  const { transA = false, transB = false, bias = null, activation = 'none', alpha = 0.01 } = options;
  assertFloat(op, 'a', a);
  assertFloat(op, 'b', b);
  if (a.rank < 2 || a.rank > 3) throw new ShapeError(`${op}: a must be a matrix [M, K] or a batch [B, M, K], got ${formatShape(a.shape)}`);
  if (b.rank < 2 || b.rank > 3) throw new ShapeError(`${op}: b must be a matrix [K, N] or a batch [B, K, N], got ${formatShape(b.shape)}`);
  checkActivation(op, activation, alpha);
  const batchA = a.rank === 3 ? a.shape[0]! : 0;
  const batchB = b.rank === 3 ? b.shape[0]! : 0;
  if (batchA && batchB && batchA !== batchB) {
    throw new ShapeError(`${op}: batch sizes differ: a ${formatShape(a.shape)} has ${batchA}, b ${formatShape(b.shape)} has ${batchB}`);
  }
  const batch = Math.max(batchA, batchB, 1);
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const Kb = transB ? bc : br;
  const N = transB ? br : bc;
  if (K !== Kb) {
    const da = transA ? 'a is read transposed, so its rows' : 'its columns';
    const db = transB ? 'b is read transposed, so its columns' : 'its rows';
    throw new ShapeError(
      `${op}: inner dimensions differ: a ${formatShape(a.shape)} gives K = ${K} (${da}), b ${formatShape(b.shape)} gives K = ${Kb} (${db})`,
    );
  }
  if (bias) {
    assertFloat(op, 'bias', bias);
    if (bias.rank !== 1 || bias.shape[0] !== N) {
      throw new ShapeError(`${op}: bias must have shape [${N}] (one value per output column), got ${formatShape(bias.shape)}`);
    }
  }
  const gpu = a.gpu;
  const plain = batch === 1 && a.rank === 2 && b.rank === 2;
  const VEC4 = transB && !transA && K % 4 === 0;
  const cpuDirect = gpu.adapter.isSoftware && M <= CPU_DIRECT_MAX_ROWS && ((!transB && N % 4 === 0) || VEC4);
  if (plain && (M <= MATVEC_MAX_ROWS || cpuDirect)) {
    // Few rows (a linear layer at a small batch): a 64-row GEMM tile would be mostly padding. The
    // kernels share the uniforms and bindings; they differ in how threads cover the N columns.
    const ROWS = M <= 1 ? 1 : M <= 2 ? 2 : M <= 4 ? 4 : 8;
    const rowBlocks = Math.ceil(M / ROWS);
    const common = { BIAS: !!bias, ROWS, ACTIVATION: ACTIVATION_WGSL[activation] };
    let shader: string;
    let defines: Record<string, string | number | boolean>;
    let workgroups: [number, number, number];
    if (cpuDirect && !transB) {
      // CPU adapters: four columns per invocation for a block of 8 rows, no lane reduction
      // (barriers are costly there). On SwiftShader the input gradient of VGG16's linear layers
      // for a batch of 8 took 0.26 s here, against 1.8 s with the lane-reducing matvec kernel.
      [shader, defines, workgroups] = ['matvec_cols4_direct', { ...common, TRANS_A: transA }, [...linearWorkgroups(gpu, N / 4, 64), rowBlocks]];
    } else if (cpuDirect) {
      // CPU adapters: one column per invocation for a block of 8 rows, no lane reduction. On
      // lavapipe a [8, 4096] · [4096, 4096]ᵀ product took 330 ms of GPU time here against 440–550
      // with the lane reduction.
      [shader, defines, workgroups] = ['matvec_rows', common, [...linearWorkgroups(gpu, N, 64), rowBlocks]];
    } else if (!transB && N % 4 === 0 && M <= 2) {
      // B row-major (a linear layer's input gradient): four columns per thread, read as vec4.
      [shader, defines, workgroups] = ['matvec_cols4', { ...common, TRANS_A: transA }, [...linearWorkgroups(gpu, N / 4, 16), 1]];
    } else {
      [shader, defines, workgroups] = ['matvec', { ...common, TRANS_A: transA, TRANS_B: transB, VEC4 }, [...linearWorkgroups(gpu, N, transB ? 4 : 64), 1]];
    }
    const kernel = await gpu.kernel(shader, defines);
    const out = empty(gpu, [M, N]);
    gpu.dispatch(kernel, {
      uniforms: new Uniforms().u32(M, N, K).f32(alpha),
      buffers: bias ? [a, b, bias, out] : [a, b, out],
      workgroups,
    });
    return out;
  }
  const grid: [number, number, number] = [Math.ceil(N / TILE), Math.ceil(M / TILE), batch];
  const maxWg = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (grid.some((g) => g > maxWg)) {
    throw new ArgumentError(`${op}: a [${batch}, ${M}, ${N}] result needs ${grid.join('×')} workgroups, more than the device's ${maxWg} per dimension`);
  }
  const outShape = a.rank === 3 || b.rank === 3 ? [batch, M, N] : [M, N];
  const kernel = await gpu.kernel('matmul', {
    TRANS_A: transA,
    TRANS_B: transB,
    BIAS: !!bias,
    ACTIVATION: ACTIVATION_WGSL[activation],
  });
  const out = empty(gpu, outShape);
  const uniforms = new Uniforms()
    .u32(M, N, K, batchA ? M * K : 0, batchB ? K * N : 0)
    .f32(alpha);
  gpu.dispatch(kernel, { uniforms, buffers: bias ? [a, b, bias, out] : [a, b, out], workgroups: grid });
  return out;
}

/**
 * Sums over every dimension but the last: x viewed as [R, C] gives [C]. For a linear layer's
 * output gradient dy [N, out] this is the bias gradient.
 */
export async function columnSums(x: Tensor): Promise<Tensor> {
  assertFloat('columnSums', 'x', x);
  const C = x.shape[x.rank - 1]!;
  const R = x.size / C;
  const gpu = x.gpu;
  const kernel = await gpu.kernel('matmul_column_sum');
  const out = empty(gpu, [C]);
  gpu.dispatch(kernel, {
    uniforms: new Uniforms().u32(R, C),
    buffers: [x, out],
    workgroups: linearWorkgroups(gpu, C, 16),
  });
  return out;
}
