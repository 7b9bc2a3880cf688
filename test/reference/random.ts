/** The random.wgsl streams in TypeScript (same hash, float64 arithmetic). */
function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

function uniform01(seed: number, counter: number): number {
  const h = pcg((counter ^ pcg(seed >>> 0)) >>> 0);
  return ((h >>> 8) + 0.5) / 16777216;
}

export function normalReference(n: number, seed: number, offset = 0): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = offset + i;
    out[i] = Math.sqrt(-2 * Math.log(uniform01(seed, 2 * k))) * Math.cos(2 * Math.PI * uniform01(seed, 2 * k + 1));
  }
  return out;
}

export function uniformReference(n: number, seed: number, offset = 0): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => uniform01(seed, offset + i));
}
