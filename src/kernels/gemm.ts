/**
 * ONNX-style matrix products on top of the tiled GEMM (src/kernels/matmul.ts):
 *
 *   gemm      Y = alpha · op(A) · op(B) + beta · C   (ONNX Gemm: transA, transB, alpha, beta; C
 *             broadcast to [M, N]). With alpha = beta = 1 and C a row of N biases (nn.Linear's
 *             export) it is one dispatch, the bias fused into the GEMM; otherwise the product is
 *             scaled and C added by elementwise kernels.
 *   matmulNd  NumPy/ONNX MatMul shapes: 1-D operands promoted (and the added axis removed again),
 *             batch dimensions broadcast. See `matmulNdPlan` for how each case maps to one GEMM.
 */
import { ShapeError, formatShape } from '../runtime/errors.js';
import type { Tensor } from '../runtime/tensor.js';
import { assertFinite, assertFloat } from './common.js';
import { add, broadcastShapes, scale } from './elementwise.js';
import { matmul } from './matmul.js';
import { broadcastTo } from './shape.js';

export interface GemmOptions {
  /** Read A as [K, M] (ONNX transA). Default false. */
  transA?: boolean;
  /** Read B as [N, K] (ONNX transB; PyTorch Linear weights). Default false. */
  transB?: boolean;
  /** Scale of the product. Default 1. */
  alpha?: number;
  /** Scale of C. Default 1. */
  beta?: number;
}

/** GemmOptions with every field filled in. */
export interface NormalizedGemmOptions {
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
}

/** Validates the operands of a Gemm and returns [M, K, N] and the filled-in options. */
export function gemmGeometry(
  aShape: readonly number[],
  bShape: readonly number[],
  cShape: readonly number[] | null,
  options: GemmOptions = {},
): { M: number; K: number; N: number; options: NormalizedGemmOptions } {
  const op = 'gemm';
  const o: NormalizedGemmOptions = { transA: !!options.transA, transB: !!options.transB, alpha: options.alpha ?? 1, beta: options.beta ?? 1 };
  assertFinite(op, { alpha: o.alpha, beta: o.beta });
  if (aShape.length !== 2) throw new ShapeError(`${op}: A must be a matrix, got ${formatShape(aShape)}`);
  if (bShape.length !== 2) throw new ShapeError(`${op}: B must be a matrix, got ${formatShape(bShape)}`);
  const [M, K] = o.transA ? [aShape[1]!, aShape[0]!] : [aShape[0]!, aShape[1]!];
  const [Kb, N] = o.transB ? [bShape[1]!, bShape[0]!] : [bShape[0]!, bShape[1]!];
  if (K !== Kb) {
    throw new ShapeError(
      `${op}: inner dimensions differ: A ${formatShape(aShape)}${o.transA ? ' (transposed)' : ''} gives K = ${K}, ` +
        `B ${formatShape(bShape)}${o.transB ? ' (transposed)' : ''} gives K = ${Kb}`,
    );
  }
  if (cShape) {
    // Unidirectional broadcasting: C must broadcast to [M, N] without growing it.
    const ok = cShape.length <= 2 && cShape.every((d, i) => d === 1 || d === [M, N][i + 2 - cShape.length]);
    if (!ok) throw new ShapeError(`${op}: C ${formatShape(cShape)} does not broadcast to the result [${M}, ${N}]`);
  }
  return { M, K, N, options: o };
}

/** True when C is one bias per output column ([N] or [1, N]), which the GEMM can add itself. */
export function isRowBias(cShape: readonly number[], N: number): boolean {
  return cShape.length >= 1 && cShape[cShape.length - 1] === N && cShape.every((d, i) => i === cShape.length - 1 || d === 1);
}

/**
 * ONNX Gemm: Y = alpha · op(A) · op(B) + beta · C, with A [M, K] ([K, M] with transA), B [K, N]
 * ([N, K] with transB) and C (or null) broadcast to [M, N]. Returns [M, N].
 */
export async function gemm(a: Tensor, b: Tensor, c: Tensor | null, options: GemmOptions = {}): Promise<Tensor> {
  const op = 'gemm';
  assertFloat(op, 'A', a);
  assertFloat(op, 'B', b);
  if (c) assertFloat(op, 'C', c);
  const { N, options: o } = gemmGeometry(a.shape, b.shape, c?.shape ?? null, options);
  const { transA, transB, alpha, beta } = o;
  if (alpha === 1 && beta === 1 && (!c || isRowBias(c.shape, N))) {
    const bias = c ? c.reshape([N]) : null;
    try {
      return await matmul(a, b, { transA, transB, bias });
    } finally {
      bias?.dispose();
    }
  }
  const temps: Tensor[] = [];
  try {
    let y = await matmul(a, b, { transA, transB });
    if (alpha !== 1) {
      temps.push(y);
      y = await scale(y, alpha, 0);
    }
    if (c && beta !== 0) {
      let cc = c;
      if (beta !== 1) temps.push((cc = await scale(c, beta, 0)));
      temps.push(y);
      y = await add(y, cc);
    }
    return y;
  } finally {
    for (const t of temps) t.dispose();
  }
}

/**
 * How a NumPy/ONNX MatMul of shapes a × b runs as one GEMM of the matmul kernel (a and b [.., M, K]
 * and [.., K, N]; a 1-D a is [1, K], a 1-D b is [K, 1], and the added axis is removed from the
 * result):
 *   - b without batch (or all its batch dimensions 1): a's batch is folded into its rows, [B·M, K] · [K, N];
 *   - a without batch: a [M, K] shared by the batch of b, [M, K] · [B, K, N];
 *   - equal batches: [B, M, K] · [B, K, N];
 *   - otherwise both are first broadcast to the common batch (copies), then as above.
 */
export interface MatmulNdPlan {
  /** Shape the result has. */
  outShape: number[];
  /** Shapes a and b are broadcast to first (null: used as they are). */
  broadcastA: number[] | null;
  broadcastB: number[] | null;
  /** Views of (broadcast) a and b given to the GEMM (rank 2 or 3). */
  gemmA: number[];
  gemmB: number[];
}

export function matmulNdPlan(aShape: readonly number[], bShape: readonly number[]): MatmulNdPlan {
  const op = 'matmul';
  if (aShape.length < 1 || bShape.length < 1) {
    throw new ShapeError(`${op}: operands must have rank ≥ 1, got ${formatShape(aShape)} and ${formatShape(bShape)}`);
  }
  const a2 = aShape.length === 1 ? [1, aShape[0]!] : [...aShape];
  const b2 = bShape.length === 1 ? [bShape[0]!, 1] : [...bShape];
  const [M, K] = a2.slice(-2) as [number, number];
  const [Kb, N] = b2.slice(-2) as [number, number];
  if (K !== Kb) {
    throw new ShapeError(`${op}: inner dimensions differ: a ${formatShape(aShape)} has K = ${K}, b ${formatShape(bShape)} has K = ${Kb}`);
  }
  const batchA = a2.slice(0, -2);
  const batchB = b2.slice(0, -2);
  const batch = broadcastShapes(batchA, batchB, op);
  const outShape = [...batch, ...(aShape.length === 1 ? [] : [M]), ...(bShape.length === 1 ? [] : [N])];
  const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);
  const B = size(batch);
  if (size(batchB) === 1) {
    return { outShape, broadcastA: null, broadcastB: null, gemmA: [size(batchA) * M, K], gemmB: [K, N] };
  }
  if (size(batchA) === 1) {
    return { outShape, broadcastA: null, broadcastB: null, gemmA: [M, K], gemmB: [size(batchB), K, N] };
  }
  const pad = (s: number[]) => [...new Array<number>(batch.length - s.length).fill(1), ...s];
  const same = (s: number[]) => pad(s).every((d, i) => d === batch[i]);
  const broadcastA = same(batchA) ? null : [...batch, M, K];
  const broadcastB = same(batchB) ? null : [...batch, K, N];
  return { outShape, broadcastA, broadcastB, gemmA: [B, M, K], gemmB: [B, K, N] };
}

/** The two steps a MatMul plan needs: kernels here, the differentiable ops in autodiff/ops/gemm.ts. */
export interface MatmulNdSteps {
  broadcastTo(t: Tensor, shape: readonly number[]): Promise<Tensor>;
  /** A product of the matmul kernel's shapes: [M, K] or [B, M, K] by [K, N] or [B, K, N]. */
  matmul(a: Tensor, b: Tensor): Promise<Tensor>;
}

/** Runs matmulNdPlan(a, b) with `steps`; returns a view of the product with the plan's shape. */
export async function runMatmulNd(a: Tensor, b: Tensor, steps: MatmulNdSteps): Promise<Tensor> {
  assertFloat('matmul', 'a', a);
  assertFloat('matmul', 'b', b);
  const plan = matmulNdPlan(a.shape, b.shape);
  const temps: Tensor[] = [];
  try {
    const operand = async (t: Tensor, to: number[] | null, view: number[]) => {
      const full = to ? await steps.broadcastTo(t, to) : t;
      if (full !== t) temps.push(full);
      const v = full.reshape(view);
      temps.push(v);
      return v;
    };
    const a2 = await operand(a, plan.broadcastA, plan.gemmA);
    const b2 = await operand(b, plan.broadcastB, plan.gemmB);
    const y = await steps.matmul(a2, b2);
    temps.push(y);
    return y.reshape(plan.outShape);
  } finally {
    for (const t of temps) t.dispose();
  }
}

/** NumPy/ONNX MatMul (see matmulNdPlan): a [..., M, K] · b [..., K, N] with broadcast batch dimensions. */
export function matmulNd(a: Tensor, b: Tensor): Promise<Tensor> {
  return runMatmulNd(a, b, { broadcastTo, matmul: (x, y) => matmul(x, y) });
}
