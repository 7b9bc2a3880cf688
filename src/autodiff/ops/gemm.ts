/**
 * Differentiable ONNX matrix products.
 *
 * gemm: Y = α·op(A)·op(B) + β·C (op = identity or transpose), recorded as one 'gemm' op:
 *   dop(A) = α·dY·op(B)ᵀ,  dop(B) = α·op(A)ᵀ·dY,  dC = β·(dY summed back to C's shape).
 *   Each is one GEMM reading its operands transposed as needed (no copies).
 * matmulNd: NumPy/ONNX MatMul, composed of reshape views, broadcastTo and the 'matmul' op, whose
 *   backward rules already exist; nothing new is recorded.
 */
import type { Tensor } from '../../runtime/tensor.js';
import { gemm as gemmKernel, gemmGeometry, runMatmulNd, type GemmOptions, type NormalizedGemmOptions } from '../../kernels/gemm.js';
import { matmul } from '../../kernels/matmul.js';
import { scale } from '../../kernels/elementwise.js';
import { sumToShape } from '../../kernels/reduce.js';
import { defineOp, makeGrads } from '../tape.js';
import { matmulOp } from './linear.js';
import { broadcastTo } from './shape.js';

export type { GemmOptions } from '../../kernels/gemm.js';

interface GemmSaved {
  a: Tensor;
  b: Tensor;
  cShape: readonly number[] | null;
  options: NormalizedGemmOptions;
  outShape: readonly number[];
}

const gemmDef = defineOp<GemmSaved>('gemm', async (dy, ctx) => {
  const { a, b, cShape, options, outShape } = ctx.saved;
  const { transA, transB, alpha, beta } = options;
  const [needA, needB, needC] = ctx.needsGrad;
  return makeGrads(3, async (grads, temps) => {
    let g = dy.reshape(outShape);
    temps.push(g);
    if (needC && cShape) {
      const s = await sumToShape(g, cShape);
      if (beta === 1) grads[2] = s;
      else {
        temps.push(s);
        grads[2] = await scale(s, beta, 0);
      }
    }
    if (alpha !== 1 && (needA || needB)) {
      g = await scale(g, alpha, 0);
      temps.push(g);
    }
    // With P = op(A) and Q = op(B): dP = g·Qᵀ and dQ = Pᵀ·g; A = P or Pᵀ, B = Q or Qᵀ.
    if (needA) {
      grads[0] = transA
        ? await matmul(b, g, { transA: transB, transB: true }) // dA = (g·Qᵀ)ᵀ = Q·gᵀ
        : await matmul(g, b, { transB: !transB }); // dA = g·Qᵀ
    }
    if (needB) {
      grads[1] = transB
        ? await matmul(g, a, { transA: true, transB: transA }) // dB = (Pᵀ·g)ᵀ = gᵀ·P
        : await matmul(a, g, { transA: !transA }); // dB = Pᵀ·g
    }
  });
});

/**
 * ONNX Gemm: Y = alpha · op(A) · op(B) + beta · C. A [M, K] ([K, M] with transA), B [K, N]
 * ([N, K] with transB), C null or broadcastable to [M, N]. Returns [M, N]; recorded as 'gemm'
 * (inputs A, B, C).
 */
export async function gemm(a: Tensor, b: Tensor, c: Tensor | null = null, options: GemmOptions = {}): Promise<Tensor> {
  const y = await gemmKernel(a, b, c, options);
  const { options: o } = gemmGeometry(a.shape, b.shape, c?.shape ?? null, options);
  gemmDef.record([a, b, c], y, { a, b, cShape: c ? c.shape : null, options: o, outShape: y.shape });
  return y;
}

/**
 * NumPy/ONNX MatMul: a [..., M, K] · b [..., K, N] with broadcast batch dimensions; a 1-D a is a
 * row [1, K] and a 1-D b a column [K, 1], the added axis removed from the result. One GEMM (see
 * `matmulNdPlan`), plus broadcast copies only when both batches differ and neither is 1.
 */
export function matmulNd(a: Tensor, b: Tensor): Promise<Tensor> {
  return runMatmulNd(a, b, { broadcastTo, matmul: matmulOp });
}
