/** Plain TypeScript references for ONNX Gemm and NumPy/ONNX MatMul (float64 accumulation). */

/** Element of `data` (shape `shape`) at the multi-index `idx` of a broadcast result (right-aligned). */
function broadcastAt(data: ArrayLike<number>, shape: readonly number[], idx: readonly number[]): number {
  let off = 0;
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const j = idx[idx.length - shape.length + i]!;
    off += (shape[i] === 1 ? 0 : j) * stride;
    stride *= shape[i]!;
  }
  return data[off]!;
}

/** Y = alpha · op(A) · op(B) + beta · C, C broadcast to [M, N]. */
export function gemmReference(
  a: ArrayLike<number>,
  sa: readonly number[],
  b: ArrayLike<number>,
  sb: readonly number[],
  c: { data: ArrayLike<number>; shape: number[] } | null,
  o: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {},
): { data: Float32Array; shape: number[] } {
  const { transA = false, transB = false, alpha = 1, beta = 1 } = o;
  const [M, K] = transA ? [sa[1]!, sa[0]!] : [sa[0]!, sa[1]!];
  const N = transB ? sb[0]! : sb[1]!;
  const out = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        s += a[transA ? k * M + m : m * K + k]! * b[transB ? n * K + k : k * N + n]!;
      }
      out[m * N + n] = alpha * s + (c ? beta * broadcastAt(c.data, c.shape, [m, n]) : 0);
    }
  }
  return { data: out, shape: [M, N] };
}

/** numpy.matmul. */
export function matmulNdReference(
  a: ArrayLike<number>,
  sa: readonly number[],
  b: ArrayLike<number>,
  sb: readonly number[],
): { data: Float32Array; shape: number[] } {
  const a2 = sa.length === 1 ? [1, sa[0]!] : [...sa];
  const b2 = sb.length === 1 ? [sb[0]!, 1] : [...sb];
  const [M, K] = a2.slice(-2) as [number, number];
  const N = b2[b2.length - 1]!;
  const ba = a2.slice(0, -2);
  const bb = b2.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const batch: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = ba[ba.length - rank + i] ?? 1;
    const y = bb[bb.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error('batch dims do not broadcast');
    batch.push(Math.max(x, y));
  }
  const B = batch.reduce((x, y) => x * y, 1);
  const out = new Float32Array(B * M * N);
  for (let q = 0; q < B; q++) {
    const idx: number[] = [];
    let r = q;
    for (let i = rank - 1; i >= 0; i--) {
      idx.unshift(r % batch[i]!);
      r = Math.floor(r / batch[i]!);
    }
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += broadcastAt(a, a2, [...idx, m, k]) * broadcastAt(b, b2, [...idx, k, n]);
        out[(q * M + m) * N + n] = s;
      }
    }
  }
  return { data: out, shape: [...batch, ...(sa.length === 1 ? [] : [M]), ...(sb.length === 1 ? [] : [N])] };
}
