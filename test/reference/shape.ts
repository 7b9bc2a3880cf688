/** Plain TypeScript references for the shape ops. */

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Calls f(multiIndex, flatIndex) for every element of `shape` in row-major order. */
function forEachIndex(shape: readonly number[], f: (idx: number[], flat: number) => void): void {
  const n = size(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let r = i;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = r % shape[d]!;
      r = Math.floor(r / shape[d]!);
    }
    f(idx, i);
  }
}

export function sliceReference(x: ArrayLike<number>, shape: readonly number[], begin: readonly number[], size_: readonly number[]): Float64Array {
  const sz = size_.map((s, i) => (s === -1 ? shape[i]! - begin[i]! : s));
  const st = strides(shape);
  const out = new Float64Array(size(sz));
  forEachIndex(sz, (idx, i) => {
    out[i] = x[idx.reduce((a, c, d) => a + (c + begin[d]!) * st[d]!, 0)]!;
  });
  return out;
}

export function transposeReference(x: ArrayLike<number>, shape: readonly number[], perm: readonly number[]): { data: Float64Array; shape: number[] } {
  const outShape = perm.map((p) => shape[p]!);
  const st = strides(shape);
  const out = new Float64Array(size(shape));
  forEachIndex(outShape, (idx, i) => {
    out[i] = x[idx.reduce((a, c, d) => a + c * st[perm[d]!]!, 0)]!;
  });
  return { data: out, shape: outShape };
}

export function concatReference(parts: { data: ArrayLike<number>; shape: number[] }[], axis: number): { data: Float64Array; shape: number[] } {
  const shape = [...parts[0]!.shape];
  shape[axis] = parts.reduce((a, p) => a + p.shape[axis]!, 0);
  const out = new Float64Array(size(shape));
  const ost = strides(shape);
  let at = 0;
  for (const p of parts) {
    forEachIndex(p.shape, (idx, i) => {
      out[idx.reduce((a, c, d) => a + (d === axis ? c + at : c) * ost[d]!, 0)] = p.data[i]!;
    });
    at += p.shape[axis]!;
  }
  return { data: out, shape };
}

export function broadcastToReference(x: ArrayLike<number>, shape: readonly number[], to: readonly number[]): Float64Array {
  const lead = to.length - shape.length;
  const st = strides(shape);
  const out = new Float64Array(size(to));
  forEachIndex(to, (idx, i) => {
    let off = 0;
    for (let d = lead; d < to.length; d++) if (shape[d - lead] !== 1) off += idx[d]! * st[d - lead]!;
    out[i] = x[off]!;
  });
  return out;
}
