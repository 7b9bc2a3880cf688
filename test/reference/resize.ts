/** Plain TypeScript references for resize, in float64, straight from the formulas. */

export type RefMode = 'bilinear' | 'nearest';

/** The (index, weight) pairs input samples of output o along one axis. */
export function refTaps(o: number, nIn: number, nOut: number, mode: RefMode, alignCorners: boolean): [number, number][] {
  if (mode === 'nearest') {
    const i = alignCorners
      ? nOut === 1
        ? 0
        : Math.floor((o * (nIn - 1)) / (nOut - 1) + 0.5)
      : Math.min(Math.floor(((o + 0.5) * nIn) / nOut), nIn - 1);
    return [[i, 1]];
  }
  let src = alignCorners ? (nOut === 1 ? 0 : (o * (nIn - 1)) / (nOut - 1)) : ((o + 0.5) * nIn) / nOut - 0.5;
  src = Math.max(src, 0);
  const i0 = Math.min(Math.floor(src), nIn - 1);
  const i1 = Math.min(i0 + 1, nIn - 1);
  const l = src - i0;
  return [
    [i0, 1 - l],
    [i1, l],
  ];
}

/** Resize of the last two dimensions of x (shape [..., H, W]). */
export function resizeRef(x: ArrayLike<number>, shape: readonly number[], outH: number, outW: number, mode: RefMode, alignCorners = false) {
  const H = shape[shape.length - 2]!;
  const W = shape[shape.length - 1]!;
  const planes = x.length / (H * W);
  const out = new Float32Array(planes * outH * outW);
  for (let pl = 0; pl < planes; pl++) {
    for (let oy = 0; oy < outH; oy++) {
      const ty = refTaps(oy, H, outH, mode, alignCorners);
      for (let ox = 0; ox < outW; ox++) {
        const tx = refTaps(ox, W, outW, mode, alignCorners);
        let v = 0;
        for (const [iy, wy] of ty) for (const [ix, wx] of tx) v += wy * wx * x[pl * H * W + iy * W + ix]!;
        out[(pl * outH + oy) * outW + ox] = v;
      }
    }
  }
  return out;
}

/** The adjoint, as a scatter of each dy value onto the inputs it was sampled from. */
export function resizeBackwardRef(dy: ArrayLike<number>, inShape: readonly number[], outH: number, outW: number, mode: RefMode, alignCorners = false) {
  const H = inShape[inShape.length - 2]!;
  const W = inShape[inShape.length - 1]!;
  const planes = dy.length / (outH * outW);
  const dx = new Float64Array(planes * H * W);
  for (let pl = 0; pl < planes; pl++) {
    for (let oy = 0; oy < outH; oy++) {
      const ty = refTaps(oy, H, outH, mode, alignCorners);
      for (let ox = 0; ox < outW; ox++) {
        const tx = refTaps(ox, W, outW, mode, alignCorners);
        const g = dy[(pl * outH + oy) * outW + ox]!;
        for (const [iy, wy] of ty) for (const [ix, wx] of tx) dx[pl * H * W + iy * W + ix] += wy * wx * g;
      }
    }
  }
  return Float32Array.from(dx);
}
