/** Plain TypeScript references for the pooling kernels (NCHW), written as direct loops / scatters. */

export interface RefPool {
  kernel: [number, number];
  stride: [number, number];
  /** top, bottom, left, right */
  pad: [number, number, number, number];
  ceil?: boolean;
}

/** PyTorch's pooling_output_shape_pad_lr, for one axis. */
export function refOutSize(n: number, k: number, s: number, before: number, after: number, ceil = false): number {
  const num = n + before + after - k + (ceil ? s - 1 : 0);
  let out = Math.floor(num / s) + 1;
  if (ceil && (out - 1) * s >= n + before) out--;
  return out;
}

function geometry(shape: readonly number[], p: RefPool) {
  const [N, C, H, W] = shape as [number, number, number, number];
  const OH = refOutSize(H, p.kernel[0], p.stride[0], p.pad[0], p.pad[1], p.ceil);
  const OW = refOutSize(W, p.kernel[1], p.stride[1], p.pad[2], p.pad[3], p.ceil);
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
            const iy = oy * p.stride[0] - p.pad[0] + ky;
            const ix = ox * p.stride[1] - p.pad[2] + kx;
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

function divisor(oy: number, ox: number, H: number, W: number, p: RefPool, countIncludePad: boolean): number {
  let y0 = oy * p.stride[0] - p.pad[0];
  let x0 = ox * p.stride[1] - p.pad[2];
  let y1 = Math.min(y0 + p.kernel[0], H + p.pad[1]);
  let x1 = Math.min(x0 + p.kernel[1], W + p.pad[3]);
  const full = (y1 - y0) * (x1 - x0);
  y0 = Math.max(y0, 0);
  x0 = Math.max(x0, 0);
  y1 = Math.min(y1, H);
  x1 = Math.min(x1, W);
  const real = Math.max(y1 - y0, 0) * Math.max(x1 - x0, 0);
  return countIncludePad ? full : real;
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
            const iy = oy * p.stride[0] - p.pad[0] + ky;
            const ix = ox * p.stride[1] - p.pad[2] + kx;
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
            const iy = oy * p.stride[0] - p.pad[0] + ky;
            const ix = ox * p.stride[1] - p.pad[2] + kx;
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
