/** Plain TypeScript references for the elementwise kernels. */
export function broadcastBinaryReference(
  a: ArrayLike<number>,
  sa: readonly number[],
  b: ArrayLike<number>,
  sb: readonly number[],
  f: (x: number, y: number) => number,
): { data: Float32Array; shape: number[] } {
  const rank = Math.max(sa.length, sb.length);
  const pa = [...Array(rank - sa.length).fill(1), ...sa];
  const pb = [...Array(rank - sb.length).fill(1), ...sb];
  const shape = pa.map((d, i) => Math.max(d, pb[i]!));
  const n = shape.reduce((x, y) => x * y, 1);
  const data = new Float32Array(n);
  const idx = new Array(rank).fill(0);
  for (let i = 0; i < n; i++) {
    let r = i;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = r % shape[d]!;
      r = Math.floor(r / shape[d]!);
    }
    let ia = 0;
    let ib = 0;
    for (let d = 0; d < rank; d++) {
      ia = ia * pa[d]! + (pa[d] === 1 ? 0 : idx[d]);
      ib = ib * pb[d]! + (pb[d] === 1 ? 0 : idx[d]);
    }
    data[i] = f(a[ia]!, b[ib]!);
  }
  return { data, shape };
}
