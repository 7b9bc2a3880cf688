/** Plain TypeScript references for Clip, HardSigmoid, HardSwish and PRelu and their derivatives (ONNX definitions). */

export const clipRef = (x: number, min = -Infinity, max = Infinity) => Math.min(Math.max(x, min), max);
export const clipGradRef = (x: number, min = -Infinity, max = Infinity) => (x > min && x < max ? 1 : 0);

export const hardSigmoidRef = (x: number, alpha = 0.2, beta = 0.5) => Math.max(0, Math.min(1, alpha * x + beta));
export const hardSigmoidGradRef = (x: number, alpha = 0.2, beta = 0.5) => {
  const v = alpha * x + beta;
  return v > 0 && v < 1 ? alpha : 0;
};

/** HardSwish as PyTorch writes it: x · relu6(x + 3) / 6. */
export const hardSwishRef = (x: number) => (x * Math.min(Math.max(x + 3, 0), 6)) / 6;
/** Its derivative, piece by piece: 0 left of −3, 1 right of 3, x/3 + 1/2 between. */
export const hardSwishGradRef = (x: number) => (x <= -3 ? 0 : x >= 3 ? 1 : x / 3 + 0.5);

/** PRelu with the slope broadcast (right-aligned) to x's shape; also returns the slope index of each element. */
export function preluRef(x: ArrayLike<number>, shape: readonly number[], slope: ArrayLike<number>, slopeShape: readonly number[]) {
  const n = x.length;
  const y = new Float32Array(n);
  const index = new Int32Array(n);
  const lead = shape.length - slopeShape.length;
  for (let i = 0; i < n; i++) {
    let rest = i;
    let k = 0;
    let stride = 1;
    for (let d = shape.length - 1; d >= lead; d--) {
      const c = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
      const sd = slopeShape[d - lead]!;
      if (sd !== 1) k += c * stride;
      stride *= sd;
    }
    index[i] = k;
    y[i] = x[i]! > 0 ? x[i]! : slope[k]! * x[i]!;
  }
  return { y, index };
}

/** PRelu's gradients: dx elementwise, dslope scattered into the slope's elements. */
export function preluGradRef(g: ArrayLike<number>, x: ArrayLike<number>, shape: readonly number[], slope: ArrayLike<number>, slopeShape: readonly number[]) {
  const { index } = preluRef(x, shape, slope, slopeShape);
  const dx = Float32Array.from(x, (v, i) => (v > 0 ? g[i]! : slope[index[i]!]! * g[i]!));
  const ds = new Float64Array(slope.length);
  for (let i = 0; i < x.length; i++) if (x[i]! <= 0) ds[index[i]!] += g[i]! * x[i]!;
  return { dx, dslope: Float32Array.from(ds) };
}
