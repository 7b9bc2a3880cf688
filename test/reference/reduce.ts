/** Plain TypeScript references (float64) for reductions and softmax. */

export interface RefTensor {
  data: Float64Array;
  shape: number[];
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

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Reduces over `axes` (non-negative) with `f`, visiting each block's values in row-major order of
 * the reduced axes. Returns values and, per output, the row-major position of the chosen element
 * when `pick` says which one (for max).
 */
export function reduceReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  axes: readonly number[],
  keepDims: boolean,
  kind: 'sum' | 'mean' | 'max',
): { data: Float64Array; indices: Int32Array; shape: number[] } {
  const set = new Set(axes);
  const keptDims = shape.map((_, i) => i).filter((i) => !set.has(i));
  const redDims = shape.map((_, i) => i).filter((i) => set.has(i));
  const keptShape = keptDims.map((i) => shape[i]!);
  const redShape = redDims.map((i) => shape[i]!);
  const st = strides(shape);
  const nOut = size(keptShape);
  const nRed = size(redShape);
  const data = new Float64Array(nOut);
  const indices = new Int32Array(nOut);
  const decode = (n: number, dims: number[], ds: number[]) => {
    let off = 0;
    for (let k = dims.length - 1; k >= 0; k--) {
      off += (n % ds[k]!) * st[dims[k]!]!;
      n = Math.floor(n / ds[k]!);
    }
    return off;
  };
  for (let o = 0; o < nOut; o++) {
    const base = decode(o, keptDims, keptShape);
    let acc = kind === 'max' ? -Infinity : 0;
    let arg = -1;
    for (let r = 0; r < nRed; r++) {
      const v = x[base + decode(r, redDims, redShape)]!;
      if (kind === 'max') {
        if (arg < 0 || v > acc) {
          acc = v;
          arg = r;
        }
      } else acc += v;
    }
    data[o] = kind === 'mean' ? acc / nRed : acc;
    indices[o] = arg;
  }
  const outShape: number[] = [];
  shape.forEach((d, i) => {
    if (!set.has(i)) outShape.push(d);
    else if (keepDims) outShape.push(1);
  });
  return { data, indices, shape: outShape };
}

/** Applies `f` to every row along `axis` (a row's values given in order, results written back). */
function mapRows(x: ArrayLike<number>, shape: readonly number[], axis: number, f: (row: number[], k: number) => number[]): Float64Array {
  const outer = size(shape.slice(0, axis));
  const len = shape[axis]!;
  const inner = size(shape.slice(axis + 1));
  const out = new Float64Array(size(shape));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const idx = (k: number) => (o * len + k) * inner + i;
      const row = Array.from({ length: len }, (_, k) => x[idx(k)]!);
      const res = f(row, o * inner + i);
      res.forEach((v, k) => (out[idx(k)] = v));
    }
  }
  return out;
}

export function softmaxReference(x: ArrayLike<number>, shape: readonly number[], axis: number, log = false): Float64Array {
  return mapRows(x, shape, axis, (row) => {
    const m = Math.max(...row);
    const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
    return row.map((v) => (log ? v - m - Math.log(s) : Math.exp(v - m) / s));
  });
}

/** Softmax (log = false) or log-softmax backward given dy and the forward output y. */
export function softmaxBackwardReference(
  dy: ArrayLike<number>,
  y: ArrayLike<number>,
  shape: readonly number[],
  axis: number,
  log = false,
): Float64Array {
  const yRows = mapRows(y, shape, axis, (row) => row);
  const outer = size(shape.slice(0, axis));
  const len = shape[axis]!;
  const inner = size(shape.slice(axis + 1));
  const out = new Float64Array(size(shape));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const idx = (k: number) => (o * len + k) * inner + i;
      let s = 0;
      for (let k = 0; k < len; k++) s += log ? dy[idx(k)]! : dy[idx(k)]! * yRows[idx(k)]!;
      for (let k = 0; k < len; k++) {
        const j = idx(k);
        out[j] = log ? dy[j]! - Math.exp(yRows[j]!) * s : yRows[j]! * (dy[j]! - s);
      }
    }
  }
  return out;
}
