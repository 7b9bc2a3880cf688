/** Plain TypeScript references for the matmul kernels (float64 accumulation). */
import type { Activation } from '../../src/kernels/common.js';
import { activationReference } from './activation.js';

export interface MatmulReferenceOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: ArrayLike<number> | null;
  activation?: Activation;
  alpha?: number;
}

/**
 * act(op(a) · op(b) + bias) with the same shape rules as the kernel: rank 2 or 3 operands, a 2-D
 * operand shared by the batch.
 */
export function matmulReference(
  a: ArrayLike<number>,
  sa: readonly number[],
  b: ArrayLike<number>,
  sb: readonly number[],
  options: MatmulReferenceOptions = {},
): { data: Float32Array; shape: number[] } {
  const { transA = false, transB = false, bias = null, activation = 'none', alpha = 0.01 } = options;
  const batch = Math.max(sa.length === 3 ? sa[0]! : 1, sb.length === 3 ? sb[0]! : 1);
  const [ar, ac] = sa.slice(-2) as [number, number];
  const [br, bc] = sb.slice(-2) as [number, number];
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const N = transB ? br : bc;
  const strideA = sa.length === 3 ? M * K : 0;
  const strideB = sb.length === 3 ? K * N : 0;
  const out = new Float32Array(batch * M * N);
  for (let q = 0; q < batch; q++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a[q * strideA + (transA ? k * M + m : m * K + k)]!;
          const bv = b[q * strideB + (transB ? n * K + k : k * N + n)]!;
          s += av * bv;
        }
        out[(q * M + m) * N + n] = s + (bias ? bias[n]! : 0);
      }
    }
  }
  const shape = sa.length === 3 || sb.length === 3 ? [batch, M, N] : [M, N];
  return { data: activationReference(out, activation, alpha), shape };
}

/** Σ over all leading dimensions: [R, C] → [C]. */
export function columnSumsReference(x: ArrayLike<number>, C: number): Float32Array {
  const out = new Float64Array(C);
  for (let i = 0; i < x.length; i++) out[i % C] += x[i]!;
  return Float32Array.from(out);
}
