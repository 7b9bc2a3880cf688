/** Plain TypeScript reference for inference-mode batch normalisation and its gradients (float64). */

export interface RefBn {
  scale: ArrayLike<number>;
  bias: ArrayLike<number>;
  mean: ArrayLike<number>;
  variance: ArrayLike<number>;
  epsilon: number;
}

/** Channel of each element of x [N, C, …]. */
function channels(shape: readonly number[]): Int32Array {
  const C = shape[1]!;
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const n = shape.reduce((a, b) => a * b, 1);
  return Int32Array.from({ length: n }, (_, i) => Math.floor(i / inner) % C);
}

export function batchNormRef(x: ArrayLike<number>, shape: readonly number[], p: RefBn): Float32Array {
  const ch = channels(shape);
  return Float32Array.from(ch, (c, i) => ((x[i]! - p.mean[c]!) * p.scale[c]!) / Math.sqrt(p.variance[c]! + p.epsilon) + p.bias[c]!);
}

/** d/dx, d/dscale, d/dbias, d/dmean, d/dvariance of Σ dy·y, each written from the formula for y. */
export function batchNormGradRef(dy: ArrayLike<number>, x: ArrayLike<number>, shape: readonly number[], p: RefBn) {
  const ch = channels(shape);
  const C = shape[1]!;
  const dscale = new Float64Array(C);
  const dbias = new Float64Array(C);
  const dmean = new Float64Array(C);
  const dvar = new Float64Array(C);
  const dx = new Float32Array(x.length);
  ch.forEach((c, i) => {
    const v = p.variance[c]! + p.epsilon;
    const s = Math.sqrt(v);
    dx[i] = (dy[i]! * p.scale[c]!) / s;
    dscale[c] += (dy[i]! * (x[i]! - p.mean[c]!)) / s;
    dbias[c] += dy[i]!;
    dmean[c] += (-dy[i]! * p.scale[c]!) / s;
    // ∂/∂v of (x − m)·γ·v^(−1/2) = −½·(x − m)·γ·v^(−3/2)
    dvar[c] += -0.5 * dy[i]! * (x[i]! - p.mean[c]!) * p.scale[c]! * Math.pow(v, -1.5);
  });
  return { dx, dscale: Float32Array.from(dscale), dbias: Float32Array.from(dbias), dmean: Float32Array.from(dmean), dvar: Float32Array.from(dvar) };
}
