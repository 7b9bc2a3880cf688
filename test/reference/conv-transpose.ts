/** Plain TypeScript reference for 2-D transposed convolution (ONNX ConvTranspose), as a scatter in float64. */

export interface RefConvT {
  stride: [number, number];
  /** top, bottom, left, right */
  pad: [number, number, number, number];
  outputPadding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** y[n, m, i·s − pad + k·d] += x[n, c, i] · w[c, m − g·M/groups, k] for c in group g; returns y and its shape. */
export function convTransposeRef(
  x: ArrayLike<number>,
  xShape: readonly number[],
  w: ArrayLike<number>,
  wShape: readonly number[],
  bias: ArrayLike<number> | null,
  p: RefConvT,
): { data: Float32Array; shape: number[] } {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [, Mg, KH, KW] = wShape as [number, number, number, number];
  const G = p.groups;
  const M = Mg * G;
  const Cg = C / G;
  const HO = p.stride[0] * (H - 1) + p.outputPadding[0] + p.dilation[0] * (KH - 1) + 1 - p.pad[0] - p.pad[1];
  const WO = p.stride[1] * (W - 1) + p.outputPadding[1] + p.dilation[1] * (KW - 1) + 1 - p.pad[2] - p.pad[3];
  const y = new Float64Array(N * M * HO * WO);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const g = Math.floor(c / Cg);
      for (let i = 0; i < H; i++) {
        for (let j = 0; j < W; j++) {
          const v = x[((n * C + c) * H + i) * W + j]!;
          for (let mm = 0; mm < Mg; mm++) {
            const m = g * Mg + mm;
            for (let ky = 0; ky < KH; ky++) {
              const oy = i * p.stride[0] - p.pad[0] + ky * p.dilation[0];
              if (oy < 0 || oy >= HO) continue;
              for (let kx = 0; kx < KW; kx++) {
                const ox = j * p.stride[1] - p.pad[2] + kx * p.dilation[1];
                if (ox < 0 || ox >= WO) continue;
                y[((n * M + m) * HO + oy) * WO + ox] += v * w[((c * Mg + mm) * KH + ky) * KW + kx]!;
              }
            }
          }
        }
      }
    }
  }
  if (bias) for (let k = 0; k < y.length; k++) y[k] += bias[Math.floor(k / (HO * WO)) % M]!;
  return { data: Float32Array.from(y), shape: [N, M, HO, WO] };
}
