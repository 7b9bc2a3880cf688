/**
 * Plain TypeScript references for the conv2d kernels: direct loops over the definition, in float64.
 * The input gradient is written as a scatter (the transpose of the forward loop), independently of
 * the kernel's gather formulation.
 */
export interface RefConvParams {
  stride: [number, number];
  /** [top, bottom, left, right] */
  padding: [number, number, number, number];
  dilation: [number, number];
  groups: number;
}

export type RefActivation = 'none' | 'relu' | 'relu6' | 'leakyrelu' | 'sigmoid' | 'tanh';

export function activationReference(act: RefActivation, v: number, alpha = 0.01): number {
  switch (act) {
    case 'none':
      return v;
    case 'relu':
      return Math.max(v, 0);
    case 'relu6':
      return Math.min(Math.max(v, 0), 6);
    case 'leakyrelu':
      return v > 0 ? v : alpha * v;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'tanh':
      return Math.tanh(v);
  }
}

export function outputShapeReference(xShape: readonly number[], wShape: readonly number[], p: RefConvParams): number[] {
  const [n, , h, w] = xShape as [number, number, number, number];
  const [cout, , kh, kw] = wShape as [number, number, number, number];
  const ho = Math.floor((h + p.padding[0] + p.padding[1] - p.dilation[0] * (kh - 1) - 1) / p.stride[0]) + 1;
  const wo = Math.floor((w + p.padding[2] + p.padding[3] - p.dilation[1] * (kw - 1) - 1) / p.stride[1]) + 1;
  return [n, cout, ho, wo];
}

/** Calls f(n, co, oh, ow, ci, ky, kx, xIndex, wIndex, yIndex) for every tap that reads inside x. */
function forEachTap(
  xShape: readonly number[],
  wShape: readonly number[],
  p: RefConvParams,
  f: (xi: number, wi: number, yi: number, co: number) => void,
): number[] {
  const [n, cin, h, w] = xShape as [number, number, number, number];
  const [cout, cinG, kh, kw] = wShape as [number, number, number, number];
  const outShape = outputShapeReference(xShape, wShape, p);
  const [, , ho, wo] = outShape as [number, number, number, number];
  const coutG = cout / p.groups;
  for (let b = 0; b < n; b++)
    for (let co = 0; co < cout; co++) {
      const g = Math.floor(co / coutG);
      for (let oh = 0; oh < ho; oh++)
        for (let ow = 0; ow < wo; ow++) {
          const yi = ((b * cout + co) * ho + oh) * wo + ow;
          for (let ci = 0; ci < cinG; ci++)
            for (let ky = 0; ky < kh; ky++) {
              const ih = oh * p.stride[0] - p.padding[0] + ky * p.dilation[0];
              if (ih < 0 || ih >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const iw = ow * p.stride[1] - p.padding[2] + kx * p.dilation[1];
                if (iw < 0 || iw >= w) continue;
                const xi = ((b * cin + g * cinG + ci) * h + ih) * w + iw;
                const wi = ((co * cinG + ci) * kh + ky) * kw + kx;
                f(xi, wi, yi, co);
              }
            }
        }
    }
  return outShape;
}

export function conv2dReference(
  x: ArrayLike<number>,
  xShape: readonly number[],
  w: ArrayLike<number>,
  wShape: readonly number[],
  bias: ArrayLike<number> | null,
  p: RefConvParams,
  activation: RefActivation = 'none',
  alpha = 0.01,
): { data: Float32Array; shape: number[] } {
  const outShape = outputShapeReference(xShape, wShape, p);
  const acc = new Float64Array(outShape.reduce((a, b) => a * b, 1));
  forEachTap(xShape, wShape, p, (xi, wi, yi) => {
    acc[yi]! += x[xi]! * w[wi]!;
  });
  const [, cout, ho, wo] = outShape as [number, number, number, number];
  const data = new Float32Array(acc.length);
  for (let i = 0; i < acc.length; i++) {
    const co = Math.floor(i / (ho * wo)) % cout;
    data[i] = activationReference(activation, acc[i]! + (bias ? bias[co]! : 0), alpha);
  }
  return { data, shape: outShape };
}

/** dL/dx for dL/dy = dy (no activation): scatter each output's gradient back along its taps. */
export function conv2dInputGradReference(
  dy: ArrayLike<number>,
  w: ArrayLike<number>,
  xShape: readonly number[],
  wShape: readonly number[],
  p: RefConvParams,
): Float32Array {
  const dx = new Float64Array(xShape.reduce((a, b) => a * b, 1));
  forEachTap(xShape, wShape, p, (xi, wi, yi) => {
    dx[xi]! += dy[yi]! * w[wi]!;
  });
  return Float32Array.from(dx);
}

export function conv2dFilterGradReference(
  x: ArrayLike<number>,
  xShape: readonly number[],
  dy: ArrayLike<number>,
  wShape: readonly number[],
  p: RefConvParams,
): Float32Array {
  const dw = new Float64Array(wShape.reduce((a, b) => a * b, 1));
  forEachTap(xShape, wShape, p, (xi, wi, yi) => {
    dw[wi]! += dy[yi]! * x[xi]!;
  });
  return Float32Array.from(dw);
}

export function conv2dBiasGradReference(dy: ArrayLike<number>, dyShape: readonly number[]): Float32Array {
  const [n, c, h, w] = dyShape as [number, number, number, number];
  const db = new Float64Array(c);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < h * w; i++) db[ch]! += dy[(b * c + ch) * h * w + i]!;
  return Float32Array.from(db);
}
