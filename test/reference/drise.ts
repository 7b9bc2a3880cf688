/** The D-RISE mask construction of shaders/drise_masks.wgsl, in TypeScript (float64). */
function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}
const uniform01 = (seed: number, stream: number, counter: number) => (pcg((counter ^ pcg((seed ^ pcg(stream)) >>> 0)) >>> 0) >>> 8) / 16777216;

export function maskShift(seed: number, mask: number, ch: number, cw: number): [number, number] {
  return [Math.min(Math.floor(uniform01(seed, 1, 2 * mask) * ch), ch - 1), Math.min(Math.floor(uniform01(seed, 1, 2 * mask + 1) * cw), cw - 1)];
}

/**
 * Mask `mask` of the seed's sequence. `shift` replaces the mask's own (dy, dx), so a mask's shift
 * can be recovered from its pixels by trying every candidate.
 */
export function maskReference(h: number, w: number, s: number, p: number, seed: number, mask: number, shift?: readonly [number, number]): Float64Array {
  const ch = Math.ceil(h / s);
  const cw = Math.ceil(w / s);
  const cells = Uint8Array.from({ length: s * s }, (_, k) => (uniform01(seed, 0, mask * s * s + k) < p ? 1 : 0));
  const cell = (i: number, j: number) => cells[i * s + j]!;
  const [dy, dx] = shift ?? maskShift(seed, mask, ch, cw);
  const taps = (o: number, up: number) => {
    const src = Math.max((o + 0.5) * (s / up) - 0.5, 0);
    const i0 = Math.min(Math.floor(src), s - 1);
    return [i0, Math.min(i0 + 1, s - 1), src - i0] as const;
  };
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [y0, y1, ly] = taps(y + dy, (s + 1) * ch);
      const [x0, x1, lx] = taps(x + dx, (s + 1) * cw);
      const r0 = cell(y0, x0) * (1 - lx) + cell(y0, x1) * lx;
      const r1 = cell(y1, x0) * (1 - lx) + cell(y1, x1) * lx;
      out[y * w + x] = r0 * (1 - ly) + r1 * ly;
    }
  }
  return out;
}
