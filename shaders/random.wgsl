// Counter-based random numbers: element i of a stream depends only on (seed, offset + i), so any
// slice of a stream can be generated alone and the same seed always gives the same values.
// Hash: the PCG output permutation (O'Neill 2014) applied twice, to (seed) then (counter ^ that).
// Variants: NORMAL=true gives N(mean, std²) by Box–Muller from two uniforms per value; otherwise
// uniform in [lo, hi). Workgroup: 256 threads, one value each, grid folded into 2-D when large.

struct Params {
  n: u32,
  seed: u32,
  offset: u32,
  a: f32,   // mean (normal) or lo (uniform)
  b: f32,   // std (normal) or hi (uniform)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> Out: array<f32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// Uniform in (0, 1): 24 random bits, centred in their interval, so log() never sees 0.
fn uniform01(counter: u32) -> f32 {
  let h = pcg(counter ^ pcg(p.seed));
  return (f32(h >> 8u) + 0.5) / 16777216.0;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let k = p.offset + i;
#if ${NORMAL}
  let u1 = uniform01(2u * k);
  let u2 = uniform01(2u * k + 1u);
  let z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
  Out[i] = p.a + p.b * z;
#else
  Out[i] = p.a + (p.b - p.a) * uniform01(k);
#endif
}
