/** Plain TypeScript references for ONNX Pad (any rank) and its gradient, written as index loops and a scatter. */

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/** The input index each output element reads (−1: the constant), per ONNX's definition of the modes. */
function sourceIndices(shape: readonly number[], pads: readonly number[], mode: 'constant' | 'reflect' | 'edge') {
  const rank = shape.length;
  const out = shape.map((n, d) => n + pads[d]! + pads[d + rank]!);
  const total = out.reduce((a, b) => a * b, 1);
  const si = strides(shape);
  const so = strides(out);
  const src = new Int32Array(total);
  for (let i = 0; i < total; i++) {
    let off = 0;
    let inside = true;
    for (let d = 0; d < rank; d++) {
      const o = Math.floor(i / so[d]!) % out[d]!;
      let c = o - pads[d]!;
      const n = shape[d]!;
      if (mode === 'edge') c = Math.min(Math.max(c, 0), n - 1);
      else if (mode === 'reflect') {
        // numpy.pad(mode='reflect'), for pads < n
        if (c < 0) c = -c;
        if (c >= n) c = 2 * (n - 1) - c;
      } else if (c < 0 || c >= n) inside = false;
      off += c * si[d]!;
    }
    src[i] = inside ? off : -1;
  }
  return { src, shape: out };
}

export function padReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  pads: readonly number[],
  mode: 'constant' | 'reflect' | 'edge' = 'constant',
  value = 0,
): { data: Float32Array; shape: number[] } {
  const { src, shape: out } = sourceIndices(shape, pads, mode);
  return { data: Float32Array.from(src, (s) => (s < 0 ? value : x[s]!)), shape: out };
}

/** The adjoint: every output's gradient added to the input element it read. */
export function padBackwardReference(
  dy: ArrayLike<number>,
  shape: readonly number[],
  pads: readonly number[],
  mode: 'constant' | 'reflect' | 'edge' = 'constant',
): Float32Array {
  const { src } = sourceIndices(shape, pads, mode);
  const dx = new Float64Array(shape.reduce((a, b) => a * b, 1));
  src.forEach((s, i) => {
    if (s >= 0) dx[s] += dy[i]!;
  });
  return Float32Array.from(dx);
}
