// RISE / D-RISE random masks, generated directly at image size (Petsiuk et al.):
//   an s×s grid of cells, each 1 with probability p; upsampled bilinearly to
//   ((s+1)·ch) × ((s+1)·cw) with ch = ⌈H/s⌉, cw = ⌈W/s⌉ (half-pixel centres; edges clamped,
//   where the RISE authors' skimage resize mirrors them: only the outer half-cells differ);
//   an H×W window of it cropped at a random shift (dy, dx) ∈ [0, ch) × [0, cw), per mask.
// Mask m's cells and shift come from a counter-based hash of (seed, m), so any range of masks can
// be generated alone and the same seed always gives the same masks.
// Output: [B, 1, H, W] for masks first .. first+B−1. Workgroup: 256 threads, one pixel each, grid
// folded into 2-D when large.

struct Params {
  n: u32,        // B·H·W
  h: u32,
  w: u32,
  s: u32,        // grid cells per side
  ch: u32,       // ⌈H/s⌉
  cw: u32,       // ⌈W/s⌉
  first: u32,    // index of the first mask in the seed's sequence
  seed: u32,
  p: f32,        // probability that a cell is 1
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> Out: array<f32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// Uniform in [0, 1) from (seed, stream, counter): stream 0 = cells, 1 = shifts.
fn uniform01(stream: u32, counter: u32) -> f32 {
  let h = pcg(counter ^ pcg(P.seed ^ pcg(stream)));
  return f32(h >> 8u) / 16777216.0;
}

fn cell(mask: u32, i: u32, j: u32) -> f32 {
  return select(0.0, 1.0, uniform01(0u, (mask * P.s + i) * P.s + j) < P.p);
}

// Bilinear sample of the s×s grid at a position of the upsampled axis of length `up`.
fn taps(o: u32, up: u32) -> vec3<f32> {
  let scale = f32(P.s) / f32(up);
  let src = max((f32(o) + 0.5) * scale - 0.5, 0.0);
  let i0 = min(u32(floor(src)), P.s - 1u);
  let i1 = min(i0 + 1u, P.s - 1u);
  return vec3<f32>(f32(i0), f32(i1), src - f32(i0));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  if (idx >= P.n) { return; }
  let plane = P.h * P.w;
  let b = idx / plane;
  let y = (idx % plane) / P.w;
  let x = idx % P.w;
  let mask = P.first + b;
  let dy = min(u32(uniform01(1u, 2u * mask) * f32(P.ch)), P.ch - 1u);
  let dx = min(u32(uniform01(1u, 2u * mask + 1u) * f32(P.cw)), P.cw - 1u);
  let ty = taps(y + dy, (P.s + 1u) * P.ch);
  let tx = taps(x + dx, (P.s + 1u) * P.cw);
  let r0 = mix(cell(mask, u32(ty.x), u32(tx.x)), cell(mask, u32(ty.x), u32(tx.y)), tx.z);
  let r1 = mix(cell(mask, u32(ty.y), u32(tx.x)), cell(mask, u32(ty.y), u32(tx.y)), tx.z);
  Out[idx] = mix(r0, r1, ty.z);
}
