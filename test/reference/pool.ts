/** Plain TypeScript references for the pooling kernels (NCHW), written as direct loops / scatters. */

export interface RefPool {
  kernel: [number, number];
  stride: [number, number];
  /** top, bottom, left, right */
  pad: [number, number, number, number];
  ceil?: boolean;
  /** Spacing of the taps; default [1, 1]. */
  dilation?: [number, number];
}

/** PyTorch's pooling_output_shape_pad_lr, for one axis (d: dilation). */
export function refOutSize(n: number, k: number, s: number, before: number, after: number, ceil = false, d = 1): number {
  const num = n + before + after - (d * (k - 1) + 1) + (ceil ? s - 1 : 0);
  let out = Math.floor(num / s) + 1;
  if (ceil && (out - 1) * s >= n + before) out--;
  return out;
}

function geometry(shape: readonly number[], p: RefPool) {
  const [N, C, H, W] = shape as [number, number, number, number];
  const [dh, dw] = p.dilation ?? [1, 1];
  const OH = refOutSize(H, p.kernel[0], p.stride[0], p.pad[0], p.pad[1], p.ceil, dh);
  const OW = refOutSize(W, p.kernel[1], p.stride[1], p.pad[2], p.pad[3], p.ceil, dw);
  return { N, C, H, W, OH, OW };
}

/** Max pooling with switches; padding is −∞, ties go to the first index in row-major order. */
export function maxPoolRef(x: ArrayLike<number>, shape: readonly number[], p: RefPool) {
  const { N, C, H, W, OH, OW } = geometry(shape, p);
  const out = new Float32Array(N * C * OH * OW);
  const sw = new Int32Array(out.length);
  for (let pl = 0; pl < N * C; pl++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        let best = -Infinity;
        let arg = -1;
        for (let ky = 0; ky < p.kernel[0]; ky++) {
          for (let kx = 0; kx < p.kernel[1]; kx++) {
            const iy = oy * p.stride[0] - p.pad[0] + ky * dil(p)[0];
            const ix = ox * p.stride[1] - p.pad[2] + kx * dil(p)[1];
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            const v = x[pl * H * W + iy * W + ix]!;
            if (v > best) {
              best = v;
              arg = iy * W + ix;
            }
          }
        }
        const o = (pl * OH + oy) * OW + ox;
        out[o] = arg < 0 ? 0 : best;
        sw[o] = arg;
      }
    }
  }
  return { out, switches: sw, shape: [N, C, OH, OW] };
}

/** Unpooling as a scatter-add of dy at the switches. */
export function maxUnpoolRef(dy: ArrayLike<number>, switches: ArrayLike<number>, outShape: readonly number[], inShape: readonly number[]) {
  const [N, C, H, W] = inShape as [number, number, number, number];
  const plane = outShape[2]! * outShape[3]!;
  const dx = new Float64Array(N * C * H * W);
  for (let i = 0; i < dy.length; i++) {
    const s = switches[i]!;
    if (s >= 0) dx[Math.floor(i / plane) * H * W + s] += dy[i]!;
  }
  return Float32Array.from(dx);
}

const dil = (p: RefPool): [number, number] => p.dilation ?? [1, 1];

/** Taps of the window counted by the divisor: inside the padded input, or on real inputs only. */
function divisor(oy: number, ox: number, H: number, W: number, p: RefPool, countIncludePad: boolean): number {
  let count = 0;
  for (let ky = 0; ky < p.kernel[0]; ky++) {
    for (let kx = 0; kx < p.kernel[1]; kx++) {
      const iy = oy * p.stride[0] - p.pad[0] + ky * dil(p)[0];
      const ix = ox * p.stride[1] - p.pad[2] + kx * dil(p)[1];
      const inPadded = iy >= -p.pad[0] && iy < H + p.pad[1] && ix >= -p.pad[2] && ix < W + p.pad[3];
      const inReal = iy >= 0 && iy < H && ix >= 0 && ix < W;
      if (countIncludePad ? inPadded : inReal) count++;
    }
  }
  return count;
}

export function avgPoolRef(x: ArrayLike<number>, shape: readonly number[], p: RefPool, countIncludePad = true) {
  const { N, C, H, W, OH, OW } = geometry(shape, p);
  const out = new Float32Array(N * C * OH * OW);
  for (let pl = 0; pl < N * C; pl++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        let s = 0;
        for (let ky = 0; ky < p.kernel[0]; ky++) {
          for (let kx = 0; kx < p.kernel[1]; kx++) {
            const iy = oy * p.stride[0] - p.pad[0] + ky * dil(p)[0];
            const ix = ox * p.stride[1] - p.pad[2] + kx * dil(p)[1];
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) s += x[pl * H * W + iy * W + ix]!;
          }
        }
        const d = divisor(oy, ox, H, W, p, countIncludePad);
        out[(pl * OH + oy) * OW + ox] = d > 0 ? s / d : 0;
      }
    }
  }
  return { out, shape: [N, C, OH, OW] };
}

/** Average-pool gradient as a scatter of dy / divisor over each window. */
export function avgPoolBackwardRef(dy: ArrayLike<number>, inShape: readonly number[], p: RefPool, countIncludePad = true) {
  const { N, C, H, W, OH, OW } = geometry(inShape, p);
  const dx = new Float64Array(N * C * H * W);
  for (let pl = 0; pl < N * C; pl++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        const d = divisor(oy, ox, H, W, p, countIncludePad);
        if (d <= 0) continue;
        const g = dy[(pl * OH + oy) * OW + ox]! / d;
        for (let ky = 0; ky < p.kernel[0]; ky++) {
          for (let kx = 0; kx < p.kernel[1]; kx++) {
            const iy = oy * p.stride[0] - p.pad[0] + ky * dil(p)[0];
            const ix = ox * p.stride[1] - p.pad[2] + kx * dil(p)[1];
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) dx[pl * H * W + iy * W + ix] += g;
          }
        }
      }
    }
  }
  return Float32Array.from(dx);
}

export function globalAvgPoolRef(x: ArrayLike<number>, shape: readonly number[]) {
  const [N, C, H, W] = shape as [number, number, number, number];
  const out = new Float32Array(N * C);
  for (let pl = 0; pl < N * C; pl++) {
    let s = 0;
    for (let j = 0; j < H * W; j++) s += x[pl * H * W + j]!;
    out[pl] = s / (H * W);
  }
  return out;
}

/** Global max pooling with the first (row-major) argmax of each plane; rank ≥ 3 [N, C, spatial…]. */
export function globalMaxPoolRef(x: ArrayLike<number>, shape: readonly number[]) {
  const planes = shape[0]! * shape[1]!;
  const size = x.length / planes;
  const out = new Float32Array(planes);
  const arg = new Int32Array(planes);
  for (let pl = 0; pl < planes; pl++) {
    let best = -Infinity;
    for (let j = 0; j < size; j++) {
      const v = x[pl * size + j]!;
      if (v > best) {
        best = v;
        arg[pl] = j;
      }
    }
    out[pl] = best;
  }
  return { out, arg, size };
}
