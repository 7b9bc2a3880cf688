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

export type RefCtm = 'half_pixel' | 'pytorch_half_pixel' | 'align_corners' | 'asymmetric' | 'tf_half_pixel_for_nn' | 'half_pixel_symmetric';
export type RefNearest = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil';

/**
 * ONNX Resize's taps of output o along one axis, from the operator's definition in float64:
 * coordinate transformation with `scale` (out/in unless given; a scale of 1 is the identity), then
 * the nearest mode (clamped into the input), or linear interpolation between the clamped
 * coordinate's two neighbours. Use sizes whose coordinates are exact in float32 too.
 */
export function onnxTapsRef(o: number, nIn: number, nOut: number, mode: RefMode, ctm: RefCtm, nearest: RefNearest = 'round_prefer_floor', scale = nOut / nIn): [number, number][] {
  let src: number;
  if (scale === 1) src = o;
  else if (ctm === 'half_pixel') src = (o + 0.5) / scale - 0.5;
  else if (ctm === 'pytorch_half_pixel') src = nOut > 1 ? (o + 0.5) / scale - 0.5 : 0;
  else if (ctm === 'align_corners') src = nOut > 1 ? (o * (nIn - 1)) / (nOut - 1) : 0;
  else if (ctm === 'asymmetric') src = o / scale;
  else if (ctm === 'tf_half_pixel_for_nn') src = (o + 0.5) / scale;
  else src = (nIn / 2) * (1 - nOut / (scale * nIn)) + (o + 0.5) / scale - 0.5;
  if (mode === 'nearest') {
    const frac = src - Math.floor(src);
    let i: number;
    if (nearest === 'floor') i = Math.floor(src);
    else if (nearest === 'ceil') i = Math.ceil(src);
    else if (frac === 0.5) i = nearest === 'round_prefer_floor' ? Math.floor(src) : Math.ceil(src);
    else i = Math.round(src);
    return [[Math.min(Math.max(i, 0), nIn - 1), 1]];
  }
  const s = Math.min(Math.max(src, 0), nIn - 1);
  const i0 = Math.floor(s);
  return [
    [i0, 1 - (s - i0)],
    [Math.min(i0 + 1, nIn - 1), s - i0],
  ];
}

type TapsFn = (o: number, nIn: number, nOut: number, axis: 0 | 1) => [number, number][];

/** Resize of the last two dimensions with any taps function. */
export function resizeTapsRef(x: ArrayLike<number>, shape: readonly number[], outH: number, outW: number, taps: TapsFn) {
  const H = shape[shape.length - 2]!;
  const W = shape[shape.length - 1]!;
  const planes = x.length / (H * W);
  const out = new Float32Array(planes * outH * outW);
  for (let pl = 0; pl < planes; pl++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        let v = 0;
        for (const [iy, wy] of taps(oy, H, outH, 0)) for (const [ix, wx] of taps(ox, W, outW, 1)) v += wy * wx * x[pl * H * W + iy * W + ix]!;
        out[(pl * outH + oy) * outW + ox] = v;
      }
    }
  }
  return out;
}

/** Its adjoint, as a scatter. */
export function resizeTapsBackwardRef(dy: ArrayLike<number>, inShape: readonly number[], outH: number, outW: number, taps: TapsFn) {
  const H = inShape[inShape.length - 2]!;
  const W = inShape[inShape.length - 1]!;
  const planes = dy.length / (outH * outW);
  const dx = new Float64Array(planes * H * W);
  for (let pl = 0; pl < planes; pl++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        const g = dy[(pl * outH + oy) * outW + ox]!;
        for (const [iy, wy] of taps(oy, H, outH, 0)) for (const [ix, wx] of taps(ox, W, outW, 1)) dx[pl * H * W + iy * W + ix] += wy * wx * g;
      }
    }
  }
  return Float32Array.from(dx);
}
